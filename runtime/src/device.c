/*===- device.c - Models resident on a CUDA device ------------------*- C -*-===*
 *
 * A model created with sparsec_create_on(..., "cuda", ...) keeps its
 * parameters, gradients and optimizer state in device memory; forward and
 * train_step copy only the inputs in and the output (forward) out, run the
 * compiler's CUDA functions (sparsec_gpu_kernel_<Model>_*, called through
 * the same trampolines as the CPU kernels, with device pointers) and the
 * optimizer kernels of runtime/cuda/optim.cu (cuda_optim.c).
 *
 * The host copy in sparsec__param stays the model's public face: an
 * accessor that reads it first downloads the kinds of array it reads that
 * the device changed (`host_stale`: values, gradients, optimizer state;
 * param_values the values, param_grad the gradients, save everything), and
 * one that may write it marks those kinds stale on the device
 * (`device_stale`: param_values the values, load everything), so the next
 * forward or train_step uploads them again.
 *
 * A library compiled with --cuda-emulate carries host versions of the CUDA
 * functions (every kernel as loops, sparsec-gpu-emulate): its "device"
 * memory is host memory and its optimizer step the CPU's, so this whole
 * path - residency, copies, synchronisation, the step driven on device
 * buffers - runs and is tested on machines without a GPU.
 *
 * The CUDA target covers CSR and dense parameters and embeddings (every
 * mode and option) under every optimizer, with clipping; the optimizer step
 * is device_step.c's, the embedding rows' work around the kernels
 * device_rows.c's; buffers (masks, K-Winners duty cycles) take the next
 * value the train function wrote, and a pruning step or a SET/RigL update
 * runs on the host copy (downloaded, then uploaded).
 *===----------------------------------------------------------------------===*/
#include "device_internal.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*===-- Device memory: the GPU's through mgpu*, or host memory (emulated) --===*/

void *sparsec__dev_alloc(sparsec__device *d, size_t bytes) {
  if (bytes == 0)
    bytes = 1;
  return d->k.emulated ? malloc(bytes) : sparsec__cuda_mem_alloc(bytes, false);
}

void sparsec__dev_free(sparsec__device *d, void *p) {
  if (!p)
    return;
  if (d->k.emulated)
    free(p);
  else
    sparsec__cuda_mem_free(p, d->stream);
}

void sparsec__dev_copy(sparsec__device *d, void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || !dst || !src)
    return;
  if (d->k.emulated) {
    memcpy(dst, src, bytes);
    return;
  }
  mgpuMemcpy(dst, sparsec__unconst(src), bytes, d->stream);
  mgpuStreamSynchronize(d->stream);
}

void sparsec__dev_zero(sparsec__device *d, float *p, int64_t n) {
  if (n <= 0 || !p)
    return;
  if (d->k.emulated)
    memset(p, 0, (size_t)n * sizeof(float));
  else
    mgpuMemset32(p, 0u, (size_t)n, d->stream);
}

int sparsec__dev_status(const sparsec__device *d, const char *what) {
  if (d->k.emulated || sparsec_cuda_take_error() == SPARSEC_OK)
    return SPARSEC_OK;
  char why[512];
  snprintf(why, sizeof(why), "%s", sparsec_last_error());
  return sparsec__fail(SPARSEC_ERR_CUDA, "%s: %s", what, why);
}

int sparsec__dev_reserve(sparsec__device *d, void **buf, size_t *cap, size_t bytes,
                         const char *what) {
  if (*buf && *cap >= bytes)
    return SPARSEC_OK;
  sparsec__dev_free(d, *buf);
  *cap = 0;
  if (!(*buf = sparsec__dev_alloc(d, bytes)))
    return d->k.emulated
               ? sparsec__fail(SPARSEC_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes)
               : sparsec__dev_status(d, what);
  *cap = bytes;
  return SPARSEC_OK;
}

