"""Each head's label over the swept training steps, summarised: the emergence table.

    python -m lib.trajectory STORE --out FILE.csv

One row per (model, layer, head) of the store (`lib.runs.store`), unclassified heads included, over
the steps swept for that model, in step order (docs/methods.md §9):

- `final_label`: the head's label at the last swept step;
- `first_step`: the earliest swept step from which the head holds `final_label` at every later
  swept step (the last step's own value when it changed there; the first swept step when it
  never changed);
- `n_changes`: how many times its label differs from the label at the previous swept step;
- `threshold_step`: the first swept step at which its best score reaches its threshold, i.e.
  it has a label other than `unclassified`; empty when that never happens.

`main` and `step143000` are the same checkpoint: when both were swept, one row per step is
kept. This module imports no torch: pages use it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lib.core.errors import CliParser, InputError, check_not_input, check_writable, run_cli
from lib.runs.store import Store
from lib.tables.head_table import to_csv_bytes
from lib.tables.labels import UNCLASSIFIED
from lib.tables.result_files import replace_together

HEAD = ["model", "layer", "head"]
COLUMNS = (*HEAD, "final_label", "first_step", "n_changes", "threshold_step", "n_steps")
DEFINITIONS = {
    "final_label": "The head's label at the last swept step.",
    "first_step": "Earliest swept step from which the head holds its final label at every "
    "later swept step.",
    "n_changes": "How often the head's label changes from one swept step to the next.",
    "threshold_step": "First swept step at which the head's best score reaches its threshold "
    f"(a label other than {UNCLASSIFIED}); empty if never.",
    "n_steps": "Swept steps of this model.",
}
"""Each column's definition, as pages show it (docs/methods.md §9)."""


def trajectories(rows: pd.DataFrame) -> pd.DataFrame:
    """The emergence table (module docstring) of store rows (`model`, `step`, `layer`, `head`,
    `label`), sorted by model, layer, head."""
    if rows.empty:
        raise InputError("no stored heads to follow over training")
    rows = rows.drop_duplicates([*HEAD, "step"]).sort_values([*HEAD, "step"], ignore_index=True)
    heads = rows.groupby(HEAD, sort=False)
    final = heads["label"].transform("last")
    changed = rows["label"].ne(heads["label"].shift()) & heads.cumcount().gt(0)
    # Off its final label at this step or any later one: a suffix "any", as a reversed cummax.
    off = rows["label"].ne(final).astype(int)
    off_from_here = off[::-1].groupby([rows[c][::-1] for c in HEAD], sort=False).cummax()[::-1]
    holding = rows["step"].where(off_from_here.eq(0))
    classified = rows["step"].where(rows["label"].ne(UNCLASSIFIED))
    table = pd.DataFrame(
        {
            "final_label": final,
            "first_step": holding,
            "n_changes": changed.astype(int),
            "threshold_step": classified,
            "n_steps": 1,
        }
    ).join(rows[HEAD])
    summary = table.groupby(HEAD, sort=True).agg(
        final_label=("final_label", "last"),
        first_step=("first_step", "min"),
        n_changes=("n_changes", "sum"),
        threshold_step=("threshold_step", "min"),
        n_steps=("n_steps", "sum"),
    )
    summary = summary.reset_index()
    for column in ("first_step", "threshold_step"):
        summary[column] = summary[column].astype("Int64")
    return summary[list(COLUMNS)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(
        prog="python -m lib.trajectory",
        description="Write the emergence table (final label, first step holding it, label "
        "changes, first step at threshold) of every head in a sweep's results store.",
    )
    parser.add_argument("store", help="results store of python -m lib.sweep (folder or URL)")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    check_writable(args.out)
    check_not_input([args.out], [args.store])
    table = trajectories(Store(args.store).read())
    try:
        replace_together([(args.out, to_csv_bytes(table))])
    except OSError as error:
        raise InputError(f"cannot write {args.out}: {error.strerror}") from None
    print(f"wrote {args.out}: {len(table)} heads", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
