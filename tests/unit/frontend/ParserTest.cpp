//===- ParserTest.cpp - Unit tests of the DSL parser ----------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

using namespace sparsec;
using namespace sparsec::ast;
using namespace sparsec::test;

static const char *const kFashion = R"(# line comments start with '#'
model FashionMLP {
  input  x : f32[B, 784]
  target y : i64[B]
  param fc1 : sparse_linear(784, 2000, sparsity = 0.9)
  param fc2 : linear(2000, 10)
  forward {
    h = relu(fc1(x))
    logits = fc2(h)
    return logits
  }
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1, momentum = 0.9)
}
)";

TEST(ParserTest, FullModel) {
  auto c = parseOnly(kFashion);
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  ASSERT_EQ(c->module->models.size(), 1u);
  const Model &m = *c->module->models[0];
  EXPECT_EQ(m.name, "FashionMLP");
  EXPECT_EQ(c->lineCol(m.loc), "2:7");
  EXPECT_FALSE(m.hasSyntaxErrors);

  ASSERT_EQ(m.inputs.size(), 2u);
  EXPECT_EQ(m.inputs[0]->name, "x");
  EXPECT_FALSE(m.inputs[0]->isTarget);
  EXPECT_EQ(m.inputs[0]->spec.elem, ElemType::F32);
  ASSERT_EQ(m.inputs[0]->spec.dims.size(), 2u);
  EXPECT_TRUE(m.inputs[0]->spec.dims[0].isSymbolic);
  EXPECT_EQ(m.inputs[0]->spec.dims[0].symbol, "B");
  EXPECT_EQ(m.inputs[0]->spec.dims[1].value, 784);
  EXPECT_TRUE(m.inputs[1]->isTarget);
  EXPECT_EQ(m.inputs[1]->spec.elem, ElemType::I64);

  ASSERT_EQ(m.params.size(), 2u);
  const ParamDecl &fc1 = *m.params[0];
  EXPECT_EQ(fc1.kindName, "sparse_linear");
  ASSERT_EQ(fc1.args.size(), 3u);
  EXPECT_FALSE(fc1.args[0].isKeyword());
  EXPECT_EQ(fc1.args[0].value.intValue, 784);
  EXPECT_EQ(fc1.args[2].key, "sparsity");
  EXPECT_EQ(fc1.args[2].value.kind, ArgValue::Kind::Float);
  EXPECT_DOUBLE_EQ(fc1.args[2].value.floatValue, 0.9);

  ASSERT_TRUE(m.forward);
  ASSERT_EQ(m.forward->stmts.size(), 2u);
  const AssignStmt &h = *m.forward->stmts[0];
  EXPECT_EQ(h.name, "h");
  const auto *relu = llvm::dyn_cast<CallExpr>(h.value.get());
  ASSERT_TRUE(relu);
  EXPECT_EQ(relu->callee, "relu");
  ASSERT_EQ(relu->args.size(), 1u);
  const auto *apply = llvm::dyn_cast<CallExpr>(relu->args[0].get());
  ASSERT_TRUE(apply);
  EXPECT_EQ(apply->callee, "fc1");
  EXPECT_EQ(c->lineCol(apply->getLoc()), "8:14");
  ASSERT_TRUE(m.forward->ret);
  EXPECT_EQ(m.forward->ret->name, "logits");

  ASSERT_TRUE(m.loss);
  EXPECT_EQ(m.loss->kindName, "cross_entropy");
  ASSERT_EQ(m.loss->args.size(), 2u);
  EXPECT_EQ(m.loss->args[0].value.text, "logits");
  ASSERT_TRUE(m.optimizer);
  EXPECT_EQ(m.optimizer->kindName, "sgd");
  EXPECT_EQ(m.optimizer->args.size(), 2u);
}

