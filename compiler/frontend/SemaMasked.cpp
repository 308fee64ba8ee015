//===- SemaMasked.cpp - masked_linear and its pruning schedule ------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks `param NAME : masked_linear(in, out, ...)`: a dense weight times a
// 0/1 mask (random with a given sparsity/density, or read from a mask file
// in the connectivity-file format), with an optional pruning schedule
// (`prune = magnitude | gradual | structured` and its keyword arguments)
// or dynamic sparsity (`dynamic = set | rigl`, sparse_linear's arguments).
// A static mask whose density is below `csr_below`, and every dynamic one,
// becomes a sparse_linear with that pattern (a CSR weight; no mask is
// stored).
//
//===----------------------------------------------------------------------===//

#include "Connectivity.h"
#include "Diagnostics.h"
#include "SemaArgs.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/Twine.h"

#include <cassert>
#include <cmath>
#include <optional>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::StringRef;
using llvm::Twine;

namespace {

/// Densities below this become a CSR weight unless `csr_below` overrides it
/// (docs/language.md: generic CSR kernels beat dense ones on CPU from about
/// 90% sparsity).
constexpr double kDefaultCsrBelow = 0.1;

enum Arg {
  In,
  Out,
  Sparsity,
  Bias,
  Density,
  Mask,
  CsrBelow,
  Prune,
  Initial,
  Final,
  Begin,
  End,
  Every,
  Scope,
  Norm,
  Dynamic, // and the other kNumDynamicArgs rows of withDynamicArgs
  NumArgs = Dynamic + kNumDynamicArgs
};

const ArgSpec kPruneArgs[] = {
    {"prune", ArgType::Name, false, true},
    {"initial", ArgType::Number, false, true},
    {"final", ArgType::Number, false, true},
    {"begin", ArgType::Int, false, true},
    {"end", ArgType::Int, false, true},
    {"every", ArgType::Int, false, true},
    {"scope", ArgType::Name, false, true},
    {"norm", ArgType::Name, false, true}};

const std::vector<ArgSpec> kMaskedLinearArgs = withDynamicArgs(
    withPruneArgs({{"in", ArgType::Int, true},
                   {"out", ArgType::Int, true},
                   {"sparsity", ArgType::Number, false},
                   {"bias", ArgType::Bool, false},
                   {"density", ArgType::Number, false, true},
                   {"mask", ArgType::NameOrString, false, true},
                   {"csr_below", ArgType::Number, false, true}}));

class MaskedChecker {
public:
  MaskedChecker(ParamDecl &p, DiagEngine &diags, const BoundArgs &args)
      : p(p), diags(diags), args(args) {}

  bool run(Layer &l);
  /// The mask (sparsity, density or mask) and pruning arguments of a layer
  /// whose kind, `out` and weight shape are set (masked_conv2d).
  bool resolveMaskAndPrune(Layer &l) {
    resolvePrune(l);
    return resolveMask(l) && ok;
  }

private:
  ParamDecl &p;
  DiagEngine &diags;
  const BoundArgs &args;
  bool ok = true;

