/* bench_ir.h - what the kernel benchmarks (cpu_kernels.c, gpu_kernels.c)
 * share: a clock, a fatal error, one op built in a graph of its own, the
 * same pseudo-random numbers, and the HSA layer's chunk selection, so the
 * two measure the same work. */
#ifndef HSAC_BENCH_BENCH_IR_H
#define HSAC_BENCH_BENCH_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ir/ir.h"
#include "util/arena.h"
#include "util/diag.h"

static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void die(const char *what, const char *msg) {
  fprintf(stderr, "%s: %s: %s\n", BENCH_NAME, what, msg);
  exit(1);
}

/* One op in a graph of its own. */
typedef struct one {
  ut_arena arena;
  ut_diags d;
  ir_graph *g;
} one;

static inline void one_init(one *o) {
  ut_arena_init(&o->arena);
  ut_diags_init(&o->d, &o->arena);
  o->g = ir_graph_new(&o->arena, "bench");
}

static inline ir_value *val(one *o, const char *name, int rank, const ir_dim *dims,
                            ir_dtype dt) {
  ir_type t = {dt, rank, {{0}}};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return ir_weight(o->g, name, t);
}

static inline ir_op *emit_op(one *o, ir_opcode c, ir_value **in, int nin, ir_attr *a, int na) {
  ir_op *op = ir_emit(o->g, &o->d, c, in, nin, a, na);
  if (!op) die(ir_ops[c].name, "cannot build the op");
  return op;
}

/* The benchmarks' 64-bit LCG step (Knuth's MMIX constants). */
static inline uint64_t lcg_next(uint64_t r) {
  return r * 6364136223846793005ull + 1442695040888963407ull;
}

/* n floats uniform in [-0.5, 0.5), the same for the same seed. */
static inline float *randbuf(size_t n, uint64_t seed) {
  /* on a cache line, as the runtime's tensors are */
  float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64);
  if (!p) die("malloc", "out of memory");
  for (size_t i = 0; i < n; i++) {
    seed = lcg_next(seed);
    p[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5);
  }
  return p;
}

/* The HSA layer's selection for query positions t0 .. t0+n-1 of chunks of
 * S tokens: K chunk indices each, drawn with replacement from the
 * eligible chunks (those before the query's own) by a 64-bit LCG seeded
 * 99, -1 where none is eligible; weights 0.1. */
static inline void hsa_selection(int64_t t0, int64_t n, int64_t S, int K, int32_t *sel,
                                 float *wt) {
  uint64_t r = 99;
  for (int64_t t = 0; t < n; t++) {
    int64_t own = (t0 + t) / S;
    for (int k = 0; k < K; k++) {
      r = lcg_next(r);
      sel[t * K + k] = own > 0 ? (int32_t)((r >> 33) % (uint64_t)own) : -1;
      wt[t * K + k] = 0.1f;
    }
  }
}

/* Clustered selections, as a trained model's: neighbouring tokens select
 * mostly the same chunks.  Slot k of token t keeps token t-1's chunk with
 * probability HSA_KEEP_PERMILLE / 1000, else draws a new one as
 * hsa_selection does (same LCG, seeded 99: one draw decides keeping, a
 * second one the new chunk).  925 gives blocks of 16 tokens 2.1 distinct
 * chunks per slot (1 + 15 x 0.075), a reuse of 7.5x: the low end of what
 * tools/torch/selection_reuse.py measured for the shipped trained models
 * (7.3-13x at 2K-32K tokens, bench/RESULTS.md). */
enum { HSA_KEEP_PERMILLE = 925 };
static inline void hsa_selection_clustered(int64_t t0, int64_t n, int64_t S, int K,
                                           int32_t *sel, float *wt) {
  uint64_t r = 99;
  for (int64_t t = 0; t < n; t++) {
    int64_t own = (t0 + t) / S;
    for (int k = 0; k < K; k++) {
      int32_t prev = t > 0 ? sel[(t - 1) * K + k] : -1;
      r = lcg_next(r);
      bool keep = prev >= 0 && (r >> 33) % 1000 < HSA_KEEP_PERMILLE;
      if (!keep && own > 0) r = lcg_next(r);
      sel[t * K + k] = keep ? prev : own > 0 ? (int32_t)((r >> 33) % (uint64_t)own) : -1;
      wt[t * K + k] = 0.1f;
    }
  }
}

#endif
