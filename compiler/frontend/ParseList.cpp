//===- ParseList.cpp - Inline integer lists in argument lists -------------===//
//
// The list argument value of the parser: `[[o1, o2, ...], [i1, i2, ...]]`,
// a list of lists of (optionally negative) integers, each kept with its
// location so that Sema reports a bad entry where it is written (the
// inline form of a connectivity or mask file), or a flat list `[a, b]`
// (one row, `flat` set: masked_conv2d's [height, width] pairs).
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Parser.h"

using namespace sparsec;
using namespace sparsec::ast;

bool Parser::parseListValue(ArgValue &v) {
  v.kind = ArgValue::Kind::List;
  v.loc = tok.loc;
  consume(); // '['
  // A flat list: its integers, then the closing ']'.
  v.flat = tok.is(TokenKind::Integer) || tok.is(TokenKind::Minus);
  // Inner lists separated by commas, then the closing ']'.
  while (true) {
    if (!v.flat && tok.isNot(TokenKind::LBracket)) {
      error(tok.loc, "expected '[' to start a list of integers");
      return false;
    }
    if (!v.flat)
      consume();
    std::vector<IntEntry> row;
    while (tok.isNot(TokenKind::RBracket)) {
      bool negate = consumeIf(TokenKind::Minus);
      int64_t value;
      if (tok.isNot(TokenKind::Integer) || !parseInteger(tok, value)) {
        if (tok.isNot(TokenKind::Integer))
          error(tok.loc, "expected an integer in the list");
        return false;
      }
      row.push_back({negate ? -value : value, tok.loc});
      consume();
      if (!consumeIf(TokenKind::Comma) && tok.isNot(TokenKind::RBracket)) {
        error(tok.loc, "expected ',' or ']' in the list");
        return false;
      }
    }
    consume(); // inner ']'
    v.rows.push_back(std::move(row));
    if (v.flat || consumeIf(TokenKind::RBracket))
      return true;
    if (!consumeIf(TokenKind::Comma)) {
      error(tok.loc, "expected ',' or ']' after a list of integers");
      return false;
    }
  }
}
