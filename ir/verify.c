/* verify.c - the IR verifier.
 *
 * Checks what every pass must preserve: inputs defined before use, input
 * and result counts from the op table, types that follow from the shape
 * rules, unique weight names, one input and one return. */
#include <string.h>

#include "ir/ir.h"
#include "util/map.h"

bool ir_verify(const ir_graph *g, ut_diags *d) {
  int errors = d->nerrors;
  ut_map names;
  ut_map_init(&names, g->arena);
  int ninputs = 0, nreturns = 0;
  /* Mark defined values by walking in order; a value's def op is defined
   * when we have passed it.  Position numbers make this O(n). */
  int pos = 0;
  for (ir_op *op = g->first; op; op = op->next) op->pos = -1;
  for (ir_op *op = g->first; op; op = op->next, pos++) {
    const ir_opinfo *info = op->code < IR_OPCODE_COUNT ? &ir_ops[op->code] : NULL;
    const char *where = op->origin ? op->origin : "model";
    if (!info) {
      ut_error(d, ut_noloc, "verifier: op %d has an invalid opcode", pos);
      continue;
    }
    if (op->nin < info->min_inputs || op->nin > info->max_inputs)
      ut_error(d, ut_noloc, "verifier: %s in %s has %d inputs", info->name, where, op->nin);
    if (op->nout != info->results)
      ut_error(d, ut_noloc, "verifier: %s in %s has %d results, expected %d", info->name,
               where, op->nout, info->results);
    op->pos = pos;
    for (int i = 0; i < op->nin; i++) {
      ir_value *v = op->in[i];
      /* defs not yet visited (or not in the graph) still have pos -1 */
      bool found = v && v->def && v->def->pos >= 0 && v->def->pos < pos;
      if (!found)
        ut_error(d, ut_noloc, "verifier: input %d of %s in %s is not defined before it", i,
                 info->name, where);
    }
    for (int i = 0; i < op->nout; i++)
      if (!op->out[i] || op->out[i]->def != op || op->out[i]->result != i)
        ut_error(d, ut_noloc, "verifier: result %d of %s in %s is not linked to it", i,
                 info->name, where);
    if (op->code == IR_INPUT) ninputs++;
    if (op->code == IR_RETURN) {
      nreturns++;
      if (op->next) ut_error(d, ut_noloc, "verifier: return is not the last op");
    }
    if (op->code == IR_WEIGHT) {
      if (!op->name || !op->name[0])
        ut_error(d, ut_noloc, "verifier: a weight has no name");
      else if (ut_map_get(&names, op->name))
        ut_error(d, ut_noloc, "verifier: weight '%s' is defined twice", op->name);
      else
        ut_map_put(&names, op->name, op);
      if (op->nout == 1 && ir_type_numel(&op->out[0]->type) <= 0)
        ut_error(d, ut_noloc, "verifier: weight '%s' has a symbolic or empty shape",
                 op->name ? op->name : "?");
      continue;
    }
    if (op->code == IR_INPUT || op->code == IR_RETURN) continue;
    bool inputs_ok = true;
    for (int i = 0; i < op->nin; i++) inputs_ok &= op->in[i] != NULL;
    if (!inputs_ok || op->nout != info->results) continue;
    ir_type t[IR_MAX_RESULTS];
    char msg[256];
    if (!ir_infer(op, t, msg, sizeof msg)) {
      ut_error(d, ut_noloc, "verifier: %s in %s: %s", info->name, where, msg);
      continue;
    }
    for (int i = 0; i < op->nout; i++)
      if (!ir_type_eq(&t[i], &op->out[i]->type))
        ut_error(d, ut_noloc, "verifier: result %d of %s in %s has a type its inputs do not "
                 "give", i, info->name, where);
  }
  /* kernels: every computing op in exactly one, each a contiguous run that
   * starts at its first op and ends at its last (one pass over the ops) */
  if (g->kernels) {
    ut_map done;
    ut_map_init(&done, g->arena);
    const ir_kernel *cur = NULL;
    const ir_op *prev = NULL;
    for (ir_op *op = g->first; op; op = op->next) {
      if (op->code == IR_WEIGHT || op->code == IR_INPUT || op->code == IR_RETURN) continue;
      if (!op->kernel) {
        ut_error(d, ut_noloc, "verifier: %s (%s) belongs to no kernel", ir_ops[op->code].name,
                 op->origin ? op->origin : "?");
        continue;
      }
      if (op->kernel != cur) {
        if (cur && prev != cur->last)
          ut_error(d, ut_noloc, "verifier: kernel %s does not end at its last op", cur->name);
        if (ut_map_get(&done, op->kernel->name) || op != op->kernel->first)
          ut_error(d, ut_noloc, "verifier: kernel %s is not contiguous", op->kernel->name);
        ut_map_put(&done, op->kernel->name, (void *)op->kernel);
        cur = op->kernel;
      }
      prev = op;
    }
    if (cur && prev != cur->last)
      ut_error(d, ut_noloc, "verifier: kernel %s does not end at its last op", cur->name);
  }
  if (ninputs != 1) ut_error(d, ut_noloc, "verifier: the graph has %d inputs, expected 1", ninputs);
  if (nreturns != 1)
    ut_error(d, ut_noloc, "verifier: the graph has %d returns, expected 1", nreturns);
  return d->nerrors == errors;
}
