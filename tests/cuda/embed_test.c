/*===- embed_test.c - Embedding rows on the CUDA device vs the CPU -*- C -*-===*
 *
 * Links a library of kernels_rec.sdl built with --target=cpu,cuda (a
 * max_norm + scale_grad_by_freq table with a padding row, a mean bag,
 * AdamW with sparse = catchup and gradient clipping) and creates the model
 * on "cpu" and on "cuda" from one seed. Both train on the same 30 batches
 * of few distinct ids (repeats, padding ids, rows that sit out steps and
 * are caught up later); one batch whose loss overflows must be refused by
 * both after their kernels ran, leaving them as they were (the device
 * restores the rows it caught up and renormed). Then every step's loss, every
 *parameter and gradient, the forward output, and the parameters after catch_up
 *are compared (relative error <= 1e-4: the kernels sum in other orders).
 *
 *   embed_test   on a GPU; exit 77 (skipped) without one.
 *
 * Built with -DSPARSEC_CUDA_EMULATED against a --cuda-emulate library it
 * runs anywhere: the runtime's device path (catch-up, renorm, frequency
 * scaling, clipping, undo) with the CUDA functions run on the host.
 *===----------------------------------------------------------------------===*/
#include MODEL_HEADER

#include "cuda_test.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { kBatch = 48, kBag = 4, kDense = 5, kSteps = 30 };

static const char *const kParams[] = {"user_emb.weight", "item_emb.weight",
                                      "fc1.weight",      "fc1.bias",
                                      "fc2.weight",      "fc2.bias"};
enum { kNumParams = sizeof(kParams) / sizeof(kParams[0]) };

static uint32_t rng = 77u;
static uint32_t next(void) {
  rng = rng * 1664525u + 1013904223u;
  return rng >> 8;
}

static double compare_param(Rec *cpu, Rec *dev, const char *name, int grad) {
  const float *a = NULL, *b = NULL;
  float *va = NULL, *vb = NULL;
  int64_t na = 0, nb = 0;
  int rc;
  if (grad) {
    rc =
        Rec_param_grad(cpu, name, &a, &na) | Rec_param_grad(dev, name, &b, &nb);
  } else {
    rc = Rec_param_values(cpu, name, &va, &na) |
         Rec_param_values(dev, name, &vb, &nb);
    a = va;
    b = vb;
  }
  return rc != 0 || na != nb ? INFINITY : cuda_test_rel_diff(b, a, na);
}

/* The worst difference of every parameter (or gradient) of the two. */
static void compare_all(Rec *cpu, Rec *dev, int grad, const char *when) {
  for (int i = 0; i < kNumParams; ++i) {
    char what[128];
    const double e = compare_param(cpu, dev, kParams[i], grad);
    snprintf(what, sizeof(what), "%s%s %s", grad ? "gradient of " : "",
             kParams[i], when);
    cuda_test_check(e <= 1e-4, what, e);
  }
}

static int64_t user[kBatch], items[kBatch * kBag];
static float dense[kBatch * kDense], click[kBatch];

/* A batch: users from a window of 12 of the 64 rows that moves each step
 * (row 0 pads), items from 10 of 48 (row 1 pads). */
static void batch(int step) {
  for (int i = 0; i < kBatch; ++i) {
    user[i] = (int64_t)((step * 5 + next() % 12) % 64);
    click[i] = (float)(next() % 2);
  }
  for (int i = 0; i < kBatch * kBag; ++i)
    items[i] = (int64_t)((step * 3 + next() % 10) % 48);
  for (int i = 0; i < kBatch * kDense; ++i)
    dense[i] = (float)(next() % 2001) / 1000.0f - 1.0f;
}

static int run(void) {
  Rec *cpu = NULL, *dev = NULL;
  int rc = Rec_create_on(5, "cpu", &cpu) | Rec_create_on(5, "cuda", &dev);
  cuda_test_check(rc == 0, "create_on cpu and cuda", rc);
  if (rc != 0) {
    printf("error: %s\n", Rec_last_error());
    return 1;
  }
  const char *where = "";
  Rec_device(dev, &where);
  printf("device: %s\n", where);
  double worst_loss = 0;
  for (int s = 0; s < kSteps; ++s) {
    batch(s);
    if (s == kSteps / 2) { /* a failed step changes neither model */
      for (int i = 0; i < kBatch * kDense; ++i)
        dense[i] *= 3.0e38f; /* finite, but the loss overflows */
      float lc = 0, ld = 0;
      int rc_c = Rec_train_step(cpu, kBatch, user, items, dense, click, &lc);
      int rc_d = Rec_train_step(dev, kBatch, user, items, dense, click, &ld);
      cuda_test_check(rc_c == SPARSEC_ERR_NONFINITE &&
                          rc_d == SPARSEC_ERR_NONFINITE,
                      "an overflowing loss: both refuse the step", rc_d);
      compare_all(cpu, dev, 0, "after the refused step");
      batch(s);
    }
    float lc = 0, ld = 0;
    rc = Rec_train_step(cpu, kBatch, user, items, dense, click, &lc) |
         Rec_train_step(dev, kBatch, user, items, dense, click, &ld);
    if (rc != 0) {
      cuda_test_check(0, "train_step", rc);
      printf("error: %s\n", Rec_last_error());
      break;
    }
    const double e = fabs((double)ld - lc) / (1.0 + fabs((double)lc));
    if (!(e <= worst_loss))
      worst_loss = e;
    if (s == 0 || s == kSteps - 1)
      printf("step %d: loss cpu %.6f cuda %.6f\n", s + 1, lc, ld);
  }
  cuda_test_check(worst_loss <= 1e-4, "loss of every step, cuda vs cpu",
                  worst_loss);
  compare_all(cpu, dev, 0, "after training");
  compare_all(cpu, dev, 1, "(last step)");
  static float oc[kBatch], od[kBatch];
  rc = Rec_forward(cpu, kBatch, user, items, dense, oc) |
       Rec_forward(dev, kBatch, user, items, dense, od);
  cuda_test_check(rc == 0 && cuda_test_rel_diff(od, oc, kBatch) <= 1e-4,
                  "forward output (renormed rows)",
                  cuda_test_rel_diff(od, oc, kBatch));
  rc = Rec_catch_up(cpu) | Rec_catch_up(dev);
  cuda_test_check(rc == 0, "catch_up", rc);
  compare_all(cpu, dev, 0, "after catch_up");
  Rec_destroy(cpu);
  Rec_destroy(dev);
  return cuda_test_failures ? 1 : 0;
}

int main(void) {
#ifdef SPARSEC_CUDA_EMULATED
  printf("emulated: the CUDA functions run on the host (--cuda-emulate)\n");
#else
  if (cuda_test_need_gpu() != 0)
    return 77;
#endif
  return run();
}
