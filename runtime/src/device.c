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
 * The CUDA target covers CSR and dense parameters under every per-value
 * optimizer and embeddings with sparse = lazy; what it does not cover is
 * refused at create time with SPARSEC_ERR_INVALID_ARG (other embedding
 * modes and options, buffers - so masks and pruning -, dynamic sparsity,
 * clipping with embeddings).
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *s);
void mgpuStreamSynchronize(void *s);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool host_shared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
void mgpuMemset32(void *dst, unsigned value, size_t count, void *stream);

/* Device copies of one parameter (NULL where the host has none). An
 * embedding's gradient is one row per id of the batch (`grad_cap` bytes,
 * grown with the batch), and its lazy step reads the batch's order from
 * perm/starts/keys/init (computed on the host, where the ids are). */
typedef struct sparsec__dev_param {
  float *values, *grad;
  int32_t *positions, *coordinates;
  float *state[SPARSEC_NSTATE];
  size_t grad_cap;
  float *dense_grad; /* sparse = dense: the densified gradient (nnz) */
  void *perm, *starts, *keys, *init;
  size_t perm_cap, starts_cap, keys_cap, init_cap;
} sparsec__dev_param;

struct sparsec__device {
  sparsec_device_kernels k;
  void *stream; /* CUDA: the stream of the runtime's copies */
  sparsec__dev_param *params;
  void **inputs;     /* per input: batch-sized device buffer */
  size_t *input_cap; /* its bytes */
  void *output;
  size_t output_cap;
  void *clip_sum;   /* max_grad_norm: one double, the squared norm */
  int host_stale;   /* the device holds newer values, gradients, state */
  int device_stale; /* the host holds newer ones */
};

/*===-- Device memory: the GPU's through mgpu*, or host memory (emulated) --===*/

static void *dev_alloc(sparsec__device *d, size_t bytes) {
  if (bytes == 0)
    bytes = 1;
  return d->k.emulated ? malloc(bytes) : mgpuMemAlloc(bytes, d->stream, false);
}

static void dev_free(sparsec__device *d, void *p) {
  if (!p)
    return;
  if (d->k.emulated)
    free(p);
  else
    mgpuMemFree(p, d->stream);
}

/* Copies between host and device (either direction) and waits for it. */
static void dev_copy(sparsec__device *d, void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || !dst || !src)
    return;
  if (d->k.emulated) {
    memcpy(dst, src, bytes);
    return;
  }
  mgpuMemcpy(dst, sparsec__unconst(src), bytes, d->stream);
  mgpuStreamSynchronize(d->stream);
}

/* Zero-fills `n` floats of device memory (not waited for: the next copy
 * or the train step's wait does). */
static void dev_zero(sparsec__device *d, float *p, int64_t n) {
  if (n <= 0 || !p)
    return;
  if (d->k.emulated)
    memset(p, 0, (size_t)n * sizeof(float));
  else
    mgpuMemset32(p, 0u, (size_t)n, d->stream);
}

/* SPARSEC_OK, or SPARSEC_ERR_CUDA with "<what>: <the first CUDA failure
 * since the last check>" as the message. */
static int dev_status(const sparsec__device *d, const char *what) {
  if (d->k.emulated || sparsec_cuda_take_error() == SPARSEC_OK)
    return SPARSEC_OK;
  char why[512];
  snprintf(why, sizeof(why), "%s", sparsec_last_error());
  return sparsec__fail(SPARSEC_ERR_CUDA, "%s: %s", what, why);
}

/*===-- What the device copy holds ------------------------------------------===*/

