//===- LowerMaskedConv2d.cpp - masked 2-D convolutions to linalg ----------===//
//
// Implements `sdl-lower-masked-conv2d`: sdl.masked_conv2d, its two
// backward ops and sdl.channel_sum become linalg.generic ops on tensors
// (run before convert-sdl-to-linalg), as im2col plus contractions. With G
// groups, activations [B, C, H, W] are viewed as [B, G, C/G, H, W] and the
// weight matrix [O, K] (K = C/G * KH * KW) as [G, O/G, K]
// (tensor.expand_shape); the zero padding is a padded copy xp of the
// input. The patch matrices of xp, one copy of each entry,
//
//   cols(b,g, (c,i,j), (y,x)) = colsT(b,g, (y,x), (c,i,j))
//                             = xp(b,g,c, y*sh + i*dh, x*sw + j*dw)
//
// turn each conv into a contraction whose innermost loop is a unit-stride
// axpy with one loop-invariant factor (vectorised by LLVM):
//
//   forward      y(b,g,o,p)  = bias + sum_k (w ∘ m)(g,o,k) cols(b,g,k,p)
//   grad input   dcolsT(b,g,p,k) = sum_o dy(b,g,o,p) (w ∘ m)(g,o,k), then
//                col2im: each entry added back where it was read from in
//                xp; dx is the interior
//   grad weight  dW(g,o,k) = m * sum_{b,p} dy(b,g,o,p) colsT(b,g,p,k)
//   channel_sum  db(o) = sum_{b,y,x} dy(b,o,y,x)
//
// with p = (y, x) the output position and k = (c, i, j). The mask is one
// more operand of the contractions with the weight, multiplying each
// weight as it is read, so W ∘ M is never formed; the weight gradient is
// exactly zero where the mask is zero, so every optimizer keeps masked
// weights at zero.
//
// Every generic but the small ones (bias gradient, mask product) runs on
// the runtime's threads: one generic per sample (the weight gradient: per
// output channel of a group) on buffers inside an scf.parallel marked for
// sparsec-outline-parallel, each output element written by one iteration.
//
//===----------------------------------------------------------------------===//

#include "transforms/BatchBlocks.h"
#include "transforms/LinalgBuilders.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERMASKEDCONV2D
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::builders;

namespace {

using utils::IteratorType;
constexpr IteratorType kPar = IteratorType::parallel;
constexpr IteratorType kRed = IteratorType::reduction;

class ConvLowering {
public:
  template <typename Op>
  ConvLowering(OpBuilder &b, Op op)
      : b(b), loc(op.getLoc()), kernel(op.getKernel()), stride(op.getStride()),
        padding(op.getPadding()), dilation(op.getDilation()),
        groups(op.getGroups()) {}

  /// y(b, g, o, p) = bias + sum_k (w ∘ m)(g, o, k) cols(b, g, k, p) over
  /// dims (b, g, o, k, p): an axpy along the output positions p.
  Value forward(MaskedConv2dOp op) {
    RankedTensorType yt = op.getType();
    Value cols = patches(op.getInput(), yt, /*transposed=*/false);
    auto [w, m] = groupedWeight(op.getWeight(), op.getMask());
    RankedTensorType ygt = flatGroupedType(yt);
    // Each sample's output starts as the bias (broadcast) or zeros.
    Value biasMem;
    if (Value bias = op.getBias()) {
      auto bt = RankedTensorType::get({groups, ygt.getDimSize(2)},
                                      ygt.getElementType());
      biasMem = blocks::buffer(
          b, loc,
          tensor::ExpandShapeOp::create(
              b, loc, bt, bias, ArrayRef<ReassociationIndices>{{0, 1}}));
    }
    auto init = [&](OpBuilder &nb, Location nl, Value out) {
      if (!biasMem) {
        linalg::FillOp::create(nb, nl,
                               constF(nb, nl, ygt.getElementType(), 0.0), out);
        return;
      }
      linalg::GenericOp::create(
          nb, nl, TypeRange{}, ValueRange{biasMem}, ValueRange{out},
          ArrayRef<AffineMap>{map(4, {1, 2}), map(4, {0, 1, 2, 3})},
          ArrayRef<IteratorType>{kPar, kPar, kPar, kPar},
          [](OpBuilder &bb, Location bl, ValueRange a) {
            linalg::YieldOp::create(bb, bl, a[0]);
          });
    };
    Value yg = parallelGeneric(0, {w, m, cols}, ygt,
                               {map(5, {1, 2, 3}), map(5, {1, 2, 3}),
                                map(5, {0, 1, 3, 4}), map(5, {0, 1, 2, 4})},
                               {kPar, kPar, kPar, kRed, kPar}, maskedFma, init);
    return unflatGrouped(yg, yt);
  }

