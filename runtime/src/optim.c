/*===- optim.c - Optimizer hyper-parameters, state and step driver -*- C -*-===*
 *
 * What every optimizer shares: the per-step hyper-parameters (cast to float
 * as ATen casts scalars for f32 parameters), which state tensors each
 * optimizer keeps and their initial values, the learning-rate schedule,
 * dispatch to the per-optimizer kernels (optim_sgd.c, optim_adagrad.c,
 * optim_rmsprop.c, optim_adam.c), the step on dense and CSR values, and
 * the driver that train_step runs after a successful kernel: prepare the
 * embedding gradients (drop padding rows, scale_grad_by_freq, coalesce or
 * densify), clip the global gradient norm, step every parameter. Embedding
 * modes live in optim_sparse.c. docs/optimizers.md has every formula.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPARSEC_PI 3.14159265358979323846

sparsec__opt sparsec__opt_make(const sparsec_optimizer_desc *d, double lr, int64_t step) {
  sparsec__opt o;
  memset(&o, 0, sizeof(o));
  const double t = (double)step;
  o.d = d;
  o.kind = d->kind;
  o.step = step;
  o.lr = lr;
  o.neg_lr = (float)-lr;
  o.momentum = (float)d->momentum;
  /* PyTorch passes alpha = 1 - dampening, computed in double. */
  o.one_minus_dampening = (float)(1.0 - d->dampening);
  o.l2 = d->kind == SPARSEC_OPT_ADAMW ? 0.0f : (float)d->weight_decay;
  o.nesterov = d->nesterov != 0;
  o.maximize = d->maximize != 0;
  o.centered = d->centered != 0;
  o.amsgrad = d->amsgrad != 0;
  o.eps = (float)d->eps;
  o.alpha = (float)d->alpha;
  o.one_minus_alpha = (float)(1.0 - d->alpha);
  o.beta1 = (float)d->beta1;
  o.one_minus_beta1 = (float)(1.0 - d->beta1);
  o.beta2 = (float)d->beta2;
  o.one_minus_beta2 = (float)(1.0 - d->beta2);
  o.neg_clr = (float)-(lr / (1.0 + (t - 1.0) * d->lr_decay));
  const double bc1 = 1.0 - pow(d->beta1, t), bc2 = 1.0 - pow(d->beta2, t);
  o.bias2_sqrt = (float)sqrt(bc2);
  o.neg_step_size = (float)-(lr / bc1);
  o.sparse_neg_step = (float)-(lr * sqrt(bc2) / bc1);
  o.decay = (float)(1.0 - lr * d->weight_decay);
  return o;
}

