//===- DynamicTest.cpp - SET / RigL dynamic sparsity of CSR weights -------===//
//
// The schedule (cosine-annealed drop fraction, every delta_t steps up to
// t_end), and one update checked against a straightforward reference: the
// k smallest |w| are dropped, k new positions grown outside the old
// pattern (disjoint from the dropped ones), nnz constant, kept weights keep
// value and optimizer state at their (row, col), grown ones start at 0 with
// fresh state; the same seed gives the same pattern; through train_step the
// pattern changes exactly at the update steps.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

using namespace sparsec_test;

namespace {

sparsec_optimizer_desc adam() { return makeOpt(SPARSEC_OPT_ADAM, 0.05); }

Desc setDesc(int64_t nnz = 8, int64_t deltaT = 2, int64_t tEnd = 10,
             double frac = 0.5) {
  Desc d = linearDesc(true, adam(), nnz);
  d.params[0].dynamic = SPARSEC_DYNAMIC_SET;
  d.params[0].delta_t = deltaT;
  d.params[0].t_end = tEnd;
  d.params[0].drop_fraction = frac;
  d.link();
  return d;
}

struct Entry {
  float value, m, v;
};
/// (row, col) -> value and Adam moments.
std::map<std::pair<int, int>, Entry> entries(const sparsec__param &p) {
  std::map<std::pair<int, int>, Entry> e;
  for (int r = 0; r < p.desc.dims[0]; ++r)
    for (int32_t i = p.positions[r]; i < p.positions[r + 1]; ++i)
      e[{r, p.coordinates[i]}] = {p.values[i], p.state[SPARSEC_ST_EXP_AVG][i],
                                  p.state[SPARSEC_ST_EXP_AVG_SQ][i]};
  return e;
}

TEST(Dynamic, CosineSchedule) {
  Desc d = setDesc();
  const sparsec_param_desc &p = d.params[0];
  EXPECT_EQ(sparsec__dynamic_count(&p, 8, 1), 0); // not a multiple of 2
  // t = 2: 0.5 * (1 + cos(0.2 pi)) / 2 = 0.4523 -> floor(3.62) = 3.
  EXPECT_EQ(sparsec__dynamic_count(&p, 8, 2), 3);
  EXPECT_EQ(sparsec__dynamic_count(&p, 8, 6), 1);  // 0.5 * (1 - 0.309) / 2
  EXPECT_EQ(sparsec__dynamic_count(&p, 8, 10), 0); // f(t_end) = 0
  EXPECT_EQ(sparsec__dynamic_count(&p, 8, 12), 0); // after t_end
  EXPECT_EQ(sparsec__dynamic_count(&p, 1000, 4),
            int64_t(std::floor(0.5 * (1 + std::cos(M_PI * 0.4)) / 2 * 1000)));
}

TEST(Dynamic, OneUpdateAgainstReference) {
  Desc d = setDesc();
  sparsec_model *m = nullptr, *twin = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 9, &m), SPARSEC_OK) << sparsec_last_error();
  ASSERT_EQ(sparsec_create(&d.desc, 9, &twin), SPARSEC_OK);
  for (sparsec_model *x : {m, twin}) {
    sparsec__param &p = x->params[0];
    // Distinct magnitudes, mixed signs; recognisable states.
    const float vals[8] = {0.5f,  -0.05f, 0.3f,   0.01f,
                           -0.7f, 0.2f,   -0.02f, 0.9f};
    for (int i = 0; i < 8; ++i) {
      p.values[i] = vals[i];
      p.state[SPARSEC_ST_EXP_AVG][i] = 10.0f + i;
      p.state[SPARSEC_ST_EXP_AVG_SQ][i] = 20.0f + i;
    }
  }
  sparsec__param &p = m->params[0];
  auto before = entries(p);
  sparsec__dynamic_update(m, &p, 2); // k = 3
  sparsec__dynamic_update(twin, &twin->params[0], 2);
  auto after = entries(p);
  ASSERT_EQ(after.size(), 8u);
  EXPECT_EQ(p.positions[p.desc.dims[0]], 8);
  // Reference: drop the 3 smallest |w| (0.01, -0.02, -0.05).
  std::set<std::pair<int, int>> dropped, kept;
  for (auto &[pos, e] : before)
    (std::fabs(e.value) < 0.1f ? dropped : kept).insert(pos);
  ASSERT_EQ(dropped.size(), 3u);
  for (auto &pos : kept) {
    ASSERT_TRUE(after.count(pos));
    EXPECT_EQ(after[pos].value, before[pos].value);
    EXPECT_EQ(after[pos].m, before[pos].m);
    EXPECT_EQ(after[pos].v, before[pos].v);
  }
  int grown = 0;
  for (auto &[pos, e] : after) {
    if (kept.count(pos))
      continue;
    ++grown;
    EXPECT_FALSE(before.count(pos)) << "grown at an old position (dropped?)";
    EXPECT_EQ(e.value, 0.0f);
    EXPECT_EQ(e.m, 0.0f);
    EXPECT_EQ(e.v, 0.0f);
  }
  EXPECT_EQ(grown, 3);
  // CSR order.
  for (int r = 0; r < p.desc.dims[0]; ++r)
    for (int32_t i = p.positions[r] + 1; i < p.positions[r + 1]; ++i)
      EXPECT_LT(p.coordinates[i - 1], p.coordinates[i]);
  // Same seed and step: same draws.
  EXPECT_EQ(entries(twin->params[0]).size(), 8u);
  for (auto &[pos, e] : entries(twin->params[0]))
    EXPECT_TRUE(after.count(pos));
  sparsec_destroy(m);
  sparsec_destroy(twin);
}

