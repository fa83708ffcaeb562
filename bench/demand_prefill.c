/* demand_prefill.c - what demand analysis buys a long prefill.
 *
 * Prefills the same N random tokens twice in one run of one model: once
 * computing only what the last position's logits need (the default), once
 * computing every position (all_positions), and prints both times, their
 * ratio, and the largest difference between the two sets of last logits
 * (which must be 0 up to rounding).
 *
 *   bench_demand_prefill MODEL.hsa WEIGHTS.safetensors [N] [SEGMENT] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/hsa_runtime.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.hsa WEIGHTS [N] [SEGMENT]\n", argv[0]);
    return 2;
  }
  long n = argc > 3 ? atol(argv[3]) : 16384, seg = argc > 4 ? atol(argv[4]) : 1024;
  hsart_error e;
  hsart_model *m;
  if (hsart_model_load(argv[1], argv[2], NULL, &m, &e)) {
    fprintf(stderr, "%s\n", e.message);
    return 1;
  }
  int32_t *tok = malloc((size_t)n * sizeof *tok);
  unsigned long long r = 1;
  for (long i = 0; i < n; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int32_t)((r >> 33) % 256);
  }
  int64_t V = hsart_model_vocab(m);
  float *last[2] = {malloc((size_t)V * sizeof(float)), malloc((size_t)V * sizeof(float))};
  double t[2];
  for (int mode = 0; mode < 2; mode++) {
    hsart_session_options o = {.segment = seg, .all_positions = mode};
    hsart_session *s;
    if (hsart_session_create(m, &o, &s, &e)) {
      fprintf(stderr, "%s\n", e.message);
      return 1;
    }
    double t0 = now();
    if (hsart_prefill(s, tok, n)) {
      fprintf(stderr, "%s\n", hsart_session_error(s));
      return 1;
    }
    t[mode] = now() - t0;
    for (int64_t i = 0; i < V; i++) last[mode][i] = hsart_logits(s)[i];
    hsart_session_free(s);
  }
  double d = 0;
  for (int64_t i = 0; i < V; i++) d = fmax(d, fabs((double)last[0][i] - last[1][i]));
  printf("%s: prefill of %ld tokens (segments of %ld): demand-driven %.2f s, every "
         "position %.2f s, %.2fx faster; max |logit difference| %.3g\n",
         hsart_model_name(m), n, seg, t[0], t[1], t[1] / t[0], d);
  free(tok);
  free(last[0]);
  free(last[1]);
  hsart_model_free(m);
  return d <= 1e-5 ? 0 : 1;
}
