//===- LowerKWinners.cpp - k-winners-take-all to linalg -------------------===//
//
// Implements `sdl-lower-kwinners`: sdl.kwinners, sdl.kwinners_grad and
// sdl.kwinners_duty become linalg.generic ops on tensors (run before
// convert-sdl-to-linalg). The winners of a sample are found without
// sorting, in passes over the sample's n values that are plain linalg
// reductions:
//
//   boost[j] = exp((k / n - duty[j]) * boost_strength)       (f32)
//   key[b, j] = order-preserving u32 of x[b, j] * boost[j]
//   T[b]   = the k-th largest key: 32 bisection steps on [0, 2^32), each
//            counting key >= mid (the count stays >= k at lo)
//   c[b]   = with r = k - #(key > T) winners still to take among the keys
//            equal to T, the smallest c with #(key == T, j < c) >= r
//            (bisection over [1, n])
//   win    = key > T  or  (key == T and j < c)
//
// so exactly k entries win and ties go to the lower index. The output keeps
// x at the winners (0 elsewhere), the gradient keeps dy there; the duty
// update is nupic.torch's (see SdlOps.td).
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include "llvm/Support/MathExtras.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERKWINNERS
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;

namespace {

using Body = function_ref<Value(OpBuilder &, Location, ValueRange)>;

class KWinnersLowering {
public:
  KWinnersLowering(OpBuilder &b, Location loc, Value x)
      : b(b), loc(loc), x(x), xt(cast<RankedTensorType>(x.getType())),
        n(xt.getDimSize(1)) {
    batch = tensor::DimOp::create(b, loc, x, 0);
  }

