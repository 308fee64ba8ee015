//===- LinalgBuilders.cpp - Builders of linalg.generic on tensors ---------===//
//
// Definitions of the builders declared in LinalgBuilders.h.
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"

using namespace mlir;
using namespace mlir::sdl;
using utils::IteratorType;

namespace mlir::sdl::builders {

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// tensor.empty of type `t`; dynamic dim i is taken from dim i of `like`.
Value emptyLike(OpBuilder &b, Location loc, RankedTensorType t, Value like) {
  SmallVector<Value> dyn;
  for (int64_t i = 0, e = t.getRank(); i < e; ++i)
    if (t.isDynamicDim(i))
      dyn.push_back(tensor::DimOp::create(b, loc, like, i));
  return tensor::EmptyOp::create(b, loc, t, dyn);
}

Value constF(OpBuilder &b, Location loc, Type t, double v) {
  return arith::ConstantOp::create(b, loc, t, b.getFloatAttr(t, v));
}

/// A tensor of type `t` filled with `value`.
Value filled(OpBuilder &b, Location loc, RankedTensorType t, Value like,
             double value) {
  Value c = constF(b, loc, t.getElementType(), value);
  return linalg::FillOp::create(b, loc, c, emptyLike(b, loc, t, like))
      .getResult(0);
}

/// Builds `linalg.generic` over `numDims` loops; the last map is `init`'s.
Value generic(OpBuilder &b, Location loc, ValueRange ins, Value init,
              ArrayRef<AffineMap> maps, ArrayRef<IteratorType> iters,
              BodyFn body) {
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ins, ValueRange{init}, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb, nl, body(nb, nl, args));
      });
  return g.getResult(0);
}

/// Affine map of `numDims` dims selecting `dims`.
AffineMap pick(MLIRContext *ctx, unsigned numDims, ArrayRef<unsigned> dims) {
  SmallVector<AffineExpr> exprs;
  for (unsigned d : dims)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(numDims, 0, exprs, ctx);
}

SmallVector<unsigned> range(unsigned begin, unsigned end) {
  SmallVector<unsigned> r;
  for (unsigned i = begin; i < end; ++i)
    r.push_back(i);
  return r;
}

SmallVector<unsigned> cat(ArrayRef<unsigned> a, ArrayRef<unsigned> c) {
  SmallVector<unsigned> r(a);
  r.append(c.begin(), c.end());
  return r;
}

/// Elementwise generic with identity maps; `ins` all have `t`'s shape.
Value elementwise(OpBuilder &b, Location loc, RankedTensorType t,
                  ValueRange ins, BodyFn body) {
  unsigned n = t.getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(n, b.getContext());
  SmallVector<AffineMap> maps(ins.size() + 1, id);
  SmallVector<IteratorType> iters(n, IteratorType::parallel);
  return generic(b, loc, ins, emptyLike(b, loc, t, ins.front()), maps, iters,
                 body);
}

/// Sum of `f(args)` over every element of the `ins` (all of one shape),
/// accumulated in f64 (losses over large batches keep f32 accuracy) and
/// returned as a scalar of the first input's element type.
Value transposed(OpBuilder &b, Location loc, Value v) {
  RankedTensorType t = tensorOf(v);
  auto tt = RankedTensorType::get({t.getDimSize(1), t.getDimSize(0)},
                                  t.getElementType());
  SmallVector<Value> dyn; // result dim k is input dim 1 - k
  for (int64_t k = 0; k < 2; ++k)
    if (tt.isDynamicDim(k))
      dyn.push_back(tensor::DimOp::create(b, loc, v, 1 - k));
  MLIRContext *ctx = b.getContext();
  return generic(b, loc, {v}, tensor::EmptyOp::create(b, loc, tt, dyn),
                 {pick(ctx, 2, {1, 0}), pick(ctx, 2, {0, 1})},
                 {IteratorType::parallel, IteratorType::parallel},
                 [](OpBuilder &, Location, ValueRange a) { return a[0]; });
}

