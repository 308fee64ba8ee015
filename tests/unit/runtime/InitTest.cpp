//===- InitTest.cpp - RNG, initialisers and CSR pattern sampling ----------===//
//
// Determinism of the seeded streams, bounds and moments of the value
// initialisers, and the exact-nnz uniform CSR pattern sampler (including a
// 20000 x 20000 pattern with 400000 entries).
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

using namespace sparsec_test;

namespace {

std::vector<uint64_t> draws(uint64_t seed, uint64_t stream, int n) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, seed, stream);
  std::vector<uint64_t> out(n);
  for (auto &v : out)
    v = sparsec__rng_next(&rng);
  return out;
}

TEST(Rng, SameSeedSameStream) {
  EXPECT_EQ(draws(42, 7, 100), draws(42, 7, 100));
}

TEST(Rng, SeedsAndStreamsDiffer) {
  auto a = draws(42, 7, 100);
  EXPECT_NE(a, draws(43, 7, 100));
  EXPECT_NE(a, draws(42, 8, 100));
  EXPECT_NE(draws(0, 0, 100), draws(0, 1, 100));
  // No overlap in the first draws of neighbouring seeds.
  auto b = draws(43, 7, 100);
  std::set<uint64_t> sa(a.begin(), a.end());
  for (uint64_t v : b)
    EXPECT_EQ(sa.count(v), 0u);
}

TEST(Rng, SplitMixKnownValues) {
  // Reference outputs of splitmix64 seeded with 0 (Vigna's reference code).
  uint64_t s = 0;
  EXPECT_EQ(sparsec__splitmix64(&s), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(sparsec__splitmix64(&s), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(sparsec__splitmix64(&s), 0x06C45D188009454Full);
}

TEST(Rng, XoshiroKnownValues) {
  // xoshiro256** reference: state {1, 2, 3, 4} gives 11520, 0, 1509978240.
  sparsec__rng rng = {{1, 2, 3, 4}};
  EXPECT_EQ(sparsec__rng_next(&rng), 11520u);
  EXPECT_EQ(sparsec__rng_next(&rng), 0u);
  EXPECT_EQ(sparsec__rng_next(&rng), 1509978240u);
}

TEST(Rng, UniformAndBelowRanges) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 1, 2);
  std::vector<int> hist(7, 0);
  double sum = 0;
  for (int i = 0; i < 70000; ++i) {
    double u = sparsec__rng_uniform(&rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    uint64_t k = sparsec__rng_below(&rng, 7);
    ASSERT_LT(k, 7u);
    ++hist[k];
  }
  EXPECT_NEAR(sum / 70000, 0.5, 0.01);
  for (int c : hist)
    EXPECT_NEAR(c, 10000, 500);
  // Huge ranges stay in range too.
  for (int i = 0; i < 1000; ++i)
    ASSERT_LT(sparsec__rng_below(&rng, (1ull << 62) + 3), (1ull << 62) + 3);
  EXPECT_EQ(sparsec__rng_below(&rng, 1), 0u);
}

TEST(Init, FanInUniformBoundsAndSpread) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 3, 4);
  std::vector<float> v(100000);
  const double fanIn = 784;
  sparsec__init_values(&rng, SPARSEC_INIT_FAN_IN_UNIFORM, fanIn, v.data(),
                       (int64_t)v.size());
  const float bound = static_cast<float>(1.0 / std::sqrt(fanIn));
  float lo = *std::min_element(v.begin(), v.end()),
        hi = *std::max_element(v.begin(), v.end());
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.99f * bound);
  EXPECT_GT(hi, 0.99f * bound);
  double mean = 0, var = 0;
  for (float x : v)
    mean += x;
  mean /= v.size();
  for (float x : v)
    var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 0.0, 0.01 * bound);
  EXPECT_NEAR(var, bound * bound / 3.0, 0.02 * bound * bound);
}

TEST(Init, UniformNormalZeros) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 5, 6);
  std::vector<float> v(100001);
  sparsec__init_values(&rng, SPARSEC_INIT_UNIFORM, 0.25, v.data(),
                       (int64_t)v.size());
  for (float x : v)
    ASSERT_LE(std::fabs(x), 0.25f);
  sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 2.0, v.data(),
                       (int64_t)v.size());
  double mean = 0, var = 0;
  for (float x : v)
    mean += x;
  mean /= v.size();
  for (float x : v)
    var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.03);
  EXPECT_TRUE(std::isfinite(v.back())); // odd count: the last value is set
  sparsec__init_values(&rng, SPARSEC_INIT_ZEROS, 0, v.data(),
                       (int64_t)v.size());
  for (float x : v)
    ASSERT_EQ(x, 0.0f);
}

