"""Option groups shared by the commands (argparse parent parsers).

Each group is a parser made with `add_help=False`, passed as `parents=[...]` to a command's
`CliParser`, so `--model`, `--out` and the rest read and mean the same in every
`python -m lib.<command>`. The groups of the scoring commands are in `lib.cli.scoring_options`;
this module imports no torch, so the table commands start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def group() -> argparse.ArgumentParser:
    """An empty option group, to fill and pass as a parent."""
    return argparse.ArgumentParser(add_help=False)


def model_options() -> argparse.ArgumentParser:
    """`--model`, `--revision`: one checkpoint, a hub id at a revision or a local folder."""
    options = group()
    options.add_argument("--model", required=True, help="hub id or local folder")
    options.add_argument(
        "--revision",
        default="main",
        help="hub revision: main, a step such as step1000, or a commit",
    )
    return options


def out_option(help_text: str = "CSV to write") -> argparse.ArgumentParser:
    """`--out PATH`, required."""
    options = group()
    options.add_argument("--out", type=Path, required=True, help=help_text)
    return options
