// Trains the tiny sparse MLP compiled by sparsec_add_model() for a few steps
// on a synthetic 4-class problem and prints the loss. Exits non-zero when a
// call fails or the loss does not go down.
#include "tiny_mlp.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  constexpr int64_t batch = 64, features = 16, classes = 4, steps = 20;
  TinyMLP *model = nullptr;
  if (int s = TinyMLP_create(/*seed=*/42, &model)) {
    std::fprintf(stderr, "create: %s (%s)\n", TinyMLP_last_error(),
                 TinyMLP_status_name(s));
    return 1;
  }
  // The class of a sample is the block of 4 features with the largest sum.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(batch * features);
  std::vector<int64_t> y(batch);
  float first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    for (int64_t i = 0; i < batch; ++i) {
      float best = -1e30f;
      for (int64_t c = 0; c < classes; ++c) {
        float sum = 0;
        for (int64_t k = 0; k < features / classes; ++k)
          sum += x[i * features + c * 4 + k] = normal(rng);
        if (sum > best)
          best = sum, y[i] = c;
      }
    }
    float loss = 0;
    if (int s = TinyMLP_train_step(model, batch, x.data(), y.data(), &loss)) {
      std::fprintf(stderr, "train_step: %s (%s)\n", TinyMLP_last_error(),
                   TinyMLP_status_name(s));
      return 1;
    }
    if (step == 0)
      first = loss;
    last = loss;
    std::printf("step %2d loss %.4f\n", step + 1, loss);
  }
  int64_t taken = 0;
  TinyMLP_step_count(model, &taken);
  std::printf("trained %lld steps: loss %.4f -> %.4f\n", (long long)taken,
              first, last);
  TinyMLP_destroy(model);
  return last < first ? 0 : 1;
}
