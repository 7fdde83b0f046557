"""The one progress bar of the commands that load a model: tqdm on a terminal, silent when
stderr is piped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import transformers
from tqdm import tqdm  # a transformers dependency, pinned in requirements.txt

from lib.core.progress import Progress

STEPS = 1000


def bar_progress(bar: Any) -> Progress:
    """A `Progress` that drives a tqdm bar of `STEPS` steps."""

    def report(fraction: float, message: str) -> None:
        bar.set_description_str(message, refresh=False)
        bar.update(round(fraction * STEPS) - bar.n)

    return report


@contextmanager
def progress_bar(description_width: int = 60) -> Iterator[Progress]:
    """A bar with the current step's message, as a `Progress`. Only on a terminal: piped or
    captured stderr keeps to one line per message. transformers' own bars are switched off,
    so a load shows one bar: ours."""
    transformers.utils.logging.disable_progress_bar()
    bar_format = f"{{desc:<{description_width}}} {{bar}} {{percentage:3.0f}}%"
    quiet = not sys.stderr.isatty()
    with tqdm(total=STEPS, file=sys.stderr, bar_format=bar_format, disable=quiet) as bar:
        yield bar_progress(bar)
