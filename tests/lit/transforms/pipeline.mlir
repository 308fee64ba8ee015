// sparsec-all: the whole pipeline (training expansion, ABI, linalg, then the
// sparsifier in codegen mode down to the LLVM dialect) on the sdl form of a
// small sparse MLP (sparsec --emit=sdl).
//
// The result is pure LLVM dialect: no sdl, linalg, tensor, sparse_tensor,
// bufferization, memref, scf, arith, math or func op is left.
// RUN: sparsec-opt %s -sparsec-all --mlir-print-op-generic \
// RUN:   | %python -c 'import re, sys; ops = set(re.findall(r"\"([a-z_]+\.[a-z_.0-9]+)\"\(", sys.stdin.read())); print("dialects:", " ".join(sorted({o.split(".")[0] for o in ops}))); print("builtin ops:", " ".join(sorted(o for o in ops if o.startswith("builtin."))))' \
// RUN:   | FileCheck %s --check-prefix=DIALECTS
// DIALECTS: dialects: builtin llvm{{$}}
// DIALECTS-NEXT: builtin ops: builtin.module{{$}}
//
// Codegen mode: the only external functions are the runtime's caching
// allocator (MLIR's generic allocation functions, runtime/src/kernel_alloc.c)
// and its thread pool, sparsec_parallel_for (declared private, so the
// regex below does not list it; no _mlir_ciface_newSparseTensor or any other
// function of MLIR's runtime libraries), and only they and the kernels are
// called.
// RUN: sparsec-opt %s -sparsec-all \
// RUN:   | %python -c 'import re, sys; s = sys.stdin.read(); print("declared:", " ".join(sorted(re.findall(r"llvm\.func @(\w+)\([^{\n]*$", s, re.M)))); print("called:", " ".join(sorted(set(re.findall(r"llvm\.call @(\w+)\(", s)))))' \
// RUN:   | FileCheck %s --check-prefix=EXTERN
// EXTERN: declared: _mlir_memref_to_llvm_alloc _mlir_memref_to_llvm_free{{$}}
// EXTERN-NEXT: called: _mlir_memref_to_llvm_alloc _mlir_memref_to_llvm_free sparsec_kernel_Tiny_forward sparsec_kernel_Tiny_train sparsec_parallel_for{{$}}
//
// Every temporary is freed: as many calls to free as to malloc.
// RUN: sparsec-opt %s -sparsec-all \
// RUN:   | %python -c 'import sys; s = sys.stdin.read(); print("malloc", s.count("llvm.call @_mlir_memref_to_llvm_alloc("), "free", s.count("llvm.call @_mlir_memref_to_llvm_free("))' \
// RUN:   | FileCheck %s --check-prefix=MEM
// MEM: malloc [[N:[1-9][0-9]*]] free [[N]]{{$}}
//
// Results are computed in the caller's buffers (eliminate-empty-tensors runs
// before bufferization): the forward kernel allocates only the batch-blocked
// activations of sdl-lower-sparse-linear (x, the first layer's output with
// its ReLU applied as it is stored, the second layer's output; the hidden
// [B, 4] form is never built) and copies nothing into its output (the
// second layer's blocks are copied back into it directly).
// RUN: sparsec-opt %s -sparsec-all \
// RUN:   | %python -c 'import re, sys; f = re.search(r"llvm\.func @sparsec_kernel_Tiny_forward\(.*?\n  \}", sys.stdin.read(), re.S).group(0); print("forward: malloc", f.count("llvm.call @_mlir_memref_to_llvm_alloc("), "memcpy", f.count("memcpy"))' \
// RUN:   | FileCheck %s --check-prefix=FWD
// FWD: forward: malloc 3 memcpy 0{{$}}
//
// RUN: sparsec-opt %s -sparsec-all | FileCheck %s \
// RUN:   --implicit-check-not=newSparseTensor --implicit-check-not=memrefCopy --implicit-check-not='sdl.{{[a-z_]+}} {{[%@"]}}'

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Tiny {
  sdl.param @fc1.weight : tensor<4x8xf32, #CSR> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "csr", nnz = 16 : i64}
  sdl.param @fc1.bias : tensor<4xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.weight : tensor<3x4xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.param @fc2.bias : tensor<3xf32> {init = "fan_in_uniform", init_a = 4.000000e+00 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @Tiny(%arg0: tensor<?x8xf32> {sdl.input = "x"}, %arg1: tensor<?xi64> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %0 = sdl.get_param @fc1.weight : tensor<4x8xf32, #CSR>
    %1 = sdl.get_param @fc1.bias : tensor<4xf32>
    %2 = sdl.linear %arg0, %0, %1 : (tensor<?x8xf32>, tensor<4x8xf32, #CSR>, tensor<4xf32>) -> tensor<?x4xf32>
    %3 = sdl.relu %2 : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %4 = sdl.get_param @fc2.weight : tensor<3x4xf32>
    %5 = sdl.get_param @fc2.bias : tensor<3xf32>
    %6 = sdl.linear %3, %4, %5 : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
    %7 = sdl.cross_entropy_loss %6, %arg1 : (tensor<?x3xf32>, tensor<?xi64>) -> tensor<f32>
    return %6, %7 : tensor<?x3xf32>, tensor<f32>
  }
}


// CHECK-LABEL: module @Tiny
// CHECK-DAG: llvm.func @_mlir_memref_to_llvm_free(!llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
// The kernels take the memref descriptors of x, the CSR arrays (positions,
// coordinates, values), fc1.bias, fc2.weight, fc2.bias and the output.
// CHECK: llvm.func @sparsec_kernel_Tiny_forward(
// CHECK-SAME: attributes {llvm.emit_c_interface, sdl.entry = "forward"}
// CHECK: llvm.func @_mlir_ciface_sparsec_kernel_Tiny_forward(%arg0: !llvm.ptr, %arg1: !llvm.ptr, %arg2: !llvm.ptr, %arg3: !llvm.ptr, %arg4: !llvm.ptr, %arg5: !llvm.ptr, %arg6: !llvm.ptr, %arg7: !llvm.ptr) attributes {llvm.emit_c_interface, sdl.entry = "forward"}
// CHECK: llvm.call @sparsec_kernel_Tiny_forward(
// CHECK: llvm.func @sparsec_kernel_Tiny_train(
// CHECK-SAME: -> f32 attributes {llvm.emit_c_interface, sdl.entry = "train"}
// CHECK: llvm.func @_mlir_ciface_sparsec_kernel_Tiny_train(%arg0: !llvm.ptr, %arg1: !llvm.ptr, %arg2: !llvm.ptr, %arg3: !llvm.ptr, %arg4: !llvm.ptr, %arg5: !llvm.ptr, %arg6: !llvm.ptr, %arg7: !llvm.ptr, %arg8: !llvm.ptr, %arg9: !llvm.ptr, %arg10: !llvm.ptr, %arg11: !llvm.ptr) -> f32 attributes {llvm.emit_c_interface, sdl.entry = "train"}
// CHECK: %[[LOSS:.+]] = llvm.call @sparsec_kernel_Tiny_train(
// CHECK-NEXT: llvm.return %[[LOSS]] : f32
