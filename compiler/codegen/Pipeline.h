//===- Pipeline.h - The sparsec pass pipelines ------------------*- C++ -*-===//
//
// The stages of `sparsec` as pass pipelines: training expansion (sdl ->
// sdl-train), lowering (sdl-train -> linalg on sparse tensors) and code
// generation (linalg -> LLVM dialect through the sparsifier in codegen mode).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_CODEGEN_PIPELINE_H
#define SPARSEC_CODEGEN_PIPELINE_H

#include "mlir/Pass/PassManager.h"

namespace sparsec {

struct CodegenOptions {
  /// Sparsifier vector length (0 = scalar code).
  unsigned vectorLength = 0;
  /// Run loops marked `sdl.parallel` on the runtime's thread pool
  /// (sparsec-outline-parallel); otherwise they run sequentially.
  bool threads = true;
  /// Kernels that build sparse results (fn kernels, docs/sparse-ops.md):
  /// the sparsifier's private insertion helpers take and return buffers, so
  /// deallocation passes ownership through them
  /// (private-function-dynamic-ownership) instead of cloning, and any
  /// remaining clone becomes an alloc + copy.
  bool sparseResults = false;
};

/// sdl -> sdl-train: sdl-expand-training.
void buildTrainingPipeline(mlir::OpPassManager &pm);
/// sdl-train -> linalg: sdl-finalize-abi, convert-sdl-to-linalg.
void buildLinalgPipeline(mlir::OpPassManager &pm);
/// linalg -> LLVM dialect: the sparsifier in codegen mode (no runtime
/// library), with empty-tensor elimination so results land in the caller's
/// buffers and ownership-based deallocation so temporaries are freed.
void buildLLVMPipeline(mlir::OpPassManager &pm, const CodegenOptions &opts);

/// Registers the passes and the named pipelines `sparsec-train`,
/// `sparsec-linalg`, `sparsec-llvm` and `sparsec-all` (for sparsec-opt).
void registerSparsecPasses();

} // namespace sparsec

#endif // SPARSEC_CODEGEN_PIPELINE_H
