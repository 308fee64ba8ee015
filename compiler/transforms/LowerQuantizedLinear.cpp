//===- LowerQuantizedLinear.cpp - int8 forward of quantized layers --------===//
//
// Implements `sdl-lower-quantized-linear`: in the forward entry
// (`sdl.entry = "forward"`), a `sparse_quantized_linear` layer, i.e.
// `sdl.linear` of a rank-2 f32 activation x [B, I] and `sdl.fake_quant_rows`
// of a CSR weight rebuilt by `sparse_tensor.assemble`, is computed in int8
// when the fake quantization's `sdl.inference` attribute asks for it
// ("int8", or "auto"/absent where the rule below chooses int8):
//
//   s(r)     = max |w(r, :)| / qmax (1 for a zero row), qmax = 2^(bits-1) - 1
//   wq(k)    = clamp(roundeven(w(k) / s(r)), ±qmax)           as i8, per call
//   sx(b)    = max |x(b, :)| / 127 (1 for a zero row)
//   xq(b, i) = clamp(roundeven(x(b, i) * (1 / sx(b))), ±127)   as u8 + 128
//   acc      = sum_k wq(k) xq(b, crd k)                        in i32 (exact)
//   y(b, r)  = f32(acc) * s(r) * sx(b) + bias(r)
//
// (QuantRows.h: the weight's levels and scales are computed exactly as the
// training forward's fake quantization does; the reciprocal of sx is taken
// once per sample, as fbgemm's quantization does). x is quantized into
// byte batch blocks [ceil(B / 64), I, 64] (64-byte aligned: one cache line
// per block row, against four for f32) from its f32 blocks: those of an
// int8 layer before it, else a toBlocksOp that sdl-lower-sparse-linear
// replaces by the blocks of the kernel that computed x (or a conversion).
// The product runs like sdl-lower-sparse-linear's f32 forward, rows in
// parallel (`sdl.parallel`), for kBlocksAtOnce blocks at a time (each
// weight entry loaded and broadcast once for all, one vector<64xi32>
// accumulator per block carried across the row's stored weights), then for
// the other blocks one by one (kSingleBlockChains accumulators taking
// alternate entries); each entry and block is one `extui` + `muli` +
// `addi` on 64 lanes, which LLVM's X86 back end turns into vpmovzxbd +
// vpdpwssd (VNNI; vpmaddwd + vpaddd without). The result stays in f32
// blocks (a fromBlocks op that sdl-lower-sparse-linear and the next int8
// layer read directly); a relu that is its only user is applied as the
// tiles are stored.
//
// The rule for "auto" (useInt8): int8 when the layer has at least 8 stored
// weights per input column (and at most 133143 columns), else f32; the
// measured numbers are in docs/performance.md. `train` keeps the f32
// fake-quantized forward (the straight-through estimator's), computed by
// sdl-lower-fake-quant and sdl-lower-sparse-linear. Runs after
// sdl-finalize-abi, before sdl-lower-fake-quant.
//
//===----------------------------------------------------------------------===//

#include "transforms/BatchBlocks.h"
#include "transforms/Passes.h"
#include "transforms/QuantRows.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERQUANTIZEDLINEAR
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using namespace mlir::sdl::blocks;

