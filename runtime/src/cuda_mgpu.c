/*===- cuda_mgpu.c - MLIR's mgpu* host ABI over the CUDA driver -*- C -*-===*
 *
 * The functions that MLIR 22's gpu-to-llvm lowering calls from generated
 * host code (the prototypes follow the LLVM declarations it emits, see
 * docs/cuda.md), implemented over the driver loaded by cuda_driver.c.
 * Debian ships no libmlir_cuda_runtime, and this one differs from
 * upstream's CudaRuntimeWrappers.cpp in these ways:
 *   - no abort on error: every failure is recorded for the calling thread
 *     (sparsec_cuda_take_error) and the call does nothing / returns NULL, so
 *     a model library keeps working on a machine without a GPU;
 *   - modules are loaded lazily: mgpuModuleLoad (called from the model
 *     library's constructor at dlopen time) only remembers the image, the
 *     driver is touched on the first mgpuModuleGetFunction;
 *   - the symbols are hidden: they bind inside the model library only;
 *   - destroyed streams are pooled for the next mgpuStreamCreate, and
 *     device memory is cached (mgpuMemAlloc/mgpuMemFree, cuda_cache.c).
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

enum { kJitLogCap = 4096 };
enum { kJitErrorLog = 5, kJitErrorLogSize = 6, kJitOptLevel = 7 };

/* What mgpuModuleLoad* returns: the image and, once loaded, the module. */
struct sparsec__gpu_module {
  const void *image;
  bool jit;
  int opt_level;
  CUmodule module;
  bool failed;
};

static struct sparsec__gpu_module *new_module(const void *image, bool jit, int opt) {
  struct sparsec__gpu_module *m = calloc(1, sizeof(*m));
  if (!m) {
    sparsec__cuda_record("mgpuModuleLoad: out of memory");
    return NULL;
  }
  m->image = image;
  m->jit = jit;
  m->opt_level = opt;
  return m;
}

void *mgpuModuleLoad(void *data, uint64_t size) {
  (void)size;
  return new_module(data, false, 0);
}

void *mgpuModuleLoadJIT(void *data, int opt_level) { return new_module(data, true, opt_level); }

/* Serialises the lazy loads (a model may run on several threads). */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

/* Loads `m` into the current context (inside enter/leave, under
 * load_lock). */
static int load_module_locked(struct sparsec__gpu_module *m) {
  if (m->module)
    return SPARSEC_OK;
  if (m->failed) {
    sparsec__cuda_record("mgpuModuleGetFunction: the kernel module failed "
                         "to load earlier");
    return SPARSEC_ERR_CUDA;
  }
  CUresult r;
  if (!m->jit) {
    r = sparsec__cu.ModuleLoadData(&m->module, m->image);
  } else {
    static _Thread_local char log[kJitLogCap];
    log[0] = '\0';
    int options[] = {kJitErrorLog, kJitErrorLogSize, kJitOptLevel};
    void *values[] = {log, (void *)(uintptr_t)sizeof(log), (void *)(uintptr_t)m->opt_level};
    r = sparsec__cu.ModuleLoadDataEx(&m->module, m->image, 3, options, values);
    if (r != 0 && log[0])
      sparsec__cuda_record("CUDA cuModuleLoadDataEx (PTX JIT) failed: %s", log);
  }
  if (sparsec__cuda_check(r, "cuModuleLoadData") != SPARSEC_OK) {
    m->module = NULL;
    m->failed = true;
    return SPARSEC_ERR_CUDA;
  }
  return SPARSEC_OK;
}

void mgpuModuleUnload(void *handle) {
  struct sparsec__gpu_module *m = handle;
  if (!m)
    return;
  if (m->module && sparsec__cuda_enter("mgpuModuleUnload") == SPARSEC_OK) {
    sparsec__cuda_check(sparsec__cu.ModuleUnload(m->module), "cuModuleUnload");
    sparsec__cuda_leave();
  }
  free(m);
}

