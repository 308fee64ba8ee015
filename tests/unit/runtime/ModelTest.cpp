//===- ModelTest.cpp - create, introspection, forward, train_step ---------===//
//
// Descriptor validation at create, the introspection API, the `bufs` layout
// handed to kernels, and every user error of forward/train_step: each must
// return its status with a precise message and leave the parameters,
// optimizer state and step count byte-identical.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <thread>

using namespace sparsec_test;

namespace {

struct ModelPtr {
  sparsec_model *m = nullptr;
  ~ModelPtr() { sparsec_destroy(m); }
};

int createStatus(Desc &d) {
  d.link();
  sparsec_model *m = reinterpret_cast<sparsec_model *>(0x1);
  int rc = sparsec_create(&d.desc, 1, &m);
  if (rc != SPARSEC_OK)
    EXPECT_EQ(m, nullptr) << "create must clear *out on failure";
  sparsec_destroy(m);
  return rc;
}

std::string lastError() { return sparsec_last_error(); }

TEST(Status, Names) {
  EXPECT_STREQ(sparsec_status_name(SPARSEC_OK), "SPARSEC_OK");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_NULL), "SPARSEC_ERR_NULL");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_INVALID_ARG),
               "SPARSEC_ERR_INVALID_ARG");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_OUT_OF_RANGE),
               "SPARSEC_ERR_OUT_OF_RANGE");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_NONFINITE),
               "SPARSEC_ERR_NONFINITE");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_IO), "SPARSEC_ERR_IO");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_FORMAT), "SPARSEC_ERR_FORMAT");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_NOMEM), "SPARSEC_ERR_NOMEM");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_KERNEL), "SPARSEC_ERR_KERNEL");
  EXPECT_STREQ(sparsec_status_name(SPARSEC_ERR_ABI), "SPARSEC_ERR_ABI");
  EXPECT_STREQ(sparsec_status_name(32), "SPARSEC_ERR_CUDA");
  EXPECT_STREQ(sparsec_status_name(99), "SPARSEC_ERR_UNKNOWN");
}

TEST(Status, MessagesAreThreadLocal) {
  Desc d = linearDesc(false);
  d.desc.abi_version = 1; // the descriptor of an older compiler
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_ERR_ABI);
  std::string mine = lastError();
  EXPECT_NE(mine.find("ABI version 1, this runtime implements " +
                      std::to_string(SPARSEC_ABI_VERSION)),
            std::string::npos)
      << mine;
  std::string other = "unset";
  std::thread t([&] {
    other = sparsec_last_error();
    sparsec_set_lr(nullptr, 1.0);
  });
  t.join();
  EXPECT_EQ(other, "");
  EXPECT_EQ(lastError(), mine); // the other thread's failure did not leak here
  // A successful call resets the message.
  ModelPtr ok;
  Desc good = linearDesc(false);
  ASSERT_EQ(sparsec_create(&good.desc, 1, &ok.m), SPARSEC_OK);
  EXPECT_EQ(lastError(), "");
}

