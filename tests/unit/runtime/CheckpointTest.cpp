//===- CheckpointTest.cpp - safetensors save/load, CRC32, JSON -----------===//
//
// Round trips (parameters, CSR structure, momentum state, step, lr), the
// exact file layout, atomic saves that leave the old file intact on every
// failure, and strict loads that reject truncated, corrupted or mismatched
// files with a precise message and without changing the model.
//
//===----------------------------------------------------------------------===//
#include "CheckpointUtil.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace sparsec_test;
namespace fs = std::filesystem;

namespace {

std::string lastError() { return sparsec_last_error(); }

/// A model with all three layouts and momentum, trained a few steps.
struct Trained {
  sparsec_model *csr = nullptr, *emb = nullptr;
  Trained(uint64_t seed, int steps) {
    Desc d = linearDesc(true, makeSgd(0.1, 0.9, 0.1, 0.01), 11);
    Desc e = embedDesc(SPARSEC_I64, makeSgd(0.2, 0.8, 0.0, 0.01, true));
    EXPECT_EQ(sparsec_create(&d.desc, seed, &csr), SPARSEC_OK);
    EXPECT_EQ(sparsec_create(&e.desc, seed, &emb), SPARSEC_OK);
    for (int s = 0; s < steps; ++s)
      step(s);
  }
  void step(int s) {
    std::vector<float> x(2 * kIn), y(2 * kOut);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = std::cos((float)(i + s));
    for (size_t i = 0; i < y.size(); ++i)
      y[i] = std::sin((float)(i * s));
    const void *in[2] = {x.data(), y.data()};
    float loss;
    EXPECT_EQ(sparsec_train_step(csr, 2, in, &loss), SPARSEC_OK) << lastError();
    std::vector<int64_t> ids = {s % kRows, 3, 3, (s * 7) % kRows};
    std::vector<float> t = {1.0f, -1.0f};
    const void *ein[2] = {ids.data(), t.data()};
    EXPECT_EQ(sparsec_train_step(emb, 2, ein, &loss), SPARSEC_OK)
        << lastError();
  }
  ~Trained() {
    sparsec_destroy(csr);
    sparsec_destroy(emb);
  }
};

std::vector<std::string> listDir(const std::string &dir) {
  std::vector<std::string> names;
  for (const auto &e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Crc32, KnownValuesAndIncremental) {
  EXPECT_EQ(sparsec__crc32(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(sparsec__crc32(0, "", 0), 0u);
  EXPECT_EQ(sparsec__crc32(0, "a", 1), 0xE8B7BE43u);
  std::string s(1000, '\0');
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = (char)(i * 31 + 7);
  // Bitwise reference.
  uint32_t ref = 0xFFFFFFFFu;
  for (unsigned char c : s) {
    ref ^= c;
    for (int k = 0; k < 8; ++k)
      ref = (ref >> 1) ^ (0xEDB88320u & (0u - (ref & 1)));
  }
  ref = ~ref;
  EXPECT_EQ(sparsec__crc32(0, s.data(), s.size()), ref);
  for (size_t cut : {0, 1, 7, 8, 9, 500, 999}) {
    uint32_t c = sparsec__crc32(0, s.data(), cut);
    EXPECT_EQ(sparsec__crc32(c, s.data() + cut, s.size() - cut), ref) << cut;
  }
}

TEST(Json, ParsesTheHeaderSubset) {
  const char *text = " {\"a\": [1, 22, 0], \"b\\u00e9\\n\": {\"c\": "
                     "\"x\\\"y\\ud83d\\ude00\"}, "
                     "\"e\": {}, \"f\": []} ";
  sparsec__json_doc doc;
  char err[128];
  ASSERT_EQ(sparsec__json_parse(text, strlen(text), &doc, err, sizeof(err)), 0)
      << err;
  const sparsec__json_node *root = &doc.nodes[0];
  EXPECT_EQ(root->kind, SPARSEC_JSON_OBJECT);
  EXPECT_EQ(root->count, 4);
  const sparsec__json_node *a = sparsec__json_get(&doc, root, "a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->kind, SPARSEC_JSON_ARRAY);
  ASSERT_EQ(a->count, 3);
  EXPECT_EQ(doc.nodes[a->first].ival, 1);
  EXPECT_EQ(doc.nodes[doc.nodes[a->first].next].ival, 22);
  const sparsec__json_node *b = sparsec__json_get(&doc, root, "b\xc3\xa9\n");
  ASSERT_NE(b, nullptr);
  const sparsec__json_node *c = sparsec__json_get(&doc, b, "c");
  ASSERT_NE(c, nullptr);
  EXPECT_STREQ(c->str, "x\"y\xf0\x9f\x98\x80");
  EXPECT_EQ(sparsec__json_get(&doc, root, "zz"), nullptr);
  sparsec__json_free(&doc);
}

TEST(Json, RejectsEverythingElse) {
  const std::string bad[] = {"",
                             "{",
                             "{\"a\":1,}",
                             "{\"a\":1 \"b\":2}",
                             "{\"a\":1,\"a\":2}",
                             "{\"a\":-1}",
                             "{\"a\":1.5}",
                             "{\"a\":1e3}",
                             "{\"a\":01}",
                             "{\"a\":true}",
                             "{\"a\":null}",
                             "{\"a\":\"x\ty\"}",
                             "{\"a\":\"\\x\"}",
                             "{\"a\":\"\\ud800\"}",
                             "{\"a\":\"\\u0000\"}",
                             "{\"a\":\"\xff\"}",
                             "{\"a\":\"\xc0\xaf\"}",
                             "{\"a\":\"abc}",
                             "{a:1}",
                             "{} {}",
                             "{\"a\":99999999999999999999}",
                             std::string(40, '[') + std::string(40, ']')};
  for (const std::string &text : bad) {
    sparsec__json_doc doc;
    char err[128] = "";
    EXPECT_EQ(
        sparsec__json_parse(text.data(), text.size(), &doc, err, sizeof(err)),
        -1)
        << text;
    EXPECT_NE(std::string(err).find("at byte"), std::string::npos) << text;
    EXPECT_EQ(doc.nodes, nullptr);
  }
}

TEST(Checkpoint, RoundTripRestoresEverything) {
  TempDir dir;
  Trained a(1, 4);
  ASSERT_EQ(sparsec_set_lr(a.csr, 0.05), SPARSEC_OK);
  ASSERT_EQ(sparsec_save(a.csr, dir.file("csr.safetensors").c_str()),
            SPARSEC_OK)
      << lastError();
  ASSERT_EQ(sparsec_save(a.emb, dir.file("emb.safetensors").c_str()),
            SPARSEC_OK)
      << lastError();
  EXPECT_EQ(listDir(dir.path),
            (std::vector<std::string>{"csr.safetensors", "emb.safetensors"}));

  Trained b(2, 0); // different seed: different pattern and values
  ASSERT_NE(hashModel(a.csr), hashModel(b.csr));
  ASSERT_EQ(sparsec_load(b.csr, dir.file("csr.safetensors").c_str()),
            SPARSEC_OK)
      << lastError();
  ASSERT_EQ(sparsec_load(b.emb, dir.file("emb.safetensors").c_str()),
            SPARSEC_OK)
      << lastError();
  EXPECT_EQ(hashModel(a.csr), hashModel(b.csr));
  EXPECT_EQ(hashModel(a.emb), hashModel(b.emb));
  int64_t steps = 0;
  double lr = 0;
  sparsec_step_count(b.csr, &steps);
  sparsec_get_lr(b.csr, &lr);
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(lr, 0.05);
  // Training continues identically (momentum buffers and row flags restored).
  for (int s = 4; s < 8; ++s) {
    a.step(s);
    b.step(s);
  }
  EXPECT_EQ(hashModel(a.csr), hashModel(b.csr));
  EXPECT_EQ(hashModel(a.emb), hashModel(b.emb));
}

TEST(Checkpoint, FileLayoutAndNames) {
  TempDir dir;
  Trained a(1, 2);
  std::string path = dir.file("m.safetensors");
  ASSERT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_OK);
  std::string file = readBytes(path);
  uint64_t hlen = headerLen(file);
  EXPECT_EQ((8 + hlen) % 8, 0u);
  sparsec__json_doc doc;
  char err[128];
  ASSERT_EQ(sparsec__json_parse(file.data() + 8, hlen, &doc, err, sizeof(err)),
            0)
      << err;
  const sparsec__json_node *root = &doc.nodes[0];
  const sparsec__json_node *meta =
      sparsec__json_get(&doc, root, "__metadata__");
  ASSERT_NE(meta, nullptr);
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "format")->str, "sparsec");
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "model")->str, "LinearCsr");
  EXPECT_EQ(std::string(sparsec__json_get(&doc, meta, "abi")->str),
            std::to_string(SPARSEC_ABI_VERSION));
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "step")->str, "2");
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "lr")->str, "0.10000000000000001");
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "fc.weight.size")->str, "[4,6]");
  char crc[9];
  snprintf(crc, sizeof(crc), "%08x",
           sparsec__crc32(0, file.data() + 8 + hlen, file.size() - 8 - hlen));
  EXPECT_STREQ(sparsec__json_get(&doc, meta, "crc32")->str, crc);

  struct Want {
    const char *name, *dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Want> want = {
      {"fc.weight.crow_indices", "I32", {kOut + 1}},
      {"fc.weight.col_indices", "I32", {11}},
      {"fc.weight.values", "F32", {11}},
      {"optimizer.fc.weight.momentum_buffer", "F32", {11}},
      {"fc.bias", "F32", {kOut}},
      {"optimizer.fc.bias.momentum_buffer", "F32", {kOut}}};
  EXPECT_EQ(root->count, (int64_t)want.size() + 1);
  int64_t expectBegin = 0;
  for (const Want &w : want) {
    const sparsec__json_node *t = sparsec__json_get(&doc, root, w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_STREQ(sparsec__json_get(&doc, t, "dtype")->str, w.dtype) << w.name;
    const sparsec__json_node *shape = sparsec__json_get(&doc, t, "shape");
    ASSERT_EQ(shape->count, (int64_t)w.shape.size());
    int64_t k = 0, numel = 1;
    for (int64_t c = shape->first; c >= 0; c = doc.nodes[c].next, ++k) {
      EXPECT_EQ(doc.nodes[c].ival, w.shape[k]) << w.name;
      numel *= w.shape[k];
    }
    const sparsec__json_node *off = sparsec__json_get(&doc, t, "data_offsets");
    int64_t begin = doc.nodes[off->first].ival,
            end = doc.nodes[doc.nodes[off->first].next].ival;
    EXPECT_EQ(begin, expectBegin)
        << w.name << ": tensors are contiguous in declaration order";
    EXPECT_EQ(end - begin, numel * 4);
    expectBegin = end;
  }
  EXPECT_EQ((uint64_t)expectBegin, file.size() - 8 - hlen);
  sparsec__json_free(&doc);

  // The data is the model's bytes.
  const int32_t *pos, *crd;
  sparsec_param_csr(a.csr, "fc.weight", &pos, &crd);
  EXPECT_EQ(memcmp(file.data() + tensorAt(file, "fc.weight.crow_indices"), pos,
                   4 * (kOut + 1)),
            0);
  EXPECT_EQ(memcmp(file.data() + tensorAt(file, "fc.weight.col_indices"), crd,
                   4 * 11),
            0);
  std::vector<float> b = values(a.csr, "fc.bias");
  EXPECT_EQ(memcmp(file.data() + tensorAt(file, "fc.bias"), b.data(), 4 * kOut),
            0);
}

TEST(Checkpoint, EmbeddingMomentumRowsAndFreshModels) {
  TempDir dir;
  Trained a(1, 0);
  std::string path = dir.file("emb.safetensors");
  // No step yet: no optimizer state in the file.
  ASSERT_EQ(sparsec_save(a.emb, path.c_str()), SPARSEC_OK);
  std::string h = header(readBytes(path));
  EXPECT_NE(h.find("\"emb.weight\":{\"dtype\":\"F32\",\"shape\":[10,3]"),
            std::string::npos)
      << h;
  EXPECT_EQ(h.find("optimizer."), std::string::npos) << h;
  a.step(0);
  ASSERT_EQ(sparsec_save(a.emb, path.c_str()), SPARSEC_OK);
  h = header(readBytes(path));
  EXPECT_NE(h.find("\"optimizer.emb.weight.momentum_buffer\":{\"dtype\":"
                   "\"F32\",\"shape\":[10,3]"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("\"optimizer.emb.weight.momentum_rows\":{\"dtype\":\"U8\","
                   "\"shape\":[10]"),
            std::string::npos)
      << h;
  // Loading a checkpoint without optimizer state resets it.
  Trained fresh(1, 0);
  ASSERT_EQ(sparsec_save(fresh.emb, dir.file("fresh.safetensors").c_str()),
            SPARSEC_OK);
  ASSERT_EQ(sparsec_load(a.emb, dir.file("fresh.safetensors").c_str()),
            SPARSEC_OK);
  EXPECT_EQ(hashModel(a.emb), hashModel(fresh.emb));
}

TEST(Checkpoint, LoadIgnoresOptimizerStateTheModelDoesNotKeep) {
  TempDir dir;
  Trained a(1, 3); // momentum 0.9
  std::string path = dir.file("m.safetensors");
  ASSERT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_OK);
  Desc d = linearDesc(true, makeSgd(0.1), 11); // plain SGD, same tensors
  sparsec_model *m = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 9, &m), SPARSEC_OK);
  ASSERT_EQ(sparsec_load(m, path.c_str()), SPARSEC_OK) << lastError();
  EXPECT_EQ(values(m, "fc.weight"), values(a.csr, "fc.weight"));
  sparsec_destroy(m);
}

