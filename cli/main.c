/* main.c - the hsac command.
 *
 * The only place that prints and chooses exit codes: 0 success, 1 errors in
 * the input, 2 usage errors, 3 out of memory, 4 internal errors.  Each
 * command's options are a table (cli/args.h): the parser, `hsac help`,
 * `hsac CMD --help` and the did-you-mean of a mistyped option all read it. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/tasks.h"
#include "codegen/cache.h"
#include "codegen/cpu/jit.h"
#include "codegen/versions.h"
#include "frontend/params.h"
#include "hsac_version.h"
#include "ir/export.h"
#include "passes/pipeline.h"
#include "passes/plan.h"
#include "runtime/backend.h"
#include "runtime/hsa_runtime.h"
#include "runtime/safetensors.h"
#include "util/fileio.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_NOMEM = 3, EXIT_INTERNAL = 4 };

/* ---- the options of every command -------------------------------------- */

enum opt_id {
  O_INCLUDE = 1, O_VERBOSE, O_QUIET, O_JSON, O_OUT,
  /* ir */
  O_PRINT_AFTER_ALL, O_PRINT_AFTER, O_O0, O_EMIT,
  /* plan */
  O_CONTEXT, O_SEGMENT, O_CACHE,
  /* init-weights, run */
  O_SEED, O_WEIGHTS, O_PROMPT, O_PROMPT_FILE, O_MAX_NEW, O_STOP, O_TEMPERATURE, O_TOP_K,
  O_TOP_P, O_MAX_CONTEXT, O_TOKENS,
  /* backends */
  O_BACKEND, O_THREADS, O_CPU, O_NO_CACHE, O_CHECK_NUMERICS,
};

#define END_OPTS {0, NULL, NULL, NULL, NULL}

static const cli_opt include_opts[] = {
    {O_INCLUDE, "-I", NULL, "DIR", "a folder searched for includes after the including\n"
                                   "file's own (up to 16; also -IDIR)"},
    END_OPTS,
};

static const cli_opt backend_opts[] = {
    {O_BACKEND, "--backend", NULL, "auto|cpu|ref",
     "which backend runs the kernels (auto, the default: cpu\nwhen it compiles every op, else ref)"},
    {O_THREADS, "--threads", NULL, "N", "threads of the cpu backend (default: every core)"},
    {O_CPU, "--cpu", NULL, "NAME", "generate code for a named CPU (haswell, ...), not the host"},
    {O_NO_CACHE, "--no-cache", NULL, NULL, "compile every kernel, reading and writing no cache"},
    {O_CHECK_NUMERICS, "--check-numerics", NULL, NULL,
     "name the first op that makes a NaN or an infinity\n"
     "(non-finite logits are always an error)"},
    END_OPTS,
};

static const cli_opt check_opts[] = {
    {O_VERBOSE, "--verbose", "-v", NULL,
     "print the model with every default filled in (a model\n"
     "file) on stdout; the summary goes to stderr"},
    {O_JSON, "--json", NULL, NULL, "print the summary as one JSON object"},
    END_OPTS,
};

static const cli_opt ir_opts[] = {
    {O_PRINT_AFTER_ALL, "--print-after-all", NULL, NULL,
     "print the IR as built and after every pass"},
    {O_PRINT_AFTER, "--print-after", NULL, "PASS", "print the IR after the named pass (`hsac passes`)"},
    {O_O0, "-O0", NULL, NULL, "the IR as built, without passes"},
    {O_EMIT, "--emit", NULL, "mlir|llvm|asm|obj",
     "the CPU backend's kernels instead: MLIR, LLVM IR after\n"
     "O3, assembly, or an object file (with -o)"},
    {O_CPU, "--cpu", NULL, "NAME", "with --emit: code for a named CPU (haswell, ...)"},
    {O_OUT, "-o", NULL, "OUT", "with --emit=obj: the object file to write"},
    END_OPTS,
};

static const cli_opt plan_opts[] = {
    {O_CONTEXT, "--context", NULL, "N", "tokens of context: 4096, 64K, 1M, 32M, ... (required)"},
    {O_SEGMENT, "--segment", NULL, "N", "tokens per prefill segment (default 512)"},
    {O_CACHE, "--cache", NULL, "f32|bf16|f16", "element type of the attention caches (default f32)"},
    {O_JSON, "--json", NULL, NULL, "print the plan as one JSON object"},
    END_OPTS,
};

static const cli_opt init_opts[] = {
    {O_OUT, "-o", NULL, "OUT", "the safetensors file to write (required)"},
    {O_SEED, "--seed", NULL, "N", "the seed of the random values (default 0)"},
    {O_QUIET, "--quiet", "-q", NULL, "do not report what was written"},
    END_OPTS,
};

