/*===- status.c - Thread-local error messages and status names ---*- C -*-===*
 *
 * The only state the runtime keeps outside model instances: one message
 * buffer per thread, so distinct handles can be used concurrently and every
 * thread reads the message of its own last failure. Also the small size
 * helpers every other file uses.
 *===----------------------------------------------------------------------===*/
#include "internal.h"
#include "sparsec/cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define SPARSEC_ERROR_CAP 512

static _Thread_local char sparsec__error_buf[SPARSEC_ERROR_CAP];

int sparsec__fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sparsec__error_buf, sizeof(sparsec__error_buf), fmt, ap);
  va_end(ap);
  return status;
}

void sparsec__clear_error(void) { sparsec__error_buf[0] = '\0'; }

SPARSEC_API const char *sparsec_last_error(void) { return sparsec__error_buf; }

SPARSEC_API const char *sparsec_status_name(int status) {
  switch (status) {
  case SPARSEC_OK:
    return "SPARSEC_OK";
  case SPARSEC_ERR_NULL:
    return "SPARSEC_ERR_NULL";
  case SPARSEC_ERR_INVALID_ARG:
    return "SPARSEC_ERR_INVALID_ARG";
  case SPARSEC_ERR_OUT_OF_RANGE:
    return "SPARSEC_ERR_OUT_OF_RANGE";
  case SPARSEC_ERR_NONFINITE:
    return "SPARSEC_ERR_NONFINITE";
  case SPARSEC_ERR_IO:
    return "SPARSEC_ERR_IO";
  case SPARSEC_ERR_FORMAT:
    return "SPARSEC_ERR_FORMAT";
  case SPARSEC_ERR_NOMEM:
    return "SPARSEC_ERR_NOMEM";
  case SPARSEC_ERR_KERNEL:
    return "SPARSEC_ERR_KERNEL";
  case SPARSEC_ERR_ABI:
    return "SPARSEC_ERR_ABI";
  case SPARSEC_ERR_CUDA:
    return "SPARSEC_ERR_CUDA";
  default:
    return "SPARSEC_ERR_UNKNOWN";
  }
}

int sparsec__mul_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0)
    return -1;
  if (a != 0 && b > INT64_MAX / a)
    return -1;
  *out = a * b;
  return 0;
}

void *sparsec__malloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

void *sparsec__calloc(size_t count, size_t size) {
  if (count == 0 || size == 0)
    return calloc(1, 1);
  return calloc(count, size);
}
