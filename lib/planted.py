"""A tiny Pythia-shaped checkpoint with planted heads whose answer is known by construction.

The model is a 3-layer, 4-head, d_model 64 GPT-NeoX with Pythia's architecture and seeded
random weights (`lib.synthetic`), except the heads of `PLANTED` that are asked for:

- copying (0, 0): its OV circuit maps every token to itself. Dims 0-15 of every token's
  input and output embedding hold the same random unit code; the head reads and writes those
  dims, so a row's logits are code cosines, largest for the token itself.
- suppression (0, 1): the same head with W_O negated: every token is its row's minimum.
- country -> capital (1, 2): reads the first-MLP embeddings. Its W_V maps each country's
  `mlp0(ln(E))` to z; W_O writes z into dims 16-31, where each capital's output embedding holds
  its country's unit z (other tokens 0 there), so the capital tops its country's row.
- previous token (2, 3): q/k weights zero, q/k biases on the rotary dims such that the
  attention score is `A cos(d - 1) + B cos(0.01 (d - 1))` at relative offset d: content-free,
  largest at d = 1.

Every other head is random and labelled `unclassified`. The test fixtures
(`tests/conftest.py`) and the training series of `python -m lib.synthetic --series` (planted
heads that appear at chosen steps) both build their checkpoints here.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path

import torch
from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast

from lib.errors import InputError
from lib.operations import layer_inputs
from lib.relations import load_pairs, single_token
from lib.synthetic import pythia_config, random_model, save_checkpoint, train_tokenizer

N_LAYERS, N_HEADS, D_MODEL = 3, 4, 64
D_HEAD = D_MODEL // N_HEADS
COPYING = (0, 0)
SUPPRESSION = (0, 1)
COUNTRY_TO_CAPITAL = (1, 2)
PREVIOUS_TOKEN = (2, 3)
PLANTED: dict[tuple[int, int], str] = {
    COPYING: "general_copying_english_500",
    SUPPRESSION: "suppression: general_copying_english_500",
    COUNTRY_TO_CAPITAL: "country_to_capital_wikidata",
    PREVIOUS_TOKEN: "previous_token",
}
"""(layer, head) -> the label `lib.classify` gives the planted head."""
COPY_DIMS = slice(0, D_HEAD)
CAPITAL_DIMS = slice(D_HEAD, 2 * D_HEAD)
WEIGHTS_SEED, CODES_SEED = 0, 1


def value_rows(head: int) -> slice:
    """Rows of `query_key_value.weight` that compute `head`'s values (GPT-NeoX's fused
    layout: per head, d_head query rows, then d_head key rows, then d_head value rows)."""
    return slice(3 * head * D_HEAD + 2 * D_HEAD, 3 * head * D_HEAD + 3 * D_HEAD)


def plant_ov(model, layer: int, head: int, w_v: torch.Tensor, out_dims: slice, sign: float) -> None:
    """Head reads `w_v @ x` (d_head values) and writes them, times `sign`, into `out_dims`."""
    attention = model.gpt_neox.layers[layer].attention
    attention.query_key_value.weight[value_rows(head)] = w_v
    w_o = attention.dense.weight[:, head * D_HEAD : (head + 1) * D_HEAD]
    w_o.zero_()
    w_o[out_dims] = sign * torch.eye(D_HEAD)


def plant_copy_codes(model, generator: torch.Generator) -> None:
    """Dims `COPY_DIMS` of every token's input and output embedding: one random unit code."""
    embed_in = model.get_input_embeddings().weight
    embed_out = model.get_output_embeddings().weight
    codes = torch.randn(embed_in.shape[0], D_HEAD, generator=generator)
    codes /= codes.norm(dim=1, keepdim=True)
    embed_in[:, COPY_DIMS] = 0.05 * codes  # same scale as the random dims (std 0.02 x 16)
    embed_out[:, COPY_DIMS] = codes


def plant_copying(model, sign: float, head: tuple[int, int]) -> None:
    """`head` reads and writes the copy codes: copying for sign 1, suppression for sign -1."""
    read_codes = torch.zeros(D_HEAD, D_MODEL)
    read_codes[:, COPY_DIMS] = torch.eye(D_HEAD)
    plant_ov(model, *head, read_codes, COPY_DIMS, sign)


def plant_country_to_capital(model, tokenizer) -> None:
    layer, head = COUNTRY_TO_CAPITAL
    pairs = [
        (single_token(tokenizer, country), single_token(tokenizer, capital))
        for country, capital in load_pairs("country_to_capital_wikidata")
    ]
    pairs = [(c, k) for c, k in pairs if c is not None and k is not None]
    countries = torch.tensor([c for c, _ in pairs])
    w_v = model.gpt_neox.layers[layer].attention.query_key_value.weight[value_rows(head)].clone()
    z = layer_inputs(model, countries, layer) @ w_v.T  # what the head computes from each country
    embed_out = model.get_output_embeddings().weight
    embed_out[:, CAPITAL_DIMS] = 0
    for (_, capital), code in zip(pairs, z / z.norm(dim=1, keepdim=True), strict=True):
        embed_out[capital, CAPITAL_DIMS] = code
    plant_ov(model, layer, head, w_v, CAPITAL_DIMS, 1.0)


