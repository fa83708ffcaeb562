/* print_model.c - writes a resolved model back as model-language text.
 *
 * Every default is written out and `repeat` and blocks are expanded, so the
 * output shows exactly what the compiler will build.  It is itself a valid
 * model file that resolves to the same model (the tests check this). */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/model.h"

static const char *const norm_w[] = {"rmsnorm", "layernorm"};
static const char *const res_w[] = {"standard", "bypass"};
static const char *const mask_w[] = {"bidirectional", "causal"};
static const char *const lmk_w[] = {"cls", "mean", "token"};
static const char *const dt_w[] = {"f32", "bf16", "f16"};
static const char *const wt_w[] = {"stickbreak", "softmax"};
static const char *const per_w[] = {"token", "chunk"};
static const char *const grp_w[] = {"kv", "shared"};
static const char *const merge_w[] = {"weighted", "joint"};

/* The shortest decimal form that reads back as the same double. */
static const char *num(char *buf, double x) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}

static void print_rope(FILE *out, double theta) {
  char b[32];
  if (theta > 0)
    fprintf(out, "rope = %s", num(b, theta));
  else
    fputs("rope = none", out);
}

static void print_attn_common(FILE *out, const fe_layer *l) {
  fputs(", ", out);
  print_rope(out, l->rope_theta);
  fprintf(out, ", residual = %s, mlp = %s", res_w[l->residual],
          l->mlp ? "true" : "false");
}

static void print_layer(FILE *out, const fe_model *m, const fe_layer *l) {
  char b[32];
  const char *stack = m->stacks[l->stack].name;
  fputs("    ", out);
  switch (l->kind) {
  case FE_L_ATTN:
    fputs("attn(", out);
    print_rope(out, l->rope_theta);
    fprintf(out, ", residual = %s, mlp = %s, qk_norm = %s, kv_heads = %lld)",
            res_w[l->residual], l->mlp ? "true" : "false", l->qk_norm ? "true" : "false",
            (long long)l->kv_heads);
    break;
  case FE_L_SWA:
    fprintf(out, "swa(window = %lld", (long long)l->window);
    print_attn_common(out, l);
    fprintf(out, ", qk_norm = %s, kv_heads = %lld)", l->qk_norm ? "true" : "false",
            (long long)l->kv_heads);
    break;
  case FE_L_RETRIEVE:
    fprintf(out, "%s_%d = retrieve(%s, topk = %lld, weights = %s, per = %s, "
                 "groups = %s, exclude_window = %lld, lmk_norm = %s, pos_decay = %s, "
                 "length_offset = %lld, ",
            l->binding, l->index, m->memories[l->memory].name, (long long)l->topk,
            wt_w[l->weights], per_w[l->per], grp_w[l->groups],
            (long long)l->exclude_window, l->lmk_norm ? "true" : "false",
            l->pos_decay ? "true" : "false", (long long)l->length_offset);
    fputs("score_offset = ", out);
    if (l->offset_kind == FE_OFFSET_NONE)
      fputs("none)", out);
    else if (l->offset_kind == FE_OFFSET_FIXED)
      fprintf(out, "%s)", num(b, l->offset));
    else
      fprintf(out, "learned(%s))", num(b, l->offset));
    break;
  case FE_L_HSA: {
    const fe_layer *r = &m->layers[l->retrieval];
    fprintf(out, "hsa(%s_%d, merge = %s, softmax_plus = %lld, residual = %s, mlp = %s, "
                 "q_norm = %s)",
            r->binding, r->index, merge_w[l->merge], (long long)l->softmax_plus,
            res_w[l->residual], l->mlp ? "true" : "false", l->qk_norm ? "true" : "false");
    break;
  }
  case FE_L_LANDMARK:
  case FE_L_MOBA:
    fprintf(out, "%s(block = %lld, topk = %lld", fe_layer_kind_name(l->kind),
            (long long)l->block, (long long)l->topk);
    print_attn_common(out, l);
    fputc(')', out);
    break;
  case FE_L_NSA:
    fprintf(out, "nsa(cmp_block = %lld, cmp_stride = %lld, block = %lld, topk = %lld, "
                 "init_blocks = %lld, local_blocks = %lld, window = %lld",
            (long long)l->cmp_block, (long long)l->cmp_stride, (long long)l->block,
            (long long)l->topk, (long long)l->init_blocks, (long long)l->local_blocks,
            (long long)l->window);
    print_attn_common(out, l);
    fputc(')', out);
    break;
  default: break;
  }
  fprintf(out, "    # %s.%d\n", stack, l->index);
}

