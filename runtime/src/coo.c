/*===- coo.c - Coalescing of row-sparse (COO) gradients -----------*- C -*-===*
 *
 * An embedding lookup's gradient is one row per id of the batch, ids in
 * batch order and possibly repeated. Non-linear optimizer updates need each
 * row once with the sum of its contributions (PyTorch's `coalesce()`): a
 * stable LSD radix sort of the ids (11-bit digits, only as many passes as
 * the largest id needs, so small tables take one counting-sort pass)
 * followed by a segmented sum that adds duplicates in their batch order,
 * which makes the result deterministic.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define SPARSEC_COO_BITS 11
#define SPARSEC_COO_SIZE (1u << SPARSEC_COO_BITS)

static int sparsec__grow(void **p, int64_t count, size_t elem) {
  void *q = realloc(*p, (size_t)(count > 0 ? count : 1) * elem);
  if (!q)
    return -1;
  *p = q;
  return 0;
}

int sparsec__coo_reserve(sparsec__coo_workspace *ws, int64_t n, int64_t dim) {
  int64_t vals;
  /* Entries are indexed with 32-bit permutation indices. */
  if (n > (int64_t)UINT32_MAX || sparsec__mul_i64(n, dim, &vals) != 0 ||
      (uint64_t)vals > SIZE_MAX / sizeof(float))
    return -1;
  if (n > ws->cap_n) {
    for (int i = 0; i < 2; ++i) {
      if (sparsec__grow((void **)&ws->keys[i], n, sizeof(uint32_t)) != 0 ||
          sparsec__grow((void **)&ws->perm[i], n, sizeof(uint32_t)) != 0)
        return -1;
    }
    if (sparsec__grow((void **)&ws->out_ids, n, sizeof(int32_t)) != 0 ||
        sparsec__grow((void **)&ws->starts, n + 1, sizeof(uint32_t)) != 0)
      return -1;
    ws->cap_n = n;
  }
  if (vals > ws->cap_vals) {
    if (sparsec__grow((void **)&ws->out_rows, vals, sizeof(float)) != 0)
      return -1;
    ws->cap_vals = vals;
  }
  return 0;
}

void sparsec__coo_free(sparsec__coo_workspace *ws) {
  for (int i = 0; i < 2; ++i) {
    free(ws->keys[i]);
    free(ws->perm[i]);
  }
  free(ws->out_ids);
  free(ws->starts);
  free(ws->out_rows);
  memset(ws, 0, sizeof(*ws));
}

/* Stable LSD radix sort of (key, perm) pairs; returns the index (0 or 1) of
 * the workspace buffers holding the result. */
static int sparsec__sort_pairs(sparsec__coo_workspace *ws, int64_t n, uint32_t max_key) {
  int cur = 0;
  size_t count[SPARSEC_COO_SIZE];
  for (unsigned shift = 0; shift < 32 && (max_key >> shift) != 0; shift += SPARSEC_COO_BITS) {
    const uint32_t *ks = ws->keys[cur], *ps = ws->perm[cur];
    uint32_t *kd = ws->keys[cur ^ 1], *pd = ws->perm[cur ^ 1];
    memset(count, 0, sizeof(count));
    for (int64_t i = 0; i < n; ++i)
      ++count[(ks[i] >> shift) & (SPARSEC_COO_SIZE - 1)];
    size_t sum = 0;
    for (unsigned d = 0; d < SPARSEC_COO_SIZE; ++d) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i) {
      size_t at = count[(ks[i] >> shift) & (SPARSEC_COO_SIZE - 1)]++;
      kd[at] = ks[i];
      pd[at] = ps[i];
    }
    cur ^= 1;
  }
  return cur;
}

/* Whether the ids are strictly ascending (sorted, no duplicates); sets
 * *max_key to the largest. */
static int sparsec__ascending(const int32_t *ids, int64_t n, uint32_t *max_key) {
  int ascending = 1;
  *max_key = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0 && ids[i] <= ids[i - 1])
      ascending = 0;
    if ((uint32_t)ids[i] > *max_key)
      *max_key = (uint32_t)ids[i];
  }
  return ascending;
}

/* The order of `g`'s entries: radix-sorted by id when `sort` (ids at most
 * `max_key`), else the batch order; segments split where the id changes, or
 * at every entry with `singletons`. */
static sparsec__coo_order sparsec__order(const sparsec__coo_grad *g, sparsec__coo_workspace *ws,
                                         int sort, uint32_t max_key, int singletons) {
  const int64_t n = g->n;
  sparsec__coo_order o;
  for (int64_t i = 0; i < n; ++i) {
    ws->keys[0][i] = (uint32_t)g->ids[i];
    ws->perm[0][i] = (uint32_t)i;
  }
  const int cur = sort ? sparsec__sort_pairs(ws, n, max_key) : 0;
  o.perm = ws->perm[cur];
  o.keys = ws->keys[cur];
  o.segments = 0;
  for (int64_t i = 0; i < n; ++i)
    if (singletons || i == 0 || o.keys[i] != o.keys[i - 1])
      ws->starts[o.segments++] = (uint32_t)i;
  ws->starts[o.segments] = (uint32_t)n;
  o.starts = ws->starts;
  return o;
}

sparsec__coo_order sparsec__coo_sort(const sparsec__coo_grad *g, sparsec__coo_workspace *ws,
                                     int singletons) {
  uint32_t max_key = 0;
  const int sort = !singletons && !sparsec__ascending(g->ids, g->n, &max_key);
  return sparsec__order(g, ws, sort, max_key, singletons);
}

void sparsec__coo_coalesce(sparsec__coo_grad *g, int64_t bound, sparsec__coo_workspace *ws) {
  (void)bound; /* ids were validated against it; the sort uses the max */
  if (g->coalesced)
    return;
  const int64_t n = g->n, dim = g->dim;
  uint32_t max_key;
  if (sparsec__ascending(g->ids, n, &max_key)) {
    g->coalesced = 1;
    return;
  }
  /* Not ascending: sort (the scan above found max_key). */
  const sparsec__coo_order o = sparsec__order(g, ws, 1, max_key, 0);
  for (int64_t u = 0; u < o.segments; ++u) {
    float *dst = ws->out_rows + (size_t)u * (size_t)dim;
    ws->out_ids[u] = (int32_t)o.keys[o.starts[u]];
    memcpy(dst, g->rows + (size_t)o.perm[o.starts[u]] * (size_t)dim, (size_t)dim * sizeof(float));
    for (uint32_t i = o.starts[u] + 1; i < o.starts[u + 1]; ++i) {
      const float *src = g->rows + (size_t)o.perm[i] * (size_t)dim;
      for (int64_t d = 0; d < dim; ++d)
        dst[d] += src[d];
    }
  }
  g->n = o.segments;
  g->ids = ws->out_ids;
  g->rows = ws->out_rows;
  g->coalesced = 1;
}
