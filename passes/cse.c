/* cse.c - common subexpression elimination.
 *
 * Two ops with the same opcode, inputs and attributes compute the same
 * thing; the later one's uses move to the earlier one.  This is what makes
 * sharing explicit in the graph: every HSA layer of a group reads the one
 * retrieval of that group, and every layer reading a memory reads its one
 * K/V and landmark values, however the description spelled them. */
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "util/map.h"

static bool same_attrs(const ir_op *a, const ir_op *b) {
  if (a->nattrs != b->nattrs) return false;
  for (int i = 0; i < a->nattrs; i++) {
    const ir_attr *x = &a->attrs[i], *y = ir_get_attr(b, x->key);
    if (!y || x->kind != y->kind) return false;
    if (x->kind == IR_ATTR_INT && x->i != y->i) return false;
    if (x->kind == IR_ATTR_FLOAT && x->f != y->f) return false;
    if (x->kind == IR_ATTR_STR && strcmp(x->s, y->s)) return false;
  }
  return true;
}

bool pass_cse(hsac_pass_ctx *c) {
  ir_graph *g = c->g;
  ut_map seen;
  ut_map_init(&seen, g->arena);
  int merged = 0;
  ir_index_values(g);
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
    /* the key: opcode and input identities; attributes are compared below */
    char key[160];
    int n = snprintf(key, sizeof key, "%d", (int)op->code);
    for (int i = 0; i < op->nin && n < (int)sizeof key; i++)
      n += snprintf(key + n, sizeof key - (size_t)n, ":%d", op->in[i]->index);
    for (ir_op *prev = ut_map_get(&seen, key); prev; prev = NULL) {
      if (!same_attrs(prev, op)) break;
      for (int r = 0; r < op->nout; r++) ir_replace_uses(g, op->out[r], prev->out[r]);
      merged++;
    }
    if (!ut_map_get(&seen, key)) ut_map_put(&seen, ut_strdup(g->arena, key), op);
  }
  snprintf(c->summary, sizeof c->summary, "%d duplicate ops share an earlier result", merged);
  return true;
}
