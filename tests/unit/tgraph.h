/* tgraph.h - small hand-built IR graphs run by the reference interpreter,
 * for op tests.
 *
 * Token t of the input is t itself, so embed(tokens, TABLE) makes row t of
 * a value equal to row t of a table the test writes: a way to feed chosen
 * rows to any op.  Weights are passed in the order they are created. */
#ifndef HSAC_TESTS_TGRAPH_H
#define HSAC_TESTS_TGRAPH_H

#include <stdint.h>

#include "runtime/interp.h"
#include "testutil.h"

enum { TG_MAX_WEIGHTS = 64, TG_MAX_TOKENS = 2048 };

typedef struct tg {
  ut_arena arena;
  ut_diags d;
  ir_graph *g;
  const float *w[TG_MAX_WEIGHTS];
  int nw;
  rt_exec x;
} tg;

void tg_init(tg *t);
/* A weight of the given constant shape holding `data` (not copied). */
ir_value *tg_weight(tg *t, const char *name, int rank, const int64_t *dims,
                    const float *data);
/* Rows of `table` ([L, n]) as a value of shape [L, n] (L symbolic). */
ir_value *tg_rows(tg *t, const char *name, int64_t L, int64_t n, const float *table);
/* tg_rows split into heads: [L, heads, n / heads]. */
ir_value *tg_heads(tg *t, const char *name, int64_t L, int64_t heads, int64_t n,
                   const float *table);
/* Appends an op; returns its result number `result`. */
ir_value *tg_op(tg *t, ir_opcode c, int nin, ir_value **in, int na, ir_attr *a, int result);
/* Finishes the graph with `out` as its output and runs tokens 0..L-1 in
 * one segment. */
void tg_run(tg *t, ir_value *out, int64_t L);
/* Row r of a value after tg_run (a row of the last segment run). */
const float *tg_row(tg *t, ir_value *v, int64_t r);
/* After tg_run: reruns tokens 0..L-1 once in one segment and once in
 * segments of `seg` tokens, and returns the largest difference between the
 * two runs over every row of `v` (its rows must have a fixed width; i32
 * values compare as integers).  Afterwards the rows of the last segment
 * are the ones tg_row sees. */
double tg_segment_diff(tg *t, ir_value *v, int64_t L, int64_t seg);
void tg_free(tg *t);

#endif