TEST(ParserTest, MatMulBindsTighterThanAdd) {
  auto c = parseOnly("model M { forward { h = a + b @ w + c } }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const Expr *e = c->module->models[0]->forward->stmts[0]->value.get();
  // ((a + (b @ w)) + c)
  const auto *outer = llvm::dyn_cast<BinaryExpr>(e);
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer->op, BinaryOp::Add);
  EXPECT_TRUE(llvm::isa<IdentExpr>(outer->rhs.get()));
  const auto *inner = llvm::dyn_cast<BinaryExpr>(outer->lhs.get());
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->op, BinaryOp::Add);
  const auto *mm = llvm::dyn_cast<BinaryExpr>(inner->rhs.get());
  ASSERT_TRUE(mm);
  EXPECT_EQ(mm->op, BinaryOp::MatMul);
  EXPECT_EQ(outer->depth, 4u);
}

TEST(ParserTest, ParenthesesAndLeftAssociativity) {
  auto c = parseOnly("model M { forward { h = a @ (b @ c) @ d } }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const auto *e = llvm::dyn_cast<BinaryExpr>(
      c->module->models[0]->forward->stmts[0]->value.get());
  ASSERT_TRUE(e);
  EXPECT_TRUE(llvm::isa<IdentExpr>(e->rhs.get())); // ... @ d
  const auto *l = llvm::dyn_cast<BinaryExpr>(e->lhs.get());
  ASSERT_TRUE(l);
  EXPECT_TRUE(llvm::isa<BinaryExpr>(l->rhs.get())); // (b @ c)
}

TEST(ParserTest, CallsWithSeveralArguments) {
  auto c = parseOnly("model M { forward { h = concat(a, add(b, c), d) } }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const auto *call = llvm::dyn_cast<CallExpr>(
      c->module->models[0]->forward->stmts[0]->value.get());
  ASSERT_TRUE(call);
  EXPECT_EQ(call->args.size(), 3u);
}

