//===- Passes.td - sparsec transformation passes ----------*- tablegen -*-===//
//
// One pass per file in this directory, each with a lit test named after its
// flag under tests/lit/transforms/.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_PASSES_TD
#define SPARSEC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def SdlExpandTraining : Pass<"sdl-expand-training", "::mlir::ModuleOp"> {
  let summary = "Derive forward and train functions (reverse-mode autodiff)";
  let description = [{
    Takes the model function (marked `sdl.model`, returning the output and
    the loss) and replaces it by two entry points: `@forward` (inputs ->
    output) and `@train` (inputs, targets -> loss, one gradient per
    `sdl.param` in declaration order). Gradients are built with the backward
    ops of the `sdl` dialect: CSR weights get gradients on their own pattern
    (`sdl.linear_grad_weight`), embedding tables row-sparse COO gradients
    (`sdl.embedding_grad`).
  }];
  let dependentDialects = ["::mlir::sdl::SdlDialect", "::mlir::func::FuncDialect"];
}

def SdlFinalizeAbi : Pass<"sdl-finalize-abi", "::mlir::ModuleOp"> {
  let summary = "Turn entry points into the C ABI expected by the runtime";
  let description = [{
    Rewrites `@forward` and `@train` into `@sparsec_kernel_<Model>_forward`
    and `@sparsec_kernel_<Model>_train` with memref arguments in the order documented in
    runtime/include/sparsec/runtime.h: inputs, each parameter's arrays (CSR:
    positions, coordinates, values), then the output (forward) or every
    parameter's gradient (train, which returns the loss as f32). Parameters
    become arguments (CSR weights are rebuilt with `sparse_tensor.assemble`,
    zero-copy), results are written into the caller's buffers with
    `bufferization.materialize_in_destination`. Removes `sdl.param` and
    `sdl.optimizer`.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ConvertSdlToLinalg : Pass<"convert-sdl-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lower sdl ops to linalg.generic on (sparse) tensors";
  let description = [{
    Every forward, backward and loss op becomes `linalg.generic` (plus
    `tensor` ops for concat/slice), in destination-passing style, ready for
    the sparsifier: a CSR operand makes the generic a sparse kernel (SpMM,
    SDDMM for the weight gradient).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect"];
}

#endif // SPARSEC_TRANSFORMS_PASSES_TD
