//===- GpuLosses.cpp - sdl entry points to gpu.launch: losses -------------===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for the
// losses of the train entry and their gradients, with the arithmetic of
// the CPU lowering (LowerToLinalg.cpp, LinalgBuilders.cpp's sumAll: terms
// summed in f64 in the same order, the total rounded to f32 and divided by
// the count in f32):
//
//   softmax stats            one thread per sample: max and sum of
//                            exp(x - max) over the classes (shared by the
//                            loss and its gradient)
//   cross_entropy_loss       one thread per sample: max + log(sum) - x[t];
//                            then one thread sums the samples in order and
//                            divides by the batch
//   cross_entropy_loss_grad  one thread per logit: (exp(x - max) / sum -
//                            [c == t]) * (1 / batch)
//   mse_loss,                one thread per column: the f64 sum over the
//   bce_with_logits_loss     rows of (x - t)^2, or of max(x, 0) - x t +
//                            log1p(exp(-|x|)); then one thread sums the
//                            columns in order and divides by the count
//   mse_loss_grad,           one thread per element: (x - t) * 2 / count,
//   bce_..._grad             or (sigmoid(x) - t) / count
//
// exp, log and log1p are math ops; sparsec-gpu-kernels expands them into
// polynomials (LLVM's NVPTX back end has no exp/log and libdevice is not
// linked).
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>
#include <tuple>

using namespace mlir;
using namespace sparsec::cudagen;

namespace {

Value f64(OpBuilder &b, Location loc, double v) {
  return arith::ConstantFloatOp::create(b, loc, b.getF64Type(), APFloat(v));
}

/// acc + v in f64 (v: f32 or f64).
Value addF64(OpBuilder &b, Location loc, Value acc, Value v) {
  if (!v.getType().isF64())
    v = arith::ExtFOp::create(b, loc, b.getF64Type(), v);
  return arith::AddFOp::create(b, loc, acc, v);
}

/// `total` (f64) rounded to f32 and divided by `count` (an index).
Value meanOf(OpBuilder &b, Location loc, Value total, Value count) {
  Value t = arith::TruncFOp::create(b, loc, b.getF32Type(), total);
  return arith::DivFOp::create(b, loc, t, indexToF32(b, loc, count));
}

/// Numerically stable max(x, 0) - x t + log1p(exp(-|x|)), as bceTerm of
/// the CPU lowering; |x| as max(x, -x) (convert-gpu-to-nvvm would make
/// math.absf a libdevice call).
Value bceTerm(OpBuilder &b, Location loc, Value x, Value t) {
  Value relu = arith::MaximumFOp::create(b, loc, x, f32(b, loc, 0.0f));
  Value xt = arith::MulFOp::create(b, loc, x, t);
  Value neg = arith::NegFOp::create(b, loc, x);
  Value negAbs =
      arith::NegFOp::create(b, loc, arith::MaximumFOp::create(b, loc, x, neg));
  Value sp = math::Log1pOp::create(b, loc, math::ExpOp::create(b, loc, negAbs));
  return arith::AddFOp::create(b, loc, arith::SubFOp::create(b, loc, relu, xt),
                               sp);
}

/// Element (r, c) of a rank-2 buffer, or element r of a rank-1 one.
Value loadAt(OpBuilder &b, Location loc, Value mem, Value r, Value c) {
  if (cast<MemRefType>(mem.getType()).getRank() == 1)
    return memref::LoadOp::create(b, loc, mem, r);
  return memref::LoadOp::create(b, loc, mem, ValueRange{r, c});
}

void storeAt(OpBuilder &b, Location loc, Value v, Value mem, Value r, Value c) {
  if (cast<MemRefType>(mem.getType()).getRank() == 1)
    memref::StoreOp::create(b, loc, v, mem, r);
  else
    memref::StoreOp::create(b, loc, v, mem, ValueRange{r, c});
}

/// Input and target of a pointwise loss: f32, the same rank >= 1.
bool isPointwiseLoss(Operation *op) {
  auto x = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
  auto t = dyn_cast<RankedTensorType>(op->getOperand(1).getType());
  return x && t && x.getRank() >= 1 && x.getElementType().isF32() &&
         t.getElementType().isF32() && x.getRank() == t.getRank();
}

/// A buffer of rank > 2 as [product of the leading sizes, last size] (a
/// view; ranks 1 and 2 as they are).
Value asRows(OpBuilder &b, Location loc, Value mem) {
  int64_t rank = cast<MemRefType>(mem.getType()).getRank();
  if (rank <= 2)
    return mem;
  ReassociationIndices lead;
  for (int64_t d = 0; d + 1 < rank; ++d)
    lead.push_back(d);
  return memref::CollapseShapeOp::create(
      b, loc, mem, ArrayRef<ReassociationIndices>{lead, {rank - 1}});
}

} // namespace

