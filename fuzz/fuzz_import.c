/* fuzz_import.c - libFuzzer target: `hsac import` (import/authors.c).
 *
 * The input is the bytes of a checkpoint's config.json.  At start-up a
 * private temporary folder gets a checkpoint for the seed config (below):
 * the importer is run once with no tensors, and every tensor it reports
 * missing is written, zero-filled, with the shape it asked for.  Each input
 * then replaces config.json and is imported into a scratch output folder:
 * configs close to the seed reach the placement and the writing, the
 * others the field checks, the refusals and the generated model's
 * compilation. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/import.h"
#include "runtime/safetensors.h"
#include "fuzz_files.h"

static const char SEED[] =
    "{\"architectures\": [\"DRTForCausalLM\"], \"vocab_size\": 16, \"hidden_size\": 32,\n"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"num_kv_heads\": 1,\n"
    " \"intermediate_size\": 24, \"num_lower_layers\": 1, \"num_upper_layers\": 1,\n"
    " \"num_upper_groups\": 1, \"chunk_size\": 8, \"chunk_topk\": 2, \"retrieval_dim\": 8,\n"
    " \"encoder_layers\": 1, \"sliding_window\": 7, \"enable_qk_norm\": true,\n"
    " \"enable_lmk_norm\": true, \"enc_prenorm\": true}\n";

static char dir[64], cfg_path[96], st_path[96], out_dir[96];

static void cleanup(void) {
  char p[160];
  snprintf(p, sizeof p, "%s/model.hsa", out_dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/weights.safetensors", out_dir);
  unlink(p);
  rmdir(out_dir);
  unlink(cfg_path);
  unlink(st_path);
  rmdir(dir);
}

static char err[4096];

static hsart_status import_once(hsac_import_report *r) {
  hsac_import_opts o = {.dir = dir, .out_dir = out_dir, .name = "fuzz"};
  hsac_import_report_init(r);
  return hsac_import(&o, r, err, sizeof err);
}

static void die(const char *what) {
  fprintf(stderr, "fuzz_import: %s: %s\n", what, err);
  abort();
}

/* The checkpoint the seed config asks for: "missing tensor NAME [a, b]". */
static void write_seed_checkpoint(void) {
  st_out_tensor none = {.name = "unused", .rank = 1, .shape = {1}, .data = (float[]){0}};
  if (fuzz_write_file(cfg_path, SEED, sizeof SEED - 1) != 0 ||
      st_write(st_path, &none, 1, NULL, err, sizeof err) != HSART_OK)
    die("writing the seed checkpoint");
  hsac_import_report r;
  import_once(&r);
  st_out_tensor ts[256];
  static float zeros[1 << 16];
  int n = 0;
  for (int i = 0; i < r.nproblems && n < 256; i++) {
    char name[200];
    long long d[4];
    int got = sscanf(r.problems[i], "missing tensor %199s [%lld, %lld", name, &d[0], &d[1]);
    if (got < 2) continue;
    st_out_tensor *t = &ts[n++];
    t->name = strdup(name);
    t->rank = got - 1;
    for (int k = 0; k < t->rank; k++) t->shape[k] = d[k];
    t->data = zeros;
  }
  hsac_import_report_free(&r);
  if (st_write(st_path, ts, n, NULL, err, sizeof err) != HSART_OK) die("writing its tensors");
  for (int i = 0; i < n; i++) free((char *)ts[i].name);
  /* the seed now imports */
  if (import_once(&r) != HSART_OK) {
    for (int i = 0; i < r.nproblems; i++) fprintf(stderr, "  %s\n", r.problems[i]);
    die("importing the seed");
  }
  hsac_import_report_free(&r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_make_dir(dir, "fuzz_import");
  snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
  snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
  snprintf(out_dir, sizeof out_dir, "%s/out", dir);
  atexit(cleanup);
  write_seed_checkpoint();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fuzz_write_file(cfg_path, data, size) != 0) return 0;
  hsac_import_report r;
  import_once(&r);
  hsac_import_report_free(&r);
  return 0;
}
