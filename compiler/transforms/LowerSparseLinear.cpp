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
// bias gradient), so a chain of layers converts activations only where
// something else reads them; a [B, F] form nothing reads is erased. Blocks
// made by an earlier pass (sdl-lower-quantized-linear: a fromBlocks result,
// and toBlocksOp for its inputs, replaced here by the blocks at hand) join
// the same chain. Where
// they are the only user of a kernel's result, relu and relu_grad are
// applied by the kernel as it stores its tiles (Epilogue), and the bias
// gradient of a dy whose weight gradient is computed here is summed by that
// SDDMM from the dy tiles it loads. A result that only goes into a caller's
// buffer (the weight and bias gradients, the output) is computed there. The
// loops carry a
// `vector<W x elt>` accumulator in registers across a row's stored weights
// (an FMA with the broadcast weight per stored entry), so the batch
// dimension is static and contiguous whatever B is at run time. Rows
// (forward, SDDMM) or batch blocks (input gradient) are the iterations of an
// `scf.parallel` marked `sdl.parallel`, which `sparsec-outline-parallel`
// turns into calls of the runtime's thread pool; every output element is
// computed by one iteration in a fixed order, so results do not depend on the
// number of threads. The SDDMM folds each product to 16 lanes with fused
// multiply-adds and reduces groups of four entries of a row with one shuffle
// tree. The kernels work on buffers (`bufferization.to_buffer`
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

  /// [begin, end) of the stored entries of `row`.
  std::pair<Value, Value> rowRange(OpBuilder &b, Location loc,
                                   Value row) const {
    if (c.isDense())
      return {cIdx(b, loc, 0), cIdx(b, loc, c.cols)};
    return blocks::rowRange(b, loc, pos, row);
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

/// acc + broadcast(w) * v
Value fmaBroadcast(OpBuilder &b, Location loc, const Csr &c, Value w, Value v,
                   Value acc) {
  Value wv = vector::BroadcastOp::create(b, loc, c.vec, w);
  return vector::FMAOp::create(b, loc, wv, v, acc);
}

/// relu of a tile.
Value reluTile(OpBuilder &b, Location loc, const Csr &c, Value v) {
  return arith::MaximumFOp::create(b, loc, v, zeroVec(b, loc, c));
}

/// The relu gradient of a tile: dy where x > 0, else 0 (x > 0 exactly where
/// relu(x) > 0, so x may be the relu's input or its output).
Value reluGradTile(OpBuilder &b, Location loc, const Csr &c, Value x,
                   Value dy) {
  Value z = zeroVec(b, loc, c);
  Value pos = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, z);
  return arith::SelectOp::create(b, loc, pos, dy, z);
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
    if (auto [blk, batch] = blocksOf(x, c.width); blk) {
      // Made by an earlier pass (sdl-lower-quantized-linear).
      d = {blk, batch};
    } else if (auto r = x.getDefiningOp<ReluOp>()) {
      if (Blocked in = find(b, loc, r.getInput(), c))
        d = {mapBlocks(b, loc, c, {in.blocks},
                       [&](OpBuilder &nb, Location nl, ValueRange a) {
                         return reluTile(nb, nl, c, a[0]);
                       }),
             in.batch};
    } else if (auto g = x.getDefiningOp<ReluGradOp>()) {
      Blocked in = find(b, loc, g.getInput(), c);
      Blocked dy = in ? find(b, loc, g.getGrad(), c) : Blocked();
      if (dy)
        d = {mapBlocks(b, loc, c, {in.blocks, dy.blocks},
                       [&](OpBuilder &nb, Location nl, ValueRange a) {
                         return reluGradTile(nb, nl, c, a[0], a[1]);
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

/// relu or the relu gradient applied to a kernel's output tiles as they are
/// stored, fused from the only user of the kernel's result, so that no pass
/// over the blocks of its own is made: the kernel's blocks then hold the
/// fused op's result.
struct Epilogue {
  Operation *op = nullptr; // the fused ReluOp or ReluGradOp, or none
  Value gate;              // relu_grad: the blocks of its input (a buffer)

  Value apply(OpBuilder &b, Location loc, const Csr &c, Value tile, Value blk,
              Value row) const {
    if (!op)
      return tile;
    if (!gate)
      return reluTile(b, loc, c, tile);
    return reluGradTile(b, loc, c, loadVec(b, loc, c, gate, blk, row), tile);
  }
};

/// The relu of a forward product `y` used by one relu and otherwise only as
/// the input of relu gradients after it, which then read the relu's result
/// instead (the same sign).
Epilogue reluOf(Value y, DominanceInfo &dom) {
  ReluOp relu;
  SmallVector<ReluGradOp> grads;
  for (Operation *u : y.getUsers()) {
    if (auto r = dyn_cast<ReluOp>(u); r && !relu)
      relu = r;
    else if (auto g = dyn_cast<ReluGradOp>(u); g && g.getGrad() != y)
      grads.push_back(g);
    else
      return {};
  }
  if (!relu || llvm::any_of(grads, [&](ReluGradOp g) {
        return !dom.properlyDominates(relu.getOperation(), g);
      }))
    return {};
  for (ReluGradOp g : grads)
    g.getInputMutable().assign(relu.getResult());
  return {relu, Value()};
}

/// The relu gradient of an input gradient `d` that is only the gradient
/// operand of one relu_grad whose input has blocks.
Epilogue reluGradOf(OpBuilder &b, Location loc, Value d, const Csr &c,
                    BlockCache &cache) {
  if (!d.hasOneUse())
    return {};
  auto g = dyn_cast<ReluGradOp>(*d.getUsers().begin());
  if (!g || g.getGrad() != d || g.getInput() == d)
    return {};
  Blocked in = cache.find(b, loc, g.getInput(), c);
  if (!in)
    return {};
  return {g, buffer(b, loc, in.blocks)};
}

/// The [B, F] result of kernel `op` that wrote blocks `mem` with epilogue
/// `ep`, registered with its blocks; a fused op's uses are replaced by it
/// (the kernel's own result then only feeds the fused op, which is dead).
Value kernelResult(OpBuilder &b, Location loc, Operation *op, Value mem,
                   Value batch, const Epilogue &ep, const Csr &c,
                   BlockCache &cache) {
  Value r = ep.op ? ep.op->getResult(0) : op->getResult(0);
  Value v = blockedResult(b, loc, mem, batch, r.getType(), c, cache);
  if (ep.op)
    r.replaceAllUsesWith(v);
  return v;
}

/// y = x Wᵀ (+ bias): block by block (one block of x stays in cache), rows
/// in parallel; the W-lane output tile of a row stays in registers across
/// the row's stored weights.
template <typename ForwardOp>
Value lowerForward(OpBuilder &b, ForwardOp op, const Csr &c,
                   BlockCache &cache) {
  Location loc = op.getLoc();
  Epilogue ep = reluOf(op.getResult(), cache.dom);
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
              storeVec(pb, pl, ep.apply(pb, pl, c, acc, blk, row), yb, blk,
                       row);
            });
      });
  return kernelResult(b, loc, op, yb, x.batch, ep, c, cache);
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
  Epilogue ep = reluGradOf(b, loc, op.getResult(), c, cache);
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
                    storeVec(pb, pl, ep.apply(pb, pl, c, acc, blk, i), dxb, blk,
                             i);
                  });
            });
    return kernelResult(b, loc, op, dxb, dy.batch, ep, c, cache);
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
    if (ep.op)
      forLoop(pb, pl, cIdx(pb, pl, 0), cIdx(pb, pl, c.cols),
              [&](OpBuilder &fb, Location fl, Value i) {
                Value d = loadVec(fb, fl, c, dxb, blk, i);
                storeVec(fb, fl, ep.apply(fb, fl, c, d, blk, i), dxb, blk, i);
              });
  });
  return kernelResult(b, loc, op, dxb, dy.batch, ep, c, cache);
}

