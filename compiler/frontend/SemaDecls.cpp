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

#include "Diagnostics.h"
#include "Sema.h"

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <optional>

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
enum class ArgType { Int, Number, Bool, Name };

struct ArgSpec {
  const char *name;
  ArgType type;
  bool required;
  /// Keyword-only arguments must come after all others in a table.
  bool keywordOnly = false;
};

const ArgSpec kLinearArgs[] = {{"in", ArgType::Int, true},
                               {"out", ArgType::Int, true},
                               {"bias", ArgType::Bool, false}};
const ArgSpec kSparseLinearArgs[] = {{"in", ArgType::Int, true},
                                     {"out", ArgType::Int, true},
                                     {"sparsity", ArgType::Number, false},
                                     {"bias", ArgType::Bool, false}};
const ArgSpec kEmbeddingArgs[] = {{"num", ArgType::Int, true},
                                  {"dim", ArgType::Int, true}};
const ArgSpec kTensorArgs[] = {{"d0", ArgType::Int, true},
                               {"d1", ArgType::Int, false},
                               {"init", ArgType::Name, false, true},
                               {"scale", ArgType::Number, false, true}};
const ArgSpec kSgdArgs[] = {{"lr", ArgType::Number, true},
                            {"momentum", ArgType::Number, false},
                            {"dampening", ArgType::Number, false},
                            {"weight_decay", ArgType::Number, false},
                            {"nesterov", ArgType::Bool, false}};

/// Arguments bound to the rows of an ArgSpec table (nullptr = not given).
using BoundArgs = llvm::SmallVector<const Argument *, 8>;
} // namespace

//===----------------------------------------------------------------------===//
// Parameters and optimizer
//===----------------------------------------------------------------------===//

/// Binds `args` to the rows of `specs` and checks their types.
static bool bindArgs(DiagEngine &diags, StringRef kind, SMLoc kindLoc,
                     ArrayRef<ArgSpec> specs, const std::vector<Argument> &args,
                     BoundArgs &bound) {
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

bool sparsec::resolveParam(ParamDecl &p, DiagEngine &diags) {
  auto kind = llvm::StringSwitch<std::optional<LayerKind>>(p.kindName)
                  .Case("linear", LayerKind::Linear)
                  .Case("sparse_linear", LayerKind::SparseLinear)
                  .Case("embedding", LayerKind::Embedding)
                  .Case("tensor", LayerKind::Tensor)
                  .Default(std::nullopt);
  if (!kind) {
    diags.error(p.kindLoc, "unknown parameter kind '" + p.kindName +
                               "'; expected linear, sparse_linear, embedding "
                               "or tensor");
    return false;
  }
  ArrayRef<ArgSpec> specs;
  switch (*kind) {
  case LayerKind::Linear:
    specs = kLinearArgs;
    break;
  case LayerKind::SparseLinear:
    specs = kSparseLinearArgs;
    break;
  case LayerKind::Embedding:
    specs = kEmbeddingArgs;
    break;
  case LayerKind::Tensor:
    specs = kTensorArgs;
    break;
  }
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, specs, p.args, args))
    return false;

  // Every integer argument must be positive.
  bool ok = true;
  for (size_t i = 0, e = specs.size(); i != e; ++i) {
    if (specs[i].type != ArgType::Int || !args[i] ||
        args[i]->value.intValue > 0)
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
        diags.error(args[2]->value.loc,
                    "argument 'sparsity' of 'sparse_linear' must be in "
                    "[0, 1)");
        ok = false;
      }
    }
    count = toAPInt(l.in) * toAPInt(l.out);
    if (l.bias)
      count += toAPInt(l.out);
    break;
  }
  case LayerKind::Embedding:
    l.num = args[0]->value.intValue;
    l.dim = args[1]->value.intValue;
    count = toAPInt(l.num) * toAPInt(l.dim);
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
  }
  if (!ok || !checkElementCount(diags, p, count))
    return false;
  l.numElements = static_cast<int64_t>(count.getZExtValue());
  if (l.kind == LayerKind::SparseLinear) {
    l.nnz = std::llround((1.0 - l.sparsity) * static_cast<double>(l.in) *
                         static_cast<double>(l.out));
    if (l.nnz < 1) {
      diags.error(p.loc, "parameter '" + p.name +
                             "' has no nonzero weights: round((1 - sparsity) "
                             "* in * out) = 0");
      return false;
    }
  }
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}

bool sparsec::resolveOptimizer(OptimizerDecl &o, DiagEngine &diags) {
  if (o.kindName != "sgd") {
    diags.error(o.kindLoc,
                "unknown optimizer '" + o.kindName + "'; expected sgd");
    return false;
  }
  BoundArgs args;
  if (!bindArgs(diags, o.kindName, o.kindLoc, kSgdArgs, o.args, args))
    return false;
  Optimizer opt;
  opt.kind = OptimizerKind::SGD;
  opt.lr = args[0]->value.getNumber();
  if (args[1])
    opt.momentum = args[1]->value.getNumber();
  if (args[2])
    opt.dampening = args[2]->value.getNumber();
  if (args[3])
    opt.weightDecay = args[3]->value.getNumber();
  if (args[4])
    opt.nesterov = args[4]->value.boolValue;
  bool ok = true;
  if (!(opt.lr > 0)) {
    diags.error(args[0]->value.loc, "argument 'lr' of 'sgd' must be positive");
    ok = false;
  }
  if (opt.momentum < 0) {
    diags.error(args[1]->value.loc,
                "argument 'momentum' of 'sgd' must be non-negative");
    ok = false;
  }
  if (opt.weightDecay < 0) {
    diags.error(args[3]->value.loc,
                "argument 'weight_decay' of 'sgd' must be non-negative");
    ok = false;
  }
  if (ok && opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0)) {
    diags.error(args[4]->value.loc,
                "nesterov momentum requires momentum > 0 and dampening = 0");
    ok = false;
  }
  if (!ok)
    return false;
  o.optimizer = opt;
  o.isResolved = true;
  return true;
}
