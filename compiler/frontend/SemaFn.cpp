//===- SemaFn.cpp - Semantic checks of free-standing kernels --------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks `fn` kernels (FnAST.h) and gives every expression its FnType:
// element type, shape (literal or symbolic dimensions) and format (dense,
// csr, csc, coo). The typing rules are the table of docs/sparse-ops.md; every
// error names the offending construct and points at it.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "SemaFnImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::ArrayRef;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace sparsec::ast::fnsema {

bool FnChecker::resolveType(const TypeSpec &spec, FnType &out, bool isResult) {
  bool ok = true;
  out = FnType();
  // i64: a dense vector of indices (index_select), or the [count, rank]
  // coordinates of nonzero(...) as a result, count a new name.
  bool indices = spec.elem == ElemType::I64 && isResult;
  bool badShape =
      isResult ? spec.dims.size() != 2 || !spec.dims[0].isSymbolic ||
                     llvm::is_contained(fn.symbols, spec.dims[0].symbol) ||
                     spec.dims[1].isSymbolic
               : spec.dims.size() != 1;
  if (spec.elem == ElemType::I64 &&
      (badShape || spec.encoding.kind != EncodingKind::None)) {
    diags.error(spec.loc,
                isResult ? "an i64 result is the coordinates of nonzero(...): "
                           "i64[n, rank] with n a new name (the count, known "
                           "at run time)"
                         : "an i64 parameter must be a dense vector of "
                           "indices (i64[K]), the index of index_select");
    return false;
  }
  if (spec.elem != ElemType::F32 && spec.elem != ElemType::F64 &&
      spec.elem != ElemType::I64) {
    diags.error(spec.loc, "kernel tensors must be f32 or f64 (or i64 "
                          "indices), got '" +
                              elemTypeName(spec.elem) + "'");
    ok = false;
  }
  for (const DimSpec &d : spec.dims) {
    FnDim dim;
    if (d.isSymbolic) {
      dim.symbol = d.symbol;
      if (isResult && !indices && !llvm::is_contained(fn.symbols, d.symbol)) {
        diags.error(d.loc, "dimension '" + d.symbol + "' of the result of '" +
                               fn.name +
                               "' is not a dimension of any parameter");
        ok = false;
      }
      if (!isResult && !llvm::is_contained(fn.symbols, d.symbol))
        fn.symbols.push_back(d.symbol);
    } else {
      if (d.value < 1 || d.value > kMaxElements) {
        diags.error(d.loc, "dimension must be between 1 and " +
                               Twine(kMaxElements) + ", got " + Twine(d.value));
        ok = false;
      }
      dim.value = d.value;
    }
    out.shape.push_back(dim);
  }
  switch (spec.encoding.kind) {
  case EncodingKind::None:
    break;
  case EncodingKind::CSR:
    out.format = FnFormat::CSR;
    break;
  case EncodingKind::CSC:
    out.format = FnFormat::CSC;
    break;
  case EncodingKind::BSR: {
    out.format = FnFormat::BSR;
    out.blockRows = spec.encoding.params[0];
    out.blockCols = spec.encoding.params[1];
    for (size_t d = 0; d < spec.dims.size() && d < 2; ++d) {
      int64_t block = d == 0 ? out.blockRows : out.blockCols;
      if (block < 1 ||
          (!spec.dims[d].isSymbolic && spec.dims[d].value % block != 0)) {
        diags.error(spec.encoding.loc, "block size " + Twine(block) +
                                           " of '@bsr' must be "
                                           "positive and divide dimension " +
                                           Twine(d) + " (" +
                                           Twine(spec.dims[d].value) + ")");
        return false;
      }
    }
    break;
  }
  case EncodingKind::COO:
    // @coo(k): the first k dimensions sparse, the rest dense; on a matrix
    // @coo(2) is @coo and @coo(1) stores whole rows; rank 3: @coo(3).
    if (spec.encoding.params.empty() ||
        size_t(spec.encoding.params[0]) == spec.dims.size()) {
      out.format = FnFormat::COO;
      break;
    }
    if (spec.encoding.params[0] == 1 && spec.dims.size() == 2) {
      out.format = FnFormat::RowCOO;
      break;
    }
    diags.error(spec.encoding.loc,
                "encoding '@coo(" + Twine(spec.encoding.params[0]) +
                    ")' of a kernel tensor of " + Twine(spec.dims.size()) +
                    " dimensions is not supported yet (use @coo(1) or "
                    "@coo(2) on a matrix, @coo on 3 dimensions)");
    return false;
  case EncodingKind::NM: {
    out.format = FnFormat::NM;
    out.blockRows = spec.encoding.params[0];
    out.blockCols = spec.encoding.params[1];
    bool divides = spec.dims.size() == 2 && !spec.dims[1].isSymbolic &&
                   spec.dims[1].value % out.blockCols == 0;
    if (out.blockRows < 1 || out.blockRows > out.blockCols || !divides) {
      diags.error(spec.encoding.loc,
                  "'@nm(" + Twine(out.blockRows) + ", " + Twine(out.blockCols) +
                      ")' needs 1 <= n <= m and m dividing the columns of a "
                      "matrix");
      return false;
    }
    if (isResult) {
      diags.error(spec.encoding.loc,
                  "an @nm result is not supported (an @nm tensor can be "
                  "multiplied, summed or densified)");
      return false;
    }
    break;
  }
  }
  if (out.isSparse()) {
    if (out.getRank() != 2 &&
        (out.getRank() != 3 || out.format != FnFormat::COO)) {
      diags.error(spec.encoding.loc,
                  "a sparse kernel tensor must have 2 dimensions (3 with "
                  "@coo), got " +
                      Twine(out.getRank()));
      ok = false;
    }
    for (size_t i = 0; i < spec.dims.size(); ++i)
      if (spec.dims[i].isSymbolic) {
        diags.error(spec.dims[i].loc,
                    "a sparse kernel tensor needs literal dimensions, got '" +
                        spec.dims[i].symbol + "'");
        ok = false;
      }
  }
  if (ok && isResult && out.isSparse() && out.getRank() == 3) {
    diags.error(spec.encoding.loc, "a 3-dimensional @coo result is not "
                                   "supported (bmm gives a dense result)");
    ok = false;
  }
  if (ok)
    out.elem = spec.elem;
  if (indices)
    out.format = FnFormat::Indices;
  return ok;
}

