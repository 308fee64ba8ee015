/*===- parallel.c - The thread pool of the generated kernels --------------===*
 *
 * sparsec_parallel_for, called by the kernels where sparsec-outline-parallel
 * replaced an `scf.parallel` (the CSR kernels' rows or batch blocks). A
 * fixed pool of SPARSEC_NUM_THREADS - 1 workers (default: the online CPUs,
 * at most 64) is started on the first call; the caller runs the first range
 * itself. [0, n) is cut into up to 8 contiguous chunks per thread, which
 * the threads claim one at a time (a thread the OS does not run for a while
 * delays the call by one chunk at most, not by its share); the kernels give
 * every output element to one iteration, so results do not depend on which
 * thread runs a chunk or on the number of threads. A call that finds the pool
 *busy (kernels called from several application threads at once) runs on its own
 *thread. Idle workers and a caller waiting for the last chunk poll for a
 *short while before they sleep on a condition variable (kSpins). The
 *workers are stopped and joined when the library is unloaded; a
 *forked child runs every call on its own thread. Only libc's pthreads; no
 *OpenMP.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

enum { kMaxThreads = 64, kChunksPerThread = 8 };

/* Polls (with a pause) before a thread sleeps on a condition variable: a
 * worker waiting for the next call and a caller waiting for the last chunk
 * poll about 50 us, so the back-to-back calls of one kernel do not pay a
 * futex wake-up each. */
enum { kSpins = 2000 };

static void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

typedef struct pool {
  pthread_mutex_t busy; /* held by the caller of a parallel call */
  pthread_mutex_t lock; /* guards the fields below */
  pthread_cond_t start, done;
  int threads; /* workers + 1 */
  int started; /* workers actually running */
  int stop;
  unsigned long generation; /* bumped by every call */
  /* The current call: chunks [next, chunks) are unclaimed, `finished` done. */
  sparsec__chunk_fn fn;
  void *ctx;
  int64_t n;
  int64_t chunks, next, finished;
  pthread_t ids[kMaxThreads];
} pool;

static pool g_pool = {.busy = PTHREAD_MUTEX_INITIALIZER,
                      .lock = PTHREAD_MUTEX_INITIALIZER,
                      .start = PTHREAD_COND_INITIALIZER,
                      .done = PTHREAD_COND_INITIALIZER};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int configured_threads(void) {
  const char *env = getenv("SPARSEC_NUM_THREADS");
  long n = 0;
  if (env && *env) {
    char *end;
    n = strtol(env, &end, 10);
    if (*end != '\0')
      n = 0;
  }
  if (n <= 0)
    n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    n = 1;
  return n > kMaxThreads ? kMaxThreads : (int)n;
}

/* Runs unclaimed chunks of call `gen` until none is left; called and
 * returns with p->lock held. */
static void run_chunks(pool *p, unsigned long gen) {
  while (p->generation == gen && p->next < p->chunks) {
    int64_t c = p->next++;
    sparsec__chunk_fn fn = p->fn;
    void *ctx = p->ctx;
    int64_t lo = p->n * c / p->chunks, hi = p->n * (c + 1) / p->chunks;
    pthread_mutex_unlock(&p->lock);
    fn(ctx, lo, hi);
    pthread_mutex_lock(&p->lock);
    int64_t finished = p->finished + 1;
    __atomic_store_n(&p->finished, finished, __ATOMIC_RELEASE);
    if (finished == p->chunks)
      pthread_cond_signal(&p->done);
  }
}

static void *worker(void *arg) {
  pool *p = &g_pool;
  unsigned long seen = 0;
  (void)arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    if (!p->stop && p->generation == seen) {
      pthread_mutex_unlock(&p->lock);
      for (int i = 0; i < kSpins && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) &&
                      __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen;
           ++i)
        spin_pause();
      pthread_mutex_lock(&p->lock);
    }
    while (!p->stop && p->generation == seen)
      pthread_cond_wait(&p->start, &p->lock);
    if (p->stop)
      break;
    seen = p->generation;
    run_chunks(p, seen);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* A forked child has none of the workers: it runs every call itself. */
static void pool_after_fork(void) {
  pool *p = &g_pool;
  pthread_mutex_init(&p->busy, NULL);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = 1;
  p->started = 0;
}

static void pool_start(void) {
  pool *p = &g_pool;
  int want = configured_threads();
  pthread_atfork(NULL, NULL, pool_after_fork);
  p->threads = 1;
  for (int t = 1; t < want; ++t) {
    if (pthread_create(&p->ids[t], NULL, worker, NULL) != 0)
      break;
    p->threads = t + 1;
  }
  p->started = p->threads - 1;
}

__attribute__((destructor)) static void pool_stop(void) {
  pool *p = &g_pool;
  pthread_mutex_lock(&p->lock);
  __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->start);
  int started = p->started;
  pthread_mutex_unlock(&p->lock);
  for (int t = 1; t <= started; ++t)
    pthread_join(p->ids[t], NULL);
  p->started = 0;
}

int sparsec__num_threads(void) {
  pthread_once(&g_once, pool_start);
  return g_pool.threads;
}

void sparsec_parallel_for(sparsec__chunk_fn fn, void *ctx, int64_t n) {
  if (n <= 0)
    return;
  pool *p = &g_pool;
  int threads = sparsec__num_threads();
  if (threads <= 1 || n == 1 || pthread_mutex_trylock(&p->busy) != 0) {
    fn(ctx, 0, n);
    return;
  }
  int64_t chunks = (int64_t)threads * kChunksPerThread;
  pthread_mutex_lock(&p->lock);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->chunks = n < chunks ? n : chunks;
  p->next = 0;
  __atomic_store_n(&p->finished, 0, __ATOMIC_RELEASE);
  unsigned long gen = p->generation + 1;
  __atomic_store_n(&p->generation, gen, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->start);
  run_chunks(p, gen);
  if (p->finished < p->chunks) {
    int64_t chunks = p->chunks;
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < kSpins && __atomic_load_n(&p->finished, __ATOMIC_ACQUIRE) < chunks; ++i)
      spin_pause();
    pthread_mutex_lock(&p->lock);
  }
  while (p->finished < p->chunks)
    pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
  pthread_mutex_unlock(&p->busy);
}
