/*===- fuzz_model.h - Hand-written model of the checkpoint fuzzer -*- C -*-===*
 *
 * A small model descriptor with every parameter layout (dense weight and
 * bias, a CSR weight, an embedding table) and trivial hand-written kernels,
 * in FM_VARIANTS optimizer variants that keep every kind of optimizer state
 * a checkpoint can hold (SGD momentum buffers + per-row flags, Adam/AMSGrad
 * moments, row-wise Adagrad sums, centered RMSprop, catch-up row steps).
 * Scaffolding for the checkpoint fuzzer and its seed generator only.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_FUZZ_MODEL_H
#define SPARSEC_FUZZ_MODEL_H

#include "sparsec/runtime.h"

#include <stddef.h>
#include <stdint.h>

#define FM_VARIANTS 4
#define FM_NAME "FuzzModel"

/* Creates an instance of variant `v` (0 .. FM_VARIANTS-1). */
int fm_create(int variant, uint64_t seed, sparsec_model **out);
/* Runs `steps` train steps on deterministic batches (ids in range). */
int fm_train(sparsec_model *m, int steps, uint64_t salt);
/* 64-bit FNV-1a of everything a checkpoint holds (every parameter array,
 * every optimizer state array, momentum flags, catch-up steps) plus the
 * step count and the learning rate. */
uint64_t fm_state_hash(const sparsec_model *m);
/* Structural invariants a successfully loaded model must satisfy (CSR
 * positions monotone from 0 to nnz, columns in range and ascending, finite
 * lr >= 0, step >= 0). Returns NULL or a description of the violation. */
const char *fm_check_invariants(const sparsec_model *m);
/* zlib's CRC32. */
uint32_t fm_crc32(const uint8_t *p, size_t n);
/* If `buf` looks like a safetensors file with a "crc32":"xxxxxxxx" metadata
 * entry, overwrites the 8 hex digits with the CRC32 of its data section,
 * and those of "metadata_crc32" with the CRC32 of its metadata (so that
 * mutations of the data and of the metadata values reach the checks after
 * the checksums). */
void fm_fix_crc(uint8_t *buf, size_t n);

#endif /* SPARSEC_FUZZ_MODEL_H */
