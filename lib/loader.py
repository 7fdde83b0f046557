"""Load a GPT-NeoX (Pythia) checkpoint from the hub or a local folder, refusing early.

A source is a hub id (`EleutherAI/pythia-70m`, with a git `revision` such as `step1000`) or a
folder in the `save_pretrained` layout (`config.json`, `*.safetensors`, tokenizer files).
Only safetensors weights are read and `trust_remote_code` stays off: loading runs no code
from the checkpoint. Before any weights are read, the memory the model needs
(`lib.catalog.memory_estimate`) is compared with what is free on the target device.
Every problem a user can fix is an `InputError` that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lib.catalog import REVISIONS, bytes_per_element, memory_estimate, n_params, size_of
from lib.errors import InputError
from lib.progress import Progress, ignore

LOCAL_REVISION = "local"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES: dict[str, torch.dtype | None] = {
    "auto": None,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
OFFLINE_HINT = (
    "this machine cannot reach the Hugging Face hub (offline) and the files are not cached; "
    "download the checkpoint elsewhere with `save_pretrained` (safetensors) and pass its folder"
)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for scoring: eval mode, eager attention, on `device` in `dtype`."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    revision: str
    device: torch.device
    dtype: torch.dtype


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
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def free_memory(device: torch.device) -> int:
    """Bytes free for a new model on `device` (MPS shares system RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def is_folder_source(source: str) -> bool:
    """A source naming a path (existing, absolute, relative or home) rather than a hub id."""
    return Path(source).expanduser().exists() or source.startswith(("/", ".", "~", "\\"))


def read_config(source: str, revision: str) -> dict[str, Any]:
    """The checkpoint's `config.json`, from the folder or fetched alone from the hub."""
    if is_folder_source(source):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise InputError(
                f"no such folder: {source}; give the folder a model was saved to with "
                "save_pretrained, or a hub id such as EleutherAI/pythia-70m"
            )
        if not (folder / "config.json").is_file():
            raise InputError(f"{source} has no config.json; save the model with save_pretrained")
        if not any(folder.glob("*.safetensors")):
            raise InputError(
                f"{source} has no *.safetensors weights; only safetensors are loaded "
                "(re-save with save_pretrained(..., safe_serialization=True))"
            )
        return parse_config((folder / "config.json").read_text(), f"{source}/config.json")
    if size_of(source) is not None and revision not in REVISIONS:
        raise InputError(
            f"unknown revision {revision!r} for {source}; use main or a training step such as "
            "step0, step1, step2, step4, ..., step512, step1000, step2000, ..., step143000"
        )
    path = Path(download_from_hub(source, "config.json", revision))
    return parse_config(path.read_text(), f"{source}@{revision} config.json")


def parse_config(text: str, where: str) -> dict[str, Any]:
    """A `config.json`'s settings; `InputError` when it is not a JSON object."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise InputError(f"{where} is not valid JSON ({error}); re-save the model") from None
    if not isinstance(config, dict):
        raise InputError(f"{where} is not a JSON object of settings; re-save the model")
    return config


def download_from_hub(repo_id: str, filename: str, revision: str) -> str:
    """`hf_hub_download`, with each hub failure turned into an `InputError` saying what to do."""
    try:
        return hf_hub_download(repo_id, filename, revision=revision)
    except HFValidationError as error:
        raise InputError(f"{repo_id!r} is neither an existing folder nor a hub id") from error
    except GatedRepoError as error:
        raise InputError(f"{repo_id} is gated on the hub; log in with access to it") from error
    except RevisionNotFoundError as error:
        raise InputError(f"{repo_id} has no revision {revision!r} on the hub") from error
    except RepositoryNotFoundError as error:
        raise InputError(
            f"unknown model {repo_id!r}: no such repository on the hub; "
            "Pythia ids look like EleutherAI/pythia-70m"
        ) from error
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as error:
        raise InputError(f"cannot load {repo_id}: {OFFLINE_HINT}") from error
    except EntryNotFoundError as error:
        raise InputError(f"{repo_id}@{revision} has no {filename}; is it a model?") from error
    except HfHubHTTPError as error:
        raise InputError(f"the hub refused {repo_id}@{revision}: {error}") from error


def check_gpt_neox(config: dict[str, Any], source: str) -> None:
    model_type = config.get("model_type")
    if model_type != "gpt_neox":
        raise InputError(
            f"{source} is a {model_type!r} model, not GPT-NeoX (gpt_neox); "
            "the engine reads Pythia / GPT-NeoX weights only"
        )


def config_memory_estimate(config: dict[str, Any], dtype: torch.dtype) -> int:
    """`lib.catalog.memory_estimate` from a GPT-NeoX `config.json`."""
    d_model, vocab_rows = config["hidden_size"], config["vocab_size"]
    parameters = n_params(
        config["num_hidden_layers"],
        d_model,
        vocab_rows,
        config.get("intermediate_size", 4 * d_model),
    )
    return memory_estimate(parameters, d_model, vocab_rows, dtype)


def free_memory_by_holder(device: torch.device) -> dict[str, int]:
    """Bytes free wherever a model loaded for `device` must fit: the device itself, and the
    host, which the weights pass through (direct GPU loading needs `accelerate`)."""
    holders = dict.fromkeys((device, torch.device("cpu")))
    return {holder.type: free_memory(holder) for holder in holders}


def check_memory(needed: int, device: torch.device, source: str, dtype: torch.dtype) -> None:
    """`InputError` when `needed` bytes do not fit one of `free_memory_by_holder(device)`."""
    for holder, free in free_memory_by_holder(device).items():
        if needed > free:
            two_bytes = bytes_per_element(dtype) <= 2
            remedy = "another device" if two_bytes else "a 2-byte dtype (bfloat16)"
            raise InputError(
                f"{source} needs about {needed / 2**30:.1f} GiB in "
                f"{dtype_name(dtype)} but only {free / 2**30:.1f} GiB is free on "
                f"{holder}; pick a smaller model or {remedy}"
            )


def load_model(
    source: str,
    revision: str = "main",
    device: str = "auto",
    dtype: str = "auto",
    progress: Progress | None = None,
) -> LoadedModel:
    """Load `source` (hub id at `revision`, or a local folder) for scoring.

    Checks, in order and before reading weights: device and dtype exist, the source exists
    (folder, hub id, revision; offline is reported as such), it is a GPT-NeoX checkpoint with
    safetensors weights, and its estimated memory fits what is free on the device.
    """
    report = progress or ignore
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    report(0.0, f"reading the configuration of {source}")
    config = read_config(source, revision)
    check_gpt_neox(config, source)
    check_memory(config_memory_estimate(config, torch_dtype), target, source, torch_dtype)
    local = is_folder_source(source)
    location = str(Path(source).expanduser()) if local else source
    hub_revision = None if local else revision
    fetching = "loading" if local else "downloading (unless cached) and loading"
    report(0.1, f"{fetching} the weights of {source}")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location,
            revision=hub_revision,
            dtype=torch_dtype,
            use_safetensors=True,
            trust_remote_code=False,
            # Pattern scores need attention weights, which only eager attention returns.
            attn_implementation="eager",
        )
        tokenizer = AutoTokenizer.from_pretrained(
            location, revision=hub_revision, trust_remote_code=False
        )
    except OSError as error:
        raise InputError(f"cannot load {source}@{revision}: {error}") from error
    report(0.9, f"moving {source} to {target}")
    model = model.to(target).eval()
    report(1.0, f"loaded {source}")
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=source,
        revision=LOCAL_REVISION if local else revision,
        device=target,
        dtype=torch_dtype,
    )
