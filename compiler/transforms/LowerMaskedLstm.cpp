//===- LowerMaskedLstm.cpp - masked LSTM layers to scf.for + linalg -------===//
//
// Implements `sdl-lower-masked-lstm`: sdl.masked_lstm and
// sdl.masked_lstm_grad become an scf.for over time whose body is linalg on
// tensors, the masks read next to the weights (W ∘ M is never formed; run
// before convert-sdl-to-linalg). Activations are [B, T, F], or [T, B, F]
// with `seq_first`. Gates are PyTorch's (i, f, g, o):
//
//   forward, for t = 0 .. T-1 (h_{-1} = c_{-1} = 0):
//     P(t, b, :)  = x(b, t, :) (W_ih ∘ M_ih)ᵀ + b_ih + b_hh  (all t at once)
//     z           = P(t) + h_{t-1} (W_hh ∘ M_hh)ᵀ
//     i, f, g, o  = σ(z_i), σ(z_f), tanh(z_g), σ(z_o)
//     c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
//   The stash [T + 1, B, 6H] keeps each step's (i, f, g, o, c_t, h_t) in row
//   t + 1 (row 0: c = h = 0); the value is h over time, or h_{T-1}.
//
//   backward (BPTT), for t = T-1 .. 0 with dh = dc = 0 (dh = dy for `last`):
//     dh += dy(:, t, :);  dc += dh o (1 - tanh²(c_t))
//     dz = (dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g²), dh tanh(c_t) o(1-o))
//     dh = dz (W_hh ∘ M_hh);  dc = dc f
//   then over all steps at once: dx = dZ (W_ih ∘ M_ih), dW_ih = M_ih ∘ dZᵀx,
//   dW_hh = M_hh ∘ dZᵀ h_{t-1}, db = Σ dZ.
//
// Each step's gate and cell ops are one multi-output linalg.generic writing
// straight into [B, H] slices of the stash (or of dZ, and dc's own buffer),
// so bufferization keeps the loop-carried tensors in place. Contractions
// keep a unit-stride parallel dim innermost (no reduction there, so LLVM
// vectorizes it): the forward ones read W_ihᵀ, M_ihᵀ, W_hhᵀ and M_hhᵀ
// (transposed once per call), the backward ones the weights as stored.
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERMASKEDLSTM
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::builders;

namespace {

using utils::IteratorType;
constexpr IteratorType kPar = IteratorType::parallel;
constexpr IteratorType kRed = IteratorType::reduction;

/// Column blocks of the stash: gates i, f, g, o, then c and h.
enum Block : int64_t { GateI, GateF, GateG, GateO, Cell, Hidden };

class LstmLowering {
public:
  LstmLowering(OpBuilder &b, Location loc, Value x, Value wih, bool seqFirst)
      : b(b), loc(loc), f32(b.getF32Type()), seqFirst(seqFirst) {
    RankedTensorType xt = tensorOf(x);
    unsigned bDim = seqFirst ? 1 : 0;
    steps = xt.getDimSize(1 - bDim);
    hidden = tensorOf(wih).getDimSize(0) / 4;
    batchStatic = xt.getDimSize(bDim);
    batch =
        xt.isDynamicDim(bDim)
            ? OpFoldResult(tensor::DimOp::create(b, loc, x, bDim).getResult())
            : OpFoldResult(b.getIndexAttr(batchStatic));
  }

