"""The frame around every page: layout, links, public mode and the error guard.

`run_app` is the entry script's whole body: `st.navigation` picks the page of the address, the
links are drawn, public mode is applied, and the page runs inside `ui.deployment.guarded`.

Streamlit also keeps its older `pages/` convention: while no run of the entry script has called
`st.navigation` yet (a fresh server whose first visitor opens a page's own address), it runs a
page file by itself, outside the frame. So every page starts with `require_frame()`, which then
runs the frame around that same page (its `st.navigation` picks it by its address, and switches
the convention off for the runs after) and ends the bare run: no page is ever shown unframed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import streamlit as st

from ui.deployment import guarded, public_mode
from ui.navigation import pages, sidebar_links

_framed: ContextVar[bool] = ContextVar("framed", default=False)


@contextlib.contextmanager
def framing() -> Iterator[None]:
    """Mark the page run inside as framed."""
    token = _framed.set(True)
    try:
        yield
    finally:
        _framed.reset(token)


def run_app() -> None:
    """Navigation, links, public mode and the error guard, around the page of the address."""
    st.set_page_config(page_title="Pythia Head Atlas", layout="wide")
    page = st.navigation(pages(), position="hidden")
    sidebar_links()
    with guarded(public_mode()), framing():
        page.run()


def require_frame() -> None:
    """A page's first call: inside the frame, nothing; run by Streamlit on its own, the frame
    runs around this same page instead, and this bare run ends."""
    if not _framed.get():
        run_app()
        st.stop()
