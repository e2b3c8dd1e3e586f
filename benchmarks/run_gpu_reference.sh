#!/usr/bin/env bash
# One command on a fresh GPU machine, from the repository root:
#   bash benchmarks/run_gpu_reference.sh [key=value ...]
# installs maeflow over the machine's own torch (no dependency changes) and runs the GPU
# reference bench (ViT-B/L MAE at 224² with their Hugging Face twins, VideoMAE, Audio-MAE,
# Point-MAE; bf16, compile, batch 256 for images), recording the Markdown + JSON under
# benchmarks/results/gpu_reference_<date>.{md,json}. Extra arguments are bench overrides,
# e.g. steps=30 or "entries.mae_vit_base_patch16.batch=128".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --no-deps -e .
"$PYTHON" -m maeflow bench configs/bench/gpu_reference.yaml "$@" --record benchmarks/results
