"""Classify heads: score every attention head of a Pythia checkpoint, inspect it, chart it.

A run and the in-context check read the checkpoint one layer at a time, never loading the whole
model; the ablation loads it on demand through one server-wide `ResidentModel` (one model
resident, released before another loads). Results come from the server-wide `ResultCache`
(memory, then disk under `$HEAD_ATLAS_CACHE_DIR`), so a rerun, a reload or a restart shows the
table at once.

After a run the page answers questions first: heads per label, the run's layer chart, and per
finding the heads at or above its threshold, each a click away from the head inspector; then
the whole per-head table, the heatmap and the downloads. Each part is one function below.

Session state (`classify_*` keys): the last result shown (`RESULT`) and the model it came
from (`MODEL`, for the head inspector); the table's selection (`TABLE`) and the inspected head
(`HEAD`, set by a click on a table row or on a head in the summary). Every input keeps its
value for the session (`persist_state="session"`), so a visit to another page (e.g. Open in
chart) and back finds the sidebar naming the checkpoint whose results are shown. Thresholds
relabel the cached scores on every run of the script: changing one never recomputes.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib.app.public_mode import PublicMode
from lib.charts.export import safe_stem
from lib.checkpoints.hub import OFFLINE_NOTE, hub_offline
from lib.checkpoints.loader import (
    is_folder_source,
)
from lib.core.errors import InputError
from lib.runs.classification import RunRequest, classify_cached, model_key
from lib.runs.result_cache import CACHE_DIR_KEY, Lookup, cache_dir, relabel
from lib.scoring import operations, patterns
from lib.scoring.operations import salient_operations
from lib.scoring.pipeline import Classification
from lib.tables import head_table as ht
from lib.tables.labels import Thresholds, findings
from lib.tables.score_help import column_help
from lib.tables.summary import run_name
from ui import ablation, in_context
from ui.classify_controls import (
    device_controls,
    memory_report,
    settings_controls,
    source_controls,
)
from ui.classify_results import (
    heatmap,
    label_summary,
    passing_summary,
    results_table,
    run_chart,
    skipped_note,
)
from ui.classify_session import (
    HEAD,
    MODEL,
    RESULT,
    SCORED_FILES,
    resident_model,
    result_cache,
    salient,
)
from ui.deployment import public_mode, run_budget_caption, run_progress
from ui.frame import require_frame

require_frame()


def run(request: RunRequest, mode: PublicMode) -> None:
    """Score `request` under a progress bar; on failure say what to do and keep the previous
    result on screen."""
    bar = st.progress(0.0, text="starting")
    try:
        mode.check_source(request.source, is_folder_source(request.source))
        key = model_key(request)
        lookup = classify_cached(
            request,
            key,
            resident_model(),
            result_cache(str(cache_dir())),
            run_progress(bar, mode),
        )
        st.session_state[MODEL] = key
    except InputError as error:
        st.error(str(error))
        return
    finally:
        bar.empty()
    st.session_state[RESULT] = lookup
    st.session_state[SCORED_FILES] = request.settings.relation_files  # for the in-context check
    st.session_state.pop(HEAD, None)  # the previous table's head may not exist in this one


def inspector(table: pd.DataFrame, thresholds: Thresholds) -> None:
    """One head: its label, every finding against its threshold, its salient operations."""
    heads = [
        (int(layer), int(head)) for layer, head in zip(table["layer"], table["head"], strict=True)
    ]
    layer, head = st.selectbox(
        "Head", heads, format_func=lambda h: f"layer {h[0]}, head {h[1]}", key=HEAD
    )
    row = table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]
    st.text(f"{row['label']} (score {100 * row['score']:.1f}%)")  # a label is data: literal
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "finding": label,
                    "score": 100 * row[column],
                    "threshold": 100 * threshold,
                    "passes": row[column] >= threshold,
                }
                for column, label, threshold in findings(list(table.columns), thresholds)
            ]
        ),
        hide_index=True,
        column_config={
            "score": st.column_config.NumberColumn(
                format="%.1f%%", help="The finding's score; its definition is in the table's ⓘ."
            ),
            "threshold": st.column_config.NumberColumn(
                format="%.0f%%", help="A finding labels the head at or above this."
            ),
        },
    )
    if st.toggle("Show salient operations", help="Reads the head's layer from the checkpoint."):
        try:
            st.dataframe(salient(st.session_state[MODEL], layer, head), hide_index=True)
        except InputError as error:
            st.error(str(error))
        st.caption(" ".join((salient_operations.__doc__ or "").split()))


def exports(result: Classification) -> None:
    """The table and its settings as files (every column, the run's columns included)."""
    table = result.table
    stem = safe_stem(f"{table['model'].iloc[0]}-{table['revision'].iloc[0]}")
    left, right = st.columns(2)
    left.download_button(
        "Download CSV", ht.to_csv_bytes(table), f"{stem}-heads.csv", "text/csv", on_click="ignore"
    )
    right.download_button(
        "Download settings (JSON)",
        json.dumps(result.settings, indent=2) + "\n",
        f"{stem}-heads.settings.json",
        "application/json",
        on_click="ignore",
    )


def results(lookup: Lookup, thresholds: Thresholds) -> None:
    """The summary first, then the head inspector, the whole table and the downloads."""
    result = relabel(lookup.result, thresholds)
    table = result.table
    origin = {
        "computed": "computed now",
        "memory": "served from the cache",
        "disk": "served from the cache on disk",
    }
    st.subheader("Results")
    st.code(run_name(table), language=None)  # a folder's path is data: shown literally, once
    st.caption(
        f"{len(table)} heads, {result.settings['dtype']} on {result.settings['device']}: "
        f"{origin[lookup.origin]}. Scores are shown in percent."
    )
    skipped_note(result)
    helps = column_help(list(table.columns), result.settings, thresholds)
    counts, chart = st.columns([1, 2])
    with counts:
        st.markdown("**Heads per label**")
        label_summary(table, helps)
    with chart:
        run_chart(table, thresholds)
    st.markdown("**Heads at or above threshold**")
    passing_summary(table, helps, thresholds)
    st.subheader("Head inspector")
    inspector(table, thresholds)
    scored_files = st.session_state.get(SCORED_FILES, ())
    checked = in_context.run_key(st.session_state[MODEL], result.settings, scored_files)
    in_context.check_head(resident_model(), checked, *st.session_state[HEAD])
    ablation.head_effect(
        resident_model(), st.session_state[MODEL], result.settings, *st.session_state[HEAD]
    )
    st.subheader("All heads")
    results_table(table, helps)
    heatmap(table, helps)
    exports(result)
    st.subheader("Static vs dynamic")
    in_context.static_vs_dynamic(resident_model(), checked)
    st.subheader("Causal check: does removing the heads break the task?")
    ablation.section(resident_model(), st.session_state[MODEL], result.settings)
    with st.expander("How the scores are defined"):
        st.markdown(operations.__doc__ or "")
        st.markdown(patterns.__doc__ or "")


st.title("Classify heads")
mode = public_mode()
if mode.enabled:
    st.caption(
        f"Public deployment: Pythia models up to {mode.max_size}; local folders are not loaded."
    )
source, revision = source_controls(mode)
device, dtype = device_controls()
settings = settings_controls(source, revision, mode)
problem = None
if source:
    try:
        memory_report(source, device, dtype)
    except InputError as error:  # a bad folder: said before Run, which stays off until fixed
        problem = str(error)
        st.sidebar.error(problem)
    if (
        not is_folder_source(source) and hub_offline()
    ):  # probed once, remembered (lib.checkpoints.hub)
        st.sidebar.warning(OFFLINE_NOTE)
if not mode.enabled:
    st.sidebar.caption(f"Results are cached in `{cache_dir()}` (set {CACHE_DIR_KEY} to move it).")
run_budget_caption(mode, st.sidebar)
if st.sidebar.button("Run", type="primary", disabled=not source or problem is not None):
    run(RunRequest(source, revision, device, dtype, settings), mode)
if RESULT in st.session_state:
    results(st.session_state[RESULT], settings.thresholds)
else:
    st.info("Pick a checkpoint in the sidebar and press Run.")
