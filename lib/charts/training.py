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

from lib.charts.page import NATURAL_SIZE, panels_per_row
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.labels import PATTERNS, SUPPRESSION_LABEL, UNCLASSIFIED

TOKENS_PER_STEP = 2_097_152
"""Tokens seen per Pythia training step: batches of 1024 sequences of 2048 tokens (Pythia
paper, section 2). (Kept here rather than in `lib.core.catalog`, which imports torch.)"""
STEP_TITLE = "Training step (log scale, step 0 included)"
COUNT_TITLE = "# heads"
ROLE_PANEL_WIDTH, ROLE_PANEL_HEIGHT = 300, 150
ROLE_COLUMNS = panels_per_row(ROLE_PANEL_WIDTH, 3)
"""Role panels per row: as many as fit the page's content column (`lib.charts.page`)."""
ROLES_POPULATION = (
    f"Heads per label (relation, suppression or attention pattern; {UNCLASSIFIED} heads left "
    "out) at each swept step"
)
EMERGENCE_MARK = (
    "The diamond marks the head's first_step: from there on it holds its final label at every "
    "swept step. Each line is the score behind that label."
)
POPULATION = f"Heads with a label (not {UNCLASSIFIED}), binned on their score"
TOKENS_DEFINITION = f"Tokens seen = step × {TOKENS_PER_STEP:,} (1024 sequences of 2048 tokens)."
PANEL_WIDTH, PANEL_HEIGHT = 300, 260
LEGEND_LABEL_LIMIT = 280
"""Pixels of a legend label at most: two columns of them fit under a `2 x PANEL_WIDTH` chart."""


def step_ticks(last: int) -> list[int]:
    """Step-axis ticks: 0, the powers of ten that leave room before the last step (a third of
    it or less, so that their labels never collide on a log axis), and the last step."""
    powers = [10**k for k in range(9) if 3 * 10**k <= last]
    return sorted({0, *powers, last})


STEP_LABEL = (
    "datum.value >= 1000 ? format(datum.value / 1000, '~g') + 'k' : format(datum.value, 'd')"
)
"""Vega expression of a step tick's text: 1, 10, 100, 1k, 10k, 143k."""


def step_axis(steps: Sequence[int]) -> alt.X:
    """The x encoding of `step`: symmetric-log (linear near 0, so step 0 is on the axis), from
    0 to the last swept step, with the ticks of `step_ticks`."""
    last = max(int(max(steps)), 1)
    return alt.X(
        "step:Q",
        title=STEP_TITLE,
        scale=alt.Scale(type="symlog", domain=[0, last], nice=False),
        axis=alt.Axis(values=step_ticks(last), labelExpr=STEP_LABEL, labelFlush=True),
    )


def count_ticks(most: int) -> list[int]:
    """Whole-number ticks from 0 to at least `most` (and 1), a round step apart (1, 2, 5, 10,
    20, ...) with at most five steps: a head is never halved, so no tick is either."""
    most = max(most, 1)
    step = next(
        base * 10**power
        for power in range(10)
        for base in (1, 2, 5)
        if math.ceil(most / (base * 10**power)) <= 5
    )
    return list(range(0, math.ceil(most / step) * step + 1, step))


def count_axis(most: int, title: str = COUNT_TITLE) -> alt.Y:
    """The y encoding of `n_heads` up to `most` heads, with the ticks of `count_ticks`."""
    ticks = count_ticks(most)
    return alt.Y(
        "n_heads:Q",
        title=title,
        scale=alt.Scale(domain=[0, ticks[-1]], nice=False),
        axis=alt.Axis(values=ticks, format="d"),
    )


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
            x=step_axis(frame["step"]),
            y=count_axis(int(frame.groupby(["model", "step"])["n_heads"].sum().max())).stack(
                "zero"
            ),
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
    columns = panels_per_row(PANEL_WIDTH, len(panels))
    return (
        alt.concat(*panels, columns=columns)
        .resolve_scale(y="shared")
        .configure_legend(orient="bottom")
    )


def role_order(labels: Sequence[str]) -> list[str]:
    """Labels in the tie-break order of `lib.tables.labels`: relations, then suppressions, then
    attention patterns, each by name."""
    return sorted(
        labels,
        key=lambda label: (label in PATTERNS, label.startswith(SUPPRESSION_LABEL), label),
    )


def role_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Heads per (model, step, label) among the labelled heads (`classified`), with a zero
    for every label some step of the store has, and `tokens` seen."""
    heads = classified(rows)
    labels = role_order(list(heads["label"].unique()))
    pairs = rows[["model", "step"]].drop_duplicates().sort_values(["model", "step"])
    grid = pairs.merge(pd.DataFrame({"label": labels}), how="cross")
    counted = heads.groupby(["model", "step", "label"]).size().rename("n_heads").reset_index()
    frame = grid.merge(counted, how="left", on=["model", "step", "label"])
    frame["n_heads"] = frame["n_heads"].fillna(0).astype(int)
    return frame.assign(tokens=frame["step"] * TOKENS_PER_STEP)


def roles_over_steps(counts: pd.DataFrame) -> alt.FacetChart:
    """One panel per label (`role_counts`), `ROLE_COLUMNS` per row, all on one y scale: the
    number of heads holding that label at each swept step, one line per model."""
    labels = role_order(list(counts["label"].unique()))
    return (
        alt.Chart(counts)
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=step_axis(counts["step"]),
            y=count_axis(int(counts["n_heads"].max())),
            color=alt.Color(
                "model:N",
                title="model",
                legend=alt.Legend(orient="top") if counts["model"].nunique() > 1 else None,
            ),
            tooltip=[
                "model:N",
                "label:N",
                "step:Q",
                alt.Tooltip("tokens:Q", title="tokens seen", format=","),
                alt.Tooltip("n_heads:Q", title="heads with this label"),
            ],
        )
        .properties(width=ROLE_PANEL_WIDTH, height=ROLE_PANEL_HEIGHT)
        .facet(
            facet=alt.Facet("label:N", sort=labels, title=None, header=alt.Header(labelLimit=0)),
            columns=ROLE_COLUMNS,
        )
        .resolve_scale(y="shared")
    )


def step_panel(model: str, step: int) -> str:
    """The name of a model's panel at a step: `model · step N`."""
    return f"{model} · step {step}"


