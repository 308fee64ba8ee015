/*===- checkpoint_load.c - Strict safetensors checkpoint loading ---*- C -*-===*
 *
 * sparsec_load reads the whole file and checks, in order: the header length
 * against the file size, the JSON header (strict parser), the metadata
 * (format, model name, ABI, step, lr, CRC32, CSR sizes, then the metadata's
 * own CRC32 "metadata_crc32" when present), every tensor entry (known
 * name, exact dtype and shape, offsets inside the data section and not
 * overlapping; for CSR parameters the "NAME.size" metadata gives the dense
 * shape), the presence of every required tensor, the CRC32 of the
 * data section, the CSR structure (positions monotone from 0 to nnz,
 * columns in range and strictly ascending per row) and the optimizer state
 * (tensors saved together present together, flags 0/1, last steps in
 * [0, step], accumulators of squares >= 0; state the model does not keep
 * is ignored, state the file lacks starts fresh). Only when all of that
 * holds is anything copied into the model, so a failed load changes
 * nothing. Open/read failures are SPARSEC_ERR_IO; everything else that is
 * wrong with the file is SPARSEC_ERR_FORMAT with a message naming it.
 *===----------------------------------------------------------------------===*/
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int sparsec__read_file(const char *path, unsigned char **out, size_t *out_len) {
  char ebuf[128];
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused
   * as not a regular file); it changes nothing for regular files. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return sparsec__fail(SPARSEC_ERR_IO, "load: cannot open '%s': %s", path,
                         sparsec__errstr(errno, ebuf, sizeof(ebuf)));
  struct stat st;
  memset(&st, 0, sizeof(st));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    close(fd);
    return sparsec__fail(SPARSEC_ERR_IO, "load: '%s' is not a readable regular file%s%s", path,
                         S_ISREG(st.st_mode) ? ": " : "",
                         S_ISREG(st.st_mode) ? sparsec__errstr(err, ebuf, sizeof(ebuf)) : "");
  }
  size_t len = (size_t)st.st_size;
  unsigned char *buf = (unsigned char *)sparsec__malloc(len);
  if (!buf) {
    close(fd);
    return sparsec__fail(SPARSEC_ERR_NOMEM, "load: cannot allocate %zu bytes for '%s'", len, path);
  }
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, buf + got, len - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      int err = r < 0 ? errno : EIO;
      free(buf);
      close(fd);
      return sparsec__fail(SPARSEC_ERR_IO, "load: cannot read '%s': %s", path,
                           sparsec__errstr(err, ebuf, sizeof(ebuf)));
    }
    got += (size_t)r;
  }
  close(fd);
  *out = buf;
  *out_len = len;
  return SPARSEC_OK;
}

static void sparsec__shape_str(char *buf, size_t n, int32_t rank, const int64_t *shape) {
  size_t at = 0;
  at += (size_t)snprintf(buf, n, "[");
  for (int32_t k = 0; k < rank && at < n; ++k)
    at += (size_t)snprintf(buf + at, n - at, k ? ", %lld" : "%lld", (long long)shape[k]);
  if (at < n)
    snprintf(buf + at, n - at, "]");
}

static int32_t sparsec__ld_i32(const unsigned char *p, int64_t i) {
  int32_t v;
  memcpy(&v, p + 4 * i, 4);
  return v;
}

typedef struct sparsec__ck_meta {
  int64_t step;
  double lr;
  uint32_t crc;
} sparsec__ck_meta;

static int sparsec__parse_u64(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > 18)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < len; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* 8 hex digits (either case, or lower case only). Returns 0 or -1. */
static int sparsec__parse_hex32(const sparsec__json_node *v, int lower_only, uint32_t *out) {
  uint32_t crc = 0;
  int ok = v->len == 8;
  for (size_t i = 0; ok && i < 8; ++i) {
    char h = v->str[i];
    int d = h >= '0' && h <= '9'                  ? h - '0'
            : h >= 'a' && h <= 'f'                ? h - 'a' + 10
            : h >= 'A' && h <= 'F' && !lower_only ? h - 'A' + 10
                                                  : -1;
    ok = d >= 0;
    crc = (crc << 4) | (uint32_t)(d & 15);
  }
  *out = crc;
  return ok ? 0 : -1;
}

