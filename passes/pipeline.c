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
#include "passes/passes.h"

/* The passes, in order.  Each is followed by the verifier. */
static const hsac_pass pipeline[] = {
    {"infer-shapes", pass_infer_shapes, "recompute every type from the op rules"},
    {"canonicalize", pass_canonicalize, "fold reshapes and roundings that undo each other"},
    {"cse", pass_cse, "share identical ops: one retrieval per group, one read of a memory"},
    {"dce", pass_dce, "remove ops whose results nothing uses"},
    {"fuse", pass_fuse, "group ops into kernels (chunk encode, retrieve, sparse attention, ...)"},
    {"demand", pass_demand, "rows each value must produce for the last position's logits"},
};
enum { NPASSES = sizeof pipeline / sizeof pipeline[0] };

int hsac_pass_names(const char *const **names, const char *const **docs) {
  static const char *n[NPASSES], *d[NPASSES];
  for (int i = 0; i < NPASSES; i++) n[i] = pipeline[i].name, d[i] = pipeline[i].doc;
  *names = n;
  *docs = d;
  return NPASSES;
}

void hsac_init(hsac_compilation *c) {
  memset(c, 0, sizeof *c);
  ut_arena_init(&c->arena);
  ut_sources_init(&c->sources, &c->arena);
  ut_diags_init(&c->diags, &c->arena);
}

void hsac_free(hsac_compilation *c) { ut_arena_free(&c->arena); }

hsac_status hsac_compile(hsac_compilation *c, const char *path, const char *text,
                         long len, hsac_stage stop) {
  hsac_options o = {.stop = stop, .opt_level = 1};
  return hsac_compile_opts(c, path, text, len, &o);
}

/* The stages, in order; an arena out of memory jumps out of them to
 * hsac_compile_opts (no local here lives across that jump). */
static hsac_status run_stages(hsac_compilation *c, const char *path, const char *text,
                              long len, const hsac_options *opts) {
  hsac_stage stop = opts->stop;
  FILE *pout = opts->print_to ? opts->print_to : stdout;
  bool print_all = opts->print_after && !strcmp(opts->print_after, "all");
  hsac_status st = HSAC_OK;

  /* 1. scan, parse and splice includes */
  c->ast = text ? fe_load_text(&c->arena, &c->sources, &c->diags, path, text, len,
                              opts->include_dirs)
                : fe_load(&c->arena, &c->sources, &c->diags, path, opts->include_dirs);
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

  /* 4. the passes, in order, each followed by the verifier */
  for (int i = 0; opts->opt_level > 0 && i < NPASSES; i++) {
    hsac_pass_ctx pc = {.g = c->graph, .model = c->model, .diags = &c->diags};
    if (!pipeline[i].run(&pc) || !ir_verify(c->graph, &c->diags)) {
      ut_error(&c->diags, ut_noloc, "internal error in pass '%s'", pipeline[i].name);
      st = HSAC_EINTERNAL;
      goto done;
    }
    if (print_all || (opts->print_after && !strcmp(opts->print_after, pipeline[i].name))) {
      fprintf(pout, "# ---- after %s: %s\n", pipeline[i].name, pc.summary);
      ir_print(c->graph, pout);
    }
  }

done:
  return st;
}

hsac_status hsac_compile_opts(hsac_compilation *c, const char *path, const char *text,
                              long len, const hsac_options *opts) {
  jmp_buf oom;
  c->arena.oom = &oom;
  if (setjmp(oom)) {
    c->arena.oom = NULL;
    return HSAC_ENOMEM;
  }
  hsac_status st = run_stages(c, path, text, len, opts);
  c->arena.oom = NULL;
  return st;
}
