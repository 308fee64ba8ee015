//===- Passes.td - sparsec transformation passes ----------*- tablegen -*-===//
//
// One pass per file in this directory, each with a lit test named after its
// flag under tests/lit/transforms/.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_PASSES_TD
#define SPARSEC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def SdlExpandTraining : Pass<"sdl-expand-training", "::mlir::ModuleOp"> {
  let summary = "Derive forward and train functions (reverse-mode autodiff)";
  let description = [{
    Takes the model function (marked `sdl.model`, returning the output and
    the loss) and replaces it by two entry points: `@forward` (inputs ->
    output) and `@train` (inputs, targets -> loss, one gradient per
    `sdl.param` in declaration order). Gradients are built with the backward
    ops of the `sdl` dialect: CSR weights get gradients on their own pattern
    (`sdl.linear_grad_weight`), embedding tables row-sparse COO gradients
    (`sdl.embedding_grad`).
  }];
  let dependentDialects = ["::mlir::sdl::SdlDialect", "::mlir::func::FuncDialect"];
}

def SdlFinalizeAbi : Pass<"sdl-finalize-abi", "::mlir::ModuleOp"> {
  let summary = "Turn entry points into the C ABI expected by the runtime";
  let description = [{
    Rewrites `@forward` and `@train` into `@sparsec_kernel_<Model>_forward`
    and `@sparsec_kernel_<Model>_train` with memref arguments in the order documented in
    runtime/include/sparsec/runtime.h: inputs, each parameter's arrays (CSR:
    positions, coordinates, values), then the output (forward) or every
    parameter's gradient (train, which returns the loss as f32). Parameters
    become arguments (CSR weights are rebuilt with `sparse_tensor.assemble`,
    zero-copy), results are written into the caller's buffers with
    `bufferization.materialize_in_destination`. Removes `sdl.param` and
    `sdl.optimizer`.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect",
                           "::mlir::tensor::TensorDialect"];
}

