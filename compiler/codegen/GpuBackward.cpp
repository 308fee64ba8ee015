//===- GpuBackward.cpp - sdl entry points to gpu.launch: layer gradients --===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for the
// gradient ops of the train entry (the losses are in GpuLosses.cpp). Each
// follows the arithmetic of the CPU lowering (LowerToLinalg.cpp: the same
// operations, reductions in the same order) so both devices agree to
// rounding:
//
//   linear_grad_input        dense: one thread per dx[b, c], sum over the
//                            outputs; CSR: zero-fill, then a group of lanes
//                            per (b, r) adding vals[k] * dy[b, r] into
//                            dx[b, crd[k]] with atomic adds (the transposed
//                            product; the order of the adds is free)
//   linear_grad_weight       dense: one thread per dW[r, c], sum over the
//                            batch; CSR (SDDMM at the weight's pattern): a
//                            group of lanes per row, each lane one stored
//                            entry k at a time, dW[k] = sum over the batch
//                            of dy[b, r] * x[b, crd[k]]
//
// A CSR row's group (rowGroups) is g consecutive threads, g the power of
// two >= the mean row length, at most a warp: lane l takes the row's
// entries l, l + g, ..., so the group's loads of crd/vals are coalesced, its
// reads of x (and atomic adds into dx) fall on nearby columns of one row,
// dy[b, r] is one broadcast load, and no lane waits on a longer row than
// its own (the row-per-warp form of SpMM/SDDMM; rows shorter than a warp
// share it).
//   reduce_batch             one thread per column, sum over the batch
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace sparsec::cudagen;

namespace {

/// `a * b` accumulated: acc + a * b, as the CPU's linalg bodies.
Value mulAdd(OpBuilder &b, Location loc, Value acc, Value x, Value y) {
  return arith::AddFOp::create(b, loc, acc,
                               arith::MulFOp::create(b, loc, x, y));
}

} // namespace

LogicalResult EntryLowering::lowerLinearGradInput(Operation *op, Value grad,
                                                  Value weight, Value mask) {
  Location loc = op->getLoc();
  Value result = op->getResult(0);
  if (!isRank2F32(result.getType()))
    return op->emitOpError("on the CUDA target needs a rank-2 f32 result");
  Value dy = buffers.lookup(grad);
  Value dx = resultBuffer(result, dy);
  buffers.map(result, dx);
  Value batch = dim(loc, dy, 0), outs = dim(loc, dy, 1);
  auto it = csr.find(weight);
  if (it != csr.end() && !mask) {
    CsrBuffers w = it->second;
    zeroFill(loc, dx);
    rowGroups(loc, w, batch, outs, "linear_grad_input_csr",
              [&](OpBuilder &l, Value s, Value r, Value e) {
                Value g = memref::LoadOp::create(l, loc, dy, ValueRange{s, r});
                Value v = memref::LoadOp::create(l, loc, w.vals, e);
                Value col = loadIndex(l, loc, w.crd, e);
                memref::AtomicRMWOp::create(l, loc, arith::AtomicRMWKind::addf,
                                            arith::MulFOp::create(l, loc, g, v),
                                            dx, ValueRange{s, col});
              });
    return success();
  }
  Value w = buffers.lookupOrNull(weight);
  Value m = mask ? buffers.lookupOrNull(mask) : Value();
  if (!w || (mask && !m))
    return op->emitOpError("weight is neither a CSR assemble nor a dense "
                           "argument; not supported by the CUDA target yet");
  Value ins = dim(loc, dx, 1);
  Value total = arith::MulIOp::create(b, loc, batch, ins);
  launch1D(
      loc, total, m ? "linear_grad_input_masked" : "linear_grad_input_dense",
      [&](OpBuilder &k, Value i) {
        Value c = arith::RemUIOp::create(k, loc, i, ins);
        Value s = arith::DivUIOp::create(k, loc, i, ins);
        Value acc = accumulate(
            k, loc, index(loc, 0), outs, f32(k, loc, 0.0f),
            [&](OpBuilder &l, Value r, Value sum) {
              Value wv = memref::LoadOp::create(l, loc, w, ValueRange{r, c});
              if (m) // dy (W ∘ M): the weight masked as it is read
                wv = arith::MulFOp::create(
                    l, loc, wv,
                    memref::LoadOp::create(l, loc, m, ValueRange{r, c}));
              return mulAdd(
                  l, loc, sum,
                  memref::LoadOp::create(l, loc, dy, ValueRange{s, r}), wv);
            });
        memref::StoreOp::create(k, loc, acc, dx, ValueRange{s, c});
      });
  return success();
}

