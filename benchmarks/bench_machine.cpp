//===- bench_machine.cpp - Peaks of the machine for the roofline ----------===//
//
// Cheap probes of the measured machine, for the roofline estimates of
// docs/performance.md (compiled with -march=native, see CMakeLists.txt):
//   Machine/fma/threads:N      f32 multiply-add rate: 16 independent
//                              accumulators of the widest vector per thread
//                              (counter "flops", FLOP/s)
//   Machine/triad/threads:N    a[i] = b[i] + s * c[i] over 3 x 128 MiB
//                              (counter "bytes", 12 bytes per element,
//                              write-allocate traffic not counted)
//   Machine/triad_l2/threads:N the same over 3 x 256 KiB per thread (L2)
//   Machine/latency            dependent loads over a random cycle of 64-byte
//                              lines in 256 MiB (counter "s_per_load")
//
//===----------------------------------------------------------------------===//

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

void BM_Fma(benchmark::State &state) {
  constexpr int kAcc = 16; // enough independent chains to hide FMA latency
  constexpr int kSteps = 1024;
  Vec acc[kAcc];
  for (int i = 0; i < kAcc; ++i)
    acc[i] = Vec{} + float(i) * 1e-3f;
  Vec mul = Vec{} + 0.999999f, add = Vec{} + 1e-7f;
  for (auto _ : state) {
    for (int s = 0; s < kSteps; ++s) {
      for (int i = 0; i < kAcc; ++i)
        acc[i] = acc[i] * mul + add; // contracted to an FMA
      benchmark::ClobberMemory();
    }
  }
  float sink = 0;
  for (int i = 0; i < kAcc; ++i)
    sink += acc[i][0];
  benchmark::DoNotOptimize(sink);
  state.counters["flops"] = benchmark::Counter(double(state.iterations()) *
                                                   kSteps * kAcc * kLanes * 2,
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Fma)->Name("Machine/fma")->Threads(1)->Threads(2)->UseRealTime();

/// a[i] = b[i] + s * c[i] over `elems` floats, `passes` times per iteration;
/// counts 12 bytes per element and pass.
void triad(benchmark::State &state, float *a, const float *b, const float *c,
           size_t elems, int passes) {
  for (auto _ : state) {
    for (int p = 0; p < passes; ++p) {
      for (size_t i = 0; i < elems; ++i)
        a[i] = b[i] + 0.5f * c[i];
      benchmark::ClobberMemory();
    }
  }
  state.counters["bytes"] =
      benchmark::Counter(double(state.iterations()) * passes * elems * 12,
                         benchmark::Counter::kIsRate);
}

void BM_Triad(benchmark::State &state) {
  // 128 MiB per array; each thread streams its own slice of the three.
  constexpr size_t kElems = size_t(128) << 20 >> 2;
  static std::vector<float> a(kElems), b(kElems, 1.0f), c(kElems, 2.0f);
  size_t slice = kElems / size_t(state.threads());
  size_t begin = slice * size_t(state.thread_index());
  triad(state, a.data() + begin, b.data() + begin, c.data() + begin, slice, 1);
}
BENCHMARK(BM_Triad)
    ->Name("Machine/triad")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_TriadL2(benchmark::State &state) {
  // 3 x 256 KiB per thread: resident in a 2 MiB L2.
  constexpr size_t kElems = size_t(256) << 10 >> 2;
  std::vector<float> a(kElems), b(kElems, 1.0f), c(kElems, 2.0f);
  triad(state, a.data(), b.data(), c.data(), kElems, 64);
}
BENCHMARK(BM_TriadL2)
    ->Name("Machine/triad_l2")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_Latency(benchmark::State &state) {
  struct alignas(64) Line {
    uint32_t next;
  };
  constexpr uint32_t kLines = (256u << 20) / 64;
  static std::vector<Line> lines = [] {
    // Sattolo's algorithm: one random cycle through every line.
    std::vector<uint32_t> order(kLines);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937 rng(9);
    for (uint32_t i = kLines - 1; i > 0; --i)
      std::swap(order[i], order[rng() % i]);
    std::vector<Line> l(kLines);
    for (uint32_t i = 0; i < kLines; ++i)
      l[order[i]].next = order[(i + 1) % kLines];
    return l;
  }();
  constexpr int kLoads = 1 << 16;
  uint32_t at = 0;
  for (auto _ : state)
    for (int i = 0; i < kLoads; ++i)
      at = lines[at].next;
  benchmark::DoNotOptimize(at);
  state.counters["s_per_load"] = benchmark::Counter(
      double(state.iterations()) * kLoads,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Latency)->Name("Machine/latency")->UseRealTime();

} // namespace