static const cli_opt run_opts[] = {
    {O_WEIGHTS, "--weights", NULL, "W", "the weights, a safetensors file (required)"},
    {O_PROMPT, "--prompt", NULL, "TEXT", "the prompt"},
    {O_PROMPT_FILE, "--prompt-file", NULL, "F", "the prompt, read from a file"},
    {O_MAX_NEW, "--max-new", NULL, "N", "generate at most N tokens (default 64)"},
    {O_STOP, "--stop", NULL, "STRING", "stop when the output ends with STRING (not printed;\n"
                                       "generation also stops at the end-of-text token)"},
    {O_TEMPERATURE, "--temperature", NULL, "T", "sampling temperature (default 0: greedy)"},
    {O_TOP_K, "--top-k", NULL, "K", "sample among the K likeliest tokens (0: all)"},
    {O_TOP_P, "--top-p", NULL, "P", "sample among the likeliest tokens of mass P (0: all)"},
    {O_SEED, "--seed", NULL, "S", "the sampler's seed (default 0)"},
    {O_SEGMENT, "--segment", NULL, "N", "tokens per prefill segment (default 512)"},
    {O_CACHE, "--cache", NULL, "f32|bf16|f16", "element type of the attention caches (default f32)"},
    {O_MAX_CONTEXT, "--max-context", NULL, "N",
     "refuse prompts of more than N tokens (default 32M)"},
    {O_QUIET, "--quiet", "-q", NULL, "no progress and no summary on stderr"},
    {O_VERBOSE, "--verbose", "-v", NULL, "say which backend runs and how it was compiled"},
    END_OPTS,
};

static const cli_opt logits_opts[] = {
    {O_WEIGHTS, "--weights", NULL, "W", "the weights, a safetensors file (required)"},
    {O_TOKENS, "--tokens", NULL, "LIST", "token ids, comma-separated: 1,2,3"},
    {O_PROMPT, "--prompt", NULL, "TEXT", "a prompt (byte-level tokens)"},
    {O_OUT, "-o", NULL, "OUT", "the safetensors file to write (required)"},
    END_OPTS,
};

static const cli_opt export_opts[] = {
    {O_JSON, "--json", NULL, NULL, "the format (required): JSON, docs/export.md"},
    {O_OUT, "-o", NULL, "OUT", "write to OUT instead of stdout"},
    END_OPTS,
};

static const cli_command check_cmd = {
    "check", "FILE [options]",
    "validate a model description and print a summary (parameters, layers, cache)",
    NULL, {check_opts, include_opts, NULL}, 1};
static const cli_command ir_cmd = {
    "ir", "FILE [options]",
    "print the model's IR after the passes, or the CPU backend's generated kernels",
    NULL, {ir_opts, include_opts, NULL}, 1};
static const cli_command passes_cmd = {"passes", "", "list the passes in the order they run",
                                       NULL, {NULL}, 0};
static const cli_command plan_cmd = {
    "plan", "FILE --context N [options]",
    "caches, activation memory with buffer reuse, and the work per stage of a request",
    NULL, {plan_opts, include_opts, NULL}, 1};
static const cli_command init_cmd = {
    "init-weights", "FILE -o OUT [options]",
    "write deterministic random weights (safetensors) for a model",
    NULL, {init_opts, include_opts, NULL}, 1};
static const cli_command run_cmd = {
    "run", "FILE --weights W (--prompt TEXT | --prompt-file F) [options]",
    "run a model on a prompt and stream the generated text to stdout",
    "Progress: on a terminal, a bar for prompts of 2048 tokens or more; otherwise\n"
    "a line at every 10% of such a prompt.  After generation a summary on stderr:\n"
    "prompt and generated tokens, their speeds, why generation stopped and the\n"
    "peak memory (-q leaves both out).  On a terminal, control bytes a model\n"
    "generates are shown escaped (\\xNN).\n",
    {run_opts, backend_opts, include_opts, NULL}, 1};
static const cli_command logits_cmd = {
    "logits", "FILE --weights W (--tokens LIST | --prompt TEXT) -o OUT [options]",
    "the logits of every position, as a safetensors file with one tensor\n"
    "'logits' [n, vocab] (to check other implementations against hsac)",
    NULL, {logits_opts, backend_opts, include_opts, NULL}, 1};
static const cli_command export_cmd = {
    "export", "--json FILE [-o OUT]", "write the model's structure as JSON (docs/export.md)",
    NULL, {export_opts, include_opts, NULL}, 1};
static const cli_command cache_cmd = {
    "cache", "ls|clear",
    "list or remove the compiled kernels cached on disk\n"
    "($XDG_CACHE_HOME/hsac; HSAC_NO_CACHE=1 disables the cache)",
    NULL, {NULL}, 1};
static const cli_command params_cmd = {"params", "",
                                       "print the reference of every parameter (Markdown)", NULL,
                                       {NULL}, 0};
static const cli_command version_cmd = {"version", "", "print the versions of hsac, LLVM and NVRTC",
                                        NULL, {NULL}, 0};
static const cli_command help_cmd = {"help", "[COMMAND]",
                                     "print every command and its options, or one command's help",
                                     NULL, {NULL}, 1};

static const cli_command *const commands[] = {
    &check_cmd, &ir_cmd, &passes_cmd, &plan_cmd, &init_cmd, &run_cmd, &logits_cmd,
    &export_cmd, &tk_gen_task_command, &cache_cmd, &params_cmd, &version_cmd, &help_cmd, NULL,
};

/* ---- shared helpers ----------------------------------------------------- */

