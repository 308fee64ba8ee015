/*===- cuda_internal.h - The CUDA driver API, loaded at run time -*- C -*-===*
 *
 * The subset of the CUDA driver API the runtime uses, declared here with
 * the driver's own ABI (CUresult is an int, handles are opaque pointers,
 * CUdevice an int) so the runtime builds without the CUDA toolkit and never
 * links against libcuda. cuda_driver.c fills `sparsec__cu` from
 * dlopen("libcuda.so.1") and creates the primary context of the default
 * device; cuda_mgpu.c implements MLIR's `mgpu*` ABI on top of it.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_CUDA_INTERNAL_H
#define SPARSEC_RUNTIME_CUDA_INTERNAL_H

#include "internal.h"
#include "sparsec/cuda.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef void *CUevent;
typedef unsigned long long CUdeviceptr;

/* Driver entry points, by their versioned symbol names (cuda.h maps e.g.
 * cuMemAlloc to cuMemAlloc_v2). */
struct sparsec__cuda_api {
  CUresult (*Init)(unsigned);
  CUresult (*DriverGetVersion)(int *);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetName)(char *, int, CUdevice);
  CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*CtxPushCurrent)(CUcontext);
  CUresult (*CtxPopCurrent)(CUcontext *);
  CUresult (*GetErrorString)(CUresult, const char **);
  CUresult (*ModuleLoadData)(CUmodule *, const void *);
  CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
  CUresult (*ModuleUnload)(CUmodule);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, CUstream, void **, void **);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamDestroy)(CUstream);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*StreamWaitEvent)(CUstream, CUevent, unsigned);
  CUresult (*EventCreate)(CUevent *, unsigned);
  CUresult (*EventDestroy)(CUevent);
  CUresult (*EventRecord)(CUevent, CUstream);
  CUresult (*EventSynchronize)(CUevent);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemAllocManaged)(CUdeviceptr *, size_t, unsigned);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*MemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*MemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
};

extern struct sparsec__cuda_api sparsec__cu;

/* Loads the driver and retains the default device's primary context, once
 * per process. Returns SPARSEC_OK or SPARSEC_ERR_CUDA with the reason in
 * sparsec_last_error(). */
int sparsec__cuda_init(void);

/* Makes the primary context current on this thread (pushes it). Returns
 * SPARSEC_OK or records the failure (sparsec__cuda_record) and returns it;
 * on success the caller must sparsec__cuda_leave(). */
int sparsec__cuda_enter(const char *what);
void sparsec__cuda_leave(void);

/* Checks a driver result; on failure records "<what>: <driver message>"
 * as this thread's pending CUDA error (the first one wins) and returns
 * SPARSEC_ERR_CUDA. */
int sparsec__cuda_check(CUresult r, const char *what);
/* Records a failure with a formatted message (the first one wins). */
void sparsec__cuda_record(const char *fmt, ...) SPARSEC_PRINTF(1, 2);

/* The default device's ordinal (mgpuSetDefaultDevice; before the first
 * CUDA call only). */
void sparsec__cuda_set_device(int ordinal);

/* Tests only: `api` becomes the driver, as if loaded, with no context (a
 * fake driver; the real one is never loaded afterwards). */
void sparsec__cuda_use_driver(const struct sparsec__cuda_api *api);

/* Device memory without the cache (cuda_mgpu.c): NULL with the failure
 * recorded; managed memory with `host_shared`. The free waits for `stream`
 * (if not NULL) first and returns SPARSEC_OK or SPARSEC_ERR_CUDA. */
void *sparsec__cuda_mem_alloc(size_t bytes, bool host_shared);
int sparsec__cuda_mem_free(void *ptr, void *stream);
/* cuMemAlloc (cuMemAllocManaged with `host_shared`) in the context,
 * recording nothing: NULL with the driver's result in *result (0 if the
 * context could not be entered: that failure is recorded). */
void *sparsec__cuda_mem_alloc_raw(size_t bytes, bool host_shared, CUresult *result);
/* The size class of a cached request (cuda_cache.c). */
size_t sparsec__cuda_size_class(size_t bytes);
/* mgpu* functions the runtime itself calls. */
void mgpuStreamSynchronize(void *s);

/* The runtime's own kernel modules (runtime/cuda/<name>.cu, PTX embedded
 * as sparsec__cuda_<name>_ptx). */
typedef enum sparsec__cuda_module {
  SPARSEC_CUDA_OPTIM,
  SPARSEC_CUDA_COALESCE,
  SPARSEC_CUDA_MODULES
} sparsec__cuda_module;
/* Launches kernel `name` of module `m` on `grid` blocks of 256 threads.
 * `stream` NULL: on a stream of its own, waited for; SPARSEC_OK or
 * SPARSEC_ERR_CUDA with the first failure on the way. Otherwise queued on
 * `stream` and not waited for: failures are recorded for the caller, who
 * waits and takes them (sparsec_cuda_take_error). Either way a runtime
 * built without nvcc fails with SPARSEC_ERR_CUDA, as
 * sparsec__cuda_module_status does (SPARSEC_OK: the module is there). */
int sparsec__cuda_module_status(sparsec__cuda_module m);
int sparsec__cuda_launch(sparsec__cuda_module m, const char *name, int64_t grid, void **params,
                         int np, void *stream);

