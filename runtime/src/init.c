/*===- init.c - Seeded RNG, initialisers and CSR pattern sampling -*- C -*-===*
 *
 * Every parameter draws from its own xoshiro256** stream, seeded through
 * splitmix64 from (model seed, FNV-1a hash of the parameter name), so the
 * same seed gives bit-identical parameters and adding a parameter does not
 * change the others. Values follow PyTorch's initialiser conventions; CSR
 * patterns hold exactly `nnz` distinct positions drawn uniformly among all
 * sets of that size, without ever materialising rows * cols.
 *===----------------------------------------------------------------------===*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/*===-- RNG -----------------------------------------------------------------===*/

uint64_t sparsec__splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t sparsec__hash_name(const char *name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const unsigned char *p = (const unsigned char *)name; *p; ++p) {
    h ^= *p;
    h *= 0x100000001B3ull;
  }
  return h;
}

void sparsec__rng_seed(sparsec__rng *rng, uint64_t seed, uint64_t stream) {
  /* Mix seed and stream through two splitmix64 outputs so that nearby
   * seeds/streams give unrelated states. */
  uint64_t a = seed;
  uint64_t b = stream ^ 0x6A09E667F3BCC909ull;
  uint64_t state = sparsec__splitmix64(&a) ^ (sparsec__splitmix64(&b) * 0xD1342543DE82EF95ull);
  for (int i = 0; i < 4; ++i)
    rng->s[i] = sparsec__splitmix64(&state);
  if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
    rng->s[0] = 1;
}

static inline uint64_t sparsec__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sparsec__rng_next(sparsec__rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = sparsec__rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = sparsec__rotl(s[3], 45);
  return result;
}

