/* test_ops.c - hand-computed cases for the reference ops that
 * test_runtime.c does not cover: layernorm, in-chunk attention with GQA,
 * in-chunk RoPE, the chunk-row ops, landmark scores (exclude_window,
 * per = chunk, offsets), chunk attention (weighted and joint merges, KV
 * groups), block landmarks, Landmark Attention, MoBA and NSA.
 *
 * Every expected number is derived in a comment from PAPER.md and the
 * op's documented semantics, never from the implementation.  Values are
 * chosen so that scores are logarithms of small integers: softmaxes then
 * reduce to ratios of integers.  Where a library bug would make a check
 * fail, the message printed names the op and both numbers.
 *
 * Besides the one-shot values, most tests rerun the graph in segments
 * (1 and 3 tokens) and require the same rows: the history an op keeps must
 * be enough for it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tgraph.h"

/* 1e-5, relative for results above 1 (the ops return f32) */
#define TOL 1e-5

static void expect_near(int line, double got, double want, const char *fmt, ...) {
  bool ok = fabs(got - want) <= TOL * (fabs(want) > 1 ? fabs(want) : 1); /* false for NaN */
  if (!ok) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n  test_ops.c:%d: ", line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": got %.9g, want %.9g\n", got, want);
    va_end(ap);
  }
  CU_assertImplementation(ok, (unsigned)line, "reference op value (see stderr)", __FILE__, "",
                          CU_FALSE);
}
#define EXPECT(got, want, ...) expect_near(__LINE__, (got), (want), __VA_ARGS__)

static void expect_true(int line, bool ok, const char *what) {
  if (!ok) fprintf(stderr, "\n  test_ops.c:%d: %s\n", line, what);
  CU_assertImplementation(ok, (unsigned)line, what, __FILE__, "", CU_FALSE);
}
#define EXPECT_TRUE(c, what) expect_true(__LINE__, (c), (what))

static void expect_neg_inf(int line, double got, const char *what, int64_t a, int64_t b) {
  bool ok = got == -INFINITY;
  if (!ok) fprintf(stderr, "\n  test_ops.c:%d: %s [%lld, %lld]: got %.9g, want -inf\n", line,
                   what, (long long)a, (long long)b, got);
  CU_assertImplementation(ok, (unsigned)line, what, __FILE__, "", CU_FALSE);
}

static int32_t idx_at(tg *t, ir_value *v, int64_t r, int64_t i) {
  int32_t k;
  memcpy(&k, tg_row(t, v, r) + i, 4);
  return k;
}

/* Rows of the current run of value v (the rows its last segment made). */
static int64_t nrows(tg *t, ir_value *v) { return rt_val_of(&t->x, v)->st.seg_r1; }

/* Reruns in segments of 1 and of 3 tokens; v's rows must not change. */
static void expect_segments_agree(int line, tg *t, ir_value *v, int64_t L, const char *what) {
  for (int64_t seg = 1; seg <= 3; seg += 2) {
    double d = tg_segment_diff(t, v, L, seg);
    bool ok = d <= 1e-6;
    if (!ok)
      fprintf(stderr, "\n  test_ops.c:%d: %s: segments of %lld differ from one segment by %g\n",
              line, what, (long long)seg, d);
    CU_assertImplementation(ok, (unsigned)line, what, __FILE__, "", CU_FALSE);
  }
}
#define EXPECT_SEGMENTS(t, v, L, what) expect_segments_agree(__LINE__, (t), (v), (L), (what))

static ir_attr iattr(const char *k, int64_t v) { return ir_int_attr(k, v); }

/* ---- layernorm ----------------------------------------------------------- */

/* layernorm(x) = (x - mean) / sqrt(var + eps) * g, var the biased variance,
 * no bias term.  g = (1, 1, 2, 0.5).
 *   (1, 2, 3, 4):  mean 2.5, deviations (-1.5, -0.5, 0.5, 1.5), var 1.25
 *   (5, 5, 5, 5):  var 0: with eps = 0.75 every output is 0 (rmsnorm would
 *                  give 5 / sqrt(25.75) * g)
 *   (-2, 0, 0, 2): mean 0, var 2
 *   (0, 0, 0, 8):  mean 2, deviations (-2, -2, -2, 6), var 12
 * The same rows chunked as [2, 2, 4] normalize each vector of 4 alone. */
static void test_layernorm(void) {
  static const float X[] = {1, 2, 3, 4, 5, 5, 5, 5, -2, 0, 0, 2, 0, 0, 0, 8};
  static const float G[] = {1, 1, 2, 0.5f};
  static const double dev[4][4] = {{-1.5, -0.5, 0.5, 1.5}, {0, 0, 0, 0}, {-2, 0, 0, 2},
                                   {-2, -2, -2, 6}};
  static const double var[4] = {1.25, 0, 2, 12};
  tg t;
  tg_init(&t);
  ir_value *x = tg_rows(&t, "x", 4, 4, X);
  ir_value *g = tg_weight(&t, "g", 1, (int64_t[]){4}, G);
  ir_attr e0 = ir_float_attr("eps", 0), e1 = ir_float_attr("eps", 0.75);
  ir_value *n0 = tg_op(&t, IR_LAYERNORM, 2, (ir_value *[]){x, g}, 1, &e0, 0);
  ir_value *n1 = tg_op(&t, IR_LAYERNORM, 2, (ir_value *[]){x, g}, 1, &e1, 0);
  ir_attr cs = iattr("size", 2);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){x}, 1, &cs, 0);
  ir_value *nc = tg_op(&t, IR_LAYERNORM, 2, (ir_value *[]){c, g}, 1, &e1, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){n0, n1}, 0, NULL, 0);
  tg_run(&t, sum, 4);
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 4; i++) {
      if (var[r] > 0) /* eps = 0 on a constant row is 0 / 0 */
        EXPECT(tg_row(&t, n0, r)[i], dev[r][i] / sqrt(var[r]) * G[i], "layernorm eps=0 [%d,%d]",
               r, i);
      EXPECT(tg_row(&t, n1, r)[i], dev[r][i] / sqrt(var[r] + 0.75) * G[i],
             "layernorm eps=0.75 [%d,%d]", r, i);
      EXPECT(tg_row(&t, nc, r / 2)[(r % 2) * 4 + i], dev[r][i] / sqrt(var[r] + 0.75) * G[i],
             "layernorm of chunk rows [%d,%d]", r, i);
    }
  /* spelled out for the first row: -1.5 / sqrt(1.25) = -1.3416408 */
  EXPECT(tg_row(&t, n0, 0)[0], -1.3416408, "layernorm (1,2,3,4)[0]");
  EXPECT(tg_row(&t, n0, 0)[3], 0.6708204, "layernorm (1,2,3,4)[3]");
  tg_free(&t);
}

/* ---- attention on [C, P, H, d] --------------------------------------------- */

/* Chunks of P = 2 positions, Hq = 4 query heads, Hkv = 2 KV heads, d = 2:
 * query heads 0 and 1 read KV head 0, heads 2 and 3 read KV head 1.  The
 * scale is 1/sqrt(2), so a query written r2 * (a, b) (r2 = sqrt 2) scores
 * a*k0 + b*k1.
 *   KV head 0: keys (1,0), (0,1); values (2,0), (0,4)
 *   KV head 1: keys (0,1), (1,0); values (1,1), (3,-1)
 * Position 0:
 *   h0 r2(ln3,0): scores (ln3, 0) -> p (3/4, 1/4) -> (1.5, 1)
 *   h1 (0,0):     p (1/2, 1/2)                   -> (1, 2)
 *   h2 r2(ln3,0): KV1 scores (0, ln3) -> (1/4, 3/4) -> (2.5, -0.5)
 *   h3 r2(0,ln2): KV1 scores (ln2, 0) -> (2/3, 1/3) -> (5/3, 1/3)
 * Position 1:
 *   h0 r2(0,ln2): (0, ln2) -> (1/3, 2/3) -> (2/3, 8/3)
 *   h1 r2(ln4,0): (ln4, 0) -> (4/5, 1/5) -> (1.6, 0.8)
 *   h2 (0,0):     KV1 (1/2, 1/2)          -> (2, 0)
 *   h3 r2(ln3,0): KV1 (0, ln3) -> (1/4, 3/4) -> (2.5, -0.5)
 * (A mapping h % Hkv would give h1 (2, 0) at position 0.)  Causal: position
 * 0 sees only key 0: (2, 0) for h0, h1 and (1, 1) for h2, h3; position 1 is
 * as above.  Chunk 1 repeats chunk 0 with values x10: its outputs are x10
 * (any attention across chunks would break that). */
