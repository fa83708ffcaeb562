/* eval.c - `hsac eval` (eval.h, docs/tasks.md "Evaluation"). */
#include "cli/eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/corpus.h"
#include "cli/tasks.h"
#include "runtime/hsa_runtime.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_NOMEM = 3 };

/* Bytes generated after the answer's length: room for a multi-answer
 * output to hold the answers in another order or with other separators. */
enum { EXTRA_OUTPUT = 8 };

hsac_eval_score hsac_eval_score_output(const char *output, size_t n, const char *answer,
                                       char *const *answers, int n_answers) {
  hsac_eval_score s = {0, false};
  size_t k = strlen(answer);
  s.exact = n >= k && !memcmp(output, answer, k);
  if (n_answers <= 1) {
    s.score = s.exact ? 1.0 : 0.0;
    return s;
  }
  int found = 0;
  for (int i = 0; i < n_answers; i++) {
    size_t m = strlen(answers[i]);
    for (size_t j = 0; m && j + m <= n; j++)
      if (!memcmp(output + j, answers[i], m)) {
        found++;
        break;
      }
  }
  s.score = (double)found / n_answers;
  return s;
}

void hsac_eval_wilson(double p, long long n, double *lo, double *hi) {
  *lo = 0.0;
  *hi = 1.0;
  if (n < 1) return;
  if (p < 0.0) p = 0.0;
  if (p > 1.0) p = 1.0;
  const double z = 1.959963984540054; /* the normal 97.5% quantile */
  double nn = (double)n, z2 = z * z / nn;
  double mid = (p + z2 / 2.0) / (1.0 + z2);
  double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn)) / (1.0 + z2);
  *lo = p == 0.0 ? 0.0 : fmax(0.0, mid - half);
  *hi = p == 1.0 ? 1.0 : fmin(1.0, mid + half);
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* The first line of --csv, which --baseline checks. */
static const char CSV_HEADER[] = "task,filler,phrasing,needle,length,seed,score,exact,answer,"
                                 "output,prefill_s,depth,needle_at,kind,variant";
enum { CSV_FIELDS = 15 };

/* One byte of a CSV field's text into out: bytes outside printable ASCII,
 * and the backslash, as \xNN (an output may hold anything).  Returns the
 * bytes written, 1 or 4. */
static int csv_byte(unsigned char c, char out[5]) {
  if (c < 32 || c > 126 || c == '\\') return sprintf(out, "\\x%02x", c);
  out[0] = (char)c;
  return 1;
}

/* A field's text before quoting (csv_byte's), NUL-terminated: at most
 * 4 n + 1 bytes to buf. */
static void csv_escape(const char *s, size_t n, char *buf) {
  for (size_t i = 0; i < n; i++) buf += csv_byte((unsigned char)s[i], buf);
  *buf = 0;
}

/* A CSV field: csv_byte's text, quoted, quotes doubled. */
static void csv_field(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    char e[5];
    if (s[i] == '"') fputs("\"\"", f);
    else fwrite(e, 1, (size_t)csv_byte((unsigned char)s[i], e), f);
  }
  fputc('"', f);
}

/* "8K", "1M" when exact, else the number. */
static void format_length(long long L, char *buf, size_t size) {
  if (L >= (1LL << 20) && L % (1LL << 20) == 0) snprintf(buf, size, "%lldM", L >> 20);
  else if (L >= 1024 && L % 1024 == 0) snprintf(buf, size, "%lldK", L >> 10);
  else snprintf(buf, size, "%lld", L);
}

/* A row's place for messages: "8K", or "8K, depth 0.5". */
static void format_where(long long L, double depth, char *buf, size_t size) {
  char len[32];
  format_length(L, len, sizeof len);
  if (depth >= 0) snprintf(buf, size, "%s, depth %g", len, depth);
  else snprintf(buf, size, "%s", len);
}

/* --baseline: the items of an earlier --csv, keyed as this run's items. */
typedef struct base_item {
  char task[16], filler[16], phrasing[16], needle[16];
  long long length;
  unsigned long long seed;
  double depth; /* < 0: none */
  double score;
  char *answer; /* csv_escape's text */
  long line;
} base_item;

typedef struct baseline {
  base_item *items;
  size_t n;
} baseline;

static void baseline_free(baseline *b) {
  for (size_t i = 0; i < b->n; i++) free(b->items[i].answer);
  free(b->items);
  b->items = NULL;
  b->n = 0;
}

/* Splits a CSV line in place into at most max fields; a quoted field's
 * doubled quotes become one.  Returns the count, or -1 where a quoted
 * field does not end or is followed by something other than a comma. */
