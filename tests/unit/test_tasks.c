/* test_tasks.c - the synthetic task generator (cli/tasks.c, docs/tasks.md):
 * items are deterministic (pinned hashes: the same bytes on every machine),
 * exactly as long as asked, printable ASCII and newlines without empty
 * lines, and answerable: every needle is where the item says, the answers
 * occur in the context only where they were put, and a variable chain leads
 * from the asked value to the last answer.  Impossible options and lengths
 * are errors, running out of memory anywhere is an error without leaks, and
 * `hsac gen-task` prints what tk_generate builds. */
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/corpus.h"
#include "cli/eval.h"
#include "cli/tasks.h"
#include "testutil.h"

static const tk_task all_tasks[] = {TK_PASSKEY, TK_MULTIKEY, TK_MULTIVALUE, TK_MULTIQUERY,
                                    TK_VARTRACK};
static const tk_needle all_needles[] = {TK_NUMBER, TK_WORD, TK_UUID, TK_CODE};

static tk_options opts(tk_task t, tk_needle n) {
  tk_options o;
  tk_options_init(&o, t);
  o.needle = n;
  return o;
}

static size_t min_len(const tk_options *o, uint64_t seed) {
  size_t m = 0;
  CU_ASSERT_EQUAL(tk_min_length(o, seed, &m, NULL, 0), TK_OK);
  return m;
}

static int count_of(const char *hay, size_t hay_len, const char *needle) {
  int n = 0;
  size_t k = strlen(needle);
  for (size_t i = 0; k && i + k <= hay_len; i++) n += !memcmp(hay + i, needle, k);
  return n;
}

/* The offset of needle in hay, or -1. */
static long find(const char *hay, const char *needle) {
  const char *p = strstr(hay, needle);
  return p ? (long)(p - hay) : -1;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return h;
}

/* Where the question starts: the last newline of the prompt. */
static const char *question_of(const tk_item *it) { return strrchr(it->prompt, '\n'); }

/* Where a question's answer lead starts: after its last "? " or ". " */
static size_t lead_start(const char *q) {
  size_t at = 0;
  for (size_t i = 1; q[i]; i++)
    if (q[i] == ' ' && (q[i - 1] == '?' || q[i - 1] == '.')) at = i + 1;
  return at;
}

/* ---- shape: length, bytes, ending ------------------------------------------ */

static bool well_formed(const tk_options *o, const tk_item *it, size_t length) {
  bool ok = it->prompt && it->answer && it->prompt_len == length &&
            strlen(it->prompt) == length && it->n_answers >= 1;
  for (size_t i = 0; ok && i < length; i++) {
    unsigned char c = (unsigned char)it->prompt[i];
    ok = (c >= 32 && c <= 126) || c == '\n';
    if (ok && c == '\n' && i > 0) ok = it->prompt[i - 1] != '\n' && it->prompt[i - 1] != ' ';
  }
  if (!ok) return false;
  /* the prompt ends where the answer begins */
  const char *end = o->task == TK_PASSKEY ? "The passkey is "
                    : o->task == TK_MULTIKEY ? " is: "
                                             : " are: ";
  size_t k = strlen(end);
  ok = length >= k && !memcmp(it->prompt + length - k, end, k);
  /* the answer is the answers joined by ", " */
  size_t n = 0;
  for (int i = 0; i < it->n_answers; i++) n += strlen(it->answers[i]) + (i ? 2 : 0);
  ok = ok && strlen(it->answer) == n;
  for (int i = 0, at = 0; ok && i < it->n_answers; i++) {
    if (i) ok = !strncmp(it->answer + at, ", ", 2), at += 2;
    ok = ok && !strncmp(it->answer + at, it->answers[i], strlen(it->answers[i]));
    at += (int)strlen(it->answers[i]);
  }
  for (int i = 0; ok && i < it->n_answers; i++)
    for (const char *p = it->answers[i]; ok && *p; p++) ok = *p > 32 && *p < 127 && *p != ',';
  for (int i = 1; ok && i < it->n_needles; i++)
    ok = it->needle_offsets[i] > it->needle_offsets[i - 1];
  return ok;
}

/* A needle value has the form of its kind. */
static bool value_form(tk_needle kind, const char *v) {
  size_t n = strlen(v);
  if (kind == TK_NUMBER) {
    if (n != 7 || v[0] == '0') return false;
    for (size_t i = 0; i < n; i++)
      if (v[i] < '0' || v[i] > '9') return false;
    return true;
  }
  if (kind == TK_CODE) {
    if (n != 8) return false;
    for (size_t i = 0; i < n; i++)
      if (v[i] < 'a' || v[i] > 'z') return false;
    return true;
  }
  if (kind == TK_WORD) {
    if (n < 4) return false;
    for (size_t i = 0; i < n; i++)
      if (v[i] < 'a' || v[i] > 'z') return false;
    return true;
  }
  if (n != 36 || v[14] != '4' || !strchr("89ab", v[19])) return false;
  for (size_t i = 0; i < n; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? v[i] != '-' : !strchr("0123456789abcdef", v[i])) return false;
  }
  return true;
}

/* ---- answerable: the needles say what the answer says ------------------------- */

