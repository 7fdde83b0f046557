"""What a checkpoint folder must hold before transformers is let near it, checked from small
files and headers only.

`check_config` validates every `config.json` field the engine uses (GPT-NeoX, positive whole
numbers within `LIMITS`, heads dividing the hidden size) and returns the model's `NeoxShape`.
`check_folder` then reads the folder without loading a weight:

- every `*.safetensors.index.json` may only point at `.safetensors` files inside the folder, so
  no pickle is ever opened through an index (transformers, told `use_safetensors`, follows no
  other index: a hub repository's `pytorch_model.bin.index.json` is left alone);
- the weights transformers would read (`model.safetensors`, else the shards named by
  `model.safetensors.index.json`) are well-formed safetensors (header, offsets, file length)
  holding exactly the tensors of `expected_tensors(shape)`, with those shapes: a missing layer
  would otherwise be filled with random numbers and scored;
- tokenizer files are present (`TOKENIZER_FILES`): without them transformers builds an empty
  tokenizer without a word.

Every refusal is one `InputError` line naming the file and what to do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.core.errors import InputError, is_whole_number

LIMITS = {
    "num_hidden_layers": 1024,
    "num_attention_heads": 1024,
    "hidden_size": 65536,
    "intermediate_size": 4 * 65536,
    "vocab_size": 2**21,
}
"""Upper bounds on config fields (the largest Pythia has 36 layers, hidden size 5120, 50688
rows); past them a config is refused as absurd before anything is built from it."""
SAFETENSORS_ITEM_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
LEGACY_BUFFERS = ("attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq")
"""Buffers older GPT-NeoX checkpoints store beside the weights; transformers skips them."""
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))
"""A folder needs one of these sets: a fast tokenizer, or a byte-level BPE's two files."""
SAVE_TOKENIZER = "save the tokenizer too: AutoTokenizer.from_pretrained(ID).save_pretrained(folder)"


@dataclass(frozen=True)
class NeoxShape:
    """A GPT-NeoX model's shape from its config: `d_mlp` = `intermediate_size`, `vocab_rows`
    = embedding rows (`vocab_size`), `tied` = output embedding shared with the input one,
    `biases` = attention biases (`attention_bias`, true for Pythia)."""

    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    vocab_rows: int
    tied: bool = False
    biases: bool = True


