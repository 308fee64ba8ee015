//===- AST.h - Abstract syntax tree of the sparsec DSL ----------*- C++ -*-===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The AST produced by the parser and annotated by Sema. After a successful
// sparsec::parseAndCheck() every field marked "resolved by Sema" is filled in
// and a later stage (MLIRGen) can walk
//
//   Module -> Model -> inputs   (name, isTarget, resolved Type)
//                   -> params   (name, resolved Layer)
//                   -> forward  (AssignStmt: name + typed Expr tree)
//                   -> loss     (LossKind + operand references)
//                   -> optimizer(resolved Optimizer)
//                   -> output   (outputName / output reference / outputType)
//
// without re-checking anything. Every node keeps its llvm::SMLoc.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_AST_H
#define SPARSEC_FRONTEND_AST_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/SMLoc.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace sparsec {
namespace ast {

/// The batch dimension in a Type's shape. Its size is chosen at run time.
constexpr int64_t kBatch = -1;
/// Largest number of elements of a parameter, and of one example (batch row)
/// of a value: 2^31.
constexpr int64_t kMaxElements = int64_t(1) << 31;
/// Largest nesting depth of a forward expression.
constexpr unsigned kMaxExprDepth = 256;

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

enum class ElemType { Invalid, F32, F64, F16, BF16, I8, I32, I64 };

/// "f32", "i64", ...; "?" for Invalid.
llvm::StringRef elemTypeName(ElemType t);
/// Inverse of elemTypeName(); Invalid for an unknown name.
ElemType elemTypeFromName(llvm::StringRef name);
bool isIntegerElemType(ElemType t);

/// A value type: element type and shape. Batch dimensions are kBatch. A type
/// with elem == Invalid marks a value whose checking failed (an error was
/// already reported; no further error should be derived from it).
struct Type {
  ElemType elem = ElemType::Invalid;
  std::vector<int64_t> shape;

  Type() = default;
  Type(ElemType elem, std::vector<int64_t> shape)
      : elem(elem), shape(std::move(shape)) {}

