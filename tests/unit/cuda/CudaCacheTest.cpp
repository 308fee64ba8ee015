//===- CudaCacheTest.cpp - Cached device memory and pooled streams --------===//
//
// Unit tests of runtime/src/cuda_cache.c (mgpuMemAlloc/mgpuMemFree) and the
// stream pool of cuda_mgpu.c over a fake CUDA driver (a table of functions
// that count their calls and hand out fake addresses), so they run on every
// machine. Own executable: the fake driver replaces the real one for the
// whole process.
//
//===----------------------------------------------------------------------===//

#include "FakeDriver.h"
#include "cuda_internal.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <vector>

extern "C" {
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *stream);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
}

namespace {

/// The fake device: live allocations, a capacity, call counts.
struct FakeDevice {
  std::map<CUdeviceptr, size_t> blocks;
  size_t capacity = size_t(1) << 30;
  size_t used = 0;
  CUdeviceptr next = 0x100000;
  int allocs = 0, managed = 0, frees = 0, syncs = 0, streams = 0;
  std::vector<CUstream> synced;
};
FakeDevice dev;

CUresult allocate(CUdeviceptr *p, size_t bytes) {
  if (dev.used + bytes > dev.capacity)
    return 2; // CUDA_ERROR_OUT_OF_MEMORY
  ++dev.allocs;
  *p = dev.next;
  dev.next += bytes + 256;
  dev.blocks[*p] = bytes;
  dev.used += bytes;
  return 0;
}
CUresult allocateManaged(CUdeviceptr *p, size_t bytes, unsigned) {
  ++dev.managed;
  CUresult r = allocate(p, bytes);
  --dev.allocs;
  return r;
}
CUresult release(CUdeviceptr p) {
  auto it = dev.blocks.find(p);
  if (it == dev.blocks.end())
    return 1; // CUDA_ERROR_INVALID_VALUE
  ++dev.frees;
  dev.used -= it->second;
  dev.blocks.erase(it);
  return 0;
}
CUresult synchronize(CUstream s) {
  ++dev.syncs;
  dev.synced.push_back(s);
  return 0;
}
CUresult createStream(CUstream *s, unsigned) {
  *s = reinterpret_cast<CUstream>(uintptr_t(0x5000 + 16 * ++dev.streams));
  return 0;
}
CUresult destroyStream(CUstream) { return 0; }

class CudaCache : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    sparsec__cuda_api api = fake_driver::base();
    api.MemAlloc = allocate;
    api.MemAllocManaged = allocateManaged;
    api.MemFree = release;
    api.StreamSynchronize = synchronize;
    api.StreamCreate = createStream;
    api.StreamDestroy = destroyStream;
    sparsec__cuda_use_driver(&api);
  }
  void SetUp() override {
    unsetenv("SPARSEC_CUDA_CACHE");
    ASSERT_EQ(sparsec_cuda_empty_cache(), SPARSEC_OK);
    size_t inUse = 0, cached = 0;
    ASSERT_EQ(sparsec_cuda_memory_stats(&inUse, &cached), SPARSEC_OK);
    ASSERT_EQ(inUse, 0u) << "a test leaked a block";
    dev.capacity = size_t(1) << 30;
    dev.allocs = dev.managed = dev.frees = dev.syncs = 0;
    dev.synced.clear();
    sparsec_cuda_take_error();
  }
  static std::pair<size_t, size_t> stats() {
    size_t inUse = 0, cached = 0;
    EXPECT_EQ(sparsec_cuda_memory_stats(&inUse, &cached), SPARSEC_OK);
    return {inUse, cached};
  }
};

TEST_F(CudaCache, AFreedBlockServesTheNextRequestOfItsClass) {
  void *a = mgpuMemAlloc(1000, nullptr, false);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(dev.allocs, 1);
  EXPECT_EQ(stats(), std::make_pair(size_t(1024), size_t(0)));
  mgpuMemFree(a, nullptr);
  EXPECT_EQ(dev.frees, 0) << "the block is kept, not given back";
  EXPECT_EQ(stats(), std::make_pair(size_t(0), size_t(1024)));
  void *b = mgpuMemAlloc(900, nullptr, false); // the same class
  EXPECT_EQ(b, a);
  EXPECT_EQ(dev.allocs, 1);
  void *c = mgpuMemAlloc(900, nullptr, false); // a is in use: a new block
  EXPECT_NE(c, a);
  EXPECT_EQ(dev.allocs, 2);
  void *d = mgpuMemAlloc(5000, nullptr, false); // another class
  EXPECT_EQ(dev.allocs, 3);
  for (void *p : {b, c, d})
    mgpuMemFree(p, nullptr);
  EXPECT_EQ(stats().first, 0u);
}

