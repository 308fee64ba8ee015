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
// (a dense row o holds every column: crd k = k). The three ops of a
// `masked_linear` layer take the same loops on its dense weight with the
// mask multiplied in where a weight is read (w(o, i) m(o, i)) and where a
// weight gradient is written (m(o, i) times the sum), so W ∘ M is never
// formed. Activations are converted
// once into a batch-blocked layout owned by the compiler, [ceil(B / W), F, W]
// with W lanes (W = 64 for f32: eight 256-bit vectors), the last block
// padded (BatchBlocks.h: the conversions run by (block, column tile) in
// parallel). Kernel outputs keep their blocks, and relu / relu_grad of
// values with blocks are computed on the blocks, as is reduce_batch (the
// bias gradient, summed in sample order), so a chain of layers converts
// activations only where something else reads them; a [B, F] form nothing
// reads is erased. A result that only goes into a caller's buffer (the
// weight and bias gradients, the output) is computed there. The loops carry a
// `vector<W x elt>` accumulator in registers across a row's stored weights
// (an FMA with the broadcast weight per stored entry), so the batch
// dimension is static and contiguous whatever B is at run time. Rows
// (forward, SDDMM) or batch blocks (input gradient) are the iterations of an
// `scf.parallel` marked `sdl.parallel`, which `sparsec-outline-parallel`
// turns into calls of the runtime's thread pool; every output element is
// computed by one iteration in a fixed order, so results do not depend on the
// number of threads. The SDDMM reduces groups of four entries of a row with
// one shuffle tree. The kernels work on buffers (`bufferization.to_buffer`
// of the operands, `memref.alloc` results returned with
// `bufferization.to_tensor restrict`); anything else (other ranks, a CSR
// weight not rebuilt by `sparse_tensor.assemble`, other element types) is
// left to convert-sdl-to-linalg and the sparsifier.
//
//===----------------------------------------------------------------------===//

#include "transforms/BatchBlocks.h"
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
using namespace mlir::sdl::blocks;
using utils::IteratorType;

namespace {

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

/// A masked_linear weight: the dense loops with the mask multiplied in.
std::optional<Csr> maskedOf(Value weight, Value mask) {
  std::optional<Csr> c = csrOf(weight);
  if (!c || !c->isDense() || mask.getType() != weight.getType())
    return std::nullopt;
  c->mask = mask;
  return c;
}

bool isBatchMajor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getRank() == 2 && !t.isDynamicDim(1);
}

/// The weight's arrays as buffers, with helpers for the loops over the
/// stored entries k of a row (a dense row: k = the column).
struct CsrBuffers {
  const Csr &c;
  Value pos, crd, vals, mask;

  CsrBuffers(OpBuilder &b, Location loc, const Csr &c)
      : c(c), vals(buffer(b, loc, c.vals)) {
    if (!c.isDense()) {
      pos = buffer(b, loc, c.pos);
      crd = buffer(b, loc, c.crd);
    }
    if (c.mask)
      mask = buffer(b, loc, c.mask);
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
  /// W(row, k), times the mask's entry for a masked weight.
  Value value(OpBuilder &b, Location loc, Value row, Value k) const {
    Value w = memref::LoadOp::create(b, loc, vals, at(row, k));
    return masked(b, loc, w, row, k);
  }
  /// `v` (a scalar or a vector of consecutive entries from k) times the
  /// mask there; `v` itself without a mask.
  Value masked(OpBuilder &b, Location loc, Value v, Value row, Value k) const {
    if (!mask)
      return v;
    Value m = isa<VectorType>(v.getType())
                  ? vector::LoadOp::create(b, loc, cast<VectorType>(v.getType()),
                                           mask, at(row, k))
                        .getResult()
                  : memref::LoadOp::create(b, loc, mask, at(row, k)).getResult();
    return arith::MulFOp::create(b, loc, v, m);
  }
};

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

/// acc + broadcast(w) * v
Value fmaBroadcast(OpBuilder &b, Location loc, const Csr &c, Value w, Value v,
                   Value acc) {
  Value wv = vector::BroadcastOp::create(b, loc, c.vec, w);
  return vector::FMAOp::create(b, loc, wv, v, acc);
}

/// An activation [B, F] in blocks [ceil(B / W), F, W], and B.
struct Blocked {
  Value blocks, batch;
  explicit operator bool() const { return static_cast<bool>(blocks); }
};

/// The blocked copy of each activation, built once per function: the train
/// kernel reads x in blocks for the forward product and again for the
/// SDDMM. The outputs of the kernels here are registered in their blocked
/// form, and relu / relu_grad of values with blocks get theirs lane by lane,
/// so a chain of layers converts its activations only where they leave it.
/// Padding lanes are zero in converted inputs and in gradients, arbitrary
/// (finite) in forward outputs; the SDDMM multiplies them by zero.
struct BlockCache {
  explicit BlockCache(DominanceInfo &dom) : dom(dom) {}

