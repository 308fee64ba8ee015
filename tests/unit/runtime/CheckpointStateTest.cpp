//===- CheckpointStateTest.cpp - Optimizer state in checkpoints -----------===//
//
// Every optimizer's state (PyTorch's names; row-wise sums per row; per-row
// SGD flags and catch-up last steps) saved and loaded for every kind and
// sparse mode: exact tensor list, bit-identical round trips that train on
// identically, fresh state where a file has none, state of other
// optimizers ignored, and the loader's checks of optimizer tensors.
//
//===----------------------------------------------------------------------===//
#include "CheckpointUtil.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <tuple>
#include <unistd.h>

using namespace sparsec_test;

namespace {

std::string lastError() { return sparsec_last_error(); }

/// One optimizer of each kind, with every state it can keep.
std::vector<sparsec_optimizer_desc> fullOptimizers() {
  std::vector<sparsec_optimizer_desc> out;
  out.push_back(makeSgd(0.1, 0.9, 0.0, 0.05));
  sparsec_optimizer_desc a = makeOpt(SPARSEC_OPT_ADAGRAD, 0.1);
  a.initial_accumulator_value = 0.25;
  out.push_back(a);
  sparsec_optimizer_desc r = makeOpt(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1);
  r.initial_accumulator_value = 0.5;
  out.push_back(r);
  sparsec_optimizer_desc p = makeOpt(SPARSEC_OPT_RMSPROP, 0.01);
  p.centered = 1;
  p.momentum = 0.9;
  out.push_back(p);
  sparsec_optimizer_desc m = makeOpt(SPARSEC_OPT_ADAM, 0.01);
  m.amsgrad = 1;
  out.push_back(m);
  sparsec_optimizer_desc w = makeOpt(SPARSEC_OPT_ADAMW, 0.01);
  w.amsgrad = 1;
  out.push_back(w);
  return out;
}

/// A Feed model trained `steps` steps (rows 3 and 7 never touched).
struct Trained {
  Desc d;
  sparsec_model *m = nullptr;
  Trained(const sparsec_optimizer_desc &opt, uint64_t seed, int steps)
      : d(feedDesc(opt)) {
    EXPECT_EQ(sparsec_create(&d.desc, seed, &m), SPARSEC_OK) << lastError();
    for (int s = 0; s < steps; ++s)
      step(s);
  }
  void step(int s) {
    Feed &f = feed();
    std::vector<int64_t> ids = {s % 3, 4, (s * 5) % 7 == 3 ? 2 : (s * 5) % 7,
                                6};
    f.w.assign(15, 0.0f);
    f.b.assign(4, 0.0f);
    f.s.assign(kFeedNnz, 0.0f);
    f.e.assign(ids.size() * kFeedDim, 0.0f);
    for (auto *v : {&f.w, &f.b, &f.s, &f.e})
      for (size_t i = 0; i < v->size(); ++i)
        (*v)[i] = std::sin(float(i * 7 + s * 3 + v->size()));
    const void *in[1] = {ids.data()};
    float loss;
    EXPECT_EQ(sparsec_train_step(m, 2, in, &loss), SPARSEC_OK) << lastError();
  }
  ~Trained() { sparsec_destroy(m); }
};

struct Want {
  std::string name, dtype, shape;
};

/// The optimizer tensors a checkpoint of `d` holds once it has stepped.
std::set<std::string>
expectedOptimizerTensors(const sparsec_optimizer_desc &d) {
  const bool rowwise = d.kind == SPARSEC_OPT_ROWWISE_ADAGRAD;
  const struct {
    const char *name, *values, *rows;
  } params[] = {{"w", "[5,3]", "[5]"},
                {"b", "[4]", "[1]"},
                {"s", "[9]", "[4]"},
                {"e", "[8,3]", "[8]"}};
  std::set<std::string> out;
  for (const auto &p : params) {
    for (int k = 0; k < SPARSEC_NSTATE; ++k)
      if (sparsec__opt_keeps(&d, k))
        out.insert(std::string("optimizer.") + p.name + "." +
                   sparsec__state_name(k) + " F32 " +
                   (k == SPARSEC_ST_SUM && rowwise ? p.rows : p.values));
    if (std::string(p.name) != "e")
      continue;
    if (d.sparse_mode == SPARSEC_SPARSE_CATCHUP)
      out.insert("optimizer.e.last_step I64 [8]");
    if (d.kind == SPARSEC_OPT_SGD && d.momentum != 0 &&
        d.sparse_mode != SPARSEC_SPARSE_DENSE)
      out.insert("optimizer.e.momentum_rows U8 [8]");
  }
  return out;
}

/// "NAME DTYPE [shape]" of every optimizer tensor in the file's header, and
/// checks every tensor is aligned to its element size.
std::set<std::string> optimizerTensors(const std::string &file) {
  sparsec__json_doc doc;
  char err[128];
  const uint64_t hlen = headerLen(file);
  EXPECT_EQ(sparsec__json_parse(file.data() + 8, hlen, &doc, err, sizeof(err)),
            0)
      << err;
  std::set<std::string> out;
  const sparsec__json_node *root = &doc.nodes[0];
  for (int64_t c = root->first; c >= 0; c = doc.nodes[c].next) {
    const sparsec__json_node *t = &doc.nodes[c];
    if (std::string(t->key) == "__metadata__")
      continue;
    const char *dtype = sparsec__json_get(&doc, t, "dtype")->str;
    const sparsec__json_node *off = sparsec__json_get(&doc, t, "data_offsets");
    const int64_t begin = doc.nodes[off->first].ival;
    const int64_t align = dtype[0] == 'U' ? 1 : dtype[1] == '6' ? 8 : 4;
    EXPECT_EQ((8 + hlen + begin) % align, 0u) << t->key;
    if (std::string(t->key).rfind("optimizer.", 0) != 0)
      continue;
    std::string shape = "[";
    const sparsec__json_node *sh = sparsec__json_get(&doc, t, "shape");
    for (int64_t k = sh->first; k >= 0; k = doc.nodes[k].next)
      shape +=
          (shape.size() > 1 ? "," : "") + std::to_string(doc.nodes[k].ival);
    out.insert(std::string(t->key) + " " + dtype + " " + shape + "]");
  }
  sparsec__json_free(&doc);
  return out;
}

class StateRoundTrip
    : public ::testing::TestWithParam<std::tuple<int, sparsec_sparse_mode>> {};

TEST_P(StateRoundTrip, EveryStateSavedLoadedAndTrainedOn) {
  sparsec_optimizer_desc d = fullOptimizers()[std::get<0>(GetParam())];
  d.sparse_mode = std::get<1>(GetParam());
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  Trained a(d, 1, 5);
  ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK) << lastError();
  EXPECT_EQ(optimizerTensors(readBytes(path)), expectedOptimizerTensors(d));
  Trained b(d, 2, 1); // another seed, another state
  ASSERT_NE(hashModel(a.m), hashModel(b.m));
  ASSERT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_OK) << lastError();
  EXPECT_EQ(hashModel(a.m), hashModel(b.m));
  for (int s = 5; s < 9; ++s) {
    a.step(s);
    b.step(s);
  }
  EXPECT_EQ(hashModel(a.m), hashModel(b.m));
  // Catching up, saving and loading commute.
  ASSERT_EQ(sparsec_catch_up(a.m), SPARSEC_OK);
  ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK);
  ASSERT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_OK);
  EXPECT_EQ(hashModel(a.m), hashModel(b.m));
}