TEST(Create, RejectsBadDescriptors) {
  sparsec_model *m = nullptr;
  Desc d = linearDesc(false);
  EXPECT_EQ(sparsec_create(nullptr, 1, &m), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_create(&d.desc, 1, nullptr), SPARSEC_ERR_NULL);
  {
    Desc x = linearDesc(false);
    x.desc.abi_version = 0;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_ABI);
  }
  {
    Desc x = linearDesc(false);
    x.desc.name = nullptr;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_NULL);
  }
  {
    Desc x = linearDesc(false);
    x.params[1].name = "fc.weight";
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
    EXPECT_NE(lastError().find("duplicate parameter name 'fc.weight'"),
              std::string::npos);
  }
  {
    Desc x = linearDesc(true, makeSgd(0.1), 25); // 4 x 6 has 24 positions
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false);
    x.params[0].nnz = 3; // dense nnz must be numel
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(
        false, makeSgd(0.1, 0.9, 0.1, 0, true)); // nesterov + dampening
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
    EXPECT_NE(lastError().find("Nesterov"), std::string::npos);
  }
  {
    Desc x = linearDesc(
        false, makeSgd(0.1, 0.0, 0.0, 0, true)); // nesterov without momentum
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false, makeSgd(-1.0));
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x =
        linearDesc(false, makeSgd(std::numeric_limits<double>::quiet_NaN()));
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false);
    x.params[0].init_a = 0; // fan-in must be positive
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false);
    x.params[0].dims[1] = -1;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    // More than 2^31 elements: refused with NOMEM, nothing allocated.
    Desc x = linearDesc(false);
    x.params[0].dims[0] = 1 << 20;
    x.params[0].dims[1] = 1 << 12;
    x.params[0].nnz = (int64_t)1 << 32;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_NOMEM);
    EXPECT_NE(lastError().find("fc.weight"), std::string::npos);
  }
  {
    // dims whose product overflows int64.
    Desc x = linearDesc(false);
    x.params[0].dims[0] = (int64_t)1 << 40;
    x.params[0].dims[1] = (int64_t)1 << 40;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_NOMEM);
  }
  {
    Desc x = embedDesc(SPARSEC_I64);
    x.params[0].ids_input = 1; // 'y' is a float target
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = embedDesc(SPARSEC_I64);
    x.params[0].dims[0] = 0;
    x.params[0].nnz = 0;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
    EXPECT_NE(lastError().find("embedding 'emb.weight' has no rows"),
              std::string::npos);
  }
  {
    Desc x = embedDesc(SPARSEC_I64);
    x.params[0].ids_input = 5;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false);
    x.inputs[0].rank = 5;
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
  {
    Desc x = linearDesc(false);
    x.inputs[0].id_bound = 10; // bound on a float input
    EXPECT_EQ(createStatus(x), SPARSEC_ERR_INVALID_ARG);
  }
}

TEST(Create, DescriptorIsCopied) {
  ModelPtr m;
  {
    Desc d = linearDesc(false);
    std::string name = "fc.weight";
    d.params[0].name = name.c_str();
    ASSERT_EQ(sparsec_create(&d.desc, 3, &m.m), SPARSEC_OK);
    name.assign("XXXXXXXXX");
  } // descriptor and names gone
  int32_t idx = -1;
  EXPECT_EQ(sparsec_param_index(m.m, "fc.weight", &idx), SPARSEC_OK);
  EXPECT_EQ(idx, 0);
}

