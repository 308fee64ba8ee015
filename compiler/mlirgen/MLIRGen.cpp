//===- MLIRGen.cpp - AST to the sdl dialect -------------------------------===//
//
// Walks a checked ast::Model and emits the sdl module. Layer parameters are
// split into PyTorch-named tensors ("fc1.weight", "fc1.bias"); sparse_linear
// weights get a CSR encoding with 32-bit positions and coordinates.
//
//===----------------------------------------------------------------------===//

#include "mlirgen/MLIRGen.h"

#include "sdl/SdlDialect.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
using namespace sparsec;

namespace {

/// Columns of a layer's weight matrix: `in`, or in / groups * kh * kw for
/// masked_conv2d (PyTorch's conv weight viewed as [out, -1]).
int64_t weightCols(const ast::Layer &l) {
  return l.kind == ast::LayerKind::MaskedConv2d ? l.convCols() : l.in;
}

class MLIRGenImpl {
public:
  MLIRGenImpl(MLIRContext &ctx, const llvm::SourceMgr &sm)
      : ctx(ctx), sm(sm), b(&ctx) {}

  OwningOpRef<ModuleOp> gen(const ast::Model &model);

private:
  MLIRContext &ctx;
  const llvm::SourceMgr &sm;
  OpBuilder b;
  llvm::DenseMap<const ast::InputDecl *, Value> inputs;
  llvm::DenseMap<const ast::AssignStmt *, Value> values;
  llvm::DenseMap<const ast::InputDecl *, int64_t> idBounds;
  bool failed = false;

  Location loc(llvm::SMLoc l) {
    if (!l.isValid())
      return UnknownLoc::get(&ctx);
    unsigned buf = sm.FindBufferContainingLoc(l);
    if (!buf)
      return UnknownLoc::get(&ctx);
    auto [line, col] = sm.getLineAndColumn(l, buf);
    return FileLineColLoc::get(
        &ctx, sm.getMemoryBuffer(buf)->getBufferIdentifier(), line, col);
  }

  /// Integer input `in` indexes something of size `bound`.
  void boundIds(const ast::InputDecl *in, int64_t bound) {
    int64_t &b = idBounds[in];
    b = b ? std::min(b, bound) : bound;
  }

  Value fail(llvm::SMLoc l, const llvm::Twine &msg) {
    emitError(loc(l)) << msg;
    failed = true;
    return {};
  }

  Type elemType(ast::ElemType t) {
    switch (t) {
    case ast::ElemType::F32:
      return b.getF32Type();
    case ast::ElemType::F64:
      return b.getF64Type();
    case ast::ElemType::F16:
      return b.getF16Type();
    case ast::ElemType::BF16:
      return b.getBF16Type();
    case ast::ElemType::I8:
      return b.getI8Type();
    case ast::ElemType::I32:
      return b.getI32Type();
    case ast::ElemType::I64:
      return b.getI64Type();
    case ast::ElemType::Invalid:
      break;
    }
    return {};
  }

  RankedTensorType tensorType(const ast::Type &t) {
    SmallVector<int64_t> shape;
    for (int64_t d : t.shape)
      shape.push_back(d == ast::kBatch ? ShapedType::kDynamic : d);
    return RankedTensorType::get(shape, elemType(t.elem));
  }

  RankedTensorType csrType(int64_t rows, int64_t cols) {
    auto lt = [](sparse_tensor::LevelFormat f) {
      return sparse_tensor::buildLevelType(f, {}).value();
    };
    SmallVector<sparse_tensor::LevelType> lvls = {
        lt(sparse_tensor::LevelFormat::Dense),
        lt(sparse_tensor::LevelFormat::Compressed)};
    auto enc = sparse_tensor::SparseTensorEncodingAttr::get(
        &ctx, lvls, AffineMap::getMultiDimIdentityMap(2, &ctx), AffineMap(),
        /*posWidth=*/32, /*crdWidth=*/32);
    return RankedTensorType::get({rows, cols}, b.getF32Type(), enc);
  }

