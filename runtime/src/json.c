/*===- json.c - Strict parser for safetensors JSON headers ---------*- C -*-===*
 *
 * A small, strict, non-allocating-per-value JSON parser for the subset a
 * safetensors header uses: objects, arrays, strings and non-negative
 * integers. Everything else (negative or fractional numbers, true, false,
 * null, trailing commas, comments, duplicate keys, invalid UTF-8, control
 * characters in strings, nesting deeper than 32) is rejected with the byte
 * offset of the problem, so a corrupt checkpoint header is reported rather
 * than half-read.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPARSEC_JSON_MAX_DEPTH 32

typedef struct sparsec__json_parser {
  const char *text;
  size_t len;
  size_t pos;
  sparsec__json_doc *doc;
  int64_t cap_nodes;
  size_t str_used;
  char *err;
  size_t errlen;
} sparsec__json_parser;

static int sparsec__json_error(sparsec__json_parser *p, const char *fmt, ...) SPARSEC_PRINTF(2, 3);

static int sparsec__json_error(sparsec__json_parser *p, const char *fmt, ...) {
  if (p->err && p->errlen) {
    int k = snprintf(p->err, p->errlen, "at byte %zu: ", p->pos);
    if (k >= 0 && (size_t)k < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return -1;
}

static void sparsec__json_ws(sparsec__json_parser *p) {
  while (p->pos < p->len) {
    char c = p->text[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    ++p->pos;
  }
}

static int64_t sparsec__json_new_node(sparsec__json_parser *p, sparsec__json_kind kind) {
  sparsec__json_doc *d = p->doc;
  if (d->num_nodes == p->cap_nodes) {
    int64_t cap = p->cap_nodes ? p->cap_nodes * 2 : 64;
    sparsec__json_node *n = (sparsec__json_node *)realloc(d->nodes, (size_t)cap * sizeof(*n));
    if (!n)
      return sparsec__json_error(p, "out of memory");
    d->nodes = n;
    p->cap_nodes = cap;
  }
  sparsec__json_node *n = &d->nodes[d->num_nodes];
  memset(n, 0, sizeof(*n));
  n->kind = kind;
  n->first = -1;
  n->next = -1;
  return d->num_nodes++;
}

static int sparsec__json_hex4(sparsec__json_parser *p, uint32_t *out) {
  if (p->len - p->pos < 4)
    return sparsec__json_error(p, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = p->text[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (uint32_t)(c - 'A' + 10);
    else
      return sparsec__json_error(p, "bad hex digit in \\u escape");
  }
  *out = v;
  return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t sparsec__utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

static void sparsec__utf8_put(char *dst, size_t *at, uint32_t cp) {
  if (cp < 0x80) {
    dst[(*at)++] = (char)cp;
  } else if (cp < 0x800) {
    dst[(*at)++] = (char)(0xC0 | (cp >> 6));
    dst[(*at)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    dst[(*at)++] = (char)(0xE0 | (cp >> 12));
    dst[(*at)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[(*at)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    dst[(*at)++] = (char)(0xF0 | (cp >> 18));
    dst[(*at)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[(*at)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[(*at)++] = (char)(0x80 | (cp & 0x3F));
  }
}

/* Parses a string at p->pos (the opening quote) into the string store. The
 * decoded form is never longer than the source, so the store (sized to the
 * input) cannot overflow. */
