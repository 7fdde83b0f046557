"""What the scores read of a model, as one small view: the same scoring code runs on a model
held whole in memory and on a checkpoint folder read one layer at a time.

A `WeightsView` lends its `config`, the `device` its tensors are on, rows of the input
embedding, the unembedding `W_U`, a layer's fused `query_key_value` and `dense` weights, the
first layer's `post_attention_layernorm` and MLP, a whole `GPTNeoXLayer`, and the rotary
embedding; every tensor in the model's loaded dtype (the scores upcast to float32 themselves:
`lib.scoring.precision`). Two views:

- `ModelWeights`: a `PreTrainedModel` in memory (`lib.checkpoints.loader.load_model`), the
  reference (`--weights whole`), and what the causal check (ablation) uses, which needs one;
- `StreamedWeights`: a checked folder (`lib.checkpoints.loader.open_checkpoint`). Every call
  reads its tensors from the safetensors files (`lib.checkpoints.weights`), casts them to the
  load dtype (as `from_pretrained` would, so both views hold the same numbers) and moves them
  to the device; the modules are transformers' own (`GPTNeoXLayer`, `GPTNeoXRotaryEmbedding`;
  the first MLP as `first_mlp_module` builds it), built empty from the config and given the
  layer's tensors, and dropped by the caller when it is done with them. Nothing is kept
  between calls.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

import torch
from torch import nn

from lib.checkpoints.loader import LoadedModel, StreamedCheckpoint
from lib.checkpoints.weights import INPUT_EMBEDDING, CheckpointWeights

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.models.gpt_neox.modeling_gpt_neox import (
        GPTNeoXLayer,
        GPTNeoXRotaryEmbedding,
    )


class WeightsView(Protocol):
    """What the scores read of a GPT-NeoX model (module docstring)."""

    @property
    def config(self) -> PretrainedConfig: ...

    @property
    def device(self) -> torch.device: ...

    def input_embedding_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows `ids` (any shape) of the input embedding: `(*ids.shape, d_model)`."""
        ...

    def unembedding(self) -> torch.Tensor:
        """`W_U`, the output embedding: `(vocab_rows, d_model)`."""
        ...

    def layer_ov(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(query_key_value.weight, dense.weight)` of `layer`'s attention."""
        ...

    def first_mlp(self) -> tuple[nn.Module, nn.Module]:
        """`(post_attention_layernorm, mlp)` of layer 0."""
        ...

    def layer_module(self, layer: int) -> GPTNeoXLayer:
        """The whole `GPTNeoXLayer` `layer`, in eval mode."""
        ...

    def rotary(self) -> GPTNeoXRotaryEmbedding:
        """The rotary embedding every layer's attention reads."""
        ...


@dataclass(frozen=True)
class ModelWeights:
    """The view of a model held whole in memory (eager attention is switched on, as pattern
    scores need attention weights)."""

    model: PreTrainedModel

    def __post_init__(self) -> None:
        if self.model.config._attn_implementation != "eager":
            # Fused kernels (sdpa, flash) return no attention weights.
            self.model.set_attn_implementation("eager")

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def input_embedding_rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings().weight[ids]

    def unembedding(self) -> torch.Tensor:
        return self.model.get_output_embeddings().weight

    def layer_ov(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        attention = self.model.gpt_neox.layers[layer].attention
        return attention.query_key_value.weight, attention.dense.weight

    def first_mlp(self) -> tuple[nn.Module, nn.Module]:
        first = self.model.gpt_neox.layers[0]
        return first.post_attention_layernorm, first.mlp

    def layer_module(self, layer: int) -> GPTNeoXLayer:
        return self.model.gpt_neox.layers[layer]

    def rotary(self) -> GPTNeoXRotaryEmbedding:
        return self.model.gpt_neox.rotary_emb


@dataclass(frozen=True)
class StreamedWeights:
    """The view of a checkpoint folder read layer by layer (module docstring)."""

    weights: CheckpointWeights
    config: PretrainedConfig
    device: torch.device
    dtype: torch.dtype

    def _loaded(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor as read, cast to the load dtype and on the device."""
        return tensor.to(device=self.device, dtype=self.dtype)

    def _filled(self, module: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
        """`module` (built on the meta device) holding `tensors`, loaded, in eval mode."""
        loaded = {name: self._loaded(tensor) for name, tensor in tensors.items()}
        module.load_state_dict(loaded, strict=True, assign=True)
        return module.eval()

    def input_embedding_rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self._loaded(self.weights.rows(INPUT_EMBEDDING, ids))

    def unembedding(self) -> torch.Tensor:
        return self._loaded(self.weights.tensor(self.weights.unembedding_name()))

    def layer_ov(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        tensors = self.weights.layer(layer, "attention.")
        return (
            self._loaded(tensors["attention.query_key_value.weight"]),
            self._loaded(tensors["attention.dense.weight"]),
        )

    def first_mlp(self) -> tuple[nn.Module, nn.Module]:
        with torch.device("meta"):
            norm = nn.LayerNorm(self.config.hidden_size, eps=self.config.layer_norm_eps)
            mlp = first_mlp_module(self.config)
        prefix = "post_attention_layernorm."
        norm_tensors = {n.removeprefix(prefix): t for n, t in self.weights.layer(0, prefix).items()}
        mlp_tensors = {n.removeprefix("mlp."): t for n, t in self.weights.layer(0, "mlp.").items()}
        return self._filled(norm, norm_tensors), self._filled(mlp, mlp_tensors)

    def layer_module(self, layer: int) -> GPTNeoXLayer:
        # Here, not at the top: transformers' modeling code costs about 2 s to import, and
        # only a forward pass (patterns, in-context scores) needs it.
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXLayer

        with torch.device("meta"):
            module = GPTNeoXLayer(self.config, layer)
        return self._filled(module, self.weights.layer(layer))

    def rotary(self) -> GPTNeoXRotaryEmbedding:
        # Imported here for the reason `layer_module` gives.
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding

        return GPTNeoXRotaryEmbedding(self.config).to(self.device)


def first_mlp_module(config: PretrainedConfig) -> nn.Module:
    """An empty GPT-NeoX MLP for `config` (`dense_4h_to_h(act(dense_h_to_4h(x)))`). With
    Pythia's `gelu`, `GPTNeoXMLP`'s very modules and parameter names as torch modules: the
    same kernels, so the same numbers (tested), without importing transformers' modeling code
    (about 2 s, which static scores need for nothing else); any other activation is
    transformers' own `GPTNeoXMLP`."""
    if config.hidden_act == "gelu":  # transformers' `ACT2FN["gelu"]` is `nn.functional.gelu`
        return nn.Sequential(
            OrderedDict(
                dense_h_to_4h=nn.Linear(config.hidden_size, config.intermediate_size),
                act=nn.GELU(),
                dense_4h_to_h=nn.Linear(config.intermediate_size, config.hidden_size),
            )
        )
    # Imported here for the reason `StreamedWeights.layer_module` gives.
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXMLP

    return GPTNeoXMLP(config)


# A string, so that `PreTrainedModel` (transformers' modeling code) is needed by type checkers only.
Weighted: TypeAlias = (
    "PreTrainedModel | LoadedModel | StreamedCheckpoint | ModelWeights | StreamedWeights"
)


def weights_view(source: Weighted) -> WeightsView:
    """The view of a model in memory (`PreTrainedModel`, `LoadedModel`), of a streamed
    checkpoint, or `source` itself when it is a view already."""
    if isinstance(source, ModelWeights | StreamedWeights):
        return source
    if isinstance(source, LoadedModel):
        return ModelWeights(source.model)
    if isinstance(source, StreamedCheckpoint):
        return StreamedWeights(source.weights, source.config, source.device, source.dtype)
    return ModelWeights(source)
