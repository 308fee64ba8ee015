#!/usr/bin/env bash
# Builds sparsec and the Fashion-MNIST example, then trains the sparse MLP.
# Extra arguments go to the trainer (e.g. --epochs 5 --lr 0.05).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/build.sh fashion_mnist_train
exec "${SPARSEC_BUILD_DIR:-build}/bin/fashion_mnist_train" "$@"