/// Entries of a row whose SDDMM sums share one reduction tree.
constexpr int64_t kGroup = 4;

/// Lanes of the partial sums an SDDMM product is folded to (at most W).
int64_t foldLanes(const Csr &c) { return std::min<int64_t>(16, c.width); }

/// The foldLanes(c)-lane slices of a W-lane vector.
SmallVector<Value> laneSlices(OpBuilder &b, Location loc, const Csr &c,
                              Value v) {
  int64_t lanes = foldLanes(c);
  SmallVector<Value> parts;
  for (int64_t off = 0; off < c.width; off += lanes)
    parts.push_back(vector::ExtractStridedSliceOp::create(
        b, loc, v, ArrayRef<int64_t>{off}, ArrayRef<int64_t>{lanes},
        ArrayRef<int64_t>{1}));
  return parts;
}

/// dy . x folded to foldLanes(c) lanes (`dy` as laneSlices): the product of
/// the first slices, then one fused multiply-add per further slice, so the
/// fold needs no additions of its own.
Value foldedProduct(OpBuilder &b, Location loc, const Csr &c,
                    ArrayRef<Value> dy, Value x) {
  SmallVector<Value> xs = laneSlices(b, loc, c, x);
  Value acc = arith::MulFOp::create(b, loc, dy[0], xs[0]);
  for (size_t i = 1; i < xs.size(); ++i)
    acc = vector::FMAOp::create(b, loc, dy[i], xs[i], acc);
  return acc;
}

