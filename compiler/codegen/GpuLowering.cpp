//===- GpuLowering.cpp - sdl entry points to gpu.launch: forward ops ------===//
//
// Part of sparsec. The driver of EntryLowering (GpuLowering.h): the
// structural ops of an entry point after sdl-finalize-abi (to_tensor,
// sparse_tensor.assemble/disassemble, materialize_in_destination, the
// loss's tensor.extract, the return) and the forward ops:
//
//   sdl.linear, CSR weight   one thread per output y[b, r]: bias[r] +
//                            sum over the row's stored entries of
//                            vals[k] * x[b, crd[k]] (math.fma in stored
//                            order, as the CPU kernel). A warp works on one
//                            row: consecutive threads take consecutive
//                            samples of it, so the row's entries are one
//                            broadcast load per warp and x is read from its
//                            transpose xT[in, B] (one kernel per input,
//                            shared by the linears reading it), a coalesced
//                            load (the CSR SpMM form of GE-SpMM)
//   sdl.linear, dense weight the same mapping: bias[r] + W[r, :] . x[b, :]
//   sdl.relu                 fused into the producing linear when it is the
//                            linear's only use; otherwise elementwise
//   sdl.add, sdl.relu_grad   elementwise
//
// Temporaries are gpu.alloc'ed and gpu.dealloc'ed before the return; a
// value whose only use is an output's materialize_in_destination is
// computed in the output buffer.
//
//===----------------------------------------------------------------------===//

#include "codegen/GpuLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace sparsec::cudagen;

Value sparsec::cudagen::loadIndex(OpBuilder &b, Location loc, Value mem,
                                  ValueRange at) {
  Value raw = memref::LoadOp::create(b, loc, mem, at);
  if (raw.getType().isIndex())
    return raw;
  return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), raw);
}

Value sparsec::cudagen::f32(OpBuilder &b, Location loc, float v) {
  return arith::ConstantFloatOp::create(b, loc, b.getF32Type(), APFloat(v));
}

Value sparsec::cudagen::indexToF32(OpBuilder &b, Location loc, Value v) {
  Value i = arith::IndexCastOp::create(b, loc, b.getI64Type(), v);
  return arith::UIToFPOp::create(b, loc, b.getF32Type(), i);
}

bool sparsec::cudagen::isRank2F32(Type t) {
  auto s = dyn_cast<ShapedType>(t);
  return s && s.getRank() == 2 && s.getElementType().isF32();
}

Value sparsec::cudagen::accumulate(
    OpBuilder &b, Location loc, Value lo, Value hi, Value init,
    llvm::function_ref<Value(OpBuilder &, Value, Value)> step) {
  auto loop = scf::ForOp::create(
      b, loc, lo, hi, arith::ConstantIndexOp::create(b, loc, 1), init,
      [&](OpBuilder &l, Location ll, Value k, ValueRange acc) {
        scf::YieldOp::create(l, ll, step(l, k, acc[0]));
      });
  return loop.getResult(0);
}

EntryLowering::EntryLowering(func::FuncOp src, func::FuncOp dst,
                             llvm::StringRef kernelModule)
    : src(src), b(dst.getContext()), name(dst.getSymName().str()),
      kernelModule(kernelModule.str()) {
  b.setInsertionPointToStart(&dst.getBody().front());
  for (auto [from, to] : llvm::zip(src.getArguments(), dst.getArguments()))
    buffers.map(from, to);
}

Value EntryLowering::dim(Location loc, Value memref, int64_t d) {
  return memref::DimOp::create(b, loc, memref, d);
}

