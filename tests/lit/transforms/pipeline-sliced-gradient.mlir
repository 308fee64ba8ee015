// sparsec-all on a model whose embedding feeds a concat: the embedding
// gradient is a slice of the concat's gradient (a strided view after
// bufferization) and is written to the caller's gradient buffer. That copy
// must be generated code too: the model library links no MLIR runtime
// library, so no call to memrefCopy (or any function but the allocator, the
// runtime's thread pool and the kernels) may remain. (`sparsec --emit=so` on the same model fails to link
// otherwise.)
// RUN: sparsec-opt %s -sparsec-all \
// RUN:   | %python -c 'import re, sys; s = sys.stdin.read(); print("declared:", " ".join(sorted(re.findall(r"llvm\.func @(\w+)\([^{\n]*$", s, re.M)))); print("called:", " ".join(sorted(set(re.findall(r"llvm\.call @(\w+)\(", s)))))' \
// RUN:   | FileCheck %s
// CHECK: declared: _mlir_memref_to_llvm_alloc _mlir_memref_to_llvm_free{{$}}
// CHECK-NEXT: called: _mlir_memref_to_llvm_alloc _mlir_memref_to_llvm_free sparsec_kernel_Rich_forward {{(sparsec_kernel_Rich_rows_0 )?}}sparsec_kernel_Rich_train sparsec_parallel_for{{$}}

#CSR = #sparse_tensor.encoding<{ map = (d0, d1) -> (d0 : dense, d1 : compressed), posWidth = 32, crdWidth = 32 }>
module @Rich {
  sdl.param @emb.weight : tensor<10x4xf32> {init = "normal", init_a = 1.000000e+00 : f64, kind = "embedding"}
  sdl.param @fc1.weight : tensor<5x6xf32, #CSR> {init = "fan_in_uniform", init_a = 3.000000e+00 : f64, kind = "csr", nnz = 15 : i64}
  sdl.param @fc1.bias : tensor<5xf32> {init = "fan_in_uniform", init_a = 3.000000e+00 : f64, kind = "dense"}
  sdl.param @w : tensor<9x3xf32> {init = "normal", init_a = 1.000000e-02 : f64, kind = "dense"}
  sdl.optimizer "sgd" {dampening = 0.000000e+00 : f64, lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64, nesterov = false, weight_decay = 0.000000e+00 : f64}
  func.func @Rich(%arg0: tensor<?xi64> {sdl.id_bound = 10 : i64, sdl.input = "ids"}, %arg1: tensor<?x6xf32> {sdl.input = "x"}, %arg2: tensor<?x3xf32> {sdl.target = "y"}) -> (tensor<?x3xf32>, tensor<f32>) attributes {sdl.model, sdl.output = "out"} {
    %0 = sdl.get_param @emb.weight : tensor<10x4xf32>
    %1 = sdl.embedding %arg0, %0 : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
    %2 = sdl.get_param @fc1.weight : tensor<5x6xf32, #CSR>
    %3 = sdl.get_param @fc1.bias : tensor<5xf32>
    %4 = sdl.linear %arg1, %2, %3 : (tensor<?x6xf32>, tensor<5x6xf32, #CSR>, tensor<5xf32>) -> tensor<?x5xf32>
    %5 = sdl.relu %4 : (tensor<?x5xf32>) -> tensor<?x5xf32>
    %6 = sdl.add %5, %5 : (tensor<?x5xf32>, tensor<?x5xf32>) -> tensor<?x5xf32>
    %7 = sdl.concat %1, %6 : (tensor<?x4xf32>, tensor<?x5xf32>) -> tensor<?x9xf32>
    %8 = sdl.get_param @w : tensor<9x3xf32>
    %9 = sdl.matmul %7, %8 : (tensor<?x9xf32>, tensor<9x3xf32>) -> tensor<?x3xf32>
    %10 = sdl.mse_loss %9, %arg2 : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<f32>
    return %9, %10 : tensor<?x3xf32>, tensor<f32>
  }
}