static size_t floats(int64_t n) { return (size_t)n * sizeof(float); }

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
  SPARSEC_ARRAY(p->values, &q->values, floats(p->nnz), SPARSEC_DEV_VALUES);
  if (p->desc.layout != SPARSEC_LAYOUT_EMBEDDING) /* rows: sized per batch */
    SPARSEC_ARRAY(p->grad, &q->grad, floats(p->nnz), SPARSEC_DEV_GRADS);
  if (p->desc.layout == SPARSEC_LAYOUT_CSR) {
    SPARSEC_ARRAY(p->positions, &q->positions, (size_t)(p->rows + 1) * sizeof(int32_t),
                  SPARSEC_DEV_PATTERN);
    SPARSEC_ARRAY(p->coordinates, &q->coordinates, (size_t)p->nnz * sizeof(int32_t),
                  SPARSEC_DEV_PATTERN);
  }
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    if (p->state[k])
      SPARSEC_ARRAY(p->state[k], &q->state[k], floats(sparsec__state_elems(&m->opt, p, k)),
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
        dev_copy(d, *a.dev[j], a.host[j], a.bytes[j]);
  }
  int rc = dev_status(d, "uploading the parameters to the CUDA device");
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
        dev_copy(d, a.host[j], *a.dev[j], a.bytes[j]);
    if ((kinds & SPARSEC_DEV_GRADS) && p->desc.layout == SPARSEC_LAYOUT_EMBEDDING &&
        p->grad_rows > 0)
      dev_copy(d, p->grad, d->params[i].grad, floats(p->grad_rows * p->desc.dims[1]));
  }
  int rc = dev_status(d, "reading the parameters back from the CUDA device");
  if (rc == SPARSEC_OK)
    d->host_stale &= ~kinds;
  return rc;
}

void sparsec__device_host_written(sparsec_model *m, int kinds) {
  if (m && m->dev)
    m->dev->device_stale |= kinds;
}

/* Uploads what the host wrote (first use, after load, ...). */
static int ensure_device(sparsec_model *m) { return m->dev->device_stale ? upload(m) : SPARSEC_OK; }

/*===-- Create and destroy ----------------------------------------------------===*/

/* Why `m` cannot live on the device, or NULL. */
static const char *unsupported(const sparsec_model *m, const char **param) {
  *param = "";
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    *param = p->desc.name;
    if (p->desc.layout == SPARSEC_LAYOUT_EMBEDDING) {
      if (m->opt.sparse_mode == SPARSEC_SPARSE_CATCHUP)
        return "embeddings with sparse = catchup have no CUDA path yet";
      if (p->desc.max_norm > 0.0 || p->desc.scale_grad_by_freq)
        return "max_norm and scale_grad_by_freq have no CUDA path yet";
      if (m->opt.max_grad_norm > 0.0)
        return "gradient clipping with embeddings has no CUDA path yet";
      continue;
    }
    if (p->desc.layout != SPARSEC_LAYOUT_CSR && p->desc.layout != SPARSEC_LAYOUT_DENSE)
      return "buffers (masks) do not live on the CUDA device yet";
    if (p->desc.dynamic != SPARSEC_DYNAMIC_NONE)
      return "dynamic sparsity (SET/RigL) has no CUDA step yet";
  }
  return NULL;
}

void sparsec__device_free(sparsec_model *m) {
  sparsec__device *d = m ? m->dev : NULL;
  if (!d)
    return;
  if (d->params)
    for (int32_t i = 0; i < m->num_params; ++i) {
      sparsec__arrays a = arrays_of(m, &m->params[i], &d->params[i]);
      for (int j = 0; j < a.n; ++j)
        dev_free(d, *a.dev[j]);
      sparsec__dev_param *q = &d->params[i];
      if (m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING)
        dev_free(d, q->grad);
      dev_free(d, q->dense_grad);
      dev_free(d, q->perm);
      dev_free(d, q->starts);
      dev_free(d, q->keys);
      dev_free(d, q->init);
    }
  if (d->inputs)
    for (int32_t i = 0; i < m->num_inputs; ++i)
      dev_free(d, d->inputs[i]);
  dev_free(d, d->output);
  dev_free(d, d->clip_sum);
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
  const char *param;
  const char *why = unsupported(m, &param);
  if (why)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: model '%s' cannot run on CUDA: %s%s%s%s",
                         m->name, why, *param ? " (parameter '" : "", param, *param ? "')" : "");
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
      if (!(*a.dev[j] = dev_alloc(d, a.bytes[j])) && k->emulated) {
        sparsec__device_free(m);
        return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device copy of '%s'",
                             m->params[i].desc.name);
      }
  }
  if (m->opt.max_grad_norm > 0.0 && !(d->clip_sum = dev_alloc(d, sizeof(double))) && k->emulated) {
    sparsec__device_free(m);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
  }
  for (int32_t i = 0; i < m->num_params; ++i)
    if (m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING &&
        m->opt.sparse_mode == SPARSEC_SPARSE_DENSE &&
        !(d->params[i].dense_grad = (float *)dev_alloc(d, floats(m->params[i].nnz))) &&
        k->emulated) {
      sparsec__device_free(m);
      return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the device model");
    }
  int rc = dev_status(d, "create: allocating the parameters on the CUDA device");
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

