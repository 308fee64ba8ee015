//===- SemaKWinners.cpp - kwinners and kwinners2d parameters --------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks `param NAME : kwinners(n, percent_on, ...)` and
// `param NAME : kwinners2d(channels, percent_on, ..., local = false)`
// (nupic.torch KWinners / KWinners2d) and fills in ast::Layer: k and
// k_inference (for a global kwinners2d they depend on the input's H and W
// and are computed per application by Layer::kwinnersK), boosting, the duty
// cycle period and the boost decay (nupic's boost_strength_factor, applied
// every boost_decay_period train steps).
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Sema.h"
#include "SemaArgs.h"

#include "llvm/ADT/Twine.h"

#include <cmath>
#include <tuple>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::Twine;

namespace {

/// Rows of both tables (kwinners2d adds `local`).
enum Arg {
  Units,
  PercentOn,
  KInferenceFactor,
  BoostStrength,
  DutyCyclePeriod,
  BoostStrengthFactor,
  BoostDecayPeriod,
  Local
};

/// kwinners only: the winners per sample, instead of percent_on.
constexpr Arg WinnersK = Local;

const ArgSpec kKWinnersArgs[] = {
    {"n", ArgType::Int, true},
    {"percent_on", ArgType::Number, false},
    {"k_inference_factor", ArgType::Number, false, true},
    {"boost_strength", ArgType::Number, false, true},
    {"duty_cycle_period", ArgType::Int, false, true},
    {"boost_strength_factor", ArgType::Number, false, true},
    {"boost_decay_period", ArgType::Int, false, true},
    {"k", ArgType::Int, false, true}};
const ArgSpec kKWinners2dArgs[] = {
    {"channels", ArgType::Int, true},
    {"percent_on", ArgType::Number, true},
    {"k_inference_factor", ArgType::Number, false, true},
    {"boost_strength", ArgType::Number, false, true},
    {"duty_cycle_period", ArgType::Int, false, true},
    {"boost_strength_factor", ArgType::Number, false, true},
    {"boost_decay_period", ArgType::Int, false, true},
    {"local", ArgType::Bool, false, true}};

} // namespace

std::pair<int64_t, int64_t> Layer::kwinnersK(int64_t units) const {
  // Python's round (half to even) and int (toward zero), as nupic.torch:
  // KWinners takes int(k * k_inference_factor), KWinners2d
  // round(units * percent_on * k_inference_factor).
  double u = static_cast<double>(units);
  auto kk = static_cast<int64_t>(std::nearbyint(u * percentOn));
  auto ki = kind == LayerKind::KWinners
                ? static_cast<int64_t>(double(kk) * kInferenceFactor)
                : static_cast<int64_t>(
                      std::nearbyint(u * (percentOn * kInferenceFactor)));
  return {kk, ki};
}

bool sparsec::checkKWinnersK(const Layer &l, int64_t units, llvm::SMLoc loc,
                             DiagEngine &diags) {
  auto [k, ki] = l.kwinnersK(units);
  bool oneD = l.kind == LayerKind::KWinners;
  if (k < 1 || ki < 1) {
    if (oneD)
      diags.error(
          loc,
          "kwinners keeps no unit: k = round(n * percent_on) = " + Twine(k) +
              ", k_inference = int(k * k_inference_factor) = " + Twine(ki));
    else
      diags.error(loc,
                  "kwinners2d keeps no unit: k = round(" + Twine(units) +
                      " * percent_on) = " + Twine(k) +
                      ", k_inference = round(" + Twine(units) +
                      " * percent_on * k_inference_factor) = " + Twine(ki));
    return false;
  }
  if (ki > units) {
    diags.error(loc, "k_inference = " + Twine(ki) + " exceeds " +
                         (oneD ? "n" : "the units chosen among") + " = " +
                         Twine(units));
    return false;
  }
  return true;
}

