"""Static vs dynamic: one head's rows, the disagreement rule and the scatter's titles."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.charts.static_vs_dynamic import (
    disagreements,
    panel_title,
    relation_scores_of_head,
    scatter_chart,
)
from lib.tables.in_context import VARIANTS


@pytest.fixture
def table() -> pd.DataFrame:
    """Two relations, three heads: head (0, 0) agrees, (0, 1) is 0.5 higher in context and
    0.3 lower without, (0, 2) everywhere 0."""
    rows = []
    for relation in ("a", "b"):
        for head, (static, forced, context) in enumerate([(1, 1, 1), (0.5, 0.2, 1.0), (0, 0, 0)]):
            rows.append(
                {
                    "layer": 0,
                    "head": head,
                    "relation": relation,
                    "static_score": static,
                    "static_suppression": 0.0,
                    "dynamic_score": forced,
                    "dynamic_suppression": 0.0,
                    "dynamic_score_in_context": context,
                    "dynamic_suppression_in_context": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_disagreements_are_the_heads_beyond_the_margin(table):
    flagged = disagreements(table, "dynamic_score_in_context", 0.2)
    assert list(zip(flagged["head"], flagged["relation"], strict=True)) == [(1, "a"), (1, "b")]
    assert flagged["difference"].tolist() == pytest.approx([0.5, 0.5])
    assert disagreements(table, "dynamic_score", 0.3).empty  # |0.2 - 0.5| = 0.3, not more
    assert len(disagreements(table, "dynamic_score", 0.29)) == 2


def test_head_scores_has_one_row_per_relation(table):
    rows = relation_scores_of_head(table, 0, 1)
    assert list(rows["relation"]) == ["a", "b"]
    assert list(rows.columns) == ["relation", "static_score", "static_suppression", *VARIANTS]


def test_each_panel_is_titled_with_its_r(table):
    summary = pd.DataFrame(
        {
            "relation": ["a", "b", "b"],
            "variant": ["dynamic_score"] * 3,
            "pairs": ["single-token", "single-token", "multi-token"],  # r of the single-token
            "pearson_r": [0.91, None, 0.5],
        }
    )
    spec = scatter_chart(table, summary, "dynamic_score", 0.2).to_dict()
    (data,) = spec["datasets"].values()
    assert {row["panel"] for row in data} == {
        "a (r = 0.91)",
        "b (r undefined: a constant side)",
    }
    assert panel_title("a", float("nan")) == "a (r undefined: a constant side)"
    assert [row["disagrees"] for row in data] == [False, True, False] * 2
