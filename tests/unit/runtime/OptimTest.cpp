//===- OptimTest.cpp - SGD against a straightforward reference ------------===//
//
// torch.optim.SGD semantics for every option combination (momentum,
// dampening, Nesterov, weight decay) over several steps: on dense arrays,
// on CSR values and dense biases through train_step, and on embedding rows
// with lazy semantics (duplicate ids, rows absent from the batch, empty
// batches), directly and through train_step with i32 and i64 ids.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>

using namespace sparsec_test;

namespace {

struct Opts {
  double lr, momentum, dampening, wd;
  bool nesterov;
};

/// One step of the textbook SGD (torch.optim.SGD docs) on one tensor.
void refStep(const Opts &o, float *p, const float *grad, float *buf, bool &init,
             int64_t n) {
  const float lr = (float)o.lr, mom = (float)o.momentum,
              damp = (float)(1.0 - o.dampening);
  const float wd = (float)o.wd;
  for (int64_t i = 0; i < n; ++i) {
    float d = grad[i];
    if (wd != 0)
      d = d + wd * p[i];
    if (mom != 0) {
      buf[i] = init ? mom * buf[i] + damp * d : d;
      d = o.nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] = p[i] - lr * d;
  }
  if (mom != 0)
    init = true;
}

/// The runtime's dense step on raw arrays (as train_step runs it).
void runtimeDense(const sparsec_optimizer_desc &d, double lr, float *p,
                  const float *g, float *buf, uint8_t *init, int64_t n) {
  sparsec__opt k = sparsec__opt_make(&d, lr, 1);
  sparsec__span s{};
  s.p = p;
  s.g = g;
  s.s[SPARSEC_ST_MOMENTUM] = buf;
  s.n = n;
  sparsec__opt_span(&k, &s, *init, 0);
  if (buf)
    *init = 1;
}

/// The runtime's lazy step on the rows of a raw table (as train_step runs
/// it: coalesced first when the update needs it).
void runtimeRows(const sparsec_optimizer_desc &d, double lr, float *table,
                 int64_t rows, sparsec__coo_grad *g, float *buf,
                 uint8_t *rowInit, sparsec__coo_workspace *ws) {
  sparsec__param p{};
  p.desc.layout = SPARSEC_LAYOUT_EMBEDDING;
  p.desc.padding_idx = -1; // none
  p.desc.rank = 2;
  p.desc.dims[0] = rows;
  p.desc.dims[1] = g->dim;
  p.nnz = rows * g->dim;
  p.rows = rows;
  p.values = table;
  p.state[SPARSEC_ST_MOMENTUM] = buf;
  p.mom_row_init = rowInit;
  if (sparsec__opt_coalesces(&d))
    sparsec__coo_coalesce(g, rows, ws);
  sparsec__opt k = sparsec__opt_make(&d, lr, 1);
  sparsec__opt_rows(&k, &p, g, 0);
}

void expectClose(const std::vector<float> &got, const std::vector<float> &want,
                 const char *what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i])))
        << what << " [" << i << "]";
}

class Sgd : public ::testing::TestWithParam<
                std::tuple<double, double, bool, double>> {
protected:
  Opts opts() const {
    auto [mom, damp, nest, wd] = GetParam();
    return Opts{0.05, mom, damp, wd, nest};
  }
  sparsec_optimizer_desc desc() const {
    Opts o = opts();
    return makeSgd(o.lr, o.momentum, o.dampening, o.wd, o.nesterov);
  }
};

TEST_P(Sgd, DenseMatchesReference) {
  Opts o = opts();
  sparsec_optimizer_desc d = desc();
  const int64_t n = 37;
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 5, 5);
  std::vector<float> p(n), ref(n), buf(n, 0), refBuf(n, 0), g(n);
  sparsec__init_values(&rng, SPARSEC_INIT_UNIFORM, 1.0, p.data(), n);
  ref = p;
  uint8_t init = 0;
  bool refInit = false;
  for (int step = 0; step < 6; ++step) {
    sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, g.data(), n);
    runtimeDense(d, o.lr, p.data(), g.data(),
                 o.momentum != 0 ? buf.data() : nullptr, &init, n);
    refStep(o, ref.data(), g.data(), refBuf.data(), refInit, n);
    expectClose(p, ref, "param");
    if (o.momentum != 0)
      expectClose(buf, refBuf, "momentum");
    EXPECT_EQ(init != 0, refInit);
  }
}

