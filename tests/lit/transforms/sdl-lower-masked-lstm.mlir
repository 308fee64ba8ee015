// sdl-lower-masked-lstm: the LSTM becomes the input projection of every step
// (one contraction reading the mask next to W_ih) and an scf.for over time:
// the recurrent contraction (mask next to W_hh) and one multi-output
// linalg.generic (gates i, f, g, o, cell, hidden) writing into the stash;
// the BPTT op becomes the reversed loop and the gradients over all steps.
// RUN: sparsec-opt %s -sdl-lower-masked-lstm | FileCheck %s --implicit-check-not=sdl.masked_lstm

// Maps of the sequence-first case (@seq, below).
// CHECK-DAG: #[[TBI:map[0-9]*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[YSEQ:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d0 + 1, d1, d2 + 10)>

// CHECK-LABEL: func.func @lstm
// Input projection with both biases: P(t, b, g) += x(b, t, i) (wᵀ mᵀ)(i, g)
// over dims (t, b, i, g) on the transposed weight and mask (never W ∘ M).
// CHECK: %[[BIAS:.*]] = linalg.generic {{.*}}ins(%{{.*}}, %{{.*}} : tensor<8xf32>, tensor<8xf32>) outs(%{{.*}} : tensor<3x?x8xf32>)
// CHECK: arith.addf
// CHECK: %[[WIT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<8x5xf32>) outs(%{{.*}} : tensor<5x8xf32>)
// CHECK: %[[MIT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<8x5xf32>) outs(%{{.*}} : tensor<5x8xf32>)
// CHECK: %[[P:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%{{.*}}, %[[WIT]], %[[MIT]] : tensor<?x3x5xf32>, tensor<5x8xf32>, tensor<5x8xf32>) outs(%[[BIAS]] : tensor<3x?x8xf32>)
// CHECK: ^bb0(%[[X:.*]]: f32, %[[W:.*]]: f32, %[[M:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK: %[[WM:.*]] = arith.mulf %[[W]], %[[M]] : f32
// CHECK: arith.mulf %[[X]], %[[WM]] : f32
// W_hhᵀ and M_hhᵀ; the stash [T + 1, B, 6H] starts at zero (h0 = c0 = 0).
// CHECK: %[[WHT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<8x2xf32>) outs(%{{.*}} : tensor<2x8xf32>)
// CHECK: %[[MHT:.*]] = linalg.generic {{.*}}ins(%{{.*}} : tensor<8x2xf32>) outs(%{{.*}} : tensor<2x8xf32>)
// CHECK: %[[S0:.*]] = linalg.fill {{.*}} -> tensor<4x?x12xf32>
// CHECK: %[[FWD:.*]] = scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[S:.*]] = %[[S0]]) -> (tensor<4x?x12xf32>)
// CHECK: %[[T1:.*]] = arith.addi %[[T]], %{{.*}} : index
// CHECK: %[[HP:.*]] = tensor.extract_slice %[[S]][%[[T]], 0, 10] [1, %{{.*}}, 2] [1, 1, 1] : tensor<4x?x12xf32> to tensor<?x2xf32>
// CHECK: %[[PT:.*]] = tensor.extract_slice %[[P]][%[[T]], 0, 0] [1, %{{.*}}, 8] [1, 1, 1]
// CHECK: %[[Z:.*]] = linalg.generic {{.*}}iterator_types = ["reduction", "parallel", "parallel"]} ins(%[[HP]], %[[WHT]], %[[MHT]] : tensor<?x2xf32>, tensor<2x8xf32>, tensor<2x8xf32>) outs(%[[PT]] : tensor<?x8xf32>)
// CHECK: %[[CELL:.*]]:6 = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]}
// CHECK: math.exp
// CHECK: math.tanh
// CHECK: linalg.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32, f32, f32
// CHECK: tensor.insert_slice %[[CELL]]#5 into %{{.*}}[%[[T1]], 0, 10] [1, %{{.*}}, 2]
// CHECK: scf.yield
// The value: h over time, y(b, t, k) = stash(t + 1, b, 5H + k).
// CHECK: %[[Y:.*]] = linalg.generic {{.*}}ins(%[[FWD]] : tensor<4x?x12xf32>) outs(%{{.*}} : tensor<?x3x2xf32>)
// BPTT from t = T - 1 down; dh, dc and dZ are the loop's tensors.
// CHECK: %[[BACK:.*]]:3 = scf.for %[[R:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[DH:.*]] = %{{.*}}, %[[DC:.*]] = %{{.*}}, %[[DZ:.*]] = %{{.*}}) -> (tensor<?x2xf32>, tensor<?x2xf32>, tensor<3x?x8xf32>)
// CHECK: arith.subi %{{.*}}, %[[R]] : index
// CHECK: %[[G:.*]]:5 = linalg.generic {{.*}}outs(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[DC]] : tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>)
// CHECK: %[[DH0:.*]] = linalg.fill {{.*}}outs(%[[DH]] : tensor<?x2xf32>)
// CHECK: %[[DHP:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<8x2xf32>, tensor<8x2xf32>) outs(%[[DH0]] : tensor<?x2xf32>)
// CHECK: scf.yield %[[DHP]], %[[G]]#4, %{{.*}} : tensor<?x2xf32>, tensor<?x2xf32>, tensor<3x?x8xf32>
// dx, then dW_ih and dW_hh (the mask inside the contraction), then db.
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[BACK]]#2, %{{.*}}, %{{.*}} : tensor<3x?x8xf32>, tensor<8x5xf32>, tensor<8x5xf32>) outs(%{{.*}} : tensor<?x3x5xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["reduction", "reduction", "parallel", "parallel"]} ins(%[[BACK]]#2, %{{.*}}, %{{.*}} : tensor<3x?x8xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>) outs(%{{.*}} : tensor<8x5xf32>)
// CHECK: %[[HS:.*]] = tensor.extract_slice %[[FWD]][0, 0, 0] [3, %{{.*}}, 12] [1, 1, 1] : tensor<4x?x12xf32> to tensor<3x?x12xf32>
// CHECK: linalg.generic {{.*}}ins(%[[BACK]]#2, %[[HS]], %{{.*}} : tensor<3x?x8xf32>, tensor<3x?x12xf32>, tensor<8x2xf32>) outs(%{{.*}} : tensor<8x2xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["reduction", "reduction", "parallel"]} ins(%[[BACK]]#2 : tensor<3x?x8xf32>) outs(%{{.*}} : tensor<8xf32>)
func.func @lstm(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %mi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %mh: tensor<8x2xf32>, %bi: tensor<8xf32>, %bh: tensor<8xf32>, %dy: tensor<?x3x2xf32>) -> (tensor<?x3x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>) {
  %y, %s = sdl.masked_lstm %x, %wi, %mi, %wh, %mh, %bi, %bh : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  %dx, %dwi, %dwh, %db = sdl.masked_lstm_grad %dy, %x, %wi, %mi, %wh, %mh, %s : (tensor<?x3x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4x?x12xf32>) -> (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>)
  return %y, %dx, %dwi, %dwh, %db : tensor<?x3x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>
}

