"""The Training dynamics charts on store rows made by hand: heads by role over training, the
step axis, and each head's emergence line, with answers known by construction."""

from __future__ import annotations

import json

import pandas as pd

from lib.charts import export
from lib.charts import training as tc
from lib.tables.trajectory import trajectories

STEPS = (0, 1, 2, 4, 512, 1000, 10_000, 143_000)


def store_rows() -> pd.DataFrame:
    """Four heads of model m: L0H0 induction from step 1000 on, L0H1 copying from step 4 on,
    L1H0 copying from 10k on, L1H1 never labelled."""
    plan = {(0, 0): ("induction", 1000), (0, 1): ("copying", 4), (1, 0): ("copying", 10_000)}
    rows = []
    for step in STEPS:
        for layer, head in [(0, 0), (0, 1), (1, 0), (1, 1)]:
            label, start = plan.get((layer, head), ("unclassified", 10**9))
            on = step >= start
            rows.append(
                {
                    "model": "m",
                    "step": step,
                    "layer": layer,
                    "head": head,
                    "label": label if on else "unclassified",
                    "score": 0.8 if on else 0.0,
                    "score_copying": 0.8 if on and label == "copying" else 0.05,
                    "induction": 0.8 if on and label == "induction" else 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_step_ticks_are_readable_on_a_log_axis() -> None:
    assert tc.step_ticks(143_000) == [0, 1, 10, 100, 1000, 10_000, 143_000]
    assert tc.step_ticks(8) == [0, 1, 8]
    assert tc.step_ticks(1) == [0, 1]


def test_role_counts_count_each_label_at_each_step() -> None:
    counts = tc.role_counts(store_rows())
    copying = counts[counts["label"] == "copying"].set_index("step")["n_heads"]
    induction = counts[counts["label"] == "induction"].set_index("step")["n_heads"]
    assert copying.to_dict() == {0: 0, 1: 0, 2: 0, 4: 1, 512: 1, 1000: 1, 10_000: 2, 143_000: 2}
    assert induction.to_dict() == {s: int(s >= 1000) for s in STEPS}
    assert "unclassified" not in set(counts["label"])
    assert tc.role_order(["induction", "suppression: x", "b", "a"]) == [
        "a", "b", "suppression: x", "induction",
    ]  # fmt: skip


def test_roles_chart_wraps_shares_y_and_has_whole_heads() -> None:
    spec = tc.roles_over_steps(tc.role_counts(store_rows())).to_dict()
    assert spec["columns"] == tc.ROLE_COLUMNS
    assert spec["resolve"]["scale"]["y"] == "shared"
    encoding = spec["spec"]["encoding"]
    assert encoding["y"]["axis"] == {"format": "d", "values": [0, 1, 2]}
    assert [tc.count_ticks(n) for n in (0, 2, 5, 7, 12)] == [
        [0, 1], [0, 1, 2], [0, 1, 2, 3, 4, 5], [0, 2, 4, 6, 8], [0, 5, 10, 15],
    ]  # fmt: skip
    assert tc.count_ticks(143)[-1] == 150
    x = encoding["x"]
    assert x["scale"] == {"domain": [0, 143_000], "nice": False, "type": "symlog"}
    assert x["axis"]["values"] == [0, 1, 10, 100, 1000, 10_000, 143_000]
    svg = export.to_svg(tc.roles_over_steps(tc.role_counts(store_rows()))).decode()
    for tick in ("0", "1", "10", "100", "1k", "10k", "143k"):
        assert f">{tick}</text>" in svg
    assert ">0.5</text>" not in svg
    assert ">copying</text>" in svg and ">induction</text>" in svg


def test_emergence_lines_follow_the_final_label_and_mark_first_step() -> None:
    rows = store_rows()
    table = trajectories(rows)
    labelled = table[table["final_label"] != "unclassified"]
    lines = tc.emergence_lines(rows, labelled)
    assert set(lines["head"]) == {"L0 H0: induction", "L0 H1: copying", "L1 H0: copying"}
    emerged = lines[lines["emerged"]].set_index("head")["step"].to_dict()
    assert emerged == {"L0 H0: induction": 1000, "L0 H1: copying": 4, "L1 H0: copying": 10_000}
    induction = lines[lines["head"] == "L0 H0: induction"].set_index("step")["value"]
    assert induction[512] == 0.1 and induction[1000] == 0.8
    spec = json.loads(export.to_json(tc.emergence_chart(lines)))
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rule", "line", "point"]
