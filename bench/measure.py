"""How the benchmark measures: median wall time, peak extra memory, FLOP/s, the machine.

- Time: one warm-up call, then the median of `repeats` calls (CUDA synchronised after each).
- Peak extra memory, CPU: the call runs once in a child process forked from a fresh
  forkserver (no compute has run there, so no thread pool or allocator cache is inherited);
  the child loads the model, then a thread samples its RSS every `SAMPLE_SECONDS` while the call
  runs. Reported: peak RSS minus RSS just before the call. A buffer alive for less than one
  sampling interval can be missed, so this is a lower bound, close for the long-lived chunks.
- Peak extra memory, CUDA: `max_memory_allocated` during the call minus `memory_allocated`
  before it (the resident model), in the same process.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import torch
import transformers

SAMPLE_SECONDS = 0.001

# Dense float32 peak FLOP/s per card from NVIDIA's datasheets (CUDA cores: scores are computed in
# float32 whatever the stored dtype, with TF32 tensor cores off), by substring of the device
# name, first match wins (the PCIe and NVL cards clock lower than SXM).
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 51e12),
    ("H100 NVL", 60e12),
    ("H100", 67e12),
    ("H200", 67e12),
)


@dataclass(frozen=True)
class Timing:
    """Median and all `runs` (seconds) of the calls after the warm-up."""

    median: float
    runs: tuple[float, ...]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    call: Callable[[], Any], device: torch.device, repeats: int, warm_up: bool = True
) -> tuple[Timing, Any]:
    """`Timing` of `call` (after one untimed warm-up call unless the caller already warmed
    it up), and the result of its last call."""
    result = call() if warm_up else None
    runs = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = call()
        synchronize(device)
        runs.append(time.perf_counter() - start)
    return Timing(statistics.median(runs), tuple(runs)), result


def sampled_peak_rss(call: Callable[[], Any]) -> int:
    """Peak RSS increase (bytes) of this process while `call` runs, sampled by a thread."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        call()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - baseline


def cuda_peak_extra(call: Callable[[], Any], device: torch.device) -> int:
    """Peak bytes allocated by `call` on `device` above what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    resident = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - resident


def in_fresh_process(preload: str, function: Callable[..., int], *args: Any) -> int:
    """`function(*args)` in a child of a forkserver that has imported module `preload` (and so
    torch) but run nothing else (module docstring)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def run_python(args: list[str], cache_dir: str) -> subprocess.CompletedProcess[str]:
    """`python *args` in a fresh process, to completion (it must succeed), output captured; with
    an empty result cache `cache_dir`, the hub offline and public mode off, so every run scores
    from scratch and may read local folders."""
    return subprocess.run(
        [sys.executable, *args],
        env=fresh_env(cache_dir),
        check=True,
        capture_output=True,
        text=True,
    )


def fresh_env(cache_dir: str) -> dict[str, str]:
    """This process's environment with the result cache at `cache_dir` (empty: every run scores
    from scratch), the hub offline and public mode off (local folders may be read)."""
    env = {**os.environ, "HEAD_ATLAS_CACHE_DIR": cache_dir, "HF_HUB_OFFLINE": "1"}
    env.pop("HEAD_ATLAS_PUBLIC", None)
    return env


def peak_flops(device: torch.device) -> float | None:
    """The card's dense float32 peak FLOP/s (`PEAK_FLOPS`), None when not known."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for pattern, peak in PEAK_FLOPS if pattern in name), None)


def operation_flops(
    n_layers: int, n_heads: int, d_model: int, vocab: int, n_sources: int, d_mlp: int
) -> int:
    """Matmul FLOPs of `lib.scoring.operations.operation_scores` (2 per multiply-add): per layer,
    `W_O(h)^T W_U^T` (H dh d V), the sources through `W_V` (H S d dh) and the logits (H S dh V);
    once, the first MLP on the sources (2 S d d_mlp). Top-k and gathers are not counted."""
    d_head = d_model // n_heads
    per_layer = n_heads * d_head * d_model * vocab
    per_layer += n_heads * n_sources * d_model * d_head
    per_layer += n_heads * n_sources * d_head * vocab
    return 2 * (n_layers * per_layer + 2 * n_sources * d_model * d_mlp)


def git_commit() -> str:
    try:
        run = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return run.stdout.strip()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on."""
    description = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "commit": git_commit(),
        "device": str(device),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        description["gpu"] = properties.name
        description["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
        description["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return description
