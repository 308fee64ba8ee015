//===- FnGenOps.cpp - MLIR of fn reductions, softmax, narrow, gradients ---===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The FnGen members (FnGenImpl.h) for reductions over stored values
// (sum/max/min), softmax and log_softmax along a dimension, narrow, and the
// operations that only gradient kernels use (FnGrad.cpp): sparse_mask, the
// sampled product (SDDMM) and the broadcast of an adjoint onto a pattern.
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnGenImpl.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SparseTensor/IR/SparseTensor.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace sparsec;
using sparsec::ast::FnDim;
using sparsec::ast::FnFormat;
using sparsec::fngen::FnGen;

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
  unsigned rank = t.getRank();
  SmallVector<AffineExpr> kept;
  for (unsigned d = 0; d < rank; ++d)
    if (dim >= 0 && int64_t(d) != dim)
      kept.push_back(b.getAffineDimExpr(d));
  SmallVector<AffineMap> maps = {b.getMultiDimIdentityMap(rank),
                                 AffineMap::get(rank, 0, kept, &ctx)};
  Type elem = elemType(t.elem);
  bool sparse = t.isSparse();
  return elementwise(
      t, {x, v}, empty(t, l), l,
      [&](OpBuilder &nb, Location nl, ValueRange a) -> Value {
        if (!sparse)
          return f(nb, nl, a[0], a[1]);
        // Only where x stores a value: the overlap with the (dense) v.
        auto bin = sparse_tensor::BinaryOp::create(nb, nl, elem, a[0], a[1]);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(bin);
        yieldRegion(bin.getOverlapRegion(), 2, elem, nl,
                    [&](OpBuilder &rb, Location rl, ValueRange w) {
                      return f(rb, rl, w[0], w[1]);
                    });
        return bin.getResult();
      },
      maps);
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

Value FnGen::indexArray(int64_t n, Location l,
                        function_ref<Value(OpBuilder &, Location, Value)> f) {
  auto t = RankedTensorType::get({n}, b.getIndexType());
  Value init = tensor::EmptyOp::create(b, l, t, ValueRange{});
  auto g = linalg::GenericOp::create(
      b, l, TypeRange{t}, ValueRange{}, ValueRange{init},
      ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1)},
      ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange) {
        Value i = linalg::IndexOp::create(nb, nl, 0);
        linalg::YieldOp::create(nb, nl, f(nb, nl, i));
      });
  return g.getResult(0);
}

Value FnGen::selection(const FnType &t, int64_t rows, int64_t cols,
                       int64_t rowOff, int64_t colOff, int64_t len,
                       Location l) {
  auto idx = [&](OpBuilder &nb, Location nl, int64_t c) -> Value {
    return arith::ConstantIndexOp::create(nb, nl, c);
  };
  // k + off, and the positions clamp(i - off, 0, len) of a compressed level
  // whose segment i holds the entry with that coordinate.
  auto plus = [&](int64_t off) {
    return [&, off](OpBuilder &nb, Location nl, Value k) -> Value {
      return arith::AddIOp::create(nb, nl, k, idx(nb, nl, off));
    };
  };
  auto clamped = [&](int64_t off) {
    return [&, off](OpBuilder &nb, Location nl, Value i) -> Value {
      Value c = arith::MaxSIOp::create(
          nb, nl, arith::SubIOp::create(nb, nl, i, idx(nb, nl, off)),
          idx(nb, nl, 0));
      return arith::MinSIOp::create(nb, nl, c, idx(nb, nl, len));
    };
  };
  FnType st = t;
  st.shape = {FnDim{rows, ""}, FnDim{cols, ""}};
  SmallVector<Value> levels;
  if (t.format == FnFormat::COO) {
    levels = {
        indexArray(2, l,
                   [&](OpBuilder &nb, Location nl, Value i) {
                     return arith::MulIOp::create(nb, nl, i, idx(nb, nl, len));
                   }),
        indexArray(len, l, plus(rowOff)), indexArray(len, l, plus(colOff))};
  } else if (t.format == FnFormat::CSC) {
    levels = {indexArray(cols + 1, l, clamped(colOff)),
              indexArray(len, l, plus(rowOff))};
  } else {
    levels = {indexArray(rows + 1, l, clamped(rowOff)),
              indexArray(len, l, plus(colOff))};
  }
  return sparse_tensor::AssembleOp::create(b, l, tensorType(st), levels,
                                           ones(len, elemType(t.elem), l));
}

Value FnGen::ones(int64_t n, Type elem, Location l) {
  Value blank = tensor::EmptyOp::create(b, l, RankedTensorType::get({n}, elem),
                                        ValueRange{});
  return linalg::FillOp::create(b, l, constant(elem, 1.0, l), blank)
      .getResult(0);
}

void FnGen::slice(const FnType &t, int64_t dim, int64_t start,
                  SmallVectorImpl<OpFoldResult> &offsets,
                  SmallVectorImpl<OpFoldResult> &sizes,
                  SmallVectorImpl<OpFoldResult> &strides) {
  for (unsigned d = 0; d < t.getRank(); ++d) {
    const FnDim &size = t.shape[d];
    offsets.push_back(b.getIndexAttr(int64_t(d) == dim ? start : 0));
    sizes.push_back(size.isSymbolic()
                        ? OpFoldResult(symbols.lookup(size.symbol))
                        : OpFoldResult(b.getIndexAttr(size.value)));
    strides.push_back(b.getIndexAttr(1));
  }
}

