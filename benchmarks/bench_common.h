//===- bench_common.h - Shared helpers of sparsec-bench ---------*- C++ -*-===//
//
// Helpers shared by the benchmark files: deterministic random inputs, the
// Zipf id stream of workload P3, a status check that aborts the benchmark
// program (so run.py and ctest see a failure), the program's own options, and
// a table of a generated model's entry points, so one benchmark body serves
// every model of the same shape.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_BENCH_COMMON_H
#define SPARSEC_BENCH_COMMON_H

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

/// Options of sparsec-bench beyond Google Benchmark's own flags.
struct Options {
  /// Directory of the Fashion-MNIST IDX files (P4); random data of the same
  /// shape when they cannot be read.
  std::string fashionDir = "/usr/share/datasets/fashion-mnist";
  /// Samples of one P4 epoch (0: the whole training set).
  int64_t epochLimit = 0;
  /// Device the models are created on (`<Model>_create_on`): "cpu" or
  /// "cuda" (the libraries are built with TARGET cuda; docs/cuda.md).
  std::string device = "cpu";
};
Options &options();

/// `n` floats uniform in [0, 1), the same for the same seed.
std::vector<float> randomFloats(size_t n, unsigned seed);

/// `count` ids drawn with P(rank k) proportional to 1/(k+1) over `keys`
/// ranks, spread over the table as (k * 97) mod rows (docs/performance.md).
std::vector<int64_t> zipfIds(size_t count, int64_t keys, int64_t rows,
                             unsigned seed);

/// Exits the program with a message when a model call fails.
void check(int status, const char *what, const char *message);

/// The entry points of a generated model with one input of element type In0
/// and one target of element type In1 (f32/f32 for the sparse layers, i64
/// ids/f32 for the embeddings, f32/i64 labels for the MLP): the generated
/// headers of such models differ only in the model name.
template <typename Model, typename In0, typename In1> struct ModelApi {
  int (*createOn)(uint64_t, const char *, Model **);
  void (*destroy)(Model *);
  int (*forward)(Model *, int64_t, const In0 *, float *);
  int (*trainStep)(Model *, int64_t, const In0 *, const In1 *, float *);
  const char *(*lastError)();
};

/// The ModelApi of the model called NAME in its generated header.
#define SPARSEC_BENCH_API(NAME)                                                \
  {                                                                            \
    NAME##_create_on, NAME##_destroy, NAME##_forward, NAME##_train_step,       \
        NAME##_last_error                                                      \
  }

/// An instance of a model (seed 1) on options().device, destroyed with the
/// scope. forward and train_step are synchronous on either device, so wall
/// time measures them.
template <typename Model, typename In0, typename In1> class Instance {
public:
  using Api = ModelApi<Model, In0, In1>;
  explicit Instance(const Api &api) : api(api) {
    check(api.createOn(1, options().device.c_str(), &model), "create",
          api.lastError());
  }
  ~Instance() { api.destroy(model); }
  Instance(const Instance &) = delete;
  Instance &operator=(const Instance &) = delete;

  void forward(int64_t batch, const In0 *x, float *y) {
    check(api.forward(model, batch, x, y), "forward", api.lastError());
  }
  float trainStep(int64_t batch, const In0 *x, const In1 *t) {
    float loss = 0;
    check(api.trainStep(model, batch, x, t, &loss), "train_step",
          api.lastError());
    return loss;
  }

private:
  const Api &api;
  Model *model = nullptr;
};

} // namespace bench

#endif // SPARSEC_BENCH_COMMON_H
