"""Scores do not depend on the stored dtype: a bfloat16 or float16 copy of a checkpoint scores
exactly as the float32 model holding the same (upcast) weights, and scoring leaves the stored
weights as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.checkpoints.loader import LoadedModel, load_model
from lib.fixtures.planted import COPY_DIMS
from lib.fixtures.synthetic import save_checkpoint
from lib.scoring.operations import operation_scores, salient_operations
from lib.scoring.patterns import PatternSettings, ordinary_token_ids, pattern_scores
from lib.scoring.precision import MATMUL_BACKENDS, float32_forward, float32_matmul, float32_modules
from lib.scoring.relations import relation_names, tokenize_relations
from tests.conftest import FEW_RELATIONS, upcast_copy

HALF = ("bfloat16", "float16")


def stored_state(model: torch.nn.Module) -> dict[str, tuple[int, torch.dtype]]:
    return {name: (p.data_ptr(), p.dtype) for name, p in model.named_parameters()}


def assert_dtype_independent(half: LoadedModel, relation_names: tuple[str, ...]) -> None:
    reference = upcast_copy(half)
    relations, _ = tokenize_relations(half.tokenizer, relation_names)
    before = stored_state(half.model)
    got = operation_scores(half.model, relations)
    expected = operation_scores(reference.model, relations)
    assert np.array_equal(got.promotion, expected.promotion)
    assert np.array_equal(got.suppression, expected.suppression)
    token_ids = ordinary_token_ids(half.tokenizer)
    settings = PatternSettings(batch=2, length=16)
    patterns = pattern_scores(half.model, token_ids, settings)
    assert patterns == pytest.approx(pattern_scores(reference.model, token_ids, settings), abs=1e-6)
    assert stored_state(half.model) == before  # the very same stored tensors, still 16-bit


def test_a_tie_that_only_bfloat16_arithmetic_makes_does_not_count(planted_checkpoint, tmp_path):
    """A competitor one bfloat16 step above a copying target: in float32 it beats the target
    (the pair does not count, k = 1), in bfloat16 arithmetic the two logits round to a tie,
    which would count for the head. Scores formed in bfloat16 fail this test."""
    loaded = load_model(str(planted_checkpoint.path), device="cpu", dtype="bfloat16")
    model = loaded.model
    (relation,), _ = tokenize_relations(loaded.tokenizer, ("general_copying_english_500",))
    source, rival = relation.src[0], relation.dst[1]
    z = model.get_input_embeddings().weight[source, COPY_DIMS]  # what the copying head reads
    with torch.no_grad():
        unembedding = model.get_output_embeddings().weight
        row = unembedding[source, COPY_DIMS].clone()
        d = int((z * row).argmax())
        row[d] = torch.nextafter(row[d], torch.tensor(float("inf"), dtype=row.dtype))
        unembedding[rival, COPY_DIMS] = row
    target, above = unembedding[source, COPY_DIMS], row
    assert z @ target == z @ above  # bfloat16 arithmetic: a tie
    assert z.float() @ target.float() < z.float() @ above.float()  # float32: the rival is above
    folder = save_checkpoint(model, loaded.tokenizer, tmp_path)
    half = load_model(str(folder), device="cpu", dtype="bfloat16")
    got = operation_scores(half.model, (relation,)).promotion[0, 0, 0]
    expected = operation_scores(upcast_copy(half).model, (relation,)).promotion[0, 0, 0]
    assert got == expected < 1


@pytest.mark.parametrize("dtype", HALF)
def test_planted_model_in_half_precision_scores_as_float32(planted_checkpoint, dtype):
    half = load_model(str(planted_checkpoint.path), device="cpu", dtype=dtype)
    assert half.model.dtype == getattr(torch, dtype)
    assert_dtype_independent(half, relation_names())


@pytest.mark.parametrize("dtype", HALF)
def test_pythia_14m_shape_in_half_precision_scores_as_float32(pythia_14m_folder, dtype):
    half = load_model(str(pythia_14m_folder), device="cpu", dtype=dtype)
    assert_dtype_independent(half, FEW_RELATIONS)


def test_salient_operations_do_not_depend_on_the_stored_dtype(planted_checkpoint):
    half = load_model(str(planted_checkpoint.path), device="cpu", dtype="bfloat16")
    got = salient_operations(half, 1, 2, n_tokens=8, k=5)
    expected = salient_operations(upcast_copy(half), 1, 2, n_tokens=8, k=5)
    assert got.equals(expected)


def test_float32_matmul_turns_reduced_precision_off_and_restores_it():
    before = [backend.fp32_precision for backend in MATMUL_BACKENDS]
    try:
        for backend in MATMUL_BACKENDS:
            backend.fp32_precision = "tf32"
        with pytest.raises(RuntimeError), float32_matmul():
            assert [b.fp32_precision for b in MATMUL_BACKENDS] == ["ieee"] * len(before)
            raise RuntimeError("a failure inside the block")
        assert [b.fp32_precision for b in MATMUL_BACKENDS] == ["tf32"] * len(before)
    finally:
        for backend, precision in zip(MATMUL_BACKENDS, before, strict=True):
            backend.fp32_precision = precision


def test_float32_forward_upcasts_one_module_at_a_time_and_restores_on_failure(planted_checkpoint):
    model = load_model(str(planted_checkpoint.path), device="cpu", dtype="bfloat16").model
    before = stored_state(model)
    seen = []

    def count_float32(_module, _args, _output):
        seen.append(sum(p.dtype == torch.float32 for p in model.parameters()))

    layers = model.gpt_neox.layers
    watchers = [m.register_forward_hook(count_float32) for m in layers[0].attention.modules()]
    with torch.inference_mode(), float32_forward(model):
        hidden = model.base_model(torch.arange(3, 11)[None]).last_hidden_state
    for watcher in watchers:
        watcher.remove()
    assert hidden.dtype == torch.float32
    assert max(seen) == 2  # one Linear's weight and bias upcast while it runs, nothing else
    assert stored_state(model) == before

    def fail(*_args, **_kwargs):
        raise RuntimeError("out of memory inside a layer")

    failing = layers[1].mlp.dense_h_to_4h
    with torch.inference_mode(), float32_forward(model):
        failing.forward = fail  # raises after its weights were upcast, before they are restored
        with pytest.raises(RuntimeError):
            model.base_model(torch.arange(3, 11)[None])
    del failing.forward
    assert stored_state(model) == before
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_float32_modules_puts_back_the_stored_tensors(planted_checkpoint):
    model = load_model(str(planted_checkpoint.path), device="cpu", dtype="float16").model
    mlp = model.gpt_neox.layers[0].mlp
    before = stored_state(mlp)
    with float32_modules(mlp):
        assert all(p.dtype == torch.float32 for p in mlp.parameters())
    assert stored_state(mlp) == before
