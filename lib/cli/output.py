"""What a command writes and says: outputs checked before the work, written with one message
when they cannot be, and notes on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lib.core.errors import InputError

T = TypeVar("T")


def check_writable(path: Path) -> None:
    """Refuse, before any long work, an output path that cannot be written."""
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name such as {path / 'heads.csv'}")
    folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: {folder} is not writable")


def write_output(path: Path, write: Callable[[Path], T]) -> T:
    """`write(path)`, with an `OSError` (full disk, permissions) as one line naming `path`."""
    try:
        return write(path)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None


def say(message: str) -> None:
    """One line on stderr: what a command did, or a `note: ...` about its input."""
    print(message, file=sys.stderr)
