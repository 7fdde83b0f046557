"""The layer chart and its exports: the bundled figure reproduced, number for number."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest

from lib.charts import export
from lib.charts.layer_chart import MIN_LABEL_HEIGHT, PANEL_HEIGHT, layer_chart
from lib.core.colors import FIGURE_COLORS, label_colors
from lib.tables import binning
from lib.tables import head_table as ht
from tests.chart_helpers import FIGURE_COUNTS, FIGURE_PERCENTS, figure_bytes, per_head_frame


@pytest.fixture(scope="module")
def figure_counts() -> binning.Counts:
    table = ht.read_table(figure_bytes(), "pythia-6.9b-figure.csv")
    return binning.count_heads(table, binning.build_categories(table))


@pytest.fixture(scope="module")
def figure_svg(figure_counts: binning.Counts) -> str:
    return export.to_svg(layer_chart(figure_counts)).decode()


def test_the_bundled_figure_gives_the_published_counts_and_percents(
    figure_counts: binning.Counts,
) -> None:
    table = figure_counts.table
    assert list(table["layer_bin"].unique()) == ["[0, 8)", "[8, 16)", "[16, 24)", "[24, 32)"]
    assert list(table["category"][:4]) == ["0-25%", "25-50%", "50-75%", "75-100%"]
    assert list(table["color"][:4]) == ["#006400", "#32cd32", "#ff0000", "#8b0000"]
    assert list(table["n_heads"]) == [n for bar in FIGURE_COUNTS for n in bar]
    assert list(table["percent"]) == [p for bar in FIGURE_PERCENTS for p in bar]
    # ... and the percents printed in the file agree with the ones computed from its counts.
    printed = pd.read_csv(io.BytesIO(figure_bytes()))["percent"]
    assert list(printed) == list(table["percent"])


def test_the_svg_has_the_title_axes_and_every_published_percent(figure_svg: str) -> None:
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", figure_svg)
    assert "Pythia 6.9B" in texts
    assert {"Layer", "# heads"} <= set(texts)
    labels = [text for text in texts if text.endswith("%") and "-" not in text]
    expected = [
        f"{p:.1f}%"
        for counts, percents in zip(FIGURE_COUNTS, FIGURE_PERCENTS, strict=True)
        for n, p in zip(counts, percents, strict=True)
        if n > 0
    ]
    # 15 labels: every non-empty segment's, [8, 16)'s one-head segment (8 px, 2.7%) included.
    assert sorted(labels) == sorted(expected) and len(labels) == 15
    assert {"31.4%", "68.0%", "2.7%"} <= set(labels)


def test_a_thin_segments_label_sits_beside_its_bar_at_its_height(
    figure_counts: binning.Counts,
) -> None:
    spec = json.loads(export.to_json(layer_chart(figure_counts)))
    _, inside, beside = spec["layer"]
    tallest = max(sum(bar) for bar in FIGURE_COUNTS)
    thin = [
        (n, p)
        for counts, percents in zip(FIGURE_COUNTS, FIGURE_PERCENTS, strict=True)
        for n, p in zip(counts, percents, strict=True)
        if 0 < n * PANEL_HEIGHT / tallest < MIN_LABEL_HEIGHT
    ]
    assert thin == [(1, 2.7)]  # the only segment too thin to hold its label
    assert beside["mark"]["align"] == "left" and beside["mark"]["dx"] > 0
    assert inside["encoding"]["y"] == beside["encoding"]["y"]  # both at the segment's middle


def test_the_heads_axis_has_whole_number_ticks_and_the_chart_is_landscape(
    figure_svg: str,
) -> None:
    ticks = re.findall(r"<text[^>]*>([0-9.]+)</text>", figure_svg)
    assert ticks and all(tick.isdigit() for tick in ticks)
    width, height = (
        float(v) for v in re.search(r'width="([\d.]+)" height="([\d.]+)"', figure_svg).groups()
    )
    assert width > 1.4 * height


def test_the_spec_stacks_categories_bottom_to_top_in_the_figures_colours(
    figure_counts: binning.Counts,
) -> None:
    spec = json.loads(export.to_json(layer_chart(figure_counts)))
    bars, labels, _ = spec["layer"]
    assert spec["title"] == "Pythia 6.9B"
    assert bars["encoding"]["x"]["title"] == "Layer"
    assert bars["encoding"]["y"]["title"] == "# heads"
    scale = bars["encoding"]["color"]["scale"]
    assert scale["domain"] == ["0-25%", "25-50%", "50-75%", "75-100%"]
    assert scale["range"] == ["#006400", "#32cd32", "#ff0000", "#8b0000"]
    (stack,) = [step for step in bars["transform"] if "stack" in step]
    assert [step for step in labels["transform"] if "stack" in step] == [stack]
    assert stack["sort"] == [{"field": "stack_order"}]  # ascending: first category at the bottom
    rows = spec["data"]["values"]  # inline: no row limit
    assert [row["stack_order"] for row in rows[:4]] == [0, 1, 2, 3]
    assert labels["encoding"]["text"]["field"] == "label"


def test_exports_are_what_their_suffix_says(figure_counts: binning.Counts) -> None:
    chart = layer_chart(figure_counts, "My title")
    assert export.render(".png", chart, figure_counts).startswith(b"\x89PNG\r\n\x1a\n")
    assert json.loads(export.render(".json", chart, figure_counts))["title"] == "My title"
    csv = pd.read_csv(io.BytesIO(export.render(".csv", chart, figure_counts)))
    assert list(csv.columns) == list(binning.COUNT_COLUMNS)
    assert export.file_name("runs/pythia-6.9b.csv", ".svg") == "pythia-6.9b-layer-chart.svg"
    assert export.file_name("pythia 70m @ main", ".png") == "pythia-70m-main-layer-chart.png"


def test_the_counts_csv_reads_back_as_the_same_prebinned_counts(
    figure_counts: binning.Counts,
) -> None:
    again = ht.read_table(ht.to_csv_bytes(figure_counts.table), "counts.csv")
    recount = binning.count_heads(again, binning.build_categories(again))
    pd.testing.assert_frame_equal(recount.table, figure_counts.table)


def test_several_models_are_drawn_side_by_side_each_with_its_own_percents() -> None:
    frame = pd.concat(
        [per_head_frame(4, 2, seed=5, model="Pythia 1"), per_head_frame(8, 2, seed=6, model="P2")]
    )
    table = ht.table_from_frame(frame, "two.csv")
    counts = binning.count_heads(table, binning.score_categories())
    spec = layer_chart(counts).to_dict()
    assert "title" not in spec  # each panel carries its model's name instead
    assert [panel["title"] for panel in spec["concat"]] == ["Pythia 1", "P2"]
    for panel, model in zip(spec["concat"], ["Pythia 1", "P2"], strict=True):
        rows = panel["data"]["values"]
        assert {row["model"] for row in rows} == {model}
    svg = export.to_svg(layer_chart(counts, "Two")).decode()
    assert ">Two<" in svg and ">Pythia 1<" in svg and ">P2<" in svg


def test_labels_are_black_or_white_whichever_contrasts_more() -> None:
    # WCAG contrast with black / white: dark green 2.8 / 7.4, lime green 9.9 / 2.1,
    # red 5.3 / 4.0, dark red 2.1 / 10.0.
    assert label_colors(FIGURE_COLORS) == ["white", "black", "black", "white"]
    assert label_colors(["#000000", "#ffffff"]) == ["white", "black"]
