/* pool.c - the runtime's thread pool (see pool.h).
 *
 * Protocol.  All shared state except the range counter is guarded by `mu`
 * (the polls below read two fields unlocked, but only as a hint).
 *  - A run publishes its job, resets the range counter and bumps
 *    `generation`; workers sleep on `start_cv` until the generation differs
 *    from the last one they saw.
 *  - A worker that picks up a generation counts itself in `busy` (under mu)
 *    before it takes any range, copies the job, and takes ranges from the
 *    atomic counter until none is left; then it counts itself out and
 *    signals `done_cv` when it was the last.
 *  - The caller takes ranges too.  When the counter is exhausted every range
 *    has been taken by the caller or by a thread counted in `busy`, so
 *    waiting for busy == 0 waits exactly for the ranges still running, never
 *    for a worker that has not woken up yet (on a loaded machine that one
 *    may be descheduled for a long time; it finds no work when it wakes).
 *  - A worker that wakes late may still hold the previous job while it
 *    touches the counter, so a run also waits for busy == 0 before it
 *    resets the counter.
 * Mutex hand-offs order everything fn writes before rt_pool_run returns.
 *
 * Idle workers block in pthread_cond_wait.  Waking a sleeping thread costs
 * tens of microseconds on a virtual machine, paid twice per run (start and
 * completion), so a worker that finishes a run and a caller that waits for
 * the last range first poll for RT_POOL_SPIN_NS; back-to-back kernel launches
 * then hand over without sleeping.  The poll is only a hint: the decision is
 * always taken again under mu.  200 us: a model's kernels follow each other
 * within microseconds, and on the 2-vCPU VMs this was measured on a worker
 * woken from sleep sometimes arrived after the caller had run every range of
 * a 0.2 ms GEMM itself (a 2-thread GEMM then ran at 1-thread speed); the
 * cost is at most 0.2 ms of one core after the last kernel. */
#include "runtime/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* How long a thread polls before it sleeps (0: never).  On a 2-vCPU VM,
 * 10us made back-to-back runs of ~0.3ms about 20% faster (most of the gain;
 * longer polls added nothing), and made no difference with a CPU hog on the
 * other core.  A pool burns at most this much CPU per thread per run. */
#ifndef RT_POOL_SPIN_NS
#define RT_POOL_SPIN_NS 200000
#endif

/* What one run asks for; workers copy it under the mutex. */
typedef struct rt_pool_job {
  rt_pool_fn fn;
  void *ctx;
  int64_t nranges;  /* ranges [0, nranges) */
  int64_t size;     /* every range has `size` items ... */
  int64_t extra;    /* ... and the first `extra` ranges one more */
} rt_pool_job;

typedef struct rt_pool_worker {
  pthread_t tid;
  rt_pool *pool;
  int id;           /* the `thread` argument fn receives, 1..nthreads-1 */
} rt_pool_worker;

struct rt_pool {
  int nthreads;
  int nworkers;     /* started workers, nthreads-1 once created */
  rt_pool_worker *workers;

  pthread_mutex_t run_mu;  /* serializes rt_pool_run calls */
  pthread_mutex_t mu;
  pthread_cond_t start_cv; /* generation changed or stop set */
  pthread_cond_t done_cv;  /* busy dropped to 0 */
  /* Written under mu; atomic only so the polls may read them unlocked. */
  _Atomic uint64_t generation;
  _Atomic int busy;        /* workers inside the current generation */
  bool stop;
  rt_pool_job job;

  /* Every thread hits the counter once per range: keep it off the cache
   * line of the fields above (padding rather than alignas, which calloc
   * would not honour). */
  char pad0[64];
  _Atomic int64_t next;    /* the next range to hand out */
  char pad1[64];
};

static void rt_pool_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static int64_t rt_pool_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Polls, for at most RT_POOL_SPIN_NS, until a generation other than `seen`
 * starts (want_idle false) or until no worker is busy (want_idle true).
 * The clock is read once per 16 polls: it costs about as much as a poll. */
static void rt_pool_poll(rt_pool *p, bool want_idle, uint64_t seen) {
  if (RT_POOL_SPIN_NS <= 0) return;
  int64_t deadline = rt_pool_now_ns() + RT_POOL_SPIN_NS;
  do {
    for (int i = 0; i < 16; i++) {
      if (want_idle ? atomic_load_explicit(&p->busy, memory_order_relaxed) == 0
                    : atomic_load_explicit(&p->generation, memory_order_relaxed) != seen)
        return;
      rt_pool_cpu_relax();
    }
  } while (rt_pool_now_ns() < deadline);
}

