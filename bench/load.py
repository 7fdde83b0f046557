"""Load bench: N concurrent sessions against one `streamlit run` server.

    python -m bench.load --sessions 10 --classify 2 --home 2 --repeats 3

Starts one server on 127.0.0.1 (a free port, its result cache in a temporary folder), then for
each repeat opens `--sessions` fresh sessions at once: `--classify` of them on the Classify heads
page, `--home` on the home page, the rest on the Layer chart page.

`--client protocol` (the default) speaks Streamlit's own protocol (`bench.protocol`): each
session is a websocket sending the first message a fresh browser tab sends, and its time runs
from connecting until the page's script run has finished. No browser runs, so on a small
machine the server has the cores to itself, but for this light client. `--client browser`
opens the sessions in one headless Chromium (Debian's `/usr/bin/chromium`, driven by
Playwright) and times each from asking for the page until it is drawn with its script idle; its
renderers share the machine with the server, so its times are an upper bound for remote
visitors.

Before the repeats, each page of the mix is opened once alone on the cold server (its first
run imports the page's modules: the cold start a deployment's first visitor pays) and once more
alone (warm): its time and the server CPU it cost. Reported per repeat: the sessions' times
(median and slowest, and the median per page), errors (a session that times out, whose script
raised or did not compile, or whose address names no page), the server's CPU time spent on the
repeat (user + system of its process tree: its own work, which a loaded machine does not inflate
as it does wall time) in all and per session, this client's CPU time (with its finished
children: the browser's, for `--client browser`), the server's resident memory (RSS) after the
repeat and the machine's load average before it. Loopback only; at most `MAX_SESSIONS` sessions
and `--timeout` seconds per session. Results: `<out>/load-<client>-cpu-<date>.json`, `.md` and
`<out>/latest-load-<client>-cpu.md`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import torch
from playwright.async_api import Browser, async_playwright

from bench.measure import machine
from bench.protocol import Session, run_page
from bench.report import machine_line, write_results
from lib.core.errors import CliParser, InputError, run_cli
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from ui.navigation import CLASSIFY_HEADS, HOME, LAYER_CHART, LINKS

BENCH_DIR = Path(__file__).resolve().parent
MAX_SESSIONS = 50
_ADDRESSES = {script: address for script, _, _, address in LINKS}
PAGES = {
    "home": _ADDRESSES[HOME],
    "chart": _ADDRESSES[LAYER_CHART],
    "classify": _ADDRESSES[CLASSIFY_HEADS],
}
"""The pages the bench opens, by name, and their addresses under the server's URL."""

Client = Callable[[str, list[str], float], Awaitable[list[Session]]]
"""Opens sessions on these pages (`PAGES` names) at once on a server's URL, each within a
timeout in seconds; what each saw."""


async def protocol_sessions(url: str, kinds: list[str], timeout_s: float) -> list[Session]:
    return list(
        await asyncio.gather(*(run_page(url, kind, PAGES[kind], timeout_s) for kind in kinds))
    )


async def open_session(browser: Browser, url: str, page_kind: str, timeout_s: float) -> Session:
    """Open `page_kind` in a fresh context; time until it is drawn and idle."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    started = time.perf_counter()
    try:
        await page.goto(f"{url}/{PAGES[page_kind]}")
        if page_kind == "chart":
            await page.locator(".vega-embed").first.wait_for(state="visible")
        else:
            title = "Classify heads" if page_kind == "classify" else "Pythia Head Atlas"
            await page.get_by_role("heading", name=title).wait_for(state="visible")
        await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
        seconds = time.perf_counter() - started
        if await page.locator('[data-testid="stException"]').count():
            return Session(page_kind, None, "the page shows an exception")
        return Session(page_kind, seconds, None)
    except Exception as error:  # a timeout or a closed page: recorded, the bench goes on
        return Session(page_kind, None, f"{type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        await context.close()


async def browser_sessions(url: str, kinds: list[str], timeout_s: float) -> list[Session]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            return list(
                await asyncio.gather(
                    *(open_session(browser, url, kind, timeout_s) for kind in kinds)
                )
            )
        finally:
            await browser.close()


CLIENTS: dict[str, Client] = {"protocol": protocol_sessions, "browser": browser_sessions}


def server_tree(port: int) -> list[psutil.Process]:
    """The process listening on `port` and its children."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.pid:
            process = psutil.Process(connection.pid)
            return [process, *process.children(recursive=True)]
    return []


def server_usage(port: int) -> tuple[float, int]:
    """(CPU seconds, user + system, and resident bytes) of the server's process tree."""
    tree = server_tree(port)
    cpu = sum(member.cpu_times().user + member.cpu_times().system for member in tree)
    return cpu, sum(member.memory_info().rss for member in tree)


def client_cpu() -> float:
    """CPU seconds of this process and its finished children (a browser, once closed)."""
    usage = psutil.Process().cpu_times()
    return usage.user + usage.system + usage.children_user + usage.children_system


def measured(
    client: Client, url: str, port: int, kinds: list[str], timeout_s: float
) -> dict[str, Any]:
    """Open sessions on `kinds` at once; the sessions and what the round cost, as a dict."""
    load = psutil.getloadavg()
    server_before, client_before = server_usage(port)[0], client_cpu()
    sessions = asyncio.run(client(url, kinds, timeout_s))
    server_after, rss = server_usage(port)
    return {
        "load_average_before": [round(x, 2) for x in load],
        "sessions": [asdict(session) for session in sessions],
        "server_cpu_s": server_after - server_before,
        "client_cpu_s": client_cpu() - client_before,
        "server_rss_bytes": rss,
    }


