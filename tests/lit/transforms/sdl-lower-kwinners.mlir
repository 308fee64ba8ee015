// sdl-lower-kwinners: sdl.kwinners / kwinners_grad / kwinners_duty become
// linalg on tensors. The winners of each sample: order-preserving i32 keys
// of x * exp((k / n - duty) * boost_strength), a 32-step bisection for the
// k-th largest key (each step a counting reduction), a bisection over the
// index for the ties, then a select. The training op uses k, the inference
// op k_inference (and its density in the boost).
// RUN: sparsec-opt %s -split-input-file -sdl-lower-kwinners | FileCheck %s --implicit-check-not=sdl.kwinners

// CHECK-LABEL: func.func @forward
// Boost with the inference density 7/20 = 0.35, keys, bisection.
// CHECK: arith.constant 3.500000e-01 : f32
// CHECK: math.exp
// CHECK: arith.bitcast %{{.*}} : f32 to i32
// CHECK: arith.xori
// CHECK: scf.for {{.*}} = %c0{{.*}} to %c32{{.*}} step %c1{{.*}} iter_args
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: arith.cmpi uge
// CHECK: scf.yield
// Ties by index: ceil(log2(20)) + 1 = 6 steps.
// CHECK: scf.for {{.*}} = %c0{{.*}} to %c6{{.*}} step %c1{{.*}} iter_args
// CHECK: scf.yield
// CHECK: arith.select
func.func @forward(%x: tensor<?x20xf32>, %duty: tensor<21xf32>) -> tensor<?x20xf32> {
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.5 : f64, k = 5 : i64, k_inference = 7 : i64, period = 50 : i64} : (tensor<?x20xf32>, tensor<21xf32>) -> tensor<?x20xf32>
  return %0 : tensor<?x20xf32>
}

// -----

// Training: density 5/20; the gradient op recomputes the same winners.
// CHECK-LABEL: func.func @train
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK: arith.constant 2.500000e-01 : f32
// The duty update: count of outputs > 0 over the batch, c' = min(50, c + B).
// CHECK: arith.cmpf ogt
// CHECK: tensor.extract %{{.*}}[%c20]
// CHECK: arith.constant 5.000000e+01 : f32
// CHECK: arith.minimumf
// CHECK: arith.divf
func.func @train(%x: tensor<?x20xf32>, %duty: tensor<21xf32>, %dy: tensor<?x20xf32>) -> (tensor<?x20xf32>, tensor<?x20xf32>, tensor<21xf32>) {
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.5 : f64, k = 5 : i64, k_inference = 7 : i64, period = 50 : i64, training} : (tensor<?x20xf32>, tensor<21xf32>) -> tensor<?x20xf32>
  %1 = sdl.kwinners_grad %x, %duty, %dy {boost_strength = 1.5 : f64, k = 5 : i64} : (tensor<?x20xf32>, tensor<21xf32>, tensor<?x20xf32>) -> tensor<?x20xf32>
  %2 = sdl.kwinners_duty %0, %duty {period = 50 : i64} : (tensor<?x20xf32>, tensor<21xf32>) -> tensor<21xf32>
  return %0, %1, %2 : tensor<?x20xf32>, tensor<?x20xf32>, tensor<21xf32>
}

// -----

// Boost decay: the strength 1.5 * 0.5^floor(steps / 4) from the buffer's
// step count (index n + 1 = 21) in float64, then float32; the duty update
// adds 1 to the step count.
// CHECK-LABEL: func.func @decay
// CHECK: %[[STEPS:.*]] = tensor.extract %{{.*}}[%c21{{.*}}] : tensor<22xf32>
// CHECK: %[[N:.*]] = arith.fptosi %[[STEPS]] : f32 to i64
// CHECK: arith.divsi %[[N]], %c4{{.*}} : i64
// CHECK: %[[P:.*]] = math.powf %cst{{.*}}, %{{.*}} : f64
// CHECK: %[[S:.*]] = arith.mulf %cst{{.*}}, %[[P]] : f64
// CHECK: %[[S32:.*]] = arith.truncf %[[S]] : f64 to f32
// CHECK: tensor.extract_slice %{{.*}}[0] [20] [1] : tensor<22xf32> to tensor<20xf32>
// CHECK: arith.mulf %{{.*}}, %[[S32]] : f32
// CHECK: math.exp
// CHECK: scf.for
// Duty: j == 21 gets steps + 1.
// CHECK: arith.cmpf ogt
// CHECK: linalg.generic
// CHECK: arith.cmpi eq, %{{.*}}, %c21
// CHECK: arith.addf %{{.*}}, %cst{{.*}} : f32
func.func @decay(%x: tensor<?x20xf32>, %duty: tensor<22xf32>) -> (tensor<?x20xf32>, tensor<22xf32>) {
  %0 = sdl.kwinners %x, %duty {boost_factor = 0.5 : f64, boost_period = 4 : i64, boost_strength = 1.5 : f64, k = 5 : i64, k_inference = 7 : i64, period = 50 : i64, training} : (tensor<?x20xf32>, tensor<22xf32>) -> tensor<?x20xf32>
  %1 = sdl.kwinners_duty %0, %duty {boost_factor = 0.5 : f64, boost_period = 4 : i64, period = 50 : i64} : (tensor<?x20xf32>, tensor<22xf32>) -> tensor<22xf32>
  return %0, %1 : tensor<?x20xf32>, tensor<22xf32>
}

