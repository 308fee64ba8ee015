//===- ParseFn.cpp - Parser of free-standing kernels (`fn`) ---------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Parses `fn` declarations (grammar in docs/language.md, semantics in
// docs/sparse-ops.md):
//
//   fn_decl := 'fn' NAME '(' [param {',' param}] ')' '->' type
//              '{' {NAME '=' expr [';']} 'return' expr [';'] '}'
//   param   := NAME ':' elem '[' dims ']' ['@' encoding]
//   type    := elem ['[' dims ']' ['@' encoding]]     (no dims: a scalar)
//   expr    := term {('+' | '-') term}
//   term    := unary {('*' | '/' | '@') unary}
//   unary   := '-' unary | primary
//   primary := NUMBER | NAME | NAME '(' [arg {',' arg}] ')' | '(' expr ')'
//   arg     := expr | NAME '=' ['-'] NUMBER
//
// `fn` is recognised only at the top level, so it stays a valid name inside
// models.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "FnAST.h"
#include "Parser.h"

#include "llvm/ADT/StringSwitch.h"

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::Twine;

namespace sparsec {
/// Parses one `fn` with the token stream of a Parser.
class FnParser {
public:
  explicit FnParser(Parser &p) : p(p) {}

  std::shared_ptr<FnDecl> parse();

private:
  const Token &tok() const { return p.tok; }
  bool is(TokenKind k) const { return p.tok.is(k); }
  void consume() { p.consume(); }
  bool consumeIf(TokenKind k) { return p.consumeIf(k); }
  void error(SMLoc loc, const Twine &msg) { p.error(loc, msg); }
  bool isFnStart() const {
    return is(TokenKind::Identifier) && tok().atStartOfLine &&
           (tok().spelling == "fn" || tok().spelling == "grad");
  }

  bool parseParam(FnDecl &fn);
  bool parseResultType(FnDecl &fn);
  bool parseBody(FnDecl &fn);
  std::unique_ptr<FnExpr> parseExpr();
  std::unique_ptr<FnExpr> parseTerm();
  std::unique_ptr<FnExpr> parseUnary();
  std::unique_ptr<FnExpr> parsePrimary();
  std::unique_ptr<FnExpr> parseCall();
  bool parseNumber(double &value, SMLoc &loc);
  std::unique_ptr<FnExpr> makeNode(FnOp op, SMLoc loc,
                                   std::unique_ptr<FnExpr> lhs,
                                   std::unique_ptr<FnExpr> rhs = nullptr);
  /// Skips to the end of the current kernel.
  void skipFn();

  Parser &p;
  unsigned nesting = 0;
};
} // namespace sparsec

std::shared_ptr<FnDecl> Parser::parseFn() { return FnParser(*this).parse(); }

void FnParser::skipFn() {
  unsigned depth = 0;
  while (!is(TokenKind::Eof) && !is(TokenKind::KwModel) && !isFnStart()) {
    if (is(TokenKind::LBrace)) {
      ++depth;
    } else if (is(TokenKind::RBrace)) {
      consume();
      if (depth <= 1)
        return;
      --depth;
      continue;
    }
    consume();
  }
}

std::shared_ptr<FnDecl> FnParser::parse() {
  auto fn = std::make_shared<FnDecl>();
  if (tok().spelling == "grad") {
    fn->grad = true;
    fn->gradLoc = tok().loc;
    consume();
    // grad(p, q) fn: gradients with respect to those parameters only.
    if (consumeIf(TokenKind::LParen)) {
      while (is(TokenKind::Identifier)) {
        fn->gradOf.push_back({tok().spelling.str(), tok().loc});
        consume();
        if (!consumeIf(TokenKind::Comma))
          break;
      }
      if (fn->gradOf.empty() || !consumeIf(TokenKind::RParen)) {
        error(tok().loc, "expected parameter names and ')' in 'grad(...)'");
        skipFn();
        return nullptr;
      }
    }
    if (!is(TokenKind::Identifier) || tok().spelling != "fn") {
      error(tok().loc, "expected 'fn' after 'grad'");
      skipFn();
      return nullptr;
    }
  }
  consume(); // 'fn'
  if (!is(TokenKind::Identifier)) {
    error(tok().loc, "expected kernel name after 'fn'");
    skipFn();
    return nullptr;
  }
  fn->name = tok().spelling.str();
  fn->loc = tok().loc;
  consume();
  bool ok = true;
  if (!consumeIf(TokenKind::LParen)) {
    error(tok().loc, "expected '(' after kernel name");
    ok = false;
  }
  if (ok && !consumeIf(TokenKind::RParen)) {
    while (ok) {
      ok = parseParam(*fn);
      if (!ok || consumeIf(TokenKind::RParen))
        break;
      if (!consumeIf(TokenKind::Comma)) {
        error(tok().loc, "expected ',' or ')' in parameter list");
        ok = false;
      }
    }
  }
  if (ok && !consumeIf(TokenKind::Arrow)) {
    error(tok().loc, "expected '->' and the result type after the "
                     "parameters of '" +
                         fn->name + "'");
    ok = false;
  }
  ok = ok && parseResultType(*fn) && parseBody(*fn);
  if (!ok) {
    skipFn();
    return nullptr;
  }
  return fn;
}

