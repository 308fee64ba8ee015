//===- FnAbi.cpp - C ABI of free-standing kernels -------------------------===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The C side of `fn` kernels (docs/sparse-ops.md, "C ABI"): the memref list
// shared with FnGen.cpp, the symbol prefix rule, and the emitters of the C
// glue (checked entry points `<prefix>_<fn>` wrapping each array in a memref
// descriptor and calling `_mlir_ciface_sparsec_fn_<prefix>_<fn>`), of the
// public header and of the version-script patterns.
//
//===----------------------------------------------------------------------===//

#include "fnkernels/FnKernels.h"

#include "mlir/IR/BuiltinTypes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Path.h"

#include <functional>
#include <map>
#include <tuple>

using namespace sparsec;
using namespace sparsec::ast;
using llvm::StringRef;

namespace {

std::string dimExpr(const FnDim &d) {
  return d.isSymbolic() ? d.symbol : std::to_string(d.value) + "LL";
}

const char *cElem(ElemType e) {
  return e == ElemType::F64   ? "double"
         : e == ElemType::I64 ? "int64_t"
                              : "float";
}

/// Formats whose positions array [0, n] is a local of the glue (COO and
/// nonzero's coordinates), not passed by the caller.
bool isCoo(FnFormat f) {
  return f == FnFormat::COO || f == FnFormat::RowCOO || f == FnFormat::Indices;
}

/// Appends the arrays of a sparse value `t` named `base`, with `n` the C
/// expression of its number of entries (nnz or capacity).
void sparseArrays(std::vector<FnMemref> &out, const FnType &t,
                  const std::string &base, const std::string &n, int param) {
  auto add = [&](std::string name, bool isIndex, int64_t size,
                 std::string sizeExpr) {
    FnMemref m;
    m.name = base + "_" + name;
    m.isIndex = isIndex;
    m.shape = {size};
    m.sizes = {std::move(sizeExpr)};
    m.param = param;
    out.push_back(std::move(m));
  };
  constexpr int64_t dyn = mlir::ShapedType::kDynamic;
  if (t.format == FnFormat::NM) { // n values of every group of m columns
    int64_t k = t.shape[0].value * t.shape[1].value / t.blockCols * t.blockRows;
    add("crd", true, k, std::to_string(k));
    add("val", false, k, std::to_string(k));
    return;
  }
  if (t.format == FnFormat::RowCOO) {
    add("pos", true, 2, "2");
    add("crd0", true, dyn, n);
    add("val", false, dyn, n + " * " + dimExpr(t.shape[1]));
    return;
  }
  if (t.format == FnFormat::Indices) { // [count][rank] coordinates (AoS)
    add("pos", true, 2, "2");
    add("crd", true, dyn, n);
    out.back().shape.push_back(t.shape[1].value);
    out.back().sizes.push_back(std::to_string(t.shape[1].value));
    return;
  }
  if (t.format == FnFormat::COO) {
    add("pos", true, 2, "2");
    for (unsigned d = 0; d < t.getRank(); ++d)
      add("crd" + std::to_string(d), true, dyn, n);
  } else {
    int64_t outer = t.outerSize() + 1;
    add("pos", true, outer, std::to_string(outer));
    add("crd", true, dyn, n);
  }
  add("val", false, dyn,
      t.entryValues() == 1 ? n : n + " * " + std::to_string(t.entryValues()));
}

void denseArray(std::vector<FnMemref> &out, const FnType &t, std::string name,
                int param) {
  FnMemref m;
  m.name = std::move(name);
  m.param = param;
  m.isIndex = t.isInteger(); // an index vector of index_select
  for (const FnDim &d : t.shape) {
    m.shape.push_back(d.isSymbolic() ? mlir::ShapedType::kDynamic : d.value);
    m.sizes.push_back(dimExpr(d));
  }
  out.push_back(std::move(m));
}

/// The C parameters of kernel `fn` (without types of the element: "T").
struct CParam {
  std::string type, name;
};

std::vector<CParam> cParams(const FnDecl &fn) {
  std::vector<CParam> ps;
  for (const std::string &s : fn.symbols)
    ps.push_back({"int64_t", s});
  for (const FnParam &p : fn.params) {
    std::string t = std::string("const ") + cElem(p.type.elem) + " *";
    switch (p.type.format) {
    case FnFormat::Dense:
      ps.push_back({t, p.name});
      break;
    case FnFormat::NM:
      ps.push_back({"const int64_t *", p.name + "_crd"});
      ps.push_back({t, p.name + "_val"});
      break;
    case FnFormat::COO:
    case FnFormat::RowCOO:
      ps.push_back({"const int64_t *", p.name + "_indices"});
      ps.push_back({t, p.name + "_val"});
      ps.push_back({"int64_t", p.name + "_nnz"});
      break;
    default:
      ps.push_back({"const int64_t *", p.name + "_pos"});
      ps.push_back({"const int64_t *", p.name + "_crd"});
      ps.push_back({t, p.name + "_val"});
      ps.push_back({"int64_t", p.name + "_nnz"});
      break;
    }
  }
  std::string t = std::string(cElem(fn.resultType.elem)) + " *";
  switch (fn.resultType.format) {
  case FnFormat::Dense:
    ps.push_back({t, "out"});
    break;
  case FnFormat::COO:
  case FnFormat::RowCOO:
    ps.push_back({"int64_t *", "out_indices"});
    ps.push_back({t, "out_val"});
    ps.push_back({"int64_t", "out_cap"});
    ps.push_back({"int64_t *", "out_nnz"});
    break;
  case FnFormat::Indices:
    ps.push_back({"int64_t *", "out"});
    ps.push_back({"int64_t", "out_cap"});
    ps.push_back({"int64_t *", "out_nnz"});
    break;
  default:
    ps.push_back({"int64_t *", "out_pos"});
    ps.push_back({"int64_t *", "out_crd"});
    ps.push_back({t, "out_val"});
    ps.push_back({"int64_t", "out_cap"});
    ps.push_back({"int64_t *", "out_nnz"});
    break;
  }
  return ps;
}

/// The C expressions of the sizes each i64 index parameter indexes
/// (index_select, and index_add in gradient kernels), by parameter.
std::map<std::string, std::vector<std::string>> indexBounds(const FnDecl &fn) {
  llvm::StringMap<const FnExpr *> locals;
  for (const FnStmt &s : fn.stmts)
    locals[s.name] = s.value.get();
  std::map<std::string, std::vector<std::string>> bounds;
  std::function<void(const FnExpr &)> walk = [&](const FnExpr &e) {
    for (const std::unique_ptr<FnExpr> &a : e.args)
      walk(*a);
    if (e.op != FnOp::IndexSelect && e.op != FnOp::IndexAdd)
      return;
    const FnExpr *idx = e.args[1].get();
    while (idx->op == FnOp::Ident && locals.count(idx->name))
      idx = locals.lookup(idx->name);
    const FnType &t = e.op == FnOp::IndexAdd ? e.type : e.args[0]->type;
    std::vector<std::string> &b = bounds[idx->name];
    std::string size = dimExpr(t.shape[e.dim]);
    if (!llvm::is_contained(b, size))
      b.push_back(size);
  };
  for (const FnStmt &s : fn.stmts)
    walk(*s.value);
  walk(*fn.ret);
  return bounds;
}

/// A bound as C text made readable: min(...) and no LL suffixes.
std::string readable(std::string bound) {
  for (size_t at; (at = bound.find("sfn_min")) != std::string::npos;)
    bound.replace(at, 7, "min");
  for (size_t at; (at = bound.find("LL")) != std::string::npos;)
    bound.erase(at, 2);
  return bound;
}

std::string signature(const FnDecl &fn, StringRef prefix) {
  std::string s = "int " + prefix.str() + "_" + fn.name + "(";
  std::vector<CParam> ps = cParams(fn);
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i)
      s += ", ";
    s += ps[i].type;
    if (ps[i].type.back() != '*')
      s += " ";
    s += ps[i].name;
  }
  return s + ")";
}

