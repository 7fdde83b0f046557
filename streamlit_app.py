"""Entry point of Pythia Head Atlas: the home page and the navigation to the two tools.

The tools are the scripts in `pages/`; each also runs on its own
(`AppTest.from_file("pages/1_Layer_chart.py")`).
"""

import streamlit as st

LAYER_CHART = "pages/1_Layer_chart.py"
CLASSIFY_HEADS = "pages/2_Classify_heads.py"


def home() -> None:
    """What the app does and where to go."""
    st.title("Pythia Head Atlas")
    st.markdown(
        """
What do the attention heads of a Pythia model do, and where in depth do they sit?

* **Layer chart** draws `# heads` per layer bin, stacked by category, each segment labelled
  with its share of the bar. It opens on the published "Pythia 6.9B" figure of MAPS
  (Elhelo & Geva, arXiv 2412.11965); upload your own per-head CSV, edit the layer bins,
  category ranges, names and colours, and export PNG, SVG, Vega-Lite JSON or CSV.
* **Classify heads** scores every attention head of a Pythia model (any size, deduped or
  not, any training checkpoint, or a local checkpoint folder) on the GPU when there is one:
  which relations its OV circuit implements, read from its parameters (MAPS), and which
  attention patterns it shows. Inspect a head, download the table, or open it in the chart.
"""
    )
    st.page_link(LAYER_CHART, label="Layer chart", icon=":material/stacked_bar_chart:")
    st.page_link(CLASSIFY_HEADS, label="Classify heads", icon=":material/manage_search:")


st.set_page_config(page_title="Pythia Head Atlas", layout="wide")
st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page(LAYER_CHART, title="Layer chart", icon=":material/stacked_bar_chart:"),
        st.Page(CLASSIFY_HEADS, title="Classify heads", icon=":material/manage_search:"),
    ]
).run()