namespace {

using quant::kActivationLevels;
/// The activation levels are stored plus kOffset, as unsigned bytes in
/// [1, 255]: a product of a zero-extended byte and a sign-extended one is
/// what LLVM's X86 back end turns into vpmaddwd / vpdpwssd (one operand
/// with its upper 17 bits zero); a product of two sign-extended bytes
/// stays a vpmulld. The sum is corrected by kOffset times the row's sum of
/// weight levels, exactly in i32.
constexpr int64_t kOffset = 128;
/// Stored weights quantized at a time (a 512-bit vector of f32).
constexpr int64_t kWeightLanes = 16;

/// A quantized layer of the forward entry: linear(x, fake_quant_rows(w)).
struct QuantLayer {
  LinearOp op;
  FakeQuantRowsOp fq;
  Csr c; // the f32 weight's arrays, 64 lanes
};

std::optional<QuantLayer> matchLayer(LinearOp op) {
  auto fq = op.getWeight().getDefiningOp<FakeQuantRowsOp>();
  auto xt = dyn_cast<RankedTensorType>(op.getInput().getType());
  if (!fq || !xt || xt.getRank() != 2 || xt.isDynamicDim(1) ||
      !xt.getElementType().isF32())
    return std::nullopt;
  auto w = fq.getInput().getDefiningOp<sparse_tensor::AssembleOp>();
  auto wt = cast<RankedTensorType>(fq.getType());
  if (!w || w.getLevels().size() != 2 || !wt.getElementType().isF32() ||
      !wt.hasStaticShape() || !tensorOf(w.getValues()).hasStaticShape())
    return std::nullopt;
  Type f32 = wt.getElementType();
  int64_t width = kBlockBits / 32;
  Csr c{w.getLevels()[0],
        w.getLevels()[1],
        w.getValues(),
        wt.getDimSize(0),
        wt.getDimSize(1),
        width,
        f32,
        VectorType::get({width}, f32)};
  return QuantLayer{op, fq, c};
}

/// Whether the layer is computed in int8 (QuantRows.h's rule).
bool useInt8(FakeQuantRowsOp fq, const Csr &c) {
  return quant::inferenceInt8(fq, tensorOf(c.vals).getDimSize(0), c.cols);
}

/// The quantized weight: int8 levels [nnz], one f32 scale per row and,
/// per row, kOffset times the sum of its levels (i32), the correction for
/// the offset of the activation levels.
struct QuantWeights {
  Value levels, scales, offsets;
};

QuantWeights quantizeWeights(OpBuilder &b, Location loc, const Csr &c,
                             int64_t bits) {
  Value vals = buffer(b, loc, c.vals);
  int64_t nnz = tensorOf(c.vals).getDimSize(0);
  auto i32 = b.getI32Type();
  QuantWeights q;
  q.levels =
      memref::AllocOp::create(b, loc, MemRefType::get({nnz}, b.getI8Type()),
                              ValueRange{}, b.getI64IntegerAttr(kBlockAlign));
  q.scales = memref::AllocOp::create(b, loc, MemRefType::get({c.rows}, c.elt),
                                     ValueRange{});
  q.offsets = memref::AllocOp::create(b, loc, MemRefType::get({c.rows}, i32),
                                      ValueRange{});
  double qmax = quant::maxLevel(bits);
  quant::forRowScales(
      b, loc, buffer(b, loc, c.pos), vals, c.rows, qmax, kWeightLanes,
      [&](OpBuilder &pb, Location pl, Value row, Value lo, Value hi,
          Value scale) {
        memref::StoreOp::create(pb, pl, scale, q.scales, ValueRange{row});
        Value zero = arith::ConstantOp::create(pb, pl, pb.getI32IntegerAttr(0));
        Value sum = quant::foldEntries(
            pb, pl, lo, hi, kWeightLanes, zero, vector::CombiningKind::ADD,
            [&](OpBuilder &kb, Location kl, Value acc, Value k) {
              int64_t n = quant::lanesOf(acc);
              Value v = quant::loadLanes(kb, kl, vals, k, n);
              Value s = n == 1 ? scale
                               : vector::BroadcastOp::create(kb, kl,
                                                             v.getType(), scale)
                                     .getResult();
              Type i8 = kb.getI8Type();
              Value l = arith::FPToSIOp::create(
                  kb, kl, n == 1 ? i8 : VectorType::get({n}, i8),
                  quant::levelOf(kb, kl, v, s, qmax));
              quant::storeLanes(kb, kl, l, q.levels, k);
              return arith::AddIOp::create(
                         kb, kl, acc,
                         arith::ExtSIOp::create(kb, kl, acc.getType(), l))
                  .getResult();
            });
        Value off = arith::MulIOp::create(
            pb, pl, sum,
            arith::ConstantOp::create(pb, pl, pb.getI32IntegerAttr(kOffset)));
        memref::StoreOp::create(pb, pl, off, q.offsets, ValueRange{row});
      });
  return q;
}

/// The activation (f32 blocks [nb, I, W]) as int8 blocks [nb, I, W] of
/// levels + kOffset (unsigned) and one scale per sample, [nb, W] (a
/// padding lane, zero, gets scale 1): blocks in parallel, the max |x| over
/// the columns lane by lane, then the levels.
std::pair<Value, Value> quantizeActivations(OpBuilder &b, Location loc,
                                            Value blocks, const Csr &c) {
  Value nb = tensor::DimOp::create(b, loc, blocks, 0);
  Value xm = buffer(b, loc, blocks);
  auto i8 = b.getI8Type();
  Value levels = memref::AllocOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic, c.cols, c.width}, i8),
      ValueRange{nb}, b.getI64IntegerAttr(kBlockAlign));
  Value scales = memref::AllocOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic, c.width}, c.elt),
      ValueRange{nb}, b.getI64IntegerAttr(kBlockAlign));
  auto levelVec = VectorType::get({c.width}, i8);
  parallelFor(b, loc, nb, [&](OpBuilder &pb, Location pl, Value blk) {
    Value m = accumulate(
        pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.cols), zeroVec(pb, pl, c),
        [&](OpBuilder &kb, Location kl, Value acc, Value col) {
          Value a =
              math::AbsFOp::create(kb, kl, loadVec(kb, kl, c, xm, blk, col));
          return arith::MaximumFOp::create(kb, kl, acc, a).getResult();
        });
    Value s = quant::scaleOf(pb, pl, m, kActivationLevels);
    vector::StoreOp::create(pb, pl, s, scales,
                            ValueRange{blk, cIdx(pb, pl, 0)});
    Value inv =
        arith::DivFOp::create(pb, pl, quant::constant(pb, pl, c.vec, 1.0), s);
    forLoop(pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.cols),
            [&](OpBuilder &kb, Location kl, Value col) {
              Value q = quant::roundLevel(
                  kb, kl,
                  arith::MulFOp::create(kb, kl,
                                        loadVec(kb, kl, c, xm, blk, col), inv),
                  kActivationLevels);
              q = arith::AddFOp::create(
                  kb, kl, q, quant::constant(kb, kl, c.vec, kOffset));
              storeVec(kb, kl, arith::FPToUIOp::create(kb, kl, levelVec, q),
                       levels, blk, col);
            });
  });
  return {levels, scales};
}