  sdl::ParamOp declareParam(Location l, StringRef name, RankedTensorType t,
                            StringRef kind, StringRef init, double initA,
                            std::optional<int64_t> nnz = std::nullopt) {
    // Required attributes only; the optional ones are set by the callers.
    auto p = sdl::ParamOp::create(
        b, l, TypeRange{}, ValueRange{},
        {b.getNamedAttr("sym_name", b.getStringAttr(name)),
         b.getNamedAttr("type", TypeAttr::get(t)),
         b.getNamedAttr("kind", b.getStringAttr(kind)),
         b.getNamedAttr("init", b.getStringAttr(init)),
         b.getNamedAttr("init_a", b.getF64FloatAttr(initA))});
    if (nnz)
      p.setNnzAttr(b.getI64IntegerAttr(*nnz));
    return p;
  }

  void genParams(const ast::Model &model);
  void genOptimizer(const ast::OptimizerDecl &opt);
  /// The mask `<weight>_mask` [rows, cols] with `ones` ones of a masked
  /// layer's weight (after its bias, as PyTorch lists buffers after
  /// parameters) with the layer's pruning schedule.
  void declareMask(Location l, const std::string &weight, int64_t rows,
                   int64_t cols, int64_t ones, const ast::Layer &lay) {
    auto m = declareParam(l, weight + "_mask",
                          RankedTensorType::get({rows, cols}, b.getF32Type()),
                          "mask", "zeros", 0.0);
    m.setMaskOfAttr(b.getStringAttr(weight));
    m.setOnesAttr(b.getI64IntegerAttr(ones));
    if (lay.pattern == ast::Pattern::User) {
      m.setPatternAttr(b.getStringAttr("user"));
      m.setUserPositionsAttr(b.getDenseI32ArrayAttr(lay.userPositions));
      m.setUserCoordinatesAttr(b.getDenseI32ArrayAttr(lay.userCoordinates));
    }
    if (lay.prune.empty())
      return;
    m.setPruneAttr(b.getDictionaryAttr(
        {b.getNamedAttr("kind", b.getStringAttr(lay.prune)),
         b.getNamedAttr("initial", b.getF64FloatAttr(lay.pruneInitial)),
         b.getNamedAttr("final", b.getF64FloatAttr(lay.pruneFinal)),
         b.getNamedAttr("begin", b.getI64IntegerAttr(lay.pruneBegin)),
         b.getNamedAttr("end", b.getI64IntegerAttr(lay.pruneEnd)),
         b.getNamedAttr("every", b.getI64IntegerAttr(lay.pruneEvery)),
         b.getNamedAttr("global", b.getBoolAttr(lay.pruneGlobal)),
         b.getNamedAttr("norm", b.getI64IntegerAttr(lay.pruneNorm))}));
  }

  /// masked_lstm: nn.LSTM's weight_ih, weight_hh, bias_ih, bias_hh (all
  /// uniform in +-1/sqrt(H), as PyTorch), then the two masks.
  void declareLstmParams(Location l, const std::string &name,
                         const ast::Layer &lay) {
    auto f32 = b.getF32Type();
    double h = double(lay.hidden);
    declareParam(l, name + ".weight_ih",
                 RankedTensorType::get({lay.out, lay.in}, f32), "dense",
                 "fan_in_uniform", h);
    declareParam(l, name + ".weight_hh",
                 RankedTensorType::get({lay.out, lay.hidden}, f32), "dense",
                 "fan_in_uniform", h);
    if (lay.bias)
      for (const char *bias : {".bias_ih", ".bias_hh"})
        declareParam(l, name + bias, RankedTensorType::get({lay.out}, f32),
                     "dense", "fan_in_uniform", h);
    declareMask(l, name + ".weight_ih", lay.out, lay.in, lay.nnz, lay);
    declareMask(l, name + ".weight_hh", lay.out, lay.hidden, lay.nnzHh, lay);
  }
  Value genLstm(const ast::CallExpr &call, Value x);

