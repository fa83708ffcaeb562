/* authors.c - `hsac import`: the paper authors' SWA + HSA checkpoints.
 *
 * The authors' model (DRTForCausalLM) is a list of layers under
 * backbone.layers.{i}: num_lower_layers SWA decoder layers, then one
 * chunking layer (the chunk encoder, the K/V and landmark projections),
 * then per upper group a retrieval layer, an HSA layer and
 * num_upper_layers / num_upper_groups SWA decoder layers.  Each maps onto
 * hsac's language one to one (docs/import.md has the table, field by
 * field); the importer writes that model, compiles it, and then asks, for
 * every weight the compiled model has, which checkpoint tensor holds it.
 * The answer comes from the pairs recorded while the model text was
 * written, so the text and the renaming cannot drift apart. */
#include "import/import.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ir/ir.h"
#include "passes/pipeline.h"
#include "runtime/safetensors.h"
#include "util/fileio.h"
#include "util/map.h"

enum {
  MAX_CONFIG_BYTES = 1 << 20,
  MAX_INDEX_BYTES = 64 << 20,
  MAX_SHARDS = 1024,
};

/* ---- the import's state --------------------------------------------------- */

/* One hsac weight and the checkpoint tensor it is read from. */
typedef struct pair {
  const char *hsac, *src;
  bool reshape; /* the same elements under another shape ([1, 1, D] -> [D]) */
} pair;

typedef struct shard {
  const char *path;
  st_file f;
  bool open;
} shard;

typedef struct imp {
  const hsac_import_opts *o;
  hsac_import_report *r;
  ut_arena *a;
  char *err;
  size_t errsize;
  hsart_status st;       /* the first error */
  /* config.json */
  const char *cfg_path;
  cJSON *cfg;
  ut_map known;          /* fields the importer read or knows to ignore */
  /* the model text and the renaming */
  FILE *text;
  char *text_buf;
  size_t text_len;
  ut_map pairs;          /* hsac name -> pair */
  ut_vec notes, problems;
  /* the checkpoint */
  shard *shards;
  int nshards;
  ut_map where;          /* tensor name -> shard* */
  ut_map used;           /* tensor name -> non-NULL once placed */
  ut_map unread;         /* tensor name -> its note: deliberately left out */
  hsac_compilation c;    /* the written model, compiled */
  bool compiled;
  st_out_tensor *out;    /* the weights to write (malloc'd) */
} imp;

__attribute__((format(printf, 3, 4))) static bool fail(imp *m, hsart_status st,
                                                       const char *fmt, ...) {
  if (m->st != HSART_OK) return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->err, m->errsize, fmt, ap);
  va_end(ap);
  m->st = st;
  return false;
}

static void vpush(imp *m, ut_vec *v, const char *fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  ut_vec_push(m->a, v, ut_strdup(m->a, buf));
}

