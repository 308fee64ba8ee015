// sdl-lower-sparse-linear: the kernels of a rank-2 CSR (or dense) linear
// layer become explicit loops on 64-wide batch blocks (f32; 32-wide for f64). Activations are
// copied into [ceil(B/64), F, 64] blocks (padding lanes zero) and back; the
// loops over W's rows (forward, SDDMM) or over the blocks (input gradient)
// are scf.parallel marked sdl.parallel; accumulators are loop-carried
// vectors. Ops it does not handle are left for convert-sdl-to-linalg.
// RUN: sparsec-opt %s -split-input-file -sdl-lower-sparse-linear -canonicalize | FileCheck %s

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @kernels(
func.func @kernels(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<16xi32>,
                   %val: tensor<16xf32>, %b: tensor<4xf32>, %dy: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<16xi32>), tensor<16xf32> to tensor<4x8xf32, #CSR>
  // Forward: x in blocks, for each block the rows in parallel, the row's
  // output tile (bias broadcast) carried across its stored weights.
  // CHECK: %[[NB:.+]] = arith.ceildivui %{{.+}}, %c64 : index
  // CHECK: %[[XB:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<?x8x64xf32>)
  // CHECK: arith.minui
  // CHECK: tensor.extract %{{.+}} : tensor<?x8xf32>
  // CHECK: arith.select
  // CHECK: %[[XBM:.+]] = bufferization.to_buffer %[[XB]] read_only : tensor<?x8x64xf32> to memref<?x8x64xf32>
  // CHECK: %[[YB:.+]] = memref.alloc(%{{.+}}) : memref<?x4x64xf32>
  // CHECK: scf.for %[[BLK:.+]] = %c0 to %{{.+}} step %c1 {
  // CHECK: scf.parallel (%[[ROW:.+]]) = (%c0) to (%c4) step (%c1) {
  // CHECK: vector.broadcast %{{.+}} : f32 to vector<64xf32>
  // CHECK: scf.for {{.+}} iter_args(%[[ACC:.+]] = %{{.+}}) -> (vector<64xf32>) {
  // CHECK: %[[XV:.+]] = vector.load %[[XBM]][%[[BLK]], %{{.+}}, %c0] : memref<?x8x64xf32>, vector<64xf32>
  // CHECK: vector.fma %{{.+}}, %[[XV]], %[[ACC]] : vector<64xf32>
  // CHECK: vector.store %{{.+}}, %[[YB]][%[[BLK]], %[[ROW]], %c0]
  // CHECK: } {sdl.parallel}
  // CHECK: bufferization.to_tensor %[[YB]] restrict writable
  // CHECK: arith.divui
  // CHECK: arith.remui
  %y = sdl.linear %x, %w, %b : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
  // Input gradient: the blocks in parallel; each row's dy tile scattered
  // into dx's rows named by the row's coordinates (zeroed first).
  // CHECK: %[[DXB:.+]] = memref.alloc(%{{.+}}) : memref<?x8x64xf32>
  // CHECK: scf.parallel (%[[B2:.+]]) = (%c0) to (%{{.+}}) step (%c1) {
  // CHECK: vector.store %{{.+}}, %[[DXB]][%[[B2]], %{{.+}}, %c0]
  // CHECK: vector.load %[[DXB]]
  // CHECK: vector.fma
  // CHECK: vector.store %{{.+}}, %[[DXB]]
  // CHECK: } {sdl.parallel}
  %dx = sdl.linear_grad_input %dy, %w : (tensor<?x4xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x8xf32>
  // Weight gradient (SDDMM): a fresh nnz buffer (zero-filled only for an
  // empty batch; no dense<0.0> constant of nnz elements), one horizontal sum
  // per stored entry and block, reassembled with W's pattern.
  // CHECK: %[[DW:.+]] = memref.alloc() : memref<16xf32>
  // CHECK: scf.if
  // CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[DW]] : memref<16xf32>)
  // CHECK: scf.parallel
  // CHECK: vector.reduction <add>, %{{.+}} fastmath<reassoc> : vector<64xf32> into f32
  // CHECK: memref.store %{{.+}}, %[[DW]]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[DWT:.+]] = bufferization.to_tensor %[[DW]] restrict writable
  // CHECK: sparse_tensor.assemble (%{{.+}}, %{{.+}}), %[[DWT]]
  // CHECK-NOT: sdl.linear
  %dw = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR>
  return %y, %dx, %dw : tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>
}

// -----

// f64: 32 lanes per block (eight 256-bit registers as well).
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @f64(
// CHECK: arith.ceildivui %{{.+}}, %c32 : index
// CHECK: memref.alloc(%{{.+}}) : memref<?x4x32xf64>
// CHECK: vector.fma {{.+}} : vector<32xf64>
func.func @f64(%x: tensor<?x8xf64>, %pos: tensor<5xi32>, %crd: tensor<16xi32>,
               %val: tensor<16xf64>) -> tensor<?x4xf64> {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<16xi32>), tensor<16xf64> to tensor<4x8xf64, #CSR>
  %y = sdl.linear %x, %w : (tensor<?x8xf64>, tensor<4x8xf64, #CSR>) -> tensor<?x4xf64>
  return %y : tensor<?x4xf64>
}

// -----

// Left alone: a CSR weight that is not rebuilt by sparse_tensor.assemble (no
// arrays to loop over) and a rank-3 activation.
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @untouched(
// CHECK: sdl.linear %{{.+}}, %{{.+}} : (tensor<?x8xf32>, tensor<4x8xf32, #sparse>)
// CHECK: sdl.linear %{{.+}}, %{{.+}} : (tensor<?x3x8xf32>, tensor<4x8xf32, #sparse>)
// CHECK-NOT: scf.parallel
func.func @untouched(%x: tensor<?x8xf32>, %w: tensor<4x8xf32, #CSR>, %x3: tensor<?x3x8xf32>,
                     %pos: tensor<5xi32>, %crd: tensor<16xi32>, %val: tensor<16xf32>)
    -> (tensor<?x4xf32>, tensor<?x3x4xf32>) {
  %y = sdl.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
  %wa = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<16xi32>), tensor<16xf32> to tensor<4x8xf32, #CSR>
  %y3 = sdl.linear %x3, %wa : (tensor<?x3x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x3x4xf32>
  return %y, %y3 : tensor<?x4xf32>, tensor<?x3x4xf32>
}

// -----

// A dense weight takes the same loops: a row holds every column (k is the
// column, W(o, k) is read in place) and dW is a fresh [O, I] buffer.
// CHECK-LABEL: func.func @dense(
// CHECK: scf.parallel (%[[ROW:.+]]) = (%c0) to (%c4) step (%c1) {
// CHECK: scf.for %[[K:.+]] = %c0 to %c8 step %c1 iter_args(%{{.+}}) -> (vector<64xf32>) {
// CHECK: tensor.extract %{{.+}}[%[[ROW]], %[[K]]] : tensor<4x8xf32>
// CHECK: vector.fma
// CHECK: } {sdl.parallel}
// CHECK: %[[DW:.+]] = memref.alloc() : memref<4x8xf32>
// CHECK: scf.parallel (%[[R2:.+]]) = (%c0) to (%c4) step (%c1) {
// CHECK: vector.reduction <add>
// CHECK: memref.store %{{.+}}, %[[DW]][%[[R2]], %{{.+}}] : memref<4x8xf32>
// CHECK: } {sdl.parallel}
// CHECK: %[[DWT:.+]] = bufferization.to_tensor %[[DW]] restrict writable
// CHECK: return %{{.+}}, %[[DWT]]
// CHECK-NOT: sdl.linear
func.func @dense(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %dy: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<4x8xf32>) {
  %y = sdl.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %dw = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y, %dw : tensor<?x4xf32>, tensor<4x8xf32>
}
