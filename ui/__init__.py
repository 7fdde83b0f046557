"""Streamlit helpers shared by the pages (Streamlit is allowed here, unlike in `lib/`)."""
