//===- Gpu.h - The CUDA target of sparsec -----------------------*- C++ -*-===//
//
// The CUDA code path (docs/cuda.md): the sparsec-gpu-kernels pass, which
// lowers the forward and train entries to host code launching gpu.launch
// kernels, the pipeline that takes it through NVVM to PTX embedded in a
// gpu.binary, the emulator pipeline that runs the same kernels on the host
// (sparsec-gpu-emulate), and the --target parsing shared by the driver and
// the tests.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_CODEGEN_GPU_H
#define SPARSEC_CODEGEN_GPU_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>

namespace sparsec {

/// The devices a model library is built for (`--target=cpu|cuda|cpu,cuda`).
struct Targets {
  bool cpu = false;
  bool cuda = false;
};

/// Parses a comma-separated --target list. Returns false with `error` set
/// for an empty list, an empty or unknown entry, or a repeated one.
bool parseTargets(llvm::StringRef spec, Targets &out, std::string &error);

struct GpuOptions {
  /// NVVM chip (`sm_XY`) the PTX is generated for; the driver JIT-compiles
  /// the PTX for newer GPUs too.
  std::string chip = "sm_80";
  /// PTX ISA features, e.g. "+ptx80" (empty: LLVM's default for the chip).
  std::string features;
  /// Optimization level of the NVPTX back end (0-3).
  unsigned optLevel = 3;
};

/// Returns true for a well-formed `sm_<digits>` chip name.
bool isValidCudaArch(llvm::StringRef chip);

/// The pass `sparsec-gpu-kernels` (GpuKernels.cpp).
std::unique_ptr<mlir::Pass> createGpuKernelsPass();

/// The pass `sparsec-gpu-emulate` (GpuEmulate.cpp).
std::unique_ptr<mlir::Pass> createGpuEmulatePass();

/// sdl-train -> LLVM dialect with the kernels' PTX in a gpu.binary:
/// sdl-finalize-abi, sparsec-gpu-kernels, gpu-kernel-outlining, NVVM
/// lowering of the gpu.module, host lowering through gpu-to-llvm and
/// gpu-module-to-binary (format isa: PTX, JIT-compiled by the driver).
void buildGpuPipeline(mlir::OpPassManager &pm, const GpuOptions &opts);

/// sdl-train -> LLVM dialect with the CUDA functions compiled for the host
/// (`--cuda-emulate`): sdl-finalize-abi, sparsec-gpu-kernels,
/// sparsec-gpu-emulate and the host lowering. Same symbols and signatures
/// as buildGpuPipeline's functions; they take host pointers.
void buildGpuEmulatePipeline(mlir::OpPassManager &pm);

/// Moves the functions, declarations and gpu.binary ops of `gpu` (after
/// buildGpuPipeline) into `host` (after the CPU LLVM pipeline), so one LLVM
/// module, object and library carries both targets. A declaration present
/// in both is kept once; any other clash of symbols is an error.
mlir::LogicalResult mergeGpuModule(mlir::ModuleOp host, mlir::ModuleOp gpu);

/// The PTX of every gpu.binary in `module` (after buildGpuPipeline),
/// concatenated. Fails with a diagnostic if there is none.
mlir::FailureOr<std::string> extractPtx(mlir::ModuleOp module);

/// Adds the LLVM IR translations gpu-module-to-binary needs (GPU, NVVM,
/// LLVM) to `registry`.
void registerGpuTranslations(mlir::DialectRegistry &registry);

/// Registers sparsec-gpu-kernels, sparsec-gpu-emulate and the pipelines
/// `sparsec-gpu` (with default options) and `sparsec-gpu-emulated` for
/// sparsec-opt.
void registerGpuPasses();

} // namespace sparsec

#endif // SPARSEC_CODEGEN_GPU_H
