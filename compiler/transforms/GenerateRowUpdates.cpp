//===- GenerateRowUpdates.cpp - Fused embedding row updates ---------------===//
//
// Implements `sdl-generate-row-updates`. For every embedding table of a
// model whose optimizer fuses row updates (`sdl.optimizer` with sparse =
// "lazy", no clip_grad_norm, `fused` not false) it generates
//
//   func.func @sparsec_kernel_<Model>_rows_<k>(values, 7 states, row_init,
//       grad, perm, keys, starts, hyper)   (k: index of the sdl.param)
//
// which, in one pass over the sorted gradient entries, sums the gradient
// rows of each id (in batch order) and applies the optimizer's lazy step to
// that row of the table and of its states. The runtime sorts the ids and
// computes the step's scalars (runtime.h: sparsec_row_update_args,
// sparsec_row_hyper); the arithmetic below is the runtime's, operation for
// operation (runtime/src/optim_*.c, sparse form), so the results are
// bit-identical and docs/optimizers.md applies unchanged. Settings the
// runtime tests on the f32 value of a hyperparameter (momentum != 0,
// weight decay != 0) are decided here on the same f32 value. Each segment
// first prefetches, for writing, the table and state rows of the segment
// kPrefetchAhead on (sorted ids: far-apart rows no hardware prefetcher
// predicts).
//
//===----------------------------------------------------------------------===//

#include "transforms/LinalgBuilders.h"
#include "transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace mlir::sdl {
#define GEN_PASS_DEF_SDLGENERATEROWUPDATES
#include "transforms/Passes.h.inc"
} // namespace mlir::sdl

using namespace mlir;
using namespace mlir::sdl;

namespace {

/// Runtime state order (runtime.h, SPARSEC_ROW_STATES).
enum State { Momentum, Sum, SquareAvg, GradAvg, ExpAvg, ExpAvgSq, MaxExpAvgSq };
constexpr unsigned kNumStates = 7;
/// Runtime scalar order (runtime.h, sparsec_row_hyper).
enum Hyper {
  NegLr,
  Mom,
  OneMinusDampening,
  L2,
  Eps,
  Alpha,
  OneMinusAlpha,
  Beta1,
  OneMinusBeta1,
  Beta2,
  OneMinusBeta2,
  NegClr,
  SparseNegStep,
  Decay,
  NumHyper
};

/// What the generated code does, fixed at compile time.
struct Config {
  StringRef kind;
  bool maximize = false, nesterov = false, centered = false, amsgrad = false;
  bool l2 = false;       // (float)weight_decay != 0 (not AdamW)
  bool momentum = false; // (float)momentum != 0 (> 0 for RMSprop)
  bool rowFlags = false; // SGD momentum != 0: per-row "buffer set" flags
  int64_t dim = 0;
  std::optional<int64_t> padding;
};

/// Emits the body for the row `id` of one segment.
class RowUpdateBuilder {
public:
  RowUpdateBuilder(OpBuilder &b, Location loc, const Config &c, ValueRange args)
      : b(b), loc(loc), c(c), values(args[0]),
        states(args.slice(1, kNumStates)), rowInit(args[8]), grad(args[9]),
        perm(args[10]), keys(args[11]), starts(args[12]), hyperBuf(args[13]) {}

  void build() {
    Type f32 = b.getF32Type();
    for (unsigned i = 0; i < NumHyper; ++i)
      hyper.push_back(memref::LoadOp::create(b, loc, hyperBuf, index(i)));
    Value g = memref::AllocaOp::create(b, loc, MemRefType::get({c.dim}, f32));
    Value numSegments = arith::SubIOp::create(
        b, loc, memref::DimOp::create(b, loc, starts, 0), index(1));
    forLoop(index(0), numSegments, [&](Value u) {
      prefetchSegment(u, numSegments);
      Value s0 = loadIndex(starts, u);
      Value s1 = loadIndex(starts, arith::AddIOp::create(b, loc, u, index(1)));
      Value id = loadIndex(keys, s0);
      auto segment = [&] {
        sumRows(g, s0, s1);
        updateRow(g, id);
      };
      if (!c.padding) {
        segment();
        return;
      }
      Value notPad = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, id,
                                           index(*c.padding));
      auto ifOp = scf::IfOp::create(b, loc, notPad, /*withElse=*/false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&ifOp.getThenRegion().front());
      segment();
    });
  }

private:
  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32c(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }

