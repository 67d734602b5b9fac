#!/usr/bin/env bash
# Evaluation beyond accuracy (docs/RESULTS.md, "Tickets beyond accuracy"):
# dense training against the untrained ticket (ugt) at 2 and 32 layers on Cora
# and CiteSeer, 3 seeds ($SEEDS). Two sweeps per dataset and depth:
#   - calibration (ECE, 15 bins, reliability diagram) and robustness (test
#     accuracy with 10..50% of the nodes' features randomised, or of the edges
#     rewired), on the usual split;
#   - out-of-distribution detection: 40% of the classes left out of training,
#     score = negative maximum softmax, AUROC of held-out-class test nodes
#     against the others.
#
#   scripts/evaluation_study.sh [L2|L32|all] [cora|citeseer|all]
#
# L2:  width 256, 200 epochs, lr 0.01, ugt at sparsity 0.9.
# L32: width 128, 400 epochs, lr 0.005, ugt at sparsity $DEEP_SPARSITY (0.5)
#      with $DEEP_FLAGS (the deep recipe of "Deep tickets"; shared by dense).
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/eval}
JOBS=${JOBS:-2}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
depth=${1:-all}
data=${2:-all}
DEEP_SPARSITY=${DEEP_SPARSITY:-0.5}
DEEP_FLAGS=${DEEP_FLAGS:-}
SEEDS=${SEEDS:-0,1,2}

study() {  # study DATASET NAME ARGS...
  local ds=$1 name=$2; shift 2
  "$GNNMASK" sweep --dataset "$ds" $ROOT --methods dense,ugt --seeds "$SEEDS" \
    --layer-metrics none --jobs "$JOBS" --quiet --out "$OUT/$ds-$name-calib" "$@" \
    --evaluations calibration,robustness
  "$GNNMASK" sweep --dataset "$ds" $ROOT --methods dense,ugt --seeds "$SEEDS" \
    --layer-metrics none --jobs "$JOBS" --quiet --out "$OUT/$ds-$name-ood" "$@" \
    --evaluations ood --holdout-classes 0.4
}

for ds in cora citeseer; do
  [ "$data" = all ] || [ "$data" = "$ds" ] || continue
  if [ "$depth" = all ] || [ "$depth" = L2 ]; then
    study "$ds" L2 --depths 2 --hidden 256 --epochs 200 --lr 0.01 --sparsity 0.9
  fi
  if [ "$depth" = all ] || [ "$depth" = L32 ]; then
    # shellcheck disable=SC2086
    study "$ds" L32 --depths 32 --hidden 128 --epochs 400 --lr 0.005 \
      --sparsity "$DEEP_SPARSITY" $DEEP_FLAGS
  fi
done
