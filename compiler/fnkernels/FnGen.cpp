//===- FnGen.cpp - MLIR generation of free-standing kernels ---------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Builds `func.func @sparsec_fn_<prefix>_<name>` for every checked `fn`,
// directly on linalg/tensor/sparse_tensor (there is nothing to train, so the
// sdl dialect is skipped). The function takes memrefs (fnKernelMemrefs): a
// sparse parameter's arrays are wrapped with `bufferization.to_tensor
// restrict` and `sparse_tensor.assemble` (zero copy in codegen mode), every
// operation is a `linalg.generic` the sparsifier compiles, a dense result is
// `materialize_in_destination` into the caller's buffer and a sparse result
// is `sparse_tensor.disassemble`d into the caller's arrays; the function
// then returns the number of stored entries (rows of @coo(1)). Unary operations
// on sparse operands use `sparse_tensor.unary` with only a `present` region, so
// implicit zeros do not take part (docs/sparse-ops.md).
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnKernels.h"
#include "fnkernels/FnMath.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/SourceMgr.h"

#include <limits>

using namespace mlir;
using namespace sparsec;
using sparsec::ast::ElemType;
using sparsec::ast::FnDecl;
using sparsec::ast::FnDim;
using sparsec::ast::FnExpr;
using sparsec::ast::FnFormat;
using sparsec::ast::FnOp;
using sparsec::ast::FnParam;
using sparsec::ast::FnStmt;
using sparsec::ast::FnType;
using Type = mlir::Type;

