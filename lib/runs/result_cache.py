"""Classification results kept in memory and on disk, so that no table is computed twice.

A result is keyed by everything its scores can depend on (`ResultKey`: the model source, the
hub commit its revision resolved to or a folder's content fingerprint, dtype, device type,
relation set, pattern settings, the digest of the scoring code and relation data, the torch and
transformers versions; docs/methods.md §7) and *not* by the thresholds: labels are derived from
the scores (`lib.classify.label_heads`, cheap), so a cached result is relabelled for any
thresholds (`relabel`) and a threshold change never recomputes.

On disk, under `cache_dir()` (`$HEAD_ATLAS_CACHE_DIR`, default `~/.cache/pythia-head-atlas`),
a result is `<digest>.csv` with its sidecar `<digest>.settings.json`, written as a pair by
`lib.tables.result_files.write_pair`. Before an entry is served from disk,
`lib.tables.result_files.read_pair` checks it against the checksums and row count its sidecar
records; an entry that fails (cut short, edited, a folder in a file's place, unreadable) is removed
and recomputed (one that another process is writing now is a miss, not removed), and only checked or
freshly computed results are kept in memory. Staging files of killed runs are
removed when the cache is opened. `ResultCache.get_or_compute` holds one lock per key, so two
callers (e.g. two browser sessions) asking for the same result wait for one computation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
import transformers

from lib.core.errors import InputError
from lib.core.progress import Progress, ignore
from lib.scoring import provenance
from lib.scoring.patterns import PatternSettings
from lib.scoring.pipeline import Classification, write_classification
from lib.scoring.relations import SkippedRelation
from lib.tables.labels import Thresholds, label_heads
from lib.tables.result_files import (
    being_written,
    read_pair,
    remove_pair,
    remove_stale_staging,
    settings_path,
)

CACHE_DIR_KEY = "HEAD_ATLAS_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/pythia-head-atlas")
MEMORY_ENTRIES = 64
"""Results kept in memory (a 12B model's table is about 1 MB); older ones stay on disk."""
DERIVED_COLUMNS = ("label", "score")

Origin = Literal["memory", "disk", "computed"]


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """The cache folder: `$HEAD_ATLAS_CACHE_DIR`, else `~/.cache/pythia-head-atlas`."""
    value = (os.environ if environ is None else environ).get(CACHE_DIR_KEY, "").strip()
    return Path(value or DEFAULT_CACHE_DIR).expanduser()


def current_code() -> str:
    """`lib.scoring.provenance.scoring_code_digest()`, looked up when called (so a test can stand in
    another digest for the code)."""
    return provenance.scoring_code_digest()


@dataclass(frozen=True)
class ResultKey:
    """What a result's scores can depend on (module docstring). `fingerprint` is a local
    folder's content (empty for a hub id), `commit` the hub commit (empty for a folder);
    `device` a device type (`cpu`, `cuda`, `mps`); `patterns` None means no pattern scores;
    `code`, `torch`, `transformers` default to the running code and libraries."""

    source: str
    revision: str
    dtype: str
    relations: tuple[str, ...]
    patterns: PatternSettings | None
    fingerprint: str = ""
    relation_files: tuple[tuple[str, int], ...] = ()  # lib.scoring.relation_files.cache_identity
    commit: str = ""
    device: str = ""
    code: str = field(default_factory=current_code)
    torch: str = field(default_factory=lambda: torch.__version__)
    transformers: str = field(default_factory=lambda: transformers.__version__)

    @property
    def digest(self) -> str:
        """A stable file name: sha256 of the key's canonical JSON, 24 hex digits."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Lookup:
    """A result and where it came from (for the reader: "served from the cache")."""

    result: Classification
    origin: Origin


def relabel(result: Classification, thresholds: Thresholds) -> Classification:
    """`result` with `label` and `score` recomputed for `thresholds`, recorded in its settings."""
    table = label_heads(result.table.drop(columns=list(DERIVED_COLUMNS)), thresholds)
    settings = {**result.settings, "thresholds": asdict(thresholds)}
    return replace(result, table=table, settings=settings)


class ResultCache:
    """Results by `ResultKey`: the most recent `MEMORY_ENTRIES` in memory, all on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                f"cannot use the cache folder {self.directory}: {error.strerror}; "
                f"set {CACHE_DIR_KEY} to a writable folder"
            ) from error
        remove_stale_staging(self.directory)
        self._memory: OrderedDict[str, Classification] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()  # guards `_memory` and `_locks`

    def csv_path(self, key: ResultKey) -> Path:
        return self.directory / f"{key.digest}.csv"

    def get_or_compute(
        self,
        key: ResultKey,
        compute: Callable[[], Classification],
        progress: Progress | None = None,
    ) -> Lookup:
        """The result of `key` from memory, else disk, else `compute()` (then stored in both).
        Concurrent callers of one key wait for a single computation."""
        found = self._from_memory(key)
        if found is not None:
            return Lookup(found, "memory")
        lock = self._lock(key)
        if not lock.acquire(blocking=False):
            (progress or ignore)(0.0, "waiting for another session computing the same table")
            lock.acquire()
        try:
            # Checked again under the lock: the caller we waited for may have stored it.
            found = self._from_memory(key)
            if found is not None:
                return Lookup(found, "memory")
            found = self._from_disk(key)
            origin: Origin = "disk"
            if found is None:
                found, origin = compute(), "computed"
            self._remember(key, found)
            if origin == "computed":
                self._write(key, found)
            return Lookup(found, origin)
        finally:
            lock.release()

    def _lock(self, key: ResultKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key.digest, threading.Lock())

    def _from_memory(self, key: ResultKey) -> Classification | None:
        with self._guard:
            found = self._memory.get(key.digest)
            if found is not None:
                self._memory.move_to_end(key.digest)
            return found

    def _remember(self, key: ResultKey, result: Classification) -> None:
        with self._guard:
            self._memory[key.digest] = result
            self._memory.move_to_end(key.digest)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)

    def _from_disk(self, key: ResultKey) -> Classification | None:
        """The stored result, or None when absent or failing its checks (`read_pair`); a
        failing entry is removed, then recomputed and rewritten: the cache heals itself rather
        than failing the run or serving a damaged table. An entry another process is writing
        (`being_written`) is a miss, never removed; one read again after its writer finished
        (a table read before the write and a sidecar after) is served."""
        csv_path = self.csv_path(key)
        if not os.path.lexists(csv_path):
            return None
        for _ in range(2):  # twice: a writer may finish between our reads of its two files
            with contextlib.suppress(InputError):
                return read_entry(csv_path)
            if being_written(csv_path):
                return None
        remove_pair(csv_path)
        return None

    def _write(self, key: ResultKey, result: Classification) -> None:
        target = self.csv_path(key)
        try:
            write_classification(result, target)
        except OSError as error:
            raise InputError(
                f"the table was computed but not saved in {self.directory}: {error.strerror}; "
                f"it stays available until the server restarts; set {CACHE_DIR_KEY} to a "
                "writable folder with free space"
            ) from error


