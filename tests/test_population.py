"""Chart populations (`lib.tables.population`) on the planted model, whose answers are known by
construction: three operation heads (copying, suppression, country -> capital) and one
pattern-only head (previous token) among 12."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.chart import main as chart_main
from lib.core.errors import EXIT_BAD_INPUT, InputError, run_cli
from lib.scoring.pipeline import Classification, write_classification
from lib.tables.labels import Thresholds, label_heads
from lib.tables.population import (
    DEFAULT_POPULATION,
    OPERATION_LABEL,
    OPERATION_SCORE,
    POPULATIONS,
    describe,
    select,
)
from tests.chart_helpers import FIGURE_CSV
from tests.conftest import Planted

OPERATION_HEADS = {
    (0, 0): "general_copying_english_500",
    (0, 1): "suppression: general_copying_english_500",
    (1, 2): "country_to_capital_wikidata",
}


def labels(rows: pd.DataFrame, column: str) -> dict[tuple[int, int], str]:
    return {(int(r["layer"]), int(r["head"])): r[column] for _, r in rows.iterrows()}


def heads(rows: pd.DataFrame) -> set[tuple[int, int]]:
    return set(labels(rows, "layer"))


def test_the_default_population_is_the_operation_heads_without_pattern_only_heads(
    planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    assert DEFAULT_POPULATION == "operation"
    table = planted_classification.table
    rows = select(table, DEFAULT_POPULATION, Thresholds())
    assert heads(rows) == set(OPERATION_HEADS)
    assert planted_checkpoint.where("previous_token") not in heads(rows)
    assert labels(rows, OPERATION_LABEL) == OPERATION_HEADS
    assert (rows[OPERATION_SCORE] == rows["score"]).all()  # their label is their operation
    assert POPULATIONS[DEFAULT_POPULATION].score_column == OPERATION_SCORE


def test_classified_and_all_heads(
    planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    table = planted_classification.table
    assert heads(select(table, "classified", Thresholds())) == set(planted_checkpoint.heads)
    assert len(select(table, "all", Thresholds())) == len(table) == 12


def test_a_mixed_head_is_an_operation_head_binned_on_its_operation_score(
    planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    """The previous-token head also passing a relation keeps its pattern label but enters the
    figure's population, binned on the relation's score, as the paper (no patterns) counts it."""
    where = planted_checkpoint.where("previous_token")
    table = planted_classification.table.set_index(["layer", "head"])
    table.loc[where, "score_country_to_capital_wikidata"] = 0.3
    table = label_heads(table.reset_index().drop(columns=["label", "score"]), Thresholds())
    rows = select(table, "operation", Thresholds()).set_index(["layer", "head"])
    assert table.set_index(["layer", "head"]).loc[where, "label"] == "previous_token"
    assert rows.loc[where, OPERATION_LABEL] == "country_to_capital_wikidata"
    assert rows.loc[where, OPERATION_SCORE] == pytest.approx(0.3)
    # A threshold above it leaves the head out again.
    assert where not in heads(select(table, "operation", Thresholds(operation=0.35)))


def test_each_population_says_what_it_holds_with_the_threshold() -> None:
    assert "≥ 20%" in describe("operation", Thresholds(operation=0.2))
    assert "pattern-only heads left out" in describe("operation", Thresholds())
    assert all(describe(name, Thresholds()) for name in POPULATIONS)
    with pytest.raises(InputError, match="unknown population 'some'"):
        describe("some", Thresholds())


def test_a_table_without_operation_columns_is_refused(
    planted_classification: Classification,
) -> None:
    table = planted_classification.table
    patterns_only = table.drop(columns=[c for c in table.columns if c.startswith("score_")])
    patterns_only = patterns_only.drop(
        columns=[c for c in table.columns if c.startswith("suppression_")]
    )
    with pytest.raises(InputError, match="no operation score columns"):
        select(patterns_only, "operation", Thresholds())


@pytest.mark.parametrize(
    ("population", "n_heads"), [("operation", 3), ("classified", 4), ("all", 12)]
)
def test_the_chart_command_charts_a_population(
    planted_classification: Classification,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
    population: str,
    n_heads: int,
) -> None:
    csv = tmp_path / "heads.csv"
    write_classification(planted_classification, csv)
    out = tmp_path / "counts.csv"
    argv = [str(csv), "--out", str(out), "--population", population]
    assert run_cli(chart_main, argv) == 0
    counts = pd.read_csv(out)
    assert counts["n_heads"].sum() == n_heads
    # The model's three layers, one bin each, also where the population has no head.
    assert counts["layer_bin"].unique().tolist() == ["[0, 1)", "[1, 2)", "[2, 3)"]
    assert "of 12 heads (thresholds from heads.settings.json)" in capsys.readouterr().err


def test_the_chart_command_without_a_sidecar_uses_the_default_thresholds(
    planted_classification: Classification, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "heads.csv"
    planted_classification.table.to_csv(csv, index=False)
    argv = [str(csv), "--out", str(tmp_path / "c.csv"), "--population", "operation"]
    assert run_cli(chart_main, argv) == 0
    assert "the default thresholds are used" in capsys.readouterr().err


def test_a_population_of_a_prebinned_file_is_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(FIGURE_CSV), "--out", str(tmp_path / "c.csv"), "--population", "operation"]
    assert run_cli(chart_main, argv) == EXIT_BAD_INPUT
    assert "is pre-binned: a population needs a per-head table" in capsys.readouterr().err
