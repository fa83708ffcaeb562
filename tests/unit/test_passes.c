/* test_passes.c - the passes: fusion keeps the logits, demand-driven
 * prefill keeps the logits, the analyses say what the design implies. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes/passes.h"
#include "passes/pipeline.h"
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
  snprintf(model, sizeof model, "%s/examples/tiny/%s.hsa", tu_src(), name);
  hsart_error e;
  hsart_model_options o = {.opt_level = opt_level};
  hsart_model *m = NULL;
  if (hsart_model_load(model, weights, &o, &m, &e) != HSART_OK) fprintf(stderr, "%s\n", e.message);
  return m;
}

static const char *make_weights(const char *name, char *path, size_t n) {
  char model[512];
  snprintf(model, sizeof model, "%s/examples/tiny/%s.hsa", tu_src(), name);
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
    m = tu_worse(m, tu_absdiff(a[i], b[i]));
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
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", tu_src());
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

  snprintf(path, sizeof path, "%s/examples/dense.hsa", tu_src());
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
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", tu_src());
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

/* The plan of an example at a context, text or JSON (caller frees). */
static char *plan_out(const char *example, int64_t context, bool json, hsac_plan_result *res) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/%s.hsa", tu_src(), example);
  hsac_compilation *c = compile_example(path);
  char *text = NULL;
  size_t n;
  FILE *f = open_memstream(&text, &n);
  hsac_plan_opts o = {.context = context, .segment = 512, .cache_bytes = 4, .json = json};
  CU_ASSERT(hsac_plan(c->graph, c->model, &o, res, f));
  fclose(f);
  hsac_free(c);
  return text;
}

static char *plan_text(const char *example, int64_t context, hsac_plan_result *res) {
  return plan_out(example, context, false, res);
}

/* Caches are named by what they hold, in one unit per table. */
static void test_plan_names(void) {
  hsac_plan_result r;
  char *t = plan_text("paper_swa_hsa", 65536, &r);
  CU_ASSERT(!strncmp(t, "plan for model paper_swa_hsa at a context of 65536 tokens", 57));
  CU_ASSERT(tu_contains(t, "lower.0.attn_block         window keys (K)                last 511"));
  CU_ASSERT(tu_contains(t, "upper.8.attn_block         window values (V)              last 511"));
  CU_ASSERT(tu_contains(t, "lower.5.mlp_block          incomplete chunk of 'mem'      last 63 "));
  CU_ASSERT(tu_contains(t, "  per chunk of 64 tokens "));
  CU_ASSERT(tu_contains(t, "mem.chunk_encode           landmarks                      all"));
  CU_ASSERT(tu_contains(t, "mem.chunk_encode           keys (K), bf16                 all"));
  CU_ASSERT(tu_contains(t, "mem.chunk_encode           values (V), bf16               all"));
  CU_ASSERT(!tu_contains(t, "split_heads") && !tu_contains(t, "quantize"));
  /* 9 SWA layers x K and V x 511 rows x 256 B, and 63 rows of 4096 B */
  CU_ASSERT_EQUAL(r.cache_fixed, 9.0 * 2 * 511 * 256 + 63.0 * 4096);
  CU_ASSERT_EQUAL(r.cache_per_token, 260.0);
  CU_ASSERT_EQUAL(r.cache_bytes, r.cache_fixed + 260.0 * 65536); /* rings stay full size */
  free(t);
  /* the other row kinds: blocks of a block-sparse layer, NSA's strides */
  t = plan_text("tiny/landmark_attention", 1000, &r);
  CU_ASSERT(tu_contains(t, "incomplete block (its input)"));
  CU_ASSERT(tu_contains(t, "  per block of 64 tokens "));
  CU_ASSERT(tu_contains(t, "landmark keys"));
  free(t);
  t = plan_text("tiny/nsa", 1000, &r);
  CU_ASSERT(tu_contains(t, "  per block (one every 8 tokens) "));
  CU_ASSERT(tu_contains(t, "compressed keys") && tu_contains(t, "compressed values"));
  free(t);
}

