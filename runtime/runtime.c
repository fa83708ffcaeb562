/* runtime.c - libhsart: models, weights, sessions, sampling, tokenizer.
 *
 * A model is a compiled IR graph plus one f32 array per weight.  A session
 * owns its interpreter state (caches included) and the logits of the last
 * position; nothing is shared between sessions except the read-only model. */
#include "runtime/hsa_runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "hsac_version.h"
#include "codegen/cpu/kernels.h" /* cg_wtype: how a linear matrix is held */
#include "codegen/cuda/cuda.h"  /* cg_tuning_device */
#include "passes/pipeline.h"
#include "runtime/backend.h"
#include "runtime/interp.h"
#include "runtime/safetensors.h"

struct hsart_model {
  hsac_compilation comp;   /* owns the graph */
  ir_graph *g;
  int nweights;
  float **weights;         /* graph order */
  unsigned char *wtype;    /* graph order: a cg_wtype, CG_W_BF16 or CG_W_F16
                              for a linear matrix held in 16 bits
                              (rt_backend_config.wtype) */
  int64_t vocab;
  const rt_backend *be;    /* who computes the kernels */
  void *program;           /* what it compiled for this model */
};

struct hsart_session {
  const hsart_model *m;
  hsart_session_options opt;
  rt_exec x;
  void *be_state;          /* the backend's per-session state */
  int64_t pos;
  float *logits;           /* after the last token */
  bool have_logits;
  uint64_t rng, rng_seed;
  bool rng_seeded;
  char err[1024];
};

const char *hsart_version(void) { return HSAC_VERSION; }

const char *hsart_status_string(hsart_status s) {
  switch (s) {
  case HSART_OK: return "success";
  case HSART_EINVAL: return "invalid argument";
  case HSART_ENOMEM: return "out of memory";
  case HSART_EIO: return "input/output error";
  case HSART_EFORMAT: return "malformed file";
  case HSART_EMISMATCH: return "weights do not match the model";
  case HSART_EUNSUPPORTED: return "not supported";
  case HSART_ECANCELED: return "canceled";
  case HSART_ENUMERIC: return "non-finite result";
  }
  return "unknown status";
}

static hsart_status set_err(hsart_error *e, hsart_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hsart_status set_err(hsart_error *e, hsart_status st, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = st;
    e->diagnostics = 0;
  }
  return st;
}

/* Compiles a model description; diagnostics become the error message. */
static hsart_status compile(hsac_compilation *c, const char *path, int opt_level,
                            const char *const *include_dirs, hsart_error *err) {
  hsac_init(c);
  hsac_options o = {.stop = HSAC_STAGE_IR, .opt_level = opt_level, .include_dirs = include_dirs};
  hsac_status st = hsac_compile_opts(c, path, NULL, 0, &o);
  if (st == HSAC_OK) return HSART_OK;
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (f) {
    ut_diags_render(&c->diags, &c->sources, f);
    fclose(f);
  }
  hsart_status rs = st == HSAC_ENOMEM ? HSART_ENOMEM : HSART_EFORMAT;
  if (st == HSAC_ENOMEM)
    set_err(err, rs, "%s: out of memory while compiling the model", path);
  else
    set_err(err, rs, "%s", buf && buf[0] ? buf : "the model description has errors");
  if (err) err->diagnostics = st != HSAC_ENOMEM && buf && buf[0];
  free(buf);
  /* drop a trailing newline */
  if (err) {
    size_t l = strlen(err->message);
    if (l && err->message[l - 1] == '\n') err->message[l - 1] = 0;
  }
  hsac_free(c);
  return rs;
}

static void shape_str(const int64_t *dims, int rank, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (n < size) snprintf(buf + n, size - n, "]");
}

void hsart_model_free(hsart_model *m) {
  if (!m) return;
  if (m->be && m->be->program_free) m->be->program_free(m->program);
  if (m->weights)
    for (int i = 0; i < m->nweights; i++) free(m->weights[i]);
  free(m->weights);
  free(m->wtype);
  hsac_free(&m->comp);
  free(m);
}

/* The backend: the one asked for, or (auto) cpu where it compiles every
 * op, else ref. */
