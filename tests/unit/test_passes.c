/* test_passes.c - the passes: fusion keeps the logits, demand-driven
 * prefill keeps the logits, the analyses say what the design implies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes/passes.h"
#include "passes/plan.h"
#include "runtime/hsa_runtime.h"
#include "testutil.h"

static const char *const examples[] = {"dense", "swa", "landmark_attention", "nsa",
                                       "moba", "drt_gca", "hsa_ramba", "paper_swa_hsa"};

typedef struct sink {
  float *all;
  int64_t vocab, n;
} sink;

static void keep(void *user, int64_t pos, const float *l, int64_t vocab) {
  sink *s = user;
  if (pos < s->n) memcpy(s->all + pos * vocab, l, (size_t)vocab * sizeof *l);
}

static hsart_model *load(const char *name, const char *weights, int opt_level) {
  char model[512];
  snprintf(model, sizeof model, "%s/examples/tiny/%s.hsa", HSAC_SOURCE_DIR, name);
  hsart_error e;
  hsart_model_options o = {.opt_level = opt_level};
  hsart_model *m = NULL;
  if (hsart_model_load(model, weights, &o, &m, &e) != HSART_OK) fprintf(stderr, "%s\n", e.message);
  return m;
}

static const char *make_weights(const char *name, char *path, size_t n) {
  char model[512];
  snprintf(model, sizeof model, "%s/examples/tiny/%s.hsa", HSAC_SOURCE_DIR, name);
  snprintf(path, n, "/tmp/hsac-passes-%d-%s.safetensors", (int)getpid(), name);
  hsart_error e;
  return hsart_init_weights(model, path, 11, &e) == HSART_OK ? path : NULL;
}

static bool all_logits(hsart_model *m, const int32_t *tok, int64_t n, int64_t segment, float *out) {
  sink s = {out, hsart_model_vocab(m), n};
  hsart_session_options o = {.segment = segment, .on_logits = keep, .user = &s};
  hsart_session *ss;
  hsart_error e;
  if (hsart_session_create(m, &o, &ss, &e) != HSART_OK) return false;
  hsart_status st = hsart_prefill(ss, tok, n);
  hsart_session_free(ss);
  return st == HSART_OK;
}

static double maxdiff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

static void random_tokens(int32_t *t, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = (int32_t)((seed >> 33) % 256);
  }
}

/* For every example: the fused graph (kernels, streaming retrieve) gives
 * the logits of the IR as built, op by op, at every position. */
