//===- SemaDecls.cpp - Resolution of parameters and optimizers -----------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks the arguments of `param NAME : KIND(ARGS)` and
// `optimizer = KIND(ARGS)` against per-kind argument tables and fills in
// ast::Layer and ast::Optimizer.
//
//===----------------------------------------------------------------------===//

#include "Connectivity.h"
#include "Diagnostics.h"
#include "Sema.h"
#include "SemaArgs.h"

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <iterator>
#include <vector>
#include <optional>
#include <vector>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::ArrayRef;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

static llvm::APInt toAPInt(int64_t v) { return llvm::APInt(128, v); }
static std::string toDecimal(const llvm::APInt &v) {
  return llvm::toString(v, 10, /*Signed=*/false);
}

//===----------------------------------------------------------------------===//
// Argument tables
//===----------------------------------------------------------------------===//
//
// Parameters and optimizers take arguments described by a table. Arguments
// may be given positionally in table order or by keyword. Adding an argument
// (e.g. embedding's padding_idx) is one new row plus its use below.

namespace {
const ArgSpec kLinearArgs[] = {{"in", ArgType::Int, true},
                               {"out", ArgType::Int, true},
                               {"bias", ArgType::Bool, false}};
const std::vector<ArgSpec> kSparseLinearArgs =
    withDynamicArgs({{"in", ArgType::Int, true},
                     {"out", ArgType::Int, true},
                     {"sparsity", ArgType::Number, false},
                     {"bias", ArgType::Bool, false},
                     {"connectivity", ArgType::NameOrString, false, true}});
/// sparse_linear's arguments (the dynamic ones are rejected), `bits` and
/// `inference` (auto | int8 | f32: how `<Model>_forward` computes the layer).
const std::vector<ArgSpec> kSparseQuantizedLinearArgs = [] {
  std::vector<ArgSpec> v = kSparseLinearArgs;
  v.push_back({"bits", ArgType::Int, false, true});
  v.push_back({"inference", ArgType::Name, false, true});
  return v;
}();
const ArgSpec kEmbeddingArgs[] = {
    {"num", ArgType::Int, true},
    {"dim", ArgType::Int, true},
    {"padding_idx", ArgType::Int, false, true},
    {"max_norm", ArgType::Number, false, true},
    {"norm_type", ArgType::Number, false, true},
    {"scale_grad_by_freq", ArgType::Bool, false, true}};
const ArgSpec kEmbeddingBagArgs[] = {
    {"num", ArgType::Int, true},
    {"dim", ArgType::Int, true},
    {"mode", ArgType::Name, false},
    {"padding_idx", ArgType::Int, false, true},
    {"max_norm", ArgType::Number, false, true},
    {"norm_type", ArgType::Number, false, true},
    {"scale_grad_by_freq", ArgType::Bool, false, true}};
const ArgSpec kTensorArgs[] = {{"d0", ArgType::Int, true},
                               {"d1", ArgType::Int, false},
                               {"init", ArgType::Name, false, true},
                               {"scale", ArgType::Number, false, true}};

/// One hyperparameter of an optimizer: PyTorch name, type, default, and the
/// field of ast::Optimizer it sets.
struct OptArg {
  const char *name;
  ArgType type;
  double defaultValue;
  enum Check { Any, NonNegative, Positive, Beta } check;
  double Optimizer::*number = nullptr;
  bool Optimizer::*flag = nullptr;
};

struct OptKindSpec {
  const char *name;
  OptimizerKind kind;
  double defaultLr; // <= 0: lr is required
  std::vector<OptArg> args;
};

const std::vector<OptKindSpec> &optimizerSpecs() {
  using O = Optimizer;
  auto num = [](const char *n, double d, OptArg::Check c, double O::*f) {
    return OptArg{n, ArgType::Number, d, c, f, nullptr};
  };
  auto flag = [](const char *n, bool O::*f) {
    return OptArg{n, ArgType::Bool, 0, OptArg::Any, nullptr, f};
  };
  auto wd = [&](double d) {
    return num("weight_decay", d, OptArg::NonNegative, &O::weightDecay);
  };
  auto eps = [&](double d) { return num("eps", d, OptArg::NonNegative, &O::eps); };
  auto acc = num("initial_accumulator_value", 0, OptArg::NonNegative,
                 &O::initialAccumulatorValue);
  auto adam = [&](double decay) {
    return std::vector<OptArg>{
        num("beta1", 0.9, OptArg::Beta, &O::beta1),
        num("beta2", 0.999, OptArg::Beta, &O::beta2), eps(1e-8), wd(decay),
        flag("amsgrad", &O::amsgrad)};
  };
  static const std::vector<OptKindSpec> specs = {
      {"sgd",
       OptimizerKind::SGD,
       0,
       {num("momentum", 0, OptArg::NonNegative, &O::momentum),
        num("dampening", 0, OptArg::NonNegative, &O::dampening), wd(0),
        flag("nesterov", &O::nesterov)}},
      {"adagrad",
       OptimizerKind::Adagrad,
       0.01,
       {num("lr_decay", 0, OptArg::NonNegative, &O::lrDecay), wd(0), acc,
        eps(1e-10)}},
      {"rowwise_adagrad", OptimizerKind::RowwiseAdagrad, 0.01,
       {wd(0), acc, eps(1e-10)}},
      {"rmsprop",
       OptimizerKind::RMSprop,
       0.01,
       {num("alpha", 0.99, OptArg::NonNegative, &O::alpha), eps(1e-8), wd(0),
        num("momentum", 0, OptArg::NonNegative, &O::momentum),
        flag("centered", &O::centered)}},
      {"adam", OptimizerKind::Adam, 1e-3, adam(0)},
      {"adamw", OptimizerKind::AdamW, 1e-3, adam(0.01)},
  };
  return specs;
}

/// Keyword-only arguments every optimizer accepts.
const ArgSpec kCommonOptArgs[] = {
    {"sparse", ArgType::Name, false, true},
    {"clip_grad_norm", ArgType::Number, false, true},
    {"schedule", ArgType::Name, false, true},
    {"step_size", ArgType::Int, false, true},
    {"gamma", ArgType::Number, false, true},
    {"t_max", ArgType::Int, false, true},
    {"eta_min", ArgType::Number, false, true},
    {"warmup", ArgType::Int, false, true},
    {"fused", ArgType::Bool, false, true}};
} // namespace

