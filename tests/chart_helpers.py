"""Shared fixtures-by-hand for the chart tests: the bundled figure, per-head CSVs, and a slow,
obvious reference count to check `lib.tables.binning` against."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
FIGURE_CSV = REPO / "data/examples/pythia-6.9b-figure.csv"

# The published figure, bin by bin, categories bottom to top (dark green ... dark red).
FIGURE_COUNTS = ((11, 17, 2, 5), (15, 8, 1, 13), (17, 3, 5, 0), (18, 13, 2, 8))
# Text a file may carry that Markdown, KaTeX, Streamlit directives, HTML or a spreadsheet
# would act on; the pages must show it as typed.
HOSTILE_LABELS = (
    "[click me](https://example.com)",
    "**bold**",
    "$x^2$",
    ":red[alarm]",
    "<b>html</b>",
    '=HYPERLINK("https://example.com","x")',
)
HOSTILE_NAME = "![img](http://127.0.0.1:9/x.png) [link](https://example.com) *a*.csv"
FIGURE_PERCENTS = (
    (31.4, 48.6, 5.7, 14.3),
    (40.5, 21.6, 2.7, 35.1),
    (68.0, 12.0, 20.0, 0.0),
    (43.9, 31.7, 4.9, 19.5),
)


def figure_bytes() -> bytes:
    return FIGURE_CSV.read_bytes()


def per_head_frame(n_layers: int, n_heads: int, seed: int, model: str = "m") -> pd.DataFrame:
    """Every (layer, head) of a model once, with a random `score` fraction on a 0.001 grid."""
    rng = np.random.default_rng(seed)
    layers, heads = np.divmod(np.arange(n_layers * n_heads), n_heads)
    scores = rng.integers(0, 1001, size=layers.size) / 1000
    return pd.DataFrame({"model": model, "layer": layers, "head": heads, "score": scores})


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def reference_counts(
    layers: Sequence[int],
    scores: Sequence[float],
    layer_edges: Sequence[int],
    score_edges: Sequence[float],
) -> Counter[tuple[int, int]]:
    """(layer bin, category) -> heads, by looping over heads and bins one at a time.

    Layer bins are [a, b); score bins are [a, b) except the last, [a, b]; edges in the units
    of the values. Heads outside every bin are not counted."""
    counts: Counter[tuple[int, int]] = Counter()
    last = len(score_edges) - 2
    for layer, score in zip(layers, scores, strict=True):
        layer_bin = next(
            (
                i
                for i in range(len(layer_edges) - 1)
                if layer_edges[i] <= layer < layer_edges[i + 1]
            ),
            None,
        )
        category = next(
            (
                i
                for i in range(len(score_edges) - 1)
                if score_edges[i] <= score < score_edges[i + 1]
                or (i == last and score == score_edges[-1])
            ),
            None,
        )
        if layer_bin is not None and category is not None:
            counts[layer_bin, category] += 1
    return counts


def plain(markdown: str) -> str:
    """What a Markdown element shows of text written by `ui.literal` (character references,
    invisible word joiners)."""
    return html.unescape(markdown).replace("\u2060", "")