Value EntryLowering::index(Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

void EntryLowering::launch1D(
    Location loc, Value total, llvm::StringRef what,
    llvm::function_ref<void(OpBuilder &, Value)> body) {
  Value one = index(loc, 1);
  Value threads = index(loc, kThreadsPerBlock);
  // At least one block (a zero grid is a launch error; with total = 0 its
  // threads all fail the range check). No host branch around the launch:
  // gpu-async-region then chains every op of the function on one stream
  // (one create/synchronize per call instead of one per kernel).
  Value blocks = arith::MaxUIOp::create(
      b, loc, arith::CeilDivUIOp::create(b, loc, total, threads), one);
  OpBuilder::InsertionGuard g(b);
  MLIRContext *ctx = b.getContext();
  auto launch = gpu::LaunchOp::create(
      b, loc, blocks, one, one, threads, one, one,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, /*workgroupAttributions=*/{},
      /*privateAttributions=*/{}, /*clusterSizeX=*/nullptr,
      /*clusterSizeY=*/nullptr, /*clusterSizeZ=*/nullptr,
      FlatSymbolRefAttr::get(ctx, kernelModule),
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

void EntryLowering::hostLoop(Location loc, int64_t n,
                             llvm::function_ref<void(Value)> body) {
  auto loop =
      scf::ForOp::create(b, loc, index(loc, 0), index(loc, n), index(loc, 1));
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVar());
}

void EntryLowering::zeroFill(Location loc, Value buf) {
  Value cols = dim(loc, buf, 1);
  Value total = arith::MulIOp::create(b, loc, dim(loc, buf, 0), cols);
  launch1D(loc, total, "zero", [&](OpBuilder &k, Value i) {
    memref::StoreOp::create(
        k, loc, f32(k, loc, 0.0f), buf,
        ValueRange{arith::DivUIOp::create(k, loc, i, cols),
                   arith::RemUIOp::create(k, loc, i, cols)});
  });
}

Value EntryLowering::temporary(Location loc, MemRefType type,
                               ValueRange sizes) {
  Value buf = gpu::AllocOp::create(b, loc, type, /*asyncToken=*/Type(),
                                   ValueRange(), sizes, ValueRange(),
                                   /*hostShared=*/false)
                  .getMemref();
  temporaries.push_back(buf);
  return buf;
}

Value EntryLowering::transposed(Location loc, Value x) {
  if (Value t = transposes.lookup(x))
    return t;
  auto type = cast<MemRefType>(x.getType());
  auto tType = MemRefType::get({type.getDimSize(1), type.getDimSize(0)},
                               type.getElementType());
  Value rows = dim(loc, x, 0), cols = dim(loc, x, 1);
  SmallVector<Value> sizes;
  if (tType.isDynamicDim(0))
    sizes.push_back(cols);
  if (tType.isDynamicDim(1))
    sizes.push_back(rows);
  Value t = temporary(loc, tType, sizes);
  // One thread per element, x read in order (coalesced).
  launch1D(loc, arith::MulIOp::create(b, loc, rows, cols), "transpose",
           [&](OpBuilder &k, Value i) {
             Value r = arith::DivUIOp::create(k, loc, i, cols);
             Value c = arith::RemUIOp::create(k, loc, i, cols);
             memref::StoreOp::create(
                 k, loc, memref::LoadOp::create(k, loc, x, ValueRange{r, c}), t,
                 ValueRange{c, r});
           });
  transposes[x] = t;
  return t;
}

Value EntryLowering::resultBuffer(Value v, Value like) {
  if (Value dst = destination.lookup(v))
    return dst;
  auto type = cast<RankedTensorType>(v.getType());
  auto memType = MemRefType::get(type.getShape(), type.getElementType());
  SmallVector<Value> sizes;
  for (int64_t d = 0, e = type.getRank(); d < e; ++d)
    if (type.isDynamicDim(d))
      sizes.push_back(dim(v.getLoc(), like, d));
  return temporary(v.getLoc(), memType, sizes);
}

LogicalResult EntryLowering::lowerLinear(Operation *op, Value input,
                                         Value weight, Value mask,
                                         Value biasValue) {
  Location loc = op->getLoc();
  auto outType = cast<RankedTensorType>(op->getResult(0).getType());
  if (outType.getRank() != 2 || !outType.getElementType().isF32())
    return op->emitOpError("on the CUDA target needs a rank-2 f32 result");
  sdl::FakeQuantRowsOp fq;
  if (!mask && isInt8Linear(weight, fq))
    return lowerInt8Linear(op, input, fq, biasValue);
  // relu(linear(...)) as the linear's only use: one kernel.
  Value result = op->getResult(0);
  bool relu = false;
  if (result.hasOneUse())
    if (auto r = dyn_cast<sdl::ReluOp>(*result.getUsers().begin())) {
      fused.insert(r);
      result = r.getResult();
      relu = true;
    }
  Value x = buffers.lookup(input);
  Value y = resultBuffer(result, x);
  buffers.map(result, y);
  Value bias = biasValue ? buffers.lookup(biasValue) : Value();
  auto it = csr.find(weight);
  std::optional<CsrBuffers> sparse;
  if (it != csr.end())
    sparse = it->second;
  Value w = sparse ? Value() : buffers.lookupOrNull(weight);
  Value m = mask ? buffers.lookupOrNull(mask) : Value();
  if ((!sparse && !w) || (mask && (sparse || !m)))
    return op->emitOpError("weight is neither a CSR assemble nor a dense "
                           "argument; not supported by the CUDA target yet");
  Value outs = index(loc, outType.getDimSize(1));
  Value batch = dim(loc, x, 0);
  Value total = arith::MulIOp::create(b, loc, batch, outs);
  Value ins = dim(loc, x, 1);
  Value xt = transposed(loc, x);
  std::string what = sparse ? "linear_csr"
                     : m    ? "linear_masked"
                            : "linear_dense";
  if (relu)
    what += "_relu";
  launch1D(loc, total, what, [&](OpBuilder &k, Value i) {
    Value row = arith::DivUIOp::create(k, loc, i, batch);
    Value sample = arith::RemUIOp::create(k, loc, i, batch);
    Value acc = bias ? memref::LoadOp::create(k, loc, bias, row).getResult()
                     : f32(k, loc, 0.0f);
    auto fma = [&](OpBuilder &l, Value wv, Value col, Value sum) -> Value {
      Value xv = memref::LoadOp::create(l, loc, xt, ValueRange{col, sample});
      return math::FmaOp::create(l, loc, wv, xv, sum);
    };
    if (sparse) {
      Value next = arith::AddIOp::create(k, loc, row, index(loc, 1));
      acc = accumulate(k, loc, loadIndex(k, loc, sparse->pos, row),
                       loadIndex(k, loc, sparse->pos, next), acc,
                       [&](OpBuilder &l, Value kk, Value sum) {
                         Value col = loadIndex(l, loc, sparse->crd, kk);
                         Value v =
                             memref::LoadOp::create(l, loc, sparse->vals, kk);
                         return fma(l, v, col, sum);
                       });
    } else {
      acc = accumulate(
          k, loc, index(loc, 0), ins, acc,
          [&](OpBuilder &l, Value c, Value sum) {
            Value wv = memref::LoadOp::create(l, loc, w, ValueRange{row, c});
            if (m) // the mask applied to the weight as it is read
              wv = arith::MulFOp::create(
                  l, loc, wv,
                  memref::LoadOp::create(l, loc, m, ValueRange{row, c}));
            return fma(l, wv, c, sum);
          });
    }
    if (relu)
      acc = arith::MaximumFOp::create(k, loc, acc, f32(k, loc, 0.0f));
    memref::StoreOp::create(k, loc, acc, y, ValueRange{sample, row});
  });
  return success();
}

LogicalResult EntryLowering::lowerElementwise(Operation *op) {
  Location loc = op->getLoc();
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  if (type.getRank() < 1 || !type.getElementType().isF32())
    return op->emitOpError("on the CUDA target needs f32 operands");
  SmallVector<Value> in;
  for (Value v : op->getOperands())
    in.push_back(buffers.lookup(v));
  Value out = resultBuffer(op->getResult(0), in.front());
  buffers.map(op->getResult(0), out);
  SmallVector<Value> sizes = dims(loc, in.front());
  Value total = index(loc, 1);
  for (Value size : sizes)
    total = arith::MulIOp::create(b, loc, total, size);
  llvm::StringRef what = isa<sdl::ReluOp>(op)       ? "relu"
                         : isa<sdl::ReluGradOp>(op) ? "relu_grad"
                                                    : "add";
  launch1D(loc, total, what, [&](OpBuilder &k, Value i) {
    // The element's indices, the last dimension fastest.
    SmallVector<Value> idx(sizes.size());
    Value rest = i;
    for (size_t d = sizes.size(); d-- > 1;) {
      idx[d] = arith::RemUIOp::create(k, loc, rest, sizes[d]);
      rest = arith::DivUIOp::create(k, loc, rest, sizes[d]);
    }
    idx[0] = rest;
    Value a = memref::LoadOp::create(k, loc, in[0], idx);
    Value zero = f32(k, loc, 0.0f);
    Value r;
    if (isa<sdl::ReluOp>(op)) {
      r = arith::MaximumFOp::create(k, loc, a, zero);
    } else if (isa<sdl::ReluGradOp>(op)) {
      // grad where the input is > 0 (NaN input: 0), as the CPU kernel.
      Value pos =
          arith::CmpFOp::create(k, loc, arith::CmpFPredicate::OGT, a, zero);
      r = arith::SelectOp::create(
          k, loc, pos, memref::LoadOp::create(k, loc, in[1], idx), zero);
    } else {
      r = arith::AddFOp::create(k, loc, a,
                                memref::LoadOp::create(k, loc, in[1], idx));
    }
    memref::StoreOp::create(k, loc, r, out, idx);
  });
  return success();
}

LogicalResult EntryLowering::lowerStructural(Operation *op, bool &handled) {
  handled = true;
  Location loc = op->getLoc();
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
  if (auto e = dyn_cast<tensor::EmptyOp>(op)) {
    // Only the out-buffers of a sparse gradient's disassemble, which writes
    // nothing (the gradient shares the weight's pattern).
    for (Operation *user : e->getUsers())
      if (!isa<sparse_tensor::DisassembleOp>(user))
        return op->emitOpError("is not supported by the CUDA target yet");
    return success();
  }
  if (auto d = dyn_cast<sparse_tensor::DisassembleOp>(op)) {
    auto it = csr.find(d.getTensor());
    if (it == csr.end() || d.getRetLevels().size() != 2)
      return op->emitOpError("of a tensor that is not a CSR gradient is not "
                             "supported by the CUDA target");
    for (Value len : d.getLvlLens())
      if (!len.use_empty())
        return op->emitOpError("level lengths are not supported by the CUDA "
                               "target");
    if (!d.getValLen().use_empty())
      return op->emitOpError("value length is not supported by the CUDA "
                             "target");
    buffers.map(d.getRetLevels()[0], it->second.pos);
    buffers.map(d.getRetLevels()[1], it->second.crd);
    buffers.map(d.getRetValues(), it->second.vals);
    return success();
  }
  if (auto d = dyn_cast<tensor::DimOp>(op)) {
    buffers.map(d.getResult(),
                memref::DimOp::create(b, loc, buffers.lookup(d.getSource()),
                                      buffers.lookup(d.getIndex())));
    return success();
  }
  if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) {
    // A view of the same buffer (flatten/unflatten of activations).
    SmallVector<OpFoldResult> shape;
    for (OpFoldResult f : e.getMixedOutputShape())
      if (auto v = dyn_cast<Value>(f))
        shape.push_back(buffers.lookup(v));
      else
        shape.push_back(f);
    auto type = MemRefType::get(e.getResultType().getShape(),
                                e.getResultType().getElementType());
    buffers.map(e.getResult(), memref::ExpandShapeOp::create(
                                   b, loc, type, buffers.lookup(e.getSrc()),
                                   e.getReassociationIndices(), shape));
    return success();
  }
  if (auto c = dyn_cast<tensor::CollapseShapeOp>(op)) {
    buffers.map(c.getResult(), memref::CollapseShapeOp::create(
                                   b, loc, buffers.lookup(c.getSrc()),
                                   c.getReassociationIndices()));
    return success();
  }
  if (auto x = dyn_cast<tensor::ExtractOp>(op)) {
    // The loss: a rank-0 device buffer read back to the host.
    auto type = cast<RankedTensorType>(x.getTensor().getType());
    if (type.getRank() != 0)
      return op->emitOpError("on the CUDA target reads only rank-0 results");
    auto memType = MemRefType::get({}, type.getElementType());
    Value host = memref::AllocaOp::create(b, loc, memType);
    gpu::MemcpyOp::create(b, loc, Type(), ValueRange(), host,
                          buffers.lookup(x.getTensor()));
    buffers.map(x.getResult(), memref::LoadOp::create(b, loc, host));
    return success();
  }
  if (auto m = dyn_cast<bufferization::MaterializeInDestinationOp>(op)) {
    Value from = buffers.lookup(m.getSource());
    Value to = buffers.lookup(m.getDest());
    if (from != to)
      gpu::MemcpyOp::create(b, loc, Type(), ValueRange(), to, from);
    return success();
  }
  if (isa<func::ReturnOp>(op)) {
    for (Value t : temporaries)
      gpu::DeallocOp::create(b, loc, Type(), ValueRange(), t);
    SmallVector<Value> results;
    for (Value v : op->getOperands())
      results.push_back(buffers.lookup(v));
    func::ReturnOp::create(b, loc, results);
    return success();
  }
  if (isa<arith::ConstantOp>(op)) {
    b.clone(*op, buffers);
    return success();
  }
  handled = false;
  return success();
}

LogicalResult EntryLowering::lower(Operation *op) {
  bool handled = false;
  LogicalResult structural = lowerStructural(op, handled);
  if (handled || failed(structural))
    return structural;
  if (auto l = dyn_cast<sdl::LinearOp>(op))
    return lowerLinear(op, l.getInput(), l.getWeight(), Value(), l.getBias());
  if (auto l = dyn_cast<sdl::MaskedLinearOp>(op))
    return lowerLinear(op, l.getInput(), l.getWeight(), l.getMask(),
                       l.getBias());
  if (isa<sdl::ReluOp, sdl::AddOp, sdl::ReluGradOp>(op))
    return fused.contains(op) ? success() : lowerElementwise(op);
  if (auto o = dyn_cast<sdl::CrossEntropyLossOp>(op))
    return lowerCrossEntropy(o);
  if (auto o = dyn_cast<sdl::CrossEntropyLossGradOp>(op))
    return lowerCrossEntropyGrad(o);
  if (isa<sdl::MseLossOp, sdl::BceWithLogitsLossOp>(op))
    return lowerPointwiseLoss(op, isa<sdl::BceWithLogitsLossOp>(op));
  if (isa<sdl::MseLossGradOp, sdl::BceWithLogitsLossGradOp>(op))
    return lowerPointwiseLossGrad(op, isa<sdl::BceWithLogitsLossGradOp>(op));
  if (auto o = dyn_cast<sdl::LinearGradInputOp>(op))
    return lowerLinearGradInput(op, o.getGrad(), o.getWeight(), Value());
  if (auto o = dyn_cast<sdl::MaskedLinearGradInputOp>(op))
    return lowerLinearGradInput(op, o.getGrad(), o.getWeight(), o.getMask());
  if (auto o = dyn_cast<sdl::LinearGradWeightOp>(op))
    return lowerLinearGradWeight(op, o.getGrad(), o.getInput(), o.getWeight(),
                                 Value());
  if (auto o = dyn_cast<sdl::MaskedLinearGradWeightOp>(op))
    return lowerLinearGradWeight(op, o.getGrad(), o.getInput(), Value(),
                                 o.getMask());
  if (auto o = dyn_cast<sdl::ReduceBatchOp>(op))
    return lowerReduceBatch(o);
  if (auto o = dyn_cast<sdl::KWinnersOp>(op))
    return lowerKWinners(op, o.getInput(), o.getDuty(), o.getInput(),
                         o.getTraining() ? o.getK() : o.getKInference(),
                         o.getLocal(), o.getBoostStrength().convertToDouble(),
                         o.getBoostFactor().convertToDouble(),
                         o.getBoostPeriod());
  if (auto o = dyn_cast<sdl::KWinnersGradOp>(op))
    return lowerKWinners(op, o.getInput(), o.getDuty(), o.getGrad(), o.getK(),
                         o.getLocal(), o.getBoostStrength().convertToDouble(),
                         o.getBoostFactor().convertToDouble(),
                         o.getBoostPeriod());
  if (auto o = dyn_cast<sdl::KWinnersDutyOp>(op))
    return lowerKWinnersDuty(o);
  if (auto o = dyn_cast<sdl::MaskedConv2dOp>(op))
    return lowerMaskedConv2d(o);
  if (auto o = dyn_cast<sdl::MaskedConv2dGradInputOp>(op))
    return lowerMaskedConv2dGradInput(o);
  if (auto o = dyn_cast<sdl::MaskedConv2dGradWeightOp>(op))
    return lowerMaskedConv2dGradWeight(o);
  if (auto o = dyn_cast<sdl::ChannelSumOp>(op))
    return lowerChannelSum(o);
  if (isa<sdl::MatmulOp, sdl::MatmulGradLhsOp, sdl::MatmulGradRhsOp>(op))
    return lowerMatmul(op);
  if (auto o = dyn_cast<sdl::FakeQuantRowsOp>(op))
    return lowerFakeQuant(o);
  if (auto o = dyn_cast<sdl::MaskedLstmOp>(op))
    return lowerMaskedLstm(o);
  if (auto o = dyn_cast<sdl::MaskedLstmGradOp>(op))
    return lowerMaskedLstmGrad(o);
  if (auto o = dyn_cast<sdl::EmbeddingOp>(op))
    return lowerEmbedding(o);
  if (auto o = dyn_cast<sdl::EmbeddingGradOp>(op))
    return lowerEmbeddingGrad(o);
  if (auto o = dyn_cast<sdl::EmbeddingBagOp>(op))
    return lowerEmbeddingBag(o);
  if (auto o = dyn_cast<sdl::EmbeddingBagGradOp>(op))
    return lowerEmbeddingBagGrad(o);
  if (auto o = dyn_cast<sdl::ConcatOp>(op))
    return lowerConcat(o);
  if (auto o = dyn_cast<sdl::SliceOp>(op))
    return lowerSlice(o);
  return op->emitOpError("is not supported by the CUDA target yet "
                         "(docs/cuda.md lists what is)");
}

LogicalResult EntryLowering::run() {
  // Values whose only use writes an output are computed in place; a CSR
  // gradient whose values are only disassembled into an output, too.
  src.walk([&](bufferization::MaterializeInDestinationOp m) {
    Value dst = buffers.lookupOrNull(m.getDest());
    Value from = m.getSource();
    if (!dst || !from.hasOneUse())
      return;
    destination[from] = dst;
    if (auto d = from.getDefiningOp<sparse_tensor::DisassembleOp>())
      if (from == d.getRetValues() && d.getTensor().hasOneUse())
        destination[d.getTensor()] = dst;
  });
  for (Operation &op : src.getBody().front())
    if (failed(lower(&op)))
      return failure();
  return success();
}
