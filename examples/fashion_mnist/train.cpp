//===- train.cpp - Train a sparse Fashion-MNIST classifier ----------------===//
//
// Links the library that `sparsec fashion_mlp.sdl` generated, reads
// Fashion-MNIST from Debian's dataset-fashion-mnist, trains with the
// model's optimizer and a progress bar, and prints per-epoch loss, test
// accuracy and samples/s (and, for a model with masks, each masked
// layer's sparsity).
//
//   fashion_mnist_train [--epochs N] [--batch N] [--lr X] [--seed N]
//                       [--data DIR] [--limit N] [--save FILE]
//                       [--device cpu|cuda]
//
// --device cuda trains on the GPU (parameters and optimizer state stay on
// the device; needs a library built with TARGET cuda, which this example's
// is, and a CUDA driver: otherwise it says why).
//
// Any model with an f32[B, 784] input, an i64[B] target and 10 outputs can
// be trained by it: compile with -DSPARSEC_MODEL=<Model> and
// -DSPARSEC_MODEL_HEADER="<header>" (examples/wide_sparse does).
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_MODEL
#define SPARSEC_MODEL FashionMLP
#define SPARSEC_MODEL_HEADER "fashion_mlp.h"
#endif
#include SPARSEC_MODEL_HEADER
#include "idx.h"

/// <Model>_<fn> of the model being trained.
#define SPARSEC_PASTE2(m, f) m##_##f
#define SPARSEC_PASTE(m, f) SPARSEC_PASTE2(m, f)
#define API(f) SPARSEC_PASTE(SPARSEC_MODEL, f)
#define SPARSEC_STR2(m) #m
#define SPARSEC_STR(m) SPARSEC_STR2(m)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

struct Options {
  int epochs = 3;
  int64_t batch = 64;
  double lr = 0; // 0: the model's own
  uint64_t seed = 1;
  int64_t limit = 0; // 0: all training images
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string save;
  std::string device = "cpu";
};

void usage(const char *argv0) {
  std::fprintf(stderr,
               "usage: %s [--epochs N] [--batch N] [--lr X] [--seed N] "
               "[--data DIR] [--limit N] [--save FILE] [--device cpu|cuda]\n",
               argv0);
}

bool parseArgs(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h")
      return usage(argv[0]), false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
      return false;
    }
    const char *v = argv[++i];
    char *end = nullptr;
    if (a == "--epochs")
      o.epochs = int(std::strtol(v, &end, 10));
    else if (a == "--batch")
      o.batch = std::strtoll(v, &end, 10);
    else if (a == "--lr")
      o.lr = std::strtod(v, &end);
    else if (a == "--seed")
      o.seed = std::strtoull(v, &end, 10);
    else if (a == "--limit")
      o.limit = std::strtoll(v, &end, 10);
    else if (a == "--data")
      o.data = v;
    else if (a == "--save")
      o.save = v;
    else if (a == "--device")
      o.device = v;
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      return usage(argv[0]), false;
    }
    if (end && *end) {
      std::fprintf(stderr, "error: bad value '%s' for %s\n", v, a.c_str());
      return false;
    }
  }
  if (o.epochs < 1 || o.batch < 1 || o.lr < 0 || o.limit < 0) {
    std::fprintf(stderr, "error: --epochs and --batch must be >= 1\n");
    return false;
  }
  return true;
}

int fail(const char *what, int status) {
  std::fprintf(stderr, "error: %s: %s (%s)\n", what, API(last_error)(),
               API(status_name)(status));
  return 1;
}

/// A one-line progress bar on stderr, redrawn at most 5 times a second
/// (every 10% when stderr is not a terminal).
class Progress {
public:
  Progress(int epoch, int64_t total)
      : epoch(epoch), total(total), tty(isatty(2)), start(now()) {}
  void update(int64_t done, double loss) {
    double t = now();
    int decile = int(10 * done / total);
    if (done < total && (tty ? t - last < 0.2 : decile == lastDecile))
      return;
    last = t;
    lastDecile = decile;
    int width = 30, filled = int(width * done / total);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr,
                 "%sepoch %d [%s] %3d%% %6lld/%lld loss %.4f %7.0f samples/s%s",
                 tty ? "\r" : "", epoch, bar.c_str(), int(100 * done / total),
                 (long long)done, (long long)total, loss,
                 done / std::max(1e-9, t - start), tty ? "" : "\n");
    if (done == total && tty)
      std::fprintf(stderr, "\n");
  }
  static double now() {
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

private:
  int epoch;
  int64_t total;
  bool tty;
  double start, last = 0;
  int lastDecile = -1;
};

