//===- Parser.cpp - Recursive-descent parser of the sparsec DSL -----------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "Parser.h"
#include "Diagnostics.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/SourceMgr.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

/// Longest number literal converted (longer ones are rejected).
static constexpr size_t kMaxNumberLength = 512;

Parser::Parser(llvm::SourceMgr &sm, unsigned bufferId, DiagEngine &diags)
    : sm(sm), lexer(sm, bufferId, diags), diags(diags) {
  tok = lexer.lex();
}

//===----------------------------------------------------------------------===//
// Token stream
//===----------------------------------------------------------------------===//

void Parser::consume() {
  if (hasNext) {
    tok = next;
    hasNext = false;
    return;
  }
  tok = lexer.lex();
}

const Token &Parser::peek() {
  if (!hasNext) {
    next = lexer.lex();
    hasNext = true;
  }
  return next;
}

bool Parser::consumeIf(TokenKind kind) {
  if (tok.isNot(kind))
    return false;
  consume();
  return true;
}

void Parser::error(SMLoc loc, const Twine &msg) {
  // A malformed literal was already reported by the lexer; an error about
  // the same token would only repeat it.
  if (tok.invalid && loc == tok.loc)
    return;
  diags.error(loc, msg);
}

bool Parser::isModelLevelKeyword() const {
  switch (tok.kind) {
  case TokenKind::KwModel:
  case TokenKind::KwInput:
  case TokenKind::KwTarget:
  case TokenKind::KwParam:
  case TokenKind::KwForward:
  case TokenKind::KwLoss:
  case TokenKind::KwOptimizer:
    return true;
  default:
    return false;
  }
}

//===----------------------------------------------------------------------===//
// Error recovery
//===----------------------------------------------------------------------===//

void Parser::syncTopLevel() {
  while (tok.isNot(TokenKind::Eof) && tok.isNot(TokenKind::KwModel) &&
         !(tok.is(TokenKind::Identifier) && tok.atStartOfLine &&
           (tok.spelling == "fn" || tok.spelling == "grad")))
    consume();
}

void Parser::syncModelLevel() {
  unsigned depth = 0;
  while (tok.isNot(TokenKind::Eof)) {
    if (isModelLevelKeyword())
      return;
    if (tok.is(TokenKind::LBrace)) {
      ++depth;
    } else if (tok.is(TokenKind::RBrace)) {
      if (depth == 0)
        return;
      --depth;
    } else if (tok.is(TokenKind::Semicolon) && depth == 0) {
      consume();
      return;
    }
    consume();
  }
}

void Parser::syncForward() {
  while (tok.isNot(TokenKind::Eof)) {
    if (tok.is(TokenKind::Semicolon)) {
      consume();
      return;
    }
    if (tok.is(TokenKind::RBrace) || tok.is(TokenKind::KwReturn) ||
        isModelLevelKeyword())
      return;
    if (tok.is(TokenKind::Identifier) && tok.atStartOfLine)
      return;
    consume();
  }
}

//===----------------------------------------------------------------------===//
// Top level and models
//===----------------------------------------------------------------------===//

std::unique_ptr<Module> Parser::parseModule() {
  auto module = std::make_unique<Module>();
  module->sourceMgr = &sm;
  if (tok.is(TokenKind::Eof))
    error(tok.loc, "expected 'model'");
  while (tok.isNot(TokenKind::Eof)) {
    // `fn` and `grad fn` are keywords only at the top level
    // (docs/sparse-ops.md).
    if (tok.is(TokenKind::Identifier) &&
        (tok.spelling == "fn" || tok.spelling == "grad")) {
      if (std::shared_ptr<FnDecl> fn = parseFn())
        module->fns.push_back(std::move(fn));
      continue;
    }
    if (tok.isNot(TokenKind::KwModel)) {
      error(tok.loc, "expected 'model'");
      consume();
      syncTopLevel();
      continue;
    }
    unsigned errorsBefore = diags.getNumErrors();
    std::unique_ptr<Model> model = parseModel();
    model->hasSyntaxErrors = diags.getNumErrors() != errorsBefore;
    module->models.push_back(std::move(model));
  }
  return module;
}

