// sdl-finalize-abi: @forward/@train become sparsec_kernel_<Model>_forward and
// sparsec_kernel_<Model>_train taking memrefs in the runtime's order (see
// runtime/include/sparsec/runtime.h): inputs, each parameter's arrays (CSR:
// positions[rows+1] i32, coordinates[nnz] i32, values[nnz]), then the output
// (forward) or one gradient buffer per parameter (train, which returns the
// loss as f32). sdl.param, sdl.optimizer and sdl.get_param disappear.
// RUN: sparsec-opt %s -split-input-file -sdl-finalize-abi -verify-diagnostics \
// RUN:   | FileCheck %s --implicit-check-not=sdl.param --implicit-check-not=sdl.optimizer --implicit-check-not=sdl.get_param

// The sdl-train form of a model with an embedding table, a CSR weight with
// bias and a dense matrix (sparsec --emit=sdl-train).

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Rich {
  sdl.param @emb.weight : tensor<10x4xf32> {init = "normal", init_a = 1.000000e+00 : f64, kind = "embedding"}
  sdl.param @fc1.weight : tensor<5x6xf32, #CSR> {init = "fan_in_uniform", init_a = 3.000000e+00 : f64, kind = "csr", nnz = 15 : i64}
  sdl.param @fc1.bias : tensor<5xf32> {init = "fan_in_uniform", init_a = 3.000000e+00 : f64, kind = "dense"}
  sdl.param @w : tensor<9x3xf32> {init = "normal", init_a = 1.000000e-02 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @forward(%arg0: tensor<?xi64> {sdl.id_bound = 10 : i64, sdl.input = "ids"}, %arg1: tensor<?x6xf32> {sdl.input = "x"}) -> tensor<?x3xf32> attributes {sdl.entry = "forward", sdl.output = "out"} {
    %0 = sdl.get_param @emb.weight : tensor<10x4xf32>
    %1 = sdl.embedding %arg0, %0 : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %2 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    %3 = sdl.get_param @fc1.bias : tensor<5xf32>
    %4 = sdl.linear %arg1, %2, %3 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>) -> tensor<?x5xf32>
    %5 = sdl.relu %4 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %6 = sdl.add %5, %5 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %7 = sdl.concat %1, %6 : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    %8 = sdl.get_param @w : tensor<9x3xf32>
    %9 = sdl.matmul %7, %8 : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    return %9 : tensor<?x3xf32>
  }
  func.func @train(%arg0: tensor<?xi64> {sdl.id_bound = 10 : i64, sdl.input = "ids"}, %arg1: tensor<?x6xf32> {sdl.input = "x"}, %arg2: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<f32> {sdl.loss}, tensor<?x4xf32> {sdl.grad_of = "emb.weight", sdl.ids_input = 0 : i64}, tensor<5x6xf32, #CSR> {sdl.grad_of = "fc1.weight"}, tensor<5xf32> {sdl.grad_of = "fc1.bias"}, tensor<9x3xf32> {sdl.grad_of = "w"}) attributes {sdl.entry = "train", sdl.output = "out"} {
    %0 = sdl.get_param @emb.weight : tensor<10x4xf32>
    %1 = sdl.embedding %arg0, %0 : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %2 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    %3 = sdl.get_param @fc1.bias : tensor<5xf32>
    %4 = sdl.linear %arg1, %2, %3 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>) -> tensor<?x5xf32>
    %5 = sdl.relu %4 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %6 = sdl.add %5, %5 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %7 = sdl.concat %1, %6 : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    %8 = sdl.get_param @w : tensor<9x3xf32>
    %9 = sdl.matmul %7, %8 : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    %10 = sdl.mse_loss %9, %arg2 : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    %11 = sdl.mse_loss_grad %9, %arg2 : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    %12 = sdl.matmul_grad_lhs %11, %8 : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
    %13 = sdl.matmul_grad_rhs %7, %11 : (tensor<?x9xf32>, tensor<?x3xf32>) -> tensor<9x3xf32>
    %14 = sdl.slice %12 {offset = 0 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
    %15 = sdl.slice %12 {offset = 4 : i64} : (tensor<?x9xf32>) -> tensor<?x5xf32>
    %16 = sdl.add %15, %15 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %17 = sdl.relu_grad %4, %16 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %18 = sdl.linear_grad_weight %17, %arg1, %2 : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<5x6xf32, #CSR>
    %19 = sdl.reduce_batch %17 : (tensor<?x5xf32>) -> tensor<5xf32>
    %20 = sdl.embedding_grad %arg0, %14, %0 : (tensor<?xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
    return %10, %20, %18, %19, %13 : tensor<f32>, tensor<?x4xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>, tensor<9x3xf32>
  }
}


// CHECK: #[[CSR:.+]] = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: module @Rich

// forward: inputs (no target), table, CSR arrays, bias, matrix, output.
// CHECK-LABEL: func.func @sparsec_kernel_Rich_forward(
// CHECK-SAME: %[[IDS:[^:]+]]: memref<?xi64>, %[[X:[^:]+]]: memref<?x6xf32>,
// CHECK-SAME: %[[TABLE:[^:]+]]: memref<10x4xf32>,
// CHECK-SAME: %[[POS:[^:]+]]: memref<6xi32>, %[[CRD:[^:]+]]: memref<15xi32>, %[[VAL:[^:]+]]: memref<15xf32>,
// CHECK-SAME: %[[BIAS:[^:]+]]: memref<5xf32>, %[[W:[^:]+]]: memref<9x3xf32>,
// CHECK-SAME: %[[OUT:[^:]+]]: memref<?x3xf32>) attributes {llvm.emit_c_interface, sdl.entry = "forward"} {
// CHECK-DAG: %[[IDS_T:.+]] = bufferization.to_tensor %[[IDS]] restrict : memref<?xi64> to tensor<?xi64>
// CHECK-DAG: %[[X_T:.+]] = bufferization.to_tensor %[[X]] restrict : memref<?x6xf32> to tensor<?x6xf32>
// CHECK-DAG: %[[TABLE_T:.+]] = bufferization.to_tensor %[[TABLE]] restrict
// CHECK-DAG: %[[POS_T:.+]] = bufferization.to_tensor %[[POS]] restrict : memref<6xi32> to tensor<6xi32>
// CHECK-DAG: %[[CRD_T:.+]] = bufferization.to_tensor %[[CRD]] restrict : memref<15xi32> to tensor<15xi32>
// CHECK-DAG: %[[VAL_T:.+]] = bufferization.to_tensor %[[VAL]] restrict : memref<15xf32> to tensor<15xf32>
// CHECK-DAG: %[[BIAS_T:.+]] = bufferization.to_tensor %[[BIAS]] restrict
// CHECK-DAG: %[[W_T:.+]] = bufferization.to_tensor %[[W]] restrict
// The CSR weight is rebuilt zero-copy from its three arrays.
// CHECK-DAG: %[[W1:.+]] = sparse_tensor.assemble (%[[POS_T]], %[[CRD_T]]), %[[VAL_T]] : (tensor<6xi32>, tensor<15xi32>), tensor<15xf32> to tensor<5x6xf32, #[[CSR]]>
// CHECK: sdl.embedding %[[IDS_T]], %[[TABLE_T]]
// CHECK: sdl.linear %[[X_T]], %[[W1]], %[[BIAS_T]]
// CHECK: %[[Y:.+]] = sdl.matmul %{{.+}}, %[[W_T]]
// CHECK-NEXT: bufferization.materialize_in_destination %[[Y]] in restrict writable %[[OUT]] : (tensor<?x3xf32>, memref<?x3xf32>) -> ()
// CHECK-NEXT: return{{$}}

// train: inputs and targets, parameter arrays, then one gradient buffer per
// parameter (embedding: rows per id; CSR: values on the pattern); -> f32.
// CHECK-LABEL: func.func @sparsec_kernel_Rich_train(
// CHECK-SAME: %[[IDS:[^:]+]]: memref<?xi64>, %[[X:[^:]+]]: memref<?x6xf32>, %[[TGT:[^:]+]]: memref<?x3xf32>,
// CHECK-SAME: %[[TABLE:[^:]+]]: memref<10x4xf32>,
// CHECK-SAME: %[[POS:[^:]+]]: memref<6xi32>, %[[CRD:[^:]+]]: memref<15xi32>, %[[VAL:[^:]+]]: memref<15xf32>,
// CHECK-SAME: %[[BIAS:[^:]+]]: memref<5xf32>, %[[W:[^:]+]]: memref<9x3xf32>,
// CHECK-SAME: %[[DTABLE:[^:]+]]: memref<?x4xf32>, %[[DW1:[^:]+]]: memref<15xf32>, %[[DBIAS:[^:]+]]: memref<5xf32>, %[[DW:[^:]+]]: memref<9x3xf32>)
// CHECK-SAME: -> f32 attributes {llvm.emit_c_interface, sdl.entry = "train"} {
// CHECK-DAG: %[[POS_T:.+]] = bufferization.to_tensor %[[POS]] restrict
// CHECK-DAG: %[[CRD_T:.+]] = bufferization.to_tensor %[[CRD]] restrict
// CHECK-DAG: %[[VAL_T:.+]] = bufferization.to_tensor %[[VAL]] restrict
// CHECK-DAG: %[[TGT_T:.+]] = bufferization.to_tensor %[[TGT]] restrict : memref<?x3xf32> to tensor<?x3xf32>
// CHECK-DAG: %[[W1:.+]] = sparse_tensor.assemble (%[[POS_T]], %[[CRD_T]]), %[[VAL_T]] : (tensor<6xi32>, tensor<15xi32>), tensor<15xf32> to tensor<5x6xf32, #[[CSR]]>
// CHECK: %[[LOSS:.+]] = sdl.mse_loss %{{.+}}, %[[TGT_T]]
// CHECK-DAG: %[[GDW:.+]] = sdl.matmul_grad_rhs
// CHECK-DAG: %[[GDW1:.+]] = sdl.linear_grad_weight %{{.+}}, %{{.+}}, %[[W1]] : {{.+}} -> tensor<5x6xf32, #[[CSR]]>
// CHECK-DAG: %[[GDB:.+]] = sdl.reduce_batch
// CHECK-DAG: %[[GDT:.+]] = sdl.embedding_grad
// CHECK: %[[L:.+]] = tensor.extract %[[LOSS]][] : tensor<f32>
// CHECK: bufferization.materialize_in_destination %[[GDT]] in restrict writable %[[DTABLE]] : (tensor<?x4xf32>, memref<?x4xf32>) -> ()
// Only the values of the CSR gradient are copied out: its pattern is W's.
// CHECK: %{{[^,]+}}, %[[GVALS:[^,]+]], %{{[^,]+}}, %{{[^ ]+}} = sparse_tensor.disassemble %[[GDW1]] : tensor<5x6xf32, #[[CSR]]>
// CHECK-SAME: -> (tensor<6xi32>, tensor<15xi32>), tensor<15xf32>, (index, index), index
// CHECK-NEXT: bufferization.materialize_in_destination %[[GVALS]] in restrict writable %[[DW1]] : (tensor<15xf32>, memref<15xf32>) -> ()
// CHECK-NEXT: bufferization.materialize_in_destination %[[GDB]] in restrict writable %[[DBIAS]] : (tensor<5xf32>, memref<5xf32>) -> ()
// CHECK-NEXT: bufferization.materialize_in_destination %[[GDW]] in restrict writable %[[DW]] : (tensor<9x3xf32>, memref<9x3xf32>) -> ()
// CHECK-NEXT: return %[[L]] : f32

// -----

// A module without a name gives the kernels the model name "model".
module {
  sdl.param @w : tensor<2x3xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  func.func @forward(%x: tensor<?x3xf32> {sdl.input = "x"}) -> tensor<?x2xf32> attributes {sdl.entry = "forward"} {
    %w = sdl.get_param @w : tensor<2x3xf32>
    %y = sdl.linear %x, %w : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x2xf32>
    return %y : tensor<?x2xf32>
  }
}
// CHECK-LABEL: func.func @sparsec_kernel_model_forward(
// CHECK-SAME: %{{[^:]+}}: memref<?x3xf32>, %{{[^:]+}}: memref<2x3xf32>, %{{[^:]+}}: memref<?x2xf32>) attributes {llvm.emit_c_interface, sdl.entry = "forward"}

// -----

// Errors.

// expected-error @+1 {{no entry points (run sdl-expand-training first)}}
module @NotExpanded {
  sdl.param @w : tensor<2x3xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  func.func @NotExpanded(%x: tensor<?x3xf32> {sdl.input = "x"}, %t: tensor<?x2xf32> {sdl.target = "t"}) -> (tensor<?x2xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<2x3xf32>
    %y = sdl.linear %x, %w : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x2xf32>
    %l = sdl.mse_loss %y, %t : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<f32>
    return %y, %l : tensor<?x2xf32>, tensor<f32>
  }
}

// -----

module @MissingGradient {
  sdl.param @w : tensor<2x3xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  sdl.param @v : tensor<2x3xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  // expected-error @+1 {{train must return the loss and one gradient per parameter}}
  func.func @train(%x: tensor<?x3xf32> {sdl.input = "x"}, %t: tensor<?x2xf32> {sdl.target = "t"}) -> (tensor<f32>, tensor<2x3xf32>) attributes {sdl.entry = "train"} {
    %w = sdl.get_param @w : tensor<2x3xf32>
    %y = sdl.linear %x, %w : (tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<?x2xf32>
    %l = sdl.mse_loss %y, %t : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<f32>
    %g = sdl.mse_loss_grad %y, %t : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32>
    %dw = sdl.linear_grad_weight %g, %x, %w : (tensor<?x2xf32>, tensor<?x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    return %l, %dw : tensor<f32>, tensor<2x3xf32>
  }
}
