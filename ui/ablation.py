"""Streamlit part of the causal check (docs/methods.md §10) on the Classify heads page: pick a
relation, "Ablate", see its three curves (`lib.charts.ablation`) and its summary row.

Results (`lib.scoring.ablation.ablation_curves`, on the model the server's `ResidentModel`
lends) are kept for the server's life per model and relation set, so every session shares a
computation; the relations of the result shown are the control candidates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from lib.charts.ablation import curves_chart
from lib.core.errors import InputError
from lib.core.progress import Progress
from lib.runs.resident import ModelKey, ResidentModel
from lib.scoring.ablation import AblationResult, ablation_curves, without_head
from lib.scoring.relations import relation_names
from lib.tables.ablation import (
    ABLATION_DEFINITION,
    ACCURACY_DEFINITION,
    CURVE_DEFINITIONS,
    HEAD_EFFECT_DEFINITIONS,
    SUMMARY_DEFINITIONS,
)
from ui.deployment import public_mode, run_budget_caption, run_progress

T = TypeVar("T")
Key = tuple[ModelKey, tuple[str, ...], str]
"""Model, the relations of the result shown (control candidates), the relation ablated."""
PERCENT_COLUMNS = (
    "base_accuracy",
    "ablated_accuracy",
    "ablated_drop",
    "random_mean",
    "random_sd",
    "random_drop",
    "control_base_mean",
    "control_ablated_mean",
    "control_drop",
)


@st.cache_resource
def _results() -> tuple[dict[Key, AblationResult], threading.Lock]:
    """The server's computed causal checks and the lock that guards the dict."""
    return {}, threading.Lock()


@st.cache_resource
def _head_effects() -> tuple[dict[tuple, pd.DataFrame], threading.Lock]:
    """The server's "accuracy without this head" tables, per (model, relations, head)."""
    return {}, threading.Lock()


def bundled_relations(settings: dict[str, Any]) -> tuple[str, ...]:
    """The bundled relations of a classification's `settings` record (they have templates)."""
    bundled = set(relation_names())
    return tuple(r["name"] for r in settings["relations"] if r["name"] in bundled)


def computed(
    models: ResidentModel, model: ModelKey, work: Callable[[Any, Progress], T]
) -> T | None:
    """`work(loaded model, progress)` under a progress bar; on failure say why, return None."""
    bar = st.progress(0.0, text="starting")
    report = run_progress(bar, public_mode())  # the budget counts loading the model too
    try:
        with models.use(model) as loaded:
            return work(loaded, report)
    except InputError as error:
        st.error(str(error))
        return None
    finally:
        bar.empty()


def compute(models: ResidentModel, key: Key) -> AblationResult | None:
    """`key`'s curves (the relation's, its control candidates the others), kept for the server."""
    model, relations, relation = key
    result = computed(
        models,
        model,
        lambda loaded, report: ablation_curves(
            loaded, relations, progress=report, only=(relation,)
        ),
    )
    if result is not None:
        results, lock = _results()
        with lock:
            results[key] = result
    return result


def definitions() -> None:
    """What the curves mean, from the one place that defines them (`lib.tables.ablation`)."""
    lines = [ACCURACY_DEFINITION, ABLATION_DEFINITION]
    lines += [f"{curve}: {text}" for curve, text in CURVE_DEFINITIONS.items()]
    st.caption(". ".join(lines) + " (docs/methods.md §10).")


def summary(result: AblationResult) -> None:
    """The relation's summary row, fractions shown in percent, each column's definition in ⓘ."""
    frame = result.summary.assign(**{c: 100 * result.summary[c] for c in PERCENT_COLUMNS})
    config: dict[str, Any] = {
        name: st.column_config.Column(name, help=text) for name, text in SUMMARY_DEFINITIONS.items()
    }
    for name in PERCENT_COLUMNS:
        config[name] = st.column_config.NumberColumn(
            name, help=SUMMARY_DEFINITIONS[name], format="%.1f%%"
        )
    st.dataframe(frame, hide_index=True, column_config=config)


def section(models: ResidentModel, model: ModelKey, settings: dict[str, Any]) -> None:
    """Per relation of the result shown: "Ablate", then its curves and summary."""
    relations = bundled_relations(settings)
    if not relations:
        st.caption("No bundled relation in this result: nothing to ablate.")
        return
    relation = st.selectbox("Relation to ablate", relations, key="ablation_relation")
    key = (model, relations, relation)
    results, lock = _results()
    with lock:
        result = results.get(key)
    definitions()
    if result is None:
        run_budget_caption(public_mode())
        if not st.button("Ablate", key="ablation_run", help=CURVE_DEFINITIONS["relation_heads"]):
            return
        result = compute(models, key)
        if result is None:
            return
    st.altair_chart(curves_chart(result.curves, relation), theme=None)
    summary(result)


def head_effect(
    models: ResidentModel, model: ModelKey, settings: dict[str, Any], layer: int, head: int
) -> None:
    """In the head inspector: per relation, the accuracy with and without this head alone."""
    key = (model, bundled_relations(settings), (layer, head))
    if not key[1]:
        return
    effects, lock = _head_effects()
    with lock:
        found = effects.get(key)
    if found is None:
        label = "Accuracy without this head"
        if not st.button(label, key="ablation_head", help=HEAD_EFFECT_DEFINITIONS["change"]):
            return
        found = computed(
            models,
            model,
            lambda loaded, report: without_head(loaded, key[1], (layer, head), progress=report),
        )
        if found is None:
            return
        with lock:
            effects[key] = found
    columns = ("base_accuracy", "accuracy_without_head", "change")
    config: dict[str, Any] = {
        name: st.column_config.NumberColumn(
            name, help=HEAD_EFFECT_DEFINITIONS[name], format="%.1f%%"
        )
        for name in columns
    }
    frame = found.assign(**{c: 100 * found[c] for c in columns})
    st.dataframe(frame, hide_index=True, column_config=config)
    st.caption(f"{ACCURACY_DEFINITION}; {ABLATION_DEFINITION} (docs/methods.md §10).")
