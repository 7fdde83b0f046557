"""Training dynamics: a sweep's results store (`python -m lib.sweep`) over training steps.

Views: classified heads per score category over the swept steps; the layer chart at a step
and at a few steps side by side; the emergence table (`lib.trajectory`); one head's scores
over training; when each relation's heads become necessary (the causal check of
`lib.sweep --ablate`, `ui.training_ablation`). Several models of one store are drawn side by
side. Session state (`training_*` keys): the store path, the last store read well (kept on
screen when a new path is bad), the head picked in the emergence table, and a sweep started
here (`ui.training`).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib.charts import training as training_chart
from lib.charts.layer_chart import layer_chart
from lib.core.errors import InputError
from lib.runs.store import Store
from lib.tables import binning
from lib.tables.head_table import to_csv_bytes
from lib.tables.labels import UNCLASSIFIED
from lib.tables.trajectory import DEFINITIONS, trajectories
from ui import training, training_ablation
from ui.deployment import public_mode
from ui.frame import require_frame
from ui.state import kept_tabs

require_frame()

GOOD = "training_good"  # the last store read well: (url, rows, failures, skipped)
PICKED = "training_picked_head"
MAX_SMALL_MULTIPLES = 4
MAX_EMERGENCE_LINES = 6
NEVER = "never"


def load() -> tuple[str, pd.DataFrame, pd.DataFrame, list[str]] | None:
    """The store named in the sidebar, read (cached by its version); on a bad path its message
    and the previous good store."""
    url = training.store_input()
    if url:
        try:
            store = Store(url)
            st.session_state[GOOD] = (url, *training.read_store(store.url, store.version()))
        except (InputError, OSError) as error:
            if training.running():
                st.info("Waiting for the sweep's first table…")
            else:
                st.error(str(error))
    return st.session_state.get(GOOD)


def evenly(steps: list[int], n: int) -> list[int]:
    """`n` of `steps` spread from the first to the last."""
    if len(steps) <= n:
        return steps
    return [steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)]


def score_threshold_note(rows: pd.DataFrame) -> str:
    """The thresholds the store's heads were labelled with, from its settings record."""
    thresholds = json.loads(rows["settings"].iloc[0])["thresholds"]
    return "Labelled at ≥ " + ", ".join(f"{k} {100 * v:g}%" for k, v in thresholds.items()) + "."


def roles_view(rows: pd.DataFrame) -> None:
    counts = training_chart.role_counts(rows)
    if counts.empty:
        st.info("No head has a label at any swept step.")
        return
    st.altair_chart(training_chart.roles_over_steps(counts), theme=None, width="content")
    st.caption(f"{training_chart.ROLES_POPULATION}. {training_chart.TOKENS_DEFINITION}")
    st.text(score_threshold_note(rows))


def categories_view(rows: pd.DataFrame) -> None:
    counts = training_chart.category_counts(rows)
    st.altair_chart(training_chart.categories_over_steps(counts), theme=None, width="content")
    categories = binning.score_categories()
    st.caption(
        f"{training_chart.POPULATION}: " + "; ".join(categories.ranges()) + ". "
        f"{training_chart.TOKENS_DEFINITION}"
    )
    st.text(score_threshold_note(rows))  # read from the store: shown literally


def layers_view(rows: pd.DataFrame, steps: list[int]) -> None:
    step = st.select_slider("Step", steps, value=steps[-1], key="training_step")
    picked = st.multiselect(
        "Steps side by side",
        steps,
        default=evenly(steps, MAX_SMALL_MULTIPLES),
        key="training_multiples",
    )
    for chosen in ([step], sorted(picked)):
        counts = training_chart.layer_counts_at(rows, chosen)
        if counts is None:
            st.info(f"No head has a label at step {', '.join(map(str, chosen))}.")
        else:
            panels = training_chart.step_panels(rows, chosen)
            st.altair_chart(layer_chart(counts, "", panels), theme=None, width="content")
    st.caption(
        f"{training_chart.POPULATION}, as on the Layer chart page. {binning.PERCENT_DEFINITION} "
        f"{binning.LAYER_BIN_DEFINITION}"
    )


