/*===- fuzz_model.c - Hand-written model of the checkpoint fuzzer -------===*
 *
 * See fuzz_model.h. The kernels compute nothing meaningful: they fill the
 * output and every gradient buffer with finite values derived from the
 * inputs and the parameters, so that train steps move every parameter and
 * every optimizer state.
 *===----------------------------------------------------------------------===*/
#include "fuzz_model.h"

#include "checkpoint.h" /* runtime/src: sparsec__ck_build, the model layout */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 4, OUT = 2, SP_ROWS = 3, SP_COLS = 5, SP_NNZ = 6, EMB_ROWS = 7, EMB_DIM = 3, K = 2 };

/* forward bufs: x, ids, fc.weight, fc.bias, sp.pos, sp.crd, sp.values,
 * emb.weight, out. */
static int fm_forward(void *const *bufs, int64_t batch) {
  const float *x = (const float *)bufs[0];
  const int64_t *ids = (const int64_t *)bufs[1];
  const float *w = (const float *)bufs[2], *bias = (const float *)bufs[3];
  const int32_t *pos = (const int32_t *)bufs[4], *crd = (const int32_t *)bufs[5];
  const float *spv = (const float *)bufs[6], *emb = (const float *)bufs[7];
  float *out = (float *)bufs[8];
  for (int64_t b = 0; b < batch; ++b)
    for (int o = 0; o < OUT; ++o) {
      float s = bias[o];
      for (int i = 0; i < IN; ++i)
        s += w[o * IN + i] * x[b * IN + i];
      for (int32_t e = pos[o]; e < pos[o + 1]; ++e) /* rows 0, 1 of sp */
        s += spv[e] * x[b * IN + crd[e] % IN];
      for (int k = 0; k < K; ++k)
        s += emb[ids[b * K + k] * EMB_DIM + o];
      out[b * OUT + o] = s;
    }
  return 0;
}

/* train bufs: x, ids, y, fc.weight, fc.bias, sp.pos, sp.crd, sp.values,
 * emb.weight, grad fc.weight [8], grad fc.bias [2], grad sp [nnz], grad emb
 * [batch * K * dim], float *loss. */
static int fm_train_kernel(void *const *bufs, int64_t batch) {
  const float *x = (const float *)bufs[0];
  const float *y = (const float *)bufs[2];
  const float *w = (const float *)bufs[3];
  float *gw = (float *)bufs[9], *gb = (float *)bufs[10], *gsp = (float *)bufs[11];
  float *gemb = (float *)bufs[12];
  float *loss = (float *)bufs[13];
  double l = 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int i = 0; i < OUT * IN; ++i)
      gw[i] += 0.01f * (x[b * IN + i % IN] - y[b * OUT + i % OUT]) + 0.001f * w[i];
    for (int o = 0; o < OUT; ++o) {
      gb[o] += 0.02f * y[b * OUT + o];
      l += (double)y[b * OUT + o] * y[b * OUT + o];
    }
    for (int e = 0; e < SP_NNZ; ++e)
      gsp[e] += 0.03f * x[b * IN + e % IN];
    for (int k = 0; k < K; ++k)
      for (int d = 0; d < EMB_DIM; ++d)
        gemb[(b * K + k) * EMB_DIM + d] = 0.05f * x[b * IN + (k + d) % IN];
  }
  *loss = (float)(l / (double)batch);
  return 0;
}

static const sparsec_input_desc fm_inputs[3] = {
    {.name = "x", .dtype = SPARSEC_F32, .rank = 2, .dims = {-1, IN}},
    {.name = "ids", .dtype = SPARSEC_I64, .rank = 2, .dims = {-1, K}, .id_bound = EMB_ROWS},
    {.name = "y", .dtype = SPARSEC_F32, .rank = 2, .dims = {-1, OUT}, .is_target = 1},
};

/* Every field by name: the descriptor grows at the end between ABI
 * versions. Non-embedding parameters leave the embedding options off. */
#define FM_NOT_EMB .padding_idx = -1, .norm_type = 2.0
static const sparsec_param_desc fm_params[4] = {
    {.name = "fc.weight", .layout = SPARSEC_LAYOUT_DENSE, .rank = 2, .dims = {OUT, IN},
     .nnz = OUT * IN, .init = SPARSEC_INIT_FAN_IN_UNIFORM, .init_a = IN, FM_NOT_EMB},
    {.name = "fc.bias", .layout = SPARSEC_LAYOUT_DENSE, .rank = 1, .dims = {OUT}, .nnz = OUT,
     .init = SPARSEC_INIT_FAN_IN_UNIFORM, .init_a = IN, FM_NOT_EMB},
    {.name = "sp.weight", .layout = SPARSEC_LAYOUT_CSR, .rank = 2, .dims = {SP_ROWS, SP_COLS},
     .nnz = SP_NNZ, .init = SPARSEC_INIT_UNIFORM, .init_a = 0.5, FM_NOT_EMB},
    /* padding row 5, frequency-scaled gradients, max-norm renormalisation. */
    {.name = "emb.weight", .layout = SPARSEC_LAYOUT_EMBEDDING, .rank = 2,
     .dims = {EMB_ROWS, EMB_DIM}, .nnz = EMB_ROWS * EMB_DIM, .init = SPARSEC_INIT_NORMAL,
     .init_a = 1.0, .ids_input = 1, .padding_idx = 5, .max_norm = 2.0, .norm_type = 2.0,
     .scale_grad_by_freq = 1},
};

