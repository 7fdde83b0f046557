"""The Classify heads page, driven headless through `streamlit.testing.v1.AppTest` on the
planted checkpoint: the whole flow, the handoff to the chart, the cache, a bad folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import lib.checkpoints.loader
from lib.fixtures.synthetic import pythia_config, random_model, save_checkpoint, train_tokenizer
from lib.runs import classification as runs
from lib.runs import resident
from lib.runs.result_cache import CACHE_DIR_KEY
from lib.scoring.relations import load_pairs
from tests.conftest import Planted

REPO = Path(__file__).resolve().parent.parent
PAGE = "pages/2_Classify_heads.py"
FOLDER, FOLDER_INPUT = "Local folder", "Local checkpoint folder"


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """A fresh cache folder; the sources `classify_heads` was called on, in order."""
    monkeypatch.setenv(CACHE_DIR_KEY, str(tmp_path / "cache"))
    calls: list[str] = []
    real = runs.classify_heads

    def counting(loaded, *args, **kwargs):
        calls.append(loaded.name)
        return real(loaded, *args, **kwargs)

    monkeypatch.setattr(runs, "classify_heads", counting)
    yield calls
    st.cache_resource.clear()  # no model or cache object outlives its test


def open_page() -> AppTest:
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120).run()
    app.switch_page(PAGE).run()
    assert not app.exception
    return app


def choose_folder(app: AppTest, folder: str) -> AppTest:
    (source,) = [radio for radio in app.sidebar.radio if radio.label == "Checkpoint"]
    source.set_value(FOLDER).run()
    (field,) = [text for text in app.sidebar.text_input if text.label == FOLDER_INPUT]
    field.input(folder).run()
    assert not app.exception
    return app


def run_folder(app: AppTest, folder: str) -> AppTest:
    """Choose a local folder, type it, press Run."""
    button(choose_folder(app, folder), "Run").click().run()
    assert not app.exception
    return app


def button(app: AppTest, label: str):
    (found,) = [b for b in app.button if b.label == label]
    return found


def table_with(app: AppTest, *columns: str) -> pd.DataFrame:
    """The one table on the page whose first columns are `columns`."""
    (found,) = [
        frame.value
        for frame in app.dataframe
        if tuple(frame.value.columns[: len(columns)]) == columns
    ]
    return found


def head_labels(app: AppTest) -> dict[tuple[int, int], str]:
    """Labels in the per-head table ("All heads")."""
    table = table_with(app, "layer", "head", "label", "score")
    return {(int(r.layer), int(r.head)): r.label for r in table.itertuples()}


def origin(app: AppTest) -> str:
    return next(c.value for c in app.caption if " heads, " in c.value)


def test_scores_a_local_checkpoint_then_serves_it_from_the_cache(
    planted_checkpoint: Planted, engine_calls: list[str]
) -> None:
    app = run_folder(open_page(), str(planted_checkpoint.path))
    assert not app.error
    expected = {(layer, head): "unclassified" for layer in range(3) for head in range(4)}
    assert head_labels(app) == expected | planted_checkpoint.heads
    assert "computed now" in origin(app)
    assert len(engine_calls) == 1

    button(app, "Run").click().run()  # the same request again
    assert "served from the cache" in origin(app)
    assert head_labels(app) == expected | planted_checkpoint.heads

    (operation,) = [n for n in app.sidebar.number_input if n.label == "operation (%)"]
    operation.set_value(0.0).run()  # every head now passes some relation: relabelled, not rerun
    assert "unclassified" not in head_labels(app).values()

    st.cache_resource.clear()  # a server restart: nothing in memory, the disk remains
    again = run_folder(open_page(), str(planted_checkpoint.path))
    assert "served from the cache on disk" in origin(again)
    assert head_labels(again) == expected | planted_checkpoint.heads
    assert len(engine_calls) == 1


def open_in_chart(app: AppTest, population: str | None) -> pd.DataFrame:
    """Choose the chart's population (None: leave the default), press Open in chart; the
    counts table the Layer chart then shows."""
    if population is not None:
        (choice,) = [r for r in app.radio if r.label == "Chart population"]
        choice.set_value(population).run()
    button(app, "Open in chart").click().run()
    assert not app.exception
    assert app.title[0].value == "Layer chart"
    counts: pd.DataFrame = app.dataframe[0].value
    return counts.pivot_table("n_heads", "layer_bin", "category", aggfunc="sum")


@pytest.mark.parametrize(
    ("population", "top", "lowest", "total"),
    [
        (None, [2, 1, 0], [0, 0, 0], 3),
        ("classified", [2, 1, 1], [0, 0, 0], 4),
        ("all", [2, 1, 1], [2, 3, 3], 12),
    ],
    ids=["default: operation heads", "classified heads", "all heads"],
)
def test_open_in_chart_charts_the_chosen_population(
    planted_checkpoint: Planted,
    engine_calls: list[str],
    population: str | None,
    top: list[int],
    lowest: list[int],
    total: int,
) -> None:
    app = run_folder(open_page(), str(planted_checkpoint.path))
    shown = open_in_chart(app, population)
    # 4 heads per layer: the planted ones (two in layer 0, one each in layers 1 and 2) score
    # ~100%, the unclassified ones 0. By default only the three operation heads are charted
    # (the previous-token head of layer 2 is pattern-only), as in the published figure; the
    # bins are the model's (layer 2's bar is there, empty), as on this page's own chart.
    assert shown.loc[:, "75-100%"].tolist() == top
    assert shown.loc[:, "0-25%"].tolist() == lowest
    assert shown.to_numpy().sum() == total


def test_a_bad_folder_is_an_error_and_the_page_still_works(
    planted_checkpoint: Planted, engine_calls: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    app = choose_folder(open_page(), str(missing))
    (error,) = app.sidebar.error
    assert error.value.startswith(f"no such folder: {missing}; give the folder")
    assert button(app, "Run").disabled
    assert not app.dataframe
    app = run_folder(app, str(planted_checkpoint.path))
    assert not app.error
    assert head_labels(app)[planted_checkpoint.where("previous_token")] == "previous_token"


def test_a_folder_that_is_not_gpt_neox_is_refused_before_run(
    non_neox_folder: Path, engine_calls: list[str]
) -> None:
    app = choose_folder(open_page(), str(non_neox_folder))
    (error,) = app.sidebar.error
    assert "is a 'gpt2' model, not GPT-NeoX" in error.value
    assert button(app, "Run").disabled


def test_out_of_memory_is_an_error_and_the_previous_table_stays(
    planted_checkpoint: Planted, engine_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_folder(open_page(), str(planted_checkpoint.path))
    before = head_labels(app)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(runs, "classify_heads", out_of_memory)
    (patterns,) = [t for t in app.sidebar.toggle if t.label == "Attention-pattern scores"]
    patterns.set_value(False).run()  # another result key: not in the cache
    button(app, "Run").click().run()
    (error,) = app.error
    assert "ran out of memory on cpu in float32; pick a smaller model" in error.value
    assert head_labels(app) == before


def test_the_inspector_shows_a_copying_head_mapping_tokens_to_themselves(
    planted_checkpoint: Planted, engine_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    real = resident.load_model
    monkeypatch.setattr(
        resident, "load_model", lambda source, *args: loads.append(source) or real(source, *args)
    )
    app = run_folder(open_page(), str(planted_checkpoint.path))
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    head.set_value(planted_checkpoint.where("general_copying_english_500")).run()
    assert any(t.value.startswith("general_copying_english_500 (score ") for t in app.text)
    (salient,) = [t for t in app.toggle if t.label == "Show salient operations"]
    salient.set_value(True).run()
    assert not app.exception
    operations = table_with(app, "rank", "token_id", "token")
    assert len(operations) == 20
    assert [mapped[0] for mapped in operations["mapped_tokens"]] == list(operations["token"])
    assert loads == []  # scoring and inspecting read the checkpoint layer by layer


def test_a_model_that_will_not_fit_is_flagged_before_run(
    planted_checkpoint: Planted, engine_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lib.checkpoints.loader, "free_memory", lambda device: 1000)
    app = choose_folder(open_page(), str(planted_checkpoint.path))
    (warning,) = app.sidebar.warning
    assert warning.value.startswith("This will not fit: ")
    assert "only 0.0 GiB is free on cpu; pick a smaller model" in warning.value
    assert any("free: 0.0 GiB on cpu" in caption.value for caption in app.sidebar.caption)


def test_the_sidebar_survives_open_in_chart_and_back(
    planted_checkpoint: Planted, engine_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back from the Layer chart, the sidebar still names the folder whose results are shown
    (not the catalog's 70m), the thresholds are kept, and Run downloads nothing."""
    loads: list[str] = []  # checkpoints opened to be read layer by layer
    real = resident.open_checkpoint
    monkeypatch.setattr(
        resident,
        "open_checkpoint",
        lambda source, *args: loads.append(source) or real(source, *args),
    )
    app = run_folder(open_page(), str(planted_checkpoint.path))
    (operation,) = [n for n in app.sidebar.number_input if n.label == "operation (%)"]
    operation.set_value(20.0).run()
    open_in_chart(app, None)
    app.switch_page(PAGE).run()
    assert not app.exception
    (source,) = [radio for radio in app.sidebar.radio if radio.label == "Checkpoint"]
    assert source.value == FOLDER
    (field,) = [text for text in app.sidebar.text_input if text.label == FOLDER_INPUT]
    assert field.value == str(planted_checkpoint.path)
    assert not [box for box in app.sidebar.selectbox if box.label == "Model size"]
    (operation,) = [n for n in app.sidebar.number_input if n.label == "operation (%)"]
    assert operation.value == 20.0
    assert planted_checkpoint.heads.items() <= head_labels(app).items()  # still shown
    button(app, "Run").click().run()
    assert "served from the cache" in origin(app)
    assert loads == [str(planted_checkpoint.path)] and len(engine_calls) == 1