int sparsec__dev_upload(sparsec__device *d, sparsec__dev_buf *b, const void *src, size_t bytes,
                        const char *what) {
  int rc = sparsec__dev_reserve(d, &b->p, &b->cap, bytes, what);
  if (rc == SPARSEC_OK)
    sparsec__dev_copy(d, b->p, src, bytes);
  return rc;
}

/*===-- What the device copy holds ------------------------------------------===*/

/* The arrays of parameter `p` and their device copies, with byte sizes and
 * kinds (SPARSEC_DEV_*): values, gradient, positions, coordinates, then
 * each kept state. */
typedef struct {
  void *host[4 + SPARSEC_NSTATE];
  void **dev[4 + SPARSEC_NSTATE];
  size_t bytes[4 + SPARSEC_NSTATE];
  int kind[4 + SPARSEC_NSTATE];
  int n;
} sparsec__arrays;

static sparsec__arrays arrays_of(const sparsec_model *m, sparsec__param *p, sparsec__dev_param *q) {
  sparsec__arrays a;
  memset(&a, 0, sizeof(a));
#define SPARSEC_ARRAY(h, dv, b, k)                                                                 \
  do {                                                                                             \
    a.host[a.n] = (h);                                                                             \
    a.dev[a.n] = (void **)(dv);                                                                    \
    a.kind[a.n] = (k);                                                                             \
    a.bytes[a.n++] = (b);                                                                          \
  } while (0)
  SPARSEC_ARRAY(p->values, &q->values, sparsec__floats(p->nnz), SPARSEC_DEV_VALUES);
  if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING) /* rows: sized per batch */
    SPARSEC_ARRAY(p->grad, &q->grad, sparsec__floats(p->nnz), SPARSEC_DEV_GRADS);
  if (p->desc.layout == SPARSEC_LAYOUT_CSR) {
    SPARSEC_ARRAY(p->positions, &q->positions, (size_t)(p->rows + 1) * sizeof(int32_t),
                  SPARSEC_DEV_PATTERN);
    SPARSEC_ARRAY(p->coordinates, &q->coordinates, (size_t)p->nnz * sizeof(int32_t),
                  SPARSEC_DEV_PATTERN);
  }
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    if (p->state[k])
      SPARSEC_ARRAY(p->state[k], &q->state[k], sparsec__floats(sparsec__state_elems(&m->opt, p, k)),
                    SPARSEC_DEV_STATE);
#undef SPARSEC_ARRAY
  return a;
}

/* Host -> device for the kinds of array the host wrote (after create,
 * load, param_values). */
static int upload(sparsec_model *m) {
  sparsec__device *d = m->dev;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__arrays a = arrays_of(m, &m->params[i], &d->params[i]);
    for (int j = 0; j < a.n; ++j)
      if (a.kind[j] & d->device_stale)
        sparsec__dev_copy(d, *a.dev[j], a.host[j], a.bytes[j]);
  }
  int rc = sparsec__dev_status(d, "uploading the parameters to the CUDA device");
  if (rc == SPARSEC_OK)
    d->device_stale = 0;
  return rc;
}

int sparsec__device_host_sync(sparsec_model *m, int kinds) {
  sparsec__device *d = m ? m->dev : NULL;
  if (!d || !(d->host_stale & kinds))
    return SPARSEC_OK;
  kinds &= d->host_stale;
  (void)sparsec_cuda_take_error();
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__arrays a = arrays_of(m, p, &d->params[i]);
    for (int j = 0; j < a.n; ++j)
      if (a.kind[j] & kinds)
        sparsec__dev_copy(d, a.host[j], *a.dev[j], a.bytes[j]);
    if ((kinds & SPARSEC_DEV_GRADS) && p->desc.layout == SPARSEC_LAYOUT_EMBEDDING &&
        p->grad_rows > 0)
      sparsec__dev_copy(d, p->grad, d->params[i].grad,
                        sparsec__floats(p->grad_rows * p->desc.dims[1]));
  }
  int rc = sparsec__dev_status(d, "reading the parameters back from the CUDA device");
  if (rc == SPARSEC_OK)
    d->host_stale &= ~kinds;
  return rc;
}

