//===- BatchBlocks.cpp - Batch-blocked activations of the linear kernels --===//
//
// The loops and layout conversions shared by the kernels of
// `sdl-lower-sparse-linear` (LowerSparseLinear.cpp): see BatchBlocks.h.
//
//===----------------------------------------------------------------------===//

#include "transforms/BatchBlocks.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using utils::IteratorType;

namespace {

/// The caller's buffer that `v` is only copied into (sdl-finalize-abi's
/// materialize_in_destination into an argument, for a CSR gradient through
/// a disassemble of its values), and those copying ops, or nothing.
struct Destination {
  Value mem;
  SmallVector<Operation *> copies; // users first
};

std::optional<Destination> destinationOf(Value v, Type memType) {
  if (!v.hasOneUse())
    return std::nullopt;
  Destination d;
  Operation *user = *v.getUsers().begin();
  if (auto dis = dyn_cast<sparse_tensor::DisassembleOp>(user)) {
    Value vals = dis.getRetValues();
    for (Value r : dis->getResults())
      if (r != vals && !r.use_empty())
        return std::nullopt;
    if (!vals.hasOneUse())
      return std::nullopt;
    d.copies.push_back(dis);
    user = *vals.getUsers().begin();
  }
  auto mat = dyn_cast<bufferization::MaterializeInDestinationOp>(user);
  if (!mat || !mat.getRestrict() || !mat.getWritable() ||
      !isa<BlockArgument>(mat.getDest()) || mat.getDest().getType() != memType)
    return std::nullopt;
  d.mem = mat.getDest();
  d.copies.insert(d.copies.begin(), mat);
  return d;
}

} // namespace

namespace mlir::sdl::blocks {

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
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

Value loadIndex(OpBuilder &b, Location loc, Value mem, Value i) {
  Value v = memref::LoadOp::create(b, loc, mem, ValueRange{i});
  return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), v);
}

std::pair<Value, Value> rowRange(OpBuilder &b, Location loc, Value pos,
                                 Value row) {
  Value next = arith::AddIOp::create(b, loc, row, cIdx(b, loc, 1));
  return {loadIndex(b, loc, pos, row), loadIndex(b, loc, pos, next)};
}

Value wholeSteps(OpBuilder &b, Location loc, Value lo, Value hi, int64_t n) {
  Value step = cIdx(b, loc, n);
  Value span = arith::SubIOp::create(b, loc, hi, lo);
  return arith::AddIOp::create(
      b, loc, lo,
      arith::MulIOp::create(b, loc, arith::DivUIOp::create(b, loc, span, step),
                            step));
}

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

Value zeroVec(OpBuilder &b, Location loc, const Csr &c) {
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(c.vec, b.getFloatAttr(c.elt, 0.0)));
}

/// Uninitialised [nb, F, W] buffer, kBlockAlign-aligned.
Value allocBlocks(OpBuilder &b, Location loc, const Csr &c, int64_t f,
                  Value nb) {
  auto mt = MemRefType::get({ShapedType::kDynamic, f, c.width}, c.elt);
  return memref::AllocOp::create(b, loc, mt, ValueRange{nb},
                                 b.getI64IntegerAttr(kBlockAlign));
}

Value asTensor(OpBuilder &b, Location loc, Value mem) {
  auto mt = cast<MemRefType>(mem.getType());
  auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
  return bufferization::ToTensorOp::create(b, loc, tt, mem, /*restrict=*/true,
                                           /*writable=*/true);
}

/// Runs body(blk, c0, c1) for every block of [nb, f, W] and column tile
/// [c0, c1) of at most kColumnTile columns, in parallel.
void forTiles(OpBuilder &b, Location loc, Value nb, int64_t f, TileBody body) {
  int64_t tiles = (f + kColumnTile - 1) / kColumnTile;
  Value n = arith::MulIOp::create(b, loc, nb, cIdx(b, loc, tiles));
  parallelFor(b, loc, n, [&](OpBuilder &pb, Location pl, Value i) {
    Value nt = cIdx(pb, pl, tiles);
    Value blk = arith::DivUIOp::create(pb, pl, i, nt);
    Value c0 =
        arith::MulIOp::create(pb, pl, arith::RemUIOp::create(pb, pl, i, nt),
                              cIdx(pb, pl, kColumnTile));
    Value c1 = arith::MinUIOp::create(
        pb, pl, arith::AddIOp::create(pb, pl, c0, cIdx(pb, pl, kColumnTile)),
        cIdx(pb, pl, f));
    body(pb, pl, blk, c0, c1);
  });
}

