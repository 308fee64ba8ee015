/*===- optim_elem.h - One optimizer update, for the CPU and the GPU -*- C -*-===*
 *
 * The per-step hyper-parameters (sparsec__opt) and the update of one value
 * of a parameter by each optimizer, the catch-up of skipped steps of one
 * embedding row and the max_norm row norm, as inline functions shared by
 * the CPU (optim_*.c, embedding.c) and the CUDA kernels
 * (runtime/cuda/optim.cu, compiled by nvcc with -fmad=false like the C
 * files' -ffp-contract=off, so both devices compute the same bits). The
 * formulas are in the optim_*.c file headers and docs/optimizers.md. Plain
 * C99 and CUDA C++; libm's sqrt, pow, fabs, fmax only.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_OPTIM_ELEM_H
#define SPARSEC_RUNTIME_OPTIM_ELEM_H

#include "sparsec/runtime.h"

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SPARSEC_HD __host__ __device__
#else
#define SPARSEC_HD
#endif

/* Optimizer state tensors, named as in PyTorch's optimizer state; a
 * checkpoint stores kind K of parameter NAME as "optimizer.NAME.<name>". */
typedef enum sparsec__state_kind {
  SPARSEC_ST_MOMENTUM = 0,   /* momentum_buffer: SGD / RMSprop with momentum */
  SPARSEC_ST_SUM,            /* sum: Adagrad (per value), row-wise Adagrad (per row) */
  SPARSEC_ST_SQUARE_AVG,     /* square_avg: RMSprop */
  SPARSEC_ST_GRAD_AVG,       /* grad_avg: centered RMSprop */
  SPARSEC_ST_EXP_AVG,        /* exp_avg: Adam, AdamW */
  SPARSEC_ST_EXP_AVG_SQ,     /* exp_avg_sq: Adam, AdamW */
  SPARSEC_ST_MAX_EXP_AVG_SQ, /* max_exp_avg_sq: Adam, AdamW with amsgrad */
  SPARSEC_NSTATE
} sparsec__state_kind;

/* Hyper-parameters of one step, cast to float as ATen casts scalars for f32
 * parameters (derived quantities are computed in double first, as Python
 * computes them in torch.optim). Passed by value to the CUDA kernels: `d`
 * is a host pointer, read by the host's catch-up code only. */
typedef struct sparsec__opt {
  const sparsec_optimizer_desc *d;
  sparsec_optimizer_kind kind;
  int64_t step; /* 1-based index of the step being taken */
  double lr;    /* scheduled learning rate of this step */
  float neg_lr; /* -lr */
  float momentum, one_minus_dampening;
  float l2; /* weight decay added to the gradient (every kind but AdamW) */
  int nesterov, maximize, centered, amsgrad;
  float eps, alpha, one_minus_alpha;
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float neg_clr;         /* Adagrad: -lr / (1 + (step - 1) lr_decay) */
  float bias2_sqrt;      /* Adam: sqrt(1 - beta2^step) */
  float neg_step_size;   /* Adam: -lr / (1 - beta1^step) */
  float sparse_neg_step; /* SparseAdam: -lr sqrt(1 - beta2^step) / (1 - beta1^step) */
  float decay;           /* AdamW: 1 - lr weight_decay */
} sparsec__opt;

/* The gradient PyTorch's step works with: negated when maximizing, plus
 * the L2 term (g.add(p, alpha=weight_decay)). */
static inline SPARSEC_HD float sparsec__grad(const sparsec__opt *o, float grad, float p) {
  const float g = o->maximize ? -grad : grad;
  return o->l2 != 0.0f ? g + o->l2 * p : g;
}

/* SGD on value i; `init`: the momentum buffer holds state. */
static inline SPARSEC_HD void sparsec__sgd_elem(const sparsec__opt *o, float *p, const float *grad,
                                                float *buf, int64_t i, int init) {
  const float mom = o->momentum;
  float g = sparsec__grad(o, grad[i], p[i]);
  if (mom != 0.0f) {
    const float b = init ? buf[i] * mom + o->one_minus_dampening * g : g;
    buf[i] = b;
    g = o->nesterov ? g + mom * b : b;
  }
  p[i] = p[i] + o->neg_lr * g;
}

/* Adagrad's parameter update with accumulator root `std`; `sparse_form`:
 * torch's sparse-gradient arithmetic. */
static inline SPARSEC_HD float sparsec__adagrad_update(float p, float g, float std, float neg_clr,
                                                       int sparse_form) {
  return sparse_form ? p + neg_clr * (g / std) : p + (neg_clr * g) / std;
}

