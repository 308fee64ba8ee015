/*===- kernels_test.c - CUDA forward/train kernels against the CPU -*- C -*-===*
 *
 * Links the object of kernels_mlp.sdl compiled with --target=cpu,cuda (CPU
 * kernels sparsec_kernel_Mlp_{forward,train} and CUDA functions
 * sparsec_gpu_kernel_Mlp_{forward,train}, same memref ABI) with the static
 * runtime, and compares the CUDA forward output, loss and every gradient
 * with the CPU's (relative error <= 1e-5) for batches 1, 37, 300 and 4099,
 * on random parameters, a random CSR pattern with empty first, middle and
 * last rows, and random targets.
 *
 *   kernels_test           on a GPU; exit 77 (skipped) without a usable
 *                          CUDA driver/GPU.
 *   kernels_test --no-gpu  on a machine without CUDA: the CUDA functions
 *                          fail cleanly ("no CUDA driver"/"no CUDA device")
 *                          without crashing or touching the outputs; exit
 *                          77 where CUDA is available.
 *
 * Built with -DSPARSEC_CUDA_EMULATED against the object compiled with
 * --cuda-emulate (every kernel run as host loops, sparsec-gpu-emulate),
 * the same comparison runs on any machine: "device" buffers are host
 * memory. That checks the kernels' indexing and arithmetic without a GPU.
 *===----------------------------------------------------------------------===*/
#include "cuda_test.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kIn = 40, kH1 = 32, kH2 = 24, kOut = 10, kNnz = 192 /* 24*32/4 */ };

/* A rank-1 or rank-2 memref descriptor (rank 1 uses rest[0..1]). */
typedef struct {
  void *allocated, *aligned;
  int64_t offset, rest[4];
} Memref;

#define M Memref *
float _mlir_ciface_sparsec_kernel_Mlp_train(M, M, M, M, M, M, M, M, M, M, M, M,
                                            M, M, M, M);
float _mlir_ciface_sparsec_gpu_kernel_Mlp_train(M, M, M, M, M, M, M, M, M, M, M,
                                                M, M, M, M, M);
void _mlir_ciface_sparsec_kernel_Mlp_forward(M, M, M, M, M, M, M, M, M, M);
void _mlir_ciface_sparsec_gpu_kernel_Mlp_forward(M, M, M, M, M, M, M, M, M, M);
typedef float (*TrainFn)(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M);
typedef void (*ForwardFn)(M, M, M, M, M, M, M, M, M, M);
#undef M

/* The buffers of both entry points, in one table. */
enum {
  X,
  Y,
  W1,
  B1,
  POS,
  CRD,
  VALS,
  B2,
  W3,
  B3,
  OUT, /* forward: all but Y */
  GW1,
  GB1,
  GVALS,
  GB2,
  GW3,
  GB3, /* train: all but OUT */
  kBuffers
};
typedef struct {
  int rank;
  int64_t d0, d1; /* d0 < 0: the batch */
  size_t elt;
  bool output;
} Shape;
static const Shape kShapes[kBuffers] = {
    [X] = {2, -1, kIn, 4, false},      [Y] = {1, -1, 0, 8, false},
    [W1] = {2, kH1, kIn, 4, false},    [B1] = {1, kH1, 0, 4, false},
    [POS] = {1, kH2 + 1, 0, 4, false}, [CRD] = {1, kNnz, 0, 4, false},
    [VALS] = {1, kNnz, 0, 4, false},   [B2] = {1, kH2, 0, 4, false},
    [W3] = {2, kOut, kH2, 4, false},   [B3] = {1, kOut, 0, 4, false},
    [OUT] = {2, -1, kOut, 4, true},    [GW1] = {2, kH1, kIn, 4, true},
    [GB1] = {1, kH1, 0, 4, true},      [GVALS] = {1, kNnz, 0, 4, true},
    [GB2] = {1, kH2, 0, 4, true},      [GW3] = {2, kOut, kH2, 4, true},
    [GB3] = {1, kOut, 0, 4, true},
};
static const char *const kNames[kBuffers] = {"x",
                                             "y",
                                             "fc1.weight",
                                             "fc1.bias",
                                             "pos",
                                             "crd",
                                             "fc2.values",
                                             "fc2.bias",
                                             "fc3.weight",
                                             "fc3.bias",
                                             "out",
                                             "grad fc1.weight",
                                             "grad fc1.bias",
                                             "grad fc2.values",
                                             "grad fc2.bias",
                                             "grad fc3.weight",
                                             "grad fc3.bias"};

