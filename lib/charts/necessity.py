"""When a relation's heads become necessary over training (docs/methods.md §10): per relation,
its accuracy at each swept step intact, with its heads removed and with as many random heads
removed (their mean as a line, the draws' lowest to highest as a band), on the training charts'
step axis (`lib.charts.training.step_axis`) and one 0-100 % accuracy scale shared by every
panel, with a dashed rule at the step from which the heads are necessary
(`lib.tables.necessity`). Imports no torch.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from lib.charts.ablation import RANDOM_COLOR, RELATION_COLOR
from lib.charts.page import panels_per_row
from lib.charts.training import LEGEND_LABEL_LIMIT, PANEL_WIDTH, TOKENS_PER_STEP, step_axis

INTACT, REMOVED, RANDOM = "intact", "relation heads removed", "random heads removed (mean)"
LINE_COLORS = {INTACT: "#1f77b4", REMOVED: RELATION_COLOR, RANDOM: RANDOM_COLOR}
LINE_COLUMNS = {INTACT: "base_accuracy", REMOVED: "ablated_accuracy", RANDOM: "random_mean"}
LINE_DASHES = {INTACT: [1, 0], REMOVED: [1, 0], RANDOM: [6, 3]}
LINE_WIDTHS = {INTACT: 5, REMOVED: 2, RANDOM: 2}
"""Intact is wide and random dashed, so either stays visible where the two coincide (before
the model does the task, and wherever random heads cost nothing)."""
NECESSITY_PANEL_HEIGHT = 200


def panel_name(model: str, relation: str, several_models: bool) -> str:
    """A panel's title: the relation, prefixed by the model when the store has several."""
    return f"{model} · {relation}" if several_models else relation


def necessity_lines(steps: pd.DataFrame) -> pd.DataFrame:
    """`lib.tables.necessity.over_training` long form: `panel`, `step`, `tokens`, `line`
    (`LINE_COLUMNS`), `accuracy` (a fraction), `n_heads_removed`."""
    several = steps["model"].nunique() > 1
    pairs = zip(steps["model"], steps["relation"], strict=True)
    panels = [panel_name(model, relation, several) for model, relation in pairs]
    wide = steps.assign(panel=panels)
    long = wide.melt(
        id_vars=["panel", "step", "n_heads_removed"],
        value_vars=list(LINE_COLUMNS.values()),
        var_name="column",
        value_name="accuracy",
    )
    names = {column: line for line, column in LINE_COLUMNS.items()}
    return long.assign(line=long["column"].map(names), tokens=long["step"] * TOKENS_PER_STEP)


def style(values: dict[str, object]) -> alt.Scale:
    """A scale giving each line of `LINE_COLORS` its value in `values`."""
    return alt.Scale(domain=list(values), range=list(values.values()))


def necessity_chart(steps: pd.DataFrame, necessary: pd.DataFrame) -> alt.ConcatChart:
    """One panel per (model, relation) of `steps` (`over_training`), lines of
    `necessity_lines`, the random band, and a dashed rule at `necessary`'s `necessary_step`
    (`necessary_steps`) where there is one."""
    several = steps["model"].nunique() > 1
    lines = necessity_lines(steps)
    x = step_axis(steps["step"])
    scale = alt.Scale(domain=[0, 1])  # one accuracy scale for every panel
    y = alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format="%"), scale=scale)
    color = alt.Color(
        "line:N",
        title=None,
        scale=style(LINE_COLORS),
        legend=alt.Legend(orient="bottom", labelLimit=LEGEND_LABEL_LIMIT),
    )
    tooltip = [
        "line:N",
        "step:Q",
        alt.Tooltip("tokens:Q", title="tokens seen", format=","),
        alt.Tooltip("accuracy:Q", title="accuracy", format=".1%"),
        alt.Tooltip("n_heads_removed:Q", title="heads removed"),
    ]
    panels = []
    for row in necessary.itertuples(index=False):
        name = panel_name(row.model, row.relation, several)
        mine = steps[(steps["model"] == row.model) & (steps["relation"] == row.relation)]
        layers = [
            alt.Chart(mine)
            .mark_area(opacity=0.25, color=RANDOM_COLOR)
            .encode(x=x, y=alt.Y("random_low:Q", scale=scale), y2="random_high:Q"),
            alt.Chart(lines[lines["panel"] == name])
            .mark_line(point=True)
            .encode(
                x=x,
                y=y,
                color=color,
                strokeDash=alt.StrokeDash("line:N", scale=style(LINE_DASHES), legend=None),
                strokeWidth=alt.StrokeWidth("line:N", scale=style(LINE_WIDTHS), legend=None),
                tooltip=tooltip,
            ),
        ]
        if not pd.isna(row.necessary_step):
            rule = pd.DataFrame({"step": [int(row.necessary_step)]})
            layers.append(
                alt.Chart(rule)
                .mark_rule(strokeDash=[4, 4], color=RELATION_COLOR)
                .encode(x=x, tooltip=[alt.Tooltip("step:Q", title="necessary from step")])
            )
        panels.append(
            alt.layer(*layers, title=name).properties(
                width=PANEL_WIDTH, height=NECESSITY_PANEL_HEIGHT
            )
        )
    return alt.concat(*panels, columns=panels_per_row(PANEL_WIDTH, len(panels)))
