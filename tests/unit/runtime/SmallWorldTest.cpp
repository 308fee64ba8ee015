//===- SmallWorldTest.cpp - Small-world and user CSR patterns -------------===//
//
// SPARSEC_PATTERN_SMALL_WORLD: exactly nnz distinct, sorted edges, the same
// for the same seed; the lambda search ends (also where SparseLinear's
// never did: 784 -> 2000 at 90%, 20000 -> 20000 at 99.9%) with the
// expected edge count equal to nnz; edges are local (their distance law
// follows (d + 1)^-lambda: the share of edges within the median distance
// of the model, and each output's degree against its expected degree, from
// a brute-force evaluation of P(i, j) over the whole grid).
// SPARSEC_PATTERN_USER: the structure is copied; a bad one is refused.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace sparsec_test;

namespace {

struct Pattern {
  std::vector<int32_t> pos, crd;
};

Pattern smallWorld(int64_t rows, int64_t cols, int64_t nnz, uint64_t seed) {
  Pattern p;
  p.pos.resize(rows + 1);
  p.crd.resize(nnz);
  sparsec__rng rng;
  sparsec__rng_seed(&rng, seed, 7);
  EXPECT_EQ(sparsec__csr_small_world(&rng, rows, cols, nnz, p.pos.data(),
                                     p.crd.data()),
            0);
  return p;
}

/// Distance of the model, d = | |i - j| - |rows - cols| / 2 |.
double dist(int64_t rows, int64_t cols, int64_t i, int64_t j) {
  return std::fabs(std::fabs(double(i - j)) -
                   std::fabs(double(rows - cols)) / 2);
}

void expectValidCsr(const Pattern &p, int64_t rows, int64_t cols, int64_t nnz) {
  ASSERT_EQ(p.pos.front(), 0);
  ASSERT_EQ(p.pos.back(), nnz);
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_LE(p.pos[r], p.pos[r + 1]);
    for (int32_t i = p.pos[r]; i < p.pos[r + 1]; ++i) {
      ASSERT_GE(p.crd[i], 0);
      ASSERT_LT(p.crd[i], cols);
      if (i > p.pos[r])
        ASSERT_LT(p.crd[i - 1], p.crd[i]) << "row " << r;
    }
  }
}

TEST(SmallWorld, ExactNnzSortedAndDeterministicPerSeed) {
  const int64_t rows = 200, cols = 300, nnz = 6000;
  Pattern a = smallWorld(rows, cols, nnz, 1),
          b = smallWorld(rows, cols, nnz, 1),
          c = smallWorld(rows, cols, nnz, 2);
  expectValidCsr(a, rows, cols, nnz);
  EXPECT_EQ(a.pos, b.pos);
  EXPECT_EQ(a.crd, b.crd);
  EXPECT_NE(a.crd, c.crd);
}

TEST(SmallWorld, LambdaSearchEndsWithTheExpectedEdgeCount) {
  struct Case {
    int64_t rows, cols, nnz;
  };
  for (Case k : {Case{2000, 784, 156800}, Case{20000, 20000, 400000},
                 Case{10, 10, 99}, Case{10, 10, 1}, Case{1, 50, 3}}) {
    const double lambda = sparsec__small_world_lambda(k.rows, k.cols, k.nnz);
    EXPECT_TRUE(std::isfinite(lambda)) << k.rows << "x" << k.cols;
    EXPECT_GE(lambda, 0.0);
    // Expected edges at lambda, brute force where the grid is small enough.
    if (k.rows * k.cols > 2000000)
      continue;
    double sum = 0;
    for (int64_t i = 0; i < k.rows; ++i)
      for (int64_t j = 0; j < k.cols; ++j)
        sum += std::pow(dist(k.rows, k.cols, i, j) + 1, -lambda);
    // Unless even lambda -> infinity keeps more (the d = 0 cells).
    int64_t zeros = 0;
    for (int64_t i = 0; i < k.rows; ++i)
      for (int64_t j = 0; j < k.cols; ++j)
        zeros += dist(k.rows, k.cols, i, j) == 0;
    if (zeros < k.nnz)
      EXPECT_NEAR(sum, double(k.nnz), 1e-6 * double(k.nnz) + 1e-6)
          << k.rows << "x" << k.cols << " nnz " << k.nnz;
  }
}

TEST(SmallWorld, WideLayersSample) {
  // The 784 -> 2000 layer of the SparseLinear demo and a 20000 -> 20000
  // layer at 99.9%: both terminate with exact, valid patterns.
  Pattern a = smallWorld(2000, 784, 156800, 3);
  expectValidCsr(a, 2000, 784, 156800);
  Pattern b = smallWorld(20000, 20000, 400000, 3);
  expectValidCsr(b, 20000, 20000, 400000);
}

