/* test_frontend.c - scanner, parser, semantic analysis and diagnostics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/params.h"
#include "testutil.h"

/* A small valid model that the tests vary. */
#define TINY_HEAD                                  \
  "model t {\n"                                    \
  "  vocab = 260, width = 64, heads = 4, kv_heads = 2\n"

static const char tiny_hsa[] =
    "const W = 32\n"
    "model t {\n"
    "  vocab = 260\n"
    "  width = 64; heads = 4, kv_heads = 2\n"
    "  stack lower { repeat 2 { swa(window = W) } }\n"
    "  memory mem from lower {\n"
    "    chunk = 16\n"
    "    encoder = transformer(layers = 1)\n"
    "    landmark = cls\n"
    "  }\n"
    "  stack upper {\n"
    "    repeat 2 {\n"
    "      r = retrieve(mem, topk = 2)\n"
    "      hsa(r, residual = bypass)\n"
    "      swa(window = W)\n"
    "    }\n"
    "  }\n"
    "}\n";

static void test_valid_model_resolves(void) {
  hsac_compilation c;
  char *d = NULL;
  CU_ASSERT_EQUAL(tu_compile(&c, tiny_hsa, HSAC_STAGE_SEMA, &d), HSAC_OK);
  CU_ASSERT_STRING_EQUAL(d, "");
  fe_model *m = c.model;
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_EQUAL(m->width, 64);
  CU_ASSERT_EQUAL(m->head_dim, 16);      /* default: width / heads */
  CU_ASSERT_EQUAL(m->mlp_hidden, 256);   /* default: 4 * width */
  CU_ASSERT_EQUAL(m->nstacks, 2);
  CU_ASSERT_EQUAL(m->nlayers, 2 + 6);
  CU_ASSERT_EQUAL(m->nmemories, 1);
  CU_ASSERT_EQUAL(m->memories[0].enc_layers, 1);
  CU_ASSERT_EQUAL(m->memories[0].landmark, FE_LMK_CLS);
  CU_ASSERT_EQUAL(m->memories[0].landmark_dim, 16); /* default: head_dim */
  /* upper: retrieve, hsa, swa, retrieve, hsa, swa; each hsa uses the
   * retrieval of its own repetition (bindings are scoped per iteration). */
  const fe_layer *l = &m->layers[m->stacks[1].first_layer];
  CU_ASSERT_EQUAL(l[0].kind, FE_L_RETRIEVE);
  CU_ASSERT_EQUAL(l[1].kind, FE_L_HSA);
  CU_ASSERT_EQUAL(l[4].kind, FE_L_HSA);
  CU_ASSERT_EQUAL(l[1].retrieval, m->stacks[1].first_layer + 0);
  CU_ASSERT_EQUAL(l[4].retrieval, m->stacks[1].first_layer + 3);
  CU_ASSERT_EQUAL(l[1].residual, FE_RES_BYPASS);
  CU_ASSERT_EQUAL(l[0].weights, FE_W_STICKBREAK);
  CU_ASSERT_EQUAL(l[0].topk, 2);
  CU_ASSERT_EQUAL(l[2].index, 2);
  free(d);
  hsac_free(&c);
}

/* Arithmetic: precedence, floor division, exact division, floats. */
static void test_constant_arithmetic(void) {
  hsac_compilation c;
  CU_ASSERT_EQUAL(tu_compile(&c,
                             "const A = 2 + 3 * 4\n"       /* 14 */
                             "const B = (A - 2) // 5\n"    /* 2 */
                             "const C = -7 // 2\n"         /* -4: rounds down */
                             "model t { vocab = A * 10 + B, width = 64 / B * 2\n"
                             "  heads = 8 % 5 + 1, kv_heads = -C - 2\n"
                             "  norm = rmsnorm(eps = 1e-3 / 2)\n"
                             "  stack s { attn } }\n",
                             HSAC_STAGE_SEMA, NULL),
                  HSAC_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c.model);
  CU_ASSERT_EQUAL(c.model->vocab, 142);
  CU_ASSERT_EQUAL(c.model->width, 64);
  CU_ASSERT_EQUAL(c.model->heads, 4);
  CU_ASSERT_EQUAL(c.model->kv_heads, 2);
  CU_ASSERT_DOUBLE_EQUAL(c.model->norm_eps, 5e-4, 1e-12);
  hsac_free(&c);
}