void *mgpuModuleGetFunction(void *handle, const char *name) {
  struct sparsec__gpu_module *m = handle;
  if (!m) {
    sparsec__cuda_record("mgpuModuleGetFunction(%s): no kernel module", name);
    return NULL;
  }
  if (sparsec__cuda_enter("mgpuModuleGetFunction") != SPARSEC_OK)
    return NULL;
  CUfunction f = NULL;
  pthread_mutex_lock(&load_lock);
  int loaded = load_module_locked(m);
  pthread_mutex_unlock(&load_lock);
  if (loaded == SPARSEC_OK &&
      sparsec__cuda_check(sparsec__cu.ModuleGetFunction(&f, m->module, name),
                          "cuModuleGetFunction") != SPARSEC_OK)
    f = NULL;
  sparsec__cuda_leave();
  return f;
}

/* A grid or block extent as the driver's unsigned; false if out of range. */
static bool extent(intptr_t v, unsigned *out) {
  if (v <= 0 || (uintmax_t)v > UINT_MAX)
    return false;
  *out = (unsigned)v;
  return true;
}

void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz, intptr_t bx,
                      intptr_t by, intptr_t bz, int32_t smem, void *stream, void **params,
                      void **extra, size_t param_count) {
  (void)param_count;
  if (!function) {
    sparsec__cuda_record("mgpuLaunchKernel: no kernel function (the module "
                         "or the kernel was not loaded)");
    return;
  }
  unsigned g[3], b[3];
  if (!extent(gx, &g[0]) || !extent(gy, &g[1]) || !extent(gz, &g[2]) || !extent(bx, &b[0]) ||
      !extent(by, &b[1]) || !extent(bz, &b[2]) || smem < 0) {
    sparsec__cuda_record("mgpuLaunchKernel: invalid launch configuration "
                         "grid (%ld,%ld,%ld) block (%ld,%ld,%ld) smem %d",
                         (long)gx, (long)gy, (long)gz, (long)bx, (long)by, (long)bz, (int)smem);
    return;
  }
  if (sparsec__cuda_enter("mgpuLaunchKernel") != SPARSEC_OK)
    return;
  sparsec__cuda_check(sparsec__cu.LaunchKernel(function, g[0], g[1], g[2], b[0], b[1], b[2],
                                               (unsigned)smem, stream, params, extra),
                      "cuLaunchKernel");
  sparsec__cuda_leave();
}

/* Streams handed back by mgpuStreamDestroy, reused by mgpuStreamCreate:
 * the generated code creates and destroys a few streams per call. A pooled
 * stream may still have work queued; work queued later runs after it. */
enum { kStreamPoolCap = 16 };
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;
static CUstream stream_pool[kStreamPoolCap];
static int pooled_streams;

void *mgpuStreamCreate(void) {
  pthread_mutex_lock(&stream_lock);
  CUstream s = pooled_streams > 0 ? stream_pool[--pooled_streams] : NULL;
  pthread_mutex_unlock(&stream_lock);
  if (s)
    return s;
  if (sparsec__cuda_enter("mgpuStreamCreate") != SPARSEC_OK)
    return NULL;
  /* CU_STREAM_NON_BLOCKING = 1, as upstream's wrapper. */
  if (sparsec__cuda_check(sparsec__cu.StreamCreate(&s, 1), "cuStreamCreate"))
    s = NULL;
  sparsec__cuda_leave();
  return s;
}

/* Runs `call(handle)` in the context unless `handle` is NULL (a previous
 * failure, already recorded). */
#define CUDA_ON_HANDLE(handle, fn, call, what)                                                     \
  do {                                                                                             \
    if (!(handle) || sparsec__cuda_enter(fn) != SPARSEC_OK)                                        \
      return;                                                                                      \
    sparsec__cuda_check(call, what);                                                               \
    sparsec__cuda_leave();                                                                         \
  } while (0)

void mgpuStreamDestroy(void *s) {
  if (!s)
    return;
  pthread_mutex_lock(&stream_lock);
  const int kept = pooled_streams < kStreamPoolCap;
  if (kept)
    stream_pool[pooled_streams++] = s;
  pthread_mutex_unlock(&stream_lock);
  if (!kept)
    CUDA_ON_HANDLE(s, "mgpuStreamDestroy", sparsec__cu.StreamDestroy(s), "cuStreamDestroy");
}

