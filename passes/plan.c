/* plan.c - memory planning and work estimates (`hsac plan`).
 *
 * For a request of N tokens of context:
 *  - caches: what a session keeps between segments, from the same rule the
 *    runtime uses (ir_history_rows): every row for dense keys and the chunk
 *    memory, a ring of W - 1 rows for a window, the partial chunk;
 *  - activations: one buffer per value of a prefill segment, with
 *    lifetimes from the op order and buffers reused greedily (largest
 *    first, lowest offset free for the whole lifetime);
 *  - work: FLOPs of a prefill of N tokens, counting only the rows the demand
 *    analysis says the last position's logits need, per stage (the stacks,
 *    the memories, the embedding and the head), against the same count with
 *    every row computed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/plan.h"

static int64_t rows_at(const ir_value *v, int64_t T) {
  ir_dim d = v->type.dims[0];
  if (d.div == 0) return d.n;
  int64_t a = T + d.off;
  return a <= 0 ? 0 : a / d.div;
}

static int64_t inner(const ir_value *v, int64_t T) {
  int64_t n = 1;
  for (int i = 1; i < v->type.rank; i++) {
    ir_dim d = v->type.dims[i];
    n *= d.div ? (T + d.off > 0 ? (T + d.off) / d.div : 0) : d.n;
  }
  return n;
}

static bool has_rows(const ir_value *v) { return v->type.rank > 0 && v->type.dims[0].div; }

/* Rows of v a prefill of N tokens computes, with or without demand. */
static double rows_computed(const ir_value *v, int64_t N, bool demand) {
  int64_t r = rows_at(v, N);
  if (demand && v->demand != IR_ALL_ROWS && v->demand < r) r = v->demand;
  return (double)r;
}

/* Sum over the last r of N positions of min(t + 1, W) (W = 0: no window). */
static double keys_seen(double r, double N, double W) {
  double lo = N - r, tot = 0;
  if (W <= 0 || W >= N) return r * N - r * (r - 1) / 2 - (N - lo - r) * 0;
  /* positions below W see t + 1 keys, the rest W */
  double below = lo < W ? (W - lo < r ? W - lo : r) : 0;
  tot += below * (lo + 1) + below * (below - 1) / 2;
  tot += (r - below) * W;
  return tot;
}

/* FLOPs of one op for a prefill of N tokens. */
static double op_flops(const ir_op *op, int64_t N, bool demand) {
  const ir_value *o = op->out[0];
  double r = has_rows(o) ? rows_computed(o, N, demand) : 0;
  switch (op->code) {
  case IR_LINEAR: {
    const ir_value *w = op->in[1];
    double in = (double)w->type.dims[1].n, outd = (double)w->type.dims[0].n;
    return r * 2.0 * in * outd * ((double)inner(o, N) / outd);
  }
  case IR_ATTENTION: {
    const ir_value *q = op->in[0];
    int rank = q->type.rank;
    double d = (double)q->type.dims[rank - 1].n, H = (double)q->type.dims[rank - 2].n;
    if (rank == 3)
      return 4.0 * d * H * keys_seen(r, (double)N, (double)ir_attr_i(op, "window", 0));
    double P = (double)q->type.dims[rank - 3].n;
    return r * 4.0 * P * P * d * H;
  }
  case IR_LANDMARK_SCORES: {
    const ir_value *q = op->in[0];
    double G = (double)q->type.dims[1].n, dr = (double)q->type.dims[2].n;
    double S = (double)ir_attr_i(op, "chunk", 1);
    /* query t scores floor(t / S) landmarks */
    return 2.0 * G * dr * (r * (double)N - r * r / 2) / S;
  }
  case IR_TOPK: return r * (double)inner(op->in[0], N);
  case IR_CHUNK_ATTENTION: {
    const ir_value *q = op->in[0], *k = op->in[1], *idx = op->in[3];
    double H = (double)q->type.dims[1].n, d = (double)q->type.dims[2].n;
    double P = (double)k->type.dims[1].n, K = (double)idx->type.dims[2].n;
    return r * H * K * P * d * 4.0;
  }
  case IR_LANDMARK_ATTENTION:
  case IR_MOBA_ATTENTION:
  case IR_NSA_ATTENTION: {
    const ir_value *q = op->in[0];
    double H = (double)q->type.dims[1].n, d = (double)q->type.dims[2].n;
    double B = (double)ir_attr_i(op, "block", 1), K = (double)ir_attr_i(op, "topk", 1);
    /* block scores over every past block, then attention over the chosen
     * blocks and the local ones */
    double extra = op->code == IR_NSA_ATTENTION ? (double)ir_attr_i(op, "window", 0) : B;
    return H * d * (2.0 * (r * (double)N - r * r / 2) / B + 4.0 * r * (K * B + extra));
  }
  case IR_NSA_COMPRESS: {
    const ir_value *k = op->in[0];
    double H = (double)k->type.dims[1].n, d = (double)k->type.dims[2].n;
    return r * H * 2.0 * d * d * (double)ir_attr_i(op, "block", 1);
  }
  default:
    /* element-wise and data movement: a few operations per element */
    return has_rows(o) ? r * (double)inner(o, N) * 4.0 : 0;
  }
}

