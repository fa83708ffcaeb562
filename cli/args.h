/* args.h - the command line's option tables, parser and help.
 *
 * Every command describes its options once, in a table of cli_opt; the
 * parser recognises options only through that table, and `hsac help`,
 * `hsac CMD --help` and the did-you-mean of an unknown option are printed
 * from the same table, so the help cannot list an option the parser does
 * not accept or miss one it does (tests/cli.sh checks each one).
 *
 * Spellings accepted for an option with a value: `--name VALUE`,
 * `--name=VALUE`, and for a one-letter option `-xVALUE` too.  `--` ends
 * the options; `-h` and `--help` anywhere ask for the command's help. */
#ifndef HSAC_CLI_ARGS_H
#define HSAC_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_opt {
  int id;            /* the command's code for it (> 0); 0 ends a table */
  const char *name;  /* "--weights", "-o" */
  const char *alias; /* a second spelling ("-v" for "--verbose"), or NULL */
  const char *arg;   /* the value's name ("W", "f32|bf16"); NULL: a flag */
  const char *help;  /* what it does; '\n' separates lines */
} cli_opt;

enum { CLI_MAX_GROUPS = 4 };

typedef struct cli_command {
  const char *name;
  const char *synopsis; /* after "hsac NAME ": "FILE --weights W [options]" */
  const char *summary;  /* one line */
  const char *details;  /* more, for `hsac NAME --help` (NULL: none) */
  /* the option tables, NULL-terminated; each table ends with {0} */
  const cli_opt *groups[CLI_MAX_GROUPS + 1];
  int max_operands; /* non-options accepted (FILE, ls|clear) */
} cli_command;

typedef struct cli_args {
  const cli_command *cmd;
  const cli_command *const *all; /* every command, NULL-terminated (suggestions) */
  int argc, i;
  char **argv;
  bool options_done; /* after "--" */
  const cli_opt *last; /* the option last returned */
} cli_args;

enum {
  CLI_END = 0,      /* no more arguments */
  CLI_OPERAND = -1, /* a non-option, in *val */
  CLI_HELP = -2,    /* -h or --help */
  CLI_ERROR = -3,   /* a usage error, already printed */
};

/* argv holds what follows the command's name. */
void cli_args_init(cli_args *a, const cli_command *cmd, const cli_command *const *all, int argc,
                   char **argv);

/* The next argument: an option's id (its value in *val, NULL for a flag),
 * or one of the CLI_ codes.  Unknown options, a missing value and a value
 * given to a flag are usage errors, printed with a suggestion where one is
 * close. */
int cli_next(cli_args *a, const char **val);

/* "hsac: error: ..." and a pointer to the command's help; returns 2. */
int cli_usage_error(const cli_command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An option in the table that the command's code does not handle: an
 * internal error (exit 4), which tests/cli.sh would catch. */
int cli_unhandled(const cli_args *a);

/* `hsac NAME --help`. */
void cli_print_help(const cli_command *c, FILE *out);
/* `hsac help`: every command with every option. */
void cli_print_overview(const cli_command *const *all, FILE *out);

/* The closest of the NULL-terminated words to w, or NULL when none is
 * close enough to be what was meant. */
const char *cli_suggest(const char *w, const char *const *words);

/* The command named name, or NULL. */
const cli_command *cli_find(const cli_command *const *all, const char *name);

#endif
