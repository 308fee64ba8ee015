//===- EmbeddingOptionsTest.cpp - nn.Embedding's options ------------------===//
//
// nn.Embedding's options on EMBEDDING parameters: every option set x every
// optimizer configuration x every sparse mode against the f64 reference
// (OptimHarness.h), plus create's checks, the padding row's initialisation,
// batches of padding ids only, the max_norm renorm in forward and
// train_step (what the kernel reads, every norm type, repeated ids), the
// undo of a renorm when a call fails, the reported gradient rows, and
// checkpoint round trips. PyTorch parity: optim_torch_oracle.py's
// `embedding-options` group.
//
//===----------------------------------------------------------------------===//
#include "CheckpointUtil.h"
#include "OptimHarness.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

using namespace sparsec_test;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNan = std::numeric_limits<double>::quiet_NaN();

std::vector<EmbOptions> optionSets() {
  auto make = [](const char *name, auto edit) {
    EmbOptions o;
    o.name = name;
    edit(o);
    return o;
  };
  return {
      make("Padding", [](EmbOptions &o) { o.padding = 2; }),
      make("PaddingFirstNonZero",
           [](EmbOptions &o) {
             o.padding = 0;
             o.padNonZero = true;
           }),
      make("PaddingLastNonZeroMaxNorm",
           [](EmbOptions &o) {
             o.padding = 7;
             o.padNonZero = true;
             o.maxNorm = 1.0;
           }),
      make("MaxNorm", [](EmbOptions &o) { o.maxNorm = 1.0; }),
      make("MaxNormP1",
           [](EmbOptions &o) {
             o.maxNorm = 1.5;
             o.normType = 1;
           }),
      make("MaxNormP3",
           [](EmbOptions &o) {
             o.maxNorm = 1.0;
             o.normType = 3;
           }),
      make("MaxNormInf",
           [](EmbOptions &o) {
             o.maxNorm = 0.8;
             o.normType = kInf;
           }),
      make("Freq", [](EmbOptions &o) { o.freq = 1; }),
      make("AllClipped",
           [](EmbOptions &o) {
             o.padding = 2;
             o.maxNorm = 1.2;
             o.freq = 1;
             o.maxGradNorm = 2.0;
           }),
  };
}

class Options : public ::testing::TestWithParam<
                    std::tuple<int, int, sparsec_sparse_mode>> {};

TEST_P(Options, MatchesReference) {
  auto [o, c, mode] = GetParam();
  sparsec_optimizer_desc d = configs()[c].d;
  d.sparse_mode = mode;
  runHarness(d, optionSets()[o]);
}

std::string optionsName(
    const ::testing::TestParamInfo<std::tuple<int, int, sparsec_sparse_mode>>
        &i) {
  static const char *modes[] = {"Lazy", "Catchup", "Dense"};
  return std::string(optionSets()[std::get<0>(i.param)].name) + "_" +
         configs()[std::get<1>(i.param)].name + modes[std::get<2>(i.param)];
}

INSTANTIATE_TEST_SUITE_P(
    All, Options,
    ::testing::Combine(::testing::Range(0, (int)optionSets().size()),
                       ::testing::Range(0, (int)configs().size()),
                       ::testing::Values(SPARSEC_SPARSE_LAZY,
                                         SPARSEC_SPARSE_CATCHUP,
                                         SPARSEC_SPARSE_DENSE)),
    optionsName);

struct ModelPtr {
  sparsec_model *m = nullptr;
  ~ModelPtr() { sparsec_destroy(m); }
};

using ParamEdit = std::function<void(sparsec_param_desc &)>;

/// create's status for descriptor `x` with parameter `i` edited by `e`.
int createEdited(Desc x, int i, const ParamEdit &e, std::string *msg) {
  e(x.params[i]);
  x.link();
  sparsec_model *m = reinterpret_cast<sparsec_model *>(0x1);
  const int rc = sparsec_create(&x.desc, 1, &m);
  *msg = sparsec_last_error();
  if (rc != SPARSEC_OK)
    EXPECT_EQ(m, nullptr);
  else
    sparsec_destroy(m);
  return rc;
}