namespace {

/// The sparse_tensor encoding of a type (64-bit positions/coordinates).
std::string encodingText(const FnType &t) {
  switch (t.format) {
  case FnFormat::BSR: {
    std::string r = std::to_string(t.blockRows),
                c = std::to_string(t.blockCols);
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i floordiv " + r +
           " : dense, j floordiv " + c + " : compressed, i mod " + r +
           " : dense, j mod " + c + " : dense) }>";
  }
  case FnFormat::CSR:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : dense, j : "
           "compressed) }>";
  case FnFormat::CSC:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (j : dense, i : "
           "compressed) }>";
  case FnFormat::COO:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : "
           "compressed(nonunique), j : singleton(soa)) }>";
  case FnFormat::RowCOO:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : compressed, j : "
           "dense) }>";
  case FnFormat::Dense:
    break;
  }
  return "";
}

class FnGen {
public:
  FnGen(MLIRContext &ctx, const llvm::SourceMgr &sm, ModuleOp module)
      : ctx(ctx), sm(sm), b(&ctx), module(module) {}

  LogicalResult gen(const FnDecl &fn, StringRef symbol);

private:
  Location loc(llvm::SMLoc l);
  Type elemType(ElemType e) {
    return e == ElemType::F64 ? Type(b.getF64Type()) : Type(b.getF32Type());
  }
  RankedTensorType tensorType(const FnType &t);
  SmallVector<Value> dynSizes(const FnType &t, Location l);
  Value empty(const FnType &t, Location l);
  Value zeros(const FnType &t, Location l);
  Value constant(Type elem, double v, Location l) {
    return arith::ConstantOp::create(b, l, b.getFloatAttr(elem, v));
  }
  /// A parallel generic over `out`'s shape applying `body` to the elements
  /// of `ins` (identity maps unless `inMaps` is given).
  Value elementwise(const FnType &t, ValueRange ins, Value out, Location l,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> body,
                    ArrayRef<AffineMap> inMaps = {});
  /// `f` on the stored values of `x` (a `present`-only sparse_tensor.unary
  /// on sparse operands), elementwise on dense ones.
  Value mapValues(const FnExpr &e, Value x,
                  function_ref<Value(OpBuilder &, Location, Value)> f);
  Value genMatMul(const FnExpr &e, const FnExpr &lhs, const FnExpr &rhs,
                  Value init, double alpha);
  enum class Reduction { Sum, Max, Min };
  /// Reduces `a` (of type `argType`) over dimension `dim` (-1: all) into a
  /// dense `resultType`; max/min over stored values only.
  Value reduce(Reduction kind, const FnType &argType, Value a, int64_t dim,
               const FnType &resultType, Location l);
  /// `f(x, v)` for each stored value of matrix `x` (every value if dense),
  /// `v` the dense vector along the dimension that is not `dim`; the result
  /// has x's type `t` and pattern.
  Value alongRows(const FnType &t, Value x, Value v, int64_t dim, Location l,
                  function_ref<Value(OpBuilder &, Location, Value, Value)> f);
  Value genSoftmax(const FnExpr &e);
  // The operations of gradient kernels (FnGrad.cpp).
  Value genSparseMask(const FnExpr &e);
  Value genSddmm(const FnExpr &e);
  Value genExpand(const FnExpr &e);
  /// A region of `op` with `n` arguments of type `elem` yielding `f(args)`.
  void yieldRegion(Region &r, unsigned n, Type elem, Location l,
                   function_ref<Value(OpBuilder &, Location, ValueRange)> f);
  Value genExpr(const FnExpr &e);

  MLIRContext &ctx;
  const llvm::SourceMgr &sm;
  OpBuilder b;
  ModuleOp module;
  llvm::StringMap<Value> scope;
  llvm::StringMap<Value> symbols; // symbolic dimension -> index value
};

Location FnGen::loc(llvm::SMLoc l) {
  unsigned buf = l.isValid() ? sm.FindBufferContainingLoc(l) : 0;
  if (!buf)
    return UnknownLoc::get(&ctx);
  auto [line, col] = sm.getLineAndColumn(l, buf);
  return FileLineColLoc::get(
      &ctx, sm.getMemoryBuffer(buf)->getBufferIdentifier(), line, col);
}

RankedTensorType FnGen::tensorType(const FnType &t) {
  SmallVector<int64_t> shape;
  for (const FnDim &d : t.shape)
    shape.push_back(d.isSymbolic() ? ShapedType::kDynamic : d.value);
  Attribute enc;
  if (t.isSparse())
    enc = parseAttribute(encodingText(t), &ctx);
  return RankedTensorType::get(shape, elemType(t.elem), enc);
}

SmallVector<Value> FnGen::dynSizes(const FnType &t, Location l) {
  SmallVector<Value> sizes;
  for (const FnDim &d : t.shape)
    if (d.isSymbolic())
      sizes.push_back(symbols.lookup(d.symbol));
  return sizes;
}

Value FnGen::empty(const FnType &t, Location l) {
  return tensor::EmptyOp::create(b, l, tensorType(t), dynSizes(t, l));
}

Value FnGen::zeros(const FnType &t, Location l) {
  Value zero = constant(elemType(t.elem), 0.0, l);
  return linalg::FillOp::create(b, l, zero, empty(t, l)).getResult(0);
}

Value FnGen::elementwise(
    const FnType &t, ValueRange ins, Value out, Location l,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body,
    ArrayRef<AffineMap> inMaps) {
  unsigned rank = t.getRank();
  AffineMap id = b.getMultiDimIdentityMap(rank);
  SmallVector<AffineMap> maps(inMaps.begin(), inMaps.end());
  if (maps.empty())
    maps.assign(ins.size(), id);
  maps.push_back(id);
  SmallVector<utils::IteratorType> iters(rank, utils::IteratorType::parallel);
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{out.getType()}, ins, ValueRange{out}, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb, nl, body(nb, nl, args));
      });
  return g.getResult(0);
}

Value FnGen::mapValues(const FnExpr &e, Value x,
                       function_ref<Value(OpBuilder &, Location, Value)> f) {
  Location l = loc(e.loc);
  Type elem = elemType(e.type.elem);
  if (!e.type.isSparse())
    return elementwise(e.type, x, empty(e.type, l), l,
                       [&](OpBuilder &nb, Location nl, ValueRange args) {
                         return f(nb, nl, args[0]);
                       });
  return elementwise(
      e.type, x, empty(e.type, l), l,
      [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
        auto un = sparse_tensor::UnaryOp::create(nb, nl, elem, args[0]);
        OpBuilder::InsertionGuard guard(nb);
        Block *present =
            nb.createBlock(&un.getPresentRegion(), {}, {elem}, {nl});
        nb.setInsertionPointToStart(present);
        sparse_tensor::YieldOp::create(nb, nl,
                                       f(nb, nl, present->getArgument(0)));
        // No `absent` region: implicit zeros stay implicit zeros.
        return un.getResult();
      });
}

