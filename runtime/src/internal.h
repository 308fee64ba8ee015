/*===- internal.h - sparsec runtime internals -------------------*- C -*-===*
 *
 * Declarations shared by the runtime's translation units: the model
 * instance layout, the error helpers, the seeded RNG and initialisers, COO
 * row-gradient coalescing, the optimizer kernels, CRC32 and the strict JSON
 * parser used by the checkpoint loader.
 *
 * Nothing declared here is exported from a shared build: every function is
 * prefixed `sparsec__` and compiled with hidden visibility. The unit tests
 * link the static library and include this header directly (it is valid
 * C and C++).
 *===----------------------------------------------------------------------===*/
#ifndef SPARSEC_RUNTIME_INTERNAL_H
#define SPARSEC_RUNTIME_INTERNAL_H

#include "optim_elem.h"
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
/* calloc of `count` elements of `size` bytes, NULL on overflow/failure. */
void *sparsec__alloc_array(int64_t count, size_t size);

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
/* Merges the sorted add[0, fresh) into the sorted, duplicate-free
 * out[0, have) through tmp (have + fresh entries); returns the new count. */
int64_t sparsec__merge_unique(uint64_t *out, int64_t have, const uint64_t *add, int64_t fresh,
                              uint64_t *tmp);
/* Small-world pattern (small_world.c): exactly nnz distinct edges drawn with
 * probability (d + 1)^-lambda; and the lambda whose expected edge count is
 * nnz (bisection, always terminates). */
int sparsec__csr_small_world(sparsec__rng *rng, int64_t rows, int64_t cols, int64_t nnz,
                             int32_t *positions, int32_t *coordinates);
double sparsec__small_world_lambda(int64_t rows, int64_t cols, int64_t nnz);
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
  uint32_t *starts; /* cap_n + 1 segment offsets */
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

/* The sorted order of `g`'s entries without summing them: entry j of the
 * order is row perm[j] with id keys[j]; segment u (of *segments) is entries
 * [starts[u], starts[u + 1]) and holds one id. With `singletons`, the order
 * is the batch order and every entry is a segment of its own (ids may
 * repeat). The arrays point into the workspace (reserved for g->n). */
typedef struct sparsec__coo_order {
  const uint32_t *perm, *keys, *starts;
  int64_t segments;
} sparsec__coo_order;
sparsec__coo_order sparsec__coo_sort(const sparsec__coo_grad *g, sparsec__coo_workspace *ws,
                                     int singletons);

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

/*===-- Optimizer state -------------------------------------------------===*/

/* The optimizer state kinds (SPARSEC_ST_*): optim_elem.h. */

/* Undo log of the rows train_step caught up before its kernel (CATCHUP):
 * restored when the step then fails, so a failed call changes nothing. */
typedef struct sparsec__undo {
  int64_t cap;   /* rows the log holds */
  int64_t n;     /* rows logged */
  int64_t width; /* floats per row: values + every kept state */
  int32_t *ids;
  int64_t *last; /* last_step before */
  uint8_t *init; /* momentum row flag before */
  float *data;   /* n * width */
} sparsec__undo;

/* Rows a max_norm renorm rescaled before a kernel (their old values):
 * restored when the call then fails, so a failed call changes nothing. */
typedef struct sparsec__renorm_log {
  int64_t cap; /* rows the log holds */
  int64_t n;   /* rows logged */
  int32_t *ids;
  float *rows; /* n * dim */
} sparsec__renorm_log;

