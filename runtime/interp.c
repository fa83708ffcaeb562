/* interp.c - segment-by-segment execution of an IR graph (see interp.h). */
#include "runtime/interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/backend.h"
#include "runtime/safetensors.h"

enum { RT_PAGE_ROWS = 64 };

int64_t rt_dim_at(ir_dim d, int64_t T) {
  if (d.div == 0) return d.n;
  int64_t a = T + d.off;
  if (a <= 0) return 0;
  return a / d.div;
}

rt_val *rt_val_of(rt_exec *x, const ir_value *v) { return &x->vals[v->index]; }

static int64_t inner_elems(const ir_type *t, int64_t T) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++) n *= rt_dim_at(t->dims[i], T);
  return n;
}

static bool has_symbolic_inner(const ir_type *t) {
  for (int i = 1; i < t->rank; i++)
    if (t->dims[i].div) return true;
  return false;
}

#define ALL IR_ALL_ROWS

/* Inputs that hold attention keys and values (cached in kv_quant). */
static bool is_kv_input(const ir_op *op, int i) {
  switch (op->code) {
  case IR_ATTENTION: return op->in[0]->type.rank == 3 && (i == 1 || i == 2);
  case IR_LANDMARK_ATTENTION:
  case IR_MOBA_ATTENTION:
  case IR_NSA_ATTENTION: return i == 1 || i == 2;
  default: return false;
  }
}

hsart_status rt_exec_init(rt_exec *x, const ir_graph *g, const float *const *weights,
                          rt_quant kv_quant, const rt_quant *memory_quant, char *err,
                          size_t errsize) {
  (void)memory_quant;
  memset(x, 0, sizeof *x);
  x->g = g;
  x->nvals = ir_index_values((ir_graph *)g);
  x->vals = calloc((size_t)x->nvals, sizeof *x->vals);
  if (!x->vals) {
    snprintf(err, errsize, "out of memory");
    return HSART_ENOMEM;
  }
  int wi = 0;
  for (ir_op *op = g->first; op; op = op->next) {
    for (int i = 0; i < op->nout; i++) {
      rt_val *v = rt_val_of(x, op->out[i]);
      v->v = op->out[i];
      if (op->code == IR_WEIGHT) {
        v->is_weight = true;
        v->w = weights[wi++];
        continue;
      }
      const ir_type *t = &op->out[i]->type;
      v->rows = t->rank > 0 && t->dims[0].div != 0;
      v->st.hist_r0 = 0;
      if (op->code == IR_QUANTIZE) {
        const ir_attr *a = ir_get_attr(op, "dtype");
        v->st.quant = a && !strcmp(a->s, "f16") ? RT_Q_F16 : RT_Q_BF16;
      }
    }
  }
  for (ir_op *op = g->first; op; op = op->next) {
    for (int i = 0; i < op->nin; i++) {
      rt_val *v = rt_val_of(x, op->in[i]);
      if (!v->rows) continue;
      int64_t need = ir_history_rows(op, i);
      if (need == ALL || v->st.keep == ALL)
        v->st.keep = need == 0 ? v->st.keep : ALL;
      else if (need > v->st.keep)
        v->st.keep = need;
      if (is_kv_input(op, i) && v->st.quant == RT_Q_F32) v->st.quant = kv_quant;
    }
  }
  /* fused retrieve kernels stream their scores into top-k (when nothing
   * else reads the scores) */
  int *uses = calloc((size_t)x->nvals + 1, sizeof *uses);
  if (!uses) {
    snprintf(err, errsize, "out of memory");
    return HSART_ENOMEM;
  }
  for (ir_op *op = g->first; op; op = op->next)
    for (int i = 0; i < op->nin; i++) uses[op->in[i]->index]++;
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code != IR_TOPK || !op->kernel || op->kernel->kind != IR_K_RETRIEVE) continue;
    ir_op *sc = op->in[0]->def;
    if (sc->code != IR_LANDMARK_SCORES || sc->kernel != op->kernel) continue;
    if (uses[sc->out[0]->index] != 1) continue;
    rt_val_of(x, sc->out[0])->virt = true;
    rt_val_of(x, op->out[0])->stream = sc;
  }
  free(uses);
  for (int i = 0; i < x->nvals; i++) {
    rt_val *v = &x->vals[i];
    if (!v->rows) continue;
    if (v->st.keep != 0 && has_symbolic_inner(&v->v->type)) {
      snprintf(err, errsize, "internal error: a value with a growing inner axis must be "
               "kept across segments (%s)", ir_ops[v->v->def->code].name);
      return HSART_EUNSUPPORTED;
    }
    v->st.row_elems = inner_elems(&v->v->type, 0);
    v->st.page_rows = RT_PAGE_ROWS;
    v->st.hquant = v->st.quant;
  }
  return HSART_OK;
}

