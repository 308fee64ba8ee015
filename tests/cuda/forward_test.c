/*===- forward_test.c - CUDA forward kernels against the CPU ones -*- C -*-===*
 *
 * Links the object of forward_mlp.sdl compiled with --target=cpu,cuda (CPU
 * kernel sparsec_kernel_Mlp_forward and CUDA kernel
 * sparsec_gpu_kernel_Mlp_forward, same memref ABI) with the static runtime.
 *
 *   forward_test           compares the CUDA forward with the CPU forward
 *                          for several batch sizes; exit 77 (skipped) when
 *                          the machine has no usable CUDA driver/GPU.
 *   forward_test --no-gpu  on a machine without CUDA: runs the generated
 *                          host code of the CUDA forward and checks that it
 *                          fails cleanly ("no CUDA driver"/"no CUDA device")
 *                          without crashing or touching the outputs; exit 77
 *                          where CUDA is available.
 *===----------------------------------------------------------------------===*/
#include "cuda_test.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kIn = 40, kHidden = 24, kOut = 10, kNnz = 240 /* 24*40*(1-0.75) */ };

typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} Memref1;
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} Memref2;

#define FORWARD_ARGS                                                           \
  Memref2 *, Memref1 *, Memref1 *, Memref1 *, Memref1 *, Memref2 *, Memref1 *, \
      Memref2 *
void _mlir_ciface_sparsec_kernel_Mlp_forward(FORWARD_ARGS);
void _mlir_ciface_sparsec_gpu_kernel_Mlp_forward(FORWARD_ARGS);

void *mgpuStreamCreate(void);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamDestroy(void *stream);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);

/* The model's buffers, in argument order, on one device. */
typedef struct {
  void *x, *pos, *crd, *vals, *b1, *w2, *b2, *out;
} Buffers;

static Memref1 vec(void *p, int64_t n) {
  Memref1 m = {p, p, 0, {n}, {1}};
  return m;
}
static Memref2 mat(void *p, int64_t rows, int64_t cols) {
  Memref2 m = {p, p, 0, {rows, cols}, {cols, 1}};
  return m;
}

typedef void (*ForwardFn)(FORWARD_ARGS);

static void run(ForwardFn f, const Buffers *b, int64_t batch) {
  Memref2 x = mat(b->x, batch, kIn), w2 = mat(b->w2, kOut, kHidden);
  Memref2 out = mat(b->out, batch, kOut);
  Memref1 pos = vec(b->pos, kHidden + 1), crd = vec(b->crd, kNnz);
  Memref1 vals = vec(b->vals, kNnz), b1 = vec(b->b1, kHidden);
  Memref1 b2 = vec(b->b2, kOut);
  f(&x, &pos, &crd, &vals, &b1, &w2, &b2, &out);
}

