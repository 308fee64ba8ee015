#!/usr/bin/env bash
# The CUDA suite on a GPU machine, from the programs .ci/gpu-pack.sh packed
# into .gpu/ (no toolchain needed there, only the NVIDIA driver; python3
# with a CUDA torch for the benchmarks). Runs, each with its log in
# ${OUT:-.gpu/out}/<name>.log and its tail printed:
#   kernels  CUDA forward/train functions vs the CPU kernels (all gradients)
#   model    the model API on the GPU (25 training steps) vs the CPU
#   embed    embedding rows on the GPU (catch-up, max_norm, frequency
#            scaling, clipping, a refused step's undo) vs the CPU
#   embed-host-sort  the same with the row order sorted on the host
#            (SPARSEC_CUDA_SORT=host)
#   sort     the device row order (coalesce.cu) vs the CPU's sort
#   optim    every optimizer kernel vs the CPU step
#   runtime  the driver/mgpu layer on a real device (cuda.CudaRuntime.*)
#   fashion  the main example: one Fashion-MNIST epoch with --device cuda
#   recsys   the recommender example (AdamW catch-up) with --device cuda
#   kwinners the wide K-Winners example (CSR + K-Winners) with --device cuda
#   rigl     the wide RigL example (pattern updates every 100 steps) on cuda
#   cnn      the masked CNN example (pruned convolutions), two epochs on cuda
#   bench    benchmarks/gpu.py --quick (skipped with --no-bench)
# Exit status 0 only when every program passed (a program that finds no GPU
# exits 77 and counts as a failure here). docs/cuda.md, "The GPU suite".
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d .gpu/bin ] || { echo "gpu-suite: no .gpu/: run .ci/gpu-pack.sh first" >&2; exit 2; }
out=${OUT:-.gpu/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
run() {
  local name=$1 start=$SECONDS rc
  shift
  echo "== $name: $*"
  "$@" >"$out/$name.log" 2>&1
  rc=$?
  tail -n 30 "$out/$name.log"
  echo "== $name: exit $rc in $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || status=1
}
nvidia-smi -L 2>/dev/null || echo "gpu-suite: nvidia-smi not found"
run kernels .gpu/bin/sparsec-cuda-kernels-test
run model .gpu/bin/sparsec-cuda-model-test
run embed .gpu/bin/sparsec-cuda-embed-test
run embed-host-sort env SPARSEC_CUDA_SORT=host .gpu/bin/sparsec-cuda-embed-test
run sort .gpu/bin/sparsec-cuda-sort-test
run optim .gpu/bin/sparsec-cuda-optim-test
run runtime .gpu/bin/sparsec-cuda-runtime-tests --gtest_filter='CudaRuntime.*'
run fashion .gpu/bin/fashion_mnist_train --device cuda --epochs 1 --data .gpu/data
run recsys .gpu/bin/recsys_train --device cuda --steps 400 --check
run kwinners .gpu/bin/wide_sparse_kwinners --device cuda --epochs 1 --data .gpu/data
run rigl .gpu/bin/wide_sparse_rigl --device cuda --epochs 1 --data .gpu/data
run cnn .gpu/bin/sparse_cnn_train --device cuda --epochs 2 --data .gpu/data
if [ "${1:-}" != "--no-bench" ]; then
  run bench env PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --build-dir .gpu --quick \
    --fashion-dir .gpu/data
fi
echo "gpu-suite: $([ $status -eq 0 ] && echo PASSED || echo FAILED)"
exit $status
