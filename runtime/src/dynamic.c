/*===- dynamic.c - Dynamic sparsity of CSR weights (SET) -----------*- C -*-===*
 *
 * A CSR parameter with `dynamic = SPARSEC_DYNAMIC_SET` changes its pattern
 * during training (Mocanu et al.'s SET, with RigL's schedule): after the
 * optimizer step of every step t with t % delta_t == 0 and t <= t_end,
 *
 *   f = drop_fraction * (1 + cos(pi * t / t_end)) / 2,  k = floor(f * nnz)
 *
 * the k stored weights of smallest |w| are dropped (ties: the earlier
 * position) and k connections are grown uniformly at random among the
 * positions that were not stored before the update (so the dropped and
 * grown sets are disjoint). nnz is constant. Kept weights keep their values
 * and optimizer state; grown weights start at 0 with zero optimizer state
 * (the state rows of row-wise Adagrad belong to rows and are kept). The
 * random draws come from a stream seeded by (create seed, parameter name,
 * t), so the same seed and data give the same patterns. Every buffer is
 * allocated at create, so the update cannot fail.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPARSEC_PI 3.14159265358979323846

int64_t sparsec__dynamic_count(const sparsec_param_desc *d, int64_t nnz, int64_t t) {
  if (d->dynamic != SPARSEC_DYNAMIC_SET || t <= 0 || t % d->delta_t != 0 || t > d->t_end)
    return 0;
  const double f =
      d->drop_fraction * (1.0 + cos(SPARSEC_PI * (double)t / (double)d->t_end)) / 2.0;
  return (int64_t)floor(f * (double)nnz);
}

int sparsec__dynamic_alloc(sparsec__param *p) {
  if (p->desc.dynamic != SPARSEC_DYNAMIC_SET)
    return 0;
  const size_t n = (size_t)(p->nnz > 0 ? p->nnz : 1);
  /* Linear positions (2 x nnz: old pattern + draws), a permutation, and one
   * float scratch array per moved array. */
  p->dyn.lin = (uint64_t *)sparsec__malloc(3 * n * sizeof(uint64_t));
  p->dyn.order = (int64_t *)sparsec__malloc(n * sizeof(int64_t));
  p->dyn.scratch = (float *)sparsec__malloc(n * sizeof(float));
  p->dyn.coords = (int32_t *)sparsec__malloc(n * sizeof(int32_t));
  return p->dyn.lin && p->dyn.order && p->dyn.scratch && p->dyn.coords ? 0 : -1;
}

void sparsec__dynamic_free(sparsec__param *p) {
  free(p->dyn.lin);
  free(p->dyn.order);
  free(p->dyn.scratch);
  free(p->dyn.coords);
  memset(&p->dyn, 0, sizeof(p->dyn));
}

/* Entries by increasing |w| (ties: the earlier entry): a stable radix sort
 * of (key, index) with the key the bits of |w| (non-negative floats order
 * as their bits; NaN sorts last). */
static void sparsec__sort_by_magnitude(sparsec__param *p) {
  const int64_t n = p->nnz;
  uint64_t *keys = p->dyn.lin + 2 * (size_t)n, *tmp = p->dyn.lin;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    float a = fabsf(p->values[i]);
    memcpy(&bits, &a, sizeof(bits));
    keys[i] = ((uint64_t)bits << 32) | (uint64_t)i;
  }
  sparsec__radix_sort_u64(keys, tmp, n);
  for (int64_t i = 0; i < n; ++i)
    p->dyn.order[i] = (int64_t)(keys[i] & 0xFFFFFFFFu);
}

/* Whether linear position `lin` is in the sorted array `set[0, n)`. */
static int sparsec__contains(const uint64_t *set, int64_t n, uint64_t lin) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (set[mid] < lin)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && set[lo] == lin;
}

/* Draws k distinct positions outside the old pattern `old[0, nnz)` into
 * `out` (sorted). */
