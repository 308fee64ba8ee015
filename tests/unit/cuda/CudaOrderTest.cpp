//===- CudaOrderTest.cpp - The device row order's host side ---------------===//
//
// Unit tests of runtime/src/cuda_coalesce.c (sparsec__cuda_order) over a
// fake CUDA driver whose "device" is host memory and whose kernel launches
// run host models of runtime/cuda/coalesce.cu's kernels, each written from
// the kernel's contract (one call per block, a tile of 4096 entries). They
// check what a CPU can: the kernels chosen for a batch size, their grids
// and parameters, the scratch layout and the alternation of the digit
// passes, the run count copied back - and that the composition sorts as
// coo.c's sparsec__coo_sort, bit for bit. The kernels themselves run on a
// GPU only (tests/cuda/sort_test.c). Own executable: the fake driver
// replaces the real one for the whole process.
//
//===----------------------------------------------------------------------===//

#include "FakeDriver.h"
#include "cuda_internal.h"
#include "internal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

constexpr int64_t kTile = 4096;
constexpr int kDigits = 256;

template <typename T> T *at(CUdeviceptr p) {
  return reinterpret_cast<T *>(uintptr_t(p));
}
template <typename T> T arg(void **params, int i) {
  return *static_cast<T *>(params[i]);
}

/// What the fake driver saw, and what it should get wrong.
struct Fake {
  std::vector<std::string> launches;
  std::vector<unsigned> grids;
  bool failLaunch = false;
  bool zeroRuns = false;
};
Fake fake;

// The tile of block `b` and its real length.
int64_t tileLength(int64_t n, unsigned b) {
  return std::min<int64_t>(kTile, n - b * kTile);
}

// Entries [first, first + len) of keys/vals (vals null: the positions).
std::vector<std::pair<uint32_t, uint32_t>>
tileOf(const uint32_t *keys, const uint32_t *vals, int64_t first, int64_t len) {
  std::vector<std::pair<uint32_t, uint32_t>> t;
  for (int64_t j = first; j < first + len; ++j)
    t.emplace_back(keys[j], vals ? vals[j] : uint32_t(j));
  return t;
}

// The runs of sorted block `b` (prev: the key before it), numbered from
// `base`; returns their count.
uint32_t writeRuns(const std::vector<std::pair<uint32_t, uint32_t>> &t,
                   int64_t first, bool hasPrev, uint32_t prev, uint32_t base,
                   uint32_t *perm, uint32_t *starts, int32_t *keys) {
  uint32_t runs = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    perm[first + i] = t[i].second;
    if ((i == 0 && !hasPrev) || t[i].first != (i ? t[i - 1].first : prev)) {
      starts[base + runs] = uint32_t(first + i);
      keys[base + runs] = int32_t(t[i].first);
      ++runs;
    }
  }
  return runs;
}

// Sorts `t` stably by the key's bits (key >> shift) & mask.
void sortBy(std::vector<std::pair<uint32_t, uint32_t>> &t, uint32_t shift,
            uint32_t mask) {
  std::vector<std::pair<uint64_t, size_t>> order; // (digit, place): distinct
  for (size_t i = 0; i < t.size(); ++i)
    order.emplace_back((t[i].first >> shift) & mask, i);
  std::sort(order.begin(), order.end());
  std::vector<std::pair<uint32_t, uint32_t>> sorted;
  for (auto [digit, i] : order)
    sorted.push_back(t[i]);
  t = sorted;
}