  /// dcols(b, g, p, k) = sum_o dy(b, g, o, p) (w ∘ m)(g, o, k) over dims
  /// (b, g, p, o, k) (an axpy along k), then col2im: each patch entry is
  /// added back where it was read from. Windows overlap, so the scatter's
  /// dims other than b, g and c accumulate and are reductions.
  Value gradInput(MaskedConv2dGradInputOp op) {
    RankedTensorType dxt = op.getType(), dyt = tensorOf(op.getGrad());
    Value dyg = flatGrouped(op.getGrad());
    auto [w, m] = groupedWeight(op.getWeight(), op.getMask());
    RankedTensorType colsT = patchType(dxt, dyt, /*transposed=*/true);
    Value dcols =
        parallelGeneric(0, {m, w, dyg}, collapsedPatchType(colsT, true),
                        {map(5, {1, 3, 4}), map(5, {1, 3, 4}),
                         map(5, {0, 1, 3, 2}), map(5, {0, 1, 2, 4})},
                        {kPar, kPar, kPar, kRed, kPar}, maskedFma);
    Value dpatch = tensor::ExpandShapeOp::create(b, loc, colsT, dcols,
                                                 patchReassociation(true));
    RankedTensorType dxpt = groupedType(paddedType(dxt));
    Value dxg =
        parallelGeneric(0, {dpatch}, dxpt, {identity(7), window(true)},
                        {kPar, kPar, kRed, kRed, kPar, kRed, kRed},
                        [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                          return arith::AddFOp::create(nb, nl, a[1], a[0]);
                        });
    return interior(collapse(dxg, paddedType(dxt)), dxt);
  }

