"""Whole-process timing: `python -m lib.classify` against the plain per-head loop script, each a
fresh process (interpreter start, imports, loading the checkpoint, scoring, writing the table).

    python -m bench.process [--size 14m] [--orders vo_first,left_to_right] [--repeats 3]
        [--out bench/results]

On the size's seeded random checkpoint (`bench/checkpoints/`, as `bench.run` builds it), CPU,
all relations, no attention patterns: one untimed engine run (the files enter the page cache),
then `--repeats` rounds, each running every command once in turn (interleaved, so a change in
the machine's load hits all of them alike); medians. Also the import cost: the median wall
time of `python -c "import lib.classify"` and the top importers of one
`python -X importtime -c "import lib.classify"`. Writes `<out>/process-cpu-<date>.json`, `.md`
and `<out>/latest-process-cpu.md`.
"""

from __future__ import annotations

import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.measure import machine, run_python
from bench.report import machine_line, write_results
from bench.tasks import size_checkpoint
from lib.core.catalog import pythia_size
from lib.core.errors import CliParser, InputError, run_cli
from tests.reference import LOOP_ORDERS

BENCH_DIR = Path(__file__).resolve().parent
IMPORT = "import lib.classify"
TOP_IMPORTERS = 10


def timed(args: list[str], cache_dir: str) -> float:
    """Wall seconds of `python *args` run to completion (`bench.measure.run_python`)."""
    start = time.perf_counter()
    run_python(args, cache_dir)
    return time.perf_counter() - start


def import_profile(cache_dir: str) -> dict[str, Any]:
    """`python -X importtime -c "import lib.classify"`: the total (microseconds, cumulative, of
    `lib.classify`) and the `TOP_IMPORTERS` other top-level packages by cumulative time, each
    counted where it was first imported (its cumulative time includes what it imported first)."""
    run = run_python(["-X", "importtime", "-c", IMPORT], cache_dir)
    by_package: dict[str, int] = {}
    total = 0
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        module = name.strip()
        package = module.split(".")[0]
        by_package[package] = max(by_package.get(package, 0), int(cumulative))
        if module == "lib.classify":
            total = int(cumulative)
    by_package.pop("lib")  # the total itself
    top = sorted(by_package.items(), key=lambda item: -item[1])[:TOP_IMPORTERS]
    return {"lib.classify_us": total, "top": [{"package": p, "us": us} for p, us in top]}


def command_lines(folder: str, out: str, orders: list[str]) -> dict[str, list[str]]:
    """The timed commands' arguments after `python`, by name; tables go under `out`."""
    engine = ["-m", "lib.classify", "--model", folder, "--device", "cpu", "--no-patterns"]
    loop = ["-m", "bench.loop", "--model", folder, "--order"]
    return {
        "engine": [*engine, "--out", f"{out}/engine.csv"],
        **{f"loop {o}": [*loop, o, "--out", f"{out}/{o}.csv"] for o in orders},
        "import": ["-c", IMPORT],
    }


def markdown(report: dict[str, Any]) -> str:
    layers, heads, d_model = report["shape"]
    engine = report["commands"]["engine"]["median"]
    rows = []
    for name, command in report["commands"].items():
        ratio = f"{command['median'] / engine:.1f}×" if name.startswith("loop") else ""
        runs = ", ".join(f"{run:.3g}" for run in command["runs"])
        shown = shlex.join(command["shown"])
        rows.append(f"| `{shown}` | {command['median']:.3g} | {runs} | {ratio} |")
    profile = report["import_profile"]
    top = ", ".join(f"{t['package']} {t['us'] / 1e6:.2f}" for t in profile["top"])
    return "\n".join(
        [
            machine_line(report["machine"]),
            "",
            f"Whole process, {report['size']} shape ({layers}×{heads}, d {d_model}, "
            f"V {report['vocab_rows']}), float32 on CPU, every relation, no attention "
            f"patterns; median of {report['repeats']} interleaved rounds after one untimed "
            "engine run.",
            "",
            "| command | median (s) | runs (s) | loop ÷ engine |",
            "|---|---|---|---|",
            *rows,
            "",
            f'Import profile (`python -X importtime -c "{IMPORT}"`, one run): lib.classify '
            f"{profile['lib.classify_us'] / 1e6:.2f} s cumulative; top packages by cumulative "
            f"seconds, each where first imported: {top}.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m bench.process", description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="14m", help="a Pythia size, e.g. 14m")
    parser.add_argument("--orders", default=",".join(LOOP_ORDERS), help="loop orders to run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    orders = [order.strip() for order in args.orders.split(",")]
    unknown = [order for order in orders if order not in LOOP_ORDERS]
    if unknown or args.repeats < 1:
        raise InputError(
            f"--orders: use {', '.join(LOOP_ORDERS)}; --repeats: at least 1 (got "
            f"{args.orders!r}, {args.repeats})"
        )
    size = pythia_size(args.size)
    folder = str(size_checkpoint(size.name))
    with tempfile.TemporaryDirectory() as scratch:
        commands = command_lines(folder, scratch, orders)
        timed(commands["engine"], scratch)
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeats):
            for name, command in commands.items():
                print(f"round {round_ + 1}: {name}", file=sys.stderr, flush=True)
                runs[name].append(timed(command, scratch))
        profile = import_profile(scratch)
    report = {
        "machine": machine(torch.device("cpu")),
        "size": size.name,
        "shape": (size.n_layers, size.n_heads, size.d_model),
        "vocab_rows": size.vocab_rows,
        "repeats": args.repeats,
        "commands": {
            name: {
                "shown": ["python", *shown],
                "median": statistics.median(runs[name]),
                "runs": runs[name],
            }
            for name, shown in command_lines("FOLDER", ".", orders).items()
        },
        "import_profile": profile,
    }
    write_results(report, markdown(report), args.out, "process-cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
