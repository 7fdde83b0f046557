"""What the Layer chart's controls keep when a new table is shown (an upload, a hand-over, the
figure again): each value the user chose that still applies to the new table, in the form its
control takes for that table; every other value goes back to the new table's default.

A value applies when the new table draws its control and the control accepts it: the column
heads are categorised by when the new table has it (and came without one); score edges, names
and colours when it has their column and category; layer bins that fit its layers
(`binning.check_layers_fit`); the title when it shows the same models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import streamlit as st

from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht
from ui.chart_controls import DRAWN, SETTING, key
from ui.state import KEPT, drop, put

CARRIED = "layer_chart_carried"
"""What the last new table kept and reset, in words (None: it met no value the user chose)."""
ELSEWHERE = "for columns or categories the new table lacks"

Fit = Callable[[Any], Any]
"""A chosen value -> the value for the new table's control; InputError (why) if it does not
apply."""


def carry_over(previous: ht.AnyTable | None, table: ht.AnyTable, column_given: bool) -> None:
    """Keep the values the user chose that apply to `table` (shown after `previous`;
    `column_given`: it came with the column to categorise by), reset the others, and say
    which (`CARRIED`)."""
    values: dict[str, Any] = st.session_state.setdefault(KEPT, {})
    drawn: dict[str, tuple[str, Any]] = st.session_state.setdefault(DRAWN, {})
    settings = [name for name in values if name.startswith(SETTING) and name in drawn]
    chosen = {name: values[name] for name in settings if values[name] != drawn[name][1]}
    fits = rules(previous, table, column_given, chosen)
    carried, reset = [], []
    for name in settings:
        what = drawn[name][0]
        try:  # a default (not chosen) gives way to the new table's own
            value = fits.get(name, elsewhere)(chosen[name]) if name in chosen else None
        except InputError as error:
            value = None
            reset.append(f"{what} ({error})")
        if value is None:
            drop(name)
            del drawn[name]
        else:
            put(name, value)
            carried.append(what)
    st.session_state[CARRIED] = said(carried, reset)


def said(carried: list[str], reset: list[str]) -> str | None:
    """The caption telling what a new table kept and reset, each said once."""
    parts = []
    if carried:
        *others, last = dict.fromkeys(carried)
        listed = f"{', '.join(others)} and {last}" if others else last
        parts.append(f"Kept your {listed} from the previous table.")
    if reset:
        parts.append(f"Reset, as they do not apply here: {'; '.join(dict.fromkeys(reset))}.")
    return " ".join(parts) or None


def elsewhere(value: Any) -> Any:
    """The fit of a control the new table does not draw."""
    raise InputError(ELSEWHERE)


def same(value: Any) -> Any:
    """The fit of a control that takes any value it took before."""
    return value


def rules(
    previous: ht.AnyTable | None, table: ht.AnyTable, column_given: bool, chosen: dict[str, Any]
) -> dict[str, Fit]:
    """The fit of each control `table` draws, by key."""

    def title(value: str) -> str:
        if previous is None or models(previous) != models(table):
            raise InputError("the new table shows other models")
        return value

    layers = layer_fits(table)

    def mode(value: str) -> str:
        bins = key(f"layer_{value}")
        if bins in chosen:
            layers[bins](chosen[bins])  # a mode whose bins do not fit goes with them
        return value

    fits = {key("title"): title, key("layer_mode"): mode, **layers}
    fits.update(dict.fromkeys(category_keys(table, chosen), same))
    if isinstance(table, ht.HeadTable):
        fits[key("column")] = column_fit(table, column_given)
    return fits


def models(table: ht.AnyTable) -> list[str]:
    """The models of `table`, in order of first appearance (one panel each)."""
    return table.frame[ht.MODEL].unique().tolist()


def column_fit(table: ht.HeadTable, column_given: bool) -> Fit:
    """The column heads are categorised by: kept when the new table has it and came without
    a column of its own."""
    columns = (*table.numeric_columns, *table.text_columns)

    def fit(column: str) -> str:
        if column_given:
            raise InputError("the new table came with its own")
        if column not in columns:
            raise InputError(f"{table.source} has no such column")
        return column

    return fit


def layer_fits(table: ht.AnyTable) -> dict[str, Fit]:
    """The layer width and edges, as the new table's controls take them when they fit."""
    prebinned = isinstance(table, ht.BinnedTable)

    def width(value: int) -> int:
        binning.check_layers_fit(table, binning.LayerBinning(width=int(value)))
        return int(value)

    def edges(value: str | list[int]) -> str | list[int]:
        parsed = binning.parse_layer_edges(value) if isinstance(value, str) else sorted(value)
        bins = binning.LayerBins(tuple(parsed))  # two or more, increasing
        binning.check_layers_fit(table, binning.LayerBinning(edges=bins.edges))
        return list(bins.edges) if prebinned else ", ".join(map(str, bins.edges))

    return {key("layer_width"): width, key("layer_edges"): edges}


def category_keys(table: ht.AnyTable, chosen: dict[str, Any]) -> Iterator[str]:
    """The keys of the score edges, names and colours `table` draws: of each score column (cut
    at its chosen edges), each text column and a pre-binned table's own categories."""
    if isinstance(table, ht.BinnedTable):
        yield from style_keys(partial(binning.build_categories, table))
        return
    for column in table.numeric_columns:
        edges = key(f"score_edges_{column}")
        yield edges
        yield from style_keys(partial(score_categories, column, chosen.get(edges)))
    for column in table.text_columns:
        yield from style_keys(partial(binning.value_categories, table, column))


def score_categories(column: str, edges: str | None) -> binning.Categories:
    """The categories of a score column cut at `edges` (None: the default edges)."""
    if edges is None:
        return binning.score_categories(column)
    return binning.score_categories(column, binning.parse_score_edges(edges))


def style_keys(categories: Callable[[], binning.Categories]) -> list[str]:
    """The keys of the name and colour controls of `categories()` (`category_controls`); none
    when they cannot be drawn."""
    try:
        made = categories()
    except InputError:
        return []
    by_position = isinstance(made, binning.ScoreCategories)
    return [
        key(f"{control}_{made.column}_{identity}")
        for i, name in enumerate(made.names)
        for control, identity in (("name", name), ("color", i if by_position else name))
    ]
