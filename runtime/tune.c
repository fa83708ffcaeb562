/* tune.c - hsart_tune: the launch configurations of a model's CUDA kernels
 * measured on the device that runs them (docs/cuda.md, "Tuning").
 *
 * Round r compiles the whole model with every tunable knob at its
 * candidate r-1 (rt_backend_config.tune_round; a knob with fewer
 * candidates stays at its default), runs a warm-up and `reps` timed runs of
 * the same workload with the session's profiler on, and keeps, per shape
 * bucket, the fastest run's time of the bucket's ops.  Measuring in place
 * (the model's own ops, on its own tensors, in plan order) rather than on
 * synthetic inputs means the times include what the real layout costs: the
 * ring and page gathers, the segment's row count, the cache state a kernel
 * finds.  Each round's logits are compared with round 1's, which runs the
 * defaults: a configuration that computes something else is rejected, not
 * written. */
#include "runtime/hsa_runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cuda/cuda.h"

/* Agreement a round's logits must keep with round 1's (f32 arithmetic). */
#define TUNE_TOL 1e-3
/* bf16 arithmetic: a round's logits may differ from round 1's by more (a
 * different order of f32 sums flips some bf16 roundings between kernels,
 * and a deep model amplifies them: 6e-03 to 4e-02 on the 215M example with
 * random weights, on an H200), so a round is checked against the logits of
 * the same model in f32 arithmetic instead: it may be no further from them
 * than TUNE_BF16_SLACK times round 1's distance, plus TUNE_TOL. */
#define TUNE_BF16_SLACK 1.25
/* A candidate replaces the default only when this much faster. */
#define TUNE_MARGIN 0.97

typedef struct bucket_acc {
  char bucket[160];
  int ops, candidates;
  char config[CG_CUDA_MAX_CANDIDATES][16]; /* per round: the configuration run */
  double us[CG_CUDA_MAX_CANDIDATES];       /* per round: the best run (-1: not run) */
  bool bad[CG_CUDA_MAX_CANDIDATES];        /* per round: logits disagreed */
  double cur;                              /* the last run's ms */
  double best;                             /* this round's best run's ms (-1: none) */
} bucket_acc;

typedef struct tuner {
  bucket_acc *b;
  int nb, cap;
} tuner;