static hsart_status choose_backend(hsart_model *m, const hsart_model_options *opts,
                                   hsart_error *err) {
  hsart_backend want = opts ? opts->backend : HSART_BACKEND_AUTO;
  if (want != HSART_BACKEND_AUTO && want != HSART_BACKEND_REF && want != HSART_BACKEND_CPU &&
      want != HSART_BACKEND_CUDA && want != HSART_BACKEND_CUDA_EMU)
    return set_err(err, HSART_EINVAL, "unknown backend %d", (int)want);
  char why[512];
  if (want == HSART_BACKEND_AUTO)
    want = rt_cpu_supports(m->g, why, sizeof why) ? HSART_BACKEND_CPU : HSART_BACKEND_REF;
  m->be = want == HSART_BACKEND_CPU        ? &rt_backend_cpu
          : want == HSART_BACKEND_CUDA     ? &rt_backend_cuda
          : want == HSART_BACKEND_CUDA_EMU ? &rt_backend_cuda_emu
                                           : &rt_backend_ref;
  return HSART_OK;
}

/* What the backend compiles for the model; raw[i]: the file's tensor of
 * weight i where it has no f32 copy (the file is still mapped). */
static hsart_status compile_backend(hsart_model *m, const hsart_model_options *opts,
                                    const st_file *f, const st_tensor *const *raw,
                                    hsart_error *err) {
  if (!m->be->compile) return HSART_OK;
  rt_backend_config cfg = {.threads = opts ? opts->threads : 0, .cpu = opts ? opts->cpu : NULL,
                           .no_cache = opts && opts->no_cache, .wtype = m->wtype, .raw = raw,
                           .gpu_bf16 = opts && opts->gpu_bf16,
                           .cpu_bf16 = opts && opts->cpu_bf16,
                           .gpu_page_bytes = opts ? opts->gpu_page_bytes : 0,
                           .tuning_db = opts ? opts->tuning_db : NULL,
                           .tune_round = opts ? opts->tune_round : 0,
                           .raw_file = f};
  char msg[1024];
  hsart_status st = m->be->compile(m->g, (const float *const *)m->weights, &cfg, &m->program,
                                   msg, sizeof msg);
  if (st != HSART_OK) return set_err(err, st, "%s", msg);
  return HSART_OK;
}

/* Compares the file's tensors with the model's weights: HSART_OK when
 * every weight is there with its shape and nothing else is; otherwise
 * HSART_EMISMATCH with one message that counts each kind of difference and
 * names the first of each. */
static hsart_status match_weights(const ir_graph *g, const st_file *f, const char *path,
                                  hsart_error *err) {
  int missing = 0, reshaped = 0, extra = 0;
  char first_missing[256] = "", first_reshaped[320] = "", first_extra[200] = "";
  for (ir_op *op = g->first; op; op = op->next) {
    if (op->code != IR_WEIGHT) continue;
    const ir_type *t = &op->out[0]->type;
    int64_t want[IR_MAX_RANK];
    for (int i = 0; i < t->rank; i++) want[i] = t->dims[i].n;
    char ws[96], hs[96];
    shape_str(want, t->rank, ws, sizeof ws);
    const st_tensor *tt = st_find(f, op->name);
    if (!tt) {
      if (!missing++) snprintf(first_missing, sizeof first_missing, "'%s' %s", op->name, ws);
      continue;
    }
    bool same = tt->rank == t->rank;
    for (int i = 0; same && i < t->rank; i++) same = tt->shape[i] == want[i];
    if (!same && !reshaped++) {
      shape_str(tt->shape, tt->rank, hs, sizeof hs);
      snprintf(first_reshaped, sizeof first_reshaped, "'%s' has shape %s, the model expects %s",
               op->name, hs, ws);
    }
  }
  for (int i = 0; i < f->ntensors; i++) {
    bool known = false;
    for (ir_op *op = g->first; op && !known; op = op->next)
      known = op->code == IR_WEIGHT && !strcmp(op->name, f->tensors[i].name);
    if (!known && !extra++) {
      char shown[160];
      st_printable(f->tensors[i].name, shown, sizeof shown);
      snprintf(first_extra, sizeof first_extra, "'%s'", shown);
    }
  }
  if (!missing && !reshaped && !extra) return HSART_OK;
  char what[900];
  size_t n = 0;
  if (reshaped)
    n += (size_t)snprintf(what + n, sizeof what - n, "%d tensor%s of another shape (%s)",
                          reshaped, reshaped == 1 ? "" : "s", first_reshaped);
  if (missing && n < sizeof what)
    n += (size_t)snprintf(what + n, sizeof what - n, "%s%d missing (first: %s)", n ? "; " : "",
                          missing, first_missing);
  if (extra && n < sizeof what)
    n += (size_t)snprintf(what + n, sizeof what - n, "%s%d not in the model (first: %s)",
                          n ? "; " : "", extra, first_extra);
  char who[200] = "";
  if (f->written_for && strcmp(f->written_for, g->name)) {
    char shown[120]; /* from the file: escaped, bounded */
    st_printable(f->written_for, shown, sizeof shown);
    snprintf(who, sizeof who, " (the file was written for model '%s')", shown);
  }
  return set_err(err, HSART_EMISMATCH, "%s: the weights do not match model '%s'%s: %s", path,
                 g->name, who, what);
}

