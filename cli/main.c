/* main.c - the hsac command.
 *
 * The only place that prints and chooses exit codes: 0 success, 1 errors in
 * the input, 2 usage errors, 3 out of memory, 4 internal errors. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/versions.h"
#include "frontend/params.h"
#include "hsac_version.h"
#include "passes/pipeline.h"
#include "passes/plan.h"
#include "cli/tasks.h"
#include "ir/export.h"
#include "runtime/safetensors.h"
#include "runtime/hsa_runtime.h"
#include "runtime/backend.h"
#include "codegen/cache.h"
#include "codegen/cpu/jit.h"
#include "util/fileio.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_NOMEM = 3, EXIT_INTERNAL = 4 };

static const char usage_text[] =
    "usage: hsac <command> [options] FILE\n"
    "\n"
    "commands:\n"
    "  check FILE [-v]   validate a model description and print a summary;\n"
    "                    -v also prints the model with every default filled in\n"
    "  ir FILE [--print-after-all | --print-after=PASS] [-O0]\n"
    "                    print the model's IR after the passes (or after the\n"
    "                    named ones; -O0: as built, without passes)\n"
    "  ir FILE --emit=mlir|llvm|asm [--cpu NAME] | --emit=obj -o OUT.o\n"
    "                    the CPU backend's kernels: MLIR, LLVM IR after O3,\n"
    "                    assembly, or an object file, for the host or a named\n"
    "                    CPU (haswell, ...)\n"
    "  passes            list the passes in the order they run\n"
    "  plan FILE --context N [--segment N] [--cache f32|bf16]\n"
    "                    caches, activation memory with buffer reuse, and the\n"
    "                    work per stage of a request (N: 4096, 64K, 1M, 32M, ...)\n"
    "  init-weights FILE -o OUT [--seed N]\n"
    "                    write deterministic random weights (safetensors) for a model\n"
    "  run FILE --weights W (--prompt TEXT | --prompt-file F) [options]\n"
    "                    run a model on a prompt and stream the generated text:\n"
    "                    --max-new N (default 64), --temperature T (0: greedy),\n"
    "                    --top-k K, --top-p P, --seed S, --segment N (prefill\n"
    "                    segment, default 512), --cache f32|bf16|f16,\n"
    "                    --max-context N (refuse longer prompts; default 32M), -v\n"
    "  check, ir, plan, export, init-weights, run, logits also take: -I DIR (a\n"
    "                    folder searched for includes after the including file's)\n"
    "                    (say which backend runs and how it was compiled)\n"
    "  run, logits also take: --backend auto|cpu|ref (auto: cpu when it compiles\n"
    "                    every op, else ref), --threads N (default: every core),\n"
    "                    --cpu NAME (code for a named CPU), --no-cache,\n"
    "                    --check-numerics (name the first op that makes a NaN\n"
    "                    or infinity; non-finite logits are always an error)\n"
    "  logits FILE --weights W (--tokens 1,2,3 | --prompt TEXT) -o OUT\n"
    "                    the logits of every position, as a safetensors file with\n"
    "                    one tensor 'logits' [n, vocab] (for checking other\n"
    "                    implementations against the reference interpreter)\n"
    "  export --json FILE [-o OUT]\n"
    "                    write the model's structure as JSON (docs/export.md)\n"
    "  gen-task --task T --length BYTES [--seed N] [--needle K] [--count K]\n"
    "           [--items M] [--format text|jsonl|prompt]\n"
    "                    synthetic long-context evaluation items: passkey, multikey,\n"
    "                    multivalue, multiquery, vartrack (docs/tasks.md)\n"
    "  cache ls|clear    list or remove the compiled kernels cached on disk\n"
    "                    ($XDG_CACHE_HOME/hsac; HSAC_NO_CACHE=1 disables it)\n"
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

static bool known_pass(const char *name) {
  const char *const *names, *const *docs;
  int n = hsac_pass_names(&names, &docs);
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return true;
  return false;
}

static bool write_atomically(const char *path, const char *text, size_t len);

/* hsac ir --emit=mlir|llvm|asm|obj: the CPU backend's kernels of the model
 * (obj: an ELF object file with every kernel, written to -o). */
