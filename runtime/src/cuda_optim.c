/*===- cuda_optim.c - Optimizer steps on the GPU -------------------*- C -*-===*
 *
 * Launches the optimizer kernels of runtime/cuda/optim.cu (PTX embedded at
 * build time as sparsec__cuda_optim_ptx) on values, gradients and state
 * that live on the device: one thread per value, the update of
 * optim_elem.h; and the launcher of the runtime's kernel modules (optim.cu,
 * coalesce.cu), each JIT-loaded on first use through the mgpu* layer
 * (cuda_mgpu.c), so failures are recorded per thread the same way and
 * nothing here needs the CUDA toolkit at run time.
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

#include <pthread.h>

extern const char sparsec__cuda_optim_ptx[];
extern const char sparsec__cuda_coalesce_ptx[];

void *mgpuModuleLoadJIT(void *data, int opt_level);
void *mgpuModuleGetFunction(void *handle, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz, intptr_t bx,
                      intptr_t by, intptr_t bz, int32_t smem, void *stream, void **params,
                      void **extra, size_t param_count);
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *s);

enum { kThreads = 256 };

/* The runtime's kernel modules, JIT-loaded on first use. */
static const struct {
  const char *ptx;
  const char *what;
} modules[SPARSEC_CUDA_MODULES] = {
    {sparsec__cuda_optim_ptx, "optimizer"},
    {sparsec__cuda_coalesce_ptx, "row-order"},
};
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static void *loaded[SPARSEC_CUDA_MODULES];

static void *module(sparsec__cuda_module m) {
  pthread_mutex_lock(&module_lock);
  if (!loaded[m]) /* a failure is recorded; the next call tries again */
    loaded[m] = mgpuModuleLoadJIT((void *)(uintptr_t)modules[m].ptx, 3);
  void *h = loaded[m];
  pthread_mutex_unlock(&module_lock);
  return h;
}

int sparsec__cuda_module_status(sparsec__cuda_module m) {
  if (modules[m].ptx[0])
    return SPARSEC_OK;
  return sparsec__fail(SPARSEC_ERR_CUDA,
                       "%s kernels on the GPU: this runtime was built without the CUDA "
                       "toolkit (nvcc), so it has none",
                       modules[m].what);
}

int sparsec__cuda_launch(sparsec__cuda_module m, const char *name, int64_t grid, void **params,
                         int np, void *stream) {
  if (sparsec__cuda_module_status(m) != SPARSEC_OK)
    return SPARSEC_ERR_CUDA;
  if (stream) { /* queued: the caller waits and takes the error */
    void *h = module(m);
    void *f = h ? mgpuModuleGetFunction(h, name) : NULL;
    if (f)
      mgpuLaunchKernel(f, (intptr_t)grid, 1, 1, kThreads, 1, 1, 0, stream, params, NULL,
                       (size_t)np);
    return SPARSEC_OK;
  }
  /* A stream of its own, waited for (the generated code runs on
   * non-blocking streams, which do not wait for the legacy one); the first
   * failure on the way is the status. */
  (void)sparsec_cuda_take_error(); /* start from a clean record */
  stream = mgpuStreamCreate();
  if (stream) {
    sparsec__cuda_launch(m, name, grid, params, np, stream);
    mgpuStreamSynchronize(stream);
    mgpuStreamDestroy(stream);
  }
  return sparsec_cuda_take_error();
}

/* Kernel `name` of the optimizer module, synchronous. */
static int launch(const char *name, int64_t grid, void **params, int np) {
  return sparsec__cuda_launch(SPARSEC_CUDA_OPTIM, name, grid, params, np, NULL);
}

int sparsec__cuda_opt_span(const sparsec__opt *o, const sparsec__cuda_span *s, int init,
                           int sparse_form) {
  sparsec__opt arg = *o;
  CUdeviceptr p = s->p, g = s->g;
  CUdeviceptr st[SPARSEC_NSTATE];
  for (int k = 0; k < SPARSEC_NSTATE; ++k)
    st[k] = s->s[k];
  int64_t n = s->n;
  /* The kernel's parameters: (o, p, g, its states..., n[, flag]). */
  const char *name;
  void *params[8] = {&arg, &p, &g};
  int np = 3;
  switch (o->kind) {
  case SPARSEC_OPT_SGD:
    name = "sparsec_cuda_sgd";
    params[np++] = &st[SPARSEC_ST_MOMENTUM];
    params[np++] = &n;
    params[np++] = &init;
    break;
  case SPARSEC_OPT_ADAGRAD:
    name = "sparsec_cuda_adagrad";
    params[np++] = &st[SPARSEC_ST_SUM];
    params[np++] = &n;
    params[np++] = &sparse_form;
    break;
  case SPARSEC_OPT_RMSPROP:
    name = "sparsec_cuda_rmsprop";
    params[np++] = &st[SPARSEC_ST_SQUARE_AVG];
    params[np++] = &st[SPARSEC_ST_GRAD_AVG];
    params[np++] = &st[SPARSEC_ST_MOMENTUM];
    params[np++] = &n;
    break;
  case SPARSEC_OPT_ADAM:
  case SPARSEC_OPT_ADAMW:
    name = "sparsec_cuda_adam";
    params[np++] = &st[SPARSEC_ST_EXP_AVG];
    params[np++] = &st[SPARSEC_ST_EXP_AVG_SQ];
    params[np++] = &st[SPARSEC_ST_MAX_EXP_AVG_SQ];
    params[np++] = &n;
    params[np++] = &sparse_form;
    break;
  default:
    return sparsec__fail(SPARSEC_ERR_CUDA,
                         "optimizer step on the GPU: optimizer kind %d has no per-value "
                         "kernel (row-wise Adagrad: sparsec__cuda_rowwise_adagrad)",
                         (int)o->kind);
  }
  if (n <= 0)
    return SPARSEC_OK;
  return launch(name, (n + kThreads - 1) / kThreads, params, np);
}

