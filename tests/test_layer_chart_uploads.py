"""A new table on the Layer chart page keeps the bin, name and colour settings the user chose
that still apply to it, resets the others without an exception, and says which."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
from streamlit.testing.v1 import AppTest

from lib.app.handoff import HANDOFF_KEY, ChartHandoff
from tests.chart_helpers import FIGURE_CSV, csv_bytes, per_head_frame, plain
from tests.test_chart_page import (
    FIGURE_N_HEADS,
    PAGE,
    chart_spec,
    counts_shown,
    open_page,
    text_input,
    upload,
)

SAID = ("Kept your", "Reset, as they do not apply")
FIGURE_COLORS = ["#006400", "#32cd32", "#ff0000", "#8b0000"]


def labelled(n_layers: int, labels: tuple[str, str], seed: int) -> bytes:
    """A per-head table of `n_layers` x 2 heads with a `score` and a two-value `label`."""
    frame = per_head_frame(n_layers, 2, seed=seed)
    return csv_bytes(frame.assign(label=[labels[i % 2] for i in range(len(frame))]))


def prebinned(edges: tuple[int, ...], colors: list[str] | None = None) -> bytes:
    """The figure's four categories (with its colours, else `colors`) over the layer bins of
    `edges`, one head each."""
    figure = pd.read_csv(FIGURE_CSV).head(4)
    if colors is not None:
        figure = figure.drop(columns="color_name").assign(color=colors)
    rows = [
        figure.assign(layer_start=start, layer_end=end, n_heads=1) for start, end in pairwise(edges)
    ]
    return csv_bytes(pd.concat(rows).drop(columns="percent"))


def carried(page: AppTest) -> str:
    """The caption saying what the new table kept and reset."""
    (caption,) = [plain(c.value) for c in page.caption if plain(c.value).startswith(SAID)]
    return caption


def color_scale(page: AppTest) -> dict:
    return chart_spec(page)["layer"][0]["encoding"]["color"]["scale"]


def selectbox(page: AppTest, label: str):
    (found,) = [box for box in page.selectbox if box.label == label]
    return found


def edited_upload() -> AppTest:
    """a.csv (8 layers of model `m`) with layer width 3, score edges 0, 25, 50, 100, the first
    category renamed `low`, the second coloured #123456, and a title."""
    page = upload(open_page(), "a.csv", labelled(8, ("copying", "induction"), seed=4))
    page.radio[0].set_value("width").run()
    page.number_input[0].set_value(3).run()
    text_input(page, "Score edges (%)").input("0, 25, 50, 100").run()
    text_input(page, "Category 1").input("low").run()
    page.color_picker[1].pick("#123456").run()
    text_input(page, "Title").input("My title").run()
    return page


def test_a_new_upload_of_the_same_columns_keeps_every_edit_and_says_so() -> None:
    page = upload(edited_upload(), "b.csv", labelled(8, ("copying", "induction"), seed=5))
    assert page.radio[0].value == "width" and page.number_input[0].value == 3
    assert text_input(page, "Score edges (%)").value == "0, 25, 50, 100"
    assert color_scale(page)["domain"] == ["low", "25-50%", "50-100%"]
    assert color_scale(page)["range"] == ["#006400", "#123456", "#ff0000"]
    assert list(counts_shown(page)["layer_bin"].unique()) == ["[0, 3)", "[3, 6)", "[6, 8)"]
    assert counts_shown(page)["n_heads"].sum() == 16  # b.csv's heads, a.csv's settings
    assert chart_spec(page)["title"] == "My title"  # the same model
    assert carried(page) == (
        "Kept your layer bins, score edges, category names, colours and title from the previous "
        "table."
    )
    assert not page.error


