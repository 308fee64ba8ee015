//===- GpuConv.cpp - sdl entry points to gpu.launch: masked conv2d --------===//
//
// Part of sparsec. The kernels EntryLowering (GpuLowering.h) emits for
// sdl.masked_conv2d, its two gradients and sdl.channel_sum: direct
// convolutions (no im2col buffer), each weight multiplied by its mask as it
// is read, on NCHW activations [B, C, H, W] and the weight as the matrix
// [O, K] of the CPU lowering (LowerMaskedConv2d.cpp), K = C/G * KH * KW
// with k = (c * KH + i) * KW + j, G groups:
//
//   masked_conv2d          one thread per output (b, o, y, x): bias(o) +
//                          sum over k of (w(o, k) m(o, k)) xp(b, g C/G + c,
//                          y sh + i dh, x sw + j dw), k ascending, taps in
//                          the zero padding skipped
//   ..._grad_input         one thread per input (b, ch, v, u): the sum over
//                          the output channels o of ch's group and taps
//                          (i, j) that read it of dy(b, o, y, x) (w m)(o, k)
//   ..._grad_weight        one thread per weight (o, k): m(o, k) times the
//                          sum over b and (y, x) of dy(b, o, y, x) xp(...)
//   channel_sum            one thread per channel: the sum over b, y, x
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace sparsec::cudagen;

namespace {

/// The geometry of one conv op.
struct ConvGeometry {
  int64_t c, h, w;   // input channels and size
  int64_t o, oh, ow; // output channels and size
  int64_t kh, kw;    // kernel
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t cg() const { return c / groups; }   // input channels per group
  int64_t og() const { return o / groups; }   // output channels per group
  int64_t taps() const { return kh * kw; }    // per input channel
  int64_t k() const { return cg() * taps(); } // weight columns
};

template <typename Op> ConvGeometry geometry(Op op, Value input, Value output) {
  auto in = cast<ShapedType>(input.getType());
  auto out = cast<ShapedType>(output.getType());
  ConvGeometry g;
  g.c = in.getDimSize(1);
  g.h = in.getDimSize(2);
  g.w = in.getDimSize(3);
  g.o = out.getDimSize(1);
  g.oh = out.getDimSize(2);
  g.ow = out.getDimSize(3);
  g.kh = op.getKernel()[0];
  g.kw = op.getKernel()[1];
  g.sh = op.getStride()[0];
  g.sw = op.getStride()[1];
  g.ph = op.getPadding()[0];
  g.pw = op.getPadding()[1];
  g.dh = op.getDilation()[0];
  g.dw = op.getDilation()[1];
  g.groups = op.getGroups();
  return g;
}

bool isNchwF32(Type t) {
  auto s = cast<ShapedType>(t);
  return s.getRank() == 4 && s.getElementType().isF32() &&
         !llvm::any_of(s.getShape().drop_front(), ShapedType::isDynamic);
}

/// Index arithmetic inside a kernel.
struct Ix {
  OpBuilder &b;
  Location loc;
  Value c(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value mul(Value x, int64_t v) {
    return v == 1 ? x : arith::MulIOp::create(b, loc, x, c(v)).getResult();
  }
  Value div(Value x, int64_t v) {
    return v == 1 ? x : arith::DivUIOp::create(b, loc, x, c(v)).getResult();
  }
  Value rem(Value x, int64_t v) {
    return arith::RemUIOp::create(b, loc, x, c(v));
  }
  /// 0 <= x < bound for a signed index x.
  Value inRange(Value x, int64_t bound) {
    Value ge =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, x, c(0));
    Value lt =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x, c(bound));
    return arith::AndIOp::create(b, loc, ge, lt);
  }
};

/// for v in [0, n): acc = step(v, acc) (f32).
Value sum(OpBuilder &b, Location loc, int64_t n, Value init,
          llvm::function_ref<Value(OpBuilder &, Value, Value)> step) {
  return accumulate(b, loc, arith::ConstantIndexOp::create(b, loc, 0),
                    arith::ConstantIndexOp::create(b, loc, n), init, step);
}

