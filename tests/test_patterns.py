"""Attention-pattern scores: definitions on hand-made patterns, and the planted head."""

from __future__ import annotations

import pytest
import torch

from lib.scoring.patterns import (
    PatternSettings,
    head_pattern_scores,
    ordinary_token_ids,
    pattern_scores,
    repeated_random_tokens,
)
from lib.tables.labels import PATTERNS
from tests.reference import pattern_targets, reference_pattern_scores, target_score

N = 5  # half length of the hand-made sequences


def shifted(offset: int) -> torch.Tensor:
    """(1, 1, 2N, 2N) attention from every row i >= offset to i - offset (row i < offset: 0)."""
    size = 2 * N
    attention = torch.zeros(1, 1, size, size)
    for i in range(size):
        attention[0, 0, i, max(i - offset, 0)] = 1.0
    return attention


def scores(attention: torch.Tensor) -> dict[str, float]:
    return dict(zip(PATTERNS, head_pattern_scores(attention, N)[0].tolist(), strict=True))


@pytest.mark.parametrize(
    ("attention", "perfect"),
    [
        (shifted(1), "previous_token"),
        (shifted(N), "duplicate_token"),
        (shifted(N - 1), "induction"),
    ],
)
def test_a_perfect_head_scores_one(attention, perfect):
    assert scores(attention)[perfect] == 1.0


def test_scores_equal_the_target_pattern_definition():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 2 * N, 2 * N, generator=generator)
    causal = torch.ones(2 * N, 2 * N).tril().bool()
    attention = logits.masked_fill(~causal, float("-inf")).softmax(-1)
    targets = pattern_targets(N)
    got = head_pattern_scores(attention, N)
    for h in range(3):
        for p, name in enumerate(PATTERNS):
            expected = target_score(attention[:, h : h + 1], targets[name])
            assert got[h, p].item() == pytest.approx(expected, abs=1e-6)


def test_random_sequences_repeat_distinct_tokens_reproducibly():
    settings = PatternSettings(batch=3, length=7, seed=5)
    pool = torch.arange(100, 200)
    tokens = repeated_random_tokens(pool, settings)
    assert tokens.shape == (3, 14) and tokens.min() >= 100 and tokens.max() < 200
    assert torch.equal(tokens[:, :7], tokens[:, 7:])
    assert all(len(set(row[:7].tolist())) == 7 for row in tokens)
    assert torch.equal(tokens, repeated_random_tokens(pool, settings))


def test_planted_previous_token_head_tops_the_ranking(planted_model, planted_checkpoint):
    model = planted_model.model
    result = pattern_scores(model, ordinary_token_ids(planted_model.tokenizer))
    assert result.shape == (model.config.num_hidden_layers, model.config.num_attention_heads, 4)
    assert ((result >= 0) & (result <= 1)).all()
    previous = result[:, :, PATTERNS.index("previous_token")]
    layer, head = planted_checkpoint.where("previous_token")
    assert previous[layer, head] > 0.99
    previous[layer, head] = 0
    assert previous.max() < 0.2


def test_engine_equals_the_per_prompt_per_head_reference(planted_model):
    model, token_ids = planted_model.model, ordinary_token_ids(planted_model.tokenizer)
    settings = PatternSettings(batch=3, length=9, seed=2)
    tokens = repeated_random_tokens(token_ids, settings)
    expected = reference_pattern_scores(model, tokens, settings.length)
    assert list(pattern_targets(settings.length)) == list(PATTERNS)
    got = pattern_scores(model, token_ids, settings)
    assert got == pytest.approx(expected.numpy(), abs=1e-6)


def test_special_tokens_are_never_drawn(planted_model):
    tokenizer = planted_model.tokenizer
    token_ids = ordinary_token_ids(tokenizer)
    special = set(tokenizer.all_special_ids)
    assert special and not special & set(token_ids.tolist())
    assert len(token_ids) == len(tokenizer) - len(special)