  const Argument *arg(Arg a) const { return args[a]; }
  double number(Arg a, double dflt) const {
    return args[a] ? args[a]->value.getNumber() : dflt;
  }
  int64_t integer(Arg a, int64_t dflt) const {
    return args[a] ? args[a]->value.intValue : dflt;
  }
  void error(Arg a, const Twine &msg) {
    diags.error(args[a] ? args[a]->value.loc : p.kindLoc, msg);
    ok = false;
  }
  bool resolveMask(Layer &l);
  void resolvePrune(Layer &l);
  void resolveDynamic(Layer &l);
  /// Columns of the weight matrix the mask covers.
  static int64_t cols(const Layer &l) {
    return l.kind == LayerKind::MaskedConv2d ? l.convCols() : l.in;
  }
};

bool MaskedChecker::resolveMask(Layer &l) {
  if (arg(Sparsity) && arg(Density))
    error(Density, "'sparsity' and 'density' cannot both be given");
  double sparsity = 0.0;
  if (arg(Sparsity)) {
    sparsity = number(Sparsity, 0.0);
    if (!(sparsity >= 0.0 && sparsity < 1.0))
      error(Sparsity, "argument 'sparsity' of '" + Twine(p.kindName) +
                          "' must be in [0, 1)");
  }
  if (arg(Density)) {
    double d = number(Density, 1.0);
    sparsity = 1.0 - d;
    if (!(d > 0.0 && d <= 1.0))
      error(Density, "argument 'density' of '" + Twine(p.kindName) +
                         "' must be in (0, 1]");
  }
  l.sparsity = sparsity;
  if (const Argument *m = arg(Mask)) {
    bool list = m->value.kind == ArgValue::Kind::List;
    if (m->value.kind != ArgValue::Kind::String && !list) {
      error(Mask, "argument 'mask' of '" + Twine(p.kindName) +
                      "' must be a mask file name in quotes or an inline "
                      "list");
      return false;
    }
    for (Arg a : {Sparsity, Density})
      if (arg(a))
        error(a, "'" + Twine(kMaskedLinearArgs[a].name) +
                     "' cannot be given with a mask file (the file sets the "
                     "mask)");
    if (!ok)
      return false;
    if (!readPattern(diags, m->value, "mask", l.out, cols(l), l.userPositions,
                     l.userCoordinates))
      return ok = false;
    if (l.userCoordinates.empty()) {
      error(Mask, list ? Twine("the mask list has no ones")
                       : "mask file '" + m->value.text + "' has no ones");
      return false;
    }
    l.pattern = Pattern::User;
    l.connectivityFile = list ? "" : m->value.text;
    l.nnz = static_cast<int64_t>(l.userCoordinates.size());
    l.sparsity = 1.0 - double(l.nnz) / (double(cols(l)) * double(l.out));
    return true;
  }
  if (!ok)
    return false;
  l.nnz = std::llround((1.0 - l.sparsity) * double(cols(l)) * double(l.out));
  if (l.nnz < 1) {
    diags.error(p.loc, "parameter '" + p.name +
                           "' has no nonzero weights: round((1 - sparsity) * "
                           "in * out) = 0");
    return ok = false;
  }
  return true;
}

void MaskedChecker::resolvePrune(Layer &l) {
  static const Arg kScheduleArgs[] = {Initial, Final, Begin, End,
                                      Every,   Scope, Norm};
  if (!arg(Prune) || arg(Prune)->value.text == "none") {
    for (Arg a : kScheduleArgs)
      if (arg(a))
        error(a, "'" + Twine(kMaskedLinearArgs[a].name) +
                     "' needs 'prune' (magnitude, gradual or structured)");
    return;
  }
  StringRef kind = arg(Prune)->value.text;
  if (kind != "magnitude" && kind != "gradual" && kind != "structured") {
    error(Prune, "unknown pruning '" + kind +
                     "'; expected none, magnitude, gradual or structured");
    return;
  }
  l.prune = kind.str();
  // Which schedule arguments each kind takes.
  auto takes = [&](Arg a) {
    if (a == Scope)
      return kind != "structured";
    if (a == Norm)
      return kind == "structured";
    if (a == Initial || a == End || a == Every)
      return kind != "magnitude";
    return true;
  };
  for (Arg a : kScheduleArgs)
    if (arg(a) && !takes(a))
      error(a, "'" + Twine(kMaskedLinearArgs[a].name) +
                   "' is not an argument of prune = " + kind);
  if (!arg(Final))
    error(Prune, "prune = " + kind + " needs 'final' (the target sparsity)");
  if (kind == "gradual" && !arg(End))
    error(Prune, "prune = gradual needs 'end' (the last pruning step)");
  if (!ok)
    return;
  l.pruneFinal = number(Final, 0.0);
  if (!(l.pruneFinal >= 0.0 && l.pruneFinal < 1.0))
    error(Final, "argument 'final' of '" + Twine(p.kindName) +
                     "' must be in [0, 1)");
  l.pruneBegin = integer(Begin, 1);
  l.pruneEnd = integer(End, l.pruneBegin);
  l.pruneEvery = integer(Every, 1);
  l.pruneInitial = number(Initial, arg(End) ? 0.0 : l.pruneFinal);
  if (!(l.pruneInitial >= 0.0 && l.pruneInitial <= l.pruneFinal))
    error(Initial, "argument 'initial' of '" + Twine(p.kindName) +
                       "' must be in [0, final]");
  if (l.pruneEnd < l.pruneBegin)
    error(End, "argument 'end' of '" + Twine(p.kindName) +
                   "' must be >= 'begin' (" +
                   Twine(l.pruneBegin) + ")");
  else if ((l.pruneEnd - l.pruneBegin) % l.pruneEvery != 0)
    error(End, "'end' - 'begin' (" + Twine(l.pruneEnd - l.pruneBegin) +
                   ") must be a multiple of 'every' (" + Twine(l.pruneEvery) +
                   ")");
  if (const Argument *s = arg(Scope)) {
    if (s->value.text == "global")
      l.pruneGlobal = true;
    else if (s->value.text != "layer")
      error(Scope,
            "unknown scope '" + s->value.text + "'; expected layer or global");
  }
  if (const Argument *n = arg(Norm)) {
    if (n->value.text == "l1" || n->value.text == "l2")
      l.pruneNorm = n->value.text == "l1" ? 1 : 2;
    else
      error(Norm, "unknown norm '" + n->value.text + "'; expected l1 or l2");
  }
}

/// `dynamic = set | rigl` with sparse_linear's arguments and checks: the
/// grow-and-prune machinery works on a CSR pattern, so it excludes pruning
/// the mask and a dense mask (`csr_below = 0`).
void MaskedChecker::resolveDynamic(Layer &l) {
  if (!sparsec::resolveDynamic(llvm::ArrayRef<const Argument *>(args).slice(
                                   Dynamic, kNumDynamicArgs),
                               p.kindName, l, diags)) {
    ok = false;
    return;
  }
  if (l.dynamic.empty())
    return;
  if (!l.prune.empty())
    error(Dynamic, "'dynamic' and 'prune' cannot be combined on "
                   "masked_linear (a dynamic mask is grown and pruned by "
                   "its own schedule)");
  if (arg(CsrBelow) && number(CsrBelow, 1.0) == 0.0)
    error(CsrBelow, "'csr_below = 0' asks for a dense mask, but a dynamic "
                    "masked_linear is always a CSR weight");
}

bool MaskedChecker::run(Layer &l) {
  // Every integer argument must be positive (sparse_linear's check).
  for (unsigned a = 0; a != NumArgs; ++a)
    if (kMaskedLinearArgs[a].type == ArgType::Int && arg(Arg(a)) &&
        arg(Arg(a))->value.intValue <= 0)
      error(Arg(a), "argument '" + Twine(kMaskedLinearArgs[a].name) +
                        "' of 'masked_linear' must be positive");
  if (!ok)
    return false;
  l.kind = LayerKind::MaskedLinear;
  l.in = arg(In)->value.intValue;
  l.out = arg(Out)->value.intValue;
  if (arg(Bias))
    l.bias = arg(Bias)->value.boolValue;
  // Weight, bias and mask: at most kMaxElements each and together.
  __int128 count = __int128(l.in) * l.out * 2 + (l.bias ? l.out : 0);
  if (count > kMaxElements) {
    diags.error(p.loc, "parameter '" + p.name + "' has " +
                           Twine(int64_t(count)) +
                           " elements (weight, mask and bias); the limit is " +
                           Twine(kMaxElements));
    return false;
  }
  l.numElements = static_cast<int64_t>(count);
  resolvePrune(l);
  resolveDynamic(l);
  double csrBelow = number(CsrBelow, kDefaultCsrBelow);
  if (!(csrBelow >= 0.0 && csrBelow <= 1.0))
    error(CsrBelow, "argument 'csr_below' of 'masked_linear' must be in "
                    "[0, 1]");
  if (!resolveMask(l) || !ok)
    return false;
  // A static mask sparse enough, or a dynamic one: a sparse_linear with the
  // mask's pattern.
  double density = double(l.nnz) / (double(l.in) * double(l.out));
  if (l.prune.empty() && (density < csrBelow || !l.dynamic.empty())) {
    l.kind = LayerKind::SparseLinear;
    l.numElements = l.in * l.out + (l.bias ? l.out : 0);
  }
  return true;
}

/// The schedule of `l` as a comparable tuple.
auto scheduleOf(const Layer &l) {
  return std::make_tuple(l.prune, l.pruneInitial, l.pruneFinal, l.pruneBegin,
                         l.pruneEnd, l.pruneEvery);
}

} // namespace