/// `acc + load()` when `cond`, else acc (a tap in the padding reads 0).
Value addIf(OpBuilder &b, Location loc, Value cond, Value acc,
            llvm::function_ref<Value(OpBuilder &)> term) {
  auto ifOp = scf::IfOp::create(
      b, loc, cond,
      [&](OpBuilder &t, Location tl) {
        scf::YieldOp::create(
            t, tl, ValueRange{arith::AddFOp::create(t, tl, acc, term(t))});
      },
      [&](OpBuilder &e, Location el) {
        scf::YieldOp::create(e, el, ValueRange{acc});
      });
  return ifOp.getResult(0);
}

/// w(o, k) * m(o, k): the weight masked as it is read.
Value maskedWeight(OpBuilder &b, Location loc, Value w, Value m, Value o,
                   Value k) {
  return arith::MulFOp::create(
      b, loc, memref::LoadOp::create(b, loc, w, ValueRange{o, k}),
      memref::LoadOp::create(b, loc, m, ValueRange{o, k}));
}

} // namespace

LogicalResult EntryLowering::lowerMaskedConv2d(sdl::MaskedConv2dOp op) {
  Location loc = op.getLoc();
  if (!isNchwF32(op.getInput().getType()) || !isNchwF32(op.getType()))
    return op.emitOpError("on the CUDA target needs f32 [B, C, H, W] "
                          "activations with static C, H, W");
  ConvGeometry g = geometry(op, op.getInput(), op.getResult());
  Value x = buffers.lookup(op.getInput());
  Value w = buffers.lookup(op.getWeight()), m = buffers.lookup(op.getMask());
  Value bias = op.getBias() ? buffers.lookup(op.getBias()) : Value();
  Value y = resultBuffer(op.getResult(), x);
  buffers.map(op.getResult(), y);
  Value total = arith::MulIOp::create(b, loc, dim(loc, x, 0),
                                      index(loc, g.o * g.oh * g.ow));
  launch1D(loc, total, "masked_conv2d", [&](OpBuilder &kb, Value t) {
    Ix ix{kb, loc};
    Value ox = ix.rem(t, g.ow), oy = ix.rem(ix.div(t, g.ow), g.oh);
    Value o = ix.rem(ix.div(t, g.ow * g.oh), g.o);
    Value s = ix.div(t, g.ow * g.oh * g.o);
    Value first = ix.mul(ix.div(o, g.og()), g.cg()); // the group's channels
    Value acc = bias ? memref::LoadOp::create(kb, loc, bias, o).getResult()
                     : f32(kb, loc, 0.0f);
    acc = sum(kb, loc, g.k(), acc, [&](OpBuilder &l, Value k, Value a) {
      Ix lx{l, loc};
      Value c = lx.div(k, g.taps()), i = lx.rem(lx.div(k, g.kw), g.kh),
            j = lx.rem(k, g.kw);
      Value iy = lx.sub(lx.add(lx.mul(oy, g.sh), lx.mul(i, g.dh)), lx.c(g.ph));
      Value jx = lx.sub(lx.add(lx.mul(ox, g.sw), lx.mul(j, g.dw)), lx.c(g.pw));
      Value in = arith::AndIOp::create(l, loc, lx.inRange(iy, g.h),
                                       lx.inRange(jx, g.w));
      return addIf(l, loc, in, a, [&](OpBuilder &r) {
        Value xv = memref::LoadOp::create(
            r, loc, x, ValueRange{s, Ix{r, loc}.add(first, c), iy, jx});
        return arith::MulFOp::create(r, loc, maskedWeight(r, loc, w, m, o, k),
                                     xv);
      });
    });
    memref::StoreOp::create(kb, loc, acc, y, ValueRange{s, o, oy, ox});
  });
  return success();
}

