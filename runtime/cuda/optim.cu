//===- optim.cu - Optimizer steps on device-resident values ---------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// One CUDA kernel per optimizer, one thread per value (and the two of
// gradient clipping): the update of
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

// Row-wise Adagrad: block r steps row r of `dim` values with one
// accumulator per row, the mean of the squared gradients summed in double
// (a tree here, in order on the CPU: the float result rarely differs).
__global__ void sparsec_cuda_rowwise_adagrad(sparsec__opt o, float *p, const float *g,
                                             float *rowSum, int64_t dim, int sparseForm) {
  __shared__ double partial[256];
  __shared__ float rowStd;
  const int64_t base = int64_t(blockIdx.x) * dim;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float gj = sparsec__grad(&o, g[base + j], p[base + j]);
    acc += double(gj) * double(gj);
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float sum = sparsec__rowwise_sum(rowSum[blockIdx.x], partial[0], dim);
    rowSum[blockIdx.x] = sum;
    rowStd = sqrtf(sum) + o.eps;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float gj = sparsec__grad(&o, g[base + j], p[base + j]);
    p[base + j] = sparsec__adagrad_update(p[base + j], gj, rowStd, o.neg_clr, sparseForm);
  }
}

// Gradient clipping: *out += the sum of squares of g[0, n) in double, a
// tree per block (grid-stride) and one double atomic add per block (the CPU
// sums in order: the float norm rarely differs).
__global__ void sparsec_cuda_sumsq(const float *g, int64_t n, double *out) {
  __shared__ double partial[256];
  double acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = valueIndex(); i < n; i += stride)
    acc += double(g[i]) * double(g[i]);
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    atomicAdd(out, partial[0]);
}

// g[i] *= c (the clipped gradient).
__global__ void sparsec_cuda_scale(float *g, int64_t n, float c) {
  int64_t i = valueIndex();
  if (i < n)
    g[i] = g[i] * c;
}

} // extern "C"