/// Rows of block `blk` that hold samples: min(W, batch - blk * W).
Value validLanes(OpBuilder &b, Location loc, Value batch, Value blk,
                 const Csr &c) {
  Value first = arith::MulIOp::create(b, loc, blk, cIdx(b, loc, c.width));
  return arith::MinUIOp::create(b, loc,
                                arith::SubIOp::create(b, loc, batch, first),
                                cIdx(b, loc, c.width));
}

Value liveLanes(OpBuilder &b, Location loc, const Csr &c, Value v, Value batch,
                Value blk) {
  auto mt = VectorType::get({c.width}, b.getI1Type());
  Value live = vector::CreateMaskOp::create(
      b, loc, mt, ValueRange{validLanes(b, loc, batch, blk, c)});
  return arith::SelectOp::create(b, loc, live, v, zeroVec(b, loc, c));
}

Value sumLanes(OpBuilder &b, Location loc, Value v) {
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, v,
                                     Value(), arith::FastMathFlags::reassoc);
}

void storeOrAdd(OpBuilder &b, Location loc, Value first, Value v, Value mem,
                ValueRange at) {
  auto vt = dyn_cast<VectorType>(v.getType());
  auto store = [&](OpBuilder &sb, Location sl, Value x) {
    if (vt)
      vector::StoreOp::create(sb, sl, x, mem, at);
    else
      memref::StoreOp::create(sb, sl, x, mem, at);
    scf::YieldOp::create(sb, sl);
  };
  scf::IfOp::create(
      b, loc, first, [&](OpBuilder &tb, Location tl) { store(tb, tl, v); },
      [&](OpBuilder &eb, Location el) {
        Value old = vt ? vector::LoadOp::create(eb, el, vt, mem, at).getResult()
                       : memref::LoadOp::create(eb, el, mem, at).getResult();
        store(eb, el, arith::AddFOp::create(eb, el, old, v));
      });
}

/// Elements per row of the square tiles toBlocks transposes in registers
/// (a 512-bit vector).
static int64_t transposeTile(const Csr &c) {
  return std::min<int64_t>(c.width, 512 / c.elt.getIntOrFloatBitWidth());
}

/// The transpose of the square matrix whose rows are `r` (a power of two of
/// them): one round per power of two h, which swaps the off-diagonal h x h
/// blocks of every 2h x 2h block, two shuffles per pair of rows.
static SmallVector<Value> transposeRows(OpBuilder &b, Location loc,
                                        SmallVector<Value> r) {
  int64_t t = r.size();
  for (int64_t h = 1; h < t; h *= 2) {
    SmallVector<int64_t> top, bottom; // of rows i and i + h (i & h == 0)
    for (int64_t k = 0; k < t; ++k) {
      bool left = (k & h) == 0;
      top.push_back(left ? k : t + k - h);
      bottom.push_back(left ? k + h : t + k);
    }
    for (int64_t i = 0; i < t; ++i) {
      if (i & h)
        continue;
      Value a = r[i], z = r[i + h];
      r[i] = vector::ShuffleOp::create(b, loc, a, z, top);
      r[i + h] = vector::ShuffleOp::create(b, loc, a, z, bottom);
    }
  }
  return r;
}

