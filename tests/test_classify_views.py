"""What the Classify heads page draws from a table: the heatmap and the column help texts."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.charts.heatmap import MIN_CELL, head_heatmap
from lib.scoring import patterns
from lib.scoring.pipeline import Classification
from lib.tables.labels import PATTERNS, Thresholds, findings
from lib.tables.score_help import column_help, pattern_definition


def test_the_heatmap_has_one_cell_per_head_in_percent(
    planted_classification: Classification,
) -> None:
    table = planted_classification.table
    spec = head_heatmap(table, "previous_token").to_dict()
    cells = next(iter(spec["datasets"].values()))
    assert len(cells) == len(table) == 12
    by_head = {(cell["layer"], cell["head"]): cell["percent"] for cell in cells}
    assert by_head[(2, 3)] == pytest.approx(
        100 * table.set_index(["layer", "head"]).loc[(2, 3), "previous_token"]
    )
    assert spec["encoding"]["color"]["scale"]["domain"] == [0, 100]


def test_every_pattern_definition_is_the_one_lib_patterns_documents() -> None:
    for name in PATTERNS:
        assert f"- `{name}` = {pattern_definition(name)}" in patterns.__doc__


def test_every_pattern_has_its_definition() -> None:
    assert (
        pattern_definition("induction")
        == "mean over rows i >= n of `A[i, i - n + 1]` (the token after the earlier copy)"
    )
    assert all(pattern_definition(name) for name in PATTERNS)
    with pytest.raises(KeyError):
        pattern_definition("nothing")


def test_every_finding_column_has_help_with_its_threshold(
    planted_classification: Classification,
) -> None:
    columns = list(planted_classification.table.columns)
    thresholds = Thresholds(operation=0.2)
    helps = column_help(columns, planted_classification.settings, thresholds)
    found = findings(columns, thresholds)
    assert set(helps) == {column for column, _, _ in found} | {"label", "score"}
    assert helps["score_country_to_capital_wikidata"].endswith("Labels the head at ≥ 20%.")
    assert "top 1 tokens" in helps["score_general_copying_english_500"]  # k = 1 for copying
    assert helps["first_token"].endswith("Labels the head at ≥ 90%.")


@pytest.mark.parametrize(
    ("n_layers", "n_heads", "width", "height"),
    [(3, 4, 192, 144), (6, 4, 192, 288), (6, 8, 384, 288), (32, 32, 864, 864), (36, 40, 880, 792)],
    ids=["planted 3x4", "14m", "70m", "6.9b", "12b"],
)
def test_the_heatmap_is_sized_by_its_layers_and_heads(
    n_layers: int, n_heads: int, width: int, height: int
) -> None:
    """Square cells of 22 to 48 px: a 3- or 6-layer model is a readable block, not a strip
    across the page; the largest models keep cells a pointer can hit."""
    table = pd.DataFrame(
        [(layer, head, 0.5) for layer in range(n_layers) for head in range(n_heads)],
        columns=["layer", "head", "score"],
    )
    spec = head_heatmap(table, "score").to_dict()
    assert (spec["width"], spec["height"]) == (width, height)
    assert spec["width"] / n_heads == spec["height"] / n_layers >= MIN_CELL
    assert spec["autosize"] == {"type": "pad"}  # axes and legend around the cells
