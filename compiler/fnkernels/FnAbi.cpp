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
  return e == ElemType::F64 ? "double" : "float";
}

bool isCoo(FnFormat f) { return f == FnFormat::COO || f == FnFormat::RowCOO; }

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
  if (t.format == FnFormat::COO) {
    add("pos", true, 2, "2");
    add("crd0", true, dyn, n);
    add("crd1", true, dyn, n);
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
    return t.format == FnFormat::RowCOO
               ? t.shape[0].value
               : t.shape[0].value * t.shape[1].value / t.entryValues();
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

// clang-format off
const char *kGluePrologue = R"C(#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* A memref descriptor of any rank <= 8: sizes in dims[0, rank), strides in
   dims[rank, 2 * rank), the layout of MLIR's StridedMemRefType. */
typedef struct {
  void *allocated, *aligned;
  int64_t offset;
  int64_t dims[16];
} sfn_memref;

static __thread char sfn_message[512];

static int sfn_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sfn_message, sizeof sfn_message, fmt, ap);
  va_end(ap);
  return status;
}

static int64_t sfn_min(int64_t a, int64_t b) { return a < b ? a : b; }

static void sfn_desc(sfn_memref *m, const void *p, int rank,
                     const int64_t *sizes) {
  int64_t stride = 1;
  m->allocated = m->aligned = (void *)p;
  m->offset = 0;
  for (int d = rank - 1; d >= 0; --d) {
    m->dims[d] = sizes[d];
    m->dims[rank + d] = stride;
    stride *= sizes[d];
  }
}

/* Whether the arrays of descriptors a and b (rank ra, rb; elements of ea, eb
   bytes) share a byte: the kernels read inputs and write results through
   restrict pointers. */
static int sfn_overlap(const sfn_memref *a, int ra, int ea,
                       const sfn_memref *b, int rb, int eb) {
  int64_t na = ea, nb = eb;
  for (int d = 0; d < ra; ++d)
    na *= a->dims[d];
  for (int d = 0; d < rb; ++d)
    nb *= b->dims[d];
  if (!a->aligned || !b->aligned || na == 0 || nb == 0)
    return 0;
  return (const char *)a->aligned < (const char *)b->aligned + nb &&
         (const char *)b->aligned < (const char *)a->aligned + na;
}

/* A pointer may be NULL only for an empty array. */
static int sfn_check_ptr(const char *fn, const char *name, const void *p,
                         int64_t n) {
  if (!p && n > 0)
    return sfn_fail(1, "%s: '%s' is NULL", fn, name);
  return 0;
}

static int sfn_check_dim(const char *fn, const char *name, int64_t v) {
  if (v < 0 || v > ((int64_t)1 << 31))
    return sfn_fail(2, "%s: dimension %s = %lld is outside [0, 2^31]", fn,
                    name, (long long)v);
  return 0;
}

/* Compressed arrays (CSR rows / CSC columns): pos[0] = 0, non-decreasing,
   pos[outer] = nnz, strictly increasing coordinates < inner per segment. */
static int sfn_check_compressed(const char *fn, const char *arg,
                                const int64_t *pos, const int64_t *crd,
                                const void *val, int64_t nnz, int64_t outer,
                                int64_t inner) {
  int64_t i, k;
  if (nnz < 0 || nnz > outer * inner)
    return sfn_fail(2, "%s: %s_nnz = %lld is outside [0, %lld]", fn, arg,
                    (long long)nnz, (long long)(outer * inner));
  if (!pos || sfn_check_ptr(fn, "crd", crd, nnz) ||
      sfn_check_ptr(fn, "val", val, nnz))
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  if (pos[outer] != nnz)
    return sfn_fail(2, "%s: %s_pos[%lld] = %lld but %s_nnz = %lld", fn, arg,
                    (long long)outer, (long long)pos[outer], arg,
                    (long long)nnz);
  if (pos[0] != 0)
    return sfn_fail(6, "%s: %s_pos[0] = %lld, expected 0", fn, arg,
                    (long long)pos[0]);
  for (i = 0; i < outer; ++i) {
    if (pos[i + 1] < pos[i] || pos[i + 1] > nnz)
      return sfn_fail(6, "%s: %s_pos[%lld] = %lld is out of order or past "
                      "%s_nnz = %lld", fn, arg, (long long)(i + 1),
                      (long long)pos[i + 1], arg, (long long)nnz);
    for (k = pos[i]; k < pos[i + 1]; ++k) {
      if (crd[k] < 0 || crd[k] >= inner)
        return sfn_fail(3, "%s: %s_crd[%lld] = %lld is outside [0, %lld)", fn,
                        arg, (long long)k, (long long)crd[k],
                        (long long)inner);
      if (k > pos[i] && crd[k] <= crd[k - 1])
        return sfn_fail(6, "%s: %s_crd is not strictly increasing in "
                        "segment %lld", fn, arg, (long long)i);
    }
  }
  return 0;
}

/* @nm(n, m): crd[groups][n], in each group n strictly increasing column
   offsets in [0, m). */
