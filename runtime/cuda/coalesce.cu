//===- coalesce.cu - The row order of an embedding gradient on the device -===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The device twin of coo.c's sparsec__coo_sort: the batch's ids (row
// numbers, < 2^31) sorted stably, as the permutation of batch positions
// (perm), the start of each distinct id's run in it (starts, one past the
// last at starts[segments]), each run's id (keys) and the run count. The
// results are those of the CPU's sort, bit for bit; optim.cu's row kernels
// then sum each run's gradient rows in batch order.
//
// A batch of at most one tile (4096 ids: 256 threads of 16) is one kernel:
// CUB's block radix sort over the ids' bits, then the run heads by a block
// scan. Larger batches take a least-significant-digit radix sort over
// 8-bit digits, two kernels per digit (tile histograms, then a stable
// scatter: each tile sorted by the digit with the block radix sort and
// placed at its digit's offset in the whole batch), then two kernels for
// the runs (heads per tile, then their positions). Compiled by nvcc to PTX
// and embedded in the runtime (runtime/CMakeLists.txt); cuda_coalesce.c
// launches it through the driver API (docs/cuda.md).
//
//===----------------------------------------------------------------------===//

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

namespace {
constexpr int kThreads = 256, kItems = 16, kTile = kThreads * kItems;
constexpr int kDigitBits = 8, kDigits = 1 << kDigitBits;
static_assert(kDigits == kThreads, "the scatter gives each thread one digit");
// Past the batch: sorts after every id (ids < 2^31 on every bit range).
constexpr uint32_t kPad = 0xffffffffu;

using TileSort = cub::BlockRadixSort<uint32_t, kThreads, kItems, uint32_t>;
using Scan = cub::BlockScan<uint32_t, kThreads>;
union Shared {
  TileSort::TempStorage sort;
  Scan::TempStorage scan;
};

// This thread's items of tile `tile` in blocked arrangement (thread t holds
// positions t * kItems ...): the keys and values (`vals` null: the batch
// positions), kPad past the batch.
__device__ void loadTile(const uint32_t *keys, const uint32_t *vals, int64_t n, int64_t tile,
                         uint32_t (&k)[kItems], uint32_t (&v)[kItems]) {
  const int64_t first = tile * kTile + int64_t(threadIdx.x) * kItems;
  for (int i = 0; i < kItems; ++i) {
    const int64_t j = first + i;
    k[i] = j < n ? keys[j] : kPad;
    v[i] = j < n ? (vals ? vals[j] : uint32_t(j)) : kPad;
  }
}

// Writes the sorted tile `tile` (blocked, `prev` the key before it, kPad
// for the first): perm, and for each run starting in it its start and key,
// numbered from `base`. Returns the tile's run count to every thread.
__device__ uint32_t writeRuns(Shared &tmp, const uint32_t (&k)[kItems], const uint32_t (&v)[kItems],
                              int64_t n, int64_t tile, uint32_t prev, uint32_t base, uint32_t *perm,
                              uint32_t *starts, int32_t *keys) {
  __shared__ uint32_t last[kThreads];
  __syncthreads(); // `tmp` and `last` may still be read by the caller's sort
  last[threadIdx.x] = k[kItems - 1];
  __syncthreads();
  if (threadIdx.x > 0)
    prev = last[threadIdx.x - 1];
  const int64_t first = tile * kTile + int64_t(threadIdx.x) * kItems;
  uint32_t head[kItems], run[kItems], total;
  for (int i = 0; i < kItems; ++i) {
    head[i] = first + i < n && k[i] != prev;
    prev = k[i];
  }
  Scan(tmp.scan).ExclusiveSum(head, run, total);
  for (int i = 0; i < kItems; ++i) {
    const int64_t j = first + i;
    if (j >= n)
      break;
    perm[j] = v[i];
    if (head[i]) {
      starts[base + run[i]] = uint32_t(j);
      keys[base + run[i]] = int32_t(k[i]);
    }
  }
  return total;
}

// The last block's thread 0: the run count and the end of the last run.
__device__ void finish(uint32_t runs, int64_t n, uint32_t *starts, uint32_t *count) {
  if (blockIdx.x == gridDim.x - 1 && threadIdx.x == 0) {
    *count = runs;
    starts[runs] = uint32_t(n);
  }
}
} // namespace

