//===- CheckpointMetaTest.cpp - The checkpoint metadata's own CRC32 ------===//
//
// Finding R-7 of docs/reliability.md: the "crc32" metadata covers the data
// section only, so a flipped bit in the header's "step" or "lr" value used
// to load silently. Saves now add "metadata_crc32", the CRC32 of every
// other metadata entry except "crc32" (sorted by key, KEY NUL VALUE NUL,
// so independent of key order and JSON spelling). These tests check what
// is written, that every bit flip in the metadata values is refused with a
// message and without changing the model, that files without the entry
// (older saves, other writers) still load, and that values invalid in
// themselves keep their own messages.
//
//===----------------------------------------------------------------------===//
#include "CheckpointUtil.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sparsec_test;

namespace {

std::string lastError() { return sparsec_last_error(); }

/// `file` with its JSON header replaced by `text` (padded, length updated).
std::string withHeader(const std::string &file, std::string text) {
  std::string data = file.substr(8 + headerLen(file));
  while ((8 + text.size()) % 8)
    text += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = (char)((uint64_t)text.size() >> (8 * i));
  return out + text + data;
}

/// The metadata entries of a file's header, as the loader decodes them.
struct Meta {
  sparsec__json_doc doc;
  std::vector<sparsec__ck_kv> kv;
  explicit Meta(const std::string &file) {
    char err[128];
    std::string h = header(file);
    EXPECT_EQ(sparsec__json_parse(h.data(), h.size(), &doc, err, sizeof(err)),
              0)
        << err;
    const sparsec__json_node *md =
        sparsec__json_get(&doc, &doc.nodes[0], "__metadata__");
    for (int64_t c = md->first; c >= 0; c = doc.nodes[c].next) {
      const sparsec__json_node &n = doc.nodes[c];
      kv.push_back({n.key, n.key_len, n.str, n.len});
    }
  }
  ~Meta() { sparsec__json_free(&doc); }
  std::string get(const std::string &key) const {
    for (const sparsec__ck_kv &e : kv)
      if (std::string(e.key, e.key_len) == key)
        return std::string(e.val, e.val_len);
    return "";
  }
  uint32_t crc() const {
    uint32_t c = 0;
    EXPECT_EQ(sparsec__ck_meta_crc(kv.data(), kv.size(), &c), 0);
    return c;
  }
};

class CheckpointMeta : public ::testing::Test {
protected:
  TempDir dir;
  sparsec_model *src = nullptr, *dst = nullptr;
  std::string path, good, error;
  void SetUp() override {
    Desc d = linearDesc(true, makeSgd(0.05, 0.9), 11);
    ASSERT_EQ(sparsec_create(&d.desc, 1, &src), SPARSEC_OK);
    ASSERT_EQ(sparsec_create(&d.desc, 2, &dst), SPARSEC_OK);
    std::vector<float> x(2 * kIn, 0.5f), y(2 * kOut, -0.25f);
    const void *in[2] = {x.data(), y.data()};
    float loss;
    for (int s = 0; s < 3; ++s)
      ASSERT_EQ(sparsec_train_step(src, 2, in, &loss), SPARSEC_OK);
    path = dir.file("m.safetensors");
    ASSERT_EQ(sparsec_save(src, path.c_str()), SPARSEC_OK);
    good = readBytes(path);
  }
  void TearDown() override {
    sparsec_destroy(src);
    sparsec_destroy(dst);
  }
  /// Loads `bytes` into dst: the status (the message in `error`), and
  /// whether dst stayed unchanged.
  int load(const std::string &bytes, bool *unchanged = nullptr) {
    writeBytes(path, bytes);
    uint64_t before = hashModel(dst);
    int rc = sparsec_load(dst, path.c_str());
    error = lastError();
    if (unchanged)
      *unchanged = hashModel(dst) == before;
    return rc;
  }
};

TEST_F(CheckpointMeta, SavedCrcCoversTheOtherMetadata) {
  Meta m(good);
  std::string crc = m.get("metadata_crc32");
  char want[9];
  snprintf(want, sizeof(want), "%08x", m.crc());
  EXPECT_EQ(crc, want);
  // Independent of the order of the entries.
  std::vector<sparsec__ck_kv> reversed(m.kv.rbegin(), m.kv.rend());
  uint32_t c = 0;
  ASSERT_EQ(sparsec__ck_meta_crc(reversed.data(), reversed.size(), &c), 0);
  EXPECT_EQ(c, m.crc());
  // "crc32" and "metadata_crc32" are not covered; every other entry is.
  for (size_t i = 0; i < m.kv.size(); ++i) {
    std::vector<sparsec__ck_kv> without = m.kv;
    without.erase(without.begin() + (long)i);
    ASSERT_EQ(sparsec__ck_meta_crc(without.data(), without.size(), &c), 0);
    std::string key(m.kv[i].key, m.kv[i].key_len);
    if (key == "crc32" || key == "metadata_crc32")
      EXPECT_EQ(c, m.crc()) << key;
    else
      EXPECT_NE(c, m.crc()) << key;
  }
}

TEST_F(CheckpointMeta, EveryBitFlipInAMetadataValueIsRefused) {
  const std::string h = header(good);
  int cases = 0;
  for (const char *key : {"\"step\":\"", "\"lr\":\"", "\"optimizer\":\"",
                          "\"sparse_mode\":\"", "\"metadata_crc32\":\""}) {
    size_t start = h.find(key);
    ASSERT_NE(start, std::string::npos) << key;
    start += strlen(key);
    const size_t end = h.find('"', start);
    for (size_t k = start; k < end; ++k) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = good;
        bad[8 + k] ^= (char)(1 << bit);
        bool unchanged = false;
        int rc = load(bad, &unchanged);
        ++cases;
        EXPECT_EQ(rc, SPARSEC_ERR_FORMAT)
            << key << " byte " << k - start << " bit " << bit << ": " << error;
        EXPECT_TRUE(unchanged) << key << " byte " << k - start;
        EXPECT_FALSE(error.empty()) << key << " byte " << k - start;
      }
    }
  }
  EXPECT_GT(cases, 100);
  // The flip that used to load silently (lr 0.05 -> 0.15 and step 3 -> 2)
  // is now named for what it is.
  std::string bad = good;
  editHeader(bad, "\"step\":\"3\"", "\"step\":\"2\"");
  EXPECT_EQ(load(bad), SPARSEC_ERR_FORMAT);
  EXPECT_NE(error.find("metadata checksum mismatch"), std::string::npos)
      << error;
  EXPECT_NE(error.find("m.safetensors"), std::string::npos);
  // A deliberate edit with the checksum recomputed loads.
  fixMetaCrc(bad);
  EXPECT_EQ(load(bad), SPARSEC_OK) << error;
  int64_t steps = -1;
  EXPECT_EQ(sparsec_step_count(dst, &steps), SPARSEC_OK);
  EXPECT_EQ(steps, 2);
}

