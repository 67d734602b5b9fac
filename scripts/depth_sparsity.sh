#!/usr/bin/env bash
# The depth x sparsity study (docs/RESULTS.md, "Deep backbones as tickets"):
# each backbone at depths 2..64, dense training against untrained tickets
# (ugt) and RigL at weight sparsities 0.5 / 0.9 / 0.99, with per-layer MAD,
# Dirichlet energy, effective rank and mean norm of the final model.
#
#   scripts/depth_sparsity.sh [DATASET ...]      (default: cora citeseer texas pubmed)
#   BACKBONES="gcnii gcn" SEEDS=0,1,2 scripts/depth_sparsity.sh cora
#   OUT=docs/results/gin_mean BACKBONES=gin EXTRA="--aggr mean" scripts/depth_sparsity.sh cora
#
# EXTRA adds flags to every sweep (after the backbone's own recipe); give such
# a variant its own OUT, since a sweep folder holds one configuration.
#
# Every (dataset, backbone) pair is one resumable `gnnmask sweep` whose compact
# records (--no-history: config, versions, seed, final and per-layer metrics)
# live in docs/results/study/<dataset>/<backbone>/ and are committed as data:
# re-running the script skips every finished cell, so a later session resumes
# where this one stopped. `gnnmask report docs/results/study` renders them.
#
# Width 64, 400 epochs, lr 0.01, each method's own defaults otherwise (dense and
# RigL: dropout 0.5, weight decay 5e-4; ugt: neither). The architecture flags of
# each backbone (RECIPE below) are shared by all three methods, so a ticket is
# compared with the same network trained. Cost at one thread: a Cora sweep of
# one backbone and seed took 14 (gprgnn) to 40 (gcnii) CPU minutes before
# gcnii, appnp, dagnn and gprgnn propagated through the precomputed
# transpose (25% off a GCNII step, 55-65% off the other three); CiteSeer
# costs about 2.1x Cora, Texas about 0.2x (183 nodes), PubMed about 6x (the
# medians over the cell groups each has finished beside Cora's; PubMed's deep
# GCN cells about 10x), Actor about 2.5x
# (an optional heterophilous graph beside Texas: name it).
# `python scripts/study_cost.py` prices what is left from the records.
# Run it in the background at one thread (OMP_NUM_THREADS=1, the default
# here).
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-docs/results/study}
SEEDS=${SEEDS:-0}
DEPTHS=${DEPTHS:-2,8,16,32,64}
SPARSITIES=${SPARSITIES:-0.5,0.9,0.99}
BACKBONES=${BACKBONES:-gcnii gcn appnp resgcn jknet dagnn gprgnn}
EXTRA=${EXTRA:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
datasets=${*:-cora citeseer texas pubmed}

recipe() {  # the architecture flags of a backbone, shared by dense, ugt and rigl
  case "$1" in
    gcn) echo "--norm pair --residual initial" ;;  # the deep recipe (issue 15)
    gcnii) echo "--norm layer" ;;  # per-node normalisation: the ticket fix (RESULTS)
    resgcn) echo "--norm layer" ;;  # DeeperGCN's res+ blocks are normalised
    jknet) echo "--norm layer" ;;  # the same fix: its ticket reaches 0.780 at 32 layers, 0.600 without
    *) echo "" ;;
  esac
}

for dataset in $datasets; do
  for backbone in $BACKBONES; do
    # shellcheck disable=SC2086,SC2046
    "$GNNMASK" sweep --dataset "$dataset" $ROOT --model "$backbone" --hidden 64 \
      --epochs 400 --lr 0.01 --depths "$DEPTHS" --methods dense,ugt,rigl \
      --sparsities "$SPARSITIES" --seeds "$SEEDS" --no-history \
      --layer-metrics mad,dirichlet,effective_rank,norm --no-report --quiet \
      --out "$OUT/$dataset/$backbone" $(recipe "$backbone") $EXTRA
  done
done
