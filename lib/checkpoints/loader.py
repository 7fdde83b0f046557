"""Load a GPT-NeoX (Pythia) checkpoint from the hub or a local folder, refusing early.

A source is a hub id (`EleutherAI/pythia-70m`, with a git `revision` such as `step1000`, or a
commit hash) or a folder in the `save_pretrained` layout (`config.json`, `*.safetensors`,
tokenizer files). Only safetensors weights are read and `trust_remote_code` stays off: loading
runs no code from the checkpoint. A hub revision is pinned to its commit first
(`lib.checkpoints.hub`); a folder is identified by its content fingerprint
(`lib.checkpoints.fingerprint`). Before transformers reads a weight, the config, the weights'
headers and the tokenizer are checked (`lib.checkpoints.validation`) and the memory the model needs
(`lib.core.catalog.memory_estimate`) is compared with what is free on the target device. Every
problem a user can fix is an `InputError` that says what to do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import torch
from transformers import AutoConfig, AutoTokenizer

from lib.checkpoints.fingerprint import folder_fingerprint, tokenizer_fingerprint
from lib.checkpoints.hub import fetch_config, fetch_snapshot, is_commit
from lib.checkpoints.validation import (
    SAVE_TOKENIZER,
    NeoxShape,
    check_config,
    check_tokenizer_files,
    check_tokenizer_fits,
    check_weights,
    parse_json,
)
from lib.checkpoints.weights import CheckpointWeights
from lib.core.catalog import (
    REVISIONS,
    bytes_per_element,
    memory_estimate,
    n_params,
    size_of,
)
from lib.core.catalog import streamed_memory_estimate as streamed_memory_estimate_of
from lib.core.errors import InputError
from lib.core.progress import Progress, ignore

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

LOCAL_REVISION = "local"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES: dict[str, torch.dtype | None] = {
    "auto": None,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for scoring: eval mode, eager attention, on `device` in `dtype`.
    `commit` pins its weights: the hub commit its revision resolved to, or the content
    fingerprint of a local folder (docs/methods.md §7)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    revision: str
    device: torch.device
    dtype: torch.dtype
    commit: str = ""


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> `bfloat16`, the name used in `DTYPES`, tables and keys."""
    return str(dtype).removeprefix("torch.")


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` = CUDA if present, else Apple MPS, else CPU; a forced device must exist."""
    if device not in DEVICES:
        raise InputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if device == "auto":
        return torch.device(next(name for name, ok in available.items() if ok))
    if not available[device]:
        raise InputError(f"device {device!r} is not available on this machine; use --device cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` = bfloat16 on a GPU that supports it, else float16 on a GPU; float32 on CPU."""
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    forced = DTYPES[dtype]
    if forced is not None:
        return forced
    if device.type == "cpu":
        return torch.float32
    # Emulated bfloat16 (e.g. T4, V100) is slower than float16 and not what the user asked for.
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    return torch.float16


def free_memory(device: torch.device) -> int:
    """Bytes free for a new model on `device` (MPS shares system RAM). On CUDA: what the
    driver reports free plus what PyTorch's caching allocator holds reserved but unused, which
    the driver counts as used although the next model's tensors go there first."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached
    return psutil.virtual_memory().available


def is_folder_source(source: str) -> bool:
    """A source naming a path (existing, absolute, relative or home) rather than a hub id."""
    if not source.strip():
        return False  # Path("") is the current folder, which nobody means by an empty field
    return Path(source).expanduser().exists() or source.startswith(("/", ".", "~", "\\"))


def check_source(source: str) -> None:
    """`InputError` for an empty source."""
    if not source.strip():
        raise InputError(
            "no model given: pass a hub id such as EleutherAI/pythia-70m or a checkpoint folder"
        )


