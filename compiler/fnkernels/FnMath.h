//===- FnMath.h - Elementwise functions of fn kernels and derivatives -----===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The scalar ops of the elementwise functions of `fn` kernels (FnOp::Map,
// ast::fnMapNames()) and of their derivatives (FnOp::Deriv, made by the
// differentiation of `grad fn` kernels), used inside the regions FnGen
// builds.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FNKERNELS_FNMATH_H
#define SPARSEC_FNKERNELS_FNMATH_H

#include "mlir/IR/Builders.h"

namespace sparsec {

/// `name(x)` for a function of ast::fnMapNames().
mlir::Value fnMapValue(mlir::OpBuilder &b, mlir::Location l,
                       llvm::StringRef name, mlir::Value x);

/// The derivative of `name` at `x`: a function of ast::fnMapNames(), or
/// "pow" with exponent `p` (p * x^(p-1), 0 for p = 0). As PyTorch: abs'(0)
/// = 0, and the rounding functions have derivative 0.
mlir::Value fnDerivValue(mlir::OpBuilder &b, mlir::Location l,
                         llvm::StringRef name, double p, mlir::Value x);

} // namespace sparsec

#endif // SPARSEC_FNKERNELS_FNMATH_H
