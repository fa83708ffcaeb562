/* test_runtime.c - the reference interpreter: ops against hand-computed
 * values, and decode/prefill consistency on every example model.
 *
 * Op tests build small graphs by hand (tgraph.h): token t of the input is
 * t itself, so embed(tokens, TABLE) makes row t of any value equal to row t
 * of a table the test writes: a way to feed chosen rows to any op.  More op
 * tests are in test_ops.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/interp.h"
#include "runtime/safetensors.h"
#include "testutil.h"
#include "tgraph.h"

#define NEAR(a, b) CU_ASSERT_DOUBLE_EQUAL((a), (b), 1e-6)

static void test_rmsnorm_rope_linear(void) {
  tg t;
  tg_init(&t);
  static const float x[] = {3, 4, 0, 0, 1, 0, 0, 1};  /* 2 rows of width 4 */
  static const float g[] = {1, 2, 1, 1};
  ir_value *h = tg_rows(&t, "x", 2, 4, x);
  ir_value *gw = tg_weight(&t, "g", 1, (int64_t[]){4}, g);
  ir_value *n = tg_op(&t, IR_RMSNORM, 2, (ir_value *[]){h, gw}, 1,
                      (ir_attr[]){ir_float_attr("eps", 0)}, 0);
  tg_run(&t, n, 2);
  /* rms of (3, 4, 0, 0) is sqrt(25 / 4) = 2.5 */
  const float *r0 = tg_row(&t, n, 0);
  NEAR(r0[0], 3 / 2.5);
  NEAR(r0[1], 2 * 4 / 2.5);
  NEAR(r0[2], 0);
  tg_free(&t);

  /* rope, d = 4: pairs (0, 2) and (1, 3); at position 1 pair i turns by
   * theta^(-2i/4): 1 rad for i = 0, 1/100 rad for i = 1 with theta 10000. */
  tg_init(&t);
  static const float y[] = {1, 1, 0, 0, 1, 1, 0, 0};
  ir_value *v = tg_rows(&t, "y", 2, 4, y);
  ir_value *hv = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){v}, 1,
                       (ir_attr[]){ir_int_attr("heads", 1)}, 0);
  ir_value *ro = tg_op(&t, IR_ROPE, 1, (ir_value *[]){hv}, 1,
                       (ir_attr[]){ir_float_attr("theta", 10000)}, 0);
  tg_run(&t, ro, 2);
  const float *p0 = tg_row(&t, ro, 0), *p1 = tg_row(&t, ro, 1);
  NEAR(p0[0], 1);
  NEAR(p0[2], 0);
  NEAR(p1[0], cos(1.0));
  NEAR(p1[2], sin(1.0));
  NEAR(p1[1], cos(0.01));
  NEAR(p1[3], sin(0.01));
  tg_free(&t);

  tg_init(&t);
  static const float z[] = {1, 2, 3};
  static const float w[] = {1, 0, 0, 0, 1, 1}; /* [2, 3] */
  ir_value *zv = tg_rows(&t, "z", 1, 3, z);
  ir_value *wv = tg_weight(&t, "w", 2, (int64_t[]){2, 3}, w);
  ir_value *lo = tg_op(&t, IR_LINEAR, 2, (ir_value *[]){zv, wv}, 0, NULL, 0);
  tg_run(&t, lo, 1);
  NEAR(tg_row(&t, lo, 0)[0], 1);
  NEAR(tg_row(&t, lo, 0)[1], 5);
  tg_free(&t);
}

static void test_stickbreak_and_softmax(void) {
  tg t;
  tg_init(&t);
  static const float s[] = {0, 0, -INFINITY, 2, -INFINITY, -INFINITY,
                            -INFINITY, -INFINITY, -INFINITY};
  ir_value *sv = tg_rows(&t, "s", 3, 3, s);
  ir_value *sb = tg_op(&t, IR_STICKBREAK, 1, (ir_value *[]){sv}, 0, NULL, 0);
  ir_value *sm = tg_op(&t, IR_SOFTMAX, 1, (ir_value *[]){sv}, 0, NULL, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){sb, sm}, 0, NULL, 0);
  tg_run(&t, sum, 3);
  /* stick-breaking: sigmoid(0) = 0.5, then 0.5 * (1 - 0.5); empty slots 0 */
  const float *a = tg_row(&t, sb, 0);
  NEAR(a[0], 0.5);
  NEAR(a[1], 0.25);
  NEAR(a[2], 0);
  NEAR(tg_row(&t, sb, 1)[0], 1.0 / (1.0 + exp(-2.0)));
  /* softmax: -inf slots get 0; a row of only -inf is all zeros, not NaN */
  NEAR(tg_row(&t, sm, 0)[0], 0.5);
  NEAR(tg_row(&t, sm, 0)[2], 0);
  NEAR(tg_row(&t, sm, 1)[0], 1);
  for (int i = 0; i < 3; i++) {
    NEAR(tg_row(&t, sm, 2)[i], 0);
    NEAR(tg_row(&t, sb, 2)[i], 0);
  }
  tg_free(&t);
}