double sparsec__rng_uniform(sparsec__rng *rng) {
  return (double)(sparsec__rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t sparsec__rng_below(sparsec__rng *rng, uint64_t n) {
  /* Lemire, "Fast random integer generation in an interval" (2019). */
  __uint128_t m = (__uint128_t)sparsec__rng_next(rng) * n;
  uint64_t low = (uint64_t)m;
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = (__uint128_t)sparsec__rng_next(rng) * n;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

/*===-- Value initialisers ----------------------------------------------------===*/

static void sparsec__fill_uniform(sparsec__rng *rng, double bound, float *v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    v[i] = (float)(bound * (2.0 * sparsec__rng_uniform(rng) - 1.0));
}

static void sparsec__fill_normal(sparsec__rng *rng, double stddev, float *v, int64_t n) {
  /* Box-Muller, both outputs used. */
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t i = 0; i < n; i += 2) {
    double u1 = 1.0 - sparsec__rng_uniform(rng); /* (0, 1] */
    double u2 = sparsec__rng_uniform(rng);
    double r = sqrt(-2.0 * log(u1));
    v[i] = (float)(stddev * r * cos(two_pi * u2));
    if (i + 1 < n)
      v[i + 1] = (float)(stddev * r * sin(two_pi * u2));
  }
}

void sparsec__init_values(sparsec__rng *rng, sparsec_init init, double a, float *values,
                          int64_t n) {
  switch (init) {
  case SPARSEC_INIT_ZEROS:
    memset(values, 0, (size_t)n * sizeof(float));
    break;
  case SPARSEC_INIT_UNIFORM:
    sparsec__fill_uniform(rng, a, values, n);
    break;
  case SPARSEC_INIT_NORMAL:
    sparsec__fill_normal(rng, a, values, n);
    break;
  case SPARSEC_INIT_FAN_IN_UNIFORM:
    sparsec__fill_uniform(rng, 1.0 / sqrt(a), values, n);
    break;
  }
}

/*===-- Sorting ---------------------------------------------------------------===*/

#define SPARSEC_RADIX_BITS 11
#define SPARSEC_RADIX_SIZE (1 << SPARSEC_RADIX_BITS)

void sparsec__radix_sort_u64(uint64_t *keys, uint64_t *tmp, int64_t n) {
  if (n < 2)
    return;
  /* Only digits that differ between keys need a pass. */
  uint64_t all_or = 0, all_and = ~(uint64_t)0;
  for (int64_t i = 0; i < n; ++i) {
    all_or |= keys[i];
    all_and &= keys[i];
  }
  uint64_t varying = all_or ^ all_and;
  uint64_t *src = keys, *dst = tmp;
  size_t count[SPARSEC_RADIX_SIZE];
  for (int shift = 0; shift < 64; shift += SPARSEC_RADIX_BITS) {
    if (((varying >> shift) & (SPARSEC_RADIX_SIZE - 1)) == 0)
      continue;
    memset(count, 0, sizeof(count));
    for (int64_t i = 0; i < n; ++i)
      ++count[(src[i] >> shift) & (SPARSEC_RADIX_SIZE - 1)];
    size_t sum = 0;
    for (int d = 0; d < SPARSEC_RADIX_SIZE; ++d) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i)
      dst[count[(src[i] >> shift) & (SPARSEC_RADIX_SIZE - 1)]++] = src[i];
    uint64_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != keys)
    memcpy(keys, src, (size_t)n * sizeof(uint64_t));
}

/*===-- CSR pattern sampling --------------------------------------------------===*/

int64_t sparsec__merge_unique(uint64_t *out, int64_t have, const uint64_t *add, int64_t fresh,
                              uint64_t *tmp) {
  int64_t i = 0, j = 0, w = 0;
  while (i < have || j < fresh) {
    uint64_t v;
    if (j >= fresh || (i < have && out[i] <= add[j]))
      v = out[i++];
    else
      v = add[j++];
    if (w == 0 || tmp[w - 1] != v)
      tmp[w++] = v;
  }
  memcpy(out, tmp, (size_t)w * sizeof(uint64_t));
  return w;
}

/* Draws `k` distinct integers uniformly from [0, total) into `out`, sorted.
 * Draw the missing count, sort the new draws, merge them into the sorted
 * unique prefix dropping duplicates, repeat. The process only uses set
 * operations on uniform draws, so it is invariant under relabelling of
 * [0, total) and the resulting k-set is uniform. Callers keep k <= total/2,
 * so each round at least halves the number still missing (in expectation). */
static int sparsec__sample_distinct(sparsec__rng *rng, uint64_t total, int64_t k, uint64_t *out) {
  uint64_t *tmp = (uint64_t *)sparsec__malloc((size_t)k * sizeof(uint64_t));
  if (!tmp)
    return -1;
  int64_t have = 0;
  while (have < k) {
    int64_t fresh = k - have;
    uint64_t *add = out + have;
    for (int64_t i = 0; i < fresh; ++i)
      add[i] = sparsec__rng_below(rng, total);
    sparsec__radix_sort_u64(add, tmp, fresh);
    have = sparsec__merge_unique(out, have, add, fresh, tmp);
  }
  free(tmp);
  return 0;
}

int sparsec__csr_sample(sparsec__rng *rng, int64_t rows, int64_t cols, int64_t nnz,
                        int32_t *positions, int32_t *coordinates) {
  uint64_t total = (uint64_t)rows * (uint64_t)cols;
  positions[0] = 0;
  if (nnz == 0) {
    for (int64_t r = 0; r < rows; ++r)
      positions[r + 1] = 0;
    return 0;
  }
  int complement = (uint64_t)nnz > total / 2;
  /* Dense patterns: sample the positions left out instead; then
   * total <= 2 * nnz, so walking every position is O(nnz). */
  int64_t k = complement ? (int64_t)(total - (uint64_t)nnz) : nnz;
  uint64_t *picked = (uint64_t *)sparsec__malloc((size_t)k * sizeof(uint64_t));
  if (!picked)
    return -1;
  if (k > 0 && sparsec__sample_distinct(rng, total, k, picked) != 0) {
    free(picked);
    return -1;
  }
  int64_t w = 0;
  if (complement) {
    int64_t j = 0;
    uint64_t lin = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c, ++lin) {
        if (j < k && picked[j] == lin)
          ++j;
        else
          coordinates[w++] = (int32_t)c;
      }
      positions[r + 1] = (int32_t)w;
    }
  } else {
    int64_t r = 0;
    for (int64_t i = 0; i < k; ++i) {
      int64_t row = (int64_t)(picked[i] / (uint64_t)cols);
      while (r < row)
        positions[++r] = (int32_t)i;
      coordinates[i] = (int32_t)(picked[i] % (uint64_t)cols);
    }
    while (r < rows)
      positions[++r] = (int32_t)k;
  }
  free(picked);
  return 0;
}