  bool isValid() const { return elem != ElemType::Invalid; }
  unsigned getRank() const { return static_cast<unsigned>(shape.size()); }
  bool hasBatchDim() const { return !shape.empty() && shape[0] == kBatch; }
  /// A sequence-first value [T, B, ...] (rank 3 or more).
  bool isSequenceFirst() const {
    return shape.size() >= 3 && shape[0] != kBatch && shape[1] == kBatch;
  }
  bool operator==(const Type &o) const {
    return elem == o.elem && shape == o.shape;
  }
  bool operator!=(const Type &o) const { return !(*this == o); }
};

/// "f32[B, 784]"; the batch dimension prints as `batchName`. "?" if invalid.
std::string typeToString(const Type &t, llvm::StringRef batchName = "B");
/// Shortest decimal text that reads back as exactly `v` ("0.9", "1e-05").
std::string formatDouble(double v);

//===----------------------------------------------------------------------===//
// Declarations of inputs and targets
//===----------------------------------------------------------------------===//

enum class EncodingKind { None, COO, CSR, CSC, BSR, NM };
/// "coo", "csr", ...; "" for None.
llvm::StringRef encodingName(EncodingKind k);

/// `@coo`, `@coo(k)`, `@csr`, `@csc`, `@bsr(r, c)`, `@nm(n, m)`.
struct Encoding {
  EncodingKind kind = EncodingKind::None;
  std::vector<int64_t> params;
  llvm::SMLoc loc; // of the '@'
};

/// One dimension as written: an integer or a symbol.
struct DimSpec {
  llvm::SMLoc loc;
  bool isSymbolic = false;
  int64_t value = 0;  // when !isSymbolic
  std::string symbol; // when isSymbolic
};

/// A type as written: `f32[B, 784] @csr`.
struct TypeSpec {
  llvm::SMLoc loc; // of the element type
  ElemType elem = ElemType::Invalid;
  std::vector<DimSpec> dims;
  Encoding encoding;
};

/// `input NAME : TYPE` or `target NAME : TYPE`.
struct InputDecl {
  llvm::SMLoc loc; // of the name
  std::string name;
  bool isTarget = false;
  TypeSpec spec;
  Type type; // resolved by Sema: shape[0] == kBatch
};

//===----------------------------------------------------------------------===//
// Call arguments of parameters, losses and optimizers
//===----------------------------------------------------------------------===//

/// One integer of an inline list (or of a connectivity file) and where it is.
struct IntEntry {
  int64_t value;
  llvm::SMLoc loc;
};

/// A literal argument value.
struct ArgValue {
  enum class Kind { Int, Float, Bool, Ident, String, List };
  Kind kind = Kind::Int;
  llvm::SMLoc loc;
  int64_t intValue = 0;
  double floatValue = 0.0;
  bool boolValue = false;
  std::string text; // identifier name or (unescaped) string contents
  // List: `[[1, 2], [3, 4]]`, a list of integer lists; a flat list
  // `[1, 2]` is one row with `flat` set.
  std::vector<std::vector<IntEntry>> rows;
  bool flat = false;

  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  double getNumber() const {
    return kind == Kind::Int ? static_cast<double>(intValue) : floatValue;
  }
  std::string toString() const;
};

/// A positional (`key` empty) or keyword (`key = value`) argument.
struct Argument {
  llvm::SMLoc loc; // of the key, or of the value when positional
  std::string key;
  ArgValue value;
  bool isKeyword() const { return !key.empty(); }
};

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

enum class LayerKind {
  Linear,
  SparseLinear,
  Embedding,
  EmbeddingBag,
  Tensor,
  KWinners,
  MaskedLinear,
  KWinners2d,
  MaskedConv2d,
  MaskedLstm
};

/// How embedding_bag reduces the rows of a bag.
enum class BagMode { Sum, Mean, Max };
llvm::StringRef bagModeName(BagMode m);
llvm::StringRef layerKindName(LayerKind k);

enum class InitKind { Zeros, Normal, Uniform };
llvm::StringRef initKindName(InitKind k);

/// Where a sparse_linear's pattern comes from.
enum class Pattern { Random, SmallWorld, User };
llvm::StringRef patternName(Pattern p);

/// A parameter with its arguments resolved (defaults applied). Fields not
/// used by a kind keep their default values.
struct Layer {
  LayerKind kind = LayerKind::Linear;
  // linear, sparse_linear: weight [out, in] and bias [out].
  int64_t in = 0;
  int64_t out = 0;
  bool bias = true;
  // sparse_linear: fraction of zero weights, and number of stored weights
  // nnz = llround((1.0 - sparsity) * double(in) * double(out)) >= 1.
  double sparsity = 0.0;
  int64_t nnz = 0;
  // sparse_linear: the pattern (random, small-world, or a user file read by
  // Sema into CSR form: positions [out + 1], coordinates [nnz]).
  Pattern pattern = Pattern::Random;
  std::string connectivityFile;
  std::vector<int32_t> userPositions, userCoordinates;
  // sparse_linear, dynamic = set | rigl ("" when static): prune-and-regrow
  // schedule; rigl: most gradient scores computed at once.
  std::string dynamic;
  int64_t deltaT = 0, tEnd = 0, maxSize = int64_t(1) << 20;
  // sparse_quantized_linear (a SparseLinear layer): the forward and the
  // input gradient use the weight fake-quantized to `quantBits`-bit signed
  // integers with one scale per output row; 0 for sparse_linear.
  int64_t quantBits = 0;
  double dropFraction = 0;
  // masked_linear (SemaMasked.cpp): dense weight times a 0/1 mask with
  // `nnz` ones (random, or `pattern` = User from a mask file), and its
  // pruning schedule ("" = none; magnitude | gradual | structured).
  std::string prune;
  double pruneInitial = 0, pruneFinal = 0;
  int64_t pruneBegin = 0, pruneEnd = 0, pruneEvery = 1;
  bool pruneGlobal = false;
  int64_t pruneNorm = 1; // structured: 1 (L1) or 2 (L2)
  // masked_conv2d (SemaConv.cpp): `in`/`out` channels, [height, width] of
  // kernel, stride, padding and dilation, and groups; the weight and mask
  // are stored as [out, in / groups * kh * kw] (PyTorch's weight viewed as
  // a matrix). Its mask and pruning use the masked_linear fields above.
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0},
      dilation{1, 1};
  int64_t groups = 1;
  /// masked_conv2d: columns of the weight matrix (in / groups * kh * kw).
  int64_t convCols() const { return in / groups * kernel[0] * kernel[1]; }
  // masked_lstm (SemaLstm.cpp): `in` = input_size, `out` = 4 * hidden (the
  // rows of weight_ih [4H, in] and weight_hh [4H, H]); `nnz` and `nnzHh`
  // are the ones of their masks; the value is the output sequence, or the
  // last hidden state with `lstmLast`.
  int64_t hidden = 0, nnzHh = 0;
  bool batchFirst = false, lstmLast = false;
  // embedding, embedding_bag: table [num, dim]; bag reduction.
  int64_t num = 0;
  int64_t dim = 0;
  BagMode mode = BagMode::Sum;
  // embedding, embedding_bag: PyTorch's options.
  int64_t paddingIdx = -1; // -1: none
  double maxNorm = 0;      // 0: no renormalisation
  double normType = 2;
  bool scaleGradByFreq = false;
  // kwinners (nupic.torch KWinners): n units (kept in `num`), k winners in
  // training and kInference at inference, boosting, duty cycle period;
  // kwinners2d (KWinners2d): `num` channels, winners per location (`local`,
  // k set here) or per sample (k set per input by kwinners2dK). Boost decay
  // (SemaKWinners.cpp): boost_strength * factor^floor(step / period) when
  // boostDecayPeriod > 0.
  double percentOn = 0, kInferenceFactor = 1.5, boostStrength = 1.0;
  int64_t dutyCyclePeriod = 1000, k = 0, kInference = 0;
  double boostStrengthFactor = 1.0;
  int64_t boostDecayPeriod = 0;
  bool local = false;
  /// kwinners, kwinners2d: the buffer's length (duty cycles, sample count,
  /// and the step count with boost decay).
  int64_t kwBufferSize() const {
    return num + 1 + (boostDecayPeriod > 0 ? 1 : 0);
  }
  /// kwinners, kwinners2d: (k, k_inference) when choosing among `units`
  /// values (SemaKWinners.cpp).
  std::pair<int64_t, int64_t> kwinnersK(int64_t units) const;
  // tensor: shape (rank 1 or 2), initializer and its std/bound.
  std::vector<int64_t> dims;
  InitKind init = InitKind::Normal;
  double scale = 0.01;
  // Every kind: total number of elements (weights + bias; dense count for
  // sparse_linear).
  int64_t numElements = 0;

