"""The Layer chart page, driven headless through `streamlit.testing.v1.AppTest`."""

from __future__ import annotations

import json
import re

import pandas as pd
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import TextInput

from lib.app.handoff import HANDOFF_KEY, ChartHandoff
from tests.chart_helpers import (
    FIGURE_COUNTS,
    HOSTILE_LABELS,
    HOSTILE_NAME,
    REPO,
    csv_bytes,
    per_head_frame,
    plain,
)

HOME = str(REPO / "streamlit_app.py")
PAGE = "pages/1_Layer_chart.py"
FIGURE_N_HEADS = [n for bar in FIGURE_COUNTS for n in bar]


def open_page(**state: object) -> AppTest:
    """The app opened on its home page with `state` in the session, then the Layer chart."""
    home = AppTest.from_file(HOME, default_timeout=60)
    for key, value in state.items():
        home.session_state[key] = value
    page = home.run().switch_page(PAGE).run()
    assert not page.exception
    return page


def counts_shown(page: AppTest) -> pd.DataFrame:
    return page.dataframe[-1].value  # the counts table is the last one


def chart_spec(page: AppTest) -> dict:
    (chart,) = page.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def text_input(page: AppTest, label: str) -> TextInput:
    (found,) = [widget for widget in page.text_input if widget.label == label]
    return found


def upload(page: AppTest, name: str, data: bytes) -> AppTest:
    page.file_uploader[0].upload(name, data, "text/csv").run()
    assert not page.exception
    return page


def test_the_first_render_shows_the_published_figure() -> None:
    page = open_page()
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS
    assert chart_spec(page)["title"] == "Pythia 6.9B"
    assert not page.error
    assert "pythia-6.9b-figure.csv" in plain(page.caption[0].value)
    assert any("share of its bar" in caption.value for caption in page.caption)
    assert [button.label for button in page.get("download_button")] == [
        "Counts table (CSV)", "Vega-Lite spec (JSON)", "Vector image (SVG)", "Image (PNG)",
    ]  # fmt: skip


def test_a_good_upload_replaces_the_figure_and_says_how_scores_were_read() -> None:
    frame = per_head_frame(8, 2, seed=9)
    frame["score"] *= 100
    page = upload(open_page(), "mine.csv", csv_bytes(frame))
    shown = counts_shown(page)
    assert list(shown["layer_bin"].unique()) == ["[0, 2)", "[2, 4)", "[4, 6)", "[6, 8)"]
    assert shown["n_heads"].sum() == 16
    assert any("read as percents" in plain(info.value) for info in page.info)
    assert chart_spec(page)["title"] == "m"


def test_a_bad_upload_shows_its_message_and_keeps_the_previous_table() -> None:
    page = upload(open_page(), "bad.csv", b"layer,head,score\n0,0,0.5\n0,0,0.7\n")
    (error,) = page.error
    assert plain(error.value).startswith("bad.csv: 1 row repeats the (layer, head) of an earlier")
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS
    page.color_picker[0].pick("#010203").run()  # the page keeps working
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS
    assert page.error  # the message stays while the bad file is in the uploader


def test_editing_layer_edges_changes_the_counts() -> None:
    page = open_page()
    page.radio[0].set_value("edges").run()
    page.multiselect[0].set_value([0, 16, 32]).run()
    assert list(counts_shown(page)["n_heads"]) == [26, 25, 3, 18, 35, 16, 7, 8]
    assert page.multiselect[0].options == ["0", "8", "16", "24", "32"]  # only merging edges


def test_editing_score_edges_changes_the_counts_and_category_names() -> None:
    frame = pd.DataFrame({"layer": [0, 0, 0, 0], "score": [0.1, 0.3, 0.6, 0.9]})
    page = upload(open_page(), "four.csv", csv_bytes(frame))
    assert list(counts_shown(page)["n_heads"]) == [1, 1, 1, 1]
    text_input(page, "Score edges (%)").input("0, 50, 100").run()
    shown = counts_shown(page)
    assert list(shown["category"]) == ["0-50%", "50-100%"]
    assert list(shown["n_heads"]) == [2, 2]


