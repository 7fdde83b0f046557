"""Which heads of a classification a layer chart counts, and the score it bins them on.

Three populations of the engine's per-head table (`lib.classify`), defined in
docs/methods.md §5:

* `operation` (the default), *operation heads*: heads with at least one operation finding,
  a relation's operation or suppression score at or above the operation threshold; each is
  binned on its best such score (`OPERATION_SCORE`; `OPERATION_LABEL` names it, ties in
  `lib.classify.LABEL_ORDER`). This is the population of the published figure, which maps
  heads to operations only: a head that also shows an attention pattern stays in it, binned
  on its operation score, and a head with only a pattern is left out.
* `classified`, *all classified heads*: every head whose `label` is not `unclassified`,
  binned on `score` (the score of its label, pattern findings included).
* `all`, *all heads*: every head, binned on `score` (0 for an unclassified head).

    python -m lib.chart heads.csv --population operation --out chart.svg
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.labels import UNCLASSIFIED, Thresholds, label_heads
from lib.tables.result_files import settings_path

OPERATION_LABEL = "operation"
OPERATION_SCORE = "operation_score"
OPERATION_PREFIXES = ("score_", "suppression_")
"""Column prefixes of the operation findings (`lib.classify.findings`)."""


@dataclass(frozen=True)
class Population:
    """One population: its `name` (a CLI choice), `title` and the column it is binned on."""

    name: str
    title: str
    score_column: str


POPULATIONS: dict[str, Population] = {
    population.name: population
    for population in (
        Population("operation", "Operation heads", OPERATION_SCORE),
        Population("classified", "All classified heads", "score"),
        Population("all", "All heads", "score"),
    )
}
DEFAULT_POPULATION = "operation"


def population(name: str) -> Population:
    """The population called `name`; `InputError` for any other name."""
    if name not in POPULATIONS:
        raise InputError(f"unknown population {name!r}; choose one of {', '.join(POPULATIONS)}")
    return POPULATIONS[name]


def describe(name: str, thresholds: Thresholds) -> str:
    """What the population `name` contains, in one line, with the operation threshold."""
    operation = f"{100 * thresholds.operation:g}%"
    return {
        "operation": f"Heads with a relation or suppression score ≥ {operation}, binned on "
        "their best such score; pattern-only heads left out (the published figure's "
        "population).",
        "classified": "Heads labelled by any finding at its threshold (relations, "
        "suppressions, attention patterns), binned on the score of their label.",
        "all": f"Every head, binned on the score of its label ({UNCLASSIFIED} heads at 0%).",
    }[population(name).name]


def operation_findings(table: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """`table` with `OPERATION_LABEL` and `OPERATION_SCORE`: `lib.classify.label_heads` over
    the operation columns alone (`unclassified` and 0 for a head with none passing)."""
    columns = [column for column in table.columns if column.startswith(OPERATION_PREFIXES)]
    if not columns:
        raise InputError(
            "the table has no operation score columns (score_<relation>, "
            "suppression_<relation>): operation heads come from a lib.classify table"
        )
    best = label_heads(table[columns], thresholds)
    return table.assign(**{OPERATION_LABEL: best["label"], OPERATION_SCORE: best["score"]})


def select(table: pd.DataFrame, name: str, thresholds: Thresholds) -> pd.DataFrame:
    """The rows of `table` (a labelled per-head table of `lib.classify`) in the population
    `name`, keeping their index; the operation population gains its two columns."""
    chosen = population(name)
    missing = [column for column in ("label", "score") if column not in table.columns]
    if missing:
        raise InputError(
            f"the table has no {' or '.join(missing)} column: populations are defined on a "
            "lib.classify table"
        )
    if chosen.name == "operation":
        found = operation_findings(table, thresholds)
        return found[found[OPERATION_LABEL] != UNCLASSIFIED]
    if chosen.name == "classified":
        return table[table["label"] != UNCLASSIFIED]
    return table


def population_counts(
    runs: Sequence[tuple[str, pd.DataFrame]], name: str, thresholds: Thresholds
) -> binning.Counts:
    """The layer-chart counts of the population `name` of each run (a panel name and its
    labelled per-head table), on shared bins and categories: `binning.DEFAULT_LAYER_BIN_COUNT`
    equal bins over the deepest run's layers (all its layers, also those without a head of the
    population), and the default score edges on the population's score column. A run with no
    head in the population has no panel; `InputError` when no run has one."""
    chosen = population(name)
    frames = []
    for panel, table in runs:
        rows = select(table, name, thresholds)
        columns = {ht.MODEL: panel, ht.LAYER: rows[ht.LAYER], ht.HEAD: rows[ht.HEAD]}
        frames.append(pd.DataFrame(columns | {chosen.score_column: rows[chosen.score_column]}))
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise InputError(f"no head is in the population {chosen.title.lower()}: nothing to chart")
    # The row limit is one table's: each run is within it, together they may exceed it.
    limits = ht.ReadLimits(max_rows=len(runs) * ht.MAX_ROWS)
    heads = ht.table_from_frame(frame, chosen.title, limits)
    n_layers = max(int(table[ht.LAYER].max()) + 1 for _, table in runs)
    width = math.ceil(n_layers / binning.DEFAULT_LAYER_BIN_COUNT)
    layers = binning.LayerBinning(edges=binning.bins_of_width(width, n_layers).edges)
    categories = binning.build_categories(heads, score_column=chosen.score_column)
    return binning.count_heads(heads, categories, layers)


def sidecar_thresholds(csv_path: Path) -> tuple[Thresholds, str]:
    """The thresholds a table at `csv_path` was labelled with, from its settings sidecar
    (`lib.tables.result_files.settings_path`), else the defaults; and a note saying which."""
    sidecar = settings_path(Path(csv_path))
    try:
        recorded = json.loads(sidecar.read_text())["thresholds"]
    except (OSError, ValueError, KeyError, TypeError):
        return Thresholds(), f"no thresholds in {sidecar.name}: the default thresholds are used"
    try:
        return Thresholds(**recorded), f"thresholds from {sidecar.name}"
    except TypeError:
        raise InputError(f"{sidecar}: its thresholds are not those of lib.classify") from None


def head_table_population(
    table: ht.HeadTable | ht.BinnedTable, name: str, csv_path: Path
) -> tuple[ht.HeadTable, str, str]:
    """`python -m lib.chart --population`: the population `name` of the per-head table read
    from `csv_path` (thresholds from its sidecar, `sidecar_thresholds`), the column it is
    binned on, and a note saying how many heads it holds and whose thresholds defined it."""
    if isinstance(table, ht.BinnedTable):
        raise InputError(f"{table.source} is pre-binned: a population needs a per-head table")
    thresholds, whence = sidecar_thresholds(csv_path)
    try:
        rows = select(table.frame, name, thresholds)
    except InputError as error:
        raise InputError(f"{table.source}: {error}") from None
    if rows.empty:
        raise InputError(f"{table.source}: no head is in the population {name!r} ({whence})")
    chosen = population(name)
    note = f"{chosen.title}: {len(rows)} of {len(table.frame)} heads ({whence})"
    depths = ht.model_depths(table.frame)  # the model's bins, not its population's
    return ht.HeadTable(rows, table.source, depths=depths), chosen.score_column, note
