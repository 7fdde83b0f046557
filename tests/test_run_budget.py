"""Public mode's time budget per run (`HEAD_ATLAS_PUBLIC_SECONDS`, `PublicMode.budgeted`), on a
fake clock (nothing sleeps): a run past the budget stops at its next progress report with one
line, a run within it is untouched, and the local app has no budget. On the Classify heads
page the previous result stays on screen."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import lib.app.public_mode
from lib.app.public_mode import (
    DEFAULT_RUN_SECONDS,
    ENABLED_KEY,
    MAX_SIZE_KEY,
    RUN_SECONDS_KEY,
    PublicMode,
    public_mode_from,
)
from lib.checkpoints.loader import open_checkpoint
from lib.core.errors import InputError
from lib.runs.result_cache import CACHE_DIR_KEY
from lib.scoring.pipeline import ClassifySettings, classify_heads
from tests.chart_helpers import plain
from tests.conftest import FEW_RELATIONS, Planted
from tests.test_hub import COMMIT

REPO = Path(__file__).resolve().parent.parent
STOPPED = (
    "this run stopped after 60 s, the time budget of a run in this public deployment; try a "
    "smaller model or fewer relations, or run the app on your own machine"
)


class FakeClock:
    """Seconds that pass only when the test says: `step` more at every reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_budget_is_read_from_the_settings_with_a_default() -> None:
    assert public_mode_from({ENABLED_KEY: "1"}).run_seconds == DEFAULT_RUN_SECONDS == 300
    assert public_mode_from({ENABLED_KEY: "1", RUN_SECONDS_KEY: "60"}).run_seconds == 60
    with pytest.raises(InputError, match=r"^HEAD_ATLAS_PUBLIC_SECONDS='soon' must be a whole"):
        public_mode_from({ENABLED_KEY: "1", RUN_SECONDS_KEY: "soon"})
    assert public_mode_from({RUN_SECONDS_KEY: "60"}).run_seconds is None  # not public


def test_a_report_past_the_budget_stops_the_run() -> None:
    clock, seen = FakeClock(), []
    report = PublicMode(enabled=True, run_seconds=60).budgeted(
        lambda f, m: seen.append((f, m)), clock
    )
    clock.now = 60.0  # exactly the budget: still within it
    report(0.5, "half")
    clock.now = 60.5
    with pytest.raises(InputError) as error:
        report(0.6, "more")
    assert str(error.value) == STOPPED
    assert seen == [(0.5, "half")]


def test_the_local_app_has_no_budget() -> None:
    clock, seen = FakeClock(), []
    report = PublicMode().budgeted(lambda f, m: seen.append(m), clock)
    clock.now = 1e9
    report(1.0, "done")
    assert seen == ["done"] and PublicMode().run_budget_note is None


def test_the_engine_stops_at_its_next_step(planted_checkpoint: Planted) -> None:
    """Cooperative: the pipeline's own reports (one a layer) carry the stop out of the run."""
    clock, seen = FakeClock(), []
    report = PublicMode(enabled=True, run_seconds=60).budgeted(lambda f, m: seen.append(m), clock)
    clock.step = 25.0  # every step "takes" 25 s: the third report is past 60 s
    opened = open_checkpoint(str(planted_checkpoint.path), device="cpu")
    with pytest.raises(InputError, match=r"^this run stopped after 60 s"):
        classify_heads(opened, ClassifySettings(relations=FEW_RELATIONS), report)
    assert len(seen) == 2


@pytest.fixture
def public_14m(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, planted_checkpoint: Planted
) -> Iterator[FakeClock]:
    """Public mode with a 60 s budget, `EleutherAI/pythia-14m` in the (offline) hub cache
    holding the planted checkpoint, a fresh result cache, and the budget's fake clock."""
    storage = tmp_path / "hub" / "models--EleutherAI--pythia-14m"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    shutil.copytree(planted_checkpoint.path, storage / "snapshots" / COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv(ENABLED_KEY, "yes")
    monkeypatch.setenv(MAX_SIZE_KEY, "160m")
    monkeypatch.setenv(RUN_SECONDS_KEY, "60")
    monkeypatch.setenv(CACHE_DIR_KEY, str(tmp_path / "cache"))
    clock = FakeClock()
    monkeypatch.setattr(lib.app.public_mode, "monotonic", clock)
    yield clock
    st.cache_resource.clear()  # no model or cache object outlives its test


def run(app: AppTest):
    (found,) = [button for button in app.button if button.label == "Run"]
    return found


def patterns(app: AppTest):
    (found,) = [toggle for toggle in app.toggle if toggle.label == "Attention-pattern scores"]
    return found


def test_the_page_says_the_budget_and_keeps_the_last_result(public_14m: FakeClock) -> None:
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120).run()
    app.switch_page("pages/2_Classify_heads.py").run()
    (size,) = [box for box in app.sidebar.selectbox if box.label == "Model size"]
    size.set_value("14m").run()
    assert "Public deployment: a run stops after 60 s" in " ".join(
        caption.value for caption in app.sidebar.caption
    )
    patterns(app).set_value(False).run()
    run(app).click().run()  # the clock stands still: within the budget
    assert not app.exception and not app.error
    tables = [frame.value for frame in app.dataframe]
    assert tables

    public_14m.step = 40.0  # every reading now 40 s later: past the budget at the second report
    patterns(app).set_value(True).run()  # another result: computed, not from the cache
    run(app).click().run()
    assert not app.exception
    assert [error.value for error in app.error] == [STOPPED]
    after = [frame.value for frame in app.dataframe]
    assert len(after) == len(tables)
    assert all(a.equals(b) for a, b in zip(after, tables, strict=True))


@pytest.mark.parametrize("label", ["Check in context", "Ablate"])
def test_the_in_context_check_and_the_ablation_stop_too(public_14m: FakeClock, label: str) -> None:
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120).run()
    app.switch_page("pages/2_Classify_heads.py").run()
    (size,) = [box for box in app.sidebar.selectbox if box.label == "Model size"]
    size.set_value("14m").run()
    patterns(app).set_value(False).run()
    run(app).click().run()
    assert "Public deployment: a run stops after 60 s" in " ".join(c.value for c in app.caption)
    tables = [frame.value for frame in app.dataframe]

    public_14m.step = 40.0
    (button,) = [b for b in app.button if b.label == label]
    button.click().run()
    assert not app.exception
    assert [plain(error.value) for error in app.error] == [STOPPED]  # in-context: literal text
    after = [frame.value for frame in app.dataframe]
    assert all(a.equals(b) for a, b in zip(after, tables, strict=True))
