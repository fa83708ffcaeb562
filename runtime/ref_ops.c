/* ref_ops.c - the reference implementation of every IR op.
 *
 * One function per op (rt_op_NAME, bound through ir/ops.def), each
 * computing the op's output rows of the current segment from rows of its
 * inputs.  The semantics follow PAPER.md; where the paper leaves a choice,
 * the comment at the function says what is done.  Sums are accumulated in
 * double; nothing here aims at speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/interp.h"
#include "util/half.h"

#define OUT(op) ((op)->out[0])
#define IN(op, i) ((op)->in[i])
#define DIM(v, i) ((v)->type.dims[i].n)     /* a constant dimension */
#define RANK(v) ((v)->type.rank)
#define LASTDIM(v) DIM(v, RANK(v) - 1)
#define NEG_INF (-INFINITY)

static bool fail(rt_exec *x, const char *msg) {
  if (!x->err[0]) snprintf(x->err, sizeof x->err, "%s", msg);
  return false;
}

/* Reads row r or fails the op (rt_row has set the message). */
#define ROW(dst, v, r, slot)                           \
  const float *dst = rt_row(x, (v), (r), (slot));      \
  if (!dst) return false

static const float *W(rt_exec *x, const ir_value *v) { return rt_val_of(x, v)->w; }

/* The first output row the op computes this segment (later than the
 * segment's first row when demand analysis says earlier ones are unused). */
static int64_t seg0(rt_exec *x, const ir_value *v) { return rt_val_of(x, v)->st.comp_r0; }
static int64_t seg1(rt_exec *x, const ir_value *v) { return rt_val_of(x, v)->st.seg_r1; }
static int64_t elems(rt_exec *x, const ir_value *v) { return rt_val_of(x, v)->st.seg_elems; }

static double dot(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* A growable buffer of doubles for scores. */
typedef struct dbuf {
  double *p;
  size_t cap;
} dbuf;

static double *dbuf_get(dbuf *b, size_t n) {
  if (n > b->cap) {
    double *p = realloc(b->p, n * sizeof *p);
    if (!p) return NULL;
    b->p = p;
    b->cap = n;
  }
  return b->p;
}

/* ---- graph plumbing ---------------------------------------------------- */

bool rt_op_input(rt_exec *x, const ir_op *op) { (void)x, (void)op; return true; }
bool rt_op_weight(rt_exec *x, const ir_op *op) { (void)x, (void)op; return true; }
bool rt_op_return(rt_exec *x, const ir_op *op) { (void)x, (void)op; return true; }

/* ---- per-row ops ------------------------------------------------------- */

bool rt_op_embed(rt_exec *x, const ir_op *op) {
  const float *tab = W(x, IN(op, 1));
  int64_t V = DIM(IN(op, 1), 0), D = DIM(IN(op, 1), 1);
  for (int64_t t = seg0(x, OUT(op)); t < seg1(x, OUT(op)); t++) {
    ROW(id, IN(op, 0), t, 0);
    int32_t tok;
    memcpy(&tok, id, 4);
    if (tok < 0 || tok >= V) {
      snprintf(x->err, sizeof x->err, "token %d at position %lld is outside the vocabulary "
               "(0..%lld)", tok, (long long)t, (long long)V - 1);
      return false;
    }
    memcpy(rt_out_row(x, OUT(op), t), tab + (size_t)tok * D, (size_t)D * 4);
  }
  return true;
}

static bool norm(rt_exec *x, const ir_op *op, bool layer) {
  const float *g = W(x, IN(op, 1));
  int64_t D = LASTDIM(IN(op, 0));
  double eps = ir_get_attr(op, "eps")->f;
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(in, IN(op, 0), r, 0);
    float *out = rt_out_row(x, OUT(op), r);
    for (int64_t v = 0; v < elems(x, OUT(op)) / D; v++) {
      const float *a = in + v * D;
      double mean = 0, sq = 0;
      if (layer) {
        for (int64_t i = 0; i < D; i++) mean += a[i];
        mean /= (double)D;
      }
      for (int64_t i = 0; i < D; i++) sq += (a[i] - mean) * (a[i] - mean);
      double inv = 1.0 / sqrt(sq / (double)D + eps);
      for (int64_t i = 0; i < D; i++) out[v * D + i] = (float)((a[i] - mean) * inv * g[i]);
    }
  }
  return true;
}

bool rt_op_rmsnorm(rt_exec *x, const ir_op *op) { return norm(x, op, false); }
bool rt_op_layernorm(rt_exec *x, const ir_op *op) { return norm(x, op, true); }

/* v rounded to bf16 (to nearest even), as f32 */
static float rb(float v) { return ut_bf16_to_f32(ut_f32_to_bf16(v)); }

/* bf16: the linear under bf16 math (rt_backend_config.cpu_bf16), its input
 * rounded to bf16 (the matrix is bf16 already), then the same double sums
 * of exact products. */
static bool linear(rt_exec *x, const ir_op *op, bool bf16) {
  const float *w = W(x, IN(op, 1));
  int64_t O = DIM(IN(op, 1), 0), I = DIM(IN(op, 1), 1);
  float *a = bf16 ? malloc((size_t)I * sizeof *a) : NULL;
  if (bf16 && !a) return fail(x, "out of memory");
  bool ok = true;
  for (int64_t r = seg0(x, OUT(op)); ok && r < seg1(x, OUT(op)); r++) {
    const float *in = rt_row(x, IN(op, 0), r, 0);
    if (!in) { /* rt_row has set the message */
      ok = false;
      break;
    }
    float *out = rt_out_row(x, OUT(op), r);
    for (int64_t v = 0; v < elems(x, OUT(op)) / O; v++) {
      const float *xv = in + v * I;
      for (int64_t k = 0; bf16 && k < I; k++) a[k] = rb(xv[k]);
      for (int64_t o = 0; o < O; o++) out[v * O + o] = (float)dot(bf16 ? a : xv, w + o * I, I);
    }
  }
  free(a);
  return ok;
}

bool rt_op_linear(rt_exec *x, const ir_op *op) { return linear(x, op, false); }
bool rt_op_linear_bf16(rt_exec *x, const ir_op *op) { return linear(x, op, true); }

/* Same elements, new shape: a copy of each row. */
static bool copy_rows(rt_exec *x, const ir_op *op) {
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(in, IN(op, 0), r, 0);
    memcpy(rt_out_row(x, OUT(op), r), in, (size_t)elems(x, OUT(op)) * 4);
  }
  return true;
}

bool rt_op_split_heads(rt_exec *x, const ir_op *op) { return copy_rows(x, op); }
bool rt_op_merge_heads(rt_exec *x, const ir_op *op) { return copy_rows(x, op); }

/* Rotary embedding, "rotate half": the pair (i, i + d/2) turns by
 * pos * theta^(-2i/d).  The position axis is the one before the heads: the
 * row index for [L, H, d], the in-chunk index for [C, P, H, d]. */
