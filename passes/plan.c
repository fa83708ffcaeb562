/* plan.c - memory planning and work estimates (`hsac plan`).
 *
 * For a request of N tokens of context:
 *  - caches: what a session keeps between segments, from the same rule the
 *    runtime uses (ir_history_rows): every row for dense keys and the chunk
 *    memory, a ring of W - 1 rows for a window, the incomplete chunk.  Each
 *    is named by what it holds, read off the op that keeps it (the reader
 *    with the longest history) and the input it reads it at: attention's
 *    input 1 is K and 2 is V, a chunk op's input is the incomplete chunk,
 *    landmark scores' input 1 the landmarks.  Rows are tokens, or chunks
 *    (blocks) of S tokens, each counted in its own unit;
 *  - activations: one buffer per value of a prefill segment, with
 *    lifetimes from the op order and buffers reused greedily (largest
 *    first, lowest offset free for the whole lifetime);
 *  - work: FLOPs of a prefill of N tokens, counting only the rows the demand
 *    analysis says the last position's logits need, per stage (the stacks,
 *    the memories, the embedding and the head), against the same count with
 *    every row computed.
 * The report is text, or one JSON object (docs/ir.md lists its fields). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/pipeline.h"
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

/* What the planner knows of one value. */
typedef struct vinfo {
  int64_t keep;          /* rows kept between segments (IR_ALL_ROWS: every row) */
  int def_pos, last_use; /* lifetime in op positions */
  bool quant16;          /* stored in 16 bits (a quantize op's result) */
  bool kv;               /* attention K or V: stored in the session's cache type */
  const ir_op *reader;   /* the reader with the longest history ... */
  int reader_in;         /* ... and the input it reads the value at */
  int64_t reader_h;      /* that history */
} vinfo;

/* One cache a session keeps between segments. */
typedef struct plan_cache {
  const char *layer;     /* the kernel that produces it: its location */
  char holds[96];        /* what it holds */
  const char *unit;      /* what a row is: "token", "chunk" or "block" */
  int64_t per, off;      /* rows after t tokens: floor((t + off) / per) */
  bool ring;             /* a ring of keep rows (false: every row) */
  int64_t keep;          /* the ring's rows */
  int64_t rows;          /* rows held after N tokens */
  int64_t row_bytes, bytes;
  int elem;              /* bytes per element */
  int64_t window;        /* the attention window it serves (0: none) */
  int64_t chunk;         /* the chunk or block size it serves (0: none) ... */
  const char *chunk_is;  /* ... and which: "chunk" or "block" */
} plan_cache;

enum { MAX_STAGES = 32, MAX_NOTES = 8 };

/* Everything the report says, for the text and the JSON writers. */
typedef struct plan_report {
  const ir_graph *g;
  const fe_model *m;
  int64_t N, seg;
  int cache_elem;
  bool weights_bf16;
  plan_cache *cs;
  int ncs;
  double per_token, fixed, at_context; /* cache bytes */
  char notes[MAX_NOTES][320];
  int nnotes;
  int64_t arena;
  double no_reuse;
  int nbufs;
  double weights, peak;
  char stages[MAX_STAGES][64];
  double with[MAX_STAGES], without[MAX_STAGES];
  int nstages;
  double flops, flops_all;
} plan_report;

static void add_note(plan_report *r, const char *text) {
  for (int i = 0; i < r->nnotes; i++)
    if (!strcmp(r->notes[i], text)) return;
  if (r->nnotes < MAX_NOTES) snprintf(r->notes[r->nnotes++], sizeof r->notes[0], "%s", text);
}

/* The memory an op of a chunk memory belongs to (its origin is "memory M"
 * or "memory M encoder J"). */
static void memory_of(const ir_op *op, char *buf, size_t n) {
  const char *o = op->origin;
  if (o && !strncmp(o, "memory ", 7)) {
    o += 7;
    snprintf(buf, n, "%.*s", (int)strcspn(o, " "), o);
  } else {
    snprintf(buf, n, "?");
  }
}

