//===- OptimDescTest.cpp - Optimizer descriptor checks and state layout ---===//
//
// create's checks of every optimizer field (PyTorch's rules, schedules,
// clipping, sparse modes) with the message naming the field, fields a kind
// does not use ignored, the state each optimizer allocates, and row-wise
// Adagrad's rows on parameters of every rank.
//
//===----------------------------------------------------------------------===//
#include "OptimRef.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>

using namespace sparsec_test;

namespace {

using Edit = std::function<void(sparsec_optimizer_desc &)>;
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

/// create's status for the linear model with optimizer `d` edited by `e`.
int createWith(sparsec_optimizer_desc d, const Edit &e, std::string *msg) {
  e(d);
  Desc x = linearDesc(false, d);
  sparsec_model *m = nullptr;
  int rc = sparsec_create(&x.desc, 1, &m);
  *msg = sparsec_last_error();
  sparsec_destroy(m);
  if (rc != SPARSEC_OK)
    EXPECT_EQ(m, nullptr);
  return rc;
}

TEST(OptimizerDesc, RejectsBadValuesNamingTheField) {
  struct Case {
    sparsec_optimizer_kind kind;
    Edit edit;
    const char *msg;
  } cases[] = {
      {SPARSEC_OPT_ADAM, [](auto &d) { d.lr = -0.1; },
       "Adam optimizer has lr -0.1"},
      {SPARSEC_OPT_ADAM, [](auto &d) { d.lr = kInf; }, "has lr inf"},
      {SPARSEC_OPT_ADAGRAD, [](auto &d) { d.weight_decay = -1; },
       "has weight_decay -1"},
      {SPARSEC_OPT_RMSPROP, [](auto &d) { d.momentum = -0.5; },
       "has momentum -0.5"},
      {SPARSEC_OPT_RMSPROP, [](auto &d) { d.alpha = 1.5; },
       "RMSprop optimizer has alpha 1.5, expected a value in [0, 1]"},
      {SPARSEC_OPT_RMSPROP, [](auto &d) { d.alpha = kNan; }, "has alpha nan"},
      {SPARSEC_OPT_ADAM, [](auto &d) { d.eps = -1e-8; }, "has eps -1e-08"},
      {SPARSEC_OPT_ADAMW, [](auto &d) { d.beta1 = 1.0; },
       "AdamW optimizer has beta1 1, expected a value in [0, 1)"},
      {SPARSEC_OPT_ADAM, [](auto &d) { d.beta1 = -0.1; }, "has beta1 -0.1"},
      {SPARSEC_OPT_ADAM, [](auto &d) { d.beta2 = 1.0; }, "has beta2 1"},
      {SPARSEC_OPT_ADAGRAD, [](auto &d) { d.lr_decay = -1; },
       "has lr_decay -1"},
      {SPARSEC_OPT_ROWWISE_ADAGRAD,
       [](auto &d) { d.initial_accumulator_value = -1; },
       "row-wise Adagrad optimizer has initial_accumulator_value -1"},
      {SPARSEC_OPT_ROWWISE_ADAGRAD, [](auto &d) { d.eps = kNan; },
       "has eps nan"},
      {SPARSEC_OPT_ADAM, [](auto &d) { d.amsgrad = 2; },
       "flag amsgrad is 2, expected 0 or 1"},
      {SPARSEC_OPT_RMSPROP, [](auto &d) { d.centered = -1; },
       "flag centered is -1"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.maximize = 3; }, "flag maximize is 3"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.sparse_mode = (sparsec_sparse_mode)3; },
       "unknown sparse_mode 3"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.max_grad_norm = -1; },
       "has max_grad_norm -1"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.max_grad_norm = kNan; },
       "has max_grad_norm nan"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.warmup_steps = -2; },
       "warmup_steps is -2"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.schedule = 3; },
       "unknown lr schedule 3"},
      {SPARSEC_OPT_SGD,
       [](auto &d) {
         d.schedule = SPARSEC_SCHED_STEP;
         d.gamma = 0.5;
       },
       "step schedule has step_size 0, expected >= 1"},
      {SPARSEC_OPT_SGD,
       [](auto &d) {
         d.schedule = SPARSEC_SCHED_STEP;
         d.step_size = 2;
         d.gamma = -0.5;
       },
       "step schedule has gamma -0.5"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.schedule = SPARSEC_SCHED_COSINE; },
       "cosine schedule has t_max 0, expected >= 1"},
      {SPARSEC_OPT_SGD,
       [](auto &d) {
         d.schedule = SPARSEC_SCHED_COSINE;
         d.t_max = 5;
         d.eta_min = -1;
       },
       "cosine schedule has eta_min -1"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.kind = (sparsec_optimizer_kind)6; },
       "unknown optimizer kind 6"},
      {SPARSEC_OPT_SGD, [](auto &d) { d.dampening = kNan; },
       "SGD optimizer has dampening nan"},
  };
  for (const Case &c : cases) {
    std::string msg;
    EXPECT_EQ(createWith(makeOpt(c.kind, 0.1), c.edit, &msg),
              SPARSEC_ERR_INVALID_ARG)
        << c.msg;
    EXPECT_NE(msg.find(c.msg), std::string::npos) << "got: " << msg;
  }
}