Value FnGen::genMatMul(const FnExpr &e, const FnExpr &lhs, const FnExpr &rhs,
                       Value init, double alpha) {
  Location l = loc(e.loc);
  Value a = genExpr(lhs), x = genExpr(rhs);
  bool vec = rhs.type.getRank() == 1;
  AffineExpr i, j, k;
  SmallVector<AffineMap> maps;
  SmallVector<utils::IteratorType> iters;
  if (vec) {
    bindDims(&ctx, i, k);
    maps = {AffineMap::get(2, 0, {i, k}, &ctx), AffineMap::get(2, 0, {k}, &ctx),
            AffineMap::get(2, 0, {i}, &ctx)};
    iters = {utils::IteratorType::parallel, utils::IteratorType::reduction};
  } else {
    bindDims(&ctx, i, j, k);
    maps = {AffineMap::get(3, 0, {i, k}, &ctx),
            AffineMap::get(3, 0, {k, j}, &ctx),
            AffineMap::get(3, 0, {i, j}, &ctx)};
    iters = {utils::IteratorType::parallel, utils::IteratorType::parallel,
             utils::IteratorType::reduction};
  }
  Type elem = elemType(e.type.elem);
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{init.getType()}, ValueRange{a, x}, ValueRange{init}, maps,
      iters, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value m = arith::MulFOp::create(nb, nl, args[0], args[1]);
        if (alpha != 1.0)
          m = arith::MulFOp::create(
              nb, nl, m,
              arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, alpha)));
        Value sum = arith::AddFOp::create(nb, nl, args[2], m);
        linalg::YieldOp::create(nb, nl, sum);
      });
  return g.getResult(0);
}

Value FnGen::reduce(Reduction kind, const FnType &argType, Value a, int64_t dim,
                    const FnType &resultType, Location l) {
  unsigned rank = argType.getRank();
  SmallVector<AffineExpr> outDims;
  SmallVector<utils::IteratorType> iters;
  for (unsigned d = 0; d < rank; ++d) {
    bool reduced = dim < 0 || int64_t(d) == dim;
    iters.push_back(reduced ? utils::IteratorType::reduction
                            : utils::IteratorType::parallel);
    if (!reduced)
      outDims.push_back(b.getAffineDimExpr(d));
  }
  SmallVector<AffineMap> maps = {b.getMultiDimIdentityMap(rank),
                                 AffineMap::get(rank, 0, outDims, &ctx)};
  Type elem = elemType(resultType.elem);
  // The identity: what a row without stored values gets.
  double inf = std::numeric_limits<double>::infinity();
  double identity = kind == Reduction::Sum   ? 0.0
                    : kind == Reduction::Max ? -inf
                                             : inf;
  Value init = linalg::FillOp::create(b, l, constant(elem, identity, l),
                                      empty(resultType, l))
                   .getResult(0);
  bool sparse = argType.isSparse();
  auto combine = [kind](OpBuilder &nb, Location nl, Value x, Value y) -> Value {
    if (kind == Reduction::Sum)
      return arith::AddFOp::create(nb, nl, x, y);
    if (kind == Reduction::Max)
      return arith::MaximumFOp::create(nb, nl, x, y);
    return arith::MinimumFOp::create(nb, nl, x, y);
  };
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{init.getType()}, ValueRange{a}, ValueRange{init}, maps,
      iters, [&](OpBuilder &nb, Location nl, ValueRange args) {
        if (!sparse || kind == Reduction::Sum) {
          // Implicit zeros add nothing to a sum: the sparsifier skips them.
          linalg::YieldOp::create(nb, nl, combine(nb, nl, args[1], args[0]));
          return;
        }
        // max/min over stored values only (sparse_tensor.reduce skips the
        // implicit zeros, which a plain maximumf would have to visit).
        auto red = sparse_tensor::ReduceOp::create(
            nb, nl, args[1], args[0],
            arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, identity)));
        {
          OpBuilder::InsertionGuard guard(nb);
          Block *body =
              nb.createBlock(&red.getRegion(), {}, {elem, elem}, {nl, nl});
          sparse_tensor::YieldOp::create(
              nb, nl,
              combine(nb, nl, body->getArgument(0), body->getArgument(1)));
        }
        linalg::YieldOp::create(nb, nl, red.getResult());
      });
  return g.getResult(0);
}