static int csv_split(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return max + 1;
    if (*p == '"') {
      char *w = ++p;
      f[n++] = w;
      for (;;) {
        if (!*p) return -1;
        if (*p == '"') {
          if (p[1] != '"') break;
          p++;
        }
        *w++ = *p++;
      }
      *w = 0;
      p++;
      if (*p && *p != ',') return -1;
    } else {
      f[n++] = p;
      while (*p && *p != ',') p++;
    }
    if (!*p) return n;
    *p++ = 0;
  }
}

static bool copy_name(char *dst, size_t size, const char *s) {
  if (strlen(s) >= size) return false;
  memcpy(dst, s, strlen(s) + 1);
  return true;
}

/* The order of items by key: task, filler, phrasing, needle, length,
 * seed, depth (none first). */
static int base_key_cmp(const void *pa, const void *pb) {
  const base_item *a = pa, *b = pb;
  int c;
  if ((c = strcmp(a->task, b->task)) || (c = strcmp(a->filler, b->filler)) ||
      (c = strcmp(a->phrasing, b->phrasing)) || (c = strcmp(a->needle, b->needle)))
    return c;
  if (a->length != b->length) return a->length < b->length ? -1 : 1;
  if (a->seed != b->seed) return a->seed < b->seed ? -1 : 1;
  if (a->depth != b->depth) return a->depth < b->depth ? -1 : 1;
  return 0;
}

/* By key, then by line, so that an item's copies lie together in file
 * order. */
static int base_line_cmp(const void *pa, const void *pb) {
  int c = base_key_cmp(pa, pb);
  if (c) return c;
  long la = ((const base_item *)pa)->line, lb = ((const base_item *)pb)->line;
  return (la > lb) - (la < lb);
}

/* Reads an `hsac eval --csv` file, sorted by key; an item that is there
 * twice (two runs' CSVs joined) is an error, since which one to compare
 * with would be a guess.  On failure err names the file, the
 * line and the problem; *nomem says that memory ran out. */
static bool baseline_load(const char *path, baseline *b, char *err, size_t errsize,
                          bool *nomem) {
  *nomem = false;
  memset(b, 0, sizeof *b);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errsize, "cannot read '%s': %s", path, strerror(errno));
    return false;
  }
  char *line = NULL;
  size_t cap = 0, itemcap = 0;
  long ln = 0;
  bool ok = true;
  ssize_t len;
  while (ok && (len = getline(&line, &cap, f)) >= 0) {
    ln++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (ln == 1) {
      if (strcmp(line, CSV_HEADER)) {
        snprintf(err, errsize, "%s:1: not an `hsac eval --csv` file (its first line is not "
                 "eval's header)", path);
        ok = false;
      }
      continue;
    }
    if (!len) continue;
    char *fl[CSV_FIELDS + 1];
    int nf = csv_split(line, fl, CSV_FIELDS);
    if (nf != CSV_FIELDS) {
      if (nf < 0)
        snprintf(err, errsize, "%s:%ld: a quoted field does not end with a quote before a "
                 "comma", path, ln);
      else
        snprintf(err, errsize, "%s:%ld: expected %d fields, found %s%d", path, ln, CSV_FIELDS,
                 nf > CSV_FIELDS ? "more than " : "", nf > CSV_FIELDS ? CSV_FIELDS : nf);
      ok = false;
      break;
    }
    base_item it;
    memset(&it, 0, sizeof it);
    it.line = ln;
    char *end;
    const char *bad = NULL;
    if (!copy_name(it.task, sizeof it.task, fl[0]) ||
        !copy_name(it.filler, sizeof it.filler, fl[1]) ||
        !copy_name(it.phrasing, sizeof it.phrasing, fl[2]) ||
        !copy_name(it.needle, sizeof it.needle, fl[3]))
      bad = "a task, filler, phrasing or needle name longer than any";
    errno = 0;
    it.length = strtoll(fl[4], &end, 10);
    if (!bad && (end == fl[4] || *end || errno || it.length <= 0))
      bad = "the length is not a positive integer";
    errno = 0;
    it.seed = strtoull(fl[5], &end, 10);
    if (!bad && (end == fl[5] || *end || errno || fl[5][0] == '-'))
      bad = "the seed is not an integer";
    it.score = strtod(fl[6], &end);
    if (!bad && (end == fl[6] || *end || !(it.score >= 0 && it.score <= 1)))
      bad = "the score is not a number from 0 to 1";
    it.depth = -1;
    if (fl[11][0]) {
      it.depth = strtod(fl[11], &end);
      if (!bad && (end == fl[11] || *end || !(it.depth >= 0 && it.depth <= 1)))
        bad = "the depth is not from 0 to 1";
    }
    for (const char *c = fl[8]; !bad && *c; c++)
      if (*c < 32 || *c > 126) bad = "the answer holds a byte eval does not write (not printable)";
    if (bad) {
      snprintf(err, errsize, "%s:%ld: %s", path, ln, bad);
      ok = false;
      break;
    }
    if (b->n == itemcap) {
      size_t nc = itemcap ? 2 * itemcap : 256;
      base_item *ni = realloc(b->items, nc * sizeof *ni);
      if (!ni) {
        ok = false;
        *nomem = true;
        break;
      }
      b->items = ni;
      itemcap = nc;
    }
    if (!(it.answer = strdup(fl[8]))) {
      ok = false;
      *nomem = true;
      break;
    }
    b->items[b->n++] = it;
  }
  if (ok && ferror(f)) {
    snprintf(err, errsize, "cannot read '%s': %s", path, strerror(errno));
    ok = false;
  }
  if (ok && ln == 0) {
    snprintf(err, errsize, "%s: empty, not an `hsac eval --csv` file", path);
    ok = false;
  }
  free(line);
  fclose(f);
  if (ok && b->n) {
    qsort(b->items, b->n, sizeof *b->items, base_line_cmp);
    for (size_t i = 1; ok && i < b->n; i++) {
      const base_item *x = &b->items[i - 1], *y = &b->items[i];
      if (base_key_cmp(x, y)) continue;
      char where[64];
      format_where(y->length, y->depth, where, sizeof where);
      snprintf(err, errsize, "%s:%ld: %s at %s, seed %llu is also on line %ld: which one to "
               "compare with is not clear", path, y->line, y->task, where, y->seed, x->line);
      ok = false;
    }
  }
  if (*nomem) snprintf(err, errsize, "out of memory reading '%s'", path);
  if (!ok) baseline_free(b);
  return ok;
}