std::pair<Value, Value> EntryLowering::softmaxStats(Location loc, Value x) {
  if (auto it = softmax.find(x); it != softmax.end())
    return it->second;
  Value rows = dim(loc, x, 0), cols = dim(loc, x, 1);
  auto rowType = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  Value maxes = temporary(loc, rowType, rows);
  Value sums = temporary(loc, rowType, rows);
  launch1D(loc, rows, "softmax_stats", [&](OpBuilder &k, Value i) {
    Value zero = index(loc, 0);
    Value m = accumulate(
        k, loc, zero, cols,
        f32(k, loc, -std::numeric_limits<float>::infinity()),
        [&](OpBuilder &l, Value c, Value acc) -> Value {
          Value v = memref::LoadOp::create(l, loc, x, ValueRange{i, c});
          return arith::MaximumFOp::create(l, loc, v, acc);
        });
    Value s = accumulate(
        k, loc, zero, cols, f32(k, loc, 0.0f),
        [&](OpBuilder &l, Value c, Value acc) -> Value {
          Value v = memref::LoadOp::create(l, loc, x, ValueRange{i, c});
          Value d = arith::SubFOp::create(l, loc, v, m);
          return arith::AddFOp::create(l, loc, acc,
                                       math::ExpOp::create(l, loc, d));
        });
    memref::StoreOp::create(k, loc, m, maxes, i);
    memref::StoreOp::create(k, loc, s, sums, i);
  });
  return softmax[x] = {maxes, sums};
}

FailureOr<CrossEntropyOperands>
EntryLowering::crossEntropyOperands(Operation *op, Value logits, Value target) {
  if (!isRank2F32(logits.getType()))
    return op->emitOpError("on the CUDA target needs rank-2 f32 logits");
  CrossEntropyOperands o;
  o.x = buffers.lookup(logits);
  o.t = buffers.lookup(target);
  std::tie(o.maxes, o.sums) = softmaxStats(op->getLoc(), o.x);
  return o;
}

LogicalResult EntryLowering::lowerCrossEntropy(sdl::CrossEntropyLossOp op) {
  Location loc = op.getLoc();
  FailureOr<CrossEntropyOperands> ce =
      crossEntropyOperands(op, op.getInput(), op.getTarget());
  if (failed(ce))
    return failure();
  Value x = ce->x, t = ce->t, maxes = ce->maxes, sums = ce->sums;
  Value rows = dim(loc, x, 0);
  Value per = temporary(
      loc, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()), rows);
  launch1D(loc, rows, "cross_entropy_rows", [&](OpBuilder &k, Value i) {
    Value picked = memref::LoadOp::create(
        k, loc, x, ValueRange{i, loadIndex(k, loc, t, i)});
    Value lse = arith::AddFOp::create(
        k, loc, memref::LoadOp::create(k, loc, maxes, i),
        math::LogOp::create(k, loc, memref::LoadOp::create(k, loc, sums, i)));
    memref::StoreOp::create(k, loc, arith::SubFOp::create(k, loc, lse, picked),
                            per, i);
  });
  Value loss = resultBuffer(op.getResult(), x);
  buffers.map(op.getResult(), loss);
  launch1D(loc, index(loc, 1), "cross_entropy_mean", [&](OpBuilder &k, Value) {
    Value total = accumulate(
        k, loc, index(loc, 0), rows, f64(k, loc, 0.0),
        [&](OpBuilder &l, Value r, Value acc) -> Value {
          return addF64(l, loc, acc, memref::LoadOp::create(l, loc, per, r));
        });
    memref::StoreOp::create(k, loc, meanOf(k, loc, total, rows), loss);
  });
  return success();
}

LogicalResult
EntryLowering::lowerCrossEntropyGrad(sdl::CrossEntropyLossGradOp op) {
  Location loc = op.getLoc();
  FailureOr<CrossEntropyOperands> ce =
      crossEntropyOperands(op, op.getInput(), op.getTarget());
  if (failed(ce))
    return failure();
  Value x = ce->x, t = ce->t, maxes = ce->maxes, sums = ce->sums;
  Value out = resultBuffer(op.getResult(), x);
  buffers.map(op.getResult(), out);
  Value rows = dim(loc, x, 0), cols = dim(loc, x, 1);
  Value invB = arith::DivFOp::create(b, loc, f32(b, loc, 1.0f),
                                     indexToF32(b, loc, rows));
  Value total = arith::MulIOp::create(b, loc, rows, cols);
  launch1D(loc, total, "cross_entropy_grad", [&](OpBuilder &k, Value i) {
    Value r = arith::DivUIOp::create(k, loc, i, cols);
    Value c = arith::RemUIOp::create(k, loc, i, cols);
    Value d = arith::SubFOp::create(
        k, loc, memref::LoadOp::create(k, loc, x, ValueRange{r, c}),
        memref::LoadOp::create(k, loc, maxes, r));
    Value p = arith::DivFOp::create(k, loc, math::ExpOp::create(k, loc, d),
                                    memref::LoadOp::create(k, loc, sums, r));
    Value hit = arith::CmpIOp::create(k, loc, arith::CmpIPredicate::eq, c,
                                      loadIndex(k, loc, t, r));
    Value one = arith::SelectOp::create(k, loc, hit, f32(k, loc, 1.0f),
                                        f32(k, loc, 0.0f));
    memref::StoreOp::create(
        k, loc,
        arith::MulFOp::create(k, loc, arith::SubFOp::create(k, loc, p, one),
                              invB),
        out, ValueRange{r, c});
  });
  return success();
}