/* A line of the report's notes, or of its problems. */
__attribute__((format(printf, 2, 3))) static void note(imp *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vpush(m, &m->notes, fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void problem(imp *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vpush(m, &m->problems, fmt, ap);
  va_end(ap);
}

/* ---- config.json ---------------------------------------------------------- */

static const cJSON *field(imp *m, const char *key) {
  ut_map_put(&m->known, ut_strdup(m->a, key), (void *)"read");
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(m->cfg, key);
  return j && !cJSON_IsNull(j) ? j : NULL;
}

/* An integer field in [min, max]; def when absent (required: an error). */
static int64_t cfg_int(imp *m, const char *key, bool required, int64_t def, int64_t min,
                       int64_t max) {
  const cJSON *j = field(m, key);
  if (!j) {
    if (required)
      fail(m, HSART_EFORMAT, "%s: the field '%s' is missing (the authors' model needs it)",
           m->cfg_path, key);
    return def;
  }
  double v = cJSON_IsNumber(j) ? j->valuedouble : NAN;
  if (!(v >= (double)min && v <= (double)max && v == floor(v))) {
    fail(m, HSART_EFORMAT, "%s: the field '%s' must be an integer from %lld to %lld",
         m->cfg_path, key, (long long)min, (long long)max);
    return def;
  }
  return (int64_t)v;
}

static bool cfg_bool(imp *m, const char *key, bool def) {
  const cJSON *j = field(m, key);
  if (!j) return def;
  if (!cJSON_IsBool(j)) {
    fail(m, HSART_EFORMAT, "%s: the field '%s' must be true or false", m->cfg_path, key);
    return def;
  }
  return cJSON_IsTrue(j);
}

static double cfg_num(imp *m, const char *key, double def, double min, double max) {
  const cJSON *j = field(m, key);
  if (!j) return def;
  double v = cJSON_IsNumber(j) ? j->valuedouble : NAN;
  if (!(v >= min && v <= max)) {
    fail(m, HSART_EFORMAT, "%s: the field '%s' must be a number from %g to %g", m->cfg_path,
         key, min, max);
    return def;
  }
  return v;
}

static const char *cfg_str(imp *m, const char *key, const char *def) {
  const cJSON *j = field(m, key);
  if (!j) return def;
  if (!cJSON_IsString(j)) {
    fail(m, HSART_EFORMAT, "%s: the field '%s' must be a string", m->cfg_path, key);
    return def;
  }
  return j->valuestring;
}

/* A config field hsac cannot represent. */
static bool refuse(imp *m, const char *key, const char *why) {
  return fail(m, HSART_EUNSUPPORTED, "%s: '%s': %s", m->cfg_path, key, why);
}

/* Fields the authors' code (or transformers) has that do not change what
 * the model computes at inference; each is noted in the report. */
static const struct {
  const char *key, *why;
} ignored_fields[] = {
    {"initializer_range", "training only (initialization)"},
    {"enable_gumbel_noise", "training only (noise on retrieval scores)"},
    {"encoder_dropout", "training only"},
    {"attention_dropout", "training only"},
    {"use_cache", "an inference setting of transformers"},
    {"flash_inference", "an inference setting of the authors' code (segmenting)"},
    {"inference_segment", "an inference setting of the authors' code (segmenting)"},
    {"offloading_to_cpu", "where the authors' code keeps the chunk cache"},
    {"residual_in_fp32", "a precision setting (hsac computes in f32)"},
    {"torch_dtype", "the checkpoint's dtype; the tensors keep theirs"},
    {"pad_token_id", "a tokenizer setting"},
    {"bos_token_id", "a tokenizer setting"},
    {"eos_token_id", "a tokenizer setting"},
    {"lmk_token_id", "a tokenizer setting (not used by the SWA + HSA model)"},
    {"num_hidden_layers", "the authors' model overwrites it with its own layer count"},
    {"max_position_embeddings", "the size of the RoPE table; hsac computes angles as needed"},
    {"enable_stable_enc", "passed to the encoder's config, which does not read it"},
    {"pretraining_tp", "a Llama training setting, not used by this model"},
    {"mlp_bias", "the authors' SwiGLU (Liger) has no bias whatever this says"},
    {"model_type", "transformers' bookkeeping"},
    {"transformers_version", "transformers' bookkeeping"},
    {"architectures", "checked: must name DRTForCausalLM where present"},
    {"_name_or_path", "transformers' bookkeeping"},
};

static void report_unknown_fields(imp *m) {
  for (const cJSON *j = m->cfg->child; j; j = j->next) {
    if (!j->string || ut_map_get(&m->known, j->string)) continue;
    bool listed = false;
    for (size_t i = 0; i < sizeof ignored_fields / sizeof ignored_fields[0]; i++)
      if (!strcmp(j->string, ignored_fields[i].key)) {
        note(m, "config field '%s' ignored: %s", j->string, ignored_fields[i].why);
        listed = true;
      }
    if (!listed) {
      char name[200];
      st_printable(j->string, name, sizeof name);
      note(m, "config field '%s' is not known to the importer and was not read: check that "
              "it does not change the model",
           name);
    }
  }
}

/* ---- the model as the config describes it -------------------------------- */

typedef struct arch {
  int64_t vocab, width, heads, kv_heads, swa_kv_heads, head_dim, mlp_hidden;
  int64_t lower, upper, groups, per_group, chunk, topk, retrieval_dim, enc_layers;
  int64_t window, retrieval_window, hsa_window; /* authors' windows (flash-attn's left) */
  double eps, rope_theta;
  bool tie, qk_norm, softmax1, hsa_only, reset_residual, singlehead, softmax,
      mask_window, pos_decay, lmk_norm, enc_prenorm, enc_cls;
} arch;

/* Field A (value a) must divide field B (value b). */
static bool divides(imp *m, const char *ka, int64_t a, const char *kb, int64_t b) {
  if (b % a == 0) return true;
  return fail(m, HSART_EFORMAT, "%s: %s (%lld) does not divide %s (%lld)", m->cfg_path, ka,
              (long long)a, kb, (long long)b);
}

static bool read_arch(imp *m, arch *A) {
  memset(A, 0, sizeof *A);
  const cJSON *archs = field(m, "architectures");
  if (archs) {
    bool ok = false;
    const cJSON *x;
    cJSON_ArrayForEach(x, archs) ok |= cJSON_IsString(x) && !strcmp(x->valuestring, "DRTForCausalLM");
    if (!ok)
      return refuse(m, "architectures",
                    "the importer reads the authors' SWA + HSA model (DRTForCausalLM) only");
  }
  A->vocab = cfg_int(m, "vocab_size", true, 0, 1, 1 << 24);
  A->width = cfg_int(m, "hidden_size", true, 0, 1, 1 << 20);
  A->heads = cfg_int(m, "num_attention_heads", true, 1, 1, 4096);
  A->lower = cfg_int(m, "num_lower_layers", true, 0, 0, 4096);
  A->groups = cfg_int(m, "num_upper_groups", true, 0, 0, 4096);
  A->upper = cfg_int(m, "num_upper_layers", A->groups > 0, 0, 0, 4096);
  A->swa_kv_heads = cfg_int(m, "num_key_value_heads", false, A->heads, 1, 4096);
  A->kv_heads = cfg_int(m, "num_kv_heads", A->groups > 0, A->swa_kv_heads, 1, 4096);
  A->mlp_hidden = cfg_int(m, "intermediate_size", true, 0, 1, 1 << 20);
  A->tie = cfg_bool(m, "tie_word_embeddings", false);
  /* the SWA layers' window: flash-attn's window_size = (W, 0), W + 1 keys */
  int64_t w1 = cfg_int(m, "sliding_window", false, 0, 0, INT64_C(1) << 40);
  int64_t w2 = cfg_int(m, "slide_window", false, 0, 0, INT64_C(1) << 40);
  A->window = w1;
  A->retrieval_window = w1 > w2 ? w1 : w2;
  double rms_eps = cfg_num(m, "rms_norm_eps", 1e-6, 1e-12, 1.0);
  double ln_eps = cfg_num(m, "layer_norm_epsilon", 1e-6, 1e-12, 1.0);
  A->rope_theta = cfg_num(m, "rope_theta", 10000.0, 1.0, 1e12);
  const char *act = cfg_str(m, "hidden_act", "silu");
  bool attn_bias = cfg_bool(m, "attention_bias", false);
  bool has_rope_scaling = field(m, "rope_scaling") != NULL;
  int64_t head_dim = cfg_int(m, "head_dim", false, 0, 1, 4096);
  if (m->st != HSART_OK) return false;

  if (!divides(m, "num_attention_heads", A->heads, "hidden_size", A->width)) return false;
  A->head_dim = A->width / A->heads;
  if (head_dim && head_dim != A->head_dim)
    return refuse(m, "head_dim", "the SWA layers' head width must be hidden_size / "
                  "num_attention_heads, the HSA layers' (hsac has one head width per model)");
  if (!divides(m, "num_key_value_heads", A->swa_kv_heads, "num_attention_heads", A->heads) ||
      !divides(m, "num_kv_heads", A->kv_heads, "num_attention_heads", A->heads))
    return false;
  if (strcmp(act, "silu") != 0)
    return refuse(m, "hidden_act", "hsac's MLP is SwiGLU (silu); the authors' SWA layers use "
                  "Liger's SwiGLU, and their encoder hidden_act");
  if (attn_bias)
    return refuse(m, "attention_bias", "hsac's SWA layers have no projection biases");
  if (has_rope_scaling)
    return refuse(m, "rope_scaling", "hsac's RoPE is unscaled (rope_theta only)");
  if (A->lower + A->groups == 0)
    return refuse(m, "num_lower_layers", "the model has no layers");

  if (A->groups > 0) {
    if (A->lower == 0)
      return refuse(m, "num_lower_layers", "with upper groups hsac builds the chunk memory "
                    "from a stack of lower layers; 0 lower layers is not expressible");
    if (!divides(m, "num_upper_groups", A->groups, "num_upper_layers", A->upper)) return false;
    A->per_group = A->upper / A->groups;
    A->chunk = cfg_int(m, "chunk_size", true, 0, 1, 65536);
    A->topk = cfg_int(m, "chunk_topk", true, 0, 1, 4096);
    A->retrieval_dim = cfg_int(m, "retrieval_dim", true, 0, 1, 1 << 20);
    A->enc_layers = cfg_int(m, "encoder_layers", true, 0, 0, 64);
    A->qk_norm = cfg_bool(m, "enable_qk_norm", false);
    A->softmax1 = cfg_bool(m, "enable_softmax1", false);
    A->hsa_only = cfg_bool(m, "hsa_only", true);
    bool skip = cfg_bool(m, "skip_hsa", false);
    A->hsa_window = cfg_int(m, "hsa_sliding_window", false, A->window, 0, INT64_C(1) << 40);
    A->reset_residual = cfg_bool(m, "reset_hsa_residual", false);
    A->singlehead = cfg_bool(m, "singlehead_retrieval", false);
    A->softmax = cfg_bool(m, "enable_softmax", false);
    A->mask_window = cfg_bool(m, "mask_slide_window", false);
    A->pos_decay = cfg_bool(m, "enable_pos_decay", false);
    A->lmk_norm = cfg_bool(m, "enable_lmk_norm", false);
    A->enc_prenorm = A->enc_layers > 0 && cfg_bool(m, "enc_prenorm", false);
    A->enc_cls = cfg_bool(m, "enable_enc_cls", A->enc_layers > 0);
    if (m->st != HSART_OK) return false;
    if (skip)
      return refuse(m, "skip_hsa", "the authors' HSA layers then skip their attention and "
                    "MLP; import the model without its upper groups instead");
    if (A->chunk % 8 != 0)
      return refuse(m, "chunk_size", "hsac's chunk size is a multiple of 8 (the kernel tile)");
    if (A->enc_cls && A->enc_layers == 0)
      return refuse(m, "enable_enc_cls", "a CLS landmark needs an encoder (encoder_layers > 0)");
    int64_t g = A->singlehead ? 1 : A->kv_heads;
    if (A->retrieval_dim % g != 0)
      return fail(m, HSART_EFORMAT, "%s: retrieval_dim (%lld) is not a multiple of the %lld "
                  "retrieval groups (num_kv_heads)", m->cfg_path, (long long)A->retrieval_dim,
                  (long long)g);
    if (A->retrieval_dim / g > 4096)
      return refuse(m, "retrieval_dim", "hsac's landmark width per group is at most 4096");
    if (A->mask_window && A->retrieval_window < A->chunk)
      return refuse(m, "mask_slide_window", "with a window shorter than a chunk the authors' "
                    "mask lets a token see its own incomplete chunk; hsac does not");
    if (!A->hsa_only && A->hsa_window < 1)
      return refuse(m, "hsa_sliding_window", "the HSA layers' own SWA needs a window");
  }
  if (A->window < 1)
    return fail(m, HSART_EFORMAT, "%s: the field 'sliding_window' is missing or 0 (the SWA "
                "layers need a window)", m->cfg_path);
  /* the language's limits (docs/language.md) */
  int64_t layers = A->lower + A->groups * (A->hsa_only ? 2 : 3) + A->upper;
  if (layers > 4096)
    return refuse(m, "num_upper_layers", "the model would have more than 4096 layers, hsac's "
                  "limit");
  if (A->head_dim > 4096)
    return refuse(m, "hidden_size", "hidden_size / num_attention_heads is the head width, at "
                  "most 4096 in hsac");
  if (A->enc_layers > 0 && 8 * A->width / 192 * 64 == 0)
    return refuse(m, "hidden_size", "the encoder's MLP (int(hidden_size * 8 / 3) // 64 * 64) "
                  "has no width below 24; hsac's MLPs need one");
  if (A->enc_layers > 0 && 8 * A->width / 192 * 64 > (1 << 20))
    return refuse(m, "hidden_size", "the encoder's MLP (int(hidden_size * 8 / 3) // 64 * 64) "
                  "would be wider than hsac's 1048576");
  /* hsac has one norm epsilon per model: the authors' RMSNorms of the SWA
   * layers use rms_norm_eps, the final norm layer_norm_epsilon, and every
   * other (HSA, retrieval, chunking, encoder) Liger's and Llama's 1e-6 */
  A->eps = rms_eps;
  if (ln_eps != rms_eps)
    return refuse(m, "layer_norm_epsilon", "it differs from rms_norm_eps; hsac has one norm "
                  "epsilon per model");
  if (A->groups > 0 && fabs(rms_eps - 1e-6) > 1e-18)
    return refuse(m, "rms_norm_eps", "the authors' HSA, retrieval and encoder norms use 1e-6; "
                  "hsac has one norm epsilon per model, so this must be 1e-6 too");
  return true;
}

/* ---- writing the model text and recording the renaming -------------------- */

__attribute__((format(printf, 3, 4))) static void link_(imp *m, const char *hsac,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  pair *p = ut_alloc(m->a, sizeof *p);
  p->hsac = ut_strdup(m->a, hsac);
  p->src = ut_strdup(m->a, buf);
  ut_map_put(&m->pairs, p->hsac, p);
}

/* hsac weight PREFIX.SUFFIX <- checkpoint tensor SRC_PREFIX.SRC_SUFFIX */
static void link2(imp *m, const char *prefix, const char *suffix, const char *src_prefix,
                  const char *src_suffix) {
  char h[512];
  snprintf(h, sizeof h, "%s.%s", prefix, suffix);
  link_(m, h, "%s.%s", src_prefix, src_suffix);
}

static const char *const mlp_names[] = {"gate_proj", "up_proj", "down_proj"};

/* A decoder layer (input norm, attention, post-attention norm, SwiGLU):
 * the authors' SWA layers and their encoder's (Qwen2) layers. */
static void link_decoder(imp *m, const char *hp, const char *ap, bool qk_norm, bool bias,
                         bool mlp) {
  char a[512];
  link2(m, hp, "attn_norm.weight", ap, "input_layernorm.weight");
  static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
  for (int i = 0; i < 4; i++) {
    char hs[64];
    snprintf(hs, sizeof hs, "attn.%s.weight", proj[i]);
    snprintf(a, sizeof a, "self_attn.%s.weight", proj[i]);
    link2(m, hp, hs, ap, a);
    if (bias && i < 3) {
      snprintf(hs, sizeof hs, "attn.%s.bias", proj[i]);
      snprintf(a, sizeof a, "self_attn.%s.bias", proj[i]);
      link2(m, hp, hs, ap, a);
    }
  }
  if (qk_norm) {
    link2(m, hp, "attn.q_norm.weight", ap, "self_attn.q_norm.weight");
    link2(m, hp, "attn.k_norm.weight", ap, "self_attn.k_norm.weight");
  }
  if (!mlp) return;
  link2(m, hp, "mlp_norm.weight", ap, "post_attention_layernorm.weight");
  for (int i = 0; i < 3; i++) {
    char hs[64];
    snprintf(hs, sizeof hs, "mlp.%s.weight", mlp_names[i]);
    snprintf(a, sizeof a, "mlp.%s.weight", mlp_names[i]);
    link2(m, hp, hs, ap, a);
  }
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v (1e-06, not
 * 9.9999999999999995e-07). */
static const char *num(char *buf, size_t n, double v) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

static void write_swa(imp *m, const arch *A, int64_t window, bool mlp) {
  char theta[32];
  fprintf(m->text, "swa(window = %lld, rope = %s, qk_norm = true, kv_heads = %lld%s)",
          (long long)(window + 1), num(theta, sizeof theta, A->rope_theta),
          (long long)A->swa_kv_heads,
          mlp ? "" : ", mlp = false");
}

static void write_model(imp *m, const arch *A) {
  FILE *t = m->text;
  const char *name = m->o->name ? m->o->name : "imported";
  fprintf(t, "# Written by `hsac import` (hsac %s) from %s: the paper authors'\n",
          m->o->version ? m->o->version : "", m->cfg_path);
  fprintf(t, "# SWA + HSA model (DRTForCausalLM).  docs/import.md maps each config field.\n");
  fprintf(t, "# The SWA windows are the config's sliding_window + 1: the authors'\n");
  fprintf(t, "# flash-attn window (W, 0) sees W earlier tokens and the token itself.\n\n");
  fprintf(t, "model %s {\n", name);
  fprintf(t, "  vocab = %lld\n  width = %lld\n", (long long)A->vocab, (long long)A->width);
  fprintf(t, "  heads = %lld, kv_heads = %lld, head_dim = %lld\n", (long long)A->heads,
          (long long)A->kv_heads, (long long)A->head_dim);
  char eps[32];
  fprintf(t, "  norm = rmsnorm(eps = %s)\n", num(eps, sizeof eps, A->eps));
  fprintf(t, "  mlp = swiglu(hidden = %lld)\n", (long long)A->mlp_hidden);
  fprintf(t, "  tie_embeddings = %s\n\n", A->tie ? "true" : "false");

  link_(m, "embed.weight", "backbone.embeddings.weight");
  link_(m, "norm.weight", "backbone.norm_f.weight");
  if (!A->tie) link_(m, "lm_head.weight", "lm_head.weight");

  int64_t layer = 0; /* backbone.layers.{layer} */
  char hp[64], ap[64];
  fprintf(t, "  stack lower {\n");
  for (int64_t i = 0; i < A->lower; i++, layer++) {
    fprintf(t, "    ");
    write_swa(m, A, A->window, true);
    fprintf(t, "   # backbone.layers.%lld\n", (long long)layer);
    snprintf(hp, sizeof hp, "lower.%lld", (long long)i);
    snprintf(ap, sizeof ap, "backbone.layers.%lld", (long long)layer);
    link_decoder(m, hp, ap, true, false, true);
  }
  fprintf(t, "  }\n");
  if (A->groups == 0) {
    fprintf(t, "}\n");
    return;
  }

  /* the chunking layer */
  snprintf(ap, sizeof ap, "backbone.layers.%lld", (long long)layer++);
  int64_t g = A->singlehead ? 1 : A->kv_heads;
  fprintf(t, "\n  memory mem from lower {   # %s\n", ap);
  fprintf(t, "    chunk = %lld\n", (long long)A->chunk);
  if (A->enc_layers > 0) {
    fprintf(t, "    encoder = transformer(layers = %lld, attention = bidirectional, rope = 10000,\n"
               "                          heads = %lld, kv_heads = %lld, head_dim = %lld,\n"
               "                          qk_norm = true, qkv_bias = true, mlp_hidden = %lld,\n"
               "                          prenorm = %s)\n",
            (long long)A->enc_layers, (long long)A->heads, (long long)A->swa_kv_heads,
            (long long)A->head_dim, (long long)(8 * A->width / 192 * 64),
            A->enc_prenorm ? "true" : "false");
    for (int64_t j = 0; j < A->enc_layers; j++) {
      char eh[96], ea[128];
      snprintf(eh, sizeof eh, "mem.encoder.%lld", (long long)j);
      snprintf(ea, sizeof ea, "%s.encoder.layers.%lld", ap, (long long)j);
      link_decoder(m, eh, ea, true, true, true);
    }
    link_(m, "mem.norm.weight", "%s.encoder.norm.weight", ap);
    if (A->enc_prenorm) link_(m, "mem.enc_prenorm.weight", "%s.enc_prenorm.weight", ap);
  } else {
    link_(m, "mem.norm.weight", "%s.norm.weight", ap);
  }
  fprintf(t, "    landmark = %s\n", A->enc_cls ? "cls" : "mean");
  if (A->enc_cls) {
    link_(m, "mem.cls", "%s.cls_emb", ap);
    ((pair *)ut_map_get(&m->pairs, "mem.cls"))->reshape = true;
  }
  fprintf(t, "    landmark_dim = %lld\n", (long long)(A->retrieval_dim / g));
  fprintf(t, "    landmark_groups = %s\n", A->singlehead ? "shared" : "kv");
  fprintf(t, "    k_norm = %s\n", A->qk_norm ? "true" : "false");
  fprintf(t, "  }\n");
  link_(m, "mem.lmk_proj.weight", "%s.lmk_ln.weight", ap);
  link_(m, "mem.k_proj.weight", "%s.proj_k.weight", ap);
  link_(m, "mem.v_proj.weight", "%s.proj_v.weight", ap);
  if (A->qk_norm) link_(m, "mem.k_norm.weight", "%s.k_rmsnorm.weight", ap);

  fprintf(t, "\n  stack upper {\n");
  int64_t u = 0; /* upper.{u} */
  for (int64_t gi = 0; gi < A->groups; gi++) {
    char rp[64], hsa[64];
    snprintf(rp, sizeof rp, "backbone.layers.%lld", (long long)layer++);
    snprintf(hsa, sizeof hsa, "backbone.layers.%lld", (long long)layer++);
    if (!A->hsa_only) {
      /* the HSA layer's own SWA (hsa_only = false): x + attn(norm(x)) */
      fprintf(t, "    ");
      write_swa(m, A, A->hsa_window, false);
      fprintf(t, "   # %s.attn\n", hsa);
      snprintf(hp, sizeof hp, "upper.%lld", (long long)u++);
      link2(m, hp, "attn_norm.weight", hsa, "swa_prenorm.weight");
      static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
      for (int i = 0; i < 4; i++) {
        char hs[64], as[64];
        snprintf(hs, sizeof hs, "attn.%s.weight", proj[i]);
        snprintf(as, sizeof as, "attn.%s.weight", proj[i]);
        link2(m, hp, hs, hsa, as);
      }
      link2(m, hp, "attn.q_norm.weight", hsa, "attn.q_norm.weight");
      link2(m, hp, "attn.k_norm.weight", hsa, "attn.k_norm.weight");
    }
    fprintf(t, "    r%lld = retrieve(mem, topk = %lld, weights = %s, per = token, groups = %s",
            (long long)gi, (long long)A->topk, A->softmax ? "softmax" : "stickbreak",
            A->singlehead ? "shared" : "kv");
    if (A->mask_window)
      fprintf(t, ", exclude_window = %lld", (long long)A->retrieval_window);
    if (A->lmk_norm) fprintf(t, ", lmk_norm = true");
    if (A->pos_decay && A->softmax) fprintf(t, ", pos_decay = true");
    fprintf(t, ")   # %s\n", rp);
    snprintf(hp, sizeof hp, "upper.%lld", (long long)u++);
    link2(m, hp, "norm.weight", rp, "pre_norm.weight");
    link2(m, hp, "q_proj.weight", rp, "ln.weight");
    if (A->lmk_norm) {
      link2(m, hp, "q_norm.weight", rp, "lmk_q_norm.weight");
      link2(m, hp, "lmk_norm.weight", rp, "lmk_k_norm.weight");
    }
    if (A->pos_decay && A->softmax) link2(m, hp, "pos_decay", rp, "pos_decay");
    if (A->pos_decay && !A->softmax) {
      char *k = ut_sprintf(m->a, "%s.pos_decay", rp);
      ut_map_put(&m->unread, k,
                 ut_sprintf(m->a, "tensor %s left out: the authors' code reads pos_decay only "
                            "with enable_softmax = true", k));
    }
    fprintf(t, "    hsa(r%lld, merge = weighted, softmax_plus = %d, residual = %s, q_norm = %s)"
               "   # %s\n",
            (long long)gi, A->softmax1 ? 1 : 0, A->reset_residual ? "standard" : "bypass",
            A->qk_norm ? "true" : "false", hsa);
    snprintf(hp, sizeof hp, "upper.%lld", (long long)u++);
    link2(m, hp, "attn_norm.weight", hsa, "pre_norm.weight");
    link2(m, hp, "attn.q_proj.weight", hsa, "q_proj.weight");
    link2(m, hp, "attn.o_proj.weight", hsa, "o_proj.weight");
    if (A->qk_norm) link2(m, hp, "attn.q_norm.weight", hsa, "q_norm.weight");
    link2(m, hp, "mlp_norm.weight", hsa, "_mlp_norm.weight");
    for (int i = 0; i < 3; i++) {
      char hs[64], as[64];
      snprintf(hs, sizeof hs, "mlp.%s.weight", mlp_names[i]);
      snprintf(as, sizeof as, "_mlp.%s.weight", mlp_names[i]);
      link2(m, hp, hs, hsa, as);
    }
    for (int64_t k = 0; k < A->per_group; k++, layer++) {
      fprintf(t, "    ");
      write_swa(m, A, A->window, true);
      fprintf(t, "   # backbone.layers.%lld\n", (long long)layer);
      snprintf(hp, sizeof hp, "upper.%lld", (long long)u++);
      snprintf(ap, sizeof ap, "backbone.layers.%lld", (long long)layer);
      link_decoder(m, hp, ap, true, false, true);
    }
  }
  fprintf(t, "  }\n}\n");
}

/* ---- the checkpoint's tensors --------------------------------------------- */

static bool plain_file_name(const char *s) {
  if (!*s || !strcmp(s, ".") || !strcmp(s, "..")) return false;
  for (; *s; s++)
    if (*s == '/' || (unsigned char)*s < 0x20) return false;
  return true;
}

static bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static bool add_shard(imp *m, const char *path) {
  for (int i = 0; i < m->nshards; i++)
    if (!strcmp(m->shards[i].path, path)) return true;
  if (m->nshards >= MAX_SHARDS)
    return fail(m, HSART_EFORMAT, "%s/model.safetensors.index.json: more than %d shards",
                m->o->dir, MAX_SHARDS);
  shard *s = &m->shards[m->nshards];
  s->path = ut_strdup(m->a, path);
  hsart_status st = st_open(path, &s->f, m->err, m->errsize);
  if (st != HSART_OK) {
    m->st = st;
    return false;
  }
  s->open = true;
  m->nshards++;
  for (int i = 0; i < s->f.ntensors; i++) {
    const char *n = s->f.tensors[i].name;
    shard *prev = ut_map_get(&m->where, n);
    if (prev) {
      char name[200];
      st_printable(n, name, sizeof name);
      return fail(m, HSART_EFORMAT, "tensor '%s' is in both %s and %s", name, prev->path,
                  path);
    }
    ut_map_put(&m->where, n, s);
    m->r->ntensors++;
  }
  return true;
}

static bool open_checkpoint(imp *m) {
  const char *dir = m->o->dir;
  m->shards = ut_alloc_array(m->a, MAX_SHARDS, sizeof *m->shards);
  char *single = ut_sprintf(m->a, "%s/model.safetensors", dir);
  char *index = ut_sprintf(m->a, "%s/model.safetensors.index.json", dir);
  if (file_exists(single)) return add_shard(m, single);
  if (!file_exists(index)) {
    if (file_exists(ut_sprintf(m->a, "%s/pytorch_model.bin", dir)))
      return fail(m, HSART_EUNSUPPORTED,
                  "%s holds pytorch_model.bin (a Python pickle), which hsac does not read: "
                  "convert it to model.safetensors first (docs/import.md shows how)", dir);
    return fail(m, HSART_EIO, "%s has neither model.safetensors nor "
                "model.safetensors.index.json", dir);
  }
  size_t len;
  char *text = ut_read_regular(index, MAX_INDEX_BYTES, &len);
  if (!text)
    return fail(m, HSART_EIO, "cannot read '%s': %s", index, ut_file_strerror(errno));
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!j) return fail(m, HSART_EFORMAT, "%s: not valid JSON", index);
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
  bool ok = true;
  if (!cJSON_IsObject(map)) {
    ok = fail(m, HSART_EFORMAT, "%s: no 'weight_map' object", index);
  } else {
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
      char name[200];
      st_printable(e->string ? e->string : "", name, sizeof name);
      if (!cJSON_IsString(e) || !plain_file_name(e->valuestring)) {
        ok = fail(m, HSART_EFORMAT, "%s: weight_map['%s'] must name a file in %s", index,
                  name, dir);
        break;
      }
      if (!(ok = add_shard(m, ut_sprintf(m->a, "%s/%s", dir, e->valuestring)))) break;
      shard *s = ut_map_get(&m->where, e->string);
      if (!s || strcmp(strrchr(s->path, '/') + 1, e->valuestring) != 0) {
        ok = fail(m, HSART_EFORMAT, "%s: weight_map puts '%s' in %s, which does not hold it",
                  index, name, e->valuestring);
        break;
      }
    }
  }
  cJSON_Delete(j);
  return ok;
}

static void shape_str(char *out, size_t n, int rank, const int64_t *dims) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(out + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (k < n) snprintf(out + k, n - k, "]");
}

/* Every weight of the compiled model gets its tensor; every tensor of the
 * checkpoint must be taken (or deliberately left out).  Fills out[] (one
 * per weight, in graph order) and returns the count, or -1. */
static int place(imp *m, const ir_graph *g, st_out_tensor *out) {
  int n = 0;
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code != IR_WEIGHT) continue;
    const ir_type *ty = &op->out[0]->type;
    int64_t dims[IR_MAX_RANK], numel = 1;
    for (int d = 0; d < ty->rank; d++) numel *= (dims[d] = ty->dims[d].n);
    char want[128];
    shape_str(want, sizeof want, ty->rank, dims);
    pair *p = ut_map_get(&m->pairs, op->name);
    if (!p) {
      problem(m, "hsac weight %s %s: the importer has no checkpoint tensor for it (a bug: "
                 "please report it)", op->name, want);
      continue;
    }
    const shard *s = ut_map_get(&m->where, p->src);
    /* transformers' load hook accepts the old spelling "embedding." */
    if (!s && !strcmp(p->src, "backbone.embeddings.weight")) {
      p->src = "backbone.embedding.weight";
      s = ut_map_get(&m->where, p->src);
    }
    if (!s) {
      problem(m, "missing tensor %s %s (hsac weight %s)", p->src, want, op->name);
      continue;
    }
    const st_tensor *t = st_find(&s->f, p->src);
    ut_map_put(&m->used, p->src, (void *)"used");
    int64_t tnumel = 1;
    for (int d = 0; d < t->rank; d++) tnumel *= t->shape[d];
    bool same = t->rank == ty->rank;
    for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == dims[d];
    if (!same && !(p->reshape && tnumel == numel)) {
      char got[128];
      shape_str(got, sizeof got, t->rank, t->shape);
      problem(m, "tensor %s has shape %s; hsac weight %s needs %s", p->src, got, op->name,
              want);
      continue;
    }
    st_out_tensor *o = &out[n++];
    o->name = op->name;
    o->rank = ty->rank;
    memcpy(o->shape, dims, sizeof(int64_t) * (size_t)ty->rank);
    o->data = t->data;
    o->dtype = t->dtype;
    m->r->params += numel;
  }
  for (int i = 0; i < m->nshards; i++)
    for (int k = 0; k < m->shards[i].f.ntensors; k++) {
      const char *name = m->shards[i].f.tensors[k].name;
      if (ut_map_get(&m->used, name)) {
        m->r->nplaced++;
        continue;
      }
      const char *why = ut_map_get(&m->unread, name);
      if (why) {
        note(m, "%s", why);
        continue;
      }
      char pn[200];
      st_printable(name, pn, sizeof pn);
      problem(m, "tensor %s has no place in the model the config describes", pn);
    }
  return m->problems.len ? -1 : n;
}