std::unique_ptr<Model> Parser::parseModel() {
  auto m = std::make_unique<Model>();
  m->loc = tok.loc;
  consume(); // 'model'
  if (tok.is(TokenKind::Identifier)) {
    m->name = tok.spelling.str();
    m->loc = tok.loc;
    consume();
  } else {
    error(tok.loc, "expected model name after 'model'");
    if (tok.isNot(TokenKind::LBrace)) {
      syncTopLevel();
      return m;
    }
  }
  if (!consumeIf(TokenKind::LBrace)) {
    error(tok.loc, "expected '{' after model name");
    // With a declaration next, assume only the '{' is missing.
    if (!isModelLevelKeyword() || tok.is(TokenKind::KwModel)) {
      syncTopLevel();
      return m;
    }
  }
  parseModelBody(*m);
  return m;
}

void Parser::parseModelBody(Model &m) {
  while (true) {
    if (tok.is(TokenKind::RBrace)) {
      consume();
      return;
    }
    if (tok.is(TokenKind::Eof) || tok.is(TokenKind::KwModel)) {
      error(tok.loc, "expected '}' at end of model '" + m.name + "'");
      return;
    }
    const char *before = tok.loc.getPointer();
    if (!parseDecl(m))
      syncModelLevel();
    if (tok.loc.getPointer() == before && tok.isNot(TokenKind::Eof))
      consume(); // always make progress
  }
}

bool Parser::parseDecl(Model &m) {
  bool ok;
  switch (tok.kind) {
  case TokenKind::KwInput:
  case TokenKind::KwTarget:
    ok = parseInputDecl(m);
    break;
  case TokenKind::KwParam:
    ok = parseParamDecl(m);
    break;
  case TokenKind::KwForward:
    ok = parseForward(m);
    break;
  case TokenKind::KwLoss:
    ok = parseLoss(m);
    break;
  case TokenKind::KwOptimizer:
    ok = parseOptimizer(m);
    break;
  case TokenKind::Semicolon:
    consume();
    return true;
  default:
    error(tok.loc, "expected 'input', 'target', 'param', 'forward', 'loss' "
                   "or 'optimizer'");
    return false;
  }
  if (ok)
    consumeIf(TokenKind::Semicolon);
  return ok;
}

//===----------------------------------------------------------------------===//
// Literals
//===----------------------------------------------------------------------===//

bool Parser::parseInteger(const Token &t, int64_t &out) {
  out = 0;
  if (t.invalid)
    return false; // already reported by the lexer
  uint64_t v = 0;
  if (t.spelling.size() > kMaxNumberLength || t.spelling.getAsInteger(10, v) ||
      v > uint64_t(std::numeric_limits<int64_t>::max())) {
    error(t.loc, "integer literal is too large");
    return false;
  }
  out = static_cast<int64_t>(v);
  return true;
}

bool Parser::parseFloat(const Token &t, double &out) {
  out = 0;
  if (t.invalid)
    return false;
  if (t.spelling.size() > kMaxNumberLength ||
      t.spelling.getAsDouble(out, /*AllowInexact=*/true) ||
      !std::isfinite(out)) {
    out = 0;
    error(t.loc, "number literal is out of range");
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Parameters, loss, optimizer and argument lists
//===----------------------------------------------------------------------===//

bool Parser::parseParamDecl(Model &m) {
  auto decl = std::make_unique<ParamDecl>();
  consume(); // 'param'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected parameter name after 'param'");
    return false;
  }
  decl->name = tok.spelling.str();
  decl->loc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::Colon)) {
    error(tok.loc, "expected ':' after '" + decl->name + "'");
    return false;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected parameter kind (linear, sparse_linear, "
                   "embedding or tensor)");
    return false;
  }
  decl->kindName = tok.spelling.str();
  decl->kindLoc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::LParen)) {
    error(tok.loc, "expected '(' after '" + decl->kindName + "'");
    return false;
  }
  if (!parseArgList(decl->args))
    return false;
  m.params.push_back(std::move(decl));
  return true;
}