/* Device buffer `*buf` of at least `bytes` (grown, never shrunk). */
static int reserve(sparsec__device *d, void **buf, size_t *cap, size_t bytes, const char *what) {
  if (*buf && *cap >= bytes)
    return SPARSEC_OK;
  dev_free(d, *buf);
  *cap = 0;
  if (!(*buf = dev_alloc(d, bytes)))
    return d->k.emulated
               ? sparsec__fail(SPARSEC_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes)
               : dev_status(d, what);
  *cap = bytes;
  return SPARSEC_OK;
}

/* The start of a call: a clean CUDA error record, the host copy uploaded
 * if it is newer, the call's inputs copied to the device (`with_targets`:
 * train_step); fills `bufs` from slot 0 with them and then every
 * parameter's arrays, returns the next slot or -1 with the status in
 * `*rc`. */
static int32_t push_inputs(sparsec_model *m, const char *what, int64_t batch,
                           const void *const *inputs, int with_targets, void **bufs, int *rc) {
  sparsec__device *d = m->dev;
  (void)sparsec_cuda_take_error();
  if ((*rc = ensure_device(m)) != SPARSEC_OK)
    return -1;
  int32_t k = 0, j = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i) {
    const sparsec_input_desc *in = &m->inputs[i];
    if (in->is_target && !with_targets)
      continue;
    size_t bytes = (size_t)sparsec__input_numel(in, batch) * sparsec__dtype_size(in->dtype);
    *rc = reserve(d, &d->inputs[i], &d->input_cap[i], bytes, what);
    if (*rc != SPARSEC_OK)
      return -1;
    dev_copy(d, d->inputs[i], inputs[j++], bytes);
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

int sparsec__device_forward(sparsec_model *m, int64_t batch, const void *const *inputs,
                            int64_t out_numel, float *output, void **bufs) {
  sparsec__device *d = m->dev;
  int rc;
  int32_t k = push_inputs(m, "forward", batch, inputs, 0, bufs, &rc);
  if (k < 0)
    return rc;
  rc = reserve(d, &d->output, &d->output_cap, floats(out_numel), "forward");
  if (rc != SPARSEC_OK)
    return rc;
  bufs[k++] = d->output;
  int krc = d->k.forward(bufs, batch);
  rc = dev_status(d, "forward on the CUDA device");
  if (rc == SPARSEC_OK && krc != 0)
    rc = sparsec__fail(SPARSEC_ERR_KERNEL, "forward: CUDA kernel of model '%s' failed with code %d",
                       m->name, krc);
  if (rc != SPARSEC_OK)
    return rc;
  dev_copy(d, output, d->output, floats(out_numel));
  return dev_status(d, "forward: copying the output from the CUDA device");
}

/* torch.nn.utils.clip_grad_norm_ on the device gradients: the norm over
 * every parameter, then each gradient scaled when max_norm / (norm + 1e-6)
 * < 1 (optim.c's clipping, the same coefficient). */
static int clip(sparsec_model *m) {
  sparsec__device *d = m->dev;
  double ss = 0.0;
  int rc = SPARSEC_OK;
  if (d->k.emulated) {
    for (int32_t i = 0; i < m->num_params; ++i)
      ss += sparsec__sumsq(d->params[i].grad, m->params[i].nnz);
  } else {
    const double zero = 0.0;
    dev_copy(d, d->clip_sum, &zero, sizeof(zero));
    for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i)
      rc = sparsec__cuda_sumsq((CUdeviceptr)(uintptr_t)d->params[i].grad, m->params[i].nnz,
                               (CUdeviceptr)(uintptr_t)d->clip_sum);
    dev_copy(d, &ss, d->clip_sum, sizeof(ss));
    if (rc == SPARSEC_OK)
      rc = dev_status(d, "train_step: the gradient norm on the CUDA device");
    if (rc != SPARSEC_OK)
      return rc;
  }
  const float coef = sparsec__clip_coef(m, ss);
  if (!(coef < 1.0f))
    return SPARSEC_OK;
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i) {
    if (d->k.emulated)
      sparsec__scale(d->params[i].grad, m->params[i].nnz, coef);
    else
      rc = sparsec__cuda_scale((CUdeviceptr)(uintptr_t)d->params[i].grad, m->params[i].nnz, coef);
  }
  return rc;
}

