/* fuzz_safetensors.c - libFuzzer target: the safetensors loader.
 *
 * The input is the bytes of a weights file.  st_parse validates them (the
 * header length, the JSON header, every tensor's dtype, shape and offsets,
 * overlaps and duplicates); when it accepts them, every tensor is looked up
 * by name and converted to f32 as the loader would.  Then the same bytes
 * are bound to a small fixed model (MICRO below: every kind of weight of
 * the paper's design at tiny sizes) through the public hsart_model_load,
 * and when they bind, a session runs a short prefill, a decode step and
 * sampling on them: hostile but well-formed weights (huge values, signed
 * zeros, subnormals) reach the reference kernels and the sampler.
 *
 * hsart_model_load reads files, so the model and each accepted input are
 * written to a private temporary directory made at start-up (removed at
 * exit). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/hsa_runtime.h"
#include "runtime/safetensors.h"
#include "fuzz_files.h"

/* Its weights file (hsac init-weights) is about 15 KB: a valid seed. */
static const char MICRO[] =
    "model micro {\n"
    "  vocab = 16\n"
    "  width = 8\n"
    "  heads = 2, kv_heads = 1, head_dim = 4\n"
    "  norm = rmsnorm(eps = 1e-6)\n"
    "  mlp = swiglu(hidden = 16)\n"
    "  context = 64\n"
    "  stack lower {\n"
    "    swa(window = 8, rope = 10000)\n"
    "  }\n"
    "  memory mem from lower {\n"
    "    chunk = 8\n"
    "    encoder = transformer(layers = 1, attention = bidirectional)\n"
    "    landmark = cls\n"
    "  }\n"
    "  stack upper {\n"
    "    r = retrieve(mem, topk = 2, weights = stickbreak, per = token, groups = kv, score_offset = learned(0))\n"
    "    hsa(r, merge = weighted, softmax_plus = 0, residual = bypass)\n"
    "    swa(window = 8)\n"
    "  }\n"
    "}\n";

static char dir[64], model_path[96], weights_path[96];

static void cleanup(void) {
  unlink(weights_path);
  unlink(model_path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_make_dir(dir, "fuzz_safetensors");
  snprintf(model_path, sizeof model_path, "%s/micro.hsa", dir);
  snprintf(weights_path, sizeof weights_path, "%s/w.safetensors", dir);
  atexit(cleanup);
  if (fuzz_write_file(model_path, MICRO, sizeof MICRO - 1) != 0) {
    perror("fuzz_safetensors: writing the model");
    abort();
  }
  return 0;
}

static void run_model(void) {
  hsart_model *m = NULL;
  hsart_error e;
  /* the reference backend: this target is about the loader, and compiling
   * kernels for every accepted input would only slow the fuzzer down */
  hsart_model_options mo = {.opt_level = 1, .backend = HSART_BACKEND_REF};
  if (hsart_model_load(model_path, weights_path, &mo, &m, &e) != HSART_OK) return;
  hsart_session *s = NULL;
  hsart_session_options so = {.segment = 8};
  if (hsart_session_create(m, &so, &s, &e) == HSART_OK) {
    /* two segments, so the memory holds a chunk, then one decode step */
    static const int32_t prompt[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    if (hsart_prefill(s, prompt, 12) == HSART_OK) {
      int32_t t = 0;
      hsart_sampler greedy = {0};
      hsart_sampler nucleus = {.temperature = 0.8f, .top_k = 5, .top_p = 0.9f, .seed = 1};
      if (hsart_sample(s, &greedy, &t) == HSART_OK && hsart_decode(s, t) == HSART_OK)
        hsart_sample(s, &nucleus, &t);
    }
    hsart_session_free(s);
  }
  hsart_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_file f;
  char err[512];
  memset(&f, 0, sizeof f);
  if (st_parse(data, size, "fuzz.safetensors", &f, err, sizeof err) != HSART_OK) return 0;
  size_t total = 0;
  for (int i = 0; i < f.ntensors; i++) {
    const st_tensor *t = &f.tensors[i];
    if (st_find(&f, t->name) != t) abort(); /* names are unique and sorted */
    size_t n = (size_t)((t->end - t->begin) / st_dtype_size(t->dtype));
    float *out = malloc(n * sizeof *out + 1);
    if (!out) continue;
    st_to_f32(t, out);
    free(out);
    total += n;
  }
  (void)total;
  st_close(&f);
  if (fuzz_write_file(weights_path, data, size) == 0) run_model();
  return 0;
}