/// Upper bound of the stored entries of sparse expression `e`, as C text.
/// Values with the same pattern key have the same pattern (unary ops keep
/// it; the union or intersection of a pattern with itself is itself).
class NnzBound {
public:
  explicit NnzBound(const FnDecl &fn) {
    for (const FnStmt &s : fn.stmts)
      locals[s.name] = s.value.get();
  }
  std::string of(const FnExpr &e) { return walk(e).first; }

private:
  /// (bound, pattern key). Keys are numbers: a parameter's first use and
  /// every distinct (op, key, key) get the next one.
  using Bound = std::pair<std::string, int>;

  int key(char op, int x, int y) {
    auto [it, inserted] =
        keys.try_emplace(std::make_tuple(op, x, y), int(keys.size()));
    return it->second;
  }

  Bound walk(const FnExpr &e) {
    // Memoized: locals used several times are walked once.
    auto found = memo.find(&e);
    if (found != memo.end())
      return found->second;
    Bound b = compute(e);
    // A long expression is replaced by the trivial bound: every entry.
    if (b.first.size() > 200)
      b.first = std::to_string(entries(e.type)) + "LL";
    memo[&e] = b;
    return b;
  }

  static int64_t entries(const FnType &t) {
    if (t.format == FnFormat::RowCOO)
      return t.shape[0].value;
    int64_t n = 1;
    for (const FnDim &d : t.shape)
      n *= d.value;
    return n / t.entryValues();
  }

