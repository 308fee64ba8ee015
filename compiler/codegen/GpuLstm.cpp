//===- GpuLstm.cpp - sdl entry points to gpu.launch: masked LSTM ----------===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for
// sdl.masked_lstm and sdl.masked_lstm_grad, with the arithmetic of the CPU
// lowering (LowerMaskedLstm.cpp: gates i, f, g, o; each weight multiplied
// by its mask as it is read; the stash [T + 1, B, 6H] of gates, cells and
// hidden states the backward reads):
//
//   lstm_proj     one thread per (t, b, gate unit): b_ih + b_hh + Σ_i x w∘m
//   lstm_stash0   one thread per stash value: 0 (row 0 is c = h = 0)
//   lstm_step     one launch per step t (a host loop: the steps depend on
//                 each other, the (sample, unit) pairs of a step do not),
//                 one thread per (b, unit j): the four gates'
//                 z = P + h_{t-1} (W_hh ∘ M_hh)ᵀ from stash row t, then
//                 gates, cell and hidden state into row t + 1
//   lstm_value    one thread per value: h over time, or h_{T-1}
//   lstm_bptt_init one thread per (b, j): dh = dy (last) or 0, dc = 0
//   lstm_bptt_gates, lstm_bptt_dh
//                 two launches per step, t from T - 1 down: one thread per
//                 (b, j): dZ(t) of the unit's four gates and dc; one
//                 thread per (b, k): dh = dZ(t) (W_hh ∘ M_hh)
//   lstm_grad_x, lstm_grad_wih, lstm_grad_whh, lstm_grad_bias
//                 one thread per element: the sums over every step at once
//
// sigmoid is 1 / (1 + exp(-v)); exp and tanh become polynomials for NVPTX
// (sparsec-gpu-kernels), as in the other kernels.
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace sparsec::cudagen;

namespace {

enum Block : int64_t { GateI, GateF, GateG, GateO, Cell, Hidden };

/// Arithmetic inside a kernel.
struct Ops {
  OpBuilder &b;
  Location loc;
  Value c(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value mul(Value x, int64_t v) {
    return arith::MulIOp::create(b, loc, x, c(v));
  }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value one() { return f32(b, loc, 1.0f); }
  Value load(Value m, ValueRange at) {
    return memref::LoadOp::create(b, loc, m, at);
  }
  void store(Value v, Value m, ValueRange at) {
    memref::StoreOp::create(b, loc, v, m, at);
  }
  Value sigmoid(Value v) {
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, v));
    return arith::DivFOp::create(b, loc, one(), fadd(one(), e));
  }
  Value tanh(Value v) { return math::TanhOp::create(b, loc, v); }
  /// w(g, k) * m(g, k).
  Value wm(Value w, Value m, Value g, Value k) {
    return fmul(load(w, {g, k}), load(m, {g, k}));
  }
  /// for v in [lo, hi): acc = step(v, acc).
  Value loop(Value lo, Value hi, Value init,
             function_ref<Value(OpBuilder &, Value, Value)> step) {
    return accumulate(b, loc, lo, hi, init, step);
  }
  /// for v in [0, n): body(v).
  void each(int64_t n, function_ref<void(OpBuilder &, Value)> body) {
    scf::ForOp::create(b, loc, c(0), c(n), c(1), ValueRange(),
                       [&](OpBuilder &l, Location ll, Value v, ValueRange) {
                         body(l, v);
                         scf::YieldOp::create(l, ll);
                       });
  }
};

/// The shape of one LSTM op.
struct LstmShape {
  int64_t steps, hidden, in;
  bool seqFirst;
  /// (b, t) in an activation [B, T, F] (or [T, B, F]) as memref indices.
  SmallVector<Value> act(Value b, Value t, Value f) const {
    return seqFirst ? SmallVector<Value>{t, b, f} : SmallVector<Value>{b, t, f};
  }
};