Value FnGen::alongRows(
    const FnType &t, Value x, Value v, int64_t dim, Location l,
    function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
  AffineExpr i, j;
  bindDims(&ctx, i, j);
  AffineMap id = AffineMap::get(2, 0, {i, j}, &ctx);
  AffineMap kept = AffineMap::get(2, 0, {dim == 1 ? i : j}, &ctx);
  Type elem = elemType(t.elem);
  bool sparse = t.isSparse();
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{tensorType(t)}, ValueRange{x, v}, ValueRange{empty(t, l)},
      {id, kept, id},
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        if (!sparse) {
          linalg::YieldOp::create(nb, nl, f(nb, nl, args[0], args[1]));
          return;
        }
        // Only where x stores a value: the overlap with the (dense) v.
        auto bin =
            sparse_tensor::BinaryOp::create(nb, nl, elem, args[0], args[1]);
        {
          OpBuilder::InsertionGuard guard(nb);
          Block *both = nb.createBlock(&bin.getOverlapRegion(), {},
                                       {elem, elem}, {nl, nl});
          sparse_tensor::YieldOp::create(
              nb, nl, f(nb, nl, both->getArgument(0), both->getArgument(1)));
        }
        linalg::YieldOp::create(nb, nl, bin.getResult());
      });
  return g.getResult(0);
}

Value FnGen::genSoftmax(const FnExpr &e) {
  Location l = loc(e.loc);
  const FnExpr &arg = *e.args[0];
  Value a = genExpr(arg);
  FnType rows; // the dense vector along the kept dimension
  rows.elem = e.type.elem;
  rows.shape = {e.type.shape[1 - e.dim]};
  // Stable: subtract each row's max before exp, as torch.sparse.softmax.
  Value m = reduce(Reduction::Max, arg.type, a, e.dim, rows, l);
  Value ex = alongRows(e.type, a, m, e.dim, l,
                       [](OpBuilder &nb, Location nl, Value x, Value mx) {
                         return Value(math::ExpOp::create(
                             nb, nl, arith::SubFOp::create(nb, nl, x, mx)));
                       });
  Value sum = reduce(Reduction::Sum, e.type, ex, e.dim, rows, l);
  if (e.name == "softmax")
    return alongRows(e.type, ex, sum, e.dim, l,
                     [](OpBuilder &nb, Location nl, Value x, Value s) {
                       return Value(arith::DivFOp::create(nb, nl, x, s));
                     });
  // log_softmax: x - (max + log(sum)).
  Value shift =
      elementwise(rows, {m, sum}, empty(rows, l), l,
                  [](OpBuilder &nb, Location nl, ValueRange v) -> Value {
                    return arith::AddFOp::create(
                        nb, nl, v[0], math::LogOp::create(nb, nl, v[1]));
                  });
  return alongRows(e.type, a, shift, e.dim, l,
                   [](OpBuilder &nb, Location nl, Value x, Value c) {
                     return Value(arith::SubFOp::create(nb, nl, x, c));
                   });
}

void FnGen::yieldRegion(
    Region &r, unsigned n, Type elem, Location l,
    function_ref<Value(OpBuilder &, Location, ValueRange)> f) {
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Type> types(n, elem);
  SmallVector<Location> locs(n, l);
  Block *blk = b.createBlock(&r, {}, types, locs);
  sparse_tensor::YieldOp::create(b, l, f(b, l, blk->getArguments()));
}

Value FnGen::genSparseMask(const FnExpr &e) {
  // like's pattern: c's value where c has one, 0 where only like has.
  Location l = loc(e.loc);
  Value like = genExpr(*e.args[0]), c = genExpr(*e.args[1]);
  Type elem = elemType(e.type.elem);
  return elementwise(
      e.type, {like, c}, empty(e.type, l), l,
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        auto bin = sparse_tensor::BinaryOp::create(nb, nl, elem, a[0], a[1]);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(bin);
        yieldRegion(bin.getOverlapRegion(), 2, elem, nl,
                    [](OpBuilder &, Location, ValueRange v) { return v[1]; });
        yieldRegion(bin.getLeftRegion(), 1, elem, nl,
                    [&](OpBuilder &rb, Location rl, ValueRange) {
                      return constant(elem, 0.0, rl);
                    });
        // No right region: c's entries outside like's pattern are dropped.
        return bin.getResult();
      });
}

