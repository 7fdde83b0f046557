"""The in-context parts of the Classify heads page (`ui/in_context.py`), through AppTest on the
planted checkpoint: "Check in context" in the head inspector and the Static vs dynamic view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.checkpoints.loader import LoadedModel
from lib.runs.result_cache import CACHE_DIR_KEY
from tests.chart_helpers import plain
from tests.conftest import Planted
from tests.test_classify_page import button, open_page
from tests.test_streamed import no_model_load  # noqa: F401 (the fixture)
from ui import in_context

COPYING = "general_copying_english_500"
RELATIONS = [COPYING, "country_to_capital_wikidata"]


@pytest.fixture
def in_context_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple]]:
    """A fresh cache folder; the (relations, templates) `in_context` was computed for."""
    monkeypatch.setenv(CACHE_DIR_KEY, str(tmp_path / "cache"))
    calls: list[tuple] = []
    real = in_context.in_context

    def counting(loaded, relations, templates, *args, **kwargs):
        calls.append((relations, templates))
        return real(loaded, relations, templates, *args, **kwargs)

    monkeypatch.setattr(in_context, "in_context", counting)
    yield calls
    st.cache_resource.clear()


def classified(folder: str) -> AppTest:
    """The page with the planted folder scored on `RELATIONS` only (no patterns)."""
    app = open_page()
    (source,) = [radio for radio in app.sidebar.radio if radio.label == "Checkpoint"]
    source.set_value("Local folder").run()
    (field,) = [text for text in app.sidebar.text_input if text.label == "Local checkpoint folder"]
    field.input(folder).run()
    (relations,) = [m for m in app.sidebar.multiselect if m.label == "Relations"]
    relations.set_value(RELATIONS).run()
    (patterns,) = [t for t in app.sidebar.toggle if t.label == "Attention-pattern scores"]
    patterns.set_value(False).run()
    button(app, "Run").click().run()
    assert not app.exception
    return app


def head_scores(app: AppTest) -> pd.DataFrame:
    """The inspector's in-context table: one row per relation, no `layer` column."""
    (table,) = [
        d.value
        for d in app.dataframe
        if "static_score" in d.value.columns and "layer" not in d.value.columns
    ]
    return table.set_index("relation")


def test_check_in_context_shows_static_and_dynamic_side_by_side(
    planted_checkpoint: Planted, in_context_calls: list[tuple]
) -> None:
    app = classified(str(planted_checkpoint.path))
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    head.set_value(planted_checkpoint.where(COPYING)).run()
    button(app, "Check in context").click().run()
    assert not app.exception and not app.error
    scores = head_scores(app)
    assert list(scores.index) == sorted(RELATIONS)  # catalog order
    assert scores.loc[COPYING, "static_score"] == pytest.approx(100)
    assert scores.loc[COPYING, "dynamic_score"] > 95
    # Another head: served from the same computation, no button.
    head.set_value(planted_checkpoint.where("country_to_capital_wikidata")).run()
    scores = head_scores(app)
    assert scores.loc["country_to_capital_wikidata", "dynamic_score"] > 90
    assert not [b for b in app.button if b.label in ("Check in context", "Compute dynamic scores")]
    assert len(in_context_calls) == 1


def test_static_vs_dynamic_scatter_has_r_in_titles_and_flags_disagreements(
    planted_checkpoint: Planted, in_context_calls: list[tuple]
) -> None:
    app = classified(str(planted_checkpoint.path))
    button(app, "Compute dynamic scores").click().run()
    assert not app.exception
    (scatter,) = [c for c in app.get("vega_lite_chart") if "facet" in json.loads(c.proto.spec)]
    assert "over all heads" in json.dumps(json.loads(scatter.proto.spec)["title"])
    summary = app.dataframe[-1].value  # r per relation and variant, as the titles show it
    copying = summary[(summary["relation"] == COPYING) & (summary["variant"] == "dynamic_score")]
    assert float(copying["pearson_r"].iloc[0]) > 0.9
    assert not summary.isna().any().any()  # no empty cell: "r undefined (constant)" instead
    (margin,) = [s for s in app.slider if s.label.startswith("Disagreement margin")]
    flagged_at_default = len(app.dataframe[-2].value)
    margin.set_value(0).run()  # every head whose scores differ at all is flagged
    assert len(app.dataframe[-2].value) >= flagged_at_default
    margin.set_value(100).run()
    assert app.dataframe[-2].value.empty
    # A bad template edit says why and keeps the computed result on screen.
    (templates,) = [t for t in app.text_area if t.label.startswith("Templates")]
    templates.input("no slot").run()
    assert any("must hold <X> exactly once" in plain(e.value) for e in app.error)
    assert [c for c in app.get("vega_lite_chart") if "facet" in json.loads(c.proto.spec)]
    assert len(in_context_calls) == 1


def test_the_multi_token_switch_adds_multi_token_pairs_reported_apart(
    planted_checkpoint: Planted, in_context_calls: list[tuple]
) -> None:
    app = classified(str(planted_checkpoint.path))
    (switch,) = [t for t in app.toggle if t.label == "Multi-token sources"]
    switch.set_value(True).run()
    button(app, "Compute dynamic scores").click().run()
    assert not app.exception and not app.error
    summary = app.dataframe[-1].value
    capitals = summary[summary["relation"] == "country_to_capital_wikidata"]
    # The planted tokenizer splits a few capitals' countries into several tokens.
    assert set(capitals["pairs"]) == {"single-token", "multi-token"}
    assert set(summary[summary["relation"] == COPYING]["pairs"]) == {"single-token"}
    switch.set_value(False).run()  # another result: its own button
    assert [b for b in app.button if b.label == "Compute dynamic scores"]
    assert len(in_context_calls) == 1


@pytest.mark.usefixtures("no_model_load")
def test_the_check_reads_the_checkpoint_one_layer_at_a_time_to_the_whole_models_table(
    planted_checkpoint: Planted, planted_model: LoadedModel, in_context_calls: list[tuple]
) -> None:
    """No whole model is built for the check (transformers refuses here), and its table equals
    the one computed on the model loaded whole."""
    app = classified(str(planted_checkpoint.path))
    button(app, "Check in context").click().run()
    assert not app.exception and not app.error
    (result,) = in_context._results()[0].values()
    ((relations, templates),) = in_context_calls
    whole = in_context.in_context(planted_model, relations, templates)
    pd.testing.assert_frame_equal(result.table, whole.table, check_exact=True)
    pd.testing.assert_frame_equal(result.summary, whole.summary, check_exact=True)