  Value getParam(Location l, StringRef name, Type t) {
    return sdl::GetParamOp::create(b, l, t, name);
  }
  Value genExpr(const ast::Expr &e);
  Value genRef(const ast::ValueRef &ref, llvm::SMLoc l);
  Value genCall(const ast::CallExpr &call);
  Value genApply(const ast::CallExpr &call, Value x, Value weights);
  Value genLoss(const ast::LossDecl &loss);
};

/// Fan-in used to initialise a layer: the number of stored inputs per
/// output (the sparse fan-in for sparse_linear).
double fanIn(const ast::Layer &l) {
  if (l.kind == ast::LayerKind::SparseLinear)
    return std::max(1.0, double(l.nnz) / double(l.out));
  return double(weightCols(l));
}

void MLIRGenImpl::genParams(const ast::Model &model) {
  for (const auto &p : model.params) {
    const ast::Layer &l = p->layer;
    Location pl = loc(p->loc);
    std::string w = p->name + ".weight", bias = p->name + ".bias";
    switch (l.kind) {
    case ast::LayerKind::Linear:
    case ast::LayerKind::MaskedLinear:
    case ast::LayerKind::MaskedConv2d:
      declareParam(pl, w,
                   RankedTensorType::get({l.out, weightCols(l)},
                                         b.getF32Type()),
                   "dense", "fan_in_uniform", fanIn(l));
      break;
    case ast::LayerKind::SparseLinear: {
      auto weight = declareParam(pl, w, csrType(l.out, l.in), "csr",
                                 "fan_in_uniform", fanIn(l), l.nnz);
      if (l.pattern != ast::Pattern::Random)
        weight.setPatternAttr(b.getStringAttr(ast::patternName(l.pattern)));
      if (!l.dynamic.empty()) {
        weight.setDynamicAttr(b.getStringAttr(l.dynamic));
        if (l.dynamic == "rigl")
          weight.setMaxSizeAttr(b.getI64IntegerAttr(l.maxSize));
        weight.setDeltaTAttr(b.getI64IntegerAttr(l.deltaT));
        weight.setTEndAttr(b.getI64IntegerAttr(l.tEnd));
        weight.setDropFractionAttr(b.getF64FloatAttr(l.dropFraction));
      }
      if (l.pattern == ast::Pattern::User) {
        weight.setUserPositionsAttr(b.getDenseI32ArrayAttr(l.userPositions));
        weight.setUserCoordinatesAttr(
            b.getDenseI32ArrayAttr(l.userCoordinates));
      }
      break;
    }
    case ast::LayerKind::MaskedLstm:
      declareLstmParams(pl, p->name, l);
      break;
    case ast::LayerKind::KWinners:
    case ast::LayerKind::KWinners2d:
      declareParam(pl, p->name + ".duty_cycle",
                   RankedTensorType::get({l.kwBufferSize()}, b.getF32Type()),
                   "buffer", "zeros", 0.0);
      break;
    case ast::LayerKind::Embedding:
    case ast::LayerKind::EmbeddingBag: {
      auto table = declareParam(
          pl, w, RankedTensorType::get({l.num, l.dim}, b.getF32Type()),
          "embedding", "normal", 1.0);
      if (l.paddingIdx >= 0)
        table.setPaddingIdxAttr(b.getI64IntegerAttr(l.paddingIdx));
      if (l.maxNorm > 0) {
        table.setMaxNormAttr(b.getF64FloatAttr(l.maxNorm));
        table.setNormTypeAttr(b.getF64FloatAttr(l.normType));
      }
      if (l.scaleGradByFreq)
        table.setScaleGradByFreqAttr(b.getBoolAttr(true));
      break;
    }
    case ast::LayerKind::Tensor: {
      StringRef init = l.init == ast::InitKind::Zeros    ? "zeros"
                       : l.init == ast::InitKind::Normal ? "normal"
                                                         : "uniform";
      declareParam(pl, p->name, tensorType(p->getTensorType()), "dense", init,
                   l.scale);
      break;
    }
    }
    bool masked = l.kind == ast::LayerKind::MaskedLinear ||
                  l.kind == ast::LayerKind::MaskedConv2d;
    if ((l.kind == ast::LayerKind::Linear ||
         l.kind == ast::LayerKind::SparseLinear || masked) &&
        l.bias)
      declareParam(pl, bias, RankedTensorType::get({l.out}, b.getF32Type()),
                   "dense", "fan_in_uniform", fanIn(l));
    if (masked)
      declareMask(pl, w, l.out, weightCols(l), l.nnz, l);
  }
}

void MLIRGenImpl::genOptimizer(const ast::OptimizerDecl &decl) {
  const ast::Optimizer &o = decl.optimizer;
  SmallVector<NamedAttribute> attrs;
  auto num = [&](StringRef name, double v) {
    attrs.push_back(b.getNamedAttr(name, b.getF64FloatAttr(v)));
  };
  auto flag = [&](StringRef name, bool v) {
    attrs.push_back(b.getNamedAttr(name, b.getBoolAttr(v)));
  };
  auto integer = [&](StringRef name, int64_t v) {
    attrs.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(v)));
  };
  num("lr", o.lr);
  switch (o.kind) {
  case ast::OptimizerKind::SGD:
    num("momentum", o.momentum);
    num("dampening", o.dampening);
    num("weight_decay", o.weightDecay);
    flag("nesterov", o.nesterov);
    break;
  case ast::OptimizerKind::Adagrad:
    num("lr_decay", o.lrDecay);
    [[fallthrough]];
  case ast::OptimizerKind::RowwiseAdagrad:
    num("weight_decay", o.weightDecay);
    num("initial_accumulator_value", o.initialAccumulatorValue);
    num("eps", o.eps);
    break;
  case ast::OptimizerKind::RMSprop:
    num("alpha", o.alpha);
    num("eps", o.eps);
    num("weight_decay", o.weightDecay);
    num("momentum", o.momentum);
    flag("centered", o.centered);
    break;
  case ast::OptimizerKind::Adam:
  case ast::OptimizerKind::AdamW:
    num("beta1", o.beta1);
    num("beta2", o.beta2);
    num("eps", o.eps);
    num("weight_decay", o.weightDecay);
    flag("amsgrad", o.amsgrad);
    break;
  }
  if (o.sparse != ast::SparseMode::Lazy)
    attrs.push_back(
        b.getNamedAttr("sparse", b.getStringAttr(ast::sparseModeName(o.sparse))));
  if (o.clipGradNorm > 0)
    num("clip_grad_norm", o.clipGradNorm);
  if (!o.fused && o.sparse == ast::SparseMode::Lazy && o.clipGradNorm == 0)
    attrs.push_back(b.getNamedAttr("fused", b.getBoolAttr(false)));
  if (o.schedule != ast::ScheduleKind::Constant)
    attrs.push_back(b.getNamedAttr(
        "schedule", b.getStringAttr(ast::scheduleKindName(o.schedule))));
  if (o.schedule == ast::ScheduleKind::Step) {
    integer("step_size", o.stepSize);
    num("gamma", o.gamma);
  } else if (o.schedule == ast::ScheduleKind::Cosine) {
    integer("t_max", o.tMax);
    num("eta_min", o.etaMin);
  }
  if (o.warmup > 0)
    integer("warmup", o.warmup);
  auto op = sdl::OptimizerOp::create(
      b, loc(decl.loc), b.getStringAttr(ast::optimizerKindName(o.kind)));
  for (NamedAttribute a : attrs)
    op->setAttr(a.getName(), a.getValue());
}

