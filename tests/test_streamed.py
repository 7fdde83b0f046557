"""Scores from a checkpoint read one layer at a time equal, exactly, the scores of the model
loaded whole (`lib.checkpoints.weights`, `lib.scoring.weights_view`): on the planted
checkpoint stored in float32, bfloat16 and float16, on a Pythia-shaped one with the real
tokenizer, on a sharded folder; the streamed command never asks transformers to load a model,
and a folder missing a tensor is refused with the same line either way."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, GPTNeoXForCausalLM, PreTrainedModel

import lib.checkpoints.loader
from lib.app.public_mode import DEFAULT_MAX_SIZE
from lib.checkpoints.loader import load_model, open_checkpoint
from lib.checkpoints.weights import INPUT_EMBEDDING
from lib.classify import main as classify_main
from lib.core.catalog import SIZES, streamed_memory_estimate
from lib.core.errors import InputError
from lib.fixtures.planted import planted_model
from lib.fixtures.pythia_tokenizer import pythia_tokenizer
from lib.fixtures.synthetic import build_checkpoint, save_checkpoint, train_tokenizer
from lib.runs.resident import ModelKey, ResidentModel
from lib.scoring.dynamic import DEFAULT_TEMPLATES, in_context
from lib.scoring.operations import salient_operations
from lib.scoring.patterns import layer_attentions, ordinary_token_ids, repeated_random_tokens
from lib.scoring.pipeline import ClassifySettings, classify_heads
from lib.scoring.precision import float32_forward, float32_matmul
from lib.tables.labels import PATTERNS
from tests.conftest import FEW_RELATIONS, Planted
from tests.test_hub import COMMIT, REPO, hub_cache  # noqa: F401 (the hub cache fixture)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PUBLIC_MEMORY_BYTES = 2.7e9
"""Streamlit Community Cloud's memory (lib.app.public_mode)."""


ALL = ClassifySettings()
PATTERN_SETTINGS = ALL.patterns


def score_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith(("score_", "suppression_")) or c in PATTERNS]


def assert_same_scores(whole: pd.DataFrame, streamed: pd.DataFrame) -> None:
    """Every score column of `streamed` equals `whole`'s exactly, and so do the labels."""
    columns = score_columns(whole)
    assert columns and columns == score_columns(streamed)
    for column in columns:
        assert np.array_equal(whole[column].to_numpy(), streamed[column].to_numpy()), column
    assert whole["label"].tolist() == streamed["label"].tolist()


def assert_identical(folder: Path, dtype: str = "auto", settings: ClassifySettings = ALL) -> None:
    """The streamed run of `folder` scores every head exactly as the whole-model run."""
    whole = classify_heads(load_model(str(folder), device="cpu", dtype=dtype), settings).table
    streamed = classify_heads(open_checkpoint(str(folder), device="cpu", dtype=dtype), settings)
    assert_same_scores(whole, streamed.table)


@pytest.fixture(scope="module")
def planted_tokenizer():
    return train_tokenizer()


@pytest.mark.parametrize("stored", list(DTYPES))
def test_streamed_scores_equal_the_whole_models_on_the_planted_checkpoint(
    stored: str, planted_tokenizer, tmp_path: Path
) -> None:
    model = planted_model(planted_tokenizer).to(DTYPES[stored])
    folder = save_checkpoint(model, planted_tokenizer, tmp_path / stored)
    assert_identical(folder)


def test_streamed_scores_follow_the_load_dtype_as_the_whole_model_does(
    planted_checkpoint: Planted,
) -> None:
    # float32 weights held in bfloat16: both paths round them the same way first.
    assert_identical(planted_checkpoint.path, dtype="bfloat16")


def test_streamed_scores_equal_on_a_pythia_shaped_checkpoint_with_the_real_tokenizer(
    tmp_path: Path,
) -> None:
    folder = build_checkpoint(
        tmp_path, shape=(2, 4, 64), vocab_rows=50304, dtype=torch.bfloat16, seed=5
    )
    assert_identical(folder, settings=ClassifySettings(relations=FEW_RELATIONS))
    assert len(pythia_tokenizer()) < 50304  # padding rows past the tokenizer, as in Pythia


