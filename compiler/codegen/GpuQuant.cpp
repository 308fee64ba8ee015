//===- GpuQuant.cpp - sdl entry points to gpu.launch: quantized layers ----===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for
// sparse_quantized_linear layers, with the arithmetic of the CPU lowering
// (transforms/QuantRows.h: the same scales and levels):
//
//   fake_quant_rows  one thread per row of the CSR weight: s = max |v| /
//                    qmax (1 for a zero row), then every stored value
//                    clamp(roundeven(v / s), +-qmax) * s into a new values
//                    buffer with the weight's pattern (the training forward,
//                    and the forward of layers computed in f32)
//   linear, int8     in the forward entry, for a layer QuantRows.h's rule
//                    computes in int8: one thread per sample for its scale
//                    sx = max |x| / 127 and 1 / sx; one thread per output
//                    (b, r): the row's scale s(r), the exact int32 sum of
//                    the weight levels times the input levels
//                    clamp(roundeven(x * (1 / sx)), +-127), then
//                    f32(acc) * s(r) * sx(b) + bias(r)
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"
#include "transforms/QuantRows.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace sparsec::cudagen;
namespace quant = mlir::sdl::quant;

namespace {

/// The max |v| of `mem`'s entries [lo, hi) (f32; 0 when empty).
Value maxAbs(OpBuilder &b, Location loc, Value mem, Value lo, Value hi,
             function_ref<SmallVector<Value>(OpBuilder &, Value)> at) {
  return accumulate(b, loc, lo, hi, f32(b, loc, 0.0f),
                    [&](OpBuilder &l, Value k, Value acc) -> Value {
                      Value v = memref::LoadOp::create(l, loc, mem, at(l, k));
                      return arith::MaximumFOp::create(
                          l, loc, acc, math::AbsFOp::create(l, loc, v));
                    });
}

/// A CSR row's stored entries [pos[r], pos[r + 1]).
std::pair<Value, Value> rowRange(OpBuilder &b, Location loc, Value pos,
                                 Value r) {
  Value next = arith::AddIOp::create(b, loc, r,
                                     arith::ConstantIndexOp::create(b, loc, 1));
  return {loadIndex(b, loc, pos, r), loadIndex(b, loc, pos, next)};
}

} // namespace

LogicalResult EntryLowering::lowerFakeQuant(sdl::FakeQuantRowsOp op) {
  Location loc = op.getLoc();
  auto it = csr.find(op.getInput());
  if (it == csr.end())
    return op.emitOpError("on the CUDA target needs a CSR weight");
  CsrBuffers w = it->second;
  sdl::FakeQuantRowsOp self;
  if (isInt8Linear(op.getResult(), self)) {
    csr[op.getResult()] = w; // read by lowerInt8Linear from the master values
    return success();
  }
  const double qmax = quant::maxLevel(op.getBits());
  CsrBuffers q = w;
  q.vals = temporary(loc, cast<MemRefType>(w.vals.getType()));
  csr[op.getResult()] = q;
  Value rows = arith::SubIOp::create(b, loc, dim(loc, w.pos, 0), index(loc, 1));
  launch1D(loc, rows, "fake_quant_rows", [&](OpBuilder &kb, Value r) {
    auto [lo, hi] = rowRange(kb, loc, w.pos, r);
    auto at = [](OpBuilder &, Value k) -> SmallVector<Value> { return {k}; };
    Value s =
        quant::scaleOf(kb, loc, maxAbs(kb, loc, w.vals, lo, hi, at), qmax);
    scf::ForOp::create(kb, loc, lo, hi, index(loc, 1), ValueRange(),
                       [&](OpBuilder &l, Location ll, Value k, ValueRange) {
                         Value v = memref::LoadOp::create(l, ll, w.vals, k);
                         Value level = quant::levelOf(l, ll, v, s, qmax);
                         memref::StoreOp::create(
                             l, ll, arith::MulFOp::create(l, ll, level, s),
                             q.vals, k);
                         scf::YieldOp::create(l, ll);
                       });
  });
  return success();
}