bool rt_op_rope(rt_exec *x, const ir_op *op) {
  const ir_value *v = IN(op, 0);
  int rank = RANK(v);
  int64_t d = LASTDIM(v), H = DIM(v, rank - 2), half = d / 2;
  int64_t P = rank == 3 ? 1 : DIM(v, rank - 3);
  double theta = ir_get_attr(op, "theta")->f;
  /* rows of a block axis stand for a token position: pos_mul * r + pos_add */
  int64_t mul = ir_attr_i(op, "pos_mul", 1), add = ir_attr_i(op, "pos_add", 0);
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(in, v, r, 0);
    float *out = rt_out_row(x, OUT(op), r);
    int64_t nvec = elems(x, OUT(op)) / d;
    for (int64_t k = 0; k < nvec; k++) {
      int64_t pos = rank == 3 ? r * mul + add : (k / H) % P;
      const float *a = in + k * d;
      float *b = out + k * d;
      for (int64_t i = 0; i < half; i++) {
        double ang = (double)pos * pow(theta, -2.0 * (double)i / (double)d);
        double c = cos(ang), s = sin(ang);
        b[i] = (float)(a[i] * c - a[i + half] * s);
        b[i + half] = (float)(a[i + half] * c + a[i] * s);
      }
    }
  }
  return true;
}

static bool binary(rt_exec *x, const ir_op *op, int kind) {
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(a, IN(op, 0), r, 0);
    ROW(b, IN(op, 1), r, 1);
    float *out = rt_out_row(x, OUT(op), r);
    for (int64_t i = 0; i < elems(x, OUT(op)); i++)
      out[i] = kind == 0 ? a[i] + b[i] : (float)(a[i] / (1.0 + exp(-(double)a[i])) * b[i]);
  }
  return true;
}

bool rt_op_add(rt_exec *x, const ir_op *op) { return binary(x, op, 0); }
bool rt_op_silu_mul(rt_exec *x, const ir_op *op) { return binary(x, op, 1); }

bool rt_op_bias_add(rt_exec *x, const ir_op *op) {
  const float *b = W(x, IN(op, 1));
  int64_t O = LASTDIM(IN(op, 0));
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(a, IN(op, 0), r, 0);
    float *out = rt_out_row(x, OUT(op), r);
    for (int64_t i = 0; i < elems(x, OUT(op)); i++) out[i] = a[i] + b[i % O];
  }
  return true;
}

bool rt_op_sigmoid(rt_exec *x, const ir_op *op) {
  for (int64_t r = seg0(x, OUT(op)); r < seg1(x, OUT(op)); r++) {
    ROW(a, IN(op, 0), r, 0);
    float *out = rt_out_row(x, OUT(op), r);
    for (int64_t i = 0; i < elems(x, OUT(op)); i++) out[i] = (float)(1.0 / (1.0 + exp(-(double)a[i])));
  }
  return true;
}

/* Rounding to the storage type happens in the interpreter for every value
 * stored in 16 bits; the op itself is a copy. */
bool rt_op_quantize(rt_exec *x, const ir_op *op) { return copy_rows(x, op); }

/* ---- chunk rows -------------------------------------------------------- */

bool rt_op_chunk(rt_exec *x, const ir_op *op) {
  int64_t S = ir_attr_i(op, "size", 1), D = LASTDIM(IN(op, 0));
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    float *out = rt_out_row(x, OUT(op), c);
    for (int64_t j = 0; j < S; j++) {
      ROW(h, IN(op, 0), c * S + j, 0);
      memcpy(out + j * D, h, (size_t)D * 4);
    }
  }
  return true;
}

bool rt_op_append_row(rt_exec *x, const ir_op *op) {
  const float *extra = W(x, IN(op, 1));
  int64_t D = LASTDIM(IN(op, 0)), in_elems = elems(x, IN(op, 0));
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    ROW(in, IN(op, 0), c, 0);
    float *out = rt_out_row(x, OUT(op), c);
    memcpy(out, in, (size_t)in_elems * 4);
    memcpy(out + in_elems, extra, (size_t)D * 4);
  }
  return true;
}

bool rt_op_rows(rt_exec *x, const ir_op *op) {
  int64_t b = ir_attr_i(op, "begin", 0), D = LASTDIM(IN(op, 0));
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    ROW(in, IN(op, 0), c, 0);
    memcpy(rt_out_row(x, OUT(op), c), in + b * D, (size_t)elems(x, OUT(op)) * 4);
  }
  return true;
}

bool rt_op_row(rt_exec *x, const ir_op *op) {
  int64_t i = ir_attr_i(op, "row", 0), D = LASTDIM(IN(op, 0));
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    ROW(in, IN(op, 0), c, 0);
    memcpy(rt_out_row(x, OUT(op), c), in + i * D, (size_t)D * 4);
  }
  return true;
}

bool rt_op_zero_row(rt_exec *x, const ir_op *op) {
  int64_t i = ir_attr_i(op, "row", 0), D = LASTDIM(IN(op, 0));
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    ROW(in, IN(op, 0), c, 0);
    float *out = rt_out_row(x, OUT(op), c);
    memcpy(out, in, (size_t)elems(x, OUT(op)) * 4);
    memset(out + i * D, 0, (size_t)D * 4);
  }
  return true;
}

bool rt_op_mean_rows(rt_exec *x, const ir_op *op) {
  int64_t D = LASTDIM(IN(op, 0)), P = DIM(IN(op, 0), 1);
  for (int64_t c = seg0(x, OUT(op)); c < seg1(x, OUT(op)); c++) {
    ROW(in, IN(op, 0), c, 0);
    float *out = rt_out_row(x, OUT(op), c);
    for (int64_t i = 0; i < D; i++) {
      double s = 0;
      for (int64_t j = 0; j < P; j++) s += in[j * D + i];
      out[i] = (float)(s / (double)P);
    }
  }
  return true;
}

/* Landmark of block b (Landmark Attention, hsac's reading): the mean of the
 * block's normalized inputs plus a learned landmark embedding. */
bool rt_op_block_landmark(rt_exec *x, const ir_op *op) {
  int64_t B = ir_attr_i(op, "block", 1), D = LASTDIM(IN(op, 0));
  const float *e = W(x, IN(op, 1));
  for (int64_t b = seg0(x, OUT(op)); b < seg1(x, OUT(op)); b++) {
    float *out = rt_out_row(x, OUT(op), b);
    for (int64_t i = 0; i < D; i++) out[i] = 0;
    double *acc = calloc((size_t)D, sizeof *acc);
    if (!acc) return fail(x, "out of memory");
    for (int64_t j = 0; j < B; j++) {
      const float *h = rt_row(x, IN(op, 0), b * B + j, 0);
      if (!h) {
        free(acc);
        return false;
      }
      for (int64_t i = 0; i < D; i++) acc[i] += h[i];
    }
    for (int64_t i = 0; i < D; i++) out[i] = (float)(acc[i] / (double)B + e[i]);
    free(acc);
  }
  return true;
}

/* ---- retrieval --------------------------------------------------------- */