hsart_status hsart_model_load(const char *model_path, const char *weights_path,
                              const hsart_model_options *opts, hsart_model **out,
                              hsart_error *err) {
  int opt_level = opts ? opts->opt_level : 1;
  *out = NULL;
  if (err) err->message[0] = 0, err->status = HSART_OK;
  if (!model_path || !weights_path) return set_err(err, HSART_EINVAL, "no model or weights path");
  hsart_model *m = calloc(1, sizeof *m);
  if (!m) return set_err(err, HSART_ENOMEM, "out of memory");
  hsart_status st = compile(&m->comp, model_path, opt_level, opts ? opts->include_dirs : NULL,
                            err);
  if (st != HSART_OK) {
    free(m);
    return st;
  }
  m->g = m->comp.graph;
  m->vocab = m->comp.model->vocab;
  for (ir_op *op = m->g->first; op; op = op->next) m->nweights += op->code == IR_WEIGHT;
  m->weights = calloc((size_t)m->nweights + 1, sizeof *m->weights);
  m->wtype = calloc((size_t)m->nweights + 1, sizeof *m->wtype);
  hsart_weights_dtype wdt = opts ? opts->weights_dtype : HSART_WEIGHTS_KEEP;
  if (wdt != HSART_WEIGHTS_KEEP && wdt != HSART_WEIGHTS_F32 && wdt != HSART_WEIGHTS_BF16) {
    hsart_model_free(m);
    return set_err(err, HSART_EINVAL, "unknown weights dtype %d", (int)wdt);
  }
  if (!m->weights || !m->wtype) {
    hsart_model_free(m);
    return set_err(err, HSART_ENOMEM, "out of memory");
  }
  /* bf16 math computes with bf16 matrices: every linear's is rounded */
  bool cpu_bf16 = opts && opts->cpu_bf16;
  if (cpu_bf16 && wdt == HSART_WEIGHTS_F32) {
    hsart_model_free(m);
    return set_err(err, HSART_EINVAL, "bf16 linear math (--cpu-math bf16) computes with bf16 "
                   "matrices; it cannot keep them in f32 (--weights-dtype f32)");
  }
  if (cpu_bf16 && opts->backend != HSART_BACKEND_AUTO && opts->backend != HSART_BACKEND_CPU &&
      opts->backend != HSART_BACKEND_REF) {
    hsart_model_free(m);
    return set_err(err, HSART_EINVAL, "--cpu-math bf16 is for the cpu and ref backends; the "
                   "cuda backends' is --gpu-math bf16");
  }
  if (cpu_bf16) wdt = HSART_WEIGHTS_BF16;
  st_file f;
  char msg[1024];
  st = st_open(weights_path, &f, msg, sizeof msg);
  if (st != HSART_OK) {
    hsart_model_free(m);
    return set_err(err, st, "%s", msg);
  }
  /* First the whole comparison, so that a mismatch is reported with its
   * counts (missing, extra, other shape), the first of each, and the model
   * the file was written for, not only the first difference. */
  st = match_weights(m->g, &f, weights_path, err);
  if (st == HSART_OK) st = choose_backend(m, opts, err);
  /* The CPU backend reads a linear's matrix only from its packed panels:
   * a weight that is nothing but linear matrices gets no f32 copy, the
   * backend packs it from the mapped file (raw), one tensor at a time. */
  const st_tensor **raw = calloc((size_t)m->nweights + 1, sizeof *raw);
  if (!raw && st == HSART_OK) st = set_err(err, HSART_ENOMEM, "out of memory");
  int wi = 0;
  for (ir_op *op = m->g->first; op && st == HSART_OK; op = op->next) {
    if (op->code != IR_WEIGHT) continue;
    const st_tensor *tt = st_find(&f, op->name);
    int64_t n = ir_type_numel(&op->out[0]->type);
    float *data = malloc((size_t)n * sizeof *data);
    if (!data) {
      st = set_err(err, HSART_ENOMEM, "out of memory for tensor '%s'", op->name);
      break;
    }
    st_to_f32(tt, data);
    /* a linear's matrix kept in 16 bits: as stored (keep: bf16 or f16), or
     * rounded to bf16 now, so that every backend computes with the same
     * values (bf16) */
    bool lin = ir_linear_matrix(m->g, op->out[0]);
    if (lin && (wdt == HSART_WEIGHTS_BF16 || (wdt == HSART_WEIGHTS_KEEP && tt->dtype == ST_BF16))) {
      if (tt->dtype != ST_BF16)
        for (int64_t i = 0; i < n; i++) data[i] = ut_bf16_to_f32(ut_f32_to_bf16(data[i]));
      m->wtype[wi] = CG_W_BF16;
    } else if (lin && wdt == HSART_WEIGHTS_KEEP && tt->dtype == ST_F16) {
      m->wtype[wi] = CG_W_F16;
    }
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(data[i])) {
        st = set_err(err, HSART_EFORMAT, "%s: tensor '%s' holds a non-finite value at "
                     "element %lld", weights_path, op->name, (long long)i);
        break;
      }
    if (m->be == &rt_backend_cpu && ir_linear_matrix_only(m->g, op->out[0])) {
      free(data); /* checked; the backend packs it from the file */
      data = NULL;
      raw[wi] = tt;
    }
    st_release(&f, tt);
    m->weights[wi++] = data;
  }
  if (st == HSART_OK) st = compile_backend(m, opts, &f, raw, err);
  /* after packing: nothing read from the file changed meanwhile */
  if (st == HSART_OK) {
    st = st_check_unchanged(weights_path, &f, msg, sizeof msg);
    if (st != HSART_OK) set_err(err, st, "%s", msg);
  }
  free(raw);
  st_close(&f);
  if (st != HSART_OK) {
    hsart_model_free(m);
    return st;
  }
  *out = m;
  return HSART_OK;
}

