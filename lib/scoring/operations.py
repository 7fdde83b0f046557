"""MAPS operation scores: what each head's OV circuit maps words to, read from its parameters.

For head h of layer l (docs/methods.md §1, GPT-NeoX weight layout):

    proj = X_src  W_V(h)^T  W_O(h)^T  W_U^T          (one row per source token, one column per
                                                     vocabulary token; no biases, no final LN)

with `W_V(h)` the value rows `3 h dh + 2 dh : 3 h dh + 3 dh` of `query_key_value.weight`,
`W_O(h)` the columns `h dh : (h+1) dh` of `dense.weight`, `W_U` = the output embedding
(`embed_out`) and `X_src` the source tokens' input embeddings, passed at layers >= 1 through
the first layer's MLP, `mlp0(post_attention_layernorm0(E))`, residual not added (the paper's
choice). With `t = proj[src, dst]` the logit of a pair's target, the pair counts for the
**score** when fewer than k entries of its row are strictly greater than t, and for the
**suppression score** when fewer than k are strictly smaller (ties count in the head's favour:
the same as "t is at least the k-th largest / at most the k-th smallest value of its row"). A
relation's score is the fraction of its pairs that count (k per relation: docs/methods.md §2).

Everything is computed in float32 whatever dtype the weights are stored in (`lib.scoring.precision`,
docs/methods.md §6): one layer's value and output weights are upcast at a time, `W_U` once,
and matmuls run without TF32.

Algorithm. Per layer, each distinct source token of all relations is projected once through
`W_V` (`H x S x d_head`). The logits `proj` are formed in chunks of (heads x sources) rows
within a byte budget, `W_O(h)^T W_U^T` (`d_head x V` per head) once per slice of heads as its
chunks come (`HeadOutputMaps`: never all heads' at once, which would be as large as W_U); per row
only its k_max largest and k_max smallest values (k_max: the largest k asked for; found through
blocks of the row, `row_extremes`) and the logits at the pairs' targets are kept. "Fewer than k
entries strictly greater than t" is exactly "t is at least the row's k-th largest value"
(likewise for suppression), so one chunk serves every relation, every k and both scores, and
memory does not grow with the number of relations.

Why top-k and not a count per pair: counting both comparisons against each pair's target in
one pass is the same definition, and was measured side by side on the CPU at 2.5-3.4x slower
than two `topk` calls per chunk (a boolean reduction over the 50k-wide rows of every *pair*,
against a partial selection over the rows of every distinct *source*; bench/README.md), and
`row_extremes` is 4-5x faster again than those two `topk` calls.
`tests/reference.py: count_beyond` keeps the count written out; tests check the two agree
under planted ties.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint
from lib.checkpoints.neox import output_weights, value_weights
from lib.core.progress import Progress, ignore
from lib.scoring.patterns import ordinary_token_ids
from lib.scoring.precision import float32_matmul, float32_modules, to_float32
from lib.scoring.relations import TokenizedRelation
from lib.scoring.weights_view import Weighted, weights_view

DEFAULT_BYTE_BUDGET = 256 * 2**20
"""Largest logits chunk (bytes) formed at once; results do not depend on it."""

CPU_CHUNK_BYTES = 16 * 2**20
"""On a CPU, chunks are also kept about the size of a last-level cache: `row_extremes` then
reads the logits the matmul has just written while they are still cached, instead of from
RAM (70m shape, medians of 3: 4 MiB 7.5 s, 8 MiB 7.0 s, 16 MiB 6.9 s, 32 MiB 10.5 s, 64 MiB
14.2 s). On a GPU, large chunks keep the kernels large."""


@dataclass(frozen=True)
class OperationScores:
    """`promotion[l, h, r]` and `suppression[l, h, r]` for `relations[r]`, fractions in [0, 1]."""

    relations: tuple[TokenizedRelation, ...]
    promotion: np.ndarray
    suppression: np.ndarray


def head_ov_weights(model: Weighted, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(W_V, W_O)` of every head of `layer` in float32: `(H, d_head, d_model)` and
    `(H, d_model, d_head)` (copies of just these rows and columns when stored in 16 bits).

    `model` is a model in memory or a streamed checkpoint (`lib.scoring.weights_view`); the
    fused layout is decoded by `lib.checkpoints.neox`.
    """
    view = weights_view(model)
    n_heads = view.config.num_attention_heads
    qkv, dense = view.layer_ov(layer)
    return to_float32(value_weights(qkv, n_heads)), to_float32(output_weights(dense, n_heads))


