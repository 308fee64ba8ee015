//===- GlueEmitter.cpp - C glue and header of a model library -------------===//
//
// Emits the C source compiled into model.so next to the MLIR-generated
// object: the static runtime descriptor of the model, two kernel trampolines
// that build MLIR memref descriptors from the runtime's buffers (all math is
// in the generated object), and the public `<Model>_*` entry points, which
// forward to the runtime. Also emits the matching C99 header and the linker
// version script.
//
//===----------------------------------------------------------------------===//

#include "codegen/ModelAbi.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdio>
#include <set>

using namespace sparsec;

namespace {

const char *cType(llvm::StringRef dtype) {
  if (dtype == "f32")
    return "float";
  if (dtype == "f64")
    return "double";
  if (dtype == "i32")
    return "int32_t";
  return "int64_t";
}

const char *dtypeEnum(llvm::StringRef dtype) {
  if (dtype == "f32")
    return "SPARSEC_F32";
  if (dtype == "f64")
    return "SPARSEC_F64";
  if (dtype == "i32")
    return "SPARSEC_I32";
  return "SPARSEC_I64";
}

const char *layoutEnum(llvm::StringRef kind) {
  if (kind == "csr")
    return "SPARSEC_LAYOUT_CSR";
  if (kind == "embedding")
    return "SPARSEC_LAYOUT_EMBEDDING";
  if (kind == "buffer" || kind == "mask")
    return "SPARSEC_LAYOUT_BUFFER";
  return "SPARSEC_LAYOUT_DENSE";
}

const char *initEnum(llvm::StringRef init) {
  if (init == "zeros")
    return "SPARSEC_INIT_ZEROS";
  if (init == "uniform")
    return "SPARSEC_INIT_UNIFORM";
  if (init == "normal")
    return "SPARSEC_INIT_NORMAL";
  return "SPARSEC_INIT_FAN_IN_UNIFORM";
}

/// A double as C source text that reads back exactly.
std::string exact(double v) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string dims(const std::vector<int64_t> &shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}

std::string shapeDoc(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "][" : "") +
         (shape[i] == kAbiBatch ? std::string("batch") : std::to_string(shape[i]));
  return s + "]";
}

/// The designated initializer of the runtime's sparsec_optimizer_desc.
std::string optimizerInit(const ModelAbi &abi) {
  std::string s = "{.kind = SPARSEC_OPT_" + llvm::StringRef(abi.optimizer).upper();
  // DSL/IR names that differ from the C field names.
  auto field = [](llvm::StringRef name) -> std::string {
    if (name == "clip_grad_norm")
      return "max_grad_norm";
    if (name == "warmup")
      return "warmup_steps";
    return name.str();
  };
  for (const auto &[name, value] : abi.hyper)
    s += ", ." + field(name) + " = " + exact(value);
  s += ", .sparse_mode = SPARSEC_SPARSE_" +
       llvm::StringRef(abi.sparseMode).upper();
  s += ", .schedule = SPARSEC_SCHED_" + llvm::StringRef(abi.schedule).upper();
  return s + "}";
}

/// One memref descriptor argument of a generated kernel.
struct KernelArg {
  std::vector<int64_t> shape; // kAbiBatch = the call's batch size
  std::string comment;
};

/// The kernel arguments of `forward` (train = false) or `train`.
std::vector<KernelArg> kernelArgs(const ModelAbi &abi, bool train) {
  std::vector<KernelArg> args;
  for (const AbiInput &in : abi.inputs)
    if (train || !in.isTarget)
      args.push_back({in.shape, "input " + in.name});
  for (const AbiParam &p : abi.params) {
    if (p.kind == "csr") {
      args.push_back({{p.shape[0] + 1}, p.name + " positions"});
      args.push_back({{p.nnz}, p.name + " coordinates"});
      args.push_back({{p.nnz}, p.name + " values"});
    } else {
      args.push_back({p.shape, p.name});
    }
  }
  if (!train) {
    args.push_back({abi.outputShape, "output"});
    return args;
  }
  for (const AbiParam &p : abi.params)
    args.push_back({p.kind == "csr" ? std::vector<int64_t>{p.nnz} : p.gradShape,
                    "gradient of " + p.name});
  for (const AbiParam &p : abi.params)
    if (p.dynamic == "rigl") {
      args.push_back({{kAbiBatch, p.shape[1]}, "input of " + p.name});
      args.push_back({{kAbiBatch, p.shape[0]}, "output gradient of " + p.name});
    }
  return args;
}

