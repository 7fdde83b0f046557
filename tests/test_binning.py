"""Layer bins, categories and the counts table, checked against planted answers and a slow
reference count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.core.colors import NEUTRAL_COLOR, palette
from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht
from lib.tables.labels import UNCLASSIFIED
from tests.chart_helpers import figure_bytes, per_head_frame, reference_counts


def head_table(frame: pd.DataFrame) -> ht.HeadTable:
    table = ht.table_from_frame(frame, "heads.csv")
    assert isinstance(table, ht.HeadTable)
    return table


def figure() -> ht.BinnedTable:
    table = ht.read_table(figure_bytes(), "pythia-6.9b-figure.csv")
    assert isinstance(table, ht.BinnedTable)
    return table


def n_heads_by_bin(counts: binning.Counts) -> list[list[int]]:
    return [list(rows["n_heads"]) for _, rows in counts.table.groupby("layer_bin", sort=False)]


@pytest.mark.parametrize(
    ("n_layers", "edges"),
    [
        (32, (0, 8, 16, 24, 32)),
        (24, (0, 6, 12, 18, 24)),
        (36, (0, 9, 18, 27, 36)),
        (6, (0, 2, 4, 6)),
    ],
)
def test_default_bins_are_four_equal_bins_over_the_models_layers(
    n_layers: int, edges: tuple[int, ...]
) -> None:
    table = head_table(per_head_frame(n_layers, 1, seed=0))
    assert binning.default_layer_bins(table).edges == edges


def test_bins_are_labelled_half_open_and_cover_the_last_layer() -> None:
    assert binning.bins_of_width(8, 32).labels == ("[0, 8)", "[8, 16)", "[16, 24)", "[24, 32)")
    assert binning.bins_of_width(8, 30).edges == (0, 8, 16, 24, 30)  # never past the model


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ((0,), "at least two"),
        ((0, 8, 8), "must increase"),
        ((8, 0), "must increase"),
        ((-8, 0), "whole numbers >= 0"),
    ],
)
def test_bad_layer_edges_are_refused(edges: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        binning.LayerBins(edges)


def test_edges_are_parsed_from_text_or_refused() -> None:
    assert binning.parse_layer_edges(" 0, 16 ,32") == (0, 16, 32)
    assert binning.parse_score_edges("0, 12.5, 100") == (0, 12.5, 100)
    with pytest.raises(InputError, match="layer edges must be whole numbers"):
        binning.parse_layer_edges("0, 7.5, 16")
    with pytest.raises(InputError, match="score edges: 'x' is not a number"):
        binning.parse_score_edges("0, x")
    with pytest.raises(InputError, match="more than 1,000 bins"):
        binning.bins_of_width(1, 5000)


def test_score_categories_are_half_open_except_the_last() -> None:
    # One head on each edge and one inside each category.
    scores = [0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9, 1.0]
    table = head_table(pd.DataFrame({"layer": 0, "head": range(9), "score": scores}))
    counts = binning.count_heads(table, binning.score_categories())
    assert list(counts.table["category"]) == ["0-25%", "25-50%", "50-75%", "75-100%"]
    assert list(counts.table["n_heads"]) == [2, 2, 2, 3]
    assert counts.categories.ranges()[0] == "0-25%: score in [0%, 25%)"
    assert counts.categories.ranges()[-1] == "75-100%: score in [75%, 100%]"


def test_a_percent_score_on_an_edge_falls_in_the_category_above_it() -> None:
    # A score of 57 (percent) and the edge 57 % both become 57 / 100: the same double.
    table = head_table(pd.DataFrame({"layer": [0, 0], "score": [57, 56.99]}))
    counts = binning.count_heads(table, binning.score_categories(edges_percent=(0, 57, 100)))
    assert list(counts.table["n_heads"]) == [1, 1]
    assert "as percents" in counts.notes[0]


def test_heads_outside_the_edges_are_reported_not_dropped() -> None:
    frame = pd.DataFrame({"layer": [0, 1, 5, 9, 9], "score": [0.1, 0.1, 0.1, 0.1, 0.9]})
    counts = binning.count_heads(
        head_table(frame),
        binning.score_categories(edges_percent=(0, 50)),
        binning.LayerBinning(edges=(1, 6)),
    )
    assert counts.table["n_heads"].sum() == 2  # layers 1 and 5, score 0.1
    assert counts.outside_layers["n_heads"].sum() == 2  # layer 0, layer 9 (score 0.1)
    assert list(counts.outside_scores.index) == [6]  # row 6: layer 9, score 0.9
    message = binning.describe_outside(counts)
    assert message is not None
    assert "2 heads lie outside the layer bins (heads layer 0: 1; heads layer 9: 1)" in message
    assert "1 heads have a 'score' outside the score edges [0%, 50%] (rows 6)" in message


def test_left_out_heads_are_listed_briefly_and_empty_bins_not_at_all() -> None:
    frame = pd.DataFrame({"layer": range(20), "score": 0.5})
    counts = binning.count_heads(
        head_table(frame), binning.score_categories(), binning.LayerBinning(edges=(0, 1))
    )
    message = binning.describe_outside(counts)
    assert message is not None
    assert message.startswith("19 heads lie outside the layer bins (heads layer 1: 1; ")
    assert message.endswith("heads layer 10: 1; ...)")
    empty_outside = ht.read_table(
        b"layer_start,layer_end,category,n_heads\n0,8,a,3\n8,16,a,0\n", "x.csv"
    )
    counts = binning.count_heads(
        empty_outside, binning.build_categories(empty_outside), binning.LayerBinning(edges=(0, 8))
    )
    assert binning.describe_outside(counts) is None


def test_the_counts_table_lists_every_pair_with_zeros_in_order() -> None:
    frame = pd.DataFrame({"layer": [7], "score": [0.8]})
    counts = binning.count_heads(head_table(frame), binning.score_categories())
    assert tuple(counts.table.columns) == binning.COUNT_COLUMNS
    bins = ["[0, 2)", "[2, 4)", "[4, 6)", "[6, 8)"]
    assert list(counts.table["layer_bin"]) == [label for label in bins for _ in range(4)]
    assert list(counts.table["n_heads"]) == [0] * 15 + [1]
    assert list(counts.table["percent"]) == [0.0] * 15 + [100.0]


def test_prebinned_counts_merge_into_coarser_bins_but_never_split() -> None:
    categories = binning.build_categories(figure())
    merged = binning.count_heads(figure(), categories, binning.LayerBinning(edges=(0, 16, 32)))
    assert n_heads_by_bin(merged) == [[26, 25, 3, 18], [35, 16, 7, 8]]
    with pytest.raises(InputError, match=r"row 2: its bin \[0, 8\) would be split"):
        binning.count_heads(figure(), categories, binning.LayerBinning(width=6))


def test_a_text_column_gives_one_category_per_value_renamable_and_recoloured() -> None:
    frame = pd.DataFrame({"layer": [0, 0, 0], "label": ["induction", "copying", "induction"]})
    categories = binning.build_categories(
        head_table(frame), category_column="label", names=["copy", "ind"], colors=["#000000"] * 2
    )
    counts = binning.count_heads(head_table(frame), categories)
    plain = binning.build_categories(head_table(frame), category_column="label")
    assert plain.ranges() == ("heads whose label is 'copying'", "heads whose label is 'induction'")
    assert categories.ranges() == (
        "copy: heads whose label is 'copying'",
        "ind: heads whose label is 'induction'",
    )
    assert list(counts.table["category"]) == ["copy", "ind"]  # one bin: layers [0, 1)
    assert list(counts.table["n_heads"]) == [1, 2]


@pytest.mark.parametrize(
    ("names", "colors", "message"),
    [
        (["a", "a", "b", "c"], None, "must differ"),
        (["a", " ", "b", "c"], None, "must not be empty"),
        (["a", "b"], None, "4 categories need 4 names"),
        (None, ["red", "green", "blue", "reddish"], "'reddish' is not a colour"),
    ],
)
def test_bad_names_or_colours_are_refused(
    names: list[str] | None, colors: list[str] | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        binning.restyle(binning.score_categories(), names, colors)


def test_a_boolean_column_handed_over_in_memory_is_a_category_column() -> None:
    frame = pd.DataFrame({"layer": [0, 0, 0], "induction_head": [True, False, True]})
    table = head_table(frame)
    assert table.text_columns == ("induction_head",)
    counts = binning.count_heads(
        table, binning.build_categories(table, category_column="induction_head")
    )
    assert list(counts.table["category"]) == ["False", "True"]
    assert list(counts.table["n_heads"]) == [1, 2]


def test_colours_may_be_given_in_any_case_or_by_name_and_are_stored_as_hex() -> None:
    colors = ["#FFA500", "navy", "#abc", "Dark Red"]
    restyled = binning.restyle(binning.score_categories(), colors=colors)
    assert restyled.colors == ("#ffa500", "#000080", "#aabbcc", "#8b0000")
    with pytest.raises(InputError, match="not a #rrggbb hex code"):
        binning.ScoreCategories("score", (0, 1), ("all",), ("red",))


def test_several_models_get_their_own_default_bins() -> None:
    frame = pd.concat(
        [per_head_frame(32, 2, seed=1, model="big"), per_head_frame(24, 2, seed=2, model="small")]
    )
    counts = binning.count_heads(head_table(frame), binning.score_categories())
    bins = counts.table.groupby("model", sort=False)["layer_bin"].unique()
    assert list(bins["big"]) == ["[0, 8)", "[8, 16)", "[16, 24)", "[24, 32)"]
    assert list(bins["small"]) == ["[0, 6)", "[6, 12)", "[12, 18)", "[18, 24)"]
    assert (counts.table.groupby("model")["n_heads"].sum() == [64, 48]).all()


def test_some_heads_of_a_model_are_binned_over_the_whole_models_depth() -> None:
    whole = per_head_frame(32, 2, seed=3, model="big")
    shallow = whole[whole["layer"] < 20]  # e.g. a population with no head past layer 19
    assert ht.model_depths(whole) == (("big", 32),)
    alone = head_table(shallow)
    assert binning.default_layer_bins(alone).edges == (0, 5, 10, 15, 20)
    kept_depth = dataclasses.replace(alone, depths=ht.model_depths(whole))
    assert binning.default_layer_bins(kept_depth).edges == (0, 8, 16, 24, 32)
    counts = binning.count_heads(kept_depth, binning.score_categories())
    assert counts.table["layer_bin"].unique().tolist()[-1] == "[24, 32)"
    assert counts.table.groupby("layer_bin", sort=False)["n_heads"].sum().tolist() == [16, 16, 8, 0]
    widths = binning.LayerBinning(width=10)
    assert binning.count_heads(kept_depth, binning.score_categories(), widths).table[
        "layer_bin"
    ].unique().tolist() == ["[0, 10)", "[10, 20)", "[20, 30)", "[30, 32)"]


def test_300_heads_over_24_layers_in_bins_of_6_match_a_count_by_hand() -> None:
    frame = per_head_frame(24, 13, seed=3).iloc[:300]
    counts = binning.count_heads(
        head_table(frame), binning.score_categories(), binning.LayerBinning(width=6)
    )
    expected = reference_counts(
        frame["layer"], frame["score"], (0, 6, 12, 18, 24), (0, 0.25, 0.5, 0.75, 1)
    )
    got = {(i // 4, i % 4): n for i, n in enumerate(counts.table["n_heads"])}
    assert got == {key: expected[key] for key in got}
    assert sum(got.values()) == 300


# Property tests on random tables: counts equal the slow reference, they sum to the heads
# inside the bins, and each non-empty bar's percents sum to 100 within rounding.
@st.composite
def tables_and_bins(draw: st.DrawFn) -> tuple[pd.DataFrame, tuple[int, ...], tuple[float, ...]]:
    n = draw(st.integers(1, 60))
    layers = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    scores = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))  # percents
    layer_edges = tuple(sorted(draw(st.sets(st.integers(0, 45), min_size=2, max_size=8))))
    score_edges = tuple(sorted(draw(st.sets(st.integers(0, 100), min_size=2, max_size=6))))
    frame = pd.DataFrame({"layer": layers, "score": [s / 100 for s in scores]})
    return frame, layer_edges, score_edges


@settings(max_examples=80, deadline=None)
@given(tables_and_bins())
def test_counts_match_a_slow_reference_and_percents_sum_to_100(
    case: tuple[pd.DataFrame, tuple[int, ...], tuple[float, ...]],
) -> None:
    frame, layer_edges, score_edges = case
    categories = binning.score_categories(edges_percent=score_edges)
    counts = binning.count_heads(
        head_table(frame), categories, binning.LayerBinning(edges=layer_edges)
    )
    expected = reference_counts(
        frame["layer"], frame["score"], layer_edges, [e / 100 for e in score_edges]
    )
    n_categories = len(score_edges) - 1
    got = {(i // n_categories, i % n_categories): n for i, n in enumerate(counts.table["n_heads"])}
    assert got == {key: expected[key] for key in got}
    inside = sum(expected.values())
    assert counts.table["n_heads"].sum() == inside
    left_out = counts.outside_layers["n_heads"].sum() + len(counts.outside_scores)
    assert inside + left_out == len(frame)
    for _, bar in counts.table.groupby("layer_bin", sort=False):
        if bar["n_heads"].sum():
            assert abs(bar["percent"].sum() - 100) <= 0.05 * n_categories + 1e-9
        else:
            assert (bar["percent"] == 0).all()


def test_a_large_table_counts_like_a_numpy_histogram() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"layer": rng.integers(0, 36, 40_000), "score": rng.random(40_000)})
    counts = binning.count_heads(
        head_table(frame), binning.score_categories(edges_percent=(0, 100))
    )
    histogram, _ = np.histogram(frame["layer"], bins=(0, 9, 18, 27, 36))
    assert list(counts.table["n_heads"]) == list(histogram)


def test_score_colours_follow_the_categorys_position_whatever_the_edges() -> None:
    four = binning.score_categories("score", (0, 25, 50, 75, 100)).colors
    three = binning.score_categories("score", (0, 10, 60, 100)).colors
    six = binning.score_categories("score", (0, 10, 20, 30, 40, 50, 100)).colors
    assert three == four[:3] and six[:4] == four
    assert four == ("#006400", "#32cd32", "#ff0000", "#8b0000")  # the published figure's


def test_a_prebinned_table_offers_the_widths_and_edges_that_merge_its_bins() -> None:
    assert binning.merge_widths(figure()) == (8, 16, 24, 32)
    assert binning.merge_edges(figure()) == (0, 8, 16, 24, 32)
    for width in binning.merge_widths(figure()):  # each offered width counts every head
        counts = binning.count_heads(
            figure(), binning.build_categories(figure()), binning.LayerBinning(width=width)
        )
        assert counts.table["n_heads"].sum() == 138
        assert counts.table["layer_end"].max() == 32  # never an edge past the model


def test_layer_bins_fit_a_table_when_they_end_within_its_layers_or_merge_its_bins() -> None:
    two_models = pd.concat(
        [per_head_frame(8, 1, seed=1, model="a"), per_head_frame(12, 1, seed=2, model="b")]
    )
    fits = binning.check_layers_fit
    for layers in (binning.LayerBinning(width=12), binning.LayerBinning(edges=(2, 6, 12))):
        fits(head_table(two_models), layers)  # the deepest model has 12 layers
    for layers in (binning.LayerBinning(width=13), binning.LayerBinning(edges=(0, 13))):
        with pytest.raises(InputError, match=r"^heads.csv has 12 layers$"):
            fits(head_table(two_models), layers)
    fits(figure(), binning.LayerBinning(width=16))
    fits(figure(), binning.LayerBinning(edges=(8, 24)))
    for layers in (binning.LayerBinning(width=12), binning.LayerBinning(edges=(0, 12, 32))):
        with pytest.raises(InputError, match="would split the file's bins"):
            fits(figure(), layers)


def test_unclassified_is_grey_and_the_findings_keep_their_hues() -> None:
    frame = pd.DataFrame({"layer": [0, 0, 0], "label": ["induction", UNCLASSIFIED, "copying"]})
    plain = binning.build_categories(head_table(frame), category_column="label")
    assert plain.names == ("copying", "induction", UNCLASSIFIED)
    assert plain.colors == (*palette(2), NEUTRAL_COLOR)