TEST(Checkpoint, ReadableByIndependentReaders) {
#ifndef SPARSEC_TEST_PYTHON
  GTEST_SKIP() << "no Python interpreter configured";
#else
  if (access(SPARSEC_TEST_PYTHON, X_OK) != 0)
    GTEST_SKIP() << SPARSEC_TEST_PYTHON << " is not available";
  TempDir dir;
  Trained a(1, 2);
  std::string path = dir.file("m.safetensors");
  ASSERT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_OK);
  std::string cmd = std::string(SPARSEC_TEST_PYTHON) + " " +
                    SPARSEC_TEST_SOURCE_DIR + "/read_checkpoint.py " + path +
                    " 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p))
    out += buf;
  int rc = pclose(p);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("fc.weight.crow_indices I32 5 "), std::string::npos)
      << out;
  EXPECT_NE(out.find("fc.weight.values F32 11 "), std::string::npos) << out;
  EXPECT_NE(out.find("metadata fc.weight.size=[4,6]"), std::string::npos)
      << out;
  if (out.find("reader torch: ok") != std::string::npos)
    EXPECT_NE(out.find("torch csr fc.weight nnz=11"), std::string::npos) << out;
  EXPECT_NE(out.find("metadata model=LinearCsr"), std::string::npos) << out;
  std::cout << out;