  Value loadIndex(Value buf, Value i) {
    Value v = memref::LoadOp::create(b, loc, buf, i);
    return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), v);
  }

  /// scf.for lo..hi (step 1) with `body(iv)` and no results.
  void forLoop(Value lo, Value hi, function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, loc, lo, hi, index(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    body(loop.getInductionVar());
  }

  /// Prefetches (for writing) the table and state rows of the segment
  /// kPrefetchAhead segments after `u` (clamped to the last one): the ids
  /// are in sorted order, so their rows are far apart in memory.
  void prefetchSegment(Value u, Value numSegments) {
    Value last = arith::SubIOp::create(b, loc, numSegments, index(1));
    Value ahead = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, u, index(builders::kPrefetchAhead)),
        last);
    Value id = loadIndex(keys, loadIndex(starts, ahead));
    Value base = arith::MulIOp::create(b, loc, id, index(c.dim));
    builders::prefetchRun(b, loc, values, base, c.dim, /*forWrite=*/true);
    for (Value state : usedStates())
      builders::prefetchRun(b, loc, state, base, c.dim, /*forWrite=*/true);
  }

  /// The state buffers holding one value per table element.
  SmallVector<Value> usedStates() {
    SmallVector<State> used;
    if (c.kind == "sgd" && c.momentum)
      used = {Momentum};
    else if (c.kind == "adagrad")
      used = {Sum};
    else if (c.kind == "rmsprop") {
      used = {SquareAvg};
      if (c.centered)
        used.push_back(GradAvg);
      if (c.momentum)
        used.push_back(Momentum);
    } else if (c.kind != "sgd" && c.kind != "rowwise_adagrad") {
      used = {ExpAvg, ExpAvgSq};
      if (c.amsgrad)
        used.push_back(MaxExpAvgSq);
    }
    SmallVector<Value> bufs;
    for (State s : used)
      bufs.push_back(states[s]);
    return bufs;
  }

  /// g = grad rows perm[s0], perm[s0 + 1], ... perm[s1 - 1] summed in order.
  void sumRows(Value g, Value s0, Value s1) {
    Value dim = index(c.dim);
    Value first = arith::MulIOp::create(b, loc, loadIndex(perm, s0), dim);
    forLoop(index(0), dim, [&](Value d) {
      Value at = arith::AddIOp::create(b, loc, first, d);
      memref::StoreOp::create(b, loc, memref::LoadOp::create(b, loc, grad, at),
                              g, d);
    });
    Value next = arith::AddIOp::create(b, loc, s0, index(1));
    forLoop(next, s1, [&](Value j) {
      Value row = arith::MulIOp::create(b, loc, loadIndex(perm, j), dim);
      forLoop(index(0), dim, [&](Value d) {
        Value at = arith::AddIOp::create(b, loc, row, d);
        Value sum =
            arith::AddFOp::create(b, loc, memref::LoadOp::create(b, loc, g, d),
                                  memref::LoadOp::create(b, loc, grad, at));
        memref::StoreOp::create(b, loc, sum, g, d);
      });
    });
  }

  // Scalar arithmetic, named as in the runtime's C.
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value sqrt(Value x) { return math::SqrtOp::create(b, loc, x); }
  Value ld(Value buf, Value i) {
    return memref::LoadOp::create(b, loc, buf, i);
  }
  void st(Value v, Value buf, Value i) {
    memref::StoreOp::create(b, loc, v, buf, i);
  }

  /// sparsec__grad: -g when maximizing, plus weight_decay * p (L2).
  Value effectiveGrad(Value g, Value p) {
    if (c.maximize)
      g = arith::NegFOp::create(b, loc, g);
    return c.l2 ? add(g, mul(hyper[L2], p)) : g;
  }

  /// The optimizer's lazy step on row `id` with the summed gradient `g`.
  void updateRow(Value gBuf, Value id) {
    Value base = arith::MulIOp::create(b, loc, id, index(c.dim));
    if (c.kind == "rowwise_adagrad")
      return rowwiseAdagrad(gBuf, id, base);
    Value init;
    if (c.rowFlags) {
      Value flag = ld(rowInit, id);
      Value zero = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
      init =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, flag, zero);
    }
    forLoop(index(0), index(c.dim), [&](Value d) {
      Value at = arith::AddIOp::create(b, loc, base, d);
      Value p = ld(values, at), g = ld(gBuf, d);
      Value np;
      if (c.kind == "sgd")
        np = sgd(p, g, at, init);
      else if (c.kind == "adagrad")
        np = adagrad(p, g, at);
      else if (c.kind == "rmsprop")
        np = rmsprop(p, g, at);
      else
        np = adam(p, g, at);
      st(np, values, at);
    });
    if (c.rowFlags)
      st(arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(1)), rowInit, id);
  }

  /// optim_sgd.c, sparsec__sgd_span.
  Value sgd(Value p, Value grad, Value at, Value init) {
    Value g = effectiveGrad(grad, p);
    if (c.momentum) {
      Value buf = states[Momentum];
      Value old = c.rowFlags ? ld(buf, at) : Value();
      Value damped = mul(hyper[OneMinusDampening], g);
      Value bNew = c.rowFlags
                       ? arith::SelectOp::create(
                             b, loc, init, add(mul(old, hyper[Mom]), damped), g)
                       : g;
      st(bNew, buf, at);
      g = c.nesterov ? add(g, mul(hyper[Mom], bNew)) : bNew;
    }
    return add(p, mul(hyper[NegLr], g));
  }

  /// optim_adagrad.c, sparsec__adagrad_span (sparse form).
  Value adagrad(Value p, Value grad, Value at) {
    Value g = effectiveGrad(grad, p);
    Value sum = add(ld(states[Sum], at), mul(g, g));
    st(sum, states[Sum], at);
    Value std = add(sqrt(sum), hyper[Eps]);
    return add(p, mul(hyper[NegClr], div(g, std)));
  }

  /// optim_adagrad.c, the row-wise branch: one accumulator per row, the
  /// mean of g^2 accumulated in f64.
  void rowwiseAdagrad(Value gBuf, Value id, Value base) {
    Type f64 = b.getF64Type();
    Value zero = arith::ConstantOp::create(b, loc, b.getF64FloatAttr(0.0));
    auto acc = scf::ForOp::create(b, loc, index(0), index(c.dim), index(1),
                                  ValueRange{zero});
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(acc.getBody());
      Value d = acc.getInductionVar();
      Value at = arith::AddIOp::create(b, loc, base, d);
      Value g = effectiveGrad(ld(gBuf, d), ld(values, at));
      Value g64 = arith::ExtFOp::create(b, loc, f64, g);
      Value s = arith::AddFOp::create(b, loc, acc.getRegionIterArgs()[0],
                                      arith::MulFOp::create(b, loc, g64, g64));
      scf::YieldOp::create(b, loc, s);
    }
    Value mean = arith::DivFOp::create(
        b, loc, acc.getResult(0),
        arith::ConstantOp::create(b, loc, b.getF64FloatAttr(double(c.dim))));
    Value sum = add(ld(states[Sum], id),
                    arith::TruncFOp::create(b, loc, b.getF32Type(), mean));
    st(sum, states[Sum], id);
    Value std = add(sqrt(sum), hyper[Eps]);
    forLoop(index(0), index(c.dim), [&](Value d) {
      Value at = arith::AddIOp::create(b, loc, base, d);
      Value p = ld(values, at);
      Value g = effectiveGrad(ld(gBuf, d), p);
      st(add(p, mul(hyper[NegClr], div(g, std))), values, at);
    });
  }

  /// optim_rmsprop.c, sparsec__rmsprop_span.
  Value rmsprop(Value p, Value grad, Value at) {
    Value g = effectiveGrad(grad, p);
    Value v = add(mul(ld(states[SquareAvg], at), hyper[Alpha]),
                  mul(mul(hyper[OneMinusAlpha], g), g));
    st(v, states[SquareAvg], at);
    Value avg;
    if (c.centered) {
      Value a = add(mul(ld(states[GradAvg], at), hyper[Alpha]),
                    mul(hyper[OneMinusAlpha], g));
      st(a, states[GradAvg], at);
      avg = sqrt(add(v, mul(mul(f32c(-1.0f), a), a)));
    } else {
      avg = sqrt(v);
    }
    avg = add(avg, hyper[Eps]);
    if (!c.momentum)
      return add(p, div(mul(hyper[NegLr], g), avg));
    Value bNew = add(mul(ld(states[Momentum], at), hyper[Mom]), div(g, avg));
    st(bNew, states[Momentum], at);
    return add(p, mul(hyper[NegLr], bNew));
  }

  /// optim_adam.c, sparsec__adam_span (sparse form: SparseAdam).
  Value adam(Value p, Value grad, Value at) {
    Value g = effectiveGrad(grad, p);
    if (c.kind == "adamw")
      p = mul(p, hyper[Decay]);
    Value oldM = ld(states[ExpAvg], at), oldV = ld(states[ExpAvgSq], at);
    Value updM = mul(sub(g, oldM), hyper[OneMinusBeta1]);
    Value updV = mul(sub(mul(g, g), oldV), hyper[OneMinusBeta2]);
    st(add(oldM, updM), states[ExpAvg], at);
    st(add(oldV, updV), states[ExpAvgSq], at);
    Value m = add(updM, oldM), v = add(updV, oldV);
    if (c.amsgrad) {
      // if (!(vmax >= v)) vmax = v;  v = vmax  (NaN propagates)
      Value vmax = ld(states[MaxExpAvgSq], at);
      Value keep =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, vmax, v);
      v = arith::SelectOp::create(b, loc, keep, vmax, v);
      st(v, states[MaxExpAvgSq], at);
    }
    return add(p, mul(div(m, add(sqrt(v), hyper[Eps])), hyper[SparseNegStep]));
  }

  OpBuilder &b;
  Location loc;
  const Config &c;
  Value values;
  ValueRange states;
  Value rowInit, grad, perm, keys, starts, hyperBuf;
  SmallVector<Value> hyper;
};