//===----------------------------------------------------------------------===//
// Parameters and optimizer
//===----------------------------------------------------------------------===//

/// Binds `args` to the rows of `specs` and checks their types.
bool sparsec::bindArgs(DiagEngine &diags, StringRef kind, SMLoc kindLoc,
                       ArrayRef<ArgSpec> specs,
                       const std::vector<Argument> &args, BoundArgs &bound) {
  bound.assign(specs.size(), nullptr);
  bool ok = true;
  size_t position = 0;
  size_t maxPositional = 0;
  while (maxPositional < specs.size() && !specs[maxPositional].keywordOnly)
    ++maxPositional;
  bool reportedTooMany = false;
  for (const Argument &arg : args) {
    size_t idx = specs.size();
    if (arg.isKeyword()) {
      for (size_t i = 0, e = specs.size(); i != e; ++i)
        if (arg.key == specs[i].name)
          idx = i;
      if (idx == specs.size()) {
        diags.error(arg.loc,
                    "unknown argument '" + arg.key + "' for '" + kind + "'");
        ok = false;
        continue;
      }
    } else {
      idx = position++;
      if (idx >= maxPositional) {
        if (!reportedTooMany)
          diags.error(arg.loc, "too many positional arguments for '" + kind +
                                   "' (it takes at most " +
                                   Twine(maxPositional) + ")");
        reportedTooMany = true;
        ok = false;
        continue;
      }
    }
    const ArgSpec &spec = specs[idx];
    if (bound[idx]) {
      diags.error(arg.loc, "duplicate argument '" + Twine(spec.name) +
                               "' for '" + kind + "'");
      ok = false;
      continue;
    }
    bound[idx] = &arg;
    const ArgValue &v = arg.value;
    const char *expected = nullptr;
    switch (spec.type) {
    case ArgType::Int:
      if (v.kind != ArgValue::Kind::Int)
        expected = "an integer";
      break;
    case ArgType::Number:
      if (!v.isNumber())
        expected = "a number";
      break;
    case ArgType::Bool:
      if (v.kind != ArgValue::Kind::Bool)
        expected = "true or false";
      break;
    case ArgType::Name:
      if (v.kind != ArgValue::Kind::Ident)
        expected = "a name";
      break;
    case ArgType::IntOrPair:
      if (v.kind != ArgValue::Kind::Int &&
          (v.kind != ArgValue::Kind::List || !v.flat || v.rows.size() != 1 ||
           v.rows[0].size() != 2))
        expected = "an integer or a pair [height, width]";
      break;
    case ArgType::NameOrString:
      if (v.kind != ArgValue::Kind::Ident && v.kind != ArgValue::Kind::String &&
          v.kind != ArgValue::Kind::List)
        expected = "a name, a file name in quotes or an inline list";
      break;
    }
    if (expected) {
      diags.error(v.loc, "argument '" + Twine(spec.name) + "' of '" + kind +
                             "' must be " + expected);
      ok = false;
    }
  }
  for (size_t i = 0, e = specs.size(); i != e; ++i) {
    if (specs[i].required && !bound[i]) {
      diags.error(kindLoc, "missing required argument '" +
                               Twine(specs[i].name) + "' for '" + kind + "'");
      ok = false;
    }
  }
  return ok;
}