  /// dW(g, o, k) = m * sum_{b, p} dy(b, g, o, p) colsT(b, g, p, k) over
  /// dims (b, g, o, p, k): an axpy along k.
  Value gradWeight(MaskedConv2dGradWeightOp op) {
    RankedTensorType dyt = tensorOf(op.getGrad());
    Value dyg = flatGrouped(op.getGrad());
    Value colsT = patches(op.getInput(), dyt, /*transposed=*/true);
    RankedTensorType mt = tensorOf(op.getMask());
    RankedTensorType dwgt = groupedWeightType(mt);
    // In parallel over the output channels of a group (the batch is a
    // reduction here).
    Value acc = parallelGeneric(
        2, {dyg, colsT}, dwgt,
        {map(5, {0, 1, 2, 3}), map(5, {0, 1, 3, 4}), map(5, {1, 2, 4})},
        {kRed, kPar, kPar, kRed, kPar},
        [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
          Value p = arith::MulFOp::create(nb, nl, a[0], a[1]);
          return arith::AddFOp::create(nb, nl, a[2], p);
        });
    Value dw = tensor::CollapseShapeOp::create(
        b, loc, mt, acc, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    return generic({op.getMask()}, dw, {map(2, {0, 1}), map(2, {0, 1})},
                   {kPar, kPar},
                   [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                     return arith::MulFOp::create(nb, nl, a[1], a[0]);
                   });
  }

private:
  OpBuilder &b;
  Location loc;
  ArrayRef<int64_t> kernel, stride, padding, dilation;
  int64_t groups;

  /// out += (w * m) * a: the mask is applied to each weight as it is read.
  static Value maskedFma(OpBuilder &nb, Location nl, ValueRange a) {
    Value wm = arith::MulFOp::create(nb, nl, a[0], a[1]);
    Value p = arith::MulFOp::create(nb, nl, wm, a[2]);
    return arith::AddFOp::create(nb, nl, a[3], p);
  }

  /// The patch dims (b, g, c, i, j, y, x) in loop order: as listed, or
  /// (b, g, y, x, c, i, j) when `transposed` (output position first).
  static SmallVector<unsigned> patchLoops(bool transposed) {
    if (transposed)
      return {0, 1, 4, 5, 6, 2, 3};
    return {0, 1, 2, 3, 4, 5, 6};
  }

  /// The padded input at a patch entry, over the patch loops:
  /// (b, g, c, y*sh + i*dh, x*sw + j*dw).
  AffineMap window(bool transposed) {
    MLIRContext *ctx = b.getContext();
    SmallVector<unsigned> at = patchLoops(transposed);
    auto d = [&](unsigned k) { return getAffineDimExpr(at[k], ctx); };
    return AffineMap::get(7, 0,
                          {d(0), d(1), d(2),
                           d(5) * stride[0] + d(3) * dilation[0],
                           d(6) * stride[1] + d(4) * dilation[1]},
                          ctx);
  }

  AffineMap identity(unsigned n) {
    return AffineMap::getMultiDimIdentityMap(n, b.getContext());
  }

  /// [B, G, C', KH, KW, OH, OW] or, transposed, [B, G, OH, OW, C', KH, KW]
  /// for input `x` and output `y` (NCHW types).
  RankedTensorType patchType(RankedTensorType x, RankedTensorType y,
                             bool transposed) {
    int64_t c = x.getDimSize(1) / groups, oh = y.getDimSize(2),
            ow = y.getDimSize(3);
    SmallVector<int64_t> s{x.getDimSize(0), groups};
    if (transposed)
      s.append({oh, ow, c, kernel[0], kernel[1]});
    else
      s.append({c, kernel[0], kernel[1], oh, ow});
    return RankedTensorType::get(s, x.getElementType());
  }

  /// Patch entries as a matrix per (b, g): [C'*KH*KW, OH*OW], or
  /// [OH*OW, C'*KH*KW] transposed.
  static SmallVector<ReassociationIndices> patchReassociation(bool transposed) {
    if (transposed)
      return {{0}, {1}, {2, 3}, {4, 5, 6}};
    return {{0}, {1}, {2, 3, 4}, {5, 6}};
  }
  RankedTensorType collapsedPatchType(RankedTensorType t, bool transposed) {
    SmallVector<int64_t> s;
    for (const ReassociationIndices &r : patchReassociation(transposed)) {
      int64_t n = 1;
      for (int64_t d : r)
        n = t.isDynamicDim(d) ? ShapedType::kDynamic : n * t.getDimSize(d);
      s.push_back(n);
    }
    return RankedTensorType::get(s, t.getElementType());
  }

  /// im2col of `x` for output type `y`: the patch matrices (see
  /// collapsedPatchType), one read of the padded input per entry.
  Value patches(Value x, RankedTensorType y, bool transposed) {
    Value xg = grouped(padded(x));
    RankedTensorType t = patchType(tensorOf(x), y, transposed);
    Value p = parallelGeneric(
        0, {xg}, t, {window(transposed), identity(7)},
        SmallVector<IteratorType>(7, kPar),
        [](OpBuilder &, Location, ValueRange a) { return a[0]; },
        [](OpBuilder &, Location, Value) {}); // every entry is written
    return tensor::CollapseShapeOp::create(b, loc,
                                           collapsedPatchType(t, transposed), p,
                                           patchReassociation(transposed));
  }

  AffineMap map(unsigned numDims, ArrayRef<unsigned> ds) {
    return pick(b.getContext(), numDims, ds);
  }

  /// [B, O, OH, OW] -> [B, G, O/G, OH*OW] and back.
  RankedTensorType flatGroupedType(RankedTensorType t) {
    return RankedTensorType::get({t.getDimSize(0), groups,
                                  t.getDimSize(1) / groups,
                                  t.getDimSize(2) * t.getDimSize(3)},
                                 t.getElementType());
  }
  Value flatGrouped(Value v) {
    RankedTensorType t = tensorOf(v);
    auto flat = RankedTensorType::get(
        {t.getDimSize(0), t.getDimSize(1), t.getDimSize(2) * t.getDimSize(3)},
        t.getElementType());
    Value f = tensor::CollapseShapeOp::create(
        b, loc, flat, v, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    return tensor::ExpandShapeOp::create(
        b, loc, flatGroupedType(t), f,
        ArrayRef<ReassociationIndices>{{0}, {1, 2}, {3}});
  }
  Value unflatGrouped(Value v, RankedTensorType t) {
    auto flat = RankedTensorType::get(
        {t.getDimSize(0), t.getDimSize(1), t.getDimSize(2) * t.getDimSize(3)},
        t.getElementType());
    Value f = tensor::CollapseShapeOp::create(
        b, loc, flat, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}, {3}});
    return tensor::ExpandShapeOp::create(
        b, loc, t, f, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  }

  /// [B, C, H, W] -> [B, C, H + 2ph, W + 2pw].
  RankedTensorType paddedType(RankedTensorType t) {
    SmallVector<int64_t> s(t.getShape());
    s[2] += 2 * padding[0];
    s[3] += 2 * padding[1];
    return RankedTensorType::get(s, t.getElementType());
  }

  /// Sizes of `v` (its dynamic dims as tensor.dim).
  SmallVector<OpFoldResult> mixedSizes(Value v) {
    return tensor::getMixedSizes(b, loc, v);
  }

  /// `x` with `padding` zero rows and columns around each image.
  Value padded(Value x) {
    if (padding[0] == 0 && padding[1] == 0)
      return x;
    SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0)),
        strides(4, b.getIndexAttr(1));
    offsets[2] = b.getIndexAttr(padding[0]);
    offsets[3] = b.getIndexAttr(padding[1]);
    return tensor::InsertSliceOp::create(
        b, loc, x, filled(b, loc, paddedType(tensorOf(x)), x, 0.0), offsets,
        mixedSizes(x), strides);
  }