/* The metadata's own checksum (finding R-7): when the file has
 * "metadata_crc32", it must match sparsec__ck_meta_crc of the metadata.
 * Files without it (saved before it existed, or written by other tools)
 * are accepted: the data CRC and every other check still apply. */
static int sparsec__check_meta_crc(const char *path, const sparsec__json_doc *doc,
                                   const sparsec__json_node *md) {
  const sparsec__json_node *mc = sparsec__json_get(doc, md, SPARSEC_CK_META_CRC_KEY);
  if (!mc)
    return SPARSEC_OK;
  uint32_t want = 0, got = 0;
  /* Lower case only (as saved), so that no bit flip leaves it valid. */
  if (sparsec__parse_hex32(mc, 1, &want) != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has an invalid %s '%s'", path,
                         SPARSEC_CK_META_CRC_KEY, mc->str);
  sparsec__ck_kv *kv = (sparsec__ck_kv *)sparsec__calloc((size_t)md->count + 1, sizeof(*kv));
  if (!kv)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "load: out of memory");
  size_t n = 0;
  for (int64_t c = md->first; c >= 0; c = doc->nodes[c].next, ++n) {
    const sparsec__json_node *e = &doc->nodes[c];
    kv[n].key = e->key;
    kv[n].key_len = e->key_len;
    kv[n].val = e->str;
    kv[n].val_len = e->len;
  }
  const int rc = sparsec__ck_meta_crc(kv, n, &got);
  free(kv);
  if (rc != 0)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "load: out of memory");
  if (got != want)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': metadata checksum mismatch (%s says %08x, the "
                         "metadata has %08x): a __metadata__ value such as step or lr was "
                         "changed or corrupted",
                         path, SPARSEC_CK_META_CRC_KEY, want, got);
  return SPARSEC_OK;
}

static int sparsec__parse_meta(const char *path, const sparsec__json_doc *doc,
                               const sparsec__json_node *root, const sparsec_model *m,
                               sparsec__ck_meta *meta) {
  const sparsec__json_node *md = sparsec__json_get(doc, root, "__metadata__");
  if (!md || md->kind != SPARSEC_JSON_OBJECT)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has no __metadata__ object",
                         path);
  for (int64_t c = md->first; c >= 0; c = doc->nodes[c].next)
    if (doc->nodes[c].kind != SPARSEC_JSON_STRING)
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s' has metadata '%s' that is not a string", path,
                           doc->nodes[c].key);
  const char *keys[] = {"format", "model", "abi", "step", "lr", "crc32"};
  const sparsec__json_node *v[6];
  for (int i = 0; i < 6; ++i)
    if (!(v[i] = sparsec__json_get(doc, md, keys[i])))
      return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has no metadata '%s'", path,
                           keys[i]);
  if (strcmp(v[0]->str, "sparsec") != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: '%s' is not a sparsec checkpoint (format '%s')",
                         path, v[0]->str);
  if (strcmp(v[1]->str, m->name) != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' is for model '%s', not '%s'",
                         path, v[1]->str, m->name);
  /* Every ABI so far has the same format (ABI 1: the SGD subset; ABI 3
   * added descriptor fields only). */
  if (v[2]->len != 1 || v[2]->str[0] < '1' || v[2]->str[0] > '0' + SPARSEC_ABI_VERSION)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s' has ABI version '%s', this runtime reads '1' to "
                         "'%d'",
                         path, v[2]->str, SPARSEC_ABI_VERSION);
  if (sparsec__parse_u64(v[3]->str, v[3]->len, &meta->step) != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has an invalid step '%s'", path,
                         v[3]->str);
  char *end = NULL;
  meta->lr = v[4]->len ? strtod(v[4]->str, &end) : -1.0;
  if (v[4]->len == 0 || end != v[4]->str + v[4]->len || !isfinite(meta->lr) || meta->lr < 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has an invalid lr '%s'", path,
                         v[4]->str);
  if (sparsec__parse_hex32(v[5], 0, &meta->crc) != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has an invalid crc32 '%s'",
                         path, v[5]->str);
  /* CSR parameters: the dense size, "[rows,cols]". */
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_CSR)
      continue;
    char key[512];
    snprintf(key, sizeof(key), "%s.size", p->desc.name);
    const sparsec__json_node *sz = sparsec__json_get(doc, md, key);
    if (!sz)
      return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has no metadata '%s'", path,
                           key);
    int64_t dims[2] = {-1, -1};
    const char *c = sz->str;
    int ok = *c++ == '[';
    for (int k = 0; ok && k < 2; ++k) {
      const char *start = c;
      while (*c >= '0' && *c <= '9')
        ++c;
      ok = c > start && sparsec__parse_u64(start, (size_t)(c - start), &dims[k]) == 0 &&
           *c++ == (k == 0 ? ',' : ']');
    }
    if (!ok || *c != '\0')
      return sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has invalid metadata '%s'",
                           path, key);
    if (dims[0] != p->desc.dims[0] || dims[1] != p->desc.dims[1]) {
      char got[64], want[64];
      sparsec__shape_str(got, sizeof(got), 2, dims);
      sparsec__shape_str(want, sizeof(want), 2, p->desc.dims);
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s': tensor '%s' has shape %s, model expects %s",
                           path, p->desc.name, got, want);
    }
  }
  /* Last, so that values that are invalid in themselves (or another
   * model's name or CSR size) keep their own messages. */
  return sparsec__check_meta_crc(path, doc, md);
}