/* L = 20 tokens, chunks of S = 8: two complete chunks, the third partial.
 * Landmark i is row i*S of the table; queries are rows of another table. */
static void test_retrieval_topk(void) {
  tg t;
  tg_init(&t);
  enum { L = 20, S = 8 };
  static float H[L * 2], Q[L * 2];
  H[0 * 2] = 1;  /* landmark of chunk 0: (1, 0) */
  H[8 * 2] = 1;  /* landmark of chunk 1: (1, 0): a tie with chunk 0 */
  for (int i = 0; i < L; i++) Q[i * 2] = 2; /* every query: (2, 0) */
  ir_value *h = tg_rows(&t, "h", L, 2, H);
  ir_value *q = tg_rows(&t, "q", L, 2, Q);
  ir_value *qh = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){q}, 1,
                       (ir_attr[]){ir_int_attr("heads", 1)}, 0);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){h}, 1, (ir_attr[]){ir_int_attr("size", S)}, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){c}, 1, (ir_attr[]){ir_int_attr("row", 0)}, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){qh, lmk}, 2,
                       (ir_attr[]){ir_int_attr("chunk", S), ir_str_attr("per", "token")}, 0);
  ir_attr k3 = ir_int_attr("k", 3);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k3, 0);
  ir_value *val = idx->def->out[1];
  ir_value *w = tg_op(&t, IR_STICKBREAK, 1, (ir_value *[]){val}, 0, NULL, 0);
  tg_run(&t, w, L);
  /* score = q . lmk / sqrt(2) */
  double s = 2 / sqrt(2.0);
  /* the first chunk's tokens (0..7) see no chunk: all slots empty */
  for (int tt = 0; tt < 8; tt++) {
    const int32_t *ii = (const int32_t *)tg_row(&t, idx, tt);
    CU_ASSERT_EQUAL(ii[0], -1);
    CU_ASSERT_EQUAL(ii[2], -1);
    NEAR(tg_row(&t, w, tt)[0], 0);
  }
  /* tokens 8..15 see chunk 0 only: fewer than K eligible */
  const int32_t *i8 = (const int32_t *)tg_row(&t, idx, 15);
  CU_ASSERT_EQUAL(i8[0], 0);
  CU_ASSERT_EQUAL(i8[1], -1);
  NEAR(tg_row(&t, val, 15)[0], s);
  NEAR(tg_row(&t, w, 15)[0], 1 / (1 + exp(-s)));
  /* token 19 (its chunk incomplete: L is not a multiple of S) sees chunks 0
   * and 1, tied; both are kept, most recent first */
  const int32_t *i19 = (const int32_t *)tg_row(&t, idx, 19);
  CU_ASSERT_EQUAL(i19[0], 1);
  CU_ASSERT_EQUAL(i19[1], 0);
  CU_ASSERT_EQUAL(i19[2], -1);
  double w0 = 1 / (1 + exp(-s));
  NEAR(tg_row(&t, w, 19)[0], w0);
  NEAR(tg_row(&t, w, 19)[1], w0 * (1 - w0));
  tg_free(&t);
}

/* With K = 1 and a tie, the lower chunk index wins. */
static void test_topk_tie_rule(void) {
  tg t;
  tg_init(&t);
  enum { L = 17, S = 8 };
  static float H[L], Q[L];
  H[0] = 1;
  H[8] = 1;
  for (int i = 0; i < L; i++) Q[i] = 1;
  ir_value *h = tg_rows(&t, "h", L, 1, H), *q = tg_rows(&t, "q", L, 1, Q);
  ir_value *qh = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){q}, 1,
                       (ir_attr[]){ir_int_attr("heads", 1)}, 0);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){h}, 1, (ir_attr[]){ir_int_attr("size", S)}, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){c}, 1, (ir_attr[]){ir_int_attr("row", 0)}, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){qh, lmk}, 1,
                       (ir_attr[]){ir_int_attr("chunk", S)}, 0);
  ir_attr k1 = ir_int_attr("k", 1);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k1, 0);
  tg_run(&t, idx, L);
  CU_ASSERT_EQUAL(((const int32_t *)tg_row(&t, idx, 16))[0], 0);
  tg_free(&t);
}

