/*===- device_rows.c - Embedding rows of models on a CUDA device ---*- C -*-===*
 *
 * What a device model (device.c) does to the rows of its embedding tables
 * around the kernels, the device twin of optim_sparse.c's catch-up and
 * embedding.c's max_norm and scale_grad_by_freq:
 *
 *  - catch-up (sparse = catchup): the host, which holds the ids and each
 *    row's last_step, picks the batch's rows that are behind, computes each
 *    one's map (sparsec__catchup_coef_of: 2x2 matrix powers in double) and
 *    uploads rows and maps; the device snapshots the rows (values and
 *    state) and applies the maps (optim.cu sparsec_cuda_catchup, the
 *    per-value code of optim_elem.h that the CPU runs too);
 *  - max_norm: the batch's distinct rows snapshotted and renormed on the
 *    device (the norm in the CPU's order, so the same factor);
 *  - scale_grad_by_freq: per gradient row, 1 / its id's count (host) times
 *    the row on the device.
 *
 * A call that fails after them restores the snapshots (and the host's
 * last_step and momentum flags), so it changes nothing. With a library
 * whose CUDA functions are emulated on the host, the same host logic runs
 * and each kernel is the loop below over host memory.
 *===----------------------------------------------------------------------===*/
#include "device_internal.h"

#include <stdlib.h>
#include <string.h>

/*===-- The kernels, or their loops on host memory (emulated) ----------------===*/

/* The values and per-value states of table `p` on the device, with the
 * floats of one row of each; `with_state` 0: the values only. */
static sparsec__row_arrays row_arrays(const sparsec_model *m, const sparsec__param *p,
                                      const sparsec__dev_param *q, int with_state, int64_t *width) {
  sparsec__row_arrays r;
  memset(&r, 0, sizeof(r));
  const int64_t dim = p->desc.dims[1];
  r.a[0] = q->values;
  r.width[0] = dim;
  *width = dim;
  for (int k = 0; with_state && k < SPARSEC_NSTATE; ++k) {
    if (!q->state[k])
      continue;
    r.a[1 + k] = q->state[k];
    r.width[1 + k] = k == SPARSEC_ST_SUM && m->opt.kind == SPARSEC_OPT_ROWWISE_ADAGRAD ? 1 : dim;
    *width += r.width[1 + k];
  }
  return r;
}

static int snapshot(sparsec__device *d, const sparsec__row_arrays *r, const sparsec__dev_buf *rows,
                    int64_t n, float *save, int64_t width, int restore) {
  if (!d->k.emulated)
    return sparsec__cuda_row_snapshot(r, sparsec__dptr(rows->p), n, sparsec__dptr(save), width,
                                      restore);
  const int32_t *ids = (const int32_t *)rows->p;
  for (int64_t b = 0; b < n; ++b) {
    float *buf = save + b * width;
    for (int k = 0; k < 1 + SPARSEC_NSTATE; ++k) {
      const int64_t w = r->width[k];
      if (w == 0)
        continue;
      float *a = r->a[k] + (int64_t)ids[b] * w;
      memcpy(restore ? a : buf, restore ? buf : a, sparsec__floats(w));
      buf += w;
    }
  }
  return SPARSEC_OK;
}

static int catchup(sparsec__device *d, const sparsec__row_arrays *r, const sparsec__dev_param *q,
                   int64_t n, int64_t dim) {
  if (!d->k.emulated)
    return sparsec__cuda_catchup(r, sparsec__dptr(q->cu_rows.p), n, sparsec__dptr(q->cu_coef.p),
                                 dim);
  const int32_t *ids = (const int32_t *)q->cu_rows.p;
  const sparsec__catchup_coef *coef = (const sparsec__catchup_coef *)q->cu_coef.p;
  for (int64_t b = 0; b < n; ++b) {
    const int64_t at = (int64_t)ids[b] * dim;
    float *s[SPARSEC_NSTATE];
    for (int k = 0; k < SPARSEC_NSTATE; ++k)
      s[k] = r->a[1 + k] ? r->a[1 + k] + at : NULL;
    for (int64_t c = 0; c < dim; ++c)
      sparsec__catchup_elem(&coef[b], r->a[0] + at, s, c);
  }
  return SPARSEC_OK;
}