/* s(t, g, i) = q_r(t) . lmk[i] / sqrt(d_r) + offset, for chunks that are
 * complete before the token's own chunk (i < floor(t / S)) and, with
 * exclude_window = X, start at least X tokens before the query position;
 * -inf elsewhere.  per = chunk: every token of chunk c uses the query of
 * the last token of chunk c - 1 (chunk 0 retrieves nothing). */
/* The retrieval rule of a landmark_scores op, shared by the op and by the
 * streaming retrieve kernel so the two cannot disagree. */
typedef struct retr_rule {
  const ir_value *q, *lmk;
  int64_t S, X, G, dr;
  bool per_chunk;
  bool grouped; /* landmarks [C, G, dr]: group g scores against its own slice */
  double off, scale;
} retr_rule;

static retr_rule retr_rule_of(rt_exec *x, const ir_op *sc) {
  retr_rule r = {.q = IN(sc, 0), .lmk = IN(sc, 1)};
  r.S = ir_attr_i(sc, "chunk", 1);
  r.X = ir_attr_i(sc, "exclude_window", 0);
  r.G = DIM(r.q, 1);
  r.dr = DIM(r.q, 2);
  r.grouped = r.lmk->type.rank == 3;
  const ir_attr *per = ir_get_attr(sc, "per");
  r.per_chunk = per && !strcmp(per->s, "chunk");
  const ir_attr *fixed = ir_get_attr(sc, "offset");
  r.off = fixed ? fixed->f : 0;
  if (sc->nin == 3) r.off += W(x, IN(sc, 2))[0];
  r.scale = 1.0 / sqrt((double)r.dr);
  return r;
}

/* Token t's own chunk (chunks before it are candidates) and the position
 * whose query it uses. */
static int64_t retr_query_pos(const retr_rule *r, int64_t t, int64_t *own) {
  *own = t / r->S;
  return r->per_chunk ? *own * r->S - 1 : t;
}

/* Chunk i (before the own chunk) is skipped when it starts within the last
 * X tokens before the query position. */
static bool retr_excluded(const retr_rule *r, int64_t i, int64_t tq) {
  return r->X > 0 && i * r->S > tq - r->X;
}

static float retr_score(const retr_rule *r, const float *qr, int64_t g, const float *l) {
  return (float)(dot(qr + g * r->dr, r->grouped ? l + g * r->dr : l, r->dr) * r->scale +
                 r->off);
}

bool rt_op_landmark_scores(rt_exec *x, const ir_op *op) {
  retr_rule r = retr_rule_of(x, op);
  int64_t C = elems(x, OUT(op)) / r.G; /* chunks complete at the segment's end */
  for (int64_t t = seg0(x, OUT(op)); t < seg1(x, OUT(op)); t++) {
    float *out = rt_out_row(x, OUT(op), t);
    for (int64_t i = 0; i < r.G * C; i++) out[i] = NEG_INF;
    int64_t own, tq = retr_query_pos(&r, t, &own);
    if (own == 0) continue;
    ROW(qr, r.q, tq, 0);
    for (int64_t i = 0; i < own && i < C; i++) {
      if (retr_excluded(&r, i, tq)) continue;
      ROW(l, r.lmk, i, 1);
      for (int64_t g = 0; g < r.G; g++) out[g * C + i] = retr_score(&r, qr, g, l);
    }
  }
  return true;
}

/* A K-entry list kept best first: (v, i) displaces the last entry only if
 * strictly better, so among equal scores the lower (earlier) index stays. */
static void topk_offer(float *val, int64_t *idx, int64_t *n, int64_t K, float v, int64_t i) {
  if (v == NEG_INF || isnan(v) || (*n == K && !(v > val[K - 1]))) return;
  int64_t p = *n < K ? (*n)++ : K - 1;
  while (p > 0 && v > val[p - 1]) {
    val[p] = val[p - 1];
    idx[p] = idx[p - 1];
    p--;
  }
  val[p] = v;
  idx[p] = i;
}

/* Orders the n kept entries most recent first (by index, descending) and
 * writes K slots; empty ones get index -1 and score -inf. */
static void topk_emit(float *val, int64_t *idx, int64_t n, int64_t K, int32_t *oi, float *ov) {
  for (int64_t a = 1; a < n; a++) {
    int64_t ia = idx[a], b = a;
    float va = val[a];
    while (b > 0 && idx[b - 1] < ia) {
      idx[b] = idx[b - 1];
      val[b] = val[b - 1];
      b--;
    }
    idx[b] = ia;
    val[b] = va;
  }
  for (int64_t k = 0; k < K; k++) {
    oi[k] = k < n ? (int32_t)idx[k] : -1;
    ov[k] = k < n ? val[k] : NEG_INF;
  }
}

/* Top-k of each score vector, K slots kept sorted as they stream by (never
 * a sort of all C scores).  Ties go to the lower chunk index.  The selected
 * chunks are then ordered most recent first; empty slots (fewer than K
 * eligible chunks) get index -1 and score -inf and come last. */
bool rt_op_topk(rt_exec *x, const ir_op *op) {
  const ir_value *s = IN(op, 0);
  int64_t K = ir_attr_i(op, "k", 1), G = DIM(s, 1);
  int64_t C = elems(x, s) / G;
  int64_t *idx = malloc((size_t)K * sizeof *idx);
  float *val = malloc((size_t)K * sizeof *val);
  if (!idx || !val) {
    free(idx);
    free(val);
    return fail(x, "out of memory");
  }
  for (int64_t t = seg0(x, OUT(op)); t < seg1(x, OUT(op)); t++) {
    const float *row = rt_row(x, s, t, 0);
    if (!row) {
      free(idx);
      free(val);
      return false;
    }
    int32_t *oi = (int32_t *)rt_out_row(x, op->out[0], t);
    float *ov = rt_out_row(x, op->out[1], t);
    for (int64_t g = 0; g < G; g++) {
      int64_t n = 0;
      for (int64_t i = 0; i < C; i++) topk_offer(val, idx, &n, K, row[g * C + i], i);
      topk_emit(val, idx, n, K, oi + g * K, ov + g * K);
    }
  }
  free(idx);
  free(val);
  return true;
}

/* The fused retrieve kernel: the same scores and the same top-k as
 * landmark_scores followed by topk, but each query streams over the
 * landmarks keeping a K-entry list, so no [L, G, C] score matrix exists. */