/// The horizontal sums of the kGroup = 4 folded products `p`
/// (foldedProduct, 16 lanes), as a vector<4>, in one fixed order: within
/// each quad of lanes (a 128-bit lane of the registers for f32) two vectors
/// are interleaved and added, twice, which leaves the quad's sums of the
/// four vectors side by side; then the quads are added. Shuffles that stay
/// within a quad cost the least.
Value groupSums(OpBuilder &b, Location loc, const Csr &c, ArrayRef<Value> p) {
  static_assert(kGroup == 4, "the tree below sums four vectors");
  assert(p.size() == kGroup && foldLanes(c) == 16 && "16-lane partial sums");
  constexpr int64_t kQuads = 4;
  // x and y shuffled by `pattern` in every quad (0-3: x's lanes, 4-7: y's)
  // and by `other`, then added.
  auto pairSum = [&](Value x, Value y, ArrayRef<int64_t> pattern,
                     ArrayRef<int64_t> other) {
    auto shuffle = [&](ArrayRef<int64_t> in) {
      SmallVector<int64_t> mask;
      for (int64_t q = 0; q < kQuads; ++q)
        for (int64_t i : in)
          mask.push_back(i < 4 ? q * 4 + i : 4 * kQuads + q * 4 + i - 4);
      return vector::ShuffleOp::create(b, loc, x, y, mask);
    };
    return arith::AddFOp::create(b, loc, shuffle(pattern), shuffle(other))
        .getResult();
  };
  // Per quad: [a0 + a2, b0 + b2, a1 + a3, b1 + b3], then [a, b, c, d].
  Value ab = pairSum(p[0], p[1], {0, 4, 1, 5}, {2, 6, 3, 7});
  Value cd = pairSum(p[2], p[3], {0, 4, 1, 5}, {2, 6, 3, 7});
  Value q = pairSum(ab, cd, {0, 1, 4, 5}, {2, 3, 6, 7});
  for (int64_t n = 2 * kGroup; n >= kGroup; n /= 2) {
    auto half = [&](int64_t off) {
      return vector::ExtractStridedSliceOp::create(
          b, loc, q, ArrayRef<int64_t>{off}, ArrayRef<int64_t>{n},
          ArrayRef<int64_t>{1});
    };
    q = arith::AddFOp::create(b, loc, half(0), half(n));
  }
  return q;
}

/// The bias gradient that the weight gradient `op` of `dy` computes as it
/// reads dy: a used reduce_batch of dy into [rows] whose users all come
/// after `op`.
ReduceBatchOp biasOf(Operation *op, Value dy, const Csr &c,
                     DominanceInfo &dom) {
  auto type = RankedTensorType::get({c.rows}, c.elt);
  for (Operation *u : dy.getUsers()) {
    auto r = dyn_cast<ReduceBatchOp>(u);
    if (r && r.getType() == type && !r->use_empty() &&
        llvm::all_of(r->getUsers(), [&](Operation *ru) {
          return dom.properlyDominates(op, ru);
        }))
      return r;
  }
  return {};
}

