//===- DeviceTest.cpp - sparsec_create_on and device-resident models ------===//
//
// sparsec_create_on: the device names, every refusal (unknown device, a
// library without CUDA kernels), and
// the device path of the runtime (device.c) driven through the host
// emulator (`emulated = 1`: device memory is host memory, the kernels are
// the test's): it must train exactly as the CPU path, read through to the
// device in the accessors, upload what the host writes, and leave the model
// unchanged on a rejected call.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include "sparsec/cuda.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace sparsec_test;

namespace {

struct ModelPtr {
  sparsec_model *m = nullptr;
  ~ModelPtr() { sparsec_destroy(m); }
};

std::string lastError() { return sparsec_last_error(); }

sparsec_device_kernels emulated(const Desc &d) {
  return {d.desc.forward, d.desc.train, 1};
}

/// Status of create_on "cuda" with the emulated kernels of `d`; *out must
/// stay NULL on failure.
int createCuda(Desc &d) {
  d.link();
  sparsec_device_kernels k = emulated(d);
  sparsec_model *m = reinterpret_cast<sparsec_model *>(0x1);
  int rc = sparsec_create_on(&d.desc, &k, 1, "cuda", &m);
  if (rc != SPARSEC_OK)
    EXPECT_EQ(m, nullptr);
  sparsec_destroy(rc == SPARSEC_OK ? m : nullptr);
  return rc;
}

std::vector<float> values(sparsec_model *m, const char *name) {
  float *v = nullptr;
  int64_t n = 0;
  EXPECT_EQ(sparsec_param_values(m, name, &v, &n), SPARSEC_OK);
  return std::vector<float>(v, v + n);
}

std::vector<float> grad(sparsec_model *m, const char *name) {
  const float *g = nullptr;
  int64_t n = 0;
  EXPECT_EQ(sparsec_param_grad(m, name, &g, &n), SPARSEC_OK);
  return std::vector<float>(g, g + n);
}

TEST(Device, CreateOnCpuIsCreate) {
  Desc d = linearDesc(true);
  ModelPtr a, b;
  ASSERT_EQ(sparsec_create_on(&d.desc, nullptr, 5, "cpu", &a.m), SPARSEC_OK);
  ASSERT_EQ(sparsec_create(&d.desc, 5, &b.m), SPARSEC_OK);
  EXPECT_EQ(hashModel(a.m), hashModel(b.m));
  const char *where = nullptr;
  ASSERT_EQ(sparsec_model_device(a.m, &where), SPARSEC_OK);
  EXPECT_STREQ(where, "cpu");
  EXPECT_EQ(sparsec_model_device(nullptr, &where), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_model_device(a.m, nullptr), SPARSEC_ERR_NULL);
}

TEST(Device, Refusals) {
  Desc d = linearDesc(false);
  sparsec_model *m = reinterpret_cast<sparsec_model *>(0x1);
  EXPECT_EQ(sparsec_create_on(&d.desc, nullptr, 1, nullptr, &m),
            SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_create_on(&d.desc, nullptr, 1, "cpu", nullptr),
            SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_create_on(&d.desc, nullptr, 1, "tpu", &m),
            SPARSEC_ERR_INVALID_ARG);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(lastError().find("unknown device 'tpu' (expected cpu or cuda)"),
            std::string::npos);
  // A library compiled for the CPU only.
  m = reinterpret_cast<sparsec_model *>(0x1);
  EXPECT_EQ(sparsec_create_on(&d.desc, nullptr, 1, "cuda", &m),
            SPARSEC_ERR_CUDA);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(lastError().find("compiled without CUDA kernels; compile it with "
                             "sparsec --target=cpu,cuda"),
            std::string::npos)
      << lastError();
  // Every layout and option lives on the device (dynamic sparsity too: its
  // pattern updates run on the host copy).
  Desc set = linearDesc(true);
  set.params[0].dynamic = SPARSEC_DYNAMIC_SET;
  set.params[0].delta_t = 2;
  set.params[0].t_end = 10;
  set.params[0].drop_fraction = 0.3;
  EXPECT_EQ(createCuda(set), SPARSEC_OK) << lastError();
}

/// Trains a CPU and an emulated-device model from one seed on the same
/// batches; both run the same kernels and step code, so every bit agrees.
void expectSameTraining(bool csr, sparsec_optimizer_desc opt) {
  Desc d = linearDesc(csr, opt);
  sparsec_device_kernels k = emulated(d);
  ModelPtr cpu, dev;
  ASSERT_EQ(sparsec_create(&d.desc, 3, &cpu.m), SPARSEC_OK);
  ASSERT_EQ(sparsec_create_on(&d.desc, &k, 3, "cuda", &dev.m), SPARSEC_OK)
      << lastError();
  const char *where = nullptr;
  sparsec_model_device(dev.m, &where);
  EXPECT_STREQ(where, "cuda (emulated on the host)");
  const int64_t batch = 5;
  std::vector<float> x(batch * kIn), y(batch * kOut);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>((i * 7 + step * 3) % 11) / 5.0f - 1.0f;
    for (size_t i = 0; i < y.size(); ++i)
      y[i] = static_cast<float>((i * 5 + step) % 7) / 3.0f - 1.0f;
    const void *in[] = {x.data(), y.data()};
    float lc = 0, ld = 0;
    ASSERT_EQ(sparsec_train_step(cpu.m, batch, in, &lc), SPARSEC_OK);
    ASSERT_EQ(sparsec_train_step(dev.m, batch, in, &ld), SPARSEC_OK)
        << lastError();
    EXPECT_EQ(lc, ld) << "step " << step;
  }
  for (const char *name : {"fc.weight", "fc.bias"}) {
    EXPECT_EQ(values(cpu.m, name), values(dev.m, name)) << name;
    EXPECT_EQ(grad(cpu.m, name), grad(dev.m, name)) << name;
  }
  EXPECT_EQ(hashModel(cpu.m), hashModel(dev.m));
  const void *in[] = {x.data()};
  std::vector<float> oc(batch * kOut), od(batch * kOut);
  ASSERT_EQ(sparsec_forward(cpu.m, batch, in, oc.data()), SPARSEC_OK);
  ASSERT_EQ(sparsec_forward(dev.m, batch, in, od.data()), SPARSEC_OK);
  EXPECT_EQ(oc, od);
}