/// The trampoline of `sparsec_kernel_<Model>_{forward,train}` or, with
/// `prefix` "sparsec_gpu_kernel_", of its CUDA function (same arguments,
/// device pointers).
void emitTrampoline(const ModelAbi &abi, bool train, llvm::raw_ostream &os,
                    llvm::StringRef prefix = "sparsec_kernel_") {
  std::vector<KernelArg> args = kernelArgs(abi, train);
  std::string fn = prefix.str() + abi.name + (train ? "_train" : "_forward");
  os << "extern " << (train ? "float" : "void") << " _mlir_ciface_" << fn
     << "(";
  for (size_t i = 0; i < args.size(); ++i)
    os << (i ? ", " : "") << "sparsec_memref_" << args[i].shape.size() << " *";
  os << ");\n\n";
  os << "static int " << fn << "_kernel(void *const *bufs, int64_t batch) {\n";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::vector<int64_t> &s = args[i].shape;
    std::vector<std::string> sizes, strides(s.size());
    for (int64_t d : s)
      sizes.push_back(d == kAbiBatch ? "batch" : std::to_string(d));
    std::string stride = "1";
    for (size_t k = s.size(); k-- > 0;) {
      strides[k] = stride;
      stride = stride == "1" ? sizes[k] : stride + " * " + sizes[k];
    }
    os << "  /* " << args[i].comment << " */\n";
    std::string b = "bufs[" + std::to_string(i) + "]";
    os << "  sparsec_memref_" << s.size() << " a" << i << " = {" << b << ", "
       << b << ", 0, {" << llvm::join(sizes, ", ") << "}, {"
       << llvm::join(strides, ", ") << "}};\n";
  }
  os << "  " << (train ? "float loss = " : "") << "_mlir_ciface_" << fn << "(";
  for (size_t i = 0; i < args.size(); ++i)
    os << (i ? ", " : "") << "&a" << i;
  os << ");\n";
  if (train)
    os << "  *(float *)bufs[" << args.size() << "] = loss;\n";
  os << "  return 0;\n}\n\n";
}

/// Name of the fused row update of parameter `k` (sdl-generate-row-updates),
/// or "" when the runtime steps it.
std::string rowUpdateName(const ModelAbi &abi, size_t k) {
  if (!abi.fusedRows || abi.params[k].kind != "embedding")
    return "";
  return "sparsec_kernel_" + abi.name + "_rows_" + std::to_string(k);
}

/// The trampoline from runtime.h's sparsec_row_update_args to the memref
/// arguments of a generated row update.
void emitRowTrampoline(const ModelAbi &abi, size_t k, llvm::raw_ostream &os) {
  const AbiParam &p = abi.params[k];
  std::string fn = rowUpdateName(abi, k);
  std::string dim = std::to_string(p.shape[1]);
  std::vector<std::pair<std::string, std::string>> args = {
      {"a->values", std::to_string(p.shape[0] * p.shape[1])}};
  for (int s = 0; s < 7; ++s)
    args.push_back({"a->state[" + std::to_string(s) + "]",
                    "a->state_len[" + std::to_string(s) + "]"});
  args.push_back({"a->row_init", "a->row_init ? a->rows : 0"});
  args.push_back({"a->grad", "a->n * " + dim});
  args.push_back({"a->perm", "a->n"});
  args.push_back({"a->keys", "a->n"});
  args.push_back({"a->starts", "a->segments + 1"});
  args.push_back({"a->hyper", "SPARSEC_RH_COUNT"});
  os << "extern void _mlir_ciface_" << fn << "(";
  for (size_t i = 0; i < args.size(); ++i)
    os << (i ? ", " : "") << "sparsec_memref_1 *";
  os << ");\n\n/* Fused row update of " << p.name
     << " (coalesce + optimizer step). */\nstatic int " << fn
     << "_kernel(const sparsec_row_update_args *a) {\n";
  for (size_t i = 0; i < args.size(); ++i)
    os << "  sparsec_memref_1 a" << i << " = {(void *)" << args[i].first
       << ", (void *)" << args[i].first << ", 0, {" << args[i].second
       << "}, {1}};\n";
  os << "  _mlir_ciface_" << fn << "(";
  for (size_t i = 0; i < args.size(); ++i)
    os << (i ? ", " : "") << "&a" << i;
  os << ");\n  return 0;\n}\n\n";
}