static bool checkElementCount(DiagEngine &diags, const ParamDecl &p,
                              const llvm::APInt &count) {
  if (count.ule(toAPInt(kMaxElements)))
    return true;
  diags.error(p.loc, "parameter '" + p.name + "' has " + toDecimal(count) +
                         " elements; the limit is " + Twine(kMaxElements));
  return false;
}

/// `connectivity = random | small_world | "file"` of sparse_linear; a file
/// replaces `sparsity` (the pattern fixes nnz).
static bool resolveConnectivity(const Argument &a, const Argument *sparsity,
                                Layer &l, DiagEngine &diags) {
  const ArgValue &v = a.value;
  if (v.kind == ArgValue::Kind::Ident) {
    std::optional<Pattern> p = llvm::StringSwitch<std::optional<Pattern>>(v.text)
                                   .Case("random", Pattern::Random)
                                   .Case("small_world", Pattern::SmallWorld)
                                   .Default(std::nullopt);
    if (!p) {
      diags.error(v.loc, "unknown connectivity '" + v.text +
                             "'; expected random, small_world or a file "
                             "name in quotes");
      return false;
    }
    l.pattern = *p;
    return true;
  }
  bool list = v.kind == ArgValue::Kind::List;
  if (sparsity) {
    diags.error(sparsity->value.loc,
                Twine("'sparsity' cannot be given with a connectivity ") +
                    (list ? "list" : "file") +
                    " (it sets the number of weights)");
    return false;
  }
  if (!readPattern(diags, v, "connectivity", l.out, l.in, l.userPositions,
                   l.userCoordinates))
    return false;
  if (l.userCoordinates.empty()) {
    diags.error(v.loc, list ? "the connectivity list has no connections"
                            : "connectivity file '" + v.text +
                                  "' has no connections");
    return false;
  }
  l.pattern = Pattern::User;
  l.connectivityFile = list ? "" : v.text;
  return true;
}

