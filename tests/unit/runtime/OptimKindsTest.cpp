//===- OptimKindsTest.cpp - Every optimizer against the f64 reference -----===//
//
// Every optimizer kind and option set, on a dense matrix, a dense vector
// (one row for row-wise Adagrad), CSR values and an embedding table in
// each sparse mode (lazy, catch-up, dense), with and without gradient
// clipping, through train_step with gradients the test chooses (the Feed
// model), against the f64 reference of OptimRef.h: parameters after every
// step, optimizer state at the end, untouched lazy rows bit-identical, and
// catch-up rows brought up to date by sparsec_catch_up. PyTorch parity of
// the same runtime is checked by optim_torch_oracle.py.
//
//===----------------------------------------------------------------------===//
#include "OptimHarness.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

using namespace sparsec_test;

namespace {

class Kinds
    : public ::testing::TestWithParam<std::tuple<int, sparsec_sparse_mode>> {
protected:
  sparsec_optimizer_desc desc() const {
    auto [i, mode] = GetParam();
    sparsec_optimizer_desc d = configs()[i].d;
    d.sparse_mode = mode;
    return d;
  }
  void runAll(const sparsec_optimizer_desc &d) { runHarness(d); }
};

TEST_P(Kinds, MatchesReference) { runAll(desc()); }

TEST_P(Kinds, MatchesReferenceWithClipping) {
  sparsec_optimizer_desc d = desc();
  d.max_grad_norm = 2.0; // the gradients' norm is about 6: always active
  runAll(d);
}

std::string kindName(
    const ::testing::TestParamInfo<std::tuple<int, sparsec_sparse_mode>> &i) {
  static const char *modes[] = {"Lazy", "Catchup", "Dense"};
  return std::string(configs()[std::get<0>(i.param)].name) +
         modes[std::get<1>(i.param)];
}

INSTANTIATE_TEST_SUITE_P(
    All, Kinds,
    ::testing::Combine(::testing::Range(0, (int)configs().size()),
                       ::testing::Values(SPARSEC_SPARSE_LAZY,
                                         SPARSEC_SPARSE_CATCHUP,
                                         SPARSEC_SPARSE_DENSE)),
    kindName);

TEST(Clipping, InactiveBelowTheThresholdAndGradsReportedScaled) {
  sparsec_optimizer_desc d = makeSgd(0.1);
  d.max_grad_norm = 1e6;
  Harness big(d);
  big.step({0, 1, 1, 2});
  big.expectParams("no clipping");
  d.max_grad_norm = 0.5;
  Harness h(d);
  h.step({3, 3, 1, 2}); // ids not sorted: the coalesced copy is separate
  h.expectParams("clipped");
  // The reported gradients are the clipped ones: their norm (coalesced) is
  // max_norm.
  const float *g;
  int64_t n;
  double ss = 0;
  for (const char *name : {"w", "b", "s"}) {
    ASSERT_EQ(sparsec_param_grad(h.m, name, &g, &n), SPARSEC_OK);
    for (int64_t i = 0; i < n; ++i)
      ss += double(g[i]) * g[i];
  }
  ASSERT_EQ(sparsec_param_grad(h.m, "e", &g, &n), SPARSEC_OK);
  ASSERT_EQ(n, 4 * kFeedDim);
  std::vector<float> rows(g, g + n);
  for (auto &[id, row] : refCoalesce({3, 3, 1, 2}, rows, kFeedDim))
    for (double x : row)
      ss += x * x;
  EXPECT_NEAR(std::sqrt(ss), 0.5, 1e-5);
  // Already strictly ascending ids: the coalesced gradient is the raw one,
  // scaled once.
  Harness a(d);
  a.step({0, 1, 2, 5});
  a.expectParams("ascending ids");
}

TEST(Schedule, CurrentLrFollowsEverySchedule) {
  struct Case {
    int32_t schedule;
    int64_t stepSize, tMax, warmup;
    double gamma, etaMin;
  } cases[] = {{SPARSEC_SCHED_CONSTANT, 0, 0, 0, 0, 0},
               {SPARSEC_SCHED_STEP, 3, 0, 0, 0.5, 0},
               {SPARSEC_SCHED_COSINE, 0, 4, 0, 0, 0.001},
               {SPARSEC_SCHED_CONSTANT, 0, 0, 4, 0, 0},
               {SPARSEC_SCHED_STEP, 2, 0, 3, 0.1, 0},
               {SPARSEC_SCHED_COSINE, 0, 5, 2, 0, 0.01}};
  for (const Case &c : cases) {
    sparsec_optimizer_desc d = makeSgd(0.2, 0.9);
    d.schedule = c.schedule;
    d.step_size = c.stepSize;
    d.gamma = c.gamma;
    d.t_max = c.tMax;
    d.eta_min = c.etaMin;
    d.warmup_steps = c.warmup;
    Harness h(d);
    for (int s = 0; s < 14; ++s) {
      double lr = -1, base = -1;
      ASSERT_EQ(sparsec_current_lr(h.m, &lr), SPARSEC_OK);
      ASSERT_EQ(sparsec_get_lr(h.m, &base), SPARSEC_OK);
      EXPECT_EQ(base, 0.2); // get_lr is the base rate
      EXPECT_NEAR(lr, refLr(d, 0.2, s), 1e-15) << "step " << s;
      h.step(batches()[s]);
      h.expectParams("step " + std::to_string(s));
    }
    // set_lr changes the base rate; the schedule scales the new one.
    ASSERT_EQ(sparsec_set_lr(h.m, 0.4), SPARSEC_OK);
    double lr = 0;
    ASSERT_EQ(sparsec_current_lr(h.m, &lr), SPARSEC_OK);
    EXPECT_NEAR(lr, refLr(d, 0.4, 14), 1e-15);
  }
  EXPECT_EQ(sparsec_current_lr(nullptr, nullptr), SPARSEC_ERR_NULL);
}

TEST(Schedule, HandComputedValues) {
  sparsec_optimizer_desc d = makeSgd(1.0);
  d.warmup_steps = 4;
  d.schedule = SPARSEC_SCHED_COSINE;
  d.t_max = 2;
  d.eta_min = 0.5;
  // Warm-up 0.25, 0.5, 0.75, 1; then cosine from 1 to 0.5 over 2 steps and
  // back (PyTorch's CosineAnnealingLR is periodic).
  const double want[] = {0.25, 0.5, 0.75, 1.0, 1.0, 0.75, 0.5, 0.75, 1.0};
  for (int e = 0; e < 9; ++e)
    EXPECT_NEAR(sparsec__scheduled_lr(&d, 1.0, e), want[e], 1e-12) << e;
  d.warmup_steps = 0;
  d.schedule = SPARSEC_SCHED_STEP;
  d.step_size = 2;
  d.gamma = 0.1;
  const double step[] = {1.0, 1.0, 0.1, 0.1, 0.01};
  for (int e = 0; e < 5; ++e)
    EXPECT_NEAR(sparsec__scheduled_lr(&d, 1.0, e), step[e], 1e-15) << e;
}

/// Rows a lazy Adam step touched but whose coalesced gradient is zero still
/// move (SparseAdam semantics: the row is in the gradient's index set).
TEST(LazyRows, ZeroGradientRowsInTheBatchStillStep) {
  Harness h(makeOpt(SPARSEC_OPT_ADAM, 0.01));
  h.step({0, 1}); // moments of rows 0 and 1 become non-zero
  const std::vector<float> before = values(h.m, "e");
  Feed &f = feed();
  f.e.assign(2 * kFeedDim, 0.0f);
  const std::vector<int64_t> ids = {0, 0};
  const void *in[1] = {ids.data()};
  float loss;
  ASSERT_EQ(sparsec_train_step(h.m, 1, in, &loss), SPARSEC_OK);
  const std::vector<float> after = values(h.m, "e");
  EXPECT_NE(after[0], before[0]);               // row 0 coasts
  EXPECT_EQ(after[kFeedDim], before[kFeedDim]); // row 1 does not
}

} // namespace
