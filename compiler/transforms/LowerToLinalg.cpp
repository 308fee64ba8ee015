//===- LowerToLinalg.cpp - sdl ops to linalg.generic ----------------------===//
//
// Implements `convert-sdl-to-linalg`. Each op becomes one or a few
// `linalg.generic` ops in destination-passing style; dimension 0..L-1 of an
// activation are "leading" (batch) dims, the last one holds the features.
// A CSR weight operand turns the generic into a sparse kernel for the
// sparsifier: SpMM forward, transposed SpMM for the input gradient, and an
// SDDMM on the weight's own pattern for the weight gradient. Embedding ops
// are lowered in LowerEmbeddings.cpp; the builders are LinalgBuilders.h's.
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"

#include <limits>

namespace mlir::sdl {
#define GEN_PASS_DEF_CONVERTSDLTOLINALG
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::builders;
using utils::IteratorType;

namespace {

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

/// [M, N] -> [N, M] (either may be dynamic).
Value transposed(OpBuilder &b, Location loc, Value v) {
  RankedTensorType t = tensorOf(v);
  auto tt = RankedTensorType::get({t.getDimSize(1), t.getDimSize(0)},
                                  t.getElementType());
  SmallVector<Value> dyn; // result dim k is input dim 1 - k
  for (int64_t k = 0; k < 2; ++k)
    if (tt.isDynamicDim(k))
      dyn.push_back(tensor::DimOp::create(b, loc, v, 1 - k));
  Value empty = tensor::EmptyOp::create(b, loc, tt, dyn);
  MLIRContext *ctx = b.getContext();
  return generic(b, loc, {v}, empty,
                 {pick(ctx, 2, {1, 0}), pick(ctx, 2, {0, 1})},
                 {IteratorType::parallel, IteratorType::parallel},
                 [](OpBuilder &, Location, ValueRange a) { return a[0]; });
}

/// out(lead, o) = init + sum_i x(lead, i) * w(o, i)   [w dense or CSR]
/// For matmul, `rhsTransposed` = false reads w as (i, o).
Value contractFeatures(OpBuilder &b, Location loc, Value x, Value w,
                       Value init, bool weightIsOI) {
  unsigned lead = tensorOf(x).getRank() - 1;
  unsigned o = lead, i = lead + 1, n = lead + 2;
  MLIRContext *ctx = b.getContext();
  SmallVector<unsigned> leads = range(0, lead);
  SmallVector<AffineMap> maps = {
      pick(ctx, n, cat(leads, {i})),
      weightIsOI ? pick(ctx, n, {o, i}) : pick(ctx, n, {i, o}),
      pick(ctx, n, cat(leads, {o}))};
  SmallVector<IteratorType> iters(lead, IteratorType::parallel);
  iters.push_back(IteratorType::parallel);
  iters.push_back(IteratorType::reduction);
  return generic(b, loc, {x, w}, init, maps, iters,
                 [](OpBuilder &nb, Location nl, ValueRange a) {
                   Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
                   return arith::AddFOp::create(nb, nl, a[2], m);
                 });
}

/// y = x Wᵀ + b for a CSR W and x [B, I], computed feature-major:
/// yᵀ(o, b) += W(o, i) xᵀ(i, b) with the batch loop innermost, so each
/// stored weight updates a unit-stride row of yᵀ.
Value lowerSparseLinear(OpBuilder &b, LinearOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  Value xT = transposed(b, loc, op.getInput());
  RankedTensorType xtT = tensorOf(xT), wt = tensorOf(op.getWeight());
  auto ytT = RankedTensorType::get({wt.getDimSize(0), xtT.getDimSize(1)},
                                   xtT.getElementType());
  SmallVector<Value> dyn;
  if (ytT.isDynamicDim(1))
    dyn.push_back(tensor::DimOp::create(b, loc, xT, 1));
  Value empty = tensor::EmptyOp::create(b, loc, ytT, dyn);
  Value init;
  if (Value bias = op.getBias())
    init = generic(b, loc, {bias}, empty,
                   {pick(ctx, 2, {0}), pick(ctx, 2, {0, 1})},
                   {IteratorType::parallel, IteratorType::parallel},
                   [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  else
    init = linalg::FillOp::create(
               b, loc, constF(b, loc, ytT.getElementType(), 0.0), empty)
               .getResult(0);
  // Dims (o, i, b): i is the reduction, b innermost.
  Value yT = generic(
      b, loc, {op.getWeight(), xT}, init,
      {pick(ctx, 3, {0, 1}), pick(ctx, 3, {1, 2}), pick(ctx, 3, {0, 2})},
      {IteratorType::parallel, IteratorType::reduction,
       IteratorType::parallel},
      [](OpBuilder &nb, Location nl, ValueRange a) {
        Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
        return arith::AddFOp::create(nb, nl, a[2], m);
      });
  return transposed(b, loc, yT);
}

Value lowerLinear(OpBuilder &b, LinearOp op) {
  Location loc = op.getLoc();
  RankedTensorType yt = op.getType();
  if (isSparse(op.getWeight().getType()) && yt.getRank() == 2)
    return lowerSparseLinear(b, op);
  Value init;
  if (Value bias = op.getBias()) {
    unsigned n = yt.getRank();
    MLIRContext *ctx = b.getContext();
    init = generic(b, loc, {bias}, emptyLike(b, loc, yt, op.getInput()),
                   {pick(ctx, n, {n - 1}),
                    AffineMap::getMultiDimIdentityMap(n, ctx)},
                   SmallVector<IteratorType>(n, IteratorType::parallel),
                   [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  } else {
    init = filled(b, loc, yt, op.getInput(), 0.0);
  }
  return contractFeatures(b, loc, op.getInput(), op.getWeight(), init,
                          /*weightIsOI=*/true);
}

Value lowerMatmul(OpBuilder &b, MatmulOp op) {
  Location loc = op.getLoc();
  Value init = filled(b, loc, op.getType(), op.getLhs(), 0.0);
  return contractFeatures(b, loc, op.getLhs(), op.getRhs(), init,
                          /*weightIsOI=*/false);
}

Value lowerConcat(OpBuilder &b, ConcatOp op) {
  Location loc = op.getLoc();
  RankedTensorType yt = op.getType();
  unsigned n = yt.getRank();
  Value acc = emptyLike(b, loc, yt, op.getInputs().front());
  int64_t offset = 0;
  for (Value in : op.getInputs()) {
    SmallVector<OpFoldResult> offs(n, b.getIndexAttr(0)), sizes,
        strides(n, b.getIndexAttr(1));
    offs[n - 1] = b.getIndexAttr(offset);
    for (unsigned i = 0; i < n; ++i)
      sizes.push_back(tensor::getMixedSize(b, loc, in, i));
    acc = tensor::InsertSliceOp::create(b, loc, in, acc, offs, sizes, strides);
    offset += tensorOf(in).getDimSize(n - 1);
  }
  return acc;
}

Value lowerSlice(OpBuilder &b, SliceOp op) {
  Location loc = op.getLoc();
  RankedTensorType yt = op.getType();
  unsigned n = yt.getRank();
  SmallVector<OpFoldResult> offs(n, b.getIndexAttr(0)), sizes,
      strides(n, b.getIndexAttr(1));
  offs[n - 1] = b.getIndexAttr(op.getOffset());
  for (unsigned i = 0; i + 1 < n; ++i)
    sizes.push_back(tensor::getMixedSize(b, loc, op.getInput(), i));
  sizes.push_back(b.getIndexAttr(yt.getDimSize(n - 1)));
  return tensor::ExtractSliceOp::create(b, loc, yt, op.getInput(), offs, sizes,
                                        strides);
}

//===----------------------------------------------------------------------===//
// Backward of layers
//===----------------------------------------------------------------------===//

/// dx(lead, i) = sum_o dy(lead, o) * w(o, i)  (transposed SpMM for CSR w).
/// With `weightIsOI` = false, w is read as (i, o) (matmul's rhs).
Value gradInput(OpBuilder &b, Location loc, RankedTensorType dxt, Value dy,
                Value w, bool weightIsOI) {
  unsigned lead = dxt.getRank() - 1;
  unsigned o = lead, i = lead + 1, n = lead + 2;
  MLIRContext *ctx = b.getContext();
  SmallVector<unsigned> leads = range(0, lead);
  SmallVector<AffineMap> maps = {
      pick(ctx, n, cat(leads, {o})),
      weightIsOI ? pick(ctx, n, {o, i}) : pick(ctx, n, {i, o}),
      pick(ctx, n, cat(leads, {i}))};
  SmallVector<IteratorType> iters(lead, IteratorType::parallel);
  iters.push_back(IteratorType::reduction);
  iters.push_back(IteratorType::parallel);
  return generic(b, loc, {dy, w}, filled(b, loc, dxt, dy, 0.0), maps, iters,
                 [](OpBuilder &nb, Location nl, ValueRange a) {
                   Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
                   return arith::AddFOp::create(nb, nl, a[2], m);
                 });
}

/// out(o, i) = sum_lead dy(lead, o) * x(lead, i) over a dense or sampled
/// (CSR, in place on a zeroed copy of the pattern) output.
Value outerProduct(OpBuilder &b, Location loc, Value dy, Value x, Value init,
                   bool sampled) {
  unsigned lead = tensorOf(x).getRank() - 1;
  unsigned o = 0, i = 1, n = lead + 2;
  MLIRContext *ctx = b.getContext();
  SmallVector<unsigned> leads = range(2, n);
  SmallVector<AffineMap> maps = {pick(ctx, n, cat(leads, {o})),
                                 pick(ctx, n, cat(leads, {i})),
                                 pick(ctx, n, {o, i})};
  if (lead == 1) {
    // The reduction runs over the batch: read feature-major copies so its
    // innermost loop is unit-stride (the copies cost B*(O+I), the product
    // nnz*B or O*I*B).
    dy = transposed(b, loc, dy);
    x = transposed(b, loc, x);
    maps = {pick(ctx, n, {o, 2}), pick(ctx, n, {i, 2}), pick(ctx, n, {o, i})};
  }
  SmallVector<IteratorType> iters = {IteratorType::parallel,
                                     IteratorType::parallel};
  iters.append(lead, IteratorType::reduction);
  Type elt = tensorOf(init).getElementType();
  return generic(
      b, loc, {dy, x}, init, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        if (!sampled) {
          Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
          return arith::AddFOp::create(nb, nl, a[2], m);
        }
        // Only where the output (the weight's pattern) has entries.
        auto un = sparse_tensor::UnaryOp::create(nb, nl, elt, a[2]);
        {
          OpBuilder::InsertionGuard g(nb);
          Block *present =
              nb.createBlock(&un.getPresentRegion(), {}, {elt}, {nl});
          nb.setInsertionPointToStart(present);
          Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
          sparse_tensor::YieldOp::create(nb, nl, m);
        }
        Value zero = constF(nb, nl, elt, 0.0);
        auto red = sparse_tensor::ReduceOp::create(nb, nl, elt, a[2],
                                                   un.getResult(), zero);
        {
          OpBuilder::InsertionGuard g(nb);
          Block *blk =
              nb.createBlock(&red.getRegion(), {}, {elt, elt}, {nl, nl});
          nb.setInsertionPointToStart(blk);
          Value s = arith::AddFOp::create(nb, nl, blk->getArgument(0),
                                          blk->getArgument(1));
          sparse_tensor::YieldOp::create(nb, nl, s);
        }
        return red.getResult();
      });
}

FailureOr<Value> lowerLinearGradWeight(OpBuilder &b, LinearGradWeightOp op) {
  Location loc = op.getLoc();
  RankedTensorType wt = op.getType();
  if (!isSparse(wt))
    return outerProduct(b, loc, op.getGrad(), op.getInput(),
                        filled(b, loc, wt, Value(), 0.0), false);
  // SDDMM into a zeroed tensor with the weight's own pattern.
  auto asmOp = op.getWeight().getDefiningOp<sparse_tensor::AssembleOp>();
  if (!asmOp)
    return op.emitOpError("needs the CSR weight's pattern from "
                          "sparse_tensor.assemble (run sdl-finalize-abi first)");
  RankedTensorType vt = asmOp.getValues().getType();
  Value zeros = filled(b, loc, vt, asmOp.getValues(), 0.0);
  Value pattern = sparse_tensor::AssembleOp::create(b, loc, wt,
                                                    asmOp.getLevels(), zeros);
  return outerProduct(b, loc, op.getGrad(), op.getInput(), pattern, true);
}

Value lowerMatmulGradRhs(OpBuilder &b, MatmulGradRhsOp op) {
  // dB(i, o) = sum_lead a(lead, i) dy(lead, o)
  Location loc = op.getLoc();
  return outerProduct(b, loc, op.getLhs(), op.getGrad(),
                      filled(b, loc, op.getType(), Value(), 0.0), false);
}

Value lowerReduceBatch(OpBuilder &b, ReduceBatchOp op) {
  Location loc = op.getLoc();
  unsigned lead = tensorOf(op.getInput()).getRank() - 1, n = lead + 1;
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps = {pick(ctx, n, cat(range(1, n), {0})),
                                 pick(ctx, n, {0})};
  SmallVector<IteratorType> iters = {IteratorType::parallel};
  iters.append(lead, IteratorType::reduction);
  return generic(b, loc, {op.getInput()},
                 filled(b, loc, op.getType(), Value(), 0.0), maps, iters,
                 [](OpBuilder &nb, Location nl, ValueRange a) {
                   return arith::AddFOp::create(nb, nl, a[1], a[0]);
                 });
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

/// Row-wise max and sum of exp(x - max) of logits x [B, C].
std::pair<Value, Value> softmaxStats(OpBuilder &b, Location loc, Value x) {
  RankedTensorType xt = tensorOf(x);
  Type elt = xt.getElementType();
  MLIRContext *ctx = b.getContext();
  auto rowT = RankedTensorType::get({xt.getDimSize(0)}, elt);
  SmallVector<AffineMap> maps = {pick(ctx, 2, {0, 1}), pick(ctx, 2, {0})};
  SmallVector<IteratorType> iters = {IteratorType::parallel,
                                     IteratorType::reduction};
  Value m = generic(b, loc, {x},
                    filled(b, loc, rowT, x,
                           -std::numeric_limits<double>::infinity()),
                    maps, iters, [](OpBuilder &nb, Location nl, ValueRange a) {
                      return arith::MaximumFOp::create(nb, nl, a[0], a[1]);
                    });
  SmallVector<AffineMap> maps2 = {pick(ctx, 2, {0, 1}), pick(ctx, 2, {0}),
                                  pick(ctx, 2, {0})};
  Value s = generic(b, loc, {x, m}, filled(b, loc, rowT, x, 0.0), maps2, iters,
                    [](OpBuilder &nb, Location nl, ValueRange a) {
                      Value d = arith::SubFOp::create(nb, nl, a[0], a[1]);
                      Value e = math::ExpOp::create(nb, nl, d);
                      return arith::AddFOp::create(nb, nl, a[2], e);
                    });
  return {m, s};
}

Value lowerCrossEntropy(OpBuilder &b, CrossEntropyLossOp op) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  Type elt = tensorOf(x).getElementType();
  auto [m, s] = softmaxStats(b, loc, x);
  Value total = sumAll(b, loc, {m, s, op.getTarget()},
                       [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         Value row = linalg::IndexOp::create(nb, nl, 0);
                         Value col = toIndex(nb, nl, a[2]);
                         Value picked = tensor::ExtractOp::create(
                             nb, nl, x, ValueRange{row, col});
                         Value lse = arith::AddFOp::create(
                             nb, nl, a[0], math::LogOp::create(nb, nl, a[1]));
                         return arith::SubFOp::create(nb, nl, lse, picked);
                       });
  Value batch = numelF(b, loc, op.getTarget(), elt);
  return scalarTensor(b, loc, op.getType(),
                      arith::DivFOp::create(b, loc, total, batch));
}

Value lowerCrossEntropyGrad(OpBuilder &b, CrossEntropyLossGradOp op) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  RankedTensorType xt = tensorOf(x);
  Type elt = xt.getElementType();
  MLIRContext *ctx = b.getContext();
  auto [m, s] = softmaxStats(b, loc, x);
  Value invB = arith::DivFOp::create(b, loc, constF(b, loc, elt, 1.0),
                                     numelF(b, loc, op.getTarget(), elt));
  SmallVector<AffineMap> maps = {pick(ctx, 2, {0, 1}), pick(ctx, 2, {0}),
                                 pick(ctx, 2, {0}), pick(ctx, 2, {0}),
                                 pick(ctx, 2, {0, 1})};
  return generic(
      b, loc, {x, m, s, op.getTarget()}, emptyLike(b, loc, xt, x), maps,
      {IteratorType::parallel, IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value d = arith::SubFOp::create(nb, nl, a[0], a[1]);
        Value p = arith::DivFOp::create(nb, nl, math::ExpOp::create(nb, nl, d),
                                        a[2]);
        Value col = linalg::IndexOp::create(nb, nl, 1);
        Value hit = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                          col, toIndex(nb, nl, a[3]));
        Value one = arith::SelectOp::create(nb, nl, hit, constF(nb, nl, elt, 1),
                                            constF(nb, nl, elt, 0));
        return arith::MulFOp::create(
            nb, nl, arith::SubFOp::create(nb, nl, p, one), invB);
      });
}

/// Numerically stable max(x,0) - x*t + log1p(exp(-|x|)).
Value bceTerm(OpBuilder &b, Location loc, Value x, Value t) {
  Type elt = x.getType();
  Value zero = constF(b, loc, elt, 0.0);
  Value relu = arith::MaximumFOp::create(b, loc, x, zero);
  Value xt = arith::MulFOp::create(b, loc, x, t);
  Value negAbs = arith::NegFOp::create(b, loc, math::AbsFOp::create(b, loc, x));
  Value sp = math::Log1pOp::create(b, loc, math::ExpOp::create(b, loc, negAbs));
  return arith::AddFOp::create(b, loc, arith::SubFOp::create(b, loc, relu, xt),
                               sp);
}

template <typename LossOp>
Value lowerPointwiseLoss(OpBuilder &b, LossOp op, bool bce) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  Type elt = tensorOf(x).getElementType();
  Value total = sumAll(b, loc, {x, op.getTarget()},
                       [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         if (bce)
                           return bceTerm(nb, nl, a[0], a[1]);
                         Value d = arith::SubFOp::create(nb, nl, a[0], a[1]);
                         return arith::MulFOp::create(nb, nl, d, d);
                       });
  return scalarTensor(
      b, loc, op.getType(),
      arith::DivFOp::create(b, loc, total, numelF(b, loc, x, elt)));
}

template <typename GradOp>
Value lowerPointwiseLossGrad(OpBuilder &b, GradOp op, bool bce) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  Type elt = tensorOf(x).getElementType();
  Value scale = arith::DivFOp::create(b, loc, constF(b, loc, elt, bce ? 1 : 2),
                                      numelF(b, loc, x, elt));
  return elementwise(
      b, loc, op.getType(), {x, op.getTarget()},
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        Value p = a[0];
        if (bce) {
          Value one = constF(nb, nl, elt, 1.0);
          Value e = math::ExpOp::create(nb, nl, arith::NegFOp::create(nb, nl, p));
          p = arith::DivFOp::create(nb, nl, one,
                                    arith::AddFOp::create(nb, nl, one, e));
        }
        return arith::MulFOp::create(
            nb, nl, arith::SubFOp::create(nb, nl, p, a[1]), scale);
      });
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

FailureOr<Value> lowerOp(OpBuilder &b, Operation *op) {
  Location loc = op->getLoc();
  if (auto o = dyn_cast<LinearOp>(op))
    return lowerLinear(b, o);
  if (auto o = dyn_cast<MatmulOp>(op))
    return lowerMatmul(b, o);
  if (auto o = dyn_cast<EmbeddingOp>(op))
    return lowerEmbedding(b, o);
  if (auto o = dyn_cast<ConcatOp>(op))
    return lowerConcat(b, o);
  if (auto o = dyn_cast<EmbeddingBagOp>(op))
    return lowerEmbeddingBag(b, o);
  if (auto o = dyn_cast<EmbeddingBagGradOp>(op))
    return lowerEmbeddingBagGrad(b, o);
  if (auto o = dyn_cast<SliceOp>(op))
    return lowerSlice(b, o);
  if (auto o = dyn_cast<ReluOp>(op))
    return elementwise(b, loc, o.getType(), {o.getInput()},
                       [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         Value z = constF(nb, nl, a[0].getType(), 0.0);
                         return arith::MaximumFOp::create(nb, nl, a[0], z);
                       });
  if (auto o = dyn_cast<AddOp>(op))
    return elementwise(b, loc, o.getType(), {o.getLhs(), o.getRhs()},
                       [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         return arith::AddFOp::create(nb, nl, a[0], a[1]);
                       });
  if (auto o = dyn_cast<ReluGradOp>(op))
    return elementwise(
        b, loc, o.getType(), {o.getInput(), o.getGrad()},
        [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value z = constF(nb, nl, a[0].getType(), 0.0);
          Value pos = arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OGT,
                                            a[0], z);
          return arith::SelectOp::create(nb, nl, pos, a[1], z);
        });
  if (auto o = dyn_cast<LinearGradInputOp>(op))
    return gradInput(b, loc, o.getType(), o.getGrad(), o.getWeight(), true);
  if (auto o = dyn_cast<MatmulGradLhsOp>(op))
    return gradInput(b, loc, o.getType(), o.getGrad(), o.getRhs(), false);
  if (auto o = dyn_cast<LinearGradWeightOp>(op))
    return lowerLinearGradWeight(b, o);
  if (auto o = dyn_cast<MatmulGradRhsOp>(op))
    return lowerMatmulGradRhs(b, o);
  if (auto o = dyn_cast<ReduceBatchOp>(op))
    return lowerReduceBatch(b, o);
  if (auto o = dyn_cast<EmbeddingGradOp>(op))
    return o.getGrad();
  if (auto o = dyn_cast<CrossEntropyLossOp>(op))
    return lowerCrossEntropy(b, o);
  if (auto o = dyn_cast<CrossEntropyLossGradOp>(op))
    return lowerCrossEntropyGrad(b, o);
  if (auto o = dyn_cast<MseLossOp>(op))
    return lowerPointwiseLoss(b, o, false);
  if (auto o = dyn_cast<BceWithLogitsLossOp>(op))
    return lowerPointwiseLoss(b, o, true);
  if (auto o = dyn_cast<MseLossGradOp>(op))
    return lowerPointwiseLossGrad(b, o, false);
  if (auto o = dyn_cast<BceWithLogitsLossGradOp>(op))
    return lowerPointwiseLossGrad(b, o, true);
  return op->emitOpError("cannot be lowered to linalg here");
}

struct ConvertSdlToLinalg
    : mlir::sdl::impl::ConvertSdlToLinalgBase<ConvertSdlToLinalg> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<SdlDialect>(op->getDialect()))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      FailureOr<Value> v = lowerOp(rewriter, op);
      if (failed(v))
        return signalPassFailure();
      rewriter.replaceOp(op, *v);
    }
  }
};

} // namespace