/// `bits` (2..8, default 8) and `inference` (auto, int8 or f32; read again
/// by MLIRGen) of sparse_quantized_linear, which has no dynamic sparsity yet
/// (args: kSparseQuantizedLinearArgs).
static bool resolveQuantBits(ArrayRef<const Argument *> args, Layer &l,
                             DiagEngine &diags) {
  if (!l.dynamic.empty()) {
    diags.error(args[5]->value.loc, "'dynamic' is not supported by "
                                    "sparse_quantized_linear yet");
    return false;
  }
  l.quantBits = args[10] ? args[10]->value.intValue : 8;
  if (l.quantBits < 2 || l.quantBits > 8) {
    diags.error(args[10]->value.loc, "argument 'bits' of "
                                     "'sparse_quantized_linear' must be in "
                                     "[2, 8]");
    return false;
  }
  if (const Argument *a = args[11]; a && a->value.text != "auto" &&
                                    a->value.text != "int8" &&
                                    a->value.text != "f32") {
    diags.error(a->value.loc, "argument 'inference' of "
                              "'sparse_quantized_linear' must be auto, int8 "
                              "or f32, got '" +
                                  a->value.text + "'");
    return false;
  }
  // The int8 forward sums up to `in` products of two levels of at most 127
  // in an int32 (sdl-lower-quantized-linear; `auto` then takes f32).
  constexpr int64_t kMaxInt8Inputs = 133143; // (2^31 - 1) / 127^2
  if (const Argument *a = args[11];
      a && a->value.text == "int8" && l.in > kMaxInt8Inputs) {
    diags.error(a->value.loc,
                "inference = int8 needs in <= " + Twine(kMaxInt8Inputs) +
                    " (int32 sums of 127 x 127 products), got " + Twine(l.in));
    return false;
  }
  return true;
}