bool sparsec::resolveMaskedLinear(ParamDecl &p, DiagEngine &diags) {
  assert(kMaskedLinearArgs.size() == NumArgs && "one row per Arg");
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, kMaskedLinearArgs, p.args, args))
    return false;
  Layer l;
  if (!MaskedChecker(p, diags, args).run(l))
    return false;
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}

bool sparsec::resolveMaskAndPrune(ParamDecl &p, DiagEngine &diags,
                                  const BoundArgs &args, Layer &l) {
  return MaskedChecker(p, diags, args).resolveMaskAndPrune(l);
}

std::vector<ArgSpec> sparsec::withPruneArgs(std::initializer_list<ArgSpec> head) {
  std::vector<ArgSpec> v(head);
  v.insert(v.end(), std::begin(kPruneArgs), std::end(kPruneArgs));
  return v;
}

llvm::ArrayRef<ArgSpec> sparsec::maskedLinearArgs() {
  return kMaskedLinearArgs;
}

BoundArgs sparsec::rebindToMaskedLinearArgs(llvm::ArrayRef<ArgSpec> specs,
                                            const BoundArgs &args) {
  BoundArgs r(kMaskedLinearArgs.size(), nullptr);
  for (size_t i = 0; i < kMaskedLinearArgs.size(); ++i)
    for (size_t j = 0; j < specs.size(); ++j)
      if (StringRef(kMaskedLinearArgs[i].name) == specs[j].name)
        r[i] = args[j];
  return r;
}

bool sparsec::checkGlobalPruning(const Model &model, DiagEngine &diags) {
  const ParamDecl *first = nullptr;
  for (const auto &p : model.params) {
    if (!p->isResolved ||
        (p->layer.kind != LayerKind::MaskedLinear &&
         p->layer.kind != LayerKind::MaskedConv2d &&
         p->layer.kind != LayerKind::MaskedLstm) ||
        !p->layer.pruneGlobal)
      continue;
    if (!first) {
      first = p.get();
      continue;
    }
    if (scheduleOf(p->layer) == scheduleOf(first->layer))
      continue;
    diags.error(p->loc, "global pruning needs the same schedule in every "
                        "'scope = global' layer; '" +
                            p->name + "' differs from '" + first->name + "'");
    diags.note(first->loc, "'" + first->name + "' is declared here");
    return false;
  }
  return true;
}