TEST_F(CudaCache, SizeClassesRoundUpByAtMostAQuarter) {
  for (size_t bytes : {size_t(1), size_t(511), size_t(512), size_t(513),
                       size_t(4097), size_t(65535), size_t(1) << 20,
                       (size_t(1) << 20) + 1, size_t(123456789)}) {
    size_t cls = sparsec__cuda_size_class(bytes);
    EXPECT_GE(cls, bytes);
    EXPECT_EQ(cls % 512, 0u) << bytes;
    EXPECT_LE(cls, bytes > 2048 ? bytes + bytes / 4 : size_t(2048)) << bytes;
    EXPECT_EQ(sparsec__cuda_size_class(cls), cls) << "a class is its own class";
  }
  void *p = mgpuMemAlloc((size_t(1) << 20) + 1, nullptr, false);
  EXPECT_EQ(stats().first, (size_t(1) << 20) + (size_t(1) << 18));
  mgpuMemFree(p, nullptr);
}

TEST_F(CudaCache, FreeWaitsForItsStreamBeforeTheBlockIsReused) {
  void *s = reinterpret_cast<void *>(uintptr_t(0x7000));
  void *a = mgpuMemAlloc(4096, s, false);
  mgpuMemFree(a, s);
  ASSERT_EQ(dev.synced.size(), 1u);
  EXPECT_EQ(dev.synced[0], s);
  EXPECT_EQ(mgpuMemAlloc(4096, nullptr, false), a);
  mgpuMemFree(a, nullptr);
}

TEST_F(CudaCache, OutOfMemoryEmptiesTheCacheAndRetries) {
  dev.capacity = dev.used + 3 * 1024 * 1024;
  void *a = mgpuMemAlloc(2 * 1024 * 1024, nullptr, false);
  ASSERT_NE(a, nullptr);
  mgpuMemFree(a, nullptr);
  // Another class that only fits once a's block is given back.
  void *b = mgpuMemAlloc(1024 * 1024 + 1, nullptr, false);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dev.frees, 1);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
  // Still too large: NULL, and the driver's error recorded.
  EXPECT_EQ(mgpuMemAlloc(4 * 1024 * 1024, nullptr, false), nullptr);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_ERR_CUDA);
  EXPECT_NE(std::string(sparsec_last_error()).find("cuMemAlloc"),
            std::string::npos)
      << sparsec_last_error();
  mgpuMemFree(b, nullptr);
}

TEST_F(CudaCache, EmptyCacheGivesIdleBlocksBack) {
  void *a = mgpuMemAlloc(10000, nullptr, false);
  void *b = mgpuMemAlloc(20000, nullptr, false);
  mgpuMemFree(a, nullptr);
  EXPECT_EQ(sparsec_cuda_empty_cache(), SPARSEC_OK);
  EXPECT_EQ(dev.frees, 1);
  EXPECT_EQ(stats().second, 0u);
  EXPECT_GT(stats().first, 0u) << "a block in use stays";
  mgpuMemFree(b, nullptr);
  EXPECT_EQ(sparsec_cuda_memory_stats(nullptr, nullptr), SPARSEC_ERR_NULL);
}

TEST_F(CudaCache, ManagedMemoryAndCachingOffGoToTheDriver) {
  void *m = mgpuMemAlloc(1000, nullptr, true);
  EXPECT_EQ(dev.managed, 1);
  mgpuMemFree(m, nullptr);
  EXPECT_EQ(dev.frees, 1);
  setenv("SPARSEC_CUDA_CACHE", "0", 1);
  void *a = mgpuMemAlloc(1000, nullptr, false);
  mgpuMemFree(a, nullptr);
  EXPECT_EQ(dev.frees, 2);
  EXPECT_EQ(stats(), std::make_pair(size_t(0), size_t(0)));
  unsetenv("SPARSEC_CUDA_CACHE");
}

TEST_F(CudaCache, DestroyedStreamsAreReused) {
  const int before = dev.streams;
  void *s = mgpuStreamCreate();
  ASSERT_NE(s, nullptr);
  mgpuStreamDestroy(s);
  EXPECT_EQ(mgpuStreamCreate(), s);
  void *t = mgpuStreamCreate();
  EXPECT_NE(t, s);
  EXPECT_EQ(dev.streams, before + 2);
  mgpuStreamDestroy(s);
  mgpuStreamDestroy(t);
}

} // namespace
