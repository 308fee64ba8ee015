/*===- optim_sparse.c - Embedding rows: lazy and catch-up steps ----*- C -*-===*
 *
 * An embedding table's gradient is row-sparse (one row per id of the
 * batch). SPARSE_DENSE tables are stepped like dense parameters on the
 * densified gradient (optim.c); this file holds the two row-wise modes:
 *
 *  - lazy: only the rows of the batch change (PyTorch's sparse SGD and
 *    Adagrad, SparseAdam's arithmetic for Adam/AdamW);
 *  - catch-up: each row remembers the step it is up to date with
 *    (`last_step`). Before the kernel reads a batch, train_step applies
 *    every skipped step of the batch's rows in closed form (logging the
 *    old bytes so that a failed step can be undone); the step itself is
 *    then the dense optimizer's on those rows.
 *
 * docs/optimizers.md has the formulas and what is exact.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void sparsec__mat2_pow(const double a[4], int64_t k, double out[4]) {
  double r[4] = {1.0, 0.0, 0.0, 1.0}, b[4] = {a[0], a[1], a[2], a[3]}, t[4];
  while (k > 0) {
    if (k & 1) {
      t[0] = r[0] * b[0] + r[1] * b[2];
      t[1] = r[0] * b[1] + r[1] * b[3];
      t[2] = r[2] * b[0] + r[3] * b[2];
      t[3] = r[2] * b[1] + r[3] * b[3];
      memcpy(r, t, sizeof(r));
    }
    k >>= 1;
    if (k > 0) {
      t[0] = b[0] * b[0] + b[1] * b[2];
      t[1] = b[0] * b[1] + b[1] * b[3];
      t[2] = b[2] * b[0] + b[3] * b[2];
      t[3] = b[2] * b[1] + b[3] * b[3];
      memcpy(b, t, sizeof(b));
    }
  }
  memcpy(out, r, sizeof(r));
}

static int sparsec__rowwise(const sparsec_optimizer_desc *d) {
  return d->kind == SPARSEC_OPT_ROWWISE_ADAGRAD;
}

/* Row `r` of table `p` and its state; `grad` is the row's gradient. */
static sparsec__span sparsec__row_span(const sparsec_optimizer_desc *d, const sparsec__param *p,
                                       int64_t r, const float *grad) {
  const size_t dim = (size_t)p->desc.dims[1], at = (size_t)r * dim;
  sparsec__span s;
  memset(&s, 0, sizeof(s));
  s.p = p->values + at;
  s.g = grad;
  s.n = (int64_t)dim;
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    if (p->state[k])
      s.s[k] = p->state[k] + at;
  if (sparsec__rowwise(d)) {
    s.s[SPARSEC_ST_SUM] = NULL;
    s.row_sum = p->state[SPARSEC_ST_SUM] + r;
  }
  return s;
}

void sparsec__opt_rows(const sparsec__opt *o, sparsec__param *p, const sparsec__coo_grad *g,
                       int catchup) {
  const int64_t dim = g->dim;
  if (!g->coalesced) {
    /* Plain lazy SGD: PyTorch adds the uncoalesced gradient, in batch order. */
    const float neg_lr = o->maximize ? -o->neg_lr : o->neg_lr;
    for (int64_t i = 0; i < g->n; ++i) {
      if (g->ids[i] == p->desc.padding_idx)
        continue;
      float *v = p->values + (size_t)g->ids[i] * (size_t)dim;
      const float *r = g->rows + (size_t)i * (size_t)dim;
      for (int64_t c = 0; c < dim; ++c)
        v[c] = v[c] + neg_lr * r[c];
    }
    return;
  }
  for (int64_t i = 0; i < g->n; ++i) {
    const int32_t id = g->ids[i];
    if (id == p->desc.padding_idx)
      continue; /* dropped: the padding row never steps */
    const sparsec__span s = sparsec__row_span(o->d, p, id, g->rows + (size_t)i * (size_t)dim);
    sparsec__opt_span(o, &s, p->mom_row_init ? p->mom_row_init[id] : 0, !catchup);
    if (p->mom_row_init)
      p->mom_row_init[id] = 1;
    if (catchup)
      p->last_step[id] = o->step;
  }
}

/*===-- Catch-up --------------------------------------------------------------===*/

/* Brings row `r` up to date with step `T` (steps last_step + 1 .. T); the
 * padding row never moves. */
static void sparsec__catchup_row(const sparsec__opt *o, sparsec__param *p, int64_t r, int64_t T) {
  const int64_t k = T - p->last_step[r];
  if (k <= 0 || r == p->desc.padding_idx)
    return;
  const sparsec__span s = sparsec__row_span(o->d, p, r, NULL);
  sparsec__opt_catchup(o, &s, k, p->mom_row_init ? p->mom_row_init[r] : 0);
  if (p->mom_row_init)
    p->mom_row_init[r] = 1;
  p->last_step[r] = T;
}

/* The hyper-parameters a catch-up at step count T uses: those of step T+1
 * (its scheduled lr and bias corrections). */
