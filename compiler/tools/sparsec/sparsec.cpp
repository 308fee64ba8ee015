//===- sparsec.cpp - The sparsec compiler driver --------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Compiles a model written in the sparsec DSL (.sdl) down the pipeline
//
//   ast -> sdl -> sdl-train -> linalg -> llvm-dialect -> llvm/asm/obj
//       -> so + header
//
// and stops after the stage selected with --emit (default: the shared
// library and its header).
//
//===----------------------------------------------------------------------===//

#include "Inspect.h"
#include "codegen/Gpu.h"
#include "codegen/ModelAbi.h"
#include "codegen/ObjectEmitter.h"
#include "codegen/Pipeline.h"
#include "fnkernels/FnKernels.h"
#include "frontend/Frontend.h"
#include "mlirgen/MLIRGen.h"
#include "sdl/SdlDialect.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>

namespace cl = llvm::cl;

namespace {
/// The stages of the pipeline, in order. --emit=X stops after stage X.
enum class Stage {
  AST,         // checked AST of the DSL (text)
  SDL,         // MLIR, sdl dialect: the model's forward computation
  SDLTrain,    // MLIR, sdl dialect with loss, backward pass and optimizer
  Linalg,      // MLIR lowered to linalg/tensor/sparse_tensor
  LLVMDialect, // MLIR lowered to the LLVM dialect
  LLVM,        // LLVM IR (text)
  Asm,         // native assembly
  Obj,         // native object file
  Header,      // C header declaring the generated model API
  SO,          // shared library (model + runtime)
  PTX,         // PTX of the CUDA kernels (--target with cuda)
};
} // namespace

static cl::OptionCategory sparsecCategory("sparsec options");
static cl::OptionCategory mlirCategory(
    "MLIR options (apply to the MLIR stages sdl ... llvm-dialect)");

/// Keeps --help about sparsec: its own options and the MLIR pass-manager,
/// context and printing options; hides the hundreds of LLVM backend flags
/// that libLLVM registers (they still work).
static void groupOptions() {
  for (auto &entry : cl::getRegisteredOptions()) {
    llvm::StringRef name = entry.first;
    cl::Option *opt = entry.second;
    if (llvm::is_contained(opt->Categories, &sparsecCategory) ||
        name == "help" || name == "version" || name == "help-list")
      continue;
    if (name.starts_with("mlir-") || name == "pass-pipeline-crash-reproducer") {
      opt->Categories.assign(1, &mlirCategory);
      continue;
    }
    opt->setHiddenFlag(cl::ReallyHidden);
  }
}

static cl::opt<std::string> inputFilename(cl::Positional,
                                          cl::desc("<input .sdl file>"),
                                          cl::init("-"),
                                          cl::cat(sparsecCategory));

static cl::opt<std::string> outputFilename("o", cl::desc("Output filename"),
                                           cl::value_desc("filename"),
                                           cl::init("-"),
                                           cl::cat(sparsecCategory));

static cl::opt<Stage> emitStage(
    "emit", cl::desc("Stop after this pipeline stage and write its output:"),
    cl::init(Stage::SO), cl::cat(sparsecCategory),
    cl::values(
        clEnumValN(Stage::AST, "ast", "checked AST with types and shapes"),
        clEnumValN(Stage::SDL, "sdl", "MLIR in the sdl dialect (forward)"),
        clEnumValN(Stage::SDLTrain, "sdl-train",
                   "MLIR in the sdl dialect with loss, backward and "
                   "optimizer step"),
        clEnumValN(Stage::Linalg, "linalg",
                   "MLIR lowered to linalg, tensor and sparse_tensor"),
        clEnumValN(Stage::LLVMDialect, "llvm-dialect",
                   "MLIR lowered to the LLVM dialect"),
        clEnumValN(Stage::LLVM, "llvm", "LLVM IR"),
        clEnumValN(Stage::Asm, "asm", "native assembly"),
        clEnumValN(Stage::Obj, "obj", "native object file"),
        clEnumValN(Stage::Header, "header", "C header of the model API"),
        clEnumValN(Stage::SO, "so", "shared library of the model"),
        clEnumValN(Stage::PTX, "ptx",
                   "PTX of the CUDA kernels (needs --target=cuda)")));

