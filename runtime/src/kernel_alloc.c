/*===- kernel_alloc.c - Caching allocator of the generated kernels --------===*
 *
 * The generated kernels allocate their temporaries (batch-blocked copies of
 * the activations, gradient buffers, the sparsifier's scratch arrays) with
 * `memref.alloc` and free them before returning. The pipeline lowers those
 * to the "generic" allocation functions of MLIR's memref-to-LLVM conversion
 * (`use-generic-functions`), defined here. Served by malloc alone, every
 * training step of a model faulted in fresh zeroed pages for its large
 * temporaries and unmapped them again (a quarter of a Fashion-MNIST step);
 * here a freed block of at least kMinCached bytes is kept in a small cache
 * and handed out again to the next request that it fits without wasting
 * more than a third of it, so a model called with the same batch size
 * reuses the same blocks from the second call on.
 *
 * Blocks come from malloc (or aligned_alloc) and are returned unchanged, so
 * anything may free them with free(). The cache holds at most kSlots blocks
 * and kMaxCachedBytes bytes (a freed block beyond that goes back to libc);
 * it is guarded by one mutex, taken once per allocation and free (a kernel
 * makes a few dozen), and emptied when the library is unloaded. A forked
 * child starts with an empty cache.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include "internal.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { kSlots = 64 };
static const size_t kMinCached = (size_t)64 << 10;
static const size_t kMaxCachedBytes = (size_t)256 << 20;
/* Blocks of at least this size are 2 MiB-aligned and advised to be backed by
 * transparent huge pages (where the system allows it on request): the
 * kernels gather 256-byte rows of megabyte-sized blocks in random order, and
 * with 4 KiB pages nearly every such load misses the first-level TLB. */
static const size_t kHugeBytes = (size_t)2 << 20;

typedef struct cached_block {
  void *ptr;
  size_t size; /* malloc_usable_size */
} cached_block;

static struct {
  pthread_mutex_t lock;
  cached_block slots[kSlots];
  int count;
  size_t bytes;
} g_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;

static void cache_after_fork(void) {
  pthread_mutex_init(&g_cache.lock, NULL);
  g_cache.count = 0; /* the parent's blocks stay allocated, unused */
  g_cache.bytes = 0;
}

static void cache_init(void) { pthread_atfork(NULL, NULL, cache_after_fork); }

/* Takes the smallest cached block of at least `size` bytes (at most a third
 * more) whose address is a multiple of `align`, or returns NULL. */
static void *cache_take(size_t size, size_t align) {
  if (size < kMinCached)
    return NULL;
  pthread_once(&g_cache_once, cache_init);
  void *out = NULL;
  pthread_mutex_lock(&g_cache.lock);
  int best = -1;
  for (int i = 0; i < g_cache.count; ++i) {
    const cached_block *b = &g_cache.slots[i];
    if (b->size < size || b->size - size > size / 3 || (uintptr_t)b->ptr % align != 0)
      continue;
    if (best < 0 || b->size < g_cache.slots[best].size)
      best = i;
  }
  if (best >= 0) {
    out = g_cache.slots[best].ptr;
    g_cache.bytes -= g_cache.slots[best].size;
    g_cache.slots[best] = g_cache.slots[--g_cache.count];
  }
  pthread_mutex_unlock(&g_cache.lock);
  return out;
}

void *_mlir_memref_to_llvm_alloc(size_t size);
void *_mlir_memref_to_llvm_aligned_alloc(size_t align, size_t size);
void _mlir_memref_to_llvm_free(void *ptr);

/* A new block of `size` bytes from libc. */
static void *fresh_block(size_t size) {
  if (size < kHugeBytes)
    return malloc(size);
  void *p = NULL;
  if (posix_memalign(&p, kHugeBytes, size) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  (void)madvise(p, size / kHugeBytes * kHugeBytes, MADV_HUGEPAGE);
#endif
  return p;
}

void *_mlir_memref_to_llvm_alloc(size_t size) {
  void *p = cache_take(size, 1);
  return p ? p : fresh_block(size);
}

void *_mlir_memref_to_llvm_aligned_alloc(size_t align, size_t size) {
  void *p = cache_take(size, align ? align : 1);
  if (p)
    return p;
  /* aligned_alloc wants a size that is a multiple of the alignment. */
  if (align <= 16 || size >= kHugeBytes)
    return fresh_block(size);
  return aligned_alloc(align, (size + align - 1) / align * align);
}

void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  size_t size = malloc_usable_size(ptr);
  if (size >= kMinCached) {
    pthread_once(&g_cache_once, cache_init);
    pthread_mutex_lock(&g_cache.lock);
    int kept = g_cache.count < kSlots && g_cache.bytes + size <= kMaxCachedBytes;
    if (kept) {
      g_cache.slots[g_cache.count++] = (cached_block){ptr, size};
      g_cache.bytes += size;
    }
    pthread_mutex_unlock(&g_cache.lock);
    if (kept)
      return;
  }
  free(ptr);
}

__attribute__((destructor)) static void cache_release(void) {
  pthread_mutex_lock(&g_cache.lock);
  for (int i = 0; i < g_cache.count; ++i)
    free(g_cache.slots[i].ptr);
  g_cache.count = 0;
  g_cache.bytes = 0;
  pthread_mutex_unlock(&g_cache.lock);
}
