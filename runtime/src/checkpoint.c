/*===- checkpoint.c - safetensors checkpoints: tensor list and save -*- C -*-===*
 *
 * File layout (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header padded with spaces so the data
 * section starts 8-byte aligned, then the tensors' raw little-endian bytes,
 * contiguous in header order. Tensor names:
 *
 *   NAME                                 F32 dims      DENSE / EMBEDDING values
 *   NAME.crow_indices                    I32 [rows+1]  CSR positions
 *   NAME.col_indices                     I32 [nnz]     CSR coordinates
 *   NAME.values                          F32 [nnz]     CSR values
 *   optimizer.NAME.<state>               F32           as the values: PyTorch's
 *                                                      state names (momentum_buffer,
 *                                                      sum, square_avg, grad_avg,
 *                                                      exp_avg, exp_avg_sq,
 *                                                      max_exp_avg_sq); row-wise
 *                                                      Adagrad's sum is [rows]
 *   optimizer.NAME.momentum_rows         U8  [rows]    EMBEDDING: rows whose SGD
 *                                                      buffer is set (lazy/catch-up)
 *   optimizer.NAME.last_step             I64 [rows]    EMBEDDING catch-up: the step
 *                                                      each row is up to date with
 *
 * I64 tensors come first and U8 last, so every tensor is aligned to its
 * element size. SGD's momentum is written once set; the other optimizer
 * tensors always. `__metadata__` = {format: "sparsec", model, abi, step, lr,
 * crc32, optimizer, sparse_mode, "NAME.size": "[rows,cols]" per CSR
 * parameter, metadata_crc32}: crc32 (8 lower-case hex digits) covers the
 * whole data section, metadata_crc32 every other metadata entry
 * (sparsec__ck_meta_crc). Saving writes PATH.tmp.XXXXXX in
 * the same directory, fsyncs it, renames it over PATH and fsyncs the
 * directory; any failure removes the temporary and leaves PATH untouched.
 * Loading (checkpoint_load.c) reads the whole file and validates every
 * byte that matters (sizes, JSON, names, dtypes, shapes, offsets, checksum,
 * CSR structure) before copying anything into the model.
 *===----------------------------------------------------------------------===*/
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sparsec checkpoints are written in host byte order: little-endian hosts only"
#endif

void sparsec__ck_free(sparsec__ck_list *l) {
  for (int32_t i = 0; i < l->n; ++i)
    free(l->e[i].name);
  free(l->e);
  l->e = NULL;
  l->n = 0;
}

char *sparsec__concat(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *s = (char *)malloc(la + lb + lc + 1);
  if (s) {
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
  }
  return s;
}

static int sparsec__ck_add(sparsec__ck_list *l, int32_t param, int kind, char *name,
                           const char *dtype, int32_t rank, const int64_t *shape, int group) {
  if (!name)
    return -1;
  sparsec__ck_entry *e = &l->e[l->n++];
  memset(e, 0, sizeof(*e));
  e->name = name;
  e->dtype = dtype;
  e->elem_size = dtype[0] == 'U' ? 1 : dtype[1] == '6' ? 8 : 4;
  e->rank = rank;
  e->elems = 1;
  for (int32_t k = 0; k < rank; ++k) {
    e->shape[k] = shape[k];
    e->elems *= shape[k];
  }
  e->param = param;
  e->kind = kind;
  e->group = group;
  e->kept = 1;
  return 0;
}

/* Adds optimizer tensor "optimizer.NAME.<what>" of parameter `i`. */
static int sparsec__ck_add_opt(const sparsec_model *m, sparsec__ck_list *l, int32_t i, int kind,
                               int state, const char *what, const char *dtype, int32_t rank,
                               const int64_t *shape) {
  const sparsec__param *p = &m->params[i];
  char *tail = sparsec__concat(".", what, "");
  char *name = tail ? sparsec__concat("optimizer.", p->desc.name, tail) : NULL;
  free(tail);
  const int sgd_mom =
      m->opt.kind == SPARSEC_OPT_SGD &&
      (kind == SPARSEC_CK_MOMROWS || (kind == SPARSEC_CK_STATE && state == SPARSEC_ST_MOMENTUM));
  const int group = sgd_mom                       ? SPARSEC_CK_SGD_MOMENTUM
                    : kind == SPARSEC_CK_LASTSTEP ? SPARSEC_CK_ROW_STEPS
                                                  : SPARSEC_CK_OPT_STATE;
  if (sparsec__ck_add(l, i, kind, name, dtype, rank, shape, group) != 0)
    return -1;
  sparsec__ck_entry *e = &l->e[l->n - 1];
  e->state = state;
  e->kept = sparsec__ck_data(m, e) != NULL;
  return 0;
}