bool sparsec::resolveKWinners(ParamDecl &p, DiagEngine &diags) {
  bool twoD = p.kindName == "kwinners2d";
  llvm::ArrayRef<ArgSpec> specs =
      twoD ? llvm::ArrayRef<ArgSpec>(kKWinners2dArgs) : kKWinnersArgs;
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, specs, p.args, args))
    return false;
  auto bad = [&](Arg i, const Twine &msg) {
    diags.error(args[i]->value.loc, msg);
    return false;
  };
  const std::string &kind = p.kindName;
  // The density: percent_on, or (kwinners) k / n.
  const Argument *kArg = twoD ? nullptr : args[WinnersK];
  if (args[PercentOn] && kArg) {
    diags.error(kArg->loc, "give either 'percent_on' or 'k' to '" + kind +
                               "', not both");
    return false;
  }
  if (!args[PercentOn] && !kArg) { // (kwinners2d requires percent_on)
    diags.error(p.kindLoc, "'kwinners' needs 'percent_on' (the fraction of "
                           "units that win) or 'k' (the winners per sample)");
    return false;
  }
  const Argument *density = kArg ? kArg : args[PercentOn];
  for (Arg i : {Units, DutyCyclePeriod, BoostDecayPeriod})
    if (args[i] && args[i]->value.intValue <= 0)
      return bad(i, "argument '" + Twine(specs[i].name) + "' of '" + kind +
                        "' must be positive");
  auto num = [&](Arg i, double dflt) {
    return args[i] ? args[i]->value.getNumber() : dflt;
  };
  Layer l;
  l.kind = twoD ? LayerKind::KWinners2d : LayerKind::KWinners;
  l.num = args[Units]->value.intValue;
  l.percentOn = num(PercentOn, 0);
  if (kArg) {
    int64_t k = kArg->value.intValue;
    if (k < 1 || k >= l.num)
      return bad(WinnersK, "argument 'k' of 'kwinners' must be in [1, n - 1]");
    l.percentOn = double(k) / double(l.num);
  }
  l.kInferenceFactor = num(KInferenceFactor, 1.5);
  l.boostStrength = num(BoostStrength, 1.0);
  l.dutyCyclePeriod =
      args[DutyCyclePeriod] ? args[DutyCyclePeriod]->value.intValue : 1000;
  l.boostStrengthFactor = num(BoostStrengthFactor, 1.0);
  l.local = twoD && args[Local] && args[Local]->value.boolValue;
  if (!(l.percentOn > 0 && l.percentOn < 1))
    return bad(PercentOn,
               "argument 'percent_on' of '" + kind + "' must be in (0, 1)");
  double inference = l.percentOn * l.kInferenceFactor;
  if (!(inference > 0 && inference < 1)) {
    diags.error(args[KInferenceFactor] ? args[KInferenceFactor]->value.loc
                                       : density->value.loc,
                (kArg ? "k / n" : "percent_on") +
                    Twine(" * k_inference_factor of '") + kind +
                    "' must be in (0, 1)");
    return false;
  }
  if (!(l.boostStrength >= 0))
    return bad(BoostStrength, "argument 'boost_strength' of '" + kind +
                                  "' must be non-negative");
  if (!(l.boostStrengthFactor > 0 && l.boostStrengthFactor <= 1))
    return bad(BoostStrengthFactor, "argument 'boost_strength_factor' of '" +
                                        kind + "' must be in (0, 1]");
  if (args[BoostDecayPeriod] && !args[BoostStrengthFactor]) {
    diags.error(args[BoostDecayPeriod]->loc,
                "'boost_decay_period' needs 'boost_strength_factor'");
    return false;
  }
  if (l.boostStrengthFactor < 1) {
    if (!args[BoostDecayPeriod])
      return bad(BoostStrengthFactor,
                 "boost_strength_factor < 1 needs 'boost_decay_period' (the "
                 "train steps between two decays, e.g. the steps of an "
                 "epoch)");
    l.boostDecayPeriod = args[BoostDecayPeriod]->value.intValue;
  }
  // A global kwinners2d chooses among C*H*W values: its k is checked where
  // it is applied.
  if (!twoD || l.local) {
    auto [k, ki] = l.kwinnersK(l.num);
    const Argument *at = k >= 1 && ki >= 1 && args[KInferenceFactor]
                             ? args[KInferenceFactor]
                             : density;
    if (!checkKWinnersK(l, l.num, at->value.loc, diags))
      return false;
    std::tie(l.k, l.kInference) = l.kwinnersK(l.num);
  }
  l.numElements = l.kwBufferSize();
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}
