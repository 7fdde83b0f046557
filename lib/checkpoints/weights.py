"""The tensors of a checked checkpoint folder, read on demand, never the whole model at once.

A folder that passed `lib.checkpoints.validation.check_weights` holds exactly the tensors of
`expected_tensors(shape)` in `model.safetensors` or in the shards of
`model.safetensors.index.json` (`weight_files`). `CheckpointWeights` knows which file holds
which tensor (from the headers alone) and reads tensors in their stored dtype through
safetensors' `safe_open`, a fresh handle for each read, closed right after: the files are
memory-mapped, and the pages a live mapping has touched count in the process's memory for as
long as it lives, so a handle kept across layers would end up holding the whole file
(shared/notes/streaming.md). The unembedding is stored as `embed_out.weight` (hub files) or
`lm_head.weight` (transformers' own class); a tied model reads the input embedding instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from lib.checkpoints.validation import (
    LEGACY_BUFFERS,
    NeoxShape,
    safetensors_shapes,
    weight_files,
)

INPUT_EMBEDDING = "gpt_neox.embed_in.weight"
UNEMBEDDING_NAMES = ("embed_out.weight", "lm_head.weight")
"""The unembedding's name in hub files, then in files written by transformers' own class."""
LAYER_PREFIX = "gpt_neox.layers.{layer}."


@dataclass(frozen=True)
class CheckpointWeights:
    """The tensors of a checked folder (module docstring); `files[name]` holds tensor `name`."""

    folder: Path
    shape: NeoxShape
    files: dict[str, Path]

    @classmethod
    def open(cls, folder: Path, shape: NeoxShape) -> CheckpointWeights:
        """The weights of `folder`, whose tensors `check_weights(folder, shape)` accepted;
        reads the safetensors headers only."""
        files = {name: path for path in weight_files(folder) for name in safetensors_shapes(path)}
        return cls(folder, shape, files)

    def read(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """The tensors `names`, in their stored dtype, one handle per file, closed after."""
        by_file: dict[Path, list[str]] = {}
        for name in names:
            by_file.setdefault(self.files[name], []).append(name)
        tensors: dict[str, torch.Tensor] = {}
        for path, wanted in by_file.items():
            with safe_open(str(path), framework="pt") as handle:
                tensors.update({name: handle.get_tensor(name) for name in wanted})
        return tensors

    def tensor(self, name: str) -> torch.Tensor:
        """One tensor, in its stored dtype."""
        return self.read([name])[name]

    def rows(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """Rows `ids` (any shape) of the matrix `name`, `(*ids.shape, columns)`, in its stored
        dtype; only the distinct rows asked for are read."""
        distinct, inverse = torch.unique(ids.cpu(), return_inverse=True)
        with safe_open(str(self.files[name]), framework="pt") as handle:
            matrix = handle.get_slice(name)
            picked = torch.cat([matrix[row : row + 1] for row in distinct.tolist()])
        return picked[inverse]

    def unembedding_name(self) -> str:
        """The name `W_U` is stored under (the input embedding's for a tied model)."""
        if self.shape.tied:
            return INPUT_EMBEDDING
        return next(name for name in UNEMBEDDING_NAMES if name in self.files)

    def layer(self, layer: int, part: str = "") -> dict[str, torch.Tensor]:
        """The tensors of `layer` whose names (after `gpt_neox.layers.<layer>.`) start with
        `part` (e.g. `mlp.`; all of them by default), keyed by that shorter name, as a
        `GPTNeoXLayer`'s state dict names them. Older checkpoints' buffers are skipped."""
        prefix = LAYER_PREFIX.format(layer=layer)
        names = [
            name
            for name in self.files
            if name.startswith(prefix + part) and name.removeprefix(prefix) not in LEGACY_BUFFERS
        ]
        return {name.removeprefix(prefix): tensor for name, tensor in self.read(names).items()}