/* Every tensor a checkpoint of `m` may hold: I64 first, U8 last. */
int sparsec__ck_build(const sparsec_model *m, sparsec__ck_list *l) {
  l->n = 0;
  l->e = (sparsec__ck_entry *)sparsec__calloc((size_t)m->num_params * (SPARSEC_NSTATE + 5),
                                              sizeof(*l->e));
  if (!l->e)
    return -1;
  for (int pass = 0; pass < 3; ++pass) {
    for (int32_t i = 0; i < m->num_params; ++i) {
      const sparsec__param *p = &m->params[i];
      const char *name = p->desc.name;
      const int emb = p->desc.layout == SPARSEC_LAYOUT_EMBEDDING;
      const int csr = p->desc.layout == SPARSEC_LAYOUT_CSR;
      int64_t nnz[1] = {p->nnz}, crow[1] = {p->desc.dims[0] + 1}, rows[1] = {p->desc.dims[0]};
      int64_t state_rows[1] = {p->rows};
      int rc = 0;
      if (pass == 0) {
        if (emb)
          rc = sparsec__ck_add_opt(m, l, i, SPARSEC_CK_LASTSTEP, 0, "last_step", "I64", 1, rows);
      } else if (pass == 2) {
        if (emb)
          rc = sparsec__ck_add_opt(m, l, i, SPARSEC_CK_MOMROWS, 0, "momentum_rows", "U8", 1, rows);
      } else {
        if (csr)
          rc = sparsec__ck_add(l, i, SPARSEC_CK_CROW, sparsec__concat(name, ".crow_indices", ""),
                               "I32", 1, crow, SPARSEC_CK_REQUIRED) |
               sparsec__ck_add(l, i, SPARSEC_CK_COL, sparsec__concat(name, ".col_indices", ""),
                               "I32", 1, nnz, SPARSEC_CK_REQUIRED) |
               sparsec__ck_add(l, i, SPARSEC_CK_VALUES, sparsec__concat(name, ".values", ""), "F32",
                               1, nnz, SPARSEC_CK_REQUIRED);
        else
          rc = sparsec__ck_add(l, i, SPARSEC_CK_VALUES, sparsec__concat(name, "", ""), "F32",
                               p->desc.rank, p->desc.dims, SPARSEC_CK_REQUIRED);
        /* State: shaped as the values (CSR: [nnz]); row-wise sums [rows]. */
        for (int k = 0; k < SPARSEC_NSTATE && rc == 0; ++k) {
          const int per_row = k == SPARSEC_ST_SUM && m->opt.kind == SPARSEC_OPT_ROWWISE_ADAGRAD;
          const int32_t rank = per_row || csr ? 1 : p->desc.rank;
          const int64_t *shape = per_row ? state_rows : csr ? nnz : p->desc.dims;
          rc = sparsec__ck_add_opt(m, l, i, SPARSEC_CK_STATE, k, sparsec__state_name(k), "F32",
                                   rank, shape);
        }
      }
      if (rc != 0) {
        sparsec__ck_free(l);
        return -1;
      }
    }
  }
  return 0;
}

/* The model storage an entry reads from / writes to (NULL: none). */
void *sparsec__ck_data(const sparsec_model *m, const sparsec__ck_entry *e) {
  const sparsec__param *p = &m->params[e->param];
  switch (e->kind) {
  case SPARSEC_CK_VALUES:
    return p->values;
  case SPARSEC_CK_CROW:
    return p->positions;
  case SPARSEC_CK_COL:
    return p->coordinates;
  case SPARSEC_CK_STATE:
    return p->state[e->state];
  case SPARSEC_CK_MOMROWS:
    return p->mom_row_init;
  default:
    return p->last_step;
  }
}

/* Whether a save writes the entry: required tensors, every optimizer
 * tensor the model keeps, except SGD's momentum (buffer and row flags),
 * which PyTorch only creates at the first step. */
