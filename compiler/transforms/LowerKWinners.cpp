//===- LowerKWinners.cpp - k-winners-take-all to linalg -------------------===//
//
// Implements `sdl-lower-kwinners`: sdl.kwinners, sdl.kwinners_grad and
// sdl.kwinners_duty become linalg.generic ops on tensors (run before
// convert-sdl-to-linalg). The winners are chosen in a 2-D view [R, m] of
// the input, one winner set per row: [B, n] itself; [B, C*H*W] for a
// rank-4 input (KWinners2d, global); [B*H*W, C] (the input transposed to
// [B, H, W, C]) with `local`. Each view column j has a channel c(j) (j, j /
// (H*W), j) whose duty cycle sets its boost. The winners of a row are found
// without sorting, in passes over the row's m values that are plain linalg
// reductions:
//
//   s      = boost_strength (* boost_factor^floor(steps / boost_period))
//   boost[j] = exp((k / units - duty[c(j)]) * s)              (f32)
//   key[r, j] = order-preserving u32 of x[r, j] * boost[j]
//   T[r]   = the k-th largest key: 32 bisection steps on [0, 2^32), each
//            counting key >= mid (the count stays >= k at lo)
//   c[r]   = with q = k - #(key > T) winners still to take among the keys
//            equal to T, the smallest c with #(key == T, j < c) >= q
//            (bisection over [1, m])
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

/// The winner search over the rows of a 2-D view `x` [R, n] (R dynamic).
class KWinnersLowering {
public:
  KWinnersLowering(OpBuilder &b, Location loc, Value x)
      : b(b), loc(loc), x(x), xt(cast<RankedTensorType>(x.getType())),
        n(xt.getDimSize(1)) {
    batch = tensor::DimOp::create(b, loc, x, 0);
  }

  /// The winners mask [R, n] (i1) of `x` with boost factors `boost` [n].
  Value winners(Value boost, int64_t k) {
    Value keys = orderedKeys(boost);
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

  /// Order-preserving u32 keys of the boosted values [R, n] (as i32).
  Value orderedKeys(Value boost) {
    MLIRContext *ctx = b.getContext();
    auto d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx);
    auto outT =
        RankedTensorType::get({ShapedType::kDynamic, n}, b.getI32Type());
    Value e = tensor::EmptyOp::create(b, loc, outT, ValueRange{batch});
    return linalg::GenericOp::create(
               b, loc, TypeRange{outT}, ValueRange{x, boost}, ValueRange{e},
               ArrayRef<AffineMap>{AffineMap::get(2, 0, {d0, d1}, ctx),
                                   AffineMap::get(2, 0, {d1}, ctx),
                                   AffineMap::get(2, 0, {d0, d1}, ctx)},
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                             utils::IteratorType::parallel},
               [&](OpBuilder &nb, Location nl, ValueRange a) {
                 Value v = arith::MulFOp::create(nb, nl, a[0], a[1]);
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

/// The shape of a kwinners op: input [B, n] (channels n, spatial 1) or
/// [B, C, H, W] (spatial H*W), and whether winners are chosen per location.
struct KWShape {
  KWShape(Value x, bool local)
      : xt(cast<RankedTensorType>(x.getType())), local(local),
        channels(xt.getDimSize(1)),
        spatial(xt.getRank() == 4 ? xt.getDimSize(2) * xt.getDimSize(3) : 1) {}
  /// The number of values one winner set is chosen among.
  int64_t units() const { return local ? channels : channels * spatial; }

  RankedTensorType xt;
  bool local;
  int64_t channels, spatial;
};

Value f64Const(OpBuilder &b, Location loc, double v) {
  return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v));
}

/// The boost strength of this step (an f32 scalar): boost_strength, times
/// boost_factor^floor(steps / boost_period) when the buffer counts steps.
Value boostStrength(OpBuilder &b, Location loc, Value duty, const KWShape &sh,
                    double strength, double factor, int64_t period) {
  Type f32 = b.getF32Type();
  if (period <= 0)
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(f32, strength));
  Value steps = tensor::ExtractOp::create(
      b, loc, duty,
      ValueRange{arith::ConstantIndexOp::create(b, loc, sh.channels + 1)});
  Type i64 = b.getI64Type();
  Value decays = arith::DivSIOp::create(
      b, loc, arith::FPToSIOp::create(b, loc, i64, steps),
      arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(period)));
  Value pow = math::PowFOp::create(
      b, loc, f64Const(b, loc, factor),
      arith::SIToFPOp::create(b, loc, b.getF64Type(), decays));
  return arith::TruncFOp::create(
      b, loc, f32,
      arith::MulFOp::create(b, loc, f64Const(b, loc, strength), pow));
}