  /// The [B, C, H, W] interior of the padded `xp` (type `t`).
  Value interior(Value xp, RankedTensorType t) {
    if (padding[0] == 0 && padding[1] == 0)
      return xp;
    SmallVector<OpFoldResult> offsets(4, b.getIndexAttr(0)),
        strides(4, b.getIndexAttr(1)), sizes = mixedSizes(xp);
    offsets[2] = b.getIndexAttr(padding[0]);
    offsets[3] = b.getIndexAttr(padding[1]);
    sizes[2] = b.getIndexAttr(t.getDimSize(2));
    sizes[3] = b.getIndexAttr(t.getDimSize(3));
    return tensor::ExtractSliceOp::create(b, loc, t, xp, offsets, sizes,
                                          strides);
  }

  /// The channels (dim 1) of `t` split into [groups, channels / groups].
  RankedTensorType groupedType(RankedTensorType t) {
    SmallVector<int64_t> s(t.getShape());
    s[1] /= groups;
    s.insert(s.begin() + 1, groups);
    return RankedTensorType::get(s, t.getElementType());
  }

  /// [B, C, H, W] -> [B, G, C/G, H, W].
  Value grouped(Value v) {
    return tensor::ExpandShapeOp::create(
        b, loc, groupedType(tensorOf(v)), v,
        ArrayRef<ReassociationIndices>{{0}, {1, 2}, {3}, {4}});
  }

  /// [G*O', C'*KH*KW] -> [G, O', C'*KH*KW].
  RankedTensorType groupedWeightType(RankedTensorType w) {
    return RankedTensorType::get(
        {groups, w.getDimSize(0) / groups, w.getDimSize(1)},
        w.getElementType());
  }