  unsigned getRank() const { return static_cast<unsigned>(dims.size()); }
  /// Layers are applied as functions, `P(x)`; tensors are used as values.
  bool isAppliedLayer() const { return kind != LayerKind::Tensor; }
};

/// `param NAME : KIND(ARGS)`.
struct ParamDecl {
  llvm::SMLoc loc; // of the name
  std::string name;
  std::string kindName;
  llvm::SMLoc kindLoc;
  std::vector<Argument> args;
  bool isResolved = false; // set by Sema when `layer` is valid
  Layer layer;             // resolved by Sema
  /// Value type of a tensor parameter (f32[dims]); invalid otherwise.
  Type getTensorType() const;
};

//===----------------------------------------------------------------------===//
// Forward expressions
//===----------------------------------------------------------------------===//

struct AssignStmt;

/// What a name refers to; resolved by Sema.
struct ValueRef {
  enum class Kind { None, Input, Value, Param };
  Kind kind = Kind::None;
  const InputDecl *input = nullptr;  // Kind::Input (inputs and targets)
  const AssignStmt *value = nullptr; // Kind::Value: the reaching definition
  const ParamDecl *param = nullptr;  // Kind::Param (tensor parameters)

  bool isValid() const { return kind != Kind::None; }
  /// The referenced value's type (invalid if unresolved or erroneous).
  Type getType() const;
};

class Expr {
public:
  enum class Kind { Number, Ident, Call, Binary };

  Expr(Kind kind, llvm::SMLoc loc) : kind(kind), loc(loc) {}
  virtual ~Expr();
  Kind getKind() const { return kind; }
  llvm::SMLoc getLoc() const { return loc; }