/* Row-wise Adagrad: the row's accumulator after a step whose squared
 * gradients (after sparsec__grad) sum to `acc` over the row's n values. */
static inline SPARSEC_HD float sparsec__rowwise_sum(float sum, double acc, int64_t n) {
  return sum + (float)(acc / (double)n);
}

/* Adagrad on value i with a per-value accumulator `sum`. */
static inline SPARSEC_HD void sparsec__adagrad_elem(const sparsec__opt *o, float *p,
                                                    const float *grad, float *sum, int64_t i,
                                                    int sparse_form) {
  const float g = sparsec__grad(o, grad[i], p[i]);
  sum[i] = sum[i] + g * g;
  const float std = sqrtf(sum[i]) + o->eps;
  p[i] = sparsec__adagrad_update(p[i], g, std, o->neg_clr, sparse_form);
}

/* RMSprop on value i: square average `sq`, centered `ga`, momentum `buf`. */
static inline SPARSEC_HD void sparsec__rmsprop_elem(const sparsec__opt *o, float *p,
                                                    const float *grad, float *sq, float *ga,
                                                    float *buf, int64_t i) {
  const float g = sparsec__grad(o, grad[i], p[i]);
  const float v = sq[i] * o->alpha + (o->one_minus_alpha * g) * g;
  sq[i] = v;
  float avg;
  if (o->centered) {
    const float a = ga[i] * o->alpha + o->one_minus_alpha * g;
    ga[i] = a;
    avg = sqrtf(v + (-1.0f * a) * a);
  } else {
    avg = sqrtf(v);
  }
  avg = avg + o->eps;
  if (o->momentum > 0.0f) {
    const float b = buf[i] * o->momentum + g / avg;
    buf[i] = b;
    p[i] = p[i] + o->neg_lr * b;
  } else {
    p[i] = p[i] + (o->neg_lr * g) / avg;
  }
}

/* Adam / AdamW on value i: moments `m`, `v`, amsgrad's `vmax`;
 * `sparse_form`: SparseAdam's arithmetic (lazy embedding rows). */
static inline SPARSEC_HD void sparsec__adam_elem(const sparsec__opt *o, float *p, const float *grad,
                                                 float *m, float *v, float *vmax, int64_t i,
                                                 int sparse_form) {
  const float g = sparsec__grad(o, grad[i], p[i]);
  if (o->kind == SPARSEC_OPT_ADAMW)
    p[i] = p[i] * o->decay;
  float mi, vi;
  if (sparse_form) {
    const float old_m = m[i], old_v = v[i];
    const float upd_m = (g - old_m) * o->one_minus_beta1;
    const float upd_v = (g * g - old_v) * o->one_minus_beta2;
    m[i] = old_m + upd_m;
    v[i] = old_v + upd_v;
    mi = upd_m + old_m;
    vi = upd_v + old_v;
  } else {
    mi = m[i] * o->beta1 + o->one_minus_beta1 * g;
    vi = v[i] * o->beta2 + (o->one_minus_beta2 * g) * g;
    m[i] = mi;
    v[i] = vi;
  }
  if (o->amsgrad) {
    if (!(vmax[i] >= vi)) /* torch.maximum: NaN propagates */
      vmax[i] = vi;
    vi = vmax[i];
  }
  if (sparse_form)
    p[i] = p[i] + (mi / (sqrtf(vi) + o->eps)) * o->sparse_neg_step;
  else
    p[i] = p[i] + (o->neg_step_size * mi) / (sqrtf(vi) / o->bias2_sqrt + o->eps);
}

/*===-- Catch-up of one embedding row (optim_sparse.c) -----------------------===*/

/* k skipped zero-gradient steps of a row are a linear map of each value
 * (with its state) whose coefficients depend on k only: the host computes
 * them once per row (sparsec__catchup_coef, 2x2 matrix powers in double)
 * and sparsec__catchup_elem applies them to every value of the row. */
enum {
  SPARSEC_CU_NONE,    /* nothing moves (Adagrad; SGD without momentum or decay) */
  SPARSEC_CU_SCALE,   /* p <- f0 p (SGD with weight decay only) */
  SPARSEC_CU_SGD,     /* (p, buf) <- F (p, buf) */
  SPARSEC_CU_RMSPROP, /* averages decay by alpha^k; momentum: (p, buf) <- F (p, buf) */
  SPARSEC_CU_ADAM     /* p <- f0 p + f1 u(m, v); moments decay by beta^k */
};

