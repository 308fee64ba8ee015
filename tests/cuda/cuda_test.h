/*===- cuda_test.h - Shared entry checks of the CUDA test programs -*- C -*-===*
 *
 * The two modes of every program of tests/cuda: the comparison with the
 * CPU, which needs a GPU (exit 77, skipped, without one), and --no-gpu,
 * which checks the clean failures on a machine without CUDA (exit 77 where
 * CUDA is available); and the comparison's measure and PASS/FAIL lines.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_TESTS_CUDA_TEST_H
#define SPARSEC_TESTS_CUDA_TEST_H

#include "sparsec/cuda.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* 0 when a GPU is usable (its description printed), else 77. */
static inline int cuda_test_need_gpu(void) {
  if (sparsec_cuda_available() != SPARSEC_OK) {
    printf("SKIP: %s\n", sparsec_last_error());
    return 77;
  }
  char info[256];
  if (sparsec_cuda_device_info(info, sizeof(info)) == SPARSEC_OK)
    printf("device: %s\n", info);
  return 0;
}

/* 0 on a machine without CUDA, else 77. */
static inline int cuda_test_need_no_gpu(void) {
  if (sparsec_cuda_available() == SPARSEC_OK) {
    printf("SKIP: this machine has CUDA; the no-GPU path is not testable\n");
    return 77;
  }
  return 0;
}

/* Max over the elements of |a - b| / (1 + |b|); NaN counts as infinite. */
static inline double cuda_test_rel_diff(const float *a, const float *b,
                                        int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    double err = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
    if (!(err <= worst))
      worst = isnan(err) ? INFINITY : err;
  }
  return worst;
}

/* Failed checks of the program. */
static int cuda_test_failures;

/* Prints "PASS: what (value)" or "FAIL: ..." and counts the failure. */
static inline void cuda_test_check(int ok, const char *what, double value) {
  printf("%s: %s (%.3g)\n", ok ? "PASS" : "FAIL", what, value);
  cuda_test_failures += !ok;
}

/* 1 when `status` is the clean failure of a CUDA request on a machine
 * without CUDA (or of a runtime built without nvcc), printed with PASS or
 * FAIL and `what`. */
static inline int cuda_test_clean_failure(int status, const char *what) {
  const char *why = sparsec_last_error();
  const int clean =
      status == SPARSEC_ERR_CUDA &&
      (strstr(why, "no CUDA driver") || strstr(why, "no CUDA device") ||
       strstr(why, "without the CUDA toolkit"));
  printf("%s: %s without a GPU -> %d, \"%s\"\n", clean ? "PASS" : "FAIL", what,
         status, why);
  return clean;
}

/* 1 when the embedded PTX `ptx` (`what`: its module) has an entry for
 * each of the `n` kernel names (each printed with PASS or FAIL); 1 with a
 * NOTE for a runtime built without nvcc (empty PTX). */
static inline int cuda_test_ptx_has(const char *ptx, const char *what,
                                    const char *const *kernels, size_t n) {
  if (!ptx[0]) {
    printf("NOTE: the runtime was built without nvcc: no %s PTX\n", what);
    return 1;
  }
  int ok = 1;
  for (size_t i = 0; i < n; ++i) {
    char entry[96];
    snprintf(entry, sizeof(entry), ".visible .entry %s(", kernels[i]);
    const int found = strstr(ptx, entry) != NULL;
    printf("%s: embedded %s PTX has %s\n", found ? "PASS" : "FAIL", what,
           entry);
    ok = ok && found;
  }
  return ok;
}

#endif /* SPARSEC_TESTS_CUDA_TEST_H */
