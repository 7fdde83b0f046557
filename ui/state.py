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

START_ARGUMENT = {
    "number_input": "value",
    "text_input": "value",
    "color_picker": "value",
    "multiselect": "default",
    "selectbox": "index",
    "radio": "index",
}
"""The argument of each widget `kept` draws that sets the value it starts from."""
KEPT = "kept_widget_values"
PAGES = "kept_widget_pages"
T = TypeVar("T")


def current_page() -> str:
    """The script hash of the page this run draws (each page's widgets have their own ids)."""
    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx else ""


def restore(key: str, default: Any) -> Any:
    """Before a kept widget is drawn: its value of the last visit (else `default`) when it is
    new in this session or was last drawn on another page (Streamlit gives each page's widgets
    their own ids, so the same key on another page is another widget); on its own page, its
    state is the user's latest input and stays."""
    values: dict[str, Any] = st.session_state.setdefault(KEPT, {})
    pages: dict[str, str] = st.session_state.setdefault(PAGES, {})
    page = current_page()
    if key not in st.session_state or pages.get(key, page) != page:
        st.session_state[key] = values.get(key, default)
    return st.session_state[key]


def remember(key: str, value: Any) -> None:
    """After a kept widget is drawn: its value, for the next visit."""
    st.session_state.setdefault(KEPT, {})[key] = value
    st.session_state.setdefault(PAGES, {})[key] = current_page()


def starting_at(widget: Callable[..., Any], value: Any, options: dict[str, Any]) -> dict[str, Any]:
    """`widget`'s own default argument, set to `value`.

    A value set through `st.session_state` reaches the browser once, flagged as set; a browser
    that draws the widget afresh from a later run's message (seen on a session's first page
    runs) starts it from the widget's own default instead, and sends that back: number inputs
    came back as their implicit minimum, every threshold 0. With the default argument equal to
    the value, either message draws the same value. A keyed widget's identity does not depend on
    this argument, so passing it never resets the widget."""
    parameter = START_ARGUMENT.get(getattr(widget, "__name__", ""))
    if parameter != "index":
        return {parameter: value} if parameter else {}
    choices = list(options.get("options", ()))
    return {"index": choices.index(value)} if value in choices else {}


def kept(widget: Callable[..., T], label: str, key: str, default: Any, **options: Any) -> T:
    """`widget(label, key=key, **options)` starting from its value of the last visit, else
    `default` (`restore`, `starting_at`); its value is kept for the next visit."""
    start = restore(key, default)
    value = widget(label, key=key, **options, **starting_at(widget, start, options))
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
