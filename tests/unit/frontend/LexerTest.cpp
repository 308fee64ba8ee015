//===- LexerTest.cpp - Unit tests of the DSL lexer ------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "frontend/Lexer.h"
#include "frontend/Diagnostics.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <string>
#include <vector>

using namespace sparsec;

namespace {
struct Lexed {
  llvm::SourceMgr sm;
  std::string output;
  std::vector<Token> tokens; // including the final Eof
  unsigned numErrors = 0;

  std::string lineCol(size_t i) const {
    auto [line, col] = sm.getLineAndColumn(tokens[i].loc);
    return std::to_string(line) + ":" + std::to_string(col);
  }
  std::vector<TokenKind> kinds() const {
    std::vector<TokenKind> k;
    for (const Token &t : tokens)
      k.push_back(t.kind);
    return k;
  }
};

std::unique_ptr<Lexed> lex(llvm::StringRef src) {
  auto l = std::make_unique<Lexed>();
  unsigned id = l->sm.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(src, "lex.sdl"), llvm::SMLoc());
  llvm::raw_string_ostream os(l->output);
  DiagEngine diags(l->sm, os);
  Lexer lexer(l->sm, id, diags);
  for (unsigned i = 0; i < 10000; ++i) {
    l->tokens.push_back(lexer.lex());
    if (l->tokens.back().is(TokenKind::Eof))
      break;
  }
  l->numErrors = diags.getNumErrors();
  return l;
}
} // namespace

TEST(LexerTest, EmptyInput) {
  auto l = lex("");
  ASSERT_EQ(l->tokens.size(), 1u);
  EXPECT_TRUE(l->tokens[0].is(TokenKind::Eof));
  EXPECT_EQ(l->numErrors, 0u);
}

TEST(LexerTest, CommentsAndWhitespaceOnly) {
  auto l = lex("  # a comment\n\t\r\n# another\n");
  ASSERT_EQ(l->tokens.size(), 1u);
  EXPECT_EQ(l->numErrors, 0u);
}

