//===- FinalizeAbi.cpp - Entry points in the runtime's C ABI --------------===//
//
// Implements `sdl-finalize-abi`: `@forward`/`@train` become
// `@<Model>_forward`/`@<Model>_train` taking memrefs in the order documented
// in runtime/include/sparsec/runtime.h, with parameters as arguments (CSR
// weights rebuilt zero-copy with sparse_tensor.assemble) and results written
// into caller buffers.
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLFINALIZEABI
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;

namespace {

MemRefType memrefOf(RankedTensorType t) {
  return MemRefType::get(t.getShape(), t.getElementType());
}

/// The runtime's array types of one parameter (CSR: positions, coordinates,
/// values with i32 indices).
SmallVector<MemRefType> paramArrays(ParamOp p) {
  RankedTensorType t = p.getTensorType();
  if (!p.isCSR())
    return {memrefOf(t)};
  MLIRContext *ctx = p.getContext();
  int64_t nnz = static_cast<int64_t>(*p.getNnz());
  Type i32 = IntegerType::get(ctx, 32);
  return {MemRefType::get({t.getDimSize(0) + 1}, i32),
          MemRefType::get({nnz}, i32),
          MemRefType::get({nnz}, t.getElementType())};
}

/// Memref type receiving the gradient result `t` of parameter `p`.
MemRefType gradArray(ParamOp p, RankedTensorType t) {
  if (p.isCSR())
    return paramArrays(p).back();
  return memrefOf(t);
}

Value toTensor(OpBuilder &b, Location loc, Value memref, bool writable) {
  auto mt = cast<MemRefType>(memref.getType());
  auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
  return bufferization::ToTensorOp::create(
      b, loc, tt, memref, b.getUnitAttr(),
      writable ? b.getUnitAttr() : UnitAttr());
}

/// Writes the values of the CSR tensor `sparse` into the memref `dest`.
void storeCsrValues(OpBuilder &b, Location loc, Value sparse, Value dest) {
  auto st = cast<RankedTensorType>(sparse.getType());
  auto enc = sparse_tensor::getSparseTensorEncoding(st);
  auto dt = cast<MemRefType>(dest.getType());
  int64_t nnz = dt.getDimSize(0);
  Type posType = IntegerType::get(b.getContext(), enc.getPosWidth());
  Type crdType = IntegerType::get(b.getContext(), enc.getCrdWidth());
  auto posT = RankedTensorType::get({st.getDimSize(0) + 1}, posType);
  auto crdT = RankedTensorType::get({nnz}, crdType);
  auto valT = RankedTensorType::get({nnz}, st.getElementType());
  Value pos = tensor::EmptyOp::create(b, loc, posT.getShape(), posType);
  Value crd = tensor::EmptyOp::create(b, loc, crdT.getShape(), crdType);
  Value vals =
      tensor::EmptyOp::create(b, loc, valT.getShape(), st.getElementType());
  Type idx = b.getIndexType();
  auto dis = sparse_tensor::DisassembleOp::create(
      b, loc, TypeRange{posT, crdT}, valT, TypeRange{idx, idx}, idx, sparse,
      ValueRange{pos, crd}, vals);
  bufferization::MaterializeInDestinationOp::create(
      b, loc, Type(), dis.getRetValues(), dest, /*restrict=*/true,
      /*writable=*/true);
}

struct SdlFinalizeAbi : mlir::sdl::impl::SdlFinalizeAbiBase<SdlFinalizeAbi> {
  void runOnOperation() override;

private:
  LogicalResult rewrite(func::FuncOp f, StringRef entry,
                        ArrayRef<ParamOp> params, StringRef modelName);
};

LogicalResult SdlFinalizeAbi::rewrite(func::FuncOp f, StringRef entry,
                                      ArrayRef<ParamOp> params,
                                      StringRef modelName) {
  MLIRContext *ctx = f.getContext();
  bool train = entry == "train";
  Location loc = f.getLoc();
  OpBuilder b(f);

  // Argument list: inputs, parameter arrays, then outputs / gradients.
  SmallVector<Type> argTypes;
  for (Type t : f.getArgumentTypes())
    argTypes.push_back(memrefOf(cast<RankedTensorType>(t)));
  unsigned firstParamArg = argTypes.size();
  for (ParamOp p : params)
    llvm::append_range(argTypes, paramArrays(p));
  unsigned firstResultArg = argTypes.size();
  ArrayRef<Type> results = f.getResultTypes();
  if (!train) {
    argTypes.push_back(memrefOf(cast<RankedTensorType>(results[0])));
  } else {
    if (results.size() < params.size() + 1)
      return f.emitError("train must return the loss and one gradient per "
                         "parameter");
    for (auto [p, t] : llvm::zip(params, results.drop_front()))
      argTypes.push_back(gradArray(p, cast<RankedTensorType>(t)));
    // Captures (RigL layer inputs and output gradients) follow.
    for (Type t : results.drop_front(params.size() + 1))
      argTypes.push_back(memrefOf(cast<RankedTensorType>(t)));
  }
  SmallVector<Type> retTypes;
  if (train)
    retTypes.push_back(Float32Type::get(ctx));

  // The public `<Model>_forward` is the C glue's; the kernel is internal.
  std::string name = ("sparsec_kernel_" + modelName + "_" + entry).str();
  auto nf = func::FuncOp::create(b, loc, name,
                                 FunctionType::get(ctx, argTypes, retTypes));
  nf->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  nf->setAttr("sdl.entry", b.getStringAttr(entry));
  Block *body = nf.addEntryBlock();
  b.setInsertionPointToStart(body);

  IRMapping map;
  for (unsigned i = 0, e = f.getNumArguments(); i < e; ++i)
    map.map(f.getArgument(i),
            toTensor(b, loc, body->getArgument(i), /*writable=*/false));
  llvm::StringMap<Value> paramValues;
  unsigned argIdx = firstParamArg;
  for (ParamOp p : params) {
    if (!p.isCSR()) {
      paramValues[p.getSymName()] =
          toTensor(b, p.getLoc(), body->getArgument(argIdx++), false);
      continue;
    }
    Value pos = toTensor(b, p.getLoc(), body->getArgument(argIdx++), false);
    Value crd = toTensor(b, p.getLoc(), body->getArgument(argIdx++), false);
    Value val = toTensor(b, p.getLoc(), body->getArgument(argIdx++), false);
    paramValues[p.getSymName()] = sparse_tensor::AssembleOp::create(
        b, p.getLoc(), p.getTensorType(), ValueRange{pos, crd}, val);
  }

  // Clone the body, resolving parameters to the new arguments.
  Block &old = f.getBody().front();
  for (Operation &op : old.without_terminator()) {
    if (auto gp = dyn_cast<GetParamOp>(op)) {
      map.map(gp.getResult(), paramValues.lookup(gp.getParam()));
      continue;
    }
    b.clone(op, map);
  }
  auto ret = cast<func::ReturnOp>(old.getTerminator());
  SmallVector<Value> newRet;
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    Value val = map.lookupOrDefault(v);
    if (train && i == 0) {
      newRet.push_back(tensor::ExtractOp::create(b, loc, val, ValueRange{}));
      continue;
    }
    Value dest = body->getArgument(firstResultArg + (train ? i - 1 : i));
    if (isSparse(val.getType()))
      storeCsrValues(b, loc, val, dest);
    else
      bufferization::MaterializeInDestinationOp::create(
          b, loc, Type(), val, dest, /*restrict=*/true, /*writable=*/true);
  }
  func::ReturnOp::create(b, loc, newRet);
  f.erase();
  return success();
}

void SdlFinalizeAbi::runOnOperation() {
  ModuleOp module = getOperation();
  StringRef modelName = module.getSymName().value_or("model");
  SmallVector<ParamOp> params(module.getOps<ParamOp>());
  SmallVector<std::pair<func::FuncOp, std::string>> entries;
  for (auto f : module.getOps<func::FuncOp>())
    if (auto e = f->getAttrOfType<StringAttr>("sdl.entry"))
      entries.push_back({f, e.str()});
  if (entries.empty()) {
    module.emitError("no entry points (run sdl-expand-training first)");
    return signalPassFailure();
  }
  for (auto &[f, entry] : entries)
    if (failed(rewrite(f, entry, params, modelName)))
      return signalPassFailure();
  for (ParamOp p : params)
    p.erase();
  for (auto opt : llvm::make_early_inc_range(module.getOps<OptimizerOp>()))
    opt.erase();
}

} // namespace