static void rt_pool_run_ranges(rt_pool *p, const rt_pool_job *job, int thread) {
  for (;;) {
    /* Relaxed suffices: the job was published under mu, and completion is
     * reported under mu. */
    int64_t r = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (r >= job->nranges) return;
    int64_t begin = r * job->size + (r < job->extra ? r : job->extra);
    int64_t end = begin + job->size + (r < job->extra ? 1 : 0);
    job->fn(job->ctx, begin, end, thread);
  }
}

static void *rt_pool_worker_main(void *arg) {
  rt_pool_worker *w = arg;
  rt_pool *p = w->pool;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->generation == seen && !p->stop) pthread_cond_wait(&p->start_cv, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    rt_pool_job job = p->job;
    p->busy++;
    pthread_mutex_unlock(&p->mu);
    rt_pool_run_ranges(p, &job, w->id);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done_cv);
    /* The next run often follows at once: poll before sleeping. */
    pthread_mutex_unlock(&p->mu);
    rt_pool_poll(p, false, seen);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Stops and joins the started workers, then releases everything. */
static void rt_pool_destroy(rt_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->start_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i].tid, NULL);
  pthread_cond_destroy(&p->done_cv);
  pthread_cond_destroy(&p->start_cv);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->run_mu);
  free(p->workers);
  free(p);
}

int rt_pool_default_threads(void) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  return ncpu < 1 ? 1 : ncpu > RT_POOL_MAX_THREADS ? RT_POOL_MAX_THREADS : (int)ncpu;
}

rt_pool *rt_pool_create(int nthreads) {
  if (nthreads <= 0) nthreads = rt_pool_default_threads();
  if (nthreads > RT_POOL_MAX_THREADS) nthreads = RT_POOL_MAX_THREADS;

  rt_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->nthreads = nthreads;
  if (nthreads > 1) {
    p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
    if (!p->workers) {
      free(p);
      return NULL;
    }
  }
  /* Initialize the primitives one by one so a failure undoes exactly the
   * ones that succeeded. */
  if (pthread_mutex_init(&p->run_mu, NULL)) goto fail_run_mu;
  if (pthread_mutex_init(&p->mu, NULL)) goto fail_mu;
  if (pthread_cond_init(&p->start_cv, NULL)) goto fail_start_cv;
  if (pthread_cond_init(&p->done_cv, NULL)) goto fail_done_cv;
  atomic_init(&p->next, 0);

  for (int i = 0; i < nthreads - 1; i++) {
    rt_pool_worker *w = &p->workers[i];
    w->pool = p;
    w->id = i + 1;
    if (pthread_create(&w->tid, NULL, rt_pool_worker_main, w)) {
      rt_pool_destroy(p); /* joins the p->nworkers already started */
      return NULL;
    }
    p->nworkers++;
  }
  return p;

fail_done_cv:
  pthread_cond_destroy(&p->start_cv);
fail_start_cv:
  pthread_mutex_destroy(&p->mu);
fail_mu:
  pthread_mutex_destroy(&p->run_mu);
fail_run_mu:
  free(p->workers);
  free(p);
  return NULL;
}

void rt_pool_free(rt_pool *p) {
  if (p) rt_pool_destroy(p);
}

int rt_pool_threads(const rt_pool *p) { return p ? p->nthreads : 1; }

void rt_pool_run(rt_pool *p, int64_t n, int64_t grain, rt_pool_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain <= 0) grain = 1;
  if (!p || p->nthreads == 1 || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }

  /* Ranges never go below `grain` items: n / grain of them at most.  When
   * that is no more than the threads, one range each; otherwise about four
   * per thread, enough to even out uneven ranges without making the counter
   * a hot spot. */
  int64_t nthreads = p->nthreads;
  int64_t nranges = n / grain;
  int wake; /* workers to wake */
  if (nranges <= nthreads) {
    wake = (int)nranges - 1;
  } else {
    int64_t size = n / (nthreads * 4);
    if (size < grain) size = grain;
    nranges = n / size;
    wake = p->nthreads - 1;
  }
  if (nranges <= 1) {
    fn(ctx, 0, n, 0);
    return;
  }

  pthread_mutex_lock(&p->run_mu);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done_cv, &p->mu);
  p->job = (rt_pool_job){fn, ctx, nranges, n / nranges, n % nranges};
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  p->generation++;
  /* Wake only as many workers as there are ranges to share; a sleeper left
   * out skips this generation. */
  if (wake == p->nthreads - 1) {
    pthread_cond_broadcast(&p->start_cv);
  } else {
    for (int i = 0; i < wake; i++) pthread_cond_signal(&p->start_cv);
  }
  rt_pool_job job = p->job;
  pthread_mutex_unlock(&p->mu);

  rt_pool_run_ranges(p, &job, 0);

  /* The other ranges are usually about to finish: poll before sleeping. */
  rt_pool_poll(p, true, 0);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_unlock(&p->run_mu);
}
