/*===- embedding.c - nn.Embedding options: padding, max_norm, freq -*- C -*-===*
 *
 * The options PyTorch's nn.Embedding / nn.EmbeddingBag add around the
 * lookup (torch 1.13 semantics; docs/optimizers.md has the math):
 *
 *  - padding_idx: the row is zeroed after the initialiser has filled the
 *    table (as nn.Embedding's reset_parameters does) and its gradient rows
 *    are dropped: zeroed here after the kernel, then skipped by every step
 *    and catch-up (optim.c, optim_sparse.c), so the optimizer never moves it.
 *  - max_norm: before a forward/train kernel reads a batch, each row its ids
 *    reference (once, however often it repeats) whose norm_type-norm
 *    exceeds max_norm is scaled by max_norm / (norm + 1e-7), in place, as
 *    torch.embedding_renorm_ does. The old rows are logged so that a call
 *    that then fails can be undone.
 *  - scale_grad_by_freq: each gradient row is divided by the number of
 *    times its id occurs in the batch (PyTorch's embedding backward).
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int sparsec__is_embedding(const sparsec__param *p) {
  return p->desc.layout == SPARSEC_LAYOUT_EMBEDDING;
}

int sparsec__emb_setup(sparsec__param *p) {
  if (!sparsec__is_embedding(p))
    return 0;
  const int64_t dim = p->desc.dims[1];
  if (p->desc.padding_idx >= 0)
    memset(p->values + (size_t)p->desc.padding_idx * (size_t)dim, 0, (size_t)dim * sizeof(float));
  if (p->desc.max_norm > 0.0 || p->desc.scale_grad_by_freq) {
    /* dims[0] <= 2^31 (validated), so the size cannot overflow. */
    p->row_count = (uint32_t *)sparsec__calloc((size_t)p->desc.dims[0], sizeof(uint32_t));
    if (!p->row_count)
      return -1;
  }
  return 0;
}

void sparsec__emb_free(sparsec__param *p) {
  free(p->row_count);
  free(p->renorm.ids);
  free(p->renorm.rows);
  p->row_count = NULL;
  memset(&p->renorm, 0, sizeof(p->renorm));
}

/*===-- max_norm --------------------------------------------------------------===*/

const void *sparsec__call_input(const sparsec_model *m, int32_t index, const void *const *inputs,
                                int with_targets) {
  int32_t k = index;
  if (!with_targets)
    for (int32_t i = 0; i < index; ++i)
      k -= m->inputs[i].is_target;
  return inputs[k];
}

int sparsec__renorms(const sparsec__param *p) {
  return sparsec__is_embedding(p) && p->desc.max_norm > 0.0;
}

int sparsec__renorm_reserve(sparsec_model *m, const char *what, int64_t batch) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__renorms(p))
      continue;
    sparsec__renorm_log *log = &p->renorm;
    int64_t rows = sparsec__input_numel(&m->inputs[p->desc.ids_input], batch);
    if (rows > p->desc.dims[0])
      rows = p->desc.dims[0]; /* each row is renormed at most once */
    if (rows <= log->cap)
      continue;
    int64_t vals;
    int32_t *ids = NULL;
    float *data = NULL;
    if (sparsec__mul_i64(rows, p->desc.dims[1], &vals) == 0 &&
        (uint64_t)vals <= SIZE_MAX / sizeof(float)) {
      ids = (int32_t *)realloc(log->ids, (size_t)rows * sizeof(int32_t));
      if (ids)
        log->ids = ids;
      data = (float *)realloc(log->rows, (size_t)(vals > 0 ? vals : 1) * sizeof(float));
      if (data)
        log->rows = data;
    }
    if (!ids || !data)
      return sparsec__fail(SPARSEC_ERR_NOMEM,
                           "%s: cannot allocate the max_norm log of embedding '%s' (%lld rows)",
                           what, p->desc.name, (long long)rows);
    log->cap = rows;
  }
  return SPARSEC_OK;
}

void sparsec__renorm_batch(sparsec_model *m, int64_t batch, const void *const *inputs,
                           int with_targets) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__renorms(p))
      continue;
    sparsec__renorm_log *log = &p->renorm;
    const sparsec_input_desc *in = &m->inputs[p->desc.ids_input];
    const void *ids = sparsec__call_input(m, p->desc.ids_input, inputs, with_targets);
    const int64_t n = sparsec__input_numel(in, batch), dim = p->desc.dims[1];
    const double max_norm = p->desc.max_norm;
    log->n = 0;
    for (int64_t e = 0; e < n; ++e) {
      const int64_t r = sparsec__id_at(in, ids, e);
      if (p->row_count[r])
        continue; /* a repeated id: renormed once */
      p->row_count[r] = 1;
      float *row = p->values + (size_t)r * (size_t)dim;
      const float norm = sparsec__row_norm(row, dim, p->desc.norm_type);
      if (!((double)norm > max_norm))
        continue;
      log->ids[log->n] = (int32_t)r;
      memcpy(log->rows + (size_t)log->n * (size_t)dim, row, (size_t)dim * sizeof(float));
      ++log->n;
      const float scale = sparsec__renorm_scale(norm, max_norm);
      for (int64_t c = 0; c < dim; ++c)
        row[c] = row[c] * scale;
    }
    for (int64_t e = 0; e < n; ++e)
      p->row_count[sparsec__id_at(in, ids, e)] = 0;
  }
}

void sparsec__renorm_undo(sparsec_model *m) {
  for (int32_t i = 0; i < m->num_params; ++i) {
    sparsec__param *p = &m->params[i];
    if (!sparsec__renorms(p))
      continue;
    const size_t dim = (size_t)p->desc.dims[1];
    for (int64_t j = 0; j < p->renorm.n; ++j)
      memcpy(p->values + (size_t)p->renorm.ids[j] * dim, p->renorm.rows + (size_t)j * dim,
             dim * sizeof(float));
    p->renorm.n = 0;
  }
}

/*===-- Gradient rows ---------------------------------------------------------===*/

void sparsec__emb_grad_prepare(sparsec__param *p) {
  if (!sparsec__is_embedding(p))
    return;
  const int64_t n = p->grad_rows, dim = p->desc.dims[1], pad = p->desc.padding_idx;
  const int32_t *ids = p->grad_ids;
  if (pad >= 0)
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] == pad)
        memset(p->grad + (size_t)i * (size_t)dim, 0, (size_t)dim * sizeof(float));
  if (!p->desc.scale_grad_by_freq)
    return;
  for (int64_t i = 0; i < n; ++i)
    ++p->row_count[ids[i]];
  /* PyTorch adds grad[i] * (1.0 / count) with the factor cast to float. */
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t count = p->row_count[ids[i]]; /* <= the ids: < 2^32 */
    if (count == 1)
      continue;
    const float scale = (float)(1.0 / (double)count);
    float *row = p->grad + (size_t)i * (size_t)dim;
    for (int64_t c = 0; c < dim; ++c)
      row[c] = row[c] * scale;
  }
  for (int64_t i = 0; i < n; ++i)
    p->row_count[ids[i]] = 0;
}