INSTANTIATE_TEST_SUITE_P(
    All, StateRoundTrip,
    ::testing::Combine(::testing::Range(0, (int)fullOptimizers().size()),
                       ::testing::Values(SPARSEC_SPARSE_LAZY,
                                         SPARSEC_SPARSE_CATCHUP,
                                         SPARSEC_SPARSE_DENSE)));

TEST(OptimizerState, FreshStateIsSavedAndMissingStateStartsFresh) {
  TempDir dir;
  sparsec_optimizer_desc d = fullOptimizers()[1]; // Adagrad, sum starts at 0.25
  d.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  Trained fresh(d, 1, 0);
  const std::string path = dir.file("fresh.safetensors");
  ASSERT_EQ(sparsec_save(fresh.m, path.c_str()), SPARSEC_OK);
  const std::string file = readBytes(path);
  float sum0;
  std::memcpy(&sum0, file.data() + tensorAt(file, "optimizer.w.sum"), 4);
  EXPECT_EQ(sum0, 0.25f);
  // A file without optimizer state (plain SGD, 3 steps): Adagrad's sums
  // restart at initial_accumulator_value, every row is up to date at step 3.
  Trained sgd(makeSgd(0.1), 7, 3);
  const std::string plain = dir.file("sgd.safetensors");
  ASSERT_EQ(sparsec_save(sgd.m, plain.c_str()), SPARSEC_OK);
  Trained a(d, 1, 4);
  ASSERT_EQ(sparsec_load(a.m, plain.c_str()), SPARSEC_OK) << lastError();
  EXPECT_EQ(values(a.m, "e"), values(sgd.m, "e"));
  const sparsec__param *w = &a.m->params[0], *e = &a.m->params[3];
  for (int64_t i = 0; i < w->nnz; ++i)
    ASSERT_EQ(w->state[SPARSEC_ST_SUM][i], 0.25f);
  for (int64_t r = 0; r < kFeedRows; ++r)
    EXPECT_EQ(e->last_step[r], 3);
  // A lazy checkpoint loads into a catch-up model: rows up to date.
  sparsec_optimizer_desc lazy = fullOptimizers()[4];
  Trained l(lazy, 3, 4);
  ASSERT_EQ(sparsec_save(l.m, plain.c_str()), SPARSEC_OK);
  lazy.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  Trained c(lazy, 4, 1);
  ASSERT_EQ(sparsec_load(c.m, plain.c_str()), SPARSEC_OK) << lastError();
  for (int64_t r = 0; r < kFeedRows; ++r)
    EXPECT_EQ(c.m->params[3].last_step[r], 4);
  EXPECT_EQ(values(c.m, "e"), values(l.m, "e"));
}

