//===- SdlOps.cpp - Verifiers of the sdl operations -----------------------===//
//
// Shape and type rules of every `sdl` op. Dynamic sizes (the batch) match any
// size; everything else must agree exactly.
//
//===----------------------------------------------------------------------===//

#include "sdl/SdlDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::sdl;

namespace {
bool sizesMatch(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Checks that `t` has rank >= `minRank` and a float element type.
LogicalResult expectFloat(Operation *op, StringRef what, RankedTensorType t,
                          int64_t minRank = 0) {
  if (!isa<FloatType>(t.getElementType()))
    return op->emitOpError() << what << " must have a float element type, got "
                             << t;
  if (t.getRank() < minRank)
    return op->emitOpError()
           << what << " must have rank >= " << minRank << ", got " << t;
  return success();
}

/// Checks that `a` and `b` have equal rank and compatible sizes.
LogicalResult expectSameShape(Operation *op, StringRef whatA,
                              RankedTensorType a, StringRef whatB,
                              RankedTensorType b) {
  if (a.getRank() != b.getRank())
    return op->emitOpError() << whatA << " and " << whatB
                             << " must have the same rank, got " << a
                             << " and " << b;
  for (int64_t i = 0, e = a.getRank(); i < e; ++i)
    if (!sizesMatch(a.getDimSize(i), b.getDimSize(i)))
      return op->emitOpError() << whatA << " and " << whatB
                               << " differ in dimension " << i << ": " << a
                               << " vs " << b;
  return success();
}

/// Checks the leading (batch) dims of `a` and `b` agree; `a` and `b` must
/// have the same rank.
LogicalResult expectSameLeading(Operation *op, StringRef whatA,
                                RankedTensorType a, StringRef whatB,
                                RankedTensorType b) {
  if (a.getRank() != b.getRank())
    return op->emitOpError() << whatA << " and " << whatB
                             << " must have the same rank";
  for (int64_t i = 0, e = a.getRank() - 1; i < e; ++i)
    if (!sizesMatch(a.getDimSize(i), b.getDimSize(i)))
      return op->emitOpError() << whatA << " and " << whatB
                               << " differ in dimension " << i;
  return success();
}

int64_t lastDim(RankedTensorType t) { return t.getDimSize(t.getRank() - 1); }

LogicalResult expectLast(Operation *op, StringRef what, RankedTensorType t,
                         int64_t size) {
  if (!sizesMatch(lastDim(t), size))
    return op->emitOpError() << what << " must have " << size
                             << " features in its last dimension, got " << t;
  return success();
}

LogicalResult expectMatrix(Operation *op, StringRef what, RankedTensorType t) {
  if (t.getRank() != 2 || !t.hasStaticShape())
    return op->emitOpError() << what << " must be a static rank-2 tensor, got "
                             << t;
  return success();
}
} // namespace

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

/// The pattern attributes of a csr parameter: a user structure must be a
/// CSR structure of exactly nnz entries.
static LogicalResult verifyPattern(ParamOp op, RankedTensorType t) {
  std::optional<StringRef> pattern = op.getPattern();
  bool user = pattern && *pattern == "user";
  if (pattern && !op.isCSR() && !op.isMask())
    return op.emitOpError("only csr and mask parameters have a pattern");
  if (pattern && *pattern != "random" && *pattern != "small_world" && !user)
    return op.emitOpError("pattern must be random, small_world or user");
  if (user != (op.getUserPositions().has_value() &&
               op.getUserCoordinates().has_value()) ||
      (!user && (op.getUserPositions() || op.getUserCoordinates())))
    return op.emitOpError("user_positions and user_coordinates go with "
                          "pattern = \"user\" (both)");
  if (op.getDynamic() &&
      (!op.isCSR() ||
       (*op.getDynamic() != "set" && *op.getDynamic() != "rigl") ||
       !op.getDeltaT() || !op.getTEnd() || !op.getDropFraction() ||
       *op.getDeltaT() < 1 || *op.getTEnd() < 1 ||
       !(op.getDropFraction()->convertToDouble() > 0 &&
         op.getDropFraction()->convertToDouble() < 1)))
    return op.emitOpError("dynamic = \"set\" or \"rigl\" needs a csr "
                          "parameter, delta_t >= 1, t_end >= 1 and "
                          "drop_fraction in (0, 1)");
  bool rigl = op.getDynamic() && *op.getDynamic() == "rigl";
  if (rigl != op.getMaxSize().has_value() ||
      (op.getMaxSize() && *op.getMaxSize() < 1))
    return op.emitOpError("max_size (>= 1) goes with dynamic = \"rigl\"");
  if (!user)
    return success();
  ArrayRef<int32_t> pos = *op.getUserPositions(), crd = *op.getUserCoordinates();
  int64_t nnz = static_cast<int64_t>(
      (op.isMask() ? op.getOnes() : op.getNnz()).value_or(0));
  if (static_cast<int64_t>(pos.size()) != t.getDimSize(0) + 1 ||
      static_cast<int64_t>(crd.size()) != nnz || pos.front() != 0 ||
      pos.back() != nnz)
    return op.emitOpError("user pattern must have rows + 1 positions from 0 "
                          "to nnz and nnz coordinates");
  for (int64_t r = 0; r < t.getDimSize(0); ++r)
    for (int32_t i = pos[r]; i < pos[r + 1]; ++i)
      if (pos[r + 1] < pos[r] || crd[i] < 0 || crd[i] >= t.getDimSize(1) ||
          (i > pos[r] && crd[i] <= crd[i - 1]))
        return op.emitOpError("user pattern row ")
               << r << " is not strictly ascending columns in range";
  return success();
}

/// A mask: rank 2, zeros-initialised, with the weight it multiplies and
/// 1 <= ones <= numel; only masks carry mask_of, ones and prune.
static LogicalResult verifyMask(ParamOp op, RankedTensorType t) {
  if (!op.isMask()) {
    if (op.getMaskOf() || op.getOnes() || op.getPrune())
      return op.emitOpError("mask_of, ones and prune are for mask "
                            "parameters only");
    return success();
  }
  if (t.getRank() != 2 || op.getInit() != "zeros" || !op.getMaskOf() ||
      !op.getOnes() || *op.getOnes() < 1 ||
      static_cast<int64_t>(*op.getOnes()) > t.getNumElements())
    return op.emitOpError("a mask is a rank-2 tensor initialised with zeros, "
                          "with mask_of and 1 <= ones <= ")
           << t.getNumElements();
  return success();
}

LogicalResult ParamOp::verify() {
  auto t = dyn_cast<RankedTensorType>(getType());
  if (!t || !t.hasStaticShape())
    return emitOpError("type must be a statically shaped tensor, got ")
           << getType();
  StringRef kind = getKind();
  if (kind != "dense" && kind != "csr" && kind != "embedding" &&
      kind != "buffer" && kind != "mask")
    return emitOpError(
               "kind must be dense, csr, embedding, buffer or mask, got '")
           << kind << "'";
  if (failed(verifyMask(*this, t)))
    return failure();
  if (kind == "buffer" && (t.getRank() != 1 || getInit() != "zeros"))
    return emitOpError("a buffer is a rank-1 tensor initialised with zeros");
  StringRef init = getInit();
  if (init != "zeros" && init != "uniform" && init != "normal" &&
      init != "fan_in_uniform")
    return emitOpError("unknown initialiser '") << init << "'";
  if (getInitA().convertToDouble() < 0)
    return emitOpError("init_a must be non-negative");
  bool sparse = isSparse(t);
  if (kind == "csr") {
    if (!sparse || t.getRank() != 2)
      return emitOpError("a csr parameter needs a rank-2 sparse type");
    if (!getNnz() || *getNnz() < 1 ||
        static_cast<int64_t>(*getNnz()) > t.getNumElements())
      return emitOpError("a csr parameter needs 1 <= nnz <= ")
             << t.getNumElements();
  } else if (sparse) {
    return emitOpError("only csr parameters may have a sparse type");
  }
  if (kind == "embedding" && t.getRank() != 2)
    return emitOpError("an embedding table must have rank 2");
  bool options = getPaddingIdx() || getMaxNorm() || getNormType() ||
                 getScaleGradByFreq();
  if (options && kind != "embedding")
    return emitOpError("padding_idx, max_norm, norm_type and "
                       "scale_grad_by_freq are for embedding tables only");
  if (getPaddingIdx() && (static_cast<int64_t>(*getPaddingIdx()) < 0 ||
                          static_cast<int64_t>(*getPaddingIdx()) >=
                              t.getDimSize(0)))
    return emitOpError("padding_idx must be a row of the table");
  if ((getMaxNorm() && !(getMaxNorm()->convertToDouble() > 0)) ||
      (getNormType() && !(getNormType()->convertToDouble() > 0)))
    return emitOpError("max_norm and norm_type must be positive");
  return verifyPattern(*this, t);
}

namespace {
/// What a hyperparameter of sdl.optimizer must be.
enum class HyperRule { Positive, NonNegative, Beta, Any, Flag, Int, Name };
struct Hyper {
  const char *name;
  HyperRule rule;
};

/// The hyperparameters each optimizer kind requires (PyTorch names).
ArrayRef<Hyper> kindHypers(StringRef kind) {
  using R = HyperRule;
  static const Hyper sgd[] = {{"lr", R::Positive},
                              {"momentum", R::NonNegative},
                              {"dampening", R::NonNegative},
                              {"weight_decay", R::NonNegative},
                              {"nesterov", R::Flag}};
  static const Hyper adagrad[] = {{"lr", R::Positive},
                                  {"lr_decay", R::NonNegative},
                                  {"weight_decay", R::NonNegative},
                                  {"initial_accumulator_value", R::NonNegative},
                                  {"eps", R::NonNegative}};
  static const Hyper rowwise[] = {{"lr", R::Positive},
                                  {"weight_decay", R::NonNegative},
                                  {"initial_accumulator_value", R::NonNegative},
                                  {"eps", R::NonNegative}};
  static const Hyper rmsprop[] = {{"lr", R::Positive},
                                  {"alpha", R::NonNegative},
                                  {"eps", R::NonNegative},
                                  {"weight_decay", R::NonNegative},
                                  {"momentum", R::NonNegative},
                                  {"centered", R::Flag}};
  static const Hyper adam[] = {{"lr", R::Positive},       {"beta1", R::Beta},
                               {"beta2", R::Beta},        {"eps", R::NonNegative},
                               {"weight_decay", R::NonNegative},
                               {"amsgrad", R::Flag}};
  if (kind == "sgd")
    return sgd;
  if (kind == "adagrad")
    return adagrad;
  if (kind == "rowwise_adagrad")
    return rowwise;
  if (kind == "rmsprop")
    return rmsprop;
  if (kind == "adam" || kind == "adamw")
    return adam;
  return {};
}

/// Optional hyperparameters of every kind.
const Hyper kCommonHypers[] = {
    {"sparse", HyperRule::Name},         {"clip_grad_norm", HyperRule::NonNegative},
    {"schedule", HyperRule::Name},       {"step_size", HyperRule::Int},
    {"gamma", HyperRule::Positive},      {"t_max", HyperRule::Int},
    {"eta_min", HyperRule::Any},         {"warmup", HyperRule::Int},
    {"fused", HyperRule::Flag}};

LogicalResult checkHyper(OptimizerOp op, const Hyper &h, Attribute a) {
  auto num = [&]() -> std::optional<double> {
    if (auto f = dyn_cast<FloatAttr>(a))
      return f.getValueAsDouble();
    if (auto i = dyn_cast<IntegerAttr>(a))
      return double(i.getInt());
    return std::nullopt;
  };
  switch (h.rule) {
  case HyperRule::Flag:
    if (!isa<BoolAttr>(a))
      return op.emitOpError(h.name) << " must be a bool";
    return success();
  case HyperRule::Name: {
    auto str = dyn_cast<StringAttr>(a);
    StringRef v = str ? str.getValue() : "";
    bool ok = h.name == StringRef("sparse")
                  ? (v == "lazy" || v == "catchup" || v == "dense")
                  : (v == "constant" || v == "step" || v == "cosine");
    if (!ok)
      return op.emitOpError("invalid ") << h.name << " " << a;
    return success();
  }
  case HyperRule::Int:
    if (!isa<IntegerAttr>(a) || cast<IntegerAttr>(a).getInt() < 0)
      return op.emitOpError(h.name) << " must be a non-negative integer";
    return success();
  default:
    break;
  }
  std::optional<double> v = num();
  if (!v)
    return op.emitOpError(h.name) << " must be a number";
  if (h.rule == HyperRule::Positive && !(*v > 0))
    return op.emitOpError(h.name) << " must be positive";
  if (h.rule == HyperRule::NonNegative && !(*v >= 0))
    return op.emitOpError(h.name) << " must be >= 0";
  if (h.rule == HyperRule::Beta && !(*v >= 0 && *v < 1))
    return op.emitOpError(h.name) << " must be in [0, 1)";
  return success();
}
} // namespace

LogicalResult OptimizerOp::verify() {
  ArrayRef<Hyper> hypers = kindHypers(getKind());
  if (hypers.empty())
    return emitOpError("unknown optimizer '") << getKind() << "'";
  for (NamedAttribute na : (*this)->getAttrs()) {
    StringRef name = na.getName().getValue();
    if (name == getKindAttrName().getValue())
      continue;
    const Hyper *h = nullptr;
    for (const Hyper &k : hypers)
      if (name == k.name)
        h = &k;
    for (const Hyper &k : kCommonHypers)
      if (name == k.name)
        h = &k;
    if (!h)
      return emitOpError("unknown hyperparameter '")
             << name << "' for '" << getKind() << "'";
    if (failed(checkHyper(*this, *h, na.getValue())))
      return failure();
  }
  for (const Hyper &h : hypers)
    if (!(*this)->hasAttr(h.name))
      return emitOpError("'") << getKind() << "' needs '" << h.name << "'";
  if (getKind() == "sgd" && getNumber("nesterov").value_or(0) != 0 &&
      (getNumber("momentum").value_or(0) <= 0 ||
       getNumber("dampening").value_or(0) != 0))
    return emitOpError("nesterov needs momentum > 0 and dampening = 0");
  if (getNumber("fused").value_or(0) != 0 &&
      (getString("sparse", "lazy") != "lazy" ||
       getNumber("clip_grad_norm").value_or(0) > 0))
    return emitOpError("fused = true needs sparse = \"lazy\" and no clip_grad_norm");
  StringRef sched = getString("schedule", "constant");
  if (sched == "step" && getNumber("step_size").value_or(0) <= 0)
    return emitOpError("schedule 'step' needs step_size > 0");
  if (sched == "cosine" && getNumber("t_max").value_or(0) <= 0)
    return emitOpError("schedule 'cosine' needs t_max > 0");
  return success();
}

std::optional<double> OptimizerOp::getNumber(StringRef name) {
  Attribute a = (*this)->getAttr(name);
  // BoolAttr is an i1 IntegerAttr (getInt() of true is -1): test it first.
  if (auto b = dyn_cast_or_null<BoolAttr>(a))
    return b.getValue() ? 1.0 : 0.0;
  if (auto f = dyn_cast_or_null<FloatAttr>(a))
    return f.getValueAsDouble();
  if (auto i = dyn_cast_or_null<IntegerAttr>(a))
    return double(i.getInt());
  return std::nullopt;
}

bool OptimizerOp::fusesRowUpdates() {
  return getNumber("fused").value_or(1) != 0 &&
         getString("sparse", "lazy") == "lazy" &&
         getNumber("clip_grad_norm").value_or(0) == 0;
}

StringRef OptimizerOp::getString(StringRef name, StringRef dflt) {
  if (auto s = (*this)->getAttrOfType<StringAttr>(name))
    return s.getValue();
  return dflt;
}

LogicalResult
GetParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto param =
      symbolTable.lookupNearestSymbolFrom<ParamOp>(*this, getParamAttr());
  if (!param)
    return emitOpError("'") << getParam() << "' is not an sdl.param";
  if (param.getType() != getType())
    return emitOpError("type ")
           << getType() << " does not match the parameter's type "
           << param.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Forward ops
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  RankedTensorType x = tensorOf(getInput()), w = tensorOf(getWeight()),
                   y = getType();
  if (failed(expectFloat(*this, "input", x, 2)) ||
      failed(expectMatrix(*this, "weight", w)) ||
      failed(expectLast(*this, "input", x, w.getDimSize(1))) ||
      failed(expectLast(*this, "result", y, w.getDimSize(0))) ||
      failed(expectSameLeading(*this, "input", x, "result", y)))
    return failure();
  if (getBias()) {
    RankedTensorType b = tensorOf(getBias());
    if (b.getRank() != 1 || b.getDimSize(0) != w.getDimSize(0))
      return emitOpError("bias must be tensor<") << w.getDimSize(0) << "x...>";
  }
  return success();
}

