/* pool.h - the runtime's thread pool: splits a compiled kernel's iteration
 * space (token blocks, heads, chunks) over a fixed set of threads.
 *
 * Every name starts with rt_pool_.  A pool owns nthreads-1 worker threads;
 * the thread that calls rt_pool_run does its share of the work as well, so a
 * pool of one thread has no workers and runs everything inline.  Idle workers
 * sleep on a condition variable: a pool costs no CPU between runs.
 *
 * Typical use:
 *
 *   rt_pool *p = rt_pool_create(0);            // one thread per online CPU
 *   float *scratch = calloc(rt_pool_threads(p) * SCRATCH, sizeof *scratch);
 *   rt_pool_run(p, n_heads, 1, head_kernel, &args);
 *   ...
 *   rt_pool_free(p);
 *
 * where head_kernel(ctx, begin, end, thread) handles heads [begin, end) and
 * may use scratch + thread * SCRATCH without locking. */
#ifndef HSAC_RUNTIME_POOL_H
#define HSAC_RUNTIME_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most threads a pool will have; larger requests are capped. */
#define RT_POOL_MAX_THREADS 256

typedef struct rt_pool rt_pool;

/* Handles items [begin, end) on behalf of `thread`, an index in
 * [0, rt_pool_threads(p)) that no other concurrently running call of the same
 * rt_pool_run shares, so it can select per-thread scratch. */
typedef void (*rt_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* A pool of `nthreads` threads (nthreads <= 0: the number of online CPUs, at
 * least 1; capped at RT_POOL_MAX_THREADS).  Starts nthreads-1 workers; the
 * caller of rt_pool_run is the remaining one.  Returns NULL when memory or
 * thread creation fails, with everything already started undone. */
rt_pool *rt_pool_create(int nthreads);
/* The thread count rt_pool_create(0) uses: the online CPUs. */
int rt_pool_default_threads(void);

/* Stops and joins the workers and frees the pool.  NULL is fine.  No run may
 * be in progress. */
void rt_pool_free(rt_pool *p);

/* The number of threads that share a run, the caller included; 1 for NULL. */
int rt_pool_threads(const rt_pool *p);

/* Calls fn(ctx, begin, end, thread) over contiguous ranges that cover [0, n)
 * exactly once, each range at least `grain` items (grain <= 0 means 1), and
 * returns when all of them are done; everything fn wrote is then visible to
 * the caller.
 *
 * When n allows no more ranges of `grain` items than there are threads, n is
 * split evenly into that many ranges (at most one per thread); otherwise into
 * a few ranges per thread, handed out one at a time so uneven work balances.
 * The caller runs ranges as thread 0.  A worker that is slow to wake simply
 * gets fewer ranges (possibly none), so which thread runs which range is not
 * fixed.
 *
 * With p == NULL, a pool of one thread, or n <= grain, this is the inline
 * call fn(ctx, 0, n, 0).  n <= 0 does nothing.
 *
 * Not reentrant: fn must not call rt_pool_run on the same pool (it would
 * deadlock).  Calls from different threads on one pool are serialized. */
void rt_pool_run(rt_pool *p, int64_t n, int64_t grain, rt_pool_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
