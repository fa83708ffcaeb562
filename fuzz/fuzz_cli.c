/* fuzz_cli.c - libFuzzer target: the command line's parse.
 *
 * The input is a command line: arguments separated by NUL bytes (at most
 * 64), after the program's name.  It goes through hsac_cli_parse, the
 * parse `hsac` itself runs (cli/commands.c: the option tables, --name=VALUE
 * and -xVALUE spellings, value checks, combinations, did-you-mean for
 * commands, options and passes, help printing), and for gen-task through
 * tk_gen_task_parse.  Parsing runs nothing and touches no file, so any
 * command line is safe here.
 *
 * What it checks, besides the sanitizers: a parse that says "run" leaves
 * a command and every value within the limits the commands rely on (the
 * input file where one is needed, at most 16 -I folders, a context and a
 * max-context of at most 2^31 - 1 positions, a segment of at most 2^24, a
 * --stop of 1..4096 bytes, a token list of digits and commas); a parse
 * that fails returns 0 (help) or 2 (usage error), never anything else.
 * run.sh runs it with -close_fd_mask=3: the usage errors and help text it
 * prints are not wanted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/tasks.h"
#include "passes/pipeline.h"
#include "runtime/hsa_runtime.h"

enum { MAX_ARGS = 64 };

static void check(bool ok) {
  if (!ok) abort();
}

static void check_parsed(const hsac_cli *o) {
  const cli_command *c = o->cmd;
  check(c != NULL);
  bool needs_file = c == &hsac_cmd_check || c == &hsac_cmd_ir || c == &hsac_cmd_plan ||
                    c == &hsac_cmd_init_weights || c == &hsac_cmd_run ||
                    c == &hsac_cmd_logits || c == &hsac_cmd_export || c == &hsac_cmd_eval ||
                    c == &hsac_cmd_tune;
  check(!needs_file || o->file);
  check(o->nincludes >= 0 && o->nincludes <= HSAC_CLI_MAX_INCLUDES);
  check(o->include_dirs[o->nincludes] == NULL);
  for (int i = 0; i < o->nincludes; i++) check(o->include_dirs[i] && o->include_dirs[i][0]);
  check(o->context >= 0 && o->context <= INT32_MAX);
  check(o->max_context >= 1 && o->max_context <= INT32_MAX);
  /* 0: the backend's default segment (512 on the CPU, 4096 on the GPU) */
  check(o->segment >= 0 && o->segment <= (1 << 24));
  check(o->tune_length >= 0 && o->tune_length <= (1 << 24));
  check(o->tune_decode >= -1 && o->tune_decode <= (1 << 20));
  check(o->tune_reps >= 0 && o->tune_reps <= 1000);
  check(!o->tuning_db || o->tuning_db[0]);
  check(o->max_new >= 0 && o->max_new <= (1 << 30));
  check(o->temperature >= 0 && o->temperature <= 100);
  check(o->top_p >= 0 && o->top_p <= 1);
  check(o->threads >= 0 && o->threads <= 256);
  check(o->cache == HSART_CACHE_F32 || o->cache == HSART_CACHE_BF16 ||
        o->cache == HSART_CACHE_F16);
  if (o->stop) check(strlen(o->stop) >= 1 && strlen(o->stop) <= 4096);
  if (o->tokens)
    for (const char *p = o->tokens; *p; p++) check((*p >= '0' && *p <= '9') || *p == ',');
  if (o->emit)
    check(!strcmp(o->emit, "mlir") || !strcmp(o->emit, "llvm") || !strcmp(o->emit, "asm") ||
          !strcmp(o->emit, "obj") || !strcmp(o->emit, "cuda") || !strcmp(o->emit, "ptx") ||
          !strcmp(o->emit, "cubin"));
  /* a GPU architecture is sm_ and at least two digits (then letters such as
   * the a of sm_90a), and goes with --emit=ptx or cubin */
  if (o->gpu_arch) {
    check(!strncmp(o->gpu_arch, "sm_", 3) && strspn(o->gpu_arch + 3, "0123456789") >= 2);
    check(c != &hsac_cmd_ir || (o->emit && (!strcmp(o->emit, "ptx") || !strcmp(o->emit, "cubin"))));
  }
  if (c == &hsac_cmd_ir && o->emit && (!strcmp(o->emit, "obj") || !strcmp(o->emit, "cubin")))
    check(o->out != NULL);
  if (o->print_after && strcmp(o->print_after, "all")) {
    const char *const *names, *const *docs;
    int np = hsac_pass_names(&names, &docs);
    bool known = false;
    for (int i = 0; i < np; i++) known = known || !strcmp(names[i], o->print_after);
    check(known);
  }
  if (c == &hsac_cmd_ir) check(!(o->print_after && (o->emit || !o->opt_level)));
  if (c == &hsac_cmd_plan) check(o->context >= 1);
  if (c == &hsac_cmd_run) check(!o->prompt != !o->prompt_file && o->weights);
  if (c == &hsac_cmd_logits) check(!o->prompt != !o->tokens && o->weights && o->out);
  if (c == &hsac_cmd_cache) check(!strcmp(o->file, "ls") || !strcmp(o->file, "clear"));
  if (c == &hsac_cmd_eval) {
    /* eval: every list holds known names, none twice; every length fits a
     * session with room for the answer; the seeds do not overflow */
    check(o->weights && o->ntasks >= 1 && o->ntasks <= TK_NTASKS && o->nlengths >= 1);
    for (int i = 0; i < o->ntasks; i++) {
      check(o->tasks[i] >= 0 && o->tasks[i] < TK_NTASKS);
      for (int j = 0; j < i; j++) check(o->tasks[i] != o->tasks[j]);
    }
    check(o->nfillers >= 0 && o->nfillers <= TK_NFILLERS);
    for (int i = 0; i < o->nfillers; i++) {
      check(o->fillers[i] >= 0 && o->fillers[i] < TK_NFILLERS);
      for (int j = 0; j < i; j++) check(o->fillers[i] != o->fillers[j]);
    }
    for (int i = 0; i < o->nlengths; i++)
      check(o->lengths[i] >= 1 && o->lengths[i] <= o->max_context &&
            o->lengths[i] <= INT32_MAX - 4096LL);
    check(o->n_items >= 1 && o->n_items <= 1000000 && o->seed <= INT64_MAX - (o->n_items - 1));
    check(o->phrasing >= 0 && o->phrasing < TK_NPHRASINGS && o->needle >= 0 &&
          o->needle < TK_NNEEDLES && o->count >= 0 && o->count <= TK_MAX_COUNT);
    check(!o->has_min_score || (o->min_score >= 0 && o->min_score <= 100));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the arguments, NUL-terminated copies in one buffer */
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "hsac";
  for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  if (size == 0) argc = 1; /* no arguments at all */
  argv[argc] = NULL;
  hsac_cli o;
  int rc = hsac_cli_parse(argc, argv, &o);
  check(rc == -1 || rc == 0 || rc == 2);
  if (rc == -1 && o.cmd == &tk_gen_task_command) {
    tk_gen_args g;
    int grc = tk_gen_task_parse(argc - 2, argv + 2, &g);
    check(grc == -1 || grc == 0 || grc == 2);
    if (grc == -1)
      check(g.length >= 1 && g.items >= 1 && g.items <= 1000000 && (int)g.o.task >= 0 &&
            g.o.task < TK_NTASKS && (int)g.o.needle >= 0 && g.o.needle < TK_NNEEDLES &&
            (int)g.o.filler >= 0 && g.o.filler < TK_NFILLERS && (int)g.o.phrasing >= 0 &&
            g.o.phrasing < TK_NPHRASINGS && (!g.corpus_dir || tk_filler_is_prose(g.o.filler)) &&
            (!g.o.has_depth || (g.o.depth >= 0 && g.o.depth <= 1)) &&
            (g.format != TK_FORMAT_PROMPT || g.items == 1));
  } else if (rc == -1) {
    check_parsed(&o);
  }
  free(buf);
  return 0;
}
