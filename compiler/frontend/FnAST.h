//===- FnAST.h - AST of free-standing sparse kernels (`fn`) -----*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// A `.sdl` file may hold, besides models, free functions such as
//
//   fn scores(A : f32[1024, 4096] @csr, x : f32[4096, N]) -> f32[1024, N] {
//     return A @ x
//   }
//
// compiled to C functions of the generated library (docs/sparse-ops.md).
// This header holds their AST (parsed by ParseFn.cpp), the semantic checks
// (SemaFn.cpp) that give every expression an FnType, and the AST dump.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_FNAST_H
#define SPARSEC_FRONTEND_FNAST_H

#include "AST.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace sparsec {
class DiagEngine;
namespace ast {

/// Storage format of a kernel value.
/// RowCOO is hybrid `@coo(1)` of a matrix: sorted unique row indices, each
/// with a dense row of values (PyTorch's sparse_dim = 1, dense_dim = 1).
/// BSR is `@bsr(r, c)`: CSR of r x c dense blocks.
/// NM is `@nm(n, m)`: n stored values in each group of m columns of a row
/// (2:4 structured sparsity), n and m kept in blockRows and blockCols.
/// Indices is the result of nonzero(a): an i64 [count, rank] list of
/// coordinates, count known at run time (neither dense nor sparse).
/// COO is also the format of rank-3 tensors (`@coo` of f32[B, M, K]: bmm).
enum class FnFormat { Dense, CSR, CSC, COO, RowCOO, BSR, NM, Indices };
llvm::StringRef fnFormatName(FnFormat f);

/// One dimension: a literal size or a symbol (a size passed at run time).
struct FnDim {
  int64_t value = 0;
  std::string symbol; // non-empty: symbolic
  bool isSymbolic() const { return !symbol.empty(); }
  bool operator==(const FnDim &o) const {
    return symbol == o.symbol && (isSymbolic() || value == o.value);
  }
  bool operator!=(const FnDim &o) const { return !(*this == o); }
};

/// Type of a kernel value. Rank 0 (`f32`) is a scalar result.
struct FnType {
  ElemType elem = ElemType::Invalid;
  std::vector<FnDim> shape;
  FnFormat format = FnFormat::Dense;
  int64_t blockRows = 1, blockCols = 1; // BSR

  bool isValid() const { return elem != ElemType::Invalid; }
  /// Compressed formats (CSR, CSC, BSR): the number of position segments
  /// (rows, columns, block rows) and the range of a coordinate.
  int64_t outerSize() const {
    return format == FnFormat::CSC ? shape[1].value
                                   : shape[0].value / blockRows;
  }
  int64_t innerSize() const {
    return format == FnFormat::CSC ? shape[0].value
                                   : shape[1].value / blockCols;
  }
  /// Values of one stored entry: a block (BSR), a row (@coo(1)) or 1.
  int64_t entryValues() const {
    return format == FnFormat::BSR      ? blockRows * blockCols
           : format == FnFormat::RowCOO ? shape[1].value
                                        : 1;
  }
  bool isSparse() const {
    return format != FnFormat::Dense && format != FnFormat::Indices;
  }
  /// An integer tensor: an index argument (i64) or a nonzero(...) result.
  bool isInteger() const { return isIntegerElemType(elem); }
  /// A kernel result written into caller arrays of capacity out_cap whose
  /// used length the kernel returns (sparse, or nonzero's coordinates).
  bool isCounted() const { return isSparse() || format == FnFormat::Indices; }
  unsigned getRank() const { return static_cast<unsigned>(shape.size()); }
  bool operator==(const FnType &o) const {
    return elem == o.elem && shape == o.shape && format == o.format &&
           blockRows == o.blockRows && blockCols == o.blockCols;
  }
  bool operator!=(const FnType &o) const { return !(*this == o); }
};
/// "f32[1024, N] @csr".
std::string fnTypeToString(const FnType &t);

/// The operations of kernel expressions (docs/sparse-ops.md).
enum class FnOp {
  Invalid,
  Ident,    // a parameter or a local
  Number,   // a literal scale factor
  Add,      // a + b
  Sub,      // a - b
  Mul,      // a * b
  Div,      // a / c (c a number)
  MatMul,   // a @ b, mm(a, b)
  AddMM,    // addmm(bias, a, b, beta =, alpha =); sspaddmm (sparse bias)
  SparseMM, // smm(a, b), hspmm(a, b): sparse @ dense with a sparse result
  Map,      // neg(a) / -a, abs(a), exp(a), ...: fnMapNames(), on stored values
  Pow,      // pow(a, p)
  Sum,      // sum(a), sum(a, dim)
  Reduce,   // max(a), min(a) (and with a dim): over stored values
  Softmax,  // softmax(a, dim), log_softmax(a, dim): over stored values
  Narrow,   // narrow(a, dim, start, length)
  Cat,      // cat(a, b, ..., dim = d)
  // Made by the differentiation of `grad fn` kernels (FnGrad.cpp) only; the
  // first argument is the value whose type (and pattern) the result has.
  SparseMask,  // (like, c): c at like's stored entries, 0 where c has none
  Sddmm,       // (like, u, v): sum_j u(i,j) v(k,j) (dim 0) or sum_i u(i,k)
               // v(i,j) (dim 1) at like's stored entries (outer products
               // for vectors)
  Expand,      // (like[, g]): g broadcast over dimension `dim` (all: -1) at
               // like's entries; 0 without g
  Deriv,       // (a): the derivative of Map/Pow `name` at a's stored values
  Pad,         // (g): g placed at offset `start` of dimension `dim` of a
               // tensor of this type (the adjoint of narrow)
  Ties,        // (like, m): 1 where like's stored value equals m (broadcast
               // over `dim`, all: -1), else 0 (the adjoint of max/min)
  Ratio,       // (x, y): x / y elementwise, dense
  IndexAdd,    // (g, idx): sum_j of g's slice j of dimension `dim` placed
               // at index idx(j), dense (the adjoint of index_select)
  Transpose,   // transpose(a)
  ToDense,     // to_dense(a)
  IndexSelect, // index_select(a, dim, idx): the slices idx(j) of dimension
               // `dim` (idx an i64 vector parameter)
  NonZero,     // nonzero(a): the coordinates of a's nonzero values
  Bmm,         // bmm(a, b): batched matrix product of rank-3 tensors
};
llvm::StringRef fnOpName(FnOp op);
/// The elementwise functions of FnOp::Map (the callee name is kept in
/// FnExpr::name): neg, abs, sqrt, rsqrt, exp, expm1, log, log1p, log2,
/// log10, sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, erf, ceil,
/// floor, round (half to even), trunc.
llvm::ArrayRef<llvm::StringRef> fnMapNames();

/// A kernel expression.
struct FnExpr {
  FnOp op = FnOp::Invalid;
  llvm::SMLoc loc;
  std::string name;  // Ident: the name; calls: the callee
  double number = 0; // Number
  std::vector<std::unique_ptr<FnExpr>> args;
  /// Keyword arguments of a call (`beta = 0.5`): name, value, location.
  struct KwArg {
    std::string name;
    double value = 0;
    llvm::SMLoc loc;
  };
  std::vector<KwArg> kwargs;
  unsigned depth = 1;

