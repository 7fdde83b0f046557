"""Hostile output paths: a command's `--out` naming one of its inputs (a compared table, the
charted file, a store's table, a template file) is refused before any work, and results are
written atomically, so a full disk leaves the old good result whole."""

from __future__ import annotations

import errno
import re
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st

from lib.chart import main as chart_main
from lib.compare import main as compare_main
from lib.core.errors import EXIT_BAD_INPUT, InputError, run_cli
from lib.dynamic import main as dynamic_main
from lib.runs.store import JobKey, Store
from lib.scoring.dynamic import InContext, settings_path, summary_path, write_in_context
from lib.scoring.pipeline import Classification, write_classification
from lib.tables.result_files import STAGING_MARK
from lib.trajectory import main as trajectory_main
from tests.chart_helpers import FIGURE_CSV
from tests.conftest import Planted
from ui import training


def cli(main, *args: str | Path) -> int:
    return run_cli(main, [str(arg) for arg in args])


@contextmanager
def disk_full_after(n_bytes: int) -> Iterator[None]:
    """Writes past `n_bytes` of a file fail with `EFBIG`, as a full disk fails them."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)


def test_compare_refuses_to_write_over_a_compared_table(
    planted_classification: Classification, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (a, b):
        write_classification(planted_classification, path)
    before = a.read_bytes()
    assert cli(compare_main, a, b, "--out", tmp_path / "." / "a.csv") == EXIT_BAD_INPUT
    assert "is an input of this command" in capsys.readouterr().err
    assert a.read_bytes() == before
    assert cli(compare_main, a, b, "--out", tmp_path / "b.settings.json") == EXIT_BAD_INPUT


def test_chart_refuses_to_write_over_its_input_even_through_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "heads.csv"
    table.write_bytes(FIGURE_CSV.read_bytes())
    (tmp_path / "link.csv").hardlink_to(table)
    for out in (table, tmp_path / "link.csv"):
        assert cli(chart_main, table, "--out", out) == EXIT_BAD_INPUT
        assert capsys.readouterr().err.count("\n") == 1
    assert table.read_bytes() == FIGURE_CSV.read_bytes()


def test_trajectory_refuses_to_write_into_its_store(
    planted_classification: Classification, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(str(tmp_path / "store"))
    job = JobKey("m", "main", 143000)
    store.write_table(job, planted_classification.table, "digest", {}, {})
    table = Path(store.table_path(job))
    before = table.read_bytes()
    assert cli(trajectory_main, tmp_path / "store", "--out", table) == EXIT_BAD_INPUT
    assert "inside the input folder" in capsys.readouterr().err
    assert table.read_bytes() == before


def test_dynamic_refuses_to_write_over_its_templates_or_model(
    planted_checkpoint: Planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates.txt"
    templates.write_text("The <X> is here.\n")
    model = ["--model", planted_checkpoint.path, "--templates", templates]
    assert cli(dynamic_main, *model, "--out", templates) == EXIT_BAD_INPUT
    assert "is an input of this command" in capsys.readouterr().err
    assert templates.read_text() == "The <X> is here.\n"
    # Nor into the model folder it reads.
    out = planted_checkpoint.path / "x.csv"
    assert cli(dynamic_main, *model, "--out", out) == EXIT_BAD_INPUT
    assert "inside the input folder" in capsys.readouterr().err


def in_context_result(n_rows: int, value: float) -> InContext:
    table = pd.DataFrame({"layer": range(n_rows), "head": 0, "dynamic_score": value})
    summary = pd.DataFrame({"relation": ["r"], "pearson_r": [value]})
    return InContext(table, summary, {"value": value}, ())


def test_a_full_disk_leaves_the_old_in_context_result_whole(tmp_path: Path) -> None:
    out = tmp_path / "dyn.csv"
    write_in_context(in_context_result(10, 0.5), out)
    files = (out, summary_path(out), settings_path(out))
    before = [path.read_bytes() for path in files]
    with disk_full_after(4096), pytest.raises(OSError) as raised:
        write_in_context(in_context_result(5000, 0.25), out)
    assert raised.value.errno == errno.EFBIG
    assert [path.read_bytes() for path in files] == before
    assert not [path for path in tmp_path.iterdir() if STAGING_MARK in path.name]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1/store", "zip://store", "simplecache::s3://b"])
def test_an_unsupported_store_location_is_one_line(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InputError, match=f"cannot use {re.escape(url)} as a store: give a folder"):
        Store(url)
    assert cli(trajectory_main, url, "--out", tmp_path / "e.csv") == EXIT_BAD_INPUT
    assert "s3://" in capsys.readouterr().err


def test_a_sweep_started_with_relative_folders_writes_where_the_page_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "series").mkdir()
    monkeypatch.chdir(tmp_path)  # the server's folder; the sweep's process runs in the checkout
    started: list[list[str]] = []
    monkeypatch.setattr(training.subprocess, "Popen", lambda command, **_: started.append(command))
    training.start_sweep("series", "all", "store")
    (command,) = started
    assert command[command.index("--model") + 1] == str(tmp_path / "series")
    assert command[command.index("--out") + 1] == str(tmp_path / "store")
    assert Store(st.session_state[training.SWEEP].store).root == str(tmp_path / "store")