int sparsec__cuda_rowwise_adagrad(const sparsec__opt *o, CUdeviceptr p, CUdeviceptr g,
                                  CUdeviceptr row_sum, int64_t rows, int64_t dim, int sparse_form,
                                  CUdeviceptr positions) {
  if (rows <= 0 || (dim <= 0 && !positions))
    return SPARSEC_OK;
  sparsec__opt arg = *o;
  void *params[7] = {&arg, &p, &g, &row_sum, &dim, &sparse_form, &positions};
  return launch("sparsec_cuda_rowwise_adagrad", rows, params, 7);
}

int sparsec__cuda_sumsq(CUdeviceptr g, int64_t n, CUdeviceptr out) {
  if (n <= 0)
    return SPARSEC_OK;
  int64_t grid = (n + kThreads - 1) / kThreads;
  if (grid > 1024)
    grid = 1024;
  void *params[3] = {&g, &n, &out};
  return launch("sparsec_cuda_sumsq", grid, params, 3);
}

int sparsec__cuda_scale(CUdeviceptr g, int64_t n, float c) {
  if (n <= 0)
    return SPARSEC_OK;
  void *params[3] = {&g, &n, &c};
  return launch("sparsec_cuda_scale", (n + kThreads - 1) / kThreads, params, 3);
}

int sparsec__cuda_rows(const sparsec__opt *o, const sparsec__cuda_rows_args *a) {
  if (a->segments <= 0)
    return SPARSEC_OK;
  sparsec__opt arg = *o;
  sparsec__cuda_rows_args c = *a;
  void *params[19] = {&arg,           &c.values,    &c.grad,        &c.perm,     &c.starts,
                      &c.keys,        &c.init,      &c.state[0],    &c.state[1], &c.state[2],
                      &c.state[3],    &c.state[4],  &c.state[5],    &c.state[6], &c.dim,
                      &c.padding_idx, &c.coalesced, &c.sparse_form, &c.scale};
  return launch("sparsec_cuda_rows", a->segments, params, 19);
}

int sparsec__cuda_scatter_rows(CUdeviceptr dense, CUdeviceptr rows, CUdeviceptr ids, int64_t n,
                               int64_t dim, int64_t padding_idx) {
  if (n <= 0 || dim <= 0)
    return SPARSEC_OK;
  void *params[6] = {&dense, &rows, &ids, &n, &dim, &padding_idx};
  return launch("sparsec_cuda_scatter_rows", (n * dim + kThreads - 1) / kThreads, params, 6);
}

int sparsec__cuda_segment_sumsq(CUdeviceptr g, CUdeviceptr perm, CUdeviceptr starts,
                                int64_t segments, int64_t dim, CUdeviceptr out) {
  if (segments <= 0 || dim <= 0)
    return SPARSEC_OK;
  void *params[5] = {&g, &perm, &starts, &dim, &out};
  return launch("sparsec_cuda_segment_sumsq", segments, params, 5);
}

int sparsec__cuda_row_snapshot(const sparsec__row_arrays *r, CUdeviceptr rows, int64_t n,
                               CUdeviceptr save, int64_t width, int restore) {
  if (n <= 0)
    return SPARSEC_OK;
  sparsec__row_arrays arg = *r;
  void *params[5] = {&arg, &rows, &save, &width, &restore};
  return launch("sparsec_cuda_row_snapshot", n, params, 5);
}

int sparsec__cuda_catchup(const sparsec__row_arrays *r, CUdeviceptr rows, int64_t n,
                          CUdeviceptr coef, int64_t dim) {
  if (n <= 0)
    return SPARSEC_OK;
  sparsec__row_arrays arg = *r;
  void *params[4] = {&arg, &rows, &coef, &dim};
  return launch("sparsec_cuda_catchup", n, params, 4);
}

int sparsec__cuda_renorm(CUdeviceptr table, CUdeviceptr rows, int64_t n, int64_t dim,
                         double max_norm, double norm_type) {
  if (n <= 0)
    return SPARSEC_OK;
  void *params[5] = {&table, &rows, &dim, &max_norm, &norm_type};
  return launch("sparsec_cuda_renorm", n, params, 5);
}

int sparsec__cuda_scale_rows(CUdeviceptr grad, CUdeviceptr scale, int64_t n, int64_t dim) {
  if (n <= 0 || dim <= 0)
    return SPARSEC_OK;
  void *params[4] = {&grad, &scale, &n, &dim};
  return launch("sparsec_cuda_scale_rows", (n * dim + kThreads - 1) / kThreads, params, 4);
}
