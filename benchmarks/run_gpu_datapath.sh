#!/usr/bin/env bash
# One command on a fresh GPU machine, from the repository root:
#   bash benchmarks/run_gpu_datapath.sh [--batch 256 --workers 16 ...]
# installs maeflow over the machine's own torch (no dependency changes), generates JPEG files
# on the machine, and measures the image data path (GPU decode + RandomResizedCrop + flip +
# normalize + ViT-B MAE train step vs the synthetic-data rate, and the CPU-worker pipeline)
# plus the attention kernels at the encoder/decoder shapes. Writes
# benchmarks/results/gpu_datapath_<date>.{md,json}. Arguments go to benchmarks/gpu_datapath.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install -q --no-deps -e .
"$PYTHON" benchmarks/gpu_datapath.py "$@"
