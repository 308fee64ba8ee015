//===- GpuEmbeddings.cpp - sdl entry points to gpu.launch: embeddings -----===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for the
// embedding ops and the concatenation around them, with the arithmetic of
// the CPU lowering (LowerEmbeddings.cpp, LowerToLinalg.cpp):
//
//   embedding            one thread per output value: table[ids[e], d]
//   embedding_grad       the gradient rows are the incoming gradient (ids
//                        rank 1 or 2): the same buffer, copied into the
//                        output by its materialize
//   embedding_bag        one thread per (b, d): the bag's rows in order,
//                        padding ids skipped; sum (times weights), mean
//                        (times 1/K, or 1/count with padding), max (-inf
//                        start, 0 for a bag of padding only)
//   embedding_bag_grad   one thread per (b, k, d): dy[b, d] (times the
//                        weight or the mean's scale), 0 for padding; max:
//                        dy where k is the first non-padding k whose row
//                        holds the maximum
//   concat               one copy kernel per operand into its columns
//   slice                one thread per output value
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace sparsec::cudagen;

namespace {

/// The indices of row-major position `flat` in a buffer with sizes `dims`.
SmallVector<Value> unflatten(OpBuilder &b, Location loc, Value flat,
                             ArrayRef<Value> dims) {
  SmallVector<Value> idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    if (d == 0) {
      idx[d] = flat;
      break;
    }
    idx[d] = arith::RemUIOp::create(b, loc, flat, dims[d]);
    flat = arith::DivUIOp::create(b, loc, flat, dims[d]);
  }
  return idx;
}

/// An id of `ids` (i32 or i64) at `at` as an index.
Value idAt(OpBuilder &b, Location loc, Value ids, ValueRange at) {
  Value raw = memref::LoadOp::create(b, loc, ids, at);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), raw);
}

/// i1: `id` (an index) is the padding id.
Value isPad(OpBuilder &b, Location loc, Value id, std::optional<uint64_t> pad) {
  if (!pad)
    return arith::ConstantIntOp::create(b, loc, 0, 1);
  return arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::eq, id,
      arith::ConstantIndexOp::create(b, loc, static_cast<int64_t>(*pad)));
}

/// The scale of one row of mean bag `r`: 1/K, or 1/count of the bag's
/// non-padding ids (counted in f32 as the CPU's bagCounts).
Value meanScale(OpBuilder &b, Location loc, Value ids, Value r, Value bag,
                int64_t bagSize, std::optional<uint64_t> pad) {
  if (!pad)
    return f32(b, loc, static_cast<float>(1.0 / bagSize));
  Value count = accumulate(
      b, loc, arith::ConstantIndexOp::create(b, loc, 0), bag, f32(b, loc, 0.0f),
      [&](OpBuilder &l, Value j, Value acc) -> Value {
        Value one = arith::SelectOp::create(
            l, loc, isPad(l, loc, idAt(l, loc, ids, {r, j}), pad),
            f32(l, loc, 0.0f), f32(l, loc, 1.0f));
        return arith::AddFOp::create(l, loc, acc, one);
      });
  return arith::DivFOp::create(b, loc, f32(b, loc, 1.0f), count);
}

bool isF32(Type t) {
  auto s = dyn_cast<ShapedType>(t);
  return s && s.getElementType().isF32();
}

} // namespace

SmallVector<Value> EntryLowering::dims(Location loc, Value memref) {
  SmallVector<Value> out;
  for (int64_t d = 0, e = cast<MemRefType>(memref.getType()).getRank(); d < e;
       ++d)
    out.push_back(dim(loc, memref, d));
  return out;
}

LogicalResult EntryLowering::lowerEmbedding(sdl::EmbeddingOp op) {
  Location loc = op.getLoc();
  if (!isF32(op.getType()) || !isRank2F32(op.getTable().getType()))
    return op.emitOpError("on the CUDA target needs an f32 [rows, dim] table");
  Value ids = buffers.lookup(op.getIds());
  Value table = buffers.lookup(op.getTable());
  Value out = resultBuffer(op.getResult(), ids);
  buffers.map(op.getResult(), out);
  SmallVector<Value> outDims = dims(loc, out);
  Value total = index(loc, 1);
  for (Value d : outDims)
    total = arith::MulIOp::create(b, loc, total, d);
  launch1D(loc, total, "embedding", [&](OpBuilder &k, Value i) {
    SmallVector<Value> at = unflatten(k, loc, i, outDims);
    Value col = at.back();
    Value id = idAt(k, loc, ids, ArrayRef<Value>(at).drop_back());
    Value v = memref::LoadOp::create(k, loc, table, ValueRange{id, col});
    memref::StoreOp::create(k, loc, v, out, at);
  });
  return success();
}

