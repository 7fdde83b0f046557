"""GPT-NeoX's fused attention layout, decoded once for the engine and the fixtures.

`attention.query_key_value` maps d_model to 3 d_model, laid out per head: with
`dh = d_model / n_heads`, rows `3 h dh : 3 h dh + dh` of its weight (and bias) compute head h's
queries, the next dh rows its keys, the next dh its values (docs/methods.md §1). Its output has
the same layout along the last axis. `attention.dense` reads the heads' outputs concatenated in
head order: columns `h dh : (h + 1) dh` of its weight belong to head h.
"""

from __future__ import annotations

import torch

QUERY, KEY, VALUE = 0, 1, 2
"""The parts of a head's block in `query_key_value`, in order."""


def qkv_rows(head: int, part: int, d_head: int) -> slice:
    """Rows of `query_key_value.weight` (or `.bias`) computing `part` (`QUERY`, `KEY`, `VALUE`)
    of `head`."""
    start = (3 * head + part) * d_head
    return slice(start, start + d_head)


def dense_columns(head: int, d_head: int) -> slice:
    """Columns of `dense.weight` that read `head`'s output."""
    return slice(head * d_head, (head + 1) * d_head)


def split_heads(fused: torch.Tensor, n_heads: int) -> torch.Tensor:
    """An activation `(..., 3 d_model)` of `query_key_value` as `(..., n_heads, 3, dh)`."""
    return fused.view(*fused.shape[:-1], n_heads, 3, -1)


def value_weights(qkv_weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """`W_V` of every head, `(n_heads, dh, d_model)`, a view of `query_key_value.weight`."""
    d_model = qkv_weight.shape[1]
    return qkv_weight.view(n_heads, 3, d_model // n_heads, d_model)[:, VALUE]


def output_weights(dense_weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """`W_O` of every head, `(n_heads, d_model, dh)`, a view of `dense.weight`."""
    d_model = dense_weight.shape[0]
    return dense_weight.view(d_model, n_heads, d_model // n_heads).permute(1, 0, 2)