#endif
}

// --- Atomic save ---------------------------------------------------------

TEST(CheckpointSave, FailedSavesLeaveTheOldFile) {
  TempDir dir;
  Trained a(1, 1), b(2, 1);
  // A file name so long that PATH.tmp.XXXXXX exceeds NAME_MAX: the
  // temporary cannot be created, PATH itself can.
  std::string path = dir.file(std::string(250, 'c'));
  ASSERT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_ERR_IO);
  writeBytes(path, "old contents");
  EXPECT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_ERR_IO);
  EXPECT_NE(lastError().find("cannot create temporary file"), std::string::npos)
      << lastError();
  EXPECT_EQ(readBytes(path), "old contents");

  // A directory that does not exist.
  EXPECT_EQ(sparsec_save(a.csr, dir.file("missing/m.safetensors").c_str()),
            SPARSEC_ERR_IO);

  // The target is a directory: the rename fails, the temp is removed.
  fs::create_directory(dir.file("target"));
  writeBytes(dir.file("target/keep"), "x");
  EXPECT_EQ(sparsec_save(a.csr, dir.file("target").c_str()), SPARSEC_ERR_IO);
  EXPECT_NE(lastError().find("cannot rename"), std::string::npos)
      << lastError();
  EXPECT_EQ(readBytes(dir.file("target/keep")), "x");

  // A good save over a good file replaces it; a failed write afterwards
  // (file size limit) leaves that file and no temporary behind.
  std::string good = dir.file("good.safetensors");
  ASSERT_EQ(sparsec_save(a.csr, good.c_str()), SPARSEC_OK);
  std::string before = readBytes(good);
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*oldHandler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  int rc = sparsec_save(b.csr, good.c_str());
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, oldHandler);
  EXPECT_EQ(rc, SPARSEC_ERR_IO);
  EXPECT_NE(lastError().find("cannot write"), std::string::npos) << lastError();
  EXPECT_EQ(readBytes(good), before);

  // Only the files this test made are left: no PATH.tmp.* anywhere.
  EXPECT_EQ(listDir(dir.path),
            (std::vector<std::string>{std::string(250, 'c'), "good.safetensors",
                                      "target"}));
}

