//===- Sema.cpp - Semantic checks and shape inference ---------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "Sema.h"
#include "Diagnostics.h"
#include "SemaArgs.h"

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"

#include <algorithm>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace {
/// Checks one model. Holds the name scope of the forward block.
class ModelChecker {
public:
  ModelChecker(DiagEngine &diags, Model &m) : diags(diags), m(m) {}
  void check();

private:
  std::string ty(const Type &t) const { return typeToString(t, batch); }

  // Declarations.
  void declareName(StringRef name, SMLoc loc, ValueRef ref);
  void checkInput(InputDecl &in);
  void checkParam(ParamDecl &p);

  // Forward block and expressions.
  void checkForward(ForwardBlock &f);
  void checkExpr(Expr &e);
  void checkIdent(IdentExpr &e);
  void checkCall(CallExpr &c);
  Type checkAdd(SMLoc loc, StringRef op, const Expr &lhs, const Expr &rhs);
  Type checkMatMul(SMLoc loc, StringRef op, const Expr &lhs, const Expr &rhs);
  Type checkConcat(CallExpr &c);
  Type applyLayer(CallExpr &c, const ParamDecl &p, const Expr &arg);
  Type checkValueSize(SMLoc loc, Type t);

  // Loss and output.
  void checkLoss(LossDecl &l);
  void checkOutput();

  DiagEngine &diags;
  Model &m;
  std::string batch = "B";
  /// Inputs, parameters and (after each assignment) forward values.
  llvm::StringMap<ValueRef> names;
};
} // namespace

static bool isBuiltinName(StringRef name) {
  return name == "relu" || name == "add" || name == "matmul" ||
         name == "concat" || name == "flatten" || name == "unflatten";
}

static llvm::APInt toAPInt(int64_t v) { return llvm::APInt(128, v); }

//===----------------------------------------------------------------------===//
// Model
//===----------------------------------------------------------------------===//

void ModelChecker::check() {
  // Declarations in source order, so errors come out in source order.
  struct Decl {
    const char *pos;
    InputDecl *input;
    ParamDecl *param;
  };
  std::vector<Decl> decls;
  for (auto &in : m.inputs)
    decls.push_back({in->loc.getPointer(), in.get(), nullptr});
  for (auto &p : m.params)
    decls.push_back({p->loc.getPointer(), nullptr, p.get()});
  std::sort(decls.begin(), decls.end(),
            [](const Decl &a, const Decl &b) { return a.pos < b.pos; });
  for (const Decl &d : decls) {
    ValueRef ref;
    if (d.input) {
      ref.kind = ValueRef::Kind::Input;
      ref.input = d.input;
      declareName(d.input->name, d.input->loc, ref);
      checkInput(*d.input);
      if (!m.batchSymbol.empty())
        batch = m.batchSymbol;
    } else {
      ref.kind = ValueRef::Kind::Param;
      ref.param = d.param;
      declareName(d.param->name, d.param->loc, ref);
      checkParam(*d.param);
    }
  }
  checkGlobalPruning(m, diags);

  if (m.forward)
    checkForward(*m.forward);
  else
    diags.error(m.loc, "model '" + m.name + "' has no 'forward' block");
  if (m.loss)
    checkLoss(*m.loss);
  else
    diags.error(m.loc, "model '" + m.name + "' has no 'loss'");
  if (m.optimizer)
    resolveOptimizer(*m.optimizer, diags);
  else
    diags.error(m.loc, "model '" + m.name + "' has no 'optimizer'");
  checkOutput();
}

void ModelChecker::declareName(StringRef name, SMLoc loc, ValueRef ref) {
  auto [it, inserted] = names.try_emplace(name, ref);
  if (inserted)
    return;
  diags.error(loc, "redefinition of '" + name + "'");
  const ValueRef &prev = it->second;
  diags.note(prev.kind == ValueRef::Kind::Input ? prev.input->loc
                                                : prev.param->loc,
             "previous definition of '" + name + "' is here");
}

