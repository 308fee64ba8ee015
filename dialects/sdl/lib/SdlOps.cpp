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

LogicalResult ParamOp::verify() {
  auto t = dyn_cast<RankedTensorType>(getType());
  if (!t || !t.hasStaticShape())
    return emitOpError("type must be a statically shaped tensor, got ")
           << getType();
  StringRef kind = getKind();
  if (kind != "dense" && kind != "csr" && kind != "embedding")
    return emitOpError("kind must be dense, csr or embedding, got '")
           << kind << "'";
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
  return success();
}

LogicalResult OptimizerOp::verify() {
  if (getKind() != "sgd")
    return emitOpError("unknown optimizer '") << getKind() << "'";
  if (!(getLr().convertToDouble() > 0))
    return emitOpError("lr must be positive");
  if (getMomentum().convertToDouble() < 0 ||
      getWeightDecay().convertToDouble() < 0 ||
      getDampening().convertToDouble() < 0)
    return emitOpError("momentum, dampening and weight_decay must be >= 0");
  if (getNesterov() && (getMomentum().convertToDouble() <= 0 ||
                        getDampening().convertToDouble() != 0))
    return emitOpError("nesterov needs momentum > 0 and dampening = 0");
  return success();
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

LogicalResult ReluOp::verify() {
  return expectFloat(*this, "input", getType());
}

LogicalResult AddOp::verify() { return expectFloat(*this, "input", getType()); }

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