def times(round_: dict[str, Any], page: str | None = None) -> list[float]:
    """The finished sessions' seconds, of one page or all."""
    return [
        s["seconds"]
        for s in round_["sessions"]
        if s["seconds"] is not None and page in (None, s["page"])
    ]


def markdown(report: dict[str, Any]) -> str:
    settings = report["settings"]
    mix = ", ".join(f"{n} {page}" for page, n in settings["mix"].items())
    environment = ", ".join(f"{k}={v}" for k, v in report["server_environment"].items())
    alone = [
        f"| {page} | {_cell(cold)} | {cold['server_cpu_s']:.2f} | {_cell(warm)} | "
        f"{warm['server_cpu_s']:.2f} |"
        for page, (cold, warm) in report["alone"].items()
    ]
    rows, slowest, medians = [], [], []
    for i, round_ in enumerate(report["repeats"], start=1):
        all_times, n = times(round_), len(round_["sessions"])
        slowest.append(max(all_times) if len(all_times) == n else float("inf"))
        medians.append(statistics.median(all_times) if all_times else float("inf"))
        errors = sorted({s["error"] for s in round_["sessions"] if s["error"]})
        per_page = " | ".join(_median(times(round_, page)) for page in settings["mix"])
        rows.append(
            f"| {i} | {', '.join(f'{x:.1f}' for x in round_['load_average_before'])} | "
            f"{len(all_times)}/{n} | {_median(all_times)} | {_max(all_times)} | {per_page} | "
            f"{'; '.join(errors) or 'none'} | {round_['server_cpu_s']:.1f} | "
            f"{round_['server_cpu_s'] / n:.2f} | {round_['client_cpu_s']:.2f} | "
            f"{round_['server_rss_bytes'] / 2**20:.0f} |"
        )
    page_columns = " | ".join(f"{page} median (s)" for page in settings["mix"])
    return "\n".join(
        [
            machine_line(report["machine"]),
            "",
            f"`{report['command']}`: {settings['sessions']} concurrent sessions ({mix}), "
            f"{settings['client']} client, one server, {report['machine']['cpu_cores']} CPU "
            f"cores; Streamlit settings from the environment: {environment or 'none'}.",
            "",
            "Each page of the mix alone, first on the cold server, then warm: seconds until "
            "ready and the server CPU seconds it cost.",
            "",
            "| page | cold (s) | cold server CPU (s) | warm (s) | warm server CPU (s) |",
            "|---|---|---|---|---|",
            *alone,
            "",
            f"| repeat | load average before | sessions ready | median (s) | slowest (s) | "
            f"{page_columns} | errors | server CPU (s) | server CPU per session (s) | "
            "client CPU (s) | server RSS (MiB) |",
            "|" + "---|" * (10 + len(settings["mix"])),
            *rows,
            "",
            f"Median of {len(slowest)} repeats: median session {statistics.median(medians):.2f} "
            f"s, slowest session {statistics.median(slowest):.2f} s (target: <= 5 s).",
            "",
        ]
    )


def _cell(round_: dict[str, Any]) -> str:
    (session,) = round_["sessions"]
    return f"{session['seconds']:.2f}" if session["seconds"] is not None else session["error"]


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def _max(values: Sequence[float]) -> str:
    return f"{max(values):.2f}" if values else "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    n_chart = args.sessions - args.classify - args.home
    if not 1 <= args.sessions <= MAX_SESSIONS or min(args.classify, args.home, n_chart) < 0:
        raise InputError(
            f"--sessions must be in [1, {MAX_SESSIONS}] and --classify + --home at most "
            f"--sessions (got {args.sessions}, {args.classify}, {args.home})"
        )
    if args.repeats < 1 or args.timeout <= 0:
        raise InputError(
            f"--repeats must be at least 1 and --timeout positive (got {args.repeats}, "
            f"{args.timeout})"
        )
    if args.client == "browser" and not CHROMIUM.exists():
        raise InputError(f"{CHROMIUM} not found: apt-get install chromium")
    counts = {"chart": n_chart, "classify": args.classify, "home": args.home}
    mix = {page: n for page, n in counts.items() if n}
    kinds = [page for page, n in mix.items() for _ in range(n)]
    client = CLIENTS[args.client]
    report: dict[str, Any] = {
        "machine": machine(torch.device("cpu")),
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {**vars(args), "out": str(args.out), "mix": mix},
        # The server inherits the environment: Streamlit settings given there change its cost.
        "server_environment": {k: v for k, v in os.environ.items() if k.startswith("STREAMLIT_")},
    }
    with tempfile.TemporaryDirectory() as folder:
        env = {"HEAD_ATLAS_CACHE_DIR": str(Path(folder) / "cache")}
        with streamlit_server(env, Path(folder) / "server.log") as url:
            port = int(url.rsplit(":", 1)[1])
            report["alone"] = {
                page: [measured(client, url, port, [page], args.timeout) for _ in ("cold", "warm")]
                for page in mix
            }
            report["repeats"] = []
            for i in range(args.repeats):
                report["repeats"].append(measured(client, url, port, kinds, args.timeout))
                print(f"repeat {i + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    write_results(report, markdown(report), args.out, f"load-{args.client}-cpu")
    return 0


def _parser() -> CliParser:
    parser = CliParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--client", choices=sorted(CLIENTS), default="protocol")
    parser.add_argument("--sessions", type=int, default=10, help="concurrent sessions")
    parser.add_argument("--classify", type=int, default=2, help="of them on Classify heads")
    parser.add_argument("--home", type=int, default=2, help="of them on the home page")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of sessions")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per session")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    return parser


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
