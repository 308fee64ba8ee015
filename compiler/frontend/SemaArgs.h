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

#include <initializer_list>
#include <vector>

namespace sparsec {

class DiagEngine;

enum class ArgType { Int, Number, Bool, Name, NameOrString, IntOrPair };

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
/// threshold, or any dynamic one, becomes a sparse_linear with that
/// pattern.
bool resolveMaskedLinear(ast::ParamDecl &p, DiagEngine &diags);

/// `head` followed by the keyword-only pruning arguments every masked layer
/// takes (prune, initial, final, begin, end, every, scope, norm;
/// SemaMasked.cpp).
std::vector<ArgSpec> withPruneArgs(std::initializer_list<ArgSpec> head);

/// Rows withDynamicArgs() appends.
constexpr size_t kNumDynamicArgs = 5;

/// `head` followed by the keyword-only dynamic-sparsity arguments of
/// sparse_linear and masked_linear (dynamic, delta_t, t_end, drop_fraction,
/// max_size; SemaDynamic.cpp).
std::vector<ArgSpec> withDynamicArgs(std::vector<ArgSpec> head);

/// `dynamic = none | set | rigl` with delta_t (default 100), t_end
/// (required), drop_fraction (default 0.3, in (0, 1)) and, for rigl,
/// max_size (default 2^20): `args` are the kNumDynamicArgs rows
/// withDynamicArgs() appends, bound (nullptr = not given; integers already
/// checked positive). Sets the dynamic fields of `l`; reports the first
/// problem (naming `kind`) and returns false on error.
bool resolveDynamic(llvm::ArrayRef<const ast::Argument *> args,
                    llvm::StringRef kind, ast::Layer &l, DiagEngine &diags);

/// The argument table of masked_linear (SemaMasked.cpp).
llvm::ArrayRef<ArgSpec> maskedLinearArgs();

/// The mask and pruning arguments of a masked layer whose kind, `in`,
/// `out` and shape fields are set in `l`: `args` is bound in the order of
/// maskedLinearArgs() (its in, out, bias and csr_below rows are not read).
bool resolveMaskAndPrune(ast::ParamDecl &p, DiagEngine &diags,
                         const BoundArgs &args, ast::Layer &l);

/// masked_conv2d(in_channels, out_channels, kernel_size, ...): binds and
/// checks the arguments of `p` and fills in `p.layer` (SemaConv.cpp).
bool resolveMaskedConv2d(ast::ParamDecl &p, DiagEngine &diags);

/// masked_lstm(input_size, hidden_size, ...): binds and checks the
/// arguments of `p` and fills in `p.layer` (SemaLstm.cpp).
bool resolveMaskedLstm(ast::ParamDecl &p, DiagEngine &diags);

/// `args`, bound to `specs`, rebound to the rows of maskedLinearArgs() with
/// the same names (rows `specs` lacks stay nullptr), for
/// resolveMaskAndPrune.
BoundArgs rebindToMaskedLinearArgs(llvm::ArrayRef<ArgSpec> specs,
                                    const BoundArgs &args);

/// Global pruning ranks the weights of every `scope = global` layer
/// together, so their schedules must agree: reports the first layer whose
/// schedule differs.
bool checkGlobalPruning(const ast::Model &model, DiagEngine &diags);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_SEMAARGS_H