/// The weight and mask of a masked linear layer: equal dense matrices.
static LogicalResult expectMaskOf(Operation *op, RankedTensorType w,
                                  RankedTensorType m) {
  if (failed(expectMatrix(op, "weight", w)))
    return failure();
  if (m != w || isSparse(w))
    return op->emitOpError("mask must have the dense weight's type ") << w;
  return success();
}

LogicalResult MaskedLinearOp::verify() {
  RankedTensorType x = tensorOf(getInput()), w = tensorOf(getWeight()),
                   y = getType();
  if (failed(expectMaskOf(*this, w, tensorOf(getMask()))) ||
      failed(expectFloat(*this, "input", x, 2)) ||
      failed(expectLast(*this, "input", x, w.getDimSize(1))) ||
      failed(expectLast(*this, "result", y, w.getDimSize(0))) ||
      failed(expectSameLeading(*this, "input", x, "result", y)))
    return failure();
  if (getBias()) {
    RankedTensorType b = tensorOf(getBias());
    if (b.getRank() != 1 || b.getDimSize(0) != w.getDimSize(0))
      return emitOpError("bias must be tensor<") << w.getDimSize(0) << "x...>";
  }
  return success();
}

LogicalResult MaskedLinearGradInputOp::verify() {
  RankedTensorType dy = tensorOf(getGrad()), w = tensorOf(getWeight()),
                   dx = getType();
  if (failed(expectMaskOf(*this, w, tensorOf(getMask()))) ||
      failed(expectLast(*this, "grad", dy, w.getDimSize(0))) ||
      failed(expectLast(*this, "result", dx, w.getDimSize(1))) ||
      failed(expectSameLeading(*this, "grad", dy, "result", dx)))
    return failure();
  return success();
}