/* ---- the entry point ------------------------------------------------------ */

void hsac_import_report_init(hsac_import_report *r) {
  memset(r, 0, sizeof *r);
  ut_arena_init(&r->arena);
}

void hsac_import_report_free(hsac_import_report *r) {
  ut_arena_free(&r->arena);
  memset(r, 0, sizeof *r);
}

static bool valid_name(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

static bool write_text_file(imp *m, const char *path, const char *text, size_t len) {
  ut_outfile out;
  if (ut_out_begin(&out, path) != 0)
    return fail(m, HSART_EIO, "cannot write '%s': %s", path, ut_file_strerror(errno));
  if (fwrite(text, 1, len, out.fp) != len) {
    int e = errno;
    ut_out_abort(&out);
    return fail(m, HSART_EIO, "cannot write '%s': %s", path, strerror(e));
  }
  if (ut_out_commit(&out) != 0)
    return fail(m, HSART_EIO, "cannot write '%s': %s", path, strerror(errno));
  return true;
}

/* The import proper; allocation failures longjmp out of it (the arena's
 * handler in hsac_import), so everything it owns is reachable from m. */
static void run(imp *m) {
  const hsac_import_opts *o = m->o;
  if (o->name && !valid_name(o->name)) {
    fail(m, HSART_EINVAL, "the model name '%s' is not a name (letters, digits, _)", o->name);
    return;
  }

  /* 1. the config */
  m->cfg_path = ut_sprintf(m->a, "%s/config.json", o->dir);
  size_t len;
  char *text = ut_read_regular(m->cfg_path, MAX_CONFIG_BYTES, &len);
  if (!text) {
    fail(m, HSART_EIO, "cannot read '%s': %s", m->cfg_path, ut_file_strerror(errno));
    return;
  }
  m->cfg = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsObject(m->cfg)) {
    fail(m, HSART_EFORMAT, "%s: not a JSON object", m->cfg_path);
    return;
  }
  arch A;
  if (!read_arch(m, &A)) return;
  report_unknown_fields(m);

  /* 2. the model text, and the renaming recorded on the way */
  m->text = open_memstream(&m->text_buf, &m->text_len);
  if (!m->text) ut_arena_oom(m->a);
  write_model(m, &A);
  int rc = fclose(m->text);
  m->text = NULL;
  if (rc != 0) ut_arena_oom(m->a);

  /* 3. compile it: the weights the model has, with their shapes */
  char *model_path = ut_sprintf(m->a, "%s/model.hsa", o->out_dir);
  hsac_init(&m->c);
  m->compiled = true;
  if (hsac_compile(&m->c, model_path, m->text_buf, (long)m->text_len, HSAC_STAGE_IR) !=
      HSAC_OK) {
    char *diag = NULL;
    size_t dlen = 0;
    FILE *df = open_memstream(&diag, &dlen);
    if (df) {
      ut_diags_render(&m->c.diags, &m->c.sources, df);
      fclose(df);
    }
    fail(m, HSART_EUNSUPPORTED, "%s: hsac cannot represent this configuration (the model "
         "written for it does not compile):\n%s", m->cfg_path, diag ? diag : "");
    free(diag);
    return;
  }

  /* 4. the checkpoint, and every tensor's place */
  if (!open_checkpoint(m)) return;
  int nw = ir_weight_count(m->c.graph);
  m->out = calloc((size_t)nw + 1, sizeof *m->out);
  if (!m->out) ut_arena_oom(m->a);
  int n = place(m, m->c.graph, m->out);
  if (n < 0) {
    fail(m, HSART_EMISMATCH, "the tensors of %s do not fit the model its config describes "
         "(%d problem%s)", o->dir, m->problems.len, m->problems.len == 1 ? "" : "s");
    return;
  }

  /* 5. write: the folder, the model, the weights */
  if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
    fail(m, HSART_EIO, "cannot create '%s': %s", o->out_dir, strerror(errno));
    return;
  }
  if (!write_text_file(m, model_path, m->text_buf, m->text_len)) return;
  char *weights_path = ut_sprintf(m->a, "%s/weights.safetensors", o->out_dir);
  char meta[512];
  snprintf(meta, sizeof meta, "{\"hsac_model\": \"%s\", \"imported_by\": \"hsac import\"}",
           o->name ? o->name : "imported");
  hsart_status st = st_write(weights_path, m->out, n, meta, m->err, m->errsize);
  if (st != HSART_OK) {
    m->st = st;
    return;
  }
  /* the checkpoint's files must not have changed while they were copied */
  for (int i = 0; i < m->nshards; i++) {
    st = st_check_unchanged(m->shards[i].path, &m->shards[i].f, m->err, m->errsize);
    if (st != HSART_OK) {
      m->st = st;
      return;
    }
  }
  m->r->model_path = model_path;
  m->r->weights_path = weights_path;
}

