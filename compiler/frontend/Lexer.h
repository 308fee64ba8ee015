//===- Lexer.h - Tokenizer of the sparsec DSL -------------------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Splits one llvm::SourceMgr buffer into tokens. Newlines are whitespace; a
// '#' starts a comment that runs to the end of the line. Invalid characters
// are reported and skipped (a run of them gives one error), so the parser
// never sees them. Malformed number and string literals are reported here and
// returned with Token::invalid set so the parser can stay silent about them.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_LEXER_H
#define SPARSEC_FRONTEND_LEXER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace sparsec {

class DiagEngine;

enum class TokenKind {
  Eof,
  Identifier,
  Integer, // 123
  Float,   // 0.9  1e-3  .5  1.
  String,  // "..."
  // Keywords.
  KwModel,
  KwInput,
  KwTarget,
  KwParam,
  KwForward,
  KwReturn,
  KwLoss,
  KwOptimizer,
  KwTrue,
  KwFalse,
  // Element-type keywords.
  KwF32,
  KwF64,
  KwF16,
  KwBF16,
  KwI8,
  KwI32,
  KwI64,
  // Punctuation.
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Equal,
  Plus,
  Minus,
  At,
  Semicolon,
  Star,  // '*' (fn kernels)
  Slash, // '/' (fn kernels)
  Arrow, // '->' (fn kernels)
};

/// A short description for messages and tests: "identifier", "'model'",
/// "'{'", "end of file", ...
llvm::StringRef tokenKindName(TokenKind kind);

struct Token {
  TokenKind kind = TokenKind::Eof;
  llvm::StringRef spelling; // the exact source text
  llvm::SMLoc loc;
  /// True when a newline separates this token from the previous one (or it
  /// is the first token of the buffer).
  bool atStartOfLine = false;
  /// True for a malformed literal that the lexer already reported.
  bool invalid = false;

  bool is(TokenKind k) const { return kind == k; }
  bool isNot(TokenKind k) const { return kind != k; }
  bool isKeyword() const {
    return kind >= TokenKind::KwModel && kind <= TokenKind::KwI64;
  }
  bool isElemType() const {
    return kind >= TokenKind::KwF32 && kind <= TokenKind::KwI64;
  }
};

class Lexer {
public:
  Lexer(llvm::SourceMgr &sm, unsigned bufferId, DiagEngine &diags);

  /// Returns the next token; Eof (repeatedly) at the end of the buffer.
  Token lex();

private:
  /// Skips whitespace and comments; returns true if a newline was skipped.
  bool skipWhitespaceAndComments();
  Token makeToken(TokenKind kind, const char *start, bool atStartOfLine);
  Token lexIdentifier(const char *start, bool atStartOfLine);
  Token lexNumber(const char *start, bool atStartOfLine);
  Token lexString(const char *start, bool atStartOfLine);
  void skipInvalidCharacters(const char *start);

  DiagEngine &diags;
  const char *bufStart;
  const char *bufEnd;
  const char *cur;
  bool first = true;
};

/// Decodes the contents of a string literal token (without the quotes).
/// Returns false if it holds an invalid escape; `err` then points at it.
bool unescapeString(llvm::StringRef body, std::string &out, size_t &err);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_LEXER_H