LogicalResult MaskedLinearGradWeightOp::verify() {
  RankedTensorType dy = tensorOf(getGrad()), x = tensorOf(getInput()),
                   m = tensorOf(getMask());
  if (getType() != m)
    return emitOpError("result type must equal the mask type ") << m;
  if (failed(expectMaskOf(*this, m, m)) ||
      failed(expectLast(*this, "grad", dy, m.getDimSize(0))) ||
      failed(expectLast(*this, "input", x, m.getDimSize(1))) ||
      failed(expectSameLeading(*this, "grad", dy, "input", x)))
    return failure();
  return success();
}

LogicalResult EmbeddingOp::verify() {
  RankedTensorType ids = tensorOf(getIds()), table = tensorOf(getTable()),
                   y = getType();
  if (!isa<IntegerType>(ids.getElementType()))
    return emitOpError("ids must be integers, got ") << ids;
  if (failed(expectMatrix(*this, "table", table)))
    return failure();
  if (y.getRank() != ids.getRank() + 1 ||
      lastDim(y) != table.getDimSize(1))
    return emitOpError("result must be ids' shape followed by ")
           << table.getDimSize(1);
  for (int64_t i = 0, e = ids.getRank(); i < e; ++i)
    if (!sizesMatch(ids.getDimSize(i), y.getDimSize(i)))
      return emitOpError("result and ids differ in dimension ") << i;
  return success();
}

