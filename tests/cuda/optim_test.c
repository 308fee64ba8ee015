/*===- optim_test.c - CUDA optimizer steps against the CPU ones ---*- C -*-===*
 *
 * Links the static runtime and runs every optimizer's step on the GPU
 * (sparsec__cuda_opt_span, kernels of runtime/cuda/optim.cu) and on the CPU
 * (sparsec__opt_span) from the same values, gradients and state, three
 * steps in a row, for SGD (plain, momentum with dampening, nesterov, weight
 * decay + maximize), Adagrad (dense and sparse arithmetic, lr decay,
 * initial accumulator), RMSprop (plain, centered with momentum), Adam
 * (dense, amsgrad, SparseAdam arithmetic) and AdamW; clipping's kernels;
 * and the embedding row kernels: catch-up maps under SGD, RMSprop, Adam and
 * AdamW with the row snapshot and its restore, max_norm's renorm and the
 * frequency scaling of gradient rows.
 *
 *   optim_test           compares values and every state (relative error
 *                        <= 1e-5; both run optim_elem.h, so normally the
 *                        same bits); exit 77 (skipped) without a usable GPU.
 *   optim_test --no-gpu  on a machine without CUDA: the step fails cleanly
 *                        ("no CUDA driver"/"no CUDA device") and the
 *                        embedded PTX holds every kernel; exit 77 where
 *                        CUDA is available.
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"
#include "cuda_test.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char sparsec__cuda_optim_ptx[];
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
void mgpuStreamSynchronize(void *stream);

enum { kN = 100003, kSteps = 3 };

typedef struct {
  const char *name;
  sparsec_optimizer_desc d;
  int sparse_form;
} Case;

static sparsec_optimizer_desc desc(sparsec_optimizer_kind kind, double lr) {
  sparsec_optimizer_desc d;
  memset(&d, 0, sizeof(d));
  d.kind = kind;
  d.lr = lr;
  d.eps = 1e-8;
  d.alpha = 0.99;
  d.beta1 = 0.9;
  d.beta2 = 0.999;
  return d;
}

static int cases(Case *c) {
  int n = 0;
  c[n] = (Case){"sgd", desc(SPARSEC_OPT_SGD, 0.1), 0};
  c[++n] = (Case){"sgd momentum dampening", desc(SPARSEC_OPT_SGD, 0.1), 0};
  c[n].d.momentum = 0.9;
  c[n].d.dampening = 0.1;
  c[++n] = (Case){"sgd nesterov", desc(SPARSEC_OPT_SGD, 0.05), 0};
  c[n].d.momentum = 0.8;
  c[n].d.nesterov = 1;
  c[++n] = (Case){"sgd weight decay maximize", desc(SPARSEC_OPT_SGD, 0.1), 0};
  c[n].d.momentum = 0.5;
  c[n].d.weight_decay = 0.01;
  c[n].d.maximize = 1;
  c[++n] = (Case){"adagrad", desc(SPARSEC_OPT_ADAGRAD, 0.1), 0};
  c[n].d.lr_decay = 0.01;
  c[n].d.initial_accumulator_value = 0.1;
  c[n].d.eps = 1e-10;
  c[++n] = (Case){"adagrad sparse form", desc(SPARSEC_OPT_ADAGRAD, 0.1), 1};
  c[n].d.eps = 1e-10;
  c[++n] = (Case){"rmsprop", desc(SPARSEC_OPT_RMSPROP, 0.01), 0};
  c[++n] =
      (Case){"rmsprop centered momentum", desc(SPARSEC_OPT_RMSPROP, 0.01), 0};
  c[n].d.centered = 1;
  c[n].d.momentum = 0.9;
  c[n].d.weight_decay = 0.001;
  c[++n] = (Case){"adam", desc(SPARSEC_OPT_ADAM, 1e-3), 0};
  c[++n] = (Case){"adam amsgrad", desc(SPARSEC_OPT_ADAM, 1e-3), 0};
  c[n].d.amsgrad = 1;
  c[n].d.weight_decay = 0.01;
  c[++n] = (Case){"sparse adam", desc(SPARSEC_OPT_ADAM, 1e-3), 1};
  c[++n] = (Case){"adamw", desc(SPARSEC_OPT_ADAMW, 1e-3), 0};
  c[n].d.weight_decay = 0.01;
  return n + 1;
}

static float uniform(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Host arrays of one case: values, gradient and every state. */
typedef struct {
  float *a[2 + SPARSEC_NSTATE];
} Arrays;