bool rt_stream_topk(rt_exec *x, const ir_op *sc, const ir_op *op) {
  retr_rule r = retr_rule_of(x, sc);
  int64_t G = r.G, K = ir_attr_i(op, "k", 1);
  int64_t C = rt_dim_at(r.lmk->type.dims[0], x->t1);
  int64_t *idx = malloc((size_t)(G * K) * sizeof *idx);
  float *val = malloc((size_t)(G * K) * sizeof *val);
  int64_t *cnt = malloc((size_t)G * sizeof *cnt);
  bool ok = idx && val && cnt;
  if (!ok) fail(x, "out of memory");
  for (int64_t t = seg0(x, op->out[0]); ok && t < seg1(x, op->out[0]); t++) {
    int64_t own, tq = retr_query_pos(&r, t, &own);
    for (int64_t g = 0; g < G; g++) cnt[g] = 0;
    const float *qr = own > 0 ? rt_row(x, r.q, tq, 0) : NULL;
    if (own > 0 && !qr) { ok = false; break; }
    for (int64_t i = 0; i < own && i < C; i++) {
      if (retr_excluded(&r, i, tq)) continue;
      const float *l = rt_row(x, r.lmk, i, 1);
      if (!l) { ok = false; break; }
      for (int64_t g = 0; g < G; g++)
        topk_offer(val + g * K, idx + g * K, &cnt[g], K, retr_score(&r, qr, g, l), i);
    }
    if (!ok) break;
    int32_t *oi = (int32_t *)rt_out_row(x, op->out[0], t);
    float *ov = rt_out_row(x, op->out[1], t);
    for (int64_t g = 0; g < G; g++)
      topk_emit(val + g * K, idx + g * K, cnt[g], K, oi + g * K, ov + g * K);
  }
  free(idx);
  free(val);
  free(cnt);
  return ok;
}

static double softplus(double s) { return s > 30 ? s : log1p(exp(s)); }

/* The amount a length_offset of N lowers the scores of the token at
 * position t by: ln((t + 1) / N) once t + 1 > N, else 0. */
static double rt_length_offset(int64_t t, int64_t N) {
  return N > 0 && t + 1 > N ? log((double)(t + 1) / (double)N) : 0.0;
}

/* w_k = sigmoid(s_k) prod_{j<k} (1 - sigmoid(s_j)) = exp(s_k - sum_{j<=k}
 * softplus(s_j)), in slot order (most recent first).  Empty slots: 0.
 * With length_offset N, s_k - rt_length_offset(t, N) for the token at t. */
bool rt_op_stickbreak(rt_exec *x, const ir_op *op) {
  int64_t K = LASTDIM(IN(op, 0)), N = ir_attr_i(op, "length_offset", 0);
  for (int64_t t = seg0(x, OUT(op)); t < seg1(x, OUT(op)); t++) {
    ROW(s, IN(op, 0), t, 0);
    float *w = rt_out_row(x, OUT(op), t);
    double sh = rt_length_offset(t, N);
    for (int64_t v = 0; v < elems(x, OUT(op)) / K; v++) {
      double acc = 0;
      for (int64_t k = 0; k < K; k++) {
        double sk = (double)s[v * K + k] - sh;
        if (sk == NEG_INF) {
          w[v * K + k] = 0;
          continue;
        }
        acc += softplus(sk);
        w[v * K + k] = (float)exp(sk - acc);
      }
    }
  }
  return true;
}

/* Softmax over the last axis; -inf entries get 0, and so does a vector
 * with no finite entry.  With a second input (the authors' pos_decay, a
 * learned scalar d), slot k (most recent first) scores s_k + k * d first. */
bool rt_op_softmax(rt_exec *x, const ir_op *op) {
  int64_t K = LASTDIM(IN(op, 0));
  double d = op->nin == 2 ? W(x, IN(op, 1))[0] : 0;
  for (int64_t t = seg0(x, OUT(op)); t < seg1(x, OUT(op)); t++) {
    ROW(s, IN(op, 0), t, 0);
    float *w = rt_out_row(x, OUT(op), t);
    for (int64_t v = 0; v < elems(x, OUT(op)) / K; v++) {
      const float *a = s + v * K;
      double m = NEG_INF, sum = 0;
      for (int64_t k = 0; k < K; k++)
        if (a[k] != NEG_INF && a[k] + k * d > m) m = a[k] + k * d;
      for (int64_t k = 0; k < K; k++) sum += a[k] == NEG_INF ? 0 : exp(a[k] + k * d - m);
      for (int64_t k = 0; k < K; k++)
        w[v * K + k] =
            m == NEG_INF || a[k] == NEG_INF ? 0.0f : (float)(exp(a[k] + k * d - m) / sum);
    }
  }
  return true;
}

/* ---- attention ---------------------------------------------------------- */

/* softmax_n over scores s[0..n): p_j = exp(s_j - m) / (n_plus exp(-m) +
 * sum exp(s_l - m)).  With n_plus = 0 the extra term is left out entirely
 * (never 0 * inf); all scores -inf gives all zeros. */
static void softmax_n(double *s, int64_t n, int n_plus) {
  double m = NEG_INF;
  for (int64_t j = 0; j < n; j++)
    if (s[j] > m) m = s[j];
  if (m == NEG_INF) {
    for (int64_t j = 0; j < n; j++) s[j] = 0;
    return;
  }
  double sum = 0;
  for (int64_t j = 0; j < n; j++) sum += s[j] == NEG_INF ? 0 : (s[j] = exp(s[j] - m));
  if (n_plus) sum += n_plus * exp(-m);
  for (int64_t j = 0; j < n; j++) s[j] = s[j] == NEG_INF ? 0 : s[j] / sum;
}

/* Dense or windowed attention.  [L, H, d]: causal over the sequence (a
 * window W keeps keys t-W+1..t).  [C, P, H, d]: within each chunk row,
 * bidirectional or causal.  Query head h reads KV head h / (Hq / Hkv). */
/* bf16: as the cpu backend's AMX kernels (cg_attention_amx, both ranks)
 * compute it under bf16 math: q * scale, K and V rounded to bf16, the
 * exact products summed in double; then p_j = exp(s_j - max) rounded to
 * bf16 weighs V, and the sum divides by the sum of the unrounded p_j (as
 * flash attention does). */
/* Under bf16 math the attentions with tile kernels round q * scale to
 * bf16 once per query head (qs), as their query operands do. */
static void round_query(double *qs, const float *qh, int64_t d, double scale, bool bf16) {
  for (int64_t e = 0; bf16 && e < d; e++) qs[e] = rb(qh[e] * (float)scale);
}

/* The score q . k * scale: the plain dot product in f32 attention; under
 * bf16 math (round_query's qs) the rounded query times k rounded to bf16,
 * the exact products summed in double. */
static double key_score(const double *qs, const float *qh, const float *kj, int64_t d,
                        double scale, bool bf16) {
  if (!bf16) return dot(qh, kj, d) * scale;
  double acc = 0;
  for (int64_t e = 0; e < d; e++) acc += qs[e] * rb(kj[e]);
  return acc;
}

/* A value element as the tile kernels read it: rounded to bf16 under
 * bf16 math. */
static double value_of(float v, bool bf16) { return bf16 ? rb(v) : v; }

/* The weights of scores s[0..n) (n >= 1): the softmax (f32 attention;
 * returns 1), or (bf16) exp(s - max) unnormalized, returning their sum
 * (and the maximum in *max where given). */
