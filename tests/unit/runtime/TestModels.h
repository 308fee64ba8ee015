//===- TestModels.h - Hand-written test models for runtime tests --*- C++
//-*-===//
//
// Test scaffolding only: small model descriptors whose forward/train
// kernels are written by hand here (linear regression with a dense or CSR
// weight, and an embedding-sum regression), so the runtime's bookkeeping
// (validation, `bufs` layout, gradients, optimizer, checkpoints) can be
// checked without the compiler. Also helpers to hash parameters and make
// temporary directories.
//
//===----------------------------------------------------------------------===//
#ifndef SPARSEC_TESTS_RUNTIME_TESTMODELS_H
#define SPARSEC_TESTS_RUNTIME_TESTMODELS_H

#include "internal.h"
#include "sparsec/runtime.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sparsec_test {

/// What the hand-written kernels do (tests are single-threaded).
enum class KernelMode { Normal, NanLoss, InfLoss, Fail };
inline KernelMode &kernelMode() {
  static KernelMode mode = KernelMode::Normal;
  return mode;
}
/// The last `bufs` a kernel saw, and its batch.
inline std::vector<void *> &lastBufs() {
  static std::vector<void *> bufs;
  return bufs;
}
inline int64_t &lastBatch() {
  static int64_t batch = 0;
  return batch;
}

// Linear regression: out[b, o] = sum_i W[o, i] x[b, i] + bias[o];
// loss = 0.5 / B * sum (out - y)^2. W is dense or CSR.
constexpr int kIn = 6, kOut = 4;

template <bool Csr> struct LinearView {
  const float *x, *y;
  const int32_t *pos = nullptr, *crd = nullptr;
  float *w, *bias;
  float *gw = nullptr, *gb = nullptr, *loss = nullptr, *out = nullptr;
  float weight(int o, int i) const {
    if (!Csr)
      return w[o * kIn + i];
    for (int32_t k = pos[o]; k < pos[o + 1]; ++k)
      if (crd[k] == i)
        return w[k];
    return 0.0f;
  }
};

template <bool Csr>
void linearPredict(const LinearView<Csr> &v, int64_t batch, float *out) {
  for (int64_t b = 0; b < batch; ++b)
    for (int o = 0; o < kOut; ++o) {
      float s = v.bias[o];
      for (int i = 0; i < kIn; ++i)
        s += v.weight(o, i) * v.x[b * kIn + i];
      out[b * kOut + o] = s;
    }
}

template <bool Csr> int linearForward(void *const *bufs, int64_t batch) {
  lastBufs().assign(bufs, bufs + (Csr ? 6 : 4));
  lastBatch() = batch;
  if (kernelMode() == KernelMode::Fail)
    return 7;
  LinearView<Csr> v;
  int k = 0;
  v.x = static_cast<const float *>(bufs[k++]);
  if (Csr) {
    v.pos = static_cast<const int32_t *>(bufs[k++]);
    v.crd = static_cast<const int32_t *>(bufs[k++]);
  }
  v.w = static_cast<float *>(bufs[k++]);
  v.bias = static_cast<float *>(bufs[k++]);
  linearPredict(v, batch, static_cast<float *>(bufs[k++]));
  return 0;
}

template <bool Csr> int linearTrain(void *const *bufs, int64_t batch) {
  lastBufs().assign(bufs, bufs + (Csr ? 9 : 7));
  lastBatch() = batch;
  if (kernelMode() == KernelMode::Fail)
    return 3;
  LinearView<Csr> v;
  int k = 0;
  v.x = static_cast<const float *>(bufs[k++]);
  v.y = static_cast<const float *>(bufs[k++]);
  if (Csr) {
    v.pos = static_cast<const int32_t *>(bufs[k++]);
    v.crd = static_cast<const int32_t *>(bufs[k++]);
  }
  v.w = static_cast<float *>(bufs[k++]);
  v.bias = static_cast<float *>(bufs[k++]);
  v.gw = static_cast<float *>(bufs[k++]);
  v.gb = static_cast<float *>(bufs[k++]);
  v.loss = static_cast<float *>(bufs[k++]);
  std::vector<float> out(static_cast<size_t>(batch) * kOut);
  linearPredict(v, batch, out.data());
  double loss = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int o = 0; o < kOut; ++o) {
      float d =
          (out[b * kOut + o] - v.y[b * kOut + o]) / static_cast<float>(batch);
      loss += 0.5 * (out[b * kOut + o] - v.y[b * kOut + o]) *
              (out[b * kOut + o] - v.y[b * kOut + o]) /
              static_cast<double>(batch);
      v.gb[o] += d;
      if (Csr) {
        for (int32_t e = v.pos[o]; e < v.pos[o + 1]; ++e)
          v.gw[e] += d * v.x[b * kIn + v.crd[e]];
      } else {
        for (int i = 0; i < kIn; ++i)
          v.gw[o * kIn + i] += d * v.x[b * kIn + i];
      }
    }
  *v.loss = static_cast<float>(loss);
  if (kernelMode() == KernelMode::NanLoss)
    *v.loss = NAN;
  if (kernelMode() == KernelMode::InfLoss)
    *v.loss = INFINITY;
  return 0;
}

