"""The thresholds' inputs, shared by the pages that label heads (Classify heads, Compare runs).

The inputs keep their values for the whole session (`ui.state.kept`), across page switches, and
both pages read the same keys: one set of thresholds.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from lib.tables.labels import Thresholds
from ui.state import kept

THRESHOLD_KEY = "classify_threshold_{}"


def threshold_controls() -> Thresholds:
    """Thresholds in percent, in a folded sidebar section; they relabel stored scores
    (`lib.runs.result_cache.relabel`), never recompute them."""
    defaults = Thresholds()
    with st.sidebar.expander("Thresholds"):
        st.caption(
            "Changing a threshold relabels the stored scores at once; nothing is recomputed. "
            + " ".join((Thresholds.__doc__ or "").split())
        )
        values = {
            field.name: kept(
                st.number_input,
                f"{field.name} (%)",
                key=THRESHOLD_KEY.format(field.name),
                default=100 * getattr(defaults, field.name),
                min_value=0.0,
                max_value=100.0,
                step=5.0,
            )
            / 100
            for field in fields(Thresholds)
        }
    return Thresholds(**values)