  /// Resolved by Sema; invalid if the expression has an error.
  Type type;
  /// Height of the expression tree (a leaf has depth 1).
  unsigned depth = 1;

private:
  const Kind kind;
  llvm::SMLoc loc;
};

/// A number literal. Not a valid forward value (Sema rejects it); kept so the
/// error can be reported with its location.
class NumberExpr : public Expr {
public:
  NumberExpr(llvm::SMLoc loc, std::string spelling, double value)
      : Expr(Kind::Number, loc), spelling(std::move(spelling)), value(value) {}
  static bool classof(const Expr *e) { return e->getKind() == Kind::Number; }
  std::string spelling;
  double value;
};

/// A use of a name: an input, an earlier forward value or a tensor parameter.
class IdentExpr : public Expr {
public:
  IdentExpr(llvm::SMLoc loc, std::string name)
      : Expr(Kind::Ident, loc), name(std::move(name)) {}
  static bool classof(const Expr *e) { return e->getKind() == Kind::Ident; }
  std::string name;
  ValueRef ref; // resolved by Sema
};

/// What a call does; resolved by Sema.
enum class CallKind {
  Unresolved,
  Relu,
  Add,
  MatMul,
  Concat,
  Flatten,
  Unflatten,
  ApplyLayer
};

/// `callee(args)`: a builtin or the application of a layer parameter.
class CallExpr : public Expr {
public:
  CallExpr(llvm::SMLoc loc, std::string callee,
           std::vector<std::unique_ptr<Expr>> args)
      : Expr(Kind::Call, loc), callee(std::move(callee)),
        args(std::move(args)) {}
  static bool classof(const Expr *e) { return e->getKind() == Kind::Call; }
  std::string callee;
  std::vector<std::unique_ptr<Expr>> args;
  CallKind callKind = CallKind::Unresolved; // resolved by Sema
  const ParamDecl *param = nullptr;         // for ApplyLayer
};

enum class BinaryOp { Add, MatMul };
/// "+" or "@".
llvm::StringRef binaryOpSpelling(BinaryOp op);

/// `lhs + rhs` (same as add) or `lhs @ rhs` (same as matmul).
class BinaryExpr : public Expr {
public:
  BinaryExpr(llvm::SMLoc loc, BinaryOp op, std::unique_ptr<Expr> lhs,
             std::unique_ptr<Expr> rhs)
      : Expr(Kind::Binary, loc), op(op), lhs(std::move(lhs)),
        rhs(std::move(rhs)) {}
  static bool classof(const Expr *e) { return e->getKind() == Kind::Binary; }
  BinaryOp op;
  std::unique_ptr<Expr> lhs;
  std::unique_ptr<Expr> rhs;
};

//===----------------------------------------------------------------------===//
// Forward block, loss, optimizer, model
//===----------------------------------------------------------------------===//

/// `NAME = EXPR`. A name may be assigned several times; each AssignStmt is
/// one SSA value, and IdentExpr::ref points at the reaching definition.
struct AssignStmt {
  llvm::SMLoc loc; // of the name
  std::string name;
  std::unique_ptr<Expr> value;
  const Type &getType() const;
};

/// `return NAME`.
struct ReturnStmt {
  llvm::SMLoc loc; // of the 'return' keyword
  std::string name;
  llvm::SMLoc nameLoc;
  ValueRef ref; // resolved by Sema
};

/// `forward { STMT* }`.
struct ForwardBlock {
  llvm::SMLoc loc; // of the 'forward' keyword
  std::vector<std::unique_ptr<AssignStmt>> stmts;
  std::unique_ptr<ReturnStmt> ret; // optional
};

enum class LossKind { MSE, CrossEntropy, BCEWithLogits };
llvm::StringRef lossKindName(LossKind k);

/// `loss = KIND(prediction, target)`.
struct LossDecl {
  llvm::SMLoc loc; // of the 'loss' keyword
  std::string kindName;
  llvm::SMLoc kindLoc;
  std::vector<Argument> args;
  // Resolved by Sema.
  bool isResolved = false;
  LossKind kind = LossKind::MSE;
  std::string predName;
  std::string targetName;
  ValueRef pred;   // a forward value or an input
  ValueRef target; // always an InputDecl with isTarget
  Type predType;
  Type targetType;
};

