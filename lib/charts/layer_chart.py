"""The layer chart: `# heads` per layer bin, stacked by category, each segment labelled with its
share of the bar (`binning.PERCENT_DEFINITION`); one panel per model, side by side.

The page and `python -m lib.chart` draw through `layer_chart`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import pandas as pd

from lib.charts.page import panels_per_row
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
SIDE_BY_SIDE_MIN_WIDTH = 300
"""The least width of each of several panels: two fit side by side in `CONTENT_WIDTH`."""
LABEL_FONT_SIZE = 11
MIN_LABEL_HEIGHT = 13
"""A segment thinner than this many pixels has its label beside the bar, at the segment's
height, instead of inside (where it would spill over its neighbours)."""
BAND_PADDING_INNER, BAND_PADDING_OUTER = 0.3, 0.15
"""Layer-bin band paddings: with these, a bar is `1 - 0.3` of `width / bins` wide, which places
the labels of thin segments just right of their bar."""
OUTSIDE_LABEL_COLOR = "#222222"
OUTSIDE_LABEL_ROOM = 38
"""Pixels a label beside a bar needs between that bar and the next ("100.0%" at
`LABEL_FONT_SIZE`, and its 3 px offset)."""
MAX_BAND_PADDING_INNER = 0.6
HEADROOM = 1.08
"""The y axis runs to a round number at least this factor above the tallest bar, so that the
bar never touches the frame."""


def y_top(tallest: int) -> int:
    """The top of the `# heads` axis: `HEADROOM` x the tallest bar, rounded up to a multiple of
    a fifth of its power of ten (whole heads), and above the tallest bar."""
    wanted = max(tallest, 1) * HEADROOM
    unit = max(1, 10 ** math.floor(math.log10(wanted)) // 5)
    return max(int(math.ceil(wanted / unit) * unit), tallest + 1)


def default_title(counts: binning.Counts) -> str:
    """The model's name for one model; empty for several (each panel is titled by its model)."""
    models = counts.table["model"].unique()
    return str(models[0]) if len(models) == 1 else ""


def layer_chart(
    counts: binning.Counts, title: str | None = None, panels: Sequence[str] | None = None
) -> alt.TopLevelMixin:
    """The stacked bar chart of `counts`. `title` None means `default_title(counts)`.
    `panels` names the panels to draw, in order, also those with no head (drawn empty, with
    their title); None means the models of `counts`. Several panels share one y scale and
    wrap to rows that fit `lib.charts.page.CONTENT_WIDTH`.

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
    models = list(frame["model"].unique()) if panels is None else list(panels)
    bins = list(frame["layer_bin"].unique())
    top = y_top(int(frame.groupby(["model", "layer_bin"])["n_heads"].sum().max()))
    least = PANEL_MIN_WIDTH if len(models) == 1 else SIDE_BY_SIDE_MIN_WIDTH
    width = panel_width(frame, len(bins), top, least)
    if len(models) == 1 and panels is None:
        return _panel(frame, counts.categories, title, bins, top, width)
    drawn = [
        _panel(frame[frame["model"] == model], counts.categories, model, bins, top, width)
        for model in models
    ]
    columns = panels_per_row(width, len(drawn))
    return alt.concat(  # colours shared: one legend
        *drawn, columns=columns, title=title or alt.Undefined
    ).configure_legend(orient="bottom")


def beside_labels(frame: pd.DataFrame, top: int) -> pd.Series:
    """Whether each row's segment is too thin for its label inside (`MIN_LABEL_HEIGHT`)."""
    return (frame["n_heads"] > 0) & (frame["n_heads"] * PANEL_HEIGHT / top < MIN_LABEL_HEIGHT)


def panel_width(frame: pd.DataFrame, n_bins: int, top: int, least: int) -> int:
    """A panel's plot width: `BAR_STEP` per bin, at least `least`, and wide enough that a
    label beside a bar stays clear of the next bar. Panels side by side share it."""
    width = max(BAR_STEP * n_bins, least)
    if beside_labels(frame, top).any():
        width = max(width, math.ceil(n_bins * OUTSIDE_LABEL_ROOM / MAX_BAND_PADDING_INNER))
    return width


def band_padding(frame: pd.DataFrame, n_bins: int, top: int, width: int) -> float:
    """The gap between bars, as a fraction of a bin: `BAND_PADDING_INNER`, widened up to
    `MAX_BAND_PADDING_INNER` where a label beside a bar needs `OUTSIDE_LABEL_ROOM`."""
    if not beside_labels(frame, top).any():
        return BAND_PADDING_INNER
    step = width / n_bins
    return min(MAX_BAND_PADDING_INNER, max(BAND_PADDING_INNER, OUTSIDE_LABEL_ROOM / step))


def _panel(
    frame: pd.DataFrame,
    categories: binning.Categories,
    title: str,
    bins: list,
    top: int,
    width: int,
) -> alt.LayerChart:
    """One model's bars and labels over `bins`, `width` pixels wide, on a y axis from 0 to
    `top` (`y_top`). Both
    layers share one stack transform (bottom to top in category order), so each label sits at
    the middle of its own segment.

    Only non-empty segments are data (an empty one draws nothing; a panel with no head draws
    its axes and title), inline as values so that no row limit applies; the bins are still all
    on the x axis. The fixed y domain gives each segment's height in pixels for
    `MIN_LABEL_HEIGHT`.
    """
    padding = band_padding(frame, len(bins), top, width)
    drawn = frame[frame["n_heads"] > 0]
    drawn = drawn.assign(labelled=~beside_labels(drawn, top))
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
                scale=alt.Scale(domain=bins, paddingInner=padding, paddingOuter=BAND_PADDING_OUTER),
                title=X_TITLE,
            ).axis(labelAngle=0)
        )
    )
    bars = base.mark_bar().encode(
        y=alt.Y(
            "stack_start:Q",
            title=Y_TITLE,
            scale=alt.Scale(domain=[0, top], nice=False),
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
    middle = base.transform_calculate(stack_middle="(datum.stack_start + datum.stack_end) / 2")
    inside = (
        middle.transform_filter(alt.datum.labelled)
        .mark_text(baseline="middle", fontSize=LABEL_FONT_SIZE)
        .encode(y="stack_middle:Q", text="label:N", fill=alt.Fill("label_color:N", scale=None))
    )
    bar_half_width = width / (len(bins) - padding + 2 * BAND_PADDING_OUTER) * (1 - padding) / 2
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
