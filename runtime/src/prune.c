/*===- prune.c - Masks of masked_linear and pruning schedules ------*- C -*-===*
 *
 * A mask is a rank-2 SPARSEC_LAYOUT_BUFFER parameter with `mask_of` naming
 * the DENSE weight it multiplies inside the generated kernels (the weight
 * gradient is masked there too): masked_linear's [out, in], or
 * masked_conv2d's [out, in / groups * kh * kw] (the conv weight as a
 * matrix, so a row is an output channel and STRUCTURED pruning removes
 * whole channels). This file keeps the invariant that makes
 * every optimizer leave masked weights at exactly zero: wherever the mask
 * is 0, the weight and its per-value optimizer state are 0 (a zero gradient
 * then gives a zero update for SGD with momentum/Nesterov/weight decay,
 * Adagrad, RMSprop, Adam and AdamW alike). It holds after create (the mask
 * is drawn, then the weight zeroed where it is 0), after load (the weight
 * is zeroed where the loaded mask is 0) and after every pruning update.
 *
 * Pruning (runtime.h, sparsec_prune): after the optimizer step of a
 * pruning step t the target sparsity s_t (Zhu & Gupta's cubic schedule)
 * gives k = round(s_t * N) zeros, N the mask's numel (rows for STRUCTURED,
 * the summed numel of every global mask). Zeros only grow: if fewer than k
 * are zero, the active items (entries, or rows with a nonzero entry) of
 * smallest score (|w|, or the row's L1/L2 norm) are zeroed, ties to the
 * earlier item (mask order, then index). The k-th score is found by
 * bisection on the scores' float bits (32 counting passes), so an update
 * needs no memory and cannot fail.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sparsec__prune_target(const sparsec_param_desc *d, int64_t t, double *sparsity) {
  if (d->prune == SPARSEC_PRUNE_NONE || t < d->prune_begin || t > d->prune_end ||
      (t - d->prune_begin) % d->prune_every != 0)
    return 0;
  if (d->prune_end == d->prune_begin) {
    *sparsity = d->prune_final;
    return 1;
  }
  const double f = 1.0 - (double)(t - d->prune_begin) / (double)(d->prune_end - d->prune_begin);
  *sparsity = d->prune_final + (d->prune_initial - d->prune_final) * f * f * f;
  return 1;
}

int sparsec__validate_mask(const sparsec_model_desc *d, int32_t i) {
  const sparsec_param_desc *p = &d->params[i];
  if (p->mask_of == 0) {
    if (p->prune != SPARSEC_PRUNE_NONE || p->mask_ones != 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: parameter '%s' has prune %d and mask_ones %lld but is not a "
                           "mask (mask_of 0)",
                           p->name, (int)p->prune, (long long)p->mask_ones);
    return SPARSEC_OK;
  }
  const sparsec_param_desc *w =
      p->mask_of >= 1 && p->mask_of <= d->num_params ? &d->params[p->mask_of - 1] : NULL;
  if (p->layout != SPARSEC_LAYOUT_BUFFER || p->rank != 2 || !w || w == p ||
      w->layout != SPARSEC_LAYOUT_DENSE || w->rank != 2 || w->dims[0] != p->dims[0] ||
      w->dims[1] != p->dims[1])
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: mask '%s' has mask_of %d; expected a rank-2 BUFFER masking a "
                         "DENSE weight of the same shape",
                         p->name, p->mask_of);
  const int64_t numel = p->dims[0] * p->dims[1];
  if (p->mask_ones < 1 || p->mask_ones > numel ||
      (p->pattern != SPARSEC_PATTERN_RANDOM && p->pattern != SPARSEC_PATTERN_USER))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: mask '%s' has mask_ones %lld and pattern %d; expected 1..%lld "
                         "ones, RANDOM or USER",
                         p->name, (long long)p->mask_ones, (int)p->pattern, (long long)numel);
  if (p->prune == SPARSEC_PRUNE_NONE)
    return SPARSEC_OK;
  const int structured = p->prune == SPARSEC_PRUNE_STRUCTURED;
  if (p->prune < SPARSEC_PRUNE_NONE || p->prune > SPARSEC_PRUNE_STRUCTURED ||
      !(p->prune_final >= 0.0 && p->prune_final < 1.0) ||
      !(p->prune_initial >= 0.0 && p->prune_initial <= p->prune_final) || p->prune_begin < 1 ||
      p->prune_every < 1 || p->prune_end < p->prune_begin ||
      (p->prune_global != 0 && (p->prune_global != 1 || structured)) ||
      (structured ? (p->prune_norm != 1 && p->prune_norm != 2) : p->prune_norm > 2))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: mask '%s' has an invalid pruning schedule (prune %d, initial "
                         "%g, final %g, begin %lld, end %lld, every %lld, global %d, norm %d)",
                         p->name, (int)p->prune, p->prune_initial, p->prune_final,
                         (long long)p->prune_begin, (long long)p->prune_end,
                         (long long)p->prune_every, p->prune_global, p->prune_norm);
  /* Global masks are ranked together: one schedule for all of them. */
  for (int32_t j = 0; j < i && p->prune_global; ++j) {
    const sparsec_param_desc *q = &d->params[j];
    if (q->mask_of && q->prune_global &&
        (q->prune != p->prune || q->prune_initial != p->prune_initial ||
         q->prune_final != p->prune_final || q->prune_begin != p->prune_begin ||
         q->prune_end != p->prune_end || q->prune_every != p->prune_every))
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: global masks '%s' and '%s' have different schedules", q->name,
                           p->name);
  }
  return SPARSEC_OK;
}