/// Name of the growth-score kernel of parameter `k` (sdl-generate-rigl-scores),
/// or "" when it has none.
std::string scoreName(const ModelAbi &abi, size_t k) {
  if (abi.params[k].dynamic != "rigl")
    return "";
  return "sparsec_kernel_" + abi.name + "_score_" + std::to_string(k);
}

/// The trampoline from runtime.h's sparsec_score_fn to the memref arguments
/// of a generated score kernel (dy: the columns [row0, row0 + rows)).
void emitScoreTrampoline(const ModelAbi &abi, size_t k, llvm::raw_ostream &os) {
  const AbiParam &p = abi.params[k];
  std::string fn = scoreName(abi, k), out = std::to_string(p.shape[0]),
              in = std::to_string(p.shape[1]);
  os << "extern void _mlir_ciface_" << fn
     << "(sparsec_memref_2 *, sparsec_memref_2 *, sparsec_memref_2 *);\n\n"
     << "/* RigL growth scores of " << p.name << " (dense gradient rows). */\n"
     << "static int " << fn
     << "_kernel(const float *x, const float *dy, int64_t batch, int64_t "
        "row0, int64_t rows, float *score) {\n"
     << "  sparsec_memref_2 a0 = {(void *)x, (void *)x, 0, {batch, " << in
     << "}, {" << in << ", 1}};\n"
     << "  sparsec_memref_2 a1 = {(void *)dy, (void *)dy, row0, {batch, "
        "rows}, {"
     << out << ", 1}};\n"
     << "  sparsec_memref_2 a2 = {score, score, 0, {rows, " << in << "}, {"
     << in << ", 1}};\n"
     << "  _mlir_ciface_" << fn << "(&a0, &a1, &a2);\n  return 0;\n}\n\n";
}

/// A static array `name` holding `values`, wrapped at 16 per line.
void emitIntArray(const std::string &name, const std::vector<int32_t> &values,
                  llvm::raw_ostream &os) {
  os << "static const int32_t " << name << "[] = {";
  for (size_t i = 0; i < values.size(); ++i)
    os << (i % 16 ? " " : "\n  ") << values[i] << ",";
  os << "\n};\n";
}

/// Pattern fields of a CSR parameter's descriptor (after emitting the user
/// structure, if any, as `<M>_pattern_<k>_{positions,coordinates}`).
std::string patternFields(const ModelAbi &abi, size_t k) {
  const AbiParam &p = abi.params[k];
  std::string dyn;
  if (!p.dynamic.empty())
    dyn = ", .dynamic = SPARSEC_DYNAMIC_" + llvm::StringRef(p.dynamic).upper() +
          ", .delta_t = " + std::to_string(p.deltaT) +
          ", .t_end = " + std::to_string(p.tEnd) +
          ", .drop_fraction = " + exact(p.dropFraction);
  if (p.dynamic == "rigl")
    dyn += ", .score = " + scoreName(abi, k) +
           "_kernel, .max_size = " + std::to_string(p.maxSize);
  if (p.pattern == "small_world")
    return ", .pattern = SPARSEC_PATTERN_SMALL_WORLD" + dyn;
  if (p.pattern != "user")
    return dyn;
  std::string base = abi.name + "_pattern_" + std::to_string(k);
  return ", .pattern = SPARSEC_PATTERN_USER, .user_positions = " + base +
         "_positions, .user_coordinates = " + base + "_coordinates" + dyn;
}

/// Parameter list of the typed entry point (`const float *x, ...`).
std::string typedInputs(const ModelAbi &abi, bool withTargets) {
  std::string s;
  for (const AbiInput &in : abi.inputs)
    if (withTargets || !in.isTarget)
      s += llvm::formatv(", const {0} *{1}", cType(in.dtype), in.name).str();
  return s;
}

std::string inputArray(const ModelAbi &abi, bool withTargets) {
  std::vector<std::string> names;
  for (const AbiInput &in : abi.inputs)
    if (withTargets || !in.isTarget)
      names.push_back("(const void *)" + in.name);
  return llvm::join(names, ", ");
}

