"""Layer bins, head categories, and the counts table behind the layer chart.

Definitions
-----------
* A layer bin `[a, b)` holds the heads with a <= layer < b. Bins come from increasing integer
  edges (at most `MAX_LAYER_EDGE`), or from a width w (edges 0, w, 2w, ... below the model's
  layer count n_layers, then n_layers itself: the last bin may be narrower, never past the model).
  Default: four equal bins per model, width ceil(n_layers / 4) with n_layers = deepest layer + 1,
  or the model's depth when a table of some of its heads records it (`HeadTable.depths`; width
  8 for 32 layers); for a pre-binned file, the file's own bins. Heads outside the edges are
  counted in `Counts.outside_layers`, never silently dropped. Pre-binned counts can be merged into
  coarser bins (a file bin inside one new bin), not split: `merge_widths` and `merge_edges` list
  the widths and edges that merge a file's bins.
* Score categories: edges in percent (default 0, 25, 50, 75, 100), category i holds the scores
  in [edge_i, edge_i+1), the last one also its upper edge. Or one category per value of a text
  column (or of a pre-binned file's `category`). Category order is the stacking order, bottom up.
* `percent` = 100 * n_heads / (heads in the same model and layer bin), rounded to one decimal
  (0 for an empty bar): each segment's share of its bar.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from lib.core.colors import is_hex, palette, score_palette, to_hex, value_palette
from lib.core.errors import InputError
from lib.tables import head_table as ht
from lib.tables.labels import UNCLASSIFIED

DEFAULT_SCORE_EDGES: tuple[float, ...] = (0, 25, 50, 75, 100)
"""Default score-category edges, in percent: the published figure's four ranges."""

DEFAULT_LAYER_BIN_COUNT = 4
MAX_LAYER_BINS = 1_000
"""Most layer bins drawn: far beyond any model's depth, and it bounds the counts table."""
MAX_LAYER_EDGE = ht.MAX_INDEX + 1
"""Largest layer edge or bin width: one past the largest layer a table may hold."""
MAX_CATEGORIES = 60
"""Most categories drawn: the engine's labels (20 relations, their suppressions, 4 attention
patterns, unclassified) fit; a column of ids does not, and gets a message instead."""
MAX_LISTED = 10
"""How many rows or layers a message about left-out heads names before it says `...`."""

PERCENT_DEFINITION = (
    "Each segment is labelled with its share of its bar: 100 × heads in the segment / heads in "
    "that layer bin, to one decimal."
)
LAYER_BIN_DEFINITION = "Layer bins [a, b) hold the layers a ≤ layer < b."

COUNT_COLUMNS = (
    "model", "layer_bin", "layer_start", "layer_end", "category", "color", "n_heads", "percent",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LayerBins:
    """Half-open layer bins [edges[i], edges[i+1]) from increasing integer edges >= 0."""

    edges: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.edges) < 2:
            raise InputError("layer edges need at least two values, e.g. 0,16,32")
        if any(not isinstance(edge, int) or edge < 0 for edge in self.edges):
            raise InputError(f"layer edges must be whole numbers >= 0, got {self.edges}")
        if max(self.edges) > MAX_LAYER_EDGE:
            raise InputError(f"layer edges must be at most {MAX_LAYER_EDGE:,}")
        if any(b <= a for a, b in pairwise(self.edges)):
            raise InputError(f"layer edges must increase, got {', '.join(map(str, self.edges))}")
        if len(self.edges) - 1 > MAX_LAYER_BINS:
            raise InputError(f"{len(self.edges) - 1:,} layer bins is more than {MAX_LAYER_BINS:,}")

    @property
    def labels(self) -> tuple[str, ...]:
        """`[a, b)` per bin, as on the figure's x axis."""
        return tuple(f"[{a}, {b})" for a, b in pairwise(self.edges))