static cl::opt<std::string> targetList(
    "target",
    cl::desc("Devices to build for: cpu, cuda or cpu,cuda (docs/cuda.md)"),
    cl::value_desc("list"), cl::init("cpu"), cl::cat(sparsecCategory));

static cl::opt<std::string> cudaArch(
    "cuda-arch", cl::desc("GPU architecture of the CUDA kernels (sm_XY)"),
    cl::value_desc("sm_XY"), cl::init("sm_80"), cl::cat(sparsecCategory));

static cl::opt<bool> cudaEmulate(
    "cuda-emulate",
    cl::desc("Compile the CUDA functions for the host CPU: each kernel runs "
             "as loops over its grid and block, on host memory (a test aid "
             "for machines without a GPU, docs/cuda.md)"),
    cl::init(false), cl::cat(sparsecCategory));

static cl::opt<std::string>
    modelName("model", cl::desc("Model to compile when the file has several"),
              cl::value_desc("name"), cl::cat(sparsecCategory));

static cl::opt<std::string> fnPrefix(
    "fn-prefix",
    cl::desc("Prefix of the exported fn kernels (default: the input file's "
             "name; docs/sparse-ops.md)"),
    cl::value_desc("name"), cl::cat(sparsecCategory));

static cl::opt<std::string>
    headerFilename("header",
                   cl::desc("With --emit=so: where to write the C header "
                            "(default: the output path with .h)"),
                   cl::value_desc("filename"), cl::cat(sparsecCategory));

static cl::opt<unsigned> optLevel("O", cl::desc("LLVM optimization level"),
                                  cl::Prefix, cl::init(3),
                                  cl::cat(sparsecCategory));

static cl::opt<unsigned>
    vectorLength("vl", cl::desc("Sparsifier vector length (0 = scalar loops)"),
                 cl::init(0), cl::cat(sparsecCategory));

static cl::opt<bool>
    genericCPU("generic-cpu",
               cl::desc("Generate code for generic x86-64 instead of "
                        "the host CPU"),
               cl::init(false), cl::cat(sparsecCategory));

static cl::opt<std::string>
    linkerDriver("cc", cl::desc("C compiler used to link the model library"),
                 cl::init("cc"), cl::cat(sparsecCategory));

static cl::opt<bool> verboseLink("v", cl::desc("Print the link command"),
                                 cl::init(false), cl::cat(sparsecCategory));

static cl::opt<unsigned>
    errorLimit("error-limit",
               cl::desc("Stop printing errors after this many (0 = no limit)"),
               cl::init(20), cl::cat(sparsecCategory));

static const char *const overview =
    "sparsec: compiler for sparse neural-network models\n\n"
    "  Compiles a model written in the sparsec DSL (.sdl) through the\n"
    "  pipeline\n\n"
    "    ast -> sdl -> sdl-train -> linalg -> llvm-dialect\n"
    "        -> llvm / asm / obj -> so + header\n\n"
    "  ast          parse and check the DSL; print the typed AST\n"
    "  sdl          MLIR in the sdl dialect: the forward computation\n"
    "  sdl-train    sdl plus loss, backward pass and optimizer step\n"
    "  linalg       lowered to linalg/tensor/sparse_tensor\n"
    "  llvm-dialect lowered to the LLVM dialect\n"
    "  llvm/asm/obj LLVM IR, native assembly or an object file\n"
    "  so + header  a shared library and the C header of its API\n"
    "  ptx          PTX of the CUDA kernels (--target=cuda, docs/cuda.md)\n\n"
    "  --emit=STAGE stops after STAGE and writes its output to -o\n"
    "  (default: stdout; for so: <input>.so and <input>.h).\n"
    "  Input '-' reads standard input. The MLIR pass-manager flags\n"
    "  (--mlir-print-ir-after-all, --mlir-timing, ...) apply to every\n"
    "  MLIR stage.\n";

