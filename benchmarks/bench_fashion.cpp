//===- bench_fashion.cpp - The Fashion-MNIST MLP (P4) ---------------------===//
//
// The example's 784 -> 2000 (90% sparse) -> 10 MLP (examples/fashion_mnist):
//   FashionMLP/train_step/64  one SGD step on random inputs, batch 64
//   FashionMLP/forward/1000   inference on random inputs, batch 1000
//   FashionMLP/epoch/64       P4: one epoch over the Fashion-MNIST training
//                             set in file order, batch 64 (the last batch
//                             holds the remainder); one epoch per iteration
// The epoch reads --fashion-dir (Debian's dataset-fashion-mnist by default);
// when the files cannot be read it trains on random data of the same shape
// (60,000 x 784 in [0, 1), labels i mod 10) and says so in its label.
// --epoch-limit=N shortens the epoch to N samples.
//
//===----------------------------------------------------------------------===//

#include "bench_common.h"
#include "bench_models.h"
#include "idx.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>

namespace {

constexpr int64_t kFeatures = 784;
constexpr int64_t kClasses = 10;
constexpr int64_t kTrainImages = 60000;

using FashionApi = bench::ModelApi<FashionMLP, float, int64_t>;
const FashionApi fashionApi = SPARSEC_BENCH_API(FashionMLP);
using Fashion = bench::Instance<FashionMLP, float, int64_t>;

std::vector<int64_t> cyclicLabels(int64_t n) {
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i)
    y[i] = i % kClasses;
  return y;
}

/// The training set (read once), or random data of its shape.
const Dataset &trainingSet(bool &random) {
  static bool isRandom = false;
  static const Dataset data = [] {
    Dataset d;
    std::string error;
    if (loadDataset(bench::options().fashionDir, "train", d, error))
      return d;
    std::fprintf(stderr,
                 "sparsec-bench: %s; P4 uses random data of the same shape\n",
                 error.c_str());
    isRandom = true;
    d.count = kTrainImages;
    d.features = kFeatures;
    d.images = bench::randomFloats(kTrainImages * kFeatures, 7);
    d.labels = cyclicLabels(kTrainImages);
    return d;
  }();
  random = isRandom;
  return data;
}

void BM_TrainStep(benchmark::State &state) {
  int64_t batch = state.range(0);
  Fashion m(fashionApi);
  std::vector<float> x = bench::randomFloats(batch * kFeatures, 2);
  std::vector<int64_t> y = cyclicLabels(batch);
  for (auto _ : state)
    benchmark::DoNotOptimize(m.trainStep(batch, x.data(), y.data()));
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TrainStep)
    ->Name("FashionMLP/train_step")
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Forward(benchmark::State &state) {
  int64_t batch = state.range(0);
  Fashion m(fashionApi);
  std::vector<float> x = bench::randomFloats(batch * kFeatures, 2);
  std::vector<float> out(batch * kClasses);
  for (auto _ : state) {
    m.forward(batch, x.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_Forward)
    ->Name("FashionMLP/forward")
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Epoch(benchmark::State &state) {
  int64_t batch = state.range(0);
  bool random = false;
  const Dataset &data = trainingSet(random);
  int64_t samples = data.count;
  if (bench::options().epochLimit > 0)
    samples = std::min(samples, bench::options().epochLimit);
  Fashion m(fashionApi);
  float loss = 0;
  for (auto _ : state) {
    for (int64_t first = 0; first < samples; first += batch) {
      int64_t n = std::min(batch, samples - first);
      loss = m.trainStep(n, data.images.data() + first * kFeatures,
                         data.labels.data() + first);
    }
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * samples);
  state.counters["samples"] = double(samples);
  state.counters["last_loss"] = loss;
  state.SetLabel(random ? "random data" : "fashion-mnist");
}
BENCHMARK(BM_Epoch)
    ->Name("FashionMLP/epoch")
    ->Arg(64)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
