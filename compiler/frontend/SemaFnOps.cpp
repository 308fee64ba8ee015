//===- SemaFnOps.cpp - Checks of fn slicing, indexing and batch ops -------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The FnChecker members (SemaFnImpl.h) for the operations that take a part
// of a tensor or put parts together (narrow, cat, index_select), the
// coordinates of its nonzeros (nonzero) and the batched product of rank-3
// tensors (bmm). The typing rules are the table of docs/sparse-ops.md.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "SemaFnImpl.h"

#include <cmath>

using namespace sparsec;
using namespace sparsec::ast;
using namespace sparsec::ast::fnsema;
using llvm::Twine;

FnType FnChecker::checkNarrow(FnExpr &e) {
  if (!expectArgs(e, 4))
    return invalid();
  int64_t v[3];
  for (int k = 0; k < 3; ++k) {
    const FnExpr &n = *e.args[k + 1];
    if (n.op != FnOp::Number || n.number != std::floor(n.number) ||
        n.number < 0 || n.number > double(kMaxElements)) {
      diags.error(n.loc, "the dimension, start and length of 'narrow' must "
                         "be non-negative integers");
      return invalid();
    }
    v[k] = static_cast<int64_t>(n.number);
  }
  e.args.resize(1);
  FnType a = checkExpr(*e.args[0]);
  if (!a.isValid())
    return invalid();
  if (a.format == FnFormat::RowCOO || a.format == FnFormat::BSR) {
    diags.error(e.loc, "'narrow' needs a dense, @csr, @csc or @coo tensor, "
                       "got " +
                           fnTypeToString(a));
    return invalid();
  }
  e.dim = v[0];
  e.start = v[1];
  if (e.dim >= a.getRank() || a.shape[e.dim].isSymbolic() || v[2] < 1 ||
      e.start + v[2] > a.shape[e.dim].value) {
    diags.error(e.loc, "'narrow' of dimension " + Twine(v[0]) + " from " +
                           Twine(v[1]) + " with length " + Twine(v[2]) +
                           " is outside " + fnTypeToString(a) +
                           " (the dimension must be literal, the length "
                           "at least 1)");
    return invalid();
  }
  a.shape[e.dim].value = v[2];
  return a;
}

FnType FnChecker::checkCat(FnExpr &e) {
  e.dim = 0;
  for (const FnExpr::KwArg &kw : e.kwargs) {
    if (kw.name != "dim" || kw.value != std::floor(kw.value) || kw.value < 0) {
      diags.error(kw.loc, "'cat' takes one keyword argument, dim = a "
                          "non-negative integer");
      return invalid();
    }
    e.dim = static_cast<int64_t>(kw.value);
  }
  if (e.args.size() < 2) {
    diags.error(e.loc, "'cat' needs at least two tensors");
    return invalid();
  }
  FnType r;
  for (std::unique_ptr<FnExpr> &arg : e.args) {
    FnType a = checkExpr(*arg);
    if (!a.isValid())
      return invalid();
    if (a.format == FnFormat::RowCOO || a.format == FnFormat::BSR ||
        e.dim >= a.getRank() || a.shape[e.dim].isSymbolic()) {
      diags.error(arg->loc, "'cat' needs dense, @csr, @csc or @coo tensors "
                            "with a literal dimension " +
                                Twine(e.dim) + ", got " + fnTypeToString(a));
      return invalid();
    }
    if (!r.isValid()) {
      r = a;
      continue;
    }
    FnType same = a;
    same.shape[e.dim] = r.shape[e.dim];
    if (same != r) {
      diags.error(arg->loc, "the tensors of 'cat' must have one element "
                            "type, format and shape but dimension " +
                                Twine(e.dim) + ", got " + fnTypeToString(r) +
                                " and " + fnTypeToString(a));
      return invalid();
    }
    r.shape[e.dim].value += a.shape[e.dim].value;
  }
  if (r.shape[e.dim].value > kMaxElements) {
    diags.error(e.loc, "'cat' makes dimension " + Twine(e.dim) +
                           " larger "
                           "than 2^31");
    return invalid();
  }
  return r;
}