FailureOr<PointwiseOperands> EntryLowering::pointwiseOperands(Operation *op) {
  if (!isPointwiseLoss(op))
    return op->emitOpError("on the CUDA target needs f32 input and target of "
                           "one rank");
  Location loc = op->getLoc();
  PointwiseOperands o;
  o.full = buffers.lookup(op->getOperand(0));
  o.x = asRows(b, loc, o.full);
  o.t = asRows(b, loc, buffers.lookup(op->getOperand(1)));
  o.rows = dim(loc, o.x, 0);
  o.cols = cast<MemRefType>(o.x.getType()).getRank() == 2 ? dim(loc, o.x, 1)
                                                          : index(loc, 1);
  o.count = arith::MulIOp::create(b, loc, o.rows, o.cols);
  return o;
}

LogicalResult EntryLowering::lowerPointwiseLoss(Operation *op, bool bce) {
  Location loc = op->getLoc();
  FailureOr<PointwiseOperands> pw = pointwiseOperands(op);
  if (failed(pw))
    return failure();
  Value x = pw->x, t = pw->t, rows = pw->rows, cols = pw->cols;
  Value partial = temporary(
      loc, MemRefType::get({ShapedType::kDynamic}, b.getF64Type()), cols);
  launch1D(loc, cols, bce ? "bce_partials" : "mse_partials",
           [&](OpBuilder &k, Value c) {
             Value sum =
                 accumulate(k, loc, index(loc, 0), rows, f64(k, loc, 0.0),
                            [&](OpBuilder &l, Value r, Value acc) -> Value {
                              Value xv = loadAt(l, loc, x, r, c);
                              Value tv = loadAt(l, loc, t, r, c);
                              Value term;
                              if (bce) {
                                term = bceTerm(l, loc, xv, tv);
                              } else {
                                Value d = arith::SubFOp::create(l, loc, xv, tv);
                                term = arith::MulFOp::create(l, loc, d, d);
                              }
                              return addF64(l, loc, acc, term);
                            });
             memref::StoreOp::create(k, loc, sum, partial, c);
           });
  Value loss = resultBuffer(op->getResult(0), x);
  buffers.map(op->getResult(0), loss);
  Value count = pw->count;
  launch1D(loc, index(loc, 1), bce ? "bce_mean" : "mse_mean",
           [&](OpBuilder &k, Value) {
             Value total = accumulate(
                 k, loc, index(loc, 0), cols, f64(k, loc, 0.0),
                 [&](OpBuilder &l, Value c, Value acc) -> Value {
                   return addF64(l, loc, acc,
                                 memref::LoadOp::create(l, loc, partial, c));
                 });
             memref::StoreOp::create(k, loc, meanOf(k, loc, total, count),
                                     loss);
           });
  return success();
}

LogicalResult EntryLowering::lowerPointwiseLossGrad(Operation *op, bool bce) {
  Location loc = op->getLoc();
  FailureOr<PointwiseOperands> pw = pointwiseOperands(op);
  if (failed(pw))
    return failure();
  Value x = pw->x, t = pw->t, cols = pw->cols, count = pw->count;
  Value out = resultBuffer(op->getResult(0), pw->full);
  buffers.map(op->getResult(0), out);
  out = asRows(b, loc, out);
  Value scale = arith::DivFOp::create(b, loc, f32(b, loc, bce ? 1.0f : 2.0f),
                                      indexToF32(b, loc, count));
  launch1D(
      loc, count, bce ? "bce_grad" : "mse_grad", [&](OpBuilder &k, Value i) {
        Value r = arith::DivUIOp::create(k, loc, i, cols);
        Value c = arith::RemUIOp::create(k, loc, i, cols);
        Value p = loadAt(k, loc, x, r, c);
        if (bce) {
          Value one = f32(k, loc, 1.0f);
          Value e =
              math::ExpOp::create(k, loc, arith::NegFOp::create(k, loc, p));
          p = arith::DivFOp::create(k, loc, one,
                                    arith::AddFOp::create(k, loc, one, e));
        }
        Value g = arith::MulFOp::create(
            k, loc, arith::SubFOp::create(k, loc, p, loadAt(k, loc, t, r, c)),
            scale);
        storeAt(k, loc, g, out, r, c);
      });
  return success();
}
