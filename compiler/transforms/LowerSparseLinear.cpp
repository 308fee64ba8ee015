//===- LowerSparseLinear.cpp - Register-tiled linear kernels --------------===//
//
// Implements `sdl-lower-sparse-linear`: the three kernels of a `linear` or
// CSR `sparse_linear` layer applied to a rank-2 activation [B, F] are
// generated here as explicit loops instead of going through the sparsifier
// (for a CSR weight) or scalar linalg reductions (for a dense one):
//
//   forward      y(b, o)  = bias(o) + sum_k W(o, crd k) x(b, crd k)   (SpMM)
//   grad input   dx(b, i) = sum_o dy(b, o) W(o, i)          (transposed SpMM)
//   grad weight  dW(k)    = sum_b dy(b, o) x(b, crd k), k in row o   (SDDMM)
//
// (a dense row o holds every column: crd k = k). Activations are converted
// once at the kernel boundary into a batch-blocked layout owned by the
// compiler, [ceil(B / W), F, W] with W lanes (W = 64 for f32: eight 256-bit
// vectors), the last block padded with zeros. The loops carry a
// `vector<W x elt>` accumulator in registers across a row's stored weights
// (an FMA with the broadcast weight per stored entry), so the batch
// dimension is static and contiguous whatever B is at run time. Rows
// (forward, SDDMM) or batch blocks (input gradient) are the iterations of an
// `scf.parallel` marked `sdl.parallel`, which `sparsec-outline-parallel`
// turns into calls of the runtime's thread pool; every output element is
// computed by one iteration in a fixed order, so results do not depend on the
// number of threads. The kernels work on buffers (`bufferization.to_buffer`
// of the operands, `memref.alloc` results returned with
// `bufferization.to_tensor restrict`); anything else (other ranks, a CSR
// weight not rebuilt by `sparse_tensor.assemble`, other element types) is
// left to convert-sdl-to-linalg and the sparsifier.
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLLOWERSPARSELINEAR
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;
using utils::IteratorType;

namespace {

/// Bits of one batch block: eight AVX2 registers.
constexpr int64_t kBlockBits = 2048;

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// The weight of one layer, [rows, cols] = [O, I]: a CSR weight's arrays
/// (from its sparse_tensor.assemble) or a dense matrix (every row holds all
/// `cols` columns), the element type and the block width.
struct Csr {
  Value pos, crd, vals; // tensors; a dense weight has only `vals` ([O, I])
  int64_t rows, cols, width;
  Type elt;
  VectorType vec;

  bool isDense() const { return !pos; }
};

std::optional<Csr> csrOf(Value weight) {
  auto t = dyn_cast<RankedTensorType>(weight.getType());
  if (!t || t.getRank() != 2 || t.isDynamicDim(0) || t.isDynamicDim(1))
    return std::nullopt;
  Type elt = t.getElementType();
  if (!elt.isF32() && !elt.isF64())
    return std::nullopt;
  int64_t width = kBlockBits / elt.getIntOrFloatBitWidth();
  Csr c{Value(),         Value(), weight, t.getDimSize(0),
        t.getDimSize(1), width,   elt,    VectorType::get({width}, elt)};
  if (!sparse_tensor::getSparseTensorEncoding(t))
    return c;
  auto asmOp = weight.getDefiningOp<sparse_tensor::AssembleOp>();
  if (!asmOp || asmOp.getLevels().size() != 2)
    return std::nullopt;
  c.pos = asmOp.getLevels()[0];
  c.crd = asmOp.getLevels()[1];
  c.vals = asmOp.getValues();
  return c;
}

bool isBatchMajor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getRank() == 2 && !t.isDynamicDim(1);
}

/// Read-only buffer of a tensor.
Value buffer(OpBuilder &b, Location loc, Value t) {
  RankedTensorType tt = tensorOf(t);
  auto mt = MemRefType::get(tt.getShape(), tt.getElementType());
  return bufferization::ToBufferOp::create(b, loc, mt, t, /*readOnly=*/true);
}

/// Number of blocks of W lanes holding `batch` rows.
Value numBlocks(OpBuilder &b, Location loc, Value batch, int64_t width) {
  return arith::CeilDivUIOp::create(b, loc, batch, cIdx(b, loc, width));
}