enum class OptimizerKind { SGD, Adagrad, RowwiseAdagrad, RMSprop, Adam, AdamW };
llvm::StringRef optimizerKindName(OptimizerKind k);

/// What an optimizer does with embedding rows a batch did not touch.
enum class SparseMode { Lazy, Catchup, Dense };
llvm::StringRef sparseModeName(SparseMode m);

/// Learning-rate schedule (after the optional linear warm-up).
enum class ScheduleKind { Constant, Step, Cosine };
llvm::StringRef scheduleKindName(ScheduleKind k);

/// Resolved optimizer settings (PyTorch names, semantics and defaults).
/// Fields a kind does not use keep their defaults.
struct Optimizer {
  OptimizerKind kind = OptimizerKind::SGD;
  double lr = 0.0;
  double momentum = 0.0;  // sgd, rmsprop
  double dampening = 0.0; // sgd
  double weightDecay = 0.0;
  bool nesterov = false;               // sgd
  double eps = 0.0;                    // adagrad, rmsprop, adam(w)
  double lrDecay = 0.0;                // adagrad
  double initialAccumulatorValue = 0.0; // adagrad, rowwise_adagrad
  double alpha = 0.0;                  // rmsprop
  bool centered = false;               // rmsprop
  double beta1 = 0.0, beta2 = 0.0;     // adam(w)
  bool amsgrad = false;                // adam(w)
  // Every kind: untouched embedding rows, clipping, schedule.
  SparseMode sparse = SparseMode::Lazy;
  double clipGradNorm = 0.0; // 0: no clipping
  ScheduleKind schedule = ScheduleKind::Constant;
  int64_t stepSize = 0;  // step: decay every step_size steps
  double gamma = 0.1;    // step: decay factor
  int64_t tMax = 0;      // cosine: period in steps
  double etaMin = 0.0;   // cosine: final lr
  int64_t warmup = 0;    // linear warm-up steps (0: none)
  /// Embedding rows are stepped by the generated fused row update (sum of
  /// each id's gradient rows + the optimizer step in one pass). Resolved:
  /// the user's `fused`, else true wherever it applies (lazy, no clipping).
  bool fused = true;
};

/// `optimizer = KIND(ARGS)`.
struct OptimizerDecl {
  llvm::SMLoc loc; // of the 'optimizer' keyword
  std::string kindName;
  llvm::SMLoc kindLoc;
  std::vector<Argument> args;
  bool isResolved = false;
  Optimizer optimizer; // resolved by Sema
};

/// `model NAME { ... }`.
struct Model {
  llvm::SMLoc loc; // of the name
  std::string name;
  /// Inputs and targets in declaration order.
  std::vector<std::unique_ptr<InputDecl>> inputs;
  std::vector<std::unique_ptr<ParamDecl>> params;
  std::unique_ptr<ForwardBlock> forward;
  std::unique_ptr<LossDecl> loss;
  std::unique_ptr<OptimizerDecl> optimizer;
  /// Set by the parser when this model had syntax errors; Sema skips it.
  bool hasSyntaxErrors = false;

  // Resolved by Sema.
  std::string batchSymbol; // e.g. "B"
  std::string outputName;  // `return NAME`, else the loss prediction
  ValueRef output;
  Type outputType;

  const InputDecl *findInput(llvm::StringRef name) const;
  const ParamDecl *findParam(llvm::StringRef name) const;
};

struct FnDecl; // FnAST.h

/// A source file: models and free-standing kernels (`fn`, FnAST.h).
struct Module {
  std::vector<std::unique_ptr<Model>> models;
  std::vector<std::shared_ptr<FnDecl>> fns;
  /// The source manager the locations refer to (used by dump()).
  const llvm::SourceMgr *sourceMgr = nullptr;
};

/// Prints the readable indented tree used by `sparsec --emit=ast`.
void dump(const Module &m, llvm::raw_ostream &os);

} // namespace ast
} // namespace sparsec

#endif // SPARSEC_FRONTEND_AST_H