/* The stage an op belongs to: its stack, its memory, or embed / head. */
static void stage_of(const ir_op *op, char *buf, size_t n) {
  const char *name = op->kernel ? op->kernel->name : (op->origin ? op->origin : "?");
  if (!strcmp(name, "embed") || !strcmp(name, "lm_head")) {
    snprintf(buf, n, "%s", name);
    return;
  }
  const char *dot = strchr(name, '.');
  snprintf(buf, n, "%.*s", dot ? (int)(dot - name) : (int)strlen(name), name);
}

typedef struct buf {
  int64_t bytes;
  int from, to;      /* lifetime in op positions */
  int64_t off;
} buf;

static int by_start(const void *a, const void *b) {
  const buf *x = *(const buf *const *)a, *y = *(const buf *const *)b;
  if (x->from != y->from) return x->from < y->from ? -1 : 1;
  return x->bytes > y->bytes ? -1 : x->bytes < y->bytes;
}

static int by_off(const void *a, const void *b) {
  const buf *x = *(const buf *const *)a, *y = *(const buf *const *)b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Byte counts saturate at INT64_MAX (printed as over 8 EiB) rather than
 * wrap, for contexts and widths at the edge of the limits. */
static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}
static int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* First fit in order of first use: each buffer goes to the lowest offset
 * not held by a buffer still alive at that point.  The live set is small
 * (a layer's temporaries and the values that cross it), so this stays fast
 * for thousands of layers.  Returns the arena size (-1: out of memory). */
static int64_t assign(buf *bs, int n) {
  buf **order = malloc((size_t)n * sizeof *order), **live = malloc((size_t)n * sizeof *live);
  if (!order || !live) {
    free(order);
    free(live);
    return -1;
  }
  for (int i = 0; i < n; i++) order[i] = &bs[i];
  qsort(order, (size_t)n, sizeof *order, by_start);
  int nlive = 0;
  int64_t top = 0;
  for (int i = 0; i < n; i++) {
    buf *b = order[i];
    int k = 0;
    for (int j = 0; j < nlive; j++)
      if (live[j]->to >= b->from) live[k++] = live[j]; /* still alive */
    nlive = k;
    qsort(live, (size_t)nlive, sizeof *live, by_off);
    int64_t off = 0;
    for (int j = 0; j < nlive; j++) {
      if (off + b->bytes <= live[j]->off) break; /* fits in the gap before it */
      if (sat_add(live[j]->off, live[j]->bytes) > off) off = sat_add(live[j]->off, live[j]->bytes);
    }
    b->off = off;
    live[nlive++] = b;
    if (sat_add(off, b->bytes) > top) top = sat_add(off, b->bytes);
  }
  free(order);
  free(live);
  return top;
}

static void human(double b, char *out, size_t n) {
  if (b >= 9.2e18) { /* a saturated count */
    snprintf(out, n, "more than 8 EiB");
    return;
  }
  static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int i = 0;
  while (b >= 1024 && i < 5) b /= 1024, i++;
  snprintf(out, n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

bool hsac_plan(const ir_graph *g, const fe_model *m, const hsac_plan_opts *o, hsac_plan_result *res,
               FILE *out) {
  int64_t N = o->context, seg = o->segment > 0 ? o->segment : 512;
  int nv = ir_index_values((ir_graph *)g);
  int64_t *keep = calloc((size_t)nv + 1, sizeof *keep);
  int *last_use = calloc((size_t)nv + 1, sizeof *last_use);
  int *def_pos = calloc((size_t)nv + 1, sizeof *def_pos);
  bool *quant16 = calloc((size_t)nv + 1, sizeof *quant16);
  bool *kv = calloc((size_t)nv + 1, sizeof *kv);
  buf *bs = calloc((size_t)nv + 1, sizeof *bs);
  if (!keep || !last_use || !def_pos || !quant16 || !bs || !kv) {
    free(keep), free(last_use), free(def_pos), free(quant16), free(bs), free(kv);
    return false;
  }
  int pos = 0;
  double weights = 0;
  for (ir_op *op = g->first; op; op = op->next, pos++) {
    for (int r = 0; r < op->nout; r++) def_pos[op->out[r]->index] = pos;
    if (op->code == IR_WEIGHT) weights += 4.0 * (double)ir_type_numel(&op->out[0]->type);
    if (op->code == IR_QUANTIZE) quant16[op->out[0]->index] = true;
    /* attention keys and values are cached in the session's cache type */
    if (op->code == IR_ATTENTION || op->code == IR_MOBA_ATTENTION ||
        op->code == IR_LANDMARK_ATTENTION || op->code == IR_NSA_ATTENTION)
      for (int i = 1; i <= 2 && i < op->nin; i++) kv[op->in[i]->index] = true;
    for (int i = 0; i < op->nin; i++) {
      int k = op->in[i]->index;
      last_use[k] = pos;
      int64_t h = ir_history_rows(op, i);
      if (h == IR_ALL_ROWS || keep[k] == IR_ALL_ROWS)
        keep[k] = h == 0 ? keep[k] : IR_ALL_ROWS;
      else if (h > keep[k])
        keep[k] = h;
    }
  }
  /* caches */
  double cache_all = 0, cache_fixed = 0, per_token = 0;
  if (out) fprintf(out, "plan for model %s at a context of %" PRId64 " tokens "
                        "(prefill segments of %" PRId64 ")\n", g->name, N, seg);
  char b1[32], b2[32], b3[32];
  if (out) fputs("caches kept between segments:\n", out);
  for (ir_op *op = g->first; op; op = op->next) {
    for (int r = 0; r < op->nout; r++) {
      const ir_value *v = op->out[r];
      int64_t k = keep[v->index];
      if (!has_rows(v) || k == 0) continue;
      double eb = quant16[v->index] ? 2.0 : (double)o->cache_bytes;
      if (op->code != IR_QUANTIZE && !quant16[v->index] && !kv[v->index]) eb = 4.0;
      double rowb = eb * (double)inner(v, 0);
      double tot;
      const char *how;
      if (k == IR_ALL_ROWS) {
        tot = rowb * (double)rows_at(v, N);
        per_token += rowb / (double)(v->type.dims[0].div);
        cache_all += tot;
        how = "every row";
      } else {
        tot = rowb * (double)k;
        cache_fixed += tot;
        how = "ring";
      }
      human(tot, b1, sizeof b1);
      if (out)
        fprintf(out, "  %-32s %-16s %-10s %8" PRId64 " B/row  %s\n",
                op->kernel ? op->kernel->name : "?", ir_ops[op->code].name, how,
                (int64_t)rowb, b1);
    }
  }
  human(per_token, b1, sizeof b1);
  human(cache_fixed, b2, sizeof b2);
  human(cache_all + cache_fixed, b3, sizeof b3);
  if (out) fprintf(out, "  total: %s per token + %s fixed = %s at this context\n", b1, b2, b3);
  /* activations of one segment at the end of the context */
  int nb = 0;
  double no_reuse = 0;
  for (ir_op *op = g->first; op; op = op->next)
    for (int r = 0; r < op->nout; r++) {
      const ir_value *v = op->out[r];
      if (!has_rows(v)) continue;
      bool streamed = op->code == IR_LANDMARK_SCORES && op->kernel &&
                      op->kernel->kind == IR_K_RETRIEVE;
      if (streamed) continue; /* the fused retrieve never stores its scores */
      int64_t rows = rows_at(v, N) - rows_at(v, N - (seg < N ? seg : N));
      bs[nb].bytes = sat_mul(sat_mul(rows, inner(v, N)), 4);
      bs[nb].from = def_pos[v->index];
      bs[nb].to = last_use[v->index] > def_pos[v->index] ? last_use[v->index] : def_pos[v->index];
      no_reuse += (double)bs[nb].bytes;
      nb++;
    }
  int64_t arena = assign(bs, nb);
  human((double)arena, b1, sizeof b1);
  human(no_reuse, b2, sizeof b2);
  if (out) fprintf(out, "activations of a %" PRId64 "-token segment: %s with buffer reuse "
                        "(%s without), %d buffers\n", seg, b1, b2, nb);
  human(weights, b1, sizeof b1);
  human(weights + cache_all + cache_fixed + (double)arena, b2, sizeof b2);
  if (out) fprintf(out, "weights: %s (f32); peak for this request: %s\n", b1, b2);
  /* work per stage */
  char names[32][64];
  double with[32] = {0}, without[32] = {0};
  int ns = 0;
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
    char st[64];
    stage_of(op, st, sizeof st);
    int i = 0;
    while (i < ns && strcmp(names[i], st)) i++;
    if (i == ns && ns < 32) snprintf(names[ns++], 64, "%s", st);
    if (i >= 32) i = 31;
    with[i] += op_flops(op, N, g->demand_done);
    without[i] += op_flops(op, N, false);
  }
  double tw = 0, two = 0;
  if (out) fprintf(out, "work of a prefill for the last position's logits:\n"
                        "  %-16s %14s %14s\n", "stage", "FLOPs", "all rows");
  for (int i = 0; i < ns; i++) {
    if (out) fprintf(out, "  %-16s %14.4g %14.4g\n", names[i], with[i], without[i]);
    tw += with[i];
    two += without[i];
  }
  if (out) {
    fprintf(out, "  %-16s %14.4g %14.4g  (%.1fx less with demand analysis)\n", "total", tw, two,
            tw > 0 ? two / tw : 0);
    hsac_demand_report(g, m, out);
  }
  if (res) {
    res->flops = tw;
    res->flops_all_rows = two;
    res->cache_bytes = cache_all + cache_fixed;
    res->activation_bytes = (double)arena;
    res->weight_bytes = weights;
  }
  free(keep), free(last_use), free(def_pos), free(quant16), free(bs), free(kv);
  return true;
}