/// [B, F] -> [ceil(B / W), F, W], padding lanes zero.
Value toBlocks(OpBuilder &b, Location loc, Value x, const Csr &c) {
  RankedTensorType xt = tensorOf(x);
  int64_t f = xt.getDimSize(1);
  Value batch = tensor::DimOp::create(b, loc, x, 0);
  auto bt = RankedTensorType::get({ShapedType::kDynamic, f, c.width}, c.elt);
  Value empty = tensor::EmptyOp::create(
      b, loc, bt, ValueRange{numBlocks(b, loc, batch, c.width)});
  MLIRContext *ctx = b.getContext();
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{bt}, ValueRange{}, ValueRange{empty},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(3, ctx)},
      SmallVector<IteratorType>(3, IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        Value blk = linalg::IndexOp::create(nb, nl, 0);
        Value col = linalg::IndexOp::create(nb, nl, 1);
        Value lane = linalg::IndexOp::create(nb, nl, 2);
        Value row = arith::AddIOp::create(
            nb, nl, arith::MulIOp::create(nb, nl, blk, cIdx(nb, nl, c.width)),
            lane);
        Value last = arith::SubIOp::create(nb, nl, batch, cIdx(nb, nl, 1));
        Value clamped = arith::MinUIOp::create(nb, nl, row, last);
        Value v =
            tensor::ExtractOp::create(nb, nl, x, ValueRange{clamped, col});
        Value inside = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                             row, batch);
        Value zero = arith::ConstantOp::create(nb, nl, c.elt,
                                               nb.getFloatAttr(c.elt, 0.0));
        linalg::YieldOp::create(
            nb, nl,
            ValueRange{arith::SelectOp::create(nb, nl, inside, v, zero)});
      });
  return g.getResult(0);
}

/// [ceil(B / W), F, W] -> [B, F] (type `t`, batch taken from `like`).
Value fromBlocks(OpBuilder &b, Location loc, Value blocks, RankedTensorType t,
                 Value like, const Csr &c) {
  Value batch = tensor::DimOp::create(b, loc, like, 0);
  Value empty = tensor::EmptyOp::create(b, loc, t, ValueRange{batch});
  MLIRContext *ctx = b.getContext();
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{t}, ValueRange{}, ValueRange{empty},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(2, ctx)},
      SmallVector<IteratorType>(2, IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        Value row = linalg::IndexOp::create(nb, nl, 0);
        Value col = linalg::IndexOp::create(nb, nl, 1);
        Value w = cIdx(nb, nl, c.width);
        Value blk = arith::DivUIOp::create(nb, nl, row, w);
        Value lane = arith::RemUIOp::create(nb, nl, row, w);
        linalg::YieldOp::create(
            nb, nl,
            ValueRange{tensor::ExtractOp::create(nb, nl, blocks,
                                                 ValueRange{blk, col, lane})});
      });
  return g.getResult(0);
}

/// The blocked copy of each activation, built once per function: the train
/// kernel reads x in blocks for the forward product and again for the
/// SDDMM.
struct BlockCache {
  explicit BlockCache(DominanceInfo &dom) : dom(dom) {}

  DominanceInfo &dom;
  llvm::DenseMap<std::pair<Value, int64_t>, Value> blocks;

  Value get(OpBuilder &b, Location loc, Value x, const Csr &c) {
    Value &slot = blocks[{x, c.width}];
    Operation *at = &*b.getInsertionPoint();
    if (!slot || !dom.properlyDominates(slot, at))
      slot = toBlocks(b, loc, x, c);
    return slot;
  }
};

/// The weight's arrays as buffers, with helpers for the loops over the
/// stored entries k of a row (a dense row: k = the column).
struct CsrBuffers {
  const Csr &c;
  Value pos, crd, vals;

  CsrBuffers(OpBuilder &b, Location loc, const Csr &c)
      : c(c), vals(buffer(b, loc, c.vals)) {
    if (!c.isDense()) {
      pos = buffer(b, loc, c.pos);
      crd = buffer(b, loc, c.crd);
    }
  }

