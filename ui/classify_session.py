"""What the Classify heads page keeps per session (its state keys) and per server (the resident
model, the result cache), shared by its parts in `ui/`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.runs.resident import ModelKey, ResidentModel
from lib.runs.result_cache import ResultCache
from lib.scoring.operations import salient_operations

RESULT = "classify_result"


MODEL = "classify_model"


TABLE = "classify_table"


HEAD = "classify_head"


SCORED_FILES = "classify_scored_relation_files"
"""The relation files the result shown was scored with (the sidebar's may have changed since)."""


POPULATION = "classify_population"


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
    """`salient_operations` of one head, computed once per model and head, from the
    checkpoint read layer by layer (or the resident model when it is `key`'s)."""
    with resident_model().read(key) as loaded:
        return salient_operations(loaded, layer, head)
