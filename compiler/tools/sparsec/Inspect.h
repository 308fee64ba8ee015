//===- Inspect.h - sparsec inspect ------------------------------*- C++ -*-===//
//
// The `sparsec inspect` subcommand (Inspect.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TOOLS_INSPECT_H
#define SPARSEC_TOOLS_INSPECT_H

#include "llvm/ADT/ArrayRef.h"

namespace sparsec {

/// `sparsec inspect CHECKPOINT [--masks DIR]` with the arguments after
/// "inspect"; returns the exit status.
int runInspect(llvm::ArrayRef<const char *> args);

} // namespace sparsec

#endif // SPARSEC_TOOLS_INSPECT_H