/* The weight a mask multiplies. */
static sparsec__param *sparsec__masked_weight(sparsec_model *m, const sparsec__param *mask) {
  return &m->params[mask->desc.mask_of - 1];
}

/* Zeroes entry e of weight `w`: value and every per-value optimizer state
 * (reset to its initial value; row-wise Adagrad's per-row sum is kept). */
static void sparsec__zero_entry(sparsec_model *m, sparsec__param *w, int64_t e) {
  w->values[e] = 0.0f;
  for (int s = 0; s < SPARSEC_NSTATE; ++s)
    if (w->state[s] && !(s == SPARSEC_ST_SUM && m->opt.kind == SPARSEC_OPT_ROWWISE_ADAGRAD))
      w->state[s][e] = sparsec__state_init(&m->opt, s);
}

/* Zeroes the weight wherever its mask is 0 (values only: right after
 * create or load, where the state is fresh or was saved consistent). */
static void sparsec__apply_mask(sparsec_model *m, sparsec__param *mask) {
  sparsec__param *w = sparsec__masked_weight(m, mask);
  for (int64_t e = 0; e < mask->numel; ++e)
    if (mask->values[e] == 0.0f)
      w->values[e] = 0.0f;
}

int sparsec__masks_init(sparsec_model *m, uint64_t seed) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    const sparsec_param_desc *d = &p->desc;
    if (!d->mask_of)
      continue;
    const int64_t rows = d->dims[0], cols = d->dims[1];
    int32_t *pos = NULL, *crd = NULL;
    const int32_t *cpos = d->user_positions, *ccrd = d->user_coordinates;
    if (d->pattern != SPARSEC_PATTERN_USER) {
      sparsec__rng rng;
      /* A stream of its own: (seed, name, "mask"). */
      sparsec__rng_seed(&rng, seed ^ 0x6D61736Bull, sparsec__hash_name(d->name));
      pos = (int32_t *)sparsec__alloc_array(rows + 1, sizeof(int32_t));
      crd = (int32_t *)sparsec__alloc_array(d->mask_ones, sizeof(int32_t));
      if (!pos || !crd || sparsec__csr_sample(&rng, rows, cols, d->mask_ones, pos, crd) != 0) {
        free(pos);
        free(crd);
        return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the mask '%s'", d->name);
      }
      cpos = pos;
      ccrd = crd;
    }
    memset(p->values, 0, (size_t)p->numel * sizeof(float));
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t e = cpos[r]; e < cpos[r + 1]; ++e)
        p->values[r * cols + ccrd[e]] = 1.0f;
    free(pos);
    free(crd);
    sparsec__apply_mask(m, p);
  }
  return SPARSEC_OK;
}

void sparsec__masks_apply(sparsec_model *m) {
  for (int32_t i = 0; i < m->num_params; ++i)
    if (m->params[i].desc.mask_of)
      sparsec__apply_mask(m, &m->params[i]);
}

/*===-- One pruning update --------------------------------------------------===*/

/* A pruning group: one mask, or every global mask. */
typedef struct sparsec__prune_group {
  sparsec_model *m;
  int32_t leader; /* the mask whose schedule applies */
  int global;
  int rows; /* STRUCTURED: items are output rows */
  int norm; /* STRUCTURED: 1 or 2 */
} sparsec__prune_group;

static int sparsec__in_group(const sparsec__prune_group *g, int32_t i) {
  const sparsec_param_desc *d = &g->m->params[i].desc;
  return g->global ? d->mask_of && d->prune_global && d->prune != SPARSEC_PRUNE_NONE
                   : i == g->leader;
}

