"""The options of the causal check (docs/methods.md §10), the same for `python -m lib.ablate`
and `python -m lib.sweep --ablate`, and what they parse into."""

from __future__ import annotations

import argparse

from lib.cli.options import group
from lib.scoring.ablation import RANDOM_DRAWS, AblationSettings, check_template
from lib.scoring.dynamic import SLOT


def ablation_options() -> argparse.ArgumentParser:
    """`--template`, `--max-heads`, `--random-draws`, `--seed`."""
    options = group()
    options.add_argument(
        "--template",
        help=f"one prompt template for every relation, with {SLOT} once after a space "
        "(default: each relation's published one, docs/methods.md §10)",
    )
    options.add_argument(
        "--max-heads", type=int, help="relation heads removed at most (default: by model size)"
    )
    options.add_argument("--random-draws", type=int, default=RANDOM_DRAWS, metavar="N")
    options.add_argument("--seed", type=int, default=0, help="seed of the random heads")
    return options


def ablation_settings(args: argparse.Namespace) -> AblationSettings:
    """The `AblationSettings` of `ablation_options`, the template checked."""
    template = check_template(args.template) if args.template is not None else None
    return AblationSettings(template, args.max_heads, args.random_draws, args.seed)
