//===- GpuKernels.cpp - sparsec-gpu-kernels: entry points to gpu.launch ---===//
//
// Part of sparsec. The pass `sparsec-gpu-kernels` of the CUDA target
// (docs/cuda.md). It runs after sdl-finalize-abi and rewrites the `forward`
// entry point and, when the model trains, the `train` entry point into
// host code on memrefs that launches gpu.launch kernels (EntryLowering,
// GpuLowering.h: forward ops in GpuLowering.cpp, loss and gradients in
// GpuBackward.cpp). The memref arguments of the new functions are device
// pointers; they keep the CPU kernels' signatures (train returns the loss,
// read back to the host) and are named sparsec_gpu_kernel_<Model>_forward
// and sparsec_gpu_kernel_<Model>_train. Every other function of the module
// is removed; an sdl op without a GPU rule is an error, so a model the CUDA
// target cannot handle fails to compile instead of miscomputing. exp, log
// and log1p in the kernels are expanded into polynomials (LLVM's NVPTX back end
// has no exp/log and libdevice is not linked), so the device and the
// emulator (sparsec-gpu-emulate) compute the same arithmetic.
//
//===----------------------------------------------------------------------===//

#include "codegen/Gpu.h"
#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace {

/// f32 math.absf as max(x, -x) (maximumf: NaN propagates, +0 for -0): the
/// polynomial tanh needs it, and NVVM's lowering rejects llvm.intr.fabs.
struct AbsF32ToMax : public OpRewritePattern<math::AbsFOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::AbsFOp op,
                                PatternRewriter &rw) const override {
    if (!op.getType().isF32())
      return failure();
    Value x = op.getOperand();
    rw.replaceOpWithNewOp<arith::MaximumFOp>(
        op, x, arith::NegFOp::create(rw, op.getLoc(), x));
    return success();
  }
};

/// f32 math.roundeven in arithmetic (NVVM's lowering rejects
/// llvm.intr.roundeven): below 2^23 in magnitude, (|x| + 2^23) - 2^23 is
/// |x| rounded to nearest even by the add's own rounding, then x's sign
/// (so -0.3 gives -0); from 2^23 up (and NaN, inf) x is integral already.
/// Exact.
struct RoundEvenF32ToArith : public OpRewritePattern<math::RoundEvenOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::RoundEvenOp op,
                                PatternRewriter &rw) const override {
    if (!op.getType().isF32())
      return failure();
    Location loc = op.getLoc();
    Value x = op.getOperand();
    Value two23 = arith::ConstantFloatOp::create(rw, loc, rw.getF32Type(),
                                                 APFloat(8388608.0f));
    Value ax = arith::MaximumFOp::create(rw, loc, x,
                                         arith::NegFOp::create(rw, loc, x));
    Value r = arith::SubFOp::create(
        rw, loc, arith::AddFOp::create(rw, loc, ax, two23), two23);
    Value neg =
        arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::OLT, x,
                              arith::ConstantFloatOp::create(
                                  rw, loc, rw.getF32Type(), APFloat(0.0f)));
    Value signedR = arith::SelectOp::create(
        rw, loc, neg, arith::NegFOp::create(rw, loc, r), r);
    Value big =
        arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::UGE, ax, two23);
    rw.replaceOpWithNewOp<arith::SelectOp>(op, big, x, signedR);
    return success();
  }
};

/// f32 math.floor in arithmetic: the polynomial exp needs it, and
/// convert-gpu-to-nvvm would turn it into a libdevice call. Exact: values
/// of magnitude >= 2^23 (and NaN, inf) are integral already; below that the
/// truncation through i32 is exact and corrected for negative fractions.
struct FloorF32ToArith : public OpRewritePattern<math::FloorOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(math::FloorOp op,
                                PatternRewriter &rw) const override {
    if (!op.getType().isF32())
      return failure();
    Location loc = op.getLoc();
    Value x = op.getOperand();
    auto cst = [&](float v) {
      return arith::ConstantFloatOp::create(rw, loc, rw.getF32Type(),
                                            APFloat(v));
    };
    Value t = arith::SIToFPOp::create(
        rw, loc, rw.getF32Type(),
        arith::FPToSIOp::create(rw, loc, rw.getI32Type(), x));
    Value above =
        arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::OGT, t, x);
    Value down = arith::SelectOp::create(
        rw, loc, above, arith::SubFOp::create(rw, loc, t, cst(1.0f)), t);
    Value bigPos = arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::UGE, x,
                                         cst(8388608.0f));
    Value bigNeg = arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::ULE, x,
                                         cst(-8388608.0f));
    Value integral = arith::OrIOp::create(rw, loc, bigPos, bigNeg);
    rw.replaceOpWithNewOp<arith::SelectOp>(op, integral, x, down);
    return success();
  }
};

