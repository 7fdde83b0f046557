"""Hostile inputs to the one CSV reader (`head_table.read_file`) that the Layer chart page and
`python -m lib.chart` share: blank-line floods around the row cap, wide files, endless and binary
inputs, a time budget, stray text in a score column, repeated heads, absurd bins and huge counts
tables. Each ends in the right table or one line (CLI: exit code 2), never a traceback."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from lib.chart import main
from lib.charts import export
from lib.charts.layer_chart import layer_chart
from lib.core.errors import EXIT_BAD_INPUT, InputError, run_cli
from lib.scoring.relation_files import read_relation_file, relation_files_from, relation_name
from lib.tables import binning
from lib.tables import head_table as ht
from tests.chart_helpers import FIGURE_CSV


def rows_with_blank_lines(n: int, blank_every: int = 1) -> bytes:
    """`layer,head,score` and n distinct heads, a blank line after every `blank_every` rows."""
    lines = ["layer,head,score"]
    for i in range(n):
        lines.append(f"{i // 1000},{i % 1000},0.5")
        if i % blank_every == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode()


def chart_cli(*args: str | Path) -> int:
    return run_cli(main, [str(arg) for arg in args])


def test_blank_lines_never_use_up_the_row_budget() -> None:
    data = rows_with_blank_lines(60_000)  # 120,001 lines; the old budget counted them all
    assert len(ht.read_table(data, "spaced.csv", ht.ReadLimits(max_rows=100_000)).frame) == 60_000


def test_blank_lines_never_let_rows_slip_under_the_cap() -> None:
    data = rows_with_blank_lines(100_005, blank_every=20_001)  # 100,005 rows + 5 blank lines
    with pytest.raises(InputError, match=r"spaced\.csv has more than 100,000 data rows"):
        ht.read_table(data, "spaced.csv", ht.ReadLimits(max_rows=100_000))


def test_the_command_line_counts_every_row_it_keeps(tmp_path: Path) -> None:
    path = tmp_path / "spaced.csv"
    path.write_bytes(rows_with_blank_lines(520_000))  # 1,040,001 lines, a 1,000,000-row cap
    out = tmp_path / "counts.csv"
    assert chart_cli(path, "--out", out) == 0
    assert pd.read_csv(out)["n_heads"].sum() == 520_000


def test_a_stray_text_cell_in_a_score_column_is_refused_on_page_and_command_line_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b"layer,head,score\n0,0,0.5\n0,1,abc\n1,0,0.7\n"
    message = "stray.csv, row 3, column 'score': 'abc' is not a number"
    with pytest.raises(InputError, match=message):
        ht.read_file(io.BytesIO(data), "stray.csv")  # the page's call, on the uploaded file
    (tmp_path / "stray.csv").write_bytes(data)
    assert chart_cli(tmp_path / "stray.csv", "--out", tmp_path / "x.csv") == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    # A column that is mostly numbers is a score column whatever its name...
    with pytest.raises(InputError, match=r"row 4, column 'copying': 'n/a' is not a number"):
        ht.read_table(b"layer,copying\n0,0.5\n1,0.7\n2,n/a\n", "x.csv")
    # ... while a text column stays text, and empty cells stay allowed in a score column.
    table = ht.read_table(b"layer,label,copying\n0,induction,0.5\n1,7,\n", "x.csv")
    assert isinstance(table, ht.HeadTable)
    assert table.text_columns == ("label",) and table.numeric_columns == ("copying",)


def test_a_wide_file_is_refused_by_its_header_alone() -> None:
    header = ",".join(f"c{i}" for i in range(20_000))
    data = f"layer,{header}\n" + "0," + ",".join(["1"] * 20_000) + "\n"
    with pytest.raises(InputError, match=r"wide\.csv has 20,001 columns, more than 500"):
        ht.read_table(data.encode(), "wide.csv")
    wide = pd.DataFrame({f"c{i}": [0] for i in range(600)}).assign(layer=0)
    with pytest.raises(InputError, match="601 columns, more than 500"):
        ht.table_from_frame(wide, "handed over")


class Endless(io.RawIOBase):
    """A stream that never ends (like `yes 0,0.5 |`), counting the bytes it gave."""

    def __init__(self, line: bytes) -> None:
        self.line, self.given = line, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = (self.line * (size // len(self.line) + 1))[:size]
        self.given += len(chunk)
        return chunk


def test_endless_and_binary_inputs_are_read_to_a_byte_budget_at_most(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = Endless(b"0,0.5\n")
    with pytest.raises(InputError, match=r"endless is larger than 1 MiB"):
        ht.read_file(stream, "endless", ht.ReadLimits(max_bytes=2**20))
    assert stream.given <= 2**20 + 1
    zeros = Endless(b"\x00")
    with pytest.raises(InputError, match="contains NUL bytes"):
        ht.read_file(zeros, "zero")
    assert zeros.given <= ht.READ_CHUNK_BYTES  # refused on its first chunk
    assert chart_cli("/dev/zero", "--out", tmp_path / "x.csv") == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: zero contains NUL bytes: it is not a text CSV file\n"


def test_a_read_over_its_time_budget_is_refused() -> None:
    data = rows_with_blank_lines(10)
    assert len(ht.read_table(data, "x.csv", ht.ReadLimits(max_seconds=60)).frame) == 10
    with pytest.raises(InputError, match=r"x\.csv took more than 0 s to read"):
        ht.read_table(data, "x.csv", ht.ReadLimits(max_seconds=0))


def test_repeated_heads_are_counted_shown_and_resolvable() -> None:
    rows = ["model,layer,head,score", "a,0,0,0.1", "a,0,0,0.2", "b,1,1,0.3"]
    rows += [f"b,1,1,0.{i}" for i in range(4, 10)] + ["b,2,0,0.5"]
    data = ("\n".join(rows) + "\n").encode()
    with pytest.raises(ht.RepeatedHeadsError) as caught:
        ht.read_table(data, "rep.csv")
    error = caught.value
    assert error.n_repeats == 7
    assert "7 rows repeat the (layer, head) of an earlier row (1 of model 'a', 6 of model 'b')" in (
        str(error)
    )
    assert "row 3, which repeats row 2 (model 'a' layer 0 head 0)" in str(error)
    assert list(error.examples.index) == list(range(2, 11))  # both repeated heads, every row
    first = ht.read_table(data, "rep.csv", repeated="first")
    assert list(first.frame["score"]) == [0.1, 0.3, 0.5]
    every = ht.read_table(data, "rep.csv", repeated="every-row")
    assert "head" not in every.frame.columns and len(every.frame) == 10
    counts = binning.count_heads(every, binning.score_categories())
    assert counts.table["n_heads"].sum() == 10 and "Every row counted" in counts.notes[0]


def test_a_counts_table_beyond_altairs_5000_rows_is_drawn_and_exported() -> None:
    frame = pd.DataFrame({"layer": range(1000), "label": [f"l{i % 10}" for i in range(1000)]})
    table = ht.table_from_frame(frame, "deep.csv")
    categories = binning.build_categories(table, category_column="label")
    counts = binning.count_heads(table, categories, binning.LayerBinning(width=1))
    assert len(counts.table) == 10_000
    chart = layer_chart(counts)
    assert len(json.loads(export.render(".json", chart, counts))["data"]["values"]) == 1000
    assert export.render(".png", chart, counts).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--layer-edges", "0,1e300"], "layer edges must be at most 1,000,001"),
        (["--layer-width", "100000000000000000000"], "width must be a whole number in [1,"),
        (["--layer-edges", ",".join(map(str, range(1002)))], "1,001 layer bins is more than 1,000"),
        (["--layer-edges", "0," + "9" * 400], "is not a finite number"),
        (["--layer-width", "6"], "would be split by the layer edges 0, 6, 12, 18, 24, 30, 32;"),
    ],
)
def test_absurd_bins_are_one_line(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert chart_cli(FIGURE_CSV, "--out", tmp_path / "x.png", *options) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


PAIRS_CSV = "src,dst\n" + "".join(f"w{i},v{i}\n" for i in range(40))


def test_a_relation_csv_starting_with_blank_lines_is_read() -> None:
    spaced = "\n \n" + PAIRS_CSV.replace("\n", "\n\n", 3)
    relation = read_relation_file("spaced.csv", io.BytesIO(spaced.encode()))
    assert relation.rows == tuple((f"w{i}", f"v{i}") for i in range(40))
    bad = "\n" + PAIRS_CSV.replace("w7,v7", "w7")
    with pytest.raises(InputError, match="row 10: no dst cell"):  # rows keep their numbers
        read_relation_file("bad.csv", io.BytesIO(bad.encode()))


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        ("Größe.csv", "größe"),
        ("Grüße.csv", "grüße"),
        ("日本語.csv", "日本語"),
        ("My Pairs (v2).csv", "my_pairs_v2"),
        ("x²-y.csv", "x2_y"),  # NFKC, as Python reads identifiers
    ],
)
def test_relation_names_keep_letters_of_every_script(file_name: str, name: str) -> None:
    assert relation_name(file_name) == name
    assert f"score_{name}".isidentifier()


def test_a_relation_k_of_non_ascii_digits_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(PAIRS_CSV)
    for k in ("²", "٣"):
        args = argparse.Namespace(relation_file=[path], relation_k=[f"pairs={k}"])
        with pytest.raises(InputError, match="expected NAME=K with K a whole number"):
            relation_files_from(args)
