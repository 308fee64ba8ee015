// sdl-generate-row-updates: with a fusing optimizer (sparse = "lazy", no
// clip_grad_norm, fused not false) every embedding sdl.param k gets
// @sparsec_kernel_<Model>_rows_<k>(values, 7 states, row_init, grad, perm,
// keys, starts, hyper) that sums each id's gradient rows in order and steps
// the row with the runtime's arithmetic (runtime.h: sparsec_row_update_args).
// RUN: sparsec-opt %s -split-input-file -sdl-generate-row-updates | FileCheck %s

// SparseAdam arithmetic with amsgrad; the padding row is skipped; the dense
// parameter (index 0) gets nothing.
// CHECK-LABEL: module @Adam
// CHECK-NOT: func.func @sparsec_kernel_Adam_rows_0
// CHECK: func.func @sparsec_kernel_Adam_rows_1(%[[VAL:.*]]: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %[[M:.*]]: memref<?xf32>, %[[V:.*]]: memref<?xf32>, %[[VM:.*]]: memref<?xf32>, %{{.*}}: memref<?xi8>, %[[G:.*]]: memref<?xf32>, %[[PERM:.*]]: memref<?xi32>, %[[KEYS:.*]]: memref<?xi32>, %[[STARTS:.*]]: memref<?xi32>, %[[H:.*]]: memref<?xf32>)
// CHECK-SAME: llvm.emit_c_interface
// CHECK-SAME: sdl.rows_of = "e.weight"
// CHECK: %[[BUF:.*]] = memref.alloca() : memref<4xf32>
// CHECK: scf.for %[[U:.*]] =
// The rows of the segment 8 on (clamped to the last) are prefetched for
// writing: the table's and those of the three states Adam uses.
// CHECK: %[[AH:.*]] = arith.minui
// CHECK: memref.load %[[STARTS]][%[[AH]]]
// CHECK: memref.load %[[KEYS]]
// CHECK: memref.prefetch %[[VAL]][%[[BASE:.*]]], write, locality<3>, data
// CHECK-NEXT: memref.prefetch %[[M]][%[[BASE]]], write
// CHECK-NEXT: memref.prefetch %[[V]][%[[BASE]]], write
// CHECK-NEXT: memref.prefetch %[[VM]][%[[BASE]]], write
// CHECK: %[[ID32:.*]] = memref.load %[[KEYS]]
// CHECK: %[[ID:.*]] = arith.index_castui %[[ID32]]
// CHECK: %[[NOTPAD:.*]] = arith.cmpi ne, %[[ID]], %c3
// CHECK: scf.if %[[NOTPAD]]
// Sum of the segment's rows, first row copied, the others added in order.
// CHECK: memref.load %[[PERM]]
// CHECK: scf.for
// CHECK: memref.store %{{.*}}, %[[BUF]]
// CHECK: scf.for
// CHECK: scf.for
// CHECK: arith.addf
// The step: m += (g - m) (1 - b1), v += (g^2 - v) (1 - b2), vmax, p update.
// CHECK: scf.for
// CHECK: %[[P:.*]] = memref.load %[[VAL]]
// CHECK: memref.load %[[M]]
// CHECK: memref.load %[[V]]
// CHECK: arith.subf
// CHECK: memref.store %{{.*}}, %[[M]]
// CHECK: memref.store %{{.*}}, %[[V]]
// CHECK: arith.cmpf oge
// CHECK: arith.select
// CHECK: memref.store %{{.*}}, %[[VM]]
// CHECK: math.sqrt
// CHECK: arith.divf
// CHECK: memref.store %{{.*}}, %[[VAL]]
module @Adam {
  sdl.param @w : tensor<3x3xf32> {init = "normal", init_a = 1.0 : f64, kind = "dense"}
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding", padding_idx = 3 : i64}
  sdl.optimizer "adam" {amsgrad = true, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, lr = 1.0e-02 : f64, weight_decay = 0.0 : f64}
}

// -----

// SGD with momentum: the per-row "buffer set" flag selects the first step's
// buffer (= g) and is set after the row; Nesterov adds momentum * buf.
// CHECK-LABEL: module @Sgd
// CHECK: func.func @sparsec_kernel_Sgd_rows_0(%[[VAL:[^:]*]]: memref<?xf32>, %[[MOM:[^:]*]]: memref<?xf32>, {{.*}}, %[[INIT:[^:]*]]: memref<?xi8>,
// CHECK-NOT: arith.cmpi ne, %{{.*}}, %c
// CHECK: %[[FLAG:.*]] = memref.load %[[INIT]]
// CHECK: %[[SET:.*]] = arith.cmpi ne, %[[FLAG]]
// CHECK: scf.for
// CHECK: memref.load %[[MOM]]
// CHECK: arith.select %[[SET]]
// CHECK: memref.store %{{.*}}, %[[MOM]]
// CHECK: memref.store %{{.*}}, %[[VAL]]
// CHECK: memref.store %c1_i8, %[[INIT]]
module @Sgd {
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.optimizer "sgd" {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.9 : f64, nesterov = true, weight_decay = 0.01 : f64}
}

// -----

// Row-wise Adagrad: one accumulator per row (indexed by the id), the mean
// of g^2 summed in f64.
// CHECK-LABEL: module @Rowwise
// CHECK: func.func @sparsec_kernel_Rowwise_rows_0(%[[VAL:[^:]*]]: memref<?xf32>, %{{[^:]*}}: memref<?xf32>, %[[SUM:[^:]*]]: memref<?xf32>,
// CHECK: scf.for {{.*}} iter_args(%[[ACC:.*]] = %{{.*}}) -> (f64)
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: arith.truncf %{{.*}} : f64 to f32
// CHECK: memref.store %{{.*}}, %[[SUM]][%[[ID:.*]]] : memref<?xf32>
// CHECK: math.sqrt
module @Rowwise {
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.optimizer "rowwise_adagrad" {eps = 1.0e-10 : f64, initial_accumulator_value = 0.0 : f64, lr = 0.01 : f64, weight_decay = 0.0 : f64}
}

// -----

// Catch-up rows, clipping and fused = false keep the runtime's step.
// CHECK-LABEL: module @Catchup
// CHECK-NOT: func.func
module @Catchup {
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.optimizer "adam" {amsgrad = false, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-08 : f64, lr = 1.0e-02 : f64, weight_decay = 0.0 : f64, sparse = "catchup"}
}

// -----

// CHECK-LABEL: module @Clipped
// CHECK-NOT: func.func
module @Clipped {
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.optimizer "adagrad" {eps = 1.0e-10 : f64, initial_accumulator_value = 0.0 : f64, lr = 0.01 : f64, lr_decay = 0.0 : f64, weight_decay = 0.0 : f64, clip_grad_norm = 1.0 : f64}
}

// -----

// CHECK-LABEL: module @Unfused
// CHECK-NOT: func.func
module @Unfused {
  sdl.param @e.weight : tensor<10x4xf32> {init = "normal", init_a = 1.0 : f64, kind = "embedding"}
  sdl.optimizer "sgd" {dampening = 0.0 : f64, lr = 0.1 : f64, momentum = 0.0 : f64, nesterov = false, weight_decay = 0.0 : f64, fused = false}
}
