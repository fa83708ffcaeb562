/* passes.h - the passes over the IR, each in its own file.
 *
 * A pass changes the graph in place (or annotates it) and reports what it
 * did in one line; passes/pipeline.c runs them in order and runs the
 * verifier after each one. */
#ifndef HSAC_PASSES_PASSES_H
#define HSAC_PASSES_PASSES_H

#include <stdbool.h>
#include <stdio.h>

#include "frontend/model.h"
#include "ir/ir.h"

typedef struct hsac_pass_ctx {
  ir_graph *g;
  const fe_model *model;
  ut_diags *diags;
  char summary[256];   /* what the pass did, one line */
} hsac_pass_ctx;

typedef bool (*hsac_pass_fn)(hsac_pass_ctx *c);

typedef struct hsac_pass {
  const char *name;
  hsac_pass_fn run;
  const char *doc;
} hsac_pass;

bool pass_infer_shapes(hsac_pass_ctx *c);   /* infer_shapes.c */
bool pass_canonicalize(hsac_pass_ctx *c);   /* canonicalize.c */
bool pass_cse(hsac_pass_ctx *c);            /* cse.c */
bool pass_dce(hsac_pass_ctx *c);            /* dce.c */
bool pass_fuse(hsac_pass_ctx *c);           /* fuse.c */
bool pass_demand(hsac_pass_ctx *c);         /* demand.c */

/* The demand pass's verdict, in words: which stacks run on which suffix of
 * the prompt, or why the rule does not apply. */
void hsac_demand_report(const ir_graph *g, const fe_model *m, FILE *out);

#endif
