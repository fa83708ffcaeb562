/* infer.c - shape inference: the type rule of every op in ops.def.
 *
 * Used twice: when the builder appends an op (to give its results a type)
 * and by the verifier (to check that stored types still follow from the
 * inputs after a pass has rewritten the graph). */
#include <stdarg.h>
#include <string.h>

#include "ir/ir.h"

#define FAIL(...)                              \
  do {                                         \
    snprintf(msg, msgsize, __VA_ARGS__);       \
    return false;                              \
  } while (0)

static const ir_type *T(const ir_op *op, int i) { return &op->in[i]->type; }

static bool is_const(ir_dim d, int64_t n) { return d.div == 0 && d.n == n; }

static ir_dim last(const ir_type *t) { return t->dims[t->rank - 1]; }

/* Dimension of a sequence axis split into blocks of b: L -> L/b. */
static bool split_seq(ir_dim d, int64_t b, ir_dim *out) {
  if (d.div == 0) {
    *out = ir_const_dim(d.n / b);
    return true;
  }
  if (d.div != 1) return false;
  *out = ir_seq_dim(d.off, b);
  return true;
}

bool ir_infer(ir_op *op, ir_type *out, char *msg, size_t msgsize) {
  if (op->nin < ir_ops[op->code].min_inputs || op->nin > ir_ops[op->code].max_inputs)
    FAIL("takes %d to %d inputs, has %d", ir_ops[op->code].min_inputs,
         ir_ops[op->code].max_inputs, op->nin);
  for (int i = 0; i < op->nin; i++) {
    if (!op->in[i]) FAIL("input %d is missing", i);
    if (op->code != IR_EMBED && op->code != IR_CHUNK_ATTENTION && op->code != IR_RETURN &&
        T(op, i)->dtype != IR_F32)
      FAIL("input %d must be f32", i);
  }
  /* inputs the reference reads as parameters must be weights */
  static const struct { ir_opcode op; int input; } params[] = {
      {IR_EMBED, 1}, {IR_RMSNORM, 1}, {IR_LAYERNORM, 1}, {IR_LINEAR, 1}, {IR_APPEND_ROW, 1},
      {IR_BLOCK_LANDMARK, 1}, {IR_LANDMARK_SCORES, 2}, {IR_NSA_COMPRESS, 1}};
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    if (params[i].op == op->code && params[i].input < op->nin &&
        op->in[params[i].input]->def && op->in[params[i].input]->def->code != IR_WEIGHT)
      FAIL("input %d must be a weight", params[i].input);
  ir_type r = {0};
  switch (op->code) {
  case IR_INPUT:
  case IR_WEIGHT:
    FAIL("has no inferred type");
  case IR_EMBED: {
    const ir_type *ids = T(op, 0), *tab = T(op, 1);
    if (ids->dtype != IR_I32) FAIL("ids must be i32");
    if (tab->rank != 2 || ids->rank + 1 > IR_MAX_RANK) FAIL("table must be [V, D]");
    r = *ids;
    r.dtype = IR_F32;
    r.dims[r.rank++] = tab->dims[1];
    break;
  }
  case IR_RMSNORM:
  case IR_LAYERNORM:
    if (T(op, 1)->rank != 1 || !ir_dim_eq(T(op, 1)->dims[0], last(T(op, 0))))
      FAIL("gain must be [D] matching the last axis");
    if (!ir_get_attr(op, "eps")) FAIL("needs eps");
    r = *T(op, 0);
    break;
  case IR_LINEAR: {
    const ir_type *x = T(op, 0), *w = T(op, 1);
    if (w->rank != 2) FAIL("weight must be [out, in]");
    if (x->rank < 1 || !ir_dim_eq(last(x), w->dims[1]))
      FAIL("input width does not match the weight's in dimension");
    r = *x;
    r.dims[r.rank - 1] = w->dims[0];
    break;
  }
  case IR_SPLIT_HEADS: {
    int64_t h = ir_attr_i(op, "heads", 0);
    const ir_type *x = T(op, 0);
    if (h <= 0 || x->rank < 1 || x->rank >= IR_MAX_RANK || last(x).div != 0 ||
        last(x).n % h != 0)
      FAIL("last axis must split into 'heads' equal parts");
    r = *x;
    r.dims[r.rank - 1] = ir_const_dim(h);
    r.dims[r.rank++] = ir_const_dim(last(x).n / h);
    break;
  }
  case IR_MERGE_HEADS: {
    const ir_type *x = T(op, 0);
    if (x->rank < 2 || last(x).div || x->dims[x->rank - 2].div) FAIL("needs [..., H, d]");
    r = *x;
    r.rank--;
    r.dims[r.rank - 1] = ir_const_dim(x->dims[x->rank - 2].n * last(x).n);
    break;
  }
  case IR_ROPE:
    if (T(op, 0)->rank < 3 || last(T(op, 0)).div || last(T(op, 0)).n % 2)
      FAIL("needs [..., T, H, d] with d even");
    r = *T(op, 0);
    break;
  case IR_ATTENTION: {
    const ir_type *q = T(op, 0), *k = T(op, 1), *v = T(op, 2);
    if (q->rank < 3 || k->rank != q->rank || !ir_type_eq(k, v))
      FAIL("q, k, v must be [..., T, H, d] with k and v alike");
    int n = q->rank;
    for (int i = 0; i < n - 2; i++)
      if (!ir_dim_eq(q->dims[i], k->dims[i])) FAIL("q and k disagree on leading axes");
    if (!ir_dim_eq(last(q), last(k))) FAIL("q and k head widths differ");
    ir_dim hq = q->dims[n - 2], hk = k->dims[n - 2];
    if (hq.div || hk.div || hk.n == 0 || hq.n % hk.n) FAIL("kv heads must divide q heads");
    r = *q;
    break;
  }
  case IR_BIAS_ADD:
    if (T(op, 1)->rank != 1 || !ir_dim_eq(T(op, 1)->dims[0], last(T(op, 0))))
      FAIL("bias must be [O] matching the last axis");
    r = *T(op, 0);
    break;
  case IR_ADD:
  case IR_SILU_MUL:
    if (!ir_type_eq(T(op, 0), T(op, 1))) FAIL("operands must have the same type");
    r = *T(op, 0);
    break;
  case IR_QUANTIZE: {
    const ir_attr *a = ir_get_attr(op, "dtype");
    if (!a || a->kind != IR_ATTR_STR || (strcmp(a->s, "bf16") && strcmp(a->s, "f16")))
      FAIL("dtype must be \"bf16\" or \"f16\"");
    r = *T(op, 0);
    break;
  }
  case IR_SOFTMAX:
    if (op->nin == 2 && (T(op, 1)->rank != 1 || !is_const(T(op, 1)->dims[0], 1)))
      FAIL("decay must be [1]");
    r = *T(op, 0);
    break;
  case IR_SIGMOID:
  case IR_STICKBREAK:
    r = *T(op, 0);
    break;
  case IR_CHUNK: {
    int64_t s = ir_attr_i(op, "size", 0);
    const ir_type *x = T(op, 0);
    if (s <= 0 || x->rank != 2) FAIL("needs [L, D] and size > 0");
    r.dtype = IR_F32;
    r.rank = 3;
    if (!split_seq(x->dims[0], s, &r.dims[0])) FAIL("cannot chunk this axis");
    r.dims[1] = ir_const_dim(s);
    r.dims[2] = x->dims[1];
    break;
  }
  case IR_APPEND_ROW: {
    const ir_type *x = T(op, 0), *row = T(op, 1);
    if (x->rank != 3 || x->dims[1].div || row->rank != 1 ||
        !ir_dim_eq(row->dims[0], x->dims[2]))
      FAIL("needs [C, P, D] and [D]");
    r = *x;
    r.dims[1] = ir_const_dim(x->dims[1].n + 1);
    break;
  }
  case IR_ROWS: {
    const ir_type *x = T(op, 0);
    int64_t b = ir_attr_i(op, "begin", -1), e = ir_attr_i(op, "end", -1);
    if (x->rank != 3 || x->dims[1].div || b < 0 || e <= b || e > x->dims[1].n)
      FAIL("needs [C, P, D] and 0 <= begin < end <= P");
    r = *x;
    r.dims[1] = ir_const_dim(e - b);
    break;
  }
  case IR_ROW:
  case IR_ZERO_ROW: {
    const ir_type *x = T(op, 0);
    int64_t i = ir_attr_i(op, "row", -1);
    if (x->rank != 3 || x->dims[1].div || i < 0 || i >= x->dims[1].n)
      FAIL("needs [C, P, D] and 0 <= row < P");
    r = *x;
    if (op->code == IR_ROW) {
      r.rank = 2;
      r.dims[1] = x->dims[2];
    }
    break;
  }
  case IR_MEAN_ROWS: {
    const ir_type *x = T(op, 0);
    if (x->rank != 3) FAIL("needs [C, P, D]");
    r = *x;
    r.rank = 2;
    r.dims[1] = x->dims[2];
    break;
  }
  case IR_BLOCK_LANDMARK: {
    const ir_type *x = T(op, 0), *e = T(op, 1);
    int64_t b = ir_attr_i(op, "block", 0);
    if (x->rank != 2 || e->rank != 1 || !ir_dim_eq(e->dims[0], x->dims[1]) || b <= 0)
      FAIL("needs [L, D], [D] and block > 0");
    r = *x;
    if (!split_seq(x->dims[0], b, &r.dims[0])) FAIL("cannot split this axis");
    break;
  }
  case IR_LANDMARK_SCORES: {
    const ir_type *q = T(op, 0), *l = T(op, 1);
    bool shared = l->rank == 2 && ir_dim_eq(q->dims[2], l->dims[1]);
    bool grouped = l->rank == 3 && ir_dim_eq(q->dims[1], l->dims[1]) &&
                   ir_dim_eq(q->dims[2], l->dims[2]);
    if (q->rank != 3 || !(shared || grouped))
      FAIL("needs q [L, G, dr] and landmarks [C, dr] or [C, G, dr]");
    if (op->nin == 3 && (T(op, 2)->rank != 1 || !is_const(T(op, 2)->dims[0], 1)))
      FAIL("offset must be [1]");
    if (ir_attr_i(op, "chunk", 0) <= 0) FAIL("needs chunk > 0");
    r = *q;
    r.dims[2] = l->dims[0];
    break;
  }
  case IR_TOPK: {
    const ir_type *s = T(op, 0);
    int64_t k = ir_attr_i(op, "k", 0);
    if (s->rank != 3 || k <= 0) FAIL("needs [L, G, C] and k > 0");
    r = *s;
    r.dims[2] = ir_const_dim(k);
    out[1] = r;
    r.dtype = IR_I32;
    out[0] = r;
    return true;
  }
  case IR_CHUNK_ATTENTION: {
    const ir_type *q = T(op, 0), *k = T(op, 1), *v = T(op, 2), *idx = T(op, 3),
                  *w = T(op, 4);
    if (q->rank != 3 || k->rank != 4 || !ir_type_eq(k, v))
      FAIL("needs q [L, Hq, d] and chunk k, v [C, P, Hkv, d]");
    if (q->dtype != IR_F32 || k->dtype != IR_F32 || w->dtype != IR_F32)
      FAIL("q, k, v and weights must be f32");
    if (idx->dtype != IR_I32 || idx->rank != 3 || w->rank != 3)
      FAIL("needs indices i32[L, G, K] and weights [L, G, K]");
    if (!ir_dim_eq(idx->dims[2], w->dims[2]) || !ir_dim_eq(idx->dims[1], w->dims[1]))
      FAIL("indices and weights disagree");
    if (!ir_dim_eq(q->dims[2], k->dims[3])) FAIL("head widths differ");
    int64_t hq = q->dims[1].n, hk = k->dims[2].n, gr = idx->dims[1].n;
    if (hk == 0 || hq % hk) FAIL("kv heads must divide q heads");
    if (gr != 1 && gr != hk) FAIL("retrieval groups must be 1 or the kv heads");
    r = *q;
    break;
  }
  case IR_LANDMARK_ATTENTION: {
    const ir_type *q = T(op, 0), *k = T(op, 1), *v = T(op, 2), *lk = T(op, 3);
    if (q->rank != 3 || !ir_type_eq(k, v) || k->rank != 3 || lk->rank != 3 ||
        !ir_dim_eq(lk->dims[1], k->dims[1]) || !ir_dim_eq(lk->dims[2], k->dims[2]))
      FAIL("needs q [L, Hq, d], k, v [L, Hkv, d], landmark keys [L/B, Hkv, d]");
    if (ir_attr_i(op, "block", 0) <= 0 || ir_attr_i(op, "topk", 0) <= 0)
      FAIL("needs block and topk");
    r = *q;
    break;
  }
  case IR_MOBA_ATTENTION:
    if (T(op, 0)->rank != 3 || !ir_type_eq(T(op, 1), T(op, 2)) || T(op, 1)->rank != 3)
      FAIL("needs q [L, Hq, d], k, v [L, Hkv, d]");
    if (ir_attr_i(op, "block", 0) <= 0 || ir_attr_i(op, "topk", 0) <= 0)
      FAIL("needs block and topk");
    r = *T(op, 0);
    break;
  case IR_NSA_COMPRESS: {
    const ir_type *k = T(op, 0), *w = T(op, 1);
    int64_t b = ir_attr_i(op, "block", 0), s = ir_attr_i(op, "stride", 0);
    if (k->rank != 3 || b <= 0 || s <= 0 || k->dims[0].div != 1 || k->dims[0].off != 0)
      FAIL("needs k [L, H, d], block and stride");
    if (w->rank != 2 || last(k).div || !is_const(w->dims[1], b * last(k).n) ||
        !ir_dim_eq(w->dims[0], last(k)))
      FAIL("weight must be [d, block * d]");
    r = *k;
    r.dims[0] = ir_seq_dim(s - b, s);
    break;
  }
  case IR_NSA_ATTENTION: {
    const ir_type *q = T(op, 0), *k = T(op, 1), *v = T(op, 2), *kc = T(op, 3),
                  *vc = T(op, 4), *gt = T(op, 5);
    if (q->rank != 3 || !ir_type_eq(k, v) || !ir_type_eq(kc, vc) || kc->rank != 3)
      FAIL("needs q, k, v and compressed kc, vc");
    if (gt->rank != 3 || !ir_dim_eq(gt->dims[1], q->dims[1]) || !is_const(gt->dims[2], 3))
      FAIL("gates must be [L, Hq, 3]");
    r = *q;
    break;
  }
  case IR_RETURN:
    return true;
  case IR_OPCODE_COUNT:
    FAIL("invalid opcode");
  }
  out[0] = r;
  return true;
}
