// sparsec-all on a CSR layer without bias: the ReLU gradient feeding the
// SDDMM of the weight gradient has no other use. Elementwise fusion would
// fuse it into the sparsifier's SDDMM generic, whose output is sparse, and
// the sparsifier then fails ("failed to legalize operation
// 'sparse_tensor.unary'"); the pipeline does not fuse, so the model compiles.
// RUN: sparsec-opt %s -sparsec-all | FileCheck %s
// What fusion would do to the sparsifier's SDDMM (this is why the pipeline
// has no fusion pass; sdl-lower-sparse-linear is left out so that the
// rank-2 layer takes the sparsifier path):
// RUN: sparsec-opt %s --pass-pipeline='builtin.module(sparsec-train,sdl-finalize-abi,convert-sdl-to-linalg,canonicalize,func.func(linalg-generalize-named-ops,linalg-fuse-elementwise-ops))' \
// RUN:   | not sparsec-opt -sparsec-llvm -o /dev/null 2>&1 | FileCheck %s --check-prefix=FUSED
// FUSED: error: failed to legalize operation 'sparse_tensor.unary'

// CHECK-LABEL: module @NoBias
// CHECK: llvm.func @sparsec_kernel_NoBias_train(
// CHECK: llvm.func @_mlir_ciface_sparsec_kernel_NoBias_train(

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @NoBias {
  sdl.param @fc1.weight : tensor<4x8xf32, #CSR> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "csr", nnz = 16 : i64}
  sdl.param @fc2.weight : tensor<3x4xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.bias : tensor<3xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @NoBias(%arg0: tensor<?x8xf32> {sdl.input = "x"}, %arg1: tensor<?xi64> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<4x8xf32, #CSR>
    %1 = sdl.linear %arg0, %0 : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
    %2 = sdl.relu %1 : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %3 = sdl.get_param @fc2.weight : tensor<3x4xf32>
    %4 = sdl.get_param @fc2.bias : tensor<3xf32>
    %5 = sdl.linear %2, %3, %4 : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    %6 = sdl.cross_entropy_loss %5, %arg1 : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    return %5, %6 : tensor<?x3xf32>, tensor<f32>
  }
}

