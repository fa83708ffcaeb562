/* build.c - lowering a resolved model to the IR.
 *
 * Each layer becomes the ops of a pre-norm transformer block: norm,
 * projections, the layer's attention, the output projection, and the
 * residual and MLP in the form the layer asks for.  Chunk memories are
 * built right after the stack they read.  Names of weights are derived
 * here and only here. */
#include "ir/build.h"

#include <string.h>

typedef struct bld {
  ir_graph *g;
  ut_diags *d;
  const fe_model *m;
  ir_value *mem_k[16], *mem_v[16], *mem_lmk[16]; /* per memory */
  ir_value **retr_idx, **retr_w;                 /* per layer (retrieve) */
} bld;

static ir_type vec1(int64_t n) { return (ir_type){IR_F32, 1, {ir_const_dim(n)}}; }
static ir_type mat2(int64_t a, int64_t b) {
  return (ir_type){IR_F32, 2, {ir_const_dim(a), ir_const_dim(b)}};
}

static ir_value *W(bld *b, ir_type t, const char *fmt, const char *prefix,
                   const char *suffix) {
  char name[512];
  snprintf(name, sizeof name, fmt, prefix, suffix);
  return ir_weight(b->g, name, t);
}

static ir_value *emit(bld *b, ir_opcode c, int nin, ir_value **in, int na,
                      const ir_attr *a) {
  ir_op *op = ir_emit(b->g, b->d, c, in, nin, a, na);
  return op ? op->out[0] : NULL;
}

#define IN(...) ((ir_value *[]){__VA_ARGS__})
#define ATTRS(...) ((ir_attr[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((ir_value *[]){__VA_ARGS__}) / sizeof(ir_value *)))
#define OP(c, ...) emit(b, c, NARGS(__VA_ARGS__), IN(__VA_ARGS__), 0, NULL)
#define OPA(c, attrs, na, ...) emit(b, c, NARGS(__VA_ARGS__), IN(__VA_ARGS__), na, attrs)

static ir_value *norm(bld *b, ir_value *x, const char *prefix, const char *which) {
  ir_value *g = W(b, vec1(b->m->width), which[0] ? "%s.%s.weight" : "%s%s.weight",
                  prefix, which);
  ir_opcode c = b->m->norm == FE_NORM_RMS ? IR_RMSNORM : IR_LAYERNORM;
  return OPA(c, ATTRS(ir_float_attr("eps", b->m->norm_eps)), 1, x, g);
}

static ir_value *proj(bld *b, ir_value *x, int64_t out, int64_t in, const char *prefix,
                      const char *which) {
  ir_value *w = W(b, mat2(out, in), "%s.%s.weight", prefix, which);
  return OP(IR_LINEAR, x, w);
}

static ir_value *heads(bld *b, ir_value *x, int64_t h) {
  return OPA(IR_SPLIT_HEADS, ATTRS(ir_int_attr("heads", h)), 1, x);
}

static ir_value *rope(bld *b, ir_value *x, double theta) {
  if (theta <= 0) return x;
  return OPA(IR_ROPE, ATTRS(ir_float_attr("theta", theta)), 1, x);
}

/* The MLP and residual that close every block.  o is the attention output
 * after its projection, x the block's input. */
static ir_value *close_block_f(bld *b, ir_value *x, ir_value *o, const char *prefix,
                               fe_residual res, bool mlp, int64_t hidden) {
  const fe_model *m = b->m;
  ir_value *y = OP(IR_ADD, x, o);
  if (!mlp) return y;
  /* the MLP half of a stack layer is its own kernel; inside a chunk
   * encoder everything belongs to the encoder's kernel */
  const char *saved = b->g->origin;
  if (strncmp(saved, "memory", 6)) b->g->origin = ut_sprintf(b->g->arena, "%s mlp", prefix);
  ir_value *h = norm(b, y, prefix, "mlp_norm");
  ir_value *gate = proj(b, h, hidden, m->width, prefix, "mlp.gate_proj");
  ir_value *up = proj(b, h, hidden, m->width, prefix, "mlp.up_proj");
  ir_value *act = OP(IR_SILU_MUL, gate, up);
  ir_value *down = proj(b, act, m->width, hidden, prefix, "mlp.down_proj");
  /* bypass: the attention output reaches the stream only through the MLP */
  ir_value *out = OP(IR_ADD, res == FE_RES_BYPASS ? x : y, down);
  b->g->origin = saved;
  return out;
}

static ir_value *close_block(bld *b, ir_value *x, ir_value *o, const char *prefix,
                             fe_residual res, bool mlp) {
  return close_block_f(b, x, o, prefix, res, mlp, b->m->mlp_hidden);
}

