/*===- abi_stress.c - C harness of the reliability tests ----------------===*
 *
 * Built by test_c_harness.py with the `cc` on PATH against
 * librel_sgd.so (models/rel_sgd.sdl) and run. Under .ci/sanitize.sh that
 * `cc` adds ASan + UBSan, and since this is a plain C program (not Python)
 * LeakSanitizer checks it at exit: every path below -- create/destroy
 * cycles, train/forward, save/load round trips, refused loads, every user
 * error -- must free what it allocates, in the runtime, in the generated
 * glue and in the MLIR-generated kernels (whose malloc/free ASan sees).
 *
 * Also checks, with pthreads: THREADS threads, each with its own handle,
 * doing the same work as a sequential run reach bit-identical states.
 *
 * Usage: abi_stress DIR   (DIR: a scratch directory for checkpoints)
 * Exit status 0 when every check passed.
 *===----------------------------------------------------------------------===*/
#include "librel_sgd.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN = 6, BAG = 3, NIDS = 50, NBAG = 30, NCLS = 4, OUT = 4, MAXB = 9, THREADS = 4,
       STEPS = 30 };

static const char *dir;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      pthread_mutex_lock(&lock);                                                            \
      fprintf(stderr, "abi_stress:%d: check failed: %s: ", __LINE__, #cond);                \
      fprintf(stderr, __VA_ARGS__);                                                         \
      fprintf(stderr, "\n");                                                                \
      ++failures;                                                                           \
      pthread_mutex_unlock(&lock);                                                          \
    }                                                                                       \
  } while (0)

typedef struct {
  float x[MAXB * IN];
  int64_t ids[MAXB], bag[MAXB * BAG], y[MAXB];
  int64_t n;
} batch_t;

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

