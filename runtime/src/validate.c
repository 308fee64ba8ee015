/*===- validate.c - Descriptor and input validation ----------------*- C -*-===*
 *
 * Everything the runtime checks before it touches a model: the descriptor
 * the compiler emitted (at create) and the buffers a caller passes to
 * forward/train_step (batch size, NULL pointers, sizes that would overflow,
 * ids outside their table, NaN/Inf in floating-point inputs). Failures set
 * the thread's message, naming the input, the sample and the value, and
 * return a status; nothing here modifies the model.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static int sparsec__dtype_ok(sparsec_dtype t) { return t >= SPARSEC_F32 && t <= SPARSEC_I64; }
static int sparsec__dtype_is_int(sparsec_dtype t) { return t == SPARSEC_I32 || t == SPARSEC_I64; }

size_t sparsec__dtype_size(sparsec_dtype t) {
  return (t == SPARSEC_F64 || t == SPARSEC_I64) ? 8 : 4;
}

static int sparsec__validate_input_desc(const sparsec_model_desc *d, int32_t i) {
  const sparsec_input_desc *in = &d->inputs[i];
  if (!in->name)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: input %d has a NULL name", i);
  for (int32_t j = 0; j < i; ++j)
    if (strcmp(d->inputs[j].name, in->name) == 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: duplicate input name '%s'", in->name);
  if (!sparsec__dtype_ok(in->dtype))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: input '%s' has unknown dtype %d",
                         in->name, (int)in->dtype);
  if (in->rank < 0 || in->rank > SPARSEC_MAX_RANK)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: input '%s' has rank %d (max %d)",
                         in->name, in->rank, SPARSEC_MAX_RANK);
  if (in->id_bound < 0 || (in->id_bound > 0 && !sparsec__dtype_is_int(in->dtype)))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: input '%s' has id_bound %lld but is not a non-negative bound "
                         "on an integer input",
                         in->name, (long long)in->id_bound);
  if (in->is_target != 0 && in->is_target != 1)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: input '%s' has is_target %d", in->name,
                         in->is_target);
  return SPARSEC_OK;
}

/* The ABI 3 and 4 fields: norm_type > 0 on every parameter (the compiler always
 * emits it, so a zero-filled descriptor is caught), the others only set on
 * EMBEDDING tables (dims already checked). */
static int sparsec__validate_embedding_options(const sparsec_param_desc *p) {
  if (!(p->norm_type > 0.0))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has norm_type %g, expected a value > 0 (the "
                         "compiler emits 2 by default)",
                         p->name, p->norm_type);
  if (p->layout != SPARSEC_LAYOUT_EMBEDDING) {
    if (p->row_update) /* ABI 4 */
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: parameter '%s' is not an embedding but has a row_update "
                           "kernel (expected NULL)",
                           p->name);
    if (p->padding_idx != -1 || p->max_norm != 0.0 || p->scale_grad_by_freq != 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: parameter '%s' is not an embedding but sets padding_idx "
                           "%lld, max_norm %g or scale_grad_by_freq %d (expected -1, 0, 0)",
                           p->name, (long long)p->padding_idx, p->max_norm, p->scale_grad_by_freq);
    return SPARSEC_OK;
  }
  if (p->padding_idx < -1 || p->padding_idx >= p->dims[0])
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: embedding '%s' has padding_idx %lld, expected -1 (none) or a "
                         "row in [0, %lld)",
                         p->name, (long long)p->padding_idx, (long long)p->dims[0]);
  if (!isfinite(p->max_norm) || p->max_norm < 0.0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: embedding '%s' has max_norm %g, expected a finite value >= 0 "
                         "(0: off)",
                         p->name, p->max_norm);
  if (p->scale_grad_by_freq != 0 && p->scale_grad_by_freq != 1)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: embedding '%s' has scale_grad_by_freq %d, expected 0 or 1",
                         p->name, p->scale_grad_by_freq);
  return SPARSEC_OK;
}