// -----

// KWinners2d, global: the winners among C*H*W = 36 values per sample; the
// per-channel boost (density 9/36) repeated over the 9 locations of a
// channel; the 2-D view [B, 36]. The duty update counts the outputs > 0
// per channel over the batch and the locations ([B, 4, 9]) / 9.
// CHECK-LABEL: func.func @global2d
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK: math.exp
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1]] : tensor<4x9xf32> into tensor<36xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0], [1, 2, 3]] : tensor<?x4x3x3xf32> into tensor<?x36xf32>
// Ties by index: ceil(log2(36)) + 1 = 7 steps.
// CHECK: scf.for {{.*}} = %c0{{.*}} to %c7{{.*}} step
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2, 3]] {{.*}} : tensor<?x36xf32> into tensor<?x4x3x3xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0], [1], [2, 3]] : tensor<?x4x3x3xf32> into tensor<?x4x9xf32>
// CHECK: iterator_types = ["reduction", "parallel", "reduction"]
// CHECK: arith.constant 9.000000e+00 : f32
// CHECK: arith.divf
func.func @global2d(%x: tensor<?x4x3x3xf32>, %duty: tensor<5xf32>) -> (tensor<?x4x3x3xf32>, tensor<5xf32>) {
  %0 = sdl.kwinners %x, %duty {boost_strength = 1.0 : f64, k = 9 : i64, k_inference = 14 : i64, period = 50 : i64, training} : (tensor<?x4x3x3xf32>, tensor<5xf32>) -> tensor<?x4x3x3xf32>
  %1 = sdl.kwinners_duty %0, %duty {period = 50 : i64} : (tensor<?x4x3x3xf32>, tensor<5xf32>) -> tensor<5xf32>
  return %0, %1 : tensor<?x4x3x3xf32>, tensor<5xf32>
}

// -----

// KWinners2d, local: the input transposed to [B, H, W, C] and viewed as
// [B*H*W, C], k = 2 of the C = 4 channels per location (density 2/4), and
// back; the gradient op does the same to dy.
// CHECK-LABEL: func.func @local2d
// CHECK: arith.constant 5.000000e-01 : f32
// CHECK: linalg.transpose ins(%{{.*}} : tensor<?x4x3x3xf32>) outs(%{{.*}} : tensor<?x3x3x4xf32>) permutation = [0, 2, 3, 1]
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] : tensor<?x3x3x4xf32> into tensor<?x4xf32>
// Ties by index: ceil(log2(4)) + 1 = 3 steps.
// CHECK: scf.for {{.*}} = %c0{{.*}} to %c3{{.*}} step
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] {{.*}} : tensor<?x4xf32> into tensor<?x3x3x4xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<?x3x3x4xf32>) outs(%{{.*}} : tensor<?x4x3x3xf32>) permutation = [0, 3, 1, 2]
func.func @local2d(%x: tensor<?x4x3x3xf32>, %duty: tensor<5xf32>, %dy: tensor<?x4x3x3xf32>) -> tensor<?x4x3x3xf32> {
  %0 = sdl.kwinners_grad %x, %duty, %dy {boost_strength = 1.0 : f64, k = 2 : i64, local} : (tensor<?x4x3x3xf32>, tensor<5xf32>, tensor<?x4x3x3xf32>) -> tensor<?x4x3x3xf32>
  return %0 : tensor<?x4x3x3xf32>
}
