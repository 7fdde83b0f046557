"""Widget values that outlive a visit to another page.

Streamlit forgets the state of every widget a run did not draw, so edits on one page (a bin
width, a title) are gone after a look at another. `kept` keeps each value under a key of our own
(`KEPT`, a dict that Streamlit leaves alone) and gives it back to the widget when it is drawn
again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner import get_script_run_ctx

KEPT = "kept_widget_values"
PAGES = "kept_widget_pages"
T = TypeVar("T")


def current_page() -> str:
    """The script hash of the page this run draws (each page's widgets have their own ids)."""
    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx else ""


def restore(key: str, default: Any) -> None:
    """Before a kept widget is drawn: its value of the last visit (else `default`) when it is
    new in this session or was last drawn on another page (Streamlit gives each page's widgets
    their own ids, so the same key on another page is another widget); on its own page, its
    state is the user's latest input and stays."""
    values: dict[str, Any] = st.session_state.setdefault(KEPT, {})
    pages: dict[str, str] = st.session_state.setdefault(PAGES, {})
    page = current_page()
    if key not in st.session_state or pages.get(key, page) != page:
        st.session_state[key] = values.get(key, default)


def remember(key: str, value: Any) -> None:
    """After a kept widget is drawn: its value, for the next visit."""
    st.session_state.setdefault(KEPT, {})[key] = value
    st.session_state.setdefault(PAGES, {})[key] = current_page()


def kept(widget: Callable[..., T], label: str, key: str, default: Any, **options: Any) -> T:
    """`widget(label, key=key, **options)` starting from its value of the last visit, else
    `default` (`restore`); its value is kept for the next visit."""
    restore(key, default)
    value = widget(label, key=key, **options)
    remember(key, value)
    return value


def kept_tabs(labels: Sequence[str], key: str) -> Sequence[DeltaGenerator]:
    """`st.tabs` opening on the tab that was open at the last visit. A click on a tab reruns
    the page (`on_change="rerun"`), so the open tab is known when the page is left."""
    restore(key, labels[0])
    tabs = st.tabs(list(labels), key=key, on_change="rerun")
    remember(key, st.session_state[key])
    return tabs


def put(key: str, value: Any) -> None:
    """Set a `kept` widget's value from code, before the widget is drawn in this run."""
    st.session_state[key] = value
    st.session_state.setdefault(KEPT, {})[key] = value


def drop(key: str) -> None:
    """Forget a `kept` widget's value, so that it is drawn next from its default."""
    st.session_state.setdefault(KEPT, {}).pop(key, None)
    st.session_state.pop(key, None)
