"""The Classify heads page's sidebar: which checkpoint, where and how to load it, what to score, and
whether it fits in memory."""

from __future__ import annotations

import streamlit as st

from lib.app.public_mode import PublicMode
from lib.checkpoints.loader import (
    DEVICES,
    DTYPES,
    check_memory,
    dtype_name,
    free_memory_by_holder,
    resolve_device,
    resolve_dtype,
)
from lib.core import catalog
from lib.core.errors import InputError
from lib.runs.classification import memory_needed
from lib.scoring.patterns import DEFAULT_PATTERN_SETTINGS
from lib.scoring.pipeline import ClassifySettings
from lib.scoring.relations import MIN_PAIRS, relation_names
from ui.classify_session import (
    KEEP,
)
from ui.relation_files import relation_file_controls
from ui.thresholds import threshold_controls

CATALOG, FOLDER = "Pythia catalog", "Local folder"
FOLDER_INPUT = "Local checkpoint folder"


DEFAULT_SIZE = "70m"


GIB = 2**30


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
        f"Needs about {needed / GIB:.2f} GiB to score and to check in context, reading the "
        "weights one layer at a time (W_U and one layer's W_O·W_U in float32, one layer, "
        "activations, the app; lib.core.catalog.streamed_memory_estimate); free: "
        + ", ".join(f"{size / GIB:.1f} GiB on {holder}" for holder, size in free.items())
    )
    try:
        # A run reads the weights layer by layer in float32: the dtype does not change it.
        check_memory(needed, target, source, torch_dtype, dtype_matters=False)
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