  DominanceInfo &dom;
  llvm::DenseMap<std::pair<Value, int64_t>, Blocked> blocks;

  void put(Value v, int64_t width, Blocked b) { blocks[{v, width}] = b; }

  /// Blocks of `x` that exist or can be derived from ones that exist.
  Blocked find(OpBuilder &b, Location loc, Value x, const Csr &c) {
    auto it = blocks.find({x, c.width});
    Operation *at = &*b.getInsertionPoint();
    if (it != blocks.end() && dom.properlyDominates(it->second.blocks, at))
      return it->second;
    Blocked d;
    if (auto r = x.getDefiningOp<ReluOp>()) {
      if (Blocked in = find(b, loc, r.getInput(), c))
        d = {mapBlocks(b, loc, c, {in.blocks},
                       [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         return arith::MaximumFOp::create(nb, nl, a[0],
                                                          zeroVec(nb, nl, c));
                       }),
             in.batch};
    } else if (auto g = x.getDefiningOp<ReluGradOp>()) {
      Blocked in = find(b, loc, g.getInput(), c);
      Blocked dy = in ? find(b, loc, g.getGrad(), c) : Blocked();
      if (dy)
        d = {mapBlocks(b, loc, c, {in.blocks, dy.blocks},
                       [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         Value z = zeroVec(nb, nl, c);
                         Value pos = arith::CmpFOp::create(
                             nb, nl, arith::CmpFPredicate::OGT, a[0], z);
                         return arith::SelectOp::create(nb, nl, pos, a[1], z);
                       }),
             dy.batch};
    }
    if (d)
      put(x, c.width, d);
    return d;
  }

  Blocked get(OpBuilder &b, Location loc, Value x, const Csr &c) {
    if (Blocked v = find(b, loc, x, c))
      return v;
    Blocked v{toBlocks(b, loc, x, c), tensor::DimOp::create(b, loc, x, 0)};
    put(x, c.width, v);
    return v;
  }
};

/// The [B, F] result of a kernel that wrote blocks `mem`, registered with
/// its blocks.
Value blockedResult(OpBuilder &b, Location loc, Value mem, Value batch,
                    Type type, const Csr &c, BlockCache &cache) {
  Value blocks = asTensor(b, loc, mem);
  Value v =
      fromBlocks(b, loc, blocks, batch, cast<RankedTensorType>(type), c);
  cache.put(v, c.width, {blocks, batch});
  return v;
}

/// y = x Wᵀ (+ bias): block by block (one block of x stays in cache), rows
/// in parallel; the W-lane output tile of a row stays in registers across
/// the row's stored weights.
template <typename ForwardOp>
Value lowerForward(OpBuilder &b, ForwardOp op, const Csr &c,
                   BlockCache &cache) {
  Location loc = op.getLoc();
  Blocked x = cache.get(b, loc, op.getInput(), c);
  Value nb = tensor::DimOp::create(b, loc, x.blocks, 0);
  Value xm = buffer(b, loc, x.blocks);
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
  return blockedResult(b, loc, yb, x.batch, op.getType(), c, cache);
}

/// dx = dy W: per block (the parallel dimension, so no two threads update
/// one element), each row's dy tile is scattered into the rows of dx named
/// by the row's column coordinates; a dense W: columns of dx in parallel.
template <typename GradInputOp>
Value lowerGradInput(OpBuilder &b, GradInputOp op, const Csr &c,
                     BlockCache &cache) {
  Location loc = op.getLoc();
  Blocked dy = cache.get(b, loc, op.getGrad(), c);
  Value nb = tensor::DimOp::create(b, loc, dy.blocks, 0);
  Value dym = buffer(b, loc, dy.blocks);
  CsrBuffers w(b, loc, c);
  Value dxb = allocBlocks(b, loc, c, c.cols, nb);
  if (c.isDense()) {
    // dx(:, i) = sum_o W(o, i) dy(:, o): the forward loop on Wᵀ, columns in
    // parallel, the output tile in registers.
    forLoop(b, loc, cIdx(b, loc, 0), nb,
            [&](OpBuilder &fb, Location fl, Value blk) {
              parallelFor(
                  fb, fl, cIdx(fb, fl, c.cols),
                  [&](OpBuilder &pb, Location pl, Value i) {
                    Value acc = accumulate(
                        pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.rows),
                        zeroVec(pb, pl, c),
                        [&](OpBuilder &kb, Location kl, Value a, Value o) {
                          Value wk = w.value(kb, kl, o, i);
                          Value dyv = loadVec(kb, kl, c, dym, blk, o);
                          return fmaBroadcast(kb, kl, c, wk, dyv, a);
                        });
                    storeVec(pb, pl, acc, dxb, blk, i);
                  });
            });
    return blockedResult(b, loc, dxb, dy.batch, op.getType(), c, cache);
  }
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
  return blockedResult(b, loc, dxb, dy.batch, op.getType(), c, cache);
}

