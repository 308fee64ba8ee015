//===- GpuLowering.h - sdl entry points to gpu.launch kernels ---*- C++ -*-===//
//
// Part of sparsec. The rewrite behind the pass sparsec-gpu-kernels (CUDA
// target, docs/cuda.md): one entry point (forward or train, after
// sdl-finalize-abi: sdl ops on tensors between bufferization.to_tensor of
// its memref arguments and materialize_in_destination into its outputs)
// becomes host code on memrefs that launches one or two gpu.launch kernels
// per sdl op. The forward ops' rules are in GpuLowering.cpp, the losses'
// in GpuLosses.cpp, the layer gradients' in GpuBackward.cpp, the
// embeddings' (and concat/slice) in GpuEmbeddings.cpp, K-Winners' in
// GpuKWinners.cpp, the masked convolutions' in GpuConv.cpp, the masked
// LSTM's in GpuLstm.cpp, the quantized layers' in GpuQuant.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_CODEGEN_GPULOWERING_H
#define SPARSEC_CODEGEN_GPULOWERING_H

#include "sdl/SdlDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include <string>

namespace sparsec::cudagen {

/// Threads per block of every kernel.
constexpr int64_t kThreadsPerBlock = 256;

/// The memrefs of a CSR tensor (the weight's sparse_tensor.assemble or the
/// sampled gradient with the weight's pattern).
struct CsrBuffers {
  mlir::Value pos, crd, vals;
};

/// The buffers a cross-entropy op reads: logits [B, C], targets [B] and
/// their per-sample softmax stats.
struct CrossEntropyOperands {
  mlir::Value x, t, maxes, sums;
};

/// The buffers of a pointwise loss (MSE, BCE): input and target as rank 1
/// (one column) or rank 2 (a higher rank viewed as [leading sizes, last]),
/// their element count, and the input's buffer as it is (`full`).
struct PointwiseOperands {
  mlir::Value x, t, rows, cols, count, full;
};

/// Lowers one entry point `src` into the (empty) function `dst`, which has
/// the same signature; its memref arguments are device pointers.
class EntryLowering {
public:
  /// `kernelModule`: the gpu.module the kernels go to (one per model, so
  /// one PTX image).
  EntryLowering(mlir::func::FuncOp src, mlir::func::FuncOp dst,
                llvm::StringRef kernelModule);

  mlir::LogicalResult run();

private:
  mlir::LogicalResult lower(mlir::Operation *op);
  mlir::LogicalResult lowerStructural(mlir::Operation *op, bool &handled);

  // Forward ops (GpuLowering.cpp).
  /// sdl.linear (dense or CSR `weight`) and sdl.masked_linear (`mask`: the
  /// dense 0/1 matrix each weight is multiplied by as it is read).
  mlir::LogicalResult lowerLinear(mlir::Operation *op, mlir::Value input,
                                  mlir::Value weight, mlir::Value mask,
                                  mlir::Value bias);
  mlir::LogicalResult lowerElementwise(mlir::Operation *op);

  // Losses (GpuLosses.cpp).
  mlir::LogicalResult lowerCrossEntropy(mlir::sdl::CrossEntropyLossOp op);
  mlir::LogicalResult
  lowerCrossEntropyGrad(mlir::sdl::CrossEntropyLossGradOp op);
  /// mse_loss / bce_with_logits_loss (`bce`) and their gradients.
  mlir::LogicalResult lowerPointwiseLoss(mlir::Operation *op, bool bce);
  mlir::LogicalResult lowerPointwiseLossGrad(mlir::Operation *op, bool bce);
  mlir::FailureOr<PointwiseOperands> pointwiseOperands(mlir::Operation *op);

  // Embeddings, concat and slice (GpuEmbeddings.cpp).
  mlir::LogicalResult lowerEmbedding(mlir::sdl::EmbeddingOp op);
  mlir::LogicalResult lowerEmbeddingGrad(mlir::sdl::EmbeddingGradOp op);
  mlir::LogicalResult lowerEmbeddingBag(mlir::sdl::EmbeddingBagOp op);
  mlir::LogicalResult lowerEmbeddingBagGrad(mlir::sdl::EmbeddingBagGradOp op);
  mlir::LogicalResult lowerConcat(mlir::sdl::ConcatOp op);
  mlir::LogicalResult lowerSlice(mlir::sdl::SliceOp op);

