/* params.c - the parameter tables of the language (see params.h). */
#include "frontend/params.h"

#include <string.h>

#include "frontend/model.h"
#include "util/diag.h"

#define MF(f) offsetof(fe_model, f)
#define YF(f) offsetof(fe_memory_def, f)
#define LF(f) offsetof(fe_layer, f)

static const char *const norm_words[] = {"rmsnorm", "layernorm", NULL};
static const char *const mlp_words[] = {"swiglu", "none", NULL};
static const char *const res_words[] = {"standard", "bypass", NULL};
static const char *const enc_words[] = {"none", "transformer", NULL};
static const char *const mask_words[] = {"bidirectional", "causal", NULL};
static const char *const lmk_words[] = {"cls", "mean", "token", NULL};
static const char *const dtype_words[] = {"f32", "bf16", "f16", NULL};
static const char *const weight_words[] = {"stickbreak", "softmax", NULL};
static const char *const per_words[] = {"token", "chunk", NULL};
static const char *const group_words[] = {"kv", "shared", NULL};
static const char *const merge_words[] = {"weighted", "joint", NULL};

enum { MAXDIM = 1 << 20 };
#define BIG (INT64_C(1) << 40)

static const fe_param norm_sub[] = {
    {.name = "eps", .type = FE_P_FLOAT, .field = MF(norm_eps), .fmin = 1e-12,
     .fmax = 1.0, .def = "1e-6", .doc = "added to the mean square before the root"},
    {0}};

static const fe_param mlp_sub[] = {
    {.name = "hidden", .type = FE_P_INT, .field = MF(mlp_hidden), .min = 1,
     .max = MAXDIM, .def = "4 * width", .doc = "hidden width of the SwiGLU block"},
    {0}};

static const fe_param model_rows[] = {
    {.name = "vocab", .type = FE_P_INT, .field = MF(vocab), .min = 1,
     .max = 1 << 24, .doc = "vocabulary size (rows of the embedding and the LM head)"},
    {.name = "width", .type = FE_P_INT, .field = MF(width), .min = 1, .max = MAXDIM,
     .doc = "model width D (the residual stream)"},
    {.name = "heads", .type = FE_P_INT, .field = MF(heads), .min = 1, .max = 4096,
     .doc = "query heads Hq; must divide width"},
    {.name = "kv_heads", .type = FE_P_INT, .field = MF(kv_heads), .min = 1,
     .max = 4096, .def = "heads", .doc = "key/value heads Hkv; must divide heads"},
    {.name = "head_dim", .type = FE_P_INT, .field = MF(head_dim), .min = 1,
     .max = 4096, .def = "width / heads", .doc = "width d of one head"},
    {.name = "norm", .type = FE_P_ENUM, .field = MF(norm), .words = norm_words,
     .sub = norm_sub, .def = "rmsnorm(eps = 1e-6)",
     .doc = "normalization used by every block (no bias)"},
    {.name = "mlp", .type = FE_P_ENUM, .field = MF(mlp), .words = mlp_words,
     .sub = mlp_sub, .sub_word = "swiglu", .def = "swiglu(hidden = 4 * width)",
     .doc = "the MLP block that follows attention in each layer"},
    {.name = "tie_embeddings", .type = FE_P_BOOL, .field = MF(tie_embeddings),
     .def = "false", .doc = "the LM head reuses the embedding matrix"},
    {.name = "context", .type = FE_P_INT, .field = MF(context), .min = 1,
     .max = BIG, .def = "none",
     .doc = "training context in tokens; top-k must stay sparse at this length"},
    {0}};

static const fe_param enc_sub[] = {
    {.name = "layers", .type = FE_P_INT, .field = YF(enc_layers), .min = 1, .max = 64,
     .def = "1", .doc = "transformer layers over the chunk's positions"},
    {.name = "attention", .type = FE_P_ENUM, .field = YF(enc_mask),
     .words = mask_words, .def = "bidirectional",
     .doc = "in-chunk attention mask of the encoder"},
    {.name = "rope", .type = FE_P_ROPE, .field = YF(enc_rope_theta), .fmin = 1.0,
     .fmax = 1e12, .def = "10000", .doc = "rotary base on in-chunk positions, or none"},
    {.name = "heads", .type = FE_P_INT, .field = YF(enc_heads), .min = 1, .max = 4096,
     .def = "the model's heads", .doc = "query heads of the encoder's attention"},
    {.name = "kv_heads", .type = FE_P_INT, .field = YF(enc_kv_heads), .min = 1, .max = 4096,
     .def = "the model's kv_heads (its heads if heads is given)",
     .doc = "key/value heads of the encoder's attention; divides its heads"},
    {.name = "head_dim", .type = FE_P_INT, .field = YF(enc_head_dim), .min = 1, .max = 4096,
     .def = "the model's head_dim", .doc = "head width of the encoder's attention"},
    {.name = "qk_norm", .type = FE_P_BOOL, .field = YF(enc_qk_norm), .def = "false",
     .doc = "RMSNorm of each head of q and k before RoPE (learned gains of head_dim)"},
    {.name = "qkv_bias", .type = FE_P_BOOL, .field = YF(enc_qkv_bias), .def = "false",
     .doc = "q, k and v projections with a learned bias"},
    {.name = "mlp_hidden", .type = FE_P_INT, .field = YF(enc_mlp_hidden), .min = 1,
     .max = 1048576, .def = "the model's MLP width",
     .doc = "hidden width of the encoder layers' SwiGLU (the model's mlp must not be none)"},
    {.name = "prenorm", .type = FE_P_BOOL, .field = YF(enc_prenorm), .def = "false",
     .doc = "a norm of the chunk's rows (CLS or landmark row included) before the first "
            "encoder layer"},
    {0}};