  Bound compute(const FnExpr &e) {
    switch (e.op) {
    case FnOp::Ident:
      if (const FnExpr *local = locals.lookup(e.name))
        return walk(*local);
      return {e.name + "_nnz",
              key('p',
                  int(params.insert({e.name, params.size()}).first->second),
                  0)};
    case FnOp::Add:
    case FnOp::Sub:
    case FnOp::Mul: {
      Bound x = walk(*e.args[0]);
      if (e.args.size() == 1)
        return x;
      Bound y = walk(*e.args[1]);
      if (x.second == y.second)
        return x;
      if (e.op == FnOp::Mul)
        return {"sfn_min(" + x.first + ", " + y.first + ")",
                key('&', x.second, y.second)};
      return {"sfn_min(" + x.first + " + " + y.first + ", " +
                  std::to_string(entries(e.type)) + "LL)",
              key('|', x.second, y.second)};
    }
    case FnOp::Transpose: {
      Bound x = walk(*e.args[0]);
      return {x.first, key('T', x.second, 0)};
    }
    case FnOp::MatMul:
    case FnOp::SparseMM:
      return product(e, *e.args[0], *e.args[1]);
    case FnOp::Cat: { // the entries of every part
      std::string sum;
      int k = 0;
      for (const std::unique_ptr<FnExpr> &a : e.args) {
        Bound x = walk(*a);
        sum += (sum.empty() ? "" : " + ") + x.first;
        k = key('c', k, x.second);
      }
      return {"sfn_min(" + sum + ", " + std::to_string(entries(e.type)) + "LL)",
              k};
    }
    case FnOp::Narrow: { // a part of a's entries
      Bound x = walk(*e.args[0]);
      return {"sfn_min(" + x.first + ", " + std::to_string(entries(e.type)) +
                  "LL)",
              key('n', x.second, int(e.dim * 1000003 + e.start))};
    }
    case FnOp::NonZero: { // a's stored entries, or all of a dense a
      const FnExpr &a = *e.args[0];
      if (a.type.isSparse())
        return walk(a);
      std::string all = "1LL";
      for (const FnDim &d : a.type.shape)
        all += " * " + dimExpr(d);
      return {all, key('z', 0, 0)};
    }
    case FnOp::IndexSelect: { // K slices of at most min(size, nnz) each
      Bound x = walk(*e.args[0]);
      int64_t k = e.type.shape[e.dim].value,
              other = e.type.shape[1 - e.dim].value;
      return {"sfn_min(" + std::to_string(k) + "LL * sfn_min(" +
                  std::to_string(other) + "LL, " + x.first + "), " +
                  std::to_string(entries(e.type)) + "LL)",
              key('i', x.second, int(keys.size()))};
    }
    case FnOp::AddMM: { // sspaddmm: the union of the bias and the product
      Bound c = walk(*e.args[0]), p = product(e, *e.args[1], *e.args[2]);
      return {"sfn_min(" + c.first + " + " + p.first + ", " +
                  std::to_string(entries(e.type)) + "LL)",
              key('|', c.second, p.second)};
    }
    default: // unary ops keep the pattern
      return walk(*e.args[0]);
    }
  }