TEST(Device, EmulatedTrainsLikeTheCpu) {
  expectSameTraining(false, makeSgd(0.1, 0.9));
  // Gradient clipping (a norm small enough that every step clips).
  sparsec_optimizer_desc clipped = makeOpt(SPARSEC_OPT_ADAM, 0.05);
  clipped.max_grad_norm = 0.01;
  expectSameTraining(true, clipped);
  expectSameTraining(true, makeSgd(0.1, 0.9, 0.1, 0.01, false));
  expectSameTraining(true, makeOpt(SPARSEC_OPT_ADAM, 0.05));
  expectSameTraining(false, makeOpt(SPARSEC_OPT_RMSPROP, 0.01));
  expectSameTraining(false, makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1));
  expectSameTraining(true, makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1));
}

/// An embedding model (ids [B, 2] into a 10 x 3 table, padding row 4 when
/// `pad`; `tweak` sets options of the table) on the emulated device against
/// the CPU: the row steps (duplicate ids in a batch, the padding row frozen,
/// rows left out of steps), a forward, a rejected step, catch_up;
/// bit-identical.
void expectSameEmbeddingTraining(
    sparsec_optimizer_desc opt, bool pad,
    void (*tweak)(sparsec_param_desc &) = nullptr) {
  Desc d = embedDesc(SPARSEC_I64, opt);
  if (pad)
    d.params[0].padding_idx = 4;
  if (tweak)
    tweak(d.params[0]);
  d.link();
  sparsec_device_kernels k = emulated(d);
  ModelPtr cpu, dev;
  ASSERT_EQ(sparsec_create(&d.desc, 9, &cpu.m), SPARSEC_OK) << lastError();
  ASSERT_EQ(sparsec_create_on(&d.desc, &k, 9, "cuda", &dev.m), SPARSEC_OK)
      << lastError();
  const int64_t batch = 4;
  std::vector<int64_t> ids(batch * kBag);
  std::vector<float> y(batch);
  for (int step = 0; step < 6; ++step) {
    // Two or three distinct ids per step (repeats, the padding id 4), so
    // rows sit out steps and catch up later.
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = static_cast<int64_t>((i * 3 + step * 7 + i / 5) % 6);
    for (size_t i = 0; i < y.size(); ++i)
      y[i] = static_cast<float>(i + step) / 4.0f - 0.5f;
    const void *in[] = {ids.data(), y.data()};
    float lc = 0, ld = 0;
    if (step == 3) { // a failed step changes nothing on either
      kernelMode() = KernelMode::NanLoss;
      EXPECT_EQ(sparsec_train_step(cpu.m, batch, in, &lc),
                SPARSEC_ERR_NONFINITE);
      EXPECT_EQ(sparsec_train_step(dev.m, batch, in, &ld),
                SPARSEC_ERR_NONFINITE);
      kernelMode() = KernelMode::Normal;
      EXPECT_EQ(hashModel(cpu.m), hashModel(dev.m));
    }
    ASSERT_EQ(sparsec_train_step(cpu.m, batch, in, &lc), SPARSEC_OK);
    ASSERT_EQ(sparsec_train_step(dev.m, batch, in, &ld), SPARSEC_OK)
        << lastError();
    EXPECT_EQ(lc, ld) << "step " << step;
  }
  EXPECT_EQ(values(cpu.m, "emb.weight"), values(dev.m, "emb.weight"));
  EXPECT_EQ(grad(cpu.m, "emb.weight"), grad(dev.m, "emb.weight"));
  EXPECT_EQ(hashModel(cpu.m), hashModel(dev.m));
  const void *in[] = {ids.data()};
  std::vector<float> oc(batch), od(batch);
  ASSERT_EQ(sparsec_forward(cpu.m, batch, in, oc.data()), SPARSEC_OK);
  ASSERT_EQ(sparsec_forward(dev.m, batch, in, od.data()), SPARSEC_OK);
  EXPECT_EQ(oc, od);
  ASSERT_EQ(sparsec_catch_up(cpu.m), SPARSEC_OK);
  ASSERT_EQ(sparsec_catch_up(dev.m), SPARSEC_OK) << lastError();
  EXPECT_EQ(values(cpu.m, "emb.weight"), values(dev.m, "emb.weight"));
  EXPECT_EQ(hashModel(cpu.m), hashModel(dev.m));
}

