// sdl-lower-fake-quant: sdl.fake_quant_rows of a CSR weight rebuilt by
// sparse_tensor.assemble becomes the assemble of the same positions and
// coordinates with values quantized row by row (rows in parallel): the
// row's max |v|, scale = max / (2^(bits-1) - 1) (1 for a zero row),
// roundeven(v / scale) clamped to +-(2^(bits-1) - 1), times the scale.
// RUN: sparsec-opt %s -split-input-file -sdl-lower-fake-quant -canonicalize -verify-diagnostics | FileCheck %s

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
// CHECK-LABEL: func.func @quant(
// CHECK-SAME: %[[POS:[^:]+]]: tensor<5xi32>, %[[CRD:[^:]+]]: tensor<7xi32>, %[[VAL:[^:]+]]: tensor<7xf32>
func.func @quant(%pos: tensor<5xi32>, %crd: tensor<7xi32>, %val: tensor<7xf32>)
    -> tensor<4x8xf32, #CSR> {
  %w = sparse_tensor.assemble (%pos, %crd), %val : (tensor<5xi32>, tensor<7xi32>), tensor<7xf32> to tensor<4x8xf32, #CSR>
  // CHECK-DAG: %[[QMAX:.+]] = arith.constant 7.000000e+00 : f32
  // CHECK-DAG: %[[NQMAX:.+]] = arith.constant -7.000000e+00 : f32
  // CHECK: %[[OUT:.+]] = memref.alloc() : memref<7xf32>
  // CHECK: scf.parallel
  // CHECK: %[[MAX:.+]] = scf.for {{.+}} -> (f32) {
  // CHECK: math.absf
  // CHECK: arith.maximumf
  // CHECK: %[[ZERO:.+]] = arith.cmpf oeq, %[[MAX]]
  // CHECK: %[[DIV:.+]] = arith.divf %[[MAX]], %[[QMAX]]
  // CHECK: %[[SCALE:.+]] = arith.select %[[ZERO]], %{{.+}}, %[[DIV]]
  // CHECK: scf.for
  // CHECK: %[[R:.+]] = math.roundeven
  // CHECK: %[[LO:.+]] = arith.maximumf %[[R]], %[[NQMAX]]
  // CHECK: %[[C:.+]] = arith.minimumf %[[LO]], %[[QMAX]]
  // CHECK: %[[Q:.+]] = arith.mulf %[[C]], %[[SCALE]]
  // CHECK: memref.store %[[Q]], %[[OUT]]
  // CHECK: } {sdl.parallel}
  // CHECK: %[[QT:.+]] = bufferization.to_tensor %[[OUT]]
  // CHECK: %[[NEW:.+]] = sparse_tensor.assemble (%[[POS]], %[[CRD]]), %[[QT]]
  // CHECK: return %[[NEW]]
  %q = sdl.fake_quant_rows %w bits(4) : tensor<4x8xf32, #CSR>
  return %q : tensor<4x8xf32, #CSR>
}

// -----

func.func @not_assembled(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{expects a CSR weight rebuilt by sparse_tensor.assemble}}
  %q = sdl.fake_quant_rows %w bits(8) : tensor<4x8xf32>
  return %q : tensor<4x8xf32>
}

// -----

func.func @bad_bits(%w: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{bits must be in [2, 8], got 9}}
  %q = sdl.fake_quant_rows %w bits(9) : tensor<4x8xf32>
  return %q : tensor<4x8xf32>
}