TEST_P(Sgd, CsrValuesAndBiasThroughTrainStep) {
  Opts o = opts();
  Desc d = linearDesc(true, desc(), 13);
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 21, &m), SPARSEC_OK)
      << sparsec_last_error();
  std::vector<float> w = values(m, "fc.weight"), b = values(m, "fc.bias");
  std::vector<float> wBuf(w.size(), 0), bBuf(b.size(), 0);
  bool wInit = false, bInit = false;
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 8, 8);
  const int64_t batch = 5;
  std::vector<float> x(batch * kIn), y(batch * kOut);
  for (int step = 0; step < 5; ++step) {
    sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, x.data(),
                         (int64_t)x.size());
    sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, y.data(),
                         (int64_t)y.size());
    const void *in[2] = {x.data(), y.data()};
    float loss = -1;
    ASSERT_EQ(sparsec_train_step(m, batch, in, &loss), SPARSEC_OK)
        << sparsec_last_error();
    EXPECT_GT(loss, 0.0f);
    const float *gw, *gb;
    int64_t nw, nb;
    ASSERT_EQ(sparsec_param_grad(m, "fc.weight", &gw, &nw), SPARSEC_OK);
    ASSERT_EQ(sparsec_param_grad(m, "fc.bias", &gb, &nb), SPARSEC_OK);
    ASSERT_EQ(nw, 13);
    ASSERT_EQ(nb, kOut);
    refStep(o, w.data(), gw, wBuf.data(), wInit, nw);
    refStep(o, b.data(), gb, bBuf.data(), bInit, nb);
    expectClose(values(m, "fc.weight"), w, "csr values");
    expectClose(values(m, "fc.bias"), b, "bias");
  }
  int64_t steps = 0;
  ASSERT_EQ(sparsec_step_count(m, &steps), SPARSEC_OK);
  EXPECT_EQ(steps, 5);
  sparsec_destroy(m);
}

/// Lazy reference for embedding rows: coalesce in batch order (or scatter
/// in order for plain SGD), then a per-row textbook step.
struct LazyRef {
  Opts o;
  int64_t dim;
  std::vector<float> table, buf;
  std::vector<bool> init;
  void step(const std::vector<int32_t> &ids, const std::vector<float> &rows) {
    if (o.momentum == 0 && o.wd == 0) {
      for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t d = 0; d < dim; ++d)
          table[ids[i] * dim + d] =
              table[ids[i] * dim + d] - (float)o.lr * rows[i * dim + d];
      return;
    }
    std::map<int32_t, std::vector<float>> sum;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = sum.find(ids[i]);
      if (it == sum.end())
        sum[ids[i]] = std::vector<float>(rows.begin() + i * dim,
                                         rows.begin() + (i + 1) * dim);
      else
        for (int64_t d = 0; d < dim; ++d)
          it->second[d] += rows[i * dim + d];
    }
    for (auto &[id, g] : sum) {
      bool in = init[id];
      refStep(o, &table[id * dim], g.data(), &buf[id * dim], in, dim);
      init[id] = in;
    }
  }
};