static int renorm(sparsec__device *d, const sparsec__param *p, const sparsec__dev_param *q,
                  int64_t n) {
  const int64_t dim = p->desc.dims[1];
  if (!d->k.emulated)
    return sparsec__cuda_renorm(sparsec__dptr(q->values), sparsec__dptr(q->rn_rows.p), n, dim,
                                p->desc.max_norm, p->desc.norm_type);
  const int32_t *ids = (const int32_t *)q->rn_rows.p;
  for (int64_t b = 0; b < n; ++b) {
    float *row = q->values + (int64_t)ids[b] * dim;
    const float scale =
        sparsec__renorm_scale(sparsec__row_norm(row, dim, p->desc.norm_type), p->desc.max_norm);
    for (int64_t c = 0; scale != 1.0f && c < dim; ++c)
      row[c] = row[c] * scale;
  }
  return SPARSEC_OK;
}

static int scale_rows(sparsec__device *d, float *grad, const sparsec__dev_buf *scale, int64_t n,
                      int64_t dim) {
  if (!d->k.emulated)
    return sparsec__cuda_scale_rows(sparsec__dptr(grad), sparsec__dptr(scale->p), n, dim);
  const float *s = (const float *)scale->p;
  for (int64_t i = 0; i < n * dim; ++i)
    grad[i] = grad[i] * s[i / dim];
  return SPARSEC_OK;
}

/*===-- Catch-up --------------------------------------------------------------===*/

/* Brings the `n` rows `ids` of `p` up to date (their maps in `coef`) on
 * the device, snapshotting them first when `save`. */
static int catchup_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q,
                        const int32_t *ids, const sparsec__catchup_coef *coef, int64_t n,
                        int save) {
  sparsec__device *d = m->dev;
  if (n == 0 || coef[0].mode == SPARSEC_CU_NONE)
    return SPARSEC_OK; /* the kind's state does not move (Adagrad) */
  int64_t width;
  const sparsec__row_arrays r = row_arrays(m, p, q, 1, &width);
  const char *what = "catching up embedding rows on the CUDA device";
  int rc = sparsec__dev_upload(d, &q->cu_rows, ids, (size_t)n * sizeof(int32_t), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_upload(d, &q->cu_coef, coef, (size_t)n * sizeof(*coef), what);
  if (rc == SPARSEC_OK && save)
    rc = sparsec__dev_reserve(d, &q->cu_save.p, &q->cu_save.cap, sparsec__floats(n * width), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_status(d, what);
  if (rc == SPARSEC_OK && save)
    rc = snapshot(d, &r, &q->cu_rows, n, (float *)q->cu_save.p, width, 0);
  if (rc == SPARSEC_OK)
    q->cu_saved = save ? n : 0;
  if (rc == SPARSEC_OK)
    rc = catchup(d, &r, q, n, p->desc.dims[1]);
  return rc;
}

/* Logs row `r` of `p` in `u` (ids, last_step, momentum flag), computes
 * its map to step `T` and marks it up to date on the host. */
static void take_row(sparsec__param *p, sparsec__undo *u, const sparsec__opt *o, int64_t r,
                     int64_t T, sparsec__catchup_coef *coef) {
  const int init = p->mom_row_init ? p->mom_row_init[r] : 0;
  u->ids[u->n] = (int32_t)r;
  u->last[u->n] = p->last_step[r];
  u->init[u->n] = (uint8_t)init;
  sparsec__catchup_coef_of(o, T - p->last_step[r], init, &coef[u->n]);
  p->last_step[r] = T;
  if (p->mom_row_init)
    p->mom_row_init[r] = 1;
  ++u->n;
}

/* Undoes take_row for every row logged in `u` (host side). */
static void untake_rows(sparsec__param *p, sparsec__undo *u) {
  for (int64_t j = u->n - 1; j >= 0; --j) {
    p->last_step[u->ids[j]] = u->last[j];
    if (p->mom_row_init)
      p->mom_row_init[u->ids[j]] = u->init[j];
  }
  u->n = 0;
}

static sparsec__opt catchup_opt(const sparsec_model *m) {
  return sparsec__opt_make(&m->opt, sparsec__scheduled_lr(&m->opt, m->lr, m->step), m->step + 1);
}

int sparsec__device_catchup_batch(sparsec_model *m, int64_t batch, const void *const *inputs) {
  const sparsec__opt o = catchup_opt(m);
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &m->dev->params[i];
    p->undo.n = 0;
    q->cu_saved = 0;
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING || !p->last_step)
      continue;
    const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
    const void *ids = inputs[p->desc.ids_input];
    const int64_t n = sparsec__input_numel(in, batch);
    sparsec__catchup_coef *coef =
        (sparsec__catchup_coef *)malloc((size_t)(n > 0 ? n : 1) * sizeof(*coef));
    if (!coef)
      return sparsec__fail(SPARSEC_ERR_NOMEM, "train_step: cannot allocate the catch-up of '%s'",
                           p->desc.name);
    for (int64_t e = 0; e < n; ++e) {
      const int64_t r = sparsec__id_at(in, ids, e);
      if (p->last_step[r] < m->step && r != p->desc.padding_idx)
        take_row(p, &p->undo, &o, r, m->step, coef);
    }
    int rc = catchup_rows(m, p, q, p->undo.ids, coef, p->undo.n, 1);
    free(coef);
    if (rc != SPARSEC_OK)
      return rc; /* the caller undoes what was done */
  }
  return SPARSEC_OK;
}

