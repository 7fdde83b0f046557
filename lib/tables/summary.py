"""What a classification says at a glance: heads per label, and per finding the heads at or
above its threshold, best first (docs/methods.md §5). The Classify page opens on these.
"""

from __future__ import annotations

import pandas as pd

from lib.tables.labels import UNCLASSIFIED, Thresholds, findings

FIRST_COLUMNS = ("layer", "head", "label", "score")
"""The columns a reader looks for first in the per-head table."""
RUN_COLUMNS = ("model", "revision")
"""Columns that hold one value per run: said once above the table, not on every row."""


def run_name(table: pd.DataFrame) -> str:
    """`model @ revision` of a per-head table of one run."""
    return f"{table['model'].iloc[0]} @ {table['revision'].iloc[0]}"


def reading_order(table: pd.DataFrame) -> pd.DataFrame:
    """The per-head table for reading: `FIRST_COLUMNS` first, the findings in their order,
    without `RUN_COLUMNS`."""
    first = [column for column in FIRST_COLUMNS if column in table.columns]
    rest = [column for column in table.columns if column not in (*first, *RUN_COLUMNS)]
    return table[first + rest]


def label_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Heads per label (`label`, `heads`), most first, ties by label, `unclassified` last."""
    counts = table["label"].value_counts().rename_axis("label").reset_index(name="heads")
    counts = counts.assign(last=counts["label"] == UNCLASSIFIED)
    ordered = counts.sort_values(["last", "heads", "label"], ascending=[True, False, True])
    return ordered.drop(columns="last").reset_index(drop=True)


def passing_heads(table: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Every (finding, head) whose score is at or above the finding's threshold: columns
    `finding` (the label it would give), `column`, `layer`, `head`, `score`, `threshold`.
    Findings in `lib.classify.findings` order; within one, best score first, then by layer and
    head. A head passing several findings is listed under each."""
    found = pd.DataFrame(
        findings(list(table.columns), thresholds), columns=["column", "finding", "threshold"]
    )
    scores = table[["layer", "head", *found["column"]]].melt(
        id_vars=["layer", "head"],
        var_name="column",
        value_name="score",
    )
    rows = scores.merge(found.assign(order=range(len(found))), on="column")
    rows = rows[rows["score"] >= rows["threshold"]].sort_values(
        ["order", "score", "layer", "head"], ascending=[True, False, True, True]
    )
    return rows[["finding", "column", "layer", "head", "score", "threshold"]].reset_index(drop=True)
