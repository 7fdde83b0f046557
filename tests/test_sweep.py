"""Sweeps over a planted training series: each planted head's role at every step, recovered
from the store, in process and on Ray; resuming, failures and killed jobs; the emergence table.

The series (`tests/series_support.py`) plants each head from a chosen step on, so the label
of every head at every step, and its `first_step`, are known by construction."""

from __future__ import annotations

import json
import subprocess
import sys
import weakref
from pathlib import Path

import pandas as pd
import pytest

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint, open_for_scoring
from lib.core.errors import InputError
from lib.fixtures.planted import PLANTED, ROLES
from lib.fixtures.synthetic import relation_words
from lib.runs import sweep as sw
from lib.runs.store import Store, SweepProgress, sweep_progress
from lib.scoring.pipeline import ClassifySettings
from lib.sweep import main as sweep_main
from lib.synthetic import main as synthetic_main
from lib.tables.labels import UNCLASSIFIED, Thresholds
from lib.tables.trajectory import trajectories
from lib.trajectory import main as trajectory_main
from tests.series_support import (
    RELATIONS,
    SETTINGS,
    STEPS,
    expected_label,
    first_step,
    local_ray,
)
from tests.test_streamed import no_model_load  # noqa: F401 (the fixture)

WORDS = sorted({word.strip() for word in relation_words()})[500:540]


def test_sweep_recovers_every_planted_role_at_every_step(
    planted_store: Path, planted_series: Path
) -> None:
    rows = pd.read_parquet(planted_store)  # the store is a plain Parquet dataset
    assert sorted(rows["step"].unique()) == list(STEPS)
    assert set(rows["revision"]) == {f"step{step}" for step in STEPS}
    assert set(rows["model"]) == {str(planted_series)}
    for row in rows.itertuples():
        assert row.label == expected_label(row.layer, row.head, row.step), row
    settings = json.loads(rows["settings"].iloc[0])
    assert settings["thresholds"] == json.loads(json.dumps(vars(Thresholds())))


