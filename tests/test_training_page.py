"""The Training dynamics page on the store of a planted series, through AppTest: every view
renders, with the planted answers where they can be read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

from lib.fixtures.planted import PLANTED, ROLES
from lib.runs.store import DIGEST, SETTINGS, JobKey, Store
from lib.tables.binning import score_categories
from tests.chart_helpers import REPO
from tests.series_support import STEPS, first_step

HOME = str(REPO / "streamlit_app.py")
PAGE = "pages/4_Training_dynamics.py"


def open_page(store: str | None = None) -> AppTest:
    home = AppTest.from_file(HOME, default_timeout=120)
    if store is not None:
        home.session_state["training_store"] = store
    page = home.run().switch_page(PAGE).run()
    assert not page.exception, page.exception
    return page


def specs(page: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in page.get("vega_lite_chart")]


def chart_rows(page: AppTest, index: int) -> list[dict]:
    """The rows of a chart's one named dataset (Streamlit sends them as Arrow bytes)."""
    (dataset,) = page.get("vega_lite_chart")[index].proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_pandas().to_dict("records")


def test_without_a_store_the_page_says_what_to_give() -> None:
    page = open_page()
    assert "results store" in page.info[0].value
    assert not page.error


def test_every_view_renders_the_planted_store(planted_store: Path) -> None:
    page = open_page(str(planted_store))
    assert not page.error
    assert [tab.label for tab in page.tabs] == [
        "Roles over training", "Heads over training", "Layer chart by step", "Emergence table",
        "One head", "Heads necessary",
    ]  # fmt: skip
    _, over, at_step, multiples, _, head = specs(page)
    # Roles over training: a panel per planted label, each counting its one planted head.
    role_rows = chart_rows(page, 0)
    for role in ROLES:
        label = PLANTED[ROLES[role]]
        counted = {r["step"]: r["n_heads"] for r in role_rows if r["label"] == label}
        assert counted == {step: int(step >= first_step(role)) for step in STEPS}
    # Emergence: by default the labelled heads, each marked at its first_step.
    emerging_rows = chart_rows(page, 4)
    marked = {r["head"]: r["step"] for r in emerging_rows if r["emerged"]}
    assert marked == {
        f"L{layer} H{head}: {PLANTED[(layer, head)]}": first_step(role)
        for role, (layer, head) in ROLES.items()
    }
    # Heads over training: the Layer chart's categories and colours, a symlog step axis.
    categories = score_categories()
    (panel,) = over["concat"]
    color = panel["encoding"]["color"]["scale"]
    assert color == {"domain": list(categories.names), "range": list(categories.colors)}
    assert panel["encoding"]["x"]["scale"]["type"] == "symlog"
    tooltips = [t.get("title", t["field"]) for t in panel["encoding"]["tooltip"]]
    assert "tokens seen" in tooltips
    # The layer chart at the last step; small multiples of every swept step (there are three).
    # Every step has its panel: step 0 too, whatever is labelled there; one y scale.
    titles = [p["title"] for p in multiples["concat"]]
    assert [title.rsplit(" · ", 1)[1] for title in titles] == [f"step {s}" for s in STEPS]
    domains = {str(p["layer"][0]["encoding"]["y"]["scale"]["domain"]) for p in multiples["concat"]}
    assert len(domains) == 1
    assert len(at_step["concat"]) == 1
    # The emergence table: every head, and the planted heads' first steps.
    table = next(d.value for d in page.dataframe if "first_step" in d.value.columns)
    assert len(table) == 12
    assert not table.isna().any().any()  # a head never at threshold says "never", not None
    assert (table["threshold_step"] == "never").sum() == 12 - len(ROLES)
    for role, (layer, head_index) in ROLES.items():
        row = table[(table["layer"] == layer) & (table["head"] == head_index)].iloc[0]
        assert row["first_step"] == first_step(role)
    assert [b.label for b in page.get("download_button")] == ["Emergence table (CSV)"]
    # One head: lines of its scores over the steps.
    assert head["mark"]["type"] == "line"
    assert head["encoding"]["x"]["scale"]["type"] == "symlog"


def test_picking_a_head_draws_its_scores(planted_store: Path) -> None:
    page = open_page(str(planted_store))
    layer, head = ROLES["previous_token"]
    page.number_input[0].set_value(layer).run()
    page.number_input[1].set_value(head).run()
    assert not page.exception
    labels = next(d.value for d in page.dataframe if list(d.value.columns) == ["step", "label"])
    assert labels["label"].tolist() == ["previous_token"] * len(STEPS)
    assert "previous_token" in page.multiselect[-1].value
    (line,) = [spec for spec in specs(page) if spec.get("mark", {}).get("type") == "line"]
    assert line["title"] == f"layer {layer}, head {head}"


def test_several_models_side_by_side(planted_store: Path, tmp_path: Path) -> None:
    """Two models in one store: one panel each over training, two panels per step."""
    store = tmp_path / "store"
    shutil.copytree(planted_store, store)
    for stored in Store(str(planted_store)).tables():  # the same tables, as another model's
        rows = stored.table.to_pandas()
        key = JobKey("second model", rows["revision"].iloc[0], int(rows["step"].iloc[0]))
        table = rows.drop(columns=["model", "revision", "step", DIGEST, SETTINGS])
        digest, record = rows[DIGEST].iloc[0], json.loads(rows[SETTINGS].iloc[0])
        Store(str(store)).write_table(key, table, digest, record, stored.store_settings)
    page = open_page(str(store))
    assert not page.error
    _, over, at_step, multiples, _, _ = specs(page)
    assert [p["title"] for p in over["concat"]] == sorted(
        [str(pd.read_parquet(planted_store)["model"].iloc[0]), "second model"]
    )
    assert len(at_step["concat"]) == 2
    assert len(multiples["concat"]) == 2 * len(STEPS)


def test_a_bad_store_keeps_the_previous_one(planted_store: Path, tmp_path: Path) -> None:
    page = open_page(str(planted_store))
    page.text_input(key="training_store").set_value(str(tmp_path / "nothing")).run()
    assert "holds no results" in page.error[0].value
    assert any("first_step" in d.value.columns for d in page.dataframe)  # still on screen


def test_the_store_box_keeps_its_path_across_pages(planted_store: Path) -> None:
    page = open_page(str(planted_store))
    page.switch_page("pages/home.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.text_input(key="training_store").value == str(planted_store)
    assert specs(page)  # the store is read again: its charts are drawn


def test_the_open_tab_is_kept_across_pages(planted_store: Path) -> None:
    page = open_page(str(planted_store))
    assert page.session_state["training_tab"] == "Roles over training"
    page.session_state["training_tab"] = "Emergence table"  # as a click on that tab does
    page.run()
    page.switch_page("pages/home.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.session_state["training_tab"] == "Emergence table"