hsart_status hsac_import(const hsac_import_opts *o, hsac_import_report *r, char *err,
                         size_t errsize) {
  if (errsize) err[0] = 0;
  /* on the heap: its fields stay valid across the longjmp of an allocation
   * failure */
  imp *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errsize, "out of memory");
    return HSART_ENOMEM;
  }
  m->o = o;
  m->r = r;
  m->a = &r->arena;
  m->err = err;
  m->errsize = errsize;
  jmp_buf oom;
  r->arena.oom = &oom;
  if (setjmp(oom)) {
    m->st = HSART_ENOMEM;
    snprintf(err, errsize, "out of memory");
  } else {
    ut_map_init(&m->known, m->a);
    ut_map_init(&m->pairs, m->a);
    ut_map_init(&m->where, m->a);
    ut_map_init(&m->used, m->a);
    ut_map_init(&m->unread, m->a);
    run(m);
  }
  r->arena.oom = NULL;
  if (m->text) fclose(m->text);
  free(m->text_buf);
  free(m->out);
  if (m->compiled) hsac_free(&m->c);
  for (int i = 0; i < m->nshards; i++)
    if (m->shards[i].open) st_close(&m->shards[i].f);
  cJSON_Delete(m->cfg);
  r->notes = (const char **)m->notes.items;
  r->nnotes = m->notes.len;
  r->problems = (const char **)m->problems.items;
  r->nproblems = m->problems.len;
  hsart_status st = m->st;
  free(m);
  return st;
}