static char *sdup_range(const char *s, size_t n) {
  char *p = malloc(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

static bool answerable(const tk_options *o, const tk_item *it) {
  const char *p = it->prompt, *q = question_of(it);
  size_t ctx = (size_t)(q - p); /* the context: everything before the question */
  const char *noun = tk_needle_name(o->needle);
  char buf[512];
  bool ok = q != NULL;
  for (int i = 0; ok && i < it->n_answers; i++) ok = value_form(o->needle, it->answers[i]) ||
                                                      o->task == TK_VARTRACK;
  if (!ok) return false;
  switch (o->task) {
  case TK_PASSKEY: {
    const char *v = it->answers[0];
    snprintf(buf, sizeof buf, "The passkey is %s. Remember it. %s is the passkey.", v, v);
    ok = it->n_needles == 1 && count_of(p, ctx, buf) == 1 && count_of(p, ctx, v) == 2 &&
         !strncmp(p + it->needle_offsets[0], buf, strlen(buf));
    break;
  }
  case TK_MULTIKEY: {
    /* "\nWhat is the special magic N for KEY? ..." */
    snprintf(buf, sizeof buf, "\nWhat is the special magic %s for ", noun);
    ok = !strncmp(q, buf, strlen(buf));
    if (!ok) break;
    const char *k = q + strlen(buf), *e = strchr(k, '?');
    char *key = sdup_range(k, (size_t)(e - k));
    snprintf(buf, sizeof buf, "The special magic %s for %s is: %s.", noun, key,
             it->answers[0]);
    ok = it->n_answers == 1 && count_of(p, ctx, buf) == 1 &&
         count_of(p, ctx, it->answers[0]) == 1 && count_of(p, ctx, key) == 1;
    /* every needle is a "The special magic" sentence with its own key */
    for (int i = 0; ok && i < it->n_needles; i++)
      ok = !strncmp(p + it->needle_offsets[i], "The special magic ", 18);
    snprintf(buf, sizeof buf, "The special magic %s for ", noun);
    ok = ok && count_of(p, ctx, buf) == it->n_needles;
    free(key);
    break;
  }
  case TK_MULTIVALUE: {
    snprintf(buf, sizeof buf, "\nWhat are all the special magic %ss for ", noun);
    ok = !strncmp(q, buf, strlen(buf)) && it->n_needles == it->n_answers;
    if (!ok) break;
    const char *k = q + strlen(buf), *e = strchr(k, '?');
    char *key = sdup_range(k, (size_t)(e - k));
    ok = count_of(p, ctx, key) == it->n_answers;
    /* the values in order of appearance, each in its needle */
    for (int i = 0; ok && i < it->n_answers; i++) {
      snprintf(buf, sizeof buf, "One of the special magic %ss for %s is: %s.", noun, key,
               it->answers[i]);
      ok = count_of(p, ctx, it->answers[i]) == 1 &&
           !strncmp(p + it->needle_offsets[i], buf, strlen(buf));
    }
    free(key);
    break;
  }
  case TK_MULTIQUERY: {
    /* "... for K1, K2 and K3? The special magic Ns for K1, K2 and K3 are: " */
    snprintf(buf, sizeof buf, "\nWhat are the special magic %ss for ", noun);
    ok = !strncmp(q, buf, strlen(buf)) && it->n_needles == it->n_answers;
    const char *k = q + strlen(buf);
    bool ended = false;
    for (int i = 0; ok && i < it->n_answers; i++) {
      size_t n = strcspn(k, ",? ");
      char *key = sdup_range(k, n);
      snprintf(buf, sizeof buf, "The special magic %s for %s is: %s.", noun, key,
               it->answers[i]);
      ok = count_of(p, ctx, buf) == 1 && count_of(p, ctx, it->answers[i]) == 1 &&
           count_of(p, ctx, key) == 1;
      free(key);
      k += n;
      if (i + 2 < it->n_answers) ok = ok && !strncmp(k, ", ", 2), k += 2;
      else if (i + 2 == it->n_answers) ok = ok && !strncmp(k, " and ", 5), k += 5;
      else ok = ok && *k == '?', ended = true;
    }
    ok = ok && ended;
    break;
  }
  case TK_VARTRACK: {
    /* the value, from the question */
    const char *lead = "\nFind all variables that are assigned the value ";
    ok = !strncmp(q, lead, strlen(lead));
    if (!ok) break;
    const char *v0 = q + strlen(lead);
    char *value = sdup_range(v0, (size_t)(strstr(v0, " in the text above") - v0));
    ok = value_form(o->needle, value) && count_of(p, ctx, value) == 1;
    /* VAR A0 = value. then VAR A(i) = VAR A(i-1). in order; nothing copies the last */
    long prev = -1;
    for (int i = 0; ok && i < it->n_answers; i++) {
      const char *a = it->answers[i];
      ok = strlen(a) == 5 && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5;
      if (i == 0) snprintf(buf, sizeof buf, "VAR %s = %s.", a, value);
      else snprintf(buf, sizeof buf, "VAR %s = VAR %s.", a, it->answers[i - 1]);
      long at = find(p, buf);
      ok = ok && at > prev && (size_t)at < ctx && count_of(p, ctx, buf) == 1;
      snprintf(buf, sizeof buf, "VAR %s = ", a);
      ok = ok && count_of(p, ctx, buf) == 1; /* assigned once */
      prev = at;
    }
    snprintf(buf, sizeof buf, "= VAR %s.", it->answers[it->n_answers - 1]);
    ok = ok && count_of(p, ctx, buf) == 0;
    /* every statement is a needle */
    int statements = 0;
    for (int i = 0; ok && i < it->n_needles; i++)
      ok = !strncmp(p + it->needle_offsets[i], "VAR ", 4);
    for (size_t i = 0; i + 4 <= ctx; i++) /* "VAR " not after "= " */
      statements += !memcmp(p + i, "VAR ", 4) && !(i >= 2 && !memcmp(p + i - 2, "= ", 2));
    ok = ok && statements == it->n_needles;
    free(value);
    break;
  }
  default:
    ok = false;
  }
  return ok;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_word_lists(void) {
  char err[256] = "";
  CU_ASSERT_EQUAL(tk_self_check(err, sizeof err), 0);
  if (*err) fprintf(stderr, "\n%s\n", err);
}

static void test_names(void) {
  for (int t = 0; t < TK_NTASKS; t++) CU_ASSERT_EQUAL(tk_task_parse(tk_task_name(t)), t);
  for (int n = 0; n < TK_NNEEDLES; n++) CU_ASSERT_EQUAL(tk_needle_parse(tk_needle_name(n)), n);
  CU_ASSERT_EQUAL(tk_task_parse("niah"), -1);
  CU_ASSERT_EQUAL(tk_needle_parse("Number"), -1);
  CU_ASSERT_EQUAL(tk_task_parse(NULL), -1);
}

/* Every task and needle kind, many seeds, lengths from the least up and a
 * few large: the exact length, printable, answerable. */
static void test_every_task_and_needle(void) {
  int bad = 0, items = 0;
  for (size_t t = 0; t < sizeof all_tasks / sizeof *all_tasks; t++)
    for (size_t k = 0; k < sizeof all_needles / sizeof *all_needles; k++) {
      tk_options o = opts(all_tasks[t], all_needles[k]);
      for (uint64_t seed = 0; seed < 12; seed++) {
        size_t least = min_len(&o, seed);
        size_t lengths[] = {least, least + 1, least + 2, least + 3, least + 7, least + 50,
                            least + 333, 4096, 20000};
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
          if (lengths[l] < least) continue;
          tk_item it;
          char err[256];
          tk_status st = tk_generate(&o, lengths[l], seed, &it, err, sizeof err);
          items++;
          bool ok = st == TK_OK && well_formed(&o, &it, lengths[l]) && answerable(&o, &it);
          if (!ok && bad++ < 5)
            fprintf(stderr, "\n%s/%s seed %llu length %zu: %s\n", tk_task_name(o.task),
                    tk_needle_name(o.needle), (unsigned long long)seed, lengths[l],
                    st == TK_OK ? it.prompt : err);
          tk_item_free(&it);
        }
      }
    }
  CU_ASSERT(items > 1000);
  CU_ASSERT_EQUAL(bad, 0);
}

/* Every length from the least to the least + 300, one task with many needles. */
static void test_every_length(void) {
  tk_options o = opts(TK_VARTRACK, TK_WORD);
  o.count = 3;
  o.chains = 3;
  size_t least = min_len(&o, 5);
  int bad = 0;
  for (size_t n = least; n < least + 300; n++) {
    tk_item it;
    bool ok = tk_generate(&o, n, 5, &it, NULL, 0) == TK_OK && well_formed(&o, &it, n) &&
              answerable(&o, &it);
    bad += !ok;
    tk_item_free(&it);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_deterministic(void) {
  for (size_t t = 0; t < sizeof all_tasks / sizeof *all_tasks; t++)
    for (size_t k = 0; k < sizeof all_needles / sizeof *all_needles; k++) {
      tk_options o = opts(all_tasks[t], all_needles[k]);
      tk_item a, b, c;
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 3000, 42, &a, NULL, 0), TK_OK);
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 3000, 42, &b, NULL, 0), TK_OK);
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 3000, 43, &c, NULL, 0), TK_OK);
      CU_ASSERT_EQUAL(a.prompt_len, b.prompt_len);
      CU_ASSERT(!memcmp(a.prompt, b.prompt, a.prompt_len));
      CU_ASSERT_STRING_EQUAL(a.answer, b.answer);
      CU_ASSERT(memcmp(a.prompt, c.prompt, a.prompt_len) != 0);
      CU_ASSERT(strcmp(a.answer, c.answer) != 0);
      tk_item_free(&a);
      tk_item_free(&b);
      tk_item_free(&c);
    }
}

/* The bytes themselves are pinned: an evaluation set generated anywhere, at
 * any time, is the same.  Changing the generator changes these hashes: it
 * is a new version of every data set (docs/tasks.md). */
static void test_pinned(void) {
  static const struct {
    tk_task task;
    tk_needle needle;
    size_t length;
    uint64_t seed;
    const char *answer;
    uint64_t hash;
  } pins[] = {
      {TK_PASSKEY, TK_NUMBER, 600, 1, "8153743", 0x09c7b8fba7a9b9dbULL},
      {TK_MULTIKEY, TK_WORD, 1000, 2, "armadillo", 0x4c88ce3b7abf00cfULL},
      {TK_MULTIVALUE, TK_UUID, 1500, 3,
       "af0f1569-6f20-4ccc-b149-5a57adbe3d49, 148de4c7-1b54-430e-b93b-eb620cddf4bf, "
       "ed0a2aa4-dc9f-4bd2-a08a-ff0c216be484, c2bcb239-6a3e-4886-874d-1faf2710bd7c",
       0xaba53dc2500f3c62ULL},
      {TK_MULTIQUERY, TK_NUMBER, 2000, 4, "9334041, 5198140, 6559065, 7281286",
       0x81acf14f0c2c277fULL},
      {TK_VARTRACK, TK_WORD, 3000, 5, "XPLUR, GIOJE, UYNFR, SYFPS, QFIVL", 0xaa3cb3a1654b8cadULL},
      {TK_PASSKEY, TK_UUID, 100000, 123, "3f9217a9-6404-4f8a-8c37-1f5911dd5db7",
       0x41ed077c1627c4dcULL},
  };
  for (size_t i = 0; i < sizeof pins / sizeof *pins; i++) {
    tk_options o = opts(pins[i].task, pins[i].needle);
    tk_item it;
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, pins[i].length, pins[i].seed, &it, NULL, 0), TK_OK);
    CU_ASSERT_STRING_EQUAL(it.answer, pins[i].answer);
    CU_ASSERT_EQUAL(fnv1a(it.prompt, it.prompt_len), pins[i].hash);
    if (getenv("TU_SHOW_PINS"))
      printf("\n{%s, %s, %zu, %llu, \"%s\", 0x%016llxULL},", tk_task_name(o.task),
             tk_needle_name(o.needle), pins[i].length, (unsigned long long)pins[i].seed,
             it.answer, (unsigned long long)fnv1a(it.prompt, it.prompt_len));
    tk_item_free(&it);
  }
}

