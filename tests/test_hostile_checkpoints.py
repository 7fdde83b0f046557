"""Hostile checkpoint folders: each is refused with one line (CLI: exit 2) before transformers
reads a weight, never scored on random numbers and never a traceback."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTNeoXForCausalLM

from lib.checkpoints.loader import load_model, shape_memory_estimate
from lib.checkpoints.validation import NeoxShape, expected_tensors, safetensors_shapes
from lib.classify import main as classify_main
from lib.core.errors import InputError, run_cli
from lib.fixtures.synthetic import pythia_config, random_model, save_checkpoint, train_tokenizer
from lib.runs.sweep import plan_jobs
from tests.conftest import Planted

WEIGHTS = "model.safetensors"


def edit_config(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        for name, value in changes.items():
            if value is None:
                config.pop(name)
            else:
                config[name] = value
        (folder / "config.json").write_text(json.dumps(config))

    return edit


def write_config(data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / "config.json").write_bytes(data)


def edit_tensors(change: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        tensors = load_file(folder / WEIGHTS)
        change(tensors)
        save_file(tensors, folder / WEIGHTS, metadata={"format": "pt"})

    return edit


def truncate(folder: Path) -> None:
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])


def index_to(target: str, move_weights: bool = True) -> Callable[[Path], None]:
    """An index mapping every tensor to `target` (the weights moved there if asked)."""

    def edit(folder: Path) -> None:
        names = load_file(folder / WEIGHTS).keys()
        if move_weights:
            (folder / WEIGHTS).rename(folder / "weights.safetensors")
        index = {"metadata": {}, "weight_map": dict.fromkeys(names, target)}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))

    return edit


def remove(*names: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for name in names:
            (folder / name).unlink()

    return edit


HOSTILE = {
    "hidden_size missing": (edit_config(hidden_size=None), "has no 'hidden_size'"),
    "hidden_size a string": (edit_config(hidden_size="64"), "hidden_size is '64'; expected a"),
    "hidden_size zero": (edit_config(hidden_size=0), "hidden_size is 0; expected a whole"),
    "hidden_size true": (edit_config(hidden_size=True), "hidden_size is True"),
    "hidden_size not divisible": (
        edit_config(hidden_size=66),
        "hidden_size 66 is not divisible by num_attention_heads 4",
    ),
    "zero heads": (edit_config(num_attention_heads=0), "num_attention_heads is 0"),
    "layers missing": (edit_config(num_hidden_layers=None), "has no 'num_hidden_layers'"),
    "100,000 thin layers": (
        edit_config(num_hidden_layers=100_000, hidden_size=8, num_attention_heads=1),
        "num_hidden_layers is 100000; expected a whole number from 1 to 1024",
    ),
    "deeply nested JSON": (write_config(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    "Latin-1 config": (
        write_config('{"model_type": "gpt_neox", "name": "Pythia à la carte"}'.encode("latin-1")),
        "config.json is not UTF-8 text",
    ),
    "config a list": (write_config(b"[1, 2]"), "is not a JSON object"),
    "truncated safetensors": (truncate, r"is not a usable safetensors file \(it is truncated\)"),
    "junk safetensors": (
        lambda folder: (folder / WEIGHTS).write_bytes(b"\x00junk" * 1000),
        r"is not a usable safetensors file \(no valid header\)",
    ),
    "empty safetensors": (
        lambda folder: (folder / WEIGHTS).write_bytes(b""),
        r"is not a usable safetensors file \(no valid header\)",
    ),
    "config says 5 layers over 3": (
        edit_config(num_hidden_layers=5),
        "tensors that .* needs are missing from the weights "
        r"\(gpt_neox\.layers\.3\.attention\.dense\.bias",
    ),
    "a tensor missing": (
        edit_tensors(lambda t: t.pop("gpt_neox.layers.1.attention.dense.weight")),
        r"1 tensors that .* are missing .*\(gpt_neox\.layers\.1\.attention\.dense\.weight\)",
    ),
    "an unexpected tensor": (
        edit_tensors(lambda t: t.update(extra=torch.zeros(2))),
        r"the weights hold 1 tensors that .* does not describe \(extra\)",
    ),
    "a tensor of the wrong shape": (
        edit_config(intermediate_size=128),
        r"layers\.0\.mlp\.dense_4h_to_h\.weight has shape \[64, 256\] but .* implies \[64, 128\]",
    ),
    "an index pointing to a pickle": (
        index_to("pytorch_model.bin", move_weights=False),
        "points at 'pytorch_model.bin'; only .safetensors files inside the folder",
    ),
    "an index pointing outside the folder": (
        index_to("../weights.safetensors"),
        r"points at '\.\./weights\.safetensors'; only \.safetensors files inside",
    ),
    "an index pointing to a missing shard": (
        index_to("gone.safetensors", move_weights=False),
        "points at gone.safetensors, which is not in",
    ),
    "an index that is not JSON": (
        lambda folder: (folder / "model.safetensors.index.json").write_text("{"),
        "model.safetensors.index.json is not valid JSON",
    ),
    "no tokenizer (the old README recipe)": (
        remove("tokenizer.json", "tokenizer_config.json"),
        r"has no tokenizer \(tokenizer\.json, or vocab\.json and merges\.txt\); save the "
        r"tokenizer too: AutoTokenizer\.from_pretrained\(ID\)\.save_pretrained\(folder\)",
    ),
    "malformed tokenizer.json": (
        lambda folder: (folder / "tokenizer.json").write_text('{"model": 1}'),
        "cannot read the tokenizer of .*; save the tokenizer too",
    ),
}


@pytest.fixture
def no_transformers_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if transformers is asked to read model weights."""
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", pytest.fail)


