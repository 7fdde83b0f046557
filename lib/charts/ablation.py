"""The causal check's curves (docs/methods.md §10) as one Altair chart: accuracy (y, 0-100 %)
against heads removed (x), the relation's heads as a line, the random draws as a band (their
lowest to highest accuracy at each k) around their mean, and each control task as a dashed
line. Reads the curves table of `lib.scoring.ablation` (`lib.tables.ablation.CURVE_COLUMNS`).
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from lib.tables.ablation import CONTROL_PREFIX, RANDOM_CURVE, RELATION_CURVE

CHART_WIDTH = 560
CHART_HEIGHT = 300
RELATION_COLOR = "#d62728"
RANDOM_COLOR = "#7f7f7f"
MAX_TICKS = 20
"""At most this many whole-number ticks on the heads-removed axis."""


def curves_chart(curves: pd.DataFrame, relation: str) -> alt.LayerChart:
    """`relation`'s three curves from `curves` (fractions), drawn in percent on a 0-100 % axis
    shared by every line, so relation, random and control curves compare directly."""
    part = curves[curves["relation"] == relation].assign(percent=lambda f: 100 * f["accuracy"])
    last = int(part["k"].max()) if len(part) else 0
    ticks = list(range(0, last + 1, max(1, math.ceil(last / MAX_TICKS))))
    x = alt.X("k:Q", title="heads removed", axis=alt.Axis(values=ticks, format="d"))
    y = alt.Y("percent:Q", title="accuracy (%)", scale=alt.Scale(domain=[0, 100]))
    tooltip = [
        alt.Tooltip("curve:N", title="curve"),
        alt.Tooltip("k:Q", title="heads removed"),
        alt.Tooltip("percent:Q", title="accuracy (%)", format=".1f"),
    ]
    random = part[part["curve"] == RANDOM_CURVE].groupby("k")["percent"]
    band = pd.DataFrame({"low": random.min(), "high": random.max(), "percent": random.mean()})
    band = band.reset_index().assign(curve="random heads (mean; band: min-max of draws)")
    layers = [
        alt.Chart(band)
        .mark_area(opacity=0.25, color=RANDOM_COLOR)
        .encode(x=x, y=alt.Y("low:Q", scale=alt.Scale(domain=[0, 100])), y2="high:Q"),
        alt.Chart(band).mark_line(color=RANDOM_COLOR).encode(x=x, y=y, tooltip=tooltip),
    ]
    controls = part[part["curve"].str.startswith(CONTROL_PREFIX)]
    if len(controls):
        layers.append(
            alt.Chart(controls)
            .mark_line(strokeDash=[5, 3], point=True)
            .encode(
                x=x,
                y=y,
                color=alt.Color("curve:N", title="control tasks"),
                tooltip=tooltip,
            )
        )
    own = part[part["curve"] == RELATION_CURVE]
    layers.append(
        alt.Chart(own)
        .mark_line(color=RELATION_COLOR, strokeWidth=3, point=True)
        .encode(x=x, y=y, tooltip=[*tooltip, "layer:O", "head:O"])
    )
    return alt.layer(*layers).properties(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        title=f"{relation}: relation heads (red), random heads (grey band), controls (dashed)",
    )