/* The optimizer step of parameter `p` on its device copy `q`. */
static int step_param(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                      sparsec__dev_param *q) {
  sparsec__device *d = m->dev;
  if (d->k.emulated) {
    /* The CPU step on the "device" buffers (host memory). */
    sparsec__param view = *p;
    view.values = q->values;
    memcpy(view.state, q->state, sizeof(view.state));
    sparsec__opt_values(o, &view, q->grad);
    p->mom_init = view.mom_init;
    return SPARSEC_OK;
  }
  int rc;
  if (o->kind == SPARSEC_OPT_ROWWISE_ADAGRAD) {
    rc = sparsec__cuda_rowwise_adagrad(
        o, (CUdeviceptr)(uintptr_t)q->values, (CUdeviceptr)(uintptr_t)q->grad,
        (CUdeviceptr)(uintptr_t)q->state[SPARSEC_ST_SUM], p->rows, p->nnz / p->rows, 0,
        (CUdeviceptr)(uintptr_t)q->positions); /* CSR rows, or 0: dense rows */
  } else {
    sparsec__cuda_span s;
    memset(&s, 0, sizeof(s));
    s.p = (CUdeviceptr)(uintptr_t)q->values;
    s.g = (CUdeviceptr)(uintptr_t)q->grad;
    for (int k = 0; k < SPARSEC_NSTATE; ++k)
      s.s[k] = (CUdeviceptr)(uintptr_t)q->state[k];
    s.n = p->nnz;
    rc = sparsec__cuda_opt_span(o, &s, p->mom_init, 0);
  }
  if (rc == SPARSEC_OK && o->kind == SPARSEC_OPT_SGD && q->state[SPARSEC_ST_MOMENTUM])
    p->mom_init = 1;
  return rc;
}

/* Copies `bytes` of host `src` into the device scratch `*buf` (grown). */
static int upload_scratch(sparsec__device *d, void **buf, size_t *cap, const void *src,
                          size_t bytes) {
  int rc = reserve(d, buf, cap, bytes, "train_step");
  if (rc == SPARSEC_OK)
    dev_copy(d, *buf, src, bytes);
  return rc;
}

/* sparse = dense on the device: the batch's rows added into the zeroed
 * dense gradient, then the dense step of every row but the padding one
 * (optim.c's sparsec__opt_values, row ranges around it). */
static int step_dense_rows(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                           sparsec__dev_param *q, int64_t n) {
  sparsec__device *d = m->dev;
  const int64_t dim = p->desc.dims[1], rows = p->desc.dims[0], pad = p->desc.padding_idx;
  dev_zero(d, q->dense_grad, p->nnz);
  int rc = upload_scratch(d, &q->perm, &q->perm_cap, p->grad_ids, (size_t)n * sizeof(int32_t));
  if (rc == SPARSEC_OK)
    rc = dev_status(d, "train_step: the ids on the CUDA device");
  if (rc == SPARSEC_OK)
    rc = sparsec__cuda_scatter_rows((CUdeviceptr)(uintptr_t)q->dense_grad,
                                    (CUdeviceptr)(uintptr_t)q->grad,
                                    (CUdeviceptr)(uintptr_t)q->perm, n, dim, pad);
  /* Rows [0, pad) and (pad, rows): the padding row never steps. */
  const int64_t ranges[2][2] = {{0, pad >= 0 ? pad : rows}, {pad >= 0 ? pad + 1 : rows, rows}};
  for (int k = 0; k < 2 && rc == SPARSEC_OK; ++k) {
    const int64_t lo = ranges[k][0], hi = ranges[k][1];
    if (hi <= lo)
      continue;
    if (o->kind == SPARSEC_OPT_ROWWISE_ADAGRAD) {
      rc = sparsec__cuda_rowwise_adagrad(o, (CUdeviceptr)(uintptr_t)(q->values + lo * dim),
                                         (CUdeviceptr)(uintptr_t)(q->dense_grad + lo * dim),
                                         (CUdeviceptr)(uintptr_t)(q->state[SPARSEC_ST_SUM] + lo),
                                         hi - lo, dim, 0, 0);
      continue;
    }
    sparsec__cuda_span s;
    memset(&s, 0, sizeof(s));
    s.p = (CUdeviceptr)(uintptr_t)(q->values + lo * dim);
    s.g = (CUdeviceptr)(uintptr_t)(q->dense_grad + lo * dim);
    for (int j = 0; j < SPARSEC_NSTATE; ++j)
      s.s[j] = q->state[j] ? (CUdeviceptr)(uintptr_t)(q->state[j] + lo * dim) : 0;
    s.n = (hi - lo) * dim;
    rc = sparsec__cuda_opt_span(o, &s, p->mom_init, 0);
  }
  if (rc == SPARSEC_OK && o->kind == SPARSEC_OPT_SGD && q->state[SPARSEC_ST_MOMENTUM])
    p->mom_init = 1;
  return rc;
}

