// sdl-expand-training: the sdl.model function becomes @forward (inputs ->
// output) and @train (inputs, targets -> loss and one gradient per sdl.param,
// in declaration order), built from the backward ops of the sdl dialect.
// RUN: sparsec-opt %s -split-input-file -sdl-expand-training -verify-diagnostics | FileCheck %s
// The first layer's input is a model input: its gradient is never formed.
// RUN: sparsec-opt %s -split-input-file -sdl-expand-training -verify-diagnostics | FileCheck %s --check-prefix=PRUNE

// A two-layer MLP whose first layer has a CSR weight (the Fashion-MNIST
// example, smaller).

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Mlp {
  sdl.param @fc1.weight : tensor<4x8xf32, #CSR> {init = "fan_in_uniform", init_a = 8.0 : f64, kind = "csr", nnz = 16 : i64}
  sdl.param @fc1.bias : tensor<4xf32> {init = "fan_in_uniform", init_a = 8.0 : f64, kind = "dense"}
  sdl.param @fc2.weight : tensor<3x4xf32> {init = "fan_in_uniform", init_a = 4.0 : f64, kind = "dense"}
  sdl.param @fc2.bias : tensor<3xf32> {init = "fan_in_uniform", init_a = 4.0 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.9 : f64, nesterov = false, weight_decay = 0.0 : f64}
  func.func @Mlp(%x: tensor<?x8xf32> {sdl.input = "x"}, %y: tensor<?xi64> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %w1 = sdl.get_param @fc1.weight : tensor<4x8xf32, #CSR>
    %b1 = sdl.get_param @fc1.bias : tensor<4xf32>
    %h = sdl.linear %x, %w1, %b1 : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
    %r = sdl.relu %h : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %w2 = sdl.get_param @fc2.weight : tensor<3x4xf32>
    %b2 = sdl.get_param @fc2.bias : tensor<3xf32>
    %out = sdl.linear %r, %w2, %b2 : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    %loss = sdl.cross_entropy_loss %out, %y : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// The model function is gone; params and the optimizer stay.
// CHECK: #[[CSR:.+]] = #sparse_tensor.encoding
// CHECK-LABEL: module @Mlp
// CHECK-NOT: sdl.model
// CHECK-DAG: sdl.param @fc1.weight : tensor<4x8xf32, #[[CSR]]>
// CHECK-DAG: sdl.optimizer "sgd"

// The forward function drops the target and the loss.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x8xf32> {sdl.input = "x"}) -> tensor<?x3xf32>
// CHECK-SAME: sdl.entry = "forward"
// CHECK-NEXT: %[[W1:.+]] = sdl.get_param @fc1.weight
// CHECK-NEXT: %[[B1:.+]] = sdl.get_param @fc1.bias
// CHECK-NEXT: %[[H:.+]] = sdl.linear %[[X]], %[[W1]], %[[B1]]
// CHECK-NEXT: %[[R:.+]] = sdl.relu %[[H]]
// CHECK-NEXT: %[[W2:.+]] = sdl.get_param @fc2.weight
// CHECK-NEXT: %[[B2:.+]] = sdl.get_param @fc2.bias
// CHECK-NEXT: %[[OUT:.+]] = sdl.linear %[[R]], %[[W2]], %[[B2]]
// CHECK-NEXT: return %[[OUT]] : tensor<?x3xf32>
// CHECK-NEXT: }

// The train function returns the loss and the gradients in declaration
// order; the CSR weight's gradient has the CSR type (SDDMM on its pattern).
// CHECK-LABEL: func.func @train(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x8xf32> {sdl.input = "x"}, %[[Y:[^:]+]]: tensor<?xi64> {sdl.target = "y"})
// CHECK-SAME: -> (tensor<f32> {sdl.loss}, tensor<4x8xf32, #[[CSR]]> {sdl.grad_of = "fc1.weight"}, tensor<4xf32> {sdl.grad_of = "fc1.bias"}, tensor<3x4xf32> {sdl.grad_of = "fc2.weight"}, tensor<3xf32> {sdl.grad_of = "fc2.bias"})
// CHECK-SAME: sdl.entry = "train"
// CHECK: %[[W1:.+]] = sdl.get_param @fc1.weight
// CHECK: %[[H:.+]] = sdl.linear %[[X]], %[[W1]]
// CHECK: %[[R:.+]] = sdl.relu %[[H]]
// CHECK: %[[W2:.+]] = sdl.get_param @fc2.weight
// CHECK: %[[OUT:.+]] = sdl.linear %[[R]], %[[W2]]
// CHECK: %[[LOSS:.+]] = sdl.cross_entropy_loss %[[OUT]], %[[Y]]
// CHECK: %[[DOUT:.+]] = sdl.cross_entropy_loss_grad %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<?x3xf32>
// CHECK-DAG: %[[DR:.+]] = sdl.linear_grad_input %[[DOUT]], %[[W2]] : (tensor<?x3xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
// CHECK-DAG: %[[DW2:.+]] = sdl.linear_grad_weight %[[DOUT]], %[[R]], %[[W2]] : (tensor<?x3xf32>, tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
// CHECK-DAG: %[[DB2:.+]] = sdl.reduce_batch %[[DOUT]] : (tensor<?x3xf32>) -> tensor<3xf32>
// CHECK: %[[DH:.+]] = sdl.relu_grad %[[H]], %[[DR]] : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK-DAG: %[[DW1:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[W1]] : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #[[CSR]]>) -> tensor<4x8xf32, #[[CSR]]>
// CHECK-DAG: %[[DB1:.+]] = sdl.reduce_batch %[[DH]] : (tensor<?x4xf32>) -> tensor<4xf32>
// CHECK: return %[[LOSS]], %[[DW1]], %[[DB1]], %[[DW2]], %[[DB2]] :

// PRUNE-LABEL: module @Mlp
// PRUNE-LABEL: func.func @train(
// PRUNE: sdl.linear_grad_input %{{.+}} -> tensor<?x4xf32>
// PRUNE-NOT: sdl.linear_grad_input
// PRUNE: return

// -----

// Embedding, concat, a value used twice (add(h, h)), matmul and MSE.

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Rich {
  sdl.param @emb.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.param @fc1.weight : tensor<5x6xf32, #CSR> {init = "fan_in_uniform", init_a = 6.0 : f64, kind = "csr", nnz = 15 : i64}
  sdl.param @w : tensor<9x3xf32> {init = "normal", init_a = 0.01 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.0 : f64, nesterov = false, weight_decay = 0.0 : f64}
  func.func @Rich(%ids: tensor<?xi64> {sdl.input = "ids"}, %x: tensor<?x6xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %t = sdl.get_param @emb.weight : tensor<10x4xf32>
    %e = sdl.embedding %ids, %t : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %w1 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    %h = sdl.linear %x, %w1 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<?x5xf32>
    %r = sdl.relu %h : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %a = sdl.add %r, %r : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %c = sdl.concat %e, %a : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    %w = sdl.get_param @w : tensor<9x3xf32>
    %out = sdl.matmul %c, %w : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// CHECK-LABEL: module @Rich
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: tensor<?xi64> {sdl.input = "ids"}, %{{[^:]+}}: tensor<?x6xf32> {sdl.input = "x"}) -> tensor<?x3xf32>
// CHECK: sdl.matmul
// CHECK-NEXT: return

// CHECK-LABEL: func.func @train(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi64> {sdl.input = "ids"}, %[[X:[^:]+]]: tensor<?x6xf32> {sdl.input = "x"}, %[[Y:[^:]+]]: tensor<?x3xf32> {sdl.target = "y"})
// CHECK-SAME: -> (tensor<f32> {sdl.loss}, tensor<?x4xf32> {sdl.grad_of = "emb.weight", sdl.ids_input = 0 : i64}, tensor<5x6xf32, #{{.+}}> {sdl.grad_of = "fc1.weight"}, tensor<9x3xf32> {sdl.grad_of = "w"})
// CHECK: %[[T:.+]] = sdl.get_param @emb.weight
// CHECK: %[[W1:.+]] = sdl.get_param @fc1.weight
// CHECK: %[[H:.+]] = sdl.linear %[[X]], %[[W1]]
// CHECK: %[[R:.+]] = sdl.relu %[[H]]
// CHECK: %[[C:.+]] = sdl.concat
// CHECK: %[[W:.+]] = sdl.get_param @w
// CHECK: %[[OUT:.+]] = sdl.matmul %[[C]], %[[W]]
// CHECK: %[[LOSS:.+]] = sdl.mse_loss %[[OUT]], %[[Y]]
// CHECK: %[[DOUT:.+]] = sdl.mse_loss_grad %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
// CHECK-DAG: %[[DC:.+]] = sdl.matmul_grad_lhs %[[DOUT]], %[[W]] : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
// CHECK-DAG: %[[DW:.+]] = sdl.matmul_grad_rhs %[[C]], %[[DOUT]] : (tensor<?x9xf32>, tensor<?x3xf32>) -> tensor<9x3xf32>
// The concat's gradient is sliced back into its inputs.
// CHECK-DAG: %[[DE:.+]] = sdl.slice %[[DC]] {offset = 0 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
// CHECK-DAG: %[[DA:.+]] = sdl.slice %[[DC]] {offset = 4 : i64} : (tensor<?x9xf32>) -> tensor<?x5xf32>
// Both operands of add(r, r) contribute: the gradients are summed.
// CHECK: %[[DR:.+]] = sdl.add %[[DA]], %[[DA]] : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
// CHECK: %[[DH:.+]] = sdl.relu_grad %[[H]], %[[DR]]
// CHECK-DAG: %[[DW1:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[W1]] : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32, #[[ENC:.+]]>) -> tensor<5x6xf32, #[[ENC]]>
// The embedding gradient holds one row per id; the ids are input 0.
// CHECK-DAG: %[[DT:.+]] = sdl.embedding_grad %[[IDS]], %[[DE]], %[[T]] : (tensor<?xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
// CHECK: return %[[LOSS]], %[[DT]], %[[DW1]], %[[DW]] :

// PRUNE-LABEL: module @Rich
// PRUNE-LABEL: func.func @train(
// PRUNE-NOT: sdl.linear_grad_input
// PRUNE: return

// -----

// A value feeding two different ops: its gradient is the sum of both
// contributions. BCE-with-logits loss.

module @FanOut {
  sdl.param @a : tensor<4x6xf32> {init = "uniform", init_a = 0.1 : f64, kind = "dense"}
  sdl.param @b : tensor<4x6xf32> {init = "uniform", init_a = 0.1 : f64, kind = "dense"}
  sdl.param @c : tensor<2x4xf32> {init = "uniform", init_a = 0.1 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.0 : f64, nesterov = false, weight_decay = 0.0 : f64}
  func.func @FanOut(%x: tensor<?x6xf32> {sdl.input = "x"}, %y: tensor<?x2xf32> {sdl.target = "y"}) -> (tensor<?x2xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %wa = sdl.get_param @a : tensor<4x6xf32>
    %wb = sdl.get_param @b : tensor<4x6xf32>
    %wc = sdl.get_param @c : tensor<2x4xf32>
    %p = sdl.linear %x, %wa : (tensor<?x6xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
    %q = sdl.linear %x, %wb : (tensor<?x6xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
    %h = sdl.add %p, %q : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %r = sdl.relu %h : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %s = sdl.add %r, %h : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %out = sdl.linear %s, %wc : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x2xf32>
    %loss = sdl.bce_with_logits_loss %out, %y : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x2xf32>, tensor<f32>
  }
}

// CHECK-LABEL: module @FanOut
// CHECK-LABEL: func.func @train(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x6xf32>
// CHECK: %[[WA:.+]] = sdl.get_param @a
// CHECK: %[[WB:.+]] = sdl.get_param @b
// CHECK: %[[WC:.+]] = sdl.get_param @c
// CHECK: %[[H:.+]] = sdl.add %{{.+}}, %{{.+}} : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK: %[[S:.+]] = sdl.add
// CHECK: %[[OUT:.+]] = sdl.linear %[[S]], %[[WC]]
// CHECK: %[[DOUT:.+]] = sdl.bce_with_logits_loss_grad %[[OUT]], %{{.+}} : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32>
// CHECK-DAG: %[[DS:.+]] = sdl.linear_grad_input %[[DOUT]], %[[WC]]
// CHECK-DAG: %[[DWC:.+]] = sdl.linear_grad_weight %[[DOUT]], %[[S]], %[[WC]]
// h reaches the loss through relu and directly: dh = ds + relu_grad(h, ds).
// CHECK: %[[DRH:.+]] = sdl.relu_grad %[[H]], %[[DS]]
// CHECK: %[[DH:.+]] = sdl.add %[[DS]], %[[DRH]]
// Both linears read x, which needs no gradient.
// CHECK-NOT: sdl.linear_grad_input
// CHECK-DAG: %[[DWA:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[WA]] : (tensor<?x4xf32>, tensor<?x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
// CHECK-DAG: %[[DWB:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[WB]] : (tensor<?x4xf32>, tensor<?x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
// CHECK: return %{{.+}}, %[[DWA]], %[[DWB]], %[[DWC]] :

// -----

// Errors.

module @Unused {
  sdl.param @w : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  // expected-error @+1 {{parameter 'unused' does not influence the loss}}
  sdl.param @unused : tensor<3xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  func.func @Unused(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<3x4xf32>
    %out = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// -----

// A parameter read only by dead code does not influence the loss either.
module @DeadUse {
  sdl.param @w : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  // expected-error @+1 {{parameter 'dead' does not influence the loss}}
  sdl.param @dead : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  func.func @DeadUse(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<3x4xf32>
    %d = sdl.get_param @dead : tensor<3x4xf32>
    %unused = sdl.linear %x, %d : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    %out = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// -----

// expected-error @+1 {{expected exactly one function marked 'sdl.model', found 0}}
module @NoModel {
  func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
    return %x : tensor<?x4xf32>
  }
}

// -----

// expected-error @+1 {{expected exactly one function marked 'sdl.model', found 2}}
module @TwoModels {
  func.func @a(%x: tensor<?x4xf32>, %y: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %loss = sdl.mse_loss %x, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %x, %loss : tensor<?x4xf32>, tensor<f32>
  }
  func.func @b(%x: tensor<?x4xf32>, %y: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %loss = sdl.mse_loss %x, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %x, %loss : tensor<?x4xf32>, tensor<f32>
  }
}

// -----

module @OneResult {
  // expected-error @+1 {{the model function must return (output, loss)}}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}) -> tensor<?x4xf32> attributes {sdl.model} {
    return %x : tensor<?x4xf32>
  }
}

// -----

module @NotALoss {
  sdl.param @w : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  // expected-error @+1 {{the second result must be produced by a loss op}}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %l: tensor<f32> {sdl.target = "l"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<3x4xf32>
    %out = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    return %out, %l : tensor<?x3xf32>, tensor<f32>
  }
}

// -----

module @OutputFromTarget {
  sdl.param @w : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  // expected-error @+1 {{the forward output depends on a target}}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<3x4xf32>
    %h = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    %out = sdl.add %h, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @SharedSparse {
  sdl.param @w : tensor<4x4xf32, #CSR> {init = "zeros", init_a = 0.0 : f64, kind = "csr", nnz = 4 : i64}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x4xf32> {sdl.target = "y"}) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<4x4xf32, #CSR>
    // expected-error @+1 {{a sparse weight used more than once is not supported yet}}
    %h = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<4x4xf32, #CSR>) -> tensor<?x4xf32>
    %out = sdl.linear %h, %w : (tensor<?x4xf32>, tensor<4x4xf32, #CSR>) -> tensor<?x4xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x4xf32>, tensor<f32>
  }
}

// -----

module @SharedTable {
  sdl.param @t : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  func.func @m(%a: tensor<?xi64> {sdl.input = "a"}, %b: tensor<?xi64> {sdl.input = "b"}, %y: tensor<?x4xf32> {sdl.target = "y"}) -> (tensor<?x4xf32>, tensor<f32>) attributes {sdl.model} {
    %t = sdl.get_param @t : tensor<10x4xf32>
    // expected-error @+1 {{an embedding table used more than once is not supported yet}}
    %ea = sdl.embedding %a, %t : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %eb = sdl.embedding %b, %t : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %out = sdl.add %ea, %eb : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x4xf32>, tensor<f32>
  }
}

// -----

module @ComputedIds {
  sdl.param @t : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  func.func @m(%y: tensor<2x4xf32> {sdl.target = "y"}) -> (tensor<2x4xf32>, tensor<f32>) attributes {sdl.model} {
    %ids = arith.constant dense<[1, 2]> : tensor<2xi64>
    %t = sdl.get_param @t : tensor<10x4xf32>
    // expected-error @+1 {{'sdl.embedding_grad' op ids must be a model input}}
    %out = sdl.embedding %ids, %t : (tensor<2xi64>, tensor<10x4xf32>) -> tensor<2x4xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<f32>
    return %out, %loss : tensor<2x4xf32>, tensor<f32>
  }
}

// -----

module @NoRule {
  sdl.param @w : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense"}
  func.func @m(%x: tensor<?x4xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model} {
    %w = sdl.get_param @w : tensor<3x4xf32>
    %h = sdl.linear %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
    // expected-error @+1 {{'tensor.cast' op has no gradient rule}}
    %out = tensor.cast %h : tensor<?x3xf32> to tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// -----

// A RigL weight (dynamic = "rigl"): after the gradients, @train returns the
// layer's input and output gradient (sdl.capture) for the growth scores.

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Rigl {
  sdl.param @fc.weight : tensor<10x12xf32, #CSR> {delta_t = 3 : i64, drop_fraction = 5.000000e-01 : f64, dynamic = "rigl", init = "fan_in_uniform", init_a = 3.600000e+00 : f64, kind = "csr", max_size = 24 : i64, nnz = 36 : i64, t_end = 12 : i64}
  sdl.param @fc.bias : tensor<10xf32> {init = "fan_in_uniform", init_a = 3.600000e+00 : f64, kind = "dense"}
  func.func @Rigl(%x: tensor<?x12xf32> {sdl.input = "x"}, %y: tensor<?x10xf32> {sdl.target = "y"}) -> (tensor<?x10xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %w = sdl.get_param @fc.weight : tensor<10x12xf32, #CSR>
    %b = sdl.get_param @fc.bias : tensor<10xf32>
    %h = sdl.relu %x : (tensor<?x12xf32>) -> tensor<?x12xf32>
    %out = sdl.linear %h, %w, %b : (tensor<?x12xf32>, tensor<10x12xf32, #CSR>, tensor<10xf32>) -> tensor<?x10xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x10xf32>, tensor<?x10xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x10xf32>, tensor<f32>
  }
}

// CHECK-LABEL: module @Rigl
// CHECK: func.func @train({{.*}}) -> (tensor<f32> {sdl.loss}, tensor<10x12xf32, #{{.*}}> {sdl.grad_of = "fc.weight"}, tensor<10xf32> {sdl.grad_of = "fc.bias"}, tensor<?x12xf32> {sdl.capture = "input", sdl.capture_of = "fc.weight"}, tensor<?x10xf32> {sdl.capture = "output_grad", sdl.capture_of = "fc.weight"})
// CHECK: %[[H:.*]] = sdl.relu
// CHECK: %[[DY:.*]] = sdl.mse_loss_grad
// CHECK: %[[GW:.*]] = sdl.linear_grad_weight %[[DY]], %[[H]]
// CHECK: return %{{.*}}, %[[GW]], %{{.*}}, %[[H]], %[[DY]]

// -----

// sparse_quantized_linear: the layer reads sdl.fake_quant_rows of its
// weight; the input gradient uses the quantized weight and the weight
// gradient (sampled on the quantized weight's pattern) goes straight
// through to the parameter (straight-through estimator).

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Quant {
  sdl.param @fc1.weight : tensor<10x12xf32, #CSR> {init = "fan_in_uniform", init_a = 3.600000e+00 : f64, kind = "csr", nnz = 36 : i64}
  sdl.param @fc2.weight : tensor<3x10xf32> {init = "fan_in_uniform", init_a = 3.000000e+00 : f64, kind = "dense"}
  func.func @Quant(%x: tensor<?x12xf32> {sdl.input = "x"}, %y: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %w = sdl.get_param @fc1.weight : tensor<10x12xf32, #CSR>
    %q = sdl.fake_quant_rows %w bits(4) : tensor<10x12xf32, #CSR>
    %h = sdl.linear %x, %q : (tensor<?x12xf32>, tensor<10x12xf32, #CSR>) -> tensor<?x10xf32>
    %w2 = sdl.get_param @fc2.weight : tensor<3x10xf32>
    %out = sdl.linear %h, %w2 : (tensor<?x10xf32>, tensor<3x10xf32>) -> tensor<?x3xf32>
    %loss = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %out, %loss : tensor<?x3xf32>, tensor<f32>
  }
}

// CHECK-LABEL: module @Quant
// CHECK: func.func @train(
// CHECK: %[[W:.*]] = sdl.get_param @fc1.weight
// CHECK: %[[Q:.*]] = sdl.fake_quant_rows %[[W]] bits(4)
// CHECK: %[[GW:.*]] = sdl.linear_grad_weight %{{.*}}, %{{.*}}, %[[Q]]
// CHECK: return %{{.*}}, %[[GW]], %{{.*}}