static int exit_for(hsac_status st) {
  switch (st) {
  case HSAC_OK: return 0;
  case HSAC_EINPUT: return EXIT_INPUT;
  case HSAC_ENOMEM: return EXIT_NOMEM;
  case HSAC_EINTERNAL: return EXIT_INTERNAL;
  }
  return EXIT_INTERNAL;
}

static int exit_for_rt(hsart_status st) {
  switch (st) {
  case HSART_OK: return 0;
  case HSART_ENOMEM: return EXIT_NOMEM;
  default: return EXIT_INPUT;
  }
}

/* A load error: diagnostics of the model description are printed as they
 * are (file:line:col: error: ...), anything else after "hsac: error: ". */
static void print_load_error(const hsart_error *e) {
  fprintf(stderr, "%s%s\n", e->diagnostics ? "" : "hsac: error: ", e->message);
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

/* --cache f32|bf16|f16 */
static bool parse_cache(const char *v, hsart_cache_type *out) {
  if (!strcmp(v, "f32")) *out = HSART_CACHE_F32;
  else if (!strcmp(v, "bf16")) *out = HSART_CACHE_BF16;
  else if (!strcmp(v, "f16")) *out = HSART_CACHE_F16;
  else return false;
  return true;
}

/* -I DIR: up to 16 folders, NULL-terminated for the options structs. */
enum { MAX_INCLUDE_DIRS = 16 };
typedef struct include_dirs {
  const char *d[MAX_INCLUDE_DIRS + 1];
  int n;
} include_dirs;

static int add_include(const cli_args *a, include_dirs *l, const char *dir) {
  if (!*dir) return cli_usage_error(a->cmd, "-I expects a folder");
  if (l->n == MAX_INCLUDE_DIRS) return cli_usage_error(a->cmd, "at most 16 -I folders");
  l->d[l->n++] = dir;
  l->d[l->n] = NULL;
  return 0;
}

/* What several commands take alike: the parser's codes (a usage error,
 * --help, the input file), -I, and for run and logits (mo not NULL) the
 * backend options. */
typedef struct shared_args {
  const char *file;
  include_dirs incs;
  hsart_model_options *mo;
  bool check_numerics;
} shared_args;

/* Returns -1 when the argument was taken, -2 when it is the command's own,
 * else the exit status. */
static int shared_arg(cli_args *a, int id, const char *v, shared_args *sh) {
  long long n;
  switch (id) {
  case CLI_ERROR: return EXIT_USAGE;
  case CLI_HELP:
    cli_print_help(a->cmd, stdout);
    return 0;
  case CLI_OPERAND:
    if (a->cmd->max_operands == 0)
      return cli_usage_error(a->cmd, "'%s' takes no arguments (got '%s')", a->cmd->name, v);
    if (sh->file) return cli_usage_error(a->cmd, "more than one input file ('%s')", v);
    sh->file = v;
    return -1;
  case O_INCLUDE: return add_include(a, &sh->incs, v) ? EXIT_USAGE : -1;
  }
  if (!sh->mo) return -2;
  switch (id) {
  case O_NO_CACHE: sh->mo->no_cache = 1; return -1;
  case O_CHECK_NUMERICS: sh->check_numerics = true; return -1;
  case O_CPU: sh->mo->cpu = v; return -1;
  case O_BACKEND:
    if (!strcmp(v, "ref")) sh->mo->backend = HSART_BACKEND_REF;
    else if (!strcmp(v, "cpu")) sh->mo->backend = HSART_BACKEND_CPU;
    else if (!strcmp(v, "auto")) sh->mo->backend = HSART_BACKEND_AUTO;
    else return cli_usage_error(a->cmd, "--backend expects ref, cpu or auto, not '%s'", v);
    return -1;
  case O_THREADS:
    if (!parse_int(v, 1, 256, &n))
      return cli_usage_error(a->cmd, "--threads expects 1..256, not '%s'", v);
    sh->mo->threads = (int)n;
    return -1;
  }
  return -2;
}

/* The next argument that is the command's own: its option id (> 0), 0 at
 * the end, or -1 when the command must return *status (a usage error,
 * --help). */
static int next_own(cli_args *a, shared_args *sh, const char **v, int *status) {
  for (;;) {
    int id = cli_next(a, v);
    if (id == CLI_END) return 0;
    int rc = shared_arg(a, id, *v, sh);
    if (rc == -2) return id;
    if (rc >= 0) {
      *status = rc;
      return -1;
    }
  }
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

/* ---- check, ir ------------------------------------------------------------ */

static void print_summary(const hsac_compilation *c, bool json, FILE *out) {
  const fe_model *m = c->model;
  int nlayers = 0, nretr = 0;
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == FE_L_RETRIEVE)
      nretr++;
    else
      nlayers++;
  double per_token, fixed;
  hsac_cache_footprint(m, &per_token, &fixed);
  long long np = (long long)ir_param_count(c->graph);
  if (json) {
    /* integers as integers: the byte counts are whole numbers of bytes per
     * token only up to rounding, so they are printed with 6 digits */
    char *name = cJSON_PrintUnformatted(cJSON_CreateStringReference(m->name));
    fprintf(out, "{\"model\": %s, \"ok\": true, \"parameters\": %lld, \"layers\": %d, "
            "\"retrievals\": %d, \"chunk_memories\": %d, \"vocab\": %lld, \"width\": %lld, "
            "\"cache_bytes_per_token\": %.6g, \"cache_bytes_fixed\": %.6g}\n",
            name ? name : "null", np, nlayers, nretr, m->nmemories, (long long)m->vocab,
            (long long)m->width, per_token, fixed);
    cJSON_free(name);
    return;
  }
  char params[32], pt[32], fx[32];
  human_count(np, params, sizeof params);
  human_bytes(per_token, pt, sizeof pt);
  human_bytes(fixed, fx, sizeof fx);
  fprintf(out, "%s: ok: %s parameters (%lld), %d layers", m->name, params, np, nlayers);
  if (nretr) fprintf(out, " + %d retrieval%s", nretr, nretr == 1 ? "" : "s");
  if (m->nmemories)
    fprintf(out, ", %d chunk memor%s", m->nmemories, m->nmemories == 1 ? "y" : "ies");
  fprintf(out, ", cache %s per token of context + %s fixed\n", pt, fx);
}

static bool known_pass(const char *name) {
  const char *const *names, *const *docs;
  int n = hsac_pass_names(&names, &docs);
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return true;
  return false;
}

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

static int cmd_compile(cli_args *a) {
  bool ir = a->cmd == &ir_cmd;
  const char *emit = NULL, *cpu = NULL, *out = NULL, *v;
  bool verbose = false, json = false;
  hsac_options opts = {.stop = HSAC_STAGE_IR, .opt_level = 1};
  shared_args sh = {.mo = NULL};
  int id, rc;
  while ((id = next_own(a, &sh, &v, &rc)) > 0) {
    switch (id) {
    case O_VERBOSE: verbose = true; break;
    case O_JSON: json = true; break;
    case O_EMIT:
      emit = v;
      if (strcmp(emit, "mlir") && strcmp(emit, "llvm") && strcmp(emit, "asm") &&
          strcmp(emit, "obj"))
        return cli_usage_error(a->cmd, "--emit expects mlir, llvm, asm or obj, not '%s'", emit);
      break;
    case O_OUT: out = v; break;
    case O_CPU: cpu = v; break;
    case O_PRINT_AFTER_ALL: opts.print_after = "all"; break;
    case O_PRINT_AFTER:
      opts.print_after = v;
      if (!known_pass(v)) {
        const char *const *names, *const *docs;
        hsac_pass_names(&names, &docs);
        const char *best = cli_suggest(v, names);
        if (best)
          return cli_usage_error(a->cmd, "unknown pass '%s'; did you mean '%s'?", v, best);
        return cli_usage_error(a->cmd, "unknown pass '%s' (`hsac passes` lists them)", v);
      }
      break;
    case O_O0: opts.opt_level = 0; break;
    default: return cli_unhandled(a);
    }
  }
  if (id < 0) return rc;
  if (!sh.file) return cli_usage_error(a->cmd, "no input file");
  if (emit && !strcmp(emit, "obj") && !out)
    return cli_usage_error(a->cmd, "--emit=obj writes a binary file: give it with -o FILE");
  if (out && !(emit && !strcmp(emit, "obj")))
    return cli_usage_error(a->cmd, "-o goes with --emit=obj");
  if (cpu && !emit) return cli_usage_error(a->cmd, "--cpu goes with --emit");
  if (verbose && json)
    return cli_usage_error(a->cmd, "-v prints a model file and --json a summary: give one");
  opts.include_dirs = sh.incs.n ? sh.incs.d : NULL;
  hsac_compilation c;
  hsac_init(&c);
  if (opts.print_after && !strcmp(opts.print_after, "all")) {
    /* show the IR as built too, so every pass's effect is visible */
    hsac_options built = opts;
    built.opt_level = 0;
    built.print_after = NULL;
    hsac_compilation b;
    hsac_init(&b);
    if (hsac_compile_opts(&b, sh.file, NULL, 0, &built) == HSAC_OK) {
      printf("# ---- as built\n");
      ir_print(b.graph, stdout);
    }
    hsac_free(&b);
  }
  hsac_status st = hsac_compile_opts(&c, sh.file, NULL, 0, &opts);
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
    } else if (verbose) {
      /* stdout holds a model file that `hsac check` accepts again */
      print_summary(&c, false, stderr);
      fe_model_print(c.model, stdout);
    } else {
      print_summary(&c, json, stdout);
    }
  } else if (st == HSAC_EINPUT) {
    fprintf(stderr, "hsac: %d error%s in %s\n", c.diags.nerrors,
            c.diags.nerrors == 1 ? "" : "s", sh.file);
  }
  hsac_free(&c);
  return exit_for(st);
}