void sparsec__device_host_written(sparsec_model *m, int kinds) {
  if (m && m->dev)
    m->dev->device_stale |= kinds;
}

int sparsec__dev_ensure(sparsec_model *m) { return m->dev->device_stale ? upload(m) : SPARSEC_OK; }

/*===-- Create and destroy ----------------------------------------------------===*/

void sparsec__device_free(sparsec_model *m) {
  sparsec__device *d = m ? m->dev : NULL;
  if (!d)
    return;
  if (d->params)
    for (int32_t i = 0; i < m->num_params; ++i) {
      sparsec__arrays a = arrays_of(m, &m->params[i], &d->params[i]);
      for (int j = 0; j < a.n; ++j)
        sparsec__dev_free(d, *a.dev[j]);
      sparsec__dev_param *q = &d->params[i];
      if (m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING)
        sparsec__dev_free(d, q->grad);
      sparsec__dev_free(d, q->dense_grad);
      sparsec__dev_buf *bufs[] = {&q->perm,    &q->starts,  &q->keys,    &q->init,    &q->cu_rows,
                                  &q->cu_coef, &q->cu_save, &q->rn_rows, &q->rn_save, &q->freq,
                                  &q->cap_x,   &q->cap_dy,  &q->order};
      for (size_t b = 0; b < sizeof(bufs) / sizeof(bufs[0]); ++b)
        sparsec__dev_free(d, bufs[b]->p);
    }
  if (d->inputs)
    for (int32_t i = 0; i < m->num_inputs; ++i)
      sparsec__dev_free(d, d->inputs[i]);
  sparsec__dev_free(d, d->output);
  sparsec__dev_free(d, d->clip_sum);
  if (d->stream)
    mgpuStreamDestroy(d->stream);
  if (!d->k.emulated)
    (void)sparsec_cuda_take_error(); /* a destroy has no status to report */
  free(d->params);
  free(d->inputs);
  free(d->input_cap);
  free(d);
  m->dev = NULL;
}

int sparsec__device_attach(sparsec_model *m, const sparsec_device_kernels *k) {
  if (!k || !k->forward)
    return sparsec__fail(SPARSEC_ERR_CUDA,
                         "create: model '%s' was compiled without CUDA kernels; compile it with "
                         "sparsec --target=cpu,cuda",
                         m->name);
  if (!k->emulated) {
    int rc = sparsec_cuda_available();
    if (rc != SPARSEC_OK)
      return rc;
    (void)sparsec_cuda_take_error();
  }
  sparsec__device *d = (sparsec__device *)sparsec__calloc(1, sizeof(*d));
  if (!d)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
  m->dev = d;
  d->k = *k;
  d->device_stale = SPARSEC_DEV_ALL;
  d->params = (sparsec__dev_param *)sparsec__calloc((size_t)m->num_params, sizeof(*d->params));
  d->inputs = (void **)sparsec__calloc((size_t)m->num_inputs, sizeof(void *));
  d->input_cap = (size_t *)sparsec__calloc((size_t)m->num_inputs, sizeof(size_t));
  if (!d->params || !d->inputs || !d->input_cap) {
    sparsec__device_free(m);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
  }
  if (!k->emulated)
    d->stream = mgpuStreamCreate();
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__arrays a = arrays_of(m, &m->params[i], &d->params[i]);
    for (int j = 0; j < a.n; ++j)
      if (!(*a.dev[j] = sparsec__dev_alloc(d, a.bytes[j])) && k->emulated) {
        sparsec__device_free(m);
        return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device copy of '%s'",
                             m->params[i].desc.name);
      }
  }
  if (m->opt.max_grad_norm > 0.0 && !(d->clip_sum = sparsec__dev_alloc(d, sizeof(double))) &&
      k->emulated) {
    sparsec__device_free(m);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
  }
  for (int32_t i = 0; i < m->num_params; ++i)
    if (m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING &&
        m->opt.sparse_mode == SPARSEC_SPARSE_DENSE &&
        !(d->params[i].dense_grad =
              (float *)sparsec__dev_alloc(d, sparsec__floats(m->params[i].nnz))) &&
        k->emulated) {
      sparsec__device_free(m);
      return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
    }
  int rc = sparsec__dev_status(d, "create: allocating the parameters on the CUDA device");
  if (rc == SPARSEC_OK)
    rc = upload(m);
  if (rc != SPARSEC_OK)
    sparsec__device_free(m);
  return rc;
}