const char *hsart_model_backend(const hsart_model *m) { return m->be->name; }

void hsart_model_describe(const hsart_model *m, char *buf, size_t size) {
  m->be->describe(m->program, buf, size);
}

int64_t hsart_model_vocab(const hsart_model *m) { return m->vocab; }
const char *hsart_model_name(const hsart_model *m) { return m->g->name; }

int hsart_model_gpu(const hsart_model *m, hsart_gpu_info *out) {
  if (!m->be->device || !m->program) return 0;
  const char *desc = "";
  const cg_tuning_device *d = m->be->device(m->program, &desc);
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", d->name);
  snprintf(out->arch, sizeof out->arch, "%s", d->arch);
  snprintf(out->driver, sizeof out->driver, "%s", d->driver);
  snprintf(out->compiler, sizeof out->compiler, "%s", d->compiler);
  snprintf(out->desc, sizeof out->desc, "%s", desc);
  return 1;
}

/* ---- deterministic random weights ---------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0; }

static double normal(uint64_t *s) {
  double u = uniform01(s), v = uniform01(s);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static uint64_t name_hash(const char *n) {
  uint64_t h = 1469598103934665603ull;
  for (; *n; n++) h = (h ^ (unsigned char)*n) * 1099511628211ull;
  return h;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

hsart_status hsart_init_weights(const char *model_path, const char *out_path, uint64_t seed,
                                hsart_error *err) {
  return hsart_init_weights_opts(model_path, out_path, seed, NULL, err);
}

hsart_status hsart_init_weights_opts(const char *model_path, const char *out_path, uint64_t seed,
                                     const hsart_model_options *opts, hsart_error *err) {
  return hsart_init_weights_report(model_path, out_path, seed, opts, NULL, err);
}

hsart_status hsart_init_weights_report(const char *model_path, const char *out_path,
                                       uint64_t seed, const hsart_model_options *opts,
                                       hsart_weights_info *info, hsart_error *err) {
  if (err) err->message[0] = 0, err->status = HSART_OK, err->diagnostics = 0;
  if (info) memset(info, 0, sizeof *info);
  hsac_compilation c;
  hsart_status st = compile(&c, model_path, 1, opts ? opts->include_dirs : NULL, err);
  if (st != HSART_OK) return st;
  int n = 0;
  for (ir_op *op = c.graph->first; op; op = op->next) n += op->code == IR_WEIGHT;
  st_out_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
  float **bufs = calloc((size_t)n + 1, sizeof *bufs);
  if (!ts || !bufs) {
    st = set_err(err, HSART_ENOMEM, "out of memory");
    goto done;
  }
  int i = 0;
  for (ir_op *op = c.graph->first; op; op = op->next) {
    if (op->code != IR_WEIGHT) continue;
    const ir_type *t = &op->out[0]->type;
    int64_t numel = ir_type_numel(t);
    float *w = malloc((size_t)numel * sizeof *w);
    if (!w) {
      st = set_err(err, HSART_ENOMEM, "out of memory for '%s'", op->name);
      goto done;
    }
    bufs[i] = w;
    /* each tensor's stream depends only on the seed and its name */
    uint64_t s = seed ^ name_hash(op->name);
    const ir_attr *init = ir_get_attr(op, "init");
    if (init) {
      for (int64_t k = 0; k < numel; k++) w[k] = (float)init->f;
    } else if (ends_with(op->name, "norm.weight")) {
      for (int64_t k = 0; k < numel; k++) w[k] = 1.0f;
    } else {
      double sd = t->rank == 2 && strcmp(op->name, "embed.weight")
                      ? 1.0 / sqrt((double)t->dims[1].n) : 1.0;
      for (int64_t k = 0; k < numel; k++) w[k] = (float)(sd * normal(&s));
    }
    ts[i].name = op->name;
    ts[i].rank = t->rank;
    for (int d = 0; d < t->rank; d++) ts[i].shape[d] = t->dims[d].n;
    ts[i].data = w;
    i++;
  }
  /* the metadata as JSON (cJSON escapes the name; any length) */
  char msg[600], seedtxt[24];
  snprintf(seedtxt, sizeof seedtxt, "%llu", (unsigned long long)seed);
  cJSON *mj = cJSON_CreateObject();
  char *meta = NULL;
  if (mj && cJSON_AddStringToObject(mj, "hsac_model", c.graph->name) &&
      cJSON_AddStringToObject(mj, "seed", seedtxt))
    meta = cJSON_PrintUnformatted(mj);
  cJSON_Delete(mj);
  if (!meta) {
    st = set_err(err, HSART_ENOMEM, "out of memory");
    goto done;
  }
  st = st_write(out_path, ts, n, meta, msg, sizeof msg);
  cJSON_free(meta);
  if (st != HSART_OK) set_err(err, st, "%s", msg);
  if (st == HSART_OK && info) {
    snprintf(info->model, sizeof info->model, "%s", c.graph->name);
    info->tensors = n;
    for (int k = 0; k < n; k++) {
      int64_t e = 1;
      for (int d = 0; d < ts[k].rank; d++) e *= ts[k].shape[d];
      info->parameters += e;
    }
    struct stat sb;
    info->file_bytes = stat(out_path, &sb) == 0 ? (int64_t)sb.st_size : -1;
  }