TEST(Introspection, InfoIndexValuesCsrGrad) {
  Desc d = linearDesc(true, makeSgd(0.1, 0.9), 10);
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 5, &m.m), SPARSEC_OK);
  int32_t n = 0;
  ASSERT_EQ(sparsec_num_params(m.m, &n), SPARSEC_OK);
  EXPECT_EQ(n, 2);
  sparsec_param_info info;
  ASSERT_EQ(sparsec_param_info_at(m.m, 0, &info), SPARSEC_OK);
  EXPECT_STREQ(info.name, "fc.weight");
  EXPECT_EQ(info.layout, SPARSEC_LAYOUT_CSR);
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.dims[0], kOut);
  EXPECT_EQ(info.dims[1], kIn);
  EXPECT_EQ(info.nnz, 10);
  EXPECT_DOUBLE_EQ(info.sparsity, 1.0 - 10.0 / 24.0);
  ASSERT_EQ(sparsec_param_info_at(m.m, 1, &info), SPARSEC_OK);
  EXPECT_STREQ(info.name, "fc.bias");
  EXPECT_EQ(info.nnz, kOut);
  EXPECT_DOUBLE_EQ(info.sparsity, 0.0);
  EXPECT_EQ(sparsec_param_info_at(m.m, 2, &info), SPARSEC_ERR_INVALID_ARG);
  EXPECT_EQ(sparsec_param_info_at(m.m, -1, &info), SPARSEC_ERR_INVALID_ARG);
  EXPECT_EQ(sparsec_param_info_at(m.m, 0, nullptr), SPARSEC_ERR_NULL);

  int32_t idx = -1;
  EXPECT_EQ(sparsec_param_index(m.m, "fc.bias", &idx), SPARSEC_OK);
  EXPECT_EQ(idx, 1);
  EXPECT_EQ(sparsec_param_index(m.m, "nope", &idx), SPARSEC_ERR_INVALID_ARG);
  EXPECT_NE(lastError().find("no parameter 'nope'"), std::string::npos);
  EXPECT_EQ(sparsec_param_index(m.m, nullptr, &idx), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_param_index(nullptr, "fc.bias", &idx), SPARSEC_ERR_NULL);

  // Zero-copy: writes through the pointer change the parameter.
  float *v = nullptr;
  int64_t count = 0;
  ASSERT_EQ(sparsec_param_values(m.m, "fc.bias", &v, &count), SPARSEC_OK);
  ASSERT_EQ(count, kOut);
  v[2] = 42.0f;
  EXPECT_EQ(values(m.m, "fc.bias")[2], 42.0f);

  const int32_t *pos = nullptr, *crd = nullptr;
  ASSERT_EQ(sparsec_param_csr(m.m, "fc.weight", &pos, &crd), SPARSEC_OK);
  EXPECT_EQ(pos[0], 0);
  EXPECT_EQ(pos[kOut], 10);
  EXPECT_EQ(sparsec_param_csr(m.m, "fc.bias", &pos, &crd),
            SPARSEC_ERR_INVALID_ARG);

  const float *g = nullptr;
  ASSERT_EQ(sparsec_param_grad(m.m, "fc.weight", &g, &count), SPARSEC_OK);
  EXPECT_EQ(count, 10);
  for (int64_t i = 0; i < count; ++i)
    EXPECT_EQ(g[i], 0.0f);
  int64_t steps = -1;
  ASSERT_EQ(sparsec_step_count(m.m, &steps), SPARSEC_OK);
  EXPECT_EQ(steps, 0);
  double lr = 0;
  ASSERT_EQ(sparsec_get_lr(m.m, &lr), SPARSEC_OK);
  EXPECT_EQ(lr, 0.1);
  EXPECT_EQ(sparsec_set_lr(m.m, -0.5), SPARSEC_ERR_INVALID_ARG);
  EXPECT_EQ(sparsec_set_lr(m.m, std::numeric_limits<double>::infinity()),
            SPARSEC_ERR_INVALID_ARG);
  ASSERT_EQ(sparsec_get_lr(m.m, &lr), SPARSEC_OK);
  EXPECT_EQ(lr, 0.1);
}

TEST(Forward, BufsLayoutAndOutput) {
  Desc d = linearDesc(true, makeSgd(0.1), 24); // full pattern: equals dense
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &m.m), SPARSEC_OK);
  const int64_t batch = 3;
  std::vector<float> x(batch * kIn), out(batch * kOut, -1);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.5f * (float)i - 2.0f;
  const void *in[1] = {x.data()};
  ASSERT_EQ(sparsec_forward(m.m, batch, in, out.data()), SPARSEC_OK)
      << lastError();
  const auto &bufs = lastBufs();
  ASSERT_EQ(bufs.size(), 6u);
  const int32_t *pos, *crd;
  ASSERT_EQ(sparsec_param_csr(m.m, "fc.weight", &pos, &crd), SPARSEC_OK);
  float *w, *b;
  int64_t n;
  sparsec_param_values(m.m, "fc.weight", &w, &n);
  sparsec_param_values(m.m, "fc.bias", &b, &n);
  EXPECT_EQ(bufs[0], (void *)x.data());
  EXPECT_EQ(bufs[1], (const void *)pos);
  EXPECT_EQ(bufs[2], (const void *)crd);
  EXPECT_EQ(bufs[3], (void *)w);
  EXPECT_EQ(bufs[4], (void *)b);
  EXPECT_EQ(bufs[5], (void *)out.data());
  EXPECT_EQ(lastBatch(), batch);
  for (int64_t s = 0; s < batch; ++s)
    for (int o = 0; o < kOut; ++o) {
      float want = b[o];
      for (int i = 0; i < kIn; ++i)
        want += w[o * kIn + i] * x[s * kIn + i];
      EXPECT_FLOAT_EQ(out[s * kOut + o], want);
    }
}