static double attention_weights(double *s, int64_t n, bool bf16, double *max) {
  if (!bf16) {
    softmax_n(s, n, 0);
    return 1;
  }
  double m = s[0], total = 0;
  for (int64_t j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
  for (int64_t j = 0; j < n; j++) total += s[j] = exp(s[j] - m);
  if (max) *max = m;
  return total;
}

static bool attention(rt_exec *x, const ir_op *op, bool bf16) {
  const ir_value *q = IN(op, 0), *k = IN(op, 1), *v = IN(op, 2);
  int rank = RANK(q);
  int64_t d = LASTDIM(q), Hq = DIM(q, rank - 2), Hk = DIM(k, rank - 2), grp = Hq / Hk;
  bool causal = ir_attr_i(op, "causal", 1) != 0;
  int64_t window = ir_attr_i(op, "window", 0);
  double scale = 1.0 / sqrt((double)d);
  dbuf sb = {0};
  bool ok = true;
  if (rank == 3) {
    if (!causal) return fail(x, "bidirectional attention over the sequence cannot run "
                                "incrementally");
    for (int64_t t = seg0(x, OUT(op)); ok && t < seg1(x, OUT(op)); t++) {
      int64_t lo = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0, n = t - lo + 1;
      const float *qr = rt_row(x, q, t, 0);
      float *out = rt_out_row(x, OUT(op), t);
      double *s = dbuf_get(&sb, (size_t)n);
      if (!qr || !s) {
        ok = s ? false : fail(x, "out of memory");
        break;
      }
      for (int64_t h = 0; ok && h < Hq; h++) {
        int64_t kh = h / grp;
        double qs[512], acc[512]; /* the rounded, scaled query (bf16); the output */
        if (d > 512) { ok = fail(x, "head width above 512 is not supported"); break; }
        round_query(qs, qr + h * d, d, scale, bf16);
        for (int64_t j = 0; j < n; j++) {
          const float *kr = rt_row(x, k, lo + j, 1);
          if (!kr) { ok = false; break; }
          s[j] = key_score(qs, qr + h * d, kr + kh * d, d, scale, bf16);
        }
        if (!ok) break;
        double total = attention_weights(s, n, bf16, NULL);
        for (int64_t e = 0; e < d; e++) acc[e] = 0;
        for (int64_t j = 0; j < n; j++) {
          const float *vr = rt_row(x, v, lo + j, 2);
          if (!vr) { ok = false; break; }
          double pj = bf16 ? rb((float)s[j]) : s[j];
          for (int64_t e = 0; e < d; e++) acc[e] += pj * value_of(vr[kh * d + e], bf16);
        }
        for (int64_t e = 0; e < d; e++) out[h * d + e] = (float)(acc[e] / total);
      }
    }
  } else {
    int64_t P = DIM(q, rank - 3);
    double *s = dbuf_get(&sb, (size_t)P);
    if (!s) return fail(x, "out of memory");
    for (int64_t c = seg0(x, OUT(op)); ok && c < seg1(x, OUT(op)); c++) {
      const float *qr = rt_row(x, q, c, 0), *kr = rt_row(x, k, c, 1),
                  *vr = rt_row(x, v, c, 2);
      if (!qr || !kr || !vr) { ok = false; break; }
      float *out = rt_out_row(x, OUT(op), c);
      for (int64_t i = 0; ok && i < P; i++)
        for (int64_t h = 0; ok && h < Hq; h++) {
          int64_t kh = h / grp, n = causal ? i + 1 : P; /* keys [0, n) */
          const float *qh = qr + (i * Hq + h) * d;
          double qs[512]; /* the rounded, scaled query (bf16) */
          if (bf16 && d > 512) { ok = fail(x, "head width above 512 is not supported"); break; }
          round_query(qs, qh, d, scale, bf16);
          for (int64_t j = 0; j < P; j++)
            s[j] = j >= n ? NEG_INF : key_score(qs, qh, kr + (j * Hk + kh) * d, d, scale, bf16);
          double total = attention_weights(s, n, bf16, NULL);
          float *o = out + (i * Hq + h) * d;
          for (int64_t e = 0; e < d; e++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++) {
              double pj = bf16 ? rb((float)s[j]) : s[j];
              acc += pj * value_of(vr[(j * Hk + kh) * d + e], bf16);
            }
            o[e] = (float)(acc / total);
          }
        }
    }
  }
  free(sb.p);
  return ok;
}

bool rt_op_attention(rt_exec *x, const ir_op *op) { return attention(x, op, false); }

bool rt_op_attention_bf16(rt_exec *x, const ir_op *op) { return attention(x, op, true); }

/* HSA: O_t = sum_k w_k softmax_n(q K[i_k]^T / sqrt(d)) V[i_k] over the
 * selected chunks (merge = weighted: one softmax per chunk, no running max
 * across chunks), or one softmax over all the selected chunks' rows
 * (merge = joint; the weights then only select). */
/* bf16: as the cpu backend's AMX kernel (cg_chunk_attention_amx: the
 * weighted merge) computes it under bf16 math: q * scale, K and V
 * rounded to bf16, each chunk's probabilities times its weight rounded to
 * bf16, the exact products summed in double. */