static void test_attention_in_chunk_gqa(void) {
  const float r2 = (float)sqrt(2.0), l2 = (float)log(2.0), l3 = (float)log(3.0),
              l4 = (float)log(4.0);
  float Q[5 * 8] = {0}, K[5 * 4] = {0}, V[5 * 4] = {0}; /* token 4: zeros */
  for (int c = 0; c < 2; c++) {
    float *q0 = Q + (2 * c) * 8, *q1 = Q + (2 * c + 1) * 8;
    q0[0] = r2 * l3;             /* h0 */
    q0[4] = r2 * l3;             /* h2 */
    q0[7] = r2 * l2;             /* h3 */
    q1[1] = r2 * l2;             /* h0 */
    q1[2] = r2 * l4;             /* h1 */
    q1[6] = r2 * l3;             /* h3 */
    float *k0 = K + (2 * c) * 4, *k1 = K + (2 * c + 1) * 4;
    k0[0] = 1, k0[3] = 1;        /* kv0 (1,0), kv1 (0,1) */
    k1[1] = 1, k1[2] = 1;        /* kv0 (0,1), kv1 (1,0) */
    float s = c ? 10 : 1, *v0 = V + (2 * c) * 4, *v1 = V + (2 * c + 1) * 4;
    v0[0] = 2 * s, v0[2] = 1 * s, v0[3] = 1 * s;       /* kv0 (2,0), kv1 (1,1) */
    v1[1] = 4 * s, v1[2] = 3 * s, v1[3] = -1 * s;      /* kv0 (0,4), kv1 (3,-1) */
  }
  static const double bid[2][4][2] = {
      {{1.5, 1}, {1, 2}, {2.5, -0.5}, {5.0 / 3, 1.0 / 3}},
      {{2.0 / 3, 8.0 / 3}, {1.6, 0.8}, {2, 0}, {2.5, -0.5}}};
  static const double cau0[4][2] = {{2, 0}, {2, 0}, {1, 1}, {1, 1}};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", 2), h4 = iattr("heads", 4), h2 = iattr("heads", 2);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "q", 5, 8, Q)}, 1, &cs, 0)},
                      1, &h4, 0);
  ir_value *k = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "k", 5, 4, K)}, 1, &cs, 0)},
                      1, &h2, 0);
  ir_value *v = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "v", 5, 4, V)}, 1, &cs, 0)},
                      1, &h2, 0);
  ir_value *bi = tg_op(&t, IR_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                       (ir_attr[]){iattr("causal", 0), iattr("window", 0)}, 0);
  ir_value *ca = tg_op(&t, IR_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                       (ir_attr[]){iattr("causal", 1), iattr("window", 0)}, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){bi, ca}, 0, NULL, 0);
  tg_run(&t, sum, 5); /* token 4 starts a third chunk that is never complete */
  EXPECT_TRUE(nrows(&t, bi) == 2, "attention over chunks: 2 complete chunks of 5 tokens");
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 2; i++)
      for (int h = 0; h < 4; h++)
        for (int e = 0; e < 2; e++) {
          double s = c ? 10 : 1;
          EXPECT(tg_row(&t, bi, c)[(i * 4 + h) * 2 + e], s * bid[i][h][e],
                 "bidirectional chunk %d pos %d head %d [%d]", c, i, h, e);
          EXPECT(tg_row(&t, ca, c)[(i * 4 + h) * 2 + e], s * (i ? bid[1][h][e] : cau0[h][e]),
                 "causal chunk %d pos %d head %d [%d]", c, i, h, e);
        }
  EXPECT_SEGMENTS(&t, sum, 5, "attention over chunks");
  tg_free(&t);
}

/* RoPE on [C, P, H, d] turns by the in-chunk position, not the token's:
 * d = 2 has one pair (0, 1) turning by pos * theta^0 = pos radians, so
 * (1, 0) at in-chunk position p becomes (cos p, sin p).  Token 2 is at
 * position 0 of chunk 1: unchanged (a global position would give cos 2). */
static void test_rope_in_chunk(void) {
  static const float X[] = {1, 0, 1, 0, 1, 0, 1, 0};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", 2), h1 = iattr("heads", 1), th = ir_float_attr("theta", 10000);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "x", 4, 2, X)}, 1, &cs, 0);
  ir_value *h = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){c}, 1, &h1, 0);
  ir_value *r = tg_op(&t, IR_ROPE, 1, (ir_value *[]){h}, 1, &th, 0);
  tg_run(&t, r, 4);
  for (int ch = 0; ch < 2; ch++) {
    EXPECT(tg_row(&t, r, ch)[0], 1, "rope chunk %d pos 0 [0]", ch);
    EXPECT(tg_row(&t, r, ch)[1], 0, "rope chunk %d pos 0 [1]", ch);
    EXPECT(tg_row(&t, r, ch)[2], cos(1.0), "rope chunk %d pos 1 [0]", ch);
    EXPECT(tg_row(&t, r, ch)[3], sin(1.0), "rope chunk %d pos 1 [1]", ch);
  }
  tg_free(&t);
}

/* ---- chunk rows -------------------------------------------------------------- */

/* Rows (1,2) (3,4) (5,6) (7,8) (0,0) in chunks of 2 (the fifth token makes
 * no chunk), then a row (9,10) appended: chunk 0 = [(1,2) (3,4) (9,10)],
 * chunk 1 = [(5,6) (7,8) (9,10)].
 *   rows 1..3:  [(3,4) (9,10)], [(7,8) (9,10)]
 *   row 0:      (1,2), (5,6);     row 2: (9,10) twice
 *   zero_row 1: [(1,2) (0,0) (9,10)], [(5,6) (0,0) (9,10)]
 *   mean_rows:  ((1+3+9)/3, (2+4+10)/3) = (13/3, 16/3); (21/3, 24/3) = (7, 8) */
static void test_chunk_row_ops(void) {
  static const float X[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0};
  static const float E[] = {9, 10};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", 2);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "x", 5, 2, X)}, 1, &cs, 0);
  ir_value *e = tg_weight(&t, "e", 1, (int64_t[]){2}, E);
  ir_value *a = tg_op(&t, IR_APPEND_ROW, 2, (ir_value *[]){c, e}, 0, NULL, 0);
  ir_value *rs = tg_op(&t, IR_ROWS, 1, (ir_value *[]){a}, 2,
                       (ir_attr[]){iattr("begin", 1), iattr("end", 3)}, 0);
  ir_attr r0a = iattr("row", 0), r2a = iattr("row", 2), r1a = iattr("row", 1);
  ir_value *r0 = tg_op(&t, IR_ROW, 1, (ir_value *[]){a}, 1, &r0a, 0);
  ir_value *r2 = tg_op(&t, IR_ROW, 1, (ir_value *[]){a}, 1, &r2a, 0);
  ir_value *z = tg_op(&t, IR_ZERO_ROW, 1, (ir_value *[]){a}, 1, &r1a, 0);
  ir_value *m = tg_op(&t, IR_MEAN_ROWS, 1, (ir_value *[]){a}, 0, NULL, 0);
  ir_value *m2 = tg_op(&t, IR_ADD, 2, (ir_value *[]){m, r0}, 0, NULL, 0);
  tg_run(&t, m2, 5);
  EXPECT_TRUE(nrows(&t, a) == 2 && nrows(&t, m) == 2, "chunk rows: 2 complete chunks");
  static const double app[2][6] = {{1, 2, 3, 4, 9, 10}, {5, 6, 7, 8, 9, 10}};
  static const double sub[2][4] = {{3, 4, 9, 10}, {7, 8, 9, 10}};
  static const double zr[2][6] = {{1, 2, 0, 0, 9, 10}, {5, 6, 0, 0, 9, 10}};
  static const double row0[2][2] = {{1, 2}, {5, 6}};
  static const double mean[2][2] = {{13.0 / 3, 16.0 / 3}, {7, 8}};
  for (int ch = 0; ch < 2; ch++) {
    for (int i = 0; i < 6; i++) {
      EXPECT(tg_row(&t, a, ch)[i], app[ch][i], "append_row chunk %d [%d]", ch, i);
      EXPECT(tg_row(&t, z, ch)[i], zr[ch][i], "zero_row chunk %d [%d]", ch, i);
    }
    for (int i = 0; i < 4; i++) EXPECT(tg_row(&t, rs, ch)[i], sub[ch][i], "rows chunk %d [%d]", ch, i);
    for (int i = 0; i < 2; i++) {
      EXPECT(tg_row(&t, r0, ch)[i], row0[ch][i], "row 0 chunk %d [%d]", ch, i);
      EXPECT(tg_row(&t, r2, ch)[i], E[i], "row 2 chunk %d [%d]", ch, i);
      EXPECT(tg_row(&t, m, ch)[i], mean[ch][i], "mean_rows chunk %d [%d]", ch, i);
    }
  }
  EXPECT_SEGMENTS(&t, m2, 5, "chunk row ops");
  tg_free(&t);
}

