//===- GpuForward.cpp - sparsec-gpu-forward: forward entry to gpu.launch --===//
//
// Part of sparsec. The pass `sparsec-gpu-forward` of the CUDA target
// (docs/cuda.md): it runs after sdl-finalize-abi and rewrites the `forward`
// entry point, whose body is sdl ops on tensors between
// bufferization.to_tensor of its memref arguments and a
// materialize_in_destination into its output, into host code on memrefs
// that launches one gpu.launch kernel per sdl op:
//
//   sdl.linear, CSR weight   one thread per output y[b, r]: bias[r] +
//                            sum over the row's stored entries of
//                            vals[k] * x[b, crd[k]] (consecutive threads take
//                            consecutive rows of one sample)
//   sdl.linear, dense weight one thread per output: bias[r] + W[r, :] . x[b, :]
//   sdl.relu                 fused into the producing linear when it is the
//                            linear's only use; otherwise elementwise
//   sdl.add                  elementwise
//
// Temporaries are gpu.alloc'ed and gpu.dealloc'ed before the return; a
// value whose only use is the output's materialize_in_destination is
// computed in the output buffer. The memref arguments of the function are
// device pointers. The function is renamed sparsec_gpu_kernel_<Model>_forward
// and every other function of the module is removed (the CUDA target covers
// the forward pass so far); an sdl op without a GPU rule is an error.
//
//===----------------------------------------------------------------------===//

#include "codegen/Gpu.h"

#include "sdl/SdlDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/Pass.h"

using namespace mlir;

namespace {

constexpr int64_t kThreadsPerBlock = 256;

/// The memrefs of a CSR weight (sparse_tensor.assemble of the arguments).
struct CsrBuffers {
  Value pos, crd, vals;
};

/// Lowers one forward function; state of the rewrite.
class ForwardLowering {
public:
  ForwardLowering(func::FuncOp src, func::FuncOp dst)
      : src(src), b(dst.getContext()), name(dst.getSymName().str()) {
    b.setInsertionPointToStart(&dst.getBody().front());
    for (auto [from, to] : llvm::zip(src.getArguments(), dst.getArguments()))
      buffers.map(from, to);
  }

  LogicalResult run();

private:
  LogicalResult lower(Operation *op);
  LogicalResult lowerLinear(sdl::LinearOp op);
  LogicalResult lowerElementwise(Operation *op);
  /// The buffer of `v`: its destination argument or a new gpu.alloc shaped
  /// like `like` (a buffer of the same rank giving the dynamic sizes).
  Value resultBuffer(Value v, Value like);
  /// Emits `if (i < total)` inside a 1-D launch over `total` threads and
  /// calls `body(i)` inside it.
  /// The kernel is named <function>_<N>_<what> in the gpu.module
  /// <function>_kernels (one module, so one PTX image, per function).
  void launch1D(Location loc, Value total, llvm::StringRef what,
                llvm::function_ref<void(OpBuilder &, Value)> body);
  Value dim(Location loc, Value memref, int64_t d) {
    return memref::DimOp::create(b, loc, memref, d);
  }

  func::FuncOp src;
  OpBuilder b;
  IRMapping buffers; // tensor value -> memref
  llvm::DenseMap<Value, CsrBuffers> csr;
  llvm::DenseMap<Value, Value> destination; // value -> output argument
  llvm::DenseSet<Operation *> fused;        // relu ops folded into a linear
  SmallVector<Value> temporaries;
  std::string name;
  unsigned kernels = 0;
};

} // namespace