/* The ABI 4 pattern fields: RANDOM everywhere but CSR; a USER pattern must
 * be a valid CSR structure of exactly nnz entries; dynamic sparsity only on
 * CSR parameters, with a valid schedule. */
static int sparsec__validate_pattern(const sparsec_param_desc *p) {
  const int user = p->pattern == SPARSEC_PATTERN_USER;
  if (p->dynamic != SPARSEC_DYNAMIC_NONE &&
      (p->layout != SPARSEC_LAYOUT_CSR ||
       (p->dynamic != SPARSEC_DYNAMIC_SET && p->dynamic != SPARSEC_DYNAMIC_RIGL) ||
       p->delta_t < 1 || p->t_end < 1 || !(p->drop_fraction > 0.0 && p->drop_fraction < 1.0)))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has dynamic %d with delta_t %lld, t_end %lld, "
                         "drop_fraction %g (expected SET or RIGL on a CSR parameter, delta_t and "
                         "t_end >= 1, drop_fraction in (0, 1))",
                         p->name, (int)p->dynamic, (long long)p->delta_t, (long long)p->t_end,
                         p->drop_fraction);
  const int rigl = p->dynamic == SPARSEC_DYNAMIC_RIGL;
  if (rigl != (p->score != NULL) || (rigl ? p->max_size < 1 : p->max_size != 0))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has score %s and max_size %lld (expected a "
                         "score kernel and max_size >= 1 exactly with dynamic RIGL)",
                         p->name, p->score ? "set" : "NULL", (long long)p->max_size);
  /* Non-CSR: RANDOM without arrays; CSR: a known pattern, arrays iff USER. */
  const int csr = p->layout == SPARSEC_LAYOUT_CSR || p->mask_of; /* masks: prune.c */
  const int known = p->pattern >= SPARSEC_PATTERN_RANDOM && p->pattern <= SPARSEC_PATTERN_USER;
  if ((!csr && p->pattern != SPARSEC_PATTERN_RANDOM) || !known ||
      !user != !p->user_positions || !user != !p->user_coordinates)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has pattern %d with%s user arrays (expected "
                         "RANDOM or SMALL_WORLD without them, or USER with both, and only on "
                         "CSR parameters)",
                         p->name, (int)p->pattern, p->user_positions ? "" : "out");
  if (!user)
    return SPARSEC_OK;
  const int32_t *pos = p->user_positions, *crd = p->user_coordinates;
  const int64_t nnz = p->mask_of ? p->mask_ones : p->nnz;
  if (pos[0] != 0 || pos[p->dims[0]] != nnz)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s': user pattern positions run from %d to %d, "
                         "expected 0 to nnz %lld",
                         p->name, pos[0], pos[p->dims[0]], (long long)nnz);
  for (int64_t r = 0; r < p->dims[0]; ++r) {
    if (pos[r + 1] < pos[r])
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: parameter '%s': user pattern positions decrease at row %lld",
                           p->name, (long long)r);
    for (int32_t i = pos[r]; i < pos[r + 1]; ++i)
      if (crd[i] < 0 || crd[i] >= p->dims[1] || (i > pos[r] && crd[i] <= crd[i - 1]))
        return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                             "create: parameter '%s': user pattern entry %d of row %lld has "
                             "column %d (columns must be in [0, %lld), strictly ascending)",
                             p->name, i - pos[r], (long long)r, crd[i], (long long)p->dims[1]);
  }
  return SPARSEC_OK;
}