  /// A sparse product `a @ x`: a stored a(i,k) reaches at most N entries
  /// (one row of @coo(1)); with x sparse, a stored x(k,j) at most M.
  Bound product(const FnExpr &e, const FnExpr &a, const FnExpr &x) {
    Bound ba = walk(a);
    std::string all = std::to_string(entries(e.type)) + "LL";
    if (e.type.format == FnFormat::RowCOO)
      return {"sfn_min(" + ba.first + ", " + all + ")", key('h', ba.second, 0)};
    std::string n = std::to_string(e.type.shape[1].value) + "LL";
    if (!x.type.isSparse())
      return {"sfn_min(" + ba.first + " * " + n + ", " + all + ")",
              key('s', ba.second, 0)};
    Bound bx = walk(x);
    std::string m = std::to_string(e.type.shape[0].value) + "LL";
    return {"sfn_min(sfn_min(" + ba.first + " * " + n + ", " + bx.first +
                " * " + m + "), " + all + ")",
            key('@', ba.second, bx.second)};
  }

  llvm::StringMap<const FnExpr *> locals;
  std::map<std::string, size_t> params;
  std::map<std::tuple<char, int, int>, int> keys;
  llvm::DenseMap<const FnExpr *, Bound> memo;
};

} // namespace

std::vector<FnMemref> sparsec::fnKernelMemrefs(const FnDecl &fn) {
  std::vector<FnMemref> out;
  for (size_t p = 0; p < fn.params.size(); ++p) {
    const FnParam &param = fn.params[p];
    if (param.type.isSparse())
      sparseArrays(out, param.type, param.name, param.name + "_nnz", int(p));
    else
      denseArray(out, param.type, param.name, int(p));
  }
  if (fn.resultType.isCounted())
    sparseArrays(out, fn.resultType, "out", "out_cap", -1);
  else
    denseArray(out, fn.resultType, "out", -1);
  return out;
}

std::string sparsec::fnSymbolPrefix(StringRef inputFile, StringRef override) {
  std::string name = !override.empty() ? override.str()
                     : inputFile == "-"
                         ? std::string("sdl")
                         : llvm::sys::path::stem(inputFile).str();
  for (char &c : name)
    if (!llvm::isAlnum(c) && c != '_')
      c = '_';
  if (name.empty() || llvm::isDigit(name[0]))
    name.insert(name.begin(), '_');
  return name;
}