void rt_exec_set_backend(rt_exec *x, const rt_backend *be, void *state, bool wide_history) {
  x->be = be;
  x->be_state = state;
  for (int i = 0; i < x->nvals; i++)
    x->vals[i].st.hquant =
        wide_history && !x->vals[i].st.hist_narrow ? RT_Q_F32 : x->vals[i].st.quant;
}

static void store_free(rt_store *s) {
  free(s->seg);
  free(s->ring);
  for (int64_t p = 0; p < s->npages; p++) free(s->pages[p]);
  free(s->pages);
  s->seg = NULL;
  s->ring = NULL;
  s->pages = NULL;
  s->npages = 0;
  s->seg_cap = 0;
}

void rt_exec_free(rt_exec *x) {
  if (x->vals)
    for (int i = 0; i < x->nvals; i++) store_free(&x->vals[i].st);
  free(x->vals);
  for (int i = 0; i < 4; i++) free(x->scratch[i]);
  free(x->prof_ms);
  free(x->prof_calls);
  memset(x, 0, sizeof *x);
}

void rt_exec_reset(rt_exec *x) {
  for (int i = 0; i < x->nvals; i++) {
    rt_store *s = &x->vals[i].st;
    int64_t keep = s->keep, re = s->row_elems, pr = s->page_rows;
    rt_quant q = s->quant, hq = s->hquant;
    bool narrow = s->hist_narrow;
    store_free(s);
    memset(s, 0, sizeof *s); /* valid_r0 and comp_r0 start over too */
    s->hist_narrow = narrow;
    s->keep = keep;
    s->row_elems = re;
    s->page_rows = pr;
    s->quant = q;
    s->hquant = hq;
  }
}

static size_t qsize(rt_quant q) { return q == RT_Q_F32 ? 4 : 2; }

/* Tensor storage starts on a cache line: a kernel's vector (or AMX tile)
 * rows then never straddle two, which a plain malloc of a large block
 * (16 bytes past a page) made every load of a 64-byte row do. */
static void *alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

static float dequant(rt_quant q, const void *p, int64_t i) {
  if (q == RT_Q_F32) return ((const float *)p)[i];
  uint16_t h = ((const uint16_t *)p)[i];
  return q == RT_Q_BF16 ? ut_bf16_to_f32(h) : ut_f16_to_f32(h);
}

static void quant_into(rt_quant q, void *dst, const float *src, int64_t n) {
  if (q == RT_Q_F32) {
    memcpy(dst, src, (size_t)n * 4);
    return;
  }
  uint16_t *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = q == RT_Q_BF16 ? ut_f32_to_bf16(src[i]) : ut_f32_to_f16(src[i]);
}

static float *scratch(rt_exec *x, int slot, size_t n) {
  if (x->scratch_cap[slot] < n) {
    float *p = realloc(x->scratch[slot], n * sizeof *p);
    if (!p) return NULL;
    x->scratch[slot] = p;
    x->scratch_cap[slot] = n;
  }
  return x->scratch[slot];
}

