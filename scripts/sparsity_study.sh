#!/usr/bin/env bash
# Accuracy against sparsity on Cora, CiteSeer and PubMed (docs/RESULTS.md,
# "Sparse training against tickets"): 2-layer GCN, width 256, 200 epochs per
# training run (per round for imp and ugs), lr 0.01, 3 seeds; every method
# at sparsities 0.5 ... 0.99 plus the two sparsities the UGS paper reports
# (1 - 0.8^9 = 0.866 and 1 - 0.8^17 = 0.978); dense as the reference.
# CPU hours: run it in the background.
#
#   scripts/sparsity_study.sh [cora|citeseer|pubmed|deep|all]
#
# Needs GNNMASK_DATA (or DATA_ROOT) pointing at the shared datasets. Each
# sweep resumes where it stopped; reports land in runs/sparsity/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/sparsity}
JOBS=${JOBS:-2}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
what=${1:-all}
SPARSITIES=0.5,0.8,0.866,0.9,0.95,0.978,0.99
METHODS=dense,random,snip,grasp,synflow,imp,ugs,ugt

study() {  # study DATASET DEPTH METHODS SEEDS
  "$GNNMASK" sweep --dataset "$1" $ROOT --depths "$2" --methods "$3" --seeds "$4" \
    --sparsities "$SPARSITIES" --hidden 256 --epochs 200 --lr 0.01 \
    --layer-metrics none --jobs "$JOBS" --out "$OUT/$1-L$2" --quiet
}

for ds in cora citeseer pubmed; do
  if [ "$what" = all ] || [ "$what" = "$ds" ]; then study "$ds" 2 "$METHODS" 0,1,2; fi
done
# the sparsity axis meets the depth axis: 16 layers on Cora, 2 seeds
if [ "$what" = all ] || [ "$what" = deep ]; then study cora 16 dense,random,snip,imp,ugt 0,1; fi
