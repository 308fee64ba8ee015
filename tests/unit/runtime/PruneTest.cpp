//===- PruneTest.cpp - Masks of masked_linear and pruning schedules -------===//
//
// The Zhu-Gupta schedule's values at given steps (and the steps that are
// not pruning steps), the validation of the ABI 5 (pruning) fields, and a
// hand-written masked model: the mask is drawn with exactly mask_ones ones
// and the weight is zero where it is 0; masked weights stay exactly zero
// under SGD (momentum, Nesterov, weight decay) and Adam/AdamW with weight
// decay; magnitude pruning zeroes the smallest |w| with their optimizer
// state; structured pruning zeroes whole rows by L1 or L2 norm; global
// pruning ranks two masks together; a load re-zeroes masked weights.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace sparsec_test;

namespace {

constexpr int kRows = 4, kCols = 5, kN = kRows * kCols;

sparsec_param_desc schedule(sparsec_prune kind, double initial, double final_,
                            int64_t begin, int64_t end, int64_t every) {
  sparsec_param_desc d{};
  d.prune = kind;
  d.prune_initial = initial;
  d.prune_final = final_;
  d.prune_begin = begin;
  d.prune_end = end;
  d.prune_every = every;
  return d;
}

TEST(Prune, ZhuGuptaScheduleValues) {
  sparsec_param_desc d = schedule(SPARSEC_PRUNE_GRADUAL, 0.1, 0.7, 2, 8, 2);
  double s = -1;
  EXPECT_EQ(sparsec__prune_target(&d, 1, &s), 0); // before begin
  ASSERT_EQ(sparsec__prune_target(&d, 2, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.1);                       // s_i at t0
  EXPECT_EQ(sparsec__prune_target(&d, 3, &s), 0); // not t0 + k every
  ASSERT_EQ(sparsec__prune_target(&d, 4, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.7 - 0.6 * 8.0 / 27.0); // (1 - 2/6)^3
  ASSERT_EQ(sparsec__prune_target(&d, 6, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.7 - 0.6 / 27.0);
  ASSERT_EQ(sparsec__prune_target(&d, 8, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.7);                        // s_f at t0 + n dt
  EXPECT_EQ(sparsec__prune_target(&d, 10, &s), 0); // after end
  // Zhu & Gupta's example: 0 -> 0.9 over ten updates of 100 steps.
  d = schedule(SPARSEC_PRUNE_GRADUAL, 0.0, 0.9, 100, 1100, 100);
  ASSERT_EQ(sparsec__prune_target(&d, 600, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.9 - 0.9 * 0.125);
  EXPECT_EQ(sparsec__prune_target(&d, 650, &s), 0);
  // One shot (end == begin): s_f at begin only.
  d = schedule(SPARSEC_PRUNE_MAGNITUDE, 0.5, 0.5, 5, 5, 1);
  EXPECT_EQ(sparsec__prune_target(&d, 4, &s), 0);
  ASSERT_EQ(sparsec__prune_target(&d, 5, &s), 1);
  EXPECT_DOUBLE_EQ(s, 0.5);
  EXPECT_EQ(sparsec__prune_target(&d, 6, &s), 0);
  d.prune = SPARSEC_PRUNE_NONE;
  EXPECT_EQ(sparsec__prune_target(&d, 5, &s), 0);
}

/// bufs: x, w[4x5], mask[4x5], (v[4x5], mask2[4x5]), grad w, next mask,
/// (grad v, next mask2), loss. The gradient of each weight is
/// (e + 1) * 0.01 * mask (masked, as the generated kernels compute it); the
/// next mask is the mask.
template <int Layers> int maskedTrain(void *const *bufs, int64_t) {
  for (int l = 0; l < Layers; ++l) {
    const float *mask = static_cast<const float *>(bufs[2 + 2 * l]);
    float *g = static_cast<float *>(bufs[1 + 2 * Layers + 2 * l]);
    float *next = static_cast<float *>(bufs[2 + 2 * Layers + 2 * l]);
    for (int e = 0; e < kN; ++e) {
      g[e] = static_cast<float>(e + 1) * 0.01f * mask[e];
      next[e] = mask[e];
    }
  }
  *static_cast<float *>(bufs[1 + 4 * Layers]) = 1.0f;
  return 0;
}

/// One or two masked weights ("w"/"v") with their masks.
Desc maskedDesc(sparsec_optimizer_desc opt, int layers, int64_t ones,
                sparsec_prune prune = SPARSEC_PRUNE_NONE, int global = 0) {
  Desc d;
  d.inputs = {makeInput("x", SPARSEC_F32, {-1, 1})};
  const char *names[2][2] = {{"w", "w_mask"}, {"v", "v_mask"}};
  for (int l = 0; l < layers; ++l) {
    d.params.push_back(makeParam(names[l][0], SPARSEC_LAYOUT_DENSE,
                                 {kRows, kCols}, kN, SPARSEC_INIT_UNIFORM,
                                 1.0));
    sparsec_param_desc m = makeParam(names[l][1], SPARSEC_LAYOUT_BUFFER,
                                     {kRows, kCols}, kN, SPARSEC_INIT_ZEROS, 0);
    m.mask_of = 2 * l + 1;
    m.mask_ones = ones;
    m.prune = prune;
    m.prune_global = global;
    m.prune_norm = 1;
    m.prune_initial = m.prune_final = 0.5;
    m.prune_begin = m.prune_end = 3;
    m.prune_every = 1;
    d.params.push_back(m);
  }
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = "Masked";
  d.desc.output_rank = 1;
  d.desc.output_dims[0] = -1;
  d.desc.optimizer = opt;
  d.desc.train = layers == 1 ? &maskedTrain<1> : &maskedTrain<2>;
  d.link();
  return d;
}

struct Model {
  sparsec_model *m = nullptr;
  ~Model() { sparsec_destroy(m); }
};

void step(sparsec_model *m) {
  float x = 1, loss;
  const void *in[1] = {&x};
  ASSERT_EQ(sparsec_train_step(m, 1, in, &loss), SPARSEC_OK)
      << sparsec_last_error();
}

int zeros(const std::vector<float> &v) {
  int n = 0;
  for (float f : v)
    n += f == 0.0f;
  return n;
}

TEST(Prune, MaskDrawnAndWeightZeroed) {
  Desc d = maskedDesc(makeOpt(SPARSEC_OPT_SGD, 0.1), 1, 7);
  Model a, b;
  ASSERT_EQ(sparsec_create(&d.desc, 3, &a.m), SPARSEC_OK)
      << sparsec_last_error();
  ASSERT_EQ(sparsec_create(&d.desc, 3, &b.m), SPARSEC_OK);
  std::vector<float> mask = values(a.m, "w_mask"), w = values(a.m, "w");
  EXPECT_EQ(kN - zeros(mask), 7);
  for (int e = 0; e < kN; ++e) {
    EXPECT_TRUE(mask[e] == 0.0f || mask[e] == 1.0f);
    EXPECT_EQ(mask[e] == 0.0f, w[e] == 0.0f) << e;
  }
  EXPECT_EQ(values(b.m, "w_mask"), mask); // seeded
}

TEST(Prune, MaskedWeightsStayZeroUnderEveryOptimizer) {
  for (sparsec_optimizer_kind kind :
       {SPARSEC_OPT_SGD, SPARSEC_OPT_ADAGRAD, SPARSEC_OPT_RMSPROP,
        SPARSEC_OPT_ADAM, SPARSEC_OPT_ADAMW}) {
    sparsec_optimizer_desc opt = makeOpt(kind, 0.1);
    opt.weight_decay = 0.1;
    opt.momentum = kind == SPARSEC_OPT_SGD || kind == SPARSEC_OPT_RMSPROP;
    opt.nesterov = kind == SPARSEC_OPT_SGD;
    opt.centered = kind == SPARSEC_OPT_RMSPROP;
    Desc d = maskedDesc(opt, 1, 9);
    Model a;
    ASSERT_EQ(sparsec_create(&d.desc, 1, &a.m), SPARSEC_OK)
        << sparsec_last_error();
    std::vector<float> mask = values(a.m, "w_mask"), w0 = values(a.m, "w");
    for (int t = 0; t < 5; ++t)
      step(a.m);
    std::vector<float> w = values(a.m, "w");
    for (int e = 0; e < kN; ++e) {
      if (mask[e] == 0.0f)
        EXPECT_EQ(w[e], 0.0f) << "optimizer " << kind << " entry " << e;
      else
        EXPECT_NE(w[e], w0[e]) << "optimizer " << kind << " entry " << e;
    }
    EXPECT_EQ(values(a.m, "w_mask"), mask);
  }
}

TEST(Prune, MagnitudeZeroesSmallestWithState) {
  // A tiny lr: the ranking after step 3 is the ranking of `before`.
  Desc d = maskedDesc(makeOpt(SPARSEC_OPT_ADAM, 1e-6), 1, kN,
                      SPARSEC_PRUNE_MAGNITUDE);
  Model a;
  ASSERT_EQ(sparsec_create(&d.desc, 5, &a.m), SPARSEC_OK)
      << sparsec_last_error();
  step(a.m);
  step(a.m);
  EXPECT_EQ(zeros(values(a.m, "w_mask")), 0);
  std::vector<float> before = values(a.m, "w");
  step(a.m); // t = 3: prune to 10 zeros after the step
  std::vector<float> w = values(a.m, "w"), mask = values(a.m, "w_mask");
  EXPECT_EQ(zeros(mask), kN / 2);
  float keptMin = INFINITY, prunedMax = 0;
  sparsec__param *p = &a.m->params[0];
  for (int e = 0; e < kN; ++e) {
    if (mask[e] == 0.0f) {
      EXPECT_EQ(w[e], 0.0f);
      EXPECT_EQ(p->state[SPARSEC_ST_EXP_AVG][e], 0.0f);
      EXPECT_EQ(p->state[SPARSEC_ST_EXP_AVG_SQ][e], 0.0f);
      prunedMax = std::max(prunedMax, std::fabs(before[e]));
    } else {
      keptMin = std::min(keptMin, std::fabs(w[e]));
    }
  }
  EXPECT_GT(keptMin, 0.0f);
  EXPECT_LE(prunedMax, keptMin);
  step(a.m); // after the one shot nothing more is pruned
  EXPECT_EQ(values(a.m, "w_mask"), mask);
  EXPECT_EQ(zeros(values(a.m, "w")), kN / 2);
}

TEST(Prune, StructuredZeroesWholeRowsByNorm) {
  for (int norm : {1, 2}) {
    Desc d = maskedDesc(makeOpt(SPARSEC_OPT_SGD, 1e-6), 1, kN,
                        SPARSEC_PRUNE_STRUCTURED);
    d.params[1].prune_norm = norm;
    d.link();
    Model a;
    ASSERT_EQ(sparsec_create(&d.desc, 1, &a.m), SPARSEC_OK)
        << sparsec_last_error();
    // Row norms chosen so that L1 and L2 disagree: L1 (25, 5.5, 3, 0.5)
    // prunes rows 2 and 3, L2 (11.2, 2.5, 3, 0.22) rows 1 and 3.
    float *w;
    int64_t n;
    ASSERT_EQ(sparsec_param_values(a.m, "w", &w, &n), SPARSEC_OK);
    const float rows[kRows][kCols] = {{5, 5, 5, 5, 5},
                                      {1, 1, 1, 1, 1.5f},
                                      {3, 0, 0, 0, 0},
                                      {0.1f, 0.1f, 0.1f, 0.1f, 0.1f}};
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < kCols; ++c)
        w[r * kCols + c] = rows[r][c];
    for (int t = 0; t < 3; ++t)
      step(a.m);
    std::vector<float> mask = values(a.m, "w_mask"), wv = values(a.m, "w");
    int pruned[2] = {norm == 1 ? 2 : 1, 3};
    for (int r = 0; r < kRows; ++r) {
      bool gone = r == pruned[0] || r == pruned[1];
      for (int c = 0; c < kCols; ++c) {
        EXPECT_EQ(mask[r * kCols + c], gone ? 0.0f : 1.0f)
            << "norm " << norm << " row " << r;
        if (gone)
          EXPECT_EQ(wv[r * kCols + c], 0.0f);
      }
    }
  }
}

TEST(Prune, GlobalRanksMasksTogether) {
  Desc d = maskedDesc(makeOpt(SPARSEC_OPT_SGD, 1e-6), 2, kN,
                      SPARSEC_PRUNE_MAGNITUDE, 1);
  Model a;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &a.m), SPARSEC_OK)
      << sparsec_last_error();
  float *w, *v;
  int64_t n;
  ASSERT_EQ(sparsec_param_values(a.m, "w", &w, &n), SPARSEC_OK);
  ASSERT_EQ(sparsec_param_values(a.m, "v", &v, &n), SPARSEC_OK);
  for (int e = 0; e < kN; ++e) {
    w[e] = 0.5f + static_cast<float>(e); // all larger than v's
    v[e] = 0.01f * static_cast<float>(e + 1);
  }
  for (int t = 0; t < 3; ++t)
    step(a.m);
  // 20 of 40 zeros, all in v.
  EXPECT_EQ(zeros(values(a.m, "w_mask")), 0);
  EXPECT_EQ(zeros(values(a.m, "v_mask")), kN);
}

TEST(Prune, LoadZeroesMaskedWeights) {
  Desc d = maskedDesc(makeOpt(SPARSEC_OPT_SGD, 0.1), 1, 6);
  Model a;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &a.m), SPARSEC_OK);
  TempDir dir;
  std::string path = dir.path + "/m.safetensors";
  float *w;
  int64_t n;
  ASSERT_EQ(sparsec_param_values(a.m, "w", &w, &n), SPARSEC_OK);
  for (int e = 0; e < kN; ++e)
    w[e] = 1.0f; // a checkpoint with weights under the mask's zeros
  ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK);
  ASSERT_EQ(sparsec_load(a.m, path.c_str()), SPARSEC_OK)
      << sparsec_last_error();
  std::vector<float> mask = values(a.m, "w_mask"), wv = values(a.m, "w");
  for (int e = 0; e < kN; ++e)
    EXPECT_EQ(wv[e], mask[e]);
}