TEST(EmbeddingOptions, CreateChecksEveryField) {
  struct Case {
    bool embedding; // else the linear model's dense weight
    ParamEdit edit;
    const char *msg;
  } bad[] = {
      {true, [](auto &p) { p.padding_idx = -2; },
       "embedding 'emb.weight' has padding_idx -2, expected -1 (none) or a "
       "row in [0, 10)"},
      {true, [](auto &p) { p.padding_idx = 10; }, "has padding_idx 10"},
      {true, [](auto &p) { p.max_norm = -1; },
       "has max_norm -1, expected a finite value >= 0 (0: off)"},
      {true, [](auto &p) { p.max_norm = kNan; }, "has max_norm nan"},
      {true, [](auto &p) { p.max_norm = kInf; }, "has max_norm inf"},
      {true, [](auto &p) { p.norm_type = 0; },
       "parameter 'emb.weight' has norm_type 0, expected a value > 0"},
      {true, [](auto &p) { p.norm_type = -2; }, "has norm_type -2"},
      {true, [](auto &p) { p.norm_type = kNan; }, "has norm_type nan"},
      {true, [](auto &p) { p.scale_grad_by_freq = 2; },
       "has scale_grad_by_freq 2, expected 0 or 1"},
      {false, [](auto &p) { p.padding_idx = 0; },
       "parameter 'fc.weight' is not an embedding but sets padding_idx 0"},
      {false, [](auto &p) { p.max_norm = 1; }, "is not an embedding"},
      {false, [](auto &p) { p.scale_grad_by_freq = 1; }, "is not an embedding"},
      // A zero-filled descriptor (no norm_type) is caught on any layout.
      {false, [](auto &p) { p.norm_type = 0; }, "'fc.weight' has norm_type 0"},
  };
  for (const Case &c : bad) {
    std::string msg;
    Desc x = c.embedding ? embedDesc(SPARSEC_I64) : linearDesc(false);
    EXPECT_EQ(createEdited(x, 0, c.edit, &msg), SPARSEC_ERR_INVALID_ARG)
        << c.msg;
    EXPECT_NE(msg.find(c.msg), std::string::npos) << "got: " << msg;
  }
  const ParamEdit okEmb[] = {
      [](auto &p) { p.padding_idx = 0; },
      [](auto &p) { p.padding_idx = 9; },
      [](auto &p) { p.norm_type = kInf; },
      [](auto &p) {
        p.max_norm = 0.5;
        p.norm_type = 0.5;
        p.scale_grad_by_freq = 1;
      },
  };
  for (const ParamEdit &e : okEmb) {
    std::string msg;
    EXPECT_EQ(createEdited(embedDesc(SPARSEC_I64), 0, e, &msg), SPARSEC_OK)
        << msg;
  }
  std::string msg; // other layouts: norm_type must be > 0, else ignored
  EXPECT_EQ(createEdited(
                linearDesc(true), 0, [](auto &p) { p.norm_type = 3; }, &msg),
            SPARSEC_OK)
      << msg;
}

TEST(EmbeddingOptions, PaddingRowIsZeroedAfterTheInitialiser) {
  for (int64_t pad : {0, 4, kRows - 1}) {
    Desc plain = embedDesc(SPARSEC_I32), padded = embedDesc(SPARSEC_I32);
    padded.params[0].padding_idx = pad;
    ModelPtr a, b;
    ASSERT_EQ(sparsec_create(&plain.desc, 11, &a.m), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&padded.desc, 11, &b.m), SPARSEC_OK);
    const std::vector<float> va = values(a.m, "emb.weight"),
                             vb = values(b.m, "emb.weight");
    for (int64_t r = 0; r < kRows; ++r)
      for (int c = 0; c < kDim; ++c) {
        const size_t k = (size_t)(r * kDim + c);
        if (r == pad) {
          EXPECT_EQ(vb[k], 0.0f);
          EXPECT_NE(va[k], 0.0f); // the normal initialiser drew it
        } else {
          EXPECT_EQ(vb[k], va[k]) << "row " << r; // same stream
        }
      }
  }
}