static sparsec_optimizer_desc fm_optimizer(int variant) {
  sparsec_optimizer_desc o;
  memset(&o, 0, sizeof(o));
  switch (variant) {
  case 0: /* SGD, Nesterov momentum, lazy rows: momentum_buffer + momentum_rows */
    o.kind = SPARSEC_OPT_SGD;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.nesterov = 1;
    o.weight_decay = 0.01;
    o.sparse_mode = SPARSEC_SPARSE_LAZY;
    break;
  case 1: /* AMSGrad, catch-up rows, step schedule with warm-up: 3 moments + last_step */
    o.kind = SPARSEC_OPT_ADAM;
    o.lr = 0.01;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.amsgrad = 1;
    o.sparse_mode = SPARSEC_SPARSE_CATCHUP;
    o.schedule = SPARSEC_SCHED_STEP;
    o.step_size = 2;
    o.gamma = 0.5;
    o.warmup_steps = 1;
    break;
  case 2: /* row-wise Adagrad: one sum per row, clipping */
    o.kind = SPARSEC_OPT_ROWWISE_ADAGRAD;
    o.lr = 0.1;
    o.eps = 1e-10;
    o.initial_accumulator_value = 0.1;
    o.lr_decay = 0.01;
    o.max_grad_norm = 1.0;
    break;
  default: /* centered RMSprop with momentum, catch-up rows, cosine schedule */
    o.kind = SPARSEC_OPT_RMSPROP;
    o.lr = 0.01;
    o.alpha = 0.99;
    o.eps = 1e-8;
    o.momentum = 0.5;
    o.centered = 1;
    o.sparse_mode = SPARSEC_SPARSE_CATCHUP;
    o.schedule = SPARSEC_SCHED_COSINE;
    o.t_max = 10;
    o.eta_min = 0.001;
    break;
  }
  return o;
}

int fm_create(int variant, uint64_t seed, sparsec_model **out) {
  sparsec_model_desc d;
  memset(&d, 0, sizeof(d));
  d.abi_version = SPARSEC_ABI_VERSION;
  d.name = FM_NAME;
  d.num_inputs = 3;
  d.inputs = fm_inputs;
  d.num_params = 4;
  d.params = fm_params;
  d.output_rank = 2;
  d.output_dims[0] = -1;
  d.output_dims[1] = OUT;
  d.optimizer = fm_optimizer(variant);
  d.forward = fm_forward;
  d.train = fm_train_kernel;
  return sparsec_create(&d, seed, out);
}

int fm_train(sparsec_model *m, int steps, uint64_t salt) {
  enum { B = 3 };
  float x[B * IN], y[B * OUT];
  int64_t ids[B * K];
  for (int s = 0; s < steps; ++s) {
    uint64_t h = salt * 0x9E3779B97F4A7C15ull + (uint64_t)s;
    for (int i = 0; i < B * IN; ++i)
      x[i] = (float)((int)((h >> (i % 32)) % 17) - 8) / 8.0f;
    for (int i = 0; i < B * OUT; ++i)
      y[i] = (float)((int)((h >> ((i + 7) % 32)) % 9) - 4) / 4.0f;
    /* Touch a varying subset of the rows (catch-up and lazy paths). */
    for (int i = 0; i < B * K; ++i)
      ids[i] = (int64_t)((h >> (i * 3)) % (EMB_ROWS - 2)) + (s % 3);
    const void *inputs[3] = {x, ids, y};
    float loss;
    int rc = sparsec_train_step(m, B, inputs, &loss);
    if (rc != SPARSEC_OK)
      return rc;
  }
  return SPARSEC_OK;
}