TEST(OptimizerState, StateOfOtherOptimizersIsIgnored) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  sparsec_optimizer_desc adam = fullOptimizers()[4];
  adam.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  Trained a(adam, 1, 3);
  ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK);
  for (const sparsec_optimizer_desc &other :
       {makeSgd(0.1), fullOptimizers()[0], fullOptimizers()[2],
        fullOptimizers()[3]}) {
    Trained b(other, 2, 1);
    ASSERT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_OK) << lastError();
    for (const char *name : {"w", "b", "s", "e"})
      EXPECT_EQ(values(b.m, name), values(a.m, name));
  }
}

class StateLoad : public ::testing::Test {
protected:
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  /// Saves a model of `src` trained 3 steps, edits the file with `edit`,
  /// loads it into a model of `dst` and expects a format error with `msg`
  /// and an unchanged model.
  template <typename Edit>
  void expectRejected(const sparsec_optimizer_desc &src,
                      const sparsec_optimizer_desc &dst, Edit edit,
                      const std::string &msg) {
    Trained a(src, 1, 3);
    ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK);
    std::string file = readBytes(path);
    edit(file);
    fixCrc(file);
    writeBytes(path, file);
    Trained b(dst, 2, 1);
    const uint64_t before = hashModel(b.m);
    EXPECT_EQ(sparsec_load(b.m, path.c_str()), SPARSEC_ERR_FORMAT) << msg;
    EXPECT_NE(lastError().find(msg), std::string::npos) << lastError();
    EXPECT_EQ(hashModel(b.m), before);
  }
};

