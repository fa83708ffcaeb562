/* prefill.c - whole-model speed of a backend: prefill tokens/s and decode
 * tokens/s after a long context, with the CPU backend and the reference
 * interpreter measured in the same run.
 *
 *   bench_prefill MODEL.hsa WEIGHTS.safetensors [options]
 *     --tokens N       prompt length (default 4096; 64K, 1M accepted)
 *     --ref-tokens N   the reference runs on the first N tokens only (it is
 *                      slow); its tokens/s is then per token of that run
 *                      (default: N; 0 skips it)
 *     --all            compute every position (as a training forward or the
 *                      PyTorch twin does), not only what the last
 *                      position's logits need
 *     --decode N       then decode N tokens and report tokens/s and the
 *                      bytes read per token
 *     --threads T      threads of the CPU backend (default: every core)
 *     --segment N      prefill segment (default 1024)
 *     --cpu-math bf16  the CPU backend's linears (and, on AMX, the sparse
 *                      attention) in bf16 (docs/runtime.md); the bytes per
 *                      decode step count the matrices at 2 bytes
 *
 * Random byte tokens from a fixed seed.  Prints one Markdown table row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/pipeline.h"
#include "runtime/hsa_runtime.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long long size_arg(const char *s) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*end == 'K' || *end == 'k') v <<= 10;
  else if (*end == 'M' || *end == 'm') v <<= 20;
  return v;
}

/* Bytes one decode step reads at context T: every weight matrix (an
 * embedding reads one row), every landmark of each retrieval, the K/V of
 * the selected chunks of each sparse attention, the K/V of each window
 * (of the whole prefix for dense attention).  From the IR's shapes. */
static double decode_bytes(const char *path, int64_t T, bool bf16) {
  hsac_compilation c;
  hsac_init(&c);
  double b = 0;
  if (hsac_compile(&c, path, NULL, 0, HSAC_STAGE_IR) != HSAC_OK) return 0;
  for (ir_op *op = c.graph->first; op; op = op->next) {
    if (op->code == IR_LINEAR)
      b += (bf16 ? 2.0 : 4.0) * (double)ir_type_numel(&op->in[1]->type);
    if (op->code == IR_EMBED) b += 4.0 * (double)op->in[1]->type.dims[1].n;
    if (op->code == IR_LANDMARK_SCORES) {
      int64_t S = ir_attr_i(op, "chunk", 1), dr = op->in[1]->type.dims[1].n;
      b += 4.0 * (double)(T / S) * (double)dr;
    }
    if (op->code == IR_CHUNK_ATTENTION) {
      const ir_type *k = &op->in[1]->type, *i = &op->in[3]->type;
      double chunk = (double)k->dims[1].n * k->dims[2].n * k->dims[3].n;
      b += 2 * 4.0 * chunk * (double)i->dims[1].n * (double)i->dims[2].n;
    }
    if (op->code == IR_ATTENTION && op->in[1]->type.rank == 3) {
      int64_t W = ir_attr_i(op, "window", 0), n = W > 0 && W < T ? W : T;
      const ir_type *k = &op->in[1]->type;
      b += 2 * 4.0 * (double)n * (double)k->dims[1].n * (double)k->dims[2].n;
    }
  }
  hsac_free(&c);
  return b;
}

typedef struct result {
  double prefill_s, decode_s;
  float *last;
} result;

