#!/usr/bin/env bash
# Dynamic sparse training against static sparsity and tickets (docs/RESULTS.md,
# "Dynamic sparse training"): 2-layer GCN, width 256, 200 epochs, lr 0.01,
# 3 seeds, sparsity 0.9 and 0.98 on Cora and CiteSeer (ERK and uniform
# densities, the ToST components, the ITOP schedule); then sparse-aware
# initialisations at depth 8, 16 and 32 on Cora (width 64, 2 seeds, 0.9).
#
#   scripts/dst_study.sh [cora|citeseer|depth|all]
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/dst}
JOBS=${JOBS:-2}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
what=${1:-all}
# ghost skips need hidden layers of equal width: none at 2 layers
TOST="--ghost-soft 100 --label-smoothing 0.1 --rescale-init 10"

sweep() {  # sweep NAME DATASET ARGS...
  local name=$1 ds=$2; shift 2
  "$GNNMASK" sweep --dataset "$ds" $ROOT --hidden 256 --epochs 200 --lr 0.01 \
    --layer-metrics none --jobs "$JOBS" --quiet --out "$OUT/$ds-$name" "$@"
}

for ds in cora citeseer; do
  if [ "$what" = all ] || [ "$what" = "$ds" ]; then
    sweep erk "$ds" --depths 2 --seeds 0,1,2 --sparsities 0.9,0.98 \
      --methods dense,random,set-rigl,rigl,ugt --density-dist erk
    sweep uniform "$ds" --depths 2 --seeds 0,1,2 --sparsities 0.9,0.98 \
      --methods set-rigl,rigl --density-dist uniform
    sweep tost "$ds" --depths 2 --seeds 0,1,2 --sparsities 0.9,0.98 \
      --methods random,set-rigl,rigl --density-dist erk $TOST
    sweep tost-no-rescale "$ds" --depths 2 --seeds 0,1,2 --sparsities 0.9,0.98 \
      --methods random,set-rigl,rigl --density-dist erk --ghost-soft 100 --label-smoothing 0.1
    sweep itop "$ds" --depths 2 --seeds 0,1,2 --sparsities 0.9,0.98 \
      --methods set-rigl,rigl --density-dist erk --itop true
  fi
done
if [ "$what" = all ] || [ "$what" = depth ]; then
  deep() {  # deep NAME ARGS...
    local name=$1; shift
    "$GNNMASK" sweep --dataset cora $ROOT --hidden 64 --epochs 200 --lr 0.005 \
      --depths 8,16,32 --seeds 0,1 --sparsity 0.9 --grad-flow-every 20 --jobs "$JOBS" \
      --quiet --out "$OUT/cora-depth-$name" "$@"
  }
  deep standard --methods dense,random,rigl --weight-init default
  deep gradient-flow --methods random,rigl --weight-init gradient-flow
  deep eoi --methods random,rigl --weight-init eoi
  deep ticket-kaiming --methods ugt --weight-init kaiming-uniform
  deep ticket-orthogonal --methods ugt --weight-init orthogonal
fi