/// Loads the input file (or stdin) into `sm`. Returns false on failure.
static bool loadInput(llvm::SourceMgr &sm, unsigned &bufferId) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFileOrSTDIN(inputFilename, /*IsText=*/true,
                                         /*RequiresNullTerminator=*/false);
  if (std::error_code ec = buffer.getError()) {
    llvm::WithColor::error() << "cannot open input file '" << inputFilename
                             << "': " << ec.message() << '\n';
    return false;
  }
  bufferId = sm.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  return true;
}

/// Writes `text` to the -o file (stdout for "-").
static bool writeOutput(llvm::StringRef text) {
  std::error_code ec;
  llvm::ToolOutputFile out(outputFilename, ec, llvm::sys::fs::OF_Text);
  if (ec) {
    llvm::WithColor::error() << "cannot open output file '" << outputFilename
                             << "': " << ec.message() << '\n';
    return false;
  }
  out.os() << text;
  out.keep();
  return true;
}

/// Prints `op` (an MLIR module) to the -o file.
static int printModule(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\n";
  return writeOutput(text) ? 0 : 1;
}

/// Runs `build`'s passes on `module` with the command line's pass-manager
/// options. Returns false after diagnostics on failure.
static bool runPasses(mlir::ModuleOp module, llvm::StringRef stage,
                      llvm::function_ref<void(mlir::OpPassManager &)> build,
                      mlir::TimingScope &timing) {
  mlir::PassManager pm(module.getContext());
  if (mlir::failed(mlir::applyPassManagerCLOptions(pm)))
    return false;
  // One timing scope per stage: pass timers are keyed by pass identity.
  mlir::TimingScope stageTiming = timing.nest(stage);
  pm.enableTiming(stageTiming);
  build(pm);
  return mlir::succeeded(pm.run(module));
}

/// Runs the pipeline from linalg to the LLVM dialect (`sparseResults`: the
/// module has fn kernels with sparse results).
static bool lowerToLLVMDialect(mlir::ModuleOp module, bool sparseResults,
                               mlir::TimingScope &timing) {
  sparsec::CodegenOptions copts;
  copts.vectorLength = vectorLength;
  copts.sparseResults = sparseResults;
  return runPasses(
      module, "llvm-dialect",
      [&](mlir::OpPassManager &pm) { sparsec::buildLLVMPipeline(pm, copts); },
      timing);
}

/// Picks the model to compile (--model or the only one).
static const sparsec::ast::Model *pickModel(const sparsec::ast::Module &m) {
  if (!modelName.empty()) {
    for (const auto &model : m.models)
      if (model->name == modelName)
        return model.get();
    llvm::WithColor::error() << "no model named '" << modelName << "'\n";
    return nullptr;
  }
  if (m.models.size() != 1) {
    llvm::WithColor::error() << "the file defines " << m.models.size()
                             << " models; choose one with --model=NAME\n";
    return nullptr;
  }
  return m.models.front().get();
}

/// Default output of --emit=so: the input's name with `ext`.
static std::string defaultOutput(llvm::StringRef ext) {
  llvm::SmallString<128> p(inputFilename == "-" ? std::string("model")
                                                : std::string(inputFilename));
  llvm::sys::path::replace_extension(p, ext);
  return std::string(p);
}