LstmShape lstmShape(Value input, Value weightIh, bool seqFirst) {
  auto xt = cast<ShapedType>(input.getType());
  LstmShape s;
  s.seqFirst = seqFirst;
  s.steps = xt.getDimSize(seqFirst ? 0 : 1);
  s.in = xt.getDimSize(2);
  s.hidden = cast<ShapedType>(weightIh.getType()).getDimSize(0) / 4;
  return s;
}

/// The shape of a masked_lstm or masked_lstm_grad op, or a diagnostic
/// unless its input is f32 [B, T, I] (or [T, B, I]) with static T and I.
template <typename Op> FailureOr<LstmShape> checkedShape(Op op) {
  auto t = cast<ShapedType>(op.getInput().getType());
  if (t.getRank() != 3 || !t.getElementType().isF32() ||
      llvm::count_if(t.getShape(), ShapedType::isDynamic) > 1)
    return op.emitOpError("on the CUDA target needs an f32 [B, T, I] input "
                          "with static T and I");
  return lstmShape(op.getInput(), op.getWeightIh(), op.getSeqFirst());
}

} // namespace

Value EntryLowering::lstmBatch(Location loc, Value input, bool seqFirst) {
  return dim(loc, buffers.lookup(input), seqFirst ? 1 : 0);
}

Value EntryLowering::batchBuffer(Location loc, Value v, Value batch) {
  Value buf = destination.lookup(v);
  if (!buf) {
    auto t = cast<RankedTensorType>(v.getType());
    buf = temporary(loc, MemRefType::get(t.getShape(), t.getElementType()),
                    {batch});
  }
  buffers.map(v, buf);
  return buf;
}

