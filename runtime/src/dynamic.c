/*===- dynamic.c - Dynamic sparsity of CSR weights (SET, RigL) -----*- C -*-===*
 *
 * A CSR parameter with `dynamic = SPARSEC_DYNAMIC_SET` or `_RIGL` changes its
 * pattern during training (Mocanu et al.'s SET, Evci et al.'s RigL, both on
 * RigL's schedule): after the optimizer step of every step t with
 * t % delta_t == 0 and t <= t_end,
 *
 *   f = drop_fraction * (1 + cos(pi * t / t_end)) / 2,  k = floor(f * nnz)
 *
 * the k stored weights of smallest |w| are dropped (ties: the earlier
 * position) and k connections are grown among the positions that were not
 * stored before the update (so the dropped and grown sets are disjoint):
 * SET draws them uniformly at random; RigL takes the k of largest
 * |dL/dW| (ties: the earlier position), the dense gradient of this step's
 * batch, which the compiled score kernel computes from the layer input and
 * output gradient the train kernel captured, a chunk of whole rows at a
 * time (at most max(max_size, in) values), so no out x in matrix is ever
 * formed; a min-heap keeps the k best candidates. nnz is constant. Kept weights keep their values
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
  if (d->dynamic == SPARSEC_DYNAMIC_NONE || t <= 0 || t % d->delta_t != 0 || t > d->t_end)
    return 0;
  const double f =
      d->drop_fraction * (1.0 + cos(SPARSEC_PI * (double)t / (double)d->t_end)) / 2.0;
  return (int64_t)floor(f * (double)nnz);
}

int sparsec__dynamic_alloc(sparsec__param *p) {
  if (p->desc.dynamic == SPARSEC_DYNAMIC_NONE)
    return 0;
  const size_t n = (size_t)(p->nnz > 0 ? p->nnz : 1);
  /* Linear positions (2 x nnz: old pattern + draws), a permutation, and one
   * float scratch array per moved array. */
  p->dyn.lin = (uint64_t *)sparsec__malloc(3 * n * sizeof(uint64_t));
  p->dyn.order = (int64_t *)sparsec__malloc(n * sizeof(int64_t));
  p->dyn.scratch = (float *)sparsec__malloc(n * sizeof(float));
  p->dyn.coords = (int32_t *)sparsec__malloc(n * sizeof(int32_t));
  if (!p->dyn.lin || !p->dyn.order || !p->dyn.scratch || !p->dyn.coords)
    return -1;
  if (p->desc.dynamic != SPARSEC_DYNAMIC_RIGL)
    return 0;
  const int64_t rows = p->desc.dims[0], in = p->desc.dims[1];
  int64_t chunk = p->desc.max_size / in;
  p->dyn.chunk_rows = chunk < 1 ? 1 : chunk > rows ? rows : chunk;
  p->dyn.heap_score = (float *)sparsec__malloc(n * sizeof(float));
  p->dyn.heap_lin = (uint64_t *)sparsec__malloc(n * sizeof(uint64_t));
  p->dyn.chunk = (float *)sparsec__alloc_array(p->dyn.chunk_rows * in, sizeof(float));
  return p->dyn.heap_score && p->dyn.heap_lin && p->dyn.chunk ? 0 : -1;
}

void sparsec__dynamic_free(sparsec__param *p) {
  free(p->dyn.lin);
  free(p->dyn.order);
  free(p->dyn.scratch);
  free(p->dyn.coords);
  free(p->dyn.heap_score);
  free(p->dyn.heap_lin);
  free(p->dyn.chunk);
  free(p->dyn.cap_x);
  free(p->dyn.cap_dy);
  memset(&p->dyn, 0, sizeof(p->dyn));
}

