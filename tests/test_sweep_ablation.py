"""The causal check over training (`python -m lib.sweep --ablate`, docs/methods.md §10) on the
task series (`tests/series_support.py`): the head `TASK_HEAD` carries the copying task from
`TASK_STEP` on and the weights are random before, so the relation's heads become necessary
exactly at `TASK_STEP`, by construction. Curves are stored per checkpoint in process and on
Ray; a store swept without them still reads, and the command it gives adds them."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.charts.necessity import necessity_chart
from lib.core.errors import InputError
from lib.fixtures.planted import TASK_HEAD, TASK_RELATION
from lib.runs import sweep as sw
from lib.runs.store import INTEGRITY, Store
from lib.runs.stored_ablation import add_commands, read_ablation
from lib.scoring import provenance
from lib.sweep import main as sweep_main
from lib.synthetic import main as synthetic_main
from lib.tables.ablation import CURVE_COLUMNS, RANDOM_CURVE, RELATION_CURVE
from lib.tables.necessity import NECESSITY_THRESHOLD, necessary_steps, over_training
from tests.series_support import ABLATION_SETTINGS, TASK_STEP, TASK_STEPS, local_ray


def test_the_sweep_stores_the_curves_of_every_checkpoint(ablation_store: Path) -> None:
    stored = read_ablation(Store(str(ablation_store)))
    assert stored.missing == {}
    assert stored.asked == sw.asked_ablation(ABLATION_SETTINGS)
    curves = stored.curves
    assert list(curves.columns) == ["model", "revision", "step", *CURVE_COLUMNS]
    assert sorted(curves["step"].unique()) == list(TASK_STEPS)
    for step, part in curves.groupby("step"):
        assert set(part["curve"]) == {RELATION_CURVE, RANDOM_CURVE}
        assert sorted(part[part["curve"] == RANDOM_CURVE]["draw"].unique()) == [0, 1, 2]
        own = part[part["curve"] == RELATION_CURVE].set_index("k")
        if step >= TASK_STEP:  # the task head is ranked first and carries the task alone
            assert (own.loc[1, "layer"], own.loc[1, "head"]) == TASK_HEAD
            assert own.loc[0, "accuracy"] >= 0.9 and own.loc[1, "accuracy"] <= 0.1
    # The heads' tables are untouched: a plain Parquet dataset, read as ever.
    assert len(pd.read_parquet(ablation_store)) == 12 * len(TASK_STEPS)
    assert len(Store(str(ablation_store)).read()) == 12 * len(TASK_STEPS)


def test_the_task_heads_become_necessary_at_the_planted_step(ablation_store: Path) -> None:
    stored = read_ablation(Store(str(ablation_store)))
    steps = over_training(stored.curves, stored.summary)
    drops = steps.set_index("step")["drop_beyond_random"]
    assert (drops[drops.index < TASK_STEP] < NECESSITY_THRESHOLD).all()
    assert (drops[drops.index >= TASK_STEP] >= 0.8).all()  # intact >= 0.9, random >= 0.8
    (row,) = necessary_steps(steps).to_dict("records")
    assert (row["relation"], row["necessary_step"]) == (TASK_RELATION, TASK_STEP)
    assert row["n_steps"] == len(TASK_STEPS)
    # The chart's dashed rule stands at that step, on the training charts' symlog axis.
    spec = necessity_chart(steps, necessary_steps(steps)).to_dict()
    (panel,) = spec["concat"]
    _, lines, rule = panel["layer"]
    assert lines["encoding"]["x"]["scale"]["type"] == "symlog"
    assert spec["datasets"][rule["data"]["name"]] == [{"step": TASK_STEP}]


def test_a_threshold_no_step_reaches_says_never(ablation_store: Path) -> None:
    stored = read_ablation(Store(str(ablation_store)))
    steps = over_training(stored.curves, stored.summary)
    assert necessary_steps(steps, threshold=1.01)["necessary_step"].isna().all()


def test_a_store_swept_without_ablation_reads_and_its_command_adds_it(
    task_series: Path, ablation_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    plain = sw.SweepSettings(ABLATION_SETTINGS.classify, "cpu", "float32")
    sw.sweep(sw.plan_jobs([str(task_series)]), plain, str(store))
    before = read_ablation(Store(str(store)))
    assert before.curves.empty and before.asked is None
    assert before.missing == {str(task_series): [f"step{s}" for s in TASK_STEPS]}
    (command,) = add_commands(str(store), before)
    # The page's command as given (the store's settings: its relations, dtype, no patterns),
    # with the draws of the store it is compared with.
    argv = shlex.split(command)[3:]
    assert "--ablate" in argv and argv[argv.index("--out") + 1] == str(store)
    assert {"--no-patterns", "float32", TASK_RELATION} <= set(argv)
    assert sweep_main([*argv, "--random-draws", "3"]) == 0
    after = read_ablation(Store(str(store)))
    assert after.missing == {}
    expected = read_ablation(Store(str(ablation_store)))
    pd.testing.assert_frame_equal(
        after.curves.drop(columns="model"), expected.curves.drop(columns="model")
    )


def test_a_repeated_ablation_sweep_recomputes_nothing(
    task_series: Path, ablation_store: Path, tmp_path: Path, monkeypatch
) -> None:
    store = tmp_path / "store"
    shutil.copytree(ablation_store, store)
    monkeypatch.setattr(sw, "run_job", lambda *args: pytest.fail("a stored job was run again"))
    results = sw.sweep(sw.plan_jobs([str(task_series)]), ABLATION_SETTINGS, str(store))
    assert [r.status for r in results] == ["kept"] * len(TASK_STEPS)
    job = sw.plan_jobs([str(task_series)], "step0")[0]
    plain = sw.SweepSettings(ABLATION_SETTINGS.classify, "cpu", "float32")
    assert sw.job_digest(job, plain) != sw.job_digest(job, ABLATION_SETTINGS)


def test_changed_curves_fail_the_tables_checksum(ablation_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(ablation_store, store)
    path = sorted(store.glob("*.parquet"))[-1]
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata)
    key = next(k for k in metadata if k.endswith(b"ablation_record"))
    record = json.loads(metadata[key])
    record["asked"]["draws"] = 4
    metadata[key] = json.dumps(record).encode()
    assert INTEGRITY in metadata
    pq.write_table(table.replace_schema_metadata(metadata), path)
    skipped: list[str] = []
    stored = read_ablation(Store(str(store)), skipped.append)
    assert len(skipped) == 1 and "checksum differs" in skipped[0]
    assert stored.curves["step"].nunique() == len(TASK_STEPS) - 1


def test_curves_asked_with_other_settings_are_refused(
    task_series: Path, ablation_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(ablation_store, store)
    other = sw.SweepSettings(
        ABLATION_SETTINGS.classify, "cpu", "float32", sw.AblationSettings(draws=1)
    )
    sw.sweep(sw.plan_jobs([str(task_series)], "step0"), other, str(store))
    with pytest.raises(InputError, match=r"ablation curves swept with different settings.*draws"):
        read_ablation(Store(str(store)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-heads", "3"], "add --ablate"),
        (["--ablate", "--relations", "none"], "no relation to ablate"),
        (["--ablate", "--random-draws", "-1"], "--random-draws must be 0 or more"),
        (["--ablate", "--template", "no slot"], "must hold <X>"),
    ],
)
def test_bad_ablation_options_are_refused_before_any_job(
    task_series: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    argv = ["--model", str(task_series), "--out", str(tmp_path / "store"), *extra]
    with pytest.raises(InputError, match=message):
        sweep_main(argv)
    assert not (tmp_path / "store").exists()


def test_ray_stores_the_same_curves(
    task_series: Path, ablation_store: Path, tmp_path: Path
) -> None:
    with local_ray():
        jobs = sw.plan_jobs([str(task_series)])
        results = sw.sweep(jobs, ABLATION_SETTINGS, str(tmp_path), engine="ray")
    assert [r.status for r in results] == ["stored"] * len(TASK_STEPS)
    on_ray = read_ablation(Store(str(tmp_path)))
    in_process = read_ablation(Store(str(ablation_store)))
    pd.testing.assert_frame_equal(on_ray.curves, in_process.curves, check_exact=True)
    pd.testing.assert_frame_equal(on_ray.summary, in_process.summary, check_exact=True)


def test_arrow_keeps_every_curve_value(ablation_store: Path) -> None:
    """The curves read back are the fractions the engine computed: k / n_prompts exactly."""
    stored = read_ablation(Store(str(ablation_store)))
    n_prompts = stored.summary.set_index("step")["n_prompts"]
    hits = stored.curves["accuracy"] * stored.curves["step"].map(n_prompts)
    assert (hits - hits.round()).abs().max() < 1e-9
    assert pa.types.is_floating(pa.Table.from_pandas(stored.curves).schema.field("accuracy").type)


def test_the_synthetic_command_writes_the_task_series(task_series: Path, tmp_path: Path) -> None:
    steps = ",".join(map(str, TASK_STEPS))
    argv = ["--series", "--steps", steps, "--task-from", str(TASK_STEP), "--out", str(tmp_path)]
    assert synthetic_main(argv) == 0
    for step in TASK_STEPS:
        written = (tmp_path / f"step{step}" / "model.safetensors").read_bytes()
        assert written == (task_series / f"step{step}" / "model.safetensors").read_bytes()
    with pytest.raises(InputError, match="--task-from writes a series of its own"):
        synthetic_main(["--task-from", "2", "--out", str(tmp_path / "other")])


def test_the_curves_digest_follows_the_ablation_code_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing the causal check's code recomputes ablated jobs, never a plain table."""
    for name in ("lib", provenance.SCORING_DATA):
        shutil.copytree(provenance.ROOT / name, tmp_path / name)
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    scoring, ablation = provenance.scoring_code_digest.__wrapped__, provenance.code_digest
    before = (scoring(), ablation(provenance.ABLATION_ENTRY))
    with (tmp_path / provenance.ABLATION_ENTRY).open("a") as module:
        module.write("# a change\n")
    assert scoring() == before[0]
    assert ablation(provenance.ABLATION_ENTRY) != before[1]
