//===- Pipeline.cpp - The sparsec pass pipelines --------------------------===//
//
// A copy of MLIR's `sparsifier` pipeline in codegen mode
// (enable-runtime-library=false) with two changes recorded in
// docs/pipeline.md: eliminate-empty-tensors before sparsification (results
// are computed in the caller's buffer) and the buffer-deallocation pipeline
// after bufferization (temporaries are freed), and the CSR kernels of
// sdl-lower-sparse-linear whose parallel loops are outlined onto the
// runtime's threads (sparsec-outline-parallel). Elementwise fusion is not run:
// fusing a producer into a generic with a sparse output makes the
// sparsifier reject the sampled (SDDMM) kernel.
//
//===----------------------------------------------------------------------===//

#include "codegen/Pipeline.h"

#include "codegen/Gpu.h"

#include "transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SparseTensor/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void ::sparsec::buildTrainingPipeline(OpPassManager &pm) {
  pm.addPass(mlir::sdl::createSdlExpandTraining());
  pm.addPass(createCanonicalizerPass());
}

void ::sparsec::buildLinalgPipeline(OpPassManager &pm) {
  pm.addPass(mlir::sdl::createSdlGenerateRowUpdates());
  pm.addPass(mlir::sdl::createSdlGenerateRiglScores());
  pm.addPass(mlir::sdl::createSdlFinalizeAbi());
  pm.addPass(mlir::sdl::createSdlLowerQuantizedLinear());
  pm.addPass(mlir::sdl::createSdlLowerFakeQuant());
  pm.addPass(mlir::sdl::createSdlLowerSparseLinear());
  pm.addPass(mlir::sdl::createSdlLowerKWinners());
  pm.addPass(mlir::sdl::createSdlLowerMaskedLinear());
  pm.addPass(mlir::sdl::createSdlLowerMaskedConv2d());
  pm.addPass(mlir::sdl::createSdlLowerMaskedLstm());
  pm.addPass(mlir::sdl::createConvertSdlToLinalg());
  pm.addPass(createCanonicalizerPass());
}

void ::sparsec::buildLLVMPipeline(OpPassManager &pm, const CodegenOptions &o) {
  pm.addNestedPass<func::FuncOp>(createLinalgGeneralizeNamedOpsPass());
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  SparsificationOptions sparseOpts(SparseParallelizationStrategy::kNone,
                                   SparseEmitStrategy::kFunctional,
                                   /*enableRuntimeLibrary=*/false);
  // Copies between buffers (e.g. a strided view materialised into a caller
  // buffer) become linalg.copy, lowered to loops, instead of memref.copy,
  // whose strided form calls `memrefCopy` from MLIR's runtime library.
  bufferization::OneShotBufferizationOptions bufOpts =
      getBufferizationOptionsForSparsification(/*analysisOnly=*/false);
  bufOpts.memCpyFn = [](OpBuilder &b, Location loc, Value from,
                        Value to) -> LogicalResult {
    linalg::CopyOp::create(b, loc, from, to);
    return success();
  };
  pm.addPass(createSparsificationAndBufferizationPass(
      bufOpts,
      sparseOpts, /*createSparseDeallocs=*/true,
      /*enableRuntimeLibrary=*/false, /*enableBufferInitialization=*/false,
      o.vectorLength, /*enableVLAVectorization=*/false,
      /*enableSIMDIndex32=*/true, /*enableGPULibgen=*/false,
      SparseEmitStrategy::kFunctional, SparseParallelizationStrategy::kNone));
  // The sparsifier frees some temporaries itself (SpGEMM's expanded access
  // pattern, sort buffers); the deallocation pipeline takes those over.
  pm.addNestedPass<func::FuncOp>(mlir::sdl::createSparsecHandOverDeallocs());
  bufferization::BufferDeallocationPipelineOptions dealloc;
  dealloc.privateFunctionDynamicOwnership = o.sparseResults;
  bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  if (o.sparseResults)
    pm.addPass(createConvertBufferizationToMemRefPass());
  if (o.threads)
    pm.addPass(mlir::sdl::createSparsecOutlineParallel());
  pm.addPass(createStorageSpecifierToLLVMPass());
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addNestedPass<func::FuncOp>(createConvertVectorToSCFPass());
  pm.addNestedPass<func::FuncOp>(memref::createExpandReallocPass());
  pm.addNestedPass<func::FuncOp>(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  ConvertVectorToLLVMPassOptions v2l;
  v2l.force32BitVectorIndices = true;
  pm.addPass(createConvertVectorToLLVMPass(v2l));
  pm.addNestedPass<func::FuncOp>(createConvertComplexToStandardPass());
  pm.addNestedPass<func::FuncOp>(arith::createArithExpandOpsPass());
  pm.addNestedPass<func::FuncOp>(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createConvertComplexToLibm());
  pm.addPass(createConvertVectorToLLVMPass(v2l));
  // memref.alloc/dealloc call the runtime's caching allocator
  // (runtime/src/kernel_alloc.c) instead of malloc/free.
  FinalizeMemRefToLLVMConversionPassOptions memrefOpts;
  memrefOpts.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOpts));
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void ::sparsec::registerSparsecPasses() {
  mlir::sdl::registerSparsecPasses();
  registerGpuPasses();
  PassPipelineRegistration<>("sparsec-train",
                             "sdl -> sdl-train (training expansion)",
                             buildTrainingPipeline);
  PassPipelineRegistration<>("sparsec-linalg",
                             "sdl-train -> linalg on sparse tensors",
                             buildLinalgPipeline);
  PassPipelineRegistration<>(
      "sparsec-llvm", "linalg -> LLVM dialect (sparsifier, codegen mode)",
      [](OpPassManager &pm) { buildLLVMPipeline(pm, CodegenOptions()); });
  PassPipelineRegistration<>(
      "sparsec-llvm-fn",
      "linalg -> LLVM dialect for fn kernels (sparsec-llvm with sparse "
      "results, docs/sparse-ops.md)",
      [](OpPassManager &pm) {
        CodegenOptions o;
        o.sparseResults = true;
        buildLLVMPipeline(pm, o);
      });
  PassPipelineRegistration<>(
      "sparsec-all", "sdl -> LLVM dialect (every stage)",
      [](OpPassManager &pm) {
        buildTrainingPipeline(pm);
        buildLinalgPipeline(pm);
        buildLLVMPipeline(pm, CodegenOptions());
      });
}