Config configFor(OptimizerOp opt, ParamOp param) {
  Config c;
  c.kind = opt.getKind();
  auto flag = [&](StringRef n) { return opt.getNumber(n).value_or(0) != 0; };
  auto asF32 = [&](StringRef n) {
    return static_cast<float>(opt.getNumber(n).value_or(0));
  };
  c.maximize = flag("maximize");
  c.nesterov = flag("nesterov");
  c.centered = flag("centered");
  c.amsgrad = flag("amsgrad");
  c.l2 = c.kind != "adamw" && asF32("weight_decay") != 0.0f;
  c.momentum = c.kind == "rmsprop" ? asF32("momentum") > 0.0f
                                   : asF32("momentum") != 0.0f;
  c.rowFlags = c.kind == "sgd" && opt.getNumber("momentum").value_or(0) != 0;
  c.dim = param.getTensorType().getDimSize(1);
  if (std::optional<uint64_t> pad = param.getPaddingIdx())
    c.padding = static_cast<int64_t>(*pad);
  return c;
}

struct SdlGenerateRowUpdates
    : mlir::sdl::impl::SdlGenerateRowUpdatesBase<SdlGenerateRowUpdates> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto opts = module.getOps<OptimizerOp>();
    if (opts.empty() || !(*opts.begin()).fusesRowUpdates())
      return;
    OptimizerOp opt = *opts.begin();
    std::string model = module.getSymName().value_or("model").str();
    MLIRContext *ctx = &getContext();
    Type f32 = Float32Type::get(ctx);
    auto vec = [&](Type t) {
      return MemRefType::get({ShapedType::kDynamic}, t);
    };
    Type i32 = IntegerType::get(ctx, 32), i8 = IntegerType::get(ctx, 8);
    SmallVector<Type> args(1 + kNumStates, vec(f32));
    args.append({vec(i8), vec(f32), vec(i32), vec(i32), vec(i32), vec(f32)});
    OpBuilder b(ctx);
    b.setInsertionPointToEnd(module.getBody());
    unsigned k = 0;
    for (ParamOp param : llvm::to_vector(module.getOps<ParamOp>())) {
      unsigned index = k++;
      if (!param.isEmbedding())
        continue;
      Location loc = param.getLoc();
      auto fn = func::FuncOp::create(
          b, loc, "sparsec_kernel_" + model + "_rows_" + std::to_string(index),
          FunctionType::get(ctx, args, {}));
      fn->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
      fn->setAttr("sdl.rows_of", param.getSymNameAttr());
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(fn.addEntryBlock());
      Config c = configFor(opt, param);
      RowUpdateBuilder(b, loc, c, fn.getArguments()).build();
      func::ReturnOp::create(b, loc);
    }
  }
};

} // namespace