/* ---- landmark scores ------------------------------------------------------- */

/* S = 2, L = 10 (C = 5 chunks), G = 2 groups, d_r = 4 (scale 1/2).  The
 * landmark of chunk i is (i+1, 0, 0, 0); group 0's query is (2, 0, 0, 0)
 * and group 1's (-2, 0, 0, 0), so s(t, 0, i) = i+1 and s(t, 1, i) = -(i+1).
 * Eligible: (i+1)*S <= t, i.e. i < floor(t/2): n(t) chunks, 0 0 1 1 2 2 3
 * 3 4 4 for t = 0..9.  exclude_window = 4 also drops chunks that start in
 * the last 4 tokens t-3..t (start 2i >= t-3):
 *   t=2,3: chunk 0 starts at 0 >= t-3: none left
 *   t=4: window 1..4, chunk 1 (starts at 2) out: [0];  t=5: window 2..5: [0]
 *   t=6,7: chunk 2 (at 4) out: [0,1];  t=8,9: chunk 3 (at 6) out: [0,1,2]
 * so 0 0 0 0 1 1 2 2 3 3.  A fixed offset 0.5 and a learned one -0.25 add
 * 0.25 to eligible scores; a learned offset 2 alone adds 2; ineligible
 * entries stay -inf. */
static void test_landmark_scores(void) {
  enum { L = 10, S = 2, C = 5 };
  static float H[L * 4], Q[L * 8];
  for (int i = 0; i < C; i++) H[(i * S) * 4] = (float)(i + 1);
  for (int tt = 0; tt < L; tt++) Q[tt * 8] = 2, Q[tt * 8 + 4] = -2;
  static const float off1[] = {-0.25f}, off2[] = {2};
  static const int n_plain[L] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4};
  static const int n_excl[L] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h2 = iattr("heads", 2);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "h", L, 4, H)}, 1, &cs, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){c}, 1, &r0, 0);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "q", L, 8, Q)}, 1, &h2, 0);
  ir_value *o1 = tg_weight(&t, "off1", 1, (int64_t[]){1}, off1);
  ir_value *o2 = tg_weight(&t, "off2", 1, (int64_t[]){1}, off2);
  ir_value *plain = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                          (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                      iattr("exclude_window", 0)},
                          0);
  ir_value *excl = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                         (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                     iattr("exclude_window", 4)},
                         0);
  ir_value *both = tg_op(&t, IR_LANDMARK_SCORES, 3, (ir_value *[]){q, lmk, o1}, 4,
                         (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                     iattr("exclude_window", 0), ir_float_attr("offset", 0.5)},
                         0);
  ir_value *learned = tg_op(&t, IR_LANDMARK_SCORES, 3, (ir_value *[]){q, lmk, o2}, 3,
                            (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                        iattr("exclude_window", 0)},
                            0);
  ir_attr k2 = iattr("k", 2);
  ir_value *top = tg_op(&t, IR_TOPK, 1, (ir_value *[]){excl}, 1, &k2, 1);
  tg_run(&t, top, L);
  for (int tt = 0; tt < L; tt++)
    for (int g = 0; g < 2; g++)
      for (int i = 0; i < C; i++) {
        double s = g ? -(i + 1) : i + 1;
        const float *p = tg_row(&t, plain, tt), *x = tg_row(&t, excl, tt),
                    *b = tg_row(&t, both, tt), *l = tg_row(&t, learned, tt);
        if (i < n_plain[tt]) {
          EXPECT(p[g * C + i], s, "scores t=%d g=%d chunk %d", tt, g, i);
          EXPECT(b[g * C + i], s + 0.25, "scores + offsets t=%d g=%d chunk %d", tt, g, i);
          EXPECT(l[g * C + i], s + 2, "scores + learned offset t=%d g=%d chunk %d", tt, g, i);
        } else {
          expect_neg_inf(__LINE__, p[g * C + i], "ineligible score", tt, i);
          expect_neg_inf(__LINE__, b[g * C + i], "ineligible score with offsets", tt, i);
          expect_neg_inf(__LINE__, l[g * C + i], "ineligible score with learned offset", tt, i);
        }
        if (i < n_excl[tt])
          EXPECT(x[g * C + i], s, "exclude_window=4 t=%d g=%d chunk %d", tt, g, i);
        else
          expect_neg_inf(__LINE__, x[g * C + i], "exclude_window=4: excluded", tt, i);
      }
  EXPECT_SEGMENTS(&t, top, L, "top-k of exclude_window scores");
  tg_free(&t);
}

/* per = chunk: the tokens of chunk c use the retrieval query of the last
 * token of chunk c-1 (token 2c-1 for S = 2); chunk 0 retrieves nothing.
 * The query of token t is (2(t+1), 0, 0, 0) and landmark i is
 * (i+1, 0, 0, 0), d_r = 4: s = (tq+1)(i+1) for the query token tq.
 *   t=2,3 (chunk 1, tq=1): [2]          per token: t=3 [4]
 *   t=4,5 (tq=3): [4, 8]                per token: t=5 [6, 12]
 *   t=6,7 (tq=5): [6, 12, 18]
 *   t=8,9 (tq=7): [8, 16, 24, 32]
 * top-2, most recent first: t=9 -> chunks 3, 2 (32, 24); t=4 -> 1, 0
 * (8, 4); t=2 -> 0 then an empty slot (-1, -inf). */
/* softmax with the authors' pos_decay d = 0.5: slot k scores s_k + k d;
 * [0, 0, -inf, 1] -> [0, 0.5, -inf, 2.5], weights e^s / (1 + e^0.5 + e^2.5). */
static void test_softmax_decay_ref(void) {
  static const float S[4] = {0, 0, -INFINITY, 1}, Dc[1] = {0.5f};
  tg t;
  tg_init(&t);
  ir_value *x = tg_rows(&t, "s", 1, 4, S);
  ir_value *d = tg_weight(&t, "d", 1, (int64_t[]){1}, Dc);
  ir_value *w = tg_op(&t, IR_SOFTMAX, 2, (ir_value *[]){x, d}, 0, NULL, 0);
  tg_run(&t, w, 1);
  double z = 1 + exp(0.5) + exp(2.5);
  EXPECT(tg_row(&t, w, 0)[0], 1 / z, "pos_decay slot 0");
  EXPECT(tg_row(&t, w, 0)[1], exp(0.5) / z, "pos_decay slot 1");
  EXPECT(tg_row(&t, w, 0)[2], 0, "pos_decay empty slot");
  EXPECT(tg_row(&t, w, 0)[3], exp(2.5) / z, "pos_decay slot 3");
  tg_free(&t);
}

/* bias_add: every O-vector of a row plus the bias; here rows of two
 * vectors of O = 3 (a [L, 2, 3] value), so the bias repeats within a row. */
static void test_bias_add(void) {
  enum { L = 3 };
  static float X[L * 6];
  for (int i = 0; i < L * 6; i++) X[i] = (float)i;
  static const float B[3] = {10, -20, 0.5f};
  tg t;
  tg_init(&t);
  ir_attr h2 = iattr("heads", 2);
  ir_value *x = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "x", L, 6, X)}, 1, &h2, 0);
  ir_value *b = tg_weight(&t, "b", 1, (int64_t[]){3}, B);
  ir_value *y = tg_op(&t, IR_BIAS_ADD, 2, (ir_value *[]){x, b}, 0, NULL, 0);
  tg_run(&t, y, L);
  for (int r = 0; r < L; r++)
    for (int i = 0; i < 6; i++)
      EXPECT(tg_row(&t, y, r)[i], r * 6 + i + B[i % 3], "bias_add row %d elem %d", r, i);
  EXPECT(tg_row(&t, y, 2)[4], 16 - 20, "bias_add row 2 elem 4");
  tg_free(&t);
}

/* landmark_groups = kv: landmarks [C, G, dr], group g scores against its
 * own slice.  L = 8, S = 2, G = 2, dr = 2; chunk i's landmark is
 * [i+1, 0 | 0, 10(i+1)] and token t's query [t+1, 0 | 0, t+1], so group 0
 * scores (t+1)(i+1)/sqrt 2 and group 1 ten times that (reading group 0's
 * slice it would score 0). */