static hsac_status emit_code(const ir_graph *g, const char *emit, const char *cpu,
                             const char *out) {
  rt_backend_config cfg = {.cpu = cpu};
  char err[1024], *text = NULL;
  size_t len = 0;
  cg_target t;
  hsart_status st = rt_cpu_module_text(g, &cfg, &text, &t, err, sizeof err);
  if (st == HSART_OK && strcmp(emit, "mlir")) {
    char *low = NULL;
    cg_emit_kind kind = !strcmp(emit, "llvm") ? CG_EMIT_LLVM
                        : !strcmp(emit, "asm") ? CG_EMIT_ASM : CG_EMIT_OBJ;
    if (cg_jit_emit(text, &t, kind, &low, &len, err, sizeof err)) st = HSART_EUNSUPPORTED;
    free(text);
    text = low;
  } else if (text) {
    len = strlen(text);
  }
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", err);
    free(text);
    return st == HSART_ENOMEM ? HSAC_ENOMEM : HSAC_EINPUT;
  }
  if (!strcmp(emit, "obj")) {
    bool ok = write_atomically(out, text, len);
    if (!ok) fprintf(stderr, "hsac: error: cannot write '%s': %s\n", out, ut_file_strerror(errno));
    free(text);
    return ok ? HSAC_OK : HSAC_EINPUT;
  }
  printf("// %s kernels of model '%s' for %s (%d-bit vectors)\n", emit, g->name, t.cpu,
         t.vec_bits);
  fwrite(text, 1, len, stdout);
  free(text);
  return HSAC_OK;
}

/* -I DIR (or -IDIR): a folder searched for includes after the including
 * file's own (docs/language.md), up to 16.  Returns 1 when argv[*i] was one
 * (and consumed its value), 0 when not, -1 after a usage error. */
enum { MAX_INCLUDE_DIRS = 16 };
typedef struct include_dirs {
  const char *d[MAX_INCLUDE_DIRS + 1]; /* NULL-terminated */
  int n;
} include_dirs;

static int parse_include_opt(int argc, char **argv, int *i, include_dirs *l) {
  const char *a = argv[*i];
  if (strncmp(a, "-I", 2) != 0) return 0;
  const char *dir = a[2] ? a + 2 : *i + 1 < argc ? argv[++*i] : NULL;
  if (!dir || !*dir) return usage_error("%s", "-I expects a folder"), -1;
  if (l->n == MAX_INCLUDE_DIRS) return usage_error("%s", "at most 16 -I folders"), -1;
  l->d[l->n++] = dir;
  l->d[l->n] = NULL;
  return 1;
}