TEST(Sort, RadixMatchesStdSort) {
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 9, 9);
  for (uint64_t range : {10ull, 1000ull, 1ull << 40, ~0ull}) {
    std::vector<uint64_t> keys(5000), tmp(5000);
    for (auto &k : keys)
      k = range == ~0ull ? sparsec__rng_next(&rng)
                         : sparsec__rng_below(&rng, range);
    auto want = keys;
    std::sort(want.begin(), want.end());
    sparsec__radix_sort_u64(keys.data(), tmp.data(), (int64_t)keys.size());
    EXPECT_EQ(keys, want) << "range " << range;
  }
}

/// Checks a CSR pattern: exact nnz, monotone positions, columns in range
/// and strictly ascending per row (so no duplicates).
void checkPattern(const std::vector<int32_t> &pos,
                  const std::vector<int32_t> &crd, int64_t rows, int64_t cols,
                  int64_t nnz) {
  ASSERT_EQ((int64_t)pos.size(), rows + 1);
  ASSERT_EQ(pos[0], 0);
  ASSERT_EQ(pos[rows], nnz);
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_LE(pos[r], pos[r + 1]) << "row " << r;
    for (int32_t k = pos[r]; k < pos[r + 1]; ++k) {
      ASSERT_GE(crd[k], 0);
      ASSERT_LT(crd[k], cols);
      if (k > pos[r])
        ASSERT_LT(crd[k - 1], crd[k]) << "row " << r;
    }
  }
}

struct Shape {
  int64_t rows, cols, nnz;
};

class CsrSample : public ::testing::TestWithParam<Shape> {};

TEST_P(CsrSample, ExactDistinctSorted) {
  Shape s = GetParam();
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 11, (uint64_t)s.nnz);
  std::vector<int32_t> pos(s.rows + 1), crd(std::max<int64_t>(s.nnz, 1));
  ASSERT_EQ(
      sparsec__csr_sample(&rng, s.rows, s.cols, s.nnz, pos.data(), crd.data()),
      0);
  crd.resize(s.nnz);
  checkPattern(pos, crd, s.rows, s.cols, s.nnz);
  // Same stream, same pattern.
  sparsec__rng_seed(&rng, 11, (uint64_t)s.nnz);
  std::vector<int32_t> pos2(s.rows + 1), crd2(std::max<int64_t>(s.nnz, 1));
  ASSERT_EQ(sparsec__csr_sample(&rng, s.rows, s.cols, s.nnz, pos2.data(),
                                crd2.data()),
            0);
  crd2.resize(s.nnz);
  EXPECT_EQ(pos, pos2);
  EXPECT_EQ(crd, crd2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CsrSample,
    ::testing::Values(Shape{1, 1, 1}, Shape{1, 1, 0}, Shape{7, 5, 0},
                      Shape{7, 5, 1}, Shape{7, 5, 17}, Shape{7, 5, 18},
                      Shape{7, 5, 34}, Shape{7, 5, 35}, Shape{1, 1000, 999},
                      Shape{1000, 1, 3}, Shape{64, 784, 5000},
                      Shape{300, 200, 59000}, Shape{20000, 20000, 400000}));

