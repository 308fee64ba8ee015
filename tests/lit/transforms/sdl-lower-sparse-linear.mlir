// sdl-lower-sparse-linear: the kernels of a rank-2 CSR (or dense) linear
// layer become explicit loops on 64-wide batch blocks (f32; 32-wide for f64). Activations are
// copied into [ceil(B/64), F, 64] blocks (64-byte aligned, padding lanes
// zero) and back, by (block, 64-column tile) in parallel; the loops over W's
// rows (forward, SDDMM) or over the blocks (input gradient) are scf.parallel
// marked sdl.parallel; accumulators are loop-carried vectors. relu, relu_grad
// and reduce_batch of values that have blocks work on the blocks, fused into
// the kernels where they can be; results that only go into a caller's buffer
// are computed there. Ops it does not handle are left for
// convert-sdl-to-linalg.
// RUN: sparsec-opt %s -split-input-file -sdl-lower-sparse-linear -canonicalize | FileCheck %s

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @kernels(
func.func @kernels(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<16xi32>,
                   %val: tensor<16xf32>, %b: tensor<4xf32>, %dy: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<16xi32>), tensor<16xf32> to tensor<4x8xf32, #CSR>
  // Forward: x in blocks (tiles in parallel), for each block the rows in
  // parallel, the row's output tile (bias broadcast) carried across its
  // stored weights, then the blocks copied back into [B, 4].
  // CHECK: %[[NB:.+]] = arith.ceildivui %{{.+}}, %c64 : index
  // CHECK: %[[XB:.+]] = memref.alloc(%[[NB]]) {alignment = 64 : i64} : memref<?x8x64xf32>
  // CHECK: scf.parallel
  // CHECK: arith.minui
  // CHECK: tensor.extract %{{.+}} : tensor<?x8xf32>
  // CHECK: arith.select
  // CHECK: memref.store %{{.+}}, %[[XB]]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[YB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
  // CHECK: scf.for %[[BLK:.+]] = %c0 to %{{.+}} step %c1 {
  // CHECK: scf.parallel (%[[ROW:.+]]) = (%c0) to (%c4) step (%c1) {
  // CHECK: vector.broadcast %{{.+}} : f32 to vector<64xf32>
  // CHECK: scf.for {{.+}} iter_args(%[[ACC:.+]] = %{{.+}}) -> (vector<64xf32>) {
  // CHECK: %[[XV:.+]] = vector.load %[[XB]][%[[BLK]], %{{.+}}, %c0] : memref<?x8x64xf32>, vector<64xf32>
  // CHECK: vector.fma %{{.+}}, %[[XV]], %[[ACC]] : vector<64xf32>
  // CHECK: vector.store %{{.+}}, %[[YB]][%[[BLK]], %[[ROW]], %c0]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[Y:.+]] = memref.alloc(%{{.+}}) : memref<?x4xf32>
  // CHECK: scf.parallel
  // CHECK: memref.load %[[YB]]
  // CHECK: memref.store %{{.+}}, %[[Y]]
  // CHECK: } {sdl.parallel}
  // CHECK: bufferization.to_tensor %[[Y]] restrict writable
  %y = sdl.linear %x, %w, %b : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
  // Input gradient: the blocks in parallel; each row's dy tile scattered
  // into dx's rows named by the row's coordinates (zeroed first).
  // CHECK: %[[DXB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8x64xf32>
  // CHECK: scf.parallel (%[[B2:.+]]) = (%c0) to (%{{.+}}) step (%c1) {
  // CHECK: vector.store %{{.+}}, %[[DXB]][%[[B2]], %{{.+}}, %c0]
  // CHECK: vector.load %[[DXB]]
  // CHECK: vector.fma
  // CHECK: vector.store %{{.+}}, %[[DXB]]
  // CHECK: } {sdl.parallel}
  %dx = sdl.linear_grad_input %dy, %w : (tensor<?x4xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x8xf32>
  // Weight gradient (SDDMM): a fresh nnz buffer (zero-filled only for an
  // empty batch; no dense<0.0> constant of nnz elements), one horizontal sum
  // per stored entry and block, reassembled with W's pattern; x's blocks are
  // those of the forward product. Each product of the dy and x tiles is
  // folded to 16 lanes by fused multiply-adds of its 16-lane slices; groups
  // of 4 entries of a row share one reduction tree (shuffles within quads
  // of lanes, then the quads added: 4 sums stored as one vector); the rest
  // of the row is reduced entry by entry.
  // CHECK: %[[DW:.+]] = memref.alloc() : memref<16xf32>
  // CHECK: scf.if
  // CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[DW]] : memref<16xf32>)
  // CHECK: scf.parallel
  // CHECK: vector.load %[[XB]]
  // CHECK: arith.mulf %{{.+}}, %{{.+}} : vector<16xf32>
  // CHECK-COUNT-3: vector.fma %{{.+}}, %{{.+}}, %{{.+}} : vector<16xf32>
  // CHECK: vector.shuffle %{{.+}}, %{{.+}} [0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29] : vector<16xf32>, vector<16xf32>
  // CHECK: vector.shuffle %{{.+}}, %{{.+}} [2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31] : vector<16xf32>, vector<16xf32>
  // CHECK: vector.extract_strided_slice %{{.+}} {offsets = [4], sizes = [4], strides = [1]} : vector<8xf32> to vector<4xf32>
  // CHECK: vector.store %{{.+}}, %[[DW]][%{{.+}}] : memref<16xf32>, vector<4xf32>
  // CHECK: vector.reduction <add>, %{{.+}} fastmath<reassoc> : vector<16xf32> into f32
  // CHECK: memref.store %{{.+}}, %[[DW]]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[DWT:.+]] = bufferization.to_tensor %[[DW]] restrict writable
  // CHECK: sparse_tensor.assemble (%{{.+}}, %{{.+}}), %[[DWT]]
  // CHECK-NOT: sdl.linear
  %dw = sdl.linear_grad_weight %dy, %x, %w : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR>
  return %y, %dx, %dw : tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>
}

// -----

// A layer chain: the hidden [B, 4] activations and gradients are never
// built. The relu of the first layer's output is applied as the forward
// product stores its tiles (its relu_grad reads the relu's output: the same
// sign), the relu gradient as the second layer's input gradient stores
// its tiles (gated by the relu's output blocks), and the bias gradient
// (reduce_batch of dh) is summed by the SDDMM of dh, one horizontal sum of
// each dy tile it loads (padding lanes masked; the first block stores, the
// others add). Results that only go into a caller's buffer
// (materialize_in_destination into an argument, through a disassemble for a
// CSR gradient) are computed there, with no copy.
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @chain(
// CHECK-SAME: %[[OUT:[^:]+]]: memref<?x3xf32>, %[[GW:[^:]+]]: memref<16xf32>, %[[GB:[^:]+]]: memref<4xf32>)
// CHECK-NOT: memref<?x4xf32>
// CHECK: %[[HB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
// CHECK: scf.parallel
// CHECK: vector.fma
// CHECK: %[[H:.+]] = arith.maximumf %{{.+}}, %{{.+}} : vector<64xf32>
// CHECK-NEXT: vector.store %[[H]], %[[HB]]
// CHECK-NEXT: scf.reduce
// CHECK-NEXT: } {sdl.parallel}
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK: } {sdl.parallel}
// CHECK: %[[DHB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
// CHECK: scf.parallel
// CHECK: %[[ACC:.+]] = scf.for
// CHECK: vector.fma
// CHECK: %[[HV:.+]] = vector.load %[[HB]]
// CHECK-NEXT: %[[POS:.+]] = arith.cmpf ogt, %[[HV]], %{{.+}} : vector<64xf32>
// CHECK-NEXT: %[[DH:.+]] = arith.select %[[POS]], %[[ACC]], %{{.+}} : vector<64xi1>, vector<64xf32>
// CHECK-NEXT: vector.store %[[DH]], %[[DHB]]
// CHECK-NEXT: scf.reduce
// CHECK-NEXT: } {sdl.parallel}
// CHECK: scf.if
// CHECK-NEXT: linalg.fill ins(%{{.+}} : f32) outs(%[[GW]] : memref<16xf32>)
// CHECK-NEXT: linalg.fill ins(%{{.+}} : f32) outs(%[[GB]] : memref<4xf32>)
// CHECK: scf.parallel
// CHECK: %[[DY:.+]] = vector.load %[[DHB]]
// CHECK: %[[LIVE:.+]] = vector.create_mask %{{.+}} : vector<64xi1>
// CHECK-NEXT: %[[DYL:.+]] = arith.select %[[LIVE]], %[[DY]], %{{.+}} : vector<64xi1>, vector<64xf32>
// CHECK-NEXT: %[[DB:.+]] = vector.reduction <add>, %[[DYL]] fastmath<reassoc> : vector<64xf32> into f32
// CHECK-NEXT: scf.if
// CHECK-NEXT: memref.store %[[DB]], %[[GB]]
// CHECK: vector.reduction <add>
// CHECK: memref.store %{{.+}}, %[[GW]]
// CHECK: } {sdl.parallel}
// CHECK-NOT: sparse_tensor.disassemble
// CHECK-NOT: materialize_in_destination
// CHECK-NOT: scf.parallel
// CHECK: return
func.func @chain(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<16xi32>,
                 %val: tensor<16xf32>, %b: tensor<4xf32>, %w2: tensor<3x4xf32>,
                 %dz: tensor<?x3xf32>, %out: memref<?x3xf32>, %gw: memref<16xf32>,
                 %gb: memref<4xf32>) {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<16xi32>), tensor<16xf32> to tensor<4x8xf32, #CSR>
  %h = sdl.linear %x, %w, %b : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
  %r = sdl.relu %h : (tensor<?x4xf32>) -> tensor<?x4xf32>
  %z = sdl.linear %r, %w2 : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  bufferization.materialize_in_destination %z in restrict writable %out : (tensor<?x3xf32>, memref<?x3xf32>) -> ()
  %dr = sdl.linear_grad_input %dz, %w2 : (tensor<?x3xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
  %dh = sdl.relu_grad %h, %dr : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  %dw = sdl.linear_grad_weight %dh, %x, %w : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<4x8xf32, #CSR>
  %e0 = tensor.empty() : tensor<5xi32>
  %e1 = tensor.empty() : tensor<16xi32>
  %e2 = tensor.empty() : tensor<16xf32>
  %l:2, %v, %n:2, %m = sparse_tensor.disassemble %dw : tensor<4x8xf32, #CSR> out_lvls(%e0, %e1 : tensor<5xi32>, tensor<16xi32>) out_vals(%e2 : tensor<16xf32>) -> (tensor<5xi32>, tensor<16xi32>), tensor<16xf32>, (index, index), index
  bufferization.materialize_in_destination %v in restrict writable %gw : (tensor<16xf32>, memref<16xf32>) -> ()
  %db = sdl.reduce_batch %dh : (tensor<?x4xf32>) -> tensor<4xf32>
  bufferization.materialize_in_destination %db in restrict writable %gb : (tensor<4xf32>, memref<4xf32>) -> ()
  return
}

// -----

// The copy into blocks of an activation with 40 columns: squares of 16
// samples x 16 columns are loaded as 16 row vectors (a sample past the batch
// reads the last one and is replaced by zeros), transposed by 64 shuffles
// (4 rounds of 16) and stored as 16 column vectors of 16 lanes; the 8
// columns past the last whole square are copied one by one.
// CHECK-LABEL: func.func @transpose(
// CHECK: %[[XM:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x40xf32> to memref<?x40xf32>
// CHECK: %[[XB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x40x64xf32>
// CHECK: scf.parallel
// CHECK: scf.for %[[COL:.+]] = %c0 to %c32 step %c16 {
// CHECK: scf.for %[[LANE:.+]] = %c0 to %c64 step %c16 {
// CHECK-COUNT-16: vector.load %[[XM]][%{{.+}}, %[[COL]]] : memref<?x40xf32>, vector<16xf32>
// CHECK-COUNT-64: vector.shuffle
// CHECK-COUNT-16: vector.store %{{.+}}, %[[XB]][%{{.+}}, %{{.+}}, %[[LANE]]] : memref<?x40x64xf32>, vector<16xf32>
// CHECK: scf.for %{{.+}} = %c32 to %c40 step %c1 {
// CHECK: memref.store %{{.+}}, %[[XB]]
// CHECK: } {sdl.parallel}
func.func @transpose(%x: tensor<?x40xf32>, %w: tensor<2x40xf32>) -> tensor<?x2xf32> {
  %y = sdl.linear %x, %w : (tensor<?x40xf32>, tensor<2x40xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// f64: 32 lanes per block (eight 256-bit registers as well).
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @f64(
// CHECK: arith.ceildivui %{{.+}}, %c32 : index
// CHECK: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x32xf64>
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
// CHECK: vector.shuffle
// CHECK: vector.store %{{.+}}, %[[DW]][%[[R2]], %{{.+}}] : memref<4x8xf32>, vector<4xf32>
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

// -----

// masked_linear: the dense loops, with the mask's entry multiplied into
// every weight read (forward, input gradient) and into every weight-gradient
// sum before it is stored (groups of four entries: a vector<4> of the mask).
// CHECK-LABEL: func.func @masked(
// CHECK-SAME: %[[W:[^:]+]]: tensor<4x8xf32>, %[[M:[^:]+]]: tensor<4x8xf32>
func.func @masked(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>,
                  %b: tensor<4xf32>, %dy: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32>) {
  // Forward: each stored weight times its mask entry, then the FMA (the
  // buffer loads fold into tensor.extract here).
  // CHECK: scf.parallel
  // CHECK: %[[WV:.+]] = tensor.extract %[[W]]
  // CHECK: %[[MV:.+]] = tensor.extract %[[M]]
  // CHECK: %[[WM:.+]] = arith.mulf %[[WV]], %[[MV]] : f32
  // CHECK: vector.broadcast %[[WM]] : f32 to vector<64xf32>
  // CHECK: vector.fma
  // CHECK: } {sdl.parallel}
  %y = sdl.masked_linear %x, %w, %m, %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  // Input gradient: the same product per weight read.
  // CHECK: scf.parallel
  // CHECK: tensor.extract %[[W]]
  // CHECK: tensor.extract %[[M]]
  // CHECK: arith.mulf %{{.+}}, %{{.+}} : f32
  // CHECK: vector.fma
  // CHECK: } {sdl.parallel}
  %dx = sdl.masked_linear_grad_input %dy, %w, %m : (tensor<?x4xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  // Weight gradient: the group's four sums times four mask entries.
  // CHECK: %[[MB:.+]] = bufferization.to_buffer %[[M]]
  // CHECK: scf.parallel
  // CHECK: vector.shuffle
  // CHECK: %[[M4:.+]] = vector.load %[[MB]][%{{.+}}, %{{.+}}] : memref<4x8xf32>, vector<4xf32>
  // CHECK: arith.mulf %{{.+}}, %[[M4]] : vector<4xf32>
  // CHECK: } {sdl.parallel}
  %dw = sdl.masked_linear_grad_weight %dy, %x, %m : (tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y, %dx, %dw : tensor<?x4xf32>, tensor<?x8xf32>, tensor<4x8xf32>
}