TEST(OptimizerDesc, AcceptsPyTorchEdgeValuesAndIgnoresUnusedFields) {
  const Edit ok[] = {
      [](auto &d) { d.lr = 0; },                 // torch accepts lr = 0
      [](auto &d) { d.eps = 0; },                // and eps = 0
      [](auto &d) { d.beta1 = d.beta2 = 0; },    // betas in [0, 1)
      [](auto &d) { d.beta1 = 0.999999; },       //
      [](auto &d) { d.alpha = 1; },              // RMSprop alpha in [0, 1]
      [](auto &d) { d.alpha = 0; },              //
      [](auto &d) { d.kind = SPARSEC_OPT_SGD; }, // SGD ignores eps/betas/alpha
      [](auto &d) {                              // Adam ignores SGD's fields
        d.kind = SPARSEC_OPT_ADAM;
        d.momentum = -1;
        d.nesterov = 1;
        d.dampening = kNan;
        d.alpha = 7;
      },
      [](auto &d) { // the constant schedule ignores the others' fields
        d.step_size = -4;
        d.t_max = -1;
        d.gamma = kNan;
      },
      [](auto &d) {
        d.warmup_steps = 10;
        d.schedule = SPARSEC_SCHED_COSINE;
        d.t_max = 1;
        d.eta_min = 0;
        d.max_grad_norm = 1e-3;
        d.sparse_mode = SPARSEC_SPARSE_CATCHUP;
        d.maximize = 1;
      },
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i) {
    sparsec_optimizer_desc d = makeOpt(SPARSEC_OPT_RMSPROP, 0.1);
    d.beta1 = 0.9;
    std::string msg;
    EXPECT_EQ(createWith(d, ok[i], &msg), SPARSEC_OK) << i << ": " << msg;
  }
}

