//===- FnAST.cpp - Names and dump of free-standing kernels ----------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The names of kernel formats, types and operations (FnAST.h) and the AST
// dump of `fn` kernels (`sparsec --emit=ast`).
//
//===----------------------------------------------------------------------===//

#include "FnAST.h"

using namespace sparsec;
using namespace sparsec::ast;
using llvm::ArrayRef;
using llvm::StringRef;

StringRef ast::fnFormatName(FnFormat f) {
  switch (f) {
  case FnFormat::Dense:
    return "dense";
  case FnFormat::CSR:
    return "csr";
  case FnFormat::CSC:
    return "csc";
  case FnFormat::COO:
    return "coo";
  case FnFormat::RowCOO:
    return "coo(1)";
  case FnFormat::BSR:
    return "bsr";
  case FnFormat::NM:
    return "nm";
  case FnFormat::Indices:
    return "indices";
  }
  return "?";
}

std::string ast::fnTypeToString(const FnType &t) {
  std::string s = elemTypeName(t.elem).str();
  if (t.shape.empty())
    return s;
  s += "[";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i)
      s += ", ";
    s += t.shape[i].isSymbolic() ? t.shape[i].symbol
                                 : std::to_string(t.shape[i].value);
  }
  s += "]";
  if (t.isSparse())
    s += " @" + fnFormatName(t.format).str();
  if (t.format == FnFormat::BSR || t.format == FnFormat::NM)
    s += "(" + std::to_string(t.blockRows) + ", " +
         std::to_string(t.blockCols) + ")";
  return s;
}

ArrayRef<StringRef> ast::fnMapNames() {
  static const StringRef names[] = {
      "neg",  "abs",   "sqrt", "rsqrt", "exp",  "expm1", "log",   "log1p",
      "log2", "log10", "sin",  "cos",   "tan",  "asin",  "acos",  "atan",
      "sinh", "cosh",  "tanh", "erf",   "ceil", "floor", "round", "trunc"};
  return names;
}

StringRef ast::fnOpName(FnOp op) {
  switch (op) {
  case FnOp::Invalid:
    return "?";
  case FnOp::Ident:
    return "name";
  case FnOp::Number:
    return "number";
  case FnOp::Add:
    return "add";
  case FnOp::Sub:
    return "sub";
  case FnOp::Mul:
    return "mul";
  case FnOp::Div:
    return "div";
  case FnOp::MatMul:
    return "mm";
  case FnOp::AddMM:
    return "addmm";
  case FnOp::SparseMM:
    return "smm";
  case FnOp::Map:
    return "map";
  case FnOp::Pow:
    return "pow";
  case FnOp::Sum:
    return "sum";
  case FnOp::Reduce:
    return "reduce";
  case FnOp::Softmax:
    return "softmax";
  case FnOp::Narrow:
    return "narrow";
  case FnOp::Cat:
    return "cat";
  case FnOp::SparseMask:
    return "sparse_mask";
  case FnOp::Sddmm:
    return "sddmm";
  case FnOp::Expand:
    return "expand";
  case FnOp::Deriv:
    return "deriv";
  case FnOp::Pad:
    return "pad";
  case FnOp::Ties:
    return "ties";
  case FnOp::Ratio:
    return "ratio";
  case FnOp::Transpose:
    return "transpose";
  case FnOp::ToDense:
    return "to_dense";
  case FnOp::IndexAdd:
    return "index_add";
  case FnOp::IndexSelect:
    return "index_select";
  case FnOp::NonZero:
    return "nonzero";
  case FnOp::Bmm:
    return "bmm";
  }
  return "?";
}

std::unique_ptr<FnExpr> ast::cloneExpr(const FnExpr &e) {
  auto c = std::make_unique<FnExpr>();
  c->op = e.op;
  c->loc = e.loc;
  c->name = e.name;
  c->number = e.number;
  for (const std::unique_ptr<FnExpr> &a : e.args)
    c->args.push_back(cloneExpr(*a));
  c->kwargs = e.kwargs;
  c->depth = e.depth;
  c->type = e.type;
  c->scale = e.scale;
  c->dim = e.dim;
  c->start = e.start;
  c->alpha = e.alpha;
  c->beta = e.beta;
  return c;
}

namespace {
void dumpExpr(const FnExpr &e, llvm::raw_ostream &os) {
  switch (e.op) {
  case FnOp::Ident:
    os << e.name;
    return;
  case FnOp::Number:
    os << formatDouble(e.number);
    return;
  default:
    break;
  }
  bool named = e.op == FnOp::Map || e.op == FnOp::Reduce ||
               e.op == FnOp::Softmax || e.op == FnOp::SparseMM ||
               e.op == FnOp::Deriv;
  if (e.op == FnOp::Deriv) // the derivative of `name`
    os << "d_";
  os << (named ? StringRef(e.name) : fnOpName(e.op)) << "(";
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (i)
      os << ", ";
    dumpExpr(*e.args[i], os);
  }
  if (e.op == FnOp::Mul && e.args.size() == 1)
    os << ", scale = " << formatDouble(e.scale);
  if (e.op == FnOp::Div)
    os << ", by = " << formatDouble(e.scale);
  if (e.op == FnOp::Pow)
    os << ", " << formatDouble(e.scale);
  if ((e.op == FnOp::Sum || e.op == FnOp::Reduce || e.op == FnOp::Softmax ||
       e.op == FnOp::Expand) &&
      e.dim >= 0)
    os << ", dim = " << e.dim;
  if (e.op == FnOp::IndexSelect || e.op == FnOp::IndexAdd)
    os << ", dim = " << e.dim;
  if (e.op == FnOp::Narrow || e.op == FnOp::Pad)
    os << ", dim = " << e.dim << ", start = " << e.start;
  if (e.op == FnOp::Ties && e.dim >= 0)
    os << ", dim = " << e.dim;
  if (e.op == FnOp::Cat)
    os << ", dim = " << e.dim;
  if (e.op == FnOp::Sddmm)
    os << (e.dim == 0 ? ", u v^T" : ", u^T v");
  if (e.op == FnOp::Deriv && e.name == "pow")
    os << ", " << formatDouble(e.scale);
  if (e.op == FnOp::AddMM && e.type.isSparse())
    os << ", sparse";
  if (e.op == FnOp::AddMM)
    os << ", beta = " << formatDouble(e.beta)
       << ", alpha = " << formatDouble(e.alpha);
  os << ") : " << fnTypeToString(e.type);
}
} // namespace

void ast::dumpFns(const Module &m, llvm::raw_ostream &os) {
  for (const std::shared_ptr<FnDecl> &fn : m.fns) {
    if (fn->grad) {
      os << "grad";
      for (size_t i = 0; i < fn->gradOf.size(); ++i)
        os << (i ? ", " : "(") << fn->gradOf[i].name;
      os << (fn->gradOf.empty() ? " " : ") ");
    }
    os << "fn " << fn->name << "(";
    for (size_t i = 0; i < fn->params.size(); ++i)
      os << (i ? ", " : "") << fn->params[i].name << " : "
         << fnTypeToString(fn->params[i].type);
    os << ") -> " << fnTypeToString(fn->resultType) << "\n";
    for (const FnStmt &s : fn->stmts) {
      os << "  " << s.name << " = ";
      dumpExpr(*s.value, os);
      os << "\n";
    }
    os << "  return ";
    dumpExpr(*fn->ret, os);
    os << "\n";
  }
}
