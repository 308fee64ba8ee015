//===- Lexer.cpp - Tokenizer of the sparsec DSL ---------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "Lexer.h"
#include "Diagnostics.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/SourceMgr.h"

using namespace sparsec;
using llvm::SMLoc;
using llvm::StringRef;

StringRef sparsec::tokenKindName(TokenKind kind) {
  switch (kind) {
  case TokenKind::Eof:
    return "end of file";
  case TokenKind::Identifier:
    return "identifier";
  case TokenKind::Integer:
    return "integer";
  case TokenKind::Float:
    return "number";
  case TokenKind::String:
    return "string";
  case TokenKind::KwModel:
    return "'model'";
  case TokenKind::KwInput:
    return "'input'";
  case TokenKind::KwTarget:
    return "'target'";
  case TokenKind::KwParam:
    return "'param'";
  case TokenKind::KwForward:
    return "'forward'";
  case TokenKind::KwReturn:
    return "'return'";
  case TokenKind::KwLoss:
    return "'loss'";
  case TokenKind::KwOptimizer:
    return "'optimizer'";
  case TokenKind::KwTrue:
    return "'true'";
  case TokenKind::KwFalse:
    return "'false'";
  case TokenKind::KwF32:
    return "'f32'";
  case TokenKind::KwF64:
    return "'f64'";
  case TokenKind::KwF16:
    return "'f16'";
  case TokenKind::KwBF16:
    return "'bf16'";
  case TokenKind::KwI8:
    return "'i8'";
  case TokenKind::KwI32:
    return "'i32'";
  case TokenKind::KwI64:
    return "'i64'";
  case TokenKind::LBrace:
    return "'{'";
  case TokenKind::RBrace:
    return "'}'";
  case TokenKind::LParen:
    return "'('";
  case TokenKind::RParen:
    return "')'";
  case TokenKind::LBracket:
    return "'['";
  case TokenKind::RBracket:
    return "']'";
  case TokenKind::Comma:
    return "','";
  case TokenKind::Colon:
    return "':'";
  case TokenKind::Equal:
    return "'='";
  case TokenKind::Plus:
    return "'+'";
  case TokenKind::Minus:
    return "'-'";
  case TokenKind::At:
    return "'@'";
  case TokenKind::Semicolon:
    return "';'";
  case TokenKind::Star:
    return "'*'";
  case TokenKind::Slash:
    return "'/'";
  case TokenKind::Arrow:
    return "'->'";
  }
  return "token";
}

static bool isIdentStart(char c) { return llvm::isAlpha(c) || c == '_'; }
static bool isIdentChar(char c) { return llvm::isAlnum(c) || c == '_'; }
static bool isWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}
static bool isPunctuation(char c) {
  return StringRef("{}()[],:=+-@;*/").contains(c);
}

Lexer::Lexer(llvm::SourceMgr &sm, unsigned bufferId, DiagEngine &diags)
    : diags(diags) {
  const llvm::MemoryBuffer *buf = sm.getMemoryBuffer(bufferId);
  bufStart = buf->getBufferStart();
  bufEnd = buf->getBufferEnd();
  cur = bufStart;
  // Skip a UTF-8 byte order mark.
  if (StringRef(bufStart, bufEnd - bufStart).starts_with("\xEF\xBB\xBF"))
    cur += 3;
}

bool Lexer::skipWhitespaceAndComments() {
  bool sawNewline = false;
  while (cur != bufEnd) {
    char c = *cur;
    if (c == '\n') {
      sawNewline = true;
      ++cur;
    } else if (isWhitespace(c)) {
      ++cur;
    } else if (c == '#') {
      while (cur != bufEnd && *cur != '\n')
        ++cur;
    } else {
      break;
    }
  }
  return sawNewline;
}

Token Lexer::makeToken(TokenKind kind, const char *start, bool atStartOfLine) {
  Token tok;
  tok.kind = kind;
  tok.spelling = StringRef(start, cur - start);
  tok.loc = SMLoc::getFromPointer(start);
  tok.atStartOfLine = atStartOfLine;
  return tok;
}

Token Lexer::lex() {
  bool atStartOfLine = first;
  first = false;
  while (true) {
    if (skipWhitespaceAndComments())
      atStartOfLine = true;
    if (cur == bufEnd)
      return makeToken(TokenKind::Eof, cur, atStartOfLine);

    const char *start = cur;
    char c = *cur;
    if (isIdentStart(c))
      return lexIdentifier(start, atStartOfLine);
    if (llvm::isDigit(c) ||
        (c == '.' && cur + 1 != bufEnd && llvm::isDigit(cur[1])))
      return lexNumber(start, atStartOfLine);
    if (c == '"')
      return lexString(start, atStartOfLine);

    TokenKind kind;
    switch (c) {
    case '{':
      kind = TokenKind::LBrace;
      break;
    case '}':
      kind = TokenKind::RBrace;
      break;
    case '(':
      kind = TokenKind::LParen;
      break;
    case ')':
      kind = TokenKind::RParen;
      break;
    case '[':
      kind = TokenKind::LBracket;
      break;
    case ']':
      kind = TokenKind::RBracket;
      break;
    case ',':
      kind = TokenKind::Comma;
      break;
    case ':':
      kind = TokenKind::Colon;
      break;
    case '=':
      kind = TokenKind::Equal;
      break;
    case '+':
      kind = TokenKind::Plus;
      break;
    case '-':
      kind = TokenKind::Minus;
      if (cur + 1 != bufEnd && cur[1] == '>') {
        cur += 2;
        return makeToken(TokenKind::Arrow, start, atStartOfLine);
      }
      break;
    case '*':
      kind = TokenKind::Star;
      break;
    case '/':
      kind = TokenKind::Slash;
      break;
    case '@':
      kind = TokenKind::At;
      break;
    case ';':
      kind = TokenKind::Semicolon;
      break;
    default:
      // Not the start of any token: report the whole run of such characters
      // once and go on with the next token.
      skipInvalidCharacters(start);
      continue;
    }
    ++cur;
    return makeToken(kind, start, atStartOfLine);
  }
}

