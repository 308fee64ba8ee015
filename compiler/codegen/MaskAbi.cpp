//===- MaskAbi.cpp - Masks and pruning schedules in the C ABI -------------===//
//
// The mask of a masked_linear or masked_conv2d (whose weight is the matrix
// [out, in / groups * kh * kw]) is a rank-2 SPARSEC_LAYOUT_BUFFER parameter
// (`<layer>.weight_mask`) whose descriptor names the weight it multiplies,
// how many ones it starts with, and its pruning schedule (runtime.h,
// "ABI 5 (pruning)"). This file reads those from sdl.param and writes them
// into the descriptor initializer.
//
//===----------------------------------------------------------------------===//

#include "codegen/ModelAbi.h"
#include "sdl/SdlDialect.h"

#include "llvm/ADT/StringExtras.h"

#include <cstdio>

using namespace mlir;
using namespace sparsec;

void sparsec::collectMaskAbi(Operation *param, AbiParam &ap) {
  auto p = cast<sdl::ParamOp>(param);
  if (!p.isMask())
    return;
  ap.maskOf = p.getMaskOf().value_or("").str();
  ap.ones = static_cast<int64_t>(p.getOnes().value_or(0));
  DictionaryAttr prune = p.getPruneAttr();
  if (!prune)
    return;
  auto num = [&](StringRef key) {
    auto f = prune.getAs<FloatAttr>(key);
    return f ? f.getValueAsDouble() : 0.0;
  };
  auto integer = [&](StringRef key, int64_t dflt) {
    auto i = prune.getAs<IntegerAttr>(key);
    return i ? i.getInt() : dflt;
  };
  auto kind = prune.getAs<StringAttr>("kind");
  ap.prune = kind ? kind.str() : "";
  ap.pruneInitial = num("initial");
  ap.pruneFinal = num("final");
  ap.pruneBegin = integer("begin", 1);
  ap.pruneEnd = integer("end", ap.pruneBegin);
  ap.pruneEvery = integer("every", 1);
  ap.pruneNorm = integer("norm", 1);
  auto global = prune.getAs<BoolAttr>("global");
  ap.pruneGlobal = global && global.getValue();
}

std::string sparsec::maskDescFields(const ModelAbi &abi, size_t k) {
  const AbiParam &p = abi.params[k];
  if (p.kind != "mask")
    return "";
  size_t weight = 0;
  while (weight < abi.params.size() && abi.params[weight].name != p.maskOf)
    ++weight;
  auto exact = [](double v) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  std::string s = ", .mask_of = " + std::to_string(weight + 1) +
                  ", .mask_ones = " + std::to_string(p.ones);
  if (p.prune.empty())
    return s;
  return s + ", .prune = SPARSEC_PRUNE_" + llvm::StringRef(p.prune).upper() +
         ", .prune_global = " + (p.pruneGlobal ? "1" : "0") +
         ", .prune_norm = " + std::to_string(p.pruneNorm) +
         ", .prune_initial = " + exact(p.pruneInitial) +
         ", .prune_final = " + exact(p.pruneFinal) +
         ", .prune_begin = " + std::to_string(p.pruneBegin) +
         ", .prune_end = " + std::to_string(p.pruneEnd) +
         ", .prune_every = " + std::to_string(p.pruneEvery);
}