static const fe_param memory_rows[] = {
    {.name = "chunk", .type = FE_P_INT, .field = YF(chunk), .min = 1, .max = 65536,
     .doc = "chunk size S in tokens; a multiple of 8 (the kernel tile)"},
    {.name = "encoder", .type = FE_P_ENUM, .field = YF(encoder), .words = enc_words,
     .sub = enc_sub, .sub_word = "transformer", .def = "none",
     .doc = "chunk encoder: none (RMSNorm only) or transformer(...)"},
    {.name = "landmark", .type = FE_P_ENUM, .field = YF(landmark), .words = lmk_words,
     .def = "mean",
     .doc = "landmark of a chunk: cls (a learned CLS row), mean (mean of the "
            "encoded rows) or token (a landmark token whose K/V row is zeroed)"},
    {.name = "landmark_dim", .type = FE_P_INT, .field = YF(landmark_dim), .min = 1,
     .max = 4096, .def = "head_dim", .doc = "width d_r of landmarks and retrieval queries"},
    {.name = "landmark_groups", .type = FE_P_ENUM, .field = YF(landmark_groups),
     .words = group_words, .def = "shared",
     .doc = "shared: one landmark per chunk for every retrieval group; kv: one "
            "slice of width d_r per KV group, read by retrievals with groups = kv"},
    {.name = "k_norm", .type = FE_P_BOOL, .field = YF(k_norm), .def = "false",
     .doc = "RMSNorm of each head of the chunk keys that HSA layers read (gains of "
            "head_dim)"},
    {.name = "store", .type = FE_P_ENUM, .field = YF(store), .words = dtype_words,
     .def = "f32", .doc = "element type of the chunk K/V cache"},
    {0}};

/* Rows every attention layer shares. */
#define COMMON_ROWS(rope_default)                                               \
  {.name = "rope", .type = FE_P_ROPE, .field = LF(rope_theta), .fmin = 1.0,     \
   .fmax = 1e12, .def = rope_default, .doc = "rotary base, or none"},           \
  {.name = "residual", .type = FE_P_ENUM, .field = LF(residual),               \
   .words = res_words, .def = "standard",                                      \
   .doc = "standard: x + o, then + MLP; bypass: x + MLP(norm(x + o))"},        \
  {.name = "mlp", .type = FE_P_BOOL, .field = LF(mlp), .def = "true",           \
   .doc = "follow the attention with the model's MLP block"}

/* Per-head q/k norm of a dense or windowed attention layer. */
#define QK_NORM_ROW                                                             \
  {.name = "qk_norm", .type = FE_P_BOOL, .field = LF(qk_norm), .def = "false",  \
   .doc = "RMSNorm of each head of q and k before RoPE (learned gains of head_dim)"}

/* A dense or windowed attention layer's own number of K/V heads: the
 * authors' SWA layers have num_key_value_heads where their HSA layers have
 * num_kv_heads (docs/import.md). */
#define KV_HEADS_ROW                                                            \
  {.name = "kv_heads", .type = FE_P_INT, .field = LF(kv_heads), .min = 1,       \
   .max = 4096, .def = "the model's kv_heads",                                 \
   .doc = "key/value heads of this layer; divides the model's heads"}

static const fe_param attn_rows[] = {COMMON_ROWS("10000"), QK_NORM_ROW, KV_HEADS_ROW, {0}};

static const fe_param swa_rows[] = {
    {.name = "window", .type = FE_P_INT, .field = LF(window), .min = 1, .max = BIG,
     .doc = "sliding window W: a token sees itself and the W-1 tokens before it"},
    COMMON_ROWS("10000"),
    QK_NORM_ROW,
    KV_HEADS_ROW,
    {0}};