static void expect_error(const char *text, const char *needle) {
  hsac_compilation c;
  char *d = NULL;
  hsac_status st = tu_compile(&c, text, HSAC_STAGE_IR, &d);
  CU_ASSERT_EQUAL(st, HSAC_EINPUT);
  if (!tu_contains(d, needle)) {
    fprintf(stderr, "\nexpected \"%s\" in:\n%s\n", needle, d ? d : "(null)");
    CU_FAIL("diagnostic not found");
  }
  free(d);
  hsac_free(&c);
}

static void test_diagnostic_format(void) {
  /* file:line:col: error: message, then the line, then a caret under the
   * column and tildes under the rest of the span. */
  hsac_compilation c;
  char *d = NULL;
  tu_compile(&c, TINY_HEAD "  widht = 3\n  stack s { attn }\n}\n", HSAC_STAGE_IR, &d);
  CU_ASSERT_STRING_EQUAL(d,
                         "t.hsa:3:3: error: unknown parameter 'widht' for model; did you "
                         "mean 'width'?\n"
                         "  widht = 3\n"
                         "  ^~~~~\n");
  free(d);
  hsac_free(&c);
}

static void test_tabs_keep_caret_aligned(void) {
  hsac_compilation c;
  char *d = NULL;
  tu_compile(&c, "model t {\n\tvocab = 260, width = 64, heads = 4\n\tstack s { atn }\n}\n",
             HSAC_STAGE_IR, &d);
  CU_ASSERT(tu_contains(d, "t.hsa:3:12: error: unknown layer 'atn'; did you mean 'attn'?"));
  CU_ASSERT(tu_contains(d, "\tstack s { atn }\n\t          ^~~\n"));
  free(d);
  hsac_free(&c);
}

static void test_error_recovery_reports_several(void) {
  hsac_compilation c;
  char *d = NULL;
  tu_compile(&c,
             "model t {\n"
             "  vocab = = 3\n"
             "  width = 64\n"
             "  heads = ) 4\n"
             "  stack s { attn }\n"
             "}\n",
             HSAC_STAGE_IR, &d);
  CU_ASSERT_EQUAL(c.diags.nerrors, 2);
  CU_ASSERT(tu_contains(d, "t.hsa:2:11: error: syntax error: unexpected '='"));
  CU_ASSERT(tu_contains(d, "t.hsa:4:11: error: syntax error: unexpected ')'"));
  free(d);
  hsac_free(&c);
}

