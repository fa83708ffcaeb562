/* print.c - the textual form of the IR.
 *
 * Stable (values are numbered in op order, attributes keep their order),
 * and meant to be read: weights are listed once and referred to by name,
 * and a comment marks where each layer's ops begin.
 *
 *   func @name(%tokens: i32[L]) -> f32[L, V] {
 *     # lower.0 swa
 *     %3 = rmsnorm(%1, @lower.0.attn_norm.weight) {eps = 1e-06} : f32[L, 64]
 */
#include <inttypes.h>
#include <string.h>

#include "ir/ir.h"

static void print_ref(const ir_value *v, FILE *out) {
  if (v->def->code == IR_WEIGHT)
    fprintf(out, "@%s", v->def->name);
  else if (v->def->code == IR_INPUT)
    fputs("%tokens", out);
  else
    fprintf(out, "%%%d", v->id);
}

static void print_attr(const ir_attr *a, FILE *out) {
  switch (a->kind) {
  case IR_ATTR_INT: fprintf(out, "%s = %" PRId64, a->key, a->i); break;
  case IR_ATTR_FLOAT: fprintf(out, "%s = %.9g", a->key, a->f); break;
  case IR_ATTR_STR: fprintf(out, "%s = \"%s\"", a->key, a->s); break;
  }
}

void ir_print(ir_graph *g, FILE *out) {
  int id = 0;
  for (ir_op *op = g->first; op; op = op->next)
    if (op->code != IR_WEIGHT && op->code != IR_INPUT)
      for (int i = 0; i < op->nout; i++) op->out[i]->id = id++;
  fprintf(out, "# hsac IR: model %s; L is the sequence length\n", g->name);
  fprintf(out, "weights {\n");
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code != IR_WEIGHT) continue;
    fprintf(out, "  @%s : ", op->name);
    ir_type_print(&op->out[0]->type, out);
    fputc('\n', out);
  }
  fprintf(out, "}\n\nfunc @%s(%%tokens: ", g->name);
  if (g->input) ir_type_print(&g->input->type, out);
  fputs(") -> ", out);
  if (g->output) ir_type_print(&g->output->type, out);
  fputs(" {\n", out);
  const char *origin = NULL;
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT || op->code == IR_INPUT) continue;
    const char *indent = "  ";
    if (op->kernel) {
      /* after fusion: each kernel is a block headed by its name and kind */
      indent = "    ";
      if (op == op->kernel->first)
        fprintf(out, "  kernel @%s : %s {\n", op->kernel->name,
                ir_kernel_kind_names[op->kernel->kind]);
    } else if (op->origin && (!origin || strcmp(origin, op->origin))) {
      fprintf(out, "  # %s\n", op->origin);
      origin = op->origin;
    }
    fputs(indent, out);
    for (int i = 0; i < op->nout; i++) {
      fprintf(out, "%s", i ? ", " : "");
      print_ref(op->out[i], out);
    }
    if (op->nout) fputs(" = ", out);
    fprintf(out, "%s", ir_ops[op->code].name);
    fputc(op->code == IR_RETURN ? ' ' : '(', out);
    for (int i = 0; i < op->nin; i++) {
      if (i) fputs(", ", out);
      print_ref(op->in[i], out);
    }
    if (op->code != IR_RETURN) fputc(')', out);
    if (op->nattrs) {
      fputs(" {", out);
      for (int i = 0; i < op->nattrs; i++) {
        if (i) fputs(", ", out);
        print_attr(&op->attrs[i], out);
      }
      fputc('}', out);
    }
    if (op->nout) {
      fputs(" : ", out);
      for (int i = 0; i < op->nout; i++) {
        if (i) fputs(", ", out);
        ir_type_print(&op->out[i]->type, out);
      }
      /* after the demand pass: the rows needed for the last position */
      int64_t dm = op->out[0]->demand;
      if (g->demand_done && op->out[0]->type.rank > 0 && op->out[0]->type.dims[0].div)
        fprintf(out, dm == IR_ALL_ROWS ? "  # all rows" : "  # last %" PRId64 " rows", dm);
    }
    fputc('\n', out);
    if (op->kernel && op == op->kernel->last) fputs("  }\n", out);
  }
  fputs("}\n", out);
}