  Value loadIndex(OpBuilder &b, Location loc, Value mem, Value i) const {
    Value v = memref::LoadOp::create(b, loc, mem, ValueRange{i});
    return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), v);
  }
  /// [begin, end) of the stored entries of `row`.
  std::pair<Value, Value> rowRange(OpBuilder &b, Location loc,
                                   Value row) const {
    if (c.isDense())
      return {cIdx(b, loc, 0), cIdx(b, loc, c.cols)};
    Value next = arith::AddIOp::create(b, loc, row, cIdx(b, loc, 1));
    return {loadIndex(b, loc, pos, row), loadIndex(b, loc, pos, next)};
  }
  Value column(OpBuilder &b, Location loc, Value k) const {
    return c.isDense() ? k : loadIndex(b, loc, crd, k);
  }
  /// Where entry k of `row` lives in the values (or their gradient).
  SmallVector<Value> at(Value row, Value k) const {
    if (c.isDense())
      return {row, k};
    return {k};
  }
  Value value(OpBuilder &b, Location loc, Value row, Value k) const {
    return memref::LoadOp::create(b, loc, vals, at(row, k));
  }
};

using LoopBody = llvm::function_ref<void(OpBuilder &, Location, Value)>;

/// scf.parallel over [0, n) marked for sparsec-outline-parallel.
void parallelFor(OpBuilder &b, Location loc, Value n, LoopBody body) {
  auto par =
      scf::ParallelOp::create(b, loc, ValueRange{cIdx(b, loc, 0)},
                              ValueRange{n}, ValueRange{cIdx(b, loc, 1)},
                              [&](OpBuilder &nb, Location nl, ValueRange ivs) {
                                body(nb, nl, ivs[0]);
                              });
  par->setAttr("sdl.parallel", b.getUnitAttr());
}

void forLoop(OpBuilder &b, Location loc, Value lo, Value hi, LoopBody body) {
  scf::ForOp::create(b, loc, lo, hi, cIdx(b, loc, 1), ValueRange{},
                     [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
                       body(nb, nl, iv);
                       scf::YieldOp::create(nb, nl);
                     });
}

/// Accumulates `step(acc, iv)` over [lo, hi) in a loop-carried vector.
Value accumulate(
    OpBuilder &b, Location loc, Value lo, Value hi, Value init,
    llvm::function_ref<Value(OpBuilder &, Location, Value, Value)> step) {
  auto loop = scf::ForOp::create(
      b, loc, lo, hi, cIdx(b, loc, 1), ValueRange{init},
      [&](OpBuilder &nb, Location nl, Value iv, ValueRange acc) {
        scf::YieldOp::create(nb, nl, ValueRange{step(nb, nl, acc[0], iv)});
      });
  return loop.getResult(0);
}

Value loadVec(OpBuilder &b, Location loc, const Csr &c, Value mem, Value blk,
              Value row) {
  return vector::LoadOp::create(b, loc, c.vec, mem,
                                ValueRange{blk, row, cIdx(b, loc, 0)});
}

void storeVec(OpBuilder &b, Location loc, Value v, Value mem, Value blk,
              Value row) {
  vector::StoreOp::create(b, loc, v, mem,
                          ValueRange{blk, row, cIdx(b, loc, 0)});
}

/// acc + broadcast(w) * v
Value fmaBroadcast(OpBuilder &b, Location loc, const Csr &c, Value w, Value v,
                   Value acc) {
  Value wv = vector::BroadcastOp::create(b, loc, c.vec, w);
  return vector::FMAOp::create(b, loc, wv, v, acc);
}

Value zeroVec(OpBuilder &b, Location loc, const Csr &c) {
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(c.vec, b.getFloatAttr(c.elt, 0.0)));
}

/// Uninitialised [nb, F, W] buffer and the number of blocks.
Value allocBlocks(OpBuilder &b, Location loc, const Csr &c, int64_t f,
                  Value nb) {
  auto mt = MemRefType::get({ShapedType::kDynamic, f, c.width}, c.elt);
  return memref::AllocOp::create(b, loc, mt, ValueRange{nb});
}

Value asTensor(OpBuilder &b, Location loc, Value mem) {
  auto mt = cast<MemRefType>(mem.getType());
  auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
  return bufferization::ToTensorOp::create(b, loc, tt, mem, /*restrict=*/true,
                                           /*writable=*/true);
}

