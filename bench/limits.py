"""The machine's limit for operation scores: its measured matmul rate and memory bandwidth, and
the floor time they imply for a model (bench/README.md, "The floor").

The engine's unavoidable work is forming every logit `proj[s, v]` of every head once (an
inner product of length d_head) and looking at it once. For a model with N logits

    N     = layers x heads x S x V     (S distinct source tokens of all relations, V vocab rows)
    floor = 2 d_head N / R(d_head, V)  +  8 N / B

with R the best float32 FLOP/s this machine reaches on the logits matmul's own shape
(`(rows x d_head) @ (d_head x V)` into a reused output, over the output sizes
`MATMUL_OUT_BYTES`), and B the bytes per second a large float32 copy moves (read + written):
the second term writes every 4-byte logit
to memory once and reads it back once. Everything else the engine does (`W_O W_U` once per
layer, the first MLP, gathers, the comparisons) is left out, so the floor is a yardstick, not a
proof: an engine that keeps its chunks in cache instead of memory can beat the second term.
Scores are computed in float32 whatever the stored dtype, so the floor is float32's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.measure import time_call

FLOAT32_BYTES = 4
# Outputs of the timed logits matmuls, the best rate counts: on a CPU around a last-level cache,
# like the engine's chunks (`lib.scoring.operations.CPU_CHUNK_BYTES`); on a GPU large enough to fill
# it.
MATMUL_OUT_BYTES = {"cpu": (2 * 2**20, 8 * 2**20, 32 * 2**20), "cuda": (128 * 2**20, 2**29)}
# A copy far larger than any cache, so B is main memory's (or the card's HBM) bandwidth.
COPY_BYTES = {"cpu": 512 * 2**20, "cuda": 2 * 2**30}
INNER_CALLS = 10  # calls per timed run: one call on a GPU is shorter than a launch's jitter


@dataclass(frozen=True)
class Floor:
    """The floor (seconds) of forming `n_logits` float32 logits with inner dimension `d_head`:
    `compute_s` at the matmul rate plus `memory_s` to write and read each once."""

    n_logits: int
    d_head: int
    compute_s: float
    memory_s: float

    @property
    def seconds(self) -> float:
        return self.compute_s + self.memory_s


def matmul_rate(d_head: int, vocab: int, device: torch.device, repeats: int) -> float:
    """The best, over the output sizes `MATMUL_OUT_BYTES[device.type]`, of the median float32
    FLOP/s of `(rows x d_head) @ (d_head x vocab)` into a reused output (TF32 as the engine
    leaves it: off)."""
    generator = torch.Generator(device=device).manual_seed(0)
    b = torch.randn(d_head, vocab, device=device, generator=generator)
    best = 0.0
    for out_bytes in MATMUL_OUT_BYTES[device.type]:
        rows = max(1, out_bytes // (vocab * FLOAT32_BYTES))
        a = torch.randn(rows, d_head, device=device, generator=generator)
        out = torch.empty(rows, vocab, device=device)

        def calls(a: torch.Tensor = a, out: torch.Tensor = out) -> None:
            for _ in range(INNER_CALLS):
                torch.matmul(a, b, out=out)

        timing, _ = time_call(calls, device, repeats)
        best = max(best, INNER_CALLS * 2 * rows * d_head * vocab / timing.median)
    return best


def copy_bandwidth(device: torch.device, repeats: int) -> float:
    """Median bytes per second (read + written) of copying `COPY_BYTES[device.type]` of float32."""
    n_bytes = COPY_BYTES[device.type]
    source = torch.ones(n_bytes // FLOAT32_BYTES, device=device)
    target = torch.empty_like(source)
    timing, _ = time_call(lambda: target.copy_(source), device, repeats)
    return 2 * n_bytes / timing.median


def read_bandwidth(device: torch.device, repeats: int) -> float:
    """Median bytes per second read by summing `COPY_BYTES[device.type]` of float32."""
    n_bytes = COPY_BYTES[device.type]
    source = torch.ones(n_bytes // FLOAT32_BYTES, device=device)
    timing, _ = time_call(source.sum, device, repeats)
    return n_bytes / timing.median


def measure_rates(
    device: torch.device, shapes: set[tuple[int, int]], repeats: int = 5
) -> dict[str, float]:
    """The machine's rates, measured once per run: `matmul_flops_per_s <d_head>x<vocab>` for
    each (d_head, vocab) in `shapes`, `copy_bytes_per_s` and `read_bytes_per_s`."""
    with torch.inference_mode():
        rates = {
            f"matmul_flops_per_s {d_head}x{vocab}": matmul_rate(d_head, vocab, device, repeats)
            for d_head, vocab in sorted(shapes)
        }
        rates["copy_bytes_per_s"] = copy_bandwidth(device, repeats)
        rates["read_bytes_per_s"] = read_bandwidth(device, repeats)
    return rates


def logits_floor(
    n_layers: int, n_heads: int, d_head: int, n_sources: int, vocab: int, rates: dict[str, float]
) -> Floor:
    """The floor of one model's operation scores (module docstring) from `measure_rates`."""
    n_logits = n_layers * n_heads * n_sources * vocab
    matmul = rates[f"matmul_flops_per_s {d_head}x{vocab}"]
    return Floor(
        n_logits=n_logits,
        d_head=d_head,
        compute_s=2 * d_head * n_logits / matmul,
        memory_s=2 * FLOAT32_BYTES * n_logits / rates["copy_bytes_per_s"],
    )