sparsec_optimizer_desc catchup(sparsec_optimizer_desc o) {
  o.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  return o;
}

TEST(Device, EmulatedEmbeddingsStepLikeTheCpu) {
  expectSameEmbeddingTraining(makeSgd(0.5), false);     // uncoalesced
  expectSameEmbeddingTraining(makeSgd(0.5, 0.9), true); // row flags
  expectSameEmbeddingTraining(makeOpt(SPARSEC_OPT_ADAM, 0.1), true);
  expectSameEmbeddingTraining(makeOpt(SPARSEC_OPT_ADAGRAD, 0.1), false);
  expectSameEmbeddingTraining(makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1), true);
  // sparse = dense: the densified gradient and the dense step.
  sparsec_optimizer_desc denseMomentum = makeSgd(0.5, 0.9);
  denseMomentum.sparse_mode = SPARSEC_SPARSE_DENSE;
  expectSameEmbeddingTraining(denseMomentum, true);
  expectSameEmbeddingTraining(
      makeOpt(SPARSEC_OPT_ADAM, 0.1, SPARSEC_SPARSE_DENSE), false);
}

TEST(Device, EmulatedCatchUpLikeTheCpu) {
  // Every kind of catch-up map: decay only, SGD momentum (first step of a
  // row and later ones, nesterov), RMSprop averages and momentum, Adam and
  // AdamW moments; Adagrad's (nothing moves).
  expectSameEmbeddingTraining(catchup(makeSgd(0.5, 0.0, 0.0, 0.1)), true);
  expectSameEmbeddingTraining(catchup(makeSgd(0.5, 0.9, 0.0, 0.05, true)),
                              true);
  sparsec_optimizer_desc rms = catchup(makeOpt(SPARSEC_OPT_RMSPROP, 0.01));
  rms.momentum = 0.5;
  rms.centered = 1;
  expectSameEmbeddingTraining(rms, false);
  sparsec_optimizer_desc adamw = catchup(makeOpt(SPARSEC_OPT_ADAMW, 0.1));
  adamw.weight_decay = 0.1;
  expectSameEmbeddingTraining(adamw, true);
  sparsec_optimizer_desc amsgrad = catchup(makeOpt(SPARSEC_OPT_ADAM, 0.1));
  amsgrad.amsgrad = 1;
  expectSameEmbeddingTraining(amsgrad, false);
  expectSameEmbeddingTraining(catchup(makeOpt(SPARSEC_OPT_ADAGRAD, 0.1)), true);
}