std::vector<float> row3(const std::vector<float> &table, int64_t r) {
  return std::vector<float>(table.begin() + r * kFeedDim,
                            table.begin() + (r + 1) * kFeedDim);
}

TEST(EmbeddingOptions, BatchOfPaddingIdsOnlyIsAnEmptyStep) {
  EmbOptions eo;
  eo.padding = 2;
  for (const Config &c : configs())
    for (sparsec_sparse_mode mode :
         {SPARSEC_SPARSE_LAZY, SPARSEC_SPARSE_CATCHUP, SPARSEC_SPARSE_DENSE}) {
      sparsec_optimizer_desc d = c.d;
      d.sparse_mode = mode;
      Harness h(d, 5, eo);
      ASSERT_NE(h.m, nullptr);
      const std::vector<float> e0 = values(h.m, "e"), w0 = values(h.m, "w");
      h.step({2, 2, 2, 2});
      if (::testing::Test::HasFatalFailure())
        return;
      int64_t steps = 0;
      sparsec_step_count(h.m, &steps);
      EXPECT_EQ(steps, 1) << c.name;
      // No row changes (dense mode: the padding row; the others take
      // their zero-gradient step, as the reference does).
      const std::vector<float> e1 = values(h.m, "e");
      if (mode != SPARSEC_SPARSE_DENSE)
        EXPECT_EQ(e1, e0) << c.name << " mode " << mode;
      EXPECT_EQ(row3(e1, 2), row3(e0, 2)) << c.name << " mode " << mode;
      EXPECT_NE(values(h.m, "w"), w0); // the other parameters stepped
      h.expectParams(std::string(c.name) + " empty step");
      // The next step is step 2 for every optimizer (bias corrections,
      // Adagrad's lr_decay): the reference counts it so.
      h.step({0, 1, 2, 1});
      h.step({2, 3});
      h.expectParams(std::string(c.name) + " after the empty step");
      h.expectState();
    }
}

/// The runtime's renorm of one row, replayed: what the test expects.
std::vector<float> renormed(std::vector<float> row, double maxNorm, double p) {
  double s = 0;
  for (float x : row)
    s = std::isinf(p) ? std::max(s, (double)std::fabs(x))
                      : s + std::pow(std::fabs((double)x), p);
  const float norm = (float)(std::isinf(p) ? s : std::pow(s, 1 / p));
  if ((double)norm > maxNorm) {
    const float scale = (float)(maxNorm / ((double)norm + 1e-7));
    for (float &x : row)
      x = x * scale;
  }
  return row;
}

std::vector<float> row(const std::vector<float> &table, int64_t r) {
  return std::vector<float>(table.begin() + r * kDim,
                            table.begin() + (r + 1) * kDim);
}

TEST(EmbeddingOptions, ForwardRenormsTheReferencedRowsOnce) {
  for (double p : {1.0, 2.0, 3.0, kInf})
    for (sparsec_dtype dt : {SPARSEC_I32, SPARSEC_I64}) {
      Desc d = embedDesc(dt);
      d.params[0].max_norm = p == 1.0 ? 1.6 : 1.0;
      d.params[0].norm_type = p;
      ModelPtr m;
      ASSERT_EQ(sparsec_create(&d.desc, 21, &m.m), SPARSEC_OK);
      const std::vector<float> before = values(m.m, "emb.weight");
      const std::vector<int64_t> ids = {0, 0, 3, 5, 9, 3};
      std::vector<int32_t> ids32(ids.begin(), ids.end());
      const void *in[1] = {dt == SPARSEC_I32 ? (const void *)ids32.data()
                                             : (const void *)ids.data()};
      std::vector<float> out(3);
      ASSERT_EQ(sparsec_forward(m.m, 3, in, out.data()), SPARSEC_OK);
      const std::vector<float> after = values(m.m, "emb.weight");
      int changed = 0;
      for (int64_t r = 0; r < kRows; ++r) {
        const bool referenced = r == 0 || r == 3 || r == 5 || r == 9;
        const std::vector<float> want =
            referenced ? renormed(row(before, r), d.params[0].max_norm, p)
                       : row(before, r);
        changed += want != row(before, r);
        for (int c = 0; c < kDim; ++c)
          EXPECT_FLOAT_EQ(after[r * kDim + c], want[c])
              << "p " << p << " row " << r;
      }
      EXPECT_GT(changed, 0) << "p " << p << ": no row exceeded max_norm";
      // Repeated ids are renormed once: one log entry per changed row.
      EXPECT_EQ(m.m->params[0].renorm.n, changed);
      // The kernel read the renormed rows.
      for (int b = 0; b < 3; ++b) {
        float s = 0;
        for (int k = 0; k < kBag; ++k)
          for (int c = 0; c < kDim; ++c)
            s += after[ids[b * kBag + k] * kDim + c];
        EXPECT_FLOAT_EQ(out[b], s);
      }
    }
}