/// [B, F] -> [ceil(B / W), F, W], padding lanes zero; tiles in parallel.
/// Within a tile, squares of T samples x T columns (T: transposeTile) are
/// loaded as T row vectors, transposed by shuffles and stored as T column
/// vectors; columns past the last whole square are copied one by one.
Value toBlocks(OpBuilder &b, Location loc, Value x, const Csr &c) {
  int64_t f = tensorOf(x).getDimSize(1), t = transposeTile(c);
  Value batch = tensor::DimOp::create(b, loc, x, 0);
  Value nb = numBlocks(b, loc, batch, c.width);
  Value xm = buffer(b, loc, x);
  Value out = allocBlocks(b, loc, c, f, nb);
  forTiles(
      b, loc, nb, f,
      [&](OpBuilder &tb, Location tl, Value blk, Value c0, Value c1) {
        Value base = arith::MulIOp::create(tb, tl, blk, cIdx(tb, tl, c.width));
        Value last = arith::SubIOp::create(tb, tl, batch, cIdx(tb, tl, 1));
        // Sample `lane` of the block, clamped to the batch, and whether it
        // is one (else a padding lane, zero).
        auto sample = [&](OpBuilder &lb, Location ll, Value lane) {
          Value row = arith::AddIOp::create(lb, ll, base, lane);
          return std::make_pair(
              arith::MinUIOp::create(lb, ll, row, last).getResult(),
              arith::CmpIOp::create(lb, ll, arith::CmpIPredicate::ult, row,
                                    batch)
                  .getResult());
        };
        Value squares = arith::MulIOp::create(
            tb, tl,
            arith::DivUIOp::create(
                tb, tl, arith::SubIOp::create(tb, tl, c1, c0), cIdx(tb, tl, t)),
            cIdx(tb, tl, t));
        Value cv = arith::AddIOp::create(tb, tl, c0, squares);
        auto vt = VectorType::get({t}, c.elt);
        Value zv = arith::ConstantOp::create(
            tb, tl, DenseElementsAttr::get(vt, tb.getFloatAttr(c.elt, 0.0)));
        auto square = [&](OpBuilder &sb, Location sl, Value col, Value g) {
          SmallVector<Value> rows;
          for (int64_t i = 0; i < t; ++i) {
            auto [clamped, inside] = sample(
                sb, sl, arith::AddIOp::create(sb, sl, g, cIdx(sb, sl, i)));
            Value v = vector::LoadOp::create(sb, sl, vt, xm,
                                             ValueRange{clamped, col});
            rows.push_back(arith::SelectOp::create(sb, sl, inside, v, zv));
          }
          SmallVector<Value> cols = transposeRows(sb, sl, rows);
          for (int64_t k = 0; k < t; ++k)
            vector::StoreOp::create(
                sb, sl, cols[k], out,
                ValueRange{blk,
                           arith::AddIOp::create(sb, sl, col, cIdx(sb, sl, k)),
                           g});
        };
        auto stepLoop = [&](OpBuilder &lb, Location ll, Value lo, Value hi,
                            LoopBody body) {
          scf::ForOp::create(
              lb, ll, lo, hi, cIdx(lb, ll, t), ValueRange{},
              [&](OpBuilder &ib, Location il, Value iv, ValueRange) {
                body(ib, il, iv);
                scf::YieldOp::create(ib, il);
              });
        };
        stepLoop(tb, tl, c0, cv, [&](OpBuilder &cb, Location cl, Value col) {
          stepLoop(cb, cl, cIdx(cb, cl, 0), cIdx(cb, cl, c.width),
                   [&](OpBuilder &gb, Location gl, Value g) {
                     square(gb, gl, col, g);
                   });
        });
        Value zero = arith::ConstantOp::create(tb, tl, c.elt,
                                               tb.getFloatAttr(c.elt, 0.0));
        forLoop(tb, tl, cv, c1, [&](OpBuilder &cb, Location cl, Value col) {
          forLoop(cb, cl, cIdx(cb, cl, 0), cIdx(cb, cl, c.width),
                  [&](OpBuilder &lb, Location ll, Value lane) {
                    auto [clamped, inside] = sample(lb, ll, lane);
                    Value v = memref::LoadOp::create(lb, ll, xm,
                                                     ValueRange{clamped, col});
                    memref::StoreOp::create(
                        lb, ll,
                        arith::SelectOp::create(lb, ll, inside, v, zero), out,
                        ValueRange{blk, col, lane});
                  });
        });
      });
  return asTensor(b, loc, out);
}

/// A linalg.generic without inputs filling a tensor of type `t` (dynamic
/// dim `dyn`) element by element with body(indices), marked `mark` =
/// width: the tensor forms of the layout conversions.
static Value markedGeneric(
    OpBuilder &b, Location loc, RankedTensorType t, Value dyn, StringRef mark,
    int64_t width,
    llvm::function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  Value empty = tensor::EmptyOp::create(b, loc, t, ValueRange{dyn});
  int64_t rank = t.getRank();
  auto g = linalg::GenericOp::create(
      b, loc, TypeRange{t}, ValueRange{}, ValueRange{empty},
      ArrayRef<AffineMap>{
          AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
      SmallVector<IteratorType>(rank, IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        SmallVector<Value> idx;
        for (int64_t d = 0; d < rank; ++d)
          idx.push_back(linalg::IndexOp::create(nb, nl, d));
        linalg::YieldOp::create(nb, nl, ValueRange{body(nb, nl, idx)});
      });
  g->setAttr(mark, b.getI64IntegerAttr(width));
  return g.getResult(0);
}

Value toBlocksOp(OpBuilder &b, Location loc, Value x, const Csr &c) {
  int64_t f = tensorOf(x).getDimSize(1);
  Value batch = tensor::DimOp::create(b, loc, x, 0);
  auto t = RankedTensorType::get({ShapedType::kDynamic, f, c.width}, c.elt);
  return markedGeneric(
      b, loc, t, numBlocks(b, loc, batch, c.width), kToBlocks, c.width,
      [&](OpBuilder &nb, Location nl, ValueRange idx) -> Value {
        Value row = arith::AddIOp::create(
            nb, nl,
            arith::MulIOp::create(nb, nl, idx[0], cIdx(nb, nl, c.width)),
            idx[2]);
        Value last = arith::SubIOp::create(nb, nl, batch, cIdx(nb, nl, 1));
        Value v = tensor::ExtractOp::create(
            nb, nl, x,
            ValueRange{arith::MinUIOp::create(nb, nl, row, last), idx[1]});
        Value inside = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                             row, batch);
        Value zero = arith::ConstantOp::create(nb, nl, c.elt,
                                               nb.getFloatAttr(c.elt, 0.0));
        return arith::SelectOp::create(nb, nl, inside, v, zero);
      });
}

