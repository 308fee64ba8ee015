/*===- model.c - Model instances: create, destroy, introspection ---*- C -*-===*
 *
 * A model instance owns a deep copy of its descriptor (so callers may build
 * descriptors on the stack), the parameters (values, CSR structure),
 * their gradients and the optimizer state (arrays of 8 MiB and more on
 * 2 MiB pages where the system allows). Parameters are initialised from
 * the seed at create (an embedding's padding row is then zeroed); every
 * allocation is size-checked and a failure releases everything and reports
 * SPARSEC_ERR_NOMEM. This file also holds the by-name accessors and the
 * learning-rate / step-count getters (the scheduled rate is in optim.c).
 *===----------------------------------------------------------------------===*/
#define _GNU_SOURCE /* MADV_HUGEPAGE */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char *sparsec__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

void *sparsec__alloc_array(int64_t count, size_t size) {
  if (count < 0 || (uint64_t)count > SIZE_MAX / size)
    return NULL;
  void *p = sparsec__calloc((size_t)count, size);
#ifdef MADV_HUGEPAGE
  /* Large arrays (an embedding table, its optimizer state) are read a row at
   * a time at random: back them with 2 MiB pages so a row costs one cache
   * miss, not a TLB miss as well. calloc maps big blocks without touching
   * them, so the advice applies to every page the 2 MiB-aligned interior
   * later faults in; the block stays an ordinary calloc block for free(). */
  const uintptr_t huge = (uintptr_t)2 << 20;
  size_t bytes = (size_t)count * size;
  if (p && bytes >= 4 * huge) {
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (hi > lo)
      (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
  }
#endif
  return p;
}

static int sparsec__nomem(const char *what, const char *name, int64_t count, size_t size) {
  return sparsec__fail(SPARSEC_ERR_NOMEM,
                       "create: cannot allocate %s of parameter '%s' (%lld x %zu bytes)", what,
                       name, (long long)count, size);
}

/* Allocates and initialises parameter storage; returns a status. */
static int sparsec__param_setup(sparsec_model *m, sparsec__param *p, uint64_t seed) {
  const sparsec_param_desc *d = &p->desc;
  p->numel = 1;
  for (int32_t k = 0; k < d->rank; ++k)
    p->numel *= d->dims[k]; /* checked by sparsec__validate_desc */
  p->nnz = d->layout == SPARSEC_LAYOUT_CSR ? d->nnz : p->numel;
  if (!(p->values = (float *)sparsec__alloc_array(p->nnz, sizeof(float))))
    return sparsec__nomem("values", d->name, p->nnz, sizeof(float));
  if (d->layout == SPARSEC_LAYOUT_CSR) {
    p->positions = (int32_t *)sparsec__alloc_array(d->dims[0] + 1, sizeof(int32_t));
    p->coordinates = (int32_t *)sparsec__alloc_array(p->nnz, sizeof(int32_t));
    if (!p->positions || !p->coordinates)
      return sparsec__nomem("CSR structure", d->name, p->nnz, sizeof(int32_t));
  }
  if (d->layout != SPARSEC_LAYOUT_EMBEDDING &&
      !(p->grad = (float *)sparsec__alloc_array(p->nnz, sizeof(float))))
    return sparsec__nomem("gradient", d->name, p->nnz, sizeof(float));
  p->rows = (d->layout != SPARSEC_LAYOUT_DENSE || d->rank >= 2) ? d->dims[0] : 1;
  if (sparsec__state_alloc(m, p) != 0)
    return sparsec__nomem("optimizer state", d->name, p->nnz, sizeof(float));
  if (sparsec__dynamic_alloc(p) != 0)
    return sparsec__nomem("dynamic sparsity scratch", d->name, p->nnz, 6 * sizeof(uint64_t));

  sparsec__rng rng;
  sparsec__rng_seed(&rng, seed, sparsec__hash_name(d->name));
  if (d->layout == SPARSEC_LAYOUT_CSR && d->pattern == SPARSEC_PATTERN_USER) {
    memcpy(p->positions, d->user_positions, (size_t)(d->dims[0] + 1) * sizeof(int32_t));
    memcpy(p->coordinates, d->user_coordinates, (size_t)p->nnz * sizeof(int32_t));
  } else if (d->layout == SPARSEC_LAYOUT_CSR &&
             (d->pattern == SPARSEC_PATTERN_SMALL_WORLD
                  ? sparsec__csr_small_world(&rng, d->dims[0], d->dims[1], p->nnz, p->positions,
                                             p->coordinates)
                  : sparsec__csr_sample(&rng, d->dims[0], d->dims[1], p->nnz, p->positions,
                                        p->coordinates)) != 0) {
    return sparsec__nomem("CSR sampling scratch", d->name, p->nnz, 3 * sizeof(uint64_t));
  }
  sparsec__init_values(&rng, d->init, d->init_a, p->values, p->nnz);
  if (sparsec__emb_setup(p) != 0)
    return sparsec__nomem("row counters", d->name, d->dims[0], sizeof(uint32_t));
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_create(const sparsec_model_desc *desc, uint64_t seed, sparsec_model **out) {
  sparsec__clear_error();
  if (!out)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: out is NULL");
  *out = NULL;
  if (!desc)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: descriptor is NULL");
  int rc = sparsec__validate_desc(desc);
  if (rc != SPARSEC_OK)
    return rc;

  sparsec_model *m = (sparsec_model *)calloc(1, sizeof(*m));
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the model");
  m->num_inputs = desc->num_inputs;
  m->num_params = desc->num_params;
  m->output_rank = desc->output_rank;
  memcpy(m->output_dims, desc->output_dims, sizeof(m->output_dims));
  m->opt = desc->optimizer;
  m->lr = desc->optimizer.lr;
  m->seed = seed;
  m->forward = desc->forward;
  m->train = desc->train;
  m->name = sparsec__strdup(desc->name);
  m->inputs = (sparsec_input_desc *)sparsec__calloc((size_t)m->num_inputs, sizeof(*m->inputs));
  m->id_bounds = (int64_t *)sparsec__calloc((size_t)m->num_inputs, sizeof(int64_t));
  m->params = (sparsec__param *)sparsec__calloc((size_t)m->num_params, sizeof(*m->params));
  if (!m->name || !m->inputs || !m->id_bounds || !m->params) {
    sparsec_destroy(m);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the model");
  }
  for (int32_t i = 0; i < m->num_inputs; ++i) {
    m->inputs[i] = desc->inputs[i];
    m->id_bounds[i] = desc->inputs[i].id_bound;
    if (!(m->inputs[i].name = sparsec__strdup(desc->inputs[i].name))) {
      sparsec_destroy(m);
      return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the model");
    }
  }
  /* Ids that index an embedding must also lie inside its table. */
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec_param_desc *p = &desc->params[i];
    if (p->layout != SPARSEC_LAYOUT_EMBEDDING)
      continue;
    int64_t *b = &m->id_bounds[p->ids_input];
    if (*b <= 0 || *b > p->dims[0])
      *b = p->dims[0];
  }
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    p->desc = desc->params[i];
    p->desc.name = NULL;
    char *name = sparsec__strdup(desc->params[i].name);
    if (!name) {
      sparsec_destroy(m);
      return sparsec__fail(SPARSEC_ERR_NOMEM, "create: cannot allocate the model");
    }
    p->desc.name = name;
    rc = sparsec__param_setup(m, p, seed);
    if (rc != SPARSEC_OK) {
      sparsec_destroy(m);
      return rc;
    }
  }
  rc = sparsec__masks_init(m, seed);
  if (rc != SPARSEC_OK) {
    sparsec_destroy(m);
    return rc;
  }
  *out = m;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_create_on(const sparsec_model_desc *desc,
                                  const sparsec_device_kernels *cuda, uint64_t seed,
                                  const char *device, sparsec_model **out) {
  sparsec__clear_error();
  if (!out || !device)
    return sparsec__fail(SPARSEC_ERR_NULL, "create: %s is NULL", out ? "device" : "out");
  *out = NULL;
  const int on_cuda = strcmp(device, "cuda") == 0;
  if (!on_cuda && strcmp(device, "cpu") != 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "create: unknown device '%s' (expected cpu or cuda)", device);
  sparsec_model *m;
  int rc = sparsec_create(desc, seed, &m);
  if (rc != SPARSEC_OK || !on_cuda) {
    *out = rc == SPARSEC_OK ? m : NULL;
    return rc;
  }
  rc = sparsec__device_attach(m, cuda);
  if (rc != SPARSEC_OK) {
    char why[512];
    snprintf(why, sizeof(why), "%s", sparsec_last_error());
    sparsec_destroy(m);
    return sparsec__fail(rc, "%s", why);
  }
  *out = m;
  return SPARSEC_OK;
}

SPARSEC_API void sparsec_destroy(sparsec_model *m) {
  if (!m)
    return;
  sparsec__device_free(m);
  if (m->params) {
    for (int32_t i = 0; i < m->num_params; ++i) {
      sparsec__param *p = &m->params[i];
      free(sparsec__unconst(p->desc.name));
      free(p->values);
      free(p->positions);
      free(p->coordinates);
      free(p->grad);
      free(p->grad_ids);
      sparsec__state_free(p);
      sparsec__dynamic_free(p);
      sparsec__coo_free(&p->coo);
      sparsec__emb_free(p);
    }
  }
  if (m->inputs)
    for (int32_t i = 0; i < m->num_inputs; ++i)
      free(sparsec__unconst(m->inputs[i].name));
  free(m->params);
  free(m->inputs);
  free(m->id_bounds);
  free(m->name);
  free(m);
}

int32_t sparsec__find_param(const sparsec_model *m, const char *name) {
  for (int32_t i = 0; i < m->num_params; ++i)
    if (strcmp(m->params[i].desc.name, name) == 0)
      return i;
  return -1;
}

/* Looks up `name` for the accessor `what`; returns a status. */
static int sparsec__lookup(const sparsec_model *m, const char *what, const char *name,
                           int32_t *index) {
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NULL, "%s: model is NULL", what);
  if (!name)
    return sparsec__fail(SPARSEC_ERR_NULL, "%s: name is NULL", what);
  *index = sparsec__find_param(m, name);
  if (*index < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "%s: model '%s' has no parameter '%s'", what,
                         m->name, name);
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_set_lr(sparsec_model *m, double lr) {
  sparsec__clear_error();
  if (!m)
    return sparsec__fail(SPARSEC_ERR_NULL, "set_lr: model is NULL");
  if (!isfinite(lr) || lr < 0)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG,
                         "set_lr: learning rate must be finite and >= 0, got %g", lr);
  m->lr = lr;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_get_lr(const sparsec_model *m, double *lr) {
  sparsec__clear_error();
  if (!m || !lr)
    return sparsec__fail(SPARSEC_ERR_NULL, "get_lr: NULL argument");
  *lr = m->lr;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_step_count(const sparsec_model *m, int64_t *steps) {
  sparsec__clear_error();
  if (!m || !steps)
    return sparsec__fail(SPARSEC_ERR_NULL, "step_count: NULL argument");
  *steps = m->step;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_num_params(const sparsec_model *m, int32_t *count) {
  sparsec__clear_error();
  if (!m || !count)
    return sparsec__fail(SPARSEC_ERR_NULL, "num_params: NULL argument");
  *count = m->num_params;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_param_info_at(const sparsec_model *m, int32_t index,
                                      sparsec_param_info *info) {
  sparsec__clear_error();
  if (!m || !info)
    return sparsec__fail(SPARSEC_ERR_NULL, "param_info_at: NULL argument");
  if (index < 0 || index >= m->num_params)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "param_info_at: index %d outside [0, %d)", index,
                         m->num_params);
  const sparsec__param *p = &m->params[index];
  memset(info, 0, sizeof(*info));
  info->name = p->desc.name;
  info->layout = p->desc.layout;
  info->rank = p->desc.rank;
  memcpy(info->dims, p->desc.dims, sizeof(info->dims));
  info->nnz = p->nnz;
  info->sparsity = p->numel > 0 ? 1.0 - (double)p->nnz / (double)p->numel : 0.0;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_param_index(const sparsec_model *m, const char *name, int32_t *index) {
  sparsec__clear_error();
  if (!index)
    return sparsec__fail(SPARSEC_ERR_NULL, "param_index: index is NULL");
  return sparsec__lookup(m, "param_index", name, index);
}

SPARSEC_API int sparsec_param_values(sparsec_model *m, const char *name, float **values,
                                     int64_t *count) {
  sparsec__clear_error();
  int32_t i;
  if (!values || !count)
    return sparsec__fail(SPARSEC_ERR_NULL, "param_values: NULL output pointer");
  int rc = sparsec__lookup(m, "param_values", name, &i);
  if (rc == SPARSEC_OK)
    rc = sparsec__device_host_sync(m, SPARSEC_DEV_VALUES);
  if (rc != SPARSEC_OK)
    return rc;
  sparsec__device_host_written(m, SPARSEC_DEV_VALUES); /* the caller may write through it */
  *values = m->params[i].values;
  *count = m->params[i].nnz;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_param_csr(sparsec_model *m, const char *name, const int32_t **positions,
                                  const int32_t **coordinates) {
  sparsec__clear_error();
  int32_t i;
  if (!positions || !coordinates)
    return sparsec__fail(SPARSEC_ERR_NULL, "param_csr: NULL output pointer");
  int rc = sparsec__lookup(m, "param_csr", name, &i);
  if (rc != SPARSEC_OK)
    return rc;
  if (m->params[i].desc.layout != SPARSEC_LAYOUT_CSR)
    return sparsec__fail(SPARSEC_ERR_INVALID_ARG, "param_csr: parameter '%s' is not CSR", name);
  *positions = m->params[i].positions;
  *coordinates = m->params[i].coordinates;
  return SPARSEC_OK;
}

SPARSEC_API int sparsec_param_grad(sparsec_model *m, const char *name, const float **grad,
                                   int64_t *count) {
  sparsec__clear_error();
  int32_t i;
  if (!grad || !count)
    return sparsec__fail(SPARSEC_ERR_NULL, "param_grad: NULL output pointer");
  int rc = sparsec__lookup(m, "param_grad", name, &i);
  if (rc == SPARSEC_OK)
    rc = sparsec__device_host_sync(m, SPARSEC_DEV_GRADS);
  if (rc != SPARSEC_OK)
    return rc;
  const sparsec__param *p = &m->params[i];
  *grad = p->grad;
  *count = p->desc.layout == SPARSEC_LAYOUT_EMBEDDING ? p->grad_rows * p->desc.dims[1] : p->nnz;
  return SPARSEC_OK;
}