static int sparsec__parse_tensor(const char *path, const sparsec__json_doc *doc,
                                 const sparsec__json_node *t, sparsec__ck_entry *e,
                                 uint64_t data_len) {
  const char *name = e->name;
  const sparsec__json_node *dt = sparsec__json_get(doc, t, "dtype");
  const sparsec__json_node *sh = sparsec__json_get(doc, t, "shape");
  const sparsec__json_node *of = sparsec__json_get(doc, t, "data_offsets");
  if (t->kind != SPARSEC_JSON_OBJECT || t->count != 3 || !dt || dt->kind != SPARSEC_JSON_STRING ||
      !sh || sh->kind != SPARSEC_JSON_ARRAY || !of || of->kind != SPARSEC_JSON_ARRAY ||
      of->count != 2)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': tensor '%s' is not {dtype, shape, data_offsets}",
                         path, name);
  if (strcmp(dt->str, e->dtype) != 0)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': tensor '%s' has dtype %s, model expects %s", path,
                         name, dt->str, e->dtype);
  int64_t shape[SPARSEC_MAX_RANK + 1];
  int32_t rank = 0;
  int same = sh->count == e->rank;
  int64_t elems = 1; /* of the file's shape, -1 when absurd */
  for (int64_t c = sh->first; c >= 0; c = doc->nodes[c].next) {
    if (doc->nodes[c].kind != SPARSEC_JSON_INT)
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s': tensor '%s' has a non-integer shape", path,
                           name);
    if (rank <= SPARSEC_MAX_RANK)
      shape[rank] = doc->nodes[c].ival;
    if (rank < e->rank && doc->nodes[c].ival != e->shape[rank])
      same = 0;
    if (elems >= 0 && sparsec__mul_i64(elems, doc->nodes[c].ival, &elems) != 0)
      elems = -1;
    ++rank;
  }
  if (!e->kept) {
    /* Optimizer state this model does not keep: any shape, ignored. */
    if (rank > SPARSEC_MAX_RANK || elems < 0 || elems > INT64_MAX / 8)
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s': tensor '%s' has an "
                           "invalid shape",
                           path, name);
    e->rank = rank;
    memcpy(e->shape, shape, sizeof(int64_t) * (size_t)rank);
    e->elems = elems;
    same = 1;
  }
  if (!same) {
    char got[160], want[160];
    if (rank > SPARSEC_MAX_RANK)
      snprintf(got, sizeof(got), "of rank %d", rank);
    else
      sparsec__shape_str(got, sizeof(got), rank, shape);
    sparsec__shape_str(want, sizeof(want), e->rank, e->shape);
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': tensor '%s' has shape %s, model expects %s", path,
                         name, got, want);
  }
  const sparsec__json_node *b = &doc->nodes[of->first];
  const sparsec__json_node *en = &doc->nodes[b->next];
  if (b->kind != SPARSEC_JSON_INT || en->kind != SPARSEC_JSON_INT || b->ival > en->ival)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': tensor '%s' has invalid data offsets", path, name);
  if ((uint64_t)en->ival > data_len)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s' is truncated: tensor '%s' ends at data byte %lld, "
                         "the data section has %llu",
                         path, name, (long long)en->ival, (unsigned long long)data_len);
  if ((uint64_t)(en->ival - b->ival) != (uint64_t)e->elems * e->elem_size)
    return sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s': tensor '%s' has %lld bytes of data, its shape "
                         "needs %lld",
                         path, name, (long long)(en->ival - b->ival),
                         (long long)(e->elems * (int64_t)e->elem_size));
  e->found = 1;
  e->begin = b->ival;
  e->end = en->ival;
  return SPARSEC_OK;
}