/// The boost factor of each column of the view (see the file comment):
/// exp((k / units - duty[c]) * strength).
Value boostVector(OpBuilder &b, Location loc, Value duty, const KWShape &sh,
                  int64_t k, Value strength) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  int64_t c = sh.channels;
  auto vecT = RankedTensorType::get({c}, f32);
  Value cycles = tensor::ExtractSliceOp::create(
      b, loc, vecT, duty, ArrayRef<OpFoldResult>{b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(c)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  float density = static_cast<float>(double(k) / double(sh.units()));
  auto id1 = AffineMap::getMultiDimIdentityMap(1, ctx);
  Value boost =
      linalg::GenericOp::create(
          b, loc, TypeRange{vecT}, ValueRange{cycles},
          ValueRange{tensor::EmptyOp::create(b, loc, vecT.getShape(), f32)},
          ArrayRef<AffineMap>{id1, id1},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
          [&](OpBuilder &nb, Location nl, ValueRange a) {
            Value d = arith::SubFOp::create(
                nb, nl,
                arith::ConstantOp::create(nb, nl,
                                          nb.getFloatAttr(f32, density)),
                a[0]);
            linalg::YieldOp::create(
                nb, nl,
                ValueRange{math::ExpOp::create(
                    nb, nl, arith::MulFOp::create(nb, nl, d, strength))});
          })
          .getResult(0);
  if (sh.units() == c)
    return boost;
  // Global 2-D: column j = c * H*W + s has channel c.
  auto repT = RankedTensorType::get({c, sh.spatial}, f32);
  Value rep =
      linalg::GenericOp::create(
          b, loc, TypeRange{repT}, ValueRange{boost},
          ValueRange{tensor::EmptyOp::create(b, loc, repT.getShape(), f32)},
          ArrayRef<AffineMap>{
              AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx),
              AffineMap::getMultiDimIdentityMap(2, ctx)},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                        utils::IteratorType::parallel},
          [](OpBuilder &nb, Location nl, ValueRange a) {
            linalg::YieldOp::create(nb, nl, ValueRange{a[0]});
          })
          .getResult(0);
  return tensor::CollapseShapeOp::create(
      b, loc, rep, ArrayRef<ReassociationIndices>{{0, 1}});
}

/// `v` (the input's shape) as the [R, m] view the winners are chosen in.
Value toView(OpBuilder &b, Location loc, Value v, const KWShape &sh) {
  if (sh.xt.getRank() == 2)
    return v;
  if (!sh.local)
    return tensor::CollapseShapeOp::create(
        b, loc, v, ArrayRef<ReassociationIndices>{{0}, {1, 2, 3}});
  SmallVector<OpFoldResult> dims = {
      tensor::DimOp::create(b, loc, v, 0).getResult(),
      b.getIndexAttr(sh.xt.getDimSize(2)), b.getIndexAttr(sh.xt.getDimSize(3)),
      b.getIndexAttr(sh.channels)};
  Value init = tensor::EmptyOp::create(b, loc, dims, sh.xt.getElementType());
  Value t = linalg::TransposeOp::create(b, loc, v, init,
                                        ArrayRef<int64_t>{0, 2, 3, 1})
                ->getResult(0);
  return tensor::CollapseShapeOp::create(
      b, loc, t, ArrayRef<ReassociationIndices>{{0, 1, 2}, {3}});
}