/* The baseline's item with this run's item's key (the file is sorted by
 * key when loaded), or NULL.  The depth is read back from the form the
 * CSV writes it in, so that both sides compare equal. */
static const base_item *baseline_find(const baseline *b, const char *task, const char *filler,
                                      const char *phrasing, const char *needle, long long length,
                                      unsigned long long seed, double depth) {
  base_item key;
  memset(&key, 0, sizeof key);
  if (!copy_name(key.task, sizeof key.task, task) ||
      !copy_name(key.filler, sizeof key.filler, filler) ||
      !copy_name(key.phrasing, sizeof key.phrasing, phrasing) ||
      !copy_name(key.needle, sizeof key.needle, needle))
    return NULL; /* longer than any name the file can hold */
  key.length = length;
  key.seed = seed;
  key.depth = -1;
  if (depth >= 0) {
    char g[32];
    snprintf(g, sizeof g, "%g", depth);
    key.depth = strtod(g, NULL);
  }
  return b->n ? bsearch(&key, b->items, b->n, sizeof *b->items, base_key_cmp) : NULL;
}

double hsac_eval_sign_test(long long better, long long worse) {
  long long n = better + worse, k = better < worse ? better : worse;
  if (n <= 0) return 1.0;
  /* 2 P(X <= k), X ~ Binomial(n, 1/2), summed in logs */
  double lf = lgamma((double)n + 1.0) - (double)n * log(2.0), tail = 0.0;
  for (long long i = 0; i <= k; i++)
    tail += exp(lf - lgamma((double)i + 1.0) - lgamma((double)(n - i) + 1.0));
  return fmin(1.0, 2.0 * tail);
}

/* What a row, or one kind of question in it, adds up. */
typedef struct tally {
  long long items;
  double score_sum, exact_sum, tokens, prefill_s;
} tally;

typedef struct row {
  int task, filler;
  long long length;
  double depth; /* the asked needle's, or < 0: each item's seed draws it */
  tally all;
  tally kind[TK_NKINDS]; /* by the question's kind (babi); [TK_KIND_NONE] unused */
  /* --baseline: the items found there, this run's and the baseline's
   * score sums over them, and how many this run scored higher or lower */
  long long cmp_items, better, worse;
  double cmp_score, cmp_base;
} row;

static void tally_add(tally *t, double score, bool exact, double tokens, double prefill_s) {
  t->items++;
  t->score_sum += score;
  t->exact_sum += exact;
  t->tokens += tokens;
  t->prefill_s += prefill_s;
}

