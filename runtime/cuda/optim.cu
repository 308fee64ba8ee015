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

// The sum of every thread's `v` over the block (a tree in shared memory),
// returned to every thread.
__device__ double blockSum(double v) {
  __shared__ double partial[256];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  return partial[0];
}

// Row-wise Adagrad on the block's row of n values at p, gradient grad(j):
// the mean of the squared gradients summed in double (a tree here, in order
// on the CPU: the float result rarely differs) updates the row's
// accumulator, then every value steps; an empty row keeps its accumulator.
template <typename Grad>
__device__ void rowwiseStep(const sparsec__opt &o, float *p, int64_t n, float *rowSum,
                            int sparseForm, Grad grad) {
  __shared__ float rowStd;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float gj = sparsec__grad(&o, grad(j), p[j]);
    acc += double(gj) * double(gj);
  }
  const double total = blockSum(acc);
  if (n == 0)
    return;
  if (threadIdx.x == 0) {
    const float sum = sparsec__rowwise_sum(*rowSum, total, n);
    *rowSum = sum;
    rowStd = sqrtf(sum) + o.eps;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float gj = sparsec__grad(&o, grad(j), p[j]);
    p[j] = sparsec__adagrad_update(p[j], gj, rowStd, o.neg_clr, sparseForm);
  }
}

// The sum of gradient rows g[perm[j]] (j in [lo, hi)) at column d: the
// first row, then the others added in order (the CPU's coalescing).
__device__ float segmentSum(const float *g, const uint32_t *perm, uint32_t lo, uint32_t hi,
                            int64_t dim, int64_t d) {
  float sum = g[int64_t(perm[lo]) * dim + d];
  for (uint32_t j = lo + 1; j < hi; ++j)
    sum += g[int64_t(perm[j]) * dim + d];
  return sum;
}

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

// Row-wise Adagrad: block r steps row r (values [r * dim, (r + 1) * dim),
// or a CSR row's [pos[r], pos[r + 1]) when `pos` is given).
__global__ void sparsec_cuda_rowwise_adagrad(sparsec__opt o, float *p, const float *g,
                                             float *rowSum, int64_t dim, int sparseForm,
                                             const int32_t *pos) {
  const int64_t base = pos ? int64_t(pos[blockIdx.x]) : int64_t(blockIdx.x) * dim;
  const int64_t n = pos ? int64_t(pos[blockIdx.x + 1]) - base : dim;
  rowwiseStep(o, p + base, n, rowSum + blockIdx.x, sparseForm,
              [&](int64_t j) { return g[base + j]; });
}

// Lazy embedding rows: block s steps the row keys[s] of the table with the
// sum of its gradient rows g[perm[j]] for j in [starts[s], starts[s+1])
// (batch order, the first row then the others added, as the CPU's
// coalescing) times `scale` (gradient clipping's coefficient, else 1),
// through the same per-value update as the dense kernels with every array
// offset to the value (index 0); `sparseForm` 1: lazy rows (sparse Adagrad,
// SparseAdam), 0: catch-up rows (the dense arithmetic). `coalesced` 0:
// plain SGD, PyTorch's uncoalesced adds of each row in batch order. The
// padding row never steps. `init[s]`: the row's momentum buffer holds
// state.
__global__ void sparsec_cuda_rows(sparsec__opt o, float *p, const float *g, const uint32_t *perm,
                                  const uint32_t *starts, const int32_t *keys, const uint32_t *init,
                                  float *mom, float *sum, float *sq, float *gavg, float *m,
                                  float *v, float *vmax, int64_t dim, int64_t pad, int coalesced,
                                  int sparseForm, float scale) {
  const int32_t key = keys[blockIdx.x];
  if (key == pad)
    return;
  const uint32_t lo = starts[blockIdx.x], hi = starts[blockIdx.x + 1];
  const int64_t base = int64_t(key) * dim;
  if (!coalesced) {
    const float negLr = o.maximize ? -o.neg_lr : o.neg_lr;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
      float x = p[base + d];
      for (uint32_t j = lo; j < hi; ++j)
        x = x + negLr * g[int64_t(perm[j]) * dim + d];
      p[base + d] = x;
    }
    return;
  }
  if (o.kind == SPARSEC_OPT_ROWWISE_ADAGRAD) {
    rowwiseStep(o, p + base, dim, sum + key, sparseForm,
                [&](int64_t d) { return segmentSum(g, perm, lo, hi, dim, d) * scale; });
    return;
  }
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    const float gs = segmentSum(g, perm, lo, hi, dim, d) * scale;
    const int64_t at = base + d;
    switch (o.kind) {
    case SPARSEC_OPT_SGD:
      sparsec__sgd_elem(&o, p + at, &gs, mom ? mom + at : nullptr, 0, int(init[blockIdx.x]));
      break;
    case SPARSEC_OPT_ADAGRAD:
      sparsec__adagrad_elem(&o, p + at, &gs, sum + at, 0, sparseForm);
      break;
    case SPARSEC_OPT_RMSPROP:
      sparsec__rmsprop_elem(&o, p + at, &gs, sq + at, gavg ? gavg + at : nullptr,
                            mom ? mom + at : nullptr, 0);
      break;
    default: /* Adam, AdamW (lazy: SparseAdam's arithmetic) */
      sparsec__adam_elem(&o, p + at, &gs, m + at, v + at, vmax ? vmax + at : nullptr, 0,
                         sparseForm);
      break;
    }
  }
}

