//===- CheckpointUtil.h - Helpers of the checkpoint tests ------*- C++ -*-===//
//
// Reading, writing and editing checkpoint files in tests: raw bytes, the
// header, a tensor's data offset, and the CRC32 after an edit.
//
//===----------------------------------------------------------------------===//
#ifndef SPARSEC_TESTS_RUNTIME_CHECKPOINTUTIL_H
#define SPARSEC_TESTS_RUNTIME_CHECKPOINTUTIL_H

#include "TestModels.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

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
