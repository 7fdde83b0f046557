"""Hostile templates: long ones keep the in-context check's memory within its byte budget (the
batch plan counts attention, which grows with the square of a prompt's length, and padding)
and change no score; one longer than the model's context is refused in one line, by the
engine and the command line, before any work."""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import lib.scoring.dynamic
from lib.checkpoints.loader import LoadedModel
from lib.core.errors import InputError, run_cli
from lib.dynamic import main
from lib.fixtures.synthetic import pythia_config, save_checkpoint
from lib.scoring.dynamic import (
    PromptStream,
    TemplateTokens,
    dynamic_scores,
    in_context,
    prompt_bytes,
    prompt_templates,
    prompts_per_batch,
    sources_per_group,
    template_tokens,
)
from lib.scoring.relations import PromptRelation, tokenize_relations

MIB = 2**20
PYTHIA_160M = SimpleNamespace(config=pythia_config(12, 12, 768, 50304))
"""What `prompts_per_batch` reads of a model: its config, here Pythia-160m's shape."""


def template_of(length: int) -> TemplateTokens:
    """A template whose prompts are `length` tokens long."""
    return TemplateTokens(prefix=(7,) * (length - 1), suffix=())


def attention_bytes(model: SimpleNamespace, n_prompts: int, length: int) -> int:
    """A forward pass's attention scores and probabilities, each batch x heads x length^2
    float32, which exist together at the softmax."""
    return 2 * n_prompts * model.config.num_attention_heads * length**2 * 4


@pytest.mark.parametrize("length", [8, 100, 400, 800, 1600, 2048])
def test_the_batch_plan_keeps_long_templates_within_the_budget(length):
    budget = 128 * MIB
    prompts = prompts_per_batch(PYTHIA_160M, [template_of(length), template_of(5)], budget)
    if prompt_bytes(PYTHIA_160M.config, length) <= budget:  # one prompt fits
        assert attention_bytes(PYTHIA_160M, prompts, length) <= budget
        assert prompts * prompt_bytes(PYTHIA_160M.config, length) + 5 * length**2 <= budget
    else:  # the smallest batch: one prompt
        assert prompts == 1
    if length == 8:  # short templates keep large batches
        assert prompts >= 300


def test_the_batch_plan_counts_the_padding_to_the_longest_template():
    # The prompts of a batch are padded to the longest one (`prompt_batch`).
    budget = 128 * MIB
    mixed = prompts_per_batch(PYTHIA_160M, [template_of(600), template_of(6)], budget)
    assert mixed == prompts_per_batch(PYTHIA_160M, [template_of(600)] * 2, budget)
    assert attention_bytes(PYTHIA_160M, mixed, 600) <= budget