SPARSEC_API int sparsec_model_device(const sparsec_model *m, const char **device) {
  sparsec__clear_error();
  if (!m || !device)
    return sparsec__fail(SPARSEC_ERR_NULL, "device: NULL model or output pointer");
  *device = !m->dev ? "cpu" : m->dev->k.emulated ? "cuda (emulated on the host)" : "cuda";
  return SPARSEC_OK;
}

/*===-- forward and train_step on the device ----------------------------------===*/

/* The start of a call: a clean CUDA error record, the host copy uploaded
 * if it is newer, the call's inputs copied to the device (`with_targets`:
 * train_step); fills `bufs` from slot 0 with them and then every
 * parameter's arrays, returns the next slot or -1 with the status in
 * `*rc`. */
static int32_t push_inputs(sparsec_model *m, const char *what, int64_t batch,
                           const void *const *inputs, int with_targets, void **bufs, int *rc) {
  sparsec__device *d = m->dev;
  (void)sparsec_cuda_take_error();
  if ((*rc = sparsec__dev_ensure(m)) != SPARSEC_OK)
    return -1;
  int32_t k = 0, j = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i) {
    const sparsec_input_desc *in = &m->inputs[i];
    if (in->is_target && !with_targets)
      continue;
    size_t bytes = (size_t)sparsec__input_numel(in, batch) * sparsec__dtype_size(in->dtype);
    *rc = sparsec__dev_reserve(d, &d->inputs[i], &d->input_cap[i], bytes, what);
    if (*rc != SPARSEC_OK)
      return -1;
    sparsec__dev_copy(d, d->inputs[i], inputs[j++], bytes);
    bufs[k++] = d->inputs[i];
  }
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__dev_param *q = &d->params[i];
    if (m->params[i].desc.layout == SPARSEC_LAYOUT_CSR) {
      bufs[k++] = q->positions;
      bufs[k++] = q->coordinates;
    }
    bufs[k++] = q->values;
  }
  return k;
}

/* A failed call: the rows catch-up and max_norm changed restored. */
static int failed(sparsec_model *m, int rc) {
  sparsec__device_rows_undo(m);
  return rc;
}

int sparsec__device_forward(sparsec_model *m, int64_t batch, const void *const *inputs,
                            int64_t out_numel, float *output, void **bufs) {
  sparsec__device *d = m->dev;
  int rc;
  int32_t k = push_inputs(m, "forward", batch, inputs, 0, bufs, &rc);
  if (k < 0)
    return rc;
  rc = sparsec__dev_reserve(d, &d->output, &d->output_cap, sparsec__floats(out_numel), "forward");
  if (rc != SPARSEC_OK)
    return rc;
  bufs[k++] = d->output;
  for (int32_t i = 0; i < m->num_params; ++i) /* no catch-up in forward */
    d->params[i].cu_saved = 0;
  rc = sparsec__device_renorm_batch(m, batch, inputs, 0);
  if (rc != SPARSEC_OK)
    return failed(m, rc);
  int krc = d->k.forward(bufs, batch);
  rc = sparsec__dev_status(d, "forward on the CUDA device");
  if (rc == SPARSEC_OK && krc != 0)
    rc = sparsec__fail(SPARSEC_ERR_KERNEL, "forward: CUDA kernel of model '%s' failed with code %d",
                       m->name, krc);
  if (rc != SPARSEC_OK)
    return failed(m, rc);
  sparsec__dev_copy(d, output, d->output, sparsec__floats(out_numel));
  return sparsec__dev_status(d, "forward: copying the output from the CUDA device");
}