/// Batch blocks multiplied at once: each weight entry is loaded and
/// broadcast once for all of them, and their 4 x 4 accumulator registers
/// are independent chains of vpdpwssd.
constexpr int64_t kBlocksAtOnce = 4;
/// The blocks left over are multiplied one at a time with this many
/// accumulator chains taking alternate entries: with one chain per
/// register the loop waits on vpdpwssd's latency.
constexpr int64_t kSingleBlockChains = 2;

using EntryStep = llvm::function_ref<SmallVector<Value>(
    OpBuilder &, Location, ValueRange acc, Value k)>;

/// The sums of step(accs, k) over [lo, hi) (step updates one accumulator
/// per element of `zeros`) with `chains` sets of accumulators taking the
/// entries in turn, added at the end (integer sums: the order does not
/// matter), then the remaining entries.
SmallVector<Value> interleavedSums(OpBuilder &b, Location loc, Value lo,
                                   Value hi, ArrayRef<Value> zeros,
                                   int64_t chains, EntryStep step) {
  size_t n = zeros.size();
  Value mid = wholeSteps(b, loc, lo, hi, chains);
  SmallVector<Value> init;
  for (int64_t i = 0; i < chains; ++i)
    llvm::append_range(init, zeros);
  auto loop = scf::ForOp::create(
      b, loc, lo, mid, cIdx(b, loc, chains), init,
      [&](OpBuilder &nb, Location nl, Value k, ValueRange acc) {
        SmallVector<Value> next;
        for (int64_t i = 0; i < chains; ++i)
          llvm::append_range(
              next, step(nb, nl, acc.slice(i * n, n),
                         arith::AddIOp::create(nb, nl, k, cIdx(nb, nl, i))
                             .getResult()));
        scf::YieldOp::create(nb, nl, next);
      });
  SmallVector<Value> sums(loop.getResults().take_front(n));
  for (int64_t i = 1; i < chains; ++i)
    for (size_t j = 0; j < n; ++j)
      sums[j] =
          arith::AddIOp::create(b, loc, sums[j], loop.getResult(i * n + j));
  auto tail = scf::ForOp::create(
      b, loc, mid, hi, cIdx(b, loc, 1), sums,
      [&](OpBuilder &nb, Location nl, Value k, ValueRange acc) {
        scf::YieldOp::create(nb, nl, step(nb, nl, acc, k));
      });
  return SmallVector<Value>(tail.getResults());
}