def read_config(folder: Path, source: str) -> dict[str, Any]:
    """A folder's `config.json` as a JSON object, after the folder's basic layout is checked."""
    if not folder.is_dir():
        raise InputError(
            f"no such folder: {source}; give the folder a model was saved to with "
            "save_pretrained, or a hub id such as EleutherAI/pythia-70m"
        )
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"{source} has no config.json; save the model with save_pretrained")
    if not any(folder.glob("*.safetensors")):
        raise InputError(
            f"{source} has no *.safetensors weights; only safetensors are loaded "
            "(re-save with save_pretrained(..., safe_serialization=True))"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    return config_object(parse_json(data, f"{source}/config.json", "model"), path.name)


def config_object(config: Any, where: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InputError(f"{where} is not a JSON object of settings; re-save the model")
    return config


def inspect_folder(source: str) -> NeoxShape:
    """The model shape of a checkpoint folder, after its config, its weights' headers and its
    tokenizer files are checked (`lib.checkpoints.validation`); reads no weights."""
    check_source(source)
    folder = Path(source).expanduser()
    shape = check_config(read_config(folder, source), f"{source}/config.json")
    check_weights(folder, shape)
    check_tokenizer_files(folder)
    return shape


def check_revision(source: str, revision: str) -> None:
    """A catalog model's revision must be one of its checkpoints or a commit hash."""
    if size_of(source) is not None and revision not in REVISIONS and not is_commit(revision):
        raise InputError(
            f"unknown revision {revision!r} for {source}; use main, a training step such as "
            "step0, step1, step2, step4, ..., step512, step1000, step2000, ..., step143000, "
            "or a 40-digit commit hash"
        )


def hub_config(source: str, revision: str) -> tuple[NeoxShape, str]:
    """The model shape of a hub checkpoint from its `config.json` alone, and the commit its
    `revision` resolved to."""
    check_revision(source, revision)
    path, commit = fetch_config(source, revision)
    where = f"{source}@{revision} config.json"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {where}: {error.strerror}") from None
    return check_config(config_object(parse_json(data, where, "model"), where), where), commit


def shape_memory_estimate(shape: NeoxShape, dtype: torch.dtype) -> int:
    """`lib.core.catalog.memory_estimate` of a model of `shape` (loaded whole)."""
    parameters = n_params(shape.n_layers, shape.d_model, shape.vocab_rows, shape.d_mlp)
    return memory_estimate(parameters, shape.d_model, shape.vocab_rows, dtype, shape.n_layers)


def streamed_memory_estimate(shape: NeoxShape, dtype: torch.dtype) -> int:
    """`lib.core.catalog.streamed_memory_estimate` of a model of `shape` (read layer by
    layer; the compute is float32 whatever `dtype`)."""
    return streamed_memory_estimate_of(shape.d_model, shape.vocab_rows, shape.d_mlp)


TOKENIZERS_KEPT = 4
"""Tokenizers a process keeps, by the content of their files (`tokenizer_fingerprint`): every
checkpoint of a Pythia model has the same tokenizer, so a sweep or the app loads it once. Kept
rather than reloaded because `tokenizers` 0.23 holds on to about 1.7 MiB of every instance that
encoded the relations after the instance is collected (bench/README.md: a sweep's memory), and
a load takes a few tenths of a second. Nothing in this project changes a tokenizer it loaded."""

_tokenizers: OrderedDict[str, PreTrainedTokenizerBase] = OrderedDict()
_tokenizers_lock = threading.Lock()


def load_tokenizer(folder: Path, shape: NeoxShape, source: str) -> PreTrainedTokenizerBase:
    """The folder's tokenizer (the one kept for the same files, else read), refused when
    unreadable, empty or larger than the embedding."""
    key = tokenizer_fingerprint(folder)
    with _tokenizers_lock:
        tokenizer = _tokenizers.get(key)
        if tokenizer is None:
            tokenizer = read_folder_tokenizer(folder, source)
            _tokenizers[key] = tokenizer
        _tokenizers.move_to_end(key)
        while len(_tokenizers) > TOKENIZERS_KEPT:
            _tokenizers.popitem(last=False)
    check_tokenizer_fits(len(tokenizer), shape.vocab_rows, source)
    return tokenizer


def read_folder_tokenizer(folder: Path, source: str) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained(folder)`, offline; `InputError` when it cannot be read."""
    try:
        return AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True
        )
    except Exception as error:  # the tokenizer libraries raise many types on malformed files
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise InputError(
            f"cannot read the tokenizer of {source} ({reason}); {SAVE_TOKENIZER}"
        ) from None


def free_memory_by_holder(device: torch.device) -> dict[str, int]:
    """Bytes free wherever a model loaded for `device` must fit: the device itself, and the
    host, which the weights pass through (direct GPU loading needs `accelerate`)."""
    holders = dict.fromkeys((device, torch.device("cpu")))
    return {holder.type: free_memory(holder) for holder in holders}


def check_memory(
    needed: int,
    device: torch.device,
    source: str,
    dtype: torch.dtype,
    dtype_matters: bool = True,
) -> None:
    """`InputError` when `needed` bytes do not fit one of `free_memory_by_holder(device)`; a
    2-byte dtype is suggested only when it would shrink `needed` (`dtype_matters`: not for a
    run reading the weights layer by layer, whose compute is float32)."""
    for holder, free in free_memory_by_holder(device).items():
        if needed > free:
            two_bytes = bytes_per_element(dtype) <= 2
            remedy = (
                "another device" if two_bytes or not dtype_matters else "a 2-byte dtype (bfloat16)"
            )
            raise InputError(
                f"{source} needs about {needed / 2**30:.1f} GiB in "
                f"{dtype_name(dtype)} but only {free / 2**30:.1f} GiB is free on "
                f"{holder}; pick a smaller model or {remedy}"
            )


@dataclass(frozen=True)
class CheckedSource:
    """A checkpoint that passed every check of `check_checkpoint`, its weights not yet read:
    the folder holding them (a hub snapshot is downloaded first), its shape and tokenizer,
    the resolved device and dtype, and its commit or content fingerprint."""

    folder: Path
    shape: NeoxShape
    tokenizer: PreTrainedTokenizerBase
    name: str
    revision: str
    device: torch.device
    dtype: torch.dtype
    commit: str


MemoryEstimate = Callable[[NeoxShape, torch.dtype], int]


def check_checkpoint(
    source: str,
    revision: str = "main",
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress | None = None,
    pinned: str | None = None,
    needed: MemoryEstimate = shape_memory_estimate,
) -> CheckedSource:
    """Every check `load_model` makes before a weight is read, in its order: device and dtype
    exist, the source exists (folder, hub id, revision; offline is reported as such), its
    config is a valid GPT-NeoX config, the memory `needed` for its shape fits what is free on
    the device, its weights are safetensors holding exactly the config's tensors and its
    tokenizer fits the embedding. A hub snapshot is downloaded (unless cached) on the way."""
    report = progress or ignore
    check_source(source)
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    report(0.0, f"reading the configuration of {source}")
    local = is_folder_source(source)

    def check_fits(shape: NeoxShape) -> None:
        dtype_matters = needed(shape, torch.float32) != needed(shape, torch.bfloat16)
        check_memory(needed(shape, torch_dtype), target, source, torch_dtype, dtype_matters)

    if local:
        shape = inspect_folder(source)
        check_fits(shape)
        folder = Path(source).expanduser()
        commit = pinned or folder_fingerprint(folder)
    else:
        shape, commit = hub_config(source, pinned or revision)
        check_fits(shape)
        report(0.1, f"downloading (unless cached) the weights of {source}")
        folder = fetch_snapshot(source, commit)
        check_weights(folder, shape)
        check_tokenizer_files(folder)
    tokenizer = load_tokenizer(folder, shape, source)
    return CheckedSource(
        folder=folder,
        shape=shape,
        tokenizer=tokenizer,
        name=source,
        revision=LOCAL_REVISION if local else revision,
        device=target,
        dtype=torch_dtype,
        commit=commit,
    )


def load_model(
    source: str,
    revision: str = "main",
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress | None = None,
    pinned: str | None = None,
) -> LoadedModel:
    """Load `source` (hub id at `revision`, or a local folder) whole, for scoring, after
    `check_checkpoint`. `pinned` is the commit (hub) or fingerprint (folder) when the caller
    has resolved it.
    """
    # Here, not at the top: transformers' model-loading code costs about 2 s to import, and a
    # run reading the weights layer by layer (`open_checkpoint`) never needs it.
    from transformers import AutoModelForCausalLM

    report = progress or ignore
    checked = check_checkpoint(source, revision, device, dtype, report, pinned)
    report(0.1, f"loading the weights of {source}")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(checked.folder),
            dtype=checked.dtype,
            use_safetensors=True,
            trust_remote_code=False,
            local_files_only=True,
            # Pattern scores need attention weights, which only eager attention returns.
            attn_implementation="eager",
        )
    except OSError as error:
        raise InputError(f"cannot load {source}@{revision}: {error}") from error
    report(0.9, f"moving {source} to {checked.device}")
    model = model.to(checked.device).eval()
    report(1.0, f"loaded {source}")
    return LoadedModel(
        model=model,
        tokenizer=checked.tokenizer,
        name=source,
        revision=checked.revision,
        device=checked.device,
        dtype=checked.dtype,
        commit=checked.commit,
    )


@dataclass(frozen=True)
class StreamedCheckpoint:
    """A checked checkpoint whose tensors are read when used (`lib.checkpoints.weights`),
    never loaded as a whole model: `config` is its transformers config (eager attention),
    the other fields as `LoadedModel`'s."""

    weights: CheckpointWeights
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    name: str
    revision: str
    device: torch.device
    dtype: torch.dtype
    commit: str = ""


def open_checkpoint(
    source: str,
    revision: str = "main",
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress | None = None,
    pinned: str | None = None,
) -> StreamedCheckpoint:
    """`source` after the checks of `check_checkpoint` (memory: `streamed_memory_estimate`),
    ready to be scored layer by layer; reads the config and the weights' headers only."""
    report = progress or ignore
    checked = check_checkpoint(
        source, revision, device, dtype, report, pinned, streamed_memory_estimate
    )
    config = AutoConfig.from_pretrained(
        str(checked.folder),
        trust_remote_code=False,
        local_files_only=True,
        # Pattern scores need attention weights, which only eager attention returns.
        attn_implementation="eager",
    )
    report(1.0, f"opened {source}: its weights are read one layer at a time")
    return StreamedCheckpoint(
        weights=CheckpointWeights.open(checked.folder, checked.shape),
        config=config,
        tokenizer=checked.tokenizer,
        name=source,
        revision=checked.revision,
        device=checked.device,
        dtype=checked.dtype,
        commit=checked.commit,
    )


WEIGHT_READS = ("streamed", "whole")
"""How a scoring command reads a checkpoint: `streamed`, one layer at a time
(`open_checkpoint`), or `whole`, the model loaded by transformers (`load_model`): the
reference, with the same scores."""


def open_for_scoring(
    source: str,
    revision: str = "main",
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress | None = None,
    pinned: str | None = None,
    weights: str = "streamed",
) -> LoadedModel | StreamedCheckpoint:
    """`source` read as `weights` says (`WEIGHT_READS`), after the same checks."""
    if weights not in WEIGHT_READS:
        raise InputError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHT_READS)}")
    opener = open_checkpoint if weights == "streamed" else load_model
    return opener(source, revision, device, dtype, progress, pinned)