// The kernels of coalesce.cu, block `b` of `grid`.
void runBlock(const std::string &name, void **p, unsigned b, unsigned grid) {
  if (name == "sparsec_coalesce_tile") {
    const int64_t n = arg<int64_t>(p, 1);
    auto t = tileOf(at<uint32_t>(arg<CUdeviceptr>(p, 0)), nullptr, 0, n);
    sortBy(t, 0, uint32_t((uint64_t(1) << arg<int>(p, 2)) - 1));
    uint32_t runs =
        writeRuns(t, 0, false, 0, 0, at<uint32_t>(arg<CUdeviceptr>(p, 3)),
                  at<uint32_t>(arg<CUdeviceptr>(p, 4)),
                  at<int32_t>(arg<CUdeviceptr>(p, 5)));
    at<uint32_t>(arg<CUdeviceptr>(p, 4))[runs] = uint32_t(n);
    *at<uint32_t>(arg<CUdeviceptr>(p, 6)) = fake.zeroRuns ? 0 : runs;
  } else if (name == "sparsec_coalesce_count") {
    const uint32_t *keys = at<uint32_t>(arg<CUdeviceptr>(p, 0));
    const int64_t n = arg<int64_t>(p, 1);
    const int shift = arg<int>(p, 2);
    uint32_t *counts =
        at<uint32_t>(arg<CUdeviceptr>(p, 3)) + int64_t(b) * kDigits;
    std::fill(counts, counts + kDigits, 0u);
    for (int64_t j = b * kTile; j < b * kTile + tileLength(n, b); ++j)
      ++counts[(keys[j] >> shift) & (kDigits - 1)];
  } else if (name == "sparsec_coalesce_scatter") {
    const int64_t n = arg<int64_t>(p, 2);
    const int shift = arg<int>(p, 3);
    const uint32_t *counts = at<uint32_t>(arg<CUdeviceptr>(p, 4));
    uint32_t *keysOut = at<uint32_t>(arg<CUdeviceptr>(p, 5));
    uint32_t *valsOut = at<uint32_t>(arg<CUdeviceptr>(p, 6));
    // Where digit d of this tile goes: every smaller digit of the batch,
    // then digit d of the tiles before this one.
    std::vector<uint32_t> offset(kDigits, 0);
    for (int d = 0; d < kDigits; ++d)
      for (unsigned c = 0; c < grid; ++c)
        for (int e = 0; e < kDigits; ++e)
          if (e < d || (e == d && c < b))
            offset[d] += counts[c * kDigits + e];
    auto t = tileOf(at<uint32_t>(arg<CUdeviceptr>(p, 0)),
                    at<uint32_t>(arg<CUdeviceptr>(p, 1)), b * kTile,
                    tileLength(n, b));
    for (auto [key, val] : t) { // in order: stable
      const uint32_t to = offset[(key >> shift) & (kDigits - 1)]++;
      keysOut[to] = key;
      valsOut[to] = val;
    }
  } else if (name == "sparsec_coalesce_heads") {
    const uint32_t *keys = at<uint32_t>(arg<CUdeviceptr>(p, 0));
    const int64_t n = arg<int64_t>(p, 1);
    uint32_t heads = 0;
    for (int64_t j = b * kTile; j < b * kTile + tileLength(n, b); ++j)
      heads += j == 0 || keys[j] != keys[j - 1];
    at<uint32_t>(arg<CUdeviceptr>(p, 2))[b] = heads;
  } else if (name == "sparsec_coalesce_runs") {
    const uint32_t *sorted = at<uint32_t>(arg<CUdeviceptr>(p, 0));
    const int64_t n = arg<int64_t>(p, 2);
    const uint32_t *heads = at<uint32_t>(arg<CUdeviceptr>(p, 3));
    uint32_t base = 0;
    for (unsigned c = 0; c < b; ++c)
      base += heads[c];
    auto t = tileOf(sorted, at<uint32_t>(arg<CUdeviceptr>(p, 1)), b * kTile,
                    tileLength(n, b));
    uint32_t *starts = at<uint32_t>(arg<CUdeviceptr>(p, 5));
    const uint32_t runs =
        writeRuns(t, b * kTile, b > 0, b > 0 ? sorted[b * kTile - 1] : 0, base,
                  at<uint32_t>(arg<CUdeviceptr>(p, 4)), starts,
                  at<int32_t>(arg<CUdeviceptr>(p, 6)));
    if (b == grid - 1) {
      starts[base + runs] = uint32_t(n);
      *at<uint32_t>(arg<CUdeviceptr>(p, 7)) = base + runs;
    }
  } else {
    ADD_FAILURE() << "unknown kernel " << name;
  }
}