void FnChecker::check() {
  for (FnParam &p : fn.params) {
    if (scope.count(p.name)) {
      diags.error(p.loc, "parameter '" + p.name + "' of '" + fn.name +
                             "' is declared twice");
      continue;
    }
    resolveType(p.spec, p.type, /*isResult=*/false);
    scope[p.name] = p.type;
  }
  checkCNames();
  bool resultOk = resolveType(fn.resultSpec, fn.resultType, /*isResult=*/true);
  for (FnStmt &s : fn.stmts) {
    FnType t = checkExpr(*s.value);
    if (scope.count(s.name)) {
      diags.error(s.loc,
                  "'" + s.name + "' is already defined in '" + fn.name + "'");
      continue;
    }
    scope[s.name] = t;
  }
  FnType t = checkExpr(*fn.ret);
  // nonzero(...): the count is named by the result type.
  if (t.format == FnFormat::Indices && fn.resultType.format == t.format &&
      fn.resultType.shape[1] == t.shape[1])
    t.shape[0] = fn.resultType.shape[0];
  if (t.isValid() && resultOk && t != fn.resultType) {
    diags.error(fn.retLoc, "'" + fn.name + "' returns " + fnTypeToString(t) +
                               " but its result type is " +
                               fnTypeToString(fn.resultType) +
                               (t.isSparse() && !fn.resultType.isSparse()
                                    ? " (use to_dense)"
                                    : ""));
  }
}

