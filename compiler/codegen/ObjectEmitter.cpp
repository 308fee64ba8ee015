//===- ObjectEmitter.cpp - LLVM IR, objects and model.so ------------------===//
//
// translateModuleToLLVMIR -> new-PM O3 -> TargetMachine (PIC) object, then
// `cc -shared` with the generated C glue, the static runtime and a version
// script. The result needs only libc and libm.
//
//===----------------------------------------------------------------------===//

#include "codegen/ObjectEmitter.h"

#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace sparsec;

namespace {

std::unique_ptr<llvm::TargetMachine> makeTargetMachine(const BackendOptions &o,
                                                       std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  std::string cpu = "generic", features;
  if (o.hostCPU) {
    cpu = llvm::sys::getHostCPUName().str();
    llvm::SubtargetFeatures f;
    for (const auto &[name, on] : llvm::sys::getHostCPUFeatures())
      f.AddFeature(name, on);
    features = f.getString();
  }
  llvm::CodeGenOptLevel lvl = o.optLevel >= 3   ? llvm::CodeGenOptLevel::Aggressive
                              : o.optLevel == 0 ? llvm::CodeGenOptLevel::None
                                                : llvm::CodeGenOptLevel::Default;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, cpu, features, llvm::TargetOptions(), llvm::Reloc::PIC_,
      std::nullopt, lvl));
}

} // namespace

std::unique_ptr<llvm::Module>
sparsec::translateAndOptimize(mlir::ModuleOp module, llvm::LLVMContext &ctx,
                              const BackendOptions &opts) {
  mlir::DialectRegistry registry;
  mlir::registerAllToLLVMIRTranslations(registry);
  module->getContext()->appendDialectRegistry(registry);
  std::unique_ptr<llvm::Module> m =
      mlir::translateModuleToLLVMIR(module, ctx, "model");
  if (!m) {
    module.emitError("translation to LLVM IR failed");
    return nullptr;
  }
  std::string error;
  std::unique_ptr<llvm::TargetMachine> tm = makeTargetMachine(opts, error);
  if (!tm) {
    module.emitError("no target machine: ") << error;
    return nullptr;
  }
  m->setDataLayout(tm->createDataLayout());
  m->setTargetTriple(tm->getTargetTriple());

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(tm.get());
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cam, mam);
  llvm::OptimizationLevel lvl = opts.optLevel >= 3   ? llvm::OptimizationLevel::O3
                                : opts.optLevel == 2 ? llvm::OptimizationLevel::O2
                                : opts.optLevel == 1 ? llvm::OptimizationLevel::O1
                                                     : llvm::OptimizationLevel::O0;
  llvm::ModulePassManager mpm = opts.optLevel == 0
                                    ? pb.buildO0DefaultPipeline(lvl)
                                    : pb.buildPerModuleDefaultPipeline(lvl);
  mpm.run(*m, mam);
  return m;
}

bool sparsec::emitMachineCode(llvm::Module &m, const std::string &path,
                              bool asmText, const BackendOptions &opts,
                              std::string &error) {
  std::unique_ptr<llvm::TargetMachine> tm = makeTargetMachine(opts, error);
  if (!tm)
    return false;
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    error = "cannot write '" + path + "': " + ec.message();
    return false;
  }
  llvm::legacy::PassManager cg;
  if (tm->addPassesToEmitFile(cg, out, nullptr,
                              asmText ? llvm::CodeGenFileType::AssemblyFile
                                      : llvm::CodeGenFileType::ObjectFile)) {
    error = "the target cannot emit this file type";
    return false;
  }
  cg.run(m);
  out.flush();
  return true;
}

bool sparsec::findRuntime(const char *argv0, RuntimeLocation &loc,
                          std::string &error) {
  std::string exe = llvm::sys::fs::getMainExecutable(
      argv0, reinterpret_cast<void *>(&findRuntime));
  llvm::SmallString<256> prefix(llvm::sys::path::parent_path(
      llvm::sys::path::parent_path(exe)));
  llvm::SmallString<256> inc(prefix), lib(prefix);
  llvm::sys::path::append(inc, "include");
  llvm::sys::path::append(lib, "lib", "libsparsec_runtime.a");
  llvm::SmallString<256> header(inc);
  llvm::sys::path::append(header, "sparsec", "runtime.h");
  if (!llvm::sys::fs::exists(header) || !llvm::sys::fs::exists(lib)) {
    error = "cannot find the sparsec runtime next to '" + exe + "' (looked for " +
            std::string(header) + " and " + std::string(lib) + ")";
    return false;
  }
  loc.includeDir = std::string(inc);
  loc.staticLib = std::string(lib);
  return true;
}

bool sparsec::linkModelLibrary(const ModelAbi &abi, const std::string &object,
                               const RuntimeLocation &rt,
                               const std::string &output, const std::string &cc,
                               bool verbose, std::string &error) {
  std::string glueText, scriptText;
  llvm::raw_string_ostream glueOS(glueText), scriptOS(scriptText);
  emitGlue(abi, glueOS);
  emitVersionScript(abi, scriptOS);
  return linkLibrary(glueText, scriptText, object, rt, output, cc, verbose,
                     error);
}

bool sparsec::linkLibrary(llvm::StringRef glueText, llvm::StringRef scriptText,
                          const std::string &object, const RuntimeLocation &rt,
                          const std::string &output, const std::string &cc,
                          bool verbose, std::string &error) {
  llvm::SmallString<128> glue, script;
  int fd;
  if (llvm::sys::fs::createTemporaryFile("sparsec-glue", "c", fd, glue) ||
      llvm::sys::fs::createTemporaryFile("sparsec-exports", "map", script)) {
    error = "cannot create temporary files";
    return false;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << glueText;
  }
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(script, ec);
    os << scriptText;
  }
  llvm::ErrorOr<std::string> ccPath = llvm::sys::findProgramByName(cc);
  if (!ccPath) {
    llvm::sys::fs::remove(glue);
    llvm::sys::fs::remove(script);
    error = "cannot find the C compiler '" + cc + "' to link " + output;
    return false;
  }
  std::vector<std::string> args = {*ccPath, "-shared", "-fPIC", "-O2",
                                   "-std=c99", "-I" + rt.includeDir,
                                   "-o", output, std::string(glue), object,
                                   rt.staticLib,
                                   "-Wl,--version-script=" + std::string(script),
                                   "-Wl,--no-undefined", "-lm"};
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  if (verbose) {
    for (auto &a : args)
      llvm::errs() << a << " ";
    llvm::errs() << "\n";
  }
  std::string msg;
  int rc = llvm::sys::ExecuteAndWait(*ccPath, argv, std::nullopt, {}, 0, 0,
                                     &msg);
  llvm::sys::fs::remove(glue);
  llvm::sys::fs::remove(script);
  if (rc != 0) {
    error = "linking " + output + " failed" + (msg.empty() ? "" : ": " + msg);
    return false;
  }
  return true;
}
