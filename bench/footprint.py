"""The app's memory on a CPU host (Streamlit Community Cloud): the process's RSS after
classifying a model through the real Classify heads page.

    python -m bench.footprint [--sizes 70m,160m] [--out bench/results]

For each size, a fresh Python process (nothing imported before) drives the app headless with
`streamlit.testing.v1.AppTest`, as a visitor would: open the home page, switch to Classify
heads, choose the size's seeded random checkpoint folder (`bench/checkpoints/`, same shapes
and float32 weights as the hub's model), press Run with the page's defaults (every relation,
attention patterns), with an empty result cache. AppTest runs the page in that process, so its
RSS is the app server's. Recorded (bytes): `rss_page` with the page open before Run,
`rss_after` once the table shows (the model stays resident: `lib.runs.resident`), and `peak` (the
kernel's high-water mark, `ru_maxrss`). Writes `<out>/footprint-cpu-<date>.json`, `.md` and
`<out>/latest-footprint-cpu.md`.

    python -m bench.footprint --cli [--sizes 410m,1b,2.8b] [--paths whole,streamed]
        [--workloads static,patterns] [--path-args NAME=ARGS ...] [--checkpoints DIR]

The command instead of the page, on checkpoints stored as the hub stores them (bfloat16
safetensors, hub names and config, sharded past 5 GB: `bench.tasks.hub_size_checkpoint`): for
each size, workload (`static`: `--no-patterns`; `patterns`: static + attention patterns, the
default) and weight path (`WEIGHT_PATHS`: the arguments that choose how `lib.classify` reads
the weights; `--path-args whole=` runs a command without that option), `python -m lib.classify
--model FOLDER --device cpu` runs in a fresh process under `bench.peak_rss`, with an empty
result cache; recorded: its peak RSS (`ru_maxrss` of that process alone) and wall time from
start to exit. Writes `<out>/footprint-cli-cpu-<date>.json`, `.md` and
`<out>/latest-footprint-cli-cpu.md`.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import torch

from bench.measure import fresh_env, machine, run_python
from bench.report import machine_line, write_results
from bench.tasks import CHECKPOINTS, hub_size_checkpoint, size_checkpoint
from lib.core.catalog import pythia_size
from lib.core.errors import CliParser, InputError, run_cli

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PAGE_TIMEOUT_S = 1800  # a 160m model with patterns on a loaded 2-core machine takes minutes


def classify_in_this_process(folder: str) -> dict[str, int]:
    """Drive the page on `folder` here (call it in a fresh process); RSS before and after."""
    from tests.test_classify_page import button, choose_folder, open_page  # needs streamlit

    app = choose_folder(open_page(), folder)
    app.default_timeout = PAGE_TIMEOUT_S
    rss_page = psutil.Process().memory_info().rss
    button(app, "Run").click().run()
    if app.exception or app.error or not app.dataframe:
        raise RuntimeError(f"the page did not show a table for {folder}: {app.error}")
    return {
        "rss_page": rss_page,
        "rss_after": psutil.Process().memory_info().rss,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
    }


def classify_in_fresh_process(folder: str) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as cache:
        run = run_python(["-m", "bench.footprint", "--child", folder], cache)
    return json.loads(run.stdout.splitlines()[-1])


def markdown(report: dict[str, Any]) -> str:
    rows = [
        f"| {r['size']} | {r['n_params'] / 1e6:,.0f} M | {r['rss_page'] / 2**20:,.0f} | "
        f"{r['rss_after'] / 2**20:,.0f} | {r['peak'] / 2**20:,.0f} |"
        for r in report["results"]
    ]
    return "\n".join(
        [
            machine_line(report["machine"]),
            "",
            "App process memory (MiB) classifying a Pythia-shaped float32 checkpoint through the "
            "Classify heads page on CPU (AppTest in a fresh process, page defaults: every "
            "relation, attention patterns; empty result cache).",
            "",
            "| size | parameters | RSS, page open | RSS after classifying | peak RSS |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m bench.footprint", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", help=f"Pythia sizes (default: 70m,160m; with --cli: {CLI_SIZES})"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--cli", action="store_true", help="measure python -m lib.classify")
    parser.add_argument("--paths", default=",".join(WEIGHT_PATHS), help="--cli: weight paths")
    parser.add_argument(
        "--path-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="--cli: the classify arguments of weight path NAME (e.g. whole= for none)",
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="--cli: workloads")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS, help="--cli: cache")
    # Internal: drive the page on this folder in this process and print the JSON.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(classify_in_this_process(args.child)))
        return 0
    if args.cli:
        return cli_main(args)
    results = []
    for name in (args.sizes or "70m,160m").split(","):
        size = pythia_size(name.strip())
        folder = str(size_checkpoint(size.name))
        print(f"{size.name}: classifying through the page", file=sys.stderr, flush=True)
        memory = classify_in_fresh_process(folder)
        results.append({"size": size.name, "n_params": size.n_params, **memory})
    report = {"machine": machine(torch.device("cpu")), "results": results}
    write_results(report, markdown(report), args.out, "footprint-cpu")
    return 0


# --- The command: python -m lib.classify in fresh processes -------------------------------------

CLI_SIZES = "410m,1b,2.8b"
CLASSIFY = ("-m", "lib.classify")
WEIGHT_PATHS: dict[str, tuple[str, ...]] = {
    "whole": ("--weights", "whole"),
    "streamed": ("--weights", "streamed"),
}
"""`lib.classify`'s arguments for each way of reading the weights: `whole` loads the model
through transformers (the old path, the baseline of the ratios), `streamed` reads one layer at a
time (issue 21)."""
BASELINE = "whole"
WORKLOADS: dict[str, tuple[str, ...]] = {"static": ("--no-patterns",), "patterns": ()}
"""`static`: operation scores only; `patterns`: the CLI's default, static + attention patterns."""
LOG_TAIL = 2000  # characters of a failed run's output kept in the report


