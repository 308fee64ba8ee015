//===- SdlLstmOps.cpp - Verifiers of the masked LSTM ops ------------------===//
//
// sdl.masked_lstm and sdl.masked_lstm_grad (SdlLstmOps.td): the weights
// [4H, I] and [4H, H] with masks of the same types, the input [B, T, I]
// ([T, B, I] with `seq_first`), the value ([B, T, H] or [T, B, H], or
// [B, H] with `last`) and the stash
// [T + 1, B, 6H] that carries the forward's gates and states to the BPTT.
//
//===----------------------------------------------------------------------===//

#include "sdl/SdlDialect.h"

using namespace mlir;
using namespace mlir::sdl;

namespace {

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// The shapes of an LSTM layer and the values they relate.
struct LstmShapes {
  RankedTensorType x, wih, mih, whh, mhh, value, stash;
  bool last, seqFirst;
};

/// Checks `s` and returns H (0 after reporting an error).
int64_t verifyLstm(Operation *op, const LstmShapes &s) {
  auto fail = [&](const Twine &msg) {
    op->emitOpError(msg);
    return int64_t(0);
  };
  Type f32 = Float32Type::get(op->getContext());
  if (s.x.getRank() != 3 || s.x.getElementType() != f32 ||
      ShapedType::isDynamic(s.x.getDimSize(s.seqFirst ? 0 : 1)) ||
      ShapedType::isDynamic(s.x.getDimSize(2)))
    return fail("input must be an f32 tensor [B, T, I] ([T, B, I] with "
                "seq_first) with static T and I");
  int64_t t = s.x.getDimSize(s.seqFirst ? 0 : 1), in = s.x.getDimSize(2);
  if (!s.wih.hasStaticShape() || s.wih.getRank() != 2 ||
      s.wih.getElementType() != f32 || s.wih.getDimSize(1) != in ||
      s.wih.getDimSize(0) % 4 != 0 || s.wih.getDimSize(0) == 0)
    return fail("weight_ih must be a static f32 tensor [4H, I]");
  int64_t h = s.wih.getDimSize(0) / 4;
  auto whhType = RankedTensorType::get({4 * h, h}, f32);
  if (s.whh != whhType)
    return fail("weight_hh must be tensor<" + Twine(4 * h) + "x" + Twine(h) +
                "xf32>");
  if (s.mih != s.wih || s.mhh != s.whh)
    return fail("each mask must have the type of its weight");
  int64_t b = s.x.getDimSize(s.seqFirst ? 1 : 0);
  auto value = s.last       ? RankedTensorType::get({b, h}, f32)
               : s.seqFirst ? RankedTensorType::get({t, b, h}, f32)
                            : RankedTensorType::get({b, t, h}, f32);
  if (s.value != value)
    return fail("the layer's value must be tensor<" +
                Twine(s.last       ? "Bx"
                      : s.seqFirst ? "TxBx"
                                   : "BxTx") +
                "Hxf32>");
  auto stash = RankedTensorType::get({t + 1, b, 6 * h}, f32);
  if (s.stash != stash)
    return fail("stash must be tensor<" + Twine(t + 1) + "xBx" + Twine(6 * h) +
                "xf32>");
  return h;
}

} // namespace

LogicalResult MaskedLstmOp::verify() {
  int64_t h =
      verifyLstm(*this, {tensorOf(getInput()), tensorOf(getWeightIh()),
                         tensorOf(getMaskIh()), tensorOf(getWeightHh()),
                         tensorOf(getMaskHh()), tensorOf(getResult()),
                         tensorOf(getStash()), getLast(), getSeqFirst()});
  if (!h)
    return failure();
  if (getBiases().size() != 0 && getBiases().size() != 2)
    return emitOpError("takes no bias or two (bias_ih, bias_hh)");
  auto bias = RankedTensorType::get({4 * h}, Float32Type::get(getContext()));
  for (Value v : getBiases())
    if (v.getType() != bias)
      return emitOpError("biases must be ") << bias;
  return success();
}

LogicalResult MaskedLstmGradOp::verify() {
  int64_t h =
      verifyLstm(*this, {tensorOf(getInput()), tensorOf(getWeightIh()),
                         tensorOf(getMaskIh()), tensorOf(getWeightHh()),
                         tensorOf(getMaskHh()), tensorOf(getGrad()),
                         tensorOf(getStash()), getLast(), getSeqFirst()});
  if (!h)
    return failure();
  if (getGradInput().getType() != getInput().getType() ||
      getGradWeightIh().getType() != getWeightIh().getType() ||
      getGradWeightHh().getType() != getWeightHh().getType() ||
      getGradBias().getType() !=
          RankedTensorType::get({4 * h}, Float32Type::get(getContext())))
    return emitOpError("gradients must have the types of the input, the "
                       "weights and the bias");
  return success();
}
