// sdl-lower-quantized-linear: in the forward entry, sdl.linear of
// sdl.fake_quant_rows of an assembled CSR weight becomes the int8 kernel
// (sdl.inference "int8", or "auto"/absent with at least 8 stored weights
// per input column and at most 133143 columns): the weight's levels as i8
// with one f32 scale per row (vectorised 16 entries at a time, then the
// rest) and 128 times the row's level sum (i32); x in 64-lane f32 blocks,
// then per block the max |x| lane by lane, the scales (1 for zero) and
// levels + 128 as bytes [nb, F, 64]; for 4 blocks at a time, then for the
// rest one by one, the rows in parallel, i32 accumulators over the row's
// entries (zero-extended bytes times the sign-extended weight level:
// vpmaddwd / vpdpwssd), minus the offset correction, scaled by s(r) and
// sx(b), plus the bias; a relu that is the only user is applied in the
// kernel. The result stays in blocks (a sdl.from_blocks generic). "f32"
// and the train entry keep the fake quantization for sdl-lower-fake-quant,
// and so does "auto" for a layer with fewer stored weights or more than
// 133143 columns (its int32 sums could overflow).
// RUN: sparsec-opt %s -split-input-file -sdl-lower-quantized-linear -canonicalize -verify-diagnostics | FileCheck %s

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @int8(
func.func @int8(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<7xi32>,
                %val: tensor<7xf32>, %b: tensor<4xf32>) -> tensor<?x4xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  // x to f32 blocks (a tensor op marked sdl.to_blocks, which
  // sdl-lower-sparse-linear replaces by the blocks it has for x), then its
  // int8 levels and per-sample scales.
  // CHECK: linalg.generic {{.+}} outs(%{{.+}} : tensor<?x8x64xf32>) attrs = {sdl.to_blocks = 64 : i64}
  // CHECK: tensor.extract %{{.+}} : tensor<?x8xf32>
  // CHECK: %[[XQ:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8x64xi8>
  // CHECK: %[[SX:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x64xf32>
  // CHECK: scf.parallel
  // CHECK: scf.for {{.+}} -> (vector<64xf32>)
  // CHECK: math.absf %{{.+}} : vector<64xf32>
  // CHECK: arith.maximumf
  // CHECK: arith.cmpf oeq, %{{.+}} : vector<64xf32>
  // CHECK: arith.divf %{{.+}} : vector<64xf32>
  // CHECK: vector.store %{{.+}}, %[[SX]]
  // CHECK: math.roundeven %{{.+}} : vector<64xf32>
  // CHECK: arith.fptoui %{{.+}} : vector<64xf32> to vector<64xi8>
  // CHECK: vector.store %{{.+}}, %[[XQ]]
  // CHECK: } {sdl.parallel}
  // The weight: levels, scales, offsets; 16 entries at a time, then one.
  // CHECK: %[[WQ:.+]] = memref.alloc() {alignment = 64 : i64} : memref<7xi8>
  // CHECK: %[[SW:.+]] = memref.alloc() : memref<4xf32>
  // CHECK: %[[OFF:.+]] = memref.alloc() : memref<4xi32>
  // CHECK: scf.parallel
  // CHECK: vector.reduction <maximumf>
  // CHECK: memref.store %{{.+}}, %[[SW]]
  // CHECK: arith.fptosi %{{.+}} : vector<16xf32> to vector<16xi8>
  // CHECK: vector.store %{{.+}}, %[[WQ]]
  // CHECK: vector.reduction <add>
  // CHECK: arith.fptosi %{{.+}} : f32 to i8
  // CHECK: memref.store %{{.+}}, %[[WQ]]
  // CHECK: memref.store %{{.+}}, %[[OFF]]
  // CHECK: } {sdl.parallel}
  // The product: 4 blocks at a time (the weight level broadcast once, one
  // accumulator per block), then the other blocks one by one (two chains
  // over alternate entries, then the last entry).
  // CHECK: %[[YB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
  // CHECK: scf.for %{{.+}} = %c0 to %{{.+}} step %c4 {
  // CHECK: scf.parallel
  // CHECK: scf.for {{.+}} -> (vector<64xi32>, vector<64xi32>, vector<64xi32>, vector<64xi32>) {
  // CHECK: vector.broadcast %{{.+}} : i32 to vector<64xi32>
  // CHECK-COUNT-4: arith.extui %{{.+}} : vector<64xi8> to vector<64xi32>
  // CHECK-COUNT-4: vector.store %{{.+}}, %[[YB]]
  // CHECK: } {sdl.parallel}
  // CHECK: scf.for %[[BLK:.+]] = %{{.+}} to %{{.+}} step %c1 {
  // CHECK: scf.parallel (%[[ROW:.+]]) = (%c0) to (%c4) step (%c1) {
  // CHECK: scf.for {{.+}} step %c2 iter_args({{.+}}) -> (vector<64xi32>, vector<64xi32>) {
  // CHECK: %[[XV:.+]] = vector.load %[[XQ]][%[[BLK]], %{{.+}}, %c0] : memref<?x8x64xi8>, vector<64xi8>
  // CHECK: %[[XE:.+]] = arith.extui %[[XV]] : vector<64xi8> to vector<64xi32>
  // CHECK: arith.muli %[[XE]], %{{.+}} : vector<64xi32>
  // CHECK: arith.addi
  // CHECK: scf.for {{.+}} -> (vector<64xi32>) {
  // CHECK: arith.subi %{{.+}} : vector<64xi32>
  // CHECK: arith.sitofp %{{.+}} : vector<64xi32> to vector<64xf32>
  // CHECK: arith.mulf
  // CHECK: vector.load %[[SX]][%[[BLK]], %c0]
  // CHECK: arith.mulf
  // CHECK: arith.addf
  // CHECK-NOT: arith.maximumf
  // CHECK: vector.store %{{.+}}, %[[YB]][%[[BLK]], %[[ROW]], %c0]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[Y:.+]] = linalg.generic
  // CHECK: } -> tensor<?x4xf32>
  // CHECK-NOT: sdl.fake_quant_rows
  // CHECK-NOT: sdl.linear
  // CHECK: return %[[Y]]
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "int8"} : tensor<4x8xf32, #CSR>
  %y = sdl.linear %x, %q, %b : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Two layers, the first with a relu (fused) and no bias: the second reads
