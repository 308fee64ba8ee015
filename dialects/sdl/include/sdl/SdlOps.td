//===- SdlOps.td - Operations of the sdl dialect ----------*- tablegen -*-===//
//
// Model-level declarations (sdl.param, sdl.optimizer), forward ops (layers,
// activations, tensor plumbing, losses) and the backward ops created by
// `sdl-expand-training`. Every op but the declarations is Pure and works on
// ranked tensors whose leading dimension is the (dynamic) batch.
//
//===----------------------------------------------------------------------===//

#ifndef SDL_OPS_TD
#define SDL_OPS_TD

include "sdl/SdlDialect.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

// Ops whose textual form is `sdl.op %a, %b {attrs} : (T0, T1) -> R`.
class Sdl_ValueOp<string mnemonic, list<Trait> traits = []>
    : Sdl_Op<mnemonic, !listconcat([Pure], traits)> {
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

def Sdl_ParamOp : Sdl_Op<"param", [Symbol]> {
  let summary = "a trainable tensor of the model";
  let description = [{
    Declares a tensor of the model's state. `kind` is `buffer` (a rank-1
    layer state, e.g. kwinners duty cycles: zero-initialised, not trained;
    the train function returns its next value), `dense`, `csr` (the type carries a
    `#sparse_tensor.encoding` with dense/compressed levels and a fixed number
    `nnz` of stored entries) or `embedding` (a dense table whose gradient is
    row-sparse). `init` names the initialiser (`zeros`, `uniform`, `normal`,
    `fan_in_uniform`) and `init_a` its parameter (bound, std or fan-in).
    A csr parameter's `pattern` is `random` (default: nnz positions drawn
    uniformly at create), `small_world` (drawn with the small-world
    distance law) or `user` (`user_positions` [rows + 1] and
    `user_coordinates` [nnz] give the structure).

    ```mlir
    sdl.param @"fc1.weight" : tensor<2000x784xf32, #CSR>
        {kind = "csr", init = "fan_in_uniform", init_a = 78.4 : f64, nnz = 156800 : i64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttr:$type, StrAttr:$kind,
                       StrAttr:$init, F64Attr:$init_a,
                       OptionalAttr<I64Attr>:$nnz,
                       // Embedding options (PyTorch nn.Embedding).
                       OptionalAttr<I64Attr>:$padding_idx,
                       OptionalAttr<F64Attr>:$max_norm,
                       OptionalAttr<F64Attr>:$norm_type,
                       OptionalAttr<BoolAttr>:$scale_grad_by_freq,
                       // csr: pattern "random" (default), "small_world" or
                       // "user" with its CSR structure.
                       OptionalAttr<StrAttr>:$pattern,
                       OptionalAttr<DenseI32ArrayAttr>:$user_positions,
                       OptionalAttr<DenseI32ArrayAttr>:$user_coordinates,
                       // csr: dynamic sparsity "set" or "rigl", its
                       // schedule, and (rigl) the most gradient scores
                       // computed at once.
                       OptionalAttr<StrAttr>:$dynamic,
                       OptionalAttr<I64Attr>:$delta_t,
                       OptionalAttr<I64Attr>:$t_end,
                       OptionalAttr<F64Attr>:$drop_fraction,
                       OptionalAttr<I64Attr>:$max_size,
                       // mask (masked_linear): the dense weight it
                       // multiplies, its number of ones at create (random
                       // positions, or the user pattern) and its pruning
                       // schedule {kind, initial, final, begin, end, every,
                       // global, norm}.
                       OptionalAttr<StrAttr>:$mask_of,
                       OptionalAttr<I64Attr>:$ones,
                       OptionalAttr<DictionaryAttr>:$prune);
  let assemblyFormat = "$sym_name `:` $type attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
    bool isCSR() { return getKind() == "csr"; }
    bool isEmbedding() { return getKind() == "embedding"; }
    /// Layer state the train kernel updates (its "gradient" result is the
    /// new value), not trained by the optimizer: kwinners duty cycles.
    bool isBuffer() { return getKind() == "buffer"; }
    /// The 0/1 mask of a masked_linear weight: not trained; the train
    /// function returns it unchanged (its next value), the runtime's
    /// pruning schedule rewrites it.
    bool isMask() { return getKind() == "mask"; }
  }];
}

def Sdl_OptimizerOp : Sdl_Op<"optimizer"> {
  let summary = "the optimizer applied after each training step";
  let description = [{
    `kind` is one of sgd, adagrad, rowwise_adagrad, rmsprop, adam, adamw.
    Its hyperparameters are attributes with PyTorch's names, all present:
    sgd: lr, momentum, dampening, weight_decay, nesterov; adagrad: lr,
    lr_decay, weight_decay, initial_accumulator_value, eps; rowwise_adagrad:
    lr, weight_decay, initial_accumulator_value, eps; rmsprop: lr, alpha,
    eps, weight_decay, momentum, centered; adam/adamw: lr, beta1, beta2, eps,
    weight_decay, amsgrad. Optional for every kind: sparse ("lazy",
    "catchup", "dense"), clip_grad_norm, schedule ("constant", "step",
    "cosine") with step_size/gamma or t_max/eta_min, warmup, fused (bool:
    embedding rows stepped by the generated row update; default true where
    it applies: sparse = "lazy" and no clip_grad_norm).

    ```mlir
    sdl.optimizer "adam" {lr = 1.0e-03 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64,
                          eps = 1.0e-08 : f64, weight_decay = 0.0 : f64, amsgrad = false,
                          sparse = "catchup"}
    ```
  }];
  let arguments = (ins StrAttr:$kind);
  let assemblyFormat = "$kind attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// A numeric hyperparameter (f64 or integer attribute; bools as 0/1).
    std::optional<double> getNumber(::llvm::StringRef name);
    /// A string hyperparameter (sparse, schedule).
    ::llvm::StringRef getString(::llvm::StringRef name, ::llvm::StringRef dflt);
    /// Embedding rows are stepped by the generated fused row update
    /// (`fused` not false, sparse = "lazy", no clip_grad_norm).
    bool fusesRowUpdates();
  }];
}

def Sdl_GetParamOp : Sdl_Op<"get_param",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the current value of a parameter";
  let arguments = (ins FlatSymbolRefAttr:$param);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$param attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Forward ops
//===----------------------------------------------------------------------===//

def Sdl_LinearOp : Sdl_ValueOp<"linear"> {
  let summary = "y = x · Wᵀ + b with a dense or CSR weight";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight,
                       Optional<AnyRankedTensor>:$bias);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MaskedLinearOp : Sdl_ValueOp<"masked_linear"> {
  let summary = "y = x · (W ∘ M)ᵀ + b, the mask applied inside the kernel";
  let description = [{
    W and M are dense [out, in]; W ∘ M is never formed: the contraction
    multiplies each product by the mask (sdl-lower-masked-linear).
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight,
                       AnyRankedTensor:$mask, Optional<AnyRankedTensor>:$bias);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_EmbeddingOp : Sdl_ValueOp<"embedding"> {
  let summary = "row gather: out[..., :] = table[ids[...], :]";
  let arguments = (ins AnyRankedTensor:$ids, AnyRankedTensor:$table);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_EmbeddingBagOp : Sdl_ValueOp<"embedding_bag"> {
  let summary = "bags of rows reduced: out[b, :] = reduce_k table[ids[b, k], :]";
  let description = [{
    `mode` is `sum` (optionally weighted by `weights[b, k]`), `mean` or
    `max` (element-wise maximum over the bag). `ids` is [B, K]: K ids per
    bag; the result is [B, D]. Ids equal to `padding_idx` are left out of
    the bag (mean divides by the non-padding count; an empty bag is 0).
  }];
  let arguments = (ins AnyRankedTensor:$ids, AnyRankedTensor:$table,
                       Optional<AnyRankedTensor>:$weights, StrAttr:$mode,
                       OptionalAttr<I64Attr>:$padding_idx);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_FakeQuantRowsOp : Sdl_ValueOp<"fake_quant_rows",
                                      [SameOperandsAndResultType]> {
  let summary = "per-row symmetric fake quantization of a weight (STE)";
  let description = [{
    Row r of the [out, in] weight (its stored entries for a CSR weight)
    becomes `q * s` with `s = max |w(r, :)| / (2^(bits-1) - 1)` (1 for an
    all-zero row) and `q = roundeven(w / s)` clamped to
    `[-(2^(bits-1) - 1), 2^(bits-1) - 1]`: the values a `bits`-bit signed
    integer weight with one f32 scale per output row represents. The
    gradient passes straight through (sdl-expand-training). Lowered by
    sdl-lower-fake-quant.
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$bits);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat =
      "$input `bits` `(` $bits `)` attr-dict `:` type($input)";
}

def Sdl_ReluOp : Sdl_ValueOp<"relu", [SameOperandsAndResultType]> {
  let summary = "max(x, 0)";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_AddOp : Sdl_ValueOp<"add", [SameOperandsAndResultType]> {
  let summary = "elementwise sum";
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MatmulOp : Sdl_ValueOp<"matmul"> {
  let summary = "[B, I] · [I, O] -> [B, O]";
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_ConcatOp : Sdl_ValueOp<"concat"> {
  let summary = "concatenation along the last dimension";
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs);
  let results = (outs AnyRankedTensor:$result);
}

class Sdl_LossOp<string mnemonic, string sum> : Sdl_ValueOp<mnemonic> {
  let summary = sum;
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$target);
  let results = (outs 0DTensorOf<[F32]>:$result);
}

def Sdl_MseLossOp : Sdl_LossOp<"mse_loss",
    "mean over all elements of (input - target)^2">;
def Sdl_CrossEntropyLossOp : Sdl_LossOp<"cross_entropy_loss",
    "mean over the batch of logsumexp(logits) - logits[label]">;
def Sdl_BceWithLogitsLossOp : Sdl_LossOp<"bce_with_logits_loss",
    "mean over all elements of max(x,0) - x·t + log(1 + exp(-|x|))">;

//===----------------------------------------------------------------------===//
// Backward ops (created by sdl-expand-training)
//===----------------------------------------------------------------------===//

def Sdl_KWinnersOp : Sdl_ValueOp<"kwinners"> {
  let summary = "k-winners-take-all with boosting (nupic.torch KWinners)";
  let description = [{
    `input` [B, n], or [B, C, H, W] (nupic.torch KWinners2d); `duty` the
    layer's buffer [C + 1] (C = n for rank 2: duty cycles per unit or
    channel, then the clamped count of training samples), with one more
    value, the number of train steps taken, when `boost_period` > 0. Per
    sample (rank 2 and rank 4 without `local`: among all C*H*W values; with
    `local`: among the C channels at each (b, h, w)) the `k` (with
    `training`) or `k_inference` entries with the largest boosted value
    x * exp((k_used / units - duty[channel]) * strength) keep their input
    value, the others are 0; ties go to the lower (flat) index. strength =
    boost_strength * boost_factor^floor(steps / boost_period) when
    `boost_period` > 0, else boost_strength.
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$duty,
                       I64Attr:$k, I64Attr:$k_inference,
                       F64Attr:$boost_strength, I64Attr:$period,
                       UnitAttr:$training,
                       DefaultValuedAttr<F64Attr, "1.0">:$boost_factor,
                       DefaultValuedAttr<I64Attr, "0">:$boost_period,
                       UnitAttr:$local);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_KWinnersGradOp : Sdl_ValueOp<"kwinners_grad"> {
  let summary = "dx = dy at the winners of sdl.kwinners (training k), else 0";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$duty,
                       AnyRankedTensor:$grad, I64Attr:$k,
                       F64Attr:$boost_strength,
                       DefaultValuedAttr<F64Attr, "1.0">:$boost_factor,
                       DefaultValuedAttr<I64Attr, "0">:$boost_period,
                       UnitAttr:$local);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_KWinnersDutyOp : Sdl_ValueOp<"kwinners_duty"> {
  let summary = "the kwinners buffer after a training batch";
  let description = [{
    With c the buffer's count and B the batch: c' = min(period, c + B),
    duty' = (duty * (c' - B) + sum_batch(output > 0)) / c' (nupic.torch's
    update_duty_cycle, whose learning_iterations only matter up to period).
    For a rank-4 output [B, C, H, W] the activity of channel c is
    #(output[:, c] > 0) / (H * W) (KWinners2d). With `boost_period` > 0 the
    buffer's last value (train steps) grows by 1.
  }];
  let arguments = (ins AnyRankedTensor:$output, AnyRankedTensor:$duty,
                       I64Attr:$period,
                       DefaultValuedAttr<I64Attr, "0">:$boost_period);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_ReluGradOp : Sdl_ValueOp<"relu_grad", [SameOperandsAndResultType]> {
  let summary = "dx = dy where x > 0, else 0";
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$grad);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_LinearGradInputOp : Sdl_ValueOp<"linear_grad_input"> {
  let summary = "dx = dy · W (SpMM for a CSR weight)";
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$weight);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_LinearGradWeightOp : Sdl_ValueOp<"linear_grad_weight"> {
  let summary = "dW = dyᵀ · x, sampled at W's pattern for a CSR weight (SDDMM)";
  let description = [{
    The result has W's type. For a CSR weight it is computed only at W's
    stored entries; no dense out×in matrix is formed.
  }];
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MaskedLinearGradInputOp : Sdl_ValueOp<"masked_linear_grad_input"> {
  let summary = "dx = dy · (W ∘ M)";
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$weight,
                       AnyRankedTensor:$mask);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MaskedLinearGradWeightOp : Sdl_ValueOp<"masked_linear_grad_weight"> {
  let summary = "dW = (dyᵀ · x) ∘ M: exactly zero where the mask is zero";
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$input,
                       AnyRankedTensor:$mask);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_ReduceBatchOp : Sdl_ValueOp<"reduce_batch"> {
  let summary = "sum over every dimension but the last (bias gradient)";
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MatmulGradLhsOp : Sdl_ValueOp<"matmul_grad_lhs"> {
  let summary = "dA = dy · Bᵀ";
  let arguments = (ins AnyRankedTensor:$grad, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MatmulGradRhsOp : Sdl_ValueOp<"matmul_grad_rhs"> {
  let summary = "dB = Aᵀ · dy";
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$grad);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_SliceOp : Sdl_ValueOp<"slice"> {
  let summary = "x[..., offset : offset + size] (gradient of concat)";
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$offset);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_EmbeddingGradOp : Sdl_ValueOp<"embedding_grad"> {
  let summary = "row-sparse COO gradient of an embedding table";
  let description = [{
    The gradient of `table` is the COO tensor whose indices are `ids` and
    whose rows are `grad` (one row per id, duplicates not coalesced). The
    result holds the rows; the indices are the `ids` operand, which is always
    a model input, so they are not copied.
  }];
  let arguments = (ins AnyRankedTensor:$ids, AnyRankedTensor:$grad,
                       AnyRankedTensor:$table);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_EmbeddingBagGradOp : Sdl_ValueOp<"embedding_bag_grad"> {
  let summary = "row-sparse COO gradient of an embedding_bag table";
  let description = [{
    One gradient row per id of `ids` ([B, K] -> rows [B, K, D]), indexed by
    the ids: `sum` rows are `weights[b, k] * grad[b, :]` (weights 1 when
    absent), `mean` rows `grad[b, :] / K`, `max` rows `grad[b, d]` where
    `table[ids[b, k], d]` equals the bag's maximum `output[b, d]`, else 0.
  }];
  let arguments = (ins AnyRankedTensor:$ids, AnyRankedTensor:$grad,
                       AnyRankedTensor:$table, AnyRankedTensor:$output,
                       Optional<AnyRankedTensor>:$weights, StrAttr:$mode,
                       OptionalAttr<I64Attr>:$padding_idx);
  let results = (outs AnyRankedTensor:$result);
}

class Sdl_LossGradOp<string mnemonic, string sum> : Sdl_ValueOp<mnemonic> {
  let summary = sum;
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$target);
  let results = (outs AnyRankedTensor:$result);
}

def Sdl_MseLossGradOp : Sdl_LossGradOp<"mse_loss_grad",
    "d loss / d input = 2 (input - target) / numel">;
def Sdl_CrossEntropyLossGradOp : Sdl_LossGradOp<"cross_entropy_loss_grad",
    "d loss / d logits = (softmax(logits) - onehot(label)) / batch">;
def Sdl_BceWithLogitsLossGradOp : Sdl_LossGradOp<"bce_with_logits_loss_grad",
    "d loss / d input = (sigmoid(input) - target) / numel">;

include "sdl/SdlConvOps.td"
include "sdl/SdlLstmOps.td"

#endif // SDL_OPS_TD