static void test_semantic_errors(void) {
  expect_error(TINY_HEAD "  stack s { swa(window = 0) }\n}\n",
               "'window' is 0, out of range [1, ");
  expect_error("model t { vocab = 260, width = 60, heads = 8\n stack s { attn } }\n",
               "heads (8) must divide width (60)");
  expect_error("model t { vocab = 260, width = 64, heads = 4, kv_heads = 3\n"
               " stack s { attn } }\n",
               "kv_heads (3) must divide heads (4)");
  expect_error(TINY_HEAD "  stack s { swa(window = 32) }\n"
                         "  memory m from s { chunk = 12 }\n"
                         "  stack u { r = retrieve(m)\n hsa(r) }\n}\n",
               "chunk size 12 is not a multiple of 8");
  expect_error(TINY_HEAD "  stack s { swa(window = 8) }\n"
                         "  memory m from s { chunk = 16 }\n"
                         "  stack u { r = retrieve(m)\n hsa(r) }\n}\n",
               "window 8 is smaller than the chunk size 16");
  expect_error(TINY_HEAD "  context = 256\n  stack s { swa(window = 32) }\n"
                         "  memory m from s { chunk = 16 }\n"
                         "  stack u { r = retrieve(m, topk = 16)\n hsa(r) }\n}\n",
               "topk = 16 is not sparse");
  expect_error(TINY_HEAD "  stack u { r = retrieve(m)\n hsa(r) }\n}\n",
               "the model defines no chunk memory");
  expect_error(TINY_HEAD "  stack s { attn }\n  stack s { attn }\n}\n",
               "duplicate definition of 's'");
  expect_error("const A = 1\nconst A = 2\n" TINY_HEAD "  stack s { attn }\n}\n",
               "duplicate definition of constant 'A'");
  expect_error(TINY_HEAD "  stack s { swa(window = 32, window = 64) }\n}\n",
               "duplicate parameter 'window'");
  expect_error(TINY_HEAD "  stack s { swa(window = big) }\n}\n",
               "'window' expects an integer; 'big' is not a known constant");
  expect_error(TINY_HEAD "  norm = rmsnrom\n  stack s { attn }\n}\n",
               "unknown norm 'rmsnrom'; did you mean 'rmsnorm'?");
  expect_error(TINY_HEAD "  stack s { attn }\n  memory m from s { chunk = 16\n"
                         "  landmark = cls }\n  stack u { r = retrieve(m)\n hsa(r) }\n}\n",
               "landmark = cls needs an encoder");
  expect_error("const X = 9223372036854775807 + 1\n" TINY_HEAD "  stack s { attn }\n}\n",
               "integer overflow");
  expect_error("const X = 64 / 0\n" TINY_HEAD "  stack s { attn }\n}\n",
               "division by zero");
  expect_error(TINY_HEAD "  stack s { attn(residual = bypass, mlp = false) }\n}\n",
               "residual = bypass needs the MLP block");
  expect_error("", "no model is defined");
}

static void test_warnings_do_not_fail(void) {
  hsac_compilation c;
  char *d = NULL;
  CU_ASSERT_EQUAL(tu_compile(&c,
                             TINY_HEAD "  stack s { swa(window = 32) }\n"
                                       "  memory m from s { chunk = 16 }\n"
                                       "  stack u { r = retrieve(m)\n attn }\n}\n",
                             HSAC_STAGE_IR, &d),
                  HSAC_OK);
  CU_ASSERT(tu_contains(d, "warning: retrieval 'r' is never used by an hsa layer"));
  free(d);
  hsac_free(&c);
}

/* Includes: relative to the including file; cycles and depth are errors. */
static void test_includes(void) {
  char dir[] = "/tmp/hsac-test-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char path[256], sub[256];
  snprintf(sub, sizeof sub, "%s/lib", dir);
  CU_ASSERT_EQUAL(mkdir(sub, 0700), 0);
  struct {
    const char *name, *text;
  } files[] = {
      {"lib/blocks.hsa", "include \"consts.hsa\"\nblock pair { swa(window = W)\n attn }\n"},
      {"lib/consts.hsa", "const W = 48\n"},
      {"main.hsa", "include \"lib/blocks.hsa\"\nmodel t { vocab = 260, width = 64, "
                   "heads = 4\n stack s { repeat 2 { pair } } }\n"},
      {"a.hsa", "include \"b.hsa\"\n"},
      {"b.hsa", "include \"a.hsa\"\n"},
      {"cycle.hsa", "include \"a.hsa\"\nmodel t { vocab = 2, width = 8, heads = 1\n"
                    " stack s { attn } }\n"},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(files[i].text, f);
    fclose(f);
  }
  hsac_compilation c;
  hsac_init(&c);
  snprintf(path, sizeof path, "%s/main.hsa", dir);
  CU_ASSERT_EQUAL(hsac_compile(&c, path, NULL, 0, HSAC_STAGE_SEMA), HSAC_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c.model);
  CU_ASSERT_EQUAL(c.model->nlayers, 4);
  CU_ASSERT_EQUAL(c.model->layers[2].window, 48);
  CU_ASSERT_EQUAL(c.sources.nfiles, 3);
  hsac_free(&c);

  hsac_init(&c);
  snprintf(path, sizeof path, "%s/cycle.hsa", dir);
  CU_ASSERT_EQUAL(hsac_compile(&c, path, NULL, 0, HSAC_STAGE_SEMA), HSAC_EINPUT);
  CU_ASSERT_EQUAL(c.diags.nerrors, 1);
  CU_ASSERT(tu_contains(c.diags.items[0].msg, "include cycle"));
  hsac_free(&c);

  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
    unlink(path);
  }
  rmdir(sub);
  rmdir(dir);
}