LogicalResult EntryLowering::lowerEmbeddingGrad(sdl::EmbeddingGradOp op) {
  // One row per id, the incoming gradient's: the same values.
  if (op.getGrad().getType() != op.getType())
    return op.emitOpError("on the CUDA target needs the gradient in the "
                          "shape of its rows");
  buffers.map(op.getResult(), buffers.lookup(op.getGrad()));
  return success();
}

LogicalResult EntryLowering::lowerEmbeddingBag(sdl::EmbeddingBagOp op) {
  Location loc = op.getLoc();
  if (!isRank2F32(op.getType()) || !isRank2F32(op.getTable().getType()))
    return op.emitOpError("on the CUDA target needs f32 [B, dim] bags");
  StringRef mode = op.getMode();
  std::optional<uint64_t> pad = op.getPaddingIdx();
  Value ids = buffers.lookup(op.getIds());
  Value table = buffers.lookup(op.getTable());
  Value weights = op.getWeights() ? buffers.lookup(op.getWeights()) : Value();
  Value out = resultBuffer(op.getResult(), ids);
  buffers.map(op.getResult(), out);
  int64_t bagSize = cast<ShapedType>(op.getIds().getType()).getDimSize(1);
  Value cols = dim(loc, out, 1), bag = dim(loc, ids, 1);
  Value total = arith::MulIOp::create(b, loc, dim(loc, out, 0), cols);
  const float lowest = -std::numeric_limits<float>::infinity();
  launch1D(
      loc, total, "embedding_bag_" + mode.str(), [&](OpBuilder &k, Value i) {
        Value r = arith::DivUIOp::create(k, loc, i, cols);
        Value c = arith::RemUIOp::create(k, loc, i, cols);
        // The mean's scale: 1/K, or 1/count of the non-padding ids.
        Value scale;
        if (mode == "mean")
          scale = meanScale(k, loc, ids, r, bag, bagSize, pad);
        Value init = f32(k, loc, mode == "max" ? lowest : 0.0f);
        Value acc =
            accumulate(k, loc, index(loc, 0), bag, init,
                       [&](OpBuilder &l, Value j, Value acc) -> Value {
                         Value id = idAt(l, loc, ids, {r, j});
                         Value v = memref::LoadOp::create(l, loc, table,
                                                          ValueRange{id, c});
                         Value next;
                         if (mode == "max") {
                           next = arith::MaximumFOp::create(l, loc, acc, v);
                         } else {
                           if (weights)
                             v = arith::MulFOp::create(
                                 l, loc, v,
                                 memref::LoadOp::create(l, loc, weights,
                                                        ValueRange{r, j}));
                           else if (scale)
                             v = arith::MulFOp::create(l, loc, v, scale);
                           next = arith::AddFOp::create(l, loc, acc, v);
                         }
                         return arith::SelectOp::create(
                             l, loc, isPad(l, loc, id, pad), acc, next);
                       });
        if (mode == "max" && pad) {
          // A bag of padding ids only is 0, as in PyTorch.
          Value empty = arith::CmpFOp::create(k, loc, arith::CmpFPredicate::OEQ,
                                              acc, f32(k, loc, lowest));
          acc = arith::SelectOp::create(k, loc, empty, f32(k, loc, 0.0f), acc);
        }
        memref::StoreOp::create(k, loc, acc, out, ValueRange{r, c});
      });
  return success();
}