/// Writes the header `text` to `path` (creating its directory). An
/// unchanged header is left alone so that dependents are not rebuilt.
static bool writeHeaderText(llvm::StringRef text, llvm::StringRef path) {
  if (auto old = llvm::MemoryBuffer::getFile(path, /*IsText=*/true))
    if ((*old)->getBuffer() == text)
      return true;
  llvm::StringRef dir = llvm::sys::path::parent_path(path);
  std::error_code ec;
  if (!dir.empty() && (ec = llvm::sys::fs::create_directories(dir))) {
    llvm::WithColor::error()
        << "cannot create '" << dir << "': " << ec.message() << '\n';
    return false;
  }
  llvm::ToolOutputFile out(path, ec, llvm::sys::fs::OF_Text);
  if (ec) {
    llvm::WithColor::error()
        << "cannot write '" << path << "': " << ec.message() << '\n';
    return false;
  }
  out.os() << text;
  out.keep();
  return true;
}

/// Links the library from the object, the runtime and the output path.
using LinkFn = llvm::function_ref<bool(const std::string &,
                                       const sparsec::RuntimeLocation &,
                                       const std::string &, std::string &)>;
/// Writes the header to the given path.
using HeaderFn = llvm::function_ref<bool(llvm::StringRef)>;

/// The back end: LLVM IR, assembly, object or the linked library.
static int runBackend(mlir::ModuleOp module, LinkFn link, HeaderFn header,
                      const char *argv0) {
  sparsec::BackendOptions bopts;
  bopts.optLevel = optLevel;
  bopts.hostCPU = !genericCPU;
  llvm::LLVMContext llvmCtx;
  std::unique_ptr<llvm::Module> ir =
      sparsec::translateAndOptimize(module, llvmCtx, bopts);
  if (!ir)
    return 1;
  if (emitStage == Stage::LLVM) {
    std::string text;
    llvm::raw_string_ostream os(text);
    ir->print(os, nullptr);
    return writeOutput(text) ? 0 : 1;
  }
  std::string error;
  if (emitStage == Stage::Asm || emitStage == Stage::Obj) {
    if (outputFilename == "-" && emitStage == Stage::Obj) {
      llvm::WithColor::error() << "--emit=obj needs -o <file>\n";
      return 1;
    }
    if (!sparsec::emitMachineCode(*ir, outputFilename, emitStage == Stage::Asm,
                                  bopts, error)) {
      llvm::WithColor::error() << error << '\n';
      return 1;
    }
    return 0;
  }
  std::string output = outputFilename == "-" ? defaultOutput(".so")
                                             : std::string(outputFilename);
  llvm::StringRef outDir = llvm::sys::path::parent_path(output);
  if (!outDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(outDir)) {
      llvm::WithColor::error() << "cannot create the output directory '"
                               << outDir << "': " << ec.message() << '\n';
      return 1;
    }
  sparsec::RuntimeLocation rt;
  if (!sparsec::findRuntime(argv0, rt, error)) {
    llvm::WithColor::error() << error << '\n';
    return 1;
  }
  llvm::SmallString<128> obj;
  if (llvm::sys::fs::createTemporaryFile("sparsec-model", "o", obj)) {
    llvm::WithColor::error() << "cannot create a temporary object file\n";
    return 1;
  }
  bool ok =
      sparsec::emitMachineCode(*ir, std::string(obj), false, bopts, error) &&
      link(std::string(obj), rt, output, error);
  llvm::sys::fs::remove(obj);
  if (!ok) {
    llvm::WithColor::error() << error << '\n';
    return 1;
  }
  llvm::SmallString<128> headerPath(headerFilename.empty() ? output
                                                           : headerFilename);
  if (headerFilename.empty())
    llvm::sys::path::replace_extension(headerPath, ".h");
  return header(headerPath) ? 0 : 1;
}

