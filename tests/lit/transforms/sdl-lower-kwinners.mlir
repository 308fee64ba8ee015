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
