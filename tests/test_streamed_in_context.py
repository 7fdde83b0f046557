"""The in-context scores read a checkpoint one layer at a time, layers outer and prompt batches
inner: the same numbers, exactly, as the whole model and as the loop before (each batch through
every layer, every layer read again for each batch); each layer is read once a group of
sources (once a pass when a source's prompts do not fit the budget between layers); and
`python -m lib.dynamic` on a folder never asks transformers to build a model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lib.checkpoints.loader
from lib.checkpoints.loader import (
    StreamedCheckpoint,
    inspect_folder,
    load_model,
    open_checkpoint,
    streamed_memory_estimate,
)
from lib.checkpoints.neox import VALUE, split_heads
from lib.checkpoints.weights import CheckpointWeights
from lib.core.errors import InputError
from lib.dynamic import main as dynamic_main
from lib.fixtures.synthetic import build_checkpoint
from lib.runs.classification import RunRequest, model_key
from lib.runs.resident import ResidentModel
from lib.scoring.dynamic import (
    DEFAULT_TEMPLATES,
    SourcePairs,
    count_hits,
    dynamic_scores,
    in_context,
    prompt_batch,
    prompt_templates,
    prompts_per_batch,
)
from lib.scoring.operations import head_ov_weights, output_unembedding
from lib.scoring.precision import float32_matmul, float32_modules, to_float32
from lib.scoring.relations import PromptRelation, tokenize_relations
from lib.scoring.weights_view import weights_view
from tests.conftest import FEW_RELATIONS, Planted
from tests.test_streamed import no_model_load  # noqa: F401 (the fixture)

RELATIONS = ("general_copying_english_500", "country_to_capital_wikidata")


def per_batch_vectors(view, input_ids, source, last):
    """The loop before: one batch through every layer, each layer read for it (the former
    `head_vectors`, verbatim but for its name)."""
    n_prompts, length = input_ids.shape
    n_heads = view.config.num_attention_heads
    hidden = to_float32(view.input_embedding_rows(input_ids))
    positions = torch.arange(length).expand(n_prompts, length)
    cos, sin = view.rotary()(hidden, positions)
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    mask = torch.zeros(1, 1, length, length)
    mask.masked_fill_(future, torch.finfo(torch.float32).min)
    prompts = torch.arange(n_prompts)
    captured: dict[str, torch.Tensor] = {}

    def values(module: nn.Module, args: Any, qkv: torch.Tensor) -> None:
        captured["source"] = split_heads(qkv, n_heads)[prompts, source, :, VALUE]

    def outputs(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured["context"] = args[0].view(n_prompts, length, n_heads, -1)[prompts, last]

    for index in range(view.config.num_hidden_layers):
        layer = view.layer_module(index)
        handles = [
            layer.attention.query_key_value.register_forward_hook(values),
            layer.attention.dense.register_forward_pre_hook(outputs),
        ]
        with float32_modules(layer):
            hidden = layer(hidden, attention_mask=mask, position_embeddings=(cos, sin))
        for handle in handles:
            handle.remove()
        yield captured["source"].transpose(0, 1), captured["context"].transpose(0, 1)


def per_batch_scores(loaded, relations, templates) -> np.ndarray:
    """The former engine in one group of sources: batches outer, layers inner, every layer's
    vectors kept, then each layer's logits from its W_O read again."""
    view = weights_view(loaded)
    config = view.config
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    relations = tuple(PromptRelation.of(r) for r in relations)
    tokens = prompt_templates(loaded, templates)
    step = prompts_per_batch(view, tokens, 128 * 2**20)
    pairs = SourcePairs.build(relations, view.device)
    n_prompts = len(pairs.sources) * len(templates)
    vectors = torch.empty(n_layers, 2, n_heads, n_prompts, config.hidden_size // n_heads)
    counts = np.zeros((4, n_layers, n_heads, len(relations), len(templates)))
    pad = loaded.tokenizer.eos_token_id or 0
    with torch.inference_mode(), float32_matmul():
        for start in range(0, n_prompts, step):
            rows = range(start, min(start + step, n_prompts))
            ids, source, last = prompt_batch(loaded.tokenizer, templates, pairs.sources, pad, rows)
            for layer, (z_source, z_context) in enumerate(
                per_batch_vectors(view, ids, source, last)
            ):
                vectors[layer, 0, :, start : rows.stop] = z_source
                vectors[layer, 1, :, start : rows.stop] = z_context
        w_u = to_float32(view.unembedding())
        for layer in range(n_layers):
            ou = output_unembedding(head_ov_weights(view, layer)[1], w_u)
            for v, z in enumerate(vectors[layer]):
                hits = count_hits(z, ou, pairs, len(templates), len(relations), 128 * 2**20)
                counts[2 * v : 2 * v + 2, layer] += hits.numpy()
    return counts / np.array([len(r.src) for r in relations], dtype=float)[:, None]


@pytest.fixture
def layer_reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """(layer, part) -> how often a checkpoint's layer tensors were read."""
    reads: Counter = Counter()
    read = CheckpointWeights.layer

    def counted(self, layer: int, part: str = "") -> dict[str, torch.Tensor]:
        reads[(layer, part)] += 1
        return read(self, layer, part)

    monkeypatch.setattr(CheckpointWeights, "layer", counted)
    return reads


def assert_layer_major_equals_whole_and_per_batch(folder: str, relation_names) -> None:
    relations, _ = tokenize_relations(
        open_checkpoint(folder, device="cpu").tokenizer, relation_names
    )
    templates = DEFAULT_TEMPLATES[:2]
    whole, streamed = load_model(folder, device="cpu"), open_checkpoint(folder, device="cpu")
    layer_major = dynamic_scores(streamed, relations, templates).fractions
    assert np.array_equal(layer_major, dynamic_scores(whole, relations, templates).fractions)
    assert np.array_equal(layer_major, per_batch_scores(whole, relations, templates))
    assert np.array_equal(layer_major, per_batch_scores(streamed, relations, templates))


def test_layer_major_equals_whole_and_the_per_batch_loop_on_the_planted_checkpoint(
    planted_checkpoint: Planted,
) -> None:
    assert_layer_major_equals_whole_and_per_batch(str(planted_checkpoint.path), RELATIONS)


def test_layer_major_equals_on_a_pythia_shaped_checkpoint_with_the_real_tokenizer(
    tmp_path: Path,
) -> None:
    folder = build_checkpoint(
        tmp_path, shape=(2, 4, 64), vocab_rows=50304, dtype=torch.bfloat16, seed=5
    )
    assert_layer_major_equals_whole_and_per_batch(str(folder), FEW_RELATIONS)


def test_each_layer_is_read_once_a_run(planted_checkpoint: Planted, layer_reads: Counter) -> None:
    streamed = open_checkpoint(str(planted_checkpoint.path), device="cpu")
    relations, _ = tokenize_relations(streamed.tokenizer, RELATIONS)
    dynamic_scores(streamed, relations)  # the budget holds every prompt: one group, one pass
    n_layers = streamed.config.num_hidden_layers
    assert layer_reads == Counter({(layer, ""): 1 for layer in range(n_layers)})


def test_a_budget_too_small_for_one_sources_prompts_reads_every_layer_once_a_pass(
    planted_checkpoint: Planted, layer_reads: Counter
) -> None:
    streamed = open_checkpoint(str(planted_checkpoint.path), device="cpu")
    (relation,), _ = tokenize_relations(streamed.tokenizer, RELATIONS[1:])
    relation = PromptRelation.of(relation)
    few = (PromptRelation(relation.name, relation.k, relation.src[:3], relation.dst[:3]),)
    roomy = dynamic_scores(streamed, few)
    layer_reads.clear()
    # Half the budget holds one prompt between layers: each prompt is a pass of its own.
    config = streamed.config
    tiny = dynamic_scores(streamed, few, byte_budget=2 * 4 * 8 * config.hidden_size)
    n_layers, n_prompts = config.num_hidden_layers, 3 * len(DEFAULT_TEMPLATES)
    assert layer_reads == Counter({(layer, ""): n_prompts for layer in range(n_layers)})
    assert np.array_equal(tiny.fractions, roomy.fractions)


@pytest.mark.usefixtures("no_model_load")
def test_the_command_streams_by_default_and_loads_no_model(
    planted_checkpoint: Planted, planted_model, tmp_path: Path
) -> None:
    out = tmp_path / "dyn.csv"
    argv = ["--model", str(planted_checkpoint.path), "--device", "cpu"]
    argv += ["--relations", ",".join(RELATIONS), "--out", str(out)]
    assert dynamic_main(argv) == 0
    expected = in_context(planted_model, RELATIONS).table
    written = pd.read_csv(out)
    for column in ("static_score", "dynamic_score", "dynamic_score_in_context"):
        assert np.allclose(written[column], expected[column], rtol=0, atol=1e-12), column
    with pytest.raises(AssertionError, match="from_pretrained was called"):
        dynamic_main([*argv[:-1], str(tmp_path / "whole.csv"), "--weights", "whole"])


def test_the_in_context_check_is_sized_by_the_streamed_estimate(
    planted_checkpoint: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the page lends the check (`ResidentModel.read`) is refused, in one line, exactly
    when the streamed estimate does not fit (public mode's cap for the check is that one)."""
    folder = str(planted_checkpoint.path)
    needed = streamed_memory_estimate(inspect_folder(folder), torch.float32)
    key = model_key(RunRequest(folder, device="cpu", dtype="float32"))
    monkeypatch.setattr(lib.checkpoints.loader, "free_memory", lambda device: needed)
    with ResidentModel().read(key) as loaded:
        assert isinstance(loaded, StreamedCheckpoint)
        in_context(loaded, RELATIONS[1:], DEFAULT_TEMPLATES[:1])
    monkeypatch.setattr(lib.checkpoints.loader, "free_memory", lambda device: needed - 1)
    refused = rf"needs about {needed / 2**30:.1f} GiB in float32"
    with pytest.raises(InputError, match=refused), ResidentModel().read(key):
        pass