/* Names a cache after the op that keeps it and the input it reads it at. */
static void name_cache(plan_cache *c, const ir_value *v, const ir_op *use, int i) {
  const char *kv = i == 1 ? "keys (K)" : i == 2 ? "values (V)" : NULL;
  const char *what = NULL;
  char mem[64];
  c->unit = c->per == 1 && c->off == 0 ? "token" : "block";
  c->chunk_is = "block";
  switch (use->code) {
  case IR_ATTENTION:
    c->window = ir_attr_i(use, "window", 0);
    what = c->window <= 0 ? kv : i == 1 ? "window keys (K)" : "window values (V)";
    break;
  case IR_CHUNK:
    c->chunk = ir_attr_i(use, "size", 1);
    c->chunk_is = "chunk";
    memory_of(use, mem, sizeof mem);
    snprintf(c->holds, sizeof c->holds, "incomplete chunk of '%s'", mem);
    return;
  case IR_BLOCK_LANDMARK:
    c->chunk = ir_attr_i(use, "block", 1);
    what = "incomplete block (its input)";
    break;
  case IR_LANDMARK_SCORES:
    c->chunk = ir_attr_i(use, "chunk", 1);
    c->chunk_is = "chunk";
    if (i == 1) c->unit = "chunk";
    what = i == 1 ? "landmarks" : "retrieval queries, per chunk";
    break;
  case IR_CHUNK_ATTENTION:
    c->chunk = c->per;
    c->chunk_is = c->unit = "chunk";
    what = kv;
    break;
  case IR_LANDMARK_ATTENTION:
  case IR_MOBA_ATTENTION:
    if (i == 3) c->chunk = ir_attr_i(use, "block", 1);
    what = i == 3 ? "landmark keys" : kv;
    break;
  case IR_NSA_ATTENTION:
    if (i == 3 || i == 4) c->chunk = ir_attr_i(use, "cmp_block", 1);
    what = i == 3 ? "compressed keys" : i == 4 ? "compressed values" : kv;
    break;
  default: break;
  }
  if (!what) {
    snprintf(c->holds, sizeof c->holds, "input %d of %s", i, ir_ops[use->code].name);
    return;
  }
  const ir_attr *dt = v->def->code == IR_QUANTIZE ? ir_get_attr(v->def, "dtype") : NULL;
  if (dt) snprintf(c->holds, sizeof c->holds, "%s, %s", what, dt->s);
  else snprintf(c->holds, sizeof c->holds, "%s", what);
}

/* Notes for a context too short to fill a cache. */
static void short_context_notes(plan_report *r, const plan_cache *c, const ir_value *v,
                                const ir_op *use) {
  char t[320], mem[64];
  int64_t N = r->N;
  if (c->ring && c->rows < c->keep) {
    if (c->window > 0)
      snprintf(t, sizeof t, "context %" PRId64 " < window %" PRId64 ": the window rings hold "
               "every position so far (%" PRId64 " of %" PRId64 " rows)", N, c->window, c->rows,
               c->keep);
    else if (use->code == IR_CHUNK)
      snprintf(t, sizeof t, "context %" PRId64 " < chunk %" PRId64 ": the incomplete chunk "
               "holds every position so far (%" PRId64 " of %" PRId64 " rows)", N, c->chunk,
               c->rows, c->keep);
    else
      snprintf(t, sizeof t, "context %" PRId64 " is shorter than the rings of %s: they hold "
               "every position so far (%" PRId64 " of %" PRId64 " rows)", N, c->holds, c->rows,
               c->keep);
    add_note(r, t);
  } else if (!c->ring && c->rows == 0 && c->per > 1) {
    if (!strcmp(c->unit, "chunk")) {
      memory_of(v->def, mem, sizeof mem);
      snprintf(t, sizeof t, "context %" PRId64 " < chunk %" PRId64 ": no chunk is complete, "
               "the chunk memory '%s' is empty", N, c->per, mem);
    } else {
      snprintf(t, sizeof t, "context %" PRId64 ": no block is complete, the %s caches are "
               "empty", N, c->holds);
    }
    add_note(r, t);
  }
}