static void test_landmark_scores_grouped(void) {
  enum { L = 8, S = 2, C = 4 };
  static float H[L * 4], Q[L * 4];
  for (int i = 0; i < C; i++) {
    H[(i * S) * 4 + 0] = (float)(i + 1);
    H[(i * S) * 4 + 3] = (float)(10 * (i + 1));
  }
  for (int tt = 0; tt < L; tt++) Q[tt * 4 + 0] = Q[tt * 4 + 3] = (float)(tt + 1);
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h2 = iattr("heads", 2);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "h", L, 4, H)}, 1, &cs, 0);
  ir_value *row = tg_op(&t, IR_ROW, 1, (ir_value *[]){c}, 1, &r0, 0);
  ir_value *lmk = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){row}, 1, &h2, 0);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "q", L, 4, Q)}, 1, &h2, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                   iattr("exclude_window", 0)},
                       0);
  CU_ASSERT_EQUAL(lmk->type.rank, 3);
  tg_run(&t, sc, L);
  for (int tt = 0; tt < L; tt++)
    for (int g = 0; g < 2; g++)
      for (int i = 0; i < C; i++) {
        if (i < tt / S)
          EXPECT(tg_row(&t, sc, tt)[g * C + i], (g ? 10.0 : 1.0) * (tt + 1) * (i + 1) / sqrt(2.0),
                 "grouped t=%d g=%d chunk %d", tt, g, i);
        else
          expect_neg_inf(__LINE__, tg_row(&t, sc, tt)[g * C + i], "grouped ineligible", tt, i);
      }
  EXPECT(tg_row(&t, sc, 7)[1 * C + 2], 10.0 * 8 * 3 / sqrt(2.0), "grouped t=7 g=1 chunk 2");
  tg_free(&t);
}

static void test_landmark_scores_per_chunk(void) {
  enum { L = 10, S = 2, C = 5 };
  static float H[L * 4], Q[L * 4];
  for (int i = 0; i < C; i++) H[(i * S) * 4] = (float)(i + 1);
  for (int tt = 0; tt < L; tt++) Q[tt * 4] = (float)(2 * (tt + 1));
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h1 = iattr("heads", 1);
  ir_value *c = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "h", L, 4, H)}, 1, &cs, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){c}, 1, &r0, 0);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "q", L, 4, Q)}, 1, &h1, 0);
  ir_value *pc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "chunk"),
                                   iattr("exclude_window", 0)},
                       0);
  ir_value *pt = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                   iattr("exclude_window", 0)},
                       0);
  /* The DRT/GCA authors' rule: the tokens of chunk j retrieve among the
   * chunks before j - 1 (the query's own chunk is left out), which is
   * per = chunk with exclude_window = S (examples/drt_gca.hsa). */
  ir_value *pa = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){q, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "chunk"),
                                   iattr("exclude_window", S)},
                       0);
  ir_attr k2 = iattr("k", 2);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){pc}, 1, &k2, 0);
  ir_value *val = idx->def->out[1];
  tg_run(&t, val, L);
  for (int tt = 0; tt < L; tt++) {
    int own = tt / S, tq = own * S - 1;
    for (int i = 0; i < C; i++) {
      if (i < own)
        EXPECT(tg_row(&t, pc, tt)[i], (double)(tq + 1) * (i + 1), "per=chunk t=%d chunk %d", tt,
               i);
      else
        expect_neg_inf(__LINE__, tg_row(&t, pc, tt)[i], "per=chunk ineligible", tt, i);
      if (i < own - 1)
        EXPECT(tg_row(&t, pa, tt)[i], (double)(tq + 1) * (i + 1), "authors' rule t=%d chunk %d",
               tt, i);
      else
        expect_neg_inf(__LINE__, tg_row(&t, pa, tt)[i], "authors' rule ineligible", tt, i);
    }
  }
  /* t = 7 (chunk 3) asks with the query of t = 5: chunks 0 and 1 (not 2). */
  EXPECT(tg_row(&t, pa, 7)[1], 12, "authors' rule t=7 chunk 1");
  expect_neg_inf(__LINE__, tg_row(&t, pa, 7)[2], "authors' rule t=7 chunk 2", 7, 2);
  EXPECT(tg_row(&t, pc, 3)[0], 2, "per=chunk t=3");
  EXPECT(tg_row(&t, pt, 3)[0], 4, "per=token t=3");
  EXPECT(tg_row(&t, pc, 5)[1], 8, "per=chunk t=5 chunk 1");
  EXPECT(tg_row(&t, pt, 5)[1], 12, "per=token t=5 chunk 1");
  EXPECT_TRUE(idx_at(&t, idx, 9, 0) == 3 && idx_at(&t, idx, 9, 1) == 2, "top-2 at t=9: 3, 2");
  EXPECT(tg_row(&t, val, 9)[0], 32, "top-2 value t=9 slot 0");
  EXPECT(tg_row(&t, val, 9)[1], 24, "top-2 value t=9 slot 1");
  EXPECT_TRUE(idx_at(&t, idx, 4, 0) == 1 && idx_at(&t, idx, 4, 1) == 0, "top-2 at t=4: 1, 0");
  EXPECT(tg_row(&t, val, 4)[0], 8, "top-2 value t=4 slot 0");
  EXPECT(tg_row(&t, val, 4)[1], 4, "top-2 value t=4 slot 1");
  EXPECT_TRUE(idx_at(&t, idx, 2, 0) == 0 && idx_at(&t, idx, 2, 1) == -1, "top-2 at t=2: 0, -1");
  expect_neg_inf(__LINE__, tg_row(&t, val, 2)[1], "empty slot value", 2, 1);
  EXPECT_SEGMENTS(&t, val, L, "per=chunk top-k values");
  EXPECT_SEGMENTS(&t, idx, L, "per=chunk top-k indices");
  tg_free(&t);
}

/* Top-k keeps the lower index of a tie even when a larger score comes
 * after the tied ones and pushes one of them out.  S = 2, L = 9, landmarks
 * 1, 1, 2, 0.5 (chunks 0..3), query 1: token 8 (chunk 4) ranks chunk 2
 * (2), then chunks 0 and 1 tied at 1, then chunk 3.  Top-2 keeps chunks 2
 * and 0, most recent first: [2, 0], values [2, 1].  Top-3: [2, 1, 0]. */
static void test_topk_ties_then_larger(void) {
  enum { L = 9, S = 2 };
  static const float LM[L] = {1, 0, 1, 0, 2, 0, 0.5f, 0, 0};
  static const float RQ[L] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h1 = iattr("heads", 1),
          k2 = iattr("k", 2), k3 = iattr("k", 3);
  ir_value *lc = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "lm", L, 1, LM)}, 1, &cs, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){lc}, 1, &r0, 0);
  ir_value *rq = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "rq", L, 1, RQ)}, 1, &h1, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){rq, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                   iattr("exclude_window", 0)},
                       0);
  ir_value *i2 = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k2, 0);
  ir_value *i3 = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k3, 0);
  tg_run(&t, i3, L);
  EXPECT_TRUE(idx_at(&t, i2, 8, 0) == 2 && idx_at(&t, i2, 8, 1) == 0,
              "top-2 of (1, 1, 2, 0.5): chunks [2, 0]");
  EXPECT(tg_row(&t, i2->def->out[1], 8)[0], 2, "top-2 value slot 0");
  EXPECT(tg_row(&t, i2->def->out[1], 8)[1], 1, "top-2 value slot 1");
  EXPECT_TRUE(idx_at(&t, i3, 8, 0) == 2 && idx_at(&t, i3, 8, 1) == 1 && idx_at(&t, i3, 8, 2) == 0,
              "top-3 of (1, 1, 2, 0.5): chunks [2, 1, 0]");
  tg_free(&t);
}

/* ---- chunk attention ------------------------------------------------------- */

/* S = 2, L = 7 (chunks 0..2 complete; token 6 is in chunk 3), Hq = 2,
 * Hkv = 1, d = 2 (scale 1/sqrt 2), one retrieval group, top-2.
 * Landmarks (d_r = 1, query 1): chunk 0: 3, chunk 1: 1, chunk 2: 2, so
 * token 6 selects chunks 0 and 2, in slots [2, 0] (most recent first).
 * Weights at token 6 (given, not computed): slot 0 0.25, slot 1 0.5.
 *   keys:   chunk 0 (0,0) (0,1); chunk 1 (1,0) (0,1); chunk 2 (1,0) (0,1)
 *   values: chunk 0 (1,0) (0,1); chunk 1 (100,100) x2; chunk 2 (2,0) (0,2)
 * Token 6, head 0 query r2(ln3, 0): chunk 2 scores (ln3, 0), chunk 0
 * scores (0, 0); head 1 query 0: all scores 0.
 * weighted, softmax_plus = 0:
 *   h0: chunk 2 (3/4,1/4) -> (1.5,0.5); chunk 0 (1/2,1/2) -> (0.5,0.5)
 *       0.25*(1.5,0.5) + 0.5*(0.5,0.5) = (0.625, 0.375)
 *       (with the weights on the wrong slots: (0.875, 0.375))
 *   h1: 0.25*(1,1) + 0.5*(0.5,0.5) = (0.5, 0.5)
 * weighted, softmax_plus = 1 (each chunk's denominator + exp(0)):
 *   h0: chunk 2 exps (3,1)+1 -> (3/5,1/5) -> (1.2,0.4); chunk 0 (1,1)+1 ->
 *       (1/3,1/3) -> (1/3,1/3); 0.25*(1.2,0.4) + 0.5*(1/3,1/3)
 *       = (0.3 + 1/6, 0.1 + 1/6)
 *   h1: chunk 2 (1/3,1/3) -> (2/3,2/3); chunk 0 -> (1/3,1/3);
 *       0.25*(2/3,2/3) + 0.5*(1/3,1/3) = (1/3, 1/3)
 * joint, softmax_plus = 0 (one softmax over the 4 rows, weights unused):
 *   h0: exps 3,1 (chunk 2), 1,1 (chunk 0), sum 6:
 *       ((3*2 + 1*1)/6, (1*2 + 1*1)/6) = (7/6, 1/2)
 *   h1: 1/4 each: ((2+1)/4, (2+1)/4) = (0.75, 0.75)
 * joint, softmax_plus = 1: one extra exp(0) in the single denominator:
 *   h0: sum 7: (7/7, 3/7);  h1: sum 5: (3/5, 3/5)
 * Token 4 (chunks 1 and 0 selected, both queries 0, weights 0): weighted 0;
 * joint (2*100 + 1)/4 = 50.25 in both components (the weights only select).
 * Token 1 selects nothing: 0 everywhere. */