/// Fraction of `data` classified correctly (batches of 1000).
bool accuracy(SPARSEC_MODEL *m, const Dataset &data, double &acc) {
  const int64_t chunk = 1000, classes = 10;
  std::vector<float> out(chunk * classes);
  int64_t correct = 0;
  for (int64_t i = 0; i < data.count; i += chunk) {
    int64_t n = std::min(chunk, data.count - i);
    int s = API(forward)(m, n, &data.images[i * data.features], out.data());
    if (s != 0)
      return fail("forward", s), false;
    for (int64_t r = 0; r < n; ++r) {
      const float *row = &out[r * classes];
      if (std::max_element(row, row + classes) - row == data.labels[i + r])
        ++correct;
    }
  }
  acc = double(correct) / double(data.count);
  return true;
}

/// Prints the fraction of zeros of every mask (`<layer>.weight_mask`, the
/// masked layers' current sparsity) on one line; nothing for a model
/// without masks.
bool printMaskSparsity(SPARSEC_MODEL *m) {
  int32_t count = 0;
  if (int s = API(num_params)(m, &count))
    return fail("num_params", s), false;
  std::string line;
  for (int32_t i = 0; i < count; ++i) {
    const char *name = nullptr;
    int32_t rank = 0;
    int64_t dims[4], nnz = 0;
    double sparsity = 0;
    if (int s = API(param_info)(m, i, &name, &rank, dims, &nnz, &sparsity))
      return fail("param_info", s), false;
    std::string n = name;
    const std::string suffix = "_mask";
    if (n.size() < suffix.size() ||
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    float *values = nullptr;
    int64_t numel = 0;
    if (int s = API(param_values)(m, name, &values, &numel))
      return fail("param_values", s), false;
    int64_t zeros = std::count(values, values + numel, 0.0f);
    char buf[160];
    std::snprintf(buf, sizeof(buf), "  %s %.1f%%",
                  n.substr(0, n.size() - suffix.size()).c_str(),
                  100.0 * double(zeros) / double(std::max<int64_t>(numel, 1)));
    line += buf;
  }
  if (!line.empty())
    std::printf("  sparsity:%s\n", line.c_str());
  return true;
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!parseArgs(argc, argv, opt))
    return 2;
  Dataset train, test;
  std::string error;
  if (!loadDataset(opt.data, "train", train, error) ||
      !loadDataset(opt.data, "t10k", test, error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  if (train.features != 784) {
    std::fprintf(stderr, "error: expected 28x28 images\n");
    return 1;
  }
  int64_t n = opt.limit ? std::min(opt.limit, train.count) : train.count;

  SPARSEC_MODEL *m = nullptr;
  if (int s = API(create_on)(opt.seed, opt.device.c_str(), &m))
    return fail("create", s);
  const char *device = "";
  API(device)(m, &device);
  if (opt.lr > 0)
    if (int s = API(set_lr)(m, opt.lr))
      return fail("set_lr", s);
  double lr = 0;
  API(get_lr)(m, &lr);
  std::printf(
      "Fashion-MNIST, model %s on %s: %lld training / %lld test images, "
      "batch %lld, lr %g, seed %llu\n",
      SPARSEC_STR(SPARSEC_MODEL), device, (long long)n, (long long)test.count,
      (long long)opt.batch, lr, (unsigned long long)opt.seed);

  std::vector<int64_t> order(train.count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opt.seed);
  std::vector<float> xb(opt.batch * train.features);
  std::vector<int64_t> yb(opt.batch);
  double totalTime = 0;
  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    Progress bar(epoch, n);
    double lossSum = 0, t0 = Progress::now();
    int64_t steps = 0;
    for (int64_t i = 0; i < n; i += opt.batch) {
      int64_t b = std::min(opt.batch, n - i);
      for (int64_t r = 0; r < b; ++r) {
        int64_t idx = order[i + r];
        std::memcpy(&xb[r * train.features], &train.images[idx * 784],
                    784 * sizeof(float));
        yb[r] = train.labels[idx];
      }
      float loss = 0;
      if (int s = API(train_step)(m, b, xb.data(), yb.data(), &loss))
        return fail("train_step", s);
      lossSum += loss;
      ++steps;
      bar.update(i + b, lossSum / steps);
    }
    double secs = Progress::now() - t0;
    totalTime += secs;
    double acc = 0;
    if (!accuracy(m, test, acc))
      return 1;
    std::printf("epoch %d: loss %.4f  test accuracy %.2f%%  %.1f s  "
                "%.0f samples/s\n",
                epoch, lossSum / steps, 100 * acc, secs, n / secs);
    if (!printMaskSparsity(m))
      return 1;
    std::fflush(stdout);
  }
  std::printf("trained %d epochs in %.1f s (%.1f s per epoch)\n", opt.epochs,
              totalTime, totalTime / opt.epochs);
  if (!opt.save.empty()) {
    if (int s = API(save)(m, opt.save.c_str()))
      return fail("save", s);
    std::printf("saved %s\n", opt.save.c_str());
  }
  API(destroy)(m);
  return 0;
}