static const char *const sparsec__state_names[SPARSEC_NSTATE] = {
    "momentum_buffer", "sum", "square_avg", "grad_avg", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

const char *sparsec__state_name(int k) { return sparsec__state_names[k]; }

int sparsec__opt_keeps(const sparsec_optimizer_desc *d, int k) {
  switch (d->kind) {
  case SPARSEC_OPT_SGD:
    return k == SPARSEC_ST_MOMENTUM && d->momentum != 0.0;
  case SPARSEC_OPT_ADAGRAD:
  case SPARSEC_OPT_ROWWISE_ADAGRAD:
    return k == SPARSEC_ST_SUM;
  case SPARSEC_OPT_RMSPROP:
    return k == SPARSEC_ST_SQUARE_AVG || (k == SPARSEC_ST_GRAD_AVG && d->centered) ||
           (k == SPARSEC_ST_MOMENTUM && d->momentum > 0.0);
  case SPARSEC_OPT_ADAM:
  case SPARSEC_OPT_ADAMW:
    return k == SPARSEC_ST_EXP_AVG || k == SPARSEC_ST_EXP_AVG_SQ ||
           (k == SPARSEC_ST_MAX_EXP_AVG_SQ && d->amsgrad);
  }
  return 0;
}

float sparsec__state_init(const sparsec_optimizer_desc *d, int k) {
  return k == SPARSEC_ST_SUM ? (float)d->initial_accumulator_value : 0.0f;
}

int sparsec__opt_coalesces(const sparsec_optimizer_desc *d) {
  return d->kind != SPARSEC_OPT_SGD || d->momentum != 0.0 || d->weight_decay != 0.0 ||
         d->max_grad_norm > 0.0 || d->sparse_mode == SPARSEC_SPARSE_CATCHUP;
}

double sparsec__scheduled_lr(const sparsec_optimizer_desc *d, double base, int64_t e) {
  if (d->warmup_steps > 0) {
    if (e < d->warmup_steps)
      return base * (double)(e + 1) / (double)d->warmup_steps;
    e -= d->warmup_steps;
  }
  switch (d->schedule) {
  case SPARSEC_SCHED_STEP:
    return base * pow(d->gamma, (double)(e / d->step_size));
  case SPARSEC_SCHED_COSINE:
    return d->eta_min +
           (base - d->eta_min) * (1.0 + cos(SPARSEC_PI * (double)e / (double)d->t_max)) / 2.0;
  default:
    return base;
  }
}

SPARSEC_API int sparsec_current_lr(const sparsec_model *m, double *lr) {
  sparsec__clear_error();
  if (!m || !lr)
    return sparsec__fail(SPARSEC_ERR_NULL, "current_lr: NULL argument");
  *lr = sparsec__scheduled_lr(&m->opt, m->lr, m->step);
  return SPARSEC_OK;
}

/*===-- State -----------------------------------------------------------------===*/

/* Whether `p` keeps per-row SGD momentum flags (lazy/catch-up rows). */
static int sparsec__keeps_row_flags(const sparsec_model *m, const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_EMBEDDING && m->opt.kind == SPARSEC_OPT_SGD &&
         m->opt.momentum != 0.0 && m->opt.sparse_mode != SPARSEC_SPARSE_DENSE;
}

static void *sparsec__alloc_n(int64_t count, size_t size) {
  if (count < 0 || (uint64_t)count > SIZE_MAX / size)
    return NULL;
  return sparsec__calloc((size_t)count, size);
}

int sparsec__state_alloc(const sparsec_model *m, sparsec__param *p) {
  const sparsec_optimizer_desc *d = &m->opt;
  if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
    return 0; /* not trained */
  const int emb = p->desc.layout == SPARSEC_LAYOUT_EMBEDDING;
  for (int k = 0; k < SPARSEC_NSTATE; ++k) {
    if (!sparsec__opt_keeps(d, k))
      continue;
    if (!(p->state[k] = (float *)sparsec__alloc_n(sparsec__state_elems(d, p, k), sizeof(float))))
      return -1;
  }
  if (sparsec__keeps_row_flags(m, p) &&
      !(p->mom_row_init = (uint8_t *)sparsec__alloc_n(p->desc.dims[0], 1)))
    return -1;
  if (emb && d->sparse_mode == SPARSEC_SPARSE_CATCHUP &&
      !(p->last_step = (int64_t *)sparsec__alloc_n(p->desc.dims[0], sizeof(int64_t))))
    return -1;
  if (emb && d->sparse_mode == SPARSEC_SPARSE_DENSE &&
      !(p->dense_grad = (float *)sparsec__alloc_n(p->nnz, sizeof(float))))
    return -1;
  sparsec__state_reset(m, p, 0);
  return 0;
}

void sparsec__state_free(sparsec__param *p) {
  for (int k = 0; k < SPARSEC_NSTATE; ++k) {
    free(p->state[k]);
    p->state[k] = NULL;
  }
  free(p->mom_row_init);
  free(p->last_step);
  free(p->dense_grad);
  free(p->undo.ids);
  free(p->undo.last);
  free(p->undo.init);
  free(p->undo.data);
  p->mom_row_init = NULL;
  p->last_step = NULL;
  p->dense_grad = NULL;
  memset(&p->undo, 0, sizeof(p->undo));
}

void sparsec__state_reset(const sparsec_model *m, sparsec__param *p, int64_t step) {
  for (int k = 0; k < SPARSEC_NSTATE; ++k) {
    if (!p->state[k])
      continue;
    const float v = sparsec__state_init(&m->opt, k);
    const int64_t n = sparsec__state_elems(&m->opt, p, k);
    for (int64_t i = 0; i < n; ++i)
      p->state[k][i] = v;
  }
  p->mom_init = 0;
  if (p->mom_row_init)
    memset(p->mom_row_init, 0, (size_t)p->desc.dims[0]);
  if (p->last_step)
    for (int64_t r = 0; r < p->desc.dims[0]; ++r)
      p->last_step[r] = step;
}

/*===-- Steps -----------------------------------------------------------------===*/

void sparsec__opt_span(const sparsec__opt *o, const sparsec__span *s, int init, int sparse_form) {
  switch (o->kind) {
  case SPARSEC_OPT_SGD:
    sparsec__sgd_span(o, s, init);
    break;
  case SPARSEC_OPT_ADAGRAD:
  case SPARSEC_OPT_ROWWISE_ADAGRAD:
    sparsec__adagrad_span(o, s, sparse_form);
    break;
  case SPARSEC_OPT_RMSPROP:
    sparsec__rmsprop_span(o, s);
    break;
  case SPARSEC_OPT_ADAM:
  case SPARSEC_OPT_ADAMW:
    sparsec__adam_span(o, s, sparse_form);
    break;
  }
}

void sparsec__catchup_coef_of(const sparsec__opt *o, int64_t k, int init,
                              sparsec__catchup_coef *c) {
  memset(c, 0, sizeof(*c));
  switch (o->kind) {
  case SPARSEC_OPT_SGD:
    sparsec__sgd_catchup_coef(o, k, init, c);
    break;
  case SPARSEC_OPT_RMSPROP:
    sparsec__rmsprop_catchup_coef(o, k, c);
    break;
  case SPARSEC_OPT_ADAM:
  case SPARSEC_OPT_ADAMW:
    sparsec__adam_catchup_coef(o, k, c);
    break;
  default: /* Adagrad: the state does not decay (docs/optimizers.md) */
    break;
  }
}

void sparsec__opt_catchup(const sparsec__opt *o, const sparsec__span *s, int64_t k, int init) {
  sparsec__catchup_coef c;
  sparsec__catchup_coef_of(o, k, init, &c);
  if (c.mode == SPARSEC_CU_NONE)
    return;
  for (int64_t i = 0; i < s->n; ++i)
    sparsec__catchup_elem(&c, s->p, s->s, i);
}

/* The step on values [lo, hi) (elementwise optimizers), on this thread. */
static void sparsec__opt_range_serial(const sparsec__opt *o, sparsec__param *p, const float *grad,
                                      int64_t lo, int64_t hi) {
  sparsec__span s;
  memset(&s, 0, sizeof(s));
  s.p = p->values + lo;
  s.g = grad + lo;
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    s.s[k] = p->state[k] ? p->state[k] + lo : NULL;
  s.n = hi - lo;
  sparsec__opt_span(o, &s, p->mom_init, 0);
}

/* Values per parameter below which the step stays on the calling thread. */
#define SPARSEC_PARALLEL_STEP_MIN 32768

typedef struct sparsec__range_ctx {
  const sparsec__opt *o;
  sparsec__param *p;
  const float *grad;
  int64_t base;
} sparsec__range_ctx;

static void sparsec__range_chunk(void *ctx, int64_t lo, int64_t hi) {
  const sparsec__range_ctx *c = (const sparsec__range_ctx *)ctx;
  sparsec__opt_range_serial(c->o, c->p, c->grad, c->base + lo, c->base + hi);
}

/* The step on values [lo, hi) (elementwise optimizers): every value is
 * updated on its own, so splitting the range over the thread pool gives the
 * same bits as one pass. */
static void sparsec__opt_range(const sparsec__opt *o, sparsec__param *p, const float *grad,
                               int64_t lo, int64_t hi) {
  if (hi - lo < SPARSEC_PARALLEL_STEP_MIN) {
    sparsec__opt_range_serial(o, p, grad, lo, hi);
    return;
  }
  sparsec__range_ctx c = {o, p, grad, lo};
  sparsec_parallel_for(sparsec__range_chunk, &c, hi - lo);
}

void sparsec__opt_values(const sparsec__opt *o, sparsec__param *p, const float *grad) {
  /* Rows: CSR rows by positions, dense rows of nnz / rows values. An
   * embedding's padding row is skipped (it never moves). */
  const int64_t width = p->rows > 0 ? p->nnz / p->rows : 0;
  const int64_t skip = p->desc.layout == SPARSEC_LAYOUT_EMBEDDING ? p->desc.padding_idx : -1;
  if (o->kind != SPARSEC_OPT_ROWWISE_ADAGRAD) {
    if (skip < 0) {
      sparsec__opt_range(o, p, grad, 0, p->nnz);
    } else {
      sparsec__opt_range(o, p, grad, 0, skip * width);
      sparsec__opt_range(o, p, grad, (skip + 1) * width, p->nnz);
    }
    if (o->kind == SPARSEC_OPT_SGD && p->state[SPARSEC_ST_MOMENTUM])
      p->mom_init = 1;
    return;
  }
  sparsec__span s;
  memset(&s, 0, sizeof(s));
  for (int64_t r = 0; r < p->rows; ++r) {
    if (r == skip)
      continue;
    int64_t lo = r * width, hi = lo + width;
    if (p->desc.layout == SPARSEC_LAYOUT_CSR) {
      lo = p->positions[r];
      hi = p->positions[r + 1];
    }
    s.p = p->values + lo;
    s.g = grad + lo;
    s.n = hi - lo;
    s.row_sum = p->state[SPARSEC_ST_SUM] + r;
    sparsec__opt_span(o, &s, 0, 0);
  }
}

/*===-- The step after the kernel ----------------------------------------------===*/

double sparsec__sumsq(const float *v, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i)
    s += (double)v[i] * (double)v[i];
  return s;
}