/// The name of the CUDA function of the CPU entry `name`.
std::string gpuName(llvm::StringRef name) {
  if (name.consume_front("sparsec_kernel_"))
    return "sparsec_gpu_kernel_" + name.str();
  return "sparsec_gpu_" + name.str();
}

struct GpuKernelsPass
    : public PassWrapper<GpuKernelsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GpuKernelsPass)

  StringRef getArgument() const override { return "sparsec-gpu-kernels"; }
  StringRef getDescription() const override {
    return "Lower the forward and train entries (after sdl-finalize-abi) to "
           "host code launching gpu.launch kernels";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<arith::ArithDialect, gpu::GPUDialect, math::MathDialect,
                    memref::MemRefDialect, scf::SCFDialect,
                    vector::VectorDialect>();
  }

  /// Lowers `entry` into a new function before it; null on failure.
  func::FuncOp lowerEntry(func::FuncOp entry, StringRef kernelModule) {
    if (!entry.getBody().hasOneBlock()) {
      entry.emitError("the entry point must be a single block");
      return {};
    }
    OpBuilder mb(entry);
    std::string name = gpuName(entry.getSymName());
    auto gpuFn =
        func::FuncOp::create(mb, entry.getLoc(), name, entry.getFunctionType());
    gpuFn->setAttrs(entry->getAttrs());
    gpuFn.setSymName(name);
    gpuFn->setAttr("sdl.target", mb.getStringAttr("cuda"));
    gpuFn.addEntryBlock();
    sparsec::cudagen::EntryLowering lowering(entry, gpuFn, kernelModule);
    if (failed(lowering.run())) {
      gpuFn.erase();
      return {};
    }
    return gpuFn;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> entries, others;
    std::string kernelModule;
    for (auto f : module.getOps<func::FuncOp>()) {
      auto entry = f->getAttrOfType<StringAttr>("sdl.entry");
      bool lowered = entry && (entry.getValue() == "forward" ||
                               entry.getValue() == "train");
      if (entry && entry.getValue() == "forward" && kernelModule.empty()) {
        // sparsec_gpu_kernel_<Model>_forward -> ..._<Model>_kernels
        std::string full = gpuName(f.getSymName());
        StringRef stem(full);
        stem.consume_back("_forward");
        kernelModule = stem.str() + "_kernels";
      }
      (lowered ? entries : others).push_back(f);
    }
    if (kernelModule.empty()) {
      module.emitError("no forward entry (sdl.entry = \"forward\"); run "
                       "sdl-finalize-abi first");
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> lowered;
    for (func::FuncOp f : entries) {
      func::FuncOp g = lowerEntry(f, kernelModule);
      if (!g)
        return signalPassFailure();
      lowered.push_back(g);
    }
    for (func::FuncOp f : llvm::concat<func::FuncOp>(entries, others))
      f.erase();
    // exp/log/log1p/tanh -> polynomials (fma, bit operations, floor in
    // arithmetic), on the device and in the emulator alike.
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef op) {
      return op == "math.exp" || op == "math.log" || op == "math.log1p" ||
             op == "math.tanh";
    });
    patterns.add<FloorF32ToArith, AbsF32ToMax, RoundEvenF32ToArith>(
        &getContext());
    FrozenRewritePatternSet frozen(std::move(patterns));
    // Rewrite only: no folding or constant CSE, which would hoist the
    // kernels' constants out of the launches (into kernel arguments).
    GreedyRewriteConfig config;
    config.enableFolding(false)
        .enableConstantCSE(false)
        .setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    for (func::FuncOp g : lowered)
      if (failed(applyPatternsGreedily(g, frozen, config)))
        return signalPassFailure();
  }
};

} // namespace

std::unique_ptr<Pass> sparsec::createGpuKernelsPass() {
  return std::make_unique<GpuKernelsPass>();
}
