//===- SemaConv.cpp - masked_conv2d --------------------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Checks `param NAME : masked_conv2d(in_channels, out_channels, kernel_size,
// stride, padding, dilation, groups, bias, sparsity, ...)`, a Hadamard-
// masked nn.Conv2d (kernel_size, stride, padding and dilation an integer
// or a pair [height, width]): the weight [out, in / groups, kh, kw] is kept as
// the matrix [out, in / groups * kh * kw] (row-major, PyTorch's
// `weight.view(out, -1)`) with a 0/1 mask of the same shape, so its mask
// and pruning arguments are masked_linear's (SemaMasked.cpp), and
// structured pruning removes whole output channels (rows). Applied to an
// f32 [B, in, H, W] value, it gives [B, out, OH, OW] with PyTorch's output
// size.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Sema.h"
#include "SemaArgs.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

#include <array>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace {

enum Arg { In, Out, Kernel, Stride, Padding, Dilation, Groups, Bias };

const std::vector<ArgSpec> kMaskedConv2dArgs =
    withPruneArgs({{"in_channels", ArgType::Int, true},
                   {"out_channels", ArgType::Int, true},
                   {"kernel_size", ArgType::IntOrPair, true},
                   {"stride", ArgType::IntOrPair, false},
                   {"padding", ArgType::IntOrPair, false},
                   {"dilation", ArgType::IntOrPair, false},
                   {"groups", ArgType::Int, false},
                   {"bias", ArgType::Bool, false},
                   {"sparsity", ArgType::Number, false},
                   {"density", ArgType::Number, false, true},
                   {"mask", ArgType::NameOrString, false, true}});

} // namespace

bool sparsec::resolveMaskedConv2d(ParamDecl &p, DiagEngine &diags) {
  BoundArgs args;
  if (!bindArgs(diags, p.kindName, p.kindLoc, kMaskedConv2dArgs, p.args, args))
    return false;
  bool ok = true;
  // Each size argument as [height, width] (an integer is both), every entry
  // checked where it is written.
  auto pair = [&](Arg a, int64_t dflt) {
    std::array<int64_t, 2> r{dflt, dflt};
    const Argument *arg = args[a];
    if (!arg)
      return r;
    bool isPair = arg->value.kind == ArgValue::Kind::List;
    for (int i = 0; i < 2; ++i) {
      int64_t v = isPair ? arg->value.rows[0][i].value : arg->value.intValue;
      SMLoc at = isPair ? arg->value.rows[0][i].loc : arg->value.loc;
      // Sizes at most 2^31 keep every shape computation within int64.
      bool bad = a == Padding ? v < 0 : v <= 0;
      if ((bad || v > kMaxElements) && (i == 0 || isPair)) {
        diags.error(at, "argument '" + Twine(kMaskedConv2dArgs[a].name) +
                            "' of 'masked_conv2d' must be " +
                            (a == Padding ? "non-negative" : "positive") +
                            " and at most " + Twine(kMaxElements));
        ok = false;
      }
      r[i] = v;
    }
    return r;
  };
  Layer l;
  l.kind = LayerKind::MaskedConv2d;
  l.in = pair(In, 0)[0];
  l.out = pair(Out, 0)[0];
  l.groups = pair(Groups, 1)[0];
  l.kernel = pair(Kernel, 1);
  l.stride = pair(Stride, 1);
  l.padding = pair(Padding, 0);
  l.dilation = pair(Dilation, 1);
  if (!ok)
    return false;
  if (args[Bias])
    l.bias = args[Bias]->value.boolValue;
  for (Arg a : {In, Out}) {
    int64_t channels = a == In ? l.in : l.out;
    if (channels % l.groups == 0)
      continue;
    diags.error(args[a]->value.loc, "'" + Twine(kMaskedConv2dArgs[a].name) +
                                        "' (" + Twine(channels) +
                                        ") must be divisible by 'groups' (" +
                                        Twine(l.groups) + ")");
    ok = false;
  }
  if (!ok)
    return false;
  // Weight, mask and bias: at most kMaxElements together.
  __int128 count =
      __int128(l.out) * (l.in / l.groups) * l.kernel[0] * l.kernel[1] * 2 +
      (l.bias ? l.out : 0);
  if (count > kMaxElements) {
    diags.error(p.loc, "parameter '" + p.name + "' has " +
                           Twine(int64_t(count)) +
                           " elements (weight, mask and bias); the limit is " +
                           Twine(kMaxElements));
    return false;
  }
  l.numElements = static_cast<int64_t>(count);
  if (!resolveMaskAndPrune(
          p, diags, rebindToMaskedLinearArgs(kMaskedConv2dArgs, args), l))
    return false;
  p.layer = std::move(l);
  p.isResolved = true;
  return true;
}

Type sparsec::applyMaskedConv2d(const CallExpr &c, const ParamDecl &p,
                                const Type &t, StringRef batch,
                                DiagEngine &diags) {
  const Layer &l = p.layer;
  if (t.elem != ElemType::F32 || t.getRank() != 4 || !t.hasBatchDim() ||
      t.shape[1] != l.in) {
    diags.error(c.getLoc(), "masked_conv2d '" + p.name +
                                "' expects an f32 input of shape [" + batch +
                                ", " + Twine(l.in) + ", H, W], got " +
                                typeToString(t, batch));
    return Type();
  }
  Type result(ElemType::F32, {kBatch, l.out, 0, 0});
  for (int i = 0; i < 2; ++i) {
    int64_t padded = t.shape[2 + i] + 2 * l.padding[i];
    int64_t extent = l.dilation[i] * (l.kernel[i] - 1) + 1;
    if (extent > padded) {
      diags.error(c.getLoc(),
                  "masked_conv2d '" + p.name + "': the kernel spans " +
                      Twine(extent) + " (dilation * (kernel_size - 1) + 1) " +
                      (i == 0 ? "rows" : "columns") +
                      ", more than the padded input's " + Twine(padded));
      return Type();
    }
    result.shape[2 + i] = (padded - extent) / l.stride[i] + 1;
  }
  return result;
}
