/*===- cuda_cache.c - Cached device memory for generated code -----*- C -*-===*
 *
 * mgpuMemAlloc and mgpuMemFree, which the generated host code calls for the
 * temporaries of every forward and train call (docs/cuda.md, "Device
 * memory"). cuMemAlloc is slow and cuMemFree waits for the whole device,
 * so, as PyTorch's caching allocator, a freed block is kept and handed back
 * by the next request of its size class:
 *   - a request is rounded up to its class: a multiple of 512 bytes and of
 *     a quarter of the request's power of two (at most 25% more);
 *   - mgpuMemFree waits for the freeing stream first (the block's last
 *     readers), so a cached block is idle and any stream may reuse it;
 *   - a cuMemAlloc that runs out of memory empties the cache and retries;
 *   - SPARSEC_CUDA_CACHE=0 turns caching off; sparsec_cuda_empty_cache()
 *     gives the idle blocks back to the driver; sparsec_cuda_memory_stats()
 *     reports the bytes in use and cached.
 * Managed (host-shared) memory is not cached, nor are a device model's own
 * buffers (device.c allocates them with sparsec__cuda_mem_alloc). Each
 * model library links its own runtime, so each has its own cache.
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { kCudaErrorOutOfMemory = 2 }; /* CUDA_ERROR_OUT_OF_MEMORY */

typedef struct sparsec__block {
  void *p;
  size_t bytes; /* the class */
  struct sparsec__block *next;
} sparsec__block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sparsec__block *live, *idle; /* handed out / cached */
static size_t live_bytes, idle_bytes;

static int cache_enabled(void) {
  const char *env = getenv("SPARSEC_CUDA_CACHE");
  return !(env && strcmp(env, "0") == 0);
}

size_t sparsec__cuda_size_class(size_t bytes) {
  size_t top = 1; /* the largest power of two <= bytes */
  while (top <= bytes / 2)
    top <<= 1;
  const size_t step = top / 4 > 512 ? top / 4 : 512;
  if (bytes > SIZE_MAX - step)
    return bytes;
  return (bytes + step - 1) / step * step;
}

/* Unlinks and returns the first block of `list` matching `p` (p != NULL)
 * or of size `bytes`; NULL if none. Under the lock. */
static sparsec__block *take(sparsec__block **list, const void *p, size_t bytes) {
  for (sparsec__block **at = list; *at; at = &(*at)->next) {
    sparsec__block *b = *at;
    if (p ? b->p == p : b->bytes == bytes) {
      *at = b->next;
      return b;
    }
  }
  return NULL;
}

static void push(sparsec__block **list, size_t *total, sparsec__block *b) {
  b->next = *list;
  *list = b;
  *total += b->bytes;
}

/* Gives every idle block back to the driver; returns the bytes released
 * and sets *failed if a cuMemFree failed (recorded). */
static size_t release_idle(int *failed) {
  pthread_mutex_lock(&lock);
  sparsec__block *list = idle;
  const size_t bytes = idle_bytes;
  idle = NULL;
  idle_bytes = 0;
  pthread_mutex_unlock(&lock);
  while (list) {
    sparsec__block *next = list->next;
    if (sparsec__cuda_mem_free(list->p, NULL) != SPARSEC_OK)
      *failed = 1;
    free(list);
    list = next;
  }
  return bytes;
}

void *mgpuMemAlloc(uint64_t bytes, void *stream, bool host_shared) {
  (void)stream;
  if (bytes == 0)
    return NULL;
  if (host_shared || !cache_enabled() || bytes > SIZE_MAX)
    return sparsec__cuda_mem_alloc((size_t)bytes, host_shared);
  const size_t cls = sparsec__cuda_size_class((size_t)bytes);
  pthread_mutex_lock(&lock);
  sparsec__block *b = take(&idle, NULL, cls);
  if (b)
    idle_bytes -= cls;
  pthread_mutex_unlock(&lock);
  if (!b) {
    b = malloc(sizeof(*b));
    if (!b) {
      sparsec__cuda_record("mgpuMemAlloc: out of host memory");
      return NULL;
    }
    b->bytes = cls;
    CUresult r = 0;
    b->p = sparsec__cuda_mem_alloc_raw(cls, false, &r);
    int failed = 0;
    if (!b->p && r == kCudaErrorOutOfMemory && release_idle(&failed) > 0 && !failed)
      b->p = sparsec__cuda_mem_alloc_raw(cls, false, &r);
    if (!b->p) {
      if (r != 0)
        sparsec__cuda_check(r, "cuMemAlloc");
      free(b);
      return NULL;
    }
  }
  pthread_mutex_lock(&lock);
  push(&live, &live_bytes, b);
  pthread_mutex_unlock(&lock);
  return b->p;
}

void mgpuMemFree(void *ptr, void *stream) {
  if (!ptr)
    return;
  /* The generated code frees temporaries on the stream whose kernels may
   * still read them: wait for it first. */
  if (stream)
    mgpuStreamSynchronize(stream);
  pthread_mutex_lock(&lock);
  sparsec__block *b = take(&live, ptr, 0);
  if (b) {
    live_bytes -= b->bytes;
    push(&idle, &idle_bytes, b);
  }
  pthread_mutex_unlock(&lock);
  if (!b) /* managed, or allocated while caching was off */
    sparsec__cuda_mem_free(ptr, NULL);
}

SPARSEC_API int sparsec_cuda_empty_cache(void) {
  int failed = 0;
  release_idle(&failed);
  return failed ? sparsec_cuda_take_error() : SPARSEC_OK;
}

SPARSEC_API int sparsec_cuda_memory_stats(size_t *in_use, size_t *cached) {
  if (!in_use || !cached)
    return sparsec__fail(SPARSEC_ERR_NULL, "sparsec_cuda_memory_stats: an output is NULL");
  pthread_mutex_lock(&lock);
  *in_use = live_bytes;
  *cached = idle_bytes;
  pthread_mutex_unlock(&lock);
  return SPARSEC_OK;
}
