/*===- train.c - forward and train_step ----------------------------*- C -*-===*
 *
 * The two hot entry points. Each validates the call completely, then builds
 * the `bufs` array in the order runtime.h documents and calls the compiled
 * kernel. Both renorm the batch's rows of max_norm embeddings first
 * (embedding.c; undone if the call then fails). train_step additionally
 * sizes the embedding gradient buffers for the batch (before the kernel, so
 * a failed allocation changes nothing), brings the batch's rows of catch-up
 * tables up to date (undone if the step then fails), zero-fills every
 * gradient (kernels may accumulate), checks the loss, and only then runs
 * the optimizer step on every parameter (optim.c) and counts the step.
 * A model resident on a CUDA device takes its own path after validation
 * (device.c).
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPARSEC_STACK_BUFS 64

/* Number of arrays a parameter contributes to `bufs`. */
static int32_t sparsec__param_arrays(const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_CSR ? 3 : 1;
}

static int32_t sparsec__push_params(sparsec_model *m, void **bufs, int32_t k) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout == SPARSEC_LAYOUT_CSR) {
      bufs[k++] = p->positions;
      bufs[k++] = p->coordinates;
    }
    bufs[k++] = p->values;
  }
  return k;
}

/* A `bufs` array of `n` slots: on the stack when small, else malloc'd. */
static void **sparsec__bufs_alloc(void **stack, int64_t n) {
  if (n <= SPARSEC_STACK_BUFS)
    return stack;
  return (void **)sparsec__malloc((size_t)n * sizeof(void *));
}

SPARSEC_API int sparsec_forward(sparsec_model *m, int64_t batch, const void *const *inputs,
                                float *output) {
  sparsec__clear_error();
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NULL, "forward: model is NULL");
  if (!output)
    return sparsec__fail(SPARSEC_ERR_NULL, "forward: output is NULL");
  int rc = sparsec__validate_inputs(m, "forward", batch, inputs, 0);
  if (rc != SPARSEC_OK)
    return rc;
  sparsec_input_desc out_desc;
  memset(&out_desc, 0, sizeof(out_desc));
  out_desc.dtype = SPARSEC_F32;
  out_desc.rank = m->output_rank;
  memcpy(out_desc.dims, m->output_dims, sizeof(out_desc.dims));
  if (sparsec__input_numel(&out_desc, batch) < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "forward: batch %lld is too large: the output would not fit in memory",
                         (long long)batch);
  if (!m->forward)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "forward: model '%s' has no forward kernel",
                         m->name);
  rc = sparsec__renorm_reserve(m, "forward", batch);
  if (rc != SPARSEC_OK)
    return rc;

  int64_t n = 1;
  for (int32_t i = 0; i < m->num_inputs; ++i)
    n += !m->inputs[i].is_target;
  for (int32_t i = 0; i < m->num_params; ++i)
    n += sparsec__param_arrays(&m->params[i]);
  void *stack[SPARSEC_STACK_BUFS];
  void **bufs = sparsec__bufs_alloc(stack, n);
  if (!bufs)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "forward: cannot allocate the argument array");
  if (m->dev) { /* resident on a CUDA device (device.c) */
    rc = sparsec__device_forward(m, batch, inputs, sparsec__input_numel(&out_desc, batch), output,
                                 bufs);
    if (bufs != stack)
      free(bufs);
    return rc;
  }
  int32_t k = 0, j = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i)
    if (!m->inputs[i].is_target)
      bufs[k++] = sparsec__unconst(inputs[j++]);
  k = sparsec__push_params(m, bufs, k);
  bufs[k++] = output;
  sparsec__renorm_batch(m, batch, inputs, 0);
  int krc = m->forward(bufs, batch);
  if (bufs != stack)
    free(bufs);
  if (krc != 0) {
    sparsec__renorm_undo(m);
    return sparsec__fail(SPARSEC_ERR_KERNEL, "forward: kernel of model '%s' failed with code %d",
                         m->name, krc);
  }
  return SPARSEC_OK;
}

/* A failed train_step: undoes the renorm, then the catch-up before it. */
static void sparsec__undo_call(sparsec_model *m) {
  sparsec__renorm_undo(m);
  sparsec__catchup_undo(m);
}

/* Grows the gradient storage of embedding `p` to `rows` ids (and the
 * coalescing workspace and catch-up undo log when the step needs them). */
static int sparsec__reserve_rows(sparsec_model *m, sparsec__param *p, int64_t rows,
                                 int need_coalesce) {
  const int64_t dim = p->desc.dims[1];
  int64_t vals;
  if (sparsec__mul_i64(rows, dim, &vals) != 0 || (uint64_t)vals > SIZE_MAX / sizeof(float) ||
      rows > (int64_t)UINT32_MAX)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "train_step: the batch gives embedding '%s' %lld rows of %lld floats, "
                         "which do not fit in memory",
                         p->desc.name, (long long)rows, (long long)dim);
  if (rows > p->grad_cap || !p->grad || !p->grad_ids) {
    float *g = (float *)realloc(p->grad, (size_t)(vals > 0 ? vals : 1) * sizeof(float));
    if (!g)
      goto nomem;
    p->grad = g;
    int32_t *ids = (int32_t *)realloc(p->grad_ids, (size_t)(rows > 0 ? rows : 1) * sizeof(int32_t));
    if (!ids)
      goto nomem;
    p->grad_ids = ids;
    p->grad_cap = rows;
  }
  if (need_coalesce && sparsec__coo_reserve(&p->coo, rows, dim) != 0)
    goto nomem;
  if (p->last_step && sparsec__undo_reserve(m, p, rows) != 0)
    goto nomem;
  return SPARSEC_OK;