typedef struct sparsec__param {
  sparsec_param_desc desc; /* owned copy; desc.name points into the model */
  int64_t numel;           /* product of dims */
  int64_t nnz;             /* stored values: CSR nnz, else numel */
  int64_t rows;            /* rows for row-wise state: CSR/EMBEDDING dims[0];
                              DENSE dims[0] when rank >= 2, else 1 */
  float *values;           /* nnz */
  int32_t *positions;      /* CSR: rows + 1 */
  int32_t *coordinates;    /* CSR: nnz */
  float *grad;             /* DENSE/CSR: nnz; EMBEDDING: grad_cap * dim */
  /* EMBEDDING gradient bookkeeping. */
  int64_t grad_cap;  /* rows `grad` and `grad_ids` hold */
  int64_t grad_rows; /* rows of the last train_step */
  int32_t *grad_ids; /* ids of the last train_step */
  sparsec__coo_workspace coo;
  sparsec__coo_grad cur; /* the gradient the optimizer step uses */
  float *dense_grad;     /* EMBEDDING, SPARSE_DENSE: the densified gradient */
  /* Optimizer state, allocated at create (NULL where not kept). */
  float *state[SPARSEC_NSTATE]; /* nnz floats; row-wise sum: `rows` floats */
  uint8_t mom_init;             /* SGD momentum buffer set (one flag) */
  uint8_t *mom_row_init;        /* SGD momentum, EMBEDDING lazy/catchup: per row */
  int64_t *last_step;           /* EMBEDDING catchup: step each row is up to date with */
  sparsec__undo undo;
  /* EMBEDDING options (embedding.c). */
  uint32_t *row_count;        /* max_norm / scale_grad_by_freq: one counter per
                                 row, all zero between calls */
  sparsec__renorm_log renorm; /* max_norm: the last renorm's old rows */
  /* CSR with dynamic sparsity (dynamic.c): scratch allocated at create. */
  struct {
    uint64_t *lin;   /* 3 * nnz */
    int64_t *order;  /* nnz */
    float *scratch;  /* nnz */
    int32_t *coords; /* nnz */
    /* RIGL: a heap of the best growth candidates (score, linear position),
     * one chunk of scores (chunk_rows x in), and the layer's input and
     * output gradient the train kernel captures (cap_rows batch rows). */
    float *heap_score;  /* nnz */
    uint64_t *heap_lin; /* nnz */
    float *chunk;       /* chunk_rows * in */
    int64_t chunk_rows;
    float *cap_x, *cap_dy;
    int64_t cap_rows;
    int64_t cap_batch; /* batch of the last train kernel call (the update
                          runs only after a successful step) */
  } dyn;
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
  double lr; /* base learning rate */
  int64_t step;
  uint64_t seed; /* of create (dynamic sparsity draws) */
  sparsec_kernel_fn forward;
  sparsec_kernel_fn train;
  struct sparsec__device *dev; /* non-NULL: resident on a CUDA device (device.c) */
};

/* Gradient clipping pieces (optim.c): the sum of squares of `n` values in
 * double, in order; `v *= c`; clip_grad_norm_'s coefficient max_norm /
 * (sqrt(sumsq) + 1e-6) in float (clip when < 1). */
double sparsec__sumsq(const float *v, int64_t n);
void sparsec__scale(float *v, int64_t n, float c);
float sparsec__clip_coef(const sparsec_model *m, double sumsq);
/* An embedding's densified gradient (sparse = dense): dense_grad zeroed,
 * then the batch's rows added in batch order (optim.c). */
void sparsec__densify(sparsec__param *p);

/*===-- Models on a CUDA device (device.c) ---------------------------------===*/

typedef struct sparsec__device sparsec__device;
/* Moves a freshly created model onto the device of `k` (CUDA, or the host
 * emulator of a --cuda-emulate library); on failure `m->dev` stays NULL. */
int sparsec__device_attach(sparsec_model *m, const sparsec_device_kernels *k);
void sparsec__device_free(sparsec_model *m);
/* Kinds of array a device model keeps (bit mask). */
enum {
  SPARSEC_DEV_VALUES = 1,
  SPARSEC_DEV_GRADS = 2,
  SPARSEC_DEV_STATE = 4,   /* optimizer state */
  SPARSEC_DEV_PATTERN = 8, /* CSR positions and coordinates (never change on the device) */
  SPARSEC_DEV_ALL = 15
};
/* Before reading the host copy: downloads the `kinds` the device changed. */
int sparsec__device_host_sync(sparsec_model *m, int kinds);
/* After the host copy's `kinds` may have been written: the next call
 * uploads them. */
void sparsec__device_host_written(sparsec_model *m, int kinds);
/* forward / train_step of a device model after validation; `bufs` has room
 * for every argument of the trampoline. */
int sparsec__device_forward(sparsec_model *m, int64_t batch, const void *const *inputs,
                            int64_t out_numel, float *output, void **bufs);
int sparsec__device_train_step(sparsec_model *m, int64_t batch, const void *const *inputs,
                               float *loss, void **bufs);
/* sparsec_catch_up of a device model (device_rows.c). */
int sparsec__device_catch_up(sparsec_model *m);

/* Bytes of one element of `t`. */
size_t sparsec__dtype_size(sparsec_dtype t);
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

/*===-- Dynamic sparsity (dynamic.c) ---------------------------------------===*/

/* Weights dropped (and grown) by the update after step t (0: none). */
int64_t sparsec__dynamic_count(const sparsec_param_desc *d, int64_t nnz, int64_t t);
int sparsec__dynamic_alloc(sparsec__param *p);
void sparsec__dynamic_free(sparsec__param *p);
/* The SET / RigL update of CSR parameter `p` after step t (no-op when t is
 * not an update step); fails only if the score kernel does. */