static void print_memory(FILE *out, const fe_model *m, const fe_memory_def *md) {
  fprintf(out, "  memory %s from %s {\n", md->name, m->stacks[md->source].name);
  fprintf(out, "    chunk = %lld\n", (long long)md->chunk);
  if (md->encoder == FE_ENC_NONE) {
    fputs("    encoder = none\n", out);
  } else {
    fprintf(out, "    encoder = transformer(layers = %lld, attention = %s, ",
            (long long)md->enc_layers, mask_w[md->enc_mask]);
    print_rope(out, md->enc_rope_theta);
    fprintf(out, ", heads = %lld, kv_heads = %lld, head_dim = %lld, qk_norm = %s, "
            "qkv_bias = %s, prenorm = %s",
            (long long)md->enc_heads, (long long)md->enc_kv_heads, (long long)md->enc_head_dim,
            md->enc_qk_norm ? "true" : "false", md->enc_qkv_bias ? "true" : "false",
            md->enc_prenorm ? "true" : "false");
    if (m->mlp != FE_MLP_NONE) fprintf(out, ", mlp_hidden = %lld", (long long)md->enc_mlp_hidden);
    fputs(")\n", out);
  }
  fprintf(out, "    landmark = %s\n", lmk_w[md->landmark]);
  fprintf(out, "    landmark_dim = %lld\n", (long long)md->landmark_dim);
  fprintf(out, "    landmark_groups = %s\n",
          md->landmark_groups == FE_GROUPS_KV ? "kv" : "shared");
  fprintf(out, "    k_norm = %s\n", md->k_norm ? "true" : "false");
  fprintf(out, "    store = %s\n", dt_w[md->store]);
  fputs("  }\n", out);
}

void fe_model_print(const fe_model *m, FILE *out) {
  fprintf(out, "model %s {\n", m->name);
  fprintf(out, "  vocab = %lld\n  width = %lld\n  heads = %lld\n  kv_heads = %lld\n"
               "  head_dim = %lld\n",
          (long long)m->vocab, (long long)m->width, (long long)m->heads,
          (long long)m->kv_heads, (long long)m->head_dim);
  char b[32];
  fprintf(out, "  norm = %s(eps = %s)\n", norm_w[m->norm], num(b, m->norm_eps));
  if (m->mlp == FE_MLP_NONE)
    fputs("  mlp = none\n", out);
  else
    fprintf(out, "  mlp = swiglu(hidden = %lld)\n", (long long)m->mlp_hidden);
  fprintf(out, "  tie_embeddings = %s\n", m->tie_embeddings ? "true" : "false");
  if (m->context > 0) fprintf(out, "  context = %lld\n", (long long)m->context);
  for (int s = 0; s < m->nstacks; s++) {
    const fe_stack_def *sd = &m->stacks[s];
    fprintf(out, "  stack %s {\n", sd->name);
    for (int i = sd->first_layer; i < sd->first_layer + sd->nlayers; i++)
      print_layer(out, m, &m->layers[i]);
    fputs("  }\n", out);
    for (int j = 0; j < m->nmemories; j++)
      if (m->memories[j].source == s) print_memory(out, m, &m->memories[j]);
  }
  fputs("}\n", out);
}