void sparsec::emitFnGlue(const ast::Module &m, StringRef prefix,
                         llvm::raw_ostream &os) {
  os << "/* Generated by sparsec: entry points of the fn kernels. */\n"
     << sparsec::fnGluePrologue() << "\n";
  os << "const char *" << prefix << "_last_error(void) { return sfn_message; "
     << "}\n";
  for (const std::shared_ptr<FnDecl> &fnp : m.fns) {
    const FnDecl &fn = *fnp;
    std::string kernel = fnKernelSymbol(prefix, fn.name);
    std::vector<FnMemref> arrays = fnKernelMemrefs(fn);
    std::string q = "\"" + prefix.str() + "_" + fn.name + "\"";
    bool sparseResult = fn.resultType.isCounted();
    os << "\n"
       << (sparseResult ? "int64_t" : "void") << " _mlir_ciface_" << kernel
       << "(";
    for (size_t i = 0; i < arrays.size(); ++i)
      os << (i ? ", " : "") << "sfn_memref *";
    os << ");\n\n" << signature(fn, prefix) << " {\n";
    os << "  sfn_memref sfn_m[" << arrays.size() << "];\n"
       << "  int sfn_st;\n";
    for (const std::string &s : fn.symbols)
      os << "  if ((sfn_st = sfn_check_dim(" << q << ", \"" << s << "\", " << s
         << ")))\n    return sfn_st;\n";
    // Check the arrays of every parameter.
    for (const FnParam &p : fn.params) {
      const FnType &t = p.type;
      if (t.format == FnFormat::Dense) {
        os << "  if ((sfn_st = sfn_check_ptr(" << q << ", \"" << p.name
           << "\", " << p.name << ", 1";
        for (const FnDim &d : t.shape)
          os << " * " << dimExpr(d);
        os << ")))\n    return sfn_st;\n";
      } else if (t.format == FnFormat::NM) {
        os << "  if ((sfn_st = sfn_check_nm(" << q << ", \"" << p.name << "\", "
           << p.name << "_crd, " << p.name << "_val, "
           << t.shape[0].value * t.shape[1].value / t.blockCols << ", "
           << t.blockRows << ", " << t.blockCols << ")))\n    return sfn_st;\n";
      } else if (t.format == FnFormat::COO && t.getRank() == 3) {
        os << "  if ((sfn_st = sfn_check_coo3(" << q << ", \"" << p.name
           << "\", " << p.name << "_indices, " << p.name << "_val, " << p.name
           << "_nnz, " << dimExpr(t.shape[0]) << ", " << dimExpr(t.shape[1])
           << ", " << dimExpr(t.shape[2]) << ")))\n    return sfn_st;\n";
      } else if (isCoo(t.format)) {
        os << "  if ((sfn_st = sfn_check_coo(" << q << ", \"" << p.name
           << "\", " << p.name << "_indices, " << p.name << "_val, " << p.name
           << "_nnz, " << dimExpr(t.shape[0]) << ", " << dimExpr(t.shape[1])
           << ", " << (t.format == FnFormat::COO ? 2 : 1)
           << ")))\n    return sfn_st;\n";
      } else {
        os << "  if ((sfn_st = sfn_check_compressed(" << q << ", \"" << p.name
           << "\", " << p.name << "_pos, " << p.name << "_crd, " << p.name
           << "_val, " << p.name << "_nnz, " << t.outerSize() << ", "
           << t.innerSize() << ")))\n    return sfn_st;\n";
      }
    }
    for (const auto &[name, sizes] : indexBounds(fn))
      for (const std::string &size : sizes)
        for (const FnParam &p : fn.params)
          if (p.name == name)
            os << "  if ((sfn_st = sfn_check_index(" << q << ", \"" << name
               << "\", " << name << ", " << dimExpr(p.type.shape[0]) << ", "
               << size << ")))\n    return sfn_st;\n";
    if (sparseResult) {
      bool indices = fn.resultType.format == FnFormat::Indices;
      std::string bound = NnzBound(fn).of(*fn.ret);
      os << "  if (!out_nnz)\n    return sfn_fail(1, \"%s: 'out_nnz' is "
            "NULL\", "
         << q << ");\n"
         << "  if (out_cap < " << bound << ")\n"
         << "    return sfn_fail(2, \"%s: out_cap = %lld is less than the "
            "bound %lld of the "
         << (indices ? "nonzeros" : "result's entries") << "\", " << q
         << ", (long long)out_cap, (long long)(" << bound << "));\n";
      if (indices)
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out\", out, out_cap)))\n    return sfn_st;\n";
      else if (!isCoo(fn.resultType.format))
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out_pos\", out_pos, "
           << "1)) || (sfn_st = sfn_check_ptr(" << q
           << ", \"out_crd\", out_crd, out_cap)))\n    return sfn_st;\n";
      else
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out_indices\", out_indices, out_cap)))\n    return "
              "sfn_st;\n";
      if (!indices)
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out_val\", out_val, out_cap)))\n    return sfn_st;\n";
    } else {
      os << "  if ((sfn_st = sfn_check_ptr(" << q << ", \"out\", out, 1";
      for (const FnDim &d : fn.resultType.shape)
        os << " * " << dimExpr(d);
      os << ")))\n    return sfn_st;\n";
    }
    // A COO value has a positions array [0, nnz] that C callers do not pass.
    for (const FnMemref &a : arrays)
      if (StringRef(a.name).ends_with("_pos") &&
          isCoo(a.param < 0 ? fn.resultType.format
                            : fn.params[a.param].type.format))
        os << "  int64_t " << a.name << "[2] = {0, "
           << (a.param < 0 ? std::string("out_cap")
                           : fn.params[a.param].name + "_nnz")
           << "};\n";
    for (size_t i = 0; i < arrays.size(); ++i) {
      const FnMemref &a = arrays[i];
      std::string ptr = a.name;
      StringRef n(a.name);
      std::string base = n.substr(0, n.rfind('_')).str();
      std::string count =
          a.param < 0 ? "out_cap"
                      : (a.param >= 0 && fn.params[a.param].type.isSparse()
                             ? base + "_nnz"
                             : "");
      // COO coordinates of dimension d: row d of the caller's indices.
      if (n.size() > 4 && n.drop_back().ends_with("_crd") &&
          llvm::isDigit(n.back()))
        ptr = base + "_indices + " + n.back() + " * " + count;
      else if (a.param < 0 && fn.resultType.format == FnFormat::Indices &&
               n.ends_with("_crd"))
        ptr = "out";
      os << "  {\n    int64_t sizes[] = {";
      for (size_t d = 0; d < a.sizes.size(); ++d)
        os << (d ? ", " : "") << a.sizes[d];
      if (a.sizes.empty())
        os << "0";
      os << "};\n    sfn_desc(&sfn_m[" << i << "], " << ptr << ", "
         << a.sizes.size() << ", sizes);\n  }\n";
    }
    // Results may not overlap inputs (restrict in the kernel).
    auto elemBytes = [&](const FnMemref &a) {
      ElemType e = a.param >= 0 ? fn.params[a.param].type.elem
                                : fn.resultType.elem;
      return a.isIndex || e == ElemType::F64 ? 8 : 4;
    };
    for (size_t r = 0; r < arrays.size(); ++r) {
      if (arrays[r].param >= 0)
        continue;
      for (size_t i = 0; i < arrays.size(); ++i) {
        const FnMemref &in = arrays[i];
        // A COO's positions are a local array, not the caller's.
        if (in.param < 0 || (StringRef(in.name).ends_with("_pos") &&
                             isCoo(fn.params[in.param].type.format)))
          continue;
        os << "  if (sfn_overlap(&sfn_m[" << r << "], " << arrays[r].shape.size()
           << ", " << elemBytes(arrays[r]) << ", &sfn_m[" << i << "], "
           << in.shape.size() << ", " << elemBytes(in)
           << "))\n    return sfn_fail(2, \"%s: result array '"
           << arrays[r].name << "' overlaps input array '" << in.name
           << "' (results may not alias inputs)\", " << q << ");\n";
      }
    }
    os << "  " << (sparseResult ? "*out_nnz = " : "") << "_mlir_ciface_"
       << kernel << "(";
    for (size_t i = 0; i < arrays.size(); ++i)
      os << (i ? ", " : "") << "&sfn_m[" << i << "]";
    os << ");\n  return 0;\n}\n";
  }
}