static sparsec__opt sparsec__catchup_opt(const sparsec_model *m) {
  return sparsec__opt_make(&m->opt, sparsec__scheduled_lr(&m->opt, m->lr, m->step), m->step + 1);
}

static int sparsec__is_catchup(const sparsec_model *m, const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_EMBEDDING && p->last_step;
}

/* Floats of one logged row: the values and every state of the row. */
static int64_t sparsec__undo_width(const sparsec_model *m, const sparsec__param *p) {
  int64_t w = p->desc.dims[1];
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    if (p->state[k])
      w += (k == SPARSEC_ST_SUM && sparsec__rowwise(&m->opt)) ? 1 : p->desc.dims[1];
  return w;
}

int sparsec__undo_reserve(const sparsec_model *m, sparsec__param *p, int64_t rows) {
  sparsec__undo *u = &p->undo;
  u->width = sparsec__undo_width(m, p);
  if (rows <= u->cap)
    return 0;
  int64_t vals;
  if (sparsec__mul_i64(rows, u->width, &vals) != 0 || (uint64_t)vals > SIZE_MAX / sizeof(float))
    return -1;
  int32_t *ids = (int32_t *)realloc(u->ids, (size_t)rows * sizeof(int32_t));
  if (ids)
    u->ids = ids;
  int64_t *last = (int64_t *)realloc(u->last, (size_t)rows * sizeof(int64_t));
  if (last)
    u->last = last;
  uint8_t *init = (uint8_t *)realloc(u->init, (size_t)rows);
  if (init)
    u->init = init;
  float *data = (float *)realloc(u->data, (size_t)vals * sizeof(float));
  if (data)
    u->data = data;
  if (!ids || !last || !init || !data)
    return -1;
  u->cap = rows;
  return 0;
}

/* Copies row `r`'s values and state to (save) or from (!save) `buf`. */
static void sparsec__row_copy(const sparsec_model *m, sparsec__param *p, int64_t r, float *buf,
                              int save) {
  const sparsec__span s = sparsec__row_span(&m->opt, p, r, NULL);
  float *parts[SPARSEC_NSTATE + 2];
  int64_t lens[SPARSEC_NSTATE + 2];
  int n = 0;
  parts[n] = s.p;
  lens[n++] = s.n;
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    if (s.s[k]) {
      parts[n] = s.s[k];
      lens[n++] = s.n;
    }
  if (s.row_sum) {
    parts[n] = s.row_sum;
    lens[n++] = 1;
  }
  for (int i = 0; i < n; ++i) {
    if (save)
      memcpy(buf, parts[i], (size_t)lens[i] * sizeof(float));
    else
      memcpy(parts[i], buf, (size_t)lens[i] * sizeof(float));
    buf += lens[i];
  }
}

void sparsec__catchup_batch(sparsec_model *m, int64_t batch, const void *const *inputs) {
  const sparsec__opt o = sparsec__catchup_opt(m);
  const int64_t T = m->step;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__is_catchup(m, p))
      continue;
    sparsec__undo *u = &p->undo;
    u->n = 0;
    const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
    const void *ids = inputs[p->desc.ids_input];
    const int64_t n = sparsec__input_numel(in, batch);
    for (int64_t e = 0; e < n; ++e) {
      const int64_t r = sparsec__id_at(in, ids, e);
      if (p->last_step[r] >= T || r == p->desc.padding_idx)
        continue; /* up to date (or already caught up for this batch) */
      u->ids[u->n] = (int32_t)r;
      u->last[u->n] = p->last_step[r];
      u->init[u->n] = p->mom_row_init ? p->mom_row_init[r] : 0;
      sparsec__row_copy(m, p, r, u->data + (size_t)u->n * (size_t)u->width, 1);
      ++u->n;
      sparsec__catchup_row(&o, p, r, T);
    }
  }
}

void sparsec__catchup_undo(sparsec_model *m) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__is_catchup(m, p))
      continue;
    sparsec__undo *u = &p->undo;
    for (int64_t j = u->n - 1; j >= 0; --j) {
      const int64_t r = u->ids[j];
      sparsec__row_copy(m, p, r, u->data + (size_t)j * (size_t)u->width, 0);
      p->last_step[r] = u->last[j];
      if (p->mom_row_init)
        p->mom_row_init[r] = u->init[j];
    }
    u->n = 0;
  }
}

void sparsec__catchup_all(sparsec_model *m) {
  const sparsec__opt o = sparsec__catchup_opt(m);
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__is_catchup(m, p))
      continue;
    for (int64_t r = 0; r < p->desc.dims[0]; ++r)
      sparsec__catchup_row(&o, p, r, m->step);
  }
}

SPARSEC_API int sparsec_catch_up(sparsec_model *m) {
  sparsec__clear_error();
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NULL, "catch_up: model is NULL");
  if (m->dev)
    return sparsec__device_catch_up(m);
  sparsec__catchup_all(m);
  return SPARSEC_OK;
}
