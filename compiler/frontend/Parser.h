//===- Parser.h - Recursive-descent parser of the sparsec DSL ---*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Builds an ast::Module from one SourceMgr buffer. Syntax errors are reported
// through the DiagEngine; the parser then skips to the next statement
// boundary (the next declaration keyword inside a model, the next line that
// starts with a name inside a forward block, the next 'model' at the top
// level) and goes on, so several errors are reported per run. Models in which
// any syntax error was found are marked with Model::hasSyntaxErrors so that
// Sema does not derive follow-up errors from a half-parsed model.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_PARSER_H
#define SPARSEC_FRONTEND_PARSER_H

#include "AST.h"
#include "Lexer.h"

#include "llvm/ADT/Twine.h"

#include <memory>

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace sparsec {

class DiagEngine;

class Parser {
public:
  Parser(llvm::SourceMgr &sm, unsigned bufferId, DiagEngine &diags);

  /// Parses the whole buffer. Always returns a module (possibly partial);
  /// check the DiagEngine for errors.
  std::unique_ptr<ast::Module> parseModule();

private:
  // Token stream.
  void consume();
  const Token &peek();
  bool consumeIf(TokenKind kind);
  void error(llvm::SMLoc loc, const llvm::Twine &msg);

  // Declarations.
  std::unique_ptr<ast::Model> parseModel();
  void parseModelBody(ast::Model &m);
  bool parseDecl(ast::Model &m);
  bool parseInputDecl(ast::Model &m);
  bool parseTypeSpec(ast::TypeSpec &spec);
  bool parseEncoding(ast::Encoding &enc);
  bool parseParamDecl(ast::Model &m);
  bool parseLoss(ast::Model &m);
  bool parseOptimizer(ast::Model &m);
  bool parseArgList(std::vector<ast::Argument> &args);
  bool parseArgValue(ast::ArgValue &v);
  bool parseListValue(ast::ArgValue &v); // ParseList.cpp
  bool parseInteger(const Token &t, int64_t &out);
  bool parseFloat(const Token &t, double &out);

  // Free-standing kernels (ParseFn.cpp).
  friend class FnParser;
  std::shared_ptr<ast::FnDecl> parseFn();

  // Forward block and expressions.
  bool parseForward(ast::Model &m);
  bool parseForwardStmt(ast::ForwardBlock &f);
  std::unique_ptr<ast::Expr> parseExpr();
  std::unique_ptr<ast::Expr> parseTerm();
  std::unique_ptr<ast::Expr> parsePrimary();
  std::unique_ptr<ast::Expr> parseCall();
  std::unique_ptr<ast::Expr> makeBinary(llvm::SMLoc opLoc, ast::BinaryOp op,
                                        std::unique_ptr<ast::Expr> lhs,
                                        std::unique_ptr<ast::Expr> rhs);
  bool enterNesting(llvm::SMLoc loc);

  // Error recovery.
  void syncTopLevel();
  void syncModelLevel();
  void syncForward();
  bool isModelLevelKeyword() const;

  const llvm::SourceMgr &sm;
  Lexer lexer;
  DiagEngine &diags;
  Token tok;
  Token next;
  bool hasNext = false;
  unsigned nesting = 0;
};

} // namespace sparsec

#endif // SPARSEC_FRONTEND_PARSER_H
