// Every diagnostic of the sdl verifiers (dialects/sdl/lib/SdlOps.cpp), one
// case per message and op.
// RUN: sparsec-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// sdl.param
//===----------------------------------------------------------------------===//

// expected-error @+1 {{'sdl.param' op type must be a statically shaped tensor, got 'tensor<?x4xf32>'}}
sdl.param @p : tensor<?x4xf32> {kind = "dense", init = "zeros", init_a = 0.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op type must be a statically shaped tensor, got 'f32'}}
sdl.param @p : f32 {kind = "dense", init = "zeros", init_a = 0.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op kind must be dense, csr, embedding, buffer or mask, got 'sparse'}}
sdl.param @p : tensor<4x4xf32> {kind = "sparse", init = "zeros", init_a = 0.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op unknown initialiser 'xavier'}}
sdl.param @p : tensor<4x4xf32> {kind = "dense", init = "xavier", init_a = 0.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op init_a must be non-negative}}
sdl.param @p : tensor<4x4xf32> {kind = "dense", init = "normal", init_a = -1.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op a csr parameter needs a rank-2 sparse type}}
sdl.param @p : tensor<4x4xf32> {kind = "csr", init = "zeros", init_a = 0.0 : f64, nnz = 4 : i64}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// expected-error @+1 {{'sdl.param' op a csr parameter needs 1 <= nnz <= 20}}
sdl.param @p : tensor<4x5xf32, #CSR> {kind = "csr", init = "zeros", init_a = 0.0 : f64}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// expected-error @+1 {{'sdl.param' op a csr parameter needs 1 <= nnz <= 20}}
sdl.param @p : tensor<4x5xf32, #CSR> {kind = "csr", init = "zeros", init_a = 0.0 : f64, nnz = 0 : i64}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// expected-error @+1 {{'sdl.param' op a csr parameter needs 1 <= nnz <= 20}}
sdl.param @p : tensor<4x5xf32, #CSR> {kind = "csr", init = "zeros", init_a = 0.0 : f64, nnz = 21 : i64}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// expected-error @+1 {{'sdl.param' op only csr parameters may have a sparse type}}
sdl.param @p : tensor<4x5xf32, #CSR> {kind = "dense", init = "zeros", init_a = 0.0 : f64}

// -----

// expected-error @+1 {{'sdl.param' op an embedding table must have rank 2}}
sdl.param @p : tensor<4x5x6xf32> {kind = "embedding", init = "normal", init_a = 1.0 : f64}

// -----

//===----------------------------------------------------------------------===//
// sdl.optimizer
//===----------------------------------------------------------------------===//

// expected-error @+1 {{'sdl.optimizer' op unknown optimizer 'adamax'}}
sdl.optimizer "adamax" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op lr must be positive}}
sdl.optimizer "sgd" {lr = 0.0 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op momentum must be >= 0}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = -0.5 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op weight_decay must be >= 0}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = -1.0 : f64, nesterov = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op nesterov needs momentum > 0 and dampening = 0}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = true}

// -----

// expected-error @+1 {{'sdl.optimizer' op nesterov needs momentum > 0 and dampening = 0}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.9 : f64, dampening = 0.1 : f64, weight_decay = 0.0 : f64, nesterov = true}

// -----

// expected-error @+1 {{'sdl.optimizer' op fused = true needs sparse = "lazy" and no clip_grad_norm}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false, sparse = "catchup", fused = true}

// -----

// expected-error @+1 {{'sdl.optimizer' op fused must be a bool}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false, fused = 1 : i64}

// -----

// expected-error @+1 {{'sdl.optimizer' op 'adam' needs 'beta2'}}
sdl.optimizer "adam" {lr = 0.1 : f64, beta1 = 0.9 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, amsgrad = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op beta1 must be in [0, 1)}}
sdl.optimizer "adamw" {lr = 0.1 : f64, beta1 = 1.0 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, amsgrad = false}

// -----

// expected-error @+1 {{'sdl.optimizer' op unknown hyperparameter 'momentum' for 'adagrad'}}
sdl.optimizer "adagrad" {lr = 0.1 : f64, lr_decay = 0.0 : f64, weight_decay = 0.0 : f64, initial_accumulator_value = 0.0 : f64, eps = 1.0e-10 : f64, momentum = 0.9 : f64}

// -----

// expected-error @+1 {{'sdl.optimizer' op invalid sparse "eager"}}
sdl.optimizer "sgd" {lr = 0.1 : f64, momentum = 0.0 : f64, dampening = 0.0 : f64, weight_decay = 0.0 : f64, nesterov = false, sparse = "eager"}