TEST(OptimizerDesc, EachOptimizerAllocatesItsState) {
  struct Case {
    sparsec_optimizer_desc d;
    std::vector<int> states;
  };
  sparsec_optimizer_desc rms = makeOpt(SPARSEC_OPT_RMSPROP, 0.1),
                         ams = makeOpt(SPARSEC_OPT_ADAMW, 0.1);
  rms.centered = 1;
  rms.momentum = 0.5;
  ams.amsgrad = 1;
  const Case cases[] = {
      {makeSgd(0.1), {}},
      {makeSgd(0.1, 0.9), {SPARSEC_ST_MOMENTUM}},
      {makeOpt(SPARSEC_OPT_ADAGRAD, 0.1), {SPARSEC_ST_SUM}},
      {makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1), {SPARSEC_ST_SUM}},
      {makeOpt(SPARSEC_OPT_RMSPROP, 0.1), {SPARSEC_ST_SQUARE_AVG}},
      {rms, {SPARSEC_ST_MOMENTUM, SPARSEC_ST_SQUARE_AVG, SPARSEC_ST_GRAD_AVG}},
      {makeOpt(SPARSEC_OPT_ADAM, 0.1),
       {SPARSEC_ST_EXP_AVG, SPARSEC_ST_EXP_AVG_SQ}},
      {ams,
       {SPARSEC_ST_EXP_AVG, SPARSEC_ST_EXP_AVG_SQ, SPARSEC_ST_MAX_EXP_AVG_SQ}},
  };
  for (const Case &c : cases) {
    for (sparsec_sparse_mode mode :
         {SPARSEC_SPARSE_LAZY, SPARSEC_SPARSE_CATCHUP, SPARSEC_SPARSE_DENSE}) {
      sparsec_optimizer_desc d = c.d;
      d.sparse_mode = mode;
      Desc x = feedDesc(d);
      sparsec_model *m = nullptr;
      ASSERT_EQ(sparsec_create(&x.desc, 1, &m), SPARSEC_OK)
          << sparsec_last_error();
      for (int i = 0; i < 4; ++i) {
        const sparsec__param *p = &m->params[i];
        for (int k = 0; k < SPARSEC_NSTATE; ++k)
          EXPECT_EQ(p->state[k] != nullptr,
                    std::find(c.states.begin(), c.states.end(), k) !=
                        c.states.end())
              << "kind " << d.kind << " " << sparsec__state_name(k);
        const bool emb = i == 3;
        EXPECT_EQ(p->last_step != nullptr,
                  emb && mode == SPARSEC_SPARSE_CATCHUP);
        EXPECT_EQ(p->dense_grad != nullptr,
                  emb && mode == SPARSEC_SPARSE_DENSE);
        EXPECT_EQ(p->mom_row_init != nullptr,
                  emb && mode != SPARSEC_SPARSE_DENSE &&
                      d.kind == SPARSEC_OPT_SGD && d.momentum != 0);
      }
      sparsec_destroy(m);
    }
  }
}

TEST(OptimizerDesc, RowwiseRowsOfEveryRank) {
  // A scalar and a vector are one row; rank >= 2: dims[0] rows of the rest.
  sparsec_optimizer_desc d = makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.5);
  d.initial_accumulator_value = 0.1;
  Desc x;
  x.params = {
      makeParam("scalar", SPARSEC_LAYOUT_DENSE, {}, 1, SPARSEC_INIT_NORMAL,
                1.0),
      makeParam("vec", SPARSEC_LAYOUT_DENSE, {5}, 5, SPARSEC_INIT_NORMAL, 1.0),
      makeParam("cube", SPARSEC_LAYOUT_DENSE, {2, 3, 4}, 24,
                SPARSEC_INIT_NORMAL, 1.0),
      makeParam("none", SPARSEC_LAYOUT_DENSE, {0, 3}, 0, SPARSEC_INIT_NORMAL,
                1.0)};
  x.desc.abi_version = SPARSEC_ABI_VERSION;
  x.desc.name = "Ranks";
  x.desc.optimizer = d;
  x.link();
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&x.desc, 1, &m), SPARSEC_OK) << sparsec_last_error();
  const int64_t rows[] = {1, 1, 2, 0}, width[] = {1, 5, 12, 3};
  sparsec__opt o = sparsec__opt_make(&d, d.lr, 1);
  RefOpt ref{d};
  for (int i = 0; i < 4; ++i) {
    sparsec__param *p = &m->params[i];
    ASSERT_EQ(p->rows, rows[i]) << p->desc.name;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (int64_t r = 0; r < rows[i]; ++r)
      ranges.push_back({r * width[i], (r + 1) * width[i]});
    RefTensor t(d, std::vector<float>(p->values, p->values + p->nnz), ranges);
    std::vector<float> g(p->nnz);
    for (size_t k = 0; k < g.size(); ++k)
      g[k] = 0.5f - 0.1f * float(k % 7);
    std::vector<double> gd(g.begin(), g.end());
    sparsec__opt_values(&o, p, g.data());
    for (int64_t r = 0; r < rows[i]; ++r)
      ref.stepRow(t, (size_t)r, gd.data() + r * width[i], false, false, 1,
                  d.lr);
    EXPECT_LE(relErr(p->values, t.p), 1e-6) << p->desc.name;
    EXPECT_LE(relErr(p->state[SPARSEC_ST_SUM], t.rowSum), 1e-6) << p->desc.name;
  }
  sparsec_destroy(m);
}

} // namespace