def emergence_view(rows: pd.DataFrame) -> None:
    table = trajectories(rows)
    never = table["threshold_step"].astype("string").fillna(NEVER)  # no "None" on screen
    picked = st.dataframe(
        table.assign(threshold_step=never),
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key="training_emergence",
        column_config={
            name: st.column_config.Column(name, help=text) for name, text in DEFINITIONS.items()
        },
    )
    labelled = table[table["final_label"] != UNCLASSIFIED]
    if picked.selection.rows:
        head = table.iloc[picked.selection.rows[0]]
        st.session_state[PICKED] = (head["model"], int(head["layer"]), int(head["head"]))
        labelled = labelled[labelled.index.isin(picked.selection.rows)]
    else:
        labelled = labelled.sort_values("first_step").head(MAX_EMERGENCE_LINES)
    if labelled.empty:
        st.info(f"The heads picked end {UNCLASSIFIED}: no score to follow.")
    else:
        lines = training_chart.emergence_lines(rows, labelled)
        st.altair_chart(training_chart.emergence_chart(lines), theme=None, width="content")
        st.caption(training_chart.EMERGENCE_MARK)
    st.download_button(
        "Emergence table (CSV)",
        data=to_csv_bytes(table),
        file_name="emergence.csv",
        mime="text/csv",
        on_click="ignore",
    )
    st.caption(
        "Pick rows to draw those heads above (by default the first to emerge); the first picked "
        "is also drawn under “One head”."
    )


def head_view(rows: pd.DataFrame) -> None:
    models = list(rows["model"].unique())
    model, layer, head = st.session_state.get(PICKED, (models[0], 0, 0))
    left, middle, right = st.columns(3)
    model = left.selectbox("Model", models, index=models.index(model) if model in models else 0)
    mine = rows[rows["model"] == model]
    layer = middle.number_input(
        "Layer", 0, int(mine["layer"].max()), min(layer, int(mine["layer"].max()))
    )
    head = right.number_input(
        "Head", 0, int(mine["head"].max()), min(head, int(mine["head"].max()))
    )
    scores = training_chart.scores_over_training(rows, model, int(layer), int(head))
    columns = st.multiselect(
        "Scores drawn",
        sorted(scores["column"].unique()),
        default=training_chart.default_head_columns(scores),
        key=f"training_columns_{model}_{layer}_{head}",
    )
    title = f"layer {layer}, head {head}"
    st.altair_chart(
        training_chart.head_scores_chart(scores, columns, title), theme=None, width="content"
    )
    st.caption(
        "Scores are fractions drawn as percentages (docs/methods.md §1, §4). "
        f"{training_chart.TOKENS_DEFINITION}"
    )
    st.text(score_threshold_note(rows))
    labels = scores.drop_duplicates("step")[["step", "label"]]
    st.dataframe(labels, hide_index=True)


st.title("Training dynamics")
if public_mode().enabled:
    st.info("This page reads and writes folders on the server: it is off in a public deployment.")
    st.stop()
loaded = load()
training.sweep_form()
training.sweep_status()
if loaded is None:
    st.info(
        "Give the folder of a results store in the sidebar (python -m lib.sweep --out STORE), "
        "or start a sweep there. Try it offline: python -m lib.synthetic --series --out SERIES."
    )
    st.stop()
url, all_rows, failures, skipped = loaded
st.text(f"Store: {url}")
if len(failures):
    st.warning(f"{len(failures)} jobs failed; they are run again by the next sweep.")
    st.dataframe(failures, hide_index=True)
if skipped:
    st.warning(
        f"{len(skipped)} files of the store were skipped and never shown: a damaged table is "
        "computed again by the next sweep; a file no sweep wrote is left alone."
    )
    st.dataframe(pd.DataFrame({"skipped": skipped}), hide_index=True)
models = list(all_rows["model"].unique())
chosen = st.multiselect("Models", models, default=models, key="training_models")
rows = all_rows[all_rows["model"].isin(chosen)]
if rows.empty:
    st.info("Pick at least one model.")
    st.stop()
steps = sorted(int(step) for step in rows["step"].unique())
roles, over, layers, emergence, one, necessary = kept_tabs(
    [
        "Roles over training",
        "Heads over training",
        "Layer chart by step",
        "Emergence table",
        "One head",
        "Heads necessary",
    ],
    key="training_tab",
)
with roles:
    roles_view(rows)
with over:
    categories_view(rows)
with layers:
    layers_view(rows, steps)
with emergence:
    emergence_view(rows)
with one:
    head_view(rows)
with necessary:
    training_ablation.view(url, chosen)
