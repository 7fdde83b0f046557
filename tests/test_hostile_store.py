"""Hostile results stores: a damaged, foreign or hidden table is never served (readers skip it
with one line, a resume computes it again), leftovers of killed writers are cleaned, a store
holds one set of settings, and one series folder is one model however it is written.

Most tests write tables directly (`Store.write_table` with a small made-up per-head table):
they are about the store, not the scores."""

from __future__ import annotations

import errno
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lib.core.errors import InputError, run_cli
from lib.runs import sweep as sw
from lib.runs.store import JobKey, Store
from lib.scoring.pipeline import ClassifySettings, Thresholds
from lib.sweep import main as sweep_main
from lib.tables.labels import UNCLASSIFIED
from lib.trajectory import main as trajectory_main
from tests.series_support import RELATIONS, SETTINGS
from ui import training

MODEL = "series"
SHARED = sw.store_settings(SETTINGS)
STRICTER_SETTINGS = ClassifySettings(relations=RELATIONS, thresholds=Thresholds(0.3))
STRICTER = sw.store_settings(sw.SweepSettings(STRICTER_SETTINGS, "cpu", "float32"))


def heads(seed: int, layers: int = 3, per_layer: int = 4) -> pd.DataFrame:
    """A made-up per-head table of `layers` x `per_layer` heads."""
    rng = np.random.default_rng(seed)
    n = layers * per_layer
    return pd.DataFrame(
        {
            "layer": np.repeat(np.arange(layers), per_layer),
            "head": np.tile(np.arange(per_layer), layers),
            "score_a": rng.random(n),
            "suppression_a": rng.random(n),
            "previous_token": rng.random(n),
            "label": rng.choice(["a", UNCLASSIFIED], n),
            "score": rng.random(n),
        }
    )


def write_job(store: Store, step: int, shared: dict = SHARED, model: str = MODEL) -> Path:
    """Store the made-up table of `step` as a job of `model`; its file's path."""
    job = JobKey(model, f"step{step}", step)
    store.write_table(job, heads(step), f"digest{step}", {"step": step}, shared)
    return Path(store.table_path(job))


def small_store(folder: Path, steps: tuple[int, ...] = (0, 1, 2)) -> Store:
    store = Store(str(folder))
    for step in steps:
        write_job(store, step)
    return store


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def folder_in_its_place(path: Path) -> None:
    path.unlink()
    (path / "part-0.parquet").mkdir(parents=True)


def another_tools_parquet(path: Path) -> None:
    heads(7).assign(model=MODEL, step=1).to_parquet(path)


