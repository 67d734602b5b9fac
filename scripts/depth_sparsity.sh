#!/usr/bin/env bash
# Depth x sparsity (docs/RESULTS.md, "Deep tickets"): the deep-ticket recipe
# against dense training of the same architecture, depths 2..64, sparsities
# 0.04..0.95, with per-layer MAD and Dirichlet energy; one report per dataset
# (accuracy against depth, and against sparsity at each depth).
#
#   scripts/depth_sparsity.sh [cora|citeseer|pubmed|all]
#
# Width 128, lr 0.005, seed 0 ($SEEDS). Cora: depths 2,8,32,64, sparsities
# 0.5,0.9, 400 epochs. CiteSeer: depths 2,32, sparsity 0.5, 400 epochs. PubMed
# (seven times Cora's nodes): depths 2,32, sparsity 0.5, 200 epochs. About
# two CPU hours on one core: run it in the background. RECIPE holds the
# architecture flags of the recipe (shared by dense, whose own defaults are
# dropout 0.5 and weight decay 5e-4).
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/depth-sparsity}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-0}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
RECIPE=${RECIPE:---norm pair --residual initial --dropout 0.5}
what=${1:-all}

study() {  # study DATASET DEPTHS SPARSITIES EPOCHS
  # shellcheck disable=SC2086
  "$GNNMASK" sweep --dataset "$1" $ROOT --model gcn --hidden 128 --lr 0.005 \
    --depths "$2" --sparsities "$3" --epochs "$4" --methods dense,ugt --seeds "$SEEDS" \
    --layer-metrics mad,dirichlet --jobs "$JOBS" --quiet --out "$OUT/$1" $RECIPE
}

if [ "$what" = all ] || [ "$what" = cora ]; then study cora 2,8,32,64 0.5,0.9 400; fi
if [ "$what" = all ] || [ "$what" = citeseer ]; then study citeseer 2,32 0.5 400; fi
if [ "$what" = all ] || [ "$what" = pubmed ]; then study pubmed 2,32 0.5 200; fi