static hsart_status fail(hsart_error *err, hsart_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static hsart_status fail(hsart_error *err, hsart_status st, const char *fmt, ...) {
  if (err) {
    err->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return st;
}

static bucket_acc *bucket_of(tuner *t, const char *name) {
  for (int i = 0; i < t->nb; i++)
    if (!strcmp(t->b[i].bucket, name)) return &t->b[i];
  if (t->nb == t->cap) {
    int cap = t->cap ? 2 * t->cap : 16;
    bucket_acc *p = realloc(t->b, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    t->b = p;
    t->cap = cap;
  }
  bucket_acc *a = &t->b[t->nb++];
  memset(a, 0, sizeof *a);
  snprintf(a->bucket, sizeof a->bucket, "%s", name);
  for (int r = 0; r < CG_CUDA_MAX_CANDIDATES; r++) a->us[r] = -1;
  a->best = -1;
  return a;
}

static double norm_err(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    num += d * d;
    den += (double)a[i] * (double)a[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The profile's time per bucket since `base` (per entry), into each
 * bucket's cur; on the round's first run, records the buckets, their
 * configurations in round r and their ops.  base is updated to the
 * profile's current times. */
static int take(tuner *t, hsart_session *s, hsart_op_time **prof, int64_t *nprof,
                double **base, int r, bool first) {
  int64_t n = hsart_session_profile(s, NULL, 0);
  if (n < 0) return -1;
  if (n > *nprof) {
    hsart_op_time *p = realloc(*prof, (size_t)n * sizeof *p);
    double *q = realloc(*base, (size_t)n * sizeof *q);
    if (p) *prof = p;
    if (q) *base = q;
    if (!p || !q) return -1;
    for (int64_t i = *nprof; i < n; i++) (*base)[i] = 0;
    *nprof = n;
  }
  hsart_session_profile(s, *prof, n);
  for (int i = 0; i < t->nb; i++) t->b[i].cur = 0;
  for (int64_t i = 0; i < n; i++) {
    const hsart_op_time *e = &(*prof)[i];
    double d = e->ms - (*base)[i];
    (*base)[i] = e->ms;
    if (!e->bucket[0]) continue;
    bucket_acc *a = bucket_of(t, e->bucket);
    if (!a) return -1;
    if (first) {
      a->ops++;
      a->candidates = e->candidates;
      snprintf(a->config[r], sizeof a->config[r], "%s", e->config);
    }
    a->cur += d;
  }
  return 0;
}

void hsart_tune_report_free(hsart_tune_report *rep) {
  if (!rep) return;
  free(rep->results);
  rep->results = NULL;
  rep->nresults = 0;
}

/* The prompt's tokens (*L) and the decode steps (*D) of every run. */
static void tune_shape(const hsart_tune_options *t, int64_t *L, int *D) {
  *L = t->length > 0 ? t->length : 4096;
  *D = t->decode < 0 ? 0 : t->decode > 0 ? t->decode : 32;
}

/* The tokens of every run: n pseudo-random ids below V. */
static void tune_tokens(int32_t *tok, int64_t n, int64_t V) {
  uint64_t g = 0x9e3779b97f4a7c15ull;
  for (int64_t i = 0; i < n; i++) {
    g = g * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int32_t)((g >> 33) % (uint64_t)V);
  }
}

/* One run of session s (reset first): the prompt tok[0, L), then D decode
 * steps; the logits after the prompt in out[0, V), after the steps in
 * out[V, 2V). */
static hsart_status run_once(hsart_session *s, const int32_t *tok, int64_t L, int D, int64_t V,
                             float *out) {
  hsart_session_reset(s);
  hsart_status st = hsart_prefill(s, tok, L);
  if (st == HSART_OK) memcpy(out, hsart_logits(s), (size_t)V * sizeof *out);
  for (int i = 0; st == HSART_OK && i < D; i++) st = hsart_decode(s, tok[L + i]);
  if (st == HSART_OK) memcpy(out + V, hsart_logits(s), (size_t)V * sizeof *out);
  return st;
}

/* The logits (after the prompt, after the decode steps: 2 V floats, in a
 * malloc'd *out) of one run of the model in f32 arithmetic with its
 * default configurations: what a bf16 round is checked against. */
static hsart_status f32_logits(const char *model_path, const char *weights,
                               const hsart_model_options *mo, const hsart_tune_options *t,
                               float **out, hsart_error *err) {
  hsart_model_options o = *mo;
  o.gpu_bf16 = 0;
  o.tuning_db = "none";
  hsart_model *m = NULL;
  hsart_status st = hsart_model_load(model_path, weights, &o, &m, err);
  if (st != HSART_OK) return st;
  int64_t L;
  int D;
  tune_shape(t, &L, &D);
  int64_t V = hsart_model_vocab(m);
  hsart_session_options so = {.segment = L < 4096 ? L : 4096};
  hsart_session *s = NULL;
  st = hsart_session_create(m, &so, &s, err);
  int32_t *tok = st == HSART_OK ? malloc((size_t)(L + D) * sizeof *tok) : NULL;
  *out = tok ? malloc((size_t)V * 2 * sizeof **out) : NULL;
  if (st == HSART_OK && !*out) st = fail(err, HSART_ENOMEM, "out of memory");
  if (st == HSART_OK) {
    tune_tokens(tok, L + D, V);
    st = run_once(s, tok, L, D, V, *out);
    if (st != HSART_OK)
      fail(err, st, "the f32 run that bf16 rounds are checked against: %s",
           hsart_session_error(s));
  }
  if (st != HSART_OK) {
    free(*out);
    *out = NULL;
  }
  free(tok);
  hsart_session_free(s);
  hsart_model_free(m);
  return st;
}

/* One round: model compiled for round r, a warm-up and reps timed runs.
 * f32ref (bf16 arithmetic only): the f32 logits; *ref_err: round 1's
 * distance from them. */
static hsart_status run_round(const char *model_path, const char *weights,
                              const hsart_model_options *mo, const hsart_tune_options *t, int r,
                              tuner *tu, float **ref, int64_t *nref, double *max_err,
                              const float *f32ref, double *ref_err, hsart_gpu_info *gpu,
                              int *maxcand, hsart_error *err) {
  hsart_model_options o = *mo;
  o.tune_round = r + 1;
  o.tuning_db = "none";
  hsart_model *m = NULL;
  hsart_status st = hsart_model_load(model_path, weights, &o, &m, err);
  if (st != HSART_OK) return st;
  if (!hsart_model_gpu(m, gpu)) {
    fail(err, HSART_EINVAL, "hsac tune tunes the cuda backends' kernels, not %s's",
         hsart_model_backend(m));
    hsart_model_free(m);
    return HSART_EINVAL;
  }
  int64_t L;
  int D;
  tune_shape(t, &L, &D);
  int reps = t->reps > 0 ? t->reps : 3;
  int64_t V = hsart_model_vocab(m);
  hsart_session_options so = {.segment = L < 4096 ? L : 4096, .profile = 1};
  hsart_session *s = NULL;
  st = hsart_session_create(m, &so, &s, err);
  int32_t *tok = st == HSART_OK ? malloc((size_t)(L + D) * sizeof *tok) : NULL;
  float *out = tok ? malloc((size_t)V * 2 * sizeof *out) : NULL;
  hsart_op_time *prof = NULL;
  double *base = NULL;
  int64_t nprof = 0;
  if (st == HSART_OK && !out) st = fail(err, HSART_ENOMEM, "out of memory");
  if (out) tune_tokens(tok, L + D, V);
  for (int i = 0; i < tu->nb; i++) tu->b[i].best = -1;
  for (int rep = 0; st == HSART_OK && rep <= reps; rep++) {
    st = run_once(s, tok, L, D, V, out);
    if (st != HSART_OK) {
      fail(err, st, "tuning round %d: %s", r + 1, hsart_session_error(s));
      break;
    }
    if (take(tu, s, &prof, &nprof, &base, r, rep == 0)) {
      st = fail(err, HSART_ENOMEM, "out of memory");
      break;
    }
    if (rep > 0) { /* run 0 warms up */
      for (int i = 0; i < tu->nb; i++)
        if (tu->b[i].best < 0 || tu->b[i].cur < tu->b[i].best) tu->b[i].best = tu->b[i].cur;
      continue;
    }
    if (r == 0) {
      for (int i = 0; i < tu->nb; i++)
        if (tu->b[i].candidates > *maxcand) *maxcand = tu->b[i].candidates;
      if (*maxcand > CG_CUDA_MAX_CANDIDATES) *maxcand = CG_CUDA_MAX_CANDIDATES;
      if (!*ref) *ref = malloc((size_t)V * 2 * sizeof **ref);
      if (!*ref) {
        st = fail(err, HSART_ENOMEM, "out of memory");
        break;
      }
      memcpy(*ref, out, (size_t)V * 2 * sizeof *out);
      *nref = 2 * V;
      if (f32ref) *ref_err = norm_err(f32ref, out, *nref);
    } else {
      double e = norm_err(*ref, out, *nref);
      if (e > *max_err) *max_err = e;
      bool ok = f32ref ? norm_err(f32ref, out, *nref) <= TUNE_BF16_SLACK * *ref_err + TUNE_TOL
                       : e <= TUNE_TOL;
      if (!ok)
        for (int i = 0; i < tu->nb; i++)
          if (strcmp(tu->b[i].config[r], tu->b[i].config[0])) tu->b[i].bad[r] = true;
    }
  }
  if (st == HSART_OK)
    for (int i = 0; i < tu->nb; i++) tu->b[i].us[r] = tu->b[i].best * 1e3;
  free(prof);
  free(base);
  free(out);
  free(tok);
  hsart_session_free(s);
  hsart_model_free(m);
  return st;
}

hsart_status hsart_tune(const char *model_path, const hsart_model_options *opts,
                        const hsart_tune_options *t, hsart_tune_report *rep, hsart_error *err) {
  memset(rep, 0, sizeof *rep);
  if (err) err->message[0] = 0, err->status = HSART_OK;
  hsart_model_options mo = opts ? *opts : (hsart_model_options){.opt_level = 1};
  hsart_tune_options to = t ? *t : (hsart_tune_options){0};
  if (mo.backend == HSART_BACKEND_AUTO) mo.backend = HSART_BACKEND_CUDA;
  if (mo.backend != HSART_BACKEND_CUDA && mo.backend != HSART_BACKEND_CUDA_EMU)
    return fail(err, HSART_EINVAL, "hsac tune tunes the cuda backends' kernels");
  char dbp[4096] = "", perr[256];
  if (!to.dry_run) {
    if (to.db_path && to.db_path[0]) {
      snprintf(dbp, sizeof dbp, "%s", to.db_path);
    } else if (cg_tuning_path(dbp, sizeof dbp, perr, sizeof perr)) {
      return fail(err, HSART_EINVAL, "%s", perr);
    }
    /* a malformed database, or one that cannot be written, is reported
     * before any time is spent */
    cg_tuning db;
    char lerr[4600];
    if (cg_tuning_load(&db, dbp, lerr, sizeof lerr))
      return fail(err, HSART_EFORMAT, "%.1000s", lerr);
    cg_tuning_free(&db);
    if (cg_tuning_writable(dbp, lerr, sizeof lerr))
      return fail(err, HSART_EIO, "%.1000s", lerr);
  }
  /* weights: the given file, or random ones in a temporary file */
  char tmpw[] = "/tmp/hsac-tune-XXXXXX";
  const char *weights = to.weights_path;
  if (!weights) {
    int fd = mkstemp(tmpw);
    if (fd < 0) return fail(err, HSART_EIO, "cannot create a temporary file for the weights");
    close(fd);
    hsart_status st = hsart_init_weights_opts(model_path, tmpw, 1, &mo, err);
    if (st != HSART_OK) {
      remove(tmpw);
      return st;
    }
    weights = tmpw;
  }
  tuner tu = {0};
  float *ref = NULL, *f32ref = NULL;
  int64_t nref = 0;
  double max_err = 0, ref_err = 0;
  int maxcand = 1;
  hsart_status st = HSART_OK;
  if (mo.gpu_bf16) st = f32_logits(model_path, weights, &mo, &to, &f32ref, err);
  int r = 0;
  for (; st == HSART_OK && r < maxcand; r++) {
    st = run_round(model_path, weights, &mo, &to, r, &tu, &ref, &nref, &max_err, f32ref,
                   &ref_err, &rep->gpu, &maxcand, err);
    if (st == HSART_OK && to.progress) {
      char line[512];
      int nrun = 0;
      for (int i = 0; i < tu.nb; i++) nrun += r < tu.b[i].candidates;
      if (r == 0)
        snprintf(line, sizeof line, "round 1 of %d: the default configurations of %d shape "
                 "buckets timed", maxcand, tu.nb);
      else if (f32ref)
        snprintf(line, sizeof line, "round %d of %d: %d of %d shape buckets in their candidate "
                 "%d; logits within %.1e of round 1's (which is %.1e from f32 arithmetic's)",
                 r + 1, maxcand, nrun, tu.nb, r + 1, max_err, ref_err);
      else
        snprintf(line, sizeof line, "round %d of %d: %d of %d shape buckets in their candidate "
                 "%d; logits within %.1e of round 1's", r + 1, maxcand, nrun, tu.nb, r + 1,
                 max_err);
      to.progress(to.user, line);
    }
  }
  if (!to.weights_path) remove(tmpw);
  free(ref);
  free(f32ref);
  if (st != HSART_OK) {
    free(tu.b);
    return st;
  }
  rep->rounds = r;
  rep->max_err = max_err;
  rep->results = calloc((size_t)tu.nb + 1, sizeof *rep->results);
  cg_tuning_entry *ent = calloc((size_t)tu.nb + 1, sizeof *ent);
  if (!rep->results || !ent) {
    free(ent);
    free(tu.b);
    hsart_tune_report_free(rep);
    return fail(err, HSART_ENOMEM, "out of memory");
  }
  int ne = 0;
  for (int i = 0; i < tu.nb; i++) {
    const bucket_acc *a = &tu.b[i];
    hsart_tune_result *x = &rep->results[rep->nresults++];
    snprintf(x->bucket, sizeof x->bucket, "%s", a->bucket);
    x->ops = a->ops;
    x->candidates = a->candidates;
    snprintf(x->default_config, sizeof x->default_config, "%s", a->config[0]);
    x->default_us = a->us[0];
    int w = 0;
    for (int c = 1; c < a->candidates && c < r; c++) {
      if (a->bad[c]) {
        x->rejected++;
        continue;
      }
      if (a->us[c] >= 0 && a->us[c] < a->us[w] && a->us[c] < TUNE_MARGIN * a->us[0]) w = c;
    }
    snprintf(x->best, sizeof x->best, "%s", a->config[w]);
    x->best_us = a->us[w];
    cg_tuning_entry *e = &ent[ne++];
    snprintf(e->dev.name, sizeof e->dev.name, "%s", rep->gpu.name);
    snprintf(e->dev.arch, sizeof e->dev.arch, "%s", rep->gpu.arch);
    snprintf(e->dev.driver, sizeof e->dev.driver, "%s", rep->gpu.driver);
    snprintf(e->dev.compiler, sizeof e->dev.compiler, "%s", rep->gpu.compiler);
    snprintf(e->bucket, sizeof e->bucket, "%s", a->bucket);
    snprintf(e->config, sizeof e->config, "%s", a->config[w]);
    e->us = a->us[w];
    e->default_us = a->us[0];
  }
  free(tu.b);
  if (!to.dry_run) {
    char serr[4600];
    if (cg_tuning_save(dbp, ent, ne, serr, sizeof serr)) {
      free(ent);
      hsart_tune_report_free(rep);
      return fail(err, HSART_EIO, "%.1000s", serr);
    }
    snprintf(rep->db_path, sizeof rep->db_path, "%s", dbp);
  }
  free(ent);
  return HSART_OK;
}
