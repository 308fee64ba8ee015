// sdl-lower-masked-conv2d: the masked convolution and its gradients become
// im2col copies and contractions on grouped views ([B, G, C/G, H, W]
// activations, [G, O/G, K] weight and mask), reading the mask next to the
// weight (W ∘ M is never formed); the batch-parallel ones run per sample,
// the weight gradient per output channel, on buffers in scf.parallel loops
// marked for sparsec-outline-parallel.
// RUN: sparsec-opt %s -sdl-lower-masked-conv2d | FileCheck %s --implicit-check-not=sdl.masked_conv2d --implicit-check-not=sdl.channel_sum

// Patch loops (b, g, c, i, j, y, x) read the padded input at
// (b, g, c, 2y + i, 2x + j); transposed loops (b, g, y, x, c, i, j) alike.
// CHECK-DAG: #[[WIN:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d5 * 2 + d3, d6 * 2 + d4)>
// CHECK-DAG: #[[WINT:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d4, d2 * 2 + d5, d3 * 2 + d6)>
// CHECK-DAG: #[[ID7:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d3, d4, d5, d6)>
// Forward over (b, g, o, k, p): w(g, o, k), cols(b, g, k, p), y(b, g, o, p).
// CHECK-DAG: #[[W:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d2, d3)>
// CHECK-DAG: #[[COLS:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-DAG: #[[Y:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// Input gradient over (b, g, p, o, k): w(g, o, k), dy(b, g, o, p).
// CHECK-DAG: #[[WT:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d3, d4)>
// CHECK-DAG: #[[DYT:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d2)>
// Weight gradient over (b, g, o, p, k): dy(b, g, o, p), dW(g, o, k).
// CHECK-DAG: #[[DY:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[DW:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d2, d4)>
// CHECK-DAG: #[[CH:map[0-9]*]] = affine_map<(d0, d1, d2, d3) -> (d1)>

