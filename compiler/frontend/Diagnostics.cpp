//===- Diagnostics.cpp - Front-end diagnostic engine ----------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"

using namespace sparsec;

bool DiagEngine::shouldPrintError() {
  ++numErrors;
  if (errorLimit == 0 || numErrors <= errorLimit) {
    lastSuppressed = false;
    return true;
  }
  lastSuppressed = true;
  if (!limitReported) {
    limitReported = true;
    // No location: printed as "error: too many errors emitted, ...".
    llvm::SMDiagnostic("", llvm::SourceMgr::DK_Error,
                       "too many errors emitted, stopping now")
        .print(nullptr, os);
  }
  return false;
}

void DiagEngine::error(llvm::SMLoc loc, const llvm::Twine &msg) {
  if (shouldPrintError())
    sm.PrintMessage(os, loc, llvm::SourceMgr::DK_Error, msg);
}

void DiagEngine::warning(llvm::SMLoc loc, const llvm::Twine &msg) {
  lastSuppressed = limitReported;
  if (!lastSuppressed)
    sm.PrintMessage(os, loc, llvm::SourceMgr::DK_Warning, msg);
}

void DiagEngine::note(llvm::SMLoc loc, const llvm::Twine &msg) {
  if (!lastSuppressed)
    sm.PrintMessage(os, loc, llvm::SourceMgr::DK_Note, msg);
}