def test_a_colour_and_a_name_change_reach_the_chart_spec() -> None:
    page = open_page()
    page.color_picker[3].pick("#123456").run()
    text_input(page, "Category 4").input("top").run()
    scale = chart_spec(page)["layer"][0]["encoding"]["color"]["scale"]
    assert scale["range"] == ["#006400", "#32cd32", "#ff0000", "#123456"]
    assert scale["domain"] == ["0-25%", "25-50%", "50-75%", "top"]


def test_a_handed_over_table_is_shown_with_its_source_and_the_figure_is_one_click_away() -> None:
    frame = per_head_frame(4, 2, seed=10, model="EleutherAI/pythia-14m").assign(
        label=["induction", "unclassified"] * 4
    )
    handoff = ChartHandoff(frame, "Classify heads: pythia-14m", "label")
    page = open_page(**{HANDOFF_KEY: handoff})
    assert "Classify heads: pythia-14m" in plain(page.caption[0].value)
    shown = counts_shown(page)
    assert shown["n_heads"].sum() == 8
    assert list(shown["category"][:2]) == ["induction", "unclassified"]  # the handoff's column
    assert HANDOFF_KEY not in page.session_state
    page.button[0].click().run()
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS


def test_a_handed_over_population_is_binned_over_its_models_depth() -> None:
    whole = per_head_frame(32, 2, seed=11, model="EleutherAI/pythia-6.9b")
    population = whole[whole["layer"] < 20]
    handoff = ChartHandoff(
        population, "pythia-6.9b · operation heads", "score", (("EleutherAI/pythia-6.9b", 32),)
    )
    shown = counts_shown(open_page(**{HANDOFF_KEY: handoff}))
    assert shown["layer_bin"].unique().tolist() == ["[0, 8)", "[8, 16)", "[16, 24)", "[24, 32)"]
    assert shown.groupby("layer_bin", sort=False)["n_heads"].sum().tolist() == [16, 16, 8, 0]


def test_text_from_a_file_is_shown_literally_in_every_markdown_element() -> None:
    frame = pd.DataFrame(
        {"layer": range(6), "label": HOSTILE_LABELS, "model": ["[m](https://example.com)"] * 6}
    )
    page = upload(open_page(), HOSTILE_NAME, csv_bytes(frame))
    markdown = [element.value for element in (*page.caption, *page.info, *page.error)]
    for value in [v for v in markdown if "share of its bar" not in v]:  # ours, no file text
        # No Markdown/KaTeX/directive/HTML/URL character is left for Markdown to act on.
        assert not re.search(r"[\[\]*$<`]|:red|://", value), value
    shown = " ".join(plain(value) for value in markdown)
    assert f"Showing {HOSTILE_NAME}." in shown
    for label in HOSTILE_LABELS:
        assert repr(label) in shown  # in "Categories, bottom to top: label = '...'"


def test_a_bad_upload_names_a_hostile_file_literally() -> None:
    page = upload(open_page(), HOSTILE_NAME, b"layer,score\n-1,0.5\n")
    (error,) = page.error
    assert plain(error.value).startswith(HOSTILE_NAME + ", row 2, column 'layer'")
    assert "&#91;img&#93;" in error.value and "&#42;a&#42;" in error.value