static double max_rel_diff(const float *x, const float *y, int64_t n,
                           int64_t *differing) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    double err = fabs((double)x[i] - y[i]) / (1.0 + fabs((double)y[i]));
    if (memcmp(&x[i], &y[i], sizeof(float)) != 0)
      ++*differing;
    if (!(err <= worst))
      worst = err; /* also NaN */
  }
  return worst;
}

static int run_case(const Case *c) {
  const size_t bytes = sizeof(float) * kN;
  Arrays cpu, back;
  void *dev[2 + SPARSEC_NSTATE];
  unsigned seed = 12345;
  for (int k = 0; k < 2 + SPARSEC_NSTATE; ++k) {
    cpu.a[k] = malloc(bytes);
    back.a[k] = malloc(bytes);
    const int is_state = k >= 2;
    for (int64_t i = 0; i < kN; ++i)
      cpu.a[k][i] = is_state ? (k - 2 == SPARSEC_ST_SUM
                                    ? (float)c->d.initial_accumulator_value
                                    : 0.0f)
                             : uniform(&seed);
    dev[k] = mgpuMemAlloc(bytes, NULL, false);
    mgpuMemcpy(dev[k], cpu.a[k], bytes, NULL);
  }
  double worst = 0;
  int64_t differing = 0;
  int status = sparsec_cuda_take_error();
  for (int64_t step = 1; step <= kSteps && status == SPARSEC_OK; ++step) {
    for (int64_t i = 0; i < kN; ++i) /* a new gradient */
      cpu.a[1][i] = uniform(&seed);
    mgpuMemcpy(dev[1], cpu.a[1], bytes, NULL);
    mgpuStreamSynchronize(NULL);
    sparsec__opt o = sparsec__opt_make(&c->d, c->d.lr, step);
    sparsec__span hs = {cpu.a[0], cpu.a[1], {0}, NULL, kN};
    sparsec__cuda_span ds = {(CUdeviceptr)(uintptr_t)dev[0],
                             (CUdeviceptr)(uintptr_t)dev[1],
                             {0},
                             kN};
    for (int k = 0; k < SPARSEC_NSTATE; ++k) {
      hs.s[k] = cpu.a[2 + k];
      ds.s[k] = (CUdeviceptr)(uintptr_t)dev[2 + k];
    }
    const int init = step > 1;
    sparsec__opt_span(&o, &hs, init, c->sparse_form);
    status = sparsec__cuda_opt_span(&o, &ds, init, c->sparse_form);
    for (int k = 0; k < 2 + SPARSEC_NSTATE && status == SPARSEC_OK; ++k) {
      if (k == 1)
        continue;
      mgpuMemcpy(back.a[k], dev[k], bytes, NULL);
      mgpuStreamSynchronize(NULL);
      status = sparsec_cuda_take_error();
      double w = max_rel_diff(back.a[k], cpu.a[k], kN, &differing);
      if (!(w <= worst))
        worst = w;
    }
  }
  int ok = status == SPARSEC_OK && worst <= 1e-5;
  printf("%s: %s, %d steps of %d values: max relative difference CUDA vs CPU "
         "%.3g (%lld values "
         "differ in some bit)%s%s\n",
         ok ? "PASS" : "FAIL", c->name, kSteps, kN, worst, (long long)differing,
         status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  for (int k = 0; k < 2 + SPARSEC_NSTATE; ++k) {
    mgpuMemFree(dev[k], NULL);
    free(cpu.a[k]);
    free(back.a[k]);
  }
  return ok;
}

/* Row-wise Adagrad on 1000 rows of `dim` values: values and accumulators. */
static int run_rowwise(int64_t dim, int sparse_form) {
  const int64_t rows = 1000, n = rows * dim;
  sparsec_optimizer_desc d = desc(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1);
  d.lr_decay = 0.01;
  d.eps = 1e-10;
  float *host[3], *back[3];
  void *dev[3];
  const size_t bytes[3] = {sizeof(float) * n, sizeof(float) * n,
                           sizeof(float) * rows};
  unsigned seed = 777;
  for (int k = 0; k < 3; ++k) {
    host[k] = malloc(bytes[k]);
    back[k] = malloc(bytes[k]);
    for (size_t i = 0; i < bytes[k] / sizeof(float); ++i)
      host[k][i] = k == 2 ? 0.1f : uniform(&seed);
    dev[k] = mgpuMemAlloc(bytes[k], NULL, false);
    mgpuMemcpy(dev[k], host[k], bytes[k], NULL);
  }
  mgpuStreamSynchronize(NULL);
  int status = sparsec_cuda_take_error();
  double worst = 0;
  int64_t differing = 0;
  for (int64_t step = 1; step <= kSteps && status == SPARSEC_OK; ++step) {
    sparsec__opt o = sparsec__opt_make(&d, d.lr, step);
    for (int64_t r = 0; r < rows; ++r) {
      sparsec__span s = {
          host[0] + r * dim, host[1] + r * dim, {0}, host[2] + r, dim};
      sparsec__adagrad_span(&o, &s, sparse_form);
    }
    status = sparsec__cuda_rowwise_adagrad(
        &o, (CUdeviceptr)(uintptr_t)dev[0], (CUdeviceptr)(uintptr_t)dev[1],
        (CUdeviceptr)(uintptr_t)dev[2], rows, dim, sparse_form, 0);
  }
  for (int k = 0; k < 3 && status == SPARSEC_OK; k += 2) {
    mgpuMemcpy(back[k], dev[k], bytes[k], NULL);
    mgpuStreamSynchronize(NULL);
    status = sparsec_cuda_take_error();
    double w = max_rel_diff(back[k], host[k],
                            (int64_t)(bytes[k] / sizeof(float)), &differing);
    if (!(w <= worst))
      worst = w;
  }
  int ok = status == SPARSEC_OK && worst <= 1e-5;
  printf("%s: row-wise adagrad%s, %d steps of %lld rows x %lld: max relative "
         "difference CUDA vs "
         "CPU %.3g (%lld values differ in some bit)%s%s\n",
         ok ? "PASS" : "FAIL", sparse_form ? " sparse form" : "", kSteps,
         (long long)rows, (long long)dim, worst, (long long)differing,
         status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  for (int k = 0; k < 3; ++k) {
    mgpuMemFree(dev[k], NULL);
    free(host[k]);
    free(back[k]);
  }
  return ok;
}

static int no_gpu_mode(void) {
  if (cuda_test_need_no_gpu())
    return 77;
  const char *kernels[] = {"sparsec_cuda_sgd",
                           "sparsec_cuda_adagrad",
                           "sparsec_cuda_rmsprop",
                           "sparsec_cuda_adam",
                           "sparsec_cuda_rowwise_adagrad",
                           "sparsec_cuda_rows",
                           "sparsec_cuda_scatter_rows",
                           "sparsec_cuda_sumsq",
                           "sparsec_cuda_scale",
                           "sparsec_cuda_segment_sumsq",
                           "sparsec_cuda_row_snapshot",
                           "sparsec_cuda_catchup",
                           "sparsec_cuda_renorm",
                           "sparsec_cuda_scale_rows"};
  int ok = cuda_test_ptx_has(sparsec__cuda_optim_ptx, "optimizer", kernels,
                             sizeof(kernels) / sizeof(kernels[0]));
  Case c[16];
  const int n = cases(c);
  c[n] = (Case){"row-wise adagrad", desc(SPARSEC_OPT_ROWWISE_ADAGRAD, 0.1), 0};
  for (int i = 0; i <= n; ++i) {
    sparsec__opt o = sparsec__opt_make(&c[i].d, c[i].d.lr, 1);
    sparsec__cuda_span s = {1, 2, {3, 4, 5, 6, 7, 8, 9}, kN};
    int status = i < n
                     ? sparsec__cuda_opt_span(&o, &s, 0, c[i].sparse_form)
                     : sparsec__cuda_rowwise_adagrad(&o, 1, 2, 3, 10, 64, 0, 0);
    ok = cuda_test_clean_failure(status, c[i].name) && ok;
  }
  return ok ? 0 : 1;
}

/* Gradient clipping's kernels: the squared norm of kN values (double
 * atomics: relative error <= 1e-12 against the CPU's ordered sum) and the
 * scaled gradient (bit-equal). */
static int run_clip(void) {
  const size_t bytes = sizeof(float) * kN;
  float *g = malloc(bytes), *back = malloc(bytes);
  unsigned seed = 99;
  for (int64_t i = 0; i < kN; ++i)
    g[i] = uniform(&seed);
  void *dg = mgpuMemAlloc(bytes, NULL, false),
       *dsum = mgpuMemAlloc(8, NULL, false);
  const double zero = 0.0;
  double sum = -1.0;
  mgpuMemcpy(dg, g, bytes, NULL);
  mgpuMemcpy(dsum, (void *)(uintptr_t)&zero, 8, NULL);
  mgpuStreamSynchronize(NULL);
  int status = sparsec_cuda_take_error();
  if (status == SPARSEC_OK)
    status = sparsec__cuda_sumsq((CUdeviceptr)(uintptr_t)dg, kN,
                                 (CUdeviceptr)(uintptr_t)dsum);
  if (status == SPARSEC_OK)
    status = sparsec__cuda_scale((CUdeviceptr)(uintptr_t)dg, kN, 0.37f);
  mgpuMemcpy(&sum, dsum, 8, NULL);
  mgpuMemcpy(back, dg, bytes, NULL);
  mgpuStreamSynchronize(NULL);
  if (status == SPARSEC_OK)
    status = sparsec_cuda_take_error();
  const double ref = sparsec__sumsq(g, kN);
  sparsec__scale(g, kN, 0.37f);
  int64_t differing = 0;
  for (int64_t i = 0; i < kN; ++i)
    differing += back[i] != g[i];
  const int ok =
      status == SPARSEC_OK && fabs(sum - ref) <= 1e-12 * ref && differing == 0;
  printf("%s: clipping: squared norm %.17g vs CPU %.17g, %lld scaled values "
         "differ%s%s\n",
         ok ? "PASS" : "FAIL", sum, ref, (long long)differing,
         status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  mgpuMemFree(dg, NULL);
  mgpuMemFree(dsum, NULL);
  free(g);
  free(back);
  return ok;
}

/*===-- Embedding row kernels --------------------------------------------===*/

enum { kRows = 500, kDim = 40, kPick = 300 };

/* Uploads `bytes` of host memory; returns the device copy. */
static void *upload(const void *host, size_t bytes) {
  void *d = mgpuMemAlloc(bytes, NULL, false);
  mgpuMemcpy(d, (void *)(uintptr_t)host, bytes, NULL);
  return d;
}

static int64_t download_diff(const float *want, void *dev, int64_t n) {
  float *got = malloc(sizeof(float) * n);
  mgpuMemcpy(got, dev, sizeof(float) * n, NULL);
  mgpuStreamSynchronize(NULL);
  int64_t differing = 0;
  for (int64_t i = 0; i < n; ++i)
    differing += memcmp(&got[i], &want[i], sizeof(float)) != 0;
  free(got);
  return differing;
}

/* Catch-up of kPick rows of a kRows x kDim table under optimizer `d` (gaps
 * 1..17, half the rows without SGD momentum state): the snapshot, the
 * kernel's maps against sparsec__catchup_elem on the host (bit-equal), then
 * the snapshot restored (the original bits). */
static int run_catchup(const char *name, sparsec_optimizer_desc d) {
  const int64_t n = (int64_t)kRows * kDim;
  const int arrays = 1 + SPARSEC_NSTATE;
  float *host[1 + SPARSEC_NSTATE], *orig[1 + SPARSEC_NSTATE];
  void *dev[1 + SPARSEC_NSTATE];
  unsigned seed = 4242;
  sparsec__row_arrays r;
  memset(&r, 0, sizeof(r));
  for (int k = 0; k < arrays; ++k) {
    host[k] = malloc(sizeof(float) * n);
    orig[k] = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; ++i) /* second moments and averages >= 0 */
      host[k][i] = k == 0 ? uniform(&seed) : fabsf(uniform(&seed));
    memcpy(orig[k], host[k], sizeof(float) * n);
    dev[k] = upload(host[k], sizeof(float) * n);
    r.a[k] = dev[k];
    r.width[k] = kDim;
  }
  int32_t rows[kPick];
  sparsec__catchup_coef coef[kPick];
  const sparsec__opt o = sparsec__opt_make(&d, d.lr, 40);
  for (int i = 0; i < kPick; ++i) {
    rows[i] = (int32_t)((i * 7) % kRows);
    sparsec__catchup_coef_of(&o, 1 + i % 17, i % 2, &coef[i]);
    float *s[SPARSEC_NSTATE];
    for (int k = 0; k < SPARSEC_NSTATE; ++k)
      s[k] = host[1 + k] + (int64_t)rows[i] * kDim;
    for (int64_t c = 0; c < kDim; ++c)
      sparsec__catchup_elem(&coef[i], host[0] + (int64_t)rows[i] * kDim, s, c);
  }
  void *drows = upload(rows, sizeof(rows)), *dcoef = upload(coef, sizeof(coef));
  const int64_t width = (int64_t)arrays * kDim;
  void *save = mgpuMemAlloc(sizeof(float) * kPick * width, NULL, false);
  mgpuStreamSynchronize(NULL);
  int status = sparsec_cuda_take_error();
  if (status == SPARSEC_OK)
    status =
        sparsec__cuda_row_snapshot(&r, (CUdeviceptr)(uintptr_t)drows, kPick,
                                   (CUdeviceptr)(uintptr_t)save, width, 0);
  if (status == SPARSEC_OK)
    status = sparsec__cuda_catchup(&r, (CUdeviceptr)(uintptr_t)drows, kPick,
                                   (CUdeviceptr)(uintptr_t)dcoef, kDim);
  int64_t differing = 0, restored = 0;
  for (int k = 0; k < arrays && status == SPARSEC_OK; ++k)
    differing += download_diff(host[k], dev[k], n);
  if (status == SPARSEC_OK)
    status =
        sparsec__cuda_row_snapshot(&r, (CUdeviceptr)(uintptr_t)drows, kPick,
                                   (CUdeviceptr)(uintptr_t)save, width, 1);
  for (int k = 0; k < arrays && status == SPARSEC_OK; ++k)
    restored += download_diff(orig[k], dev[k], n);
  if (status == SPARSEC_OK)
    status = sparsec_cuda_take_error();
  const int ok = status == SPARSEC_OK && differing == 0 && restored == 0;
  printf("%s: catch-up %s, %d rows x %d: %lld values differ from the CPU, %lld "
         "after the restore%s%s\n",
         ok ? "PASS" : "FAIL", name, kPick, kDim, (long long)differing,
         (long long)restored, status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  for (int k = 0; k < arrays; ++k) {
    mgpuMemFree(dev[k], NULL);
    free(host[k]);
    free(orig[k]);
  }
  mgpuMemFree(drows, NULL);
  mgpuMemFree(dcoef, NULL);
  mgpuMemFree(save, NULL);
  return ok;
}

/* max_norm's renorm of kPick rows (norm types 2, 1, inf, 3) and the
 * frequency scaling of kRows gradient rows against the host loops. */
static int run_renorm_scale(void) {
  const int64_t n = (int64_t)kRows * kDim;
  float *t = malloc(sizeof(float) * n), *scale = malloc(sizeof(float) * kRows);
  const double norms[] = {2.0, 1.0, INFINITY, 3.0};
  int32_t rows[kPick];
  for (int i = 0; i < kPick; ++i)
    rows[i] = (int32_t)((i * 11) % kRows);
  void *drows = upload(rows, sizeof(rows));
  int status = sparsec_cuda_take_error();
  int64_t differing = 0;
  unsigned seed = 31;
  for (int v = 0; v < 4 && status == SPARSEC_OK; ++v) {
    for (int64_t i = 0; i < n; ++i)
      t[i] = uniform(&seed) * 2.0f;
    void *dt = upload(t, sizeof(float) * n);
    for (int i = 0; i < kPick; ++i) {
      float *row = t + (int64_t)rows[i] * kDim;
      const float f =
          sparsec__renorm_scale(sparsec__row_norm(row, kDim, norms[v]), 1.5);
      for (int64_t c = 0; f != 1.0f && c < kDim; ++c)
        row[c] = row[c] * f;
    }
    status = sparsec__cuda_renorm((CUdeviceptr)(uintptr_t)dt,
                                  (CUdeviceptr)(uintptr_t)drows, kPick, kDim,
                                  1.5, norms[v]);
    if (status == SPARSEC_OK)
      differing += download_diff(t, dt, n);
    mgpuMemFree(dt, NULL);
  }
  for (int64_t i = 0; i < n; ++i)
    t[i] = uniform(&seed);
  for (int i = 0; i < kRows; ++i)
    scale[i] = (float)(1.0 / (double)(1 + i % 5));
  void *dt = upload(t, sizeof(float) * n),
       *ds = upload(scale, sizeof(float) * kRows);
  for (int64_t i = 0; i < n; ++i)
    t[i] = t[i] * scale[i / kDim];
  if (status == SPARSEC_OK)
    status = sparsec__cuda_scale_rows((CUdeviceptr)(uintptr_t)dt,
                                      (CUdeviceptr)(uintptr_t)ds, kRows, kDim);
  if (status == SPARSEC_OK)
    differing += download_diff(t, dt, n);
  if (status == SPARSEC_OK)
    status = sparsec_cuda_take_error();
  const int ok = status == SPARSEC_OK && differing == 0;
  printf("%s: max_norm renorm (2-, 1-, inf-, 3-norm) and scale_grad_by_freq "
         "rows: %lld "
         "values differ from the CPU%s%s\n",
         ok ? "PASS" : "FAIL", (long long)differing,
         status == SPARSEC_OK ? "" : ", CUDA error: ",
         status == SPARSEC_OK ? "" : sparsec_last_error());
  mgpuMemFree(drows, NULL);
  mgpuMemFree(dt, NULL);
  mgpuMemFree(ds, NULL);
  free(t);
  free(scale);
  return ok;
}

/* The catch-up of every optimizer kind that moves a lagging row. */
static int run_rows(void) {
  sparsec_optimizer_desc sgd = desc(SPARSEC_OPT_SGD, 0.1);
  sgd.weight_decay = 0.01;
  int failed = !run_catchup("sgd weight decay", sgd);
  sgd.momentum = 0.9;
  sgd.nesterov = 1;
  failed += !run_catchup("sgd nesterov momentum + decay", sgd);
  sparsec_optimizer_desc rms = desc(SPARSEC_OPT_RMSPROP, 0.01);
  rms.momentum = 0.5;
  rms.centered = 1;
  failed += !run_catchup("rmsprop centered momentum", rms);
  sparsec_optimizer_desc adamw = desc(SPARSEC_OPT_ADAMW, 1e-3);
  adamw.weight_decay = 0.1;
  failed += !run_catchup("adamw", adamw);
  sparsec_optimizer_desc ams = desc(SPARSEC_OPT_ADAM, 1e-3);
  ams.amsgrad = 1;
  failed += !run_catchup("adam amsgrad", ams);
  failed += !run_renorm_scale();
  return failed;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--no-gpu") == 0)
    return no_gpu_mode();
  if (cuda_test_need_gpu())
    return 77;
  Case c[16];
  const int n = cases(c);
  int failed = 0;
  for (int i = 0; i < n; ++i)
    failed += !run_case(&c[i]);
  failed += !run_rowwise(64, 0) + !run_rowwise(300, 1) + !run_clip();
  failed += run_rows(); /* 6 cases */
  printf("%d of %d optimizer cases match the CPU\n", n + 9 - failed, n + 9);
  return failed ? 1 : 0;
}
