/*===- device_internal.h - Models on a CUDA device: shared internals -*- C -*-===*
 *
 * The device copy of a model (device.c) and the helpers its parts share:
 * device memory through mgpu* (or host memory when the library's CUDA
 * functions are emulated on the host), copies, the CUDA status of a call,
 * and the embedding row work around the kernels (device_rows.c).
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_DEVICE_INTERNAL_H
#define SPARSEC_RUNTIME_DEVICE_INTERNAL_H

#include "cuda_internal.h"

#include <stdbool.h>

void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *s);
void mgpuStreamSynchronize(void *s);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool host_shared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
void mgpuMemset32(void *dst, unsigned value, size_t count, void *stream);

/* A device scratch buffer, grown with use. */
typedef struct sparsec__dev_buf {
  void *p;
  size_t cap; /* bytes */
} sparsec__dev_buf;

/* Device copies of one parameter (NULL where the host has none). An
 * embedding's gradient is one row per id of the batch (`grad_cap` bytes,
 * grown with the batch), and its row step reads the batch's order from
 * perm/starts/keys/init (computed on the host, where the ids are). */
typedef struct sparsec__dev_param {
  float *values, *grad;
  int32_t *positions, *coordinates;
  float *state[SPARSEC_NSTATE];
  size_t grad_cap;
  float *dense_grad; /* sparse = dense: the densified gradient (nnz) */
  sparsec__dev_buf perm, starts, keys, init;
  sparsec__dev_buf order; /* the ids and the device sort's scratch */
  int64_t segments;       /* rows of this step's sorted gradient */
  /* device_rows.c: the rows caught up (ids, maps, snapshot) and renormed
   * (ids, snapshot) by this call, restored if it fails; freq scales. */
  sparsec__dev_buf cu_rows, cu_coef, cu_save, rn_rows, rn_save, freq;
  int64_t cu_saved, rn_n;
  /* RigL: the layer input and output gradient the train function captures
   * (downloaded for the growth scores at an update step only). */
  sparsec__dev_buf cap_x, cap_dy;
} sparsec__dev_param;

struct sparsec__device {
  sparsec_device_kernels k;
  void *stream; /* CUDA: the stream of the runtime's copies */
  sparsec__dev_param *params;
  void **inputs;     /* per input: batch-sized device buffer */
  size_t *input_cap; /* its bytes */
  void *output;
  size_t output_cap;
  void *clip_sum;   /* max_grad_norm: one double, the squared norm */
  int host_stale;   /* the device holds newer values, gradients, state */
  int device_stale; /* the host holds newer ones */
};

static inline size_t sparsec__floats(int64_t n) { return (size_t)n * sizeof(float); }
static inline CUdeviceptr sparsec__dptr(const void *p) { return (CUdeviceptr)(uintptr_t)p; }

/* Device memory: the GPU's through mgpu*, or host memory (emulated). */
void *sparsec__dev_alloc(sparsec__device *d, size_t bytes);
void sparsec__dev_free(sparsec__device *d, void *p);
/* Copies between host and device (either direction) and waits for it. */
void sparsec__dev_copy(sparsec__device *d, void *dst, const void *src, size_t bytes);
/* Zero-fills `n` floats of device memory (not waited for: the next copy
 * or the train step's wait does). */
void sparsec__dev_zero(sparsec__device *d, float *p, int64_t n);
/* SPARSEC_OK, or SPARSEC_ERR_CUDA with "<what>: <the first CUDA failure
 * since the last check>" as the message. */
int sparsec__dev_status(const sparsec__device *d, const char *what);
/* Device buffer `*buf` of at least `bytes` (grown, never shrunk). */
int sparsec__dev_reserve(sparsec__device *d, void **buf, size_t *cap, size_t bytes,
                         const char *what);
/* Copies `bytes` of host `src` into the device scratch `b` (grown). */
int sparsec__dev_upload(sparsec__device *d, sparsec__dev_buf *b, const void *src, size_t bytes,
                        const char *what);
/* Uploads what the host wrote (first use, after load, ...). */
int sparsec__dev_ensure(sparsec_model *m);

/*===-- Embedding rows (device_rows.c) ---------------------------------------===*/

/* Before a train kernel: the batch's rows of sparse = catchup tables
 * brought up to date (optim_sparse.c's sparsec__catchup_batch). */
int sparsec__device_catchup_batch(sparsec_model *m, int64_t batch, const void *const *inputs);
/* Before a forward or train kernel: max_norm's renorm of the batch's rows
 * (embedding.c's sparsec__renorm_batch; `inputs` as the call got them). */
int sparsec__device_renorm_batch(sparsec_model *m, int64_t batch, const void *const *inputs,
                                 int with_targets);
/* A call failed after those: restores the rows they changed. */
void sparsec__device_rows_undo(sparsec_model *m);
/* After a train kernel: the gradient rows of the padding id zeroed and,
 * scale_grad_by_freq, divided by their id's count (p->grad_ids holds the
 * batch's `n` ids). */
int sparsec__device_prepare_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q,
                                 int64_t n);

/*===-- The optimizer step (device_step.c) -----------------------------------===*/

/* After the train kernel, embedding `p`'s gradient rows prepared for its
 * step (ids from the call's `inputs`; padding, frequency scaling, then
 * densified or sorted). */
int sparsec__device_gather_rows(sparsec_model *m, sparsec__param *p, sparsec__dev_param *q,
                                int64_t batch, const void *const *inputs);
/* Gradient clipping (max_grad_norm > 0) after every gather; `*coef` the
 * factor lazy tables' steps still apply (1: none). */
int sparsec__device_clip(sparsec_model *m, float *coef);
/* The step of parameter `p` on its device copy `q`. */
int sparsec__device_step(sparsec_model *m, const sparsec__opt *o, sparsec__param *p,
                         sparsec__dev_param *q, float coef);

#endif /* SPARSEC_RUNTIME_DEVICE_INTERNAL_H */
