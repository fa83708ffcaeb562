/* args.c - option tables, the parser over them, and the help printed from
 * them (args.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "util/diag.h"

enum { EXIT_USAGE = 2, EXIT_INTERNAL = 4 };

void cli_args_init(cli_args *a, const cli_command *cmd, const cli_command *const *all, int argc,
                   char **argv) {
  memset(a, 0, sizeof *a);
  a->cmd = cmd;
  a->all = all;
  a->argc = argc;
  a->argv = argv;
}

int cli_usage_error(const cli_command *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("hsac: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (c)
    fprintf(stderr, "\n(run `hsac %s --help` for its options)\n", c->name);
  else
    fputs("\n(run `hsac help` for the commands)\n", stderr);
  return EXIT_USAGE;
}

int cli_unhandled(const cli_args *a) {
  fprintf(stderr, "hsac: internal error: option '%s' of '%s' is in its table but not handled "
          "(please report it)\n", a->last ? a->last->name : "?", a->cmd->name);
  return EXIT_INTERNAL;
}

const char *cli_suggest(const char *w, const char *const *words) {
  const char *best = NULL;
  size_t lw = strlen(w);
  /* close: at most 2 edits (1 for words of 3 or 4 letters, none for
   * shorter ones, so that "-x" does not suggest "-o") */
  int best_d = (lw <= 2 ? 0 : lw <= 4 ? 1 : 2) + 1;
  for (int i = 0; words[i]; i++) {
    int d = ut_edit_distance(w, words[i]);
    if (d < best_d) {
      best_d = d;
      best = words[i];
    }
  }
  return best;
}

const cli_command *cli_find(const cli_command *const *all, const char *name) {
  for (int i = 0; all[i]; i++)
    if (!strcmp(all[i]->name, name)) return all[i];
  return NULL;
}

/* Every spelling of the command's options, for suggestions. */
static int spellings(const cli_command *c, const char **out, int cap) {
  int n = 0;
  for (int g = 0; c->groups[g]; g++)
    for (const cli_opt *o = c->groups[g]; o->id; o++) {
      if (n < cap - 1) out[n++] = o->name;
      if (o->alias && n < cap - 1) out[n++] = o->alias;
    }
  out[n] = NULL;
  return n;
}

static const cli_opt *find_opt(const cli_command *c, const char *s, size_t len) {
  for (int g = 0; c->groups[g]; g++)
    for (const cli_opt *o = c->groups[g]; o->id; o++) {
      if (strlen(o->name) == len && !strncmp(o->name, s, len)) return o;
      if (o->alias && strlen(o->alias) == len && !strncmp(o->alias, s, len)) return o;
    }
  return NULL;
}

static int unknown_option(cli_args *a, const char *arg, size_t len) {
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), arg);
  const char *words[128];
  spellings(a->cmd, words, 128);
  const char *best = cli_suggest(name, words);
  if (best)
    return cli_usage_error(a->cmd, "unknown option '%s' for %s; did you mean '%s'?", name,
                           a->cmd->name, best), CLI_ERROR;
  /* an option of another command, given to this one */
  char others[256];
  size_t n = 0;
  others[0] = 0;
  for (int i = 0; a->all && a->all[i]; i++)
    if (a->all[i] != a->cmd && find_opt(a->all[i], name, strlen(name)) && n < sizeof others)
      n += (size_t)snprintf(others + n, sizeof others - n, "%s%s", n ? ", " : "",
                            a->all[i]->name);
  if (n)
    return cli_usage_error(a->cmd, "unknown option '%s' for %s (it is an option of %s)", name,
                           a->cmd->name, others), CLI_ERROR;
  return cli_usage_error(a->cmd, "unknown option '%s' for %s", name, a->cmd->name), CLI_ERROR;
}

int cli_next(cli_args *a, const char **val) {
  *val = NULL;
  a->last = NULL;
  if (a->i >= a->argc) return CLI_END;
  const char *s = a->argv[a->i++];
  if (a->options_done || s[0] != '-' || !s[1]) {
    *val = s;
    return CLI_OPERAND;
  }
  if (!strcmp(s, "--")) {
    a->options_done = true;
    return cli_next(a, val);
  }
  if (!strcmp(s, "-h") || !strcmp(s, "--help")) return CLI_HELP;
  const cli_opt *o = find_opt(a->cmd, s, strlen(s));
  if (o) {
    a->last = o;
    if (!o->arg) return o->id;
    if (a->i >= a->argc)
      return cli_usage_error(a->cmd, "option '%s' expects a value: %s %s", s, o->name, o->arg),
             CLI_ERROR;
    *val = a->argv[a->i++];
    return o->id;
  }
  const char *eq = strchr(s, '=');
  if (s[1] == '-' && eq) { /* --name=value */
    o = find_opt(a->cmd, s, (size_t)(eq - s));
    if (!o) return unknown_option(a, s, (size_t)(eq - s));
    a->last = o;
    if (!o->arg)
      return cli_usage_error(a->cmd, "option '%s' takes no value", o->name), CLI_ERROR;
    *val = eq + 1;
    return o->id;
  }
  if (s[1] != '-') { /* -xVALUE */
    o = find_opt(a->cmd, s, 2);
    if (o && o->arg) {
      a->last = o;
      *val = s + 2;
      return o->id;
    }
  }
  return unknown_option(a, s, strlen(s));
}

/* "--name ARG, -a" in a column at indent, the help's lines beside it
 * from column col and below it. */
static void print_opt(const cli_opt *o, FILE *out, int indent, int col) {
  char left[96];
  snprintf(left, sizeof left, "%s%s%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "",
           o->alias ? ", " : "", o->alias ? o->alias : "");
  if (indent + (int)strlen(left) + 2 > col)
    fprintf(out, "%*s%s\n%*s", indent, "", left, col, "");
  else
    fprintf(out, "%*s%-*s", indent, "", col - indent, left);
  for (const char *p = o->help; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    fprintf(out, "%.*s\n", (int)n, p);
    if (!nl) break;
    p = nl + 1;
    fprintf(out, "%*s", col, "");
  }
}

void cli_print_help(const cli_command *c, FILE *out) {
  fprintf(out, "usage: hsac %s%s%s\n\n%s\n", c->name, c->synopsis[0] ? " " : "", c->synopsis,
          c->summary);
  if (c->details) fprintf(out, "\n%s", c->details);
  fputs("\noptions:\n", out);
  for (int g = 0; c->groups[g]; g++)
    for (const cli_opt *o = c->groups[g]; o->id; o++) print_opt(o, out, 2, 26);
  fputs("  -h, --help              this text\n", out);
}

void cli_print_overview(const cli_command *const *all, FILE *out) {
  fputs("usage: hsac <command> [options] [FILE]\n\n"
        "commands (`hsac <command> --help` tells more about one):\n", out);
  for (int i = 0; all[i]; i++) {
    const cli_command *c = all[i];
    fprintf(out, "\n  hsac %s%s%s\n", c->name, c->synopsis[0] ? " " : "", c->synopsis);
    for (const char *p = c->summary; *p;) { /* each line indented */
      const char *nl = strchr(p, '\n');
      int n = nl ? (int)(nl - p) : (int)strlen(p);
      fprintf(out, "      %.*s\n", n, p);
      p += n + (nl != NULL);
    }
    for (int g = 0; c->groups[g]; g++)
      for (const cli_opt *o = c->groups[g]; o->id; o++) print_opt(o, out, 6, 30);
  }
  fputs("\nexit status: 0 success, 1 errors in the input, 2 usage errors, 3 out of memory,\n"
        "4 internal errors\n", out);
}
