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

The forward pass computes in float32 whatever dtype the weights are stored in
(`lib.scoring.precision.float32_forward`: each module upcast only while it runs), so attention
patterns do not depend on the stored dtype (docs/methods.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from lib.core.errors import InputError
from lib.core.progress import Progress, ignore
from lib.scoring.precision import float32_forward


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


def pattern_scores(
    model: PreTrainedModel,
    token_ids: torch.Tensor,
    settings: PatternSettings = DEFAULT_PATTERN_SETTINGS,
    progress: Progress | None = None,
) -> np.ndarray:
    """`(L, H, 4)` scores in `PATTERNS` order (module docstring), from one batched pass over
    sequences drawn from `token_ids` (`ordinary_token_ids` of the model's tokenizer)."""
    if settings.length > len(token_ids):
        raise InputError(f"cannot draw {settings.length} distinct tokens from {len(token_ids)}")
    if model.config._attn_implementation != "eager":
        # Fused kernels (sdpa, flash) return no attention weights.
        model.set_attn_implementation("eager")
    report = progress or ignore
    tokens = repeated_random_tokens(token_ids, settings).to(model.device)
    report(0.0, "attention patterns: forward pass")
    # The base model: the attentions are all we read, the logits would cost a float32 W_U.
    with torch.inference_mode(), float32_forward(model):
        attentions = model.base_model(tokens, output_attentions=True).attentions
        scores = torch.stack([head_pattern_scores(a, settings.length) for a in attentions])
    report(1.0, "attention patterns: done")
    return scores.cpu().numpy().astype(np.float64)
