"""Two classification runs side by side: the heads whose label differs, and the counts.

    python -m lib.compare A.csv B.csv [--population operation|classified|all] --out diff.csv

What is compared and how: `lib.tables.compare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lib.cli.output import check_not_input, check_writable, say, write_bytes
from lib.core.errors import CliParser, run_cli
from lib.tables import head_table as ht
from lib.tables.compare import compare, read_run
from lib.tables.population import DEFAULT_POPULATION, POPULATIONS
from lib.tables.result_files import settings_path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lib.compare`: write the heads whose label differs; say the counts."""
    parser = CliParser(prog="python -m lib.compare", description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path, help="per-head CSV of run A (python -m lib.classify)")
    parser.add_argument("b", type=Path, help="per-head CSV of run B")
    parser.add_argument("--population", default=DEFAULT_POPULATION, choices=list(POPULATIONS))
    parser.add_argument("--out", type=Path, required=True, help="CSV of the differing heads")
    args = parser.parse_args(argv)
    check_writable(args.out)
    check_not_input([args.out], [args.a, args.b, settings_path(args.a), settings_path(args.b)])
    (a, thresholds), (b, b_thresholds) = read_run(args.a), read_run(args.b)
    if thresholds != b_thresholds:
        say("note: the runs' sidecars differ in thresholds; A's label both")
    comparison = compare(a, b, thresholds, args.population)
    write_bytes(args.out, ht.to_csv_bytes(comparison.differences))
    for note in (comparison.shapes, comparison.chart_note):
        if note:
            say(f"note: {note}")
    say(
        f"{len(comparison.differences)} of {comparison.n_matched} heads differ in label; "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