static const fe_param retrieve_rows[] = {
    {.name = "memory", .type = FE_P_REF, .field = LF(memory),
     .doc = "positional: the chunk memory to retrieve from"},
    {.name = "topk", .type = FE_P_INT, .field = LF(topk), .min = 1, .max = 4096,
     .def = "8", .doc = "chunks selected per query (K)"},
    {.name = "weights", .type = FE_P_ENUM, .field = LF(weights),
     .words = weight_words, .def = "stickbreak",
     .doc = "weights over the selected chunks, most recent first"},
    {.name = "per", .type = FE_P_ENUM, .field = LF(per), .words = per_words,
     .def = "token", .doc = "retrieve for every token, or once per chunk (DRT/GCA)"},
    {.name = "groups", .type = FE_P_ENUM, .field = LF(groups), .words = group_words,
     .def = "kv", .doc = "one retrieval per KV head, or one shared by all heads"},
    {.name = "exclude_window", .type = FE_P_INT, .field = LF(exclude_window),
     .min = 0, .max = BIG, .def = "0",
     .doc = "also skip chunks that start within the last N tokens"},
    {.name = "pos_decay", .type = FE_P_BOOL, .field = LF(pos_decay), .def = "false",
     .doc = "with weights = softmax: slot k of the top-k (most recent first) adds k times "
            "a learned scalar (initially 0) to its score"},
    {.name = "lmk_norm", .type = FE_P_BOOL, .field = LF(lmk_norm), .def = "false",
     .doc = "RMSNorm of each group's query and of the landmarks (this retrieval's own gains "
            "of width d_r) before scoring"},
    {.name = "score_offset", .type = FE_P_OFFSET, .field = LF(offset),
     .field2 = LF(offset_kind), .fmin = -1e6, .fmax = 1e6, .def = "none",
     .doc = "added to every retrieval score: a number, or learned(initial)"},
    {.name = "length_offset", .type = FE_P_INT, .field = LF(length_offset), .min = 0,
     .max = BIG, .def = "0",
     .doc = "with weights = stickbreak: past N tokens, the scores of the token at "
            "position t are lowered by ln((t + 1) / N) before the weights (0: off)"},
    {0}};

static const fe_param hsa_rows[] = {
    {.name = "retrieval", .type = FE_P_REF, .field = LF(retrieval),
     .doc = "positional: the retrieval result this layer attends with"},
    {.name = "merge", .type = FE_P_ENUM, .field = LF(merge), .words = merge_words,
     .def = "weighted",
     .doc = "weighted: per-chunk softmax mixed by the weights; joint: one softmax"},
    {.name = "softmax_plus", .type = FE_P_INT, .field = LF(softmax_plus), .min = 0,
     .max = 1, .def = "0", .doc = "n added to each chunk's softmax denominator"},
    {.name = "residual", .type = FE_P_ENUM, .field = LF(residual),
     .words = res_words, .def = "standard",
     .doc = "standard: x + o, then + MLP; bypass: x + MLP(norm(x + o))"},
    {.name = "mlp", .type = FE_P_BOOL, .field = LF(mlp), .def = "true",
     .doc = "follow the attention with the model's MLP block"},
    {.name = "q_norm", .type = FE_P_BOOL, .field = LF(qk_norm), .def = "false",
     .doc = "RMSNorm of each query head (gains of head_dim); the memory's k_norm "
            "normalizes the keys"},
    {0}};

static const fe_param landmark_rows[] = {
    {.name = "block", .type = FE_P_INT, .field = LF(block), .min = 1, .max = 65536,
     .def = "64", .doc = "block size; each block has one landmark key"},
    {.name = "topk", .type = FE_P_INT, .field = LF(topk), .min = 1, .max = 4096,
     .def = "4", .doc = "blocks selected per head and token"},
    COMMON_ROWS("10000"),
    {0}};

static const fe_param moba_rows[] = {
    {.name = "block", .type = FE_P_INT, .field = LF(block), .min = 1, .max = 65536,
     .def = "64", .doc = "block size; a block's gate key is the mean of its keys"},
    {.name = "topk", .type = FE_P_INT, .field = LF(topk), .min = 1, .max = 4096,
     .def = "3", .doc = "past blocks selected, besides the token's own block"},
    COMMON_ROWS("10000"),
    {0}};

