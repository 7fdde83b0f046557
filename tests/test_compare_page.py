"""The Compare runs page, driven headless through `streamlit.testing.v1.AppTest`: two stored
results of the planted model, one with its previous-token head switched off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.runs.result_cache import CACHE_DIR_KEY, ResultCache, ResultKey
from lib.scoring.pipeline import Classification
from lib.tables.labels import PATTERNS
from tests.conftest import Planted
from tests.test_compare import without_previous_token

REPO = Path(__file__).resolve().parent.parent
PAGE = "pages/3_Compare_runs.py"


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ResultCache]:
    monkeypatch.setenv(CACHE_DIR_KEY, str(tmp_path))
    yield ResultCache(tmp_path)
    st.cache_resource.clear()


def open_page() -> AppTest:
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    app.switch_page(PAGE).run()
    assert not app.exception
    return app


def store(cache: ResultCache, result: Classification, revision: str) -> None:
    table = result.table.assign(revision=revision)
    stored = replace(result, table=table, settings={**result.settings, "revision": revision})
    key = ResultKey("planted", revision, "float32", ("all",), None)
    cache.get_or_compute(key, lambda: stored)


def test_with_fewer_than_two_results_it_says_what_to_do(cache: ResultCache) -> None:
    app = open_page()
    (info,) = app.info
    assert "needs two results this server has computed or cached; it has 0" in info.value


def test_two_runs_side_by_side_with_the_heads_whose_label_differs(
    cache: ResultCache, planted_classification: Classification, planted_checkpoint: Planted
) -> None:
    where = planted_checkpoint.where("previous_token")
    store(cache, planted_classification, "step1000")
    changed = without_previous_token(planted_classification.table, where)
    store(cache, replace(planted_classification, table=changed), "step2000")
    app = open_page()
    assert not app.error and not app.warning  # same shapes: nothing to warn about
    runs = [box for box in app.selectbox if box.label.startswith("Run ")]
    assert [box.label for box in runs] == ["Run A", "Run B"]
    assert runs[0].value != runs[1].value  # the two newest, one each
    (differences,) = [frame.value for frame in app.dataframe]
    assert differences[["layer", "head"]].to_numpy().tolist() == [list(where)]
    labels = set(differences[["label A", "label B"]].iloc[0])
    assert labels == {"previous_token", "unclassified"}
    assert any("1 of 12 heads matched" in caption.value for caption in app.caption)
    # One set of thresholds with Classify heads: set here, found there.
    (operation,) = [n for n in app.sidebar.number_input if n.label == "operation (%)"]
    operation.set_value(25.0).run()
    app.switch_page("pages/2_Classify_heads.py").run()
    (operation,) = [n for n in app.sidebar.number_input if n.label == "operation (%)"]
    assert operation.value == 25.0


def test_a_run_with_no_head_charted_keeps_its_titled_panel_on_one_y_scale(
    cache: ResultCache, planted_classification: Classification
) -> None:
    table = planted_classification.table
    scores = [c for c in table.columns if c.startswith(("score_", "suppression_"))]
    silent = table.assign(**{c: 0.0 for c in [*scores, *PATTERNS]})
    store(cache, planted_classification, "step1000")
    store(cache, replace(planted_classification, table=silent), "step2000")
    app = open_page()
    assert not app.error
    (chart,) = app.get("vega_lite_chart")
    panels = json.loads(chart.proto.spec)["concat"]
    titles = [panel["title"] for panel in panels]
    assert [title[:3] for title in titles] == ["A: ", "B: "]
    assert {"step1000", "step2000"} == {title.rsplit("@ ", 1)[-1] for title in titles}
    domains = [panel["layer"][0]["encoding"]["y"]["scale"]["domain"] for panel in panels]
    assert domains[0] == domains[1]
