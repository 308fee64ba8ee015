/*===- cuda_test.h - Shared entry checks of the CUDA test programs -*- C -*-===*
 *
 * The two modes of every program of tests/cuda: the comparison with the
 * CPU, which needs a GPU (exit 77, skipped, without one), and --no-gpu,
 * which checks the clean failures on a machine without CUDA (exit 77 where
 * CUDA is available).
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_TESTS_CUDA_TEST_H
#define SPARSEC_TESTS_CUDA_TEST_H

#include "sparsec/cuda.h"

#include <stdio.h>

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

#endif /* SPARSEC_TESTS_CUDA_TEST_H */