/// Checks --target, --cuda-arch and their combination with --emit.
static bool checkTargets(sparsec::Targets &targets) {
  std::string error;
  if (!sparsec::parseTargets(targetList, targets, error)) {
    llvm::WithColor::error() << error << '\n';
    return false;
  }
  if (emitStage == Stage::PTX && !targets.cuda) {
    llvm::WithColor::error()
        << "--emit=ptx needs a CUDA target (--target=cuda or cpu,cuda)\n";
    return false;
  }
  if (cudaEmulate && !targets.cuda) {
    llvm::WithColor::error()
        << "--cuda-emulate needs a CUDA target (--target=cpu,cuda)\n";
    return false;
  }
  if (cudaEmulate && emitStage == Stage::PTX) {
    llvm::WithColor::error()
        << "--cuda-emulate compiles the CUDA kernels for the host: there is "
           "no PTX\n";
    return false;
  }
  if (targets.cuda && !sparsec::isValidCudaArch(cudaArch)) {
    llvm::WithColor::error() << "invalid --cuda-arch='" << cudaArch
                             << "' (expected sm_XY, e.g. sm_80 or sm_90)\n";
    return false;
  }
  return true;
}

/// The CUDA pipeline on a copy of the sdl-train module; null on failure.
static mlir::OwningOpRef<mlir::ModuleOp>
compileCuda(mlir::ModuleOp module, mlir::TimingScope &timing) {
  mlir::OwningOpRef<mlir::ModuleOp> gpu = module.clone();
  sparsec::GpuOptions gopts;
  gopts.chip = cudaArch;
  if (!runPasses(
          *gpu, "cuda",
          [&](mlir::OpPassManager &pm) {
            if (cudaEmulate)
              sparsec::buildGpuEmulatePipeline(pm);
            else
              sparsec::buildGpuPipeline(pm, gopts);
          },
          timing))
    return nullptr;
  return gpu;
}

/// --emit=ptx: the PTX of the CUDA kernels.
static int emitPtx(mlir::ModuleOp module, mlir::TimingScope &timing) {
  mlir::OwningOpRef<mlir::ModuleOp> gpu = compileCuda(module, timing);
  if (!gpu)
    return 1;
  mlir::FailureOr<std::string> ptx = sparsec::extractPtx(*gpu);
  if (mlir::failed(ptx))
    return 1;
  return writeOutput(*ptx) ? 0 : 1;
}

/// The C header of the fn kernels of `m` ("" without kernels).
static std::string fnHeaderText(const sparsec::ast::Module &m,
                                llvm::StringRef prefix) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (!m.fns.empty())
    sparsec::emitFnHeader(m, prefix, os);
  return text;
}

/// The version script exporting `<model>_*` (if `model` is not empty) and
/// the fn kernels' `<prefix>_*`.
static std::string versionScript(llvm::StringRef model,
                                 llvm::StringRef prefix) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "{\n  global:\n";
  if (!model.empty())
    os << "    " << model << "_*;\n";
  sparsec::emitFnExports(prefix, os);
  os << "  local: *;\n};\n";
  return text;
}

/// `fn` kernels have no CUDA code yet: with a CUDA target they are built
/// for the CPU only, which a warning says when a library or object is
/// built (`withModel`: next to a model, whose layers do get CUDA
/// kernels). Without a model, nothing is built for CUDA: --emit=ptx and a
/// CUDA-only target are errors. Returns false after an error.
static bool checkFnTargets(const sparsec::Targets &targets, bool withModel) {
  if (!targets.cuda)
    return true;
  const bool builds = emitStage >= Stage::LLVMDialect &&
                      emitStage != Stage::Header && emitStage != Stage::PTX;
  if (!withModel && (emitStage == Stage::PTX || (builds && !targets.cpu))) {
    llvm::WithColor::error()
        << inputFilename
        << ": fn kernels have no CUDA code yet, and this file has no model "
           "(whose layers have CUDA kernels): build it with --target=cpu\n";
    return false;
  }
  if (builds)
    llvm::WithColor::warning()
        << inputFilename
        << ": fn kernels have no CUDA code yet: they run on the CPU only\n";
  return true;
}

