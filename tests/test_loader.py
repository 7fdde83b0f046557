"""The loader: folders and hub ids, devices and dtypes, and every refusal's message."""

from __future__ import annotations

import json
import shutil

import httpx2
import huggingface_hub.constants
import pytest
import torch
from huggingface_hub.errors import (
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import safe_open

import lib.checkpoints.hub
import lib.checkpoints.loader
from lib.checkpoints.loader import inspect_folder, load_model, resolve_device, resolve_dtype
from lib.core.errors import InputError, run_cli
from lib.synthetic import main as synthetic_main
from tests.chart_helpers import REPO


def test_planted_folder_loads_as_pythia(planted_model, planted_checkpoint):
    model = planted_model.model
    assert planted_model.name == str(planted_checkpoint.path)
    assert planted_model.revision == "local"
    assert (planted_model.device, planted_model.dtype) == (torch.device("cpu"), torch.float32)
    assert model.config.model_type == "gpt_neox" and model.config.use_parallel_residual
    assert model.config._attn_implementation == "eager"
    input_rows = model.get_input_embeddings().weight
    assert not torch.equal(input_rows, model.get_output_embeddings().weight)  # untied


def test_auto_device_and_dtype_on_this_machine():
    device = resolve_device("auto")
    assert device.type in {"cuda", "mps", "cpu"}
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16


@pytest.mark.parametrize(
    ("native", "emulated", "expected"),
    [
        (True, True, torch.bfloat16),  # e.g. A100, H100
        (False, True, torch.float16),  # e.g. T4, V100: bfloat16 only emulated, slowly
        (False, False, torch.float16),
    ],
)
def test_auto_dtype_on_a_gpu_takes_bfloat16_only_without_emulation(
    monkeypatch, native, emulated, expected
):
    monkeypatch.setattr(
        torch.cuda,
        "is_bf16_supported",
        lambda including_emulation=True: emulated if including_emulation else native,
    )
    assert resolve_dtype("auto", torch.device("cuda")) == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_forcing_a_missing_device_is_an_input_error():
    with pytest.raises(InputError, match="'cuda' is not available"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: resolve_device("tpu"), "unknown device 'tpu'"),
        (lambda: resolve_dtype("int8", torch.device("cpu")), "unknown dtype 'int8'"),
    ],
)
def test_unknown_device_or_dtype(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_model(str(tmp_path / "missing"), device="cpu")


def test_folder_that_is_not_gpt_neox(non_neox_folder):
    with pytest.raises(InputError, match="'gpt2' model, not GPT-NeoX"):
        load_model(str(non_neox_folder), device="cpu")


def test_folder_without_safetensors(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt_neox"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(InputError, match=r"no \*\.safetensors weights"):
        load_model(str(tmp_path), device="cpu")


def test_not_enough_memory_is_refused_before_loading(planted_checkpoint, monkeypatch):
    monkeypatch.setattr(lib.checkpoints.loader, "free_memory", lambda device: 1000)
    with pytest.raises(InputError, match=r"needs about .* GiB in float32 but only"):
        load_model(str(planted_checkpoint.path), device="cpu", dtype="float32")


def test_unknown_pythia_revision_is_refused_without_the_hub(monkeypatch):
    monkeypatch.setattr(lib.checkpoints.hub, "hf_hub_download", pytest.fail)
    with pytest.raises(InputError, match="unknown revision 'step3'"):
        load_model("EleutherAI/pythia-70m", revision="step3", device="cpu")


def test_offline_hub_says_so_and_points_to_folders(monkeypatch, tmp_path):
    # No network: offline mode, and an empty cache so nothing is found locally either.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InputError, match=r"offline.*pass its folder"):
        load_model("EleutherAI/pythia-70m", device="cpu")


def http_error(kind):
    response = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co"))
    return kind("404", response=response)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (http_error(RepositoryNotFoundError), "unknown model 'someone/nothing'"),
        (http_error(RevisionNotFoundError), "has no revision 'main'"),
        (LocalEntryNotFoundError("no connection"), "offline"),
    ],
)
def test_hub_errors_become_input_errors(monkeypatch, error, message):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(lib.checkpoints.hub, "hf_hub_download", refuse)
    with pytest.raises(InputError, match=message):
        load_model("someone/nothing", device="cpu")


