"""Streamlit parts of the in-context check (docs/methods.md §8): the templates input, "Check in
context" for the inspected head, and the "Static vs dynamic" scatter view.

Results (`lib.dynamic.in_context`) are computed on demand under a progress bar on what the
server's `ResidentModel` lends for scoring (`ResidentModel.read`: the checkpoint read one
layer at a time, or the resident model of the same key; the same table either way), and
kept for the server's life per model, revision, relations (bundled and your own files),
templates and whether multi-token sources are added (the `ModelKey` names model, revision,
device, dtype and a folder's fingerprint), so both views and every session share one
computation.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import streamlit as st

from lib.charts.static_vs_dynamic import (
    CONSTANT_SPREAD,
    DEFAULT_MARGIN,
    UNDEFINED_R,
    disagreements,
    relation_scores_of_head,
    scatter_chart,
    summary_view,
)
from lib.core.errors import InputError
from lib.runs.resident import ModelKey, ResidentModel
from lib.scoring.dynamic import DEFAULT_TEMPLATES, InContext, in_context
from lib.scoring.dynamic import check_templates as parse_templates
from lib.scoring.relation_files import CustomRelation
from lib.scoring.relations import relation_names
from lib.tables.in_context import PAIR_COLUMNS, VARIANT_DEFINITIONS, VARIANTS
from ui.deployment import public_mode, run_budget_caption, run_progress
from ui.literal import literal

TEMPLATES = "in_context_templates"
"""Session key of the last good templates (a bad edit keeps them)."""

Key = tuple[ModelKey, tuple[str, ...], tuple[CustomRelation, ...], tuple[str, ...], bool]
"""Model, bundled relation names, relation files, templates, multi-token sources."""


@st.cache_resource
def _results() -> tuple[dict[Key, InContext], threading.Lock]:
    """The server's computed in-context results and the lock that guards the dict."""
    return {}, threading.Lock()


def templates_control() -> tuple[str, ...]:
    """The prompt templates, one per line; a bad edit says why and keeps the last good ones.
    In public mode, their number and length are capped (`PublicMode.check_templates`)."""
    mode = public_mode()
    limits = (
        f" This deployment takes at most {mode.max_templates} templates of at most "
        f"{mode.max_template_bytes} bytes each."
        if mode.enabled
        else ""
    )
    with st.expander("In-context templates"):
        text = st.text_area(
            "Templates (one per line, the source word goes where <X> is)",
            "\n".join(DEFAULT_TEMPLATES),
            help="The four templates of the published experiment by default." + limits,
        )
        try:
            templates = parse_templates(
                [line.strip() for line in text.splitlines() if line.strip()]
            )
            mode.check_templates(templates)
            st.session_state[TEMPLATES] = templates
        except InputError as error:
            st.error(literal(str(error)))  # quotes the user's template
    return st.session_state.get(TEMPLATES, DEFAULT_TEMPLATES)


def multi_token_control() -> bool:
    """Whether the in-context check adds the pairs whose source is several tokens."""
    return st.toggle(
        "Multi-token sources",
        value=False,
        key="in_context_multi_token",
        help=f"Adds the bundled relations' {PAIR_COLUMNS['n_multi_token']}; r is reported "
        "for single-token and multi-token pairs apart (docs/methods.md §8).",
    )


def run_key(
    model: ModelKey, settings: dict[str, Any], relation_files: tuple[CustomRelation, ...]
) -> Key:
    """What a result depends on: the model, the relations scored in the classification shown
    (the bundled ones named in its `settings` record, and the `relation_files` it was run
    with), the templates from `templates_control` and `multi_token_control`."""
    bundled = set(relation_names())
    relations = tuple(r["name"] for r in settings["relations"] if r["name"] in bundled)
    return model, relations, relation_files, templates_control(), multi_token_control()


def cached(key: Key) -> InContext | None:
    results, lock = _results()
    with lock:
        return results.get(key)


def result_or_button(
    models: ResidentModel, key: Key, label: str, widget_key: str
) -> InContext | None:
    """The cached result for `key`, else a button that computes it under a progress bar."""
    model, relations, relation_files, templates, multi_token = key
    if not relations and not relation_files:
        st.caption("No relation in this result: nothing to check in context.")
        return None
    found = cached(key)
    if found is not None:
        return found
    run_budget_caption(public_mode())
    if not st.button(label, key=widget_key, help=VARIANT_DEFINITIONS["dynamic_score"]):
        return None
    bar = st.progress(0.0, text="starting")
    report = run_progress(bar, public_mode())  # the budget counts loading the model too
    try:
        with models.read(model) as loaded:
            result = in_context(
                loaded,
                relations,
                templates,
                report,
                relation_files=relation_files,
                multi_token=multi_token,
            )
    except InputError as error:
        st.error(literal(str(error)))  # may quote a template or a word: data
        return None
    finally:
        bar.empty()
    results, lock = _results()
    with lock:
        results[key] = result
    return result


def percent_config() -> dict[str, object]:
    return {
        name: st.column_config.NumberColumn(name, help=VARIANT_DEFINITIONS[name], format="%.1f%%")
        for name in ("static_score", "static_suppression", *VARIANTS)
    }


def in_percent(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [name for name in ("static_score", "static_suppression", *VARIANTS) if name in frame]
    return frame.assign(**{name: 100 * frame[name] for name in columns})


def check_head(models: ResidentModel, key: Key, layer: int, head: int) -> None:
    """ "Check in context": head (`layer`, `head`)'s static and dynamic scores per relation."""
    result = result_or_button(models, key, "Check in context", "in_context_check_head")
    if result is None:
        st.caption(
            "Runs the model on template prompts for every relation's pairs and scores every "
            "head's real output (docs/methods.md §8); computed once per model and templates."
        )
        return
    st.dataframe(
        in_percent(relation_scores_of_head(result.table, layer, head)),
        hide_index=True,
        column_config=percent_config(),
    )


def static_vs_dynamic(models: ResidentModel, key: Key) -> None:
    """Per relation, static against dynamic score over all heads, r in each title; the heads
    that disagree by more than a chosen margin, listed."""
    result = result_or_button(models, key, "Compute dynamic scores", "in_context_scatter")
    if result is None:
        return
    left, right = st.columns(2)
    definitions = "; ".join(f"{v}: {VARIANT_DEFINITIONS[v]}" for v in VARIANTS)
    variant = left.selectbox("Dynamic score", VARIANTS, help=definitions)
    margin = (
        right.slider(
            "Disagreement margin (percentage points)",
            0,
            100,
            round(100 * DEFAULT_MARGIN),
            help="A head is flagged when |static - dynamic| exceeds this.",
        )
        / 100
    )
    st.altair_chart(scatter_chart(result.table, result.summary, variant, margin), theme=None)
    flagged = disagreements(result.table, variant, margin)
    st.caption(
        f"{len(flagged)} (head, relation) pairs where |{variant} - static| > "
        f"{100 * margin:.0f} points. r = Pearson correlation over all heads; the summary also "
        "has Spearman's rho and the published pooled r (docs/methods.md §8). "
        f"{UNDEFINED_R}: the static or dynamic scores span less than "
        f"{100 * CONSTANT_SPREAD:g} points over heads, so no correlation is defined."
    )
    st.dataframe(
        in_percent(flagged).assign(difference=100 * flagged["difference"]),
        hide_index=True,
        column_config={
            **percent_config(),
            "difference": st.column_config.NumberColumn(
                "difference", help="dynamic - static, percentage points", format="%.1f"
            ),
        },
    )
    st.dataframe(summary_view(result.table, result.summary), hide_index=True)
