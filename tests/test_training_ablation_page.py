"""The Training dynamics page's "Heads necessary" tab through AppTest: for a store swept with
`--ablate` (the task series, `tests/series_support.py`), the chart and the table say the task's
heads become necessary at the step they were planted; for a store without the causal check
(written before it existed), every other view still opens and the tab gives the command; the
sidebar's sweep can ask for the check."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import ClassVar

import pytest

from lib.fixtures.planted import TASK_RELATION
from lib.tables.necessity import NECESSITY_THRESHOLD
from tests.series_support import TASK_STEP, TASK_STEPS
from tests.test_training_page import open_page
from ui import training

TAB = "Heads necessary"


def test_a_store_with_the_causal_check_shows_when_the_heads_become_necessary(
    ablation_store: Path,
) -> None:
    page = open_page(str(ablation_store))
    assert not page.error
    assert TAB in [tab.label for tab in page.tabs]
    (table,) = [d.value for d in page.dataframe if "necessary_step" in d.value.columns]
    (row,) = table.to_dict("records")
    assert (row["relation"], row["necessary_step"]) == (TASK_RELATION, str(TASK_STEP))
    assert row["drop_then"] >= 80  # percent on screen
    assert row["n_steps"] == len(TASK_STEPS)
    charts = page.get("vega_lite_chart")
    (chart,) = [c for c in charts if '"necessary from step"' in c.proto.spec]
    spec = json.loads(chart.proto.spec)
    (panel,) = spec["concat"]
    assert panel["title"] == TASK_RELATION
    assert panel["layer"][1]["encoding"]["x"]["scale"]["type"] == "symlog"
    shown = " ".join(caption.value for caption in page.caption)
    assert f"at least {100 * NECESSITY_THRESHOLD:g} points" in shown
    assert "docs/methods.md §10" in shown
    # Another threshold: stated where the numbers are; the task head costs all its prompts.
    page.slider(key="training_necessity_threshold").set_value(100).run()
    (table,) = [d.value for d in page.dataframe if "necessary_step" in d.value.columns]
    assert table["necessary_step"].tolist() == [str(TASK_STEP)]
    assert "at least 100 points" in " ".join(caption.value for caption in page.caption)


def test_a_store_without_the_causal_check_opens_and_says_how_to_add_it(
    planted_store: Path, planted_series: Path
) -> None:
    page = open_page(str(planted_store))
    assert not page.error
    assert any("first_step" in d.value.columns for d in page.dataframe)  # the other views
    assert any("no causal check" in info.value for info in page.info)
    (code,) = [c.value for c in page.code]
    argv = shlex.split(code)
    assert argv[:3] == ["python", "-m", "lib.sweep"] and "--ablate" in argv
    assert argv[argv.index("--model") + 1] == str(planted_series)
    assert argv[argv.index("--out") + 1] == str(planted_store)
    revisions = argv[argv.index("--revisions") + 1].split(",")
    assert revisions == sorted(set(revisions), key=lambda r: int(r[4:]))
    assert not [c for c in page.get("vega_lite_chart") if "necessary from step" in c.proto.spec]


class FinishedProcess:
    """Stands in for the sweep's process: records its command, has already exited with 0."""

    commands: ClassVar[list[list[str]]] = []

    def __init__(self, command: list[str], **options: object) -> None:
        self.commands.append(command)

    def poll(self) -> int:
        return 0


def test_a_sweep_started_from_the_page_can_ask_for_the_causal_check(
    task_series: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training.subprocess, "Popen", FinishedProcess)
    page = open_page()
    fields = {box.label: box for box in page.sidebar.text_input}
    fields["Model"].set_value(str(task_series))
    fields["Store folder to write"].set_value(str(tmp_path / "store"))
    (ablate,) = [box for box in page.sidebar.checkbox if "--ablate" in box.label]
    ablate.check()
    (start,) = [button for button in page.sidebar.button if button.label == "Start"]
    start.click().run()
    assert not page.exception
    # The fake process wrote nothing: its store is empty, and the page says so.
    assert [error.value for error in page.error] == [
        f"{tmp_path / 'store'} holds no results yet: run python -m lib.sweep --out"
    ]
    (command,) = FinishedProcess.commands
    assert command[1:4] == ["-m", "lib.sweep", "--model"] and command[-1] == "--ablate"