static int sparsec__json_string(sparsec__json_parser *p, const char **out, size_t *out_len) {
  ++p->pos; /* opening quote */
  char *dst = p->doc->strings;
  size_t at = p->str_used, start = at;
  for (;;) {
    if (p->pos >= p->len)
      return sparsec__json_error(p, "unterminated string");
    unsigned char c = (unsigned char)p->text[p->pos];
    if (c == '"') {
      ++p->pos;
      break;
    }
    if (c < 0x20)
      return sparsec__json_error(p, "control character in string");
    if (c == '\\') {
      if (++p->pos >= p->len)
        return sparsec__json_error(p, "unterminated escape");
      char e = p->text[p->pos++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        dst[at++] = e;
        break;
      case 'b':
        dst[at++] = '\b';
        break;
      case 'f':
        dst[at++] = '\f';
        break;
      case 'n':
        dst[at++] = '\n';
        break;
      case 'r':
        dst[at++] = '\r';
        break;
      case 't':
        dst[at++] = '\t';
        break;
      case 'u': {
        uint32_t cp;
        if (sparsec__json_hex4(p, &cp) != 0)
          return -1;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return sparsec__json_error(p, "unpaired low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (p->len - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
            return sparsec__json_error(p, "unpaired high surrogate");
          p->pos += 2;
          if (sparsec__json_hex4(p, &lo) != 0)
            return -1;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return sparsec__json_error(p, "unpaired high surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0)
          return sparsec__json_error(p, "NUL character in string");
        sparsec__utf8_put(dst, &at, cp);
        break;
      }
      default:
        --p->pos;
        return sparsec__json_error(p, "invalid escape '\\%c'", e);
      }
      continue;
    }
    size_t n = sparsec__utf8_len((const unsigned char *)p->text + p->pos, p->len - p->pos);
    if (n == 0)
      return sparsec__json_error(p, "invalid UTF-8 in string");
    memcpy(dst + at, p->text + p->pos, n);
    at += n;
    p->pos += n;
  }
  dst[at++] = '\0';
  *out = dst + start;
  *out_len = at - start - 1;
  p->str_used = at;
  return 0;
}

static int sparsec__json_value(sparsec__json_parser *p, int depth, int64_t *out);

static int sparsec__json_container(sparsec__json_parser *p, int depth, int64_t self,
                                   int is_object) {
  const char close = is_object ? '}' : ']';
  ++p->pos; /* opening bracket */
  sparsec__json_ws(p);
  if (p->pos < p->len && p->text[p->pos] == close) {
    ++p->pos;
    return 0;
  }
  int64_t last = -1;
  for (;;) {
    const char *key = NULL;
    size_t key_len = 0;
    if (is_object) {
      if (p->pos >= p->len || p->text[p->pos] != '"')
        return sparsec__json_error(p, "expected a string key");
      if (sparsec__json_string(p, &key, &key_len) != 0)
        return -1;
      for (int64_t c = p->doc->nodes[self].first; c >= 0; c = p->doc->nodes[c].next) {
        const sparsec__json_node *m = &p->doc->nodes[c];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
          return sparsec__json_error(p, "duplicate key \"%s\"", key);
      }
      sparsec__json_ws(p);
      if (p->pos >= p->len || p->text[p->pos] != ':')
        return sparsec__json_error(p, "expected ':'");
      ++p->pos;
      sparsec__json_ws(p);
    }
    int64_t child;
    if (sparsec__json_value(p, depth + 1, &child) != 0)
      return -1;
    sparsec__json_node *nodes = p->doc->nodes;
    nodes[child].key = key;
    nodes[child].key_len = key_len;
    if (last < 0)
      nodes[self].first = child;
    else
      nodes[last].next = child;
    last = child;
    ++nodes[self].count;
    sparsec__json_ws(p);
    if (p->pos >= p->len)
      return sparsec__json_error(p, "unterminated %s", is_object ? "object" : "array");
    char c = p->text[p->pos];
    if (c == close) {
      ++p->pos;
      return 0;
    }
    if (c != ',')
      return sparsec__json_error(p, "expected ',' or '%c'", close);
    ++p->pos;
    sparsec__json_ws(p);
  }
}

static int sparsec__json_value(sparsec__json_parser *p, int depth, int64_t *out) {
  if (depth > SPARSEC_JSON_MAX_DEPTH)
    return sparsec__json_error(p, "nesting deeper than %d", SPARSEC_JSON_MAX_DEPTH);
  if (p->pos >= p->len)
    return sparsec__json_error(p, "unexpected end of header");
  char c = p->text[p->pos];
  int64_t self;
  if (c == '{' || c == '[') {
    if ((self = sparsec__json_new_node(p, c == '{' ? SPARSEC_JSON_OBJECT : SPARSEC_JSON_ARRAY)) < 0)
      return -1;
    *out = self;
    return sparsec__json_container(p, depth, self, c == '{');
  }
  if (c == '"') {
    if ((self = sparsec__json_new_node(p, SPARSEC_JSON_STRING)) < 0)
      return -1;
    *out = self;
    const char *s;
    size_t n;
    if (sparsec__json_string(p, &s, &n) != 0)
      return -1;
    p->doc->nodes[self].str = s;
    p->doc->nodes[self].len = n;
    return 0;
  }
  if (c >= '0' && c <= '9') {
    int64_t v = 0;
    size_t start = p->pos;
    while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
      int d = p->text[p->pos] - '0';
      if (v > (INT64_MAX - d) / 10)
        return sparsec__json_error(p, "integer too large");
      v = v * 10 + d;
      ++p->pos;
    }
    if (p->text[start] == '0' && p->pos - start > 1)
      return sparsec__json_error(p, "leading zero in integer");
    if (p->pos < p->len &&
        (p->text[p->pos] == '.' || p->text[p->pos] == 'e' || p->text[p->pos] == 'E'))
      return sparsec__json_error(p, "only non-negative integers are supported");
    if ((self = sparsec__json_new_node(p, SPARSEC_JSON_INT)) < 0)
      return -1;
    p->doc->nodes[self].ival = v;
    *out = self;
    return 0;
  }
  if (c == '-')
    return sparsec__json_error(p, "only non-negative integers are supported");
  if (c < 0x20 || c > 0x7E)
    return sparsec__json_error(p, "unexpected byte 0x%02x", (unsigned)(unsigned char)c);
  return sparsec__json_error(p, "unexpected character '%c'", c);
}

int sparsec__json_parse(const char *text, size_t len, sparsec__json_doc *doc, char *err,
                        size_t errlen) {
  memset(doc, 0, sizeof(*doc));
  if (err && errlen)
    err[0] = '\0';
  sparsec__json_parser p = {text, len, 0, doc, 0, 0, err, errlen};
  doc->strings = (char *)sparsec__malloc(len + 1);
  if (!doc->strings)
    return sparsec__json_error(&p, "out of memory");
  sparsec__json_ws(&p);
  int64_t root;
  int rc = sparsec__json_value(&p, 0, &root);
  if (rc == 0) {
    sparsec__json_ws(&p);
    if (p.pos != len)
      rc = sparsec__json_error(&p, "trailing characters after the JSON value");
  }
  if (rc != 0)
    sparsec__json_free(doc);
  return rc;
}

void sparsec__json_free(sparsec__json_doc *doc) {
  free(doc->nodes);
  free(doc->strings);
  memset(doc, 0, sizeof(*doc));
}

const sparsec__json_node *sparsec__json_get(const sparsec__json_doc *doc,
                                            const sparsec__json_node *obj, const char *key) {
  if (!obj || obj->kind != SPARSEC_JSON_OBJECT)
    return NULL;
  size_t n = strlen(key);
  for (int64_t c = obj->first; c >= 0; c = doc->nodes[c].next) {
    const sparsec__json_node *m = &doc->nodes[c];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return m;
  }
  return NULL;
}