/* One seed asks the same question at every length. */
static void test_length_keeps_the_question(void) {
  for (size_t t = 0; t < sizeof all_tasks / sizeof *all_tasks; t++) {
    tk_options o = opts(all_tasks[t], TK_UUID);
    tk_item a, b;
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 1000, 9, &a, NULL, 0), TK_OK);
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 100000, 9, &b, NULL, 0), TK_OK);
    CU_ASSERT_STRING_EQUAL(a.answer, b.answer);
    CU_ASSERT_STRING_EQUAL(question_of(&a), question_of(&b));
    tk_item_free(&a);
    tk_item_free(&b);
  }
}

static void test_depth(void) {
  /* depth 0: the needle is the first sentence; depth 1: the last */
  tk_options o = opts(TK_PASSKEY, TK_NUMBER);
  tk_item it;
  o.has_depth = true;
  o.depth = 0;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 5000, 3, &it, NULL, 0), TK_OK);
  CU_ASSERT_EQUAL(it.needle_offsets[0], (size_t)(strchr(it.prompt, '\n') - it.prompt) + 1);
  tk_item_free(&it);
  o.depth = 1;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 5000, 3, &it, NULL, 0), TK_OK);
  const char *end = strstr(it.prompt + it.needle_offsets[0], " is the passkey.");
  CU_ASSERT_PTR_EQUAL(end + strlen(" is the passkey."), question_of(&it));
  tk_item_free(&it);
  /* a depth in between lies in between, for passkey and multikey's asked needle */
  for (int task = 0; task < 2; task++) {
    o = opts(task ? TK_MULTIKEY : TK_PASSKEY, TK_WORD);
    for (int d = 1; d < 10; d += 2) {
      o.has_depth = true;
      o.depth = d / 10.0;
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 50000, 11, &it, NULL, 0), TK_OK);
      long at = find(it.prompt, it.answer);
      double rel = (double)at / 50000.0;
      CU_ASSERT(rel > o.depth - 0.03 && rel < o.depth + 0.03);
      tk_item_free(&it);
    }
  }
  /* by the seed, depths cover the context */
  int bins[5] = {0};
  o = opts(TK_PASSKEY, TK_NUMBER);
  for (uint64_t seed = 0; seed < 200; seed++) {
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 3000, seed, &it, NULL, 0), TK_OK);
    int b = (int)(5.0 * (double)it.needle_offsets[0] / 3000.0);
    bins[b < 5 ? b : 4]++;
    tk_item_free(&it);
  }
  for (int b = 0; b < 5; b++) CU_ASSERT(bins[b] >= 15);
  /* multi-needle tasks spread their needles: one per stratum */
  o = opts(TK_MULTIVALUE, TK_NUMBER);
  o.count = 8;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 80000, 1, &it, NULL, 0), TK_OK);
  for (int i = 0; i < it.n_needles; i++) {
    double rel = (double)it.needle_offsets[i] / 80000.0;
    CU_ASSERT(rel > i / 8.0 - 0.01 && rel < (i + 1) / 8.0 + 0.01);
  }
  tk_item_free(&it);
}

/* Counts and chains at their limits: distinct keys, values and names. */
static void test_counts(void) {
  struct {
    tk_task task;
    tk_needle needle;
    int count, chains;
  } cases[] = {
      {TK_MULTIKEY, TK_WORD, 1, 0},        {TK_MULTIKEY, TK_WORD, TK_MAX_COUNT, 0},
      {TK_MULTIVALUE, TK_WORD, 1, 0},      {TK_MULTIVALUE, TK_WORD, TK_MAX_COUNT, 0},
      {TK_MULTIQUERY, TK_NUMBER, 1, 0},    {TK_MULTIQUERY, TK_NUMBER, 2, 0},
      {TK_MULTIQUERY, TK_UUID, TK_MAX_COUNT, 0},
      {TK_VARTRACK, TK_NUMBER, 1, 1},      {TK_VARTRACK, TK_WORD, 1, TK_MAX_CHAINS},
      {TK_VARTRACK, TK_UUID, TK_MAX_COUNT, TK_MAX_CHAINS},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tk_options o = opts(cases[i].task, cases[i].needle);
    o.count = cases[i].count;
    o.chains = cases[i].chains;
    size_t least = min_len(&o, 4);
    tk_item it;
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, least + 5000, 4, &it, NULL, 0), TK_OK);
    CU_ASSERT(well_formed(&o, &it, least + 5000));
    CU_ASSERT(answerable(&o, &it));
    CU_ASSERT_EQUAL(it.n_answers, o.task == TK_MULTIKEY ? 1 : o.count);
    CU_ASSERT_EQUAL(it.n_needles, o.task == TK_VARTRACK ? o.count * o.chains : o.count);
    for (int a = 0; a < it.n_answers; a++)
      for (int b = 0; b < a; b++) CU_ASSERT(strcmp(it.answers[a], it.answers[b]) != 0);
    tk_item_free(&it);
  }
  /* defaults: 4 needles; vartrack 2 chains of 5 */
  tk_options o = opts(TK_MULTIQUERY, TK_NUMBER);
  tk_item it;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2000, 0, &it, NULL, 0), TK_OK);
  CU_ASSERT_EQUAL(it.n_answers, 4);
  tk_item_free(&it);
  o = opts(TK_VARTRACK, TK_NUMBER);
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2000, 0, &it, NULL, 0), TK_OK);
  CU_ASSERT_EQUAL(it.n_answers, 5);
  CU_ASSERT_EQUAL(it.n_needles, 10);
  tk_item_free(&it);
}

static void test_errors(void) {
  char err[256];
  tk_item it;
  /* one byte short of the least length */
  for (size_t t = 0; t < sizeof all_tasks / sizeof *all_tasks; t++) {
    tk_options o = opts(all_tasks[t], TK_UUID);
    size_t least = min_len(&o, 2);
    CU_ASSERT_EQUAL(tk_generate(&o, least - 1, 2, &it, err, sizeof err), TK_ETOOSHORT);
    char want[64];
    snprintf(want, sizeof want, "at least %zu bytes", least);
    CU_ASSERT(tu_contains(err, want));
    CU_ASSERT_PTR_NULL(it.prompt);
    tk_item_free(&it);
    CU_ASSERT_EQUAL(tk_generate(&o, 0, 2, &it, NULL, 0), TK_ETOOSHORT);
    CU_ASSERT_EQUAL(tk_generate(&o, least, 2, &it, NULL, 0), TK_OK);
    tk_item_free(&it);
  }
  /* options out of range */
  struct {
    tk_task task;
    int count, chains;
    bool has_depth;
    double depth;
    const char *msg;
  } bad[] = {
      {TK_PASSKEY, 2, 0, false, 0, "exactly one needle"},
      {TK_MULTIKEY, TK_MAX_COUNT + 1, 0, false, 0, "count must be"},
      {TK_MULTIVALUE, -3, 0, false, 0, "count must be"},
      {TK_MULTIQUERY, 0, 2, false, 0, "chains applies to vartrack only"},
      {TK_VARTRACK, 0, TK_MAX_CHAINS + 1, false, 0, "chains must be"},
      {TK_VARTRACK, 0, 0, true, 0.5, "depth applies to passkey and multikey only"},
      {TK_MULTIVALUE, 0, 0, true, 0, "depth applies to passkey and multikey only"},
      {TK_PASSKEY, 0, 0, true, 1.5, "depth must be 0..1"},
      {TK_PASSKEY, 0, 0, true, -0.5, "depth must be 0..1"},
      {TK_MULTIKEY, 0, 0, true, NAN, "depth must be 0..1"},
      {(tk_task)TK_NTASKS, 0, 0, false, 0, "unknown task"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tk_options o;
    tk_options_init(&o, bad[i].task);
    o.count = bad[i].count;
    o.chains = bad[i].chains;
    o.has_depth = bad[i].has_depth;
    o.depth = bad[i].depth;
    CU_ASSERT_EQUAL(tk_generate(&o, 10000, 0, &it, err, sizeof err), TK_EINVAL);
    CU_ASSERT(tu_contains(err, bad[i].msg));
    size_t m;
    CU_ASSERT_EQUAL(tk_min_length(&o, 0, &m, NULL, 0), TK_EINVAL);
  }
  /* a zeroed tk_options is tk_options_init's passkey */
  tk_options z, d;
  memset(&z, 0, sizeof z);
  tk_options_init(&d, TK_PASSKEY);
  tk_item a, b;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&z, 999, 5, &a, NULL, 0), TK_OK);
  CU_ASSERT_EQUAL_FATAL(tk_generate(&d, 999, 5, &b, NULL, 0), TK_OK);
  CU_ASSERT_STRING_EQUAL(a.prompt, b.prompt);
  tk_item_free(&a);
  tk_item_free(&b);
  tk_options o = opts(TK_PASSKEY, (tk_needle)7);
  CU_ASSERT_EQUAL(tk_generate(&o, 10000, 0, &it, err, sizeof err), TK_EINVAL);
  CU_ASSERT(tu_contains(err, "unknown needle"));
  o = opts(TK_PASSKEY, TK_NUMBER);
  CU_ASSERT_EQUAL(tk_generate(&o, TK_MAX_LENGTH + 1, 0, &it, err, sizeof err), TK_EINVAL);
  CU_ASSERT_EQUAL(tk_generate(NULL, 1000, 0, &it, NULL, 0), TK_EINVAL);
}