/// The public entry points: declarations (header) or definitions (glue).
void emitEntryPoints(const ModelAbi &abi, bool define, llvm::raw_ostream &os) {
  const std::string &M = abi.name;
  auto fn = [&](llvm::StringRef doc, llvm::StringRef sig,
                llvm::StringRef body) {
    if (!define) {
      os << "/* " << doc << " */\n" << sig << ";\n";
      return;
    }
    os << "__attribute__((visibility(\"default\"))) " << sig << " {\n  "
       << body << "\n}\n";
  };
  std::string h = "(sparsec_model *)m", ch = "(const sparsec_model *)m";
  if (abi.cudaDefault)
    fn("Creates an instance with parameters initialised from `seed`, on the "
       "GPU (built with --target=cuda: the same as " +
           M + "_create_on(seed, \"cuda\", out)).",
       "int " + M + "_create(uint64_t seed, " + M + " **out)",
       "return sparsec_create_on(&" + M + "_desc, &" + M +
           "_cuda, seed, \"cuda\", (sparsec_model **)out);");
  else
    fn("Creates an instance with parameters initialised from `seed`.",
       "int " + M + "_create(uint64_t seed, " + M + " **out)",
       "return sparsec_create(&" + M + "_desc, seed, (sparsec_model **)out);");
  fn("Creates an instance on `device`: \"cpu\", or \"cuda\" (parameters, "
     "gradients and optimizer state on the GPU; needs a library built with "
     "--target=cpu,cuda or cuda).",
     "int " + M + "_create_on(uint64_t seed, const char *device, " + M +
         " **out)",
     "return sparsec_create_on(&" + M + "_desc, " +
         (abi.cuda ? "&" + M + "_cuda" : std::string("0")) +
         ", seed, device, (sparsec_model **)out);");
  fn("The device of an instance: \"cpu\" or \"cuda\".",
     "int " + M + "_device(const " + M + " *m, const char **device)",
     "return sparsec_model_device((const sparsec_model *)m, device);");
  fn("Destroys an instance (NULL is accepted).",
     "void " + M + "_destroy(" + M + " *m)", "sparsec_destroy(" + h + ");");
  // With `catchup` optimizers, rows untouched for a while hold their value
  // of the last touch until <Model>_catch_up (forward itself never changes
  // the model, so a rejected call leaves it byte-identical).
  bool catchup = abi.sparseMode == "catchup";
  fn("Runs the model on `batch` samples; `output` is " +
         shapeDoc(abi.outputShape) + " floats." +
         (catchup ? " The optimizer uses sparse = catchup: call " + M +
                        "_catch_up first to bring lagging embedding rows up "
                        "to date."
                  : ""),
     "int " + M + "_forward(" + M + " *m, int64_t batch" +
         typedInputs(abi, false) + ", float *output)",
     "const void *in[] = {" + inputArray(abi, false) +
         "};\n  return sparsec_forward(" + h + ", batch, in, output);");
  fn("Applies the skipped optimizer steps of every lagging embedding row "
     "(sparse = catchup; a no-op otherwise).",
     "int " + M + "_catch_up(" + M + " *m)",
     "return sparsec_catch_up(" + h + ");");
  fn("The scheduled learning rate of the next step.",
     "int " + M + "_current_lr(const " + M + " *m, double *lr)",
     "return sparsec_current_lr(" + ch + ", lr);");
  fn("One training step (forward, backward, optimizer); stores the "
     "batch's mean loss in *loss.",
     "int " + M + "_train_step(" + M + " *m, int64_t batch" +
         typedInputs(abi, true) + ", float *loss)",
     "const void *in[] = {" + inputArray(abi, true) +
         "};\n  return sparsec_train_step(" + h + ", batch, in, loss);");
  fn("Sets / reads the learning rate.",
     "int " + M + "_set_lr(" + M + " *m, double lr)",
     "return sparsec_set_lr(" + h + ", lr);");
  fn("Reads the learning rate.",
     "int " + M + "_get_lr(const " + M + " *m, double *lr)",
     "return sparsec_get_lr(" + ch + ", lr);");
  fn("Number of optimizer steps taken.",
     "int " + M + "_step_count(const " + M + " *m, int64_t *steps)",
     "return sparsec_step_count(" + ch + ", steps);");
  fn("Number of parameter tensors.",
     "int " + M + "_num_params(const " + M + " *m, int32_t *count)",
     "return sparsec_num_params(" + ch + ", count);");
  fn("Name, rank, dims[4], stored values and sparsity of parameter `index`.",
     "int " + M + "_param_info(const " + M +
         " *m, int32_t index, const char **name, int32_t *rank, "
         "int64_t dims[4], int64_t *nnz, double *sparsity)",
     "sparsec_param_info info;\n  int s = sparsec_param_info_at(" + ch +
         ", index, &info);\n  if (s != SPARSEC_OK) return s;\n"
         "  if (!name || !rank || !dims || !nnz || !sparsity)\n"
         "    return sparsec_param_info_at(" + ch + ", index, 0); /* NULL: "
         "sets the message */\n  *name = info.name; *rank = info.rank; *nnz = "
         "info.nnz; *sparsity = info.sparsity;\n  for (int i = 0; i < 4; ++i) "
         "dims[i] = info.dims[i];\n  return SPARSEC_OK;");
  fn("Zero-copy pointer to a parameter's values (`count` floats).",
     "int " + M + "_param_values(" + M +
         " *m, const char *name, float **values, int64_t *count)",
     "return sparsec_param_values(" + h + ", name, values, count);");
  fn("CSR structure (positions[rows+1], coordinates[nnz]) of a sparse "
     "parameter.",
     "int " + M + "_param_csr(" + M +
         " *m, const char *name, const int32_t **positions, const int32_t "
         "**coordinates)",
     "return sparsec_param_csr(" + h + ", name, positions, coordinates);");
  fn("Gradient of a parameter from the last train step.",
     "int " + M + "_param_grad(" + M +
         " *m, const char *name, const float **grad, int64_t *count)",
     "return sparsec_param_grad(" + h + ", name, grad, count);");
  fn("Writes a safetensors checkpoint atomically.",
     "int " + M + "_save(const " + M + " *m, const char *path)",
     "return sparsec_save(" + ch + ", path);");
  fn("Loads a checkpoint; nothing changes unless the whole file is valid.",
     "int " + M + "_load(" + M + " *m, const char *path)",
     "return sparsec_load(" + h + ", path);");
  fn("Message of the last failure on this thread.",
     "const char *" + M + "_last_error(void)", "return sparsec_last_error();");
  fn("Name of a status code.", "const char *" + M + "_status_name(int status)",
     "return sparsec_status_name(status);");
}

} // namespace