bool FnChecker::sameElem(SMLoc loc, const FnType &a, const FnType &b) {
  if (a.elem == b.elem)
    return true;
  diags.error(loc, "operands have different element types: " +
                       fnTypeToString(a) + " and " + fnTypeToString(b));
  return false;
}

FnType FnChecker::elementwise(FnExpr &e, const FnType &a, const FnType &b) {
  if (!sameElem(e.loc, a, b))
    return invalid();
  if (a.shape != b.shape) {
    diags.error(e.loc, "operands of " + opSpelling(e.op) +
                           " have different shapes: " + fnTypeToString(a) +
                           " and " + fnTypeToString(b));
    return invalid();
  }
  FnType r = a;
  if (a.isSparse() && b.isSparse()) {
    if (a.format != b.format || a.blockRows != b.blockRows ||
        a.blockCols != b.blockCols) {
      // The encoding part of the types ("@bsr(2, 2)").
      auto enc = [](const FnType &t) {
        std::string s = fnTypeToString(t);
        return s.substr(s.find('@'));
      };
      diags.error(e.loc, "operands of " + opSpelling(e.op) +
                             " have different encodings: " + enc(a) + " and " +
                             enc(b) + " (convert one with to_dense)");
      return invalid();
    }
    return r;
  }
  r.format = FnFormat::Dense;
  r.blockRows = r.blockCols = 1;
  return r;
}

FnType FnChecker::checkMatMul(FnExpr &e, FnExpr &lhs, FnExpr &rhs) {
  FnType a = checkExpr(lhs), b = checkExpr(rhs);
  if (!a.isValid() || !b.isValid())
    return invalid();
  if (!sameElem(e.loc, a, b))
    return invalid();
  if (a.getRank() != 2 || (b.getRank() != 1 && b.getRank() != 2)) {
    diags.error(e.loc, "matrix product needs a matrix times a matrix or a "
                       "vector, got " +
                           fnTypeToString(a) + " and " + fnTypeToString(b));
    return invalid();
  }
  if (a.shape[1] != b.shape[0]) {
    diags.error(e.loc, "inner dimensions of the matrix product differ: " +
                           fnTypeToString(a) + " and " + fnTypeToString(b));
    return invalid();
  }
  FnType r;
  r.elem = a.elem;
  r.shape.push_back(a.shape[0]);
  if (b.getRank() == 2)
    r.shape.push_back(b.shape[1]);
  if (a.isSparse() && b.isSparse()) {
    // SpGEMM: a sparse result in the operands' encoding.
    if (a.format != b.format || b.getRank() != 2 || a.format == FnFormat::BSR ||
        a.format == FnFormat::RowCOO) {
      diags.error(e.loc, "sparse @ sparse needs two @csr, two @csc or two "
                         "@coo matrices, got " +
                             fnTypeToString(a) + " and " + fnTypeToString(b));
      return invalid();
    }
    r.format = a.format;
  }
  return r;
}

FnType FnChecker::checkBinary(FnExpr &e) {
  FnExpr &lhs = *e.args[0], &rhs = *e.args[1];
  if (e.op == FnOp::MatMul)
    return checkMatMul(e, lhs, rhs);
  bool lnum = lhs.op == FnOp::Number, rnum = rhs.op == FnOp::Number;
  if (e.op == FnOp::Div) {
    if (!rnum) {
      diags.error(e.loc, "'/' divides a tensor by a number only");
      return invalid();
    }
    if (lnum) {
      diags.error(lhs.loc, "expected a tensor before '/'");
      return invalid();
    }
    e.scale = rhs.number;
    e.args.pop_back();
    return checkExpr(lhs);
  }
  if (e.op == FnOp::Mul && lnum != rnum) {
    // A number scales the stored values of the other operand.
    e.scale = lnum ? lhs.number : rhs.number;
    e.args.erase(e.args.begin() + (lnum ? 0 : 1));
    return checkExpr(*e.args[0]);
  }
  if (lnum || rnum) {
    diags.error(lnum ? lhs.loc : rhs.loc,
                "a number can only scale a tensor (c * A, A * c, A / c)");
    return invalid();
  }
  FnType a = checkExpr(lhs), b = checkExpr(rhs);
  if (!a.isValid() || !b.isValid())
    return invalid();
  return elementwise(e, a, b);
}