static double jget(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  CU_ASSERT_FATAL(cJSON_IsNumber(v));
  return v->valuedouble;
}

/* The JSON form parses and says what hsac_plan_result says, exactly. */
static void test_plan_json(void) {
  hsac_plan_result r;
  char *text = plan_out("paper_swa_hsa", 65536, true, &r);
  cJSON *j = cJSON_Parse(text);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "model")->valuestring, "paper_swa_hsa");
  CU_ASSERT_EQUAL(jget(j, "context"), 65536);
  const cJSON *tot = cJSON_GetObjectItem(j, "totals");
  CU_ASSERT_EQUAL(jget(tot, "per_token_bytes"), r.cache_per_token);
  CU_ASSERT_EQUAL(jget(tot, "fixed_bytes"), r.cache_fixed);
  CU_ASSERT_EQUAL(jget(tot, "total_bytes"), r.cache_bytes);
  CU_ASSERT_EQUAL(jget(cJSON_GetObjectItem(j, "activations"), "bytes"), r.activation_bytes);
  CU_ASSERT_EQUAL(jget(j, "weight_bytes"), r.weight_bytes);
  CU_ASSERT_EQUAL(jget(j, "peak_bytes"), r.peak_bytes);
  const cJSON *work = cJSON_GetObjectItem(j, "work");
  CU_ASSERT_EQUAL(jget(work, "flops"), r.flops);
  CU_ASSERT_EQUAL(jget(work, "flops_all_rows"), r.flops_all_rows);
  /* the caches add up to the total; the memory's are per chunk of 64 */
  double sum = 0;
  int chunked = 0, n_caches = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "caches")) {
    n_caches++;
    CU_ASSERT_EQUAL(jget(e, "bytes"), jget(e, "rows") * jget(e, "bytes_per_row"));
    sum += jget(e, "bytes");
    if (!strcmp(cJSON_GetObjectItem(e, "indexed_by")->valuestring, "chunk")) {
      chunked++;
      CU_ASSERT_EQUAL(jget(e, "chunk"), 64);
      CU_ASSERT_EQUAL(jget(e, "rows"), 1024);
    }
  }
  CU_ASSERT_EQUAL(n_caches, 9 * 2 + 1 + 3);
  CU_ASSERT_EQUAL(chunked, 3);
  CU_ASSERT_EQUAL(sum, r.cache_bytes);
  /* integers are written as integers */
  CU_ASSERT(tu_contains(text, "\"bytes\":\t8388608,"));
  CU_ASSERT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "demand")) == 2);
  cJSON_Delete(j);
  free(text);
}

/* `hsac check` (from the model description) and `hsac plan` (from the IR)
 * count the same caches, for every example.  The fixed bytes are sums of
 * integers below 2^53, exact in a double: equal.  The bytes per token sum
 * quotients (bytes per row / tokens per row) in another order: each sum
 * of at most a few hundred terms is within 1e-13 of the exact value, so a
 * relative 1e-12 allows only rounding, where a missing landmark (4 bytes
 * per 64-token chunk against 260 per token) is 2.4e-4. */