/* After the step of step m->step: a mask whose schedule prunes now is
 * pruned on the host copy (prune.c, which reads the weights and writes
 * masks, weights and state), downloaded first and uploaded by the next
 * call. Other steps copy nothing. */
static int prune(sparsec_model *m) {
  int due = 0;
  for (int32_t i = 0; i < m->num_params && !due; ++i) {
    double s;
    due = m->params[i].desc.mask_of && sparsec__prune_target(&m->params[i].desc, m->step, &s);
  }
  if (!due)
    return SPARSEC_OK;
  int rc = sparsec__device_host_sync(m, SPARSEC_DEV_VALUES | SPARSEC_DEV_STATE);
  if (rc != SPARSEC_OK) {
    char why[512];
    snprintf(why, sizeof(why), "%s", sparsec_last_error());
    return sparsec__fail(rc,
                         "train_step: the step was taken, but the pruning update could not "
                         "read the weights back from the CUDA device (%s)",
                         why);
  }
  sparsec__prune_step(m, m->step);
  sparsec__device_host_written(m, SPARSEC_DEV_VALUES | SPARSEC_DEV_STATE);
  return SPARSEC_OK;
}

/* After the step of step m->step: a SET/RigL weight whose schedule updates
 * now changes its pattern on the host copy (dynamic.c; RigL's growth
 * scores from this batch's captures, downloaded), and the next call
 * uploads pattern, values and state. Other steps copy nothing. */
static int update_patterns(sparsec_model *m) {
  sparsec__device *d = m->dev;
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    if (sparsec__dynamic_count(&p->desc, p->nnz, m->step) <= 0)
      continue;
    const int kinds = SPARSEC_DEV_VALUES | SPARSEC_DEV_GRADS | SPARSEC_DEV_STATE;
    int rc = sparsec__device_host_sync(m, kinds);
    if (rc == SPARSEC_OK && p->desc.dynamic == SPARSEC_DYNAMIC_RIGL) {
      const int64_t b = p->dyn.cap_batch;
      sparsec__dev_copy(d, p->dyn.cap_x, q->cap_x.p, sparsec__floats(b * p->desc.dims[1]));
      sparsec__dev_copy(d, p->dyn.cap_dy, q->cap_dy.p, sparsec__floats(b * p->desc.dims[0]));
      rc = sparsec__dev_status(d, "train_step: the RigL captures from the CUDA device");
    }
    if (rc != SPARSEC_OK) {
      char why[512];
      snprintf(why, sizeof(why), "%s", sparsec_last_error());
      return sparsec__fail(rc,
                           "train_step: the step was taken, but the pattern of '%s' was not "
                           "updated (%s)",
                           p->desc.name, why);
    }
    if (sparsec__dynamic_update(m, p, m->step) != 0)
      return sparsec__fail(SPARSEC_ERR_KERNEL,
                           "train_step: the growth-score kernel of '%s' failed; the step was "
                           "taken, the pattern was not updated",
                           p->desc.name);
    sparsec__device_host_written(m, kinds | SPARSEC_DEV_PATTERN);
  }
  return SPARSEC_OK;
}