static void sparsec__draw_new(sparsec__rng *rng, uint64_t total, const uint64_t *old,
                              int64_t nnz, int64_t k, uint64_t *out, uint64_t *tmp) {
  int64_t have = 0;
  while (have < k) {
    int64_t fresh = 0;
    uint64_t *add = out + have;
    while (fresh < k - have) {
      uint64_t lin = sparsec__rng_below(rng, total);
      if (!sparsec__contains(old, nnz, lin))
        add[fresh++] = lin;
    }
    sparsec__radix_sort_u64(add, tmp, fresh);
    have = sparsec__merge_unique(out, have, add, fresh, tmp);
  }
}

/* Rebuilds array `a` (nnz floats) in the new order: `src[i]` is the old
 * index of new entry i, or -1 for a grown entry (value `grown`). */
static void sparsec__permute(sparsec__param *p, float *a, const int64_t *src, float grown) {
  for (int64_t i = 0; i < p->nnz; ++i)
    p->dyn.scratch[i] = src[i] < 0 ? grown : a[src[i]];
  memcpy(a, p->dyn.scratch, (size_t)p->nnz * sizeof(float));
}

void sparsec__dynamic_update(sparsec_model *m, sparsec__param *p, int64_t t) {
  const int64_t nnz = p->nnz, rows = p->desc.dims[0], cols = p->desc.dims[1];
  const uint64_t total = (uint64_t)rows * (uint64_t)cols;
  int64_t k = sparsec__dynamic_count(&p->desc, nnz, t);
  if (k > (int64_t)(total - (uint64_t)nnz))
    k = (int64_t)(total - (uint64_t)nnz); /* not enough free positions */
  if (k <= 0)
    return;
  uint64_t *old = p->dyn.lin, *grown = p->dyn.lin + nnz, *tmp = p->dyn.lin + 2 * nnz;
  /* Drop: mark the k smallest (dropped entries get key UINT64_MAX). */
  sparsec__sort_by_magnitude(p);
  int64_t *dropped = p->dyn.order; /* first k entries: dropped indices */
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t i = p->positions[r]; i < p->positions[r + 1]; ++i)
      old[i] = (uint64_t)r * (uint64_t)cols + (uint64_t)p->coordinates[i];
  sparsec__rng rng;
  sparsec__rng_seed(&rng, m->seed ^ (uint64_t)t * 0x9E3779B97F4A7C15ull,
                    sparsec__hash_name(p->desc.name));
  sparsec__draw_new(&rng, total, old, nnz, k, grown, tmp);
  /* Kept entries in CSR order: old positions with dropped ones removed. */
  for (int64_t j = 0; j < k; ++j)
    old[dropped[j]] = UINT64_MAX;
  /* Merge kept (old, in order, skipping UINT64_MAX) and grown (sorted). */
  int64_t *src = p->dyn.order + 0; /* reused: new -> old index */
  int64_t i = 0, g = 0, w = 0;
  /* `dropped` aliases `src`; the drop marks are already applied. */
  while (w < nnz) {
    while (i < nnz && old[i] == UINT64_MAX)
      ++i;
    if (g < k && (i >= nnz || grown[g] < old[i])) {
      tmp[w] = grown[g++];
      src[w++] = -1;
    } else {
      tmp[w] = old[i];
      src[w++] = i++;
    }
  }
  /* New structure. */
  int64_t r = 0;
  p->positions[0] = 0;
  for (int64_t e = 0; e < nnz; ++e) {
    const int64_t row = (int64_t)(tmp[e] / (uint64_t)cols);
    while (r < row)
      p->positions[++r] = (int32_t)e;
    p->dyn.coords[e] = (int32_t)(tmp[e] % (uint64_t)cols);
  }
  while (r < rows)
    p->positions[++r] = (int32_t)nnz;
  memcpy(p->coordinates, p->dyn.coords, (size_t)nnz * sizeof(int32_t));
  /* Values, optimizer state (per-value arrays), and the gradient (so that
   * sparsec_param_grad still matches the pattern). */
  sparsec__permute(p, p->values, src, 0.0f);
  sparsec__permute(p, p->grad, src, 0.0f);
  for (int s = 0; s < SPARSEC_NSTATE; ++s)
    if (p->state[s] && !(s == SPARSEC_ST_SUM && m->opt.kind == SPARSEC_OPT_ROWWISE_ADAGRAD))
      sparsec__permute(p, p->state[s], src, sparsec__state_init(&m->opt, s));
}
