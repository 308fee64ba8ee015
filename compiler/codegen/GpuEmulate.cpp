//===- GpuEmulate.cpp - sparsec-gpu-emulate: CUDA kernels on the host -----===//
//
// Part of sparsec. The pass `sparsec-gpu-emulate` (docs/cuda.md, "The
// emulator"): after sparsec-gpu-kernels, it turns the host code with
// gpu.launch kernels into plain host code that runs the same kernel bodies
// on the CPU, so the CUDA kernels' indexing and arithmetic are tested on
// machines without a GPU (`sparsec --cuda-emulate`):
//
//   gpu.launch    loops over the grid and the block (x, y, z), the body
//                 inlined with the block and thread ids, grid and block
//                 sizes replaced by the loop variables and launch operands;
//                 threads run one after another, so kernels that need
//                 threads to run together (barriers, shuffles, shared or
//                 private memory) are rejected; a thread's own scratch
//                 (memref.alloca of a static shape in the body) is hoisted
//                 out of the loops, one buffer the threads take in turn
//                 (each initialises it before use, as on a GPU)
//   gpu.alloc     memref.alloc       gpu.dealloc   memref.dealloc
//   gpu.memcpy    memref.copy
//
// Atomic adds stay memref.atomic_rmw (correct, if unneeded, on one thread).
//
//===----------------------------------------------------------------------===//

#include "codegen/Gpu.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;

namespace {

/// Replaces `launch` by nested scf.for loops running its body.
LogicalResult emulateLaunch(gpu::LaunchOp launch) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty())
    return launch.emitOpError("is asynchronous; emulate before "
                              "gpu-async-region");
  if (!launch.getWorkgroupAttributions().empty() ||
      !launch.getPrivateAttributions().empty() ||
      launch.getDynamicSharedMemorySize() || launch.hasClusterSize())
    return launch.emitOpError("uses shared/private memory or clusters, "
                              "which the emulator cannot run");
  Region &body = launch.getBody();
  if (!body.hasOneBlock())
    return launch.emitOpError("has a multi-block body, which the emulator "
                              "cannot run");
  WalkResult bad = body.walk([](Operation *op) {
    if (isa<gpu::GPUDialect>(op->getDialect()) && !isa<gpu::TerminatorOp>(op))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (bad.wasInterrupted())
    return launch.emitOpError("uses GPU operations inside the kernel "
                              "(barriers, ids, shuffles), which the emulator "
                              "cannot run");
  OpBuilder b(launch);
  Location loc = launch.getLoc();
  gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
  gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  IRMapping map;
  gpu::KernelDim3 gridArgs = launch.getGridSize();
  gpu::KernelDim3 blockArgs = launch.getBlockSize();
  map.map(gridArgs.x, grid.x);
  map.map(gridArgs.y, grid.y);
  map.map(gridArgs.z, grid.z);
  map.map(blockArgs.x, block.x);
  map.map(blockArgs.y, block.y);
  map.map(blockArgs.z, block.z);
  gpu::KernelDim3 ids[2] = {launch.getBlockIds(), launch.getThreadIds()};
  Value bounds[2][3] = {{grid.z, grid.y, grid.x}, {block.z, block.y, block.x}};
  Value vars[2][3] = {{ids[0].z, ids[0].y, ids[0].x},
                      {ids[1].z, ids[1].y, ids[1].x}};
  // Blocks outside, threads inside; x innermost.
  scf::ForOp outer;
  for (int level = 0; level < 2; ++level)
    for (int d = 0; d < 3; ++d) {
      auto loop = scf::ForOp::create(b, loc, zero, bounds[level][d], one);
      if (!outer)
        outer = loop;
      map.map(vars[level][d], loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
  for (Operation &op : body.front().without_terminator())
    b.clone(op, map);
  launch.erase();
  // Scratch allocated per thread: once, before the loops (an alloca in a
  // loop would grow the host stack with every thread).
  outer.walk([&](memref::AllocaOp a) {
    if (a.getType().hasStaticShape() && a->getNumOperands() == 0)
      a->moveBefore(outer);
  });
  return success();
}

struct GpuEmulatePass
    : public PassWrapper<GpuEmulatePass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GpuEmulatePass)

  StringRef getArgument() const override { return "sparsec-gpu-emulate"; }
  StringRef getDescription() const override {
    return "Run the gpu.launch kernels of host code on the CPU (loops over "
           "grid and block; GPU memory as host memory), for testing";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry
        .insert<arith::ArithDialect, memref::MemRefDialect, scf::SCFDialect>();
  }

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<gpu::LaunchOp, gpu::AllocOp, gpu::DeallocOp, gpu::MemcpyOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      OpBuilder b(op);
      Location loc = op->getLoc();
      if (auto launch = dyn_cast<gpu::LaunchOp>(op)) {
        if (failed(emulateLaunch(launch)))
          return signalPassFailure();
        continue;
      }
      auto async = dyn_cast<gpu::AsyncOpInterface>(op);
      if (async &&
          (async.getAsyncToken() || !async.getAsyncDependencies().empty())) {
        op->emitOpError("is asynchronous; emulate before gpu-async-region");
        return signalPassFailure();
      }
      if (auto a = dyn_cast<gpu::AllocOp>(op)) {
        if (!a.getSymbolOperands().empty()) {
          a.emitOpError("with symbol operands cannot be emulated");
          return signalPassFailure();
        }
        Value m =
            memref::AllocOp::create(b, loc, a.getType(), a.getDynamicSizes());
        a.getMemref().replaceAllUsesWith(m);
      } else if (auto d = dyn_cast<gpu::DeallocOp>(op)) {
        memref::DeallocOp::create(b, loc, d.getMemref());
      } else if (auto c = dyn_cast<gpu::MemcpyOp>(op)) {
        memref::CopyOp::create(b, loc, c.getSrc(), c.getDst());
      }
      op->erase();
    }
  }
};

} // namespace

std::unique_ptr<Pass> sparsec::createGpuEmulatePass() {
  return std::make_unique<GpuEmulatePass>();
}
