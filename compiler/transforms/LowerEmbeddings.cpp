//===- LowerEmbeddings.cpp - Embedding ops to linalg.generic --------------===//
//
// The embedding part of `convert-sdl-to-linalg`: `sdl.embedding` (a row
// gather: one row copy per id for rank-1 ids, else a `linalg.generic`),
// `sdl.embedding_bag` (sum/mean/max of each bag's rows, padding ids skipped)
// and `sdl.embedding_bag_grad` (one gradient row per id) as
// `linalg.generic`s whose bodies read the table with `tensor.extract`.
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::builders;
using utils::IteratorType;

/// out[b, :] = table[ids[b], :] for rank-1 ids as one row copy per id
/// (an scf.for of extract_slice / insert_slice: bufferized to a copy of a
/// contiguous row, which vectorises; the generic below reloads the id for
/// every element), prefetching the rows of the ids ahead.
static Value gatherRows(OpBuilder &b, Location loc, Value ids, Value table,
                        RankedTensorType yt) {
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value n = tensor::DimOp::create(b, loc, ids, 0);
  int64_t dim = yt.getDimSize(1);
  // The table is a caller's buffer (sdl-finalize-abi): prefetch the row of
  // the id kPrefetchAhead positions on while this one is copied.
  auto buffer = table.getDefiningOp<bufferization::ToTensorOp>();
  auto loop = scf::ForOp::create(
      b, loc, c0, n, c1, ValueRange{emptyLike(b, loc, yt, ids)},
      [&](OpBuilder &nb, Location nl, Value i, ValueRange acc) {
        if (buffer)
          prefetchRun(nb, nl, buffer.getBuffer(),
                      {idAhead(nb, nl, ids, i, kPrefetchAhead), c0}, dim,
                      /*forWrite=*/false);
        Value id = toIndex(nb, nl, tensor::ExtractOp::create(nb, nl, ids, i));
        SmallVector<OpFoldResult> sizes{nb.getIndexAttr(1),
                                        nb.getIndexAttr(dim)};
        SmallVector<OpFoldResult> ones(2, nb.getIndexAttr(1));
        Value row = tensor::ExtractSliceOp::create(
            nb, nl, table, SmallVector<OpFoldResult>{id, nb.getIndexAttr(0)},
            sizes, ones);
        Value next = tensor::InsertSliceOp::create(
            nb, nl, row, acc[0],
            SmallVector<OpFoldResult>{i, nb.getIndexAttr(0)}, sizes, ones);
        scf::YieldOp::create(nb, nl, next);
      });
  return loop.getResult(0);
}

Value builders::lowerEmbedding(OpBuilder &b, EmbeddingOp op) {
  Location loc = op.getLoc();
  RankedTensorType yt = op.getType();
  unsigned n = yt.getRank();
  MLIRContext *ctx = b.getContext();
  Value table = op.getTable();
  if (n == 2 && !yt.isDynamicDim(1))
    return gatherRows(b, loc, op.getIds(), table, yt);
  return generic(
      b, loc, {op.getIds()}, emptyLike(b, loc, yt, op.getIds()),
      {pick(ctx, n, range(0, n - 1)),
       AffineMap::getMultiDimIdentityMap(n, ctx)},
      SmallVector<IteratorType>(n, IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value row = toIndex(nb, nl, a[0]);
        Value col = linalg::IndexOp::create(nb, nl, n - 1);
        return tensor::ExtractOp::create(nb, nl, table, ValueRange{row, col});
      });
}

namespace {

/// table[ids(b, k), d] inside a generic whose dims include b, k, d.
Value gatherRow(OpBuilder &b, Location loc, Value table, Value id,
                unsigned dDim) {
  Value col = linalg::IndexOp::create(b, loc, dDim);
  return tensor::ExtractOp::create(b, loc, table,
                                   ValueRange{toIndex(b, loc, id), col});
}

/// Padding handling shared by embedding_bag and its gradient: ids equal to
/// `padding_idx` are left out of their bag.
struct BagPadding {
  std::optional<int64_t> pad;
  Value count; // [B] f32 number of non-padding ids per bag (mean only)

