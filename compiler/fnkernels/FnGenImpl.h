//===- FnGenImpl.h - The MLIR generator of fn kernels (private) -*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The class that builds the `func.func` of a checked `fn` kernel on
// linalg/tensor/sparse_tensor (FnGen.cpp: values, products, the function;
// FnGenOps.cpp: reductions, softmax, narrow and the operations of gradient
// kernels). Private to compiler/fnkernels.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FNKERNELS_FNGENIMPL_H
#define SPARSEC_FNKERNELS_FNGENIMPL_H

#include "frontend/FnAST.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/SourceMgr.h"

namespace sparsec::fngen {

using ast::ElemType;
using ast::FnDecl;
using ast::FnExpr;
using ast::FnType;
using llvm::ArrayRef;
using llvm::StringRef;
using mlir::AffineMap;
using mlir::function_ref;
using mlir::Location;
using mlir::LogicalResult;
using mlir::MLIRContext;
using mlir::ModuleOp;
using mlir::OpBuilder;
using mlir::RankedTensorType;
using mlir::Region;
using mlir::SmallVector;
using mlir::SmallVectorImpl;
using mlir::Type;
using mlir::Value;
using mlir::ValueRange;
namespace arith = mlir::arith;

class FnGen {
public:
  FnGen(MLIRContext &ctx, const llvm::SourceMgr &sm, ModuleOp module)
      : ctx(ctx), sm(sm), b(&ctx), module(module) {}

  LogicalResult gen(const FnDecl &fn, StringRef symbol);

private:
  Location loc(llvm::SMLoc l);
  Type elemType(ElemType e) {
    return e == ElemType::F64 ? Type(b.getF64Type()) : Type(b.getF32Type());
  }
  RankedTensorType tensorType(const FnType &t);
  SmallVector<Value> dynSizes(const FnType &t, Location l);
  Value empty(const FnType &t, Location l);
  Value zeros(const FnType &t, Location l);
  Value constant(Type elem, double v, Location l) {
    return arith::ConstantOp::create(b, l, b.getFloatAttr(elem, v));
  }
  /// A parallel generic over `out`'s shape applying `body` to the elements
  /// of `ins` (identity maps unless `inMaps` is given).
  Value elementwise(const FnType &t, ValueRange ins, Value out, Location l,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> body,
                    ArrayRef<AffineMap> inMaps = {});
  /// `f` on the stored values of `x` (a `present`-only sparse_tensor.unary
  /// on sparse operands), elementwise on dense ones.
  Value mapValues(const FnExpr &e, Value x,
                  function_ref<Value(OpBuilder &, Location, Value)> f);
  Value genMatMul(const FnExpr &e, const FnExpr &lhs, const FnExpr &rhs,
                  Value init, double alpha);
  /// init + alpha * (a @ x) (x a vector when `vec`; batched, bmm, when init
  /// has 3 dimensions); a sparse init gets the entries the product reaches.
  Value matmul(Value a, Value x, bool vec, Value init, double alpha, Type elem,
               Location l);
  /// The [rows, cols] 0/1 matrix in t's format with ones at (k + rowOff,
  /// k + colOff), k < len: multiplying by it selects rows or columns.
  Value selection(const FnType &t, int64_t rows, int64_t cols, int64_t rowOff,
                  int64_t colOff, int64_t len, Location l);
  /// A tensor<n x elem> of ones (the values of a 0/1 matrix).
  Value ones(int64_t n, Type elem, Location l);
  /// A tensor<n x index> of f(i).
  Value indexArray(int64_t n, Location l,
                   function_ref<Value(OpBuilder &, Location, Value)> f);
  enum class Reduction { Sum, Max, Min };
  /// Reduces `a` (of type `argType`) over dimension `dim` (-1: all) into a
  /// dense `resultType`; max/min over stored values only.
  Value reduce(Reduction kind, const FnType &argType, Value a, int64_t dim,
               const FnType &resultType, Location l);
  /// `f(x, v)` for each stored value of `x` (every value if dense), `v`
  /// dense and broadcast over dimension `dim` (over all for -1: a scalar);
  /// the result has x's type `t` and pattern (softmax, expand, ties).
  Value alongRows(const FnType &t, Value x, Value v, int64_t dim, Location l,
                  function_ref<Value(OpBuilder &, Location, Value, Value)> f);
  Value genSoftmax(const FnExpr &e);
  Value genNarrow(const FnExpr &e);
  /// The offsets, sizes and strides of the part of shape `t` that starts at
  /// `start` of dimension `dim` (narrow's slice, pad's insert).
  void slice(const FnType &t, int64_t dim, int64_t start,
             SmallVectorImpl<mlir::OpFoldResult> &offsets,
             SmallVectorImpl<mlir::OpFoldResult> &sizes,
             SmallVectorImpl<mlir::OpFoldResult> &strides);
  Value genCat(const FnExpr &e);
  // FnGenIndex.cpp.
  /// The 0/1 matrix [rows, cols] in `format` with ones at (j, idx(j))
  /// (`byRows`) or at (idx(j), j): index_select as a product.
  Value indexMatrix(ast::FnFormat format, int64_t rows, int64_t cols, Value idx,
                    bool byRows, ElemType elem, Location l);
  Value genIndexSelect(const FnExpr &e);
  Value genIndexAdd(const FnExpr &e);
  Value genNonZero(const FnExpr &e);
  // The operations of gradient kernels (FnGrad.cpp).
  Value genSparseMask(const FnExpr &e);
  Value genSddmm(const FnExpr &e);
  Value genExpand(const FnExpr &e);
  Value genPad(const FnExpr &e);
  Value genTies(const FnExpr &e);
  /// A region of `op` with `n` arguments of type `elem` yielding `f(args)`.
  void yieldRegion(Region &r, unsigned n, Type elem, Location l,
                   function_ref<Value(OpBuilder &, Location, ValueRange)> f);
  Value genExpr(const FnExpr &e);

  MLIRContext &ctx;
  const llvm::SourceMgr &sm;
  OpBuilder b;
  ModuleOp module;
  llvm::StringMap<Value> scope;
  llvm::StringMap<Value> symbols; // symbolic dimension -> index value
};

} // namespace sparsec::fngen

#endif // SPARSEC_FNKERNELS_FNGENIMPL_H