TEST(LexerTest, KeywordsAndIdentifiers) {
  auto l = lex("model input target param forward return loss optimizer true "
               "false f32 f64 f16 bf16 i8 i32 i64 relu _x1 Model f32x");
  std::vector<TokenKind> expected = {
      TokenKind::KwModel,    TokenKind::KwInput,     TokenKind::KwTarget,
      TokenKind::KwParam,    TokenKind::KwForward,   TokenKind::KwReturn,
      TokenKind::KwLoss,     TokenKind::KwOptimizer, TokenKind::KwTrue,
      TokenKind::KwFalse,    TokenKind::KwF32,       TokenKind::KwF64,
      TokenKind::KwF16,      TokenKind::KwBF16,      TokenKind::KwI8,
      TokenKind::KwI32,      TokenKind::KwI64,       TokenKind::Identifier,
      TokenKind::Identifier, TokenKind::Identifier,  TokenKind::Identifier,
      TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
  EXPECT_EQ(l->tokens[18].spelling, "_x1");
  EXPECT_TRUE(l->tokens[10].isElemType());
  EXPECT_TRUE(l->tokens[0].isKeyword());
  EXPECT_FALSE(l->tokens[17].isKeyword());
}

TEST(LexerTest, Punctuation) {
  auto l = lex("{ } ( ) [ ] , : = + - @ ;");
  std::vector<TokenKind> expected = {
      TokenKind::LBrace,    TokenKind::RBrace,   TokenKind::LParen,
      TokenKind::RParen,    TokenKind::LBracket, TokenKind::RBracket,
      TokenKind::Comma,     TokenKind::Colon,    TokenKind::Equal,
      TokenKind::Plus,      TokenKind::Minus,    TokenKind::At,
      TokenKind::Semicolon, TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
}

TEST(LexerTest, Numbers) {
  auto l = lex("1 0.9 1e-3 .5 1. 2E+4 784");
  std::vector<TokenKind> expected = {TokenKind::Integer, TokenKind::Float,
                                     TokenKind::Float,   TokenKind::Float,
                                     TokenKind::Float,   TokenKind::Float,
                                     TokenKind::Integer, TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
  EXPECT_EQ(l->tokens[2].spelling, "1e-3");
  EXPECT_EQ(l->tokens[3].spelling, ".5");
  EXPECT_EQ(l->numErrors, 0u);
}

TEST(LexerTest, NegativeNumberIsMinusThenNumber) {
  auto l = lex("-0.5");
  std::vector<TokenKind> expected = {TokenKind::Minus, TokenKind::Float,
                                     TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
}

TEST(LexerTest, InvalidNumbers) {
  auto l = lex("12ab 1e 1.2.3");
  EXPECT_EQ(l->numErrors, 3u);
  ASSERT_EQ(l->tokens.size(), 4u);
  EXPECT_TRUE(l->tokens[0].invalid);
  EXPECT_EQ(l->tokens[0].spelling, "12ab");
  EXPECT_TRUE(l->tokens[1].invalid);
  EXPECT_TRUE(l->tokens[2].invalid);
  EXPECT_NE(l->output.find("lex.sdl:1:1: error: invalid number literal"),
            std::string::npos);
}

TEST(LexerTest, Strings) {
  auto l = lex(R"("abc" "a\"b\\c\n" "")");
  ASSERT_EQ(l->tokens.size(), 4u);
  EXPECT_TRUE(l->tokens[0].is(TokenKind::String));
  EXPECT_EQ(l->tokens[1].spelling, R"("a\"b\\c\n")");
  EXPECT_EQ(l->numErrors, 0u);
  std::string value;
  size_t err;
  EXPECT_TRUE(unescapeString(R"(a\"b\\c\n)", value, err));
  EXPECT_EQ(value, "a\"b\\c\n");
}

TEST(LexerTest, UnterminatedString) {
  auto l = lex("\"abc\nx");
  EXPECT_EQ(l->numErrors, 1u);
  EXPECT_NE(l->output.find("lex.sdl:1:1: error: unterminated string literal"),
            std::string::npos);
  ASSERT_EQ(l->tokens.size(), 3u);
  EXPECT_TRUE(l->tokens[0].invalid);
  EXPECT_TRUE(l->tokens[1].is(TokenKind::Identifier));
}

TEST(LexerTest, InvalidEscape) {
  auto l = lex(R"("a\qb")");
  EXPECT_EQ(l->numErrors, 1u);
  EXPECT_NE(
      l->output.find(
          "lex.sdl:1:3: error: invalid escape sequence in string literal"),
      std::string::npos);
}

TEST(LexerTest, Locations) {
  auto l = lex("model M {\n  input x : f32[B, 784]\n}");
  EXPECT_EQ(l->lineCol(0), "1:1");
  EXPECT_EQ(l->lineCol(1), "1:7");
  EXPECT_EQ(l->lineCol(3), "2:3");   // input
  EXPECT_EQ(l->lineCol(4), "2:9");   // x
  EXPECT_EQ(l->lineCol(10), "2:20"); // 784
  EXPECT_EQ(l->lineCol(12), "3:1");  // }
}

TEST(LexerTest, AtStartOfLine) {
  auto l = lex("a b # c\n d\n\ne");
  EXPECT_TRUE(l->tokens[0].atStartOfLine);
  EXPECT_FALSE(l->tokens[1].atStartOfLine);
  EXPECT_TRUE(l->tokens[2].atStartOfLine);
  EXPECT_TRUE(l->tokens[3].atStartOfLine);
}

TEST(LexerTest, CommentRunsToEndOfLine) {
  auto l = lex("a # b c { } \n d");
  std::vector<TokenKind> expected = {TokenKind::Identifier,
                                     TokenKind::Identifier, TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
}

TEST(LexerTest, UnexpectedCharacter) {
  auto l = lex("a $ b");
  EXPECT_EQ(l->numErrors, 1u);
  EXPECT_NE(l->output.find("lex.sdl:1:3: error: unexpected character '$'"),
            std::string::npos);
  std::vector<TokenKind> expected = {TokenKind::Identifier,
                                     TokenKind::Identifier, TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
}

TEST(LexerTest, RunOfInvalidBytesIsOneError) {
  auto l = lex(llvm::StringRef("a \xff\xfe\x01 b", 7));
  EXPECT_EQ(l->numErrors, 1u);
  EXPECT_NE(l->output.find("error: invalid byte 0xFF in input"),
            std::string::npos);
  EXPECT_EQ(l->tokens.size(), 3u);
}

TEST(LexerTest, NulBytes) {
  std::string src("a\0b\0", 4);
  auto l = lex(src);
  EXPECT_EQ(l->numErrors, 2u);
  EXPECT_NE(l->output.find("error: invalid byte 0x00 in input"),
            std::string::npos);
  std::vector<TokenKind> expected = {TokenKind::Identifier,
                                     TokenKind::Identifier, TokenKind::Eof};
  EXPECT_EQ(l->kinds(), expected);
}

TEST(LexerTest, NulInCommentIsIgnored) {
  std::string src("# \0 \xff\na", 7);
  auto l = lex(src);
  EXPECT_EQ(l->numErrors, 0u);
  EXPECT_EQ(l->tokens.size(), 2u);
}

TEST(LexerTest, ByteOrderMarkIsSkipped) {
  auto l = lex("\xEF\xBB\xBFmodel");
  EXPECT_EQ(l->numErrors, 0u);
  EXPECT_TRUE(l->tokens[0].is(TokenKind::KwModel));
}

TEST(LexerTest, EofRepeats) {
  auto l = lex("x");
  ASSERT_EQ(l->tokens.size(), 2u);
  EXPECT_TRUE(l->tokens[1].is(TokenKind::Eof));
}

TEST(LexerTest, TokenKindNames) {
  EXPECT_EQ(tokenKindName(TokenKind::Eof), "end of file");
  EXPECT_EQ(tokenKindName(TokenKind::LBrace), "'{'");
  EXPECT_EQ(tokenKindName(TokenKind::KwModel), "'model'");
}