LogicalResult
EntryLowering::lowerMaskedConv2dGradInput(sdl::MaskedConv2dGradInputOp op) {
  Location loc = op.getLoc();
  if (!isNchwF32(op.getGrad().getType()) || !isNchwF32(op.getType()))
    return op.emitOpError("on the CUDA target needs f32 [B, C, H, W] "
                          "activations with static C, H, W");
  ConvGeometry g = geometry(op, op.getResult(), op.getGrad());
  Value dy = buffers.lookup(op.getGrad());
  Value w = buffers.lookup(op.getWeight()), m = buffers.lookup(op.getMask());
  Value dx = resultBuffer(op.getResult(), dy);
  buffers.map(op.getResult(), dx);
  Value total = arith::MulIOp::create(b, loc, dim(loc, dy, 0),
                                      index(loc, g.c * g.h * g.w));
  launch1D(loc, total, "masked_conv2d_grad_input", [&](OpBuilder &kb, Value t) {
    Ix ix{kb, loc};
    Value u = ix.rem(t, g.w), v = ix.rem(ix.div(t, g.w), g.h);
    Value ch = ix.rem(ix.div(t, g.w * g.h), g.c);
    Value s = ix.div(t, g.w * g.h * g.c);
    Value grp = ix.div(ch, g.cg());
    Value c = ix.rem(ch, g.cg()); // the channel within its group
    // Over the group's output channels and the taps (i, j): the output
    // (y, x) with y sh + i dh - ph = v, x sw + j dw - pw = u, if any.
    Value acc =
        sum(kb, loc, g.og() * g.taps(), f32(kb, loc, 0.0f),
            [&](OpBuilder &l, Value n, Value a) {
              Ix lx{l, loc};
              Value o = lx.add(lx.mul(grp, g.og()), lx.div(n, g.taps()));
              Value tap = lx.rem(n, g.taps());
              Value i = lx.div(tap, g.kw), j = lx.rem(tap, g.kw);
              Value ny = lx.sub(lx.add(v, lx.c(g.ph)), lx.mul(i, g.dh));
              Value nx = lx.sub(lx.add(u, lx.c(g.pw)), lx.mul(j, g.dw));
              auto divisible = [&](Value z, int64_t st) -> Value {
                Value r = arith::RemSIOp::create(l, loc, z, lx.c(st));
                return arith::CmpIOp::create(l, loc, arith::CmpIPredicate::eq,
                                             r, lx.c(0));
              };
              Value oy = arith::DivSIOp::create(l, loc, ny, lx.c(g.sh));
              Value ox = arith::DivSIOp::create(l, loc, nx, lx.c(g.sw));
              Value hit = arith::AndIOp::create(
                  l, loc,
                  arith::AndIOp::create(l, loc, divisible(ny, g.sh),
                                        divisible(nx, g.sw)),
                  arith::AndIOp::create(l, loc, lx.inRange(oy, g.oh),
                                        lx.inRange(ox, g.ow)));
              return addIf(l, loc, hit, a, [&](OpBuilder &r) {
                Value k = Ix{r, loc}.add(Ix{r, loc}.mul(c, g.taps()), tap);
                Value dv = memref::LoadOp::create(r, loc, dy,
                                                  ValueRange{s, o, oy, ox});
                return arith::MulFOp::create(r, loc, dv,
                                             maskedWeight(r, loc, w, m, o, k));
              });
            });
    memref::StoreOp::create(kb, loc, acc, dx, ValueRange{s, ch, v, u});
  });
  return success();
}

