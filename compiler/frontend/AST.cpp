//===- AST.cpp - AST helpers and the readable AST dump --------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//

#include "AST.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// Names and formatting
//===----------------------------------------------------------------------===//

StringRef ast::elemTypeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "f32";
  case ElemType::F64:
    return "f64";
  case ElemType::F16:
    return "f16";
  case ElemType::BF16:
    return "bf16";
  case ElemType::I8:
    return "i8";
  case ElemType::I32:
    return "i32";
  case ElemType::I64:
    return "i64";
  case ElemType::Invalid:
    break;
  }
  return "?";
}

ElemType ast::elemTypeFromName(StringRef name) {
  return llvm::StringSwitch<ElemType>(name)
      .Case("f32", ElemType::F32)
      .Case("f64", ElemType::F64)
      .Case("f16", ElemType::F16)
      .Case("bf16", ElemType::BF16)
      .Case("i8", ElemType::I8)
      .Case("i32", ElemType::I32)
      .Case("i64", ElemType::I64)
      .Default(ElemType::Invalid);
}

bool ast::isIntegerElemType(ElemType t) {
  return t == ElemType::I8 || t == ElemType::I32 || t == ElemType::I64;
}

std::string ast::typeToString(const Type &t, StringRef batchName) {
  if (!t.isValid())
    return "?";
  std::string s = elemTypeName(t.elem).str();
  s += '[';
  for (size_t i = 0, e = t.shape.size(); i != e; ++i) {
    if (i)
      s += ", ";
    if (t.shape[i] == kBatch)
      s += batchName.str();
    else
      s += std::to_string(t.shape[i]);
  }
  s += ']';
  return s;
}

std::string ast::formatDouble(double v) {
  if (std::isnan(v))
    return "nan";
  if (std::isinf(v))
    return v < 0 ? "-inf" : "inf";
  if (v == 0)
    return std::signbit(v) ? "-0" : "0";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v)
      break;
  }
  return buf;
}

StringRef ast::encodingName(EncodingKind k) {
  switch (k) {
  case EncodingKind::COO:
    return "coo";
  case EncodingKind::CSR:
    return "csr";
  case EncodingKind::CSC:
    return "csc";
  case EncodingKind::BSR:
    return "bsr";
  case EncodingKind::NM:
    return "nm";
  case EncodingKind::None:
    break;
  }
  return "";
}

StringRef ast::layerKindName(LayerKind k) {
  switch (k) {
  case LayerKind::Linear:
    return "linear";
  case LayerKind::SparseLinear:
    return "sparse_linear";
  case LayerKind::Embedding:
    return "embedding";
  case LayerKind::EmbeddingBag:
    return "embedding_bag";
  case LayerKind::Tensor:
    return "tensor";
  case LayerKind::KWinners:
    return "kwinners";
  case LayerKind::KWinners2d:
    return "kwinners2d";
  case LayerKind::MaskedLinear:
    return "masked_linear";
  case LayerKind::MaskedConv2d:
    return "masked_conv2d";
  case LayerKind::MaskedLstm:
    return "masked_lstm";
  }
  return "?";
}

StringRef ast::bagModeName(BagMode m) {
  switch (m) {
  case BagMode::Sum:
    return "sum";
  case BagMode::Mean:
    return "mean";
  case BagMode::Max:
    return "max";
  }
  return "?";
}

StringRef ast::initKindName(InitKind k) {
  switch (k) {
  case InitKind::Zeros:
    return "zeros";
  case InitKind::Normal:
    return "normal";
  case InitKind::Uniform:
    return "uniform";
  }
  return "?";
}

StringRef ast::patternName(Pattern p) {
  switch (p) {
  case Pattern::Random:
    return "random";
  case Pattern::SmallWorld:
    return "small_world";
  case Pattern::User:
    return "user";
  }
  return "?";
}

StringRef ast::binaryOpSpelling(BinaryOp op) {
  return op == BinaryOp::Add ? "+" : "@";
}

StringRef ast::lossKindName(LossKind k) {
  switch (k) {
  case LossKind::MSE:
    return "mse";
  case LossKind::CrossEntropy:
    return "cross_entropy";
  case LossKind::BCEWithLogits:
    return "bce_with_logits";
  }
  return "?";
}

