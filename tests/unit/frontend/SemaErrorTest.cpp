//===- SemaErrorTest.cpp - One test per semantic error message ------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Each case is a small model with one mistake and the exact list of errors it
// must produce (no follow-up errors).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

using namespace sparsec;
using namespace sparsec::test;

namespace {
struct ErrorCase {
  const char *name;
  std::string source;
  std::vector<std::string> errors;
};

// Default declarations of model(): lines 2-4; `forward {` is line 5.
const char *const kX = "  input x : f32[B, 4]\n";
const char *const kY = "  target y : i64[B]\n";
const char *const kFc = "  param fc : linear(4, 3)\n";

std::string decls(const std::string &extra) {
  return kX + std::string(kY) + kFc + extra;
}

std::vector<ErrorCase> cases() {
  return {
      // Inputs.
      {"BatchDimFirst",
       model("  input x : f32[4, B]\n  target y : i64[B]\n  param fc : "
             "linear(4, 3)\n"),
       {"2:17: error: the first dimension of 'x' must be the symbolic batch "
        "dimension",
        "2:20: error: dimension 'B' of 'x' is symbolic; only the first "
        "(batch) dimension may be symbolic"}},
      {"RankZeroInput",
       model(decls("  input z : f32[]\n")),
       {"5:13: error: the first dimension of 'z' must be the symbolic batch "
        "dimension"}},
      {"SameBatchSymbol",
       model("  input x : f32[B, 4]\n  target y : i64[N]\n  param fc : "
             "linear(4, 3)\n"),
       {"3:18: error: 'y' uses batch dimension 'N' but earlier inputs use "
        "'B'; all inputs must use the same batch symbol"}},
      {"OnlyBatchSymbolic",
       model(decls("  input z : f32[B, K]\n")),
       {"5:20: error: dimension 'K' of 'z' is symbolic; only the first "
        "(batch) dimension may be symbolic"}},
      {"ZeroDim",
       model(decls("  input z : f32[B, 0]\n")),
       {"5:20: error: dimensions of 'z' must be positive"}},
      {"InputEncoding",
       model(decls("  input z : f32[B, 4] @csr\n")),
       {"5:23: error: sparse encodings on model inputs are not supported "
        "yet"}},
      {"InputTooLarge",
       model(decls("  input z : f32[B, 65536, 65537]\n")),
       {"5:9: error: 'z' has more than 2147483648 elements per example; that "
        "is the limit"}},
      {"Redefinition",
       model(decls("  param x : linear(1, 1)\n")),
       {"5:9: error: redefinition of 'x'"}},
      // Parameters.
      {"UnknownParamKind",
       model(decls("  param p : conv2d(1, 2)\n")),
       {"5:13: error: unknown parameter kind 'conv2d'; expected linear, "
        "sparse_linear, sparse_quantized_linear, masked_linear, masked_conv2d, "
        "masked_lstm, embedding, "
        "embedding_bag, tensor, kwinners or kwinners2d"}},
      {"BuiltinParamName",
       model(decls("  param relu : linear(1, 2)\n")),
       {"5:9: error: 'relu' is a builtin function and cannot be used as a "
        "parameter name"}},
      {"UnknownArgument",
       model(decls("  param p : linear(1, 2, bais = true)\n")),
       {"5:26: error: unknown argument 'bais' for 'linear'"}},
      {"MissingArgument",
       model(decls("  param p : linear(1)\n")),
       {"5:13: error: missing required argument 'out' for 'linear'"}},
      {"DuplicateArgument",
       model(decls("  param p : linear(1, 2, in = 3)\n")),
       {"5:26: error: duplicate argument 'in' for 'linear'"}},
      {"TooManyArguments",
       model(decls("  param p : embedding(1, 2, 3, 4)\n")),
       {"5:29: error: too many positional arguments for 'embedding' (it "
        "takes at most 2)"}},
      {"TensorRank",
       model(decls("  param p : tensor(3, 4, 5)\n")),
       {"5:26: error: too many positional arguments for 'tensor' (it takes "
        "at most 2)"}},
      {"IntegerArgument",
       model(decls("  param p : linear(1.5, 2)\n")),
       {"5:20: error: argument 'in' of 'linear' must be an integer"}},
      {"PositiveArgument",
       model(decls("  param p : linear(0, -2)\n")),
       {"5:20: error: argument 'in' of 'linear' must be positive",
        "5:23: error: argument 'out' of 'linear' must be positive"}},
      {"BoolArgument",
       model(decls("  param p : linear(1, 2, bias = 1)\n")),
       {"5:33: error: argument 'bias' of 'linear' must be true or false"}},
      {"NumberArgument",
       model(decls("  param p : sparse_linear(1, 2, sparsity = high)\n")),
       {"5:44: error: argument 'sparsity' of 'sparse_linear' must be a "
        "number"}},
      {"SparsityRange",
       model(decls("  param p : sparse_linear(10, 10, sparsity = 1)\n")),
       {"5:46: error: argument 'sparsity' of 'sparse_linear' must be in [0, "
        "1)"}},
      {"NoNonzeroWeights",
       model(decls("  param p : sparse_linear(10, 10, sparsity = 0.999)\n")),
       {"5:9: error: parameter 'p' has no nonzero weights: round((1 - "
        "sparsity) * in * out) = 0"}},
      {"NameArgument",
       model(decls("  param p : tensor(3, init = 0)\n")),
       {"5:30: error: argument 'init' of 'tensor' must be a name"}},
      {"InitKind",
       model(decls("  param p : tensor(3, init = ones)\n")),
       {"5:30: error: argument 'init' of 'tensor' must be one of zeros, "
        "normal, uniform"}},
      {"NegativeScale",
       model(decls("  param p : tensor(3, scale = -1)\n")),
       {"5:31: error: argument 'scale' of 'tensor' must be non-negative"}},
      {"ParamTooLarge",
       model(decls("  param p : embedding(100000, 100000)\n")),
       {"5:9: error: parameter 'p' has 10000000000 elements; the limit is "
        "2147483648"}},
      {"HugeParamDoesNotOverflow",
       model(decls("  param p : linear(9223372036854775807, "
                   "9223372036854775807)\n")),
       {"5:9: error: parameter 'p' has "
        "85070591730234615856620279821087277056 elements; the limit is "
        "2147483648"}},
      // Forward.
      {"UndefinedName",
       model("", "    h = fc(q)\n"),
       {"6:12: error: use of undefined name 'q'"}},
      {"UseBeforeDefinition",
       model("", "    g = relu(h)\n    h = fc(x)\n"),
       {"6:14: error: use of undefined name 'h'"}},
      {"AssignToInput",
       model("", "    x = relu(x)\n    h = fc(x)\n"),
       {"6:5: error: cannot assign to input 'x'"}},
      {"AssignToTarget",
       model("", "    y = relu(x)\n    h = fc(x)\n"),
       {"6:5: error: cannot assign to target 'y'"}},
      {"AssignToParam",
       model("", "    fc = relu(x)\n    h = fc(x)\n"),
       {"6:5: error: cannot assign to parameter 'fc'"}},
      {"NumberValue",
       model("", "    h = fc(x)\n    g = h + 1\n"),
       {"7:13: error: numbers are not allowed as values in 'forward'"}},
      {"BareLayer",
       model("", "    h = fc(x)\n    g = fc + h\n"),
       {"7:9: error: layer 'fc' must be applied to an input, e.g. fc(x)"}},
      {"TargetInForward",
       model("", "    h = fc(x)\n    g = relu(y)\n"),
       {"7:14: error: target 'y' cannot be used in 'forward'; targets are "
        "only available to the loss"}},
      {"UnknownFunction",
       model("", "    h = fc(x)\n    g = softmax(h)\n"),
       {"7:9: error: unknown function 'softmax'"}},
      {"NotAFunction",
       model("", "    h = fc(x)\n    g = h(x)\n"),
       {"7:9: error: 'h' is not a function or a layer"}},
      {"TensorApplied",
       model(decls("  param w : tensor(4, 4)\n"), "    h = fc(w(x))\n"),
       {"7:12: error: tensor parameter 'w' cannot be applied; use it as a "
        "value, e.g. x @ w"}},
      {"BuiltinArity",
       model("", "    h = fc(x)\n    g = relu(h, h)\n"),
       {"7:9: error: 'relu' takes 1 argument, got 2"}},
      {"AddArity",
       model("", "    h = fc(x)\n    g = add(h)\n"),
       {"7:9: error: 'add' takes 2 arguments, got 1"}},
      {"LayerArity",
       model("", "    h = fc(x, x)\n"),
       {"6:9: error: layer 'fc' takes 1 argument, got 2"}},
      {"ConcatArity",
       model("", "    h = fc(x)\n    g = concat(h)\n"),
       {"7:9: error: 'concat' takes at least 2 arguments, got 1"}},
      {"LinearFeatures",
       model(decls("  param fc2 : linear(5, 3)\n"), "    h = fc2(x)\n"),
       {"7:9: error: layer 'fc2' expects 5 input features, got 4"}},
      {"LinearInputType",
       model(decls("  input ids : i64[B]\n"), "    h = fc(ids)\n"),
       {"7:9: error: layer 'fc' expects an f32 input of shape [B, 4], got "
        "i64[B]"}},
      {"EmbeddingIndices",
       model(decls("  param e : embedding(10, 4)\n"), "    h = fc(e(x))\n"),
       {"7:12: error: embedding 'e' expects i32 or i64 indices of shape [B] "
        "or [B, K], got f32[B, 4]"}},
      {"ReluType",
       model(decls("  input ids : i64[B]\n"), "    g = relu(ids)\n    h = "
                                              "fc(x)\n"),
       {"7:9: error: 'relu' expects an f32 operand, got i64[B]"}},
      {"AddShapes",
       model("", "    h = fc(x)\n    g = h + x\n"),
       {"7:11: error: operands of '+' must be f32 values of the same shape, "
        "got f32[B, 3] and f32[B, 4]"}},
      {"AddCallShapes",
       model("", "    h = fc(x)\n    g = add(h, x)\n"),
       {"7:9: error: operands of 'add' must be f32 values of the same shape, "
        "got f32[B, 3] and f32[B, 4]"}},
      {"MatMulRhsNotTensor",
       model("", "    g = x @ x\n    h = fc(x)\n"),
       {"6:13: error: right operand of '@' must be a tensor parameter"}},
      {"MatMulRhsRank",
       model(decls("  param w : tensor(4)\n"), "    g = x @ w\n    h = "
                                               "fc(x)\n"),
       {"7:13: error: right operand of '@' must be a rank-2 tensor "
        "parameter, got f32[4]"}},
      {"MatMulLhs",
       model(decls("  param w : tensor(4, 4)\n  param v : tensor(4, 4)\n"),
             "    g = v @ w\n    h = fc(x)\n"),
       {"8:9: error: left operand of '@' must be an f32 value of shape [B, "
        "I], got f32[4, 4]"}},
      {"MatMulInner",
       model(decls("  param w : tensor(5, 4)\n"), "    g = matmul(x, w)\n    "
                                                  "h = fc(x)\n"),
       {"7:9: error: inner dimensions of 'matmul' do not match: f32[B, 4] and "
        "f32[5, 4]"}},
      {"ConcatType",
       model(decls("  input ids : i64[B, 4]\n"), "    g = concat(x, ids)\n    "
                                                 "h = fc(x)\n"),
       {"7:19: error: operands of 'concat' must be f32, got i64[B, 4]"}},
      {"ConcatRank",
       model(decls("  input z : f32[B, 2, 4]\n"), "    g = concat(x, z)\n    "
                                                  "h = fc(x)\n"),
       {"7:19: error: operands of 'concat' must have the same rank, got "
        "f32[B, 4] and f32[B, 2, 4]"}},
      {"ConcatDims",
       model(decls("  input z : f32[B, 2, 4]\n  input u : f32[B, 3, 4]\n"),
             "    g = concat(z, u)\n    h = fc(x)\n"),
       {"8:19: error: operands of 'concat' must have equal dimensions except "
        "the last, got f32[B, 2, 4] and f32[B, 3, 4]"}},
      {"ConcatRankOne",
       model(decls("  input z : f32[B]\n"), "    g = concat(z, z)\n    h = "
                                            "fc(x)\n"),
       {"7:16: error: operands of 'concat' must have rank 2 or more, got "
        "f32[B]"}},
      {"ConcatTooLarge",
       model(decls("  input z : f32[B, 2000000000]\n"),
             "    g = concat(z, z)\n    h = fc(x)\n"),
       {"7:9: error: value has more than 2147483648 elements per example; "
        "that is the limit"}},
      {"EmbeddingTooLarge",
       model(decls("  input ids : i32[B, 100000]\n  param e : embedding(10, "
                   "100000)\n"),
             "    g = e(ids)\n    h = fc(x)\n"),
       {"8:9: error: value has more than 2147483648 elements per example; "
        "that is the limit"}},
      {"ReturnUndefined",
       model("", "    h = fc(x)\n    return q\n"),
       {"7:12: error: use of undefined name 'q'"}},
      {"ReturnParam",
       model("", "    h = fc(x)\n    return fc\n"),
       {"7:12: error: 'return' must name a forward value or an input"}},
      {"ReturnWithoutBatch",
       model(decls("  param w : tensor(4, 4)\n"), "    h = fc(x)\n    g = "
                                                  "relu(w)\n    return g\n"),
       {"9:12: error: the output 'g' must have the batch dimension first, got "
        "f32[4, 4]"}},
      // Loss.
      {"UnknownLoss",
       model("", "", "  loss = nll(h, y)\n"),
       {"8:10: error: unknown loss 'nll'; expected mse, cross_entropy or "
        "bce_with_logits"}},
      {"LossArity",
       model("", "", "  loss = mse(h)\n"),
       {"8:10: error: 'mse' takes 2 arguments (prediction, target), got 1"}},
      {"LossKeyword",
       model("", "", "  loss = mse(h, t = y)\n"),
       {"8:17: error: 'mse' takes no keyword arguments"}},
      {"LossNames",
       model("", "", "  loss = mse(h, 1)\n"),
       {"8:17: error: arguments of 'mse' must be names of values"}},
      {"LossUndefined",
       model("", "", "  loss = cross_entropy(q, y)\n"),
       {"8:24: error: use of undefined name 'q'"}},
      {"LossPredParam",
       model("", "", "  loss = cross_entropy(fc, y)\n"),
       {"8:24: error: loss prediction 'fc' must be a forward value or an "
        "input"}},
      {"LossTargetIsInput",
       model("", "", "  loss = cross_entropy(h, x)\n"),
       {"8:27: error: loss target 'x' must be declared with 'target', not "
        "'input'"}},
      {"LossTargetIsValue",
       model("", "", "  loss = cross_entropy(h, h)\n"),
       {"8:27: error: loss target 'h' must be declared with 'target'"}},
      {"CrossEntropyLogits",
       model("  input x : f32[B, 4]\n  target y : i64[B]\n  param fc : "
             "linear(4, 3)\n  input z : f32[B]\n",
             "", "  loss = cross_entropy(z, y)\n"),
       {"9:24: error: 'cross_entropy' expects f32 logits of shape [B, C], "
        "got f32[B]"}},
      {"CrossEntropyLabels",
       model("  input x : f32[B, 4]\n  target y : f32[B, 3]\n  param fc : "
             "linear(4, 3)\n"),
       {"8:27: error: 'cross_entropy' expects i32 or i64 class labels of "
        "shape [B], got f32[B, 3]"}},
      {"MseShapes",
       model("", "", "  loss = mse(h, y)\n"),
       {"8:10: error: 'mse' expects an f32 prediction and target of the same "
        "shape, got f32[B, 3] and i64[B]"}},
      {"BceShapes",
       model("", "", "  loss = bce_with_logits(h, y)\n"),
       {"8:10: error: 'bce_with_logits' expects an f32 prediction and target "
        "of the same shape, got f32[B, 3] and i64[B]"}},
      // Optimizer.
      {"UnknownOptimizer",
       model("", "", "", "  optimizer = adamax(lr = 1)\n"),
       {"9:15: error: unknown optimizer 'adamax'; expected sgd, adagrad, "
        "rowwise_adagrad, rmsprop, adam or adamw"}},
      {"BetaRange",
       model("", "", "", "  optimizer = adam(beta2 = 1.0)\n"),
       {"9:28: error: argument 'beta2' of 'adam' must be in [0, 1)"}},
      {"UnknownSparseMode",
       model("", "", "", "  optimizer = adamw(sparse = eager)\n"),
       {"9:30: error: unknown sparse mode 'eager'; expected lazy, catchup or "
        "dense"}},
      {"CosineNeedsTMax",
       model("", "", "", "  optimizer = adagrad(schedule = cosine)\n"),
       {"9:34: error: schedule 'cosine' needs t_max > 0"}},
      {"MissingLr",
       model("", "", "", "  optimizer = sgd(momentum = 0.9)\n"),
       {"9:15: error: missing required argument 'lr' for 'sgd'"}},
      {"LrPositive",
       model("", "", "", "  optimizer = sgd(lr = 0)\n"),
       {"9:24: error: argument 'lr' of 'sgd' must be positive"}},
      {"MomentumNonNegative",
       model("", "", "", "  optimizer = sgd(lr = 1, momentum = -0.5)\n"),
       {"9:38: error: argument 'momentum' of 'sgd' must be non-negative"}},
      {"WeightDecayNonNegative",
       model("", "", "", "  optimizer = sgd(lr = 1, weight_decay = -1)\n"),
       {"9:42: error: argument 'weight_decay' of 'sgd' must be "
        "non-negative"}},
      {"NesterovNeedsMomentum",
       model("", "", "", "  optimizer = sgd(lr = 1, nesterov = true)\n"),
       {"9:38: error: nesterov momentum requires momentum > 0 and dampening "
        "= 0"}},
      {"NesterovNeedsZeroDampening",
       model("", "", "",
             "  optimizer = sgd(lr = 1, momentum = 0.9, dampening = 0.1, "
             "nesterov = true)\n"),
       {"9:71: error: nesterov momentum requires momentum > 0 and dampening "
        "= 0"}},
      // Model structure.
      {"MissingBlocks",
       "model M {\n  input x : f32[B, 4]\n}\n",
       {"1:7: error: model 'M' has no 'forward' block",
        "1:7: error: model 'M' has no 'loss'",
        "1:7: error: model 'M' has no 'optimizer'"}},
      {"DuplicateModel",
       model() + model(),
       {"11:7: error: redefinition of model 'M'"}},
      // One mistake, one error: uses of a broken value stay silent.
      {"NoCascadeFromBadParam",
       model("  input x : f32[B, 4]\n  target y : i64[B]\n  param fc : "
             "linear(4, 3, foo = 1)\n",
             "    h = fc(x)\n    g = relu(h)\n"),
       {"4:27: error: unknown argument 'foo' for 'linear'"}},
      {"NoCascadeFromBadInput",
       model("  input x : f32[B, 4] @coo\n  target y : i64[B]\n  param fc : "
             "linear(4, 3)\n"),
       {"2:23: error: sparse encodings on model inputs are not supported "
        "yet"}},
      {"NoCascadeFromBadExpr",
       model("", "    h = fc(q)\n    g = relu(h) + h\n"),
       {"6:12: error: use of undefined name 'q'"}},
  };
}

class SemaErrorTest : public ::testing::TestWithParam<ErrorCase> {};
} // namespace

