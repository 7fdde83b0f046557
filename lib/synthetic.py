"""Pythia-shaped GPT-NeoX checkpoints with seeded random weights, for tests, benchmarks and an
offline demo.

    python -m lib.synthetic --demo --out DIR
    python -m lib.synthetic --size 14m --out DIR          (or --shape LAYERS,HEADS,D_MODEL)
    python -m lib.synthetic --series --out DIR --steps 0,1,4,64 [--task-from STEP]

`--demo` writes the planted 3-layer model, whose four planted heads classify as copying,
suppression, country -> capital and previous token (the others, random, stay unclassified);
a random `--size` or `--shape` has no head above threshold. `--series` writes a training
series of tiny checkpoints with planted heads that appear at chosen steps; with `--task-from`,
one whose copying head carries the copying task from that step on (random weights before), for
the causal check over training (`python -m lib.sweep --ablate`). How the checkpoints are made:
`lib.fixtures.synthetic`, `lib.fixtures.planted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lib.core.catalog import SIZES
from lib.core.errors import CliParser, InputError, run_cli
from lib.fixtures import planted
from lib.fixtures.synthetic import DESCRIPTION, build_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m lib.synthetic", description=DESCRIPTION)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="the planted 3-layer model: four heads with known roles (copying, suppression, "
        "country -> capital, previous token) among random ones; what the quick start classifies",
    )
    parser.add_argument("--size", choices=list(SIZES), help="a Pythia shape, e.g. 14m")
    parser.add_argument("--shape", help="LAYERS,HEADS,D_MODEL instead of --size, e.g. 3,4,64")
    parser.add_argument("--vocab-rows", type=int, help="embedding rows (default: see docs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    series = parser.add_argument_group(
        "training series (--series)",
        "A step<N> folder per step of the planted 3-layer model of lib.fixtures.planted; "
        "each planted head is there from its --appear step on and random before it.",
    )
    series.add_argument("--series", action="store_true", help="write a step<N> series")
    series.add_argument(
        "--steps", help="comma list of steps (default: 0,1,4,16,64,256,1000,10000,143000)"
    )
    series.add_argument(
        "--appear",
        action="append",
        default=[],
        metavar="ROLE=STEP",
        help="the step a planted role appears at; roles copying, suppression, "
        "country_to_capital, previous_token (default: previous_token=4, copying=64, "
        "suppression=1000, country_to_capital=10000); a role set to -1 is never planted",
    )
    series.add_argument(
        "--task-from",
        type=int,
        metavar="STEP",
        help="instead of the roles: random weights before STEP, and from STEP on a model whose "
        f"head L{planted.TASK_HEAD[0]} H{planted.TASK_HEAD[1]} alone carries the "
        f"{planted.TASK_RELATION} task (its heads become necessary at STEP: lib.sweep --ablate)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    if args.demo:
        if args.series or args.size or args.shape:
            raise InputError(
                "--demo writes the planted model: give it no --size, --shape or --series"
            )
        print(f"wrote {planted.build_demo(args.out)} (planted heads: {planted_heads()})")
        return 0
    if args.task_from is not None and (not args.series or args.appear):
        raise InputError("--task-from writes a series of its own: give it --series, no --appear")
    if args.series:
        steps = parse_steps(args.steps) if args.steps else planted.DEFAULT_SERIES_STEPS
        if args.task_from is not None:
            folders = planted.build_task_series(args.out, steps, args.task_from)
            print(f"wrote {len(folders)} checkpoints to {args.out} (task from {args.task_from})")
            return 0
        appearance = {**planted.DEFAULT_APPEARANCE, **parse_appearance(args.appear)}
        never = [role for role, step in appearance.items() if step < 0]
        folders = planted.build_series(
            args.out, steps, {r: s for r, s in appearance.items() if r not in never}
        )
        print(
            f"wrote {len(folders)} checkpoints to {args.out} ({', '.join(f.name for f in folders)})"
        )
        return 0
    shape = parse_shape(args.shape) if args.shape else None
    dtype = getattr(torch, args.dtype)
    out = build_checkpoint(args.out, shape, args.size, args.vocab_rows, args.seed, dtype)
    print(f"wrote {out}")
    return 0


def planted_heads() -> str:
    """The demo's planted heads, e.g. `L0 H0 general_copying_english_500, ...`."""
    return ", ".join(
        f"L{layer} H{head} {label}" for (layer, head), label in planted.PLANTED.items()
    )


def parse_steps(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers >= 0, e.g. `0,1,4,64`."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--steps {text!r}: expected whole numbers like 0,1,4,64") from None
    if any(step < 0 for step in steps):
        raise InputError(f"--steps {text!r}: steps are whole numbers >= 0")
    return steps


def parse_appearance(assignments: Sequence[str]) -> dict[str, int]:
    """`ROLE=STEP` assignments, e.g. `copying=64`."""
    appearance = {}
    for assignment in assignments:
        role, _, step = assignment.partition("=")
        try:
            appearance[role] = int(step)
        except ValueError:
            raise InputError(
                f"--appear {assignment!r}: expected ROLE=STEP, e.g. copying=64"
            ) from None
    return appearance


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        n_layers, n_heads, d_model = (int(part) for part in text.split(","))
    except ValueError as error:
        raise InputError(f"--shape {text!r}: expected LAYERS,HEADS,D_MODEL like 3,4,64") from error
    # Rotary embeddings turn pairs of dims in a quarter of each head: d_head % 8 == 0.
    if min(n_layers, n_heads, d_model) < 1 or d_model % (8 * n_heads):
        raise InputError(f"--shape {text!r}: d_model must be a positive multiple of 8 x heads")
    return n_layers, n_heads, d_model


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