TEST(Device, EmulatedEmbeddingOptionsLikeTheCpu) {
  // max_norm (rows renormed before the kernels, undone by a failed step),
  // scale_grad_by_freq, both with 1-, 2- and inf-norms.
  expectSameEmbeddingTraining(makeSgd(0.5, 0.9), true,
                              [](sparsec_param_desc &p) { p.max_norm = 0.8; });
  expectSameEmbeddingTraining(catchup(makeOpt(SPARSEC_OPT_ADAM, 0.1)), false,
                              [](sparsec_param_desc &p) {
                                p.max_norm = 0.5;
                                p.norm_type = 1.0;
                                p.scale_grad_by_freq = 1;
                              });
  expectSameEmbeddingTraining(makeOpt(SPARSEC_OPT_ADAGRAD, 0.1), true,
                              [](sparsec_param_desc &p) {
                                p.max_norm = 0.3;
                                p.norm_type = INFINITY;
                                p.scale_grad_by_freq = 1;
                              });
  // Clipping with embeddings: lazy (the coalesced rows), catch-up, dense.
  sparsec_optimizer_desc clip = makeOpt(SPARSEC_OPT_ADAM, 0.1);
  clip.max_grad_norm = 0.05;
  expectSameEmbeddingTraining(clip, true);
  expectSameEmbeddingTraining(catchup(clip), false);
  clip.sparse_mode = SPARSEC_SPARSE_DENSE;
  expectSameEmbeddingTraining(clip, true);
}

TEST(Device, HostWritesReachTheDevice) {
  Desc d = linearDesc(false);
  sparsec_device_kernels k = emulated(d);
  ModelPtr dev;
  ASSERT_EQ(sparsec_create_on(&d.desc, &k, 3, "cuda", &dev.m), SPARSEC_OK);
  float *b = nullptr;
  int64_t n = 0;
  ASSERT_EQ(sparsec_param_values(dev.m, "fc.bias", &b, &n), SPARSEC_OK);
  for (int64_t i = 0; i < n; ++i)
    b[i] = 100.0f + static_cast<float>(i);
  const int64_t batch = 2;
  std::vector<float> x(batch * kIn, 0.0f), out(batch * kOut);
  const void *in[] = {x.data()};
  ASSERT_EQ(sparsec_forward(dev.m, batch, in, out.data()), SPARSEC_OK);
  for (int o = 0; o < kOut; ++o)
    EXPECT_EQ(out[o], 100.0f + static_cast<float>(o)); // x = 0: the bias
}

TEST(Device, RejectedCallsChangeNothing) {
  Desc d = linearDesc(true, makeOpt(SPARSEC_OPT_ADAM, 0.05));
  sparsec_device_kernels k = emulated(d);
  ModelPtr dev;
  ASSERT_EQ(sparsec_create_on(&d.desc, &k, 3, "cuda", &dev.m), SPARSEC_OK);
  const int64_t batch = 3;
  std::vector<float> x(batch * kIn, 0.5f), y(batch * kOut, 1.0f);
  const void *in[] = {x.data(), y.data()};
  float loss = 0;
  ASSERT_EQ(sparsec_train_step(dev.m, batch, in, &loss), SPARSEC_OK);
  const uint64_t before = hashModel(dev.m);
  EXPECT_EQ(sparsec_train_step(dev.m, 0, in, &loss), SPARSEC_ERR_INVALID_ARG);
  x[4] = NAN;
  EXPECT_EQ(sparsec_train_step(dev.m, batch, in, &loss), SPARSEC_ERR_NONFINITE);
  x[4] = 0.5f;
  kernelMode() = KernelMode::NanLoss;
  EXPECT_EQ(sparsec_train_step(dev.m, batch, in, &loss), SPARSEC_ERR_NONFINITE);
  kernelMode() = KernelMode::Normal;
  EXPECT_NE(lastError().find("optimizer step skipped"), std::string::npos);
  EXPECT_EQ(hashModel(dev.m), before);
  int64_t steps = 0;
  sparsec_step_count(dev.m, &steps);
  EXPECT_EQ(steps, 1);
}

} // namespace
