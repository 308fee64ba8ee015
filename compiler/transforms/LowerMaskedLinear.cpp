//===- LowerMaskedLinear.cpp - masked linear layers to linalg -------------===//
//
// Implements `sdl-lower-masked-linear`: sdl.masked_linear and its two
// backward ops that `sdl-lower-sparse-linear` left (it takes rank-2
// batch-major activations into its threaded register-tiled loops) become
// linalg.generic contractions on tensors with the mask as one more operand,
// so W ∘ M is never formed (run before convert-sdl-to-linalg):
//
//   forward      y(b, o)  = bias(o) + sum_i x(b, i) * (w(o, i) * m(o, i))
//   grad input   dx(b, i) = sum_o dy(b, o) * (w(o, i) * m(o, i))
//   grad weight  dW(o, i) = m(o, i) * sum_b dy(b, o) * x(b, i)
//
// The two contractions with the weight run feature-major on transposed
// activations (batch innermost, unit stride; w * m invariant in that loop),
// the weight gradient with the batch outermost (rows of dW innermost).
//
// The weight gradient is exactly zero where the mask is zero, so with a
// weight that is zero there every optimizer keeps it zero (docs/runtime.md).
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERMASKEDLINEAR
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::builders;

namespace {

using utils::IteratorType;
constexpr IteratorType kPar = IteratorType::parallel;
constexpr IteratorType kRed = IteratorType::reduction;

class MaskedLowering {
public:
  MaskedLowering(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  /// y = x (W ∘ M)ᵀ + bias, feature-major: yᵀ(o, b) += (w(o, i) m(o, i))
  /// xᵀ(i, b) over dims (o, i, b), so the innermost loop runs over the
  /// batch with unit stride and w * m is loop-invariant there.
  Value forward(MaskedLinearOp op) {
    RankedTensorType wt = tensorOf(op.getWeight());
    Value xT = transposed(op.getInput());
    auto ytT = RankedTensorType::get({wt.getDimSize(0), ShapedType::kDynamic},
                                     wt.getElementType());
    Value init;
    if (Value bias = op.getBias())
      init = generic({bias}, emptyLike(b, loc, ytT, xT),
                     {map(2, {0}), map(2, {0, 1})}, {kPar, kPar},
                     [](OpBuilder &, Location, ValueRange a) { return a[0]; });
    else
      init = zeros(ytT, xT);
    Value yT = generic(
        {op.getWeight(), op.getMask(), xT}, init,
        {map(3, {0, 1}), map(3, {0, 1}), map(3, {1, 2}), map(3, {0, 2})},
        {kPar, kRed, kPar}, maskedFma);
    return transposed(yT);
  }

  /// dx = dy (W ∘ M), feature-major: dxᵀ(i, b) += (w(o, i) m(o, i))
  /// dyᵀ(o, b) over dims (o, i, b).
  Value gradInput(MaskedLinearGradInputOp op) {
    Value dyT = transposed(op.getGrad());
    RankedTensorType wt = tensorOf(op.getWeight());
    auto dxT = RankedTensorType::get({wt.getDimSize(1), ShapedType::kDynamic},
                                     wt.getElementType());
    Value r = generic(
        {op.getWeight(), op.getMask(), dyT}, zeros(dxT, dyT),
        {map(3, {0, 1}), map(3, {0, 1}), map(3, {0, 2}), map(3, {1, 2})},
        {kRed, kPar, kPar}, maskedFma);
    return transposed(r);
  }

  /// dW = (dyᵀ x) ∘ M: dW(o, i) += dy(b, o) x(b, i) over dims (b, o, i)
  /// (unit stride in i innermost), then the mask.
  Value gradWeight(MaskedLinearGradWeightOp op) {
    Value acc = generic(
        {op.getGrad(), op.getInput()}, zeros(op.getType(), Value()),
        {map(3, {0, 1}), map(3, {0, 2}), map(3, {1, 2})}, {kRed, kPar, kPar},
        [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value p = arith::MulFOp::create(nb, nl, a[0], a[1]);
          return arith::AddFOp::create(nb, nl, a[2], p);
        });
    return generic({op.getMask()}, acc, {map(2, {0, 1}), map(2, {0, 1})},
                   {kPar, kPar},
                   [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                     return arith::MulFOp::create(nb, nl, a[1], a[0]);
                   });
  }

private:
  OpBuilder &b;
  Location loc;

  /// out += (w * m) * a: the mask is applied to each weight as it is read.
  static Value maskedFma(OpBuilder &nb, Location nl, ValueRange a) {
    Value wm = arith::MulFOp::create(nb, nl, a[0], a[1]);
    Value p = arith::MulFOp::create(nb, nl, wm, a[2]);
    return arith::AddFOp::create(nb, nl, a[3], p);
  }

  Value transposed(Value v) { return builders::transposed(b, loc, v); }

  AffineMap map(unsigned numDims, ArrayRef<unsigned> dims) {
    return pick(b.getContext(), numDims, dims);
  }

  /// Zeros of type `t`; its dynamic dims are `like`'s at the same index.
  Value zeros(RankedTensorType t, Value like) {
    return filled(b, loc, t, like, 0.0);
  }

  Value generic(ValueRange ins, Value init, ArrayRef<AffineMap> maps,
                ArrayRef<IteratorType> iters, BodyFn body) {
    return builders::generic(b, loc, ins, init, maps, iters, body);
  }
};

struct SdlLowerMaskedLinear
    : mlir::sdl::impl::SdlLowerMaskedLinearBase<SdlLowerMaskedLinear> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<MaskedLinearOp, MaskedLinearGradInputOp,
              MaskedLinearGradWeightOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      MaskedLowering lower(rewriter, op->getLoc());
      Value v;
      if (auto o = dyn_cast<MaskedLinearOp>(op))
        v = lower.forward(o);
      else if (auto o = dyn_cast<MaskedLinearGradInputOp>(op))
        v = lower.gradInput(o);
      else
        v = lower.gradWeight(cast<MaskedLinearGradWeightOp>(op));
      rewriter.replaceOp(op, v);
    }
  }
};

} // namespace
