"""A per-head table and its settings on disk: written as a pair, read back only as a pair.

A table `heads.csv` has its sidecar `heads.settings.json` (`settings_path`): the settings the
table was made with, plus `INTEGRITY`: the SHA-256 of the CSV's bytes (check it with
`sha256sum heads.csv`), its row count, and the SHA-256 of the other settings. `read_pair`
refuses a pair that does not match (a truncated or edited table, an edited or empty sidecar, a
table beside another run's sidecar), so nothing damaged is ever served as a result.

`write_pair` writes both files to hidden staging files in the same folder (`STAGING_MARK`), then
removes the old sidecar, moves the CSV into place and the sidecar last: a process killed at any
point leaves the old pair, the new pair, or a table without a sidecar, never a table beside a
sidecar of other settings. `remove_stale_staging` deletes staging files a killed process left;
`being_written` tells a reader that fresh ones are another process's write in progress.
`replace_together` is this mechanism for any files (`lib.dynamic`'s three, a command's one):
a full disk leaves the old files whole.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lib.core.errors import InputError
from lib.tables.head_table import to_csv_bytes

INTEGRITY = "integrity"
STAGING_MARK = ".writing-"
STALE_STAGING_S = 600.0
"""Staging files older than this are left over from a killed run (a write takes seconds)."""
TEXT_COLUMNS = {"model": str, "revision": str, "commit": str, "label": str}


def settings_path(csv_path: Path) -> Path:
    """The sidecar of a table: `<csv stem>.settings.json` next to it."""
    return csv_path.with_name(f"{csv_path.stem}.settings.json")


def settings_digest(settings: dict[str, Any]) -> str:
    """SHA-256 of `settings` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def check_pair_target(csv_path: Path) -> None:
    """`InputError` unless the table and its sidecar can be regular files at `csv_path`:
    `/dev/null`, a pipe or a folder is refused (a sidecar would be created beside it)."""
    check_file_targets((csv_path, settings_path(csv_path)))


def check_file_targets(paths: Iterable[Path]) -> None:
    """`InputError` unless each path can be replaced by a regular file: `/dev/null`, a pipe or
    a folder in its place is refused (it would be replaced, or a file written beside it)."""
    for path in paths:
        if os.path.lexists(path) and not path.is_file():
            raise InputError(
                f"{path} exists and is not a regular file; give the name of a file to write"
            )


def write_pair(table: pd.DataFrame, settings: dict[str, Any], csv_path: Path) -> Path:
    """Write `table` to `csv_path` and `settings` (with `INTEGRITY`) to its sidecar, as a pair
    (module docstring); return the sidecar's path. `OSError` when the folder refuses."""
    csv_path = Path(csv_path)
    sidecar = settings_path(csv_path)
    data = to_csv_bytes(table)
    integrity = {
        "csv_sha256": hashlib.sha256(data).hexdigest(),
        "rows": len(table),
        "settings_sha256": settings_digest(settings),
    }
    text = json.dumps({**settings, INTEGRITY: integrity}, indent=2) + "\n"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    replace_together([(csv_path, data), (sidecar, text.encode())])
    return sidecar


def replace_together(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write each `(path, content)` to a hidden staging file beside its path (`STAGING_MARK`),
    then move them into place in order. Nothing is replaced until every content is written,
    so a full disk or a refusing folder (`OSError`) leaves the old files whole. With several
    files the last one vouches for the others (a sidecar): it is removed before the others
    move and moved in last, so a kill in between leaves files without it, never a mix."""
    files = [(Path(path), content) for path, content in files]
    check_file_targets(path for path, _ in files)
    staged: list[Path] = []
    try:
        for path, content in files:
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{STAGING_MARK}")
            staged.append(Path(name))
            with os.fdopen(handle, "wb") as file:
                file.write(content)
        if len(files) > 1:
            files[-1][0].unlink(missing_ok=True)
        for (path, _), staging in zip(files, staged, strict=True):
            os.replace(staging, path)
    finally:
        for path in staged:
            path.unlink(missing_ok=True)


def read_pair(csv_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table at `csv_path` and its settings (without `INTEGRITY`); `InputError` naming
    what is wrong unless both files are there and match their `INTEGRITY` record. Messages
    name the files, not their folder: a page may show them to visitors of a server."""
    sidecar = settings_path(csv_path)
    name, sidecar_name = csv_path.name, sidecar.name
    try:
        data = csv_path.read_bytes()
        settings = json.loads(sidecar.read_bytes())
    except OSError as error:
        raise InputError(f"cannot read {name} and its settings: {error.strerror}") from None
    except (ValueError, RecursionError):
        raise InputError(f"{sidecar_name} is not a JSON settings file") from None
    integrity = settings.pop(INTEGRITY, None) if isinstance(settings, dict) else None
    if not isinstance(integrity, dict):
        raise InputError(
            f"{sidecar_name} has no {INTEGRITY} record: it is not this table's sidecar"
        )
    if integrity.get("settings_sha256") != settings_digest(settings):
        raise InputError(f"{sidecar_name} was changed after it was written")
    if integrity.get("csv_sha256") != hashlib.sha256(data).hexdigest():
        raise InputError(f"{name} was changed after it was written (its SHA-256 differs)")
    try:
        table = pd.read_csv(io.BytesIO(data), dtype=TEXT_COLUMNS)
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(f"{name} is not a readable table ({error})") from None
    if len(table) != integrity.get("rows"):
        raise InputError(f"{name} has {len(table)} rows, not {integrity.get('rows')}")
    return table, settings


def remove_pair(csv_path: Path) -> None:
    """Remove a table and its sidecar, whatever they are (a folder in a file's place too);
    what cannot be removed stays (a write over it will then say why)."""
    for path in (csv_path, settings_path(csv_path)):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def being_written(csv_path: Path, within_s: float = STALE_STAGING_S) -> bool:
    """Whether the pair at `csv_path` has a staging file changed in the last `within_s`
    seconds: another process may be writing it now (`replace_together` stages every file
    before it touches the old ones), so a failed read of it is no proof of damage."""
    cutoff = time.time() - within_s
    for path in (csv_path, settings_path(csv_path)):
        for staging in path.parent.glob(f".{glob.escape(path.name)}{STAGING_MARK}*"):
            with contextlib.suppress(OSError):
                if staging.lstat().st_mtime >= cutoff:
                    return True
    return False


def remove_stale_staging(folder: Path, older_than_s: float = STALE_STAGING_S) -> None:
    """Remove staging files and folders (`*.writing-*`, also the folders of earlier versions)
    in `folder` last changed more than `older_than_s` seconds ago: a killed run's leftovers."""
    cutoff = time.time() - older_than_s
    patterns = (f"{STAGING_MARK}*", f".*{STAGING_MARK}*")  # cache folders, then named files
    for path in {path for pattern in patterns for path in folder.glob(pattern)}:
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime >= cutoff:
                continue  # another process may be writing it now
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