extern "C" {

// A batch of 1..kTile ids, one block: sorted on their low `bits` bits.
__global__ void __launch_bounds__(kThreads)
    sparsec_coalesce_tile(const uint32_t *ids, int64_t n, int bits, uint32_t *perm,
                          uint32_t *starts, int32_t *keys, uint32_t *count) {
  __shared__ Shared tmp;
  uint32_t k[kItems], v[kItems];
  loadTile(ids, nullptr, n, 0, k, v);
  TileSort(tmp.sort).Sort(k, v, 0, bits);
  finish(writeRuns(tmp, k, v, n, 0, kPad, 0, perm, starts, keys), n, starts, count);
}

// Digit pass, 1: block b counts the digit (bits shift..shift+7) of its
// tile's keys into counts[b * kDigits + digit].
__global__ void __launch_bounds__(kThreads)
    sparsec_coalesce_count(const uint32_t *keys, int64_t n, int shift, uint32_t *counts) {
  __shared__ uint32_t hist[kDigits];
  hist[threadIdx.x] = 0;
  __syncthreads();
  const int64_t first = int64_t(blockIdx.x) * kTile;
  for (int i = 0; i < kItems; ++i) {
    const int64_t j = first + int64_t(i) * kThreads + threadIdx.x; // coalesced
    if (j < n)
      atomicAdd(&hist[(keys[j] >> shift) & (kDigits - 1)], 1u);
  }
  __syncthreads();
  counts[int64_t(blockIdx.x) * kDigits + threadIdx.x] = hist[threadIdx.x];
}

// Digit pass, 2: block b sorts its tile by the digit (stable) and writes
// each entry at its digit's offset in the batch (every smaller digit of
// every tile, then this digit in the tiles before b) plus its place among
// the tile's entries of that digit. `vals` null: the batch positions.
__global__ void __launch_bounds__(kThreads)
    sparsec_coalesce_scatter(const uint32_t *keys, const uint32_t *vals, int64_t n, int shift,
                             const uint32_t *counts, uint32_t *keysOut, uint32_t *valsOut) {
  __shared__ Shared tmp;
  __shared__ uint32_t batchOffset[kDigits], tileOffset[kDigits];
  const int digit = threadIdx.x;
  uint32_t all = 0, before = 0;
  for (unsigned b = 0; b < gridDim.x; ++b) {
    const uint32_t c = counts[int64_t(b) * kDigits + digit];
    all += c;
    before += b < blockIdx.x ? c : 0;
  }
  const uint32_t own = counts[int64_t(blockIdx.x) * kDigits + digit];
  uint32_t smaller, smallerHere;
  Scan(tmp.scan).ExclusiveSum(all, smaller);
  __syncthreads();
  Scan(tmp.scan).ExclusiveSum(own, smallerHere);
  batchOffset[digit] = smaller + before;
  tileOffset[digit] = smallerHere;
  __syncthreads();
  uint32_t k[kItems], v[kItems];
  loadTile(keys, vals, n, blockIdx.x, k, v);
  TileSort(tmp.sort).Sort(k, v, shift, shift + kDigitBits);
  // Sorted, the tile's entries come first (the padding sorts last).
  const int64_t left = n - int64_t(blockIdx.x) * kTile;
  const uint32_t inTile = uint32_t(left < kTile ? left : kTile);
  for (int i = 0; i < kItems; ++i) {
    const uint32_t at = threadIdx.x * kItems + i;
    if (at >= inTile)
      break;
    const uint32_t d = (k[i] >> shift) & (kDigits - 1);
    const uint32_t to = batchOffset[d] + (at - tileOffset[d]);
    keysOut[to] = k[i];
    valsOut[to] = v[i];
  }
}

// Runs, 1: block b counts the run heads of its tile of the sorted keys.
__global__ void __launch_bounds__(kThreads)
    sparsec_coalesce_heads(const uint32_t *keys, int64_t n, uint32_t *heads) {
  __shared__ uint32_t count;
  if (threadIdx.x == 0)
    count = 0;
  __syncthreads();
  const int64_t first = int64_t(blockIdx.x) * kTile;
  uint32_t mine = 0;
  for (int i = 0; i < kItems; ++i) {
    const int64_t j = first + int64_t(i) * kThreads + threadIdx.x;
    mine += j < n && (j == 0 || keys[j] != keys[j - 1]);
  }
  atomicAdd(&count, mine);
  __syncthreads();
  if (threadIdx.x == 0)
    heads[blockIdx.x] = count;
}

// Runs, 2: block b numbers its tile's runs after those of the tiles
// before it and writes perm, starts and keys.
__global__ void __launch_bounds__(kThreads)
    sparsec_coalesce_runs(const uint32_t *sorted, const uint32_t *vals, int64_t n,
                          const uint32_t *heads, uint32_t *perm, uint32_t *starts, int32_t *keys,
                          uint32_t *count) {
  __shared__ Shared tmp;
  uint32_t mine = 0, ignored, base;
  for (unsigned b = threadIdx.x; b < blockIdx.x; b += kThreads)
    mine += heads[b];
  Scan(tmp.scan).ExclusiveSum(mine, ignored, base);
  uint32_t k[kItems], v[kItems];
  loadTile(sorted, vals, n, blockIdx.x, k, v);
  const uint32_t prev = blockIdx.x > 0 ? sorted[int64_t(blockIdx.x) * kTile - 1] : kPad;
  const uint32_t runs = writeRuns(tmp, k, v, n, blockIdx.x, prev, base, perm, starts, keys);
  finish(base + runs, n, starts, count);
}

} // extern "C"
