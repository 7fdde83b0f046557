"""Classify heads: score every attention head of a Pythia checkpoint, inspect it, chart it.

The model is lent by one server-wide `ResidentModel` (one model resident, released before
another loads); results come from the server-wide `ResultCache` (memory, then disk under
`$HEAD_ATLAS_CACHE_DIR`), so a rerun, a reload or a restart shows the table at once.
Session state (`classify_*` keys): the last result shown (`RESULT`) and the model it came
from (`MODEL`, for the head inspector); the table's selection (`TABLE`), the row last picked
in it (`PICKED`) and the inspected head (`HEAD`); the thresholds' inputs. Thresholds relabel
the cached scores on every run of the script: changing one never recomputes.
"""

from __future__ import annotations

import json
from dataclasses import fields

import pandas as pd
import streamlit as st

from lib import catalog, operations, patterns
from lib import head_table as ht
from lib.classify import (
    Classification,
    ClassifySettings,
    Thresholds,
    classified_heads,
    findings,
)
from lib.errors import InputError
from lib.export import safe_stem
from lib.handoff import HANDOFF_KEY, ChartHandoff
from lib.heatmap import head_heatmap
from lib.hub import OFFLINE_NOTE, hub_offline
from lib.loader import (
    DEVICES,
    DTYPES,
    check_memory,
    dtype_name,
    free_memory_by_holder,
    is_folder_source,
    resolve_device,
    resolve_dtype,
)
from lib.operations import salient_operations
from lib.patterns import DEFAULT_PATTERN_SETTINGS
from lib.public_mode import PublicMode
from lib.relations import MIN_PAIRS, relation_names
from lib.resident import ModelKey, ResidentModel
from lib.result_cache import CACHE_DIR_KEY, Lookup, ResultCache, cache_dir, relabel
from lib.runs import RunRequest, classify_cached, memory_needed, model_key
from lib.score_help import column_help
from ui import in_context
from ui.deployment import public_mode
from ui.navigation import LAYER_CHART, sidebar_links
from ui.relation_files import relation_file_controls

RESULT = "classify_result"
MODEL = "classify_model"
PICKED = "classify_picked"
TABLE = "classify_table"
HEAD = "classify_head"
CATALOG, FOLDER = "Pythia catalog", "Local folder"
FOLDER_INPUT = "Local checkpoint folder"
DEFAULT_SIZE = "70m"
GIB = 2**30


@st.cache_resource
def resident_model() -> ResidentModel:
    """The server's one model slot, shared by every session."""
    return ResidentModel()


@st.cache_resource
def result_cache(directory: str) -> ResultCache:
    """The server's result cache in `directory`, shared by every session."""
    return ResultCache(directory)


@st.cache_data(show_spinner="Reading the head's OV map over the vocabulary…")
def salient(key: ModelKey, layer: int, head: int) -> pd.DataFrame:
    """`salient_operations` of one head, computed once per model and head."""
    with resident_model().use(key) as loaded:
        return salient_operations(loaded, layer, head)


def source_controls(mode: PublicMode) -> tuple[str, str]:
    """The checkpoint: (hub id, revision) from the catalog, or a local folder."""
    kinds = [CATALOG] if mode.enabled else [CATALOG, FOLDER]
    kind = st.sidebar.radio("Checkpoint", kinds, horizontal=True)
    if kind == FOLDER:
        folder = st.sidebar.text_input(
            FOLDER_INPUT,
            help="A save_pretrained folder: config.json, *.safetensors, tokenizer files.",
        )
        return folder.strip(), "main"
    sizes = mode.allowed_sizes
    size = st.sidebar.selectbox(
        "Model size", sizes, index=sizes.index(DEFAULT_SIZE) if DEFAULT_SIZE in sizes else 0
    )
    deduped = st.sidebar.toggle("Deduped", help="Trained on the deduplicated Pile.")
    revision = st.sidebar.selectbox(
        "Training checkpoint",
        catalog.REVISIONS,
        index=catalog.REVISIONS.index("main"),
        help="Git revisions of the hub repository: stepN is the model after N training steps; "
        "main is the final one (step143000).",
    )
    return catalog.hub_id(size, deduped), revision


def device_controls() -> tuple[str, str]:
    """Device and dtype, each showing what `auto` resolves to here."""
    device = resolve_device()
    choices = [name for name in DEVICES if name == "auto" or _available(name)]
    chosen = st.sidebar.selectbox(
        "Device",
        choices,
        format_func=lambda name: f"auto ({device.type})" if name == "auto" else name,
    )
    target = resolve_device(chosen)
    auto_dtype = dtype_name(resolve_dtype("auto", target))
    dtype = st.sidebar.selectbox(
        "Dtype",
        list(DTYPES),
        format_func=lambda name: f"auto ({auto_dtype})" if name == "auto" else name,
        help="auto: bfloat16 on a GPU that supports it, else float16 on a GPU, float32 on CPU.",
    )
    return chosen, dtype