int sparsec__device_catch_up(sparsec_model *m) {
  int rc = sparsec__dev_ensure(m);
  const sparsec__opt o = catchup_opt(m);
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING || !p->last_step)
      continue;
    const size_t rows = (size_t)p->desc.dims[0];
    sparsec__undo u;
    memset(&u, 0, sizeof(u));
    sparsec__catchup_coef *coef = (sparsec__catchup_coef *)malloc(rows * sizeof(*coef));
    u.ids = (int32_t *)malloc(rows * sizeof(int32_t));
    u.last = (int64_t *)malloc(rows * sizeof(int64_t));
    u.init = (uint8_t *)malloc(rows);
    if (coef && u.ids && u.last && u.init) {
      for (int64_t r = 0; r < (int64_t)rows; ++r)
        if (p->last_step[r] < m->step && r != p->desc.padding_idx)
          take_row(p, &u, &o, r, m->step, coef);
      m->dev->host_stale |= SPARSEC_DEV_VALUES | SPARSEC_DEV_STATE;
      rc = catchup_rows(m, p, &m->dev->params[i], u.ids, coef, u.n, 0);
      if (rc != SPARSEC_OK)
        untake_rows(p, &u); /* the device rows are undefined; the host says behind */
    } else {
      rc = sparsec__fail(SPARSEC_ERR_NOMEM, "catch_up: cannot allocate the rows of '%s'",
                         p->desc.name);
    }
    free(coef);
    free(u.ids);
    free(u.last);
    free(u.init);
  }
  return rc;
}

/*===-- max_norm --------------------------------------------------------------===*/