namespace {
/// Shared rules of embedding_bag and its gradient: ids [B, K] integers, a
/// static [N, D] table, weights (sum only) shaped like the ids.
LogicalResult verifyBag(Operation *op, StringRef mode, Value idsV, Value tableV,
                        Value weights) {
  RankedTensorType ids = tensorOf(idsV), table = tensorOf(tableV);
  if (mode != "sum" && mode != "mean" && mode != "max")
    return op->emitOpError("mode must be sum, mean or max, got '")
           << mode << "'";
  if (!isa<IntegerType>(ids.getElementType()) || ids.getRank() != 2)
    return op->emitOpError("ids must be integers of shape [B, K], got ")
           << ids;
  if (failed(expectMatrix(op, "table", table)))
    return failure();
  if (weights) {
    if (mode != "sum")
      return op->emitOpError("per-sample weights need mode sum");
    if (failed(expectSameShape(op, "weights", tensorOf(weights), "ids", ids)))
      return failure();
  }
  return success();
}
} // namespace

LogicalResult EmbeddingBagOp::verify() {
  if (failed(verifyBag(*this, getMode(), getIds(), getTable(), getWeights())))
    return failure();
  RankedTensorType ids = tensorOf(getIds()), y = getType();
  if (y.getRank() != 2 || !sizesMatch(y.getDimSize(0), ids.getDimSize(0)) ||
      lastDim(y) != tensorOf(getTable()).getDimSize(1))
    return emitOpError("result must be [B, D], got ") << y;
  return success();
}