Value FnGen::genSddmm(const FnExpr &e) {
  // dim 0: out(i, k) = sum_j u(i, j) v(k, j) (u(i) v(k) for vectors);
  // dim 1: out(k, j) = sum_i u(i, k) v(i, j) (out(k) = sum_i u(i, k) v(i)).
  Location l = loc(e.loc);
  const FnExpr &u = *e.args[1], &v = *e.args[2];
  Value uv = genExpr(u), vv = genExpr(v);
  bool vec = e.dim == 0 ? u.type.getRank() == 1 : v.type.getRank() == 1;
  AffineExpr p, q, r;
  bindDims(&ctx, p, q, r);
  auto map = [&](unsigned n, ArrayRef<AffineExpr> exprs) {
    return AffineMap::get(n, 0, exprs, &ctx);
  };
  using IT = utils::IteratorType;
  SmallVector<AffineMap> maps;
  SmallVector<IT> iters;
  if (e.dim == 0 && vec) {
    maps = {map(2, {p}), map(2, {q}), map(2, {p, q})};
    iters = {IT::parallel, IT::parallel};
  } else if (e.dim == 0) {
    maps = {map(3, {p, r}), map(3, {q, r}), map(3, {p, q})};
    iters = {IT::parallel, IT::parallel, IT::reduction};
  } else if (vec) {
    maps = {map(2, {q, p}), map(2, {q}), map(2, {p})};
    iters = {IT::parallel, IT::reduction};
  } else {
    maps = {map(3, {r, p}), map(3, {r, q}), map(3, {p, q})};
    iters = {IT::parallel, IT::parallel, IT::reduction};
  }
  Type elem = elemType(e.type.elem);
  bool sampled = e.type.isSparse();
  Value init;
  if (sampled) // like's pattern with zeros, updated in place
    init = mapValues(e, genExpr(*e.args[0]),
                     [&](OpBuilder &nb, Location nl, Value) {
                       return constant(elem, 0.0, nl);
                     });
  else
    init = zeros(e.type, l);
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{init.getType()}, ValueRange{uv, vv}, ValueRange{init},
      maps, iters, [&](OpBuilder &nb, Location nl, ValueRange a) {
        if (!sampled) {
          Value m = arith::MulFOp::create(nb, nl, a[0], a[1]);
          linalg::YieldOp::create(
              nb, nl, Value(arith::AddFOp::create(nb, nl, a[2], m)));
          return;
        }
        // Only where the output (like's pattern) has entries: the SDDMM of
        // the CSR weight gradient (LowerToLinalg.cpp, outerProduct).
        auto un = sparse_tensor::UnaryOp::create(nb, nl, elem, a[2]);
        Value zero = constant(elem, 0.0, nl);
        auto red = sparse_tensor::ReduceOp::create(nb, nl, elem, a[2],
                                                   un.getResult(), zero);
        {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(red);
          Value x = a[0], y = a[1];
          yieldRegion(un.getPresentRegion(), 1, elem, nl,
                      [&](OpBuilder &rb, Location rl, ValueRange) -> Value {
                        return arith::MulFOp::create(rb, rl, x, y);
                      });
          yieldRegion(red.getRegion(), 2, elem, nl,
                      [](OpBuilder &rb, Location rl, ValueRange s) -> Value {
                        return arith::AddFOp::create(rb, rl, s[0], s[1]);
                      });
        }
        linalg::YieldOp::create(nb, nl, red.getResult());
      });
  return g.getResult(0);
}

