/* infer_shapes.c - recomputes every op's result types from its inputs.
 *
 * The builder already infers types as it appends ops; running the rules
 * again over the whole graph makes the types a property of the graph rather
 * than of how it was built, and catches a rule that disagrees with itself. */
#include "ir/ir.h"
#include "passes/passes.h"

bool pass_infer_shapes(hsac_pass_ctx *c) {
  int n = 0, changed = 0;
  for (ir_op *op = c->g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
    ir_type t[IR_MAX_RESULTS];
    char msg[256];
    if (!ir_infer(op, t, msg, sizeof msg)) {
      ut_error(c->diags, ut_noloc, "infer-shapes: %s (%s): %s", ir_ops[op->code].name,
               op->origin ? op->origin : "?", msg);
      return false;
    }
    for (int i = 0; i < op->nout; i++) {
      if (!ir_type_eq(&t[i], &op->out[i]->type)) changed++;
      op->out[i]->type = t[i];
    }
    n++;
  }
  snprintf(c->summary, sizeof c->summary, "%d ops typed, %d types changed", n, changed);
  return true;
}
