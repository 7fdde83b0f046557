"""`bench.footprint --cli` and its checkpoints: Pythia-shaped folders written as the hub stores
them, one tensor at a time, and the harness that measures fresh `lib.classify` processes (here
on a stand-in command whose memory is known by construction, and once on the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import bench.tasks
from bench.footprint import (
    WEIGHT_PATHS,
    checkpoint_summary,
    cli_markdown,
    cli_runs,
    main,
    weight_paths,
)
from bench.tasks import hub_size_checkpoint
from lib.checkpoints.loader import inspect_folder, load_model
from lib.checkpoints.validation import INDEX_FILE, NeoxShape, expected_tensors
from lib.core.errors import InputError
from lib.fixtures.synthetic import safetensors_header, write_hub_checkpoint, write_safetensors

SHAPE = NeoxShape(n_layers=2, n_heads=4, d_model=64, d_mlp=256, vocab_rows=50304)
MIB = 2**20


def stored(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's safetensors files, as stored, read by the library."""
    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, "pt") as file:
            tensors.update({name: file.get_tensor(name) for name in file.keys()})  # noqa: SIM118
    return tensors


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return write_hub_checkpoint(tmp_path_factory.mktemp("hub") / "single", SHAPE, seed=5)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hub") / "sharded"
    return write_hub_checkpoint(folder, SHAPE, seed=5, max_shard_bytes=3 * MIB)


def test_a_hub_checkpoint_is_bfloat16_safetensors_with_the_hubs_names_and_config(single):
    names = {path.name for path in single.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert INDEX_FILE not in names  # 13 MB: one file, as the hub stores a small model
    tensors = stored(single)
    assert {name: tuple(t.shape) for name, t in tensors.items()} == expected_tensors(SHAPE)
    assert "embed_out.weight" in tensors and "lm_head.weight" not in tensors
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert torch.equal(tensors["gpt_neox.layers.1.input_layernorm.weight"], torch.ones(64))
    assert not tensors["gpt_neox.layers.0.attention.query_key_value.bias"].any()
    assert tensors["embed_out.weight"].float().std().item() == pytest.approx(0.02, rel=0.02)
    assert not torch.equal(tensors["embed_out.weight"], tensors["gpt_neox.embed_in.weight"])
    config = json.loads((single / "config.json").read_text())
    assert config["rotary_pct"] == 0.25 and "rope_parameters" not in config
    assert config["torch_dtype"] == "bfloat16" and config["vocab_size"] == 50304
    assert inspect_folder(str(single)) == SHAPE


def test_past_the_shard_size_the_weights_are_split_with_an_index_and_the_same_numbers(
    single, sharded
):
    shards = sorted(path.name for path in sharded.glob("*.safetensors"))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((sharded / INDEX_FILE).read_text())
    for shard in shards:
        with safe_open(sharded / shard, "pt") as file:
            names = list(file.keys())
            data = sum(file.get_tensor(name).nbytes for name in names)
        assert {index["weight_map"][name] for name in names} == {shard}
        assert data <= 3 * MIB or len(names) == 1  # an embedding (6.4 MB) gets a shard alone
    assert set(index["weight_map"]) == set(expected_tensors(SHAPE))
    tensors = stored(sharded)
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in tensors.values())
    reference = stored(single)  # same seed, one file
    assert all(torch.equal(tensors[name], reference[name]) for name in reference)
    assert inspect_folder(str(sharded)) == SHAPE


@pytest.mark.parametrize("layout", ["single", "sharded"])
def test_the_whole_model_loader_loads_the_stored_numbers(layout, request):
    folder = request.getfixturevalue(layout)
    loaded = load_model(str(folder), device="cpu")
    weights = loaded.model.state_dict()
    tensors = stored(folder)
    assert torch.equal(weights["lm_head.weight"], tensors["embed_out.weight"].float())
    for name, tensor in tensors.items():
        if name != "embed_out.weight":
            assert torch.equal(weights[name], tensor.float()), name
    assert loaded.model.config.rope_parameters["partial_rotary_factor"] == 0.25
    assert len(loaded.tokenizer) == 50277  # Pythia's own