done:
  if (bufs)
    for (int k = 0; k < n; k++) free(bufs[k]);
  free(bufs);
  free(ts);
  hsac_free(&c);
  return st;
}

/* ---- sessions ------------------------------------------------------------ */

static hsart_status sess_err(hsart_session *s, hsart_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hsart_status sess_err(hsart_session *s, hsart_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
  return st;
}

hsart_status hsart_session_create(const hsart_model *m, const hsart_session_options *opts,
                                  hsart_session **out, hsart_error *err) {
  *out = NULL;
  if (err) err->message[0] = 0, err->status = HSART_OK;
  if (!m) return set_err(err, HSART_EINVAL, "no model");
  hsart_session *s = calloc(1, sizeof *s);
  if (!s) return set_err(err, HSART_ENOMEM, "out of memory");
  s->m = m;
  if (opts) s->opt = *opts;
  if (s->opt.segment <= 0) s->opt.segment = m->be->default_segment > 0 ? m->be->default_segment : 512;
  if (s->opt.cache > HSART_CACHE_F16) {
    int bad = (int)s->opt.cache;
    free(s);
    return set_err(err, HSART_EINVAL, "unknown cache type %d", bad);
  }
  s->logits = malloc((size_t)m->vocab * sizeof *s->logits);
  char msg[512];
  rt_quant q = s->opt.cache == HSART_CACHE_BF16 ? RT_Q_BF16
               : s->opt.cache == HSART_CACHE_F16 ? RT_Q_F16 : RT_Q_F32;
  hsart_status st = s->logits ? rt_exec_init(&s->x, m->g, (const float *const *)m->weights, q,
                                             NULL, msg, sizeof msg)
                              : HSART_ENOMEM;
  bool inited = false;
  if (st == HSART_OK && m->be->session_init) {
    st = m->be->session_init(m->program, &s->x, &s->be_state, msg, sizeof msg);
    inited = st == HSART_OK;
    if (st == HSART_OK) rt_exec_set_backend(&s->x, m->be, s->be_state, m->be->wide_history);
  }
  s->x.check_numerics = s->opt.check_numerics != 0;
  if (st == HSART_OK && s->opt.profile) {
    s->x.prof_ms = calloc(2 * (size_t)s->x.nvals + 2, sizeof *s->x.prof_ms);
    s->x.prof_calls = calloc(2 * (size_t)s->x.nvals + 2, sizeof *s->x.prof_calls);
    if (!s->x.prof_ms || !s->x.prof_calls) {
      snprintf(msg, sizeof msg, "out of memory");
      st = HSART_ENOMEM;
    }
  }
  if (st != HSART_OK) {
    if (inited && m->be->session_free) m->be->session_free(s->be_state);
    set_err(err, st, "%s", s->logits ? msg : "out of memory");
    rt_exec_free(&s->x);
    free(s->logits);
    free(s);
    return st;
  }
  *out = s;
  return HSART_OK;
}

void hsart_session_free(hsart_session *s) {
  if (!s) return;
  if (s->m->be->session_free) s->m->be->session_free(s->be_state);
  rt_exec_free(&s->x);
  free(s->logits);
  free(s);
}

hsart_status hsart_session_reset(hsart_session *s) {
  rt_exec_reset(&s->x);
  s->pos = 0;
  s->have_logits = false;
  s->err[0] = 0;
  return HSART_OK;
}

int64_t hsart_session_profile(const hsart_session *s, hsart_op_time *out, int64_t cap) {
  const rt_exec *x = &s->x;
  if (!x->prof_ms) return -1;
  int64_t n = 0;
  for (const ir_op *op = x->g->first; op; op = op->next) {
    if (!op->nout) continue;
    for (int one = 0; one < 2; one++) {
      size_t at = 2 * (size_t)op->out[0]->index + (size_t)one;
      if (!x->prof_calls[at]) continue;
      if (out && n < cap) {
        hsart_op_time *e = &out[n];
        memset(e, 0, sizeof *e);
        snprintf(e->op, sizeof e->op, "%s", ir_ops[op->code].name);
        snprintf(e->origin, sizeof e->origin, "%s", op->origin ? op->origin : "");
        if (s->m->be->op_label) {
          rt_op_label l;
          s->m->be->op_label(s->m->program, op, one, &l);
          snprintf(e->kernel, sizeof e->kernel, "%s", l.kernel);
          snprintf(e->bucket, sizeof e->bucket, "%s", l.bucket);
          snprintf(e->config, sizeof e->config, "%s", l.config);
          e->candidates = l.candidates;
        }
        e->one_row = one;
        e->calls = x->prof_calls[at];
        e->ms = x->prof_ms[at];
      }
      n++;
    }
  }
  return n;
}

const char *hsart_session_error(const hsart_session *s) { return s->err; }
int64_t hsart_session_position(const hsart_session *s) { return s->pos; }

void hsart_session_describe(const hsart_session *s, char *buf, size_t size) {
  if (size) buf[0] = 0;
  if (s->m->be->session_describe && s->be_state)
    s->m->be->session_describe(s->be_state, buf, size);
}
const float *hsart_logits(const hsart_session *s) { return s->have_logits ? s->logits : NULL; }

/* Chunk and block indices are 32-bit (the IR's i32 top-k indices), so a
 * session holds at most 2^31 - 1 positions: far beyond any memory today,
 * and refused cleanly rather than wrapped. */
#define HSART_MAX_POSITIONS ((int64_t)INT32_MAX)

/* Logits must be finite to be an answer: finite but huge weights (3e38
 * in a norm gain) make every logit NaN, which sampling would turn into
 * token 0 and `run` into NUL bytes.  The session is reset (its caches hold
 * the same overflow). */
static bool finite_logits(hsart_session *s, const float *l, int64_t pos) {
  for (int64_t i = 0; i < s->m->vocab; i++)
    if (!isfinite(l[i])) {
      bool nan = isnan(l[i]);
      hsart_session_reset(s);
      sess_err(s, HSART_ENUMERIC, "the logits at position %lld are not finite (%s at index "
               "%lld): the weights or activations overflow float32; --check-numerics names "
               "the first op that produced a non-finite value (the session was reset)",
               (long long)pos, nan ? "NaN" : "infinity", (long long)i);
      return false;
    }
  return true;
}

static hsart_status run(hsart_session *s, const int32_t *tokens, int64_t n, bool demand) {
  if (n > HSART_MAX_POSITIONS - s->pos)
    return sess_err(s, HSART_EINVAL, "a session holds at most %lld positions; this would make "
                    "%lld", (long long)HSART_MAX_POSITIONS, (long long)(s->pos + n));
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= s->m->vocab)
      return sess_err(s, HSART_EINVAL, "token %d at input position %lld is outside the "
                      "vocabulary (0..%lld)", tokens[i], (long long)i,
                      (long long)s->m->vocab - 1);
  for (int64_t done = 0; done < n;) {
    int64_t len = n - done < s->opt.segment ? n - done : s->opt.segment;
    /* for a prefill, compute only what the last position's logits need */
    int64_t final = demand && !s->opt.on_logits && !s->opt.all_positions ? s->pos + (n - done) : -1;
    hsart_status st = rt_exec_prefill(&s->x, tokens + done, s->pos, len, final);
    if (st != HSART_OK) {
      /* the caches now hold a partial segment: the session must restart */
      hsart_session_reset(s);
      return sess_err(s, st, "%s (the session was reset)", s->x.err);
    }
    if (s->opt.on_logits)
      for (int64_t t = s->pos; t < s->pos + len; t++) {
        if (!finite_logits(s, rt_exec_logits(&s->x, t), t)) return HSART_ENUMERIC;
        s->opt.on_logits(s->opt.user, t, rt_exec_logits(&s->x, t), s->m->vocab);
      }
    s->pos += len;
    done += len;
    /* with demand, only the last segment computes logits: an earlier one's
     * rows hold nothing (so a prefill stopped by progress has none) */
    s->have_logits = false;
    if (final < 0 || done == n) {
      const float *last = rt_exec_logits(&s->x, s->pos - 1);
      if (!finite_logits(s, last, s->pos - 1)) return HSART_ENUMERIC;
      memcpy(s->logits, last, (size_t)s->m->vocab * sizeof(float));
      s->have_logits = true;
    }
    if (s->opt.progress && s->opt.progress(s->opt.user, done, n))
      return sess_err(s, HSART_ECANCELED, "stopped after %lld of %lld tokens",
                      (long long)done, (long long)n);
  }
  return HSART_OK;
}

