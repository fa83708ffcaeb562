/* pipeline.h - one compilation, from a model file to verified IR. */
#ifndef HSAC_PASSES_PIPELINE_H
#define HSAC_PASSES_PIPELINE_H

#include <stdio.h>

#include "frontend/ast.h"
#include "frontend/model.h"
#include "ir/ir.h"
#include "util/arena.h"
#include "util/diag.h"

/* Results of hsac_compile; negative values are never used. */
typedef enum hsac_status {
  HSAC_OK = 0,
  HSAC_EINPUT = 1,   /* the model description has errors (see diags) */
  HSAC_ENOMEM = 3,   /* out of memory */
  HSAC_EINTERNAL = 4 /* the verifier rejected the compiler's own output */
} hsac_status;

typedef enum hsac_stage {
  HSAC_STAGE_PARSE,  /* stop after parsing (and includes) */
  HSAC_STAGE_SEMA,   /* stop after semantic analysis */
  HSAC_STAGE_IR,     /* build, verify and run the passes (the default) */
} hsac_stage;

/* How far to go and what to show on the way. */
typedef struct hsac_options {
  hsac_stage stop;
  int opt_level;          /* 0: the IR as built, no passes; 1: every pass */
  const char *print_after;/* a pass name, or "all": print the IR after it */
  FILE *print_to;         /* where (stdout if NULL) */
  const char *const *include_dirs; /* -I folders searched after the including
                                      file's own, NULL-terminated (or NULL) */
} hsac_options;

typedef struct hsac_compilation {
  ut_arena arena;       /* owns everything below */
  ut_sources sources;   /* every file read */
  ut_diags diags;       /* every error, warning and note */
  const fe_stmt *ast;   /* the root file with includes spliced in */
  fe_model *model;      /* after semantic analysis */
  ir_graph *graph;      /* after lowering and the passes */
} hsac_compilation;

void hsac_init(hsac_compilation *c);
void hsac_free(hsac_compilation *c);

/* Compiles the file at `path`, or, when text is not NULL, the given text
 * under the name `path`.  Diagnostics stay in c->diags for the caller to
 * render; nothing is printed. */
hsac_status hsac_compile(hsac_compilation *c, const char *path, const char *text,
                         long len, hsac_stage stop);
hsac_status hsac_compile_opts(hsac_compilation *c, const char *path, const char *text,
                              long len, const hsac_options *opts);

/* The passes, in the order they run: names[i] for i < n. */
int hsac_pass_names(const char *const **names, const char *const **docs);

/* Bytes of cache a session needs: per token of context, and fixed (the
 * rings: sliding windows, incomplete chunks and blocks), for the model's
 * attention layers and chunk memories, attention K/V in f32.  The same
 * counts as `hsac plan` derives from the IR. */
void hsac_cache_footprint(const fe_model *m, double *per_token, double *fixed);

#endif