int sparsec__dynamic_reserve(sparsec__param *p, int64_t batch) {
  if (p->desc.dynamic != SPARSEC_DYNAMIC_RIGL || batch <= p->dyn.cap_rows)
    return 0;
  int64_t nx, ndy;
  if (sparsec__mul_i64(batch, p->desc.dims[1], &nx) != 0 ||
      sparsec__mul_i64(batch, p->desc.dims[0], &ndy) != 0)
    return -1;
  float *x = (float *)sparsec__alloc_array(nx, sizeof(float));
  float *dy = (float *)sparsec__alloc_array(ndy, sizeof(float));
  if (!x || !dy) {
    free(x);
    free(dy);
    return -1;
  }
  free(p->dyn.cap_x);
  free(p->dyn.cap_dy);
  p->dyn.cap_x = x;
  p->dyn.cap_dy = dy;
  p->dyn.cap_rows = batch;
  return 0;
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

/* The growth heap: the worst kept candidate at the root (lowest score;
 * among equal scores the later position). */
static int sparsec__heap_worse(const sparsec__param *p, int64_t a, int64_t b) {
  const float sa = p->dyn.heap_score[a], sb = p->dyn.heap_score[b];
  return sa < sb || (sa == sb && p->dyn.heap_lin[a] > p->dyn.heap_lin[b]);
}

static void sparsec__heap_swap(sparsec__param *p, int64_t a, int64_t b) {
  const float s = p->dyn.heap_score[a];
  const uint64_t lin = p->dyn.heap_lin[a];
  p->dyn.heap_score[a] = p->dyn.heap_score[b];
  p->dyn.heap_lin[a] = p->dyn.heap_lin[b];
  p->dyn.heap_score[b] = s;
  p->dyn.heap_lin[b] = lin;
}

static void sparsec__heap_sift_down(sparsec__param *p, int64_t n, int64_t i) {
  for (;;) {
    int64_t w = i, l = 2 * i + 1, r = l + 1;
    if (l < n && sparsec__heap_worse(p, l, w))
      w = l;
    if (r < n && sparsec__heap_worse(p, r, w))
      w = r;
    if (w == i)
      return;
    sparsec__heap_swap(p, i, w);
    i = w;
  }
}

static void sparsec__heap_sift_up(sparsec__param *p, int64_t i) {
  while (i > 0 && sparsec__heap_worse(p, i, (i - 1) / 2)) {
    sparsec__heap_swap(p, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

/* RigL growth: the k positions outside the current pattern with the largest
 * |gradient| (NaN counts as -1, below every real score), ascending, into
 * `out`. Scans the scores chunk by chunk in position order, so a later
 * candidate replaces the root only with a strictly larger score. */
static int sparsec__grow_by_score(sparsec__param *p, int64_t k, uint64_t *out, uint64_t *tmp) {
  const int64_t rows = p->desc.dims[0], cols = p->desc.dims[1];
  int64_t n = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += p->dyn.chunk_rows) {
    const int64_t nr = rows - r0 < p->dyn.chunk_rows ? rows - r0 : p->dyn.chunk_rows;
    if (p->desc.score(p->dyn.cap_x, p->dyn.cap_dy, p->dyn.cap_batch, r0, nr, p->dyn.chunk) != 0)
      return -1;
    for (int64_t r = r0; r < r0 + nr; ++r) {
      const float *s = p->dyn.chunk + (r - r0) * cols;
      int32_t e = p->positions[r], end = p->positions[r + 1];
      for (int64_t c = 0; c < cols; ++c) {
        if (e < end && p->coordinates[e] == c) {
          ++e; /* stored: not a candidate */
          continue;
        }
        float a = fabsf(s[c]);
        if (a != a)
          a = -1.0f;
        const uint64_t lin = (uint64_t)r * (uint64_t)cols + (uint64_t)c;
        if (n < k) {
          p->dyn.heap_score[n] = a;
          p->dyn.heap_lin[n] = lin;
          sparsec__heap_sift_up(p, n++);
        } else if (a > p->dyn.heap_score[0]) {
          p->dyn.heap_score[0] = a;
          p->dyn.heap_lin[0] = lin;
          sparsec__heap_sift_down(p, n, 0);
        }
      }
    }
  }
  memcpy(out, p->dyn.heap_lin, (size_t)n * sizeof(uint64_t));
  sparsec__radix_sort_u64(out, tmp, n);
  return 0;
}

/* Rebuilds array `a` (nnz floats) in the new order: `src[i]` is the old
 * index of new entry i, or -1 for a grown entry (value `grown`). */
static void sparsec__permute(sparsec__param *p, float *a, const int64_t *src, float grown) {
  for (int64_t i = 0; i < p->nnz; ++i)
    p->dyn.scratch[i] = src[i] < 0 ? grown : a[src[i]];
  memcpy(a, p->dyn.scratch, (size_t)p->nnz * sizeof(float));
}

int sparsec__dynamic_update(sparsec_model *m, sparsec__param *p, int64_t t) {
  const int64_t nnz = p->nnz, rows = p->desc.dims[0], cols = p->desc.dims[1];
  const uint64_t total = (uint64_t)rows * (uint64_t)cols;
  int64_t k = sparsec__dynamic_count(&p->desc, nnz, t);
  if (k > (int64_t)(total - (uint64_t)nnz))
    k = (int64_t)(total - (uint64_t)nnz); /* not enough free positions */
  if (k <= 0)
    return 0;
  uint64_t *old = p->dyn.lin, *grown = p->dyn.lin + nnz, *tmp = p->dyn.lin + 2 * nnz;
  /* Drop: mark the k smallest (dropped entries get key UINT64_MAX). */
  sparsec__sort_by_magnitude(p);
  int64_t *dropped = p->dyn.order; /* first k entries: dropped indices */
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t i = p->positions[r]; i < p->positions[r + 1]; ++i)
      old[i] = (uint64_t)r * (uint64_t)cols + (uint64_t)p->coordinates[i];
  if (p->desc.dynamic == SPARSEC_DYNAMIC_RIGL) {
    if (sparsec__grow_by_score(p, k, grown, tmp) != 0)
      return -1; /* nothing changed yet */
  } else {
    sparsec__rng rng;
    sparsec__rng_seed(&rng, m->seed ^ (uint64_t)t * 0x9E3779B97F4A7C15ull,
                      sparsec__hash_name(p->desc.name));
    sparsec__draw_new(&rng, total, old, nnz, k, grown, tmp);
  }
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
  return 0;
}