def test_settings_that_do_not_fit_the_new_table_are_reset_and_the_rest_kept() -> None:
    page = edited_upload()
    selectbox(page, "Categorise heads by").set_value("label").run()
    text_input(page, "Category 1").input("copy").run()  # label 'copying'
    page.color_picker[1].pick("#abcdef").run()  # label 'induction'
    page = upload(page, "c.csv", labelled(2, ("induction", "suppression"), seed=6))
    assert not page.exception and not page.error
    assert selectbox(page, "Categorise heads by").value == "label"
    assert page.radio[0].value == "default"  # width 3 is wider than c.csv's 2 layers
    assert color_scale(page)["domain"] == ["induction", "suppression"]
    assert color_scale(page)["range"][0] == "#abcdef"  # induction's colour stays
    assert list(counts_shown(page)["layer_bin"].unique()) == ["[0, 1)", "[1, 2)"]
    said = carried(page)
    assert said.startswith(
        "Kept your category column, score edges, category names, colours and title"
    )
    assert "layer bins (c.csv has 2 layers)" in said
    assert "category names (for columns or categories the new table lacks)" in said


def test_a_prebinned_upload_keeps_only_the_choices_among_its_own_options() -> None:
    page = open_page()
    page.radio[0].set_value("width").run()
    page.selectbox[0].set_value(32).run()
    page.color_picker[0].pick("#123456").run()
    page = upload(page, "binned.csv", prebinned((0, 8, 16, 24)))
    assert not page.exception and not page.error
    assert page.radio[0].value == "default"  # 32 is not among the widths of a 24-layer file
    assert color_scale(page)["range"] == ["#123456", *FIGURE_COLORS[1:]]
    assert list(counts_shown(page)["layer_bin"].unique()) == ["[0, 8)", "[8, 16)", "[16, 24)"]
    page.radio[0].set_value("edges").run()
    page.multiselect[0].set_value([0, 16, 24]).run()
    page = upload(page, "wider.csv", prebinned((0, 16, 24, 40)))
    assert not page.exception
    assert page.multiselect[0].value == [0, 16, 24]  # edges of the new file's bins too
    assert "layer bins" in carried(page)


def test_colours_the_user_left_alone_give_way_to_the_new_files_own() -> None:
    own = ["#111111", "#222222", "#333333", "#444444"]
    page = upload(open_page(), "own.csv", prebinned((0, 8, 16), own))
    assert color_scale(page)["range"] == own
    assert not [c for c in page.caption if plain(c.value).startswith(SAID)]  # nothing chosen


def test_the_figure_comes_back_with_its_own_colours_after_edited_uploads() -> None:
    page = edited_upload()
    (back,) = [b for b in page.button if b.label == "Back to the published figure"]
    back.click().run()
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS
    assert color_scale(page)["range"] == FIGURE_COLORS
    assert page.radio[0].value == "default"  # width 3 splits the figure's bins
    assert chart_spec(page)["title"] == "Pythia 6.9B"  # "My title" was of model m
    assert "title (the new table shows other models)" in carried(page)


def test_a_handed_over_table_keeps_its_own_column() -> None:
    page = edited_upload()
    selectbox(page, "Categorise heads by").set_value("label").run()
    frame = per_head_frame(8, 2, seed=7).assign(label="induction")
    page.session_state[HANDOFF_KEY] = ChartHandoff(frame, "Classify heads: m", "score")
    page.run()
    assert not page.exception
    assert selectbox(page, "Categorise heads by").value == "score"
    assert color_scale(page)["domain"] == ["low", "25-50%", "50-100%"]  # score's edits stay
    assert "category column (the new table came with its own)" in carried(page)


def test_kept_settings_survive_a_visit_to_another_page() -> None:
    page = upload(edited_upload(), "b.csv", labelled(8, ("copying", "induction"), seed=5))
    page.switch_page("pages/home.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.radio[0].value == "width" and page.number_input[0].value == 3
    assert color_scale(page)["domain"] == ["low", "25-50%", "50-100%"]
    assert color_scale(page)["range"] == ["#006400", "#123456", "#ff0000"]
    assert text_input(page, "Score edges (%)").value == "0, 25, 50, 100"