/* ---- plan ----------------------------------------------------------------- */

static int cmd_plan(cli_args *a) {
  const char *v;
  long long context = 0, segment = 512;
  hsart_cache_type cache = HSART_CACHE_F32;
  bool json = false;
  shared_args sh = {.mo = NULL};
  int id, rc;
  while ((id = next_own(a, &sh, &v, &rc)) > 0) {
    switch (id) {
    /* the limits of `run`: a session holds at most 2^31 - 1 positions, a
     * segment at most 2^24 rows */
    case O_CONTEXT:
      if (!parse_size(v, &context) || context > INT32_MAX)
        return cli_usage_error(a->cmd, "--context expects a size such as 4096, 64K or 32M, at "
                               "most 2147483647 (2^31 - 1) positions, not '%s'", v);
      break;
    case O_SEGMENT:
      if (!parse_size(v, &segment) || segment > (1 << 24))
        return cli_usage_error(a->cmd, "--segment expects a size of at most 16M (as run), not "
                               "'%s'", v);
      break;
    case O_CACHE:
      if (!parse_cache(v, &cache))
        return cli_usage_error(a->cmd, "--cache expects f32, bf16 or f16, not '%s'", v);
      break;
    case O_JSON: json = true; break;
    default: return cli_unhandled(a);
    }
  }
  if (id < 0) return rc;
  if (!sh.file) return cli_usage_error(a->cmd, "no input file");
  if (!context) return cli_usage_error(a->cmd, "no context: --context N");
  hsac_compilation c;
  hsac_init(&c);
  hsac_options po_c = {.stop = HSAC_STAGE_IR, .opt_level = 1,
                       .include_dirs = sh.incs.n ? sh.incs.d : NULL};
  hsac_status st = hsac_compile_opts(&c, sh.file, NULL, 0, &po_c);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_OK) {
    hsac_plan_opts po = {.context = context, .segment = segment,
                         .cache_bytes = cache == HSART_CACHE_F32 ? 4 : 2, .json = json};
    if (!hsac_plan(c.graph, c.model, &po, NULL, stdout)) {
      fputs("hsac: error: out of memory\n", stderr);
      st = HSAC_ENOMEM;
    }
  }
  hsac_free(&c);
  return exit_for(st);
}