bool Parser::parseLoss(Model &m) {
  auto decl = std::make_unique<LossDecl>();
  decl->loc = tok.loc;
  consume(); // 'loss'
  if (!consumeIf(TokenKind::Equal)) {
    error(tok.loc, "expected '=' after 'loss'");
    return false;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected loss function (mse, cross_entropy or "
                   "bce_with_logits)");
    return false;
  }
  decl->kindName = tok.spelling.str();
  decl->kindLoc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::LParen)) {
    error(tok.loc, "expected '(' after '" + decl->kindName + "'");
    return false;
  }
  if (!parseArgList(decl->args))
    return false;
  if (m.loss) {
    error(decl->loc, "model '" + m.name + "' has more than one 'loss'");
    diags.note(m.loss->loc, "previous 'loss' is here");
    return true;
  }
  m.loss = std::move(decl);
  return true;
}

bool Parser::parseOptimizer(Model &m) {
  auto decl = std::make_unique<OptimizerDecl>();
  decl->loc = tok.loc;
  consume(); // 'optimizer'
  if (!consumeIf(TokenKind::Equal)) {
    error(tok.loc, "expected '=' after 'optimizer'");
    return false;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected an optimizer, e.g. sgd(lr = 0.1)");
    return false;
  }
  decl->kindName = tok.spelling.str();
  decl->kindLoc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::LParen)) {
    error(tok.loc, "expected '(' after '" + decl->kindName + "'");
    return false;
  }
  if (!parseArgList(decl->args))
    return false;
  if (m.optimizer) {
    error(decl->loc, "model '" + m.name + "' has more than one 'optimizer'");
    diags.note(m.optimizer->loc, "previous 'optimizer' is here");
    return true;
  }
  m.optimizer = std::move(decl);
  return true;
}

bool Parser::parseArgList(std::vector<Argument> &args) {
  // The '(' is already consumed.
  if (consumeIf(TokenKind::RParen))
    return true;
  bool sawKeyword = false;
  while (true) {
    Argument arg;
    arg.loc = tok.loc;
    if (tok.is(TokenKind::Identifier) && peek().is(TokenKind::Equal)) {
      arg.key = tok.spelling.str();
      consume(); // key
      consume(); // '='
      sawKeyword = true;
    } else if (sawKeyword) {
      error(tok.loc, "positional argument follows keyword argument");
    }
    if (!parseArgValue(arg.value))
      return false;
    args.push_back(std::move(arg));
    if (consumeIf(TokenKind::RParen))
      return true;
    if (!consumeIf(TokenKind::Comma)) {
      error(tok.loc, "expected ',' or ')' in argument list");
      return false;
    }
  }
}

bool Parser::parseArgValue(ArgValue &v) {
  v.loc = tok.loc;
  bool negate = false;
  if (tok.is(TokenKind::Minus)) {
    negate = true;
    consume();
    if (tok.isNot(TokenKind::Integer) && tok.isNot(TokenKind::Float)) {
      error(tok.loc, "expected a number after '-'");
      return false;
    }
  }
  switch (tok.kind) {
  case TokenKind::Integer:
    v.kind = ArgValue::Kind::Int;
    if (!parseInteger(tok, v.intValue))
      return false;
    if (negate)
      v.intValue = -v.intValue;
    break;
  case TokenKind::Float:
    v.kind = ArgValue::Kind::Float;
    if (!parseFloat(tok, v.floatValue))
      return false;
    if (negate)
      v.floatValue = -v.floatValue;
    break;
  case TokenKind::KwTrue:
  case TokenKind::KwFalse:
    v.kind = ArgValue::Kind::Bool;
    v.boolValue = tok.is(TokenKind::KwTrue);
    break;
  case TokenKind::LBracket:
    return parseListValue(v);
  case TokenKind::String: {
    v.kind = ArgValue::Kind::String;
    if (tok.invalid)
      return false;
    size_t err;
    unescapeString(tok.spelling.drop_front().drop_back(), v.text, err);
    break;
  }
  default:
    if (tok.is(TokenKind::Identifier) || tok.isElemType()) {
      v.kind = ArgValue::Kind::Ident;
      v.text = tok.spelling.str();
      break;
    }
    error(tok.loc, "expected argument value");
    return false;
  }
  consume();
  return true;
}

