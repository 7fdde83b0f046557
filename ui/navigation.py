"""The app's pages and the sidebar's links between them, drawn once by the frame.

`streamlit_app.py` hands `pages()` to `st.navigation` (its own menu hidden: it would name the
pages after their files) and draws `sidebar_links()` above every page.
"""

from __future__ import annotations

import streamlit as st

HOME = "pages/home.py"
LAYER_CHART = "pages/1_Layer_chart.py"
CLASSIFY_HEADS = "pages/2_Classify_heads.py"
COMPARE_RUNS = "pages/3_Compare_runs.py"
TRAINING_DYNAMICS = "pages/4_Training_dynamics.py"
LINKS = (
    (HOME, "Home", ":material/home:", ""),
    (LAYER_CHART, "Layer chart", ":material/stacked_bar_chart:", "Layer_chart"),
    (CLASSIFY_HEADS, "Classify heads", ":material/manage_search:", "Classify_heads"),
    (COMPARE_RUNS, "Compare runs", ":material/compare:", "Compare_runs"),
    (TRAINING_DYNAMICS, "Training dynamics", ":material/timeline:", "Training_dynamics"),
)
"""(script, title, icon, address) of every page; the first is the home page."""


def pages() -> list[st.Page]:
    """Every page, at the address it had as a `pages/` script (bookmarks keep working)."""
    return [
        st.Page(script, title=title, icon=icon, url_path=address or None, default=not address)
        for script, title, icon, address in LINKS
    ]


def sidebar_links() -> None:
    """Links to every page at the top of the sidebar."""
    for page, label, icon, _ in LINKS:
        st.sidebar.page_link(page, label=label, icon=icon)
    st.sidebar.divider()
