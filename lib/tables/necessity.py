"""When a relation's heads become necessary over training: the causal check's summary at each
swept step (`lib.runs.stored_ablation`, `python -m lib.sweep --ablate`), and the first step at
which removing the heads costs the relation clearly more than removing random heads
(docs/methods.md §10).

At each step, with `k` = the summary's `n_heads_removed` (the relation's heads removed until
its accuracy reaches 0, else all of them):

- `drop_beyond_random` = `random_mean` - `ablated_accuracy`: the accuracy lost to removing the
  relation's k heads beyond what removing k random heads loses (mean of the draws; with no
  draw, the base accuracy stands for it). An absolute difference of fractions: at a step
  where the model does not do the task yet (base accuracy near 0) it is near 0, whereas a
  relative drop would jump to 100 % for one prompt lost.
- `necessary_step`: the first swept step at which `drop_beyond_random` is at least
  `NECESSITY_THRESHOLD`; empty (never) when no step reaches it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.tables.ablation import RANDOM_CURVE, SUMMARY_DEFINITIONS, at_k

NECESSITY_THRESHOLD = 0.5
"""`drop_beyond_random` at which a relation's heads count as necessary: half its prompts."""
KEY = ["model", "relation"]
STEP_DEFINITIONS: dict[str, str] = {
    "n_heads_removed": SUMMARY_DEFINITIONS["n_heads_removed"],
    "base_accuracy": "intact: " + SUMMARY_DEFINITIONS["base_accuracy"],
    "ablated_accuracy": SUMMARY_DEFINITIONS["ablated_accuracy"],
    "random_mean": SUMMARY_DEFINITIONS["random_mean"] + " (base accuracy when no draw)",
    "random_low": "the lowest accuracy among the random draws at n_heads_removed",
    "random_high": "the highest accuracy among the random draws at n_heads_removed",
    "drop_beyond_random": "random_mean - ablated_accuracy: the accuracy lost to the "
    "relation's heads beyond what as many random heads lose",
}
STEP_COLUMNS = ("model", "relation", "step", *STEP_DEFINITIONS)


def necessity_definition(threshold: float = NECESSITY_THRESHOLD) -> str:
    """What `necessary_step` means at `threshold` (a fraction), as pages state it."""
    return (
        "necessary from: the first swept step at which removing the relation's heads costs at "
        f"least {100 * threshold:g} points of accuracy more than removing as many random heads "
        "(drop_beyond_random = random_mean - ablated_accuracy, at n_heads_removed)"
    )


def necessary_definitions(threshold: float = NECESSITY_THRESHOLD) -> dict[str, str]:
    """Each column of `necessary_steps` and its definition at `threshold`."""
    return {
        "necessary_step": necessity_definition(threshold) + "; empty if never",
        "base_accuracy_then": "intact accuracy at necessary_step",
        "drop_then": "drop_beyond_random at necessary_step",
        "last_drop": "drop_beyond_random at the last swept step",
        "n_steps": "swept steps with the causal check",
    }


def over_training(curves: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """`STEP_COLUMNS`: per (model, relation, step) of a store's `summary`, the accuracies
    intact, with the relation's heads removed and with random heads removed (mean, lowest,
    highest of the draws, from `curves`), all at `n_heads_removed`, and `drop_beyond_random`."""
    rows = []
    for row in summary.itertuples(index=False):
        mine = curves[
            (curves["model"] == row.model)
            & (curves["step"] == row.step)
            & (curves["relation"] == row.relation)
            & (curves["curve"] == RANDOM_CURVE)
        ]
        random = at_k(mine, row.n_heads_removed) if len(mine) else np.array([row.base_accuracy])
        mean = float(random.mean())
        accuracies = (row.base_accuracy, row.ablated_accuracy, mean, random.min(), random.max())
        job = (row.model, row.relation, int(row.step), int(row.n_heads_removed))
        rows.append((*job, *accuracies, mean - row.ablated_accuracy))
    table = pd.DataFrame(rows, columns=list(STEP_COLUMNS))
    return table.sort_values(["model", "relation", "step"], ignore_index=True)


def necessary_steps(steps: pd.DataFrame, threshold: float = NECESSITY_THRESHOLD) -> pd.DataFrame:
    """Per (model, relation) of `over_training`: `necessary_step` and the columns of
    `necessary_definitions`, by model and relation."""
    rows = []
    for (model, relation), part in steps.groupby(KEY, sort=True):
        part = part.sort_values("step")
        reached = part[part["drop_beyond_random"] >= threshold]
        first = reached.iloc[0] if len(reached) else None
        rows.append(
            {
                "model": model,
                "relation": relation,
                "necessary_step": None if first is None else int(first["step"]),
                "base_accuracy_then": np.nan if first is None else first["base_accuracy"],
                "drop_then": np.nan if first is None else first["drop_beyond_random"],
                "last_drop": part["drop_beyond_random"].iloc[-1],
                "n_steps": len(part),
            }
        )
    table = pd.DataFrame(rows, columns=[*KEY, *necessary_definitions()])
    return table.astype({"necessary_step": "Int64"})