/* Every allocation of a generation can fail: out of memory, nothing leaked
 * (the ASan build checks leaks). */
static void test_out_of_memory(void) {
  tk_options o = opts(TK_VARTRACK, TK_WORD);
  tk_item it;
  long before = tu_alloc_count();
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 3000, 1, &it, NULL, 0), TK_OK);
  long need = tu_alloc_count() - before;
  tk_item_free(&it);
  CU_ASSERT(need > 10);
  int failures = 0, bad = 0;
  for (long n = 0; n < 2 * need; n++) {
    tk_options oo = opts(n < need ? TK_VARTRACK : TK_MULTIQUERY, TK_WORD);
    char err[128] = "";
    tu_alloc_fail_after(n % need);
    tk_status st = tk_generate(&oo, 3000, 1, &it, err, sizeof err);
    tu_alloc_fail_after(-1);
    if (st == TK_OK) {
      tk_item_free(&it);
      continue;
    }
    failures++;
    bad += st != TK_ENOMEM || !tu_contains(err, "out of memory") || it.prompt != NULL;
  }
  CU_ASSERT(failures > 10);
  CU_ASSERT_EQUAL(bad, 0);
}

/* ---- the command ------------------------------------------------------------ */

/* Runs tk_cmd_gen_task with stdout and stderr in files; returns its status
 * and the outputs (malloc'ed). */
static int run_cmd(char **out, char **errs, int argc, char **argv) {
  char po[64], pe[64];
  snprintf(po, sizeof po, "/tmp/hsac-gentask-%d.out", (int)getpid());
  snprintf(pe, sizeof pe, "/tmp/hsac-gentask-%d.err", (int)getpid());
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fo, 1);
  dup2(fe, 2);
  int rc = tk_cmd_gen_task(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  close(fo);
  close(fe);
  char *paths[2] = {po, pe}, **bufs[2] = {out, errs};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(paths[i], "rb");
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    size_t k;
    while (f && (k = fread(b + n, 1, cap - 1 - n, f)) > 0) {
      n += k;
      if (n + 1 == cap) b = realloc(b, cap *= 2);
    }
    b[n] = 0;
    if (f) fclose(f);
    unlink(paths[i]);
    *bufs[i] = b;
  }
  return rc;
}

static void test_command_jsonl(void) {
  char *argv[] = {"--task", "multiquery", "--needle", "word", "--length", "2K", "--seed",
                  "7",      "--items",    "3",        "--format", "jsonl", "--count", "3"};
  char *out, *errs;
  CU_ASSERT_EQUAL_FATAL(run_cmd(&out, &errs, 14, argv), 0);
  CU_ASSERT_STRING_EQUAL(errs, "");
  char *line = out;
  for (int i = 0; i < 3; i++) {
    char *nl = strchr(line, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    *nl = 0;
    cJSON *j = cJSON_Parse(line);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    tk_options o = opts(TK_MULTIQUERY, TK_WORD);
    o.count = 3;
    tk_item it;
    CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2048, 7 + (uint64_t)i, &it, NULL, 0), TK_OK);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "task")->valuestring, "multiquery");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "needle")->valuestring, "word");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "seed")->valuedouble, 7 + i);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "length")->valuedouble, 2048);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "count")->valuedouble, 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "prompt")->valuestring, it.prompt);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "answer")->valuestring, it.answer);
    cJSON *as = cJSON_GetObjectItem(j, "answers");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(as), 3);
    for (int a = 0; a < 3 && a < cJSON_GetArraySize(as); a++)
      CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(as, a)->valuestring, it.answers[a]);
    cJSON *offs = cJSON_GetObjectItem(j, "needle_offsets");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(offs), it.n_needles);
    for (int a = 0; a < it.n_needles && a < cJSON_GetArraySize(offs); a++)
      CU_ASSERT_EQUAL(cJSON_GetArrayItem(offs, a)->valuedouble, (double)it.needle_offsets[a]);
    tk_item_free(&it);
    cJSON_Delete(j);
    line = nl + 1;
  }
  CU_ASSERT_STRING_EQUAL(line, "");
  free(out);
  free(errs);
}

static void test_command_text_and_prompt(void) {
  tk_options o = opts(TK_PASSKEY, TK_UUID);
  o.has_depth = true;
  o.depth = 0.25;
  tk_item it;
  CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 700, 12, &it, NULL, 0), TK_OK);
  char *out, *errs;
  char *a1[] = {"--task", "passkey", "--needle", "uuid", "--length", "700", "--seed", "12",
                "--depth", "0.25", "--format", "prompt"};
  CU_ASSERT_EQUAL(run_cmd(&out, &errs, 12, a1), 0);
  CU_ASSERT_STRING_EQUAL(out, it.prompt);
  free(out);
  free(errs);
  char *a2[] = {"--task", "passkey", "--needle", "uuid", "--length", "700", "--seed", "12",
                "--depth", "0.25", "--items", "2"};
  CU_ASSERT_EQUAL(run_cmd(&out, &errs, 12, a2), 0);
  /* prompt, newline, answer line, empty line, the next item */
  size_t n = it.prompt_len;
  CU_ASSERT(!strncmp(out, it.prompt, n));
  CU_ASSERT(out[n] == '\n' && !strncmp(out + n + 1, it.answer, strlen(it.answer)));
  CU_ASSERT(!strncmp(out + n + 1 + strlen(it.answer), "\n\n", 2));
  CU_ASSERT_EQUAL(count_of(out, strlen(out), "\n\n"), 1);
  free(out);
  free(errs);
  tk_item_free(&it);
}