/* ---- init-weights --------------------------------------------------------- */

static int cmd_init_weights(cli_args *a) {
  const char *out = NULL, *v;
  long long seed = 0;
  bool quiet = false;
  shared_args sh = {.mo = NULL};
  int id, rc;
  while ((id = next_own(a, &sh, &v, &rc)) > 0) {
    switch (id) {
    case O_OUT: out = v; break;
    case O_QUIET: quiet = true; break;
    case O_SEED:
      if (!parse_int(v, 0, INT64_MAX, &seed))
        return cli_usage_error(a->cmd, "--seed expects a non-negative integer, not '%s'", v);
      break;
    default: return cli_unhandled(a);
    }
  }
  if (id < 0) return rc;
  if (!sh.file) return cli_usage_error(a->cmd, "no input file");
  if (!out) return cli_usage_error(a->cmd, "no output file: -o OUT.safetensors");
  hsart_error e;
  hsart_model_options io = {.include_dirs = sh.incs.n ? sh.incs.d : NULL};
  hsart_weights_info wr;
  hsart_status st = hsart_init_weights_report(sh.file, out, (uint64_t)seed, &io, &wr, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    return exit_for_rt(st);
  }
  if (!quiet) {
    char params[32], bytes[32];
    human_count(wr.parameters, params, sizeof params);
    human_bytes((double)wr.file_bytes, bytes, sizeof bytes);
    fprintf(stderr, "hsac: wrote %s: %d tensors, %s parameters (f32, %s) for model '%s', "
            "seed %lld\n", out, wr.tensors, params, bytes, wr.model, seed);
  }
  return 0;
}

/* ---- run ------------------------------------------------------------------ */

typedef struct progress {
  struct timespec start;
  bool tty;  /* stderr is a terminal: a redrawn bar, else plain lines */
  bool quiet;
  bool shown;
  int step;  /* plain lines: the last 10% step printed */
} progress;

static double elapsed(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

enum { PROGRESS_FROM = 2048 }; /* prompts shorter than this show no progress */

/* Progress of a prefill on stderr: on a terminal a bar redrawn in place;
 * otherwise (a log file, a pipe) one line at each 10% step, so that a log
 * holds at most ten of them whatever the prompt's length. */
static int show_progress(void *user, int64_t done, int64_t total) {
  progress *p = user;
  if (p->quiet || total < PROGRESS_FROM) return 0;
  double s = elapsed(&p->start), rate = s > 0 ? (double)done / s : 0.0;
  p->shown = true;
  if (!p->tty) {
    int step = (int)(10 * done / (total ? total : 1));
    if (step > p->step) {
      p->step = step;
      fprintf(stderr, "hsac: prefill %d%%: %lld/%lld tokens, %.0f tokens/s\n", step * 10,
              (long long)done, (long long)total, rate);
    }
    return 0;
  }
  int width = 30, fill = (int)(width * done / (total ? total : 1));
  fprintf(stderr, "\rprefill [%.*s%*s] %lld/%lld tokens, %.0f tokens/s", fill,
          "##############################", width - fill, "", (long long)done,
          (long long)total, rate);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
  return 0;
}

/* Streams generated bytes to stdout: held back while they could be the
 * start of the stop string (which is never printed), and with control
 * bytes escaped when stdout is a terminal (a model's output must not drive
 * the terminal). */
typedef struct output {
  const char *stop;
  size_t stop_len;
  char *held;  /* at most stop_len bytes */
  size_t nheld;
  bool tty;
  int64_t bytes;
} output;

static void emit_bytes(output *o, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b[i];
    if (o->tty && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f))
      printf("\\x%02x", c);
    else
      fputc(c, stdout);
  }
  o->bytes += (int64_t)n;
}