/// The inverse of toView.
Value fromView(OpBuilder &b, Location loc, Value v, const KWShape &sh) {
  if (sh.xt.getRank() == 2)
    return v;
  if (!sh.local)
    return tensor::ExpandShapeOp::create(
        b, loc, sh.xt, v, ArrayRef<ReassociationIndices>{{0}, {1, 2, 3}});
  auto nhwc = RankedTensorType::get({ShapedType::kDynamic, sh.xt.getDimSize(2),
                                     sh.xt.getDimSize(3), sh.channels},
                                    sh.xt.getElementType());
  Value e = tensor::ExpandShapeOp::create(
      b, loc, nhwc, v, ArrayRef<ReassociationIndices>{{0, 1, 2}, {3}});
  Value init = tensor::EmptyOp::create(
      b, loc, sh.xt, ValueRange{tensor::DimOp::create(b, loc, e, 0)});
  return linalg::TransposeOp::create(b, loc, e, init,
                                     ArrayRef<int64_t>{0, 3, 1, 2})
      ->getResult(0);
}

/// `v` at the winners of `x` (both the input's shape), 0 elsewhere.
Value keepWinners(OpBuilder &b, Location loc, Value x, Value duty, Value v,
                  int64_t k, bool local, double strength, double factor,
                  int64_t period) {
  KWShape sh(x, local);
  Value s = boostStrength(b, loc, duty, sh, strength, factor, period);
  Value boost = boostVector(b, loc, duty, sh, k, s);
  KWinnersLowering l(b, loc, toView(b, loc, x, sh));
  Value win = l.winners(boost, k);
  return fromView(b, loc, l.masked(win, toView(b, loc, v, sh)), sh);
}

