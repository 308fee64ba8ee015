//===- FnGenIndex.cpp - MLIR of fn indexing ops and batched products ------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The FnGen members (FnGenImpl.h) for index_select (and index_add, its
// adjoint in gradient kernels), nonzero and the batched product bmm.
//
// index_select of a sparse matrix is a product with a 0/1 matrix built from
// the index vector, as narrow is (FnGenOps.cpp): P (K x m, P(j, idx(j)) = 1)
// is a CSR matrix whose positions are 0..K and whose coordinates are idx
// itself, and its transpose is the CSC matrix with the same arrays; the
// other formats are sparse_tensor.convert of those. A repeated index copies
// its slice again, as in PyTorch.
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnGenImpl.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace sparsec;
using sparsec::ast::FnDim;
using sparsec::ast::FnFormat;
using sparsec::fngen::FnGen;

Value FnGen::indexMatrix(FnFormat format, int64_t rows, int64_t cols, Value idx,
                         bool byRows, ElemType elemKind, Location l) {
  // byRows: rows x cols with one entry per row, at column idx(row) (CSR);
  // else one entry per column, at row idx(column) (CSC). Positions 0..K.
  int64_t k = byRows ? rows : cols;
  FnType t;
  t.elem = elemKind;
  t.shape = {FnDim{rows, ""}, FnDim{cols, ""}};
  t.format = byRows ? FnFormat::CSR : FnFormat::CSC;
  Value pos =
      indexArray(k + 1, l, [](OpBuilder &, Location, Value i) { return i; });
  Value m = sparse_tensor::AssembleOp::create(b, l, tensorType(t),
                                              ValueRange{pos, idx},
                                              ones(k, elemType(elemKind), l));
  if (format == t.format)
    return m;
  t.format = format;
  return sparse_tensor::ConvertOp::create(b, l, tensorType(t), m);
}

Value FnGen::genIndexSelect(const FnExpr &e) {
  Location l = loc(e.loc);
  const FnExpr &arg = *e.args[0];
  Value a = genExpr(arg), idx = genExpr(*e.args[1]);
  Type elem = elemType(e.type.elem);
  if (!e.type.isSparse()) {
    // A gather: out(i, j) = a(idx(i), j) (dim 0) or a(i, idx(j)) (dim 1).
    AffineExpr i, j;
    bindDims(&ctx, i, j);
    int64_t dim = e.dim;
    AffineMap byIdx = AffineMap::get(2, 0, {dim == 0 ? i : j}, &ctx);
    return elementwise(e.type, idx, empty(e.type, l), l,
                       [&](OpBuilder &nb, Location nl, ValueRange v) -> Value {
                         Value other = linalg::IndexOp::create(nb, nl, 1 - dim);
                         SmallVector<Value> at = {v[0], other};
                         if (dim == 1)
                           std::swap(at[0], at[1]);
                         return tensor::ExtractOp::create(nb, nl, a, at);
                       },
                       {byIdx});
  }
  int64_t k = e.type.shape[e.dim].value;
  int64_t m = arg.type.shape[0].value, n = arg.type.shape[1].value;
  Value out = empty(e.type, l);
  if (e.dim == 0) // P @ a, P(j, idx(j)) = 1
    return matmul(indexMatrix(e.type.format, k, m, idx, true, e.type.elem, l),
                  a, false, out, 1.0, elem, l);
  // a @ Q, Q(idx(j), j) = 1
  return matmul(a, indexMatrix(e.type.format, n, k, idx, false, e.type.elem, l),
                false, out, 1.0, elem, l);
}

Value FnGen::genIndexAdd(const FnExpr &e) {
  // g's slice j added at idx(j): P^T @ g (dim 0), g @ P (dim 1), P as in
  // genIndexSelect; g is dense (FnGrad densifies a sparse adjoint).
  Location l = loc(e.loc);
  const FnExpr &g = *e.args[0];
  Value gv = genExpr(g), idx = genExpr(*e.args[1]);
  Type elem = elemType(e.type.elem);
  int64_t k = g.type.shape[e.dim].value;
  Value out = zeros(e.type, l);
  if (e.dim == 0)
    return matmul(indexMatrix(FnFormat::CSC, e.type.shape[0].value, k, idx,
                              false, e.type.elem, l),
                  gv, false, out, 1.0, elem, l);
  return matmul(gv,
                indexMatrix(FnFormat::CSR, k, e.type.shape[1].value, idx, true,
                            e.type.elem, l),
                false, out, 1.0, elem, l);
}

Value FnGen::genNonZero(const FnExpr &e) {
  // The entries of a whose value is not 0 (NaN counts) in a COO tensor
  // whose coordinates are stored as pairs (AoS): that array is the
  // [count][2] result. A CSC a is converted to CSR first (row-major order).
  Location l = loc(e.loc);
  const FnExpr &arg = *e.args[0];
  Value a = genExpr(arg);
  FnType t = arg.type;
  if (t.format == FnFormat::CSC) {
    t.format = FnFormat::CSR;
    a = sparse_tensor::ConvertOp::create(b, l, tensorType(t), a);
  }
  Type elem = elemType(t.elem);
  auto coo = RankedTensorType::get(
      cast<RankedTensorType>(a.getType()).getShape(), elem,
      parseAttribute("#sparse_tensor.encoding<{ map = (i, j) -> (i : "
                     "compressed(nonunique), j : singleton) }>",
                     &ctx));
  Value out = tensor::EmptyOp::create(b, l, tensor::getMixedSizes(b, l, a),
                                      elem, coo.getEncoding());
  return elementwise(
      t, a, out, l, [&](OpBuilder &nb, Location nl, ValueRange v) -> Value {
        auto sel = sparse_tensor::SelectOp::create(nb, nl, elem, v[0]);
        yieldRegion(sel.getRegion(), 1, elem, nl,
                    [&](OpBuilder &rb, Location rl, ValueRange x) -> Value {
                      return arith::CmpFOp::create(rb, rl,
                                                   arith::CmpFPredicate::UNE,
                                                   x[0], constant(elem, 0, rl));
                    });
        return sel.getResult();
      });
}
