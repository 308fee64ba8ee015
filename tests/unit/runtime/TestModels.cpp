//===- TestModels.cpp - Shared helpers of the runtime tests ---------------===//
//
// Temporary directories for checkpoint tests.
//
//===----------------------------------------------------------------------===//
#include "TestModels.h"

#include <filesystem>
#include <stdexcept>
#include <stdlib.h>

namespace sparsec_test {

TempDir::TempDir() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "sparsec-rt-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw std::runtime_error("mkdtemp failed");
  path = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path, ec);
}

} // namespace sparsec_test