int sparsec__device_train_step(sparsec_model *m, int64_t batch, const void *const *inputs,
                               float *loss, void **bufs) {
  sparsec__device *d = m->dev;
  if (!d->k.train)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "train_step: model '%s' has no CUDA train kernel",
                         m->name);
  int rc;
  int32_t k = push_inputs(m, "train_step", batch, inputs, 1, bufs, &rc);
  if (k < 0)
    return rc;
  /* The kernel reads the batch's rows up to date, then renormed (as on
   * the CPU, train.c); the step then changes values and state. */
  d->host_stale |= SPARSEC_DEV_VALUES | SPARSEC_DEV_GRADS | SPARSEC_DEV_STATE;
  rc = sparsec__device_catchup_batch(m, batch, inputs);
  if (rc == SPARSEC_OK)
    rc = sparsec__device_renorm_batch(m, batch, inputs, 1);
  if (rc != SPARSEC_OK)
    return failed(m, rc);
  /* Gradients zero-filled, as on the CPU (kernels may accumulate); an
   * embedding's holds one row per id of the batch. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    int64_t n = p->nnz;
    if (p->desc.layout == SPARSEC_LAYOUT_EMBEDDING) {
      n = sparsec__input_numel(&m->inputs[p->desc.ids_input], batch) * p->desc.dims[1];
      rc = sparsec__dev_reserve(d, (void **)&q->grad, &q->grad_cap, sparsec__floats(n),
                                "train_step");
      if (rc != SPARSEC_OK)
        return failed(m, rc);
    }
    sparsec__dev_zero(d, q->grad, n);
    bufs[k++] = q->grad;
  }
  /* RigL layers: device buffers the train function writes its captures
   * to (layer input [batch, in], output gradient [batch, out]). */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    if (p->desc.dynamic != SPARSEC_DYNAMIC_RIGL)
      continue;
    rc = sparsec__dev_reserve(d, &q->cap_x.p, &q->cap_x.cap,
                              sparsec__floats(batch * p->desc.dims[1]), "train_step");
    if (rc == SPARSEC_OK)
      rc = sparsec__dev_reserve(d, &q->cap_dy.p, &q->cap_dy.cap,
                                sparsec__floats(batch * p->desc.dims[0]), "train_step");
    if (rc != SPARSEC_OK)
      return failed(m, rc);
    bufs[k++] = q->cap_x.p;
    bufs[k++] = q->cap_dy.p;
    p->dyn.cap_batch = batch;
  }
  if (!d->k.emulated)
    mgpuStreamSynchronize(d->stream);
  float loss_value = 0.0f;
  bufs[k++] = &loss_value;
  int krc = d->k.train(bufs, batch);
  rc = sparsec__dev_status(d, "train_step on the CUDA device");
  if (rc == SPARSEC_OK && krc != 0)
    rc = sparsec__fail(SPARSEC_ERR_KERNEL,
                       "train_step: CUDA kernel of model '%s' failed with code %d", m->name, krc);
  if (rc != SPARSEC_OK)
    return failed(m, rc);
  *loss = loss_value;
  if (!isfinite(loss_value))
    return failed(m, sparsec__fail(SPARSEC_ERR_NONFINITE,
                                   "train_step: loss is not finite (%g); optimizer step skipped",
                                   (double)loss_value));
  /* Before the step the values are unchanged: a failure is undone. */
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i)
    if (m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING)
      rc = sparsec__device_gather_rows(m, &m->params[i], &d->params[i], batch, inputs);
  float coef = 1.0f;
  if (rc == SPARSEC_OK && m->opt.max_grad_norm > 0.0)
    rc = sparsec__device_clip(m, &coef);
  if (rc != SPARSEC_OK)
    return failed(m, rc);
  const sparsec__opt o =
      sparsec__opt_make(&m->opt, sparsec__scheduled_lr(&m->opt, m->lr, m->step), m->step + 1);
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i)
    rc = sparsec__device_step(m, &o, &m->params[i], &d->params[i], coef);
  if (rc != SPARSEC_OK) {
    char why[512];
    snprintf(why, sizeof(why), "%s", sparsec_last_error());
    return sparsec__fail(rc,
                         "train_step: the optimizer step failed on the CUDA device (%s); the "
                         "model's values on the device are undefined: load a checkpoint or "
                         "destroy the model",
                         why);
  }
  ++m->step;
  rc = prune(m);
  return rc == SPARSEC_OK ? update_patterns(m) : rc;
}
