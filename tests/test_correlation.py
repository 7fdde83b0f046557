"""Spearman's rho without SciPy: equal to a slow rank-by-hand reference, and never imports SciPy."""

import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lib.scoring.dynamic import correlation


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span (the textbook definition)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson_by_hand(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    vx = sum((a - mx) ** 2 for a in x)
    vy = sum((b - my) ** 2 for b in y)
    return cov / (vx * vy) ** 0.5


scores = st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), min_size=3, max_size=30)


@given(scores, scores)
def test_spearman_is_pearson_on_average_ranks(x: list[float], y: list[float]) -> None:
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    got = correlation(np.array(x), np.array(y), "spearman")
    if len(set(x)) == 1 or len(set(y)) == 1:
        assert np.isnan(got)
        return
    expected = pearson_by_hand(average_ranks(x), average_ranks(y))
    assert abs(got - expected) < 1e-9


def test_spearman_needs_no_scipy(monkeypatch) -> None:
    # A None entry makes `import scipy` raise ImportError, as on a machine without it.
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    x = np.array([0.1, 0.4, 0.2, 0.9])
    assert abs(correlation(x, x**2, "spearman") - 1.0) < 1e-12