static const fe_param nsa_rows[] = {
    {.name = "cmp_block", .type = FE_P_INT, .field = LF(cmp_block), .min = 1,
     .max = 65536, .def = "32", .doc = "tokens per compressed block"},
    {.name = "cmp_stride", .type = FE_P_INT, .field = LF(cmp_stride), .min = 1,
     .max = 65536, .def = "16", .doc = "stride between compressed blocks"},
    {.name = "block", .type = FE_P_INT, .field = LF(block), .min = 1, .max = 65536,
     .def = "64", .doc = "selection block size"},
    {.name = "topk", .type = FE_P_INT, .field = LF(topk), .min = 1, .max = 4096,
     .def = "16", .doc = "selected blocks, counting the forced ones"},
    {.name = "init_blocks", .type = FE_P_INT, .field = LF(init_blocks), .min = 0,
     .max = 4096, .def = "1", .doc = "leading blocks always selected"},
    {.name = "local_blocks", .type = FE_P_INT, .field = LF(local_blocks), .min = 0,
     .max = 4096, .def = "2", .doc = "most recent blocks always selected"},
    {.name = "window", .type = FE_P_INT, .field = LF(window), .min = 1, .max = BIG,
     .def = "512", .doc = "sliding-window branch size"},
    COMMON_ROWS("10000"),
    {0}};

const fe_param_table fe_model_params = {"model", model_rows,
                                        "settings at the top of a model body"};
const fe_param_table fe_memory_params = {"memory", memory_rows,
                                         "settings inside memory NAME from STACK { }"};
const fe_param_table fe_layer_params[] = {
    [FE_L_ATTN] = {"attn", attn_rows, "dense causal attention + MLP"},
    [FE_L_SWA] = {"swa", swa_rows, "sliding-window attention + MLP"},
    [FE_L_RETRIEVE] = {"retrieve", retrieve_rows,
                       "landmark scoring and top-k over a chunk memory (bound to a name)"},
    [FE_L_HSA] = {"hsa", hsa_rows, "hierarchical sparse attention over retrieved chunks + MLP"},
    [FE_L_LANDMARK] = {"landmark_attn", landmark_rows,
                       "Landmark Attention: grouped softmax over top-k blocks + MLP"},
    [FE_L_MOBA] = {"moba", moba_rows, "MoBA: joint softmax over top-k blocks and the own block + MLP"},
    [FE_L_NSA] = {"nsa", nsa_rows,
                  "NSA: compressed, selected and window branches mixed by gates + MLP"},
};

const fe_param *fe_param_find(const fe_param *params, const char *name) {
  for (const fe_param *p = params; p && p->name; p++)
    if (strcmp(p->name, name) == 0) return p;
  return NULL;
}

const char *fe_param_suggest(const fe_param *params, const char *name) {
  const char *best = NULL;
  int best_d = 3;
  for (const fe_param *p = params; p && p->name; p++) {
    int d = ut_edit_distance(p->name, name);
    if (d < best_d) {
      best_d = d;
      best = p->name;
    }
  }
  return best;
}

static void print_type(const fe_param *p, FILE *out) {
  switch (p->type) {
  case FE_P_INT:
    fprintf(out, "integer %lld..%lld", (long long)p->min, (long long)p->max);
    break;
  case FE_P_FLOAT: fprintf(out, "number %g..%g", p->fmin, p->fmax); break;
  case FE_P_BOOL: fputs("true \\| false", out); break;
  case FE_P_ROPE: fputs("number > 0 \\| none", out); break;
  case FE_P_OFFSET: fputs("none \\| number \\| learned(number)", out); break;
  case FE_P_REF: fputs("name", out); break;
  case FE_P_ENUM:
    for (int i = 0; p->words[i]; i++) fprintf(out, "%s%s", i ? " \\| " : "", p->words[i]);
    break;
  }
}

static void print_rows(const char *prefix, const fe_param *rows, FILE *out) {
  for (const fe_param *p = rows; p->name; p++) {
    fprintf(out, "| `%s%s` | ", prefix, p->name);
    print_type(p, out);
    fprintf(out, " | %s | %s |\n", p->def ? p->def : "required", p->doc);
    if (p->sub) {
      for (const fe_param *s = p->sub; s->name; s++) {
        fprintf(out, "| `%s%s(%s = ...)` | ", prefix, p->name, s->name);
        print_type(s, out);
        fprintf(out, " | %s | %s |\n", s->def ? s->def : "required", s->doc);
      }
    }
  }
}

static void print_table(const fe_param_table *t, FILE *out) {
  fprintf(out, "### `%s`: %s\n\n", t->what, t->doc);
  fputs("| parameter | values | default | meaning |\n|---|---|---|---|\n", out);
  print_rows("", t->params, out);
  fputc('\n', out);
}

void fe_params_print_markdown(FILE *out) {
  print_table(&fe_model_params, out);
  print_table(&fe_memory_params, out);
  for (int k = 0; k < FE_L_COUNT; k++) print_table(&fe_layer_params[k], out);
}
