//===- FnGrad.cpp - Reverse-mode differentiation of `grad fn` kernels -----===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// For a checked `grad fn f(p1, ..., pn) -> R { ... }` this adds, per
// parameter p, the kernel
//
//   f_grad_p(p1, ..., pn, grad_out : R) -> type of p
//
// whose result is the vector-Jacobian product dot(grad_out, df/dp): the
// gradient of sum(grad_out * f(...)) with respect to p. The kernels are
// ordinary `fn` ASTs (typed here, compiled by FnGen like any other), built
// by walking f's expression from the result back to the parameters with
// the rules of docs/sparse-ops.md ("Gradients"). Every adjoint has the type
// of the value it belongs to; the adjoint of a sparse value has its pattern
// (PyTorch's gradient of a sparse tensor): `sparse_mask` restricts a
// contribution to it, and the product rule of `@` is the sampled product
// (SDDMM) that computes only the stored entries.
//
//===----------------------------------------------------------------------===//

#include "Diagnostics.h"
#include "FnAST.h"

#include "llvm/ADT/StringMap.h"

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace {

using ExprPtr = std::unique_ptr<FnExpr>;

ExprPtr clone(const FnExpr &e) { return cloneExpr(e); }

ExprPtr node(FnOp op, SMLoc loc, const FnType &type, ExprPtr a,
             ExprPtr b = nullptr, ExprPtr c = nullptr) {
  auto n = std::make_unique<FnExpr>();
  n->op = op;
  n->loc = loc;
  n->type = type;
  for (ExprPtr *x : {&a, &b, &c})
    if (*x)
      n->args.push_back(std::move(*x));
  return n;
}

FnType denseOf(const FnType &t) {
  FnType d = t;
  d.format = FnFormat::Dense;
  d.blockRows = d.blockCols = 1;
  return d;
}

class Differentiator {
public:
  Differentiator(const FnDecl &fn, DiagEngine &diags) : fn(fn), diags(diags) {
    for (const FnStmt &s : fn.stmts)
      locals[s.name] = s.value.get();
  }

  /// The contributions to each parameter's adjoint of `g`, the adjoint of
  /// `e` (of e's type). False after an error.
  bool backprop(const FnExpr &e, ExprPtr g);

  /// The adjoint of parameter `p`: the sum of its contributions, or zeros.
  ExprPtr adjointOf(const FnParam &p);

private:
  /// `c` (same shape as x) as a value of x's type: masked to x's pattern
  /// when x is sparse, densified when x is dense and c is not.
  ExprPtr conform(ExprPtr c, const FnExpr &x);
  ExprPtr neg(ExprPtr g) {
    FnType t = g->type;
    SMLoc l = g->loc;
    auto n = node(FnOp::Map, l, t, std::move(g));
    n->name = "neg";
    return n;
  }
  ExprPtr scaled(ExprPtr g, double c) {
    FnType t = g->type;
    SMLoc l = g->loc;
    auto n = node(FnOp::Mul, l, t, std::move(g));
    n->scale = c;
    return n;
  }
  /// Elementwise product: sparse only when both are (their intersection).
  ExprPtr times(ExprPtr a, ExprPtr b) {
    FnType t =
        a->type.isSparse() && b->type.isSparse() ? a->type : denseOf(a->type);
    SMLoc l = a->loc;
    return node(FnOp::Mul, l, t, std::move(a), std::move(b));
  }
  ExprPtr transposed(ExprPtr g);
  ExprPtr expand(const FnExpr &like, ExprPtr g, int64_t dim) {
    auto n = node(FnOp::Expand, like.loc, like.type, clone(like), std::move(g));
    n->dim = dim;
    return n;
  }
  /// u v^T-like products at like's entries (Sddmm, `form` in dim).
  ExprPtr sampled(const FnExpr &like, ExprPtr u, ExprPtr v, int64_t form) {
    auto n = node(FnOp::Sddmm, like.loc, like.type, clone(like), std::move(u),
                  std::move(v));
    n->dim = form;
    return n;
  }
  bool backpropMatMul(const FnExpr &a, const FnExpr &x, ExprPtr g);
  bool backpropSoftmax(const FnExpr &e, ExprPtr g);
  bool backpropExtremum(const FnExpr &e, ExprPtr g);
  bool unsupported(const FnExpr &e, StringRef what) {
    diags.error(e.loc, "no gradient of " + Twine(what) + " yet (in 'grad fn " +
                           fn.name + "')");
    return false;
  }

  const FnDecl &fn;
  DiagEngine &diags;
  llvm::StringMap<const FnExpr *> locals;
  llvm::StringMap<std::vector<ExprPtr>> contributions;
};

ExprPtr Differentiator::conform(ExprPtr c, const FnExpr &x) {
  if (!x.type.isSparse()) {
    if (!c->type.isSparse())
      return c;
    SMLoc l = c->loc;
    return node(FnOp::ToDense, l, x.type, std::move(c));
  }
  return node(FnOp::SparseMask, c->loc, x.type, clone(x), std::move(c));
}

ExprPtr Differentiator::transposed(ExprPtr g) {
  FnType t = g->type;
  std::swap(t.shape[0], t.shape[1]);
  if (t.format == FnFormat::CSR)
    t.format = FnFormat::CSC;
  else if (t.format == FnFormat::CSC)
    t.format = FnFormat::CSR;
  SMLoc l = g->loc;
  auto n = node(FnOp::Invalid, l, t, std::move(g));
  n->op = FnOp::Transpose;
  return n;
}

bool Differentiator::backpropMatMul(const FnExpr &a, const FnExpr &x,
                                    ExprPtr g) {
  // d(a @ x): da = g x^T at a's entries, dx = a^T g at x's entries. The
  // sparsifier crashes on a sampled product with a sparse factor and a
  // sparse output (MLIR 22), so a sparse g (the adjoint of SpGEMM, smm,
  // hspmm, sspaddmm) and the other sparse factor of SpGEMM are densified.
  auto densified = [](ExprPtr v) -> ExprPtr {
    if (!v->type.isSparse())
      return v;
    SMLoc l = v->loc;
    return node(FnOp::ToDense, l, denseOf(v->type), std::move(v));
  };
  bool spgemm = a.type.isSparse() && x.type.isSparse();
  g = densified(std::move(g));
  ExprPtr ga = sampled(a, clone(*g), spgemm ? densified(clone(x)) : clone(x),
                       /*form=*/0);
  ExprPtr gx = sampled(x, spgemm ? densified(clone(a)) : clone(a), std::move(g),
                       /*form=*/1);
  return backprop(a, std::move(ga)) && backprop(x, std::move(gx));
}

bool Differentiator::backpropSoftmax(const FnExpr &e, ExprPtr g) {
  // y = softmax(a): da = y * (g - sum_d(g * y)); log_softmax:
  // da = g - exp(y) * sum_d(g), both along e.dim on y's entries.
  const FnExpr &a = *e.args[0];
  FnType rows = denseOf(e.type);
  rows.shape.erase(rows.shape.begin() + e.dim);
  auto sumAlong = [&](ExprPtr v) {
    auto s = node(FnOp::Sum, e.loc, rows, std::move(v));
    s->dim = e.dim;
    return s;
  };
  ExprPtr da;
  if (e.name == "softmax") {
    ExprPtr s = sumAlong(times(clone(*g), clone(e)));
    ExprPtr diff = node(FnOp::Sub, e.loc, e.type, std::move(g),
                        expand(e, std::move(s), e.dim));
    da = times(clone(e), std::move(diff));
  } else {
    auto ey = node(FnOp::Map, e.loc, e.type, clone(e));
    ey->name = "exp";
    ExprPtr s = expand(e, sumAlong(clone(*g)), e.dim);
    da = node(FnOp::Sub, e.loc, e.type, std::move(g),
              times(std::move(ey), std::move(s)));
  }
  return backprop(a, conform(std::move(da), a));
}

bool Differentiator::backpropExtremum(const FnExpr &e, ExprPtr g) {
  // y = max/min(a[, d]): g shared evenly by the stored values equal to y
  // (torch.amax/amin): da = ties * g / sum(ties), along d.
  const FnExpr &a = *e.args[0];
  auto ties = node(FnOp::Ties, e.loc, a.type, clone(a), clone(e));
  ties->dim = e.dim;
  auto count = node(FnOp::Sum, e.loc, e.type, clone(*ties));
  count->dim = e.dim;
  auto share = node(FnOp::Ratio, e.loc, e.type, std::move(g), std::move(count));
  return backprop(a,
                  times(expand(a, std::move(share), e.dim), std::move(ties)));
}

bool Differentiator::backprop(const FnExpr &e, ExprPtr g) {
  switch (e.op) {
  case FnOp::Number:
    return true;
  case FnOp::Ident:
    if (const FnExpr *local = locals.lookup(e.name))
      return backprop(*local, std::move(g));
    contributions[e.name].push_back(std::move(g));
    return true;
  case FnOp::Add:
  case FnOp::Sub:
  case FnOp::Mul: {
    const FnExpr &a = *e.args[0];
    if (e.args.size() == 1) // scaled by a number
      return backprop(a, scaled(std::move(g), e.scale));
    const FnExpr &b = *e.args[1];
    if (e.op == FnOp::Mul) {
      ExprPtr ga = conform(times(clone(*g), clone(b)), a);
      ExprPtr gb = conform(times(std::move(g), clone(a)), b);
      return backprop(a, std::move(ga)) && backprop(b, std::move(gb));
    }
    ExprPtr gb = e.op == FnOp::Sub ? neg(clone(*g)) : clone(*g);
    return backprop(a, conform(std::move(g), a)) &&
           backprop(b, conform(std::move(gb), b));
  }
  case FnOp::Div:
    return backprop(*e.args[0], scaled(std::move(g), 1.0 / e.scale));
  case FnOp::MatMul:
  case FnOp::SparseMM: // also SpGEMM, smm, hspmm: g is sparse then
  case FnOp::Bmm:      // batched: the same rules per batch
    return backpropMatMul(*e.args[0], *e.args[1], std::move(g));
  case FnOp::IndexSelect: { // g's slices added back at their indices
    const FnExpr &a = *e.args[0];
    if (g->type.isSparse()) {
      SMLoc l = g->loc;
      g = node(FnOp::ToDense, l, denseOf(g->type), std::move(g));
    }
    auto add = node(FnOp::IndexAdd, e.loc, denseOf(a.type), std::move(g),
                    clone(*e.args[1]));
    add->dim = e.dim;
    return backprop(a, conform(std::move(add), a));
  }
  case FnOp::NonZero:
    diags.error(e.loc, "nonzero has no gradient: its result is integer "
                       "coordinates (in 'grad fn " +
                           fn.name + "')");
    return false;
  case FnOp::AddMM: { // also sspaddmm (a sparse bias and g)
    const FnExpr &bias = *e.args[0];
    ExprPtr gb = e.beta == 0.0 ? expand(bias, nullptr, -1)
                               : conform(scaled(clone(*g), e.beta), bias);
    return backprop(bias, std::move(gb)) &&
           backpropMatMul(*e.args[1], *e.args[2],
                          scaled(std::move(g), e.alpha));
  }
  case FnOp::Map:
  case FnOp::Pow: {
    const FnExpr &a = *e.args[0];
    auto d = node(FnOp::Deriv, e.loc, a.type, clone(a));
    d->name = e.op == FnOp::Pow ? "pow" : e.name;
    d->scale = e.scale;
    return backprop(a, times(std::move(g), std::move(d)));
  }
  case FnOp::Sum: {
    const FnExpr &a = *e.args[0];
    return backprop(a, expand(a, std::move(g), e.dim));
  }
  case FnOp::Transpose:
    return backprop(*e.args[0], transposed(std::move(g)));
  case FnOp::ToDense: {
    const FnExpr &a = *e.args[0];
    // to_dense(transpose(A)) of any format: back through both at once.
    if (a.type.isSparse() && a.op == FnOp::Transpose)
      return backprop(*a.args[0],
                      conform(transposed(std::move(g)), *a.args[0]));
    // The sampled product of to_dense(a) @ x is only needed at a's entries.
    if (a.type.isSparse() && g->op == FnOp::Sddmm &&
        g->args[0]->op == FnOp::ToDense) {
      g->args[0] = clone(a);
      g->type = a.type;
      return backprop(a, std::move(g));
    }
    return backprop(a, conform(std::move(g), a));
  }
  case FnOp::Softmax:
    return backpropSoftmax(e, std::move(g));
  case FnOp::Cat: { // each part's slice of g (exactly its pattern)
    int64_t offset = 0;
    for (const std::unique_ptr<FnExpr> &a : e.args) {
      auto part = node(FnOp::Narrow, e.loc, a->type, clone(*g));
      part->dim = e.dim;
      part->start = offset;
      offset += a->type.shape[e.dim].value;
      // Masked, although the slice has exactly a's pattern, so that the
      // gradient's capacity bound is a's (FnAbi.cpp, NnzBound).
      if (!backprop(*a, a->type.isSparse() ? conform(std::move(part), *a)
                                           : std::move(part)))
        return false;
    }
    return true;
  }
  case FnOp::Narrow: { // g back at its place in a (0 elsewhere)
    const FnExpr &a = *e.args[0];
    auto pad = node(FnOp::Pad, e.loc, a.type, std::move(g));
    pad->dim = e.dim;
    pad->start = e.start;
    return backprop(a, conform(std::move(pad), a));
  }
  case FnOp::Reduce:
    return backpropExtremum(e, std::move(g));
  case FnOp::SparseMask:
  case FnOp::Sddmm:
  case FnOp::Expand:
  case FnOp::Deriv:
  case FnOp::Pad:
  case FnOp::Ties:
  case FnOp::Ratio:
  case FnOp::IndexAdd:
  case FnOp::Invalid:
    break;
  }
  return unsupported(e, "this operation");
}

ExprPtr Differentiator::adjointOf(const FnParam &p) {
  FnExpr ref;
  ref.op = FnOp::Ident;
  ref.name = p.name;
  ref.loc = p.loc;
  ref.type = p.type;
  auto found = contributions.find(p.name);
  if (found == contributions.end() || found->second.empty())
    return expand(ref, nullptr, -1); // f does not depend on p: zeros
  // Every contribution has p's type (and, sparse, exactly its pattern).
  ExprPtr sum;
  for (ExprPtr &term : found->second) {
    if (!sum) {
      sum = std::move(term);
      continue;
    }
    SMLoc l = sum->loc;
    sum = node(FnOp::Add, l, p.type, std::move(sum), std::move(term));
  }
  return sum;
}

} // namespace

