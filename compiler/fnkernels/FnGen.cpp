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

#include "fnkernels/FnGenImpl.h"
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
using sparsec::fngen::FnGen;

namespace {

/// The sparse_tensor encoding of a type (64-bit positions/coordinates).
std::string encodingText(const FnType &t) {
  switch (t.format) {
  case FnFormat::NM:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : dense, j floordiv " +
           std::to_string(t.blockCols) + " : dense, j mod " +
           std::to_string(t.blockCols) + " : structured[" +
           std::to_string(t.blockRows) + ", " + std::to_string(t.blockCols) +
           "]) }>";
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
    if (t.getRank() == 3)
      return "#sparse_tensor.encoding<{ map = (n, i, j) -> (n : "
             "compressed(nonunique), i : singleton(nonunique, soa), j : "
             "singleton(soa)) }>";
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : "
           "compressed(nonunique), j : singleton(soa)) }>";
  case FnFormat::RowCOO:
    return "#sparse_tensor.encoding<{ map = (i, j) -> (i : compressed, j : "
           "dense) }>";
  case FnFormat::Dense:
  case FnFormat::Indices:
    break;
  }
  return "";
}

} // namespace

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
  return matmul(genExpr(lhs), genExpr(rhs), rhs.type.getRank() == 1, init,
                alpha, elemType(e.type.elem), loc(e.loc));
}

Value FnGen::matmul(Value a, Value x, bool vec, Value init, double alpha,
                    Type elem, Location l) {
  AffineExpr i, j, k;
  SmallVector<AffineMap> maps;
  SmallVector<utils::IteratorType> iters;
  if (cast<RankedTensorType>(init.getType()).getRank() == 3) { // bmm
    AffineExpr n;
    bindDims(&ctx, n, i, j, k);
    maps = {AffineMap::get(4, 0, {n, i, k}, &ctx),
            AffineMap::get(4, 0, {n, k, j}, &ctx),
            AffineMap::get(4, 0, {n, i, j}, &ctx)};
    iters = {utils::IteratorType::parallel, utils::IteratorType::parallel,
             utils::IteratorType::parallel, utils::IteratorType::reduction};
  } else if (vec) {
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
  case FnOp::IndexSelect:
    return genIndexSelect(e);
  case FnOp::IndexAdd:
    return genIndexAdd(e);
  case FnOp::NonZero:
    return genNonZero(e);
  case FnOp::Bmm:
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
  case FnOp::Narrow:
    return genNarrow(e);
  case FnOp::Cat:
    return genCat(e);
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
  case FnOp::Pad:
    return genPad(e);
  case FnOp::Ties:
    return genTies(e);
  case FnOp::Ratio:
    return elementwise(
        e.type, {genExpr(*e.args[0]), genExpr(*e.args[1])}, empty(e.type, l), l,
        [](OpBuilder &nb, Location nl, ValueRange v) {
          return Value(arith::DivFOp::create(nb, nl, v[0], v[1]));
        });
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
  bool indices = fn.resultType.format == FnFormat::Indices;
  bool sparseResult = fn.resultType.isCounted();
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
  for (; a + 1 < arrays.size() || (indices && a < arrays.size()); ++a) {
    outLevels.push_back(toTensor(a, /*writable=*/true));
    levelTypes.push_back(outLevels.back().getType());
    lenTypes.push_back(b.getIndexType());
  }
  // nonzero's values are not wanted: a temporary of out_cap values.
  Value outVals =
      indices ? Value(tensor::EmptyOp::create(
                    b, rl,
                    ArrayRef<OpFoldResult>{OpFoldResult(
                        tensor::DimOp::create(b, rl, outLevels.back(), 0))},
                    cast<RankedTensorType>(result.getType()).getElementType()))
              : toTensor(a, /*writable=*/true);
  auto dis = sparse_tensor::DisassembleOp::create(
      b, rl, levelTypes, outVals.getType(), lenTypes, b.getIndexType(), result,
      outLevels, outVals);
  for (auto [k, lvl] : llvm::enumerate(dis.getRetLevels()))
    bufferization::MaterializeInDestinationOp::create(
        b, rl, Type(), lvl, entry->getArgument(first + k), true, true);
  if (indices) {
    func::ReturnOp::create(b, rl, dis.getValLen());
    return success();
  }
  bufferization::MaterializeInDestinationOp::create(
      b, rl, Type(), dis.getRetValues(), entry->getArgument(a), true, true);
  // The entries are the used length of the last coordinates array (the
  // values array of @coo(1) holds whole rows).
  func::ReturnOp::create(b, rl, dis.getLvlLens().back());
  return success();
}

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