/// nupic.torch's update_duty_cycle (KWinners, KWinners2d) on the buffer
/// [C + 1] (sample count at C), counting a train step at C + 1 when the
/// buffer has it.
Value dutyUpdate(OpBuilder &b, Location loc, Value y, Value duty,
                 int64_t period, bool countSteps) {
  KWShape sh(y, false);
  int64_t c = sh.channels;
  Type f32 = sh.xt.getElementType();
  MLIRContext *ctx = b.getContext();
  // y as [B, C, S]; active[c] = #(y[b, c, s] > 0) / S.
  auto y3T = RankedTensorType::get({ShapedType::kDynamic, c, sh.spatial}, f32);
  Value y3 =
      sh.xt.getRank() == 2
          ? Value(tensor::ExpandShapeOp::create(
                b, loc, y3T, y, ArrayRef<ReassociationIndices>{{0}, {1, 2}}))
          : Value(tensor::CollapseShapeOp::create(
                b, loc, y, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}}));
  auto vecT = RankedTensorType::get({c}, f32);
  Value zero = arith::ConstantOp::create(b, loc, b.getFloatAttr(f32, 0.0));
  Value init =
      linalg::FillOp::create(
          b, loc, zero,
          tensor::EmptyOp::create(b, loc, vecT.getShape(), f32).getResult())
          .getResult(0);
  auto d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx),
       d2 = getAffineDimExpr(2, ctx);
  Value active =
      linalg::GenericOp::create(
          b, loc, TypeRange{vecT}, ValueRange{y3}, ValueRange{init},
          ArrayRef<AffineMap>{AffineMap::get(3, 0, {d0, d1, d2}, ctx),
                              AffineMap::get(3, 0, {d1}, ctx)},
          ArrayRef<utils::IteratorType>{utils::IteratorType::reduction,
                                        utils::IteratorType::parallel,
                                        utils::IteratorType::reduction},
          [](OpBuilder &nb, Location nl, ValueRange a) {
            Value z = arith::ConstantOp::create(
                nb, nl, nb.getFloatAttr(a[0].getType(), 0.0));
            Value one = arith::ConstantOp::create(
                nb, nl, nb.getFloatAttr(a[0].getType(), 1.0));
            Value pos = arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OGT,
                                              a[0], z);
            Value inc = arith::SelectOp::create(nb, nl, pos, one, z);
            linalg::YieldOp::create(
                nb, nl, ValueRange{arith::AddFOp::create(nb, nl, a[1], inc)});
          })
          .getResult(0);
  // c' = min(period, c + B); the buffer's count follows the duty cycles.
  Value batch = tensor::DimOp::create(b, loc, y, 0);
  Value bf = arith::UIToFPOp::create(
      b, loc, f32, arith::IndexCastUIOp::create(b, loc, b.getI64Type(), batch));
  Value count = tensor::ExtractOp::create(
      b, loc, duty, ValueRange{arith::ConstantIndexOp::create(b, loc, c)});
  Value next = arith::MinimumFOp::create(
      b, loc, arith::AddFOp::create(b, loc, count, bf),
      arith::ConstantOp::create(b, loc, b.getFloatAttr(f32, double(period))));
  Value keep = arith::SubFOp::create(b, loc, next, bf);
  // duty'[j] = (duty[j] * (c' - B) + active[j]) / c' for j < C; c' at C;
  // steps + 1 at C + 1.
  auto outT = cast<RankedTensorType>(duty.getType());
  Value out = tensor::EmptyOp::create(b, loc, outT.getShape(), f32);
  auto id1 = AffineMap::getMultiDimIdentityMap(1, ctx);
  return linalg::GenericOp::create(
             b, loc, TypeRange{outT}, ValueRange{duty}, ValueRange{out},
             ArrayRef<AffineMap>{id1, id1},
             ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
             [&](OpBuilder &nb, Location nl, ValueRange a) {
               auto ic = [&](int64_t v) {
                 return arith::ConstantIndexOp::create(nb, nl, v);
               };
               Value j = linalg::IndexOp::create(nb, nl, 0);
               Value jc = arith::MinUIOp::create(nb, nl, j, ic(c - 1));
               Value act =
                   tensor::ExtractOp::create(nb, nl, active, ValueRange{jc});
               if (sh.spatial != 1)
                 act = arith::DivFOp::create(
                     nb, nl, act,
                     arith::ConstantOp::create(
                         nb, nl, nb.getFloatAttr(f32, double(sh.spatial))));
               Value upd = arith::DivFOp::create(
                   nb, nl,
                   arith::AddFOp::create(
                       nb, nl, arith::MulFOp::create(nb, nl, a[0], keep), act),
                   next);
               Value isCount = arith::CmpIOp::create(
                   nb, nl, arith::CmpIPredicate::eq, j, ic(c));
               Value r = arith::SelectOp::create(nb, nl, isCount, next, upd);
               if (countSteps) {
                 Value isSteps = arith::CmpIOp::create(
                     nb, nl, arith::CmpIPredicate::eq, j, ic(c + 1));
                 Value inc = arith::AddFOp::create(
                     nb, nl, a[0],
                     arith::ConstantOp::create(nb, nl,
                                               nb.getFloatAttr(f32, 1.0)));
                 r = arith::SelectOp::create(nb, nl, isSteps, inc, r);
               }
               linalg::YieldOp::create(nb, nl, ValueRange{r});
             })
      .getResult(0);
}

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
        int64_t k = kw.getTraining() ? kw.getK() : kw.getKInference();
        v = keepWinners(
            rewriter, loc, kw.getInput(), kw.getDuty(), kw.getInput(), k,
            kw.getLocal(), kw.getBoostStrength().convertToDouble(),
            kw.getBoostFactor().convertToDouble(), kw.getBoostPeriod());
      } else if (auto g = dyn_cast<KWinnersGradOp>(op)) {
        v = keepWinners(
            rewriter, loc, g.getInput(), g.getDuty(), g.getGrad(), g.getK(),
            g.getLocal(), g.getBoostStrength().convertToDouble(),
            g.getBoostFactor().convertToDouble(), g.getBoostPeriod());
      } else {
        auto d = cast<KWinnersDutyOp>(op);
        v = dutyUpdate(rewriter, loc, d.getOutput(), d.getDuty(), d.getPeriod(),
                       d.getBoostPeriod() > 0);
      }
      rewriter.replaceOp(op, v);
    }
  }
};

} // namespace