hsart_status hsart_prefill(hsart_session *s, const int32_t *tokens, int64_t n) {
  s->err[0] = 0;
  if (n < 0 || (n > 0 && !tokens)) return sess_err(s, HSART_EINVAL, "invalid token array");
  return run(s, tokens, n, true);
}

hsart_status hsart_decode(hsart_session *s, int32_t token) {
  s->err[0] = 0;
  hsart_progress_fn p = s->opt.progress;
  s->opt.progress = NULL;
  hsart_status st = run(s, &token, 1, false);
  s->opt.progress = p;
  return st;
}

hsart_status hsart_decode_batch(hsart_session *const *ss, const int32_t *tokens, int n) {
  if (n <= 0) return n == 0 ? HSART_OK : HSART_EINVAL;
  if (!ss || !tokens) return HSART_EINVAL;
  for (int i = 0; i < n; i++)
    if (!ss[i]) return HSART_EINVAL;
  for (int i = 0; i < n; i++) ss[i]->err[0] = 0;
  for (int i = 0; i < n; i++) {
    hsart_session *s = ss[i];
    if (s->m != ss[0]->m)
      return sess_err(s, HSART_EINVAL, "batch entry %d is a session of another model than entry "
                      "0: a batch runs one model", i);
    for (int j = 0; j < i; j++)
      if (ss[j] == s)
        return sess_err(s, HSART_EINVAL, "batch entries %d and %d are the same session", j, i);
    if (tokens[i] < 0 || tokens[i] >= s->m->vocab)
      return sess_err(s, HSART_EINVAL, "token %d of batch entry %d is outside the vocabulary "
                      "(0..%lld)", tokens[i], i, (long long)s->m->vocab - 1);
    if (s->pos >= HSART_MAX_POSITIONS)
      return sess_err(s, HSART_EINVAL, "a session holds at most %lld positions",
                      (long long)HSART_MAX_POSITIONS);
  }
  rt_exec **xs = malloc((size_t)n * sizeof *xs);
  int64_t *pos = malloc((size_t)n * sizeof *pos);
  if (!xs || !pos) {
    free(xs);
    free(pos);
    return sess_err(ss[0], HSART_ENOMEM, "out of memory");
  }
  for (int i = 0; i < n; i++) xs[i] = &ss[i]->x, pos[i] = ss[i]->pos;
  int failed = -1;
  hsart_status st = rt_exec_decode_batch(xs, n, tokens, pos, &failed);
  free(xs);
  free(pos);
  if (st != HSART_OK) {
    /* every session's caches may hold part of the step: all restart */
    char why[512];
    snprintf(why, sizeof why, "%s", failed >= 0 ? ss[failed]->x.err : "the batch failed");
    for (int i = 0; i < n; i++) {
      hsart_session_reset(ss[i]);
      if (i == failed) sess_err(ss[i], st, "%s (the session was reset)", why);
      else sess_err(ss[i], st, "batch entry %d failed: %.400s (this session was reset too)",
                    failed, why);
    }
    return st;
  }
  for (int i = 0; i < n; i++) {
    hsart_session *s = ss[i];
    const float *l = rt_exec_logits(&s->x, s->pos);
    if (!finite_logits(s, l, s->pos)) return HSART_ENUMERIC;
    if (s->opt.on_logits) s->opt.on_logits(s->opt.user, s->pos, l, s->m->vocab);
    memcpy(s->logits, l, (size_t)s->m->vocab * sizeof(float));
    s->have_logits = true;
    s->pos++;
  }
  return HSART_OK;
}

