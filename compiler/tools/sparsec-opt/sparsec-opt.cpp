//===- sparsec-opt.cpp - mlir-opt with the sdl dialect --------------------===//
//
// Runs any pass or named pipeline on .mlir files, with the sdl dialect, the
// sparsec passes (sdl-expand-training, sdl-finalize-abi,
// convert-sdl-to-linalg) and pipelines (sparsec-train, sparsec-linalg,
// sparsec-llvm, sparsec-all) registered next to every upstream dialect and
// pass. This is how passes are tested and how users debug a stage.
//
//===----------------------------------------------------------------------===//

#include "codegen/Gpu.h"
#include "codegen/Pipeline.h"
#include "sdl/SdlDialect.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  sparsec::registerSparsecPasses();
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::sdl::SdlDialect>();
  sparsec::registerGpuTranslations(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "sparsec optimizer driver (sdl dialect and passes)\n",
      registry));
}
