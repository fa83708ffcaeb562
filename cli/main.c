/* main.c - the hsac command.
 *
 * The only place that prints and chooses exit codes: 0 success, 1 errors in
 * the input, 2 usage errors, 3 out of memory, 4 internal errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/versions.h"
#include "frontend/params.h"
#include "hsac_version.h"
#include "passes/pipeline.h"
#include "runtime/hsa_runtime.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_NOMEM = 3, EXIT_INTERNAL = 4 };

static const char usage_text[] =
    "usage: hsac <command> [options] FILE\n"
    "\n"
    "commands:\n"
    "  check FILE [-v]   validate a model description and print a summary;\n"
    "                    -v also prints the model with every default filled in\n"
    "  ir FILE           print the model's IR\n"
    "  params            print the reference of every parameter (Markdown)\n"
    "  version           print the versions of hsac, LLVM and NVRTC\n"
    "  help              print this text\n"
    "\n"
    "exit status: 0 success, 1 errors in the input, 2 usage errors\n";

static int usage_error(const char *fmt, const char *arg) {
  fputs("hsac: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n(run `hsac help` for usage)\n", stderr);
  return EXIT_USAGE;
}

static int exit_for(hsac_status st) {
  switch (st) {
  case HSAC_OK: return 0;
  case HSAC_EINPUT: return EXIT_INPUT;
  case HSAC_ENOMEM: return EXIT_NOMEM;
  case HSAC_EINTERNAL: return EXIT_INTERNAL;
  }
  return EXIT_INTERNAL;
}

static void human_bytes(double b, char *buf, size_t n) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, u++;
  snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", b, units[u]);
}

static void human_count(long long n, char *buf, size_t size) {
  if (n >= 1000000000)
    snprintf(buf, size, "%.2fB", (double)n / 1e9);
  else if (n >= 1000000)
    snprintf(buf, size, "%.2fM", (double)n / 1e6);
  else if (n >= 1000)
    snprintf(buf, size, "%.1fK", (double)n / 1e3);
  else
    snprintf(buf, size, "%lld", n);
}

static void print_summary(const hsac_compilation *c) {
  const fe_model *m = c->model;
  int nlayers = 0, nretr = 0;
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == FE_L_RETRIEVE)
      nretr++;
    else
      nlayers++;
  double per_token, fixed;
  hsac_cache_footprint(m, &per_token, &fixed);
  char params[32], pt[32], fx[32];
  long long np = (long long)ir_param_count(c->graph);
  human_count(np, params, sizeof params);
  human_bytes(per_token, pt, sizeof pt);
  human_bytes(fixed, fx, sizeof fx);
  printf("%s: ok: %s parameters (%lld), %d layers", m->name, params, np, nlayers);
  if (nretr) printf(" + %d retrieval%s", nretr, nretr == 1 ? "" : "s");
  if (m->nmemories) printf(", %d chunk memor%s", m->nmemories, m->nmemories == 1 ? "y" : "ies");
  printf(", cache %s per token of context + %s fixed\n", pt, fx);
}

static int cmd_compile(int argc, char **argv, bool ir) {
  const char *file = NULL;
  bool verbose = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
      if (ir) return usage_error("unknown option '%s' for ir", argv[i]);
      verbose = true;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return usage_error("unknown option '%s'", argv[i]);
    } else if (file) {
      return usage_error("more than one input file ('%s')", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return usage_error("%s", "no input file");
  hsac_compilation c;
  hsac_init(&c);
  hsac_status st = hsac_compile(&c, file, NULL, 0, HSAC_STAGE_IR);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_ENOMEM) fputs("hsac: error: out of memory\n", stderr);
  if (st == HSAC_EINTERNAL)
    fputs("hsac: error: internal compiler error (please report it with the input)\n",
          stderr);
  if (st == HSAC_OK) {
    if (ir) {
      ir_print(c.graph, stdout);
    } else {
      print_summary(&c);
      if (verbose) fe_model_print(c.model, stdout);
    }
  } else if (st == HSAC_EINPUT) {
    fprintf(stderr, "hsac: %d error%s in %s\n", c.diags.nerrors,
            c.diags.nerrors == 1 ? "" : "s", file);
  }
  hsac_free(&c);
  if (fflush(stdout) != 0 && st == HSAC_OK) {
    fputs("hsac: error: cannot write the output\n", stderr);
    return EXIT_INPUT;
  }
  return exit_for(st);
}

static int cmd_version(void) {
  char llvm[32], nvrtc[32];
  cg_llvm_version(llvm, sizeof llvm);
  cg_nvrtc_version(nvrtc, sizeof nvrtc);
  printf("hsac %s (runtime %s)\nLLVM %s\nNVRTC %s\n", HSAC_VERSION, hsart_version(), llvm,
         nvrtc);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "check")) return cmd_compile(argc - 2, argv + 2, false);
  if (!strcmp(cmd, "ir")) return cmd_compile(argc - 2, argv + 2, true);
  if (!strcmp(cmd, "params")) {
    if (argc > 2) return usage_error("'params' takes no arguments (got '%s')", argv[2]);
    fe_params_print_markdown(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version();
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    fputs(usage_text, stdout);
    return 0;
  }
  return usage_error("unknown command '%s'", cmd);
}
