/* test_pool.c - the runtime's thread pool (runtime/pool.c).
 *
 * Range callbacks run on worker threads, where CUnit's assertions are not
 * safe to call: they record what they saw in atomics, and the test thread
 * asserts on that afterwards. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/pool.h"

void tu_add_pool_suite(void);

/* What a run saw, filled in by check_fn from every thread. */
typedef struct cover {
  atomic_int *visits;       /* per index */
  int64_t n, grain;
  int threads;
  atomic_int *busy;         /* per thread id: a range is running on it */
  atomic_int calls;         /* ranges */
  atomic_int bad_range;     /* empty, outside [0, n) or under grain */
  atomic_int bad_thread;    /* thread id outside [0, threads) */
  atomic_int shared_thread; /* two ranges ran at once with one thread id */
  bool yield;               /* give up the CPU inside ranges, so they overlap */
} cover;

static void check_fn(void *vctx, int64_t begin, int64_t end, int thread) {
  cover *c = vctx;
  atomic_fetch_add(&c->calls, 1);
  if (thread < 0 || thread >= c->threads) {
    atomic_fetch_add(&c->bad_thread, 1);
    thread = -1;
  }
  if (thread >= 0 && atomic_exchange(&c->busy[thread], 1) != 0)
    atomic_fetch_add(&c->shared_thread, 1);
  /* A range is at least `grain` items unless it is the whole of [0, n). */
  if (begin < 0 || end > c->n || begin >= end ||
      (end - begin < c->grain && !(begin == 0 && end == c->n)))
    atomic_fetch_add(&c->bad_range, 1);
  for (int64_t i = begin; i < end && i >= 0 && i < c->n; i++) atomic_fetch_add(&c->visits[i], 1);
  if (c->yield) sched_yield();
  if (thread >= 0) atomic_store(&c->busy[thread], 0);
}

/* Runs check_fn over n items and asserts on what it saw; returns the number
 * of ranges. */
static int run_and_check(rt_pool *p, int64_t n, int64_t grain, bool yield) {
  cover c = {.n = n, .grain = grain <= 0 ? 1 : grain, .threads = rt_pool_threads(p),
             .yield = yield};
  c.visits = calloc(n > 0 ? (size_t)n : 1, sizeof *c.visits);
  c.busy = calloc((size_t)c.threads, sizeof *c.busy);
  CU_ASSERT_FATAL(c.visits && c.busy);
  rt_pool_run(p, n, grain, check_fn, &c);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; i++) wrong += atomic_load(&c.visits[i]) != 1;
  CU_ASSERT_EQUAL(wrong, 0);
  CU_ASSERT_EQUAL(atomic_load(&c.bad_range), 0);
  CU_ASSERT_EQUAL(atomic_load(&c.bad_thread), 0);
  CU_ASSERT_EQUAL(atomic_load(&c.shared_thread), 0);
  if (n <= 0) CU_ASSERT_EQUAL(atomic_load(&c.calls), 0);
  free(c.visits);
  free(c.busy);
  return atomic_load(&c.calls);
}

static void test_every_index_once(void) {
  static const int threads[] = {1, 2, 3, 4, 8};
  static const int64_t ns[] = {0, 1, 2, 3, 5, 7, 100, 4097, 100000};
  static const int64_t grains[] = {0, 1, 3, 1000};
  for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
    rt_pool *p = rt_pool_create(threads[t]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(rt_pool_threads(p), threads[t]);
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
      for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
        run_and_check(p, ns[i], grains[g], false);
    rt_pool_free(p);
  }
}

static void test_range_counts(void) {
  rt_pool *p = rt_pool_create(4);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* n <= grain, or too small for two ranges of `grain`: one inline call. */
  CU_ASSERT_EQUAL(run_and_check(p, 1, 1, false), 1);
  CU_ASSERT_EQUAL(run_and_check(p, 10, 10, false), 1);
  CU_ASSERT_EQUAL(run_and_check(p, 19, 10, false), 1);
  /* Small n: at most one range per thread. */
  CU_ASSERT_EQUAL(run_and_check(p, 3, 1, false), 3);
  CU_ASSERT_EQUAL(run_and_check(p, 4, 1, false), 4);
  CU_ASSERT_EQUAL(run_and_check(p, 35, 10, false), 3);
  /* Large n: several ranges per thread, never below the grain. */
  int calls = run_and_check(p, 100000, 1, false);
  CU_ASSERT(calls > 4 && calls <= 100000 / 1000);
  CU_ASSERT_EQUAL(run_and_check(p, 5000, 1000, false), 5);
  rt_pool_free(p);
}

