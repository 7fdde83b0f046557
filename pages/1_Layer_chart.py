"""Layer chart: `# heads` per layer bin, stacked by category, from any head CSV.

Opens on the bundled counts of the published "Pythia 6.9B" figure. Session state
(`layer_chart_*` keys): the table on screen and the column it is first categorised by; a
version that renews every control's key when that table changes; the last upload's id and
error, so that a bad upload shows its message while the previous table stays on screen.
A table another page leaves under `HANDOFF_KEY` is taken on the next run.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lib import binning, export
from lib import head_table as ht
from lib.chart import default_title, layer_chart
from lib.errors import InputError
from lib.handoff import HANDOFF_KEY, ChartHandoff
from ui.deployment import public_mode
from ui.navigation import sidebar_links

FIGURE_CSV = Path(__file__).resolve().parent.parent / "data/examples/pythia-6.9b-figure.csv"
TABLE = "layer_chart_table"
VERSION = "layer_chart_version"
UPLOAD = "layer_chart_upload"
UPLOAD_ID = "layer_chart_upload_id"
UPLOAD_ERROR = "layer_chart_upload_error"
COLUMN = "layer_chart_column"
LAYER_MODES = {"default": "Default", "width": "Width", "edges": "Edges"}

Table = ht.HeadTable | ht.BinnedTable


@st.cache_resource
def figure_table() -> Table:
    """The bundled figure's counts, read once per server."""
    return ht.read_table(FIGURE_CSV.read_bytes(), FIGURE_CSV.name)


def show(table: Table, column: str | None = None) -> None:
    """Put `table` on screen, categorised by `column` (None: `binning.default_column`) at
    first; every control starts again from its defaults."""
    st.session_state[TABLE] = table
    st.session_state[COLUMN] = column
    st.session_state[VERSION] = st.session_state.get(VERSION, 0) + 1


def key(name: str) -> str:
    """A control's key, new for every table shown."""
    return f"layer_chart_{name}_{st.session_state[VERSION]}"


def take_handoff() -> None:
    """Show the table another page left under `HANDOFF_KEY`, taking it out of the state."""
    handoff: ChartHandoff | None = st.session_state.pop(HANDOFF_KEY, None)
    if handoff is not None:
        try:
            show(ht.table_from_frame(handoff.table, handoff.source), handoff.score_column)
        except InputError as error:
            st.error(str(error))


def take_upload(max_rows: int) -> None:
    """Read a newly uploaded CSV (at most `max_rows` rows) once; when it is bad, keep the table
    and its message."""
    uploaded = st.sidebar.file_uploader("Head CSV (per-head or pre-binned)", type="csv", key=UPLOAD)
    if uploaded is None:
        st.session_state[UPLOAD_ERROR] = None
    elif uploaded.file_id != st.session_state.get(UPLOAD_ID):
        st.session_state[UPLOAD_ID] = uploaded.file_id
        try:
            show(ht.read_table(uploaded.getvalue(), uploaded.name, max_rows))
            st.session_state[UPLOAD_ERROR] = None
        except InputError as error:
            st.session_state[UPLOAD_ERROR] = str(error)


def layer_controls(table: Table) -> binning.LayerBinning:
    """Layer bins: the default, a width, or explicit edges."""
    default_bins = binning.default_layer_bins(table)
    default_help = (
        "the file's own bins"
        if isinstance(table, ht.BinnedTable)
        else f"{binning.DEFAULT_LAYER_BIN_COUNT} equal bins per model"
    )
    mode = st.sidebar.radio(
        "Layer bins",
        list(LAYER_MODES),
        format_func=LAYER_MODES.get,
        horizontal=True,
        key=key("layer_mode"),
        help=f"Default: {default_help}. {binning.LAYER_BIN_DEFINITION}",
    )
    if mode == "width":
        edges = default_bins.edges
        width = st.sidebar.number_input(
            "Bin width (layers)", min_value=1, value=edges[1] - edges[0], key=key("layer_width")
        )
        return binning.LayerBinning(width=int(width))
    if mode == "edges":
        text = st.sidebar.text_input(
            "Layer edges",
            ", ".join(map(str, default_bins.edges)),
            key=key("layer_edges"),
            help="Increasing whole numbers; heads outside the first and last edge are listed.",
        )
        return binning.LayerBinning(edges=binning.parse_layer_edges(text))
    return binning.LayerBinning()


