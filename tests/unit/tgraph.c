/* tgraph.c - small hand-built IR graphs for op tests (see tgraph.h). */
#include "tgraph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_init(tg *t) {
  memset(t, 0, sizeof *t);
  ut_arena_init(&t->arena);
  ut_diags_init(&t->d, &t->arena);
  t->g = ir_graph_new(&t->arena, "t");
  ir_value *tok = ir_weight(t->g, "tokens", (ir_type){IR_I32, 1, {ir_seq_dim(0, 1)}});
  tok->def->code = IR_INPUT;
  t->g->input = tok;
}

ir_value *tg_weight(tg *t, const char *name, int rank, const int64_t *dims,
                    const float *data) {
  ir_type ty = {IR_F32, rank, {{0}}};
  for (int i = 0; i < rank; i++) ty.dims[i] = ir_const_dim(dims[i]);
  CU_ASSERT_FATAL(t->nw < TG_MAX_WEIGHTS);
  t->w[t->nw++] = data;
  return ir_weight(t->g, name, ty);
}

ir_value *tg_rows(tg *t, const char *name, int64_t L, int64_t n, const float *table) {
  ir_value *tab = tg_weight(t, name, 2, (int64_t[]){L, n}, table);
  return tg_op(t, IR_EMBED, 2, (ir_value *[]){t->g->input, tab}, 0, NULL, 0);
}

ir_value *tg_heads(tg *t, const char *name, int64_t L, int64_t heads, int64_t n,
                   const float *table) {
  ir_attr a = ir_int_attr("heads", heads);
  return tg_op(t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(t, name, L, n, table)}, 1, &a, 0);
}

ir_value *tg_op(tg *t, ir_opcode c, int nin, ir_value **in, int na, ir_attr *a, int result) {
  ir_op *op = ir_emit(t->g, &t->d, c, in, nin, a, na);
  if (!op) fprintf(stderr, "\ncannot build a %s op\n", ir_ops[c].name);
  CU_ASSERT_PTR_NOT_NULL_FATAL(op);
  return op->out[result];
}

void tg_run(tg *t, ir_value *out, int64_t L) {
  CU_ASSERT_FATAL(L <= TG_MAX_TOKENS);
  ir_emit(t->g, &t->d, IR_RETURN, (ir_value *[]){out}, 1, NULL, 0);
  t->g->output = out;
  CU_ASSERT_FATAL(ir_verify(t->g, &t->d));
  char err[256];
  hsart_status st = rt_exec_init(&t->x, t->g, t->w, RT_Q_F32, NULL, err, sizeof err);
  if (st != HSART_OK) fprintf(stderr, "\n%s\n", err);
  CU_ASSERT_EQUAL_FATAL(st, HSART_OK);
  int32_t tok[TG_MAX_TOKENS];
  for (int i = 0; i < L; i++) tok[i] = i;
  st = rt_exec_segment(&t->x, tok, 0, L);
  if (st != HSART_OK) fprintf(stderr, "\n%s\n", t->x.err);
  CU_ASSERT_EQUAL_FATAL(st, HSART_OK);
}

const float *tg_row(tg *t, ir_value *v, int64_t r) {
  const float *p = rt_row(&t->x, v, r, 0);
  if (!p) fprintf(stderr, "\n%s\n", t->x.err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  return p;
}

/* Runs tokens 0..L-1 in segments of `seg` and copies every row of v into
 * dst (row r at r * width); returns the row count, or -1 on an error. */
static int64_t collect(tg *t, ir_value *v, int64_t L, int64_t seg, float *dst, int64_t cap,
                       int64_t *width) {
  int32_t tok[TG_MAX_TOKENS];
  for (int i = 0; i < L; i++) tok[i] = i;
  rt_exec_reset(&t->x);
  int64_t rows = 0;
  for (int64_t t0 = 0; t0 < L; t0 += seg) {
    int64_t n = L - t0 < seg ? L - t0 : seg;
    if (rt_exec_segment(&t->x, tok + t0, t0, n) != HSART_OK) {
      fprintf(stderr, "\n%s\n", t->x.err);
      return -1;
    }
    rt_store *s = &rt_val_of(&t->x, v)->st;
    for (int64_t r = s->seg_r0; r < s->seg_r1; r++) {
      if (*width < 0) *width = s->seg_elems;
      if (s->seg_elems != *width || (r + 1) * *width > cap) return -1;
      memcpy(dst + r * *width, s->seg + (r - s->seg_r0) * s->seg_elems,
             (size_t)*width * sizeof *dst);
      rows = r + 1;
    }
  }
  return rows;
}

double tg_segment_diff(tg *t, ir_value *v, int64_t L, int64_t seg) {
  enum { CAP = 1 << 16 };
  float *a = calloc(CAP, sizeof *a), *b = calloc(CAP, sizeof *b);
  int64_t wa = -1, wb = -1;
  int64_t na = collect(t, v, L, L, a, CAP, &wa), nb = collect(t, v, L, seg, b, CAP, &wb);
  double m = 0;
  if (na < 0 || nb != na || wa != wb) m = INFINITY;
  for (int64_t i = 0; m != INFINITY && i < na * wa; i++) {
    double d;
    if (v->type.dtype == IR_I32) {
      int32_t x, y;
      memcpy(&x, a + i, 4);
      memcpy(&y, b + i, 4);
      d = x == y ? 0 : INFINITY;
    } else {
      d = tu_absdiff(a[i], b[i]);
    }
    m = tu_worse(m, d);
  }
  free(a);
  free(b);
  return m;
}

void tg_free(tg *t) {
  rt_exec_free(&t->x);
  ut_arena_free(&t->arena);
}
