/*===- model_test.c - The model API on the CUDA device vs the CPU -*- C -*-===*
 *
 * Links a library of kernels_mlp.sdl built with --target=cpu,cuda and
 * creates the model twice from one seed: Mlp_create_on(seed, "cpu") and
 * Mlp_create_on(seed, "cuda"). Both train on the same 25 random batches
 * (SGD with momentum); then the test compares every step's loss, every
 * parameter and gradient (read through the device: param_values,
 * param_grad), the forward output and the step count, checks that a value
 * written through param_values reaches the device, that a checkpoint saved
 * on the device loads into a CPU model with the same forward, and the
 * errors of create_on.
 *
 *   model_test           on a GPU; exit 77 (skipped) without one.
 *   model_test --no-gpu  without CUDA: create_on("cuda") fails cleanly.
 *
 * Built with -DSPARSEC_CUDA_EMULATED against a --cuda-emulate library, the
 * same test runs anywhere: the device path of the runtime (residency,
 * copies, the optimizer step on device buffers) with the CUDA functions
 * run on the host.
 *===----------------------------------------------------------------------===*/
#include MODEL_HEADER

#include "cuda_test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kIn = 40, kOut = 10, kBatch = 64, kSteps = 25 };

static const char *const kParams[] = {"fc1.weight", "fc1.bias",   "fc2.weight",
                                      "fc2.bias",   "fc3.weight", "fc3.bias"};
enum { kNumParams = sizeof(kParams) / sizeof(kParams[0]) };

static void check_status(int got, int want, const char *what) {
  printf("%s: %s -> %d%s%s\n", got == want ? "PASS" : "FAIL", what, got,
         got ? ", " : "", got ? Mlp_last_error() : "");
  cuda_test_failures += got != want;
}