/* Heading of the caches whose rows are c's. */
static void section_head(const plan_cache *c, char *buf, size_t n) {
  if (c->per == 1 && c->off == 0)
    snprintf(buf, n, "per token");
  else if (c->off == 0)
    snprintf(buf, n, "per %s of %" PRId64 " tokens", c->unit, c->per);
  else
    snprintf(buf, n, "per %s (one every %" PRId64 " tokens)", c->unit, c->per);
}

static bool same_rows(const plan_cache *a, const plan_cache *b) {
  return a->per == b->per && a->off == b->off && !strcmp(a->unit, b->unit);
}

/* The table of the caches whose rows are c's. */
static void write_section(const plan_report *r, const plan_cache *c, FILE *out) {
  char head[96], unit[24], per_row[24], kept[32], b[32];
  section_head(c, head, sizeof head);
  snprintf(unit, sizeof unit, "%ss", c->unit);
  snprintf(per_row, sizeof per_row, "B/%s", c->unit);
  fprintf(out, "  %-59s %-9s %8s %9s %12s\n", head, "kept", unit, per_row, "bytes");
  for (int j = 0; j < r->ncs; j++) {
    const plan_cache *d = &r->cs[j];
    if (!same_rows(d, c)) continue;
    if (d->ring) snprintf(kept, sizeof kept, "last %" PRId64, d->keep);
    else snprintf(kept, sizeof kept, "all");
    human((double)d->bytes, b, sizeof b);
    fprintf(out, "    %-26s %-30s %-9s %8" PRId64 " %9" PRId64 " %12s\n", d->layer, d->holds,
            kept, d->rows, d->row_bytes, b);
  }
}

static void write_text(const plan_report *r, FILE *out) {
  char b1[32], b2[32], b3[32];
  fprintf(out, "plan for model %s at a context of %" PRId64 " tokens (prefill segments of "
          "%" PRId64 ")\n", r->g->name, r->N, r->seg);
  fprintf(out, "caches kept between segments (attention K/V: %d bytes per element):\n",
          r->cache_elem);
  if (!r->ncs) fputs("  none\n", out);
  /* one table per kind of row: the tokens first, then chunks and blocks
   * in graph order */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < r->ncs; i++) {
      const plan_cache *c = &r->cs[i];
      bool first = (c->per == 1 && c->off == 0) == (pass == 0);
      for (int j = 0; j < i && first; j++) first = !same_rows(&r->cs[j], c);
      if (first) write_section(r, c, out);
    }
  human(r->per_token, b1, sizeof b1);
  human(r->fixed, b2, sizeof b2);
  human(r->at_context, b3, sizeof b3);
  fprintf(out, "  total: %s per token + %s fixed = %s at this context\n", b1, b2, b3);
  for (int i = 0; i < r->nnotes; i++) fprintf(out, "  note: %s\n", r->notes[i]);
  human((double)r->arena, b1, sizeof b1);
  human(r->no_reuse, b2, sizeof b2);
  fprintf(out, "activations of a %" PRId64 "-token segment: %s with buffer reuse "
          "(%s without), %d buffers\n", r->seg, b1, b2, r->nbufs);
  human(r->weights, b1, sizeof b1);
  human(r->peak, b2, sizeof b2);
  fprintf(out, "weights: %s (%s); peak for this request: %s\n", b1,
          r->weights_bf16 ? "bf16 linear matrices, the rest f32" : "f32", b2);
  fprintf(out, "work of a prefill for the last position's logits:\n"
          "  %-16s %14s %14s\n", "stage", "FLOPs", "all rows");
  for (int i = 0; i < r->nstages; i++)
    fprintf(out, "  %-16s %14.4g %14.4g\n", r->stages[i], r->with[i], r->without[i]);
  fprintf(out, "  %-16s %14.4g %14.4g  (%.1fx less with demand analysis)\n", "total", r->flops,
          r->flops_all, r->flops > 0 ? r->flops_all / r->flops : 0);
  hsac_demand_report(r->g, r->m, out);
}