static void test_command_usage_errors(void) {
  struct {
    int argc;
    char *argv[8];
    const char *msg;
  } cases[] = {
      {2, {"--length", "100"}, "no task"},
      {2, {"--task", "passkey"}, "no length"},
      {4, {"--task", "needle", "--length", "100"}, "--task expects"},
      {4, {"--task", "passkey", "--length", "12x"}, "--length expects"},
      {4, {"--task", "passkey", "--length", "0"}, "--length expects"},
      {4, {"--task", "passkey", "--length", "50"}, "too short"},
      {6, {"--task", "passkey", "--length", "900", "--seed", "-1"}, "--seed expects"},
      {6, {"--task", "passkey", "--length", "900", "--needle", "emoji"}, "--needle expects"},
      {6, {"--task", "passkey", "--length", "900", "--depth", "2"}, "--depth expects"},
      {6, {"--task", "multikey", "--length", "900", "--count", "0"}, "--count expects"},
      {6, {"--task", "passkey", "--length", "900", "--count", "2"}, "exactly one needle"},
      {6, {"--task", "passkey", "--length", "900", "--format", "csv"}, "--format expects"},
      {8, {"--task", "passkey", "--length", "900", "--format", "prompt", "--items", "2"},
       "prints one item"},
      {5, {"--task", "passkey", "--length", "900", "--bogus"}, "unknown option '--bogus' for gen-task"},
      {5, {"--task", "passkey", "--length", "900", "--items"}, "option '--items' expects a value"},
      {5, {"--task", "passkey", "--length", "900", "--itmes"}, "did you mean '--items'?"},
      {6, {"--task", "passkey", "--length", "900", "--bogus", "1"}, "unknown option '--bogus'"},
      {5, {"--task", "passkey", "--length", "900", "extra"}, "options only"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *out, *errs;
    int rc = run_cmd(&out, &errs, cases[i].argc, cases[i].argv);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT(tu_contains(errs, cases[i].msg));
    if (rc != 2 || !tu_contains(errs, cases[i].msg))
      fprintf(stderr, "\ncase %zu: rc %d: %s\n", i, rc, errs);
    free(out);
    free(errs);
  }
  char *out, *errs, *help[] = {"--help"};
  CU_ASSERT_EQUAL(run_cmd(&out, &errs, 1, help), 0);
  CU_ASSERT(tu_contains(out, "usage: hsac gen-task"));
  free(out);
  free(errs);
}


/* ---- babi, phrasings, filler styles ------------------------------------------ */

static const char *const test_places[] = {"kitchen", "bathroom", "bedroom", "office", "cellar",
                                          "attic", "garage", "library", "pantry", "balcony"};

static bool is_place(const char *w) {
  for (size_t i = 0; i < sizeof test_places / sizeof test_places[0]; i++)
    if (!strcmp(w, test_places[i])) return true;
  return false;
}

/* Whether a babi question names a place: only a "before" question does
 * (some of its wordings say "before" without the word). */
static bool names_a_place(const char *q) {
  for (size_t k = 0; k < sizeof test_places / sizeof test_places[0]; k++)
    if (strstr(q, test_places[k])) return true;
  return false;
}

/* Replays a babi story from its needles alone: every needle is "PERSON
 * ... the WORD." where WORD is a place (a move) or an object (a pick-up);
 * the question names a person or "the OBJECT".  Returns the place the
 * story puts the asked one in (malloc'ed), or NULL when a needle does not
 * parse. */
static char *replay_babi(const tk_item *it) {
  char person[16][16], where[16][16], holder_of[16][16], object[16][16];
  char trail[16][64][16]; /* each person's places, in order */
  int ntrail[16] = {0};
  int np = 0, no = 0;
  for (int i = 0; i < it->n_needles; i++) {
    char *f = sdup_range(it->prompt + it->needle_offsets[i], it->needle_lengths[i]);
    /* the fact is the needle's sentence with " the " (--phrasing varied
     * adds whole sentences before and after it) */
    char *s = f, *the = strstr(f, " the ");
    for (char *c = f; the && c < the; c++)
      if (c[0] == '.' && c[1] == ' ') s = c + 2;
    char *sp = strchr(s, ' '), *dot = the ? strchr(the, '.') : NULL;
    if (!sp || !the || !dot || np >= 16 || no >= 16) {
      free(f);
      return NULL;
    }
    *sp = 0;
    char *w = the + 5, *e = w;
    while (*e >= 'a' && *e <= 'z') e++;
    *e = 0;
    if (is_place(w)) {
      int k = 0;
      while (k < np && strcmp(person[k], s)) k++;
      if (k == np) snprintf(person[np++], 16, "%.15s", s);
      snprintf(where[k], 16, "%.15s", w);
      if (ntrail[k] < 64) snprintf(trail[k][ntrail[k]++], 16, "%.15s", w);
    } else {
      snprintf(object[no], 16, "%.15s", w);
      snprintf(holder_of[no++], 16, "%.15s", s);
    }
    free(f);
  }
  const char *q = question_of(it);
  /* "before the PLACE": the person's place before their move there */
  bool before = names_a_place(q);
  for (int k = 0; k < np && before; k++) {
    if (!strstr(q, person[k])) continue;
    for (int i = 1; i < ntrail[k]; i++) {
      char pat[32];
      snprintf(pat, sizeof pat, "the %.15s", trail[k][i]);
      if (strstr(q, pat)) return sdup_range(trail[k][i - 1], strlen(trail[k][i - 1]));
    }
  }
  const char *asked = NULL;
  for (int k = 0; k < no; k++) {
    char pat[48];
    snprintf(pat, sizeof pat, "the %.16s", object[k]);
    if (strstr(q, pat)) asked = holder_of[k];
  }
  for (int k = 0; k < np; k++) {
    if (asked ? !strcmp(person[k], asked) : strstr(q, person[k]) != NULL)
      return sdup_range(where[k], strlen(where[k]));
  }
  return NULL;
}

/* babi: every phrasing and filler, many seeds; the story, replayed from
 * the needles, gives the answer; the answer is a place that occurs in the
 * context only in move sentences; support holds the deciding facts; both
 * kinds of question occur. */
static void test_babi(void) {
  int bad = 0, by_object = 0, by_before = 0, items = 0;
  for (int ph = 0; ph < TK_NPHRASINGS; ph++) {
    for (uint64_t seed = 0; seed < 150; seed++) {
      tk_options o;
      tk_options_init(&o, TK_BABI);
      o.phrasing = (tk_phrasing)ph;
      o.filler = seed % 2 ? TK_FILLER_NOISE : TK_FILLER_SYNTHETIC;
      o.count = 2 + (int)(seed % 9);
      size_t least = min_len(&o, seed);
      tk_item it;
      if (tk_generate(&o, least + seed * 37, seed, &it, NULL, 0) != TK_OK) {
        bad++;
        continue;
      }
      items++;
      char *replayed = replay_babi(&it);
      bool ok = replayed && !strcmp(replayed, it.answer) && is_place(it.answer);
      free(replayed);
      const char *q = question_of(&it);
      by_object += strstr(q, "the ") != NULL && strstr(q, "the ") < q + 30 &&
                   it.n_needles == o.count + 2;
      ok = ok && (it.n_needles == o.count || it.n_needles == o.count + 2);
      bool before = names_a_place(q);
      by_before += before;
      ok = ok && it.n_support == (it.n_needles == o.count && !before ? 1 : 2);
      /* the kind it reports is the question it asks */
      ok = ok && it.kind == (before                         ? TK_KIND_BEFORE
                             : it.n_needles == o.count + 2 ? TK_KIND_OBJECT
                                                           : TK_KIND_NOW);
      /* one support is the asked one's last move: it names the answer */
      int naming = 0;
      for (int k = 0; k < it.n_support; k++) {
        int i = it.support[k];
        char *fact = sdup_range(it.prompt + it.needle_offsets[i], it.needle_lengths[i]);
        naming += tu_contains(fact, it.answer);
        free(fact);
      }
      ok = ok && naming == 1;
      /* a place occurs in the context only inside needles */
      size_t ctx = (size_t)(q - it.prompt);
      int in_needles = 0;
      for (int i = 0; i < it.n_needles; i++) {
        char *s = sdup_range(it.prompt + it.needle_offsets[i], it.needle_lengths[i]);
        in_needles += count_of(s, strlen(s), it.answer);
        free(s);
      }
      ok = ok && count_of(it.prompt, ctx, it.answer) == in_needles && in_needles >= 1;
      if (!ok) {
        bad++;
        if (bad < 3) fprintf(stderr, "\nbabi seed %llu:\n%s\n[%s]\n", (unsigned long long)seed,
                             it.prompt, it.answer);
      }
      tk_item_free(&it);
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(items == TK_NPHRASINGS * 150);
  CU_ASSERT_STRING_EQUAL(tk_kind_name(TK_KIND_OBJECT), "object");
  /* the tasks that ask one kind of question report none */
  for (int t = 0; t < TK_NTASKS; t++) {
    if (t == TK_BABI) continue;
    tk_options o;
    tk_options_init(&o, (tk_task)t);
    tk_item it;
    CU_ASSERT_FATAL(tk_generate(&o, min_len(&o, 3) + 100, 3, &it, NULL, 0) == TK_OK);
    CU_ASSERT_EQUAL(it.kind, TK_KIND_NONE);
    tk_item_free(&it);
  }
  /* every kind of question, about a third each ("before" falls back to
   * "where is" when no move qualifies) */
  CU_ASSERT(by_object > 100 * TK_NPHRASINGS / 3 && by_object < 200 * TK_NPHRASINGS / 3);
  CU_ASSERT(by_before > 80 * TK_NPHRASINGS / 3 && by_before < 200 * TK_NPHRASINGS / 3);
}

/* The phrasings that draw among the training variants (written out
 * here, not cli/tasks.c's training_phrasing, so that the test does not
 * check the generator by its own rule). */
static bool drawn_phrasing(int p) {
  return p == TK_PHRASING_TRAIN || p == TK_PHRASING_VARIED || p == TK_PHRASING_COMPOSED ||
         p == TK_PHRASING_NONCE;
}

/* Phrasings: the default is variant 0 (the pinned bytes); train and
 * heldout keep the seed's values and answer but word them differently:
 * train draws the 22 training variants, heldout the two others, and the
 * question's words differ from the default's; varied draws train's
 * variant and puts a lead-in before the question (most of the time).
 * Under train and varied the needles' variant is drawn apart from the
 * question's (and is a training one too); default and heldout word both
 * alike.  babi's training questions join one variant's question sentence
 * to another's answer lead (lead_variant).  composed and nonce draw
 * train's variants, but about half of their vartrack items have a grammar
 * wording (needle_variant -1; test_composed).  240 seeds, so that each of the 22
 * training variants is drawn. */
static void test_phrasings(void) {
  for (int t = 0; t < TK_NTASKS; t++) {
    int seen[TK_NPHRASINGS][TK_NVARIANTS] = {{0}};
    int bad = 0, led = 0, nled = 0, apart = 0, q_default = 0, l_default = 0, grammar = 0;
    for (uint64_t seed = 0; seed < 240; seed++) {
      tk_item it[TK_NPHRASINGS];
      for (int p = 0; p < TK_NPHRASINGS; p++) {
        tk_options o;
        tk_options_init(&o, (tk_task)t);
        o.phrasing = (tk_phrasing)p;
        CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2500, seed, &it[p], NULL, 0), TK_OK);
        seen[p][it[p].variant]++;
        bool grammatical = p == TK_PHRASING_COMPOSED || p == TK_PHRASING_NONCE;
        bool drawn = drawn_phrasing(p);
        if (t == TK_BABI) {
          bad += it[p].needle_variant != -1;
          bad += drawn ? !tk_training_variant(it[p].lead_variant) : it[p].lead_variant != -1;
          apart += p == TK_PHRASING_TRAIN && it[p].lead_variant != it[p].variant;
        } else if (grammatical && t == TK_VARTRACK && it[p].needle_variant == -1) {
          grammar++; /* a grammar wording (test_composed) */
        } else if (drawn) {
          bad += !tk_training_variant(it[p].needle_variant);
          apart += p == TK_PHRASING_TRAIN && it[p].needle_variant != it[p].variant;
        } else {
          bad += it[p].needle_variant != it[p].variant;
        }
        bad += t != TK_BABI && it[p].lead_variant != -1;
      }
      /* the same answer under every phrasing (babi: the words of the
       * story change, not its facts) */
      for (int p = 1; p < TK_NPHRASINGS; p++) {
        bad += strcmp(it[0].answer, it[p].answer) != 0;
        /* (one way only for babi's training questions, whose leads repeat:
         * variant 0's question joined to variant 1's lead, "X is in the ",
         * is variant 0 whole) */
        bool as_default = it[p].variant == 0 && it[p].lead_variant <= 0;
        bool same = !strcmp(question_of(&it[0]), question_of(&it[p]));
        if (p != TK_PHRASING_VARIED)
          bad += t == TK_BABI && drawn_phrasing(p) ? as_default && !same
                     : as_default != same;
      }
      /* babi under train: the question sentence of one variant, the answer
       * lead of another; where either is variant 0, that part is the
       * default question's */
      const char *dq = question_of(&it[0]), *mq = question_of(&it[TK_PHRASING_TRAIN]);
      if (t == TK_BABI && it[TK_PHRASING_TRAIN].variant == 0) {
        bad += strncmp(mq, dq, lead_start(dq)) != 0;
        q_default++;
      }
      if (t == TK_BABI && it[TK_PHRASING_TRAIN].lead_variant == 0) {
        bad += strcmp(mq + lead_start(mq), dq + lead_start(dq)) != 0;
        l_default++;
      }
      /* varied: train's wording of the question (babi's facts draw their
       * decorations before the question's variant, so not its variant)
       * after a lead-in, now and then none */
      const tk_item *tr = &it[TK_PHRASING_TRAIN], *va = &it[TK_PHRASING_VARIED];
      if (t != TK_BABI) {
        bad += va->variant != tr->variant || va->needle_variant != tr->needle_variant;
        bad += !strstr(question_of(va), question_of(tr) + 1);
        led += strcmp(question_of(va), question_of(tr)) != 0;
        nled += !strcmp(question_of(va), question_of(tr));
      }
      for (int p = 0; p < TK_NPHRASINGS; p++) tk_item_free(&it[p]);
    }
    CU_ASSERT_EQUAL(bad, 0);
    if (t != TK_BABI) CU_ASSERT(led > 30 && nled > 0 && apart > 200);
    if (t == TK_BABI) CU_ASSERT(apart > 120 && q_default > 0 && l_default > 0);
    CU_ASSERT(t == TK_VARTRACK ? grammar > 160 && grammar < 320 : grammar == 0); /* of 2 x 240 */
    for (int v = 0; v < TK_NVARIANTS; v++) {
      CU_ASSERT_EQUAL(seen[TK_PHRASING_DEFAULT][v] > 0, v == 0);
      CU_ASSERT_EQUAL(seen[TK_PHRASING_TRAIN][v] > 0, tk_training_variant(v));
      CU_ASSERT_EQUAL(seen[TK_PHRASING_HELDOUT][v] > 0, !tk_training_variant(v));
      CU_ASSERT_EQUAL(seen[TK_PHRASING_VARIED][v] > 0, tk_training_variant(v));
      CU_ASSERT_EQUAL(seen[TK_PHRASING_COMPOSED][v] > 0, tk_training_variant(v));
      CU_ASSERT_EQUAL(seen[TK_PHRASING_NONCE][v] > 0, tk_training_variant(v));
    }
  }
}

/* --phrasing composed: every task's item is train's, byte for byte, but
 * for vartrack items with a grammar wording (needle_variant -1), which keep
 * train's names, values, depths and question and word the assignments
 * otherwise: each needle names its variable and what it copies (the asked
 * chain's first the value, the later ones the name before), and none holds
 * a word of the held-out wordings.  The grammar's wordings are many.
 * --phrasing nonce likewise, its grammar also with made-up verbs that say
 * "to" in both orders, where composed's verbs each say it in one. */
static bool holds(const char *s, size_t n, const char *w) {
  for (size_t i = 0, k = strlen(w); i + k <= n; i++)
    if (!memcmp(s + i, w, k)) return true;
  return false;
}

/* The verb of a grammar needle "[Lead, ]VERB P to Q." whose P and Q are
 * the item's value and first answer (either order), into verb; its order
 * (1 name first, 0 key first), or -1 for any other form. */
static int to_frame(const tk_item *it, char verb[32]) {
  const char *nd = it->prompt + it->needle_offsets[it->support[0]];
  size_t n = it->needle_lengths[it->support[0]];
  char w[4][32];
  int k = 0;
  size_t end = n - 1; /* the final '.' */
  while (k < 4 && end > 0) {
    size_t at = end;
    while (at > 0 && nd[at - 1] != ' ') at--;
    if (end - at >= sizeof w[0]) return -1;
    memcpy(w[3 - k], nd + at, end - at);
    w[3 - k][end - at] = 0;
    k++;
    end = at ? at - 1 : 0;
  }
  if (k < 4 || strcmp(w[2], "to") != 0) return -1;
  for (char *c = w[0]; *c; c++)
    if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
  strcpy(verb, w[0]);
  if (!strcmp(w[1], it->value) && !strcmp(w[3], it->answers[0])) return 0;
  if (!strcmp(w[1], it->answers[0]) && !strcmp(w[3], it->value)) return 1;
  return -1;
}

static void composed_phrasing(tk_phrasing ph) {
  for (int t = 0; t < TK_NTASKS; t++) {
    int grammar = 0, same = 0;
    char firsts[64][96];
    int nfirst = 0;
    /* "VERB P to Q." forms: the verbs seen key first and name first */
    char to_verbs[2][64][32];
    int nto[2] = {0, 0}, both_ways = 0;
    for (uint64_t seed = 0; seed < 120; seed++) {
      tk_item tr, co;
      tk_options o;
      tk_options_init(&o, (tk_task)t);
      o.phrasing = TK_PHRASING_TRAIN;
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2500, seed, &tr, NULL, 0), TK_OK);
      o.phrasing = ph;
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, 2500, seed, &co, NULL, 0), TK_OK);
      CU_ASSERT_STRING_EQUAL(tr.answer, co.answer);
      CU_ASSERT_STRING_EQUAL(question_of(&tr), question_of(&co));
      CU_ASSERT_EQUAL(tr.variant, co.variant);
      if (co.needle_variant != -1 || t == TK_BABI) {
        same += !strcmp(tr.prompt, co.prompt);
      } else {
        grammar++;
        CU_ASSERT_EQUAL(t, TK_VARTRACK);
        CU_ASSERT(strcmp(tr.prompt, co.prompt) != 0);
        CU_ASSERT_EQUAL(tr.n_needles, co.n_needles);
        for (int i = 0; i < co.n_needles; i++) {
          char nd[160];
          size_t n = co.needle_lengths[i];
          CU_ASSERT_FATAL(n < sizeof nd);
          memcpy(nd, co.prompt + co.needle_offsets[i], n);
          nd[n] = 0;
          CU_ASSERT(nd[0] < 'a' || nd[0] > 'z'); /* a sentence's capital */
          CU_ASSERT(nd[n - 1] == '.');
          for (char *c = nd; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
          CU_ASSERT(!strstr(nd, "assign") && !strstr(nd, "hold") && !strstr(nd, "variable"));
        }
        /* the asked chain: its first needle holds the value and the first
         * answer, each later one the answer and the one before */
        for (int j = 0; j < co.n_support && j < co.n_answers; j++) {
          const char *nd = co.prompt + co.needle_offsets[co.support[j]];
          size_t n = co.needle_lengths[co.support[j]];
          const char *copied = j ? co.answers[j - 1] : co.value;
          CU_ASSERT(holds(nd, n, co.answers[j]) && holds(nd, n, copied));
        }
        size_t n = co.needle_lengths[co.support[0]];
        if (nfirst < 64 && n < sizeof firsts[0]) {
          /* the wording: the needle with its name and value cut out */
          char w[96] = {0};
          const char *nd = co.prompt + co.needle_offsets[co.support[0]];
          for (size_t i = 0, k = 0; i < n; i++) {
            bool cap = nd[i] >= 'A' && nd[i] <= 'Z', digit = nd[i] >= '0' && nd[i] <= '9';
            bool run = cap && ((i + 1 < n && nd[i + 1] >= 'A' && nd[i + 1] <= 'Z') ||
                               (i && nd[i - 1] >= 'A' && nd[i - 1] <= 'Z'));
            if (!digit && !run) w[k++] = nd[i];
          }
          bool fresh = true;
          for (int k = 0; k < nfirst; k++) fresh &= strcmp(firsts[k], w) != 0;
          if (fresh) strcpy(firsts[nfirst++], w);
        }
        char verb[32];
        int order = to_frame(&co, verb);
        if (order >= 0 && nto[order] < 64) {
          for (int k = 0; k < nto[!order]; k++) both_ways += !strcmp(to_verbs[!order][k], verb);
          strcpy(to_verbs[order][nto[order]++], verb);
        }
      }
      tk_item_free(&tr);
      tk_item_free(&co);
    }
    if (t == TK_VARTRACK) {
      CU_ASSERT(grammar > 40 && grammar < 80);
      CU_ASSERT(same == 120 - grammar);
      CU_ASSERT(nfirst > 40); /* nearly every grammar item words it anew */
      /* "to" in both orders; composed's verbs tell the order, nonce's
       * made-up ones do not (one verb is met both ways) */
      CU_ASSERT(nto[0] > 0 && nto[1] > 0);
      CU_ASSERT(ph == TK_PHRASING_NONCE ? both_ways > 0 : both_ways == 0);
    } else {
      CU_ASSERT_EQUAL(grammar, 0);
      CU_ASSERT_EQUAL(same, 120);
    }
  }
}

