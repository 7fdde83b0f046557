"""The labelling rule: which finding names a head, from its scores and the thresholds.

Shared by the engine (`lib.scoring.pipeline`) and every reader of stored tables (compare,
populations, summaries, trajectories, the pages), so it imports no torch (docs/methods.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lib.core.errors import InputError

UNCLASSIFIED = "unclassified"
"""The label of a head with no finding at or above its threshold."""
SUPPRESSION_LABEL = "suppression: "
"""Prefix of a suppression finding's label, e.g. `suppression: name_copying`."""
PATTERN_DEFINITIONS = {
    "previous_token": "mean over rows i >= 1 of `A[i, i - 1]`",
    "duplicate_token": "mean over rows i >= n of `A[i, i - n]` (the earlier copy of token i)",
    "induction": "mean over rows i >= n of `A[i, i - n + 1]` (the token after the earlier copy)",
    "first_token": "mean over rows i >= 1 of `A[i, 0]` (attention-sink behaviour)",
}
"""Each attention-pattern score, with `A` a head's attention on `n` random tokens repeated once
(how it is computed: `lib.scoring.patterns`, whose docstring lists these same lines)."""
PATTERNS = tuple(PATTERN_DEFINITIONS)
"""The attention-pattern scores, in tie-break order."""

LABEL_ORDER = (
    "the highest passing score wins; ties go to the first in this order: relation scores "
    "(relations in name order), then suppression scores (same order), then patterns "
    f"({', '.join(PATTERNS)})"
)


@dataclass(frozen=True)
class Thresholds:
    """A finding labels a head when its score is at least its threshold (fractions).

    `operation` (score or suppression score of any relation): 0.15, the threshold reported
    for the MAPS paper. `previous_token`, `duplicate_token`, `induction`: 0.4, the value in
    common use for these detectors. `first_token`: 0.9, because attending to position 0 is
    the default "sink" of many heads with nothing to do, so only heads that put nearly all
    their attention there are labelled by it.
    """

    operation: float = 0.15
    previous_token: float = 0.4
    duplicate_token: float = 0.4
    induction: float = 0.4
    first_token: float = 0.9

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= 1:
                raise InputError(f"threshold {name}={value} is not a fraction in [0, 1]")


def findings(columns: Sequence[str], thresholds: Thresholds) -> list[tuple[str, str, float]]:
    """`(column, label, threshold)` of every finding in `columns`, in the tie-break order."""
    scores = [c for c in columns if c.startswith("score_")]
    suppressions = [c for c in columns if c.startswith("suppression_")]
    return [
        *((c, c.removeprefix("score_"), thresholds.operation) for c in scores),
        *(
            (c, SUPPRESSION_LABEL + c.removeprefix("suppression_"), thresholds.operation)
            for c in suppressions
        ),
        *((p, p, getattr(thresholds, p)) for p in PATTERNS if p in columns),
    ]


def label_heads(table: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """`table` with `label` and `score`: the head's highest-scoring finding among those at or
    above their threshold (ties: `LABEL_ORDER`), else `unclassified` with score 0."""
    candidates = findings(list(table.columns), thresholds)
    if not candidates:
        return table.assign(label=UNCLASSIFIED, score=0.0)
    values = table[[column for column, _, _ in candidates]].to_numpy(dtype=float)
    passing = values >= np.array([threshold for _, _, threshold in candidates])
    masked = np.where(passing, values, -np.inf)
    best = masked.argmax(axis=1)  # first maximum = tie-break order
    classified = passing.any(axis=1)
    names = np.array([label for _, label, _ in candidates], dtype=object)
    return table.assign(
        label=np.where(classified, names[best], UNCLASSIFIED),
        score=np.where(classified, masked[np.arange(len(table)), best], 0.0),
    )