TEST(EmbeddingOptions, ForwardFindsTheIdsAfterATargetInput) {
  // Forward lists only the non-target inputs: ids_input 1 is forward's 0.
  Desc d;
  d.inputs = {makeInput("y", SPARSEC_F32, {-1}, 1),
              makeInput("ids", SPARSEC_I64, {-1, kBag}, 0, kRows)};
  d.params = {makeParam("emb.weight", SPARSEC_LAYOUT_EMBEDDING, {kRows, kDim},
                        kRows * kDim, SPARSEC_INIT_NORMAL, 1.0, 1)};
  d.params[0].max_norm = 0.5;
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = "TargetFirst";
  d.desc.output_rank = 1;
  d.desc.output_dims[0] = -1;
  d.desc.optimizer = makeSgd(0.1);
  d.desc.forward = &embedForward<int64_t>;
  d.link();
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 2, &m.m), SPARSEC_OK);
  const std::vector<float> before = values(m.m, "emb.weight");
  const std::vector<int64_t> ids = {6, 7};
  const void *in[1] = {ids.data()};
  float out = 0;
  ASSERT_EQ(sparsec_forward(m.m, 1, in, &out), SPARSEC_OK);
  const std::vector<float> after = values(m.m, "emb.weight");
  for (int64_t r = 0; r < kRows; ++r)
    EXPECT_EQ(row(after, r), r == 6 || r == 7 ? renormed(row(before, r), 0.5, 2)
                                              : row(before, r))
        << r;
}

TEST(EmbeddingOptions, TrainKernelReadsTheRenormedRows) {
  Desc d = embedDesc(SPARSEC_I64, makeSgd(0.0)); // lr 0: only the renorm
  d.params[0].max_norm = 0.9;
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 4, &m.m), SPARSEC_OK);
  const std::vector<float> before = values(m.m, "emb.weight");
  const std::vector<int64_t> ids = {1, 2, 2, 8};
  const std::vector<float> y = {0.25f, -0.5f};
  const void *in[2] = {ids.data(), y.data()};
  float loss = 0;
  ASSERT_EQ(sparsec_train_step(m.m, 2, in, &loss), SPARSEC_OK);
  const std::vector<float> after = values(m.m, "emb.weight");
  EXPECT_NE(after, before);
  double want = 0;
  for (int b = 0; b < 2; ++b) {
    float s = 0;
    for (int k = 0; k < kBag; ++k)
      for (int c = 0; c < kDim; ++c)
        s += after[ids[b * kBag + k] * kDim + c];
    want += 0.5 * (s - y[b]) * (s - y[b]) / 2;
  }
  EXPECT_NEAR(loss, want, 1e-6 * (1 + want));
}

