/*===- device_step.c - The optimizer step of models on a CUDA device -*- C -*-===*
 *
 * After a device model's train kernel (device.c), optim.c's
 * sparsec__opt_step on the device copies:
 *
 *  1. embedding gradients (one row per id of the batch) put in the form
 *     their step reads: padding rows zeroed and scale_grad_by_freq applied
 *     (device_rows.c); sparse = dense: the rows added into the device's
 *     dense gradient; otherwise the ids sorted on the device
 *     (cuda_coalesce.c; SPARSEC_CUDA_SORT=host: on the host, where they
 *     are, and the order uploaded), the coalesced rows being sums the row
 *     kernel forms as it steps;
 *  2. clipping (torch.nn.utils.clip_grad_norm_): the norm over every
 *     gradient, embeddings by their coalesced rows, then each gradient
 *     scaled - a lazy table's coalesced rows by the row kernel, with the
 *     coefficient, so the sums are rounded as the CPU rounds them;
 *  3. the step of every parameter (runtime/cuda/optim.cu kernels).
 *
 * A library whose CUDA functions are emulated on the host runs the CPU's
 * own coalescing, densifying and steps on the device buffers (host memory).
 *===----------------------------------------------------------------------===*/
#include "device_internal.h"

#include <stdlib.h>
#include <string.h>

/* `p` with its arrays replaced by the device copies (emulated: host memory
 * the CPU's functions can work on). */
static sparsec__param device_view(const sparsec__param *p, const sparsec__dev_param *q) {
  sparsec__param view = *p;
  view.values = q->values;
  view.grad = q->grad;
  view.dense_grad = q->dense_grad;
  memcpy(view.state, q->state, sizeof(view.state));
  return view;
}

static int lazy_rows(const sparsec_model *m, const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_EMBEDDING && m->opt.sparse_mode != SPARSEC_SPARSE_DENSE;
}

/*===-- 1. Embedding gradients ------------------------------------------------===*/

/* sparse = dense: the batch's rows added into the zeroed dense gradient. */
static int densify(sparsec__device *d, sparsec__param *p, sparsec__dev_param *q, int64_t n) {
  if (d->k.emulated) {
    sparsec__param view = device_view(p, q);
    sparsec__densify(&view);
    return SPARSEC_OK;
  }
  sparsec__dev_zero(d, q->dense_grad, p->nnz);
  int rc = sparsec__dev_upload(d, &q->perm, p->grad_ids, (size_t)n * sizeof(int32_t),
                               "train_step: the ids on the CUDA device");
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_status(d, "train_step: the ids on the CUDA device");
  return rc == SPARSEC_OK
             ? sparsec__cuda_scatter_rows(sparsec__dptr(q->dense_grad), sparsec__dptr(q->grad),
                                          sparsec__dptr(q->perm.p), n, p->desc.dims[1],
                                          p->desc.padding_idx)
             : rc;
}

/* Where the ids of lazy and catch-up rows are sorted: SPARSEC_CUDA_SORT
 * "device" (coalesce.cu, the default) or "host" (coo.c's radix sort, the
 * order uploaded); -1 for anything else. */
static int sort_on_device(void) {
  const char *env = getenv("SPARSEC_CUDA_SORT");
  if (!env || strcmp(env, "device") == 0)
    return 1;
  return strcmp(env, "host") == 0 ? 0 : -1;
}

/* The batch's `n` ids sorted on the host and the order uploaded; the run
 * ids into `keys`. */
