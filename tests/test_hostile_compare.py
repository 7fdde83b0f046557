"""Hostile inputs to Compare runs (`lib.compare`, `lib.runs.result_cache.stored_results`): results
of older scoring code, another tool's table, runs with no head in the charted population,
large runs, and damaged entries whose messages a public page shows. Each ends in the right
comparison or one line, never a traceback or a server path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.compare import main as compare_main
from lib.core.errors import EXIT_BAD_INPUT, InputError, run_cli
from lib.runs.result_cache import ResultCache, ResultKey, stored_results
from lib.scoring.pipeline import Classification, Thresholds
from lib.tables.compare import compare
from lib.tables.result_files import write_pair


def cached(result: Classification, folder: Path) -> Path:
    """`result` stored in a cache folder under its key; its table's path."""
    cache = ResultCache(folder)
    key = ResultKey("planted", "main", "float32", (), None)
    cache.get_or_compute(key, lambda: result)
    return cache.csv_path(key)


def test_results_of_older_scoring_code_are_marked_listed_last_and_not_served(
    planted_classification: Classification, tmp_path: Path
) -> None:
    current = cached(planted_classification, tmp_path)
    settings = {**planted_classification.settings, "scoring_code": "an older digest"}
    write_pair(planted_classification.table, settings, tmp_path / "old.csv")
    (tmp_path / "old.csv").touch()  # the newest file: still listed after the current one
    fresh, old = stored_results(tmp_path)
    assert fresh.csv_path == current and "older scoring code" not in fresh.description
    assert old.description.endswith("· older scoring code")
    with pytest.raises(InputError, match="another version of the scoring code"):
        old.read()
    assert fresh.read().table.equals(planted_classification.table)


def test_another_tools_table_with_a_label_is_one_line(
    planted_classification: Classification, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, theirs = tmp_path / "mine.csv", tmp_path / "theirs.csv"
    write_pair(planted_classification.table, planted_classification.settings, mine)
    theirs.write_text("layer,head,label\n0,0,induction\n0,1,copy\n")
    out = tmp_path / "diff.csv"
    assert run_cli(compare_main, [str(mine), str(theirs), "--out", str(out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: theirs.csv is not a lib.classify per-head table")
    assert err.count("\n") == 1


def test_runs_without_operation_heads_still_list_their_differences(
    planted_classification: Classification,
) -> None:
    table = planted_classification.table
    operations = [c for c in table if c.startswith(("score_", "suppression_"))]
    a = table.assign(**{column: 0.0 for column in operations})
    b = a.assign(previous_token=0.0)  # the planted previous-token head loses its label in B
    found = compare(a, b, Thresholds(), population="operation")
    assert found.counts is None
    assert found.chart_note.startswith("Neither run has a head in the population")
    assert found.differences["label A"].tolist() == ["previous_token"]
    assert found.differences["label B"].tolist() == ["unclassified"]


def test_two_runs_each_within_the_row_limit_are_compared() -> None:
    n = 510_000  # each within the 1,000,000-row limit, together over it
    columns = ["score_copying", "previous_token"]
    scores = np.random.default_rng(0).random((n, len(columns)))
    big = pd.DataFrame(scores, columns=columns).assign(
        model="big", revision="main", layer=np.arange(n) // 1000, head=np.arange(n) % 1000
    )
    big = big.assign(label="", score=0.0)
    found = compare(big, big, Thresholds(), population="all")
    assert found.counts.table.groupby("model")["n_heads"].sum().tolist() == [n, n]
    assert found.n_matched == n and found.differences.empty


def test_a_damaged_entry_is_named_without_the_servers_cache_path(
    planted_classification: Classification, tmp_path: Path
) -> None:
    folder = tmp_path / "server" / "cache"
    csv = cached(planted_classification, folder)
    csv.write_bytes(csv.read_bytes()[:-20])
    (stored,) = stored_results(folder)
    with pytest.raises(InputError) as raised:
        stored.read()
    assert str(raised.value).startswith(stored.description)
    assert "server" not in str(raised.value) and "was changed" in str(raised.value)