static int sparsec__cmp_begin(const void *a, const void *b) {
  const sparsec__ck_entry *x = *(const sparsec__ck_entry *const *)a;
  const sparsec__ck_entry *y = *(const sparsec__ck_entry *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static sparsec__ck_entry *sparsec__ck_find(sparsec__ck_list *l, int32_t param, int kind) {
  for (int32_t i = 0; i < l->n; ++i)
    if (l->e[i].param == param && l->e[i].kind == kind)
      return &l->e[i];
  return NULL;
}

/* A parameter's optional tensors of one load group come together. */
static int sparsec__check_groups(const char *path, const sparsec__ck_list *l) {
  for (int32_t i = 0; i < l->n; ++i) {
    const sparsec__ck_entry *a = &l->e[i];
    if (a->group == SPARSEC_CK_REQUIRED || !a->kept || !a->found)
      continue;
    for (int32_t j = 0; j < l->n; ++j) {
      const sparsec__ck_entry *b = &l->e[j];
      if (b->param == a->param && b->group == a->group && b->kept && !b->found)
        return sparsec__fail(SPARSEC_ERR_FORMAT,
                             "load: checkpoint '%s' has '%s' but not '%s' (a parameter's "
                             "optimizer state is saved together)",
                             path, a->name, b->name);
    }
  }
  return SPARSEC_OK;
}

/* Values of an optimizer tensor: flags 0/1, last steps in [0, step],
 * accumulators of squares >= 0. */
static int sparsec__check_state(const char *path, const sparsec__ck_entry *e,
                                const unsigned char *data, const sparsec__ck_meta *meta) {
  const unsigned char *d = data + e->begin;
  for (int64_t r = 0; r < e->elems; ++r) {
    if (e->kind == SPARSEC_CK_MOMROWS && d[r] > 1)
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s': tensor '%s' holds %u at row %lld, "
                           "expected 0 or 1",
                           path, e->name, d[r], (long long)r);
    if (e->kind == SPARSEC_CK_LASTSTEP) {
      int64_t v;
      memcpy(&v, d + 8 * r, 8);
      if (v < 0 || v > meta->step)
        return sparsec__fail(SPARSEC_ERR_FORMAT,
                             "load: checkpoint '%s': tensor '%s' holds %lld at row %lld, "
                             "expected a step in [0, %lld]",
                             path, e->name, (long long)v, (long long)r, (long long)meta->step);
    }
    if (e->kind == SPARSEC_CK_STATE &&
        (e->state == SPARSEC_ST_SUM || e->state == SPARSEC_ST_SQUARE_AVG ||
         e->state == SPARSEC_ST_EXP_AVG_SQ || e->state == SPARSEC_ST_MAX_EXP_AVG_SQ)) {
      float v;
      memcpy(&v, d + 4 * r, 4);
      if (!(v >= 0.0f))
        return sparsec__fail(SPARSEC_ERR_FORMAT,
                             "load: checkpoint '%s': tensor '%s' holds %g at element %lld, "
                             "expected a value >= 0",
                             path, e->name, (double)v, (long long)r);
    }
  }
  return SPARSEC_OK;
}

/* Checks what the entries say against each other and the data. */
static int sparsec__check_entries(const char *path, const sparsec_model *m, sparsec__ck_list *l,
                                  const unsigned char *data, const sparsec__ck_meta *meta) {
  sparsec__ck_entry **order =
      (sparsec__ck_entry **)sparsec__calloc((size_t)l->n, sizeof(sparsec__ck_entry *));
  if (!order)
    return sparsec__fail(SPARSEC_ERR_NOMEM, "load: out of memory");
  int32_t n = 0;
  for (int32_t i = 0; i < l->n; ++i)
    if (l->e[i].found && l->e[i].end > l->e[i].begin)
      order[n++] = &l->e[i];
  qsort(order, (size_t)n, sizeof(*order), sparsec__cmp_begin);
  for (int32_t i = 1; i < n; ++i) {
    if (order[i]->begin < order[i - 1]->end) {
      int rc =
          sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s': tensors '%s' and '%s' overlap",
                        path, order[i - 1]->name, order[i]->name);
      free(order);
      return rc;
    }
  }
  free(order);
  int rc = sparsec__check_groups(path, l);
  if (rc != SPARSEC_OK)
    return rc;
  for (int32_t i = 0; i < l->n; ++i)
    if (l->e[i].found && l->e[i].kept &&
        (rc = sparsec__check_state(path, &l->e[i], data, meta)) != SPARSEC_OK)
      return rc;
  for (int32_t i = 0; i < m->num_params; ++i) {
    const sparsec__param *p = &m->params[i];
    if (p->desc.layout != SPARSEC_LAYOUT_CSR)
      continue;
    const sparsec__ck_entry *crow = sparsec__ck_find(l, i, SPARSEC_CK_CROW);
    const sparsec__ck_entry *col = sparsec__ck_find(l, i, SPARSEC_CK_COL);
    const unsigned char *pos = data + crow->begin, *crd = data + col->begin;
    const int64_t rows = p->desc.dims[0], cols = p->desc.dims[1];
    if (sparsec__ld_i32(pos, 0) != 0 || sparsec__ld_i32(pos, rows) != p->nnz)
      return sparsec__fail(SPARSEC_ERR_FORMAT,
                           "load: checkpoint '%s': '%s' must run from 0 to nnz %lld", path,
                           crow->name, (long long)p->nnz);
    for (int64_t r = 0; r < rows; ++r) {
      int32_t lo = sparsec__ld_i32(pos, r), hi = sparsec__ld_i32(pos, r + 1);
      if (hi < lo || hi > p->nnz)
        return sparsec__fail(SPARSEC_ERR_FORMAT,
                             "load: checkpoint '%s': '%s' decreases at row %lld", path, crow->name,
                             (long long)r);
      for (int32_t k = lo; k < hi; ++k) {
        int32_t c = sparsec__ld_i32(crd, k);
        if (c < 0 || c >= cols || (k > lo && c <= sparsec__ld_i32(crd, k - 1)))
          return sparsec__fail(SPARSEC_ERR_FORMAT,
                               "load: checkpoint '%s': '%s' has column %d at entry %d of row "
                               "%lld (columns must be in [0, %lld) and ascending per row)",
                               path, col->name, c, k, (long long)r, (long long)cols);
      }
    }
  }
  return SPARSEC_OK;
}