/* Adds to an object, clearing *ok when out of memory (cJSON takes a NULL
 * object, so a failed parent needs no check of its own). */
static void jnum(cJSON *o, const char *k, double v, bool *ok) {
  if (!cJSON_AddNumberToObject(o, k, v)) *ok = false;
}
static void jstr(cJSON *o, const char *k, const char *v, bool *ok) {
  if (!cJSON_AddStringToObject(o, k, v)) *ok = false;
}
static void jadd(cJSON *a, cJSON *item, bool *ok) {
  if (!item || !cJSON_AddItemToArray(a, item)) {
    cJSON_Delete(item);
    *ok = false;
  }
}

/* The demand verdict: hsac_demand_report's lines, without their indent. */
static bool demand_json(const plan_report *r, cJSON *arr, bool *ok) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  if (!f) return false;
  hsac_demand_report(r->g, r->m, f);
  if (fclose(f)) {
    free(text);
    return false;
  }
  for (char *line = text; line && *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    while (*line == ' ') line++;
    if (*line) jadd(arr, cJSON_CreateString(line), ok);
    line = end ? end + 1 : NULL;
  }
  free(text);
  return true;
}

static bool write_json(const plan_report *r, FILE *out) {
  bool ok = true;
  cJSON *root = cJSON_CreateObject();
  if (!root) return false;
  jstr(root, "format", "hsac-plan", &ok);
  jnum(root, "version", 1, &ok);
  jstr(root, "model", r->g->name, &ok);
  jnum(root, "context", (double)r->N, &ok);
  jnum(root, "segment", (double)r->seg, &ok);
  jnum(root, "cache_element_bytes", r->cache_elem, &ok);
  cJSON *caches = cJSON_AddArrayToObject(root, "caches");
  for (int i = 0; i < r->ncs; i++) {
    const plan_cache *c = &r->cs[i];
    cJSON *o = cJSON_CreateObject();
    jstr(o, "layer", c->layer, &ok);
    jstr(o, "what", c->holds, &ok);
    jstr(o, "indexed_by", c->unit, &ok);
    jnum(o, "tokens_per_row", (double)c->per, &ok);
    jstr(o, "kept", c->ring ? "ring" : "every_row", &ok);
    if (c->ring) jnum(o, "ring_rows", (double)c->keep, &ok);
    jnum(o, "rows", (double)c->rows, &ok);
    jnum(o, "element_bytes", c->elem, &ok);
    jnum(o, "bytes_per_row", (double)c->row_bytes, &ok);
    jnum(o, "bytes", (double)c->bytes, &ok);
    if (c->window > 0) jnum(o, "window", (double)c->window, &ok);
    if (c->chunk > 0) jnum(o, c->chunk_is, (double)c->chunk, &ok);
    jadd(caches, o, &ok);
  }
  cJSON *tot = cJSON_AddObjectToObject(root, "totals");
  jnum(tot, "per_token_bytes", r->per_token, &ok);
  jnum(tot, "fixed_bytes", r->fixed, &ok);
  jnum(tot, "total_bytes", r->at_context, &ok);
  cJSON *notes = cJSON_AddArrayToObject(root, "notes");
  for (int i = 0; i < r->nnotes; i++) jadd(notes, cJSON_CreateString(r->notes[i]), &ok);
  cJSON *act = cJSON_AddObjectToObject(root, "activations");
  jnum(act, "segment", (double)r->seg, &ok);
  jnum(act, "bytes", (double)r->arena, &ok);
  jnum(act, "bytes_without_reuse", r->no_reuse, &ok);
  jnum(act, "buffers", r->nbufs, &ok);
  jnum(root, "weight_bytes", r->weights, &ok);
  jstr(root, "linear_weights", r->weights_bf16 ? "bf16" : "f32", &ok);
  jnum(root, "peak_bytes", r->peak, &ok);
  cJSON *work = cJSON_AddObjectToObject(root, "work");
  cJSON *stages = cJSON_AddArrayToObject(work, "stages");
  for (int i = 0; i < r->nstages; i++) {
    cJSON *o = cJSON_CreateObject();
    jstr(o, "stage", r->stages[i], &ok);
    jnum(o, "flops", r->with[i], &ok);
    jnum(o, "flops_all_rows", r->without[i], &ok);
    jadd(stages, o, &ok);
  }
  jnum(work, "flops", r->flops, &ok);
  jnum(work, "flops_all_rows", r->flops_all, &ok);
  cJSON *demand = cJSON_AddArrayToObject(root, "demand");
  if (!caches || !tot || !notes || !act || !work || !stages || !demand) ok = false;
  if (ok && !demand_json(r, demand, &ok)) ok = false;
  char *text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) return false;
  fputs(text, out);
  fputc('\n', out);
  free(text);
  return true;
}

