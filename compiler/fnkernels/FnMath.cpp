//===- FnMath.cpp - Elementwise functions of fn kernels and derivatives ---===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// Implements FnMath.h: arith/math ops for the elementwise functions of `fn`
// kernels and their derivatives (docs/sparse-ops.md, "Gradients").
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace mlir;

namespace {

using MapFn = Value (*)(OpBuilder &, Location, Value);

template <typename OpTy> Value makeMap(OpBuilder &b, Location l, Value v) {
  return OpTy::create(b, l, v);
}

/// The op of an elementwise function of FnOp::Map (ast::fnMapNames()).
MapFn mapFunction(StringRef name) {
  MapFn f = llvm::StringSwitch<MapFn>(name)
                .Case("neg", makeMap<arith::NegFOp>)
                .Case("abs", makeMap<math::AbsFOp>)
                .Case("sqrt", makeMap<math::SqrtOp>)
                .Case("rsqrt", makeMap<math::RsqrtOp>)
                .Case("exp", makeMap<math::ExpOp>)
                .Case("expm1", makeMap<math::ExpM1Op>)
                .Case("log", makeMap<math::LogOp>)
                .Case("log1p", makeMap<math::Log1pOp>)
                .Case("log2", makeMap<math::Log2Op>)
                .Case("log10", makeMap<math::Log10Op>)
                .Case("sin", makeMap<math::SinOp>)
                .Case("cos", makeMap<math::CosOp>)
                .Case("tan", makeMap<math::TanOp>)
                .Case("asin", makeMap<math::AsinOp>)
                .Case("acos", makeMap<math::AcosOp>)
                .Case("atan", makeMap<math::AtanOp>)
                .Case("sinh", makeMap<math::SinhOp>)
                .Case("cosh", makeMap<math::CoshOp>)
                .Case("tanh", makeMap<math::TanhOp>)
                .Case("erf", makeMap<math::ErfOp>)
                .Case("ceil", makeMap<math::CeilOp>)
                .Case("floor", makeMap<math::FloorOp>)
                .Case("round", makeMap<math::RoundEvenOp>) // as torch.round
                .Case("trunc", makeMap<math::TruncOp>)
                .Default(nullptr);
  assert(f && "Sema admits only the names of ast::fnMapNames()");
  return f;
}

/// Builds scalar arithmetic in one element type.
struct Scalar {
  OpBuilder &b;
  Location l;
  Type t;
  Value c(double v) {
    return arith::ConstantOp::create(b, l, b.getFloatAttr(t, v));
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, l, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, l, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, l, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, l, x, y); }
  Value sq(Value x) { return mul(x, x); }
  Value f(StringRef name, Value x) { return mapFunction(name)(b, l, x); }
};

} // namespace

Value sparsec::fnMapValue(OpBuilder &b, Location l, StringRef name, Value x) {
  return mapFunction(name)(b, l, x);
}

Value sparsec::fnDerivValue(OpBuilder &b, Location l, StringRef name, double p,
                            Value x) {
  Scalar s{b, l, x.getType()};
  if (name == "pow") {
    if (p == 0.0)
      return s.c(0.0);
    return s.mul(s.c(p), math::PowFOp::create(b, l, x, s.c(p - 1.0)));
  }
  if (name == "neg")
    return s.c(-1.0);
  if (name == "abs") { // sign(x), 0 at 0 (and NaN for NaN)
    Value pos =
        arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, x, s.c(0.0));
    Value negv =
        arith::CmpFOp::create(b, l, arith::CmpFPredicate::OLT, x, s.c(0.0));
    Value sign = arith::SelectOp::create(
        b, l, pos, s.c(1.0),
        arith::SelectOp::create(b, l, negv, s.c(-1.0), s.mul(x, s.c(0.0))));
    return sign;
  }
  if (name == "sqrt")
    return s.div(s.c(0.5), s.f("sqrt", x));
  if (name == "rsqrt")
    return s.div(s.mul(s.c(-0.5), s.f("rsqrt", x)), x);
  if (name == "exp" || name == "expm1")
    return s.f("exp", x);
  if (name == "log")
    return s.div(s.c(1.0), x);
  if (name == "log1p")
    return s.div(s.c(1.0), s.add(s.c(1.0), x));
  if (name == "log2")
    return s.div(s.c(1.0), s.mul(x, s.c(std::log(2.0))));
  if (name == "log10")
    return s.div(s.c(1.0), s.mul(x, s.c(std::log(10.0))));
  if (name == "sin")
    return s.f("cos", x);
  if (name == "cos")
    return s.f("neg", s.f("sin", x));
  if (name == "tan")
    return s.add(s.c(1.0), s.sq(s.f("tan", x)));
  if (name == "asin")
    return s.f("rsqrt", s.sub(s.c(1.0), s.sq(x)));
  if (name == "acos")
    return s.f("neg", s.f("rsqrt", s.sub(s.c(1.0), s.sq(x))));
  if (name == "atan")
    return s.div(s.c(1.0), s.add(s.c(1.0), s.sq(x)));
  if (name == "sinh")
    return s.f("cosh", x);
  if (name == "cosh")
    return s.f("sinh", x);
  if (name == "tanh")
    return s.sub(s.c(1.0), s.sq(s.f("tanh", x)));
  if (name == "erf")
    return s.mul(s.c(2.0 / std::sqrt(M_PI)), s.f("exp", s.f("neg", s.sq(x))));
  // ceil, floor, round, trunc: piecewise constant.
  assert((name == "ceil" || name == "floor" || name == "round" ||
          name == "trunc") &&
         "a function of ast::fnMapNames()");
  return s.c(0.0);
}