bool FnChecker::expectArgs(FnExpr &e, size_t n, bool kwargs) {
  if (e.args.size() != n) {
    diags.error(e.loc, "'" + e.name + "' takes " + Twine(n) + " argument" +
                           (n == 1 ? "" : "s") + ", got " +
                           Twine(e.args.size()));
    return false;
  }
  if (!kwargs && !e.kwargs.empty()) {
    diags.error(e.kwargs.front().loc,
                "'" + e.name + "' takes no keyword arguments");
    return false;
  }
  return true;
}

bool FnChecker::scaleKwargs(FnExpr &e) {
  for (const FnExpr::KwArg &kw : e.kwargs) {
    if (kw.name == "beta")
      e.beta = kw.value;
    else if (kw.name == "alpha")
      e.alpha = kw.value;
    else {
      diags.error(kw.loc, "unknown keyword argument '" + kw.name + "' of '" +
                              e.name + "'; expected beta or alpha");
      return false;
    }
  }
  return true;
}

bool FnChecker::sparseProduct(FnExpr &e, FnType &r, bool hybridRows) {
  const FnType &a = e.args[e.args.size() - 2]->type;
  const FnType &x = e.args.back()->type;
  bool rowsOk = a.format == FnFormat::CSR || a.format == FnFormat::CSC ||
                a.format == FnFormat::COO;
  if (!rowsOk || x.isSparse() || x.getRank() != 2) {
    diags.error(e.loc, "'" + e.name +
                           "' needs a @csr, @csc or @coo matrix times a "
                           "dense matrix, got " +
                           fnTypeToString(a) + " and " + fnTypeToString(x));
    return false;
  }
  if (r.shape[1].isSymbolic()) {
    diags.error(e.args.back()->loc,
                "the columns of a sparse result must be a literal size "
                "(sparse_tensor.assemble needs a static shape), got " +
                    fnTypeToString(x));
    return false;
  }
  r.format = hybridRows ? FnFormat::RowCOO : a.format;
  return true;
}