void sparsec__scale(float *v, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i)
    v[i] = v[i] * c;
}

float sparsec__clip_coef(const sparsec_model *m, double sumsq) {
  const float total = (float)sqrt(sumsq);
  return (float)m->opt.max_grad_norm / (total + 1e-6f);
}

/* torch.nn.utils.clip_grad_norm_: total = ||all gradients||_2 (embedding
 * gradients coalesced), coef = max_norm / (total + 1e-6) in float, and
 * every gradient is scaled by coef when coef < 1. */
static void sparsec__clip(sparsec_model *m) {
  double ss = 0.0;
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
      continue; /* a next value, not a gradient */
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING)
      ss += sparsec__sumsq(p->grad, p->nnz);
    else if (p->dense_grad)
      ss += sparsec__sumsq(p->dense_grad, p->nnz);
    else
      ss += sparsec__sumsq(p->cur.rows, p->cur.n * p->cur.dim);
  }
  const float coef = sparsec__clip_coef(m, ss);
  if (!(coef < 1.0f))
    return;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
      continue;
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING) {
      sparsec__scale(p->grad, p->nnz, coef);
      continue;
    }
    /* The raw rows (what sparsec_param_grad shows), and the coalesced or
     * densified copy the step reads when it is a separate buffer. */
    sparsec__scale(p->grad, p->grad_rows * p->desc.dims[1], coef);
    if (p->dense_grad)
      sparsec__scale(p->dense_grad, p->nnz, coef);
    else if (p->cur.rows != p->grad)
      sparsec__scale(sparsec__unconst(p->cur.rows), p->cur.n * p->cur.dim, coef);
  }
}