TEST(TrainStep, BufsLayoutAndLossDecreases) {
  Desc d = linearDesc(false, makeSgd(0.2));
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &m.m), SPARSEC_OK);
  const int64_t batch = 8;
  std::vector<float> x(batch * kIn), y(batch * kOut);
  for (int64_t s = 0; s < batch; ++s) {
    for (int i = 0; i < kIn; ++i)
      x[s * kIn + i] = std::sin(1.0f + (float)(s * kIn + i));
    for (int o = 0; o < kOut; ++o)
      y[s * kOut + o] = 0.5f * x[s * kIn + o] - x[s * kIn + o + 1];
  }
  const void *in[2] = {x.data(), y.data()};
  float first = 0, loss = 0;
  ASSERT_EQ(sparsec_train_step(m.m, batch, in, &first), SPARSEC_OK);
  const auto &bufs = lastBufs();
  ASSERT_EQ(bufs.size(), 7u);
  float *w, *b;
  int64_t n;
  const float *gw, *gb;
  sparsec_param_values(m.m, "fc.weight", &w, &n);
  sparsec_param_values(m.m, "fc.bias", &b, &n);
  sparsec_param_grad(m.m, "fc.weight", &gw, &n);
  sparsec_param_grad(m.m, "fc.bias", &gb, &n);
  EXPECT_EQ(bufs[0], (void *)x.data());
  EXPECT_EQ(bufs[1], (void *)y.data());
  EXPECT_EQ(bufs[2], (void *)w);
  EXPECT_EQ(bufs[3], (void *)b);
  EXPECT_EQ(bufs[4], (const void *)gw);
  EXPECT_EQ(bufs[5], (const void *)gb);
  for (int step = 0; step < 200; ++step)
    ASSERT_EQ(sparsec_train_step(m.m, batch, in, &loss), SPARSEC_OK);
  EXPECT_LT(loss, 0.05f * first);
  int64_t steps;
  sparsec_step_count(m.m, &steps);
  EXPECT_EQ(steps, 201);
}

/// Runs `call` and checks status, message and that nothing changed.
template <typename F>
void expectRejected(sparsec_model *m, int status, const std::string &msg,
                    F call) {
  uint64_t before = hashModel(m);
  int rc = call();
  EXPECT_EQ(rc, status) << sparsec_status_name(rc) << ": " << lastError();
  if (!msg.empty())
    EXPECT_NE(lastError().find(msg), std::string::npos)
        << "message: " << lastError();
  EXPECT_EQ(hashModel(m), before) << "state changed by a rejected call";
}

