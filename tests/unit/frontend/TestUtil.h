//===- TestUtil.h - Helpers for the front-end unit tests --------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TESTS_UNIT_FRONTEND_TESTUTIL_H
#define SPARSEC_TESTS_UNIT_FRONTEND_TESTUTIL_H

#include "frontend/Frontend.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>
#include <string>
#include <vector>

namespace sparsec {
namespace test {

/// A source buffer named "test.sdl" run through the front end. Owns the
/// SourceMgr the AST points into.
struct Compiled {
  llvm::SourceMgr sm;
  unsigned bufferId = 0;
  std::string output; // everything the DiagEngine printed
  unsigned numErrors = 0;
  std::unique_ptr<ast::Module> module; // null if there were errors

  /// "L:C: error: message" for every error, in order.
  std::vector<std::string> errors() const;
  /// "L:C" of `loc`.
  std::string lineCol(llvm::SMLoc loc) const;
  /// The AST dump.
  std::string dump() const;
};

/// Runs parseAndCheck on `src` (no error limit).
std::unique_ptr<Compiled> compile(llvm::StringRef src);

/// Runs only the parser on `src`.
std::unique_ptr<Compiled> parseOnly(llvm::StringRef src);

/// A minimal valid model with the given pieces. Defaults give
///   input x : f32[B, 4]; target y : i64[B]; param fc : linear(4, 3);
///   forward { h = fc(x) }; loss = cross_entropy(h, y); sgd(lr = 0.1)
std::string model(llvm::StringRef decls = "", llvm::StringRef forward = "",
                  llvm::StringRef loss = "", llvm::StringRef opt = "");

} // namespace test
} // namespace sparsec

#endif // SPARSEC_TESTS_UNIT_FRONTEND_TESTUTIL_H