def category_controls(table: Table) -> binning.Categories:
    """The column heads are categorised by, its edges, and each category's name and colour."""
    if isinstance(table, ht.BinnedTable):
        categories = binning.build_categories(table)
    else:
        columns = [*table.numeric_columns, *table.text_columns]
        first = st.session_state[COLUMN]
        column = st.sidebar.selectbox(
            "Categorise heads by",
            columns,
            index=columns.index(first if first in columns else binning.default_column(table)),
            key=key("column"),
            help="A numeric column is cut at score edges; a text column gives one category per "
            "value.",
        )
        if column in table.text_columns:
            categories = binning.build_categories(table, category_column=column)
        else:
            edges = st.sidebar.text_input(
                "Score edges (%)",
                ", ".join(f"{edge:g}" for edge in binning.DEFAULT_SCORE_EDGES),
                key=key("score_edges"),
                help="Category i holds scores in [edge i, edge i+1), the last one also its "
                f"upper edge. {ht.SCALE_RULE}",
            )
            categories = binning.build_categories(
                table, score_column=column, score_edges=binning.parse_score_edges(edges)
            )
    # Keyed by the categories' definition, so new edges or a new column bring new defaults.
    style = key(f"style_{categories.column}_{'|'.join(categories.names)}")
    names, colors = [], []
    few = len(categories.names) <= 8  # a long list (e.g. every engine label) starts folded
    with st.sidebar.expander("Category names and colours, bottom to top", expanded=few):
        for i, (name, color) in enumerate(zip(categories.names, categories.colors, strict=True)):
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            names.append(left.text_input(f"Category {i + 1}", name, key=f"{style}_name_{i}"))
            colors.append(
                right.color_picker(
                    f"Colour of category {i + 1}",
                    color,
                    key=f"{style}_color_{i}",
                    label_visibility="collapsed",
                )
            )
    return binning.restyle(categories, names, colors)


def downloads(table: Table, counts: binning.Counts, chart: object) -> None:
    """One button per export; each file is made only when its button is clicked."""
    for column, (suffix, (mime, what)) in zip(
        st.columns(len(export.FORMATS)), export.FORMATS.items(), strict=True
    ):
        column.download_button(
            f"{suffix[1:].upper()} ({what})",
            data=lambda suffix=suffix: export.render(suffix, chart, counts),
            file_name=export.file_name(table.source, suffix),
            mime=mime,
            on_click="ignore",  # a download changes nothing on the page
            key=f"layer_chart_download{suffix.replace('.', '_')}",
        )


st.set_page_config(page_title="Layer chart · Pythia Head Atlas", layout="wide")
sidebar_links()
st.title("Layer chart")
if TABLE not in st.session_state:
    show(figure_table())
take_handoff()
take_upload(public_mode().max_upload_rows)
table: Table = st.session_state[TABLE]

if st.session_state.get(UPLOAD_ERROR):
    st.error(st.session_state[UPLOAD_ERROR])
if table is figure_table():
    st.caption(
        f"Showing `{table.source}`: the counts behind the published “Pythia 6.9B” figure of "
        "MAPS (Elhelo & Geva, arXiv 2412.11965). Upload a CSV in the sidebar to draw your own."
    )
else:
    st.caption(f"Showing `{table.source}`.")
    if st.button("Back to the published figure"):
        show(figure_table())
        st.rerun()

try:
    layers = layer_controls(table)
    categories = category_controls(table)
    counts = binning.count_heads(table, categories, layers)
except InputError as error:
    st.error(str(error))
    st.stop()
title = st.sidebar.text_input("Title", default_title(counts), key=key("title"))
chart = layer_chart(counts, title)

for note in counts.notes:
    st.info(note)
outside = binning.describe_outside(counts)
if outside:
    st.warning(outside)
st.altair_chart(chart, theme=None)
st.caption(f"{binning.PERCENT_DEFINITION} {binning.LAYER_BIN_DEFINITION}")
st.caption("Categories, bottom to top: " + "; ".join(counts.categories.ranges()) + ".")
st.dataframe(
    counts.table,
    hide_index=True,
    column_config={
        "n_heads": st.column_config.NumberColumn("n_heads", help="Heads in this bin and category."),
        "percent": st.column_config.NumberColumn(
            "percent", help=binning.PERCENT_DEFINITION, format="%.1f"
        ),
    },
)
downloads(table, counts, chart)
