//===- GpuPipeline.cpp - The CUDA pipeline of sparsec ---------------------===//
//
// Part of sparsec. The pipeline of the CUDA target (docs/cuda.md): from
// sdl-train, sdl-finalize-abi and sparsec-gpu-kernels produce host code with
// gpu.launch kernels; gpu-kernel-outlining moves the kernels into a
// gpu.module, which is lowered to the NVVM dialect, given an NVVM target and
// serialised to PTX by gpu-module-to-binary; the host code is lowered to the
// LLVM dialect, with gpu-to-llvm turning launches, allocations and copies
// into calls of the runtime's mgpu* functions. The emulator pipeline
// (--cuda-emulate) runs the same kernels as host loops instead. Also
// --target parsing and the PTX extraction behind --emit=ptx.
//
//===----------------------------------------------------------------------===//

#include "codegen/Gpu.h"

#include "transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;

bool sparsec::parseTargets(llvm::StringRef spec, Targets &out,
                           std::string &error) {
  out = Targets();
  if (spec.trim().empty()) {
    error = "--target needs a device: cpu, cuda or cpu,cuda";
    return false;
  }
  llvm::SmallVector<llvm::StringRef> parts;
  spec.split(parts, ',');
  for (llvm::StringRef raw : parts) {
    llvm::StringRef name = raw.trim();
    bool *slot = name == "cpu"    ? &out.cpu
                 : name == "cuda" ? &out.cuda
                                  : nullptr;
    if (!slot) {
      error = name.empty() ? "--target='" + spec.str() +
                                 "' has an empty entry (expected cpu, cuda "
                                 "or cpu,cuda)"
                           : "unknown target '" + name.str() +
                                 "' in --target (expected cpu, cuda or "
                                 "cpu,cuda)";
      return false;
    }
    if (*slot) {
      error = "target '" + name.str() + "' is listed twice in --target";
      return false;
    }
    *slot = true;
  }
  return true;
}

bool sparsec::isValidCudaArch(llvm::StringRef chip) {
  if (!chip.consume_front("sm_") || chip.empty())
    return false;
  // sm_90a / sm_100a: architecture-specific variants.
  chip.consume_back("a");
  return !chip.empty() && llvm::all_of(chip, llvm::isDigit);
}

void sparsec::buildGpuPipeline(OpPassManager &pm, const GpuOptions &o) {
  pm.addPass(mlir::sdl::createSdlFinalizeAbi());
  pm.addPass(createGpuKernelsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createCanonicalizerPass());
  // Device code: gpu.module -> NVVM/LLVM dialect.
  pm.addNestedPass<gpu::GPUModuleOp>(createStripDebugInfoPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createSCFToControlFlowPass());
  // math.fma -> llvm.intr.fma (fma.rn.f32); convert-gpu-to-nvvm would call
  // libdevice's __nv_fmaf, which is not linked.
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertMathToLLVMPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = o.chip;
  target.features = o.features;
  target.optLevel = o.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  // Host code: launches, gpu.alloc/dealloc/memcpy -> mgpu* calls. The
  // gpu-to-llvm lowering of allocations and copies needs them in async
  // form: gpu-async-region chains every GPU op of a function on one stream.
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());
  pm.addNestedPass<func::FuncOp>(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createGpuToLLVMConversionPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void sparsec::buildGpuEmulatePipeline(OpPassManager &pm) {
  pm.addPass(mlir::sdl::createSdlFinalizeAbi());
  pm.addPass(createGpuKernelsPass());
  pm.addPass(createGpuEmulatePass());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

LogicalResult sparsec::mergeGpuModule(ModuleOp host, ModuleOp gpu) {
  SymbolTable hostSymbols(host);
  Block &into = host.getBodyRegion().front();
  for (Operation &op :
       llvm::make_early_inc_range(gpu.getBody()->getOperations())) {
    if (auto sym = dyn_cast<SymbolOpInterface>(op)) {
      if (Operation *existing = hostSymbols.lookup(sym.getNameAttr())) {
        auto decl = dyn_cast<LLVM::LLVMFuncOp>(op);
        auto other = dyn_cast<LLVM::LLVMFuncOp>(existing);
        if (decl && other && decl.isExternal() && other.isExternal() &&
            decl.getFunctionType() == other.getFunctionType())
          continue;
        return op.emitError("CUDA code clashes with the CPU code on symbol '")
               << sym.getName() << "'";
      }
    }
    op.moveBefore(&into, into.end());
  }
  host->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                UnitAttr::get(host.getContext()));
  return success();
}

FailureOr<std::string> sparsec::extractPtx(ModuleOp module) {
  std::string ptx;
  for (auto bin : module.getOps<gpu::BinaryOp>())
    for (Attribute a : bin.getObjects())
      if (auto obj = dyn_cast<gpu::ObjectAttr>(a))
        ptx += obj.getObject().getValue().str();
  if (ptx.empty())
    return module.emitError("the CUDA pipeline produced no PTX"), failure();
  return ptx;
}

void sparsec::registerGpuTranslations(DialectRegistry &registry) {
  registerAllToLLVMIRTranslations(registry);
}

void sparsec::registerGpuPasses() {
  PassRegistration<Pass>([] { return createGpuKernelsPass(); });
  PassRegistration<Pass>([] { return createGpuEmulatePass(); });
  PassPipelineRegistration<>(
      "sparsec-gpu", "sdl-train -> LLVM dialect with PTX (CUDA target)",
      [](OpPassManager &pm) { buildGpuPipeline(pm, GpuOptions()); });
  PassPipelineRegistration<>(
      "sparsec-gpu-emulated",
      "sdl-train -> LLVM dialect, CUDA kernels run on the host (emulator)",
      [](OpPassManager &pm) { buildGpuEmulatePipeline(pm); });
}