LogicalResult EmbeddingBagGradOp::verify() {
  if (failed(verifyBag(*this, getMode(), getIds(), getTable(), getWeights())))
    return failure();
  RankedTensorType ids = tensorOf(getIds()), dy = tensorOf(getGrad()),
                   rows = getType();
  if (dy != tensorOf(getOutput()).clone(dy.getElementType()) ||
      dy.getRank() != 2)
    return emitOpError("grad and output must be [B, D] of the same type");
  if (rows.getRank() != 3 || lastDim(rows) != lastDim(dy) ||
      !sizesMatch(rows.getDimSize(1), ids.getDimSize(1)))
    return emitOpError("result must be [B, K, D], got ") << rows;
  return success();
}

LogicalResult ReluOp::verify() {
  return expectFloat(*this, "input", getType());
}

LogicalResult AddOp::verify() { return expectFloat(*this, "input", getType()); }

LogicalResult FakeQuantRowsOp::verify() {
  if (getType().getRank() != 2)
    return emitOpError("expects an [out, in] weight");
  if (getBits() < 2 || getBits() > 8)
    return emitOpError("bits must be in [2, 8], got ") << getBits();
  return expectFloat(*this, "input", getType());
}

LogicalResult MatmulOp::verify() {
  RankedTensorType a = tensorOf(getLhs()), b = tensorOf(getRhs()),
                   y = getType();
  if (failed(expectFloat(*this, "lhs", a, 2)) ||
      failed(expectMatrix(*this, "rhs", b)) ||
      failed(expectLast(*this, "lhs", a, b.getDimSize(0))) ||
      failed(expectLast(*this, "result", y, b.getDimSize(1))) ||
      failed(expectSameLeading(*this, "lhs", a, "result", y)))
    return failure();
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  RankedTensorType y = getType();
  int64_t sum = 0;
  for (Value v : getInputs()) {
    RankedTensorType t = tensorOf(v);
    if (failed(expectFloat(*this, "input", t, 1)) ||
        failed(expectSameLeading(*this, "input", t, "result", y)))
      return failure();
    if (ShapedType::isDynamic(lastDim(t)))
      return emitOpError("inputs must have a static last dimension");
    sum += lastDim(t);
  }
  return expectLast(*this, "result", y, sum);
}

