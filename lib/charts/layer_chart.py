"""The layer chart: `# heads` per layer bin, stacked by category, each segment labelled with its
share of the bar (`binning.PERCENT_DEFINITION`); one panel per model, side by side.

Command line (same code path as the page):

    python -m lib.chart INPUT.csv --out OUT.{csv,json,svg,png} [options]

Without options the layer bins are four equal bins per model (a pre-binned file keeps its own)
and the categories come from the file (pre-binned) or from binning its `score` column at
0, 25, 50, 75, 100 %. Bad input: one line on stderr, exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from lib.charts import export
from lib.core.colors import label_colors, parse_colors
from lib.core.errors import CliParser, InputError, check_not_input, run_cli
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.result_files import replace_together, settings_path

POPULATIONS = ("operation", "classified", "all")
"""`lib.tables.population.POPULATIONS`, named here so that the command's other uses never import the
engine (tests/test_chart_start.py checks that the two agree)."""
Y_TITLE = "# heads"
X_TITLE = "Layer"
BAR_STEP = 64
"""Pixels per layer bin along the x axis, at least."""
PANEL_HEIGHT = 320
PANEL_MIN_WIDTH = 480
"""A panel is at least this wide, so that the chart is landscape on screen and in every export
alike (four bins of `BAR_STEP` alone would make a portrait panel)."""
LABEL_FONT_SIZE = 11
MIN_LABEL_HEIGHT = 13
"""A segment thinner than this many pixels has its label beside the bar, at the segment's
height, instead of inside (where it would spill over its neighbours)."""
BAND_PADDING_INNER, BAND_PADDING_OUTER = 0.3, 0.15
"""Layer-bin band paddings: with these, a bar is `1 - 0.3` of `width / bins` wide, which places
the labels of thin segments just right of their bar."""
OUTSIDE_LABEL_COLOR = "#222222"


def default_title(counts: binning.Counts) -> str:
    """The model's name for one model; empty for several (each panel is titled by its model)."""
    models = counts.table["model"].unique()
    return str(models[0]) if len(models) == 1 else ""


def layer_chart(counts: binning.Counts, title: str | None = None) -> alt.TopLevelMixin:
    """The stacked bar chart of `counts`. `title` None means `default_title(counts)`.

    Bars stack bottom to top in category order; each non-empty segment carries its `percent`
    to one decimal: inside it, in black or white, whichever contrasts more with its colour,
    or, for a segment under `MIN_LABEL_HEIGHT` pixels, just right of the bar at its height
    (as the published figure prints every share). The `# heads` axis has whole-number ticks.
    """
    title = default_title(counts) if title is None else title
    frame = counts.table.assign(
        label=[f"{percent:.1f}%" for percent in counts.table["percent"]],
        label_color=label_colors(counts.table["color"]),
        stack_order=counts.table["category"].map(
            {name: rank for rank, name in enumerate(counts.categories.names)}
        ),
    )
    models = list(frame["model"].unique())
    if len(models) == 1:
        return _panel(frame, counts.categories, title)
    panels = [_panel(frame[frame["model"] == model], counts.categories, model) for model in models]
    return alt.hconcat(*panels, title=title or alt.Undefined)  # colours shared: one legend


