"""The Layer chart page's controls: layer bins (default, width or edges) and score categories
(ranges, names, colours), each keeping its value across page visits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from lib.tables import binning
from lib.tables import head_table as ht
from ui.state import kept

PREFIX = "layer_chart_"
SETTING = f"{PREFIX}set_"
"""The prefix of every control's key (and of nothing else)."""
DRAWN = f"{PREFIX}drawn"
"""Each control's key -> (what it sets, in words; its default when last drawn): a value equal
to its default was not chosen by the user, so a new table gives it its own default."""
T = TypeVar("T")


LAYER_MODES = {"default": "Default", "width": "Width", "edges": "Edges"}
LAYER_BINS = "layer bins"


def key(name: str) -> str:
    """A control's key: the same for every table shown, so that a new table keeps the values
    that still apply to it (`ui.chart_settings.carry_over`)."""
    return f"{SETTING}{name}"


def setting(
    widget: Callable[..., T], label: str, name: str, what: str, default: Any, **options: Any
) -> T:
    """`kept(widget, label, key(name), default, **options)`, noting `what` it sets and its
    default for the next table."""
    st.session_state.setdefault(DRAWN, {})[key(name)] = (what, default)
    return kept(widget, label, key(name), default, **options)


def layer_controls(table: ht.AnyTable) -> binning.LayerBinning:
    """Layer bins: the default, a width, or explicit edges. A pre-binned table is offered only
    the widths and edges that merge its bins."""
    default_bins = binning.default_layer_bins(table)
    prebinned = isinstance(table, ht.BinnedTable)
    default_help = (
        "the file's own bins"
        if prebinned
        else f"{binning.DEFAULT_LAYER_BIN_COUNT} equal bins per model"
    )
    mode = setting(
        st.sidebar.radio,
        "Layer bins",
        "layer_mode",
        LAYER_BINS,
        "default",
        options=list(LAYER_MODES),
        format_func=LAYER_MODES.get,
        horizontal=True,
        help=f"Default: {default_help}. {binning.LAYER_BIN_DEFINITION}",
    )
    width = default_bins.edges[1] - default_bins.edges[0]
    if mode == "width" and isinstance(table, ht.BinnedTable):
        widths = binning.merge_widths(table)
        chosen = setting(
            st.sidebar.selectbox,
            "Bin width (layers)",
            "layer_width",
            LAYER_BINS,
            width,
            options=widths,
            help="The widths that merge the file's bins (a pre-binned count cannot be split).",
        )
        return binning.LayerBinning(width=int(chosen))
    if mode == "width":
        chosen = setting(
            st.sidebar.number_input,
            "Bin width (layers)",
            "layer_width",
            LAYER_BINS,
            width,
            min_value=1,
            max_value=binning.MAX_LAYER_EDGE,
            step=1,
        )
        return binning.LayerBinning(width=int(chosen))
    if mode == "edges" and isinstance(table, ht.BinnedTable):
        options = binning.merge_edges(table)
        edges = setting(
            st.sidebar.multiselect,
            "Layer edges",
            "layer_edges",
            LAYER_BINS,
            [edge for edge in default_bins.edges if edge in options],
            options=options,
            help="Two or more of the file's edges that split none of its bins; heads outside "
            "the first and last edge are listed.",
        )
        return binning.LayerBinning(edges=tuple(sorted(edges)))
    if mode == "edges":
        text = setting(
            st.sidebar.text_input,
            "Layer edges",
            "layer_edges",
            LAYER_BINS,
            ", ".join(map(str, default_bins.edges)),
            help="Increasing whole numbers; heads outside the first and last edge are listed.",
        )
        return binning.LayerBinning(edges=binning.parse_layer_edges(text))
    return binning.LayerBinning()


def category_controls(table: ht.AnyTable) -> binning.Categories:
    """The column heads are categorised by, its edges, and each category's name and colour.
    A name follows its category's definition (a score range or a value), a colour its
    category's position in the stack (score ranges) or value, across edits of the edges."""
    if isinstance(table, ht.BinnedTable):
        categories = binning.build_categories(table)
    else:
        columns = [*table.numeric_columns, *table.text_columns]
        first = st.session_state[COLUMN]
        column = setting(
            st.sidebar.selectbox,
            "Categorise heads by",
            "column",
            "category column",
            first if first in columns else binning.default_column(table),
            options=columns,
            help="A numeric column is cut at score edges; a text column gives one category per "
            "value.",
        )
        if column in table.text_columns:
            categories = binning.build_categories(table, category_column=column)
        else:
            edges = setting(
                st.sidebar.text_input,
                "Score edges (%)",
                f"score_edges_{column}",
                "score edges",
                ", ".join(f"{edge:g}" for edge in binning.DEFAULT_SCORE_EDGES),
                help="Category i holds scores in [edge i, edge i+1), the last one also its "
                f"upper edge. {ht.SCALE_RULE}",
            )
            categories = binning.build_categories(
                table, score_column=column, score_edges=binning.parse_score_edges(edges)
            )
    by_position = isinstance(categories, binning.ScoreCategories)
    names, colors = [], []
    few = len(categories.names) <= 8  # a long list (e.g. every engine label) starts folded
    with st.sidebar.expander("Category names and colours, bottom to top", expanded=few):
        for i, (name, color) in enumerate(zip(categories.names, categories.colors, strict=True)):
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            names.append(
                setting(
                    left.text_input,
                    f"Category {i + 1}",
                    f"name_{categories.column}_{name}",
                    "category names",
                    name,
                )
            )
            identity = i if by_position else name
            colors.append(
                setting(
                    right.color_picker,
                    f"Colour of category {i + 1}",
                    f"color_{categories.column}_{identity}",
                    "colours",
                    color,
                    label_visibility="collapsed",
                )
            )
    return binning.restyle(categories, names, colors)


VERSION = "layer_chart_version"
"""Renewed for every table shown: the last chart drawn belongs to one table."""


COLUMN = "layer_chart_column"
