//===- SdlDialect.td - The sdl dialect definition ---------*- tablegen -*-===//
//
// `sdl` is the high-level dialect of sparsec: one op per layer, activation
// and loss of the DSL, plus the backward ops created by training expansion.
// Values are builtin ranked tensors; sparse weights carry a
// `#sparse_tensor.encoding` (CSR), and the batch dimension is dynamic.
//
//===----------------------------------------------------------------------===//

#ifndef SDL_DIALECT_TD
#define SDL_DIALECT_TD

include "mlir/IR/OpBase.td"

def Sdl_Dialect : Dialect {
  let name = "sdl";
  let summary = "Sparse deep-learning ops of the sparsec DSL";
  let description = [{
    The `sdl` dialect models a sparse neural network: parameters are module
    level symbols (`sdl.param`), the model is a `func.func` whose arguments are
    the inputs and targets, and the ops are layers (`sdl.linear`,
    `sdl.embedding`), activations, tensor plumbing and losses. Training
    expansion adds backward ops (`sdl.*_grad`, `sdl.linear_grad_weight`, ...).
    Everything lowers to `linalg` on (possibly sparse) tensors.
  }];
  let cppNamespace = "::mlir::sdl";
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect"];
}

class Sdl_Op<string mnemonic, list<Trait> traits = []>
    : Op<Sdl_Dialect, mnemonic, traits>;

#endif // SDL_DIALECT_TD