static void test_chunk_attention_merges(void) {
  enum { L = 7, S = 2 };
  const float r2 = (float)sqrt(2.0), l3 = (float)log(3.0);
  static float LM[L], RQ[L], WT[L * 2], QA[L * 4];
  static const float Kt[L * 2] = {0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0};
  static const float Vt[L * 2] = {1, 0, 0, 1, 100, 100, 100, 100, 2, 0, 0, 2, 0, 0};
  LM[0] = 3, LM[2] = 1, LM[4] = 2;
  for (int i = 0; i < L; i++) RQ[i] = 1;
  WT[6 * 2 + 0] = 0.25f, WT[6 * 2 + 1] = 0.5f;
  QA[6 * 4 + 0] = r2 * l3;
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h1 = iattr("heads", 1),
          h2 = iattr("heads", 2), k2 = iattr("k", 2);
  ir_value *lc = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "lm", L, 1, LM)}, 1, &cs, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){lc}, 1, &r0, 0);
  ir_value *rq = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "rq", L, 1, RQ)}, 1, &h1, 0);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){rq, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                   iattr("exclude_window", 0)},
                       0);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k2, 0);
  ir_value *w = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "w", L, 2, WT)}, 1, &h1, 0);
  ir_value *k = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "k", L, 2, Kt)}, 1, &cs, 0)},
                      1, &h1, 0);
  ir_value *v = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "v", L, 2, Vt)}, 1, &cs, 0)},
                      1, &h1, 0);
  ir_value *q = tg_op(&t, IR_SPLIT_HEADS, 1, (ir_value *[]){tg_rows(&t, "qa", L, 4, QA)}, 1, &h2, 0);
  ir_value *in[] = {q, k, v, idx, w};
  ir_value *wt0 = tg_op(&t, IR_CHUNK_ATTENTION, 5, in, 2,
                        (ir_attr[]){iattr("softmax_plus", 0), ir_str_attr("merge", "weighted")}, 0);
  ir_value *wt1 = tg_op(&t, IR_CHUNK_ATTENTION, 5, in, 2,
                        (ir_attr[]){iattr("softmax_plus", 1), ir_str_attr("merge", "weighted")}, 0);
  ir_value *jt0 = tg_op(&t, IR_CHUNK_ATTENTION, 5, in, 2,
                        (ir_attr[]){iattr("softmax_plus", 0), ir_str_attr("merge", "joint")}, 0);
  ir_value *jt1 = tg_op(&t, IR_CHUNK_ATTENTION, 5, in, 2,
                        (ir_attr[]){iattr("softmax_plus", 1), ir_str_attr("merge", "joint")}, 0);
  ir_value *s1 = tg_op(&t, IR_ADD, 2, (ir_value *[]){wt0, wt1}, 0, NULL, 0);
  ir_value *s2 = tg_op(&t, IR_ADD, 2, (ir_value *[]){jt0, jt1}, 0, NULL, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){s1, s2}, 0, NULL, 0);
  tg_run(&t, sum, L);
  EXPECT_TRUE(idx_at(&t, idx, 6, 0) == 2 && idx_at(&t, idx, 6, 1) == 0,
              "chunk attention: token 6 selects chunks [2, 0]");
  static const double want[4][2][2] = {
      {{0.625, 0.375}, {0.5, 0.5}},
      {{0.3 + 1.0 / 6, 0.1 + 1.0 / 6}, {1.0 / 3, 1.0 / 3}},
      {{7.0 / 6, 0.5}, {0.75, 0.75}},
      {{1, 3.0 / 7}, {0.6, 0.6}}};
  static const char *const names[4] = {"weighted", "weighted softmax_plus=1", "joint",
                                       "joint softmax_plus=1"};
  ir_value *outs[4] = {wt0, wt1, jt0, jt1};
  for (int o = 0; o < 4; o++) {
    for (int h = 0; h < 2; h++)
      for (int e = 0; e < 2; e++) {
        EXPECT(tg_row(&t, outs[o], 6)[h * 2 + e], want[o][h][e], "%s t=6 head %d [%d]",
               names[o], h, e);
        EXPECT(tg_row(&t, outs[o], 1)[h * 2 + e], 0, "%s t=1 (nothing selected)", names[o]);
      }
  }
  for (int i = 0; i < 4; i++) {
    EXPECT(tg_row(&t, wt0, 4)[i], 0, "weighted t=4 with weights 0 [%d]", i);
    EXPECT(tg_row(&t, jt0, 4)[i], 50.25, "joint t=4 ignores the weights [%d]", i);
  }
  EXPECT_SEGMENTS(&t, sum, L, "chunk attention");
  tg_free(&t);
}

/* Retrieval per KV group: Hq = Hkv = 2, G = 2, d = 1, top-1, S = 2, L = 5.
 * Landmarks 1 (chunk 0) and 2 (chunk 1); group 0's retrieval query is 1
 * (selects chunk 1), group 1's is -1 (scores -1, -2: selects chunk 0).
 * Keys are 0 (uniform in-chunk softmax), weights 1.
 *   values (head 0, head 1): t0 (1,10) t1 (3,30) t2 (5,50) t3 (7,70)
 * Token 4: head 0 reads KV head 0 and group 0's chunk 1: (5+7)/2 = 6;
 *          head 1 reads KV head 1 and group 1's chunk 0: (10+30)/2 = 20.
 * Token 3 (only chunk 0 eligible): head 0 (1+3)/2 = 2, head 1 20. */
static void test_chunk_attention_groups(void) {
  enum { L = 5, S = 2 };
  static const float LM[L] = {1, 0, 2, 0, 0};
  static const float RQ[L * 2] = {1, -1, 1, -1, 1, -1, 1, -1, 1, -1};
  static const float WT[L * 2] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  static const float Kt[L * 2] = {0};
  static const float Vt[L * 2] = {1, 10, 3, 30, 5, 50, 7, 70, 0, 0};
  static const float Qt[L * 2] = {0};
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", S), r0 = iattr("row", 0), h2 = iattr("heads", 2),
          k1 = iattr("k", 1);
  ir_value *lc = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "lm", L, 1, LM)}, 1, &cs, 0);
  ir_value *lmk = tg_op(&t, IR_ROW, 1, (ir_value *[]){lc}, 1, &r0, 0);
  ir_value *rq = tg_heads(&t, "rq", L, 2, 2, RQ);
  ir_value *sc = tg_op(&t, IR_LANDMARK_SCORES, 2, (ir_value *[]){rq, lmk}, 3,
                       (ir_attr[]){iattr("chunk", S), ir_str_attr("per", "token"),
                                   iattr("exclude_window", 0)},
                       0);
  ir_value *idx = tg_op(&t, IR_TOPK, 1, (ir_value *[]){sc}, 1, &k1, 0);
  ir_value *w = tg_heads(&t, "w", L, 2, 2, WT);
  ir_value *k = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "k", L, 2, Kt)}, 1, &cs, 0)},
                      1, &h2, 0);
  ir_value *v = tg_op(&t, IR_SPLIT_HEADS, 1,
                      (ir_value *[]){tg_op(&t, IR_CHUNK, 1,
                                           (ir_value *[]){tg_rows(&t, "v", L, 2, Vt)}, 1, &cs, 0)},
                      1, &h2, 0);
  ir_value *q = tg_heads(&t, "q", L, 2, 2, Qt);
  ir_value *o = tg_op(&t, IR_CHUNK_ATTENTION, 5, (ir_value *[]){q, k, v, idx, w}, 2,
                      (ir_attr[]){iattr("softmax_plus", 0), ir_str_attr("merge", "weighted")}, 0);
  tg_run(&t, o, L);
  EXPECT_TRUE(idx_at(&t, idx, 4, 0) == 1 && idx_at(&t, idx, 4, 1) == 0,
              "groups: token 4 selects chunk 1 (group 0) and chunk 0 (group 1)");
  EXPECT(tg_row(&t, o, 4)[0], 6, "group chunk attention t=4 head 0");
  EXPECT(tg_row(&t, o, 4)[1], 20, "group chunk attention t=4 head 1");
  EXPECT(tg_row(&t, o, 3)[0], 2, "group chunk attention t=3 head 0");
  EXPECT(tg_row(&t, o, 3)[1], 20, "group chunk attention t=3 head 1");
  EXPECT_SEGMENTS(&t, o, L, "chunk attention with groups");
  tg_free(&t);
}

