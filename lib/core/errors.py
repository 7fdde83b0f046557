"""One error type for bad user input, and the command-line convention for it.

Every problem a user can fix (a malformed CSV, an unknown model id, an offline hub...)
is raised as `InputError` with a one-line, specific message. Pages show it with
`st.error`; commands print it on one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
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


def is_whole_number(text: str) -> bool:
    """`text` is ASCII digits only. `str.isdigit` also takes `²` (which `int` refuses) and
    other scripts' digits: a file name or setting with them is not a number here."""
    return text.isascii() and text.isdigit()