/// The only user of `y` if it is a relu (applied by the kernel), else null.
ReluOp fusedRelu(Value y) {
  if (!y.hasOneUse())
    return {};
  return dyn_cast<ReluOp>(*y.getUsers().begin());
}

/// The int8 forward of layer `l` (see the file comment); returns its
/// [B, O] result (fromBlocks of the f32 output blocks) and replaces a fused
/// relu's uses by it.
Value lowerLayer(OpBuilder &b, QuantLayer &l) {
  LinearOp op = l.op;
  const Csr &c = l.c;
  Location loc = op.getLoc();
  ReluOp relu = fusedRelu(op.getResult());
  auto [xBlocks, batch] = blocksOf(op.getInput(), c.width);
  if (!xBlocks) {
    xBlocks = toBlocksOp(b, loc, op.getInput(), c);
    batch = tensor::DimOp::create(b, loc, op.getInput(), 0);
  }
  Value xq, sx;
  std::tie(xq, sx) = quantizeActivations(b, loc, xBlocks, c);
  QuantWeights wq = quantizeWeights(b, loc, c, l.fq.getBits());
  Value nb = tensor::DimOp::create(b, loc, xBlocks, 0);
  Value crd = buffer(b, loc, c.crd), pos = buffer(b, loc, c.pos);
  Value bias = op.getBias() ? buffer(b, loc, op.getBias()) : Value();
  auto i32 = b.getI32Type();
  auto accVec = VectorType::get({c.width}, i32);
  auto levelVec = VectorType::get({c.width}, b.getI8Type());
  Value yb = allocBlocks(b, loc, c, c.rows, nb);
  // The rows in parallel for the blocks `blks` at once (the weight's entry
  // loaded and broadcast once for all of them).
  auto rowsOf = [&](OpBuilder &fb, Location fl, SmallVector<Value> blks) {
    parallelFor(
        fb, fl, cIdx(fb, fl, c.rows),
        [&](OpBuilder &pb, Location pl, Value row) {
          auto [lo, hi] = rowRange(pb, pl, pos, row);
          Value zero = arith::ConstantOp::create(
              pb, pl, DenseElementsAttr::get(accVec, pb.getI32IntegerAttr(0)));
          // acc(blk) + wq(k) xq(blk, crd k, :)
          auto madd = [&](OpBuilder &kb, Location kl, ValueRange acc, Value k) {
            Value col = loadIndex(kb, kl, crd, k);
            Value w = vector::BroadcastOp::create(
                kb, kl, accVec,
                arith::ExtSIOp::create(
                    kb, kl, i32,
                    memref::LoadOp::create(kb, kl, wq.levels, ValueRange{k})));
            SmallVector<Value> next;
            for (auto [a, blk] : llvm::zip(acc, blks)) {
              Value xv = vector::LoadOp::create(
                  kb, kl, levelVec, xq, ValueRange{blk, col, cIdx(kb, kl, 0)});
              Value p = arith::MulIOp::create(
                  kb, kl, arith::ExtUIOp::create(kb, kl, accVec, xv), w);
              next.push_back(arith::AddIOp::create(kb, kl, a, p));
            }
            return next;
          };
          SmallVector<Value> accs = interleavedSums(
              pb, pl, lo, hi, SmallVector<Value>(blks.size(), zero),
              blks.size() == 1 ? kSingleBlockChains : 1, madd);
          auto bcast = [&](Value mem, VectorType t) {
            return vector::BroadcastOp::create(
                pb, pl, t,
                memref::LoadOp::create(pb, pl, mem, ValueRange{row}));
          };
          for (auto [acc, blk] : llvm::zip(accs, blks)) {
            acc = arith::SubIOp::create(pb, pl, acc, bcast(wq.offsets, accVec));
            Value y = arith::SIToFPOp::create(pb, pl, c.vec, acc);
            y = arith::MulFOp::create(pb, pl, y, bcast(wq.scales, c.vec));
            y = arith::MulFOp::create(
                pb, pl, y,
                vector::LoadOp::create(pb, pl, c.vec, sx,
                                       ValueRange{blk, cIdx(pb, pl, 0)}));
            if (bias)
              y = arith::AddFOp::create(pb, pl, y, bcast(bias, c.vec));
            if (relu)
              y = arith::MaximumFOp::create(pb, pl, y, zeroVec(pb, pl, c));
            storeVec(pb, pl, y, yb, blk, row);
          }
        });
  };
  // kBlocksAtOnce blocks at a time, then the rest one by one.
  Value whole = wholeSteps(b, loc, cIdx(b, loc, 0), nb, kBlocksAtOnce);
  scf::ForOp::create(
      b, loc, cIdx(b, loc, 0), whole, cIdx(b, loc, kBlocksAtOnce), ValueRange{},
      [&](OpBuilder &fb, Location fl, Value blk, ValueRange) {
        SmallVector<Value> blks;
        for (int64_t i = 0; i < kBlocksAtOnce; ++i)
          blks.push_back(arith::AddIOp::create(fb, fl, blk, cIdx(fb, fl, i)));
        rowsOf(fb, fl, blks);
        scf::YieldOp::create(fb, fl);
      });
  forLoop(b, loc, whole, nb, [&](OpBuilder &fb, Location fl, Value blk) {
    rowsOf(fb, fl, {blk});
  });
  Value y = fromBlocks(b, loc, asTensor(b, loc, yb), batch,
                       cast<RankedTensorType>(op.getType()), c);
  if (relu) {
    relu.getResult().replaceAllUsesWith(y);
    relu.erase();
  }
  return y;
}

