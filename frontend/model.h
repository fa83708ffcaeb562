/* model.h - a model description after semantic analysis.
 *
 * Every default is filled in, every name is resolved to an index, every size
 * is a checked 64-bit integer.  This is what the IR builder lowers; it is
 * also what `hsac check -v` prints, so nothing about a model stays implicit. */
#ifndef HSAC_FRONTEND_MODEL_H
#define HSAC_FRONTEND_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/diag.h"

/* Enumerations of the language; the words are in sema.c's tables. */
typedef enum { FE_NORM_RMS, FE_NORM_LAYER } fe_norm_kind;
typedef enum { FE_MLP_SWIGLU, FE_MLP_NONE } fe_mlp_kind;
typedef enum { FE_RES_STANDARD, FE_RES_BYPASS } fe_residual;
typedef enum { FE_ENC_NONE, FE_ENC_TRANSFORMER } fe_encoder_kind;
typedef enum { FE_ATTN_BIDIRECTIONAL, FE_ATTN_CAUSAL } fe_attn_mask;
typedef enum { FE_LMK_CLS, FE_LMK_MEAN, FE_LMK_TOKEN } fe_landmark_kind;
typedef enum { FE_DT_F32, FE_DT_BF16, FE_DT_F16 } fe_dtype;
typedef enum { FE_W_STICKBREAK, FE_W_SOFTMAX } fe_weighting;
typedef enum { FE_PER_TOKEN, FE_PER_CHUNK } fe_granularity;
typedef enum { FE_GROUPS_KV, FE_GROUPS_SHARED } fe_groups;
typedef enum { FE_OFFSET_NONE, FE_OFFSET_FIXED, FE_OFFSET_LEARNED } fe_offset_kind;
typedef enum { FE_MERGE_WEIGHTED, FE_MERGE_JOINT } fe_merge;

/* Layer kinds, in one X-macro list: enum value, word in the language. */
#define FE_LAYER_KINDS(X)               \
  X(FE_L_ATTN, "attn")                  \
  X(FE_L_SWA, "swa")                    \
  X(FE_L_RETRIEVE, "retrieve")          \
  X(FE_L_HSA, "hsa")                    \
  X(FE_L_LANDMARK, "landmark_attn")     \
  X(FE_L_MOBA, "moba")                  \
  X(FE_L_NSA, "nsa")

typedef enum {
#define FE_X(e, w) e,
  FE_LAYER_KINDS(FE_X)
#undef FE_X
  FE_L_COUNT
} fe_layer_kind;

/* One layer of a stack, after `repeat` and blocks are expanded.  Fields
 * that do not apply to a kind keep their zero value. */
enum { FE_MAX_PARAM_ROWS = 16 };

typedef struct fe_layer {
  fe_layer_kind kind;
  ut_loc loc;            /* the statement that produced it */
  ut_loc arg_loc[FE_MAX_PARAM_ROWS]; /* where each parameter was given, by
                                        row of its table (file -1: default) */
  int stack;             /* index into fe_model.stacks */
  int index;             /* position within its stack (weight names) */
  /* attention blocks (everything but retrieve) */
  int64_t window;        /* swa, nsa: sliding window in tokens */
  double rope_theta;     /* 0: no rotary embedding */
  fe_residual residual;
  bool mlp;              /* followed by the model's MLP block */
  int64_t kv_heads;      /* attn, swa: key/value heads (the model's unless given) */
  bool qk_norm;          /* attn, swa: per-head RMSNorm of q and k before RoPE;
                          * hsa (q_norm): of q only (the memory's k_norm does K) */
  /* retrieve */
  int memory;            /* index into fe_model.memories */
  int64_t topk;          /* retrieve, landmark_attn, moba; nsa: selected blocks */
  fe_weighting weights;
  fe_granularity per;
  fe_groups groups;
  int64_t exclude_window;/* also skip chunks starting in the last N tokens */
  bool lmk_norm;         /* RMSNorm (gains of d_r) of the query and the landmarks */
  bool pos_decay;        /* softmax weights: slot k adds k * a learned scalar */
  fe_offset_kind offset_kind;
  double offset;         /* fixed offset, or initial value of a learned one */
  int64_t length_offset; /* stickbreak: > 0, scores at position t >= N lowered by
                          * ln((t + 1) / N) (0: off) */
  const char *binding;   /* the name the retrieval is bound to */
  /* hsa */
  int retrieval;         /* index into fe_model.layers of its retrieve */
  fe_merge merge;
  int64_t softmax_plus;  /* n in softmax_n: 0 or 1 */
  /* landmark_attn, moba: block size; nsa: selection block size */
  int64_t block;
  /* nsa */
  int64_t cmp_block, cmp_stride, init_blocks, local_blocks;
} fe_layer;

typedef struct fe_stack_def {
  const char *name;
  ut_loc loc;
  int first_layer, nlayers; /* a contiguous range of fe_model.layers */
} fe_stack_def;

typedef struct fe_memory_def {
  const char *name;
  ut_loc loc;
  int source;            /* index of the stack whose output it reads */
  int64_t chunk;         /* S */
  fe_encoder_kind encoder;
  int64_t enc_layers;
  fe_attn_mask enc_mask;
  double enc_rope_theta; /* rotary embedding on in-chunk positions; 0: none */
  int64_t enc_heads, enc_kv_heads, enc_head_dim; /* the encoder's attention heads;
                                                  * -1 until resolved to the model's */
  bool enc_qk_norm;      /* per-head RMSNorm of q and k before RoPE */
  bool enc_qkv_bias;     /* q, k, v projections with a bias */
  bool enc_prenorm;      /* an RMSNorm of the chunk before the first encoder layer */
  int64_t enc_mlp_hidden;/* the encoder's SwiGLU width; -1 until resolved (model's) */
  bool k_norm;           /* per-head RMSNorm of the chunk keys (HSA layers' K) */
  fe_landmark_kind landmark;
  int64_t landmark_dim;  /* d_r */
  fe_groups landmark_groups; /* shared: one [d_r] landmark per chunk; kv: one
                              * [d_r] slice per KV group ([kv_heads, d_r]) */
  fe_dtype store;
} fe_memory_def;

typedef struct fe_model {
  const char *name;
  ut_loc loc;
  int64_t vocab, width, heads, kv_heads, head_dim;
  fe_norm_kind norm;
  double norm_eps;
  fe_mlp_kind mlp;
  int64_t mlp_hidden;
  bool tie_embeddings;
  int64_t context;       /* training context (0: not given) */
  fe_stack_def *stacks;
  int nstacks;
  fe_memory_def *memories;
  int nmemories;
  fe_layer *layers;      /* all stacks' layers, in execution order */
  int nlayers;
} fe_model;

const char *fe_layer_kind_name(fe_layer_kind k);

/* Writes the fully resolved model, every default filled in. */
void fe_model_print(const fe_model *m, FILE *out);

#endif