Value MLIRGenImpl::genRef(const ast::ValueRef &ref, llvm::SMLoc l) {
  switch (ref.kind) {
  case ast::ValueRef::Kind::Input:
    return inputs.lookup(ref.input);
  case ast::ValueRef::Kind::Value:
    return values.lookup(ref.value);
  case ast::ValueRef::Kind::Param:
    return getParam(loc(l), ref.param->name,
                    tensorType(ref.param->getTensorType()));
  case ast::ValueRef::Kind::None:
    break;
  }
  return fail(l, "internal error: unresolved name");
}

Value MLIRGenImpl::genApply(const ast::CallExpr &call, Value x,
                            Value weights) {
  const ast::ParamDecl &p = *call.param;
  const ast::Layer &l = p.layer;
  Location cl = loc(call.getLoc());
  Type resultType = tensorType(call.type);
  if (l.kind == ast::LayerKind::Embedding ||
      l.kind == ast::LayerKind::EmbeddingBag) {
    // Ids index the table: the runtime checks them against its size.
    if (const auto *id = dyn_cast<ast::IdentExpr>(call.args[0].get()))
      if (id->ref.kind == ast::ValueRef::Kind::Input)
        boundIds(id->ref.input, l.num);
    Value table = getParam(cl, p.name + ".weight",
                           RankedTensorType::get({l.num, l.dim},
                                                 b.getF32Type()));
    if (l.kind == ast::LayerKind::Embedding)
      return sdl::EmbeddingOp::create(b, cl, resultType, x, table);
    return sdl::EmbeddingBagOp::create(
        b, cl, resultType, x, table, weights,
        b.getStringAttr(ast::bagModeName(l.mode)),
        l.paddingIdx >= 0 ? b.getI64IntegerAttr(l.paddingIdx) : IntegerAttr());
  }
  if (l.kind == ast::LayerKind::KWinners ||
      l.kind == ast::LayerKind::KWinners2d) {
    Value duty =
        getParam(cl, p.name + ".duty_cycle",
                 RankedTensorType::get({l.kwBufferSize()}, b.getF32Type()));
    // A global kwinners2d chooses among C*H*W values per sample.
    auto [k, kInference] =
        l.kind == ast::LayerKind::KWinners2d && !l.local
            ? l.kwinnersK(l.num * call.type.shape[2] * call.type.shape[3])
            : std::pair<int64_t, int64_t>{l.k, l.kInference};
    auto kw = sdl::KWinnersOp::create(
        b, cl, resultType, x, duty, b.getI64IntegerAttr(k),
        b.getI64IntegerAttr(kInference), b.getF64FloatAttr(l.boostStrength),
        b.getI64IntegerAttr(l.dutyCyclePeriod), UnitAttr(), FloatAttr(),
        IntegerAttr(), l.local ? b.getUnitAttr() : UnitAttr());
    if (l.boostDecayPeriod > 0) {
      kw.setBoostFactorAttr(b.getF64FloatAttr(l.boostStrengthFactor));
      kw.setBoostPeriodAttr(b.getI64IntegerAttr(l.boostDecayPeriod));
    }
    return kw;
  }
  if (l.kind == ast::LayerKind::MaskedLstm)
    return genLstm(call, x);
  if (l.kind == ast::LayerKind::MaskedLinear ||
      l.kind == ast::LayerKind::MaskedConv2d) {
    auto wt = RankedTensorType::get({l.out, weightCols(l)}, b.getF32Type());
    Value w = getParam(cl, p.name + ".weight", wt);
    Value mask = getParam(cl, p.name + ".weight_mask", wt);
    Value bias;
    if (l.bias)
      bias = getParam(cl, p.name + ".bias",
                      RankedTensorType::get({l.out}, b.getF32Type()));
    if (l.kind == ast::LayerKind::MaskedLinear)
      return sdl::MaskedLinearOp::create(b, cl, resultType, x, w, mask, bias);
    return sdl::MaskedConv2dOp::create(
        b, cl, resultType, x, w, mask, bias, b.getDenseI64ArrayAttr(l.kernel),
        b.getDenseI64ArrayAttr(l.stride), b.getDenseI64ArrayAttr(l.padding),
        b.getDenseI64ArrayAttr(l.dilation), b.getI64IntegerAttr(l.groups));
  }
  RankedTensorType wt =
      l.kind == ast::LayerKind::SparseLinear
          ? csrType(l.out, l.in)
          : RankedTensorType::get({l.out, l.in}, b.getF32Type());
  Value w = getParam(cl, p.name + ".weight", wt);
  if (l.quantBits) { // sparse_quantized_linear: the layer sees Q(W)
    w = sdl::FakeQuantRowsOp::create(b, cl, wt, w,
                                     b.getI64IntegerAttr(l.quantBits));
    // How the forward entry computes it (sdl-lower-quantized-linear); the
    // keyword-only argument, checked by Sema, is absent for `auto`.
    for (const ast::Argument &a : p.args)
      if (a.key == "inference")
        w.getDefiningOp()->setAttr("sdl.inference",
                                   b.getStringAttr(a.value.text));
  }
  Value bias;
  if (l.bias)
    bias = getParam(cl, p.name + ".bias",
                    RankedTensorType::get({l.out}, b.getF32Type()));
  return sdl::LinearOp::create(b, cl, resultType, x, w, bias);
}