def test_tensors_are_written_as_they_arrive_after_the_header(tmp_path):
    shapes = {"a": (3, 4), "b": (5,)}
    path = tmp_path / "x.safetensors"
    header = len(safetensors_header(shapes, torch.bfloat16))
    assert header % 8 == 0  # the data starts aligned

    def arriving():
        assert path.stat().st_size == header  # the header first, from the shapes alone
        for name, shape in shapes.items():
            written = path.stat().st_size
            yield name, torch.full(shape, 1.5, dtype=torch.bfloat16)
            # the tensor just handed over is on disk before the next one is drawn
            assert path.stat().st_size - written == 2 * torch.Size(shape).numel()

    write_safetensors(path, arriving(), shapes, torch.bfloat16)
    assert path.stat().st_size == header + 2 * (12 + 5)
    with safe_open(path, "pt") as file:
        assert torch.equal(file.get_tensor("b"), torch.full((5,), 1.5, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="not as declared"):
        write_safetensors(path, iter([("a", torch.zeros(3, 4))]), shapes, torch.bfloat16)


def test_a_size_checkpoint_is_written_once_and_an_interrupted_one_is_not_reused(
    tmp_path, monkeypatch
):
    (tmp_path / "14m-v50304-bfloat16-seed0-hub.partial").mkdir()  # a killed earlier write
    folder = hub_size_checkpoint("14m", root=tmp_path)
    assert folder.name == "14m-v50304-bfloat16-seed0-hub"
    assert inspect_folder(str(folder)).n_layers == 6
    assert not list(tmp_path.glob("*.partial"))

    def fail(*args, **kwargs):
        raise AssertionError("rewritten")

    monkeypatch.setattr(bench.tasks, "write_hub_checkpoint", fail)
    assert hub_size_checkpoint("14m", root=tmp_path) == folder


# The stand-in for `lib.classify`: holds 160 MiB on the whole path and 40 MiB streamed, 40 MiB
# more with patterns; fails (exit 3) on the path "broken"; refuses a non-empty result cache.
STAND_IN = """
import os, sys
args = sys.argv[1:]
assert args[:4] == ["--model", args[1], "--device", "cpu"], args
assert os.listdir(os.environ["HEAD_ATLAS_CACHE_DIR"]) == []
path = args[args.index("--weights") + 1]
if path == "broken":
    print("stand-in refused"); sys.exit(3)
held = [bytearray((160 if path == "whole" else 40) * 2**20)]
if "--no-patterns" not in args:
    held.append(bytearray(40 * 2**20))
open(args[args.index("--out") + 1], "w").write("done")
"""


def test_the_harness_records_each_fresh_processs_peak_and_the_old_new_ratio(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"0" * 1000)
    paths = {**WEIGHT_PATHS, "broken": ("--weights", "broken")}
    results = cli_runs({"tiny": folder}, paths, ["static", "patterns"], ("-c", STAND_IN))
    assert [(r["workload"], r["path"]) for r in results] == [
        (workload, path) for workload in ("static", "patterns") for path in paths
    ]
    peak = {(r["workload"], r["path"]): r["peak_rss_bytes"] / MIB for r in results}
    for (workload, path), held in {
        ("static", "whole"): 160,
        ("static", "streamed"): 40,
        ("patterns", "whole"): 200,
        ("patterns", "streamed"): 80,
    }.items():
        assert held < peak[workload, path] < held + 40, (workload, path)  # + the interpreter
        assert results[0]["seconds"] > 0
    broken = results[2]
    assert broken["returncode"] == 3 and "stand-in refused" in broken["output_tail"]
    assert results[0]["command"][:2] == ["python", "-c"]

    report = {
        "machine": {"device": "cpu"},
        "paths": paths,
        "checkpoints": {"tiny": checkpoint_summary(folder)},
        "results": results,
    }
    table = [line for line in cli_markdown(report).splitlines() if line.startswith("| tiny")]
    assert len(table) == 6
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table]
    assert cells[0][:4] == ["tiny", "0.00 GB in 1 file(s)", "whole", "static"]
    assert cells[0][6:] == ["", ""]  # the baseline has no ratio
    rss_ratio = float(cells[1][6].removesuffix("×"))
    assert rss_ratio == pytest.approx(peak["static", "whole"] / peak["static", "streamed"], 0.06)
    assert cells[2][4:] == ["failed (exit 3)", "", "", ""]


def test_path_arguments_are_data_and_can_be_overridden():
    assert weight_paths("whole,streamed", []) == WEIGHT_PATHS
    assert weight_paths("whole", ["whole="]) == {"whole": ()}
    assert weight_paths("streamed", ["streamed=--weights streamed --x 1"]) == {
        "streamed": ("--weights", "streamed", "--x", "1")
    }
    for paths, overrides in [("whole,fast", []), ("whole", ["fast=--x"]), ("whole", ["whole"])]:
        with pytest.raises(InputError):
            weight_paths(paths, overrides)


def test_the_real_command_end_to_end_on_14m_static(tmp_path):
    # Today's CLI has no --weights option: the whole path runs with no extra arguments.
    argv = ["--cli", "--sizes", "14m", "--paths", "whole", "--path-args", "whole="]
    argv += ["--workloads", "static", "--checkpoints", str(tmp_path), "--out", str(tmp_path)]
    assert main(argv) == 0
    (result,) = json.loads(next(tmp_path.glob("footprint-cli-cpu-*.json")).read_text())["results"]
    assert result["returncode"] == 0 and result["peak_rss_bytes"] > 100 * MIB
    assert "--no-patterns" in result["command"] and "--weights" not in result["command"]
    text = (tmp_path / "latest-footprint-cli-cpu.md").read_text()
    assert "| 14m | 0.03 GB in 1 file(s) | whole | static |" in text
