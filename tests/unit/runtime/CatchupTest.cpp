//===- CatchupTest.cpp - Catch-up embedding rows -------------------------===//
//
// SPARSE_CATCHUP semantics beyond the reference comparison of
// OptimKindsTest: equality with SPARSE_DENSE where the closed form is exact
// (through a model whose forward reads the caught-up rows), bit-equality
// with SPARSE_DENSE when every row is touched every step, rows left
// untouched for a thousand steps, the closed-form helpers, and the undo of
// a catch-up when the step then fails.
//
//===----------------------------------------------------------------------===//
#include "OptimRef.h"

#include <gtest/gtest.h>

using namespace sparsec_test;

namespace {

sparsec_optimizer_desc inMode(sparsec_optimizer_desc d,
                              sparsec_sparse_mode mode) {
  d.sparse_mode = mode;
  return d;
}

/// Optimizers whose catch-up is exact (docs/optimizers.md): every SGD,
/// and the others without weight decay (Adagrad's state does not decay;
/// RMSprop's decays geometrically).
std::vector<sparsec_optimizer_desc> exactOptimizers() {
  std::vector<sparsec_optimizer_desc> out = {
      makeSgd(0.05, 0.9, 0.0, 0.02, true),
      makeSgd(0.05, 0.9, 0.3, 0.02),
      makeSgd(0.05, 0.0, 0.0, 0.02),
      makeSgd(0.05, 0.8),
      makeOpt(SPARSEC_OPT_ADAGRAD, 0.1),
      makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1),
      makeOpt(SPARSEC_OPT_RMSPROP, 0.01)};
  sparsec_optimizer_desc r = makeOpt(SPARSEC_OPT_RMSPROP, 0.01);
  r.centered = 1;
  r.momentum = 0.9;
  out.push_back(r);
  sparsec_optimizer_desc s = makeSgd(0.05, 0.9, 0.0, 0.02);
  s.schedule = SPARSEC_SCHED_STEP; // lr constant across each gap below
  s.step_size = 100;
  s.gamma = 0.5;
  out.push_back(s);
  return out;
}

TEST(Catchup, EqualsDenseWhereExactThroughTheForward) {
  // The embedding regression model: the gradient of a batch depends on the
  // rows it reads, so catch-up must happen before the kernel.
  const std::vector<std::vector<int64_t>> batches = {
      {0, 1, 2, 2}, {5, 5}, {0, 9, 9, 1}, {3, 3}, {1, 4, 4, 6}, {9, 0}, {2, 2}};
  for (const sparsec_optimizer_desc &opt : exactOptimizers()) {
    Desc dd = embedDesc(SPARSEC_I64, inMode(opt, SPARSEC_SPARSE_DENSE));
    Desc dc = embedDesc(SPARSEC_I64, inMode(opt, SPARSEC_SPARSE_CATCHUP));
    sparsec_model *dense = nullptr, *catchup = nullptr;
    ASSERT_EQ(sparsec_create(&dd.desc, 5, &dense), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&dc.desc, 5, &catchup), SPARSEC_OK);
    for (int rep = 0; rep < 3; ++rep)
      for (const auto &ids : batches) {
        const int64_t batch = (int64_t)ids.size() / kBag;
        std::vector<float> y(batch, 0.5f);
        const void *in[2] = {ids.data(), y.data()};
        float l1 = 0, l2 = 0;
        ASSERT_EQ(sparsec_train_step(dense, batch, in, &l1), SPARSEC_OK);
        ASSERT_EQ(sparsec_train_step(catchup, batch, in, &l2), SPARSEC_OK);
        EXPECT_NEAR(l2, l1, 1e-5 * (1 + std::fabs(l1)))
            << "kind " << opt.kind << ": the forward read stale rows";
      }
    ASSERT_EQ(sparsec_catch_up(catchup), SPARSEC_OK);
    std::vector<float> a = values(dense, "emb.weight"),
                       b = values(catchup, "emb.weight");
    std::vector<double> want(a.begin(), a.end());
    EXPECT_LE(relErr(b.data(), want), 1e-5) << "kind " << opt.kind;
    sparsec_destroy(dense);
    sparsec_destroy(catchup);
  }
}