  /// Returns (value, stash).
  std::pair<Value, Value> forward(MaskedLstmOp op) {
    Value proj = inputProjection(op);
    // Wᵀ and Mᵀ (never W ∘ M): the recurrent contraction runs with the
    // gate dimension innermost, unit stride and no reduction there.
    Value whhT = transposed(b, loc, op.getWeightHh());
    Value mhhT = transposed(b, loc, op.getMaskHh());
    Value stash = fill(type({steps + 1, batchStatic, 6 * hidden}), 0.0);
    auto loop = scf::ForOp::create(
        b, loc, index(0), index(steps), index(1), ValueRange{stash},
        [&](OpBuilder &nb, Location, Value t, ValueRange iter) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, loc, step(whhT, mhhT, proj, t, iter[0]));
        });
    stash = loop.getResult(0);
    return {hiddenStates(stash, op.getLast()), stash};
  }

  /// Returns (dx, dW_ih, dW_hh, db).
  SmallVector<Value> backward(MaskedLstmGradOp op) {
    auto bh = type({batchStatic, hidden});
    Value dh = op.getLast() ? op.getGrad() : fill(bh, 0.0);
    Value dz = tensor::EmptyOp::create(
        b, loc, type({steps, batchStatic, 4 * hidden}), dynBatch());
    auto loop = scf::ForOp::create(
        b, loc, index(0), index(steps), index(1),
        ValueRange{dh, fill(bh, 0.0), dz},
        [&](OpBuilder &nb, Location, Value s, ValueRange iter) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value t = arith::SubIOp::create(b, loc, index(steps - 1), s);
          scf::YieldOp::create(b, loc, backStep(op, t, iter));
        });
    dz = loop.getResult(2);
    return {gradInput(op, dz), gradWeightIh(op, dz), gradWeightHh(op, dz),
            gradBias(dz)};
  }