// sparse = dense: dense[ids[r], d] += rows[r, d], one thread per row
// value (atomic adds: the order of duplicates is free; the CPU adds them in
// batch order). The padding row is left 0.
__global__ void sparsec_cuda_scatter_rows(float *dense, const float *rows, const int32_t *ids,
                                          int64_t n, int64_t dim, int64_t pad) {
  const int64_t i = valueIndex();
  if (i >= n * dim)
    return;
  const int32_t id = ids[i / dim];
  if (id != pad)
    atomicAdd(dense + int64_t(id) * dim + i % dim, rows[i]);
}

// Gradient clipping: *out += the sum of squares of g[0, n) in double, a
// tree per block (grid-stride) and one double atomic add per block (the CPU
// sums in order: the float norm rarely differs).
__global__ void sparsec_cuda_sumsq(const float *g, int64_t n, double *out) {
  double acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = valueIndex(); i < n; i += stride)
    acc += double(g[i]) * double(g[i]);
  const double total = blockSum(acc);
  if (threadIdx.x == 0)
    atomicAdd(out, total);
}

// g[i] *= c (the clipped gradient).
__global__ void sparsec_cuda_scale(float *g, int64_t n, float c) {
  int64_t i = valueIndex();
  if (i < n)
    g[i] = g[i] * c;
}

// Clipping of lazy/catch-up embedding gradients: *out += the sum of squares
// of the coalesced rows (block s: the sum of segment s's gradient rows, as
// sparsec_cuda_rows reads them), in double, one atomic add per block.
__global__ void sparsec_cuda_segment_sumsq(const float *g, const uint32_t *perm,
                                           const uint32_t *starts, int64_t dim, double *out) {
  const uint32_t lo = starts[blockIdx.x], hi = starts[blockIdx.x + 1];
  double acc = 0;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    const float gs = segmentSum(g, perm, lo, hi, dim, d);
    acc += double(gs) * double(gs);
  }
  const double total = blockSum(acc);
  if (threadIdx.x == 0)
    atomicAdd(out, total);
}

// Row snapshots for undoing a failed call: block b copies row rows[b] of
// every array of `r` to save[b * width, (b + 1) * width) (restore 0), or
// back (restore 1); `width` is the sum of r.width.
__global__ void sparsec_cuda_row_snapshot(sparsec__row_arrays r, const int32_t *rows, float *save,
                                          int64_t width, int restore) {
  float *buf = save + int64_t(blockIdx.x) * width;
  const int64_t row = rows[blockIdx.x];
  for (int k = 0; k < 1 + SPARSEC_NSTATE; ++k) {
    const int64_t w = r.width[k];
    if (w == 0)
      continue;
    float *a = r.a[k] + row * w;
    for (int64_t j = threadIdx.x; j < w; j += blockDim.x) {
      if (restore)
        a[j] = buf[j];
      else
        buf[j] = a[j];
    }
    buf += w;
  }
}

// Catch-up (optim_sparse.c): block b brings row rows[b] (dim values and
// their per-value states in `r`) up to date with the map coef[b] the host
// computed for its gap.
__global__ void sparsec_cuda_catchup(sparsec__row_arrays r, const int32_t *rows,
                                     const sparsec__catchup_coef *coef, int64_t dim) {
  const sparsec__catchup_coef c = coef[blockIdx.x];
  const int64_t at = int64_t(rows[blockIdx.x]) * dim;
  float *s[SPARSEC_NSTATE];
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    s[k] = r.a[1 + k] ? r.a[1 + k] + at : nullptr;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    sparsec__catchup_elem(&c, r.a[0] + at, s, d);
}

// max_norm (embedding.c): block b renorms row rows[b] of `table` when its
// norm_type-norm exceeds maxNorm; the norm is thread 0's, in the CPU's
// order, so both devices scale by the same factor.
__global__ void sparsec_cuda_renorm(float *table, const int32_t *rows, int64_t dim, double maxNorm,
                                    double normType) {
  __shared__ float scale;
  float *row = table + int64_t(rows[blockIdx.x]) * dim;
  if (threadIdx.x == 0)
    scale = sparsec__renorm_scale(sparsec__row_norm(row, dim, normType), maxNorm);
  __syncthreads();
  if (scale == 1.0f)
    return;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    row[d] = row[d] * scale;
}

// scale_grad_by_freq: gradient row i of n (dim values) times scale[i].
__global__ void sparsec_cuda_scale_rows(float *rows, const float *scale, int64_t n, int64_t dim) {
  const int64_t i = valueIndex();
  if (i < n * dim)
    rows[i] = rows[i] * scale[i / dim];
}

} // extern "C"
