"""Benchmark: dynamic (in-context) scores of all heads x all relations, next to the static ones.

    python -m bench.dynamic [--device cpu|cuda] [--sizes 70m,160m | --shape L,H,D]
        [--vocab-rows N] [--repeats N] [--build checkpoint|memory] [--out bench/results]

On the seeded random Pythia-shaped models of `bench.tasks` (Pythia's vocabulary rows, the
Pythia tokenizer), per model: the median time of `lib.dynamic.dynamic_scores` for every
head, every valid relation and the four default templates (one forward pass per batch of
prompts, both variants), and, side by side on the same model, of the static
`lib.scoring.operations.operation_scores`. No warm-up call: one dynamic run of a 160m shape takes
minutes, and the one-time costs are small beside it. Results go to
`<out>/dynamic-<device>-<date>.json` and `.md`; the table is printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.measure import machine, time_call
from bench.report import write_results
from bench.run import BENCH_DIR, model_specs
from bench.tasks import ModelSpec, load
from lib.checkpoints.loader import resolve_device
from lib.core.errors import CliParser, InputError, run_cli
from lib.scoring.dynamic import DEFAULT_TEMPLATES, SourcePairs, dynamic_scores
from lib.scoring.operations import operation_scores
from lib.scoring.relations import relation_names, tokenize_relations

HEADER = (
    "| model (layers×heads, d_model, vocab rows) | relations | distinct sources × templates "
    "(prompts) | dynamic, all heads (s) | static, all heads (s) | dynamic / static |\n"
    "|---|---|---|---|---|---|"
)


def bench_model(spec: ModelSpec, repeats: int) -> dict[str, Any]:
    """Timings of dynamic and static scores of every head of `spec`'s model."""
    loaded = load(spec)
    relations, skipped = tokenize_relations(loaded.tokenizer, relation_names())
    device = loaded.device
    n_sources = len(SourcePairs.build(relations, device).sources)
    dynamic, _ = time_call(lambda: dynamic_scores(loaded, relations), device, repeats, False)
    static, _ = time_call(lambda: operation_scores(loaded.model, relations), device, repeats)
    config = loaded.model.config
    return {
        "name": spec.name,
        "shape": list(spec.shape),
        "vocab_rows": spec.vocab_rows,
        "dtype": spec.dtype,
        "heads": config.num_hidden_layers * config.num_attention_heads,
        "relations": len(relations),
        "skipped_relations": [s.name for s in skipped],
        "distinct_sources": n_sources,
        "templates": len(DEFAULT_TEMPLATES),
        "prompts": n_sources * len(DEFAULT_TEMPLATES),
        "dynamic_s": dynamic.median,
        "dynamic_runs_s": list(dynamic.runs),
        "static_s": static.median,
        "static_runs_s": list(static.runs),
    }


def markdown(report: dict[str, Any]) -> str:
    described = ", ".join(f"{key} {value}" for key, value in report["machine"].items())
    lines = [f"Machine: {described}. Medians of {report['repeats']} run(s).", "", HEADER]
    for row in report["results"]:
        layers, heads, d_model = row["shape"]
        lines.append(
            f"| {row['name']} ({layers}×{heads}, d {d_model}, V {row['vocab_rows']}) "
            f"| {row['relations']} | {row['distinct_sources']} × {row['templates']} "
            f"({row['prompts']}) | {row['dynamic_s']:.3g} | {row['static_s']:.3g} "
            f"| {row['dynamic_s'] / row['static_s']:.1f}× |"
        )
    return "\n".join(lines) + "\n"


def model_arguments(
    prog: str, description: str, default_sizes: str, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, list[ModelSpec], torch.device]:
    """The options of a model benchmark (`--device --sizes --shape --vocab-rows --repeats
    --build --out`), the models they name (float32) and the device."""
    parser = CliParser(prog=prog, description=description)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", help=f"Pythia sizes (default {default_sizes})")
    parser.add_argument("--shape", help="LAYERS,HEADS,D_MODEL instead of --sizes, e.g. 2,4,64")
    parser.add_argument("--vocab-rows", type=int, help="default: the size's, or the tokenizer's")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs (median)")
    parser.add_argument("--build", choices=["checkpoint", "memory"], default="memory")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise InputError("--repeats must be at least 1")
    sizes = args.sizes or (None if args.shape else default_sizes)
    specs = model_specs(args.device, sizes, args.shape, args.vocab_rows, "float32", args.build)
    return args, specs, resolve_device(args.device)


def main(argv: Sequence[str] | None = None) -> int:
    args, specs, device = model_arguments(
        "python -m bench.dynamic", __doc__.split("\n")[0], "70m,160m", argv
    )
    results = []
    for spec in specs:
        print(f"{spec.name}: dynamic and static scores", file=sys.stderr, flush=True)
        results.append(bench_model(spec, args.repeats))
    report = {"machine": machine(device), "repeats": args.repeats, "results": results}
    paths = write_results(report, markdown(report), args.out, f"dynamic-{device.type}")
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