def test_streamed_scores_equal_on_a_sharded_folder(planted_tokenizer, tmp_path: Path) -> None:
    model = planted_model(planted_tokenizer).to(torch.bfloat16)
    model.save_pretrained(tmp_path, max_shard_size="200KB")
    planted_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 2
    assert_identical(tmp_path)


@pytest.mark.usefixtures("hub_cache")
def test_a_hub_snapshot_streams_with_the_same_scores() -> None:
    settings = ClassifySettings(relations=("name_copying", "country_to_capital_wikidata"))
    whole = classify_heads(load_model(REPO, "main", device="cpu"), settings)
    streamed = classify_heads(open_checkpoint(REPO, "main", device="cpu"), settings)
    assert_same_scores(whole.table, streamed.table)
    assert streamed.settings["commit"] == whole.settings["commit"] == COMMIT


def test_an_unembedding_named_lm_head_is_read_too(planted_checkpoint: Planted, tmp_path) -> None:
    """Files written by transformers' own class name `W_U` `lm_head.weight`, hub files
    `embed_out.weight`: both are read, to the same scores."""
    folder = tmp_path / "lm_head"
    shutil.copytree(planted_checkpoint.path, folder)
    tensors = load_file(folder / "model.safetensors")
    tensors["lm_head.weight"] = tensors.pop("embed_out.weight")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    settings = ClassifySettings(relations=("name_copying",), patterns=None)
    whole = classify_heads(load_model(str(planted_checkpoint.path), device="cpu"), settings)
    streamed = classify_heads(open_checkpoint(str(folder), device="cpu"), settings)
    assert_same_scores(whole.table, streamed.table)


def test_the_layer_loop_equals_the_models_own_forward_pass(planted_model_loaded) -> None:
    """The pattern pass, one `GPTNeoXLayer` at a time, returns the very attentions of
    transformers' whole-model forward (the path before streaming)."""
    model = planted_model_loaded.model
    tokens = repeated_random_tokens(
        ordinary_token_ids(planted_model_loaded.tokenizer), PATTERN_SETTINGS
    )
    with torch.inference_mode(), float32_forward(model):
        expected = model.base_model(tokens, output_attentions=True).attentions
    with torch.inference_mode(), float32_matmul():
        got = list(layer_attentions(model, tokens))
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.fixture
def planted_model_loaded(planted_tokenizer, tmp_path: Path):
    model = planted_model(planted_tokenizer).to(torch.bfloat16)
    folder = save_checkpoint(model, planted_tokenizer, tmp_path / "bf16")
    return load_model(str(folder), device="cpu", dtype="bfloat16")


def test_salient_operations_equal_streamed_and_whole(planted_checkpoint: Planted) -> None:
    folder = str(planted_checkpoint.path)
    whole = salient_operations(load_model(folder, device="cpu"), 1, 2, n_tokens=6, k=4)
    streamed = salient_operations(open_checkpoint(folder, device="cpu"), 1, 2, n_tokens=6, k=4)
    pd.testing.assert_frame_equal(whole, streamed, check_exact=True)


def test_embedding_rows_are_read_without_the_matrix(planted_checkpoint: Planted) -> None:
    weights = open_checkpoint(str(planted_checkpoint.path), device="cpu").weights
    ids = torch.tensor([[5, 3, 5], [0, 9, 3]])
    matrix = load_file(planted_checkpoint.path / "model.safetensors")[INPUT_EMBEDDING]
    assert torch.equal(weights.rows(INPUT_EMBEDDING, ids), matrix[ids])


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if transformers is asked to build a whole model from a checkpoint."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(PreTrainedModel, "from_pretrained", refuse)
    monkeypatch.setattr(GPTNeoXForCausalLM, "from_pretrained", refuse)


