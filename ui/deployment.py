"""The deployment's settings as a page sees them: environment merged with Streamlit secrets."""

from __future__ import annotations

import os

import streamlit as st

from lib.errors import InputError
from lib.public_mode import PublicMode, public_mode_from


def secrets() -> dict[str, object]:
    """Top-level Streamlit secrets; none when the app has no `secrets.toml`."""
    try:
        return dict(st.secrets)
    except FileNotFoundError:  # Streamlit's "no secrets file" error is one
        return {}


def public_mode() -> PublicMode:
    """This deployment's `PublicMode` (a secret wins over the environment); a bad setting
    stops the page with its message, since nothing can safely run without it."""
    try:
        return public_mode_from({**os.environ, **secrets()})
    except InputError as error:
        st.error(str(error))
        st.stop()