def _available(device: str) -> bool:
    try:
        resolve_device(device)
    except InputError:
        return False
    return True


def memory_report(source: str, device: str, dtype: str) -> None:
    """What the model needs next to what is free; a warning when it will not fit."""
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    needed = memory_needed(source, torch_dtype)
    if needed is None:
        return
    free = free_memory_by_holder(target)
    st.sidebar.caption(
        f"Needs about {needed / GIB:.2f} GiB (weights plus one layer's W_O·W_U, +10%; "
        "lib.catalog.memory_estimate); free: "
        + ", ".join(f"{size / GIB:.1f} GiB on {holder}" for holder, size in free.items())
    )
    try:
        check_memory(needed, target, source, torch_dtype)
    except InputError as error:
        st.sidebar.warning(f"This will not fit: {error}")


def settings_controls(source: str, revision: str, mode: PublicMode) -> ClassifySettings:
    """What to score (folded away: all relations and the patterns by default), with your own
    relation files previewed with the tokenizer of `source`."""
    names = relation_names()
    with st.sidebar.expander("Relations and patterns"):
        relations = st.multiselect(
            "Relations",
            names,
            default=names,
            help=f"Relation datasets scored; one with fewer than {MIN_PAIRS} single-token pairs "
            "for the model's tokenizer is skipped.",
        )
        relation_files = relation_file_controls(source, revision, mode)
        scored = st.toggle(
            "Attention-pattern scores", value=True, help="One forward pass over random tokens."
        )
    return ClassifySettings(
        relations=tuple(relations),
        relation_files=relation_files,
        thresholds=threshold_controls(),
        patterns=DEFAULT_PATTERN_SETTINGS if scored else None,
    )


def threshold_controls() -> Thresholds:
    """Thresholds in percent; they relabel cached scores, never recompute them."""
    defaults = Thresholds()
    with st.sidebar.expander("Thresholds"):
        st.caption(
            "Changing a threshold relabels the cached scores at once; nothing is recomputed. "
            + " ".join((Thresholds.__doc__ or "").split())
        )
        values = {
            field.name: st.number_input(
                f"{field.name} (%)",
                min_value=0.0,
                max_value=100.0,
                value=100 * getattr(defaults, field.name),
                step=5.0,
                key=f"classify_threshold_{field.name}",
            )
            / 100
            for field in fields(Thresholds)
        }
    return Thresholds(**values)


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
            lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message),
        )
        st.session_state[MODEL] = key
    except InputError as error:
        st.error(str(error))
        return
    finally:
        bar.empty()
    st.session_state[RESULT] = lookup
    st.session_state[PICKED] = None
    st.session_state.pop(HEAD, None)  # the previous table's head may not exist in this one


def percent_columns(helps: dict[str, str]) -> dict[str, object]:
    """Column configs: every score in percent to one decimal, with its help text."""
    config: dict[str, object] = {
        name: st.column_config.NumberColumn(name, help=helps[name], format="%.1f%%")
        for name in helps
        if name != "label"
    }
    config["label"] = st.column_config.TextColumn("label", help=helps["label"])
    return config


def as_percent(table: pd.DataFrame, helps: dict[str, str]) -> pd.DataFrame:
    scores = [name for name in helps if name != "label"]
    return table.assign(**{name: 100 * table[name] for name in scores})


def results_table(table: pd.DataFrame, helps: dict[str, str]) -> None:
    """The per-head table, filtered by label; a clicked row picks the inspected head."""
    labels = sorted(table["label"].unique())
    shown_labels = st.multiselect("Show labels", labels, default=labels)
    shown = table[table["label"].isin(shown_labels)].reset_index(drop=True)
    event = st.dataframe(
        as_percent(shown, helps),
        hide_index=True,
        column_config=percent_columns(helps),
        on_select="rerun",
        selection_mode="single-row",
        # A new table (another result, label filter or threshold) must not inherit the row
        # numbers selected in the previous one: they would name other heads.
        key=f"{TABLE}_{hash(tuple(shown[['layer', 'head', 'label']].itertuples(index=False)))}",
    )
    rows = [row for row in event.selection.rows if row < len(shown)]
    picked = (int(shown.at[rows[0], "layer"]), int(shown.at[rows[0], "head"])) if rows else None
    if picked is not None and picked != st.session_state.get(PICKED):
        st.session_state[PICKED] = picked
        st.session_state[HEAD] = picked  # the inspector follows the clicked row