Value MLIRGenImpl::genLstm(const ast::CallExpr &call, Value x) {
  const ast::ParamDecl &p = *call.param;
  const ast::Layer &l = p.layer;
  Location cl = loc(call.getLoc());
  auto f32 = b.getF32Type();
  auto wih = RankedTensorType::get({l.out, l.in}, f32);
  auto whh = RankedTensorType::get({l.out, l.hidden}, f32);
  SmallVector<Value> biases;
  if (l.bias)
    for (const char *bias : {".bias_ih", ".bias_hh"})
      biases.push_back(
          getParam(cl, p.name + bias, RankedTensorType::get({l.out}, f32)));
  int64_t steps =
      cast<RankedTensorType>(x.getType()).getDimSize(l.batchFirst ? 1 : 0);
  auto stash = RankedTensorType::get(
      {steps + 1, ShapedType::kDynamic, 6 * l.hidden}, f32);
  auto op = sdl::MaskedLstmOp::create(
      b, cl, TypeRange{tensorType(call.type), stash}, x,
      getParam(cl, p.name + ".weight_ih", wih),
      getParam(cl, p.name + ".weight_ih_mask", wih),
      getParam(cl, p.name + ".weight_hh", whh),
      getParam(cl, p.name + ".weight_hh_mask", whh), biases,
      l.lstmLast ? b.getUnitAttr() : UnitAttr(),
      l.batchFirst ? UnitAttr() : b.getUnitAttr());
  return op.getResult();
}

