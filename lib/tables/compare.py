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
from lib.tables.labels import Thresholds, label_heads
from lib.tables.population import (
    DEFAULT_POPULATION,
    population_counts,
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
    have the same layers x heads, else a sentence saying they differ."""

    names: tuple[str, str]
    counts: binning.Counts
    differences: pd.DataFrame
    n_matched: int
    shapes: str | None


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
    counts = population_counts(list(zip(names, (a, b), strict=True)), population, thresholds)
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
    return Comparison(names, counts, differences.reset_index(drop=True), len(matched), shapes)


def read_run(path: Path) -> tuple[pd.DataFrame, Thresholds]:
    """A `lib.classify` table and the thresholds of its sidecar (the defaults without one)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    table = ht.read_table(data, path.name)
    if isinstance(table, ht.BinnedTable) or "label" not in table.frame:
        raise InputError(f"{path.name} is not a lib.classify per-head table")
    return table.frame, sidecar_thresholds(path)[0]
