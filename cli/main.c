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
#include "cli/commands.h"
#include "cli/eval.h"
#include "cli/tasks.h"
#include "codegen/cache.h"
#include "codegen/cpu/jit.h"
#include "codegen/cuda/cuda.h"
#include "codegen/versions.h"
#include "frontend/params.h"
#include "hsac_version.h"
#include "import/import.h"
#include "ir/export.h"
#include "passes/pipeline.h"
#include "passes/plan.h"
#include "runtime/backend.h"
#include "runtime/hsa_runtime.h"
#include "runtime/safetensors.h"
#include "util/fileio.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_NOMEM = 3, EXIT_INTERNAL = 4 };

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

static const char *const *includes(const hsac_cli *o) {
  return o->nincludes ? o->include_dirs : NULL;
}

/* The model options of run and logits. */
static hsart_model_options model_options(const hsac_cli *o) {
  hsart_model_options mo = {.opt_level = 1, .backend = (hsart_backend)o->backend,
                            .threads = o->threads, .cpu = o->cpu, .no_cache = o->no_cache,
                            .weights_dtype = (hsart_weights_dtype)o->weights_dtype,
                            .gpu_bf16 = o->gpu_bf16, .cpu_bf16 = o->cpu_bf16,
                            .include_dirs = includes(o),
                            .gpu_page_bytes = o->gpu_pages, .tuning_db = o->tuning_db};
  return mo;
}

