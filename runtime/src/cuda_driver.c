/*===- cuda_driver.c - Loading the CUDA driver with dlopen -------*- C -*-===*
 *
 * Loads libcuda.so.1 on the first CUDA request (never at load time of a
 * model library), resolves the driver entry points of cuda_internal.h,
 * initialises the driver and retains the primary context of the default
 * device (ordinal 0, or mgpuSetDefaultDevice / SPARSEC_CUDA_DEVICE). The
 * outcome, success or the message saying why CUDA is unavailable, is
 * computed once per process and cached. Also the per-thread record of the
 * first failed driver call, read by sparsec_cuda_take_error().
 *===----------------------------------------------------------------------===*/
#include "cuda_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kMessageCap = 512 };
enum { kAttrCcMajor = 75, kAttrCcMinor = 76 }; /* CU_DEVICE_ATTRIBUTE_* */

struct sparsec__cuda_api sparsec__cu;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = SPARSEC_ERR_CUDA;
static char init_message[kMessageCap];
static int device_ordinal = -1;
static CUdevice device;
static CUcontext primary_ctx;

static _Thread_local int pending_status;
static _Thread_local char pending_message[kMessageCap];

void sparsec__cuda_record(const char *fmt, ...) {
  if (pending_status != SPARSEC_OK)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pending_message, sizeof(pending_message), fmt, ap);
  va_end(ap);
  pending_status = SPARSEC_ERR_CUDA;
}

int sparsec__cuda_check(CUresult r, const char *what) {
  if (r == 0)
    return SPARSEC_OK;
  const char *text = NULL;
  if (!sparsec__cu.GetErrorString || sparsec__cu.GetErrorString(r, &text) != 0)
    text = NULL;
  sparsec__cuda_record("CUDA %s failed: %s (CUresult %d)", what, text ? text : "unknown error", r);
  return SPARSEC_ERR_CUDA;
}

SPARSEC_API int sparsec_cuda_take_error(void) {
  int status = pending_status;
  if (status != SPARSEC_OK)
    sparsec__fail(status, "%s", pending_message);
  pending_status = SPARSEC_OK;
  pending_message[0] = '\0';
  return status;
}

void sparsec__cuda_set_device(int ordinal) { device_ordinal = ordinal; }

/* Resolves one symbol into `slot`; false (with the message set) if absent. */
static int resolve(void *lib, const char *name, void *slot) {
  void *sym = dlsym(lib, name);
  if (!sym) {
    snprintf(init_message, sizeof(init_message),
             "no usable CUDA driver: libcuda.so.1 lacks %s (driver too old)", name);
    return 0;
  }
  memcpy(slot, &sym, sizeof(sym));
  return 1;
}

#define RESOLVE(field, name)                                                                       \
  if (!resolve(lib, name, &sparsec__cu.field))                                                     \
    return 0;