Value MLIRGenImpl::genCall(const ast::CallExpr &call) {
  if (call.callKind == ast::CallKind::Unflatten) {
    // Its other arguments are the new dimensions (numbers, in call.type).
    Value x = genExpr(*call.args[0]);
    if (!x)
      return {};
    ReassociationIndices rest;
    for (size_t i = 1, e = call.type.shape.size(); i < e; ++i)
      rest.push_back(static_cast<int64_t>(i));
    return tensor::ExpandShapeOp::create(
        b, loc(call.getLoc()), tensorType(call.type), x,
        ArrayRef<ReassociationIndices>{{0}, rest});
  }
  SmallVector<Value> args;
  for (const auto &a : call.args) {
    Value v = genExpr(*a);
    if (!v)
      return {};
    args.push_back(v);
  }
  Location cl = loc(call.getLoc());
  Type t = tensorType(call.type);
  switch (call.callKind) {
  case ast::CallKind::Relu:
    return sdl::ReluOp::create(b, cl, t, args[0]);
  case ast::CallKind::Add:
    return sdl::AddOp::create(b, cl, t, args[0], args[1]);
  case ast::CallKind::MatMul:
    return sdl::MatmulOp::create(b, cl, t, args[0], args[1]);
  case ast::CallKind::Concat:
    return sdl::ConcatOp::create(b, cl, t, args);
  case ast::CallKind::Flatten: {
    // A reshape (sdl-expand-training differentiates tensor.collapse_shape).
    auto rank = cast<RankedTensorType>(args[0].getType()).getRank();
    if (rank == 2)
      return args[0];
    ReassociationIndices rest;
    for (int64_t i = 1; i < rank; ++i)
      rest.push_back(i);
    return tensor::CollapseShapeOp::create(
        b, cl, args[0], ArrayRef<ReassociationIndices>{{0}, rest});
  }
  case ast::CallKind::ApplyLayer:
    return genApply(call, args[0], args.size() > 1 ? args[1] : Value());
  case ast::CallKind::Unflatten:
  case ast::CallKind::Unresolved:
    break;
  }
  return fail(call.getLoc(), "internal error: unresolved call");
}

