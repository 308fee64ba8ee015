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
#include "transforms/QuantRows.h"

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

/// The quantized values of the CSR weight `w` (an assemble) as a tensor.
Value quantizedValues(OpBuilder &b, Location loc, sparse_tensor::AssembleOp w,
                      int64_t bits) {
  Value vals = w.getValues();
  RankedTensorType vt = tensorOf(vals);
  Value v = buffer(b, loc, vals);
  Value out = memref::AllocOp::create(
      b, loc, MemRefType::get(vt.getShape(), vt.getElementType()),
      ValueRange{});
  int64_t rows = tensorOf(w.getLevels()[0]).getDimSize(0) - 1;
  double qmax = quant::maxLevel(bits);
  quant::forRowScales(
      b, loc, buffer(b, loc, w.getLevels()[0]), v, rows, qmax, /*lanes=*/1,
      [&](OpBuilder &pb, Location pl, Value, Value lo, Value hi, Value scale) {
        forLoop(pb, pl, lo, hi, [&](OpBuilder &kb, Location kl, Value k) {
          Value x = memref::LoadOp::create(kb, kl, v, ValueRange{k});
          Value q = quant::levelOf(kb, kl, x, scale, qmax);
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
