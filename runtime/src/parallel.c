/*===- parallel.c - The thread pool of the generated kernels --------------===*
 *
 * sparsec_parallel_for, called by the kernels where sparsec-outline-parallel
 * replaced an `scf.parallel` (the CSR kernels' rows or batch blocks). A
 * fixed pool of SPARSEC_NUM_THREADS - 1 workers (default: the online CPUs,
 * at most 64) is started on the first call; the caller works on the call
 * too. [0, n) is cut into up to 8 contiguous chunks per thread, which the
 * threads claim one at a time (a thread the OS does not run for a while
 * delays the call by one chunk at most, not by its share); the kernels give
 * every output element to one iteration, so results do not depend on which
 * thread runs a chunk or on the number of threads. A call that finds the pool
 * busy (kernels called from several application threads at once, or a
 * nested call) runs on its own thread. Idle workers and a caller waiting for
 * the last chunk poll for a short while before they sleep on a condition
 * variable (kSpins). The workers are stopped and joined when the library is
 * unloaded; a forked child runs every call on its own thread. Only libc's
 * pthreads and C11 atomics; no OpenMP.
 *
 * Chunks are claimed without a lock: a call is published as one 64-bit
 * ticket (generation, number of chunks, next chunk), and a thread claims a
 * chunk with one fetch-add on it. A claim whose index is below the ticket's
 * chunk count owns that chunk of that generation (the call cannot end before
 * the chunk is done, so its function and range stay put); any other claim
 * changes nothing. The mutex and condition variables are only used to sleep
 * and wake: a sleeper announces itself in a counter before its last look at
 * the ticket or the finished count, and the other side, which changes that
 * value first, takes the mutex to wake it only when the counter is set.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { kMaxThreads = 64, kChunksPerThread = 8 };

/* Polls (with a pause) before a thread sleeps on a condition variable: a
 * worker waiting for the next call and a caller waiting for the last chunk
 * poll about 50 us, so the back-to-back calls of one kernel do not pay a
 * futex wake-up each. */
enum { kSpins = 2000 };

/* The ticket: generation << 32 | chunks << 16 | next chunk. At most
 * kMaxThreads * kChunksPerThread chunks, and every thread makes at most one
 * claim past the last, so `next` never carries into `chunks`. */
enum { kChunkBits = 16 };
#define TICKET_GEN(t) ((uint32_t)((t) >> 32))
#define TICKET_CHUNKS(t) ((int64_t)(((t) >> kChunkBits) & 0xffff))
#define TICKET_NEXT(t) ((int64_t)((t)&0xffff))

static void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

typedef struct pool {
  pthread_mutex_t busy; /* held by the caller of a parallel call */
  pthread_mutex_t lock; /* guards sleeping and waking */
  pthread_cond_t start, done;
  int threads; /* workers + 1 */
  int started; /* workers actually running */
  atomic_int stop;
  /* The current call: written by its caller before the ticket is published,
   * read by whoever claims one of its chunks. */
  sparsec__chunk_fn fn;
  void *ctx;
  int64_t n;
  /* Written by every claim and every finished chunk: a cache line of their
   * own, away from the fields above that the claimers read. */
  _Alignas(64) _Atomic uint64_t ticket;
  atomic_int_fast64_t finished; /* chunks of the current call done */
  atomic_int idle_workers;      /* workers asleep or about to sleep */
  atomic_int caller_waiting;    /* the caller is asleep or about to sleep */
  _Alignas(64) pthread_t ids[kMaxThreads];
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

/* Claims and runs chunks until a claim finds none left; returns the
 * generation of that last claim. */
static uint32_t run_chunks(pool *p) {
  for (;;) {
    uint64_t t = atomic_fetch_add_explicit(&p->ticket, 1, memory_order_acq_rel);
    int64_t c = TICKET_NEXT(t), chunks = TICKET_CHUNKS(t);
    if (c >= chunks)
      return TICKET_GEN(t);
    int64_t lo = p->n * c / chunks, hi = p->n * (c + 1) / chunks;
    p->fn(p->ctx, lo, hi);
    if (atomic_fetch_add(&p->finished, 1) + 1 == chunks &&
        atomic_load(&p->caller_waiting)) {
      pthread_mutex_lock(&p->lock);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->lock);
    }
  }
}

/* Whether the ticket holds chunks of a generation other than `seen`. */
static int has_work(uint64_t t, uint32_t seen) {
  return TICKET_GEN(t) != seen && TICKET_NEXT(t) < TICKET_CHUNKS(t);
}

static void *worker(void *arg) {
  pool *p = &g_pool;
  uint32_t seen = 0;
  (void)arg;
  for (;;) {
    for (int i = 0; i < kSpins && !atomic_load_explicit(&p->stop, memory_order_relaxed) &&
                    !has_work(atomic_load_explicit(&p->ticket, memory_order_relaxed), seen);
         ++i)
      spin_pause();
    if (!has_work(atomic_load(&p->ticket), seen) && !atomic_load(&p->stop)) {
      pthread_mutex_lock(&p->lock);
      atomic_fetch_add(&p->idle_workers, 1);
      while (!atomic_load(&p->stop) && !has_work(atomic_load(&p->ticket), seen))
        pthread_cond_wait(&p->start, &p->lock);
      atomic_fetch_sub(&p->idle_workers, 1);
      pthread_mutex_unlock(&p->lock);
    }
    if (atomic_load(&p->stop))
      return NULL;
    seen = run_chunks(p);
  }
}

/* A forked child has none of the workers: it runs every call itself. */
static void pool_after_fork(void) {
  pool *p = &g_pool;
  pthread_mutex_init(&p->busy, NULL);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_store(&p->idle_workers, 0);
  atomic_store(&p->caller_waiting, 0);
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
  atomic_store(&p->stop, 1);
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
  if (n < chunks)
    chunks = n;
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
  uint32_t gen = TICKET_GEN(atomic_load_explicit(&p->ticket, memory_order_relaxed)) + 1;
  atomic_store(&p->ticket, (uint64_t)gen << 32 | (uint64_t)chunks << kChunkBits);
  if (atomic_load(&p->idle_workers) > 0) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
  }
  run_chunks(p);
  for (int i = 0; i < kSpins && atomic_load_explicit(&p->finished, memory_order_acquire) < chunks;
       ++i)
    spin_pause();
  if (atomic_load(&p->finished) < chunks) {
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->finished) < chunks)
      pthread_cond_wait(&p->done, &p->lock);
    atomic_store(&p->caller_waiting, 0);
    pthread_mutex_unlock(&p->lock);
  }
  pthread_mutex_unlock(&p->busy);
}