TEST(CheckpointSave, ReadOnlyDirectory) {
  if (geteuid() == 0)
    GTEST_SKIP() << "running as root: directory permissions do not apply";
  TempDir dir;
  Trained a(1, 1);
  std::string path = dir.file("m.safetensors");
  writeBytes(path, "old");
  chmod(dir.path.c_str(), 0555);
  EXPECT_EQ(sparsec_save(a.csr, path.c_str()), SPARSEC_ERR_IO);
  chmod(dir.path.c_str(), 0755);
  EXPECT_EQ(readBytes(path), "old");
}

TEST(CheckpointSave, NullArguments) {
  Trained a(1, 0);
  EXPECT_EQ(sparsec_save(nullptr, "x"), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_save(a.csr, nullptr), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_load(nullptr, "x"), SPARSEC_ERR_NULL);
  EXPECT_EQ(sparsec_load(a.csr, nullptr), SPARSEC_ERR_NULL);
}

// --- Strict load -----------------------------------------------------------

class CheckpointLoad : public ::testing::Test {
protected:
  TempDir dir;
  Trained src{1, 3};
  Trained dst{2, 1};
  std::string good;
  std::string path;
  void SetUp() override {
    path = dir.file("m.safetensors");
    ASSERT_EQ(sparsec_save(src.csr, path.c_str()), SPARSEC_OK);
    good = readBytes(path);
  }
  /// Writes `bytes`, loads into dst.csr, expects `status` with `msg` and
  /// an unchanged model.
  void expectRejected(const std::string &bytes, int status,
                      const std::string &msg) {
    writeBytes(path, bytes);
    uint64_t before = hashModel(dst.csr);
    int rc = sparsec_load(dst.csr, path.c_str());
    EXPECT_EQ(rc, status) << sparsec_status_name(rc) << ": " << lastError();
    EXPECT_NE(lastError().find(msg), std::string::npos)
        << "message: " << lastError();
    EXPECT_EQ(hashModel(dst.csr), before) << "a failed load changed the model";
  }
};

