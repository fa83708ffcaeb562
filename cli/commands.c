/* commands.c - the commands' option tables and the parse of a command
 * line into an hsac_cli (commands.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/tasks.h"
#include "passes/pipeline.h"
#include "runtime/hsa_runtime.h"

enum { EXIT_USAGE = 2 };


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
  O_BACKEND, O_THREADS, O_CPU, O_GPU_ARCH, O_GPU_MATH, O_CPU_MATH, O_GPU_PAGES, O_NO_CACHE, O_CHECK_NUMERICS, O_WEIGHTS_DTYPE,
  /* eval */
  O_TASK, O_LENGTHS, O_N, O_FILLER, O_PHRASING, O_NEEDLE, O_CSV, O_JSON_OUT, O_CORPUS_DIR,
  O_MIN_SCORE, O_COUNT, O_DEPTHS, O_BASELINE,
  /* import */
  O_NAME,
  /* tune, profiling */
  O_TUNING_DB, O_PROFILE, O_LENGTH, O_DECODE, O_REPS, O_DRY_RUN,
};

#define END_OPTS {0, NULL, NULL, NULL, NULL}

static const cli_opt include_opts[] = {
    {O_INCLUDE, "-I", NULL, "DIR", "a folder searched for includes after the including\n"
                                   "file's own (up to 16; also -IDIR)"},
    END_OPTS,
};

static const cli_opt backend_opts[] = {
    {O_BACKEND, "--backend", NULL, "auto|cpu|ref|cuda|cuda-emu",
     "which backend runs the kernels (auto, the default: cpu\nwhen it compiles every op, else ref; "
     "cuda-emu: the\nCUDA kernels run on this CPU by the emulator)"},
    {O_THREADS, "--threads", NULL, "N", "threads of the cpu backend (default: every core)"},
    {O_GPU_MATH, "--gpu-math", NULL, "f32|bf16",
     "cuda backends: f32 arithmetic (the default), or the\nlinears and the sparse attention on tensor cores\n(bf16 inputs, f32 sums)"},
    {O_CPU_MATH, "--cpu-math", NULL, "f32|bf16",
     "cpu and ref backends: f32 linears (the default), or bf16\n"
     "inputs and matrices with f32 sums (AMX tiles, AVX512-BF16\n"
     "or f32 FMAs, by what the CPU has)"},
    {O_GPU_PAGES, "--gpu-pages", NULL, "SIZE",
     "cuda backends: keep at most SIZE bytes (64M, 2G) of\nhistory pages in device memory; older ones move to\npinned host memory (default: as many as fit)"},
    {O_WEIGHTS_DTYPE, "--weights-dtype", NULL, "keep|f32|bf16",
     "the linear layers' weights: keep (default) bf16 or f16\n"
     "where the file has them, else f32; f32; or bf16 (rounded\n"
     "at load; the cpu backend reads half the bytes)"},
    {O_CPU, "--cpu", NULL, "NAME", "generate code for a named CPU (haswell, ...), not the host"},
    {O_NO_CACHE, "--no-cache", NULL, NULL, "compile every kernel, reading and writing no cache"},
    {O_CHECK_NUMERICS, "--check-numerics", NULL, NULL,
     "name the first op that makes a NaN or an infinity\n"
     "(non-finite logits are always an error)"},
    {O_TUNING_DB, "--tuning-db", NULL, "FILE",
     "cuda backends: the tuning database that configures the\n"
     "kernels' launches (default: $HSAC_TUNING_DB, else\n"
     "tuning.tsv in the kernel cache's folder; none: defaults)"},
    END_OPTS,
};

static const cli_opt tune_opts[] = {
    {O_BACKEND, "--backend", NULL, "cuda|cuda-emu",
     "cuda (the default): this machine's GPU; cuda-emu: the\n"
     "emulator, to check the procedure (its entries are keyed\n"
     "'emulator' and never configure a GPU)"},
    {O_WEIGHTS, "--weights", NULL, "W", "the weights (default: random ones; only shapes matter)"},
    {O_LENGTH, "--length", NULL, "N", "prompt tokens of each timed run (default 4096)"},
    {O_DECODE, "--decode", NULL, "N", "decode steps after the prompt (default 32; 0: none)"},
    {O_REPS, "--reps", NULL, "N", "timed runs per configuration, after a warm-up (default 3)"},
    {O_GPU_MATH, "--gpu-math", NULL, "f32|bf16", "the kernels' arithmetic (tuned separately)"},
    {O_TUNING_DB, "--tuning-db", NULL, "FILE",
     "where the winners go (default: $HSAC_TUNING_DB, else\n"
     "tuning.tsv in the kernel cache's folder)"},
    {O_DRY_RUN, "--dry-run", NULL, NULL, "measure and print; write nothing"},
    {O_NO_CACHE, "--no-cache", NULL, NULL, "compile every kernel, reading and writing no cache"},
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
    {O_EMIT, "--emit", NULL, "mlir|llvm|asm|obj|cuda|ptx|cubin",
     "the CPU backend's kernels instead: MLIR, LLVM IR after\n"
     "O3, assembly, or an object file (with -o); or the CUDA\n"
     "backend's: CUDA C, PTX or a CUBIN (with -o) from NVRTC"},
    {O_GPU_ARCH, "--gpu-arch", NULL, "sm_NN", "with --emit=ptx|cubin: the GPU architecture (default sm_90)"},
    {O_GPU_MATH, "--gpu-math", NULL, "f32|bf16", "with --emit=cuda|ptx|cubin: the kernels' arithmetic"},
    {O_CPU_MATH, "--cpu-math", NULL, "f32|bf16", "with --emit=mlir|llvm|asm|obj: the linears' arithmetic"},
    {O_CPU, "--cpu", NULL, "NAME", "with --emit: code for a named CPU (haswell, ...)"},
    {O_OUT, "-o", NULL, "OUT", "with --emit=obj|cubin: the file to write"},
    END_OPTS,
};

