"""Layer chart: `# heads` per layer bin, stacked by category, from any head CSV.

Opens on the bundled counts of the published "Pythia 6.9B" figure. Session state
(`layer_chart_*` keys): the table on screen and the column it is first categorised by; a
version renewed when that table changes; the last upload's read (file id, rule for repeated
heads) and error, so that a bad upload shows its message while the previous table stays on
screen; the last counts that could be drawn (of this version), kept on screen while a setting
is wrong. Control values outlive visits to other pages (`ui.state.kept`); a new table keeps
those the user chose that still apply to it, and says so (`ui.chart_settings`). A table
another page leaves under `HANDOFF_KEY` is taken on the next run. Text from a file is shown
literally (`ui.literal`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from lib.app.handoff import HANDOFF_KEY, ChartHandoff
from lib.charts import export
from lib.charts.layer_chart import default_title, layer_chart
from lib.charts.page import NATURAL_SIZE
from lib.core.errors import InputError
from lib.core.paths import PUBLISHED_FIGURE_CSV
from lib.tables import binning
from lib.tables import head_table as ht
from ui.chart_controls import COLUMN, PREFIX, VERSION, category_controls, layer_controls, setting
from ui.chart_settings import CARRIED, carry_over
from ui.deployment import public_mode
from ui.frame import require_frame
from ui.literal import literal

require_frame()

TABLE = "layer_chart_table"
UPLOAD = "layer_chart_upload"
UPLOAD_READ = "layer_chart_upload_read"
UPLOAD_ERROR = "layer_chart_upload_error"
REPEATS = "layer_chart_repeats"
REPEATED_RULE = "layer_chart_repeated_rule"
GOOD = "layer_chart_good"


@st.cache_resource
def figure_table() -> ht.AnyTable:
    """The bundled figure's counts, read once per server."""
    return ht.read_table(PUBLISHED_FIGURE_CSV.read_bytes(), PUBLISHED_FIGURE_CSV.name)


@st.cache_data(max_entries=256, show_spinner=False)
def chart_spec(_counts: binning.Counts, title: str, digest: str) -> dict[str, Any]:
    """The chart's Vega-Lite spec, made once per server for the same counts (`digest`, from
    `binning.counts_digest`) and title: building and validating it costs about 0.2 s of CPU,
    which every session opening the figure used to pay on every rerun."""
    return layer_chart(_counts, title).properties(autosize=NATURAL_SIZE).to_dict()


def show(table: ht.AnyTable, column: str | None = None) -> None:
    """Put `table` on screen, categorised by `column` (None: `binning.default_column`) at
    first; each control keeps the value the user chose where it applies to `table`
    (`carry_over`), else starts from its default."""
    carry_over(st.session_state.get(TABLE), table, column is not None)
    st.session_state[TABLE] = table
    st.session_state[COLUMN] = column
    st.session_state[VERSION] = st.session_state.get(VERSION, 0) + 1


def take_handoff() -> None:
    """Show the table another page left under `HANDOFF_KEY`, taking it out of the state."""
    handoff: ChartHandoff | None = st.session_state.pop(HANDOFF_KEY, None)
    if handoff is not None:
        try:
            show(handoff.validated(), handoff.score_column)
        except InputError as error:
            st.error(literal(str(error)))


def take_upload(limits: ht.ReadLimits) -> None:
    """Read a newly uploaded CSV within `limits` once (again when the user chooses what to do
    with its repeated heads); when it is bad, keep the table and its message."""
    uploaded = st.sidebar.file_uploader("Head CSV (per-head or pre-binned)", type="csv", key=UPLOAD)
    if uploaded is None:
        st.session_state[UPLOAD_ERROR] = st.session_state[REPEATS] = None
        return
    rule = st.session_state.get(REPEATED_RULE, {}).get(uploaded.file_id, "refuse")
    if (uploaded.file_id, rule) == st.session_state.get(UPLOAD_READ):
        return
    st.session_state[UPLOAD_READ] = (uploaded.file_id, rule)
    st.session_state[UPLOAD_ERROR] = st.session_state[REPEATS] = None
    uploaded.seek(0)
    try:
        show(ht.read_file(uploaded, uploaded.name, limits, rule))
    except ht.RepeatedHeadsError as error:
        st.session_state[UPLOAD_ERROR] = str(error)
        st.session_state[REPEATS] = (uploaded.file_id, error.examples)
    except InputError as error:
        st.session_state[UPLOAD_ERROR] = str(error)