/* HSA with softmax_plus = 1: keys orthogonal to the query give every row
 * of the selected chunk score 0, so each of its P rows gets 1 / (P + 1) and
 * the off-by-one slot the rest.  In the first chunk nothing is selected and
 * the output is 0. */
static void test_chunk_attention_off_by_one(void) {
  tg t;
  tg_init(&t);
  enum { L = 8, S = 4, D = 2 };
  static float H[L * D], Q[L * D];
  for (int i = 0; i < L; i++) {
    H[i * D + 1] = (float)(i + 1); /* keys and values (0, i+1); landmarks too */
    Q[i * D + 1] = 1;              /* retrieval queries (0, 1) */
  }
  static float Qa[L * D];
  for (int i = 0; i < L; i++) Qa[i * D] = 1; /* attention queries (1, 0) */
  ir_value *h = tg_rows(&t, "h", L, D, H), *q = tg_rows(&t, "q", L, D, Q);
  ir_value *qa = tg_rows(&t, "qa", L, D, Qa);
  ir_attr one = ir_int_attr("heads", 1);
  ir_value *qh = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){q}, 1, &one, 0);
  ir_value *qah = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){qa}, 1, &one, 0);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){h}, 1, (ir_attr[]){ir_int_attr("size", S)}, 0);
  ir_value *kv = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){c}, 1, &one, 0);
  ir_value *lmk = tg_op(&t, IR_MEAN_ROWS, 1, (ir_value *[]){c}, 0, NULL, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){qh, lmk}, 1,
                       (ir_attr[]){ir_int_attr("chunk", S)}, 0);
  ir_attr k1 = ir_int_attr("k", 1);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k1, 0);
  ir_value *w = tg_op(&t, IR_SOFTMAX, 1, (ir_value *[]){idx->def->out[1]}, 0, NULL, 0);
  ir_value *o = tg_op(&t, IR_CHUNK_ATTENTION, 5, (ir_value *[]){qah, kv, kv, idx, w}, 2,
                      (ir_attr[]){ir_int_attr("softmax_plus", 1), ir_str_attr("merge", "weighted")},
                      0);
  tg_run(&t, o, L);
  /* first chunk: nothing selected, output exactly 0 */
  NEAR(tg_row(&t, o, 2)[0], 0);
  NEAR(tg_row(&t, o, 2)[1], 0);
  /* tokens 4..7: chunk 0 with weight 1: sum_j (1/5) * (0, j+1), j = 0..3 */
  NEAR(tg_row(&t, w, 6)[0], 1);
  NEAR(tg_row(&t, o, 6)[0], 0);
  NEAR(tg_row(&t, o, 6)[1], (1 + 2 + 3 + 4) / 5.0);
  tg_free(&t);
}

/* Sliding-window attention over 3 tokens with window 2: token 2 sees keys
 * 1 and 2 only. */
static void test_window_attention(void) {
  tg t;
  tg_init(&t);
  static const float K[] = {0, 100, 0, 1, 0, 2}; /* 3 rows, d = 2 */
  static const float Qz[] = {0, 0, 0, 0, 0, 0};
  ir_value *k = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "k", 3, 2, K)}, 1,
                      (ir_attr[]){ir_int_attr("heads", 1)}, 0);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "q", 3, 2, Qz)}, 1,
                      (ir_attr[]){ir_int_attr("heads", 1)}, 0);
  ir_value *o = tg_op(&t, IR_ATTENTION, 3, (ir_value *[]){q, k, k}, 2,
                      (ir_attr[]){ir_int_attr("causal", 1), ir_int_attr("window", 2)}, 0);
  tg_run(&t, o, 3);
  NEAR(tg_row(&t, o, 0)[1], 100);         /* only itself */
  NEAR(tg_row(&t, o, 1)[1], (100 + 1) / 2.0);
  NEAR(tg_row(&t, o, 2)[1], (1 + 2) / 2.0); /* key 0 is out of the window */
  tg_free(&t);
}

/* ---- whole models ------------------------------------------------------- */

typedef struct logit_log {
  float *all;
  int64_t vocab, n;
} logit_log;

static void keep_logits(void *user, int64_t pos, const float *l, int64_t vocab) {
  logit_log *g = user;
  if (pos < g->n) memcpy(g->all + pos * vocab, l, (size_t)vocab * sizeof *l);
}

