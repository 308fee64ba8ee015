//===- BufferTest.cpp - Layer state parameters (SPARSEC_LAYOUT_BUFFER) ----===//
//
// A BUFFER (ABI 4; kwinners duty cycles) is rank 1 and not trained: the
// train kernel's "gradient" slot carries its next value, which a successful
// step stores as is — no optimizer arithmetic or state, no clipping, and a
// failed step leaves it unchanged.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace sparsec_test;

namespace {

/// bufs: x, w[2], buf[3], grad w[2], next buf[3], loss.
int bufferTrain(void *const *bufs, int64_t batch) {
  if (kernelMode() == KernelMode::Fail)
    return 3;
  float *gw = static_cast<float *>(bufs[3]),
        *next = static_cast<float *>(bufs[4]);
  gw[0] = 3.0f;
  gw[1] = 4.0f;
  const float *cur = static_cast<const float *>(bufs[2]);
  for (int i = 0; i < 3; ++i)
    next[i] = cur[i] + static_cast<float>(i + 1) * 0.5f;
  *static_cast<float *>(bufs[5]) =
      kernelMode() == KernelMode::NanLoss ? NAN : 1.0f;
  return 0;
}

Desc bufferDesc(sparsec_optimizer_desc opt) {
  Desc d;
  d.inputs = {makeInput("x", SPARSEC_F32, {-1, 1})};
  d.params = {
      makeParam("w", SPARSEC_LAYOUT_DENSE, {2}, 2, SPARSEC_INIT_ZEROS, 0),
      makeParam("kw.duty_cycle", SPARSEC_LAYOUT_BUFFER, {3}, 3,
                SPARSEC_INIT_ZEROS, 0)};
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = "Buf";
  d.desc.output_rank = 1;
  d.desc.output_dims[0] = -1;
  d.desc.optimizer = opt;
  d.desc.train = &bufferTrain;
  d.link();
  return d;
}

struct Model {
  sparsec_model *m = nullptr;
  ~Model() { sparsec_destroy(m); }
};

TEST(Buffer, NextValueStoredWithoutOptimizerOrClipping) {
  sparsec_optimizer_desc opt = makeOpt(SPARSEC_OPT_ADAM, 0.1);
  opt.max_grad_norm = 1.0; // the w gradient (norm 5) is clipped to 1
  Desc d = bufferDesc(opt);
  Model a;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &a.m), SPARSEC_OK)
      << sparsec_last_error();
  EXPECT_EQ(values(a.m, "kw.duty_cycle"), (std::vector<float>{0, 0, 0}));
  float x[2] = {1, 2}, loss;
  const void *in[1] = {x};
  for (int step = 1; step <= 3; ++step) {
    ASSERT_EQ(sparsec_train_step(a.m, 2, in, &loss), SPARSEC_OK);
    const float s = 0.5f * static_cast<float>(step);
    EXPECT_EQ(values(a.m, "kw.duty_cycle"),
              (std::vector<float>{s, 2 * s, 3 * s}));
  }
  // w moved by Adam on the clipped gradient (its first step is -lr sign(g)).
  EXPECT_NEAR(values(a.m, "w")[0], -0.3f, 1e-5);
  sparsec_param_info info;
  ASSERT_EQ(sparsec_param_info_at(a.m, 1, &info), SPARSEC_OK);
  EXPECT_EQ(info.layout, SPARSEC_LAYOUT_BUFFER);
  EXPECT_EQ(info.nnz, 3);
}

TEST(Buffer, FailedStepKeepsIt) {
  Desc d = bufferDesc(makeSgd(0.1));
  Model a;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &a.m), SPARSEC_OK);
  float x[1] = {1}, loss;
  const void *in[1] = {x};
  kernelMode() = KernelMode::NanLoss;
  EXPECT_EQ(sparsec_train_step(a.m, 1, in, &loss), SPARSEC_ERR_NONFINITE);
  kernelMode() = KernelMode::Normal;
  EXPECT_EQ(values(a.m, "kw.duty_cycle"), (std::vector<float>{0, 0, 0}));
}

TEST(Buffer, MustBeRankOne) {
  Desc d = bufferDesc(makeSgd(0.1));
  d.params[1] = makeParam("kw.duty_cycle", SPARSEC_LAYOUT_BUFFER, {3, 1}, 3,
                          SPARSEC_INIT_ZEROS, 0);
  d.link();
  sparsec_model *m = nullptr;
  EXPECT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_ERR_INVALID_ARG);
  EXPECT_NE(std::string(sparsec_last_error()).find("rank"), std::string::npos)
      << sparsec_last_error();
}

} // namespace
