/*===- optim_adam.c - Adam / AdamW steps and catch-up --------------*- C -*-===*
 *
 * torch.optim.Adam / AdamW (single-tensor path) in float, step t:
 *
 *   g  = -grad if maximize, else grad
 *   g  = g + weight_decay * p                  (Adam: L2)
 *   p  = p * (1 - lr * weight_decay)           (AdamW: decoupled)
 *   m  = beta1 * m + (1 - beta1) * g
 *   v  = beta2 * v + (1 - beta2) * g * g
 *   vm = max(vm, v)                            (amsgrad; v below is vm)
 *   p  = p + (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * Lazy embedding rows use torch.optim.SparseAdam's arithmetic instead:
 *
 *   m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2)
 *   p  = p + (-lr sqrt(1 - beta2^t) / (1 - beta1^t)) * (m / (sqrt(v) + eps))
 *
 * (note eps is added before the second-moment bias correction there).
 *
 * Catch-up of k zero-gradient steps: the moments decay exactly
 * (m <- beta1^k m, v <- beta2^k v, vm unchanged); the k parameter steps
 * are approximated in closed form, see sparsec__adam_catchup.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>

void sparsec__adam_span(const sparsec__opt *o, const sparsec__span *s, int sparse_form) {
  const sparsec__opt oc = *o; /* a local: no aliasing with p */
  float *m = s->s[SPARSEC_ST_EXP_AVG], *v = s->s[SPARSEC_ST_EXP_AVG_SQ];
  float *vmax = s->s[SPARSEC_ST_MAX_EXP_AVG_SQ];
  for (int64_t i = 0; i < s->n; ++i)
    sparsec__adam_elem(&oc, s->p, s->g, m, v, vmax, i, sparse_form);
}

/* k skipped steps, from step t - k to t - 1 (t = o->step), with a zero
 * gradient. Exact dense Adam/AdamW would move p by, at skipped step j,
 *
 *   u_j = lr/(1 - b1^s_j) * b1^j m / (b2^(j/2) sqrt(v)/sqrt(1 - b2^s_j) + eps)
 *
 * (s_j its global step, m and v the moments before the gap). The
 * approximation takes the lr and both bias corrections of step t and
 * scales eps by b2^(j/2) along with sqrt(v), which makes every u_j a
 * multiple of one zero-gradient step U computed from the old moments:
 *
 *   U   = lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps),  u_j = U r^j
 *   r   = b1 / sqrt(b2)       (amsgrad: r = b1, vm is constant, eps exact)
 *
 * AdamW also decays p by d = 1 - lr wd every skipped step, so (p, w) with
 * w_0 = U follows the linear map p' = d p - r w, w' = r w, i.e. one 2x2
 * matrix power (Adam: d = 1). When r >= 1 (b1 >= sqrt(b2), or b2 = 0) the
 * series would not converge and the parameter steps are skipped (r = 0). */
void sparsec__adam_catchup_coef(const sparsec__opt *o, int64_t k, sparsec__catchup_coef *c) {
  const sparsec_optimizer_desc *d = o->d;
  if (k <= 0)
    return;
  const double b1 = d->beta1, b2 = d->beta2, t = (double)o->step;
  double r = d->amsgrad ? b1 : (b2 > 0.0 ? b1 / sqrt(b2) : 1.0);
  if (!(r < 1.0))
    r = 0.0;
  const double dec = o->kind == SPARSEC_OPT_ADAMW ? 1.0 - o->lr * d->weight_decay : 1.0;
  const double a[4] = {dec, -r, 0.0, r};
  sparsec__mat2_pow(a, k, c->f);
  c->mode = SPARSEC_CU_ADAM;
  c->decay1 = pow(b1, (double)k);
  c->decay2 = pow(b2, (double)k);
  c->step_size = o->lr / (1.0 - pow(b1, t));
  c->bc2_sqrt = sqrt(1.0 - pow(b2, t));
  c->eps = d->eps;
}
