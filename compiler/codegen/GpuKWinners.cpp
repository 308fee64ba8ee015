//===- GpuKWinners.cpp - sdl entry points to gpu.launch: K-Winners --------===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for
// sdl.kwinners, sdl.kwinners_grad and sdl.kwinners_duty, with the winner
// search of the CPU lowering (LowerKWinners.cpp: no sort; bisection on
// order-preserving u32 keys of the boosted values, ties to the lower index)
// in the same [R, m] view of the input: [B, n]; KWinners2d's [B, C, H, W]
// as [B, C*H*W], or [B*H*W, C] with `local` (read in place, no transpose):
//
//   kwinners_boost  one thread per channel: exp((k / units - duty[c]) * s),
//                   s the boost strength of this step
//   kwinners_rows   one thread per view row: T = the k-th largest key by
//                   radix select (four passes over the row, each a
//                   histogram of one byte in a 256-entry scratch array),
//                   then one pass writing the row: the value (input, or the
//                   incoming gradient) at the winners - the keys > T and
//                   the first keys equal to T by index - 0 elsewhere. The
//                   same winners as the CPU's bisection (32 passes)
//   kwinners_duty   one thread per buffer entry: nupic.torch's duty-cycle
//                   update (activity counted in the CPU's order), the
//                   clamped sample count, the step count
//
// The boost strength's boost_factor^floor(steps / boost_period) is a power
// by squaring in f64 (NVPTX has no pow; libdevice is not linked).
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

Value i64c(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
}

/// f64 `base`^`n` for an i64 n >= 0, by squaring.
Value powi(OpBuilder &b, Location loc, Value base, Value n) {
  Type f64 = b.getF64Type(), i64 = b.getI64Type();
  Value one = arith::ConstantOp::create(b, loc, b.getF64FloatAttr(1.0));
  auto loop = scf::WhileOp::create(
      b, loc, TypeRange{f64, f64, i64}, ValueRange{one, base, n},
      [&](OpBuilder &l, Location ll, ValueRange a) {
        Value more = arith::CmpIOp::create(l, ll, arith::CmpIPredicate::sgt,
                                           a[2], i64c(l, ll, 0));
        scf::ConditionOp::create(l, ll, more, a);
      },
      [&](OpBuilder &l, Location ll, ValueRange a) {
        Value odd = arith::CmpIOp::create(
            l, ll, arith::CmpIPredicate::ne,
            arith::AndIOp::create(l, ll, a[2], i64c(l, ll, 1)), i64c(l, ll, 0));
        Value acc = arith::SelectOp::create(
            l, ll, odd, arith::MulFOp::create(l, ll, a[0], a[1]), a[0]);
        Value sq = arith::MulFOp::create(l, ll, a[1], a[1]);
        Value half = arith::ShRSIOp::create(l, ll, a[2], i64c(l, ll, 1));
        scf::YieldOp::create(l, ll, ValueRange{acc, sq, half});
      });
  return loop.getResult(0);
}

/// The order-preserving u32 key (zero-extended to i64) of f32 `v`.
Value orderedKey(OpBuilder &b, Location loc, Value v) {
  Type i32 = b.getI32Type();
  Value u = arith::BitcastOp::create(b, loc, i32, v);
  Value sign = arith::ShRSIOp::create(
      b, loc, u, arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(31)));
  Value flip = arith::OrIOp::create(
      b, loc, sign,
      arith::ConstantOp::create(
          b, loc, b.getI32IntegerAttr(static_cast<int32_t>(0x80000000u))));
  return arith::ExtUIOp::create(b, loc, b.getI64Type(),
                                arith::XOrIOp::create(b, loc, u, flip));
}

/// Whether `t` is an f32 [B, n] or [B, C, H, W] with static inner sizes.
bool kwinnersType(Type t) {
  auto type = cast<ShapedType>(t);
  return (type.getRank() == 2 || type.getRank() == 4) &&
         type.getElementType().isF32() &&
         !llvm::any_of(type.getShape().drop_front(), ShapedType::isDynamic);
}

