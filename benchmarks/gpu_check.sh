#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, the CUDA tests, a short training-speed run on the device against the
# CPU, and the tutorial's two programs on the device, in a few minutes, with one summary at the end.
# Without CUDA it says so and exits 0. Usage, from the repository root: bash benchmarks/gpu_check.sh
# (PYTHON=... picks the interpreter; GPU_DATASET=... the dataset, mnist-5k by default: see docs/data.md).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DATASET=${GPU_DATASET:-mnist-5k}
OUT=${GPU_OUT:-/tmp/aekit-gpu-check}
if ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device here; skipped"
  exit 0
fi
rm -rf "$OUT"; mkdir -p "$OUT"
$PY -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"gpu_check: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")'

timeout 240 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py > "$OUT/tests.log" 2>&1
tests=$?
timeout 180 $PY -m benchmarks.gpu_speed > "$OUT/speed.log" 2>&1
speed=$?
timeout 240 $PY -m aekit reproduce all --dataset "$DATASET" --device cuda --epochs-scale 0.2 --no-progress \
  --out "$OUT/runs" > "$OUT/programs.log" 2>&1
programs=$?

echo "== gpu_check summary =="
echo "cuda tests: exit $tests: $(tail -n 1 "$OUT/tests.log")"
echo "speed:      exit $speed: $(tail -n 1 "$OUT/speed.log")"
echo "programs:   exit $programs: $(grep -E '^(stacked|pretrain):' "$OUT/programs.log" | tr '\n' ' ')"
[ $tests -eq 0 ] && [ $speed -eq 0 ] && [ $programs -eq 0 ]
