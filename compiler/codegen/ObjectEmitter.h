//===- ObjectEmitter.h - LLVM IR, objects and model.so ----------*- C++ -*-===//
//
// The back end of sparsec: LLVM-dialect MLIR -> LLVM IR (O3) -> assembly or
// PIC object via TargetMachine, and the final link of model.so with the C
// glue and the static runtime.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_CODEGEN_OBJECTEMITTER_H
#define SPARSEC_CODEGEN_OBJECTEMITTER_H

#include "codegen/ModelAbi.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

#include <memory>
#include <string>

namespace sparsec {

struct BackendOptions {
  unsigned optLevel = 3;
  /// Tune for the host CPU (default) or generic x86-64.
  bool hostCPU = true;
};

/// Translates an LLVM-dialect module to LLVM IR and runs the O-level
/// pipeline. Returns null after an error diagnostic.
std::unique_ptr<llvm::Module> translateAndOptimize(mlir::ModuleOp module,
                                                   llvm::LLVMContext &ctx,
                                                   const BackendOptions &opts);

/// Writes `m` as an object (`asmText` = false) or assembly to `path`.
/// Returns false and sets `error` on failure.
bool emitMachineCode(llvm::Module &m, const std::string &path, bool asmText,
                     const BackendOptions &opts, std::string &error);

/// Where the runtime's headers and static library are, relative to the
/// running `sparsec` (build tree or install tree).
struct RuntimeLocation {
  std::string includeDir;
  std::string staticLib;
};
bool findRuntime(const char *argv0, RuntimeLocation &loc, std::string &error);

/// Links `object` (generated code), the C glue of `abi` and the static
/// runtime into the shared library `output`, exporting only `<Model>_*`.
bool linkModelLibrary(const ModelAbi &abi, const std::string &object,
                      const RuntimeLocation &rt, const std::string &output,
                      const std::string &cc, bool verbose, std::string &error);

/// Links `object`, the C source `glueText` and the static runtime into the
/// shared library `output` with the linker version script `scriptText`
/// (linkModelLibrary's back half, also used for fn kernels).
bool linkLibrary(llvm::StringRef glueText, llvm::StringRef scriptText,
                 const std::string &object, const RuntimeLocation &rt,
                 const std::string &output, const std::string &cc,
                 bool verbose, std::string &error);

} // namespace sparsec

#endif // SPARSEC_CODEGEN_OBJECTEMITTER_H