bool FnChecker::literalIndex(const FnExpr &n, StringRef what, int64_t &v) {
  if (n.op != FnOp::Number || n.number != std::floor(n.number) ||
      n.number < 0 || n.number > double(kMaxElements)) {
    diags.error(n.loc, what + " must be a non-negative integer");
    return false;
  }
  v = static_cast<int64_t>(n.number);
  return true;
}

FnType FnChecker::checkIndexSelect(FnExpr &e) {
  if (!expectArgs(e, 3) ||
      !literalIndex(*e.args[1], "the dimension of 'index_select'", e.dim))
    return invalid();
  e.args.erase(e.args.begin() + 1); // (a, idx) from here on
  FnType a = checkExpr(*e.args[0]), idx = checkExpr(*e.args[1]);
  if (!a.isValid() || !idx.isValid())
    return invalid();
  if (idx.elem != ElemType::I64 || idx.getRank() != 1) {
    diags.error(e.args[1]->loc, "the index of 'index_select' must be an "
                                "i64[K] parameter, got " +
                                    fnTypeToString(idx));
    return invalid();
  }
  bool formatOk = a.format == FnFormat::Dense || a.format == FnFormat::CSR ||
                  a.format == FnFormat::CSC || a.format == FnFormat::COO;
  if (!formatOk || a.isInteger() || a.getRank() != 2 || e.dim >= a.getRank()) {
    diags.error(e.loc, "'index_select' needs a dense, @csr, @csc or @coo "
                       "matrix and dimension 0 or 1, got " +
                           fnTypeToString(a) + " and dimension " +
                           Twine(e.dim));
    return invalid();
  }
  if (a.isSparse() && idx.shape[0].isSymbolic()) {
    diags.error(e.args[1]->loc,
                "the index of 'index_select' of a sparse matrix needs a "
                "literal length (the result's shape), got " +
                    fnTypeToString(idx));
    return invalid();
  }
  a.shape[e.dim] = idx.shape[0];
  return a;
}

FnType FnChecker::checkNonZero(FnExpr &e) {
  if (!expectArgs(e, 1))
    return invalid();
  FnType a = checkExpr(*e.args[0]);
  if (!a.isValid())
    return invalid();
  bool formatOk = a.format == FnFormat::Dense || a.format == FnFormat::CSR ||
                  a.format == FnFormat::CSC || a.format == FnFormat::COO;
  if (!formatOk || a.getRank() != 2) {
    diags.error(e.loc, "'nonzero' needs a dense, @csr, @csc or @coo matrix, "
                       "got " +
                           fnTypeToString(a));
    return invalid();
  }
  FnType r;
  r.elem = ElemType::I64;
  r.format = FnFormat::Indices;
  r.shape = {FnDim{0, "count"}, FnDim{int64_t(a.getRank()), ""}};
  return r;
}

FnType FnChecker::checkBmm(FnExpr &e) {
  if (!expectArgs(e, 2))
    return invalid();
  FnType a = checkExpr(*e.args[0]), b = checkExpr(*e.args[1]);
  if (!a.isValid() || !b.isValid() || !sameElem(e.loc, a, b))
    return invalid();
  if (a.getRank() != 3 || b.getRank() != 3 || b.isSparse() ||
      (a.isSparse() && a.format != FnFormat::COO)) {
    diags.error(e.loc, "'bmm' needs a dense or @coo f32[B, M, K] times a "
                       "dense f32[B, K, N], got " +
                           fnTypeToString(a) + " and " + fnTypeToString(b));
    return invalid();
  }
  if (a.shape[0] != b.shape[0] || a.shape[2] != b.shape[1]) {
    diags.error(e.loc, "the batch or inner dimensions of 'bmm' differ: " +
                           fnTypeToString(a) + " and " + fnTypeToString(b));
    return invalid();
  }
  FnType r;
  r.elem = a.elem;
  r.shape = {a.shape[0], a.shape[1], b.shape[2]};
  return r;
}