int sparsec__dynamic_update(sparsec_model *m, sparsec__param *p, int64_t t);
/* RIGL: sizes the capture buffers for `batch` rows (before the kernel). */
int sparsec__dynamic_reserve(sparsec__param *p, int64_t batch);

/*===-- Masks and pruning (prune.c) ---------------------------------------===*/

/* 1 and the target sparsity s_t in `*sparsity` when step t is a pruning
 * step of mask `d`; else 0. */
int sparsec__prune_target(const sparsec_param_desc *d, int64_t t, double *sparsity);
/* The ABI 5 (pruning) fields of parameter i (part of validate_desc). */
int sparsec__validate_mask(const sparsec_model_desc *d, int32_t i);
/* After every parameter is set up: draws each mask and zeroes its weight
 * where the mask is 0. */
int sparsec__masks_init(sparsec_model *m, uint64_t seed);
/* Zeroes every masked weight where its mask is 0 (after load). */
void sparsec__masks_apply(sparsec_model *m);
/* The pruning updates due after step t (after the optimizer step); cannot
 * fail. */
void sparsec__prune_step(sparsec_model *m, int64_t t);

/*===-- Optimizers (optim*.c) ---------------------------------------------===*/

/* sparsec__opt, sparsec__grad and the per-value updates: optim_elem.h. */
sparsec__opt sparsec__opt_make(const sparsec_optimizer_desc *d, double lr, int64_t step);

/* State kind `k` is kept by optimizer `d` (for a parameter of any layout). */
int sparsec__opt_keeps(const sparsec_optimizer_desc *d, int k);
const char *sparsec__state_name(int k);
/* Elements of state `k` of parameter `p` (row-wise Adagrad's sum: one per
 * row; every other state: one per stored value). */
static inline int64_t sparsec__state_elems(const sparsec_optimizer_desc *d, const sparsec__param *p,
                                           int k) {
  return (k == SPARSEC_ST_SUM && d->kind == SPARSEC_OPT_ROWWISE_ADAGRAD) ? p->rows : p->nnz;
}
/* The value a fresh state starts from. */
float sparsec__state_init(const sparsec_optimizer_desc *d, int k);
/* Whether EMBEDDING gradients must be coalesced before the step. */
/* Embedding `p` is stepped by its generated row update (lazy rows, no
 * clipping). */
int sparsec__fuses_rows(const sparsec_model *m, const sparsec__param *p);
int sparsec__opt_coalesces(const sparsec_optimizer_desc *d);
/* Learning rate of step e + 1 (after e steps) for base lr `base`. */
double sparsec__scheduled_lr(const sparsec_optimizer_desc *d, double base, int64_t e);

/* `n` contiguous values and the state at the same offset. */
typedef struct sparsec__span {
  float *p;
  const float *g;           /* gradient (NULL for catch-up) */
  float *s[SPARSEC_NSTATE]; /* per-value state at the same offset, or NULL */
  float *row_sum;           /* row-wise Adagrad: this row's accumulator */
  int64_t n;
} sparsec__span;

/* One step on a span. `init`: SGD's momentum buffer holds state;
 * `sparse_form`: PyTorch's sparse-gradient arithmetic (sparse Adagrad,
 * SparseAdam) rather than the dense one. */
void sparsec__opt_span(const sparsec__opt *o, const sparsec__span *s, int init, int sparse_form);
void sparsec__sgd_span(const sparsec__opt *o, const sparsec__span *s, int init);
void sparsec__adagrad_span(const sparsec__opt *o, const sparsec__span *s, int sparse_form);
void sparsec__rmsprop_span(const sparsec__opt *o, const sparsec__span *s);
void sparsec__adam_span(const sparsec__opt *o, const sparsec__span *s, int sparse_form);

/* Applies `k` >= 1 skipped zero-gradient steps to a span in closed form
 * (see docs/optimizers.md). `init`: SGD's momentum buffer holds state. */
void sparsec__opt_catchup(const sparsec__opt *o, const sparsec__span *s, int64_t k, int init);
/* The coefficients of that catch-up (mode SPARSEC_CU_NONE: nothing moves),
 * applied per value by sparsec__catchup_elem (optim_elem.h); the last three
 * fill a zeroed `c`. */
void sparsec__catchup_coef_of(const sparsec__opt *o, int64_t k, int init, sparsec__catchup_coef *c);
void sparsec__sgd_catchup_coef(const sparsec__opt *o, int64_t k, int init,
                               sparsec__catchup_coef *c);
void sparsec__rmsprop_catchup_coef(const sparsec__opt *o, int64_t k, sparsec__catchup_coef *c);
void sparsec__adam_catchup_coef(const sparsec__opt *o, int64_t k, sparsec__catchup_coef *c);
/* out = a^k for the row-major 2x2 matrix a (k >= 0). */
void sparsec__mat2_pow(const double a[4], int64_t k, double out[4]);