def layer_inputs(
    model: Weighted,
    tokens: torch.Tensor,
    layer: int,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
) -> torch.Tensor:
    """Rows a head of `layer` reads for `tokens`, in float32: raw embeddings at layer 0, else
    `mlp0(post_attention_layernorm0(E))` (no residual), as in the paper."""
    view = weights_view(model)
    embeddings = to_float32(view.input_embedding_rows(tokens))
    if layer == 0:
        return embeddings
    norm, mlp = view.first_mlp()
    # The MLP's hidden layer is the wide intermediate: chunk the rows by its size.
    hidden_bytes = view.config.intermediate_size * embeddings.element_size()
    with float32_modules(norm, mlp), float32_matmul():
        return torch.cat(
            [
                mlp(norm(embeddings[rows]))
                for rows in row_chunks(len(tokens), hidden_bytes, byte_budget)
            ]
        )


def output_unembedding(w_o: torch.Tensor, w_u: torch.Tensor) -> torch.Tensor:
    """`W_O(h)^T W_U^T` for every head: `(H, d_head, V)`."""
    return torch.matmul(w_o.transpose(1, 2), w_u.T)


class HeadOutputMaps:
    """`output_unembedding(w_o, w_u)`, formed for a slice of heads when indexed by it (the
    slice asked last is kept, as the chunks of one head slice come in a row).

    All heads at once would be `d_model x V` float32 per layer (515 MB for 2.8b, as much as
    W_U itself); a slice of heads is at most the size of the logits chunk it feeds."""

    def __init__(self, w_o: torch.Tensor, w_u: torch.Tensor) -> None:
        self.w_o, self.w_u = w_o, w_u
        self.shape = (w_o.shape[0], w_o.shape[2], w_u.shape[0])
        self._last: tuple[slice, torch.Tensor] | None = None

    def __getitem__(self, heads: slice) -> torch.Tensor:
        if self._last is None or self._last[0] != heads:
            self._last = (heads, output_unembedding(self.w_o[heads], self.w_u))
        return self._last[1]