/// The pipeline of a file with `fn` kernels and no model
/// (docs/sparse-ops.md): the kernels are generated on linalg directly, so
/// --emit=sdl, sdl-train and linalg all print that module.
static int runFnPipeline(const sparsec::ast::Module &m, llvm::SourceMgr &sm,
                         const sparsec::Targets &targets, const char *argv0) {
  if (!checkFnTargets(targets, /*withModel=*/false))
    return 1;
  std::string prefix = sparsec::fnSymbolPrefix(inputFilename, fnPrefix);
  if (emitStage == Stage::Header)
    return writeOutput(fnHeaderText(m, prefix)) ? 0 : 1;
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::MLIRContext ctx(registry);
  mlir::SourceMgrDiagnosticHandler diagHandler(sm, &ctx);
  mlir::DefaultTimingManager tm;
  mlir::applyDefaultTimingManagerCLOptions(tm);
  mlir::TimingScope timing = tm.getRootScope();
  mlir::OwningOpRef<mlir::ModuleOp> ir =
      sparsec::genFnModule(ctx, m, sm, prefix);
  if (!ir)
    return 1;
  if (emitStage <= Stage::Linalg)
    return printModule(*ir);
  if (!lowerToLLVMDialect(*ir, /*sparseResults=*/true, timing))
    return 1;
  if (emitStage == Stage::LLVMDialect)
    return printModule(*ir);
  return runBackend(
      *ir,
      [&](const std::string &obj, const sparsec::RuntimeLocation &rt,
          const std::string &output, std::string &error) {
        std::string glue;
        llvm::raw_string_ostream glueOS(glue);
        sparsec::emitFnGlue(m, prefix, glueOS);
        return sparsec::linkLibrary(glue, versionScript("", prefix), obj, rt,
                                    output, linkerDriver, verboseLink, error);
      },
      [&](llvm::StringRef path) {
        return writeHeaderText(fnHeaderText(m, prefix), path);
      },
      argv0);
}

