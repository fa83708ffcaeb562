/* commands.h - hsac's commands and their options: the tables (cli/args.h)
 * and the parse of a command line into one hsac_cli, with every value and
 * every combination checked before anything runs.
 *
 * Parsing does no work and touches no file: main.c runs the command from
 * the hsac_cli, and fuzz/fuzz_cli.c feeds the parser arbitrary command
 * lines. */
#ifndef HSAC_CLI_COMMANDS_H
#define HSAC_CLI_COMMANDS_H

#include <stdbool.h>

#include "cli/args.h"

enum { HSAC_CLI_MAX_INCLUDES = 16, HSAC_CLI_MAX_LENGTHS = 32 };

typedef struct hsac_cli {
  const cli_command *cmd;
  /* the operand: FILE; cache's ls|clear; help's COMMAND */
  const char *file;
  /* -I folders, NULL-terminated */
  const char *include_dirs[HSAC_CLI_MAX_INCLUDES + 1];
  int nincludes;
  bool verbose, quiet, json, check_numerics, no_cache, gpu_bf16, cpu_bf16, profile, dry_run;
  const char *tuning_db;  /* --tuning-db */
  long long tune_length, tune_decode, tune_reps; /* tune: 0 = the defaults; decode -1: none */
  long long gpu_pages;   /* --gpu-pages bytes (0: not given) */
  const char *out, *emit, *cpu, *gpu_arch, *print_after, *weights, *prompt, *prompt_file, *stop, *tokens;
  int opt_level; /* 1, or 0 with ir -O0 */
  long long context, segment, seed, max_new, top_k, max_context;
  double temperature, top_p;
  int cache;   /* hsart_cache_type */
  int backend; /* hsart_backend */
  int threads; /* 0: every core */
  int weights_dtype; /* hsart_weights_dtype */
  bool weights_dtype_given;
  /* eval (values are tk_task, tk_filler, tk_phrasing, tk_needle) */
  int tasks[8], ntasks;
  int fillers[8], nfillers; /* none given: synthetic */
  long long lengths[HSAC_CLI_MAX_LENGTHS];
  int nlengths;
  double depths[HSAC_CLI_MAX_LENGTHS]; /* --depths (none given: the seed's) */
  int ndepths;
  long long n_items;
  int phrasing, needle, count;
  const char *csv, *json_out, *corpus_dir;
  const char *baseline; /* eval --baseline: an earlier --csv to compare with */
  const char *name; /* import --name */
  double min_score;
  bool has_min_score;
} hsac_cli;

/* Every command, NULL-terminated, in the order `hsac help` lists them. */
extern const cli_command *const hsac_commands[];
extern const cli_command hsac_cmd_check, hsac_cmd_ir, hsac_cmd_passes, hsac_cmd_plan,
    hsac_cmd_init_weights, hsac_cmd_run, hsac_cmd_logits, hsac_cmd_export, hsac_cmd_import,
    hsac_cmd_eval, hsac_cmd_tune, hsac_cmd_cache,
    hsac_cmd_params, hsac_cmd_version, hsac_cmd_help;

/* Parses `hsac ARGS...` (argv[0] is the program) into *o.  Returns -1 when
 * the command is to run, else the exit status to end with: 0 after help
 * was printed, 2 after a usage error was printed.  gen-task's options are
 * parsed by tk_cmd_gen_task (o->cmd is tk_gen_task_command, o->file
 * unset). */
int hsac_cli_parse(int argc, char **argv, hsac_cli *o);

#endif
