"""Benchmark: the engine's head scores side by side with the per-head reference loops.

    python -m bench.run [--device cpu|cuda] [--sizes 14m,70m,160m | --shape L,H,D]
        [--vocab-rows N] [--dtypes float32,bfloat16] [--repeats N]
        [--reference-max-seconds S] [--build checkpoint|memory] [--out bench/results]

First the machine's float32 matmul rate at each shape's logits matmul and its memory bandwidth
(`bench/limits.py`). Then, for each model shape and dtype, on the same seeded random
Pythia-shaped model and inputs:

- operation scores of every head for every relation valid for the tokenizer: the engine
  (`lib.scoring.relations.tokenize_relations` + `lib.scoring.operations.operation_scores`) against
  its floor (`bench.limits.logits_floor`) and against the per-head, per-relation loop of
  `tests/reference.py` in both loop orders (`LOOP_ORDERS`: left to right, and the OV matrix
  first), each checked identical in float32 (max |difference| in reduced precision). A loop is
  skipped when one head's time, times the number of heads, exceeds `--reference-max-seconds`;
  the estimate is reported instead.
- attention-pattern scores: `lib.scoring.patterns.pattern_scores` (one batched pass) against the
  per-prompt, per-head loop of `tests/reference.py`, on the same random tokens (estimated from
  one prompt, skipped the same way).

`bench/measure.py` says how time, memory and FLOP/s are measured. Results go to
`<out>/<device>-<date>.json` and `.md`, and `<out>/latest-<device>.md`; the table is printed.
Exit code 1 when a float32 comparison disagrees.
"""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.limits import logits_floor, measure_rates
from bench.measure import Timing, machine, operation_flops, peak_flops, time_call
from bench.report import write_report
from bench.tasks import (
    ModelSpec,
    all_heads,
    engine_operations,
    engine_patterns,
    load,
    peak_extra,
    probe_head,
    reference_operations,
    reference_patterns,
)
from lib.checkpoints.loader import DTYPES, LoadedModel, resolve_device
from lib.core.catalog import pythia_size
from lib.core.errors import CliParser, InputError, run_cli
from lib.fixtures.pythia_tokenizer import PYTHIA_TOKENIZER_SIZE
from lib.scoring.operations import OperationScores
from lib.scoring.patterns import DEFAULT_PATTERN_SETTINGS
from lib.scoring.relations import relation_names, tokenize_relations
from lib.synthetic import parse_shape
from tests.reference import LOOP_ORDERS

BENCH_DIR = Path(__file__).resolve().parent
DEVICE_DEFAULTS = {
    # device: (sizes, dtypes, how the model is built)
    "cpu": ("14m,70m,160m", "float32", "checkpoint"),
    # A 12b float32 checkpoint is ~48 GB: on a GPU the random weights are drawn on the card.
    "cuda": ("1.4b,6.9b,12b", "bfloat16,float32", "memory"),
}
BUILDS = ("checkpoint", "memory")


