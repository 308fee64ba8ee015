// sdl-generate-rigl-scores: every CSR sdl.param k with dynamic = "rigl" gets
// @sparsec_kernel_<Model>_score_<k>(x, dy, score) with score[r, i] =
// sum_b dy[b, r] * x[b, i] (runtime.h: sparsec_score_fn): rows in an
// sdl.parallel loop, each row zeroed and accumulated in 512-column blocks,
// batch in order, innermost loop over contiguous columns. Static and SET
// parameters get nothing.
// RUN: sparsec-opt %s -sdl-generate-rigl-scores | FileCheck %s

#CSR = #sparse_tensor.encoding<{map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32}>
module @Grow {
  sdl.param @a.weight : tensor<6x8xf32, #CSR> {init = "fan_in_uniform", init_a = 8.000000e+00 : f64, kind = "csr", nnz = 12 : i64, dynamic = "set", delta_t = 2 : i64, t_end = 10 : i64, drop_fraction = 3.000000e-01 : f64}
  sdl.param @a.bias : tensor<6xf32> {init = "fan_in_uniform", init_a = 8.000000e+00 : f64, kind = "dense"}
  sdl.param @b.weight : tensor<4x6xf32, #CSR> {init = "fan_in_uniform", init_a = 6.000000e+00 : f64, kind = "csr", nnz = 8 : i64, dynamic = "rigl", delta_t = 2 : i64, t_end = 10 : i64, drop_fraction = 3.000000e-01 : f64, max_size = 12 : i64}
}

// CHECK-NOT: func.func @sparsec_kernel_Grow_score_0
// CHECK-NOT: func.func @sparsec_kernel_Grow_score_1
// CHECK-LABEL: func.func @sparsec_kernel_Grow_score_2(
// CHECK-SAME: %[[X:.*]]: memref<?x?xf32>, %[[DY:.*]]: memref<?x?xf32, strided<[?, 1], offset: ?>>, %[[S:.*]]: memref<?x?xf32>)
// CHECK-SAME: llvm.emit_c_interface
// CHECK-DAG: %[[B:.*]] = memref.dim %[[X]], %c0
// CHECK-DAG: %[[IN:.*]] = memref.dim %[[X]], %c1
// CHECK-DAG: %[[ROWS:.*]] = memref.dim %[[S]], %c0
// CHECK: scf.parallel (%[[R:.*]]) = (%c0) to (%[[ROWS]]) step (%c1)
// CHECK: scf.for %[[I0:.*]] = %c0 to %[[IN]] step %c512
// CHECK: %[[END:.*]] = arith.minsi
// CHECK: scf.for %[[I:.*]] = %[[I0]] to %[[END]] step %c1
// CHECK: memref.store %{{.*}}, %[[S]][%[[R]], %[[I]]]
// CHECK: scf.for %[[BI:.*]] = %c0 to %[[B]] step %c1
// CHECK: %[[D:.*]] = memref.load %[[DY]][%[[BI]], %[[R]]]
// CHECK: scf.for %[[J:.*]] = %[[I0]] to %[[END]] step %c1
// CHECK: %[[OLD:.*]] = memref.load %[[S]][%[[R]], %[[J]]]
// CHECK: %[[XV:.*]] = memref.load %[[X]][%[[BI]], %[[J]]]
// CHECK: %[[P:.*]] = arith.mulf %[[D]], %[[XV]]
// CHECK: %[[SUM:.*]] = arith.addf %[[OLD]], %[[P]]
// CHECK: memref.store %[[SUM]], %[[S]][%[[R]], %[[J]]]
// CHECK: } {sdl.parallel}
// CHECK-NOT: func.func @sparsec_kernel_Grow_score