TEST_F(CheckpointLoad, GoodFileLoads) {
  ASSERT_EQ(sparsec_load(dst.csr, path.c_str()), SPARSEC_OK) << lastError();
  EXPECT_EQ(hashModel(dst.csr), hashModel(src.csr));
}

TEST_F(CheckpointLoad, MissingFileAndDirectory) {
  uint64_t before = hashModel(dst.csr);
  EXPECT_EQ(sparsec_load(dst.csr, dir.file("nope").c_str()), SPARSEC_ERR_IO);
  EXPECT_NE(lastError().find("cannot open"), std::string::npos);
  EXPECT_EQ(sparsec_load(dst.csr, dir.path.c_str()), SPARSEC_ERR_IO);
  EXPECT_EQ(hashModel(dst.csr), before);
}

TEST_F(CheckpointLoad, Truncated) {
  expectRejected(good.substr(0, 5), SPARSEC_ERR_FORMAT,
                 "is truncated: file has 5 bytes");
  expectRejected(good.substr(0, 100), SPARSEC_ERR_FORMAT,
                 "is truncated: header says " +
                     std::to_string(8 + headerLen(good)) +
                     " bytes, file has 100");
  expectRejected(good.substr(0, good.size() - 1), SPARSEC_ERR_FORMAT,
                 "is truncated: tensor");
  expectRejected("", SPARSEC_ERR_FORMAT, "truncated");
}

