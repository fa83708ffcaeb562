/* export.c - the model's structure as JSON (`hsac export --json`).
 *
 * The graph as built (before fusion): every op with its inputs, outputs,
 * attributes and types, every weight with its shape, and the resolved
 * settings.  The PyTorch twin (tools/torch) builds a module from it; the
 * format is documented in docs/export.md. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "frontend/model.h"
#include "ir/export.h"

static const char *ref(const ir_value *v, char *buf, size_t n) {
  if (v->def->code == IR_WEIGHT) snprintf(buf, n, "@%s", v->def->name);
  else if (v->def->code == IR_INPUT) snprintf(buf, n, "%%tokens");
  else snprintf(buf, n, "%%%d", v->id);
  return buf;
}

static cJSON *dim_json(ir_dim d) {
  if (d.div == 0) return cJSON_CreateNumber((double)d.n);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "off", (double)d.off);
  cJSON_AddNumberToObject(o, "div", (double)d.div);
  return o;
}

static cJSON *type_json(const ir_type *t) {
  cJSON *o = cJSON_CreateObject(), *sh = cJSON_CreateArray();
  cJSON_AddStringToObject(o, "dtype", t->dtype == IR_F32 ? "f32" : "i32");
  for (int i = 0; i < t->rank; i++) cJSON_AddItemToArray(sh, dim_json(t->dims[i]));
  cJSON_AddItemToObject(o, "shape", sh);
  return o;
}

char *ir_export_json(ir_graph *g, const fe_model *m) {
  int id = 0;
  for (ir_op *op = g->first; op; op = op->next)
    if (op->code != IR_WEIGHT && op->code != IR_INPUT)
      for (int i = 0; i < op->nout; i++) op->out[i]->id = id++;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "hsac-model");
  cJSON_AddNumberToObject(root, "version", 1);
  cJSON_AddStringToObject(root, "name", g->name);
  cJSON *set = cJSON_AddObjectToObject(root, "settings");
  cJSON_AddNumberToObject(set, "vocab", (double)m->vocab);
  cJSON_AddNumberToObject(set, "width", (double)m->width);
  cJSON_AddNumberToObject(set, "heads", (double)m->heads);
  cJSON_AddNumberToObject(set, "kv_heads", (double)m->kv_heads);
  cJSON_AddNumberToObject(set, "head_dim", (double)m->head_dim);
  cJSON_AddStringToObject(set, "norm", m->norm == FE_NORM_RMS ? "rmsnorm" : "layernorm");
  cJSON_AddNumberToObject(set, "norm_eps", m->norm_eps);
  cJSON_AddStringToObject(set, "mlp", m->mlp == FE_MLP_SWIGLU ? "swiglu" : "none");
  cJSON_AddNumberToObject(set, "mlp_hidden", (double)m->mlp_hidden);
  cJSON_AddBoolToObject(set, "tie_embeddings", m->tie_embeddings);
  if (m->context) cJSON_AddNumberToObject(set, "context", (double)m->context);
  cJSON *ws = cJSON_AddArrayToObject(root, "weights");
  cJSON *ops = cJSON_AddArrayToObject(root, "ops");
  char buf[400];
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code == IR_WEIGHT) {
      cJSON *w = cJSON_CreateObject();
      cJSON_AddStringToObject(w, "name", op->name);
      cJSON *sh = cJSON_AddArrayToObject(w, "shape");
      for (int i = 0; i < op->out[0]->type.rank; i++)
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)op->out[0]->type.dims[i].n));
      const ir_attr *init = ir_get_attr(op, "init");
      if (init) cJSON_AddNumberToObject(w, "init", init->f);
      cJSON_AddItemToArray(ws, w);
      continue;
    }
    if (op->code == IR_INPUT) continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", ir_ops[op->code].name);
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    for (int i = 0; i < op->nin; i++)
      cJSON_AddItemToArray(in, cJSON_CreateString(ref(op->in[i], buf, sizeof buf)));
    cJSON *out = cJSON_AddArrayToObject(o, "outputs");
    cJSON *types = cJSON_AddArrayToObject(o, "types");
    for (int i = 0; i < op->nout; i++) {
      cJSON_AddItemToArray(out, cJSON_CreateString(ref(op->out[i], buf, sizeof buf)));
      cJSON_AddItemToArray(types, type_json(&op->out[i]->type));
    }
    cJSON *at = cJSON_AddObjectToObject(o, "attrs");
    for (int i = 0; i < op->nattrs; i++) {
      const ir_attr *a = &op->attrs[i];
      if (a->kind == IR_ATTR_INT) cJSON_AddNumberToObject(at, a->key, (double)a->i);
      else if (a->kind == IR_ATTR_FLOAT) cJSON_AddNumberToObject(at, a->key, a->f);
      else cJSON_AddStringToObject(at, a->key, a->s);
    }
    if (op->origin) cJSON_AddStringToObject(o, "origin", op->origin);
    cJSON_AddItemToArray(ops, o);
  }
  if (g->output) cJSON_AddStringToObject(root, "output", ref(g->output, buf, sizeof buf));
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  return text; /* NULL when out of memory */
}
