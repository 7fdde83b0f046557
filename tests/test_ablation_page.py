"""The causal check on the Classify heads page (`ui/ablation.py`), through AppTest on the model
whose planted head carries the copying task: "Ablate", the curves chart and the summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from lib.fixtures.planted import TASK_HEAD
from lib.runs.result_cache import CACHE_DIR_KEY
from tests.test_ablation import COPYING, task_checkpoint  # noqa: F401 (the fixture)
from tests.test_classify_page import button
from tests.test_in_context_page import classified


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv(CACHE_DIR_KEY, str(tmp_path / "cache"))
    yield
    st.cache_resource.clear()


def test_ablate_draws_the_curves_and_the_summary(task_checkpoint, fresh_cache) -> None:  # noqa: F811
    app = classified(str(task_checkpoint))
    (relation,) = [box for box in app.selectbox if box.label == "Relation to ablate"]
    relation.set_value(COPYING).run()
    button(app, "Ablate").click().run()
    assert not app.exception and not app.error
    (summary,) = [d.value for d in app.dataframe if "ablated_accuracy" in d.value.columns]
    (row,) = summary.to_dict("records")
    assert row["base_accuracy"] >= 90 and row["ablated_accuracy"] <= 10  # percent on screen
    assert row["random_mean"] >= 80
    charts = [c for c in app.get("vega_lite_chart") if "heads removed" in c.proto.spec]
    assert charts
    assert any("docs/methods.md §10" in caption.value for caption in app.caption)
    # Another relation and back: the first computation is served, no button.
    relation.set_value("country_to_capital_wikidata").run()
    relation.set_value(COPYING).run()
    assert not [b for b in app.button if b.label == "Ablate"]


def test_the_inspector_gives_the_accuracy_without_the_head(task_checkpoint, fresh_cache) -> None:  # noqa: F811
    app = classified(str(task_checkpoint))
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    head.set_value(TASK_HEAD).run()
    button(app, "Accuracy without this head").click().run()
    assert not app.exception and not app.error
    (effects,) = [d.value for d in app.dataframe if "accuracy_without_head" in d.value.columns]
    row = effects.set_index("relation").loc[COPYING]
    assert row["base_accuracy"] >= 90 and row["accuracy_without_head"] <= 10
    assert row["change"] <= -80