static int order_on_host(sparsec__device *d, sparsec__param *p, sparsec__dev_param *q, int64_t n,
                         int32_t *keys, const char *what) {
  sparsec__coo_grad g = {n, p->desc.dims[1], p->grad_ids, NULL, 0};
  const sparsec__coo_order ord = sparsec__coo_sort(&g, &p->coo, 0);
  for (int64_t s = 0; s < ord.segments; ++s)
    keys[s] = (int32_t)ord.keys[ord.starts[s]];
  q->segments = ord.segments;
  int rc = sparsec__dev_upload(d, &q->perm, ord.perm, (size_t)n * sizeof(uint32_t), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_upload(d, &q->starts, ord.starts,
                             (size_t)(ord.segments + 1) * sizeof(uint32_t), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_upload(d, &q->keys, keys, (size_t)ord.segments * sizeof(int32_t), what);
  return rc;
}

/* The batch's `n` ids uploaded and sorted on the device (the same order);
 * the run ids copied back into `keys` and checked, so that a fault of the
 * kernels is an error, not a write outside the host's row tables. */
static int order_on_device(sparsec__device *d, sparsec__param *p, sparsec__dev_param *q, int64_t n,
                           int32_t *keys, const char *what) {
  const int64_t rows = p->desc.dims[0];
  int bits = 1;
  while (bits < 31 && ((int64_t)1 << bits) < rows)
    ++bits;
  const size_t words = (size_t)n * sizeof(uint32_t);
  int rc = sparsec__dev_reserve(d, &q->order.p, &q->order.cap,
                                words + sparsec__cuda_order_scratch(n), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_reserve(d, &q->perm.p, &q->perm.cap, words, what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_reserve(d, &q->starts.p, &q->starts.cap, words + sizeof(uint32_t), what);
  if (rc == SPARSEC_OK)
    rc = sparsec__dev_reserve(d, &q->keys.p, &q->keys.cap, words, what);
  if (rc != SPARSEC_OK)
    return rc;
  sparsec__dev_copy(d, q->order.p, p->grad_ids, words);
  int64_t runs = 0;
  const CUdeviceptr ids = sparsec__dptr(q->order.p);
  rc = sparsec__cuda_order(ids, n, bits, ids + words, sparsec__dptr(q->perm.p),
                           sparsec__dptr(q->starts.p), sparsec__dptr(q->keys.p), &runs);
  if (rc != SPARSEC_OK)
    return rc;
  sparsec__dev_copy(d, keys, q->keys.p, (size_t)runs * sizeof(int32_t));
  for (int64_t s = 0; s < runs; ++s)
    if (keys[s] < 0 || keys[s] >= rows || (s > 0 && keys[s] <= keys[s - 1]))
      return sparsec__fail(SPARSEC_ERR_CUDA, "%s: run %lld of %lld has row %d", what, (long long)s,
                           (long long)runs, (int)keys[s]);
  q->segments = runs;
  return SPARSEC_OK;
}

/* Lazy and catch-up rows: the batch's ids sorted by id (stable), the order
 * (perm, starts), each run's id and momentum flag on the device. */
static int sort_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q, int64_t n) {
  sparsec__device *d = m->dev;
  if (d->k.emulated) { /* the CPU's coalescing, into p->cur */
    sparsec__coo_grad g = {n, p->desc.dims[1], p->grad_ids, q->grad, 0};
    if (sparsec__opt_coalesces(&m->opt))
      sparsec__coo_coalesce(&g, p->desc.dims[0], &p->coo);
    p->cur = g;
    return SPARSEC_OK;
  }
  const int on_device = sort_on_device();
  if (on_device < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "train_step: SPARSEC_CUDA_SORT is '%s' (expected host or device)",
                         getenv("SPARSEC_CUDA_SORT"));
  /* Per run: its id and whether the row's momentum buffer holds state
   * (out_ids / the coalescing rows are free scratch here). */
  int32_t *keys = p->coo.out_ids;
  uint32_t *init = (uint32_t *)(void *)p->coo.out_rows;
  const char *what = "train_step: the row order on the CUDA device";
  int rc =
      on_device ? order_on_device(d, p, q, n, keys, what) : order_on_host(d, p, q, n, keys, what);
  if (rc != SPARSEC_OK)
    return rc;
  for (int64_t s = 0; s < q->segments; ++s)
    init[s] = p->mom_row_init ? p->mom_row_init[keys[s]] : 0;
  rc = sparsec__dev_upload(d, &q->init, init, (size_t)q->segments * sizeof(uint32_t), what);
  return rc == SPARSEC_OK ? sparsec__dev_status(d, what) : rc;
}

int sparsec__device_gather_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q,
                                int64_t batch, const void *const *inputs) {
  const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
  const int64_t n = sparsec__input_numel(in, batch);
  for (int64_t r = 0; r < n; ++r)
    p->grad_ids[r] = (int32_t)sparsec__id_at(in, inputs[p->desc.ids_input], r);
  p->grad_rows = n;
  if (sparsec__coo_reserve(&p->coo, n, p->desc.dims[1]) != 0)
    return sparsec__fail(SPARSEC_ERR_NOMEM,
                         "train_step: cannot allocate the row order of embedding '%s'",
                         p->desc.name);
  int rc = sparsec__device_prepare_rows(m, p, q, n);
  if (rc != SPARSEC_OK)
    return rc;
  return lazy_rows(m, p) ? sort_rows(m, p, q, n) : densify(m->dev, p, q, n);
}

/*===-- 2. Clipping -----------------------------------------------------------===*/

/* The squared norm of `n` floats at device `g` added to the sum (host
 * `*ss`, emulated; the device's clip_sum, CUDA). */
static int add_sumsq(sparsec__device *d, const float *g, int64_t n, double *ss) {
  if (d->k.emulated) {
    *ss += sparsec__sumsq(g, n);
    return SPARSEC_OK;
  }
  return sparsec__cuda_sumsq(sparsec__dptr(g), n, sparsec__dptr(d->clip_sum));
}

static int scale(sparsec__device *d, float *g, int64_t n, float c) {
  if (d->k.emulated) {
    sparsec__scale(g, n, c);
    return SPARSEC_OK;
  }
  return sparsec__cuda_scale(sparsec__dptr(g), n, c);
}

int sparsec__device_clip(sparsec_model *m, float *coef) {
  sparsec__device *d = m->dev;
  double ss = 0.0;
  int rc = SPARSEC_OK;
  *coef = 1.0f;
  if (!d->k.emulated) {
    const double zero = 0.0;
    sparsec__dev_copy(d, d->clip_sum, &zero, sizeof(zero));
  }
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i) {
    const sparsec__param *p = &m->params[i];
    const sparsec__dev_param *q = &d->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
      continue; /* a next value, not a gradient */
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING)
      rc = add_sumsq(d, q->grad, p->nnz, &ss);
    else if (!lazy_rows(m, p))
      rc = add_sumsq(d, q->dense_grad, p->nnz, &ss);
    else if (d->k.emulated)
      rc = add_sumsq(d, p->cur.rows, p->cur.n * p->cur.dim, &ss);
    else
      rc = sparsec__cuda_segment_sumsq(sparsec__dptr(q->grad), sparsec__dptr(q->perm.p),
                                       sparsec__dptr(q->starts.p), q->segments, p->desc.dims[1],
                                       sparsec__dptr(d->clip_sum));
  }
  if (!d->k.emulated) {
    sparsec__dev_copy(d, &ss, d->clip_sum, sizeof(ss));
    if (rc == SPARSEC_OK)
      rc = sparsec__dev_status(d, "train_step: the gradient norm on the CUDA device");
  }
  if (rc != SPARSEC_OK)
    return rc;
  const float c = sparsec__clip_coef(m, ss);
  if (!(c < 1.0f))
    return SPARSEC_OK;
  *coef = c;
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
      continue;
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING) {
      rc = scale(d, q->grad, p->nnz, c);
      continue;
    }
    /* The raw rows (what param_grad shows) and the coalesced or densified
     * copy the step reads when it is a separate buffer (optim.c). On the
     * GPU a lazy table's rows are coalesced by its step, which scales the
     * sums and then the raw rows (sparsec__device_step). */
    if (lazy_rows(m, p) && !d->k.emulated)
      continue;
    rc = scale(d, q->grad, p->grad_rows * p->desc.dims[1], c);
    if (rc == SPARSEC_OK && !lazy_rows(m, p))
      rc = scale(d, q->dense_grad, p->nnz, c);
    else if (rc == SPARSEC_OK && p->cur.rows != q->grad)
      rc = scale(d, sparsec__unconst(p->cur.rows), p->cur.n * p->cur.dim, c);
  }
  return rc;
}

