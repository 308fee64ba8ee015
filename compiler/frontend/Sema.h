//===- Sema.h - Semantic checks and shape inference -------------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Sema checks a parsed ast::Module and fills in everything later stages
// need: input types with the batch dimension (ast::kBatch), resolved
// parameter layers, the type of every forward expression, what every name
// refers to, the loss, the optimizer settings and the model output.
//
// Sema reports as many independent errors as it can. A value whose checking
// failed gets an invalid type and is silently skipped by every later check,
// so one mistake gives one error. Models that had syntax errors are not
// checked at all (see ast::Model::hasSyntaxErrors).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_SEMA_H
#define SPARSEC_FRONTEND_SEMA_H

#include "AST.h"

namespace sparsec {

class DiagEngine;

class Sema {
public:
  explicit Sema(DiagEngine &diags) : diags(diags) {}

  /// Checks and annotates every model of `m`. Returns true if no error was
  /// reported.
  bool check(ast::Module &m);

private:
  DiagEngine &diags;
};

/// Checks the arguments of a parameter declaration and fills in `p.layer`
/// (sets `p.isResolved`). Returns false after reporting errors.
bool resolveParam(ast::ParamDecl &p, DiagEngine &diags);

/// Checks the arguments of an optimizer declaration and fills in
/// `o.optimizer` (sets `o.isResolved`). Returns false after reporting errors.
bool resolveOptimizer(ast::OptimizerDecl &o, DiagEngine &diags);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_SEMA_H
