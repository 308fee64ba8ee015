//===- Passes.h - sparsec transformation passes -----------------*- C++ -*-===//
//
// Declarations and registration of the passes defined in Passes.td.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_PASSES_H
#define SPARSEC_TRANSFORMS_PASSES_H

#include "sdl/SdlDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::sdl {

#define GEN_PASS_DECL
#include "transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "transforms/Passes.h.inc"

} // namespace mlir::sdl

#endif // SPARSEC_TRANSFORMS_PASSES_H