bool sparsec::resolveParam(ParamDecl &p, DiagEngine &diags) {
  auto kind = llvm::StringSwitch<std::optional<LayerKind>>(p.kindName)
                  .Case("linear", LayerKind::Linear)
                  .Case("sparse_linear", LayerKind::SparseLinear)
                  .Case("sparse_quantized_linear", LayerKind::SparseLinear)
                  .Case("embedding", LayerKind::Embedding)
                  .Case("embedding_bag", LayerKind::EmbeddingBag)
                  .Case("tensor", LayerKind::Tensor)
                  .Case("kwinners", LayerKind::KWinners)
                  .Case("kwinners2d", LayerKind::KWinners2d)
                  .Case("masked_linear", LayerKind::MaskedLinear)
                  .Case("masked_conv2d", LayerKind::MaskedConv2d)
                  .Case("masked_lstm", LayerKind::MaskedLstm)
                  .Default(std::nullopt);
  if (!kind) {
    diags.error(p.kindLoc, "unknown parameter kind '" + p.kindName +
                               "'; expected linear, sparse_linear, "
                               "sparse_quantized_linear, "
                               "masked_linear, masked_conv2d, masked_lstm, "
                               "embedding, "
                               "embedding_bag, "
                               "tensor, kwinners or kwinners2d");
    return false;
  }
  if (*kind == LayerKind::MaskedLinear)
    return resolveMaskedLinear(p, diags);
  if (*kind == LayerKind::MaskedConv2d)
    return resolveMaskedConv2d(p, diags);
  if (*kind == LayerKind::MaskedLstm)
    return resolveMaskedLstm(p, diags);
  if (*kind == LayerKind::KWinners || *kind == LayerKind::KWinners2d)
    return resolveKWinners(p, diags);
  ArrayRef<ArgSpec> specs;
  switch (*kind) {
  case LayerKind::Linear:
    specs = kLinearArgs;
    break;
  case LayerKind::SparseLinear:
    specs = p.kindName == "sparse_quantized_linear"
                ? ArrayRef<ArgSpec>(kSparseQuantizedLinearArgs)
                : ArrayRef<ArgSpec>(kSparseLinearArgs);
    break;
  case LayerKind::Embedding:
    specs = kEmbeddingArgs;
    break;
  case LayerKind::EmbeddingBag:
    specs = kEmbeddingBagArgs;
    break;
  case LayerKind::Tensor:
    specs = kTensorArgs;
    break;
  case LayerKind::MaskedLinear: // resolveMaskedLinear
  case LayerKind::MaskedConv2d: // resolveMaskedConv2d
  case LayerKind::MaskedLstm:   // resolveMaskedLstm
  case LayerKind::KWinners:     // resolveKWinners
  case LayerKind::KWinners2d:
    return false;
  }
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, specs, p.args, args))
    return false;

  // Every integer argument must be positive.
  bool ok = true;
  for (size_t i = 0, e = specs.size(); i != e; ++i) {
    if (specs[i].type != ArgType::Int || !args[i] ||
        args[i]->value.intValue > 0 ||
        StringRef(specs[i].name) == "padding_idx")
      continue;
    diags.error(args[i]->value.loc, "argument '" + Twine(specs[i].name) +
                                        "' of '" + p.kindName +
                                        "' must be positive");
    ok = false;
  }

  Layer l;
  l.kind = *kind;
  llvm::APInt count(128, 0);
  switch (*kind) {
  case LayerKind::Linear:
  case LayerKind::SparseLinear: {
    l.in = args[0]->value.intValue;
    l.out = args[1]->value.intValue;
    unsigned biasIdx = *kind == LayerKind::Linear ? 2 : 3;
    if (args[biasIdx])
      l.bias = args[biasIdx]->value.boolValue;
    if (*kind == LayerKind::SparseLinear) {
      l.sparsity = args[2] ? args[2]->value.getNumber() : 0.9;
      if (!(l.sparsity >= 0.0 && l.sparsity < 1.0)) {
        diags.error(args[2]->value.loc, "argument 'sparsity' of '" +
                                            p.kindName +
                                            "' must be in [0, 1)");
        ok = false;
      }
      if (args[4] && !resolveConnectivity(*args[4], args[2], l, diags))
        ok = false;
      if (!resolveDynamic(
              ArrayRef<const Argument *>(args).slice(5, kNumDynamicArgs),
              p.kindName, l, diags))
        ok = false;
      if (p.kindName == "sparse_quantized_linear" && !resolveQuantBits(
                                                         args, l, diags))
        ok = false;
    }
    count = toAPInt(l.in) * toAPInt(l.out);
    if (l.bias)
      count += toAPInt(l.out);
    break;
  }
  case LayerKind::Embedding:
  case LayerKind::EmbeddingBag:
    l.num = args[0]->value.intValue;
    l.dim = args[1]->value.intValue;
    count = toAPInt(l.num) * toAPInt(l.dim);
    {
      // padding_idx, max_norm, norm_type, scale_grad_by_freq follow num,
      // dim (and embedding_bag's mode).
      size_t o = *kind == LayerKind::EmbeddingBag ? 3 : 2;
      if (const Argument *a = args[o]) {
        l.paddingIdx = a->value.intValue;
        if (l.paddingIdx < 0 || l.paddingIdx >= l.num) {
          diags.error(a->value.loc, "argument 'padding_idx' of '" +
                                        p.kindName + "' must be in [0, " +
                                        Twine(l.num) + ")");
          ok = false;
        }
      }
      if (const Argument *a = args[o + 1]) {
        l.maxNorm = a->value.getNumber();
        if (!(l.maxNorm > 0)) {
          diags.error(a->value.loc, "argument 'max_norm' of '" + p.kindName +
                                        "' must be positive");
          ok = false;
        }
      }
      if (const Argument *a = args[o + 2]) {
        l.normType = a->value.getNumber();
        if (!(l.normType > 0)) {
          diags.error(a->value.loc, "argument 'norm_type' of '" + p.kindName +
                                        "' must be positive");
          ok = false;
        }
      }
      if (const Argument *a = args[o + 3])
        l.scaleGradByFreq = a->value.boolValue;
    }
    if (*kind == LayerKind::EmbeddingBag && args[2]) {
      auto m = llvm::StringSwitch<std::optional<BagMode>>(args[2]->value.text)
                   .Case("sum", BagMode::Sum)
                   .Case("mean", BagMode::Mean)
                   .Case("max", BagMode::Max)
                   .Default(std::nullopt);
      if (m) {
        l.mode = *m;
      } else {
        diags.error(args[2]->value.loc, "unknown bag mode '" +
                                            args[2]->value.text +
                                            "'; expected sum, mean or max");
        ok = false;
      }
    }
    break;
  case LayerKind::Tensor: {
    l.dims.push_back(args[0]->value.intValue);
    if (args[1])
      l.dims.push_back(args[1]->value.intValue);
    count = toAPInt(l.dims[0]);
    if (l.dims.size() == 2)
      count *= toAPInt(l.dims[1]);
    if (const Argument *init = args[2]) {
      auto ik = llvm::StringSwitch<std::optional<InitKind>>(init->value.text)
                    .Case("zeros", InitKind::Zeros)
                    .Case("normal", InitKind::Normal)
                    .Case("uniform", InitKind::Uniform)
                    .Default(std::nullopt);
      if (ik) {
        l.init = *ik;
      } else {
        diags.error(init->value.loc, "argument 'init' of 'tensor' must be "
                                     "one of zeros, normal, uniform");
        ok = false;
      }
    }
    if (const Argument *scale = args[3]) {
      l.scale = scale->value.getNumber();
      if (l.scale < 0) {
        diags.error(scale->value.loc,
                    "argument 'scale' of 'tensor' must be non-negative");
        ok = false;
      }
    }
    break;
  }
  case LayerKind::MaskedLinear: // resolveMaskedLinear
  case LayerKind::MaskedConv2d: // resolveMaskedConv2d
  case LayerKind::MaskedLstm:   // resolveMaskedLstm
  case LayerKind::KWinners:     // resolveKWinners
  case LayerKind::KWinners2d:
    return false;
  }
  if (!ok || !checkElementCount(diags, p, count))
    return false;
  l.numElements = static_cast<int64_t>(count.getZExtValue());
  if (l.kind == LayerKind::SparseLinear && l.pattern == Pattern::User) {
    l.nnz = static_cast<int64_t>(l.userCoordinates.size());
    l.sparsity = 1.0 - static_cast<double>(l.nnz) /
                           (static_cast<double>(l.in) * static_cast<double>(l.out));
  } else if (l.kind == LayerKind::SparseLinear) {
    l.nnz = std::llround((1.0 - l.sparsity) * static_cast<double>(l.in) *
                         static_cast<double>(l.out));
    if (l.nnz < 1) {
      diags.error(p.loc, "parameter '" + p.name +
                             "' has no nonzero weights: round((1 - sparsity) "
                             "* in * out) = 0");
      return false;
    }
    // Positions and coordinates of the CSR weight are 32-bit.
    if (l.nnz > kMaxElements - 1) {
      diags.error(p.loc, "parameter '" + p.name + "' stores " +
                             Twine(l.nnz) + " weights; the limit is " +
                             Twine(kMaxElements - 1) +
                             " (32-bit CSR indices)");
      return false;
    }
  }
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}