TEST_F(CheckpointMeta, FilesWithoutTheEntryStillLoad) {
  // Saves of earlier versions and other writers (the Python package,
  // safetensors.torch.save_file) have no metadata_crc32: accepted.
  std::string h = header(good);
  const std::string entry =
      ",\"metadata_crc32\":\"" + Meta(good).get("metadata_crc32") + "\"";
  size_t at = h.find(entry);
  ASSERT_NE(at, std::string::npos);
  h.erase(at, entry.size());
  EXPECT_EQ(load(withHeader(good, h)), SPARSEC_OK) << error;
  EXPECT_EQ(hashModel(dst), hashModel(src));
  // ... and another writer's order and spacing with the right CRC, too.
  Meta m(good);
  std::string text = "{ \"__metadata__\" : {";
  for (size_t i = m.kv.size(); i-- > 0;)
    text += "\"" + std::string(m.kv[i].key, m.kv[i].key_len) + "\": \"" +
            std::string(m.kv[i].val, m.kv[i].val_len) + "\"" + (i ? ", " : "");
  text += "}" + h.substr(h.find("},") + 1);
  EXPECT_EQ(load(withHeader(good, text)), SPARSEC_OK) << error;
}

TEST_F(CheckpointMeta, InvalidValuesKeepTheirOwnMessages) {
  struct Case {
    const char *from, *to, *msg;
  } cases[] = {
      {"\"step\":\"3\"", "\"step\":\"x\"", "has an invalid step 'x'"},
      {"\"lr\":\"0.", "\"lr\":\"-.", "has an invalid lr"},
      {"\"model\":\"LinearCsr\"", "\"model\":\"LinearCsX\"",
       "is for model 'LinearCsX', not 'LinearCsr'"},
      {"\"metadata_crc32\":\"", "\"metadata_crc32\":\"#", ""},
  };
  for (const Case &c : cases) {
    std::string h = header(good);
    size_t at = h.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    h.replace(at, strlen(c.from), c.to);
    bool unchanged = false;
    EXPECT_EQ(load(withHeader(good, h), &unchanged), SPARSEC_ERR_FORMAT)
        << c.to;
    EXPECT_TRUE(unchanged) << c.to;
    std::string msg = *c.msg ? c.msg : "has an invalid metadata_crc32 '#";
    EXPECT_NE(error.find(msg), std::string::npos) << error;
  }
}

} // namespace
