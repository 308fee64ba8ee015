/*===- cuda_coalesce.c - The row order of embedding gradients on the GPU -*- C -*-===*
 *
 * Launches runtime/cuda/coalesce.cu (PTX embedded as
 * sparsec__cuda_coalesce_ptx): the stable sort of a batch's ids into the
 * permutation, run starts and run ids that optim.cu's row kernels read,
 * the same arrays as coo.c's sparsec__coo_sort. One kernel for a batch of
 * one tile (4096 ids); beyond, two kernels per 8-bit digit of the ids and
 * two for the runs, queued on one stream and waited for once, with the
 * run count copied back.
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

enum { kTile = 4096, kDigitBits = 8, kDigits = 1 << kDigitBits };

void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *s);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);

static int64_t tiles_of(int64_t n) { return (n + kTile - 1) / kTile; }

size_t sparsec__cuda_order_scratch(int64_t n) {
  /* Two key and two value arrays (the digit passes alternate between
   * them), each tile's digit counts and run heads, the run count. */
  const int64_t words = 4 * n + (kDigits + 1) * tiles_of(n) + 1;
  return (size_t)words * sizeof(uint32_t);
}

/* Queues kernel `name` of coalesce.cu on `stream` (failures recorded). */
static void queue(const char *name, int64_t grid, void **params, int np, void *stream) {
  (void)sparsec__cuda_launch(SPARSEC_CUDA_COALESCE, name, grid, params, np, stream);
}

int sparsec__cuda_order(CUdeviceptr ids, int64_t n, int bits, CUdeviceptr scratch, CUdeviceptr perm,
                        CUdeviceptr starts, CUdeviceptr keys, int64_t *runs) {
  *runs = 0;
  if (n <= 0)
    return SPARSEC_OK;
  if (bits < 1 || bits > 31 || n > (int64_t)UINT32_MAX)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "row order on the GPU: %lld ids of %d bits (1..31 bits, < 2^32 ids)",
                         (long long)n, bits);
  int rc = sparsec__cuda_module_status(SPARSEC_CUDA_COALESCE);
  if (rc != SPARSEC_OK)
    return rc;
  const int64_t tiles = tiles_of(n);
  const CUdeviceptr words = (CUdeviceptr)n * sizeof(uint32_t);
  CUdeviceptr counts = scratch + 4 * words;
  CUdeviceptr heads = counts + (CUdeviceptr)(kDigits * tiles) * sizeof(uint32_t);
  CUdeviceptr count = heads + (CUdeviceptr)tiles * sizeof(uint32_t);
  (void)sparsec_cuda_take_error(); /* start from a clean record */
  void *stream = mgpuStreamCreate();
  if (!stream)
    return sparsec_cuda_take_error();
  if (tiles == 1) {
    void *params[7] = {&ids, &n, &bits, &perm, &starts, &keys, &count};
    queue("sparsec_coalesce_tile", 1, params, 7, stream);
  } else {
    /* Least significant digit first, from `ids` (values: the positions)
     * into the key/value arrays 0/1, then 2/3, then 0/1, ... */
    CUdeviceptr k = ids, v = 0;
    for (int shift = 0, to = 0; shift < bits; shift += kDigitBits, to ^= 2) {
      CUdeviceptr kOut = scratch + (CUdeviceptr)to * words, vOut = kOut + words;
      void *countParams[4] = {&k, &n, &shift, &counts};
      queue("sparsec_coalesce_count", tiles, countParams, 4, stream);
      void *scatterParams[7] = {&k, &v, &n, &shift, &counts, &kOut, &vOut};
      queue("sparsec_coalesce_scatter", tiles, scatterParams, 7, stream);
      k = kOut;
      v = vOut;
    }
    void *headParams[3] = {&k, &n, &heads};
    queue("sparsec_coalesce_heads", tiles, headParams, 3, stream);
    void *runParams[8] = {&k, &v, &n, &heads, &perm, &starts, &keys, &count};
    queue("sparsec_coalesce_runs", tiles, runParams, 8, stream);
  }
  uint32_t found = 0;
  mgpuMemcpy(&found, (void *)(uintptr_t)count, sizeof(found), stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
  rc = sparsec_cuda_take_error();
  if (rc != SPARSEC_OK)
    return rc;
  if (found < 1 || found > (uint64_t)n) /* a fault of the kernels, not of the input */
    return sparsec__fail(SPARSEC_ERR_CUDA, "row order on the GPU: %u runs for %lld ids",
                         (unsigned)found, (long long)n);
  *runs = found;
  return SPARSEC_OK;
}