TEST_P(SemaErrorTest, ReportsExactlyTheseErrors) {
  const ErrorCase &c = GetParam();
  auto result = compile(c.source);
  EXPECT_EQ(result->errors(), c.errors) << c.source << "\n" << result->output;
  EXPECT_FALSE(result->module);
}

INSTANTIATE_TEST_SUITE_P(Frontend, SemaErrorTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<ErrorCase> &info) {
                           return std::string(info.param.name);
                         });

TEST(SemaErrorTestBase, ValidModelHasNoErrors) {
  auto result = compile(model());
  EXPECT_EQ(result->numErrors, 0u) << result->output;
  EXPECT_TRUE(result->module);
}

TEST(SemaErrorTestBase, NotesPointAtPreviousDefinitions) {
  auto result = compile(model(decls("  input x : f32[B, 4]\n")));
  EXPECT_NE(result->output.find("test.sdl:2:9: note: previous definition of "
                                "'x' is here"),
            std::string::npos)
      << result->output;
}

TEST(SemaErrorTestBase, ErrorsIncludeSourceLineAndCaret) {
  auto result = compile(model("", "    h = fc(q)\n"));
  EXPECT_EQ(result->output, "test.sdl:6:12: error: use of undefined name 'q'\n"
                            "    h = fc(q)\n"
                            "           ^\n");
}