/* Copies validated entries into the model; cannot fail. Optimizer state
 * the file does not have starts fresh (catch-up rows up to date). */
static void sparsec__apply(sparsec_model *m, sparsec__ck_list *l, const unsigned char *data,
                           const sparsec__ck_meta *meta) {
  for (int32_t i = 0; i < m->num_params; ++i)
    sparsec__state_reset(m, &m->params[i], meta->step);
  for (int32_t i = 0; i < l->n; ++i) {
    const sparsec__ck_entry *e = &l->e[i];
    sparsec__param *p = &m->params[e->param];
    void *dst = sparsec__ck_data(m, e);
    if (!dst || !e->found)
      continue; /* state the model does not keep, or fresh */
    memcpy(dst, data + e->begin, (size_t)e->elems * e->elem_size);
    if (e->kind == SPARSEC_CK_STATE && e->group == SPARSEC_CK_SGD_MOMENTUM && !p->mom_row_init)
      p->mom_init = 1;
  }
  m->step = meta->step;
  m->lr = meta->lr;
}

SPARSEC_API int sparsec_load(sparsec_model *m, const char *path) {
  sparsec__clear_error();
  if (!m || !path)
    return sparsec__fail(SPARSEC_ERR_NULL, "load: %s is NULL", m ? "path" : "model");
  /* A CUDA model: the host copy is made current and then authoritative, so
   * a failed load leaves it as it was and a good one is uploaded next. */
  int src = sparsec__device_host_sync(m, SPARSEC_DEV_ALL);
  if (src != SPARSEC_OK)
    return src;
  sparsec__device_host_written(m, SPARSEC_DEV_ALL);
  unsigned char *buf = NULL;
  size_t size = 0;
  int rc = sparsec__read_file(path, &buf, &size);
  if (rc != SPARSEC_OK)
    return rc;
  sparsec__json_doc doc;
  memset(&doc, 0, sizeof(doc));
  sparsec__ck_list l = {NULL, 0};
  sparsec__ck_meta meta = {0, 0.0, 0};
  uint64_t hlen = 0;
  if (size < 8) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT,
                       "load: checkpoint '%s' is truncated: file has %zu bytes, the header "
                       "length alone needs 8",
                       path, size);
    goto done;
  }
  for (int i = 7; i >= 0; --i)
    hlen = (hlen << 8) | buf[i];
  if (hlen > size - 8) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT,
                       "load: checkpoint '%s' is truncated: header says %llu bytes, file has %zu",
                       path, (unsigned long long)(hlen + 8), size);
    goto done;
  }
  if (hlen < 2 || hlen > SPARSEC_MAX_HEADER) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has a header of %llu bytes", path,
                       (unsigned long long)hlen);
    goto done;
  }
  char jerr[160];
  if (sparsec__json_parse((const char *)buf + 8, (size_t)hlen, &doc, jerr, sizeof(jerr)) != 0) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has a corrupt JSON header (%s)",
                       path, jerr);
    goto done;
  }
  const sparsec__json_node *root = &doc.nodes[0];
  if (root->kind != SPARSEC_JSON_OBJECT) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' header is not a JSON object",
                       path);
    goto done;
  }
  if (sparsec__ck_build(m, &l) != 0) {
    rc = sparsec__fail(SPARSEC_ERR_NOMEM, "load: out of memory");
    goto done;
  }
  if ((rc = sparsec__parse_meta(path, &doc, root, m, &meta)) != SPARSEC_OK)
    goto done;
  const unsigned char *data = buf + 8 + hlen;
  const uint64_t data_len = size - 8 - hlen;
  for (int64_t c = root->first; c >= 0; c = doc.nodes[c].next) {
    const sparsec__json_node *t = &doc.nodes[c];
    if (strcmp(t->key, "__metadata__") == 0)
      continue;
    sparsec__ck_entry *e = NULL;
    for (int32_t i = 0; i < l.n && !e; ++i)
      if (strcmp(l.e[i].name, t->key) == 0)
        e = &l.e[i];
    if (!e) {
      rc = sparsec__fail(SPARSEC_ERR_FORMAT,
                         "load: checkpoint '%s' has tensor '%s', which model '%s' does not have",
                         path, t->key, m->name);
      goto done;
    }
    if ((rc = sparsec__parse_tensor(path, &doc, t, e, data_len)) != SPARSEC_OK)
      goto done;
  }
  for (int32_t i = 0; i < l.n; ++i) {
    if (!l.e[i].found && l.e[i].group == SPARSEC_CK_REQUIRED) {
      rc = sparsec__fail(SPARSEC_ERR_FORMAT, "load: checkpoint '%s' has no tensor '%s'", path,
                         l.e[i].name);
      goto done;
    }
  }
  uint32_t crc = sparsec__crc32(0, data, (size_t)data_len);
  if (crc != meta.crc) {
    rc = sparsec__fail(SPARSEC_ERR_FORMAT,
                       "load: checkpoint '%s': checksum mismatch (header says %08x, data has "
                       "%08x)",
                       path, meta.crc, crc);
    goto done;
  }
  if ((rc = sparsec__check_entries(path, m, &l, data, &meta)) != SPARSEC_OK)
    goto done;
  sparsec__apply(m, &l, data, &meta);
  sparsec__masks_apply(m); /* masked weights are zero (prune.c) */
done:
  sparsec__ck_free(&l);
  sparsec__json_free(&doc);
  free(buf);
  return rc;
}