static void test_composed(void) {
  composed_phrasing(TK_PHRASING_COMPOSED);
  composed_phrasing(TK_PHRASING_NONCE);
}

/* A small corpus in each layout: what is kept and what is dropped. */
static void test_corpus_cutting(void) {
  static const char fortunes[] =
      "A banker is a fellow who lends you his coat when the sun shines.\n"
      "\t\t-- Mark Twain\n"
      "%\n"
      "It was the year 1901 and everyone knew it well enough.\n" /* digits: dropped */
      "%\n"
      "The NASA people were not amused by any of this at all.\n" /* caps run: dropped */
      "%\n"
      "She hid the passkey under a stone in the garden path.\n"  /* reserved word */
      "%\n"
      "Mary had a little lamb whose fleece was white as snow.\n" /* a babi name */
      "%\n"
      "Short one.\n"                                             /* too short */
      "%\n"
      "He said \"well done\" to the whole room and sat down again. Then he\n"
      "left the well-lit hall without a word to anyone there!\n"
      "%\n";
  tk_corpus c = {0};
  CU_ASSERT_FATAL(tk_corpus_add_text(&c, TK_LAYOUT_FORTUNES, fortunes, strlen(fortunes)));
  CU_ASSERT_EQUAL(c.count, 3);
  if (c.count == 3) {
    CU_ASSERT_STRING_EQUAL(c.text + c.offsets[0],
                           "A banker is a fellow who lends you his coat when the sun shines.");
    CU_ASSERT_STRING_EQUAL(c.text + c.offsets[1],
                           "He said \"well done\" to the whole room and sat down again.");
    /* hyphens become spaces; lines join */
    CU_ASSERT_STRING_EQUAL(c.text + c.offsets[2],
                           "Then he left the well lit hall without a word to anyone there!");
    CU_ASSERT_EQUAL(c.lengths[2], strlen(c.text + c.offsets[2]));
  }
  /* a dictionary: typographic quotes and dashes become ASCII, braces and
   * underscores go, headwords and bracketed or non-ASCII text are dropped */
  static const char dict[] =
      "frobnicate\n"
      " /frob'ni\xc2\xb7kayt/, vt.\n"
      "\n"
      "    To manipulate or adjust, to tweak \xe2\x80\x94 see {tweak}. It is\n"
      "    \xe2\x80\x9c""common\xe2\x80\x9d in _casual_ speech among hackers.\n"
      "    [MIT] Nothing in brackets is kept at all here.\n";
  CU_ASSERT_FATAL(tk_corpus_add_text(&c, TK_LAYOUT_DICT, dict, strlen(dict)));
  CU_ASSERT_EQUAL(c.count, 5);
  if (c.count == 5) {
    CU_ASSERT_STRING_EQUAL(c.text + c.offsets[3], "To manipulate or adjust, to tweak see tweak.");
    CU_ASSERT_STRING_EQUAL(c.text + c.offsets[4], "It is \"common\" in casual speech among hackers.");
  }
  tk_corpus_free(&c);
  CU_ASSERT_PTR_NULL(c.text);
}