void Lexer::skipInvalidCharacters(const char *start) {
  unsigned char c = static_cast<unsigned char>(*start);
  if (c > 0x20 && c < 0x7f)
    diags.error(SMLoc::getFromPointer(start),
                "unexpected character '" + llvm::Twine(char(c)) + "'");
  else
    diags.error(SMLoc::getFromPointer(start),
                "invalid byte 0x" + llvm::Twine(llvm::hexdigit(c >> 4)) +
                    llvm::Twine(llvm::hexdigit(c & 15)) + " in input");
  ++cur;
  while (cur != bufEnd) {
    char d = *cur;
    if (isWhitespace(d) || d == '#' || d == '"' || d == '.' || isIdentChar(d) ||
        isPunctuation(d))
      break;
    ++cur;
  }
}

Token Lexer::lexIdentifier(const char *start, bool atStartOfLine) {
  while (cur != bufEnd && isIdentChar(*cur))
    ++cur;
  StringRef text(start, cur - start);
  TokenKind kind = llvm::StringSwitch<TokenKind>(text)
                       .Case("model", TokenKind::KwModel)
                       .Case("input", TokenKind::KwInput)
                       .Case("target", TokenKind::KwTarget)
                       .Case("param", TokenKind::KwParam)
                       .Case("forward", TokenKind::KwForward)
                       .Case("return", TokenKind::KwReturn)
                       .Case("loss", TokenKind::KwLoss)
                       .Case("optimizer", TokenKind::KwOptimizer)
                       .Case("true", TokenKind::KwTrue)
                       .Case("false", TokenKind::KwFalse)
                       .Case("f32", TokenKind::KwF32)
                       .Case("f64", TokenKind::KwF64)
                       .Case("f16", TokenKind::KwF16)
                       .Case("bf16", TokenKind::KwBF16)
                       .Case("i8", TokenKind::KwI8)
                       .Case("i32", TokenKind::KwI32)
                       .Case("i64", TokenKind::KwI64)
                       .Default(TokenKind::Identifier);
  return makeToken(kind, start, atStartOfLine);
}

Token Lexer::lexNumber(const char *start, bool atStartOfLine) {
  auto digits = [&] {
    while (cur != bufEnd && llvm::isDigit(*cur))
      ++cur;
  };
  bool isFloat = false;
  bool valid = true;
  digits();
  if (cur != bufEnd && *cur == '.') {
    isFloat = true;
    ++cur;
    digits();
  }
  if (cur != bufEnd && (*cur == 'e' || *cur == 'E')) {
    isFloat = true;
    ++cur;
    if (cur != bufEnd && (*cur == '+' || *cur == '-'))
      ++cur;
    if (cur == bufEnd || !llvm::isDigit(*cur))
      valid = false;
    digits();
  }
  // A number must not run into letters, digits or dots: `12ab`, `1.2.3`.
  if (cur != bufEnd && (isIdentChar(*cur) || *cur == '.')) {
    valid = false;
    while (cur != bufEnd && (isIdentChar(*cur) || *cur == '.'))
      ++cur;
  }
  Token tok = makeToken(isFloat ? TokenKind::Float : TokenKind::Integer, start,
                        atStartOfLine);
  if (!valid) {
    diags.error(tok.loc, "invalid number literal");
    tok.invalid = true;
  }
  return tok;
}

Token Lexer::lexString(const char *start, bool atStartOfLine) {
  ++cur; // opening quote
  bool terminated = false;
  while (cur != bufEnd && *cur != '\n' && *cur != '\r') {
    if (*cur == '"') {
      ++cur;
      terminated = true;
      break;
    }
    if (*cur == '\\' && cur + 1 != bufEnd && cur[1] != '\n' && cur[1] != '\r')
      ++cur;
    ++cur;
  }
  Token tok = makeToken(TokenKind::String, start, atStartOfLine);
  if (!terminated) {
    diags.error(tok.loc, "unterminated string literal");
    tok.invalid = true;
    return tok;
  }
  std::string value;
  size_t err = 0;
  if (!unescapeString(tok.spelling.drop_front().drop_back(), value, err)) {
    diags.error(SMLoc::getFromPointer(start + 1 + err),
                "invalid escape sequence in string literal");
    tok.invalid = true;
  }
  return tok;
}

bool sparsec::unescapeString(StringRef body, std::string &out, size_t &err) {
  out.clear();
  for (size_t i = 0, e = body.size(); i != e; ++i) {
    char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i + 1 == e) {
      err = i;
      return false;
    }
    switch (body[++i]) {
    case '\\':
      out += '\\';
      break;
    case '"':
      out += '"';
      break;
    case 'n':
      out += '\n';
      break;
    case 't':
      out += '\t';
      break;
    default:
      err = i - 1;
      return false;
    }
  }
  return true;
}