static void test_check_plan_agree(void) {
  glob_t gl;
  char pat[512];
  int found = 0;
  snprintf(pat, sizeof pat, "%s/examples/*.hsa", tu_src());
  CU_ASSERT_EQUAL_FATAL(glob(pat, 0, NULL, &gl), 0);
  snprintf(pat, sizeof pat, "%s/examples/tiny/*.hsa", tu_src());
  CU_ASSERT_EQUAL_FATAL(glob(pat, GLOB_APPEND, NULL, &gl), 0);
  for (size_t i = 0; i < gl.gl_pathc; i++) {
    hsac_compilation *c = compile_example(gl.gl_pathv[i]);
    if (!c->graph) {
      hsac_free(c);
      continue;
    }
    double pt, fx;
    hsac_cache_footprint(c->model, &pt, &fx);
    hsac_plan_opts o = {.context = 4096, .segment = 512, .cache_bytes = 4};
    hsac_plan_result r;
    CU_ASSERT(hsac_plan(c->graph, c->model, &o, &r, NULL));
    bool same = fx == r.cache_fixed && fabs(pt - r.cache_per_token) <= 1e-12 * pt;
    if (!same)
      fprintf(stderr, "\n%s: check %.17g per token + %.17g fixed, plan %.17g + %.17g\n",
              gl.gl_pathv[i], pt, fx, r.cache_per_token, r.cache_fixed);
    CU_ASSERT(same);
    found++;
    hsac_free(c);
  }
  CU_ASSERT(found >= 20);
  globfree(&gl);
  /* and where the examples do not go: two memories on one stack (one ring
   * of its output serves both), an unused retrieval (DCE removes it), every
   * block-sparse kind in one stack */
  hsac_compilation c;
  char *d = NULL;
  CU_ASSERT_EQUAL_FATAL(tu_compile(&c,
                                   "model t { vocab = 32, width = 16, heads = 2\n"
                                   " stack s { swa(window = 32) }\n"
                                   " memory m from s { chunk = 8 }\n"
                                   " memory m2 from s { chunk = 16, store = bf16 }\n"
                                   " stack u {\n"
                                   "  a = retrieve(m, topk = 2, per = chunk)\n"
                                   "  b = retrieve(m2, topk = 2)\n"
                                   "  c = retrieve(m, topk = 2)\n"
                                   "  hsa(a)\n  hsa(b)\n"
                                   "  landmark_attn(block = 8)\n  nsa\n  moba\n }\n}\n",
                                   HSAC_STAGE_IR, &d),
                        HSAC_OK);
  double pt, fx;
  hsac_cache_footprint(c.model, &pt, &fx);
  hsac_plan_opts o = {.context = 100, .segment = 512, .cache_bytes = 4};
  hsac_plan_result r;
  CU_ASSERT(hsac_plan(c.graph, c.model, &o, &r, NULL));
  CU_ASSERT_EQUAL(fx, r.cache_fixed);
  CU_ASSERT(fabs(pt - r.cache_per_token) <= 1e-12 * pt);
  free(d);
  hsac_free(&c);
}

/* A context shorter than a ring or a chunk says so and counts what is held. */
static void test_plan_short_context(void) {
  hsac_plan_result r;
  char *t = plan_text("tiny/swa", 20, &r);
  CU_ASSERT(tu_contains(t, "note: context 20 < window 32: the window rings hold every "
                           "position so far (20 of 31 rows)"));
  CU_ASSERT(tu_contains(t, "window keys (K)                last 31         20       128"));
  CU_ASSERT_EQUAL(r.cache_bytes, 4 * 2 * 20 * 128.0); /* 4 layers, K and V, 20 rows */
  CU_ASSERT_EQUAL(r.cache_fixed, 4 * 2 * 31 * 128.0);
  free(t);
  t = plan_text("tiny/swa", 31, &r);
  CU_ASSERT(!tu_contains(t, "note:"));
  free(t);
  t = plan_text("tiny/paper_swa_hsa", 10, &r);
  CU_ASSERT(tu_contains(t, "note: context 10 < chunk 16: no chunk is complete, the chunk "
                           "memory 'mem' is empty"));
  CU_ASSERT(tu_contains(t, "note: context 10 < chunk 16: the incomplete chunk holds every "
                           "position so far (10 of 15 rows)"));
  free(t);
  t = plan_text("tiny/paper_swa_hsa", 16, &r);
  CU_ASSERT(!tu_contains(t, "chunk memory 'mem' is empty"));
  free(t);
}

/* Fusion forms the kernels the paper's design calls for. */
static void test_fusion_kernels(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/paper_swa_hsa.hsa", tu_src());
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
  CU_add_test(s, "plan names caches by what they hold", test_plan_names);
  CU_add_test(s, "plan as JSON equals the plan's result", test_plan_json);
  CU_add_test(s, "check and plan count the same caches (every example)", test_check_plan_agree);
  CU_add_test(s, "plan at a context shorter than a window or a chunk", test_plan_short_context);
  CU_add_test(s, "fusion forms the expected kernels", test_fusion_kernels);
  CU_add_test(s, "cse and dce", test_cse_dce);
}