/* The densified gradient of an embedding: rows added in batch order. */
void sparsec__densify(sparsec__param *p) {
  const int64_t dim = p->desc.dims[1];
  memset(p->dense_grad, 0, (size_t)p->nnz * sizeof(float));
  for (int64_t i = 0; i < p->grad_rows; ++i) {
    float *dst = p->dense_grad + (size_t)p->grad_ids[i] * (size_t)dim;
    const float *src = p->grad + (size_t)i * (size_t)dim;
    for (int64_t c = 0; c < dim; ++c)
      dst[c] += src[c];
  }
}

int sparsec__fuses_rows(const sparsec_model *m, const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_EMBEDDING && p->desc.row_update &&
         m->opt.sparse_mode == SPARSEC_SPARSE_LAZY && !(m->opt.max_grad_norm > 0.0);
}

/* The compiler's fused row update of embedding `p`: the runtime sorts the
 * ids (or, for plain SGD, keeps the batch order) and hands the order and
 * the step's scalars to the generated kernel, which sums each id's rows and
 * steps the row (docs/optimizers.md, "Fused row updates"). */
static void sparsec__fused_rows(const sparsec__opt *o, sparsec__param *p, int coalesce) {
  const sparsec__coo_order ord = sparsec__coo_sort(&p->cur, &p->coo, !coalesce);
  float hyper[SPARSEC_RH_COUNT];
  hyper[SPARSEC_RH_NEG_LR] = o->neg_lr;
  hyper[SPARSEC_RH_MOMENTUM] = o->momentum;
  hyper[SPARSEC_RH_ONE_MINUS_DAMPENING] = o->one_minus_dampening;
  hyper[SPARSEC_RH_L2] = o->l2;
  hyper[SPARSEC_RH_EPS] = o->eps;
  hyper[SPARSEC_RH_ALPHA] = o->alpha;
  hyper[SPARSEC_RH_ONE_MINUS_ALPHA] = o->one_minus_alpha;
  hyper[SPARSEC_RH_BETA1] = o->beta1;
  hyper[SPARSEC_RH_ONE_MINUS_BETA1] = o->one_minus_beta1;
  hyper[SPARSEC_RH_BETA2] = o->beta2;
  hyper[SPARSEC_RH_ONE_MINUS_BETA2] = o->one_minus_beta2;
  hyper[SPARSEC_RH_NEG_CLR] = o->neg_clr;
  hyper[SPARSEC_RH_SPARSE_NEG_STEP] = o->sparse_neg_step;
  hyper[SPARSEC_RH_DECAY] = o->decay;
  sparsec_row_update_args a;
  memset(&a, 0, sizeof(a));
  a.values = p->values;
  for (int k = 0; k < SPARSEC_NSTATE; ++k) {
    a.state[k] = p->state[k];
    a.state_len[k] = p->state[k] ? sparsec__state_elems(o->d, p, k) : 0;
  }
  a.row_init = p->mom_row_init;
  a.rows = p->desc.dims[0];
  a.grad = p->cur.rows;
  a.perm = ord.perm;
  a.keys = ord.keys;
  a.starts = ord.starts;
  a.n = p->cur.n;
  a.segments = ord.segments;
  a.hyper = hyper;
  p->desc.row_update(&a);
}