namespace {
template <typename Op>
LogicalResult verifyPointwiseLoss(Op op) {
  return expectSameShape(op, "input", tensorOf(op.getInput()), "target",
                         tensorOf(op.getTarget()));
}

template <typename Op>
LogicalResult verifyClassLoss(Op op) {
  RankedTensorType x = tensorOf(op.getInput()), t = tensorOf(op.getTarget());
  if (x.getRank() != 2 || t.getRank() != 1 ||
      !isa<IntegerType>(t.getElementType()))
    return op.emitOpError("expects logits [B, C] and integer labels [B]");
  if (!sizesMatch(x.getDimSize(0), t.getDimSize(0)))
    return op.emitOpError("logits and labels differ in batch size");
  return success();
}
} // namespace

LogicalResult MseLossOp::verify() { return verifyPointwiseLoss(*this); }
LogicalResult BceWithLogitsLossOp::verify() {
  return verifyPointwiseLoss(*this);
}
LogicalResult CrossEntropyLossOp::verify() { return verifyClassLoss(*this); }

//===----------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------===//

/// The number of values one kwinners winner set is chosen among.
static int64_t kwinnersUnits(RankedTensorType xt, bool local) {
  if (xt.getRank() == 4 && !local)
    return xt.getDimSize(1) * xt.getDimSize(2) * xt.getDimSize(3);
  return xt.getDimSize(1);
}