def test_the_command_streams_by_default_and_loads_no_model(
    planted_checkpoint: Planted, planted_classification, tmp_path: Path, no_model_load: None
) -> None:
    out = tmp_path / "heads.csv"
    argv = ["--model", str(planted_checkpoint.path), "--device", "cpu", "--out", str(out)]
    assert classify_main(argv) == 0
    table = pd.read_csv(out)
    for column in score_columns(planted_classification.table):
        expected = planted_classification.table[column].to_numpy()
        assert np.allclose(table[column].to_numpy(), expected, rtol=0, atol=1e-12), column
    with pytest.raises(AssertionError, match="from_pretrained was called"):
        classify_main([*argv[:-1], str(tmp_path / "whole.csv"), "--weights", "whole"])


def test_a_folder_missing_a_layer_tensor_is_refused_with_the_same_line(
    planted_checkpoint: Planted, tmp_path: Path
) -> None:
    folder = tmp_path / "missing"
    shutil.copytree(planted_checkpoint.path, folder)
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("gpt_neox.layers.1.mlp.dense_h_to_4h.weight")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    messages = []
    for opener in (open_checkpoint, load_model):
        with pytest.raises(InputError) as refused:
            opener(str(folder), device="cpu")
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert "\n" not in messages[0] and "layers.1.mlp.dense_h_to_4h.weight" in messages[0]


def test_reading_lends_the_resident_model_of_the_key_and_else_loads_none() -> None:
    events: list[str] = []
    resident = ResidentModel(
        lambda key, _progress: events.append(f"load {key.source}") or key,
        lambda key, _progress: events.append(f"open {key.source}") or f"streamed {key.source}",
    )
    a, b = (ModelKey(name, "main", "cpu", "float32") for name in "ab")
    with resident.read(a) as lent:
        assert lent == "streamed a"
    with resident.use(a):
        pass
    with resident.read(a) as lent:
        assert lent == a  # the resident model itself: nothing read twice
    with resident.read(b) as lent:
        assert lent == "streamed b"
    assert events == ["open a", "load a", "open b"]
    assert resident.key is None  # another checkpoint read: the resident model released first


def test_public_modes_cap_is_the_largest_size_the_streamed_estimate_fits_with_a_margin() -> None:
    def fits(name: str) -> bool:
        size = SIZES[name]
        needed = streamed_memory_estimate(size.d_model, size.vocab_rows, 4 * size.d_model)
        return needed <= 0.9 * PUBLIC_MEMORY_BYTES

    allowed = [name for name in SIZES if fits(name)]
    assert allowed == list(SIZES)[: len(allowed)]  # the estimate grows with the size
    assert allowed[-1] == DEFAULT_MAX_SIZE


def test_a_streamed_run_that_will_not_fit_suggests_no_smaller_dtype(
    planted_checkpoint: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compute is float32 whatever the load dtype: only the whole model shrinks in 16 bits."""
    monkeypatch.setattr(lib.checkpoints.loader, "free_memory", lambda device: 1000)
    folder = str(planted_checkpoint.path)
    with pytest.raises(InputError, match=r"pick a smaller model or another device$"):
        open_checkpoint(folder, device="cpu", dtype="float32")
    with pytest.raises(InputError, match=r"pick a smaller model or a 2-byte dtype \(bfloat16\)$"):
        load_model(folder, device="cpu", dtype="float32")


@pytest.mark.parametrize("stored", ["float32", "bfloat16"])
def test_in_context_scores_equal_streamed_and_whole(
    stored: str, planted_tokenizer, tmp_path: Path
) -> None:
    """The in-context scores' layer loop runs on streamed layers too, to the same numbers."""
    model = planted_model(planted_tokenizer).to(DTYPES[stored])
    folder = str(save_checkpoint(model, planted_tokenizer, tmp_path / stored))
    relations = ("general_copying_english_500", "country_to_capital_wikidata")
    whole = in_context(load_model(folder, device="cpu"), relations, DEFAULT_TEMPLATES[:2])
    streamed = in_context(open_checkpoint(folder, device="cpu"), relations, DEFAULT_TEMPLATES[:2])
    pd.testing.assert_frame_equal(whole.table, streamed.table, check_exact=True)