static void make_batch(batch_t *b, uint64_t seed, int step) {
  uint64_t h = mix(seed * 1000003u + (uint64_t)step);
  b->n = 1 + (int64_t)(h % MAXB);
  for (int i = 0; i < MAXB * IN; ++i)
    b->x[i] = (float)((int)(mix(h + (uint64_t)i) % 2001) - 1000) / 500.0f;
  for (int i = 0; i < MAXB; ++i) {
    b->ids[i] = (int64_t)(mix(h ^ (uint64_t)(i + 77)) % NIDS);
    b->y[i] = (int64_t)(mix(h ^ (uint64_t)(i + 991)) % NCLS);
  }
  for (int i = 0; i < MAXB * BAG; ++i)
    b->bag[i] = (int64_t)(mix(h ^ (uint64_t)(i + 4242)) % NBAG);
  if (b->n > 1)
    b->ids[1] = b->ids[0]; /* a duplicate row */
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  for (size_t i = 0; i < n; ++i)
    h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

/* Hash of every parameter's values and CSR structure, step and lr. */
static uint64_t state_hash(RelSgd *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  int32_t n = 0;
  CHECK(RelSgd_num_params(m, &n) == 0, "%s", RelSgd_last_error());
  for (int32_t i = 0; i < n; ++i) {
    const char *name;
    int32_t rank;
    int64_t dims[4], nnz;
    double sp;
    CHECK(RelSgd_param_info(m, i, &name, &rank, dims, &nnz, &sp) == 0, "%s",
          RelSgd_last_error());
    float *v;
    int64_t count;
    CHECK(RelSgd_param_values(m, name, &v, &count) == 0, "%s", RelSgd_last_error());
    h = fnv(h, v, (size_t)count * sizeof(float));
    const int32_t *pos, *crd;
    if (rank == 2 && RelSgd_param_csr(m, name, &pos, &crd) == 0) {
      h = fnv(h, pos, (size_t)(dims[0] + 1) * sizeof(int32_t));
      h = fnv(h, crd, (size_t)nnz * sizeof(int32_t));
    }
  }
  int64_t steps;
  double lr;
  CHECK(RelSgd_step_count(m, &steps) == 0 && RelSgd_get_lr(m, &lr) == 0, "scalars");
  h = fnv(h, &steps, sizeof(steps));
  return fnv(h, &lr, sizeof(lr));
}

/* Every user error on `m`; each must fail and change nothing. */
static void user_errors(RelSgd *m, const batch_t *b, const char *ckpt) {
  const uint64_t before = state_hash(m);
  float out[MAXB * OUT], loss;
  batch_t bad = *b;
  CHECK(RelSgd_train_step(m, 0, b->x, b->ids, b->bag, b->y, &loss) == 2, "batch 0");
  CHECK(RelSgd_train_step(m, -5, b->x, b->ids, b->bag, b->y, &loss) == 2, "batch -5");
  CHECK(RelSgd_train_step(m, INT64_MAX, b->x, b->ids, b->bag, b->y, &loss) == 2, "batch max");
  CHECK(RelSgd_forward(m, b->n, NULL, b->ids, b->bag, out) == 1, "NULL x");
  CHECK(RelSgd_forward(m, b->n, b->x, b->ids, b->bag, NULL) == 1, "NULL output");
  CHECK(RelSgd_train_step(m, b->n, b->x, b->ids, b->bag, b->y, NULL) == 1, "NULL loss");
  bad.ids[b->n - 1] = NIDS;
  CHECK(RelSgd_train_step(m, b->n, bad.x, bad.ids, bad.bag, bad.y, &loss) == 3, "id");
  bad = *b;
  bad.bag[0] = -1;
  CHECK(RelSgd_forward(m, b->n, bad.x, bad.ids, bad.bag, out) == 3, "bag id");
  bad = *b;
  bad.y[0] = NCLS;
  CHECK(RelSgd_train_step(m, b->n, bad.x, bad.ids, bad.bag, bad.y, &loss) == 3, "label");
  bad = *b;
  bad.x[0] = NAN;
  CHECK(RelSgd_train_step(m, b->n, bad.x, bad.ids, bad.bag, bad.y, &loss) == 4, "NaN");
  bad.x[0] = INFINITY;
  CHECK(RelSgd_forward(m, b->n, bad.x, bad.ids, bad.bag, out) == 4, "Inf");
  CHECK(RelSgd_set_lr(m, -1.0) == 2 && RelSgd_set_lr(m, NAN) == 2, "lr");
  float *v;
  int64_t count;
  CHECK(RelSgd_param_values(m, "nope", &v, &count) == 2, "name");
  CHECK(RelSgd_param_values(m, NULL, &v, &count) == 1, "NULL name");
  char path[8192];
  snprintf(path, sizeof(path), "%s/no-such-dir/x.st", dir);
  CHECK(RelSgd_save(m, path) == 5, "save to a missing directory");
  CHECK(RelSgd_load(m, path) == 5, "load of a missing file");
  /* Truncated copies of a valid checkpoint. */
  FILE *f = fopen(ckpt, "rb");
  CHECK(f != NULL, "open %s", ckpt);
  if (f) {
    static __thread unsigned char data[1 << 16];
    size_t n = fread(data, 1, sizeof(data), f);
    CHECK(feof(f), "checkpoint larger than the buffer");
    fclose(f);
    snprintf(path, sizeof(path), "%s.trunc", ckpt);
    for (size_t cut = 0; cut < n; cut += 1 + cut / 8) {
      FILE *g = fopen(path, "wb");
      fwrite(data, 1, cut, g);
      fclose(g);
      CHECK(RelSgd_load(m, path) == 6, "truncated at %zu: %s", cut, RelSgd_last_error());
    }
    remove(path);
  }
  CHECK(state_hash(m) == before, "a user error changed the instance");
}

typedef struct {
  uint64_t seed;
  uint64_t hash;
  float losses[STEPS];
} job_t;

static void *run_job(void *arg) {
  job_t *j = (job_t *)arg;
  RelSgd *m = NULL;
  CHECK(RelSgd_create(j->seed, &m) == 0, "create: %s", RelSgd_last_error());
  char ckpt[4096];
  snprintf(ckpt, sizeof(ckpt), "%s/job%llu.st", dir, (unsigned long long)j->seed);
  batch_t b;
  float out[MAXB * OUT];
  for (int s = 0; s < STEPS; ++s) {
    make_batch(&b, j->seed, s);
    CHECK(RelSgd_train_step(m, b.n, b.x, b.ids, b.bag, b.y, &j->losses[s]) == 0, "step: %s",
          RelSgd_last_error());
    CHECK(RelSgd_forward(m, b.n, b.x, b.ids, b.bag, out) == 0, "forward: %s",
          RelSgd_last_error());
    if (s % 10 == 5) {
      /* Save, reload into a fresh instance, continue with that one. */
      CHECK(RelSgd_save(m, ckpt) == 0, "save: %s", RelSgd_last_error());
      RelSgd *fresh = NULL;
      CHECK(RelSgd_create(j->seed + 1000, &fresh) == 0, "create");
      CHECK(RelSgd_load(fresh, ckpt) == 0, "load: %s", RelSgd_last_error());
      CHECK(state_hash(fresh) == state_hash(m), "round trip");
      RelSgd_destroy(m);
      m = fresh;
      user_errors(m, &b, ckpt);
    }
  }
  j->hash = state_hash(m);
  RelSgd_destroy(m);
  remove(ckpt);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  /* Create/destroy cycles and NULL. */
  for (uint64_t s = 0; s < 200; ++s) {
    RelSgd *m = NULL;
    CHECK(RelSgd_create(s * 7919, &m) == 0, "create %llu", (unsigned long long)s);
    RelSgd_destroy(m);
  }
  RelSgd_destroy(NULL);
  CHECK(RelSgd_create(1, NULL) == 1, "create(NULL)");

  job_t seq[THREADS], par[THREADS];
  for (int t = 0; t < THREADS; ++t) {
    seq[t].seed = par[t].seed = 10 + (uint64_t)t;
    run_job(&seq[t]);
  }
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; ++t)
    CHECK(pthread_create(&th[t], NULL, run_job, &par[t]) == 0, "pthread_create");
  for (int t = 0; t < THREADS; ++t)
    pthread_join(th[t], NULL);
  for (int t = 0; t < THREADS; ++t) {
    CHECK(seq[t].hash == par[t].hash, "thread %d: state differs from the sequential run", t);
    CHECK(memcmp(seq[t].losses, par[t].losses, sizeof(seq[t].losses)) == 0,
          "thread %d: losses differ from the sequential run", t);
  }
  if (failures) {
    fprintf(stderr, "abi_stress: %d checks failed\n", failures);
    return 1;
  }
  printf("abi_stress: all checks passed (%d threads x %d steps)\n", THREADS, STEPS);
  return 0;
}