/* run --profile: the time of every op, longest first, on stderr. */
static int cmp_time(const void *a, const void *b) {
  double x = ((const hsart_op_time *)a)->ms, y = ((const hsart_op_time *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void print_profile(const hsart_session *s) {
  int64_t n = hsart_session_profile(s, NULL, 0);
  if (n <= 0) return;
  hsart_op_time *t = malloc((size_t)n * sizeof *t);
  if (!t) return;
  hsart_session_profile(s, t, n);
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += t[i].ms;
  qsort(t, (size_t)n, sizeof *t, cmp_time);
  fprintf(stderr, "hsac: profile: %lld op entries, %.2f ms in all (longest first)\n"
                  "  %9s %6s %7s  %-6s  %-18s %s\n",
          (long long)n, total, "ms", "%", "calls", "rows", "op", "origin; kernel [bucket: config]");
  for (int64_t i = 0; i < n; i++) {
    const hsart_op_time *e = &t[i];
    fprintf(stderr, "  %9.3f %5.1f%% %7lld  %-6s  %-18s %s", e->ms,
            total > 0 ? 100.0 * e->ms / total : 0.0, (long long)e->calls,
            e->one_row ? "one" : "many", e->op, e->origin[0] ? e->origin : "-");
    if (e->kernel[0]) fprintf(stderr, "; %s", e->kernel);
    if (e->bucket[0]) fprintf(stderr, " [%s: %s]", e->bucket, e->config);
    fputc('\n', stderr);
  }
  free(t);
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

/* False when out of memory (the JSON form only). */
static bool print_summary(const hsac_compilation *c, bool json, FILE *out) {
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
    /* cJSON writes whole numbers exactly (up to 2^53) and escapes the name */
    cJSON *j = cJSON_CreateObject();
    bool ok = j && cJSON_AddStringToObject(j, "model", m->name) &&
              cJSON_AddBoolToObject(j, "ok", 1) &&
              cJSON_AddNumberToObject(j, "parameters", (double)np) &&
              cJSON_AddNumberToObject(j, "layers", nlayers) &&
              cJSON_AddNumberToObject(j, "retrievals", nretr) &&
              cJSON_AddNumberToObject(j, "chunk_memories", m->nmemories) &&
              cJSON_AddNumberToObject(j, "vocab", (double)m->vocab) &&
              cJSON_AddNumberToObject(j, "width", (double)m->width) &&
              cJSON_AddNumberToObject(j, "cache_bytes_per_token", per_token) &&
              cJSON_AddNumberToObject(j, "cache_bytes_fixed", fixed);
    char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) return false;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return true;
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
  return true;
}

/* hsac ir --emit=mlir|llvm|asm|obj: the CPU backend's kernels of the model
 * (obj: an ELF object file with every kernel, written to -o). */
static void tune_progress(void *user, const char *line) {
  if (!*(const bool *)user) fprintf(stderr, "hsac: tune: %s\n", line);
}

/* hsac tune FILE: the model is compiled first, so a bad file is reported
 * as such; then, on the cuda backend, the GPU is looked for. */
static int cmd_tune(const hsac_cli *o) {
  hsac_options opts = {.stop = HSAC_STAGE_IR, .opt_level = 1, .include_dirs = includes(o)};
  hsac_compilation c;
  hsac_init(&c);
  hsac_status cst = hsac_compile_opts(&c, o->file, NULL, 0, &opts);
  ut_diags_render(&c.diags, &c.sources, stderr);
  hsac_free(&c);
  if (cst != HSAC_OK) return exit_for(cst);
  bool emu = o->backend == HSART_BACKEND_CUDA_EMU;
  if (!emu) {
    char desc[256], err[512];
    if (rt_cuda_probe(desc, sizeof desc, err, sizeof err) <= 0) {
      fprintf(stderr, "hsac: error: %s; hsac tune times kernels on the GPU it tunes them for "
              "(--backend cuda-emu runs the procedure under the emulator)\n", err);
      return 1;
    }
  }
  hsart_model_options mo = model_options(o);
  mo.backend = emu ? HSART_BACKEND_CUDA_EMU : HSART_BACKEND_CUDA;
  mo.tuning_db = NULL;
  hsart_tune_options to = {.weights_path = o->weights, .length = o->tune_length,
                           .decode = (int)o->tune_decode, .reps = (int)o->tune_reps,
                           .db_path = o->tuning_db, .dry_run = o->dry_run,
                           .progress = tune_progress, .user = (void *)&o->quiet};
  hsart_tune_report rep;
  hsart_error e;
  hsart_status st = hsart_tune(o->file, &mo, &to, &rep, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", e.message);
    return exit_for_rt(st);
  }
  printf("tuned on %s (%s, driver %s, %s): %d rounds, logits within %.1e of the defaults'\n",
         rep.gpu.name, rep.gpu.arch, rep.gpu.driver, rep.gpu.compiler, rep.rounds, rep.max_err);
  printf("%-52s %4s %10s %12s %10s %12s %8s\n", "shape bucket", "ops", "default", "us/run",
         "best", "us/run", "speedup");
  for (int i = 0; i < rep.nresults; i++) {
    const hsart_tune_result *r = &rep.results[i];
    printf("%-52s %4d %10s %12.1f %10s %12.1f %7.2fx%s\n", r->bucket, r->ops, r->default_config,
           r->default_us, r->best, r->best_us, r->best_us > 0 ? r->default_us / r->best_us : 1.0,
           r->rejected ? " (candidates rejected: their logits differed)" : "");
  }
  if (rep.db_path[0])
    printf("wrote %d entries to %s\n", rep.nresults, rep.db_path);
  else
    printf("--dry-run: nothing written\n");
  hsart_tune_report_free(&rep);
  return 0;
}

/* hsac ir --emit=cuda|ptx|cubin: the CUDA backend's kernels of the model
 * (ptx, cubin: compiled by NVRTC for arch; cubin written to -o). */
static hsac_status emit_cuda(const ir_graph *g, const char *emit, const char *arch, bool bf16,
                             const char *out) {
  char err[2048], *text = NULL;
  int nk = 0;
  hsart_status st = rt_cuda_module_text(g, bf16, 0, &text, &nk, err, sizeof err);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", err);
    return st == HSART_ENOMEM ? HSAC_ENOMEM : HSAC_EINPUT;
  }
  if (!strcmp(emit, "cuda")) {
    printf("// CUDA C of model '%s': %d kernels, %s arithmetic\n", g->name, nk,
           bf16 ? "bf16 tensor-core" : "f32");
    fputs(text, stdout);
    free(text);
    return HSAC_OK;
  }
  if (!arch) arch = "sm_90";
  char *bin = NULL, *log = NULL;
  size_t len = 0;
  bool cubin = !strcmp(emit, "cubin");
  int rc = cg_cuda_nvrtc(text, arch, cubin, &bin, &len, &log, err, sizeof err);
  free(text);
  if (rc) {
    fprintf(stderr, "hsac: error: %s\n%s", err, log ? log : "");
    free(log);
    return HSAC_EINPUT;
  }
  hsac_status ret = HSAC_OK;
  if (cubin) {
    if (!write_atomically(out, bin, len)) {
      fprintf(stderr, "hsac: error: cannot write '%s': %s\n", out, ut_file_strerror(errno));
      ret = HSAC_EINPUT;
    }
    if (log) fputs(log, stderr); /* ptxas's register and spill report */
  } else {
    fwrite(bin, 1, strnlen(bin, len), stdout);
  }
  free(bin);
  free(log);
  return ret;
}

static hsac_status emit_code(const ir_graph *g, const char *emit, const char *cpu, bool bf16,
                             const char *out) {
  rt_backend_config cfg = {.cpu = cpu, .cpu_bf16 = bf16};
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
  printf("// %s kernels of model '%s' for %s (%d-bit vectors%s), linear math: %s\n", emit,
         g->name, t.cpu, t.vec_bits, cg_prefetch_note(t.prefetch),
         cg_bf16_name(bf16 ? cg_target_bf16(&t) : CG_BF16_OFF));
  fwrite(text, 1, len, stdout);
  free(text);
  return HSAC_OK;
}

static int cmd_compile(const hsac_cli *o) {
  bool ir = o->cmd == &hsac_cmd_ir;
  const char *emit = o->emit;
  hsac_options opts = {.stop = HSAC_STAGE_IR, .opt_level = o->opt_level,
                       .print_after = o->print_after, .include_dirs = includes(o)};
  hsac_compilation c;
  hsac_init(&c);
  if (opts.print_after && !strcmp(opts.print_after, "all")) {
    /* show the IR as built too, so every pass's effect is visible */
    hsac_options built = opts;
    built.opt_level = 0;
    built.print_after = NULL;
    hsac_compilation b;
    hsac_init(&b);
    if (hsac_compile_opts(&b, o->file, NULL, 0, &built) == HSAC_OK) {
      printf("# ---- as built\n");
      ir_print(b.graph, stdout);
    }
    hsac_free(&b);
  }
  hsac_status st = hsac_compile_opts(&c, o->file, NULL, 0, &opts);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_ENOMEM) fputs("hsac: error: out of memory\n", stderr);
  if (st == HSAC_EINTERNAL)
    fputs("hsac: error: internal compiler error (please report it with the input)\n",
          stderr);
  if (st == HSAC_OK && emit) {
    bool gpu = !strcmp(emit, "cuda") || !strcmp(emit, "ptx") || !strcmp(emit, "cubin");
    st = gpu ? emit_cuda(c.graph, emit, o->gpu_arch, o->gpu_bf16, o->out)
             : emit_code(c.graph, emit, o->cpu, o->cpu_bf16, o->out);
  } else if (st == HSAC_OK) {
    if (ir) {
      if (!opts.print_after) ir_print(c.graph, stdout);
    } else if (o->verbose) {
      /* stdout holds a model file that `hsac check` accepts again */
      print_summary(&c, false, stderr);
      fe_model_print(c.model, stdout);
    } else if (!print_summary(&c, o->json, stdout)) {
      fputs("hsac: error: out of memory\n", stderr);
      st = HSAC_ENOMEM;
    }
  } else if (st == HSAC_EINPUT) {
    fprintf(stderr, "hsac: %d error%s in %s\n", c.diags.nerrors,
            c.diags.nerrors == 1 ? "" : "s", o->file);
  }
  hsac_free(&c);
  return exit_for(st);
}

/* ---- plan ----------------------------------------------------------------- */

static int cmd_plan(const hsac_cli *o) {
  hsac_compilation c;
  hsac_init(&c);
  hsac_options po_c = {.stop = HSAC_STAGE_IR, .opt_level = 1, .include_dirs = includes(o)};
  hsac_status st = hsac_compile_opts(&c, o->file, NULL, 0, &po_c);
  ut_diags_render(&c.diags, &c.sources, stderr);
  if (st == HSAC_OK) {
    hsac_plan_opts po = {.context = o->context, .segment = o->segment,
                         .cache_bytes = o->cache == HSART_CACHE_F32 ? 4 : 2, .json = o->json,
                         .weights_bf16 = o->weights_dtype == HSART_WEIGHTS_BF16};
    if (!hsac_plan(c.graph, c.model, &po, NULL, stdout)) {
      fputs("hsac: error: out of memory\n", stderr);
      st = HSAC_ENOMEM;
    }
  }
  hsac_free(&c);
  return exit_for(st);
}

/* ---- init-weights --------------------------------------------------------- */

static int cmd_init_weights(const hsac_cli *o) {
  hsart_error e;
  hsart_model_options io = {.include_dirs = includes(o)};
  hsart_weights_info wr;
  hsart_status st = hsart_init_weights_report(o->file, o->out, (uint64_t)o->seed, &io, &wr, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    return exit_for_rt(st);
  }
  if (!o->quiet) {
    char params[32], bytes[32];
    human_count(wr.parameters, params, sizeof params);
    human_bytes((double)wr.file_bytes, bytes, sizeof bytes);
    fprintf(stderr, "hsac: wrote %s: %d tensors, %s parameters (f32, %s) for model '%s', "
            "seed %lld\n", o->out, wr.tensors, params, bytes, wr.model, o->seed);
  }
  return 0;
}

/* ---- import --------------------------------------------------------------- */

static int cmd_import(const hsac_cli *o) {
  hsac_import_opts io = {.dir = o->file, .out_dir = o->out, .name = o->name,
                         .version = HSAC_VERSION};
  hsac_import_report r;
  hsac_import_report_init(&r);
  char err[4096];
  hsart_status st = hsac_import(&io, &r, err, sizeof err);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", err);
    for (int i = 0; i < r.nproblems; i++) fprintf(stderr, "  %s\n", r.problems[i]);
    if (r.nproblems) fprintf(stderr, "hsac: nothing was written\n");
  } else if (!o->quiet) {
    for (int i = 0; i < r.nnotes; i++) fprintf(stderr, "hsac: note: %s\n", r.notes[i]);
    char params[32];
    human_count(r.params, params, sizeof params);
    fprintf(stderr, "hsac: wrote %s and %s: %d of %d tensors placed, %s parameters\n",
            r.model_path, r.weights_path, r.nplaced, r.ntensors, params);
  }
  hsac_import_report_free(&r);
  return st == HSART_OK ? 0 : exit_for_rt(st);
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
  bool c2;     /* tty: a 0xc2 byte waits for the next (a C1 control?) */
  int64_t bytes;
} output;