/* The caches: every value with rows kept between segments, in graph order. */
static void plan_caches(plan_report *r, const vinfo *vi, const hsac_plan_opts *o) {
  for (ir_op *op = r->g->first; op; op = op->next) {
    for (int k = 0; k < op->nout; k++) {
      const ir_value *v = op->out[k];
      const vinfo *w = &vi[v->index];
      if (!has_rows(v) || w->keep == 0) continue;
      plan_cache *c = &r->cs[r->ncs++];
      c->layer = op->kernel ? op->kernel->name : (op->origin ? op->origin : "?");
      c->per = v->type.dims[0].div;
      c->off = v->type.dims[0].off;
      c->elem = w->quant16 ? 2 : w->kv ? o->cache_bytes : 4;
      c->row_bytes = sat_mul(c->elem, inner(v, 0));
      c->ring = w->keep != IR_ALL_ROWS;
      c->keep = c->ring ? w->keep : 0;
      c->rows = rows_at(v, r->N);
      if (c->ring && c->rows > c->keep) c->rows = c->keep;
      c->bytes = sat_mul(c->rows, c->row_bytes);
      name_cache(c, v, w->reader, w->reader_in);
      short_context_notes(r, c, v, w->reader);
      if (c->ring)
        r->fixed += (double)sat_mul(c->keep, c->row_bytes);
      else
        r->per_token += (double)c->row_bytes / (double)c->per;
      r->at_context += (double)c->bytes;
    }
  }
  if (o->cache_bytes != 4 && r->m) {
    /* `hsac check` counts attention caches in f32 */
    double pt, fx;
    char b1[32], b2[32], t[320];
    hsac_cache_footprint(r->m, &pt, &fx);
    human(pt, b1, sizeof b1);
    human(fx, b2, sizeof b2);
    snprintf(t, sizeof t, "attention K/V in %d-byte elements; `hsac check` counts them in f32: "
             "%s per token + %s fixed", o->cache_bytes, b1, b2);
    add_note(r, t);
  }
}

