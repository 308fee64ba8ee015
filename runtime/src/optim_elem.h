/*===- optim_elem.h - One optimizer update, for the CPU and the GPU -*- C -*-===*
 *
 * The per-step hyper-parameters (sparsec__opt) and the update of one value
 * of a parameter by each optimizer, as inline functions shared by the CPU
 * spans (optim_*.c) and the CUDA kernels (runtime/cuda/optim.cu, compiled
 * by nvcc with -fmad=false like the C files' -ffp-contract=off, so both
 * devices compute the same bits). The formulas are in the optim_*.c file
 * headers and docs/optimizers.md. Plain C99 and CUDA C++; no libc beyond
 * sqrtf.
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

#endif /* SPARSEC_RUNTIME_OPTIM_ELEM_H */