def layer_counts_at(rows: pd.DataFrame, steps: Sequence[int]) -> binning.Counts | None:
    """The Layer chart's counts of each (model, step) in `steps`, one panel each named
    `step_panel`, with the Layer chart's default bins over the model's full depth (four equal
    bins); None when no head has a label at those steps. `step_panels` names every panel,
    also those of a step with no labelled head."""
    picked = rows[rows["step"].isin(steps)]
    heads = classified(picked)
    if heads.empty:
        return None
    panel = [step_panel(m, s) for m, s in zip(heads["model"], heads["step"], strict=True)]
    table = ht.table_from_frame(heads[["layer", "head", "score"]].assign(model=panel), "store")
    n_layers = int(picked["layer"].max()) + 1
    width = math.ceil(n_layers / binning.DEFAULT_LAYER_BIN_COUNT)
    return binning.count_heads(table, binning.score_categories(), binning.LayerBinning(width))


def step_panels(rows: pd.DataFrame, steps: Sequence[int]) -> list[str]:
    """The panels of `layer_counts_at`, model by model, step by step (a step the model was
    not swept at has none)."""
    pairs = rows.loc[rows["step"].isin(steps), ["model", "step"]].drop_duplicates()
    return [
        step_panel(m, s) for m, s in pairs.sort_values(["model", "step"]).itertuples(index=False)
    ]


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
            x=step_axis(scores["step"]),
            y=alt.Y(
                "value:Q", title="score", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color(
                "column:N",
                title="score column",
                legend=alt.Legend(orient="bottom", columns=2, labelLimit=LEGEND_LABEL_LIMIT),
            ),
            tooltip=[
                "step:Q",
                alt.Tooltip("tokens:Q", title="tokens seen", format=","),
                "column:N",
                alt.Tooltip("value:Q", title="score", format=".1%"),
                alt.Tooltip("label:N", title="label at this step"),
            ],
        )
        .properties(width=2 * PANEL_WIDTH, height=PANEL_HEIGHT, autosize=NATURAL_SIZE)
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


def head_name(model: str, layer: int, head: int, several_models: bool) -> str:
    """`L1 H2` (prefixed by the model when the store has several)."""
    name = f"L{layer} H{head}"
    return f"{model} {name}" if several_models else name


def emergence_lines(rows: pd.DataFrame, emergence: pd.DataFrame) -> pd.DataFrame:
    """Each head of `emergence` (rows of `lib.tables.trajectory.trajectories` with a final
    label): the score behind its final label at every swept step, long form (`head`, `step`,
    `tokens`, `label`, `value`, `first_step`, and `emerged`: whether the step is its
    first_step)."""
    columns = finding_columns(rows)
    several = rows["model"].nunique() > 1
    pieces = []
    for head in emergence.itertuples(index=False):
        mine = rows[
            (rows["model"] == head.model)
            & (rows["layer"] == head.layer)
            & (rows["head"] == head.head)
        ]
        column = label_column(head.final_label, columns)
        pieces.append(
            pd.DataFrame(
                {
                    "head": f"{head_name(head.model, head.layer, head.head, several)}: "
                    f"{head.final_label}",
                    "step": mine["step"].to_numpy(),
                    "label": head.final_label,
                    "value": mine[column].to_numpy(dtype=float),
                    "first_step": head.first_step,
                }
            )
        )
    frame = pd.concat(pieces, ignore_index=True)
    return frame.assign(
        tokens=frame["step"] * TOKENS_PER_STEP, emerged=frame["step"] == frame["first_step"]
    )


def emergence_chart(lines: pd.DataFrame) -> alt.LayerChart:
    """Lines of `emergence_lines` over steps, in percent, with a diamond at each head's
    first_step and a dashed rule there."""
    base = alt.Chart(lines).encode(
        x=step_axis(lines["step"]),
        color=alt.Color(
            "head:N",
            title="head: final label",
            legend=alt.Legend(orient="bottom", columns=2, labelLimit=LEGEND_LABEL_LIMIT),
        ),
    )
    tooltip = [
        "head:N",
        "step:Q",
        alt.Tooltip("tokens:Q", title="tokens seen", format=","),
        alt.Tooltip("value:Q", title="score", format=".1%"),
        alt.Tooltip("first_step:Q", title="first_step"),
    ]
    y = alt.Y(
        "value:Q",
        title="score of the final label",
        axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, 1]),
    )
    lines_mark = base.mark_line(point=True).encode(y=y, tooltip=tooltip)
    emerged = base.transform_filter(alt.datum.emerged)
    diamonds = emerged.mark_point(shape="diamond", size=160, filled=True).encode(
        y=y, tooltip=tooltip
    )
    rules = emerged.mark_rule(strokeDash=[4, 4]).encode(tooltip=tooltip)
    return alt.layer(rules, lines_mark, diamonds).properties(
        width=2 * PANEL_WIDTH, height=PANEL_HEIGHT, autosize=NATURAL_SIZE
    )
