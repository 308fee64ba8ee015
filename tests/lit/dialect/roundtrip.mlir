// Every op of the sdl dialect survives print -> parse -> print, in the custom
// and in the generic form.
// RUN: sparsec-opt %s | sparsec-opt | FileCheck %s
// RUN: sparsec-opt %s --mlir-print-op-generic | sparsec-opt | FileCheck %s
// RUN: sparsec-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>

// CHECK: #[[CSR:.+]] = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: module @RoundTrip
module @RoundTrip {
  // CHECK: sdl.param @fc1.weight : tensor<5x6xf32, #[[CSR]]> {init = "fan_in_uniform", init_a = 6.000000e+00 : f64, kind = "csr", nnz = 15 : i64}
  sdl.param @fc1.weight : tensor<5x6xf32, #CSR> {kind = "csr", init = "fan_in_uniform", init_a = 6.0 : f64, nnz = 15 : i64}
  // CHECK: sdl.param @fc1.bias : tensor<5xf32> {init = "zeros", init_a = 0.000000e+00 : f64, kind = "dense"}
  sdl.param @fc1.bias : tensor<5xf32> {kind = "dense", init = "zeros", init_a = 0.0 : f64}
  // CHECK: sdl.param @emb : tensor<10x4xf32> {init = "normal", init_a = 1.000000e+00 : f64, kind = "embedding"}
  sdl.param @emb : tensor<10x4xf32> {kind = "embedding", init = "normal", init_a = 1.0 : f64}
  // CHECK: sdl.param @w : tensor<9x3xf32> {init = "uniform", init_a = 5.000000e-01 : f64, kind = "dense"}
  sdl.param @w : tensor<9x3xf32> {kind = "dense", init = "uniform", init_a = 0.5 : f64}
  // CHECK: sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 5.000000e-02 : f64, momentum = 9.000000e-01 : f64, nesterov = true, weight_decay = 1.000000e-04 : f64}
  sdl.optimizer "sgd" {lr = 0.05 : f64, momentum = 0.9 : f64, dampening = 0.0 : f64, weight_decay = 1.0e-4 : f64, nesterov = true}
  // CHECK: sdl.optimizer "adamw" {amsgrad = true, beta1 = 8.000000e-01 : f64, beta2 = {{[0-9.eE+-]+}} : f64, clip_grad_norm = 1.000000e+00 : f64, eps = {{[0-9.eE+-]+}} : f64, lr = 1.000000e-03 : f64, schedule = "step", sparse = "catchup", step_size = 10 : i64, warmup = 3 : i64, weight_decay = 0.000000e+00 : f64}
  sdl.optimizer "adamw" {lr = 1.0e-3 : f64, beta1 = 0.8 : f64, beta2 = 0.99 : f64, eps = 1.0e-6 : f64, weight_decay = 0.0 : f64, amsgrad = true, sparse = "catchup", clip_grad_norm = 1.0 : f64, schedule = "step", step_size = 10 : i64, warmup = 3 : i64}

  // CHECK-LABEL: func.func @forward_ops(
  // CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi64>, %[[X:[^:]+]]: tensor<?x6xf32>, %[[Y:[^:]+]]: tensor<?x3xf32>, %[[L:[^:]+]]: tensor<?xi64>)
  func.func @forward_ops(%ids: tensor<?xi64>, %x: tensor<?x6xf32>, %y: tensor<?x3xf32>, %labels: tensor<?xi64>)
      -> (tensor<?x3xf32>, tensor<f32>, tensor<f32>, tensor<f32>) {
    // CHECK: %[[TABLE:.+]] = sdl.get_param @emb : tensor<10x4xf32>
    %table = sdl.get_param @emb : tensor<10x4xf32>
    // CHECK: %[[E:.+]] = sdl.embedding %[[IDS]], %[[TABLE]] : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %e = sdl.embedding %ids, %table : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    // CHECK: %[[W1:.+]] = sdl.get_param @fc1.weight : tensor<5x6xf32, #[[CSR]]>
    %w1 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    // CHECK: %[[B1:.+]] = sdl.get_param @fc1.bias : tensor<5xf32>
    %b1 = sdl.get_param @fc1.bias : tensor<5xf32>
    // CHECK: %[[H:.+]] = sdl.linear %[[X]], %[[W1]], %[[B1]] : (tensor<?x6xf32>, tensor<5x6xf32, #[[CSR]]>, tensor<5xf32>) -> tensor<?x5xf32>
    %h = sdl.linear %x, %w1, %b1 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>) -> tensor<?x5xf32>
    // CHECK: %[[HN:.+]] = sdl.linear %[[X]], %[[W1]] : (tensor<?x6xf32>, tensor<5x6xf32, #[[CSR]]>) -> tensor<?x5xf32>
    %hn = sdl.linear %x, %w1 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<?x5xf32>
    // CHECK: %[[R:.+]] = sdl.relu %[[H]] : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %r = sdl.relu %h : (tensor<?x5xf32>) -> tensor<?x5xf32>
    // CHECK: %[[A:.+]] = sdl.add %[[R]], %[[HN]] : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %a = sdl.add %r, %hn : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    // CHECK: %[[C:.+]] = sdl.concat %[[E]], %[[A]] : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    %c = sdl.concat %e, %a : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    // CHECK: %[[W:.+]] = sdl.get_param @w : tensor<9x3xf32>
    %w = sdl.get_param @w : tensor<9x3xf32>
    // CHECK: %[[OUT:.+]] = sdl.matmul %[[C]], %[[W]] : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    %out = sdl.matmul %c, %w : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    // CHECK: %[[MSE:.+]] = sdl.mse_loss %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    %mse = sdl.mse_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    // CHECK: %[[CE:.+]] = sdl.cross_entropy_loss %[[OUT]], %[[L]] : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    %ce = sdl.cross_entropy_loss %out, %labels : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    // CHECK: %[[BCE:.+]] = sdl.bce_with_logits_loss %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    %bce = sdl.bce_with_logits_loss %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    // CHECK: return %[[OUT]], %[[MSE]], %[[CE]], %[[BCE]]
    return %out, %mse, %ce, %bce : tensor<?x3xf32>, tensor<f32>, tensor<f32>, tensor<f32>
  }

  // CHECK-LABEL: func.func @backward_ops(
  // CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi64>, %[[X:[^:]+]]: tensor<?x6xf32>, %[[Y:[^:]+]]: tensor<?x3xf32>, %[[L:[^:]+]]: tensor<?xi64>, %[[H:[^:]+]]: tensor<?x5xf32>, %[[C:[^:]+]]: tensor<?x9xf32>, %[[OUT:[^:]+]]: tensor<?x3xf32>)
  func.func @backward_ops(%ids: tensor<?xi64>, %x: tensor<?x6xf32>, %y: tensor<?x3xf32>, %labels: tensor<?xi64>,
                          %h: tensor<?x5xf32>, %c: tensor<?x9xf32>, %out: tensor<?x3xf32>)
      -> (tensor<?x3xf32>, tensor<?x3xf32>, tensor<9x3xf32>, tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>, tensor<?x4xf32>) {
    // CHECK: %[[TABLE:.+]] = sdl.get_param @emb : tensor<10x4xf32>
    %table = sdl.get_param @emb : tensor<10x4xf32>
    // CHECK: %[[W1:.+]] = sdl.get_param @fc1.weight : tensor<5x6xf32, #[[CSR]]>
    %w1 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    // CHECK: %[[W:.+]] = sdl.get_param @w : tensor<9x3xf32>
    %w = sdl.get_param @w : tensor<9x3xf32>
    // CHECK: %[[DMSE:.+]] = sdl.mse_loss_grad %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    %dmse = sdl.mse_loss_grad %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    // CHECK: %[[DCE:.+]] = sdl.cross_entropy_loss_grad %[[OUT]], %[[L]] : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<?x3xf32>
    %dce = sdl.cross_entropy_loss_grad %out, %labels : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<?x3xf32>
    // CHECK: %[[DBCE:.+]] = sdl.bce_with_logits_loss_grad %[[OUT]], %[[Y]] : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    %dbce = sdl.bce_with_logits_loss_grad %out, %y : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    // CHECK: %[[DC:.+]] = sdl.matmul_grad_lhs %[[DMSE]], %[[W]] : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
    %dc = sdl.matmul_grad_lhs %dmse, %w : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
    // CHECK: %[[DW:.+]] = sdl.matmul_grad_rhs %[[C]], %[[DMSE]] : (tensor<?x9xf32>, tensor<?x3xf32>) -> tensor<9x3xf32>
    %dw = sdl.matmul_grad_rhs %c, %dmse : (tensor<?x9xf32>, tensor<?x3xf32>) -> tensor<9x3xf32>
    // CHECK: %[[DE:.+]] = sdl.slice %[[DC]] {offset = 0 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
    %de = sdl.slice %dc {offset = 0 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
    // CHECK: %[[DA:.+]] = sdl.slice %[[DC]] {offset = 4 : i64} : (tensor<?x9xf32>) -> tensor<?x5xf32>
    %da = sdl.slice %dc {offset = 4 : i64} : (tensor<?x9xf32>) -> tensor<?x5xf32>
    // CHECK: %[[DH:.+]] = sdl.relu_grad %[[H]], %[[DA]] : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %dh = sdl.relu_grad %h, %da : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    // CHECK: %[[DX:.+]] = sdl.linear_grad_input %[[DH]], %[[W1]] : (tensor<?x5xf32>, tensor<5x6xf32, #[[CSR]]>) -> tensor<?x6xf32>
    %dx = sdl.linear_grad_input %dh, %w1 : (tensor<?x5xf32>, tensor<5x6xf32, #CSR>) -> tensor<?x6xf32>
    // CHECK: %[[DW1:.+]] = sdl.linear_grad_weight %[[DH]], %[[X]], %[[W1]] : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32, #[[CSR]]>) -> tensor<5x6xf32, #[[CSR]]>
    %dw1 = sdl.linear_grad_weight %dh, %x, %w1 : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<5x6xf32, #CSR>
    // CHECK: %[[DB1:.+]] = sdl.reduce_batch %[[DH]] : (tensor<?x5xf32>) -> tensor<5xf32>
    %db1 = sdl.reduce_batch %dh : (tensor<?x5xf32>) -> tensor<5xf32>
    // CHECK: %[[DT:.+]] = sdl.embedding_grad %[[IDS]], %[[DE]], %[[TABLE]] : (tensor<?xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %dt = sdl.embedding_grad %ids, %de, %table : (tensor<?xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
    // CHECK: return %[[DCE]], %[[DBCE]], %[[DW]], %[[DX]], %[[DW1]], %[[DB1]], %[[DT]]
    return %dce, %dbce, %dw, %dx, %dw1, %db1, %dt : tensor<?x3xf32>, tensor<?x3xf32>, tensor<9x3xf32>, tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>, tensor<?x4xf32>
  }
}

// The generic form names every op and keeps the attributes as properties.
// GENERIC: "sdl.param"() <{init = "fan_in_uniform", init_a = 6.000000e+00 : f64, kind = "csr", nnz = 15 : i64, sym_name = "fc1.weight", type = tensor<5x6xf32, #{{.+}}>}> : () -> ()
// GENERIC: "sdl.optimizer"() <{kind = "sgd"}> {dampening = 0.000000e+00 : f64, lr = 5.000000e-02 : f64, momentum = 9.000000e-01 : f64, nesterov = true, weight_decay = 1.000000e-04 : f64} : () -> ()
// GENERIC: "sdl.get_param"() <{param = @emb}> : () -> tensor<10x4xf32>
// GENERIC: "sdl.embedding"
// GENERIC: "sdl.linear"
// GENERIC: "sdl.concat"
// GENERIC: "sdl.slice"(%{{.+}}) <{offset = 0 : i64}> : (tensor<?x9xf32>) -> tensor<?x4xf32>
