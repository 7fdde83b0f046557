"""The Pythia suite: sizes, shapes, parameter counts, hub ids, training checkpoints.

Everything here is known before anything is downloaded, so the app can offer the models and
say how much memory one needs before loading it. Figures are from the Pythia paper (Biderman
et al., 2023, table 1) and the checkpoints' `config.json`; parameter counts are computed from
the shapes (`n_params`) and match the published totals (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lib.core.errors import InputError, is_whole_number

if TYPE_CHECKING:  # torch is imported where a dtype is measured: the chart path needs none
    import torch

HUB_ORG = "EleutherAI"


@dataclass(frozen=True)
class PythiaSize:
    """One Pythia model shape; `vocab_rows` counts embedding rows (padded past the tokenizer);
    `has_deduped`: a `-deduped` twin trained on the deduplicated Pile exists on the hub."""

    name: str
    n_layers: int
    n_heads: int
    d_model: int
    vocab_rows: int = 50304
    has_deduped: bool = True

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_params(self) -> int:
        """All parameters, embeddings included (see `n_params`)."""
        return n_params(self.n_layers, self.d_model, self.vocab_rows, 4 * self.d_model)


def n_params(n_layers: int, d_model: int, vocab_rows: int, d_mlp: int) -> int:
    """Parameters of a GPT-NeoX model with biases and untied embeddings.

    Per layer: query_key_value `3d(d+1)`, dense `d(d+1)`, MLP `2 d d_mlp + d_mlp + d`, two layer
    norms `4d`; plus `embed_in` and `embed_out` (`2 V d`) and the final layer norm (`2d`).
    """
    per_layer = 4 * d_model * (d_model + 1) + 2 * d_model * d_mlp + d_mlp + d_model + 4 * d_model
    return n_layers * per_layer + 2 * vocab_rows * d_model + 2 * d_model


SIZES: dict[str, PythiaSize] = {
    size.name: size
    for size in (
        # 14m and 31m were added to the suite later, trained on the standard Pile only.
        PythiaSize("14m", 6, 4, 128, has_deduped=False),
        PythiaSize("31m", 6, 8, 256, has_deduped=False),
        PythiaSize("70m", 6, 8, 512),
        PythiaSize("160m", 12, 12, 768),
        PythiaSize("410m", 24, 16, 1024),
        PythiaSize("1b", 16, 8, 2048),
        PythiaSize("1.4b", 24, 16, 2048),
        PythiaSize("2.8b", 32, 32, 2560),
        PythiaSize("6.9b", 32, 32, 4096, vocab_rows=50432),
        PythiaSize("12b", 36, 40, 5120, vocab_rows=50688),
    )
}

# Training checkpoints are git revisions of every hub repo: log-spaced early steps, then every
# 1000 steps; `main` is the final checkpoint (= step143000).
STEPS: tuple[int, ...] = (0, *(2**i for i in range(10)), *range(1000, 143001, 1000))
REVISIONS: tuple[str, ...] = (*(f"step{step}" for step in STEPS), "main")
FINAL_STEP = 143000
"""The training step of `main`."""
LOG_STEPS: tuple[int, ...] = (
    0,
    *(2**i for i in range(10)),
    *(1000 * round(143 * i / 10) for i in range(1, 11)),
)
"""A sweep's `log` subset: step0, the log-spaced steps 1, 2, 4, ..., 512, and ten evenly spaced
thousands (14000, 29000, 43000, 57000, 72000, 86000, 100000, 114000, 129000, 143000)."""


def step_of(revision: str) -> int:
    """The training step of a revision: `stepN` -> N, `main` -> `FINAL_STEP`."""
    if revision == "main":
        return FINAL_STEP
    number = revision.removeprefix("step")
    if not revision.startswith("step") or not is_whole_number(number):
        raise InputError(f"revision {revision!r} is not main or step<N> (e.g. step1000)")
    return int(number)


def pythia_size(size: str) -> PythiaSize:
    """The catalog entry of `size` (e.g. "70m"); `InputError` for a size not in `SIZES`."""
    if size not in SIZES:
        raise InputError(f"unknown Pythia size {size!r}; choose one of {', '.join(SIZES)}")
    return SIZES[size]


def hub_id(size: str, deduped: bool = False) -> str:
    """`EleutherAI/pythia-<size>[-deduped]`; raises `InputError` for a size not in `SIZES` and
    for a deduped run of a size that has none (`PythiaSize.has_deduped`)."""
    entry = pythia_size(size)
    if deduped and not entry.has_deduped:
        with_twin = ", ".join(name for name, other in SIZES.items() if other.has_deduped)
        raise InputError(f"pythia-{size} has no deduped run; deduped runs exist for {with_twin}")
    return f"{HUB_ORG}/pythia-{entry.name}{'-deduped' if deduped else ''}"


def size_of(model_id: str) -> PythiaSize | None:
    """The catalog entry of a Pythia hub id (deduped or not), None for any other id."""
    prefix = f"{HUB_ORG}/pythia-"
    if not model_id.startswith(prefix):
        return None
    return SIZES.get(model_id.removeprefix(prefix).removesuffix("-deduped"))


def bytes_per_element(dtype: torch.dtype) -> int:
    return dtype.itemsize


LAYER_OVERHEAD_BYTES = 128 * 2**10
"""Host memory a layer costs besides its weights: its modules, parameter objects and loading
bookkeeping (measured 36 to 70 KiB per GPT-NeoX layer in transformers 5.23; doubled)."""


def memory_estimate(
    n_parameters: int, d_model: int, vocab_rows: int, dtype: torch.dtype, n_layers: int
) -> int:
    """Bytes needed to load a model and score its heads.

    Weights (`n_parameters` elements) plus the largest working set of the operation scores,
    one layer's `W_O(h) W_U` for all heads (`d_model x vocab_rows`), plus 10% for the rest
    (activations of the pattern pass, allocator slack), plus `LAYER_OVERHEAD_BYTES` per layer
    (which dominates for many thin layers). Logits chunks are budgeted separately (the
    `byte_budget` of `lib.scoring.operations.operation_scores`).
    """
    elements = n_parameters + d_model * vocab_rows
    return int(1.1 * elements * bytes_per_element(dtype)) + n_layers * LAYER_OVERHEAD_BYTES


STREAMED_BASE_BYTES = 606 * 2**20
"""The app's memory before any weight is read: the intercept of its measured footprint,
606 MiB + 4.13 MiB per million parameters (bench/results/footprint-cpu-2026-11-27T1801.md)."""
STREAMED_WORKING_BYTES = 256 * 2**20
"""Activations of a streamed run: at most one logits chunk or first-MLP chunk at a time
(`lib.scoring.operations.DEFAULT_BYTE_BUDGET`) and the small pattern batch; the in-context
check's prompts, their residual streams and head vectors keep within the same budget
(`lib.scoring.dynamic.dynamic_scores`)."""


def streamed_memory_estimate(d_model: int, vocab_rows: int, d_mlp: int) -> int:
    """Bytes needed to score a model's heads reading its weights layer by layer
    (`lib.checkpoints.weights`), whatever its depth and stored dtype (the compute is float32):

    `W_U` in float32 (`vocab_rows x d_model x 4`; `W_O(h)^T W_U^T` is formed per slice of heads
    within the working bytes, `lib.scoring.operations.HeadOutputMaps`), one layer's weights
    twice (as read and in float32: 4 + 2 bytes an element, the stored copy rounded up to 2
    bytes), `STREAMED_WORKING_BYTES` of activations and the `STREAMED_BASE_BYTES` of the process
    itself, plus 10% allocator slack on the part that grows with the model. Measured peaks sit
    below it (bench/results/footprint-cli-cpu-2026-12-06T0930.md: 1b 1,016 MiB against 1,637
    MiB estimated, 2.8b 1,353 MiB against 1,923 MiB)."""
    layer = 4 * d_model * (d_model + 1) + 2 * d_model * d_mlp + d_mlp + 5 * d_model
    grows = vocab_rows * d_model * 4 + layer * (4 + 2) + STREAMED_WORKING_BYTES
    return int(1.1 * grows) + STREAMED_BASE_BYTES