Value FnGen::genExpand(const FnExpr &e) {
  // g broadcast over `dim` (all dims: -1) at like's entries; 0 without g.
  Location l = loc(e.loc);
  Value like = genExpr(*e.args[0]);
  Type elem = elemType(e.type.elem);
  if (e.args.size() == 1)
    return e.type.isSparse()
               ? mapValues(e, like,
                           [&](OpBuilder &nb, Location nl, Value) {
                             return constant(elem, 0.0, nl);
                           })
               : zeros(e.type, l);
  Value g = genExpr(*e.args[1]);
  unsigned rank = e.type.getRank();
  SmallVector<AffineExpr> kept;
  for (unsigned d = 0; d < rank; ++d)
    if (e.dim >= 0 && int64_t(d) != e.dim)
      kept.push_back(b.getAffineDimExpr(d));
  SmallVector<AffineMap> maps = {b.getMultiDimIdentityMap(rank),
                                 AffineMap::get(rank, 0, kept, &ctx)};
  bool sparse = e.type.isSparse();
  return elementwise(
      e.type, {like, g}, empty(e.type, l), l,
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        if (!sparse)
          return a[1];
        auto bin = sparse_tensor::BinaryOp::create(nb, nl, elem, a[0], a[1]);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(bin);
        yieldRegion(bin.getOverlapRegion(), 2, elem, nl,
                    [](OpBuilder &, Location, ValueRange v) { return v[1]; });
        return bin.getResult();
      },
      maps);
}

Value FnGen::genExpr(const FnExpr &e) {
  Location l = loc(e.loc);
  Type elem = elemType(e.type.elem);
  switch (e.op) {
  case FnOp::Ident:
    return scope.lookup(e.name);
  case FnOp::Add:
  case FnOp::Sub:
  case FnOp::Mul: {
    if (e.args.size() == 1) { // scaled by a number
      double c = e.scale;
      return mapValues(
          e, genExpr(*e.args[0]),
          [&](OpBuilder &nb, Location nl, Value v) -> Value {
            return arith::MulFOp::create(
                nb, nl, v,
                arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, c)));
          });
    }
    Value x = genExpr(*e.args[0]), y = genExpr(*e.args[1]);
    // A sparse result is the union (+, -) or intersection (*) of the
    // operands' patterns; a dense result starts from zeros, so entries that
    // the sparsifier skips (absent in a sparse factor of '*') are zero.
    Value out = e.type.isSparse() ? empty(e.type, l) : zeros(e.type, l);
    FnOp op = e.op;
    return elementwise(e.type, {x, y}, out, l,
                       [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
                         if (op == FnOp::Add)
                           return arith::AddFOp::create(nb, nl, a[0], a[1]);
                         if (op == FnOp::Sub)
                           return arith::SubFOp::create(nb, nl, a[0], a[1]);
                         return arith::MulFOp::create(nb, nl, a[0], a[1]);
                       });
  }
  case FnOp::Div: {
    double c = e.scale;
    return mapValues(
        e, genExpr(*e.args[0]),
        [&](OpBuilder &nb, Location nl, Value v) -> Value {
          return arith::DivFOp::create(
              nb, nl, v,
              arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, c)));
        });
  }
  case FnOp::MatMul:
  case FnOp::SparseMM:
    // A sparse result (SpGEMM, smm, hspmm) holds the entries the product
    // reaches: the sparsifier's expanded access pattern per row.
    return genMatMul(e, *e.args[0], *e.args[1],
                     e.type.isSparse() ? empty(e.type, l) : zeros(e.type, l),
                     1.0);
  case FnOp::AddMM: {
    if (e.type.isSparse()) { // sspaddmm: the union of the bias and product
      Value c = genExpr(*e.args[0]);
      Value prod =
          genMatMul(e, *e.args[1], *e.args[2], empty(e.type, l), e.alpha);
      double beta = e.beta;
      return elementwise(
          e.type, {c, prod}, empty(e.type, l), l,
          [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
            Value scaled = arith::MulFOp::create(
                nb, nl, a[0],
                arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, beta)));
            return arith::AddFOp::create(nb, nl, scaled, a[1]);
          });
    }
    Value init;
    if (e.beta == 0.0) {
      init = zeros(e.type, l); // PyTorch ignores the bias (even NaN) then
    } else {
      double beta = e.beta;
      init = elementwise(e.type, genExpr(*e.args[0]), empty(e.type, l), l,
                         [&](OpBuilder &nb, Location nl, ValueRange a) {
                           if (beta == 1.0)
                             return a[0];
                           return Value(arith::MulFOp::create(
                               nb, nl, a[0],
                               arith::ConstantOp::create(
                                   nb, nl, nb.getFloatAttr(elem, beta))));
                         });
    }
    return genMatMul(e, *e.args[1], *e.args[2], init, e.alpha);
  }
  case FnOp::Map: {
    return mapValues(e, genExpr(*e.args[0]),
                     [&](OpBuilder &nb, Location nl, Value v) {
                       return fnMapValue(nb, nl, e.name, v);
                     });
  }
  case FnOp::Pow: {
    double p = e.scale;
    return mapValues(
        e, genExpr(*e.args[0]),
        [&](OpBuilder &nb, Location nl, Value v) -> Value {
          return math::PowFOp::create(
              nb, nl, v,
              arith::ConstantOp::create(nb, nl, nb.getFloatAttr(elem, p)));
        });
  }
  case FnOp::Sum:
  case FnOp::Reduce: {
    const FnExpr &arg = *e.args[0];
    Reduction kind = e.op == FnOp::Sum ? Reduction::Sum
                     : e.name == "max" ? Reduction::Max
                                       : Reduction::Min;
    return reduce(kind, arg.type, genExpr(arg), e.dim, e.type, l);
  }
  case FnOp::Softmax:
    return genSoftmax(e);
  case FnOp::Transpose: {
    Value x = genExpr(*e.args[0]);
    AffineExpr i, j;
    bindDims(&ctx, i, j);
    AffineMap swap = AffineMap::get(2, 0, {j, i}, &ctx);
    return elementwise(e.type, x, empty(e.type, l), l,
                       [](OpBuilder &, Location, ValueRange a) { return a[0]; },
                       {swap});
  }
  case FnOp::ToDense: {
    const FnExpr &arg = *e.args[0];
    if (!arg.type.isSparse())
      return genExpr(arg);
    // to_dense(transpose(A)): one generic reading A through the swapped map
    // (no sparse intermediate, which would need a sort for @coo).
    bool transposed = arg.op == FnOp::Transpose;
    Value x = genExpr(transposed ? *arg.args[0] : arg);
    SmallVector<AffineMap> maps;
    if (transposed) {
      AffineExpr i, j;
      bindDims(&ctx, i, j);
      maps.push_back(AffineMap::get(2, 0, {j, i}, &ctx));
    }
    return elementwise(
        e.type, x, zeros(e.type, l), l,
        [](OpBuilder &, Location, ValueRange a) { return a[0]; }, maps);
  }
  case FnOp::SparseMask:
    return genSparseMask(e);
  case FnOp::Sddmm:
    return genSddmm(e);
  case FnOp::Expand:
    return genExpand(e);
  case FnOp::Deriv: {
    double p = e.scale;
    return mapValues(e, genExpr(*e.args[0]),
                     [&](OpBuilder &nb, Location nl, Value v) {
                       return fnDerivValue(nb, nl, e.name, p, v);
                     });
  }
  case FnOp::Invalid:
  case FnOp::Number:
    break;
  }
  llvm_unreachable("expression not checked by Sema");
}

