//===- SdlDialect.h - The sdl dialect ---------------------------*- C++ -*-===//
//
// Declares the `sdl` dialect and its operations (generated from SdlOps.td).
//
//===----------------------------------------------------------------------===//

#ifndef SDL_SDLDIALECT_H
#define SDL_SDLDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "sdl/SdlOpsDialect.h.inc"

#define GET_OP_CLASSES
#include "sdl/SdlOps.h.inc"

namespace mlir::sdl {

/// Attribute names used on the model function and its arguments/results.
constexpr llvm::StringLiteral kModelAttr = "sdl.model";
constexpr llvm::StringLiteral kInputAttr = "sdl.input";
constexpr llvm::StringLiteral kTargetAttr = "sdl.target";
constexpr llvm::StringLiteral kIdBoundAttr = "sdl.id_bound";
constexpr llvm::StringLiteral kOutputAttr = "sdl.output";
constexpr llvm::StringLiteral kGradOfAttr = "sdl.grad_of";
constexpr llvm::StringLiteral kLossAttr = "sdl.loss";
/// Train results after the gradients: a tensor the runtime needs from the
/// step (dynamic = "rigl": the layer's "input" and "output_grad").
constexpr llvm::StringLiteral kCaptureOfAttr = "sdl.capture_of";
constexpr llvm::StringLiteral kCaptureAttr = "sdl.capture";

/// True if `type` carries a sparse-tensor encoding.
bool isSparse(Type type);

} // namespace mlir::sdl

#endif // SDL_SDLDIALECT_H
