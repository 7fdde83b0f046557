"""Malformed uploads, fuzzed through the uploader's path: read, categorise, count, draw, export.

Whatever a visitor uploads (other encodings, byte-order marks, huge or negative numbers,
NaN/inf, a million rows, extra columns, spreadsheet formulas in text cells), the app either
draws it or says what is wrong in one line; exported CSVs never carry a runnable formula.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.charts import export
from lib.charts.layer_chart import layer_chart
from lib.core.errors import InputError
from lib.tables import binning
from lib.tables import head_table as ht

NASTY_CELLS = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "-1", "-0.5", "1.5", "101",
    "99999999999999999999999", "0x10", "1,5", "true", "'", '"', "\u00e9", "\u0000",
    '=HYPERLINK("http://example.invalid","click")', "+1+1", "-2+3", "@SUM(A1)", "\tx",
]  # fmt: skip
GOOD_CELLS = ["0", "1", "2", "3", "0.25", "0.5", "0.75", "1.0", "50", "name_copying"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
FORMULA_STARTS = tuple(ht.FORMULA_PREFIXES)


def upload(data: bytes, name: str = "upload.csv") -> bytes | None:
    """What the chart page does with an upload; the counts CSV it offers, None on a message."""
    try:
        table = ht.read_table(data, name)
        column = None if isinstance(table, ht.BinnedTable) else binning.default_column(table)
        text = isinstance(table, ht.HeadTable) and column in table.text_columns
        categories = binning.build_categories(
            table,
            score_column=None if text else column,
            category_column=column if text else None,
        )
        counts = binning.count_heads(table, categories)
        export.to_json(layer_chart(counts))
        return export.render(".csv", layer_chart(counts), counts)
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message
        return None


def assert_no_formula(csv_bytes: bytes) -> None:
    written = pd.read_csv(io.BytesIO(csv_bytes), dtype=str, keep_default_na=False)
    for column in written.columns:
        assert not column.startswith(FORMULA_STARTS)
        assert not written[column].str.startswith(FORMULA_STARTS).any(), column


@st.composite
def per_head_csv(draw: st.DrawFn) -> bytes:
    """A per-head table with random extra columns, some cells nasty, in some encoding."""
    n_rows = draw(st.integers(1, 12))
    extra = draw(st.lists(st.sampled_from(["note", "label", "x", "=cmd", "score2"]), max_size=2))
    header = ["layer", "head", "score", *dict.fromkeys(extra)]
    cell = st.one_of(st.sampled_from(GOOD_CELLS), st.sampled_from(NASTY_CELLS))
    rows = [[str(r), str(h), draw(cell), *(draw(cell) for _ in header[3:])] for r, h in
            zip(range(n_rows), draw(st.permutations(range(n_rows))), strict=True)]  # fmt: skip
    if draw(st.booleans()):  # corrupt one layer or head cell
        rows[draw(st.integers(0, n_rows - 1))][draw(st.integers(0, 1))] = draw(cell)
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=header).to_csv(buffer, index=False)
    encoding = draw(st.sampled_from(ENCODINGS))
    return buffer.getvalue().encode(encoding, errors="replace")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_head_csv())
def test_any_upload_is_drawn_or_gets_one_line(data: bytes) -> None:
    exported = upload(data)
    if exported is not None:
        assert_no_formula(exported)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NASTY_CELLS), st.sampled_from(["model", "label", "category"]))
def test_formula_text_cells_are_exported_as_text(cell: str, column: str) -> None:
    frame = pd.DataFrame({"layer": [0, 1], "head": [0, 0], column: [cell or "x", "=1+1"]})
    if column == "category":
        frame = frame.rename(columns={"layer": "layer_start", "head": "n_heads"})
        frame["layer_end"] = frame["layer_start"] + 1
    exported = upload(ht.to_csv_bytes(frame))
    if exported is not None:
        assert_no_formula(exported)


def test_a_byte_order_mark_is_read_and_other_encodings_are_named() -> None:
    text = "layer,head,score\n0,0,0.5\n1,0,0.25\n"
    assert upload(text.encode("utf-8-sig")) is not None
    for encoding in ("utf-16", "latin-1"):
        with pytest.raises(InputError, match="is not UTF-8 text"):
            ht.read_table((text + "2,0,caf\u00e9\n").encode(encoding), "x.csv")


def test_a_million_rows_are_read_and_one_more_is_refused() -> None:
    rows = "\n".join(f"{i // 1000},{i % 1000},0.5" for i in range(ht.MAX_ROWS))
    data = f"layer,head,score\n{rows}\n".encode()
    assert len(ht.read_table(data, "big.csv").frame) == ht.MAX_ROWS
    with pytest.raises(InputError, match="more than 1,000,000 data rows"):
        ht.read_table(data + b"1000,0,0.5\n", "big.csv")
