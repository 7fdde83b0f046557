"""A layer x head heatmap of one score column of a per-head table (Altair).

Rows are layers (0 at the top, as depth grows down the page), columns are heads; a cell's
colour is the head's score in percent on a fixed 0-100 % scale, so two heatmaps compare. The
tooltip gives layer, head, label and the score to one decimal.

Cells are square, `cell_size` pixels a side: as large as fits `MAX_WIDTH` for the model's heads,
but never under `MIN_CELL` (a 40-head model stays readable, the page scrolls) nor over
`MAX_CELL` (a 3-layer, 4-head model is a small block, not a strip across the page).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

MIN_CELL = 22
"""Smallest cell side in pixels: room for the axis labels and a pointer."""
MAX_CELL = 48
"""Largest cell side in pixels."""
MAX_WIDTH = 880
"""Width in pixels the cells of a row fill, when `MIN_CELL` and `MAX_CELL` allow."""


def cell_size(n_heads: int) -> int:
    """The cell side in pixels for a model with `n_heads` heads per layer."""
    return max(MIN_CELL, min(MAX_CELL, MAX_WIDTH // max(n_heads, 1)))


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
    n_layers, n_heads = int(frame["layer"].max()) + 1, int(frame["head"].max()) + 1
    cell = cell_size(n_heads)
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
        .properties(
            width=cell * n_heads,
            height=cell * n_layers,
            # Axes and legend are added around the cells; "fit" would shrink the cells instead.
            autosize=alt.AutoSizeParams(type="pad"),
        )
    )
