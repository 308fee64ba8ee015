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
#include "OptimRef.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

using namespace sparsec_test;

namespace {

constexpr double kTol = 1e-5;

struct Config {
  const char *name;
  sparsec_optimizer_desc d;
};

sparsec_optimizer_desc with(sparsec_optimizer_desc d,
                            void (*edit)(sparsec_optimizer_desc &)) {
  edit(d);
  return d;
}

std::vector<Config> configs() {
  using D = sparsec_optimizer_desc;
  return {
      {"SgdPlain", makeSgd(0.1)},
      {"SgdMomentum", makeSgd(0.1, 0.9)},
      {"SgdDampWd", makeSgd(0.1, 0.9, 0.3, 0.05)},
      {"SgdNesterovWd", makeSgd(0.1, 0.9, 0.0, 0.05, true)},
      {"SgdWd", makeSgd(0.1, 0.0, 0.0, 0.05)},
      {"SgdMaximize", with(makeSgd(0.1, 0.5), [](D &d) { d.maximize = 1; })},
      {"Adagrad", makeOpt(SPARSEC_OPT_ADAGRAD, 0.1)},
      {"AdagradAll", with(makeOpt(SPARSEC_OPT_ADAGRAD, 0.1),
                          [](D &d) {
                            d.lr_decay = 0.1;
                            d.weight_decay = 0.05;
                            d.initial_accumulator_value = 0.2;
                            d.maximize = 1;
                          })},
      {"Rowwise", makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1)},
      {"RowwiseAll", with(makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1),
                          [](D &d) {
                            d.lr_decay = 0.1;
                            d.weight_decay = 0.05;
                            d.initial_accumulator_value = 0.2;
                          })},
      {"RmsProp", makeOpt(SPARSEC_OPT_RMSPROP, 0.01)},
      {"RmsPropCenteredMomentumWd", with(makeOpt(SPARSEC_OPT_RMSPROP, 0.01),
                                         [](D &d) {
                                           d.centered = 1;
                                           d.momentum = 0.9;
                                           d.weight_decay = 0.05;
                                         })},
      {"RmsPropMomentum", with(makeOpt(SPARSEC_OPT_RMSPROP, 0.01),
                               [](D &d) {
                                 d.momentum = 0.5;
                                 d.alpha = 0.7;
                               })},
      {"Adam", makeOpt(SPARSEC_OPT_ADAM, 0.01)},
      {"AdamAmsgradWd", with(makeOpt(SPARSEC_OPT_ADAM, 0.01),
                             [](D &d) {
                               d.amsgrad = 1;
                               d.weight_decay = 0.05;
                             })},
      {"AdamLargeEps", with(makeOpt(SPARSEC_OPT_ADAM, 0.01),
                            [](D &d) {
                              d.beta1 = 0.5;
                              d.beta2 = 0.6;
                              d.eps = 1e-3;
                              d.maximize = 1;
                            })},
      {"AdamBeta1AboveSqrtBeta2", with(makeOpt(SPARSEC_OPT_ADAM, 0.01),
                                       [](D &d) {
                                         d.beta1 = 0.9;
                                         d.beta2 = 0.5;
                                       })},
      {"AdamW", with(makeOpt(SPARSEC_OPT_ADAMW, 0.01),
                     [](D &d) { d.weight_decay = 0.05; })},
      {"AdamWAmsgrad", with(makeOpt(SPARSEC_OPT_ADAMW, 0.01),
                            [](D &d) {
                              d.amsgrad = 1;
                              d.weight_decay = 0.1;
                            })},
  };
}

/// Batches of ids [batch, 2]: duplicates, a batch of one repeated row, row
/// 3 never touched, row 4 touched at the first step and after a long gap.
const std::vector<std::vector<int64_t>> &batches() {
  static const std::vector<std::vector<int64_t>> b = {{0, 1, 1, 1, 2, 0},
                                                      {4, 4},
                                                      {0, 2, 5, 5},
                                                      {1, 1},
                                                      {6, 7, 7, 6},
                                                      {1, 2},
                                                      {0, 0},
                                                      {5, 6},
                                                      {2, 2, 2, 2},
                                                      {1, 5},
                                                      {0, 7},
                                                      {2, 1},
                                                      {4, 0},
                                                      {6, 6}};
  return b;
}