TEST_P(Sgd, EmbeddingRowsLazy) {
  Opts o = opts();
  sparsec_optimizer_desc d = desc();
  const int64_t rows = 12, dim = 4;
  sparsec__rng rng;
  sparsec__rng_seed(&rng, 6, 6);
  std::vector<float> table(rows * dim), buf(rows * dim, 0);
  std::vector<uint8_t> rowInit(rows, 0);
  sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, table.data(),
                       rows * dim);
  LazyRef ref{o, dim, table, buf, std::vector<bool>(rows, false)};
  sparsec__coo_workspace ws{};
  // Batches: duplicates, an empty batch, rows 10 and 11 never touched.
  std::vector<std::vector<int32_t>> batches = {
      {3, 1, 3, 3, 0},       {},  {1, 2}, {9, 9, 9, 9},
      {0, 5, 3, 5, 2, 1, 4}, {7}, {3, 3}};
  const std::vector<float> untouched(table.begin() + 10 * dim, table.end());
  for (const auto &ids : batches) {
    std::vector<float> g(ids.size() * dim);
    sparsec__init_values(&rng, SPARSEC_INIT_NORMAL, 1.0, g.data(),
                         (int64_t)g.size());
    ASSERT_EQ(sparsec__coo_reserve(&ws, (int64_t)ids.size(), dim), 0);
    sparsec__coo_grad cg = {(int64_t)ids.size(), dim, ids.data(), g.data(), 0};
    std::vector<float> before = table;
    std::vector<uint8_t> initBefore = rowInit;
    runtimeRows(d, o.lr, table.data(), rows, &cg,
                o.momentum != 0 ? buf.data() : nullptr,
                o.momentum != 0 ? rowInit.data() : nullptr, &ws);
    ref.step(ids, g);
    expectClose(table, ref.table, "table");
    if (o.momentum != 0) {
      expectClose(buf, ref.buf, "momentum");
      for (int64_t r = 0; r < rows; ++r)
        EXPECT_EQ(rowInit[r] != 0, (bool)ref.init[r]) << "row " << r;
    }
    // Rows not in the batch are bit-identical.
    for (int64_t r = 0; r < rows; ++r) {
      if (std::find(ids.begin(), ids.end(), r) != ids.end())
        continue;
      for (int64_t c = 0; c < dim; ++c)
        ASSERT_EQ(table[r * dim + c], before[r * dim + c]) << "row " << r;
      EXPECT_EQ(rowInit[r], initBefore[r]);
    }
  }
  EXPECT_EQ(std::vector<float>(table.begin() + 10 * dim, table.end()),
            untouched);
  sparsec__coo_free(&ws);
}

template <typename Id>
void embeddingThroughTrainStep(const Opts &o, sparsec_dtype dt) {
  Desc d =
      embedDesc(dt, makeSgd(o.lr, o.momentum, o.dampening, o.wd, o.nesterov));
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 4, &m), SPARSEC_OK) << sparsec_last_error();
  LazyRef ref{o, kDim, values(m, "emb.weight"),
              std::vector<float>(kRows * kDim, 0),
              std::vector<bool>(kRows, false)};
  // Batch sizes change between steps (the gradient buffer grows).
  std::vector<std::vector<Id>> batches = {
      {1, 1, 4, 2}, {1, 1}, {0, 9, 9, 1, 2, 2, 5, 5}, {4, 4}};
  for (const auto &ids : batches) {
    const int64_t batch = (int64_t)ids.size() / kBag;
    std::vector<float> y(batch);
    for (int64_t b = 0; b < batch; ++b)
      y[b] = 0.25f * (float)b - 1.0f;
    const void *in[2] = {ids.data(), y.data()};
    float loss = 0;
    ASSERT_EQ(sparsec_train_step(m, batch, in, &loss), SPARSEC_OK)
        << sparsec_last_error();
    const float *g;
    int64_t count;
    ASSERT_EQ(sparsec_param_grad(m, "emb.weight", &g, &count), SPARSEC_OK);
    ASSERT_EQ(count, (int64_t)ids.size() * kDim);
    std::vector<int32_t> ids32(ids.begin(), ids.end());
    ref.step(ids32, std::vector<float>(g, g + count));
    expectClose(values(m, "emb.weight"), ref.table, "embedding");
  }
  sparsec_destroy(m);
}