static void test_thread_ids_distinct(void) {
  /* More threads than CPUs and yields inside ranges make ranges overlap. */
  rt_pool *p = rt_pool_create(6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (int rep = 0; rep < 50; rep++) {
    run_and_check(p, 6, 1, true);
    run_and_check(p, 1000, 1, true);
    run_and_check(p, 1000, 7, true);
  }
  rt_pool_free(p);
}

typedef struct tiny {
  atomic_long sum;
} tiny;

static void tiny_fn(void *vctx, int64_t begin, int64_t end, int thread) {
  (void)thread;
  tiny *t = vctx;
  for (int64_t i = begin; i < end; i++) atomic_fetch_add_explicit(&t->sum, i + 1, memory_order_relaxed);
}

static void test_many_tiny_runs(void) {
  /* A lost wakeup or a miscounted completion hangs or mis-sums here. */
  rt_pool *p = rt_pool_create(4);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  long bad = 0;
  for (int rep = 0; rep < 10000; rep++) {
    tiny t = {0};
    int64_t n = 2 + rep % 7; /* 2..8: some runs wake every worker, some fewer */
    rt_pool_run(p, n, 1, tiny_fn, &t);
    bad += atomic_load(&t.sum) != n * (n + 1) / 2;
  }
  CU_ASSERT_EQUAL(bad, 0);
  rt_pool_free(p);
}

typedef struct inline_seen {
  int calls;
  int64_t begin, end;
  int thread;
  pthread_t self;
} inline_seen;

static void inline_fn(void *vctx, int64_t begin, int64_t end, int thread) {
  inline_seen *s = vctx;
  s->calls++;
  s->begin = begin;
  s->end = end;
  s->thread = thread;
  s->self = pthread_self();
}

static void test_inline_runs(void) {
  CU_ASSERT_EQUAL(rt_pool_threads(NULL), 1);
  rt_pool *one = rt_pool_create(1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(one);
  CU_ASSERT_EQUAL(rt_pool_threads(one), 1);
  rt_pool *four = rt_pool_create(4);
  CU_ASSERT_PTR_NOT_NULL_FATAL(four);
  struct {
    rt_pool *p;
    int64_t n, grain;
  } cases[] = {{NULL, 1000, 1}, {one, 1000, 1}, {four, 50, 50}, {four, 50, 100}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    inline_seen s = {0};
    rt_pool_run(cases[i].p, cases[i].n, cases[i].grain, inline_fn, &s);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT_EQUAL(s.begin, 0);
    CU_ASSERT_EQUAL(s.end, cases[i].n);
    CU_ASSERT_EQUAL(s.thread, 0);
    CU_ASSERT(pthread_equal(s.self, pthread_self()));
  }
  /* n <= 0 calls nothing, even inline. */
  inline_seen s = {0};
  rt_pool_run(NULL, 0, 1, inline_fn, &s);
  rt_pool_run(four, -5, 1, inline_fn, &s);
  CU_ASSERT_EQUAL(s.calls, 0);
  rt_pool_free(one);
  rt_pool_free(four);
}

static void test_create_free(void) {
  rt_pool_free(NULL);
  for (int t = 1; t <= 8; t++) rt_pool_free(rt_pool_create(t));
  rt_pool *p = rt_pool_create(0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  CU_ASSERT_EQUAL(rt_pool_threads(p), ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
  rt_pool_free(p);
  p = rt_pool_create(-3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT(rt_pool_threads(p) >= 1);
  rt_pool_free(p);
  /* Capped; and a pool that large still works. */
  p = rt_pool_create(100000);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL(rt_pool_threads(p), RT_POOL_MAX_THREADS);
  run_and_check(p, 300, 1, false);
  run_and_check(p, 100000, 1, false);
  rt_pool_free(p);
}

typedef struct reduce {
  const int32_t *x;
  int64_t *partial; /* one slot per thread id */
} reduce;

static void reduce_fn(void *vctx, int64_t begin, int64_t end, int thread) {
  reduce *r = vctx;
  int64_t s = 0;
  for (int64_t i = begin; i < end; i++) s += r->x[i];
  r->partial[thread] += s; /* no lock: the slot is this thread's alone */
}

static void test_reduction(void) {
  enum { N = 1000003 };
  int32_t *x = malloc(N * sizeof *x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  uint32_t state = 12345;
  int64_t serial = 0;
  for (int64_t i = 0; i < N; i++) {
    state = state * 1664525u + 1013904223u;
    x[i] = (int32_t)(state >> 8) - (1 << 23);
    serial += x[i];
  }
  static const int threads[] = {1, 2, 3, 5};
  static const int64_t grains[] = {1, 64, 1000, 400000};
  for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
    rt_pool *p = rt_pool_create(threads[t]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
      int64_t *partial = calloc((size_t)rt_pool_threads(p), sizeof *partial);
      CU_ASSERT_PTR_NOT_NULL_FATAL(partial);
      reduce r = {x, partial};
      rt_pool_run(p, N, grains[g], reduce_fn, &r);
      int64_t sum = 0;
      for (int i = 0; i < rt_pool_threads(p); i++) sum += partial[i];
      CU_ASSERT_EQUAL(sum, serial);
      free(partial);
    }
    rt_pool_free(p);
  }
  free(x);
}

/* Two threads share one pool: their runs are serialized, not mixed. */
typedef struct sharer {
  rt_pool *p;
  long bad;
} sharer;

static void *sharer_main(void *arg) {
  sharer *s = arg;
  for (int rep = 0; rep < 500; rep++) {
    tiny t = {0};
    int64_t n = 1 + rep % 200;
    rt_pool_run(s->p, n, 1, tiny_fn, &t);
    s->bad += atomic_load(&t.sum) != n * (n + 1) / 2;
  }
  return NULL;
}

static void test_concurrent_callers(void) {
  rt_pool *p = rt_pool_create(3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  sharer s[2] = {{p, 0}, {p, 0}};
  pthread_t tid[2];
  for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, sharer_main, &s[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(tid[i], NULL);
  CU_ASSERT_EQUAL(s[0].bad + s[1].bad, 0);
  rt_pool_free(p);
}

void tu_add_pool_suite(void) {
  CU_pSuite s = CU_add_suite("pool", NULL, NULL);
  CU_add_test(s, "every index visited exactly once", test_every_index_once);
  CU_add_test(s, "range counts and grain", test_range_counts);
  CU_add_test(s, "concurrent ranges have distinct thread ids", test_thread_ids_distinct);
  CU_add_test(s, "10000 tiny runs complete", test_many_tiny_runs);
  CU_add_test(s, "NULL, one-thread and small runs are inline", test_inline_runs);
  CU_add_test(s, "create and free without a run", test_create_free);
  CU_add_test(s, "per-thread partial sums equal the serial sum", test_reduction);
  CU_add_test(s, "callers on two threads share a pool", test_concurrent_callers);
}