/// x [B, n] or [B, C, H, W] and the kwinners buffer [C + 1] (C + 2 with
/// boost decay); k in [1, units], units being the values one winner set is
/// chosen among. A negative k is not checked.
static LogicalResult verifyKWinnersOperands(Operation *op, Value x, Value duty,
                                            int64_t k, bool local,
                                            int64_t boostPeriod) {
  RankedTensorType xt = tensorOf(x), dt = tensorOf(duty);
  if (failed(expectFloat(op, "input", xt, 2)))
    return failure();
  if (xt.getRank() != 2 && xt.getRank() != 4)
    return op->emitOpError("input must have rank 2 or 4, got ") << xt;
  if (local && xt.getRank() != 4)
    return op->emitOpError("'local' needs a rank-4 input");
  if (boostPeriod < 0)
    return op->emitOpError("boost_period must be >= 0");
  int64_t c = xt.getDimSize(1), units = kwinnersUnits(xt, local);
  int64_t size = c + 1 + (boostPeriod > 0 ? 1 : 0);
  if (dt.getRank() != 1 || dt.getDimSize(0) != size)
    return op->emitOpError("duty must be a tensor of ")
           << size << " values (" << c << " duty cycles"
           << (boostPeriod > 0 ? ", the sample count and the step count)"
                               : " and the sample count)");
  if (k >= 0 && (k < 1 || k > units))
    return op->emitOpError("k must be in [1, ") << units << "]";
  return success();
}

static LogicalResult verifyBoost(Operation *op, double strength,
                                 double factor) {
  if (strength < 0 || !(factor > 0 && factor <= 1))
    return op->emitOpError("boost_strength must be >= 0 and boost_factor in "
                           "(0, 1]");
  return success();
}

LogicalResult KWinnersOp::verify() {
  if (getType() != tensorOf(getInput()))
    return emitOpError("result type must be the input type");
  if (static_cast<int64_t>(getPeriod()) < 1)
    return emitOpError("period must be >= 1");
  if (failed(verifyBoost(*this, getBoostStrength().convertToDouble(),
                         getBoostFactor().convertToDouble())))
    return failure();
  if (failed(verifyKWinnersOperands(*this, getInput(), getDuty(), getK(),
                                    getLocal(), getBoostPeriod())))
    return failure();
  int64_t kInference = static_cast<int64_t>(getKInference());
  int64_t units = kwinnersUnits(tensorOf(getInput()), getLocal());
  if (kInference < 1 || kInference > units)
    return emitOpError("k_inference must be in [1, ") << units << "]";
  return success();
}

LogicalResult KWinnersGradOp::verify() {
  if (getType() != tensorOf(getInput()) || getType() != tensorOf(getGrad()))
    return emitOpError("input, grad and result must have one type");
  if (failed(verifyBoost(*this, getBoostStrength().convertToDouble(),
                         getBoostFactor().convertToDouble())))
    return failure();
  return verifyKWinnersOperands(*this, getInput(), getDuty(), getK(),
                                getLocal(), getBoostPeriod());
}

LogicalResult KWinnersDutyOp::verify() {
  if (getType() != tensorOf(getDuty()))
    return emitOpError("result type must be the duty type");
  if (static_cast<int64_t>(getPeriod()) < 1)
    return emitOpError("period must be >= 1");
  return verifyKWinnersOperands(*this, getOutput(), getDuty(), -1, false,
                                getBoostPeriod());
}

LogicalResult ReluGradOp::verify() {
  return expectFloat(*this, "input", getType());
}

LogicalResult LinearGradInputOp::verify() {
  RankedTensorType dy = tensorOf(getGrad()), w = tensorOf(getWeight()),
                   dx = getType();
  if (failed(expectMatrix(*this, "weight", w)) ||
      failed(expectLast(*this, "grad", dy, w.getDimSize(0))) ||
      failed(expectLast(*this, "result", dx, w.getDimSize(1))) ||
      failed(expectSameLeading(*this, "grad", dy, "result", dx)))
    return failure();
  return success();
}

