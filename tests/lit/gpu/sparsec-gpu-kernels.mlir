// sparsec-gpu-kernels: the forward and train entries (after
// sdl-finalize-abi) become host code with gpu.launch kernels per sdl op, all
// in one gpu.module per model; temporaries are gpu.alloc'ed and freed, the
// last op writes the output argument, every other function is removed. An
// op without a GPU rule is an error.
// RUN: sparsec-opt %s -split-input-file -sparsec-gpu-kernels -verify-diagnostics | FileCheck %s

#sparse = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Gpu {
  func.func @sparsec_kernel_Gpu_forward(%arg0: memref<?x8xf32>, %arg1: memref<7xi32>, %arg2: memref<24xi32>, %arg3: memref<24xf32>, %arg4: memref<6xf32>, %arg5: memref<3x6xf32>, %arg6: memref<3xf32>, %arg7: memref<?x3xf32>) attributes {llvm.emit_c_interface, sdl.entry = "forward"} {
    %0 = bufferization.to_tensor %arg0 restrict : memref<?x8xf32> to tensor<?x8xf32>
    %1 = bufferization.to_tensor %arg1 restrict : memref<7xi32> to tensor<7xi32>
    %2 = bufferization.to_tensor %arg2 restrict : memref<24xi32> to tensor<24xi32>
    %3 = bufferization.to_tensor %arg3 restrict : memref<24xf32> to tensor<24xf32>
    %4 = sparse_tensor.assemble (%1, %2), %3 : (tensor<7xi32>, tensor<24xi32>), tensor<24xf32> to tensor<6x8xf32, #sparse>
    %5 = bufferization.to_tensor %arg4 restrict : memref<6xf32> to tensor<6xf32>
    %6 = bufferization.to_tensor %arg5 restrict : memref<3x6xf32> to tensor<3x6xf32>
    %7 = bufferization.to_tensor %arg6 restrict : memref<3xf32> to tensor<3xf32>
    %8 = sdl.linear %0, %4, %5 : (tensor<?x8xf32>, tensor<6x8xf32, #sparse>, tensor<6xf32>) -> tensor<?x6xf32>
    %9 = sdl.relu %8 : (tensor<?x6xf32>) -> tensor<?x6xf32>
    %10 = sdl.add %8, %9 : (tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
    %11 = sdl.linear %10, %6, %7 : (tensor<?x6xf32>, tensor<3x6xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    bufferization.materialize_in_destination %11 in restrict writable %arg7 : (tensor<?x3xf32>, memref<?x3xf32>) -> ()
    return
  }
  func.func @sparsec_kernel_Gpu_train(%arg0: memref<?x8xf32>) -> f32 attributes {llvm.emit_c_interface, sdl.entry = "train"} {
    %cst = arith.constant 0.0 : f32
    return %cst : f32
  }
}

// CHECK-LABEL: module @Gpu
// CHECK-NOT: sparsec_kernel_Gpu_train
// CHECK-NOT: func.func @sparsec_kernel_Gpu_forward
// CHECK: func.func @sparsec_gpu_kernel_Gpu_forward(%[[X:[^:]+]]: memref<?x8xf32>, %[[POS:[^:]+]]: memref<7xi32>, %[[CRD:[^:]+]]: memref<24xi32>, %[[VAL:[^:]+]]: memref<24xf32>, %[[B1:[^:]+]]: memref<6xf32>, %[[W2:[^:]+]]: memref<3x6xf32>, %[[B2:[^:]+]]: memref<3xf32>, %[[OUT:[^:]+]]: memref<?x3xf32>)
// CHECK-SAME: sdl.target = "cuda"
//
// The CSR layer: h is used twice, so relu is not fused. Its input is
// transposed first (x^T [8, B]); a thread computes y[b, r] with
// r = i / B, b = i mod B, reading x^T[crd[k], b].
// CHECK: %[[H:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: %[[XT:.+]] = gpu.alloc (%{{.+}}) : memref<8x?xf32>
// At least one block, and no host branch around the launch.
// CHECK: %[[TBLOCKS:.+]] = arith.maxui %{{.+}}, %{{.+}} : index
// CHECK-NOT: scf.if
// CHECK: gpu.launch blocks(%{{.+}}) in (%{{.+}} = %[[TBLOCKS]], {{.*}} module(@sparsec_gpu_kernel_Gpu_kernels) function(@sparsec_gpu_kernel_Gpu_forward_0_transpose)
// CHECK: %[[TR:.+]] = arith.divui
// CHECK: %[[TC:.+]] = arith.remui
// CHECK: %[[XV:.+]] = memref.load %[[X]][%[[TR]], %[[TC]]]
// CHECK: memref.store %[[XV]], %[[XT]][%[[TC]], %[[TR]]]
// CHECK: %[[BLOCKS:.+]] = arith.maxui %{{.+}}, %{{.+}} : index
// CHECK-NOT: scf.if
// CHECK: gpu.launch blocks(%{{.+}}) in (%{{.+}} = %[[BLOCKS]], {{.*}} module(@sparsec_gpu_kernel_Gpu_kernels) function(@sparsec_gpu_kernel_Gpu_forward_1_linear_csr)
// CHECK: %[[ROW:.+]] = arith.divui
// CHECK: %[[SAMPLE:.+]] = arith.remui
// CHECK: memref.load %[[B1]][%[[ROW]]]
// CHECK: memref.load %[[POS]]
// CHECK: scf.for
// CHECK: %[[COL:.+]] = arith.index_castui
// CHECK: memref.load %[[VAL]]
// CHECK: memref.load %[[XT]][%[[COL]], %[[SAMPLE]]]
// CHECK: math.fma
// CHECK-NOT: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[H]][%[[SAMPLE]], %[[ROW]]]
//
// CHECK: %[[R:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_2_relu)
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[R]]
//
// CHECK: %[[S:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_3_add)
// CHECK: arith.addf
// CHECK: memref.store %{{.+}}, %[[S]]
//
// The dense layer writes the output argument directly.
// CHECK: %[[ST:.+]] = gpu.alloc (%{{.+}}) : memref<6x?xf32>
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_4_transpose)
// CHECK: memref.load %[[S]]
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_5_linear_dense)
// CHECK: memref.load %[[W2]]
// CHECK: memref.load %[[ST]]
// CHECK: math.fma
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK-NOT: gpu.memcpy
// CHECK: gpu.dealloc %[[H]]
// CHECK: gpu.dealloc %[[XT]]
// CHECK: gpu.dealloc %[[R]]
// CHECK: gpu.dealloc %[[S]]
// CHECK: gpu.dealloc %[[ST]]
// CHECK-NEXT: return
// The train entry is lowered too (here: no ops, the constant loss).
// CHECK: func.func @sparsec_gpu_kernel_Gpu_train(%{{.+}}: memref<?x8xf32>) -> f32
// CHECK: %[[L:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: return %[[L]] : f32

