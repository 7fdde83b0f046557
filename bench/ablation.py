"""Benchmark: the causal check (`lib.scoring.ablation.ablation_curves`) of every relation.

    python -m bench.ablation [--device cpu|cuda] [--sizes 70m | --shape L,H,D]
        [--vocab-rows N] [--repeats N] [--build checkpoint|memory] [--out bench/results]

On the seeded random Pythia-shaped models of `bench.tasks` (Pythia's vocabulary rows, the
synthetic tokenizer), per model: the median time of the three curves of every valid relation
with the defaults (each relation's template, the model's max-heads rule, 5 random draws, up
to 5 control tasks), static scores included, as `python -m lib.ablate --relations all` runs
them after loading. No warm-up call. Results go to `<out>/ablation-<device>-<date>.json` and
`.md` (and `latest-ablation-<device>.md`); the table is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bench.dynamic import model_arguments
from bench.measure import machine, time_call
from bench.report import machine_line, write_results
from bench.tasks import ModelSpec, load
from lib.core.errors import run_cli
from lib.scoring.ablation import ablation_curves
from lib.scoring.relations import relation_names

HEADER = (
    "| model (layers×heads, d_model, vocab rows) | relations | curve points (head sets × "
    "prompts run) | causal check, all relations (s) |\n|---|---|---|---|"
)


def bench_model(spec: ModelSpec, repeats: int) -> dict[str, Any]:
    """Timing of the causal check of every relation of `spec`'s model."""
    loaded = load(spec)
    timing, result = time_call(
        lambda: ablation_curves(loaded, relation_names()), loaded.device, repeats, False
    )
    config = loaded.model.config
    n_prompts = {r["name"]: r["n_pairs"] for r in result.settings["relations"]}
    ran_on = result.curves["curve"].str.removeprefix("control:")
    ran_on = ran_on.where(~result.curves["curve"].str.startswith("control:"), other=None)
    tasks = ran_on.fillna(result.curves["relation"])
    return {
        "name": spec.name,
        "shape": list(spec.shape),
        "vocab_rows": spec.vocab_rows,
        "dtype": spec.dtype,
        "heads": config.num_hidden_layers * config.num_attention_heads,
        "relations": len(result.summary),
        "skipped_relations": [s.name for s in result.skipped],
        "curve_points": len(result.curves),
        "prompt_runs": int(tasks.map(n_prompts).sum()),
        "ablation_s": timing.median,
        "ablation_runs_s": list(timing.runs),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [machine_line(report["machine"]), f"Medians of {report['repeats']} run(s).", ""]
    lines.append(HEADER)
    for row in report["results"]:
        layers, heads, d_model = row["shape"]
        lines.append(
            f"| {row['name']} ({layers}×{heads}, d {d_model}, V {row['vocab_rows']}) "
            f"| {row['relations']} | {row['curve_points']} ({row['prompt_runs']}) "
            f"| {row['ablation_s']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args, specs, device = model_arguments(
        "python -m bench.ablation", __doc__.split("\n")[0], "70m", argv
    )
    results = []
    for spec in specs:
        print(f"{spec.name}: causal check, all relations", file=sys.stderr, flush=True)
        results.append(bench_model(spec, args.repeats))
    report = {"machine": machine(device), "repeats": args.repeats, "results": results}
    paths = write_results(report, markdown(report), args.out, f"ablation-{device.type}")
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