/* `n` contiguous values of a parameter on the device, their gradient and
 * the optimizer state at the same offsets (0 where a state is not kept):
 * sparsec__span with device pointers. */
typedef struct sparsec__cuda_span {
  CUdeviceptr p, g;
  CUdeviceptr s[SPARSEC_NSTATE];
  int64_t n;
} sparsec__cuda_span;

/* One optimizer step on the device (cuda_optim.c, kernels in
 * runtime/cuda/optim.cu), the same arithmetic as sparsec__opt_span on the
 * CPU: `init` and `sparse_form` as there. Synchronous. Returns SPARSEC_OK,
 * or SPARSEC_ERR_CUDA with the message set (no driver or device, a failed
 * launch, a runtime built without nvcc; row-wise Adagrad has its own
 * function below). */
int sparsec__cuda_opt_span(const sparsec__opt *o, const sparsec__cuda_span *s, int init,
                           int sparse_form);
/* Row-wise Adagrad on `rows` contiguous rows of `dim` values at `p` (and
 * `g`), or, with `positions` (a CSR weight's i32 row pointers on the
 * device, else 0), on its rows [pos[r], pos[r+1]); one accumulator per row
 * at `row_sum`; the arithmetic of the CPU's row spans
 * (sparsec__adagrad_span with row_sum). */
int sparsec__cuda_rowwise_adagrad(const sparsec__opt *o, CUdeviceptr p, CUdeviceptr g,
                                  CUdeviceptr row_sum, int64_t rows, int64_t dim, int sparse_form,
                                  CUdeviceptr positions);

/* One step of the embedding rows of one batch (optim.cu
 * sparsec_cuda_rows): `segments` rows keys[s], each with the sum of the
 * gradient rows g[perm[j]] for j in [starts[s], starts[s+1]) times `scale`;
 * every array on the device. The arithmetic of sparsec__opt_rows
 * (`sparse_form` 1: lazy rows, 0: catch-up rows). */
typedef struct sparsec__cuda_rows_args {
  CUdeviceptr values, grad, perm, starts, keys, init;
  CUdeviceptr state[SPARSEC_NSTATE];
  int64_t dim, padding_idx, segments;
  int coalesced, sparse_form;
  float scale;
} sparsec__cuda_rows_args;
int sparsec__cuda_rows(const sparsec__opt *o, const sparsec__cuda_rows_args *a);

/* sparse = dense: adds the `n` gradient rows of `dim` values at `rows` into
 * rows ids[r] of `dense` (zeroed by the caller), the padding row excepted. */
int sparsec__cuda_scatter_rows(CUdeviceptr dense, CUdeviceptr rows, CUdeviceptr ids, int64_t n,
                               int64_t dim, int64_t padding_idx);

/* Gradient clipping on the device: *out (a device double) += the sum of
 * squares of `n` values at `g`; and g[i] *= c. Synchronous. */
int sparsec__cuda_sumsq(CUdeviceptr g, int64_t n, CUdeviceptr out);
int sparsec__cuda_scale(CUdeviceptr g, int64_t n, float c);
/* The same sum over the coalesced rows of a sorted embedding gradient
 * (`segments` sums of g[perm[j]], j in [starts[s], starts[s+1])). */
int sparsec__cuda_segment_sumsq(CUdeviceptr g, CUdeviceptr perm, CUdeviceptr starts,
                                int64_t segments, int64_t dim, CUdeviceptr out);

/* Embedding rows (device_rows.c drives them), `n` rows at `rows` (device
 * i32), each function synchronous: the rows of every array of `r` copied to
 * `save` (`width` floats per row, the sum of r->width) or back (`restore`); the
 * catch-up of each row by its coefficients `coef` (device array of n);
 * max_norm's renorm of the rows of `table`; gradient row i times scale[i]. */
int sparsec__cuda_row_snapshot(const sparsec__row_arrays *r, CUdeviceptr rows, int64_t n,
                               CUdeviceptr save, int64_t width, int restore);
int sparsec__cuda_catchup(const sparsec__row_arrays *r, CUdeviceptr rows, int64_t n,
                          CUdeviceptr coef, int64_t dim);
int sparsec__cuda_renorm(CUdeviceptr table, CUdeviceptr rows, int64_t n, int64_t dim,
                         double max_norm, double norm_type);
int sparsec__cuda_scale_rows(CUdeviceptr grad, CUdeviceptr scale, int64_t n, int64_t dim);

/* The row order of an embedding gradient on the device (cuda_coalesce.c,
 * kernels in runtime/cuda/coalesce.cu): the `n` ids (device u32, each
 * < 2^bits, bits in 1..31) sorted stably, as sparsec__coo_sort sorts them:
 * perm (n), the run starts (starts[runs] = n, n + 1 places) and each run's
 * id (keys, n places), all device arrays; the run count in host `*runs`.
 * `scratch` holds sparsec__cuda_order_scratch(n) bytes of device memory.
 * Synchronous; SPARSEC_OK or SPARSEC_ERR_CUDA with the message set. */
size_t sparsec__cuda_order_scratch(int64_t n);
int sparsec__cuda_order(CUdeviceptr ids, int64_t n, int bits, CUdeviceptr scratch, CUdeviceptr perm,
                        CUdeviceptr starts, CUdeviceptr keys, int64_t *runs);

#ifdef __cplusplus
}
#endif

#endif /* SPARSEC_RUNTIME_CUDA_INTERNAL_H */
