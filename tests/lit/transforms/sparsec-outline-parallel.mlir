// sparsec-outline-parallel: an scf.parallel marked sdl.parallel (1-D, from
// 0, step 1) becomes a private function (ctx, lo, hi) running iterations
// [lo, hi) and a call of the runtime's sparsec_parallel_for(fn, ctx, n);
// the values the body uses from outside travel in a stack struct (memrefs
// as their LLVM descriptors, index as i64) allocated in the entry block.
// RUN: sparsec-opt %s -sparsec-outline-parallel | FileCheck %s
// The result lowers to the LLVM dialect (the casts of the descriptors fold).
// RUN: sparsec-opt %s -sparsec-outline-parallel -convert-scf-to-cf \
// RUN:   -finalize-memref-to-llvm -convert-to-llvm -reconcile-unrealized-casts \
// RUN:   | FileCheck %s --check-prefix=LLVM

// CHECK-LABEL: func.func @scale(
// CHECK-SAME: %[[M:[^:]+]]: memref<?xf32>, %[[S:[^:]+]]: f32, %[[N:[^:]+]]: index)
// CHECK: %[[SLOT:.+]] = llvm.alloca %{{.+}} x !llvm.struct<(i64, struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>, f32)>
// CHECK: scf.for %[[REP:.+]] = {{.+}} {
// CHECK: %[[I64:.+]] = arith.index_cast %[[REP]] : index to i64
// CHECK: llvm.insertvalue %[[I64]], %{{.+}}[0]
// CHECK: %[[D:.+]] = builtin.unrealized_conversion_cast %[[M]] : memref<?xf32> to !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
// CHECK: llvm.insertvalue %[[D]], %{{.+}}[1]
// CHECK: llvm.insertvalue %[[S]], %{{.+}}[2]
// CHECK: llvm.store %{{.+}}, %[[SLOT]]
// CHECK: %[[FN:.+]] = func.constant @scale_par0 : (!llvm.ptr, index, index) -> ()
// CHECK: func.call @sparsec_parallel_for(%[[FN]], %[[SLOT]], %[[N]])
// The unmarked loop stays.
// CHECK: scf.parallel
// CHECK-NOT: sdl.parallel
// CHECK: func.func private @scale_par0(%[[CTX:.+]]: !llvm.ptr, %[[LO:.+]]: index, %[[HI:.+]]: index)
// CHECK: %[[ALL:.+]] = llvm.load %[[CTX]]
// CHECK: llvm.extractvalue %[[ALL]][0]
// CHECK: arith.index_cast %{{.+}} : i64 to index
// CHECK: llvm.extractvalue %[[ALL]][1]
// CHECK: builtin.unrealized_conversion_cast %{{.+}} to memref<?xf32>
// CHECK: scf.for %[[I:.+]] = %[[LO]] to %[[HI]] step %{{.+}} {
// CHECK: arith.addi %[[I]]
// CHECK: memref.load
// CHECK: arith.mulf
// CHECK: memref.store
// CHECK: func.func private @sparsec_parallel_for((!llvm.ptr, index, index) -> (), !llvm.ptr, index)

// LLVM: llvm.func @scale(
// LLVM: %[[FN:.+]] = llvm.mlir.addressof @scale_par0 : !llvm.ptr
// LLVM: llvm.call @sparsec_parallel_for(%[[FN]], %{{.+}}, %{{.+}}) : (!llvm.ptr, !llvm.ptr, i64) -> ()
// LLVM: llvm.func @scale_par0(%{{.+}}: !llvm.ptr, %{{.+}}: i64, %{{.+}}: i64)
// LLVM: llvm.func @sparsec_parallel_for(!llvm.ptr, !llvm.ptr, i64)
// LLVM-NOT: unrealized_conversion_cast

func.func @scale(%m: memref<?xf32>, %s: f32, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.for %rep = %c0 to %c2 step %c1 {
    scf.parallel (%i) = (%c0) to (%n) step (%c1) {
      %j = arith.addi %i, %rep : index
      %v = memref.load %m[%j] : memref<?xf32>
      %w = arith.mulf %v, %s : f32
      memref.store %w, %m[%i] : memref<?xf32>
      scf.reduce
    } {sdl.parallel}
  }
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %s, %m[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