StringRef ast::optimizerKindName(OptimizerKind k) {
  switch (k) {
  case OptimizerKind::SGD:
    return "sgd";
  case OptimizerKind::Adagrad:
    return "adagrad";
  case OptimizerKind::RowwiseAdagrad:
    return "rowwise_adagrad";
  case OptimizerKind::RMSprop:
    return "rmsprop";
  case OptimizerKind::Adam:
    return "adam";
  case OptimizerKind::AdamW:
    return "adamw";
  }
  return "?";
}

StringRef ast::sparseModeName(SparseMode m) {
  switch (m) {
  case SparseMode::Lazy:
    return "lazy";
  case SparseMode::Catchup:
    return "catchup";
  case SparseMode::Dense:
    return "dense";
  }
  return "?";
}

StringRef ast::scheduleKindName(ScheduleKind k) {
  switch (k) {
  case ScheduleKind::Constant:
    return "constant";
  case ScheduleKind::Step:
    return "step";
  case ScheduleKind::Cosine:
    return "cosine";
  }
  return "?";
}

/// A user pattern in the AST dump: its file in quotes, or `[inline]`.
static std::string userPattern(const Layer &l) {
  return l.connectivityFile.empty() ? "[inline]"
                                    : "\"" + l.connectivityFile + "\"";
}