def _whole(config: dict[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = config.get(name, default)
    if value is None:
        raise InputError(f"{where} has no {name!r}; re-save the model with save_pretrained")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMITS[name]:
        raise InputError(
            f"{where}: {name} is {value!r}; expected a whole number from 1 to {LIMITS[name]}"
        )
    return value


def _flag(config: dict[str, Any], name: str, where: str, default: bool) -> bool:
    value = config.get(name, default)
    if not isinstance(value, bool):
        raise InputError(f"{where}: {name} is {value!r}; expected true or false")
    return value


def check_config(config: dict[str, Any], where: str) -> NeoxShape:
    """The shape of a GPT-NeoX `config.json` (module docstring); `where` names it in messages."""
    model_type = config.get("model_type")
    if model_type != "gpt_neox":
        raise InputError(
            f"{where} is a {model_type!r} model, not GPT-NeoX (gpt_neox); "
            "the engine reads Pythia / GPT-NeoX weights only"
        )
    d_model = _whole(config, "hidden_size", where)
    n_heads = _whole(config, "num_attention_heads", where)
    if d_model % n_heads:
        raise InputError(
            f"{where}: hidden_size {d_model} is not divisible by num_attention_heads {n_heads}"
        )
    return NeoxShape(
        n_layers=_whole(config, "num_hidden_layers", where),
        n_heads=n_heads,
        d_model=d_model,
        d_mlp=_whole(config, "intermediate_size", where, 4 * d_model),
        vocab_rows=_whole(config, "vocab_size", where),
        tied=_flag(config, "tie_word_embeddings", where, False),
        biases=_flag(config, "attention_bias", where, True),
    )


def parse_json(data: bytes, where: str, what: str) -> Any:
    """JSON from a checkpoint's file: `InputError` for bytes that are not UTF-8 JSON, or
    nested too deeply for Python's parser."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text; re-save the {what}") from None
    except ValueError as error:
        raise InputError(f"{where} is not valid JSON ({error}); re-save the {what}") from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to be a {what} file") from None


def expected_tensors(shape: NeoxShape) -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT-NeoX checkpoint of `shape` stores, by name, with its shape
    (the layout `save_pretrained` writes and Pythia's hub files use)."""
    d, mlp = shape.d_model, shape.d_mlp
    tensors: dict[str, tuple[int, ...]] = {"gpt_neox.embed_in.weight": (shape.vocab_rows, d)}
    for layer in range(shape.n_layers):
        prefix = f"gpt_neox.layers.{layer}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"{prefix}{norm}.weight"] = (d,)
            tensors[f"{prefix}{norm}.bias"] = (d,)
        tensors[f"{prefix}attention.query_key_value.weight"] = (3 * d, d)
        tensors[f"{prefix}attention.dense.weight"] = (d, d)
        if shape.biases:
            tensors[f"{prefix}attention.query_key_value.bias"] = (3 * d,)
            tensors[f"{prefix}attention.dense.bias"] = (d,)
        tensors[f"{prefix}mlp.dense_h_to_4h.weight"] = (mlp, d)
        tensors[f"{prefix}mlp.dense_h_to_4h.bias"] = (mlp,)
        tensors[f"{prefix}mlp.dense_4h_to_h.weight"] = (d, mlp)
        tensors[f"{prefix}mlp.dense_4h_to_h.bias"] = (d,)
    tensors["gpt_neox.final_layer_norm.weight"] = (d,)
    tensors["gpt_neox.final_layer_norm.bias"] = (d,)
    if not shape.tied:
        tensors["embed_out.weight"] = (shape.vocab_rows, d)
    return tensors


def _bad(path: Path, why: str) -> InputError:
    return InputError(
        f"{path} is not a usable safetensors file ({why}); re-save the model with "
        "save_pretrained(..., safe_serialization=True)"
    )


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensors of a safetensors file by name, with their shapes, from its header alone.

    The file is 8 bytes (little-endian header length n), n bytes of JSON header, then the data;
    each header entry's `data_offsets` must tile the data exactly, and its byte length must be
    its shape's product times its dtype's size (so a truncated file is refused here)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            prefix = file.read(8)
            n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
                raise _bad(path, "no valid header")
            raw = file.read(n)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    header = parse_json(raw, str(path), "model")
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    spans: list[tuple[int, int]] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape, span = _entry(path, name, entry)
        shapes[name] = shape
        spans.append(span)
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise _bad(path, "its tensors overlap or leave gaps")
        end = stop
    if end != size - 8 - n:
        truncated = end > size - 8 - n
        raise _bad(path, "it is truncated" if truncated else "it has bytes past its tensors")
    return shapes


def _entry(path: Path, name: str, entry: Any) -> tuple[tuple[int, ...], tuple[int, int]]:
    """(shape, data span) of one header entry, checked."""
    if not isinstance(entry, dict):
        raise _bad(path, f"tensor {name!r} has no description")
    dtype, shape, span = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    whole = (
        isinstance(shape, list)
        and isinstance(span, list)
        and len(span) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape + span)
    )
    if dtype not in SAFETENSORS_ITEM_BYTES or not whole or span[0] > span[1]:
        raise _bad(path, f"tensor {name!r} has a malformed dtype, shape or offsets")
    if span[1] - span[0] != math.prod(shape) * SAFETENSORS_ITEM_BYTES[dtype]:
        raise _bad(path, f"tensor {name!r} has {span[1] - span[0]} bytes for shape {shape}")
    return tuple(shape), (span[0], span[1])


def index_shards(index: Path) -> list[str]:
    """The files a `*.safetensors.index.json` points at; `InputError` unless each is a
    `.safetensors` file directly inside the index's folder."""
    try:
        data = index.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {index}: {error.strerror}") from None
    content = parse_json(data, str(index), "model")
    weight_map = content.get("weight_map") if isinstance(content, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(value, str) for value in weight_map.values()
    ):
        raise InputError(f"{index} has no weight_map of tensor names to file names; re-save it")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        inside = Path(shard).name == shard and shard not in {"", ".", ".."}
        if not inside or not shard.endswith(".safetensors"):
            raise InputError(
                f"{index} points at {shard!r}; only .safetensors files inside the folder are "
                "read (no pickles): re-save with save_pretrained(..., safe_serialization=True)"
            )
        if not (index.parent / shard).is_file():
            raise InputError(f"{index} points at {shard}, which is not in {index.parent}")
    return shards


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files transformers reads from `folder` (module docstring), after every
    `*.safetensors.index.json` of the folder is checked (`index_shards`)."""
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    shards = {index.name: index_shards(index) for index in indexes}
    if (folder / SINGLE_FILE).is_file():
        return [folder / SINGLE_FILE]
    if INDEX_FILE in shards:
        return [folder / shard for shard in shards[INDEX_FILE]]
    raise InputError(
        f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}; only safetensors weights are "
        "loaded (re-save with save_pretrained(..., safe_serialization=True))"
    )


def _sample(names: set[str]) -> str:
    shown = sorted(names, key=_natural)[:3]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(shown) + more


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(part) if is_whole_number(part) else part for part in name.split("."))


def check_weights(folder: Path, shape: NeoxShape) -> None:
    """`InputError` unless the folder's weights hold exactly `expected_tensors(shape)`."""
    found: dict[str, tuple[int, ...]] = {}
    for path in weight_files(folder):
        found.update(safetensors_shapes(path))
    if "lm_head.weight" in found and "embed_out.weight" not in found:
        found["embed_out.weight"] = found.pop("lm_head.weight")  # transformers' own name
    expected = expected_tensors(shape)
    config = f"{folder / 'config.json'} ({shape.n_layers} layers, hidden size {shape.d_model})"
    missing = set(expected) - set(found)
    if missing:
        raise InputError(
            f"{folder}: {len(missing)} tensors that {config} needs are missing from the "
            f"weights ({_sample(missing)}); the weights and the config do not match"
        )
    unexpected = {name for name in set(found) - set(expected) if not name.endswith(LEGACY_BUFFERS)}
    if unexpected:
        raise InputError(
            f"{folder}: the weights hold {len(unexpected)} tensors that {config} does not "
            f"describe ({_sample(unexpected)}); the weights and the config do not match"
        )
    for name in sorted(expected, key=_natural):
        if found[name] != expected[name]:
            raise InputError(
                f"{folder}: tensor {name} has shape {list(found[name])} but {config} implies "
                f"{list(expected[name])}; the weights and the config do not match"
            )


def check_tokenizer_files(folder: Path) -> None:
    """`InputError` unless one of `TOKENIZER_FILES` is complete in `folder`."""
    if not any(all((folder / name).is_file() for name in names) for names in TOKENIZER_FILES):
        raise InputError(
            f"{folder} has no tokenizer (tokenizer.json, or vocab.json and merges.txt); "
            + SAVE_TOKENIZER
        )


def check_tokenizer_fits(n_tokens: int, vocab_rows: int, where: str) -> None:
    """`InputError` unless the tokenizer has words and each of its ids has an embedding row."""
    if n_tokens == 0:
        raise InputError(f"the tokenizer of {where} is empty; " + SAVE_TOKENIZER)
    if n_tokens > vocab_rows:
        raise InputError(
            f"the tokenizer of {where} has {n_tokens} tokens but the model only {vocab_rows} "
            "embedding rows: it is another model's tokenizer; save the model's own"
        )
