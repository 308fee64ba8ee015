//===- ParseTypes.cpp - Parser of input declarations and tensor types -----===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The Parser members for `input`/`target` declarations and tensor types
// (`f32[B, 784] @csr`): element type, dimensions (integers or symbols) and
// the sparse encoding (`@coo(k)`, `@csr`, `@csc`, `@bsr(r, c)`, `@nm(n, m)`).
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Parser.h"

#include "llvm/ADT/StringSwitch.h"

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

//===----------------------------------------------------------------------===//
// Inputs and types
//===----------------------------------------------------------------------===//

bool Parser::parseInputDecl(Model &m) {
  auto decl = std::make_unique<InputDecl>();
  decl->isTarget = tok.is(TokenKind::KwTarget);
  consume(); // 'input' or 'target'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, decl->isTarget ? "expected target name after 'target'"
                                  : "expected input name after 'input'");
    return false;
  }
  decl->name = tok.spelling.str();
  decl->loc = tok.loc;
  consume();
  if (!consumeIf(TokenKind::Colon)) {
    error(tok.loc, "expected ':' after '" + decl->name + "'");
    return false;
  }
  if (!parseTypeSpec(decl->spec))
    return false;
  m.inputs.push_back(std::move(decl));
  return true;
}

bool Parser::parseTypeSpec(TypeSpec &spec) {
  if (!tok.isElemType()) {
    error(tok.loc,
          "expected element type (f32, f64, f16, bf16, i8, i32 or i64)");
    return false;
  }
  spec.loc = tok.loc;
  spec.elem = elemTypeFromName(tok.spelling);
  consume();
  if (!consumeIf(TokenKind::LBracket)) {
    error(tok.loc, "expected '[' after element type");
    return false;
  }
  if (!consumeIf(TokenKind::RBracket)) {
    while (true) {
      DimSpec d;
      d.loc = tok.loc;
      if (tok.is(TokenKind::Integer)) {
        if (!parseInteger(tok, d.value))
          return false;
      } else if (tok.is(TokenKind::Identifier)) {
        d.isSymbolic = true;
        d.symbol = tok.spelling.str();
      } else {
        error(tok.loc, "expected dimension (an integer or a name)");
        return false;
      }
      consume();
      spec.dims.push_back(std::move(d));
      if (consumeIf(TokenKind::RBracket))
        break;
      if (!consumeIf(TokenKind::Comma)) {
        error(tok.loc, "expected ',' or ']' in dimension list");
        return false;
      }
    }
  }
  if (tok.is(TokenKind::At))
    return parseEncoding(spec.encoding);
  return true;
}

bool Parser::parseEncoding(Encoding &enc) {
  enc.loc = tok.loc;
  consume(); // '@'
  if (tok.isNot(TokenKind::Identifier)) {
    error(tok.loc, "expected encoding name after '@'");
    return false;
  }
  StringRef name = tok.spelling;
  enc.kind = llvm::StringSwitch<EncodingKind>(name)
                 .Case("coo", EncodingKind::COO)
                 .Case("csr", EncodingKind::CSR)
                 .Case("csc", EncodingKind::CSC)
                 .Case("bsr", EncodingKind::BSR)
                 .Case("nm", EncodingKind::NM)
                 .Default(EncodingKind::None);
  if (enc.kind == EncodingKind::None) {
    error(tok.loc, "unknown sparse encoding '" + name +
                       "'; expected coo, csr, csc, bsr or nm");
    return false;
  }
  SMLoc nameLoc = tok.loc;
  consume();
  if (consumeIf(TokenKind::LParen)) {
    while (true) {
      int64_t v;
      if (tok.isNot(TokenKind::Integer)) {
        error(tok.loc, "expected integer encoding parameter");
        return false;
      }
      if (!parseInteger(tok, v))
        return false;
      consume();
      enc.params.push_back(v);
      if (consumeIf(TokenKind::RParen))
        break;
      if (!consumeIf(TokenKind::Comma)) {
        error(tok.loc, "expected ',' or ')' in encoding parameters");
        return false;
      }
    }
  }
  size_t n = enc.params.size();
  switch (enc.kind) {
  case EncodingKind::COO:
    if (n > 1) {
      error(nameLoc,
            "encoding 'coo' takes at most 1 parameter, got " + Twine(n));
      return false;
    }
    break;
  case EncodingKind::CSR:
  case EncodingKind::CSC:
    if (n != 0) {
      error(nameLoc, "encoding '" + encodingName(enc.kind) +
                         "' takes no parameters, got " + Twine(n));
      return false;
    }
    break;
  case EncodingKind::BSR:
  case EncodingKind::NM:
    if (n != 2) {
      error(nameLoc, "encoding '" + encodingName(enc.kind) +
                         "' takes 2 parameters, got " + Twine(n));
      return false;
    }
    break;
  case EncodingKind::None:
    break;
  }
  return true;
}
