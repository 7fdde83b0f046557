"""The deployment's settings as a page sees them: environment merged with Streamlit secrets;
a run's progress bar within public mode's time budget; and what an unexpected error shows in
public mode."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets as tokens
from collections.abc import Iterator

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.app.public_mode import PublicMode, public_mode_from
from lib.core.errors import InputError
from lib.core.progress import Progress


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


def run_progress(bar: DeltaGenerator, mode: PublicMode) -> Progress:
    """A run's `Progress` drawn on `bar` (`st.progress`), started now: in public mode it stops
    the run with an `InputError` once the time budget is spent (`PublicMode.budgeted`)."""
    return mode.budgeted(
        lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message)
    )


def run_budget_caption(mode: PublicMode, where: DeltaGenerator | None = None) -> None:
    """Public mode's time budget of a run, said near a Run button (`where`: e.g. the sidebar)."""
    note = mode.run_budget_note
    if note is not None:
        (where or st).caption(note)


LOG = logging.getLogger("pythia_head_atlas")


@contextlib.contextmanager
def guarded(mode: PublicMode) -> Iterator[None]:
    """The frame around every page: public mode applied, then the page run inside
    `reported_errors`."""
    if mode.enabled:
        # Server-wide and scriptable in Streamlit 1.67: an error that escapes `reported_errors`
        # shows Streamlit's own redacted message, never a traceback or a server path.
        st.set_option("client.showErrorDetails", "none")
    with reported_errors(mode):
        yield


@contextlib.contextmanager
def reported_errors(mode: PublicMode) -> Iterator[None]:
    """Run a page's body; in public mode an unexpected exception becomes a generic message with
    a short reference, its traceback logged on the server under that reference. Locally it
    propagates, so that a developer sees it. Streamlit's st.stop / st.rerun are BaseExceptions
    and pass through."""
    try:
        yield
    except Exception:
        if not mode.enabled:
            raise
        reference = tokens.token_hex(4)
        LOG.exception("unexpected error, reference %s", reference)
        st.error(
            f"Something went wrong on our side (reference {reference}); the details are in the "
            "server's log. Try again, or report the reference to the app's maintainer."
        )