static bool chunk_attention(rt_exec *x, const ir_op *op, bool bf16) {
  const ir_value *q = IN(op, 0), *K = IN(op, 1), *V = IN(op, 2), *I = IN(op, 3),
                 *Wt = IN(op, 4);
  int64_t Hq = DIM(q, 1), d = DIM(q, 2), P = DIM(K, 1), Hk = DIM(K, 2);
  int64_t G = DIM(I, 1), Ksel = DIM(I, 2), grp = Hq / Hk;
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  const ir_attr *merge = ir_get_attr(op, "merge");
  bool joint = merge && !strcmp(merge->s, "joint");
  double scale = 1.0 / sqrt((double)d);
  dbuf sb = {0};
  double *s = dbuf_get(&sb, (size_t)(P * Ksel + d)), *qs = s + P * Ksel;
  if (!s) return fail(x, "out of memory");
  bool ok = true;
  for (int64_t t = seg0(x, OUT(op)); ok && t < seg1(x, OUT(op)); t++) {
    const float *qr = rt_row(x, q, t, 0), *ir = rt_row(x, I, t, 1), *wr = rt_row(x, Wt, t, 2);
    if (!qr || !ir || !wr) { ok = false; break; }
    float *out = rt_out_row(x, OUT(op), t);
    for (int64_t h = 0; ok && h < Hq; h++) {
      int64_t kh = h / grp, g = G == 1 ? 0 : kh;
      double acc[512];
      double *o = d <= 512 ? acc : NULL;
      if (!o) { ok = fail(x, "head width above 512 is not supported"); break; }
      for (int64_t e = 0; e < d; e++) o[e] = 0;
      int32_t *sel = (int32_t *)(ir + g * Ksel); /* the slots, as written by topk */
      round_query(qs, qr + h * d, d, scale, bf16);
      if (!joint) {
        for (int64_t k = 0; ok && k < Ksel; k++) {
          if (sel[k] < 0) continue;
          const float *kr = rt_row(x, K, sel[k], 3), *vr = rt_row(x, V, sel[k], 1);
          if (!kr || !vr) { ok = false; break; }
          for (int64_t j = 0; j < P; j++)
            s[j] = key_score(qs, qr + h * d, kr + (j * Hk + kh) * d, d, scale, bf16);
          softmax_n(s, P, n_plus);
          double wk = wr[g * Ksel + k];
          for (int64_t j = 0; j < P; j++) {
            const float *vj = vr + (j * Hk + kh) * d;
            if (bf16) {
              double pj = rb((float)(s[j] * wk));
              for (int64_t e = 0; e < d; e++) o[e] += pj * rb(vj[e]);
            } else {
              for (int64_t e = 0; e < d; e++) o[e] += wk * s[j] * vj[e];
            }
          }
        }
      } else {
        int64_t n = 0;
        for (int64_t k = 0; ok && k < Ksel; k++) {
          if (sel[k] < 0) continue;
          const float *kr = rt_row(x, K, sel[k], 3);
          if (!kr) { ok = false; break; }
          for (int64_t j = 0; j < P; j++)
            s[n++] = key_score(qs, qr + h * d, kr + (j * Hk + kh) * d, d, scale, bf16);
        }
        if (!ok) break;
        /* bf16: p = exp(s - max) rounded, the sum of the unrounded ones
         * plus n exp(-max) dividing (as the tile kernel) */
        double total = 1, m = 0;
        if (bf16 && n > 0) {
          total = attention_weights(s, n, true, &m);
          total += n_plus * exp(-m);
        } else {
          softmax_n(s, n, n_plus);
        }
        n = 0;
        for (int64_t k = 0; ok && k < Ksel; k++) {
          if (sel[k] < 0) continue;
          const float *vr = rt_row(x, V, sel[k], 1);
          if (!vr) { ok = false; break; }
          for (int64_t j = 0; j < P; j++, n++)
            for (int64_t e = 0; e < d; e++) {
              double vj = value_of(vr[(j * Hk + kh) * d + e], bf16);
              o[e] += bf16 ? rb((float)s[n]) * vj / total : s[n] * vj;
            }
        }
      }
      for (int64_t e = 0; e < d; e++) out[h * d + e] = (float)o[e];
    }
  }
  free(sb.p);
  return ok;
}

bool rt_op_chunk_attention(rt_exec *x, const ir_op *op) { return chunk_attention(x, op, false); }

bool rt_op_chunk_attention_bf16(rt_exec *x, const ir_op *op) {
  return chunk_attention(x, op, true);
}

/* The K best of n scores (ties: lower index; -inf and NaN never chosen),
 * written to sel best first; returns how many. */
static int64_t top_indices(const double *score, int64_t n, int64_t K, int64_t *sel) {
  int64_t m = 0;
  if (K <= 0) return 0;
  for (int64_t i = 0; i < n; i++) {
    if (score[i] == NEG_INF || isnan(score[i])) continue;
    if (m == K && !(score[i] > score[sel[K - 1]])) continue;
    int64_t p = m < K ? m++ : K - 1;
    while (p > 0 && score[i] > score[sel[p - 1]]) {
      sel[p] = sel[p - 1];
      p--;
    }
    sel[p] = i;
  }
  return m;
}

/* Landmark Attention's grouped softmax.  For token t (own block b0): the
 * own block's keys up to t, plus the top-k past blocks by landmark score;
 * one normalizer Z over the local keys and the selected landmarks; a past
 * block's share exp(s_b) / Z is spread over its keys by an in-block
 * softmax.  bf16 (cg_landmark_attention_amx): the past blocks' part as
 * the tile kernel computes it, q * scale, K and V rounded to bf16, the
 * exact products summed in double, and each probability times the
 * block's share rounded to bf16; the local part and the selection as in
 * f32. */
static bool landmark_attention(rt_exec *x, const ir_op *op, bool bf16) {
  const ir_value *q = IN(op, 0), *k = IN(op, 1), *v = IN(op, 2), *lk = IN(op, 3);
  int64_t Hq = DIM(q, 1), d = DIM(q, 2), Hk = DIM(k, 1), grp = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ksel = ir_attr_i(op, "topk", 1);
  double scale = 1.0 / sqrt((double)d);
  dbuf sb = {0}, lb = {0}, ib = {0};
  int64_t *sel = malloc((size_t)Ksel * sizeof *sel);
  bool ok = sel != NULL;
  if (!ok) return fail(x, "out of memory");
  for (int64_t t = seg0(x, OUT(op)); ok && t < seg1(x, OUT(op)); t++) {
    const float *qr = rt_row(x, q, t, 0);
    if (!qr) { ok = false; break; }
    float *out = rt_out_row(x, OUT(op), t);
    int64_t b0 = t / B, nloc = t - b0 * B + 1;
    double *loc = dbuf_get(&sb, (size_t)nloc), *ls = dbuf_get(&lb, (size_t)(b0 + 1)),
           *in = dbuf_get(&ib, (size_t)B);
    if (!loc || !ls || !in) { ok = fail(x, "out of memory"); break; }
    for (int64_t h = 0; ok && h < Hq; h++) {
      int64_t kh = h / grp;
      const float *qh = qr + h * d;
      double m = NEG_INF;
      for (int64_t j = 0; j < nloc; j++) {
        const float *kr = rt_row(x, k, b0 * B + j, 1);
        if (!kr) { ok = false; break; }
        loc[j] = dot(qh, kr + kh * d, d) * scale;
        if (loc[j] > m) m = loc[j];
      }
      for (int64_t b = 0; ok && b < b0; b++) {
        const float *lr = rt_row(x, lk, b, 1);
        if (!lr) { ok = false; break; }
        ls[b] = dot(qh, lr + kh * d, d) * scale;
      }
      if (!ok) break;
      int64_t ns = top_indices(ls, b0, Ksel, sel);
      for (int64_t i = 0; i < ns; i++)
        if (ls[sel[i]] > m) m = ls[sel[i]];
      double Z = 0;
      for (int64_t j = 0; j < nloc; j++) Z += exp(loc[j] - m);
      for (int64_t i = 0; i < ns; i++) Z += exp(ls[sel[i]] - m);
      double o[512];
      if (d > 512) { ok = fail(x, "head width above 512 is not supported"); break; }
      for (int64_t e = 0; e < d; e++) o[e] = 0;
      for (int64_t j = 0; j < nloc; j++) {
        const float *vr = rt_row(x, v, b0 * B + j, 2);
        if (!vr) { ok = false; break; }
        double p = exp(loc[j] - m) / Z;
        for (int64_t e = 0; e < d; e++) o[e] += p * vr[kh * d + e];
      }
      double qs[512]; /* the rounded, scaled query (bf16) */
      round_query(qs, qh, d, scale, bf16);
      for (int64_t i = 0; ok && i < ns; i++) {
        int64_t b = sel[i];
        double pb = exp(ls[b] - m) / Z;
        for (int64_t j = 0; j < B; j++) {
          const float *kr = rt_row(x, k, b * B + j, 1);
          if (!kr) { ok = false; break; }
          in[j] = key_score(qs, qh, kr + kh * d, d, scale, bf16);
        }
        if (!ok) break;
        softmax_n(in, B, 0);
        for (int64_t j = 0; j < B; j++) {
          const float *vr = rt_row(x, v, b * B + j, 2);
          if (!vr) { ok = false; break; }
          double pj = bf16 ? rb((float)(pb * in[j])) : pb * in[j];
          for (int64_t e = 0; e < d; e++) o[e] += pj * value_of(vr[kh * d + e], bf16);
        }
      }
      for (int64_t e = 0; e < d; e++) out[h * d + e] = (float)o[e];
    }
  }
  free(sel);
  free(sb.p);
  free(lb.p);
  free(ib.p);
  return ok;
}