static int sfn_check_nm(const char *fn, const char *arg, const int64_t *crd,
                        const void *val, int64_t groups, int64_t n,
                        int64_t m) {
  int64_t g, k;
  if (!crd || !val)
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  for (g = 0; g < groups; ++g)
    for (k = 0; k < n; ++k) {
      int64_t c = crd[g * n + k];
      if (c < 0 || c >= m)
        return sfn_fail(3, "%s: %s_crd[%lld] = %lld is outside [0, %lld)",
                        fn, arg, (long long)(g * n + k), (long long)c,
                        (long long)m);
      if (k > 0 && c <= crd[g * n + k - 1])
        return sfn_fail(6, "%s: %s_crd is not strictly increasing in group "
                        "%lld", fn, arg, (long long)g);
    }
  return 0;
}

/* Coalesced COO: indices[2][nnz], in range, strictly increasing in row-major
   order (sorted, no duplicates). */
static int sfn_check_coo(const char *fn, const char *arg, const int64_t *idx,
                         const void *val, int64_t nnz, int64_t rows,
                         int64_t cols, int sparse_dims) {
  /* sparse_dims = 1 (@coo(1)): idx[nnz] rows, each with cols values. */
  int64_t k, entries = sparse_dims == 2 ? rows * cols : rows;
  if (nnz < 0 || nnz > entries)
    return sfn_fail(2, "%s: %s_nnz = %lld is outside [0, %lld]", fn, arg,
                    (long long)nnz, (long long)entries);
  if (sfn_check_ptr(fn, "indices", idx, nnz) ||
      sfn_check_ptr(fn, "val", val, sparse_dims == 2 ? nnz : nnz * cols))
    return sfn_fail(1, "%s: an array of '%s' is NULL", fn, arg);
  for (k = 0; k < nnz; ++k) {
    int64_t r = idx[k], c = sparse_dims == 2 ? idx[nnz + k] : 0;
    if (sparse_dims == 1) {
      if (r < 0 || r >= rows)
        return sfn_fail(3, "%s: row %lld of '%s' is outside [0, %lld)", fn,
                        (long long)r, arg, (long long)rows);
      if (k > 0 && r <= idx[k - 1])
        return sfn_fail(6, "%s: '%s' is not coalesced (row %lld is out of "
                        "order or a duplicate)", fn, arg, (long long)r);
      continue;
    }
    if (r < 0 || r >= rows || c < 0 || c >= cols)
      return sfn_fail(3,
                      "%s: entry %lld of '%s' = (%lld, %lld) is outside "
                      "%lldx%lld",
                      fn, (long long)k, arg, (long long)r, (long long)c,
                      (long long)rows, (long long)cols);
    if (k > 0 && (r < idx[k - 1] || (r == idx[k - 1] && c <= idx[nnz + k - 1])))
      return sfn_fail(6,
                      "%s: '%s' is not coalesced (entry %lld is out of "
                      "order or a duplicate)",
                      fn, arg, (long long)k);
  }
  return 0;
}
)C";
// clang-format on

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
  if (fn.resultType.isSparse())
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
     << kGluePrologue << "\n";
  os << "const char *" << prefix << "_last_error(void) { return sfn_message; "
     << "}\n";
  for (const std::shared_ptr<FnDecl> &fnp : m.fns) {
    const FnDecl &fn = *fnp;
    std::string kernel = fnKernelSymbol(prefix, fn.name);
    std::vector<FnMemref> arrays = fnKernelMemrefs(fn);
    std::string q = "\"" + prefix.str() + "_" + fn.name + "\"";
    bool sparseResult = fn.resultType.isSparse();
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
    if (sparseResult) {
      std::string bound = NnzBound(fn).of(*fn.ret);
      os << "  if (!out_nnz)\n    return sfn_fail(1, \"%s: 'out_nnz' is "
            "NULL\", "
         << q << ");\n"
         << "  if (out_cap < " << bound << ")\n"
         << "    return sfn_fail(2, \"%s: out_cap = %lld is less than the "
            "bound %lld of the result's entries\", "
         << q << ", (long long)out_cap, (long long)(" << bound << "));\n";
      if (!isCoo(fn.resultType.format))
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out_pos\", out_pos, "
           << "1)) || (sfn_st = sfn_check_ptr(" << q
           << ", \"out_crd\", out_crd, out_cap)))\n    return sfn_st;\n";
      else
        os << "  if ((sfn_st = sfn_check_ptr(" << q
           << ", \"out_indices\", out_indices, out_cap)))\n    return "
              "sfn_st;\n";
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
      if (n.ends_with("_crd0"))
        ptr = base + "_indices";
      else if (n.ends_with("_crd1"))
        ptr = base + "_indices + " + count;
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
        os << "row-major " << fnTypeToString(t);
      else if (t.format == FnFormat::COO)
        os << "coalesced COO, " << p.name << "_indices[2][" << p.name
           << "_nnz] (rows, then columns), " << p.name << "_val[" << p.name
           << "_nnz]";
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
    if (fn.resultType.isSparse()) {
      FnFormat f = fn.resultType.format;
      std::string bound = NnzBound(fn).of(*fn.ret);
      // The bound as C text, readable: min(...) and no LL suffixes.
      bound = StringRef(bound).str();
      for (size_t at; (at = bound.find("sfn_min")) != std::string::npos;)
        bound.replace(at, 7, "min");
      for (size_t at; (at = bound.find("LL")) != std::string::npos;)
        bound.erase(at, 2);
      os << " *   result: the arrays out_* of " << fnTypeToString(fn.resultType)
         << " with room for out_cap entries\n *   ("
         << (f == FnFormat::COO      ? "out_indices[2][out_cap], "
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