static int cmd_compile(int argc, char **argv, bool ir) {
  const char *file = NULL;
  bool verbose = false;
  const char *emit = NULL, *cpu = NULL, *out = NULL;
  hsac_options opts = {.stop = HSAC_STAGE_IR, .opt_level = 1};
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
      if (ir) return usage_error("unknown option '%s' for ir", argv[i]);
      verbose = true;
    } else if (ir && !strncmp(argv[i], "--emit=", 7)) {
      emit = argv[i] + 7;
      if (strcmp(emit, "mlir") && strcmp(emit, "llvm") && strcmp(emit, "asm") &&
          strcmp(emit, "obj"))
        return usage_error("--emit expects mlir, llvm, asm or obj, not '%s'", emit);
    } else if (ir && !strcmp(argv[i], "-o") && i + 1 < argc) {
      out = argv[++i];
    } else if (ir && !strcmp(argv[i], "--cpu") && i + 1 < argc) {
      cpu = argv[++i];
    } else if (ir && !strcmp(argv[i], "--print-after-all")) {
      opts.print_after = "all";
    } else if (ir && !strncmp(argv[i], "--print-after=", 14)) {
      opts.print_after = argv[i] + 14;
      if (!known_pass(opts.print_after))
        return usage_error("unknown pass '%s' (`hsac passes` lists them)", opts.print_after);
    } else if (ir && !strcmp(argv[i], "-O0")) {
      opts.opt_level = 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return usage_error("unknown option '%s'", argv[i]);
    } else if (file) {
      return usage_error("more than one input file ('%s')", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return usage_error("%s", "no input file");
  if (emit && !strcmp(emit, "obj") && !out)
    return usage_error("%s", "--emit=obj writes a binary file: give it with -o FILE");
  if (out && !(emit && !strcmp(emit, "obj")))
    return usage_error("%s", "-o goes with --emit=obj");
  opts.include_dirs = incs.n ? incs.d : NULL;
  hsac_compilation c;
  hsac_init(&c);
  if (opts.print_after && !strcmp(opts.print_after, "all")) {
    /* show the IR as built too, so every pass's effect is visible */
    hsac_options built = opts;
    built.opt_level = 0;
    built.print_after = NULL;
    hsac_compilation b;
    hsac_init(&b);
    if (hsac_compile_opts(&b, file, NULL, 0, &built) == HSAC_OK) {
      printf("# ---- as built\n");
      ir_print(b.graph, stdout);
    }
    hsac_free(&b);
  }
  hsac_status st = hsac_compile_opts(&c, file, NULL, 0, &opts);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_ENOMEM) fputs("hsac: error: out of memory\n", stderr);
  if (st == HSAC_EINTERNAL)
    fputs("hsac: error: internal compiler error (please report it with the input)\n",
          stderr);
  if (st == HSAC_OK && emit) {
    st = emit_code(c.graph, emit, cpu, out);
  } else if (st == HSAC_OK) {
    if (ir) {
      if (!opts.print_after) ir_print(c.graph, stdout);
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

/* Parses a whole decimal number into [lo, hi]; false if it is not one. */
static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool parse_float(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

/* --cache f32|bf16|f16 */
static bool parse_cache(const char *v, hsart_cache_type *out) {
  if (!strcmp(v, "f32")) *out = HSART_CACHE_F32;
  else if (!strcmp(v, "bf16")) *out = HSART_CACHE_BF16;
  else if (!strcmp(v, "f16")) *out = HSART_CACHE_F16;
  else return false;
  return true;
}

static int exit_for_rt(hsart_status st) {
  switch (st) {
  case HSART_OK: return 0;
  case HSART_ENOMEM: return EXIT_NOMEM;
  case HSART_EINVAL:
  case HSART_EUNSUPPORTED: return EXIT_INPUT;
  default: return EXIT_INPUT;
  }
}

static int cmd_init_weights(int argc, char **argv) {
  const char *file = NULL, *out = NULL;
  long long seed = 0;
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    if (!strcmp(argv[i], "-o") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if (!parse_int(argv[++i], 0, INT64_MAX, &seed))
        return usage_error("--seed expects a non-negative integer, not '%s'", argv[i]);
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return usage_error("unknown or incomplete option '%s'", argv[i]);
    } else if (file) {
      return usage_error("more than one input file ('%s')", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return usage_error("%s", "no input file");
  if (!out) return usage_error("%s", "no output file: -o OUT.safetensors");
  hsart_error e;
  hsart_model_options io = {.include_dirs = incs.n ? incs.d : NULL};
  hsart_status st = hsart_init_weights_opts(file, out, (uint64_t)seed, &io, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "%s\n", e.message);
    if (strncmp(e.message, file, strlen(file)) != 0 && st != HSART_EFORMAT)
      fprintf(stderr, "hsac: error: cannot write '%s'\n", out);
    return exit_for_rt(st);
  }
  return 0;
}

typedef struct progress {
  struct timespec start;
  bool shown;
} progress;

static double elapsed(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* A progress bar on stderr for prompts that take a while. */
static int show_progress(void *user, int64_t done, int64_t total) {
  progress *p = user;
  double s = elapsed(&p->start);
  if (total < 2048 && !p->shown) return 0;
  p->shown = true;
  int width = 30, fill = (int)(width * done / (total ? total : 1));
  fprintf(stderr, "\rprefill [%.*s%*s] %lld/%lld tokens, %.0f tokens/s", fill,
          "##############################", width - fill, "", (long long)done,
          (long long)total, s > 0 ? (double)done / s : 0.0);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
  return 0;
}

/* --backend ref|cpu|auto, --threads N, --cpu NAME, --no-cache: which
 * backend runs the kernels.  Returns 1 when argv[*i] was one of them (and
 * consumed its value), 0 when not, -1 after a usage error. */
static int parse_backend_opt(int argc, char **argv, int *i, hsart_model_options *mo) {
  const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  if (!strcmp(a, "--no-cache")) {
    mo->no_cache = 1;
    return 1;
  }
  if (!v) return 0;
  if (!strcmp(a, "--backend")) {
    ++*i;
    if (!strcmp(v, "ref")) mo->backend = HSART_BACKEND_REF;
    else if (!strcmp(v, "cpu")) mo->backend = HSART_BACKEND_CPU;
    else if (!strcmp(v, "auto")) mo->backend = HSART_BACKEND_AUTO;
    else return usage_error("--backend expects ref, cpu or auto, not '%s'", v), -1;
    return 1;
  }
  if (!strcmp(a, "--threads")) {
    long long n;
    ++*i;
    if (!parse_int(v, 1, 256, &n)) return usage_error("--threads expects 1..256, not '%s'", v), -1;
    mo->threads = (int)n;
    return 1;
  }
  if (!strcmp(a, "--cpu")) {
    ++*i;
    mo->cpu = v;
    return 1;
  }
  return 0;
}

static bool parse_size(const char *s, long long *out);

static int cmd_run(int argc, char **argv) {
  const char *file = NULL, *weights = NULL, *prompt = NULL, *prompt_file = NULL;
  long long max_new = 64, top_k = 0, seed = 0, segment = 512;
  double temperature = 0, top_p = 0;
  hsart_cache_type cache = HSART_CACHE_F32;
  hsart_model_options mo = {.opt_level = 1};
  bool verbose = false, check_numerics = false;
  long long max_context = 1LL << 25; /* 32M tokens: the paper's longest */
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool has = v != NULL;
    int b = parse_backend_opt(argc, argv, &i, &mo);
    if (b < 0) return EXIT_USAGE;
    if (b) continue;
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = true;
    else if (!strcmp(a, "--check-numerics")) check_numerics = true;
    else if (!strcmp(a, "--max-context") && has) {
      if (!parse_size(argv[++i], &max_context) || max_context > INT32_MAX)
        return usage_error("--max-context expects a size such as 64K or 32M, at most "
                           "2147483647, not '%s'", v);
    } else if (!strcmp(a, "--weights") && has) weights = argv[++i];
    else if (!strcmp(a, "--prompt") && has) prompt = argv[++i];
    else if (!strcmp(a, "--prompt-file") && has) prompt_file = argv[++i];
    else if (!strcmp(a, "--max-new") && has) {
      if (!parse_int(argv[++i], 0, 1 << 30, &max_new))
        return usage_error("--max-new expects an integer >= 0, not '%s'", v);
    } else if (!strcmp(a, "--temperature") && has) {
      if (!parse_float(argv[++i], 0, 100, &temperature))
        return usage_error("--temperature expects a number in [0, 100], not '%s'", v);
    } else if (!strcmp(a, "--top-k") && has) {
      if (!parse_int(argv[++i], 0, 1 << 30, &top_k))
        return usage_error("--top-k expects an integer >= 0, not '%s'", v);
    } else if (!strcmp(a, "--top-p") && has) {
      if (!parse_float(argv[++i], 0, 1, &top_p))
        return usage_error("--top-p expects a number in [0, 1], not '%s'", v);
    } else if (!strcmp(a, "--seed") && has) {
      if (!parse_int(argv[++i], 0, INT64_MAX, &seed))
        return usage_error("--seed expects a non-negative integer, not '%s'", v);
    } else if (!strcmp(a, "--segment") && has) {
      if (!parse_int(argv[++i], 1, 1 << 24, &segment))
        return usage_error("--segment expects an integer >= 1, not '%s'", v);
    } else if (!strcmp(a, "--cache") && has) {
      if (!parse_cache(argv[++i], &cache))
        return usage_error("--cache expects f32, bf16 or f16, not '%s'", v);
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown or incomplete option '%s'", a);
    } else if (file) {
      return usage_error("more than one input file ('%s')", a);
    } else {
      file = a;
    }
  }
  if (!file) return usage_error("%s", "no input file");
  if (!weights) return usage_error("%s", "no weights: --weights W.safetensors");
  if (!prompt == !prompt_file)
    return usage_error("%s", "give exactly one of --prompt TEXT and --prompt-file F");
  long long plen = 0;
  char *owned = NULL;
  /* A prompt longer than --max-context is refused before it is read in
   * full or anything runs: a 1 GiB prompt file would otherwise start a
   * prefill of a billion tokens.  (A model's `context` is the length it was
   * trained at, not a limit: this family reads far past it.) */
  if (prompt_file) {
    size_t got = 0;
    owned = ut_read_regular(prompt_file, (size_t)max_context, &got);
    plen = (long long)got;
    if (!owned && errno == EFBIG) {
      fprintf(stderr, "hsac: error: the prompt file '%s' holds more than %lld tokens "
              "(--max-context, default 32M); pass --max-context N to run it, and see `hsac "
              "plan FILE --context N` for its time and memory\n", prompt_file, max_context);
      return EXIT_INPUT;
    }
    if (!owned) {
      int e = errno;
      fprintf(stderr, "hsac: error: cannot read '%s': %s\n", prompt_file,
              e == ENOMEM ? "out of memory" : ut_file_strerror(e));
      return e == ENOMEM ? EXIT_NOMEM : EXIT_INPUT;
    }
    prompt = owned;
  } else {
    plen = (long long)strlen(prompt);
    if (plen > max_context) {
      fprintf(stderr, "hsac: error: the prompt holds %lld tokens, more than --max-context "
              "%lld\n", plen, max_context);
      return EXIT_INPUT;
    }
  }
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  int32_t *tokens = NULL;
  int rc = 0;
  mo.include_dirs = incs.n ? incs.d : NULL;
  hsart_status st = hsart_model_load(file, weights, &mo, &m, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "%s\n", e.message);
    rc = exit_for_rt(st);
    goto done;
  }
  if (verbose) {
    char desc[1024];
    hsart_model_describe(m, desc, sizeof desc);
    fprintf(stderr, "hsac: %s\n", desc);
  }
  if (hsart_model_vocab(m) < 256) {
    fprintf(stderr, "hsac: error: model '%s' has a vocabulary of %lld; the byte-level "
            "tokenizer needs at least 256\n", hsart_model_name(m),
            (long long)hsart_model_vocab(m));
    rc = EXIT_INPUT;
    goto done;
  }
  progress pr = {0};
  clock_gettime(CLOCK_MONOTONIC, &pr.start);
  hsart_session_options so = {.segment = segment, .cache = cache, .progress = show_progress,
                              .check_numerics = check_numerics, .user = &pr};
  st = hsart_session_create(m, &so, &s, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", e.message);
    rc = exit_for_rt(st);
    goto done;
  }
  tokens = malloc((size_t)(plen + 1) * sizeof *tokens);
  if (!tokens) {
    fprintf(stderr, "hsac: error: out of memory for a %lld-byte prompt\n", plen);
    rc = EXIT_NOMEM;
    goto done;
  }
  int64_t n = hsart_tokenize(prompt, plen, tokens, plen);
  if (n == 0) {
    fprintf(stderr, "hsac: error: the prompt is empty\n");
    rc = EXIT_INPUT;
    goto done;
  }
  st = hsart_prefill(s, tokens, n);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", hsart_session_error(s));
    rc = exit_for_rt(st);
    goto done;
  }
  hsart_sampler sp = {(float)temperature, (int32_t)top_k, (float)top_p, (uint64_t)seed};
  for (long long i = 0; i < max_new; i++) {
    int32_t t;
    st = hsart_sample(s, &sp, &t);
    if (st == HSART_OK && t == HSART_TOKEN_EOS) break;
    if (st == HSART_OK && t < 256) {
      fputc(t, stdout);
      fflush(stdout);
    }
    if (st == HSART_OK && i + 1 < max_new) st = hsart_decode(s, t);
    if (st != HSART_OK) {
      fprintf(stderr, "\nhsac: error: %s\n", hsart_session_error(s));
      rc = exit_for_rt(st);
      goto done;
    }
  }
  fputc('\n', stdout);
done:
  free(tokens);
  free(owned);
  hsart_session_free(s);
  hsart_model_free(m);
  return rc;
}

/* "4096", "64K", "1M", "32M", "2G" (binary multiples) */
static bool parse_size(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  long long mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1LL << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1LL << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1LL << 30, end++;
  if (errno || end == s || *end || v < 1 || v > (1LL << 40) / mul) return false;
  *out = v * mul;
  return true;
}

static int cmd_plan(int argc, char **argv) {
  const char *file = NULL;
  long long context = 0, segment = 512;
  hsart_cache_type cache = HSART_CACHE_F32;
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    /* the limits of `run`: a session holds at most 2^31 - 1 positions, a
     * segment at most 2^24 rows */
    if (!strcmp(a, "--context") && v) {
      if (!parse_size(argv[++i], &context) || context > INT32_MAX)
        return usage_error("--context expects a size such as 4096, 64K or 32M, at most "
                           "2147483647 (2^31 - 1) positions, not '%s'", v);
    } else if (!strcmp(a, "--segment") && v) {
      if (!parse_size(argv[++i], &segment) || segment > (1 << 24))
        return usage_error("--segment expects a size of at most 16M (as run), not '%s'", v);
    } else if (!strcmp(a, "--cache") && v) {
      if (!parse_cache(argv[++i], &cache))
        return usage_error("--cache expects f32, bf16 or f16, not '%s'", v);
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown or incomplete option '%s'", a);
    } else if (file) {
      return usage_error("more than one input file ('%s')", a);
    } else {
      file = a;
    }
  }
  if (!file) return usage_error("%s", "no input file");
  if (!context) return usage_error("%s", "no context: --context N");
  hsac_compilation c;
  hsac_init(&c);
  hsac_options po_c = {.stop = HSAC_STAGE_IR, .opt_level = 1,
                       .include_dirs = incs.n ? incs.d : NULL};
  hsac_status st = hsac_compile_opts(&c, file, NULL, 0, &po_c);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_OK) {
    hsac_plan_opts po = {.context = context, .segment = segment, .cache_bytes = cache == HSART_CACHE_F32 ? 4 : 2};
    if (!hsac_plan(c.graph, c.model, &po, NULL, stdout)) st = HSAC_ENOMEM;
  }
  hsac_free(&c);
  return exit_for(st);
}

/* Writes text to path through a temporary name and a rename (util/
 * fileio.h: an interrupted write never leaves a partial file under the
 * final name, and what is not a regular file is never replaced). */
static bool write_atomically(const char *path, const char *text, size_t len) {
  ut_outfile o;
  if (ut_out_begin(&o, path)) return false;
  if (fwrite(text, 1, len, o.fp) != len) {
    int e = errno;
    ut_out_abort(&o);
    errno = e;
    return false;
  }
  return ut_out_commit(&o) == 0;
}

static int cmd_export(int argc, char **argv) {
  const char *file = NULL, *out = NULL;
  bool json = false;
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
    else if (argv[i][0] == '-' && argv[i][1])
      return usage_error("unknown or incomplete option '%s'", argv[i]);
    else if (file) return usage_error("more than one input file ('%s')", argv[i]);
    else file = argv[i];
  }
  if (!json) return usage_error("%s", "export needs a format: --json");
  if (!file) return usage_error("%s", "no input file");
  hsac_compilation c;
  hsac_init(&c);
  hsac_options o = {.stop = HSAC_STAGE_IR, .opt_level = 0};
  o.include_dirs = incs.n ? incs.d : NULL;
  hsac_status st = hsac_compile_opts(&c, file, NULL, 0, &o);
  ut_diags_render(&c.diags, &c.sources, stderr);
  int rc = exit_for(st);
  if (st == HSAC_OK) {
    char *text = ir_export_json(c.graph, c.model);
    if (!text) {
      fputs("hsac: error: out of memory\n", stderr);
      rc = EXIT_NOMEM;
    } else if (out) {
      if (!write_atomically(out, text, strlen(text))) {
        fprintf(stderr, "hsac: error: cannot write '%s': %s\n", out, ut_file_strerror(errno));
        rc = EXIT_INPUT;
      }
    } else {
      fputs(text, stdout);
      fputc('\n', stdout);
    }
    free(text);
  }
  hsac_free(&c);
  return rc;
}

