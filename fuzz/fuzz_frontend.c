/* fuzz_frontend.c - libFuzzer target: the language front end and the passes.
 *
 * The input is the text of a model description.  It is compiled in memory
 * under the name "fuzz.hsa" through every stage hsac_compile runs (scanner,
 * parser, includes, semantic analysis, IR building, the verifier and every
 * pass), then everything the `hsac` command does with a result is done too,
 * into a sink that discards the output: diagnostics are rendered (caret
 * lines, spans over hostile bytes), and for a model that compiles the model
 * and its IR are printed, the cache footprint computed and a request
 * planned at the model's context; then it is compiled again without the
 * passes (-O0) and exported as JSON (`hsac export --json`), and the JSON
 * must parse.
 *
 * Includes are read relative to the current directory: fuzz/run.sh runs the
 * target in a scratch directory that holds a copy of examples/tiny/common/,
 * so `include "common/blocks.hsa"` works and nothing else in the tree is
 * reachable by a relative path. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "frontend/model.h"
#include "ir/export.h"
#include "ir/ir.h"
#include "passes/pipeline.h"
#include "passes/plan.h"
#include "util/diag.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sink = fopen("/dev/null", "w");
  if (!sink) abort();
  static char buf[1 << 16];
  setvbuf(sink, buf, _IOFBF, sizeof buf);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hsac_compilation c;
  hsac_init(&c);
  hsac_status st = hsac_compile(&c, "fuzz.hsa", (const char *)data, (long)size, HSAC_STAGE_IR);
  ut_diags_render(&c.diags, &c.sources, sink);
  if (st == HSAC_OK && c.model && c.graph) {
    fe_model_print(c.model, sink);
    ir_print(c.graph, sink);
    double per_token, fixed;
    hsac_cache_footprint(c.model, &per_token, &fixed);
    /* the model's own context when it has one, within what `hsac plan
     * --context` accepts (2^31 - 1) */
    int64_t n = c.model->context > 0 ? c.model->context : 4096;
    if (n > INT32_MAX) n = INT32_MAX;
    hsac_plan_opts po = {.context = n, .segment = 512, .cache_bytes = 2};
    hsac_plan_result res;
    hsac_plan(c.graph, c.model, &po, &res, sink);
  }
  hsac_free(&c);
  if (st != HSAC_OK) return 0;

  /* the export works on the graph as built */
  hsac_options o0 = {.stop = HSAC_STAGE_IR, .opt_level = 0};
  hsac_init(&c);
  if (hsac_compile_opts(&c, "fuzz.hsa", (const char *)data, (long)size, &o0) != HSAC_OK)
    abort(); /* it compiled with the passes, so it must compile without */
  char *json = ir_export_json(c.graph, c.model);
  if (json) {
    cJSON *back = cJSON_Parse(json);
    if (!back) abort(); /* the export is not valid JSON */
    cJSON_Delete(back);
    free(json);
  }
  hsac_free(&c);
  return 0;
}
