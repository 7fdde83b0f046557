"""What a command writes and says: outputs checked before the work (writable, never one of
the inputs), written whole or not at all with one message when they cannot be, and notes on
stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from lib.core.errors import InputError
from lib.tables.result_files import replace_together

T = TypeVar("T")


def check_writable(path: Path) -> None:
    """Refuse, before any long work, an output path that cannot be written."""
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name such as {path / 'heads.csv'}")
    folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: {folder} is not writable")


def check_not_input(outputs: Iterable[Path], inputs: Iterable[Path | str]) -> None:
    """Refuse, before any work, an output that is one of the command's inputs (the same file,
    through any link) or lies inside an input folder (a model folder, a results store): a
    command never overwrites what it reads. Inputs that are not local paths are skipped."""
    existing = [Path(source) for source in inputs if Path(source).exists()]
    for output in outputs:
        target = Path(output).resolve()
        for source in existing:
            same = target.exists() and os.path.samefile(target, source)
            if same or target == source.resolve():
                raise InputError(f"{output} is an input of this command; write elsewhere")
            if source.is_dir() and source.resolve() in target.parents:
                raise InputError(f"{output} is inside the input folder {source}; write outside it")


def write_output(path: Path, write: Callable[[Path], T]) -> T:
    """`write(path)`, with an `OSError` (full disk, permissions) as one line naming `path`."""
    try:
        return write(path)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None


def write_bytes(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` atomically (`replace_together`): a full disk leaves the old
    file whole."""
    write_output(path, lambda target: replace_together([(target, payload)]))


def say(message: str) -> None:
    """One line on stderr: what a command did, or a `note: ...` about its input."""
    print(message, file=sys.stderr)
