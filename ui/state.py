"""Widget values that outlive a visit to another page.

Streamlit forgets the state of every widget a run did not draw, so edits on one page (a bin
width, a title) are gone after a look at another. `kept` keeps each value under a key of our own
(`KEPT`, a dict that Streamlit leaves alone) and gives it back to the widget when it is drawn
again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

KEPT = "kept_widget_values"
T = TypeVar("T")


def kept(widget: Callable[..., T], label: str, key: str, default: Any, **options: Any) -> T:
    """`widget(label, key=key, **options)` starting from its value of the last visit, else
    `default`; its value is kept for the next visit."""
    values: dict[str, Any] = st.session_state.setdefault(KEPT, {})
    if key not in st.session_state:
        st.session_state[key] = values.get(key, default)
    value = widget(label, key=key, **options)
    values[key] = value
    return value


def forget(prefix: str) -> None:
    """Drop the kept values whose keys start with `prefix` (e.g. when a new table is shown)."""
    values: dict[str, Any] = st.session_state.setdefault(KEPT, {})
    for key in [key for key in values if key.startswith(prefix)]:
        del values[key]
