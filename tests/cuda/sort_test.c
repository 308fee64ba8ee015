/*===- sort_test.c - The device row order against the CPU's sort --*- C -*-===*
 *
 * Links the static runtime and orders batches of ids on the GPU
 * (sparsec__cuda_order, kernels of runtime/cuda/coalesce.cu) and on the
 * CPU (coo.c's sparsec__coo_sort): one tile and several, every digit count
 * (1 to 31 bits), Zipf-like ids with a few hot rows, all equal, ascending
 * and descending ids, up to 300,000 ids.
 *
 *   sort_test           the permutation, run starts, run ids and run count
 *                       must be equal (exact); exit 77 (skipped) without a
 *                       usable GPU.
 *   sort_test --no-gpu  on a machine without CUDA: the order fails cleanly
 *                       and the embedded PTX holds every kernel; exit 77
 *                       where CUDA is available.
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"
#include "cuda_test.h"
#include "internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char sparsec__cuda_coalesce_ptx[];
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
void mgpuStreamSynchronize(void *stream);

typedef enum { ZIPF, EQUAL, ASCENDING, DESCENDING } Shape;
static const char *shape_names[] = {"zipf", "equal", "ascending", "descending"};

/* Deterministic ids below 2^bits: Zipf-like (a third from 16 hot rows). */
static void fill(uint32_t *ids, int64_t n, int bits, Shape shape,
                 uint64_t seed) {
  const uint64_t bound = (uint64_t)1 << bits;
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    switch (shape) {
    case ZIPF:
      ids[i] = (uint32_t)(x % 3 == 0 ? (x >> 8) % (bound < 16 ? bound : 16)
                                     : (x >> 8) % bound);
      break;
    case EQUAL:
      ids[i] = (uint32_t)(bound - 1);
      break;
    case ASCENDING:
      ids[i] = (uint32_t)((uint64_t)i % bound);
      break;
    case DESCENDING:
      ids[i] = (uint32_t)((uint64_t)(n - 1 - i) % bound);
      break;
    }
  }
}

static CUdeviceptr dptr(void *p) { return (CUdeviceptr)(uintptr_t)p; }

/* Device memory of `bytes`, a copy of `src` unless NULL (waited for). */
static void *device_copy(void *src, size_t bytes) {
  void *p = mgpuMemAlloc(bytes ? bytes : 4, NULL, false);
  if (p && src)
    mgpuMemcpy(p, src, bytes, NULL);
  mgpuStreamSynchronize(NULL);
  return p;
}

static void *host_copy(void *dev, size_t bytes) {
  void *p = malloc(bytes ? bytes : 4);
  if (p)
    mgpuMemcpy(p, dev, bytes, NULL);
  mgpuStreamSynchronize(NULL);
  return p;
}

/* One batch on both devices; 1 when the orders are equal. */
static int compare(int64_t n, int bits, Shape shape,
                   sparsec__coo_workspace *ws) {
  uint32_t *ids = (uint32_t *)malloc((size_t)n * sizeof(uint32_t));
  fill(ids, n, bits, shape, (uint64_t)n * 64 + (uint64_t)bits);
  const size_t words = (size_t)n * sizeof(uint32_t);
  void *d_ids = device_copy(ids, words);
  void *d_scratch = device_copy(NULL, sparsec__cuda_order_scratch(n));
  void *d_perm = device_copy(NULL, words),
       *d_starts = device_copy(NULL, words + 4);
  void *d_keys = device_copy(NULL, words);
  int64_t runs = -1;
  int rc =
      sparsec__cuda_order(dptr(d_ids), n, bits, dptr(d_scratch), dptr(d_perm),
                          dptr(d_starts), dptr(d_keys), &runs);
  char what[160];
  snprintf(what, sizeof(what), "%lld %s ids of %d bits", (long long)n,
           shape_names[shape], bits);
  int ok = rc == SPARSEC_OK;
  if (!ok)
    printf("FAIL: %s: %s\n", what, sparsec_last_error());
  sparsec__coo_grad g = {n, 1, (const int32_t *)ids, NULL, 0};
  const sparsec__coo_order ord = sparsec__coo_sort(&g, ws, 0);
  if (ok) {
    uint32_t *perm = (uint32_t *)host_copy(d_perm, words);
    uint32_t *starts = (uint32_t *)host_copy(d_starts, (size_t)(runs + 1) * 4);
    int32_t *keys = (int32_t *)host_copy(d_keys, (size_t)runs * 4);
    int64_t bad = -1;
    ok = runs == ord.segments && memcmp(perm, ord.perm, words) == 0 &&
         memcmp(starts, ord.starts, (size_t)(runs + 1) * 4) == 0;
    for (int64_t s = 0; ok && s < runs; ++s)
      if (keys[s] != (int32_t)ord.keys[ord.starts[s]])
        bad = s, ok = 0;
    cuda_test_check(ok, what, (double)runs);
    if (!ok)
      printf("  runs %lld (CPU %lld), first bad run id %lld\n", (long long)runs,
             (long long)ord.segments, (long long)bad);
    free(perm);
    free(starts);
    free(keys);
  } else {
    cuda_test_failures++;
  }
  void *bufs[] = {d_ids, d_scratch, d_perm, d_starts, d_keys};
  for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); ++i)
    mgpuMemFree(bufs[i], NULL);
  free(ids);
  return ok;
}

static int no_gpu_mode(void) {
  if (cuda_test_need_no_gpu())
    return 77;
  const char *kernels[] = {"sparsec_coalesce_tile", "sparsec_coalesce_count",
                           "sparsec_coalesce_scatter", "sparsec_coalesce_heads",
                           "sparsec_coalesce_runs"};
  const int ok =
      cuda_test_ptx_has(sparsec__cuda_coalesce_ptx, "row-order", kernels,
                        sizeof(kernels) / sizeof(kernels[0]));
  int64_t runs = -1;
  const int status = sparsec__cuda_order(1, 10000, 20, 2, 3, 4, 5, &runs);
  return cuda_test_clean_failure(status, "the order") && ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--no-gpu") == 0)
    return no_gpu_mode();
  if (cuda_test_need_gpu())
    return 77;
  sparsec__coo_workspace ws;
  memset(&ws, 0, sizeof(ws));
  const int64_t sizes[] = {1, 2, 1000, 4095, 4096, 4097, 12293, 53248, 300000};
  const int bit_counts[] = {1, 4, 8, 9, 17, 20, 24, 31};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
    if (sparsec__coo_reserve(&ws, sizes[i], 1) != 0)
      return 1;
    for (size_t b = 0; b < sizeof(bit_counts) / sizeof(bit_counts[0]); ++b)
      compare(sizes[i], bit_counts[b], ZIPF, &ws);
    for (int s = EQUAL; s <= DESCENDING; ++s)
      compare(sizes[i], 20, (Shape)s, &ws);
  }
  sparsec__coo_free(&ws);
  printf("%s (%d failed)\n", cuda_test_failures ? "FAILED" : "PASSED",
         cuda_test_failures);
  return cuda_test_failures ? 1 : 0;
}