typedef struct all_logits {
  float *data;
  int64_t n, vocab;
} all_logits;

static void collect_logits(void *user, int64_t pos, const float *l, int64_t vocab) {
  all_logits *a = user;
  if (pos < a->n) memcpy(a->data + pos * vocab, l, (size_t)vocab * sizeof *l);
}

static int cmd_logits(int argc, char **argv) {
  const char *file = NULL, *weights = NULL, *tokens_arg = NULL, *prompt = NULL, *out = NULL;
  bool check_numerics = false;
  hsart_model_options mo = {.opt_level = 1};
  include_dirs incs = {{0}, 0};
  for (int i = 0; i < argc; i++) {
    int inc_opt = parse_include_opt(argc, argv, &i, &incs);
    if (inc_opt < 0) return EXIT_USAGE;
    if (inc_opt) continue;
    const char *a = argv[i];
    bool has = i + 1 < argc;
    int b = parse_backend_opt(argc, argv, &i, &mo);
    if (b < 0) return EXIT_USAGE;
    if (b) continue;
    if (!strcmp(a, "--weights") && has) weights = argv[++i];
    else if (!strcmp(a, "--tokens") && has) tokens_arg = argv[++i];
    else if (!strcmp(a, "--prompt") && has) prompt = argv[++i];
    else if (!strcmp(a, "-o") && has) out = argv[++i];
    else if (!strcmp(a, "--check-numerics")) check_numerics = true;
    else if (a[0] == '-' && a[1]) return usage_error("unknown or incomplete option '%s'", a);
    else if (file) return usage_error("more than one input file ('%s')", a);
    else file = a;
  }
  if (!file || !weights || !out)
    return usage_error("%s", "usage: hsac logits FILE --weights W (--tokens LIST | --prompt TEXT) -o OUT");
  if (!tokens_arg == !prompt) return usage_error("%s", "give exactly one of --tokens and --prompt");
  int64_t cap = tokens_arg ? (int64_t)strlen(tokens_arg) / 2 + 1 : (int64_t)strlen(prompt) + 1;
  int32_t *tok = malloc((size_t)cap * sizeof *tok);
  if (!tok) return EXIT_NOMEM;
  int64_t n = 0;
  if (tokens_arg) {
    for (const char *p = tokens_arg; *p;) {
      char *end;
      errno = 0;
      long v = strtol(p, &end, 10);
      if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
        free(tok);
        return usage_error("--tokens expects comma-separated token ids, not '%s'", tokens_arg);
      }
      tok[n++] = (int32_t)v;
      p = *end ? end + 1 : end;
    }
  } else {
    n = hsart_tokenize(prompt, (int64_t)strlen(prompt), tok, cap);
  }
  if (n == 0) {
    free(tok);
    return usage_error("%s", "no tokens");
  }
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  all_logits a = {0};
  int rc = 0;
  mo.include_dirs = incs.n ? incs.d : NULL;
  hsart_status st = hsart_model_load(file, weights, &mo, &m, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "%s\n", e.message);
    rc = exit_for_rt(st);
    goto done;
  }
  a.n = n;
  a.vocab = hsart_model_vocab(m);
  a.data = malloc((size_t)(n * a.vocab) * sizeof *a.data);
  hsart_session_options so = {.on_logits = collect_logits, .check_numerics = check_numerics,
                              .user = &a};
  if (!a.data || (st = hsart_session_create(m, &so, &s, &e)) != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", a.data ? e.message : "out of memory");
    rc = a.data ? exit_for_rt(st) : EXIT_NOMEM;
    goto done;
  }
  if ((st = hsart_prefill(s, tok, n)) != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", hsart_session_error(s));
    rc = exit_for_rt(st);
    goto done;
  }
  st_out_tensor t = {.name = "logits", .rank = 2, .shape = {n, a.vocab}, .data = a.data};
  char msg[512];
  if (st_write(out, &t, 1, NULL, msg, sizeof msg) != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", msg);
    rc = EXIT_INPUT;
  }