void sparsec__opt_step(sparsec_model *m) {
  const sparsec__opt o =
      sparsec__opt_make(&m->opt, sparsec__scheduled_lr(&m->opt, m->lr, m->step), m->step + 1);
  const int coalesce = sparsec__opt_coalesces(&m->opt);
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING)
      continue;
    sparsec__emb_grad_prepare(p);
    sparsec__coo_grad g = {p->grad_rows, p->desc.dims[1], p->grad_ids, p->grad, 0};
    p->cur = g;
    if (p->dense_grad)
      sparsec__densify(p);
    else if (coalesce && !sparsec__fuses_rows(m, p))
      sparsec__coo_coalesce(&p->cur, p->desc.dims[0], &p->coo);
  }
  if (m->opt.max_grad_norm > 0.0)
    sparsec__clip(m);
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_BUFFER)
      memcpy(p->values, p->grad, (size_t)p->nnz * sizeof(float));
    else if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING)
      sparsec__opt_values(&o, p, p->grad);
    else if (p->dense_grad)
      sparsec__opt_values(&o, p, p->dense_grad);
    else if (sparsec__fuses_rows(m, p))
      sparsec__fused_rows(&o, p, coalesce);
    else
      sparsec__opt_rows(&o, p, &p->cur, m->opt.sparse_mode == SPARSEC_SPARSE_CATCHUP);
  }
}