// the first's f32 blocks (no conversion of its input).
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @chain(
func.func @chain(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<7xi32>,
                 %val: tensor<7xf32>, %pos2: tensor<3xi32>, %crd2: tensor<4xi32>,
                 %val2: tensor<4xf32>) -> tensor<?x2xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  %w2 = sparse_tensor.assemble (%pos2, %crd2), %val2 : (tensor<3xi32>, tensor<4xi32>), tensor<4xf32> to tensor<2x4xf32, #CSR>
  // CHECK: attrs = {sdl.to_blocks = 64 : i64}
  // CHECK-NOT: sdl.to_blocks
  // CHECK: %[[YB:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
  // CHECK: arith.sitofp
  // CHECK-NOT: arith.addf
  // CHECK: arith.maximumf %{{.+}} : vector<64xf32>
  // CHECK: vector.store %{{.+}}, %[[YB]]
  // CHECK-NOT: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xf32>
  // CHECK: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x4x64xi8>
  // CHECK: vector.load %[[YB]]
  // CHECK: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x2x64xf32>
  // CHECK-NOT: sdl.relu
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "int8"} : tensor<4x8xf32, #CSR>
  %h = sdl.linear %x, %q : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
  %r = sdl.relu %h : (tensor<?x4xf32>) -> tensor<?x4xf32>
  %q2 = sdl.fake_quant_rows %w2 bits(4) {sdl.inference = "int8"} : tensor<2x4xf32, #CSR>
  %y = sdl.linear %r, %q2 : (tensor<?x4xf32>, tensor<2x4xf32, #CSR>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// inference = f32, auto with fewer than 8 stored weights per input column
// or more than 133143 columns, and any layer of the train entry: left
// alone; auto with 8 per column or more: int8.
#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @f32(
// CHECK: sdl.fake_quant_rows %{{.+}} bits(8) {sdl.inference = "f32"}
// CHECK: sdl.linear
func.func @f32(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<7xi32>,
               %val: tensor<7xf32>) -> tensor<?x4xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "f32"} : tensor<4x8xf32, #CSR>
  %y = sdl.linear %x, %q : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
// 7 stored weights, 8 columns.
// CHECK-LABEL: func.func @auto_sparse(
// CHECK: sdl.fake_quant_rows %{{.+}} bits(8) :
// CHECK: sdl.linear
func.func @auto_sparse(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<7xi32>,
                       %val: tensor<7xf32>) -> tensor<?x4xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  %q = sdl.fake_quant_rows %w bits(8) : tensor<4x8xf32, #CSR>
  %y = sdl.linear %x, %q : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
// 20 stored weights, 2 columns.
// CHECK-LABEL: func.func @auto_dense(
// CHECK: vector<64xi8>
// CHECK-NOT: sdl.linear
// CHECK: return
func.func @auto_dense(%x: tensor<?x2xf32>, %pos: tensor<17xi32>, %crd: tensor<20xi32>,
                      %val: tensor<20xf32>) -> tensor<?x16xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<17xi32>, tensor<20xi32>), tensor<20xf32> to tensor<16x2xf32, #CSR>
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "auto"} : tensor<16x2xf32, #CSR>
  %y = sdl.linear %x, %q : (tensor<?x2xf32>, tensor<16x2xf32, #CSR>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
// CHECK-LABEL: func.func @wide(
// CHECK: sdl.fake_quant_rows
// CHECK: sdl.linear
func.func @wide(%x: tensor<?x133144xf32>, %pos: tensor<9xi32>, %crd: tensor<1065160xi32>,
                %val: tensor<1065160xf32>) -> tensor<?x8xf32>
    attributes {sdl.entry = "forward"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<9xi32>, tensor<1065160xi32>), tensor<1065160xf32> to tensor<8x133144xf32, #CSR>
  %q = sdl.fake_quant_rows %w bits(8) : tensor<8x133144xf32, #CSR>
  %y = sdl.linear %x, %q : (tensor<?x133144xf32>, tensor<8x133144xf32, #CSR>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
// CHECK-LABEL: func.func @train(
// CHECK: sdl.fake_quant_rows %{{.+}} bits(8) {sdl.inference = "int8"}
// CHECK: sdl.linear
func.func @train(%x: tensor<?x8xf32>, %pos: tensor<5xi32>, %crd: tensor<7xi32>,
                 %val: tensor<7xf32>) -> tensor<?x4xf32>
    attributes {sdl.entry = "train"} {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "int8"} : tensor<4x8xf32, #CSR>
  %y = sdl.linear %x, %q : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @bad_mode(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{sdl.inference must be "auto", "int8" or "f32"}}
  %q = sdl.fake_quant_rows %w bits(8) {sdl.inference = "int4"} : tensor<4x8xf32>
  return %q : tensor<4x8xf32>
}