/// Owns a descriptor and the arrays it points to.
struct Desc {
  std::vector<sparsec_input_desc> inputs;
  std::vector<sparsec_param_desc> params;
  sparsec_model_desc desc{};
  void link() {
    desc.num_inputs = static_cast<int32_t>(inputs.size());
    desc.inputs = inputs.data();
    desc.num_params = static_cast<int32_t>(params.size());
    desc.params = params.data();
  }
};

inline sparsec_input_desc makeInput(const char *name, sparsec_dtype dt,
                                    std::vector<int64_t> dims,
                                    int32_t target = 0, int64_t bound = 0) {
  sparsec_input_desc in{};
  in.name = name;
  in.dtype = dt;
  in.rank = static_cast<int32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    in.dims[i] = dims[i];
  in.is_target = target;
  in.id_bound = bound;
  return in;
}

inline sparsec_param_desc makeParam(const char *name, sparsec_layout layout,
                                    std::vector<int64_t> dims, int64_t nnz,
                                    sparsec_init init, double a,
                                    int32_t ids = 0) {
  sparsec_param_desc p{};
  p.name = name;
  p.layout = layout;
  p.rank = static_cast<int32_t>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    p.dims[i] = dims[i];
  p.nnz = nnz;
  p.init = init;
  p.init_a = a;
  p.ids_input = ids;
  p.padding_idx = -1; // what the compiler emits when an option is off
  p.norm_type = 2.0;
  return p;
}

inline sparsec_optimizer_desc makeSgd(double lr, double momentum = 0,
                                      double dampening = 0, double wd = 0,
                                      bool nesterov = false) {
  sparsec_optimizer_desc o{};
  o.kind = SPARSEC_OPT_SGD;
  o.lr = lr;
  o.momentum = momentum;
  o.dampening = dampening;
  o.weight_decay = wd;
  o.nesterov = nesterov ? 1 : 0;
  return o;
}

/// Linear regression model "Linear" (or "LinearCsr" with a CSR weight of
/// `nnz` entries).
inline Desc linearDesc(bool csr, sparsec_optimizer_desc opt = makeSgd(0.1),
                       int64_t nnz = 12) {
  Desc d;
  d.inputs = {makeInput("x", SPARSEC_F32, {-1, kIn}),
              makeInput("y", SPARSEC_F32, {-1, kOut}, 1)};
  d.params = {makeParam("fc.weight",
                        csr ? SPARSEC_LAYOUT_CSR : SPARSEC_LAYOUT_DENSE,
                        {kOut, kIn}, csr ? nnz : kOut * kIn,
                        SPARSEC_INIT_FAN_IN_UNIFORM, kIn),
              makeParam("fc.bias", SPARSEC_LAYOUT_DENSE, {kOut}, kOut,
                        SPARSEC_INIT_FAN_IN_UNIFORM, kIn)};
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = csr ? "LinearCsr" : "Linear";
  d.desc.output_rank = 2;
  d.desc.output_dims[0] = -1;
  d.desc.output_dims[1] = kOut;
  d.desc.optimizer = opt;
  d.desc.forward = csr ? &linearForward<true> : &linearForward<false>;
  d.desc.train = csr ? &linearTrain<true> : &linearTrain<false>;
  d.link();
  return d;
}

// Embedding regression: ids [B, kBag] into E [kRows, kDim];
// out[b] = sum_k sum_d E[ids[b, k], d]; loss = 0.5 / B * sum (out - y)^2.
// The gradient row of id (b, k) is (out[b] - y[b]) / B in every column.
constexpr int kRows = 10, kDim = 3, kBag = 2;

