//===- SemaTest.cpp - Unit tests of types, shapes and resolution ----------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <tuple>

using namespace sparsec;
using namespace sparsec::ast;
using namespace sparsec::test;

namespace {
/// Compiles `src`, which must be valid, and returns its first model.
const Model &checkOk(const Compiled &c) {
  EXPECT_EQ(c.numErrors, 0u) << c.output;
  static const Model empty;
  if (!c.module || c.module->models.empty())
    return empty;
  return *c.module->models[0];
}

const AssignStmt *stmt(const Model &m, size_t i) {
  if (!m.forward || i >= m.forward->stmts.size())
    return nullptr;
  return m.forward->stmts[i].get();
}

Type f32(std::vector<int64_t> shape) {
  return Type(ElemType::F32, std::move(shape));
}
} // namespace

TEST(SemaTest, FashionMLP) {
  auto c = compile(R"(model FashionMLP {
  input  x : f32[B, 784]
  target y : i64[B]
  param fc1 : sparse_linear(784, 2000, sparsity = 0.9)
  param fc2 : linear(2000, 10)
  forward {
    h = relu(fc1(x))
    logits = fc2(h)
  }
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr = 0.1, momentum = 0.9)
})");
  const Model &m = checkOk(*c);
  EXPECT_EQ(m.batchSymbol, "B");
  EXPECT_EQ(m.inputs[0]->type, f32({kBatch, 784}));
  EXPECT_EQ(m.inputs[1]->type, Type(ElemType::I64, {kBatch}));

  const Layer &fc1 = m.params[0]->layer;
  EXPECT_TRUE(m.params[0]->isResolved);
  EXPECT_EQ(fc1.kind, LayerKind::SparseLinear);
  EXPECT_EQ(fc1.in, 784);
  EXPECT_EQ(fc1.out, 2000);
  EXPECT_DOUBLE_EQ(fc1.sparsity, 0.9);
  EXPECT_TRUE(fc1.bias);
  EXPECT_EQ(fc1.nnz, 156800);
  EXPECT_EQ(fc1.numElements, 784 * 2000 + 2000);
  EXPECT_EQ(m.params[1]->layer.kind, LayerKind::Linear);

  const AssignStmt *h = stmt(m, 0);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->getType(), f32({kBatch, 2000}));
  const auto *relu = llvm::cast<CallExpr>(h->value.get());
  EXPECT_EQ(relu->callKind, CallKind::Relu);
  const auto *apply = llvm::cast<CallExpr>(relu->args[0].get());
  EXPECT_EQ(apply->callKind, CallKind::ApplyLayer);
  EXPECT_EQ(apply->param, m.params[0].get());
  const auto *x = llvm::cast<IdentExpr>(apply->args[0].get());
  EXPECT_EQ(x->ref.kind, ValueRef::Kind::Input);
  EXPECT_EQ(x->ref.input, m.inputs[0].get());

  ASSERT_TRUE(m.loss->isResolved);
  EXPECT_EQ(m.loss->kind, LossKind::CrossEntropy);
  EXPECT_EQ(m.loss->predName, "logits");
  EXPECT_EQ(m.loss->pred.value, stmt(m, 1));
  EXPECT_EQ(m.loss->target.input, m.inputs[1].get());
  EXPECT_EQ(m.loss->predType, f32({kBatch, 10}));

  ASSERT_TRUE(m.optimizer->isResolved);
  EXPECT_DOUBLE_EQ(m.optimizer->optimizer.lr, 0.1);
  EXPECT_DOUBLE_EQ(m.optimizer->optimizer.momentum, 0.9);
  EXPECT_FALSE(m.optimizer->optimizer.nesterov);

  // No `return`: the output is the loss's prediction.
  EXPECT_EQ(m.outputName, "logits");
  EXPECT_EQ(m.output.value, stmt(m, 1));
  EXPECT_EQ(m.outputType, f32({kBatch, 10}));
}