FnType FnChecker::checkCall(FnExpr &e) {
  // clone(a) is a (copy of) a; norm(a) is sqrt(sum(a * a)) (its gradient
  // follows).
  if ((e.name == "clone" || e.name == "norm") && expectArgs(e, 1)) {
    std::unique_ptr<FnExpr> a = std::move(e.args[0]);
    e.args.clear();
    if (e.name == "clone") {
      e = std::move(*a);
      return checkExpr(e);
    }
    auto square = std::make_unique<FnExpr>();
    square->op = FnOp::Mul;
    square->loc = e.loc;
    square->args.push_back(cloneExpr(*a));
    square->args.push_back(std::move(a));
    auto sum = std::make_unique<FnExpr>();
    sum->loc = e.loc;
    sum->name = "sum";
    sum->args.push_back(std::move(square));
    e.name = "sqrt";
    e.args.push_back(std::move(sum));
  } else if (e.name == "clone" || e.name == "norm") {
    return invalid();
  }
  e.op = llvm::StringSwitch<FnOp>(e.name)
             .Case("mm", FnOp::MatMul)
             .Case("addmm", FnOp::AddMM)
             .Cases({"smm", "hspmm"}, FnOp::SparseMM)
             .Case("sspaddmm", FnOp::AddMM)
             .Case("pow", FnOp::Pow)
             .Case("sum", FnOp::Sum)
             .Cases({"max", "min"}, FnOp::Reduce)
             .Cases({"softmax", "log_softmax"}, FnOp::Softmax)
             .Case("narrow", FnOp::Narrow)
             .Case("cat", FnOp::Cat)
             .Case("index_select", FnOp::IndexSelect)
             .Case("nonzero", FnOp::NonZero)
             .Case("bmm", FnOp::Bmm)
             .Case("transpose", FnOp::Transpose)
             .Case("to_dense", FnOp::ToDense)
             .Default(llvm::is_contained(fnMapNames(), e.name) ? FnOp::Map
                                                               : FnOp::Invalid);
  switch (e.op) {
  case FnOp::Invalid:
    diags.error(e.loc, "unknown kernel operation '" + e.name +
                           "'; expected mm, addmm, smm, hspmm, sspaddmm, "
                           "pow, sum, max, min, norm, softmax, log_softmax, "
                           "narrow, cat, index_select, nonzero, bmm, "
                           "clone, transpose, "
                           "to_dense or an elementwise function (" +
                           llvm::join(fnMapNames(), ", ") + ")");
    return invalid();
  case FnOp::MatMul:
    if (!expectArgs(e, 2))
      return invalid();
    return checkMatMul(e, *e.args[0], *e.args[1]);
  case FnOp::AddMM: {
    if (!expectArgs(e, 3, /*kwargs=*/true) || !scaleKwargs(e))
      return invalid();
    FnType bias = checkExpr(*e.args[0]);
    FnType r = checkMatMul(e, *e.args[1], *e.args[2]);
    if (!bias.isValid() || !r.isValid())
      return invalid();
    if (e.name == "sspaddmm") {
      if (!sparseProduct(e, r, /*hybridRows=*/false))
        return invalid();
      if (bias == r)
        return r;
    } else if (bias == r) {
      return r;
    }
    diags.error(e.args[0]->loc,
                "the first argument of '" + e.name + "' must be a " +
                    (r.isSparse() ? "" : "dense ") + fnTypeToString(r) +
                    ", got " + fnTypeToString(bias));
    return invalid();
  }
  case FnOp::SparseMM: {
    if (!expectArgs(e, 2))
      return invalid();
    FnType r = checkMatMul(e, *e.args[0], *e.args[1]);
    if (!r.isValid() || !sparseProduct(e, r, e.name == "hspmm"))
      return invalid();
    return r;
  }
  case FnOp::Pow: {
    if (!expectArgs(e, 2))
      return invalid();
    if (e.args[1]->op != FnOp::Number) {
      diags.error(e.args[1]->loc, "the exponent of 'pow' must be a number");
      return invalid();
    }
    e.scale = e.args[1]->number;
    e.args.pop_back();
    break;
  }
  case FnOp::Narrow:
    return checkNarrow(e);
  case FnOp::Cat:
    return checkCat(e);
  case FnOp::IndexSelect:
    return checkIndexSelect(e);
  case FnOp::NonZero:
    return checkNonZero(e);
  case FnOp::Bmm:
    return checkBmm(e);
  case FnOp::Sum:
  case FnOp::Reduce:
  case FnOp::Softmax: {
    // sum/max/min(a) reduce everything; with a dimension (required by
    // softmax) they reduce, or normalise along, that dimension only.
    bool hasDim = e.args.size() == 2 && e.kwargs.empty();
    SMLoc dimLoc;
    if (hasDim) {
      FnExpr &d = *e.args[1];
      if (d.op != FnOp::Number || d.number != std::floor(d.number)) {
        diags.error(d.loc,
                    "the dimension of '" + e.name + "' must be an integer");
        return invalid();
      }
      e.dim = static_cast<int64_t>(d.number);
      dimLoc = d.loc;
      e.args.pop_back(); // `d` is gone from here on
    } else if (!expectArgs(e, e.op == FnOp::Softmax ? 2 : 1)) {
      return invalid();
    }
    FnType a = checkExpr(*e.args[0]);
    if (!a.isValid())
      return invalid();
    int64_t rank = a.getRank();
    if (hasDim && (e.dim < -rank || e.dim >= rank)) {
      diags.error(dimLoc, "dimension " + Twine(e.dim) + " of '" + e.name +
                              "' is out of range for " + fnTypeToString(a));
      return invalid();
    }
    if (e.dim < 0 && hasDim)
      e.dim += rank;
    if (e.op == FnOp::Softmax) {
      if (rank != 2 || a.format == FnFormat::RowCOO ||
          a.format == FnFormat::BSR) {
        diags.error(e.loc, "'" + e.name +
                               "' needs a dense, @csr, @csc or @coo matrix, "
                               "got " +
                               fnTypeToString(a));
        return invalid();
      }
      return a;
    }
    FnType r;
    r.elem = a.elem;
    if (hasDim) {
      r.shape = a.shape;
      r.shape.erase(r.shape.begin() + e.dim);
    }
    return r;
  }
  default:
    if (!expectArgs(e, 1))
      return invalid();
    break;
  }
  if (e.args[0]->op == FnOp::Number) {
    diags.error(e.args[0]->loc, "'" + e.name + "' expects a tensor");
    return invalid();
  }
  // to_dense(transpose(A)) is one generic into a dense result: no sort.
  bool inToDense = e.op == FnOp::ToDense && e.args[0]->op == FnOp::Invalid &&
                   e.args[0]->name == "transpose";
  std::swap(inToDense, transposeToDense);
  FnType a = checkExpr(*e.args[0]);
  std::swap(inToDense, transposeToDense);
  if (!a.isValid())
    return invalid();
  if (e.op == FnOp::ToDense) {
    a.format = FnFormat::Dense;
    a.blockRows = a.blockCols = 1;
    return a;
  }
  if (e.op == FnOp::Transpose) {
    if (a.getRank() != 2) {
      diags.error(e.loc,
                  "'transpose' needs a matrix, got " + fnTypeToString(a));
      return invalid();
    }
    if ((a.format == FnFormat::RowCOO || a.format == FnFormat::BSR) &&
        !transposeToDense) {
      diags.error(e.loc, "the transpose of a @" + fnFormatName(a.format) +
                             " tensor is not a @" + fnFormatName(a.format) +
                             " tensor; only to_dense(transpose(...)) is "
                             "supported yet");
      return invalid();
    }
    std::swap(a.shape[0], a.shape[1]);
    // The transpose of a CSR matrix is the CSC matrix with the same arrays
    // (and vice versa), as in PyTorch: no sort is needed.
    if (a.format == FnFormat::CSR)
      a.format = FnFormat::CSC;
    else if (a.format == FnFormat::CSC)
      a.format = FnFormat::CSR;
  }
  return a; // unary ops keep the type and the format
}