/// The view a kwinners op chooses its winners in (see the file comment).
struct KwView {
  int64_t channels = 0, spatial = 1;
  bool local = false;
  /// Values one winner set is chosen among (also the boost's units).
  int64_t width() const { return local ? channels : channels * spatial; }
  /// The flat offset of element (r, j).
  Value offset(OpBuilder &b, Location loc, Value r, Value j) const {
    auto c = [&](int64_t v) {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    if (!local)
      return arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, r, c(width())), j);
    // r = sample * S + s, j = channel: sample * C*S + j * S + s.
    Value sample = arith::DivUIOp::create(b, loc, r, c(spatial));
    Value s = arith::RemUIOp::create(b, loc, r, c(spatial));
    return arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, sample, c(channels * spatial)),
        arith::AddIOp::create(b, loc,
                              arith::MulIOp::create(b, loc, j, c(spatial)), s));
  }
  /// The channel of column j.
  Value channel(OpBuilder &b, Location loc, Value j) const {
    if (local || spatial == 1)
      return j;
    return arith::DivUIOp::create(
        b, loc, j, arith::ConstantIndexOp::create(b, loc, spatial));
  }
};

KwView kwView(Value input, bool local) {
  auto type = cast<ShapedType>(input.getType());
  KwView v;
  v.channels = type.getDimSize(1);
  v.spatial = type.getRank() == 4 ? type.getDimSize(2) * type.getDimSize(3) : 1;
  v.local = local && type.getRank() == 4;
  return v;
}

/// `buf` (an identity-layout memref) as a 1-D memref.
Value flat(OpBuilder &b, Location loc, Value buf) {
  ReassociationIndices all;
  for (int64_t d = 0, e = cast<MemRefType>(buf.getType()).getRank(); d < e; ++d)
    all.push_back(d);
  return memref::CollapseShapeOp::create(b, loc, buf,
                                         ArrayRef<ReassociationIndices>{all});
}

} // namespace

Value EntryLowering::kwinnersBoost(Operation *op, Value input, Value dutyT,
                                   int64_t k, bool local, double strength,
                                   double factor, int64_t period) {
  Location loc = op->getLoc();
  const KwView view = kwView(input, local);
  const int64_t n = view.channels;
  Value duty = buffers.lookup(dutyT);
  Value boost = temporary(loc, MemRefType::get({n}, b.getF32Type()));
  float density = static_cast<float>(double(k) / double(view.width()));
  launch1D(loc, index(loc, n), "kwinners_boost", [&](OpBuilder &kb, Value c) {
    Type f32t = kb.getF32Type();
    Value s;
    if (period <= 0) {
      s = f32(kb, loc, static_cast<float>(strength));
    } else { // strength * factor^floor(steps / period), f64
      Value steps = memref::LoadOp::create(kb, loc, duty, index(loc, n + 1));
      Value decays = arith::DivSIOp::create(
          kb, loc, arith::FPToSIOp::create(kb, loc, kb.getI64Type(), steps),
          i64c(kb, loc, period));
      Value pw =
          powi(kb, loc,
               arith::ConstantOp::create(kb, loc, kb.getF64FloatAttr(factor)),
               decays);
      s = arith::TruncFOp::create(
          kb, loc, f32t,
          arith::MulFOp::create(
              kb, loc,
              arith::ConstantOp::create(kb, loc, kb.getF64FloatAttr(strength)),
              pw));
    }
    Value d = arith::SubFOp::create(kb, loc, f32(kb, loc, density),
                                    memref::LoadOp::create(kb, loc, duty, c));
    memref::StoreOp::create(
        kb, loc,
        math::ExpOp::create(kb, loc, arith::MulFOp::create(kb, loc, d, s)),
        boost, c);
  });
  return boost;
}