struct SdlLowerQuantizedLinear
    : mlir::sdl::impl::SdlLowerQuantizedLinearBase<SdlLowerQuantizedLinear> {
  void runOnOperation() override {
    SmallVector<QuantLayer> layers;
    getOperation().walk([&](func::FuncOp f) {
      auto entry = f->getAttrOfType<StringAttr>("sdl.entry");
      if (!entry || entry.getValue() != "forward")
        return;
      f.walk([&](LinearOp op) {
        if (std::optional<QuantLayer> l = matchLayer(op);
            l && useInt8(l->fq, l->c))
          layers.push_back(*l);
      });
    });
    WalkResult bad = getOperation().walk([&](FakeQuantRowsOp fq) {
      auto mode = fq->getAttrOfType<StringAttr>("sdl.inference");
      if (!mode || llvm::is_contained({"auto", "int8", "f32"}, mode.getValue()))
        return WalkResult::advance();
      fq.emitOpError("sdl.inference must be \"auto\", \"int8\" or \"f32\"");
      return WalkResult::interrupt();
    });
    if (bad.wasInterrupted())
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    for (QuantLayer &l : layers) {
      rewriter.setInsertionPoint(l.op);
      rewriter.replaceOp(l.op, lowerLayer(rewriter, l));
      if (l.fq->use_empty())
        rewriter.eraseOp(l.fq);
    }
  }
};

} // namespace