static void test_fused_matches_unfused(void) {
  enum { N = 120 };
  int32_t tok[N];
  random_tokens(tok, N, 5);
  for (size_t k = 0; k < sizeof examples / sizeof examples[0]; k++) {
    char w[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(make_weights(examples[k], w, sizeof w));
    hsart_model *fused = load(examples[k], w, 1), *plain = load(examples[k], w, 0);
    unlink(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fused);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    int64_t V = hsart_model_vocab(fused);
    float *a = malloc((size_t)(N * V) * sizeof *a), *b = malloc((size_t)(N * V) * sizeof *b);
    CU_ASSERT(all_logits(fused, tok, N, 40, a));
    CU_ASSERT(all_logits(plain, tok, N, 40, b));
    double d = maxdiff(a, b, N * V);
    if (d > 1e-5) fprintf(stderr, "\n%s: fused vs unfused %g\n", examples[k], d);
    CU_ASSERT(d <= 1e-5);
    free(a);
    free(b);
    hsart_model_free(fused);
    hsart_model_free(plain);
  }
}

/* Demand-driven prefill of a 16K-token prompt on the paper's design gives
 * the same last logits as computing every position, and decoding on from
 * either gives the same logits too (the caches it left are complete). */
static void test_demand_prefill_16k(void) {
  enum { N = 16384, MORE = 8 };
  int32_t *tok = malloc((N + MORE) * sizeof *tok);
  random_tokens(tok, N + MORE, 9);
  char w[256];
  CU_ASSERT_PTR_NOT_NULL_FATAL(make_weights("paper_swa_hsa", w, sizeof w));
  hsart_model *m = load("paper_swa_hsa", w, 1);
  unlink(w);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  int64_t V = hsart_model_vocab(m);
  hsart_session *lean, *full;
  hsart_error e;
  hsart_session_options lo = {.segment = 1024};
  hsart_session_options fo = {.segment = 1024, .all_positions = 1};
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &lo, &lean, &e), HSART_OK);
  CU_ASSERT_EQUAL_FATAL(hsart_session_create(m, &fo, &full, &e), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(lean, tok, N), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(full, tok, N), HSART_OK);
  double d = maxdiff(hsart_logits(lean), hsart_logits(full), V);
  if (d > 1e-5) fprintf(stderr, "\ndemand vs full prefill at 16K: %g\n", d);
  CU_ASSERT(d <= 1e-5);
  for (int i = 0; i < MORE; i++) {
    CU_ASSERT_EQUAL(hsart_decode(lean, tok[N + i]), HSART_OK);
    CU_ASSERT_EQUAL(hsart_decode(full, tok[N + i]), HSART_OK);
    d = maxdiff(hsart_logits(lean), hsart_logits(full), V);
    CU_ASSERT(d <= 1e-5);
  }
  /* a second prefill continues from the first */
  CU_ASSERT_EQUAL(hsart_prefill(lean, tok, 700), HSART_OK);
  CU_ASSERT_EQUAL(hsart_prefill(full, tok, 700), HSART_OK);
  CU_ASSERT(maxdiff(hsart_logits(lean), hsart_logits(full), V) <= 1e-5);
  hsart_session_free(lean);
  hsart_session_free(full);
  hsart_model_free(m);
  free(tok);
}

static hsac_compilation *compile_example(const char *path) {
  static hsac_compilation c;
  hsac_init(&c);
  CU_ASSERT_EQUAL(hsac_compile(&c, path, NULL, 0, HSAC_STAGE_IR), HSAC_OK);
  return &c;
}

/* The demand rule is derived, not special-cased: the paper's upper stack
 * needs (upper SWA layers) x (W - 1) + 1 rows; a dense model needs all. */
static void test_demand_analysis(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", HSAC_SOURCE_DIR);
  hsac_compilation *c = compile_example(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c->graph);
  CU_ASSERT(c->graph->demand_done);
  char *text;
  size_t n;
  FILE *f = open_memstream(&text, &n);
  hsac_demand_report(c->graph, c->model, f);
  fclose(f);
  CU_ASSERT(tu_contains(text, "stack 'lower': every position (memory 'mem' is built from it)"));
  CU_ASSERT(tu_contains(text, "stack 'upper': only the last 1534 positions")); /* 3*511+1 */
  free(text);
  /* the last kernel's output needs one row; the memory's K needs all */
  CU_ASSERT_EQUAL(c->graph->output->demand, 1);
  for (ir_op *op = c->graph->first; op; op = op->next)
    if (op->code == IR_CHUNK_ATTENTION) CU_ASSERT_EQUAL(op->in[1]->demand, IR_ALL_ROWS);
  hsac_free(c);

  snprintf(path, sizeof path, "%s/examples/dense.hsa", HSAC_SOURCE_DIR);
  c = compile_example(path);
  f = open_memstream(&text, &n);
  hsac_demand_report(c->graph, c->model, f);
  fclose(f);
  CU_ASSERT(tu_contains(text, "demand-driven prefill does not apply"));
  free(text);
  hsac_free(c);
}