static int resolve_all(void *lib) {
  RESOLVE(Init, "cuInit");
  RESOLVE(DriverGetVersion, "cuDriverGetVersion");
  RESOLVE(DeviceGetCount, "cuDeviceGetCount");
  RESOLVE(DeviceGet, "cuDeviceGet");
  RESOLVE(DeviceGetName, "cuDeviceGetName");
  RESOLVE(DeviceGetAttribute, "cuDeviceGetAttribute");
  RESOLVE(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  RESOLVE(CtxPushCurrent, "cuCtxPushCurrent_v2");
  RESOLVE(CtxPopCurrent, "cuCtxPopCurrent_v2");
  RESOLVE(GetErrorString, "cuGetErrorString");
  RESOLVE(ModuleLoadData, "cuModuleLoadData");
  RESOLVE(ModuleLoadDataEx, "cuModuleLoadDataEx");
  RESOLVE(ModuleUnload, "cuModuleUnload");
  RESOLVE(ModuleGetFunction, "cuModuleGetFunction");
  RESOLVE(LaunchKernel, "cuLaunchKernel");
  RESOLVE(StreamCreate, "cuStreamCreate");
  RESOLVE(StreamDestroy, "cuStreamDestroy_v2");
  RESOLVE(StreamSynchronize, "cuStreamSynchronize");
  RESOLVE(StreamWaitEvent, "cuStreamWaitEvent");
  RESOLVE(EventCreate, "cuEventCreate");
  RESOLVE(EventDestroy, "cuEventDestroy_v2");
  RESOLVE(EventRecord, "cuEventRecord");
  RESOLVE(EventSynchronize, "cuEventSynchronize");
  RESOLVE(MemAlloc, "cuMemAlloc_v2");
  RESOLVE(MemAllocManaged, "cuMemAllocManaged");
  RESOLVE(MemFree, "cuMemFree_v2");
  RESOLVE(MemcpyAsync, "cuMemcpyAsync");
  RESOLVE(MemsetD32Async, "cuMemsetD32Async");
  RESOLVE(MemsetD16Async, "cuMemsetD16Async");
  return 1;
}

#undef RESOLVE

/* Formats a failed driver call of the initialisation into init_message. */
static void init_failed(CUresult r, const char *what) {
  const char *text = NULL;
  if (sparsec__cu.GetErrorString(r, &text) != 0)
    text = NULL;
  snprintf(init_message, sizeof(init_message), "%s: CUDA %s failed: %s (CUresult %d)",
           r == 100 ? "no CUDA device" : "CUDA unavailable", what, text ? text : "unknown error",
           r);
}

static void init_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    snprintf(init_message, sizeof(init_message), "no CUDA driver: cannot load libcuda.so.1 (%s)",
             why ? why : "not found");
    return;
  }
  if (!resolve_all(lib)) {
    memset(&sparsec__cu, 0, sizeof(sparsec__cu));
    return;
  }
  CUresult r = sparsec__cu.Init(0);
  if (r != 0) {
    init_failed(r, "cuInit");
    return;
  }
  int count = 0;
  if ((r = sparsec__cu.DeviceGetCount(&count)) != 0) {
    init_failed(r, "cuDeviceGetCount");
    return;
  }
  int ordinal = device_ordinal;
  const char *env = getenv("SPARSEC_CUDA_DEVICE");
  if (ordinal < 0 && env && *env)
    ordinal = atoi(env);
  if (ordinal < 0)
    ordinal = 0;
  if (count == 0 || ordinal >= count) {
    snprintf(init_message, sizeof(init_message),
             "no CUDA device: the driver reports %d device(s), device %d "
             "was requested",
             count, ordinal);
    return;
  }
  if ((r = sparsec__cu.DeviceGet(&device, ordinal)) != 0) {
    init_failed(r, "cuDeviceGet");
    return;
  }
  if ((r = sparsec__cu.DevicePrimaryCtxRetain(&primary_ctx, device)) != 0) {
    init_failed(r, "cuDevicePrimaryCtxRetain");
    return;
  }
  init_status = SPARSEC_OK;
}

static void skip_driver(void) {}

void sparsec__cuda_use_driver(const struct sparsec__cuda_api *api) {
  pthread_once(&init_once, skip_driver);
  sparsec__cu = *api;
  primary_ctx = NULL;
  init_status = SPARSEC_OK;
}

int sparsec__cuda_init(void) {
  pthread_once(&init_once, init_driver);
  if (init_status != SPARSEC_OK)
    return sparsec__fail(init_status, "%s", init_message);
  return SPARSEC_OK;
}

int sparsec__cuda_enter(const char *what) {
  pthread_once(&init_once, init_driver);
  if (init_status != SPARSEC_OK) {
    sparsec__cuda_record("%s: %s", what, init_message);
    return init_status;
  }
  return sparsec__cuda_check(sparsec__cu.CtxPushCurrent(primary_ctx), "cuCtxPushCurrent");
}

void sparsec__cuda_leave(void) {
  CUcontext popped;
  sparsec__cuda_check(sparsec__cu.CtxPopCurrent(&popped), "cuCtxPopCurrent");
}

SPARSEC_API int sparsec_cuda_available(void) { return sparsec__cuda_init(); }

SPARSEC_API int sparsec_cuda_device_info(char *buf, size_t cap) {
  if (!buf || cap == 0)
    return sparsec__fail(SPARSEC_ERR_NULL, "sparsec_cuda_device_info: "
                                           "buffer is NULL or empty");
  buf[0] = '\0';
  int status = sparsec__cuda_init();
  if (status != SPARSEC_OK)
    return status;
  char name[256] = "";
  int major = 0, minor = 0, version = 0;
  if (sparsec__cu.DeviceGetName(name, (int)sizeof(name), device) != 0 ||
      sparsec__cu.DeviceGetAttribute(&major, kAttrCcMajor, device) != 0 ||
      sparsec__cu.DeviceGetAttribute(&minor, kAttrCcMinor, device) != 0 ||
      sparsec__cu.DriverGetVersion(&version) != 0)
    return sparsec__fail(SPARSEC_ERR_CUDA, "CUDA device query failed");
  snprintf(buf, cap, "%s, compute capability %d.%d, driver API %d", name, major, minor, version);
  return SPARSEC_OK;
}