void ForwardLowering::launch1D(
    Location loc, Value total, llvm::StringRef what,
    llvm::function_ref<void(OpBuilder &, Value)> body) {
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value threads = arith::ConstantIndexOp::create(b, loc, kThreadsPerBlock);
  Value blocks = arith::CeilDivUIOp::create(b, loc, total, threads);
  // An empty batch launches nothing (a zero grid is a launch error).
  Value any =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, total, zero);
  auto guard = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(guard.thenBlock());
  MLIRContext *ctx = b.getContext();
  auto launch = gpu::LaunchOp::create(
      b, loc, blocks, one, one, threads, one, one,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, /*workgroupAttributions=*/{},
      /*privateAttributions=*/{}, /*clusterSizeX=*/nullptr,
      /*clusterSizeY=*/nullptr, /*clusterSizeZ=*/nullptr,
      FlatSymbolRefAttr::get(ctx, name + "_kernels"),
      FlatSymbolRefAttr::get(ctx, name + "_" + std::to_string(kernels++) + "_" +
                                      what.str()));
  b.setInsertionPointToEnd(&launch.getBody().front());
  Value i = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                            launch.getBlockSize().x),
      launch.getThreadIds().x);
  Value inRange =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, i, total);
  auto ifIn = scf::IfOp::create(b, loc, inRange, /*withElseRegion=*/false);
  {
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPointToStart(ifIn.thenBlock());
    body(b, i);
  }
  gpu::TerminatorOp::create(b, loc);
}

Value ForwardLowering::resultBuffer(Value v, Value like) {
  if (Value dst = destination.lookup(v))
    return dst;
  auto type = cast<RankedTensorType>(v.getType());
  auto memType = MemRefType::get(type.getShape(), type.getElementType());
  SmallVector<Value> sizes;
  for (int64_t d = 0, e = type.getRank(); d < e; ++d)
    if (type.isDynamicDim(d))
      sizes.push_back(dim(v.getLoc(), like, d));
  Value buf = gpu::AllocOp::create(b, v.getLoc(), memType, /*asyncToken=*/
                                   Type(), ValueRange(), sizes, ValueRange(),
                                   /*hostShared=*/false)
                  .getMemref();
  temporaries.push_back(buf);
  return buf;
}

LogicalResult ForwardLowering::lowerLinear(sdl::LinearOp op) {
  Location loc = op.getLoc();
  auto outType = cast<RankedTensorType>(op.getType());
  if (outType.getRank() != 2 || !outType.getElementType().isF32())
    return op.emitOpError("on the CUDA target needs a rank-2 f32 result");
  // relu(linear(...)) as the linear's only use: one kernel.
  Value result = op.getResult();
  bool relu = false;
  if (result.hasOneUse())
    if (auto r = dyn_cast<sdl::ReluOp>(*result.getUsers().begin())) {
      fused.insert(r);
      result = r.getResult();
      relu = true;
    }
  Value x = buffers.lookup(op.getInput());
  Value y = resultBuffer(result, x);
  buffers.map(result, y);
  Value bias = op.getBias() ? buffers.lookup(op.getBias()) : Value();
  auto it = csr.find(op.getWeight());
  std::optional<CsrBuffers> sparse;
  if (it != csr.end())
    sparse = it->second;
  Value w = sparse ? Value() : buffers.lookupOrNull(op.getWeight());
  if (!sparse && !w)
    return op.emitOpError("weight is neither a CSR assemble nor a dense "
                          "argument; not supported by the CUDA target yet");
  Value batch = dim(loc, x, 0);
  Value outs = arith::ConstantIndexOp::create(b, loc, outType.getDimSize(1));
  Value ins = dim(loc, x, 1);
  Value total = arith::MulIOp::create(b, loc, batch, outs);
  std::string what = sparse ? "linear_csr" : "linear_dense";
  if (relu)
    what += "_relu";
  launch1D(loc, total, what, [&](OpBuilder &k, Value i) {
    Value row = arith::RemUIOp::create(k, loc, i, outs);
    Value sample = arith::DivUIOp::create(k, loc, i, outs);
    Value init = bias ? memref::LoadOp::create(k, loc, bias, row).getResult()
                      : arith::ConstantFloatOp::create(k, loc, k.getF32Type(),
                                                       APFloat(0.0f))
                            .getResult();
    if (sparse) {
      Value next = arith::AddIOp::create(
          k, loc, row, arith::ConstantIndexOp::create(k, loc, 1));
      auto index = [&](Value mem, Value at) -> Value {
        Value raw = memref::LoadOp::create(k, loc, mem, at);
        return arith::IndexCastUIOp::create(k, loc, k.getIndexType(), raw);
      };
      Value lo = index(sparse->pos, row);
      Value hi = index(sparse->pos, next);
      auto loop = scf::ForOp::create(
          k, loc, lo, hi, arith::ConstantIndexOp::create(k, loc, 1), init,
          [&](OpBuilder &l, Location ll, Value kk, ValueRange acc) {
            Value col = arith::IndexCastUIOp::create(
                l, ll, l.getIndexType(),
                memref::LoadOp::create(l, ll, sparse->crd, kk));
            Value v = memref::LoadOp::create(l, ll, sparse->vals, kk);
            Value xv =
                memref::LoadOp::create(l, ll, x, ValueRange{sample, col});
            scf::YieldOp::create(
                l, ll, math::FmaOp::create(l, ll, v, xv, acc[0]).getResult());
          });
      init = loop.getResult(0);
    } else {
      auto loop = scf::ForOp::create(
          k, loc, arith::ConstantIndexOp::create(k, loc, 0), ins,
          arith::ConstantIndexOp::create(k, loc, 1), init,
          [&](OpBuilder &l, Location ll, Value c, ValueRange acc) {
            Value wv = memref::LoadOp::create(l, ll, w, ValueRange{row, c});
            Value xv = memref::LoadOp::create(l, ll, x, ValueRange{sample, c});
            scf::YieldOp::create(
                l, ll, math::FmaOp::create(l, ll, wv, xv, acc[0]).getResult());
          });
      init = loop.getResult(0);
    }
    if (relu)
      init =
          arith::MaximumFOp::create(k, loc, init,
                                    arith::ConstantFloatOp::create(
                                        k, loc, k.getF32Type(), APFloat(0.0f)));
    memref::StoreOp::create(k, loc, init, y, ValueRange{sample, row});
  });
  return success();
}

