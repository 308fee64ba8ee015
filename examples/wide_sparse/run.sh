#!/usr/bin/env bash
# Builds sparsec and the wide_sparse variants, trains each on Fashion-MNIST
# for ${EPOCHS:-3} epochs (batch 64) and prints a table of test accuracy and
# time per epoch. Extra arguments go to every trainer (e.g. --limit 10000).
set -euo pipefail
cd "$(dirname "$0")/../.."
variants=(random small_world set rigl kwinners)
bash .ci/build.sh "${variants[@]/#/wide_sparse_}"
bin=${SPARSEC_BUILD_DIR:-build}/bin
epochs=${EPOCHS:-3}
rows=()
for v in "${variants[@]}"; do
  echo "== $v" >&2
  log=$("$bin/wide_sparse_$v" --epochs "$epochs" "$@" | tee /dev/stderr)
  acc=$(grep '^epoch' <<<"$log" | tail -1 | sed -E 's/.*test accuracy ([0-9.]+)%.*/\1/')
  per=$(grep '^trained' <<<"$log" | sed -E 's/.*\(([0-9.]+) s per epoch\).*/\1/')
  rows+=("| $v | $acc % | $per s |")
done
echo
echo "| variant | test accuracy after $epochs epochs | time per epoch |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