/* ---- block landmarks --------------------------------------------------------- */

/* block 2, embedding e = (0.5, -1); rows (1,2) (3,6) (5,0) (-1,4) (9,9):
 * block 0 = mean((1,2),(3,6)) + e = (2,4) + e = (2.5, 3);
 * block 1 = mean((5,0),(-1,4)) + e = (2,2) + e = (2.5, 1);
 * token 4 starts block 2, incomplete: 2 blocks. */
static void test_block_landmark(void) {
  static const float X[] = {1, 2, 3, 6, 5, 0, -1, 4, 9, 9};
  static const float E[] = {0.5f, -1};
  tg t;
  tg_init(&t);
  ir_value *x = tg_rows(&t, "x", 5, 2, X);
  ir_value *e = tg_weight(&t, "e", 1, (int64_t[]){2}, E);
  ir_attr b = iattr("block", 2);
  ir_value *lm = tg_op(&t, IR_BLOCK_LANDMARK, 2, (ir_value *[]){x, e}, 1, &b, 0);
  tg_run(&t, lm, 5);
  EXPECT_TRUE(nrows(&t, lm) == 2, "block_landmark: 2 complete blocks of 5 tokens");
  EXPECT(tg_row(&t, lm, 0)[0], 2.5, "block 0 [0]");
  EXPECT(tg_row(&t, lm, 0)[1], 3, "block 0 [1]");
  EXPECT(tg_row(&t, lm, 1)[0], 2.5, "block 1 [0]");
  EXPECT(tg_row(&t, lm, 1)[1], 1, "block 1 [1]");
  EXPECT_SEGMENTS(&t, lm, 5, "block_landmark");
  tg_free(&t);
}

/* ---- Landmark Attention ------------------------------------------------------ */

/* Grouped softmax.  Block 2, L = 7 (blocks 0..2 complete, token 6 alone in
 * block 3), Hq = 2, Hkv = 1, d = 1 (scale 1).  Head 0's query is 1, head
 * 1's is 0.
 *   keys   k0..k6 = 0, 0, ln3, 0, ln2, 0, 0
 *   values v0..v6 = 1000, 2000, 10, 20, 30, 60, 5
 *   landmark keys: block 0 ln2, block 1 ln4, block 2 ln3
 * For token t: Z = sum of exp(score) over the own block's keys <= t and the
 * selected blocks' landmarks; a local key gets exp(s)/Z, a selected block
 * exp(l_b)/Z spread over its keys by an in-block softmax.  In-block:
 *   block 0 (0, 0): (1500); block 1 (ln3, 0): 3/4*10 + 1/4*20 = 12.5;
 *   block 2 (ln2, 0): 2/3*30 + 1/3*60 = 40.
 * Head 0, top-1:
 *   t=6: top block 1 (4 > 3 > 2); Z = 1 + 4 = 5: 5/5 + 4/5*12.5 = 11
 *   t=5: local k4, k5 exps 2, 1; block 1: Z = 7: (2*30 + 60)/7 + 4/7*12.5
 *        = 170/7
 *   t=4: local exp 2; Z = 6: 60/6 + 4/6*12.5 = 55/3
 *   t=2: local exp 3 (k2 = ln3); block 0 exp 2; Z = 5: 30/5 + 2/5*1500 = 606
 *   t=1: local only, exps 1, 1: 1500;  t=0: 1000
 * Head 0, top-2:
 *   t=6: blocks 1, 2: Z = 1 + 4 + 3 = 8: 5/8 + 4/8*12.5 + 3/8*40 = 21.875
 *   t=5: blocks 0, 1: Z = 2 + 1 + 2 + 4 = 9: (120 + 2*1500 + 4*12.5)/9
 *        = 3170/9
 * Head 1 (query 0: every score 0, landmark ties go to the lower block):
 *   top-1 t=6: block 0: Z = 2: 5/2 + 1500/2 = 752.5
 *   top-1 t=5: local 1, 1 and block 0: Z = 3: (30 + 60 + 1500)/3 = 530
 *   top-2 t=6: blocks 0, 1: Z = 3: (5 + 1500 + 15)/3 = 1520/3 */
static void test_landmark_attention(void) {
  enum { L = 7 };
  const float l2 = (float)log(2.0), l3 = (float)log(3.0), l4 = (float)log(4.0);
  float Q[L * 2] = {0}, K[L] = {0, 0, l3, 0, l2, 0, 0}, LK[L] = {0};
  static const float V[L] = {1000, 2000, 10, 20, 30, 60, 5};
  for (int i = 0; i < L; i++) Q[i * 2] = 1;
  LK[0] = l2, LK[2] = l4, LK[4] = l3;
  tg t;
  tg_init(&t);
  ir_attr cs = iattr("size", 2), r0 = iattr("row", 0), h1 = iattr("heads", 1);
  ir_value *q = tg_heads(&t, "q", L, 2, 2, Q);
  ir_value *k = tg_heads(&t, "k", L, 1, 1, K);
  ir_value *v = tg_heads(&t, "v", L, 1, 1, V);
  ir_value *lc = tg_op(&t, IR_CHUNK, 1, (ir_value *[]){tg_rows(&t, "lk", L, 1, LK)}, 1, &cs, 0);
  ir_value *lk = tg_op(&t, IR_SPLIT_HEADS, 1,
                       (ir_value *[]){tg_op(&t, IR_ROW, 1, (ir_value *[]){lc}, 1, &r0, 0)}, 1, &h1,
                       0);
  ir_value *a1 = tg_op(&t, IR_LANDMARK_ATTENTION, 4, (ir_value *[]){q, k, v, lk}, 2,
                       (ir_attr[]){iattr("block", 2), iattr("topk", 1)}, 0);
  ir_value *a2 = tg_op(&t, IR_LANDMARK_ATTENTION, 4, (ir_value *[]){q, k, v, lk}, 2,
                       (ir_attr[]){iattr("block", 2), iattr("topk", 2)}, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){a1, a2}, 0, NULL, 0);
  tg_run(&t, sum, L);
  EXPECT(tg_row(&t, a1, 6)[0], 11, "landmark top-1 t=6 head 0");
  EXPECT(tg_row(&t, a1, 5)[0], 170.0 / 7, "landmark top-1 t=5 head 0");
  EXPECT(tg_row(&t, a1, 4)[0], 55.0 / 3, "landmark top-1 t=4 head 0");
  EXPECT(tg_row(&t, a1, 2)[0], 606, "landmark top-1 t=2 head 0");
  EXPECT(tg_row(&t, a1, 1)[0], 1500, "landmark top-1 t=1 head 0");
  EXPECT(tg_row(&t, a1, 0)[0], 1000, "landmark top-1 t=0 head 0");
  EXPECT(tg_row(&t, a2, 6)[0], 21.875, "landmark top-2 t=6 head 0");
  EXPECT(tg_row(&t, a2, 5)[0], 3170.0 / 9, "landmark top-2 t=5 head 0");
  EXPECT(tg_row(&t, a1, 6)[1], 752.5, "landmark top-1 t=6 head 1 (tie: lower block)");
  EXPECT(tg_row(&t, a1, 5)[1], 530, "landmark top-1 t=5 head 1 (tie: lower block)");
  EXPECT(tg_row(&t, a2, 6)[1], 1520.0 / 3, "landmark top-2 t=6 head 1 (ties: lower blocks)");
  EXPECT_SEGMENTS(&t, sum, L, "landmark attention");
  tg_free(&t);
}

/* ---- MoBA ---------------------------------------------------------------------- */

