//===- Frontend.h - One-call API of the sparsec front end -------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Lexes, parses and checks a DSL source buffer in one call:
//
//   llvm::SourceMgr sm;
//   unsigned id = sm.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
//   sparsec::DiagEngine diags(sm);
//   std::unique_ptr<sparsec::ast::Module> m =
//       sparsec::parseAndCheck(sm, id, diags);
//   if (!m)
//     return 1; // errors were printed
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_FRONTEND_H
#define SPARSEC_FRONTEND_FRONTEND_H

#include "AST.h"
#include "Diagnostics.h"

#include <memory>

namespace llvm {
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace sparsec {

// Parse and check the buffer `bufferId` of `sm`; diagnostics go to `diags`.
// Returns nullptr if any error was reported.
std::unique_ptr<ast::Module>
parseAndCheck(llvm::SourceMgr &sm, unsigned bufferId, DiagEngine &diags);

// Readable indented tree with line:col and resolved types/shapes (the output
// of `sparsec --emit=ast`).
void dumpAST(const ast::Module &m, llvm::raw_ostream &os);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_FRONTEND_H