done:
  free(a.data);
  free(tok);
  hsart_session_free(s);
  hsart_model_free(m);
  return rc;
}

static int cmd_version(void) {
  char llvm[32], nvrtc[32];
  cg_llvm_version(llvm, sizeof llvm);
  cg_nvrtc_version(nvrtc, sizeof nvrtc);
  printf("hsac %s (runtime %s)\nLLVM %s\nNVRTC %s\n", HSAC_VERSION, hsart_version(), llvm,
         nvrtc);
  return 0;
}

static void list_entry(void *user, const char *key, int64_t size, int64_t mtime) {
  int64_t *total = user;
  char when[32] = "?";
  time_t t = (time_t)mtime;
  struct tm tm;
  if (localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
  printf("%s  %8.1f KiB  %s\n", key, (double)size / 1024, when);
  *total += size;
}

/* hsac cache ls|clear: the compiled-kernel cache (docs/runtime.md). */
static int cmd_cache(int argc, char **argv) {
  if (argc != 1 || (strcmp(argv[0], "ls") && strcmp(argv[0], "clear")))
    return usage_error("%s", "usage: hsac cache ls|clear");
  cg_cache c;
  char err[512];
  if (cg_cache_open(&c, err, sizeof err)) {
    fprintf(stderr, "hsac: error: %s\n", err);
    return EXIT_INPUT;
  }
  if (!strcmp(argv[0], "ls")) {
    printf("kernel cache: %s%s\n", c.dir[0] ? c.dir : "(none)",
           c.disabled ? " (disabled by HSAC_NO_CACHE)" : "");
    int64_t total = 0;
    int n = cg_cache_list(&c, list_entry, &total, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "hsac: error: %s\n", err);
      return EXIT_INPUT;
    }
    printf("%d entr%s, %.1f KiB\n", n, n == 1 ? "y" : "ies", (double)total / 1024);
  } else {
    int n = cg_cache_clear(&c, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "hsac: error: %s\n", err);
      return EXIT_INPUT;
    }
    printf("removed %d file%s from %s\n", n, n == 1 ? "" : "s", c.dir);
  }
  if (fflush(stdout) != 0) {
    fputs("hsac: error: cannot write the output\n", stderr);
    return EXIT_INPUT;
  }
  return 0;
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "check")) return cmd_compile(argc - 2, argv + 2, false);
  if (!strcmp(cmd, "ir")) return cmd_compile(argc - 2, argv + 2, true);
  if (!strcmp(cmd, "init-weights")) return cmd_init_weights(argc - 2, argv + 2);
  if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "plan")) return cmd_plan(argc - 2, argv + 2);
  if (!strcmp(cmd, "export")) return cmd_export(argc - 2, argv + 2);
  if (!strcmp(cmd, "logits")) return cmd_logits(argc - 2, argv + 2);
  if (!strcmp(cmd, "gen-task")) return tk_cmd_gen_task(argc - 2, argv + 2);
  if (!strcmp(cmd, "cache")) return cmd_cache(argc - 2, argv + 2);
  if (!strcmp(cmd, "passes")) {
    if (argc > 2) return usage_error("'passes' takes no arguments (got '%s')", argv[2]);
    const char *const *names, *const *docs;
    int n = hsac_pass_names(&names, &docs);
    for (int i = 0; i < n; i++) printf("%-14s %s\n", names[i], docs[i]);
    return 0;
  }
  if (!strcmp(cmd, "params")) {
    if (argc > 2) return usage_error("'params' takes no arguments (got '%s')", argv[2]);
    fe_params_print_markdown(stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    if (argc > 2) return usage_error("'version' takes no arguments (got '%s')", argv[2]);
    return cmd_version();
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    if (argc > 2) return usage_error("'help' takes no arguments (got '%s')", argv[2]);
    fputs(usage_text, stdout);
    return 0;
  }
  return usage_error("unknown command '%s'", cmd);
}

/* The only file hsac maps is a weights file, while it is loaded: one
 * truncated meanwhile raises SIGBUS on the next page read.  Say so and exit
 * 1 (async-signal-safe: write and _exit only), rather than die by the
 * signal; a file rewritten in place is caught by st_check_unchanged. */
static void on_sigbus(int sig) {
  static const char msg[] = "hsac: error: the weights file was truncated while it was read "
                            "(SIGBUS); nothing was loaded or written\n";
  (void)sig;
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(EXIT_INPUT);
}

int main(int argc, char **argv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigbus;
  sigaction(SIGBUS, &sa, NULL);
  int rc = dispatch(argc, argv);
  /* What went to standard output must have arrived: a full disk,
   * /dev/full or a closed descriptor is an error (exit 1), not a success
   * with the output lost. */
  errno = 0;
  bool flushed = fflush(stdout) == 0;
  if ((!flushed || ferror(stdout)) && rc == 0) { /* a failed command has said why */
    int e = errno;
    fprintf(stderr, "hsac: error: cannot write to standard output%s%s\n", e ? ": " : "",
            e ? strerror(e) : "");
    rc = EXIT_INPUT;
  }
  return rc;
}