Value FnGen::genNarrow(const FnExpr &e) {
  Location l = loc(e.loc);
  const FnExpr &arg = *e.args[0];
  Value a = genExpr(arg);
  int64_t len = e.type.shape[e.dim].value;
  if (!e.type.isSparse()) { // a tensor.extract_slice
    SmallVector<OpFoldResult> offsets, sizes, strides;
    slice(e.type, e.dim, e.start, offsets, sizes, strides);
    return tensor::ExtractSliceOp::create(b, l, tensorType(e.type), a, offsets,
                                          sizes, strides);
  }
  // Sparse: a product with a 0/1 selection matrix in a's format (SpGEMM;
  // MLIR 22's sparse slices iterate compressed levels wrongly), exact since
  // each entry is one stored value times 1.
  int64_t m = arg.type.shape[0].value, n = arg.type.shape[1].value;
  Type elem = elemType(e.type.elem);
  Value out = empty(e.type, l);
  if (e.dim == 0) // rows [start, start + len): P @ a, P(k, start + k) = 1
    return matmul(selection(e.type, len, m, 0, e.start, len, l), a, false, out,
                  1.0, elem, l);
  // columns: a @ Q, Q(start + k, k) = 1
  return matmul(a, selection(e.type, n, len, e.start, 0, len, l), false, out,
                1.0, elem, l);
}

Value FnGen::genCat(const FnExpr &e) {
  Location l = loc(e.loc);
  SmallVector<Value> parts;
  for (const std::unique_ptr<FnExpr> &arg : e.args)
    parts.push_back(genExpr(*arg));
  if (!e.type.isSparse())
    return tensor::ConcatOp::create(b, l, e.dim, parts);
  // Sparse (tensor.concat of sparse tensors does not lower in MLIR 22): the
  // union of each part moved to its offset by a 0/1 embedding matrix,
  // E @ a for rows, a @ F for columns; the patterns are disjoint, so every
  // entry is one stored value times 1.
  Type elem = elemType(e.type.elem);
  int64_t total = e.type.shape[e.dim].value, offset = 0;
  Value sum;
  for (auto [arg, part] : llvm::zip(e.args, parts)) {
    int64_t size = arg->type.shape[e.dim].value;
    Value moved =
        e.dim == 0
            ? matmul(selection(e.type, total, size, offset, 0, size, l), part,
                     false, empty(e.type, l), 1.0, elem, l)
            : matmul(part, selection(e.type, size, total, 0, offset, size, l),
                     false, empty(e.type, l), 1.0, elem, l);
    offset += size;
    sum = !sum ? moved
               : elementwise(e.type, {sum, moved}, empty(e.type, l), l,
                             [](OpBuilder &nb, Location nl, ValueRange v) {
                               return Value(
                                   arith::AddFOp::create(nb, nl, v[0], v[1]));
                             });
  }
  return sum;
}

Value FnGen::genPad(const FnExpr &e) {
  // g at offset `start` of dimension `dim`: an insert_slice into zeros, or
  // for a sparse g its product with a 0/1 embedding matrix (as cat).
  Location l = loc(e.loc);
  const FnExpr &arg = *e.args[0];
  Value g = genExpr(arg);
  int64_t size = arg.type.shape[e.dim].value;
  if (!e.type.isSparse()) {
    SmallVector<OpFoldResult> offsets, sizes, strides;
    slice(arg.type, e.dim, e.start, offsets, sizes, strides);
    return tensor::InsertSliceOp::create(b, l, g, zeros(e.type, l), offsets,
                                         sizes, strides);
  }
  Type elem = elemType(e.type.elem);
  int64_t total = e.type.shape[e.dim].value;
  if (e.dim == 0)
    return matmul(selection(e.type, total, size, e.start, 0, size, l), g, false,
                  empty(e.type, l), 1.0, elem, l);
  return matmul(g, selection(e.type, size, total, 0, e.start, size, l), false,
                empty(e.type, l), 1.0, elem, l);
}

Value FnGen::genTies(const FnExpr &e) {
  // 1 where like's (stored) value equals m broadcast over `dim`, else 0.
  Location l = loc(e.loc);
  Value like = genExpr(*e.args[0]), m = genExpr(*e.args[1]);
  Type elem = elemType(e.type.elem);
  return alongRows(
      e.type, like, m, e.dim, l,
      [&](OpBuilder &nb, Location nl, Value x, Value y) -> Value {
        Value eq =
            arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OEQ, x, y);
        return arith::SelectOp::create(nb, nl, eq, constant(elem, 1.0, nl),
                                       constant(elem, 0.0, nl));
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
  // dim 1: out(k, j) = sum_i u(i, k) v(i, j) (out(k) = sum_i u(i, k) v(i));
  // rank 3: the same for each batch n (bmm).
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
  if (e.type.getRank() == 3) { // batched (bmm): the same with a batch n
    AffineExpr n = b.getAffineDimExpr(3);
    maps = e.dim == 0
               ? SmallVector<AffineMap>{map(4, {n, p, r}), map(4, {n, q, r}),
                                        map(4, {n, p, q})}
               : SmallVector<AffineMap>{map(4, {n, r, p}), map(4, {n, r, q}),
                                        map(4, {n, p, q})};
    iters = {IT::parallel, IT::parallel, IT::reduction, IT::parallel};
  } else if (e.dim == 0 && vec) {
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
  return alongRows(e.type, like, genExpr(*e.args[1]), e.dim, l,
                   [](OpBuilder &, Location, Value, Value g) { return g; });
}
