"""The Training dynamics page's Streamlit parts: reading a store, and a sweep started from the
page, run by `python -m lib.sweep` in its own process while the page shows its progress.

A sweep runs outside the Streamlit server so that a page rerun, a closed tab or a second
visitor never stops or repeats it; the page only reads the store it writes (`lib.runs.store`), and
never imports torch or Ray.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from lib.core.errors import InputError
from lib.core.paths import PROJECT_ROOT
from lib.runs.store import Store, sweep_progress
from ui.state import kept, put

STORE_INPUT = "training_store"
NEXT_STORE = "training_next_store"
"""A store to show from the next run on (a widget's value cannot change once it is drawn)."""
SWEEP = "training_sweep"
"""Session key of the sweep this session started (`StartedSweep`)."""
PROGRESS_EVERY_S = 2.0


@dataclass
class StartedSweep:
    """A sweep started from the page: its process, store, log file, and whether the page has
    re-read the store since it ended."""

    process: subprocess.Popen
    store: str
    log: Path
    reloaded: bool = False
    seen: int = 0
    """Jobs done when the page last read the store."""


@st.cache_data(max_entries=4, show_spinner="Reading the store…")
def read_store(url: str, version: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Rows, failed jobs and skipped files of the store at `url`: a file skipped (damaged,
    foreign) is one line saying why. `version` (`Store.version`) renews the cache when a job's
    table is added or replaced."""
    store = Store(url)
    skipped: list[str] = []
    rows, failures = store.read(skipped.append), store.read_failures(skipped.append)
    return rows, failures, skipped


def sweep_command(source: str, revisions: str, store: str, ablate: bool = False) -> list[str]:
    """The `python -m lib.sweep` command a page's sweep runs (defaults for everything else;
    `ablate`: also the causal check, `--ablate`)."""
    arguments = ["--model", source, "--revisions", revisions, "--out", store]
    return [sys.executable, "-m", "lib.sweep", *arguments, *(["--ablate"] if ablate else [])]


def start_sweep(source: str, revisions: str, store: str, ablate: bool = False) -> None:
    """Start a sweep in its own process; its output goes to a log file the page can show.
    The process runs in `ROOT`: local paths are made absolute here first, once, so that it
    reads and writes the folders the page names (`InputError` for a store it cannot use)."""
    store = Store(store).absolute_url
    if Path(source).expanduser().exists():  # else a hub id, or a folder the sweep says is missing
        source = str(Path(source).expanduser().resolve())
    log = Path(tempfile.mkstemp(prefix="sweep-", suffix=".log")[1])
    with log.open("wb") as file:
        process = subprocess.Popen(
            sweep_command(source, revisions, store, ablate),
            cwd=PROJECT_ROOT,
            stdout=file,
            stderr=file,
        )
    st.session_state[SWEEP] = StartedSweep(process, store, log)
    st.session_state[NEXT_STORE] = store


def store_input() -> str:
    """The sidebar's store path, kept across page visits (a sweep started here puts its store
    there)."""
    if NEXT_STORE in st.session_state:
        put(STORE_INPUT, st.session_state.pop(NEXT_STORE))
    return kept(
        st.sidebar.text_input,
        "Results store",
        key=STORE_INPUT,
        default="",
        help="A folder (or fsspec URL) written by python -m lib.sweep, or by a sweep started "
        "below.",
    ).strip()


def sweep_form() -> None:
    """The sidebar form that starts a sweep into a store folder."""
    with st.sidebar.expander("Start a sweep", expanded=False), st.form("training_sweep_form"):
        source = st.text_input(
            "Model",
            help="A series folder of step<N> save_pretrained folders (python -m lib.synthetic "
            "--series writes one), or a catalog hub id such as EleutherAI/pythia-70m "
            "(downloads every revision swept).",
        )
        revisions = st.text_input(
            "Revisions", "all", help="all, log, or a comma list such as step0,step1000,main."
        )
        store = st.text_input("Store folder to write", help="Created if missing; resumable.")
        ablate = st.checkbox(
            "Also the causal check (--ablate)",
            help="At every step, remove each relation's heads and as many random heads, and keep "
            "the accuracies: the Heads necessary tab (docs/methods.md §10). Slower.",
        )
        if st.form_submit_button("Start", disabled=running()):
            if not source.strip() or not store.strip():
                st.error("Give a model and a store folder.")
            else:
                try:
                    start_sweep(source.strip(), revisions.strip(), store.strip(), ablate)
                except InputError as error:
                    st.error(str(error))
                else:
                    st.rerun()


def running() -> bool:
    """Whether a sweep this session started is still running."""
    sweep = st.session_state.get(SWEEP)
    return sweep is not None and sweep.process.poll() is None


@st.fragment(run_every=PROGRESS_EVERY_S)
def sweep_status() -> None:
    """Progress of the sweep this session started: jobs with a table or a failure, of all;
    once it ends, its outcome, and the whole page re-reads the store once."""
    sweep: StartedSweep | None = st.session_state.get(SWEEP)
    if sweep is None:
        return
    code = sweep.process.poll()
    try:
        progress = sweep_progress(Store(sweep.store))
    except (InputError, OSError, ValueError):
        progress = None  # the plan is not written yet
    if progress is not None:
        done = progress.stored + progress.failed
        st.progress(
            done / max(progress.total, 1),
            f"Sweep: {done} of {progress.total} jobs done ({progress.failed} failed)",
        )
        if code is None and done > sweep.seen:
            sweep.seen = done
            st.rerun()  # a new table: the whole page reads the store again
    if code is None:
        st.caption("The sweep runs in its own process; the charts update as jobs finish.")
        return
    if code == 0:
        st.success("The sweep finished: every job has its table.")
    else:
        st.warning(f"The sweep ended with exit code {code}; its last lines:")
        st.code("\n".join(sweep.log.read_text(errors="replace").splitlines()[-5:]), language=None)
    if not sweep.reloaded:
        sweep.reloaded = True
        st.rerun()  # the whole page reads the finished store