bool rt_op_landmark_attention(rt_exec *x, const ir_op *op) {
  return landmark_attention(x, op, false);
}

bool rt_op_landmark_attention_bf16(rt_exec *x, const ir_op *op) {
  return landmark_attention(x, op, true);
}

/* Joint softmax of query head h over the keys listed in `pos` (n of them);
 * bf16: q * scale, K and V rounded to bf16, the products summed in
 * double, p = exp(s - max) rounded to bf16 weighing V and the sum of the
 * unrounded ones dividing (as the windowed tile kernel). */
static bool joint_attend(rt_exec *x, const ir_value *k, const ir_value *v, const float *qh,
                         int64_t kh, int64_t d, const int64_t *pos, int64_t n, dbuf *sb,
                         double *o, bool bf16) {
  double *s = dbuf_get(sb, (size_t)(n > 0 ? n : 1));
  if (!s) return fail(x, "out of memory");
  for (int64_t e = 0; n == 0 && e < d; e++) o[e] = 0; /* no key: 0, as the kernels */
  if (n == 0) return true;
  double scale = 1.0 / sqrt((double)d), qs[512]; /* the rounded, scaled query (bf16) */
  if (bf16 && d > 512) return fail(x, "head width above 512 is not supported");
  round_query(qs, qh, d, scale, bf16);
  for (int64_t j = 0; j < n; j++) {
    const float *kr = rt_row(x, k, pos[j], 1);
    if (!kr) return false;
    s[j] = key_score(qs, qh, kr + kh * d, d, scale, bf16);
  }
  double total = attention_weights(s, n, bf16, NULL);
  for (int64_t e = 0; e < d; e++) o[e] = 0;
  for (int64_t j = 0; j < n; j++) {
    const float *vr = rt_row(x, v, pos[j], 2);
    if (!vr) return false;
    double pj = bf16 ? rb((float)s[j]) : s[j];
    for (int64_t e = 0; e < d; e++) o[e] += pj * value_of(vr[kh * d + e], bf16);
  }
  for (int64_t e = 0; e < d; e++) o[e] /= total;
  return true;
}

/* MoBA: a past block's gate key is the mean of its keys; the query takes
 * the top-k past blocks by q . mean (ties: lower block) plus its own block
 * (causally), and attends to all their keys under one softmax (bf16: as
 * the tile kernel cg_moba_amx rounds it, joint_attend). */
static bool moba_attention(rt_exec *x, const ir_op *op, bool bf16) {
  const ir_value *q = IN(op, 0), *k = IN(op, 1), *v = IN(op, 2);
  int64_t Hq = DIM(q, 1), d = DIM(q, 2), Hk = DIM(k, 1), grp = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ksel = ir_attr_i(op, "topk", 1);
  dbuf gb = {0}, sb = {0};
  int64_t *sel = malloc((size_t)Ksel * sizeof *sel);
  int64_t *pos = malloc((size_t)(Ksel + 1) * (size_t)B * sizeof *pos);
  bool ok = sel && pos;
  if (!ok) {
    free(sel);
    free(pos);
    return fail(x, "out of memory");
  }
  for (int64_t t = seg0(x, OUT(op)); ok && t < seg1(x, OUT(op)); t++) {
    const float *qr = rt_row(x, q, t, 0);
    if (!qr) { ok = false; break; }
    float *out = rt_out_row(x, OUT(op), t);
    int64_t b0 = t / B;
    double *gate = dbuf_get(&gb, (size_t)(b0 + 1));
    if (!gate) { ok = fail(x, "out of memory"); break; }
    for (int64_t h = 0; ok && h < Hq; h++) {
      int64_t kh = h / grp;
      const float *qh = qr + h * d;
      for (int64_t b = 0; ok && b < b0; b++) {
        double g = 0;
        for (int64_t j = 0; j < B; j++) {
          const float *kr = rt_row(x, k, b * B + j, 1);
          if (!kr) { ok = false; break; }
          g += dot(qh, kr + kh * d, d);
        }
        gate[b] = g / (double)B;
      }
      if (!ok) break;
      int64_t ns = top_indices(gate, b0, Ksel, sel), n = 0;
      for (int64_t i = 0; i < ns; i++)
        for (int64_t j = 0; j < B; j++) pos[n++] = sel[i] * B + j;
      for (int64_t j = b0 * B; j <= t; j++) pos[n++] = j;
      double o[512];
      if (d > 512) { ok = fail(x, "head width above 512 is not supported"); break; }
      if (!joint_attend(x, k, v, qh, kh, d, pos, n, &sb, o, bf16)) { ok = false; break; }
      for (int64_t e = 0; e < d; e++) out[h * d + e] = (float)o[e];
    }
  }
  free(sel);
  free(pos);
  free(gb.p);
  free(sb.p);
  return ok;
}

bool rt_op_moba_attention(rt_exec *x, const ir_op *op) { return moba_attention(x, op, false); }

bool rt_op_moba_attention_bf16(rt_exec *x, const ir_op *op) {
  return moba_attention(x, op, true);
}

/* NSA compression (hsac's form): compressed block j covers rows
 * j*stride .. j*stride + block - 1; its key is W . concat(rows), with the
 * rows concatenated position-major. */
bool rt_op_nsa_compress(rt_exec *x, const ir_op *op) {
  const ir_value *k = IN(op, 0);
  const float *w = W(x, IN(op, 1));
  int64_t H = DIM(k, 1), d = DIM(k, 2);
  int64_t b = ir_attr_i(op, "block", 1), s = ir_attr_i(op, "stride", 1);
  double *acc = malloc((size_t)(H * d) * sizeof *acc);
  if (!acc) return fail(x, "out of memory");
  for (int64_t j = seg0(x, OUT(op)); j < seg1(x, OUT(op)); j++) {
    float *out = rt_out_row(x, OUT(op), j);
    for (int64_t i = 0; i < H * d; i++) acc[i] = 0;
    for (int64_t p = 0; p < b; p++) {
      const float *kr = rt_row(x, k, j * s + p, 0);
      if (!kr) {
        free(acc);
        return false;
      }
      for (int64_t h = 0; h < H; h++)
        for (int64_t e = 0; e < d; e++)
          for (int64_t f = 0; f < d; f++)
            acc[h * d + e] += (double)w[e * b * d + p * d + f] * kr[h * d + f];
    }
    for (int64_t i = 0; i < H * d; i++) out[i] = (float)acc[i];
  }
  free(acc);
  return true;
}