typedef struct cand {
  float logit;
  int32_t id;
} cand;

static int by_logit(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

hsart_status hsart_sample(hsart_session *s, const hsart_sampler *p, int32_t *token) {
  s->err[0] = 0;
  if (!s->have_logits) return sess_err(s, HSART_EINVAL, "no logits yet: prefill first");
  hsart_sampler d = {0};
  if (!p) p = &d;
  if (!(p->temperature >= 0) || p->top_k < 0 || !(p->top_p >= 0 && p->top_p <= 1))
    return sess_err(s, HSART_EINVAL, "invalid sampler settings");
  int64_t V = s->m->vocab;
  if (p->temperature == 0) {
    int32_t best = 0;
    for (int64_t i = 1; i < V; i++)
      if (s->logits[i] > s->logits[best]) best = (int32_t)i;
    *token = best;
    return HSART_OK;
  }
  if (!s->rng_seeded || s->rng_seed != p->seed) {
    s->rng = p->seed;
    s->rng_seed = p->seed;
    s->rng_seeded = true;
  }
  cand *c = malloc((size_t)V * sizeof *c);
  if (!c) return sess_err(s, HSART_ENOMEM, "out of memory");
  for (int64_t i = 0; i < V; i++) c[i] = (cand){s->logits[i], (int32_t)i};
  qsort(c, (size_t)V, sizeof *c, by_logit);
  int64_t n = p->top_k > 0 && p->top_k < V ? p->top_k : V;
  double *pr = malloc((size_t)n * sizeof *pr), sum = 0;
  if (!pr) {
    free(c);
    return sess_err(s, HSART_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < n; i++) sum += pr[i] = exp(((double)c[i].logit - c[0].logit) / p->temperature);
  if (p->top_p > 0 && p->top_p < 1) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
      acc += pr[i] / sum;
      if (acc >= p->top_p) {
        n = i + 1;
        break;
      }
    }
    sum = 0;
    for (int64_t i = 0; i < n; i++) sum += pr[i];
  }
  double u = uniform01(&s->rng) * sum, acc = 0;
  int32_t pick = c[n - 1].id;
  for (int64_t i = 0; i < n; i++) {
    acc += pr[i];
    if (u < acc) {
      pick = c[i].id;
      break;
    }
  }
  free(pr);
  free(c);
  *token = pick;
  return HSART_OK;
}

int64_t hsart_tokenize(const char *text, int64_t len, int32_t *tokens, int64_t cap) {
  int64_t n = len < cap ? len : cap;
  for (int64_t i = 0; i < n; i++) tokens[i] = (unsigned char)text[i];
  return n;
}
