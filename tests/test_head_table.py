"""Reading head tables: both forms, score scales, and one specific message per malformed input."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht
from tests.chart_helpers import csv_bytes, figure_bytes, per_head_frame


def test_the_figure_csv_reads_as_a_prebinned_table_with_its_colours() -> None:
    table = ht.read_table(figure_bytes(), "pythia-6.9b-figure.csv")
    assert isinstance(table, ht.BinnedTable)
    assert table.categories == ("0-25%", "25-50%", "50-75%", "75-100%")
    assert table.colors == ("#006400", "#32cd32", "#ff0000", "#8b0000")
    assert table.frame[ht.N_HEADS].sum() == 138
    assert set(table.frame[ht.MODEL]) == {"Pythia 6.9B"}


def test_the_engine_table_reads_as_is() -> None:
    engine = pd.DataFrame(
        {
            "model": "EleutherAI/pythia-70m",
            "revision": "main",
            "layer": [0, 0, 1],
            "head": [0, 1, 0],
            "score_name_copying": [0.5, 0.0, 1.0],
            "suppression_name_copying": [0.0, 0.25, 0.0],
            "induction": [0.1, 0.9, 0.0],
            "label": ["name_copying", "suppression: name_copying", "unclassified"],
            "score": [0.5, 0.25, 0.0],
        }
    )
    table = ht.read_table(csv_bytes(engine), "engine.csv")
    assert isinstance(table, ht.HeadTable)
    assert table.numeric_columns == (
        "score_name_copying", "suppression_name_copying", "induction", "score",
    )  # fmt: skip
    assert table.text_columns == ("revision", "label")
    assert list(table.frame.index) == [2, 3, 4]  # spreadsheet row numbers
    same = ht.table_from_frame(engine, "engine (in memory)")
    pd.testing.assert_frame_equal(same.frame, table.frame)


def test_a_file_without_a_model_column_is_one_model_named_after_the_file() -> None:
    table = ht.read_table(b"layer,score\n0,0.5\n", "runs/my heads.csv")
    assert isinstance(table, ht.HeadTable)
    assert list(table.frame[ht.MODEL]) == ["my heads"]


def test_spaces_around_names_and_values_and_blank_lines_are_ignored() -> None:
    table = ht.read_table(b" layer , score \n 3 , 0.5 \n\n 4 , 0.25\n", "x.csv")
    assert isinstance(table, ht.HeadTable)
    assert list(table.frame[ht.LAYER]) == [3, 4]
    assert list(table.frame.index) == [2, 4]  # the blank row 3 keeps its number


@pytest.mark.parametrize(
    ("cells", "scale", "fractions"),
    [
        ("0,0.25,1", "fraction", [0, 0.25, 1]),
        ("0,25,100", "percent", [0, 0.25, 1]),
        ("0,1,57", "percent", [0, 0.01, 0.57]),
    ],
)
def test_scores_are_read_as_fractions_or_percents_and_said_so(
    cells: str, scale: str, fractions: list[float]
) -> None:
    rows = "\n".join(f"{i},{value}" for i, value in enumerate(cells.split(",")))
    table = ht.read_table(f"layer,score\n{rows}\n".encode(), "x.csv")
    assert isinstance(table, ht.HeadTable)
    reading = ht.score_fractions(table, "score")
    assert reading.scale == scale
    assert list(reading.fractions) == fractions
    assert f"as {scale}s" in reading.note


def test_a_column_mixing_fractions_and_percents_is_refused_naming_both() -> None:
    table = ht.read_table(b"layer,score\n0,0\n1,0.5\n2,45\n", "x.csv")
    message = (
        "x.csv, column 'score' mixes fractions and percents: '0.5' (row 3) reads as a "
        "fraction, '45' (row 4) as a percent; write every score one way"
    )
    with pytest.raises(InputError, match=re.escape(message)):
        ht.score_fractions(table, "score")


def test_one_repeated_row_is_one_row() -> None:
    table = ht.read_table(b"layer,head,score\n0,0,0.5\n0,0,0.25\n", "x.csv", repeated="first")
    assert table.notes[0].startswith("1 row repeating a head of an earlier row was left out")


MALFORMED = [
    (b"", "x.csv is empty"),
    (b"  \n\n", "x.csv is empty"),
    (b"layer,score\n", "x.csv has a header but no data rows"),
    (b"layer,score\n1,0.5\n\xff\xfe\n", "not UTF-8 text (byte 0xff in row 3)"),
    (b"layer,score\n1,0.5\n2,0.5,9\n", "not a valid CSV: row 3 has 3 fields, the header has 2"),
    (b"layer\x00,score\n1,2\n", "NUL bytes"),
    (b"\nlayer,score\n1,0.5\n", "row 1 is empty; the column names must be on row 1"),
    (b'layer,score\n1,"0.5\n', "the quote opened in row 2 is never closed"),
    (b"head,score\n1,0.5\n", "no column 'layer'"),
    (b"Layer,score\n1,0.5\n", "rename column 'Layer' to 'layer'"),
    (b"layer;score\n1;0.5\n", "semicolon-separated"),
    (b"layer,layer\n1,2\n", "columns 1 and 2 are both named 'layer'"),
    (b",layer\n0,1\n", "column 1 of the header has no name"),
    (b"layer,score\n1,0.5\n2.5,0.5\n", "row 3, column 'layer': '2.5' is not a whole number"),
    (b"layer,score\n-1,0.5\n", "row 2, column 'layer': '-1' is negative"),
    (b"layer,score\nfirst,0.5\n", "row 2, column 'layer': 'first' is not a number"),
    (b"layer,score\nnan,0.5\n", "row 2, column 'layer': 'nan' is NaN or infinite"),
    (b"layer,score\ninf,0.5\n", "row 2, column 'layer': 'inf' is NaN or infinite"),
    (b"layer,score\n,0.5\n0,0.5\n", "row 2, column 'layer': the cell is empty"),
    (b"layer,score\n99999999,0.5\n", "is above 1,000,000"),
    (
        b"layer,head,score\n0,1,0.5\n0,2,0.5\n0,1,0.7\n",
        "row 4, which repeats row 2 (model 'x' layer 0 head 1)",
    ),
    (b"model,layer,score\n,1,0.5\n", "row 2, column 'model': the cell is empty"),
    (b"layer_start,layer_end,n_heads\n0,8,3\n", "looks pre-binned but has no column 'category'"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_each_malformed_file_gets_one_specific_message(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        ht.read_table(data, "x.csv")
    assert message in str(caught.value)
    assert str(caught.value).startswith("x.csv")
    assert "\n" not in str(caught.value)


BAD_SCORES = [
    ("0.5\nnan", "row 3, column 'score': the cell is empty or NaN"),
    ("0.5\n", "row 3, column 'score': the cell is empty or NaN"),
    ("0.5\ninf", "row 3, column 'score': 'inf' is infinite"),
    ("0.5\n-0.1", "row 3, column 'score': '-0.1' is negative"),
    ("50\n100.5", "row 3, column 'score': '100.5' is above 100"),
]


@pytest.mark.parametrize(("cells", "message"), BAD_SCORES)
def test_bad_scores_are_named_by_row_and_column(cells: str, message: str) -> None:
    rows = "\n".join(f"{i},{cell}" for i, cell in enumerate(cells.split("\n")))
    table = ht.read_table(f"layer,score\n{rows}\n".encode(), "x.csv")
    assert isinstance(table, ht.HeadTable)
    with pytest.raises(InputError, match=re.escape(message)):
        ht.score_fractions(table, "score")


def test_choosing_a_text_or_missing_column_as_scores_is_explained() -> None:
    table = ht.read_table(b"layer,label,score\n0,induction,0.5\n", "x.csv")
    assert isinstance(table, ht.HeadTable)
    with pytest.raises(InputError, match="'label' holds text"):
        ht.score_fractions(table, "label")
    with pytest.raises(InputError, match="did you mean 'score'"):
        ht.score_fractions(table, "scores")


def test_too_many_rows_is_refused() -> None:
    three = ht.ReadLimits(max_rows=3)
    assert isinstance(ht.read_table(b"layer\n0\n1\n2\n", "x.csv", three), ht.HeadTable)
    with pytest.raises(InputError, match=re.escape("x.csv has more than 3 data rows")):
        ht.read_table(b"layer\n0\n1\n2\n3\n", "x.csv", three)
    with pytest.raises(InputError, match="more than 3 data rows"):
        ht.table_from_frame(pd.DataFrame({"layer": range(4)}), "x", three)
    assert ht.MAX_ROWS == 1_000_000


BAD_PREBINNED = [
    ("0,8,a,1\n8,8,a,1", "row 3: layer_end 8 must be larger than layer_start 8"),
    ("0,8,a,1\n4,12,a,1", "overlapping bins [0, 8) and [4, 12) (rows 2 and 3)"),
    ("0,8,a,1\n0,8,a,2", "rows 2 and 3 both describe model 'x' bin [0, 8) category 'a'"),
    ("0,8,a,1.5", "row 2, column 'n_heads': '1.5' is not a whole number"),
]


@pytest.mark.parametrize(("rows", "message"), BAD_PREBINNED)
def test_bad_prebinned_rows_are_named(rows: str, message: str) -> None:
    data = f"layer_start,layer_end,category,n_heads\n{rows}\n".encode()
    with pytest.raises(InputError, match=re.escape(message)):
        ht.read_table(data, "x.csv")


def test_prebinned_percents_and_colours_must_agree_with_the_rest() -> None:
    header = "layer_start,layer_end,category,n_heads,percent,color_name\n"
    wrong_percent = header + "0,8,a,1,25.0,red\n0,8,b,1,50.0,blue\n"
    with pytest.raises(InputError, match=r"row 2, column 'percent': 25 disagrees .*= 50.0%"):
        ht.read_table(wrong_percent.encode(), "x.csv")
    two_colours = header + "0,8,a,1,50,red\n8,16,a,1,100,blue\n0,8,b,1,50,green\n"
    with pytest.raises(InputError, match="category 'a' is #ff0000 in an earlier row and #0000ff"):
        ht.read_table(two_colours.encode(), "x.csv")
    not_a_colour = header + "0,8,a,1,100,reddish\n"
    with pytest.raises(InputError, match="row 2, column 'color_name': 'reddish' is not a colour"):
        ht.read_table(not_a_colour.encode(), "x.csv")


def test_written_text_cells_cannot_run_as_spreadsheet_formulas() -> None:
    frame = pd.DataFrame(
        {"name": ["=1+1", "+cmd", "-2", "@sum", "safe", "a=b"], "value": [-1, 2, 3, 4, 5, 6]}
    )
    written = pd.read_csv(io.BytesIO(ht.to_csv_bytes(frame)))
    assert list(written["name"]) == ["'=1+1", "'+cmd", "'-2", "'@sum", "safe", "a=b"]
    assert list(written["value"]) == [-1, 2, 3, 4, 5, 6]  # numbers are left alone


# Hypothesis: whatever the bytes, reading (and then counting with the defaults) either works
# or raises InputError, never anything else.
CSV_PIECES = st.sampled_from(
    ["layer", "head", "model", "score", "label", "layer_start", "layer_end", "category",
     "n_heads", "percent", "color", ",", ",", "\n", "\n", "\r\n", '"', "0", "1", "7", "-1",
     "0.5", "50", "1e3", "nan", "inf", " ", "", "red", "#zz", "\xe9", "=", "9999999"]
)  # fmt: skip


def _read_and_count(data: bytes) -> None:
    try:
        table = ht.read_table(data, "fuzz.csv")
        if isinstance(table, ht.HeadTable):
            for column in table.numeric_columns:
                ht.score_fractions(table, column)
        if isinstance(table, ht.BinnedTable):
            categories = binning.build_categories(table)
        elif (column := binning.default_column(table)) in table.text_columns:
            categories = binning.build_categories(table, category_column=column)
        else:
            categories = binning.build_categories(table, score_column=column)
        binning.count_heads(table, categories)
    except InputError as error:
        assert str(error) and "\n" not in str(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CSV_PIECES, max_size=40).map(lambda pieces: "".join(pieces).encode()))
def test_any_csv_like_text_gets_a_table_or_a_message(data: bytes) -> None:
    _read_and_count(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_get_a_table_or_a_message(data: bytes) -> None:
    _read_and_count(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3), st.data())
def test_one_corrupted_cell_of_a_good_table_gets_a_message(row: int, data: st.DataObject) -> None:
    frame = per_head_frame(2, 2, seed=0).astype(str)
    column = data.draw(st.sampled_from(list(frame.columns)))
    frame.loc[row, column] = data.draw(st.sampled_from(["", "nan", "-inf", "1.5", "-3", "x"]))
    _read_and_count(csv_bytes(frame))