/* Adds one byte; true when the output now ends with the stop string. */
static bool output_put(output *o, unsigned char c) {
  if (!o->stop_len) {
    emit_bytes(o, (const char *)&c, 1);
    fflush(stdout);
    return false;
  }
  o->held[o->nheld++] = (char)c;
  if (o->nheld == o->stop_len && !memcmp(o->held, o->stop, o->stop_len)) {
    o->nheld = 0;
    return true;
  }
  /* print from the front until what is held could still start the stop
   * string */
  size_t k = 0;
  while (k < o->nheld && memcmp(o->held + k, o->stop, o->nheld - k)) k++;
  emit_bytes(o, o->held, k);
  memmove(o->held, o->held + k, o->nheld - k);
  o->nheld -= k;
  fflush(stdout);
  return false;
}

static void output_flush(output *o) {
  emit_bytes(o, o->held, o->nheld);
  o->nheld = 0;
}

static void print_run_summary(int64_t prompt, double prefill_s, int64_t generated,
                              double decode_s, const char *why) {
  struct rusage ru;
  char peak[32] = "?";
  if (getrusage(RUSAGE_SELF, &ru) == 0) human_bytes((double)ru.ru_maxrss * 1024, peak, sizeof peak);
  fprintf(stderr, "hsac: prompt %lld tokens in %.2f s (%.0f tokens/s); generated %lld tokens "
          "in %.2f s (%.1f tokens/s), stopped %s; peak memory %s\n",
          (long long)prompt, prefill_s, prefill_s > 0 ? (double)prompt / prefill_s : 0.0,
          (long long)generated, decode_s, decode_s > 0 ? (double)generated / decode_s : 0.0, why,
          peak);
}

