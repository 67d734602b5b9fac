#!/usr/bin/env bash
# Deep tickets (docs/RESULTS.md, "Deep tickets"): why 32-layer mask-only GCNs
# collapse at real sparsity, and which levers help. Cora, width 128, 400
# epochs, lr 0.005, seed 0 unless a step says otherwise.
#
#   scripts/deep_tickets.sh [trace|levers|combos|recipe|best|backbones]
#
# trace:  ugt at sparsity 0.04, 0.5 and 0.9 with per-layer traces and gradient
#         norms every 25 epochs (then: python scripts/plot_deep.py)
# levers: one flag at a time, at sparsity 0.5 and 0.9
# combos: the levers that helped, together, at sparsity 0.5 and 0.9
# recipe: the two best combinations (PairNorm + initial residual; APPNP's
#         parameter-free propagation) against overfitting and at higher sparsity
# best:   the recipe that holds up (PairNorm + initial residual + dropout 0.5,
#         sparsity 0.5), 3 seeds at 32 layers on Cora and CiteSeer; APPNP (0.9) beside
#         it; dense training with the same recipe as the reference (64 layers
#         and PubMed: scripts/depth_sparsity.sh, seed 0)
# backbones: GAT and GIN tickets at 2 layers (sparsity 0.95, width 256, 200
#         epochs, lr 0.01) and 16 layers (the recipe), seed 0
set -euo pipefail
cd "$(dirname "$0")/.."
GNNMASK=${GNNMASK:-.venv/bin/gnnmask}
OUT=${OUT:-runs/deep}
ROOT=${DATA_ROOT:+--data-root $DATA_ROOT}
what=${1:-all}
BASE="--dataset cora --model gcn --hidden 128 --epochs 400 --lr 0.005 --method ugt"

run() {  # run NAME ARGS...
  local name=$1; shift
  "$GNNMASK" train $ROOT $BASE --quiet --json --out "$OUT/$name" "$@" \
    | tee -a "$OUT/results.jsonl"
}
mkdir -p "$OUT"

if [ "$what" = all ] || [ "$what" = trace ]; then
  for s in 0.04 0.5 0.9; do
    run "trace-s$s" --layers 32 --sparsity "$s" --trace-every 25 --grad-flow-every 25
  done
fi
if [ "$what" = all ] || [ "$what" = combos ]; then
  for s in 0.5 0.9; do
    run "combo-erk-unit-s$s" --layers 32 --sparsity "$s" --mask-rule erk --extra mask_scale=unit
    run "combo-pair-initial-s$s" --layers 32 --sparsity "$s" --norm pair --residual initial
    run "combo-pair-initial-erk-unit-s$s" --layers 32 --sparsity "$s" --norm pair \
      --residual initial --mask-rule erk --extra mask_scale=unit
    run "combo-gcnii-erk-unit-s$s" --layers 32 --sparsity "$s" --model gcnii --mask-rule erk \
      --extra mask_scale=unit
  done
fi
if [ "$what" = all ] || [ "$what" = recipe ]; then
  PI="--layers 32 --norm pair --residual initial"
  run "recipe-pi-drop0.5-s0.5" $PI --sparsity 0.5 --dropout 0.5
  run "recipe-pi-smooth-s0.5" $PI --sparsity 0.5 --label-smoothing 0.1
  run "recipe-pi-drop0.5-s0.8" $PI --sparsity 0.8 --dropout 0.5
  run "recipe-appnp-drop0.5-s0.5" --layers 32 --model appnp --sparsity 0.5 --dropout 0.5
  for s in 0.8 0.9; do run "recipe-appnp-s$s" --layers 32 --model appnp --sparsity "$s"; done
  run "recipe-appnp-L64-s0.5" --layers 64 --model appnp --sparsity 0.5
  run "recipe-pi-L64-s0.5" --layers 64 --norm pair --residual initial --sparsity 0.5
fi
if [ "$what" = all ] || [ "$what" = best ]; then
  R="--norm pair --residual initial --dropout 0.5 --sparsity 0.5"
  run "best-cora-L32" --layers 32 $R --seeds 0,1,2
  run "best-appnp-cora-L32" --layers 32 --model appnp --sparsity 0.9 --seeds 0,1,2
  run "best-dense-cora-L32" --layers 32 --norm pair --residual initial --method dense
  run "best-citeseer-L32" --layers 32 $R --seeds 0,1,2 --dataset citeseer
fi
if [ "$what" = all ] || [ "$what" = backbones ]; then
  for m in gat gin; do
    run "backbone-$m-L2" --model $m --layers 2 --hidden 256 --epochs 200 --lr 0.01 --sparsity 0.95
    run "backbone-$m-L16" --model $m --layers 16 --norm pair --residual initial --dropout 0.5 \
      --sparsity 0.5
  done
fi
if [ "$what" = all ] || [ "$what" = levers ]; then
  for s in 0.5 0.9; do
    run "lever-baseline-s$s" --layers 32 --sparsity "$s"
    run "lever-scale-layer-s$s" --layers 32 --sparsity "$s" --extra mask_scale=layer
    run "lever-scale-unit-s$s" --layers 32 --sparsity "$s" --extra mask_scale=unit
    run "lever-rule-erk-s$s" --layers 32 --sparsity "$s" --mask-rule erk
    run "lever-orthogonal-s$s" --layers 32 --sparsity "$s" --weight-init orthogonal
    run "lever-signed-s$s" --layers 32 --sparsity "$s" --weight-init signed-constant
    run "lever-pairnorm-s$s" --layers 32 --sparsity "$s" --norm pair
    run "lever-initial-s$s" --layers 32 --sparsity "$s" --residual initial
    run "lever-gcnii-s$s" --layers 32 --sparsity "$s" --model gcnii
    run "lever-appnp-s$s" --layers 32 --sparsity "$s" --model appnp
    run "lever-cubic-s$s" --layers 32 --sparsity "$s" --schedule cubic
    run "lever-ramp25-s$s" --layers 32 --sparsity "$s" --schedule-end 0.25
    run "lever-smooth-s$s" --layers 32 --sparsity "$s" --label-smoothing 0.1
    run "lever-lr001-s$s" --layers 32 --sparsity "$s" --lr 0.001
  done
fi