/* Block 2, top-1, L = 7, Hq = 2 (queries 1 and -1), Hkv = 1, d = 1.
 *   keys   k0..k6 = ln4, 0, ln2, ln2, ln8, -ln8, 0
 *   values v0..v6 = 6, 12, 100, 200, 30, 80, 3
 * Gate of a past block: q . mean(keys): blocks 0, 1, 2 have mean keys ln2,
 * ln2, 0 (block 2's largest key, ln8, would win under a max-key gate).
 * Head 0 (q = 1): blocks 0 and 1 tie, the lower (0) wins, at every t >= 4
 * (and at t = 2, 3 block 0 is the only past block).  One softmax over the
 * selected block's keys and the own block's keys <= t:
 *   t=6: exps 4, 1 (block 0), 1 (k6): (24 + 12 + 3)/6 = 6.5
 *   t=5: 4, 1, 8, 1/8 (k4, k5): (24 + 12 + 240 + 10)/13.125 = 286/13.125
 *   t=4: 4, 1, 8: (24 + 12 + 240)/13 = 276/13
 *   t=3: 4, 1, 2, 2: (24 + 12 + 200 + 400)/9 = 636/9
 *   t=2: 4, 1, 2 (k3 is in the future): (24 + 12 + 200)/7 = 236/7
 *   t=1: own block only: (24 + 12)/5 = 7.2;  t=0: 6
 * Head 1 (q = -1): gates -ln2, -ln2, 0.
 *   t=6: block 2 wins: exps 1/8, 8 (k4, k5), 1 (k6):
 *        (30/8 + 640 + 3)/9.125 = 646.75/9.125
 *   t=5: blocks 0, 1 tie at -ln2: block 0: exps 1/4, 1, own 1/8, 8:
 *        (6/4 + 12 + 30/8 + 640)/9.375 = 657.25/9.375
 * Top-2, t=6:
 *   head 0: blocks 0, 1 (block 2 ranks last): exps 4, 1, 2, 2, 1 (k6):
 *        (24 + 12 + 200 + 400 + 3)/10 = 63.9
 *   head 1: block 2 first, then the tie of blocks 0 and 1 goes to block 0
 *        (even though block 2 came after them): exps 1/4, 1 (block 0),
 *        1/8, 8 (block 2), 1: (1.5 + 12 + 3.75 + 640 + 3)/10.375
 *        = 660.25/10.375 (block 1 instead: 796.75/10.125) */
static void test_moba_attention(void) {
  enum { L = 7 };
  const float l2 = (float)log(2.0), l4 = (float)log(4.0), l8 = (float)log(8.0);
  float Q[L * 2], K[L] = {l4, 0, l2, l2, l8, -l8, 0};
  static const float V[L] = {6, 12, 100, 200, 30, 80, 3};
  for (int i = 0; i < L; i++) Q[i * 2] = 1, Q[i * 2 + 1] = -1;
  tg t;
  tg_init(&t);
  ir_value *q = tg_heads(&t, "q", L, 2, 2, Q);
  ir_value *k = tg_heads(&t, "k", L, 1, 1, K);
  ir_value *v = tg_heads(&t, "v", L, 1, 1, V);
  ir_value *m = tg_op(&t, IR_MOBA_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                      (ir_attr[]){iattr("block", 2), iattr("topk", 1)}, 0);
  ir_value *m2 = tg_op(&t, IR_MOBA_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                       (ir_attr[]){iattr("block", 2), iattr("topk", 2)}, 0);
  ir_value *sum = tg_op(&t, IR_ADD, 2, (ir_value *[]){m, m2}, 0, NULL, 0);
  tg_run(&t, sum, L);
  EXPECT(tg_row(&t, m2, 6)[0], 63.9, "moba top-2 t=6 head 0");
  EXPECT(tg_row(&t, m2, 6)[1], 660.25 / 10.375, "moba top-2 t=6 head 1 (tie after a larger)");
  static const double h0[L] = {6, 7.2, 236.0 / 7, 636.0 / 9, 276.0 / 13, 286 / 13.125, 6.5};
  for (int tt = 0; tt < L; tt++) EXPECT(tg_row(&t, m, tt)[0], h0[tt], "moba t=%d head 0", tt);
  EXPECT(tg_row(&t, m, 6)[1], 646.75 / 9.125, "moba t=6 head 1");
  EXPECT(tg_row(&t, m, 5)[1], 657.25 / 9.375, "moba t=5 head 1");
  EXPECT_SEGMENTS(&t, sum, L, "moba attention");
  tg_free(&t);
}

/* ---- NSA ----------------------------------------------------------------------- */

/* Compression, H = 2 heads, d = 2, block 2: compressed row j is
 * W . concat(k[j*s], k[j*s+1]) (position-major), W = [[1,0,0,1],[0,2,-1,0]]:
 *   out[0] = k[j*s][0] + k[j*s+1][1],  out[1] = 2*k[j*s][1] - k[j*s+1][0]
 * Rows (head 0 | head 1): t0 (1,2|3,4) t1 (5,6|7,8) t2 (9,10|11,12)
 * t3 (13,14|15,16) t4 (17,18|19,20).
 * stride 1: (5-2)/1+1 = 4 rows:
 *   j0: h0 (1+6, 4-5) = (7,-1)    h1 (3+8, 8-7) = (11,1)
 *   j1: h0 (5+10, 12-9) = (15,3)  h1 (7+12, 16-11) = (19,5)
 *   j2: h0 (9+14, 20-13) = (23,7) h1 (11+16, 24-15) = (27,9)
 *   j3: h0 (13+18, 28-17) = (31,11) h1 (15+20, 32-19) = (35,13)
 * stride 2: (5-2)/2+1 = 2 rows: j0 and j2 above. */
static void test_nsa_compress(void) {
  float X[5 * 4];
  for (int i = 0; i < 20; i++) X[i] = (float)(i + 1);
  static const float Wc[] = {1, 0, 0, 1, 0, 2, -1, 0};
  static const double s1[4][4] = {{7, -1, 11, 1}, {15, 3, 19, 5}, {23, 7, 27, 9},
                                  {31, 11, 35, 13}};
  tg t;
  tg_init(&t);
  ir_value *k = tg_heads(&t, "k", 5, 2, 4, X);
  ir_value *w = tg_weight(&t, "w", 2, (int64_t[]){2, 4}, Wc);
  ir_value *c1 = tg_op(&t, IR_NSA_COMPRESS, 2, (ir_value *[]){k, w}, 2,
                       (ir_attr[]){iattr("block", 2), iattr("stride", 1)}, 0);
  ir_value *c2 = tg_op(&t, IR_NSA_COMPRESS, 2, (ir_value *[]){k, w}, 2,
                       (ir_attr[]){iattr("block", 2), iattr("stride", 2)}, 0);
  tg_run(&t, c1, 5);
  EXPECT_TRUE(nrows(&t, c1) == 4, "nsa_compress stride 1: 4 rows of 5 tokens");
  EXPECT_TRUE(nrows(&t, c2) == 2, "nsa_compress stride 2: 2 rows of 5 tokens");
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 4; i++) {
      EXPECT(tg_row(&t, c1, j)[i], s1[j][i], "nsa_compress stride 1 row %d [%d]", j, i);
      if (j % 2 == 0)
        EXPECT(tg_row(&t, c2, j / 2)[i], s1[j][i], "nsa_compress stride 2 row %d [%d]", j / 2, i);
    }
  EXPECT_SEGMENTS(&t, c1, 5, "nsa_compress stride 1");
  tg_free(&t);
}

/* NSA with cmp_block 2, cmp_stride 2, block 2, window 2, L = 7, Hq = 2
 * (queries 1 and -2), Hkv = 1, d = 1 (scale 1).
 *   keys   k0..k6 = 0, ln3, 0, ln2, 0, ln4, 0
 *   values v0..v6 = 0, 8, 9, 3, 6, 100, 5
 *   compressed keys kc0..2 = ln3, 0, ln2, values vc0..2 = 8, 4, 2 (given
 *   through a compression that keeps the first row of each block).
 * Compressed block j covers tokens 2j, 2j+1 and falls in selection block j.
 *
 * Op A: topk 1, no forced blocks; token 4, gates h0 (0.5, 0.25, 0.125),
 * h1 (0.25, 0.5, 1):
 *   compressed (blocks 0, 1 complete): h0 p = (3/4, 1/4) -> 7;
 *     h1 scores (-2 ln3, 0) -> p = (1/10, 9/10) -> 0.8 + 3.6 = 4.4
 *   selection mass summed over the group: block 0 0.75 + 0.1 = 0.85,
 *     block 1 0.25 + 0.9 = 1.15, block 2 0: block 1 for both heads (head 0
 *     alone would pick block 0)
 *   selected (k2, k3): h0 exps 1, 2 -> (9 + 6)/3 = 5; h1 exps 1, 1/4 ->
 *     (9 + 3/4)/1.25 = 7.8
 *   window (k3, k4): h0 exps 2, 1 -> (6 + 6)/3 = 4; h1 1/4, 1 -> 5.4
 *   out: h0 0.5*7 + 0.25*5 + 0.125*4 = 5.25;
 *        h1 0.25*4.4 + 0.5*7.8 + 1*5.4 = 10.4
 * Op B: gates (0, 0, 1): the window branch, i.e. causal attention with
 *   window 2 (t=4: h0 4, h1 5.4).
 * Op C: topk 4 = init_blocks 4 (every block forced), gates (0, 1, 0):
 *   plain causal attention.  t=4: h0 exps 1, 3, 1, 2, 1 (sum 8):
 *   (24 + 9 + 6 + 6)/8 = 45/8; h1 exps 1, 1/9, 1, 1/4, 1 (sum 121/36):
 *   (8/9 + 9 + 3/4 + 6) * 36/121 = 599/121.  Op C2 forces them as
 *   local_blocks 4 instead: the same.
 * Op D: topk 3, init 1, local 1, gates (0, 1, 0); token 6 (block 3):
 *   forced blocks 0 and 3; the third by group mass over compressed blocks
 *   0..2: h0 p = (3, 1, 2)/6, h1 exps (1/9, 1, 1/4) -> p = (4, 36, 9)/49;
 *   block 1: 1/6 + 36/49 = 0.901 > block 2: 1/3 + 9/49 = 0.517 (head 0
 *   alone would pick block 2).  Keys 0, 1, 2, 3, 6:
 *   h0 exps 1, 3, 1, 2, 1: (24 + 9 + 6 + 5)/8 = 5.5
 *   h1 exps 1, 1/9, 1, 1/4, 1: (8/9 + 9 + 3/4 + 5) * 36/121 = 563/121 */
