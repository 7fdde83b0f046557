"""The causal check's tables (MAPS experiment 2, docs/methods.md §10): the curves' columns, the
summary computed from them, and the definitions shown wherever their numbers are.

A curve is the accuracy on a relation's prompts after removing k heads, k = 0, 1, ... (the
heads added one at a time). `curves.csv` holds one row per (relation, curve, draw, k);
`layer` and `head` name the head removed at step k (empty at k = 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

RELATION_CURVE = "relation_heads"
RANDOM_CURVE = "random_heads"
CONTROL_PREFIX = "control:"
CURVE_COLUMNS = ("relation", "curve", "draw", "k", "accuracy", "layer", "head")

ACCURACY_DEFINITION = (
    "accuracy: the fraction of a relation's prompts (its template with each single-token "
    "pair's source word in the slot) whose top-1 next token is the pair's target"
)
CURVE_DEFINITIONS: dict[str, str] = {
    RELATION_CURVE: "the relation's heads removed, ranked by static score (nonzero only), "
    "added one at a time",
    RANDOM_CURVE: "as many heads drawn at random from the heads outside that list, one draw "
    "per line (the band spans the draws)",
    CONTROL_PREFIX: "the relation's heads removed on another relation's prompts (a control "
    "task: top heads overlapping by < 15 %, base accuracy within 0.2)",
}
ABLATION_DEFINITION = (
    "removing a head: its output (attention result before the output projection) is zeroed "
    "at the prompt's last position only"
)
SUMMARY_DEFINITIONS: dict[str, str] = {
    "n_prompts": "prompts of the relation (its single-token pairs)",
    "n_heads_removed": "heads removed: the first k where the relation curve reaches 0, else "
    "its last k",
    "base_accuracy": "accuracy with no head removed",
    "ablated_accuracy": "accuracy with the relation's heads removed (at n_heads_removed)",
    "ablated_drop": "relative drop: (base - ablated) / base",
    "random_mean": "mean accuracy over the random draws at n_heads_removed",
    "random_sd": "their standard deviation (population, as the published table)",
    "random_drop": "relative drop: (base - random_mean) / base",
    "n_controls": "control tasks found",
    "controls": "their relations",
    "control_base_mean": "mean base accuracy of the control tasks",
    "control_ablated_mean": "their mean accuracy with the relation's heads removed",
    "control_drop": "relative drop: (control base - control ablated) / control base",
}
SUMMARY_COLUMNS = ("relation", *SUMMARY_DEFINITIONS)


def drop(before: float, after: float) -> float:
    """The relative drop `(before - after) / before`; NaN when `before` is 0."""
    return (before - after) / before if before > 0 else float("nan")


def at_k(curve: pd.DataFrame, k: int) -> np.ndarray:
    """The accuracies of `curve`'s rows (one per draw) at step `k`, or at their last step when
    they stop earlier (a random draw with fewer heads to draw from)."""
    return np.array(
        [part[part["k"] <= k]["accuracy"].iloc[-1] for _, part in curve.groupby("draw")]
    )


def summarize(curves: pd.DataFrame, n_prompts: Mapping[str, int]) -> pd.DataFrame:
    """One row per relation of `curves` (`CURVE_COLUMNS`): `SUMMARY_COLUMNS`, as the published
    table (definitions in `SUMMARY_DEFINITIONS`); `n_prompts` per relation."""
    rows = []
    for relation, part in curves.groupby("relation", sort=False):
        own = part[part["curve"] == RELATION_CURVE].sort_values("k")
        reached_zero = own[own["accuracy"] == 0]["k"]
        removed = int(reached_zero.iloc[0] if len(reached_zero) else own["k"].max())
        base = float(own["accuracy"].iloc[0])
        ablated = float(own[own["k"] == removed]["accuracy"].iloc[0])
        random = at_k(part[part["curve"] == RANDOM_CURVE], removed)
        random_mean = float(random.mean()) if len(random) else float("nan")
        control = part[part["curve"].str.startswith(CONTROL_PREFIX)]
        names = list(dict.fromkeys(control["curve"].str.removeprefix(CONTROL_PREFIX)))
        starts = control[control["k"] == 0].groupby("curve")["accuracy"].first()
        ends = [at_k(c, removed)[0] for _, c in control.groupby("curve")]
        control_base = float(starts.mean()) if names else float("nan")
        control_after = float(np.mean(ends)) if names else float("nan")
        rows.append(
            {
                "relation": relation,
                "n_prompts": n_prompts[relation],
                "n_heads_removed": removed,
                "base_accuracy": base,
                "ablated_accuracy": ablated,
                "ablated_drop": drop(base, ablated),
                "random_mean": random_mean,
                "random_sd": float(random.std()) if len(random) else float("nan"),
                "random_drop": drop(base, random_mean),
                "n_controls": len(names),
                "controls": ",".join(names),
                "control_base_mean": control_base,
                "control_ablated_mean": control_after,
                "control_drop": drop(control_base, control_after) if names else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


HEAD_EFFECT_DEFINITIONS: dict[str, str] = {
    "n_prompts": "prompts of the relation (its single-token pairs, on its template)",
    "base_accuracy": "accuracy with no head removed",
    "accuracy_without_head": "accuracy with this head alone removed",
    "change": "accuracy without the head minus base accuracy (negative: the model needs it)",
}
HEAD_EFFECT_COLUMNS = ("relation", *HEAD_EFFECT_DEFINITIONS)
