//===- SemaFnImpl.h - The checker of fn kernels (private) -------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The class that checks one `fn` kernel and types its expressions
// (SemaFn.cpp: types, operators, products, reductions, calls;
// SemaFnOps.cpp: narrow, cat, index_select, nonzero and bmm). Private to
// the frontend.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_SEMAFNIMPL_H
#define SPARSEC_FRONTEND_SEMAFNIMPL_H

#include "FnAST.h"

#include "llvm/ADT/StringMap.h"

namespace sparsec::ast::fnsema {

using llvm::SMLoc;
using llvm::StringRef;

/// The spelling of an operator in messages.
inline StringRef opSpelling(FnOp op) {
  switch (op) {
  case FnOp::Add:
    return "'+'";
  case FnOp::Sub:
    return "'-'";
  case FnOp::Mul:
    return "'*'";
  case FnOp::Div:
    return "'/'";
  case FnOp::MatMul:
    return "'@'";
  default:
    return fnOpName(op);
  }
}

class FnChecker {
public:
  FnChecker(FnDecl &fn, DiagEngine &diags) : fn(fn), diags(diags) {}
  void check();

private:
  bool resolveType(const TypeSpec &spec, FnType &out, bool isResult);
  FnType checkExpr(FnExpr &e);
  FnType checkBinary(FnExpr &e);
  FnType checkMatMul(FnExpr &e, FnExpr &lhs, FnExpr &rhs);
  FnType checkCall(FnExpr &e);
  /// Type of an elementwise combination of `a` and `b` (same shape and
  /// element type; sparse with the same format stays sparse).
  FnType elementwise(FnExpr &e, const FnType &a, const FnType &b);
  bool expectArgs(FnExpr &e, size_t n, bool kwargs = false);
  /// `beta =` and `alpha =` of addmm and sspaddmm.
  bool scaleKwargs(FnExpr &e);
  /// Makes `r`, the type of product `e` (smm, hspmm, sspaddmm), sparse: in
  /// the sparse factor's format, or @coo(1) for `hybridRows`.
  bool sparseProduct(FnExpr &e, FnType &r, bool hybridRows);
  /// narrow(a, dim, start, length): literal integers, inside a's shape.
  FnType checkNarrow(FnExpr &e);
  /// cat(a, b, ..., dim = d): one format, equal other dimensions.
  FnType checkCat(FnExpr &e);
  /// index_select(a, dim, idx): idx an i64[K] parameter.
  FnType checkIndexSelect(FnExpr &e);
  /// nonzero(a): i64[count, rank] coordinates (a kernel's result only).
  FnType checkNonZero(FnExpr &e);
  /// bmm(a, b): a f32[B, M, K] (dense or @coo), b dense f32[B, K, N].
  FnType checkBmm(FnExpr &e);
  /// A literal non-negative integer argument of `e` (dim, start, ...).
  bool literalIndex(const FnExpr &n, StringRef what, int64_t &v);
  bool sameElem(SMLoc loc, const FnType &a, const FnType &b);
  FnType invalid() { return FnType(); }
  /// Parameter and dimension names become C names of the kernel's entry
  /// point (docs/sparse-ops.md): they must be valid and distinct there.
  void checkCNames();

  FnDecl &fn;
  DiagEngine &diags;
  llvm::StringMap<FnType> scope;
  /// Checking the argument of to_dense(transpose(...)).
  bool transposeToDense = false;
};

} // namespace sparsec::ast::fnsema

#endif // SPARSEC_FRONTEND_SEMAFNIMPL_H