void mgpuStreamSynchronize(void *s) {
  /* NULL is the legacy default stream, as for the driver (what a caller
   * that copied on stream NULL waits for). */
  if (sparsec__cuda_enter("mgpuStreamSynchronize") != SPARSEC_OK)
    return;
  sparsec__cuda_check(sparsec__cu.StreamSynchronize(s), "cuStreamSynchronize");
  sparsec__cuda_leave();
}

void mgpuStreamWaitEvent(void *s, void *e) {
  CUDA_ON_HANDLE(e, "mgpuStreamWaitEvent", sparsec__cu.StreamWaitEvent(s, e, 0),
                 "cuStreamWaitEvent");
}

void *mgpuEventCreate(void) {
  if (sparsec__cuda_enter("mgpuEventCreate") != SPARSEC_OK)
    return NULL;
  CUevent e = NULL;
  /* CU_EVENT_DISABLE_TIMING = 2, as upstream's wrapper. */
  if (sparsec__cuda_check(sparsec__cu.EventCreate(&e, 2), "cuEventCreate"))
    e = NULL;
  sparsec__cuda_leave();
  return e;
}

void mgpuEventDestroy(void *e) {
  CUDA_ON_HANDLE(e, "mgpuEventDestroy", sparsec__cu.EventDestroy(e), "cuEventDestroy");
}

void mgpuEventSynchronize(void *e) {
  CUDA_ON_HANDLE(e, "mgpuEventSynchronize", sparsec__cu.EventSynchronize(e), "cuEventSynchronize");
}

void mgpuEventRecord(void *e, void *s) {
  CUDA_ON_HANDLE(e, "mgpuEventRecord", sparsec__cu.EventRecord(e, s), "cuEventRecord");
}

void *sparsec__cuda_mem_alloc_raw(size_t bytes, bool host_shared, CUresult *result) {
  *result = 0;
  if (sparsec__cuda_enter("mgpuMemAlloc") != SPARSEC_OK)
    return NULL;
  CUdeviceptr p = 0;
  /* CU_MEM_ATTACH_GLOBAL = 1. */
  *result =
      host_shared ? sparsec__cu.MemAllocManaged(&p, bytes, 1) : sparsec__cu.MemAlloc(&p, bytes);
  sparsec__cuda_leave();
  return *result == 0 ? (void *)(uintptr_t)p : NULL;
}

void *sparsec__cuda_mem_alloc(size_t bytes, bool host_shared) {
  if (bytes == 0)
    return NULL;
  CUresult r;
  void *p = sparsec__cuda_mem_alloc_raw(bytes, host_shared, &r);
  if (r != 0)
    sparsec__cuda_check(r, host_shared ? "cuMemAllocManaged" : "cuMemAlloc");
  return p;
}

int sparsec__cuda_mem_free(void *ptr, void *stream) {
  if (!ptr)
    return SPARSEC_OK;
  /* Kernels on `stream` may still read it (cuMemFree is not
   * stream-ordered). */
  if (stream)
    mgpuStreamSynchronize(stream);
  if (sparsec__cuda_enter("mgpuMemFree") != SPARSEC_OK)
    return SPARSEC_ERR_CUDA;
  int rc = sparsec__cuda_check(sparsec__cu.MemFree((CUdeviceptr)(uintptr_t)ptr), "cuMemFree");
  sparsec__cuda_leave();
  return rc;
}

void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream) {
  if (bytes == 0)
    return;
  CUDA_ON_HANDLE(dst, "mgpuMemcpy",
                 sparsec__cu.MemcpyAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src,
                                         bytes, stream),
                 "cuMemcpyAsync");
}

void mgpuMemset32(void *dst, unsigned value, size_t count, void *stream) {
  if (count == 0)
    return;
  CUDA_ON_HANDLE(dst, "mgpuMemset32",
                 sparsec__cu.MemsetD32Async((CUdeviceptr)(uintptr_t)dst, value, count, stream),
                 "cuMemsetD32Async");
}

void mgpuMemset16(void *dst, unsigned short value, size_t count, void *stream) {
  if (count == 0)
    return;
  CUDA_ON_HANDLE(dst, "mgpuMemset16",
                 sparsec__cu.MemsetD16Async((CUdeviceptr)(uintptr_t)dst, value, count, stream),
                 "cuMemsetD16Async");
}

void mgpuSetDefaultDevice(int32_t ordinal) { sparsec__cuda_set_device(ordinal); }