/* The heads of an attention: the model's, or a chunk encoder's own. */
typedef struct head_spec {
  int64_t heads, kv_heads, dim;
  bool qk_norm, bias; /* the chunk encoder's options (memory encoder(...)) */
  int64_t mlp_hidden; /* the width of the block's MLP */
} head_spec;

static head_spec model_heads(const fe_model *m) {
  return (head_spec){m->heads, m->kv_heads, m->head_dim, false, false, m->mlp_hidden};
}

/* x + the projection's bias `PREFIX.WHICH.bias`, where the heads have one. */
static ir_value *bias(bld *b, head_spec hs, ir_value *x, int64_t out, const char *prefix,
                      const char *which) {
  if (!hs.bias) return x;
  return OP(IR_BIAS_ADD, x, W(b, vec1(out), "%s.%s.bias", prefix, which));
}

/* RMSNorm over the last axis (width n) with the gain `PREFIX.WHICH.weight`
 * [n], whatever the model's norm: the per-head and landmark norms of the
 * authors' code are RMSNorms. */
static ir_value *rms_gain(bld *b, ir_value *x, int64_t n, const char *prefix,
                          const char *which) {
  ir_value *g = W(b, vec1(n), "%s.%s.weight", prefix, which);
  return OPA(IR_RMSNORM, ATTRS(ir_float_attr("eps", b->m->norm_eps)), 1, x, g);
}

/* Per-head RMSNorm of q or k, where the heads ask for it. */
static ir_value *head_norm(bld *b, head_spec hs, ir_value *x, const char *prefix,
                           const char *which) {
  return hs.qk_norm ? rms_gain(b, x, hs.dim, prefix, which) : x;
}

/* q, k, v projections of a normalized input h ([..., T, D]). */
static void qkv_h(bld *b, head_spec hs, ir_value *h, const char *prefix, double theta,
                  ir_value **q, ir_value **k, ir_value **v, ir_value **kw) {
  const fe_model *m = b->m;
  int64_t d = hs.dim, nq = hs.heads * d, nkv = hs.kv_heads * d;
  ir_value *pq = bias(b, hs, proj(b, h, nq, m->width, prefix, "attn.q_proj"), nq, prefix,
                      "attn.q_proj");
  *q = rope(b, head_norm(b, hs, heads(b, pq, hs.heads), prefix, "attn.q_norm"), theta);
  ir_value *wk = W(b, mat2(nkv, m->width), "%s.%s.weight", prefix, "attn.k_proj");
  if (kw) *kw = wk;
  ir_value *pk = bias(b, hs, OP(IR_LINEAR, h, wk), nkv, prefix, "attn.k_proj");
  *k = rope(b, head_norm(b, hs, heads(b, pk, hs.kv_heads), prefix, "attn.k_norm"), theta);
  ir_value *pv = bias(b, hs, proj(b, h, nkv, m->width, prefix, "attn.v_proj"), nkv, prefix,
                      "attn.v_proj");
  *v = heads(b, pv, hs.kv_heads);
}

static void qkv(bld *b, ir_value *h, const char *prefix, double theta, ir_value **q,
                ir_value **k, ir_value **v, ir_value **kw) {
  qkv_h(b, model_heads(b->m), h, prefix, theta, q, k, v, kw);
}

static ir_value *out_proj_h(bld *b, head_spec hs, ir_value *a, const char *prefix) {
  return proj(b, OP(IR_MERGE_HEADS, a), b->m->width, hs.heads * hs.dim, prefix, "attn.o_proj");
}

static ir_value *out_proj(bld *b, ir_value *a, const char *prefix) {
  return out_proj_h(b, model_heads(b->m), a, prefix);
}

/* A dense or windowed softmax attention block over [..., T, D]. */
static ir_value *attn_block(bld *b, head_spec hs, ir_value *x, const char *prefix,
                            double theta, bool causal, int64_t window, fe_residual res,
                            bool mlp) {
  ir_value *q, *k, *v;
  qkv_h(b, hs, norm(b, x, prefix, "attn_norm"), prefix, theta, &q, &k, &v, NULL);
  ir_value *a = OPA(IR_ATTENTION,
                    ATTRS(ir_int_attr("causal", causal), ir_int_attr("window", window)), 2,
                    q, k, v);
  return close_block_f(b, x, out_proj_h(b, hs, a, prefix), prefix, res, mlp, hs.mlp_hidden);
}

