"""Charts of a sweep's results store over training (the Training dynamics page and notebooks).

The population and categories are the Layer chart's for a classified table
(`lib.tables.binning.score_categories`: the heads with a label, binned on `score` at 0, 25, 50, 75,
100 %, in the published figure's colours), so a step of the sweep looks like the chart of
that checkpoint. Steps are drawn on a symmetric-log axis (linear near 0, logarithmic beyond),
which keeps step 0 on the axis; tokens seen = step x `TOKENS_PER_STEP`. docs/methods.md §9.
Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.labels import SUPPRESSION_LABEL, UNCLASSIFIED

TOKENS_PER_STEP = 2_097_152
"""Tokens seen per Pythia training step: batches of 1024 sequences of 2048 tokens (Pythia
paper, section 2). (Kept here rather than in `lib.core.catalog`, which imports torch.)"""
STEP_TITLE = "Training step (log scale, step 0 included)"
POPULATION = f"Heads with a label (not {UNCLASSIFIED}), binned on their score"
TOKENS_DEFINITION = f"Tokens seen = step × {TOKENS_PER_STEP:,} (1024 sequences of 2048 tokens)."
PANEL_WIDTH, PANEL_HEIGHT = 360, 260


def classified(rows: pd.DataFrame) -> pd.DataFrame:
    """The store rows of heads with a label: the Layer chart's default population."""
    return rows[rows["label"] != UNCLASSIFIED]


def category_counts(
    rows: pd.DataFrame, categories: binning.ScoreCategories | None = None
) -> pd.DataFrame:
    """Heads per (model, step, category) among the classified ones (`classified`), zeros
    included, with `tokens` seen and `n_all` (every head of the model at that step)."""
    categories = categories or binning.score_categories()
    pieces = []
    for (model, step), group in rows.groupby(["model", "step"], sort=True):
        heads = classified(group)
        n = np.zeros(len(categories.names), dtype=int)
        if len(heads):
            table = ht.table_from_frame(heads[["model", "layer", "head", "score"]], str(model))
            codes, _ = categories.assign(table)
            n = np.bincount(codes[codes >= 0], minlength=len(categories.names))
        pieces.append(
            pd.DataFrame(
                {
                    "model": model,
                    "step": step,
                    "tokens": step * TOKENS_PER_STEP,
                    "category": categories.names,
                    "color": categories.colors,
                    "n_heads": n,
                    "n_all": len(group),
                }
            )
        )
    return pd.concat(pieces, ignore_index=True)


def categories_over_steps(
    counts: pd.DataFrame, categories: binning.ScoreCategories | None = None
) -> alt.TopLevelMixin:
    """Stacked areas of `category_counts`, one panel per model, steps on a symlog axis."""
    categories = categories or binning.score_categories()
    frame = counts.assign(stack_order=counts["category"].map(categories.names.index))
    panels = [
        alt.Chart(frame[frame["model"] == model], title=str(model))
        .mark_area(interpolate="step-after", line=True)
        .encode(
            x=alt.X("step:Q", title=STEP_TITLE, scale=alt.Scale(type="symlog")),
            y=alt.Y("n_heads:Q", title="# heads", stack="zero"),
            color=alt.Color(
                "category:N",
                title="score",
                scale=alt.Scale(domain=list(categories.names), range=list(categories.colors)),
                sort=list(categories.names),
            ),
            order=alt.Order("stack_order:Q"),
            tooltip=[
                "model:N",
                "step:Q",
                alt.Tooltip("tokens:Q", title="tokens seen", format=","),
                "category:N",
                "n_heads:Q",
                alt.Tooltip("n_all:Q", title="heads in the model"),
            ],
        )
        .properties(width=PANEL_WIDTH, height=PANEL_HEIGHT)
        for model in frame["model"].unique()
    ]
    return alt.hconcat(*panels)


def layer_counts_at(rows: pd.DataFrame, steps: Sequence[int]) -> binning.Counts | None:
    """The Layer chart's counts of each (model, step) in `steps`, one panel each named
    `model · step N`, with the Layer chart's default bins over the model's full depth
    (four equal bins); None when no head has a label at those steps."""
    picked = rows[rows["step"].isin(steps)]
    heads = classified(picked)
    if heads.empty:
        return None
    panel = heads["model"].astype(str) + " · step " + heads["step"].astype(str)
    table = ht.table_from_frame(
        heads[["layer", "head", "score"]].assign(model=panel.to_numpy()), "store"
    )
    n_layers = int(picked["layer"].max()) + 1
    width = math.ceil(n_layers / binning.DEFAULT_LAYER_BIN_COUNT)
    return binning.count_heads(table, binning.score_categories(), binning.LayerBinning(width))


def finding_columns(rows: pd.DataFrame) -> list[str]:
    """The score columns of the store (operation, suppression, attention patterns)."""
    skip = {"layer", "head", "step", "score"}
    numeric = rows.select_dtypes("number").columns
    return [column for column in numeric if column not in skip]


def scores_over_training(rows: pd.DataFrame, model: str, layer: int, head: int) -> pd.DataFrame:
    """One head's scores over the swept steps, long form: `step`, `tokens`, `column`, `value`
    (a fraction), and the head's `label` at that step."""
    mine = rows[(rows["model"] == model) & (rows["layer"] == layer) & (rows["head"] == head)]
    long = mine.melt(id_vars=["step", "label"], value_vars=finding_columns(rows), var_name="column")
    return long.assign(tokens=long["step"] * TOKENS_PER_STEP).dropna(subset=["value"])


def head_scores_chart(scores: pd.DataFrame, columns: Sequence[str], title: str) -> alt.Chart:
    """Lines of the chosen score `columns` of `scores_over_training` over steps, in percent."""
    chosen = scores[scores["column"].isin(columns)]
    return (
        alt.Chart(chosen, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title=STEP_TITLE, scale=alt.Scale(type="symlog")),
            y=alt.Y(
                "value:Q", title="score", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("column:N", title="score column"),
            tooltip=[
                "step:Q",
                alt.Tooltip("tokens:Q", title="tokens seen", format=","),
                "column:N",
                alt.Tooltip("value:Q", title="score", format=".1%"),
                alt.Tooltip("label:N", title="label at this step"),
            ],
        )
        .properties(width=2 * PANEL_WIDTH, height=PANEL_HEIGHT)
    )


def label_column(label: str, columns: Sequence[str]) -> str:
    """The score column behind a label (the labels of `lib.classify.findings`): an attention
    pattern is its own column, `suppression: r` -> `suppression_r`, a relation r -> `score_r`."""
    if label in columns:
        return label
    if label.startswith(SUPPRESSION_LABEL):
        return "suppression_" + label.removeprefix(SUPPRESSION_LABEL)
    return f"score_{label}"


def default_head_columns(scores: pd.DataFrame, n: int = 4) -> list[str]:
    """The columns worth drawing first: those that ever label the head, then the highest."""
    columns = list(scores["column"].unique())
    labelled = [
        label_column(label, columns) for label in scores["label"].unique() if label != UNCLASSIFIED
    ]
    best = scores.groupby("column")["value"].max().sort_values(ascending=False).index
    return list(dict.fromkeys([*labelled, *best]))[: max(n, len(labelled))]
