//===- bench_embedding.cpp - P3: embedding train steps --------------------===//
//
//   Embedding/train_step/<optimizer>
// One train step (lookup, mse loss against a target, row-sparse backward,
// lazy optimizer step) of a 1,000,000 x 64 f32 table with 4096 Zipf ids per
// batch (bench::zipfIds: 10,000 keys, the same distribution as run.py's
// PyTorch side), for each optimizer of bench_models.h (SGD, Adagrad, Adam).
// The step cycles through kBatches pre-drawn id batches, so which rows are
// hot changes from step to step as in training. Counter "unique_ids": the
// mean number of distinct ids per batch (for the byte counts).
//
//===----------------------------------------------------------------------===//

#include "bench_common.h"
#include "bench_models.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>

namespace {

constexpr int64_t kRows = 1000000;
constexpr int64_t kDim = 64;
constexpr int64_t kBatch = 4096;
constexpr int64_t kKeys = 10000;
constexpr int kBatches = 16;

template <typename Model>
using EmbeddingApi = bench::ModelApi<Model, int64_t, float>;

template <typename Model>
void trainStep(benchmark::State &state, const EmbeddingApi<Model> &api) {
  bench::Instance<Model, int64_t, float> m(api);
  std::vector<int64_t> ids = bench::zipfIds(kBatch * kBatches, kKeys, kRows, 5);
  std::vector<float> t = bench::randomFloats(kBatch * kDim, 6);
  double unique = 0;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<int64_t> batch(ids.begin() + b * kBatch,
                               ids.begin() + (b + 1) * kBatch);
    std::sort(batch.begin(), batch.end());
    unique += double(std::unique(batch.begin(), batch.end()) - batch.begin());
  }
  state.counters["unique_ids"] = unique / kBatches;
  int next = 0;
  for (auto _ : state) {
    const int64_t *batchIds = ids.data() + next * kBatch;
    benchmark::DoNotOptimize(m.trainStep(kBatch, batchIds, t.data()));
    next = (next + 1) % kBatches;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

#define SPARSEC_BENCH_REGISTER_EMBEDDING(NAME, OPTIMIZER)                      \
  {                                                                            \
    static const EmbeddingApi<NAME> api = SPARSEC_BENCH_API(NAME);             \
    benchmark::RegisterBenchmark("Embedding/train_step/" #OPTIMIZER,           \
                                 trainStep<NAME>, api)                         \
        ->Unit(benchmark::kMillisecond)                                        \
        ->UseRealTime();                                                       \
  }

const bool registered = [] {
  SPARSEC_BENCH_EMBEDDINGS(SPARSEC_BENCH_REGISTER_EMBEDDING)
  return true;
}();

} // namespace
