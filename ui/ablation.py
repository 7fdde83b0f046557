"""Streamlit part of the causal check (docs/methods.md §10) on the Classify heads page: pick a
relation, "Ablate", see its three curves (`lib.charts.ablation`) and its summary row.

Results (`lib.scoring.ablation.ablation_curves`, on the model the server's `ResidentModel`
lends) are kept for the server's life per model and relation set, so every session shares a
computation; the relations of the result shown are the control candidates.
"""

from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from lib.charts.ablation import curves_chart
from lib.core.errors import InputError
from lib.runs.resident import ModelKey, ResidentModel
from lib.scoring.ablation import AblationResult, ablation_curves
from lib.scoring.relations import relation_names
from lib.tables.ablation import (
    ABLATION_DEFINITION,
    ACCURACY_DEFINITION,
    CURVE_DEFINITIONS,
    SUMMARY_DEFINITIONS,
)

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


def compute(models: ResidentModel, key: Key) -> AblationResult | None:
    """`key`'s curves under a progress bar; on failure say why and return None."""
    model, relations, relation = key
    bar = st.progress(0.0, text="starting")
    try:
        with models.use(model) as loaded:
            result = ablation_curves(
                loaded,
                relations,
                progress=lambda fraction, message: bar.progress(
                    min(max(fraction, 0.0), 1.0), message
                ),
                only=(relation,),
            )
    except InputError as error:
        st.error(str(error))
        return None
    finally:
        bar.empty()
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
    bundled = set(relation_names())
    relations = tuple(r["name"] for r in settings["relations"] if r["name"] in bundled)
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
        if not st.button("Ablate", key="ablation_run", help=CURVE_DEFINITIONS["relation_heads"]):
            return
        result = compute(models, key)
        if result is None:
            return
    st.altair_chart(curves_chart(result.curves, relation), theme=None)
    summary(result)
