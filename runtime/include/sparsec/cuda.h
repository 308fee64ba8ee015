/*===- cuda.h - sparsec runtime: the optional CUDA device ---------*- C -*-===*
 *
 * Public C API of the runtime's CUDA glue. The runtime never links against
 * CUDA: the driver (libcuda.so.1) is loaded with dlopen on the first CUDA
 * request, so a model library built with `--target=cpu,cuda` loads and runs
 * its CPU path on machines without a GPU or driver, and a CUDA request there
 * fails with a status and a message saying why ("no CUDA driver: ...").
 *
 * The compiler's generated host code calls the `mgpu*` functions of MLIR's
 * GPU-to-LLVM lowering (runtime/src/cuda_mgpu.c); they cannot return errors,
 * so they record the first failure of the calling thread, which
 * sparsec_cuda_take_error() returns and clears. See docs/cuda.md.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_CUDA_H
#define SPARSEC_CUDA_H

#include "sparsec/runtime.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status of every CUDA failure: no driver, no device, or a driver call that
 * failed (the message names the call and the driver's error string). Kept
 * clear of runtime.h's sequential codes. */
#define SPARSEC_ERR_CUDA 32

/* Loads the driver and initialises the default device (once per process;
 * the result is cached). Returns SPARSEC_OK, or SPARSEC_ERR_CUDA with
 * sparsec_last_error() saying why ("no CUDA driver: libcuda.so.1: ...",
 * "no CUDA device: ..."). Never crashes on a machine without CUDA. */
int sparsec_cuda_available(void);

/* Writes "<device name>, compute capability X.Y, driver API V" of the
 * default device into `buf` (at most `cap` bytes, NUL-terminated). Returns
 * SPARSEC_OK or the status of sparsec_cuda_available(). */
int sparsec_cuda_device_info(char *buf, size_t cap);

/* The first failure recorded by an `mgpu*` call on this thread since the
 * last call (SPARSEC_OK if none); its message becomes sparsec_last_error().
 * Clears the record. */
int sparsec_cuda_take_error(void);

/* Device memory of the generated code's temporaries is cached (as
 * PyTorch's caching allocator): a block freed at the end of a call is kept
 * for the next request of its size class. These report the cached
 * allocator's bytes handed out (`in_use`) and kept idle (`cached`), and
 * give the idle blocks back to the driver. SPARSEC_CUDA_CACHE=0 in the
 * environment turns caching off. Each model library links its own
 * runtime and so has its own cache. Returns SPARSEC_OK, SPARSEC_ERR_NULL,
 * or SPARSEC_ERR_CUDA (a failed cuMemFree). */
int sparsec_cuda_memory_stats(size_t *in_use, size_t *cached);
int sparsec_cuda_empty_cache(void);

#ifdef __cplusplus
}
#endif

#endif /* SPARSEC_CUDA_H */