/* Work grows linearly with the context: 32x the tokens, 32x the FLOPs. */
static void test_plan_linear(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", HSAC_SOURCE_DIR);
  hsac_compilation *c = compile_example(path);
  hsac_plan_result a, b;
  hsac_plan_opts o = {.context = 1 << 20, .segment = 512, .cache_bytes = 4};
  CU_ASSERT(hsac_plan(c->graph, c->model, &o, &a, NULL));
  o.context = 32 << 20;
  CU_ASSERT(hsac_plan(c->graph, c->model, &o, &b, NULL));
  double r = b.flops / a.flops;
  CU_ASSERT(r > 31.5 && r < 32.5);
  /* without demand analysis the upper stack's retrieval is quadratic */
  CU_ASSERT(b.flops_all_rows / a.flops_all_rows > 33);
  /* the cache is linear too: 260 bytes per token for the bf16 memory */
  CU_ASSERT(b.cache_bytes / a.cache_bytes > 31 && b.cache_bytes / a.cache_bytes < 32.5);
  /* buffer reuse makes the activation arena smaller than the sum */
  CU_ASSERT(a.activation_bytes > 0);
  hsac_free(c);
}

/* Fusion forms the kernels the paper's design calls for. */
static void test_fusion_kernels(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", HSAC_SOURCE_DIR);
  hsac_compilation *c = compile_example(path);
  int kinds[IR_K_COUNT] = {0};
  for (ir_kernel *k = c->graph->kernels; k; k = k->next) kinds[k->kind]++;
  CU_ASSERT_EQUAL(kinds[IR_K_CHUNK_ENCODE], 1);
  CU_ASSERT_EQUAL(kinds[IR_K_RETRIEVE], 3);
  CU_ASSERT_EQUAL(kinds[IR_K_SPARSE_ATTENTION], 3);
  CU_ASSERT_EQUAL(kinds[IR_K_ATTN_BLOCK], 6 + 3);
  CU_ASSERT_EQUAL(kinds[IR_K_MLP_BLOCK], 6 + 3 + 3);
  CU_ASSERT_EQUAL(kinds[IR_K_EMBED], 1);
  CU_ASSERT_EQUAL(kinds[IR_K_LM_HEAD], 1);
  hsac_free(c);
}

/* CSE shares identical ops; DCE removes what nothing uses. */
static void test_cse_dce(void) {
  hsac_compilation c;
  char *d = NULL;
  /* two identical retrievals on the same input: one survives CSE */
  CU_ASSERT_EQUAL_FATAL(tu_compile(&c,
                                   "model t { vocab = 32, width = 16, heads = 2\n"
                                   " stack s { swa(window = 8) }\n"
                                   " memory m from s { chunk = 8 }\n"
                                   " stack u {\n"
                                   "  a = retrieve(m, topk = 2)\n"
                                   "  b = retrieve(m, topk = 2)\n"
                                   "  hsa(a)\n }\n}\n",
                                   HSAC_STAGE_IR, &d),
                        HSAC_OK);
  int topks = 0;
  for (ir_op *op = c.graph->first; op; op = op->next) topks += op->code == IR_TOPK;
  /* b's projection uses its own weights, so it is not a duplicate, but it
   * is unused: DCE removes it (its weights stay, for the weights file) */
  CU_ASSERT_EQUAL(topks, 1);
  CU_ASSERT(tu_contains(d, "warning: retrieval 'b' is never used"));
  free(d);
  hsac_free(&c);
}

void tu_add_passes_suite(void) {
  CU_pSuite s = CU_add_suite("passes", NULL, NULL);
  CU_add_test(s, "fused kernels give the unfused logits (every example)", test_fused_matches_unfused);
  CU_add_test(s, "demand-driven prefill at 16K keeps the logits", test_demand_prefill_16k);
  CU_add_test(s, "demand analysis derives the suffix rule", test_demand_analysis);
  CU_add_test(s, "planned work grows linearly", test_plan_linear);
  CU_add_test(s, "fusion forms the expected kernels", test_fusion_kernels);
  CU_add_test(s, "cse and dce", test_cse_dce);
}
