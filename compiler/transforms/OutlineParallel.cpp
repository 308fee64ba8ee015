//===- OutlineParallel.cpp - scf.parallel -> runtime thread pool ----------===//
//
// Implements `sparsec-outline-parallel`. Runs on buffers (after
// bufferization, before scf is lowered to the CFG). Every one-dimensional
// `scf.parallel` marked `sdl.parallel` that iterates from 0 with step 1
// becomes
//
//   func.func private @<fn>_par<N>(%ctx: !llvm.ptr, %lo: index, %hi: index)
//       // scf.for %i = %lo to %hi { <the loop body> }, the values it uses
//       // from outside read back from the struct at %ctx
//   ... in the caller: the captured values stored in a stack struct, then
//   func.call @sparsec_parallel_for(@<fn>_par<N>, %ctx, %n)
//
// `sparsec_parallel_for` (runtime/src/parallel.c) splits [0, n) into
// contiguous ranges run by the runtime's threads. Memref descriptors cross
// the struct as their LLVM structs (`unrealized_conversion_cast`, resolved
// by the final conversion to LLVM). Other scf.parallel loops are left alone
// (scf-to-cf makes them sequential).
//
//===----------------------------------------------------------------------===//

#include "transforms/Passes.h"

#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SPARSECOUTLINEPARALLEL
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;

namespace {

constexpr StringLiteral kParallelFor = "sparsec_parallel_for";

bool isConstant(Value v, int64_t c) {
  auto op = v.getDefiningOp<arith::ConstantIndexOp>();
  return op && op.value() == c;
}

/// The LLVM type a captured value travels as (index as i64).
Type slotType(const LLVMTypeConverter &tc, Type t) {
  if (isa<IndexType>(t))
    return IntegerType::get(t.getContext(), 64);
  return tc.convertType(t);
}

/// `v` converted to its slot type, and back.
Value toSlot(OpBuilder &b, Location loc, Value v, Type slot) {
  if (isa<IndexType>(v.getType()))
    return arith::IndexCastOp::create(b, loc, slot, v);
  if (v.getType() == slot)
    return v;
  return UnrealizedConversionCastOp::create(b, loc, slot, v).getResult(0);
}

Value fromSlot(OpBuilder &b, Location loc, Value s, Type t) {
  if (isa<IndexType>(t))
    return arith::IndexCastOp::create(b, loc, t, s);
  if (s.getType() == t)
    return s;
  return UnrealizedConversionCastOp::create(b, loc, t, s).getResult(0);
}

func::FuncOp declareParallelFor(ModuleOp module, FunctionType chunkType) {
  if (auto f = module.lookupSymbol<func::FuncOp>(kParallelFor))
    return f;
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  MLIRContext *ctx = module.getContext();
  auto type = FunctionType::get(
      ctx, {chunkType, LLVM::LLVMPointerType::get(ctx), b.getIndexType()}, {});
  auto f = func::FuncOp::create(b, module.getLoc(), kParallelFor, type);
  f.setPrivate();
  return f;
}

LogicalResult outline(scf::ParallelOp par, func::FuncOp parent,
                      const LLVMTypeConverter &tc, unsigned index) {
  Location loc = par.getLoc();
  MLIRContext *ctx = par.getContext();
  auto module = parent->getParentOfType<ModuleOp>();
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(par.getRegion(), captured);
  SmallVector<Type> slots;
  for (Value v : captured) {
    Type s = slotType(tc, v.getType());
    if (!s)
      return par.emitOpError("cannot pass a value of type ")
             << v.getType() << " to a thread";
    slots.push_back(s);
  }
  auto structT = LLVM::LLVMStructType::getLiteral(ctx, slots);
  auto ptrT = LLVM::LLVMPointerType::get(ctx);
  Type indexT = IndexType::get(ctx);
  auto chunkType = FunctionType::get(ctx, {ptrT, indexT, indexT}, {});

  // The chunk function.
  OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
  std::string name =
      (parent.getSymName() + "_par" + std::to_string(index)).str();
  auto chunk = func::FuncOp::create(mb, loc, name, chunkType);
  chunk.setPrivate();
  Block *entry = chunk.addEntryBlock();
  OpBuilder cb = OpBuilder::atBlockBegin(entry);
  Value all = LLVM::LoadOp::create(cb, loc, structT, entry->getArgument(0));
  IRMapping map;
  for (auto [i, v] : llvm::enumerate(captured)) {
    Value s = LLVM::ExtractValueOp::create(cb, loc, all, i);
    map.map(v, fromSlot(cb, loc, s, v.getType()));
  }
  Block &body = par.getRegion().front();
  scf::ForOp::create(cb, loc, entry->getArgument(1), entry->getArgument(2),
                     arith::ConstantIndexOp::create(cb, loc, 1), ValueRange{},
                     [&](OpBuilder &fb, Location fl, Value iv, ValueRange) {
                       map.map(body.getArgument(0), iv);
                       for (Operation &op : body.without_terminator())
                         fb.clone(op, map);
                       scf::YieldOp::create(fb, fl);
                     });
  func::ReturnOp::create(cb, loc);

  // The call in place of the loop.
  OpBuilder b(par);
  func::FuncOp pfor = declareParallelFor(module, chunkType);
  Value packed = LLVM::UndefOp::create(b, loc, structT);
  for (auto [i, v] : llvm::enumerate(captured))
    packed = LLVM::InsertValueOp::create(b, loc, packed,
                                         toSlot(b, loc, v, slots[i]), i);
  // The slot lives in the entry block: a loop around the call reuses it.
  OpBuilder eb = OpBuilder::atBlockBegin(&parent.getBody().front());
  Value one = LLVM::ConstantOp::create(eb, loc, eb.getI64Type(), 1);
  Value slot = LLVM::AllocaOp::create(eb, loc, ptrT, structT, one);
  LLVM::StoreOp::create(b, loc, packed, slot);
  Value fn = func::ConstantOp::create(b, loc, chunkType,
                                      FlatSymbolRefAttr::get(chunk));
  func::CallOp::create(b, loc, pfor,
                       ValueRange{fn, slot, par.getUpperBound()[0]});
  par.erase();
  return success();
}

struct SparsecOutlineParallel
    : mlir::sdl::impl::SparsecOutlineParallelBase<SparsecOutlineParallel> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    LLVMTypeConverter tc(&getContext());
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    for (func::FuncOp f : funcs) {
      SmallVector<scf::ParallelOp> loops;
      f.walk([&](scf::ParallelOp p) {
        if (p->hasAttr("sdl.parallel") && p.getNumLoops() == 1 &&
            p.getNumResults() == 0 && isConstant(p.getLowerBound()[0], 0) &&
            isConstant(p.getStep()[0], 1))
          loops.push_back(p);
      });
      for (auto [i, p] : llvm::enumerate(loops))
        if (failed(outline(p, f, tc, i)))
          return signalPassFailure();
    }
  }
};

} // namespace