LogicalResult EntryLowering::lowerLinearGradWeight(Operation *op, Value grad,
                                                   Value input, Value weight,
                                                   Value mask) {
  Location loc = op->getLoc();
  Value result = op->getResult(0);
  Value dy = buffers.lookup(grad);
  Value x = buffers.lookup(input);
  Value batch = dim(loc, dy, 0);
  // sum over the batch of dy[b, r] * x[b, c]
  auto dot = [&](OpBuilder &k, Value r, Value c) {
    return accumulate(
        k, loc, index(loc, 0), batch, f32(k, loc, 0.0f),
        [&](OpBuilder &l, Value s, Value sum) {
          return mulAdd(l, loc, sum,
                        memref::LoadOp::create(l, loc, dy, ValueRange{s, r}),
                        memref::LoadOp::create(l, loc, x, ValueRange{s, c}));
        });
  };
  auto it = weight ? csr.find(weight) : csr.end();
  if (it == csr.end()) {
    if (!isRank2F32(result.getType()))
      return op->emitOpError("on the CUDA target needs a rank-2 f32 result");
    Value m = mask ? buffers.lookupOrNull(mask) : Value();
    if (mask && !m)
      return op->emitOpError("mask is not a dense argument; not supported by "
                             "the CUDA target yet");
    Value dw = resultBuffer(result, dy);
    buffers.map(result, dw);
    Value ins = dim(loc, dw, 1);
    Value total = arith::MulIOp::create(b, loc, dim(loc, dw, 0), ins);
    launch1D(loc, total,
             m ? "linear_grad_weight_masked" : "linear_grad_weight_dense",
             [&](OpBuilder &k, Value i) {
               Value r = arith::DivUIOp::create(k, loc, i, ins);
               Value c = arith::RemUIOp::create(k, loc, i, ins);
               Value v = dot(k, r, c);
               if (m) // exactly 0 where the mask is 0
                 v = arith::MulFOp::create(
                     k, loc, v,
                     memref::LoadOp::create(k, loc, m, ValueRange{r, c}));
               memref::StoreOp::create(k, loc, v, dw, ValueRange{r, c});
             });
    return success();
  }
  // The gradient shares the weight's pattern: only its values are new.
  CsrBuffers out = it->second;
  out.vals = destination.lookup(result);
  if (!out.vals)
    out.vals = temporary(loc, cast<MemRefType>(it->second.vals.getType()));
  csr[result] = out;
  Value rows =
      arith::SubIOp::create(b, loc, dim(loc, out.pos, 0), index(loc, 1));
  rowGroups(loc, out, index(loc, 1), rows, "linear_grad_weight_csr",
            [&](OpBuilder &l, Value, Value r, Value e) {
              Value c = loadIndex(l, loc, out.crd, e);
              memref::StoreOp::create(l, loc, dot(l, r, c), out.vals, e);
            });
  return success();
}

void EntryLowering::rowGroups(
    Location loc, const CsrBuffers &w, Value outer, Value rows, StringRef what,
    function_ref<void(OpBuilder &, Value, Value, Value)> body) {
  // g: the smallest power of two >= ceil(nnz / rows), at most 32.
  Value one = index(loc, 1);
  Value mean = arith::CeilDivUIOp::create(
      b, loc, dim(loc, w.vals, 0), arith::MaxUIOp::create(b, loc, rows, one));
  Value g = one;
  for (int64_t p = 2; p <= 32; p *= 2)
    g = arith::SelectOp::create(b, loc,
                                arith::CmpIOp::create(b, loc,
                                                      arith::CmpIPredicate::ugt,
                                                      mean, index(loc, p / 2)),
                                index(loc, p), g);
  Value total = arith::MulIOp::create(
      b, loc, arith::MulIOp::create(b, loc, outer, rows), g);
  launch1D(loc, total, what, [&](OpBuilder &k, Value i) {
    Value lane = arith::RemUIOp::create(k, loc, i, g);
    Value rest = arith::DivUIOp::create(k, loc, i, g);
    Value r = arith::RemUIOp::create(k, loc, rest, rows);
    Value o = arith::DivUIOp::create(k, loc, rest, rows);
    Value next = arith::AddIOp::create(k, loc, r, index(loc, 1));
    scf::ForOp::create(
        k, loc,
        arith::AddIOp::create(k, loc, loadIndex(k, loc, w.pos, r), lane),
        loadIndex(k, loc, w.pos, next), g, ValueRange(),
        [&](OpBuilder &l, Location, Value e, ValueRange) {
          body(l, o, r, e);
          scf::YieldOp::create(l, loc);
        });
  });
}

