//===- OptimHarness.h - Optimizer configs, Feed-model harness -*- C++ -*-===//
//
// Shared by OptimKindsTest and EmbeddingOptionsTest: the optimizer
// configurations every test runs, the id batches, and a harness that steps
// the Feed model (gradients the test chooses) together with the f64
// reference of OptimRef.h, including the embedding options of the table
// "e" (padding_idx, max_norm / norm_type, scale_grad_by_freq).
//
//===----------------------------------------------------------------------===//
#ifndef SPARSEC_TESTS_RUNTIME_OPTIMHARNESS_H
#define SPARSEC_TESTS_RUNTIME_OPTIMHARNESS_H

#include "OptimRef.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

namespace sparsec_test {

constexpr double kHarnessTol = 1e-5;

struct Config {
  const char *name;
  sparsec_optimizer_desc d;
};

inline sparsec_optimizer_desc with(sparsec_optimizer_desc d,
                                   void (*edit)(sparsec_optimizer_desc &)) {
  edit(d);
  return d;
}

inline std::vector<Config> configs() {
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
inline const std::vector<std::vector<int64_t>> &batches() {
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

/// nn.Embedding options of the Feed model's table "e"; `padNonZero`
/// writes a non-zero padding row after create (as from_pretrained or a
/// checkpoint can), which no optimizer may then move.
struct EmbOptions {
  const char *name = "None";
  int64_t padding = -1;
  double maxNorm = 0, normType = 2;
  int freq = 0;
  bool padNonZero = false;
  double maxGradNorm = 0; // clipping, set on the optimizer
};

/// The reference renorm: each row `ids` reference, once.
inline void refRenorm(RefTensor &T, const std::vector<int64_t> &ids,
                      double maxNorm, double p) {
  std::vector<int64_t> unique(ids);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  for (int64_t id : unique) {
    const auto [lo, hi] = T.rows[id];
    double norm = 0;
    for (int64_t k = lo; k < hi; ++k)
      norm = std::isinf(p) ? std::max(norm, std::fabs(T.p[k]))
                           : norm + std::pow(std::fabs(T.p[k]), p);
    if (!std::isinf(p))
      norm = std::pow(norm, 1 / p);
    if (norm > maxNorm)
      for (int64_t k = lo; k < hi; ++k)
        T.p[k] *= maxNorm / (norm + 1e-7);
  }
}

/// The runtime model and its reference, stepped together.
struct Harness {
  sparsec_optimizer_desc d;
  EmbOptions eo;
  Desc desc;
  sparsec_model *m = nullptr;
  RefOpt ref;
  RefTensor w, b, s, e;
  sparsec__rng rng;
  int64_t steps = 0;

  explicit Harness(const sparsec_optimizer_desc &opt, uint64_t seed = 3,
                   const EmbOptions &options = EmbOptions())
      : d(opt), eo(options), desc(feedDesc(opt)), ref{opt} {
    sparsec_param_desc &pe = desc.params[3];
    pe.padding_idx = eo.padding;
    pe.max_norm = eo.maxNorm;
    pe.norm_type = eo.normType;
    pe.scale_grad_by_freq = eo.freq;
    desc.desc.optimizer.max_grad_norm += eo.maxGradNorm;
    d = desc.desc.optimizer;
    ref.d = d;
    desc.link();
    EXPECT_EQ(sparsec_create(&desc.desc, seed, &m), SPARSEC_OK)
        << sparsec_last_error();
    if (!m)
      return;
    if (eo.padNonZero) {
      float *v = nullptr;
      int64_t n = 0;
      sparsec_param_values(m, "e", &v, &n);
      const float row[kFeedDim] = {0.5f, -0.7f, 1.3f};
      std::copy(row, row + kFeedDim, v + eo.padding * kFeedDim);
    }
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

  /// Dense step of a reference tensor with gradient `g` (all rows but
  /// `skip`).
  void denseStep(RefTensor &T, const std::vector<double> &g, int64_t t,
                 double lr, int64_t skip = -1) {
    for (size_t r = 0; r < T.rows.size(); ++r)
      if ((int64_t)r != skip)
        ref.stepRow(T, r, g.data() + T.rows[r].first, T.init != 0, false, t,
                    lr);
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
    // The table's gradient: padding rows dropped, rows divided by their
    // id's count (scale_grad_by_freq), coalesced.
    std::map<int32_t, std::vector<double>> ge;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == eo.padding)
        continue;
      const double count =
          eo.freq ? (double)std::count(ids.begin(), ids.end(), ids[i]) : 1.0;
      std::vector<double> &row = ge[(int32_t)ids[i]];
      row.resize(kFeedDim, 0.0);
      for (int c = 0; c < kFeedDim; ++c)
        row[c] += f.e[i * kFeedDim + c] / count;
    }
    // Before the kernel: catch-up, then the max_norm renorm.
    const bool catchup = d.sparse_mode == SPARSEC_SPARSE_CATCHUP;
    if (catchup)
      for (auto &[id, row] : ge)
        ref.catchupRow(e, id, steps, lr);
    if (eo.maxNorm > 0)
      refRenorm(e, ids, eo.maxNorm, eo.normType);
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
      denseStep(e, dense, t, lr, eo.padding);
    } else {
      for (auto &[id, row] : ge) {
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
      EXPECT_LE(relErr(got.data(), T->p), kHarnessTol)
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
          EXPECT_LE(relErr(p->state[k], *want[k]), kHarnessTol)
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

/// Steps a Harness through batches(): parameters after every step against
/// the reference, rows outside the batch bit-identical (lazy, catch-up),
/// the padding row never moved by the optimizer, the state at the end, and
/// catch_up bringing every row up to date (idempotently).
inline void runHarness(const sparsec_optimizer_desc &d,
                       const EmbOptions &eo = EmbOptions()) {
  Harness h(d, 3, eo);
  ASSERT_NE(h.m, nullptr);
  const std::vector<float> untouched = values(h.m, "e");
  const int64_t pad = eo.padding;
  if (pad >= 0 && !eo.padNonZero)
    for (int c = 0; c < kFeedDim; ++c)
      ASSERT_EQ(untouched[pad * kFeedDim + c], 0.0f) << "padding row";
  for (size_t i = 0; i < batches().size(); ++i) {
    const std::vector<float> before = values(h.m, "e");
    h.step(batches()[i]);
    if (::testing::Test::HasFatalFailure())
      return;
    h.expectParams("step " + std::to_string(i));
    const std::vector<float> after = values(h.m, "e");
    for (int r = 0; r < kFeedRows; ++r) {
      const auto &ids = batches()[i];
      const bool inBatch = std::find(ids.begin(), ids.end(), r) != ids.end();
      // Rows outside the batch are bit-identical (lazy and catch-up); the
      // padding row never moves unless max_norm renorms it (PyTorch too).
      const bool frozen =
          r == pad ? eo.maxNorm == 0 || !inBatch
                   : !inBatch && d.sparse_mode != SPARSEC_SPARSE_DENSE;
      if (frozen)
        for (int c = 0; c < kFeedDim; ++c)
          ASSERT_EQ(after[r * kFeedDim + c], before[r * kFeedDim + c])
              << "row " << r << " step " << i;
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
      if (r != pad)
        h.ref.catchupRow(h.e, r, h.steps, refLr(d, d.lr, h.steps));
  h.expectParams("after catch_up");
  h.expectState();
  const uint64_t hash = hashModel(h.m);
  ASSERT_EQ(sparsec_catch_up(h.m), SPARSEC_OK); // idempotent
  EXPECT_EQ(hashModel(h.m), hash);
}

} // namespace sparsec_test

#endif // SPARSEC_TESTS_RUNTIME_OPTIMHARNESS_H