/// Runs the pipeline up to the --emit stage. Returns the exit code.
static int runPipeline(const char *argv0) {
  sparsec::Targets targets;
  if (!checkTargets(targets))
    return 1;
  llvm::SourceMgr sm;
  unsigned bufferId = 0;
  if (!loadInput(sm, bufferId))
    return 1;
  sparsec::DiagEngine diags(sm, llvm::errs());
  diags.setErrorLimit(errorLimit);
  std::unique_ptr<sparsec::ast::Module> module =
      sparsec::parseAndCheck(sm, bufferId, diags);
  if (!module)
    return 1;
  if (emitStage == Stage::AST) {
    std::string text;
    llvm::raw_string_ostream os(text);
    sparsec::dumpAST(*module, os);
    return writeOutput(text) ? 0 : 1;
  }
  if (!module->fns.empty() && module->models.empty())
    return runFnPipeline(*module, sm, targets, argv0);
  // fn kernels next to a model join its module at the linalg stage, its
  // library and its header (docs/sparse-ops.md).
  bool hasFns = !module->fns.empty();
  if (hasFns && !checkFnTargets(targets, /*withModel=*/true))
    return 1;
  std::string prefix = sparsec::fnSymbolPrefix(inputFilename, fnPrefix);
  const sparsec::ast::Model *model = pickModel(*module);
  if (!model)
    return 1;

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::sdl::SdlDialect>();
  sparsec::registerGpuTranslations(registry);
  mlir::MLIRContext ctx(registry);
  mlir::SourceMgrDiagnosticHandler diagHandler(sm, &ctx);
  mlir::DefaultTimingManager tm;
  mlir::applyDefaultTimingManagerCLOptions(tm);
  mlir::TimingScope timing = tm.getRootScope();

  mlir::OwningOpRef<mlir::ModuleOp> ir = sparsec::mlirGen(ctx, *model, sm);
  if (!ir)
    return 1;
  if (emitStage == Stage::SDL)
    return printModule(*ir);
  if (!runPasses(*ir, "sdl-train", sparsec::buildTrainingPipeline, timing))
    return 1;
  if (emitStage == Stage::SDLTrain)
    return printModule(*ir);
  mlir::FailureOr<sparsec::ModelAbi> abi = sparsec::collectModelAbi(*ir);
  if (mlir::failed(abi))
    return 1;
  abi->cuda = targets.cuda;
  abi->cudaEmulated = targets.cuda && cudaEmulate;
  abi->cudaDefault = targets.cuda && !targets.cpu;
  if (emitStage == Stage::Header) {
    std::string text;
    llvm::raw_string_ostream os(text);
    sparsec::emitHeader(*abi, os);
    return writeOutput(text + fnHeaderText(*module, prefix)) ? 0 : 1;
  }
  if (emitStage == Stage::PTX)
    return emitPtx(*ir, timing);
  // The library's API runs on the CPU; CUDA kernels ride along in it
  // (docs/cuda.md). A model library always carries the CPU kernels too:
  // --target=cuda alone makes the GPU <Model>_create's device.
  mlir::OwningOpRef<mlir::ModuleOp> cuda;
  if (targets.cuda && emitStage >= Stage::LLVMDialect) {
    if (!(cuda = compileCuda(*ir, timing)))
      return 1;
  }
  if (!runPasses(*ir, "linalg", sparsec::buildLinalgPipeline, timing))
    return 1;
  if (hasFns) {
    mlir::OwningOpRef<mlir::ModuleOp> fns =
        sparsec::genFnModule(ctx, *module, sm, prefix);
    if (!fns)
      return 1;
    for (mlir::Operation &op : llvm::make_early_inc_range(*fns->getBody()))
      op.moveBefore(ir->getBody(), ir->getBody()->end());
  }
  if (emitStage == Stage::Linalg)
    return printModule(*ir);
  if (!lowerToLLVMDialect(*ir, /*sparseResults=*/hasFns, timing))
    return 1;
  if (cuda && mlir::failed(sparsec::mergeGpuModule(*ir, *cuda)))
    return 1;
  if (emitStage == Stage::LLVMDialect)
    return printModule(*ir);
  return runBackend(
      *ir,
      [&](const std::string &obj, const sparsec::RuntimeLocation &rt,
          const std::string &output, std::string &error) {
        if (!hasFns)
          return sparsec::linkModelLibrary(*abi, obj, rt, output, linkerDriver,
                                           verboseLink, error);
        std::string glue;
        llvm::raw_string_ostream glueOS(glue);
        sparsec::emitGlue(*abi, glueOS);
        sparsec::emitFnGlue(*module, prefix, glueOS);
        return sparsec::linkLibrary(glue, versionScript(abi->name, prefix), obj,
                                    rt, output, linkerDriver, verboseLink,
                                    error);
      },
      [&](llvm::StringRef path) {
        std::string text;
        llvm::raw_string_ostream os(text);
        sparsec::emitHeader(*abi, os);
        return writeHeaderText(text + fnHeaderText(*module, prefix), path);
      },
      argv0);
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  if (argc > 1 && llvm::StringRef(argv[1]) == "inspect")
    return sparsec::runInspect(
        llvm::ArrayRef<const char *>(argv + 2, argc - 2));
  // Passes are registered so that --mlir-print-ir-after=<pass> and friends
  // accept their names.
  mlir::registerAllPasses();
  sparsec::registerSparsecPasses();
  mlir::registerPassManagerCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerAsmPrinterCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  groupOptions();
  cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "sparsec " SPARSEC_VERSION " (LLVM/MLIR " LLVM_VERSION_STRING ")\n";
  });
  cl::ParseCommandLineOptions(argc, argv, overview);
  return runPipeline(argv[0]);
}
