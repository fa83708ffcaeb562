/* dce.c - dead code elimination.
 *
 * An op is live if the output depends on it.  Weights stay even when
 * unused, so that a weights file written for the model still matches it
 * (an unused retrieval is already a warning in semantic analysis). */
#include <stdlib.h>

#include "ir/ir.h"
#include "passes/passes.h"

bool pass_dce(hsac_pass_ctx *c) {
  ir_graph *g = c->g;
  int n = ir_index_values(g);
  bool *live = calloc((size_t)n + 1, sizeof *live);
  ir_op **ops = malloc(((size_t)g->nops + 1) * sizeof *ops);
  if (!live || !ops) {
    free(live);
    free(ops);
    ut_error(c->diags, ut_noloc, "dce: out of memory");
    return false;
  }
  int k = 0;
  for (ir_op *op = g->first; op; op = op->next) ops[k++] = op;
  /* walk backwards: an op is live if a result is live, or it is the return */
  int removed = 0;
  for (int i = k - 1; i >= 0; i--) {
    ir_op *op = ops[i];
    bool alive = op->code == IR_RETURN || op->code == IR_WEIGHT || op->code == IR_INPUT;
    for (int r = 0; r < op->nout && !alive; r++) alive = live[op->out[r]->index];
    if (!alive) {
      ops[i] = NULL; /* unlinked below, in one pass */
      removed++;
      continue;
    }
    for (int j = 0; j < op->nin; j++) live[op->in[j]->index] = true;
  }
  g->first = g->last = NULL;
  g->nops = 0;
  for (int i = 0; i < k; i++) {
    if (!ops[i]) continue;
    ops[i]->next = NULL;
    if (g->last) g->last->next = ops[i]; else g->first = ops[i];
    g->last = ops[i];
    g->nops++;
  }
  free(live);
  free(ops);
  snprintf(c->summary, sizeof c->summary, "%d ops removed", removed);
  return true;
}