LogicalResult EntryLowering::lowerMaskedLstm(sdl::MaskedLstmOp op) {
  Location loc = op.getLoc();
  FailureOr<LstmShape> shape = checkedShape(op);
  if (failed(shape))
    return failure();
  const LstmShape sh = *shape;
  const int64_t T = sh.steps, H = sh.hidden, G = 4 * H;
  Value x = buffers.lookup(op.getInput());
  Value wih = buffers.lookup(op.getWeightIh()),
        mih = buffers.lookup(op.getMaskIh());
  Value whh = buffers.lookup(op.getWeightHh()),
        mhh = buffers.lookup(op.getMaskHh());
  SmallVector<Value> biases;
  for (Value v : op.getBiases())
    biases.push_back(buffers.lookup(v));
  Value batch = lstmBatch(loc, op.getInput(), sh.seqFirst);
  // P(t, b, g) = b_ih(g) + b_hh(g) + Σ_i x(b, t, i) (w ∘ m)(g, i).
  Value proj = temporary(
      loc, MemRefType::get({T, ShapedType::kDynamic, G}, b.getF32Type()),
      {batch});
  Value tg = arith::MulIOp::create(b, loc, batch, index(loc, G));
  launch1D(loc, arith::MulIOp::create(b, loc, tg, index(loc, T)), "lstm_proj",
           [&](OpBuilder &kb, Value e) {
             Ops k{kb, loc};
             Value g = arith::RemUIOp::create(kb, loc, e, k.c(G));
             Value rest = arith::DivUIOp::create(kb, loc, e, k.c(G));
             Value s = arith::RemUIOp::create(kb, loc, rest, batch);
             Value t = arith::DivUIOp::create(kb, loc, rest, batch);
             Value init = biases.empty() ? f32(kb, loc, 0.0f)
                                         : k.fadd(k.load(biases[0], {g}),
                                                  k.load(biases[1], {g}));
             Value acc = k.loop(
                 k.c(0), k.c(sh.in), init, [&](OpBuilder &l, Value i, Value a) {
                   Ops o{l, loc};
                   return o.fadd(a, o.fmul(o.load(x, sh.act(s, t, i)),
                                           o.wm(wih, mih, g, i)));
                 });
             k.store(acc, proj, {t, s, g});
           });
  // The stash: row 0 zero, row t + 1 step t's (i, f, g, o, c, h).
  Value stash = batchBuffer(loc, op.getStash(), batch);
  Value stashSize = arith::MulIOp::create(
      b, loc, arith::MulIOp::create(b, loc, batch, index(loc, 6 * H)),
      index(loc, T + 1));
  launch1D(loc, stashSize, "lstm_stash0", [&](OpBuilder &kb, Value e) {
    Ops k{kb, loc};
    Value col = arith::RemUIOp::create(kb, loc, e, k.c(6 * H));
    Value rest = arith::DivUIOp::create(kb, loc, e, k.c(6 * H));
    k.store(f32(kb, loc, 0.0f), stash,
            {arith::DivUIOp::create(kb, loc, rest, batch),
             arith::RemUIOp::create(kb, loc, rest, batch), col});
  });
  Value units = arith::MulIOp::create(b, loc, batch, index(loc, H));
  hostLoop(loc, T, [&](Value t) {
    launch1D(loc, units, "lstm_step", [&](OpBuilder &kb, Value e) {
      Ops u{kb, loc};
      Value j = arith::RemUIOp::create(kb, loc, e, u.c(H));
      Value s = arith::DivUIOp::create(kb, loc, e, u.c(H));
      Value t1 = u.add(t, u.c(1));
      // z for gate `gate` of unit j: P + Σ_k h_{t-1}(k) (w ∘ m)(row, k).
      auto z = [&](int64_t gate) {
        Value row = u.add(j, u.c(gate * H));
        return u.loop(
            u.c(0), u.c(H), u.load(proj, {t, s, row}),
            [&](OpBuilder &l, Value kk, Value a) {
              Ops o{l, loc};
              Value h = o.load(stash, {t, s, o.add(kk, o.c(Hidden * H))});
              return o.fadd(a, o.fmul(h, o.wm(whh, mhh, row, kk)));
            });
      };
      Value i = u.sigmoid(z(GateI)), f = u.sigmoid(z(GateF));
      Value g = u.tanh(z(GateG)), o = u.sigmoid(z(GateO));
      Value cPrev = u.load(stash, {t, s, u.add(j, u.c(Cell * H))});
      Value c = u.fadd(u.fmul(f, cPrev), u.fmul(i, g));
      Value h = u.fmul(o, u.tanh(c));
      Value vals[] = {i, f, g, o, c, h};
      for (int64_t blk = GateI; blk <= Hidden; ++blk)
        u.store(vals[blk], stash, {t1, s, u.add(j, u.c(blk * H))});
    });
  });
  // The value: h_t over time, or h_{T-1}.
  Value out = batchBuffer(loc, op.getResult(), batch);
  const bool last = op.getLast();
  Value count =
      arith::MulIOp::create(b, loc, batch, index(loc, last ? H : T * H));
  launch1D(loc, count, "lstm_value", [&](OpBuilder &kb, Value e) {
    Ops k{kb, loc};
    Value j = arith::RemUIOp::create(kb, loc, e, k.c(H));
    Value rest = arith::DivUIOp::create(kb, loc, e, k.c(H));
    Value col = k.add(j, k.c(Hidden * H));
    if (last) {
      k.store(k.load(stash, {k.c(T), rest, col}), out, {rest, j});
      return;
    }
    // rest = b * T + t (batch-first) or t * B + b (sequence-first).
    Value s, t;
    if (sh.seqFirst) {
      s = arith::RemUIOp::create(kb, loc, rest, batch);
      t = arith::DivUIOp::create(kb, loc, rest, batch);
    } else {
      s = arith::DivUIOp::create(kb, loc, rest, k.c(T));
      t = arith::RemUIOp::create(kb, loc, rest, k.c(T));
    }
    k.store(k.load(stash, {k.add(t, k.c(1)), s, col}), out, sh.act(s, t, j));
  });
  return success();
}