LogicalResult EntryLowering::lowerKWinners(Operation *op, Value input,
                                           Value dutyT, Value values, int64_t k,
                                           bool local, double strength,
                                           double factor, int64_t period) {
  Location loc = op->getLoc();
  Value result = op->getResult(0);
  if (!kwinnersType(input.getType()))
    return op->emitOpError("on the CUDA target needs an f32 [B, n] or "
                           "[B, C, H, W] input with static inner sizes");
  const KwView view = kwView(input, local);
  Value boost =
      kwinnersBoost(op, input, dutyT, k, local, strength, factor, period);
  Value x = buffers.lookup(input);
  Value out = resultBuffer(result, x);
  buffers.map(result, out);
  Value xf = flat(b, loc, x), vf = flat(b, loc, buffers.lookup(values)),
        of = flat(b, loc, out);
  Value rows = dim(loc, x, 0);
  if (view.local)
    rows = arith::MulIOp::create(b, loc, rows, index(loc, view.spatial));
  const int64_t m = view.width();
  launch1D(loc, rows, "kwinners_rows", [&](OpBuilder &kb, Value r) {
    auto key = [&](OpBuilder &l, Value j) {
      Value xv = memref::LoadOp::create(l, loc, xf,
                                        ValueRange{view.offset(l, loc, r, j)});
      Value bv = memref::LoadOp::create(l, loc, boost, view.channel(l, loc, j));
      return orderedKey(l, loc, arith::MulFOp::create(l, loc, xv, bv));
    };
    auto c64 = [&](OpBuilder &l, int64_t v) { return i64c(l, loc, v); };
    auto cmp = [&](OpBuilder &l, arith::CmpIPredicate p, Value a, Value c) {
      return arith::CmpIOp::create(l, loc, p, a, c);
    };
    auto each =
        [&](OpBuilder &l, int64_t n, ValueRange init,
            function_ref<SmallVector<Value>(OpBuilder &, Value, ValueRange)>
                body) {
          return scf::ForOp::create(
              l, loc, index(loc, 0), index(loc, n), index(loc, 1), init,
              [&](OpBuilder &fb, Location, Value v, ValueRange a) {
                scf::YieldOp::create(fb, loc, body(fb, v, a));
              });
        };
    // T, the k-th largest key, by radix select a byte at a time from the
    // top: per pass, the histogram of the byte over the keys whose higher
    // bytes are T's so far (`prefix`), then the byte whose bucket holds
    // the need-th largest of them (the lowest byte if none does: k > m).
    Type i64 = kb.getI64Type();
    Value hist = memref::AllocaOp::create(kb, loc, MemRefType::get({256}, i64));
    Value prefix = c64(kb, 0), need = c64(kb, k);
    for (int64_t shift = 24; shift >= 0; shift -= 8) {
      each(kb, 256, {}, [&](OpBuilder &l, Value d, ValueRange) {
        memref::StoreOp::create(l, loc, c64(l, 0), hist, d);
        return SmallVector<Value>{};
      });
      each(kb, m, {}, [&](OpBuilder &l, Value j, ValueRange) {
        Value kv = key(l, j);
        Value high = arith::ShRUIOp::create(l, loc, kv, c64(l, shift + 8));
        auto match = scf::IfOp::create(
            l, loc, cmp(l, arith::CmpIPredicate::eq, high, prefix), false);
        OpBuilder t = match.getThenBodyBuilder();
        Value d = arith::IndexCastOp::create(
            t, loc, t.getIndexType(),
            arith::AndIOp::create(
                t, loc, arith::ShRUIOp::create(t, loc, kv, c64(t, shift)),
                c64(t, 255)));
        memref::StoreOp::create(
            t, loc,
            arith::AddIOp::create(
                t, loc, memref::LoadOp::create(t, loc, hist, d), c64(t, 1)),
            hist, d);
        return SmallVector<Value>{};
      });
      // From byte 255 down: above = the count of higher bytes.
      Value no = arith::ConstantOp::create(kb, loc, kb.getBoolAttr(false));
      auto pick =
          each(kb, 256, {c64(kb, 0), c64(kb, 0), need, no},
               [&](OpBuilder &l, Value i, ValueRange a) {
                 Value d = arith::SubIOp::create(l, loc, index(loc, 255), i);
                 Value sum = arith::AddIOp::create(
                     l, loc, a[0], memref::LoadOp::create(l, loc, hist, d));
                 Value hit = arith::AndIOp::create(
                     l, loc,
                     arith::XOrIOp::create(l, loc, a[3],
                                           arith::ConstantOp::create(
                                               l, loc, l.getBoolAttr(true))),
                     arith::OrIOp::create(
                         l, loc, cmp(l, arith::CmpIPredicate::sge, sum, need),
                         cmp(l, arith::CmpIPredicate::eq, d, index(loc, 0))));
                 return SmallVector<Value>{
                     sum,
                     arith::SelectOp::create(
                         l, loc, hit,
                         arith::IndexCastOp::create(l, loc, i64, d), a[1]),
                     arith::SelectOp::create(
                         l, loc, hit, arith::SubIOp::create(l, loc, need, a[0]),
                         a[2]),
                     arith::OrIOp::create(l, loc, a[3], hit)};
               });
      prefix = arith::OrIOp::create(
          kb, loc, arith::ShLIOp::create(kb, loc, prefix, c64(kb, 8)),
          pick.getResult(1));
      need = pick.getResult(2);
    }
    Value t = prefix;
    // The winners: the keys > T and the first `need` keys equal to T (ties
    // to the lower index); the row written in the same pass.
    each(kb, m, {c64(kb, 0)}, [&](OpBuilder &l, Value j, ValueRange a) {
      Value kv = key(l, j);
      Value tie =
          arith::AndIOp::create(l, loc, cmp(l, arith::CmpIPredicate::eq, kv, t),
                                cmp(l, arith::CmpIPredicate::slt, a[0], need));
      Value win = arith::OrIOp::create(
          l, loc, cmp(l, arith::CmpIPredicate::ugt, kv, t), tie);
      Value at = view.offset(l, loc, r, j);
      Value val = memref::LoadOp::create(l, loc, vf, ValueRange{at});
      memref::StoreOp::create(
          l, loc, arith::SelectOp::create(l, loc, win, val, f32(l, loc, 0.0f)),
          of, ValueRange{at});
      return SmallVector<Value>{arith::AddIOp::create(
          l, loc, a[0], arith::ExtUIOp::create(l, loc, i64, tie))};
    });
  });
  return success();
}