/* The lazy step of embedding `p` (sparse = lazy): the batch's ids (host
 * inputs) sorted on the host, the rows summed and stepped on the device;
 * the emulator runs the CPU's own sequence (optim.c, optim_sparse.c) on
 * the device buffers. */
static int step_rows(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                     sparsec__dev_param *q, int64_t batch, const void *const *inputs) {
  sparsec__device *d = m->dev;
  const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
  const int64_t n = sparsec__input_numel(in, batch), dim = p->desc.dims[1];
  for (int64_t r = 0; r < n; ++r)
    p->grad_ids[r] = (int32_t)sparsec__id_at(in, inputs[p->desc.ids_input], r);
  p->grad_rows = n;
  if (sparsec__coo_reserve(&p->coo, n, dim) != 0)
    return sparsec__fail(SPARSEC_ERR_NOMEM,
                         "train_step: cannot allocate the row order of embedding '%s'",
                         p->desc.name);
  const int coalesce = sparsec__opt_coalesces(&m->opt);
  const int dense = m->opt.sparse_mode == SPARSEC_SPARSE_DENSE;
  if (d->k.emulated) {
    sparsec__param view = *p;
    view.values = q->values;
    view.grad = q->grad;
    view.dense_grad = q->dense_grad;
    memcpy(view.state, q->state, sizeof(view.state));
    sparsec__emb_grad_prepare(&view);
    if (dense) { /* the CPU's densify and dense step */
      sparsec__densify(&view);
      sparsec__opt_values(o, &view, view.dense_grad);
      p->mom_init = view.mom_init;
      return SPARSEC_OK;
    }
    sparsec__coo_grad g = {n, dim, p->grad_ids, q->grad, 0};
    if (coalesce)
      sparsec__coo_coalesce(&g, p->desc.dims[0], &view.coo);
    sparsec__opt_rows(o, &view, &g, 0);
    return SPARSEC_OK;
  }
  /* The padding row's gradient rows read 0, as on the CPU (param_grad);
   * the step skips that row anyway. */
  if (p->desc.padding_idx >= 0)
    for (int64_t r = 0; r < n; ++r)
      if (p->grad_ids[r] == p->desc.padding_idx)
        dev_zero(d, q->grad + r * dim, dim);
  if (dense)
    return step_dense_rows(m, o, p, q, n);
  sparsec__coo_grad g = {n, dim, p->grad_ids, NULL, 0};
  const sparsec__coo_order ord = sparsec__coo_sort(&g, &p->coo, 0);
  /* Per segment: its id and whether the row's momentum buffer holds state
   * (out_ids / the coalescing rows are free scratch here). */
  int32_t *keys = p->coo.out_ids;
  uint32_t *init = (uint32_t *)(void *)p->coo.out_rows;
  for (int64_t s = 0; s < ord.segments; ++s) {
    keys[s] = (int32_t)ord.keys[ord.starts[s]];
    init[s] = p->mom_row_init ? p->mom_row_init[keys[s]] : 0;
  }
  int rc = upload_scratch(d, &q->perm, &q->perm_cap, ord.perm, (size_t)n * sizeof(uint32_t));
  if (rc == SPARSEC_OK)
    rc = upload_scratch(d, &q->starts, &q->starts_cap, ord.starts,
                        (size_t)(ord.segments + 1) * sizeof(uint32_t));
  if (rc == SPARSEC_OK)
    rc = upload_scratch(d, &q->keys, &q->keys_cap, keys, (size_t)ord.segments * sizeof(int32_t));
  if (rc == SPARSEC_OK)
    rc = upload_scratch(d, &q->init, &q->init_cap, init, (size_t)ord.segments * sizeof(uint32_t));
  if (rc == SPARSEC_OK)
    rc = dev_status(d, "train_step: the row order on the CUDA device");
  if (rc != SPARSEC_OK)
    return rc;
  sparsec__cuda_rows_args a;
  memset(&a, 0, sizeof(a));
  a.values = (CUdeviceptr)(uintptr_t)q->values;
  a.grad = (CUdeviceptr)(uintptr_t)q->grad;
  a.perm = (CUdeviceptr)(uintptr_t)q->perm;
  a.starts = (CUdeviceptr)(uintptr_t)q->starts;
  a.keys = (CUdeviceptr)(uintptr_t)q->keys;
  a.init = (CUdeviceptr)(uintptr_t)q->init;
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    a.state[k] = (CUdeviceptr)(uintptr_t)q->state[k];
  a.dim = dim;
  a.padding_idx = p->desc.padding_idx;
  a.segments = ord.segments;
  a.coalesced = coalesce;
  rc = sparsec__cuda_rows(o, &a);
  if (rc == SPARSEC_OK && p->mom_row_init)
    for (int64_t s = 0; s < ord.segments; ++s)
      if (keys[s] != p->desc.padding_idx)
        p->mom_row_init[keys[s]] = 1;
  return rc;
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
  /* Gradients zero-filled, as on the CPU (kernels may accumulate); an
   * embedding's holds one row per id of the batch. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    sparsec__dev_param *q = &d->params[i];
    int64_t n = p->nnz;
    if (p->desc.layout == SPARSEC_LAYOUT_EMBEDDING) {
      n = sparsec__input_numel(&m->inputs[p->desc.ids_input], batch) * p->desc.dims[1];
      rc = reserve(d, (void **)&q->grad, &q->grad_cap, floats(n), "train_step");
      if (rc != SPARSEC_OK)
        return rc;
    }
    dev_zero(d, q->grad, n);
    bufs[k++] = q->grad;
  }
  if (!d->k.emulated)
    mgpuStreamSynchronize(d->stream);
  float loss_value = 0.0f;
  bufs[k++] = &loss_value;
  int krc = d->k.train(bufs, batch);
  /* The gradients changed; the step then changes values and state. */
  d->host_stale |= SPARSEC_DEV_VALUES | SPARSEC_DEV_GRADS | SPARSEC_DEV_STATE;
  rc = dev_status(d, "train_step on the CUDA device");
  if (rc == SPARSEC_OK && krc != 0)
    rc = sparsec__fail(SPARSEC_ERR_KERNEL,
                       "train_step: CUDA kernel of model '%s' failed with code %d", m->name, krc);
  if (rc != SPARSEC_OK)
    return rc;
  *loss = loss_value;
  if (!isfinite(loss_value))
    return sparsec__fail(SPARSEC_ERR_NONFINITE,
                         "train_step: loss is not finite (%g); optimizer step skipped",
                         (double)loss_value);
  if (m->opt.max_grad_norm > 0.0 && (rc = clip(m)) != SPARSEC_OK)
    return rc; /* before the step: the values are unchanged */
  const sparsec__opt o =
      sparsec__opt_make(&m->opt, sparsec__scheduled_lr(&m->opt, m->lr, m->step), m->step + 1);
  for (int32_t i = 0; i < m->num_params && rc == SPARSEC_OK; ++i)
    rc = m->params[i].desc.layout == SPARSEC_LAYOUT_EMBEDDING
             ? step_rows(m, &o, &m->params[i], &d->params[i], batch, inputs)
             : step_param(m, &o, &m->params[i], &d->params[i]);
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
  return SPARSEC_OK;
}