TEST(Validation, LinearModelErrors) {
  Desc d = linearDesc(false, makeSgd(0.1, 0.9, 0.0, 0.01));
  ModelPtr mp;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK);
  sparsec_model *m = mp.m;
  const int64_t batch = 4;
  std::vector<float> x(batch * kIn, 0.5f), y(batch * kOut, 1.0f),
      out(batch * kOut);
  const void *in[2] = {x.data(), y.data()};
  float loss = 0;
  // One real step so that momentum state exists and is covered by the hash.
  ASSERT_EQ(sparsec_train_step(m, batch, in, &loss), SPARSEC_OK);

  expectRejected(m, SPARSEC_ERR_NULL, "model is NULL",
                 [&] { return sparsec_train_step(nullptr, batch, in, &loss); });
  expectRejected(m, SPARSEC_ERR_NULL, "inputs is NULL",
                 [&] { return sparsec_train_step(m, batch, nullptr, &loss); });
  expectRejected(m, SPARSEC_ERR_NULL, "loss is NULL",
                 [&] { return sparsec_train_step(m, batch, in, nullptr); });
  expectRejected(m, SPARSEC_ERR_NULL, "output is NULL",
                 [&] { return sparsec_forward(m, batch, in, nullptr); });
  const void *nullY[2] = {x.data(), nullptr};
  expectRejected(m, SPARSEC_ERR_NULL, "input 'y' is NULL",
                 [&] { return sparsec_train_step(m, batch, nullY, &loss); });
  expectRejected(m, SPARSEC_ERR_INVALID_ARG, "batch must be positive, got 0",
                 [&] { return sparsec_train_step(m, 0, in, &loss); });
  expectRejected(m, SPARSEC_ERR_INVALID_ARG, "batch must be positive, got -3",
                 [&] { return sparsec_forward(m, -3, in, out.data()); });
  expectRejected(m, SPARSEC_ERR_INVALID_ARG, "too large", [&] {
    return sparsec_train_step(m, INT64_MAX / 2, in, &loss);
  });
  expectRejected(m, SPARSEC_ERR_INVALID_ARG, "too large", [&] {
    return sparsec_forward(m, (int64_t)1 << 61, in, out.data());
  });

  x[2 * kIn + 3] = NAN;
  expectRejected(m, SPARSEC_ERR_NONFINITE,
                 "train_step: input 'x' sample 2 has a non-finite value",
                 [&] { return sparsec_train_step(m, batch, in, &loss); });
  expectRejected(m, SPARSEC_ERR_NONFINITE, "forward: input 'x' sample 2",
                 [&] { return sparsec_forward(m, batch, in, out.data()); });
  x[2 * kIn + 3] = 0.5f;
  y[3 * kOut] = -INFINITY;
  expectRejected(m, SPARSEC_ERR_NONFINITE,
                 "input 'y' sample 3 has a non-finite value (-inf)",
                 [&] { return sparsec_train_step(m, batch, in, &loss); });
  // forward does not read targets.
  EXPECT_EQ(sparsec_forward(m, batch, in, out.data()), SPARSEC_OK);
  y[3 * kOut] = 1.0f;

  kernelMode() = KernelMode::NanLoss;
  expectRejected(m, SPARSEC_ERR_NONFINITE, "loss is not finite",
                 [&] { return sparsec_train_step(m, batch, in, &loss); });
  EXPECT_TRUE(std::isnan(loss));
  kernelMode() = KernelMode::InfLoss;
  expectRejected(m, SPARSEC_ERR_NONFINITE, "optimizer step skipped",
                 [&] { return sparsec_train_step(m, batch, in, &loss); });
  kernelMode() = KernelMode::Fail;
  expectRejected(m, SPARSEC_ERR_KERNEL, "failed with code 3",
                 [&] { return sparsec_train_step(m, batch, in, &loss); });
  expectRejected(m, SPARSEC_ERR_KERNEL, "failed with code 7",
                 [&] { return sparsec_forward(m, batch, in, out.data()); });
  kernelMode() = KernelMode::Normal;

  int64_t steps = 0;
  sparsec_step_count(m, &steps);
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(sparsec_train_step(m, batch, in, &loss), SPARSEC_OK);
  sparsec_step_count(m, &steps);
  EXPECT_EQ(steps, 2);
}

TEST(Validation, IdsOutOfRange) {
  Desc d = embedDesc(SPARSEC_I64, makeSgd(0.1, 0.9));
  ModelPtr mp;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK);
  sparsec_model *m = mp.m;
  std::vector<int64_t> ids = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> y = {1, 2, 3, 4}, out(4);
  const void *in[2] = {ids.data(), y.data()};
  float loss;
  ASSERT_EQ(sparsec_train_step(m, 4, in, &loss), SPARSEC_OK);
  ids[7] = 12;
  expectRejected(m, SPARSEC_ERR_OUT_OF_RANGE,
                 "train_step: input 'ids' sample 3 has id 12 outside [0, 10)",
                 [&] { return sparsec_train_step(m, 4, in, &loss); });
  expectRejected(m, SPARSEC_ERR_OUT_OF_RANGE,
                 "forward: input 'ids' sample 3 has id 12 outside [0, 10)",
                 [&] { return sparsec_forward(m, 4, in, out.data()); });
  ids[7] = 8;
  ids[0] = -1;
  expectRejected(m, SPARSEC_ERR_OUT_OF_RANGE,
                 "sample 0 has id -1 outside [0, 10)",
                 [&] { return sparsec_train_step(m, 4, in, &loss); });
  ids[0] = INT64_MAX;
  expectRejected(m, SPARSEC_ERR_OUT_OF_RANGE, "outside [0, 10)",
                 [&] { return sparsec_train_step(m, 4, in, &loss); });
  ids[0] = 1;
  // Only the first `batch` samples are read.
  ids[6] = 99;
  EXPECT_EQ(sparsec_train_step(m, 3, in, &loss), SPARSEC_OK);
}