TEST(EmbeddingOptions, FailedCallsRestoreTheRenormedRows) {
  for (sparsec_sparse_mode mode :
       {SPARSEC_SPARSE_LAZY, SPARSEC_SPARSE_CATCHUP, SPARSEC_SPARSE_DENSE}) {
    sparsec_optimizer_desc opt = makeOpt(SPARSEC_OPT_ADAMW, 0.05, mode);
    Desc d = embedDesc(SPARSEC_I64, opt);
    d.params[0].max_norm = 1.0;
    d.params[0].padding_idx = 1;
    d.params[0].scale_grad_by_freq = 1;
    ModelPtr m, twin;
    ASSERT_EQ(sparsec_create(&d.desc, 9, &m.m), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&d.desc, 9, &twin.m), SPARSEC_OK);
    auto train = [](sparsec_model *x, std::vector<int64_t> ids) {
      std::vector<float> y(ids.size() / kBag, 0.3f);
      const void *in[2] = {ids.data(), y.data()};
      float loss;
      return sparsec_train_step(x, (int64_t)y.size(), in, &loss);
    };
    auto forward = [](sparsec_model *x, std::vector<int64_t> ids) {
      std::vector<float> out(ids.size() / kBag);
      const void *in[1] = {ids.data()};
      return sparsec_forward(x, (int64_t)out.size(), in, out.data());
    };
    for (sparsec_model *x : {m.m, twin.m}) {
      ASSERT_EQ(train(x, {0, 1, 2, 2}), SPARSEC_OK);
      ASSERT_EQ(train(x, {3, 0}), SPARSEC_OK);
    }
    // Rows 7, 8, 9 were never read: their norms exceed max_norm, and 0 and
    // 3 are stale under catch-up.
    const uint64_t h = hashModel(m.m);
    kernelMode() = KernelMode::Fail;
    EXPECT_EQ(forward(m.m, {7, 8, 9, 9}), SPARSEC_ERR_KERNEL);
    EXPECT_EQ(hashModel(m.m), h);
    EXPECT_EQ(train(m.m, {0, 7, 8, 3}), SPARSEC_ERR_KERNEL);
    EXPECT_EQ(hashModel(m.m), h);
    kernelMode() = KernelMode::NanLoss;
    EXPECT_EQ(train(m.m, {9, 9, 8, 0}), SPARSEC_ERR_NONFINITE);
    EXPECT_EQ(hashModel(m.m), h);
    kernelMode() = KernelMode::Normal;
    // Rejected before anything changes.
    EXPECT_EQ(train(m.m, {7, 8, 9, 10}), SPARSEC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(forward(m.m, {7, -1}), SPARSEC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(hashModel(m.m), h);
    // A successful forward does renorm (it is not read-only) ...
    ASSERT_EQ(forward(m.m, {7, 8}), SPARSEC_OK);
    EXPECT_NE(hashModel(m.m), h);
    ASSERT_EQ(forward(twin.m, {7, 8}), SPARSEC_OK);
    // ... and training goes on as if the failed calls never happened.
    for (sparsec_model *x : {m.m, twin.m})
      ASSERT_EQ(train(x, {9, 1, 8, 0}), SPARSEC_OK);
    EXPECT_EQ(hashModel(m.m), hashModel(twin.m)) << "mode " << mode;
  }
}

TEST(EmbeddingOptions, ReportedGradientRowsAreDroppedAndScaled) {
  sparsec_optimizer_desc opt = makeSgd(0.1);
  Desc d = feedDesc(opt);
  d.params[3].padding_idx = 1;
  d.params[3].scale_grad_by_freq = 1;
  ModelPtr m;
  ASSERT_EQ(sparsec_create(&d.desc, 3, &m.m), SPARSEC_OK);
  const std::vector<int64_t> ids = {1, 4, 4, 0, 4, 1};
  Feed &f = feed();
  f.w.assign(15, 0.1f);
  f.b.assign(4, 0.1f);
  f.s.assign(kFeedNnz, 0.1f);
  f.e.resize(ids.size() * kFeedDim);
  for (size_t i = 0; i < f.e.size(); ++i)
    f.e[i] = 0.37f * (float)i - 1.1f;
  const std::vector<float> before = values(m.m, "e");
  const void *in[1] = {ids.data()};
  float loss;
  ASSERT_EQ(sparsec_train_step(m.m, 3, in, &loss), SPARSEC_OK);
  const float *g = nullptr;
  int64_t n = 0;
  ASSERT_EQ(sparsec_param_grad(m.m, "e", &g, &n), SPARSEC_OK);
  ASSERT_EQ(n, (int64_t)f.e.size());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int c = 0; c < kFeedDim; ++c) {
      const float raw = f.e[i * kFeedDim + c];
      const float want = ids[i] == 1   ? 0.0f
                         : ids[i] == 4 ? raw * (float)(1.0 / 3.0)
                                       : raw;
      EXPECT_EQ(g[i * kFeedDim + c], want) << "id " << ids[i];
    }
  // Plain SGD scatter-adds the scaled rows; the padding row stays.
  const std::vector<float> after = values(m.m, "e");
  for (int c = 0; c < kFeedDim; ++c) {
    EXPECT_EQ(after[1 * kFeedDim + c], before[1 * kFeedDim + c]);
    float want = before[4 * kFeedDim + c];
    for (size_t i : {1, 2, 4})
      want = want + -0.1f * g[i * kFeedDim + c];
    EXPECT_EQ(after[4 * kFeedDim + c], want);
  }
}

