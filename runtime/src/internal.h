/*===- internal.h - sparsec runtime internals -------------------*- C -*-===*
 *
 * Declarations shared by the runtime's translation units: the model
 * instance layout, the error helpers, the seeded RNG and initialisers, COO
 * row-gradient coalescing, the SGD kernels, CRC32 and the strict JSON parser
 * used by the checkpoint loader.
 *
 * Nothing declared here is exported from a shared build: every function is
 * prefixed `sparsec__` and compiled with hidden visibility. The unit tests
 * link the static library and include this header directly (it is valid
 * C and C++).
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_INTERNAL_H
#define SPARSEC_RUNTIME_INTERNAL_H

#include "sparsec/runtime.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPARSEC_API __attribute__((visibility("default")))

#if defined(__GNUC__)
#define SPARSEC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SPARSEC_PRINTF(fmt, args)
#endif

/* Drops const from a pointer the runtime owns or passes through untouched
 * (kernel arguments are `void *const *`), without a qualifier-dropping cast. */
static inline void *sparsec__unconst(const void *p) {
  union {
    const void *c;
    void *m;
  } u;
  u.c = p;
  return u.m;
}

/* Largest number of elements the runtime accepts for one parameter. */
#define SPARSEC_MAX_PARAM_ELEMS ((int64_t)1 << 31)

/*===-- Errors (status.c) -------------------------------------------------===*/

/* Formats the calling thread's message and returns `status`. */
int sparsec__fail(int status, const char *fmt, ...) SPARSEC_PRINTF(2, 3);
/* Resets the calling thread's message to "". */
void sparsec__clear_error(void);

/*===-- Sizes ---------------------------------------------------------------===*/

/* *out = a * b; returns 0, or -1 on overflow or a negative operand. */
int sparsec__mul_i64(int64_t a, int64_t b, int64_t *out);
/* malloc/calloc that never return NULL for a zero size. */
void *sparsec__malloc(size_t bytes);
void *sparsec__calloc(size_t count, size_t size);

/*===-- RNG and initialisers (init.c) -------------------------------------===*/

typedef struct sparsec__rng {
  uint64_t s[4]; /* xoshiro256** state, never all zero */
} sparsec__rng;

