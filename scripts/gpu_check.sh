#!/usr/bin/env bash
# The GPU checks of issue 10 (item 8), as one short script, from the repository root on a
# machine with CUDA and a CUDA build of torch:  bash scripts/gpu_check.sh [OUT_DIR]
# 1. the GPU-marked tests (tests/test_gpu.py): GPU scores equal the CPU float32 scores of the
#    planted and a Pythia-14m-shaped model for float32, bfloat16 and float16 storage; the
#    resident model returns its GPU memory; an out-of-memory error recovers;
# 2. the GPU benchmark (bench/README.md), weights stored in bfloat16: every score is computed
#    in float32 whatever the storage (docs/methods.md §6), so this is the float32-compute time.
# Logs and results go to OUT_DIR (default bench/results/).
set -euo pipefail
out="${1:-bench/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu-check-device.txt"
python -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA here'"
python -m pytest -m gpu tests/test_gpu.py -q -rs -p no:cacheprovider 2>&1 | tee "$out/gpu-check-tests.txt"
python -m bench.run --device cuda --dtypes bfloat16 --repeats 3 --reference-max-seconds 60 --out "$out"