typedef struct sparsec__catchup_coef {
  double f[4];                     /* row-major 2x2 map */
  double decay1, decay2;           /* RMSprop: alpha^k; Adam: beta1^k, beta2^k */
  double step_size, bc2_sqrt, eps; /* Adam: the zero-gradient step u */
  int32_t mode;                    /* SPARSEC_CU_* */
  int32_t init;                    /* SGD: the row's momentum buffer holds state */
} sparsec__catchup_coef;

/* Catch-up of value i of a row: `p` its values, `s` its state arrays by
 * SPARSEC_ST_* (NULL where not kept). */
static inline SPARSEC_HD void sparsec__catchup_elem(const sparsec__catchup_coef *c, float *p,
                                                    float *const *s, int64_t i) {
  const double *f = c->f;
  switch (c->mode) {
  case SPARSEC_CU_SCALE:
    p[i] = (float)((double)p[i] * f[0]);
    break;
  case SPARSEC_CU_SGD: {
    float *buf = s[SPARSEC_ST_MOMENTUM];
    const double pi = p[i], bi = c->init ? buf[i] : 0.0;
    p[i] = (float)(f[0] * pi + f[1] * bi);
    buf[i] = (float)(f[2] * pi + f[3] * bi);
    break;
  }
  case SPARSEC_CU_RMSPROP: {
    float *sq = s[SPARSEC_ST_SQUARE_AVG], *ga = s[SPARSEC_ST_GRAD_AVG];
    float *buf = s[SPARSEC_ST_MOMENTUM];
    sq[i] = (float)((double)sq[i] * c->decay1);
    if (ga)
      ga[i] = (float)((double)ga[i] * c->decay1);
    if (buf) {
      const double pi = p[i], bi = buf[i];
      p[i] = (float)(f[0] * pi + f[1] * bi);
      buf[i] = (float)(f[3] * bi);
    }
    break;
  }
  case SPARSEC_CU_ADAM: {
    float *m = s[SPARSEC_ST_EXP_AVG], *v = s[SPARSEC_ST_EXP_AVG_SQ];
    const float *vm = s[SPARSEC_ST_MAX_EXP_AVG_SQ] ? s[SPARSEC_ST_MAX_EXP_AVG_SQ] : v;
    const double mi = m[i];
    const double denom = sqrt((double)vm[i]) / c->bc2_sqrt + c->eps;
    const double u = (mi != 0.0 && denom > 0.0) ? c->step_size * mi / denom : 0.0;
    p[i] = (float)(f[0] * (double)p[i] + f[1] * u);
    m[i] = (float)(mi * c->decay1);
    v[i] = (float)((double)v[i] * c->decay2);
    break;
  }
  default:
    break;
  }
}

/*===-- Rows of an embedding table on either device ---------------------------===*/

/* A table's values (a[0]) and optimizer states (a[1 + SPARSEC_ST_*]) with
 * the floats each holds per row (`width`, 0 where absent): what a row
 * snapshot copies and a catch-up changes. Device pointers on the GPU. */
typedef struct sparsec__row_arrays {
  float *a[1 + SPARSEC_NSTATE];
  int64_t width[1 + SPARSEC_NSTATE];
} sparsec__row_arrays;

/* The norm_type-norm of `n` floats, computed in double and rounded to
 * float as torch's row.norm(p) returns it (max_norm, embedding.c). */
static inline SPARSEC_HD float sparsec__row_norm(const float *v, int64_t n, double p) {
  double s = 0.0;
  if (isinf(p)) {
    for (int64_t i = 0; i < n; ++i)
      s = fmax(s, fabs((double)v[i]));
    return (float)s;
  }
  if (p == 2.0) {
    for (int64_t i = 0; i < n; ++i)
      s += (double)v[i] * (double)v[i];
    return (float)sqrt(s);
  }
  if (p == 1.0) {
    for (int64_t i = 0; i < n; ++i)
      s += fabs((double)v[i]);
    return (float)s;
  }
  for (int64_t i = 0; i < n; ++i)
    s += pow(fabs((double)v[i]), p);
  return (float)pow(s, 1.0 / p);
}

/* The factor torch.embedding_renorm_ scales a row of norm `norm` by, or 1
 * when the row is within max_norm (it is then left alone). */
static inline SPARSEC_HD float sparsec__renorm_scale(float norm, double max_norm) {
  return (double)norm > max_norm ? (float)(max_norm / ((double)norm + 1e-7)) : 1.0f;
}

#endif /* SPARSEC_RUNTIME_OPTIM_ELEM_H */