FnType FnChecker::checkExpr(FnExpr &e) {
  FnType t;
  switch (e.op) {
  case FnOp::Ident: {
    auto it = scope.find(e.name);
    if (it == scope.end()) {
      diags.error(e.loc, "unknown name '" + e.name + "' in '" + fn.name + "'");
      return invalid();
    }
    t = it->second;
    break;
  }
  case FnOp::Number:
    diags.error(e.loc,
                "a number can only scale a tensor (c * A, A * c, A / c)");
    return invalid();
  case FnOp::Invalid:
    t = checkCall(e);
    break;
  case FnOp::Map: // `-x` (calls arrive as Invalid and go to checkCall)
    t = checkExpr(*e.args[0]);
    break;
  default:
    t = checkBinary(e);
    break;
  }
  // An @nm tensor is only read by a product (as the left factor), sum and
  // to_dense: the sparsifier cannot build a structured level.
  for (size_t i = 0; t.isValid() && i < e.args.size(); ++i) {
    bool allowed = (e.op == FnOp::MatMul && i == 0) ||
                   (e.op == FnOp::AddMM && i == 1) || e.op == FnOp::Sum ||
                   e.op == FnOp::ToDense;
    const FnType &at = e.args[i]->type;
    std::string user =
        e.name.empty() ? opSpelling(e.op).str() : "'" + e.name + "'";
    if (at.format == FnFormat::Indices) {
      diags.error(e.args[i]->loc, "the coordinates of nonzero(...) can only "
                                  "be returned by a kernel, not used by " +
                                      user);
      t = invalid();
    } else if (at.isInteger() && !(e.op == FnOp::IndexSelect && i == 1)) {
      diags.error(e.args[i]->loc, "an i64 tensor can only be the index of "
                                  "index_select, not an operand of " +
                                      user);
      t = invalid();
    } else if (at.isSparse() && at.getRank() == 3 &&
               !(e.op == FnOp::Bmm && i == 0) && e.op != FnOp::ToDense) {
      diags.error(e.args[i]->loc,
                  "a 3-dimensional @coo tensor can only be the first factor "
                  "of bmm or densified, not an operand of " +
                      user);
      t = invalid();
    }
    if (at.format == FnFormat::NM && !allowed) {
      diags.error(e.args[i]->loc,
                  "an @nm tensor can only be the left factor of '@', mm or "
                  "addmm, summed or densified, not an operand of " +
                      user);
      t = invalid();
    }
  }
  e.type = t;
  return t;
}