static const cli_opt plan_opts[] = {
    {O_CONTEXT, "--context", NULL, "N", "tokens of context (required): 4096, 64K, 1M, 32M, ...\n"
                                         "(binary multiples: 32M = 33554432)"},
    {O_SEGMENT, "--segment", NULL, "N", "tokens per prefill segment (default 512, the CPU backends'; the GPU's is 4096)"},
    {O_CACHE, "--cache", NULL, "f32|bf16|f16", "element type of the attention caches (default f32)"},
    {O_WEIGHTS_DTYPE, "--weights-dtype", NULL, "f32|bf16",
     "count the linear layers' matrices in f32 (default) or in\n"
     "bf16, as run --weights-dtype holds them"},
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
    {O_PROMPT, "--prompt", NULL, "TEXT", "the prompt (byte-level tokens: each byte is one)"},
    {O_PROMPT_FILE, "--prompt-file", NULL, "F", "the prompt, read from a file (bytes as they are)"},
    {O_MAX_NEW, "--max-new", NULL, "N", "generate at most N tokens (default 64)"},
    {O_STOP, "--stop", NULL, "STRING", "stop when the output ends with STRING (not printed;\n"
                                       "generation also stops at the end-of-text token)"},
    {O_TEMPERATURE, "--temperature", NULL, "T", "sampling temperature (default 0: greedy)"},
    {O_TOP_K, "--top-k", NULL, "K", "sample among the K likeliest tokens (0: all)"},
    {O_TOP_P, "--top-p", NULL, "P", "sample among the likeliest tokens of mass P (0: all)"},
    {O_SEED, "--seed", NULL, "S", "the sampler's seed (default 0)"},
    {O_SEGMENT, "--segment", NULL, "N", "tokens per prefill segment (default 512; 4096 with --backend cuda)"},
    {O_CACHE, "--cache", NULL, "f32|bf16|f16", "element type of the attention caches (default f32)"},
    {O_MAX_CONTEXT, "--max-context", NULL, "N",
     "refuse prompts of more than N tokens (default 32M)"},
    {O_QUIET, "--quiet", "-q", NULL, "no progress and no summary on stderr"},
    {O_VERBOSE, "--verbose", "-v", NULL, "say which backend runs and how it was compiled"},
    {O_PROFILE, "--profile", NULL, NULL,
     "time every op; print a table after the run (the cuda\n"
     "backends are synced around each op)"},
    END_OPTS,
};

static const cli_opt eval_opts[] = {
    {O_WEIGHTS, "--weights", NULL, "W", "the weights, a safetensors file (required)"},
    {O_TASK, "--task", NULL, "T[,T...]",
     "tasks to run (required): passkey, multikey, multivalue,\n"
     "multiquery, vartrack, babi, or all"},
    {O_LENGTHS, "--lengths", NULL, "L[,L...]",
     "prompt lengths in bytes = tokens (required): 512,8K,64K"},
    {O_N, "--n", NULL, "N", "items per task, length and filler (default 20)"},
    {O_FILLER, "--filler", NULL, "STYLE[,...]",
     "haystack styles (default synthetic): synthetic, noise,\n"
     "fortunes, sayings, devil, jargon (devil and jargon are held\n"
     "out)"},
    {O_PHRASING, "--phrasing", NULL, "default|train|heldout|varied|composed|nonce",
     "the needles' and questions' wording (default: default)"},
    {O_NEEDLE, "--needle", NULL, "number|word|uuid|code", "the kind of the values (default number)"},
    {O_COUNT, "--count", NULL, "K", "gen-task's --count for every task that takes one"},
    {O_DEPTHS, "--depths", NULL, "D[,D...]",
     "passkey, multikey: a row per depth of the asked needle,\n"
     "0 (the haystack's start) to 1 (before the question):\n"
     "0,0.25,0.5,0.75,1 (default: drawn by each item's seed)"},
    {O_SEED, "--seed", NULL, "S", "item i has seed S+i (default 0; training uses none\n"
                                  "below 1000000)"},
    {O_CSV, "--csv", NULL, "FILE", "write one row per item (prompt's seed, output, score)"},
    {O_JSON_OUT, "--json-out", NULL, "FILE", "write the table as JSON"},
    {O_BASELINE, "--baseline", NULL, "CSV",
     "compare item by item with an earlier --csv of the same\n"
     "items (other weights): a table of items scored better\n"
     "and worse, with a sign test"},
    {O_MIN_SCORE, "--min-score", NULL, "PCT",
     "exit 1 when a row of the table scores below PCT percent"},
    {O_CORPUS_DIR, "--corpus-dir", NULL, "DIR", "where the prose fillers' files are"},
    {O_SEGMENT, "--segment", NULL, "N", "tokens per prefill segment (default 512; 4096 with --backend cuda)"},
    {O_CACHE, "--cache", NULL, "f32|bf16|f16", "element type of the attention caches (default f32)"},
    {O_MAX_CONTEXT, "--max-context", NULL, "N", "refuse lengths of more than N (default 32M)"},
    {O_QUIET, "--quiet", "-q", NULL, "no progress on stderr"},
    {O_VERBOSE, "--verbose", "-v", NULL, "print every item's answer and output on stderr"},
    END_OPTS,
};

