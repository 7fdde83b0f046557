"""Classify heads: score every attention head of a Pythia checkpoint, inspect it, chart it.

The model is lent by one server-wide `ResidentModel` (one model resident, released before
another loads); results come from the server-wide `ResultCache` (memory, then disk under
`$HEAD_ATLAS_CACHE_DIR`), so a rerun, a reload or a restart shows the table at once.

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
from functools import partial

import pandas as pd
import streamlit as st

from lib.app.handoff import HANDOFF_KEY, ChartHandoff
from lib.app.public_mode import PublicMode
from lib.charts.export import safe_stem
from lib.charts.heatmap import head_heatmap
from lib.checkpoints.hub import OFFLINE_NOTE, hub_offline
from lib.checkpoints.loader import (
    DEVICES,
    DTYPES,
    check_memory,
    dtype_name,
    free_memory_by_holder,
    is_folder_source,
    resolve_device,
    resolve_dtype,
)
from lib.core import catalog
from lib.core.errors import InputError
from lib.runs.classification import RunRequest, classify_cached, memory_needed, model_key
from lib.runs.resident import ModelKey, ResidentModel
from lib.runs.result_cache import CACHE_DIR_KEY, Lookup, ResultCache, cache_dir, relabel
from lib.scoring import operations, patterns
from lib.scoring.operations import salient_operations
from lib.scoring.patterns import DEFAULT_PATTERN_SETTINGS
from lib.scoring.pipeline import Classification, ClassifySettings, Thresholds, findings
from lib.scoring.relations import MIN_PAIRS, relation_names
from lib.tables import head_table as ht
from lib.tables.population import POPULATIONS, population_counts, select
from lib.tables.score_help import column_help
from lib.tables.summary import label_counts, passing_heads, reading_order, run_name
from ui import in_context
from ui.charts import population_choice, show_counts
from ui.deployment import public_mode
from ui.navigation import LAYER_CHART, sidebar_links
from ui.relation_files import relation_file_controls
from ui.thresholds import threshold_controls

RESULT = "classify_result"
MODEL = "classify_model"
TABLE = "classify_table"
HEAD = "classify_head"
SCORED_FILES = "classify_scored_relation_files"
"""The relation files the result shown was scored with (the sidebar's may have changed since)."""
POPULATION = "classify_population"
CATALOG, FOLDER = "Pythia catalog", "Local folder"
FOLDER_INPUT = "Local checkpoint folder"
DEFAULT_SIZE = "70m"
GIB = 2**30
# A page's bare strings are drawn by Streamlit's magic: these notes are comments.
PILLS_PER_FINDING = 12  # heads offered per finding in the summary; the table lists every one
KEEP = "session"  # `persist_state` of every input: its value survives a visit to another page


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
    kind = st.sidebar.radio(
        "Checkpoint", kinds, horizontal=True, key="classify_checkpoint", persist_state=KEEP
    )
    if kind == FOLDER:
        folder = st.sidebar.text_input(
            FOLDER_INPUT,
            help="A save_pretrained folder: config.json, *.safetensors, tokenizer files.",
            key="classify_folder",
            persist_state=KEEP,
        )
        return folder.strip(), "main"
    sizes = mode.allowed_sizes
    size = st.sidebar.selectbox(
        "Model size",
        sizes,
        index=sizes.index(DEFAULT_SIZE) if DEFAULT_SIZE in sizes else 0,
        key="classify_size",
        persist_state=KEEP,
    )
    deduped = False
    if catalog.pythia_size(size).has_deduped:
        deduped = st.sidebar.toggle(
            "Deduped",
            help="Trained on the deduplicated Pile.",
            key="classify_deduped",
            persist_state=KEEP,
        )
    else:
        st.sidebar.caption(f"pythia-{size} has no deduped run.")
    revision = st.sidebar.selectbox(
        "Training checkpoint",
        catalog.REVISIONS,
        index=catalog.REVISIONS.index("main"),
        help="Git revisions of the hub repository: stepN is the model after N training steps; "
        "main is the final one (step143000).",
        key="classify_revision",
        persist_state=KEEP,
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
        key="classify_device",
        persist_state=KEEP,
    )
    target = resolve_device(chosen)
    auto_dtype = dtype_name(resolve_dtype("auto", target))
    dtype = st.sidebar.selectbox(
        "Dtype",
        list(DTYPES),
        format_func=lambda name: f"auto ({auto_dtype})" if name == "auto" else name,
        help="auto: bfloat16 on a GPU that supports it, else float16 on a GPU, float32 on CPU.",
        key="classify_dtype",
        persist_state=KEEP,
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
        "lib.core.catalog.memory_estimate); free: "
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
            key="classify_relations",
            persist_state=KEEP,
        )
        relation_files = relation_file_controls(source, revision, mode)
        scored = st.toggle(
            "Attention-pattern scores",
            value=True,
            help="One forward pass over random tokens.",
            key="classify_patterns",
            persist_state=KEEP,
        )
    return ClassifySettings(
        relations=tuple(relations),
        relation_files=relation_files,
        thresholds=threshold_controls(),
        patterns=DEFAULT_PATTERN_SETTINGS if scored else None,
    )


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
    st.session_state[SCORED_FILES] = request.settings.relation_files  # for the in-context check
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


def inspect_head(head: tuple[int, int]) -> None:
    """Point the head inspector at `head` (before its selectbox is drawn)."""
    st.session_state[HEAD] = head


def skipped_note(result: Classification) -> None:
    """The relations skipped for too few single-token pairs: one folded note, not a box each."""
    if not result.skipped:
        return
    with st.expander(
        f"{len(result.skipped)} relations skipped: fewer than {MIN_PAIRS} single-token pairs "
        "for this model's tokenizer"
    ):
        st.dataframe(
            pd.DataFrame(
                {
                    "relation": [skipped.name for skipped in result.skipped],
                    "single-token pairs": [skipped.n_pairs for skipped in result.skipped],
                }
            ),
            hide_index=True,
        )


def label_summary(table: pd.DataFrame, helps: dict[str, str]) -> None:
    """Heads per label."""
    st.dataframe(
        label_counts(table),
        hide_index=True,
        column_config={
            "label": st.column_config.TextColumn("label", help=helps["label"], width="medium"),
            "heads": st.column_config.NumberColumn(
                "heads", help="Heads with this label.", width="small"
            ),
        },
    )


def run_chart(table: pd.DataFrame, thresholds: Thresholds) -> None:
    """The run's own layer chart of the chosen population, and Open in chart for it."""
    chosen = population_choice(thresholds, POPULATION)
    try:
        counts = population_counts([(run_name(table), table)], chosen, thresholds)
    except InputError as error:
        st.info(str(error))
        return
    show_counts(counts)
    if st.button("Open in chart", type="primary", help="Edit bins, names, colours; export."):
        st.session_state[HANDOFF_KEY] = ChartHandoff(
            select(table, chosen, thresholds),
            f"{run_name(table)} · {POPULATIONS[chosen].title.lower()}",
            POPULATIONS[chosen].score_column,
            ht.model_depths(table),
        )
        st.switch_page(LAYER_CHART)


def passing_summary(table: pd.DataFrame, helps: dict[str, str], thresholds: Thresholds) -> None:
    """Per finding, the heads at or above its threshold, best first; a click inspects one."""
    passing = passing_heads(table, thresholds)
    if passing.empty:
        st.info("No head reaches the threshold of any finding.")
        return
    st.caption(
        "Best first; click a head to inspect it. The ? beside a finding says what its score "
        "is and its threshold."
    )
    for number, (finding, rows) in enumerate(passing.groupby("finding", sort=False)):
        name, heads = st.columns([2, 5], vertical_alignment="center")
        # A relation's name is data: shown literally.
        name.text(f"{finding} ({len(rows)})", help=helps[rows["column"].iloc[0]])
        offered = {
            (int(r.layer), int(r.head)): f"L{r.layer} H{r.head} · {100 * r.score:.1f}%"
            for r in rows.head(PILLS_PER_FINDING).itertuples()
        }
        key = f"classify_pass_{number}"
        heads.pills(
            finding,
            list(offered),
            format_func=offered.get,
            key=key,
            on_change=_pill_clicked,
            args=(key,),
            label_visibility="collapsed",
        )
        if len(rows) > PILLS_PER_FINDING:
            heads.caption(f"and {len(rows) - PILLS_PER_FINDING} more in the table below")


def _pill_clicked(key: str) -> None:
    """A head's pill was clicked: inspect it, and let the pill act as a button."""
    if st.session_state[key] is not None:
        inspect_head(st.session_state[key])
    st.session_state[key] = None


def results_table(table: pd.DataFrame, helps: dict[str, str]) -> None:
    """The per-head table, filtered by label; a clicked row picks the inspected head."""
    labels = sorted(table["label"].unique())
    shown_labels = st.multiselect("Show labels", labels, default=labels)
    shown = table[table["label"].isin(shown_labels)].reset_index(drop=True)
    key = f"{TABLE}_{hash(tuple(shown[['layer', 'head', 'label']].itertuples(index=False)))}"
    st.dataframe(
        as_percent(reading_order(shown), helps),
        hide_index=True,
        column_config=percent_columns(helps),
        on_select=partial(_row_clicked, key, shown),
        selection_mode="single-row",
        # A new table (another result, label filter or threshold) must not inherit the row
        # numbers selected in the previous one: they would name other heads.
        key=key,
    )


def _row_clicked(key: str, shown: pd.DataFrame) -> None:
    """A row of the table was clicked: the inspector follows it."""
    rows = [row for row in st.session_state[key].selection.rows if row < len(shown)]
    if rows:
        inspect_head((int(shown.at[rows[0], "layer"]), int(shown.at[rows[0], "head"])))


def heatmap(table: pd.DataFrame, helps: dict[str, str]) -> None:
    scores = [name for name in helps if name != "label"]
    column = st.selectbox("Heatmap of", scores, index=scores.index("score"))
    st.altair_chart(head_heatmap(table, column), theme=None, width="content")
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
    if st.toggle("Show salient operations", help="Loads the model when it is not resident."):
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
    st.subheader("All heads")
    results_table(table, helps)
    heatmap(table, helps)
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
    if (
        not is_folder_source(source) and hub_offline()
    ):  # probed once, remembered (lib.checkpoints.hub)
        st.sidebar.warning(OFFLINE_NOTE)
if not mode.enabled:
    st.sidebar.caption(f"Results are cached in `{cache_dir()}` (set {CACHE_DIR_KEY} to move it).")
if st.sidebar.button("Run", type="primary", disabled=not source or problem is not None):
    run(RunRequest(source, revision, device, dtype, settings), mode)
if RESULT in st.session_state:
    results(st.session_state[RESULT], settings.thresholds)
else:
    st.info("Pick a checkpoint in the sidebar and press Run.")
