/*===- small_world.c - Small-world CSR patterns --------------------*- C -*-===*
 *
 * The bipartite small-world connectivity of SparseLinear ("Generating Very
 * Wide Small-World Bipartite Networks", Rain Neuromorphics 2020): output i
 * and input j are connected with probability
 *
 *   P(i, j) = (d(i, j) + 1)^(-lambda),  d(i, j) = | |i - j| - |rows - cols| / 2 |
 *
 * (alpha = beta = 1), with lambda chosen so that the expected number of
 * edges sum P equals nnz. P depends on (i, j) only through the diagonal
 * k = i - j, whose cells number count_k, so the sum is O(rows + cols) and a
 * bisection on lambda always terminates (the sum decreases in lambda):
 * unlike SparseLinear's search (sparse-layers-anchors.md §1.5), which never
 * ends when lambda = 1 gives too few edges. The pattern holds exactly nnz
 * distinct edges (the kernels have static shapes): edges are drawn with
 * probability proportional to P — a diagonal from the weights
 * count_k P_k, then a uniform cell on it — and duplicates are dropped
 * until nnz distinct remain. Cells with P close to 1 are therefore kept
 * with probability a little below P; docs/runtime.md has the details.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Diagonal k = i - j, stored at index k + cols - 1. */
typedef struct sparsec__diag {
  int64_t rows, cols, n; /* n = rows + cols - 1 diagonals */
  double center;          /* |rows - cols| / 2 */
} sparsec__diag;

static int64_t sparsec__diag_first(const sparsec__diag *g, int64_t k) {
  return k > 0 ? k : 0; /* first row i with i - k in [0, cols) */
}

static int64_t sparsec__diag_count(const sparsec__diag *g, int64_t k) {
  int64_t hi = g->rows < g->cols + k ? g->rows : g->cols + k;
  return hi - sparsec__diag_first(g, k);
}

static double sparsec__diag_dist(const sparsec__diag *g, int64_t k) {
  return fabs(fabs((double)k) - g->center);
}

/* Expected number of edges at `lambda`. */
static double sparsec__sw_sum(const sparsec__diag *g, double lambda) {
  double s = 0.0;
  for (int64_t t = 0; t < g->n; ++t) {
    const int64_t k = t - (g->cols - 1);
    s += (double)sparsec__diag_count(g, k) * pow(sparsec__diag_dist(g, k) + 1.0, -lambda);
  }
  return s;
}

double sparsec__small_world_lambda(int64_t rows, int64_t cols, int64_t nnz) {
  sparsec__diag g = {rows, cols, rows + cols - 1, fabs((double)(rows - cols)) / 2.0};
  const double want = (double)nnz;
  if (rows <= 0 || cols <= 0 || !(sparsec__sw_sum(&g, 0.0) > want))
    return 0.0;
  /* Bracket: the sum at lambda = 0 is rows * cols > nnz; grow hi until the
   * sum drops to nnz (it tends to the number of d = 0 cells, possibly more
   * than nnz: then the steepest lambda tried is used). */
  double lo = 0.0, hi = 1.0;
  while (sparsec__sw_sum(&g, hi) > want && hi < 64.0) {
    lo = hi;
    hi *= 2.0;
  }
  for (int it = 0; it < 60 && hi - lo > 1e-12 * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (sparsec__sw_sum(&g, mid) > want)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

/* Index of the first prefix sum > u (cdf ascending, cdf[n-1] = total). */
static int64_t sparsec__upper(const double *cdf, int64_t n, double u) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] > u)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

int sparsec__csr_small_world(sparsec__rng *rng, int64_t rows, int64_t cols, int64_t nnz,
                             int32_t *positions, int32_t *coordinates) {
  sparsec__diag g = {rows, cols, rows + cols - 1, fabs((double)(rows - cols)) / 2.0};
  positions[0] = 0;
  if (nnz <= 0 || rows <= 0 || cols <= 0) {
    for (int64_t r = 0; r < rows; ++r)
      positions[r + 1] = 0;
    return 0;
  }
  const double lambda = sparsec__small_world_lambda(rows, cols, nnz);
  double *cdf = (double *)sparsec__malloc((size_t)g.n * sizeof(double));
  uint64_t *picked = (uint64_t *)sparsec__malloc((size_t)nnz * sizeof(uint64_t));
  uint64_t *tmp = (uint64_t *)sparsec__malloc((size_t)nnz * 2 * sizeof(uint64_t));
  if (!cdf || !picked || !tmp) {
    free(cdf);
    free(picked);
    free(tmp);
    return -1;
  }
  double acc = 0.0;
  for (int64_t t = 0; t < g.n; ++t) {
    const int64_t k = t - (cols - 1);
    acc += (double)sparsec__diag_count(&g, k) * pow(sparsec__diag_dist(&g, k) + 1.0, -lambda);
    cdf[t] = acc;
  }
  const uint64_t total = (uint64_t)rows * (uint64_t)cols;
  int64_t have = 0;
  for (int round = 0; have < nnz; ++round) {
    const int64_t fresh = nnz - have;
    uint64_t *add = tmp + nnz; /* second half: the round's draws */
    for (int64_t i = 0; i < fresh; ++i) {
      if (round < 256) {
        const int64_t t = sparsec__upper(cdf, g.n, sparsec__rng_uniform(rng) * acc);
        const int64_t k = t - (cols - 1);
        const int64_t r = sparsec__diag_first(&g, k) +
                          (int64_t)sparsec__rng_below(rng, (uint64_t)sparsec__diag_count(&g, k));
        add[i] = (uint64_t)r * (uint64_t)cols + (uint64_t)(r - k);
      } else {
        /* Nearly every likely cell is taken (nnz close to rows * cols):
         * finish with uniform cells so that the loop ends. */
        add[i] = sparsec__rng_below(rng, total);
      }
    }
    sparsec__radix_sort_u64(add, tmp, fresh);
    have = sparsec__merge_unique(picked, have, add, fresh, tmp);
  }
  int64_t r = 0;
  for (int64_t i = 0; i < nnz; ++i) {
    const int64_t row = (int64_t)(picked[i] / (uint64_t)cols);
    while (r < row)
      positions[++r] = (int32_t)i;
    coordinates[i] = (int32_t)(picked[i] % (uint64_t)cols);
  }
  while (r < rows)
    positions[++r] = (int32_t)nnz;
  free(cdf);
  free(picked);
  free(tmp);
  return 0;
}