def test_chart_edits_survive_a_visit_to_another_page() -> None:
    frame = per_head_frame(8, 2, seed=4)
    page = upload(open_page(), "mine.csv", csv_bytes(frame))
    page.radio[0].set_value("width").run()
    page.number_input[0].set_value(3).run()
    text_input(page, "Title").input("My title").run()
    text_input(page, "Category 1").input("low").run()
    page.color_picker[1].pick("#123456").run()
    text_input(page, "Score edges (%)").input("0, 25, 50, 100").run()
    page.switch_page("pages/home.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.radio[0].value == "width" and page.number_input[0].value == 3
    assert text_input(page, "Title").value == "My title"
    assert text_input(page, "Score edges (%)").value == "0, 25, 50, 100"
    spec = chart_spec(page)
    assert spec["title"] == "My title"
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    # The renamed first range keeps its name; colours follow the position in the stack.
    assert scale["domain"] == ["low", "25-50%", "50-100%"]
    assert scale["range"] == ["#006400", "#123456", "#ff0000"]
    assert list(counts_shown(page)["layer_bin"].unique()) == ["[0, 3)", "[3, 6)", "[6, 8)"]


def test_an_impossible_setting_keeps_the_last_chart_and_says_why_beside_the_control() -> None:
    page = upload(open_page(), "mine.csv", csv_bytes(per_head_frame(8, 2, seed=4)))
    page.radio[0].set_value("edges").run()
    text_input(page, "Layer edges").input("0, 4, 8").run()
    before = counts_shown(page)
    text_input(page, "Layer edges").input("0, 4, x").run()
    assert not page.main.error
    assert [plain(e.value) for e in page.sidebar.error] == ["layer edges: 'x' is not a number"]
    pd.testing.assert_frame_equal(counts_shown(page), before)  # chart, table, downloads stay
    assert chart_spec(page) and len(page.get("download_button")) == 4
    text_input(page, "Score edges (%)").input("0, 50, 40").run()
    assert [plain(e.value) for e in page.sidebar.error] == [
        "layer edges: 'x' is not a number",
        "score edges must increase",
    ]
    pd.testing.assert_frame_equal(counts_shown(page), before)


def test_a_prebinned_table_is_offered_only_the_widths_that_merge_its_bins() -> None:
    page = open_page()
    page.radio[0].set_value("width").run()
    (width,) = page.selectbox
    assert width.options == ["8", "16", "24", "32"]
    width.set_value(16).run()
    assert list(counts_shown(page)["layer_bin"].unique()) == ["[0, 16)", "[16, 32)"]
    assert not page.error


def test_repeated_heads_are_shown_with_their_fixes() -> None:
    rows = "layer,head,score\n0,0,0.1\n0,0,0.2\n1,0,0.3\n1,0,0.4\n1,0,0.5\n2,0,0.9\n"
    page = upload(open_page(), "rep.csv", rows.encode())
    (error,) = page.error
    assert "3 rows repeat the (layer, head) of an earlier row (3 of model 'rep')" in plain(
        error.value
    )
    examples = page.dataframe[0].value
    assert list(examples.index) == [2, 3, 4, 5, 6] and list(examples["score"])[:2] == [0.1, 0.2]
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS  # the figure stays meanwhile
    (keep_first,) = [b for b in page.button if b.label == "Keep the first row of each head"]
    keep_first.click().run()
    assert not page.error
    assert counts_shown(page)["n_heads"].sum() == 3
    assert any("3 rows repeating a head" in plain(info.value) for info in page.info)


def test_a_stray_text_cell_is_refused_as_the_command_line_refuses_it() -> None:
    page = upload(open_page(), "stray.csv", b"layer,head,score\n0,0,0.5\n0,1,abc\n1,0,0.7\n")
    (error,) = page.error
    assert plain(error.value) == (
        "stray.csv, row 3, column 'score': 'abc' is not a number (a score column holds numbers "
        "only)"
    )
    assert list(counts_shown(page)["n_heads"]) == FIGURE_N_HEADS


def test_a_bad_score_column_is_said_above_the_chart_not_beside_the_layer_bins() -> None:
    frame = per_head_frame(8, 1, seed=2).assign(other=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, -1.0])
    page = upload(open_page(), "two.csv", csv_bytes(frame))
    page.radio[0].set_value("width").run()
    page.number_input[0].set_value(2).run()
    before = counts_shown(page)
    (column,) = [box for box in page.selectbox if box.label == "Categorise heads by"]
    column.set_value("other").run()
    assert [plain(e.value) for e in page.main.error] == [
        "two.csv, row 9, column 'other': '-1' is negative: scores are fractions in [0, 1] or "
        "percents in [0, 100]"
    ]
    assert not page.sidebar.error
    pd.testing.assert_frame_equal(counts_shown(page), before)  # the last good chart stays
