//===- SemaDynamic.cpp - Dynamic sparsity arguments (SET, RigL) -----------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The keyword-only arguments `dynamic = none | set | rigl`, `delta_t`,
// `t_end`, `drop_fraction` and `max_size`, shared by sparse_linear
// (SemaDecls.cpp) and masked_linear (SemaMasked.cpp, whose dynamic form is
// a sparse_linear with the mask's pattern): their table rows and checks.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "SemaArgs.h"

#include "llvm/ADT/Twine.h"

#include <cassert>
#include <iterator>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::ArrayRef;
using llvm::StringRef;
using llvm::Twine;

namespace {
/// Rows in the order resolveDynamic reads them.
enum DynArg { Mode, DeltaT, TEnd, DropFraction, MaxSize, NumDynArgs };

const ArgSpec kDynamicArgs[] = {{"dynamic", ArgType::Name, false, true},
                                {"delta_t", ArgType::Int, false, true},
                                {"t_end", ArgType::Int, false, true},
                                {"drop_fraction", ArgType::Number, false, true},
                                {"max_size", ArgType::Int, false, true}};
static_assert(std::size(kDynamicArgs) == NumDynArgs &&
                  NumDynArgs == kNumDynamicArgs,
              "one row per DynArg");
} // namespace

std::vector<ArgSpec> sparsec::withDynamicArgs(std::vector<ArgSpec> head) {
  head.insert(head.end(), std::begin(kDynamicArgs), std::end(kDynamicArgs));
  return head;
}

bool sparsec::resolveDynamic(ArrayRef<const Argument *> a, StringRef kind,
                             Layer &l, DiagEngine &diags) {
  assert(a.size() == kNumDynamicArgs && "bound to the rows of kDynamicArgs");
  if (!a[Mode]) {
    for (const Argument *x : a.drop_front())
      if (x) {
        diags.error(x->loc, "'" + x->key +
                                "' needs 'dynamic = set' or "
                                "'dynamic = rigl'");
        return false;
      }
    return true;
  }
  StringRef mode = a[Mode]->value.text;
  if (mode == "none")
    return true;
  if (mode != "set" && mode != "rigl") {
    diags.error(a[Mode]->value.loc, "unknown dynamic sparsity '" + mode +
                                        "'; expected none, set or rigl");
    return false;
  }
  if (mode == "set" && a[MaxSize]) {
    diags.error(a[MaxSize]->loc,
                "'max_size' needs 'dynamic = rigl' (it bounds the "
                "gradient scores computed at once)");
    return false;
  }
  l.dynamic = mode.str();
  l.deltaT = a[DeltaT] ? a[DeltaT]->value.intValue : 100;
  if (a[MaxSize])
    l.maxSize = a[MaxSize]->value.intValue; // checked positive by the caller
  if (!a[TEnd]) {
    diags.error(a[Mode]->value.loc, "dynamic = " + mode +
                                        " needs 't_end' (the last step that "
                                        "updates the pattern)");
    return false;
  }
  l.tEnd = a[TEnd]->value.intValue;
  l.dropFraction = a[DropFraction] ? a[DropFraction]->value.getNumber() : 0.3;
  if (!(l.dropFraction > 0 && l.dropFraction < 1)) {
    diags.error(a[DropFraction]->value.loc, "argument 'drop_fraction' of '" +
                                                Twine(kind) +
                                                "' must be in (0, 1)");
    return false;
  }
  return true;
}