static int session_exit(hsart_status st) { return st == HSART_ENOMEM ? EXIT_NOMEM : EXIT_INPUT; }

/* One item: prefill, greedy answer, score.  Fills out (at most cap bytes)
 * and *outn. */
static hsart_status answer_item(hsart_session *s, const tk_item *it, int32_t *tokens,
                                char *out, size_t cap, size_t *outn, double *prefill_s) {
  *outn = 0;
  hsart_status st = hsart_session_reset(s);
  if (st != HSART_OK) return st;
  int64_t n = hsart_tokenize(it->prompt, (int64_t)it->prompt_len, tokens,
                             (int64_t)it->prompt_len);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  st = hsart_prefill(s, tokens, n);
  *prefill_s = seconds_since(&t0);
  if (st != HSART_OK) return st;
  hsart_sampler greedy = {0, 0, 0, 0};
  for (size_t i = 0; i < cap; i++) {
    int32_t t;
    st = hsart_sample(s, &greedy, &t);
    if (st != HSART_OK) return st;
    if (t < 0 || t > 255 || t == '\n') break; /* end of text, or the answer's line ends */
    out[(*outn)++] = (char)t;
    if (i + 1 < cap && (st = hsart_decode(s, t)) != HSART_OK) return st;
  }
  return HSART_OK;
}

/* The columns that name a row, in both tables: task, filler, length and,
 * only when --depths is given, depth.  The head's, or a row's under
 * label (r NULL: the head). */
static void print_key_columns(const char *label, const row *r, bool depths) {
  if (!r) {
    printf("%-10s %-9s %7s ", "task", "filler", "length");
    if (depths) printf("%6s ", "depth");
    return;
  }
  char len[32];
  format_length(r->length, len, sizeof len);
  printf("%-10s %-9s %7s ", label, tk_filler_name((tk_filler)r->filler), len);
  if (r->depth >= 0) printf("%6.4g ", r->depth);
}

static void print_table_head(bool depths) {
  print_key_columns(NULL, NULL, depths);
  printf("%6s %7s %11s %7s %12s\n", "items", "score", "95% CI", "exact", "prefill tok/s");
}

static void print_line(const char *label, const row *r, const tally *t) {
  print_key_columns(label, r, false);
  double n = (double)(t->items ? t->items : 1), lo, hi;
  hsac_eval_wilson(t->score_sum / n, t->items, &lo, &hi);
  char ci[32];
  snprintf(ci, sizeof ci, "%.1f-%.1f", 100.0 * lo, 100.0 * hi);
  printf("%6lld %6.1f%% %11s %6.1f%% %12.0f\n", t->items, 100.0 * t->score_sum / n, ci,
         100.0 * t->exact_sum / n, t->prefill_s > 0 ? t->tokens / t->prefill_s : 0.0);
}

/* A row, then (babi) a line per kind of question asked, indented. */
static void print_row(const row *r) {
  print_line(tk_task_name((tk_task)r->task), r, &r->all);
  for (int k = TK_KIND_NONE + 1; k < TK_NKINDS; k++) {
    if (!r->kind[k].items) continue;
    char label[16];
    snprintf(label, sizeof label, "  %s", tk_kind_name((tk_kind)k));
    print_line(label, r, &r->kind[k]);
  }
  fflush(stdout);
}

/* A share's 95% interval as [lo, hi] under key. */
static bool json_interval(cJSON *x, const char *key, double p, long long n) {
  double lo, hi;
  hsac_eval_wilson(p, n, &lo, &hi);
  cJSON *a = cJSON_AddArrayToObject(x, key);
  cJSON *l = a ? cJSON_CreateNumber(lo) : NULL;
  if (!l || !cJSON_AddItemToArray(a, l)) {
    cJSON_Delete(l);
    return false;
  }
  cJSON *h = cJSON_CreateNumber(hi);
  if (!h || !cJSON_AddItemToArray(a, h)) {
    cJSON_Delete(h);
    return false;
  }
  return true;
}

