"""Slow, obvious per-head references for the engine's scores, written from docs/methods.md §1
and §4 alone.

Reads the relation JSON and the raw weights by name, one head and one relation at a time, and
runs the attention-pattern detectors one prompt and one head at a time, with no batching,
chunking or shared helpers from `lib`, so agreement with the engine means the batched code
computes the definition. `bench/` times the engine against these same loops.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

RELATIONS = Path(__file__).resolve().parent.parent / "data" / "relations"
COPYING = {"general_copying_english_500", "name_copying"}


def single_token_pairs(tokenizer, name: str) -> list[tuple[int, int]]:
    pairs = json.loads((RELATIONS / name / f"{name}.json").read_text())
    kept = []
    for src, dst in pairs:
        src_ids = tokenizer.encode(" " + src, add_special_tokens=False)
        dst_ids = tokenizer.encode(" " + dst, add_special_tokens=False)
        if len(src_ids) == 1 and len(dst_ids) == 1:
            kept.append((src_ids[0], dst_ids[0]))
    return kept


LOOP_ORDERS = ("left_to_right", "vo_first")
"""How a per-head loop multiplies `X W_V(h)^T W_O(h)^T W_U^T`: `left_to_right`, as written in
docs/methods.md §1 and as the published per-head loop does (`((X W_V^T) W_O^T) W_U^T`); `vo_first`,
the head's d_model x d_model OV matrix first (`X (W_V^T W_O^T) W_U^T`), the other plain loop
(issue 14). Both bring the rows back to d_model width before they meet the unembedding."""


def head_projection(
    model, layer: int, head: int, tokens: list[int], order: str = "left_to_right"
) -> torch.Tensor:
    """proj = X W_V(h)^T W_O(h)^T W_U^T for one head, raw weights sliced by hand, multiplied
    in `order` (`LOOP_ORDERS`)."""
    state = model.state_dict()
    n_heads = model.config.num_attention_heads
    d_head = model.config.hidden_size // n_heads
    embeddings = state["gpt_neox.embed_in.weight"][tokens]
    if layer == 0:
        x = embeddings
    else:
        first = model.gpt_neox.layers[0]
        x = first.mlp(first.post_attention_layernorm(embeddings))
    qkv = state[f"gpt_neox.layers.{layer}.attention.query_key_value.weight"]
    w_v = qkv[3 * head * d_head + 2 * d_head : 3 * head * d_head + 3 * d_head]
    w_o = state[f"gpt_neox.layers.{layer}.attention.dense.weight"][
        :, head * d_head : (head + 1) * d_head
    ]
    w_u = model.get_output_embeddings().weight
    if order == "left_to_right":
        return x @ w_v.T @ w_o.T @ w_u.T
    if order == "vo_first":
        return x @ (w_v.T @ w_o.T) @ w_u.T
    raise ValueError(f"unknown loop order {order!r}; use one of {LOOP_ORDERS}")


def reference_scores(
    model, tokenizer, name: str, layer: int, head: int, order: str = "left_to_right"
) -> tuple[float, float]:
    """(score, suppression score): a pair counts when fewer than k entries of its row are
    strictly greater (resp. strictly smaller) than its target's; `proj` multiplied in
    `order` (`LOOP_ORDERS`)."""
    pairs = single_token_pairs(tokenizer, name)
    k = 1 if name in COPYING else 10
    with torch.no_grad():
        proj = head_projection(model, layer, head, [src for src, _ in pairs], order)
    promoted = suppressed = 0
    for row, (_, dst) in zip(proj, pairs, strict=True):
        promoted += int((row > row[dst]).sum()) < k
        suppressed += int((row < row[dst]).sum()) < k
    return promoted / len(pairs), suppressed / len(pairs)


def pattern_targets(length: int) -> dict[str, dict[int, int]]:
    """Row i -> target column j of each detector on a sequence `r ++ r` with `len(r) = length`;
    rows without a target are absent (docs/methods.md §4)."""
    size = 2 * length
    return {
        "previous_token": {i: i - 1 for i in range(1, size)},
        "duplicate_token": {i: i - length for i in range(length, size)},
        "induction": {i: i - length + 1 for i in range(length, size)},
        "first_token": {i: 0 for i in range(1, size)},
    }


def target_score(attention: torch.Tensor, target: dict[int, int]) -> float:
    """TransformerLens's sum(A * P) / sum(A) over the rows i that have a target `target[i]`."""
    pattern = torch.zeros_like(attention)
    for i, j in target.items():
        pattern[..., i, j] = 1.0
    rows = list(target)
    return float((attention * pattern)[..., rows, :].sum() / attention[..., rows, :].sum())


def reference_pattern_scores(model, tokens: torch.Tensor, length: int) -> torch.Tensor:
    """(layers, heads, detectors) scores in `pattern_targets` order, averaged over the prompts
    (rows of `tokens`), each prompt run alone and each head scored alone (eager attention)."""
    targets = list(pattern_targets(length).values())
    n_heads = model.config.num_attention_heads
    scores = torch.zeros(model.config.num_hidden_layers, n_heads, len(targets))
    with torch.no_grad():
        for prompt in tokens:
            attentions = model(prompt[None], output_attentions=True).attentions
            for layer, attention in enumerate(attentions):
                # On the host: the per-element loops below would be one GPU launch each.
                layer_attention = attention[0].float().cpu()
                for head in range(n_heads):
                    pattern = layer_attention[head]
                    for p, target in enumerate(targets):
                        scores[layer, head, p] += target_score(pattern, target)
    return scores / len(tokens)