TEST(ParserTest, SemicolonsAndNewlinesAreOptional) {
  auto c = parseOnly("model M { input x : f32[B, 4]; target y : i64[B];"
                     " param p : linear(4, 2); forward { h = p(x); g = h;"
                     " return g; }; loss = mse(g, y); optimizer = sgd(lr=1);"
                     " }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const Model &m = *c->module->models[0];
  EXPECT_EQ(m.inputs.size(), 2u);
  EXPECT_EQ(m.forward->stmts.size(), 2u);
  EXPECT_TRUE(m.forward->ret);
}

TEST(ParserTest, SeveralModels) {
  auto c = parseOnly("model A { }\nmodel B { }\n");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  ASSERT_EQ(c->module->models.size(), 2u);
  EXPECT_EQ(c->module->models[1]->name, "B");
}

TEST(ParserTest, Encodings) {
  auto c = parseOnly("model M { input a : f32[B, 4] @coo input b : f32[B, 4] "
                     "@coo(1) input c : f32[B, 4] @csr input d : f32[B, 4] "
                     "@csc input e : f32[B, 4] @bsr(2, 2) input f : "
                     "f32[B, 4] @nm(2, 4) }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const Model &m = *c->module->models[0];
  ASSERT_EQ(m.inputs.size(), 6u);
  EXPECT_EQ(m.inputs[0]->spec.encoding.kind, EncodingKind::COO);
  EXPECT_EQ(m.inputs[1]->spec.encoding.params, std::vector<int64_t>{1});
  EXPECT_EQ(m.inputs[2]->spec.encoding.kind, EncodingKind::CSR);
  EXPECT_EQ(m.inputs[3]->spec.encoding.kind, EncodingKind::CSC);
  EXPECT_EQ(m.inputs[4]->spec.encoding.kind, EncodingKind::BSR);
  EXPECT_EQ(m.inputs[5]->spec.encoding.params, (std::vector<int64_t>{2, 4}));
}

TEST(ParserTest, ArgumentValues) {
  auto c = parseOnly("model M { param p : k(1, -2, 0.5, -1e-3, true, false, "
                     "normal, f32, \"s\\n\", key = 3) }");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const auto &args = c->module->models[0]->params[0]->args;
  ASSERT_EQ(args.size(), 10u);
  EXPECT_EQ(args[1].value.intValue, -2);
  EXPECT_DOUBLE_EQ(args[3].value.floatValue, -1e-3);
  EXPECT_EQ(args[4].value.kind, ArgValue::Kind::Bool);
  EXPECT_TRUE(args[4].value.boolValue);
  EXPECT_FALSE(args[5].value.boolValue);
  EXPECT_EQ(args[6].value.kind, ArgValue::Kind::Ident);
  EXPECT_EQ(args[7].value.text, "f32");
  EXPECT_EQ(args[8].value.kind, ArgValue::Kind::String);
  EXPECT_EQ(args[8].value.text, "s\n");
  EXPECT_EQ(args[9].key, "key");
}

TEST(ParserTest, EmptyFile) {
  auto c = parseOnly("");
  EXPECT_EQ(c->errors(),
            std::vector<std::string>{"1:1: error: expected 'model'"});
}

TEST(ParserTest, RecoversAtStatementBoundaries) {
  auto c = parseOnly(R"(model M {
  input x : f32[B 784]
  param fc1 : linear(784, 10
  param fc2 : linear(10, 10)
  forward {
    h = relu(fc1(x)
    g = fc2(h)
    k = + h
    ok = relu(g)
  }
  optimizer sgd(lr = 1)
}
)");
  std::vector<std::string> expected = {
      "2:19: error: expected ',' or ']' in dimension list",
      "4:3: error: expected ',' or ')' in argument list",
      "7:5: error: expected ',' or ')' in call to 'relu'",
      "8:9: error: expected expression",
      "11:13: error: expected '=' after 'optimizer'",
  };
  EXPECT_EQ(c->errors(), expected);
  const Model &m = *c->module->models[0];
  EXPECT_TRUE(m.hasSyntaxErrors);
  // fc2 and the good statements survive.
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0]->name, "fc2");
  ASSERT_EQ(m.forward->stmts.size(), 2u);
  EXPECT_EQ(m.forward->stmts[0]->name, "g");
  EXPECT_EQ(m.forward->stmts[1]->name, "ok");
}

TEST(ParserTest, MissingExpressionBeforeNextStatement) {
  auto c = parseOnly("model M {\n  forward {\n    h =\n    g = x\n  }\n}\n");
  EXPECT_EQ(c->errors(),
            std::vector<std::string>{"4:5: error: expected expression"});
  EXPECT_EQ(c->module->models[0]->forward->stmts.size(), 1u);
}

TEST(ParserTest, RecoversAcrossModels) {
  auto c = parseOnly("model A {\n  input x f32[B]\n}\njunk\nmodel B {\n"
                     "  param p : linear(1, 2\n}\nmodel C { }\n");
  std::vector<std::string> expected = {
      "2:11: error: expected ':' after 'x'",
      "4:1: error: expected 'model'",
      "7:1: error: expected ',' or ')' in argument list",
  };
  EXPECT_EQ(c->errors(), expected);
  ASSERT_EQ(c->module->models.size(), 3u);
  EXPECT_TRUE(c->module->models[0]->hasSyntaxErrors);
  EXPECT_TRUE(c->module->models[1]->hasSyntaxErrors);
  EXPECT_FALSE(c->module->models[2]->hasSyntaxErrors);
}

TEST(ParserTest, MissingClosingBraces) {
  auto c = parseOnly("model A {\n  forward {\n    h = x\n  loss = mse(h, y)\n"
                     "model B { }");
  std::vector<std::string> expected = {
      "4:3: error: expected '}' at end of 'forward' block",
      "5:1: error: expected '}' at end of model 'A'",
  };
  EXPECT_EQ(c->errors(), expected);
  EXPECT_TRUE(c->module->models[0]->loss);
  EXPECT_EQ(c->module->models.size(), 2u);
}

TEST(ParserTest, ReturnMustBeLast) {
  auto c = parseOnly("model M {\n  forward {\n    return h\n    g = h\n  }\n}");
  EXPECT_EQ(c->errors(),
            std::vector<std::string>{"3:5: error: 'return' must be the last "
                                     "statement in a 'forward' block"});
}

TEST(ParserTest, DuplicateBlocks) {
  auto c = parseOnly("model M {\n  forward { }\n  forward { }\n"
                     "  loss = mse(a, b)\n  loss = mse(a, b)\n"
                     "  optimizer = sgd(lr=1)\n  optimizer = sgd(lr=1)\n}");
  std::vector<std::string> expected = {
      "3:3: error: model 'M' has more than one 'forward' block",
      "5:3: error: model 'M' has more than one 'loss'",
      "7:3: error: model 'M' has more than one 'optimizer'",
  };
  EXPECT_EQ(c->errors(), expected);
  EXPECT_NE(c->output.find("test.sdl:2:3: note: previous 'forward' block is "
                           "here"),
            std::string::npos);
}

TEST(ParserTest, EncodingErrors) {
  auto c = parseOnly("model M {\n  input a : f32[B] @foo\n"
                     "  input b : f32[B] @bsr(2)\n  input c : f32[B] @csr(1)\n"
                     "  input d : f32[B] @coo(1, 2)\n  input e : f32[B] @\n}");
  std::vector<std::string> expected = {
      "2:21: error: unknown sparse encoding 'foo'; expected coo, csr, csc, "
      "bsr or nm",
      "3:21: error: encoding 'bsr' takes 2 parameters, got 1",
      "4:21: error: encoding 'csr' takes no parameters, got 1",
      "5:21: error: encoding 'coo' takes at most 1 parameter, got 2",
      "7:1: error: expected encoding name after '@'",
  };
  EXPECT_EQ(c->errors(), expected);
}

TEST(ParserTest, PositionalAfterKeyword) {
  auto c = parseOnly("model M {\n  param p : linear(in = 1, 2)\n}");
  EXPECT_EQ(c->errors(),
            std::vector<std::string>{
                "2:28: error: positional argument follows keyword argument"});
}

TEST(ParserTest, LiteralErrors) {
  auto c = parseOnly("model M {\n  input a : f32[B, 99999999999999999999]\n"
                     "  param p : k(1e999)\n  param q : k(-x)\n"
                     "  param r : k(12ab)\n}");
  std::vector<std::string> expected = {
      "2:20: error: integer literal is too large",
      "3:15: error: number literal is out of range",
      "4:16: error: expected a number after '-'",
      "5:15: error: invalid number literal",
  };
  EXPECT_EQ(c->errors(), expected);
}

TEST(ParserTest, NestingLimit) {
  std::string ok = "model M { forward { h = " + std::string(255, '(') + "x" +
                   std::string(255, ')') + " } }";
  EXPECT_EQ(parseOnly(ok)->numErrors, 0u);
  std::string deep = "model M { forward { h = " + std::string(300, '(') + "x" +
                     std::string(300, ')') + " } }";
  auto c = parseOnly(deep);
  ASSERT_EQ(c->numErrors, 1u) << c->output;
  EXPECT_NE(c->output.find("expression is nested too deeply (the limit is "
                           "256)"),
            std::string::npos);
}

TEST(ParserTest, LongChainsAreLimitedToo) {
  std::string chain = "model M { forward { h = x";
  for (int i = 0; i < 1000; ++i)
    chain += " + x";
  chain += " } }";
  auto c = parseOnly(chain);
  ASSERT_EQ(c->numErrors, 1u) << c->output;
  EXPECT_NE(c->output.find("expression is nested too deeply"),
            std::string::npos);
}

TEST(ParserTest, GarbageNeverCrashes) {
  const char *inputs[] = {"{",
                          "}",
                          "model",
                          "model {",
                          "model M",
                          "model M {",
                          "model M { input",
                          "model M { input x :",
                          "model M { input x : f32[",
                          "model M { param",
                          "model M { param p : linear(",
                          "model M { forward { h = relu(",
                          "model M { forward { return",
                          "model M { loss = ",
                          "(((((",
                          ")))",
                          "model M { forward { h = x @ } }",
                          "model M { forward { = } }",
                          "model M { forward } }",
                          "model M { forward h = x } loss = mse(h, y)",
                          "\"",
                          "model \"M\" { }",
                          "@@@@",
                          "model M { ; ; ; }"};
  for (const char *src : inputs) {
    auto c = parseOnly(src);
    EXPECT_TRUE(c->module) << src;
  }
}
