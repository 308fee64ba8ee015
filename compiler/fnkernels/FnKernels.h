//===- FnKernels.h - Compilation of free-standing kernels -------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The back half of `fn` kernels (docs/sparse-ops.md): MLIR generation on
// linalg + sparse_tensor (FnGen.cpp) and the C ABI of the generated library
// (FnAbi.cpp: C glue that checks the arrays and calls the kernels, the
// header and the version script). Both follow the memref list of
// fnKernelMemrefs(), the single description of a kernel's arguments.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FNKERNELS_FNKERNELS_H
#define SPARSEC_FNKERNELS_FNKERNELS_H

#include "frontend/FnAST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace llvm {
class SourceMgr;
}

namespace sparsec {

/// One memref argument of a kernel's MLIR function. Dynamic dimensions are
/// ShapedType::kDynamic; `sizes` are the C expressions of every dimension
/// in the glue.
struct FnMemref {
  std::string name;               // C name of the array ("A_pos")
  bool isIndex = false;           // index (int64_t) or the element type
  std::vector<int64_t> shape;     // MLIR shape
  std::vector<std::string> sizes; // C size expressions
  int param = -1;                 // parameter index, -1 for the result
};

/// The memref arguments of kernel `fn`, in order: every parameter's arrays
/// (dense: one; csr/csc/bsr: pos, crd, val; coo: pos, crd0, crd1, val;
/// coo(1): pos, crd0, val), then the result's arrays (same shapes; a sparse
/// result's crd/val have room for `out_cap` entries).
std::vector<FnMemref> fnKernelMemrefs(const ast::FnDecl &fn);

/// The prefix of every exported symbol: `override` if set, else the input
/// file's name without directory and extension, with every character that
/// is not a letter, digit or '_' replaced by '_' (and '_' put in front of a
/// leading digit). Empty input name ("-"): "sdl".
std::string fnSymbolPrefix(llvm::StringRef inputFile, llvm::StringRef override);

/// The MLIR function of kernel `fn`: `sparsec_fn_<prefix>_<fn>`.
std::string fnKernelSymbol(llvm::StringRef prefix, llvm::StringRef fn);

/// Builds one function per kernel of `m` on linalg/tensor/sparse_tensor.
/// Returns null after an error diagnostic.
mlir::OwningOpRef<mlir::ModuleOp> genFnModule(mlir::MLIRContext &ctx,
                                              const ast::Module &m,
                                              const llvm::SourceMgr &sm,
                                              llvm::StringRef prefix);

/// The C glue: one checked entry point `<prefix>_<fn>` per kernel and
/// `<prefix>_last_error`.
void emitFnGlue(const ast::Module &m, llvm::StringRef prefix,
                llvm::raw_ostream &os);
/// The C99 header declaring the entry points.
void emitFnHeader(const ast::Module &m, llvm::StringRef prefix,
                  llvm::raw_ostream &os);
/// The C helpers every glue file starts with (FnGlue.cpp).
const char *fnGluePrologue();
/// The global patterns of the version script (`<prefix>_*;`).
void emitFnExports(llvm::StringRef prefix, llvm::raw_ostream &os);

} // namespace sparsec

#endif // SPARSEC_FNKERNELS_FNKERNELS_H