void sparsec::emitGlue(const ModelAbi &abi, llvm::raw_ostream &os) {
  const std::string &M = abi.name;
  os << "/* Generated by sparsec from model " << M
     << ". Do not edit.\n * Runtime descriptor, kernel trampolines and entry "
        "points; the model's math is in the MLIR-generated object. */\n"
     << "#include <sparsec/runtime.h>\n#include <stdint.h>\n\n"
     << "typedef struct " << M << " " << M << ";\n\n";
  std::set<size_t> ranks;
  for (bool train : {false, true})
    for (const KernelArg &a : kernelArgs(abi, train))
      ranks.insert(a.shape.size());
  if (abi.fusedRows)
    ranks.insert(1);
  for (size_t k = 0; k < abi.params.size(); ++k)
    if (!scoreName(abi, k).empty())
      ranks.insert(2);
  for (size_t r : ranks)
    os << "typedef struct { void *allocated; void *aligned; int64_t offset; "
          "int64_t sizes["
       << r << "]; int64_t strides[" << r << "]; } sparsec_memref_" << r
       << ";\n";
  os << "\n";
  emitTrampoline(abi, false, os);
  emitTrampoline(abi, true, os);
  if (abi.cuda) {
    emitTrampoline(abi, false, os, "sparsec_gpu_kernel_");
    emitTrampoline(abi, true, os, "sparsec_gpu_kernel_");
  }
  for (size_t k = 0; k < abi.params.size(); ++k)
    if (!rowUpdateName(abi, k).empty())
      emitRowTrampoline(abi, k, os);
  for (size_t k = 0; k < abi.params.size(); ++k)
    if (!scoreName(abi, k).empty())
      emitScoreTrampoline(abi, k, os);

  for (size_t k = 0; k < abi.params.size(); ++k) {
    const AbiParam &p = abi.params[k];
    if (p.pattern != "user")
      continue;
    std::string base = M + "_pattern_" + std::to_string(k);
    os << "/* The connectivity of " << p.name << " (CSR). */\n";
    emitIntArray(base + "_positions", p.userPositions, os);
    emitIntArray(base + "_coordinates", p.userCoordinates, os);
    os << "\n";
  }
  os << "static const sparsec_input_desc " << M << "_inputs[] = {\n";
  for (const AbiInput &in : abi.inputs)
    os << "  {\"" << in.name << "\", " << dtypeEnum(in.dtype) << ", "
       << in.shape.size() << ", " << dims(in.shape) << ", "
       << (in.isTarget ? 1 : 0) << ", " << in.idBound << "},\n";
  os << "};\n\nstatic const sparsec_param_desc " << M << "_params[] = {\n";
  for (size_t k = 0; k < abi.params.size(); ++k) {
    const AbiParam &p = abi.params[k];
    std::string rows = rowUpdateName(abi, k);
    os << "  {.name = \"" << p.name << "\", .layout = " << layoutEnum(p.kind)
       << ", .rank = " << p.shape.size() << ", .dims = " << dims(p.shape)
       << ", .nnz = " << p.nnz << ", .init = " << initEnum(p.init)
       << ", .init_a = " << exact(p.initA) << ", .ids_input = " << p.idsInput
       << ", .padding_idx = " << p.paddingIdx
       << ", .max_norm = " << exact(p.maxNorm)
       << ", .norm_type = " << exact(p.normType)
       << ", .scale_grad_by_freq = " << (p.scaleGradByFreq ? 1 : 0)
       << (rows.empty() ? "" : ", .row_update = " + rows + "_kernel")
       << patternFields(abi, k) << maskDescFields(abi, k) << "},\n";
  }
  os << "};\n\n";
  os << "static const sparsec_model_desc " << M << "_desc = {\n"
     << "  SPARSEC_ABI_VERSION, \"" << M << "\",\n"
     << "  " << abi.inputs.size() << ", " << M << "_inputs, "
     << abi.params.size() << ", " << M << "_params,\n"
     << "  " << abi.outputShape.size() << ", " << dims(abi.outputShape)
     << ",\n"
     << "  " << optimizerInit(abi) << ",\n"
     << "  sparsec_kernel_" << M << "_forward_kernel, sparsec_kernel_" << M
     << "_train_kernel};\n\n";
  if (abi.cuda)
    os << "/* The CUDA functions ("
       << (abi.cudaEmulated ? "--cuda-emulate: run on the host" : "PTX")
       << "). */\nstatic const sparsec_device_kernels " << M << "_cuda = {\n"
       << "  sparsec_gpu_kernel_" << M << "_forward_kernel, sparsec_gpu_kernel_"
       << M << "_train_kernel, " << (abi.cudaEmulated ? 1 : 0) << "};\n\n";
  emitEntryPoints(abi, /*define=*/true, os);
}

