"""The Classify heads page's views of a result: heads per label, the run's layer chart, the heads
passing each finding, the whole table and its heatmap."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from lib.app.handoff import HANDOFF_KEY, ChartHandoff
from lib.charts.heatmap import head_heatmap
from lib.core.errors import InputError
from lib.scoring.pipeline import Classification
from lib.scoring.relations import MIN_PAIRS, SKIP_RULE
from lib.tables import head_table as ht
from lib.tables.labels import Thresholds
from lib.tables.population import POPULATIONS, population_counts, select
from lib.tables.summary import label_counts, passing_heads, reading_order, run_name
from ui.charts import population_choice, show_counts
from ui.classify_session import (
    HEAD,
    POPULATION,
    TABLE,
)
from ui.navigation import LAYER_CHART

# A page's bare strings are drawn by Streamlit's magic: these notes are comments.
PILLS_PER_FINDING = 12  # heads offered per finding in the summary; the table lists every one


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
    """The relations skipped for too few single-token pairs: one folded note, not a box each,
    with why each one is skipped and its counts."""
    if not result.skipped:
        return
    with st.expander(
        f"{len(result.skipped)} relations skipped: fewer than {MIN_PAIRS} single-token pairs "
        "for this model's tokenizer"
    ):
        st.caption(SKIP_RULE)
        st.dataframe(
            pd.DataFrame(
                {
                    "relation": [skipped.name for skipped in result.skipped],
                    "single-token pairs": [skipped.n_pairs for skipped in result.skipped],
                    "pairs listed": [skipped.n_listed for skipped in result.skipped],
                    "why": [skipped.reason() for skipped in result.skipped],
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