def budgeted_runs(estimate: float, repeats: int, max_seconds: float) -> int:
    """Timed runs of a reference taking about `estimate` s: `repeats`, or as many as fit in
    `max_seconds`, at least 1."""
    return max(1, min(repeats, int(max_seconds // max(estimate, 1e-9))))


def compare(engine: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    return {
        "identical": bool(np.array_equal(engine, reference)),
        "max_abs_diff": float(np.abs(engine - reference).max()),
    }


def bench_loop(
    loop: Callable[[], np.ndarray],
    probe: Callable[[], Any],
    scale: int,
    engine: tuple[Callable[[], Any], Timing, np.ndarray],
    device: torch.device,
    repeats: int,
    max_seconds: float,
) -> dict[str, Any]:
    """A reference loop next to the engine (its call, timing and result). `probe` (one head,
    or one prompt: also the loop's warm-up) times `scale` estimates the loop; it runs when the
    estimate fits `max_seconds`, as many times as fit (at least once), each run followed by
    one engine run, and its result is compared with the engine's. The speed-up divides the
    loop's median by the median of those engine runs and of the engine's own timed runs: a
    shared machine's speed drifts over the minutes a slow loop takes, and the engine runs
    beside the loop's see the same machine it did."""
    probe_time, _ = time_call(probe, device, 1, warm_up=False)
    estimate = probe_time.median * scale
    result: dict[str, Any] = {"estimate_s": estimate, "time": None, "speedup": None}
    if estimate <= max_seconds:
        engine_call, engine_time, engine_scores = engine
        loop_runs, engine_runs, scores = [], list(engine_time.runs), None
        for _ in range(budgeted_runs(estimate, repeats, max_seconds)):
            loop_time, scores = time_call(loop, device, 1, warm_up=False)
            loop_runs += loop_time.runs
            engine_runs += time_call(engine_call, device, 1, warm_up=False)[0].runs
        timing = Timing(statistics.median(loop_runs), tuple(loop_runs))
        beside = Timing(statistics.median(engine_runs), tuple(engine_runs))
        result |= {
            "time": asdict(timing),
            "engine_beside": asdict(beside),
            "speedup": timing.median / beside.median,
            **compare(engine_scores, scores),
        }
    return result


def bench_operations(
    spec: ModelSpec,
    loaded: LoadedModel,
    rates: dict[str, float],
    repeats: int,
    reference_max_seconds: float,
) -> dict[str, Any]:
    relations, skipped = tokenize_relations(loaded.tokenizer, relation_names())
    names = tuple(r.name for r in relations)
    heads, device, config = all_heads(loaded), loaded.device, loaded.model.config

    def call() -> OperationScores:
        return engine_operations(loaded, names)

    engine_time, engine = time_call(call, device, repeats)
    # As the loops return them: [promotion, suppression] x heads x relations.
    ours = np.stack([engine.promotion, engine.suppression]).reshape(2, len(heads), len(names))
    loops = {
        order: bench_loop(
            lambda order=order: reference_operations(loaded, names, heads, order),
            lambda order=order: reference_operations(loaded, names, probe_head(loaded), order),
            len(heads),
            (call, engine_time, ours),
            device,
            repeats,
            reference_max_seconds,
        )
        for order in LOOP_ORDERS
    }
    n_sources = len({token for relation in relations for token in relation.src})
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    d_model, vocab = config.hidden_size, config.vocab_size
    floor = logits_floor(n_layers, n_heads, d_model // n_heads, n_sources, vocab, rates)
    flops = operation_flops(n_layers, n_heads, d_model, vocab, n_sources, config.intermediate_size)
    peak = peak_flops(device)
    return {
        "relations": len(names),
        "skipped_relations": [asdict(s) for s in skipped],
        "heads": len(heads),
        "sources": n_sources,
        "engine": asdict(engine_time),
        "floor": {**asdict(floor), "seconds": floor.seconds},
        "engine_over_floor": engine_time.median / floor.seconds,
        "loops": loops,
        "flops": flops,
        "flops_per_s": flops / engine_time.median,
        "peak_flops": peak,
        "fraction_of_peak": flops / engine_time.median / peak if peak else None,
        "engine_peak_extra_bytes": peak_extra(spec, loaded, "engine_operations", names),
        "engine_peak_extra_bytes_one_relation": peak_extra(
            spec, loaded, "engine_operations", names[:1]
        ),
        "loop_peak_extra_bytes_one_head": peak_extra(spec, loaded, "reference_operations", names),
    }


def bench_patterns(
    spec: ModelSpec, loaded: LoadedModel, repeats: int, reference_max_seconds: float
) -> dict[str, Any]:
    device, settings = loaded.device, DEFAULT_PATTERN_SETTINGS

    def call() -> np.ndarray:
        return engine_patterns(loaded)

    engine = time_call(call, device, repeats)
    loop = bench_loop(
        lambda: reference_patterns(loaded, settings.batch),
        lambda: reference_patterns(loaded, 1),
        settings.batch,
        (call, *engine),
        device,
        repeats,
        reference_max_seconds,
    )
    return {
        "settings": asdict(settings),
        "engine": asdict(engine[0]),
        "loop": loop,
        "engine_peak_extra_bytes": peak_extra(spec, loaded, "engine_patterns", ()),
        "loop_peak_extra_bytes_one_prompt": peak_extra(spec, loaded, "reference_patterns", ()),
    }


def bench_model(
    spec: ModelSpec,
    rates: dict[str, float],
    repeats: int,
    reference_max_seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    log(f"{spec.name} {spec.dtype}: loading")
    loaded = load(spec)
    log(f"{spec.name} {spec.dtype}: operation scores")
    operations = bench_operations(spec, loaded, rates, repeats, reference_max_seconds)
    log(f"{spec.name} {spec.dtype}: pattern scores")
    patterns = bench_patterns(spec, loaded, repeats, reference_max_seconds)
    device = loaded.device
    del loaded
    release(device)
    return {**asdict(spec), "operations": operations, "patterns": patterns}


def release(device: torch.device) -> None:
    """Free the last model before the next one is built (a 12b float32 model is ~48 GB)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def model_specs(
    device: str,
    sizes: str | None,
    shape: str | None,
    vocab_rows: int | None,
    dtypes: str,
    build: str,
) -> list[ModelSpec]:
    if sizes and shape:
        raise InputError("give --sizes or --shape, not both")
    if shape:
        dims = parse_shape(shape)
        named = [("x".join(map(str, dims)), dims, vocab_rows or PYTHIA_TOKENIZER_SIZE)]
    else:
        catalog = [pythia_size(size.strip()) for size in sizes.split(",")]
        named = [
            (s.name, (s.n_layers, s.n_heads, s.d_model), vocab_rows or s.vocab_rows)
            for s in catalog
        ]
    if vocab_rows is not None and vocab_rows < PYTHIA_TOKENIZER_SIZE:
        raise InputError(f"--vocab-rows {vocab_rows} < tokenizer size {PYTHIA_TOKENIZER_SIZE}")
    chosen = [dtype.strip() for dtype in dtypes.split(",")]
    unknown = [dtype for dtype in chosen if dtype not in DTYPES or dtype == "auto"]
    if unknown:
        raise InputError(f"--dtypes: unknown {', '.join(unknown)}; use float32,bfloat16,float16")
    return [
        ModelSpec(name, dims, rows, dtype, device, build)
        for name, dims, rows in named
        for dtype in chosen
    ]


def build_parser() -> CliParser:
    parser = CliParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=list(DEVICE_DEFAULTS))
    parser.add_argument("--sizes", help="Pythia sizes, e.g. 14m,70m (default: per device)")
    parser.add_argument("--shape", help="LAYERS,HEADS,D_MODEL instead of --sizes, e.g. 2,4,64")
    parser.add_argument("--vocab-rows", type=int, help="default: the size's, or the tokenizer's")
    parser.add_argument("--dtypes", help="e.g. float32,bfloat16 (default: per device)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--reference-max-seconds", type=float, default=300.0)
    parser.add_argument("--build", choices=BUILDS, help="default: checkpoint on CPU, else memory")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise InputError("--repeats must be at least 1")
    sizes, dtypes, build = DEVICE_DEFAULTS[args.device]
    device = resolve_device(args.device)
    specs = model_specs(
        args.device,
        args.sizes or (None if args.shape else sizes),
        args.shape,
        args.vocab_rows,
        args.dtypes or dtypes,
        args.build or build,
    )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    shapes = {(s.shape[2] // s.shape[1], s.vocab_rows) for s in specs}
    log(f"measuring the machine's rates: matmul {sorted(shapes)}, copy, read")
    rates = measure_rates(device, shapes)
    results = [bench_model(s, rates, args.repeats, args.reference_max_seconds, log) for s in specs]
    report = {
        "machine": machine(device),
        "rates": rates,
        "repeats": args.repeats,
        "results": results,
    }
    paths = write_report(report, args.out)
    log(f"wrote {', '.join(map(str, paths))}")
    # Patterns are batched vs one prompt at a time: rounding differs, so only the operation
    # scores (counts of comparisons) must be identical.
    disagree = [
        f"{r['name']} ({order})"
        for r in results
        for order, loop in r["operations"]["loops"].items()
        if r["dtype"] == "float32" and loop["time"] is not None and not loop["identical"]
    ]
    if disagree:
        log(f"engine and reference disagree in float32: {', '.join(disagree)}")
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