/// [ceil(B / W), F, W] -> [B, F] as a tensor op (type `t`): removed with
/// its result when nothing uses it, else replaced by storeRows at the end of
/// the pass.
Value fromBlocks(OpBuilder &b, Location loc, Value blocks, Value batch,
                 RankedTensorType t, const Csr &c) {
  return markedGeneric(
      b, loc, t, batch, kFromBlocks, c.width,
      [&](OpBuilder &nb, Location nl, ValueRange idx) -> Value {
        Value w = cIdx(nb, nl, c.width);
        Value blk = arith::DivUIOp::create(nb, nl, idx[0], w);
        Value lane = arith::RemUIOp::create(nb, nl, idx[0], w);
        return tensor::ExtractOp::create(nb, nl, blocks,
                                         ValueRange{blk, idx[1], lane});
      });
}

std::pair<Value, Value> blocksOf(Value v, int64_t width) {
  auto g = v.getDefiningOp<linalg::GenericOp>();
  auto w = g ? g->getAttrOfType<IntegerAttr>(kFromBlocks) : IntegerAttr();
  if (!w || (width && w.getInt() != width))
    return {};
  Value blocks;
  g.getRegion().walk([&](tensor::ExtractOp e) { blocks = e.getTensor(); });
  Value batch =
      g.getDpsInits()[0].getDefiningOp<tensor::EmptyOp>().getDynamicSizes()[0];
  return {blocks, batch};
}

/// Stores the samples of [nb, F, W] blocks `blocks` into the [B, F] buffer
/// `dest`; tiles in parallel.
void storeRows(OpBuilder &b, Location loc, Value blocks, Value dest,
               Value batch, const Csr &c) {
  int64_t f = cast<MemRefType>(dest.getType()).getDimSize(1);
  Value bm = buffer(b, loc, blocks);
  forTiles(b, loc, numBlocks(b, loc, batch, c.width), f,
           [&](OpBuilder &tb, Location tl, Value blk, Value c0, Value c1) {
             Value base =
                 arith::MulIOp::create(tb, tl, blk, cIdx(tb, tl, c.width));
             forLoop(tb, tl, cIdx(tb, tl, 0), validLanes(tb, tl, batch, blk, c),
                     [&](OpBuilder &lb, Location ll, Value lane) {
                       Value row = arith::AddIOp::create(lb, ll, base, lane);
                       forLoop(lb, ll, c0, c1,
                               [&](OpBuilder &cb, Location cl, Value col) {
                                 Value v = memref::LoadOp::create(
                                     cb, cl, bm, ValueRange{blk, col, lane});
                                 memref::StoreOp::create(cb, cl, v, dest,
                                                         ValueRange{row, col});
                               });
                     });
           });
}

/// The caller's buffer if the result `v` of a kernel goes only there, of
/// type `memType` (the copies into it are erased: the kernel writes there),
/// else a fresh buffer (dims `dyn`).
Value resultBuffer(OpBuilder &b, Location loc, Value v, MemRefType memType,
                   ValueRange dyn) {
  std::optional<Destination> d = destinationOf(v, memType);
  if (!d)
    return memref::AllocOp::create(b, loc, memType, dyn);
  for (Operation *op : d->copies)
    op->erase();
  return d->mem;
}

/// fn applied lane by lane to [nb, F, W] blocks `ins` (the same shape):
/// one vector per block row, tiles in parallel.
Value mapBlocks(OpBuilder &b, Location loc, const Csr &c, ValueRange ins,
                BlockFn fn) {
  auto t = tensorOf(ins[0]);
  int64_t f = t.getDimSize(1);
  Value nb = tensor::DimOp::create(b, loc, ins[0], 0);
  SmallVector<Value> mems;
  for (Value in : ins)
    mems.push_back(buffer(b, loc, in));
  Value out = allocBlocks(b, loc, c, f, nb);
  forTiles(b, loc, nb, f,
           [&](OpBuilder &tb, Location tl, Value blk, Value c0, Value c1) {
             forLoop(tb, tl, c0, c1,
                     [&](OpBuilder &cb, Location cl, Value col) {
                       SmallVector<Value> vs;
                       for (Value m : mems)
                         vs.push_back(loadVec(cb, cl, c, m, blk, col));
                       storeVec(cb, cl, fn(cb, cl, vs), out, blk, col);
                     });
           });
  return asTensor(b, loc, out);
}

} // namespace mlir::sdl::blocks