static uint32_t rng = 12345u;
static float uniform(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* Host buffers with a CSR pattern of kNnz / kHidden entries per row. */
static void fill_host(Buffers *h, int64_t batch) {
  h->x = malloc(sizeof(float) * (size_t)(batch * kIn + 1));
  h->pos = malloc(sizeof(int32_t) * (kHidden + 1));
  h->crd = malloc(sizeof(int32_t) * kNnz);
  h->vals = malloc(sizeof(float) * kNnz);
  h->b1 = malloc(sizeof(float) * kHidden);
  h->w2 = malloc(sizeof(float) * kOut * kHidden);
  h->b2 = malloc(sizeof(float) * kOut);
  h->out = malloc(sizeof(float) * (size_t)(batch * kOut + 1));
  const int per_row = kNnz / kHidden;
  int32_t *pos = h->pos, *crd = h->crd;
  for (int r = 0; r <= kHidden; ++r)
    pos[r] = r * per_row;
  for (int r = 0; r < kHidden; ++r)
    for (int j = 0; j < per_row; ++j)
      crd[r * per_row + j] = (r % 4) + j * (kIn / per_row);
  for (int64_t i = 0; i < batch * kIn; ++i)
    ((float *)h->x)[i] = uniform();
  for (int i = 0; i < kNnz; ++i)
    ((float *)h->vals)[i] = uniform();
  for (int i = 0; i < kHidden; ++i)
    ((float *)h->b1)[i] = uniform();
  for (int i = 0; i < kOut * kHidden; ++i)
    ((float *)h->w2)[i] = uniform();
  for (int i = 0; i < kOut; ++i)
    ((float *)h->b2)[i] = uniform();
}

static size_t sizes[8];
static void set_sizes(int64_t batch) {
  size_t s[8] = {sizeof(float) * (size_t)(batch * kIn),
                 sizeof(int32_t) * (kHidden + 1),
                 sizeof(int32_t) * kNnz,
                 sizeof(float) * kNnz,
                 sizeof(float) * kHidden,
                 sizeof(float) * kOut * kHidden,
                 sizeof(float) * kOut,
                 sizeof(float) * (size_t)(batch * kOut)};
  memcpy(sizes, s, sizeof(s));
}

static void free_host(Buffers *h) {
  void **p = (void **)h;
  for (int i = 0; i < 8; ++i)
    free(p[i]);
}

static int no_gpu_mode(void) {
  if (cuda_test_need_no_gpu())
    return 77;
  const int64_t batch = 5;
  Buffers h;
  fill_host(&h, batch);
  for (int64_t i = 0; i < batch * kOut; ++i)
    ((float *)h.out)[i] = 42.0f;
  (void)sparsec_cuda_take_error();
  run(_mlir_ciface_sparsec_gpu_kernel_Mlp_forward, &h, batch);
  int status = sparsec_cuda_take_error();
  const char *why = sparsec_last_error();
  int ok = status == SPARSEC_ERR_CUDA &&
           (strstr(why, "no CUDA driver") || strstr(why, "no CUDA device") ||
            strstr(why, "CUDA unavailable"));
  for (int64_t i = 0; i < batch * kOut; ++i)
    ok = ok && ((float *)h.out)[i] == 42.0f;
  printf("%s: CUDA forward without a GPU -> %d, \"%s\"\n", ok ? "PASS" : "FAIL",
         status, why);
  free_host(&h);
  return ok ? 0 : 1;
}

static int compare(int64_t batch) {
  Buffers h, d;
  fill_host(&h, batch);
  set_sizes(batch);
  float *gpu_out = malloc(sizes[7] + sizeof(float));
  void *s = mgpuStreamCreate();
  void **hp = (void **)&h, **dp = (void **)&d;
  for (int i = 0; i < 8; ++i) {
    dp[i] = mgpuMemAlloc(sizes[i], s, false);
    if (i < 7)
      mgpuMemcpy(dp[i], hp[i], sizes[i], s);
  }
  mgpuStreamSynchronize(s);
  run(_mlir_ciface_sparsec_gpu_kernel_Mlp_forward, &d, batch);
  mgpuMemcpy(gpu_out, d.out, sizes[7], s);
  mgpuStreamSynchronize(s);
  int status = sparsec_cuda_take_error();
  run(_mlir_ciface_sparsec_kernel_Mlp_forward, &h, batch);
  double worst = 0;
  for (int64_t i = 0; i < batch * kOut; ++i) {
    double ref = ((float *)h.out)[i];
    double err = fabs(gpu_out[i] - ref) / (1.0 + fabs(ref));
    if (!(err <= worst))
      worst = err; /* also catches NaN */
  }
  int ok = status == SPARSEC_OK && worst <= 1e-5;
  printf("%s: batch %lld, max relative difference CUDA vs CPU %.3g%s%s\n",
         ok ? "PASS" : "FAIL", (long long)batch, worst,
         status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  for (int i = 0; i < 8; ++i)
    mgpuMemFree(dp[i], s);
  mgpuStreamDestroy(s);
  free(gpu_out);
  free_host(&h);
  return ok;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--no-gpu") == 0)
    return no_gpu_mode();
  if (cuda_test_need_gpu())
    return 77;
  const int64_t batches[] = {1, 37, 300, 4099};
  int failures = 0;
  for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); ++i)
    failures += !compare(batches[i]);
  return failures ? 1 : 0;
}