LogicalResult ForwardLowering::lowerElementwise(Operation *op) {
  Location loc = op->getLoc();
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  if (type.getRank() != 2 || !type.getElementType().isF32())
    return op->emitOpError("on the CUDA target needs rank-2 f32 operands");
  SmallVector<Value> in;
  for (Value v : op->getOperands())
    in.push_back(buffers.lookup(v));
  Value out = resultBuffer(op->getResult(0), in.front());
  buffers.map(op->getResult(0), out);
  Value cols = dim(loc, in.front(), 1);
  Value total = arith::MulIOp::create(b, loc, dim(loc, in.front(), 0), cols);
  bool isRelu = isa<sdl::ReluOp>(op);
  launch1D(loc, total, isRelu ? "relu" : "add", [&](OpBuilder &k, Value i) {
    SmallVector<Value> idx{arith::DivUIOp::create(k, loc, i, cols),
                           arith::RemUIOp::create(k, loc, i, cols)};
    Value a = memref::LoadOp::create(k, loc, in[0], idx);
    Value r;
    if (isRelu)
      r = arith::MaximumFOp::create(k, loc, a,
                                    arith::ConstantFloatOp::create(
                                        k, loc, k.getF32Type(), APFloat(0.0f)));
    else
      r = arith::AddFOp::create(k, loc, a,
                                memref::LoadOp::create(k, loc, in[1], idx));
    memref::StoreOp::create(k, loc, r, out, idx);
  });
  return success();
}

