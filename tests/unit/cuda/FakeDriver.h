//===- FakeDriver.h - The common part of the unit tests' fake drivers -----===//
//
// Part of sparsec, a compiler for sparse neural-network models.
//
//===----------------------------------------------------------------------===//
//
// The functions every fake CUDA driver of tests/unit/cuda needs: entering
// and leaving the context succeed, and every failure's text is
// kFakeDriverError. A test adds the functions it fakes to base() and
// installs the table with sparsec__cuda_use_driver.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_TESTS_UNIT_CUDA_FAKEDRIVER_H
#define SPARSEC_TESTS_UNIT_CUDA_FAKEDRIVER_H

#include "cuda_internal.h"

namespace fake_driver {

constexpr const char *kFakeDriverError = "fake driver error";

inline CUresult push(CUcontext) { return 0; }
inline CUresult pop(CUcontext *c) {
  *c = nullptr;
  return 0;
}
inline CUresult errorString(CUresult, const char **s) {
  *s = kFakeDriverError;
  return 0;
}

/// A driver table with the context and error-string functions only.
inline sparsec__cuda_api base() {
  sparsec__cuda_api api = {};
  api.CtxPushCurrent = push;
  api.CtxPopCurrent = pop;
  api.GetErrorString = errorString;
  return api;
}

} // namespace fake_driver

#endif // SPARSEC_TESTS_UNIT_CUDA_FAKEDRIVER_H
