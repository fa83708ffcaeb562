/* diag.c - source files and diagnostics (see diag.h). */
#include "diag.h"
#include "fileio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const ut_loc ut_noloc = {-1, 0, 0, 0, 0};

void ut_sources_init(ut_sources *s, ut_arena *a) {
  memset(s, 0, sizeof *s);
  s->arena = a;
}

int ut_sources_add(ut_sources *s, const char *path, const char *text, long len,
                   ut_loc included_at) {
  if (s->nfiles == s->cap) {
    int cap = s->cap ? s->cap * 2 : 8;
    ut_source **files = ut_alloc_array(s->arena, (size_t)cap, sizeof *files);
    if (s->nfiles) memcpy(files, s->files, (size_t)s->nfiles * sizeof *files);
    s->files = files;
    s->cap = cap;
  }
  ut_source *f = ut_alloc(s->arena, sizeof *f);
  f->path = ut_strdup(s->arena, path);
  f->text = ut_strndup(s->arena, text, (size_t)len);
  f->len = len;
  f->included_at = included_at;
  s->files[s->nfiles] = f;
  return s->nfiles++;
}

int ut_sources_read(ut_sources *s, const char *path, long max_bytes,
                    ut_loc included_at) {
  size_t len = 0;
  /* never blocks on a FIFO; EFBIG past max_bytes */
  char *buf = ut_read_regular(path, (size_t)max_bytes, &len);
  if (!buf) return -1;
  if (memchr(buf, 0, len)) {
    free(buf);
    errno = EILSEQ;
    return -1;
  }
  /* copy into the arena; if that runs out of memory, free buf first */
  jmp_buf here, *outer = s->arena->oom;
  if (setjmp(here)) {
    free(buf);
    s->arena->oom = outer;
    longjmp(*outer, 1);
  }
  if (outer) s->arena->oom = &here;
  int id = ut_sources_add(s, path, buf, (long)len, included_at);
  s->arena->oom = outer;
  free(buf);
  return id;
}

void ut_diags_init(ut_diags *d, ut_arena *a) {
  memset(d, 0, sizeof *d);
  d->arena = a;
}

static bool ut_same_loc(ut_loc a, ut_loc b) {
  return a.file == b.file && a.line == b.line && a.col == b.col &&
         a.end_line == b.end_line && a.end_col == b.end_col;
}

