"""Static vs dynamic scores of every head, side by side: one head's row per relation, the heads
where the two disagree, and a scatter per relation (Altair) with Pearson's r in its title.

Reads the table and summary of `lib.dynamic.in_context` (docs/methods.md §8). A head
*disagrees* on a relation when |static - dynamic| > margin, both fractions in [0, 1].
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.charts.page import panels_per_row
from lib.tables.in_context import SINGLE_TOKEN, STATIC_TWIN, VARIANTS

DEFAULT_MARGIN = 0.2
"""Default disagreement margin: 20 percentage points between static and dynamic score."""
PANEL_SIZE = 180
"""Pixels per side of one relation's scatter."""
COLUMNS = panels_per_row(PANEL_SIZE, 4, room=PANEL_SIZE // 2)
"""Scatters per row: as many as fit the page's content column (`lib.charts.page`), with room
for the axes and for titles wider than a panel."""
CONSTANT_SPREAD = 0.001
"""A side whose scores over heads span less than this (a tenth of a percentage point, under
what the chart and tables show) counts as constant: its correlation is undefined, however
float noise makes Pearson's r come out."""
UNDEFINED_R = "r undefined (constant)"
TWO_LINES = (
    "[slice(datum.value, 0, indexof(datum.value, ' (')), "
    "slice(datum.value, indexof(datum.value, ' (') + 1)]"
)
"""A panel title on two lines: the relation, then its r (a long relation name and its r would
not fit a panel's width on one)."""
CORRELATIONS = ("pearson_r", "spearman_rho", "pearson_r_pooled")


def relation_scores_of_head(table: pd.DataFrame, layer: int, head: int) -> pd.DataFrame:
    """One row per relation for head (`layer`, `head`): `relation`, the static scores, then
    the `VARIANTS`, fractions in [0, 1]."""
    rows = table[(table["layer"] == layer) & (table["head"] == head)]
    return rows[["relation", "static_score", "static_suppression", *VARIANTS]].reset_index(
        drop=True
    )


def disagreements(table: pd.DataFrame, variant: str, margin: float) -> pd.DataFrame:
    """Rows of `table` where |static - `variant`| > `margin`, with that `difference`
    (dynamic - static), largest first."""
    difference = table[variant] - table[STATIC_TWIN[variant]]
    flagged = table.assign(difference=difference)[difference.abs() > margin]
    columns = ["layer", "head", "relation", STATIC_TWIN[variant], variant, "difference"]
    return flagged.sort_values("difference", key=abs, ascending=False)[columns]


def panel_title(relation: str, r: float) -> str:
    """A scatter's title: the relation and Pearson's r over heads, or why there is none."""
    return f"{relation} (r = {r:.2f})" if r == r else f"{relation} ({UNDEFINED_R})"


def constant_sides(table: pd.DataFrame, variant: str) -> pd.Series:
    """Per relation, whether the static or the `variant` side of its scatter is constant
    (`CONSTANT_SPREAD`)."""
    columns = [STATIC_TWIN[variant], variant]
    spread = table.groupby("relation")[columns].agg(lambda c: c.max() - c.min())
    return (spread < CONSTANT_SPREAD).any(axis=1)


def summary_view(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """`summary` as shown: each correlation to two decimals, or `UNDEFINED_R` where it is NaN
    or a side of its scatter is constant (`constant_sides`); never an empty cell."""
    constant = pd.concat(
        {variant: constant_sides(table, variant) for variant in VARIANTS}, names=["variant"]
    )
    keys = pd.MultiIndex.from_frame(summary[["variant", "relation"]])
    undefined = constant.reindex(keys, fill_value=False).to_numpy()
    shown = summary.copy()
    for column in [c for c in CORRELATIONS if c in summary.columns]:
        values = summary[column].astype(float)
        shown[column] = [
            UNDEFINED_R if skip or value != value else f"{value:.2f}"
            for skip, value in zip(undefined, values, strict=True)
        ]
    return shown


def scatter_chart(
    table: pd.DataFrame, summary: pd.DataFrame, variant: str, margin: float
) -> alt.FacetChart:
    """Per relation, static (x) against `variant` (y) over all heads, in percent; a dashed
    diagonal where the two agree; heads that disagree by more than `margin` drawn in red."""
    static = STATIC_TWIN[variant]
    # r over the single-token pairs: the ones the static score is computed on.
    single = summary[(summary["variant"] == variant) & (summary["pairs"] == SINGLE_TOKEN)]
    r = single.set_index("relation")["pearson_r"].reindex(table["relation"].unique())
    r = r.astype(float).mask(constant_sides(table, variant).reindex(r.index, fill_value=False))
    frame = pd.DataFrame(
        {
            "panel": [panel_title(name, r[name]) for name in table["relation"]],
            "layer": table["layer"],
            "head": table["head"],
            "static": 100 * table[static],
            "dynamic": 100 * table[variant],
            "disagrees": (table[variant] - table[static]).abs() > margin,
        }
    )
    axis = alt.Scale(domain=[0, 100])
    points = (
        alt.Chart()
        .mark_circle(size=40, opacity=0.7)
        .encode(
            x=alt.X("static:Q", title=f"{static} (%)", scale=axis),
            y=alt.Y("dynamic:Q", title=f"{variant} (%)", scale=axis),
            color=alt.Color(
                "disagrees:N",
                title=f"|difference| > {100 * margin:.0f} points",
                scale=alt.Scale(domain=[False, True], range=["#4c78a8", "#d62728"]),
                legend=alt.Legend(
                    orient="top", labelExpr="datum.value ? 'disagrees' : 'within the margin'"
                ),
            ),
            tooltip=[
                alt.Tooltip("layer:O", title="Layer"),
                alt.Tooltip("head:O", title="Head"),
                alt.Tooltip("static:Q", title=f"{static} (%)", format=".1f"),
                alt.Tooltip("dynamic:Q", title=f"{variant} (%)", format=".1f"),
            ],
        )
    )
    diagonal = (
        alt.Chart()
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(x=alt.datum(0), y=alt.datum(0), x2=alt.datum(100), y2=alt.datum(100))
    )
    return (
        alt.layer(diagonal, points, data=frame)
        .properties(width=PANEL_SIZE, height=PANEL_SIZE)
        .facet(
            facet=alt.Facet(
                "panel:N",
                title=None,
                header=alt.Header(labelLimit=PANEL_SIZE + PANEL_SIZE // 2, labelExpr=TWO_LINES),
            ),
            columns=COLUMNS,
        )
        .properties(title=f"{variant} vs {static} over all heads (r: Pearson, over heads)")
    )