def heatmap(table: pd.DataFrame, helps: dict[str, str]) -> None:
    scores = [name for name in helps if name != "label"]
    column = st.selectbox("Heatmap of", scores, index=scores.index("score"))
    st.altair_chart(head_heatmap(table, column), theme=None)
    st.caption(helps[column])


def inspector(table: pd.DataFrame, thresholds: Thresholds) -> None:
    """One head: its label, every finding against its threshold, its salient operations."""
    heads = [
        (int(layer), int(head)) for layer, head in zip(table["layer"], table["head"], strict=True)
    ]
    layer, head = st.selectbox(
        "Head", heads, format_func=lambda h: f"layer {h[0]}, head {h[1]}", key=HEAD
    )
    row = table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]
    st.markdown(f"**{row['label']}** (score {100 * row['score']:.1f}%)")
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
            "score": st.column_config.NumberColumn(format="%.1f%%"),
            "threshold": st.column_config.NumberColumn(format="%.0f%%"),
        },
    )
    if st.toggle("Show salient operations", help="Loads the model when it is not resident."):
        try:
            st.dataframe(salient(st.session_state[MODEL], layer, head), hide_index=True)
        except InputError as error:
            st.error(str(error))
        st.caption(" ".join((salient_operations.__doc__ or "").split()))


def exports(result: Classification) -> None:
    """Downloads, and the table handed to the Layer chart binned on its `score`."""
    table = result.table
    model, revision = table["model"].iloc[0], table["revision"].iloc[0]
    stem = safe_stem(f"{model}-{revision}")
    left, middle, right = st.columns(3)
    left.download_button(
        "Download CSV", ht.to_csv_bytes(table), f"{stem}-heads.csv", "text/csv", on_click="ignore"
    )
    middle.download_button(
        "Download settings (JSON)",
        json.dumps(result.settings, indent=2) + "\n",
        f"{stem}-heads.settings.json",
        "application/json",
        on_click="ignore",
    )
    only_classified = right.checkbox(
        "Chart classified heads only",
        value=True,
        help=" ".join((classified_heads.__doc__ or "").split()),
    )
    if right.button("Open in chart", type="primary"):
        charted = classified_heads(table) if only_classified else table
        if charted.empty:
            right.warning("No head passed its threshold: nothing to chart.")
            return
        st.session_state[HANDOFF_KEY] = ChartHandoff(charted, f"{model} @ {revision}", "score")
        st.switch_page(LAYER_CHART)


def results(lookup: Lookup, thresholds: Thresholds) -> None:
    result = relabel(lookup.result, thresholds)
    table = result.table
    origin = {
        "computed": "computed now",
        "memory": "served from the cache",
        "disk": "served from the cache on disk",
    }
    st.caption(
        f"`{table['model'].iloc[0]}` @ `{table['revision'].iloc[0]}`, {len(table)} heads, "
        f"{result.settings['dtype']} on {result.settings['device']}: {origin[lookup.origin]}. "
        "Scores are shown in percent."
    )
    for skipped in result.skipped:
        st.info(
            f"Relation {skipped.name} skipped: {skipped.n_pairs} single-token pairs "
            f"(fewer than {MIN_PAIRS})."
        )
    helps = column_help(list(table.columns), result.settings, thresholds)
    results_table(table, helps)
    heatmap(table, helps)
    st.subheader("Head inspector")
    inspector(table, thresholds)
    checked = in_context.run_key(st.session_state[MODEL], result.settings)
    in_context.check_head(resident_model(), checked, *st.session_state[HEAD])
    exports(result)
    st.subheader("Static vs dynamic")
    in_context.static_vs_dynamic(resident_model(), checked)
    with st.expander("How the scores are defined"):
        st.markdown(operations.__doc__ or "")
        st.markdown(patterns.__doc__ or "")


st.set_page_config(page_title="Classify heads · Pythia Head Atlas", layout="wide")
sidebar_links()
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
    if not is_folder_source(source) and hub_offline():  # probed once, remembered (lib.hub)
        st.sidebar.warning(OFFLINE_NOTE)
if not mode.enabled:
    st.sidebar.caption(f"Results are cached in `{cache_dir()}` (set {CACHE_DIR_KEY} to move it).")
if st.sidebar.button("Run", type="primary", disabled=not source or problem is not None):
    run(RunRequest(source, revision, device, dtype, settings), mode)
if RESULT in st.session_state:
    results(st.session_state[RESULT], settings.thresholds)
else:
    st.info("Pick a checkpoint in the sidebar and press Run.")
