"""One error type for bad user input, and the command-line convention for it.

Every problem a user can fix (a malformed CSV, an unknown model id, an offline hub...)
is raised as `InputError` with a one-line, specific message. Pages show it with
`st.error`; commands print it on one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """A problem with the user's input, described in one line they can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def quoted(text: str, limit: int = 60) -> str:
    """`text` quoted for a one-line message, its middle cut when longer than `limit`
    characters (a user's 8 KB template must not become an 8 KB message)."""
    if len(text) <= limit:
        return repr(text)
    return repr(f"{text[: limit // 2]}…{text[-(limit // 2) :]}")


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's `main`, turning `InputError` into one stderr line and exit code 2."""
    try:
        return main(argv)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


class CliParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is an `InputError` (one line, exit 2) like any bad input."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message}")


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


def is_whole_number(text: str) -> bool:
    """`text` is ASCII digits only. `str.isdigit` also takes `²` (which `int` refuses) and
    other scripts' digits: a file name or setting with them is not a number here."""
    return text.isascii() and text.isdigit()