/* Filler styles: noise repeats five sentences; prose reads the corpus in
 * order from a seeded start; every style keeps the length, the needles
 * and the answer; a prose style without a corpus is an error. */
static void test_filler_styles(void) {
  tk_corpus c = {0};
  /* 300 distinct sentences (a corpus needs a few hundred to load; here it
   * is added directly) */
  char text[64 * 300 + 1] = "";
  static const char *const words[] = {"alpha", "beta", "gamma", "delta", "omega", "sigma"};
  for (int i = 0; i < 300; i++) {
    char s[64];
    snprintf(s, sizeof s, "The %s and the %s went along the %s road.\n", words[i % 6],
             words[(i / 6) % 6], words[(i / 36) % 6]);
    strcat(text, s);
  }
  CU_ASSERT_FATAL(tk_corpus_add_text(&c, TK_LAYOUT_DICT, text, strlen(text)));
  CU_ASSERT_EQUAL(c.count, 300);
  for (int f = 0; f < TK_NFILLERS; f++) {
    for (uint64_t seed = 0; seed < 20; seed++) {
      tk_options o = opts(TK_MULTIKEY, TK_WORD);
      o.filler = (tk_filler)f;
      o.corpus = tk_filler_is_prose(o.filler) ? &c : NULL;
      tk_item it;
      size_t len = 1500 + seed * 101;
      CU_ASSERT_EQUAL_FATAL(tk_generate(&o, len, seed, &it, NULL, 0), TK_OK);
      CU_ASSERT(well_formed(&o, &it, len));
      CU_ASSERT(answerable(&o, &it));
      if (f == TK_FILLER_NOISE) {
        CU_ASSERT(tu_contains(it.prompt, "The grass is green. The sky is blue. The sun is yellow."));
        CU_ASSERT(!tu_contains(it.prompt + 1, "\n\n"));
      }
      if (tk_filler_is_prose(o.filler)) CU_ASSERT(tu_contains(it.prompt, " went along the "));
      tk_item_free(&it);
    }
  }
  tk_options o = opts(TK_PASSKEY, TK_NUMBER);
  o.filler = TK_FILLER_DEVIL;
  tk_item it;
  char err[200] = "";
  CU_ASSERT_EQUAL(tk_generate(&o, 1000, 1, &it, err, sizeof err), TK_EINVAL);
  CU_ASSERT(tu_contains(err, "needs its corpus"));
  CU_ASSERT(tk_filler_held_out(TK_FILLER_DEVIL) && tk_filler_held_out(TK_FILLER_JARGON));
  CU_ASSERT(!tk_filler_held_out(TK_FILLER_SYNTHETIC) && !tk_filler_held_out(TK_FILLER_FORTUNES) &&
            !tk_filler_held_out(TK_FILLER_SAYINGS));
  for (int f = 0; f < TK_NFILLERS; f++) CU_ASSERT_EQUAL(tk_filler_parse(tk_filler_name(f)), f);
  for (int p = 0; p < TK_NPHRASINGS; p++)
    CU_ASSERT_EQUAL(tk_phrasing_parse(tk_phrasing_name(p)), p);
  /* a corpus file that is missing names its package */
  tk_corpus d;
  CU_ASSERT(!tk_corpus_load(tk_corpus_source_named("devil"), "/nonexistent", &d, err, sizeof err));
  CU_ASSERT(tu_contains(err, "dict-devil"));
  tk_corpus_free(&c);
}