LogicalResult EntryLowering::lowerEmbeddingBagGrad(sdl::EmbeddingBagGradOp op) {
  Location loc = op.getLoc();
  auto rt = cast<ShapedType>(op.getType());
  if (rt.getRank() != 3 || !rt.getElementType().isF32())
    return op.emitOpError("on the CUDA target needs f32 [B, K, dim] rows");
  StringRef mode = op.getMode();
  std::optional<uint64_t> pad = op.getPaddingIdx();
  Value ids = buffers.lookup(op.getIds());
  Value dy = buffers.lookup(op.getGrad());
  Value table = buffers.lookup(op.getTable());
  Value output = buffers.lookup(op.getOutput());
  Value weights = op.getWeights() ? buffers.lookup(op.getWeights()) : Value();
  Value rows = resultBuffer(op.getResult(), ids);
  buffers.map(op.getResult(), rows);
  int64_t bagSize = rt.getDimSize(1);
  SmallVector<Value> rowDims = dims(loc, rows);
  Value total = arith::MulIOp::create(
      b, loc, arith::MulIOp::create(b, loc, rowDims[0], rowDims[1]),
      rowDims[2]);
  Value bag = rowDims[1];
  launch1D(
      loc, total, "embedding_bag_grad_" + mode.str(),
      [&](OpBuilder &k, Value i) {
        SmallVector<Value> at = unflatten(k, loc, i, rowDims);
        Value r = at[0], j = at[1], c = at[2];
        Value id = idAt(k, loc, ids, {r, j});
        Value g = memref::LoadOp::create(k, loc, dy, ValueRange{r, c});
        Value zero = f32(k, loc, 0.0f);
        Value row;
        if (mode == "max") {
          // The first non-padding k' whose row holds the bag's maximum.
          Value best = memref::LoadOp::create(k, loc, output, ValueRange{r, c});
          Value none = index(loc, -1);
          Value first = accumulate(
              k, loc, index(loc, 0), bag, none,
              [&](OpBuilder &l, Value kk, Value acc) -> Value {
                Value idk = idAt(l, loc, ids, {r, kk});
                Value v =
                    memref::LoadOp::create(l, loc, table, ValueRange{idk, c});
                Value hit = arith::CmpFOp::create(
                    l, loc, arith::CmpFPredicate::OEQ, v, best);
                Value unset = arith::CmpIOp::create(
                    l, loc, arith::CmpIPredicate::slt, acc,
                    arith::ConstantIndexOp::create(l, loc, 0));
                Value real = arith::XOrIOp::create(
                    l, loc, isPad(l, loc, idk, pad),
                    arith::ConstantIntOp::create(l, loc, 1, 1));
                Value take = arith::AndIOp::create(
                    l, loc, arith::AndIOp::create(l, loc, hit, unset), real);
                return arith::SelectOp::create(l, loc, take, kk, acc);
              });
          Value mine =
              arith::CmpIOp::create(k, loc, arith::CmpIPredicate::eq, j, first);
          memref::StoreOp::create(
              k, loc, arith::SelectOp::create(k, loc, mine, g, zero), rows, at);
          return;
        }
        if (weights) {
          row = arith::MulFOp::create(
              k, loc, g,
              memref::LoadOp::create(k, loc, weights, ValueRange{r, j}));
        } else if (mode == "mean") {
          Value scale = meanScale(k, loc, ids, r, bag, bagSize, pad);
          row = arith::MulFOp::create(k, loc, g, scale);
        } else {
          row = g;
        }
        memref::StoreOp::create(
            k, loc,
            arith::SelectOp::create(k, loc, isPad(k, loc, id, pad), zero, row),
            rows, at);
      });
  return success();
}

LogicalResult EntryLowering::lowerConcat(sdl::ConcatOp op) {
  Location loc = op.getLoc();
  if (!isRank2F32(op.getType()))
    return op.emitOpError("on the CUDA target needs rank-2 f32 operands");
  SmallVector<Value> in;
  for (Value v : op.getInputs()) {
    if (!isRank2F32(v.getType()))
      return op.emitOpError("on the CUDA target needs rank-2 f32 operands");
    in.push_back(buffers.lookup(v));
  }
  Value out = resultBuffer(op.getResult(), in.front());
  buffers.map(op.getResult(), out);
  Value offset = index(loc, 0);
  for (Value x : in) {
    Value cols = dim(loc, x, 1);
    Value total = arith::MulIOp::create(b, loc, dim(loc, x, 0), cols);
    Value base = offset;
    launch1D(loc, total, "concat", [&](OpBuilder &k, Value i) {
      Value r = arith::DivUIOp::create(k, loc, i, cols);
      Value c = arith::RemUIOp::create(k, loc, i, cols);
      Value v = memref::LoadOp::create(k, loc, x, ValueRange{r, c});
      memref::StoreOp::create(
          k, loc, v, out,
          ValueRange{r, arith::AddIOp::create(k, loc, c, base)});
    });
    offset = arith::AddIOp::create(b, loc, offset, cols);
  }
  return success();
}

LogicalResult EntryLowering::lowerSlice(sdl::SliceOp op) {
  Location loc = op.getLoc();
  if (!isRank2F32(op.getType()) || !isRank2F32(op.getInput().getType()))
    return op.emitOpError("on the CUDA target needs rank-2 f32 operands");
  Value x = buffers.lookup(op.getInput());
  Value out = resultBuffer(op.getResult(), x);
  buffers.map(op.getResult(), out);
  Value cols = index(loc, cast<ShapedType>(op.getType()).getDimSize(1));
  Value offset = index(loc, static_cast<int64_t>(op.getOffset()));
  Value total = arith::MulIOp::create(b, loc, dim(loc, x, 0), cols);
  launch1D(loc, total, "slice", [&](OpBuilder &k, Value i) {
    Value r = arith::DivUIOp::create(k, loc, i, cols);
    Value c = arith::RemUIOp::create(k, loc, i, cols);
    Value v = memref::LoadOp::create(
        k, loc, x, ValueRange{r, arith::AddIOp::create(k, loc, c, offset)});
    memref::StoreOp::create(k, loc, v, out, ValueRange{r, c});
  });
  return success();
}