Value MLIRGenImpl::genExpr(const ast::Expr &e) {
  if (!e.type.isValid())
    return fail(e.getLoc(), "internal error: unchecked expression");
  if (e.type.elem != ast::ElemType::F32 &&
      !ast::isIntegerElemType(e.type.elem))
    return fail(e.getLoc(), "only f32 values are supported by code "
                            "generation so far, got " +
                                ast::typeToString(e.type));
  if (const auto *id = dyn_cast<ast::IdentExpr>(&e))
    return genRef(id->ref, id->getLoc());
  if (const auto *call = dyn_cast<ast::CallExpr>(&e))
    return genCall(*call);
  if (const auto *bin = dyn_cast<ast::BinaryExpr>(&e)) {
    Value l = genExpr(*bin->lhs), r = genExpr(*bin->rhs);
    if (!l || !r)
      return {};
    Location bl = loc(bin->getLoc());
    Type t = tensorType(bin->type);
    if (bin->op == ast::BinaryOp::Add)
      return sdl::AddOp::create(b, bl, t, l, r);
    return sdl::MatmulOp::create(b, bl, t, l, r);
  }
  return fail(e.getLoc(), "a number is not a value");
}

Value MLIRGenImpl::genLoss(const ast::LossDecl &loss) {
  Value pred = genRef(loss.pred, loss.loc);
  Value target = genRef(loss.target, loss.loc);
  if (!pred || !target)
    return {};
  Location ll = loc(loss.loc);
  auto scalar = RankedTensorType::get({}, b.getF32Type());
  // Class labels index the logits: the runtime checks them like ids.
  if (loss.kind == ast::LossKind::CrossEntropy &&
      loss.target.kind == ast::ValueRef::Kind::Input)
    boundIds(loss.target.input, loss.predType.shape.back());
  switch (loss.kind) {
  case ast::LossKind::MSE:
    return sdl::MseLossOp::create(b, ll, scalar, pred, target);
  case ast::LossKind::CrossEntropy:
    return sdl::CrossEntropyLossOp::create(b, ll, scalar, pred, target);
  case ast::LossKind::BCEWithLogits:
    return sdl::BceWithLogitsLossOp::create(b, ll, scalar, pred, target);
  }
  return {};
}

OwningOpRef<ModuleOp> MLIRGenImpl::gen(const ast::Model &model) {
  OwningOpRef<ModuleOp> module =
      ModuleOp::create(loc(model.loc), StringRef(model.name));
  b.setInsertionPointToEnd(module->getBody());
  genParams(model);
  genOptimizer(*model.optimizer);

  SmallVector<Type> argTypes;
  for (const auto &in : model.inputs)
    argTypes.push_back(tensorType(in->type));
  Type outType = tensorType(model.outputType);
  Type lossType = RankedTensorType::get({}, b.getF32Type());
  auto fn = func::FuncOp::create(
      b, loc(model.loc), model.name,
      b.getFunctionType(argTypes, {outType, lossType}));
  fn->setAttr(sdl::kModelAttr, b.getUnitAttr());
  fn->setAttr(sdl::kOutputAttr, b.getStringAttr(model.outputName));
  Block *entry = fn.addEntryBlock();
  for (auto [i, in] : llvm::enumerate(model.inputs))
    inputs[in.get()] = entry->getArgument(i);

  b.setInsertionPointToStart(entry);
  for (const auto &stmt : model.forward->stmts) {
    Value v = genExpr(*stmt->value);
    if (!v)
      return nullptr;
    values[stmt.get()] = v;
  }
  Value out = genRef(model.output, model.forward->loc);
  Value loss = genLoss(*model.loss);
  if (!out || !loss || failed)
    return nullptr;
  func::ReturnOp::create(b, loc(model.loss->loc), ValueRange{out, loss});

  for (auto [i, in] : llvm::enumerate(model.inputs)) {
    fn.setArgAttr(i, in->isTarget ? sdl::kTargetAttr : sdl::kInputAttr,
                  b.getStringAttr(in->name));
    if (int64_t bound = idBounds.lookup(in.get()))
      fn.setArgAttr(i, sdl::kIdBoundAttr, b.getI64IntegerAttr(bound));
  }
  if (mlir::failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> sparsec::mlirGen(MLIRContext &ctx,
                                       const ast::Model &model,
                                       const llvm::SourceMgr &sm) {
  ctx.loadDialect<sdl::SdlDialect, func::FuncDialect,
                  sparse_tensor::SparseTensorDialect, tensor::TensorDialect>();
  return MLIRGenImpl(ctx, sm).gen(model);
}