/// y = x Wᵀ (+ bias): block by block (one block of x stays in cache), rows
/// in parallel; the W-lane output tile of a row stays in registers across
/// the row's stored weights.
Value lowerForward(OpBuilder &b, LinearOp op, const Csr &c, BlockCache &cache) {
  Location loc = op.getLoc();
  Value xb = cache.get(b, loc, op.getInput(), c);
  Value nb = tensor::DimOp::create(b, loc, xb, 0);
  Value xm = buffer(b, loc, xb);
  Value bias = op.getBias() ? buffer(b, loc, op.getBias()) : Value();
  CsrBuffers w(b, loc, c);
  Value yb = allocBlocks(b, loc, c, c.rows, nb);
  forLoop(
      b, loc, cIdx(b, loc, 0), nb, [&](OpBuilder &fb, Location fl, Value blk) {
        parallelFor(
            fb, fl, cIdx(fb, fl, c.rows),
            [&](OpBuilder &pb, Location pl, Value row) {
              auto [lo, hi] = w.rowRange(pb, pl, row);
              Value init = zeroVec(pb, pl, c);
              if (bias)
                init = vector::BroadcastOp::create(
                    pb, pl, c.vec,
                    memref::LoadOp::create(pb, pl, bias, ValueRange{row}));
              Value acc =
                  accumulate(pb, pl, lo, hi, init,
                             [&](OpBuilder &kb, Location kl, Value a, Value k) {
                               Value col = w.column(kb, kl, k);
                               Value wk = w.value(kb, kl, row, k);
                               Value xv = loadVec(kb, kl, c, xm, blk, col);
                               return fmaBroadcast(kb, kl, c, wk, xv, a);
                             });
              storeVec(pb, pl, acc, yb, blk, row);
            });
      });
  return fromBlocks(b, loc, asTensor(b, loc, yb), op.getType(), op.getInput(),
                    c);
}

/// dx = dy W: per block (the parallel dimension, so no two threads update
/// one element), each row's dy tile is scattered into the rows of dx named
/// by the row's column coordinates.
Value lowerGradInput(OpBuilder &b, LinearGradInputOp op, const Csr &c,
                     BlockCache &cache) {
  Location loc = op.getLoc();
  Value dyb = cache.get(b, loc, op.getGrad(), c);
  Value nb = tensor::DimOp::create(b, loc, dyb, 0);
  Value dym = buffer(b, loc, dyb);
  CsrBuffers w(b, loc, c);
  Value dxb = allocBlocks(b, loc, c, c.cols, nb);
  parallelFor(b, loc, nb, [&](OpBuilder &pb, Location pl, Value blk) {
    Value zero = zeroVec(pb, pl, c);
    forLoop(pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.cols),
            [&](OpBuilder &fb, Location fl, Value i) {
              storeVec(fb, fl, zero, dxb, blk, i);
            });
    forLoop(pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.rows),
            [&](OpBuilder &fb, Location fl, Value row) {
              auto [lo, hi] = w.rowRange(fb, fl, row);
              Value dyv = loadVec(fb, fl, c, dym, blk, row);
              forLoop(fb, fl, lo, hi, [&](OpBuilder &kb, Location kl, Value k) {
                Value col = w.column(kb, kl, k);
                Value wk = w.value(kb, kl, row, k);
                Value d = loadVec(kb, kl, c, dxb, blk, col);
                storeVec(kb, kl, fmaBroadcast(kb, kl, c, wk, dyv, d), dxb, blk,
                         col);
              });
            });
  });
  return fromBlocks(b, loc, asTensor(b, loc, dxb), op.getType(), op.getGrad(),
                    c);
}