def SdlGenerateRowUpdates : Pass<"sdl-generate-row-updates", "::mlir::ModuleOp"> {
  let summary = "Generate the fused row update (coalesce + optimizer step) of embedding tables";
  let description = [{
    When the model's `sdl.optimizer` fuses row updates (sparse = "lazy", no
    clip_grad_norm, `fused` not false), adds for every embedding
    `sdl.param` (index k in declaration order)
    `@sparsec_kernel_<Model>_rows_<k>`: given the batch's gradient rows and
    their order sorted by id (runtime.h, sparsec_row_update_args), it sums
    each id's rows in batch order and applies the optimizer's lazy step to
    that row of the table and its states, in one pass, with the runtime's
    arithmetic (bit-identical results). Runs before sdl-finalize-abi.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def SdlGenerateRiglScores : Pass<"sdl-generate-rigl-scores", "::mlir::ModuleOp"> {
  let summary = "Generate the growth-score kernel of RigL weights";
  let description = [{
    For every CSR `sdl.param` with dynamic = "rigl" (index k in declaration
    order) adds `@sparsec_kernel_<Model>_score_<k>(x, dy, score)`:
    score[r, i] = sum over the batch of dy[b, r] * x[b, i], the dense
    gradient of the weight on a chunk of rows, from the layer input and
    output gradient the train kernel captures (runtime.h, sparsec_score_fn).
    Rows run on the runtime's threads. Runs before sdl-finalize-abi.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def SdlLowerKWinners : Pass<"sdl-lower-kwinners", "::mlir::ModuleOp"> {
  let summary = "Lower sdl.kwinners and its backward/duty ops to linalg";
  let description = [{
    sdl.kwinners, sdl.kwinners_grad and sdl.kwinners_duty become
    linalg.generic ops on tensors: the k winners of each sample are found by
    bisection on order-preserving integer keys of the boosted values (each
    step one counting reduction), exactly k per sample, ties to the lower
    index; a rank-4 input (kwinners2d) in a [B, C*H*W] or, with `local`,
    [B*H*W, C] view. Runs before convert-sdl-to-linalg.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def SdlLowerMaskedConv2d : Pass<"sdl-lower-masked-conv2d", "::mlir::ModuleOp"> {
  let summary = "Lower sdl.masked_conv2d and its backward ops to linalg";
  let description = [{
    sdl.masked_conv2d, sdl.masked_conv2d_grad_input,
    sdl.masked_conv2d_grad_weight and sdl.channel_sum become im2col copies
    and contractions (linalg.generic) on grouped views of the activations
    and the weight, reading the mask next to the weight (W ∘ M is never
    formed); the input gradient adds the patch gradients back (col2im), the
    weight gradient is multiplied by the mask. The batch-parallel ones (and
    the weight gradient, over output channels) run one generic per index
    on buffers inside an scf.parallel marked for sparsec-outline-parallel.
    Runs before convert-sdl-to-linalg.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def SdlLowerFakeQuant : Pass<"sdl-lower-fake-quant", "::mlir::ModuleOp"> {
  let summary = "Per-row fake quantization of CSR weights (sparse_quantized_linear)";
  let description = [{
    `sdl.fake_quant_rows` of a CSR weight rebuilt by `sparse_tensor.assemble`
    becomes the assemble of the same pattern with the quantized values
    (q * s, s = max |w| of the row / (2^(bits-1) - 1), q = roundeven(w / s)
    clamped), computed row by row in parallel. Runs after sdl-finalize-abi,
    before sdl-lower-sparse-linear.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect"];
}

def SdlLowerQuantizedLinear
    : Pass<"sdl-lower-quantized-linear", "::mlir::ModuleOp"> {
  let summary = "int8 inference forward of sparse_quantized_linear layers";
  let description = [{
    In the forward entry (`sdl.entry = "forward"`), `sdl.linear` of a
    rank-2 f32 activation and `sdl.fake_quant_rows` of a CSR weight rebuilt
    by `sparse_tensor.assemble` becomes an int8 kernel when the op's
    `sdl.inference` is "int8", or "auto" (the default) and the rule chooses
    int8: the weight is quantized to int8 levels with one scale per row
    (the fake quantization's levels), the activation per sample to int8
    (sx = max |x(b, :)| / 127, 1 for a zero row) in 64-lane batch blocks,
    the product accumulated in i32 and scaled back,
    y = acc * s(r) * sx(b) + bias(r). The result keeps its f32 blocks for
    sdl-lower-sparse-linear. `train` keeps the f32 fake-quantized forward.
    Runs after sdl-finalize-abi, before sdl-lower-fake-quant.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect"];
}

def SdlLowerMaskedLinear : Pass<"sdl-lower-masked-linear", "::mlir::ModuleOp"> {
  let summary = "Lower sdl.masked_linear and its backward ops to linalg";
  let description = [{
    sdl.masked_linear, sdl.masked_linear_grad_input and
    sdl.masked_linear_grad_weight become linalg.generic contractions that
    read the mask next to the weight (W ∘ M is never formed); the weight
    gradient is multiplied by the mask. Runs after sdl-lower-sparse-linear
    (which takes the rank-2 batch-major cases) and before
    convert-sdl-to-linalg.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def SdlLowerMaskedLstm : Pass<"sdl-lower-masked-lstm", "::mlir::ModuleOp"> {
  let summary = "Lower sdl.masked_lstm and its BPTT op to scf.for + linalg";
  let description = [{
    sdl.masked_lstm becomes the input projection of every step (one
    contraction) and an scf.for over time whose body is the recurrent
    contraction and one multi-output linalg.generic for the gates, cell and
    hidden state, written into the stash; sdl.masked_lstm_grad becomes the
    reversed loop (BPTT) and the weight, bias and input gradients over all
    steps. The masks are read next to the weights (W ∘ M is never formed).
    Runs before convert-sdl-to-linalg.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ConvertSdlToLinalg : Pass<"convert-sdl-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lower sdl ops to linalg.generic on (sparse) tensors";
  let description = [{
    Every forward, backward and loss op becomes `linalg.generic` (plus
    `tensor` ops for concat/slice), in destination-passing style, ready for
    the sparsifier: a CSR operand makes the generic a sparse kernel (SpMM,
    SDDMM for the weight gradient).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect"];
}

def SdlLowerSparseLinear : Pass<"sdl-lower-sparse-linear", "::mlir::ModuleOp"> {
  let summary = "Register-tiled loops for the (CSR or dense) linear kernels";
  let description = [{
    Lowers `sdl.linear`, `sdl.linear_grad_input` and `sdl.linear_grad_weight`
    with a CSR weight (rebuilt by `sparse_tensor.assemble`) or a dense f32/f64
    weight, and the `sdl.masked_linear` ops (dense weight, the mask multiplied
    into each weight read and each weight-gradient sum),
    and rank-2 activations into explicit loops on a batch-blocked layout
    ([ceil(B/W), F, W], W = 64 for f32): SpMM with the output tile in vector
    registers across a row's stored weights, transposed SpMM, SDDMM. Rows or
    batch blocks are an `scf.parallel` marked `sdl.parallel`. Runs before
    `convert-sdl-to-linalg`, which lowers what is left (through the
    sparsifier).
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::sparse_tensor::SparseTensorDialect",
                           "::mlir::tensor::TensorDialect"];
}

def SparsecOutlineParallel : Pass<"sparsec-outline-parallel", "::mlir::ModuleOp"> {
  let summary = "Run scf.parallel loops marked sdl.parallel on the runtime's threads";
  let description = [{
    On buffers, after bufferization: each one-dimensional `scf.parallel`
    marked `sdl.parallel` (from 0, step 1) is outlined into a function
    `(ptr ctx, index lo, index hi)` that runs iterations [lo, hi); the loop
    is replaced by a call of the runtime's `sparsec_parallel_for(fn, ctx, n)`
    with the captured values packed into a stack struct.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def SparsecHandOverDeallocs : Pass<"sparsec-hand-over-deallocs", "::mlir::func::FuncOp"> {
  let summary = "Leave the frees of the sparsifier's temporaries to the ownership-based deallocation";
  let description = [{
    On buffers, after sparsification and bufferization, before
    `ownership-based-buffer-deallocation` (which rejects a function holding
    `memref.dealloc`): erases each `memref.dealloc` the sparsifier emitted
    for its temporaries (the expanded access pattern of SpGEMM, the unordered
    COO a transpose sorts), so that the deallocation pipeline frees them
    after their last use. A dealloc of a function argument is left in place
    (and reported by the deallocation pass).
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

#endif // SPARSEC_TRANSFORMS_PASSES_TD