  /// The winners mask [B, n] (i1) of `x` with boost buffer `duty`.
  Value winners(Value duty, int64_t k, double boostStrength) {
    Value keys = orderedKeys(duty, k, boostStrength);
    Type i64 = b.getI64Type();
    // T: the largest t with #(key >= t) >= k.
    Value lo = fill1D(i64, 0), hi = fill1D(i64, 0xFFFFFFFFll);
    auto loop =
        scf::ForOp::create(b, loc, idx(0), idx(32), idx(1), ValueRange{lo, hi});
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(loop.getBody());
      Value l = loop.getRegionIterArgs()[0], h = loop.getRegionIterArgs()[1];
      Value mid = map1D(
          {l, h}, i64, [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
            Value one =
                arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(1));
            Value span = arith::AddIOp::create(
                nb, nl, arith::SubIOp::create(nb, nl, a[1], a[0]), one);
            return arith::AddIOp::create(
                nb, nl, a[0], arith::ShRUIOp::create(nb, nl, span, one));
          });
      Value cnt = countPerSample(keys, mid, arith::CmpIPredicate::uge);
      // lo = cnt >= k ? mid : lo;  hi = cnt >= k ? hi : mid - 1 (in place,
      // so that the loop's tensors bufferize to its iter_args).
      auto step = [&](Value dest, bool isLo) {
        return update1D(
            dest, {mid, cnt},
            [&, isLo](OpBuilder &nb, Location nl, ValueRange a) -> Value {
              Value kk =
                  arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(k));
              Value ok = arith::CmpIOp::create(
                  nb, nl, arith::CmpIPredicate::sge, a[1], kk);
              Value one =
                  arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(1));
              if (isLo)
                return arith::SelectOp::create(nb, nl, ok, a[0], a[2]);
              return arith::SelectOp::create(
                  nb, nl, ok, a[2], arith::SubIOp::create(nb, nl, a[0], one));
            });
      };
      Value newLo = step(l, true), newHi = step(h, false);
      scf::YieldOp::create(b, loc, ValueRange{newLo, newHi});
    }
    Value t = loop.getResult(0);
    // r = k - #(key > T) ties to take, by index: the cut c.
    Value gt = countPerSample(keys, t, arith::CmpIPredicate::ugt);
    Value r = map1D({gt}, i64, [&](OpBuilder &nb, Location nl, ValueRange a) {
      Value kk = arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(k));
      return arith::SubIOp::create(nb, nl, kk, a[0]).getResult();
    });
    int64_t steps = llvm::Log2_64_Ceil(static_cast<uint64_t>(n)) + 1;
    auto cut = scf::ForOp::create(b, loc, idx(0), idx(steps), idx(1),
                                  ValueRange{fill1D(i64, 1), fill1D(i64, n)});
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(cut.getBody());
      Value l = cut.getRegionIterArgs()[0], h = cut.getRegionIterArgs()[1];
      Value mid = map1D(
          {l, h}, i64, [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
            Value one =
                arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(1));
            return arith::ShRUIOp::create(
                nb, nl, arith::AddIOp::create(nb, nl, a[0], a[1]), one);
          });
      Value cnt = countTiesBefore(keys, t, mid);
      // lo = cnt >= r ? lo : mid + 1;  hi = cnt >= r ? mid : hi.
      auto step = [&](Value dest, bool isLo) {
        return update1D(
            dest, {mid, cnt, r},
            [isLo](OpBuilder &nb, Location nl, ValueRange a) -> Value {
              Value ok = arith::CmpIOp::create(
                  nb, nl, arith::CmpIPredicate::sge, a[1], a[2]);
              Value one =
                  arith::ConstantOp::create(nb, nl, nb.getI64IntegerAttr(1));
              if (isLo)
                return arith::SelectOp::create(
                    nb, nl, ok, a[3], arith::AddIOp::create(nb, nl, a[0], one));
              return arith::SelectOp::create(nb, nl, ok, a[0], a[3]);
            });
      };
      Value newLo = step(l, true), newHi = step(h, false);
      scf::YieldOp::create(b, loc, ValueRange{newLo, newHi});
    }
    Value c = cut.getResult(0);
    // win = key > T or (key == T and j < c).
    return generic2D(
        {keys, t, c}, {true, false, false}, b.getI1Type(),
        [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value key = arith::ExtUIOp::create(nb, nl, nb.getI64Type(), a[0]);
          Value j = arith::IndexCastOp::create(
              nb, nl, nb.getI64Type(), linalg::IndexOp::create(nb, nl, 1));
          Value gt = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ugt,
                                           key, a[1]);
          Value eq = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                           key, a[1]);
          Value before =
              arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt, j, a[2]);
          return arith::OrIOp::create(
              nb, nl, gt, arith::AndIOp::create(nb, nl, eq, before));
        });
  }

  /// `v` where `mask`, else 0 (v has x's type).
  Value masked(Value mask, Value v) {
    return generic2D({mask, v}, {true, true}, xt.getElementType(),
                     [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                       Value z = arith::ConstantOp::create(
                           nb, nl, nb.getFloatAttr(a[1].getType(), 0.0));
                       return arith::SelectOp::create(nb, nl, a[0], a[1], z);
                     });
  }

  /// nupic.torch's update_duty_cycle on the buffer [n + 1] (count last).
  Value dutyUpdate(Value y, Value duty, int64_t period) {
    Type f32 = xt.getElementType();
    auto vecT = RankedTensorType::get({n}, f32);
    // active[j] = #(y[b, j] > 0) over the batch.
    Value zero = arith::ConstantOp::create(b, loc, b.getFloatAttr(f32, 0.0));
    Value init =
        linalg::FillOp::create(
            b, loc, zero,
            tensor::EmptyOp::create(b, loc, vecT.getShape(), f32).getResult())
            .getResult(0);
    MLIRContext *ctx = b.getContext();
    auto d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx);
    Value active =
        linalg::GenericOp::create(
            b, loc, TypeRange{vecT}, ValueRange{y}, ValueRange{init},
            ArrayRef<AffineMap>{AffineMap::get(2, 0, {d0, d1}, ctx),
                                AffineMap::get(2, 0, {d1}, ctx)},
            ArrayRef<utils::IteratorType>{utils::IteratorType::reduction,
                                          utils::IteratorType::parallel},
            [](OpBuilder &nb, Location nl, ValueRange a) {
              Value z = arith::ConstantOp::create(
                  nb, nl, nb.getFloatAttr(a[0].getType(), 0.0));
              Value one = arith::ConstantOp::create(
                  nb, nl, nb.getFloatAttr(a[0].getType(), 1.0));
              Value pos = arith::CmpFOp::create(
                  nb, nl, arith::CmpFPredicate::OGT, a[0], z);
              Value inc = arith::SelectOp::create(nb, nl, pos, one, z);
              linalg::YieldOp::create(
                  nb, nl, ValueRange{arith::AddFOp::create(nb, nl, a[1], inc)});
            })
            .getResult(0);
    // c' = min(period, c + B); the buffer's count is its last value.
    Value bf = arith::UIToFPOp::create(
        b, loc, f32,
        arith::IndexCastUIOp::create(b, loc, b.getI64Type(), batch));
    Value count = tensor::ExtractOp::create(b, loc, duty, ValueRange{idx(n)});
    Value next = arith::MinimumFOp::create(
        b, loc, arith::AddFOp::create(b, loc, count, bf),
        arith::ConstantOp::create(b, loc, b.getFloatAttr(f32, double(period))));
    Value keep = arith::SubFOp::create(b, loc, next, bf);
    // duty'[j] = (duty[j] * (c' - B) + active[j]) / c' for j < n; c' at n.
    auto outT = cast<RankedTensorType>(duty.getType());
    Value out = tensor::EmptyOp::create(b, loc, outT.getShape(), f32);
    return linalg::GenericOp::create(
               b, loc, TypeRange{outT}, ValueRange{duty}, ValueRange{out},
               ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(1, ctx),
                                   AffineMap::getMultiDimIdentityMap(1, ctx)},
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 Value j = linalg::IndexOp::create(nb, nl, 0);
                 Value isCount = arith::CmpIOp::create(
                     nb, nl, arith::CmpIPredicate::eq, j,
                     arith::ConstantIndexOp::create(nb, nl, n));
                 Value jc = arith::MinUIOp::create(
                     nb, nl, j, arith::ConstantIndexOp::create(nb, nl, n - 1));
                 Value act =
                     tensor::ExtractOp::create(nb, nl, active, ValueRange{jc});
                 Value upd = arith::DivFOp::create(
                     nb, nl,
                     arith::AddFOp::create(
                         nb, nl, arith::MulFOp::create(nb, nl, a[0], keep),
                         act),
                     next);
                 linalg::YieldOp::create(nb, nl,
                                         ValueRange{arith::SelectOp::create(
                                             nb, nl, isCount, next, upd)});
               })
        .getResult(0);
  }