  // K-Winners on [B, n] and KWinners2d on [B, C, H, W] (GpuKWinners.cpp):
  // sdl.kwinners (`values` = `input`) and sdl.kwinners_grad (`values` =
  // the incoming gradient) keep `values` at the k winners of `input`; the
  // duty-cycle update.
  mlir::LogicalResult lowerKWinners(mlir::Operation *op, mlir::Value input,
                                    mlir::Value duty, mlir::Value values,
                                    int64_t k, bool local, double strength,
                                    double factor, int64_t period);
  mlir::LogicalResult lowerKWinnersDuty(mlir::sdl::KWinnersDutyOp op);
  /// The boost factor of every channel (a new [C] buffer).
  mlir::Value kwinnersBoost(mlir::Operation *op, mlir::Value input,
                            mlir::Value duty, int64_t k, bool local,
                            double strength, double factor, int64_t period);

  // Masked 2-D convolutions on NCHW activations (GpuConv.cpp).
  mlir::LogicalResult lowerMaskedConv2d(mlir::sdl::MaskedConv2dOp op);
  mlir::LogicalResult
  lowerMaskedConv2dGradInput(mlir::sdl::MaskedConv2dGradInputOp op);
  mlir::LogicalResult
  lowerMaskedConv2dGradWeight(mlir::sdl::MaskedConv2dGradWeightOp op);
  mlir::LogicalResult lowerChannelSum(mlir::sdl::ChannelSumOp op);

  // sparse_quantized_linear layers (GpuQuant.cpp): the fake quantization
  // of a CSR weight, and the int8 forward of a layer whose quantization
  // says so (QuantRows.h's rule, forward entry only).
  mlir::LogicalResult lowerFakeQuant(mlir::sdl::FakeQuantRowsOp op);
  /// Whether `weight` is a fake quantization (returned in `fq`) that the
  /// forward entry computes in int8.
  bool isInt8Linear(mlir::Value weight, mlir::sdl::FakeQuantRowsOp &fq);
  mlir::LogicalResult lowerInt8Linear(mlir::Operation *op, mlir::Value input,
                                      mlir::sdl::FakeQuantRowsOp fq,
                                      mlir::Value bias);

  // Masked LSTM layers (GpuLstm.cpp).
  mlir::LogicalResult lowerMaskedLstm(mlir::sdl::MaskedLstmOp op);
  mlir::LogicalResult lowerMaskedLstmGrad(mlir::sdl::MaskedLstmGradOp op);
  /// The batch size of an LSTM input [B, T, F] (or [T, B, F]).
  mlir::Value lstmBatch(mlir::Location loc, mlir::Value input, bool seqFirst);
  /// The buffer of `v`, whose one dynamic dimension is the batch: its
  /// destination argument or a new temporary (mapped).
  mlir::Value batchBuffer(mlir::Location loc, mlir::Value v, mlir::Value batch);

  // Layer gradients (GpuBackward.cpp), and sdl.matmul with its two
  // gradients (rank 2: a [B, I] times a tensor parameter [I, O]).
  mlir::LogicalResult lowerMatmul(mlir::Operation *op);
  /// One thread per element (r, c) of the rank-2 `out`: the sum over e in
  /// [0, reduce) (or [0, reduceDyn)) of x * y, (x, y) = factors(r, c, e),
  /// accumulated as the CPU's contractions (acc + x * y, e ascending).
  void contract(mlir::Location loc, mlir::Value out, int64_t reduce,
                mlir::Value reduceDyn, llvm::StringRef what,
                llvm::function_ref<std::pair<mlir::Value, mlir::Value>(
                    mlir::OpBuilder &, mlir::Value, mlir::Value, mlir::Value)>
                    factors);
  /// dx = dy (W ∘ M) (no `mask`: dy W) of a linear or masked_linear.
  mlir::LogicalResult lowerLinearGradInput(mlir::Operation *op,
                                           mlir::Value grad, mlir::Value weight,
                                           mlir::Value mask);
  /// dW = (dyᵀ x) ∘ M (no `mask`: dyᵀ x, sampled at a CSR `weight`'s
  /// pattern; a masked_linear has no weight operand).
  mlir::LogicalResult lowerLinearGradWeight(mlir::Operation *op,
                                            mlir::Value grad, mlir::Value input,
                                            mlir::Value weight,
                                            mlir::Value mask);
  mlir::LogicalResult lowerReduceBatch(mlir::sdl::ReduceBatchOp op);
  /// One group of lanes per (o, r), o < `outer`, r < `rows` of the CSR `w`
  /// (GpuBackward.cpp's header: the group's size from the mean row
  /// length); `body(o, r, e)` for each stored entry e of row r, lane l
  /// taking the entries l, l + g, ... of the row.
  void rowGroups(mlir::Location loc, const CsrBuffers &w, mlir::Value outer,
                 mlir::Value rows, llvm::StringRef what,
                 llvm::function_ref<void(mlir::OpBuilder &, mlir::Value,
                                         mlir::Value, mlir::Value)>
                     body);
  /// Per-sample max and sum of exp(x - max) of the logits `x` [B, C] (one
  /// kernel, shared by the loss and its gradient).
  std::pair<mlir::Value, mlir::Value> softmaxStats(mlir::Location loc,
                                                   mlir::Value x);
  /// The operands of a cross-entropy op (loss or gradient) with their
  /// stats; fails with a diagnostic unless the logits are rank-2 f32.
  mlir::FailureOr<CrossEntropyOperands>
  crossEntropyOperands(mlir::Operation *op, mlir::Value logits,
                       mlir::Value target);