def choose(names: str, known: dict[str, object], option: str) -> list[str]:
    """The comma-separated `names`, each one of `known`."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise InputError(f"{option}: use some of {', '.join(known)} (got {names!r})")
    return chosen


def weight_paths(names: str, overrides: list[str]) -> dict[str, tuple[str, ...]]:
    """The chosen paths' classify arguments, `NAME=ARGS` overrides (shell-split) applied."""
    paths = dict(WEIGHT_PATHS)
    for override in overrides:
        name, equals, text = override.partition("=")
        if not equals or name not in paths:
            raise InputError(f"--path-args: expected NAME=ARGS, NAME one of {', '.join(paths)}")
        paths[name] = tuple(shlex.split(text))
    return {name: paths[name] for name in choose(names, paths, "--paths")}


def classify_args(
    program: Sequence[str], folder: Path, workload: str, extra: Sequence[str], out: Path
) -> list[str]:
    """The measured command after `python`: `PROGRAM --model FOLDER --device cpu ... --out OUT`."""
    model = ["--model", str(folder), "--device", "cpu"]
    return [*program, *model, *WORKLOADS[workload], *extra, "--out", str(out)]


def measure_command(argv: list[str], scratch: Path) -> dict[str, Any]:
    """Peak RSS and wall time of `argv` run to exit under `bench.peak_rss` (fresh process, empty
    result cache in `scratch`), its return code, and its output's tail when it failed."""
    log, cache = scratch / "output.log", scratch / "cache"
    cache.mkdir()
    wrapper = [sys.executable, "-m", "bench.peak_rss", str(log), "--", *argv]
    run = subprocess.run(
        wrapper, env=fresh_env(str(cache)), cwd=REPO, check=True, capture_output=True, text=True
    )
    result = json.loads(run.stdout.splitlines()[-1])
    if result["returncode"]:
        result["output_tail"] = log.read_text(errors="replace")[-LOG_TAIL:]
    return result


