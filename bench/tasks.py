"""The measured calls, on a seeded random Pythia-shaped model that a child process can rebuild.

A `ModelSpec` names the model; `load` gives the same weights in every process (a cached
checkpoint read through `lib.checkpoints.loader.load_model`, or drawn in memory from the seed), so a
memory measurement in a fresh process runs on the model that was timed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import transformers

from bench.measure import cuda_peak_extra, in_fresh_process, sampled_peak_rss
from lib.checkpoints.loader import DTYPES, LoadedModel, load_model, resolve_device
from lib.checkpoints.validation import NeoxShape
from lib.core.catalog import bytes_per_element, pythia_size
from lib.core.errors import InputError
from lib.fixtures.pythia_tokenizer import pythia_tokenizer
from lib.fixtures.synthetic import (
    build_checkpoint,
    pythia_config,
    random_model,
    write_hub_checkpoint,
)
from lib.scoring.operations import OperationScores, operation_scores
from lib.scoring.patterns import (
    DEFAULT_PATTERN_SETTINGS,
    ordinary_token_ids,
    pattern_scores,
    repeated_random_tokens,
)
from lib.scoring.relations import tokenize_relations
from tests.reference import reference_pattern_scores, reference_scores

SEED = 0
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

Heads = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ModelSpec:
    """A seeded random Pythia-shaped model: `shape` = (layers, heads, d_model)."""

    name: str
    shape: tuple[int, int, int]
    vocab_rows: int
    dtype: str
    device: str
    build: str


def checkpoint(spec: ModelSpec) -> Path:
    """The checkpoint folder of `spec` under `bench/checkpoints/`, written on first use."""
    folder = CHECKPOINTS / f"{spec.name}-v{spec.vocab_rows}-{spec.dtype}-seed{SEED}-neox"
    if not (folder / "tokenizer.json").is_file():  # the tokenizer is written last
        dtype = DTYPES[spec.dtype]
        build_checkpoint(folder, spec.shape, vocab_rows=spec.vocab_rows, seed=SEED, dtype=dtype)
    return folder


def size_checkpoint(size: str) -> Path:
    """The float32 checkpoint folder of a catalog size (e.g. "14m"), written on first use."""
    pythia = pythia_size(size)
    shape = (pythia.n_layers, pythia.n_heads, pythia.d_model)
    return checkpoint(
        ModelSpec(pythia.name, shape, pythia.vocab_rows, "float32", "cpu", "checkpoint")
    )


def hub_size_checkpoint(size: str, dtype: str = "bfloat16", root: Path = CHECKPOINTS) -> Path:
    """The checkpoint folder of a catalog size stored as the hub stores it (`dtype` safetensors,
    hub names, sharded past 5 GB: `lib.fixtures.synthetic.write_hub_checkpoint`, one tensor at a
    time), under `root`, written on first use: into a `.partial` sibling, renamed when complete,
    so an interrupted write is never reused."""
    pythia = pythia_size(size)
    shape = NeoxShape(
        pythia.n_layers, pythia.n_heads, pythia.d_model, 4 * pythia.d_model, pythia.vocab_rows
    )
    folder = root / f"{pythia.name}-v{pythia.vocab_rows}-{dtype}-seed{SEED}-hub"
    if not folder.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        needed = pythia.n_params * bytes_per_element(DTYPES[dtype])
        free = shutil.disk_usage(root).free
        if needed > free:
            raise InputError(
                f"the {pythia.name} {dtype} checkpoint needs {needed / 1e9:.1f} GB but {root} "
                f"has {free / 1e9:.1f} GB free"
            )
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_hub_checkpoint(partial, shape, seed=SEED, dtype=DTYPES[dtype])
        partial.rename(folder)
    return folder


def load(spec: ModelSpec) -> LoadedModel:
    """The model of `spec`: through `lib.checkpoints.loader.load_model` from a cached checkpoint
    folder (written once under `bench/checkpoints/`), or drawn directly on the device in memory."""
    transformers.utils.logging.disable_progress_bar()  # one line per step in the bench's log
    if spec.build == "checkpoint":
        return load_model(str(checkpoint(spec)), device=spec.device, dtype=spec.dtype)
    device, dtype = resolve_device(spec.device), DTYPES[spec.dtype]
    with device:
        model = random_model(pythia_config(*spec.shape, vocab_rows=spec.vocab_rows), SEED, dtype)
    return LoadedModel(model, pythia_tokenizer(), spec.name, "random", device, dtype)


def all_heads(loaded: LoadedModel) -> Heads:
    config = loaded.model.config
    return tuple(
        (layer, head)
        for layer in range(config.num_hidden_layers)
        for head in range(config.num_attention_heads)
    )


def probe_head(loaded: LoadedModel) -> Heads:
    """One head of a layer >= 1 when there is one: those also run the first MLP (costlier)."""
    return ((min(1, loaded.model.config.num_hidden_layers - 1), 0),)


def engine_operations(loaded: LoadedModel, names: tuple[str, ...]) -> OperationScores:
    relations, _ = tokenize_relations(loaded.tokenizer, names)
    return operation_scores(loaded.model, relations)


def reference_operations(
    loaded: LoadedModel, names: tuple[str, ...], heads: Heads, order: str
) -> np.ndarray:
    """`[promotion, suppression]`, each `(len(heads), len(names))`, one head and relation at
    a time, `proj` multiplied in `order` (`tests.reference.LOOP_ORDERS`)."""
    scores = [
        [reference_scores(loaded.model, loaded.tokenizer, name, *head, order) for name in names]
        for head in heads
    ]
    return np.array(scores).transpose(2, 0, 1)


def engine_patterns(loaded: LoadedModel) -> np.ndarray:
    token_ids = ordinary_token_ids(loaded.tokenizer)
    return pattern_scores(loaded.model, token_ids, DEFAULT_PATTERN_SETTINGS)


def reference_patterns(loaded: LoadedModel, prompts: int) -> np.ndarray:
    """The per-prompt loop on the engine's first `prompts` random sequences."""
    settings = DEFAULT_PATTERN_SETTINGS
    token_ids = ordinary_token_ids(loaded.tokenizer)
    tokens = repeated_random_tokens(token_ids, settings)[:prompts].to(loaded.device)
    return reference_pattern_scores(loaded.model, tokens, settings.length).numpy()


def task(loaded: LoadedModel, name: str, names: tuple[str, ...]) -> Callable[[], Any]:
    """The measured call `name`. A loop's memory is one head's (left to right) or one
    prompt's: it does not grow with the number of heads or prompts, only its time does."""
    tasks: dict[str, Callable[[], Any]] = {
        "engine_operations": lambda: engine_operations(loaded, names),
        "reference_operations": lambda: reference_operations(
            loaded, names, probe_head(loaded), "left_to_right"
        ),
        "engine_patterns": lambda: engine_patterns(loaded),
        "reference_patterns": lambda: reference_patterns(loaded, 1),
    }
    return tasks[name]


def child_peak_rss(spec: ModelSpec, name: str, names: tuple[str, ...]) -> int:
    """In a fresh process: load the model, then the peak RSS increase of one call of `name`."""
    return sampled_peak_rss(task(load(spec), name, names))


def peak_extra(spec: ModelSpec, loaded: LoadedModel, name: str, names: tuple[str, ...]) -> int:
    """Peak memory (bytes) of one call of `name` beyond the loaded model (bench/measure.py)."""
    if loaded.device.type == "cuda":
        return cuda_peak_extra(task(loaded, name, names), loaded.device)
    return in_fresh_process("bench.tasks", child_peak_rss, spec, name, names)