/// The runtime model and its reference, stepped together.
struct Harness {
  sparsec_optimizer_desc d;
  Desc desc;
  sparsec_model *m = nullptr;
  RefOpt ref;
  RefTensor w, b, s, e;
  sparsec__rng rng;
  int64_t steps = 0;

  explicit Harness(const sparsec_optimizer_desc &opt, uint64_t seed = 3)
      : d(opt), desc(feedDesc(opt)), ref{opt} {
    EXPECT_EQ(sparsec_create(&desc.desc, seed, &m), SPARSEC_OK)
        << sparsec_last_error();
    if (!m)
      return;
    sparsec__rng_seed(&rng, seed, 99);
    std::vector<std::pair<int64_t, int64_t>> wr, er, sr;
    for (int r = 0; r < 5; ++r)
      wr.push_back({3 * r, 3 * r + 3});
    for (int r = 0; r < kFeedRows; ++r)
      er.push_back({kFeedDim * r, kFeedDim * r + kFeedDim});
    const int32_t *pos, *crd;
    sparsec_param_csr(m, "s", &pos, &crd);
    for (int r = 0; r < 4; ++r)
      sr.push_back({pos[r], pos[r + 1]});
    w = RefTensor(d, values(m, "w"), wr);
    b = RefTensor(d, values(m, "b"), {{0, 4}});
    s = RefTensor(d, values(m, "s"), sr);
    e = RefTensor(d, values(m, "e"), er);
  }
  ~Harness() { sparsec_destroy(m); }

  std::vector<float> randn(size_t n) {
    std::vector<float> v(n);
    sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, v.data(), (int64_t)n);
    return v;
  }

  /// Dense step of a reference tensor with gradient `g` (all rows).
  void denseStep(RefTensor &T, const std::vector<double> &g, int64_t t,
                 double lr) {
    for (size_t r = 0; r < T.rows.size(); ++r)
      ref.stepRow(T, r, g.data() + T.rows[r].first, T.init != 0, false, t, lr);
    if (d.kind == SPARSEC_OPT_SGD && d.momentum != 0)
      T.init = 1;
  }

  void step(const std::vector<int64_t> &ids) {
    Feed &f = feed();
    f.w = randn(15);
    f.b = randn(4);
    f.s = randn(kFeedNnz);
    f.e = randn(ids.size() * kFeedDim);
    const void *in[1] = {ids.data()};
    float loss = 0;
    ASSERT_EQ(sparsec_train_step(m, (int64_t)ids.size() / kFeedBag, in, &loss),
              SPARSEC_OK)
        << sparsec_last_error();

    const double lr = refLr(d, d.lr, steps);
    const int64_t t = steps + 1;
    std::vector<double> gw(f.w.begin(), f.w.end()), gb(f.b.begin(), f.b.end()),
        gs(f.s.begin(), f.s.end());
    auto ge = refCoalesce(ids, f.e, kFeedDim);
    if (d.max_grad_norm > 0) {
      double ss = 0;
      for (const auto *g : {&gw, &gb, &gs})
        for (double x : *g)
          ss += x * x;
      for (auto &[id, row] : ge)
        for (double x : row)
          ss += x * x;
      const double coef = d.max_grad_norm / (std::sqrt(ss) + 1e-6);
      if (coef < 1) {
        for (auto *g : {&gw, &gb, &gs})
          for (double &x : *g)
            x *= coef;
        for (auto &[id, row] : ge)
          for (double &x : row)
            x *= coef;
      }
    }
    denseStep(w, gw, t, lr);
    denseStep(b, gb, t, lr);
    denseStep(s, gs, t, lr);
    const bool sgdMom = d.kind == SPARSEC_OPT_SGD && d.momentum != 0;
    if (d.sparse_mode == SPARSEC_SPARSE_DENSE) {
      std::vector<double> dense(kFeedRows * kFeedDim, 0.0);
      for (auto &[id, row] : ge)
        for (int c = 0; c < kFeedDim; ++c)
          dense[id * kFeedDim + c] = row[c];
      denseStep(e, dense, t, lr);
    } else {
      const bool catchup = d.sparse_mode == SPARSEC_SPARSE_CATCHUP;
      for (auto &[id, row] : ge) {
        if (catchup)
          ref.catchupRow(e, id, steps, lr);
        ref.stepRow(e, id, row.data(), e.rowInit[id] != 0, !catchup, t, lr);
        if (sgdMom)
          e.rowInit[id] = 1;
        if (catchup)
          e.last[id] = t;
      }
    }
    ++steps;
  }

  void expectParams(const std::string &what) {
    for (auto [name, T] : {std::pair<const char *, RefTensor *>{"w", &w},
                           {"b", &b},
                           {"s", &s},
                           {"e", &e}}) {
      std::vector<float> got = values(m, name);
      EXPECT_LE(relErr(got.data(), T->p), kTol)
          << what << ": parameter " << name;
    }
  }

  void expectState() {
    const bool rowwise = d.kind == SPARSEC_OPT_ROWWISE_ADAGRAD;
    const RefTensor *refs[4] = {&w, &b, &s, &e};
    for (int i = 0; i < 4; ++i) {
      const sparsec__param *p = &m->params[i];
      const RefTensor &T = *refs[i];
      const std::vector<double> *want[SPARSEC_NSTATE] = {
          &T.buf, rowwise ? &T.rowSum : &T.sum, &T.sq, &T.ga, &T.m, &T.v,
          &T.vmax};
      for (int k = 0; k < SPARSEC_NSTATE; ++k) {
        EXPECT_EQ(p->state[k] != nullptr, sparsec__opt_keeps(&d, k) != 0)
            << p->desc.name << " " << sparsec__state_name(k);
        if (p->state[k])
          EXPECT_LE(relErr(p->state[k], *want[k]), kTol)
              << p->desc.name << " " << sparsec__state_name(k);
      }
      if (p->last_step)
        for (int64_t r = 0; r < kFeedRows; ++r)
          EXPECT_EQ(p->last_step[r], T.last[r]) << "last_step row " << r;
      if (p->mom_row_init)
        for (int64_t r = 0; r < kFeedRows; ++r)
          EXPECT_EQ(p->mom_row_init[r] != 0, T.rowInit[r] != 0)
              << "momentum row " << r;
    }
  }
};

