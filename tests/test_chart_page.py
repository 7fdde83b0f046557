"""The Layer chart page, driven headless through `streamlit.testing.v1.AppTest`."""

from __future__ import annotations

import json

import pandas as pd
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import TextInput

from lib.handoff import HANDOFF_KEY, ChartHandoff
from tests.chart_helpers import FIGURE_COUNTS, REPO, csv_bytes, per_head_frame, plain

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