static int sparsec__validate_param_desc(const sparsec_model_desc *d, int32_t i) {
  const sparsec_param_desc *p = &d->params[i];
  if (!p->name)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: parameter %d has a NULL name", i);
  if (p->name[0] == '\0')
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: parameter %d has an empty name", i);
  for (int32_t j = 0; j < i; ++j)
    if (strcmp(d->params[j].name, p->name) == 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: duplicate parameter name '%s'",
                           p->name);
  if (p->layout < SPARSEC_LAYOUT_DENSE || p->layout > SPARSEC_LAYOUT_BUFFER)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: parameter '%s' has unknown layout %d",
                         p->name, (int)p->layout);
  if (p->rank < 0 || p->rank > SPARSEC_MAX_RANK ||
      (p->layout != SPARSEC_LAYOUT_DENSE &&
       p->rank != (p->layout == SPARSEC_LAYOUT_BUFFER && !p->mask_of ? 1 : 2)))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: parameter '%s' has invalid rank %d",
                         p->name, p->rank);
  int64_t numel = 1;
  for (int32_t k = 0; k < p->rank; ++k) {
    if (p->dims[k] < 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: parameter '%s' has negative dimension %lld", p->name,
                           (long long)p->dims[k]);
    if (sparsec__mul_i64(numel, p->dims[k], &numel) != 0 || numel > SPARSEC_MAX_PARAM_ELEMS)
      return sparsec__fail(SPARSEC_ERR_NOMEM,
                           "create: parameter '%s' is too large: the runtime supports at most "
                           "2^31 elements per parameter",
                           p->name);
  }
  if (p->layout == SPARSEC_LAYOUT_CSR) {
    if (p->nnz < 0 || p->nnz > numel || p->nnz > INT32_MAX || p->dims[0] >= INT32_MAX ||
        p->dims[1] > INT32_MAX)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: CSR parameter '%s' has nnz %lld, expected 0..%lld", p->name,
                           (long long)p->nnz, (long long)(numel < INT32_MAX ? numel : INT32_MAX));
  } else if (p->nnz != numel) {
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has nnz %lld, expected its numel %lld", p->name,
                         (long long)p->nnz, (long long)numel);
  }
  if (p->init < SPARSEC_INIT_ZEROS || p->init > SPARSEC_INIT_FAN_IN_UNIFORM)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has unknown initialiser %d", p->name,
                         (int)p->init);
  if (!isfinite(p->init_a) || p->init_a < 0 ||
      (p->init == SPARSEC_INIT_FAN_IN_UNIFORM && !(p->init_a > 0)))
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: parameter '%s' has invalid initialiser argument %g", p->name,
                         p->init_a);
  int rc = sparsec__validate_embedding_options(p);
  if (rc == SPARSEC_OK)
    rc = sparsec__validate_mask(d, i);
  if (rc == SPARSEC_OK)
    rc = sparsec__validate_pattern(p);
  if (rc != SPARSEC_OK)
    return rc;
  if (p->layout == SPARSEC_LAYOUT_EMBEDDING) {
    if (p->dims[0] < 1) /* ids are checked against the row count */
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: embedding '%s' has no rows", p->name);
    if (p->ids_input < 0 || p->ids_input >= d->num_inputs)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: embedding '%s' has ids_input %d outside [0, %d)", p->name,
                           p->ids_input, d->num_inputs);
    const sparsec_input_desc *in = &d->inputs[p->ids_input];
    if (!sparsec__dtype_is_int(in->dtype) || in->is_target)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: embedding '%s' reads ids from '%s', which is not an integer "
                           "non-target input",
                           p->name, in->name);
  }
  return SPARSEC_OK;
}

static const char *const sparsec__opt_names[] = {"SGD",     "Adagrad", "row-wise Adagrad",
                                                 "RMSprop", "Adam",    "AdamW"};

/* A finite double >= lo (and <= hi / < hi when `open_hi`). */
static int sparsec__in_range(double v, double lo, double hi, int open_hi) {
  return isfinite(v) && v >= lo && (open_hi ? v < hi : v <= hi);
}

static int sparsec__bad_opt(const sparsec_optimizer_desc *o, const char *field, double v,
                            const char *want) {
  return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: %s optimizer has %s %g, expected %s",
                       sparsec__opt_names[o->kind], field, v, want);
}

/* PyTorch's checks of each optimizer's arguments, plus clipping, schedule
 * and sparse-mode fields; fields a kind does not use are ignored. */