  std::pair<Value, Value> groupedWeight(Value w, Value m) {
    RankedTensorType t = groupedWeightType(tensorOf(w));
    auto view = [&](Value v) -> Value {
      return tensor::ExpandShapeOp::create(
          b, loc, t, v, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    };
    return {view(w), view(m)};
  }

  /// [B, G, C/G, H, W] -> `t` = [B, C, H, W].
  Value collapse(Value v, RankedTensorType t) {
    return tensor::CollapseShapeOp::create(
        b, loc, t, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}, {3}, {4}});
  }

  Value generic(ValueRange ins, Value init, ArrayRef<AffineMap> maps,
                ArrayRef<IteratorType> iters, BodyFn body) {
    return builders::generic(b, loc, ins, init, maps, iters, body);
  }

  /// The generic `maps`/`iters`/`body` on `ins` into a new tensor of type
  /// `t`, run as one generic per index of the parallel loop dim `dim` on
  /// the runtime's threads (an scf.parallel marked for
  /// sparsec-outline-parallel, on buffers): the operands indexed by `dim`
  /// are sliced to that index ([.., 1, ..] subviews), the others are
  /// shared; `init` fills the result slice first (zeros when null).
  Value parallelGeneric(
      unsigned dim, ValueRange ins, RankedTensorType t,
      ArrayRef<AffineMap> maps, ArrayRef<IteratorType> iters, BodyFn body,
      function_ref<void(OpBuilder &, Location, Value)> init = nullptr) {
    // Where each operand (the result last) is indexed by `dim`, if it is.
    SmallVector<std::optional<unsigned>> at;
    for (AffineMap m : maps)
      at.push_back(m.getResultPosition(b.getAffineDimExpr(dim)));
    SmallVector<Value> bufs;
    for (Value in : ins)
      bufs.push_back(blocks::buffer(b, loc, in));
    // The extent of `dim` and the dynamic (batch) size of the result.
    Value extent, batch;
    for (auto [k, in] : llvm::enumerate(ins))
      if (at[k] && !extent)
        extent = tensor::DimOp::create(b, loc, in, *at[k]);
    for (auto [k, in] : llvm::enumerate(ins))
      if (t.isDynamicDim(0) && !batch && tensorOf(in).isDynamicDim(0))
        batch = tensor::DimOp::create(b, loc, in, 0);
    auto mt = MemRefType::get(t.getShape(), t.getElementType());
    Value out = memref::AllocOp::create(
        b, loc, mt, batch ? ValueRange{batch} : ValueRange{});
    if (!extent)
      extent = memref::DimOp::create(b, loc, out, *at.back());
    blocks::parallelFor(
        b, loc, extent, [&](OpBuilder &pb, Location pl, Value i) {
          auto slice = [&](Value mem, std::optional<unsigned> pos) -> Value {
            if (!pos)
              return mem;
            auto shape = cast<MemRefType>(mem.getType()).getShape();
            SmallVector<OpFoldResult> offsets(shape.size(), pb.getIndexAttr(0)),
                sizes = memref::getMixedSizes(pb, pl, mem),
                strides(shape.size(), pb.getIndexAttr(1));
            offsets[*pos] = i;
            sizes[*pos] = pb.getIndexAttr(1);
            return memref::SubViewOp::create(pb, pl, mem, offsets, sizes,
                                             strides);
          };
          SmallVector<Value> sliced;
          for (auto [k, buf] : llvm::enumerate(bufs))
            sliced.push_back(slice(buf, at[k]));
          Value o = slice(out, at.back());
          if (init)
            init(pb, pl, o);
          else
            linalg::FillOp::create(pb, pl,
                                   constF(pb, pl, t.getElementType(), 0.0), o);
          linalg::GenericOp::create(
              pb, pl, TypeRange{}, sliced, ValueRange{o}, maps, iters,
              [&](OpBuilder &nb, Location nl, ValueRange args) {
                linalg::YieldOp::create(nb, nl, body(nb, nl, args));
              });
        });
    return blocks::asTensor(b, loc, out);
  }
};

/// db(o) = sum over b, y, x of dy(b, o, y, x), the innermost loop along x.
Value channelSum(OpBuilder &b, ChannelSumOp op) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  return builders::generic(
      b, loc, {op.getInput()}, filled(b, loc, op.getType(), Value(), 0.0),
      {pick(ctx, 4, {0, 1, 2, 3}), pick(ctx, 4, {1})}, {kRed, kPar, kRed, kRed},
      [](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        return arith::AddFOp::create(nb, nl, a[1], a[0]);
      });
}

struct SdlLowerMaskedConv2d
    : mlir::sdl::impl::SdlLowerMaskedConv2dBase<SdlLowerMaskedConv2d> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<MaskedConv2dOp, MaskedConv2dGradInputOp, MaskedConv2dGradWeightOp,
              ChannelSumOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      Value v;
      if (auto o = dyn_cast<MaskedConv2dOp>(op))
        v = ConvLowering(rewriter, o).forward(o);
      else if (auto o = dyn_cast<MaskedConv2dGradInputOp>(op))
        v = ConvLowering(rewriter, o).gradInput(o);
      else if (auto o = dyn_cast<MaskedConv2dGradWeightOp>(op))
        v = ConvLowering(rewriter, o).gradWeight(o);
      else
        v = channelSum(rewriter, cast<ChannelSumOp>(op));
      rewriter.replaceOp(op, v);
    }
  }
};

} // namespace