void FnChecker::checkCNames() {
  static const char *const keywords[] = {
      "auto",     "bool",     "break",   "case",     "char",     "class",
      "const",    "continue", "default", "delete",   "do",       "double",
      "else",     "enum",     "extern",  "false",    "float",    "for",
      "goto",     "if",       "inline",  "int",      "long",     "new",
      "operator", "private",  "public",  "register", "restrict", "return",
      "short",    "signed",   "sizeof",  "static",   "struct",   "switch",
      "template", "this",     "true",    "typedef",  "union",    "unsigned",
      "using",    "virtual",  "void",    "volatile", "while",    "int64_t"};
  // name -> where it was declared, for every C name of the entry point.
  llvm::StringMap<SMLoc> names;
  auto declare = [&](StringRef name, SMLoc loc, StringRef what) {
    if (llvm::is_contained(keywords, name) || name == "out" ||
        name.starts_with("out_") || name.starts_with("sfn_")) {
      diags.error(loc, what + " name '" + name + "' of '" + fn.name +
                           "' is reserved in the C entry point");
      return;
    }
    if (!names.try_emplace(name, loc).second)
      diags.error(loc, "'" + name + "' of '" + fn.name +
                           "' clashes with another C parameter name of its "
                           "entry point");
  };
  for (const std::string &sym : fn.symbols) {
    SMLoc loc;
    for (const FnParam &p : fn.params)
      for (const DimSpec &d : p.spec.dims)
        if (d.isSymbolic && d.symbol == sym && !loc.isValid())
          loc = d.loc;
    declare(sym, loc, "dimension");
  }
  llvm::StringSet<> seen; // a repeated parameter is reported by check()
  for (const FnParam &p : fn.params) {
    if (!seen.insert(p.name).second)
      continue;
    if (!p.type.isSparse()) {
      declare(p.name, p.loc, "parameter");
      continue;
    }
    for (const char *suffix : {"_pos", "_crd", "_val", "_nnz", "_indices"})
      declare(p.name + suffix, p.loc, "parameter");
  }
}

} // namespace sparsec::ast::fnsema

void ast::checkFns(Module &m, DiagEngine &diags) {
  llvm::StringMap<const FnDecl *> seen;
  for (const std::shared_ptr<FnDecl> &fn : m.fns) {
    auto [it, inserted] = seen.try_emplace(fn->name, fn.get());
    if (!inserted) {
      diags.error(fn->loc, "kernel '" + fn->name + "' is defined twice");
      diags.note(it->second->loc, "previous definition is here");
      continue;
    }
    fnsema::FnChecker(*fn, diags).check();
  }
  if (!diags.hasErrors())
    deriveGradients(m, diags);
}