def hostile_copy(planted: Planted, tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    folder = tmp_path / "hostile"
    shutil.copytree(planted.path, folder)
    edit(folder)
    return folder


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_folder_is_one_line_before_transformers_reads_it(
    case: str,
    planted_checkpoint: Planted,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_transformers_load: None,
) -> None:
    edit, message = HOSTILE[case]
    folder = hostile_copy(planted_checkpoint, tmp_path, edit)
    out = tmp_path / "heads.csv"
    argv = ["--model", str(folder), "--device", "cpu", "--out", str(out)]
    assert run_cli(classify_main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ")
    assert re.search(message, error), error
    assert not out.exists()


def test_a_tokenizer_larger_than_the_embedding_is_refused(
    tmp_path: Path, no_transformers_load: None
) -> None:
    tokenizer = train_tokenizer()
    model = random_model(pythia_config(1, 2, 32, vocab_rows=100))
    folder = save_checkpoint(model, tokenizer, tmp_path / "small-embedding")
    with pytest.raises(InputError, match="has 8192 tokens but the model only 100 embedding rows"):
        load_model(str(folder), device="cpu")


def test_the_readme_offline_recipe_saves_a_folder_that_loads(
    planted_checkpoint: Planted, tmp_path: Path
) -> None:
    # README "Offline": the model and the tokenizer, each with save_pretrained.
    folder = tmp_path / "offline"
    AutoModelForCausalLM.from_pretrained(planted_checkpoint.path).save_pretrained(folder)
    AutoTokenizer.from_pretrained(planted_checkpoint.path).save_pretrained(folder)
    assert len(load_model(str(folder), device="cpu").tokenizer) == 8192


def test_expected_tensors_are_what_transformers_saves(planted_checkpoint: Planted) -> None:
    config = json.loads((planted_checkpoint.path / "config.json").read_text())
    shape = NeoxShape(3, 4, 64, config["intermediate_size"], config["vocab_size"])
    assert safetensors_shapes(planted_checkpoint.path / WEIGHTS) == expected_tensors(shape)
    # and what the model itself holds (transformers calls the output embedding lm_head)
    with torch.device("meta"):
        model = GPTNeoXForCausalLM(pythia_config(3, 4, 64, config["vocab_size"]))
    held = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    held["embed_out.weight"] = held.pop("lm_head.weight")
    assert held == expected_tensors(shape)


def test_the_memory_estimate_counts_each_layers_objects() -> None:
    # 100,000 layers of hidden size 8: 0.2 GiB of weights, but the process passed 4 GB loading
    # them; the estimate must cover the modules (measured >= 36 KiB a layer).
    thin = NeoxShape(100_000, 1, 8, 32, 64)
    assert shape_memory_estimate(thin, torch.float32) > 100_000 * 36 * 2**10


def test_a_pickle_index_beside_safetensors_weights_is_never_followed(
    planted_checkpoint: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "load", pytest.fail)
    # Hub repositories of the large Pythia models hold both formats, each with its index.
    folder = hostile_copy(planted_checkpoint, tmp_path, lambda folder: None)
    index = {"weight_map": {"gpt_neox.embed_in.weight": "pytorch_model-00001-of-00002.bin"}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    assert load_model(str(folder), device="cpu").model.config.num_hidden_layers == 3


def series_of(folder: Path, steps: dict[str, int]) -> Path:
    """A series folder: a `step<N>` subfolder per name, each with a config of that many
    layers and a (header-only) weights file: enough to plan a sweep, which loads nothing."""
    for name, n_layers in steps.items():
        step = folder / name
        step.mkdir(parents=True)
        pythia_config(n_layers, 4, 64, 512).to_json_file(step / "config.json")
        (step / WEIGHTS).write_bytes(b"")
    return folder


def test_a_step_folder_with_a_non_ascii_digit_is_not_a_step(tmp_path: Path) -> None:
    series = series_of(tmp_path / "series", {"step0": 3, "step²": 3})
    assert [job.key.revision for job in plan_jobs([str(series)])] == ["step0"]


def test_two_folders_of_one_step_are_named_in_the_refusal(tmp_path: Path) -> None:
    series = series_of(tmp_path / "series", {"step10": 3, "step00010": 3})
    with pytest.raises(InputError, match=r"step00010 and step10 are the same checkpoint \(step 10"):
        plan_jobs([str(series)])


def test_steps_of_different_shapes_are_refused_in_one_line(tmp_path: Path) -> None:
    series = series_of(tmp_path / "series", {"step0": 3, "step1": 3, "step2": 2})
    message = "its steps differ in shape: step0 has 3 layers × 4 heads (d_model 64), step2 2 × 4"
    with pytest.raises(InputError, match=re.escape(message)):
        plan_jobs([str(series)])
    assert len(plan_jobs([str(series)], "step0,step1")) == 2