static int sparsec__validate_optimizer(const sparsec_optimizer_desc *o) {
  if ((int)o->kind < SPARSEC_OPT_SGD || (int)o->kind > SPARSEC_OPT_ADAMW)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: unknown optimizer kind %d",
                         (int)o->kind);
  const double inf = HUGE_VAL;
  const sparsec_optimizer_kind k = o->kind;
  if (!sparsec__in_range(o->lr, 0, inf, 0))
    return sparsec__bad_opt(o, "lr", o->lr, "a finite value >= 0");
  if (!sparsec__in_range(o->weight_decay, 0, inf, 0))
    return sparsec__bad_opt(o, "weight_decay", o->weight_decay, "a finite value >= 0");
  if ((k == SPARSEC_OPT_SGD || k == SPARSEC_OPT_RMSPROP) &&
      !sparsec__in_range(o->momentum, 0, inf, 0))
    return sparsec__bad_opt(o, "momentum", o->momentum, "a finite value >= 0");
  if (k == SPARSEC_OPT_SGD) {
    if (!isfinite(o->dampening))
      return sparsec__bad_opt(o, "dampening", o->dampening, "a finite value");
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: Nesterov momentum requires a momentum and zero dampening");
  } else if (!sparsec__in_range(o->eps, 0, inf, 0)) {
    return sparsec__bad_opt(o, "eps", o->eps, "a finite value >= 0");
  }
  if (k == SPARSEC_OPT_ADAGRAD || k == SPARSEC_OPT_ROWWISE_ADAGRAD) {
    if (!sparsec__in_range(o->lr_decay, 0, inf, 0))
      return sparsec__bad_opt(o, "lr_decay", o->lr_decay, "a finite value >= 0");
    if (!sparsec__in_range(o->initial_accumulator_value, 0, inf, 0))
      return sparsec__bad_opt(o, "initial_accumulator_value", o->initial_accumulator_value,
                              "a finite value >= 0");
  }
  if (k == SPARSEC_OPT_RMSPROP && !sparsec__in_range(o->alpha, 0, 1, 0))
    return sparsec__bad_opt(o, "alpha", o->alpha, "a value in [0, 1]");
  if (k == SPARSEC_OPT_ADAM || k == SPARSEC_OPT_ADAMW) {
    if (!sparsec__in_range(o->beta1, 0, 1, 1))
      return sparsec__bad_opt(o, "beta1", o->beta1, "a value in [0, 1)");
    if (!sparsec__in_range(o->beta2, 0, 1, 1))
      return sparsec__bad_opt(o, "beta2", o->beta2, "a value in [0, 1)");
  }
  const struct {
    const char *name;
    int32_t v;
  } flags[] = {{"centered", o->centered}, {"amsgrad", o->amsgrad}, {"maximize", o->maximize}};
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); ++i)
    if (flags[i].v != 0 && flags[i].v != 1)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: optimizer flag %s is %d, expected 0 or 1", flags[i].name,
                           flags[i].v);
  if ((int)o->sparse_mode < SPARSEC_SPARSE_LAZY || (int)o->sparse_mode > SPARSEC_SPARSE_DENSE)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: unknown sparse_mode %d",
                         (int)o->sparse_mode);
  if (!sparsec__in_range(o->max_grad_norm, 0, inf, 0))
    return sparsec__bad_opt(o, "max_grad_norm", o->max_grad_norm, "a finite value >= 0 (0: off)");
  if (o->warmup_steps < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: warmup_steps is %lld, expected >= 0",
                         (long long)o->warmup_steps);
  switch (o->schedule) {
  case SPARSEC_SCHED_CONSTANT:
    break;
  case SPARSEC_SCHED_STEP:
    if (o->step_size < 1)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: step schedule has step_size %lld, expected >= 1",
                           (long long)o->step_size);
    if (!sparsec__in_range(o->gamma, 0, inf, 0))
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: step schedule has gamma %g, expected a finite value >= 0",
                           o->gamma);
    break;
  case SPARSEC_SCHED_COSINE:
    if (o->t_max < 1)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: cosine schedule has t_max %lld, expected >= 1",
                           (long long)o->t_max);
    if (!sparsec__in_range(o->eta_min, 0, inf, 0))
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "create: cosine schedule has eta_min %g, expected a finite value >= 0",
                           o->eta_min);
    break;
  default:
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: unknown lr schedule %d", o->schedule);
  }
  return SPARSEC_OK;
}

