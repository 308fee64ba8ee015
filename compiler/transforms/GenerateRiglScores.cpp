//===- GenerateRiglScores.cpp - RigL growth-score kernels -----------------===//
//
// Implements `sdl-generate-rigl-scores`. For every CSR `sdl.param` with
// dynamic = "rigl" (index k in declaration order) it generates
//
//   func.func @sparsec_kernel_<Model>_score_<k>(
//       %x: memref<?x?xf32>,                                // batch x in
//       %dy: memref<?x?xf32, strided<[?, 1], offset: ?>>,   // batch x rows
//       %score: memref<?x?xf32>)                            // rows x in
//
// with score[r, i] = sum over b of dy[b, r] * x[b, i], summed in batch
// order: the dense gradient of the weight on a chunk of its rows (the
// runtime passes the columns [row0, row0 + rows) of the captured output
// gradient as %dy, runtime.h: sparsec_score_fn). The runtime walks the
// weight chunk by chunk, so no more than max_size gradient values exist at
// once. Rows run in parallel (`sdl.parallel`, outlined onto the runtime's
// threads); each row is built in blocks of kBlock columns so that the row
// block stays in L1 while the batch's slice of x streams from L2, and the
// innermost loop is contiguous for LLVM's vectoriser.
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLGENERATERIGLSCORES
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;

namespace {

/// Columns of a score row accumulated together (2 KB of f32).
constexpr int64_t kBlock = 512;

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// scf.for lo..hi step `step` running `body(iv)`.
void forRange(OpBuilder &b, Location loc, Value lo, Value hi, Value step,
              function_ref<void(OpBuilder &, Location, Value)> body) {
  scf::ForOp::create(b, loc, lo, hi, step, ValueRange{},
                     [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
                       body(nb, nl, iv);
                       scf::YieldOp::create(nb, nl);
                     });
}

/// Emits the body of a score kernel (arguments x, dy, score).
void buildScore(OpBuilder &b, Location loc, Value x, Value dy, Value score) {
  Value c0 = cIdx(b, loc, 0), c1 = cIdx(b, loc, 1);
  Value block = cIdx(b, loc, kBlock);
  Value batch = memref::DimOp::create(b, loc, x, 0);
  Value in = memref::DimOp::create(b, loc, x, 1);
  Value rows = memref::DimOp::create(b, loc, score, 0);
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  auto par = scf::ParallelOp::create(
      b, loc, ValueRange{c0}, ValueRange{rows}, ValueRange{c1},
      [&](OpBuilder &pb, Location pl, ValueRange ivs) {
        Value r = ivs[0];
        forRange(
            pb, pl, c0, in, block, [&](OpBuilder &ob, Location ol, Value i0) {
              Value end = arith::MinSIOp::create(
                  ob, ol, arith::AddIOp::create(ob, ol, i0, block), in);
              forRange(ob, ol, i0, end, c1,
                       [&](OpBuilder &ib, Location il, Value i) {
                         memref::StoreOp::create(ib, il, zero, score,
                                                 ValueRange{r, i});
                       });
              forRange(
                  ob, ol, c0, batch, c1,
                  [&](OpBuilder &bb, Location bl, Value bi) {
                    Value d =
                        memref::LoadOp::create(bb, bl, dy, ValueRange{bi, r});
                    forRange(bb, bl, i0, end, c1,
                             [&](OpBuilder &ib, Location il, Value i) {
                               Value s = memref::LoadOp::create(
                                   ib, il, score, ValueRange{r, i});
                               Value xv = memref::LoadOp::create(
                                   ib, il, x, ValueRange{bi, i});
                               Value p = arith::MulFOp::create(ib, il, d, xv);
                               memref::StoreOp::create(
                                   ib, il, arith::AddFOp::create(ib, il, s, p),
                                   score, ValueRange{r, i});
                             });
                  });
            });
      });
  par->setAttr("sdl.parallel", b.getUnitAttr());
}

struct SdlGenerateRiglScores
    : mlir::sdl::impl::SdlGenerateRiglScoresBase<SdlGenerateRiglScores> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    StringRef modelName = module.getSymName().value_or("model");
    Type f32 = Float32Type::get(ctx);
    int64_t dyn = ShapedType::kDynamic;
    auto plain = MemRefType::get({dyn, dyn}, f32);
    auto strided = MemRefType::get({dyn, dyn}, f32,
                                   StridedLayoutAttr::get(ctx, dyn, {dyn, 1}));
    auto type = FunctionType::get(ctx, {plain, strided, plain}, {});
    for (auto [k, p] : llvm::enumerate(module.getOps<ParamOp>())) {
      if (p.getDynamic() != "rigl")
        continue;
      OpBuilder b(module.getBodyRegion());
      b.setInsertionPointToEnd(module.getBody());
      std::string name =
          ("sparsec_kernel_" + modelName + "_score_").str() + std::to_string(k);
      auto f = func::FuncOp::create(b, p.getLoc(), name, type);
      f->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
      Block *body = f.addEntryBlock();
      b.setInsertionPointToStart(body);
      buildScore(b, p.getLoc(), body->getArgument(0), body->getArgument(1),
                 body->getArgument(2));
      func::ReturnOp::create(b, p.getLoc());
    }
  }
};

} // namespace