CUresult loadModule(CUmodule *m, const void *image, unsigned, int *, void **) {
  // The embedded PTX of coalesce.cu (the optimizer module is not used).
  EXPECT_NE(std::strstr(static_cast<const char *>(image),
                        ".entry sparsec_coalesce_tile"),
            nullptr);
  *m = reinterpret_cast<CUmodule>(uintptr_t(0x1000));
  return 0;
}
CUresult getFunction(CUfunction *f, CUmodule, const char *name) {
  static std::set<std::string> names; // the handles: stable addresses
  *f = const_cast<std::string *>(&*names.insert(name).first);
  return 0;
}
CUresult launch(CUfunction f, unsigned gx, unsigned, unsigned, unsigned bx,
                unsigned, unsigned, unsigned, CUstream, void **params,
                void **) {
  const std::string &name = *static_cast<const std::string *>(f);
  fake.launches.push_back(name);
  fake.grids.push_back(gx);
  EXPECT_EQ(bx, 256u);
  if (fake.failLaunch)
    return 1;
  for (unsigned b = 0; b < gx; ++b)
    runBlock(name, params, b, gx);
  return 0;
}
CUresult copy(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream) {
  std::memcpy(at<void>(dst), at<void>(src), bytes);
  return 0;
}
CUresult synchronize(CUstream) { return 0; }
CUresult createStream(CUstream *s, unsigned) {
  *s = reinterpret_cast<CUstream>(uintptr_t(0x5000));
  return 0;
}
CUresult destroyStream(CUstream) { return 0; }

/// The result of one order: perm, starts, keys, the run count.
struct Order {
  std::vector<uint32_t> perm, starts;
  std::vector<int32_t> keys;
  int64_t runs = 0;
};

class CudaOrder : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    sparsec__cuda_api api = fake_driver::base();
    api.ModuleLoadDataEx = loadModule;
    api.ModuleGetFunction = getFunction;
    api.LaunchKernel = launch;
    api.MemcpyAsync = copy;
    api.StreamSynchronize = synchronize;
    api.StreamCreate = createStream;
    api.StreamDestroy = destroyStream;
    sparsec__cuda_use_driver(&api);
  }
  void SetUp() override {
    fake = Fake();
    sparsec_cuda_take_error();
  }

  /// sparsec__cuda_order on `ids` (ids < 2^bits); the status in `rc`.
  static Order device(const std::vector<uint32_t> &ids, int bits, int &rc) {
    const int64_t n = int64_t(ids.size());
    std::vector<uint32_t> input = ids;
    std::vector<uint8_t> scratch(sparsec__cuda_order_scratch(n));
    Order o;
    o.perm.assign(n, 0xdeadbeef);
    o.starts.assign(n + 1, 0xdeadbeef);
    o.keys.assign(n, -7);
    auto ptr = [](auto &v) { return CUdeviceptr(uintptr_t(v.data())); };
    rc = sparsec__cuda_order(ptr(input), n, bits, ptr(scratch), ptr(o.perm),
                             ptr(o.starts), ptr(o.keys), &o.runs);
    EXPECT_EQ(input, ids) << "the ids were overwritten";
    return o;
  }

  /// coo.c's sort of the same ids.
  static Order host(const std::vector<uint32_t> &ids) {
    std::vector<int32_t> signedIds(ids.begin(), ids.end());
    sparsec__coo_workspace ws;
    std::memset(&ws, 0, sizeof(ws));
    EXPECT_EQ(sparsec__coo_reserve(&ws, int64_t(ids.size()), 1), 0);
    sparsec__coo_grad g = {int64_t(ids.size()), 1, signedIds.data(), nullptr,
                           0};
    const sparsec__coo_order ord = sparsec__coo_sort(&g, &ws, 0);
    Order o;
    o.runs = ord.segments;
    o.perm.assign(ord.perm, ord.perm + ids.size());
    o.starts.assign(ord.starts, ord.starts + ord.segments + 1);
    for (int64_t s = 0; s < ord.segments; ++s)
      o.keys.push_back(int32_t(ord.keys[ord.starts[s]]));
    sparsec__coo_free(&ws);
    return o;
  }

  static void expectSameOrder(const std::vector<uint32_t> &ids, int bits) {
    int rc = -1;
    const Order d = device(ids, bits, rc);
    ASSERT_EQ(rc, SPARSEC_OK) << sparsec_last_error();
    const Order h = host(ids);
    ASSERT_EQ(d.runs, h.runs);
    EXPECT_EQ(d.perm, h.perm);
    EXPECT_EQ(
        std::vector<uint32_t>(d.starts.begin(), d.starts.begin() + d.runs + 1),
        h.starts);
    EXPECT_EQ(std::vector<int32_t>(d.keys.begin(), d.keys.begin() + d.runs),
              h.keys);
  }

  /// `n` ids below 2^bits, a few of them frequent (as Zipf ids are).
  static std::vector<uint32_t> ids(int64_t n, int bits, unsigned seed) {
    std::mt19937 rng(seed);
    const uint32_t bound = uint32_t((uint64_t(1) << bits) - 1);
    std::uniform_int_distribution<uint32_t> any(0, bound),
        hot(0, std::min(bound, 15u));
    std::vector<uint32_t> v(n);
    for (auto &x : v)
      x = rng() % 3 == 0 ? hot(rng) : any(rng);
    return v;
  }
};

