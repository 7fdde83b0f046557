"""A run's layer chart on a page: the population choice, the chart, what its numbers mean.

Shared by the Classify heads page (one run) and the Compare runs page (two runs, shared bins).
The population radio keeps its choice for the session (`persist_state="session"`).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lib.charts.layer_chart import layer_chart
from lib.tables import binning
from lib.tables.labels import Thresholds
from lib.tables.population import DEFAULT_POPULATION, POPULATIONS, describe


def population_choice(thresholds: Thresholds, key: str) -> str:
    """The population to chart, each choice described in one line beneath it."""
    names = list(POPULATIONS)
    return st.radio(
        "Chart population",
        names,
        index=names.index(DEFAULT_POPULATION),
        format_func=lambda name: POPULATIONS[name].title,
        captions=[describe(name, thresholds) for name in names],
        key=key,
        persist_state="session",
        help="Which heads the layer chart counts (docs/methods.md §5).",
    )


def show_counts(
    counts: binning.Counts, title: str = "", panels: Sequence[str] | None = None
) -> None:
    """The stacked layer chart of `counts` (its `panels`, as `layer_chart` draws them), its
    definitions beneath it."""
    st.altair_chart(layer_chart(counts, title, panels), theme=None, width="content")
    st.caption(f"{binning.PERCENT_DEFINITION} {binning.LAYER_BIN_DEFINITION}")
    st.caption("Categories, bottom to top: " + "; ".join(counts.categories.ranges()) + ".")