/// Resolves the keyword arguments every optimizer takes (`bound` holds the
/// kCommonOptArgs rows).
static bool resolveCommonOptArgs(ArrayRef<const Argument *> bound,
                                 Optimizer &opt, DiagEngine &diags) {
  bool ok = true;
  auto bad = [&](const Argument *a, const Twine &msg) {
    diags.error(a->value.loc, msg);
    ok = false;
  };
  if (const Argument *a = bound[0]) {
    StringRef m = a->value.text;
    if (m == "lazy")
      opt.sparse = SparseMode::Lazy;
    else if (m == "catchup")
      opt.sparse = SparseMode::Catchup;
    else if (m == "dense")
      opt.sparse = SparseMode::Dense;
    else
      bad(a, "unknown sparse mode '" + m + "'; expected lazy, catchup or dense");
  }
  if (const Argument *a = bound[1]) {
    opt.clipGradNorm = a->value.getNumber();
    if (!(opt.clipGradNorm >= 0))
      bad(a, "argument 'clip_grad_norm' must be non-negative");
  }
  if (const Argument *a = bound[2]) {
    StringRef k = a->value.text;
    if (k == "constant")
      opt.schedule = ScheduleKind::Constant;
    else if (k == "step")
      opt.schedule = ScheduleKind::Step;
    else if (k == "cosine")
      opt.schedule = ScheduleKind::Cosine;
    else
      bad(a, "unknown schedule '" + k + "'; expected constant, step or cosine");
  }
  if (const Argument *a = bound[3])
    opt.stepSize = a->value.intValue;
  if (const Argument *a = bound[4]) {
    opt.gamma = a->value.getNumber();
    if (!(opt.gamma > 0))
      bad(a, "argument 'gamma' must be positive");
  }
  if (const Argument *a = bound[5])
    opt.tMax = a->value.intValue;
  if (const Argument *a = bound[6])
    opt.etaMin = a->value.getNumber();
  if (const Argument *a = bound[7]) {
    opt.warmup = a->value.intValue;
    if (opt.warmup < 0)
      bad(a, "argument 'warmup' must be non-negative");
  }
  if (!ok)
    return false;
  // Fused row updates step each row as soon as its gradient is summed: only
  // lazy rows without global-norm clipping (which needs every gradient
  // first) keep the runtime's numerics.
  const bool fusable = opt.sparse == SparseMode::Lazy && opt.clipGradNorm == 0;
  if (const Argument *a = bound[8]) {
    opt.fused = a->value.boolValue;
    if (opt.fused && !fusable) {
      diags.error(a->value.loc, "'fused = true' needs sparse = lazy and no "
                                "clip_grad_norm");
      return false;
    }
  } else {
    opt.fused = fusable;
  }
  if (opt.schedule == ScheduleKind::Step && opt.stepSize <= 0) {
    diags.error(bound[2]->value.loc,
                "schedule 'step' needs step_size > 0");
    return false;
  }
  if (opt.schedule == ScheduleKind::Cosine && opt.tMax <= 0) {
    diags.error(bound[2]->value.loc, "schedule 'cosine' needs t_max > 0");
    return false;
  }
  return true;
}