static int run(const char *model, const char *weights, hsart_backend be, int threads,
               const int32_t *tok, long long n, long long seg, bool all, long long ndec,
               bool bf16, result *r) {
  hsart_model_options mo = {.opt_level = 1, .backend = be, .threads = threads,
                            .cpu_bf16 = bf16};
  hsart_model *m;
  hsart_error e;
  if (hsart_model_load(model, weights, &mo, &m, &e)) {
    fprintf(stderr, "%s\n", e.message);
    return 1;
  }
  hsart_session_options so = {.segment = seg, .all_positions = all};
  hsart_session *s;
  if (hsart_session_create(m, &so, &s, &e)) {
    fprintf(stderr, "%s\n", e.message);
    return 1;
  }
  double t0 = now();
  if (hsart_prefill(s, tok, n)) {
    fprintf(stderr, "%s\n", hsart_session_error(s));
    return 1;
  }
  r->prefill_s = now() - t0;
  int64_t V = hsart_model_vocab(m);
  r->last = malloc((size_t)V * sizeof(float));
  memcpy(r->last, hsart_logits(s), (size_t)V * sizeof(float));
  if (ndec > 0) {
    t0 = now();
    for (long long i = 0; i < ndec; i++) {
      int32_t t;
      hsart_sample(s, NULL, &t);
      if (hsart_decode(s, t)) {
        fprintf(stderr, "%s\n", hsart_session_error(s));
        return 1;
      }
    }
    r->decode_s = now() - t0;
  }
  hsart_session_free(s);
  hsart_model_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.hsa WEIGHTS [--tokens N] [--ref-tokens N] [--all] "
            "[--decode N] [--threads T] [--segment N] [--cpu-math f32|bf16]\n", argv[0]);
    return 2;
  }
  long long n = 4096, nref = -1, ndec = 0, seg = 1024;
  int threads = 0;
  bool all = false, bf16 = false;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--tokens") && i + 1 < argc) n = size_arg(argv[++i]);
    else if (!strcmp(argv[i], "--ref-tokens") && i + 1 < argc) nref = size_arg(argv[++i]);
    else if (!strcmp(argv[i], "--decode") && i + 1 < argc) ndec = size_arg(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--segment") && i + 1 < argc) seg = size_arg(argv[++i]);
    else if (!strcmp(argv[i], "--all")) all = true;
    else if (!strcmp(argv[i], "--cpu-math") && i + 1 < argc) bf16 = !strcmp(argv[++i], "bf16");
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (nref < 0) nref = n;
  int32_t *tok = malloc((size_t)n * sizeof *tok);
  unsigned long long r = 1;
  for (long long i = 0; i < n; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int32_t)((r >> 33) % 256);
  }
  result cpu = {0}, ref = {0};
  if (run(argv[1], argv[2], HSART_BACKEND_CPU, threads, tok, n, seg, all, ndec, bf16, &cpu))
    return 1;
  double cpu_tps = (double)n / cpu.prefill_s, ref_tps = 0;
  if (nref > 0) {
    if (run(argv[1], argv[2], HSART_BACKEND_REF, 0, tok, nref, seg, all, 0, bf16, &ref)) return 1;
    ref_tps = (double)nref / ref.prefill_s;
  }
  const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
  printf("| %s | %lld%s | %.0f | %.0f%s | %.1fx |", name, n, all ? " (all positions)" : "",
         cpu_tps, ref_tps, nref > 0 && nref < n ? " (first tokens)" : "",
         ref_tps > 0 ? cpu_tps / ref_tps : 0.0);
  if (nref == n) {
    double d = 0;
    /* the vocabulary is the same model's */
    hsart_model *m;
    hsart_error e;
    if (!hsart_model_load(argv[1], argv[2], &(hsart_model_options){.backend = HSART_BACKEND_REF},
                          &m, &e)) {
      for (int64_t i = 0; i < hsart_model_vocab(m); i++)
        d = fmax(d, fabs((double)cpu.last[i] - ref.last[i]));
      hsart_model_free(m);
    }
    printf(" %.1e |", d);
  } else {
    printf(" - |");
  }
  if (ndec > 0) {
    double bytes = decode_bytes(argv[1], n, bf16);
    double tps = (double)ndec / cpu.decode_s;
    printf(" %.0f | %.2f MB | %.2f GB/s |", tps, bytes / 1e6, bytes * tps / 1e9);
  }
  printf("\n");
  free(tok);
  free(cpu.last);
  free(ref.last);
  return 0;
}