/* On a terminal, C0 controls but newline and tab, DEL, and the C1
 * controls U+0080..U+009F (0xc2 0x80..0x9f in UTF-8; xterm acts on
 * U+009B as on ESC [) are printed as \xNN. */
static void emit_bytes(output *o, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)b[i];
    if (!o->tty) {
      fputc(c, stdout);
      continue;
    }
    if (o->c2) {
      o->c2 = false;
      if (c >= 0x80 && c <= 0x9f) {
        printf("\\xc2\\x%02x", c);
        continue;
      }
      fputc(0xc2, stdout);
    }
    if (c == 0xc2)
      o->c2 = true;
    else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
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
  if (o->c2) fputc(0xc2, stdout); /* the last byte: not a C1 control */
  o->c2 = false;
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

static int cmd_run(const hsac_cli *o) {
  const char *prompt = o->prompt, *prompt_file = o->prompt_file, *stop = o->stop;
  long long max_context = o->max_context;
  hsart_model_options mo = model_options(o);
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
  int rc = 0;
  hsart_status st = hsart_model_load(o->file, o->weights, &mo, &m, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    rc = exit_for_rt(st);
    goto done;
  }
  if (o->verbose) {
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
  progress pr = {.tty = isatty(2), .quiet = o->quiet};
  clock_gettime(CLOCK_MONOTONIC, &pr.start);
  hsart_session_options so = {.segment = o->segment, .cache = (hsart_cache_type)o->cache, .progress = show_progress,
                              .check_numerics = o->check_numerics, .profile = o->profile,
                              .user = &pr};
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
  hsart_sampler sp = {(float)o->temperature, (int32_t)o->top_k, (float)o->top_p, (uint64_t)o->seed};
  const char *why = "at --max-new";
  long long generated = 0;
  for (long long i = 0; i < o->max_new; i++) {
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
    if (st == HSART_OK && i + 1 < o->max_new) st = hsart_decode(s, t);
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
  if (!o->quiet) print_run_summary(n, prefill_s, generated, elapsed(&t0), why);
  if (o->profile) print_profile(s);
  if (o->verbose) {
    char desc[512];
    hsart_session_describe(s, desc, sizeof desc);
    if (desc[0]) fprintf(stderr, "hsac: %s\n", desc);
  }
done:
  free(out.held);
  free(tokens);
  free(owned);
  hsart_session_free(s);
  hsart_model_free(m);
  return rc;
}

/* `hsac eval`: loads the model as run does; cli/eval.c does the rest. */
static int cmd_eval(const hsac_cli *o) {
  hsart_model_options mo = model_options(o);
  hsart_error e;
  hsart_model *m = NULL;
  hsart_status st = hsart_model_load(o->file, o->weights, &mo, &m, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    return exit_for_rt(st);
  }
  if (o->verbose) {
    char desc[1024];
    hsart_model_describe(m, desc, sizeof desc);
    fprintf(stderr, "hsac: %s\n", desc);
  }
  int rc;
  if (hsart_model_vocab(m) < 256) {
    fprintf(stderr, "hsac: error: model '%s' has a vocabulary of %lld; the byte-level "
            "tokenizer needs at least 256\n", hsart_model_name(m),
            (long long)hsart_model_vocab(m));
    rc = EXIT_INPUT;
  } else {
    rc = hsac_eval_run(m, o);
  }
  hsart_model_free(m);
  return rc;
}

/* ---- export, logits --------------------------------------------------------- */

static int cmd_export(const hsac_cli *o) {
  int rc;
  hsac_compilation c;
  hsac_init(&c);
  hsac_options co = {.stop = HSAC_STAGE_IR, .opt_level = 0, .include_dirs = includes(o)};
  hsac_status st = hsac_compile_opts(&c, o->file, NULL, 0, &co);
  ut_diags_render(&c.diags, &c.sources, stderr);
  rc = exit_for(st);
  if (st == HSAC_OK) {
    char *text = ir_export_json(c.graph, c.model);
    if (!text) {
      fputs("hsac: error: out of memory\n", stderr);
      rc = EXIT_NOMEM;
    } else if (o->out) {
      if (!write_atomically(o->out, text, strlen(text))) {
        fprintf(stderr, "hsac: error: cannot write '%s': %s\n", o->out, ut_file_strerror(errno));
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

static int cmd_logits(const hsac_cli *o) {
  const char *tokens_arg = o->tokens, *prompt = o->prompt;
  hsart_model_options mo = model_options(o);
  int rc;
  int64_t cap = tokens_arg ? (int64_t)strlen(tokens_arg) / 2 + 1 : (int64_t)strlen(prompt) + 1;
  int32_t *tok = malloc((size_t)cap * sizeof *tok);
  if (!tok) {
    fputs("hsac: error: out of memory\n", stderr);
    return EXIT_NOMEM;
  }
  int64_t n = 0;
  if (tokens_arg) {
    /* the list's syntax and range were checked by the parse */
    for (const char *p = tokens_arg; *p;) {
      char *end;
      tok[n++] = (int32_t)strtol(p, &end, 10);
      p = *end ? end + 1 : end;
    }
  } else {
    n = hsart_tokenize(prompt, (int64_t)strlen(prompt), tok, cap);
  }
  if (n == 0) {
    free(tok);
    return cli_usage_error(o->cmd, "no tokens: the prompt is empty");
  }
  hsart_error e;
  hsart_model *m = NULL;
  hsart_session *s = NULL;
  all_logits a = {0};
  rc = 0;
  hsart_status st = hsart_model_load(o->file, o->weights, &mo, &m, &e);
  if (st != HSART_OK) {
    print_load_error(&e);
    rc = exit_for_rt(st);
    goto done;
  }
  a.n = n;
  a.vocab = hsart_model_vocab(m);
  a.data = malloc((size_t)(n * a.vocab) * sizeof *a.data);
  hsart_session_options so = {.on_logits = collect_logits, .check_numerics = o->check_numerics,
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
  if (st_write(o->out, &t, 1, NULL, msg, sizeof msg) != HSART_OK) {
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
static int cmd_cache(const hsac_cli *o) {
  const char *what = o->file;
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
static int cmd_simple(const hsac_cli *o) {
  const cli_command *c = o->cmd;
  if (c == &hsac_cmd_passes) {
    const char *const *names, *const *docs;
    int n = hsac_pass_names(&names, &docs);
    for (int i = 0; i < n; i++) printf("%-14s %s\n", names[i], docs[i]);
  } else if (c == &hsac_cmd_params) {
    fe_params_print_markdown(stdout);
  } else if (c == &hsac_cmd_version) {
    char llvm[32], nvrtc[32];
    cg_llvm_version(llvm, sizeof llvm);
    cg_nvrtc_version(nvrtc, sizeof nvrtc);
    printf("hsac %s (runtime %s)\nLLVM %s\nNVRTC %s\n", HSAC_VERSION, hsart_version(), llvm,
           nvrtc);
    char gpu[256], why[256];
    if (rt_cuda_probe(gpu, sizeof gpu, why, sizeof why) > 0) printf("GPU %s\n", gpu);
    else printf("GPU none (%s)\n", why);
  } else if (o->file) { /* help COMMAND (the parse checked the name) */
    const cli_command *which = cli_find(hsac_commands, o->file);
    cli_print_help(which, stdout);
  } else {
    cli_print_overview(hsac_commands, stdout);
  }
  return 0;
}

static int dispatch(int argc, char **argv) {
  hsac_cli o;
  int rc = hsac_cli_parse(argc, argv, &o);
  if (rc >= 0) return rc;
  const cli_command *c = o.cmd;
  if (c == &tk_gen_task_command) return tk_cmd_gen_task(argc - 2, argv + 2);
  if (c == &hsac_cmd_check || c == &hsac_cmd_ir) return cmd_compile(&o);
  if (c == &hsac_cmd_plan) return cmd_plan(&o);
  if (c == &hsac_cmd_init_weights) return cmd_init_weights(&o);
  if (c == &hsac_cmd_run) return cmd_run(&o);
  if (c == &hsac_cmd_eval) return cmd_eval(&o);
  if (c == &hsac_cmd_logits) return cmd_logits(&o);
  if (c == &hsac_cmd_export) return cmd_export(&o);
  if (c == &hsac_cmd_import) return cmd_import(&o);
  if (c == &hsac_cmd_cache) return cmd_cache(&o);
  if (c == &hsac_cmd_tune) return cmd_tune(&o);
  return cmd_simple(&o);
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