TEST(CsrSampleStats, EveryPositionEquallyLikely) {
  // 10 x 10 with 30 entries, 4000 seeds: each position is picked with
  // probability 0.3; allow 5 standard deviations.
  const int trials = 4000;
  std::vector<int> hits(100, 0);
  std::vector<int32_t> pos(11), crd(30);
  for (int t = 0; t < trials; ++t) {
    sparsec__rng rng;
    sparsec__rng_seed(&rng, (uint64_t)t, 1);
    ASSERT_EQ(sparsec__csr_sample(&rng, 10, 10, 30, pos.data(), crd.data()), 0);
    for (int r = 0; r < 10; ++r)
      for (int k = pos[r]; k < pos[r + 1]; ++k)
        ++hits[r * 10 + crd[k]];
  }
  const double mean = 0.3 * trials, sd = std::sqrt(trials * 0.3 * 0.7);
  for (int i = 0; i < 100; ++i)
    EXPECT_NEAR(hits[i], mean, 5 * sd) << "position " << i;
  // The dense (complement) path too: 10 x 10 with 80 entries.
  std::fill(hits.begin(), hits.end(), 0);
  crd.resize(80);
  for (int t = 0; t < trials; ++t) {
    sparsec__rng rng;
    sparsec__rng_seed(&rng, (uint64_t)t, 2);
    ASSERT_EQ(sparsec__csr_sample(&rng, 10, 10, 80, pos.data(), crd.data()), 0);
    for (int r = 0; r < 10; ++r)
      for (int k = pos[r]; k < pos[r + 1]; ++k)
        ++hits[r * 10 + crd[k]];
  }
  const double mean2 = 0.8 * trials, sd2 = std::sqrt(trials * 0.8 * 0.2);
  for (int i = 0; i < 100; ++i)
    EXPECT_NEAR(hits[i], mean2, 5 * sd2) << "position " << i;
}

TEST(CreateInit, SameSeedBitIdenticalDifferentSeedsDiffer) {
  Desc d = linearDesc(true, makeSgd(0.1), 10);
  d.params.push_back(makeParam("big", SPARSEC_LAYOUT_CSR, {20000, 20000},
                               400000, SPARSEC_INIT_FAN_IN_UNIFORM, 20.0));
  d.link();
  sparsec_model *a = nullptr, *b = nullptr, *c = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 1234, &a), SPARSEC_OK)
      << sparsec_last_error();
  ASSERT_EQ(sparsec_create(&d.desc, 1234, &b), SPARSEC_OK);
  ASSERT_EQ(sparsec_create(&d.desc, 1235, &c), SPARSEC_OK);
  EXPECT_EQ(hashModel(a), hashModel(b));
  EXPECT_NE(hashModel(a), hashModel(c));
  EXPECT_EQ(values(a, "fc.bias"), values(b, "fc.bias"));
  EXPECT_NE(values(a, "fc.bias"), values(c, "fc.bias"));
  // Parameters draw from distinct streams: weight and bias differ.
  EXPECT_NE(values(a, "fc.weight")[0], values(a, "fc.bias")[0]);

  const int32_t *pos, *crd;
  ASSERT_EQ(sparsec_param_csr(a, "big", &pos, &crd), SPARSEC_OK);
  checkPattern(std::vector<int32_t>(pos, pos + 20001),
               std::vector<int32_t>(crd, crd + 400000), 20000, 20000, 400000);
  auto big = values(a, "big");
  ASSERT_EQ(big.size(), 400000u);
  const float bound = static_cast<float>(1.0 / std::sqrt(20.0));
  for (float v : big)
    ASSERT_LE(std::fabs(v), bound);
  sparsec_param_info info;
  int32_t idx = -1;
  ASSERT_EQ(sparsec_param_index(a, "big", &idx), SPARSEC_OK);
  ASSERT_EQ(sparsec_param_info_at(a, idx, &info), SPARSEC_OK);
  EXPECT_EQ(info.nnz, 400000);
  EXPECT_DOUBLE_EQ(info.sparsity, 1.0 - 400000.0 / (20000.0 * 20000.0));
  sparsec_destroy(a);
  sparsec_destroy(b);
  sparsec_destroy(c);
}

TEST(CreateInit, AddingAParameterKeepsTheOthers) {
  Desc d1 = linearDesc(false);
  Desc d2 = linearDesc(false);
  d2.params.insert(d2.params.begin(),
                   makeParam("extra", SPARSEC_LAYOUT_DENSE, {5}, 5,
                             SPARSEC_INIT_UNIFORM, 1.0));
  d2.link();
  sparsec_model *a = nullptr, *b = nullptr;
  ASSERT_EQ(sparsec_create(&d1.desc, 99, &a), SPARSEC_OK);
  ASSERT_EQ(sparsec_create(&d2.desc, 99, &b), SPARSEC_OK);
  EXPECT_EQ(values(a, "fc.weight"), values(b, "fc.weight"));
  EXPECT_EQ(values(a, "fc.bias"), values(b, "fc.bias"));
  sparsec_destroy(a);
  sparsec_destroy(b);
}

} // namespace