@dataclasses.dataclass(frozen=True)
class LayerBinning:
    """The user's choice of layer bins: explicit `edges`, a `width`, or neither (the default)."""

    width: int | None = None
    edges: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.width is not None and self.edges is not None:
            raise InputError("give layer bins as a width or as edges, not both")
        if self.width is not None and not 1 <= self.width <= MAX_LAYER_EDGE:
            raise InputError(
                f"layer bin width must be a whole number in [1, {MAX_LAYER_EDGE:,}], "
                f"got {self.width}"
            )

    def bins_for(self, cells: pd.DataFrame, prebinned: bool, n_layers: int = 0) -> LayerBins:
        """The bins for one model's cells (`layer_start`, `layer_end` columns), over
        `n_layers` layers or as deep as the cells go, whichever is deeper."""
        if self.edges is not None:
            return LayerBins(self.edges)
        n_layers = max(n_layers, int(cells[ht.LAYER_END].max()))
        if self.width is not None:
            return bins_of_width(self.width, n_layers)
        if prebinned:
            edges = {*cells[ht.LAYER_START].tolist(), *cells[ht.LAYER_END].tolist()}
            return LayerBins(tuple(sorted(edges)))
        return bins_of_width(math.ceil(n_layers / DEFAULT_LAYER_BIN_COUNT), n_layers)


def bins_of_width(width: int, n_layers: int) -> LayerBins:
    """Edges 0, width, 2 width, ... below `n_layers`, then `n_layers` (the last bin may be
    narrower than `width`)."""
    n_bins = max(1, math.ceil(n_layers / width))
    if n_bins > MAX_LAYER_BINS:
        raise InputError(
            f"width {width} over {n_layers} layers makes more than {MAX_LAYER_BINS:,} bins"
        )
    return LayerBins((*(width * i for i in range(n_bins)), max(n_layers, 1)))


def _file_bins(table: ht.BinnedTable) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each model's distinct bins of a pre-binned table, as (starts, ends)."""
    bins = table.frame.drop_duplicates([ht.MODEL, ht.LAYER_START, ht.LAYER_END])
    return [
        (rows[ht.LAYER_START].to_numpy(), rows[ht.LAYER_END].to_numpy())
        for _, rows in bins.groupby(ht.MODEL, sort=False)
    ]