/// Entries of a row whose SDDMM sums share one reduction tree.
constexpr int64_t kGroup = 4;

/// The horizontal sums of the kGroup W-lane vectors `p`, as a
/// vector<kGroup>: each is folded to 16 lanes, then pairs of vectors are
/// combined by shuffles that halve the lanes per entry until one is left.
Value groupSums(OpBuilder &b, Location loc, const Csr &c,
                ArrayRef<Value> p) {
  int64_t lanes = std::min<int64_t>(16, c.width);
  SmallVector<Value> v;
  for (Value x : p) {
    Value acc;
    for (int64_t off = 0; off < c.width; off += lanes) {
      Value part = vector::ExtractStridedSliceOp::create(
          b, loc, x, ArrayRef<int64_t>{off}, ArrayRef<int64_t>{lanes},
          ArrayRef<int64_t>{1});
      acc = acc ? arith::AddFOp::create(b, loc, acc, part).getResult() : part;
    }
    v.push_back(acc);
  }
  // Each round adds the low and the high half of every entry's lanes: two
  // vectors are paired (a's entries, then b's), the last one is folded on
  // itself. kGroup entries: 4 vectors -> 2 -> 1, then 16 -> 4 x 1 lanes.
  int64_t per = lanes; // lanes per entry in every vector of v
  while (per > 1) {
    SmallVector<Value> next;
    int64_t half = per / 2;
    for (size_t i = 0; i < v.size(); i += 2) {
      Value a = v[i], other = i + 1 < v.size() ? v[i + 1] : v[i];
      int64_t n = cast<VectorType>(a.getType()).getNumElements();
      int64_t sources = i + 1 < v.size() ? 2 : 1;
      SmallVector<int64_t> lo, hi;
      for (int64_t src = 0; src < sources; ++src)
        for (int64_t e = 0; e < n / per; ++e)
          for (int64_t l = 0; l < half; ++l) {
            lo.push_back(src * n + e * per + l);
            hi.push_back(src * n + e * per + half + l);
          }
      Value x = vector::ShuffleOp::create(b, loc, a, other, lo);
      Value y = vector::ShuffleOp::create(b, loc, a, other, hi);
      next.push_back(arith::AddFOp::create(b, loc, x, y));
    }
    v = next;
    per = half;
  }
  return v.front();
}

