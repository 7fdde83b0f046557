"""The Pythia catalog: shapes, parameter counts, hub ids, checkpoints, memory estimates."""

from __future__ import annotations

import pytest
import torch

from lib.core.catalog import (
    LAYER_OVERHEAD_BYTES,
    REVISIONS,
    SIZES,
    hub_id,
    memory_estimate,
    size_of,
)
from lib.core.errors import InputError

# Total parameters as published in the Pythia model cards (EleutherAI/pythia README).
PUBLISHED_PARAMS = {
    "14m": 14_067_712,
    "31m": 30_494_720,
    "70m": 70_426_624,
    "160m": 162_322_944,
    "410m": 405_334_016,
    "1b": 1_011_781_632,
    "1.4b": 1_414_647_808,
    "2.8b": 2_775_208_960,
    "6.9b": 6_857_302_016,
    "12b": 11_846_072_320,
}


def test_parameter_counts_match_the_published_totals():
    assert {name: size.n_params for name, size in SIZES.items()} == PUBLISHED_PARAMS


def test_shapes_of_the_figure_model():
    size = SIZES["6.9b"]
    assert (size.n_layers, size.n_heads, size.d_model, size.d_head) == (32, 32, 4096, 128)


def test_revisions_are_the_154_training_checkpoints_then_main():
    assert REVISIONS[:12] == tuple(
        f"step{s}" for s in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
    )
    assert REVISIONS[-2:] == ("step143000", "main")
    assert len(REVISIONS) == 155 and len(set(REVISIONS)) == 155


def test_hub_ids_round_trip():
    for name, size in SIZES.items():
        for deduped in (False, True)[: 1 + size.has_deduped]:
            assert size_of(hub_id(name, deduped)) == size
    assert hub_id("70m", deduped=True) == "EleutherAI/pythia-70m-deduped"
    assert size_of("gpt2") is None


def test_unknown_size_is_an_input_error():
    with pytest.raises(InputError, match="unknown Pythia size '7b'"):
        hub_id("7b")


def test_memory_estimate_halves_in_half_precision():
    size = SIZES["12b"]
    shape = (size.d_model, size.vocab_rows)
    full = memory_estimate(size.n_params, *shape, torch.float32, size.n_layers)
    half = memory_estimate(size.n_params, *shape, torch.bfloat16, size.n_layers)
    overhead = size.n_layers * LAYER_OVERHEAD_BYTES  # objects, the same in any dtype
    assert full > 4 * size.n_params and abs((full - overhead) - 2 * (half - overhead)) <= 1


def test_only_sizes_with_a_deduped_run_get_a_deduped_hub_id():
    assert [name for name, size in SIZES.items() if not size.has_deduped] == ["14m", "31m"]
    assert hub_id("70m", deduped=True) == "EleutherAI/pythia-70m-deduped"
    assert hub_id("14m") == "EleutherAI/pythia-14m"
    with pytest.raises(InputError, match=r"^pythia-14m has no deduped run; deduped runs exist"):
        hub_id("14m", deduped=True)
