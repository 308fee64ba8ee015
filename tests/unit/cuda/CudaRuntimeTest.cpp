//===- CudaRuntimeTest.cpp - The runtime's CUDA glue without a GPU
//---------===//
//
// Unit tests of runtime/src/cuda_driver.c and cuda_mgpu.c. Whether the
// machine has a usable CUDA driver decides the expectations: without one,
// sparsec_cuda_available() and every mgpu* call must fail cleanly with a
// message that says so; with one, the device query must describe a device.
//
//===----------------------------------------------------------------------===//

#include "sparsec/cuda.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>

extern "C" {
void *mgpuModuleLoad(void *data, uint64_t size);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz,
                      intptr_t bx, intptr_t by, intptr_t bz, int32_t smem,
                      void *stream, void **params, void **extra,
                      size_t paramCount);
void *mgpuStreamCreate(void);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamDestroy(void *stream);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
}

namespace {

bool haveCuda() {
  static const bool have = sparsec_cuda_available() == SPARSEC_OK;
  return have;
}

TEST(CudaRuntime, AvailabilityIsStableAndExplained) {
  int first = sparsec_cuda_available();
  std::string why = sparsec_last_error();
  EXPECT_EQ(sparsec_cuda_available(), first);
  if (first == SPARSEC_OK)
    return;
  EXPECT_EQ(first, SPARSEC_ERR_CUDA);
  // Either the driver library is missing or it finds no device.
  EXPECT_TRUE(why.rfind("no CUDA driver: cannot load libcuda.so.1", 0) == 0 ||
              why.find("no CUDA device") != std::string::npos ||
              why.find("CUDA unavailable") != std::string::npos)
      << why;
}

TEST(CudaRuntime, DeviceInfo) {
  char buf[512];
  int status = sparsec_cuda_device_info(buf, sizeof(buf));
  if (!haveCuda()) {
    EXPECT_EQ(status, SPARSEC_ERR_CUDA);
    EXPECT_STREQ(buf, "");
    return;
  }
  ASSERT_EQ(status, SPARSEC_OK) << sparsec_last_error();
  EXPECT_NE(std::string(buf).find("compute capability"), std::string::npos);
  EXPECT_EQ(sparsec_cuda_device_info(nullptr, 0), SPARSEC_ERR_NULL);
}

TEST(CudaRuntime, ModuleLoadDoesNotTouchTheDriver) {
  // What a model library's constructor does at dlopen time.
  static char ptx[] = "not PTX";
  ASSERT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
  void *m = mgpuModuleLoadJIT(ptx, 2);
  ASSERT_NE(m, nullptr);
  void *bin = mgpuModuleLoad(ptx, sizeof(ptx));
  ASSERT_NE(bin, nullptr);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
  mgpuModuleUnload(m);
  mgpuModuleUnload(bin);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
}

TEST(CudaRuntime, GeneratedHostSequenceFailsCleanlyWithoutCuda) {
  if (haveCuda())
    GTEST_SKIP() << "this machine has CUDA; covered by the GPU suite";
  // The calls a compiled forward kernel makes, in order.
  static char ptx[] = "// PTX";
  void *module = mgpuModuleLoadJIT(ptx, 2);
  void *stream = mgpuStreamCreate();
  EXPECT_EQ(stream, nullptr);
  void *buf = mgpuMemAlloc(1024, stream, false);
  EXPECT_EQ(buf, nullptr);
  void *fn = mgpuModuleGetFunction(module, "kernel");
  EXPECT_EQ(fn, nullptr);
  mgpuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, 0, stream, nullptr, nullptr, 0);
  float host[4] = {0, 0, 0, 0};
  mgpuMemcpy(buf, host, sizeof(host), stream);
  mgpuStreamSynchronize(stream);
  mgpuMemFree(buf, stream);
  mgpuStreamDestroy(stream);
  mgpuModuleUnload(module);
  // The first failure is reported, with the reason, then cleared.
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_ERR_CUDA);
  std::string why = sparsec_last_error();
  EXPECT_EQ(why.rfind("mgpuStreamCreate: no CUDA", 0), 0u) << why;
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
}

TEST(CudaRuntime, InvalidLaunchIsRejectedBeforeTheDriver) {
  ASSERT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
  int dummy = 0;
  mgpuLaunchKernel(&dummy, 0, 1, 1, 256, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_ERR_CUDA);
  EXPECT_NE(std::string(sparsec_last_error()).find("invalid launch"),
            std::string::npos);
}

TEST(CudaRuntime, ErrorsArePerThread) {
  ASSERT_EQ(sparsec_cuda_take_error(), SPARSEC_OK);
  mgpuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  int other = -1;
  std::thread t([&] { other = sparsec_cuda_take_error(); });
  t.join();
  EXPECT_EQ(other, SPARSEC_OK);
  EXPECT_EQ(sparsec_cuda_take_error(), SPARSEC_ERR_CUDA);
}

} // namespace
