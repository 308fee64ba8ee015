//===- Frontend.cpp - One-call API of the sparsec front end ---------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "Frontend.h"
#include "FnAST.h"
#include "Parser.h"
#include "Sema.h"

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace sparsec;

std::unique_ptr<ast::Module> sparsec::parseAndCheck(llvm::SourceMgr &sm,
                                                    unsigned bufferId,
                                                    DiagEngine &diags) {
  unsigned errorsBefore = diags.getNumErrors();
  Parser parser(sm, bufferId, diags);
  std::unique_ptr<ast::Module> module = parser.parseModule();
  Sema(diags).check(*module);
  ast::checkFns(*module, diags);
  if (diags.getNumErrors() != errorsBefore)
    return nullptr;
  return module;
}

void sparsec::dumpAST(const ast::Module &m, llvm::raw_ostream &os) {
  ast::dump(m, os);
  ast::dumpFns(m, os);
}