def reference_dynamic_scores(
    model, tokenizer, name: str, template: str, multi_token: bool = False, k: int | None = None
) -> dict[str, torch.Tensor]:
    """(layers, heads) dynamic scores of relation `name` on one template, one prompt and one
    head at a time (docs/methods.md §8): the prompt is the template's text with the source word
    in place of <X>, tokenized whole as the published code does, the source position is where
    the source token is; a head's value vectors are computed by hand from the raw weights and
    the layer's normalised input, its attention from the model's own `output_attentions`.
    `z` at the last position is `v` at the source (forced attention) or `sum_j a_j v_j` (in
    context); logits = `z W_O(h)^T W_U^T`, scored with the static tie rule. With
    `multi_token`, the pairs whose source is several tokens instead, read at its last token
    (where the source's tokens end in the prompt's); `k` replaces the relation's own."""
    words = json.loads((RELATIONS / name / f"{name}.json").read_text())
    k = k or (1 if name in COPYING else 10)
    n_layers = model.config.num_hidden_layers
    n_heads = model.config.num_attention_heads
    d_head = model.config.hidden_size // n_heads
    state = model.state_dict()
    w_u = model.get_output_embeddings().weight
    variants = ("dynamic_score", "dynamic_suppression")
    variants += tuple(name + "_in_context" for name in variants)
    scores = {name: torch.zeros(n_layers, n_heads, dtype=torch.float64) for name in variants}
    normalised = {}  # layer -> its attention's input, from the prompt run last
    hooks = [
        layer.input_layernorm.register_forward_hook(
            lambda module, args, out, i=i: normalised.__setitem__(i, out[0])
        )
        for i, layer in enumerate(model.gpt_neox.layers)
    ]
    kept = 0
    for src_word, dst_word in words:
        src = tokenizer.encode(" " + src_word, add_special_tokens=False)
        dst = tokenizer.encode(" " + dst_word, add_special_tokens=False)
        if (len(src) > 1) != multi_token or len(dst) != 1:
            continue
        kept += 1
        ids = tokenizer.encode(template.replace("<X>", src_word), add_special_tokens=False)
        (position,) = [
            end - 1 for end in range(len(src), len(ids) + 1) if ids[end - len(src) : end] == src
        ]
        with torch.no_grad():
            attentions = model(torch.tensor([ids]), output_attentions=True).attentions
        for layer in range(n_layers):
            qkv_w = state[f"gpt_neox.layers.{layer}.attention.query_key_value.weight"]
            qkv_b = state[f"gpt_neox.layers.{layer}.attention.query_key_value.bias"]
            dense = state[f"gpt_neox.layers.{layer}.attention.dense.weight"]
            for head in range(n_heads):
                rows = slice(3 * head * d_head + 2 * d_head, 3 * head * d_head + 3 * d_head)
                v = normalised[layer] @ qkv_w[rows].T + qkv_b[rows]  # (tokens, d_head)
                w_o = dense[:, head * d_head : (head + 1) * d_head]
                for suffix, z in (
                    ("", v[position]),
                    ("_in_context", attentions[layer][0, head, -1] @ v),
                ):
                    logits = (z @ w_o.T) @ w_u.T
                    target = logits[dst[0]]
                    promoted = int((logits > target).sum()) < k
                    suppressed = int((logits < target).sum()) < k
                    scores["dynamic_score" + suffix][layer, head] += promoted
                    scores["dynamic_suppression" + suffix][layer, head] += suppressed
    for hook in hooks:
        hook.remove()
    return {key: value / kept for key, value in scores.items()}


def count_beyond(logits: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(greater, smaller)`, each `(hc, n)`: per row of `logits` `(hc, n, V)`, how many entries
    are strictly greater / strictly smaller than the row's entry at column `dst[row]` (the
    definition of docs/methods.md §1 written out, against which the engine's k-th-value
    comparison is checked)."""
    target = logits.gather(-1, dst.expand(logits.shape[0], -1).unsqueeze(-1))
    return (logits > target).sum(-1), (logits < target).sum(-1)


def reference_accuracy(model, tokenizer, name: str, template: str, heads) -> float:
    """The causal check's accuracy (docs/methods.md §9), one prompt at a time: the template's
    text with each single-token pair's source word in `<X>`, tokenized whole, the whole model
    run on it with hooks zeroing each of `heads`' slice of `attention.dense`'s input at the last
    position; a prompt counts when its top-1 next token is the target's token."""
    n_heads = model.config.num_attention_heads
    d_head = model.config.hidden_size // n_heads
    pairs = json.loads((RELATIONS / name / f"{name}.json").read_text())

    def zero(head):
        def hook(module, args):
            x = args[0].clone()
            x[0, -1, head * d_head : (head + 1) * d_head] = 0
            return (x,)

        return hook

    hits = total = 0
    for src, dst in pairs:
        src_ids = tokenizer.encode(" " + src, add_special_tokens=False)
        dst_ids = tokenizer.encode(" " + dst, add_special_tokens=False)
        if len(src_ids) != 1 or len(dst_ids) != 1:
            continue
        ids = tokenizer.encode(template.replace("<X>", src), add_special_tokens=False)
        handles = [
            model.gpt_neox.layers[layer].attention.dense.register_forward_pre_hook(zero(head))
            for layer, head in heads
        ]
        try:
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -1]
        finally:
            for handle in handles:
                handle.remove()
        hits += int(logits.argmax()) == dst_ids[0]
        total += 1
    return hits / total