TEST(EmbeddingOptions, CheckpointRoundTripIsUnaffected) {
  for (sparsec_sparse_mode mode :
       {SPARSEC_SPARSE_LAZY, SPARSEC_SPARSE_CATCHUP, SPARSEC_SPARSE_DENSE}) {
    EmbOptions eo;
    eo.padding = 2;
    eo.maxNorm = 1.2;
    eo.freq = 1;
    eo.padNonZero = true;
    Harness a(makeOpt(SPARSEC_OPT_ADAM, 0.02, mode), 3, eo);
    Harness b(makeOpt(SPARSEC_OPT_ADAM, 0.02, mode), 8, eo);
    ASSERT_NE(a.m, nullptr);
    ASSERT_NE(b.m, nullptr);
    for (size_t i = 0; i < 5; ++i)
      a.step(batches()[i]);
    TempDir dir;
    const std::string path = dir.file("emb.safetensors");
    ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK)
        << sparsec_last_error();
    ASSERT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_OK)
        << sparsec_last_error();
    EXPECT_EQ(hashModel(b.m), hashModel(a.m));
    // The same tensors as without the options: a model without them loads
    // the file.
    Desc plain = feedDesc(makeOpt(SPARSEC_OPT_ADAM, 0.02, mode));
    ModelPtr p;
    ASSERT_EQ(sparsec_create(&plain.desc, 1, &p.m), SPARSEC_OK);
    ASSERT_EQ(sparsec_load(p.m, path.c_str()), SPARSEC_OK);
    EXPECT_EQ(values(p.m, "e"), values(a.m, "e"));
    // An ABI 2 file (same format) loads too.
    std::string bytes = readBytes(path);
    const size_t at =
        bytes.find("\"abi\":\"" + std::to_string(SPARSEC_ABI_VERSION) + "\"");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 7] = '2';
    fixMetaCrc(bytes); // (a file of ABI 2 had no metadata_crc32 at all)
    writeBytes(path, bytes);
    ASSERT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_OK)
        << sparsec_last_error();
    // Both continue identically (the non-zero padding row included).
    b.steps = a.steps;
    for (size_t i = 5; i < 9; ++i) {
      const std::vector<int64_t> &ids = batches()[i];
      for (Harness *h : {&a, &b}) {
        Feed &f = feed();
        f.w.assign(15, 0.01f * (float)i);
        f.b.assign(4, -0.02f);
        f.s.assign(kFeedNnz, 0.03f);
        f.e.assign(ids.size() * kFeedDim, 0.2f - 0.05f * (float)i);
        const void *in[1] = {ids.data()};
        float loss;
        ASSERT_EQ(
            sparsec_train_step(h->m, (int64_t)ids.size() / kFeedBag, in, &loss),
            SPARSEC_OK);
      }
      EXPECT_EQ(hashModel(b.m), hashModel(a.m)) << "step " << i;
    }
  }
}

} // namespace