/* The chunk memory: encoder, norm, landmark and K/V projections. */
static void build_memory(bld *b, int mi, ir_value *hstack) {
  const fe_model *m = b->m;
  const fe_memory_def *md = &m->memories[mi];
  const char *p = md->name;
  int64_t s = md->chunk, d = m->head_dim;
  b->g->origin = ut_sprintf(b->g->arena, "memory %s", p);
  ir_value *c = OPA(IR_CHUNK, ATTRS(ir_int_attr("size", s)), 1, hstack);
  bool extra = md->landmark == FE_LMK_CLS || md->landmark == FE_LMK_TOKEN;
  if (extra) {
    ir_value *row = W(b, vec1(m->width), "%s.%s", p,
                      md->landmark == FE_LMK_CLS ? "cls" : "landmark_token");
    c = OP(IR_APPEND_ROW, c, row);
  }
  if (md->enc_layers > 0 && md->enc_prenorm) c = norm(b, c, p, "enc_prenorm");
  for (int64_t j = 0; j < md->enc_layers; j++) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.encoder.%lld", p, (long long)j);
    b->g->origin = ut_sprintf(b->g->arena, "memory %s encoder %lld", p, (long long)j);
    head_spec hs = {md->enc_heads, md->enc_kv_heads, md->enc_head_dim, md->enc_qk_norm,
                    md->enc_qkv_bias, md->enc_mlp_hidden};
    c = attn_block(b, hs, c, prefix, md->enc_rope_theta, md->enc_mask == FE_ATTN_CAUSAL, 0,
                   FE_RES_STANDARD, m->mlp != FE_MLP_NONE);
  }
  b->g->origin = ut_sprintf(b->g->arena, "memory %s", p);
  ir_value *g = norm(b, c, p, "norm");
  ir_value *f, *kvsrc;
  switch (md->landmark) {
  case FE_LMK_CLS:
    f = OPA(IR_ROW, ATTRS(ir_int_attr("row", s)), 1, g);
    kvsrc = OPA(IR_ROWS, ATTRS(ir_int_attr("begin", 0), ir_int_attr("end", s)), 2, g);
    break;
  case FE_LMK_TOKEN:
    f = OPA(IR_ROW, ATTRS(ir_int_attr("row", s)), 1, g);
    kvsrc = OPA(IR_ZERO_ROW, ATTRS(ir_int_attr("row", s)), 1, g);
    break;
  default:
    f = OP(IR_MEAN_ROWS, g);
    kvsrc = g;
    break;
  }
  if (md->landmark_groups == FE_GROUPS_KV) /* [C, G, d_r]: a slice per KV group */
    b->mem_lmk[mi] = heads(b, proj(b, f, m->kv_heads * md->landmark_dim, m->width, p,
                                   "lmk_proj"),
                           m->kv_heads);
  else
    b->mem_lmk[mi] = proj(b, f, md->landmark_dim, m->width, p, "lmk_proj");
  b->mem_k[mi] = heads(b, proj(b, kvsrc, m->kv_heads * d, m->width, p, "k_proj"),
                       m->kv_heads);
  if (md->k_norm) /* the authors' k_rmsnorm: per head, before the 16-bit store */
    b->mem_k[mi] = rms_gain(b, b->mem_k[mi], d, p, "k_norm");
  b->mem_v[mi] = heads(b, proj(b, kvsrc, m->kv_heads * d, m->width, p, "v_proj"),
                       m->kv_heads);
  if (md->store != FE_DT_F32) {
    /* the cache holds K and V in 16 bits: every reader sees rounded values */
    ir_attr q = ir_str_attr("dtype", md->store == FE_DT_BF16 ? "bf16" : "f16");
    b->mem_k[mi] = OPA(IR_QUANTIZE, &q, 1, b->mem_k[mi]);
    b->mem_v[mi] = OPA(IR_QUANTIZE, &q, 1, b->mem_v[mi]);
  }
}

/* A learned scalar weight `PREFIX.WHICH` [1] that starts at `init`. */
static ir_value *learned_scalar(bld *b, const char *prefix, const char *which, double init) {
  ir_value *w = W(b, vec1(1), "%s.%s", prefix, which);
  w->def->attrs[w->def->nattrs++] = ir_float_attr("init", init);
  return w;
}

