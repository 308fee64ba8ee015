// sparsec-gpu-forward: the forward entry (after sdl-finalize-abi) becomes
// host code with one gpu.launch per sdl op; temporaries are gpu.alloc'ed
// and freed, the last op writes the output argument, every other function
// is removed. An op without a GPU rule is an error.
// RUN: sparsec-opt %s -split-input-file -sparsec-gpu-forward -verify-diagnostics | FileCheck %s

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
// CHECK: func.func @sparsec_gpu_kernel_Gpu_forward(%[[X:[^:]+]]: memref<?x8xf32>, %[[POS:[^:]+]]: memref<7xi32>, %[[CRD:[^:]+]]: memref<24xi32>, %[[VAL:[^:]+]]: memref<24xf32>, %[[B1:[^:]+]]: memref<6xf32>, %[[W2:[^:]+]]: memref<3x6xf32>, %[[B2:[^:]+]]: memref<3xf32>, %[[OUT:[^:]+]]: memref<?x3xf32>)
// CHECK-SAME: sdl.target = "cuda"
//
// The CSR layer: h is used twice, so relu is not fused.
// CHECK: %[[H:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: scf.if
// CHECK: gpu.launch {{.*}} module(@sparsec_gpu_kernel_Gpu_forward_kernels) function(@sparsec_gpu_kernel_Gpu_forward_0_linear_csr)
// CHECK: memref.load %[[B1]]
// CHECK: memref.load %[[POS]]
// CHECK: scf.for
// CHECK: memref.load %[[CRD]]
// CHECK: memref.load %[[VAL]]
// CHECK: memref.load %[[X]]
// CHECK: math.fma
// CHECK-NOT: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[H]]
//
// CHECK: %[[R:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_1_relu)
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[R]]
//
// CHECK: %[[S:.+]] = gpu.alloc (%{{.+}}) : memref<?x6xf32>
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_2_add)
// CHECK: arith.addf
// CHECK: memref.store %{{.+}}, %[[S]]
//
// The dense layer writes the output argument directly.
// CHECK: function(@sparsec_gpu_kernel_Gpu_forward_3_linear_dense)
// CHECK: memref.load %[[W2]]
// CHECK: memref.load %[[S]]
// CHECK: math.fma
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK-NOT: gpu.memcpy
// CHECK: gpu.dealloc %[[H]]
// CHECK: gpu.dealloc %[[R]]
// CHECK: gpu.dealloc %[[S]]
// CHECK-NEXT: return

// -----

// relu(linear) as the linear's only use: one kernel, writing the output
// argument (no temporary).
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
// CHECK-NOT: gpu.alloc
// CHECK: function(@sparsec_gpu_kernel_Fused_forward_0_linear_dense_relu)
// CHECK: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: scf.for
// CHECK: arith.maximumf %{{.+}}, %[[ZERO]]
// CHECK: memref.store %{{.+}}, %[[OUT]]
// CHECK-NOT: gpu.launch
// CHECK: return

// -----

module @Unsupported {
  func.func @sparsec_kernel_Unsupported_forward(%arg0: memref<?x4xf32>, %arg1: memref<4x2xf32>, %arg2: memref<?x2xf32>) attributes {sdl.entry = "forward"} {
    %0 = bufferization.to_tensor %arg0 restrict : memref<?x4xf32> to tensor<?x4xf32>
    %1 = bufferization.to_tensor %arg1 restrict : memref<4x2xf32> to tensor<4x2xf32>
    // expected-error @+1 {{'sdl.matmul' op is not supported by the CUDA target yet}}
    %2 = sdl.matmul %0, %1 : (tensor<?x4xf32>, tensor<4x2xf32>) -> tensor<?x2xf32>
    bufferization.materialize_in_destination %2 in restrict writable %arg2 : (tensor<?x2xf32>, memref<?x2xf32>) -> ()
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
