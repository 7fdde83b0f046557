"""The benchmark's results as Markdown (machine, side-by-side table, definitions) and files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def seconds(timing: dict[str, Any] | None) -> str:
    return "—" if timing is None else f"{timing['median']:.3g}"


def agreement(result: dict[str, Any], dtype: str) -> str:
    if result["reference"] is None:
        return "—"
    if result["identical"]:
        return "identical"
    verdict = "DIFFER, max \\|Δ\\|" if dtype == "float32" else "max \\|Δ\\|"
    return f"{verdict} {result['max_abs_diff']:.2g}"


def throughput(result: dict[str, Any]) -> str:
    text = f"{result['flops_per_s'] / 1e9:,.0f} GFLOP/s"
    if result["fraction_of_peak"] is not None:
        text += f" ({result['fraction_of_peak']:.0%} of peak)"
    return text


def table_rows(row: dict[str, Any]) -> list[list[str]]:
    """The operation and pattern lines of one model and dtype."""
    layers, heads, d_model = row["shape"]
    model = f"{row['name']} ({layers}×{heads}, d {d_model}, V {row['vocab_rows']})"
    ops, patterns = row["operations"], row["patterns"]
    if ops["reference"] is None:
        ops_reference = f"skipped (est. {ops['reference_estimate_s']:.0f})"
        ops_speedup = f"~{ops['reference_estimate_s'] / ops['engine']['median']:.0f}× (est.)"
    else:
        ops_reference = seconds(ops["reference"])
        ops_speedup = f"{ops['speedup']:.1f}×"
    settings = patterns["settings"]
    return [
        [
            model,
            row["dtype"],
            f"operations: {ops['heads']} heads × {ops['relations']} relations",
            seconds(ops["engine"]),
            ops_reference,
            ops_speedup,
            agreement(ops, row["dtype"]),
            f"{mib(ops['engine_peak_extra_bytes'])} "
            f"(1 relation: {mib(ops['engine_peak_extra_bytes_one_relation'])})",
            f"{mib(ops['reference_peak_extra_bytes_one_head'])} (1 head)",
            throughput(ops),
        ],
        [
            "",
            "",
            f"patterns: {settings['batch']} prompts × {2 * settings['length']} tokens",
            seconds(patterns["engine"]),
            seconds(patterns["reference"]),
            f"{patterns['speedup']:.1f}×",
            agreement(patterns, "patterns"),  # batched vs one prompt: rounding differs
            mib(patterns["engine_peak_extra_bytes"]),
            mib(patterns["reference_peak_extra_bytes"]),
            "",
        ],
    ]


HEADER = (
    "model (layers×heads, d_model, vocab rows)",
    "dtype",
    "scores",
    "engine (s)",
    "reference (s)",
    "speed-up",
    "engine vs reference",
    "engine peak extra memory",
    "reference peak extra memory",
    "engine matmul throughput",
)


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown: the machine, the side-by-side table, what the columns mean."""
    rows = [line for row in report["results"] for line in table_rows(row)]
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    described = ", ".join(f"{key} {value}" for key, value in report["machine"].items())
    return "\n".join(
        [
            f"Machine: {described}.",
            "",
            *lines,
            "",
            f"Times: median of {report['repeats']} runs after a warm-up. References: as many "
            "runs as fit in --reference-max-seconds (at least 1) after a warm-up; for the "
            "operation scores the warm-up is one head of layer 1, and the reference is skipped "
            "(est. = that head's time × heads) when the estimate exceeds the limit. Engine "
            "operation time includes tokenizing the relations, as the reference does. Peak "
            "extra memory: beyond the loaded model, for one call (CPU: sampled RSS in a fresh "
            "process; CUDA: max_memory_allocated); the reference's for one head. Throughput: "
            "analytic matmul FLOPs of the engine's operation scores / median time; peak "
            "FLOP/s from the card's datasheet (dense; float32 without TF32).",
            "",
        ]
    )


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    device = report["machine"]["device"].split(":")[0]
    # Date and time: a second run the same day (say, another dtype) keeps the first.
    stem = out / f"{device}-{datetime.now(UTC):%Y-%m-%dT%H%M}"
    text = markdown(report)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), out / f"latest-{device}.md"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(text)
    paths[2].write_text(text)
    return paths
