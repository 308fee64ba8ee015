//===- QuantRows.h - Symmetric quantization helpers -------------*- C++ -*-===//
//
// The arithmetic of the symmetric quantization shared by
// `sdl-lower-fake-quant` (per-row fake quantization of CSR weights, the
// training forward) and `sdl-lower-quantized-linear` (the int8 inference
// forward), so that both compute exactly the same levels and scales:
//
//   scale = m / qmax, or 1 when m = 0   (m: the max |v| of a row or sample)
//   level = clamp(roundeven(v / scale), -qmax, qmax)
//
// on f32 scalars or vectors.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_QUANTROWS_H
#define SPARSEC_TRANSFORMS_QUANTROWS_H

#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::sdl::quant {

/// The largest level of a `bits`-bit signed symmetric quantization,
/// 2^(bits-1) - 1.
double maxLevel(int64_t bits);
/// A float constant of type `t`, a float type or a vector of one (a splat).
Value constant(OpBuilder &b, Location loc, Type t, double v);
/// The scale of values whose max |v| is `m`: m / qmax, 1 where m is 0.
Value scaleOf(OpBuilder &b, Location loc, Value m, double qmax);
/// clamp(roundeven(v / scale), -qmax, qmax): the level of `v`, as a float.
Value levelOf(OpBuilder &b, Location loc, Value v, Value scale, double qmax);
/// clamp(roundeven(t), -qmax, qmax).
Value roundLevel(OpBuilder &b, Location loc, Value t, double qmax);

/// Levels of the int8 activations of the int8 inference forward.
constexpr double kActivationLevels = 127.0;

/// Whether the forward of a sparse_quantized_linear layer (`fakeQuant`: its
/// sdl.fake_quant_rows; `nnz` stored weights, `cols` inputs) runs in int8:
/// `sdl.inference` = "int8"; "f32" never; "auto" (also when absent) when it
/// has at least 8 stored weights per input column (measured in
/// docs/performance.md: from there at least as fast as f32) and at most
/// 133143 = (2^31 - 1) / 127^2 columns (int32 sums exact). The rule does not
/// depend on the batch size, so that a sample's output does not either.
bool inferenceInt8(Operation *fakeQuant, int64_t nnz, int64_t cols);

/// The number of lanes of `v`: its vector length, 1 for a scalar.
int64_t lanesOf(Value v);
/// A load of `lanes` consecutive elements of the 1-d buffer `mem` from `k`
/// (a vector), or of one (a scalar) when lanes is 1.
Value loadLanes(OpBuilder &b, Location loc, Value mem, Value k, int64_t lanes);
/// The store matching loadLanes.
void storeLanes(OpBuilder &b, Location loc, Value v, Value mem, Value k);

using FoldStep =
    llvm::function_ref<Value(OpBuilder &, Location, Value acc, Value k)>;
/// Folds `step(acc, k)` over the entries [lo, hi): `lanes` entries at a
/// time with a vector accumulator (`init` splat; step reads and writes
/// lanesOf(acc) entries from k), combined by `kind` into a scalar, then the
/// remaining entries one by one (a scalar accumulator). lanes = 1: one
/// scalar loop.
Value foldEntries(OpBuilder &b, Location loc, Value lo, Value hi, int64_t lanes,
                  Value init, vector::CombiningKind kind, FoldStep step);

using RowBody = llvm::function_ref<void(OpBuilder &, Location, Value row,
                                        Value lo, Value hi, Value scale)>;
/// For every row of a CSR weight (positions `pos` and values `vals`,
/// buffers, `rows` rows), in parallel (sdl.parallel): the row's scale for
/// levels up to qmax (the max |v| over its stored entries [lo, hi), read
/// `lanes` at a time: foldEntries), then body(row, lo, hi, scale).
void forRowScales(OpBuilder &b, Location loc, Value pos, Value vals,
                  int64_t rows, double qmax, int64_t lanes, RowBody body);

} // namespace mlir::sdl::quant

#endif // SPARSEC_TRANSFORMS_QUANTROWS_H
