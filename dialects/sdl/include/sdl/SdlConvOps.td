//===- SdlConvOps.td - Masked 2-D convolution ops ---------*- tablegen -*-===//
//
// sdl.masked_conv2d (nn.Conv2d with its weight times a 0/1 mask) and its
// backward ops, created by `sdl-expand-training` and lowered by
// `sdl-lower-masked-conv2d`. Activations are NCHW [B, C, H, W]; the weight
// and its mask are the matrix [out, in / groups * kh * kw] (PyTorch's
// weight [out, in / groups, kh, kw] viewed row-major); W ∘ M is never
// stored. Included by SdlOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef SDL_CONV_OPS_TD
#define SDL_CONV_OPS_TD

// The geometry shared by the conv ops: [height, width] pairs and groups.
defvar Sdl_ConvAttrs = (ins DenseI64ArrayAttr:$kernel,
                            DenseI64ArrayAttr:$stride,
                            DenseI64ArrayAttr:$padding,
                            DenseI64ArrayAttr:$dilation, I64Attr:$groups);

def Sdl_MaskedConv2dOp : Sdl_ValueOp<"masked_conv2d"> {
  let summary = "y = conv2d(x, W ∘ M) + b, the mask applied inside the kernel";
  let arguments = !con((ins AnyRankedTensor:$input, AnyRankedTensor:$weight,
                            AnyRankedTensor:$mask,
                            Optional<AnyRankedTensor>:$bias),
                       Sdl_ConvAttrs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MaskedConv2dGradInputOp : Sdl_ValueOp<"masked_conv2d_grad_input"> {
  let summary = "dx = conv2d's input gradient with W ∘ M (result: x's type)";
  let arguments = !con((ins AnyRankedTensor:$grad, AnyRankedTensor:$weight,
                            AnyRankedTensor:$mask),
                       Sdl_ConvAttrs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MaskedConv2dGradWeightOp : Sdl_ValueOp<"masked_conv2d_grad_weight"> {
  let summary = "dW = conv2d's weight gradient ∘ M: exactly zero where M is";
  let arguments = !con((ins AnyRankedTensor:$grad, AnyRankedTensor:$input,
                            AnyRankedTensor:$mask),
                       Sdl_ConvAttrs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_ChannelSumOp : Sdl_ValueOp<"channel_sum"> {
  let summary = "sum of [B, C, H, W] over B, H and W (conv bias gradient)";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
}

#endif // SDL_CONV_OPS_TD
