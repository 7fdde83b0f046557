"""The layer chart: `# heads` per layer bin, stacked by category, each segment labelled with its
share of the bar (`binning.PERCENT_DEFINITION`); one panel per model, side by side.

The page and `python -m lib.chart` draw through `layer_chart`.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.core.colors import label_colors
from lib.tables import binning

Y_TITLE = "# heads"
X_TITLE = "Layer"
BAR_STEP = 64
"""Pixels per layer bin along the x axis, at least."""
PANEL_HEIGHT = 320
PANEL_MIN_WIDTH = 480
"""A panel is at least this wide, so that the chart is landscape on screen and in every export
alike (four bins of `BAR_STEP` alone would make a portrait panel)."""
LABEL_FONT_SIZE = 11
MIN_LABEL_HEIGHT = 13
"""A segment thinner than this many pixels has its label beside the bar, at the segment's
height, instead of inside (where it would spill over its neighbours)."""
BAND_PADDING_INNER, BAND_PADDING_OUTER = 0.3, 0.15
"""Layer-bin band paddings: with these, a bar is `1 - 0.3` of `width / bins` wide, which places
the labels of thin segments just right of their bar."""
OUTSIDE_LABEL_COLOR = "#222222"


def default_title(counts: binning.Counts) -> str:
    """The model's name for one model; empty for several (each panel is titled by its model)."""
    models = counts.table["model"].unique()
    return str(models[0]) if len(models) == 1 else ""


def layer_chart(counts: binning.Counts, title: str | None = None) -> alt.TopLevelMixin:
    """The stacked bar chart of `counts`. `title` None means `default_title(counts)`.

    Bars stack bottom to top in category order; each non-empty segment carries its `percent`
    to one decimal: inside it, in black or white, whichever contrasts more with its colour,
    or, for a segment under `MIN_LABEL_HEIGHT` pixels, just right of the bar at its height
    (as the published figure prints every share). The `# heads` axis has whole-number ticks.
    """
    title = default_title(counts) if title is None else title
    frame = counts.table.assign(
        label=[f"{percent:.1f}%" for percent in counts.table["percent"]],
        label_color=label_colors(counts.table["color"]),
        stack_order=counts.table["category"].map(
            {name: rank for rank, name in enumerate(counts.categories.names)}
        ),
    )
    models = list(frame["model"].unique())
    if len(models) == 1:
        return _panel(frame, counts.categories, title)
    panels = [_panel(frame[frame["model"] == model], counts.categories, model) for model in models]
    return alt.hconcat(*panels, title=title or alt.Undefined)  # colours shared: one legend


def _panel(frame: pd.DataFrame, categories: binning.Categories, title: str) -> alt.LayerChart:
    """One model's bars and labels. Both layers share one stack transform (bottom to top in
    category order), so each label sits at the middle of its own segment.

    Only non-empty segments are data (an empty one draws nothing), inline as values so that no
    row limit applies; the bins are still all on the x axis. The y axis runs from 0 to the
    tallest bar exactly, which gives each segment's height in pixels for `MIN_LABEL_HEIGHT`.
    """
    bins = list(frame["layer_bin"].unique())
    tallest = max(int(frame.groupby("layer_bin", sort=False)["n_heads"].sum().max()), 1)
    drawn = frame[frame["n_heads"] > 0]
    drawn = drawn.assign(labelled=drawn["n_heads"] * PANEL_HEIGHT / tallest >= MIN_LABEL_HEIGHT)
    base = (
        alt.Chart(alt.Data(values=drawn.to_dict("records")))
        .transform_stack(
            stack="n_heads",
            groupby=["layer_bin"],
            sort=[alt.SortField("stack_order")],
            as_=["stack_start", "stack_end"],
        )
        .encode(
            x=alt.X(
                "layer_bin:N",
                sort=bins,
                scale=alt.Scale(
                    domain=bins, paddingInner=BAND_PADDING_INNER, paddingOuter=BAND_PADDING_OUTER
                ),
                title=X_TITLE,
            ).axis(labelAngle=0)
        )
    )
    bars = base.mark_bar().encode(
        y=alt.Y(
            "stack_start:Q",
            title=Y_TITLE,
            scale=alt.Scale(domain=[0, tallest], nice=False),
            axis=alt.Axis(tickMinStep=1, format="d"),
        ),
        y2="stack_end:Q",
        color=alt.Color(
            "category:N",
            title=categories.column,
            scale=alt.Scale(domain=list(categories.names), range=list(categories.colors)),
            sort=list(categories.names),
        ),
        tooltip=["model:N", "layer_bin:N", "category:N", "n_heads:Q", "label:N"],
    )
    width = max(BAR_STEP * len(bins), PANEL_MIN_WIDTH)
    middle = base.transform_calculate(stack_middle="(datum.stack_start + datum.stack_end) / 2")
    inside = (
        middle.transform_filter(alt.datum.labelled)
        .mark_text(baseline="middle", fontSize=LABEL_FONT_SIZE)
        .encode(y="stack_middle:Q", text="label:N", fill=alt.Fill("label_color:N", scale=None))
    )
    bar_half_width = width / len(bins) * (1 - BAND_PADDING_INNER) / 2
    beside = (
        middle.transform_filter(~alt.datum.labelled)
        .mark_text(
            baseline="middle",
            align="left",
            dx=bar_half_width + 3,
            fontSize=LABEL_FONT_SIZE,
            fill=OUTSIDE_LABEL_COLOR,
        )
        .encode(y="stack_middle:Q", text="label:N")
    )
    return alt.layer(bars, inside, beside, title=title or alt.Undefined).properties(
        width=width, height=PANEL_HEIGHT
    )