int sparsec__validate_desc(const sparsec_model_desc *d) {
  if (d->abi_version != SPARSEC_ABI_VERSION)
    return sparsec__fail(SPARSEC_ERR_ABI,
                         "create: descriptor has ABI version %d, this runtime implements %d",
                         d->abi_version, SPARSEC_ABI_VERSION);
  if (!d->name)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: descriptor has a NULL model name");
  if (d->num_inputs < 0 || d->num_params < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: negative input or parameter count");
  if ((d->num_inputs > 0 && !d->inputs) || (d->num_params > 0 && !d->params))
    return sparsec__fail(SPARSEC_ERR_NULL, "create: descriptor has a NULL inputs/params array");
  for (int32_t i = 0; i < d->num_inputs; ++i) {
    int rc = sparsec__validate_input_desc(d, i);
    if (rc != SPARSEC_OK)
      return rc;
  }
  for (int32_t i = 0; i < d->num_params; ++i) {
    int rc = sparsec__validate_param_desc(d, i);
    if (rc != SPARSEC_OK)
      return rc;
  }
  if (d->output_rank < 0 || d->output_rank > SPARSEC_MAX_RANK)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "create: output rank %d (max %d)", d->output_rank,
                         SPARSEC_MAX_RANK);
  return sparsec__validate_optimizer(&d->optimizer);
}

int64_t sparsec__input_numel(const sparsec_input_desc *in, int64_t batch) {
  int64_t n = 1;
  for (int32_t k = 0; k < in->rank; ++k) {
    int64_t dim = in->dims[k] < 0 ? batch : in->dims[k];
    if (sparsec__mul_i64(n, dim, &n) != 0)
      return -1;
  }
  if ((uint64_t)n > (uint64_t)PTRDIFF_MAX / sparsec__dtype_size(in->dtype))
    return -1;
  return n;
}

/* Sample (batch coordinate) of flat element `e`, or -1 without batch dim. */
static int64_t sparsec__sample_of(const sparsec_input_desc *in, int64_t batch, int64_t e) {
  int64_t stride = 1;
  int64_t sample = -1;
  for (int32_t k = in->rank - 1; k >= 0; --k) {
    int64_t dim = in->dims[k] < 0 ? batch : in->dims[k];
    if (in->dims[k] < 0)
      sample = (e / stride) % batch; /* the outermost batch dim wins */
    stride *= dim;
  }
  return sample;
}

static int sparsec__where(char *buf, size_t n, const sparsec_input_desc *in, int64_t batch,
                          int64_t e) {
  int64_t s = sparsec__sample_of(in, batch, e);
  if (s >= 0)
    return snprintf(buf, n, "sample %lld", (long long)s);
  return snprintf(buf, n, "element %lld", (long long)e);
}

static int sparsec__check_ids(const char *what, const sparsec_input_desc *in, int64_t bound,
                              int64_t batch, const void *data, int64_t n) {
  char where[64];
  for (int64_t e = 0; e < n; ++e) {
    int64_t v =
        in->dtype == SPARSEC_I32 ? (int64_t)((const int32_t *)data)[e] : ((const int64_t *)data)[e];
    if (v < 0 || v >= bound) {
      sparsec__where(where, sizeof(where), in, batch, e);
      return sparsec__fail(SPARSEC_ERR_OUT_OF_RANGE,
                           "%s: input '%s' %s has id %lld outside [0, %lld)", what, in->name, where,
                           (long long)v, (long long)bound);
    }
  }
  return SPARSEC_OK;
}

/* Whether f32 values [lo, hi) are all finite: a branch-free scan of the
 * exponent bits that the compiler vectorises. */