  // Resolved by Sema.
  FnType type;
  double scale = 0;           // Div/Mul by a number, Pow: the exponent
  int64_t dim = -1;           // Sum, Reduce, Softmax: the dimension, -1 for all
  double alpha = 1, beta = 1; // AddMM
  int64_t start = 0;          // Narrow (with dim and the result's shape)
};

/// `name : TYPE` in a kernel's parameter list.
struct FnParam {
  llvm::SMLoc loc;
  std::string name;
  TypeSpec spec;
  FnType type; // resolved by Sema
};

/// `name = expr` in a kernel body.
struct FnStmt {
  llvm::SMLoc loc;
  std::string name;
  std::unique_ptr<FnExpr> value;
};

/// `[grad] fn name(params) -> TYPE { stmts; return expr }`.
struct FnDecl {
  llvm::SMLoc loc; // of the name
  std::string name;
  /// `grad fn`: Sema adds a kernel `<name>_grad_<p>` per parameter `p`
  /// (FnGrad.cpp).
  bool grad = false;
  llvm::SMLoc gradLoc;
  /// `grad(p, q) fn`: the parameters to differentiate (empty: all).
  struct GradOf {
    std::string name;
    llvm::SMLoc loc;
  };
  std::vector<GradOf> gradOf;
  std::vector<FnParam> params;
  TypeSpec resultSpec;
  bool hasResultSpec = false;
  std::vector<FnStmt> stmts;
  std::unique_ptr<FnExpr> ret;
  llvm::SMLoc retLoc;

  // Resolved by Sema.
  FnType resultType;
  /// Symbolic dimensions in order of first appearance in the parameters:
  /// the kernel's leading `int64_t` arguments.
  std::vector<std::string> symbols;
};

/// A deep copy of `e`, resolved fields (types, dims, scales) included.
std::unique_ptr<FnExpr> cloneExpr(const FnExpr &e);

/// Checks every kernel of `m` (names, types, shapes, encodings) and
/// resolves the types of their expressions, then adds the gradient kernels
/// of `grad fn` kernels (deriveGradients). Reports errors to `diags`.
void checkFns(Module &m, DiagEngine &diags);

/// For each checked `grad fn f(p1, ..., pn) -> R`, appends to m.fns the
/// kernels `f_grad_<pi>(p1, ..., pn, grad_out : R) -> type of pi`: the
/// vector-Jacobian product of f's result with grad_out, by reverse-mode
/// differentiation of f's expression (docs/sparse-ops.md, "Gradients").
void deriveGradients(Module &m, DiagEngine &diags);

/// Appends the kernels to the AST dump.
void dumpFns(const Module &m, llvm::raw_ostream &os);

} // namespace ast
} // namespace sparsec

#endif // SPARSEC_FRONTEND_FNAST_H
