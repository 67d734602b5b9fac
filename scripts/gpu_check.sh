#!/usr/bin/env bash
# The GPU checks, in one call on a bare GPU machine (about 5 minutes):
#   1. the CUDA half of the test suite (pytest -m cuda);
#   2. scripts/bench_mask_overhead.py on CUDA: a 32-layer, 448-wide GCN on Cora,
#      ugt against dense seconds per step (target ugt/dense <= 1.05);
#   3. scripts/bench_scale.py on CUDA: csbm-arxiv (ogbn-arxiv's size), 32 layers,
#      width 256, dense and ugt, full-batch epoch time and peak GPU memory.
# Writes JSON and logs into the folder given as its argument.
#
#   scripts/gpu_check.sh OUT_DIR
#
# Set-up: none beyond the machine's python3 with torch and torch_geometric
# (gnnmask runs from this checkout through PYTHONPATH). Cora's raw files are
# read from $GNNMASK_DATA, else from .gpu-data/ (a git-ignored copy carried to
# the machine: mkdir -p .gpu-data/planetoid && cp -r ../shared/datasets/planetoid/Cora
# .gpu-data/planetoid/).
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export GNNMASK_DATA=${GNNMASK_DATA:-$PWD/.gpu-data}
export GNNMASK_CACHE=${GNNMASK_CACHE:-/tmp/gnnmask-cache}
status=0

$PY - > "$OUT/device.json" <<'PYEOF'
import json, torch, torch_geometric
print(json.dumps({"device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                  "torch": torch.__version__, "torch_geometric": torch_geometric.__version__}))
PYEOF
cat "$OUT/device.json"

timeout 240 $PY -m pytest -q -m cuda -p no:cacheprovider tests \
  --junitxml="$OUT/cuda_tests.xml" > "$OUT/cuda_tests.log" 2>&1 || status=1
tail -n 3 "$OUT/cuda_tests.log"

timeout 150 $PY scripts/bench_mask_overhead.py --device cuda --steps 40 \
  > "$OUT/bench_mask_overhead.json" 2> "$OUT/bench_mask_overhead.log" || status=1
cat "$OUT/bench_mask_overhead.json"

timeout 240 $PY scripts/bench_scale.py --device cuda --layers 32 --methods dense,ugt \
  --modes full --timeout 110 > "$OUT/bench_scale.json" 2> "$OUT/bench_scale.log" || status=1
cat "$OUT/bench_scale.json"
exit $status
