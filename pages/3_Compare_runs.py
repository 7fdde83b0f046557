"""Compare runs: two results this server has computed or cached, side by side.

Pick run A and run B among the stored results (`lib.runs.result_cache.stored_results`), e.g. two
checkpoints, two sizes, deduped or not. Both are labelled with the thresholds of the sidebar
(the same inputs as on Classify heads); their layer charts share bins and colours, and the
heads whose label differs are listed (`lib.compare`). Session state (`compare_*` keys): the
two choices and the population, kept for the session.
"""

from __future__ import annotations

import streamlit as st

from lib.core.errors import InputError
from lib.runs.result_cache import StoredResult, cache_dir, stored_results
from lib.tables.compare import compare
from lib.tables.score_help import column_help
from ui.charts import population_choice, show_counts
from ui.frame import require_frame
from ui.navigation import CLASSIFY_HEADS
from ui.thresholds import threshold_controls

require_frame()

SIDES = {"A": "compare_a", "B": "compare_b"}


def pick_runs(stored: list[StoredResult]) -> tuple[StoredResult, StoredResult]:
    """Run A and run B, by default the two newest."""
    paths = [result.csv_path for result in stored]
    by_path = {result.csv_path: result for result in stored}
    picked = [
        st.selectbox(
            f"Run {side}",
            paths,
            index=number,
            format_func=lambda path: by_path[path].description,
            key=key,
            persist_state="session",
        )
        for number, (side, key) in enumerate(SIDES.items())
    ]
    return by_path[picked[0]], by_path[picked[1]]


st.title("Compare runs")
thresholds = threshold_controls()
stored = stored_results(cache_dir())
if len(stored) < 2:
    st.info(
        f"Comparing needs two results this server has computed or cached; it has {len(stored)}. "
        "Score two checkpoints, sizes or deduped and not on Classify heads."
    )
    st.page_link(CLASSIFY_HEADS, label="Classify heads", icon=":material/manage_search:")
    st.stop()
a, b = pick_runs(stored)
population = population_choice(thresholds, "compare_population")
try:
    comparison = compare(a.read().table, b.read().table, thresholds, population)
except InputError as error:
    st.error(str(error))
    st.stop()
if comparison.shapes:
    st.warning(comparison.shapes)
if comparison.counts is None:
    st.info(comparison.chart_note)
else:
    show_counts(comparison.counts, panels=comparison.names)
st.subheader("Heads whose label differs")
st.caption(
    f"{len(comparison.differences)} of {comparison.n_matched} heads matched by (layer, head) "
    "differ in label. Scores in percent."
)
helps = column_help(["label", "score"], a.settings, thresholds)
differences = comparison.differences
st.dataframe(
    differences.assign(**{f"score {side}": 100 * differences[f"score {side}"] for side in SIDES}),
    hide_index=True,
    column_config={
        **{
            f"label {side}": st.column_config.TextColumn(help=f"Run {side}: {helps['label']}")
            for side in SIDES
        },
        **{
            f"score {side}": st.column_config.NumberColumn(
                format="%.1f%%", help=f"Run {side}: {helps['score']}"
            )
            for side in SIDES
        },
    },
)