TEST(Prune, InvalidMaskFieldsRejected) {
  auto rejects = [](Desc &d, const char *what) {
    d.link();
    sparsec_model *m = nullptr;
    EXPECT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_ERR_INVALID_ARG) << what;
    EXPECT_EQ(m, nullptr);
  };
  sparsec_optimizer_desc sgd = makeOpt(SPARSEC_OPT_SGD, 0.1);
  Desc d = maskedDesc(sgd, 1, 5);
  d.params[1].mask_of = 0; // a rank-2 buffer that is no mask
  rejects(d, "mask_of 0");
  d = maskedDesc(sgd, 1, 5);
  d.params[1].mask_of = 2; // itself
  rejects(d, "mask_of self");
  d = maskedDesc(sgd, 1, 0);
  rejects(d, "no ones");
  d = maskedDesc(sgd, 1, 5, SPARSEC_PRUNE_GRADUAL);
  d.params[1].prune_final = 1.0;
  rejects(d, "final 1");
  d = maskedDesc(sgd, 1, 5, SPARSEC_PRUNE_STRUCTURED);
  d.params[1].prune_norm = 3;
  rejects(d, "norm 3");
  d = maskedDesc(sgd, 2, 5, SPARSEC_PRUNE_MAGNITUDE, 1);
  d.params[3].prune_begin = 4;
  rejects(d, "global schedules differ");
  d = maskedDesc(sgd, 1, 5);
  d.params[0].prune = SPARSEC_PRUNE_MAGNITUDE; // not a mask
  rejects(d, "prune on a weight");
}

} // namespace
