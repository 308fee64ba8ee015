/*===- checkpoint.h - Tensor list shared by checkpoint save/load -*- C -*-===*
 *
 * Internal to checkpoint.c and checkpoint_load.c: the list of tensors a
 * checkpoint of a model may hold (name, dtype, shape, where in the model
 * the bytes live), built identically for saving and loading.
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_CHECKPOINT_H
#define SPARSEC_RUNTIME_CHECKPOINT_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest JSON header accepted (the safetensors library's own limit). */
#define SPARSEC_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

enum {
  SPARSEC_CK_VALUES,  /* NAME or NAME.values */
  SPARSEC_CK_CROW,    /* NAME.crow_indices */
  SPARSEC_CK_COL,     /* NAME.col_indices */
  SPARSEC_CK_STATE,   /* optimizer.NAME.<state name> (entry.state) */
  SPARSEC_CK_MOMROWS, /* optimizer.NAME.momentum_rows */
  SPARSEC_CK_LASTSTEP /* optimizer.NAME.last_step */
};

/* Load groups: a parameter's optional tensors of one group are all present
 * or all absent. */
enum {
  SPARSEC_CK_REQUIRED = 0,
  SPARSEC_CK_SGD_MOMENTUM = 1, /* SGD's momentum_buffer (+ momentum_rows): once set */
  SPARSEC_CK_OPT_STATE = 2,    /* every other optimizer state tensor: always saved */
  SPARSEC_CK_ROW_STEPS = 3     /* last_step: alone (absent: rows up to date) */
};

typedef struct sparsec__ck_entry {
  char *name;
  const char *dtype; /* "I64", "F32", "I32", "U8" */
  size_t elem_size;
  int32_t rank;
  int64_t shape[SPARSEC_MAX_RANK];
  int64_t elems;
  int32_t param;
  int kind;
  int state; /* SPARSEC_CK_STATE: the sparsec__state_kind */
  int group; /* SPARSEC_CK_REQUIRED, or the optional tensor's load group */
  int kept;  /* the model keeps it; optional tensors it does not keep are
                accepted with any shape on load, and ignored */
  /* Load: what the file says. */
  int found;
  int64_t begin, end;
} sparsec__ck_entry;

typedef struct sparsec__ck_list {
  sparsec__ck_entry *e;
  int32_t n;
} sparsec__ck_list;

/* The metadata key holding the CRC32 of the other metadata (finding R-7 of
 * docs/reliability.md: the data CRC does not cover the header). */
#define SPARSEC_CK_META_CRC_KEY "metadata_crc32"

/* A metadata entry: key and value as decoded from (or written to) the JSON
 * header, not NUL-terminated. */
typedef struct sparsec__ck_kv {
  const char *key;
  size_t key_len;
  const char *val;
  size_t val_len;
} sparsec__ck_kv;

/* The CRC32 of metadata entries, independent of their order and of the
 * JSON spelling: every entry except "crc32" (which covers the data) and
 * "metadata_crc32" itself, sorted bytewise by key, each contributing
 * KEY NUL VALUE NUL. Returns 0, or -1 when out of memory. */
int sparsec__ck_meta_crc(const sparsec__ck_kv *kv, size_t n, uint32_t *crc);

/* Fills `l` with every tensor a checkpoint of `m` may hold (I64 first, U8
 * last, so every tensor is aligned to its element size);
 * returns 0 or -1 (out of memory). */
int sparsec__ck_build(const sparsec_model *m, sparsec__ck_list *l);
void sparsec__ck_free(sparsec__ck_list *l);
/* The model storage an entry reads from / writes to (NULL: none). */
void *sparsec__ck_data(const sparsec_model *m, const sparsec__ck_entry *e);
/* malloc'd a + b + c, or NULL. */
char *sparsec__concat(const char *a, const char *b, const char *c);
/* Thread-safe strerror into `buf`. */
const char *sparsec__errstr(int err, char *buf, size_t n);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSEC_RUNTIME_CHECKPOINT_H */
