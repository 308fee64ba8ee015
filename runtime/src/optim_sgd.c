/*===- optim_sgd.c - SGD step and catch-up -------------------------*- C -*-===*
 *
 * torch.optim.SGD (single-tensor path), elementwise and in float like
 * PyTorch for f32 parameters:
 *
 *   g = -grad if maximize, else grad
 *   g = g + weight_decay * p                     (if weight_decay != 0)
 *   buf = g                                      (first step)
 *   buf = momentum * buf + (1 - dampening) * g   (later steps)
 *   g = g + momentum * buf  (nesterov)  or  g = buf
 *   p = p + (-lr) * g
 *
 * Catch-up: with a zero gradient the step is linear in (p, buf), so k
 * skipped steps are one 2x2 matrix power (docs/optimizers.md).
 *===----------------------------------------------------------------------===*/
#include "internal.h"

void sparsec__sgd_span(const sparsec__opt *o, const sparsec__span *s, int init) {
  const float neg_lr = o->neg_lr, mom = o->momentum;
  const float one_minus_damp = o->one_minus_dampening;
  const float *grad = s->g;
  float *p = s->p, *buf = s->s[SPARSEC_ST_MOMENTUM];
  const int64_t n = s->n;
  if (o->l2 == 0.0f && !o->maximize && !(mom != 0.0f && o->nesterov)) {
    /* The common cases with the loop-invariant tests hoisted (the same
     * operations as the general loop below, so the same bits). */
    if (mom == 0.0f) {
      for (int64_t i = 0; i < n; ++i)
        p[i] = p[i] + neg_lr * grad[i];
    } else if (init) {
      for (int64_t i = 0; i < n; ++i) {
        const float b = buf[i] * mom + one_minus_damp * grad[i];
        buf[i] = b;
        p[i] = p[i] + neg_lr * b;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        buf[i] = grad[i];
        p[i] = p[i] + neg_lr * grad[i];
      }
    }
    return;
  }
  const sparsec__opt oc = *o; /* a local: no aliasing with p */
  for (int64_t i = 0; i < n; ++i)
    sparsec__sgd_elem(&oc, p, grad, buf, i, init);
}

/* Zero-gradient SGD on (p, buf), exactly:
 *   buf' = mu buf + c wd p                        (c = 1 - dampening)
 *   p'   = p - lr buf'                            (plain)
 *   p'   = p - lr (wd p + mu buf')                (nesterov)
 * and the first step of a row whose buffer is not set (buf = wd p). */
void sparsec__sgd_catchup_coef(const sparsec__opt *o, int64_t k, int init,
                               sparsec__catchup_coef *c) {
  const sparsec_optimizer_desc *d = o->d;
  const double lr = o->lr, wd = d->weight_decay, mu = d->momentum, cd = 1.0 - d->dampening;
  const double nest = d->nesterov ? 1.0 : 0.0;
  if (k <= 0 || (wd == 0.0 && mu == 0.0))
    return; /* nothing moves */
  if (mu == 0.0) {
    const double a[4] = {1.0 - lr * wd, 0.0, 0.0, 0.0};
    sparsec__mat2_pow(a, k, c->f);
    c->mode = SPARSEC_CU_SCALE;
    return;
  }
  const double a[4] = {1.0 - lr * wd * (cd * (nest != 0.0 ? mu : 1.0) + nest),
                       -lr * mu * (nest != 0.0 ? mu : 1.0), cd * wd, mu};
  double *f = c->f;
  c->mode = SPARSEC_CU_SGD;
  c->init = init;
  if (init) {
    sparsec__mat2_pow(a, k, f);
    return;
  }
  /* The first skipped step sets buf = wd p: b = [[1 - lr wd (1 + nest mu), 0], [wd, 0]]. */
  const double b[4] = {1.0 - lr * wd * (1.0 + nest * mu), 0.0, wd, 0.0};
  double ak[4];
  sparsec__mat2_pow(a, k - 1, ak);
  f[0] = ak[0] * b[0] + ak[1] * b[2];
  f[1] = ak[0] * b[1] + ak[1] * b[3];
  f[2] = ak[2] * b[0] + ak[3] * b[2];
  f[3] = ak[2] * b[1] + ak[3] * b[3];
}