def test_deduped_is_offered_only_for_sizes_with_a_deduped_run(engine_calls: list[str]) -> None:
    app = open_page()
    assert [t.label for t in app.sidebar.toggle] == ["Deduped", "Attention-pattern scores"]
    (size,) = [box for box in app.sidebar.selectbox if box.label == "Model size"]
    size.set_value("14m").run()
    assert [t.label for t in app.sidebar.toggle] == ["Attention-pattern scores"]
    assert "pythia-14m has no deduped run." in [c.value for c in app.sidebar.caption]


def test_the_summary_comes_first_and_a_click_on_a_head_inspects_it(
    planted_checkpoint: Planted, engine_calls: list[str]
) -> None:
    app = run_folder(open_page(), str(planted_checkpoint.path))
    (run,) = app.code
    assert run.value == f"{planted_checkpoint.path} @ local"  # the run, named once
    counts = table_with(app, "label", "heads")
    assert counts.set_index("label")["heads"].to_dict() == {
        **dict.fromkeys(planted_checkpoint.heads.values(), 1),
        "unclassified": 8,
    }
    # The run's own layer chart draws the default population, the operation heads.
    (population,) = [r for r in app.radio if r.label == "Chart population"]
    assert population.value == "operation"
    # Per finding, its passing heads; a click opens one in the inspector.
    where = planted_checkpoint.where("country_to_capital_wikidata")
    names = [t.value for t in app.text]
    assert "country_to_capital_wikidata (1)" in names
    heads = {tuple(p.options): p for p in app.pills}
    (capital,) = [p for options, p in heads.items() if options[0].startswith("L1 H2 · ")]
    capital.set_value(where).run()
    assert not app.exception
    (head,) = [box for box in app.selectbox if box.label == "Head"]
    assert head.value == where
    assert any(t.value.startswith("country_to_capital_wikidata (score ") for t in app.text)
    # The whole table follows, the run's columns left out of its rows.
    table = table_with(app, "layer", "head", "label", "score")
    assert "model" not in table.columns and "revision" not in table.columns


@pytest.fixture(scope="module")
def small_vocabulary_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer checkpoint whose 600-token tokenizer leaves most relations too few pairs."""
    tokenizer = train_tokenizer(600)
    model = random_model(pythia_config(2, 2, 32, len(tokenizer)), seed=0)
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("small-vocabulary"))


def test_skipped_relations_are_one_folded_note(
    small_vocabulary_checkpoint: Path, engine_calls: list[str]
) -> None:
    app = run_folder(open_page(), str(small_vocabulary_checkpoint))
    assert not app.error
    assert not [box for box in app.info if "skipped" in box.value]
    (note,) = [e for e in app.expander if "relations skipped" in e.label]
    listed = table_with(app, "relation", "single-token pairs", "pairs listed", "why")
    assert note.label.startswith(f"{len(listed)} relations skipped: fewer than 30")
    assert len(listed) > 1 and (listed["single-token pairs"] < 30).all()
    for name, kept, why in zip(
        listed["relation"], listed["single-token pairs"], listed["why"], strict=True
    ):
        assert why == f"{kept} of {len(load_pairs(name))} pairs are single tokens; 30 needed"