TEST_P(Sgd, EmbeddingThroughTrainStepI64) {
  embeddingThroughTrainStep<int64_t>(opts(), SPARSEC_I64);
}
TEST_P(Sgd, EmbeddingThroughTrainStepI32) {
  embeddingThroughTrainStep<int32_t>(opts(), SPARSEC_I32);
}

// momentum, dampening, nesterov, weight_decay (Nesterov needs momentum and
// zero dampening, as in PyTorch).
INSTANTIATE_TEST_SUITE_P(
    Options, Sgd,
    ::testing::Values(std::make_tuple(0.0, 0.0, false, 0.0),
                      std::make_tuple(0.0, 0.0, false, 0.01),
                      std::make_tuple(0.9, 0.0, false, 0.0),
                      std::make_tuple(0.9, 0.0, false, 0.01),
                      std::make_tuple(0.9, 0.5, false, 0.0),
                      std::make_tuple(0.9, 0.5, false, 0.01),
                      std::make_tuple(0.9, 0.0, true, 0.0),
                      std::make_tuple(0.9, 0.0, true, 0.01),
                      std::make_tuple(0.5, 0.25, false, 0.1),
                      std::make_tuple(0.0, 0.5, false, 0.0)));

TEST(SgdMath, HandComputedTwoSteps) {
  // p = 1, g = 0.5 then 0.25; lr 0.1, momentum 0.9, dampening 0.5, wd 0.1.
  sparsec_optimizer_desc d = makeSgd(0.1, 0.9, 0.5, 0.1);
  float p = 1.0f, buf = 0, g1 = 0.5f, g2 = 0.25f;
  uint8_t init = 0;
  runtimeDense(d, 0.1, &p, &g1, &buf, &init, 1);
  // d = 0.5 + 0.1 = 0.6; buf = 0.6 (first step: no dampening); p = 1 - 0.06.
  EXPECT_FLOAT_EQ(buf, 0.6f);
  EXPECT_FLOAT_EQ(p, 0.94f);
  runtimeDense(d, 0.1, &p, &g2, &buf, &init, 1);
  // d = 0.25 + 0.094 = 0.344; buf = 0.54 + 0.172 = 0.712; p = 0.94 - 0.0712.
  EXPECT_FLOAT_EQ(buf, 0.712f);
  EXPECT_FLOAT_EQ(p, 0.8688f);
}

TEST(SgdMath, LearningRateChangesBetweenSteps) {
  Desc d = linearDesc(false, makeSgd(0.1));
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_OK);
  ASSERT_EQ(sparsec_set_lr(m, 0.0), SPARSEC_OK);
  std::vector<float> x(kIn, 1.0f), y(kOut, 3.0f);
  const void *in[2] = {x.data(), y.data()};
  float loss;
  uint64_t h = hashModel(m);
  const std::vector<float> w0 = values(m, "fc.weight"),
                           b0 = values(m, "fc.bias");
  ASSERT_EQ(sparsec_train_step(m, 1, in, &loss), SPARSEC_OK);
  // lr 0 leaves the values alone (only the step count moves).
  EXPECT_EQ(values(m, "fc.weight"), w0);
  EXPECT_EQ(values(m, "fc.bias"), b0);
  std::vector<float> b = values(m, "fc.bias");
  ASSERT_EQ(sparsec_set_lr(m, 0.5), SPARSEC_OK);
  double lr = 0;
  ASSERT_EQ(sparsec_get_lr(m, &lr), SPARSEC_OK);
  EXPECT_EQ(lr, 0.5);
  ASSERT_EQ(sparsec_train_step(m, 1, in, &loss), SPARSEC_OK);
  const float *gb;
  int64_t nb;
  ASSERT_EQ(sparsec_param_grad(m, "fc.bias", &gb, &nb), SPARSEC_OK);
  std::vector<float> after = values(m, "fc.bias");
  for (int o = 0; o < kOut; ++o)
    EXPECT_FLOAT_EQ(after[o], b[o] - 0.5f * gb[o]);
  EXPECT_NE(h, hashModel(m));
  sparsec_destroy(m);
}

} // namespace
