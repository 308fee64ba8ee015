//===- SdlLstmOps.td - Masked LSTM ops --------------------*- tablegen -*-===//
//
// sdl.masked_lstm (a one-layer nn.LSTM, gates i, f, g, o, whose weight_ih
// and weight_hh are multiplied by 0/1 masks) and its backward op, created by
// `sdl-expand-training` and lowered by `sdl-lower-masked-lstm`. Activations
// are batch-first [B, T, I], or sequence-first [T, B, I] with `seq_first`;
// W ∘ M is never stored. Included by SdlOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef SDL_LSTM_OPS_TD
#define SDL_LSTM_OPS_TD

def Sdl_MaskedLstmOp : Sdl_ValueOp<"masked_lstm"> {
  let summary = "LSTM over [B, T, I] with masked weights; h0 = c0 = 0";
  let description = [{
    Operands: input [B, T, I] ([T, B, I] with `seq_first`), weight_ih and
    its mask [4H, I], weight_hh and its mask [4H, H], and either no bias or
    bias_ih and bias_hh [4H]. Results: the hidden states [B, T, H] ([T, B,
    H] with `seq_first`; the last one [B, H] with `last`), and the stash [T + 1, B, 6H] the backward reads: row t + 1
    holds step t's gate activations i, f, g, o (columns [0, 4H)), its cell
    c_t ([4H, 5H)) and hidden state h_t ([5H, 6H)); row 0 holds c0 = h0 = 0
    in those columns.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight_ih,
                       AnyRankedTensor:$mask_ih, AnyRankedTensor:$weight_hh,
                       AnyRankedTensor:$mask_hh,
                       Variadic<AnyRankedTensor>:$biases, UnitAttr:$last,
                       UnitAttr:$seq_first);
  let results = (outs AnyRankedTensor:$result, AnyRankedTensor:$stash);
}

def Sdl_MaskedLstmGradOp : Sdl_ValueOp<"masked_lstm_grad"> {
  let summary = "BPTT of sdl.masked_lstm from its stash";
  let description = [{
    Given the gradient of the layer's value (`grad`, the result's type), the
    input, the masked weights and the forward's stash, returns the gradients
    of the input, weight_ih and weight_hh (both zero where their mask is)
    and of the bias (the same for bias_ih and bias_hh).
  }];
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight_ih, AnyRankedTensor:$mask_ih,
                       AnyRankedTensor:$weight_hh, AnyRankedTensor:$mask_hh,
                       AnyRankedTensor:$stash, UnitAttr:$last,
                       UnitAttr:$seq_first);
  let results = (outs AnyRankedTensor:$grad_input,
                      AnyRankedTensor:$grad_weight_ih,
                      AnyRankedTensor:$grad_weight_hh,
                      AnyRankedTensor:$grad_bias);
}

#endif // SDL_LSTM_OPS_TD
