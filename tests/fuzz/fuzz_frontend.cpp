//===- fuzz_frontend.cpp - libFuzzer target of the sparsec front end ------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Feeds a `.sdl` file through what `sparsec --emit=linalg` runs: lexer ->
// parser -> sema (parseAndCheck) -> AST dump -> MLIRGen (which runs the
// MLIR verifier) for every model of the file -> the training pipeline
// (sdl-expand-training, canonicalize) -> the C ABI (collectModelAbi, the
// generated header and C glue, as text) -> the linalg pipeline
// (buildLinalgPipeline: what `sparsec --emit=linalg` runs); the pass
// manager verifies after each pass.
//
// Two targets are built from this file:
//   sparsec-fuzz-frontend   the input bytes are the .sdl file;
//   sparsec-fuzz-generate   (SPARSEC_FUZZ_GENERATE) the input bytes drive a
//                           generator of syntactically valid models (inputs,
//                           every parameter kind and option, forward
//                           expressions over the names in scope, losses,
//                           optimizers and their options), so most inputs
//                           reach MLIRGen and the passes.
//
// Every input must end in success or in diagnostics. Besides what the
// sanitizers catch (crash, ASan, UBSan, LeakSanitizer, LLVM/MLIR asserts,
// libFuzzer's -timeout), the harness aborts -- i.e. reports a finding --
// when:
//   * parseAndCheck fails without reporting an error, or succeeds after
//     reporting one;
//   * MLIRGen or the pipeline fails without a diagnostic;
//   * a model the checker accepted gets a diagnostic that is not a user
//     diagnostic: an MLIR verifier / op error ("'sdl.x' op ...") or a
//     message containing "internal error".
// Diagnostics that the passes emit on purpose for valid-but-unsupported
// models (e.g. "a sparse weight used more than once is not supported yet")
// are accepted.
//
// Environment:
//   SPARSEC_FUZZ_DEPTH=ast|sdl|train|linalg (default linalg): how far to go.
//   SPARSEC_FUZZ_PRINT=1 (generate target): print each generated model.
//   SPARSEC_FUZZ_ALLOW_INTERNAL=1: do not abort on internal/verifier
//     diagnostics (to keep fuzzing while such a finding is open).
//   SPARSEC_FUZZ_VERBOSE=1: print every diagnostic to stderr (for
//     reproducing a finding).
//
//===----------------------------------------------------------------------===//

#include "codegen/ModelAbi.h"
#include "codegen/Pipeline.h"
#include "frontend/Frontend.h"
#include "mlirgen/MLIRGen.h"
#include "sdl/SdlDialect.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#ifdef SPARSEC_FUZZ_GENERATE
#include <fuzzer/FuzzedDataProvider.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

enum class Depth { AST, SDL, Train, Linalg };

struct Config {
  Depth depth = Depth::Linalg;
  bool allowInternal = false;
  bool verbose = false;
  bool print = false;
};

Config &config() {
  static Config c;
  return c;
}

/// How far the inputs got (printed at exit: the share of inputs that reach
/// MLIRGen and the pass pipeline tells whether the fuzzer explores them).
struct Stats {
  uint64_t inputs = 0, checked = 0, models = 0, generated = 0, trained = 0,
           lowered = 0, passDiagnostics = 0;
  ~Stats() {
    if (inputs)
      std::fprintf(stderr,
                   "==sparsec-fuzz== stats: %llu inputs, %llu accepted by the "
                   "checker, %llu models, %llu through MLIRGen + verifier, "
                   "%llu through the training pipeline and the C ABI, %llu "
                   "through the linalg lowering, %llu stopped by a pass "
                   "diagnostic\n",
                   (unsigned long long)inputs, (unsigned long long)checked,
                   (unsigned long long)models, (unsigned long long)generated,
                   (unsigned long long)trained, (unsigned long long)lowered,
                   (unsigned long long)passDiagnostics);
  }
};
Stats stats;