nomem:
  return sparsec__fail(SPARSEC_ERR_NOMEM,
                       "train_step: cannot allocate the gradient of embedding '%s' (%lld rows)",
                       p->desc.name, (long long)rows);
}

SPARSEC_API int sparsec_train_step(sparsec_model *m, int64_t batch, const void *const *inputs,
                                   float *loss) {
  sparsec__clear_error();
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NULL, "train_step: model is NULL");
  if (!loss)
    return sparsec__fail(SPARSEC_ERR_NULL, "train_step: loss is NULL");
  int rc = sparsec__validate_inputs(m, "train_step", batch, inputs, 1);
  if (rc != SPARSEC_OK)
    return rc;
  if (!m->train)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "train_step: model '%s' has no train kernel",
                         m->name);

  const int need_coalesce =
      sparsec__opt_coalesces(&m->opt) && m->opt.sparse_mode != SPARSEC_SPARSE_DENSE;
  /* Size every embedding gradient before anything changes. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING)
      continue;
    int64_t rows = sparsec__input_numel(&m->inputs[p->desc.ids_input], batch);
    rc = sparsec__reserve_rows(m, p, rows, need_coalesce || sparsec__fuses_rows(m, p));
    if (rc != SPARSEC_OK)
      return rc;
  }
  rc = sparsec__renorm_reserve(m, "train_step", batch);
  if (rc != SPARSEC_OK)
    return rc;
  /* The kernel's arguments; RigL layers: buffers for the captured layer
   * input and output gradient. */
  int64_t n = 1 + m->num_inputs;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    n += sparsec__param_arrays(p) + 1;
    if (p->desc.dynamic != SPARSEC_DYNAMIC_RIGL)
      continue;
    n += 2;
    if (sparsec__dynamic_reserve(p, batch) != 0)
      return sparsec__fail(SPARSEC_ERR_NOMEM,
                           "train_step: cannot allocate the RigL captures of '%s' for batch %lld",
                           p->desc.name, (long long)batch);
  }
  void *stack[SPARSEC_STACK_BUFS];
  void **bufs = sparsec__bufs_alloc(stack, n);
  if (!bufs)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "train_step: cannot allocate the argument array");
  if (m->dev) { /* resident on a CUDA device (device.c) */
    rc = sparsec__device_train_step(m, batch, inputs, loss, bufs);
    if (bufs != stack)
      free(bufs);
    return rc;
  }

  /* Catch-up tables: the kernel must read the batch's rows up to date;
   * then max_norm renorms what it reads (PyTorch: forward after the step). */
  sparsec__catchup_batch(m, batch, inputs);
  sparsec__renorm_batch(m, batch, inputs, 1);

  /* Gradients: zero-filled; embedding ids converted for the optimizer. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING) {
      memset(p->grad, 0, (size_t)p->nnz * sizeof(float));
      continue;
    }
    const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
    const void *ids = inputs[p->desc.ids_input];
    int64_t rows = sparsec__input_numel(in, batch);
    for (int64_t r = 0; r < rows; ++r)
      p->grad_ids[r] = (int32_t)sparsec__id_at(in, ids, r);
    p->grad_rows = rows;
    memset(p->grad, 0, (size_t)(rows * p->desc.dims[1]) * sizeof(float));
  }

  float loss_value = 0.0f;
  int32_t k = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i)
    bufs[k++] = sparsec__unconst(inputs[i]);
  k = sparsec__push_params(m, bufs, k);
  for (int32_t i = 0; i < m->num_params; ++i)
    bufs[k++] = m->params[i].grad;
  for (int32_t i = 0; i < m->num_params; ++i)
    if (m->params[i].desc.dynamic == SPARSEC_DYNAMIC_RIGL) {
      bufs[k++] = m->params[i].dyn.cap_x;
      bufs[k++] = m->params[i].dyn.cap_dy;
      m->params[i].dyn.cap_batch = batch;
    }
  bufs[k++] = &loss_value;
  int krc = m->train(bufs, batch);
  if (bufs != stack)
    free(bufs);
  if (krc != 0) {
    sparsec__undo_call(m);
    return sparsec__fail(SPARSEC_ERR_KERNEL, "train_step: kernel of model '%s' failed with code %d",
                         m->name, krc);
  }
  *loss = loss_value;
  if (!isfinite(loss_value)) {
    sparsec__undo_call(m);
    return sparsec__fail(SPARSEC_ERR_NONFINITE,
                         "train_step: loss is not finite (%g); optimizer step skipped",
                         (double)loss_value);
  }

  sparsec__opt_step(m);
  ++m->step;
  sparsec__prune_step(m, m->step); /* masks (prune.c); cannot fail */
  for (int32_t i = 0; i < m->num_params; ++i)
    if (m->params[i].desc.dynamic != SPARSEC_DYNAMIC_NONE &&
        sparsec__dynamic_update(m, &m->params[i], m->step) != 0)
      return sparsec__fail(SPARSEC_ERR_KERNEL,
                           "train_step: the growth-score kernel of '%s' failed; the step was "
                           "taken, the pattern was not updated",
                           m->params[i].desc.name);
  return SPARSEC_OK;
}