private:
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value cst(Type t, int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(t, v));
  }

  RankedTensorType vec1D(Type t) {
    return RankedTensorType::get({ShapedType::kDynamic}, t);
  }

  /// A [B] tensor of `t` filled with `v`.
  Value fill1D(Type t, int64_t v) {
    Value e = tensor::EmptyOp::create(b, loc, vec1D(t), ValueRange{batch});
    return linalg::FillOp::create(b, loc, cst(t, v), e).getResult(0);
  }

  /// Elementwise op over [B] tensors.
  Value map1D(ValueRange ins, Type t, Body body) {
    Value e = tensor::EmptyOp::create(b, loc, vec1D(t), ValueRange{batch});
    SmallVector<AffineMap> maps(
        ins.size() + 1, AffineMap::getMultiDimIdentityMap(1, b.getContext()));
    return linalg::GenericOp::create(
               b, loc, TypeRange{vec1D(t)}, ins, ValueRange{e}, maps,
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 linalg::YieldOp::create(
                     nb, nl, ValueRange{body(nb, nl, a.drop_back())});
               })
        .getResult(0);
  }

  /// `dest` [B] replaced elementwise by body(ins..., dest) (in place).
  Value update1D(Value dest, ValueRange ins, Body body) {
    SmallVector<AffineMap> maps(
        ins.size() + 1, AffineMap::getMultiDimIdentityMap(1, b.getContext()));
    return linalg::GenericOp::create(
               b, loc, TypeRange{dest.getType()}, ins, ValueRange{dest}, maps,
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 linalg::YieldOp::create(nb, nl, ValueRange{body(nb, nl, a)});
               })
        .getResult(0);
  }

  /// Elementwise op over [B, n]; `full[i]` says whether input i is [B, n]
  /// (else [B]).
  Value generic2D(ValueRange ins, ArrayRef<bool> full, Type t, Body body) {
    MLIRContext *ctx = b.getContext();
    auto d0 = getAffineDimExpr(0, ctx);
    SmallVector<AffineMap> maps;
    for (bool f : full)
      maps.push_back(f ? AffineMap::getMultiDimIdentityMap(2, ctx)
                       : AffineMap::get(2, 0, {d0}, ctx));
    maps.push_back(AffineMap::getMultiDimIdentityMap(2, ctx));
    auto outT = RankedTensorType::get({ShapedType::kDynamic, n}, t);
    Value e = tensor::EmptyOp::create(b, loc, outT, ValueRange{batch});
    return linalg::GenericOp::create(
               b, loc, TypeRange{outT}, ins, ValueRange{e}, maps,
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                             utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 linalg::YieldOp::create(
                     nb, nl, ValueRange{body(nb, nl, a.drop_back())});
               })
        .getResult(0);
  }

  /// Per sample, the number of j with `reduce(key[b, j], bound[b], j)`.
  Value reduceCount(ValueRange ins, Body pred) {
    MLIRContext *ctx = b.getContext();
    auto d0 = getAffineDimExpr(0, ctx);
    SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(2, ctx)};
    for (size_t i = 1; i < ins.size(); ++i)
      maps.push_back(AffineMap::get(2, 0, {d0}, ctx));
    maps.push_back(AffineMap::get(2, 0, {d0}, ctx));
    Type i64 = b.getI64Type();
    return linalg::GenericOp::create(
               b, loc, TypeRange{vec1D(i64)}, ins, ValueRange{fill1D(i64, 0)},
               maps,
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                             utils::IteratorType::reduction},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 Value hit = pred(nb, nl, a.drop_back());
                 Value inc =
                     arith::ExtUIOp::create(nb, nl, nb.getI64Type(), hit);
                 linalg::YieldOp::create(
                     nb, nl,
                     ValueRange{arith::AddIOp::create(nb, nl, a.back(), inc)});
               })
        .getResult(0);
  }

  Value countPerSample(Value keys, Value bound, arith::CmpIPredicate p) {
    return reduceCount(
        {keys, bound}, [p](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value key = arith::ExtUIOp::create(nb, nl, nb.getI64Type(), a[0]);
          return arith::CmpIOp::create(nb, nl, p, key, a[1]);
        });
  }

  /// #(key == t and j < cut) per sample.
  Value countTiesBefore(Value keys, Value t, Value cut) {
    return reduceCount(
        {keys, t, cut}, [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value key = arith::ExtUIOp::create(nb, nl, nb.getI64Type(), a[0]);
          Value j = arith::IndexCastOp::create(
              nb, nl, nb.getI64Type(), linalg::IndexOp::create(nb, nl, 1));
          Value eq = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                           key, a[1]);
          Value before =
              arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt, j, a[2]);
          return arith::AndIOp::create(nb, nl, eq, before);
        });
  }

  /// Order-preserving u32 keys of the boosted values [B, n] (as i32).
  Value orderedKeys(Value duty, int64_t k, double boostStrength) {
    Type f32 = xt.getElementType();
    MLIRContext *ctx = b.getContext();
    auto d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx);
    // boost[j] (the duty buffer's first n values).
    float density = static_cast<float>(double(k) / double(n));
    float strength = static_cast<float>(boostStrength);
    auto outT =
        RankedTensorType::get({ShapedType::kDynamic, n}, b.getI32Type());
    Value e = tensor::EmptyOp::create(b, loc, outT, ValueRange{batch});
    return linalg::GenericOp::create(
               b, loc, TypeRange{outT}, ValueRange{x, duty}, ValueRange{e},
               ArrayRef<AffineMap>{AffineMap::get(2, 0, {d0, d1}, ctx),
                                   AffineMap::get(2, 0, {d1}, ctx),
                                   AffineMap::get(2, 0, {d0, d1}, ctx)},
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                             utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 auto fc = [&](float v) {
                   return arith::ConstantOp::create(nb, nl,
                                                    nb.getFloatAttr(f32, v));
                 };
                 Value boost = math::ExpOp::create(
                     nb, nl,
                     arith::MulFOp::create(
                         nb, nl,
                         arith::SubFOp::create(nb, nl, fc(density), a[1]),
                         fc(strength)));
                 Value v = arith::MulFOp::create(nb, nl, a[0], boost);
                 Type i32 = nb.getI32Type();
                 Value u = arith::BitcastOp::create(nb, nl, i32, v);
                 Value sign = arith::ShRSIOp::create(
                     nb, nl, u,
                     arith::ConstantOp::create(nb, nl,
                                               nb.getI32IntegerAttr(31)));
                 Value flip = arith::OrIOp::create(
                     nb, nl, sign,
                     arith::ConstantOp::create(
                         nb, nl,
                         nb.getI32IntegerAttr(
                             static_cast<int32_t>(0x80000000u))));
                 linalg::YieldOp::create(
                     nb, nl,
                     ValueRange{arith::XOrIOp::create(nb, nl, u, flip)});
               })
        .getResult(0);
  }

  OpBuilder &b;
  Location loc;
  Value x;
  RankedTensorType xt;
  int64_t n;
  Value batch;
};

struct SdlLowerKWinners
    : mlir::sdl::impl::SdlLowerKWinnersBase<SdlLowerKWinners> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<KWinnersOp, KWinnersGradOp, KWinnersDutyOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      Location loc = op->getLoc();
      Value v;
      if (auto kw = dyn_cast<KWinnersOp>(op)) {
        KWinnersLowering l(rewriter, loc, kw.getInput());
        int64_t k = kw.getTraining() ? kw.getK() : kw.getKInference();
        Value win =
            l.winners(kw.getDuty(), k, kw.getBoostStrength().convertToDouble());
        v = l.masked(win, kw.getInput());
      } else if (auto g = dyn_cast<KWinnersGradOp>(op)) {
        KWinnersLowering l(rewriter, loc, g.getInput());
        Value win = l.winners(g.getDuty(), g.getK(),
                              g.getBoostStrength().convertToDouble());
        v = l.masked(win, g.getGrad());
      } else {
        auto d = cast<KWinnersDutyOp>(op);
        KWinnersLowering l(rewriter, loc, d.getOutput());
        v = l.dutyUpdate(d.getOutput(), d.getDuty(), d.getPeriod());
      }
      rewriter.replaceOp(op, v);
    }
  }
};

} // namespace
