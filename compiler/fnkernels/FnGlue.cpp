//===- FnGlue.cpp - C helpers shared by the fn kernels' entry points ------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The C text that starts the generated glue of `fn` kernels (FnAbi.cpp,
// emitFnGlue): the memref descriptor, the thread-local error message, and
// the checks of input arrays (pointers, dimensions, compressed, n:m and COO
// arrays, index vectors) and of overlapping results (docs/sparse-ops.md,
// "C ABI").
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnKernels.h"

// clang-format off
const char *sparsec::fnGluePrologue() {
  return R"C(#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* A memref descriptor of any rank <= 8: sizes in dims[0, rank), strides in
   dims[rank, 2 * rank), the layout of MLIR's StridedMemRefType. */
typedef struct {
  void *allocated, *aligned;
  int64_t offset;
  int64_t dims[16];
} sfn_memref;

static __thread char sfn_message[512];

static int sfn_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sfn_message, sizeof sfn_message, fmt, ap);
  va_end(ap);
  return status;
}

static int64_t sfn_min(int64_t a, int64_t b) { return a < b ? a : b; }

static void sfn_desc(sfn_memref *m, const void *p, int rank,
                     const int64_t *sizes) {
  int64_t stride = 1;
  m->allocated = m->aligned = (void *)p;
  m->offset = 0;
  for (int d = rank - 1; d >= 0; --d) {
    m->dims[d] = sizes[d];
    m->dims[rank + d] = stride;
    stride *= sizes[d];
  }
}

/* Whether the arrays of descriptors a and b (rank ra, rb; elements of ea, eb
   bytes) share a byte: the kernels read inputs and write results through
   restrict pointers. */
static int sfn_overlap(const sfn_memref *a, int ra, int ea,
                       const sfn_memref *b, int rb, int eb) {
  int64_t na = ea, nb = eb;
  for (int d = 0; d < ra; ++d)
    na *= a->dims[d];
  for (int d = 0; d < rb; ++d)
    nb *= b->dims[d];
  if (!a->aligned || !b->aligned || na == 0 || nb == 0)
    return 0;
  return (const char *)a->aligned < (const char *)b->aligned + nb &&
         (const char *)b->aligned < (const char *)a->aligned + na;
}

/* A pointer may be NULL only for an empty array. */
static int sfn_check_ptr(const char *fn, const char *name, const void *p,
                         int64_t n) {
  if (!p && n > 0)
    return sfn_fail(1, "%s: '%s' is NULL", fn, name);
  return 0;
}

static int sfn_check_dim(const char *fn, const char *name, int64_t v) {
  if (v < 0 || v > ((int64_t)1 << 31))
    return sfn_fail(2, "%s: dimension %s = %lld is outside [0, 2^31]", fn,
                    name, (long long)v);
  return 0;
}

/* Compressed arrays (CSR rows / CSC columns): pos[0] = 0, non-decreasing,
   pos[outer] = nnz, strictly increasing coordinates < inner per segment. */
static int sfn_check_compressed(const char *fn, const char *arg,
                                const int64_t *pos, const int64_t *crd,
                                const void *val, int64_t nnz, int64_t outer,
                                int64_t inner) {
  int64_t i, k;
  if (nnz < 0 || nnz > outer * inner)
    return sfn_fail(2, "%s: %s_nnz = %lld is outside [0, %lld]", fn, arg,
                    (long long)nnz, (long long)(outer * inner));
  if (!pos || sfn_check_ptr(fn, "crd", crd, nnz) ||
      sfn_check_ptr(fn, "val", val, nnz))
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  if (pos[outer] != nnz)
    return sfn_fail(2, "%s: %s_pos[%lld] = %lld but %s_nnz = %lld", fn, arg,
                    (long long)outer, (long long)pos[outer], arg,
                    (long long)nnz);
  if (pos[0] != 0)
    return sfn_fail(6, "%s: %s_pos[0] = %lld, expected 0", fn, arg,
                    (long long)pos[0]);
  for (i = 0; i < outer; ++i) {
    if (pos[i + 1] < pos[i] || pos[i + 1] > nnz)
      return sfn_fail(6, "%s: %s_pos[%lld] = %lld is out of order or past "
                      "%s_nnz = %lld", fn, arg, (long long)(i + 1),
                      (long long)pos[i + 1], arg, (long long)nnz);
    for (k = pos[i]; k < pos[i + 1]; ++k) {
      if (crd[k] < 0 || crd[k] >= inner)
        return sfn_fail(3, "%s: %s_crd[%lld] = %lld is outside [0, %lld)", fn,
                        arg, (long long)k, (long long)crd[k],
                        (long long)inner);
      if (k > pos[i] && crd[k] <= crd[k - 1])
        return sfn_fail(6, "%s: %s_crd is not strictly increasing in "
                        "segment %lld", fn, arg, (long long)i);
    }
  }
  return 0;
}

/* @nm(n, m): crd[groups][n], in each group n strictly increasing column
   offsets in [0, m). */
