"""Static vs dynamic: one head's rows, the disagreement rule and the scatter's titles."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.charts import export
from lib.charts.page import CONTENT_WIDTH
from lib.charts.static_vs_dynamic import (
    COLUMNS,
    UNDEFINED_R,
    disagreements,
    panel_title,
    relation_scores_of_head,
    scatter_chart,
    summary_view,
)
from lib.tables.in_context import SINGLE_TOKEN, VARIANTS


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
        "b (r undefined (constant))",
    }
    assert panel_title("a", float("nan")) == "a (r undefined (constant))"
    assert [row["disagrees"] for row in data] == [False, True, False] * 2


def test_r_is_undefined_where_a_side_is_about_constant_and_never_none(table):
    # Relation a's static side is 0.5 for every head but for float noise: r is undefined
    # there, whatever the summary's number says; relation b has no r at all (NaN).
    noisy = table.assign(
        static_score=table["static_score"].where(
            table["relation"] == "b", 0.5 + 1e-9 * table["head"]
        )
    )
    summary = pd.DataFrame(
        {
            "relation": ["a", "b", "a"],
            "variant": ["dynamic_score", "dynamic_score", "dynamic_suppression"],
            "pairs": [SINGLE_TOKEN] * 3,
            "pearson_r": [0.9, float("nan"), float("nan")],
            "spearman_rho": [0.8, 0.7, float("nan")],
        }
    )
    spec = scatter_chart(noisy, summary, "dynamic_score", 0.2).to_dict()
    (data,) = spec["datasets"].values()
    assert {row["panel"] for row in data} == {
        "a (r undefined (constant))",
        "b (r undefined (constant))",
    }
    assert spec["columns"] == COLUMNS and spec["spec"]["layer"][1]["encoding"]["color"]["legend"]
    shown = summary_view(noisy, summary)
    assert shown["pearson_r"].tolist() == [UNDEFINED_R] * 3
    assert shown["spearman_rho"].tolist() == [UNDEFINED_R, "0.70", UNDEFINED_R]
    assert summary_view(table, summary)["spearman_rho"].tolist()[:2] == ["0.80", "0.70"]


def test_the_grid_fits_the_content_column(table):
    many = pd.concat([table.assign(relation=f"relation_number_{i}") for i in range(7)])
    summary = pd.DataFrame(
        {
            "relation": many["relation"].unique(),
            "variant": "dynamic_score",
            "pairs": SINGLE_TOKEN,
            "pearson_r": 0.5,
        }
    )
    svg = export.to_svg(scatter_chart(many, summary, "dynamic_score", 0.2)).decode()
    width = float(svg.split('width="', 1)[1].split('"', 1)[0])
    assert width <= CONTENT_WIDTH
    assert "|difference| &gt; 20 points" in svg or "|difference| > 20 points" in svg  # the legend
