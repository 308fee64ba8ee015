//===- LowerFakeQuant.cpp - Per-row fake quantization of weights ----------===//
//
// Implements `sdl-lower-fake-quant`: `sdl.fake_quant_rows` of a CSR weight
// rebuilt by `sparse_tensor.assemble` (sdl-finalize-abi) becomes the
// assemble of the same positions and coordinates with quantized values:
//
//   s(r)  = max_k |v(k)| / qmax over the stored entries k of row r
//           (1 when the row is all zero), qmax = 2^(bits-1) - 1
//   vq(k) = clamp(roundeven(v(k) / s(r)), -qmax, qmax) * s(r)
//
// computed row by row (rows in parallel, `sdl.parallel`) into a fresh
// buffer. The result is again an assemble, so sdl-lower-sparse-linear (run
// next) takes the layer's kernels into its register-tiled loops with the
// quantized values. Runs after sdl-finalize-abi; anything else is an error.
//
//===----------------------------------------------------------------------===//

#include "transforms/BatchBlocks.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERFAKEQUANT
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::blocks;

namespace {

Value loadIndex(OpBuilder &b, Location loc, Value mem, Value i) {
  Value v = memref::LoadOp::create(b, loc, mem, ValueRange{i});
  return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), v);
}

Value constFloat(OpBuilder &b, Location loc, Type t, double v) {
  return arith::ConstantOp::create(b, loc, t, b.getFloatAttr(t, v));
}

/// The quantized values of the CSR weight `w` (an assemble) as a tensor.
Value quantizedValues(OpBuilder &b, Location loc, sparse_tensor::AssembleOp w,
                      int64_t bits) {
  Value vals = w.getValues();
  RankedTensorType vt = tensorOf(vals);
  Type elt = vt.getElementType();
  Value pos = buffer(b, loc, w.getLevels()[0]);
  Value v = buffer(b, loc, vals);
  Value out = memref::AllocOp::create(
      b, loc, MemRefType::get(vt.getShape(), elt), ValueRange{});
  int64_t rows = tensorOf(w.getLevels()[0]).getDimSize(0) - 1;
  double qmax = double((int64_t(1) << (bits - 1)) - 1);
  parallelFor(
      b, loc, cIdx(b, loc, rows), [&](OpBuilder &pb, Location pl, Value row) {
        Value lo = loadIndex(pb, pl, pos, row);
        Value hi = loadIndex(
            pb, pl, pos, arith::AddIOp::create(pb, pl, row, cIdx(pb, pl, 1)));
        auto maxLoop = scf::ForOp::create(
            pb, pl, lo, hi, cIdx(pb, pl, 1),
            ValueRange{constFloat(pb, pl, elt, 0.0)},
            [&](OpBuilder &kb, Location kl, Value k, ValueRange acc) {
              Value a = math::AbsFOp::create(
                  kb, kl, memref::LoadOp::create(kb, kl, v, ValueRange{k}));
              scf::YieldOp::create(
                  kb, kl,
                  ValueRange{arith::MaximumFOp::create(kb, kl, acc[0], a)});
            });
        Value m = maxLoop.getResult(0);
        Value zero = constFloat(pb, pl, elt, 0.0);
        Value isZero =
            arith::CmpFOp::create(pb, pl, arith::CmpFPredicate::OEQ, m, zero);
        Value scale = arith::SelectOp::create(
            pb, pl, isZero, constFloat(pb, pl, elt, 1.0),
            arith::DivFOp::create(pb, pl, m, constFloat(pb, pl, elt, qmax)));
        Value lim = constFloat(pb, pl, elt, qmax);
        Value negLim = constFloat(pb, pl, elt, -qmax);
        forLoop(pb, pl, lo, hi, [&](OpBuilder &kb, Location kl, Value k) {
          Value x = memref::LoadOp::create(kb, kl, v, ValueRange{k});
          Value q = math::RoundEvenOp::create(
              kb, kl, arith::DivFOp::create(kb, kl, x, scale));
          q = arith::MinimumFOp::create(
              kb, kl, arith::MaximumFOp::create(kb, kl, q, negLim), lim);
          memref::StoreOp::create(kb, kl,
                                  arith::MulFOp::create(kb, kl, q, scale), out,
                                  ValueRange{k});
        });
      });
  return asTensor(b, loc, out);
}

struct SdlLowerFakeQuant
    : mlir::sdl::impl::SdlLowerFakeQuantBase<SdlLowerFakeQuant> {
  void runOnOperation() override {
    SmallVector<FakeQuantRowsOp> ops;
    getOperation().walk([&](FakeQuantRowsOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (FakeQuantRowsOp op : ops) {
      auto w = op.getInput().getDefiningOp<sparse_tensor::AssembleOp>();
      if (!w || w.getLevels().size() != 2) {
        op.emitOpError("expects a CSR weight rebuilt by sparse_tensor.assemble "
                       "(run sdl-finalize-abi first)");
        return signalPassFailure();
      }
      rewriter.setInsertionPoint(op);
      Value q = quantizedValues(rewriter, op.getLoc(), w, op.getBits());
      rewriter.replaceOp(
          op, sparse_tensor::AssembleOp::create(
                  rewriter, op.getLoc(), op.getType(), w.getLevels(), q));
    }
  }
};

} // namespace