TEST_F(StateLoad, Rejections) {
  sparsec_optimizer_desc adam = fullOptimizers()[4];
  adam.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  const auto none = [](std::string &) {};
  const auto put = [](const char *name, int64_t index, auto value) {
    return [=](std::string &file) {
      std::memcpy(&file[tensorAt(file, name) + index * sizeof(value)], &value,
                  sizeof(value));
    };
  };
  expectRejected(adam, adam, put("optimizer.e.last_step", 2, (int64_t)4),
                 "tensor 'optimizer.e.last_step' holds 4 at row 2, expected a "
                 "step in [0, 3]");
  expectRejected(adam, adam, put("optimizer.e.last_step", 0, (int64_t)-1),
                 "holds -1 at row 0");
  expectRejected(adam, adam, put("optimizer.w.exp_avg_sq", 4, -1.0f),
                 "tensor 'optimizer.w.exp_avg_sq' holds -1 at element 4, "
                 "expected a value >= 0");
  expectRejected(adam, adam, put("optimizer.b.max_exp_avg_sq", 1, NAN),
                 "holds nan");
  sparsec_optimizer_desc adagrad = fullOptimizers()[1];
  expectRejected(adagrad, adagrad, put("optimizer.s.sum", 0, -0.5f),
                 "holds -0.5");
  // Saved together, loaded together: an Adam file lacks max_exp_avg_sq.
  sparsec_optimizer_desc plainAdam = makeOpt(SPARSEC_OPT_ADAM, 0.01);
  expectRejected(
      plainAdam, fullOptimizers()[4], none,
      "has 'optimizer.w.exp_avg' but not 'optimizer.w.max_exp_avg_sq'");
  // Row-wise sums are [rows]; Adagrad's are the values' shape.
  expectRejected(
      fullOptimizers()[2], adagrad, none,
      "tensor 'optimizer.w.sum' has shape [5], model expects [5, 3]");
  expectRejected(
      adam, adam, [](std::string &f) { editHeader(f, "\"I64\"", "\"F64\""); },
      "tensor 'optimizer.e.last_step' has dtype F64, model expects I64");
  // SGD's momentum buffer and row flags come together.
  sparsec_optimizer_desc sgdDense = makeSgd(0.1, 0.9);
  sgdDense.sparse_mode = SPARSEC_SPARSE_DENSE;
  expectRejected(
      sgdDense, makeSgd(0.1, 0.9), none,
      "has 'optimizer.e.momentum_buffer' but not 'optimizer.e.momentum_rows'");
  expectRejected(
      makeSgd(0.1, 0.9), makeSgd(0.1, 0.9),
      [](std::string &f) {
        editHeader(f, "optimizer.e.momentum_rows", "optimizer.e.momentum_xows");
      },
      "has tensor 'optimizer.e.momentum_xows', which model 'Feed' does not "
      "have");
}

TEST(OptimizerState, ReadableByIndependentReaders) {
#ifndef SPARSEC_TEST_PYTHON
  GTEST_SKIP() << "no Python interpreter configured";
#else
  if (access(SPARSEC_TEST_PYTHON, X_OK) != 0)
    GTEST_SKIP() << SPARSEC_TEST_PYTHON << " is not available";
  TempDir dir;
  sparsec_optimizer_desc d = fullOptimizers()[5];
  d.sparse_mode = SPARSEC_SPARSE_CATCHUP;
  Trained a(d, 1, 3);
  const std::string path = dir.file("m.safetensors");
  ASSERT_EQ(sparsec_save(a.m, path.c_str()), SPARSEC_OK);
  const std::string cmd = std::string(SPARSEC_TEST_PYTHON) + " " +
                          SPARSEC_TEST_SOURCE_DIR + "/read_checkpoint.py " +
                          path + " 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p))
    out += buf;
  ASSERT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("optimizer.e.last_step I64 8 "), std::string::npos) << out;
  EXPECT_NE(out.find("optimizer.s.max_exp_avg_sq F32 9 "), std::string::npos)
      << out;
  EXPECT_NE(out.find("metadata optimizer=adamw"), std::string::npos) << out;
  EXPECT_NE(out.find("metadata sparse_mode=catchup"), std::string::npos) << out;
#endif
}

} // namespace