bool FnParser::parseParam(FnDecl &fn) {
  if (!is(TokenKind::Identifier)) {
    error(tok().loc, "expected parameter name");
    return false;
  }
  FnParam param;
  param.name = tok().spelling.str();
  param.loc = tok().loc;
  consume();
  if (!consumeIf(TokenKind::Colon)) {
    error(tok().loc, "expected ':' after '" + param.name + "'");
    return false;
  }
  if (!p.parseTypeSpec(param.spec))
    return false;
  fn.params.push_back(std::move(param));
  return true;
}

bool FnParser::parseResultType(FnDecl &fn) {
  fn.hasResultSpec = true;
  // A bare element type is a scalar result (`-> f32`).
  if (tok().isElemType() && p.peek().isNot(TokenKind::LBracket)) {
    fn.resultSpec.loc = tok().loc;
    fn.resultSpec.elem = elemTypeFromName(tok().spelling);
    consume();
    return true;
  }
  return p.parseTypeSpec(fn.resultSpec);
}

bool FnParser::parseBody(FnDecl &fn) {
  if (!consumeIf(TokenKind::LBrace)) {
    error(tok().loc, "expected '{' before the body of '" + fn.name + "'");
    return false;
  }
  while (true) {
    if (is(TokenKind::RBrace)) {
      SMLoc loc = tok().loc;
      consume();
      if (!fn.ret) {
        error(loc, "kernel '" + fn.name + "' has no 'return'");
        return false;
      }
      return true;
    }
    if (is(TokenKind::Eof) || is(TokenKind::KwModel) || isFnStart()) {
      error(tok().loc, "expected '}' at end of kernel '" + fn.name + "'");
      return false;
    }
    if (fn.ret) {
      error(tok().loc,
            "'return' must be the last statement of kernel '" + fn.name + "'");
      return false;
    }
    if (is(TokenKind::KwReturn)) {
      fn.retLoc = tok().loc;
      consume();
      fn.ret = parseExpr();
      if (!fn.ret)
        return false;
      consumeIf(TokenKind::Semicolon);
      continue;
    }
    if (!is(TokenKind::Identifier)) {
      error(tok().loc,
            "expected an assignment or 'return' in kernel '" + fn.name + "'");
      return false;
    }
    FnStmt stmt;
    stmt.name = tok().spelling.str();
    stmt.loc = tok().loc;
    consume();
    if (!consumeIf(TokenKind::Equal)) {
      error(tok().loc, "expected '=' after '" + stmt.name + "'");
      return false;
    }
    stmt.value = parseExpr();
    if (!stmt.value)
      return false;
    consumeIf(TokenKind::Semicolon);
    fn.stmts.push_back(std::move(stmt));
  }
}