static uint64_t fm_fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = (const uint8_t *)p;
  for (size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t fm_state_hash(const sparsec_model *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fm_fnv(h, &m->step, sizeof(m->step));
  h = fm_fnv(h, &m->lr, sizeof(m->lr));
  sparsec__ck_list l;
  if (sparsec__ck_build(m, &l) != 0) {
    fprintf(stderr, "fm_state_hash: out of memory\n");
    abort();
  }
  for (int32_t i = 0; i < l.n; ++i) {
    const void *data = sparsec__ck_data(m, &l.e[i]);
    h = fm_fnv(h, l.e[i].name, strlen(l.e[i].name));
    if (data)
      h = fm_fnv(h, data, (size_t)l.e[i].elems * l.e[i].elem_size);
  }
  sparsec__ck_free(&l);
  for (int32_t i = 0; i < m->num_params; ++i)
    h = fm_fnv(h, &m->params[i].mom_init, sizeof(m->params[i].mom_init));
  return h;
}

const char *fm_check_invariants(const sparsec_model *m) {
  static char why[256];
  if (!(isfinite(m->lr) && m->lr >= 0)) {
    snprintf(why, sizeof(why), "lr is %g after a successful load", m->lr);
    return why;
  }
  if (m->step < 0) {
    snprintf(why, sizeof(why), "step is %lld after a successful load", (long long)m->step);
    return why;
  }
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_CSR)
      continue;
    const int64_t rows = p->desc.dims[0], cols = p->desc.dims[1];
    if (p->positions[0] != 0 || p->positions[rows] != p->nnz) {
      snprintf(why, sizeof(why), "%s: positions run from %d to %d, nnz is %lld", p->desc.name,
               p->positions[0], p->positions[rows], (long long)p->nnz);
      return why;
    }
    for (int64_t r = 0; r < rows; ++r) {
      if (p->positions[r] > p->positions[r + 1]) {
        snprintf(why, sizeof(why), "%s: positions decrease at row %lld", p->desc.name,
                 (long long)r);
        return why;
      }
      for (int32_t e = p->positions[r]; e < p->positions[r + 1]; ++e) {
        if (p->coordinates[e] < 0 || p->coordinates[e] >= cols ||
            (e > p->positions[r] && p->coordinates[e] <= p->coordinates[e - 1])) {
          snprintf(why, sizeof(why), "%s: bad column %d at entry %d of row %lld", p->desc.name,
                   p->coordinates[e], e, (long long)r);
          return why;
        }
      }
    }
  }
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->mom_row_init)
      for (int64_t r = 0; r < p->desc.dims[0]; ++r)
        if (p->mom_row_init[r] > 1) {
          snprintf(why, sizeof(why), "%s: momentum row flag %d", p->desc.name,
                   p->mom_row_init[r]);
          return why;
        }
  }
  return NULL;
}

uint32_t fm_crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

/* Overwrites the 8 characters after the first `key` in the header `hdr` of
 * `hlen` bytes (if any, with room for them) with `crc` in hex. */
static void fm_patch_hex(uint8_t *hdr, uint64_t hlen, const char *key, uint32_t crc) {
  const size_t klen = strlen(key);
  for (size_t i = 0; i + klen + 8 <= hlen; ++i) {
    if (memcmp(hdr + i, key, klen) != 0)
      continue;
    char hex[9];
    snprintf(hex, sizeof(hex), "%08x", crc);
    memcpy(hdr + i + klen, hex, 8);
    return;
  }
}

/* The metadata CRC of the header `hdr` (sparsec__ck_meta_crc); -1 when the
 * header does not parse or has no metadata object of strings. */
static int fm_meta_crc(const uint8_t *hdr, uint64_t hlen, uint32_t *crc) {
  sparsec__json_doc doc;
  char err[64];
  memset(&doc, 0, sizeof(doc));
  if (sparsec__json_parse((const char *)hdr, (size_t)hlen, &doc, err, sizeof(err)) != 0)
    return -1;
  int rc = -1;
  const sparsec__json_node *md =
      doc.nodes[0].kind == SPARSEC_JSON_OBJECT ? sparsec__json_get(&doc, &doc.nodes[0],
                                                                   "__metadata__")
                                               : NULL;
  sparsec__ck_kv *kv = md && md->kind == SPARSEC_JSON_OBJECT
                           ? (sparsec__ck_kv *)calloc((size_t)md->count + 1, sizeof(*kv))
                           : NULL;
  if (kv) {
    size_t k = 0;
    rc = 0;
    for (int64_t c = md->first; c >= 0 && rc == 0; c = doc.nodes[c].next, ++k) {
      const sparsec__json_node *e = &doc.nodes[c];
      kv[k] = (sparsec__ck_kv){e->key, e->key_len, e->str, e->len};
      rc = e->kind == SPARSEC_JSON_STRING ? 0 : -1;
    }
    if (rc == 0)
      rc = sparsec__ck_meta_crc(kv, k, crc);
  }
  free(kv);
  sparsec__json_free(&doc);
  return rc;
}

void fm_fix_crc(uint8_t *buf, size_t n) {
  if (n < 8)
    return;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i)
    hlen = (hlen << 8) | buf[i];
  if (hlen > n - 8)
    return;
  uint8_t *hdr = buf + 8;
  fm_patch_hex(hdr, hlen, "\"crc32\":\"", fm_crc32(buf + 8 + hlen, n - 8 - (size_t)hlen));
  /* After crc32, which the metadata CRC does not cover. */
  uint32_t meta_crc;
  if (fm_meta_crc(hdr, hlen, &meta_crc) == 0)
    fm_patch_hex(hdr, hlen, "\"" SPARSEC_CK_META_CRC_KEY "\":\"", meta_crc);
}
