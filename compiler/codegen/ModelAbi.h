//===- ModelAbi.h - What the generated library exposes ----------*- C++ -*-===//
//
// The model's interface as the runtime and the C header see it: inputs,
// parameters, gradients, output and optimizer, collected from the sdl-train
// module, and the emitters of the C glue (runtime descriptor + kernel
// trampolines + public entry points) and of the public C99 header.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_CODEGEN_MODELABI_H
#define SPARSEC_CODEGEN_MODELABI_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace sparsec {

/// A dimension equal to the run-time batch size.
constexpr int64_t kAbiBatch = -1;

struct AbiInput {
  std::string name;
  bool isTarget = false;
  std::string dtype; // "f32", "f64", "i32", "i64"
  std::vector<int64_t> shape;
  int64_t idBound = 0;
};

struct AbiParam {
  std::string name;
  std::string kind; // "dense", "csr", "embedding"
  std::vector<int64_t> shape;
  int64_t nnz = 0;
  std::string init;
  double initA = 0;
  int idsInput = -1;              // embedding: index into inputs
  std::vector<int64_t> gradShape; // embedding: rows [batch.., dim]
  // Embedding options (PyTorch nn.Embedding).
  int64_t paddingIdx = -1;
  double maxNorm = 0;
  double normType = 2;
  bool scaleGradByFreq = false;
  // CSR: the pattern ("random", "small_world", "user" with its structure).
  std::string pattern = "random";
  std::vector<int32_t> userPositions, userCoordinates;
  // CSR, dynamic sparsity ("set" or "rigl"; "" when static): schedule;
  // rigl: most gradient scores computed at once.
  std::string dynamic;
  int64_t deltaT = 0, tEnd = 0, maxSize = 0;
  double dropFraction = 0;
  // Mask of a masked_linear (MaskAbi.cpp): the weight it multiplies, its
  // ones at create, and its pruning schedule ("" = none).
  std::string maskOf;
  int64_t ones = 0;
  std::string prune;
  double pruneInitial = 0, pruneFinal = 0;
  int64_t pruneBegin = 0, pruneEnd = 0, pruneEvery = 1, pruneNorm = 1;
  bool pruneGlobal = false;
};

struct ModelAbi {
  std::string name;
  std::vector<AbiInput> inputs;
  std::vector<AbiParam> params;
  std::vector<int64_t> outputShape;
  std::string outputName;
  /// Optimizer kind and every hyperparameter of sdl.optimizer (numbers,
  /// booleans as 0/1), plus its sparse mode and schedule names.
  std::string optimizer;
  std::vector<std::pair<std::string, double>> hyper;
  std::string sparseMode = "lazy";
  std::string schedule = "constant";
  /// Embedding tables are stepped by the generated fused row updates
  /// (sdl-generate-row-updates: `sparsec_kernel_<name>_rows_<k>`).
  bool fusedRows = false;
  /// The object carries the CUDA functions sparsec_gpu_kernel_<name>_*
  /// (--target=cpu,cuda), host versions of them with `cudaEmulated`
  /// (--cuda-emulate); the glue hands them to sparsec_create_on.
  bool cuda = false;
  bool cudaEmulated = false;
  /// --target=cuda (without cpu): <name>_create puts the model on the GPU
  /// (the CPU kernels are built in all the same).
  bool cudaDefault = false;
};

/// Reads the ABI from a module after sdl-expand-training. Emits an error
/// and fails if something cannot be expressed in the C ABI.
mlir::FailureOr<ModelAbi> collectModelAbi(mlir::ModuleOp module);

/// Fills the mask fields of `ap` from its sdl.param (MaskAbi.cpp).
void collectMaskAbi(mlir::Operation *param, AbiParam &ap);
/// The mask/pruning fields of parameter `k`'s sparsec_param_desc
/// initializer (", .mask_of = ..."), "" for other parameters.
std::string maskDescFields(const ModelAbi &abi, size_t k);

/// The C source linked into model.so next to the generated object.
void emitGlue(const ModelAbi &abi, llvm::raw_ostream &os);
/// The public C99 header `model.h`.
void emitHeader(const ModelAbi &abi, llvm::raw_ostream &os);
/// The linker version script exporting only `<Model>_*`.
void emitVersionScript(const ModelAbi &abi, llvm::raw_ostream &os);

} // namespace sparsec

#endif // SPARSEC_CODEGEN_MODELABI_H