mlir::DialectRegistry &registry() {
  static mlir::DialectRegistry *r = [] {
    auto *reg = new mlir::DialectRegistry();
    reg->insert<mlir::sdl::SdlDialect, mlir::func::FuncDialect,
                mlir::sparse_tensor::SparseTensorDialect,
                mlir::tensor::TensorDialect, mlir::arith::ArithDialect>();
    return reg;
  }();
  return *r;
}

[[noreturn]] void finding(const char *what, const std::string &detail) {
  std::fprintf(stderr, "==sparsec-fuzz== FINDING: %s\n%s\n", what,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Collects the MLIR diagnostics of one context.
struct MlirDiags {
  std::string text;
  unsigned errors = 0;
  bool internal = false;

  explicit MlirDiags(mlir::MLIRContext &ctx)
      : handler(&ctx, [this](mlir::Diagnostic &d) {
          std::string msg = d.str();
          llvm::raw_string_ostream os(text);
          os << d.getLocation() << ": " << msg << "\n";
          for (const mlir::Diagnostic &n : d.getNotes())
            os << "  note: " << n.str() << "\n";
          if (d.getSeverity() == mlir::DiagnosticSeverity::Error) {
            ++errors;
            // emitOpError prefixes "'<op name>' op "; the verifier reports
            // through it. The front end's own messages never start so.
            if ((msg.size() > 1 && msg[0] == '\'' &&
                 msg.find("' op ") != std::string::npos) ||
                msg.find("internal error") != std::string::npos)
              internal = true;
          }
          if (config().verbose)
            llvm::errs() << d.getLocation() << ": " << msg << "\n";
          return mlir::success();
        }) {}

private:
  mlir::ScopedDiagnosticHandler handler;
};

/// Runs the passes `build` adds on `module`. Returns true on success; a
/// failure must come with a user diagnostic (else: a finding).
template <typename Build>
bool runPipeline(mlir::MLIRContext &ctx, mlir::ModuleOp module,
                 MlirDiags &diags, const sparsec::ast::Model &model,
                 const char *what, Build build) {
  mlir::PassManager pm(&ctx);
  pm.enableVerifier(true);
  build(pm);
  if (mlir::failed(pm.run(module))) {
    ++stats.passDiagnostics;
    if (diags.errors == 0)
      finding((std::string(what) + " failed without a diagnostic").c_str(),
              model.name);
    if (diags.internal && !config().allowInternal)
      finding(
          (std::string(what) + " reported an internal/verifier error").c_str(),
          diags.text);
    return false;
  }
  if (diags.errors != 0)
    finding((std::string(what) + " succeeded after reporting an error").c_str(),
            diags.text);
  if (mlir::failed(mlir::verify(module)))
    finding(
        (std::string(what) + " produced a module that does not verify").c_str(),
        diags.text);
  return true;
}

void runModel(const sparsec::ast::Model &model, const llvm::SourceMgr &sm) {
  const Config &cfg = config();
  mlir::MLIRContext ctx(registry(), mlir::MLIRContext::Threading::DISABLED);
  MlirDiags diags(ctx);
  ++stats.models;
  mlir::OwningOpRef<mlir::ModuleOp> module = sparsec::mlirGen(ctx, model, sm);
  if (!module) {
    if (diags.errors == 0)
      finding("MLIRGen failed without a diagnostic", model.name);
    if (diags.internal && !cfg.allowInternal)
      finding("MLIRGen reported an internal/verifier error on a checked model",
              diags.text);
    return;
  }
  if (diags.errors != 0)
    finding("MLIRGen succeeded after reporting an error", diags.text);
  if (mlir::failed(mlir::verify(*module)))
    finding("MLIRGen returned a module that does not verify", diags.text);
  ++stats.generated;
  if (cfg.depth == Depth::SDL)
    return;

  if (!runPipeline(ctx, *module, diags, model, "the training pipeline",
                   [](mlir::PassManager &pm) {
                     sparsec::buildTrainingPipeline(pm);
                   }))
    return;
  // The C ABI of the trained module, as `sparsec --emit=header` and the
  // link step compute it. The checker must refuse what the C ABI cannot
  // express (finding F-1 in docs/reliability.md: f16/bf16/i8 inputs were
  // refused only here, late and at the model name).
  mlir::FailureOr<sparsec::ModelAbi> abi = sparsec::collectModelAbi(*module);
  if (mlir::failed(abi))
    finding("collectModelAbi refused a model the checker accepted", diags.text);
  std::string text;
  llvm::raw_string_ostream os(text);
  sparsec::emitHeader(*abi, os);
  sparsec::emitGlue(*abi, os);
  sparsec::emitVersionScript(*abi, os);
  ++stats.trained;
  if (cfg.depth == Depth::Train)
    return;
  if (!runPipeline(ctx, *module, diags, model, "the linalg pipeline",
                   [](mlir::PassManager &pm) {
                     // What `sparsec --emit=linalg` runs, kept in one place.
                     sparsec::buildLinalgPipeline(pm);
                   }))
    return;
  ++stats.lowered;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  Config &c = config();
  if (const char *d = std::getenv("SPARSEC_FUZZ_DEPTH")) {
    if (!std::strcmp(d, "ast"))
      c.depth = Depth::AST;
    else if (!std::strcmp(d, "sdl"))
      c.depth = Depth::SDL;
    else if (!std::strcmp(d, "train"))
      c.depth = Depth::Train;
  }
  c.print = std::getenv("SPARSEC_FUZZ_PRINT") != nullptr;
  c.allowInternal = std::getenv("SPARSEC_FUZZ_ALLOW_INTERNAL") != nullptr;
  c.verbose = std::getenv("SPARSEC_FUZZ_VERBOSE") != nullptr;
  registry();
  return 0;
}

/// Compiles one .sdl text as deep as the configuration says.
static void compileSource(llvm::StringRef source) {
  const Config &cfg = config();
  ++stats.inputs;
  llvm::SourceMgr sm;
  // As `sparsec` reads a file: a copy of the bytes, named like a file.
  std::unique_ptr<llvm::MemoryBuffer> buf =
      llvm::MemoryBuffer::getMemBufferCopy(source, "fuzz.sdl");
  unsigned id = sm.AddNewSourceBuffer(std::move(buf), llvm::SMLoc());

  std::string diagText;
  llvm::raw_string_ostream diagOS(diagText);
  llvm::raw_ostream &diagStream =
      cfg.verbose ? static_cast<llvm::raw_ostream &>(llvm::errs()) : diagOS;
  sparsec::DiagEngine diags(sm, diagStream);
  diags.setErrorLimit(20); // the driver's default
  std::unique_ptr<sparsec::ast::Module> module =
      sparsec::parseAndCheck(sm, id, diags);
  if (!module) {
    if (!diags.hasErrors())
      finding("parseAndCheck failed without an error", "");
    return;
  }
  if (diags.hasErrors())
    finding("parseAndCheck succeeded after reporting an error", diagText);
  // A file holds models, fn kernels (docs/sparse-ops.md) or both.
  if (module->models.empty() && module->fns.empty())
    finding("parseAndCheck accepted a file without models or fn kernels", "");
  ++stats.checked;

  std::string dump;
  llvm::raw_string_ostream dumpOS(dump);
  sparsec::dumpAST(*module, dumpOS);
  if (cfg.depth == Depth::AST)
    return;
  for (const auto &model : module->models)
    runModel(*model, sm);
}

#ifndef SPARSEC_FUZZ_GENERATE

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  compileSource(llvm::StringRef(reinterpret_cast<const char *>(data), size));
  return 0;
}

#else // SPARSEC_FUZZ_GENERATE

#include "fuzz_generate.inc"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  std::string source = generateModel(fdp);
  if (config().print)
    std::fprintf(stderr, "---- generated model ----\n%s\n", source.c_str());
  compileSource(source);
  return 0;
}

#endif