void sparsec::emitHeader(const ModelAbi &abi, llvm::raw_ostream &os) {
  const std::string &M = abi.name;
  std::string guard = llvm::StringRef(M).upper() + "_SPARSEC_H";
  os << "/* " << M << ".h - generated by sparsec. Do not edit.\n *\n"
     << " * C99 interface of the model library. Every call returns 0 "
        "(SPARSEC_OK) or a\n * status code; " << M
     << "_last_error() says what went wrong.\n *\n * Inputs (row-major, "
        "`batch` chosen per call):\n";
  for (const AbiInput &in : abi.inputs)
    os << " *   " << (in.isTarget ? "target " : "input  ") << in.name << " : "
       << in.dtype << shapeDoc(in.shape)
       << (in.idBound ? " ids in [0, " + std::to_string(in.idBound) + ")"
                      : std::string())
       << "\n";
  os << " * Output: f32" << shapeDoc(abi.outputShape) << "\n * Parameters:\n";
  for (const AbiParam &p : abi.params)
    os << " *   " << p.name << " : " << p.kind << " " << shapeDoc(p.shape)
       << (p.kind == "csr" ? ", nnz " + std::to_string(p.nnz) : std::string())
       << "\n";
  os << " */\n#ifndef " << guard << "\n#define " << guard
     << "\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif"
     << "\n\ntypedef struct " << M << " " << M << ";\n\n";
  emitEntryPoints(abi, /*define=*/false, os);
  os << "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* " << guard << " */\n";
}

void sparsec::emitVersionScript(const ModelAbi &abi, llvm::raw_ostream &os) {
  os << "{\n  global: " << abi.name << "_*;\n  local: *;\n};\n";
}
