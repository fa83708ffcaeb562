/* demand.c - which rows each value must produce.
 *
 * The request is "the logits at the last position of the prompt".  Walking
 * the graph backwards from the output, each op says which last rows of its
 * inputs it needs for the last rows of its output (ir_input_demand): the
 * same rows for a row-wise op, W - 1 more for the keys of a window of W,
 * every row for dense attention's keys and for what a chunk memory is built
 * from.  Nothing here knows about stacks or layer names: for the paper's
 * two-stack design the result is that the upper stack needs only its last
 * (upper SWA layers) x (W - 1) + 1 rows while the lower stack and the chunk
 * memory need every row (PAPER.md section 10), because that is what the
 * dependences say.  The runtime uses the demands for prefill. */
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

static int64_t join(int64_t a, int64_t b) {
  if (a == IR_ALL_ROWS || b == IR_ALL_ROWS) return IR_ALL_ROWS;
  return a > b ? a : b;
}

bool pass_demand(hsac_pass_ctx *c) {
  ir_graph *g = c->g;
  ir_op **ops = malloc(((size_t)g->nops + 1) * sizeof *ops);
  if (!ops) {
    ut_error(c->diags, ut_noloc, "demand: out of memory");
    return false;
  }
  int k = 0;
  for (ir_op *op = g->first; op; op = op->next) {
    ops[k++] = op;
    for (int r = 0; r < op->nout; r++) op->out[r]->demand = 0;
  }
  for (int i = k - 1; i >= 0; i--) {
    ir_op *op = ops[i];
    int64_t out = 0;
    if (op->code == IR_RETURN)
      out = 1; /* the last position's logits */
    for (int r = 0; r < op->nout; r++) out = join(out, op->out[r]->demand);
    for (int j = 0; j < op->nin; j++) {
      ir_value *in = op->in[j];
      if (in->type.rank == 0 || in->type.dims[0].div == 0) continue;
      in->demand = join(in->demand, ir_input_demand(op, j, out));
    }
  }
  free(ops);
  g->demand_done = true;
  /* one line: the residual stream's demand where each stack starts */
  int finite = 0, all = 0;
  for (ir_kernel *kk = g->kernels; kk; kk = kk->next) {
    int64_t d = kk->last->out[0]->demand;
    if (d == IR_ALL_ROWS) all++; else finite++;
  }
  snprintf(c->summary, sizeof c->summary,
           "for the last position's logits: %d kernels need every row, %d only a suffix",
           all, finite);
  return true;
}

/* The most rows any token-indexed value of a kernel needs. */
static int64_t kernel_demand(const ir_kernel *k) {
  int64_t d = 0;
  for (ir_op *op = k->first;; op = op->next) {
    for (int r = 0; r < op->nout; r++) {
      const ir_value *v = op->out[r];
      if (v->type.rank > 0 && v->type.dims[0].div == 1) d = join(d, v->demand);
    }
    if (op == k->last) break;
  }
  return d;
}

void hsac_demand_report(const ir_graph *g, const fe_model *m, FILE *out) {
  if (!g->demand_done) {
    fputs("demand: not analysed\n", out);
    return;
  }
  bool any_suffix = false;
  for (int s = 0; s < m->nstacks; s++) {
    const fe_stack_def *sd = &m->stacks[s];
    /* the stack's first kernel is the first whose name starts with it */
    size_t n = strlen(sd->name);
    int64_t d = 0;
    for (ir_kernel *k = g->kernels; k; k = k->next) {
      if (strncmp(k->name, sd->name, n) || k->name[n] != '.') continue;
      d = join(d, kernel_demand(k));
    }
    if (d == IR_ALL_ROWS) {
      const char *memory = NULL, *kind = NULL;
      for (int j = 0; j < m->nmemories; j++)
        if (m->memories[j].source == s) memory = m->memories[j].name;
      for (int i = sd->first_layer; i < sd->first_layer + sd->nlayers && !kind; i++) {
        fe_layer_kind lk = m->layers[i].kind;
        if (lk == FE_L_ATTN || lk == FE_L_LANDMARK || lk == FE_L_MOBA || lk == FE_L_NSA)
          kind = fe_layer_kind_name(lk);
      }
      if (memory)
        fprintf(out, "  stack '%s': every position (memory '%s' is built from it)\n",
                sd->name, memory);
      else if (kind)
        fprintf(out, "  stack '%s': every position (its %s layers read every key)\n",
                sd->name, kind);
      else
        fprintf(out, "  stack '%s': every position (a later layer reads all of it)\n",
                sd->name);
    } else {
      any_suffix = true;
      fprintf(out, "  stack '%s': only the last %lld positions\n", sd->name, (long long)d);
    }
  }
  if (!any_suffix)
    fputs("  demand-driven prefill does not apply: every layer needs every position\n", out);
}
