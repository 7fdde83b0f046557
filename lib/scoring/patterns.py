"""Attention-pattern scores of every head from one forward pass over random tokens.

The input is a batch of sequences `r ++ r`: `r` is `length` distinct tokens drawn uniformly
(seeded) from the tokenizer's ordinary tokens (`ordinary_token_ids`), repeated once, so a
token's earlier copy sits exactly `length` positions back. With `A[i, j]` a head's attention
from position i to position j (eager attention, rows sum to 1) and `n = length`, averaged over
the batch:

- `previous_token` = mean over rows i >= 1 of `A[i, i - 1]`;
- `duplicate_token` = mean over rows i >= n of `A[i, i - n]` (the earlier copy of token i);
- `induction` = mean over rows i >= n of `A[i, i - n + 1]` (the token after the earlier copy);
- `first_token` = mean over rows i >= 1 of `A[i, 0]` (attention-sink behaviour).

Each is TransformerLens's `sum(A * P) / sum(A)` for the 0/1 target pattern P, restricted to
the rows that have a target: rows without one are excluded rather than counted as 0, so a
perfect induction head scores 1.0 rather than about 0.5. All are fractions in [0, 1]
(docs/methods.md §4).

The forward pass computes in float32 whatever dtype the weights are stored in (each layer
upcast only while it runs, `lib.scoring.precision.float32_modules`), so attention patterns do
not depend on the stored dtype (docs/methods.md §6). It runs one layer at a time
(`layer_attentions`), so a checkpoint folder is read layer by layer, never as a whole model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lib.core.errors import InputError
from lib.core.progress import Progress, ignore
from lib.scoring.precision import float32_matmul, float32_modules, to_float32
from lib.scoring.weights_view import Weighted, weights_view


@dataclass(frozen=True)
class PatternSettings:
    """Random input of the pattern pass: `batch` sequences of `2 * length` tokens."""

    batch: int = 8
    length: int = 32
    seed: int = 0


DEFAULT_PATTERN_SETTINGS = PatternSettings()


def ordinary_token_ids(tokenizer: Any) -> torch.Tensor:
    """The ids random sequences are drawn from: the tokenizer's tokens without its special
    ones (`<|endoftext|>`, padding), which would make position 0 or a repeat look special.
    Embedding rows past the tokenizer (Pythia pads to a multiple of 128) are never trained
    and never drawn."""
    special = set(tokenizer.all_special_ids)
    return torch.tensor([i for i in range(len(tokenizer)) if i not in special])


def repeated_random_tokens(token_ids: torch.Tensor, settings: PatternSettings) -> torch.Tensor:
    """`(batch, 2 * length)` ids: per row, `length` distinct random `token_ids`, then again."""
    generator = torch.Generator().manual_seed(settings.seed)
    halves = torch.stack(
        [
            token_ids[torch.randperm(len(token_ids), generator=generator)[: settings.length]]
            for _ in range(settings.batch)
        ]
    )
    return torch.cat([halves, halves], dim=1)


def head_pattern_scores(attention: torch.Tensor, length: int) -> torch.Tensor:
    """`(H, 4)` scores in `PATTERNS` order from one layer's `(B, H, 2n, 2n)` attention."""
    rows = torch.arange(2 * length, device=attention.device)
    after_first, second_half = rows[1:], rows[length:]
    targets = (
        (after_first, after_first - 1),
        (second_half, second_half - length),
        (second_half, second_half - length + 1),
        (after_first, torch.zeros_like(after_first)),
    )
    return torch.stack([attention[:, :, i, j].float().mean(dim=(0, 2)) for i, j in targets], dim=-1)


def layer_attentions(model: Weighted, tokens: torch.Tensor) -> Iterator[torch.Tensor]:
    """Each layer's attention `(B, H, T, T)` over `tokens` `(B, T)`, in layer order, from a
    float32 forward pass run one layer at a time: the embedding rows of the batch's tokens,
    transformers' causal mask and rotary embedding, then each `GPTNeoXLayer` as the model's
    own forward calls it (eager attention; the layer upcast while it runs). A streamed
    checkpoint reads each layer when it is reached (`lib.scoring.weights_view`); the final
    layer norm and the unembedding are never needed."""
    # Here, not at the top: transformers' masking code imports torch's compiler (about 1 s),
    # which scores without patterns never need.
    from transformers.masking_utils import create_causal_mask

    view = weights_view(model)
    hidden = to_float32(view.input_embedding_rows(tokens))
    positions = torch.arange(tokens.shape[1], device=hidden.device).unsqueeze(0)
    mask = create_causal_mask(
        config=view.config,
        inputs_embeds=hidden,
        attention_mask=None,
        past_key_values=None,
        position_ids=positions,
    )
    rotary = view.rotary()(hidden, position_ids=positions)
    attention: list[torch.Tensor] = []

    def keep(_module: Any, _args: Any, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        attention.append(output[1])  # a layer returns its hidden states only

    for layer in range(view.config.num_hidden_layers):
        module = view.layer_module(layer)
        with float32_modules(module), module.attention.register_forward_hook(keep):
            hidden = module(
                hidden, attention_mask=mask, position_ids=positions, position_embeddings=rotary
            )
        yield attention.pop()


def pattern_scores(
    model: Weighted,
    token_ids: torch.Tensor,
    settings: PatternSettings = DEFAULT_PATTERN_SETTINGS,
    progress: Progress | None = None,
) -> np.ndarray:
    """`(L, H, 4)` scores in `PATTERNS` order (module docstring), from one batched pass over
    sequences drawn from `token_ids` (`ordinary_token_ids` of the model's tokenizer), of a
    model in memory or a checkpoint read one layer at a time (`layer_attentions`)."""
    if settings.length > len(token_ids):
        raise InputError(f"cannot draw {settings.length} distinct tokens from {len(token_ids)}")
    view = weights_view(model)
    report = progress or ignore
    tokens = repeated_random_tokens(token_ids, settings).to(view.device)
    n_layers = view.config.num_hidden_layers
    scores = []
    with torch.inference_mode(), float32_matmul():
        for layer, attention in enumerate(layer_attentions(view, tokens)):
            report(layer / n_layers, f"attention patterns: layer {layer + 1} of {n_layers}")
            scores.append(head_pattern_scores(attention, settings.length))
    report(1.0, "attention patterns: done")
    return torch.stack(scores).cpu().numpy().astype(np.float64)