TEST(SmallWorld, EdgesFollowTheDistanceLaw) {
  const int64_t rows = 300, cols = 200, nnz = 3000;
  const double lambda = sparsec__small_world_lambda(rows, cols, nnz);
  // The model: P(i, j) over the grid; its median distance (half of the
  // expected edges lie at d <= dMed) and each row's expected degree.
  std::vector<std::pair<double, double>> byDist; // (d, P)
  std::vector<double> rowExpect(rows, 0.0);
  double total = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double d = dist(rows, cols, i, j), pr = std::pow(d + 1, -lambda);
      byDist.push_back({d, pr});
      rowExpect[i] += pr;
      total += pr;
    }
  std::sort(byDist.begin(), byDist.end());
  double acc = 0, dMed = 0;
  for (auto [d, pr] : byDist) {
    acc += pr;
    if (acc >= total / 2) {
      dMed = d;
      break;
    }
  }
  // Several seeds: share of edges within dMed, mean distance, and the
  // degree of each output row against its expectation.
  double within = 0, meanD = 0, degErr = 0, uniformMeanD = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      uniformMeanD += dist(rows, cols, i, j) / double(rows * cols);
  const int seeds = 4;
  for (int s = 0; s < seeds; ++s) {
    Pattern p = smallWorld(rows, cols, nnz, 100 + s);
    for (int64_t i = 0; i < rows; ++i) {
      int32_t deg = p.pos[i + 1] - p.pos[i];
      degErr += std::fabs(deg - rowExpect[i] * nnz / total);
      for (int32_t k = p.pos[i]; k < p.pos[i + 1]; ++k) {
        double d = dist(rows, cols, i, p.crd[k]);
        within += d <= dMed;
        meanD += d;
      }
    }
  }
  within /= double(seeds * nnz);
  meanD /= double(seeds * nnz);
  degErr /= double(seeds * nnz);
  EXPECT_NEAR(within, 0.5, 0.1) << "median distance " << dMed;
  EXPECT_LT(meanD, 0.5 * uniformMeanD);
  // Row degrees: off by a quarter of the edges at most in total (Poisson
  // noise of ~10 edges per row is ~25% of a row's degree).
  EXPECT_LT(degErr, 0.3);
}

TEST(UserPattern, CopiedAndValidated) {
  Desc d = linearDesc(true, makeSgd(0.1), 4);
  // fc.weight is [kOut, kIn] CSR with 4 entries.
  std::vector<int32_t> pos(kOut + 1, 0), crd = {1, 3, 0, 2};
  pos[1] = 2;
  for (int r = 2; r <= kOut; ++r)
    pos[r] = 4;
  d.params[0].pattern = SPARSEC_PATTERN_USER;
  d.params[0].user_positions = pos.data();
  d.params[0].user_coordinates = crd.data();
  d.link();
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 5, &m), SPARSEC_OK) << sparsec_last_error();
  const int32_t *gp = nullptr, *gc = nullptr;
  ASSERT_EQ(sparsec_param_csr(m, "fc.weight", &gp, &gc), SPARSEC_OK);
  EXPECT_EQ(std::vector<int32_t>(gp, gp + kOut + 1), pos);
  EXPECT_EQ(std::vector<int32_t>(gc, gc + 4), crd);
  sparsec_destroy(m);

  // Unsorted, out of range, wrong total, missing arrays, non-CSR layouts.
  auto refused = [&](const char *what, auto edit) {
    Desc bad = linearDesc(true, makeSgd(0.1), 4);
    std::vector<int32_t> p2 = pos, c2 = crd;
    bad.params[0].pattern = SPARSEC_PATTERN_USER;
    bad.params[0].user_positions = p2.data();
    bad.params[0].user_coordinates = c2.data();
    edit(bad, p2, c2);
    bad.link();
    sparsec_model *x = nullptr;
    EXPECT_EQ(sparsec_create(&bad.desc, 5, &x), SPARSEC_ERR_INVALID_ARG)
        << what;
    EXPECT_NE(std::string(sparsec_last_error()).find("pattern"),
              std::string::npos)
        << what << ": " << sparsec_last_error();
    sparsec_destroy(x);
  };
  using V = std::vector<int32_t>;
  refused("unsorted", [](Desc &, V &, V &c) { std::swap(c[0], c[1]); });
  refused("out of range", [](Desc &, V &, V &c) { c[3] = kIn; });
  refused("total", [](Desc &, V &p, V &) { p[kOut] = 3; });
  refused("missing",
          [](Desc &b, V &, V &) { b.params[0].user_coordinates = nullptr; });
  refused("dense", [](Desc &b, V &, V &) {
    b.params[1].pattern = SPARSEC_PATTERN_SMALL_WORLD;
  });
}

} // namespace
