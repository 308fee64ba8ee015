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

void sparsec__rmsprop_catchup(const sparsec__opt *o, const sparsec__span *s, int64_t k) {
  const sparsec_optimizer_desc *d = o->d;
  if (k <= 0)
    return;
  const double ak = pow(d->alpha, (double)k);
  float *sq = s->s[SPARSEC_ST_SQUARE_AVG], *ga = s->s[SPARSEC_ST_GRAD_AVG];
  float *buf = s->s[SPARSEC_ST_MOMENTUM], *p = s->p;
  /* (p, buf) -> (p - lr mu buf, mu buf) per step. */
  double f[4] = {1.0, 0.0, 0.0, 1.0};
  if (buf) {
    const double a[4] = {1.0, -o->lr * d->momentum, 0.0, d->momentum};
    sparsec__mat2_pow(a, k, f);
  }
  for (int64_t i = 0; i < s->n; ++i) {
    sq[i] = (float)((double)sq[i] * ak);
    if (ga)
      ga[i] = (float)((double)ga[i] * ak);
    if (buf) {
      const double pi = p[i], bi = buf[i];
      p[i] = (float)(f[0] * pi + f[1] * bi);
      buf[i] = (float)(f[3] * bi);
    }
  }
}
