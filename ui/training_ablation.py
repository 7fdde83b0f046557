"""The Training dynamics page's "Heads necessary" view (docs/methods.md §10): when each
relation's heads become necessary over training, from the causal checks a sweep with
`--ablate` kept in the store (`lib.runs.stored_ablation`); for a store without them, the
command that adds them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from lib.charts.necessity import necessity_chart
from lib.core.errors import InputError
from lib.runs.store import Store, quiet
from lib.runs.stored_ablation import StoredAblation, add_commands, read_ablation
from lib.tables.ablation import ABLATION_DEFINITION, ACCURACY_DEFINITION
from lib.tables.necessity import (
    NECESSITY_THRESHOLD,
    necessary_definitions,
    necessary_steps,
    necessity_definition,
    over_training,
)

THRESHOLD = "training_necessity_threshold"
PERCENT_COLUMNS = ("base_accuracy_then", "drop_then", "last_drop")
NO_CHECK = (
    "This store has no causal check over training (MAPS experiment 2: does removing a "
    "relation's heads break it?). Add it to every swept step, keeping the store's settings, with:"
)
SOME_MISSING = "Steps of this store without the causal check; add it with:"


@st.cache_data(max_entries=4, show_spinner="Reading the causal checks…")
def read(url: str, version: str) -> StoredAblation:
    """The store's causal checks (`version`, `Store.version`, renews the cache); files it
    skips are listed by the page's own read of the store."""
    return read_ablation(Store(url), quiet)


def commands(url: str, stored: StoredAblation, models: Sequence[str]) -> None:
    """The commands that add the causal check to the `models`' steps lacking it."""
    missing = {m: r for m, r in stored.missing.items() if m in models}
    lines = add_commands(url, replace(stored, missing=missing))
    if lines:
        st.code("\n".join(lines), language="bash")


def necessary_table(necessary: pd.DataFrame, threshold: float) -> None:
    """The per-relation necessary steps, fractions in percent, each column's definition in ⓘ."""
    frame = necessary.assign(**{c: 100 * necessary[c] for c in PERCENT_COLUMNS})
    frame["necessary_step"] = frame["necessary_step"].astype("string").fillna("never")
    definitions = necessary_definitions(threshold)
    config: dict[str, Any] = {
        name: st.column_config.Column(name, help=text) for name, text in definitions.items()
    }
    for name in PERCENT_COLUMNS:
        config[name] = st.column_config.NumberColumn(name, help=definitions[name], format="%.1f%%")
    st.dataframe(frame, hide_index=True, column_config=config)


def view(url: str, models: Sequence[str]) -> None:
    """The chart and table of when each relation's heads become necessary, for `models`."""
    try:
        stored = read(url, Store(url).version())
    except InputError as error:
        st.error(str(error))
        return
    summary = stored.summary[stored.summary["model"].isin(models)]
    if summary.empty:
        st.info(NO_CHECK)
        commands(url, stored, models)
        return
    percent = st.slider(
        "Necessary at a drop beyond random of (accuracy points)",
        5,
        100,
        round(100 * NECESSITY_THRESHOLD),
        step=5,
        key=THRESHOLD,
        help=necessity_definition(),
    )
    threshold = percent / 100
    steps = over_training(stored.curves[stored.curves["model"].isin(models)], summary)
    necessary = necessary_steps(steps, threshold)
    st.altair_chart(necessity_chart(steps, necessary), theme=None, width="content")
    st.caption(
        f"{ACCURACY_DEFINITION}; {ABLATION_DEFINITION}. Each step: accuracy intact, with the "
        "relation's heads removed and with as many random heads removed (line: mean of the "
        "draws; band: lowest to highest), at n_heads_removed (the relation's heads removed "
        "until its accuracy reaches 0, else all of them). Dashed rule: "
        f"{necessity_definition(threshold)} (docs/methods.md §10)."
    )
    necessary_table(necessary, threshold)
    if any(model in models for model in stored.missing):
        st.caption(SOME_MISSING)
        commands(url, stored, models)
