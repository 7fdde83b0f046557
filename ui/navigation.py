"""The sidebar's links between the pages, the same on every page.

The app is a `pages/` multipage app; Streamlit's own sidebar list is switched off
(`client.showSidebarNavigation` in `.streamlit/config.toml`) because it names the home page
after its file ("streamlit app"). Each page calls `sidebar_links()` first.
"""

from __future__ import annotations

import streamlit as st

HOME = "streamlit_app.py"
LAYER_CHART = "pages/1_Layer_chart.py"
CLASSIFY_HEADS = "pages/2_Classify_heads.py"
COMPARE_RUNS = "pages/3_Compare_runs.py"
TRAINING_DYNAMICS = "pages/4_Training_dynamics.py"
LINKS = (
    (HOME, "Home", ":material/home:"),
    (LAYER_CHART, "Layer chart", ":material/stacked_bar_chart:"),
    (CLASSIFY_HEADS, "Classify heads", ":material/manage_search:"),
    (COMPARE_RUNS, "Compare runs", ":material/compare:"),
    (TRAINING_DYNAMICS, "Training dynamics", ":material/timeline:"),
)


def sidebar_links() -> None:
    """Links to every page at the top of the sidebar."""
    for page, label, icon in LINKS:
        st.sidebar.page_link(page, label=label, icon=icon)
    st.sidebar.divider()