/// dW(k) = sum over blocks of dy(:, o) . x(:, crd k): block by block (one
/// block of x stays in cache), rows in parallel, one horizontal sum per
/// stored entry and block (kGroup entries share a reduction tree); the
/// first block stores, the others add. The
/// result is built in the caller's gradient buffer where it only goes there
/// (else a fresh one; never a zero-filled constant of nnz elements) and
/// reassembled with the weight's pattern.
template <typename GradWeightOp>
Value lowerGradWeight(OpBuilder &b, GradWeightOp op, const Csr &c,
                      BlockCache &cache) {
  Location loc = op.getLoc();
  Value dyb = cache.get(b, loc, op.getGrad(), c).blocks;
  Value xb = cache.get(b, loc, op.getInput(), c).blocks;
  Value nb = tensor::DimOp::create(b, loc, dyb, 0);
  Value dym = buffer(b, loc, dyb), xm = buffer(b, loc, xb);
  CsrBuffers w(b, loc, c);
  RankedTensorType vt = tensorOf(c.vals);
  Value dw = resultBuffer(b, loc, op.getResult(),
                          MemRefType::get(vt.getShape(), c.elt), {});
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
              auto product = [&](OpBuilder &kb, Location kl, Value k) {
                Value xv = loadVec(kb, kl, c, xm, blk, w.column(kb, kl, k));
                return arith::MulFOp::create(kb, kl, dyv, xv).getResult();
              };
              // Groups of kGroup entries: one reduction tree for the group.
              Value span = arith::SubIOp::create(pb, pl, hi, lo);
              Value mid = arith::AddIOp::create(
                  pb, pl, lo,
                  arith::MulIOp::create(
                      pb, pl,
                      arith::DivUIOp::create(pb, pl, span,
                                             cIdx(pb, pl, kGroup)),
                      cIdx(pb, pl, kGroup)));
              scf::ForOp::create(
                  pb, pl, lo, mid, cIdx(pb, pl, kGroup), ValueRange{},
                  [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
                    SmallVector<Value> prods;
                    for (int64_t i = 0; i < kGroup; ++i)
                      prods.push_back(product(
                          kb, kl,
                          arith::AddIOp::create(kb, kl, k, cIdx(kb, kl, i))));
                    Value s = w.masked(kb, kl, groupSums(kb, kl, c, prods),
                                       row, k);
                    SmallVector<Value> at = w.at(row, k);
                    scf::IfOp::create(
                        kb, kl, first,
                        [&](OpBuilder &tb, Location tl) {
                          vector::StoreOp::create(tb, tl, s, dw, at);
                          scf::YieldOp::create(tb, tl);
                        },
                        [&](OpBuilder &eb, Location el) {
                          Value old = vector::LoadOp::create(
                              eb, el, cast<VectorType>(s.getType()), dw, at);
                          vector::StoreOp::create(
                              eb, el, arith::AddFOp::create(eb, el, old, s),
                              dw, at);
                          scf::YieldOp::create(eb, el);
                        });
                    scf::YieldOp::create(kb, kl);
                  });
              forLoop(pb, pl, mid, hi, [&](OpBuilder &kb, Location kl, Value k) {
                Value prod = product(kb, kl, k);
                Value s = w.masked(
                    kb, kl,
                    vector::ReductionOp::create(
                        kb, kl, vector::CombiningKind::ADD, prod, Value(),
                        arith::FastMathFlags::reassoc),
                    row, k);
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

/// Bias gradient db(f) = sum over samples of dy(b, f), of a dy that has
/// blocks: column tiles in parallel; a column's blocks are added lane by
/// lane (padding lanes masked), then one horizontal sum (a fixed order).
FailureOr<Value> lowerReduceBatch(OpBuilder &b, ReduceBatchOp op,
                                  BlockCache &cache) {
  Location loc = op.getLoc();
  auto t = dyn_cast<RankedTensorType>(op.getInput().getType());
  if (!isBatchMajor(op.getInput()) || !(t.getElementType().isF32() ||
                                        t.getElementType().isF64()))
    return failure();
  Type elt = t.getElementType();
  int64_t f = t.getDimSize(1), width = kBlockBits / elt.getIntOrFloatBitWidth();
  Csr c{Value(), Value(), Value(), 0, f, width, elt,
        VectorType::get({width}, elt)};
  Blocked dy = cache.find(b, loc, op.getInput(), c);
  if (!dy)
    return failure();
  Value dym = buffer(b, loc, dy.blocks);
  Value nb = tensor::DimOp::create(b, loc, dy.blocks, 0);
  Value out = resultBuffer(b, loc, op.getResult(), MemRefType::get({f}, elt),
                           {});
  forTiles(
      b, loc, cIdx(b, loc, 1), f,
      [&](OpBuilder &tb, Location tl, Value, Value c0, Value c1) {
        forLoop(tb, tl, c0, c1, [&](OpBuilder &cb, Location cl, Value col) {
          Value sum = accumulate(
              cb, cl, cIdx(cb, cl, 0), nb, zeroVec(cb, cl, c),
              [&](OpBuilder &kb, Location kl, Value acc, Value blk) {
                auto mt = VectorType::get({c.width}, kb.getI1Type());
                Value live = vector::CreateMaskOp::create(
                    kb, kl, mt, ValueRange{validLanes(kb, kl, dy.batch, blk, c)});
                Value v = arith::SelectOp::create(
                    kb, kl, live, loadVec(kb, kl, c, dym, blk, col),
                    zeroVec(kb, kl, c));
                return arith::AddFOp::create(kb, kl, acc, v).getResult();
              });
          Value r = vector::ReductionOp::create(
              cb, cl, vector::CombiningKind::ADD, sum, Value(),
              arith::FastMathFlags::reassoc);
          memref::StoreOp::create(cb, cl, r, out, ValueRange{col});
        });
      });
  return asTensor(b, loc, out);
}

/// Lowers `op` if it is one of the kernels handled here.
FailureOr<Value> lowerOp(OpBuilder &b, Operation *op, BlockCache &cache) {
  if (auto o = dyn_cast<ReduceBatchOp>(op))
    return lowerReduceBatch(b, o, cache);
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
  } else if (auto o = dyn_cast<MaskedLinearOp>(op)) {
    std::optional<Csr> c = maskedOf(o.getWeight(), o.getMask());
    if (c && isBatchMajor(o.getInput()))
      return lowerForward(b, o, *c, cache);
  } else if (auto o = dyn_cast<MaskedLinearGradInputOp>(op)) {
    std::optional<Csr> c = maskedOf(o.getWeight(), o.getMask());
    if (c && isBatchMajor(o.getGrad()))
      return lowerGradInput(b, o, *c, cache);
  } else if (auto o = dyn_cast<MaskedLinearGradWeightOp>(op)) {
    // No weight operand: the mask gives the shape (its values stand in for
    // the weight's, which the gradient does not read).
    std::optional<Csr> c = maskedOf(o.getMask(), o.getMask());
    if (c && isBatchMajor(o.getGrad()) && isBatchMajor(o.getInput()))
      return lowerGradWeight(b, o, *c, cache);
  }
  return failure();
}

/// Erases the ops of function bodies that nothing uses any more (the [B, F]
/// forms of activations whose users now read their blocks).
void eraseDeadOps(Operation *root) {
  root->walk([](func::FuncOp f) {
    for (Block &block : f.getBody())
      for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
        if (isOpTriviallyDead(&op))
          op.erase();
  });
}

/// Replaces a used fromBlocks op `g` by storeRows into the caller's buffer
/// when its result only goes there, else into a fresh buffer.
void materializeRows(IRRewriter &rewriter, linalg::GenericOp g) {
  Location loc = g.getLoc();
  rewriter.setInsertionPoint(g);
  auto t = cast<RankedTensorType>(g.getResult(0).getType());
  Type elt = t.getElementType();
  int64_t width = g->getAttrOfType<IntegerAttr>(kFromBlocks).getInt();
  Csr c{Value(), Value(), Value(), 0, t.getDimSize(1), width, elt,
        VectorType::get({width}, elt)};
  Value batch = g.getDpsInits()[0].getDefiningOp<tensor::EmptyOp>()
                    .getDynamicSizes()[0];
  Value blocks;
  g.getRegion().walk([&](tensor::ExtractOp e) { blocks = e.getTensor(); });
  Value dest = resultBuffer(rewriter, loc, g.getResult(0),
                            MemRefType::get(t.getShape(), elt), {batch});
  storeRows(rewriter, loc, blocks, dest, batch, c);
  rewriter.replaceOp(g, asTensor(rewriter, loc, dest));
}

struct SdlLowerSparseLinear
    : mlir::sdl::impl::SdlLowerSparseLinearBase<SdlLowerSparseLinear> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<LinearOp, LinearGradInputOp, LinearGradWeightOp, ReduceBatchOp,
              MaskedLinearOp, MaskedLinearGradInputOp,
              MaskedLinearGradWeightOp>(op))
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
    eraseDeadOps(getOperation());
    SmallVector<linalg::GenericOp> rows;
    getOperation().walk([&](linalg::GenericOp g) {
      if (g->hasAttr(kFromBlocks))
        rows.push_back(g);
    });
    for (linalg::GenericOp g : rows)
      materializeRows(rewriter, g);
  }
};

} // namespace