def test_emergence_table_knows_when_each_head_appeared(planted_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "emergence.csv"
    assert trajectory_main([str(planted_store), "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index(["layer", "head"])
    assert len(table) == 12  # every head, unclassified ones included
    for role, (layer, head) in ROLES.items():
        first = first_step(role)
        row = table.loc[(layer, head)]
        assert row["final_label"] == PLANTED[(layer, head)]
        assert row["first_step"] == first and row["threshold_step"] == first
        assert row["n_changes"] == (0 if first == STEPS[0] else 1)
    others = table.drop(index=list(ROLES.values()))
    assert (others["final_label"] == UNCLASSIFIED).all() and (others["first_step"] == 0).all()
    assert others["threshold_step"].isna().all()


def test_trajectory_of_a_head_that_changes_role() -> None:
    """first_step is where the final label starts to hold for good, not its first sighting."""
    labels = ["a", UNCLASSIFIED, "a", "b", "a", "a"]
    rows = pd.DataFrame(
        {"model": "m", "layer": 0, "head": 0, "step": [0, 1, 2, 4, 8, 16], "label": labels}
    )
    (row,) = trajectories(rows).itertuples()
    assert (row.final_label, row.first_step, row.n_changes, row.threshold_step) == ("a", 8, 4, 0)


def test_ray_gives_the_same_scores(
    planted_store: Path, planted_series: Path, tmp_path: Path
) -> None:
    with local_ray():
        results = sw.sweep(
            sw.plan_jobs([str(planted_series)]), SETTINGS, str(tmp_path), engine="ray"
        )
    assert [r.status for r in results] == ["stored"] * len(STEPS)
    on_ray, in_process = Store(str(tmp_path)).read(), Store(str(planted_store)).read()
    pd.testing.assert_frame_equal(on_ray, in_process, check_exact=True)


def test_a_repeated_sweep_recomputes_nothing(
    planted_store: Path, planted_series: Path, monkeypatch
) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in planted_store.glob("*.parquet")}
    monkeypatch.setattr(sw, "run_job", lambda *args: pytest.fail("a stored job was run again"))
    results = sw.sweep(sw.plan_jobs([str(planted_series)]), SETTINGS, str(planted_store))
    assert [r.status for r in results] == ["kept"] * len(STEPS)
    assert before == {p.name: p.stat().st_mtime_ns for p in planted_store.glob("*.parquet")}
    assert sweep_progress(Store(str(planted_store))) == SweepProgress(len(STEPS), len(STEPS), 0)


def test_other_settings_are_recomputed(planted_series: Path, planted_store: Path) -> None:
    job = sw.plan_jobs([str(planted_series)], "step0")[0]
    stricter = sw.SweepSettings(
        ClassifySettings(relations=RELATIONS, thresholds=Thresholds(operation=0.2)), "cpu"
    )
    assert sw.job_digest(job, stricter) != sw.job_digest(job, SETTINGS)
    assert Store(str(planted_store)).stored_digest(job.key) == sw.job_digest(job, SETTINGS)


def test_a_killed_job_leaves_nothing_served(
    planted_series: Path, tmp_path: Path, monkeypatch
) -> None:
    """Killed after its table was written but before the rename: no reader sees it, and the
    next sweep runs the job again."""
    jobs = sw.plan_jobs([str(planted_series)], "step2")
    store = Store(str(tmp_path))

    rename = type(store.fs).mv

    def killed_before_renaming_a_table(fs: object, source: str, target: str) -> None:
        if target.endswith(".parquet"):
            raise KeyboardInterrupt
        rename(fs, source, target)

    monkeypatch.setattr(type(store.fs), "mv", killed_before_renaming_a_table)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(jobs, SETTINGS, str(tmp_path))
    monkeypatch.undo()
    assert [p.name[:5] for p in tmp_path.glob("*.parquet")] == [".tmp-"]
    with pytest.raises(InputError, match="holds no results"):
        store.read()
    assert store.stored_digest(jobs[0].key) is None
    assert [r.status for r in sw.sweep(jobs, SETTINGS, str(tmp_path))] == ["stored"]


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(
    planted_series: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "series"
    broken.mkdir()
    (broken / "step0").symlink_to(planted_series / "step0")
    (broken / "step5").mkdir()
    (broken / "step5" / "config.json").write_text("{not json")
    (broken / "step5" / "model.safetensors").write_bytes(b"")
    store = tmp_path / "store"
    relations = ",".join(RELATIONS)
    code = sweep_main(
        ["--model", str(broken), "--out", str(store), "--device", "cpu", "--relations", relations]
    )
    assert code == 1
    failures = Store(str(store)).read_failures()
    assert failures[["revision", "step"]].values.tolist() == [["step5", 5]]
    assert "is not valid JSON" in failures["error"].iloc[0]
    assert "\n" not in failures["error"].iloc[0]
    assert set(pd.read_parquet(store)["revision"]) == {"step0"}
    assert sweep_progress(Store(str(store))) == SweepProgress(2, 1, 1)


def test_revisions(planted_series: Path) -> None:
    hub = sw.plan_jobs(["EleutherAI/pythia-70m"], "log")
    assert [job.key.step for job in hub][:3] == [0, 1, 2] and len(hub) == 21
    assert hub[-1].revision == "step143000"
    everything = sw.plan_jobs(["EleutherAI/pythia-70m"])
    assert len(everything) == 154 and everything[-1].key.revision == "step143000"
    with pytest.raises(InputError, match="same checkpoint"):
        sw.plan_jobs(["EleutherAI/pythia-70m"], "main,step143000")
    listed = sw.plan_jobs(["EleutherAI/pythia-70m"], "step0,main")
    assert [(j.key.revision, j.key.step) for j in listed] == [("step0", 0), ("main", 143000)]
    assert [j.key.revision for j in sw.plan_jobs([str(planted_series)], "log")] == [
        "step0",
        "step2",
        "step8",
    ]
    with pytest.raises(InputError, match="has no revision step3"):
        sw.plan_jobs([str(planted_series)], "step3")
    with pytest.raises(InputError, match="neither a folder nor a Pythia hub id"):
        sw.plan_jobs(["gpt2"])
    with pytest.raises(InputError, match="no step<N> subfolders"):
        sw.plan_jobs([str(planted_series / "step0")])


def test_synthetic_series_command(tmp_path: Path, capsys) -> None:
    args = ["--series", "--out", str(tmp_path), "--steps", "0,3", "--appear", "copying=3"]
    assert synthetic_main([*args, "--appear", "suppression=-1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step0", "step3"]
    with pytest.raises(InputError, match="unknown role"):
        synthetic_main([*args, "--appear", "induction=2"])


def test_synthetic_help_is_whole_sentences() -> None:
    """`--help` used to stop mid-sentence (the first line of a wrapped docstring)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "lib.synthetic", "--help"], capture_output=True, text=True
    ).stdout
    description = " ".join(help_text.split("\n\n")[1].split())
    assert description.endswith("offline demo.")
    assert description.startswith("Write a Pythia-shaped GPT-NeoX checkpoint")


def test_readers_of_a_store_import_no_torch() -> None:
    """What the Training dynamics page imports; lib.sweep (torch) runs in its own process."""
    code = (
        "import sys, lib.runs.store, lib.trajectory, lib.charts.training, lib.chart, ui.training\n"
    )
    code += "assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_job_releases_its_model(planted_series: Path, tmp_path: Path, monkeypatch) -> None:
    """No model (or opened checkpoint) outlives its job (bench.sweep measures the memory this
    keeps flat)."""
    opened = []

    def open_and_watch(*args: object, **kwargs: object) -> LoadedModel | StreamedCheckpoint:
        loaded = open_for_scoring(*args, **kwargs)
        opened.append(weakref.ref(loaded))
        return loaded

    monkeypatch.setattr(sw, "open_for_scoring", open_and_watch)
    for job in sw.plan_jobs([str(planted_series)], "step0,step2"):
        assert sw.run_job(job, SETTINGS, str(tmp_path)).status == "stored"
    assert len(opened) == 2 and all(ref() is None for ref in opened)


@pytest.mark.usefixtures("no_model_load")
def test_a_sweep_without_the_causal_check_builds_no_model(
    planted_series: Path, tmp_path: Path
) -> None:
    jobs = sw.plan_jobs([str(planted_series)], "step0,step8")
    assert [r.status for r in sw.sweep(jobs, SETTINGS, str(tmp_path))] == ["stored", "stored"]


def test_a_streamed_sweep_stores_the_whole_models_tables(
    planted_series: Path, tmp_path: Path, monkeypatch
) -> None:
    """The tables (scores, labels, digests, settings) a sweep stores reading each checkpoint one
    layer at a time equal, exactly, those it stored loading each whole (the path before)."""
    jobs = sw.plan_jobs([str(planted_series)], "step0,step8")

    def whole(*args: object, **kwargs: object) -> LoadedModel | StreamedCheckpoint:
        return open_for_scoring(*args, **{**kwargs, "weights": "whole"})

    monkeypatch.setattr(sw, "open_for_scoring", whole)
    sw.sweep(jobs, SETTINGS, str(tmp_path / "whole"))
    monkeypatch.undo()
    sw.sweep(jobs, SETTINGS, str(tmp_path / "streamed"))
    expected, stored = (
        pd.read_parquet(tmp_path / name).sort_values(["step", "layer", "head"], ignore_index=True)
        for name in ("whole", "streamed")
    )
    pd.testing.assert_frame_equal(stored, expected, check_exact=True)


def test_relation_files_are_swept_like_classify_takes_them(
    planted_series: Path, tmp_path: Path
) -> None:
    """`--relation-file` and `--relation-k` come from lib.classify's own options."""
    relation = tmp_path / "my pairs.csv"
    relation.write_text("src,dst\n" + "".join(f"{w},{w}\n" for w in WORDS))
    store = tmp_path / "store"
    argv = ["--model", str(planted_series), "--revisions", "step8", "--out", str(store)]
    argv += ["--relations", "none", "--no-patterns", "--relation-file", str(relation)]
    assert sweep_main(argv) == 0
    rows = pd.read_parquet(store)
    assert {"score_my_pairs", "suppression_my_pairs"} <= set(rows.columns)
    copying = rows[(rows["layer"] == ROLES["copying"][0]) & (rows["head"] == ROLES["copying"][1])]
    assert copying["score_my_pairs"].iloc[0] == 1  # the copying head copies these words too
    assert sweep_main([*argv, "--relation-k", "my_pairs=3"]) == 0  # another k: computed again
    assert set(pd.read_parquet(store)["settings_digest"]) != set(rows["settings_digest"])