/* --baseline's table, after eval's: a line per row. */
static void print_comparison(const char *path, const row *rows, int nrows, bool depths) {
  printf("\ncompared item by item with %s (the items in both; p: the two-sided sign test "
         "on the items scored differently):\n", path);
  print_key_columns(NULL, NULL, depths);
  printf("%6s %7s %9s %7s %7s %8s\n", "items", "score", "baseline", "better", "worse", "p");
  for (int i = 0; i < nrows; i++) {
    const row *r = &rows[i];
    print_key_columns(tk_task_name((tk_task)r->task), r, depths);
    if (!r->cmp_items) {
      printf("%6d %7s %9s %7s %7s %8s\n", 0, "-", "-", "-", "-", "-");
      continue;
    }
    double n = (double)r->cmp_items;
    printf("%6lld %6.1f%% %8.1f%% %7lld %7lld %8.3g\n", r->cmp_items, 100.0 * r->cmp_score / n,
           100.0 * r->cmp_base / n, r->better, r->worse, hsac_eval_sign_test(r->better, r->worse));
  }
  fflush(stdout);
}

static bool json_tally(cJSON *x, const tally *t) {
  double n = (double)(t->items ? t->items : 1);
  return cJSON_AddNumberToObject(x, "items", (double)t->items) &&
         cJSON_AddNumberToObject(x, "score", t->score_sum / n) &&
         json_interval(x, "score_ci95", t->score_sum / n, t->items) &&
         cJSON_AddNumberToObject(x, "exact", t->exact_sum / n) &&
         json_interval(x, "exact_ci95", t->exact_sum / n, t->items) &&
         cJSON_AddNumberToObject(x, "prefill_tokens_per_s",
                                 t->prefill_s > 0 ? t->tokens / t->prefill_s : 0.0);
}

