"""Operation scores: the batched, chunked engine against the per-head reference."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.fixtures.synthetic import train_tokenizer
from lib.scoring.operations import (
    EXTREMES_BLOCK,
    PairIndex,
    head_source_chunks,
    layer_operation_scores,
    operation_scores,
    row_extremes,
    salient_operations,
)
from lib.scoring.relations import MIN_PAIRS, TokenizedRelation, relation_names, tokenize_relations
from tests.reference import LOOP_ORDERS, count_beyond, reference_scores, single_token_pairs


@pytest.fixture(scope="module")
def relations(planted_model):
    valid, skipped = tokenize_relations(planted_model.tokenizer, relation_names())
    assert not skipped  # the tiny tokenizer keeps every relation valid
    return valid


@pytest.fixture(scope="module")
def engine_scores(planted_model, relations):
    return operation_scores(planted_model.model, relations)


@pytest.mark.parametrize("order", LOOP_ORDERS)
def test_engine_equals_reference_for_every_head_and_relation(
    planted_model, relations, engine_scores, order
):
    config = planted_model.model.config
    for layer in range(config.num_hidden_layers):
        for head in range(config.num_attention_heads):
            for r, relation in enumerate(relations):
                expected = reference_scores(
                    planted_model.model, planted_model.tokenizer, relation.name, layer, head, order
                )
                got = (
                    engine_scores.promotion[layer, head, r],
                    engine_scores.suppression[layer, head, r],
                )
                assert got == expected, (layer, head, relation.name)


@pytest.mark.parametrize(
    "rows_per_chunk",
    [
        1,  # one row: every head and every source split
        7,  # slices of sources, one head at a time
        "all sources",  # whole heads, one at a time
        "3 heads",  # 3 of 4 heads per chunk
        "everything",  # one chunk (as on a GPU with a large budget)
    ],
)
def test_chunk_sizes_never_change_the_result(
    planted_model, relations, engine_scores, monkeypatch, rows_per_chunk
):
    vocab = planted_model.model.config.vocab_size
    n_sources = len({t for r in relations for t in r.src})
    rows = {"all sources": n_sources, "3 heads": 3 * n_sources, "everything": 10**9}
    budget = rows.get(rows_per_chunk, rows_per_chunk) * vocab * 4
    monkeypatch.setattr("lib.scoring.operations.CPU_CHUNK_BYTES", budget)  # the CPU cap would win
    chunked = operation_scores(planted_model.model, relations, byte_budget=budget)
    assert np.array_equal(chunked.promotion, engine_scores.promotion)
    assert np.array_equal(chunked.suppression, engine_scores.suppression)


@st.composite
def tied_heads(draw):
    """A layer of heads with small-integer weights, so that logits are exact integers with
    many ties, and relations over its tokens (repeated sources, any k up to the vocabulary)."""
    n_heads, d_head, d_model = (draw(st.integers(1, n)) for n in (3, 3, 4))
    n_tokens, vocab = draw(st.integers(1, 6)), draw(st.integers(1, 12))
    small = st.integers(-2, 2)

    def matrix(*shape: int) -> torch.Tensor:
        n = int(np.prod(shape))
        values = draw(st.lists(small, min_size=n, max_size=n))
        return torch.tensor(values, dtype=torch.float32).reshape(shape)

    x, w_v, ou = (
        matrix(n_tokens, d_model),
        matrix(n_heads, d_head, d_model),
        matrix(n_heads, d_head, vocab),
    )
    relations = []
    for r in range(draw(st.integers(1, 3))):
        pairs = draw(
            st.lists(
                st.tuples(st.integers(0, n_tokens - 1), st.integers(0, vocab - 1)),
                min_size=1,
                max_size=8,
            )
        )
        src, dst = zip(*pairs, strict=True)
        relations.append(TokenizedRelation(f"r{r}", draw(st.integers(1, vocab)), src, dst))
    rows_per_chunk = draw(st.integers(1, n_heads * n_tokens + 1))
    return x, w_v, ou, tuple(relations), rows_per_chunk * vocab * 4


@settings(max_examples=200, deadline=None)
@given(tied_heads())
def test_engine_equals_the_count_definition_under_ties(case):
    x, w_v, ou, relations, budget = case
    index = PairIndex.build(relations, torch.device("cpu"))
    got = layer_operation_scores(x[index.sources], w_v, ou, relations, index, budget)
    proj = (x @ w_v.transpose(1, 2)) @ ou  # (H, tokens, V), exact small integers
    for r, relation in enumerate(relations):
        for h in range(len(proj)):
            rows = proj[h, list(relation.src)]
            target = rows[range(len(rows)), list(relation.dst)][:, None]
            k, n = relation.k, len(rows)
            # The definition: fewer than k entries strictly beyond the target's.
            promoted = int(((rows > target).sum(-1) < k).sum()) / n
            suppressed = int(((rows < target).sum(-1) < k).sum()) / n
            # The engine's formulation: at least the k-th largest / at most the k-th smallest
            # value of the row (ties count for the head); and the count written out.
            kth_largest = rows.topk(k, dim=-1).values[:, -1:]
            kth_smallest = rows.topk(k, dim=-1, largest=False).values[:, -1:]
            assert promoted == int((target >= kth_largest).sum()) / n
            assert suppressed == int((target <= kth_smallest).sum()) / n
            greater, smaller = count_beyond(rows[None], torch.tensor(relation.dst))
            assert promoted == int((greater < k).sum()) / n
            assert suppressed == int((smaller < k).sum()) / n
            assert (got[0][h, r], got[1][h, r]) == (promoted, suppressed)


@given(
    n_heads=st.integers(1, 6),
    n_sources=st.integers(1, 40),
    rows_per_chunk=st.integers(1, 300),
)
def test_chunks_cover_each_row_once_within_budget(n_heads, n_sources, rows_per_chunk):
    seen = np.zeros((n_heads, n_sources), dtype=int)
    for heads, sources in head_source_chunks(n_heads, n_sources, 10, 10 * rows_per_chunk):
        seen[heads, sources] += 1
        rows = (heads.stop - heads.start) * (sources.stop - sources.start)
        assert rows <= rows_per_chunk
    assert (seen == 1).all()


def test_relations_with_too_few_pairs_are_skipped_and_counted():
    tokenizer = train_tokenizer(vocab_size=2048)
    valid, skipped = tokenize_relations(tokenizer, relation_names())
    assert skipped and valid
    for relation in skipped:
        n_pairs = len(single_token_pairs(tokenizer, relation.name))
        assert relation.n_pairs == n_pairs < MIN_PAIRS
    for relation in valid:
        assert len(relation.src) == len(single_token_pairs(tokenizer, relation.name)) >= MIN_PAIRS
        assert relation.k == (1 if "copying" in relation.name else 10)


def test_salient_operations_of_the_copying_head_map_tokens_to_themselves(
    planted_model, planted_checkpoint
):
    layer, head = planted_checkpoint.where("general_copying_english_500")
    table = salient_operations(planted_model, layer, head, n_tokens=12, k=3)
    assert list(table.columns) == ["rank", "token_id", "token", "amplification", "mapped_tokens"]
    assert len(table) == 12 and table["amplification"].is_monotonic_decreasing
    assert [mapped[0] for mapped in table["mapped_tokens"]] == list(table["token"])
    later = salient_operations(planted_model, *planted_checkpoint.where("previous_token"), 3, 2)
    assert len(later) == 3 and all(len(mapped) == 2 for mapped in later["mapped_tokens"])


def test_salient_operations_never_list_special_tokens(planted_model):
    # A special token given the embedding of the head's most amplified token amplifies as much.
    best = int(salient_operations(planted_model, 0, 0, n_tokens=1)["token_id"][0])
    special = planted_model.tokenizer.all_special_ids[0]
    model = copy.deepcopy(planted_model.model)
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        embeddings[special] = embeddings[best]
    table = salient_operations(dataclasses.replace(planted_model, model=model), 0, 0, n_tokens=5)
    assert best in table["token_id"].tolist() and special not in table["token_id"].tolist()


@settings(max_examples=100, deadline=None)
@given(
    n_blocks=st.integers(1, 12),
    k=st.integers(1, 8),
    rows=st.integers(1, 5),
    spread=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_row_extremes_are_exactly_topks_values_under_ties(n_blocks, k, rows, spread, seed):
    """Block path (V a multiple of the block width, k small enough) and the fallback alike;
    small-integer logits tie often, within and across blocks."""
    vocab = n_blocks * EXTREMES_BLOCK + (seed % 2) * (seed % EXTREMES_BLOCK)  # some not multiples
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randint(-spread, spread + 1, (rows, vocab), generator=generator).float()
    k = min(k, vocab)
    top, bottom = row_extremes(logits, k)
    assert torch.equal(top, logits.topk(k, dim=-1).values)
    assert torch.equal(bottom, logits.topk(k, dim=-1, largest=False).values)


def test_row_extremes_on_pythia_wide_rows_with_heavy_ties():
    """50304 columns (Pythia's rows), k = 10: the block path, with the row's extremes tied
    across many blocks."""
    logits = torch.randint(-3, 4, (7, 50304), generator=torch.Generator().manual_seed(0)).float()
    logits[0, :10] = 9.0  # the top ten in one block
    logits[1, ::EXTREMES_BLOCK] = -9.0  # the bottom values one per block
    top, bottom = row_extremes(logits, 10)
    assert torch.equal(top, logits.topk(10, dim=-1).values)
    assert torch.equal(bottom, logits.topk(10, dim=-1, largest=False).values)
