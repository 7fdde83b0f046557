#!/usr/bin/env bash
# The prepared GPU check (issue 10 item 8, issue 14), from the repository root on a machine with
# CUDA and a CUDA build of torch 2.13.0 (README, "Deploy": the one extra step):
#
#     bash bench/gpu_check.sh                  # the check, ~8 minutes on one H100
#     bash bench/gpu_check.sh --print-commands # what it would run, nothing else
#
# On the device tool: `bash bench/gpu_wheels.sh` here first, then run `bash bench/gpu_check.sh`
# there with `carry: [".whl"]`.
#
# 1. `python3 -m pytest -m gpu tests/test_gpu.py`: the GPU-marked tests (GPU scores equal the
#    CPU float32 scores of the planted and a Pythia-14m-shaped model for float32, bfloat16 and
#    float16 storage; the resident model returns its GPU memory; out-of-memory recovers).
# 2. `python3 -m bench.run --device cuda`: the 1.4b, 6.9b and 12b shapes, weights stored in
#    bfloat16 as the GPU default loads them (scores computed in float32; that float32 storage
#    gives the same scores is step 1's test), operation and pattern scores, each against the
#    measured floor and the card's float32 peak. The per-head loops of these shapes are
#    estimated from one head (one prompt), not run: `--reference-max-seconds` is below their
#    estimates (6.9b: ~1024 heads x 0.3 s).
#
# Sizing (one H100 80 GB, 15 minutes of device time a session, the machine's start included):
# tests ~1-2 min; per model ~1 min (drawing the weights on the card, 1 warm-up + 3 timed engine
# calls, two memory calls, the loop probes), 3 models: ~3 min. Each step has a timeout, so the
# whole check ends within 7 minutes even when one hangs.
#
# Writes bench/results/cuda-<date>.json and .md, bench/results/latest-cuda.md (by bench.run) and
# bench/results/gpu-check-<date>.log (the card, the test summary, the bench's log and table).
# Exit status: 0 when both steps pass, else the first failing step's status.
set -uo pipefail
cd "$(dirname "$0")/.."

# The device image's interpreter is python3 (the one holding its CUDA torch).
PY=${PYTHON:-python3}
TESTS=("$PY" -m pytest -m gpu tests/test_gpu.py -q -rs -p no:cacheprovider)
BENCH=("$PY" -m bench.run --device cuda --sizes 1.4b,6.9b,12b --dtypes bfloat16
    --repeats 3 --reference-max-seconds 20)

if [[ "${1:-}" == "--print-commands" ]]; then
    echo "${TESTS[*]}"
    echo "${BENCH[*]}"
    exit 0
fi

# Wheels carried from `bash bench/gpu_wheels.sh` (the device reaches no network): our pins of
# transformers, tokenizers, huggingface_hub and blake3 over the image's.
if [[ -d .whl ]]; then
    "$PY" -m pip install --quiet --no-index --no-deps .whl/*.whl || exit 2
fi
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')" \
    || exit 2
mkdir -p bench/results
log="bench/results/gpu-check-$(date -u +%Y-%m-%dT%H%M).log"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
} 2>&1 | tee "$log"

echo "== ${TESTS[*]}" | tee -a "$log"
timeout 150 "${TESTS[@]}" 2>&1 | tee -a "$log"
tests_status=${PIPESTATUS[0]}

echo "== ${BENCH[*]}" | tee -a "$log"
timeout 240 "${BENCH[@]}" 2>&1 | tee -a "$log"
bench_status=${PIPESTATUS[0]}

echo "== tests: exit ${tests_status}; bench: exit ${bench_status}; log: ${log}" | tee -a "$log"
if ((tests_status != 0)); then exit "$tests_status"; fi
exit "$bench_status"