static bool write_json(const char *path, const hsac_cli *o, const row *rows, int nrows,
                       char *err, size_t errsize) {
  cJSON *j = cJSON_CreateObject();
  bool ok = j != NULL;
  ok = ok && cJSON_AddStringToObject(j, "model", o->file);
  ok = ok && cJSON_AddStringToObject(j, "weights", o->weights);
  ok = ok && cJSON_AddStringToObject(j, "phrasing", tk_phrasing_name((tk_phrasing)o->phrasing));
  ok = ok && cJSON_AddStringToObject(j, "needle", tk_needle_name((tk_needle)o->needle));
  ok = ok && cJSON_AddNumberToObject(j, "first_seed", (double)o->seed);
  ok = ok && (!o->baseline || cJSON_AddStringToObject(j, "baseline", o->baseline));
  cJSON *a = ok ? cJSON_AddArrayToObject(j, "rows") : NULL;
  ok = ok && a;
  for (int i = 0; ok && i < nrows; i++) {
    const row *r = &rows[i];
    cJSON *x = cJSON_CreateObject();
    ok = x && cJSON_AddItemToArray(a, x);
    if (!ok) {
      cJSON_Delete(x);
      break;
    }
    ok = cJSON_AddStringToObject(x, "task", tk_task_name((tk_task)r->task)) &&
         cJSON_AddStringToObject(x, "filler", tk_filler_name((tk_filler)r->filler)) &&
         cJSON_AddNumberToObject(x, "length", (double)r->length) &&
         (r->depth < 0 || cJSON_AddNumberToObject(x, "depth", r->depth)) &&
         json_tally(x, &r->all);
    if (ok && o->baseline) {
      cJSON *c = cJSON_AddObjectToObject(x, "baseline");
      double n = (double)(r->cmp_items ? r->cmp_items : 1);
      ok = c && cJSON_AddNumberToObject(c, "items", (double)r->cmp_items) &&
           cJSON_AddNumberToObject(c, "score", r->cmp_score / n) &&
           cJSON_AddNumberToObject(c, "baseline_score", r->cmp_base / n) &&
           cJSON_AddNumberToObject(c, "better", (double)r->better) &&
           cJSON_AddNumberToObject(c, "worse", (double)r->worse) &&
           cJSON_AddNumberToObject(c, "p", hsac_eval_sign_test(r->better, r->worse));
    }
    /* babi: "kinds", the same numbers for each kind of question asked */
    cJSON *kinds = NULL;
    for (int k = TK_KIND_NONE + 1; ok && k < TK_NKINDS; k++) {
      if (!r->kind[k].items) continue;
      if (!kinds) ok = (kinds = cJSON_AddObjectToObject(x, "kinds")) != NULL;
      cJSON *y = ok ? cJSON_AddObjectToObject(kinds, tk_kind_name((tk_kind)k)) : NULL;
      ok = y && json_tally(y, &r->kind[k]);
    }
  }
  char *text = ok ? cJSON_Print(j) : NULL;
  cJSON_Delete(j);
  if (!text) {
    snprintf(err, errsize, "out of memory");
    return false;
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  bool wrote = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
  wrote = f && fclose(f) == 0 && wrote;
  free(text);
  if (!wrote || rename(tmp, path) != 0) {
    snprintf(err, errsize, "cannot write '%s': %s", path, strerror(errno));
    unlink(tmp);
    return false;
  }
  return true;
}

int hsac_eval_run(hsart_model *m, const hsac_cli *o) {
  int fillers[8], nf = o->nfillers;
  if (nf) memcpy(fillers, o->fillers, sizeof fillers);
  else fillers[nf++] = TK_FILLER_SYNTHETIC;
  int rc = 0;
  char err[640];
  tk_corpus corpora[TK_NFILLERS];
  memset(corpora, 0, sizeof corpora);
  hsart_session *s = NULL;
  int32_t *tokens = NULL;
  char *out = NULL;
  FILE *csv = NULL;
  row *rows = NULL;
  int nrows = 0;
  baseline base = {NULL, 0};
  char *escaped = NULL; /* --baseline: an answer as the CSV writes it */
  size_t escaped_cap = 0;

  /* every item must fit its length: checked before anything runs */
  long long maxlen = 0, minlen = 0;
  for (int li = 0; li < o->nlengths; li++) {
    if (o->lengths[li] > maxlen) maxlen = o->lengths[li];
    if (!minlen || o->lengths[li] < minlen) minlen = o->lengths[li];
  }
  for (int ti = 0; ti < o->ntasks && !rc; ti++) {
    tk_options to;
    tk_options_init(&to, (tk_task)o->tasks[ti]);
    to.needle = (tk_needle)o->needle;
    to.phrasing = (tk_phrasing)o->phrasing;
    if (o->count && o->tasks[ti] != TK_PASSKEY) to.count = o->count;
    for (long long k = 0; k < o->n_items; k++) {
      size_t least;
      tk_status ts = tk_min_length(&to, (uint64_t)(o->seed + k), &least, err, sizeof err);
      if (ts == TK_ENOMEM) {
        fputs("hsac: error: out of memory\n", stderr);
        return EXIT_NOMEM;
      }
      if (ts != TK_OK) {
        fprintf(stderr, "hsac: error: eval: %s\n", err);
        return EXIT_USAGE;
      }
      if ((long long)least > minlen) {
        fprintf(stderr,
                "hsac: error: eval: length %lld is too short for %s (seed %lld needs at "
                "least %zu bytes)\n",
                minlen, tk_task_name((tk_task)o->tasks[ti]), o->seed + k, least);
        return EXIT_USAGE;
      }
    }
  }
  if (o->baseline) {
    bool nomem;
    if (!baseline_load(o->baseline, &base, err, sizeof err, &nomem)) {
      fprintf(stderr, "hsac: error: eval: --baseline: %s\n", err);
      rc = nomem ? EXIT_NOMEM : EXIT_INPUT;
      goto done;
    }
  }
  for (int fi = 0; fi < nf; fi++) {
    if (!tk_filler_is_prose((tk_filler)fillers[fi])) continue;
    const tk_corpus_source *src = tk_corpus_source_named(tk_filler_name((tk_filler)fillers[fi]));
    if (!tk_corpus_load(src, o->corpus_dir, &corpora[fillers[fi]], err, sizeof err)) {
      fprintf(stderr, "hsac: error: %s\n", err);
      rc = EXIT_INPUT;
      goto done;
    }
  }
  if (o->csv) {
    csv = fopen(o->csv, "w");
    if (!csv) {
      fprintf(stderr, "hsac: error: cannot write '%s': %s\n", o->csv, strerror(errno));
      rc = EXIT_INPUT;
      goto done;
    }
    fprintf(csv, "%s\n", CSV_HEADER);
  }
  hsart_session_options so = {.segment = o->segment, .cache = (hsart_cache_type)o->cache,
                              .check_numerics = o->check_numerics};
  hsart_error e;
  hsart_status st = hsart_session_create(m, &so, &s, &e);
  if (st != HSART_OK) {
    fprintf(stderr, "hsac: error: %s\n", e.message);
    rc = session_exit(st);
    goto done;
  }
  size_t outcap = 4096;
  tokens = malloc((size_t)maxlen * sizeof *tokens);
  out = malloc(outcap);
  int nd = o->ndepths ? o->ndepths : 1;
  rows = calloc((size_t)o->ntasks * (size_t)nf * (size_t)o->nlengths * (size_t)nd, sizeof *rows);
  if (!tokens || !out || !rows) {
    fprintf(stderr, "hsac: error: out of memory for prompts of %lld tokens\n", maxlen);
    rc = EXIT_NOMEM;
    goto done;
  }
  bool tty = isatty(2) && !o->quiet;
  if (!o->quiet)
    fprintf(stderr, "hsac: eval %s on %d tasks x %d fillers x %d lengths%s, %lld items each "
            "(seeds %lld..%lld), phrasing %s\n", o->file, o->ntasks, nf, o->nlengths,
            o->ndepths ? " x depths" : "", o->n_items, o->seed, o->seed + o->n_items - 1,
            tk_phrasing_name((tk_phrasing)o->phrasing));
  print_table_head(o->ndepths > 0);
  for (int ti = 0; ti < o->ntasks; ti++) {
    for (int fi = 0; fi < nf; fi++) {
      /* each length, and at each length each depth */
      for (int ld = 0; ld < o->nlengths * nd; ld++) {
        row *r = &rows[nrows++];
        r->task = o->tasks[ti];
        r->filler = fillers[fi];
        r->length = o->lengths[ld / nd];
        r->depth = o->ndepths ? o->depths[ld % nd] : -1;
        tk_options to;
        tk_options_init(&to, (tk_task)r->task);
        to.needle = (tk_needle)o->needle;
        to.phrasing = (tk_phrasing)o->phrasing;
        to.filler = (tk_filler)r->filler;
        to.corpus = tk_filler_is_prose(to.filler) ? &corpora[r->filler] : NULL;
        if (o->count && r->task != TK_PASSKEY) to.count = o->count;
        to.has_depth = r->depth >= 0;
        to.depth = to.has_depth ? r->depth : 0;
        char where[64];
        format_where(r->length, r->depth, where, sizeof where);
        int shown_step = 0;
        for (long long k = 0; k < o->n_items; k++) {
          tk_item it;
          uint64_t seed = (uint64_t)(o->seed + k);
          tk_status ts = tk_generate(&to, (size_t)r->length, seed, &it, err, sizeof err);
          if (ts != TK_OK) {
            fprintf(stderr, "%shsac: error: eval: %s\n", tty ? "\n" : "", err);
            rc = ts == TK_ENOMEM ? EXIT_NOMEM : EXIT_INPUT;
            goto done;
          }
          size_t cap = strlen(it.answer) + EXTRA_OUTPUT, outn = 0;
          if (cap > outcap) cap = outcap;
          double ps = 0;
          st = answer_item(s, &it, tokens, out, cap, &outn, &ps);
          if (st != HSART_OK) {
            fprintf(stderr, "%shsac: error: eval: %s at %s, seed %llu: %s\n", tty ? "\n" : "",
                    tk_task_name((tk_task)r->task), where, (unsigned long long)seed,
                    hsart_session_error(s));
            tk_item_free(&it);
            rc = session_exit(st);
            goto done;
          }
          hsac_eval_score sc =
              hsac_eval_score_output(out, outn, it.answer, it.answers, it.n_answers);
          tally_add(&r->all, sc.score, sc.exact, (double)it.prompt_len, ps);
          if (it.kind != TK_KIND_NONE)
            tally_add(&r->kind[it.kind], sc.score, sc.exact, (double)it.prompt_len, ps);
          const base_item *bi =
              o->baseline ? baseline_find(&base, tk_task_name(to.task), tk_filler_name(to.filler),
                                          tk_phrasing_name(to.phrasing),
                                          r->task == TK_BABI ? "" : tk_needle_name(to.needle),
                                          r->length, seed, r->depth)
                          : NULL;
          if (bi) {
            size_t al = strlen(it.answer);
            if (4 * al + 1 > escaped_cap) {
              char *ne = realloc(escaped, 4 * al + 1);
              if (!ne) {
                fprintf(stderr, "%shsac: error: out of memory\n", tty ? "\n" : "");
                tk_item_free(&it);
                rc = EXIT_NOMEM;
                goto done;
              }
              escaped = ne;
              escaped_cap = 4 * al + 1;
            }
            csv_escape(it.answer, al, escaped);
            if (strcmp(escaped, bi->answer)) {
              fprintf(stderr, "%shsac: error: eval: --baseline %s:%ld: %s at %s, seed %llu "
                      "answers '%s' there and '%s' here: not the same items (another "
                      "hsac's gen-task?)\n", tty ? "\n" : "", o->baseline, bi->line,
                      tk_task_name(to.task), where, (unsigned long long)seed, bi->answer,
                      escaped);
              tk_item_free(&it);
              rc = EXIT_INPUT;
              goto done;
            }
            r->cmp_items++;
            r->cmp_score += sc.score;
            r->cmp_base += bi->score;
            r->better += sc.score > bi->score;
            r->worse += sc.score < bi->score;
          }
          if (csv) {
            fprintf(csv, "%s,%s,%s,%s,%lld,%llu,%.4f,%d,", tk_task_name(to.task),
                    tk_filler_name(to.filler), tk_phrasing_name(to.phrasing),
                    r->task == TK_BABI ? "" : tk_needle_name(to.needle), r->length,
                    (unsigned long long)seed, sc.score, (int)sc.exact);
            csv_field(csv, it.answer, strlen(it.answer));
            fputc(',', csv);
            csv_field(csv, out, outn);
            fprintf(csv, ",%.4f,", ps);
            if (r->depth >= 0) fprintf(csv, "%g", r->depth);
            fputc(',', csv);
            /* where the asked needle starts, as a share of the prompt */
            if ((r->task == TK_PASSKEY || r->task == TK_MULTIKEY) && it.n_support > 0)
              fprintf(csv, "%.4f", (double)it.needle_offsets[it.support[0]] /
                                       (double)it.prompt_len);
            fprintf(csv, ",%s,%d\n", tk_kind_name(it.kind), it.variant);
          }
          if (o->verbose) {
            fprintf(stderr, "%shsac: %s %s %s seed %llu: answer '%s', output '", tty ? "\r" : "",
                    tk_task_name(to.task), tk_filler_name(to.filler), where,
                    (unsigned long long)seed, it.answer);
            for (size_t i = 0; i < outn; i++) {
              unsigned char c = (unsigned char)out[i];
              if (c < 32 || c > 126) fprintf(stderr, "\\x%02x", c);
              else fputc(c, stderr);
            }
            fprintf(stderr, "': %.2f\n", sc.score);
          }
          tk_item_free(&it);
          double pct = 100.0 * r->all.score_sum / (double)r->all.items;
          if (tty) {
            fprintf(stderr, "\r%s %s %s: %lld/%lld items, %.1f%%   ", tk_task_name(to.task),
                    tk_filler_name(to.filler), where, k + 1, o->n_items, pct);
            fflush(stderr);
          } else if (!o->quiet && o->n_items >= 10 && r->length >= 8192) {
            int step = (int)(10 * (k + 1) / o->n_items);
            if (step > shown_step && k + 1 < o->n_items) {
              shown_step = step;
              fprintf(stderr, "hsac: eval %s %s %s: %lld/%lld items, %.1f%%\n",
                      tk_task_name(to.task), tk_filler_name(to.filler), where, k + 1,
                      o->n_items, pct);
            }
          }
        }
        if (tty) fputs("\r\033[K", stderr);
        print_row(r);
        if (csv) fflush(csv);
      }
    }
  }
  if (o->baseline) {
    print_comparison(o->baseline, rows, nrows, o->ndepths > 0);
    long long found = 0;
    for (int i = 0; i < nrows; i++) found += rows[i].cmp_items;
    if (!found)
      fprintf(stderr, "hsac: warning: eval: no item of this run is in %s (other tasks, "
              "fillers, phrasing, needle, lengths, depths or seeds)\n", o->baseline);
  }
  if (csv) {
    bool bad = ferror(csv) != 0;
    bad |= fclose(csv) != 0;
    csv = NULL;
    if (bad) {
      fprintf(stderr, "hsac: error: cannot write '%s': %s\n", o->csv, strerror(errno));
      rc = EXIT_INPUT;
      goto done;
    }
  }
  if (o->json_out && !write_json(o->json_out, o, rows, nrows, err, sizeof err)) {
    fprintf(stderr, "hsac: error: %s\n", err);
    rc = EXIT_INPUT;
    goto done;
  }
  if (o->has_min_score) {
    for (int i = 0; i < nrows; i++) {
      const tally *t = &rows[i].all;
      double pct = 100.0 * t->score_sum / (double)(t->items ? t->items : 1);
      if (pct < o->min_score) {
        char where[64];
        format_where(rows[i].length, rows[i].depth, where, sizeof where);
        fprintf(stderr, "hsac: error: eval: %s on %s at %s scored %.1f%%, below --min-score "
                "%.1f%%\n", tk_task_name((tk_task)rows[i].task),
                tk_filler_name((tk_filler)rows[i].filler), where, pct, o->min_score);
        rc = EXIT_INPUT;
      }
    }
  }
done:
  if (csv) fclose(csv);
  baseline_free(&base);
  free(escaped);
  for (int i = 0; i < TK_NFILLERS; i++) tk_corpus_free(&corpora[i]);
  free(rows);
  free(out);
  free(tokens);
  hsart_session_free(s);
  return rc;
}