//===----------------------------------------------------------------------===//
// Forward block
//===----------------------------------------------------------------------===//

bool Parser::parseForward(Model &m) {
  auto f = std::make_unique<ForwardBlock>();
  f->loc = tok.loc;
  consume(); // 'forward'
  bool braced = consumeIf(TokenKind::LBrace);
  if (!braced) {
    error(tok.loc, "expected '{' after 'forward'");
    // With a statement next, assume only the '{' is missing.
    if (tok.isNot(TokenKind::Identifier) && tok.isNot(TokenKind::KwReturn))
      return false;
  }
  bool reportedReturn = false;
  while (true) {
    if (tok.is(TokenKind::RBrace)) {
      consume();
      break;
    }
    if (tok.is(TokenKind::Eof) || isModelLevelKeyword()) {
      error(tok.loc, "expected '}' at end of 'forward' block");
      break;
    }
    if (f->ret && !reportedReturn) {
      error(f->ret->loc,
            "'return' must be the last statement in a 'forward' block");
      reportedReturn = true;
    }
    const char *before = tok.loc.getPointer();
    if (!parseForwardStmt(*f))
      syncForward();
    if (tok.loc.getPointer() == before && tok.isNot(TokenKind::Eof))
      consume(); // always make progress
  }
  if (m.forward) {
    error(f->loc, "model '" + m.name + "' has more than one 'forward' block");
    diags.note(m.forward->loc, "previous 'forward' block is here");
    return true;
  }
  m.forward = std::move(f);
  return true;
}

bool Parser::parseForwardStmt(ForwardBlock &f) {
  if (tok.is(TokenKind::KwReturn)) {
    auto ret = std::make_unique<ReturnStmt>();
    ret->loc = tok.loc;
    consume();
    if (tok.isNot(TokenKind::Identifier)) {
      error(tok.loc, "expected a name after 'return'");
      return false;
    }
    ret->name = tok.spelling.str();
    ret->nameLoc = tok.loc;
    consume();
    consumeIf(TokenKind::Semicolon);
    if (!f.ret)
      f.ret = std::move(ret);
    return true;
  }
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected an assignment or 'return' in 'forward' block");
    return false;
  }
  auto stmt = std::make_unique<AssignStmt>();
  stmt->name = tok.spelling.str();
  stmt->loc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::Equal)) {
    error(tok.loc, "expected '=' after '" + stmt->name + "'");
    return false;
  }
  stmt->value = parseExpr();
  if (!stmt->value)
    return false;
  consumeIf(TokenKind::Semicolon);
  f.stmts.push_back(std::move(stmt));
  return true;
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

namespace {
/// Decrements the parser's nesting counter on scope exit.
struct NestingGuard {
  unsigned &n;
  explicit NestingGuard(unsigned &n) : n(n) { ++n; }
  ~NestingGuard() { --n; }
};
} // namespace

bool Parser::enterNesting(SMLoc loc) {
  if (nesting < kMaxExprDepth)
    return true;
  error(loc, "expression is nested too deeply (the limit is " +
                 Twine(kMaxExprDepth) + ")");
  return false;
}