TEST(Catchup, BitIdenticalToDenseWhenEveryRowIsTouched) {
  for (int kind = SPARSEC_OPT_SGD; kind <= SPARSEC_OPT_ADAMW; ++kind) {
    for (int variant = 0; variant < 2; ++variant) {
      sparsec_optimizer_desc opt =
          kind == SPARSEC_OPT_SGD ? makeSgd(0.1, 0.9, 0.1 * variant, 0.05)
                                  : makeOpt((sparsec_optimizer_kind)kind, 0.01);
      opt.weight_decay = kind == SPARSEC_OPT_SGD ? opt.weight_decay : 0.05;
      opt.amsgrad = opt.centered = variant;
      opt.momentum = kind == SPARSEC_OPT_RMSPROP ? 0.5 * variant : opt.momentum;
      opt.max_grad_norm = variant ? 1.0 : 0.0;
      Desc dd = feedDesc(inMode(opt, SPARSEC_SPARSE_DENSE));
      Desc dc = feedDesc(inMode(opt, SPARSEC_SPARSE_CATCHUP));
      sparsec_model *dense = nullptr, *catchup = nullptr;
      ASSERT_EQ(sparsec_create(&dd.desc, 8, &dense), SPARSEC_OK);
      ASSERT_EQ(sparsec_create(&dc.desc, 8, &catchup), SPARSEC_OK);
      sparsec__rng rng;
      sparsec__rng_seed(&rng, 1, 1);
      for (int step = 0; step < 6; ++step) {
        // Every row, shuffled by the step, plus duplicates.
        std::vector<int64_t> ids;
        for (int r = 0; r < kFeedRows; ++r)
          ids.push_back((r * 3 + step) % kFeedRows);
        ids.push_back(step % kFeedRows);
        ids.push_back(2);
        Feed &f = feed();
        for (auto *v : {&f.w, &f.b, &f.s, &f.e}) {
          size_t n = v == &f.w   ? 15
                     : v == &f.b ? 4
                     : v == &f.s ? kFeedNnz
                                 : ids.size() * kFeedDim;
          v->resize(n);
          sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, v->data(),
                               (int64_t)n);
        }
        const void *in[1] = {ids.data()};
        float loss;
        ASSERT_EQ(sparsec_train_step(dense, (int64_t)ids.size() / 2, in, &loss),
                  SPARSEC_OK);
        ASSERT_EQ(
            sparsec_train_step(catchup, (int64_t)ids.size() / 2, in, &loss),
            SPARSEC_OK);
        for (const char *name : {"w", "b", "s", "e"})
          ASSERT_EQ(values(dense, name), values(catchup, name))
              << "kind " << kind << " variant " << variant << " step " << step
              << " " << name;
      }
      sparsec_destroy(dense);
      sparsec_destroy(catchup);
    }
  }
}

