//===- bench_main.cpp - Entry point and helpers of sparsec-bench ----------===//
//
// main() of sparsec-bench: Google Benchmark's flags plus
//   --fashion-dir=DIR   Fashion-MNIST IDX files for P4 (default Debian's)
//   --epoch-limit=N     samples of one P4 epoch (default: all 60,000)
//   --device=cpu|cuda   device the models run on (default cpu; cuda: the
//                       GPU, docs/cuda.md)
// and the helpers declared in bench_common.h. The benchmarks themselves are
// in bench_layers.cpp (P1, P2, sweep), bench_embedding.cpp (P3),
// bench_fashion.cpp (P4) and bench_machine.cpp (the roofline's peaks); see
// docs/performance.md and run.py, which runs them.
//
//===----------------------------------------------------------------------===//

#include "bench_common.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace bench {

Options &options() {
  static Options o;
  return o;
}

std::vector<float> randomFloats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

std::vector<int64_t> zipfIds(size_t count, int64_t keys, int64_t rows,
                             unsigned seed) {
  // Inverse-CDF sampling over the cumulative 1/(k+1) weights.
  std::vector<double> cdf(keys);
  double sum = 0;
  for (int64_t k = 0; k < keys; ++k)
    cdf[k] = sum += 1.0 / double(k + 1);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, sum);
  std::vector<int64_t> ids(count);
  for (int64_t &id : ids) {
    int64_t k = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    id = (std::min(k, keys - 1) * 97) % rows;
  }
  return ids;
}

void check(int status, const char *what, const char *message) {
  if (status != 0) {
    std::fprintf(stderr, "sparsec-bench: %s failed (status %d): %s\n", what,
                 status, message);
    std::exit(1);
  }
}

} // namespace bench

namespace {

/// Takes this program's own `--name=value` flags out of argv.
bool parseOwnFlags(int &argc, char **argv) {
  bench::Options &o = bench::options();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (std::strncmp(a, "--fashion-dir=", 14) == 0) {
      o.fashionDir = a + 14;
    } else if (std::strncmp(a, "--epoch-limit=", 14) == 0) {
      char *end = nullptr;
      o.epochLimit = std::strtoll(a + 14, &end, 10);
      if (*end || o.epochLimit < 0) {
        std::fprintf(stderr, "sparsec-bench: bad value in '%s'\n", a);
        return false;
      }
    } else if (std::strncmp(a, "--device=", 9) == 0) {
      o.device = a + 9;
      if (o.device != "cpu" && o.device != "cuda") {
        std::fprintf(
            stderr, "sparsec-bench: unknown device in '%s' (cpu or cuda)\n", a);
        return false;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (!parseOwnFlags(argc, argv))
    return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 2;
  benchmark::AddCustomContext("sparsec.fashion_dir",
                              bench::options().fashionDir);
  benchmark::AddCustomContext("sparsec.device", bench::options().device);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