template <typename Id> int embedForward(void *const *bufs, int64_t batch) {
  lastBufs().assign(bufs, bufs + 3);
  if (kernelMode() == KernelMode::Fail)
    return 6;
  const Id *ids = static_cast<const Id *>(bufs[0]);
  const float *e = static_cast<const float *>(bufs[1]);
  float *out = static_cast<float *>(bufs[2]);
  for (int64_t b = 0; b < batch; ++b) {
    float s = 0;
    for (int k = 0; k < kBag; ++k)
      for (int d = 0; d < kDim; ++d)
        s += e[ids[b * kBag + k] * kDim + d];
    out[b] = s;
  }
  return 0;
}

template <typename Id> int embedTrain(void *const *bufs, int64_t batch) {
  lastBufs().assign(bufs, bufs + 5);
  lastBatch() = batch;
  if (kernelMode() == KernelMode::Fail)
    return 8;
  const float *y = static_cast<const float *>(bufs[1]);
  float *g = static_cast<float *>(bufs[3]);
  float *loss = static_cast<float *>(bufs[4]);
  std::vector<float> out(static_cast<size_t>(batch));
  void *fwd[3] = {bufs[0], bufs[2], out.data()};
  embedForward<Id>(fwd, batch);
  lastBufs().assign(bufs, bufs + 5);
  double l = 0;
  for (int64_t b = 0; b < batch; ++b) {
    float r = (out[b] - y[b]) / static_cast<float>(batch);
    l += 0.5 * (out[b] - y[b]) * (out[b] - y[b]) / static_cast<double>(batch);
    for (int k = 0; k < kBag; ++k)
      for (int d = 0; d < kDim; ++d)
        g[(b * kBag + k) * kDim + d] = r;
  }
  *loss = static_cast<float>(l);
  if (kernelMode() == KernelMode::NanLoss)
    *loss = NAN;
  return 0;
}

inline Desc embedDesc(sparsec_dtype idType,
                      sparsec_optimizer_desc opt = makeSgd(0.5),
                      int64_t idBound = kRows) {
  Desc d;
  d.inputs = {makeInput("ids", idType, {-1, kBag}, 0, idBound),
              makeInput("y", SPARSEC_F32, {-1}, 1)};
  d.params = {makeParam("emb.weight", SPARSEC_LAYOUT_EMBEDDING, {kRows, kDim},
                        kRows * kDim, SPARSEC_INIT_NORMAL, 1.0, 0)};
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = "Embed";
  d.desc.output_rank = 1;
  d.desc.output_dims[0] = -1;
  d.desc.optimizer = opt;
  d.desc.forward =
      idType == SPARSEC_I32 ? &embedForward<int32_t> : &embedForward<int64_t>;
  d.desc.train =
      idType == SPARSEC_I32 ? &embedTrain<int32_t> : &embedTrain<int64_t>;
  d.link();
  return d;
}

// Gradient feed: a model whose train kernel hands the runtime gradients the
// test chose (a dense [5, 3] matrix "w", a dense [4] vector "b", a CSR
// [4, 6] matrix "s" with 9 entries and an embedding "e" [8, 3] read by the
// ids input [batch, 2]), so optimizer steps can be checked against a
// reference with arbitrary gradients.
constexpr int kFeedRows = 8, kFeedDim = 3, kFeedBag = 2, kFeedNnz = 9;
struct Feed {
  std::vector<float> w, b, s, e; // e: one row of kFeedDim per id
  float loss = 1.0f;
};
inline Feed &feed() {
  static Feed f;
  return f;
}

inline int feedTrain(void *const *bufs, int64_t batch) {
  lastBufs().assign(bufs, bufs + 12);
  lastBatch() = batch;
  if (kernelMode() == KernelMode::Fail)
    return 5;
  const Feed &f = feed();
  const std::vector<float> *src[4] = {&f.w, &f.b, &f.s, &f.e};
  for (int k = 0; k < 4; ++k)
    std::memcpy(bufs[7 + k], src[k]->data(), src[k]->size() * sizeof(float));
  *static_cast<float *>(bufs[11]) =
      kernelMode() == KernelMode::NanLoss ? NAN : f.loss;
  return 0;
}