static uint32_t rng = 2024u;
static float uniform(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* Parameter or gradient `name` of both models: the worst difference. */
static double compare_param(Mlp *cpu, Mlp *dev, const char *name, int grad) {
  const float *a, *b;
  float *va, *vb;
  int64_t na, nb;
  int rc;
  if (grad) {
    rc =
        Mlp_param_grad(cpu, name, &a, &na) | Mlp_param_grad(dev, name, &b, &nb);
  } else {
    rc = Mlp_param_values(cpu, name, &va, &na) |
         Mlp_param_values(dev, name, &vb, &nb);
    a = va;
    b = vb;
  }
  if (rc != 0 || na != nb)
    return INFINITY;
  return cuda_test_rel_diff(b, a, na);
}

static int run(void) {
  Mlp *cpu = NULL, *dev = NULL;
  check_status(Mlp_create_on(7, "cpu", &cpu), 0, "create_on cpu");
  check_status(Mlp_create_on(7, "cuda", &dev), 0, "create_on cuda");
  if (!cpu || !dev)
    return 1;
  const char *where = "";
  Mlp_device(dev, &where);
  printf("device: %s\n", where);
  cuda_test_check(strncmp(where, "cuda", 4) == 0, "Mlp_device says cuda", 0);
  Mlp_device(cpu, &where);
  cuda_test_check(strcmp(where, "cpu") == 0, "Mlp_device says cpu", 0);

  static float x[kBatch * kIn];
  static int64_t y[kBatch];
  double worst_loss = 0;
  for (int s = 0; s < kSteps; ++s) {
    for (int i = 0; i < kBatch * kIn; ++i)
      x[i] = uniform();
    for (int i = 0; i < kBatch; ++i)
      y[i] = (int64_t)((uniform() + 1.0f) * 4.999f);
    float lc = 0, ld = 0;
    int rc = Mlp_train_step(cpu, kBatch, x, y, &lc) |
             Mlp_train_step(dev, kBatch, x, y, &ld);
    if (rc != 0) {
      check_status(rc, 0, "train_step");
      break;
    }
    double e = fabs((double)ld - lc) / (1.0 + fabs((double)lc));
    if (!(e <= worst_loss))
      worst_loss = e;
    if (s == 0 || s == kSteps - 1)
      printf("step %d: loss cpu %.6f cuda %.6f\n", s + 1, lc, ld);
  }
  /* Summation orders differ (tiled CPU kernels, atomic adds), so the two
   * trajectories drift apart by rounding; 25 steps stay far below 1e-4. */
  cuda_test_check(worst_loss <= 1e-4, "loss of every step, cuda vs cpu",
                  worst_loss);
  for (int i = 0; i < kNumParams; ++i) {
    char what[96];
    double e = compare_param(cpu, dev, kParams[i], 0);
    snprintf(what, sizeof(what), "%s after %d steps", kParams[i], kSteps);
    cuda_test_check(e <= 1e-4, what, e);
    e = compare_param(cpu, dev, kParams[i], 1);
    snprintf(what, sizeof(what), "gradient of %s (last step)", kParams[i]);
    cuda_test_check(e <= 1e-4, what, e);
  }
  int64_t sc = 0, sd = 0;
  Mlp_step_count(cpu, &sc);
  Mlp_step_count(dev, &sd);
  cuda_test_check(sc == kSteps && sd == kSteps, "step counts", (double)sd);

  static float oc[kBatch * kOut], od[kBatch * kOut];
  check_status(Mlp_forward(cpu, kBatch, x, oc) |
                   Mlp_forward(dev, kBatch, x, od),
               0, "forward");
  cuda_test_check(cuda_test_rel_diff(od, oc, kBatch * kOut) <= 1e-4,
                  "forward output, cuda vs cpu",
                  cuda_test_rel_diff(od, oc, kBatch * kOut));

  /* A value written through param_values reaches the device. */
  float *bias;
  int64_t n;
  Mlp_param_values(dev, "fc3.bias", &bias, &n);
  for (int64_t i = 0; i < n; ++i)
    bias[i] += 1.0f;
  Mlp_forward(dev, kBatch, x, od);
  double moved = 0;
  for (int i = 0; i < kBatch * kOut; ++i)
    moved += od[i] - oc[i];
  moved /= kBatch * kOut;
  cuda_test_check(fabs(moved - 1.0) < 1e-3,
                  "forward after writing fc3.bias += 1 on the host", moved);

  /* A checkpoint of the device model loads into a CPU model. */
  char path[] = "/tmp/sparsec-cuda-model-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0)
    close(fd);
  Mlp *back = NULL;
  check_status(Mlp_save(dev, path), 0, "save the cuda model");
  check_status(Mlp_create_on(99, "cpu", &back), 0, "create a cpu model");
  check_status(back ? Mlp_load(back, path) : -1, 0,
               "load the checkpoint on the cpu");
  if (back) {
    double same = 0;
    for (int i = 0; i < kNumParams; ++i) {
      double e = compare_param(back, dev, kParams[i], 0);
      if (!(e <= same))
        same = e;
    }
    cuda_test_check(
        same == 0,
        "the loaded cpu model's parameters == the cuda model's (bits)", same);
    Mlp_forward(back, kBatch, x, oc);
    cuda_test_check(cuda_test_rel_diff(oc, od, kBatch * kOut) <= 1e-5,
                    "forward of the loaded cpu model",
                    cuda_test_rel_diff(oc, od, kBatch * kOut));
  }
  /* ... and back onto the device: load into the device model. */
  check_status(Mlp_load(dev, path), 0,
               "load the checkpoint into the cuda model");
  Mlp_forward(dev, kBatch, x, od);
  cuda_test_check(cuda_test_rel_diff(od, oc, kBatch * kOut) <= 1e-5,
                  "forward after load on the cuda model",
                  cuda_test_rel_diff(od, oc, kBatch * kOut));
  unlink(path);

  Mlp *bad = (Mlp *)1;
  check_status(Mlp_create_on(1, "tpu", &bad), SPARSEC_ERR_INVALID_ARG,
               "create_on tpu");
  cuda_test_check(bad == NULL, "no model on failure", 0);
  check_status(Mlp_create_on(1, NULL, &bad), SPARSEC_ERR_NULL,
               "create_on NULL device");
  Mlp_destroy(back);
  Mlp_destroy(cpu);
  Mlp_destroy(dev);
  return cuda_test_failures ? 1 : 0;
}

int main(int argc, char **argv) {
#ifdef SPARSEC_CUDA_EMULATED
  (void)argc;
  (void)argv;
  printf("emulated: the CUDA functions run on the host (--cuda-emulate)\n");
#else
  if (argc > 1 && strcmp(argv[1], "--no-gpu") == 0) {
    if (sparsec_cuda_available() == SPARSEC_OK) {
      printf("SKIP: this machine has CUDA\n");
      return 77;
    }
    Mlp *m = (Mlp *)1;
    int rc = Mlp_create_on(1, "cuda", &m);
    int ok =
        rc == SPARSEC_ERR_CUDA && m == NULL && strstr(Mlp_last_error(), "CUDA");
    printf("%s: create_on cuda without a GPU -> %d, \"%s\"\n",
           ok ? "PASS" : "FAIL", rc, Mlp_last_error());
    return ok ? 0 : 1;
  }
  if (sparsec_cuda_available() != SPARSEC_OK) {
    printf("SKIP: %s\n", sparsec_last_error());
    return 77;
  }
#endif
  return run();
}
