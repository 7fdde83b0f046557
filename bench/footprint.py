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
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import torch

from bench.measure import machine, run_python
from bench.report import machine_line, write_results
from bench.tasks import size_checkpoint
from lib.core.catalog import pythia_size
from lib.core.errors import CliParser, run_cli

BENCH_DIR = Path(__file__).resolve().parent
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
    parser.add_argument("--sizes", default="70m,160m", help="Pythia sizes, e.g. 70m,160m")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    # Internal: drive the page on this folder in this process and print the JSON.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(classify_in_this_process(args.child)))
        return 0
    results = []
    for name in args.sizes.split(","):
        size = pythia_size(name.strip())
        folder = str(size_checkpoint(size.name))
        print(f"{size.name}: classifying through the page", file=sys.stderr, flush=True)
        memory = classify_in_fresh_process(folder)
        results.append({"size": size.name, "n_params": size.n_params, **memory})
    report = {"machine": machine(torch.device("cpu")), "results": results}
    write_results(report, markdown(report), args.out, "footprint-cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
