"""Progress reporting shared by the engine, the pages (`st.progress`) and the commands.

A `Progress` callback receives the fraction done in [0, 1] and what is happening now, e.g.
`(0.4, "operation scores: layer 3 of 8")`.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def ignore(fraction: float, message: str) -> None:
    """A `Progress` that reports nothing."""


def subrange(progress: Progress | None, start: float, stop: float) -> Progress:
    """Report a sub-task's progress in [0, 1] as the part [start, stop] of `progress`."""
    report = progress or ignore
    return lambda fraction, message: report(start + (stop - start) * fraction, message)