/* One step of splitmix64 on *state. */
uint64_t sparsec__splitmix64(uint64_t *state);
/* 64-bit FNV-1a of a NUL-terminated string. */
uint64_t sparsec__hash_name(const char *name);
/* Seeds `rng` for stream `stream` of `seed` (independent per stream). */
void sparsec__rng_seed(sparsec__rng *rng, uint64_t seed, uint64_t stream);
uint64_t sparsec__rng_next(sparsec__rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double sparsec__rng_uniform(sparsec__rng *rng);
/* Uniform integer in [0, n), n > 0, unbiased (Lemire's method). */
uint64_t sparsec__rng_below(sparsec__rng *rng, uint64_t n);

/* Fills `n` floats with initialiser `init` (parameter `a`, see runtime.h). */
void sparsec__init_values(sparsec__rng *rng, sparsec_init init, double a, float *values, int64_t n);

/* Samples exactly `nnz` distinct positions of a rows x cols matrix,
 * uniformly among all such sets, into CSR form: positions[rows + 1] and
 * coordinates[nnz] (ascending per row). Requires rows, cols <= INT32_MAX,
 * 0 <= nnz <= rows * cols, nnz <= INT32_MAX. Returns 0, or -1 when a
 * temporary allocation fails (outputs are then unspecified). */
int sparsec__csr_sample(sparsec__rng *rng, int64_t rows, int64_t cols, int64_t nnz,
                        int32_t *positions, int32_t *coordinates);

/* Sorts `n` 64-bit keys ascending (LSD radix); `tmp` has room for n keys. */
void sparsec__radix_sort_u64(uint64_t *keys, uint64_t *tmp, int64_t n);

/*===-- COO row gradients (coo.c) -----------------------------------------===*/

/* A row-sparse gradient: `n` (id, row) pairs; row i is rows[i*dim, (i+1)*dim).
 * `coalesced` is set once the ids are unique and ascending. */
typedef struct sparsec__coo_grad {
  int64_t n;
  int64_t dim;
  const int32_t *ids;
  const float *rows;
  int coalesced;
} sparsec__coo_grad;

/* Scratch space for coalescing; grown by sparsec__coo_reserve. */
typedef struct sparsec__coo_workspace {
  int64_t cap_n;    /* entries the index arrays hold */
  int64_t cap_vals; /* floats `out_rows` holds */
  uint32_t *keys[2];
  uint32_t *perm[2];
  int32_t *out_ids;
  float *out_rows;
} sparsec__coo_workspace;

/* Makes room for `n` entries of `dim` floats; returns 0 or -1 (NOMEM, the
 * workspace keeps its previous buffers). */
int sparsec__coo_reserve(sparsec__coo_workspace *ws, int64_t n, int64_t dim);
void sparsec__coo_free(sparsec__coo_workspace *ws);

/* Coalesces `g` in place: sorts the ids (stable radix sort; ids must be in
 * [0, bound)) and sums rows of equal ids in their original order into the
 * workspace, then points `g` at the result and sets `g->coalesced`. Does
 * nothing when `g->coalesced` is already set; an input whose ids are
 * already strictly ascending is only flagged. The workspace must have been
 * reserved for g->n entries of g->dim floats. */
void sparsec__coo_coalesce(sparsec__coo_grad *g, int64_t bound, sparsec__coo_workspace *ws);

/*===-- SGD (optim.c) -------------------------------------------------------===*/

typedef struct sparsec__sgd {
  float lr;
  float momentum;
  float one_minus_dampening; /* (float)(1 - dampening) */
  float weight_decay;
  int nesterov;
} sparsec__sgd;

/* Hyper-parameters as PyTorch casts them to the parameter dtype. */
sparsec__sgd sparsec__sgd_make(const sparsec_optimizer_desc *opt, double lr);
/* Whether the update is non-linear in the gradient (momentum or decay). */
int sparsec__sgd_needs_coalesce(const sparsec__sgd *o);

/* One torch.optim.SGD step on `n` values (a dense parameter or the values
 * of a CSR parameter) with gradient `grad`. `buf` is the momentum buffer
 * (may be NULL when momentum == 0) and `*buf_init` says whether it holds
 * state yet (PyTorch's `momentum_buffer is None`); it is set by the step. */
void sparsec__sgd_dense(const sparsec__sgd *o, float *param, const float *grad, float *buf,
                        uint8_t *buf_init, int64_t n);

/* Lazy SGD on the rows of an embedding table [rows, g->dim]: only rows
 * present in `g` change; each row keeps its own momentum-initialised flag
 * (`row_init`, one byte per table row). When the update is non-linear the
 * gradient is coalesced first (workspace `ws`, reserved for g->n rows);
 * plain SGD scatter-adds in id order. */
void sparsec__sgd_rows(const sparsec__sgd *o, float *table, int64_t rows, sparsec__coo_grad *g,
                       float *buf, uint8_t *row_init, sparsec__coo_workspace *ws);

/*===-- CRC32 (crc32.c) -----------------------------------------------------===*/

/* IEEE 802.3 CRC32 (zlib's crc32): pass 0 first, then the previous value. */
uint32_t sparsec__crc32(uint32_t crc, const void *data, size_t len);

/*===-- Strict JSON (json.c) ------------------------------------------------===*/

typedef enum sparsec__json_kind {
  SPARSEC_JSON_OBJECT,
  SPARSEC_JSON_ARRAY,
  SPARSEC_JSON_STRING,
  SPARSEC_JSON_INT
} sparsec__json_kind;

/* A parsed value. Children of objects and arrays form a singly linked list
 * (`first`, then `next`) of indices into the document's node array; members
 * of an object carry their (decoded) name in `key`. Strings are decoded and
 * NUL-terminated. */
typedef struct sparsec__json_node {
  sparsec__json_kind kind;
  int64_t count; /* children */
  int64_t first; /* first child or -1 */
  int64_t next;  /* next sibling or -1 */
  int64_t ival;  /* SPARSEC_JSON_INT */
  const char *key;
  size_t key_len;
  const char *str; /* SPARSEC_JSON_STRING */
  size_t len;
} sparsec__json_node;

typedef struct sparsec__json_doc {
  sparsec__json_node *nodes; /* nodes[0] is the root */
  int64_t num_nodes;
  char *strings; /* backing store of every `key` and `str` */
} sparsec__json_doc;

/* Parses the JSON subset of safetensors headers: objects (unique keys),
 * arrays, strings (all escapes, valid UTF-8) and non-negative integers that
 * fit in int64. Surrounding whitespace is allowed. Returns 0, or -1 with a
 * message in `err` (size `errlen`); `doc` is freed on error. */
int sparsec__json_parse(const char *text, size_t len, sparsec__json_doc *doc, char *err,
                        size_t errlen);
void sparsec__json_free(sparsec__json_doc *doc);
/* Value of `key` in object node `obj`, or NULL. */
const sparsec__json_node *sparsec__json_get(const sparsec__json_doc *doc,
                                            const sparsec__json_node *obj, const char *key);

/*===-- Model (model.c, validate.c, train.c) ------------------------------===*/

typedef struct sparsec__param {
  sparsec_param_desc desc; /* owned copy; desc.name points into the model */
  int64_t numel;           /* product of dims */
  int64_t nnz;             /* stored values: CSR nnz, else numel */
  float *values;           /* nnz */
  int32_t *positions;      /* CSR: rows + 1 */
  int32_t *coordinates;    /* CSR: nnz */
  float *grad;             /* DENSE/CSR: nnz; EMBEDDING: grad_cap * dim */
  /* EMBEDDING gradient bookkeeping. */
  int64_t grad_cap;  /* rows `grad` and `grad_ids` hold */
  int64_t grad_rows; /* rows of the last train_step */
  int32_t *grad_ids; /* ids of the last train_step */
  sparsec__coo_workspace coo;
  /* Momentum (allocated at create when momentum != 0). */
  float *momentum;       /* nnz */
  uint8_t mom_init;      /* DENSE/CSR: buffer holds state */
  uint8_t *mom_row_init; /* EMBEDDING: per table row */
} sparsec__param;

struct sparsec_model {
  char *name;
  int32_t num_inputs;
  sparsec_input_desc *inputs; /* owned copy */
  int64_t *id_bounds;         /* effective id bound per input (0: none) */
  int32_t num_params;
  sparsec__param *params;
  int32_t output_rank;
  int64_t output_dims[SPARSEC_MAX_RANK];
  sparsec_optimizer_desc opt;
  double lr;
  int64_t step;
  sparsec_kernel_fn forward;
  sparsec_kernel_fn train;
};

/* Checks a descriptor; on failure sets the message and returns a status. */
int sparsec__validate_desc(const sparsec_model_desc *desc);
/* Elements of input `in` for `batch` (dims < 0 are the batch); -1 when the
 * count or its byte size overflows. */
int64_t sparsec__input_numel(const sparsec_input_desc *in, int64_t batch);
/* Checks batch, pointers, id ranges and finiteness of the inputs a call
 * passes (`with_targets`: train_step). `what` prefixes messages. */
int sparsec__validate_inputs(const sparsec_model *m, const char *what, int64_t batch,
                             const void *const *inputs, int with_targets);
/* Index of parameter `name` or -1. */
int32_t sparsec__find_param(const sparsec_model *m, const char *name);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSEC_RUNTIME_INTERNAL_H */
