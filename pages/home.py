"""Home page of Pythia Head Atlas: what the app does and where to go."""

import streamlit as st

from ui.frame import require_frame
from ui.navigation import CLASSIFY_HEADS, COMPARE_RUNS, LAYER_CHART, TRAINING_DYNAMICS

require_frame()

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
* **Compare runs** puts two scored runs side by side (two checkpoints, sizes, or deduped and
  not): their layer charts on shared bins and colours, and the heads whose label differs.
* **Training dynamics** follows every head over training from a sweep's results store
  (`python -m lib.sweep`, in process or on Ray): heads per category over the steps, the layer
  chart at any step, when each head took its final role, one head's scores over training.
"""
)
st.page_link(LAYER_CHART, label="Layer chart", icon=":material/stacked_bar_chart:")
st.page_link(CLASSIFY_HEADS, label="Classify heads", icon=":material/manage_search:")
st.page_link(COMPARE_RUNS, label="Compare runs", icon=":material/compare:")
st.page_link(TRAINING_DYNAMICS, label="Training dynamics", icon=":material/timeline:")
