//===- ParallelTest.cpp - The kernels' thread pool (parallel.c) -----------===//
//
// sparsec_parallel_for covers [0, n) exactly once with contiguous ranges,
// for every n and over many back-to-back calls (the calls of a train step),
// runs a nested call and calls from several application threads on the
// calling thread, and returns only when every range is done.
//
//===----------------------------------------------------------------------===//

#include "internal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

/// Counts how often each index was visited.
struct Visits {
  std::vector<std::atomic<int>> count;
  std::atomic<int64_t> ranges{0};
  explicit Visits(int64_t n) : count(n) {}
};

void visit(void *ctx, int64_t lo, int64_t hi) {
  auto *v = static_cast<Visits *>(ctx);
  ASSERT_LE(lo, hi);
  for (int64_t i = lo; i < hi; ++i)
    v->count[i].fetch_add(1, std::memory_order_relaxed);
  v->ranges.fetch_add(1, std::memory_order_relaxed);
}

void expectOnce(const Visits &v) {
  for (size_t i = 0; i < v.count.size(); ++i)
    ASSERT_EQ(v.count[i].load(), 1) << "index " << i;
}

TEST(ParallelTest, CoversEveryIndexOnce) {
  for (int64_t n : {1, 2, 3, 7, 16, 17, 100, 513, 2000, 100000}) {
    Visits v(n);
    sparsec_parallel_for(visit, &v, n);
    expectOnce(v);
    EXPECT_LE(v.ranges.load(), n);
  }
  sparsec_parallel_for(visit, nullptr, 0); // an empty range calls nothing
}

TEST(ParallelTest, BackToBackCalls) {
  // Many short calls in a row: workers polling or asleep between them must
  // neither miss a call nor run a range of the previous one.
  for (int call = 0; call < 20000; ++call) {
    int64_t n = 1 + call % 97;
    Visits v(n);
    sparsec_parallel_for(visit, &v, n);
    expectOnce(v);
  }
}

TEST(ParallelTest, CallsAfterIdle) {
  // Workers that went to sleep are woken by the next call.
  for (int call = 0; call < 5; ++call) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Visits v(1000);
    sparsec_parallel_for(visit, &v, 1000);
    expectOnce(v);
  }
}

struct Nested {
  Visits inner{64};
  std::atomic<int> outer{0};
};

void nestedChunk(void *ctx, int64_t lo, int64_t hi) {
  auto *n = static_cast<Nested *>(ctx);
  for (int64_t i = lo; i < hi; ++i)
    n->outer.fetch_add(1);
  // A nested call finds the pool busy (or is itself the caller's): it runs
  // on this thread and covers its range once.
  Visits v(64);
  sparsec_parallel_for(visit, &v, 64);
  expectOnce(v);
}

TEST(ParallelTest, NestedCallsRunOnTheCaller) {
  Nested n;
  sparsec_parallel_for(nestedChunk, &n, 40);
  EXPECT_EQ(n.outer.load(), 40);
}

TEST(ParallelTest, SeveralApplicationThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&failures, t] {
      for (int call = 0; call < 2000; ++call) {
        int64_t n = 1 + (call * 7 + t) % 300;
        Visits v(n);
        sparsec_parallel_for(visit, &v, n);
        for (int64_t i = 0; i < n; ++i)
          if (v.count[i].load() != 1)
            ++failures;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

} // namespace
