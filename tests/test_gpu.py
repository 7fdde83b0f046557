"""On a CUDA device (marker `gpu`, skipped without CUDA): the GPU's scores equal the CPU's
float32 scores of the same weights for every storage dtype, the resident model gives its GPU
memory back, and an out-of-memory error leaves the device usable.

The same code paths run on the CPU in `tests/test_precision.py` (float32 compute of 16-bit
storage), `tests/test_operations.py` (chunking, counts) and `tests/test_result_cache.py`
(release after an out-of-memory error)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from lib.checkpoints.loader import LoadedModel, load_model, open_checkpoint
from lib.core.errors import InputError
from lib.runs.resident import ModelKey, ResidentModel
from lib.scoring.operations import operation_scores
from lib.scoring.patterns import PatternSettings, ordinary_token_ids, pattern_scores
from lib.scoring.relations import relation_names, tokenize_relations
from tests.conftest import FEW_RELATIONS, upcast_copy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DTYPES = ("float32", "bfloat16", "float16")
SETTINGS = PatternSettings(batch=4, length=16)


def cpu_float32_scores(folder: str, dtype: str, names: tuple[str, ...]):
    """Operation and pattern scores on the CPU, in float32, of `folder`'s weights as stored
    in `dtype` (rounded to it, then upcast)."""
    reference = upcast_copy(load_model(folder, device="cpu", dtype=dtype))
    return scores(reference, names)


def scores(loaded: LoadedModel, names: tuple[str, ...]):
    relations, _ = tokenize_relations(loaded.tokenizer, names)
    operations = operation_scores(loaded.model, relations)
    patterns = pattern_scores(loaded.model, ordinary_token_ids(loaded.tokenizer), SETTINGS)
    return operations, patterns


def assert_gpu_equals_cpu(folder: str, dtype: str, names: tuple[str, ...]) -> None:
    gpu = load_model(folder, device="cuda", dtype=dtype)
    assert gpu.model.device.type == "cuda" and gpu.model.dtype == getattr(torch, dtype)
    (got, got_patterns), (expected, expected_patterns) = (
        scores(gpu, names),
        cpu_float32_scores(folder, dtype, names),
    )
    assert np.array_equal(got.promotion, expected.promotion)
    assert np.array_equal(got.suppression, expected.suppression)
    assert got_patterns == pytest.approx(expected_patterns, abs=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_planted_model_scores_on_the_gpu_as_on_the_cpu(planted_checkpoint, dtype):
    assert_gpu_equals_cpu(str(planted_checkpoint.path), dtype, relation_names())


@pytest.mark.parametrize("dtype", DTYPES)
def test_pythia_14m_shape_scores_on_the_gpu_as_on_the_cpu(pythia_14m_folder, dtype):
    assert_gpu_equals_cpu(str(pythia_14m_folder), dtype, FEW_RELATIONS)


def allocated() -> int:
    gc.collect()
    torch.cuda.empty_cache()
    return torch.cuda.memory_allocated()


def test_the_resident_model_gives_its_gpu_memory_back(pythia_14m_folder):
    before, reserved = allocated(), torch.cuda.memory_reserved()
    resident = ResidentModel()
    key = ModelKey(str(pythia_14m_folder), "local", "cuda", "float32")
    with resident.use(key) as loaded:
        relations, _ = tokenize_relations(loaded.tokenizer, FEW_RELATIONS)
        operation_scores(loaded.model, relations)
        assert allocated() > before
    del loaded
    resident.release()
    assert allocated() == before
    assert torch.cuda.memory_reserved() <= reserved  # cached blocks returned to the device too


def test_out_of_memory_releases_the_model_and_the_device_recovers(planted_checkpoint):
    before = allocated()
    resident = ResidentModel()
    key = ModelKey(str(planted_checkpoint.path), "local", "cuda", "bfloat16")
    with pytest.raises(InputError, match="ran out of memory"), resident.use(key):
        torch.empty(2**50, dtype=torch.uint8, device="cuda")  # a real allocation failure
    assert resident.key is None
    names = ("name_copying",)
    with resident.use(key) as loaded:  # the next loan returns what the failed one held
        got, _ = scores(loaded, names)
    expected, _ = cpu_float32_scores(str(planted_checkpoint.path), "bfloat16", names)
    assert np.array_equal(got.promotion, expected.promotion)
    del loaded
    resident.release()
    assert allocated() == before


@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
def test_a_streamed_checkpoint_scores_on_the_gpu_as_the_whole_model(pythia_14m_folder, dtype):
    """Each layer's tensors go to the GPU as they are read (`lib.scoring.weights_view`)."""
    folder = str(pythia_14m_folder)
    relations, _ = tokenize_relations(load_model(folder, device="cpu").tokenizer, FEW_RELATIONS)
    whole, streamed = (
        opener(folder, device="cuda", dtype=dtype) for opener in (load_model, open_checkpoint)
    )
    expected = operation_scores(whole, relations)
    got = operation_scores(streamed, relations)
    assert np.array_equal(got.promotion, expected.promotion)
    assert np.array_equal(got.suppression, expected.suppression)
    token_ids = ordinary_token_ids(streamed.tokenizer)
    # The same kernels on the same numbers; a kernel choice may still differ by alignment.
    assert pattern_scores(streamed, token_ids, SETTINGS) == pytest.approx(
        pattern_scores(whole, token_ids, SETTINGS), abs=1e-6
    )
