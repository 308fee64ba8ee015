// sdl-expand-training with a parameter read by several sdl.get_param ops (what
// MLIRGen emits when a layer is applied twice, e.g. `fa(a)` twice in the
// forward block): the parameter's gradient is the sum of the contributions of
// every use, exactly as when one get_param value is used twice.
// RUN: sparsec-opt %s -split-input-file -sdl-expand-training -verify-diagnostics | FileCheck %s

module @SharedDense {
  sdl.param @w : tensor<4x4xf32> {init = "uniform", init_a = 0.1 : f64, kind = "dense"}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x4xf32> {sdl.target = "y"}) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %w0 = sdl.get_param @w : tensor<4x4xf32>
    %h = sdl.linear %x, %w0 : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
    %w1 = sdl.get_param @w : tensor<4x4xf32>
    %out = sdl.linear %h, %w1 : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x4xf32>, tensor<f32>
  }
}

// CHECK-LABEL: module @SharedDense
// CHECK-LABEL: func.func @train(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x4xf32>
// CHECK: %[[W0:.+]] = sdl.get_param @w
// CHECK: %[[H:.+]] = sdl.linear %[[X]], %[[W0]]
// CHECK: %[[W1:.+]] = sdl.get_param @w
// CHECK: %[[DOUT:.+]] = sdl.mse_loss_grad
// CHECK-DAG: %[[DH:.+]] = sdl.linear_grad_input %[[DOUT]], %[[W1]]
// CHECK-DAG: %[[G1:.+]] = sdl.linear_grad_weight %[[DOUT]], %[[H]], %[[W1]]
// CHECK: %[[G0:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[W0]]
// CHECK: %[[G:.+]] = sdl.add %{{.+}}, %{{.+}} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK: return %{{.+}}, %[[G]] :

// -----

// A CSR weight used twice, through two get_param ops, must be rejected like
// a CSR weight value used twice (see sdl-expand-training.mlir), not get the
// gradient of one of its uses only.

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @SharedSparse {
  sdl.param @w : tensor<4x4xf32, #CSR> {init = "zeros", init_a = 0.0 : f64, kind = "csr", nnz = 4 : i64}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x4xf32> {sdl.target = "y"}) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %w0 = sdl.get_param @w : tensor<4x4xf32, #CSR>
    // expected-error @+1 {{a sparse weight used more than once is not supported yet}}
    %h = sdl.linear %x, %w0 : (tensor<?x4xf32>, tensor<4x4xf32, #CSR>) -> tensor<?x4xf32>
    %w1 = sdl.get_param @w : tensor<4x4xf32, #CSR>
    %out = sdl.linear %h, %w1 : (tensor<?x4xf32>, tensor<4x4xf32, #CSR>) -> tensor<?x4xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x4xf32>, tensor<f32>
  }
}
