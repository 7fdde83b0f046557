"""Classify many checkpoints of a training run into one results store.

    python -m lib.sweep --model SOURCE [--model SOURCE ...] [--revisions all|log|a,b,...]
        --out STORE [--device ...] [--dtype ...] [--relations ...] [--no-patterns]
        [--threshold NAME=VALUE ...] [--engine process|ray] [--ray-address ADDRESS]
        [--ablate [--template TEXT] [--max-heads N] [--random-draws N] [--seed S]]

What a SOURCE is, the jobs, the engines and the exit codes: `lib.runs.sweep`; the store:
`lib.runs.store`; the causal check's curves kept with `--ablate`: `lib.runs.stored_ablation`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tqdm import tqdm  # a transformers dependency, pinned in requirements.txt

from lib.cli.ablation_options import ablation_options, ablation_settings
from lib.cli.output import say
from lib.cli.scoring_options import scoring_options, scoring_settings
from lib.core.errors import CliParser, InputError, run_cli
from lib.runs.sweep import (
    ENGINES,
    RAY_ADDRESS_FORMS,
    REVISION_SETS,
    JobResult,
    Report,
    SweepSettings,
    connect_ray,
    plan_jobs,
    sweep,
)
from lib.scoring.ablation import AblationSettings, check_request
from lib.scoring.pipeline import ClassifySettings


def terminal_report(total: int) -> tuple[Report, Callable[[], None]]:
    """A progress bar of jobs done / total with an ETA on a terminal; one line per job when
    stderr is not one. Returns the report and a function closing the bar."""
    if sys.stderr.isatty():
        bar = tqdm(total=total, file=sys.stderr, unit="job")

        def on_bar(result: JobResult) -> None:
            bar.set_postfix_str(f"{result.job.key.model} {result.job.key.revision}", refresh=False)
            bar.update(1)
            if result.error:
                bar.write(
                    f"failed {result.job.key.model} {result.job.key.revision}: {result.error}"
                )

        return on_bar, bar.close
    done = 0

    def on_line(result: JobResult) -> None:
        nonlocal done
        done += 1
        key = result.job.key
        detail = f": {result.error}" if result.error else ""
        detail += f" ({result.seconds:.1f} s)" if result.status == "stored" else ""
        print(
            f"[{done}/{total}] {result.status} {key.model} {key.revision}{detail}", file=sys.stderr
        )

    return on_line, lambda: None


def sweep_ablation(args: argparse.Namespace, classify: ClassifySettings) -> AblationSettings | None:
    """The causal check asked for with `--ablate` (None without it); `InputError` for its
    options without `--ablate`, or for `--ablate` with no bundled relation to ablate."""
    asked = ablation_settings(args)
    if not args.ablate:
        if asked != AblationSettings():
            raise InputError(
                "--template, --max-heads, --random-draws and --seed set the causal check: add "
                "--ablate, or leave them out"
            )
        return None
    check_request(classify.relations, asked.max_heads, asked.draws)
    return asked


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.sweep",
        description="Classify the heads of many checkpoints (models x revisions) into one "
        "results store, in process or on Ray.",
        parents=[*scoring_options(), ablation_options()],
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="catalog hub id (EleutherAI/pythia-70m) or a series folder of step<N> "
        "save_pretrained folders; repeat for several models",
    )
    parser.add_argument("--revisions", default="all", help=REVISION_SETS)
    parser.add_argument(
        "--out", required=True, help="the store: a folder, or an fsspec URL (s3://... with s3fs)"
    )
    parser.add_argument(
        "--engine", default="process", choices=ENGINES, help="run jobs here or as Ray tasks"
    )
    parser.add_argument(
        "--ray-address",
        help=f"Ray cluster to run on with --engine ray: {RAY_ADDRESS_FORMS}; default: "
        "$RAY_ADDRESS, else a local Ray started here",
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="also run the causal check (python -m lib.ablate) on every checkpoint, on its "
        "bundled relations, and keep its curves in the store (docs/methods.md §10)",
    )
    args = parser.parse_args(argv)
    if args.ray_address is not None and args.engine != "ray":
        raise InputError("--ray-address is for --engine ray; add it, or leave the address out")
    classify = scoring_settings(args)
    settings = SweepSettings(classify, args.device, args.dtype, sweep_ablation(args, classify))
    jobs = plan_jobs(args.model, args.revisions)
    if args.engine == "ray":  # a bad address or a cluster without GPUs: refused before the store
        connect_ray(args.ray_address, args.device)
    report, close = terminal_report(len(jobs))
    try:
        results = sweep(jobs, settings, args.out, args.engine, args.ray_address, report)
    finally:
        close()
    failed = sum(result.status == "failed" for result in results)
    kept = sum(result.status == "kept" for result in results)
    say(f"{args.out}: {len(results) - failed - kept} stored, {kept} already there, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
