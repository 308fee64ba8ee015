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

/// kwinners(...) and kwinners2d(...): checks the arguments and fills in
/// `p.layer` (SemaKWinners.cpp). Returns false after reporting errors.
bool resolveKWinners(ast::ParamDecl &p, DiagEngine &diags);

/// Reports at `loc` (and returns false) when the kwinners layer `l`,
/// choosing among `units` values, keeps no unit or more than `units`.
bool checkKWinnersK(const ast::Layer &l, int64_t units, llvm::SMLoc loc,
                    DiagEngine &diags);

/// The result type of `flatten(x)` / `unflatten(x, d1, ..., dk)` (x
/// checked), or an invalid type after reporting (SemaReshape.cpp).
ast::Type checkFlatten(const ast::CallExpr &c, llvm::StringRef batch,
                       DiagEngine &diags);
ast::Type checkUnflatten(const ast::CallExpr &c, llvm::StringRef batch,
                         DiagEngine &diags);

/// The result type of applying the masked_conv2d `p` to a value of type
/// `t`, or an invalid type after reporting (SemaConv.cpp).
ast::Type applyMaskedConv2d(const ast::CallExpr &c, const ast::ParamDecl &p,
                            const ast::Type &t, llvm::StringRef batch,
                            DiagEngine &diags);

/// The result type of applying the masked_lstm `p` to a value of type `t`,
/// or an invalid type after reporting (SemaLstm.cpp).
ast::Type applyMaskedLstm(const ast::CallExpr &c, const ast::ParamDecl &p,
                          const ast::Type &t, llvm::StringRef batch,
                          DiagEngine &diags);

/// Checks the arguments of an optimizer declaration and fills in
/// `o.optimizer` (sets `o.isResolved`). Returns false after reporting errors.
bool resolveOptimizer(ast::OptimizerDecl &o, DiagEngine &diags);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_SEMA_H