Value sumAll(OpBuilder &b, Location loc, ValueRange ins, BodyFn f) {
  RankedTensorType t = tensorOf(ins.front());
  unsigned n = t.getRank();
  MLIRContext *ctx = b.getContext();
  Type elt = b.getF64Type();
  auto accumulate = [&](ValueRange args, Value acc, ArrayRef<AffineMap> maps,
                        ArrayRef<IteratorType> iters, BodyFn term) {
    return generic(b, loc, args, acc, maps, iters,
                   [&](OpBuilder &nb, Location nl, ValueRange a) {
                     Value v = term(nb, nl, a.drop_back());
                     if (v.getType() != elt)
                       v = arith::ExtFOp::create(nb, nl, elt, v);
                     return arith::AddFOp::create(nb, nl, a.back(), v);
                   });
  };
  // Rank >= 2: one f64 partial sum per index of the last dim (the leading
  // dims outside, so the innermost loop updates independent partials and
  // vectorises instead of forming one serial chain of additions), then the
  // partials in order.
  Value in = ins.front();
  SmallVector<Value> args(ins);
  auto first = [](OpBuilder &, Location, ValueRange a) { return a[0]; };
  BodyFn term = f;
  unsigned m = n;
  if (n >= 2) {
    auto pt = RankedTensorType::get({t.getDimSize(n - 1)}, elt);
    SmallVector<Value> dyn;
    if (pt.isDynamicDim(0))
      dyn.push_back(tensor::DimOp::create(b, loc, in, n - 1));
    Value zeros = linalg::FillOp::create(
                      b, loc, constF(b, loc, elt, 0.0),
                      tensor::EmptyOp::create(b, loc, pt, dyn).getResult())
                      .getResult(0);
    SmallVector<AffineMap> maps(ins.size(),
                                AffineMap::getMultiDimIdentityMap(n, ctx));
    maps.push_back(pick(ctx, n, {n - 1}));
    SmallVector<IteratorType> iters(n - 1, IteratorType::reduction);
    iters.push_back(IteratorType::parallel);
    args = {accumulate(ins, zeros, maps, iters, f)};
    term = first;
    m = 1;
  }
  auto scalarT = RankedTensorType::get({}, elt);
  Value acc =
      linalg::FillOp::create(
          b, loc, constF(b, loc, elt, 0.0),
          tensor::EmptyOp::create(b, loc, scalarT, ValueRange{}).getResult())
          .getResult(0);
  SmallVector<AffineMap> maps(args.size(),
                              AffineMap::getMultiDimIdentityMap(m, ctx));
  maps.push_back(AffineMap::get(m, 0, {}, ctx));
  Value r =
      accumulate(args, acc, maps,
                 SmallVector<IteratorType>(m, IteratorType::reduction), term);
  Value sum = tensor::ExtractOp::create(b, loc, r, ValueRange{});
  Type resultElt = t.getElementType();
  if (!isa<FloatType>(resultElt))
    resultElt = b.getF32Type();
  if (resultElt == elt)
    return sum;
  return arith::TruncFOp::create(b, loc, resultElt, sum);
}

/// Number of elements of `v` (dynamic dims included) as a float of type `t`.
Value numelF(OpBuilder &b, Location loc, Value v, Type t) {
  RankedTensorType tt = tensorOf(v);
  Value n = arith::ConstantIndexOp::create(b, loc, 1);
  for (int64_t i = 0, e = tt.getRank(); i < e; ++i)
    n = arith::MulIOp::create(b, loc, n, tensor::DimOp::create(b, loc, v, i));
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), n);
  return arith::UIToFPOp::create(b, loc, t, i64);
}

Value scalarTensor(OpBuilder &b, Location loc, Type resultType, Value s) {
  return tensor::FromElementsOp::create(b, loc, resultType, ValueRange{s});
}

Value toIndex(OpBuilder &b, Location loc, Value v) {
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
}

void prefetchRun(OpBuilder &b, Location loc, Value buf, ValueRange start,
                 int64_t elems, bool forWrite) {
  auto type = cast<MemRefType>(buf.getType());
  int64_t perLine = std::max<int64_t>(
      1, 512 / std::max<int64_t>(1, type.getElementTypeBitWidth()));
  SmallVector<Value> at(start.begin(), start.end());
  Value first = at.back();
  for (int64_t e = 0; e < elems; e += perLine) {
    if (e > 0)
      at.back() = arith::AddIOp::create(
          b, loc, first, arith::ConstantIndexOp::create(b, loc, e));
    memref::PrefetchOp::create(b, loc, buf, at, forWrite, /*localityHint=*/3,
                               /*isDataCache=*/true);
  }
}

Value idAhead(OpBuilder &b, Location loc, Value ids, Value i, int64_t ahead) {
  bool isTensor = isa<RankedTensorType>(ids.getType());
  Value n = isTensor ? Value(tensor::DimOp::create(b, loc, ids, 0))
                     : Value(memref::DimOp::create(b, loc, ids, 0));
  Value last = arith::SubIOp::create(
      b, loc, n, arith::ConstantIndexOp::create(b, loc, 1));
  Value next = arith::AddIOp::create(
      b, loc, i, arith::ConstantIndexOp::create(b, loc, ahead));
  Value j = arith::MinUIOp::create(b, loc, next, last);
  Value id = isTensor ? Value(tensor::ExtractOp::create(b, loc, ids, j))
                      : Value(memref::LoadOp::create(b, loc, ids, j));
  return toIndex(b, loc, id);
}

} // namespace mlir::sdl::builders