static void ut_vdiag(ut_diags *d, ut_severity sev, ut_loc loc, const char *fmt,
                     va_list ap) {
  if (sev == UT_ERROR) d->nraised++;
  /* The same message at the same place (a statement inside `repeat`, say)
   * is reported once. */
  char probe[512];
  va_list aq0;
  va_copy(aq0, ap);
  vsnprintf(probe, sizeof probe, fmt, aq0);
  va_end(aq0);
  for (int i = 0; i < d->len; i++)
    if (d->items[i].sev == sev && ut_same_loc(d->items[i].loc, loc) &&
        !strcmp(d->items[i].msg, probe))
      return;
  int max = d->max_errors ? d->max_errors : 50;
  if (sev == UT_ERROR) {
    if (d->nerrors >= max) {
      d->truncated = true;
      d->nerrors++;
      return;
    }
    d->nerrors++;
  } else if (d->nerrors > max) {
    return;
  }
  if (d->len == d->cap) {
    int cap = d->cap ? d->cap * 2 : 16;
    ut_diag *items = ut_alloc_array(d->arena, (size_t)cap, sizeof *items);
    if (d->len) memcpy(items, d->items, (size_t)d->len * sizeof *items);
    d->items = items;
    d->cap = cap;
  }
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  char *msg = ut_alloc(d->arena, (size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(msg, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
  d->items[d->len++] = (ut_diag){sev, loc, msg};
}

#define UT_DIAG_FN(name, sev)                                  \
  void name(ut_diags *d, ut_loc loc, const char *fmt, ...) {   \
    va_list ap;                                                \
    va_start(ap, fmt);                                         \
    ut_vdiag(d, sev, loc, fmt, ap);                            \
    va_end(ap);                                                \
  }
UT_DIAG_FN(ut_error, UT_ERROR)
UT_DIAG_FN(ut_warning, UT_WARNING)
UT_DIAG_FN(ut_note, UT_NOTE)

/* Finds the start of line `line` (1-based) in text; NULL if out of range. */
static const char *ut_line_start(const ut_source *f, int line) {
  const char *p = f->text, *end = f->text + f->len;
  for (int l = 1; l < line; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return NULL;
    p = nl + 1;
  }
  return p;
}

/* Text from input (a message quoting a name or an include path, a file
 * path) reaches the terminal with its control bytes (ESC, BEL, ...)
 * written as \xNN, so an input cannot move the cursor, recolour or retitle
 * the terminal. */
static void put_escaped(FILE *out, const char *t) {
  for (; *t; t++) {
    unsigned char c = (unsigned char)*t;
    if ((c < 0x20 && c != '\t') || c == 0x7f) fprintf(out, "\\x%02x", c);
    else fputc(c, out);
  }
}

static void ut_render_one(const ut_diag *dg, const ut_sources *s, FILE *out) {
  static const char *const names[] = {"error", "warning", "note"};
  const ut_source *f =
      dg->loc.file >= 0 && dg->loc.file < s->nfiles ? s->files[dg->loc.file] : NULL;
  if (!f) {
    fprintf(out, "hsac: %s: ", names[dg->sev]);
    put_escaped(out, dg->msg);
    fputc('\n', out);
    return;
  }
  put_escaped(out, f->path);
  fprintf(out, ":%d:%d: %s: ", dg->loc.line, dg->loc.col, names[dg->sev]);
  put_escaped(out, dg->msg);
  fputc('\n', out);
  const char *ls = ut_line_start(f, dg->loc.line);
  if (!ls) return;
  const char *end = f->text + f->len;
  const char *le = memchr(ls, '\n', (size_t)(end - ls));
  if (!le) le = end;
  if (le > ls && le[-1] == '\r') le--;
  int col = dg->loc.col < 1 ? 1 : dg->loc.col;
  int end_col = dg->loc.end_line == dg->loc.line ? dg->loc.end_col : col + 1;
  /* A very long line (machine-made input) is shown as a window around the
   * column, so the message stays readable. */
  enum { WIDTH = 120 };
  if (le - ls > WIDTH) {
    long first = col - 1 - WIDTH / 2;
    if (first < 0) first = 0;
    if (first > (le - ls) - WIDTH) first = (le - ls) - WIDTH;
    ls += first;
    le = ls + WIDTH;
    col -= (int)first;
    end_col -= (int)first;
    if (end_col > WIDTH + 1) end_col = WIDTH + 1;
  }
  /* the source line, control bytes shown as '?' (one column each, so the
   * caret still lines up) */
  for (const char *c = ls; c < le; c++)
    fputc(((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f ? '?' : *c, out);
  fputc('\n', out);
  /* Reproduce tabs so the caret lines up whatever the tab width. */
  for (int i = 1; i < col && ls + i - 1 < le; i++)
    fputc(ls[i - 1] == '\t' ? '\t' : ' ', out);
  fputc('^', out);
  if (dg->loc.end_line == dg->loc.line) {
    int last = end_col;
    if (last > (int)(le - ls) + 1) last = (int)(le - ls) + 1;
    for (int i = col + 1; i < last; i++) fputc('~', out);
  }
  fputc('\n', out);
  /* Errors inside included files say how the file was reached. */
  if (dg->sev != UT_NOTE) {
    ut_loc at = f->included_at;
    for (int depth = 0; at.file >= 0 && at.file < s->nfiles && depth < 32; depth++) {
      const ut_source *inc = s->files[at.file];
      fputs("  (included from ", out);
      put_escaped(out, inc->path);
      fprintf(out, ":%d)\n", at.line);
      at = inc->included_at;
    }
  }
}

void ut_diags_render(const ut_diags *d, const ut_sources *s, FILE *out) {
  for (int i = 0; i < d->len; i++) ut_render_one(&d->items[i], s, out);
  if (d->truncated)
    fprintf(out, "hsac: error: too many errors (%d); stopping\n", d->nerrors);
}

int ut_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 1 << 20;
  int row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int prev = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cur = row[j];
      int best = prev + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}
