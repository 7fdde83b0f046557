"""Load bench: N concurrent Chromium sessions against one `streamlit run` server.

    python -m bench.load --sessions 10 --classify 2 --repeats 3

Starts one server on 127.0.0.1 (a free port, its result cache in a temporary folder), then for
each repeat opens `--sessions` fresh browser sessions at once in one headless Chromium (Debian's
`/usr/bin/chromium`, driven by Playwright): `--classify` of them on the Classify heads page, the
rest on the Layer chart page. A session's *time to ready* runs from asking for the page to the
page drawn with its script idle (the chart page: the chart is on screen; the Classify page: its
title). Before the repeats, one session per page warms the server up (its first run of each
page imports that page's modules: the cold start a deployment's first visitor pays, reported
apart). Reported per repeat: the sessions' times (median and slowest), errors (a session that
times out or shows a Streamlit exception), the server's resident memory (RSS, its process
tree) after the repeat and the CPU time it spent on the repeat (user + system: the server's own
work, which the browsers' share of a loaded machine does not inflate as it does wall time);
and the machine's load average before it. Loopback only; at most
`MAX_SESSIONS` sessions and `--timeout` seconds per session.

Note that the browsers run on the same machine as the server: on a 2-core machine their own
rendering takes a large share of the CPU, so the numbers are an upper bound for remote visitors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from playwright.async_api import Browser, async_playwright

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, streamlit_server

MAX_SESSIONS = 50
PAGES = {"chart": "Layer_chart", "classify": "Classify_heads"}


@dataclass(frozen=True)
class Session:
    """One session's page, time to ready (None when it failed) and error."""

    page: str
    seconds: float | None
    error: str | None


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
            await page.get_by_role("heading", name="Classify heads").wait_for(state="visible")
        await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
        seconds = time.perf_counter() - started
        if await page.locator('[data-testid="stException"]').count():
            return Session(page_kind, None, "the page shows an exception")
        return Session(page_kind, seconds, None)
    except Exception as error:  # a timeout or a closed page: recorded, the bench goes on
        return Session(page_kind, None, f"{type(error).__name__}: {str(error).splitlines()[0]}")
    finally:
        await context.close()


async def one_repeat(url: str, n_sessions: int, n_classify: int, timeout_s: float) -> list[Session]:
    kinds = ["classify"] * n_classify + ["chart"] * (n_sessions - n_classify)
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


Repeat = tuple[tuple[float, float, float], list[Session], float, int]
"""Load average before, the sessions, server CPU seconds spent, server RSS after."""


def report(repeats: list[Repeat]) -> str:
    lines = [
        "| repeat | load average before | sessions ready | median (s) | slowest (s) | "
        "chart median (s) | classify median (s) | errors | server CPU (s) | server RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    slowest = []
    for i, (load, sessions, cpu, rss) in enumerate(repeats, start=1):
        times = [s.seconds for s in sessions if s.seconds is not None]
        by_kind = {
            kind: [s.seconds for s in sessions if s.page == kind and s.seconds is not None]
            for kind in PAGES
        }
        errors = sorted({s.error for s in sessions if s.error})
        slowest.append(max(times) if len(times) == len(sessions) else float("inf"))
        lines.append(
            f"| {i} | {', '.join(f'{x:.1f}' for x in load)} | {len(times)}/{len(sessions)} | "
            f"{_median(times)} | {_max(times)} | {_median(by_kind['chart'])} | "
            f"{_median(by_kind['classify'])} | {'; '.join(errors) or 'none'} | {cpu:.1f} | "
            f"{rss / 2**20:.0f} |"
        )
    lines.append("")
    lines.append(
        f"Slowest session per repeat, median of {len(repeats)}: "
        f"{statistics.median(slowest):.2f} s (target: <= 5 s)."
    )
    return "\n".join(lines)


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def _max(values: Sequence[float]) -> str:
    return f"{max(values):.2f}" if values else "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or not 0 <= args.classify <= args.sessions:
        raise SystemExit(f"--sessions must be in [1, {MAX_SESSIONS}], --classify in [0, sessions]")
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    repeats = []
    with tempfile.TemporaryDirectory() as folder:
        env = {"HEAD_ATLAS_CACHE_DIR": str(Path(folder) / "cache")}
        with streamlit_server(env, Path(folder) / "server.log") as url:
            port = int(url.rsplit(":", 1)[1])
            warm_up = asyncio.run(one_repeat(url, len(PAGES), 1, args.timeout))
            for i in range(args.repeats):
                load, (cpu_before, _) = os.getloadavg(), server_usage(port)
                sessions = asyncio.run(one_repeat(url, args.sessions, args.classify, args.timeout))
                cpu_after, rss = server_usage(port)
                repeats.append((load, sessions, cpu_after - cpu_before, rss))
                print(f"repeat {i + 1}/{args.repeats} done", file=sys.stderr)
    print(
        f"{args.sessions} concurrent sessions ({args.sessions - args.classify} Layer chart, "
        f"{args.classify} Classify heads), one server, {os.cpu_count()} CPU cores:\n"
    )
    cold = ", ".join(
        f"{s.page} {s.seconds:.1f} s" if s.seconds is not None else f"{s.page} {s.error}"
        for s in warm_up
    )
    print(f"Warm-up, one session per page on the cold server: {cold}.\n")
    print(report(repeats))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10, help="concurrent sessions")
    parser.add_argument("--classify", type=int, default=2, help="of them on Classify heads")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of sessions")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per session")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