// -----

// expected-error @+1 {{'sdl.optimizer' op schedule 'cosine' needs t_max > 0}}
sdl.optimizer "rmsprop" {lr = 0.1 : f64, alpha = 0.99 : f64, eps = 1.0e-8 : f64, weight_decay = 0.0 : f64, momentum = 0.0 : f64, centered = false, schedule = "cosine"}

// -----

//===----------------------------------------------------------------------===//
// sdl.get_param
//===----------------------------------------------------------------------===//

func.func @unknown_symbol() -> tensor<4xf32> {
  // expected-error @+1 {{'sdl.get_param' op 'missing' is not an sdl.param}}
  %0 = sdl.get_param @missing : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @not_a_param() -> tensor<4xf32> {
  // expected-error @+1 {{'sdl.get_param' op 'not_a_param' is not an sdl.param}}
  %0 = sdl.get_param @not_a_param : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

sdl.param @b : tensor<4xf32> {kind = "dense", init = "zeros", init_a = 0.0 : f64}
func.func @wrong_type() -> tensor<5xf32> {
  // expected-error @+1 {{'sdl.get_param' op type 'tensor<5xf32>' does not match the parameter's type 'tensor<4xf32>'}}
  %0 = sdl.get_param @b : tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
sdl.param @w : tensor<4x5xf32, #CSR> {kind = "csr", init = "zeros", init_a = 0.0 : f64, nnz = 3 : i64}
func.func @lost_encoding() -> tensor<4x5xf32> {
  // expected-error @+1 {{'sdl.get_param' op type 'tensor<4x5xf32>' does not match the parameter's type 'tensor<4x5xf32, #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed)}}
  %0 = sdl.get_param @w : tensor<4x5xf32>
  return %0 : tensor<4x5xf32>
}

// -----

//===----------------------------------------------------------------------===//
// sdl.linear
//===----------------------------------------------------------------------===//

func.func @linear_int(%x: tensor<?x6xi32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op input must have a float element type, got 'tensor<?x6xi32>'}}
  %0 = sdl.linear %x, %w : (tensor<?x6xi32>, tensor<5x6xf32>) -> tensor<?x5xf32>
  return
}

// -----

func.func @linear_rank(%x: tensor<6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op input must have rank >= 2, got 'tensor<6xf32>'}}
  %0 = sdl.linear %x, %w : (tensor<6xf32>, tensor<5x6xf32>) -> tensor<5xf32>
  return
}

// -----

func.func @linear_weight(%x: tensor<?x6xf32>, %w: tensor<?x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op weight must be a static rank-2 tensor, got 'tensor<?x6xf32>'}}
  %0 = sdl.linear %x, %w : (tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<?x5xf32>
  return
}

// -----

func.func @linear_in_features(%x: tensor<?x7xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op input must have 6 features in its last dimension, got 'tensor<?x7xf32>'}}
  %0 = sdl.linear %x, %w : (tensor<?x7xf32>, tensor<5x6xf32>) -> tensor<?x5xf32>
  return
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
func.func @linear_out_features(%x: tensor<?x6xf32>, %w: tensor<5x6xf32, #CSR>) {
  // expected-error @+1 {{'sdl.linear' op result must have 5 features in its last dimension, got 'tensor<?x6xf32>'}}
  %0 = sdl.linear %x, %w : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<?x6xf32>
  return
}

// -----

func.func @linear_result_rank(%x: tensor<?x6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op input and result must have the same rank}}
  %0 = sdl.linear %x, %w : (tensor<?x6xf32>, tensor<5x6xf32>) -> tensor<?x2x5xf32>
  return
}

// -----