static int64_t rows_of(int i, int64_t batch) {
  return kShapes[i].d0 < 0 ? batch : kShapes[i].d0;
}
static int64_t numel(int i, int64_t batch) {
  return rows_of(i, batch) * (kShapes[i].rank == 2 ? kShapes[i].d1 : 1);
}
static size_t bytes(int i, int64_t batch) {
  return (size_t)numel(i, batch) * kShapes[i].elt;
}

/* ---- "device" memory: the GPU's, or host memory for the emulator ---- */
#ifdef SPARSEC_CUDA_EMULATED
static void *dev_alloc(size_t n) { return malloc(n ? n : 1); }
static void dev_put(void *d, const void *h, size_t n) { memcpy(d, h, n); }
static void dev_get(void *h, const void *d, size_t n) { memcpy(h, d, n); }
static void dev_free(void *d) { free(d); }
#else
void *mgpuStreamCreate(void);
void mgpuStreamSynchronize(void *stream);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
/* The copies run on a stream of their own, waited for (the CUDA functions
 * run on non-blocking streams, which do not wait for the legacy one). */
static void *copies;
static void *dev_alloc(size_t n) {
  return mgpuMemAlloc(n ? n : 1, copies, false);
}
static void dev_put(void *d, const void *h, size_t n) {
  mgpuMemcpy(d, (void *)(uintptr_t)h, n, copies);
  mgpuStreamSynchronize(copies);
}
static void dev_get(void *h, const void *d, size_t n) {
  mgpuMemcpy(h, (void *)(uintptr_t)d, n, copies);
  mgpuStreamSynchronize(copies);
}
static void dev_free(void *d) { mgpuMemFree(d, copies); }
#endif

static Memref ref(void *p, int i, int64_t batch) {
  Memref m = {p, p, 0, {0, 0, 0, 0}};
  if (kShapes[i].rank == 1) {
    m.rest[0] = rows_of(i, batch);
    m.rest[1] = 1;
  } else {
    m.rest[0] = rows_of(i, batch);
    m.rest[1] = kShapes[i].d1;
    m.rest[2] = kShapes[i].d1;
    m.rest[3] = 1;
  }
  return m;
}

static void forward(ForwardFn f, void **buf, int64_t batch) {
  Memref m[kBuffers];
  for (int i = 0; i < kBuffers; ++i)
    m[i] = ref(buf[i], i, batch);
  f(&m[X], &m[W1], &m[B1], &m[POS], &m[CRD], &m[VALS], &m[B2], &m[W3], &m[B3],
    &m[OUT]);
}

static float train(TrainFn f, void **buf, int64_t batch) {
  Memref m[kBuffers];
  for (int i = 0; i < kBuffers; ++i)
    m[i] = ref(buf[i], i, batch);
  return f(&m[X], &m[Y], &m[W1], &m[B1], &m[POS], &m[CRD], &m[VALS], &m[B2],
           &m[W3], &m[B3], &m[GW1], &m[GB1], &m[GVALS], &m[GB2], &m[GW3],
           &m[GB3]);
}

static uint32_t rng = 12345u;
static uint32_t next(void) {
  rng = rng * 1664525u + 1013904223u;
  return rng >> 8;
}
/* Uniform in [-0.5, 0.5): layers of 24-40 inputs keep logits of order 1. */
static float uniform(void) { return (float)next() / 16777216.0f - 0.5f; }

/* Host buffers: random values, targets and CSR pattern (rows 0, kH2/2 and
 * kH2-1 empty, so the row search meets empty rows at both ends). */
static void fill_host(void **h, int64_t batch) {
  for (int i = 0; i < kBuffers; ++i)
    h[i] = calloc((size_t)numel(i, batch) + 1, kShapes[i].elt);
  for (int i = 0; i < kBuffers; ++i)
    if (kShapes[i].elt == 4 && i != POS && i != CRD && !kShapes[i].output)
      for (int64_t j = 0; j < numel(i, batch); ++j)
        ((float *)h[i])[j] = uniform();
  for (int64_t j = 0; j < batch; ++j)
    ((int64_t *)h[Y])[j] = next() % kOut;
  /* kNnz distinct (row, col) of the allowed rows, in row-major order. */
  static bool taken[kH2][kH1];
  memset(taken, 0, sizeof(taken));
  for (int placed = 0; placed < kNnz;) {
    int r = (int)(next() % kH2), c = (int)(next() % kH1);
    if (r == 0 || r == kH2 / 2 || r == kH2 - 1 || taken[r][c])
      continue;
    taken[r][c] = true;
    ++placed;
  }
  int32_t *pos = h[POS], *crd = h[CRD];
  int k = 0;
  for (int r = 0; r < kH2; ++r) {
    pos[r] = k;
    for (int c = 0; c < kH1; ++c)
      if (taken[r][c])
        crd[k++] = c;
  }
  pos[kH2] = k;
}

