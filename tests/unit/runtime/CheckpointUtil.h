//===- CheckpointUtil.h - Helpers of the checkpoint tests ------*- C++ -*-===//
//
// Reading, writing and editing checkpoint files in tests: raw bytes, the
// header, a tensor's data offset, and the CRC32s after an edit.
//
//===----------------------------------------------------------------------===//
#ifndef SPARSEC_TESTS_RUNTIME_CHECKPOINTUTIL_H
#define SPARSEC_TESTS_RUNTIME_CHECKPOINTUTIL_H

#include "TestModels.h"
#include "checkpoint.h" // runtime/src: the metadata CRC

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace sparsec_test {

inline std::string readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
}

inline uint64_t headerLen(const std::string &file) {
  uint64_t h = 0;
  for (int i = 7; i >= 0; --i)
    h = (h << 8) | (unsigned char)file[i];
  return h;
}

inline std::string header(const std::string &file) {
  return file.substr(8, headerLen(file));
}

/// Recomputes the CRC32 in the header after the data section was edited.
inline void fixCrc(std::string &file) {
  size_t dataAt = 8 + headerLen(file);
  uint32_t crc = sparsec__crc32(0, file.data() + dataAt, file.size() - dataAt);
  size_t at = file.find("\"crc32\":\"");
  ASSERT_NE(at, std::string::npos);
  char hex[9];
  snprintf(hex, sizeof(hex), "%08x", crc);
  file.replace(at + 9, 8, hex);
}

/// Recomputes "metadata_crc32" (if the header has one) after a metadata
/// value was edited, as a writer that means the edit would.
inline void fixMetaCrc(std::string &file) {
  std::string h = header(file);
  sparsec__json_doc doc;
  char err[128];
  ASSERT_EQ(sparsec__json_parse(h.data(), h.size(), &doc, err, sizeof(err)), 0)
      << err;
  const sparsec__json_node *md =
      sparsec__json_get(&doc, &doc.nodes[0], "__metadata__");
  std::vector<sparsec__ck_kv> kv;
  for (int64_t c = md ? md->first : -1; c >= 0; c = doc.nodes[c].next)
    kv.push_back({doc.nodes[c].key, doc.nodes[c].key_len, doc.nodes[c].str,
                  doc.nodes[c].len});
  uint32_t crc = 0;
  EXPECT_EQ(sparsec__ck_meta_crc(kv.data(), kv.size(), &crc), 0);
  sparsec__json_free(&doc);
  const std::string key = "\"" SPARSEC_CK_META_CRC_KEY "\":\"";
  size_t at = file.find(key, 8);
  if (at == std::string::npos || at >= 8 + h.size())
    return;
  char hex[9];
  snprintf(hex, sizeof(hex), "%08x", crc);
  file.replace(at + key.size(), 8, hex);
}

/// Replaces `from` by the same-length `to` inside the header.
inline void editHeader(std::string &file, const std::string &from,
                       const std::string &to) {
  ASSERT_EQ(from.size(), to.size());
  size_t at = file.find(from, 8);
  ASSERT_NE(at, std::string::npos) << from;
  ASSERT_LT(at, 8 + headerLen(file));
  file.replace(at, from.size(), to);
}

/// Byte offset (in the file) of tensor `name`'s data.
inline size_t tensorAt(const std::string &file, const std::string &name) {
  std::string h = header(file);
  size_t at = h.find("\"" + name + "\":");
  EXPECT_NE(at, std::string::npos) << name;
  size_t off = h.find("\"data_offsets\":[", at);
  return 8 + h.size() + std::stoull(h.substr(off + 16));
}

} // namespace sparsec_test

#endif // SPARSEC_TESTS_RUNTIME_CHECKPOINTUTIL_H