LogicalResult ForwardLowering::lower(Operation *op) {
  if (auto t = dyn_cast<bufferization::ToTensorOp>(op)) {
    buffers.map(t.getResult(), buffers.lookup(t.getBuffer()));
    return success();
  }
  if (auto a = dyn_cast<sparse_tensor::AssembleOp>(op)) {
    auto enc = sparse_tensor::getSparseTensorEncoding(a.getType());
    bool isCsr = enc && enc.getLvlRank() == 2 && enc.isIdentity() &&
                 sparse_tensor::isDenseLT(enc.getLvlType(0)) &&
                 sparse_tensor::isCompressedLT(enc.getLvlType(1));
    if (!isCsr || a.getLevels().size() != 2)
      return op->emitOpError("only CSR weights are supported by the CUDA "
                             "target yet");
    csr[a.getResult()] = {buffers.lookup(a.getLevels()[0]),
                          buffers.lookup(a.getLevels()[1]),
                          buffers.lookup(a.getValues())};
    return success();
  }
  if (auto l = dyn_cast<sdl::LinearOp>(op))
    return lowerLinear(l);
  if (isa<sdl::ReluOp, sdl::AddOp>(op))
    return fused.contains(op) ? success() : lowerElementwise(op);
  if (auto m = dyn_cast<bufferization::MaterializeInDestinationOp>(op)) {
    Value from = buffers.lookup(m.getSource());
    Value to = buffers.lookup(m.getDest());
    if (from != to)
      gpu::MemcpyOp::create(b, op->getLoc(), Type(), ValueRange(), to, from);
    return success();
  }
  if (isa<func::ReturnOp>(op)) {
    if (op->getNumOperands() != 0)
      return op->emitOpError("forward entry with results is not supported by "
                             "the CUDA target");
    for (Value t : temporaries)
      gpu::DeallocOp::create(b, op->getLoc(), Type(), ValueRange(), t);
    func::ReturnOp::create(b, op->getLoc());
    return success();
  }
  if (isa<arith::ConstantOp>(op)) {
    b.clone(*op, buffers);
    return success();
  }
  return op->emitOpError("is not supported by the CUDA target yet "
                         "(docs/cuda.md lists what is)");
}

LogicalResult ForwardLowering::run() {
  // Values whose only use writes the output are computed in place.
  src.walk([&](bufferization::MaterializeInDestinationOp m) {
    if (m.getSource().hasOneUse())
      if (Value dst = buffers.lookupOrNull(m.getDest()))
        destination[m.getSource()] = dst;
  });
  for (Operation &op : src.getBody().front())
    if (failed(lower(&op)))
      return failure();
  return success();
}

namespace {

struct GpuForwardPass
    : public PassWrapper<GpuForwardPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GpuForwardPass)

  StringRef getArgument() const override { return "sparsec-gpu-forward"; }
  StringRef getDescription() const override {
    return "Lower the forward entry (after sdl-finalize-abi) to host code "
           "launching gpu.launch kernels";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<arith::ArithDialect, gpu::GPUDialect, math::MathDialect,
                    memref::MemRefDialect, scf::SCFDialect>();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp forward;
    SmallVector<func::FuncOp> others;
    for (auto f : module.getOps<func::FuncOp>()) {
      auto entry = f->getAttrOfType<StringAttr>("sdl.entry");
      if (entry && entry.getValue() == "forward" && !forward)
        forward = f;
      else
        others.push_back(f);
    }
    if (!forward) {
      module.emitError("no forward entry (sdl.entry = \"forward\"); run "
                       "sdl-finalize-abi first");
      return signalPassFailure();
    }
    if (!forward.getBody().hasOneBlock()) {
      forward.emitError("the forward entry must be a single block");
      return signalPassFailure();
    }
    std::string name = forward.getSymName().str();
    llvm::StringRef prefix = "sparsec_kernel_";
    if (llvm::StringRef(name).starts_with(prefix))
      name = "sparsec_gpu_kernel_" + name.substr(prefix.size());
    else
      name = "sparsec_gpu_" + name;
    OpBuilder mb(forward);
    auto gpuFn = func::FuncOp::create(mb, forward.getLoc(), name,
                                      forward.getFunctionType());
    gpuFn->setAttrs(forward->getAttrs());
    gpuFn.setSymName(name);
    gpuFn->setAttr("sdl.target", mb.getStringAttr("cuda"));
    gpuFn.addEntryBlock();
    ForwardLowering lowering(forward, gpuFn);
    if (failed(lowering.run())) {
      gpuFn.erase();
      return signalPassFailure();
    }
    forward.erase();
    for (func::FuncOp f : others)
      f.erase();
  }
};

} // namespace

std::unique_ptr<Pass> sparsec::createGpuForwardPass() {
  return std::make_unique<GpuForwardPass>();
}
