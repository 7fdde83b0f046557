"""The per-head table: its columns, how a CSV or a DataFrame becomes one, how tables are written.

Two forms are read.

* Per-head: one row per attention head. `layer` (whole number >= 0) is required; `head`
  (whole number >= 0) and `model` (text) are optional. Every other column is kept: a column
  whose cells are all numbers is a candidate score column, any other a candidate category
  column (the engine's table has `score_<relation>`, ..., `label`, `score`). A file without a
  `model` column is one model named after the file. No two rows may share (model, layer, head).
* Pre-binned: head counts per layer bin and category, as behind the published figure:
  `layer_start`, `layer_end` (the bin is the half-open [layer_start, layer_end)), `category`,
  `n_heads`; optional `model`, `color` or `color_name` (hex or CSS name, one per category),
  and `percent` (checked against the counts, never used to draw).

Scores: a score column holds fractions in [0, 1] or percents in [0, 100]; `SCALE_RULE` says
which is which, and each reading says what it found (`ScoreReading.note`).

Row numbers in messages count the header as row 1, as a spreadsheet does; every table's frame is
indexed by those row numbers.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd

from lib.core.colors import to_hex
from lib.core.errors import InputError

MAX_ROWS = 1_000_000
"""Most data rows a table may have (a 12B model has 1,440 heads; public mode may lower it)."""

MAX_COLUMNS = 500
"""Most columns a table may have (the engine's table has about 50); every column costs a pass
of validation, so a wide file is refused before any of it."""

MAX_BYTES = 256 * 2**20
"""Most bytes read from one input (a million engine rows fit); an endless input such as
`/dev/zero` is refused after this many."""

READ_CHUNK_BYTES = 2**20
READ_CHUNK_ROWS = 50_000
"""Bytes, then rows, read at a time: the budgets are checked between chunks."""

MAX_INDEX = 1_000_000
"""Largest layer, head index or head count accepted: beyond any model, and it keeps bins bounded."""

LAYER, HEAD, MODEL, SCORE = "layer", "head", "model", "score"
LAYER_START, LAYER_END, CATEGORY, N_HEADS, PERCENT = (
    "layer_start", "layer_end", "category", "n_heads", "percent",
)  # fmt: skip
COLOR_COLUMNS = ("color", "color_name")
PREBINNED_COLUMNS = (LAYER_START, LAYER_END, CATEGORY, N_HEADS)

PERCENT_TOLERANCE = 0.5
"""How far a pre-binned file's `percent` may sit from 100 * n_heads / bar total (rounding)."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Text cells starting with one of these are prefixed with `'` on writing, so a spreadsheet
shows them as text instead of running them as formulas (OWASP "CSV injection")."""

SCORE_RANGES = "scores are fractions in [0, 1] or percents in [0, 100]"
SCALE_RULE = (
    "A score column whose largest value is at most 1 is read as fractions, "
    "any other as percents (divided by 100); one that holds both a value strictly between 0 "
    "and 1 and a value above 1 is refused as a mix of the two."
)

FIRST_ROW = 2  # the header is row 1

ScoreScale = Literal["fraction", "percent"]
RepeatedHeads = Literal["refuse", "first", "every-row"]
"""What to do with per-head rows repeating a (model, layer, head): refuse the file (the
default), keep the first row of each head, or count every row as a head (the `head` column
dropped)."""
REPEATED_HEADS_CHOICES: dict[str, str] = {
    "first": "Keep the first row of each head",
    "every-row": "Count every row as a head (drop the 'head' column)",
}
MAX_EXAMPLES = 5
"""How many repeated rows a message about them shows."""


@dataclass(frozen=True)
class HeadTable:
    """A validated per-head table: `frame` has `model` (text), `layer` (int), maybe `head` (int)
    and the file's other columns (numbers as floats, text as str), indexed by row number."""

    frame: pd.DataFrame
    source: str
    notes: tuple[str, ...] = ()
    """How the file was read, in words (e.g. repeated heads left out)."""
    depths: tuple[tuple[str, int], ...] = ()
    """`(model, n_layers)` where a model is deeper than its rows show: a subset of a model's
    heads (a population) keeps the model's depth, so its default layer bins are the model's."""

    def depth(self, model: str) -> int:
        """The layer count of `model`: its recorded depth, or its deepest row's layer + 1."""
        deepest = int(self.frame.loc[self.frame[MODEL] == model, LAYER].max()) + 1
        return max(dict(self.depths).get(model, 0), deepest)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Candidate score columns: numeric columns other than `layer` and `head`."""
        return tuple(
            name
            for name in self.frame.columns
            if name not in (LAYER, HEAD) and pd.api.types.is_float_dtype(self.frame[name])
        )

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Candidate category columns: every other column but `model` (text, or e.g. booleans)."""
        others = {LAYER, HEAD, MODEL, *self.numeric_columns}
        return tuple(name for name in self.frame.columns if name not in others)


def model_depths(frame: pd.DataFrame) -> tuple[tuple[str, int], ...]:
    """`(model, deepest layer + 1)` of each model of a per-head `frame`, in order of first
    appearance: what `HeadTable.depths` keeps when a subset of its rows is charted."""
    deepest = frame.groupby(MODEL, sort=False)[LAYER].max()
    return tuple((str(model), int(layer) + 1) for model, layer in deepest.items())


@dataclass(frozen=True)
class BinnedTable:
    """A validated pre-binned table: `frame` has `model`, `layer_start`, `layer_end`,
    `category`, `n_heads`, indexed by row number. `categories` are in order of first
    appearance (the stacking order, bottom to top); `colors` are theirs, when the file has them."""

    frame: pd.DataFrame
    source: str
    categories: tuple[str, ...]
    colors: tuple[str, ...] | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreReading:
    """A score column as fractions in [0, 1], how it was read, and that said in words."""

    fractions: pd.Series
    scale: ScoreScale
    note: str


class RepeatedHeadsError(InputError):
    """Rows repeating a (model, layer, head): how many, of which models, and the first
    `MAX_EXAMPLES` of them beside the rows they repeat (`examples`, indexed by row number), so
    that a page can show them and offer `REPEATED_HEADS_CHOICES`."""

    def __init__(self, message: str, n_repeats: int, examples: pd.DataFrame) -> None:
        super().__init__(message)
        self.n_repeats = n_repeats
        self.examples = examples


@dataclass(frozen=True)
class ReadLimits:
    """What reading one table may cost. Rows are the data rows kept (blank lines are not
    rows); `max_seconds` None means no time budget (public mode sets one per upload)."""

    max_rows: int = MAX_ROWS
    max_columns: int = MAX_COLUMNS
    max_bytes: int = MAX_BYTES
    max_seconds: float | None = None


class _Clock:
    """The time budget of one read, checked between chunks of work."""

    def __init__(self, source: str, max_seconds: float | None) -> None:
        self.source = source
        self.max_seconds = max_seconds
        self.started = time.monotonic()

    def check(self) -> None:
        if self.max_seconds is not None and time.monotonic() - self.started > self.max_seconds:
            raise InputError(
                f"{self.source} took more than {self.max_seconds:g} s to read; "
                "upload a smaller table"
            )


AnyTable = HeadTable | BinnedTable
"""Either form a file is read into (`read_table`)."""


def read_file(
    stream: BinaryIO,
    source: str,
    limits: ReadLimits = ReadLimits(),
    repeated: RepeatedHeads = "refuse",
) -> HeadTable | BinnedTable:
    """Read and validate the CSV in `stream` named `source`: the one reader of the page's
    uploads and of `python -m lib.chart`. At most `limits.max_bytes` are read, a chunk at a
    time, so an endless or binary input (`/dev/zero`) is refused without reading it all;
    `repeated` says what to do with repeated heads."""
    clock = _Clock(source, limits.max_seconds)
    chunks, size = [], 0
    while size <= limits.max_bytes:
        try:
            chunk = stream.read(min(READ_CHUNK_BYTES, limits.max_bytes + 1 - size))
        except OSError as error:
            raise InputError(f"cannot read {source}: {error.strerror or error}") from None
        if not chunk:
            break
        if not chunk.strip(b"\x00"):  # e.g. /dev/zero: refused before the byte budget
            raise InputError(f"{source} contains NUL bytes: it is not a text CSV file")
        chunks.append(chunk)
        size += len(chunk)
        clock.check()
    if size > limits.max_bytes:
        raise InputError(f"{source} is larger than {limits.max_bytes / 2**20:g} MiB")
    return _validate(_parse_csv(b"".join(chunks), source, limits, clock), source, repeated, clock)


def read_table(
    data: bytes,
    source: str,
    limits: ReadLimits = ReadLimits(),
    repeated: RepeatedHeads = "refuse",
) -> HeadTable | BinnedTable:
    """Parse and validate CSV bytes named `source`, as `read_file`."""
    return read_file(io.BytesIO(data), source, limits, repeated)


def table_from_frame(
    frame: pd.DataFrame,
    source: str,
    limits: ReadLimits = ReadLimits(),
    repeated: RepeatedHeads = "refuse",
) -> HeadTable | BinnedTable:
    """Validate a table already in memory (e.g. handed over by another page), as `read_file`;
    its rows are numbered as if it were written to CSV."""
    numbered = frame.set_axis(range(FIRST_ROW, FIRST_ROW + len(frame)))
    _check_size(len(numbered), len(numbered.columns), source, limits)
    return _validate(numbered, source, repeated, _Clock(source, limits.max_seconds))


def _check_size(n_rows: int, n_columns: int, source: str, limits: ReadLimits) -> None:
    if n_columns > limits.max_columns:
        raise InputError(f"{source} has {n_columns:,} columns, more than {limits.max_columns:,}")
    if n_rows > limits.max_rows:
        raise InputError(f"{source} has more than {limits.max_rows:,} data rows")


def _validate(
    frame: pd.DataFrame, source: str, repeated: RepeatedHeads, clock: _Clock
) -> HeadTable | BinnedTable:
    """Check and type `frame` (indexed by row number) as one of the two forms."""
    frame = frame.rename(columns=lambda name: str(name).strip())
    _check_header(frame, source)
    if not len(frame):
        raise InputError(f"{source} has a header but no data rows")
    if any(name in frame.columns for name in PREBINNED_COLUMNS) and LAYER not in frame.columns:
        return _binned_table(frame, source)
    if LAYER not in frame.columns:
        raise InputError(_missing_columns_message(frame, source))
    return _head_table(frame, source, repeated, clock)


def score_fractions(table: HeadTable, column: str) -> ScoreReading:
    """Column `column` of `table` as fractions in [0, 1], after checking every cell: each must
    be a finite number in [0, 100]; then `SCALE_RULE` decides fractions or percents."""
    if column not in table.frame.columns:
        raise InputError(f"{table.source} has no column {column!r}{_suggestion(table, column)}")
    if column not in table.numeric_columns:
        raise InputError(
            f"{table.source}, column {column!r} holds text, not scores: "
            "use it as a category column instead"
        )
    values = table.frame[column]
    _require(values.notna(), table.source, column, values, "the cell is empty or NaN")
    _require(np.isfinite(values), table.source, column, values, "{cell} is infinite")
    for ok, problem in ((values >= 0, "negative"), (values <= 100, "above 100")):
        _require(ok, table.source, column, values, f"{{cell}} is {problem}: {SCORE_RANGES}")
    largest = float(values.max())
    _refuse_mixed_scales(table.source, column, values)
    if largest <= 1:
        note = f"Column {column!r} read as fractions in [0, 1] (largest value {largest:g})."
        return ScoreReading(values, "fraction", note)
    note = (
        f"Column {column!r} read as percents in [0, 100] (largest value {largest:g} > 1), "
        "divided by 100."
    )
    return ScoreReading(values / 100, "percent", note)


def _refuse_mixed_scales(source: str, column: str, values: pd.Series) -> None:
    """`InputError` when `values` hold both a fraction-like value (strictly between 0 and 1)
    and a percent-like one (above 1): read as percents, 0.5 would silently become 0.5 %."""
    fraction_like, percent_like = (values > 0) & (values < 1), values > 1
    if fraction_like.any() and percent_like.any():
        small, large = fraction_like.idxmax(), percent_like.idxmax()
        raise InputError(
            f"{source}, column {column!r} mixes fractions and percents: "
            f"{_cell(values[small])} (row {small}) reads as a fraction, "
            f"{_cell(values[large])} (row {large}) as a percent; write every score one way"
        )


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """`frame` as UTF-8 CSV without its index; text cells that a spreadsheet would run as a
    formula (see `FORMULA_PREFIXES`) are written with a leading `'`."""
    safe = frame.copy()
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]):
            safe[name] = safe[name].map(_neutralise)
    return safe.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _neutralise(cell: object) -> object:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES) else cell