/* Allocates parameter `p`'s optimizer state for the model's optimizer;
 * returns 0 or -1 (out of memory). */
int sparsec__state_alloc(const sparsec_model *m, sparsec__param *p);
void sparsec__state_free(sparsec__param *p);
/* Resets every optimizer state of `p` to a fresh optimizer's, with
 * catch-up rows up to date at step `step`. */
void sparsec__state_reset(const sparsec_model *m, sparsec__param *p, int64_t step);

/* A step on a dense parameter or the values of a CSR parameter (and an
 * EMBEDDING table in SPARSE_DENSE mode) with gradient `grad` (nnz). */
void sparsec__opt_values(const sparsec__opt *o, sparsec__param *p, const float *grad);
/* A lazy (or, `catchup`, catch-up) step on the rows of an EMBEDDING table
 * present in `g` (coalesced, except plain lazy SGD which scatter-adds). */
void sparsec__opt_rows(const sparsec__opt *o, sparsec__param *p, const sparsec__coo_grad *g,
                       int catchup);

/* train_step, before the kernel: brings every row the batch reads of each
 * CATCHUP table up to date (logged in the undo log reserved for `batch`). */
void sparsec__catchup_batch(sparsec_model *m, int64_t batch, const void *const *inputs);
/* Restores what sparsec__catchup_batch changed (the step failed). */
void sparsec__catchup_undo(sparsec_model *m);
/* Reserves the undo log of `p` for `rows` rows; 0 or -1. */
int sparsec__undo_reserve(const sparsec_model *m, sparsec__param *p, int64_t rows);
/* Brings every row of every CATCHUP table up to date. */
void sparsec__catchup_all(sparsec_model *m);
/* After a successful kernel: prepares the gradients (padding rows and
 * scale_grad_by_freq, then coalesce or densify), clips them, and steps
 * every parameter. Cannot fail. */
void sparsec__opt_step(sparsec_model *m);

/*===-- Embedding options (embedding.c) -------------------------------------===*/

/* The buffer of input `index` in a call's `inputs` (forward lists only the
 * non-target inputs). */
const void *sparsec__call_input(const sparsec_model *m, int32_t index, const void *const *inputs,
                                int with_targets);
/* Whether `p` is an embedding with max_norm (its rows are renormed). */
int sparsec__renorms(const sparsec__param *p);

/* Element `e` of the id input `in` (I32 or I64 data). */
static inline int64_t sparsec__id_at(const sparsec_input_desc *in, const void *ids, int64_t e) {
  return in->dtype == SPARSEC_I32 ? (int64_t)((const int32_t *)ids)[e] : ((const int64_t *)ids)[e];
}
/* At create, once the values are initialised: zeroes the padding row and
 * allocates the per-row counters; returns 0 or -1 (out of memory). */
int sparsec__emb_setup(sparsec__param *p);
void sparsec__emb_free(sparsec__param *p);
/* Sizes the renorm log of every max_norm table for a call of `batch`
 * (`what`: the call's name); returns a status, changing nothing on failure. */
int sparsec__renorm_reserve(sparsec_model *m, const char *what, int64_t batch);
/* Renorms (logged) the rows each max_norm table's ids reference in a call's
 * validated `inputs` (`with_targets`: train_step's layout, targets listed). */
void sparsec__renorm_batch(sparsec_model *m, int64_t batch, const void *const *inputs,
                           int with_targets);
/* Restores what sparsec__renorm_batch changed (the call failed). */
void sparsec__renorm_undo(sparsec_model *m);
/* After a successful kernel: zeroes the raw gradient rows of padding_idx and
 * divides every row by its id's count in the batch (scale_grad_by_freq). */
void sparsec__emb_grad_prepare(sparsec__param *p);

/*===-- Thread pool (parallel.c) --------------------------------------------===*/

/* Called by the generated kernels (sparsec-outline-parallel): runs
 * fn(ctx, lo, hi) over contiguous ranges covering [0, n), one per thread of
 * the pool (SPARSEC_NUM_THREADS, default: the online CPUs), and returns when
 * all are done. A call made while the pool is busy (another thread's kernel,
 * or nested) runs fn(ctx, 0, n) on the calling thread. */
typedef void (*sparsec__chunk_fn)(void *ctx, int64_t lo, int64_t hi);
void sparsec_parallel_for(sparsec__chunk_fn fn, void *ctx, int64_t n);
/* Threads the pool runs a call on (1 = the caller alone). */
int sparsec__num_threads(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSEC_RUNTIME_INTERNAL_H */
