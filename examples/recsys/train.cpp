//===- train.cpp - Train the RecSys click model on synthetic data ---------===//
//
// Generates click data from a hidden model: users and items drawn from Zipf
// distributions (a few ids are very frequent, most are rare, as in real
// logs), a click probability from latent user/item vectors and the dense
// features. Trains the sparsec-compiled RecSys model on it and reports the
// training loss and the held-out log-loss and accuracy.
//
//   recsys_train [--steps N] [--batch N] [--seed N] [--device cpu|cuda]
//   [--check]
//
// --check exits with status 1 unless the held-out log-loss beats the
// constant-CTR baseline by 10% (used by the test suite).
//
//===----------------------------------------------------------------------===//

#ifdef RECSYS_HEADER
#include RECSYS_HEADER /* a library with its CUDA functions emulated */
#else
#include "recsys.h"
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr int64_t kUsers = 100000, kItems = 50000, kBag = 8, kDense = 13,
                  kLatent = 8;

/// Samples ids 1..n-1 with P(id = k) ~ 1 / k^s (id 0 is padding).
class Zipf {
public:
  Zipf(int64_t n, double s) : cdf(n) {
    double total = 0;
    for (int64_t k = 1; k < n; ++k)
      cdf[k] = total += std::pow(double(k), -s);
    for (double &c : cdf)
      c /= total;
  }
  int64_t operator()(std::mt19937_64 &rng) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::max<int64_t>(
        1, std::lower_bound(cdf.begin() + 1, cdf.end(), u) - cdf.begin());
  }

private:
  std::vector<double> cdf;
};

/// The hidden model generating clicks.
struct World {
  std::vector<float> userVec, itemVec, denseW;
  Zipf userIds{kUsers, 1.05}, itemIds{kItems, 1.1};
  std::mt19937_64 rng;

  explicit World(uint64_t seed) : rng(seed) {
    std::normal_distribution<float> n(0, 1);
    userVec.resize(kUsers * kLatent);
    itemVec.resize(kItems * kLatent);
    denseW.resize(kDense);
    for (float &v : userVec)
      v = n(rng);
    for (float &v : itemVec)
      v = n(rng);
    for (float &v : denseW)
      v = 0.5f * n(rng);
  }

  /// Fills one batch of `b` samples.
  void batch(int64_t b, std::vector<int64_t> &user, std::vector<int64_t> &items,
             std::vector<float> &dense, std::vector<float> &click) {
    std::normal_distribution<float> n(0, 1);
    std::uniform_real_distribution<float> u(0, 1);
    for (int64_t i = 0; i < b; ++i) {
      user[i] = userIds(rng);
      double logit = -0.5;
      for (int64_t k = 0; k < kBag; ++k) {
        int64_t it = itemIds(rng);
        items[i * kBag + k] = it;
        for (int64_t d = 0; d < kLatent; ++d)
          logit += userVec[user[i] * kLatent + d] * itemVec[it * kLatent + d] /
                   (kBag * std::sqrt(double(kLatent)));
      }
      for (int64_t d = 0; d < kDense; ++d) {
        dense[i * kDense + d] = n(rng);
        logit += denseW[d] * dense[i * kDense + d];
      }
      click[i] = u(rng) < 1.0 / (1.0 + std::exp(-logit)) ? 1.0f : 0.0f;
    }
  }
};

int fail(const char *what, int status) {
  std::fprintf(stderr, "error: %s: %s (%s)\n", what, RecSys_last_error(),
               RecSys_status_name(status));
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  int64_t steps = 2000, batch = 256;
  uint64_t seed = 7;
  bool check = false;
  std::string device = "cpu";
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--check") {
      check = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--steps")
      steps = std::atoll(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoll(argv[i + 1]);
    else if (a == "--seed")
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--device")
      device = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: %s [--steps N] [--batch N] [--seed N] "
                   "[--device cpu|cuda] [--check]\n",
                   argv[0]);
      return 2;
    }
  }
  if (steps < 1 || batch < 1) {
    std::fprintf(stderr, "error: --steps and --batch must be >= 1\n");
    return 2;
  }
  World world(seed);
  RecSys *m = nullptr;
  if (int s = RecSys_create_on(seed, device.c_str(), &m))
    return fail("create", s);
  const char *where = "";
  RecSys_device(m, &where);

  std::vector<int64_t> user(batch), items(batch * kBag);
  std::vector<float> dense(batch * kDense), click(batch), logit(batch);
  std::printf("RecSys: %lld steps of %lld synthetic clicks (Zipf users and "
              "items), AdamW catchup, on %s\n",
              (long long)steps, (long long)batch, where);
  auto t0 = std::chrono::steady_clock::now();
  double window = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    world.batch(batch, user, items, dense, click);
    float loss = 0;
    if (int s = RecSys_train_step(m, batch, user.data(), items.data(),
                                  dense.data(), click.data(), &loss))
      return fail("train_step", s);
    window += loss;
    if (step % 250 == 0 || step == steps) {
      int64_t n = step % 250 ? step % 250 : 250;
      std::printf("step %6lld  loss %.4f\n", (long long)step, window / n);
      window = 0;
    }
  }
  double secs = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - t0)
                    .count();

  // Held-out evaluation: log-loss and accuracy on fresh samples. With
  // sparse = catchup, rows not touched lately are brought up to date first.
  if (int s = RecSys_catch_up(m))
    return fail("catch_up", s);
  double logloss = 0, base = 0;
  int64_t correct = 0, clicks = 0, total = 0;
  for (int r = 0; r < 20; ++r) {
    world.batch(batch, user, items, dense, click);
    if (int s = RecSys_forward(m, batch, user.data(), items.data(),
                               dense.data(), logit.data()))
      return fail("forward", s);
    for (int64_t i = 0; i < batch; ++i, ++total) {
      double p = 1.0 / (1.0 + std::exp(-double(logit[i])));
      p = std::min(std::max(p, 1e-7), 1 - 1e-7);
      logloss -= click[i] ? std::log(p) : std::log(1 - p);
      correct += (p > 0.5) == (click[i] > 0.5f);
      clicks += click[i] > 0.5f;
    }
  }
  double ctr = double(clicks) / total;
  base = -(ctr * std::log(ctr) + (1 - ctr) * std::log(1 - ctr));
  std::printf("held-out: log-loss %.4f (constant-CTR baseline %.4f), "
              "accuracy %.2f%%\n",
              logloss / total, base, 100.0 * correct / total);
  std::printf("%.1f s, %.0f samples/s\n", secs, steps * batch / secs);
  RecSys_destroy(m);
  if (check && !(logloss / total < 0.9 * base)) {
    std::fprintf(stderr, "check failed: log-loss %.4f is not 10%% below the "
                         "baseline %.4f\n",
                 logloss / total, base);
    return 1;
  }
  return 0;
}