std::unique_ptr<FnExpr> FnParser::makeNode(FnOp op, SMLoc loc,
                                           std::unique_ptr<FnExpr> lhs,
                                           std::unique_ptr<FnExpr> rhs) {
  auto e = std::make_unique<FnExpr>();
  e->op = op;
  e->loc = loc;
  e->depth = 1 + std::max(lhs->depth, rhs ? rhs->depth : 0u);
  if (e->depth > kMaxExprDepth) {
    error(loc, "expression is nested too deeply (the limit is " +
                   Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  e->args.push_back(std::move(lhs));
  if (rhs)
    e->args.push_back(std::move(rhs));
  return e;
}

std::unique_ptr<FnExpr> FnParser::parseExpr() {
  std::unique_ptr<FnExpr> lhs = parseTerm();
  while (lhs && (is(TokenKind::Plus) || is(TokenKind::Minus))) {
    FnOp op = is(TokenKind::Plus) ? FnOp::Add : FnOp::Sub;
    SMLoc loc = tok().loc;
    consume();
    std::unique_ptr<FnExpr> rhs = parseTerm();
    if (!rhs)
      return nullptr;
    lhs = makeNode(op, loc, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

std::unique_ptr<FnExpr> FnParser::parseTerm() {
  std::unique_ptr<FnExpr> lhs = parseUnary();
  while (lhs &&
         (is(TokenKind::Star) || is(TokenKind::Slash) || is(TokenKind::At))) {
    FnOp op = is(TokenKind::Star)    ? FnOp::Mul
              : is(TokenKind::Slash) ? FnOp::Div
                                     : FnOp::MatMul;
    SMLoc loc = tok().loc;
    consume();
    std::unique_ptr<FnExpr> rhs = parseUnary();
    if (!rhs)
      return nullptr;
    lhs = makeNode(op, loc, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

std::unique_ptr<FnExpr> FnParser::parseUnary() {
  if (!is(TokenKind::Minus))
    return parsePrimary();
  SMLoc loc = tok().loc;
  consume();
  if (nesting >= kMaxExprDepth) {
    error(loc, "expression is nested too deeply (the limit is " +
                   Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  ++nesting;
  std::unique_ptr<FnExpr> operand = parseUnary();
  --nesting;
  if (!operand)
    return nullptr;
  // `-2.5` is a number, not a negation.
  if (operand->op == FnOp::Number) {
    operand->number = -operand->number;
    operand->loc = loc;
    return operand;
  }
  std::unique_ptr<FnExpr> e = makeNode(FnOp::Map, loc, std::move(operand));
  if (e)
    e->name = "neg";
  return e;
}

bool FnParser::parseNumber(double &value, SMLoc &loc) {
  loc = tok().loc;
  bool neg = consumeIf(TokenKind::Minus);
  if (!is(TokenKind::Integer) && !is(TokenKind::Float)) {
    error(tok().loc, "expected a number");
    return false;
  }
  if (!p.parseFloat(tok(), value))
    return false;
  if (neg)
    value = -value;
  consume();
  return true;
}

std::unique_ptr<FnExpr> FnParser::parsePrimary() {
  if (is(TokenKind::Integer) || is(TokenKind::Float)) {
    auto e = std::make_unique<FnExpr>();
    e->op = FnOp::Number;
    if (!parseNumber(e->number, e->loc))
      return nullptr;
    return e;
  }
  if (is(TokenKind::Identifier)) {
    if (p.peek().is(TokenKind::LParen))
      return parseCall();
    auto e = std::make_unique<FnExpr>();
    e->op = FnOp::Ident;
    e->loc = tok().loc;
    e->name = tok().spelling.str();
    consume();
    return e;
  }
  if (is(TokenKind::LParen)) {
    SMLoc loc = tok().loc;
    if (nesting >= kMaxExprDepth) {
      error(loc, "expression is nested too deeply (the limit is " +
                     Twine(kMaxExprDepth) + ")");
      return nullptr;
    }
    consume();
    ++nesting;
    std::unique_ptr<FnExpr> e = parseExpr();
    --nesting;
    if (!e)
      return nullptr;
    if (!consumeIf(TokenKind::RParen)) {
      error(tok().loc, "expected ')'");
      return nullptr;
    }
    return e;
  }
  error(tok().loc, "expected expression");
  return nullptr;
}

std::unique_ptr<FnExpr> FnParser::parseCall() {
  auto e = std::make_unique<FnExpr>();
  e->loc = tok().loc;
  e->name = tok().spelling.str();
  consume(); // callee
  consume(); // '('
  if (nesting >= kMaxExprDepth) {
    error(e->loc, "expression is nested too deeply (the limit is " +
                      Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  if (consumeIf(TokenKind::RParen))
    return e;
  while (true) {
    if (is(TokenKind::Identifier) && p.peek().is(TokenKind::Equal)) {
      FnExpr::KwArg kw;
      kw.name = tok().spelling.str();
      kw.loc = tok().loc;
      consume(); // name
      consume(); // '='
      SMLoc numLoc;
      if (!parseNumber(kw.value, numLoc))
        return nullptr;
      e->kwargs.push_back(std::move(kw));
    } else {
      if (!e->kwargs.empty()) {
        error(tok().loc, "positional argument after a keyword argument in "
                         "call to '" +
                             e->name + "'");
        return nullptr;
      }
      ++nesting;
      std::unique_ptr<FnExpr> arg = parseExpr();
      --nesting;
      if (!arg)
        return nullptr;
      e->depth = std::max(e->depth, arg->depth + 1);
      e->args.push_back(std::move(arg));
    }
    if (consumeIf(TokenKind::RParen))
      break;
    if (!consumeIf(TokenKind::Comma)) {
      error(tok().loc, "expected ',' or ')' in call to '" + e->name + "'");
      return nullptr;
    }
  }
  if (e->depth > kMaxExprDepth) {
    error(e->loc, "expression is nested too deeply (the limit is " +
                      Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  return e;
}
