/* pipeline.c - the compiler, start to end, in one function.
 *
 * Read this first: hsac_compile lists every stage in the order it runs.
 * Each stage reports through c->diags and the pipeline stops at the first
 * stage that found errors. */
#include "passes/pipeline.h"

#include <setjmp.h>
#include <string.h>

#include "frontend/frontend.h"
#include "frontend/sema.h"
#include "ir/build.h"

void hsac_init(hsac_compilation *c) {
  memset(c, 0, sizeof *c);
  ut_arena_init(&c->arena);
  ut_sources_init(&c->sources, &c->arena);
  ut_diags_init(&c->diags, &c->arena);
}

void hsac_free(hsac_compilation *c) { ut_arena_free(&c->arena); }

hsac_status hsac_compile(hsac_compilation *c, const char *path, const char *text,
                         long len, hsac_stage stop) {
  jmp_buf oom;
  c->arena.oom = &oom;
  if (setjmp(oom)) {
    c->arena.oom = NULL;
    return HSAC_ENOMEM;
  }
  hsac_status st = HSAC_OK;

  /* 1. scan, parse and splice includes */
  c->ast = text ? fe_load_text(&c->arena, &c->sources, &c->diags, path, text, len)
                : fe_load(&c->arena, &c->sources, &c->diags, path);
  if (c->diags.nerrors) {
    st = HSAC_EINPUT;
    goto done;
  }
  if (stop == HSAC_STAGE_PARSE) goto done;

  /* 2. semantic analysis: names, types, ranges, defaults, structure */
  c->model = fe_sema(&c->arena, &c->diags, (fe_stmt *)c->ast);
  if (!c->model) {
    st = HSAC_EINPUT;
    goto done;
  }
  if (stop == HSAC_STAGE_SEMA) goto done;

  /* 3. lowering to the IR, then the verifier */
  c->graph = ir_build(&c->arena, &c->diags, c->model);
  if (!c->graph || !ir_verify(c->graph, &c->diags)) {
    st = HSAC_EINTERNAL;
    goto done;
  }

  /* 4. passes: none transform the graph yet; fusion, demand analysis and
   *    memory planning will be listed here in order, each followed by
   *    ir_verify. */

done:
  c->arena.oom = NULL;
  return st;
}