static void test_nsa_attention(void) {
  enum { L = 7 };
  const float l2 = (float)log(2.0), l3 = (float)log(3.0), l4 = (float)log(4.0);
  float Q[L * 2], K[L] = {0, l3, 0, l2, 0, l4, 0}, KC[L] = {l3, 0, 0, 0, l2, 0, 0};
  static const float V[L] = {0, 8, 9, 3, 6, 100, 5}, VC[L] = {8, 0, 4, 0, 2, 0, 0};
  static const float Wc[] = {1, 0};
  static float GA[L * 6], GW[L * 6], GS[L * 6];
  for (int i = 0; i < L; i++) {
    Q[i * 2] = 1, Q[i * 2 + 1] = -2;
    for (int h = 0; h < 2; h++) GW[i * 6 + h * 3 + 2] = 1, GS[i * 6 + h * 3 + 1] = 1;
  }
  static const float ga4[6] = {0.5f, 0.25f, 0.125f, 0.25f, 0.5f, 1};
  memcpy(GA + 4 * 6, ga4, sizeof ga4);
  tg t;
  tg_init(&t);
  ir_value *q = tg_heads(&t, "q", L, 2, 2, Q);
  ir_value *k = tg_heads(&t, "k", L, 1, 1, K);
  ir_value *v = tg_heads(&t, "v", L, 1, 1, V);
  ir_value *w = tg_weight(&t, "wc", 2, (int64_t[]){1, 2}, Wc);
  ir_attr ca[2] = {iattr("block", 2), iattr("stride", 2)};
  ir_value *kc = tg_op(&t, IR_NSA_COMPRESS, 2, (ir_value *[]){tg_heads(&t, "kc", L, 1, 1, KC), w},
                       2, ca, 0);
  ir_value *vc = tg_op(&t, IR_NSA_COMPRESS, 2, (ir_value *[]){tg_heads(&t, "vc", L, 1, 1, VC), w},
                       2, ca, 0);
  ir_value *ga = tg_heads(&t, "ga", L, 2, 6, GA), *gw = tg_heads(&t, "gw", L, 2, 6, GW),
           *gs = tg_heads(&t, "gs", L, 2, 6, GS);
#define NSA(gates, topk, init, local)                                                      \
  tg_op(&t, IR_NSA_ATTENTION, 6, (ir_value *[]){q, k, v, kc, vc, gates}, 7,                \
        (ir_attr[]){iattr("cmp_block", 2), iattr("cmp_stride", 2), iattr("block", 2),      \
                    iattr("topk", topk), iattr("init_blocks", init),                       \
                    iattr("local_blocks", local), iattr("window", 2)},                     \
        0)
  ir_value *a = NSA(ga, 1, 0, 0), *b = NSA(gw, 1, 0, 0), *c = NSA(gs, 4, 4, 0),
           *c2 = NSA(gs, 4, 0, 4), *d = NSA(gs, 3, 1, 1);
#undef NSA
  ir_value *win = tg_op(&t, IR_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                        (ir_attr[]){iattr("causal", 1), iattr("window", 2)}, 0);
  ir_value *full = tg_op(&t, IR_ATTENTION, 3, (ir_value *[]){q, k, v}, 2,
                         (ir_attr[]){iattr("causal", 1), iattr("window", 0)}, 0);
  ir_value *s = tg_op(&t, IR_ADD, 2, (ir_value *[]){a, d}, 0, NULL, 0);
  s = tg_op(&t, IR_ADD, 2, (ir_value *[]){s, b}, 0, NULL, 0);
  s = tg_op(&t, IR_ADD, 2, (ir_value *[]){s, c}, 0, NULL, 0);
  s = tg_op(&t, IR_ADD, 2, (ir_value *[]){s, c2}, 0, NULL, 0);
  s = tg_op(&t, IR_ADD, 2, (ir_value *[]){s, win}, 0, NULL, 0);
  s = tg_op(&t, IR_ADD, 2, (ir_value *[]){s, full}, 0, NULL, 0);
  tg_run(&t, s, L);
  EXPECT(tg_row(&t, a, 4)[0], 5.25, "nsa three branches t=4 head 0");
  EXPECT(tg_row(&t, a, 4)[1], 10.4, "nsa three branches t=4 head 1");
  EXPECT(tg_row(&t, b, 4)[0], 4, "nsa window branch t=4 head 0");
  EXPECT(tg_row(&t, b, 4)[1], 5.4, "nsa window branch t=4 head 1");
  EXPECT(tg_row(&t, c, 4)[0], 45.0 / 8, "nsa all blocks forced (init) t=4 head 0");
  EXPECT(tg_row(&t, c, 4)[1], 599.0 / 121, "nsa all blocks forced (init) t=4 head 1");
  EXPECT(tg_row(&t, d, 6)[0], 5.5, "nsa init 1 local 1 + ranked block t=6 head 0");
  EXPECT(tg_row(&t, d, 6)[1], 563.0 / 121, "nsa init 1 local 1 + ranked block t=6 head 1");
  for (int tt = 0; tt < L; tt++)
    for (int h = 0; h < 2; h++) {
      EXPECT(tg_row(&t, b, tt)[h], tg_row(&t, win, tt)[h], "nsa gate (0,0,1) = window t=%d h=%d",
             tt, h);
      EXPECT(tg_row(&t, c, tt)[h], tg_row(&t, full, tt)[h],
             "nsa gate (0,1,0), all init = causal t=%d h=%d", tt, h);
      EXPECT(tg_row(&t, c2, tt)[h], tg_row(&t, full, tt)[h],
             "nsa gate (0,1,0), all local = causal t=%d h=%d", tt, h);
    }
  EXPECT_SEGMENTS(&t, s, L, "nsa attention");
  tg_free(&t);
}

void tu_add_ops_suite(void) {
  CU_pSuite s = CU_add_suite("ops", NULL, NULL);
  CU_add_test(s, "layernorm", test_layernorm);
  CU_add_test(s, "attention in chunks, bidirectional and causal, GQA",
              test_attention_in_chunk_gqa);
  CU_add_test(s, "rope on in-chunk positions", test_rope_in_chunk);
  CU_add_test(s, "append_row, rows, row, zero_row, mean_rows", test_chunk_row_ops);
  CU_add_test(s, "landmark scores: exclude_window, offsets", test_landmark_scores);
  CU_add_test(s, "landmark scores: per = chunk", test_landmark_scores_per_chunk);
  CU_add_test(s, "landmark scores: a landmark slice per group", test_landmark_scores_grouped);
  CU_add_test(s, "bias_add: a bias per O-vector", test_bias_add);
  CU_add_test(s, "softmax with pos_decay", test_softmax_decay_ref);
  CU_add_test(s, "top-k: a tie, then a larger score", test_topk_ties_then_larger);
  CU_add_test(s, "chunk attention: weighted and joint merges", test_chunk_attention_merges);
  CU_add_test(s, "chunk attention: retrieval per KV group", test_chunk_attention_groups);
  CU_add_test(s, "block_landmark", test_block_landmark);
  CU_add_test(s, "landmark attention: grouped softmax", test_landmark_attention);
  CU_add_test(s, "moba: mean-key gate, ties, joint softmax", test_moba_attention);
  CU_add_test(s, "nsa_compress", test_nsa_compress);
  CU_add_test(s, "nsa attention: branches, gates, forced blocks", test_nsa_attention);
}
