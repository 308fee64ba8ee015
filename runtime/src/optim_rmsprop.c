/*===- optim_rmsprop.c - RMSprop step and catch-up -----------------*- C -*-===*
 *
 * torch.optim.RMSprop (single-tensor path) in float:
 *
 *   g   = -grad if maximize, else grad;  g = g + weight_decay * p
 *   v   = alpha * v + (1 - alpha) * g * g                   (square_avg)
 *   ga  = alpha * ga + (1 - alpha) * g                      (grad_avg, centered)
 *   avg = sqrt(v - ga * ga) + eps  (centered)  or  sqrt(v) + eps
 *   buf = momentum * buf + g / avg;  p = p + (-lr) * buf    (momentum > 0;
 *                                                            buf starts at 0)
 *   p   = p + (-lr * g) / avg                               (momentum = 0)
 *
 * Catch-up of k zero-gradient steps (exact without weight decay):
 * v <- alpha^k v, ga <- alpha^k ga, and with momentum
 * p <- p - lr mu (1 - mu^k) / (1 - mu) buf, buf <- mu^k buf.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>

void sparsec__rmsprop_span(const sparsec__opt *o, const sparsec__span *s) {
  const sparsec__opt oc = *o; /* a local: no aliasing with p */
  float *sq = s->s[SPARSEC_ST_SQUARE_AVG], *ga = s->s[SPARSEC_ST_GRAD_AVG];
  float *buf = s->s[SPARSEC_ST_MOMENTUM];
  for (int64_t i = 0; i < s->n; ++i)
    sparsec__rmsprop_elem(&oc, s->p, s->g, sq, ga, buf, i);
}

void sparsec__rmsprop_catchup_coef(const sparsec__opt *o, int64_t k, sparsec__catchup_coef *c) {
  const sparsec_optimizer_desc *d = o->d;
  if (k <= 0)
    return;
  c->mode = SPARSEC_CU_RMSPROP;
  c->decay1 = pow(d->alpha, (double)k);
  /* (p, buf) -> (p - lr mu buf, mu buf) per step (used with momentum). */
  const double a[4] = {1.0, -o->lr * d->momentum, 0.0, d->momentum};
  sparsec__mat2_pow(a, k, c->f);
}