bool hsac_plan(const ir_graph *g, const fe_model *m, const hsac_plan_opts *o, hsac_plan_result *res,
               FILE *out) {
  plan_report rep = {.g = g, .m = m, .N = o->context, .cache_elem = o->cache_bytes,
                     .weights_bf16 = o->weights_bf16};
  plan_report *r = &rep;
  int64_t N = o->context, seg = o->segment > 0 ? o->segment : 512;
  r->seg = seg;
  int nv = ir_index_values((ir_graph *)g);
  vinfo *vi = calloc((size_t)nv + 1, sizeof *vi);
  buf *bs = calloc((size_t)nv + 1, sizeof *bs);
  r->cs = calloc((size_t)nv + 1, sizeof *r->cs);
  bool ok = vi && bs && r->cs;
  if (!ok) goto done;
  int pos = 0;
  for (ir_op *op = g->first; op; op = op->next, pos++) {
    for (int k = 0; k < op->nout; k++) vi[op->out[k]->index].def_pos = pos;
    if (op->code == IR_WEIGHT)
      r->weights += (o->weights_bf16 && ir_linear_matrix(g, op->out[0]) ? 2.0 : 4.0) *
                    (double)ir_type_numel(&op->out[0]->type);
    if (op->code == IR_QUANTIZE) vi[op->out[0]->index].quant16 = true;
    /* attention keys and values are cached in the session's cache type */
    if (op->code == IR_ATTENTION || op->code == IR_MOBA_ATTENTION ||
        op->code == IR_LANDMARK_ATTENTION || op->code == IR_NSA_ATTENTION)
      for (int i = 1; i <= 2 && i < op->nin; i++) vi[op->in[i]->index].kv = true;
    for (int i = 0; i < op->nin; i++) {
      vinfo *w = &vi[op->in[i]->index];
      w->last_use = pos;
      int64_t h = ir_history_rows(op, i);
      if (h == IR_ALL_ROWS || w->keep == IR_ALL_ROWS)
        w->keep = h == 0 ? w->keep : IR_ALL_ROWS;
      else if (h > w->keep)
        w->keep = h;
      /* the cache is named after the reader with the longest history */
      bool longer = h == IR_ALL_ROWS ? w->reader_h != IR_ALL_ROWS
                                     : w->reader_h != IR_ALL_ROWS && h > w->reader_h;
      if (h != 0 && (!w->reader || longer)) {
        w->reader = op;
        w->reader_in = i;
        w->reader_h = h;
      }
    }
  }
  plan_caches(r, vi, o);
  /* activations of one segment at the end of the context */
  for (ir_op *op = g->first; op; op = op->next)
    for (int k = 0; k < op->nout; k++) {
      const ir_value *v = op->out[k];
      if (!has_rows(v)) continue;
      bool streamed = op->code == IR_LANDMARK_SCORES && op->kernel &&
                      op->kernel->kind == IR_K_RETRIEVE;
      if (streamed) continue; /* the fused retrieve never stores its scores */
      int64_t rows = rows_at(v, N) - rows_at(v, N - (seg < N ? seg : N));
      const vinfo *w = &vi[v->index];
      buf *b = &bs[r->nbufs++];
      b->bytes = sat_mul(sat_mul(rows, inner(v, N)), 4);
      b->from = w->def_pos;
      b->to = w->last_use > w->def_pos ? w->last_use : w->def_pos;
      r->no_reuse += (double)b->bytes;
    }
  r->arena = assign(bs, r->nbufs);
  if (r->arena < 0) {
    ok = false;
    goto done;
  }
  r->peak = r->weights + r->at_context + (double)r->arena;
  /* work per stage */
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
    char st[64];
    stage_of(op, st, sizeof st);
    int i = 0;
    while (i < r->nstages && strcmp(r->stages[i], st)) i++;
    if (i == r->nstages && r->nstages < MAX_STAGES)
      snprintf(r->stages[r->nstages++], sizeof r->stages[0], "%s", st);
    if (i >= MAX_STAGES) i = MAX_STAGES - 1;
    r->with[i] += op_flops(op, N, g->demand_done);
    r->without[i] += op_flops(op, N, false);
  }
  for (int i = 0; i < r->nstages; i++) {
    r->flops += r->with[i];
    r->flops_all += r->without[i];
  }
  if (res) {
    res->flops = r->flops;
    res->flops_all_rows = r->flops_all;
    res->cache_bytes = r->at_context;
    res->cache_per_token = r->per_token;
    res->cache_fixed = r->fixed;
    res->activation_bytes = (double)r->arena;
    res->weight_bytes = r->weights;
    res->peak_bytes = r->peak;
  }
  if (out) {
    if (o->json) ok = write_json(r, out);
    else write_text(r, out);
  }
done:
  free(vi);
  free(bs);
  free(r->cs);
  return ok;
}