LogicalResult EntryLowering::lowerReduceBatch(sdl::ReduceBatchOp op) {
  Location loc = op.getLoc();
  if (!isRank2F32(op.getInput().getType()))
    return op.emitOpError("on the CUDA target needs a rank-2 f32 input");
  Value in = buffers.lookup(op.getInput());
  Value out = resultBuffer(op.getResult(), in);
  buffers.map(op.getResult(), out);
  Value batch = dim(loc, in, 0);
  launch1D(loc, dim(loc, in, 1), "reduce_batch", [&](OpBuilder &k, Value c) {
    Value acc =
        accumulate(k, loc, index(loc, 0), batch, f32(k, loc, 0.0f),
                   [&](OpBuilder &l, Value s, Value sum) -> Value {
                     return arith::AddFOp::create(
                         l, loc, sum,
                         memref::LoadOp::create(l, loc, in, ValueRange{s, c}));
                   });
    memref::StoreOp::create(k, loc, acc, out, c);
  });
  return success();
}

void EntryLowering::contract(
    Location loc, Value out, int64_t reduce, Value reduceDyn, StringRef what,
    function_ref<std::pair<Value, Value>(OpBuilder &, Value, Value, Value)>
        factors) {
  Value cols = dim(loc, out, 1);
  Value total = arith::MulIOp::create(b, loc, dim(loc, out, 0), cols);
  Value n = reduceDyn ? reduceDyn : index(loc, reduce);
  launch1D(loc, total, what, [&](OpBuilder &k, Value i) {
    Value r = arith::DivUIOp::create(k, loc, i, cols);
    Value c = arith::RemUIOp::create(k, loc, i, cols);
    Value acc = accumulate(k, loc, index(loc, 0), n, f32(k, loc, 0.0f),
                           [&](OpBuilder &l, Value e, Value sum) {
                             auto [x, y] = factors(l, r, c, e);
                             return mulAdd(l, loc, sum, x, y);
                           });
    memref::StoreOp::create(k, loc, acc, out, ValueRange{r, c});
  });
}

LogicalResult EntryLowering::lowerMatmul(Operation *op) {
  Location loc = op->getLoc();
  Value result = op->getResult(0);
  if (!isRank2F32(result.getType()) ||
      !llvm::all_of(op->getOperandTypes(), isRank2F32))
    return op->emitOpError("on the CUDA target needs rank-2 f32 operands");
  auto load = [&](OpBuilder &l, Value m, Value i, Value j) -> Value {
    return memref::LoadOp::create(l, loc, m, ValueRange{i, j});
  };
  if (auto mm = dyn_cast<sdl::MatmulOp>(op)) {
    // y(b, o) = sum_i a(b, i) w(i, o)
    Value a = buffers.lookup(mm.getLhs()), w = buffers.lookup(mm.getRhs());
    Value y = resultBuffer(result, a);
    buffers.map(result, y);
    contract(loc, y, cast<MemRefType>(w.getType()).getDimSize(0), Value(),
             "matmul", [&](OpBuilder &l, Value bi, Value o, Value i) {
               return std::make_pair(load(l, a, bi, i), load(l, w, i, o));
             });
    return success();
  }
  if (auto g = dyn_cast<sdl::MatmulGradLhsOp>(op)) {
    // dA(b, i) = sum_o dy(b, o) w(i, o)
    Value dy = buffers.lookup(g.getGrad()), w = buffers.lookup(g.getRhs());
    Value da = resultBuffer(result, dy);
    buffers.map(result, da);
    contract(loc, da, cast<MemRefType>(w.getType()).getDimSize(1), Value(),
             "matmul_grad_lhs", [&](OpBuilder &l, Value bi, Value i, Value o) {
               return std::make_pair(load(l, dy, bi, o), load(l, w, i, o));
             });
    return success();
  }
  // dB(i, o) = sum_b a(b, i) dy(b, o)
  auto g = cast<sdl::MatmulGradRhsOp>(op);
  Value a = buffers.lookup(g.getLhs()), dy = buffers.lookup(g.getGrad());
  Value dbuf = resultBuffer(result, a);
  buffers.map(result, dbuf);
  contract(loc, dbuf, 0, dim(loc, a, 0), "matmul_grad_rhs",
           [&](OpBuilder &l, Value i, Value o, Value bi) {
             return std::make_pair(load(l, a, bi, i), load(l, dy, bi, o));
           });
  return success();
}