static void free_all(void **h) {
  for (int i = 0; i < kBuffers; ++i)
    free(h[i]);
}

static int compare(int64_t batch) {
  void *h[kBuffers], *d[kBuffers], *got[kBuffers];
  fill_host(h, batch);
  for (int i = 0; i < kBuffers; ++i) {
    d[i] = dev_alloc(bytes(i, batch));
    got[i] = calloc((size_t)numel(i, batch) + 1, kShapes[i].elt);
    if (!kShapes[i].output)
      dev_put(d[i], h[i], bytes(i, batch));
  }
  (void)sparsec_cuda_take_error();
  forward(_mlir_ciface_sparsec_gpu_kernel_Mlp_forward, d, batch);
  float loss = train(_mlir_ciface_sparsec_gpu_kernel_Mlp_train, d, batch);
  for (int i = 0; i < kBuffers; ++i)
    if (kShapes[i].output)
      dev_get(got[i], d[i], bytes(i, batch));
  int status = sparsec_cuda_take_error();
  forward(_mlir_ciface_sparsec_kernel_Mlp_forward, h, batch);
  float ref_loss = train(_mlir_ciface_sparsec_kernel_Mlp_train, h, batch);
  int failures = status != SPARSEC_OK;
  if (status != SPARSEC_OK)
    printf("FAIL: batch %lld: CUDA error %d: %s\n", (long long)batch, status,
           sparsec_last_error());
  double loss_err = cuda_test_rel_diff(&loss, &ref_loss, 1);
  failures += !(loss_err <= 1e-5);
  printf("%s: batch %lld loss %.7g vs CPU %.7g (relative difference %.3g)\n",
         loss_err <= 1e-5 ? "PASS" : "FAIL", (long long)batch, loss, ref_loss,
         loss_err);
  for (int i = 0; i < kBuffers; ++i) {
    if (!kShapes[i].output)
      continue;
    double err = cuda_test_rel_diff(got[i], h[i], numel(i, batch));
    failures += !(err <= 1e-5);
    printf("%s: batch %lld %-16s max relative difference %.3g\n",
           err <= 1e-5 ? "PASS" : "FAIL", (long long)batch, kNames[i], err);
  }
  for (int i = 0; i < kBuffers; ++i)
    dev_free(d[i]);
  free_all(h);
  free_all(got);
  return failures;
}

#ifndef SPARSEC_CUDA_EMULATED
/* On a machine without CUDA: clean failures, outputs untouched. */
static int no_gpu_mode(void) {
  if (cuda_test_need_no_gpu())
    return 77;
  const int64_t batch = 5;
  void *h[kBuffers];
  fill_host(h, batch);
  for (int i = 0; i < kBuffers; ++i)
    if (kShapes[i].output)
      for (int64_t j = 0; j < numel(i, batch); ++j)
        ((float *)h[i])[j] = 42.0f;
  int ok = 1;
  for (int entry = 0; entry < 2; ++entry) {
    (void)sparsec_cuda_take_error();
    if (entry == 0)
      forward(_mlir_ciface_sparsec_gpu_kernel_Mlp_forward, h, batch);
    else
      (void)train(_mlir_ciface_sparsec_gpu_kernel_Mlp_train, h, batch);
    int status = sparsec_cuda_take_error();
    const char *why = sparsec_last_error();
    int good = status == SPARSEC_ERR_CUDA && (strstr(why, "no CUDA driver") ||
                                              strstr(why, "no CUDA device") ||
                                              strstr(why, "CUDA unavailable"));
    for (int i = 0; i < kBuffers; ++i)
      if (kShapes[i].output)
        for (int64_t j = 0; j < numel(i, batch); ++j)
          good = good && ((float *)h[i])[j] == 42.0f;
    printf("%s: CUDA %s without a GPU -> %d, \"%s\"\n", good ? "PASS" : "FAIL",
           entry == 0 ? "forward" : "train", status, why);
    ok = ok && good;
  }
  free_all(h);
  return ok ? 0 : 1;
}
#endif

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
#ifndef SPARSEC_CUDA_EMULATED
  if (argc > 1 && strcmp(argv[1], "--no-gpu") == 0)
    return no_gpu_mode();
  if (cuda_test_need_gpu())
    return 77;
  copies = mgpuStreamCreate();
#else
  printf("emulated: the CUDA kernels run as host loops (--cuda-emulate)\n");
#endif
  const int64_t batches[] = {1, 37, 300, 4099};
  int failures = 0;
  for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); ++i)
    failures += compare(batches[i]);
  return failures ? 1 : 0;
}