def _panel(frame: pd.DataFrame, categories: binning.Categories, title: str) -> alt.LayerChart:
    """One model's bars and labels. Both layers share one stack transform (bottom to top in
    category order), so each label sits at the middle of its own segment.

    Only non-empty segments are data (an empty one draws nothing), inline as values so that no
    row limit applies; the bins are still all on the x axis. The y axis runs from 0 to the
    tallest bar exactly, which gives each segment's height in pixels for `MIN_LABEL_HEIGHT`.
    """
    bins = list(frame["layer_bin"].unique())
    tallest = max(int(frame.groupby("layer_bin", sort=False)["n_heads"].sum().max()), 1)
    drawn = frame[frame["n_heads"] > 0]
    drawn = drawn.assign(labelled=drawn["n_heads"] * PANEL_HEIGHT / tallest >= MIN_LABEL_HEIGHT)
    base = (
        alt.Chart(alt.Data(values=drawn.to_dict("records")))
        .transform_stack(
            stack="n_heads",
            groupby=["layer_bin"],
            sort=[alt.SortField("stack_order")],
            as_=["stack_start", "stack_end"],
        )
        .encode(
            x=alt.X(
                "layer_bin:N",
                sort=bins,
                scale=alt.Scale(
                    domain=bins, paddingInner=BAND_PADDING_INNER, paddingOuter=BAND_PADDING_OUTER
                ),
                title=X_TITLE,
            ).axis(labelAngle=0)
        )
    )
    bars = base.mark_bar().encode(
        y=alt.Y(
            "stack_start:Q",
            title=Y_TITLE,
            scale=alt.Scale(domain=[0, tallest], nice=False),
            axis=alt.Axis(tickMinStep=1, format="d"),
        ),
        y2="stack_end:Q",
        color=alt.Color(
            "category:N",
            title=categories.column,
            scale=alt.Scale(domain=list(categories.names), range=list(categories.colors)),
            sort=list(categories.names),
        ),
        tooltip=["model:N", "layer_bin:N", "category:N", "n_heads:Q", "label:N"],
    )
    width = max(BAR_STEP * len(bins), PANEL_MIN_WIDTH)
    middle = base.transform_calculate(stack_middle="(datum.stack_start + datum.stack_end) / 2")
    inside = (
        middle.transform_filter(alt.datum.labelled)
        .mark_text(baseline="middle", fontSize=LABEL_FONT_SIZE)
        .encode(y="stack_middle:Q", text="label:N", fill=alt.Fill("label_color:N", scale=None))
    )
    bar_half_width = width / len(bins) * (1 - BAND_PADDING_INNER) / 2
    beside = (
        middle.transform_filter(~alt.datum.labelled)
        .mark_text(
            baseline="middle",
            align="left",
            dx=bar_half_width + 3,
            fontSize=LABEL_FONT_SIZE,
            fill=OUTSIDE_LABEL_COLOR,
        )
        .encode(y="stack_middle:Q", text="label:N")
    )
    return alt.layer(bars, inside, beside, title=title or alt.Undefined).properties(
        width=width, height=PANEL_HEIGHT
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lib.chart`: read a head table, count, draw, write the export OUT names."""
    args = _parser().parse_args(argv)
    path, out = Path(args.input), Path(args.out)
    check_not_input([out], [path, settings_path(path)])
    try:
        with path.open("rb") as stream:
            table = ht.read_file(stream, path.name, repeated=args.repeated_heads)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    score_column, population_note = args.score_column, None
    if args.population:
        from lib import population  # it imports the engine (torch): only for --population

        table, column, population_note = population.head_table_population(
            table, args.population, path
        )
        score_column = score_column or column
    layers = binning.LayerBinning(
        width=args.layer_width,
        edges=binning.parse_layer_edges(args.layer_edges) if args.layer_edges else None,
    )
    categories = binning.build_categories(
        table,
        score_column=score_column,
        category_column=args.category_column,
        score_edges=binning.parse_score_edges(args.score_edges) if args.score_edges else None,
        names=binning.parse_names(args.names) if args.names else None,
        colors=parse_colors(args.colors) if args.colors else None,
    )
    counts = binning.count_heads(table, categories, layers)
    payload = export.render(out.suffix.lower(), layer_chart(counts, args.title), counts)
    try:
        replace_together([(out, payload)])
    except OSError as error:
        raise InputError(f"cannot write {out}: {error.strerror}") from None
    for note in (population_note, *counts.notes, binning.describe_outside(counts)):
        if note:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _parser() -> CliParser:
    parser = CliParser(
        prog="python -m lib.chart",
        description="Draw # heads per layer bin, stacked by category, from a head CSV.",
    )
    parser.add_argument("input", help="per-head or pre-binned CSV")
    parser.add_argument(
        "--out", required=True, help="output file; its suffix picks .csv, .json, .svg or .png"
    )
    bins = parser.add_mutually_exclusive_group()
    bins.add_argument("--layer-width", type=int, metavar="N", help="layer bins of N layers")
    bins.add_argument("--layer-edges", metavar="a,b,...", help="layer bin edges, e.g. 0,8,16,32")
    column = parser.add_mutually_exclusive_group()
    column.add_argument(
        "--score-column", metavar="NAME", help="numeric column to bin (default: score)"
    )
    column.add_argument(
        "--category-column", metavar="NAME", help="text column: one category per value"
    )
    parser.add_argument(
        "--population",
        choices=POPULATIONS,
        help="for a lib.classify table: operation heads (the published figure's), classified "
        "or all heads (docs/methods.md §5); default: every row of the file",
    )
    parser.add_argument(
        "--score-edges", metavar="a,b,...", help="score edges in percent (default: 0,25,50,75,100)"
    )
    parser.add_argument("--names", metavar="n1,n2,...", help="category names, bottom to top")
    parser.add_argument("--colors", metavar="c1,c2,...", help="category colours (hex or CSS names)")
    parser.add_argument("--title", help="chart title (default: the model name)")
    parser.add_argument(
        "--repeated-heads",
        choices=("refuse", *ht.REPEATED_HEADS_CHOICES),
        default="refuse",
        help="rows repeating a (layer, head): refuse the file (default), keep the first row of "
        "each head, or count every row as a head",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
