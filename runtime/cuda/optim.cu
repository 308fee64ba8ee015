//===- optim.cu - Optimizer steps on device-resident values ---------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// One CUDA kernel per optimizer, one thread per value: the update of
// optim_elem.h, the same inline function the CPU spans run (optim_*.c), so
// with -fmad=false (the C files use -ffp-contract=off) and IEEE division and
// square root both devices compute the same bits. Compiled by nvcc to PTX
// and embedded in the runtime (runtime/CMakeLists.txt), launched by
// cuda_optim.c through the driver API (docs/cuda.md).
//
//===----------------------------------------------------------------------===//

#include "optim_elem.h"

namespace {
__device__ int64_t valueIndex() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
} // namespace

extern "C" {

__global__ void sparsec_cuda_sgd(sparsec__opt o, float *p, const float *g, float *buf, int64_t n,
                                 int init) {
  int64_t i = valueIndex();
  if (i < n)
    sparsec__sgd_elem(&o, p, g, buf, i, init);
}

__global__ void sparsec_cuda_adagrad(sparsec__opt o, float *p, const float *g, float *sum,
                                     int64_t n, int sparseForm) {
  int64_t i = valueIndex();
  if (i < n)
    sparsec__adagrad_elem(&o, p, g, sum, i, sparseForm);
}

__global__ void sparsec_cuda_rmsprop(sparsec__opt o, float *p, const float *g, float *sq, float *ga,
                                     float *buf, int64_t n) {
  int64_t i = valueIndex();
  if (i < n)
    sparsec__rmsprop_elem(&o, p, g, sq, ga, buf, i);
}

__global__ void sparsec_cuda_adam(sparsec__opt o, float *p, const float *g, float *m, float *v,
                                  float *vmax, int64_t n, int sparseForm) {
  int64_t i = valueIndex();
  if (i < n)
    sparsec__adam_elem(&o, p, g, m, v, vmax, i, sparseForm);
}

} // extern "C"
