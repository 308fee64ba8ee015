#!/usr/bin/env bash
# Packs the CUDA test suite for a GPU machine that has a driver but not the
# toolchain (no LLVM/MLIR 22 to build sparsec): builds, in
# ${SPARSEC_GPU_BUILD_DIR:-build-gpu}, every program of the suite with the
# models compiled for a generic x86-64 (--generic-cpu), and copies into
# .gpu/ what .ci/gpu-suite.sh runs there: the programs (bin/), the model
# libraries and libbenchmark (lib/), Fashion-MNIST (data/). .gpu/ is
# ignored by git; name it in the device tool's `carry` (docs/cuda.md,
# "The GPU suite"). Needs what .ci/setup.sh installs, and nvcc for the
# optimizer kernels (/usr/local/cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SPARSEC_GPU_BUILD_DIR:-build-gpu}
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DSPARSEC_MODEL_OPTIONS=--generic-cpu
fi
programs="sparsec-cuda-kernels-test sparsec-cuda-model-test sparsec-cuda-embed-test
  sparsec-cuda-optim-test sparsec-cuda-sort-test sparsec-cuda-runtime-tests fashion_mnist_train recsys_train
  wide_sparse_kwinners wide_sparse_rigl sparse_cnn_train sparsec-bench"
# shellcheck disable=SC2086
ninja -C "$build" $programs
grep -q "sparsec_cuda_adam" "$build/runtime/optim.ptx" ||
  { echo "gpu-pack: the runtime has no optimizer PTX (nvcc missing?)" >&2; exit 1; }
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib .gpu/data
for p in $programs; do cp "$build/bin/$p" .gpu/bin/; done
find "$build/tests/cuda" "$build/examples/fashion_mnist" "$build/examples/recsys" \
  "$build/examples/wide_sparse" "$build/examples/sparse_cnn" \
  "$build/benchmarks" \
  -maxdepth 1 -name 'lib*.so' -exec cp {} .gpu/lib/ \;
cp "$(ldd "$build/bin/sparsec-bench" | awk '/libbenchmark/ {print $3}')" .gpu/lib/
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu
echo "gpu-pack: ready; on the GPU machine: bash .ci/gpu-suite.sh (carry .gpu)"