LogicalResult EntryLowering::lowerMaskedLstmGrad(sdl::MaskedLstmGradOp op) {
  Location loc = op.getLoc();
  FailureOr<LstmShape> shape = checkedShape(op);
  if (failed(shape))
    return failure();
  const LstmShape sh = *shape;
  const int64_t T = sh.steps, H = sh.hidden, G = 4 * H, I = sh.in;
  const bool last = op.getLast();
  Value x = buffers.lookup(op.getInput()), dy = buffers.lookup(op.getGrad());
  Value wih = buffers.lookup(op.getWeightIh()),
        mih = buffers.lookup(op.getMaskIh());
  Value whh = buffers.lookup(op.getWeightHh()),
        mhh = buffers.lookup(op.getMaskHh());
  Value stash = buffers.lookup(op.getStash());
  Value batch = lstmBatch(loc, op.getInput(), sh.seqFirst);
  Type f32t = b.getF32Type();
  Value dz = temporary(loc, MemRefType::get({T, ShapedType::kDynamic, G}, f32t),
                       {batch});
  auto bh = MemRefType::get({ShapedType::kDynamic, H}, f32t);
  Value dh = temporary(loc, bh, {batch}), dc = temporary(loc, bh, {batch});
  Value units = arith::MulIOp::create(b, loc, batch, index(loc, H));
  launch1D(loc, units, "lstm_bptt_init", [&](OpBuilder &kb, Value e) {
    Ops u{kb, loc};
    Value j = arith::RemUIOp::create(kb, loc, e, u.c(H));
    Value s = arith::DivUIOp::create(kb, loc, e, u.c(H));
    u.store(last ? u.load(dy, {s, j}) : f32(kb, loc, 0.0f), dh, {s, j});
    u.store(f32(kb, loc, 0.0f), dc, {s, j});
  });
  hostLoop(loc, T, [&](Value step) {
    Value t = arith::SubIOp::create(b, loc, index(loc, T - 1), step);
    launch1D(loc, units, "lstm_bptt_gates", [&](OpBuilder &kb, Value e) {
      Ops u{kb, loc};
      Value j = arith::RemUIOp::create(kb, loc, e, u.c(H));
      Value s = arith::DivUIOp::create(kb, loc, e, u.c(H));
      Value t1 = u.add(t, u.c(1));
      auto at = [&](Value row, int64_t blk) {
        return u.load(stash, {row, s, u.add(j, u.c(blk * H))});
      };
      Value i = at(t1, GateI), f = at(t1, GateF), g = at(t1, GateG),
            o = at(t1, GateO), c = at(t1, Cell), cPrev = at(t, Cell);
      Value dht = u.load(dh, {s, j});
      if (!last)
        dht = u.fadd(dht, u.load(dy, sh.act(s, t, j)));
      Value one = u.one();
      Value tc = u.tanh(c);
      Value dct = u.fadd(u.load(dc, {s, j}),
                         u.fmul(u.fmul(dht, o), u.fsub(one, u.fmul(tc, tc))));
      Value grads[] = {u.fmul(u.fmul(dct, g), u.fmul(i, u.fsub(one, i))),
                       u.fmul(u.fmul(dct, cPrev), u.fmul(f, u.fsub(one, f))),
                       u.fmul(u.fmul(dct, i), u.fsub(one, u.fmul(g, g))),
                       u.fmul(u.fmul(dht, tc), u.fmul(o, u.fsub(one, o)))};
      for (int64_t blk = GateI; blk <= GateO; ++blk)
        u.store(grads[blk], dz, {t, s, u.add(j, u.c(blk * H))});
      u.store(u.fmul(dct, f), dc, {s, j});
    });
    // dh_{t-1}(k) = Σ_g dZ(t, g) (w ∘ m)(g, k).
    launch1D(loc, units, "lstm_bptt_dh", [&](OpBuilder &kb, Value e) {
      Ops u{kb, loc};
      Value kk = arith::RemUIOp::create(kb, loc, e, u.c(H));
      Value s = arith::DivUIOp::create(kb, loc, e, u.c(H));
      Value acc = u.loop(u.c(0), u.c(G), f32(kb, loc, 0.0f),
                         [&](OpBuilder &l, Value g, Value a) {
                           Ops o{l, loc};
                           return o.fadd(a, o.fmul(o.load(dz, {t, s, g}),
                                                   o.wm(whh, mhh, g, kk)));
                         });
      u.store(acc, dh, {s, kk});
    });
  });
  // Over every step at once.
  Value dx = resultBuffer(op.getGradInput(), x);
  buffers.map(op.getGradInput(), dx);
  Value xs = arith::MulIOp::create(b, loc, batch, index(loc, T * I));
  launch1D(loc, xs, "lstm_grad_x", [&](OpBuilder &kb, Value e) {
    Ops k{kb, loc};
    Value i = arith::RemUIOp::create(kb, loc, e, k.c(I));
    Value rest = arith::DivUIOp::create(kb, loc, e, k.c(I));
    Value s = arith::RemUIOp::create(kb, loc, rest, batch);
    Value t = arith::DivUIOp::create(kb, loc, rest, batch);
    Value acc = k.loop(
        k.c(0), k.c(G), f32(kb, loc, 0.0f),
        [&](OpBuilder &l, Value g, Value a) {
          Ops o{l, loc};
          return o.fadd(a, o.fmul(o.load(dz, {t, s, g}), o.wm(wih, mih, g, i)));
        });
    k.store(acc, dx, sh.act(s, t, i));
  });
  // dW(g, j) = Σ_{t, b} dZ(t, b, g) (a(t, b, j) m(g, j)), t outer.
  auto weightGrad = [&](Value result, Value mask, int64_t cols, StringRef what,
                        function_ref<Value(Ops &, Value, Value, Value)> a) {
    Value out = resultBuffer(result, mask);
    buffers.map(result, out);
    launch1D(loc, index(loc, G * cols), what, [&](OpBuilder &kb, Value e) {
      Ops k{kb, loc};
      Value g = arith::DivUIOp::create(kb, loc, e, k.c(cols));
      Value j = arith::RemUIOp::create(kb, loc, e, k.c(cols));
      Value m = k.load(mask, {g, j});
      Value acc =
          k.loop(k.c(0), k.c(T), f32(kb, loc, 0.0f),
                 [&](OpBuilder &lt, Value t, Value at) {
                   return accumulate(
                       lt, loc, Ops{lt, loc}.c(0), batch, at,
                       [&](OpBuilder &l, Value s, Value a2) {
                         Ops o{l, loc};
                         return o.fadd(a2, o.fmul(o.load(dz, {t, s, g}),
                                                  o.fmul(a(o, t, s, j), m)));
                       });
                 });
      k.store(acc, out, {g, j});
    });
  };
  weightGrad(op.getGradWeightIh(), mih, I, "lstm_grad_wih",
             [&](Ops &o, Value t, Value s, Value j) {
               return o.load(x, sh.act(s, t, j));
             });
  weightGrad(op.getGradWeightHh(), mhh, H, "lstm_grad_whh",
             [&](Ops &o, Value t, Value s, Value j) { // h_{t-1}
               return o.load(stash, {t, s, o.add(j, o.c(Hidden * H))});
             });
  Value db = resultBuffer(op.getGradBias(), dz);
  buffers.map(op.getGradBias(), db);
  launch1D(loc, index(loc, G), "lstm_grad_bias", [&](OpBuilder &kb, Value g) {
    Ops k{kb, loc};
    Value acc =
        k.loop(k.c(0), k.c(T), f32(kb, loc, 0.0f),
               [&](OpBuilder &lt, Value t, Value at) {
                 return accumulate(lt, loc, Ops{lt, loc}.c(0), batch, at,
                                   [&](OpBuilder &l, Value s, Value a2) {
                                     Ops o{l, loc};
                                     return o.fadd(a2, o.load(dz, {t, s, g}));
                                   });
               });
    k.store(acc, db, {g});
  });
  return success();
}
