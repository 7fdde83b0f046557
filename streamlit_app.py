"""Pythia Head Atlas: the frame around every page.

`st.navigation` makes this script run on every page view: it sets the layout, draws the links
to every page, applies the deployment's public mode (`ui.deployment`) and runs the page inside
the error guard, so no page can forget either. The pages are the scripts in `pages/`
(`ui.navigation.PAGES`); docs/architecture.md says where each kind of change goes.
"""

import streamlit as st

from ui.deployment import guarded, public_mode
from ui.navigation import pages, sidebar_links

st.set_page_config(page_title="Pythia Head Atlas", layout="wide")
page = st.navigation(pages(), position="hidden")
sidebar_links()
with guarded(public_mode()):
    page.run()