static int cmd_run(cli_args *a) {
  const char *weights = NULL, *prompt = NULL, *prompt_file = NULL, *stop = NULL;
  const char *v;
  long long max_new = 64, top_k = 0, seed = 0, segment = 512;
  double temperature = 0, top_p = 0;
  hsart_cache_type cache = HSART_CACHE_F32;
  hsart_model_options mo = {.opt_level = 1};
  bool verbose = false, quiet = false;
  long long max_context = 1LL << 25; /* 32M tokens: the paper's longest */
  shared_args sh = {.mo = &mo};
  int id, rc;
  while ((id = next_own(a, &sh, &v, &rc)) > 0) {
    switch (id) {
    case O_VERBOSE: verbose = true; break;
    case O_QUIET: quiet = true; break;
    case O_WEIGHTS: weights = v; break;
    case O_PROMPT: prompt = v; break;
    case O_PROMPT_FILE: prompt_file = v; break;
    case O_STOP:
      if (!*v) return cli_usage_error(a->cmd, "--stop expects a non-empty string");
      if (strlen(v) > 4096) return cli_usage_error(a->cmd, "--stop: at most 4096 bytes");
      stop = v;
      break;
    case O_MAX_CONTEXT:
      if (!parse_size(v, &max_context) || max_context > INT32_MAX)
        return cli_usage_error(a->cmd, "--max-context expects a size such as 64K or 32M, at "
                               "most 2147483647, not '%s'", v);
      break;
    case O_MAX_NEW:
      if (!parse_int(v, 0, 1 << 30, &max_new))
        return cli_usage_error(a->cmd, "--max-new expects an integer >= 0, not '%s'", v);
      break;
    case O_TEMPERATURE:
      if (!parse_float(v, 0, 100, &temperature))
        return cli_usage_error(a->cmd, "--temperature expects a number in [0, 100], not '%s'", v);
      break;
    case O_TOP_K:
      if (!parse_int(v, 0, 1 << 30, &top_k))
        return cli_usage_error(a->cmd, "--top-k expects an integer >= 0, not '%s'", v);
      break;
    case O_TOP_P:
      if (!parse_float(v, 0, 1, &top_p))
        return cli_usage_error(a->cmd, "--top-p expects a number in [0, 1], not '%s'", v);
      break;
    case O_SEED:
      if (!parse_int(v, 0, INT64_MAX, &seed))
        return cli_usage_error(a->cmd, "--seed expects a non-negative integer, not '%s'", v);
      break;
    case O_SEGMENT:
      if (!parse_int(v, 1, 1 << 24, &segment))
        return cli_usage_error(a->cmd, "--segment expects an integer from 1 to 16777216, not "
                               "'%s'", v);
      break;
    case O_CACHE:
      if (!parse_cache(v, &cache))
        return cli_usage_error(a->cmd, "--cache expects f32, bf16 or f16, not '%s'", v);
      break;
    default: return cli_unhandled(a);
    }
  }
  if (id < 0) return rc;
  if (!sh.file) return cli_usage_error(a->cmd, "no input file");
  if (!weights) return cli_usage_error(a->cmd, "no weights: --weights W.safetensors");
  if (!prompt == !prompt_file)
    return cli_usage_error(a->cmd, "give exactly one of --prompt TEXT and --prompt-file F");
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
  output out = {.stop = stop, .stop_len = stop ? strlen(stop) : 0, .tty = isatty(1)};
  rc = 0;
  mo.include_dirs = sh.incs.n ? sh.incs.d : NULL;
  hsart_status st = hsart_model_load(sh.file, weights, &mo, &m, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
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
  progress pr = {.tty = isatty(2), .quiet = quiet};
  clock_gettime(CLOCK_MONOTONIC, &pr.start);
  hsart_session_options so = {.segment = segment, .cache = cache, .progress = show_progress,
                              .check_numerics = sh.check_numerics, .user = &pr};
  st = hsart_session_create(m, &so, &s, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", e.message);
    rc = exit_for_rt(st);
    goto done;
  }
  tokens = malloc((size_t)(plen + 1) * sizeof *tokens);
  out.held = stop ? malloc(out.stop_len) : NULL;
  if (!tokens || (stop && !out.held)) {
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
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  st = hsart_prefill(s, tokens, n);
  if (st != HSART_OK) {
    fprintf(stderr, "%shsac: error: %s\n", pr.shown && pr.tty ? "\n" : "",
            hsart_session_error(s));
    rc = exit_for_rt(st);
    goto done;
  }
  double prefill_s = elapsed(&t0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  hsart_sampler sp = {(float)temperature, (int32_t)top_k, (float)top_p, (uint64_t)seed};
  const char *why = "at --max-new";
  long long generated = 0;
  for (long long i = 0; i < max_new; i++) {
    int32_t t;
    st = hsart_sample(s, &sp, &t);
    if (st == HSART_OK && t == HSART_TOKEN_EOS) {
      why = "at the end-of-text token";
      break;
    }
    if (st == HSART_OK) generated++;
    if (st == HSART_OK && t < 256 && output_put(&out, (unsigned char)t)) {
      why = "at --stop";
      break;
    }
    if (st == HSART_OK && i + 1 < max_new) st = hsart_decode(s, t);
    if (st != HSART_OK) {
      output_flush(&out);
      fprintf(stderr, "\nhsac: error: %s\n", hsart_session_error(s));
      rc = exit_for_rt(st);
      goto done;
    }
  }
  output_flush(&out);
  fputc('\n', stdout);
  fflush(stdout);
  if (!quiet) print_run_summary(n, prefill_s, generated, elapsed(&t0), why);
done:
  free(out.held);
  free(tokens);
  free(owned);
  hsart_session_free(s);
  hsart_model_free(m);
  return rc;
}

/* ---- export, logits --------------------------------------------------------- */

static int cmd_export(cli_args *a) {
  const char *out = NULL, *v;
  bool json = false;
  shared_args sh = {.mo = NULL};
  int id, rc;
  while ((id = next_own(a, &sh, &v, &rc)) > 0) {
    switch (id) {
    case O_JSON: json = true; break;
    case O_OUT: out = v; break;
    default: return cli_unhandled(a);
    }
  }
  if (id < 0) return rc;
  if (!json) return cli_usage_error(a->cmd, "export needs a format: --json");
  if (!sh.file) return cli_usage_error(a->cmd, "no input file");
  hsac_compilation c;
  hsac_init(&c);
  hsac_options o = {.stop = HSAC_STAGE_IR, .opt_level = 0};
  o.include_dirs = sh.incs.n ? sh.incs.d : NULL;
  hsac_status st = hsac_compile_opts(&c, sh.file, NULL, 0, &o);
  ut_diags_render(&c.diags, &c.sources, stderr);
  rc = exit_for(st);
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

static int cmd_logits(cli_args *args) {
  const char *weights = NULL, *tokens_arg = NULL, *prompt = NULL, *out = NULL;
  const char *v;
  hsart_model_options mo = {.opt_level = 1};
  shared_args sh = {.mo = &mo};
  int id, rc;
  while ((id = next_own(args, &sh, &v, &rc)) > 0) {
    switch (id) {
    case O_WEIGHTS: weights = v; break;
    case O_TOKENS: tokens_arg = v; break;
    case O_PROMPT: prompt = v; break;
    case O_OUT: out = v; break;
    default: return cli_unhandled(args);
    }
  }
  if (id < 0) return rc;
  if (!sh.file) return cli_usage_error(args->cmd, "no input file");
  if (!weights) return cli_usage_error(args->cmd, "no weights: --weights W.safetensors");
  if (!out) return cli_usage_error(args->cmd, "no output file: -o OUT.safetensors");
  if (!tokens_arg == !prompt)
    return cli_usage_error(args->cmd, "give exactly one of --tokens and --prompt");
  int64_t cap = tokens_arg ? (int64_t)strlen(tokens_arg) / 2 + 1 : (int64_t)strlen(prompt) + 1;
  int32_t *tok = malloc((size_t)cap * sizeof *tok);
  if (!tok) return EXIT_NOMEM;
  int64_t n = 0;
  if (tokens_arg) {
    for (const char *p = tokens_arg; *p;) {
      char *end;
      errno = 0;
      long t = strtol(p, &end, 10);
      if (end == p || errno || t < 0 || t > INT32_MAX || (*end && *end != ',')) {
        free(tok);
        return cli_usage_error(args->cmd, "--tokens expects comma-separated token ids, not "
                               "'%s'", tokens_arg);
      }
      tok[n++] = (int32_t)t;
      p = *end ? end + 1 : end;
    }
  } else {
    n = hsart_tokenize(prompt, (int64_t)strlen(prompt), tok, cap);
  }
  if (n == 0) {
    free(tok);
    return cli_usage_error(args->cmd, "no tokens");
  }
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  all_logits a = {0};
  rc = 0;
  mo.include_dirs = sh.incs.n ? sh.incs.d : NULL;
  hsart_status st = hsart_model_load(sh.file, weights, &mo, &m, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    rc = exit_for_rt(st);
    goto done;
  }
  a.n = n;
  a.vocab = hsart_model_vocab(m);
  a.data = malloc((size_t)(n * a.vocab) * sizeof *a.data);
  hsart_session_options so = {.on_logits = collect_logits, .check_numerics = sh.check_numerics,
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

/* ---- small commands ---------------------------------------------------------- */

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
static int cmd_cache(cli_args *a) {
  const char *v;
  shared_args sh = {.mo = NULL};
  int id, rc;
  if ((id = next_own(a, &sh, &v, &rc)) > 0) return cli_unhandled(a);
  if (id < 0) return rc;
  const char *what = sh.file;
  if (!what || (strcmp(what, "ls") && strcmp(what, "clear")))
    return cli_usage_error(a->cmd, "usage: hsac cache ls|clear");
  cg_cache c;
  char err[512];
  if (cg_cache_open(&c, err, sizeof err)) {
    fprintf(stderr, "hsac: error: %s\n", err);
    return EXIT_INPUT;
  }
  if (!strcmp(what, "ls")) {
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
  return 0;
}

/* passes, params, version, help: no options; help takes a command's name. */
static int cmd_simple(cli_args *a) {
  const char *v;
  shared_args sh = {.mo = NULL};
  int id, rc;
  if ((id = next_own(a, &sh, &v, &rc)) > 0) return cli_unhandled(a);
  if (id < 0) return rc;
  const char *operand = sh.file;
  const cli_command *c = a->cmd;
  if (c == &passes_cmd) {
    const char *const *names, *const *docs;
    int n = hsac_pass_names(&names, &docs);
    for (int i = 0; i < n; i++) printf("%-14s %s\n", names[i], docs[i]);
  } else if (c == &params_cmd) {
    fe_params_print_markdown(stdout);
  } else if (c == &version_cmd) {
    char llvm[32], nvrtc[32];
    cg_llvm_version(llvm, sizeof llvm);
    cg_nvrtc_version(nvrtc, sizeof nvrtc);
    printf("hsac %s (runtime %s)\nLLVM %s\nNVRTC %s\n", HSAC_VERSION, hsart_version(), llvm,
           nvrtc);
  } else if (operand) { /* help COMMAND */
    const cli_command *which = cli_find(commands, operand);
    if (!which) {
      const char *names[32];
      int k = 0;
      for (int i = 0; commands[i] && k < 31; i++) names[k++] = commands[i]->name;
      names[k] = NULL;
      const char *best = cli_suggest(operand, names);
      if (best) return cli_usage_error(NULL, "unknown command '%s'; did you mean '%s'?", operand, best);
      return cli_usage_error(NULL, "unknown command '%s'", operand);
    }
    cli_print_help(which, stdout);
  } else {
    cli_print_overview(commands, stdout);
  }
  return 0;
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    cli_print_overview(commands, stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
  if (!strcmp(name, "--version")) name = "version";
  const cli_command *c = cli_find(commands, name);
  if (!c) {
    const char *names[32];
    int k = 0;
    for (int i = 0; commands[i] && k < 31; i++) names[k++] = commands[i]->name;
    names[k] = NULL;
    const char *best = cli_suggest(name, names);
    if (best) return cli_usage_error(NULL, "unknown command '%s'; did you mean '%s'?", name, best);
    return cli_usage_error(NULL, "unknown command '%s'", name);
  }
  if (c == &tk_gen_task_command) return tk_cmd_gen_task(argc - 2, argv + 2);
  cli_args a;
  cli_args_init(&a, c, commands, argc - 2, argv + 2);
  if (c == &check_cmd || c == &ir_cmd) return cmd_compile(&a);
  if (c == &plan_cmd) return cmd_plan(&a);
  if (c == &init_cmd) return cmd_init_weights(&a);
  if (c == &run_cmd) return cmd_run(&a);
  if (c == &logits_cmd) return cmd_logits(&a);
  if (c == &export_cmd) return cmd_export(&a);
  if (c == &cache_cmd) return cmd_cache(&a);
  return cmd_simple(&a);
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