static int sparsec__ck_saved(const sparsec_model *m, const sparsec__ck_entry *e) {
  const sparsec__param *p = &m->params[e->param];
  if (e->group == SPARSEC_CK_REQUIRED)
    return 1;
  if (!e->kept)
    return 0;
  if (e->group != SPARSEC_CK_SGD_MOMENTUM)
    return 1;
  if (!p->mom_row_init)
    return p->mom_init;
  for (int64_t r = 0; r < p->desc.dims[0]; ++r)
    if (p->mom_row_init[r])
      return 1;
  return 0;
}

/*===-- Metadata checksum -----------------------------------------------------===*/

static int sparsec__kv_cmp(const void *a, const void *b) {
  const sparsec__ck_kv *x = *(const sparsec__ck_kv *const *)a;
  const sparsec__ck_kv *y = *(const sparsec__ck_kv *const *)b;
  const size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  const int c = n ? memcmp(x->key, y->key, n) : 0;
  if (c != 0)
    return c;
  return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static int sparsec__kv_is(const sparsec__ck_kv *e, const char *key) {
  return e->key_len == strlen(key) && memcmp(e->key, key, e->key_len) == 0;
}

int sparsec__ck_meta_crc(const sparsec__ck_kv *kv, size_t n, uint32_t *crc) {
  /* Sorted through pointers (a hostile header may hold many entries). */
  const sparsec__ck_kv **order =
      (const sparsec__ck_kv **)sparsec__calloc(n ? n : 1, sizeof(*order));
  if (!order)
    return -1;
  for (size_t i = 0; i < n; ++i)
    order[i] = &kv[i];
  qsort(order, n, sizeof(*order), sparsec__kv_cmp);
  static const char nul = '\0';
  uint32_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    const sparsec__ck_kv *e = order[i];
    if (sparsec__kv_is(e, "crc32") || sparsec__kv_is(e, SPARSEC_CK_META_CRC_KEY))
      continue;
    c = sparsec__crc32(c, e->key, e->key_len);
    c = sparsec__crc32(c, &nul, 1);
    c = sparsec__crc32(c, e->val, e->val_len);
    c = sparsec__crc32(c, &nul, 1);
  }
  free(order);
  *crc = c;
  return 0;
}

/*===-- Header text -----------------------------------------------------------===*/

typedef struct sparsec__sbuf {
  char *data;
  size_t len, cap;
  int failed;
} sparsec__sbuf;

static void sparsec__sb_putn(sparsec__sbuf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = (char *)realloc(b->data, cap);
    if (!d) {
      b->failed = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void sparsec__sb_printf(sparsec__sbuf *b, const char *fmt, ...) SPARSEC_PRINTF(2, 3);
static void sparsec__sb_printf(sparsec__sbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    b->failed = 1;
    return;
  }
  sparsec__sb_putn(b, tmp, (size_t)n);
}

static void sparsec__sb_json_string(sparsec__sbuf *b, const char *s) {
  sparsec__sb_putn(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      sparsec__sb_putn(b, esc, 2);
    } else if (*p < 0x20) {
      sparsec__sb_printf(b, "\\u%04x", *p);
    } else {
      sparsec__sb_putn(b, (const char *)p, 1);
    }
  }
  sparsec__sb_putn(b, "\"", 1);
}

/*===-- Save ------------------------------------------------------------------===*/

