//===- SdlConvOps.cpp - Verifiers of the masked conv2d ops ----------------===//
//
// sdl.masked_conv2d, its gradient ops and sdl.channel_sum (SdlConvOps.td):
// the geometry attributes, the weight/mask matrix [out, in / groups * kh *
// kw], and the NCHW shapes of input and output, whose spatial sizes follow
// PyTorch's nn.Conv2d.
//
//===----------------------------------------------------------------------===//

#include "sdl/SdlDialect.h"

using namespace mlir;
using namespace mlir::sdl;

namespace {

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// The geometry of a conv op and the shapes it relates.
struct ConvShapes {
  RankedTensorType x, w, m, y; // input, weight, mask, output
};

/// Checks the attributes, that `w` and `m` are equal static f32 matrices
/// [out, in / groups * kh * kw], and that `x` [B, in, H, W] and `y` [B,
/// out, OH, OW] agree with them.
template <typename Op> LogicalResult verifyConv(Op op, const ConvShapes &s) {
  ArrayRef<int64_t> k = op.getKernel(), st = op.getStride(),
                    pad = op.getPadding(), dil = op.getDilation();
  int64_t groups = op.getGroups();
  for (ArrayRef<int64_t> a : {k, st, pad, dil})
    if (a.size() != 2)
      return op.emitOpError("kernel, stride, padding and dilation must have "
                            "2 entries each");
  if (groups < 1 || k[0] < 1 || k[1] < 1 || st[0] < 1 || st[1] < 1 ||
      dil[0] < 1 || dil[1] < 1 || pad[0] < 0 || pad[1] < 0)
    return op.emitOpError("kernel, stride, dilation and groups must be "
                          "positive and padding non-negative");
  if (s.w.getRank() != 2 || !s.w.hasStaticShape() || s.m != s.w)
    return op.emitOpError("weight and mask must be equal static matrices, got ")
           << s.w << " and " << s.m;
  if (s.x.getRank() != 4 || s.y.getRank() != 4 ||
      !isa<FloatType>(s.x.getElementType()) ||
      s.x.getElementType() != s.y.getElementType() ||
      s.w.getElementType() != s.x.getElementType())
    return op.emitOpError("input and output must be NCHW tensors of the "
                          "weight's element type, got ")
           << s.x << " and " << s.y;
  for (int64_t i = 1; i < 4; ++i)
    if (s.x.isDynamicDim(i) || s.y.isDynamicDim(i))
      return op.emitOpError("only the batch dimension may be dynamic");
  int64_t in = s.x.getDimSize(1), out = s.w.getDimSize(0);
  if (in % groups != 0 || out % groups != 0 ||
      s.w.getDimSize(1) != in / groups * k[0] * k[1] ||
      s.y.getDimSize(1) != out)
    return op.emitOpError("weight ")
           << s.w << " does not match " << in << " input and "
           << s.y.getDimSize(1) << " output channels in " << groups
           << " groups with a " << k[0] << "x" << k[1] << " kernel";
  for (int i = 0; i < 2; ++i) {
    int64_t span = dil[i] * (k[i] - 1) + 1,
            padded = s.x.getDimSize(2 + i) + 2 * pad[i];
    if (span > padded || s.y.getDimSize(2 + i) != (padded - span) / st[i] + 1)
      return op.emitOpError("output ")
             << s.y << " does not have conv2d's spatial size for input " << s.x;
  }
  if (!ShapedType::isDynamic(s.x.getDimSize(0)) &&
      !ShapedType::isDynamic(s.y.getDimSize(0)) &&
      s.x.getDimSize(0) != s.y.getDimSize(0))
    return op.emitOpError("input and output batch sizes differ");
  return success();
}

} // namespace

LogicalResult MaskedConv2dOp::verify() {
  RankedTensorType w = tensorOf(getWeight());
  if (failed(verifyConv(
          *this, {tensorOf(getInput()), w, tensorOf(getMask()), getType()})))
    return failure();
  if (Value bias = getBias()) {
    RankedTensorType b = tensorOf(bias);
    if (b.getRank() != 1 || b.getDimSize(0) != w.getDimSize(0))
      return emitOpError("bias must be tensor<") << w.getDimSize(0) << "x...>";
  }
  return success();
}

LogicalResult MaskedConv2dGradInputOp::verify() {
  return verifyConv(*this, {getType(), tensorOf(getWeight()),
                            tensorOf(getMask()), tensorOf(getGrad())});
}

LogicalResult MaskedConv2dGradWeightOp::verify() {
  RankedTensorType m = tensorOf(getMask());
  if (getType() != m)
    return emitOpError("result type must equal the mask type ") << m;
  return verifyConv(*this, {tensorOf(getInput()), m, m, tensorOf(getGrad())});
}

LogicalResult ChannelSumOp::verify() {
  RankedTensorType x = tensorOf(getInput()), r = getType();
  if (x.getRank() != 4 || r.getRank() != 1 ||
      r.getDimSize(0) != x.getDimSize(1) ||
      r.getElementType() != x.getElementType())
    return emitOpError("expects [B, C, H, W] -> [C], got ") << x << " -> " << r;
  return success();
}