TEST(Dynamic, PatternChangesOnlyAtUpdateStepsThroughTrainStep) {
  Desc d = setDesc(8, 3, 9, 0.6);
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 4, &m), SPARSEC_OK);
  std::vector<float> x(2 * kIn), y(2 * kOut);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = float(i % 5) - 2.0f;
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = float(i % 3);
  const void *in[2] = {x.data(), y.data()};
  auto pattern = [&] {
    const sparsec__param &p = m->params[0];
    return std::vector<int32_t>(p.coordinates, p.coordinates + 8);
  };
  for (int step = 1; step <= 12; ++step) {
    auto before = pattern();
    std::vector<int32_t> rowsBefore(m->params[0].positions,
                                    m->params[0].positions + kOut + 1);
    float loss;
    ASSERT_EQ(sparsec_train_step(m, 2, in, &loss), SPARSEC_OK);
    ASSERT_TRUE(std::isfinite(loss));
    bool changed =
        pattern() != before ||
        std::vector<int32_t>(m->params[0].positions,
                             m->params[0].positions + kOut + 1) != rowsBefore;
    bool update = sparsec__dynamic_count(&d.params[0], 8, step) > 0;
    EXPECT_EQ(changed, update) << "step " << step;
    EXPECT_EQ(m->params[0].positions[kOut], 8);
  }
  sparsec_destroy(m);
}

TEST(Dynamic, Validation) {
  auto refused = [](Desc d, const char *what) {
    d.link();
    sparsec_model *m = nullptr;
    EXPECT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_ERR_INVALID_ARG) << what;
    EXPECT_NE(std::string(sparsec_last_error()).find("dynamic"),
              std::string::npos)
        << what << ": " << sparsec_last_error();
  };
  Desc a = setDesc();
  a.params[0].delta_t = 0;
  refused(a, "delta_t 0");
  Desc b = setDesc();
  b.params[0].drop_fraction = 1.0;
  refused(b, "drop_fraction 1");
  Desc c = setDesc();
  c.params[1].dynamic = SPARSEC_DYNAMIC_SET; // the dense bias
  c.params[1].delta_t = c.params[1].t_end = 1;
  c.params[1].drop_fraction = 0.5;
  refused(c, "dense");
}

int noScore(const float *, const float *, int64_t, int64_t, int64_t, float *) {
  return 0;
}

TEST(Dynamic, RiglScoreAndMaxSizeGoTogether) {
  auto refused = [](Desc d, const char *what) {
    d.link();
    sparsec_model *m = nullptr;
    EXPECT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_ERR_INVALID_ARG) << what;
    EXPECT_NE(std::string(sparsec_last_error()).find("max_size"),
              std::string::npos)
        << what << ": " << sparsec_last_error();
  };
  Desc a = setDesc();
  a.params[0].dynamic = SPARSEC_DYNAMIC_RIGL;
  a.params[0].max_size = 16;
  refused(a, "RIGL without a score kernel");
  Desc b = setDesc();
  b.params[0].dynamic = SPARSEC_DYNAMIC_RIGL;
  b.params[0].score = noScore;
  refused(b, "RIGL with max_size 0");
  Desc c = setDesc();
  c.params[0].score = noScore;
  refused(c, "SET with a score kernel");
  Desc d = setDesc();
  d.params[0].dynamic = SPARSEC_DYNAMIC_RIGL;
  d.params[0].score = noScore;
  d.params[0].max_size = 16;
  d.link();
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_OK) << sparsec_last_error();
  sparsec_destroy(m);
}

} // namespace
