"""One line per column of the engine's per-head table, saying what its number is and when it
labels a head: the help texts a page shows next to every score.

Formulas are not restated here: an operation score's line names its k and pair count and
points to `lib.scoring.operations`; a pattern's line is its definition
(`lib.tables.labels.PATTERN_DEFINITIONS`); thresholds come from the `Thresholds` in use
(`lib.tables.labels.findings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.tables.labels import LABEL_ORDER, PATTERN_DEFINITIONS, UNCLASSIFIED, Thresholds, findings


def pattern_definition(name: str) -> str:
    """The definition of pattern score `name` (`lib.tables.labels.PATTERN_DEFINITIONS`)."""
    return PATTERN_DEFINITIONS[name]


def column_help(
    columns: Sequence[str], settings: dict[str, Any], thresholds: Thresholds
) -> dict[str, str]:
    """Help text of every finding column in `columns`, and of `label` and `score`, for a table
    made with sidecar `settings` and labelled with `thresholds`."""
    relations = {r["name"]: r for r in settings["relations"]}
    helps: dict[str, str] = {}
    for column, label, threshold in findings(columns, thresholds):
        passing = f"Labels the head at ≥ {100 * threshold:g}%."
        kind, _, name = column.partition("_")
        if kind in ("score", "suppression") and name in relations:
            relation = relations[name]
            end = "top" if kind == "score" else "bottom"
            helps[column] = (
                f"{'Operation' if kind == 'score' else 'Suppression'} score of {name}: share of "
                f"its {relation['n_pairs']} single-token pairs whose target is among the "
                f"{end} {relation['k']} tokens of the head's OV map of the source "
                f"(lib.scoring.operations). {passing}"
            )
        else:
            helps[column] = (
                f"{label}: {pattern_definition(column)}, with A the head's attention on n random "
                f"tokens repeated once (lib.scoring.patterns). {passing}"
            )
    helps["label"] = f"The head's finding with the highest passing score, else {UNCLASSIFIED}; "
    helps["label"] += LABEL_ORDER + "."
    helps["score"] = f"The score of the head's label (0 for {UNCLASSIFIED})."
    return helps