def _parse_csv(data: bytes, source: str, limits: ReadLimits, clock: _Clock) -> pd.DataFrame:
    """CSV bytes as a frame of stripped strings with the header's names, indexed by row number;
    blank rows (nothing but spaces and commas) dropped. The row budget counts the rows kept,
    checked a chunk at a time, so blank lines neither use it up nor slip rows past it."""
    if not data.strip():
        raise InputError(f"{source} is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data[: error.start].count(b"\n") + 1
        raise InputError(
            f"{source} is not UTF-8 text (byte 0x{data[error.start]:02x} in row {row}): "
            "save it as a UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise InputError(f"{source} contains NUL bytes: it is not a text CSV file")
    _check_size(0, _header_width(text, source), source, limits)
    kept, n_kept = [], 0
    try:
        chunks = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # so that the index is the row number
            chunksize=READ_CHUNK_ROWS,
        )
        for chunk in chunks:
            rows = chunk.apply(lambda column: column.str.strip())
            rows = rows[(rows != "").any(axis=1)]
            kept.append(rows)
            n_kept += len(rows)
            _check_size(n_kept - 1, len(chunk.columns), source, limits)  # less the header
            clock.check()
    except (pd.errors.ParserError, csv.Error) as error:
        raise InputError(f"{source} is not a valid CSV: {_parser_problem(error)}") from None
    cells = pd.concat(kept)
    header = [str(name) for name in cells.iloc[0]]
    rows = cells.iloc[1:].set_axis(header, axis=1)
    return rows.set_axis(rows.index + 1)  # record i (0 = the header) is row i + 1


def _header_width(text: str, source: str) -> int:
    """How many columns row 1 names, read before the rest so that a too-wide file costs
    nothing."""
    try:
        first = next(csv.reader(io.StringIO(text)), [])
    except csv.Error as error:
        raise InputError(f"{source} is not a valid CSV: {error}") from None
    if not any(cell.strip() for cell in first):
        raise InputError(f"{source}: row 1 is empty; the column names must be on row 1")
    return len(first)


def _parser_problem(error: Exception) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if found:
        expected, row, seen = found.groups()
        return f"row {row} has {seen} fields, the header has {expected}"
    found = re.search(r"EOF inside string starting at row (\d+)", str(error))
    if found:
        return f"the quote opened in row {int(found.group(1)) + 1} is never closed"
    return str(error).splitlines()[0]


def _check_header(frame: pd.DataFrame, source: str) -> None:
    names = list(frame.columns)
    for position, name in enumerate(names, start=1):
        if not name:
            raise InputError(f"{source}: column {position} of the header has no name")
        if names.index(name) != position - 1:
            raise InputError(
                f"{source}: columns {names.index(name) + 1} and {position} are both named {name!r}"
            )


def _missing_columns_message(frame: pd.DataFrame, source: str) -> str:
    names = ", ".join(repr(name) for name in frame.columns)
    if len(frame.columns) == 1 and re.search(r"[\t;|]", frame.columns[0]):
        hint = "; it looks tab- or semicolon-separated: save it with commas"
    else:
        hint = _rename_hint(frame, LAYER)
    return (
        f"{source} has no column 'layer' (a per-head table) nor 'layer_start', 'layer_end', "
        f"'category', 'n_heads' (a pre-binned table); its columns are {names}{hint}"
    )


def _closest(frame: pd.DataFrame, wanted: str) -> str | None:
    """The column whose name is closest to `wanted` (ignoring case), if one is close."""
    lowered = {str(name).lower(): str(name) for name in frame.columns}
    match = difflib.get_close_matches(wanted.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[match[0]] if match else None


def _rename_hint(frame: pd.DataFrame, wanted: str) -> str:
    found = _closest(frame, wanted)
    return f"; rename column {found!r} to {wanted!r}" if found else ""


def _suggestion(table: HeadTable, column: str) -> str:
    found = _closest(table.frame, column)
    if found:
        return f"; did you mean {found!r}?"
    return f"; its columns are {', '.join(repr(name) for name in table.frame.columns)}"


def _head_table(
    frame: pd.DataFrame, source: str, repeated: RepeatedHeads, clock: _Clock
) -> HeadTable:
    frame = frame.copy()
    frame[LAYER] = _whole_numbers(frame[LAYER], source, LAYER)
    if HEAD in frame.columns:
        frame[HEAD] = _whole_numbers(frame[HEAD], source, HEAD)
    frame[MODEL] = (
        _text(frame[MODEL], source, MODEL) if MODEL in frame.columns else _model_name(source)
    )
    for name in frame.columns.difference([LAYER, HEAD, MODEL], sort=False):
        frame[name] = _score_or_text(frame[name], source, name)
        clock.check()
    notes: tuple[str, ...] = ()
    if HEAD in frame.columns:
        frame, notes = _repeated_heads(frame, source, repeated)
    ordered = [MODEL, *(name for name in frame.columns if name != MODEL)]
    return HeadTable(frame[ordered], source, notes)


def _repeated_heads(
    frame: pd.DataFrame, source: str, repeated: RepeatedHeads
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """`frame` with its repeated heads dealt with as `repeated` says, and a note saying so."""
    key = [MODEL, LAYER, HEAD]
    later = frame.duplicated(key, keep="first")
    if not later.any():
        return frame, ()
    n_repeats = int(later.sum())
    per_model = frame[later].groupby(MODEL, sort=False).size()
    where = ", ".join(f"{n:,} of model {model!r}" for model, n in per_model.items())
    if repeated == "first":
        rows = (
            "1 row repeating a head of an earlier row was"
            if n_repeats == 1
            else (f"{n_repeats:,} rows repeating a head of an earlier row were")
        )
        note = f"{rows} left out ({where})."
        return frame[~later], (note,)
    if repeated == "every-row":
        note = f"Every row counted as a head, the 'head' column dropped ({n_repeats:,} repeats)."
        return frame.drop(columns=HEAD), (note,)
    heads = frame.loc[later, key].drop_duplicates().head(MAX_EXAMPLES)
    examples = frame[pd.MultiIndex.from_frame(frame[key]).isin(pd.MultiIndex.from_frame(heads))]
    row = frame.index[later][0]
    head = frame.loc[row, key]
    first = frame.index[(frame[key] == head).all(axis=1)][0]
    raise RepeatedHeadsError(
        f"{source}: {n_repeats:,} {'row repeats' if n_repeats == 1 else 'rows repeat'} the "
        f"(layer, head) of an earlier row ({where}); "
        f"the first is row {row}, which repeats row {first} (model {head[MODEL]!r} layer "
        f"{head[LAYER]} head {head[HEAD]}). Keep the first row of each head or count every row "
        "as a head (command line: --repeated-heads first or every-row)",
        n_repeats,
        examples[[MODEL, *(name for name in examples.columns if name != MODEL)]],
    )


def _binned_table(frame: pd.DataFrame, source: str) -> BinnedTable:
    missing = [name for name in PREBINNED_COLUMNS if name not in frame.columns]
    if missing:
        raise InputError(
            f"{source} looks pre-binned but has no column {missing[0]!r}; a pre-binned table "
            f"needs {', '.join(map(repr, PREBINNED_COLUMNS))}{_rename_hint(frame, missing[0])}"
        )
    table = pd.DataFrame(
        {
            MODEL: _text(frame[MODEL], source, MODEL)
            if MODEL in frame.columns
            else _model_name(source),
            LAYER_START: _whole_numbers(frame[LAYER_START], source, LAYER_START),
            LAYER_END: _whole_numbers(frame[LAYER_END], source, LAYER_END),
            CATEGORY: _text(frame[CATEGORY], source, CATEGORY),
            N_HEADS: _whole_numbers(frame[N_HEADS], source, N_HEADS),
        },
        index=frame.index,
    )
    for row, start, end in table[[LAYER_START, LAYER_END]].itertuples():
        if end <= start:
            raise InputError(
                f"{source}, row {row}: layer_end {end} must be larger than layer_start {start}"
            )
    key = [MODEL, LAYER_START, LAYER_END, CATEGORY]
    _check_unique(table, key, source, "model {} bin [{}, {}) category {}")
    _check_bins_disjoint(table, source)
    if PERCENT in frame.columns:
        _check_percents(table, _finite_numbers(frame[PERCENT], source, PERCENT), source)
    categories = tuple(table[CATEGORY].drop_duplicates())
    return BinnedTable(table, source, categories, _category_colors(frame, table, source))


def _check_bins_disjoint(table: pd.DataFrame, source: str) -> None:
    """Within a model the bins are pairwise disjoint (a bin repeats once per category)."""
    for model, rows in table.groupby(MODEL, sort=False):
        bins = rows.drop_duplicates([LAYER_START, LAYER_END]).sort_values([LAYER_START, LAYER_END])
        starts, ends = bins[LAYER_START].to_numpy(), bins[LAYER_END].to_numpy()
        overlapping = np.flatnonzero(starts[1:] < ends[:-1])
        if overlapping.size:
            i = overlapping[0]
            raise InputError(
                f"{source}: model {model!r} has overlapping bins [{starts[i]}, {ends[i]}) "
                f"and [{starts[i + 1]}, {ends[i + 1]}) (rows {bins.index[i]} and "
                f"{bins.index[i + 1]})"
            )


def bar_shares(counts: pd.DataFrame, bar: list[str]) -> tuple[pd.Series, pd.Series]:
    """`(percent, bar total)` of every row: 100 * n_heads / the n_heads of all rows sharing
    the `bar` columns (0 % in an empty bar). The one definition of a segment's label."""
    totals = counts.groupby(bar, sort=False)[N_HEADS].transform("sum")
    return (100 * counts[N_HEADS] / totals.where(totals > 0)).fillna(0.0), totals


def _check_percents(table: pd.DataFrame, percents: pd.Series, source: str) -> None:
    """A file's `percent` must agree with its counts: |percent - 100 n / bar total| <= tolerance."""
    shares, totals = bar_shares(table, [MODEL, LAYER_START, LAYER_END])
    wrong = ~((percents - shares).abs() <= PERCENT_TOLERANCE)
    if wrong.any():
        row = wrong.idxmax()
        raise InputError(
            f"{source}, row {row}, column 'percent': {percents[row]:g} disagrees with the counts "
            f"({table.at[row, N_HEADS]} of {totals[row]} heads in the bar = {shares[row]:.1f}%)"
        )


def _category_colors(
    frame: pd.DataFrame, table: pd.DataFrame, source: str
) -> tuple[str, ...] | None:
    """The file's colour per category (first colour column present), or None without one."""
    column = next((name for name in COLOR_COLUMNS if name in frame.columns), None)
    if column is None:
        return None
    by_category: dict[str, str] = {}
    for row, category, raw in zip(table.index, table[CATEGORY], frame[column], strict=True):
        try:
            color = to_hex(str(raw))
        except InputError as error:
            raise InputError(f"{source}, row {row}, column {column!r}: {error}") from None
        if by_category.setdefault(category, color) != color:
            raise InputError(
                f"{source}, row {row}, column {column!r}: category {category!r} is "
                f"{by_category[category]} in an earlier row and {color} here"
            )
    return tuple(by_category.values())


def _check_unique(frame: pd.DataFrame, key: list[str], source: str, what: str) -> None:
    """No two rows share `key` (a pre-binned table's cell); `what` describes one."""
    repeated = frame.duplicated(key, keep=False)
    if repeated.any():
        rows = frame.index[repeated]
        first = frame.loc[rows[0], key]
        second = rows[(frame.loc[rows, key] == first).all(axis=1)][1]
        described = what.format(
            *(repr(value) if isinstance(value, str) else value for value in first)
        )
        raise InputError(f"{source}: rows {rows[0]} and {second} both describe {described}")


def _score_or_text(values: pd.Series, source: str, column: str) -> pd.Series:
    """A column as floats when it is a score column, else unchanged (a category column).

    A score column is one whose filled cells are all numbers (`nan` counts as one). A column
    named `score`, or whose filled cells are mostly (more than half) numbers, must be one: a
    stray text cell in it is refused, naming its row, rather than turning the column into
    text categories."""
    numbers = _numbers(values)
    filled = _is_filled(values)
    is_number = numbers.notna() | _is_nan_text(values)
    if (is_number | ~filled).all():
        return numbers
    if column == SCORE or is_number[filled].mean() > 0.5:
        _require(
            is_number | ~filled,
            source,
            column,
            values,
            "{cell} is not a number (a score column holds numbers only)",
        )
    return values


def _numbers(values: pd.Series) -> pd.Series:
    """Cells as floats; NaN where a cell is empty or not a number."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    return pd.to_numeric(values.astype(str).str.strip(), errors="coerce").astype(float)


def _whole_numbers(values: pd.Series, source: str, column: str) -> pd.Series:
    """Cells as int64, each a whole number in [0, MAX_INDEX] (`3.0` counts as 3)."""
    numbers = _finite_numbers(values, source, column)
    _require(numbers == np.floor(numbers), source, column, values, "{cell} is not a whole number")
    _require(numbers >= 0, source, column, values, "{cell} is negative; counting starts at 0")
    _require(numbers <= MAX_INDEX, source, column, values, f"{{cell}} is above {MAX_INDEX:,}")
    return numbers.astype("int64")


def _finite_numbers(values: pd.Series, source: str, column: str) -> pd.Series:
    """Cells as floats, each filled, a number, and finite."""
    numbers = _numbers(values)
    _require(_is_filled(values), source, column, values, "the cell is empty")
    _require(
        numbers.notna() | _is_nan_text(values), source, column, values, "{cell} is not a number"
    )
    _require(np.isfinite(numbers), source, column, values, "{cell} is NaN or infinite")
    return numbers


def _text(values: pd.Series, source: str, column: str) -> pd.Series:
    """Cells as stripped, non-empty strings."""
    _require(_is_filled(values), source, column, values, "the cell is empty")
    return values.astype(str).str.strip()


def _is_filled(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype(str).str.strip() != "")


def _is_nan_text(values: pd.Series) -> pd.Series:
    """Cells spelling NaN ('nan', 'NaN'), which parse as a number but not a finite one."""
    return values.astype(str).str.strip().str.lower() == "nan"


def _require(ok: pd.Series, source: str, column: str, cells: pd.Series, problem: str) -> None:
    """Raise naming the first row where `ok` is False, its column, and `problem` with `{cell}`
    standing for that cell's text."""
    bad = ~ok.fillna(False).astype(bool)
    if bad.any():
        row = bad.idxmax()
        problem = problem.format(cell=_cell(cells[row]))
        raise InputError(f"{source}, row {row}, column {column!r}: {problem}")


def _cell(value: object) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _model_name(source: str) -> str:
    """The model name of a file without a `model` column: the file's name without suffix."""
    return source_stem(source) or source


def source_stem(source: str) -> str:
    """The last part of a source name without a `.csv` suffix (`runs/pythia-6.9b.csv` ->
    `pythia-6.9b`); other dots stay, as in model names."""
    return re.sub(r"\.csv$", "", PurePath(source).name, flags=re.IGNORECASE)