def row_chunks(n_rows: int, row_bytes: int, byte_budget: int) -> Iterator[slice]:
    """Consecutive slices of `n_rows` rows holding at most `byte_budget` bytes (>= 1 row)."""
    step = max(1, byte_budget // row_bytes)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def head_source_chunks(
    n_heads: int, n_sources: int, row_bytes: int, byte_budget: int
) -> Iterator[tuple[slice, slice]]:
    """(heads, sources) blocks of logits rows within `byte_budget`: whole heads when one head's
    rows fit, else one head at a time in slices of sources."""
    rows = max(1, byte_budget // row_bytes)
    if rows >= n_sources:
        for heads in row_chunks(n_heads, n_sources * row_bytes, byte_budget):
            yield heads, slice(0, n_sources)
        return
    for head in range(n_heads):
        for sources in row_chunks(n_sources, row_bytes, byte_budget):
            yield slice(head, head + 1), sources


@dataclass(frozen=True)
class PairIndex:
    """All relations' pairs flattened: the distinct source tokens `sources`; per pair, the row
    of its source in `sources` and its target token; `bounds[r]` slices relation r's pairs.
    `order` sorts pairs by source row, and the pairs of sources `a:b` are
    `order[offsets[a]:offsets[b]]`, so a block of sources finds its pairs without a search."""

    sources: torch.Tensor
    pair_row: torch.Tensor
    pair_dst: torch.Tensor
    bounds: tuple[slice, ...]
    order: torch.Tensor
    offsets: tuple[int, ...]

    @classmethod
    def build(cls, relations: tuple[TokenizedRelation, ...], device: torch.device) -> PairIndex:
        src = torch.tensor([t for r in relations for t in r.src])
        dst = torch.tensor([t for r in relations for t in r.dst])
        sources, pair_row = torch.unique(src, sorted=True, return_inverse=True)
        ends = np.cumsum([len(r.src) for r in relations]).tolist()
        bounds = tuple(slice(a, b) for a, b in zip([0, *ends[:-1]], ends, strict=True))
        order = torch.argsort(pair_row, stable=True)
        counts = torch.bincount(pair_row, minlength=len(sources))
        offsets = (0, *torch.cumsum(counts, 0).tolist())
        on = {"device": device}
        return cls(
            sources.to(**on), pair_row.to(**on), dst.to(**on), bounds, order.to(**on), offsets
        )


EXTREMES_BLOCK = 64
"""Width of the blocks `row_extremes` cuts each logits row into (measured fastest of 16-256 on
the CPU for 50k-wide rows; Pythia's embedding rows are multiples of 64)."""


def row_extremes(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest (descending) and k smallest (ascending) values of each row of `logits`
    `(..., V)`: exactly the values of `topk`, found through blocks of `EXTREMES_BLOCK`.

    The k blocks with the largest maxima hold the row's i-th largest value for every i <= k:
    were it only in another block, the chosen blocks' k maxima would be k values at least as
    large at other positions. So one `amax` and one `amin` pass over the row, then `topk` over
    k x `EXTREMES_BLOCK` candidates, replace two `topk` passes over the whole row (4-5x faster
    on the CPU). Rows that do not cut into blocks, or a k too large to gain, use `topk`."""
    vocab = logits.shape[-1]
    if vocab % EXTREMES_BLOCK or 4 * k * EXTREMES_BLOCK > vocab:
        return logits.topk(k, dim=-1).values, logits.topk(k, dim=-1, largest=False).values
    blocks = logits.unflatten(-1, (vocab // EXTREMES_BLOCK, EXTREMES_BLOCK))
    return (
        _extremes_within(blocks, blocks.amax(-1), k, largest=True),
        _extremes_within(blocks, blocks.amin(-1), k, largest=False),
    )


def _extremes_within(
    blocks: torch.Tensor, block_extremes: torch.Tensor, k: int, largest: bool
) -> torch.Tensor:
    """`topk` values of the k blocks whose extreme (max or min) is most extreme."""
    chosen = block_extremes.topk(k, dim=-1, largest=largest).indices
    candidates = blocks.gather(-2, chosen.unsqueeze(-1).expand(*chosen.shape, blocks.shape[-1]))
    return candidates.flatten(-2).topk(k, dim=-1, largest=largest).values


def layer_operation_scores(
    x: torch.Tensor,
    w_v: torch.Tensor,
    ou: torch.Tensor | HeadOutputMaps,
    relations: tuple[TokenizedRelation, ...],
    index: PairIndex,
    byte_budget: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`(promotion, suppression)`, each `(H, R)`, of the heads with value weights `w_v`
    `(H, dh, d)` and `ou = W_O(h)^T W_U^T` `(H, dh, V)`, for source inputs `x` `(S, d)`
    (the count of the module docstring, through each row's k_max extreme values)."""
    z = torch.matmul(x, w_v.transpose(1, 2))  # (H, S, dh)
    n_heads, n_sources, vocab = z.shape[0], z.shape[1], ou.shape[2]
    k_max = min(max(r.k for r in relations), vocab)
    top = z.new_empty(n_heads, n_sources, k_max)
    bottom = z.new_empty(n_heads, n_sources, k_max)
    dst_logit = z.new_empty(n_heads, index.pair_row.numel())
    row_bytes = vocab * z.element_size()
    if z.device.type == "cpu":
        byte_budget = min(byte_budget, CPU_CHUNK_BYTES)
    for heads, srcs in head_source_chunks(n_heads, n_sources, row_bytes, byte_budget):
        logits = torch.matmul(z[heads, srcs], ou[heads])  # (hc, sc, V)
        top[heads, srcs], bottom[heads, srcs] = row_extremes(logits, k_max)
        pairs = index.order[index.offsets[srcs.start] : index.offsets[srcs.stop]]
        rows = index.pair_row[pairs] - srcs.start
        dst_logit[heads, pairs] = logits[:, rows, index.pair_dst[pairs]]
    promotion = np.empty((n_heads, len(relations)))
    suppression = np.empty((n_heads, len(relations)))
    for r, (relation, pairs) in enumerate(zip(relations, index.bounds, strict=True)):
        rows, values = index.pair_row[pairs], dst_logit[:, pairs]
        k = min(relation.k, vocab)  # k >= V: every pair counts, as with the count
        kth_largest = top[:, rows, k - 1]
        kth_smallest = bottom[:, rows, k - 1]
        n_pairs = len(relation.src)
        promotion[:, r] = (values >= kth_largest).sum(-1).cpu().numpy() / n_pairs
        suppression[:, r] = (values <= kth_smallest).sum(-1).cpu().numpy() / n_pairs
    return promotion, suppression


def operation_scores(
    model: Weighted,
    relations: tuple[TokenizedRelation, ...],
    byte_budget: int = DEFAULT_BYTE_BUDGET,
    progress: Progress | None = None,
) -> OperationScores:
    """Score and suppression score of every head for every relation (module docstring), of
    a model in memory or a checkpoint read one layer at a time (`lib.scoring.weights_view`)."""
    view = weights_view(model)
    n_layers = view.config.num_hidden_layers
    n_heads = view.config.num_attention_heads
    shape = (n_layers, n_heads, len(relations))
    promotion, suppression = np.zeros(shape), np.zeros(shape)
    report = progress or ignore
    if relations:
        index = PairIndex.build(relations, view.device)
        with torch.inference_mode(), float32_matmul():
            w_u = to_float32(view.unembedding())
            # Layer 0 reads raw embeddings, every later layer the same first-MLP embeddings.
            inputs = [layer_inputs(view, index.sources, layer, byte_budget) for layer in (0, 1)]
            for layer in range(n_layers):
                report(layer / n_layers, f"operation scores: layer {layer + 1} of {n_layers}")
                w_v, w_o = head_ov_weights(view, layer)
                promotion[layer], suppression[layer] = layer_operation_scores(
                    inputs[min(layer, 1)],
                    w_v,
                    HeadOutputMaps(w_o, w_u),
                    relations,
                    index,
                    byte_budget,
                )
    report(1.0, "operation scores: done")
    return OperationScores(relations, promotion, suppression)


def salient_operations(
    loaded: LoadedModel | StreamedCheckpoint,
    layer: int,
    head: int,
    n_tokens: int = 20,
    k: int = 10,
    byte_budget: int = DEFAULT_BYTE_BUDGET,
) -> pd.DataFrame:
    """The tokens head (`layer`, `head`) amplifies most, each with its top-k mapped tokens.

    Candidates are the tokenizer's ordinary tokens (`lib.scoring.patterns.ordinary_token_ids`). A
    token t's amplification is `||x_t W_V(h)^T W_O(h)^T|| / ||x_t||`, with `x_t` the layer's
    input row for t (as for the scores: raw embedding at layer 0, first-MLP embedding after);
    its mapped tokens are the k largest entries of its `proj` row (all in float32, as the
    scores). One row per salient token:
    `rank`, `token_id`, `token`, `amplification`, `mapped_tokens` (decoded, best first).
    `loaded` is a model in memory or a streamed checkpoint (`lib.scoring.weights_view`).
    """
    view, tokenizer = weights_view(loaded), loaded.tokenizer
    # Special tokens and the untrained padding rows past the tokenizer are not candidates.
    candidates = ordinary_token_ids(tokenizer).to(view.device)
    with torch.inference_mode(), float32_matmul():
        w_v, w_o = (weights[head] for weights in head_ov_weights(view, layer))
        amplification = torch.empty(len(candidates), dtype=torch.float32, device=view.device)
        # Whole-vocabulary pass: chunk rows by the widest row formed (the MLP's hidden layer).
        row_bytes = view.config.intermediate_size * w_v.element_size()
        for rows in row_chunks(len(candidates), row_bytes, byte_budget):
            x = layer_inputs(view, candidates[rows], layer, byte_budget)
            out = (x @ w_v.T) @ w_o.T
            amplification[rows] = out.norm(dim=-1) / x.norm(dim=-1)
        strongest = amplification.topk(min(n_tokens, len(candidates)))
        salient = candidates[strongest.indices]
        x = layer_inputs(view, salient, layer)
        w_u = to_float32(view.unembedding())
        logits = (x @ w_v.T) @ output_unembedding(w_o[None], w_u)[0]
        mapped = logits.topk(k, dim=-1).indices.cpu().tolist()
    token_ids = salient.cpu().tolist()
    return pd.DataFrame(
        {
            "rank": range(1, len(token_ids) + 1),
            "token_id": token_ids,
            "token": [tokenizer.decode([t]) for t in token_ids],
            "amplification": strongest.values.cpu().numpy(),
            "mapped_tokens": [[tokenizer.decode([t]) for t in row] for row in mapped],
        }
    )