inline Desc feedDesc(sparsec_optimizer_desc opt) {
  Desc d;
  d.inputs = {makeInput("ids", SPARSEC_I64, {-1, kFeedBag}, 0, kFeedRows)};
  d.params = {
      makeParam("w", SPARSEC_LAYOUT_DENSE, {5, 3}, 15, SPARSEC_INIT_NORMAL,
                1.0),
      makeParam("b", SPARSEC_LAYOUT_DENSE, {4}, 4, SPARSEC_INIT_NORMAL, 1.0),
      makeParam("s", SPARSEC_LAYOUT_CSR, {4, 6}, kFeedNnz, SPARSEC_INIT_NORMAL,
                1.0),
      makeParam("e", SPARSEC_LAYOUT_EMBEDDING, {kFeedRows, kFeedDim},
                kFeedRows * kFeedDim, SPARSEC_INIT_NORMAL, 1.0, 0)};
  d.desc.abi_version = SPARSEC_ABI_VERSION;
  d.desc.name = "Feed";
  d.desc.output_rank = 1;
  d.desc.output_dims[0] = -1;
  d.desc.optimizer = opt;
  d.desc.train = &feedTrain;
  d.link();
  return d;
}

/// An optimizer descriptor of `kind` with PyTorch's defaults.
inline sparsec_optimizer_desc
makeOpt(sparsec_optimizer_kind kind, double lr,
        sparsec_sparse_mode mode = SPARSEC_SPARSE_LAZY) {
  sparsec_optimizer_desc o{};
  o.kind = kind;
  o.lr = lr;
  o.sparse_mode = mode;
  o.eps = kind == SPARSEC_OPT_ADAGRAD || kind == SPARSEC_OPT_ROWWISE_ADAGRAD
              ? 1e-10
              : 1e-8;
  o.alpha = 0.99;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  if (kind == SPARSEC_OPT_ADAMW)
    o.weight_decay = 0.01;
  return o;
}

/// FNV-1a over every parameter's values and CSR structure, the step count
/// and the learning rate: equal hashes mean byte-identical state.
inline uint64_t hashModel(sparsec_model *m) {
  uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&h](const void *p, size_t n) {
    const unsigned char *c = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= c[i];
      h *= 0x100000001B3ull;
    }
  };
  // A model on a (emulated) device: the host copy of everything, state
  // included (read below through the internal layout).
  sparsec__device_host_sync(m, SPARSEC_DEV_ALL);
  int32_t n = 0;
  sparsec_num_params(m, &n);
  for (int32_t i = 0; i < n; ++i) {
    sparsec_param_info info;
    sparsec_param_info_at(m, i, &info);
    float *v = nullptr;
    int64_t count = 0;
    sparsec_param_values(m, info.name, &v, &count);
    mix(v, static_cast<size_t>(count) * sizeof(float));
    if (info.layout == SPARSEC_LAYOUT_CSR) {
      const int32_t *pos, *crd;
      sparsec_param_csr(m, info.name, &pos, &crd);
      mix(pos, static_cast<size_t>(info.dims[0] + 1) * sizeof(int32_t));
      mix(crd, static_cast<size_t>(count) * sizeof(int32_t));
    }
    // Optimizer state is internal: hash it through the internal layout.
    const sparsec__param *p = &m->params[i];
    for (int k = 0; k < SPARSEC_NSTATE; ++k)
      if (p->state[k])
        mix(p->state[k],
            static_cast<size_t>(sparsec__state_elems(&m->opt, p, k)) *
                sizeof(float));
    mix(&p->mom_init, 1);
    if (p->mom_row_init)
      mix(p->mom_row_init, static_cast<size_t>(p->desc.dims[0]));
    if (p->last_step)
      mix(p->last_step, static_cast<size_t>(p->desc.dims[0]) * sizeof(int64_t));
  }
  int64_t steps = 0;
  double lr = 0;
  sparsec_step_count(m, &steps);
  sparsec_get_lr(m, &lr);
  mix(&steps, sizeof(steps));
  mix(&lr, sizeof(lr));
  return h;
}

inline std::vector<float> values(sparsec_model *m, const char *name) {
  float *v = nullptr;
  int64_t n = 0;
  if (sparsec_param_values(m, name, &v, &n) != SPARSEC_OK)
    return {};
  return std::vector<float>(v, v + n);
}

/// A fresh directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  std::string file(const std::string &name) const { return path + "/" + name; }
};

} // namespace sparsec_test

#endif // SPARSEC_TESTS_RUNTIME_TESTMODELS_H
