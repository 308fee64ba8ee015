//===- ModelAbi.cpp - Collect the model's C ABI ---------------------------===//
//
// Reads inputs (argument attributes of @train), parameters (sdl.param),
// gradient shapes (results of @train), the output (result of @forward) and
// the optimizer (sdl.optimizer) from an sdl-train module.
//
//===----------------------------------------------------------------------===//

#include "codegen/ModelAbi.h"

#include "sdl/SdlDialect.h"

using namespace mlir;
using namespace sparsec;

namespace {
std::vector<int64_t> shapeOf(Type t) {
  std::vector<int64_t> s;
  for (int64_t d : cast<RankedTensorType>(t).getShape())
    s.push_back(ShapedType::isDynamic(d) ? kAbiBatch : d);
  return s;
}

std::string dtypeOf(Type t, Operation *where) {
  Type e = cast<RankedTensorType>(t).getElementType();
  if (e.isF32())
    return "f32";
  if (e.isF64())
    return "f64";
  if (e.isInteger(32))
    return "i32";
  if (e.isInteger(64))
    return "i64";
  where->emitError("inputs of type ") << t << " are not supported by the C ABI";
  return "";
}

func::FuncOp findEntry(ModuleOp m, StringRef entry) {
  for (auto f : m.getOps<func::FuncOp>())
    if (auto e = f->getAttrOfType<StringAttr>("sdl.entry"))
      if (e.getValue() == entry)
        return f;
  return {};
}
} // namespace

FailureOr<ModelAbi> sparsec::collectModelAbi(ModuleOp module) {
  ModelAbi abi;
  abi.name = module.getSymName().value_or("model").str();
  func::FuncOp fwd = findEntry(module, "forward");
  func::FuncOp train = findEntry(module, "train");
  if (!fwd || !train) {
    module.emitError("expected @forward and @train (run sdl-expand-training)");
    return failure();
  }
  for (unsigned i = 0, e = train.getNumArguments(); i < e; ++i) {
    AbiInput in;
    auto name = train.getArgAttrOfType<StringAttr>(i, sdl::kInputAttr);
    auto target = train.getArgAttrOfType<StringAttr>(i, sdl::kTargetAttr);
    in.isTarget = static_cast<bool>(target);
    in.name = (target ? target : name) ? (target ? target : name).str()
                                       : "in" + std::to_string(i);
    Type t = train.getArgument(i).getType();
    in.dtype = dtypeOf(t, train);
    if (in.dtype.empty())
      return failure();
    in.shape = shapeOf(t);
    if (auto b = train.getArgAttrOfType<IntegerAttr>(i, sdl::kIdBoundAttr))
      in.idBound = b.getInt();
    abi.inputs.push_back(in);
  }
  unsigned gradIdx = 1;
  for (auto p : module.getOps<sdl::ParamOp>()) {
    AbiParam ap;
    ap.name = p.getSymName().str();
    ap.kind = p.getKind().str();
    ap.shape = shapeOf(p.getType());
    ap.nnz = p.getNnz() ? static_cast<int64_t>(*p.getNnz())
                        : p.getTensorType().getNumElements();
    ap.init = p.getInit().str();
    if (std::optional<uint64_t> pad = p.getPaddingIdx())
      ap.paddingIdx = static_cast<int64_t>(*pad);
    if (std::optional<APFloat> mn = p.getMaxNorm())
      ap.maxNorm = mn->convertToDouble();
    if (std::optional<APFloat> nt = p.getNormType())
      ap.normType = nt->convertToDouble();
    ap.scaleGradByFreq = p.getScaleGradByFreq().value_or(false);
    ap.pattern = p.getPattern().value_or("random").str();
    if (std::optional<ArrayRef<int32_t>> pos = p.getUserPositions())
      ap.userPositions.assign(pos->begin(), pos->end());
    if (std::optional<ArrayRef<int32_t>> crd = p.getUserCoordinates())
      ap.userCoordinates.assign(crd->begin(), crd->end());
    if (p.getDynamic()) {
      ap.dynamic = p.getDynamic()->str();
      ap.maxSize = static_cast<int64_t>(p.getMaxSize().value_or(0));
      ap.deltaT = static_cast<int64_t>(p.getDeltaT().value_or(0));
      ap.tEnd = static_cast<int64_t>(p.getTEnd().value_or(0));
      ap.dropFraction = p.getDropFraction()
                            ? p.getDropFraction()->convertToDouble()
                            : 0.0;
    }
    ap.initA = p.getInitA().convertToDouble();
    collectMaskAbi(p, ap);
    if (gradIdx >= train.getNumResults()) {
      p.emitError("no gradient result for this parameter in @train");
      return failure();
    }
    ap.gradShape = shapeOf(train.getResultTypes()[gradIdx]);
    if (auto ids = train.getResultAttrOfType<IntegerAttr>(gradIdx,
                                                          "sdl.ids_input"))
      ap.idsInput = static_cast<int>(ids.getInt());
    if (p.isEmbedding() && ap.idsInput < 0) {
      p.emitError("embedding gradient without its id input");
      return failure();
    }
    ++gradIdx;
    abi.params.push_back(ap);
  }
  abi.outputShape = shapeOf(fwd.getResultTypes()[0]);
  if (auto out = fwd->getAttrOfType<StringAttr>(sdl::kOutputAttr))
    abi.outputName = out.str();
  auto opts = module.getOps<sdl::OptimizerOp>();
  if (opts.empty()) {
    module.emitError("the model has no sdl.optimizer");
    return failure();
  }
  sdl::OptimizerOp opt = *opts.begin();
  abi.optimizer = opt.getKind().str();
  for (NamedAttribute a : opt->getAttrs()) {
    StringRef name = a.getName().getValue();
    if (name == "fused") // compile time only: fusedRows below
      continue;
    if (std::optional<double> v = opt.getNumber(name))
      abi.hyper.push_back({name.str(), *v});
  }
  abi.sparseMode = opt.getString("sparse", "lazy").str();
  abi.schedule = opt.getString("schedule", "constant").str();
  abi.fusedRows = opt.fusesRowUpdates();
  return abi;
}