def merge_widths(table: ht.BinnedTable) -> tuple[int, ...]:
    """The bin widths that merge every model's file bins without splitting one: w such that no
    multiple of w lies strictly inside a file bin (the last edge is each model's own end)."""
    models = _file_bins(table)
    deepest = max(int(ends.max()) for _, ends in models)
    return tuple(
        width
        for width in range(1, deepest + 1)
        if all(((starts // width) == ((ends - 1) // width)).all() for starts, ends in models)
    )


def merge_edges(table: ht.BinnedTable) -> tuple[int, ...]:
    """The file's bin edges that split no model's file bin: any two or more of them, in
    order, merge the file's bins (heads outside the chosen edges are listed)."""
    models = _file_bins(table)
    edges = sorted({int(edge) for starts, ends in models for edge in (*starts, *ends)})
    return tuple(
        edge
        for edge in edges
        if not any(((starts < edge) & (edge < ends)).any() for starts, ends in models)
    )


def check_layers_fit(table: ht.HeadTable | ht.BinnedTable, layers: LayerBinning) -> None:
    """Refuse `layers` (a width or edges) that do not fit `table`: a per-head table's bins must
    end within its deepest model's layers; a pre-binned table's must merge its bins
    (`merge_widths`, `merge_edges`)."""
    if isinstance(table, ht.BinnedTable):
        if not (layers.width is None or layers.width in merge_widths(table)) or not (
            layers.edges is None or set(layers.edges) <= set(merge_edges(table))
        ):
            raise InputError(f"{table.source}: these layer bins would split the file's bins")
        return
    depth = max(table.depth(model) for model in table.frame[ht.MODEL].unique())
    if max((layers.width or 0, *(layers.edges or ()))) > depth:
        raise InputError(f"{table.source} has {depth} layers")


@dataclasses.dataclass(frozen=True)
class ScoreCategories:
    """Categories from a score column: edges are fractions, [e_i, e_i+1) with the last closed."""

    column: str
    edges: tuple[float, ...]
    names: tuple[str, ...]
    colors: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.edges) < 2:
            raise InputError("score edges need at least two values, e.g. 0,50,100")
        if any(not 0 <= edge <= 1 for edge in self.edges):
            raise InputError("score edges must lie in [0, 100] %")
        if any(b <= a for a, b in pairwise(self.edges)):
            raise InputError("score edges must increase")
        _check_style(self.names, self.colors, len(self.edges) - 1)

    def ranges(self) -> tuple[str, ...]:
        """Each category's definition in words, e.g. `0-25%: score in [0%, 25%)`."""
        closing = [")"] * (len(self.names) - 1) + ["]"]
        bounds = zip(self.names, self.edges, self.edges[1:], closing, strict=False)
        return tuple(
            f"{name}: {self.column} in [{100 * a:g}%, {100 * b:g}%{end}"
            for name, a, b, end in bounds
        )

    def assign(self, table: ht.HeadTable | ht.BinnedTable) -> tuple[np.ndarray, tuple[str, ...]]:
        """Each head's category index (-1 outside the edges), and how the scores were read."""
        if isinstance(table, ht.BinnedTable):
            raise _prebinned(table)
        reading = ht.score_fractions(table, self.column)
        edges = np.asarray(self.edges)
        codes = np.searchsorted(edges, reading.fractions.to_numpy(), side="right") - 1
        codes[reading.fractions.to_numpy() == edges[-1]] = len(edges) - 2  # the last is closed
        codes[codes >= len(edges) - 1] = -1
        return codes, (reading.note,)


@dataclasses.dataclass(frozen=True)
class ValueCategories:
    """One category per value of a text column; `names[i]` is drawn for `values[i]`."""

    column: str
    values: tuple[str, ...]
    names: tuple[str, ...]
    colors: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.values) > MAX_CATEGORIES:
            raise InputError(
                f"column {self.column!r} has {len(self.values):,} distinct values; "
                f"at most {MAX_CATEGORIES} categories can be drawn"
            )
        _check_style(self.names, self.colors, len(self.values))

    def ranges(self) -> tuple[str, ...]:
        """Each category's definition in words: `heads whose label is 'induction'`, or once
        renamed, `ind: heads whose label is 'induction'`."""
        return tuple(
            f"heads whose {self.column} is {value!r}"
            if name == value
            else f"{name}: heads whose {self.column} is {value!r}"
            for name, value in zip(self.names, self.values, strict=True)
        )

    def assign(self, table: ht.HeadTable | ht.BinnedTable) -> tuple[np.ndarray, tuple[str, ...]]:
        """Each row's category index; a value outside `values` is an error naming its row."""
        cells = table.frame[self.column].astype(str)  # as `value_categories` read them
        codes = pd.Series(range(len(self.values)), index=self.values)
        found = cells.map(codes)
        if found.isna().any():
            row = found.isna().idxmax()
            raise InputError(
                f"{table.source}, row {row}, column {self.column!r}: {cells[row]!r} is not "
                f"one of the categories {', '.join(map(repr, self.values))}"
            )
        return found.to_numpy(dtype=int), ()


Categories = ScoreCategories | ValueCategories


def _check_style(names: Sequence[str], colors: Sequence[str], n: int) -> None:
    """`n` distinct non-empty names and `n` `#rrggbb` colours."""
    if len(names) != n or len(colors) != n:
        raise InputError(f"{n} categories need {n} names and {n} colours")
    if any(not name.strip() for name in names):
        raise InputError("category names must not be empty")
    if len(set(names)) != n:
        raise InputError(f"category names must differ, got {', '.join(names)}")
    bad = [color for color in colors if not is_hex(color)]
    if bad:
        raise InputError(f"colour {bad[0]!r} is not a #rrggbb hex code")


def score_categories(
    column: str = ht.SCORE, edges_percent: Sequence[float] = DEFAULT_SCORE_EDGES
) -> ScoreCategories:
    """Categories of `column` cut at `edges_percent`, with the default names and colours:
    names `a-b%`, colours by position from `score_palette` (the figure's four first)."""
    edges = tuple(float(edge) for edge in edges_percent)
    names = tuple(f"{a:g}-{b:g}%" for a, b in pairwise(edges))
    colors = score_palette(max(len(edges) - 1, 0))
    # Percent edges become fractions by one division, as percent scores do, so that a score
    # equal to an edge compares equal to it.
    return ScoreCategories(column, tuple(edge / 100 for edge in edges), names, colors)


def value_categories(table: ht.HeadTable | ht.BinnedTable, column: str) -> ValueCategories:
    """One category per value: a pre-binned file's categories in file order with its colours,
    or the sorted distinct values of a text column of a per-head table."""
    if isinstance(table, ht.BinnedTable):
        values = table.categories
        colors = table.colors or palette(len(values))
        return ValueCategories(ht.CATEGORY, values, values, colors)
    if column not in table.text_columns:
        kind = "holds numbers: bin it by score edges" if column in table.frame else "is missing"
        raise InputError(f"{table.source}: category column {column!r} {kind}")
    cells = table.frame[column]
    empty = cells.isna() | (cells.astype(str).str.strip() == "")
    if empty.any():
        row = empty.idxmax()
        raise InputError(f"{table.source}, row {row}, column {column!r}: the cell is empty")
    values = tuple(sorted(cells.astype(str).unique()))
    return ValueCategories(column, values, values, value_palette(values, {UNCLASSIFIED}))


def build_categories(
    table: ht.HeadTable | ht.BinnedTable,
    *,
    score_column: str | None = None,
    category_column: str | None = None,
    score_edges: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> Categories:
    """The categories a user asked for: a pre-binned file's own; one per value of
    `category_column`; or `score_column` (default `score`) cut at `score_edges` (percent,
    default `DEFAULT_SCORE_EDGES`). `names` and `colors` replace the defaults, in order."""
    if isinstance(table, ht.BinnedTable):
        if score_column or category_column or score_edges is not None:
            raise _prebinned(table)
        categories: Categories = value_categories(table, ht.CATEGORY)
    elif category_column is not None:
        if score_edges is not None:
            raise InputError("score edges apply to a score column, not to a category column")
        categories = value_categories(table, category_column)
    else:
        categories = score_categories(score_column or ht.SCORE, score_edges or DEFAULT_SCORE_EDGES)
    return restyle(categories, names, colors)


def _prebinned(table: ht.BinnedTable) -> InputError:
    return InputError(f"{table.source} is pre-binned: its categories come from the file")


def restyle(
    categories: Categories,
    names: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> Categories:
    """`categories` with new names and/or colours (same order, same count; colours as hex in
    any case or CSS names), validated."""
    return dataclasses.replace(
        categories,
        names=categories.names if names is None else tuple(names),
        colors=categories.colors if colors is None else tuple(map(to_hex, colors)),
    )


def default_column(table: ht.HeadTable) -> str:
    """The column a per-head table is categorised by when the user has not chosen: `score`,
    else its first numeric column, else `label`, else its first text column."""
    numeric, text = table.numeric_columns, table.text_columns
    for column in (ht.SCORE, *numeric[:1], "label", *text[:1]):
        if column in numeric or column in text:
            return column
    raise InputError(f"{table.source} has no column to categorise heads by besides layer and head")


def parse_layer_edges(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers, e.g. `0, 8, 16, 24, 32`."""
    edges = _parse_numbers(text, "layer edges")
    if any(edge != int(edge) for edge in edges):
        raise InputError(f"layer edges must be whole numbers, got {text!r}")
    return tuple(int(edge) for edge in edges)


def parse_score_edges(text: str) -> tuple[float, ...]:
    """Comma-separated percents, e.g. `0, 25, 50, 75, 100`."""
    return _parse_numbers(text, "score edges")


def parse_names(text: str) -> tuple[str, ...]:
    """Comma-separated category names, spaces around each trimmed."""
    return tuple(part.strip() for part in text.split(","))


def _parse_numbers(text: str, what: str) -> tuple[float, ...]:
    numbers = []
    for part in text.split(","):
        try:
            number = float(part)
        except ValueError:
            raise InputError(f"{what}: {part.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise InputError(f"{what}: {part.strip()!r} is not a finite number")
        numbers.append(number)
    return tuple(numbers)


@dataclasses.dataclass(frozen=True)
class Counts:
    """The counts table (columns `COUNT_COLUMNS`, every model x bin x category, zeros included,
    in model, bin, category order), the heads outside the layer bins (`model`, `layer_start`,
    `layer_end`, `n_heads`) and outside the score edges (the per-head rows), and reading notes
    (the table's, then the categories')."""

    table: pd.DataFrame
    categories: Categories
    outside_layers: pd.DataFrame
    outside_scores: pd.DataFrame
    notes: tuple[str, ...]


def counts_digest(counts: Counts) -> str:
    """A short content hash of what the chart draws of `counts` (its table and categories):
    equal counts give equal digests, so a drawing can be cached under it."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(pd.util.hash_pandas_object(counts.table, index=True).to_numpy().tobytes())
    digest.update(repr(counts.categories).encode())
    return digest.hexdigest()


def count_heads(
    table: ht.HeadTable | ht.BinnedTable,
    categories: Categories,
    layers: LayerBinning = LayerBinning(),
) -> Counts:
    """Count heads per model, layer bin and category (see the module docstring)."""
    codes, notes = categories.assign(table)
    cells = _layer_cells(table).assign(code=codes)
    prebinned = isinstance(table, ht.BinnedTable)
    pieces, outside = [], []
    for model, model_cells in cells.groupby(ht.MODEL, sort=False):
        # A model's bins follow all its heads, also those outside the score edges.
        bins = layers.bins_for(model_cells, prebinned, model_depth(table, model))
        in_categories = model_cells[model_cells["code"] >= 0]
        counted, left_out = _tally(in_categories, bins, len(categories.names), table)
        pieces.append(counted.assign(model=model))
        outside.append(left_out)
    counts = pd.concat(pieces, ignore_index=True)
    counts["category"] = [categories.names[code] for code in counts.pop("code")]
    counts["color"] = counts["category"].map(
        dict(zip(categories.names, categories.colors, strict=True))
    )
    counts["percent"] = ht.bar_shares(counts, ["model", "layer_bin"])[0].round(1)
    return Counts(
        counts[list(COUNT_COLUMNS)],
        categories,
        pd.concat(outside, ignore_index=True),
        table.frame[codes < 0],
        (*table.notes, *notes),
    )


def _layer_cells(table: ht.HeadTable | ht.BinnedTable) -> pd.DataFrame:
    """`model, layer_start, layer_end, n_heads` per row: a head is one layer wide."""
    columns = [ht.MODEL, ht.LAYER_START, ht.LAYER_END, ht.N_HEADS]
    if isinstance(table, ht.BinnedTable):
        return table.frame[columns]
    frame = table.frame
    return pd.DataFrame(
        {
            ht.MODEL: frame[ht.MODEL],
            ht.LAYER_START: frame[ht.LAYER],
            ht.LAYER_END: frame[ht.LAYER] + 1,
            ht.N_HEADS: 1,
        }
    )


def default_layer_bins(table: ht.HeadTable | ht.BinnedTable) -> LayerBins:
    """The bins `LayerBinning()` gives the table's first model."""
    cells = _layer_cells(table)
    model = cells[ht.MODEL].iloc[0]
    first = cells[cells[ht.MODEL] == model]
    prebinned = isinstance(table, ht.BinnedTable)
    return LayerBinning().bins_for(first, prebinned, model_depth(table, model))


def model_depth(table: ht.HeadTable | ht.BinnedTable, model: str) -> int:
    """A per-head table's layer count of `model` (`HeadTable.depth`); 0 (unknown beyond its
    bins) for a pre-binned table."""
    return table.depth(model) if isinstance(table, ht.HeadTable) else 0


def _tally(
    cells: pd.DataFrame, bins: LayerBins, n_categories: int, table: ht.HeadTable | ht.BinnedTable
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Heads per (bin, category code) for one model, zeros included, and the cells outside.
    Only a pre-binned table's cells can be split by the bins (a head is one layer wide)."""
    edges = np.asarray(bins.edges)
    starts, ends = cells[ht.LAYER_START].to_numpy(), cells[ht.LAYER_END].to_numpy()
    index = np.searchsorted(edges, starts, side="right") - 1
    outside = (ends <= edges[0]) | (starts >= edges[-1])
    inside = ~outside
    split = inside & ((index < 0) | (ends > edges[np.clip(index + 1, 0, len(edges) - 1)]))
    if split.any():
        row = cells.index[split][0]
        assert isinstance(table, ht.BinnedTable)
        raise InputError(
            f"{table.source}, row {row}: its bin [{starts[split][0]}, {ends[split][0]}) would be "
            f"split by the layer edges {', '.join(map(str, bins.edges))}; pre-binned counts can "
            f"only be merged into coarser bins: widths {_listed(merge_widths(table))} or "
            f"edges among {_listed(merge_edges(table))}"
        )
    n_bins = len(bins.labels)
    flat = index[inside] * n_categories + cells["code"].to_numpy()[inside]
    weights = cells[ht.N_HEADS].to_numpy()[inside]
    n_heads = np.bincount(flat, weights=weights, minlength=n_bins * n_categories)
    counted = pd.DataFrame(
        {
            "layer_bin": np.repeat(bins.labels, n_categories),
            "layer_start": np.repeat(edges[:-1], n_categories),
            "layer_end": np.repeat(edges[1:], n_categories),
            "code": np.tile(np.arange(n_categories), n_bins),
            "n_heads": n_heads.astype("int64"),
        }
    )
    left_out = cells[outside & (cells[ht.N_HEADS].to_numpy() > 0)]
    return counted, left_out[[ht.MODEL, ht.LAYER_START, ht.LAYER_END, ht.N_HEADS]]


def describe_outside(counts: Counts) -> str | None:
    """One line naming the heads left out of the chart, or None when every head is in it."""
    parts = []
    layers = counts.outside_layers
    if len(layers):
        key = [ht.MODEL, ht.LAYER_START, ht.LAYER_END]
        where = layers.groupby(key, sort=True)[ht.N_HEADS].sum()
        spans = [f"{model} {_layer_span(a, b)}: {n}" for (model, a, b), n in where.items()]
        parts.append(f"{int(where.sum())} heads lie outside the layer bins ({_list(spans, '; ')})")
    scores, categories = counts.outside_scores, counts.categories
    if len(scores) and isinstance(categories, ScoreCategories):
        rows = _list([str(row) for row in scores.index], ", ")
        parts.append(
            f"{len(scores)} heads have a {categories.column!r} outside the score edges "
            f"[{100 * categories.edges[0]:g}%, {100 * categories.edges[-1]:g}%] (rows {rows})"
        )
    return "; ".join(parts) or None


def _listed(numbers: Sequence[int]) -> str:
    return ", ".join(map(str, numbers))


def _list(items: Sequence[str], separator: str) -> str:
    """The first `MAX_LISTED` items joined, and `...` when there are more."""
    return separator.join([*items[:MAX_LISTED], *(["..."] if len(items) > MAX_LISTED else [])])


def _layer_span(start: int, end: int) -> str:
    return f"layer {start}" if end == start + 1 else f"layers [{start}, {end})"