/*===-- 3. Steps --------------------------------------------------------------===*/

/* The step of `n` values of a dense parameter (or of rows [lo, hi) of a
 * sparse = dense table) at value offset `at`: row-wise Adagrad over `rows`
 * rows of `dim` (or a CSR's `positions`), the others value by value. */
static int step_values(const sparsec__opt *o, const sparsec__param *p, const sparsec__dev_param *q,
                       const float *grad, int64_t at, int64_t n, int64_t rows, int64_t dim,
                       const int32_t *positions) {
  if (o->kind == SPARSEC_OPT_ROWWISE_ADAGRAD)
    return sparsec__cuda_rowwise_adagrad(
        o, sparsec__dptr(q->values + at), sparsec__dptr(grad + at),
        sparsec__dptr(q->state[SPARSEC_ST_SUM] + (dim > 0 ? at / dim : 0)), rows, dim, 0,
        sparsec__dptr(positions));
  sparsec__cuda_span s;
  memset(&s, 0, sizeof(s));
  s.p = sparsec__dptr(q->values + at);
  s.g = sparsec__dptr(grad + at);
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    s.s[k] = q->state[k] ? sparsec__dptr(q->state[k] + at) : 0;
  s.n = n;
  return sparsec__cuda_opt_span(o, &s, p->mom_init, 0);
}