// -----

// relu(linear) as the linear's only use: one kernel, writing the output
// argument (the only temporary is the input's transpose).
module @Fused {
  func.func @sparsec_kernel_Fused_forward(%arg0: memref<?x4xf32>, %arg1: memref<2x4xf32>, %arg2: memref<?x2xf32>) attributes {sdl.entry = "forward"} {
    %0 = bufferization.to_tensor %arg0 restrict : memref<?x4xf32> to tensor<?x4xf32>
    %1 = bufferization.to_tensor %arg1 restrict : memref<2x4xf32> to tensor<2x4xf32>
    %2 = sdl.linear %0, %1 : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x2xf32>
    %3 = sdl.relu %2 : (tensor<?x2xf32>) -> tensor<?x2xf32>
    bufferization.materialize_in_destination %3 in restrict writable %arg2 : (tensor<?x2xf32>, memref<?x2xf32>) -> ()
    return
  }
}

// CHECK-LABEL: module @Fused
// CHECK: func.func @sparsec_gpu_kernel_Fused_forward(%{{[^:]+}}: memref<?x4xf32>, %{{[^:]+}}: memref<2x4xf32>, %[[OUT:[^:]+]]: memref<?x2xf32>)
// CHECK: gpu.alloc (%{{.+}}) : memref<4x?xf32>
// CHECK-NOT: gpu.alloc
// CHECK: function(@sparsec_gpu_kernel_Fused_forward_0_transpose)
// CHECK-NOT: gpu.alloc
// CHECK: function(@sparsec_gpu_kernel_Fused_forward_1_linear_dense_relu)
// CHECK: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: scf.for
// CHECK: arith.maximumf %{{.+}}, %[[ZERO]]
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK-NOT: gpu.launch
// CHECK: return

// -----