def a_score_edited(path: Path) -> None:
    """One score changed, the file rewritten with its original metadata (record included)."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    column = next(name for name in frame.columns if name.startswith("score_"))
    frame.loc[3, column] = 0.987654321
    pq.write_table(table.from_pandas(frame, schema=table.schema, preserve_index=False), path)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut in half": cut_in_half,
    "empty": emptied,
    "a folder in its place": folder_in_its_place,
    "another tool's Parquet file": another_tools_parquet,
    "a score edited": a_score_edited,
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_table_is_skipped_with_one_line(case: str, tmp_path: Path, capsys) -> None:
    store = small_store(tmp_path / "store", steps=(0, 2))
    damaged = write_job(store, 1)
    DAMAGE[case](damaged)
    lines: list[str] = []
    rows = store.read(lines.append)
    assert sorted(rows["step"].unique()) == [0, 2]  # the others are served
    assert len(lines) == 1 and "\n" not in lines[0] and damaged.name in lines[0]
    if case == "another tool's Parquet file":
        assert "ignored" in lines[0]
    assert store.stored_digest(JobKey(MODEL, "step1", 1), lines.append) is None
    capsys.readouterr()
    assert trajectory_main([str(store.url), "--out", str(tmp_path / "emergence.csv")]) == 0
    assert capsys.readouterr().err.count(damaged.name) == 1
    page_rows, _, skipped = training.read_store(store.url, f"{case}-{tmp_path}")
    assert len(page_rows) == len(rows) and len(skipped) == 1 and damaged.name in skipped[0]


@pytest.mark.parametrize("case", ["cut in half", "a score edited"])
def test_a_resume_computes_a_damaged_table_again(
    case: str, planted_series: Path, tmp_path: Path
) -> None:
    jobs = sw.plan_jobs([str(planted_series)], "step0")
    assert [r.status for r in sw.sweep(jobs, SETTINGS, str(tmp_path))] == ["stored"]
    first = Store(str(tmp_path)).read()
    DAMAGE[case](Path(Store(str(tmp_path)).table_path(jobs[0].key)))
    assert [r.status for r in sw.sweep(jobs, SETTINGS, str(tmp_path))] == ["stored"]
    lines: list[str] = []
    pd.testing.assert_frame_equal(Store(str(tmp_path)).read(lines.append), first)
    assert lines == []


def test_no_single_bit_flip_serves_a_wrong_table(tmp_path: Path) -> None:
    """Property: whichever bit of a table's file flips, the check every reader goes through
    (`Store.load_table`) refuses it or gives the table that was written."""
    store = Store(str(tmp_path))
    path = write_job(store, 5)
    intact, data = store.load_table(str(path)).table, path.read_bytes()
    footer = len(data) - int.from_bytes(data[-8:-4], "little") - 8  # metadata, record, schema
    sample = random.Random(0).sample(range(8 * footer), 500)
    sample += random.Random(1).sample(range(8 * footer, 8 * len(data)), 1500)
    served_intact = refused = 0
    for bit in sample:
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(flipped)
        try:
            table = store.load_table(str(path)).table
        except InputError as error:
            refused += 1
            assert "\n" not in str(error)
            continue
        assert table.equals(intact), f"bit {bit} served another table"
        served_intact += 1
    assert refused > len(sample) / 2 and served_intact > 0  # both outcomes were exercised


def test_leftovers_of_killed_writers_are_removed_and_fresh_writes_kept(tmp_path: Path) -> None:
    old = [tmp_path / ".tmp-1-a--step0--0.parquet", tmp_path / "_failures" / ".tmp-2-b.json"]
    fresh = tmp_path / ".tmp-3-c--step0--0.parquet"  # another sweep writing now
    for path in (*old, fresh):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a table")
    an_hour_ago = time.time() - 3600
    for path in old:
        os.utime(path, (an_hour_ago, an_hour_ago))
    sw.sweep([], SETTINGS, str(tmp_path))
    assert [path.exists() for path in old] == [False, False] and fresh.exists()


def test_a_full_disk_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    store = Store(str(tmp_path))
    real_open = type(store.fs).open

    class FullDisk:
        def __init__(self, file) -> None:
            self.file = file

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exception: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> None:
            self.file.write(data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(store.fs), "open", lambda *a, **k: FullDisk(real_open(*a, **k)))
    with pytest.raises(InputError, match="No space left"):
        write_job(store, 0)
    assert list(tmp_path.iterdir()) == []


def test_a_store_mixing_settings_is_refused_by_readers(tmp_path: Path, capsys) -> None:
    store = small_store(tmp_path / "store", steps=(0, 1))
    write_job(store, 2, STRICTER)
    expected = "thresholds.operation=0.15 in 2 tables vs thresholds.operation=0.3 in 1 table;"
    with pytest.raises(InputError, match=expected):
        store.read()
    out = str(tmp_path / "emergence.csv")
    assert run_cli(trajectory_main, [store.url, "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "thresholds.operation=0.3" in err


def test_a_sweep_adds_no_tables_of_other_settings(
    planted_series: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Refused while a table of other settings would stay; a sweep replacing every such table
    (the same jobs swept with new settings) may change them."""
    store = Store(str(tmp_path))
    (job,) = sw.plan_jobs([str(planted_series)], "step0")
    store.write_table(job.key, heads(0), "old", {}, STRICTER)
    other = write_job(store, 0, STRICTER, model="another model")

    def run_job(job: sw.Job, settings: sw.SweepSettings, url: str) -> sw.JobResult:
        Store(url).write_table(job.key, heads(1), "new", {}, sw.store_settings(settings))
        return sw.JobResult(job, "stored")

    monkeypatch.setattr(sw, "run_job", run_job)
    argv = ["--model", str(planted_series), "--revisions", "step0", "--out", str(tmp_path)]
    argv += ["--device", "cpu", "--relations", ",".join(RELATIONS), "--dtype", "float32"]
    assert run_cli(sweep_main, argv) == 2
    err = capsys.readouterr().err
    assert "1 tables of other jobs swept with thresholds.operation=0.3, not " in err
    assert err.count("\n") == 1 and store.read_plan() is None
    assert set(store.read()["settings_digest"]) == {"old", "digest0"}  # nothing was added
    other.unlink()
    assert run_cli(sweep_main, argv) == 0
    assert set(store.read()["settings_digest"]) == {"new"}


def test_a_folder_name_cut_at_a_dot_is_not_hidden(tmp_path: Path) -> None:
    """A job's file keeps the last 60 characters of its folder's name: never a hidden one."""
    model = "/runs/xxxxx." + "y" * 59
    job = JobKey(model, "step0", 0)
    assert not job.name.startswith(".")
    store = Store(str(tmp_path))
    store.write_table(job, heads(0), "d", {}, SHARED)
    assert set(store.read()["model"]) == {model}


def test_one_folder_written_three_ways_is_one_model(planted_series: Path, monkeypatch) -> None:
    monkeypatch.chdir(planted_series.parent)
    name = planted_series.name
    ways = [name, f"{name}/", f"./{name}", str(planted_series)]
    assert len(sw.plan_jobs(ways, "step0")) == 1
    keys = {sw.plan_jobs([way], "step0")[0].key for way in ways}
    assert len(keys) == 1