void ast::deriveGradients(Module &m, DiagEngine &diags) {
  llvm::StringMap<bool> names;
  for (const std::shared_ptr<FnDecl> &fn : m.fns)
    names[fn->name] = true;
  std::vector<std::shared_ptr<FnDecl>> added;
  for (const std::shared_ptr<FnDecl> &fnp : m.fns) {
    const FnDecl &fn = *fnp;
    if (!fn.grad)
      continue;
    bool ok = true;
    for (const FnParam &p : fn.params) {
      bool wanted = fn.gradOf.empty() ||
                    llvm::any_of(fn.gradOf, [&](const FnDecl::GradOf &w) {
                      return w.name == p.name;
                    });
      if (p.type.isInteger() && wanted && !fn.gradOf.empty()) {
        diags.error(p.loc, "no gradient of the i64 index '" + p.name +
                               "' (in 'grad fn " + fn.name + "')");
        ok = false;
      }
      if (p.type.format == FnFormat::NM && wanted) {
        diags.error(p.loc, "no gradient of an @nm tensor yet (in 'grad fn " +
                               fn.name + "')");
        ok = false;
      }
      if (p.name == "grad_out") {
        diags.error(p.loc, "parameter name 'grad_out' of 'grad fn " + fn.name +
                               "' is the name of its gradient kernels' "
                               "result gradient");
        ok = false;
      }
    }
    Differentiator d(fn, diags);
    FnExpr seed;
    seed.op = FnOp::Ident;
    seed.name = "grad_out";
    seed.loc = fn.retLoc;
    seed.type = fn.resultType;
    if (!ok || !d.backprop(*fn.ret, clone(seed)))
      continue;
    for (const FnDecl::GradOf &w : fn.gradOf)
      if (llvm::none_of(fn.params,
                        [&](const FnParam &p) { return p.name == w.name; })) {
        diags.error(w.loc, "'" + w.name +
                               "' in 'grad(...)' is not a "
                               "parameter of '" +
                               fn.name + "'");
        ok = false;
      }
    if (!ok)
      continue;
    for (const FnParam &p : fn.params) {
      if (p.type.isInteger()) // indices have no gradient
        continue;
      if (!fn.gradOf.empty() &&
          llvm::none_of(fn.gradOf, [&](const FnDecl::GradOf &w) {
            return w.name == p.name;
          }))
        continue;
      auto g = std::make_shared<FnDecl>();
      g->name = fn.name + "_grad_" + p.name;
      g->loc = fn.loc;
      if (names.count(g->name)) {
        diags.error(fn.gradLoc, "'grad fn " + fn.name + "' makes a kernel '" +
                                    g->name +
                                    "', but a kernel of that name exists");
        break;
      }
      names[g->name] = true;
      for (const FnParam &q : fn.params) {
        FnParam c;
        c.loc = q.loc;
        c.name = q.name;
        c.spec = q.spec;
        c.type = q.type;
        g->params.push_back(std::move(c));
      }
      FnParam out;
      out.loc = fn.retLoc;
      out.name = "grad_out";
      out.type = fn.resultType;
      g->params.push_back(std::move(out));
      for (const FnStmt &s : fn.stmts)
        g->stmts.push_back({s.loc, s.name, clone(*s.value)});
      g->ret = d.adjointOf(p);
      g->retLoc = fn.retLoc;
      g->resultType = p.type;
      g->hasResultSpec = true;
      g->symbols = fn.symbols;
      added.push_back(std::move(g));
    }
  }
  for (std::shared_ptr<FnDecl> &g : added)
    m.fns.push_back(std::move(g));
}