private:
  OpBuilder &b;
  Location loc;
  Type f32;
  bool seqFirst; // activations [T, B, F] rather than [B, T, F]
  int64_t steps, hidden, batchStatic;
  OpFoldResult batch;

  RankedTensorType type(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, f32);
  }
  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  OpFoldResult attr(int64_t v) { return b.getIndexAttr(v); }
  SmallVector<Value> dynBatch() {
    if (auto v = dyn_cast<Value>(batch))
      return {v};
    return {};
  }
  Value fill(RankedTensorType t, double v) {
    SmallVector<Value> dyn;
    for (int64_t d : t.getShape())
      if (ShapedType::isDynamic(d))
        dyn.push_back(cast<Value>(batch));
    Value empty = tensor::EmptyOp::create(b, loc, t, dyn);
    return linalg::FillOp::create(b, loc, constF(b, loc, f32, v), empty)
        .getResult(0);
  }
  AffineExpr dim(unsigned d) { return b.getAffineDimExpr(d); }
  AffineMap mapE(unsigned numDims, ArrayRef<AffineExpr> exprs) {
    return AffineMap::get(numDims, 0, exprs, b.getContext());
  }
  AffineMap map(unsigned numDims, ArrayRef<unsigned> dims) {
    return pick(b.getContext(), numDims, dims);
  }

  /// Rows [B, cols] of `v` (rank 3, time-major) at time `t`, from column
  /// `col` on (rank-reduced).
  Value rowSlice(Value v, OpFoldResult t, int64_t col, int64_t cols) {
    return tensor::ExtractSliceOp::create(
        b, loc, type({batchStatic, cols}), v, {t, attr(0), attr(col)},
        {attr(1), batch, attr(cols)}, {attr(1), attr(1), attr(1)});
  }
  Value insertRow(Value src, Value dest, OpFoldResult t, int64_t col) {
    int64_t cols = tensorOf(src).getDimSize(1);
    return tensor::InsertSliceOp::create(
        b, loc, src, dest, {t, attr(0), attr(col)},
        {attr(1), batch, attr(cols)}, {attr(1), attr(1), attr(1)});
  }
  /// Columns [col, col + H) of a [B, n] value.
  Value columns(Value v, int64_t col) {
    return tensor::ExtractSliceOp::create(
        b, loc, type({batchStatic, hidden}), v, {attr(0), attr(col)},
        {batch, attr(hidden)}, {attr(1), attr(1)});
  }
  /// dy(:, t, :) of a sequence gradient [B, T, H].
  Value timeSlice(Value v, OpFoldResult t) {
    SmallVector<OpFoldResult> offsets{attr(0), t, attr(0)},
        sizes{batch, attr(1), attr(hidden)};
    if (seqFirst) {
      std::swap(offsets[0], offsets[1]);
      std::swap(sizes[0], sizes[1]);
    }
    return tensor::ExtractSliceOp::create(b, loc, type({batchStatic, hidden}),
                                          v, offsets, sizes,
                                          {attr(1), attr(1), attr(1)});
  }
  /// The leading dims (loop dims `t` and `b`) of an activation in its
  /// layout, followed by `rest`.
  SmallVector<unsigned> act(unsigned t, unsigned bd, ArrayRef<unsigned> rest) {
    SmallVector<unsigned> r =
        seqFirst ? SmallVector<unsigned>{t, bd} : SmallVector<unsigned>{bd, t};
    r.append(rest.begin(), rest.end());
    return r;
  }

  /// out(d_out...) += w * m * a over a contraction: the mask is applied to
  /// each weight as it is read (ins: a, w, m).
  static Value maskedFma(OpBuilder &nb, Location nl, ValueRange a) {
    Value wm = arith::MulFOp::create(nb, nl, a[1], a[2]);
    Value p = arith::MulFOp::create(nb, nl, a[0], wm);
    return arith::AddFOp::create(nb, nl, a[3], p);
  }

  /// P(t, b, g) = b_ih(g) + b_hh(g) + Σ_i x(b, t, i) (w ∘ m)(g, i), over
  /// dims (t, b, i, g) on Wᵀ and Mᵀ (g innermost, unit stride).
  Value inputProjection(MaskedLstmOp op) {
    auto pt = type({steps, batchStatic, 4 * hidden});
    Value init;
    if (op.getBiases().empty()) {
      init = fill(pt, 0.0);
    } else {
      Value empty = tensor::EmptyOp::create(b, loc, pt, dynBatch());
      init = generic(b, loc, op.getBiases(), empty,
                     {map(3, {2}), map(3, {2}), map(3, {0, 1, 2})},
                     {kPar, kPar, kPar},
                     [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                       return arith::AddFOp::create(nb, nl, a[0], a[1]);
                     });
    }
    return generic(b, loc,
                   {op.getInput(), transposed(b, loc, op.getWeightIh()),
                    transposed(b, loc, op.getMaskIh())},
                   init,
                   {map(4, act(0, 1, {2})), map(4, {2, 3}), map(4, {2, 3}),
                    map(4, {0, 1, 3})},
                   {kPar, kPar, kRed, kPar}, maskedFma);
  }

  /// One forward step: the new stash.
  Value step(Value whhT, Value mhhT, Value proj, Value t, Value stash) {
    Value t1 = arith::AddIOp::create(b, loc, t, index(1));
    Value hPrev = rowSlice(stash, t, Hidden * hidden, hidden);
    // z(b, g) = P(t, b, g) + Σ_k h(b, k) (w ∘ m)(g, k), dims (k, b, g): a
    // row of Wᵀ and Mᵀ is read once for the whole batch.
    Value z = generic(
        b, loc, {hPrev, whhT, mhhT}, rowSlice(proj, t, 0, 4 * hidden),
        {map(3, {1, 0}), map(3, {0, 2}), map(3, {0, 2}), map(3, {1, 2})},
        {kRed, kPar, kPar}, maskedFma);
    // Gates, cell and hidden state into stash row t + 1, dims (b, k); every
    // operand is a [B, H] slice (so each loop range is H).
    SmallVector<Value> ins, outs;
    for (int64_t j = GateI; j <= GateO; ++j)
      ins.push_back(columns(z, j * hidden));
    ins.push_back(rowSlice(stash, t, Cell * hidden, hidden));
    for (int64_t j = GateI; j <= Hidden; ++j)
      outs.push_back(rowSlice(stash, t1, j * hidden, hidden));
    SmallVector<AffineMap> maps(ins.size() + outs.size(), map(2, {0, 1}));
    auto cell = linalg::GenericOp::create(
        b, loc, ValueRange(outs).getTypes(), ins, outs, maps, {kPar, kPar},
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value i = sigmoid(nb, nl, a[0]), f = sigmoid(nb, nl, a[1]);
          Value g = math::TanhOp::create(nb, nl, a[2]);
          Value o = sigmoid(nb, nl, a[3]);
          Value c = arith::AddFOp::create(
              nb, nl, arith::MulFOp::create(nb, nl, f, a[4]),
              arith::MulFOp::create(nb, nl, i, g));
          Value h =
              arith::MulFOp::create(nb, nl, o, math::TanhOp::create(nb, nl, c));
          linalg::YieldOp::create(nb, nl, ValueRange{i, f, g, o, c, h});
        });
    for (int64_t j = GateI; j <= Hidden; ++j)
      stash = insertRow(cell.getResult(j), stash, t1, j * hidden);
    return stash;
  }

  static Value sigmoid(OpBuilder &nb, Location nl, Value v) {
    Type t = v.getType();
    Value one = arith::ConstantOp::create(nb, nl, t, nb.getFloatAttr(t, 1.0));
    Value e = math::ExpOp::create(nb, nl, arith::NegFOp::create(nb, nl, v));
    return arith::DivFOp::create(nb, nl, one,
                                 arith::AddFOp::create(nb, nl, one, e));
  }

  /// The value: h_t for every t ([B, T, H] or [T, B, H]) or h_{T-1}
  /// ([B, H]).
  Value hiddenStates(Value stash, bool last) {
    if (last)
      return rowSlice(stash, attr(steps), Hidden * hidden, hidden);
    auto yt = seqFirst ? type({steps, batchStatic, hidden})
                       : type({batchStatic, steps, hidden});
    Value empty = tensor::EmptyOp::create(b, loc, yt, dynBatch());
    // y(b, t, k) = stash(t + 1, b, 5H + k) over y's dims.
    unsigned t = seqFirst ? 0 : 1, bd = 1 - t;
    return generic(b, loc, {stash}, empty,
                   {mapE(3, {dim(t) + 1, dim(bd), dim(2) + Hidden * hidden}),
                    map(3, {0, 1, 2})},
                   {kPar, kPar, kPar},
                   [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  }

  /// One BPTT step at time `t`: (dh, dc, dZ) -> (dh, dc, dZ).
  SmallVector<Value> backStep(MaskedLstmGradOp op, Value t, ValueRange iter) {
    Value t1 = arith::AddIOp::create(b, loc, t, index(1));
    Value dh = iter[0], dc = iter[1], dz = iter[2];
    // ins: i, f, g, o, c_t, c_{t-1}, dh[, dy_t]; outs: dz_i, dz_f, dz_g,
    // dz_o, dc (updated in place, so the loop's tensors stay in place);
    // dims (b, k), every operand a [B, H] slice.
    SmallVector<Value> ins, outs;
    for (int64_t j = GateI; j <= Cell; ++j)
      ins.push_back(rowSlice(op.getStash(), t1, j * hidden, hidden));
    ins.push_back(rowSlice(op.getStash(), t, Cell * hidden, hidden));
    ins.push_back(dh);
    bool seq = !op.getLast();
    if (seq)
      ins.push_back(timeSlice(op.getGrad(), t));
    for (int64_t j = GateI; j <= GateO; ++j)
      outs.push_back(rowSlice(dz, t, j * hidden, hidden));
    outs.push_back(dc);
    size_t dcArg = ins.size() + 4;
    SmallVector<AffineMap> maps(ins.size() + outs.size(), map(2, {0, 1}));
    auto cell = linalg::GenericOp::create(
        b, loc, ValueRange(outs).getTypes(), ins, outs, maps, {kPar, kPar},
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          auto mul = [&](Value l, Value r) -> Value {
            return arith::MulFOp::create(nb, nl, l, r);
          };
          auto sub = [&](Value l, Value r) -> Value {
            return arith::SubFOp::create(nb, nl, l, r);
          };
          Value one = constF(nb, nl, a[0].getType(), 1.0);
          Value i = a[0], f = a[1], g = a[2], o = a[3], c = a[4];
          Value dht = seq ? arith::AddFOp::create(nb, nl, a[6], a[7]) : a[6];
          Value tc = math::TanhOp::create(nb, nl, c);
          Value dct = arith::AddFOp::create(
              nb, nl, a[dcArg], mul(mul(dht, o), sub(one, mul(tc, tc))));
          Value di = mul(mul(dct, g), mul(i, sub(one, i)));
          Value df = mul(mul(dct, a[5]), mul(f, sub(one, f)));
          Value dg = mul(mul(dct, i), sub(one, mul(g, g)));
          Value dout = mul(mul(dht, tc), mul(o, sub(one, o)));
          linalg::YieldOp::create(nb, nl,
                                  ValueRange{di, df, dg, dout, mul(dct, f)});
        });
    for (int64_t j = GateI; j <= GateO; ++j)
      dz = insertRow(cell.getResult(j), dz, t, j * hidden);
    // dh_{t-1}(b, k) = Σ_g dz(t, b, g) (w ∘ m)(g, k), dims (b, g, k) (k
    // innermost, unit stride), into dh's buffer (read above).
    Value zero = constF(b, loc, f32, 0.0);
    Value dhPrev = generic(
        b, loc,
        {rowSlice(dz, t, 0, 4 * hidden), op.getWeightHh(), op.getMaskHh()},
        linalg::FillOp::create(b, loc, zero, dh).getResult(0),
        {map(3, {0, 1}), map(3, {1, 2}), map(3, {1, 2}), map(3, {0, 2})},
        {kPar, kRed, kPar}, maskedFma);
    return {dhPrev, cell.getResult(4), dz};
  }

  /// dx(b, t, i) = Σ_g dZ(t, b, g) (w ∘ m)(g, i), dims (b, t, g, i) or
  /// (t, b, g, i) as x is laid out.
  Value gradInput(MaskedLstmGradOp op, Value dz) {
    unsigned t = seqFirst ? 0 : 1, bd = 1 - t;
    return generic(
        b, loc, {dz, op.getWeightIh(), op.getMaskIh()},
        fill(tensorOf(op.getInput()), 0.0),
        {map(4, {t, bd, 2}), map(4, {2, 3}), map(4, {2, 3}), map(4, {0, 1, 3})},
        {kPar, kPar, kRed, kPar}, maskedFma);
  }

  /// out(g, j) += dZ(t, b, g) a(t, b, j) m(g, j) over dims (t, b, g, j) with
  /// `aMap` reading `a`: exactly zero where the mask is.
  Value maskedWeightGrad(Value dz, Value a, AffineMap aMap, Value mask) {
    return generic(b, loc, {dz, a, mask}, fill(tensorOf(mask), 0.0),
                   {map(4, {0, 1, 2}), aMap, map(4, {2, 3}), map(4, {2, 3})},
                   {kRed, kRed, kPar, kPar}, maskedFma);
  }
  Value gradWeightIh(MaskedLstmGradOp op, Value dz) {
    return maskedWeightGrad(dz, op.getInput(), map(4, act(0, 1, {3})),
                            op.getMaskIh());
  }
  /// h_{t-1} is stash(t, b, 5H + k) for t < T.
  Value gradWeightHh(MaskedLstmGradOp op, Value dz) {
    Value rows = tensor::ExtractSliceOp::create(
        b, loc, type({steps, batchStatic, 6 * hidden}), op.getStash(),
        {attr(0), attr(0), attr(0)}, {attr(steps), batch, attr(6 * hidden)},
        {attr(1), attr(1), attr(1)});
    return maskedWeightGrad(dz, rows,
                            mapE(4, {dim(0), dim(1), dim(3) + Hidden * hidden}),
                            op.getMaskHh());
  }
  /// db(g) = Σ_{t, b} dZ(t, b, g).
  Value gradBias(Value dz) {
    return generic(b, loc, {dz}, fill(type({4 * hidden}), 0.0),
                   {map(3, {0, 1, 2}), map(3, {2})}, {kRed, kRed, kPar},
                   [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                     return arith::AddFOp::create(nb, nl, a[1], a[0]);
                   });
  }
};

struct SdlLowerMaskedLstm
    : mlir::sdl::impl::SdlLowerMaskedLstmBase<SdlLowerMaskedLstm> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<MaskedLstmOp, MaskedLstmGradOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      if (auto fwd = dyn_cast<MaskedLstmOp>(op)) {
        LstmLowering lower(rewriter, op->getLoc(), fwd.getInput(),
                           fwd.getWeightIh(), fwd.getSeqFirst());
        auto [value, stash] = lower.forward(fwd);
        rewriter.replaceOp(op, ValueRange{value, stash});
        continue;
      }
      auto grad = cast<MaskedLstmGradOp>(op);
      LstmLowering lower(rewriter, op->getLoc(), grad.getInput(),
                         grad.getWeightIh(), grad.getSeqFirst());
      rewriter.replaceOp(op, lower.backward(grad));
    }
  }
};

} // namespace
