"""Layer chart panels side by side (Compare runs, Training dynamics' steps): one shared y
scale with headroom, rows that fit a 1280 px page, an empty panel that keeps its title, and
labels beside thin segments clear of the next bar."""

from __future__ import annotations

import pandas as pd

from lib.charts import export
from lib.charts.layer_chart import OUTSIDE_LABEL_ROOM, layer_chart, y_top
from lib.charts.page import AXIS_ROOM, CONTENT_WIDTH
from lib.tables import binning
from lib.tables import head_table as ht
from tests.chart_helpers import per_head_frame


def counts_of(*frames: pd.DataFrame) -> binning.Counts:
    table = ht.table_from_frame(pd.concat(frames, ignore_index=True), "runs.csv")
    return binning.count_heads(table, binning.score_categories())


def y_domains(spec: dict) -> list[list[int]]:
    return [panel["layer"][0]["encoding"]["y"]["scale"]["domain"] for panel in spec["concat"]]


def test_the_axis_top_is_round_and_above_the_tallest_bar() -> None:
    assert [y_top(n) for n in (1, 2, 7, 12, 50, 143)] == [2, 3, 8, 14, 54, 160]
    assert all(y_top(n) > n for n in range(1, 500))


def test_panels_share_one_y_scale() -> None:
    small, tall = per_head_frame(4, 1, seed=1, model="A"), per_head_frame(4, 8, seed=2, model="B")
    spec = layer_chart(counts_of(small, tall)).to_dict()
    tallest = 8  # B: four bins of one layer x 8 heads
    assert y_domains(spec) == [[0, y_top(tallest)]] * 2


def test_an_empty_panel_keeps_its_title_and_both_titles_show() -> None:
    counts = counts_of(per_head_frame(4, 2, seed=3, model="A: run one"))
    spec = layer_chart(counts, "", ["A: run one", "B: run two"]).to_dict()
    assert [panel["title"] for panel in spec["concat"]] == ["A: run one", "B: run two"]
    assert spec["concat"][1]["data"]["values"] == []
    svg = export.to_svg(layer_chart(counts, "", ["A: run one", "B: run two"])).decode()
    assert ">A: run one<" in svg and ">B: run two<" in svg


def test_panels_wrap_to_the_page_width() -> None:
    frames = [per_head_frame(8, 2, seed=s, model=f"step {s}") for s in range(5)]
    spec = layer_chart(counts_of(*frames)).to_dict()
    width = spec["concat"][0]["width"]
    assert spec["columns"] * (width + AXIS_ROOM) <= CONTENT_WIDTH
    assert spec["columns"] < 5
    two = layer_chart(counts_of(*frames[:2])).to_dict()
    assert two["columns"] == 2  # Compare runs: A and B side by side
    # Measured: the widest row of the drawn SVG fits the content column.
    svg = export.to_svg(layer_chart(counts_of(*frames))).decode()
    assert int(float(svg.split('width="', 1)[1].split('"', 1)[0])) <= CONTENT_WIDTH


def test_a_label_beside_a_thin_segment_clears_the_next_bar() -> None:
    # 12 bins of 40 heads, one of them strong: its segment is 1/44 of the axis (7 px), under
    # MIN_LABEL_HEIGHT, so its label goes beside the bar.
    frame = per_head_frame(12, 40, seed=4).assign(score=0.1)
    frame.loc[frame["head"] == 0, "score"] = 0.9
    counts = binning.count_heads(
        ht.table_from_frame(frame, "t.csv"), binning.score_categories(), binning.LayerBinning(1)
    )
    spec = layer_chart(counts).to_dict()
    x = spec["layer"][0]["encoding"]["x"]["scale"]
    width, n = spec["width"], len(x["domain"])
    step = width / (n - x["paddingInner"] + 2 * x["paddingOuter"])
    assert step * x["paddingInner"] >= OUTSIDE_LABEL_ROOM