void sparsec::emitFnHeader(const ast::Module &m, StringRef prefix,
                           llvm::raw_ostream &os) {
  std::string guard = "SPARSEC_FN_" + StringRef(prefix).upper() + "_H";
  os << "/* Generated by sparsec: the fn kernels of this library "
        "(docs/sparse-ops.md). */\n"
     << "#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
     << "/* Every kernel returns 0 or a status code; " << prefix
     << "_last_error() then says\n   what was wrong (thread-local). */\n"
     << "enum {\n  " << prefix << "_OK = 0,\n  " << prefix
     << "_ERR_NULL = 1,         /* a required pointer is NULL */\n  " << prefix
     << "_ERR_INVALID_ARG = 2,  /* a size, nnz or capacity is wrong */\n  "
     << prefix
     << "_ERR_OUT_OF_RANGE = 3, /* a coordinate is outside the shape */\n  "
     << prefix
     << "_ERR_FORMAT = 6        /* positions/coordinates out of order */\n};\n"
     << "const char *" << prefix << "_last_error(void);\n";
  for (const std::shared_ptr<FnDecl> &fnp : m.fns) {
    const FnDecl &fn = *fnp;
    os << "\n/* fn " << fn.name << "(";
    for (size_t i = 0; i < fn.params.size(); ++i)
      os << (i ? ", " : "") << fn.params[i].name << " : "
         << fnTypeToString(fn.params[i].type);
    os << ") -> " << fnTypeToString(fn.resultType) << "\n";
    for (const FnParam &p : fn.params) {
      const FnType &t = p.type;
      os << " *   " << p.name << ": ";
      if (t.format == FnFormat::Dense)
        os << (t.isInteger() ? "indices " : "row-major ") << fnTypeToString(t);
      else if (t.format == FnFormat::COO)
        os << "coalesced COO, " << p.name << "_indices[" << t.getRank() << "]["
           << p.name << "_nnz] ("
           << (t.getRank() == 2 ? "rows, then columns"
                                : "each dimension's coordinates in turn")
           << "), " << p.name << "_val[" << p.name << "_nnz]";
      else if (t.format == FnFormat::RowCOO)
        os << "hybrid COO (sparse rows), " << p.name << "_indices[" << p.name
           << "_nnz] (sorted unique rows), " << p.name << "_val[" << p.name
           << "_nnz][" << t.shape[1].value << "]";
      else if (t.format == FnFormat::NM)
        os << t.blockRows << ":" << t.blockCols << " structured, " << p.name
           << "_crd[" << t.shape[0].value << "]["
           << t.shape[1].value / t.blockCols << "][" << t.blockRows
           << "] (the columns of each group's values "
           << "within the group, increasing), " << p.name << "_val[same]";
      else if (t.format == FnFormat::BSR)
        os << "BSR of " << t.blockRows << "x" << t.blockCols << " blocks, "
           << p.name << "_pos[" << t.outerSize() + 1 << "], " << p.name
           << "_crd[" << p.name << "_nnz] (block columns), " << p.name
           << "_val[" << p.name << "_nnz][" << t.blockRows << "]["
           << t.blockCols << "]";
      else
        os << (t.format == FnFormat::CSR ? "CSR, " : "CSC, ") << p.name
           << "_pos[" << t.outerSize() + 1 << "], " << p.name << "_crd["
           << p.name << "_nnz], " << p.name << "_val[" << p.name << "_nnz]";
      os << "\n";
    }
    if (fn.resultType.format == FnFormat::Indices) {
      os << " *   result: out[out_cap][" << fn.resultType.shape[1].value
         << "], the coordinates of the nonzero values in row-major order;\n"
         << " *   out_cap >= " << readable(NnzBound(fn).of(*fn.ret))
         << "; *out_nnz receives their number.\n";
    } else if (fn.resultType.isSparse()) {
      FnFormat f = fn.resultType.format;
      std::string bound = readable(NnzBound(fn).of(*fn.ret));
      os << " *   result: the arrays out_* of " << fnTypeToString(fn.resultType)
         << " with room for out_cap entries\n *   ("
         << (f == FnFormat::COO
                 ? "out_indices[" + std::to_string(fn.resultType.getRank()) +
                       "][out_cap], "
             : f == FnFormat::RowCOO ? "out_indices[out_cap], "
                                     : "out_pos, out_crd[out_cap], ")
         << "out_val[out_cap"
         << (f == FnFormat::RowCOO
                 ? "][" + std::to_string(fn.resultType.shape[1].value)
             : f == FnFormat::BSR
                 ? "][" + std::to_string(fn.resultType.blockRows) + "][" +
                       std::to_string(fn.resultType.blockCols)
                 : std::string())
         << "]); out_cap >= " << bound
         << ";\n *   *out_nnz receives the number of entries"
         << (f == FnFormat::RowCOO ? " (rows)" : "") << ".\n";
    } else
      os << " *   out: row-major " << fnTypeToString(fn.resultType) << "\n";
    os << " */\n" << signature(fn, prefix) << ";\n";
  }
  os << "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* " << guard << " */\n";
}

void sparsec::emitFnExports(StringRef prefix, llvm::raw_ostream &os) {
  os << "    " << prefix << "_*;\n";
}
