/* models.c - whole-model logits on a backend, for the tests that compare
 * backends with the reference (test_backend.c, test_cuda.c). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct capture {
  float *logits;
  int64_t vocab, n;
} capture;

static void on_logits(void *user, int64_t pos, const float *l, int64_t vocab) {
  capture *c = user;
  if (pos < c->n) memcpy(c->logits + pos * vocab, l, (size_t)vocab * sizeof *l);
}

/* Logits of every position of tok[0..n) on a backend: a prefill in
 * segments of `segment`, or (segment 0) the first token then decode. */
bool tu_model_logits(const char *model, const char *weights, hsart_backend be, const char *cpu,
                     const int32_t *tok, int64_t n, int64_t segment, float **out, int64_t *vocab,
                     hsart_weights_dtype wd) {
  hsart_model_options mo = {.opt_level = 1, .backend = be, .cpu = cpu, .threads = 2,
                            .weights_dtype = wd};
  return tu_model_logits_mo(model, weights, &mo, tok, n, segment, out, vocab);
}

bool tu_model_logits_mo(const char *model, const char *weights, const hsart_model_options *opts,
                        const int32_t *tok, int64_t n, int64_t segment, float **out,
                        int64_t *vocab) {
  hsart_model_options mo = *opts;
  hsart_model *m;
  hsart_error e;
  if (hsart_model_load(model, weights, &mo, &m, &e) != HSART_OK) {
    fprintf(stderr, "\n%s: %s\n", model, e.message);
    return false;
  }
  *vocab = hsart_model_vocab(m);
  capture c = {calloc((size_t)(n * *vocab), sizeof(float)), *vocab, n};
  hsart_session_options so = {.segment = segment ? segment : 512};
  if (segment) so.on_logits = on_logits, so.user = &c;
  hsart_session *s = NULL;
  bool made = hsart_session_create(m, &so, &s, &e) == HSART_OK, ok = made;
  if (ok && segment) {
    ok = hsart_prefill(s, tok, n) == HSART_OK;
  } else if (ok) {
    ok = hsart_prefill(s, tok, 1) == HSART_OK;
    if (ok) memcpy(c.logits, hsart_logits(s), (size_t)*vocab * sizeof(float));
    for (int64_t i = 1; ok && i < n; i++) {
      ok = hsart_decode(s, tok[i]) == HSART_OK;
      if (ok) memcpy(c.logits + i * *vocab, hsart_logits(s), (size_t)*vocab * sizeof(float));
    }
  }
  if (!ok) fprintf(stderr, "\n%s: %s\n", model, made ? hsart_session_error(s) : e.message);
  if (made) hsart_session_free(s);
  hsart_model_free(m);
  *out = c.logits;
  return ok;
}

double tu_norm_err(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)a[i] * a[i];
  }
  return sqrt(num / (den > 0 ? den : 1));
}

bool tu_lists_every_example(const char *const *names, size_t n) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/examples/tiny", tu_src());
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "\ncannot list %s\n", dir);
    return false;
  }
  bool all = true;
  int seen = 0;
  for (struct dirent *de; (de = readdir(d));) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 4, ".hsa")) continue;
    seen++;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
      found = strlen(names[i]) == len - 4 && !strncmp(names[i], de->d_name, len - 4);
    if (!found) {
      fprintf(stderr, "\nexamples/tiny/%s is in no list of this suite\n", de->d_name);
      all = false;
    }
  }
  closedir(d);
  return all && seen > 0;
}
