"""Comparing two runs (`lib.compare`), the results view's summaries (`lib.tables.summary`) and the
listing of stored results (`lib.runs.result_cache.stored_results`), on the planted model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lib.compare import main as compare_main
from lib.core.errors import EXIT_BAD_INPUT, run_cli
from lib.runs.result_cache import ResultCache, ResultKey, stored_results
from lib.scoring.pipeline import Classification, write_classification
from lib.tables.compare import compare
from lib.tables.labels import Thresholds, label_heads
from lib.tables.summary import label_counts, passing_heads, reading_order
from tests.conftest import Planted


def without_previous_token(table: pd.DataFrame, where: tuple[int, int]) -> pd.DataFrame:
    """`table` as if the planted previous-token head attended elsewhere."""
    row = (table["layer"] == where[0]) & (table["head"] == where[1])
    return table.assign(previous_token=table["previous_token"].where(~row, 0.0))


def test_heads_whose_label_differs_are_listed_with_both_labels(
    planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    a = planted_classification.table
    where = planted_checkpoint.where("previous_token")
    found = compare(a, without_previous_token(a, where), Thresholds())
    assert found.shapes is None and found.n_matched == 12
    (row,) = found.differences.itertuples(index=False)
    assert (row.layer, row.head) == where
    assert (row[2], row[4]) == ("previous_token", "unclassified")  # label A, label B
    # Same model and revision: the panels are still told apart.
    assert found.names[0].startswith("A: ") and found.names[1].startswith("B: ")
    assert list(found.counts.table["model"].unique()) == list(found.names)


def test_both_runs_are_labelled_with_the_same_thresholds(
    planted_classification: Classification,
) -> None:
    a = planted_classification.table
    b = label_heads(a.drop(columns=["label", "score"]), Thresholds(operation=0.0))
    assert (a["label"] != b["label"]).sum() == 8  # as stored, every head of b is labelled
    assert compare(a, b, Thresholds()).differences.empty


def test_different_shapes_are_said_plainly_and_bins_are_shared(
    planted_classification: Classification,
) -> None:
    a = planted_classification.table
    b = a[a["layer"] < 2]  # a 2-layer model of the same heads
    found = compare(a, b, Thresholds(), population="all")
    assert found.shapes is not None
    assert found.shapes.startswith("The models differ in shape: A has 3 layers × 4 heads, B 2 × 4")
    assert found.n_matched == 8 and found.differences.empty
    bins = found.counts.table.groupby("model", sort=False)["layer_bin"].unique()
    assert [list(b) for b in bins] == [["[0, 1)", "[1, 2)", "[2, 3)"]] * 2
    # One set of categories for both panels: a colour is the same range in each.
    assert found.counts.table.groupby("category")["color"].nunique().max() == 1


def test_the_compare_command_writes_the_differing_heads(
    planted_classification: Classification,
    planted_checkpoint: Planted,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_classification(planted_classification, a)
    where = planted_checkpoint.where("previous_token")
    changed = without_previous_token(planted_classification.table, where)
    write_classification(Classification(changed, {}, ()), b)
    out = tmp_path / "diff.csv"
    assert run_cli(compare_main, [str(a), str(b), "--out", str(out)]) == 0
    assert pd.read_csv(out)[["layer", "head"]].to_numpy().tolist() == [list(where)]
    assert "1 of 12 heads differ in label" in capsys.readouterr().err
    figure = Path(__file__).resolve().parent.parent / "data/examples/pythia-6.9b-figure.csv"
    assert run_cli(compare_main, [str(figure), str(b), "--out", str(out)]) == EXIT_BAD_INPUT
    assert "is not a lib.classify per-head table" in capsys.readouterr().err


def test_label_counts_and_passing_heads_best_first(
    planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    table = planted_classification.table
    counts = label_counts(table)
    assert counts.values.tolist() == [
        *([label, 1] for label in sorted(planted_checkpoint.heads.values())),
        ["unclassified", 8],
    ]
    passing = passing_heads(table, Thresholds())
    for (layer, head), label in planted_checkpoint.heads.items():
        mine = passing[passing["finding"] == label]
        assert (mine.iloc[0]["layer"], mine.iloc[0]["head"]) == (layer, head)
    assert (passing["score"] >= passing["threshold"]).all()
    for _, rows in passing.groupby("finding", sort=False):
        assert rows["score"].is_monotonic_decreasing
    assert list(reading_order(table).columns[:4]) == ["layer", "head", "label", "score"]
    assert "model" not in reading_order(table) and "revision" not in reading_order(table)


def test_stored_results_lists_what_the_cache_holds(
    planted_classification: Classification, tmp_path: Path
) -> None:
    cache = ResultCache(tmp_path)
    key = ResultKey("planted", "main", "float32", ("name_copying",), None)
    cache.get_or_compute(key, lambda: planted_classification)
    (tmp_path / "stray.csv").write_text("not ours\n")  # no sidecar: not listed
    (stored,) = stored_results(tmp_path)
    assert stored.csv_path == cache.csv_path(key)
    settings = planted_classification.settings
    assert stored.description.startswith(f"{settings['model']} @ {settings['revision']} · ")
    assert "float32 on cpu · 20 relations + patterns" in stored.description
    pd.testing.assert_frame_equal(stored.read().table, planted_classification.table)