TEST(SemaTest, DumpMatchesSpec) {
  auto c = compile(R"(# line comments start with '#'
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
)");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  EXPECT_EQ(c->dump(), R"(Module
  Model FashionMLP <2:7>
    Input x : f32[B, 784] <3:10>
    Target y : i64[B] <4:10>
    Param fc1 : sparse_linear(in=784, out=2000, sparsity=0.9, bias=true, nnz=156800) <5:9>
    Param fc2 : linear(in=2000, out=10, bias=true) <6:9>
    Forward <7:3>
      Assign h : f32[B, 2000] <8:5>
        Call relu : f32[B, 2000] <8:9>
          Apply fc1 : f32[B, 2000] <8:14>
            Ident x : f32[B, 784] <8:18>
      Assign logits : f32[B, 10] <9:5>
        Apply fc2 : f32[B, 10] <9:14>
          Ident h : f32[B, 2000] <9:18>
      Return logits : f32[B, 10] <10:5>
    Loss cross_entropy(logits, y) <12:3>
    Optimizer sgd(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=false) <13:3>
    Output logits : f32[B, 10]
)");
}

TEST(SemaTest, EmbeddingShapes) {
  auto c = compile(R"(model M {
  input ids : i32[N]
  input seq : i64[N, 7]
  target y : f32[N, 16]
  param emb : embedding(1000, 16)
  forward {
    a = emb(ids)
    b = emb(seq)
  }
  loss = mse(a, y)
  optimizer = sgd(lr = 0.1)
})");
  const Model &m = checkOk(*c);
  EXPECT_EQ(m.batchSymbol, "N");
  EXPECT_EQ(stmt(m, 0)->getType(), f32({kBatch, 16}));
  EXPECT_EQ(stmt(m, 1)->getType(), f32({kBatch, 7, 16}));
  EXPECT_EQ(m.params[0]->layer.num, 1000);
  EXPECT_EQ(m.params[0]->layer.dim, 16);
  EXPECT_NE(c->dump().find("Input ids : i32[N] <2:9>"), std::string::npos);
}

TEST(SemaTest, AddMatMulConcatShapes) {
  auto c = compile(R"(model M {
  input x : f32[B, 8]
  target y : f32[B, 16]
  param w : tensor(8, 4)
  param v : tensor(4, 4, init = uniform, scale = 0.5)
  param b : tensor(4, init = zeros)
  forward {
    a = x @ w
    s = a + matmul(a, v)
    t = add(s, a)
    u = concat(a, x, s)
    r = relu(u)
  }
  loss = mse(r, y)
  optimizer = sgd(lr = 0.1)
})");
  const Model &m = checkOk(*c);
  EXPECT_EQ(stmt(m, 0)->getType(), f32({kBatch, 4}));
  EXPECT_EQ(stmt(m, 1)->getType(), f32({kBatch, 4}));
  EXPECT_EQ(stmt(m, 2)->getType(), f32({kBatch, 4}));
  EXPECT_EQ(stmt(m, 3)->getType(), f32({kBatch, 16}));
  EXPECT_EQ(stmt(m, 4)->getType(), f32({kBatch, 16}));
  const auto *mm = llvm::cast<BinaryExpr>(stmt(m, 0)->value.get());
  EXPECT_EQ(mm->op, BinaryOp::MatMul);
  const auto *w = llvm::cast<IdentExpr>(mm->rhs.get());
  EXPECT_EQ(w->ref.kind, ValueRef::Kind::Param);
  EXPECT_EQ(w->ref.param, m.params[0].get());
  EXPECT_EQ(w->type, f32({8, 4}));
  const Layer &v = m.params[1]->layer;
  EXPECT_EQ(v.kind, LayerKind::Tensor);
  EXPECT_EQ(v.dims, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(v.init, InitKind::Uniform);
  EXPECT_DOUBLE_EQ(v.scale, 0.5);
  const Layer &b = m.params[2]->layer;
  EXPECT_EQ(b.getRank(), 1u);
  EXPECT_EQ(b.init, InitKind::Zeros);
  EXPECT_DOUBLE_EQ(b.scale, 0.01);
  EXPECT_EQ(llvm::cast<CallExpr>(stmt(m, 2)->value.get())->callKind,
            CallKind::Add);
  EXPECT_EQ(llvm::cast<CallExpr>(stmt(m, 3)->value.get())->callKind,
            CallKind::Concat);
}

