#!/usr/bin/env bash
# Builds sparsec and the masked CNN example, then trains it on
# Fashion-MNIST, printing test accuracy and each convolution's sparsity per
# epoch. Extra arguments go to the trainer (e.g. --epochs 5 --limit 10000).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/build.sh sparse_cnn_train
exec "${SPARSEC_BUILD_DIR:-build}/bin/sparse_cnn_train" "$@"