LogicalResult FnGen::gen(const FnDecl &fn, StringRef symbol) {
  std::vector<FnMemref> arrays = fnKernelMemrefs(fn);
  SmallVector<Type> argTypes;
  for (const FnMemref &m : arrays) {
    Type elem = m.isIndex ? Type(b.getIndexType())
                          : elemType(m.param >= 0 ? fn.params[m.param].type.elem
                                                  : fn.resultType.elem);
    argTypes.push_back(MemRefType::get(m.shape, elem));
  }
  bool sparseResult = fn.resultType.isSparse();
  SmallVector<Type> resultTypes;
  if (sparseResult)
    resultTypes.push_back(b.getIndexType());
  Location fl = loc(fn.loc);
  b.setInsertionPointToEnd(module.getBody());
  auto f = func::FuncOp::create(b, fl, symbol,
                                b.getFunctionType(argTypes, resultTypes));
  f->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  Block *entry = f.addEntryBlock();
  b.setInsertionPointToStart(entry);
  scope.clear();
  symbols.clear();

  // Symbolic dimensions: the size of the first memref dimension using them.
  for (size_t a = 0; a < arrays.size(); ++a) {
    const FnMemref &m = arrays[a];
    if (m.param < 0)
      continue;
    const FnType &t = fn.params[m.param].type;
    if (t.isSparse())
      continue;
    for (size_t d = 0; d < t.shape.size(); ++d)
      if (t.shape[d].isSymbolic() && !symbols.count(t.shape[d].symbol))
        symbols[t.shape[d].symbol] = memref::DimOp::create(
            b, fl, entry->getArgument(a), static_cast<int64_t>(d));
  }

  // Parameters: dense memrefs as tensors, sparse arrays assembled.
  auto toTensor = [&](unsigned a, bool writable) -> Value {
    auto mt = cast<MemRefType>(argTypes[a]);
    auto tt = RankedTensorType::get(mt.getShape(), mt.getElementType());
    return bufferization::ToTensorOp::create(
        b, fl, tt, entry->getArgument(a), b.getUnitAttr(),
        writable ? b.getUnitAttr() : UnitAttr());
  };
  unsigned a = 0;
  for (size_t p = 0; p < fn.params.size(); ++p) {
    const FnParam &param = fn.params[p];
    Location pl = loc(param.loc);
    if (!param.type.isSparse()) {
      scope[param.name] = toTensor(a++, /*writable=*/false);
      continue;
    }
    SmallVector<Value> levels;
    while (a + 1 < arrays.size() && arrays[a].param == int(p) &&
           arrays[a].isIndex)
      levels.push_back(toTensor(a++, false));
    Value vals = toTensor(a++, false);
    scope[param.name] = sparse_tensor::AssembleOp::create(
        b, pl, tensorType(param.type), levels, vals);
  }
  for (const FnStmt &s : fn.stmts)
    scope[s.name] = genExpr(*s.value);
  Value result = genExpr(*fn.ret);
  Location rl = loc(fn.retLoc);

  if (!sparseResult) {
    bufferization::MaterializeInDestinationOp::create(
        b, rl, Type(), result, entry->getArgument(a), /*restrict=*/true,
        /*writable=*/true);
    func::ReturnOp::create(b, rl);
    return success();
  }
  // Sparse result: copy the levels and values into the caller's arrays.
  SmallVector<Value> outLevels;
  SmallVector<Type> levelTypes, lenTypes;
  unsigned first = a;
  for (; a + 1 < arrays.size(); ++a) {
    outLevels.push_back(toTensor(a, /*writable=*/true));
    levelTypes.push_back(outLevels.back().getType());
    lenTypes.push_back(b.getIndexType());
  }
  Value outVals = toTensor(a, /*writable=*/true);
  auto dis = sparse_tensor::DisassembleOp::create(
      b, rl, levelTypes, outVals.getType(), lenTypes, b.getIndexType(), result,
      outLevels, outVals);
  for (auto [k, lvl] : llvm::enumerate(dis.getRetLevels()))
    bufferization::MaterializeInDestinationOp::create(
        b, rl, Type(), lvl, entry->getArgument(first + k), true, true);
  bufferization::MaterializeInDestinationOp::create(
      b, rl, Type(), dis.getRetValues(), entry->getArgument(a), true, true);
  // The entries are the used length of the last coordinates array (the
  // values array of @coo(1) holds whole rows).
  func::ReturnOp::create(b, rl, dis.getLvlLens().back());
  return success();
}

} // namespace

std::string sparsec::fnKernelSymbol(StringRef prefix, StringRef fn) {
  return ("sparsec_fn_" + prefix + "_" + fn).str();
}

OwningOpRef<ModuleOp> sparsec::genFnModule(MLIRContext &ctx,
                                           const ast::Module &m,
                                           const llvm::SourceMgr &sm,
                                           StringRef prefix) {
  ctx.loadDialect<arith::ArithDialect, bufferization::BufferizationDialect,
                  func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                  memref::MemRefDialect, sparse_tensor::SparseTensorDialect,
                  tensor::TensorDialect>();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&ctx));
  FnGen gen(ctx, sm, *module);
  for (const std::shared_ptr<FnDecl> &fn : m.fns)
    if (failed(gen.gen(*fn, fnKernelSymbol(prefix, fn->name))))
      return nullptr;
  if (failed(verify(*module)))
    return nullptr;
  return module;
}
