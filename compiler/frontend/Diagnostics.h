//===- Diagnostics.h - Front-end diagnostic engine --------------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// DiagEngine reports errors and notes through llvm::SourceMgr, so every
// message is printed exactly like llvm::SourceMgr::PrintMessage does:
//
//   file:line:col: error: message
//   <source line>
//       ^
//
// It counts errors and, to keep the output of fuzzed or garbage input
// readable, stops printing after a configurable number of errors (errors are
// still counted).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_DIAGNOSTICS_H
#define SPARSEC_FRONTEND_DIAGNOSTICS_H

#include "llvm/ADT/Twine.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

namespace sparsec {

class DiagEngine {
public:
  /// Diagnostics are printed to `os` using the buffers of `sm`.
  explicit DiagEngine(llvm::SourceMgr &sm, llvm::raw_ostream &os = llvm::errs())
      : sm(sm), os(os) {}

  /// Reports an error at `loc`.
  void error(llvm::SMLoc loc, const llvm::Twine &msg);
  /// Reports a warning at `loc` (does not count as an error).
  void warning(llvm::SMLoc loc, const llvm::Twine &msg);
  /// Attaches a note at `loc` to the last error or warning. Notes following a
  /// suppressed error are suppressed too.
  void note(llvm::SMLoc loc, const llvm::Twine &msg);

  bool hasErrors() const { return numErrors != 0; }
  unsigned getNumErrors() const { return numErrors; }

  /// Maximum number of errors printed (0 = no limit). When the limit is
  /// exceeded, "error: too many errors emitted, stopping now" is printed once
  /// and later diagnostics are only counted. Default: 20.
  void setErrorLimit(unsigned limit) { errorLimit = limit; }
  unsigned getErrorLimit() const { return errorLimit; }

  llvm::SourceMgr &getSourceMgr() { return sm; }
  llvm::raw_ostream &getStream() { return os; }

private:
  bool shouldPrintError();

  llvm::SourceMgr &sm;
  llvm::raw_ostream &os;
  unsigned numErrors = 0;
  unsigned errorLimit = 20;
  bool limitReported = false;
  bool lastSuppressed = false;
};

} // namespace sparsec

#endif // SPARSEC_FRONTEND_DIAGNOSTICS_H
