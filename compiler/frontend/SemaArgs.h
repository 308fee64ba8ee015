//===- SemaArgs.h - Argument tables of layers and optimizers ----*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The table-driven argument binding shared by the files that resolve
// parameters and optimizers (SemaDecls.cpp, and one file per larger layer
// such as SemaMasked.cpp): arguments are given positionally in table order
// or by keyword, and each is checked against its row's type.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_SEMAARGS_H
#define SPARSEC_FRONTEND_SEMAARGS_H

#include "AST.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

namespace sparsec {

class DiagEngine;

enum class ArgType { Int, Number, Bool, Name, NameOrString };

struct ArgSpec {
  const char *name;
  ArgType type;
  bool required;
  /// Keyword-only arguments must come after all others in a table.
  bool keywordOnly = false;
};

/// Arguments bound to the rows of an ArgSpec table (nullptr = not given).
using BoundArgs = llvm::SmallVector<const ast::Argument *, 8>;

/// Binds `args` to the rows of `specs` and checks their types. Reports every
/// problem (unknown, duplicate, missing, mistyped) and returns false if any.
bool bindArgs(DiagEngine &diags, llvm::StringRef kind, llvm::SMLoc kindLoc,
              llvm::ArrayRef<ArgSpec> specs,
              const std::vector<ast::Argument> &args, BoundArgs &bound);

/// masked_linear(in, out, ...): binds and checks the arguments of `p` and
/// fills in `p.layer` (SemaMasked.cpp). A static mask sparser than the CSR
/// threshold becomes a sparse_linear with that pattern.
bool resolveMaskedLinear(ast::ParamDecl &p, DiagEngine &diags);

/// Global pruning ranks the weights of every `scope = global` layer
/// together, so their schedules must agree: reports the first layer whose
/// schedule differs.
bool checkGlobalPruning(const ast::Model &model, DiagEngine &diags);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_SEMAARGS_H
