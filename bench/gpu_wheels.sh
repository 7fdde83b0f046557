#!/usr/bin/env bash
# Wheels the GPU check needs that the device machine's image lacks or holds at other versions,
# fetched here (the device reaches no network) into .whl/ (git-ignored), for the device tool's
# `carry`: its image has torch, numpy, pandas, pyarrow, pytest and hypothesis, but transformers
# 5.17 and huggingface_hub 1.33, and no blake3 (../.library/device/KINDS.md). Our pins come
# from requirements.txt, so the device scores with the same transformers and tokenizers as CI;
# the others are this machine's versions of what those need at a minimum version.
#
#     bash bench/gpu_wheels.sh     # then: device run, carry [".whl"], command
#                                  #   "bash bench/gpu_check.sh" (it installs .whl/ first)
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i -E "^$1==" requirements.txt; }
rm -rf .whl && mkdir -p .whl
python -m pip download --quiet --dest .whl --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    "$(pin transformers)" "$(pin tokenizers)" "$(pin huggingface-hub)" "$(pin blake3)" \
    httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 \
    regex==2026.5.9 click==8.5.1 hf-xet==1.8.0 anyio==4.16.0 idna==3.20 h11==0.16.0
du -sh .whl && ls .whl