/* Non-negative float -> order-preserving key (NaN above +inf). */
static uint32_t sparsec__score_key(float a) {
  uint32_t bits;
  memcpy(&bits, &a, sizeof(bits));
  return bits;
}

/* Item `it` of mask `p` in the group: active (a nonzero mask entry) and
 * its score key. */
static int sparsec__item(const sparsec__prune_group *g, sparsec__param *p, int64_t it,
                         uint32_t *key) {
  const sparsec__param *w = sparsec__masked_weight(g->m, p);
  if (!g->rows) {
    *key = sparsec__score_key(fabsf(w->values[it]));
    return p->values[it] != 0.0f;
  }
  const int64_t cols = p->desc.dims[1];
  const float *mrow = p->values + it * cols, *wrow = w->values + it * cols;
  int active = 0;
  double s = 0.0;
  for (int64_t c = 0; c < cols; ++c) {
    active |= mrow[c] != 0.0f;
    s += g->norm == 1 ? fabs((double)wrow[c]) : (double)wrow[c] * wrow[c];
  }
  *key = sparsec__score_key((float)(g->norm == 1 ? s : sqrt(s)));
  return active;
}

static int64_t sparsec__items(const sparsec__prune_group *g, const sparsec__param *p) {
  return g->rows ? p->desc.dims[0] : p->numel;
}

/* Active items with key <= t (t = UINT32_MAX + 1 counts all); inactive
 * items are returned in `*zeros` when not NULL. */
static int64_t sparsec__count(const sparsec__prune_group *g, uint64_t t, int64_t *zeros) {
  int64_t n = 0, z = 0;
  for (int32_t i = 0; i < g->m->num_params; ++i) {
    if (!sparsec__in_group(g, i))
      continue;
    sparsec__param *p = &g->m->params[i];
    for (int64_t it = 0, e = sparsec__items(g, p); it < e; ++it) {
      uint32_t key;
      if (!sparsec__item(g, p, it, &key))
        ++z;
      else if (key <= t)
        ++n;
    }
  }
  if (zeros)
    *zeros = z;
  return n;
}

/* Zeroes item `it` of mask `p`: the mask, the weight and its state. */
static void sparsec__prune_item(const sparsec__prune_group *g, sparsec__param *p, int64_t it) {
  sparsec__param *w = sparsec__masked_weight(g->m, p);
  const int64_t n = g->rows ? p->desc.dims[1] : 1, e0 = g->rows ? it * n : it;
  for (int64_t e = e0; e < e0 + n; ++e) {
    p->values[e] = 0.0f;
    sparsec__zero_entry(g->m, w, e);
  }
}

static void sparsec__prune_group_to(const sparsec__prune_group *g, double sparsity) {
  int64_t total = 0;
  for (int32_t i = 0; i < g->m->num_params; ++i)
    if (sparsec__in_group(g, i))
      total += sparsec__items(g, &g->m->params[i]);
  const int64_t k = llround(sparsity * (double)total);
  int64_t zeros;
  const int64_t active = sparsec__count(g, (uint64_t)UINT32_MAX, &zeros);
  int64_t need = k - zeros;
  if (need <= 0 || active == 0)
    return;
  if (need > active)
    need = active;
  /* T: the smallest key with #(active, key <= T) >= need. */
  uint64_t lo = 0, hi = UINT32_MAX;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (sparsec__count(g, mid, NULL) >= need)
      hi = mid;
    else
      lo = mid + 1;
  }
  int64_t below = lo == 0 ? 0 : sparsec__count(g, lo - 1, NULL);
  int64_t ties = need - below; /* items with key == T to prune, in order */
  for (int32_t i = 0; i < g->m->num_params; ++i) {
    if (!sparsec__in_group(g, i))
      continue;
    sparsec__param *p = &g->m->params[i];
    for (int64_t it = 0, e = sparsec__items(g, p); it < e; ++it) {
      uint32_t key;
      if (!sparsec__item(g, p, it, &key) || key > lo)
        continue;
      if (key == lo) {
        if (ties <= 0)
          continue;
        --ties;
      }
      sparsec__prune_item(g, p, it);
    }
  }
}

void sparsec__prune_step(sparsec_model *m, int64_t t) {
  int global_done = 0;
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec_param_desc *d = &m->params[i].desc;
    double s;
    if (!d->mask_of || !sparsec__prune_target(d, t, &s))
      continue;
    if (d->prune_global && global_done)
      continue;
    sparsec__prune_group g = {m, i, d->prune_global != 0, d->prune == SPARSEC_PRUNE_STRUCTURED,
                              d->prune_norm};
    global_done |= g.global;
    sparsec__prune_group_to(&g, s);
  }
}
