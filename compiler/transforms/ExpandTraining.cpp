//===- ExpandTraining.cpp - Reverse-mode autodiff on sdl ------------------===//
//
// Implements `sdl-expand-training`: the model function (inputs, targets ->
// output, loss) becomes `@forward` (inputs -> output) and `@train` (inputs,
// targets -> loss, gradients of every sdl.param in declaration order).
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLEXPANDTRAINING
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;

namespace {

/// Removes pure ops without uses, innermost last.
void eraseDeadOps(Block &block) {
  SmallVector<Operation *> ops;
  for (Operation &op : block.without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (op->use_empty() && isPure(op))
      op->erase();
}

/// Accumulates gradients of values while walking the model backwards.
class GradientBuilder {
public:
  GradientBuilder(OpBuilder &b, const llvm::SetVector<Value> &needsGrad)
      : b(b), needsGrad(needsGrad) {}

  /// Adds `g` to the gradient of `v` (sdl.add when one exists already).
  LogicalResult accumulate(Value v, Value g, Location loc) {
    if (!needsGrad.contains(v))
      return success();
    auto it = grads.find(v);
    if (it == grads.end()) {
      grads[v] = g;
      return success();
    }
    if (isSparse(g.getType()))
      return emitError(loc) << "a sparse weight used more than once is not "
                               "supported yet";
    it->second = AddOp::create(b, loc, g.getType(), it->second, g);
    return success();
  }

  Value lookup(Value v) const { return grads.lookup(v); }

  /// masked_linear: masked input and weight gradients; the mask is not
  /// trained, so its "gradient" is its next value, the mask itself.
  LogicalResult backwardMasked(MaskedLinearOp op, Value dy) {
    Location loc = op.getLoc();
    Value x = op.getInput(), w = op.getWeight(), mask = op.getMask();
    if (needsGrad.contains(x) &&
        failed(accumulate(x,
                          MaskedLinearGradInputOp::create(b, loc, x.getType(),
                                                          dy, w, mask),
                          loc)))
      return failure();
    if (needsGrad.contains(w) &&
        failed(accumulate(w,
                          MaskedLinearGradWeightOp::create(
                              b, loc, w.getType(), dy, x, mask),
                          loc)))
      return failure();
    if (failed(keepMask(op, mask, "masked_linear")))
      return failure();
    if (Value bias = op.getBias())
      return accumulate(bias, ReduceBatchOp::create(b, loc, bias.getType(), dy),
                        loc);
    return success();
  }

  /// The mask of a masked layer `op` is not trained: its "gradient" is its
  /// next value, the mask itself.
  LogicalResult keepMask(Operation *op, Value mask, StringRef layer) {
    if (!needsGrad.contains(mask))
      return success();
    auto read = mask.getDefiningOp<GetParamOp>();
    bool reused = !read || grads.count(mask) ||
                  llvm::count_if(op->getBlock()->getOps<GetParamOp>(),
                                 [&](GetParamOp g) {
                                   return g.getParam() == read.getParam();
                                 }) != 1;
    if (reused)
      return emitError(op->getLoc())
             << "a " << layer << " layer applied more than once is not "
             << "supported yet";
    grads[mask] = mask;
    return success();
  }

  /// masked_conv2d: masked input and weight gradients (same geometry as
  /// the forward op), the bias gradient summed over batch and positions.
  LogicalResult backwardConv(MaskedConv2dOp op, Value dy) {
    Location loc = op.getLoc();
    Value x = op.getInput(), w = op.getWeight(), mask = op.getMask();
    auto gradInput = [&] {
      return MaskedConv2dGradInputOp::create(
          b, loc, x.getType(), dy, w, mask, op.getKernelAttr(),
          op.getStrideAttr(), op.getPaddingAttr(), op.getDilationAttr(),
          op.getGroupsAttr());
    };
    auto gradWeight = [&] {
      return MaskedConv2dGradWeightOp::create(
          b, loc, w.getType(), dy, x, mask, op.getKernelAttr(),
          op.getStrideAttr(), op.getPaddingAttr(), op.getDilationAttr(),
          op.getGroupsAttr());
    };
    if (needsGrad.contains(x) && failed(accumulate(x, gradInput(), loc)))
      return failure();
    if (needsGrad.contains(w) && failed(accumulate(w, gradWeight(), loc)))
      return failure();
    if (failed(keepMask(op, mask, "masked_conv2d")))
      return failure();
    if (Value bias = op.getBias())
      return accumulate(bias, ChannelSumOp::create(b, loc, bias.getType(), dy),
                        loc);
    return success();
  }

  /// masked_lstm: one BPTT op gives the input, weight and bias gradients
  /// (bias_ih and bias_hh get the same one).
  LogicalResult backwardLstm(MaskedLstmOp op, Value dy) {
    Location loc = op.getLoc();
    Value x = op.getInput(), wih = op.getWeightIh(), whh = op.getWeightHh();
    auto wt = cast<RankedTensorType>(wih.getType());
    auto grad = MaskedLstmGradOp::create(
        b, loc,
        TypeRange{x.getType(), wih.getType(), whh.getType(),
                  RankedTensorType::get({wt.getDimSize(0)},
                                        wt.getElementType())},
        dy, x, wih, op.getMaskIh(), whh, op.getMaskHh(), op.getStash(),
        op.getLastAttr(), op.getSeqFirstAttr());
    for (auto [v, g] : {std::pair<Value, Value>{x, grad.getGradInput()},
                        {wih, grad.getGradWeightIh()},
                        {whh, grad.getGradWeightHh()}})
      if (failed(accumulate(v, g, loc)))
        return failure();
    for (Value bias : op.getBiases())
      if (failed(accumulate(bias, grad.getGradBias(), loc)))
        return failure();
    if (failed(keepMask(op, op.getMaskIh(), "masked_lstm")))
      return failure();
    return keepMask(op, op.getMaskHh(), "masked_lstm");
  }

  /// Emits the backward ops of `op` given the gradient of its result.
  LogicalResult backward(Operation *op, Value dy) {
    Location loc = op->getLoc();
    auto typeOf = [](Value v) { return v.getType(); };
    if (auto relu = dyn_cast<ReluOp>(op))
      return accumulate(relu.getInput(),
                        ReluGradOp::create(b, loc, relu.getType(),
                                           relu.getInput(), dy),
                        loc);
    if (auto kw = dyn_cast<KWinnersOp>(op)) {
      // dx through the winners; the duty buffer's "gradient" is its next
      // value (the train function returns it; the runtime stores it).
      Value x = kw.getInput(), duty = kw.getDuty();
      if (needsGrad.contains(x) &&
          failed(accumulate(x,
                            KWinnersGradOp::create(
                                b, loc, typeOf(x), x, duty, dy, kw.getKAttr(),
                                kw.getBoostStrengthAttr(),
                                kw.getBoostFactorAttr(),
                                kw.getBoostPeriodAttr(), kw.getLocalAttr()),
                            loc)))
        return failure();
      if (!needsGrad.contains(duty))
        return success();
      if (grads.count(duty))
        return emitError(loc)
               << "a kwinners layer applied more than once is not supported";
      grads[duty] = KWinnersDutyOp::create(b, loc, typeOf(duty),
                                           kw.getResult(), duty,
                                           kw.getPeriodAttr(),
                                           kw.getBoostPeriodAttr());
      return success();
    }
    if (auto fq = dyn_cast<FakeQuantRowsOp>(op)) // straight-through
      return accumulate(fq.getInput(), dy, loc);
    if (auto add = dyn_cast<AddOp>(op)) {
      if (failed(accumulate(add.getLhs(), dy, loc)))
        return failure();
      return accumulate(add.getRhs(), dy, loc);
    }
    if (auto lin = dyn_cast<LinearOp>(op)) {
      Value x = lin.getInput(), w = lin.getWeight();
      if (needsGrad.contains(x) &&
          failed(accumulate(x,
                            LinearGradInputOp::create(b, loc, typeOf(x), dy, w),
                            loc)))
        return failure();
      if (needsGrad.contains(w) &&
          failed(accumulate(
              w, LinearGradWeightOp::create(b, loc, typeOf(w), dy, x, w), loc)))
        return failure();
      if (Value bias = lin.getBias())
        if (needsGrad.contains(bias))
          return accumulate(
              bias, ReduceBatchOp::create(b, loc, typeOf(bias), dy), loc);
      return success();
    }
    if (auto ml = dyn_cast<MaskedLinearOp>(op))
      return backwardMasked(ml, dy);
    if (auto conv = dyn_cast<MaskedConv2dOp>(op))
      return backwardConv(conv, dy);
    if (auto lstm = dyn_cast<MaskedLstmOp>(op))
      return backwardLstm(lstm, dy);
    if (auto emb = dyn_cast<EmbeddingOp>(op)) {
      Value table = emb.getTable();
      if (!needsGrad.contains(table))
        return success();
      if (grads.count(table))
        return emitError(loc)
               << "an embedding table used more than once is not supported yet";
      grads[table] = EmbeddingGradOp::create(b, loc, dy.getType(),
                                             emb.getIds(), dy, table);
      return success();
    }
    if (auto bag = dyn_cast<EmbeddingBagOp>(op)) {
      Value table = bag.getTable();
      if (!needsGrad.contains(table))
        return success();
      if (grads.count(table))
        return emitError(loc)
               << "an embedding table used more than once is not supported yet";
      auto ids = cast<RankedTensorType>(bag.getIds().getType());
      auto rowsType = RankedTensorType::get(
          {ids.getDimSize(0), ids.getDimSize(1),
           cast<RankedTensorType>(table.getType()).getDimSize(1)},
          cast<RankedTensorType>(dy.getType()).getElementType());
      grads[table] = EmbeddingBagGradOp::create(
          b, loc, rowsType, bag.getIds(), dy, table, bag.getResult(),
          bag.getWeights(), bag.getModeAttr(), bag.getPaddingIdxAttr());
      return success();
    }
    if (auto mm = dyn_cast<MatmulOp>(op)) {
      Value a = mm.getLhs(), rhs = mm.getRhs();
      if (needsGrad.contains(a) &&
          failed(accumulate(
              a, MatmulGradLhsOp::create(b, loc, typeOf(a), dy, rhs), loc)))
        return failure();
      if (needsGrad.contains(rhs))
        return accumulate(
            rhs, MatmulGradRhsOp::create(b, loc, typeOf(rhs), a, dy), loc);
      return success();
    }
    if (auto cat = dyn_cast<ConcatOp>(op)) {
      int64_t offset = 0;
      for (Value in : cat.getInputs()) {
        auto t = cast<RankedTensorType>(in.getType());
        if (needsGrad.contains(in) &&
            failed(accumulate(in, SliceOp::create(b, loc, t, dy, offset), loc)))
          return failure();
        offset += t.getDimSize(t.getRank() - 1);
      }
      return success();
    }
    if (auto flat = dyn_cast<tensor::CollapseShapeOp>(op))
      return accumulate(flat.getSrc(),
                        tensor::ExpandShapeOp::create(
                            b, loc, flat.getSrcType(), dy,
                            flat.getReassociationIndices()),
                        loc);
    if (auto unflat = dyn_cast<tensor::ExpandShapeOp>(op))
      return accumulate(unflat.getSrc(),
                        tensor::CollapseShapeOp::create(
                            b, loc, unflat.getSrcType(), dy,
                            unflat.getReassociationIndices()),
                        loc);
    return op->emitOpError("has no gradient rule");
  }

private:
  OpBuilder &b;
  const llvm::SetVector<Value> &needsGrad;
  llvm::DenseMap<Value, Value> grads;
};

/// Creates the gradient of the loss w.r.t. the loss op's first operand.
Value lossGrad(OpBuilder &b, Operation *loss) {
  Location loc = loss->getLoc();
  Value x = loss->getOperand(0), t = loss->getOperand(1);
  Type type = x.getType();
  if (isa<MseLossOp>(loss))
    return MseLossGradOp::create(b, loc, type, x, t);
  if (isa<CrossEntropyLossOp>(loss))
    return CrossEntropyLossGradOp::create(b, loc, type, x, t);
  if (isa<BceWithLogitsLossOp>(loss))
    return BceWithLogitsLossGradOp::create(b, loc, type, x, t);
  return {};
}

struct SdlExpandTraining
    : mlir::sdl::impl::SdlExpandTrainingBase<SdlExpandTraining> {
  void runOnOperation() override;

private:
  LogicalResult buildForward(func::FuncOp model);
  LogicalResult buildTrain(func::FuncOp model, ArrayRef<ParamOp> params);
};

LogicalResult SdlExpandTraining::buildForward(func::FuncOp model) {
  OpBuilder b(model);
  auto fwd = cast<func::FuncOp>(b.clone(*model));
  fwd.setSymName("forward");
  fwd->removeAttr(kModelAttr);
  fwd->setAttr("sdl.entry", b.getStringAttr("forward"));
  Block &body = fwd.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value out = ret.getOperand(0);
  b.setInsertionPoint(ret);
  func::ReturnOp::create(b, ret.getLoc(), out);
  ret.erase();
  eraseDeadOps(body);
  // Targets are not arguments of the forward function.
  llvm::BitVector drop(fwd.getNumArguments());
  for (unsigned i = 0, e = fwd.getNumArguments(); i < e; ++i)
    if (fwd.getArgAttr(i, kTargetAttr)) {
      if (!fwd.getArgument(i).use_empty())
        return fwd.emitError("the forward output depends on a target");
      drop.set(i);
    }
  if (failed(fwd.eraseArguments(drop)))
    return failure();
  fwd.setFunctionType(FunctionType::get(
      fwd.getContext(), fwd.getArgumentTypes(), TypeRange{out.getType()}));
  return success();
}

LogicalResult SdlExpandTraining::buildTrain(func::FuncOp model,
                                            ArrayRef<ParamOp> params) {
  OpBuilder b(model);
  auto train = cast<func::FuncOp>(b.clone(*model));
  train.setSymName("train");
  train->removeAttr(kModelAttr);
  train->setAttr("sdl.entry", b.getStringAttr("train"));
  Block &body = train.getBody().front();
  // K-winners layers train with k (the forward function keeps k_inference).
  body.walk([&](KWinnersOp kw) { kw.setTraining(true); });
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value lossVal = ret.getOperand(1);
  Operation *lossOp = lossVal.getDefiningOp();
  if (!lossOp || !isa<MseLossOp, CrossEntropyLossOp, BceWithLogitsLossOp>(
                     lossOp))
    return train.emitError("the second result must be produced by a loss op");

  // Values whose gradient is needed: everything on a path from a parameter
  // to the loss.
  llvm::SetVector<Value> needsGrad;
  body.walk([&](Operation *op) {
    bool fromParam = isa<GetParamOp>(op) ||
                     llvm::any_of(op->getOperands(), [&](Value v) {
                       return needsGrad.contains(v);
                     });
    if (fromParam)
      for (Value r : op->getResults())
        needsGrad.insert(r);
  });

  b.setInsertionPoint(ret);
  GradientBuilder gb(b, needsGrad);
  Value dLoss = lossGrad(b, lossOp);
  if (failed(gb.accumulate(lossOp->getOperand(0), dLoss, lossOp->getLoc())))
    return failure();

  // Walk the forward ops backwards from the loss.
  llvm::DenseMap<StringRef, Value> paramGrads;
  SmallVector<Operation *> forwardOps;
  for (Operation &op : body)
    if (&op != lossOp && &op != ret.getOperation())
      forwardOps.push_back(&op);
  for (Operation *op : llvm::reverse(forwardOps)) {
    // The gradient flows back through the first result (an LSTM's second
    // one, its stash, is read only by its backward).
    if (op->getNumResults() == 0)
      continue;
    Value dy = gb.lookup(op->getResult(0));
    if (!dy)
      continue;
    if (auto gp = dyn_cast<GetParamOp>(op)) {
      // A parameter read by several ops: sum the gradients of every use.
      Value &acc = paramGrads[gp.getParam()];
      if (!acc) {
        acc = dy;
      } else if (isSparse(dy.getType())) {
        return (*gp->getUsers().begin())->emitError(
            "a sparse weight used more than once is not supported yet");
      } else if (dy.getDefiningOp<EmbeddingGradOp>() ||
                 dy.getDefiningOp<EmbeddingBagGradOp>()) {
        return (*gp->getUsers().begin())->emitError(
            "an embedding table used more than once is not supported yet");
      } else {
        acc = AddOp::create(b, gp.getLoc(), dy.getType(), acc, dy);
      }
      continue;
    }
    if (failed(gb.backward(op, dy)))
      return failure();
  }

  SmallVector<Value> results{lossVal};
  SmallVector<Type> resultTypes{lossVal.getType()};
  SmallVector<Attribute> resultAttrs{
      b.getDictionaryAttr(b.getNamedAttr(kLossAttr, b.getUnitAttr()))};
  for (ParamOp p : params) {
    Value g = paramGrads.lookup(p.getSymName());
    if (!g)
      return p.emitError("parameter '")
             << p.getSymName() << "' does not influence the loss";
    SmallVector<NamedAttribute> attrs{
        b.getNamedAttr(kGradOfAttr, p.getSymNameAttr())};
    Value ids;
    if (auto eg = g.getDefiningOp<EmbeddingGradOp>())
      ids = eg.getIds();
    else if (auto bg = g.getDefiningOp<EmbeddingBagGradOp>())
      ids = bg.getIds();
    if (ids) {
      auto arg = dyn_cast<BlockArgument>(ids);
      if (!arg)
        return g.getDefiningOp()->emitOpError("ids must be a model input");
      attrs.push_back(b.getNamedAttr(
          "sdl.ids_input", b.getI64IntegerAttr(arg.getArgNumber())));
    }
    results.push_back(g);
    resultTypes.push_back(g.getType());
    resultAttrs.push_back(b.getDictionaryAttr(attrs));
  }
  // RigL weights: their layer's input and output gradient, captured after
  // every gradient for the runtime's growth scores (runtime.h, ABI 5).
  for (ParamOp p : params) {
    if (p.getDynamic() != "rigl")
      continue;
    auto gw = paramGrads.lookup(p.getSymName())
                  .getDefiningOp<LinearGradWeightOp>();
    if (!gw)
      return p.emitError("dynamic = rigl needs a weight used by one "
                         "sparse_linear layer");
    for (auto [v, what] : {std::pair<Value, StringRef>{gw.getInput(), "input"},
                           {gw.getGrad(), "output_grad"}}) {
      if (cast<RankedTensorType>(v.getType()).getRank() != 2)
        return gw.emitOpError("dynamic = rigl needs a layer whose input is "
                              "[batch, features]");
      results.push_back(v);
      resultTypes.push_back(v.getType());
      resultAttrs.push_back(b.getDictionaryAttr(
          {b.getNamedAttr(kCaptureOfAttr, p.getSymNameAttr()),
           b.getNamedAttr(kCaptureAttr, b.getStringAttr(what))}));
    }
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  eraseDeadOps(body);
  train.setFunctionType(FunctionType::get(
      train.getContext(), train.getArgumentTypes(), resultTypes));
  train.setAllResultAttrs(resultAttrs);
  return success();
}

void SdlExpandTraining::runOnOperation() {
  ModuleOp module = getOperation();
  SmallVector<func::FuncOp> models;
  for (auto f : module.getOps<func::FuncOp>())
    if (f->hasAttr(kModelAttr))
      models.push_back(f);
  if (models.size() != 1) {
    module.emitError("expected exactly one function marked 'sdl.model', found ")
        << models.size();
    return signalPassFailure();
  }
  func::FuncOp model = models.front();
  if (model.getNumResults() != 2) {
    model.emitError("the model function must return (output, loss)");
    return signalPassFailure();
  }
  SmallVector<ParamOp> params(module.getOps<ParamOp>());
  if (failed(buildForward(model)) || failed(buildTrain(model, params)))
    return signalPassFailure();
  model.erase();
}

} // namespace