/* NSA: three branches mixed by the gates g = [cmp, sel, win].
 *  - compressed: softmax over the compressed blocks complete by t;
 *  - selected: blocks of `block` tokens ranked by the compressed attention
 *    mass of the compressed blocks that overlap them (a compressed block
 *    counts fully for each selection block it overlaps, as NSA's eq. 9
 *    sums), summed over the heads of a KV group so the group shares one
 *    selection; the first init_blocks and the last
 *    local_blocks (the own block included) are always taken, the rest by
 *    rank (ties: lower block) up to topk; one softmax over their keys <= t;
 *  - window: softmax over the last `window` keys.
 * bf16 (cg_nsa_amx): the selected and window branches as the tile kernel
 * rounds them (joint_attend), the compressed branch and the selection as
 * in f32. */
static bool nsa_attention(rt_exec *x, const ir_op *op, bool bf16) {
  const ir_value *q = IN(op, 0), *k = IN(op, 1), *v = IN(op, 2), *kc = IN(op, 3),
                 *vc = IN(op, 4), *gt = IN(op, 5);
  int64_t Hq = DIM(q, 1), d = DIM(q, 2), Hk = DIM(k, 1), grp = Hq / Hk;
  int64_t cb = ir_attr_i(op, "cmp_block", 1), cs = ir_attr_i(op, "cmp_stride", 1);
  int64_t B = ir_attr_i(op, "block", 1), Ksel = ir_attr_i(op, "topk", 1);
  int64_t init = ir_attr_i(op, "init_blocks", 0), local = ir_attr_i(op, "local_blocks", 0);
  int64_t W = ir_attr_i(op, "window", 1);
  double scale = 1.0 / sqrt((double)d);
  dbuf pb = {0}, ib = {0}, sb = {0};
  int64_t *sel = malloc((size_t)Ksel * sizeof *sel);
  int64_t *pos = NULL;
  bool ok = sel != NULL;
  for (int64_t t = seg0(x, OUT(op)); ok && t < seg1(x, OUT(op)); t++) {
    const float *qr = rt_row(x, q, t, 0), *gr = rt_row(x, gt, t, 3);
    if (!qr || !gr) { ok = false; break; }
    gr = rt_row(x, gt, t, 3);
    float *out = rt_out_row(x, OUT(op), t);
    int64_t nc = t + 1 >= cb ? (t + 1 - cb) / cs + 1 : 0; /* complete compressed blocks */
    int64_t b0 = t / B, nb = b0 + 1;
    double *p = dbuf_get(&pb, (size_t)(grp * (nc > 0 ? nc : 1)));
    double *imp = dbuf_get(&ib, (size_t)nb);
    int64_t *np = realloc(pos, (size_t)(Ksel * B + W + 1) * sizeof *pos);
    if (np) pos = np; /* (the old block is gone once realloc succeeds) */
    if (!p || !imp || !np) { ok = fail(x, "out of memory"); break; }
    for (int64_t kh = 0; ok && kh < Hk; kh++) {
      /* compressed scores of every head of the group */
      for (int64_t hh = 0; hh < grp; hh++) {
        const float *qh = qr + (kh * grp + hh) * d;
        for (int64_t j = 0; j < nc; j++) {
          const float *kr = rt_row(x, kc, j, 1);
          if (!kr) { ok = false; break; }
          p[hh * nc + j] = dot(qh, kr + kh * d, d) * scale;
        }
        if (!ok) break;
        softmax_n(p + hh * nc, nc, 0);
      }
      if (!ok) break;
      for (int64_t bb = 0; bb < nb; bb++) imp[bb] = 0;
      /* a compressed block counts for every selection block it overlaps */
      for (int64_t hh = 0; hh < grp; hh++)
        for (int64_t j = 0; j < nc; j++)
          for (int64_t bb = (j * cs) / B; bb <= (j * cs + cb - 1) / B && bb < nb; bb++)
            imp[bb] += p[hh * nc + j];
      /* forced blocks first, marked so the ranking skips them */
      int64_t ns = 0;
      for (int64_t bb = 0; bb < nb && ns < Ksel; bb++)
        if (bb < init || bb > b0 - local) {
          sel[ns++] = bb;
          imp[bb] = NEG_INF;
        }
      int64_t extra = top_indices(imp, nb, Ksel - ns, sel + ns);
      ns += extra;
      int64_t n = 0;
      for (int64_t i = 0; i < ns; i++)
        for (int64_t j = sel[i] * B; j < sel[i] * B + B && j <= t; j++) pos[n++] = j;
      for (int64_t hh = 0; ok && hh < grp; hh++) {
        int64_t h = kh * grp + hh;
        const float *qh = qr + h * d;
        double ocmp[512], osel[512], owin[512];
        if (d > 512) { ok = fail(x, "head width above 512 is not supported"); break; }
        for (int64_t e = 0; e < d; e++) ocmp[e] = 0;
        for (int64_t j = 0; j < nc; j++) {
          const float *vr = rt_row(x, vc, j, 2);
          if (!vr) { ok = false; break; }
          for (int64_t e = 0; e < d; e++) ocmp[e] += p[hh * nc + j] * vr[kh * d + e];
        }
        if (!ok || !joint_attend(x, k, v, qh, kh, d, pos, n, &sb, osel, bf16)) {
          ok = false;
          break;
        }
        int64_t lo = t - W + 1 > 0 ? t - W + 1 : 0, nw = 0;
        int64_t *wpos = pos + n;
        for (int64_t j = lo; j <= t; j++) wpos[nw++] = j;
        if (!joint_attend(x, k, v, qh, kh, d, wpos, nw, &sb, owin, bf16)) {
          ok = false;
          break;
        }
        gr = rt_row(x, gt, t, 3);
        if (!gr) { ok = false; break; }
        for (int64_t e = 0; e < d; e++)
          out[h * d + e] = (float)(gr[h * 3 + 0] * ocmp[e] + gr[h * 3 + 1] * osel[e] +
                                   gr[h * 3 + 2] * owin[e]);
      }
    }
  }
  free(sel);
  free(pos);
  free(pb.p);
  free(ib.p);
  free(sb.p);
  return ok || fail(x, "out of memory");
}

bool rt_op_nsa_attention(rt_exec *x, const ir_op *op) { return nsa_attention(x, op, false); }

bool rt_op_nsa_attention_bf16(rt_exec *x, const ir_op *op) { return nsa_attention(x, op, true); }

const rt_op_fn rt_ops[IR_OPCODE_COUNT] = {
#define X(e, name, minin, maxin, nres, doc) [e] = rt_op_##name,
#include "ir/ops.def"
#undef X
};

bool rt_ref_run(rt_exec *x, const ir_op *op) {
  const rt_val *ov = rt_val_of(x, op->out[0]);
  return ov->stream ? rt_stream_topk(x, ov->stream, op) : rt_ops[op->code](x, op);
}