TEST_F(CheckpointLoad, HeaderLengthBeyondFile) {
  std::string bad = good;
  bad[6] = 1; // header length + 2^48
  expectRejected(bad, SPARSEC_ERR_FORMAT, "is truncated: header says");
}

TEST_F(CheckpointLoad, BitFlipInData) {
  std::string bad = good;
  bad[tensorAt(bad, "fc.bias") + 2] ^= 0x10;
  expectRejected(bad, SPARSEC_ERR_FORMAT, "checksum mismatch");
  bad = good;
  bad.back() ^= 1;
  expectRejected(bad, SPARSEC_ERR_FORMAT, "checksum mismatch");
}

TEST_F(CheckpointLoad, CorruptJson) {
  std::string bad = good;
  editHeader(bad, "{\"__metadata__\"", "[\"__metadata__\"");
  expectRejected(bad, SPARSEC_ERR_FORMAT, "corrupt JSON header");
  bad = good;
  editHeader(bad, "\"shape\":[", "\"shape\":{");
  expectRejected(bad, SPARSEC_ERR_FORMAT, "corrupt JSON header");
  bad = good;
  editHeader(bad, "\"fc.bias\"", "\"fc.bias\x01");
  expectRejected(bad, SPARSEC_ERR_FORMAT, "corrupt JSON header");
  bad = good;
  bad[8] = ' '; // the header is then a string followed by ':'
  expectRejected(bad, SPARSEC_ERR_FORMAT, "corrupt JSON header");
}

TEST_F(CheckpointLoad, WrongModelName) {
  std::string bad = good;
  editHeader(bad, "\"model\":\"LinearCsr\"", "\"model\":\"LinearCsX\"");
  expectRejected(bad, SPARSEC_ERR_FORMAT,
                 "is for model 'LinearCsX', not 'LinearCsr'");
  // A checkpoint of another model entirely.
  ASSERT_EQ(sparsec_save(src.emb, dir.file("emb").c_str()), SPARSEC_OK);
  expectRejected(readBytes(dir.file("emb")), SPARSEC_ERR_FORMAT,
                 "is for model 'Embed', not 'LinearCsr'");
}

TEST_F(CheckpointLoad, WrongShapeOrDtype) {
  // Same model name, weight [4, 7] instead of [4, 6].
  Desc d = linearDesc(true, makeSgd(0.1, 0.9, 0.1, 0.01), 11);
  d.params[0].dims[1] = 7;
  d.desc.forward = nullptr;
  d.desc.train = nullptr;
  sparsec_model *other = nullptr;
  ASSERT_EQ(sparsec_create(&d.desc, 1, &other), SPARSEC_OK);
  ASSERT_EQ(sparsec_save(other, dir.file("other").c_str()), SPARSEC_OK);
  sparsec_destroy(other);
  // Its CSR arrays have the model's shapes; the dense size says otherwise.
  expectRejected(readBytes(dir.file("other")), SPARSEC_ERR_FORMAT,
                 "tensor 'fc.weight' has shape [4, 7], model expects [4, 6]");

  std::string bad = good;
  editHeader(bad, "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[4]",
             "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2]");
  expectRejected(bad, SPARSEC_ERR_FORMAT,
                 "tensor 'fc.bias' has shape [2], model expects [4]");
  bad = good;
  editHeader(bad, "\"fc.bias\":{\"dtype\":\"F32\"",
             "\"fc.bias\":{\"dtype\":\"I32\"");
  expectRejected(bad, SPARSEC_ERR_FORMAT,
                 "tensor 'fc.bias' has dtype I32, model expects F32");
}