static int sparsec__all_finite_f32(const float *v, int64_t lo, int64_t hi) {
  uint32_t bad = 0;
  for (int64_t e = lo; e < hi; ++e) {
    uint32_t bits;
    memcpy(&bits, &v[e], sizeof(bits));
    bad |= (bits & 0x7f800000u) == 0x7f800000u;
  }
  return !bad;
}

/* One chunk of a threaded scan: clears `ok` when a value is not finite. */
typedef struct sparsec__finite_scan {
  const float *v;
  int64_t n, chunk;
  atomic_int ok;
} sparsec__finite_scan;

static void sparsec__finite_chunks(void *ctx, int64_t lo, int64_t hi) {
  sparsec__finite_scan *s = (sparsec__finite_scan *)ctx;
  for (int64_t c = lo; c < hi; ++c) {
    int64_t end = (c + 1) * s->chunk < s->n ? (c + 1) * s->chunk : s->n;
    if (!sparsec__all_finite_f32(s->v, c * s->chunk, end))
      atomic_store_explicit(&s->ok, 0, memory_order_relaxed);
  }
}

/* Fast path of the f32 scan, over the runtime's threads when it is large. */
static int sparsec__f32_finite(const float *v, int64_t n) {
  enum { kChunk = 1 << 16 };
  if (n <= 2 * kChunk)
    return sparsec__all_finite_f32(v, 0, n);
  sparsec__finite_scan s = {v, n, kChunk, 1};
  sparsec_parallel_for(sparsec__finite_chunks, &s, (n + kChunk - 1) / kChunk);
  return atomic_load(&s.ok);
}

static int sparsec__check_finite(const char *what, const sparsec_input_desc *in, int64_t batch,
                                 const void *data, int64_t n) {
  char where[64];
  if (in->dtype == SPARSEC_F32 && sparsec__f32_finite((const float *)data, n))
    return SPARSEC_OK;
  for (int64_t e = 0; e < n; ++e) {
    double v =
        in->dtype == SPARSEC_F32 ? (double)((const float *)data)[e] : ((const double *)data)[e];
    if (!isfinite(v)) {
      sparsec__where(where, sizeof(where), in, batch, e);
      return sparsec__fail(SPARSEC_ERR_NONFINITE, "%s: input '%s' %s has a non-finite value (%g)",
                           what, in->name, where, v);
    }
  }
  return SPARSEC_OK;
}

int sparsec__validate_inputs(const sparsec_model *m, const char *what, int64_t batch,
                             const void *const *inputs, int with_targets) {
  if (batch <= 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "%s: batch must be positive, got %lld", what,
                         (long long)batch);
  int32_t expected = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i)
    expected += with_targets || !m->inputs[i].is_target;
  if (expected > 0 && !inputs)
    return sparsec__fail(SPARSEC_ERR_NULL, "%s: inputs is NULL", what);
  int32_t k = 0;
  for (int32_t i = 0; i < m->num_inputs; ++i) {
    const sparsec_input_desc *in = &m->inputs[i];
    if (in->is_target && !with_targets)
      continue;
    const void *data = inputs[k++];
    int64_t n = sparsec__input_numel(in, batch);
    if (n < 0)
      return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                           "%s: batch %lld is too large: input '%s' would not fit in memory", what,
                           (long long)batch, in->name);
    if (n == 0)
      continue;
    if (!data)
      return sparsec__fail(SPARSEC_ERR_NULL, "%s: input '%s' is NULL", what, in->name);
    int rc = SPARSEC_OK;
    if (m->id_bounds[i] > 0)
      rc = sparsec__check_ids(what, in, m->id_bounds[i], batch, data, n);
    else if (in->dtype == SPARSEC_F32 || in->dtype == SPARSEC_F64)
      rc = sparsec__check_finite(what, in, batch, data, n);
    if (rc != SPARSEC_OK)
      return rc;
  }
  return SPARSEC_OK;
}
