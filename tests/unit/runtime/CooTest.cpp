//===- CooTest.cpp - Coalescing of row-sparse gradients -------------------===//
//
// Duplicates are summed in batch order, ids come out unique and ascending,
// the `coalesced` flag makes a second call a no-op, and the radix sort
// handles ids that need several passes.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <map>

using namespace sparsec_test;

namespace {

struct Workspace {
  sparsec__coo_workspace ws{};
  ~Workspace() { sparsec__coo_free(&ws); }
};

/// Reference: std::map accumulation in input order.
std::map<int32_t, std::vector<float>> reference(const std::vector<int32_t> &ids,
                                                const std::vector<float> &rows,
                                                int64_t dim) {
  std::map<int32_t, std::vector<float>> ref;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = ref.find(ids[i]);
    if (it == ref.end()) {
      ref[ids[i]] = std::vector<float>(rows.begin() + i * dim,
                                       rows.begin() + (i + 1) * dim);
    } else {
      for (int64_t d = 0; d < dim; ++d)
        it->second[d] += rows[i * dim + d];
    }
  }
  return ref;
}

void expectCoalesced(const sparsec__coo_grad &g,
                     const std::map<int32_t, std::vector<float>> &ref) {
  ASSERT_EQ(g.coalesced, 1);
  ASSERT_EQ(g.n, (int64_t)ref.size());
  int64_t i = 0;
  for (const auto &[id, row] : ref) {
    EXPECT_EQ(g.ids[i], id);
    for (int64_t d = 0; d < g.dim; ++d)
      EXPECT_EQ(g.rows[i * g.dim + d], row[d])
          << "id " << id << " col " << d; // same order: exact
    ++i;
  }
}

TEST(Coo, DuplicatesSummedAndSorted) {
  std::vector<int32_t> ids = {5, 2, 5, 0, 2, 5, 9};
  std::vector<float> rows;
  for (size_t i = 0; i < ids.size(); ++i) {
    rows.push_back(0.1f * (float)i + 1.0f);
    rows.push_back(-3.0f * (float)i);
  }
  Workspace w;
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, (int64_t)ids.size(), 2), 0);
  sparsec__coo_grad g = {(int64_t)ids.size(), 2, ids.data(), rows.data(), 0};
  sparsec__coo_coalesce(&g, 10, &w.ws);
  expectCoalesced(g, reference(ids, rows, 2));
  EXPECT_EQ(g.n, 4);
  EXPECT_EQ(g.ids[0], 0);
  EXPECT_EQ(g.ids[1], 2);
  EXPECT_EQ(g.ids[2], 5);
  EXPECT_EQ(g.ids[3], 9);
  // id 5 came at positions 0, 2, 5: (1.0 + 1.2) + 1.5 and 0 - 6 - 15.
  EXPECT_EQ(g.rows[2 * 2 + 0], (1.0f + 1.2f) + 1.5f);
  EXPECT_EQ(g.rows[2 * 2 + 1], -21.0f);
  // The input is untouched.
  EXPECT_EQ(ids[0], 5);
  EXPECT_EQ(rows[0], 1.0f);
}

TEST(Coo, FlagPreventsDoubleWork) {
  std::vector<int32_t> ids = {3, 1, 3};
  std::vector<float> rows = {1, 2, 4};
  Workspace w;
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 3, 1), 0);
  sparsec__coo_grad g = {3, 1, ids.data(), rows.data(), 0};
  sparsec__coo_coalesce(&g, 4, &w.ws);
  ASSERT_EQ(g.n, 2);
  const int32_t *idsAfter = g.ids;
  const float *rowsAfter = g.rows;
  // Scribble on the workspace: a second coalesce must not recompute.
  w.ws.out_rows[0] = 100.0f;
  sparsec__coo_coalesce(&g, 4, &w.ws);
  EXPECT_EQ(g.n, 2);
  EXPECT_EQ(g.ids, idsAfter);
  EXPECT_EQ(g.rows, rowsAfter);
  EXPECT_EQ(g.rows[0], 100.0f);
  // A gradient flagged as coalesced is trusted as is.
  sparsec__coo_grad h = {3, 1, ids.data(), rows.data(), 1};
  sparsec__coo_coalesce(&h, 4, &w.ws);
  EXPECT_EQ(h.n, 3);
  EXPECT_EQ(h.ids, ids.data());
}

TEST(Coo, AlreadySortedIsOnlyFlagged) {
  std::vector<int32_t> ids = {0, 4, 7};
  std::vector<float> rows = {1, 2, 3};
  Workspace w;
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 3, 1), 0);
  sparsec__coo_grad g = {3, 1, ids.data(), rows.data(), 0};
  sparsec__coo_coalesce(&g, 8, &w.ws);
  EXPECT_EQ(g.coalesced, 1);
  EXPECT_EQ(g.ids, ids.data()); // no copy
  EXPECT_EQ(g.n, 3);
}

TEST(Coo, EmptyAndSingle) {
  Workspace w;
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 0, 4), 0);
  sparsec__coo_grad g = {0, 4, nullptr, nullptr, 0};
  sparsec__coo_coalesce(&g, 10, &w.ws);
  EXPECT_EQ(g.n, 0);
  EXPECT_EQ(g.coalesced, 1);
}

TEST(Coo, LargeIdsNeedSeveralPasses) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 77, 0);
  for (int64_t bound : {3ll, 2048ll, 2049ll, 5000000ll, 2147483647ll}) {
    const int64_t n = 3000, dim = 3;
    std::vector<int32_t> ids(n);
    std::vector<float> rows(n * dim);
    // At most 500 distinct ids spread over [0, bound), including bound - 1,
    // so duplicates are frequent and the largest id needs every pass.
    const int64_t distinct = std::min<int64_t>(bound, 500);
    std::vector<int32_t> candidates;
    for (int64_t j = 0; j < distinct; ++j)
      candidates.push_back((int32_t)(bound - 1 - j * (bound / distinct)));
    for (auto &id : ids)
      id = candidates[sparsec__rng_below(&rng, (uint64_t)distinct)];
    for (auto &r : rows)
      r = (float)sparsec__rng_uniform(&rng);
    Workspace w;
    ASSERT_EQ(sparsec__coo_reserve(&w.ws, n, dim), 0);
    sparsec__coo_grad g = {n, dim, ids.data(), rows.data(), 0};
    sparsec__coo_coalesce(&g, bound, &w.ws);
    expectCoalesced(g, reference(ids, rows, dim));
  }
}

TEST(Coo, ReserveGrowsAndRejectsAbsurdSizes) {
  Workspace w;
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 10, 2), 0);
  EXPECT_EQ(w.ws.cap_n, 10);
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 5, 2), 0);
  EXPECT_EQ(w.ws.cap_n, 10); // never shrinks
  ASSERT_EQ(sparsec__coo_reserve(&w.ws, 100, 2), 0);
  EXPECT_EQ(w.ws.cap_n, 100);
  EXPECT_EQ(sparsec__coo_reserve(&w.ws, (int64_t)1 << 40, 1 << 30), -1);
  EXPECT_EQ(w.ws.cap_n, 100); // unchanged after a failure
}

} // namespace