TEST(Catchup, RowsUntouchedForAThousandSteps) {
  // Row 7 is read at the first step and then only after 1000 steps.
  for (const sparsec_optimizer_desc &opt :
       {makeSgd(0.01, 0.9, 0.0, 0.01, true), makeOpt(SPARSEC_OPT_ADAMW, 0.001),
        makeOpt(SPARSEC_OPT_RMSPROP, 0.001)}) {
    Desc dd = feedDesc(inMode(opt, SPARSEC_SPARSE_DENSE));
    Desc dc = feedDesc(inMode(opt, SPARSEC_SPARSE_CATCHUP));
    sparsec_model *dense = nullptr, *catchup = nullptr;
    ASSERT_EQ(sparsec_create(&dd.desc, 2, &dense), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&dc.desc, 2, &catchup), SPARSEC_OK);
    RefOpt ref{inMode(opt, SPARSEC_SPARSE_CATCHUP)};
    std::vector<std::pair<int64_t, int64_t>> rows;
    for (int r = 0; r < kFeedRows; ++r)
      rows.push_back({kFeedDim * r, kFeedDim * r + kFeedDim});
    RefTensor e(ref.d, values(catchup, "e"), rows);
    Feed &f = feed();
    f.w.assign(15, 0.01f);
    f.b.assign(4, -0.02f);
    f.s.assign(kFeedNnz, 0.03f);
    for (int step = 0; step < 1002; ++step) {
      std::vector<int64_t> ids = {step % 7, (step + 3) % 7};
      if (step == 0 || step == 1001)
        ids = {7, 7};
      f.e.assign(ids.size() * kFeedDim, 0.0f);
      for (size_t i = 0; i < f.e.size(); ++i)
        f.e[i] = 0.1f * (float)((i + step) % 5) - 0.2f;
      const void *in[1] = {ids.data()};
      float loss;
      ASSERT_EQ(sparsec_train_step(dense, 1, in, &loss), SPARSEC_OK);
      ASSERT_EQ(sparsec_train_step(catchup, 1, in, &loss), SPARSEC_OK);
      // The reference for the catch-up model's row 7.
      if (ids[0] == 7) {
        auto g = refCoalesce(ids, f.e, kFeedDim);
        ref.catchupRow(e, 7, step, opt.lr);
        ref.stepRow(e, 7, g[7].data(), e.rowInit[7] != 0, false, step + 1,
                    opt.lr);
        e.rowInit[7] = 1;
        e.last[7] = step + 1;
      }
    }
    std::vector<float> c = values(catchup, "e");
    std::vector<double> want7(e.p.begin() + 7 * kFeedDim, e.p.end());
    EXPECT_LE(relErr(c.data() + 7 * kFeedDim, want7), 1e-5)
        << "kind " << opt.kind;
    if (opt.kind != SPARSEC_OPT_ADAMW) { // exact: equals the dense model
      ASSERT_EQ(sparsec_catch_up(catchup), SPARSEC_OK);
      std::vector<float> d = values(dense, "e");
      c = values(catchup, "e");
      EXPECT_LE(relErr(c.data(), std::vector<double>(d.begin(), d.end())), 1e-5)
          << "kind " << opt.kind;
    }
    sparsec_destroy(dense);
    sparsec_destroy(catchup);
  }
}

TEST(Catchup, MatrixPowerAndGeometricSeries) {
  double out[4];
  const double a[4] = {1.0, -0.5, 0.0, 0.9}; // p' = p - 0.5 b, b' = 0.9 b
  sparsec__mat2_pow(a, 0, out);
  EXPECT_EQ(out[0], 1.0);
  EXPECT_EQ(out[1], 0.0);
  EXPECT_EQ(out[2], 0.0);
  EXPECT_EQ(out[3], 1.0);
  for (int64_t k : {1, 2, 7, 64, 1000}) {
    sparsec__mat2_pow(a, k, out);
    // p_k = p - 0.5 * (1 - 0.9^k) / (1 - 0.9) b... from b_0 = b: sum_{j<k}
    // 0.9^j.
    const double series = (1 - std::pow(0.9, double(k))) / 0.1;
    EXPECT_NEAR(out[1], -0.5 * series, 1e-12 * series) << k;
    EXPECT_NEAR(out[3], std::pow(0.9, double(k)), 1e-15) << k;
  }
  const double b[4] = {0.5, 0.25, 1.0, 2.0};
  double two[4], ten[4];
  sparsec__mat2_pow(b, 2, two);
  EXPECT_DOUBLE_EQ(two[0], 0.5 * 0.5 + 0.25 * 1.0);
  EXPECT_DOUBLE_EQ(two[1], 0.5 * 0.25 + 0.25 * 2.0);
  EXPECT_DOUBLE_EQ(two[2], 1.0 * 0.5 + 2.0 * 1.0);
  EXPECT_DOUBLE_EQ(two[3], 1.0 * 0.25 + 2.0 * 2.0);
  sparsec__mat2_pow(b, 10, ten);
  double it[4] = {1, 0, 0, 1};
  for (int i = 0; i < 10; ++i) {
    double t[4] = {it[0] * b[0] + it[1] * b[2], it[0] * b[1] + it[1] * b[3],
                   it[2] * b[0] + it[3] * b[2], it[2] * b[1] + it[3] * b[3]};
    std::copy(t, t + 4, it);
  }
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(ten[i], it[i], 1e-9 * std::fabs(it[i]));
}

