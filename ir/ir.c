/* ir.c - graph construction, dimensions, types and attributes. */
#include "ir/ir.h"

#include <inttypes.h>
#include <string.h>

const char *const ir_kernel_kind_names[IR_K_COUNT] = {
    "embed", "attn_block", "mlp_block", "chunk_encode", "retrieve", "sparse_attention",
    "block_sparse", "lm_head"};

const ir_opinfo ir_ops[IR_OPCODE_COUNT] = {
#define X(e, name, minin, maxin, nres, doc) [e] = {#name, minin, maxin, nres, doc},
#include "ir/ops.def"
#undef X
};

ir_graph *ir_graph_new(ut_arena *arena, const char *name) {
  ir_graph *g = ut_alloc(arena, sizeof *g);
  g->arena = arena;
  g->name = ut_strdup(arena, name);
  return g;
}

ir_dim ir_const_dim(int64_t n) { return (ir_dim){n, 0, 0}; }
ir_dim ir_seq_dim(int64_t off, int64_t div) { return (ir_dim){0, off, div}; }

bool ir_dim_eq(ir_dim a, ir_dim b) {
  if (a.div == 0 || b.div == 0) return a.div == b.div && a.n == b.n;
  return a.off == b.off && a.div == b.div;
}

int ir_dim_str(ir_dim d, char *buf, size_t size) {
  if (d.div == 0) return snprintf(buf, size, "%" PRId64, d.n);
  if (d.div == 1)
    return d.off == 0 ? snprintf(buf, size, "L")
                      : snprintf(buf, size, "L%+" PRId64, d.off);
  if (d.off == 0) return snprintf(buf, size, "L/%" PRId64, d.div);
  return snprintf(buf, size, "(L%+" PRId64 ")/%" PRId64, d.off, d.div);
}

void ir_type_print(const ir_type *t, FILE *out) {
  fputs(t->dtype == IR_F32 ? "f32[" : "i32[", out);
  for (int i = 0; i < t->rank; i++) {
    char buf[64];
    ir_dim_str(t->dims[i], buf, sizeof buf);
    fprintf(out, "%s%s", i ? ", " : "", buf);
  }
  fputc(']', out);
}

bool ir_type_eq(const ir_type *a, const ir_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (!ir_dim_eq(a->dims[i], b->dims[i])) return false;
  return true;
}

int64_t ir_type_numel(const ir_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i].div != 0) return -1;
    if (__builtin_mul_overflow(n, t->dims[i].n, &n)) return -1;
  }
  return n;
}

ir_attr ir_int_attr(const char *key, int64_t v) {
  return (ir_attr){.key = key, .kind = IR_ATTR_INT, .i = v};
}
ir_attr ir_float_attr(const char *key, double v) {
  return (ir_attr){.key = key, .kind = IR_ATTR_FLOAT, .f = v};
}
ir_attr ir_str_attr(const char *key, const char *v) {
  return (ir_attr){.key = key, .kind = IR_ATTR_STR, .s = v};
}

const ir_attr *ir_get_attr(const ir_op *op, const char *key) {
  for (int i = 0; i < op->nattrs; i++)
    if (!strcmp(op->attrs[i].key, key)) return &op->attrs[i];
  return NULL;
}

int64_t ir_attr_i(const ir_op *op, const char *key, int64_t dflt) {
  const ir_attr *a = ir_get_attr(op, key);
  return a && a->kind == IR_ATTR_INT ? a->i : dflt;
}

static ir_op *append(ir_graph *g, ir_opcode code) {
  ir_op *op = ut_alloc(g->arena, sizeof *op);
  op->code = code;
  op->origin = g->origin;
  if (g->last)
    g->last->next = op;
  else
    g->first = op;
  g->last = op;
  g->nops++;
  return op;
}

static ir_value *new_result(ir_graph *g, ir_op *op, ir_type t) {
  ir_value *v = ut_alloc(g->arena, sizeof *v);
  v->type = t;
  v->demand = -1;
  v->def = op;
  v->result = op->nout;
  op->out[op->nout++] = v;
  return v;
}

ir_value *ir_weight(ir_graph *g, const char *name, ir_type type) {
  ir_op *op = append(g, IR_WEIGHT);
  op->name = ut_strdup(g->arena, name);
  return new_result(g, op, type);
}

ir_op *ir_emit(ir_graph *g, ut_diags *d, ir_opcode code, ir_value *const *in,
               int nin, const ir_attr *attrs, int nattrs) {
  for (int i = 0; i < nin; i++)
    if (!in[i]) return NULL; /* an earlier error; already reported */
  ir_op *op = append(g, code);
  op->nin = nin;
  for (int i = 0; i < nin; i++) op->in[i] = in[i];
  op->nattrs = nattrs;
  for (int i = 0; i < nattrs; i++) op->attrs[i] = attrs[i];
  ir_type out[IR_MAX_RESULTS];
  char msg[256];
  if (!ir_infer(op, out, msg, sizeof msg)) {
    ut_error(d, ut_noloc, "internal error building %s (%s): %s", ir_ops[code].name,
             op->origin ? op->origin : "model", msg);
    return NULL;
  }
  for (int i = 0; i < ir_ops[code].results; i++) new_result(g, op, out[i]);
  return op;
}

int ir_index_values(ir_graph *g) {
  int n = 0;
  for (ir_op *op = g->first; op; op = op->next)
    for (int i = 0; i < op->nout; i++) op->out[i]->index = n++;
  return n;
}

int64_t ir_param_count(const ir_graph *g) {
  int64_t n = 0;
  for (ir_op *op = g->first; op; op = op->next)
    if (op->code == IR_WEIGHT) {
      int64_t k = ir_type_numel(&op->out[0]->type);
      if (k > 0) n += k;
    }
  return n;
}

int ir_weight_count(const ir_graph *g) {
  int n = 0;
  for (ir_op *op = g->first; op; op = op->next) n += op->code == IR_WEIGHT;
  return n;
}

bool ir_linear_matrix(const ir_graph *g, const ir_value *w) {
  for (const ir_op *op = g->first; op; op = op->next)
    if (op->code == IR_LINEAR && op->in[1] == w) return true;
  return false;
}

bool ir_linear_matrix_only(const ir_graph *g, const ir_value *w) {
  bool any = false;
  for (const ir_op *op = g->first; op; op = op->next)
    for (int i = 0; i < op->nin; i++)
      if (op->in[i] == w) {
        if (op->code != IR_LINEAR || i != 1) return false;
        any = true;
      }
  return any;
}