static int sfn_check_nm(const char *fn, const char *arg, const int64_t *crd,
                        const void *val, int64_t groups, int64_t n,
                        int64_t m) {
  int64_t g, k;
  if (!crd || !val)
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  for (g = 0; g < groups; ++g)
    for (k = 0; k < n; ++k) {
      int64_t c = crd[g * n + k];
      if (c < 0 || c >= m)
        return sfn_fail(3, "%s: %s_crd[%lld] = %lld is outside [0, %lld)",
                        fn, arg, (long long)(g * n + k), (long long)c,
                        (long long)m);
      if (k > 0 && c <= crd[g * n + k - 1])
        return sfn_fail(6, "%s: %s_crd is not strictly increasing in group "
                        "%lld", fn, arg, (long long)g);
    }
  return 0;
}

/* Coalesced COO: indices[2][nnz], in range, strictly increasing in row-major
   order (sorted, no duplicates). */
static int sfn_check_coo(const char *fn, const char *arg, const int64_t *idx,
                         const void *val, int64_t nnz, int64_t rows,
                         int64_t cols, int sparse_dims) {
  /* sparse_dims = 1 (@coo(1)): idx[nnz] rows, each with cols values. */
  int64_t k, entries = sparse_dims == 2 ? rows * cols : rows;
  if (nnz < 0 || nnz > entries)
    return sfn_fail(2, "%s: %s_nnz = %lld is outside [0, %lld]", fn, arg,
                    (long long)nnz, (long long)entries);
  if (sfn_check_ptr(fn, "indices", idx, nnz) ||
      sfn_check_ptr(fn, "val", val, sparse_dims == 2 ? nnz : nnz * cols))
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  for (k = 0; k < nnz; ++k) {
    int64_t r = idx[k], c = sparse_dims == 2 ? idx[nnz + k] : 0;
    if (sparse_dims == 1) {
      if (r < 0 || r >= rows)
        return sfn_fail(3, "%s: row %lld of '%s' is outside [0, %lld)", fn,
                        (long long)r, arg, (long long)rows);
      if (k > 0 && r <= idx[k - 1])
        return sfn_fail(6, "%s: '%s' is not coalesced (row %lld is out of "
                        "order or a duplicate)", fn, arg, (long long)r);
      continue;
    }
    if (r < 0 || r >= rows || c < 0 || c >= cols)
      return sfn_fail(3,
                      "%s: entry %lld of '%s' = (%lld, %lld) is outside "
                      "%lldx%lld",
                      fn, (long long)k, arg, (long long)r, (long long)c,
                      (long long)rows, (long long)cols);
    if (k > 0 && (r < idx[k - 1] || (r == idx[k - 1] && c <= idx[nnz + k - 1])))
      return sfn_fail(6,
                      "%s: '%s' is not coalesced (entry %lld is out of "
                      "order or a duplicate)",
                      fn, arg, (long long)k);
  }
  return 0;
}
/* Coalesced COO of rank 3: idx[3][nnz], strictly increasing in row-major
   order. */
static int sfn_check_coo3(const char *fn, const char *arg, const int64_t *idx,
                          const void *val, int64_t nnz, int64_t d0,
                          int64_t d1, int64_t d2) {
  int64_t k, c;
  if (nnz < 0 || nnz > d0 * d1 * d2)
    return sfn_fail(2, "%s: %s_nnz = %lld is outside [0, %lld]", fn, arg,
                    (long long)nnz, (long long)(d0 * d1 * d2));
  if (sfn_check_ptr(fn, "indices", idx, nnz) ||
      sfn_check_ptr(fn, "val", val, nnz))
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  for (k = 0; k < nnz; ++k) {
    const int64_t x[3] = {idx[k], idx[nnz + k], idx[2 * nnz + k]};
    const int64_t dims[3] = {d0, d1, d2};
    int order = k == 0 ? 1 : 0; /* 1: after entry k - 1 */
    for (c = 0; c < 3; ++c)
      if (x[c] < 0 || x[c] >= dims[c])
        return sfn_fail(3,
                        "%s: entry %lld of '%s' = (%lld, %lld, %lld) is "
                        "outside %lldx%lldx%lld",
                        fn, (long long)k, arg, (long long)x[0],
                        (long long)x[1], (long long)x[2], (long long)d0,
                        (long long)d1, (long long)d2);
    for (c = 0; c < 3 && !order; ++c) {
      int64_t prev = idx[c * nnz + k - 1];
      if (x[c] != prev) {
        order = x[c] > prev;
        break;
      }
    }
    if (!order)
      return sfn_fail(6,
                      "%s: '%s' is not coalesced (entry %lld is out of "
                      "order or a duplicate)",
                      fn, arg, (long long)k);
  }
  return 0;
}

/* An index vector: n entries in [0, size). */
static int sfn_check_index(const char *fn, const char *arg, const int64_t *idx,
                           int64_t n, int64_t size) {
  int64_t j;
  for (j = 0; j < n; ++j)
    if (idx[j] < 0 || idx[j] >= size)
      return sfn_fail(3, "%s: %s[%lld] = %lld is outside [0, %lld)", fn, arg,
                      (long long)j, (long long)idx[j], (long long)size);
  return 0;
}
)C";
}
// clang-format on