  /// i1: `id` is the padding id (false when there is none).
  Value isPad(OpBuilder &b, Location loc, Value id) const {
    if (!pad)
      return arith::ConstantIntOp::create(b, loc, 0, 1);
    Value p = arith::ConstantIntOp::create(b, loc, id.getType(), *pad);
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, id, p);
  }
};

/// Counts the non-padding ids of each bag (for mean with padding_idx).
Value bagCounts(OpBuilder &b, Location loc, Value ids, const BagPadding &bp,
                Type elt) {
  MLIRContext *ctx = b.getContext();
  auto ct = RankedTensorType::get({tensorOf(ids).getDimSize(0)}, elt);
  return generic(b, loc, {ids}, filled(b, loc, ct, ids, 0.0),
                 {pick(ctx, 2, {0, 1}), pick(ctx, 2, {0})},
                 {IteratorType::parallel, IteratorType::reduction},
                 [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                   Value one = arith::SelectOp::create(
                       nb, nl, bp.isPad(nb, nl, a[0]), constF(nb, nl, elt, 0),
                       constF(nb, nl, elt, 1));
                   return arith::AddFOp::create(nb, nl, a[1], one);
                 });
}

/// Scale of one row of a mean bag: 1/K, or 1/count(b) with padding.
Value meanScale(OpBuilder &b, Location loc, const BagPadding &bp, Value count,
                int64_t bagSize, Type elt) {
  if (!bp.pad)
    return constF(b, loc, elt, 1.0 / bagSize);
  return arith::DivFOp::create(b, loc, constF(b, loc, elt, 1.0), count);
}

BagPadding bagPadding(OpBuilder &b, Location loc, Value ids, StringRef mode,
                      std::optional<uint64_t> pad, Type elt) {
  BagPadding bp;
  if (pad)
    bp.pad = static_cast<int64_t>(*pad);
  if (bp.pad && mode == "mean")
    bp.count = bagCounts(b, loc, ids, bp, elt);
  return bp;
}

} // namespace

/// out(b, d) = reduce_k table[ids(b, k), d] (x weights(b, k) for sum);
/// padding ids are skipped and an empty bag gives 0.
Value builders::lowerEmbeddingBag(OpBuilder &b, EmbeddingBagOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  RankedTensorType yt = op.getType();
  Type elt = yt.getElementType();
  StringRef mode = op.getMode();
  int64_t bagSize = tensorOf(op.getIds()).getDimSize(1);
  Value table = op.getTable();
  BagPadding bp =
      bagPadding(b, loc, op.getIds(), mode, op.getPaddingIdx(), elt);
  // Dims (b, d, k); k is the bag reduction.
  SmallVector<Value> ins = {op.getIds()};
  SmallVector<AffineMap> maps = {pick(ctx, 3, {0, 2})};
  Value weights = op.getWeights();
  if (weights) {
    ins.push_back(weights);
    maps.push_back(pick(ctx, 3, {0, 2}));
  }
  if (bp.count) {
    ins.push_back(bp.count);
    maps.push_back(pick(ctx, 3, {0}));
  }
  maps.push_back(pick(ctx, 3, {0, 1}));
  double lowest = -std::numeric_limits<double>::infinity();
  Value acc = filled(b, loc, yt, op.getIds(), mode == "max" ? lowest : 0.0);
  Value out = generic(
      b, loc, ins, acc, maps,
      {IteratorType::parallel, IteratorType::parallel, IteratorType::reduction},
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value v = gatherRow(nb, nl, table, a[0], 1);
        Value pad = bp.isPad(nb, nl, a[0]);
        if (mode == "max") {
          Value m = arith::MaximumFOp::create(nb, nl, a.back(), v);
          return arith::SelectOp::create(nb, nl, pad, a.back(), m);
        }
        if (weights)
          v = arith::MulFOp::create(nb, nl, v, a[1]);
        else if (mode == "mean")
          v = arith::MulFOp::create(
              nb, nl, v,
              meanScale(nb, nl, bp, bp.count ? a[1] : Value(), bagSize, elt));
        Value sum = arith::AddFOp::create(nb, nl, a.back(), v);
        return arith::SelectOp::create(nb, nl, pad, a.back(), sum);
      });
  if (mode != "max" || !bp.pad)
    return out;
  // A bag of padding ids only is 0, as in PyTorch.
  return elementwise(
      b, loc, yt, {out},
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value empty = arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OEQ,
                                            a[0], constF(nb, nl, elt, lowest));
        return arith::SelectOp::create(nb, nl, empty, constF(nb, nl, elt, 0.0),
                                       a[0]);
      });
}