static double run_logits(hsart_model *m, const int32_t *tok, int64_t n, int64_t segment,
                         bool decode, hsart_cache_type cache, float *out) {
  logit_log g = {out, hsart_model_vocab(m), n};
  hsart_session_options o = {.segment = segment, .cache = cache, .on_logits = keep_logits,
                             .user = &g};
  hsart_session *s;
  hsart_error e;
  if (hsart_session_create(m, &o, &s, &e) != HSART_OK) return -1;
  hsart_status st = HSART_OK;
  if (decode)
    for (int64_t i = 0; i < n && st == HSART_OK; i++) st = hsart_decode(s, tok[i]);
  else
    st = hsart_prefill(s, tok, n);
  if (st != HSART_OK) fprintf(stderr, "%s\n", hsart_session_error(s));
  hsart_session_free(s);
  return st == HSART_OK ? 0 : -1;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    m = tu_worse(m, tu_absdiff(a[i], b[i]));
  }
  return m;
}

/* The tiny example `name` loaded with random weights (seed 7), or NULL
 * with its error printed. */
static hsart_model *load_model_file(const char *model, const char *name) {
  char weights[256];
  snprintf(weights, sizeof weights, "/tmp/hsac-test-%d-%s.safetensors", (int)getpid(), name);
  hsart_error e;
  hsart_model *m = NULL;
  hsart_status st = hsart_init_weights(model, weights, 7, &e);
  if (st == HSART_OK) st = hsart_model_load(model, weights, NULL, &m, &e);
  unlink(weights);
  if (st != HSART_OK) fprintf(stderr, "%s\n", e.message);
  return m;
}

static hsart_model *load_tiny(const char *name) {
  char model[512];
  snprintf(model, sizeof model, "%s/examples/tiny/%s.hsa", tu_src(), name);
  return load_model_file(model, name);
}

/* The tiny example `name` with its chunk memory stored in f32: a copy of
 * the file with `store = bf16` (or f16) made `store = f32`, and *was16 set
 * when there was one to change; else the example itself.  A 16-bit store
 * rounds what the kernels computed, so an f32 difference of an ulp in the
 * chunk encoder (another thread split, another block of tokens) can land
 * on the neighbouring bf16 number and move the logits by about 1e-4
 * (docs/runtime.md, "Precision"): the f32 copy keeps the kernels' own
 * agreement checkable at 1e-5. */
static hsart_model *load_tiny_f32_store(const char *name, bool *was16) {
  char src[512], copy[256];
  snprintf(src, sizeof src, "%s/examples/tiny/%s.hsa", tu_src(), name);
  *was16 = false;
  FILE *f = fopen(src, "rb");
  if (!f) return NULL;
  char text[16384];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *at = strstr(text, "store = bf16");
  size_t len = strlen("store = bf16");
  if (!at) at = strstr(text, "store = f16"), len = strlen("store = f16");
  if (!at) return load_tiny(name);
  *was16 = true;
  snprintf(copy, sizeof copy, "/tmp/hsac-test-%d-%s-f32.hsa", (int)getpid(), name);
  f = fopen(copy, "wb");
  if (!f) return NULL;
  fprintf(f, "%.*sstore = f32%s", (int)(at - text), text, at + len);
  fclose(f);
  hsart_model *m = load_model_file(copy, name);
  unlink(copy);
  return m;
}

/* For every tiny example: one-shot prefill, prefill in segments of 7, 16
 * and 33 tokens, and token-by-token decode give the same logits at every
 * position (1e-5, with its chunk memory in f32); with 16-bit caches, and
 * with the example's own 16-bit chunk memory, to the 16-bit tolerance. */