TEST(SemaTest, ReassignmentIsSSA) {
  auto c = compile(R"(model M {
  input x : f32[B, 4]
  target y : i64[B]
  param fc : linear(4, 4)
  param out : linear(4, 3)
  forward {
    h = fc(x)
    h = relu(h)
    h = out(h)
    return h
  }
  loss = cross_entropy(h, y)
  optimizer = sgd(lr = 0.1)
})");
  const Model &m = checkOk(*c);
  const auto *relu = llvm::cast<CallExpr>(stmt(m, 1)->value.get());
  const auto *use = llvm::cast<IdentExpr>(relu->args[0].get());
  EXPECT_EQ(use->ref.value, stmt(m, 0));
  const auto *apply = llvm::cast<CallExpr>(stmt(m, 2)->value.get());
  EXPECT_EQ(llvm::cast<IdentExpr>(apply->args[0].get())->ref.value, stmt(m, 1));
  EXPECT_EQ(m.output.value, stmt(m, 2));
  EXPECT_EQ(m.loss->pred.value, stmt(m, 2));
  EXPECT_EQ(m.forward->ret->ref.value, stmt(m, 2));
}

TEST(SemaTest, ReturnOverridesLossPrediction) {
  auto c = compile(model("", "    h = fc(x)\n    p = relu(h)\n    return p\n"));
  const Model &m = checkOk(*c);
  EXPECT_EQ(m.outputName, "p");
  EXPECT_EQ(m.loss->predName, "h");
}

TEST(SemaTest, LossesAndOptimizerDefaults) {
  auto c = compile(R"(model A {
  input x : f32[B, 4]
  target y : f32[B, 2]
  param fc : linear(4, 2, bias = false)
  forward { h = fc(x) }
  loss = bce_with_logits(h, y)
  optimizer = sgd(0.5, momentum = 0.9, nesterov = true, weight_decay = 1e-4)
}
model B {
  input x : f32[B, 4]
  target y : i32[B]
  param fc : sparse_linear(4, 3)
  forward { }
  loss = cross_entropy(x, y)
  optimizer = sgd(lr = 1)
})");
  ASSERT_EQ(c->numErrors, 0u) << c->output;
  const Model &a = *c->module->models[0];
  EXPECT_FALSE(a.params[0]->layer.bias);
  EXPECT_EQ(a.params[0]->layer.numElements, 8);
  EXPECT_EQ(a.loss->kind, LossKind::BCEWithLogits);
  const Optimizer &o = a.optimizer->optimizer;
  EXPECT_DOUBLE_EQ(o.lr, 0.5);
  EXPECT_TRUE(o.nesterov);
  EXPECT_DOUBLE_EQ(o.weightDecay, 1e-4);
  EXPECT_DOUBLE_EQ(o.dampening, 0);
  const Model &b = *c->module->models[1];
  EXPECT_DOUBLE_EQ(b.params[0]->layer.sparsity, 0.9);
  EXPECT_EQ(b.params[0]->layer.nnz, 1); // round(0.1 * 12) = 1
  EXPECT_EQ(b.outputName, "x");
  EXPECT_EQ(b.output.kind, ValueRef::Kind::Input);
}