//===----------------------------------------------------------------------===//
// Inputs
//===----------------------------------------------------------------------===//

void ModelChecker::checkInput(InputDecl &in) {
  const TypeSpec &spec = in.spec;
  bool ok = true;
  // The batch dimension: the first, or the second of a sequence-first
  // input [T, B, ...] (masked_lstm with batch_first = false reads those).
  size_t bi = spec.dims.size() >= 3 && !spec.dims[0].isSymbolic &&
                      spec.dims[1].isSymbolic
                  ? 1
                  : 0;
  if (spec.dims.empty() || !spec.dims[bi].isSymbolic) {
    diags.error(spec.dims.empty() ? spec.loc : spec.dims[0].loc,
                "the first dimension of '" + in.name +
                    "' must be the symbolic batch dimension");
    ok = false;
  } else if (m.batchSymbol.empty()) {
    m.batchSymbol = spec.dims[bi].symbol;
  } else if (spec.dims[bi].symbol != m.batchSymbol) {
    diags.error(spec.dims[bi].loc, "'" + in.name + "' uses batch dimension '" +
                                      spec.dims[bi].symbol +
                                      "' but earlier inputs use '" +
                                      m.batchSymbol +
                                      "'; all inputs must use the same batch "
                                      "symbol");
    ok = false;
  }
  llvm::APInt perExample = toAPInt(1);
  for (size_t i = 0, e = spec.dims.size(); i < e; ++i) {
    const DimSpec &d = spec.dims[i];
    if (i == bi)
      continue;
    if (d.isSymbolic) {
      diags.error(d.loc, "dimension '" + d.symbol + "' of '" + in.name +
                             "' is symbolic; only the first (batch) "
                             "dimension may be symbolic");
      ok = false;
    } else if (d.value <= 0) {
      diags.error(d.loc, "dimensions of '" + in.name + "' must be positive");
      ok = false;
    } else if (perExample.ule(toAPInt(kMaxElements))) {
      perExample *= toAPInt(d.value);
    }
  }
  if (spec.encoding.kind != EncodingKind::None) {
    diags.error(spec.encoding.loc,
                "sparse encodings on model inputs are not supported yet");
    ok = false;
  }
  // The generated C ABI passes f32, f64, i32 and i64 buffers only (and no
  // layer or loss takes anything else); refuse the rest here, at the
  // declaration, rather than late in the C ABI emitter (fuzz finding F-1).
  if (spec.elem == ElemType::F16 || spec.elem == ElemType::BF16 ||
      spec.elem == ElemType::I8) {
    diags.error(spec.loc, "'" + in.name + "' has element type " +
                              elemTypeName(spec.elem) +
                              "; model inputs and targets must be f32, f64, "
                              "i32 or i64 (the types of the C ABI)");
    ok = false;
  }
  if (ok && perExample.ugt(toAPInt(kMaxElements))) {
    diags.error(in.loc, "'" + in.name + "' has more than " +
                            Twine(kMaxElements) +
                            " elements per example; that is the limit");
    ok = false;
  }
  if (!ok)
    return;
  std::vector<int64_t> shape;
  for (size_t i = 0, e = spec.dims.size(); i < e; ++i)
    shape.push_back(i == bi ? kBatch : spec.dims[i].value);
  in.type = Type(spec.elem, std::move(shape));
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

void ModelChecker::checkParam(ParamDecl &p) {
  if (isBuiltinName(p.name)) {
    diags.error(p.loc, "'" + p.name +
                           "' is a builtin function and cannot be used as a "
                           "parameter name");
    return;
  }
  resolveParam(p, diags);
}

//===----------------------------------------------------------------------===//
// Forward block
//===----------------------------------------------------------------------===//

void ModelChecker::checkForward(ForwardBlock &f) {
  for (auto &stmt : f.stmts) {
    bool bind = true;
    auto it = names.find(stmt->name);
    if (it != names.end() && it->second.kind == ValueRef::Kind::Input) {
      diags.error(stmt->loc,
                  Twine("cannot assign to ") +
                      (it->second.input->isTarget ? "target '" : "input '") +
                      stmt->name + "'");
      bind = false;
    } else if (it != names.end() && it->second.kind == ValueRef::Kind::Param) {
      diags.error(stmt->loc, "cannot assign to parameter '" + stmt->name + "'");
      bind = false;
    }
    checkExpr(*stmt->value);
    if (!bind)
      continue;
    ValueRef ref;
    ref.kind = ValueRef::Kind::Value;
    ref.value = stmt.get();
    names[stmt->name] = ref;
  }
}

void ModelChecker::checkExpr(Expr &e) {
  if (auto *n = llvm::dyn_cast<NumberExpr>(&e)) {
    diags.error(n->getLoc(), "numbers are not allowed as values in 'forward'");
  } else if (auto *id = llvm::dyn_cast<IdentExpr>(&e)) {
    checkIdent(*id);
  } else if (auto *c = llvm::dyn_cast<CallExpr>(&e)) {
    checkCall(*c);
  } else if (auto *b = llvm::dyn_cast<BinaryExpr>(&e)) {
    checkExpr(*b->lhs);
    checkExpr(*b->rhs);
    if (b->op == BinaryOp::Add)
      b->type = checkAdd(b->getLoc(), "'+'", *b->lhs, *b->rhs);
    else
      b->type = checkMatMul(b->getLoc(), "'@'", *b->lhs, *b->rhs);
  }
}

void ModelChecker::checkIdent(IdentExpr &e) {
  auto it = names.find(e.name);
  if (it == names.end()) {
    diags.error(e.getLoc(), "use of undefined name '" + e.name + "'");
    return;
  }
  const ValueRef &ref = it->second;
  switch (ref.kind) {
  case ValueRef::Kind::Input:
    if (ref.input->isTarget) {
      diags.error(e.getLoc(), "target '" + e.name +
                                  "' cannot be used in 'forward'; targets are "
                                  "only available to the loss");
      return;
    }
    break;
  case ValueRef::Kind::Param:
    if (!ref.param->isResolved)
      return;
    if (ref.param->layer.isAppliedLayer()) {
      diags.error(e.getLoc(), "layer '" + e.name +
                                  "' must be applied to an input, e.g. " +
                                  e.name + "(x)");
      return;
    }
    break;
  case ValueRef::Kind::Value:
  case ValueRef::Kind::None:
    break;
  }
  e.ref = ref;
  e.type = ref.getType();
}

void ModelChecker::checkCall(CallExpr &c) {
  // unflatten(x, d1, ..., dk): [B, d1 * ... * dk] -> [B, d1, ..., dk].
  if (c.callee == "unflatten") {
    if (c.args.size() < 2) {
      diags.error(c.getLoc(), "'unflatten' takes at least 2 arguments, got " +
                                  Twine(c.args.size()));
      return;
    }
    checkExpr(*c.args[0]);
    c.type = checkUnflatten(c, batch, diags);
    c.callKind = CallKind::Unflatten;
    return;
  }
  bool argsValid = true;
  for (auto &arg : c.args) {
    checkExpr(*arg);
    argsValid &= arg->type.isValid();
  }
  CallKind kind = llvm::StringSwitch<CallKind>(c.callee)
                      .Case("relu", CallKind::Relu)
                      .Case("add", CallKind::Add)
                      .Case("matmul", CallKind::MatMul)
                      .Case("concat", CallKind::Concat)
                      .Case("flatten", CallKind::Flatten)
                      .Default(CallKind::Unresolved);
  const ParamDecl *param = nullptr;
  if (kind == CallKind::Unresolved) {
    auto it = names.find(c.callee);
    if (it == names.end()) {
      diags.error(c.getLoc(), "unknown function '" + c.callee + "'");
      return;
    }
    if (it->second.kind != ValueRef::Kind::Param) {
      diags.error(c.getLoc(),
                  "'" + c.callee + "' is not a function or a layer");
      return;
    }
    param = it->second.param;
    if (!param->isResolved)
      return;
    if (!param->layer.isAppliedLayer()) {
      diags.error(c.getLoc(), "tensor parameter '" + c.callee +
                                  "' cannot be applied; use it as a value, "
                                  "e.g. x @ " +
                                  c.callee);
      return;
    }
    kind = CallKind::ApplyLayer;
  }
  c.callKind = kind;
  c.param = param;

  size_t n = c.args.size();
  if (kind == CallKind::Concat) {
    if (n < 2) {
      diags.error(c.getLoc(),
                  "'concat' takes at least 2 arguments, got " + Twine(n));
      return;
    }
    if (argsValid)
      c.type = checkConcat(c);
    return;
  }
  size_t expected = (kind == CallKind::Add || kind == CallKind::MatMul) ? 2 : 1;
  // embedding_bag(ids) or embedding_bag(ids, per_sample_weights).
  if (kind == CallKind::ApplyLayer && param->isResolved &&
      param->layer.kind == LayerKind::EmbeddingBag && n == 2)
    expected = 2;
  if (n != expected) {
    diags.error(c.getLoc(),
                (kind == CallKind::ApplyLayer ? "layer '" : "'") + c.callee +
                    "' takes " + Twine(expected) +
                    (expected == 1 ? " argument, got " : " arguments, got ") +
                    Twine(n));
    return;
  }
  if (!argsValid)
    return;
  switch (kind) {
  case CallKind::Relu: {
    const Type &t = c.args[0]->type;
    if (t.elem != ElemType::F32) {
      diags.error(c.getLoc(), "'relu' expects an f32 operand, got " + ty(t));
      return;
    }
    c.type = t;
    return;
  }
  case CallKind::Add:
    c.type = checkAdd(c.getLoc(), "'add'", *c.args[0], *c.args[1]);
    return;
  case CallKind::MatMul:
    c.type = checkMatMul(c.getLoc(), "'matmul'", *c.args[0], *c.args[1]);
    return;
  case CallKind::ApplyLayer:
    c.type = applyLayer(c, *param, *c.args[0]);
    return;
  case CallKind::Flatten:
    c.type = checkFlatten(c, batch, diags);
    return;
  case CallKind::Concat:
  case CallKind::Unflatten:
  case CallKind::Unresolved:
    return;
  }
}

Type ModelChecker::checkAdd(SMLoc loc, StringRef op, const Expr &lhs,
                            const Expr &rhs) {
  const Type &a = lhs.type, &b = rhs.type;
  if (!a.isValid() || !b.isValid())
    return Type();
  if (a.elem != ElemType::F32 || a != b) {
    diags.error(loc, "operands of " + op +
                         " must be f32 values of the same shape, got " + ty(a) +
                         " and " + ty(b));
    return Type();
  }
  return a;
}

Type ModelChecker::checkMatMul(SMLoc loc, StringRef op, const Expr &lhs,
                               const Expr &rhs) {
  const Type &a = lhs.type, &b = rhs.type;
  if (!a.isValid() || !b.isValid())
    return Type();
  const auto *id = llvm::dyn_cast<IdentExpr>(&rhs);
  if (!id || id->ref.kind != ValueRef::Kind::Param) {
    diags.error(rhs.getLoc(),
                "right operand of " + op + " must be a tensor parameter");
    return Type();
  }
  if (b.getRank() != 2) {
    diags.error(rhs.getLoc(), "right operand of " + op +
                                  " must be a rank-2 tensor parameter, got " +
                                  ty(b));
    return Type();
  }
  if (a.elem != ElemType::F32 || a.getRank() != 2 || !a.hasBatchDim()) {
    diags.error(lhs.getLoc(), "left operand of " + op +
                                  " must be an f32 value of shape [" + batch +
                                  ", I], got " + ty(a));
    return Type();
  }
  if (a.shape[1] != b.shape[0]) {
    diags.error(loc, "inner dimensions of " + op + " do not match: " + ty(a) +
                         " and " + ty(b));
    return Type();
  }
  return Type(ElemType::F32, {kBatch, b.shape[1]});
}

Type ModelChecker::checkConcat(CallExpr &c) {
  const Type &first = c.args[0]->type;
  for (auto &arg : c.args) {
    if (arg->type.elem != ElemType::F32) {
      diags.error(arg->getLoc(),
                  "operands of 'concat' must be f32, got " + ty(arg->type));
      return Type();
    }
  }
  if (first.getRank() < 2) {
    diags.error(c.args[0]->getLoc(),
                "operands of 'concat' must have rank 2 or more, got " +
                    ty(first));
    return Type();
  }
  llvm::APInt last = toAPInt(first.shape.back());
  for (size_t i = 1, e = c.args.size(); i != e; ++i) {
    const Type &t = c.args[i]->type;
    if (t.getRank() != first.getRank()) {
      diags.error(c.args[i]->getLoc(),
                  "operands of 'concat' must have the same rank, got " +
                      ty(first) + " and " + ty(t));
      return Type();
    }
    if (!std::equal(t.shape.begin(), t.shape.end() - 1, first.shape.begin())) {
      diags.error(c.args[i]->getLoc(),
                  "operands of 'concat' must have equal dimensions except "
                  "the last, got " +
                      ty(first) + " and " + ty(t));
      return Type();
    }
    last += toAPInt(t.shape.back());
  }
  if (last.ugt(toAPInt(kMaxElements))) {
    diags.error(c.getLoc(), "value has more than " + Twine(kMaxElements) +
                                " elements per example; that is the limit");
    return Type();
  }
  Type result = first;
  result.shape.back() = static_cast<int64_t>(last.getZExtValue());
  return checkValueSize(c.getLoc(), std::move(result));
}

Type ModelChecker::applyLayer(CallExpr &c, const ParamDecl &p,
                              const Expr &arg) {
  const Type &t = arg.type;
  const Layer &l = p.layer;
  if (l.kind == LayerKind::EmbeddingBag) {
    if (!isIntegerElemType(t.elem) || t.elem == ElemType::I8 ||
        t.getRank() != 2 || !t.hasBatchDim()) {
      diags.error(c.getLoc(), "embedding_bag '" + p.name +
                                  "' expects i32 or i64 indices of shape [" +
                                  batch + ", K] (K ids per bag), got " + ty(t));
      return Type();
    }
    if (c.args.size() == 2) {
      const Type &w = c.args[1]->type;
      if (w.elem != ElemType::F32 || w.shape != t.shape) {
        diags.error(c.args[1]->getLoc(),
                    "per-sample weights of '" + p.name +
                        "' must be f32 with the shape of the ids, " + ty(t) +
                        ", got " + ty(w));
        return Type();
      }
      if (l.mode != BagMode::Sum) {
        diags.error(c.args[1]->getLoc(),
                    "per-sample weights need mode = sum (as in PyTorch)");
        return Type();
      }
    }
    return Type(ElemType::F32, {kBatch, l.dim});
  }
  if (l.kind == LayerKind::Embedding) {
    if (!isIntegerElemType(t.elem) || t.elem == ElemType::I8 ||
        (t.getRank() != 1 && t.getRank() != 2) || !t.hasBatchDim()) {
      diags.error(c.getLoc(), "embedding '" + p.name +
                                  "' expects i32 or i64 indices of shape [" +
                                  batch + "] or [" + batch + ", K], got " +
                                  ty(t));
      return Type();
    }
    Type result(ElemType::F32, t.shape);
    result.shape.push_back(l.dim);
    return checkValueSize(c.getLoc(), std::move(result));
  }
  if (l.kind == LayerKind::KWinners) {
    if (t.elem != ElemType::F32 || t.getRank() != 2 || !t.hasBatchDim() ||
        t.shape[1] != l.num) {
      diags.error(c.getLoc(), "kwinners '" + p.name +
                                  "' expects an f32 input of shape [" + batch +
                                  ", " + Twine(l.num) + "], got " + ty(t));
      return Type();
    }
    return t;
  }
  if (l.kind == LayerKind::KWinners2d) {
    if (t.elem != ElemType::F32 || t.getRank() != 4 || !t.hasBatchDim() ||
        t.shape[1] != l.num) {
      diags.error(c.getLoc(), "kwinners2d '" + p.name +
                                  "' expects an f32 input of shape [" + batch +
                                  ", " + Twine(l.num) + ", H, W], got " +
                                  ty(t));
      return Type();
    }
    if (!l.local &&
        !checkKWinnersK(l, l.num * t.shape[2] * t.shape[3], c.getLoc(), diags))
      return Type();
    return t;
  }
  if (l.kind == LayerKind::MaskedConv2d) {
    Type r = applyMaskedConv2d(c, p, t, batch, diags);
    return r.isValid() ? checkValueSize(c.getLoc(), std::move(r)) : r;
  }
  if (l.kind == LayerKind::MaskedLstm) {
    Type r = applyMaskedLstm(c, p, t, batch, diags);
    return r.isValid() ? checkValueSize(c.getLoc(), std::move(r)) : r;
  }
  // linear and sparse_linear.
  if (t.elem != ElemType::F32 || t.getRank() != 2 || !t.hasBatchDim()) {
    diags.error(c.getLoc(), "layer '" + p.name +
                                "' expects an f32 input of shape [" + batch +
                                ", " + Twine(l.in) + "], got " + ty(t));
    return Type();
  }
  if (t.shape[1] != l.in) {
    diags.error(c.getLoc(), "layer '" + p.name + "' expects " + Twine(l.in) +
                                " input features, got " + Twine(t.shape[1]));
    return Type();
  }
  return Type(ElemType::F32, {kBatch, l.out});
}

Type ModelChecker::checkValueSize(SMLoc loc, Type t) {
  llvm::APInt count = toAPInt(1);
  for (int64_t d : t.shape) {
    if (d == kBatch)
      continue;
    count *= toAPInt(d);
    if (count.ugt(toAPInt(kMaxElements))) {
      diags.error(loc, "value has more than " + Twine(kMaxElements) +
                           " elements per example; that is the limit");
      return Type();
    }
  }
  return t;
}

//===----------------------------------------------------------------------===//
// Loss and output
//===----------------------------------------------------------------------===//

void ModelChecker::checkLoss(LossDecl &l) {
  auto kind = llvm::StringSwitch<std::optional<LossKind>>(l.kindName)
                  .Case("mse", LossKind::MSE)
                  .Case("cross_entropy", LossKind::CrossEntropy)
                  .Case("bce_with_logits", LossKind::BCEWithLogits)
                  .Default(std::nullopt);
  if (!kind) {
    diags.error(l.kindLoc, "unknown loss '" + l.kindName +
                               "'; expected mse, cross_entropy or "
                               "bce_with_logits");
    return;
  }
  bool ok = true;
  for (const Argument &a : l.args) {
    if (a.isKeyword()) {
      diags.error(a.loc, "'" + l.kindName + "' takes no keyword arguments");
      ok = false;
    } else if (a.value.kind != ArgValue::Kind::Ident) {
      diags.error(a.value.loc,
                  "arguments of '" + l.kindName + "' must be names of values");
      ok = false;
    }
  }
  if (ok && l.args.size() != 2) {
    diags.error(l.kindLoc, "'" + l.kindName +
                               "' takes 2 arguments (prediction, target), "
                               "got " +
                               Twine(l.args.size()));
    ok = false;
  }
  if (!ok)
    return;

  const ArgValue &predArg = l.args[0].value, &targetArg = l.args[1].value;
  auto lookup = [&](const ArgValue &v) -> const ValueRef * {
    auto it = names.find(v.text);
    if (it != names.end())
      return &it->second;
    diags.error(v.loc, "use of undefined name '" + v.text + "'");
    return nullptr;
  };
  const ValueRef *pred = lookup(predArg);
  if (pred &&
      (pred->kind == ValueRef::Kind::Param ||
       (pred->kind == ValueRef::Kind::Input && pred->input->isTarget))) {
    diags.error(predArg.loc, "loss prediction '" + predArg.text +
                                 "' must be a forward value or an input");
    pred = nullptr;
  }
  const ValueRef *target = lookup(targetArg);
  if (target &&
      (target->kind != ValueRef::Kind::Input || !target->input->isTarget)) {
    diags.error(targetArg.loc,
                "loss target '" + targetArg.text +
                    (target->kind == ValueRef::Kind::Input
                         ? "' must be declared with 'target', not 'input'"
                         : "' must be declared with 'target'"));
    target = nullptr;
  }
  if (!pred || !target)
    return;
  Type p = pred->getType(), t = target->getType();
  if (!p.isValid() || !t.isValid())
    return;
  if (*kind == LossKind::CrossEntropy) {
    if (p.elem != ElemType::F32 || p.getRank() != 2 || !p.hasBatchDim()) {
      diags.error(predArg.loc, "'cross_entropy' expects f32 logits of shape [" +
                                   batch + ", C], got " + ty(p));
      ok = false;
    }
    if ((t.elem != ElemType::I32 && t.elem != ElemType::I64) ||
        t.getRank() != 1) {
      diags.error(targetArg.loc,
                  "'cross_entropy' expects i32 or i64 class labels of shape [" +
                      batch + "], got " + ty(t));
      ok = false;
    }
  } else if (p.elem != ElemType::F32 || p != t) {
    diags.error(l.kindLoc, "'" + l.kindName +
                               "' expects an f32 prediction and target of the "
                               "same shape, got " +
                               ty(p) + " and " + ty(t));
    ok = false;
  }
  if (!ok)
    return;
  l.kind = *kind;
  l.predName = predArg.text;
  l.targetName = targetArg.text;
  l.pred = *pred;
  l.target = *target;
  l.predType = p;
  l.targetType = t;
  l.isResolved = true;
}

void ModelChecker::checkOutput() {
  ReturnStmt *ret = m.forward ? m.forward->ret.get() : nullptr;
  if (!ret) {
    if (m.loss && m.loss->isResolved) {
      m.outputName = m.loss->predName;
      m.output = m.loss->pred;
      m.outputType = m.loss->predType;
    }
    return;
  }
  auto it = names.find(ret->name);
  if (it == names.end()) {
    diags.error(ret->nameLoc, "use of undefined name '" + ret->name + "'");
    return;
  }
  const ValueRef &ref = it->second;
  if (ref.kind == ValueRef::Kind::Param) {
    diags.error(ret->nameLoc, "'return' must name a forward value or an input");
    return;
  }
  if (ref.kind == ValueRef::Kind::Input && ref.input->isTarget) {
    diags.error(ret->nameLoc, "target '" + ret->name +
                                  "' cannot be used in 'forward'; targets are "
                                  "only available to the loss");
    return;
  }
  Type t = ref.getType();
  if (t.isValid() && !t.hasBatchDim() && !t.isSequenceFirst()) {
    diags.error(ret->nameLoc, "the output '" + ret->name +
                                  "' must have the batch dimension first, "
                                  "got " +
                                  ty(t));
    return;
  }
  ret->ref = ref;
  m.outputName = ret->name;
  m.output = ref;
  m.outputType = t;
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

bool Sema::check(Module &module) {
  unsigned errorsBefore = diags.getNumErrors();
  llvm::StringMap<const Model *> models;
  for (auto &m : module.models) {
    if (!m->name.empty()) {
      auto [it, inserted] = models.try_emplace(m->name, m.get());
      if (!inserted) {
        diags.error(m->loc, "redefinition of model '" + m->name + "'");
        diags.note(it->second->loc,
                   "previous definition of '" + m->name + "' is here");
      }
    }
    if (!m->hasSyntaxErrors)
      ModelChecker(diags, *m).check();
  }
  return diags.getNumErrors() == errorsBefore;
}