/// dW(k) = sum over blocks of dy(:, o) . x(:, crd k): block by block (one
/// block of x stays in cache), rows in parallel, one horizontal sum per
/// stored entry and block; the first block stores, the others add. The
/// result is built in a fresh buffer (no zero-filled constant of nnz
/// elements) and reassembled with the weight's pattern.
Value lowerGradWeight(OpBuilder &b, LinearGradWeightOp op, const Csr &c,
                      BlockCache &cache) {
  Location loc = op.getLoc();
  Value dyb = cache.get(b, loc, op.getGrad(), c);
  Value xb = cache.get(b, loc, op.getInput(), c);
  Value nb = tensor::DimOp::create(b, loc, dyb, 0);
  Value dym = buffer(b, loc, dyb), xm = buffer(b, loc, xb);
  CsrBuffers w(b, loc, c);
  RankedTensorType vt = tensorOf(c.vals);
  Value dw = memref::AllocOp::create(
      b, loc, MemRefType::get(vt.getShape(), c.elt), ValueRange{});
  // An empty batch still defines the gradient: zero.
  Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, nb,
                                     cIdx(b, loc, 0));
  scf::IfOp::create(b, loc, none, [&](OpBuilder &ib, Location il) {
    Value zero =
        arith::ConstantOp::create(ib, il, c.elt, ib.getFloatAttr(c.elt, 0.0));
    linalg::FillOp::create(ib, il, zero, dw);
    scf::YieldOp::create(ib, il);
  });
  forLoop(
      b, loc, cIdx(b, loc, 0), nb, [&](OpBuilder &fb, Location fl, Value blk) {
        Value first = arith::CmpIOp::create(fb, fl, arith::CmpIPredicate::eq,
                                            blk, cIdx(fb, fl, 0));
        parallelFor(
            fb, fl, cIdx(fb, fl, c.rows),
            [&](OpBuilder &pb, Location pl, Value row) {
              auto [lo, hi] = w.rowRange(pb, pl, row);
              Value dyv = loadVec(pb, pl, c, dym, blk, row);
              forLoop(pb, pl, lo, hi, [&](OpBuilder &kb, Location kl, Value k) {
                Value col = w.column(kb, kl, k);
                Value xv = loadVec(kb, kl, c, xm, blk, col);
                Value prod = arith::MulFOp::create(kb, kl, dyv, xv);
                Value s = vector::ReductionOp::create(
                    kb, kl, vector::CombiningKind::ADD, prod, Value(),
                    arith::FastMathFlags::reassoc);
                scf::IfOp::create(
                    kb, kl, first,
                    [&](OpBuilder &tb, Location tl) {
                      memref::StoreOp::create(tb, tl, s, dw, w.at(row, k));
                      scf::YieldOp::create(tb, tl);
                    },
                    [&](OpBuilder &eb, Location el) {
                      Value old =
                          memref::LoadOp::create(eb, el, dw, w.at(row, k));
                      memref::StoreOp::create(
                          eb, el, arith::AddFOp::create(eb, el, old, s), dw,
                          w.at(row, k));
                      scf::YieldOp::create(eb, el);
                    });
              });
            });
      });
  if (c.isDense())
    return asTensor(b, loc, dw);
  return sparse_tensor::AssembleOp::create(
      b, loc, op.getType(), ValueRange{c.pos, c.crd}, asTensor(b, loc, dw));
}

/// Lowers `op` if it is one of the kernels handled here.
FailureOr<Value> lowerOp(OpBuilder &b, Operation *op, BlockCache &cache) {
  if (auto o = dyn_cast<LinearOp>(op)) {
    std::optional<Csr> c = csrOf(o.getWeight());
    if (c && isBatchMajor(o.getInput()))
      return lowerForward(b, o, *c, cache);
  } else if (auto o = dyn_cast<LinearGradInputOp>(op)) {
    std::optional<Csr> c = csrOf(o.getWeight());
    if (c && isBatchMajor(o.getGrad()))
      return lowerGradInput(b, o, *c, cache);
  } else if (auto o = dyn_cast<LinearGradWeightOp>(op)) {
    std::optional<Csr> c = csrOf(o.getWeight());
    if (c && isBatchMajor(o.getGrad()) && isBatchMajor(o.getInput()))
      return lowerGradWeight(b, o, *c, cache);
  }
  return failure();
}

struct SdlLowerSparseLinear
    : mlir::sdl::impl::SdlLowerSparseLinearBase<SdlLowerSparseLinear> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<LinearOp, LinearGradInputOp, LinearGradWeightOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    DominanceInfo dom(getOperation());
    BlockCache cache(dom);
    for (Operation *op : ops) {
      rewriter.setInsertionPoint(op);
      FailureOr<Value> v = lowerOp(rewriter, op, cache);
      if (succeeded(v))
        rewriter.replaceOp(op, *v);
    }
  }
};

} // namespace