TEST(SemaTest, ElementLimitIsInclusive) {
  // 2^31 elements exactly is allowed.
  auto ok = compile(model("  input x : f32[B, 4]\n  target y : i64[B]\n"
                          "  param fc : linear(4, 3)\n"
                          "  param t : tensor(65536, 32768)\n"));
  EXPECT_EQ(ok->numErrors, 0u) << ok->output;
  auto bad = compile(model("  input x : f32[B, 4]\n  target y : i64[B]\n"
                           "  param fc : linear(4, 3)\n"
                           "  param t : tensor(65536, 32769)\n"));
  EXPECT_EQ(bad->errors(),
            std::vector<std::string>{
                "5:9: error: parameter 't' has 2147549184 elements; the "
                "limit is 2147483648"});
}

TEST(SemaTest, DynamicMaskedLinearIsTheSparseLinear) {
  // A dynamic masked_linear resolves to the sparse_linear with the mask's
  // pattern and the same schedule, whatever its density (0.5 here, above
  // csr_below); sparse_linear's argument table and checks are shared.
  auto c = compile(model("  input x : f32[B, 4]\n  target y : i64[B]\n"
                         "  param fc : masked_linear(4, 3, density = 0.5, "
                         "dynamic = rigl, delta_t = 7, t_end = 70, "
                         "drop_fraction = 0.25, max_size = 8)\n"
                         "  param sl : sparse_linear(4, 3, sparsity = 0.5, "
                         "dynamic = rigl, delta_t = 7, t_end = 70, "
                         "drop_fraction = 0.25, max_size = 8)\n"));
  const Model &m = checkOk(*c);
  ASSERT_EQ(m.params.size(), 2u);
  const Layer &a = m.params[0]->layer, &b = m.params[1]->layer;
  EXPECT_EQ(a.kind, LayerKind::SparseLinear);
  EXPECT_EQ(std::tie(a.in, a.out, a.nnz, a.numElements, a.dynamic, a.deltaT,
                     a.tEnd, a.dropFraction, a.maxSize),
            std::tie(b.in, b.out, b.nnz, b.numElements, b.dynamic, b.deltaT,
                     b.tEnd, b.dropFraction, b.maxSize));
  EXPECT_EQ(a.dynamic, "rigl");
  auto bad = compile(model("  input x : f32[B, 4]\n  target y : i64[B]\n"
                           "  param fc : masked_linear(4, 3, dynamic = set, "
                           "t_end = 9, prune = magnitude, final = 0.5)\n"));
  EXPECT_EQ(bad->errors(),
            std::vector<std::string>{
                "4:44: error: 'dynamic' and 'prune' cannot be combined on "
                "masked_linear (a dynamic mask is grown and pruned by its "
                "own schedule)"});
}

TEST(SemaTest, Helpers) {
  EXPECT_EQ(typeToString(Type(ElemType::BF16, {kBatch, 3}), "N"), "bf16[N, 3]");
  EXPECT_EQ(typeToString(Type()), "?");
  EXPECT_EQ(formatDouble(0.1), "0.1");
  EXPECT_EQ(formatDouble(1e-3), "0.001");
  EXPECT_EQ(formatDouble(0.9), "0.9");
  EXPECT_EQ(formatDouble(2), "2");
  EXPECT_EQ(elemTypeFromName("i8"), ElemType::I8);
  EXPECT_EQ(elemTypeFromName("f31"), ElemType::Invalid);
  EXPECT_EQ(lossKindName(LossKind::BCEWithLogits), "bce_with_logits");
}

TEST(SemaTest, SyntaxErrorsSuppressSemaOfThatModelOnly) {
  auto c = compile("model A {\n  input x f32[B]\n}\nmodel B {\n}\n");
  std::vector<std::string> expected = {
      "2:11: error: expected ':' after 'x'",
      "4:7: error: model 'B' has no 'forward' block",
      "4:7: error: model 'B' has no 'loss'",
      "4:7: error: model 'B' has no 'optimizer'",
  };
  EXPECT_EQ(c->errors(), expected);
  EXPECT_FALSE(c->module);
}