  /// The buffer of `v`: its destination argument or a new gpu.alloc shaped
  /// like `like` (a buffer of the same rank giving the dynamic sizes).
  mlir::Value resultBuffer(mlir::Value v, mlir::Value like);
  /// The transpose [C, R] of the rank-2 buffer `x` [R, C] (a temporary and
  /// its kernel, emitted once per buffer: buffers are not written after
  /// their kernel).
  mlir::Value transposed(mlir::Location loc, mlir::Value x);
  /// A new gpu.alloc of `type` (`sizes`: its dynamic sizes), freed at the
  /// return.
  mlir::Value temporary(mlir::Location loc, mlir::MemRefType type,
                        mlir::ValueRange sizes = {});
  /// Emits a 1-D launch over max(total, 1) threads rounded up to blocks,
  /// `if (i < total)` inside it, and calls `body(i)` there. The kernel is
  /// named <function>_<N>_<what>.
  void launch1D(mlir::Location loc, mlir::Value total, llvm::StringRef what,
                llvm::function_ref<void(mlir::OpBuilder &, mlir::Value)> body);
  /// A host loop `for v in [0, n)` around what `body(v)` emits (launches
  /// that depend on the previous iteration's, as an LSTM's steps).
  void hostLoop(mlir::Location loc, int64_t n,
                llvm::function_ref<void(mlir::Value)> body);
  /// Kernel writing 0 to every element of the rank-2 buffer `buf`.
  void zeroFill(mlir::Location loc, mlir::Value buf);
  mlir::Value dim(mlir::Location loc, mlir::Value memref, int64_t d);
  /// Every size of `memref`.
  llvm::SmallVector<mlir::Value> dims(mlir::Location loc, mlir::Value memref);
  mlir::Value index(mlir::Location loc, int64_t v);

  mlir::func::FuncOp src;
  mlir::OpBuilder b;
  mlir::IRMapping buffers; // tensor value -> memref, scalar -> scalar
  llvm::DenseMap<mlir::Value, CsrBuffers> csr;
  llvm::DenseMap<mlir::Value, mlir::Value> destination; // value -> output
  llvm::DenseMap<mlir::Value, mlir::Value> transposes;  // buffer -> its [C, R]
  llvm::DenseSet<mlir::Operation *> fused; // relu ops folded into a linear
  llvm::DenseMap<mlir::Value, std::pair<mlir::Value, mlir::Value>> softmax;
  llvm::SmallVector<mlir::Value> temporaries;
  std::string name, kernelModule;
  unsigned kernels = 0;
};

/// Loads `mem[at]` (an integer of any width) as an index.
mlir::Value loadIndex(mlir::OpBuilder &b, mlir::Location loc, mlir::Value mem,
                      mlir::ValueRange at);
/// An f32 constant.
mlir::Value f32(mlir::OpBuilder &b, mlir::Location loc, float v);
/// An index as f32 (a count as a divisor; uitofp through i64, as the CPU's
/// numelF).
mlir::Value indexToF32(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);
/// Whether `t` is a rank-2 f32 shaped type.
bool isRank2F32(mlir::Type t);
/// `for k in [lo, hi): acc = step(k, acc)` from `init`; returns acc.
mlir::Value accumulate(
    mlir::OpBuilder &b, mlir::Location loc, mlir::Value lo, mlir::Value hi,
    mlir::Value init,
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Value, mlir::Value)>
        step);

} // namespace sparsec::cudagen

#endif // SPARSEC_CODEGEN_GPULOWERING_H