def test_synthetic_command_writes_a_loadable_pythia_shaped_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["--shape", "2,2,32", "--vocab-rows", "50304", "--seed", "3", "--out", str(out)]
    assert run_cli(synthetic_main, argv) == 0
    loaded = load_model(str(out), device="cpu")
    config = loaded.model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.hidden_size) == (2, 2, 32)
    assert config.vocab_size == 50304 and len(loaded.tokenizer) == 50277  # Pythia's tokenizer
    assert config.rope_parameters["partial_rotary_factor"] == 0.25
    assert not config.tie_word_embeddings and config.use_parallel_residual
    assert run_cli(synthetic_main, ["--shape", "2,3,32", "--out", str(out)]) == 2
    assert "multiple of 8 x heads" in capsys.readouterr().err
    assert (
        run_cli(synthetic_main, ["--shape", "2,2,32", "--vocab-rows", "8192", "--out", str(out)])
        == 2
    )
    assert "vocab rows 8192 < tokenizer size 50277" in capsys.readouterr().err


def test_pythia_hub_layout_loads_the_same_model(planted_checkpoint, planted_model, tmp_path):
    # Hub checkpoints store `embed_out.weight` and the older `rotary_pct` / `rotary_emb_base`.
    with safe_open(planted_checkpoint.path / "model.safetensors", "pt") as weights:
        assert "embed_out.weight" in weights.keys()  # noqa: SIM118 (safe_open has no __contains__)
    folder = tmp_path / "hub-layout"
    shutil.copytree(planted_checkpoint.path, folder)
    config = json.loads((folder / "config.json").read_text())
    rope = config.pop("rope_parameters")
    config.update(rotary_pct=rope["partial_rotary_factor"], rotary_emb_base=rope["rope_theta"])
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_model(str(folder), device="cpu")
    assert loaded.model.config.rope_parameters == planted_model.model.config.rope_parameters
    for name, tensor in planted_model.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_malformed_config_is_refused_with_a_message(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match=r"config\.json is not (valid JSON|a JSON object)"):
        inspect_folder(str(tmp_path))


def test_cuda_memory_pytorch_holds_reserved_but_unused_counts_as_free(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 30 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 10 * gib)
    assert lib.checkpoints.loader.free_memory(torch.device("cuda")) == 21 * gib


def test_a_tokenizer_is_read_once_per_content_and_never_for_other_files(
    planted_checkpoint, tmp_path
):
    first = load_model(str(planted_checkpoint.path), device="cpu")
    copy = tmp_path / "step1000"  # another checkpoint of the same model: same tokenizer files
    shutil.copytree(planted_checkpoint.path, copy)
    assert load_model(str(copy), device="cpu").tokenizer is first.tokenizer
    edited = tmp_path / "edited"
    shutil.copytree(planted_checkpoint.path, edited)
    vocabulary = json.loads((edited / "tokenizer.json").read_text())
    words = vocabulary["model"]["vocab"]
    a, b = (word for word, id_ in words.items() if id_ in (300, 301))
    words[a], words[b] = words[b], words[a]  # two words' ids swapped: another tokenizer
    (edited / "tokenizer.json").write_text(json.dumps(vocabulary))
    other = load_model(str(edited), device="cpu").tokenizer
    assert other is not first.tokenizer
    assert other.convert_ids_to_tokens(300) == first.tokenizer.convert_ids_to_tokens(301)


def test_a_kept_tokenizer_is_still_checked_against_the_embedding(planted_checkpoint, tmp_path):
    load_model(str(planted_checkpoint.path), device="cpu")  # its tokenizer is kept
    small = tmp_path / "small"
    shutil.copytree(planted_checkpoint.path, small)
    config = json.loads((small / "config.json").read_text())
    config["vocab_size"] = 64  # fewer embedding rows than the (kept) tokenizer's words
    (small / "config.json").write_text(json.dumps(config))
    tokenizer_files = [p for p in small.iterdir() if p.name.startswith(("tokenizer", "special"))]
    assert tokenizer_files  # the same bytes as the kept tokenizer's
    with pytest.raises(InputError, match="tokenizer"):
        load_model(str(small), device="cpu")


def test_the_demo_is_the_planted_model_whose_heads_classify(planted_checkpoint, tmp_path, capsys):
    """README's quick start classifies `--demo`: the planted checkpoint, weights for weights,
    whose four planted heads `tests/test_classify.py` finds by their labels."""
    out = tmp_path / "demo"
    assert run_cli(synthetic_main, ["--demo", "--out", str(out)]) == 0
    assert "L2 H3 previous_token" in capsys.readouterr().out
    demo, planted = (
        (folder / "model.safetensors").read_bytes() for folder in (out, planted_checkpoint.path)
    )
    assert demo == planted
    assert "python -m lib.synthetic --demo --out demo" in (REPO / "README.md").read_text()
    assert run_cli(synthetic_main, ["--demo", "--size", "14m", "--out", str(out)]) == 2
    assert "--demo writes the planted model" in capsys.readouterr().err
