// sparsec-gpu-emulate: host code with gpu.launch kernels becomes plain host
// code running the kernel bodies on the CPU (sparsec --cuda-emulate): each
// launch is loops over the grid and the block (z, y, x; blocks outside,
// threads inside) with the ids, grid and block sizes replaced; gpu.alloc,
// gpu.dealloc and gpu.memcpy become memref.alloc, memref.dealloc and
// memref.copy. Kernels that need threads to run together are rejected; a
// thread's static scratch (memref.alloca) is hoisted out of the loops.
// RUN: sparsec-opt %s -split-input-file -sparsec-gpu-emulate -verify-diagnostics | FileCheck %s

func.func @scale(%x: memref<?xf32>, %out: memref<?xf32>, %n: index) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c256 = arith.constant 256 : index
  %t = gpu.alloc (%n) : memref<?xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c4, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) {
    %base = arith.muli %bx, %sx : index
    %i = arith.addi %base, %tx : index
    %in = arith.cmpi ult, %i, %n : index
    scf.if %in {
      %v = memref.load %x[%i] : memref<?xf32>
      %w = arith.addf %v, %v : f32
      memref.store %w, %t[%i] : memref<?xf32>
    }
    gpu.terminator
  }
  gpu.memcpy %out, %t : memref<?xf32>, memref<?xf32>
  gpu.dealloc %t : memref<?xf32>
  return
}

// CHECK-LABEL: func.func @scale(
// CHECK-SAME: %[[X:[^:]+]]: memref<?xf32>, %[[OUT:[^:]+]]: memref<?xf32>, %[[N:[^:]+]]: index)
// CHECK-DAG: %[[C1:.+]] = arith.constant 1 : index
// CHECK-DAG: %[[C4:.+]] = arith.constant 4 : index
// CHECK-DAG: %[[C256:.+]] = arith.constant 256 : index
// CHECK: %[[T:.+]] = memref.alloc(%[[N]]) : memref<?xf32>
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[C1]]
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[C1]]
// CHECK: scf.for %[[BX:.+]] = %{{.+}} to %[[C4]]
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[C1]]
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[C1]]
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %[[C256]]
// CHECK: %[[BASE:.+]] = arith.muli %[[BX]], %[[C256]] : index
// CHECK: arith.addi %[[BASE]], %[[TX]] : index
// CHECK: memref.store %{{.+}}, %[[T]]
// CHECK-NOT: gpu.
// CHECK: memref.copy %[[T]], %[[OUT]] : memref<?xf32> to memref<?xf32>
// CHECK: memref.dealloc %[[T]] : memref<?xf32>
// CHECK-NEXT: return

// -----

// Per-thread scratch: one alloca before the loops, not one per thread.
func.func @scratch(%out: memref<64xi64>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %h = memref.alloca() : memref<4xi64>
    %c0 = arith.constant 0 : index
    %v = arith.index_cast %tx : index to i64
    memref.store %v, %h[%c0] : memref<4xi64>
    %w = memref.load %h[%c0] : memref<4xi64>
    memref.store %w, %out[%tx] : memref<64xi64>
    gpu.terminator
  }
  return
}

// CHECK-LABEL: func.func @scratch(
// CHECK: %[[H:.+]] = memref.alloca() : memref<4xi64>
// CHECK-NEXT: scf.for
// CHECK-NOT: memref.alloca
// CHECK: memref.store %{{.+}}, %[[H]]
// CHECK: return

// -----

func.func @barrier(%x: memref<256xf32>) {
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  // expected-error @+1 {{uses GPU operations inside the kernel (barriers, ids, shuffles), which the emulator cannot run}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) {
    gpu.barrier
    gpu.terminator
  }
  return
}

// -----

func.func @shared(%x: memref<256xf32>) {
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  // expected-error @+1 {{uses shared/private memory or clusters, which the emulator cannot run}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c256, %sy = %c1, %sz = %c1) workgroup(%buf : memref<256xf32, #gpu.address_space<workgroup>>) {
    gpu.terminator
  }
  return
}

// -----

func.func @async(%n: index) {
  %w = gpu.wait async
  // expected-error @+1 {{is asynchronous; emulate before gpu-async-region}}
  %m, %t = gpu.alloc async [%w] (%n) : memref<?xf32>
  return
}