TEST_F(CheckpointLoad, UnexpectedAndMissingTensors) {
  std::string bad = good;
  editHeader(bad, "\"fc.bias\":", "\"fc.bian\":");
  expectRejected(bad, SPARSEC_ERR_FORMAT,
                 "has tensor 'fc.bian', which model 'LinearCsr' does not have");
}

TEST_F(CheckpointLoad, InvalidCsrStructureWithValidChecksum) {
  // Columns of a row not ascending: rewrite the data, fix the checksum.
  const int32_t *pos, *crd;
  ASSERT_EQ(sparsec_param_csr(src.csr, "fc.weight", &pos, &crd), SPARSEC_OK);
  int row = 0;
  while (pos[row + 1] - pos[row] < 2)
    ++row;
  std::string bad = good;
  size_t at =
      tensorAt(bad, "fc.weight.col_indices") + 4 * (size_t)(pos[row] + 1);
  memcpy(&bad[at], &crd[pos[row]], 4); // duplicate column
  fixCrc(bad);
  expectRejected(bad, SPARSEC_ERR_FORMAT, "ascending per row");
  // Column out of range.
  bad = good;
  int32_t big = kIn;
  memcpy(&bad[tensorAt(bad, "fc.weight.col_indices") + 4 * 10], &big, 4);
  fixCrc(bad);
  expectRejected(bad, SPARSEC_ERR_FORMAT, "columns must be in [0, 6)");
  // Positions not starting at 0 / not ending at nnz / decreasing.
  bad = good;
  int32_t one = 1;
  memcpy(&bad[tensorAt(bad, "fc.weight.crow_indices")], &one, 4);
  fixCrc(bad);
  expectRejected(bad, SPARSEC_ERR_FORMAT, "must run from 0 to nnz 11");
  bad = good;
  int32_t twelve = 12;
  memcpy(&bad[tensorAt(bad, "fc.weight.crow_indices") + 4 * 2], &twelve, 4);
  fixCrc(bad);
  expectRejected(bad, SPARSEC_ERR_FORMAT, "fc.weight.crow_indices");
}

/// Builds a safetensors file from a header template: "@CRC@" is replaced
/// by the CRC32 of `data`; the header is padded to 8-byte alignment.
std::string buildFile(std::string headerText, const std::string &data) {
  char crc[9];
  snprintf(crc, sizeof(crc), "%08x",
           sparsec__crc32(0, data.data(), data.size()));
  size_t at = headerText.find("@CRC@");
  if (at != std::string::npos)
    headerText.replace(at, 5, crc);
  while ((8 + headerText.size()) % 8)
    headerText += ' ';
  std::string file(8, '\0');
  uint64_t n = headerText.size();
  for (int i = 0; i < 8; ++i)
    file[i] = (char)(n >> (8 * i));
  return file + headerText + data;
}

class HandmadeLoad : public ::testing::Test {
protected:
  TempDir dir;
  sparsec_model *m = nullptr;
  std::string path;
  std::string data;
  std::string error;
  void SetUp() override {
    // A dense model with two tensors: a [2] and b [3].
    Desc d;
    d.params = {
        makeParam("a", SPARSEC_LAYOUT_DENSE, {2}, 2, SPARSEC_INIT_UNIFORM, 1.0),
        makeParam("b", SPARSEC_LAYOUT_DENSE, {3}, 3, SPARSEC_INIT_UNIFORM,
                  1.0)};
    d.desc.abi_version = SPARSEC_ABI_VERSION;
    d.desc.name = "Tiny";
    d.desc.optimizer = makeSgd(0.1);
    d.link();
    ASSERT_EQ(sparsec_create(&d.desc, 1, &m), SPARSEC_OK);
    path = dir.file("t.safetensors");
    float v[5] = {1, 2, 3, 4, 5};
    data.assign(reinterpret_cast<const char *>(v), sizeof(v));
  }
  void TearDown() override { sparsec_destroy(m); }
  std::string meta(const std::string &extra = "") {
    return "\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\","
           "\"abi\":\"1\",\"step\":"
           "\"7\",\"lr\":\"0.25\",\"crc32\":\"@CRC@\"" +
           extra + "}";
  }
  int load(const std::string &headerText, const std::string &bytes) {
    writeBytes(path, buildFile(headerText, bytes));
    uint64_t before = hashModel(m);
    int rc = sparsec_load(m, path.c_str());
    error = lastError(); // hashModel resets the thread's message
    if (rc != SPARSEC_OK)
      EXPECT_EQ(hashModel(m), before);
    return rc;
  }
};

