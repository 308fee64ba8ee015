//===- MLIRGen.h - AST to the sdl dialect -----------------------*- C++ -*-===//
//
// Builds the `sdl` module of one checked model: sdl.param declarations, the
// sdl.optimizer, and the model function (inputs, targets -> output, loss).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_MLIRGEN_MLIRGEN_H
#define SPARSEC_MLIRGEN_MLIRGEN_H

#include "frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace llvm {
class SourceMgr;
}

namespace sparsec {

/// Returns the sdl module of `model` (checked by Sema), or null after
/// emitting an error diagnostic at the offending location. Every op carries
/// the file:line:col of the DSL construct it comes from.
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(mlir::MLIRContext &ctx,
                                          const ast::Model &model,
                                          const llvm::SourceMgr &sm);

} // namespace sparsec

#endif // SPARSEC_MLIRGEN_MLIRGEN_H