// `last`: the value is stash row T's h; the BPTT starts from dh = dy and
// adds no per-step gradient. No bias: the projection starts at zero.
// CHECK-LABEL: func.func @last
// CHECK: linalg.fill
// CHECK: scf.for
// CHECK: %[[H:.*]] = tensor.extract_slice %{{.*}}[3, 0, 10] [1, %{{.*}}, 2] [1, 1, 1] : tensor<4x?x12xf32> to tensor<?x2xf32>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[DYL:.*]], %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<?x2xf32>, tensor<?x2xf32>, tensor<3x?x8xf32>)
// CHECK-NOT: tensor.extract_slice %[[DYL]]
// CHECK: return %[[H]]
func.func @last(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %mi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %mh: tensor<8x2xf32>, %dy: tensor<?x2xf32>) -> (tensor<?x2xf32>, tensor<8x5xf32>) {
  %y, %s = sdl.masked_lstm %x, %wi, %mi, %wh, %mh {last} : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x2xf32>, tensor<4x?x12xf32>)
  %dx, %dwi, %dwh, %db = sdl.masked_lstm_grad %dy, %x, %wi, %mi, %wh, %mh, %s {last} : (tensor<?x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4x?x12xf32>) -> (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>)
  return %y, %dwi : tensor<?x2xf32>, tensor<8x5xf32>
}

// `seq_first`: x, y and dy are [T, B, F]: the projection reads x(t, b, i)
// with the identity of its leading dims, y(t, b, k) = stash(t + 1, b, 5H +
// k), dy(t) is row t of dy, and dx is written as x is laid out.
// CHECK-LABEL: func.func @seq
// CHECK: tensor.dim %arg0, %c1 : tensor<3x?x5xf32>
// CHECK: linalg.generic {indexing_maps = [#[[TBI]], {{.*}}iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%arg0, %{{.*}}, %{{.*}} : tensor<3x?x5xf32>, tensor<5x8xf32>, tensor<5x8xf32>) outs(%{{.*}} : tensor<3x?x8xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[YSEQ]], {{.*}}ins(%{{.*}} : tensor<4x?x12xf32>) outs(%{{.*}} : tensor<3x?x2xf32>)
// CHECK: scf.for %[[R:.*]] = %{{.*}} to
// CHECK: %[[T:.*]] = arith.subi %{{.*}}, %[[R]] : index
// CHECK: tensor.extract_slice %arg5[%[[T]], 0, 0] [1, %{{.*}}, 2] [1, 1, 1] : tensor<3x?x2xf32> to tensor<?x2xf32>
// CHECK: linalg.generic {{.*}}outs(%{{.*}} : tensor<3x?x5xf32>)
func.func @seq(%x: tensor<3x?x5xf32>, %wi: tensor<8x5xf32>, %mi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %mh: tensor<8x2xf32>, %dy: tensor<3x?x2xf32>) -> (tensor<3x?x2xf32>, tensor<3x?x5xf32>, tensor<8x5xf32>) {
  %y, %s = sdl.masked_lstm %x, %wi, %mi, %wh, %mh {seq_first} : (tensor<3x?x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<3x?x2xf32>, tensor<4x?x12xf32>)
  %dx, %dwi, %dwh, %db = sdl.masked_lstm_grad %dy, %x, %wi, %mi, %wh, %mh, %s {seq_first} : (tensor<3x?x2xf32>, tensor<3x?x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4x?x12xf32>) -> (tensor<3x?x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>)
  return %y, %dx, %dwi : tensor<3x?x2xf32>, tensor<3x?x5xf32>, tensor<8x5xf32>
}