static ir_value *build_retrieve(bld *b, const fe_layer *l, int li, ir_value *x,
                                const char *prefix) {
  const fe_model *m = b->m;
  const fe_memory_def *md = &m->memories[l->memory];
  int64_t gr = l->groups == FE_GROUPS_KV ? m->kv_heads : 1, dr = md->landmark_dim;
  ir_value *q = heads(b, proj(b, norm(b, x, prefix, "norm"), gr * dr, m->width, prefix,
                              "q_proj"),
                      gr);
  ir_value *lmk = b->mem_lmk[l->memory];
  if (l->lmk_norm) { /* the authors' enable_lmk_norm: gains of d_r, per retrieval */
    q = rms_gain(b, q, dr, prefix, "q_norm");
    lmk = rms_gain(b, lmk, dr, prefix, "lmk_norm");
  }
  ir_attr a[4] = {ir_int_attr("chunk", md->chunk),
                  ir_str_attr("per", l->per == FE_PER_TOKEN ? "token" : "chunk"),
                  ir_int_attr("exclude_window", l->exclude_window)};
  int na = 3;
  ir_value *scores;
  if (l->offset_kind == FE_OFFSET_FIXED) a[na++] = ir_float_attr("offset", l->offset);
  if (l->offset_kind == FE_OFFSET_LEARNED) {
    ir_value *off = learned_scalar(b, prefix, "score_offset", l->offset);
    scores = emit(b, IR_LANDMARK_SCORES, 3, IN(q, lmk, off), na, a);
  } else {
    scores = emit(b, IR_LANDMARK_SCORES, 2, IN(q, lmk), na, a);
  }
  ir_op *top = ir_emit(b->g, b->d, IR_TOPK, IN(scores), 1,
                       ATTRS(ir_int_attr("k", l->topk)), 1);
  if (!top) return x;
  b->retr_idx[li] = top->out[0];
  if (l->pos_decay) { /* the authors' pos_decay: a learned scalar, initially 0 */
    b->retr_w[li] = OP(IR_SOFTMAX, top->out[1], learned_scalar(b, prefix, "pos_decay", 0));
  } else { /* a length_offset (stickbreak only: sema) is an attribute when set */
    ir_attr lo = ir_int_attr("length_offset", l->length_offset);
    b->retr_w[li] = emit(b, l->weights == FE_W_STICKBREAK ? IR_STICKBREAK : IR_SOFTMAX, 1,
                         IN(top->out[1]), l->length_offset > 0, &lo);
  }
  return x; /* retrieval does not change the residual stream */
}