static int sparsec__write_all(int fd, const void *data, size_t len) {
  const char *p = (const char *)data;
  while (len > 0) {
    size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

const char *sparsec__errstr(int err, char *buf, size_t n) {
  if (strerror_r(err, buf, n) != 0)
    snprintf(buf, n, "errno %d", err);
  return buf;
}

/* Fsyncs the directory holding `path` (best effort: some file systems
 * refuse; the rename has happened by then). */
static void sparsec__sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash)
    dir = sparsec__concat(".", "", "");
  else if (slash == path)
    dir = sparsec__concat("/", "", "");
  else {
    dir = (char *)malloc((size_t)(slash - path) + 1);
    if (dir) {
      memcpy(dir, path, (size_t)(slash - path));
      dir[slash - path] = '\0';
    }
  }
  if (!dir)
    return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

static void sparsec__kv_set(sparsec__ck_kv *e, const char *key, const char *val) {
  e->key = key;
  e->key_len = strlen(key);
  e->val = val;
  e->val_len = strlen(val);
}

/* Appends `{"__metadata__":{` and the metadata entries (every value a
 * string, metadata_crc32 last; sparsec__build_entries closes the object) to
 * `h`; `crc` is the data section's CRC32. Returns 0 or -1. */
static int sparsec__build_metadata(const sparsec_model *m, uint32_t crc, sparsec__sbuf *h) {
  static const char *const kinds[] = {"sgd",     "adagrad", "rowwise_adagrad",
                                      "rmsprop", "adam",    "adamw"};
  static const char *const modes[] = {"lazy", "catchup", "dense"};
  char abi[16], step[32], lr[40], crc_hex[16];
  snprintf(abi, sizeof(abi), "%d", SPARSEC_ABI_VERSION);
  snprintf(step, sizeof(step), "%lld", (long long)m->step);
  snprintf(lr, sizeof(lr), "%.17g", m->lr);
  snprintf(crc_hex, sizeof(crc_hex), "%08x", crc);
  size_t ncsr = 0;
  for (int32_t i = 0; i < m->num_params; ++i)
    ncsr += m->params[i].desc.layout == SPARSEC_LAYOUT_CSR;
  /* 8 fixed entries, then "NAME.size" per CSR parameter (keys and values
   * malloc'd in `owned`). */
  sparsec__ck_kv *kv = (sparsec__ck_kv *)sparsec__calloc(8 + ncsr, sizeof(*kv));
  char **owned = (char **)sparsec__calloc(2 * ncsr + 1, sizeof(*owned));
  int rc = kv && owned ? 0 : -1;
  size_t n = 0;
  if (rc == 0) {
    sparsec__kv_set(&kv[n++], "format", "sparsec");
    sparsec__kv_set(&kv[n++], "model", m->name);
    sparsec__kv_set(&kv[n++], "abi", abi);
    sparsec__kv_set(&kv[n++], "step", step);
    sparsec__kv_set(&kv[n++], "lr", lr);
    sparsec__kv_set(&kv[n++], "crc32", crc_hex);
    /* Informational (not checked on load, but covered by metadata_crc32). */
    sparsec__kv_set(&kv[n++], "optimizer", kinds[m->opt.kind]);
    sparsec__kv_set(&kv[n++], "sparse_mode", modes[m->opt.sparse_mode]);
  }
  /* The dense size of each CSR parameter, for torch.sparse_csr_tensor. */
  for (int32_t i = 0, j = 0; rc == 0 && i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_CSR)
      continue;
    char *key = owned[j++] = sparsec__concat(p->desc.name, ".size", "");
    char *val = owned[j++] = (char *)sparsec__malloc(48);
    if (!key || !val) {
      rc = -1;
      break;
    }
    snprintf(val, 48, "[%lld,%lld]", (long long)p->desc.dims[0], (long long)p->desc.dims[1]);
    sparsec__kv_set(&kv[n++], key, val);
  }
  uint32_t meta_crc = 0;
  if (rc == 0)
    rc = sparsec__ck_meta_crc(kv, n, &meta_crc);
  if (rc == 0) {
    sparsec__sb_putn(h, "{\"__metadata__\":{", 17);
    for (size_t i = 0; i < n; ++i) {
      if (i)
        sparsec__sb_putn(h, ",", 1);
      sparsec__sb_json_string(h, kv[i].key);
      sparsec__sb_putn(h, ":", 1);
      sparsec__sb_json_string(h, kv[i].val);
    }
    sparsec__sb_printf(h, ",\"%s\":\"%08x\"", SPARSEC_CK_META_CRC_KEY, meta_crc);
  }
  for (size_t j = 0; owned && j < 2 * ncsr; ++j)
    free(owned[j]);
  free(owned);
  free(kv);
  return rc;
}

/* Closes the metadata object, appends the tensor entries, closes the header
 * and pads it (see the file comment). Returns 0 or -1. */
