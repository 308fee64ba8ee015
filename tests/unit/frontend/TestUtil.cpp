//===- TestUtil.cpp - Helpers for the front-end unit tests ----------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "frontend/Parser.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace sparsec;
using namespace sparsec::test;

std::vector<std::string> Compiled::errors() const {
  std::vector<std::string> result;
  llvm::SmallVector<llvm::StringRef> lines;
  llvm::StringRef(output).split(lines, '\n');
  for (llvm::StringRef line : lines) {
    if (!line.contains(": error: "))
      continue;
    line.consume_front("test.sdl:");
    result.push_back(line.str());
  }
  return result;
}

std::string Compiled::lineCol(llvm::SMLoc loc) const {
  auto [line, col] = sm.getLineAndColumn(loc);
  return std::to_string(line) + ":" + std::to_string(col);
}

std::string Compiled::dump() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (module)
    dumpAST(*module, os);
  return s;
}

static std::unique_ptr<Compiled> load(llvm::StringRef src) {
  auto c = std::make_unique<Compiled>();
  c->bufferId = c->sm.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(src, "test.sdl"), llvm::SMLoc());
  return c;
}

std::unique_ptr<Compiled> test::compile(llvm::StringRef src) {
  std::unique_ptr<Compiled> c = load(src);
  llvm::raw_string_ostream os(c->output);
  DiagEngine diags(c->sm, os);
  diags.setErrorLimit(0);
  c->module = parseAndCheck(c->sm, c->bufferId, diags);
  c->numErrors = diags.getNumErrors();
  return c;
}

std::unique_ptr<Compiled> test::parseOnly(llvm::StringRef src) {
  std::unique_ptr<Compiled> c = load(src);
  llvm::raw_string_ostream os(c->output);
  DiagEngine diags(c->sm, os);
  diags.setErrorLimit(0);
  Parser parser(c->sm, c->bufferId, diags);
  c->module = parser.parseModule();
  c->numErrors = diags.getNumErrors();
  return c;
}

std::string test::model(llvm::StringRef decls, llvm::StringRef forward,
                        llvm::StringRef loss, llvm::StringRef opt) {
  std::string s = "model M {\n";
  s += decls.empty() ? "  input x : f32[B, 4]\n  target y : i64[B]\n"
                       "  param fc : linear(4, 3)\n"
                     : decls.str();
  s += "  forward {\n";
  s += forward.empty() ? "    h = fc(x)\n" : forward.str();
  s += "  }\n";
  s += loss.empty() ? "  loss = cross_entropy(h, y)\n" : loss.str();
  s += opt.empty() ? "  optimizer = sgd(lr = 0.1)\n" : opt.str();
  s += "}\n";
  return s;
}
