"""Each head's label over the swept training steps: the emergence table of a results store.

    python -m lib.trajectory STORE --out FILE.csv

Columns and their definitions: `lib.tables.trajectory`.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.cli.options import out_option
from lib.cli.output import check_not_input, check_writable, say, write_bytes
from lib.core.errors import CliParser, run_cli
from lib.runs.store import Store
from lib.tables.head_table import to_csv_bytes
from lib.tables.trajectory import trajectories


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.trajectory",
        description="Write the emergence table (final label, first step holding it, label "
        "changes, first step at threshold) of every head in a sweep's results store.",
        parents=[out_option()],
    )
    parser.add_argument("store", help="results store of python -m lib.sweep (folder or URL)")
    args = parser.parse_args(argv)
    check_writable(args.out)
    check_not_input([args.out], [args.store])
    table = trajectories(Store(args.store).read())
    write_bytes(args.out, to_csv_bytes(table))
    say(f"wrote {args.out}: {len(table)} heads")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