int sparsec__device_renorm_batch(sparsec_model *m, int64_t batch, const void *const *inputs,
                                 int with_targets) {
  sparsec__device *d = m->dev;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    q->rn_n = 0;
    if (!sparsec__renorms(p))
      continue;
    /* The batch's distinct rows (the log's ids, reserved for the batch). */
    const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
    const void *ids = sparsec__call_input(m, p->desc.ids_input, inputs, with_targets);
    const int64_t n = sparsec__input_numel(in, batch), dim = p->desc.dims[1];
    int64_t rows = 0;
    for (int64_t e = 0; e < n; ++e) {
      const int64_t r = sparsec__id_at(in, ids, e);
      if (!p->row_count[r]++)
        p->renorm.ids[rows++] = (int32_t)r;
    }
    for (int64_t e = 0; e < n; ++e)
      p->row_count[sparsec__id_at(in, ids, e)] = 0;
    const char *what = "max_norm on the CUDA device";
    int64_t width;
    const sparsec__row_arrays r = row_arrays(m, p, q, 0, &width);
    d->host_stale |= SPARSEC_DEV_VALUES;
    int rc =
        sparsec__dev_upload(d, &q->rn_rows, p->renorm.ids, (size_t)rows * sizeof(int32_t), what);
    if (rc == SPARSEC_OK)
      rc = sparsec__dev_reserve(d, &q->rn_save.p, &q->rn_save.cap, sparsec__floats(rows * dim),
                                what);
    if (rc == SPARSEC_OK)
      rc = sparsec__dev_status(d, what);
    if (rc == SPARSEC_OK)
      rc = snapshot(d, &r, &q->rn_rows, rows, (float *)q->rn_save.p, width, 0);
    if (rc == SPARSEC_OK)
      q->rn_n = rows;
    if (rc == SPARSEC_OK)
      rc = renorm(d, p, q, rows);
    if (rc != SPARSEC_OK)
      return rc;
  }
  return SPARSEC_OK;
}

/*===-- Undo ------------------------------------------------------------------===*/

void sparsec__device_rows_undo(sparsec_model *m) {
  sparsec__device *d = m->dev;
  /* In reverse: the renorm read the caught-up rows. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    int64_t width;
    if (q->rn_n > 0) {
      const sparsec__row_arrays r = row_arrays(m, p, q, 0, &width);
      (void)snapshot(d, &r, &q->rn_rows, q->rn_n, (float *)q->rn_save.p, width, 1);
    }
    q->rn_n = 0;
    if (q->cu_saved > 0) {
      const sparsec__row_arrays r = row_arrays(m, p, q, 1, &width);
      (void)snapshot(d, &r, &q->cu_rows, q->cu_saved, (float *)q->cu_save.p, width, 1);
    }
    q->cu_saved = 0;
    if (p->last_step)
      untake_rows(p, &p->undo);
  }
}

/*===-- Gradient rows ---------------------------------------------------------===*/

int sparsec__device_prepare_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q,
                                 int64_t n) {
  sparsec__device *d = m->dev;
  const int64_t dim = p->desc.dims[1];
  const int32_t *ids = p->grad_ids;
  /* The padding row's gradient rows read 0, as on the CPU (param_grad);
   * every step skips that row anyway. */
  if (p->desc.padding_idx >= 0)
    for (int64_t r = 0; r < n; ++r)
      if (ids[r] == p->desc.padding_idx)
        sparsec__dev_zero(d, q->grad + r * dim, dim);
  if (!p->desc.scale_grad_by_freq || n == 0)
    return SPARSEC_OK;
  float *scale = (float *)malloc(sparsec__floats(n));
  if (!scale)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "train_step: cannot allocate the row scales of '%s'",
                         p->desc.name);
  for (int64_t i = 0; i < n; ++i)
    ++p->row_count[ids[i]];
  /* PyTorch adds grad[i] * (1.0 / count) with the factor cast to float. */
  for (int64_t i = 0; i < n; ++i)
    scale[i] = (float)(1.0 / (double)p->row_count[ids[i]]);
  for (int64_t i = 0; i < n; ++i)
    p->row_count[ids[i]] = 0;
  const char *what = "scale_grad_by_freq on the CUDA device";
  int rc = sparsec__dev_upload(d, &q->freq, scale, sparsec__floats(n), what);
  free(scale);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_status(d, what);
  return rc == SPARSEC_OK ? scale_rows(d, q->grad, &q->freq, n, dim) : rc;
}
