#!/usr/bin/env bash
# Depth x sparsity (docs/RESULTS.md, "Deep tickets"): the deep-ticket recipe
# against dense training of the same architecture, depths 2..64, sparsities
# 0.04..0.95, with per-layer MAD and Dirichlet energy; one report per dataset
# (accuracy against depth, and against sparsity at each depth).
#
#   scripts/depth_sparsity.sh [cora|citeseer|pubmed|all]
#
# Cora and CiteSeer: width 128, 400 epochs, lr 0.005, depths 2,8,16,32,64,
# sparsities 0.04,0.5,0.8,0.95, seed 0. PubMed (seven times Cora's nodes): depths
# 2,8,32, sparsities 0.5,0.8, 200 epochs. CPU hours: run it in the background.
# RECIPE holds the architecture and mask flags of the recipe (shared by dense).
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/depth-sparsity}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-0}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
RECIPE=${RECIPE:---norm pair --residual initial --mask-rule erk --extra mask_scale=unit}
what=${1:-all}

study() {  # study DATASET DEPTHS SPARSITIES EPOCHS
  # shellcheck disable=SC2086
  "$GNNMASK" sweep --dataset "$1" $ROOT --model gcn --hidden 128 --lr 0.005 \
    --depths "$2" --sparsities "$3" --epochs "$4" --methods dense,ugt --seeds "$SEEDS" \
    --layer-metrics mad,dirichlet --jobs "$JOBS" --quiet --out "$OUT/$1" $RECIPE
}

for ds in cora citeseer; do
  if [ "$what" = all ] || [ "$what" = "$ds" ]; then
    study "$ds" 2,8,16,32,64 0.04,0.5,0.8,0.95 400
  fi
done
if [ "$what" = all ] || [ "$what" = pubmed ]; then study pubmed 2,8,32 0.5,0.8 200; fi