class Kinds
    : public ::testing::TestWithParam<std::tuple<int, sparsec_sparse_mode>> {
protected:
  sparsec_optimizer_desc desc() const {
    auto [i, mode] = GetParam();
    sparsec_optimizer_desc d = configs()[i].d;
    d.sparse_mode = mode;
    return d;
  }
  void runAll(const sparsec_optimizer_desc &d) {
    Harness h(d);
    ASSERT_NE(h.m, nullptr);
    std::vector<float> untouched = values(h.m, "e");
    for (size_t i = 0; i < batches().size(); ++i) {
      std::vector<float> before = values(h.m, "e");
      h.step(batches()[i]);
      if (::testing::Test::HasFatalFailure())
        return;
      h.expectParams("step " + std::to_string(i));
      if (d.sparse_mode != SPARSEC_SPARSE_DENSE) {
        // Rows outside the batch are bit-identical (lazy and catch-up).
        std::vector<float> after = values(h.m, "e");
        for (int r = 0; r < kFeedRows; ++r) {
          const auto &ids = batches()[i];
          if (std::find(ids.begin(), ids.end(), r) != ids.end())
            continue;
          for (int c = 0; c < kFeedDim; ++c)
            ASSERT_EQ(after[r * kFeedDim + c], before[r * kFeedDim + c])
                << "row " << r << " step " << i;
        }
      }
    }
    h.expectState();
    if (d.sparse_mode == SPARSEC_SPARSE_LAZY) {
      std::vector<float> e = values(h.m, "e");
      for (int c = 0; c < kFeedDim; ++c) // row 3: never in a batch
        EXPECT_EQ(e[3 * kFeedDim + c], untouched[3 * kFeedDim + c]);
    }
    // Bringing every row up to date: the reference's catch-up of all rows.
    ASSERT_EQ(sparsec_catch_up(h.m), SPARSEC_OK);
    if (d.sparse_mode == SPARSEC_SPARSE_CATCHUP)
      for (int r = 0; r < kFeedRows; ++r)
        h.ref.catchupRow(h.e, r, h.steps, refLr(d, d.lr, h.steps));
    h.expectParams("after catch_up");
    h.expectState();
    const uint64_t hash = hashModel(h.m);
    ASSERT_EQ(sparsec_catch_up(h.m), SPARSEC_OK); // idempotent
    EXPECT_EQ(hashModel(h.m), hash);
  }
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