// CHECK-LABEL: func.func @conv
// Forward: the input zero-padded and viewed in groups; its patches copied
// one sample per iteration of a parallel loop (on buffers, marked for
// sparsec-outline-parallel).
// CHECK: %[[XP:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 1, 1] [%{{.*}}, 4, 8, 8] [1, 1, 1, 1] : tensor<?x4x8x8xf32> into tensor<?x4x10x10xf32>
// CHECK: %[[XG:.*]] = tensor.expand_shape %[[XP]] {{\[}}[0], [1, 2], [3], [4]] {{.*}} into tensor<?x2x2x10x10xf32>
// CHECK: %[[XB:.*]] = bufferization.to_buffer %[[XG]] read_only
// CHECK: %[[PM:.*]] = memref.alloc(%{{.*}}) : memref<?x2x2x3x3x4x4xf32>
// CHECK: scf.parallel (%[[I:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}}) {
// CHECK: %[[XS:.*]] = memref.subview %[[XB]][%[[I]], 0, 0, 0, 0] [1, 2, 2, 10, 10]
// CHECK: %[[PS:.*]] = memref.subview %[[PM]][%[[I]], 0, 0, 0, 0, 0, 0] [1, 2, 2, 3, 3, 4, 4]
// CHECK-NOT: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#[[WIN]], #[[ID7]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%[[XS]] : {{.*}}) outs(%[[PS]] :
// CHECK: } {sdl.parallel}
// CHECK: %[[P:.*]] = bufferization.to_tensor %[[PM]] restrict writable
// CHECK: %[[CV:.*]] = tensor.collapse_shape %[[P]] {{\[}}[0], [1], [2, 3, 4], [5, 6]] : tensor<?x2x2x3x3x4x4xf32> into tensor<?x2x18x16xf32>
// The weight and mask viewed per group; per sample, the bias broadcast,
// then the masked contraction.
// CHECK: tensor.expand_shape %arg1 {{\[}}[0, 1], [2]] {{.*}} : tensor<6x18xf32> into tensor<2x3x18xf32>
// CHECK: tensor.expand_shape %arg2 {{\[}}[0, 1], [2]]
// CHECK: tensor.expand_shape %arg3 {{\[}}[0, 1]] {{.*}} into tensor<2x3xf32>
// CHECK: %[[CB:.*]] = bufferization.to_buffer %[[CV]] read_only
// CHECK: %[[YM:.*]] = memref.alloc(%{{.*}}) : memref<?x2x3x16xf32>
// CHECK: scf.parallel
// CHECK: %[[CS:.*]] = memref.subview %[[CB]]
// CHECK: %[[YS:.*]] = memref.subview %[[YM]]
// CHECK: linalg.generic {{.*}}ins(%{{.*}} : memref<2x3xf32>) outs(%[[YS]] :
// CHECK: linalg.generic {indexing_maps = [#[[W]], #[[W]], #[[COLS]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}}, %[[CS]] : memref<2x3x18xf32>, memref<2x3x18xf32>, {{.*}}) outs(%[[YS]] :
// CHECK: ^bb0(%[[WV:.*]]: f32, %[[MV:.*]]: f32, %[[XV:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK: %[[WM:.*]] = arith.mulf %[[WV]], %[[MV]] : f32
// CHECK: %[[PR:.*]] = arith.mulf %[[WM]], %[[XV]] : f32
// CHECK: arith.addf %[[ACC]], %[[PR]] : f32
// CHECK: } {sdl.parallel}
// CHECK: %[[YG:.*]] = bufferization.to_tensor %[[YM]]
// CHECK: tensor.collapse_shape %[[YG]] {{\[}}[0], [1, 2], [3]] : tensor<?x2x3x16xf32> into tensor<?x6x16xf32>
// CHECK: tensor.expand_shape {{.*}} into tensor<?x6x4x4xf32>
// Input gradient: patch gradients (masked) per sample, then added back
// into the padded input (every dim but b, g and c accumulates), the
// padding cut off.
// CHECK: memref.alloc(%{{.*}}) : memref<?x2x16x18xf32>
// CHECK: scf.parallel
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#[[WT]], #[[WT]], #[[DYT]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]}
// CHECK: } {sdl.parallel}
// CHECK: %[[DC:.*]] = bufferization.to_tensor
// CHECK: %[[DP:.*]] = tensor.expand_shape %[[DC]] {{\[}}[0], [1], [2, 3], [4, 5, 6]] {{.*}} into tensor<?x2x4x4x2x3x3xf32>
// CHECK: bufferization.to_buffer %[[DP]] read_only
// CHECK: %[[DXM:.*]] = memref.alloc(%{{.*}}) : memref<?x2x2x10x10xf32>
// CHECK: scf.parallel
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#[[ID7]], #[[WINT]]], iterator_types = ["parallel", "parallel", "reduction", "reduction", "parallel", "reduction", "reduction"]}
// CHECK: ^bb0(%[[DV:.*]]: f32, %[[DA:.*]]: f32):
// CHECK: arith.addf %[[DA]], %[[DV]] : f32
// CHECK: } {sdl.parallel}
// CHECK: %[[DXG:.*]] = bufferization.to_tensor %[[DXM]]
// CHECK: %[[DXP:.*]] = tensor.collapse_shape %[[DXG]]
// CHECK: tensor.extract_slice %[[DXP]][0, 0, 1, 1] [%{{.*}}, 4, 8, 8] [1, 1, 1, 1] : tensor<?x4x10x10xf32> to tensor<?x4x8x8xf32>
// Weight gradient over the transposed patches, in parallel over the output
// channels of a group (slices of dy and dW), then times the mask.
// CHECK: scf.parallel
// CHECK: linalg.generic {indexing_maps = [#[[WINT]], #[[ID7]]]
// CHECK: } {sdl.parallel}
// CHECK: %[[DWM:.*]] = memref.alloc() : memref<2x3x18xf32>
// CHECK: scf.parallel (%[[O:.*]]) =
// CHECK: %[[DYS:.*]] = memref.subview %{{.*}}[0, 0, %[[O]], 0] [%{{.*}}, 2, 1, 16]
// CHECK: %[[DWS:.*]] = memref.subview %[[DWM]][0, %[[O]], 0] [2, 1, 18]
// CHECK: linalg.fill {{.*}} outs(%[[DWS]] :
// CHECK: linalg.generic {indexing_maps = [#[[DY]], #[[COLS]], #[[DW]]], iterator_types = ["reduction", "parallel", "parallel", "reduction", "parallel"]} ins(%[[DYS]], %{{.*}} : {{.*}}) outs(%[[DWS]] :
// CHECK: } {sdl.parallel}
// CHECK: %[[ACCW:.*]] = bufferization.to_tensor %[[DWM]]
// CHECK: %[[DWC:.*]] = tensor.collapse_shape %[[ACCW]] {{\[}}[0, 1], [2]] : tensor<2x3x18xf32> into tensor<6x18xf32>
// CHECK: linalg.generic {{.*}}ins(%arg2 : tensor<6x18xf32>) outs(%[[DWC]] : tensor<6x18xf32>)
// CHECK: arith.mulf
// Bias gradient: sum over (b, y, x).
// CHECK: linalg.generic {indexing_maps = [#{{map[0-9]*}}, #[[CH]]], iterator_types = ["reduction", "parallel", "reduction", "reduction"]} ins(%arg4 : tensor<?x6x4x4xf32>) outs(%{{.*}} : tensor<6xf32>)
func.func @conv(%x: tensor<?x4x8x8xf32>, %w: tensor<6x18xf32>, %m: tensor<6x18xf32>, %b: tensor<6xf32>, %dy: tensor<?x6x4x4xf32>) -> (tensor<?x6x4x4xf32>, tensor<?x4x8x8xf32>, tensor<6x18xf32>, tensor<6xf32>) {
  %y = sdl.masked_conv2d %x, %w, %m, %b {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<?x4x8x8xf32>, tensor<6x18xf32>, tensor<6x18xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  %dx = sdl.masked_conv2d_grad_input %dy, %w, %m {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<?x6x4x4xf32>, tensor<6x18xf32>, tensor<6x18xf32>) -> tensor<?x4x8x8xf32>
  %dw = sdl.masked_conv2d_grad_weight %dy, %x, %m {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<?x6x4x4xf32>, tensor<?x4x8x8xf32>, tensor<6x18xf32>) -> tensor<6x18xf32>
  %db = sdl.channel_sum %dy : (tensor<?x6x4x4xf32>) -> tensor<6xf32>
  return %y, %dx, %dw, %db : tensor<?x6x4x4xf32>, tensor<?x4x8x8xf32>, tensor<6x18xf32>, tensor<6xf32>
}

// Without padding or bias: no padded copy, a zero-filled output.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: tensor.insert_slice
// CHECK: linalg.generic
// CHECK: scf.parallel
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK-NOT: tensor.extract_slice
func.func @plain(%x: tensor<?x2x5x5xf32>, %w: tensor<3x8xf32>, %m: tensor<3x8xf32>) -> tensor<?x3x4x4xf32> {
  %y = sdl.masked_conv2d %x, %w, %m {kernel = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<?x2x5x5xf32>, tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<?x3x4x4xf32>
  return %y : tensor<?x3x4x4xf32>
}
