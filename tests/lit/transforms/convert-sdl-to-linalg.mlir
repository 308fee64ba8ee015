// convert-sdl-to-linalg, run after sdl-finalize-abi (which provides the CSR
// weights as sparse_tensor.assemble results): every sdl op becomes
// linalg.generic (plus tensor ops for concat/slice) on possibly sparse
// tensors, ready for the sparsifier.
// RUN: sparsec-opt %s -split-input-file -sdl-finalize-abi -convert-sdl-to-linalg -verify-diagnostics -mlir-print-local-scope \
// RUN:   | FileCheck %s --implicit-check-not='= sdl.' --implicit-check-not=sdl.param \
// RUN:       -DCSR='#sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>'
// The gradient of a CSR weight is computed on its pattern only: no dense
// out x in matrix exists anywhere in the train function.
// RUN: sparsec-opt %s -split-input-file -sdl-finalize-abi -convert-sdl-to-linalg -verify-diagnostics \
// RUN:   | FileCheck %s --check-prefix=NODENSE

// A 8 -> 4 (CSR) -> 3 MLP with cross-entropy (sparsec --emit=sdl-train).

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Tiny {
  sdl.param @fc1.weight : tensor<4x8xf32, #CSR> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "csr", nnz = 16 : i64}
  sdl.param @fc1.bias : tensor<4xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.weight : tensor<3x4xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.bias : tensor<3xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @forward(%arg0: tensor<?x8xf32> {sdl.input = "x"}) -> tensor<?x3xf32> attributes {sdl.entry = "forward", sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<4x8xf32, #CSR>
    %1 = sdl.get_param @fc1.bias : tensor<4xf32>
    %2 = sdl.linear %arg0, %0, %1 : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
    %3 = sdl.relu %2 : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %4 = sdl.get_param @fc2.weight : tensor<3x4xf32>
    %5 = sdl.get_param @fc2.bias : tensor<3xf32>
    %6 = sdl.linear %3, %4, %5 : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    return %6 : tensor<?x3xf32>
  }
  func.func @train(%arg0: tensor<?x8xf32> {sdl.input = "x"}, %arg1: tensor<?xi64> {sdl.target = "y"}) -> (tensor<f32> {sdl.loss}, tensor<4x8xf32, #CSR> {sdl.grad_of = "fc1.weight"}, tensor<4xf32> {sdl.grad_of = "fc1.bias"}, tensor<3x4xf32> {sdl.grad_of = "fc2.weight"}, tensor<3xf32> {sdl.grad_of = "fc2.bias"}) attributes {sdl.entry = "train", sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<4x8xf32, #CSR>
    %1 = sdl.get_param @fc1.bias : tensor<4xf32>
    %2 = sdl.linear %arg0, %0, %1 : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
    %3 = sdl.relu %2 : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %4 = sdl.get_param @fc2.weight : tensor<3x4xf32>
    %5 = sdl.get_param @fc2.bias : tensor<3xf32>
    %6 = sdl.linear %3, %4, %5 : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    %7 = sdl.cross_entropy_loss %6, %arg1 : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    %8 = sdl.cross_entropy_loss_grad %6, %arg1 : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<?x3xf32>
    %9 = sdl.linear_grad_input %8, %4 : (tensor<?x3xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
    %10 = sdl.linear_grad_weight %8, %3, %4 : (tensor<?x3xf32>, tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    %11 = sdl.reduce_batch %8 : (tensor<?x3xf32>) -> tensor<3xf32>
    %12 = sdl.relu_grad %2, %9 : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %13 = sdl.linear_grad_weight %12, %arg0, %0 : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR>
    %14 = sdl.reduce_batch %12 : (tensor<?x4xf32>) -> tensor<4xf32>
    return %7, %13, %14, %10, %11 : tensor<f32>, tensor<4x8xf32, #CSR>, tensor<4xf32>, tensor<3x4xf32>, tensor<3xf32>
  }
}


// CHECK-LABEL: module @Tiny
// CHECK-LABEL: func.func @sparsec_kernel_Tiny_forward(
// CHECK-SAME: %[[X:[^:]+]]: memref<?x8xf32>
// CHECK: %[[XT:.+]] = bufferization.to_tensor %[[X]]
// CHECK: %[[W1:.+]] = sparse_tensor.assemble {{.+}} to tensor<4x8xf32, [[CSR]]>
// CHECK: %[[B1:.+]] = bufferization.to_tensor %{{.+}} : memref<4xf32> to tensor<4xf32>
// The CSR layer runs feature-major: x is transposed, the bias broadcast into
// the accumulator yT(o, b), then yT(o, b) += W(o, i) * xT(i, b) with dims
// (o, i, b) -- the batch loop innermost -- and yT is transposed back.
// CHECK: %[[XTT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[XT]] : tensor<?x8xf32>) outs(%{{.+}} : tensor<8x?xf32>)
// CHECK: %[[INIT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[B1]] : tensor<4xf32>) outs(%{{.+}} : tensor<4x?xf32>)
// CHECK: %[[HT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>], iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[W1]], %[[XTT]] : tensor<4x8xf32, [[CSR]]>, tensor<8x?xf32>) outs(%[[INIT]] : tensor<4x?xf32>)
// CHECK-NEXT: ^bb0(%[[A:[^:]+]]: f32, %[[B:[^:]+]]: f32, %[[C:[^:]+]]: f32):
// CHECK-NEXT: %[[M:.+]] = arith.mulf %[[A]], %[[B]] : f32
// CHECK-NEXT: %[[S:.+]] = arith.addf %[[C]], %[[M]] : f32
// CHECK-NEXT: linalg.yield %[[S]] : f32
// CHECK: %[[H:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[HT]] : tensor<4x?xf32>) outs(%{{.+}} : tensor<?x4xf32>)
// ReLU.
// CHECK: %[[R:.+]] = linalg.generic {{.+}} ins(%[[H]] : tensor<?x4xf32>)
// CHECK: arith.maximumf
// The second layer's weight is dense.
// CHECK: %[[OUT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], {{.+}} ins(%[[R]], %{{.+}} : tensor<?x4xf32>, tensor<3x4xf32>)
// CHECK: bufferization.materialize_in_destination %[[OUT]] in restrict writable
// CHECK-NEXT: return

// CHECK-LABEL: func.func @sparsec_kernel_Tiny_train(
// CHECK-SAME: %[[X:[^:]+]]: memref<?x8xf32>, %[[Y:[^:]+]]: memref<?xi64>, %[[POS:[^:]+]]: memref<5xi32>, %[[CRD:[^:]+]]: memref<16xi32>,
// CHECK: %[[XT:.+]] = bufferization.to_tensor %[[X]]
// CHECK: %[[YT:.+]] = bufferization.to_tensor %[[Y]]
// CHECK: %[[POST:.+]] = bufferization.to_tensor %[[POS]]
// CHECK: %[[CRDT:.+]] = bufferization.to_tensor %[[CRD]]
// CHECK: %[[W1:.+]] = sparse_tensor.assemble (%[[POST]], %[[CRDT]]), %{{.+}} to tensor<4x8xf32, [[CSR]]>
// CHECK: %[[PRET:.+]] = linalg.generic {{.+}} ins(%[[W1]], %{{.+}} : tensor<4x8xf32, [[CSR]]>, tensor<8x?xf32>)
// CHECK: %[[PRE:.+]] = linalg.generic {{.+}} ins(%[[PRET]] : tensor<4x?xf32>) outs(%{{.+}} : tensor<?x4xf32>)
// CHECK: %[[LOGITS:.+]] = linalg.generic {{.+}} ins(%{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<3x4xf32>)

// Cross-entropy: row max (from -inf), row sum of exp(x - max), then the
// batch total of max + log(sum) - x[b, label[b]], divided by the batch.
// CHECK: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK: %[[MAXINIT:.+]] = linalg.fill ins(%[[NEGINF]] : f32) outs(%{{.+}} : tensor<?xf32>)
// CHECK: %[[MAX:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%[[LOGITS]] : tensor<?x3xf32>) outs(%[[MAXINIT]] : tensor<?xf32>)
// CHECK: arith.maximumf
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%[[LOGITS]], %[[MAX]] : tensor<?x3xf32>, tensor<?xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.subf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.addf
// CHECK: %[[TOTAL:.+]] = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]} ins(%[[MAX]], %[[SUM]], %[[YT]] : tensor<?xf32>, tensor<?xf32>, tensor<?xi64>) outs(%{{.+}} : tensor<f64>)
// CHECK-NEXT: ^bb0(%[[RMAX:[^:]+]]: f32, %[[RSUM:[^:]+]]: f32, %[[LABEL:[^:]+]]: i64, %[[ACC:[^:]+]]: f64):
// CHECK-NEXT: %[[ROW:.+]] = linalg.index 0 : index
// CHECK-NEXT: %[[COL:.+]] = arith.index_cast %[[LABEL]] : i64 to index
// CHECK-NEXT: %[[PICK:.+]] = tensor.extract %[[LOGITS]][%[[ROW]], %[[COL]]] : tensor<?x3xf32>
// CHECK-NEXT: %[[LOG:.+]] = math.log %[[RSUM]] : f32
// CHECK-NEXT: %[[LSE:.+]] = arith.addf %[[RMAX]], %[[LOG]] : f32
// CHECK-NEXT: %[[TERM:.+]] = arith.subf %[[LSE]], %[[PICK]] : f32
// The loss is accumulated in f64.
// CHECK-NEXT: %[[WIDE:.+]] = arith.extf %[[TERM]] : f32 to f64
// CHECK-NEXT: %[[NEXT:.+]] = arith.addf %[[ACC]], %[[WIDE]] : f64
// CHECK-NEXT: linalg.yield %[[NEXT]] : f64
// CHECK: %[[T64:.+]] = tensor.extract %[[TOTAL]][] : tensor<f64>
// CHECK-NEXT: %[[T:.+]] = arith.truncf %[[T64]] : f64 to f32
// CHECK: %[[NB:.+]] = arith.uitofp %{{.+}} : i64 to f32
// CHECK-NEXT: %[[LOSS:.+]] = arith.divf %[[T]], %[[NB]] : f32
// CHECK-NEXT: %[[LOSST:.+]] = tensor.from_elements %[[LOSS]] : tensor<f32>
// Its gradient: (softmax - onehot(label)) / batch.
// CHECK: %[[DLOGITS:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%[[LOGITS]], %{{.+}}, %{{.+}}, %[[YT]] : tensor<?x3xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xi64>)
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: linalg.index 1
// CHECK: arith.cmpi eq
// CHECK: arith.select

// ReLU backward, then the SDDMM: dW(o, i) = sum_b dh(b, o) x(b, i), computed
// only at W's stored entries, into a zeroed copy of W's pattern, reading
// feature-major copies dhT(o, b), xT(i, b) so the batch loop is unit-stride.
// CHECK: %[[DH:.+]] = linalg.generic {{.+}} ins(%[[PRE]], %{{.+}} : tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.constant 0.0
// CHECK-NEXT: arith.cmpf ogt
// CHECK-NEXT: arith.select
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<16xf32>) -> tensor<16xf32>
// CHECK: %[[PATTERN:.+]] = sparse_tensor.assemble (%[[POST]], %[[CRDT]]), %[[ZERO]] : (tensor<5xi32>, tensor<16xi32>), tensor<16xf32> to tensor<4x8xf32, [[CSR]]>
// CHECK: %[[DHT:.+]] = linalg.generic {{.+}} ins(%[[DH]] : tensor<?x4xf32>) outs(%{{.+}} : tensor<4x?xf32>)
// CHECK: %[[XTT2:.+]] = linalg.generic {{.+}} ins(%[[XT]] : tensor<?x8xf32>) outs(%{{.+}} : tensor<8x?xf32>)
// CHECK: %[[GW1:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[DHT]], %[[XTT2]] : tensor<4x?xf32>, tensor<8x?xf32>) outs(%[[PATTERN]] : tensor<4x8xf32, [[CSR]]>)
// CHECK-NEXT: ^bb0(%[[DY:[^:]+]]: f32, %[[XV:[^:]+]]: f32, %[[OLD:[^:]+]]: f32):
// CHECK-NEXT: %[[U:.+]] = sparse_tensor.unary %[[OLD]] : f32 to f32
// CHECK-NEXT: present = {
// CHECK-NEXT: ^bb0(%{{.+}}: f32):
// CHECK-NEXT: %[[P:.+]] = arith.mulf %[[DY]], %[[XV]] : f32
// CHECK-NEXT: sparse_tensor.yield %[[P]] : f32
// CHECK-NEXT: }
// CHECK-NEXT: absent = {
// CHECK-NEXT: }
// CHECK-NEXT: %[[Z:.+]] = arith.constant 0.0
// CHECK-NEXT: %[[RED:.+]] = sparse_tensor.reduce %[[OLD]], %[[U]], %[[Z]] : f32 {
// CHECK-NEXT: ^bb0(%[[R0:[^:]+]]: f32, %[[R1:[^:]+]]: f32):
// CHECK-NEXT: %[[RS:.+]] = arith.addf %[[R0]], %[[R1]] : f32
// CHECK-NEXT: sparse_tensor.yield %[[RS]] : f32
// CHECK-NEXT: }
// CHECK-NEXT: linalg.yield %[[RED]] : f32
// CHECK-NEXT: } -> tensor<4x8xf32, [[CSR]]>
// Bias gradient: sum over the batch.
// CHECK: linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%[[DH]] : tensor<?x4xf32>) outs(%{{.+}} : tensor<4xf32>)
// CHECK: %[[L:.+]] = tensor.extract %[[LOSST]][] : tensor<f32>
// CHECK: sparse_tensor.disassemble %[[GW1]]
// CHECK: return %[[L]] : f32

// NODENSE-LABEL: func.func @sparsec_kernel_Tiny_train(
// NODENSE-NOT: tensor<4x8xf32>
// NODENSE: return

// -----

// A CSR second layer: its input gradient is a transposed SpMM. BCE loss.

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Mixed {
  sdl.param @fc1.weight : tensor<5x6xf32> {init = "fan_in_uniform", init_a = 6.000000e+00 : f64, kind = "dense"}
  sdl.param @fc1.bias : tensor<5xf32> {init = "fan_in_uniform", init_a = 6.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.weight : tensor<3x5xf32, #CSR> {init = "fan_in_uniform", init_a = 2.6666666666666665 : f64, kind = "csr", nnz = 8 : i64}
  sdl.param @fc2.bias : tensor<3xf32> {init = "fan_in_uniform", init_a = 2.6666666666666665 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @forward(%arg0: tensor<?x6xf32> {sdl.input = "x"}) -> tensor<?x3xf32> attributes {sdl.entry = "forward", sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<5x6xf32>
    %1 = sdl.get_param @fc1.bias : tensor<5xf32>
    %2 = sdl.linear %arg0, %0, %1 : (tensor<?x6xf32>, tensor<5x6xf32>, tensor<5xf32>) -> tensor<?x5xf32>
    %3 = sdl.relu %2 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %4 = sdl.get_param @fc2.weight : tensor<3x5xf32, #CSR>
    %5 = sdl.get_param @fc2.bias : tensor<3xf32>
    %6 = sdl.linear %3, %4, %5 : (tensor<?x5xf32>, tensor<3x5xf32, #CSR>, tensor<3xf32>) -> tensor<?x3xf32>
    return %6 : tensor<?x3xf32>
  }
  func.func @train(%arg0: tensor<?x6xf32> {sdl.input = "x"}, %arg1: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<f32> {sdl.loss}, tensor<5x6xf32> {sdl.grad_of = "fc1.weight"}, tensor<5xf32> {sdl.grad_of = "fc1.bias"}, tensor<3x5xf32, #CSR> {sdl.grad_of = "fc2.weight"}, tensor<3xf32> {sdl.grad_of = "fc2.bias"}) attributes {sdl.entry = "train", sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<5x6xf32>
    %1 = sdl.get_param @fc1.bias : tensor<5xf32>
    %2 = sdl.linear %arg0, %0, %1 : (tensor<?x6xf32>, tensor<5x6xf32>, tensor<5xf32>) -> tensor<?x5xf32>
    %3 = sdl.relu %2 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %4 = sdl.get_param @fc2.weight : tensor<3x5xf32, #CSR>
    %5 = sdl.get_param @fc2.bias : tensor<3xf32>
    %6 = sdl.linear %3, %4, %5 : (tensor<?x5xf32>, tensor<3x5xf32, #CSR>, tensor<3xf32>) -> tensor<?x3xf32>
    %7 = sdl.bce_with_logits_loss %6, %arg1 : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    %8 = sdl.bce_with_logits_loss_grad %6, %arg1 : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
    %9 = sdl.linear_grad_input %8, %4 : (tensor<?x3xf32>, tensor<3x5xf32, #CSR>) -> tensor<?x5xf32>
    %10 = sdl.linear_grad_weight %8, %3, %4 : (tensor<?x3xf32>, tensor<?x5xf32>, tensor<3x5xf32, #CSR>) -> tensor<3x5xf32, #CSR>
    %11 = sdl.reduce_batch %8 : (tensor<?x3xf32>) -> tensor<3xf32>
    %12 = sdl.relu_grad %2, %9 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %13 = sdl.linear_grad_weight %12, %arg0, %0 : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>
    %14 = sdl.reduce_batch %12 : (tensor<?x5xf32>) -> tensor<5xf32>
    return %7, %13, %14, %10, %11 : tensor<f32>, tensor<5x6xf32>, tensor<5xf32>, tensor<3x5xf32, #CSR>, tensor<3xf32>
  }
}


// CHECK-LABEL: module @Mixed
// CHECK-LABEL: func.func @sparsec_kernel_Mixed_train(
// CHECK-SAME: %[[X:[^:]+]]: memref<?x6xf32>, %[[Y:[^:]+]]: memref<?x3xf32>,
// CHECK: %[[YT:.+]] = bufferization.to_tensor %[[Y]]
// CHECK: %[[W2:.+]] = sparse_tensor.assemble {{.+}} to tensor<3x5xf32, [[CSR]]>
// CHECK: %[[OUTT:.+]] = linalg.generic {{.+}} ins(%[[W2]], %{{.+}} : tensor<3x5xf32, [[CSR]]>, tensor<5x?xf32>) outs(%{{.+}} : tensor<3x?xf32>)
// CHECK: %[[OUT:.+]] = linalg.generic {{.+}} ins(%[[OUTT]] : tensor<3x?xf32>) outs(%{{.+}} : tensor<?x3xf32>)
// BCE with logits: sum of max(x, 0) - x t + log1p(exp(-|x|)) / numel, as
// one f64 partial sum per column (independent accumulators in the innermost
// loop), then the partials.
// CHECK: %[[PARTIAL:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>], iterator_types = ["reduction", "parallel"]} ins(%[[OUT]], %[[YT]] : tensor<?x3xf32>, tensor<?x3xf32>) outs(%{{.+}} : tensor<3xf64>)
// CHECK: arith.maximumf
// CHECK: arith.mulf
// CHECK: math.absf
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: math.log1p
// CHECK: %[[TOTAL:.+]] = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>], iterator_types = ["reduction"]} ins(%[[PARTIAL]] : tensor<3xf64>) outs(%{{.+}} : tensor<f64>)
// Its gradient: (sigmoid(x) - t) / numel.
// CHECK: %[[DOUT:.+]] = linalg.generic {{.+}} ins(%[[OUT]], %[[YT]] : tensor<?x3xf32>, tensor<?x3xf32>)
// CHECK: arith.negf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.addf
// CHECK-NEXT: arith.divf
// CHECK-NEXT: arith.subf
// CHECK-NEXT: arith.mulf
// Transposed SpMM: dh(b, i) += dout(b, o) * W(o, i), W CSR.
// CHECK: %[[DH:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d2)>], iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[DOUT]], %[[W2]] : tensor<?x3xf32>, tensor<3x5xf32, [[CSR]]>) outs(%{{.+}} : tensor<?x5xf32>)
// CHECK: %[[DOUTT:.+]] = linalg.generic {{.+}} ins(%[[DOUT]] : tensor<?x3xf32>) outs(%{{.+}} : tensor<3x?xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[DOUTT]], %{{.+}} : tensor<3x?xf32>, tensor<5x?xf32>) outs(%{{.+}} : tensor<3x5xf32, [[CSR]]>)
// CHECK: sparse_tensor.unary
// CHECK: sparse_tensor.reduce
// The first layer's weight is dense: a plain outer product.
// CHECK: linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.+}}, %{{.+}} : tensor<5x?xf32>, tensor<6x?xf32>) outs(%{{.+}} : tensor<5x6xf32>)
// CHECK: return

// -----

// Embedding, concat, add, matmul and MSE.

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


// CHECK-LABEL: module @Rich
// CHECK-LABEL: func.func @sparsec_kernel_Rich_train(
// CHECK-SAME: %[[IDS:[^:]+]]: memref<?xi64>, %[[X:[^:]+]]: memref<?x6xf32>, %[[Y:[^:]+]]: memref<?x3xf32>, %[[TABLE:[^:]+]]: memref<10x4xf32>,
// CHECK-SAME: %[[DTABLE:[^:]+]]: memref<?x4xf32>, %{{[^:]+}}: memref<15xf32>, %{{[^:]+}}: memref<5xf32>, %{{[^:]+}}: memref<9x3xf32>) -> f32
// CHECK: %[[IDST:.+]] = bufferization.to_tensor %[[IDS]]
// CHECK: %[[YT:.+]] = bufferization.to_tensor %[[Y]]
// CHECK: %[[TABLET:.+]] = bufferization.to_tensor %[[TABLE]]
// CHECK: %[[WT:.+]] = bufferization.to_tensor %{{.+}} : memref<9x3xf32> to tensor<9x3xf32>
// Embedding: a gather from the table, one row copy per id, prefetching the
// row of the id 8 positions on (clamped to the last id) from the caller's
// buffer.
// CHECK: %[[E:.+]] = scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %{{.+}}) -> (tensor<?x4xf32>)
// CHECK: %[[C8:.+]] = arith.constant 8 : index
// CHECK-NEXT: %[[PLUS:.+]] = arith.addi %[[I]], %[[C8]] : index
// CHECK-NEXT: %[[AHEAD:.+]] = arith.minui %[[PLUS]], %{{.+}} : index
// CHECK-NEXT: %[[NEXT:.+]] = tensor.extract %[[IDST]][%[[AHEAD]]] : tensor<?xi64>
// CHECK-NEXT: %[[NROW:.+]] = arith.index_cast %[[NEXT]] : i64 to index
// CHECK-NEXT: memref.prefetch %[[TABLE]][%[[NROW]], %{{.+}}], read, locality<3>, data : memref<10x4xf32>
// CHECK-NEXT: %[[ID:.+]] = tensor.extract %[[IDST]][%[[I]]] : tensor<?xi64>
// CHECK-NEXT: %[[ROW:.+]] = arith.index_cast %[[ID]] : i64 to index
// CHECK-NEXT: %[[SLICE:.+]] = tensor.extract_slice %[[TABLET]][%[[ROW]], 0] [1, 4] [1, 1] : tensor<10x4xf32> to tensor<1x4xf32>
// CHECK-NEXT: %[[INS:.+]] = tensor.insert_slice %[[SLICE]] into %[[ACC]][%[[I]], 0] [1, 4] [1, 1]
// CHECK-NEXT: scf.yield %[[INS]]
// add(r, r)
// CHECK: %[[A:.+]] = linalg.generic {{.+}} ins(%[[R:.+]], %[[R]] : tensor<?x5xf32>, tensor<?x5xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.addf
// Concat: both inputs inserted into one tensor.
// CHECK: %[[C0:.+]] = tensor.insert_slice %[[E]] into %{{.+}}[0, 0] [%{{.+}}, 4] [1, 1] : tensor<?x4xf32> into tensor<?x9xf32>
// CHECK: %[[C:.+]] = tensor.insert_slice %[[A]] into %[[C0]][0, 4] [%{{.+}}, 5] [1, 1] : tensor<?x5xf32> into tensor<?x9xf32>
// Matmul reads its right operand as (in, out).
// CHECK: %[[OUT:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[C]], %[[WT]] : tensor<?x9xf32>, tensor<9x3xf32>)
// MSE: sum of (x - t)^2 / numel, gradient 2 (x - t) / numel.
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]} ins(%[[OUT]], %[[YT]] : tensor<?x3xf32>, tensor<?x3xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: %[[D:.+]] = arith.subf
// CHECK-NEXT: arith.mulf %[[D]], %[[D]]
// CHECK: arith.constant 2.0
// CHECK: %[[DOUT:.+]] = linalg.generic {{.+}} ins(%[[OUT]], %[[YT]] : tensor<?x3xf32>, tensor<?x3xf32>)
// matmul_grad_lhs: dc(b, i) = sum_o dout(b, o) w(i, o).
// CHECK: %[[DC:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d2)>], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[DOUT]], %[[WT]] : tensor<?x3xf32>, tensor<9x3xf32>) outs(%{{.+}} : tensor<?x9xf32>)
// matmul_grad_rhs: dw(i, o) = sum_b c(b, i) dout(b, o).
// (batch-major operands are transposed first: the batch loop is unit-stride)
// CHECK: %[[CT:.+]] = linalg.generic {{.+}} ins(%[[C]] : tensor<?x9xf32>) outs(%{{.+}} : tensor<9x?xf32>)
// CHECK: %[[DOUTT2:.+]] = linalg.generic {{.+}} ins(%[[DOUT]] : tensor<?x3xf32>) outs(%{{.+}} : tensor<3x?xf32>)
// CHECK: %[[DW:.+]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[CT]], %[[DOUTT2]] : tensor<9x?xf32>, tensor<3x?xf32>) outs(%{{.+}} : tensor<9x3xf32>)
// The concat's gradient is sliced.
// CHECK: %[[DE:.+]] = tensor.extract_slice %[[DC]][0, 0] [%{{.+}}, 4] [1, 1] : tensor<?x9xf32> to tensor<?x4xf32>
// CHECK: %[[DA:.+]] = tensor.extract_slice %[[DC]][0, 4] [%{{.+}}, 5] [1, 1] : tensor<?x9xf32> to tensor<?x5xf32>
// CHECK: linalg.generic {{.+}} ins(%[[DA]], %[[DA]] : tensor<?x5xf32>, tensor<?x5xf32>)
// The embedding gradient is the rows themselves (the ids are the input).
// CHECK: bufferization.materialize_in_destination %[[DE]] in restrict writable %[[DTABLE]] : (tensor<?x4xf32>, memref<?x4xf32>) -> ()
// CHECK: bufferization.materialize_in_destination %[[DW]] in restrict writable
// CHECK: return

// -----

// Errors. A CSR gradient needs the weight's pattern from
// sparse_tensor.assemble: a CSR weight coming from anywhere else is rejected.

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @NoPattern {
  func.func @forward(%x: tensor<?x8xf32> {sdl.input = "x"}) -> tensor<?x8xf32> attributes {sdl.entry = "forward"} {
    return %x : tensor<?x8xf32>
  }
  func.func @helper(%dy: tensor<?x4xf32>, %x: tensor<?x8xf32>, %w: tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR> {
    // expected-error @+1 {{'sdl.linear_grad_weight' op needs the CSR weight's pattern from sparse_tensor.assemble (run sdl-finalize-abi first)}}
    %g = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR>
    return %g : tensor<4x8xf32, #CSR>
  }
}