def plant_previous_token(model) -> None:
    """Rotary dims (0, 2) turn at 1 rad / position, (1, 3) at 0.01 (theta 10000, 4 dims); a key
    bias turned by one step's angle makes q.k peak at offset 1 (q at m, k at m - 1)."""
    layer, head = PREVIOUS_TOKEN
    attention = model.gpt_neox.layers[layer].attention
    base = 3 * head * D_HEAD
    query, key = slice(base, base + D_HEAD), slice(base + D_HEAD, base + 2 * D_HEAD)
    attention.query_key_value.weight[query] = 0
    attention.query_key_value.weight[key] = 0
    scale = math.sqrt(D_HEAD)  # scores are q.k / sqrt(d_head): A = 100, B = 1000
    fast, slow = math.sqrt(100 * scale), math.sqrt(1000 * scale)
    bias = attention.query_key_value.bias
    bias[query] = 0
    bias[key] = 0
    bias[base + 0], bias[base + 1] = fast, slow
    bias[base + D_HEAD + 0] = fast * math.cos(1.0)
    bias[base + D_HEAD + 2] = fast * math.sin(1.0)
    bias[base + D_HEAD + 1] = slow * math.cos(0.01)
    bias[base + D_HEAD + 3] = slow * math.sin(0.01)


def planted_model(
    tokenizer: PreTrainedTokenizerFast, heads: Collection[tuple[int, int]] = tuple(PLANTED)
) -> GPTNeoXForCausalLM:
    """The seeded random model with the planted `heads` (keys of `PLANTED`) in place."""
    unknown = set(heads) - set(PLANTED)
    if unknown:
        raise ValueError(f"no planted head at {sorted(unknown)}; choose from {sorted(PLANTED)}")
    config = pythia_config(N_LAYERS, N_HEADS, D_MODEL, len(tokenizer))
    model = random_model(config, seed=WEIGHTS_SEED)
    with torch.no_grad():
        if COPYING in heads or SUPPRESSION in heads:
            plant_copy_codes(model, torch.Generator().manual_seed(CODES_SEED))
        if COPYING in heads:
            plant_copying(model, 1.0, COPYING)
        if SUPPRESSION in heads:
            plant_copying(model, -1.0, SUPPRESSION)
        if COUNTRY_TO_CAPITAL in heads:
            plant_country_to_capital(model, tokenizer)
        if PREVIOUS_TOKEN in heads:
            plant_previous_token(model)
    return model


def build_planted(
    out: Path,
    tokenizer: PreTrainedTokenizerFast,
    heads: Collection[tuple[int, int]] = tuple(PLANTED),
) -> Path:
    """Write `planted_model(tokenizer, heads)` and `tokenizer` to `out` (save_pretrained)."""
    return save_checkpoint(planted_model(tokenizer, heads), tokenizer, out)


ROLES: dict[str, tuple[int, int]] = {
    "copying": COPYING,
    "suppression": SUPPRESSION,
    "country_to_capital": COUNTRY_TO_CAPITAL,
    "previous_token": PREVIOUS_TOKEN,
}
"""The names `--appear` takes, and the planted head each one names."""
DEFAULT_SERIES_STEPS: tuple[int, ...] = (0, 1, 4, 16, 64, 256, 1000, 10000, 143000)
DEFAULT_APPEARANCE: dict[str, int] = {
    "previous_token": 4,
    "copying": 64,
    "suppression": 1000,
    "country_to_capital": 10000,
}
"""The step from which each role's head is planted in a series (absent before it)."""


def heads_at(step: int, appearance: dict[str, int]) -> tuple[tuple[int, int], ...]:
    """The planted heads of a series at `step`: each role whose appearance step is <= `step`."""
    return tuple(ROLES[role] for role, first in appearance.items() if first <= step)


def build_series(
    out: Path, steps: Collection[int], appearance: dict[str, int] = DEFAULT_APPEARANCE
) -> list[Path]:
    """A training series: `out/step<N>` for every N in `steps`, each the planted model with
    `heads_at(N, appearance)`; the random weights are the same at every step, so each head's
    label changes exactly when its planted role appears. Returns the folders written."""
    unknown = set(appearance) - set(ROLES)
    if unknown:
        raise InputError(f"unknown role {', '.join(sorted(unknown))}; use {', '.join(ROLES)}")
    if not steps or any(step < 0 for step in steps):
        raise InputError("series steps must be whole numbers >= 0, at least one")
    tokenizer = train_tokenizer()  # trained once: every step shares it, as Pythia's do
    return [
        build_planted(out / f"step{step}", tokenizer, heads_at(step, appearance))
        for step in sorted(set(steps))
    ]