TEST_F(CudaOrder, OneTileIsOneKernel) {
  for (int64_t n : {1, 2, 100, 4095, 4096})
    for (int bits : {1, 7, 20, 31}) {
      SCOPED_TRACE("n " + std::to_string(n) + ", bits " + std::to_string(bits));
      fake = Fake();
      expectSameOrder(ids(n, bits, unsigned(n * 31 + bits)), bits);
      EXPECT_EQ(fake.launches,
                std::vector<std::string>{"sparsec_coalesce_tile"});
      EXPECT_EQ(fake.grids, std::vector<unsigned>{1});
    }
}

TEST_F(CudaOrder, LargerBatchesTakeTwoKernelsPerDigitAndTwoForTheRuns) {
  for (int64_t n : {4097, 3 * 4096 + 5, 53248})
    for (int bits : {1, 8, 9, 20, 31}) {
      SCOPED_TRACE("n " + std::to_string(n) + ", bits " + std::to_string(bits));
      fake = Fake();
      expectSameOrder(ids(n, bits, unsigned(n + bits)), bits);
      const size_t digits = size_t((bits + 7) / 8);
      ASSERT_EQ(fake.launches.size(), 2 * digits + 2);
      for (size_t d = 0; d < digits; ++d) {
        EXPECT_EQ(fake.launches[2 * d], "sparsec_coalesce_count");
        EXPECT_EQ(fake.launches[2 * d + 1], "sparsec_coalesce_scatter");
      }
      EXPECT_EQ(fake.launches[2 * digits], "sparsec_coalesce_heads");
      EXPECT_EQ(fake.launches[2 * digits + 1], "sparsec_coalesce_runs");
      for (unsigned g : fake.grids)
        EXPECT_EQ(g, unsigned((n + 4095) / 4096));
    }
}

TEST_F(CudaOrder, SortedEqualAndDescendingIds) {
  for (int64_t n : {3000, 9000}) {
    std::vector<uint32_t> up(n), same(n, 5), down(n);
    for (int64_t i = 0; i < n; ++i) {
      up[i] = uint32_t(i);
      down[i] = uint32_t(n - 1 - i);
    }
    expectSameOrder(up, 14);
    expectSameOrder(same, 3);
    expectSameOrder(down, 14);
  }
}

TEST_F(CudaOrder, BadArgumentsAndKernelFaultsAreErrors) {
  int rc = SPARSEC_OK;
  device({1, 2}, 0, rc);
  EXPECT_EQ(rc, SPARSEC_ERR_INVALID_ARG);
  device({1, 2}, 32, rc);
  EXPECT_EQ(rc, SPARSEC_ERR_INVALID_ARG);
  EXPECT_TRUE(fake.launches.empty());
  const Order empty = device({}, 5, rc);
  EXPECT_EQ(rc, SPARSEC_OK);
  EXPECT_EQ(empty.runs, 0);
  EXPECT_TRUE(fake.launches.empty());

  fake.failLaunch = true;
  device(ids(10000, 12, 1), 12, rc);
  EXPECT_EQ(rc, SPARSEC_ERR_CUDA);
  EXPECT_NE(
      std::string(sparsec_last_error()).find(fake_driver::kFakeDriverError),
      std::string::npos)
      << sparsec_last_error();

  fake = Fake();
  fake.zeroRuns = true;
  device(ids(100, 12, 2), 12, rc);
  EXPECT_EQ(rc, SPARSEC_ERR_CUDA);
  EXPECT_NE(std::string(sparsec_last_error()).find("0 runs for 100 ids"),
            std::string::npos)
      << sparsec_last_error();
}

} // namespace
