//===- BatchBlocks.h - Batch-blocked activations of the kernels -*- C++ -*-===//
//
// The kernels of `sdl-lower-sparse-linear` work on activations [B, F] in a
// batch-blocked layout owned by the compiler, [ceil(B / W), F, W] with W
// lanes (kBlockBits per block row), the last block padded. These are the
// loops they are built from (scf.parallel marked `sdl.parallel`, which
// `sparsec-outline-parallel` puts on the runtime's threads), the layout
// conversions and the choice of the buffer a result is computed in.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TRANSFORMS_BATCHBLOCKS_H
#define SPARSEC_TRANSFORMS_BATCHBLOCKS_H

#include "transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::sdl::blocks {

/// Bits of one batch block row: eight AVX2 registers.
constexpr int64_t kBlockBits = 2048;
/// Alignment in bytes of the block buffers: a block row (kBlockBits / 8 =
/// 256 bytes) then spans four whole cache lines. A row misaligned by the 16
/// bytes of a plain malloc spans five, and each of its four vector loads
/// is split across two lines (the CSR forward product ran 2.4x slower).
constexpr int64_t kBlockAlign = 64;
/// Marks the tensor form of fromBlocks (attribute: the block width).
constexpr StringLiteral kFromBlocks = "sdl.from_blocks";
/// Marks the tensor form of toBlocks (attribute: the block width).
constexpr StringLiteral kToBlocks = "sdl.to_blocks";
/// Columns of one parallel iteration of the layout conversions and the
/// elementwise and reduction loops on blocks.
constexpr int64_t kColumnTile = 64;

/// The weight of one layer, [rows, cols] = [O, I]: a CSR weight's arrays
/// (from its sparse_tensor.assemble) or a dense matrix (every row holds all
/// `cols` columns), the element type and the block width. Loops on blocks
/// that have no weight use only width, elt and vec.
struct Csr {
  Value pos, crd, vals; // tensors; a dense weight has only `vals` ([O, I])
  int64_t rows, cols, width;
  Type elt;
  VectorType vec;
  Value mask = {}; // a dense weight's 0/1 mask [O, I] (masked_linear), or null

  bool isDense() const { return !pos; }
};

using LoopBody = llvm::function_ref<void(OpBuilder &, Location, Value)>;
using TileBody =
    llvm::function_ref<void(OpBuilder &, Location, Value, Value, Value)>;
using BlockFn = llvm::function_ref<Value(OpBuilder &, Location, ValueRange)>;

RankedTensorType tensorOf(Value v);
Value cIdx(OpBuilder &b, Location loc, int64_t v);
/// Read-only buffer of a tensor.
Value buffer(OpBuilder &b, Location loc, Value t);
/// Number of blocks of W lanes holding `batch` rows.
Value numBlocks(OpBuilder &b, Location loc, Value batch, int64_t width);
/// scf.parallel over [0, n) marked for sparsec-outline-parallel.
void parallelFor(OpBuilder &b, Location loc, Value n, LoopBody body);
void forLoop(OpBuilder &b, Location loc, Value lo, Value hi, LoopBody body);
/// The index stored at `i` of the integer buffer `mem`.
Value loadIndex(OpBuilder &b, Location loc, Value mem, Value i);
/// [begin, end) of the stored entries of `row` of a CSR weight with
/// positions `pos` (a buffer).
std::pair<Value, Value> rowRange(OpBuilder &b, Location loc, Value pos,
                                 Value row);
/// lo + (hi - lo) / n * n: the end of the whole steps of n from lo.
Value wholeSteps(OpBuilder &b, Location loc, Value lo, Value hi, int64_t n);
/// Accumulates `step(acc, iv)` over [lo, hi) in a loop-carried value.
Value accumulate(
    OpBuilder &b, Location loc, Value lo, Value hi, Value init,
    llvm::function_ref<Value(OpBuilder &, Location, Value, Value)> step);
Value loadVec(OpBuilder &b, Location loc, const Csr &c, Value mem, Value blk,
              Value row);
void storeVec(OpBuilder &b, Location loc, Value v, Value mem, Value blk,
              Value row);
Value zeroVec(OpBuilder &b, Location loc, const Csr &c);
/// Uninitialised [nb, F, W] buffer, kBlockAlign-aligned.
Value allocBlocks(OpBuilder &b, Location loc, const Csr &c, int64_t f,
                  Value nb);
/// `bufferization.to_tensor restrict writable` of a buffer.
Value asTensor(OpBuilder &b, Location loc, Value mem);
/// Runs body(blk, c0, c1) for every block of [nb, f, W] and column tile
/// [c0, c1) of at most kColumnTile columns, in parallel.
void forTiles(OpBuilder &b, Location loc, Value nb, int64_t f, TileBody body);
/// Rows of block `blk` that hold samples: min(W, batch - blk * W).
Value validLanes(OpBuilder &b, Location loc, Value batch, Value blk,
                 const Csr &c);
/// The lanes of `v`, a tile of block `blk` of a batch of `batch` samples,
/// that hold samples; the padding lanes zero.
Value liveLanes(OpBuilder &b, Location loc, const Csr &c, Value v, Value batch,
                Value blk);
/// The horizontal sum of a vector (any order).
Value sumLanes(OpBuilder &b, Location loc, Value v);
/// Stores `v` (a scalar or a vector) at `at` of `mem` if `first`, else adds
/// it to what is there (the blocks of a sum over blocks).
void storeOrAdd(OpBuilder &b, Location loc, Value first, Value v, Value mem,
                ValueRange at);
/// [B, F] -> [ceil(B / W), F, W], padding lanes zero; tiles in parallel.
Value toBlocks(OpBuilder &b, Location loc, Value x, const Csr &c);
/// [B, F] -> [ceil(B / W), F, W] as a tensor op, marked kToBlocks, for a
/// pass that runs before sdl-lower-sparse-linear: that pass replaces it by
/// the blocks it has for `x` (those of the kernel that computed x), else
/// by toBlocks.
Value toBlocksOp(OpBuilder &b, Location loc, Value x, const Csr &c);
/// [ceil(B / W), F, W] -> [B, F] as a tensor op (type `t`), marked
/// kFromBlocks: removed with its result when nothing uses it, else replaced
/// by storeRows at the end of the pass.
Value fromBlocks(OpBuilder &b, Location loc, Value blocks, Value batch,
                 RankedTensorType t, const Csr &c);
/// The blocks and the batch size B of `v` if it is the result of fromBlocks
/// with blocks of `width` lanes (width 0: any), else null values.
std::pair<Value, Value> blocksOf(Value v, int64_t width = 0);
/// Stores the samples of blocks `blocks` into the [B, F] buffer `dest`;
/// tiles in parallel.
void storeRows(OpBuilder &b, Location loc, Value blocks, Value dest,
               Value batch, const Csr &c);
/// The caller's buffer if the result `v` of a kernel only goes there (a
/// materialize_in_destination into an argument of type `memType`, for a CSR
/// gradient through the disassemble of its values; those copies are
/// erased: the kernel writes there), else a fresh buffer (dims `dyn`).
Value resultBuffer(OpBuilder &b, Location loc, Value v, MemRefType memType,
                   ValueRange dyn);
/// fn applied lane by lane to [nb, F, W] blocks `ins` (the same shape):
/// one vector per block row, tiles in parallel.
Value mapBlocks(OpBuilder &b, Location loc, const Csr &c, ValueRange ins,
                BlockFn fn);

} // namespace mlir::sdl::blocks

#endif // SPARSEC_TRANSFORMS_BATCHBLOCKS_H