func.func @linear_batch(%x: tensor<2x6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear' op input and result differ in dimension 0}}
  %0 = sdl.linear %x, %w : (tensor<2x6xf32>, tensor<5x6xf32>) -> tensor<3x5xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x6xf32>, %w: tensor<5x6xf32>, %b: tensor<6xf32>) {
  // expected-error @+1 {{'sdl.linear' op bias must be tensor<5x...>}}
  %0 = sdl.linear %x, %w, %b : (tensor<?x6xf32>, tensor<5x6xf32>, tensor<6xf32>) -> tensor<?x5xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// sdl.embedding
//===----------------------------------------------------------------------===//

func.func @embedding_ids(%ids: tensor<?xf32>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding' op ids must be integers, got 'tensor<?xf32>'}}
  %0 = sdl.embedding %ids, %t : (tensor<?xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_table(%ids: tensor<?xi64>, %t: tensor<10x?xf32>) {
  // expected-error @+1 {{'sdl.embedding' op table must be a static rank-2 tensor, got 'tensor<10x?xf32>'}}
  %0 = sdl.embedding %ids, %t : (tensor<?xi64>, tensor<10x?xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_dim(%ids: tensor<?xi64>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding' op result must be ids' shape followed by 4}}
  %0 = sdl.embedding %ids, %t : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x5xf32>
  return
}

// -----

func.func @embedding_result_rank(%ids: tensor<?xi64>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding' op result must be ids' shape followed by 4}}
  %0 = sdl.embedding %ids, %t : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x2x4xf32>
  return
}

// -----

func.func @embedding_batch(%ids: tensor<2x3xi64>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding' op result and ids differ in dimension 1}}
  %0 = sdl.embedding %ids, %t : (tensor<2x3xi64>, tensor<10x4xf32>) -> tensor<2x5x4xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// sdl.relu, sdl.add
//===----------------------------------------------------------------------===//

func.func @relu_int(%x: tensor<?x4xi32>) {
  // expected-error @+1 {{'sdl.relu' op input must have a float element type, got 'tensor<?x4xi32>'}}
  %0 = sdl.relu %x : (tensor<?x4xi32>) -> tensor<?x4xi32>
  return
}

// -----

func.func @add_int(%x: tensor<?x4xi32>) {
  // expected-error @+1 {{'sdl.add' op input must have a float element type, got 'tensor<?x4xi32>'}}
  %0 = sdl.add %x, %x : (tensor<?x4xi32>, tensor<?x4xi32>) -> tensor<?x4xi32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// sdl.matmul
//===----------------------------------------------------------------------===//

func.func @matmul_int(%a: tensor<?x9xi32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op lhs must have a float element type, got 'tensor<?x9xi32>'}}
  %0 = sdl.matmul %a, %b : (tensor<?x9xi32>, tensor<9x3xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<9xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op lhs must have rank >= 2, got 'tensor<9xf32>'}}
  %0 = sdl.matmul %a, %b : (tensor<9xf32>, tensor<9x3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @matmul_rhs(%a: tensor<?x9xf32>, %b: tensor<9x?xf32>) {
  // expected-error @+1 {{'sdl.matmul' op rhs must be a static rank-2 tensor, got 'tensor<9x?xf32>'}}
  %0 = sdl.matmul %a, %b : (tensor<?x9xf32>, tensor<9x?xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @matmul_inner(%a: tensor<?x8xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op lhs must have 9 features in its last dimension, got 'tensor<?x8xf32>'}}
  %0 = sdl.matmul %a, %b : (tensor<?x8xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @matmul_result(%a: tensor<?x9xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op result must have 3 features in its last dimension, got 'tensor<?x9xf32>'}}
  %0 = sdl.matmul %a, %b : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @matmul_result_rank(%a: tensor<?x9xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op lhs and result must have the same rank}}
  %0 = sdl.matmul %a, %b : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<4x9xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul' op lhs and result differ in dimension 0}}
  %0 = sdl.matmul %a, %b : (tensor<4x9xf32>, tensor<9x3xf32>) -> tensor<5x3xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// sdl.concat
//===----------------------------------------------------------------------===//

func.func @concat_empty() {
  // expected-error @+1 {{'sdl.concat' op needs at least one input}}
  %0 = sdl.concat : () -> tensor<?x9xf32>
  return
}

// -----

func.func @concat_int(%a: tensor<?x4xi32>, %b: tensor<?x5xf32>) {
  // expected-error @+1 {{'sdl.concat' op input must have a float element type, got 'tensor<?x4xi32>'}}
  %0 = sdl.concat %a, %b : (tensor<?x4xi32>, tensor<?x5xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @concat_scalar(%a: tensor<f32>) {
  // expected-error @+1 {{'sdl.concat' op input must have rank >= 1, got 'tensor<f32>'}}
  %0 = sdl.concat %a : (tensor<f32>) -> tensor<1xf32>
  return
}

// -----

func.func @concat_rank(%a: tensor<?x4xf32>, %b: tensor<?x2x5xf32>) {
  // expected-error @+1 {{'sdl.concat' op input and result must have the same rank}}
  %0 = sdl.concat %a, %b : (tensor<?x4xf32>, tensor<?x2x5xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @concat_batch(%a: tensor<2x4xf32>, %b: tensor<3x5xf32>) {
  // expected-error @+1 {{'sdl.concat' op input and result differ in dimension 0}}
  %0 = sdl.concat %a, %b : (tensor<2x4xf32>, tensor<3x5xf32>) -> tensor<2x9xf32>
  return
}

// -----

func.func @concat_dynamic(%a: tensor<?x4xf32>, %b: tensor<?x?xf32>) {
  // expected-error @+1 {{'sdl.concat' op inputs must have a static last dimension}}
  %0 = sdl.concat %a, %b : (tensor<?x4xf32>, tensor<?x?xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @concat_sum(%a: tensor<?x4xf32>, %b: tensor<?x5xf32>) {
  // expected-error @+1 {{'sdl.concat' op result must have 9 features in its last dimension, got 'tensor<?x10xf32>'}}
  %0 = sdl.concat %a, %b : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x10xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

func.func @mse_rank(%x: tensor<?x3xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{'sdl.mse_loss' op input and target must have the same rank, got 'tensor<?x3xf32>' and 'tensor<?xf32>'}}
  %0 = sdl.mse_loss %x, %t : (tensor<?x3xf32>, tensor<?xf32>) -> tensor<f32>
  return
}

// -----

func.func @mse_dim(%x: tensor<?x3xf32>, %t: tensor<?x4xf32>) {
  // expected-error @+1 {{'sdl.mse_loss' op input and target differ in dimension 1: 'tensor<?x3xf32>' vs 'tensor<?x4xf32>'}}
  %0 = sdl.mse_loss %x, %t : (tensor<?x3xf32>, tensor<?x4xf32>) -> tensor<f32>
  return
}

// -----

func.func @bce_rank(%x: tensor<?x3xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{'sdl.bce_with_logits_loss' op input and target must have the same rank, got 'tensor<?x3xf32>' and 'tensor<?xf32>'}}
  %0 = sdl.bce_with_logits_loss %x, %t : (tensor<?x3xf32>, tensor<?xf32>) -> tensor<f32>
  return
}

// -----

func.func @bce_dim(%x: tensor<2x3xf32>, %t: tensor<4x3xf32>) {
  // expected-error @+1 {{'sdl.bce_with_logits_loss' op input and target differ in dimension 0: 'tensor<2x3xf32>' vs 'tensor<4x3xf32>'}}
  %0 = sdl.bce_with_logits_loss %x, %t : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<f32>
  return
}

// -----

func.func @ce_float_labels(%x: tensor<?x3xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{'sdl.cross_entropy_loss' op expects logits [B, C] and integer labels [B]}}
  %0 = sdl.cross_entropy_loss %x, %t : (tensor<?x3xf32>, tensor<?xf32>) -> tensor<f32>
  return
}

// -----

func.func @ce_rank(%x: tensor<?x2x3xf32>, %t: tensor<?xi64>) {
  // expected-error @+1 {{'sdl.cross_entropy_loss' op expects logits [B, C] and integer labels [B]}}
  %0 = sdl.cross_entropy_loss %x, %t : (tensor<?x2x3xf32>, tensor<?xi64>) -> tensor<f32>
  return
}

// -----

func.func @ce_batch(%x: tensor<2x3xf32>, %t: tensor<3xi64>) {
  // expected-error @+1 {{'sdl.cross_entropy_loss' op logits and labels differ in batch size}}
  %0 = sdl.cross_entropy_loss %x, %t : (tensor<2x3xf32>, tensor<3xi64>) -> tensor<f32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------===//

func.func @relu_grad_int(%x: tensor<?x4xi32>) {
  // expected-error @+1 {{'sdl.relu_grad' op input must have a float element type, got 'tensor<?x4xi32>'}}
  %0 = sdl.relu_grad %x, %x : (tensor<?x4xi32>, tensor<?x4xi32>) -> tensor<?x4xi32>
  return
}

// -----

func.func @lgi_weight(%dy: tensor<?x5xf32>, %w: tensor<?x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_input' op weight must be a static rank-2 tensor, got 'tensor<?x6xf32>'}}
  %0 = sdl.linear_grad_input %dy, %w : (tensor<?x5xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
  return
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
func.func @lgi_grad(%dy: tensor<?x4xf32>, %w: tensor<5x6xf32, #CSR>) {
  // expected-error @+1 {{'sdl.linear_grad_input' op grad must have 5 features in its last dimension, got 'tensor<?x4xf32>'}}
  %0 = sdl.linear_grad_input %dy, %w : (tensor<?x4xf32>, tensor<5x6xf32, #CSR>) -> tensor<?x6xf32>
  return
}

// -----

func.func @lgi_result(%dy: tensor<?x5xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_input' op result must have 6 features in its last dimension, got 'tensor<?x5xf32>'}}
  %0 = sdl.linear_grad_input %dy, %w : (tensor<?x5xf32>, tensor<5x6xf32>) -> tensor<?x5xf32>
  return
}

// -----

func.func @lgi_rank(%dy: tensor<?x5xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_input' op grad and result must have the same rank}}
  %0 = sdl.linear_grad_input %dy, %w : (tensor<?x5xf32>, tensor<5x6xf32>) -> tensor<?x2x6xf32>
  return
}

// -----

func.func @lgi_batch(%dy: tensor<2x5xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_input' op grad and result differ in dimension 0}}
  %0 = sdl.linear_grad_input %dy, %w : (tensor<2x5xf32>, tensor<5x6xf32>) -> tensor<3x6xf32>
  return
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
func.func @lgw_type(%dy: tensor<?x5xf32>, %x: tensor<?x6xf32>, %w: tensor<5x6xf32, #CSR>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op result type must equal the weight type 'tensor<5x6xf32, #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed)}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32, #CSR>) -> tensor<5x6xf32>
  return
}

// -----

func.func @lgw_weight(%dy: tensor<?x5xf32>, %x: tensor<?x6xf32>, %w: tensor<?x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op weight must be a static rank-2 tensor, got 'tensor<?x6xf32>'}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
  return
}

// -----

func.func @lgw_grad(%dy: tensor<?x4xf32>, %x: tensor<?x6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op grad must have 5 features in its last dimension, got 'tensor<?x4xf32>'}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x4xf32>, tensor<?x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>
  return
}

// -----

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
func.func @lgw_input(%dy: tensor<?x5xf32>, %x: tensor<?x7xf32>, %w: tensor<5x6xf32, #CSR>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op input must have 6 features in its last dimension, got 'tensor<?x7xf32>'}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x5xf32>, tensor<?x7xf32>, tensor<5x6xf32, #CSR>) -> tensor<5x6xf32, #CSR>
  return
}

// -----

func.func @lgw_rank(%dy: tensor<?x5xf32>, %x: tensor<?x2x6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op grad and input must have the same rank}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x5xf32>, tensor<?x2x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>
  return
}

// -----

func.func @lgw_batch(%dy: tensor<2x5xf32>, %x: tensor<3x6xf32>, %w: tensor<5x6xf32>) {
  // expected-error @+1 {{'sdl.linear_grad_weight' op grad and input differ in dimension 0}}
  %0 = sdl.linear_grad_weight %dy, %x, %w : (tensor<2x5xf32>, tensor<3x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>
  return
}

// -----

func.func @reduce_batch_rank(%dy: tensor<?x5xf32>) {
  // expected-error @+1 {{'sdl.reduce_batch' op result must be rank 1 with the input's last dimension}}
  %0 = sdl.reduce_batch %dy : (tensor<?x5xf32>) -> tensor<1x5xf32>
  return
}

// -----

func.func @reduce_batch_size(%dy: tensor<?x5xf32>) {
  // expected-error @+1 {{'sdl.reduce_batch' op result must be rank 1 with the input's last dimension}}
  %0 = sdl.reduce_batch %dy : (tensor<?x5xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @mgl_rhs(%dy: tensor<?x3xf32>, %b: tensor<?x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_lhs' op rhs must be a static rank-2 tensor, got 'tensor<?x3xf32>'}}
  %0 = sdl.matmul_grad_lhs %dy, %b : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @mgl_grad(%dy: tensor<?x4xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_lhs' op grad must have 3 features in its last dimension, got 'tensor<?x4xf32>'}}
  %0 = sdl.matmul_grad_lhs %dy, %b : (tensor<?x4xf32>, tensor<9x3xf32>) -> tensor<?x9xf32>
  return
}

// -----

func.func @mgl_result(%dy: tensor<?x3xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_lhs' op result must have 9 features in its last dimension, got 'tensor<?x3xf32>'}}
  %0 = sdl.matmul_grad_lhs %dy, %b : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @mgl_rank(%dy: tensor<?x3xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_lhs' op grad and result must have the same rank}}
  %0 = sdl.matmul_grad_lhs %dy, %b : (tensor<?x3xf32>, tensor<9x3xf32>) -> tensor<9xf32>
  return
}

// -----

func.func @mgl_batch(%dy: tensor<2x3xf32>, %b: tensor<9x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_lhs' op grad and result differ in dimension 0}}
  %0 = sdl.matmul_grad_lhs %dy, %b : (tensor<2x3xf32>, tensor<9x3xf32>) -> tensor<3x9xf32>
  return
}

// -----

func.func @mgr_result(%a: tensor<?x9xf32>, %dy: tensor<?x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_rhs' op result must be a static rank-2 tensor, got 'tensor<?x3xf32>'}}
  %0 = sdl.matmul_grad_rhs %a, %dy : (tensor<?x9xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @mgr_lhs(%a: tensor<?x8xf32>, %dy: tensor<?x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_rhs' op lhs must have 9 features in its last dimension, got 'tensor<?x8xf32>'}}
  %0 = sdl.matmul_grad_rhs %a, %dy : (tensor<?x8xf32>, tensor<?x3xf32>) -> tensor<9x3xf32>
  return
}

// -----

func.func @mgr_grad(%a: tensor<?x9xf32>, %dy: tensor<?x4xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_rhs' op grad must have 3 features in its last dimension, got 'tensor<?x4xf32>'}}
  %0 = sdl.matmul_grad_rhs %a, %dy : (tensor<?x9xf32>, tensor<?x4xf32>) -> tensor<9x3xf32>
  return
}

// -----

func.func @mgr_rank(%a: tensor<?x9xf32>, %dy: tensor<?x2x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_rhs' op lhs and grad must have the same rank}}
  %0 = sdl.matmul_grad_rhs %a, %dy : (tensor<?x9xf32>, tensor<?x2x3xf32>) -> tensor<9x3xf32>
  return
}

// -----

func.func @mgr_batch(%a: tensor<2x9xf32>, %dy: tensor<3x3xf32>) {
  // expected-error @+1 {{'sdl.matmul_grad_rhs' op lhs and grad differ in dimension 0}}
  %0 = sdl.matmul_grad_rhs %a, %dy : (tensor<2x9xf32>, tensor<3x3xf32>) -> tensor<9x3xf32>
  return
}

// -----

func.func @slice_rank(%x: tensor<?x9xf32>) {
  // expected-error @+1 {{'sdl.slice' op input and result must have the same rank}}
  %0 = sdl.slice %x {offset = 0 : i64} : (tensor<?x9xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @slice_batch(%x: tensor<2x9xf32>) {
  // expected-error @+1 {{'sdl.slice' op input and result differ in dimension 0}}
  %0 = sdl.slice %x {offset = 0 : i64} : (tensor<2x9xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @slice_past_end(%x: tensor<?x9xf32>) {
  // expected-error @+1 {{'sdl.slice' op slice [6, 10) is outside the input's last dimension}}
  %0 = sdl.slice %x {offset = 6 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @slice_negative(%x: tensor<?x9xf32>) {
  // expected-error @+1 {{'sdl.slice' op slice [-1, 3) is outside the input's last dimension}}
  %0 = sdl.slice %x {offset = -1 : i64} : (tensor<?x9xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_grad_type(%ids: tensor<?xi64>, %dy: tensor<?x4xf32>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding_grad' op result type must equal the gradient type}}
  %0 = sdl.embedding_grad %ids, %dy, %t : (tensor<?xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<10x4xf32>
  return
}

// -----

func.func @embedding_grad_ids(%ids: tensor<?xf32>, %dy: tensor<?x4xf32>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding_grad' op expects integer ids and rows of rank ids + 1}}
  %0 = sdl.embedding_grad %ids, %dy, %t : (tensor<?xf32>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_grad_rows(%ids: tensor<?x2xi64>, %dy: tensor<?x4xf32>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding_grad' op expects integer ids and rows of rank ids + 1}}
  %0 = sdl.embedding_grad %ids, %dy, %t : (tensor<?x2xi64>, tensor<?x4xf32>, tensor<10x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_grad_table(%ids: tensor<?xi64>, %dy: tensor<?x4xf32>, %t: tensor<?x4xf32>) {
  // expected-error @+1 {{'sdl.embedding_grad' op table must be a static rank-2 tensor, got 'tensor<?x4xf32>'}}
  %0 = sdl.embedding_grad %ids, %dy, %t : (tensor<?xi64>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @embedding_grad_dim(%ids: tensor<?xi64>, %dy: tensor<?x5xf32>, %t: tensor<10x4xf32>) {
  // expected-error @+1 {{'sdl.embedding_grad' op grad must have 4 features in its last dimension, got 'tensor<?x5xf32>'}}
  %0 = sdl.embedding_grad %ids, %dy, %t : (tensor<?xi64>, tensor<?x5xf32>, tensor<10x4xf32>) -> tensor<?x5xf32>
  return
}

// -----

func.func @mse_grad_type(%x: tensor<?x3xf32>, %t: tensor<?x3xf32>) {
  // expected-error @+1 {{'sdl.mse_loss_grad' op result type must equal the input type}}
  %0 = sdl.mse_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @mse_grad_rank(%x: tensor<?x3xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{'sdl.mse_loss_grad' op input and target must have the same rank, got 'tensor<?x3xf32>' and 'tensor<?xf32>'}}
  %0 = sdl.mse_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @mse_grad_dim(%x: tensor<?x3xf32>, %t: tensor<?x4xf32>) {
  // expected-error @+1 {{'sdl.mse_loss_grad' op input and target differ in dimension 1: 'tensor<?x3xf32>' vs 'tensor<?x4xf32>'}}
  %0 = sdl.mse_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?x4xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @bce_grad_type(%x: tensor<?x3xf32>, %t: tensor<?x3xf32>) {
  // expected-error @+1 {{'sdl.bce_with_logits_loss_grad' op result type must equal the input type}}
  %0 = sdl.bce_with_logits_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @bce_grad_rank(%x: tensor<?x3xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{'sdl.bce_with_logits_loss_grad' op input and target must have the same rank, got 'tensor<?x3xf32>' and 'tensor<?xf32>'}}
  %0 = sdl.bce_with_logits_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @bce_grad_dim(%x: tensor<?x3xf32>, %t: tensor<?x4xf32>) {
  // expected-error @+1 {{'sdl.bce_with_logits_loss_grad' op input and target differ in dimension 1: 'tensor<?x3xf32>' vs 'tensor<?x4xf32>'}}
  %0 = sdl.bce_with_logits_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?x4xf32>) -> tensor<?x3xf32>
  return
}

// -----

func.func @ce_grad_type(%x: tensor<?x3xf32>, %t: tensor<?xi64>) {
  // expected-error @+1 {{'sdl.cross_entropy_loss_grad' op result type must equal the input type}}
  %0 = sdl.cross_entropy_loss_grad %x, %t : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<?xf32>
  return
}

// -----

// expected-error @+1 {{'sdl.param' op a buffer is a rank-1 tensor initialised with zeros}}
sdl.param @kw.duty_cycle : tensor<4x2xf32> {init = "zeros", init_a = 0.0 : f64, kind = "buffer"}

// -----

func.func @kw_duty(%x: tensor<?x8xf32>, %duty: tensor<8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'sdl.kwinners' op duty must be a tensor of 9 values (8 duty cycles and the sample count)}}
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.0 : f64, k = 2 : i64, k_inference = 3 : i64, period = 10 : i64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

func.func @kw_k(%x: tensor<?x8xf32>, %duty: tensor<9xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'sdl.kwinners' op k must be in [1, 8]}}
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.0 : f64, k = 9 : i64, k_inference = 3 : i64, period = 10 : i64} : (tensor<?x8xf32>, tensor<9xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

func.func @kw_period(%y: tensor<?x8xf32>, %duty: tensor<9xf32>) -> tensor<9xf32> {
  // expected-error @+1 {{'sdl.kwinners_duty' op period must be >= 1}}
  %0 = sdl.kwinners_duty %y, %duty {period = 0 : i64} : (tensor<?x8xf32>, tensor<9xf32>) -> tensor<9xf32>
  return %0 : tensor<9xf32>
}

// -----

func.func @kw_decay_duty(%x: tensor<?x8xf32>, %duty: tensor<9xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'sdl.kwinners' op duty must be a tensor of 10 values (8 duty cycles, the sample count and the step count)}}
  %0 = sdl.kwinners %x, %duty {boost_factor = 0.5 : f64, boost_period = 3 : i64, boost_strength = 1.0 : f64, k = 2 : i64, k_inference = 3 : i64, period = 10 : i64} : (tensor<?x8xf32>, tensor<9xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

func.func @kw_factor(%x: tensor<?x8xf32>, %duty: tensor<10xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'sdl.kwinners' op boost_strength must be >= 0 and boost_factor in (0, 1]}}
  %0 = sdl.kwinners %x, %duty {boost_factor = 1.5 : f64, boost_period = 3 : i64, boost_strength = 1.0 : f64, k = 2 : i64, k_inference = 3 : i64, period = 10 : i64} : (tensor<?x8xf32>, tensor<10xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

func.func @kw_local_rank2(%x: tensor<?x8xf32>, %duty: tensor<9xf32>, %dy: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'sdl.kwinners_grad' op 'local' needs a rank-4 input}}
  %0 = sdl.kwinners_grad %x, %duty, %dy {boost_strength = 1.0 : f64, k = 2 : i64, local} : (tensor<?x8xf32>, tensor<9xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

func.func @kw2d_duty(%x: tensor<?x4x3x3xf32>, %duty: tensor<37xf32>) -> tensor<?x4x3x3xf32> {
  // expected-error @+1 {{'sdl.kwinners' op duty must be a tensor of 5 values (4 duty cycles and the sample count)}}
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.0 : f64, k = 9 : i64, k_inference = 14 : i64, period = 10 : i64} : (tensor<?x4x3x3xf32>, tensor<37xf32>) -> tensor<?x4x3x3xf32>
  return %0 : tensor<?x4x3x3xf32>
}

// -----

func.func @kw2d_local_k(%x: tensor<?x4x3x3xf32>, %duty: tensor<5xf32>) -> tensor<?x4x3x3xf32> {
  // expected-error @+1 {{'sdl.kwinners' op k_inference must be in [1, 4]}}
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.0 : f64, k = 2 : i64, k_inference = 5 : i64, local, period = 10 : i64} : (tensor<?x4x3x3xf32>, tensor<5xf32>) -> tensor<?x4x3x3xf32>
  return %0 : tensor<?x4x3x3xf32>
}

// -----

func.func @kw_rank3(%x: tensor<?x4x3xf32>, %duty: tensor<5xf32>) -> tensor<5xf32> {
  // expected-error @+1 {{'sdl.kwinners_duty' op input must have rank 2 or 4, got 'tensor<?x4x3xf32>'}}
  %0 = sdl.kwinners_duty %x, %duty {period = 10 : i64} : (tensor<?x4x3xf32>, tensor<5xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

// expected-error @+1 {{'sdl.param' op only csr and mask parameters have a pattern}}
sdl.param @w : tensor<4x2xf32> {init = "normal", init_a = 1.0 : f64, kind = "dense", pattern = "small_world"}

// -----

//===----------------------------------------------------------------------===//
// masks (masked_linear)
//===----------------------------------------------------------------------===//

// expected-error @+1 {{'sdl.param' op a mask is a rank-2 tensor initialised with zeros, with mask_of and 1 <= ones <= 12}}
sdl.param @fc.weight_mask : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "mask", ones = 13 : i64, mask_of = "fc.weight"}

// -----

// expected-error @+1 {{'sdl.param' op a mask is a rank-2 tensor initialised with zeros, with mask_of and 1 <= ones <= 12}}
sdl.param @fc.weight_mask : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "mask", ones = 3 : i64}

// -----

// expected-error @+1 {{'sdl.param' op mask_of, ones and prune are for mask parameters only}}
sdl.param @fc.weight : tensor<3x4xf32> {init = "zeros", init_a = 0.0 : f64, kind = "dense", ones = 3 : i64}

// -----

func.func @f(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>, %m: tensor<3x5xf32>) -> tensor<?x3xf32> {
  // expected-error @+1 {{'sdl.masked_linear' op mask must have the dense weight's type 'tensor<3x4xf32>'}}
  %y = sdl.masked_linear %x, %w, %m : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3x5xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}

// -----

func.func @f(%dy: tensor<?x3xf32>, %w: tensor<3x4xf32>, %m: tensor<3x4xf32>) -> tensor<?x5xf32> {
  // expected-error @+1 {{'sdl.masked_linear_grad_input' op result}}
  %dx = sdl.masked_linear_grad_input %dy, %w, %m : (tensor<?x3xf32>, tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<?x5xf32>
  return %dx : tensor<?x5xf32>
}

// -----

func.func @f(%dy: tensor<?x3xf32>, %x: tensor<?x4xf32>, %m: tensor<3x4xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{'sdl.masked_linear_grad_weight' op result type must equal the mask type 'tensor<3x4xf32>'}}
  %dw = sdl.masked_linear_grad_weight %dy, %x, %m : (tensor<?x3xf32>, tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<4x3xf32>
  return %dw : tensor<4x3xf32>
}
