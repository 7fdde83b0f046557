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


def agreement(loops: dict[str, dict[str, Any]], dtype: str) -> str:
    """Engine vs each loop that ran: identical, or the max |difference| (flagged in float32,
    where the operation scores must be identical; patterns round differently by design)."""
    verdicts = []
    for name, loop in loops.items():
        if loop["time"] is None:
            continue
        if loop["identical"]:
            verdict = "identical"
        else:
            flag = "DIFFER, " if dtype == "float32" else ""
            verdict = f"{flag}max \\|Δ\\| {loop['max_abs_diff']:.2g}"
        verdicts.append(verdict if len(loops) == 1 else f"{LOOP_NAMES[name]}: {verdict}")
    return "; ".join(verdicts) or "—"


def loop_cells(loop: dict[str, Any], engine: dict[str, Any]) -> list[str]:
    """A loop's time and its ratio to the engine, or its estimate when it was skipped."""
    if loop["time"] is None:
        estimate = loop["estimate_s"]
        return [f"skipped (est. {estimate:.3g})", f"~{estimate / engine['median']:.0f}× (est.)"]
    return [seconds(loop["time"]), f"{loop['speedup']:.1f}×"]


def throughput(result: dict[str, Any]) -> str:
    text = f"{result['flops_per_s'] / 1e9:,.0f} GFLOP/s"
    if result["fraction_of_peak"] is not None:
        text += f" ({result['fraction_of_peak']:.0%} of float32 peak)"
    return text


def table_rows(row: dict[str, Any]) -> list[list[str]]:
    """The operation and pattern lines of one model and dtype."""
    layers, heads, d_model = row["shape"]
    model = f"{row['name']} ({layers}×{heads}, d {d_model}, V {row['vocab_rows']})"
    ops, patterns = row["operations"], row["patterns"]
    loops = ops["loops"]
    settings = patterns["settings"]
    return [
        [
            model,
            row["dtype"],
            f"operations: {ops['heads']} heads × {ops['relations']} relations",
            seconds(ops["engine"]),
            f"{ops['floor']['seconds']:.3g}",
            f"{ops['engine_over_floor']:.2f}×",
            *loop_cells(loops["left_to_right"], ops["engine"]),
            *loop_cells(loops["vo_first"], ops["engine"]),
            agreement(loops, row["dtype"]),
            f"{mib(ops['engine_peak_extra_bytes'])} "
            f"(1 relation: {mib(ops['engine_peak_extra_bytes_one_relation'])})",
            f"{mib(ops['loop_peak_extra_bytes_one_head'])} (1 head)",
            throughput(ops),
        ],
        [
            "",
            "",
            f"patterns: {settings['batch']} prompts × {2 * settings['length']} tokens",
            seconds(patterns["engine"]),
            "",
            "",
            *loop_cells(patterns["loop"], patterns["engine"]),
            "",
            "",
            agreement({"patterns": patterns["loop"]}, "patterns"),
            mib(patterns["engine_peak_extra_bytes"]),
            f"{mib(patterns['loop_peak_extra_bytes_one_prompt'])} (1 prompt)",
            "",
        ],
    ]


LOOP_NAMES = {"left_to_right": "left to right", "vo_first": "OV first", "patterns": "patterns"}
HEADER = (
    "model (layers×heads, d_model, vocab rows)",
    "stored dtype",
    "scores",
    "engine (s)",
    "floor (s)",
    "engine ÷ floor",
    "loop, left to right (s)",
    "speed-up",
    "loop, OV first (s)",
    "speed-up",
    "engine vs loops",
    "engine peak extra memory",
    "loop peak extra memory",
    "engine matmul throughput",
)


def rates_line(rates: dict[str, float]) -> str:
    matmuls = [
        f"{key.split()[1]} {value / 1e9:,.1f} GFLOP/s"
        for key, value in rates.items()
        if key.startswith("matmul")
    ]
    return (
        f"Measured float32 rates: logits matmul (d_head×V) {', '.join(matmuls)}; copy "
        f"{rates['copy_bytes_per_s'] / 1e9:.1f} GB/s (read + written), read "
        f"{rates['read_bytes_per_s'] / 1e9:.1f} GB/s."
    )


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown: the machine, its rates, the side-by-side table, the columns."""
    rows = [line for row in report["results"] for line in table_rows(row)]
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(
        [
            machine_line(report["machine"]),
            "",
            rates_line(report["rates"]),
            "",
            *lines,
            "",
            f"Times: median of {report['repeats']} runs after a warm-up. Floor (bench/limits.py): "
            "every logit formed once at the measured matmul rate for its d_head, plus written and"
            " read once at the measured copy bandwidth; engine ÷ floor is how far the engine is "
            "from it. Loops (tests/reference.py), one head and one relation at a time: left to "
            "right `((X W_Vᵀ) W_Oᵀ) W_Uᵀ` as the published loop does, OV first `X (W_Vᵀ W_Oᵀ) "
            "W_Uᵀ`; patterns: one prompt and one head at a time. Each loop first runs one head "
            "(one prompt for patterns) as its warm-up and estimate; it is skipped (est. = that "
            "time × heads, or × prompts) when the estimate exceeds --reference-max-seconds, else "
            "run as many times as fit (at least 1), each run followed by one engine run; a "
            "speed-up is the loop's median over the median of the engine's timed runs and those "
            "(the machine's speed drifts over a slow loop's minutes). Engine operation time "
            "includes tokenizing the relations, as the loops do. Scores are computed in float32 "
            "whatever the stored dtype. Peak extra memory: beyond the loaded model, for one call "
            "(CPU: sampled RSS in a fresh process; CUDA: max_memory_allocated); a loop's for one "
            "head (left to right) or one prompt. Throughput: analytic matmul FLOPs of the "
            "engine's operation scores / median time; peak: the card's dense float32 datasheet "
            "figure (no TF32).",
            "",
        ]
    )


def machine_line(machine: dict[str, Any]) -> str:
    """What the figures were measured on, as one line."""
    return "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()) + "."


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    device = report["machine"]["device"].split(":")[0]
    return write_results(report, markdown(report), out, device)


def write_results(report: dict[str, Any], text: str, out: Path, kind: str) -> list[Path]:
    """Write `<out>/<kind>-<date>T<time>.json` (everything) and `.md` (`text`), and
    `<out>/latest-<kind>.md` (a second run the same day, say another dtype, keeps the first);
    print `text`."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{kind}-{datetime.now(UTC):%Y-%m-%dT%H%M}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), out / f"latest-{kind}.md"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(text)
    paths[2].write_text(text)
    print(text)
    return paths
