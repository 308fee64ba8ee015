//===- QuantRows.cpp - Symmetric quantization helpers ---------------------===//
//
// The quantization arithmetic shared by sdl-lower-fake-quant and
// sdl-lower-quantized-linear: see QuantRows.h.
//
//===----------------------------------------------------------------------===//

#include "transforms/QuantRows.h"
#include "transforms/BatchBlocks.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::sdl::blocks;

namespace mlir::sdl::quant {

double maxLevel(int64_t bits) { return double((int64_t(1) << (bits - 1)) - 1); }

bool inferenceInt8(Operation *fakeQuant, int64_t nnz, int64_t cols) {
  constexpr int64_t kMaxInt8Inputs = 133143, kMinEntriesPerInput = 8;
  auto mode = fakeQuant->getAttrOfType<StringAttr>("sdl.inference");
  if (mode && mode.getValue() != "auto")
    return mode.getValue() == "int8";
  return cols <= kMaxInt8Inputs && nnz >= kMinEntriesPerInput * cols;
}

Value constant(OpBuilder &b, Location loc, Type t, double v) {
  if (auto vt = dyn_cast<VectorType>(t))
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(vt, b.getFloatAttr(vt.getElementType(), v)));
  return arith::ConstantOp::create(b, loc, t, b.getFloatAttr(t, v));
}

Value scaleOf(OpBuilder &b, Location loc, Value m, double qmax) {
  Type t = m.getType();
  Value isZero = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, m,
                                       constant(b, loc, t, 0.0));
  return arith::SelectOp::create(
      b, loc, isZero, constant(b, loc, t, 1.0),
      arith::DivFOp::create(b, loc, m, constant(b, loc, t, qmax)));
}

Value levelOf(OpBuilder &b, Location loc, Value v, Value scale, double qmax) {
  return roundLevel(b, loc, arith::DivFOp::create(b, loc, v, scale), qmax);
}

Value roundLevel(OpBuilder &b, Location loc, Value t, double qmax) {
  Type type = t.getType();
  Value q = math::RoundEvenOp::create(b, loc, t);
  q = arith::MaximumFOp::create(b, loc, q, constant(b, loc, type, -qmax));
  return arith::MinimumFOp::create(b, loc, q, constant(b, loc, type, qmax));
}

int64_t lanesOf(Value v) {
  auto vt = dyn_cast<VectorType>(v.getType());
  return vt ? vt.getNumElements() : 1;
}

Value loadLanes(OpBuilder &b, Location loc, Value mem, Value k, int64_t lanes) {
  if (lanes == 1)
    return memref::LoadOp::create(b, loc, mem, ValueRange{k});
  Type elt = cast<MemRefType>(mem.getType()).getElementType();
  return vector::LoadOp::create(b, loc, VectorType::get({lanes}, elt), mem,
                                ValueRange{k});
}

void storeLanes(OpBuilder &b, Location loc, Value v, Value mem, Value k) {
  if (isa<VectorType>(v.getType()))
    vector::StoreOp::create(b, loc, v, mem, ValueRange{k});
  else
    memref::StoreOp::create(b, loc, v, mem, ValueRange{k});
}

Value foldEntries(OpBuilder &b, Location loc, Value lo, Value hi, int64_t lanes,
                  Value init, vector::CombiningKind kind, FoldStep step) {
  if (lanes == 1)
    return accumulate(b, loc, lo, hi, init, step);
  Value mid = wholeSteps(b, loc, lo, hi, lanes);
  Value splat = vector::BroadcastOp::create(
      b, loc, VectorType::get({lanes}, init.getType()), init);
  auto loop = scf::ForOp::create(
      b, loc, lo, mid, cIdx(b, loc, lanes), ValueRange{splat},
      [&](OpBuilder &nb, Location nl, Value k, ValueRange acc) {
        scf::YieldOp::create(nb, nl, ValueRange{step(nb, nl, acc[0], k)});
      });
  Value v = vector::ReductionOp::create(b, loc, kind, loop.getResult(0));
  return accumulate(b, loc, mid, hi, v, step);
}

void forRowScales(OpBuilder &b, Location loc, Value pos, Value vals,
                  int64_t rows, double qmax, int64_t lanes, RowBody body) {
  Type elt = cast<MemRefType>(vals.getType()).getElementType();
  parallelFor(
      b, loc, cIdx(b, loc, rows), [&](OpBuilder &pb, Location pl, Value row) {
        auto [lo, hi] = rowRange(pb, pl, pos, row);
        Value m = foldEntries(
            pb, pl, lo, hi, lanes, constant(pb, pl, elt, 0.0),
            vector::CombiningKind::MAXIMUMF,
            [&](OpBuilder &kb, Location kl, Value acc, Value k) {
              Value a = math::AbsFOp::create(
                  kb, kl, loadLanes(kb, kl, vals, k, lanesOf(acc)));
              return arith::MaximumFOp::create(kb, kl, acc, a).getResult();
            });
        body(pb, pl, row, lo, hi, scaleOf(pb, pl, m, qmax));
      });
}

} // namespace mlir::sdl::quant