bool sparsec::resolveOptimizer(OptimizerDecl &o, DiagEngine &diags) {
  const OptKindSpec *spec = nullptr;
  for (const OptKindSpec &k : optimizerSpecs())
    if (o.kindName == k.name)
      spec = &k;
  if (!spec) {
    diags.error(o.kindLoc, "unknown optimizer '" + o.kindName +
                               "'; expected sgd, adagrad, rowwise_adagrad, "
                               "rmsprop, adam or adamw");
    return false;
  }
  // lr first (positional), then the kind's arguments, then the common
  // keyword-only ones.
  std::vector<ArgSpec> table = {{"lr", ArgType::Number, spec->defaultLr <= 0}};
  for (const OptArg &a : spec->args)
    table.push_back({a.name, a.type, false});
  size_t common = table.size();
  table.insert(table.end(), std::begin(kCommonOptArgs),
               std::end(kCommonOptArgs));
  BoundArgs args;
  if (!bindArgs(diags, o.kindName, o.kindLoc, table, o.args, args))
    return false;

  Optimizer opt;
  opt.kind = spec->kind;
  opt.lr = args[0] ? args[0]->value.getNumber() : spec->defaultLr;
  bool ok = true;
  if (!(opt.lr > 0)) {
    diags.error(args[0]->value.loc,
                "argument 'lr' of '" + o.kindName + "' must be positive");
    ok = false;
  }
  for (size_t i = 0; i < spec->args.size(); ++i) {
    const OptArg &a = spec->args[i];
    const Argument *given = args[i + 1];
    if (a.flag) {
      opt.*a.flag = given ? given->value.boolValue : a.defaultValue != 0;
      continue;
    }
    double v = given ? given->value.getNumber() : a.defaultValue;
    opt.*a.number = v;
    const char *rule = nullptr;
    if (a.check == OptArg::NonNegative && !(v >= 0))
      rule = "must be non-negative";
    else if (a.check == OptArg::Positive && !(v > 0))
      rule = "must be positive";
    else if (a.check == OptArg::Beta && !(v >= 0 && v < 1))
      rule = "must be in [0, 1)";
    if (rule) {
      diags.error(given->value.loc, "argument '" + Twine(a.name) + "' of '" +
                                        o.kindName + "' " + rule);
      ok = false;
    }
  }
  if (!resolveCommonOptArgs(ArrayRef<const Argument *>(args).drop_front(common),
                            opt, diags))
    ok = false;
  if (ok && opt.kind == OptimizerKind::SGD && opt.nesterov &&
      (opt.momentum <= 0 || opt.dampening != 0)) {
    for (size_t i = 0; i < spec->args.size(); ++i)
      if (StringRef(spec->args[i].name) == "nesterov")
        diags.error(args[i + 1]->value.loc,
                    "nesterov momentum requires momentum > 0 and dampening = 0");
    ok = false;
  }
  if (!ok)
    return false;
  o.optimizer = opt;
  o.isResolved = true;
  return true;
}
