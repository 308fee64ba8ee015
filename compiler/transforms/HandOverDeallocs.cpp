//===- HandOverDeallocs.cpp - sparsifier frees -> ownership deallocation --===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Implements `sparsec-hand-over-deallocs`. The sparsifier's codegen frees
// some temporaries it allocates itself: the values/filled/added buffers of
// the expanded access pattern (SpGEMM, sparse results of a product) and the
// buffers of the sorts a COO transpose needs. The ownership-based
// deallocation that sparsec runs afterwards (it frees every other temporary)
// rejects any function holding a `memref.dealloc` ("memory free side-effect
// on MemRef value not supported"). This pass erases those deallocs: of a
// buffer the sparsifier allocated, or one that flowed through its loops and
// insertion functions (the unordered COO a transpose collects before its
// sort). The deallocation pipeline then frees each buffer the function owns
// after its last use, which is where the sparsifier had put them. A dealloc
// of a function argument (never emitted by the sparsifier: the caller owns
// it) is left alone and reported by the deallocation pass.
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SPARSECHANDOVERDEALLOCS
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;

namespace {

struct HandOverDeallocs
    : public mlir::sdl::impl::SparsecHandOverDeallocsBase<HandOverDeallocs> {
  void runOnOperation() override {
    SmallVector<memref::DeallocOp> frees;
    Block &entry = getOperation().getBody().front();
    getOperation().walk([&](memref::DeallocOp d) {
      auto arg = dyn_cast<BlockArgument>(d.getMemref());
      if (!arg || arg.getOwner() != &entry)
        frees.push_back(d);
    });
    for (memref::DeallocOp d : frees)
      d.erase();
  }
};

} // namespace
