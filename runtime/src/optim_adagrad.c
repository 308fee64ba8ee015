/*===- optim_adagrad.c - Adagrad and row-wise Adagrad steps --------*- C -*-===*
 *
 * torch.optim.Adagrad (single-tensor path) in float:
 *
 *   g   = -grad if maximize, else grad;  g = g + weight_decay * p
 *   clr = lr / (1 + (step - 1) * lr_decay)              (double)
 *   sum = sum + g * g
 *   std = sqrt(sum) + eps
 *   p   = p + (-clr * g) / std          (dense gradient)
 *   p   = p + -clr * (g / std)          (sparse gradient: PyTorch's order)
 *
 * Row-wise Adagrad (FBGEMM's EXACT_ROWWISE_ADAGRAD with L2 weight decay)
 * shares one accumulator per row: sum_r = sum_r + mean_j(g_rj^2) (the mean
 * accumulated in double), then every value of the row uses
 * std_r = sqrt(sum_r) + eps. The state does not decay, so there is nothing
 * to catch up (docs/optimizers.md).
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>

void sparsec__adagrad_span(const sparsec__opt *o, const sparsec__span *s, int sparse_form) {
  const float eps = o->eps, neg_clr = o->neg_clr;
  const float *grad = s->g;
  float *p = s->p;
  const int64_t n = s->n;
  if (s->row_sum) {
    if (n <= 0)
      return;
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float g = sparsec__grad(o, grad[i], p[i]);
      acc += (double)g * (double)g;
    }
    const float sum = sparsec__rowwise_sum(*s->row_sum, acc, n);
    *s->row_sum = sum;
    const float std = sqrtf(sum) + eps;
    for (int64_t i = 0; i < n; ++i) {
      const float g = sparsec__grad(o, grad[i], p[i]);
      p[i] = sparsec__adagrad_update(p[i], g, std, neg_clr, sparse_form);
    }
    return;
  }
  const sparsec__opt oc = *o; /* a local: no aliasing with p */
  float *sum = s->s[SPARSEC_ST_SUM];
  for (int64_t i = 0; i < n; ++i)
    sparsec__adagrad_elem(&oc, p, grad, sum, i, sparse_form);
}