def read_entry(csv_path: Path) -> Classification:
    """The result stored at `csv_path`; `InputError` when it fails its checks (`read_pair`)."""
    table, settings = read_pair(csv_path)
    try:
        skipped = tuple(SkippedRelation(**s) for s in settings.get("skipped_relations", []))
    except TypeError:
        raise InputError(f"{csv_path.name} records skipped relations it cannot have") from None
    return Classification(table, settings, skipped)


@dataclass(frozen=True)
class StoredResult:
    """A result stored in a cache folder: its table's path and its settings (sidecar JSON)."""

    csv_path: Path
    settings: dict[str, Any]

    @property
    def stale(self) -> bool:
        """Scored by another version of the scoring code than this server's (its recorded
        `scoring_code` digest differs): its numbers may not be what this code computes."""
        return self.settings.get("scoring_code") != current_code()

    @property
    def description(self) -> str:
        """For a reader choosing among results: model, revision, dtype, device, what was
        scored, and the key digest that tells apart otherwise equal descriptions."""
        s = self.settings
        scored = f"{len(s.get('relations', []))} relations"
        scored += " + patterns" if s.get("patterns") else ""
        stale = " · older scoring code" if self.stale else ""
        return (
            f"{s.get('model')} @ {s.get('revision')} · {s.get('dtype')} on {s.get('device')} · "
            f"{scored} · {self.csv_path.stem[:8]}{stale}"
        )

    def read(self) -> Classification:
        """The stored result, checked by `lib.tables.result_files.read_pair` (`InputError` naming
        the result and what is wrong when it fails, or when it is `stale`: never served as if this
        code had scored it); thresholds as recorded, `relabel` for others."""
        if self.stale:
            raise InputError(
                f"{self.description}: scored by another version of the scoring code than this "
                "server's, so its numbers may differ; score it again on Classify heads"
            )
        try:
            return read_entry(self.csv_path)
        except InputError as error:
            raise InputError(f"{self.description}: {error}; score it again") from None


def stored_results(directory: Path) -> list[StoredResult]:
    """The results stored in `directory`, newest first, those of older scoring code last
    (`StoredResult.stale`): every `<digest>.csv` whose sidecar reads as JSON. Read-only and
    light (sidecars only): `StoredResult.read` checks an entry."""
    found = []
    for csv_path in Path(directory).glob("*.csv"):
        try:
            settings = json.loads(settings_path(csv_path).read_text())
            modified = csv_path.stat().st_mtime
        except (OSError, ValueError):
            continue  # being written, or not ours: left to the cache itself
        if isinstance(settings, dict):
            found.append((modified, StoredResult(csv_path, settings)))
    ordered = sorted(found, key=lambda pair: (pair[1].stale, -pair[0]))
    return [result for _, result in ordered]