/// dW(k) = sum over blocks of dy(:, o) . x(:, crd k): block by block (one
/// block of x stays in cache), rows in parallel, one horizontal sum per
/// stored entry and block (kGroup entries share a reduction tree); the
/// first block stores, the others add. The
/// result is built in the caller's gradient buffer where it only goes there
/// (else a fresh one; never a zero-filled constant of nnz elements) and
/// reassembled with the weight's pattern. A reduce_batch of dy (the bias
/// gradient) is summed in the same loop: per row and block, the horizontal
/// sum of the dy tile it loads anyway (padding lanes masked).
template <typename GradWeightOp>
Value lowerGradWeight(OpBuilder &b, GradWeightOp op, const Csr &c,
                      BlockCache &cache) {
  Location loc = op.getLoc();
  Blocked dy = cache.get(b, loc, op.getGrad(), c);
  Value xb = cache.get(b, loc, op.getInput(), c).blocks;
  Value nb = tensor::DimOp::create(b, loc, dy.blocks, 0);
  Value dym = buffer(b, loc, dy.blocks), xm = buffer(b, loc, xb);
  CsrBuffers w(b, loc, c);
  RankedTensorType vt = tensorOf(c.vals);
  Value dw = resultBuffer(b, loc, op.getResult(),
                          MemRefType::get(vt.getShape(), c.elt), {});
  ReduceBatchOp bias = biasOf(op, op.getGrad(), c, cache.dom);
  Value db = bias ? resultBuffer(b, loc, bias.getResult(),
                                 MemRefType::get({c.rows}, c.elt), {})
                  : Value();
  // An empty batch still defines the gradients: zero.
  Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, nb,
                                     cIdx(b, loc, 0));
  scf::IfOp::create(b, loc, none, [&](OpBuilder &ib, Location il) {
    Value zero =
        arith::ConstantOp::create(ib, il, c.elt, ib.getFloatAttr(c.elt, 0.0));
    for (Value mem : {dw, db})
      if (mem)
        linalg::FillOp::create(ib, il, zero, mem);
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
              if (db)
                storeOrAdd(
                    pb, pl, first,
                    sumLanes(pb, pl, liveLanes(pb, pl, c, dyv, dy.batch, blk)),
                    db, row);
              SmallVector<Value> dys = laneSlices(pb, pl, c, dyv);
              auto product = [&](OpBuilder &kb, Location kl, Value k) {
                Value xv = loadVec(kb, kl, c, xm, blk, w.column(kb, kl, k));
                return foldedProduct(kb, kl, c, dys, xv);
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
                    storeOrAdd(kb, kl, first, s, dw, w.at(row, k));
                    scf::YieldOp::create(kb, kl);
                  });
              forLoop(
                  pb, pl, mid, hi, [&](OpBuilder &kb, Location kl, Value k) {
                    Value s = w.masked(
                        kb, kl, sumLanes(kb, kl, product(kb, kl, k)), row, k);
                    storeOrAdd(kb, kl, first, s, dw, w.at(row, k));
                  });
            });
      });
  if (bias && !bias->use_empty())
    bias.getResult().replaceAllUsesWith(asTensor(b, loc, db));
  if (c.isDense())
    return asTensor(b, loc, dw);
  return sparse_tensor::AssembleOp::create(
      b, loc, op.getType(), ValueRange{c.pos, c.crd}, asTensor(b, loc, dw));
}

/// Bias gradient db(f) = sum over samples of dy(b, f), of a dy that has
/// blocks, where no weight gradient of dy sums it: column tiles in
/// parallel; a column's blocks are added lane by lane (padding lanes
/// masked), then one horizontal sum (a fixed order).
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
                Value v =
                    liveLanes(kb, kl, c, loadVec(kb, kl, c, dym, blk, col),
                              dy.batch, blk);
                return arith::AddFOp::create(kb, kl, acc, v).getResult();
              });
          memref::StoreOp::create(cb, cl, sumLanes(cb, cl, sum), out,
                                  ValueRange{col});
        });
      });
  return asTensor(b, loc, out);
}

/// The blocks of the input of a toBlocksOp (made by an earlier pass): the
/// cached ones, or a conversion.
FailureOr<Value> lowerToBlocks(OpBuilder &b, linalg::GenericOp g,
                               BlockCache &cache) {
  int64_t width = g->getAttrOfType<IntegerAttr>(kToBlocks).getInt();
  Value x;
  g.getRegion().walk([&](tensor::ExtractOp e) { x = e.getTensor(); });
  auto t = tensorOf(x);
  Type elt = t.getElementType();
  Csr c{Value(),         Value(), Value(), 0,
        t.getDimSize(1), width,   elt,     VectorType::get({width}, elt)};
  return cache.get(b, g.getLoc(), x, c).blocks;
}

/// Lowers `op` if it is one of the kernels handled here.
FailureOr<Value> lowerOp(OpBuilder &b, Operation *op, BlockCache &cache) {
  if (auto g = dyn_cast<linalg::GenericOp>(op))
    return lowerToBlocks(b, g, cache);
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
  auto [blocks, batch] = blocksOf(g.getResult(0));
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
              MaskedLinearGradWeightOp>(op) ||
          (isa<linalg::GenericOp>(op) && op->hasAttr(kToBlocks)))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    DominanceInfo dom(getOperation());
    BlockCache cache(dom);
    for (Operation *op : ops) {
      // Skips ops fused into an earlier kernel (a bias gradient), now dead.
      if (op->use_empty())
        continue;
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