bool EntryLowering::isInt8Linear(Value weight, sdl::FakeQuantRowsOp &fq) {
  fq = weight.getDefiningOp<sdl::FakeQuantRowsOp>();
  auto entry = src->getAttrOfType<StringAttr>("sdl.entry");
  if (!fq || !entry || entry.getValue() != "forward")
    return false;
  auto it = csr.find(fq.getInput());
  if (it == csr.end())
    return false;
  auto t = cast<ShapedType>(fq.getType());
  int64_t nnz = cast<MemRefType>(it->second.vals.getType()).getDimSize(0);
  return quant::inferenceInt8(fq, nnz, t.getDimSize(1));
}

LogicalResult EntryLowering::lowerInt8Linear(Operation *op, Value input,
                                             sdl::FakeQuantRowsOp fq,
                                             Value biasValue) {
  Location loc = op->getLoc();
  CsrBuffers w = csr.find(fq.getInput())->second; // the f32 master weight
  const double qmax = quant::maxLevel(fq.getBits());
  const double amax = quant::kActivationLevels;
  Value x = buffers.lookup(input);
  Value bias = biasValue ? buffers.lookup(biasValue) : Value();
  Value result = op->getResult(0);
  Value y = resultBuffer(result, x);
  buffers.map(result, y);
  Value batch = dim(loc, x, 0), ins = dim(loc, x, 1);
  auto vec = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  Value sx = temporary(loc, vec, {batch}), inv = temporary(loc, vec, {batch});
  launch1D(loc, batch, "quant_input_scale", [&](OpBuilder &kb, Value s) {
    auto at = [&](OpBuilder &, Value i) -> SmallVector<Value> {
      return {s, i};
    };
    Value scale = quant::scaleOf(
        kb, loc, maxAbs(kb, loc, x, index(loc, 0), ins, at), amax);
    memref::StoreOp::create(kb, loc, scale, sx, s);
    // The reciprocal once per sample, as the CPU (and fbgemm) take it.
    memref::StoreOp::create(
        kb, loc, arith::DivFOp::create(kb, loc, f32(kb, loc, 1.0f), scale), inv,
        s);
  });
  Value outs = dim(loc, y, 1);
  Value total = arith::MulIOp::create(b, loc, batch, outs);
  launch1D(loc, total, "linear_int8", [&](OpBuilder &kb, Value i) {
    Value r = arith::RemUIOp::create(kb, loc, i, outs);
    Value s = arith::DivUIOp::create(kb, loc, i, outs);
    auto [lo, hi] = rowRange(kb, loc, w.pos, r);
    auto at = [](OpBuilder &, Value k) -> SmallVector<Value> { return {k}; };
    Value ws =
        quant::scaleOf(kb, loc, maxAbs(kb, loc, w.vals, lo, hi, at), qmax);
    Value invx = memref::LoadOp::create(kb, loc, inv, s);
    Type i32 = kb.getI32Type();
    Value zero = arith::ConstantOp::create(kb, loc, kb.getI32IntegerAttr(0));
    Value acc = accumulate(
        kb, loc, lo, hi, zero, [&](OpBuilder &l, Value k, Value sum) -> Value {
          Value wl = quant::levelOf(
              l, loc, memref::LoadOp::create(l, loc, w.vals, k), ws, qmax);
          Value xv = memref::LoadOp::create(
              l, loc, x, ValueRange{s, loadIndex(l, loc, w.crd, k)});
          Value xl = quant::roundLevel(
              l, loc, arith::MulFOp::create(l, loc, xv, invx), amax);
          Value p = arith::MulIOp::create(
              l, loc, arith::FPToSIOp::create(l, loc, i32, wl),
              arith::FPToSIOp::create(l, loc, i32, xl));
          return arith::AddIOp::create(l, loc, sum, p);
        });
    Value v = arith::SIToFPOp::create(kb, loc, kb.getF32Type(), acc);
    v = arith::MulFOp::create(kb, loc, v, ws);
    v = arith::MulFOp::create(kb, loc, v,
                              memref::LoadOp::create(kb, loc, sx, s));
    if (bias)
      v = arith::AddFOp::create(kb, loc, v,
                                memref::LoadOp::create(kb, loc, bias, r));
    memref::StoreOp::create(kb, loc, v, y, ValueRange{s, r});
  });
  return success();
}