TEST(Validation, EmbeddingBoundIsClampedToTheTable) {
  // The descriptor's id_bound (0 = none, or larger than the table) never
  // lets an id outside the embedding table through.
  for (int64_t bound : {0, 1000}) {
    Desc d = embedDesc(SPARSEC_I32, makeSgd(0.1), bound);
    ModelPtr mp;
    ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK);
    std::vector<int32_t> ids = {1, 10};
    std::vector<float> y = {1};
    const void *in[2] = {ids.data(), y.data()};
    float loss;
    expectRejected(mp.m, SPARSEC_ERR_OUT_OF_RANGE,
                   "sample 0 has id 10 outside [0, 10)",
                   [&] { return sparsec_train_step(mp.m, 1, in, &loss); });
  }
}

TEST(Validation, FiniteCheckOnF64AndNoBatchDim) {
  Desc d = linearDesc(false);
  d.inputs.push_back(makeInput("scale", SPARSEC_F64, {3}));
  d.link();
  // The kernels ignore the extra input; only validation reads it. Targets
  // follow the declaration order, so 'scale' comes last.
  d.desc.forward = nullptr;
  d.desc.train = nullptr;
  ModelPtr mp;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK) << lastError();
  std::vector<float> x(kIn, 1), y(kOut, 1), out(kOut);
  std::vector<double> scale = {1, 2, std::numeric_limits<double>::infinity()};
  const void *in[3] = {x.data(), y.data(), scale.data()};
  float loss;
  expectRejected(mp.m, SPARSEC_ERR_NONFINITE,
                 "input 'scale' element 2 has a non-finite value (inf)",
                 [&] { return sparsec_train_step(mp.m, 1, in, &loss); });
  scale[2] = 3;
  expectRejected(mp.m, SPARSEC_ERR_INVALID_ARG, "has no train kernel",
                 [&] { return sparsec_train_step(mp.m, 1, in, &loss); });
  const void *fin[2] = {x.data(), scale.data()};
  expectRejected(mp.m, SPARSEC_ERR_INVALID_ARG, "has no forward kernel",
                 [&] { return sparsec_forward(mp.m, 1, fin, out.data()); });
}

TEST(Embedding, GradientBufferGrowsWithTheBatch) {
  Desc d = embedDesc(SPARSEC_I32, makeSgd(0.1, 0.5, 0.1, 0.01));
  ModelPtr mp;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK);
  float loss;
  for (int64_t batch : {1, 3, 64, 2, 1000}) {
    std::vector<int32_t> ids(batch * kBag);
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = (int32_t)((i * 7) % kRows);
    std::vector<float> y(batch, 0.5f);
    const void *in[2] = {ids.data(), y.data()};
    ASSERT_EQ(sparsec_train_step(mp.m, batch, in, &loss), SPARSEC_OK)
        << lastError();
    const float *g;
    int64_t count;
    ASSERT_EQ(sparsec_param_grad(mp.m, "emb.weight", &g, &count), SPARSEC_OK);
    EXPECT_EQ(count, batch * kBag * kDim);
    EXPECT_EQ(lastBufs()[3], (const void *)g);
  }
  // Embedding gradients are empty before the first step of a fresh model.
  ModelPtr fresh;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &fresh.m), SPARSEC_OK);
  const float *g;
  int64_t count = -1;
  ASSERT_EQ(sparsec_param_grad(fresh.m, "emb.weight", &g, &count), SPARSEC_OK);
  EXPECT_EQ(count, 0);
}

TEST(Embedding, ForwardReadsIdsAndTable) {
  Desc d = embedDesc(SPARSEC_I64);
  ModelPtr mp;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &mp.m), SPARSEC_OK);
  std::vector<int64_t> ids = {0, 9, 3, 3};
  std::vector<float> out(2);
  const void *in[1] = {ids.data()};
  ASSERT_EQ(sparsec_forward(mp.m, 2, in, out.data()), SPARSEC_OK);
  std::vector<float> e = values(mp.m, "emb.weight");
  float want0 = 0, want1 = 0;
  for (int c = 0; c < kDim; ++c) {
    want0 += e[0 * kDim + c];
    want1 += e[3 * kDim + c];
  }
  for (int c = 0; c < kDim; ++c)
    want0 += e[9 * kDim + c];
  for (int c = 0; c < kDim; ++c)
    want1 += e[3 * kDim + c];
  EXPECT_NEAR(out[0], want0, 1e-5);
  EXPECT_NEAR(out[1], want1, 1e-5);
}

} // namespace