def offer_repeated_heads_fix() -> None:
    """For an upload refused for repeated heads: the first of them, and a button per fix."""
    pending = st.session_state.get(REPEATS)
    if pending is None:
        return
    file_id, examples = pending
    st.caption("The first repeated heads, each row beside the rows it repeats:")
    st.dataframe(examples.rename_axis("row"))

    def choose(rule: str) -> None:
        st.session_state[REPEATED_RULE] = {file_id: rule}

    for column, (rule, caption) in zip(
        st.columns(len(ht.REPEATED_HEADS_CHOICES)), ht.REPEATED_HEADS_CHOICES.items(), strict=True
    ):
        column.button(caption, key=f"{PREFIX}repeated_{rule}", on_click=choose, args=(rule,))


def counts_by_default_bins(table: ht.AnyTable, categories: binning.Categories) -> bool:
    """Whether `table` counts in `categories` with the default layer bins."""
    try:
        binning.count_heads(table, categories)
    except InputError:
        return False
    return True


def counted(table: ht.AnyTable) -> binning.Counts | None:
    """The counts of the settings in the sidebar, each setting's error shown right below it;
    None when they cannot be counted."""
    try:
        layers: binning.LayerBinning | None = layer_controls(table)
        layer_problem = None
    except InputError as error:
        layers, layer_problem = None, str(error)
    layer_spot = st.sidebar.empty()
    try:
        categories: binning.Categories | None = category_controls(table)
        category_problem = None
    except InputError as error:
        categories, category_problem = None, str(error)
    category_spot = st.sidebar.empty()
    counts = None
    if layers is not None and categories is not None:
        try:
            counts = binning.count_heads(table, categories, layers)
        except InputError as error:
            if layers != binning.LayerBinning() and counts_by_default_bins(table, categories):
                layer_problem = str(error)  # the layer bins, not the data
            else:
                st.error(literal(str(error)))
    if layer_problem:
        layer_spot.error(literal(layer_problem))
    if category_problem:
        category_spot.error(literal(category_problem))
    return counts


def downloads(table: ht.AnyTable, counts: binning.Counts, chart: dict[str, Any]) -> None:
    """One button per export; each file is made only when its button is clicked."""
    for column, (suffix, (mime, caption)) in zip(
        st.columns(len(export.FORMATS)), export.FORMATS.items(), strict=True
    ):
        column.download_button(
            caption,
            data=lambda suffix=suffix: export.render(suffix, chart, counts),
            file_name=export.file_name(table.source, suffix),
            mime=mime,
            on_click="ignore",  # a download changes nothing on the page
            key=f"{PREFIX}download{suffix.replace('.', '_')}",
        )


def main(limits: ht.ReadLimits) -> None:
    st.title("Layer chart")
    if TABLE not in st.session_state:
        show(figure_table())
    take_handoff()
    take_upload(limits)
    table: ht.AnyTable = st.session_state[TABLE]

    if st.session_state.get(UPLOAD_ERROR):
        st.error(literal(st.session_state[UPLOAD_ERROR]))
        offer_repeated_heads_fix()
    if table is figure_table():
        st.caption(
            f"Showing {literal(table.source)}: the counts behind the published “Pythia 6.9B” "
            "figure of MAPS (Elhelo & Geva, arXiv 2412.11965). Upload a CSV in the sidebar to "
            "draw your own."
        )
    else:
        st.caption(f"Showing {literal(table.source)}.")
        if st.button("Back to the published figure"):
            show(figure_table())
            st.rerun()
    if st.session_state.get(CARRIED):
        st.caption(literal(st.session_state[CARRIED]))

    counts = counted(table)
    good = st.session_state.get(GOOD)
    if counts is not None:
        st.session_state[GOOD] = (st.session_state[VERSION], counts)
    elif good is not None and good[0] == st.session_state[VERSION]:
        counts = good[1]
        st.caption("The last chart that could be drawn; the setting marked in the sidebar is not.")
    else:
        st.stop()
    title = setting(st.sidebar.text_input, "Title", "title", "title", default_title(counts))
    chart = chart_spec(counts, title, binning.counts_digest(counts))

    for note in counts.notes:
        st.info(literal(note))
    outside = binning.describe_outside(counts)
    if outside:
        st.warning(literal(outside))
    st.vega_lite_chart(spec=chart, theme=None, width="content")  # the exports' size
    st.caption(
        f"{binning.PERCENT_DEFINITION} {binning.LAYER_BIN_DEFINITION} A segment too thin to hold "
        "its label has it just right of its bar."
    )
    st.caption("Categories, bottom to top: " + literal("; ".join(counts.categories.ranges())) + ".")
    st.dataframe(
        counts.table,
        hide_index=True,
        column_config={
            "n_heads": st.column_config.NumberColumn(
                "n_heads", help="Heads in this bin and category."
            ),
            "percent": st.column_config.NumberColumn(
                "percent", help=binning.PERCENT_DEFINITION, format="%.1f"
            ),
        },
    )
    downloads(table, counts, chart)


main(public_mode().upload_limits)