static const cli_opt logits_opts[] = {
    {O_WEIGHTS, "--weights", NULL, "W", "the weights, a safetensors file (required)"},
    {O_TOKENS, "--tokens", NULL, "LIST", "token ids, comma-separated: 1,2,3"},
    {O_PROMPT, "--prompt", NULL, "TEXT", "a prompt (byte-level tokens)"},
    {O_OUT, "-o", NULL, "OUT", "the safetensors file to write (required)"},
    END_OPTS,
};

static const cli_opt import_opts[] = {
    {O_OUT, "-o", NULL, "DIR", "the folder to write model.hsa and weights.safetensors to\n"
                               "(required; created if missing)"},
    {O_NAME, "--name", NULL, "NAME", "the model's name in model.hsa (default: imported)"},
    {O_QUIET, "--quiet", "-q", NULL, "report only errors"},
    END_OPTS,
};

static const cli_opt export_opts[] = {
    {O_JSON, "--json", NULL, NULL, "write JSON (docs/export.md); required, the only format"},
    {O_OUT, "-o", NULL, "OUT", "write to OUT instead of stdout"},
    END_OPTS,
};

const cli_command hsac_cmd_check = {
    "check", "FILE [options]",
    "validate a model description and print a summary (parameters, layers, cache)",
    NULL, {check_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_ir = {
    "ir", "FILE [options]",
    "print the model's IR after the passes, or the CPU backend's generated kernels",
    NULL, {ir_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_passes = {"passes", "", "list the passes in the order they run",
                                       NULL, {NULL}, 0};
const cli_command hsac_cmd_plan = {
    "plan", "FILE --context N [options]",
    "caches, activation memory with buffer reuse, and the work per stage of a request",
    "The report, for a request of N tokens of context: every cache a session keeps,\n"
    "named by what it holds, in one table per unit (per token, per chunk; `kept` is\n"
    "`last R` for a ring of the last R rows, `all` for every row), with the total per\n"
    "token and fixed; the activation memory of one prefill segment; the weights and\n"
    "the peak; the FLOPs of the prefill per stage, with and without the demand\n"
    "analysis, whose verdict ends the report (docs/ir.md).\n",
    {plan_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_init_weights = {
    "init-weights", "FILE -o OUT [options]",
    "write deterministic random weights (safetensors) for a model",
    NULL, {init_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_run = {
    "run", "FILE --weights W (--prompt TEXT | --prompt-file F) [options]",
    "run a model on a prompt and stream the generated text to stdout",
    "Progress: on a terminal, a bar for prompts of 2048 tokens or more; otherwise\n"
    "a line at every 10% of such a prompt.  After generation a summary on stderr:\n"
    "prompt and generated tokens, their speeds, why generation stopped and the\n"
    "peak memory (-q leaves both out).  On a terminal, control bytes a model\n"
    "generates are shown escaped (\\xNN).\n",
    {run_opts, backend_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_eval = {
    "eval", "FILE --weights W --task T[,...] --lengths L[,...] [options]",
    "score a model on gen-task's tasks: greedy answers that start with the\n"
    "answer, RULER's partial score, a table per task, length and filler",
    "Each row of the table runs --n items (seeds S..S+N-1, the same questions at\n"
    "every length and filler) through the model: the prompt is prefilled in\n"
    "segments, then the answer is generated greedily and scored.  Single-answer\n"
    "tasks (passkey, multikey, babi) score 1 when the output starts with the\n"
    "answer; multi-answer tasks score the share of answers found in the output\n"
    "(RULER's partial score), and `exact` counts outputs that start with every\n"
    "answer in order.  Each score comes with its 95% interval (Wilson's): the\n"
    "true rates its items leave plausible.  docs/tasks.md, \"Evaluation\".\n",
    {eval_opts, backend_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_logits = {
    "logits", "FILE --weights W (--tokens LIST | --prompt TEXT) -o OUT [options]",
    "the logits of every position, as a safetensors file with one tensor\n"
    "'logits' [n, vocab] (to check other implementations against hsac)",
    NULL, {logits_opts, backend_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_export = {
    "export", "--json FILE [-o OUT]", "write the model's structure as JSON (docs/export.md)",
    NULL, {export_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_import = {
    "import", "DIR -o OUT_DIR [options]",
    "convert a checkpoint of the paper authors' SWA + HSA model (config.json and\n"
    "safetensors) into an hsac model file and weights",
    "DIR holds config.json and model.safetensors (or model.safetensors.index.json\n"
    "and its shards), as save_pretrained writes them for the authors'\n"
    "DRTForCausalLM.  hsac writes OUT_DIR/model.hsa and OUT_DIR/weights.safetensors\n"
    "(the tensors keep their dtype) only when every tensor has its place; otherwise\n"
    "it lists every tensor it could not place, every missing one and every shape\n"
    "that differs, and writes nothing.  A config field hsac cannot represent is\n"
    "refused by name.  docs/import.md maps every config field and tensor name.\n",
    {import_opts, NULL}, 1};
const cli_command hsac_cmd_tune = {
    "tune", "FILE [options]",
    "time the model's tunable CUDA kernel launches in each candidate\n"
    "configuration on this machine's GPU, and keep the fastest per shape\n"
    "bucket in the tuning database, which the cuda backend reads",
    "Each round compiles the model with every tunable launch in its next\n"
    "candidate configuration (linear tiles, threads per block) and times a\n"
    "prefill of --length tokens and --decode steps, --reps times after a\n"
    "warm-up.  A round whose logits differ from the defaults' is rejected\n"
    "(bf16 arithmetic: one further from an f32 run's than the defaults'); a\n"
    "candidate replaces the default only when at least 3% faster.  Without a\n"
    "GPU, hsac tune says so and exits 1 (docs/cuda.md, \"Tuning\").\n",
    {tune_opts, include_opts, NULL}, 1};
const cli_command hsac_cmd_cache = {
    "cache", "ls|clear",
    "list or remove the compiled kernels cached on disk\n"
    "($XDG_CACHE_HOME/hsac; HSAC_NO_CACHE=1 disables the cache)",
    NULL, {NULL}, 1};
const cli_command hsac_cmd_params = {"params", "",
                                       "print the reference of every parameter (Markdown)", NULL,
                                       {NULL}, 0};
const cli_command hsac_cmd_version = {"version", "", "print the versions of hsac, LLVM and NVRTC",
                                        NULL, {NULL}, 0};
const cli_command hsac_cmd_help = {"help", "[COMMAND]",
                                     "print every command and its options, or one command's help",
                                     NULL, {NULL}, 1};

const cli_command *const hsac_commands[] = {
    &hsac_cmd_check, &hsac_cmd_ir, &hsac_cmd_passes, &hsac_cmd_plan, &hsac_cmd_init_weights, &hsac_cmd_run, &hsac_cmd_logits,
    &hsac_cmd_export, &hsac_cmd_import, &tk_gen_task_command, &hsac_cmd_eval, &hsac_cmd_tune, &hsac_cmd_cache, &hsac_cmd_params, &hsac_cmd_version, &hsac_cmd_help, NULL,
};

/* ---- shared helpers ----------------------------------------------------- */


/* ---- values --------------------------------------------------------------- */

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

/* "4096", "64K", "1M", "32M", "2G" (binary multiples), 1 .. 2^40. */
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

/* A comma-separated list (--lengths, --depths) copied into buf for
 * strtok_r: false when it is empty, too long for buf or has an empty item
 * (",8K", "512,", "512,,8K"). */
static bool list_copy(const char *v, char *buf, size_t size) {
  size_t n = strlen(v);
  if (!n || n >= size || v[0] == ',' || v[n - 1] == ',' || strstr(v, ",,")) return false;
  memcpy(buf, v, n + 1);
  return true;
}

/* --cache f32|bf16|f16 */
static bool parse_cache(const char *v, int *out) {
  if (!strcmp(v, "f32")) *out = HSART_CACHE_F32;
  else if (!strcmp(v, "bf16")) *out = HSART_CACHE_BF16;
  else if (!strcmp(v, "f16")) *out = HSART_CACHE_F16;
  else return false;
  return true;
}

/* --tokens 1,2,3: comma-separated ids in 0..2^31-1 */
static bool valid_token_list(const char *s) {
  if (!*s) return false;
  for (const char *p = s; *p;) {
    char *end;
    errno = 0;
    long t = strtol(p, &end, 10);
    if (end == p || errno || t < 0 || t > INT32_MAX || *p < '0' || *p > '9' ||
        (*end && *end != ','))
      return false;
    p = *end ? end + 1 : end;
    if (end[0] == ',' && !end[1]) return false; /* a trailing comma */
  }
  return true;
}

static const char *suggest_command(const char *name) {
  const char *names[32];
  int k = 0;
  for (int i = 0; hsac_commands[i] && k < 31; i++) names[k++] = hsac_commands[i]->name;
  names[k] = NULL;
  return cli_suggest(name, names);
}

static int unknown_command(const char *name) {
  const char *best = suggest_command(name);
  if (best) return cli_usage_error(NULL, "unknown command '%s'; did you mean '%s'?", name, best);
  return cli_usage_error(NULL, "unknown command '%s'", name);
}

/* ---- the parse ------------------------------------------------------------- */

/* A comma-separated list of names (eval's --task, --filler) into out (at
 * most 8, none twice); 0 or the exit status of a usage error. */
static int take_names(const cli_command *c, const char *opt, const char *v,
                      int (*parse)(const char *), const char *known, int out[8], int *n) {
  char buf[256];
  *n = 0;
  if (strlen(v) >= sizeof buf || !*v) return cli_usage_error(c, "%s expects a list of: %s", opt, known);
  strcpy(buf, v);
  for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
    int k = parse(w);
    if (k < 0) return cli_usage_error(c, "%s: unknown name '%s' (%s)", opt, w, known);
    for (int i = 0; i < *n; i++)
      if (out[i] == k) return cli_usage_error(c, "%s names '%s' twice", opt, w);
    if (*n == 8) return cli_usage_error(c, "%s: at most 8 names", opt);
    out[(*n)++] = k;
  }
  if (!*n) return cli_usage_error(c, "%s expects a list of: %s", opt, known);
  return 0;
}

/* One option's value into o; 0, the exit status of a usage error, or -1
 * for an option this code does not know. */
static int take(const cli_command *c, hsac_cli *o, int id, const char *v) {
  long long n;
#define BAD(...) return cli_usage_error(c, __VA_ARGS__)
  switch (id) {
  case O_INCLUDE:
    if (!*v) BAD("-I expects a folder");
    if (o->nincludes == HSAC_CLI_MAX_INCLUDES) BAD("at most 16 -I folders");
    o->include_dirs[o->nincludes++] = v;
    return 0;
  case O_VERBOSE: o->verbose = true; return 0;
  case O_QUIET: o->quiet = true; return 0;
  case O_JSON: o->json = true; return 0;
  case O_OUT: o->out = v; return 0;
  case O_NAME: o->name = v; return 0;
  case O_PRINT_AFTER_ALL: o->print_after = "all"; return 0;
  case O_O0: o->opt_level = 0; return 0;
  case O_CPU: o->cpu = v; return 0;
  case O_GPU_MATH:
    if (strcmp(v, "f32") && strcmp(v, "bf16")) BAD("--gpu-math expects f32 or bf16, not '%s'", v);
    o->gpu_bf16 = !strcmp(v, "bf16");
    return 0;
  case O_CPU_MATH:
    if (strcmp(v, "f32") && strcmp(v, "bf16")) BAD("--cpu-math expects f32 or bf16, not '%s'", v);
    o->cpu_bf16 = !strcmp(v, "bf16");
    return 0;
  case O_GPU_PAGES:
    if (!parse_size(v, &o->gpu_pages)) BAD("--gpu-pages expects a size such as 512M or 2G, not '%s'", v);
    return 0;
  case O_GPU_ARCH:
    if (strncmp(v, "sm_", 3) || !v[3] || strspn(v + 3, "0123456789") < 2 ||
        strspn(v + 3, "0123456789abf") != strlen(v + 3))
      BAD("--gpu-arch expects an architecture such as sm_80 or sm_90, not '%s'", v);
    o->gpu_arch = v;
    return 0;
  case O_WEIGHTS: o->weights = v; return 0;
  case O_PROMPT: o->prompt = v; return 0;
  case O_PROMPT_FILE: o->prompt_file = v; return 0;
  case O_NO_CACHE: o->no_cache = true; return 0;
  case O_CHECK_NUMERICS: o->check_numerics = true; return 0;
  case O_EMIT:
    if (strcmp(v, "mlir") && strcmp(v, "llvm") && strcmp(v, "asm") && strcmp(v, "obj") &&
        strcmp(v, "cuda") && strcmp(v, "ptx") && strcmp(v, "cubin"))
      BAD("--emit expects mlir, llvm, asm, obj, cuda, ptx or cubin, not '%s'", v);
    o->emit = v;
    return 0;
  case O_PRINT_AFTER: {
    const char *const *names, *const *docs;
    int np = hsac_pass_names(&names, &docs);
    for (int i = 0; i < np; i++)
      if (!strcmp(names[i], v)) {
        o->print_after = v;
        return 0;
      }
    /* hsac_pass_names' list has a count, cli_suggest wants a NULL at
     * the end (fuzz/crashes/cli/pass-names-unterminated) */
    const char *words[64];
    int nw = 0;
    for (int i = 0; i < np && nw < 63; i++) words[nw++] = names[i];
    words[nw] = NULL;
    const char *best = cli_suggest(v, words);
    if (best) BAD("unknown pass '%s'; did you mean '%s'?", v, best);
    BAD("unknown pass '%s' (`hsac passes` lists them)", v);
  }
  /* the limits of a session: at most 2^31 - 1 positions, segments of at
   * most 2^24 rows (plan takes run's) */
  case O_CONTEXT:
    if (!parse_size(v, &o->context) || o->context > INT32_MAX)
      BAD("--context expects a size such as 4096, 64K or 32M, at most 2147483647 (2^31 - 1) "
          "positions, not '%s'", v);
    return 0;
  case O_SEGMENT:
    if (!parse_size(v, &o->segment) || o->segment > (1 << 24))
      BAD("--segment expects a size from 1 to 16M (16777216) such as 512 or 4K, not '%s'", v);
    return 0;
  case O_MAX_CONTEXT:
    if (!parse_size(v, &o->max_context) || o->max_context > INT32_MAX)
      BAD("--max-context expects a size such as 64K or 32M, at most 2147483647, not '%s'", v);
    return 0;
  case O_CACHE:
    if (!parse_cache(v, &o->cache)) BAD("--cache expects f32, bf16 or f16, not '%s'", v);
    return 0;
  case O_SEED:
    if (!parse_int(v, 0, INT64_MAX, &o->seed))
      BAD("--seed expects a non-negative integer, not '%s'", v);
    return 0;
  case O_MAX_NEW:
    if (!parse_int(v, 0, 1 << 30, &o->max_new)) BAD("--max-new expects an integer >= 0, not '%s'", v);
    return 0;
  case O_TOP_K:
    if (!parse_int(v, 0, 1 << 30, &o->top_k)) BAD("--top-k expects an integer >= 0, not '%s'", v);
    return 0;
  case O_TEMPERATURE:
    if (!parse_float(v, 0, 100, &o->temperature))
      BAD("--temperature expects a number in [0, 100], not '%s'", v);
    return 0;
  case O_TOP_P:
    if (!parse_float(v, 0, 1, &o->top_p)) BAD("--top-p expects a number in [0, 1], not '%s'", v);
    return 0;
  case O_STOP:
    if (!*v) BAD("--stop expects a non-empty string");
    if (strlen(v) > 4096) BAD("--stop: at most 4096 bytes");
    o->stop = v;
    return 0;
  case O_TOKENS:
    if (!valid_token_list(v))
      BAD("--tokens expects comma-separated token ids such as 1,2,3, not '%s'", v);
    o->tokens = v;
    return 0;
  case O_BACKEND:
    if (!strcmp(v, "ref")) o->backend = HSART_BACKEND_REF;
    else if (!strcmp(v, "cpu")) o->backend = HSART_BACKEND_CPU;
    else if (!strcmp(v, "auto")) o->backend = HSART_BACKEND_AUTO;
    else if (!strcmp(v, "cuda")) o->backend = HSART_BACKEND_CUDA;
    else if (!strcmp(v, "cuda-emu")) o->backend = HSART_BACKEND_CUDA_EMU;
    else BAD("--backend expects ref, cpu, cuda, cuda-emu or auto, not '%s'", v);
    return 0;
  case O_WEIGHTS_DTYPE:
    if (!strcmp(v, "keep")) o->weights_dtype = HSART_WEIGHTS_KEEP;
    else if (!strcmp(v, "f32")) o->weights_dtype = HSART_WEIGHTS_F32;
    else if (!strcmp(v, "bf16")) o->weights_dtype = HSART_WEIGHTS_BF16;
    else BAD("--weights-dtype expects keep, f32 or bf16, not '%s'", v);
    o->weights_dtype_given = true;
    return 0;
  case O_THREADS:
    if (!parse_int(v, 1, 256, &n)) BAD("--threads expects 1..256, not '%s'", v);
    o->threads = (int)n;
    return 0;
  case O_TASK:
    if (!strcmp(v, "all")) {
      o->ntasks = 0;
      for (int t = 0; t < TK_NTASKS; t++) o->tasks[o->ntasks++] = t;
      return 0;
    }
    return take_names(c, "--task", v, tk_task_parse,
                      "passkey, multikey, multivalue, multiquery, vartrack, babi or all",
                      o->tasks, &o->ntasks);
  case O_FILLER:
    return take_names(c, "--filler", v, tk_filler_parse,
                      "synthetic, noise, fortunes, sayings, devil, jargon", o->fillers,
                      &o->nfillers);
  case O_LENGTHS: {
    o->nlengths = 0;
    char buf[512];
    if (!list_copy(v, buf, sizeof buf)) BAD("--lengths expects a list such as 512,8K,64K");
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
      long long L;
      if (!parse_size(w, &L) || L > INT32_MAX)
        BAD("--lengths: '%s' is not a length such as 512, 8K or 1M (at most 2147483647)", w);
      if (o->nlengths == HSAC_CLI_MAX_LENGTHS) BAD("--lengths: at most %d lengths",
                                                   HSAC_CLI_MAX_LENGTHS);
      o->lengths[o->nlengths++] = L;
    }
    if (!o->nlengths) BAD("--lengths expects a list such as 512,8K,64K");
    return 0;
  }
  case O_N:
    if (!parse_int(v, 1, 1000000, &o->n_items)) BAD("--n expects 1..1000000, not '%s'", v);
    return 0;
  case O_DEPTHS: {
    o->ndepths = 0;
    char buf[512];
    if (!list_copy(v, buf, sizeof buf)) BAD("--depths expects a list such as 0,0.5,1");
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
      double d;
      if (!parse_float(w, 0, 1, &d)) BAD("--depths: '%s' is not a depth from 0 to 1", w);
      d += 0.0; /* -0 is 0 */
      if (o->ndepths == HSAC_CLI_MAX_LENGTHS) BAD("--depths: at most %d depths",
                                                  HSAC_CLI_MAX_LENGTHS);
      for (int i = 0; i < o->ndepths; i++)
        if (o->depths[i] == d) BAD("--depths names %g twice", d);
      o->depths[o->ndepths++] = d;
    }
    if (!o->ndepths) BAD("--depths expects a list such as 0,0.5,1");
    return 0;
  }
  case O_COUNT:
    if (!parse_int(v, 1, TK_MAX_COUNT, &n)) BAD("--count expects 1..%d, not '%s'", TK_MAX_COUNT, v);
    o->count = (int)n;
    return 0;
  case O_PHRASING: {
    int p = tk_phrasing_parse(v);
    if (p < 0) BAD("--phrasing expects default, train, heldout, varied, composed or nonce, not '%s'", v);
    o->phrasing = p;
    return 0;
  }
  case O_NEEDLE: {
    int k = tk_needle_parse(v);
    if (k < 0) BAD("--needle expects number, word, uuid or code, not '%s'", v);
    o->needle = k;
    return 0;
  }
  case O_CSV: o->csv = v; return 0;
  case O_JSON_OUT: o->json_out = v; return 0;
  case O_BASELINE: o->baseline = v; return 0;
  case O_CORPUS_DIR:
    if (!*v) BAD("--corpus-dir expects a directory");
    o->corpus_dir = v;
    return 0;
  case O_TUNING_DB:
    if (!*v) BAD("--tuning-db expects a file (or none)");
    o->tuning_db = v;
    return 0;
  case O_PROFILE: o->profile = true; return 0;
  case O_DRY_RUN: o->dry_run = true; return 0;
  case O_LENGTH:
    if (!parse_size(v, &o->tune_length) || o->tune_length > (1 << 24))
      BAD("--length expects a size from 1 to 16M such as 4096 or 64K, not '%s'", v);
    return 0;
  case O_DECODE:
    if (!parse_int(v, 0, 1 << 20, &n)) BAD("--decode expects 0..1048576, not '%s'", v);
    o->tune_decode = n ? n : -1;
    return 0;
  case O_REPS:
    if (!parse_int(v, 1, 1000, &o->tune_reps)) BAD("--reps expects 1..1000, not '%s'", v);
    return 0;
  case O_MIN_SCORE:
    if (!parse_float(v, 0, 100, &o->min_score))
      BAD("--min-score expects a percentage from 0 to 100, not '%s'", v);
    o->has_min_score = true;
    return 0;
  }
#undef BAD
  return -1; /* in a table, not handled here */
}

/* What a command needs besides valid values: its operand, its required
 * options, options that go together. */
static int check_combination(const hsac_cli *o) {
  const cli_command *c = o->cmd;
#define BAD(...) return cli_usage_error(c, __VA_ARGS__)
  bool needs_file = c == &hsac_cmd_check || c == &hsac_cmd_ir || c == &hsac_cmd_plan ||
                    c == &hsac_cmd_tune ||
                    c == &hsac_cmd_init_weights || c == &hsac_cmd_run ||
                    c == &hsac_cmd_logits || c == &hsac_cmd_export || c == &hsac_cmd_eval;
  if (c == &hsac_cmd_export && !o->json) BAD("export needs a format: --json");
  if (needs_file && !o->file) BAD("no input file");
  if (c == &hsac_cmd_ir) {
    bool obj = o->emit && (!strcmp(o->emit, "obj") || !strcmp(o->emit, "cubin"));
    bool gpu = o->emit && (!strcmp(o->emit, "ptx") || !strcmp(o->emit, "cubin"));
    if (obj && !o->out) BAD("--emit=%s writes a binary file: give it with -o FILE", o->emit);
    if (o->out && !obj) BAD("-o goes with --emit=obj or --emit=cubin");
    if (o->cpu && !o->emit) BAD("--cpu goes with --emit");
    if (o->gpu_arch && !gpu) BAD("--gpu-arch goes with --emit=ptx or --emit=cubin");
    if (o->gpu_bf16 && !(gpu || (o->emit && !strcmp(o->emit, "cuda"))))
      BAD("--gpu-math goes with --emit=cuda, ptx or cubin");
    if (o->cpu_bf16 && !(o->emit && !gpu && strcmp(o->emit, "cuda")))
      BAD("--cpu-math goes with --emit=mlir, llvm, asm or obj");
    if (o->print_after && o->emit)
      BAD("--print-after%s prints the IR and --emit the kernels: give one",
          strcmp(o->print_after, "all") ? "" : "-all");
    if (o->print_after && !o->opt_level)
      BAD("--print-after%s shows the passes, and -O0 runs none",
          strcmp(o->print_after, "all") ? "" : "-all");
  }
  if (c == &hsac_cmd_check && o->verbose && o->json)
    BAD("-v prints a model file and --json a summary: give one");
  if (c == &hsac_cmd_plan && !o->context) BAD("no context: --context N");
  if (c == &hsac_cmd_plan && o->weights_dtype == HSART_WEIGHTS_KEEP && o->weights_dtype_given)
    BAD("--weights-dtype keep depends on a weights file, which plan does not read: "
        "give f32 or bf16");
  if (c == &hsac_cmd_init_weights && !o->out) BAD("no output file: -o OUT.safetensors");
  if (c == &hsac_cmd_import && !o->file) BAD("no checkpoint folder: hsac import DIR -o OUT_DIR");
  if (c == &hsac_cmd_import && !o->out) BAD("no output folder: -o OUT_DIR");
  if (c == &hsac_cmd_eval) {
    if (!o->weights) BAD("no weights: --weights W.safetensors");
    if (!o->ntasks) BAD("no task: --task T[,T...] (or --task all)");
    if (!o->nlengths) BAD("no lengths: --lengths L[,L...] such as 512,8K");
    for (int i = 0; i < o->nlengths; i++) {
      if (o->lengths[i] > o->max_context)
        BAD("--lengths: %lld is more than --max-context %lld", o->lengths[i], o->max_context);
      /* the answer is generated after the prompt: a session holds at most
       * 2^31 - 1 positions, and eval generates at most 4096 bytes */
      if (o->lengths[i] > INT32_MAX - 4096LL)
        BAD("--lengths: %lld leaves no room for the answer (at most %lld)", o->lengths[i],
            INT32_MAX - 4096LL);
    }
    if (o->seed > INT64_MAX - (o->n_items - 1))
      BAD("--seed plus --n passes 2^63 - 1");
    for (int i = 0; o->ndepths && i < o->ntasks; i++)
      if (o->tasks[i] != TK_PASSKEY && o->tasks[i] != TK_MULTIKEY)
        BAD("--depths places the asked needle of passkey and multikey; %s spreads its "
            "needles", tk_task_name((tk_task)o->tasks[i]));
    bool prose = false;
    for (int i = 0; i < o->nfillers; i++) prose |= tk_filler_is_prose((tk_filler)o->fillers[i]);
    if (o->corpus_dir && !prose)
      BAD("--corpus-dir goes with a prose --filler (fortunes, sayings, devil, jargon)");
  }
  if (c == &hsac_cmd_run || c == &hsac_cmd_logits) {
    if (!o->weights) BAD("no weights: --weights W.safetensors");
  }
  if (o->gpu_pages && o->backend != HSART_BACKEND_CUDA && o->backend != HSART_BACKEND_CUDA_EMU)
    BAD("--gpu-pages goes with --backend cuda or cuda-emu");
  if (c == &hsac_cmd_tune && o->backend != HSART_BACKEND_AUTO &&
      o->backend != HSART_BACKEND_CUDA && o->backend != HSART_BACKEND_CUDA_EMU)
    BAD("hsac tune tunes the CUDA kernels: --backend cuda (the default) or cuda-emu");
  if (c == &hsac_cmd_tune && o->dry_run && o->tuning_db)
    BAD("--dry-run writes nothing: --tuning-db has no use with it");
  if (c != &hsac_cmd_tune && o->tuning_db && o->backend != HSART_BACKEND_CUDA &&
      o->backend != HSART_BACKEND_CUDA_EMU)
    BAD("--tuning-db goes with --backend cuda or cuda-emu");
  if (c == &hsac_cmd_run && !o->prompt == !o->prompt_file)
    BAD("give exactly one of --prompt TEXT and --prompt-file F");
  if (c == &hsac_cmd_logits) {
    if (!o->out) BAD("no output file: -o OUT.safetensors");
    if (!o->tokens == !o->prompt) BAD("give exactly one of --tokens and --prompt");
  }
  if (c == &hsac_cmd_cache && (!o->file || (strcmp(o->file, "ls") && strcmp(o->file, "clear"))))
    BAD("usage: hsac cache ls|clear");
  if (c == &hsac_cmd_help && o->file && !cli_find(hsac_commands, o->file))
    return unknown_command(o->file);
#undef BAD
  return -1;
}

int hsac_cli_parse(int argc, char **argv, hsac_cli *o) {
  memset(o, 0, sizeof *o);
  o->opt_level = 1;
  o->segment = 0; /* the backend's default (hsart_session_options) */
  o->max_new = 64;
  o->max_context = 1LL << 25; /* 32M tokens: the paper's longest */
  o->cache = HSART_CACHE_F32;
  o->backend = HSART_BACKEND_AUTO;
  o->n_items = 20;
  if (argc < 2) {
    cli_print_overview(hsac_commands, stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--help") || !strcmp(name, "-h")) name = "help";
  if (!strcmp(name, "--version")) name = "version";
  o->cmd = cli_find(hsac_commands, name);
  if (!o->cmd) return unknown_command(name);
  if (o->cmd == &tk_gen_task_command) return -1;
  cli_args a;
  cli_args_init(&a, o->cmd, hsac_commands, argc - 2, argv + 2);
  const char *v;
  int id;
  while ((id = cli_next(&a, &v)) != CLI_END) {
    if (id == CLI_ERROR) return EXIT_USAGE;
    if (id == CLI_HELP) {
      cli_print_help(o->cmd, stdout);
      return 0;
    }
    if (id == CLI_OPERAND) {
      if (o->cmd->max_operands == 0)
        return cli_usage_error(o->cmd, "'%s' takes no arguments (got '%s')", o->cmd->name, v);
      if (o->file) return cli_usage_error(o->cmd, "more than one input file ('%s')", v);
      o->file = v;
      continue;
    }
    int rc = take(o->cmd, o, id, v);
    if (rc < 0) return cli_unhandled(&a);
    if (rc) return rc;
  }
  return check_combination(o);
}