static void test_decode_matches_prefill(void) {
  static const char *const names[] = {"dense", "swa", "landmark_attention", "nsa", "moba",
                                      "drt_gca", "hsa_ramba", "paper_swa_hsa"};
  enum { N = 150 };
  int32_t tok[N];
  uint64_t r = 42;
  for (int i = 0; i < N; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int32_t)((r >> 33) % 256);
  }
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    bool store16;
    hsart_model *m = load_tiny_f32_store(names[k], &store16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int64_t V = hsart_model_vocab(m);
    float *ref = calloc((size_t)(N * V), sizeof *ref), *got = calloc((size_t)(N * V), sizeof *got);
    CU_ASSERT_EQUAL(run_logits(m, tok, N, N, false, HSART_CACHE_F32, ref), 0);
    CU_ASSERT_EQUAL(run_logits(m, tok, N, 1, true, HSART_CACHE_F32, got), 0);
    double dd = max_abs_diff(ref, got, N * V);
    if (dd > 1e-5) fprintf(stderr, "\n%s: decode vs prefill: %g\n", names[k], dd);
    CU_ASSERT(dd <= 1e-5);
    static const int64_t segs[] = {7, 16, 33};
    for (int si = 0; si < 3; si++) {
      CU_ASSERT_EQUAL(run_logits(m, tok, N, segs[si], false, HSART_CACHE_F32, got), 0);
      dd = max_abs_diff(ref, got, N * V);
      if (dd > 1e-5)
        fprintf(stderr, "\n%s: segments of %lld vs prefill: %g\n", names[k],
                (long long)segs[si], dd);
      CU_ASSERT(dd <= 1e-5);
    }
    /* 16-bit caches: decode and prefill still agree with each other, to
     * the documented 16-bit tolerance (docs/runtime.md, "Precision"): a
     * kernel whose decode sums in another order (the sparse attention's
     * chunks, chunk-major in prefill) differs by an f32 ulp now and then,
     * which a bf16 cache turns into a bf16 step */
    CU_ASSERT_EQUAL(run_logits(m, tok, N, N, false, HSART_CACHE_BF16, ref), 0);
    CU_ASSERT_EQUAL(run_logits(m, tok, N, 5, true, HSART_CACHE_BF16, got), 0);
    double ne = tu_norm_err(ref, got, N * V);
    if (!(ne <= 2e-3))
      fprintf(stderr, "\n%s, 16-bit caches: decode vs prefill: normalized error %g\n",
              names[k], ne);
    CU_ASSERT(ne <= 2e-3);
    /* logits are finite and not all equal */
    CU_ASSERT(isfinite(ref[(N - 1) * V]) && ref[(N - 1) * V] != ref[(N - 1) * V + 1]);
    hsart_model_free(m);
    if (store16) {
      /* the example as written, its chunk memory in 16 bits: decode and
       * segments against one-shot prefill to the 16-bit tolerance */
      m = load_tiny(names[k]);
      CU_ASSERT_PTR_NOT_NULL_FATAL(m);
      CU_ASSERT_EQUAL(run_logits(m, tok, N, N, false, HSART_CACHE_F32, ref), 0);
      for (int si = 0; si < 2; si++) {
        CU_ASSERT_EQUAL(run_logits(m, tok, N, si ? 16 : 1, si == 0, HSART_CACHE_F32, got), 0);
        ne = tu_norm_err(ref, got, N * V);
        if (!(ne <= 2e-3))
          fprintf(stderr, "\n%s, 16-bit store: %s vs prefill: normalized error %g\n", names[k],
                  si ? "segments of 16" : "decode", ne);
        CU_ASSERT(ne <= 2e-3);
      }
      hsart_model_free(m);
    }
    free(ref);
    free(got);
  }
}

static int stop_at_first(void *user, int64_t done, int64_t total) {
  (void)total;
  *(int64_t *)user = done;
  return 1;
}

/* A prefill of several segments computes logits only in its last one (the
 * demand analysis skips the others'): one stopped by its progress callback
 * after the first segment has no logits, rather than whatever the output
 * rows held; completed, it has the last position's. */
static void test_stopped_prefill_has_no_logits(void) {
  hsart_model *m = load_tiny("paper_swa_hsa");
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  hsart_error e;
  int32_t tok[100];
  for (int i = 0; i < 100; i++) tok[i] = (int32_t)(i * 7 % 256);
  int64_t done = 0;
  hsart_session_options so = {.segment = 30, .progress = stop_at_first, .user = &done};
  hsart_session *s;
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &so, &s, &e), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(s, tok, 100), HSART_ECANCELED);
  CU_ASSERT_EQUAL(done, 30);
  CU_ASSERT_PTR_NULL(hsart_logits(s));
  hsart_session_free(s);
  so.progress = NULL;
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &so, &s, &e), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(s, tok, 100), HSART_OK);
  CU_ASSERT_PTR_NOT_NULL(hsart_logits(s));
  hsart_session_free(s);
  hsart_model_free(m);
}

void tu_add_runtime_suite(void) {
  CU_pSuite s = CU_add_suite("runtime", NULL, NULL);
  CU_add_test(s, "rmsnorm, rope, linear", test_rmsnorm_rope_linear);
  CU_add_test(s, "a stopped prefill has no logits", test_stopped_prefill_has_no_logits);
  CU_add_test(s, "stick-breaking and softmax with empty slots", test_stickbreak_and_softmax);
  CU_add_test(s, "retrieval: first chunk, fewer than K, L % S != 0", test_retrieval_topk);
  CU_add_test(s, "top-k tie rule", test_topk_tie_rule);
  CU_add_test(s, "chunk attention off-by-one", test_chunk_attention_off_by_one);
  CU_add_test(s, "sliding-window attention", test_window_attention);
  CU_add_test(s, "decode and segmented prefill match one-shot prefill",
              test_decode_matches_prefill);
}