const float *rt_row(rt_exec *x, const ir_value *v, int64_t r, int slot) {
  rt_val *rv = rt_val_of(x, v);
  rt_store *s = &rv->st;
  if (!rv->rows) return NULL;
  if (r < s->valid_r0 || (r >= s->seg_r0 && r < s->comp_r0)) {
    snprintf(x->err, sizeof x->err, "internal error: row %lld of a %s result was skipped "
             "by demand analysis but is read", (long long)r, ir_ops[v->def->code].name);
    return NULL;
  }
  if (r >= s->seg_r0 && r < s->seg_r1) return s->seg + (r - s->seg_r0) * s->seg_elems;
  if (r < s->hist_r0 || r >= s->seg_r0 || s->keep == 0) {
    snprintf(x->err, sizeof x->err, "internal error: row %lld of a %s result is not "
             "kept (kept rows %lld..%lld)", (long long)r, ir_ops[v->def->code].name,
             (long long)s->hist_r0, (long long)s->seg_r1 - 1);
    return NULL;
  }
  const void *src;
  int64_t off;
  if (s->keep > 0) {
    src = s->ring;
    off = (r % s->keep) * s->row_elems;
  } else {
    src = s->pages[r / s->page_rows];
    off = (r % s->page_rows) * s->row_elems;
  }
  if (s->hquant == RT_Q_F32) return (const float *)src + off;
  float *out = scratch(x, slot, (size_t)s->row_elems);
  if (!out) {
    snprintf(x->err, sizeof x->err, "out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < s->row_elems; i++) out[i] = dequant(s->hquant, src, off + i);
  return out;
}

float *rt_out_row(rt_exec *x, const ir_value *v, int64_t r) {
  rt_store *s = &rt_val_of(x, v)->st;
  return s->seg + (r - s->seg_r0) * s->seg_elems;
}

/* Moves the segment's rows into the history the consumers need. */
static bool flush(rt_exec *x, rt_val *v) {
  rt_store *s = &v->st;
  if (s->keep == 0 || s->seg_r1 <= s->seg_r0) return true;
  size_t rowbytes = (size_t)s->row_elems * qsize(s->hquant);
  if (s->keep > 0) {
    if (!s->ring) {
      s->ring = alloc64((size_t)s->keep * rowbytes);
      if (!s->ring) return false;
      memset(s->ring, 0, (size_t)s->keep * rowbytes);
    }
    int64_t from = s->seg_r1 - s->keep > s->seg_r0 ? s->seg_r1 - s->keep : s->seg_r0;
    for (int64_t r = from; r < s->seg_r1; r++)
      quant_into(s->hquant, (char *)s->ring + (size_t)(r % s->keep) * rowbytes,
                 s->seg + (r - s->seg_r0) * s->seg_elems, s->row_elems);
    int64_t lo = s->seg_r1 - s->keep;
    if (lo > s->hist_r0) s->hist_r0 = lo;
  } else {
    int64_t need_pages = (s->seg_r1 + s->page_rows - 1) / s->page_rows;
    if (need_pages > s->npages) {
      /* the page table grows; pages themselves never move */
      void **pt = realloc(s->pages, (size_t)need_pages * sizeof *pt);
      if (!pt) return false;
      for (int64_t p = s->npages; p < need_pages; p++) pt[p] = NULL;
      s->pages = pt;
      s->npages = need_pages;
    }
    for (int64_t r = s->seg_r0; r < s->seg_r1; r++) {
      int64_t p = r / s->page_rows;
      if (!s->pages[p]) {
        s->pages[p] = alloc64((size_t)s->page_rows * rowbytes);
        if (!s->pages[p]) return false;
      }
      quant_into(s->hquant, (char *)s->pages[p] + (size_t)(r % s->page_rows) * rowbytes,
                 s->seg + (r - s->seg_r0) * s->seg_elems, s->row_elems);
    }
  }
  (void)x;
  return true;
}

static void round_rows(rt_store *s) {
  int64_t n = (s->seg_r1 - s->seg_r0) * s->seg_elems;
  for (int64_t i = 0; i < n; i++)
    s->seg[i] = s->quant == RT_Q_BF16 ? ut_bf16_to_f32(ut_f32_to_bf16(s->seg[i]))
                                      : ut_f16_to_f32(ut_f32_to_f16(s->seg[i]));
}

hsart_status rt_exec_segment(rt_exec *x, const int32_t *tokens, int64_t t0, int64_t n) {
  return rt_exec_prefill(x, tokens, t0, n, -1);
}

/* --check-numerics: the first NaN or infinity in the rows an op just
 * computed, reported with the op, the layer it came from and the row. */
static bool check_finite(rt_exec *x, const ir_op *op) {
  for (int i = 0; i < op->nout; i++) {
    const rt_val *v = rt_val_of(x, op->out[i]);
    const rt_store *s = &v->st;
    if (v->virt || !v->rows || op->out[i]->type.dtype != IR_F32) continue;
    for (int64_t r = s->comp_r0; r < s->seg_r1; r++) {
      const float *row = s->seg + (size_t)(r - s->seg_r0) * (size_t)s->seg_elems;
      for (int64_t e = 0; e < s->seg_elems; e++)
        if (!isfinite(row[e])) {
          snprintf(x->err, sizeof x->err, "%s (%s) produced %s at row %lld, element %lld, of "
                   "the segment of positions %lld..%lld", ir_ops[op->code].name,
                   op->origin ? op->origin : "model", isnan(row[e]) ? "NaN" : "infinity",
                   (long long)r, (long long)e, (long long)x->t0, (long long)x->t1 - 1);
          return false;
        }
    }
  }
  return true;
}

static hsart_status backend_fail(rt_exec *x, const char *what) {
  if (!x->err[0]) snprintf(x->err, sizeof x->err, "%s", what);
  return strstr(x->err, "out of memory") ? HSART_ENOMEM : HSART_EINVAL;
}

/* 1. Sizes the stores for tokens [t0, t0 + n) and writes the tokens. */
static hsart_status seg_begin(rt_exec *x, const int32_t *tokens, int64_t t0, int64_t n,
                              int64_t final) {
  int64_t t1 = t0 + n;
  x->t0 = t0;
  x->t1 = t1;
  x->tokens = tokens;
  x->err[0] = 0;
  bool dev = x->be && x->be->device_resident;
  for (int i = 0; i < x->nvals; i++) {
    rt_val *v = &x->vals[i];
    if (!v->rows) continue;
    rt_store *s = &v->st;
    ir_dim d0 = v->v->type.dims[0];
    s->seg_r0 = rt_dim_at(d0, t0);
    s->seg_r1 = rt_dim_at(d0, t1);
    s->comp_r0 = s->seg_r0;
    if (final >= 0 && x->g->demand_done && v->v->demand != IR_ALL_ROWS) {
      int64_t first = rt_dim_at(d0, final) - v->v->demand;
      if (first > s->comp_r0) {
        /* rows before `first` are never read again: remember, to catch a
         * read of one as the bug it would be */
        s->comp_r0 = first < s->seg_r1 ? first : s->seg_r1;
        if (s->comp_r0 > s->valid_r0) s->valid_r0 = s->comp_r0;
      }
    }
    s->seg_elems = inner_elems(&v->v->type, t1);
    size_t need = (size_t)(s->seg_r1 - s->seg_r0) * (size_t)s->seg_elems;
    if (v->virt) need = 0; /* computed through, never stored */
    /* a backend with its own device memory needs host rows only for the
     * tokens and the logits (and for checking or mirroring every op) */
    if (dev && !x->check_numerics && !x->host_mirror && v->v != x->g->input &&
        v->v != x->g->output)
      need = 0;
    if (need == 0) need = 1; /* rows of zero elements still need a valid pointer */
    if (need > s->seg_cap) {
      float *p = alloc64(need * sizeof *p);
      if (!p) {
        snprintf(x->err, sizeof x->err, "out of memory for %zu activations", need);
        return HSART_ENOMEM;
      }
      if (s->seg) memcpy(p, s->seg, s->seg_cap * sizeof *p);
      free(s->seg);
      s->seg = p;
      s->seg_cap = need;
    }
  }
  rt_val *in = rt_val_of(x, x->g->input);
  memcpy(in->st.seg, tokens, (size_t)n * sizeof *tokens);
  if (x->be && x->be->segment_begin && !x->be->segment_begin(x->be_state, x))
    return backend_fail(x, "the backend could not start the segment");
  return HSART_OK;
}

/* Whether op computes rows in this segment. */
static bool op_runs(rt_exec *x, const ir_op *op) {
  if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) return false;
  rt_val *ov = rt_val_of(x, op->out[0]);
  if (ov->virt) return false;
  return !(ov->rows && ov->st.seg_r1 <= ov->st.comp_r0);
}

/* 2b. After op ran: 16-bit values rounded, numerics checked. */
static hsart_status op_done(rt_exec *x, const ir_op *op, bool ok) {
  if (!ok) {
    char what[64];
    snprintf(what, sizeof what, "%s failed", ir_ops[op->code].name);
    return backend_fail(x, what);
  }
  bool dev = x->be && x->be->device_resident;
  for (int i = 0; i < op->nout && !dev; i++) {
    rt_store *o = &rt_val_of(x, op->out[i])->st;
    if (o->quant != RT_Q_F32) round_rows(o);
  }
  if (x->check_numerics && !check_finite(x, op)) return HSART_ENUMERIC;
  return HSART_OK;
}

/* 3. Keeps what later segments will read (a device-resident backend keeps
 * it in its memory, and copies the logits back). */
static hsart_status seg_end(rt_exec *x) {
  if (x->be && x->be->device_resident) {
    if (x->be->segment_end && !x->be->segment_end(x->be_state, x))
      return backend_fail(x, "the backend could not end the segment");
    return HSART_OK;
  }
  for (int i = 0; i < x->nvals; i++)
    if (x->vals[i].rows && !flush(x, &x->vals[i])) {
      snprintf(x->err, sizeof x->err, "out of memory for the caches");
      return HSART_ENOMEM;
    }
  return HSART_OK;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 2a. op's rows, by the backend or the reference; with the profiler, timed
 * (a backend that queues work is synced before and after). */
static bool run_op(rt_exec *x, const ir_op *op) {
  if (!x->prof_ms) return x->be ? x->be->run(x->be_state, x, op) : rt_ref_run(x, op);
  const rt_store *o = &x->vals[op->out[0]->index].st;
  bool one = o->seg_r1 - o->comp_r0 == 1;
  bool (*sync)(void *, rt_exec *) = x->be ? x->be->sync : NULL;
  if (sync && !sync(x->be_state, x)) return false;
  double t0 = now_ms();
  bool ok = x->be ? x->be->run(x->be_state, x, op) : rt_ref_run(x, op);
  if (ok && sync) ok = sync(x->be_state, x);
  size_t at = 2 * (size_t)op->out[0]->index + one;
  x->prof_ms[at] += now_ms() - t0;
  x->prof_calls[at]++;
  return ok;
}

hsart_status rt_exec_prefill(rt_exec *x, const int32_t *tokens, int64_t t0, int64_t n,
                             int64_t final) {
  hsart_status st = seg_begin(x, tokens, t0, n, final);
  /* 2. every op, in order */
  for (ir_op *op = x->g->first; op && st == HSART_OK; op = op->next)
    if (op_runs(x, op)) st = op_done(x, op, run_op(x, op));
  return st == HSART_OK ? seg_end(x) : st;
}

hsart_status rt_exec_decode_batch(rt_exec *const *xs, int n, const int32_t *tokens,
                                  const int64_t *pos, int *failed) {
  *failed = -1;
  if (n <= 0) return HSART_OK;
  const rt_backend *be = xs[0]->be;
  for (int i = 1; i < n; i++)
    if (xs[i]->g != xs[0]->g || xs[i]->be != be) {
      *failed = i;
      snprintf(xs[i]->err, sizeof xs[i]->err,
               "a batch's sessions must run one compiled model on one backend");
      return HSART_EINVAL;
    }
  /* per op: the sessions that compute rows of it, their states, and
   * where each stands in xs */
  rt_exec **run = malloc((size_t)n * sizeof *run);
  void **states = malloc((size_t)n * sizeof *states);
  int *at = malloc((size_t)n * sizeof *at);
  if (!run || !states || !at) {
    free(run);
    free(states);
    free(at);
    *failed = 0;
    snprintf(xs[0]->err, sizeof xs[0]->err, "out of memory");
    return HSART_ENOMEM;
  }
  hsart_status st = HSART_OK;
  for (int i = 0; i < n && st == HSART_OK; i++)
    if ((st = seg_begin(xs[i], tokens + i, pos[i], 1, -1)) != HSART_OK) *failed = i;
  for (ir_op *op = xs[0]->g->first; op && st == HSART_OK; op = op->next) {
    int k = 0;
    for (int i = 0; i < n; i++)
      if (op_runs(xs[i], op)) run[k] = xs[i], states[k] = xs[i]->be_state, at[k++] = i;
    if (!k) continue;
    int bad = -1;
    bool ok = true;
    if (be && be->run_batch && k > 1 && !xs[0]->prof_ms) { /* the profiler times each */
      ok = be->run_batch(states, run, k, op, &bad);
    } else {
      for (int i = 0; i < k && ok; i++)
        if (!(ok = run_op(run[i], op))) bad = i;
    }
    if (!ok && bad < 0) bad = 0;
    for (int i = 0; i < k && st == HSART_OK; i++)
      if ((st = op_done(run[i], op, ok || i != bad)) != HSART_OK) *failed = at[i];
  }
  for (int i = 0; i < n && st == HSART_OK; i++)
    if ((st = seg_end(xs[i])) != HSART_OK) *failed = i;
  free(run);
  free(states);
  free(at);
  return st;
}

const float *rt_exec_logits(rt_exec *x, int64_t t) {
  rt_store *s = &rt_val_of(x, x->g->output)->st;
  if (t < s->seg_r0 || t >= s->seg_r1) return NULL;
  return s->seg + (t - s->seg_r0) * s->seg_elems;
}
