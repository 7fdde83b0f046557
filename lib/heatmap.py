"""A layer x head heatmap of one score column of a per-head table (Altair).

Rows are layers (0 at the top, as depth grows down the page), columns are heads; a cell's
colour is the head's score in percent on a fixed 0-100 % scale, so two heatmaps compare. The
tooltip gives layer, head, label and the score to one decimal.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

CELL = 18
"""Pixels per cell side."""


def head_heatmap(table: pd.DataFrame, column: str, title: str = "") -> alt.Chart:
    """Heatmap of `table[column]` (fractions in [0, 1]) by `layer` and `head`."""
    frame = pd.DataFrame(
        {
            "layer": table["layer"],
            "head": table["head"],
            "label": table["label"] if "label" in table.columns else "",
            "percent": 100 * table[column].astype(float),
        }
    )
    n_layers, n_heads = frame["layer"].max() + 1, frame["head"].max() + 1
    return (
        alt.Chart(frame, title=title or column)
        .mark_rect()
        .encode(
            x=alt.X("head:O", title="Head"),
            y=alt.Y("layer:O", title="Layer"),
            color=alt.Color(
                "percent:Q",
                title=f"{column} (%)",
                scale=alt.Scale(domain=[0, 100], scheme="viridis"),
            ),
            tooltip=[
                alt.Tooltip("layer:O", title="Layer"),
                alt.Tooltip("head:O", title="Head"),
                alt.Tooltip("label:N", title="Label"),
                alt.Tooltip("percent:Q", title=f"{column} (%)", format=".1f"),
            ],
        )
        .properties(width=int(CELL * n_heads), height=int(CELL * n_layers))
    )
