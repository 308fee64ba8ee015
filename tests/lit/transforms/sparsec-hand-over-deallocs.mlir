// sparsec-hand-over-deallocs: the memref.dealloc ops the sparsifier emits for
// its own temporaries (a buffer it allocated, or one that went through its
// loops) are erased, so that the ownership-based deallocation accepts the
// function and frees them itself; a dealloc of a function argument stays.
// RUN: sparsec-opt %s -sparsec-hand-over-deallocs | FileCheck %s
// After it, the deallocation pipeline frees the temporaries (the grown one
// through its ownership flags) and still reports the dealloc of the argument.
// RUN: not sparsec-opt %s --split-input-file -sparsec-hand-over-deallocs \
// RUN:   -buffer-deallocation-pipeline 2>&1 | FileCheck %s --check-prefix=OWN
// Without it, the deallocation pass rejects the sparsifier's frees.
// RUN: not sparsec-opt %s --split-input-file -buffer-deallocation-pipeline \
// RUN:   2>&1 | FileCheck %s --check-prefix=REJECT
// REJECT: error: memory free side-effect on MemRef value not supported
// REJECT: error: memory free side-effect on MemRef value not supported
// REJECT: error: memory free side-effect on MemRef value not supported

// CHECK-LABEL: func.func @expand(
// CHECK: %[[A:.+]] = memref.alloc(
// CHECK-NOT: memref.dealloc
// CHECK: return
// OWN-LABEL: func.func @expand(
// OWN: memref.alloc(
// OWN: memref.dealloc
// OWN-NOT: memref.dealloc
// OWN: return
func.func @expand(%n: index, %v: f32) -> f32 {
  %c0 = arith.constant 0 : index
  %a = memref.alloc(%n) : memref<?xf32>
  memref.store %v, %a[%c0] : memref<?xf32>
  %r = memref.load %a[%c0] : memref<?xf32>
  memref.dealloc %a : memref<?xf32>
  return %r : f32
}

// -----

// A buffer grown in a loop (as by the sparsifier's insertion functions):
// the dealloc of the loop's result is erased too.
// CHECK-LABEL: func.func @grown(
// CHECK: scf.for
// CHECK-NOT: memref.dealloc
// CHECK: return
// OWN-LABEL: func.func @grown(
// OWN: scf.for
// OWN: memref.dealloc
// OWN: return
func.func @grown(%n: index) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = memref.alloc(%c1) : memref<?xindex>
  %g = scf.for %i = %c0 to %n step %c1 iter_args(%b = %a) -> memref<?xindex> {
    %s = arith.addi %i, %c1 : index
    %r = memref.realloc %b(%s) : memref<?xindex> to memref<?xindex>
    scf.yield %r : memref<?xindex>
  }
  %d = memref.dim %g, %c0 : memref<?xindex>
  memref.dealloc %g : memref<?xindex>
  return %d : index
}

// -----

// CHECK-LABEL: func.func @argument(
// CHECK: memref.dealloc %arg0
// OWN: error: memory free side-effect on MemRef value not supported
func.func @argument(%m: memref<4xf32>) {
  memref.dealloc %m : memref<4xf32>
  return
}