/* sparse = dense: every row but the padding one steps (optim.c's
 * sparsec__opt_values, row ranges around it). */
static int step_dense_rows(const sparsec__opt *o, const sparsec__param *p,
                           const sparsec__dev_param *q) {
  const int64_t dim = p->desc.dims[1], rows = p->desc.dims[0], pad = p->desc.padding_idx;
  const int64_t ranges[2][2] = {{0, pad >= 0 ? pad : rows}, {pad >= 0 ? pad + 1 : rows, rows}};
  int rc = SPARSEC_OK;
  for (int k = 0; k < 2 && rc == SPARSEC_OK; ++k) {
    const int64_t lo = ranges[k][0], hi = ranges[k][1];
    if (hi > lo)
      rc = step_values(o, p, q, q->dense_grad, lo * dim, (hi - lo) * dim, hi - lo, dim, NULL);
  }
  return rc;
}

/* Lazy and catch-up rows: one block per distinct id of the batch. */
static int step_rows(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                     sparsec__dev_param *q, float coef) {
  const int catchup = m->opt.sparse_mode == SPARSEC_SPARSE_CATCHUP;
  sparsec__cuda_rows_args a;
  memset(&a, 0, sizeof(a));
  a.values = sparsec__dptr(q->values);
  a.grad = sparsec__dptr(q->grad);
  a.perm = sparsec__dptr(q->perm.p);
  a.starts = sparsec__dptr(q->starts.p);
  a.keys = sparsec__dptr(q->keys.p);
  a.init = sparsec__dptr(q->init.p);
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    a.state[k] = sparsec__dptr(q->state[k]);
  a.dim = p->desc.dims[1];
  a.padding_idx = p->desc.padding_idx;
  a.segments = q->segments;
  a.coalesced = sparsec__opt_coalesces(&m->opt);
  a.sparse_form = !catchup;
  a.scale = coef;
  int rc = sparsec__cuda_rows(o, &a);
  const int32_t *keys = p->coo.out_ids;
  for (int64_t s = 0; rc == SPARSEC_OK && s < q->segments; ++s) {
    if (keys[s] == p->desc.padding_idx)
      continue;
    if (p->mom_row_init)
      p->mom_row_init[keys[s]] = 1;
    if (catchup)
      p->last_step[keys[s]] = o->step;
  }
  if (rc == SPARSEC_OK && coef < 1.0f) /* the raw rows, read above */
    rc = sparsec__cuda_scale(a.grad, p->grad_rows * a.dim, coef);
  return rc;
}

int sparsec__device_step(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                         sparsec__dev_param *q, float coef) {
  const int emb = p->desc.layout == SPARSEC_LAYOUT_EMBEDDING;
  int rc = SPARSEC_OK;
  if (p->desc.layout == SPARSEC_LAYOUT_BUFFER) { /* the next value, as written */
    sparsec__dev_copy(m->dev, q->values, q->grad, sparsec__floats(p->nnz));
    return sparsec__dev_status(m->dev, "train_step: a buffer's next value on the CUDA device");
  }
  if (m->dev->k.emulated) { /* the CPU's step on the device buffers */
    sparsec__param view = device_view(p, q);
    if (lazy_rows(m, p)) { /* clipped already (sparsec__device_clip) */
      sparsec__opt_rows(o, &view, &p->cur, m->opt.sparse_mode == SPARSEC_SPARSE_CATCHUP);
      return SPARSEC_OK;
    }
    sparsec__opt_values(o, &view, emb ? q->dense_grad : q->grad);
    p->mom_init = view.mom_init;
    return SPARSEC_OK;
  }
  if (lazy_rows(m, p))
    return step_rows(m, o, p, q, coef);
  if (emb)
    rc = step_dense_rows(o, p, q);
  else
    rc = step_values(o, p, q, q->grad, 0, p->nnz, p->rows, p->rows > 0 ? p->nnz / p->rows : 0,
                     q->positions);
  if (rc == SPARSEC_OK && o->kind == SPARSEC_OPT_SGD && q->state[SPARSEC_ST_MOMENTUM])
    p->mom_init = 1;
  return rc;
}
