//===- SemaLstm.cpp - masked_lstm: a one-layer LSTM with masked weights ---===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks `param NAME : masked_lstm(input_size, hidden_size, batch_first,
// bias, sparsity, ...)`: PyTorch's one-layer nn.LSTM (gates i, f, g, o)
// whose weight_ih [4H, I] and weight_hh [4H, H] are each multiplied by a
// 0/1 mask. The mask density and the pruning schedule are masked_linear's
// arguments, checked by resolveMaskAndPrune (SemaMasked.cpp); both masks
// get the same sparsity and schedule. The input is [B, T, I] with
// batch_first = true, else sequence-first [T, B, I]; `output = last` makes
// the layer's value the last hidden state [B, H] instead of the sequence
// ([B, T, H] or [T, B, H]).
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Sema.h"
#include "SemaArgs.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

#include <cmath>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::StringRef;
using llvm::Twine;

namespace {

enum Arg { In, Hidden, BatchFirst, Bias, Sparsity, Density, Output };

const std::vector<ArgSpec> kMaskedLstmArgs =
    withPruneArgs({{"input_size", ArgType::Int, true},
                   {"hidden_size", ArgType::Int, true},
                   {"batch_first", ArgType::Bool, false},
                   {"bias", ArgType::Bool, false},
                   {"sparsity", ArgType::Number, false},
                   {"density", ArgType::Number, false, true},
                   {"output", ArgType::Name, false, true}});

/// Checks the layer-specific arguments into `l` (before the mask).
bool checkShape(ParamDecl &p, DiagEngine &diags, const BoundArgs &args,
                Layer &l) {
  bool ok = true;
  for (Arg a : {In, Hidden}) {
    int64_t v = args[a]->value.intValue;
    // 4 * hidden_size rows stay far inside int64 below this bound.
    if (v <= 0 || v > kMaxElements) {
      diags.error(args[a]->value.loc,
                  "argument '" + Twine(kMaskedLstmArgs[a].name) +
                      "' of 'masked_lstm' must be positive and at most " +
                      Twine(kMaxElements));
      ok = false;
    }
  }
  l.kind = LayerKind::MaskedLstm;
  l.in = args[In]->value.intValue;
  l.hidden = args[Hidden]->value.intValue;
  l.out = 4 * l.hidden;
  if (args[Bias])
    l.bias = args[Bias]->value.boolValue;
  l.batchFirst = args[BatchFirst] && args[BatchFirst]->value.boolValue;
  if (const Argument *o = args[Output]) {
    if (o->value.text == "last")
      l.lstmLast = true;
    else if (o->value.text != "sequence") {
      diags.error(o->value.loc, "unknown output '" + o->value.text +
                                    "'; expected sequence or last");
      ok = false;
    }
  }
  if (!ok)
    return false;
  // weight_ih, weight_hh, their masks, and two biases.
  __int128 count = (__int128(l.out) * l.in + __int128(l.out) * l.hidden) * 2 +
                   (l.bias ? 2 * l.out : 0);
  if (count > kMaxElements) {
    diags.error(p.loc, "parameter '" + p.name + "' has " +
                           Twine(int64_t(count)) +
                           " elements (weights, masks and biases); the limit "
                           "is " +
                           Twine(kMaxElements));
    return false;
  }
  l.numElements = static_cast<int64_t>(count);
  return true;
}

} // namespace

bool sparsec::resolveMaskedLstm(ParamDecl &p, DiagEngine &diags) {
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, kMaskedLstmArgs, p.args, args))
    return false;
  Layer l;
  if (!checkShape(p, diags, args, l))
    return false;
  // Sets the sparsity, the pruning schedule and weight_ih's ones.
  if (!resolveMaskAndPrune(p, diags,
                           rebindToMaskedLinearArgs(kMaskedLstmArgs, args), l))
    return false;
  l.nnzHh = std::llround((1.0 - l.sparsity) * double(l.out) * double(l.hidden));
  if (l.nnzHh < 1) {
    diags.error(p.loc, "parameter '" + p.name +
                           "' has no nonzero weights: round((1 - sparsity) * "
                           "4 * hidden_size * hidden_size) = 0");
    return false;
  }
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}

Type sparsec::applyMaskedLstm(const CallExpr &c, const ParamDecl &p,
                              const Type &t, StringRef batch,
                              DiagEngine &diags) {
  const Layer &l = p.layer;
  bool layoutOk = l.batchFirst ? t.hasBatchDim() : t.isSequenceFirst();
  if (t.elem != ElemType::F32 || t.getRank() != 3 || !layoutOk ||
      t.shape[2] != l.in) {
    std::string want = l.batchFirst ? "[" + batch.str() + ", T, "
                                    : "[T, " + batch.str() + ", ";
    diags.error(c.getLoc(),
                "masked_lstm '" + p.name + "' expects an f32 input of shape " +
                    want + Twine(l.in) + "], got " + typeToString(t, batch) +
                    (l.batchFirst ? "" : " (batch_first = false)"));
    return Type();
  }
  if (l.lstmLast)
    return Type(ElemType::F32, {kBatch, l.hidden});
  int64_t steps = l.batchFirst ? t.shape[1] : t.shape[0];
  return l.batchFirst ? Type(ElemType::F32, {kBatch, steps, l.hidden})
                      : Type(ElemType::F32, {steps, kBatch, l.hidden});
}
