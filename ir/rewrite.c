/* rewrite.c - small graph edits used by the passes. */
#include "ir/ir.h"

int ir_replace_uses(ir_graph *g, const ir_value *from, ir_value *to) {
  int n = 0;
  for (ir_op *op = g->first; op; op = op->next)
    for (int i = 0; i < op->nin; i++)
      if (op->in[i] == from) {
        op->in[i] = to;
        n++;
      }
  if (g->output == from) g->output = to;
  return n;
}

void ir_remove_op(ir_graph *g, ir_op *victim) {
  ir_op *prev = NULL;
  for (ir_op *op = g->first; op; prev = op, op = op->next) {
    if (op != victim) continue;
    if (prev)
      prev->next = op->next;
    else
      g->first = op->next;
    if (g->last == op) g->last = prev;
    g->nops--;
    return;
  }
}