/// One gradient row per id: rows(b, k, d); zero for padding ids.
Value builders::lowerEmbeddingBagGrad(OpBuilder &b, EmbeddingBagGradOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  RankedTensorType rt = op.getType();
  Type elt = rt.getElementType();
  StringRef mode = op.getMode();
  int64_t bagSize = rt.getDimSize(1);
  Value table = op.getTable();
  BagPadding bp =
      bagPadding(b, loc, op.getIds(), mode, op.getPaddingIdx(), elt);
  // Operands: ids, dy, (max: argmax | else: output), [weights], [count].
  SmallVector<Value> ins = {op.getIds(), op.getGrad(), op.getOutput()};
  SmallVector<AffineMap> maps = {pick(ctx, 3, {0, 1}), pick(ctx, 3, {0, 2}),
                                 pick(ctx, 3, {0, 2})};
  Value weights = op.getWeights();
  if (weights) {
    ins.push_back(weights);
    maps.push_back(pick(ctx, 3, {0, 1}));
  }
  if (bp.count) {
    ins.push_back(bp.count);
    maps.push_back(pick(ctx, 3, {0}));
  }
  if (mode == "max") {
    // The gradient goes to the first k of the bag that holds the maximum
    // (PyTorch's max_indices): argmax(b, d), then a select.
    auto idxT = RankedTensorType::get(tensorOf(op.getGrad()).getShape(),
                                      b.getIndexType());
    Value none = arith::ConstantIndexOp::create(b, loc, -1);
    Value init = linalg::FillOp::create(b, loc, none,
                                        emptyLike(b, loc, idxT, op.getGrad()))
                     .getResult(0);
    ins[2] = generic(
        b, loc, {op.getIds(), op.getOutput()}, init,
        {pick(ctx, 3, {0, 2}), pick(ctx, 3, {0, 1}), pick(ctx, 3, {0, 1})},
        {IteratorType::parallel, IteratorType::parallel,
         IteratorType::reduction},
        [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value v = gatherRow(nb, nl, table, a[0], 1);
          Value hit =
              arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OEQ, v, a[1]);
          Value unset =
              arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt, a[2],
                                    arith::ConstantIndexOp::create(nb, nl, 0));
          Value real =
              arith::XOrIOp::create(nb, nl, bp.isPad(nb, nl, a[0]),
                                    arith::ConstantIntOp::create(nb, nl, 1, 1));
          Value take = arith::AndIOp::create(
              nb, nl, arith::AndIOp::create(nb, nl, hit, unset), real);
          Value k = linalg::IndexOp::create(nb, nl, 2);
          return arith::SelectOp::create(nb, nl, take, k, a[2]);
        });
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(3, ctx));
  return generic(
      b, loc, ins, emptyLike(b, loc, rt, op.getIds()), maps,
      SmallVector<IteratorType>(3, IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value dy = a[1], row;
        Value zero = constF(nb, nl, elt, 0.0);
        if (mode == "max") {
          Value k = linalg::IndexOp::create(nb, nl, 1);
          Value hit =
              arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq, k, a[2]);
          return arith::SelectOp::create(nb, nl, hit, dy, zero);
        }
        if (weights)
          row = arith::MulFOp::create(nb, nl, dy, a[3]);
        else if (mode == "mean")
          row = arith::MulFOp::create(
              nb, nl, dy,
              meanScale(nb, nl, bp, bp.count ? a[3] : Value(), bagSize, elt));
        else
          row = dy;
        return arith::SelectOp::create(nb, nl, bp.isPad(nb, nl, a[0]), zero,
                                       row);
      });
}