LogicalResult EntryLowering::lowerKWinnersDuty(sdl::KWinnersDutyOp op) {
  Location loc = op.getLoc();
  if (!kwinnersType(op.getOutput().getType()))
    return op.emitOpError("on the CUDA target needs an f32 [B, n] or "
                          "[B, C, H, W] output with static inner sizes");
  const KwView view = kwView(op.getOutput(), false);
  const int64_t c = view.channels, sp = view.spatial;
  const bool countSteps = op.getBoostPeriod() > 0;
  Value y = flat(b, loc, buffers.lookup(op.getOutput()));
  Value batch = dim(loc, buffers.lookup(op.getOutput()), 0);
  Value duty = buffers.lookup(op.getDuty());
  Value out = resultBuffer(op.getResult(), duty);
  buffers.map(op.getResult(), out);
  Value entries = dim(loc, duty, 0);
  launch1D(loc, entries, "kwinners_duty", [&](OpBuilder &kb, Value j) {
    Value jc = arith::MinUIOp::create(kb, loc, j, index(loc, c - 1));
    // active = #(y[b, jc, s] > 0), b outer and s inner (the CPU's order),
    // divided by H*W for KWinners2d.
    Value act = accumulate(
        kb, loc, index(loc, 0), batch, f32(kb, loc, 0.0f),
        [&](OpBuilder &l, Value bi, Value acc) {
          Value base = arith::AddIOp::create(
              l, loc, arith::MulIOp::create(l, loc, bi, index(loc, c * sp)),
              arith::MulIOp::create(l, loc, jc, index(loc, sp)));
          return accumulate(
              l, loc, index(loc, 0), index(loc, sp), acc,
              [&](OpBuilder &p, Value si, Value a) {
                Value yv = memref::LoadOp::create(
                    p, loc, y,
                    ValueRange{arith::AddIOp::create(p, loc, base, si)});
                Value pos = arith::CmpFOp::create(
                    p, loc, arith::CmpFPredicate::OGT, yv, f32(p, loc, 0.0f));
                return arith::AddFOp::create(
                    p, loc, a,
                    arith::SelectOp::create(p, loc, pos, f32(p, loc, 1.0f),
                                            f32(p, loc, 0.0f)));
              });
        });
    if (sp != 1)
      act = arith::DivFOp::create(kb, loc, act,
                                  f32(kb, loc, static_cast<float>(sp)));
    Value bf = indexToF32(kb, loc, batch);
    Value count = memref::LoadOp::create(kb, loc, duty, index(loc, c));
    Value next = arith::MinimumFOp::create(
        kb, loc, arith::AddFOp::create(kb, loc, count, bf),
        f32(kb, loc, static_cast<float>(op.getPeriod())));
    Value keep = arith::SubFOp::create(kb, loc, next, bf);
    Value old = memref::LoadOp::create(kb, loc, duty, j);
    Value upd = arith::DivFOp::create(
        kb, loc,
        arith::AddFOp::create(kb, loc,
                              arith::MulFOp::create(kb, loc, old, keep), act),
        next);
    Value isCount = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::eq, j,
                                          index(loc, c));
    Value r = arith::SelectOp::create(kb, loc, isCount, next, upd);
    if (countSteps) {
      Value isSteps = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::eq,
                                            j, index(loc, c + 1));
      r = arith::SelectOp::create(
          kb, loc, isSteps,
          arith::AddFOp::create(kb, loc, old, f32(kb, loc, 1.0f)), r);
    }
    memref::StoreOp::create(kb, loc, r, out, j);
  });
  return success();
}