def cli_runs(
    folders: dict[str, Path],
    paths: dict[str, tuple[str, ...]],
    workloads: list[str],
    program: Sequence[str] = CLASSIFY,
) -> list[dict[str, Any]]:
    """One measured run of `program` per size (`folders`), workload and weight path, in that
    nesting (a size's paths run back to back, on the same files in the page cache)."""
    results = []
    for size, folder in folders.items():
        for workload in workloads:
            for path, extra in paths.items():
                print(f"{size} {workload} {path}", file=sys.stderr, flush=True)
                with tempfile.TemporaryDirectory() as scratch:
                    args = classify_args(program, folder, workload, extra, Path(scratch) / "h.csv")
                    measured = measure_command([sys.executable, *args], Path(scratch))
                shown = classify_args(program, Path("FOLDER"), workload, extra, Path("heads.csv"))
                results.append(
                    {
                        "size": size,
                        "path": path,
                        "workload": workload,
                        "command": ["python", *shown],
                        **measured,
                    }
                )
    return results


def checkpoint_summary(folder: Path) -> dict[str, Any]:
    """What a measured folder holds: its safetensors files and their total bytes."""
    files = sorted(folder.glob("*.safetensors"))
    return {
        "folder": folder.name,
        "files": [file.name for file in files],
        "bytes": sum(file.stat().st_size for file in files),
    }


def ratio_cells(row: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    """Baseline ÷ this row (peak RSS, time), for a successful non-baseline row whose size and
    workload have a successful baseline run."""
    base = next(
        (
            r
            for r in results
            if (r["size"], r["workload"], r["path"]) == (row["size"], row["workload"], BASELINE)
        ),
        None,
    )
    if row["path"] == BASELINE or base is None or base["returncode"] or row["returncode"]:
        return ["", ""]
    return [
        f"{base['peak_rss_bytes'] / row['peak_rss_bytes']:.1f}×",
        f"{base['seconds'] / row['seconds']:.1f}×",
    ]


def cli_markdown(report: dict[str, Any]) -> str:
    rows = []
    for r in report["results"]:
        checkpoint = report["checkpoints"][r["size"]]
        stored = f"{checkpoint['bytes'] / 1e9:.2f} GB in {len(checkpoint['files'])} file(s)"
        if r["returncode"]:
            measured = [f"failed (exit {r['returncode']})", ""]
        else:
            measured = [f"{r['peak_rss_bytes'] / 2**20:,.0f}", f"{r['seconds']:.1f}"]
        cells = [
            r["size"],
            stored,
            r["path"],
            r["workload"],
            *measured,
            *ratio_cells(r, report["results"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    paths = "; ".join(
        f"{name}: `{shlex.join(args) or '(none)'}`" for name, args in report["paths"].items()
    )
    return "\n".join(
        [
            machine_line(report["machine"]),
            "",
            "`python -m lib.classify --model FOLDER --device cpu --out heads.csv`, each run a "
            "fresh process with an empty result cache, on seeded random Pythia-shaped checkpoints "
            "stored as the hub stores them (bfloat16 safetensors, hub names and config.json, "
            "sharded past 5 GB; Pythia's tokenizer). Workloads: static = `--no-patterns` "
            "(operation scores of every relation), patterns = the default (static + attention "
            f"patterns). Weight paths' arguments: {paths}. Peak RSS: the process's `ru_maxrss` "
            "(bench/peak_rss.py); time: wall seconds from start to exit, one run each. Ratios: "
            f"{BASELINE} ÷ this path, same size and workload.",
            "",
            f"| size | checkpoint | weights | workload | peak RSS (MiB) | time (s) | "
            f"RSS {BASELINE} ÷ this | time {BASELINE} ÷ this |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def cli_main(args: argparse.Namespace) -> int:
    """`--cli`: measure the command (module docstring); exit 1 when a run failed."""
    sizes = [pythia_size(name.strip()).name for name in (args.sizes or CLI_SIZES).split(",")]
    paths = weight_paths(args.paths, args.path_args)
    workloads = choose(args.workloads, WORKLOADS, "--workloads")
    folders = {size: hub_size_checkpoint(size, root=args.checkpoints) for size in sizes}
    report = {
        "machine": machine(torch.device("cpu")),
        "paths": paths,
        "workloads": {name: WORKLOADS[name] for name in workloads},
        "checkpoints": {size: checkpoint_summary(folder) for size, folder in folders.items()},
    }
    report["results"] = cli_runs(folders, paths, workloads)
    write_results(report, cli_markdown(report), args.out, "footprint-cli-cpu")
    return int(any(r["returncode"] for r in report["results"]))


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
