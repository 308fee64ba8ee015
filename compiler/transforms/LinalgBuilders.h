//===- LinalgBuilders.h - Builders of linalg.generic on tensors -*- C++ -*-===//
//
// Small builders shared by `convert-sdl-to-linalg` (LowerToLinalg.cpp) and
// its embedding lowerings (LowerEmbeddings.cpp): destination tensors,
// `linalg.generic` with explicit maps, elementwise and full reductions.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_LINALGBUILDERS_H
#define SPARSEC_TRANSFORMS_LINALGBUILDERS_H

#include "transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::sdl::builders {

using BodyFn = llvm::function_ref<Value(OpBuilder &, Location, ValueRange)>;

RankedTensorType tensorOf(Value v);
/// tensor.empty of type `t`; dynamic dim i is taken from dim i of `like`.
Value emptyLike(OpBuilder &b, Location loc, RankedTensorType t, Value like);
Value constF(OpBuilder &b, Location loc, Type t, double v);
/// A tensor of type `t` filled with `value`.
Value filled(OpBuilder &b, Location loc, RankedTensorType t, Value like,
             double value);
/// Builds `linalg.generic` over `numDims` loops; the last map is `init`'s.
Value generic(OpBuilder &b, Location loc, ValueRange ins, Value init,
              ArrayRef<AffineMap> maps, ArrayRef<utils::IteratorType> iters,
              BodyFn body);
/// Affine map of `numDims` dims selecting `dims`.
AffineMap pick(MLIRContext *ctx, unsigned numDims, ArrayRef<unsigned> dims);
SmallVector<unsigned> range(unsigned begin, unsigned end);
SmallVector<unsigned> cat(ArrayRef<unsigned> a, ArrayRef<unsigned> c);
/// Elementwise generic with identity maps; `ins` all have `t`'s shape.
Value elementwise(OpBuilder &b, Location loc, RankedTensorType t,
                  ValueRange ins, BodyFn body);
/// Sum of `f(args)` over every element of the `ins` (all of one shape),
/// accumulated in f64 (rank >= 2: one partial per index of the last dim,
/// then the partials in order) and returned as a scalar of the first
/// input's element type.
/// [M, N] -> [N, M] (one dim may be the dynamic batch).
Value transposed(OpBuilder &b, Location loc, Value v);
Value sumAll(OpBuilder &b, Location loc, ValueRange ins, BodyFn f);
/// Number of elements of `v` (dynamic dims included) as a float of type `t`.
Value numelF(OpBuilder &b, Location loc, Value v, Type t);
Value scalarTensor(OpBuilder &b, Location loc, Type resultType, Value s);
Value toIndex(OpBuilder &b, Location loc, Value v);

/// How many ids ahead a row gather or row update prefetches: a row's work
/// is tens of nanoseconds, a miss to memory about a hundred.
constexpr int64_t kPrefetchAhead = 8;
/// memref.prefetch of each 64-byte line of the `elems` consecutive elements
/// of `buf` from `start` (the last index advances): software prefetch for a
/// row whose address the hardware prefetcher cannot guess (an id's row).
void prefetchRun(OpBuilder &b, Location loc, Value buf, ValueRange start,
                 int64_t elems, bool forWrite);
/// The id `ahead` positions after `i` in the 1-D `ids` (a tensor or a
/// memref; clamped to its last element) as an index.
Value idAhead(OpBuilder &b, Location loc, Value ids, Value i, int64_t ahead);

/// Embedding lowerings (LowerEmbeddings.cpp): row gathers, bag reductions
/// and the per-id gradient rows of a bag.
Value lowerEmbedding(OpBuilder &b, EmbeddingOp op);
Value lowerEmbeddingBag(OpBuilder &b, EmbeddingBagOp op);
Value lowerEmbeddingBagGrad(OpBuilder &b, EmbeddingBagGradOp op);

} // namespace mlir::sdl::builders

#endif // SPARSEC_TRANSFORMS_LINALGBUILDERS_H
