"""Draw `# heads` per layer bin, stacked by category, from a per-head or pre-binned CSV.

    python -m lib.chart INPUT.csv --out OUT.{csv,json,svg,png} [options]

Without options the layer bins are four equal bins per model (a pre-binned file keeps its own)
and the categories come from the file (pre-binned) or from binning its `score` column at
0, 25, 50, 75, 100 %. The same code draws the Layer chart page (`lib.charts.layer_chart`). Bad
input: one line on stderr, exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lib.charts import export
from lib.charts.layer_chart import layer_chart
from lib.cli.output import check_not_input, say, write_bytes
from lib.core.colors import parse_colors
from lib.core.errors import CliParser, InputError, run_cli
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.population import POPULATIONS, head_table_population
from lib.tables.result_files import settings_path


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
        table, column, population_note = head_table_population(table, args.population, path)
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
    write_bytes(out, payload)
    for note in (population_note, *counts.notes, binning.describe_outside(counts)):
        if note:
            say(f"note: {note}")
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