std::string ArgValue::toString() const {
  switch (kind) {
  case Kind::Int:
    return std::to_string(intValue);
  case Kind::Float:
    return formatDouble(floatValue);
  case Kind::Bool:
    return boolValue ? "true" : "false";
  case Kind::Ident:
    return text;
  case Kind::String: {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << '"';
    llvm::printEscapedString(text, os);
    os << '"';
    return s;
  }
  case Kind::List: {
    if (flat && rows.size() == 1) {
      std::string s = "[";
      for (size_t i = 0; i < rows[0].size(); ++i)
        s += (i ? ", " : "") + std::to_string(rows[0][i].value);
      return s + "]";
    }
    std::string s = "[";
    for (size_t r = 0; r < rows.size(); ++r) {
      s += r ? ", [" : "[";
      for (size_t i = 0; i < rows[r].size(); ++i)
        s += (i ? ", " : "") + std::to_string(rows[r][i].value);
      s += "]";
    }
    return s + "]";
  }
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// Node helpers
//===----------------------------------------------------------------------===//

Expr::~Expr() = default;

Type ParamDecl::getTensorType() const {
  if (!isResolved || layer.kind != LayerKind::Tensor)
    return Type();
  return Type(ElemType::F32, layer.dims);
}

const Type &AssignStmt::getType() const {
  static const Type invalid;
  return value ? value->type : invalid;
}

Type ValueRef::getType() const {
  switch (kind) {
  case Kind::Input:
    return input->type;
  case Kind::Value:
    return value->getType();
  case Kind::Param:
    return param->getTensorType();
  case Kind::None:
    break;
  }
  return Type();
}

const InputDecl *Model::findInput(StringRef n) const {
  for (const auto &in : inputs)
    if (in->name == n)
      return in.get();
  return nullptr;
}

const ParamDecl *Model::findParam(StringRef n) const {
  for (const auto &p : params)
    if (p->name == n)
      return p.get();
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Dump
//===----------------------------------------------------------------------===//

namespace {
class Dumper {
public:
  Dumper(const Module &m, llvm::raw_ostream &os) : m(m), os(os) {}

  void dumpModule() {
    os << "Module\n";
    for (const auto &model : m.models)
      dumpModel(*model);
  }

private:
  llvm::raw_ostream &indent(unsigned level) { return os.indent(2 * level); }

  void printLoc(llvm::SMLoc loc) {
    if (!m.sourceMgr || !loc.isValid()) {
      os << " <?>\n";
      return;
    }
    auto [line, col] = m.sourceMgr->getLineAndColumn(loc);
    os << " <" << line << ':' << col << ">\n";
  }

  std::string ty(const Type &t) { return typeToString(t, batch); }

  static void printArgs(llvm::raw_ostream &os,
                        const std::vector<Argument> &args) {
    os << '(';
    for (size_t i = 0, e = args.size(); i != e; ++i) {
      if (i)
        os << ", ";
      if (args[i].isKeyword())
        os << args[i].key << '=';
      os << args[i].value.toString();
    }
    os << ')';
  }

  void dumpModel(const Model &model) {
    batch = model.batchSymbol.empty() ? "B" : model.batchSymbol;
    indent(1) << "Model " << model.name;
    printLoc(model.loc);
    for (const auto &in : model.inputs)
      dumpInput(*in);
    for (const auto &p : model.params)
      dumpParam(*p);
    if (model.forward)
      dumpForward(*model.forward);
    if (model.loss)
      dumpLoss(*model.loss);
    if (model.optimizer)
      dumpOptimizer(*model.optimizer);
    if (!model.outputName.empty()) {
      indent(2) << "Output " << model.outputName;
      if (model.outputType.isValid())
        os << " : " << ty(model.outputType);
      os << '\n';
    }
  }

  void dumpInput(const InputDecl &in) {
    indent(2) << (in.isTarget ? "Target " : "Input ") << in.name << " : ";
    if (in.type.isValid()) {
      os << ty(in.type);
    } else {
      os << elemTypeName(in.spec.elem) << '[';
      for (size_t i = 0, e = in.spec.dims.size(); i != e; ++i) {
        if (i)
          os << ", ";
        const DimSpec &d = in.spec.dims[i];
        if (d.isSymbolic)
          os << d.symbol;
        else
          os << d.value;
      }
      os << ']';
    }
    const Encoding &enc = in.spec.encoding;
    if (enc.kind != EncodingKind::None) {
      os << " @" << encodingName(enc.kind);
      if (!enc.params.empty()) {
        os << '(';
        for (size_t i = 0, e = enc.params.size(); i != e; ++i)
          os << (i ? ", " : "") << enc.params[i];
        os << ')';
      }
    }
    printLoc(in.loc);
  }

  void dumpParam(const ParamDecl &p) {
    indent(2) << "Param " << p.name << " : ";
    if (!p.isResolved) {
      os << p.kindName;
      printArgs(os, p.args);
      printLoc(p.loc);
      return;
    }
    const Layer &l = p.layer;
    os << (l.quantBits ? StringRef("sparse_quantized_linear")
                       : layerKindName(l.kind))
       << '(';
    switch (l.kind) {
    case LayerKind::Linear:
      os << "in=" << l.in << ", out=" << l.out
         << ", bias=" << (l.bias ? "true" : "false");
      break;
    case LayerKind::SparseLinear:
      os << "in=" << l.in << ", out=" << l.out
         << ", sparsity=" << formatDouble(l.sparsity)
         << ", bias=" << (l.bias ? "true" : "false") << ", nnz=" << l.nnz;
      if (l.pattern == Pattern::User)
        os << ", connectivity=" << userPattern(l);
      else if (l.pattern != Pattern::Random)
        os << ", connectivity=" << patternName(l.pattern);
      if (!l.dynamic.empty())
        os << ", dynamic=" << l.dynamic << ", delta_t=" << l.deltaT
           << ", t_end=" << l.tEnd
           << ", drop_fraction=" << formatDouble(l.dropFraction);
      if (l.dynamic == "rigl")
        os << ", max_size=" << l.maxSize;
      if (l.quantBits)
        os << ", bits=" << l.quantBits;
      break;
    case LayerKind::MaskedLstm:
      os << "input_size=" << l.in << ", hidden_size=" << l.hidden
         << ", batch_first=" << (l.batchFirst ? "true" : "false")
         << ", output=" << (l.lstmLast ? "last" : "sequence");
      [[fallthrough]];
    case LayerKind::MaskedLinear:
    case LayerKind::MaskedConv2d:
      if (l.kind != LayerKind::MaskedLstm)
        os << "in=" << l.in << ", out=" << l.out;
      if (l.kind == LayerKind::MaskedConv2d) {
        // [height, width], or one integer when they are equal.
        auto hw = [](const std::array<int64_t, 2> &v) {
          return v[0] == v[1] ? std::to_string(v[0])
                              : "[" + std::to_string(v[0]) + ", " +
                                    std::to_string(v[1]) + "]";
        };
        os << ", kernel_size=" << hw(l.kernel) << ", stride=" << hw(l.stride)
           << ", padding=" << hw(l.padding) << ", dilation=" << hw(l.dilation)
           << ", groups=" << l.groups;
      }
      os << ", sparsity=" << formatDouble(l.sparsity)
         << ", bias=" << (l.bias ? "true" : "false") << ", ones=" << l.nnz;
      if (l.kind == LayerKind::MaskedLstm)
        os << ", ones_hh=" << l.nnzHh;
      if (l.pattern == Pattern::User)
        os << ", mask=" << userPattern(l);
      if (!l.prune.empty())
        os << ", prune=" << l.prune
           << ", initial=" << formatDouble(l.pruneInitial)
           << ", final=" << formatDouble(l.pruneFinal)
           << ", begin=" << l.pruneBegin << ", end=" << l.pruneEnd
           << ", every=" << l.pruneEvery
           << (l.prune == "structured"
                   ? (l.pruneNorm == 1 ? ", norm=l1" : ", norm=l2")
                   : (l.pruneGlobal ? ", scope=global" : ", scope=layer"));
      break;
    case LayerKind::Embedding:
    case LayerKind::EmbeddingBag:
      os << "num=" << l.num << ", dim=" << l.dim;
      if (l.kind == LayerKind::EmbeddingBag)
        os << ", mode=" << bagModeName(l.mode);
      if (l.paddingIdx >= 0)
        os << ", padding_idx=" << l.paddingIdx;
      if (l.maxNorm > 0)
        os << ", max_norm=" << formatDouble(l.maxNorm)
           << ", norm_type=" << formatDouble(l.normType);
      if (l.scaleGradByFreq)
        os << ", scale_grad_by_freq=true";
      break;
    case LayerKind::KWinners:
    case LayerKind::KWinners2d:
      if (l.kind == LayerKind::KWinners)
        os << "n=" << l.num;
      else
        os << "channels=" << l.num
           << ", local=" << (l.local ? "true" : "false");
      os << ", percent_on=" << formatDouble(l.percentOn);
      // Global kwinners2d: k depends on the input's H and W.
      if (l.kind == LayerKind::KWinners || l.local)
        os << ", k=" << l.k << ", k_inference=" << l.kInference;
      os << ", boost_strength=" << formatDouble(l.boostStrength)
         << ", duty_cycle_period=" << l.dutyCyclePeriod;
      if (l.boostDecayPeriod > 0)
        os << ", boost_strength_factor=" << formatDouble(l.boostStrengthFactor)
           << ", boost_decay_period=" << l.boostDecayPeriod;
      break;
    case LayerKind::Tensor:
      os << "dims=[";
      for (size_t i = 0, e = l.dims.size(); i != e; ++i)
        os << (i ? ", " : "") << l.dims[i];
      os << "], init=" << initKindName(l.init)
         << ", scale=" << formatDouble(l.scale);
      break;
    }
    os << ')';
    printLoc(p.loc);
  }

  void dumpForward(const ForwardBlock &f) {
    indent(2) << "Forward";
    printLoc(f.loc);
    for (const auto &s : f.stmts) {
      indent(3) << "Assign " << s->name;
      if (s->getType().isValid())
        os << " : " << ty(s->getType());
      printLoc(s->loc);
      if (s->value)
        dumpExpr(*s->value, 4);
    }
    if (f.ret) {
      indent(3) << "Return " << f.ret->name;
      Type t = f.ret->ref.getType();
      if (t.isValid())
        os << " : " << ty(t);
      printLoc(f.ret->loc);
    }
  }

  void dumpExpr(const Expr &e, unsigned level) {
    indent(level);
    if (const auto *n = llvm::dyn_cast<NumberExpr>(&e)) {
      os << "Number " << n->spelling;
    } else if (const auto *id = llvm::dyn_cast<IdentExpr>(&e)) {
      os << "Ident " << id->name;
    } else if (const auto *c = llvm::dyn_cast<CallExpr>(&e)) {
      os << (c->callKind == CallKind::ApplyLayer ? "Apply " : "Call ")
         << c->callee;
    } else if (const auto *b = llvm::dyn_cast<BinaryExpr>(&e)) {
      os << "Binary " << binaryOpSpelling(b->op);
    }
    if (e.type.isValid())
      os << " : " << ty(e.type);
    printLoc(e.getLoc());
    if (const auto *c = llvm::dyn_cast<CallExpr>(&e)) {
      for (const auto &a : c->args)
        if (a)
          dumpExpr(*a, level + 1);
    } else if (const auto *b = llvm::dyn_cast<BinaryExpr>(&e)) {
      if (b->lhs)
        dumpExpr(*b->lhs, level + 1);
      if (b->rhs)
        dumpExpr(*b->rhs, level + 1);
    }
  }

  void dumpLoss(const LossDecl &l) {
    indent(2) << "Loss ";
    if (l.isResolved)
      os << lossKindName(l.kind) << '(' << l.predName << ", " << l.targetName
         << ')';
    else {
      os << l.kindName;
      printArgs(os, l.args);
    }
    printLoc(l.loc);
  }

  void dumpOptimizer(const OptimizerDecl &o) {
    indent(2) << "Optimizer ";
    if (o.isResolved) {
      const Optimizer &opt = o.optimizer;
      os << optimizerKindName(opt.kind) << "(lr=" << formatDouble(opt.lr);
      auto num = [&](const char *name, double v) {
        os << ", " << name << '=' << formatDouble(v);
      };
      auto flag = [&](const char *name, bool v) {
        os << ", " << name << '=' << (v ? "true" : "false");
      };
      switch (opt.kind) {
      case OptimizerKind::SGD:
        num("momentum", opt.momentum);
        num("dampening", opt.dampening);
        num("weight_decay", opt.weightDecay);
        flag("nesterov", opt.nesterov);
        break;
      case OptimizerKind::Adagrad:
        num("lr_decay", opt.lrDecay);
        [[fallthrough]];
      case OptimizerKind::RowwiseAdagrad:
        num("weight_decay", opt.weightDecay);
        num("initial_accumulator_value", opt.initialAccumulatorValue);
        num("eps", opt.eps);
        break;
      case OptimizerKind::RMSprop:
        num("alpha", opt.alpha);
        num("eps", opt.eps);
        num("weight_decay", opt.weightDecay);
        num("momentum", opt.momentum);
        flag("centered", opt.centered);
        break;
      case OptimizerKind::Adam:
      case OptimizerKind::AdamW:
        num("beta1", opt.beta1);
        num("beta2", opt.beta2);
        num("eps", opt.eps);
        num("weight_decay", opt.weightDecay);
        flag("amsgrad", opt.amsgrad);
        break;
      }
      if (opt.sparse != SparseMode::Lazy)
        os << ", sparse=" << sparseModeName(opt.sparse);
      if (opt.clipGradNorm > 0)
        num("clip_grad_norm", opt.clipGradNorm);
      if (!opt.fused && opt.sparse == SparseMode::Lazy && opt.clipGradNorm == 0)
        os << ", fused=false";
      if (opt.schedule != ScheduleKind::Constant)
        os << ", schedule=" << scheduleKindName(opt.schedule);
      if (opt.schedule == ScheduleKind::Step) {
        num("step_size", double(opt.stepSize));
        num("gamma", opt.gamma);
      } else if (opt.schedule == ScheduleKind::Cosine) {
        num("t_max", double(opt.tMax));
        num("eta_min", opt.etaMin);
      }
      if (opt.warmup)
        num("warmup", double(opt.warmup));
      os << ')';
    } else {
      os << o.kindName;
      printArgs(os, o.args);
    }
    printLoc(o.loc);
  }

  const Module &m;
  llvm::raw_ostream &os;
  std::string batch = "B";
};
} // namespace

void ast::dump(const Module &m, llvm::raw_ostream &os) {
  Dumper(m, os).dumpModule();
}