std::unique_ptr<Expr> Parser::makeBinary(SMLoc opLoc, BinaryOp op,
                                         std::unique_ptr<Expr> lhs,
                                         std::unique_ptr<Expr> rhs) {
  unsigned depth = 1 + std::max(lhs->depth, rhs->depth);
  if (depth > kMaxExprDepth) {
    error(opLoc, "expression is nested too deeply (the limit is " +
                     Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  auto e =
      std::make_unique<BinaryExpr>(opLoc, op, std::move(lhs), std::move(rhs));
  e->depth = depth;
  return e;
}

std::unique_ptr<Expr> Parser::parseExpr() {
  std::unique_ptr<Expr> lhs = parseTerm();
  while (lhs && tok.is(TokenKind::Plus)) {
    SMLoc opLoc = tok.loc;
    consume();
    std::unique_ptr<Expr> rhs = parseTerm();
    if (!rhs)
      return nullptr;
    lhs = makeBinary(opLoc, BinaryOp::Add, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

std::unique_ptr<Expr> Parser::parseTerm() {
  std::unique_ptr<Expr> lhs = parsePrimary();
  while (lhs && tok.is(TokenKind::At)) {
    SMLoc opLoc = tok.loc;
    consume();
    std::unique_ptr<Expr> rhs = parsePrimary();
    if (!rhs)
      return nullptr;
    lhs = makeBinary(opLoc, BinaryOp::MatMul, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

std::unique_ptr<Expr> Parser::parsePrimary() {
  switch (tok.kind) {
  case TokenKind::Integer:
  case TokenKind::Float: {
    double value = 0;
    if (!tok.invalid && tok.spelling.size() <= kMaxNumberLength)
      (void)tok.spelling.getAsDouble(value, /*AllowInexact=*/true);
    auto e = std::make_unique<NumberExpr>(tok.loc, tok.spelling.str(), value);
    consume();
    return e;
  }
  case TokenKind::Identifier:
    // `h =` followed by a line `g = ...`: the expression is missing.
    if (tok.atStartOfLine && peek().is(TokenKind::Equal))
      break;
    // A call's '(' must be on the callee's line: `h = a` followed by a line
    // `(b)` is not the call `a(b)`.
    if (peek().is(TokenKind::LParen) && !peek().atStartOfLine)
      return parseCall();
    {
      auto e = std::make_unique<IdentExpr>(tok.loc, tok.spelling.str());
      consume();
      return e;
    }
  case TokenKind::LParen: {
    if (!enterNesting(tok.loc))
      return nullptr;
    NestingGuard guard(nesting);
    consume();
    std::unique_ptr<Expr> e = parseExpr();
    if (!e)
      return nullptr;
    if (!consumeIf(TokenKind::RParen)) {
      error(tok.loc, "expected ')'");
      return nullptr;
    }
    return e;
  }
  default:
    break;
  }
  error(tok.loc, "expected expression");
  return nullptr;
}

std::unique_ptr<Expr> Parser::parseCall() {
  SMLoc loc = tok.loc;
  std::string callee = tok.spelling.str();
  consume(); // callee
  if (!enterNesting(tok.loc))
    return nullptr;
  NestingGuard guard(nesting);
  consume(); // '('
  std::vector<std::unique_ptr<Expr>> args;
  unsigned depth = 1;
  if (!consumeIf(TokenKind::RParen)) {
    while (true) {
      std::unique_ptr<Expr> arg = parseExpr();
      if (!arg)
        return nullptr;
      depth = std::max(depth, arg->depth + 1);
      args.push_back(std::move(arg));
      if (consumeIf(TokenKind::RParen))
        break;
      if (!consumeIf(TokenKind::Comma)) {
        error(tok.loc, "expected ',' or ')' in call to '" + callee + "'");
        return nullptr;
      }
    }
  }
  if (depth > kMaxExprDepth) {
    error(loc, "expression is nested too deeply (the limit is " +
                   Twine(kMaxExprDepth) + ")");
    return nullptr;
  }
  auto e = std::make_unique<CallExpr>(loc, std::move(callee), std::move(args));
  e->depth = depth;
  return e;
}