static int sparsec__build_entries(const sparsec_model *m, const sparsec__ck_list *l,
                                  sparsec__sbuf *h) {
  sparsec__sb_putn(h, "}", 1);
  for (int32_t i = 0; i < l->n; ++i) {
    const sparsec__ck_entry *e = &l->e[i];
    if (!sparsec__ck_saved(m, e))
      continue;
    sparsec__sb_putn(h, ",", 1);
    sparsec__sb_json_string(h, e->name);
    sparsec__sb_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
    for (int32_t k = 0; k < e->rank; ++k)
      sparsec__sb_printf(h, k ? ",%lld" : "%lld", (long long)e->shape[k]);
    sparsec__sb_printf(h, "],\"data_offsets\":[%lld,%lld]}", (long long)e->begin,
                       (long long)e->end);
  }
  sparsec__sb_putn(h, "}", 1);
  /* Pad with spaces so the data section starts 8-byte aligned. */
  while (!h->failed && (8 + h->len) % 8 != 0)
    sparsec__sb_putn(h, " ", 1);
  return h->failed ? -1 : 0;
}

/* The JSON header of a save of `m`: sets the entries' offsets and the data
 * length, and writes the text to `h`. Returns 0 or -1 (out of memory). */
static int sparsec__build_header(const sparsec_model *m, sparsec__ck_list *l, sparsec__sbuf *h,
                                 uint64_t *data_len) {
  uint32_t crc = 0;
  uint64_t off = 0;
  for (int32_t i = 0; i < l->n; ++i) {
    sparsec__ck_entry *e = &l->e[i];
    if (!sparsec__ck_saved(m, e))
      continue;
    size_t bytes = (size_t)e->elems * e->elem_size;
    crc = sparsec__crc32(crc, sparsec__ck_data(m, e), bytes);
    e->begin = (int64_t)off;
    off += bytes;
    e->end = (int64_t)off;
  }
  *data_len = off;
  if (sparsec__build_metadata(m, crc, h) != 0)
    return -1;
  return sparsec__build_entries(m, l, h);
}

SPARSEC_API int sparsec_save(const sparsec_model *m, const char *path) {
  sparsec__clear_error();
  if (!m || !path)
    return sparsec__fail(SPARSEC_ERR_NULL, "save: %s is NULL", m ? "path" : "model");
  /* A CUDA model: the host copy first (the model's state is unchanged). */
  int src = sparsec__device_host_sync((sparsec_model *)sparsec__unconst(m), SPARSEC_DEV_ALL);
  if (src != SPARSEC_OK)
    return src;
  sparsec__ck_list l;
  sparsec__sbuf h = {NULL, 0, 0, 0};
  uint64_t data_len = 0;
  if (sparsec__ck_build(m, &l) != 0)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "save: out of memory");
  if (sparsec__build_header(m, &l, &h, &data_len) != 0) {
    sparsec__ck_free(&l);
    free(h.data);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "save: out of memory");
  }
  char *tmp = sparsec__concat(path, ".tmp.XXXXXX", "");
  if (!tmp) {
    sparsec__ck_free(&l);
    free(h.data);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "save: out of memory");
  }
  char ebuf[128];
  int rc = SPARSEC_OK;
  int fd = mkstemp(tmp);
  if (fd < 0) {
    rc = sparsec__fail(SPARSEC_ERR_IO, "save: cannot create temporary file '%s': %s", tmp,
                       sparsec__errstr(errno, ebuf, sizeof(ebuf)));
    goto done;
  }
  unsigned char len_le[8];
  for (int i = 0; i < 8; ++i)
    len_le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
  int ok = fchmod(fd, 0644) == 0 && sparsec__write_all(fd, len_le, 8) == 0 &&
           sparsec__write_all(fd, h.data, h.len) == 0;
  for (int32_t i = 0; ok && i < l.n; ++i)
    if (sparsec__ck_saved(m, &l.e[i]))
      ok = sparsec__write_all(fd, sparsec__ck_data(m, &l.e[i]),
                              (size_t)l.e[i].elems * l.e[i].elem_size) == 0;
  ok = ok && fsync(fd) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  if (!ok) {
    rc = sparsec__fail(SPARSEC_ERR_IO, "save: cannot write '%s': %s", tmp,
                       sparsec__errstr(err, ebuf, sizeof(ebuf)));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    rc = sparsec__fail(SPARSEC_ERR_IO, "save: cannot rename '%s' to '%s': %s", tmp, path,
                       sparsec__errstr(errno, ebuf, sizeof(ebuf)));
    unlink(tmp);
    goto done;
  }
  sparsec__sync_dir(path);
done:
  free(tmp);
  free(h.data);
  sparsec__ck_free(&l);
  return rc;
}