/* eval's scoring: exact match of the joined answer; the share of answers
 * found for several (RULER's partial score). */
static void test_eval_score(void) {
  char *one[] = {"6665257"};
  hsac_eval_score sc = hsac_eval_score_output("6665257.", 8, "6665257", one, 1);
  CU_ASSERT(sc.exact && sc.score == 1.0);
  sc = hsac_eval_score_output("666525", 6, "6665257", one, 1); /* cut short */
  CU_ASSERT(!sc.exact && sc.score == 0.0);
  sc = hsac_eval_score_output("x6665257", 8, "6665257", one, 1); /* not at the start */
  CU_ASSERT(!sc.exact && sc.score == 0.0);
  char *three[] = {"ABCDE", "FGHIJ", "KLMNO"};
  const char *joined = "ABCDE, FGHIJ, KLMNO";
  sc = hsac_eval_score_output(joined, strlen(joined), joined, three, 3);
  CU_ASSERT(sc.exact && sc.score == 1.0);
  sc = hsac_eval_score_output("KLMNO, ABCDE, XXXXX", 19, joined, three, 3);
  CU_ASSERT(!sc.exact && fabs(sc.score - 2.0 / 3.0) < 1e-12);
  sc = hsac_eval_score_output("", 0, joined, three, 3);
  CU_ASSERT(!sc.exact && sc.score == 0.0);
}

/* eval's 95% interval (Wilson's score interval), against values computed
 * apart from the formula in eval.c (n / (n + z^2) for all right; the
 * published interval for 50 of 100, 0.4038-0.5962): inside [0, 1], about
 * the share, narrowing with more items. */
static void test_eval_interval(void) {
  const double z2 = 1.959963984540054 * 1.959963984540054;
  double lo, hi;
  hsac_eval_wilson(1.0, 4, &lo, &hi);
  CU_ASSERT(fabs(lo - 4.0 / (4.0 + z2)) < 1e-12 && hi == 1.0);
  hsac_eval_wilson(0.0, 4, &lo, &hi);
  CU_ASSERT(lo == 0.0 && fabs(hi - z2 / (4.0 + z2)) < 1e-12);
  hsac_eval_wilson(0.5, 100, &lo, &hi);
  CU_ASSERT(fabs(lo - 0.40383) < 1e-5 && fabs(hi - 0.59617) < 1e-5);
  hsac_eval_wilson(0.875, 40, &lo, &hi); /* 35 of 40 */
  CU_ASSERT(fabs(lo - 0.73888) < 1e-5 && fabs(hi - 0.94540) < 1e-5);
  double lo2, hi2;
  hsac_eval_wilson(0.875, 400, &lo2, &hi2);
  CU_ASSERT(lo2 > lo && hi2 < hi && lo2 < 0.875 && hi2 > 0.875);
  hsac_eval_wilson(0.3, 0, &lo, &hi); /* no items: nothing known */
  CU_ASSERT(lo == 0.0 && hi == 1.0);
}

/* --baseline's sign test, against sums of binomial coefficients computed
 * apart (Python's math.comb): two-sided, symmetric, 1 with no signs. */
static void test_eval_sign_test(void) {
  CU_ASSERT(hsac_eval_sign_test(0, 0) == 1.0);
  CU_ASSERT(hsac_eval_sign_test(0, 1) == 1.0);
  CU_ASSERT(fabs(hsac_eval_sign_test(4, 0) - 0.125) < 1e-12);
  CU_ASSERT(fabs(hsac_eval_sign_test(9, 0) - 2.0 / 512.0) < 1e-12);
  CU_ASSERT(fabs(hsac_eval_sign_test(1, 5) - 0.21875) < 1e-12);
  CU_ASSERT(fabs(hsac_eval_sign_test(5, 1) - 0.21875) < 1e-12);
  CU_ASSERT(fabs(hsac_eval_sign_test(60, 40) - 0.05688793364098079) < 1e-9);
  CU_ASSERT(fabs(hsac_eval_sign_test(400, 600) / 2.7284641560660184e-10 - 1.0) < 1e-6);
  CU_ASSERT(hsac_eval_sign_test(5, 5) == 1.0);
}

void tu_add_tasks_suite(void) {
  CU_pSuite s = CU_add_suite("tasks", NULL, NULL);
  CU_add_test(s, "word lists keep values unique", test_word_lists);
  CU_add_test(s, "task and needle names", test_names);
  CU_add_test(s, "every task and needle: exact length, printable, answerable",
              test_every_task_and_needle);
  CU_add_test(s, "every length from the least", test_every_length);
  CU_add_test(s, "deterministic by seed", test_deterministic);
  CU_add_test(s, "pinned bytes", test_pinned);
  CU_add_test(s, "a seed asks the same question at every length", test_length_keeps_the_question);
  CU_add_test(s, "needle depths", test_depth);
  CU_add_test(s, "counts and chains", test_counts);
  CU_add_test(s, "errors", test_errors);
  CU_add_test(s, "eval's 95% interval", test_eval_interval);
  CU_add_test(s, "eval's sign test", test_eval_sign_test);
  CU_add_test(s, "out of memory", test_out_of_memory);
  CU_add_test(s, "gen-task --format jsonl", test_command_jsonl);
  CU_add_test(s, "gen-task --format text and prompt", test_command_text_and_prompt);
  CU_add_test(s, "gen-task usage errors", test_command_usage_errors);
  CU_add_test(s, "babi stories replay to their answers", test_babi);
  CU_add_test(s, "phrasings: train and held-out wordings", test_phrasings);
  CU_add_test(s, "phrasings: composed and nonce vartrack wordings", test_composed);
  CU_add_test(s, "prose corpus: what is kept", test_corpus_cutting);
  CU_add_test(s, "filler styles", test_filler_styles);
  CU_add_test(s, "eval's scores", test_eval_score);
}