LogicalResult
EntryLowering::lowerMaskedConv2dGradWeight(sdl::MaskedConv2dGradWeightOp op) {
  Location loc = op.getLoc();
  if (!isNchwF32(op.getGrad().getType()) || !isNchwF32(op.getInput().getType()))
    return op.emitOpError("on the CUDA target needs f32 [B, C, H, W] "
                          "activations with static C, H, W");
  ConvGeometry g = geometry(op, op.getInput(), op.getGrad());
  Value dy = buffers.lookup(op.getGrad()), x = buffers.lookup(op.getInput());
  Value m = buffers.lookup(op.getMask());
  Value dw = resultBuffer(op.getResult(), m);
  buffers.map(op.getResult(), dw);
  Value batch = dim(loc, x, 0);
  launch1D(
      loc, index(loc, g.o * g.k()), "masked_conv2d_grad_weight",
      [&](OpBuilder &kb, Value t) {
        Ix ix{kb, loc};
        Value o = ix.div(t, g.k()), k = ix.rem(t, g.k());
        Value ch =
            ix.add(ix.mul(ix.div(o, g.og()), g.cg()), ix.div(k, g.taps()));
        Value i = ix.rem(ix.div(k, g.kw), g.kh), j = ix.rem(k, g.kw);
        Value acc = accumulate(
            kb, loc, index(loc, 0), batch, f32(kb, loc, 0.0f),
            [&](OpBuilder &l, Value s, Value a) {
              return sum(
                  l, loc, g.oh * g.ow, a,
                  [&](OpBuilder &p, Value pos, Value a2) {
                    Ix px{p, loc};
                    Value oy = px.div(pos, g.ow), ox = px.rem(pos, g.ow);
                    Value iy = px.sub(px.add(px.mul(oy, g.sh), px.mul(i, g.dh)),
                                      px.c(g.ph));
                    Value jx = px.sub(px.add(px.mul(ox, g.sw), px.mul(j, g.dw)),
                                      px.c(g.pw));
                    Value in = arith::AndIOp::create(
                        p, loc, px.inRange(iy, g.h), px.inRange(jx, g.w));
                    return addIf(p, loc, in, a2, [&](OpBuilder &r) {
                      Value dv = memref::LoadOp::create(
                          r, loc, dy, ValueRange{s, o, oy, ox});
                      Value xv = memref::LoadOp::create(
                          r, loc, x, ValueRange{s, ch, iy, jx});
                      return arith::MulFOp::create(r, loc, dv, xv);
                    });
                  });
            });
        // Exactly 0 where the mask is 0.
        acc = arith::MulFOp::create(
            kb, loc, memref::LoadOp::create(kb, loc, m, ValueRange{o, k}), acc);
        memref::StoreOp::create(kb, loc, acc, dw, ValueRange{o, k});
      });
  return success();
}

LogicalResult EntryLowering::lowerChannelSum(sdl::ChannelSumOp op) {
  Location loc = op.getLoc();
  if (!isNchwF32(op.getInput().getType()))
    return op.emitOpError("on the CUDA target needs an f32 [B, C, H, W] "
                          "input with static C, H, W");
  auto type = cast<ShapedType>(op.getInput().getType());
  const int64_t c = type.getDimSize(1),
                hw = type.getDimSize(2) * type.getDimSize(3),
                wd = type.getDimSize(3);
  Value in = buffers.lookup(op.getInput());
  Value out = resultBuffer(op.getResult(), in);
  buffers.map(op.getResult(), out);
  Value batch = dim(loc, in, 0);
  launch1D(loc, index(loc, c), "channel_sum", [&](OpBuilder &kb, Value ch) {
    Value acc = accumulate(
        kb, loc, index(loc, 0), batch, f32(kb, loc, 0.0f),
        [&](OpBuilder &l, Value s, Value a) {
          return sum(l, loc, hw, a, [&](OpBuilder &p, Value pos, Value a2) {
            Ix px{p, loc};
            Value v = memref::LoadOp::create(
                p, loc, in,
                ValueRange{s, ch, px.div(pos, wd), px.rem(pos, wd)});
            return arith::AddFOp::create(p, loc, a2, v);
          });
        });
    memref::StoreOp::create(kb, loc, acc, out, ch);
  });
  return success();
}