#csr = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Train {
  func.func @sparsec_kernel_T_forward(%arg0: memref<?x4xf32>) attributes {sdl.entry = "forward"} {
    return
  }
  func.func @sparsec_kernel_T_train(%arg0: memref<?x6xf32>, %arg1: memref<?xi64>, %arg2: memref<5x6xf32>, %arg3: memref<5xf32>, %arg4: memref<5xi32>, %arg5: memref<10xi32>, %arg6: memref<10xf32>, %arg7: memref<4xf32>, %arg8: memref<5x6xf32>, %arg9: memref<5xf32>, %arg10: memref<10xf32>, %arg11: memref<4xf32>) -> f32 attributes {llvm.emit_c_interface, sdl.entry = "train"} {
    %0 = bufferization.to_tensor %arg0 restrict : memref<?x6xf32> to tensor<?x6xf32>
    %1 = bufferization.to_tensor %arg1 restrict : memref<?xi64> to tensor<?xi64>
    %2 = bufferization.to_tensor %arg2 restrict : memref<5x6xf32> to tensor<5x6xf32>
    %3 = bufferization.to_tensor %arg3 restrict : memref<5xf32> to tensor<5xf32>
    %4 = bufferization.to_tensor %arg4 restrict : memref<5xi32> to tensor<5xi32>
    %5 = bufferization.to_tensor %arg5 restrict : memref<10xi32> to tensor<10xi32>
    %6 = bufferization.to_tensor %arg6 restrict : memref<10xf32> to tensor<10xf32>
    %7 = sparse_tensor.assemble (%4, %5), %6 : (tensor<5xi32>, tensor<10xi32>), tensor<10xf32> to tensor<4x5xf32, #csr>
    %8 = bufferization.to_tensor %arg7 restrict : memref<4xf32> to tensor<4xf32>
    %9 = sdl.linear %0, %2, %3 : (tensor<?x6xf32>, tensor<5x6xf32>, tensor<5xf32>) -> tensor<?x5xf32>
    %10 = sdl.relu %9 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %11 = sdl.linear %10, %7, %8 : (tensor<?x5xf32>, tensor<4x5xf32, #csr>, tensor<4xf32>) -> tensor<?x4xf32>
    %12 = sdl.cross_entropy_loss %11, %1 : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<f32>
    %13 = sdl.cross_entropy_loss_grad %11, %1 : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<?x4xf32>
    %14 = sdl.linear_grad_input %13, %7 : (tensor<?x4xf32>, tensor<4x5xf32, #csr>) -> tensor<?x5xf32>
    %15 = sdl.linear_grad_weight %13, %10, %7 : (tensor<?x4xf32>, tensor<?x5xf32>, tensor<4x5xf32, #csr>) -> tensor<4x5xf32, #csr>
    %16 = sdl.reduce_batch %13 : (tensor<?x4xf32>) -> tensor<4xf32>
    %17 = sdl.relu_grad %9, %14 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %18 = sdl.linear_grad_weight %17, %0, %2 : (tensor<?x5xf32>, tensor<?x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>
    %19 = sdl.reduce_batch %17 : (tensor<?x5xf32>) -> tensor<5xf32>
    %extracted = tensor.extract %12[] : tensor<f32>
    bufferization.materialize_in_destination %18 in restrict writable %arg8 : (tensor<5x6xf32>, memref<5x6xf32>) -> ()
    bufferization.materialize_in_destination %19 in restrict writable %arg9 : (tensor<5xf32>, memref<5xf32>) -> ()
    %20 = tensor.empty() : tensor<5xi32>
    %21 = tensor.empty() : tensor<10xi32>
    %22 = tensor.empty() : tensor<10xf32>
    %ret_levels:2, %ret_values, %lvl_lens:2, %val_len = sparse_tensor.disassemble %15 : tensor<4x5xf32, #csr> out_lvls(%20, %21 : tensor<5xi32>, tensor<10xi32>) out_vals(%22 : tensor<10xf32>) -> (tensor<5xi32>, tensor<10xi32>), tensor<10xf32>, (index, index), index
    bufferization.materialize_in_destination %ret_values in restrict writable %arg10 : (tensor<10xf32>, memref<10xf32>) -> ()
    bufferization.materialize_in_destination %16 in restrict writable %arg11 : (tensor<4xf32>, memref<4xf32>) -> ()
    return %extracted : f32
  }}

// The train entry of a dense layer with a relu and a CSR layer (sparsity
// 0.5) under cross-entropy: one softmax-stats kernel shared by the loss and
// its gradient, the loss read back to the host and returned, the CSR input
// gradient as zero-fill + atomic adds, the CSR weight gradient (its row by
// binary search) computed in its output argument, exp/log as polynomials.
// CHECK-LABEL: module @Train
// CHECK: func.func @sparsec_gpu_kernel_T_train(%[[X:[^:]+]]: memref<?x6xf32>, %[[Y:[^:]+]]: memref<?xi64>, %{{[^:]+}}: memref<5x6xf32>, %{{[^:]+}}: memref<5xf32>, %[[POS:[^:]+]]: memref<5xi32>, %[[CRD:[^:]+]]: memref<10xi32>, %[[VAL:[^:]+]]: memref<10xf32>, %{{[^:]+}}: memref<4xf32>, %[[GW1:[^:]+]]: memref<5x6xf32>, %[[GB1:[^:]+]]: memref<5xf32>, %[[GVAL:[^:]+]]: memref<10xf32>, %[[GB2:[^:]+]]: memref<4xf32>) -> f32
// CHECK-NOT: math.exp
// CHECK-NOT: math.log
// CHECK: function(@sparsec_gpu_kernel_T_train_0_transpose)
// CHECK: function(@sparsec_gpu_kernel_T_train_1_linear_dense)
// CHECK: function(@sparsec_gpu_kernel_T_train_2_relu)
// CHECK: function(@sparsec_gpu_kernel_T_train_3_transpose)
// CHECK: function(@sparsec_gpu_kernel_T_train_4_linear_csr)
// CHECK: function(@sparsec_gpu_kernel_T_train_5_softmax_stats)
// CHECK: arith.maximumf
// CHECK: %[[LOSS:.+]] = gpu.alloc () : memref<f32>
// CHECK: function(@sparsec_gpu_kernel_T_train_7_cross_entropy_mean)
// CHECK: scf.for
// CHECK: arith.divf
// CHECK: memref.store %{{.+}}, %[[LOSS]][]
// CHECK: function(@sparsec_gpu_kernel_T_train_8_cross_entropy_grad)
// CHECK: memref.load %[[Y]]
// CHECK: arith.select
// CHECK: %[[DH:.+]] = gpu.alloc (%{{.+}}) : memref<?x5xf32>
// CHECK: function(@sparsec_gpu_kernel_T_train_9_zero)
// CHECK: memref.store %{{.+}}, %[[DH]]
// A CSR row's group of lanes: g, the power of two >= the mean row length
// (at most 32), chosen on the host; lane l takes the entries pos[r] + l,
// pos[r] + l + g, ...
// CHECK: %[[MEAN:.+]] = arith.ceildivui
// CHECK: arith.cmpi ugt, %[[MEAN]]
// CHECK-COUNT-5: arith.select
// CHECK: function(@sparsec_gpu_kernel_T_train_10_linear_grad_input_csr)
// CHECK: %[[LANE:.+]] = arith.remui
// CHECK: memref.load %[[POS]]
// CHECK: %[[FIRST:.+]] = arith.addi %{{.+}}, %[[LANE]]
// CHECK: scf.for %{{.+}} = %[[FIRST]] to
// CHECK: memref.atomic_rmw addf %{{.+}}, %[[DH]]
// The SDDMM: a group of lanes per row, no search for an entry's row.
// CHECK-NOT: scf.while
// CHECK: function(@sparsec_gpu_kernel_T_train_11_linear_grad_weight_csr)
// CHECK: memref.load %[[POS]]
// CHECK: scf.for
// CHECK: memref.load %[[CRD]]
// CHECK: memref.store %{{.+}}, %[[GVAL]]
// CHECK: function(@sparsec_gpu_kernel_T_train_12_reduce_batch)
// CHECK: memref.store %{{.+}}, %[[GB2]]
// CHECK: function(@sparsec_gpu_kernel_T_train_13_relu_grad)
// CHECK: arith.cmpf ogt
// CHECK: function(@sparsec_gpu_kernel_T_train_14_linear_grad_weight_dense)
// CHECK: memref.load %[[X]]
// CHECK: memref.store %{{.+}}, %[[GW1]]
// CHECK: function(@sparsec_gpu_kernel_T_train_15_reduce_batch)
// CHECK: memref.store %{{.+}}, %[[GB1]]
// CHECK: %[[HOST:.+]] = memref.alloca() : memref<f32>
// CHECK: gpu.memcpy  %[[HOST]], %[[LOSS]]
// CHECK: %[[L:.+]] = memref.load %[[HOST]][]
// CHECK-NOT: gpu.memcpy
// CHECK: gpu.dealloc %[[LOSS]]
// CHECK: return %[[L]] : f32

// -----

module @Unsupported {
  func.func @sparsec_kernel_Unsupported_forward(%arg0: memref<?x4xf32>, %arg1: memref<2x4xf32>, %arg2: memref<?x2xf32>) attributes {sdl.entry = "forward"} {
    %0 = bufferization.to_tensor %arg0 restrict : memref<?x4xf32> to tensor<?x4xf32>
    %1 = bufferization.to_tensor %arg1 restrict : memref<2x4xf32> to tensor<2x4xf32>
    // expected-error @+1 {{'arith.mulf' op is not supported by the CUDA target yet}}
    %2 = arith.mulf %1, %1 : tensor<2x4xf32>
    %3 = sdl.linear %0, %2 : (tensor<?x4xf32>, tensor<2x4xf32>) -> tensor<?x2xf32>
    bufferization.materialize_in_destination %3 in restrict writable %arg2 : (tensor<?x2xf32>, memref<?x2xf32>) -> ()
    return
  }
}

// -----

// expected-error @+1 {{no forward entry}}
module @NoForward {
  func.func @f() {
    return
  }
}
