// sdl-lower-masked-linear: the masked layer and its two gradients become
// linalg.generic contractions reading the mask next to the weight (W ∘ M is
// never formed); the weight gradient is the contraction times the mask.
// RUN: sparsec-opt %s -sdl-lower-masked-linear | FileCheck %s --implicit-check-not=sdl.masked_linear

// CHECK-LABEL: func.func @masked
// Forward, feature-major: xᵀ, the bias broadcast into yᵀ, then over dims
// (o, i, b) yᵀ(o, b) += (w(o, i) * m(o, i)) * xᵀ(i, b), then y = (yᵀ)ᵀ.
// CHECK: %[[XT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<?x3xf32>) outs(%{{.*}} : tensor<3x?xf32>)
// CHECK: %[[INIT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<4x?xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[OI:map[0-9]*]], #[[OI]], #[[IB:map[0-9]*]], #[[OB:map[0-9]*]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}}, %[[XT]] : tensor<4x3xf32>, tensor<4x3xf32>, tensor<3x?xf32>) outs(%[[INIT]] : tensor<4x?xf32>)
// CHECK: ^bb0(%[[W:.*]]: f32, %[[M:.*]]: f32, %[[X:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK: %[[WM:.*]] = arith.mulf %[[W]], %[[M]] : f32
// CHECK: %[[P:.*]] = arith.mulf %[[WM]], %[[X]] : f32
// CHECK: arith.addf %[[ACC]], %[[P]] : f32
// CHECK: linalg.generic {{.*}}outs(%{{.*}} : tensor<?x4xf32>)
// Input gradient: dxᵀ(i, b) += (w(o, i) * m(o, i)) * dyᵀ(o, b) over (o, i, b).
// CHECK: %[[DYT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<?x4xf32>) outs(%{{.*}} : tensor<4x?xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[OI]], #[[OI]], #[[OB]], #[[IB]]], iterator_types = ["reduction", "parallel", "parallel"]} ins(%{{.*}}, %{{.*}}, %[[DYT]] : tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x?xf32>) outs(%{{.*}} : tensor<3x?xf32>)
// CHECK: arith.mulf
// CHECK: linalg.generic {{.*}}outs(%{{.*}} : tensor<?x3xf32>)
// Weight gradient: dW(o, i) += dy(b, o) x(b, i) over (b, o, i), then times
// the mask.
// CHECK: %[[DW:.*]] = linalg.generic {indexing_maps = [#[[OI]], #[[OB]], #[[IB]]], iterator_types = ["reduction", "parallel", "parallel"]} ins(%{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<?x3xf32>) outs(%{{.*}} : tensor<4x3xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%{{.*}} : tensor<4x3xf32>) outs(%[[DW]] : tensor<4x3xf32>)
// CHECK: ^bb0(%[[MK:.*]]: f32, %[[G:.*]]: f32):
// CHECK: arith.mulf %[[G]], %[[MK]] : f32
func.func @masked(%x: tensor<?x3xf32>, %w: tensor<4x3xf32>, %m: tensor<4x3xf32>, %b: tensor<4xf32>, %dy: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<?x3xf32>, tensor<4x3xf32>) {
  %y = sdl.masked_linear %x, %w, %m, %b : (tensor<?x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %dx = sdl.masked_linear_grad_input %dy, %w, %m : (tensor<?x4xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %dw = sdl.masked_linear_grad_weight %dy, %x, %m : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  return %y, %dx, %dw : tensor<?x4xf32>, tensor<?x3xf32>, tensor<4x3xf32>
}

// CHECK-LABEL: func.func @nobias
// CHECK: linalg.fill
// CHECK: linalg.generic
func.func @nobias(%x: tensor<?x3xf32>, %w: tensor<4x3xf32>, %m: tensor<4x3xf32>) -> tensor<?x4xf32> {
  %y = sdl.masked_linear %x, %w, %m : (tensor<?x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
