"""Two classification runs side by side: e.g. two checkpoints, two sizes, deduped or not.

Both runs are labelled anew with the same thresholds (`lib.classify.label_heads`). Their layer
charts share layer bins and score categories (`lib.tables.population.population_counts`), so a
colour means the same range in both panels. Heads are matched by (layer, head); when the two models
have different shapes only the heads both have are matched, and `Comparison.shapes` says so.
The command line is `python -m lib.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.labels import Thresholds, findings, label_heads
from lib.tables.population import (
    DEFAULT_POPULATION,
    POPULATIONS,
    population_counts,
    select,
    sidecar_thresholds,
)
from lib.tables.summary import run_name

KEY = ["layer", "head"]
SIDES = ("A", "B")


@dataclass(frozen=True)
class Comparison:
    """The runs' `names` (`A: model @ revision`, `B: ...`), their shared-bin `counts` (one
    panel each), the heads whose label differs (`differences`: `layer`, `head`, then label
    and score of A and of B), how many heads were matched, and `shapes`: None when both models
    have the same layers x heads, else a sentence saying they differ. `counts` is None when
    neither run has a head in the charted population, and `chart_note` then says so: the
    differences are compared all the same."""

    names: tuple[str, str]
    counts: binning.Counts | None
    differences: pd.DataFrame
    n_matched: int
    shapes: str | None
    chart_note: str | None = None


def shape(table: pd.DataFrame) -> tuple[int, int]:
    """(layers, heads per layer) of a per-head table."""
    return int(table["layer"].max()) + 1, int(table["head"].max()) + 1


def panel_names(a: pd.DataFrame, b: pd.DataFrame) -> tuple[str, str]:
    """`A: model @ revision` and `B: ...`: distinct even when both runs name the same model."""
    return f"A: {run_name(a)}", f"B: {run_name(b)}"


def compare(
    a: pd.DataFrame, b: pd.DataFrame, thresholds: Thresholds, population: str = DEFAULT_POPULATION
) -> Comparison:
    """Compare two per-head tables of `lib.classify` (module docstring), both labelled with
    `thresholds`; `population` is charted."""
    a, b = (label_heads(t.drop(columns=["label", "score"]), thresholds) for t in (a, b))
    names = panel_names(a, b)
    counts, chart_note = None, None
    if all(select(table, population, thresholds).empty for table in (a, b)):
        chart_note = (
            f"Neither run has a head in the population {POPULATIONS[population].title.lower()}: "
            "nothing to chart; the heads whose label differs are still compared."
        )
    else:
        runs = list(zip(names, (a, b), strict=True))
        counts = population_counts(runs, population, thresholds)
    matched = a[[*KEY, "label", "score"]].merge(
        b[[*KEY, "label", "score"]], on=KEY, suffixes=tuple(f" {side}" for side in SIDES)
    )
    differences = matched[matched["label A"] != matched["label B"]].sort_values(KEY)
    shapes = None
    if shape(a) != shape(b):
        (la, ha), (lb, hb) = shape(a), shape(b)
        shapes = (
            f"The models differ in shape: A has {la} layers × {ha} heads, B {lb} × {hb}. "
            f"Heads are matched by (layer, head): only the {len(matched)} heads both have are "
            "compared, and the layer bins span the deeper model."
        )
    differences = differences.reset_index(drop=True)
    return Comparison(names, counts, differences, len(matched), shapes, chart_note)


def read_run(path: Path) -> tuple[pd.DataFrame, Thresholds]:
    """A `lib.classify` table and the thresholds of its sidecar (the defaults without one);
    `InputError` unless it has `label`, `score` and the score columns its runs are labelled
    from (another tool's table with a `label` column is not one)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    table = ht.read_table(data, path.name)
    columns = [] if isinstance(table, ht.BinnedTable) else list(table.frame.columns)
    if not {"label", "score"} <= set(columns) or not findings(columns, Thresholds()):
        raise InputError(
            f"{path.name} is not a lib.classify per-head table: comparing needs its label, "
            "score and score columns (score_*, suppression_*, pattern scores)"
        )
    return table.frame, sidecar_thresholds(path)[0]