TEST(Catchup, FailedStepsUndoTheCatchUp) {
  for (const sparsec_optimizer_desc &opt :
       {makeSgd(0.1, 0.9, 0.0, 0.05), makeOpt(SPARSEC_OPT_ADAM, 0.01),
        makeOpt(SPARSEC_OPT_RMSPROP, 0.01),
        makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1)}) {
    Desc d = feedDesc(inMode(opt, SPARSEC_SPARSE_CATCHUP));
    sparsec_model *m = nullptr, *twin = nullptr;
    ASSERT_EQ(sparsec_create(&d.desc, 4, &m), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&d.desc, 4, &twin), SPARSEC_OK);
    Feed &f = feed();
    f.w.assign(15, 0.5f);
    f.b.assign(4, 0.5f);
    f.s.assign(kFeedNnz, 0.5f);
    auto step = [&](sparsec_model *x, std::vector<int64_t> ids) {
      f.e.assign(ids.size() * kFeedDim, 0.25f);
      const void *in[1] = {ids.data()};
      float loss;
      return sparsec_train_step(x, (int64_t)ids.size() / 2, in, &loss);
    };
    for (auto *x : {m, twin}) {
      ASSERT_EQ(step(x, {0, 1, 2, 3}), SPARSEC_OK);
      ASSERT_EQ(step(x, {4, 4}), SPARSEC_OK);
      ASSERT_EQ(step(x, {5, 6}), SPARSEC_OK);
    }
    const uint64_t before = hashModel(m);
    kernelMode() =
        KernelMode::NanLoss; // rows 0..3 are stale: caught up, then undone
    EXPECT_EQ(step(m, {0, 1, 2, 3, 3, 7}), SPARSEC_ERR_NONFINITE);
    EXPECT_EQ(hashModel(m), before);
    kernelMode() = KernelMode::Fail;
    EXPECT_EQ(step(m, {2, 1, 0, 0}), SPARSEC_ERR_KERNEL);
    EXPECT_EQ(hashModel(m), before);
    kernelMode() = KernelMode::Normal;
    // Training goes on exactly as if the failed steps never happened.
    ASSERT_EQ(step(m, {0, 1, 3, 7}), SPARSEC_OK);
    ASSERT_EQ(step(twin, {0, 1, 3, 7}), SPARSEC_OK);
    EXPECT_EQ(hashModel(m), hashModel(twin));
    sparsec_destroy(m);
    sparsec_destroy(twin);
  }
  EXPECT_EQ(sparsec_catch_up(nullptr), SPARSEC_ERR_NULL);
}

TEST(Catchup, OtherModesIgnoreCatchUpCalls) {
  for (sparsec_sparse_mode mode : {SPARSEC_SPARSE_LAZY, SPARSEC_SPARSE_DENSE}) {
    Desc d = feedDesc(inMode(makeOpt(SPARSEC_OPT_ADAM, 0.01), mode));
    sparsec_model *m = nullptr;
    ASSERT_EQ(sparsec_create(&d.desc, 4, &m), SPARSEC_OK);
    Feed &f = feed();
    f.w.assign(15, 0.5f);
    f.b.assign(4, 0.5f);
    f.s.assign(kFeedNnz, 0.5f);
    f.e.assign(2 * kFeedDim, 0.25f);
    std::vector<int64_t> ids = {1, 2};
    const void *in[1] = {ids.data()};
    float loss;
    ASSERT_EQ(sparsec_train_step(m, 1, in, &loss), SPARSEC_OK);
    const uint64_t h = hashModel(m);
    ASSERT_EQ(sparsec_catch_up(m), SPARSEC_OK);
    EXPECT_EQ(hashModel(m), h);
    sparsec_destroy(m);
  }
}

} // namespace