def test_a_long_template_runs_within_a_small_budget_and_scores_as_in_one_batch(
    planted_model, monkeypatch
):
    relations, _ = tokenize_relations(planted_model.tokenizer, ("country_to_capital_wikidata",))
    long = "The story of <X> " + "and so on " * 60 + "contains"
    templates = (long, "No <X> means no")
    length = max(t.length for t in prompt_templates(planted_model, templates))
    assert length > 150
    batches: list[tuple[int, int]] = []
    products: list[int] = []
    start, unembedding = PromptStream.start.__func__, lib.scoring.dynamic.output_unembedding

    def recorded_start(cls, view, input_ids, source, last):
        batches.append(tuple(input_ids.shape))
        return start(cls, view, input_ids, source, last)

    def recorded_unembedding(w_o, w_u):
        products.append(1)
        return unembedding(w_o, w_u)

    monkeypatch.setattr(PromptStream, "start", classmethod(recorded_start))
    monkeypatch.setattr(lib.scoring.dynamic, "output_unembedding", recorded_unembedding)
    budget = 16 * MIB
    small = dynamic_scores(planted_model, relations, templates, byte_budget=budget)
    assert len(batches) > 1  # the budget split the prompts
    config = planted_model.model.config
    for n_prompts, padded in batches:  # half the budget for the forward pass
        assert padded <= length
        assert attention_bytes(planted_model.model, n_prompts, padded) <= budget // 2
        assert n_prompts * prompt_bytes(config, padded) + 5 * padded**2 <= budget // 2
    # The other half holds a group's residual streams between layers and one layer's head
    # vectors: each layer's W_O W_U product is formed once a group, not once a batch (small
    # batches would cost as many 50k-column products).
    n_sources = len({word for word in relations[0].src})
    group = sources_per_group(planted_model.model, len(templates), budget // 2, length)
    assert group * len(templates) * (length + 2) * config.hidden_size * 4 <= budget // 2
    n_groups = -(-n_sources // group)
    assert 1 < n_groups < len(batches)
    assert len(products) == n_groups * config.num_hidden_layers
    in_one = dynamic_scores(planted_model, relations, templates, batch_prompts=10**6)
    assert np.array_equal(small.fractions, in_one.fractions)


@pytest.fixture(scope="module")
def short_context(planted_model) -> LoadedModel:
    """The planted model with a context of 32 positions (a copy: the session's stays)."""
    model = copy.deepcopy(planted_model.model)
    model.config.max_position_embeddings = 32
    return replace(planted_model, model=model)


def template_with(loaded: LoadedModel, n_tokens: int) -> str:
    """A template whose prompts, source word filled in, are `n_tokens` tokens long."""
    for words in range(n_tokens):
        template = "The story of <X>" + " x" * words
        if template_tokens(loaded.tokenizer, template).length == n_tokens:
            return template
    raise AssertionError(f"no template of {n_tokens} tokens")


def test_a_template_longer_than_the_context_is_refused_before_any_work(short_context):
    fits, too_long = template_with(short_context, 32), template_with(short_context, 33)
    prompt_templates(short_context, [fits])  # exactly the context: fine
    calls: list[str] = []
    with pytest.raises(InputError) as refused:
        in_context(
            short_context,
            ("country_to_capital_wikidata",),
            ("No <X> means no", too_long),
            progress=lambda fraction, message: calls.append(message),
        )
    message = str(refused.value)
    assert message.startswith("template 'The story of <X> x x x")
    assert "is 33 tokens long with its source word; this model reads at most 32" in message
    assert "\n" not in message and not calls  # refused before the static scores


def words_of(loaded: LoadedModel, n_tokens: int) -> PromptRelation:
    """Pairs of the planted capitals relation whose sources are `n_tokens` of its source words
    in a row (" France Spain"), so `n_tokens` tokens each."""
    (relation,), _ = tokenize_relations(loaded.tokenizer, ("country_to_capital_wikidata",))
    n_pairs = len(relation.src) - n_tokens + 1
    src = tuple(relation.src[i : i + n_tokens] for i in range(n_pairs))
    return PromptRelation(relation.name, relation.k, src, relation.dst[:n_pairs], True)


def test_the_context_check_counts_the_longest_source_words_tokens(short_context, monkeypatch):
    template = template_with(short_context, 31)  # 31 tokens with a one-token source word
    padded: list[int] = []
    start = PromptStream.start.__func__

    def recorded_start(cls, view, input_ids, source, last):
        padded.append(input_ids.shape[1])
        return start(cls, view, input_ids, source, last)

    monkeypatch.setattr(PromptStream, "start", classmethod(recorded_start))
    dynamic_scores(short_context, (words_of(short_context, 2),), (template,))
    assert max(padded) == 32  # exactly the context, as estimated: the prompts run
    calls: list[str] = []
    with pytest.raises(InputError) as refused:
        dynamic_scores(
            short_context,
            (words_of(short_context, 3),),
            (template,),
            progress=lambda fraction, message: calls.append(message),
        )
    message = str(refused.value)
    assert "is 33 tokens long with its 3-token source word; this model reads at most 32" in message
    assert not calls and padded == [32]  # refused before any forward pass


def test_the_command_line_refuses_a_too_long_template_in_one_line(short_context, tmp_path, capsys):
    folder = save_checkpoint(short_context.model, short_context.tokenizer, tmp_path / "model")
    capsys.readouterr()  # saving's own progress bar
    templates = tmp_path / "templates.txt"
    templates.write_text(f"No <X> means no\n{template_with(short_context, 40)}\n")
    out = tmp_path / "dyn.csv"
    argv = ["--model", str(folder), "--device", "cpu", "--relations", "name_copying"]
    assert run_cli(main, [*argv, "--templates", str(templates), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is 40 tokens long" in error and "at most 32" in error
    assert not out.exists()


def test_a_huge_template_is_quoted_short():
    huge = "The story of <X> " + "é" * 8000
    with pytest.raises(InputError) as refused:
        lib.scoring.dynamic.check_templates([huge, huge])
    assert len(str(refused.value)) < 120 and "…" in str(refused.value)
