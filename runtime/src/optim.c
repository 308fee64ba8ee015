/*===- optim.c - SGD steps on dense, CSR and embedding parameters -*- C -*-===*
 *
 * torch.optim.SGD (single-tensor path, maximize=False), elementwise and in
 * float like PyTorch for f32 parameters, with every hyper-parameter cast to
 * float as ATen casts `alpha`:
 *
 *   g = grad + weight_decay * p                  (if weight_decay != 0)
 *   buf = g                                      (first step)
 *   buf = momentum * buf + (1 - dampening) * g   (later steps)
 *   g = g + momentum * buf  (nesterov)  or  g = buf
 *   p = p + (-lr) * g
 *
 * Dense parameters and the values of CSR parameters (whose gradient lives on
 * the weight's own pattern) use the same elementwise kernel. Embedding
 * tables use lazy semantics: only rows present in the batch change, and
 * each row has its own "momentum buffer initialised" flag, so a row follows
 * exactly the dense SGD trajectory of the steps that touched it. When the
 * update is non-linear (momentum or weight decay) the row gradient is
 * coalesced first; plain SGD scatter-adds rows in batch order, as PyTorch
 * adds an uncoalesced sparse gradient.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <string.h>

sparsec__sgd sparsec__sgd_make(const sparsec_optimizer_desc *opt, double lr) {
  sparsec__sgd o;
  o.lr = (float)lr;
  o.momentum = (float)opt->momentum;
  /* PyTorch passes alpha = 1 - dampening, computed in double. */
  o.one_minus_dampening = (float)(1.0 - opt->dampening);
  o.weight_decay = (float)opt->weight_decay;
  o.nesterov = opt->nesterov != 0;
  return o;
}

int sparsec__sgd_needs_coalesce(const sparsec__sgd *o) {
  return o->momentum != 0.0f || o->weight_decay != 0.0f;
}

/* One step on `n` contiguous values; `init` is the momentum flag. */
static void sparsec__sgd_span(const sparsec__sgd *o, float *p, const float *grad, float *buf,
                              int init, int64_t n) {
  const float neg_lr = -o->lr, wd = o->weight_decay, mom = o->momentum;
  const float one_minus_damp = o->one_minus_dampening;
  if (mom == 0.0f) {
    if (wd == 0.0f) {
      for (int64_t i = 0; i < n; ++i)
        p[i] = p[i] + neg_lr * grad[i];
    } else {
      for (int64_t i = 0; i < n; ++i) {
        float g = grad[i] + wd * p[i];
        p[i] = p[i] + neg_lr * g;
      }
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    float g = grad[i];
    if (wd != 0.0f)
      g = g + wd * p[i];
    float b;
    if (!init)
      b = g;
    else
      b = buf[i] * mom + one_minus_damp * g;
    buf[i] = b;
    g = o->nesterov ? g + mom * b : b;
    p[i] = p[i] + neg_lr * g;
  }
}

void sparsec__sgd_dense(const sparsec__sgd *o, float *param, const float *grad, float *buf,
                        uint8_t *buf_init, int64_t n) {
  int init = buf_init ? *buf_init : 0;
  sparsec__sgd_span(o, param, grad, buf, init, n);
  if (o->momentum != 0.0f && buf_init)
    *buf_init = 1;
}

void sparsec__sgd_rows(const sparsec__sgd *o, float *table, int64_t rows, sparsec__coo_grad *g,
                       float *buf, uint8_t *row_init, sparsec__coo_workspace *ws) {
  const int64_t dim = g->dim;
  if (!sparsec__sgd_needs_coalesce(o)) {
    const float neg_lr = -o->lr;
    for (int64_t i = 0; i < g->n; ++i) {
      float *p = table + (size_t)g->ids[i] * (size_t)dim;
      const float *r = g->rows + (size_t)i * (size_t)dim;
      for (int64_t d = 0; d < dim; ++d)
        p[d] = p[d] + neg_lr * r[d];
    }
    return;
  }
  sparsec__coo_coalesce(g, rows, ws);
  for (int64_t i = 0; i < g->n; ++i) {
    size_t id = (size_t)g->ids[i];
    float *b = buf ? buf + id * (size_t)dim : NULL;
    int init = row_init ? row_init[id] : 0;
    sparsec__sgd_span(o, table + id * (size_t)dim, g->rows + (size_t)i * (size_t)dim, b, init, dim);
    if (o->momentum != 0.0f && row_init)
      row_init[id] = 1;
  }
}