LogicalResult LinearGradWeightOp::verify() {
  RankedTensorType dy = tensorOf(getGrad()), x = tensorOf(getInput()),
                   w = tensorOf(getWeight());
  if (getType() != w)
    return emitOpError("result type must equal the weight type ") << w;
  if (failed(expectMatrix(*this, "weight", w)) ||
      failed(expectLast(*this, "grad", dy, w.getDimSize(0))) ||
      failed(expectLast(*this, "input", x, w.getDimSize(1))) ||
      failed(expectSameLeading(*this, "grad", dy, "input", x)))
    return failure();
  return success();
}

LogicalResult ReduceBatchOp::verify() {
  RankedTensorType x = tensorOf(getInput()), y = getType();
  if (y.getRank() != 1 || !sizesMatch(lastDim(x), y.getDimSize(0)))
    return emitOpError("result must be rank 1 with the input's last dimension");
  return success();
}

LogicalResult MatmulGradLhsOp::verify() {
  RankedTensorType dy = tensorOf(getGrad()), b = tensorOf(getRhs()),
                   da = getType();
  if (failed(expectMatrix(*this, "rhs", b)) ||
      failed(expectLast(*this, "grad", dy, b.getDimSize(1))) ||
      failed(expectLast(*this, "result", da, b.getDimSize(0))) ||
      failed(expectSameLeading(*this, "grad", dy, "result", da)))
    return failure();
  return success();
}

LogicalResult MatmulGradRhsOp::verify() {
  RankedTensorType a = tensorOf(getLhs()), dy = tensorOf(getGrad()),
                   db = getType();
  if (failed(expectMatrix(*this, "result", db)) ||
      failed(expectLast(*this, "lhs", a, db.getDimSize(0))) ||
      failed(expectLast(*this, "grad", dy, db.getDimSize(1))) ||
      failed(expectSameLeading(*this, "lhs", a, "grad", dy)))
    return failure();
  return success();
}

LogicalResult SliceOp::verify() {
  RankedTensorType x = tensorOf(getInput()), y = getType();
  if (failed(expectSameLeading(*this, "input", x, "result", y)))
    return failure();
  int64_t off = getOffset();
  if (off < 0 || ShapedType::isDynamic(lastDim(y)) ||
      off + lastDim(y) > lastDim(x))
    return emitOpError("slice [") << off << ", " << off + lastDim(y)
                                  << ") is outside the input's last dimension";
  return success();
}

LogicalResult EmbeddingGradOp::verify() {
  RankedTensorType ids = tensorOf(getIds()), dy = tensorOf(getGrad()),
                   table = tensorOf(getTable());
  if (getType() != dy)
    return emitOpError("result type must equal the gradient type");
  if (!isa<IntegerType>(ids.getElementType()) ||
      dy.getRank() != ids.getRank() + 1)
    return emitOpError("expects integer ids and rows of rank ids + 1");
  if (failed(expectMatrix(*this, "table", table)) ||
      failed(expectLast(*this, "grad", dy, table.getDimSize(1))))
    return failure();
  return success();
}

namespace {
template <typename Op>
LogicalResult verifyLossGrad(Op op) {
  if (op.getType() != op.getInput().getType())
    return op.emitOpError("result type must equal the input type");
  return success();
}
} // namespace

LogicalResult MseLossGradOp::verify() {
  if (failed(verifyLossGrad(*this)))
    return failure();
  return expectSameShape(*this, "input", tensorOf(getInput()), "target",
                         tensorOf(getTarget()));
}
LogicalResult BceWithLogitsLossGradOp::verify() {
  if (failed(verifyLossGrad(*this)))
    return failure();
  return expectSameShape(*this, "input", tensorOf(getInput()), "target",
                         tensorOf(getTarget()));
}
LogicalResult CrossEntropyLossGradOp::verify() {
  return verifyLossGrad(*this);
}

#define GET_OP_CLASSES
#include "sdl/SdlOps.cpp.inc"