TEST_F(HandmadeLoad, ValidFileInAnyOrderWithExtraMetadata) {
  std::string h =
      "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}, " +
      meta(",\"note\":\"hi\"") +
      ",\"a\":{\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\":[0,8]}}";
  ASSERT_EQ(load(h, data), SPARSEC_OK) << error;
  EXPECT_EQ(values(m, "a"), (std::vector<float>{1, 2}));
  EXPECT_EQ(values(m, "b"), (std::vector<float>{3, 4, 5}));
  int64_t steps = 0;
  double lr = 0;
  sparsec_step_count(m, &steps);
  sparsec_get_lr(m, &lr);
  EXPECT_EQ(steps, 7);
  EXPECT_EQ(lr, 0.25);
}

TEST_F(HandmadeLoad, Rejections) {
  const std::string a =
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  const std::string b =
      "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}";
  const std::string cur = std::to_string(SPARSEC_ABI_VERSION),
                    next = std::to_string(SPARSEC_ABI_VERSION + 1);
  struct Case {
    std::string header, msg;
  } cases[] = {
      {"{" + a + "," + b + "}", "has no __metadata__"},
      {"{" + meta() + "," + a + "}", "has no tensor 'b'"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}",
       "tensors 'a' and 'b' overlap"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,24]}}",
       "is truncated: tensor 'b' ends at data byte 24, the data section has "
       "20"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,16]}}",
       "has 8 bytes of data, its shape needs 12"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,8]}}",
       "invalid data offsets"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8]}}",
       "is not {dtype, shape, data_offsets}"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20],"
           "\"x\":1}}",
       "is not {dtype, shape, data_offsets}"},
      {"{" + meta() + "," + a +
           ",\"b\":{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[8,20]}"
           "}",
       "tensor 'b' has shape [3, 1], model expects [3]"},
      {"{" + meta() + "," + a + "," + b + ",\"a\":{}}", "duplicate key"},
      {"{\"__metadata__\":{\"format\":\"other\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":\"0\","
       "\"lr\":\"1\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "is not a sparsec checkpoint"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"" + next + "\",\"step\":\"0\","
       "\"lr\":\"1\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "ABI version '" + next + "', this runtime reads '1' to '" + cur + "'"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"0\",\"step\":\"0\","
       "\"lr\":\"1\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "ABI version '0', this runtime reads '1' to '" + cur + "'"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":\"-1\","
       "\"lr\":\"1\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "invalid step"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":\"0\","
       "\"lr\":\"nan\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "invalid lr"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":\"0\","
       "\"lr\":\"1\",\"crc32\":\"xyz\"}," +
           a + "," + b + "}",
       "invalid crc32"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":\"0\","
       "\"lr\":\"1\"}," +
           a + "," + b + "}",
       "has no metadata 'crc32'"},
      {"{\"__metadata__\":{\"format\":\"sparsec\",\"model\":\"Tiny\",\"abi\":"
       "\"1\",\"step\":0,"
       "\"lr\":\"1\",\"crc32\":\"@CRC@\"}," +
           a + "," + b + "}",
       "metadata 'step' that is not a string"},
      {"[]", "header is not a JSON object"},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(load(c.header, data), SPARSEC_ERR_FORMAT) << c.header;
    EXPECT_NE(error.find(c.msg), std::string::npos)
        << "header: " << c.header << "\nmessage: " << error;
  }
}

} // namespace
