/* canonicalize.c - local simplifications.
 *
 *   merge_heads(split_heads(x))          -> x
 *   split_heads(merge_heads(x)), same H  -> x
 *   quantize(quantize(x)), same dtype    -> quantize(x)
 *
 * The builder does not produce these today; passes that rewrite the graph,
 * and models written by hand in the IR, will. */
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

static bool same_dtype(const ir_op *a, const ir_op *b) {
  const ir_attr *x = ir_get_attr(a, "dtype"), *y = ir_get_attr(b, "dtype");
  return x && y && !strcmp(x->s, y->s);
}

bool pass_canonicalize(hsac_pass_ctx *c) {
  int folded = 0;
  for (ir_op *op = c->g->first; op; op = op->next) {
    if (op->nin != 1 || op->nout != 1) continue;
    ir_op *src = op->in[0]->def;
    ir_value *repl = NULL;
    if (op->code == IR_MERGE_HEADS && src->code == IR_SPLIT_HEADS)
      repl = src->in[0];
    else if (op->code == IR_SPLIT_HEADS && src->code == IR_MERGE_HEADS &&
             ir_type_eq(&src->in[0]->type, &op->out[0]->type))
      repl = src->in[0];
    else if (op->code == IR_QUANTIZE && src->code == IR_QUANTIZE && same_dtype(op, src))
      repl = src->out[0];
    if (repl && ir_type_eq(&repl->type, &op->out[0]->type)) {
      folded += ir_replace_uses(c->g, op->out[0], repl) > 0;
    }
  }
  snprintf(c->summary, sizeof c->summary, "%d ops folded (dce removes them)", folded);
  return true;
}