static ir_value *build_layer(bld *b, int li, ir_value *x) {
  const fe_model *m = b->m;
  const fe_layer *l = &m->layers[li];
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s.%d", m->stacks[l->stack].name, l->index);
  b->g->origin = ut_sprintf(b->g->arena, "%s %s", prefix, fe_layer_kind_name(l->kind));
  int64_t d = m->head_dim;
  switch (l->kind) {
  case FE_L_ATTN:
  case FE_L_SWA: {
    head_spec hs = model_heads(m);
    hs.qk_norm = l->qk_norm;
    hs.kv_heads = l->kv_heads;
    return attn_block(b, hs, x, prefix, l->rope_theta, true,
                      l->kind == FE_L_SWA ? l->window : 0, l->residual, l->mlp);
  }
  case FE_L_RETRIEVE:
    return build_retrieve(b, l, li, x, prefix);
  case FE_L_HSA: {
    const fe_layer *r = &m->layers[l->retrieval];
    ir_value *h = norm(b, x, prefix, "attn_norm");
    head_spec hs = model_heads(m);
    hs.qk_norm = l->qk_norm; /* q_norm: the keys' norm belongs to the memory */
    ir_value *q = head_norm(b, hs,
                            heads(b, proj(b, h, m->heads * d, m->width, prefix, "attn.q_proj"),
                                  m->heads),
                            prefix, "attn.q_norm");
    ir_value *a = OPA(IR_CHUNK_ATTENTION,
                      ATTRS(ir_int_attr("softmax_plus", l->softmax_plus),
                            ir_str_attr("merge", l->merge == FE_MERGE_WEIGHTED ? "weighted"
                                                                               : "joint")),
                      2, q, b->mem_k[r->memory], b->mem_v[r->memory],
                      b->retr_idx[l->retrieval], b->retr_w[l->retrieval]);
    return close_block(b, x, out_proj(b, a, prefix), prefix, l->residual, l->mlp);
  }
  case FE_L_LANDMARK: {
    ir_value *h = norm(b, x, prefix, "attn_norm");
    ir_value *q, *k, *v, *wk;
    qkv(b, h, prefix, l->rope_theta, &q, &k, &v, &wk);
    ir_value *e = W(b, vec1(m->width), "%s.%s", prefix, "attn.landmark");
    ir_value *lm = OPA(IR_BLOCK_LANDMARK, ATTRS(ir_int_attr("block", l->block)), 1, h, e);
    /* the landmark key uses the layer's own key projection, and the rotary
     * position of the block's last token, as a landmark token there would */
    ir_value *lk = heads(b, OP(IR_LINEAR, lm, wk), m->kv_heads);
    if (l->rope_theta > 0)
      lk = OPA(IR_ROPE,
               ATTRS(ir_float_attr("theta", l->rope_theta), ir_int_attr("pos_mul", l->block),
                     ir_int_attr("pos_add", l->block - 1)),
               3, lk);
    ir_value *a = OPA(IR_LANDMARK_ATTENTION,
                      ATTRS(ir_int_attr("block", l->block), ir_int_attr("topk", l->topk)), 2,
                      q, k, v, lk);
    return close_block(b, x, out_proj(b, a, prefix), prefix, l->residual, l->mlp);
  }
  case FE_L_MOBA: {
    ir_value *q, *k, *v;
    qkv(b, norm(b, x, prefix, "attn_norm"), prefix, l->rope_theta, &q, &k, &v, NULL);
    ir_value *a = OPA(IR_MOBA_ATTENTION,
                      ATTRS(ir_int_attr("block", l->block), ir_int_attr("topk", l->topk)), 2,
                      q, k, v);
    return close_block(b, x, out_proj(b, a, prefix), prefix, l->residual, l->mlp);
  }
  case FE_L_NSA: {
    ir_value *h = norm(b, x, prefix, "attn_norm");
    ir_value *q, *k, *v;
    qkv(b, h, prefix, l->rope_theta, &q, &k, &v, NULL);
    ir_type cw = mat2(d, l->cmp_block * d);
    ir_attr ca[2] = {ir_int_attr("block", l->cmp_block), ir_int_attr("stride", l->cmp_stride)};
    ir_value *kc = emit(b, IR_NSA_COMPRESS, 2,
                        IN(k, W(b, cw, "%s.%s", prefix, "attn.k_compress.weight")), 2, ca);
    ir_value *vc = emit(b, IR_NSA_COMPRESS, 2,
                        IN(v, W(b, cw, "%s.%s", prefix, "attn.v_compress.weight")), 2, ca);
    ir_value *gates = OP(IR_SIGMOID, heads(b, proj(b, h, m->heads * 3, m->width, prefix,
                                                  "attn.gate_proj"),
                                           m->heads));
    ir_value *a = OPA(IR_NSA_ATTENTION,
                      ATTRS(ir_int_attr("cmp_block", l->cmp_block),
                            ir_int_attr("cmp_stride", l->cmp_stride),
                            ir_int_attr("block", l->block), ir_int_attr("topk", l->topk),
                            ir_int_attr("init_blocks", l->init_blocks),
                            ir_int_attr("local_blocks", l->local_blocks),
                            ir_int_attr("window", l->window)),
                      7, q, k, v, kc, vc, gates);
    return close_block(b, x, out_proj(b, a, prefix), prefix, l->residual, l->mlp);
  }
  case FE_L_COUNT: break;
  }
  return x;
}

ir_graph *ir_build(ut_arena *arena, ut_diags *diags, const fe_model *m) {
  int errors = diags->nerrors;
  bld bb = {.g = ir_graph_new(arena, m->name), .d = diags, .m = m};
  bld *b = &bb;
  b->retr_idx = ut_alloc_array(arena, (size_t)m->nlayers + 1, sizeof *b->retr_idx);
  b->retr_w = ut_alloc_array(arena, (size_t)m->nlayers + 1, sizeof *b->retr_w);
  ir_graph *g = b->g;
  g->origin = "embedding";
  /* The token input is the graph's first op. */
  ir_value *tok = ir_weight(g, "tokens", (ir_type){IR_I32, 1, {ir_seq_dim(0, 1)}});
  tok->def->code = IR_INPUT;
  g->input = tok;
  ir_value *emb = W(b, mat2(m->vocab, m->width), "%s.%s", "embed", "weight");
  ir_value *x = OP(IR_EMBED, tok, emb);
  for (int s = 0; s < m->nstacks; s++) {
    const fe_stack_def *sd = &m->stacks[s];
    for (int i = sd->first_layer; i < sd->first_layer + sd->nlayers; i++)
      x = build_layer(b, i, x);
    for (int j = 0; j < m->nmemories; j++)
      if (m->memories[j].source == s) build_memory(b, j, x);
  }
  g->origin = "head";
  ir_value *h = norm(b, x, "norm", "");
  ir_value *head = m->tie_embeddings ? emb : W(b, mat2(m->vocab, m->width), "%s.%s",
                                               "lm_head", "weight");
  ir_value *logits = OP(IR_LINEAR, h, head);
  ir_emit(g, diags, IR_RETURN, IN(logits), 1, NULL, 0);
  g->output = logits;
  return diags->nerrors > errors ? NULL : g;
}