/* The resolved model printed by `check -v` is itself valid input and
 * resolves to the same IR. */
static void test_resolved_print_round_trips(void) {
  hsac_compilation a, b;
  CU_ASSERT_EQUAL_FATAL(tu_compile(&a, tiny_hsa, HSAC_STAGE_IR, NULL), HSAC_OK);
  char *text;
  size_t n;
  FILE *f = open_memstream(&text, &n);
  fe_model_print(a.model, f);
  fclose(f);
  char *d = NULL;
  CU_ASSERT_EQUAL(tu_compile(&b, text, HSAC_STAGE_IR, &d), HSAC_OK);
  if (b.graph) {
    char *ia = tu_print_ir(a.graph), *ib = tu_print_ir(b.graph);
    CU_ASSERT_STRING_EQUAL(ia, ib);
    free(ia);
    free(ib);
  } else {
    fprintf(stderr, "%s\n%s\n", text, d);
  }
  free(d);
  free(text);
  hsac_free(&a);
  hsac_free(&b);
}

static void test_param_tables(void) {
  /* Every row has a meaning; names are unique within a table. */
  const fe_param_table *tables[2 + FE_L_COUNT];
  tables[0] = &fe_model_params;
  tables[1] = &fe_memory_params;
  for (int k = 0; k < FE_L_COUNT; k++) tables[2 + k] = &fe_layer_params[k];
  for (int t = 0; t < 2 + FE_L_COUNT; t++) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(tables[t]->what);
    for (const fe_param *p = tables[t]->params; p->name; p++) {
      CU_ASSERT(p->doc && p->doc[0]);
      CU_ASSERT_PTR_EQUAL(fe_param_find(tables[t]->params, p->name), p);
    }
  }
  CU_ASSERT_STRING_EQUAL(fe_param_suggest(fe_model_params.params, "kvheads"), "kv_heads");
  CU_ASSERT_PTR_NULL(fe_param_suggest(fe_model_params.params, "zzzzzzzz"));
}

static void test_edit_distance(void) {
  CU_ASSERT_EQUAL(ut_edit_distance("", ""), 0);
  CU_ASSERT_EQUAL(ut_edit_distance("swa", "sw"), 1);
  CU_ASSERT_EQUAL(ut_edit_distance("kitten", "sitting"), 3);
}

void tu_add_frontend_suite(void) {
  CU_pSuite s = CU_add_suite("frontend", NULL, NULL);
  CU_add_test(s, "valid model resolves with defaults", test_valid_model_resolves);
  CU_add_test(s, "constant arithmetic", test_constant_arithmetic);
  CU_add_test(s, "diagnostic format with caret", test_diagnostic_format);
  CU_add_test(s, "tabs keep the caret aligned", test_tabs_keep_caret_aligned);
  CU_add_test(s, "error recovery reports several errors", test_error_recovery_reports_several);
  CU_add_test(s, "semantic errors", test_semantic_errors);
  CU_add_test(s, "warnings do not fail", test_warnings_do_not_fail);
  CU_add_test(s, "includes, relative paths and cycles", test_includes);
  CU_add_test(s, "resolved print round-trips", test_resolved_print_round_trips);
  CU_add_test(s, "parameter tables", test_param_tables);
  CU_add_test(s, "edit distance", test_edit_distance);
}
