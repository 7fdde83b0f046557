"""Pythia Head Atlas engine: loading, scoring, binning, charting. No Streamlit in here."""

__version__ = "0.1.0"
