//===- bench_models.cpp - Benchmarks of generated model libraries ---------===//
//
// Times the entry points of libraries compiled by sparsec:
//   FashionMLP/*  the example's 784 -> 2000 (90% sparse) -> 10 MLP
//   SparseLayer/* P1 (forward) and P2 (train step) of docs/performance.md:
//                 4096 -> 4096 sparse_linear at 90% sparsity.
// Inputs are random; the batch size is the benchmark argument.
//
//===----------------------------------------------------------------------===//

#include "fashion_mlp.h"
#include "sparse_layer.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

std::vector<float> randomFloats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

void check(int status, const char *what, const char *message) {
  if (status != 0) {
    std::fprintf(stderr, "%s failed: %s\n", what, message);
    std::exit(1);
  }
}

void BM_FashionMLP_TrainStep(benchmark::State &state) {
  int64_t batch = state.range(0);
  FashionMLP *m = nullptr;
  check(FashionMLP_create(1, &m), "create", FashionMLP_last_error());
  std::vector<float> x = randomFloats(batch * 784, 2);
  std::vector<int64_t> y(batch);
  for (int64_t i = 0; i < batch; ++i)
    y[i] = i % 10;
  float loss;
  for (auto _ : state)
    check(FashionMLP_train_step(m, batch, x.data(), y.data(), &loss),
          "train_step", FashionMLP_last_error());
  state.SetItemsProcessed(state.iterations() * batch);
  FashionMLP_destroy(m);
}
BENCHMARK(BM_FashionMLP_TrainStep)->Arg(64)->Unit(benchmark::kMillisecond);

void BM_FashionMLP_Forward(benchmark::State &state) {
  int64_t batch = state.range(0);
  FashionMLP *m = nullptr;
  check(FashionMLP_create(1, &m), "create", FashionMLP_last_error());
  std::vector<float> x = randomFloats(batch * 784, 2), out(batch * 10);
  for (auto _ : state)
    check(FashionMLP_forward(m, batch, x.data(), out.data()), "forward",
          FashionMLP_last_error());
  state.SetItemsProcessed(state.iterations() * batch);
  FashionMLP_destroy(m);
}
BENCHMARK(BM_FashionMLP_Forward)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_SparseLayer_Forward(benchmark::State &state) {
  int64_t batch = state.range(0);
  SparseLayer *m = nullptr;
  check(SparseLayer_create(1, &m), "create", SparseLayer_last_error());
  std::vector<float> x = randomFloats(batch * 4096, 3), y(batch * 4096);
  for (auto _ : state)
    check(SparseLayer_forward(m, batch, x.data(), y.data()), "forward",
          SparseLayer_last_error());
  state.SetItemsProcessed(state.iterations() * batch);
  SparseLayer_destroy(m);
}
BENCHMARK(BM_SparseLayer_Forward)->Arg(256)->Unit(benchmark::kMillisecond);

void BM_SparseLayer_TrainStep(benchmark::State &state) {
  int64_t batch = state.range(0);
  SparseLayer *m = nullptr;
  check(SparseLayer_create(1, &m), "create", SparseLayer_last_error());
  std::vector<float> x = randomFloats(batch * 4096, 3),
                     t = randomFloats(batch * 4096, 4);
  float loss;
  for (auto _ : state)
    check(SparseLayer_train_step(m, batch, x.data(), t.data(), &loss),
          "train_step", SparseLayer_last_error());
  state.SetItemsProcessed(state.iterations() * batch);
  SparseLayer_destroy(m);
}
BENCHMARK(BM_SparseLayer_TrainStep)->Arg(256)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
