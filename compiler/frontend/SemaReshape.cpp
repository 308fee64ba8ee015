//===- SemaReshape.cpp - flatten and unflatten ----------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The result types of the reshape builtins (checked by Sema's checkCall):
// `flatten(x)`: [B, d1, ..., dk] -> [B, d1 * ... * dk], and
// `unflatten(x, d1, ..., dk)`: [B, d1 * ... * dk] -> [B, d1, ..., dk], whose
// dimensions are integer literals (the only numbers allowed in `forward`).
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "Sema.h"

#include "llvm/ADT/Twine.h"

#include <cmath>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::StringRef;
using llvm::Twine;

Type sparsec::checkFlatten(const CallExpr &c, StringRef batch,
                           DiagEngine &diags) {
  const Type &t = c.args[0]->type;
  if (t.elem != ElemType::F32 || t.getRank() < 2 || !t.hasBatchDim()) {
    diags.error(c.getLoc(), "'flatten' expects an f32 value of shape [" +
                                batch + ", ...], got " +
                                typeToString(t, batch));
    return Type();
  }
  // The per-example size is already within the limit.
  int64_t size = 1;
  for (size_t i = 1, e = t.shape.size(); i != e; ++i)
    size *= t.shape[i];
  return Type(ElemType::F32, {kBatch, size});
}

Type sparsec::checkUnflatten(const CallExpr &c, StringRef batch,
                             DiagEngine &diags) {
  std::vector<int64_t> shape{kBatch};
  double size = 1;
  for (size_t i = 1, e = c.args.size(); i != e; ++i) {
    auto *d = llvm::dyn_cast<NumberExpr>(c.args[i].get());
    size *= d ? d->value : 0;
    if (!d || !(d->value >= 1) || d->value != std::floor(d->value) ||
        size > double(kMaxElements)) {
      diags.error(c.args[i]->getLoc(),
                  "dimensions of 'unflatten' must be positive integers whose "
                  "product is at most " +
                      Twine(kMaxElements));
      return Type();
    }
    shape.push_back(static_cast<int64_t>(d->value));
  }
  const Type &t = c.args[0]->type;
  if (!t.isValid())
    return Type();
  if (t.elem != ElemType::F32 || t.getRank() != 2 || !t.hasBatchDim() ||
      double(t.shape[1]) != size) {
    diags.error(c.getLoc(), "'unflatten' expects an f32 value of shape [" +
                                batch + ", " + Twine(int64_t(size)) +
                                "], got " + typeToString(t, batch));
    return Type();
  }
  return Type(ElemType::F32, std::move(shape));
}
