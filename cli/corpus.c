/* corpus.c - prose filler: sentences cut from texts Debian installs
 * (corpus.h, docs/tasks.md "Filler"). */
#include "cli/corpus.h"
#include "cli/tasks.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const tk_corpus_source sources[] = {
    {"fortunes", "fortunes-min", "BSD-3-Clause (the fortune-mod collection)", TK_LAYOUT_FORTUNES,
     {"/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
      "/usr/share/games/fortunes/riddles", NULL}},
    {"sayings", "fortunes", "BSD-3-Clause (the fortune-mod collection)", TK_LAYOUT_FORTUNES,
     {"/usr/share/games/fortunes/people", "/usr/share/games/fortunes/wisdom",
      "/usr/share/games/fortunes/science", NULL}},
    {"devil", "dict-devil", "public domain (Ambrose Bierce, The Devil's Dictionary, 1911)",
     TK_LAYOUT_DICT, {"/usr/share/dictd/devil.dict.dz", NULL}},
    {"jargon", "dict-jargon", "public domain (The Jargon File 4.4.7)", TK_LAYOUT_DICT,
     {"/usr/share/dictd/jargon.dict.dz", NULL}},
};

const tk_corpus_source *tk_corpus_source_named(const char *name) {
  for (size_t i = 0; name && i < sizeof sources / sizeof sources[0]; i++)
    if (!strcmp(sources[i].name, name)) return &sources[i];
  return NULL;
}

void tk_corpus_free(tk_corpus *c) {
  if (!c) return;
  free(c->text);
  free(c->offsets);
  free(c->lengths);
  memset(c, 0, sizeof *c);
}

/* ---- sentences ---------------------------------------------------------------- */

typedef struct growth {
  size_t text_cap, count_cap, text_len;
} growth;

enum { MIN_SENTENCE = 20, MAX_SENTENCE = 400, MIN_WORDS = 4 };

static bool is_upper(char ch) { return ch >= 'A' && ch <= 'Z'; }
static bool is_lower(char ch) { return ch >= 'a' && ch <= 'z'; }

/* Whether s (n bytes, normalized) may be a filler sentence. */
static bool acceptable(const char *s, size_t n) {
  if (n < MIN_SENTENCE || n > MAX_SENTENCE) return false;
  if (!is_upper(s[0]) && !(s[0] == '"' && n > 1 && is_upper(s[1]))) return false;
  int words = 1;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (is_upper(ch)) {
      if (i + 1 < n && is_upper(s[i + 1])) return false; /* "NASA", a variable's look */
    } else if (!is_lower(ch) && !strchr(" ,.;:'\"!?()", ch)) {
      return false; /* digits, brackets, slashes, what the normalization marked */
    }
    words += ch == ' ';
  }
  /* a one-letter "sentence" ("I." or "A.") split off an abbreviation */
  if (words < MIN_WORDS) return false;
  return !tk_reserved_text(s, n);
}

static bool add_sentence(tk_corpus *c, growth *g, const char *s, size_t n) {
  if (!acceptable(s, n)) return true;
  if (g->text_len + n + 1 > g->text_cap) {
    size_t cap = g->text_cap ? g->text_cap * 2 : 65536;
    while (cap < g->text_len + n + 1) cap *= 2;
    char *t = realloc(c->text, cap);
    if (!t) return false;
    c->text = t;
    g->text_cap = cap;
  }
  if (c->count == g->count_cap) {
    size_t cap = g->count_cap ? g->count_cap * 2 : 1024;
    size_t *o = realloc(c->offsets, cap * sizeof *o);
    if (!o) return false;
    c->offsets = o;
    size_t *l = realloc(c->lengths, cap * sizeof *l);
    if (!l) return false;
    c->lengths = l;
    g->count_cap = cap;
  }
  memcpy(c->text + g->text_len, s, n);
  c->text[g->text_len + n] = 0;
  c->offsets[c->count] = g->text_len;
  c->lengths[c->count] = n;
  c->count++;
  g->text_len += n + 1;
  return true;
}

/* Normalizes a paragraph in place (p, n bytes): typographic quotes become
 * ASCII quotes; dashes, hyphens, tabs and newlines become spaces;
 * underscores and braces (the sources' emphasis and cross-reference marks)
 * go; any other byte outside printable ASCII becomes 0x01, which no
 * sentence may hold; runs of spaces become one.  Returns the new length. */
static size_t normalize(char *p, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    char out;
    if (ch == 0xE2 && i + 2 < n && (unsigned char)p[i + 1] == 0x80) {
      unsigned char t = (unsigned char)p[i + 2];
      i += 2;
      if (t == 0x9C || t == 0x9D) out = '"';
      else if (t == 0x98 || t == 0x99) out = '\'';
      else if (t == 0x93 || t == 0x94) out = ' ';
      else out = 1;
    } else if (ch >= 0x80) {
      out = 1;
    } else if (ch == '\t' || ch == '\n' || ch == '\r' || ch == '-') {
      out = ' ';
    } else if (ch == '_' || ch == '{' || ch == '}') {
      continue;
    } else if (ch < 32 || ch == 127) {
      out = 1;
    } else {
      out = (char)ch;
    }
    if (out == ' ' && (w == 0 || p[w - 1] == ' ')) continue;
    p[w++] = out;
  }
  while (w && p[w - 1] == ' ') w--;
  return w;
}

/* Cuts a normalized paragraph into sentences: a sentence ends at '.', '!'
 * or '?', with a closing quote or parenthesis after it, where a space or
 * the paragraph's end follows.  A trailing piece without such an end is
 * dropped (headwords, verse lines, titles). */
static bool cut_paragraph(tk_corpus *c, growth *g, char *p, size_t n) {
  n = normalize(p, n);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '.' && p[i] != '!' && p[i] != '?') continue;
    size_t end = i + 1;
    while (end < n && (p[end] == '"' || p[end] == '\'' || p[end] == ')')) end++;
    if (end < n && p[end] != ' ') continue;
    if (!add_sentence(c, g, p + start, end - start)) return false;
    start = end + 1;
    i = end;
  }
  return true;
}

/* A line that ends a paragraph: blank (dict), or "%" (fortunes). */
static bool breaks_paragraph(tk_corpus_layout layout, const char *l, size_t n) {
  size_t i = 0;
  while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r')) i++;
  if (i == n) return true;
  return layout == TK_LAYOUT_FORTUNES && n - i == 1 && l[i] == '%';
}

/* A fortune's attribution line ("\t\t-- Mark Twain"): left out. */
static bool attribution(tk_corpus_layout layout, const char *l, size_t n) {
  size_t i = 0;
  while (i < n && (l[i] == ' ' || l[i] == '\t')) i++;
  return layout == TK_LAYOUT_FORTUNES && i + 1 < n && l[i] == '-' && l[i + 1] == '-';
}

bool tk_corpus_add_text(tk_corpus *c, tk_corpus_layout layout, const char *text, size_t n) {
  growth g = {0, 0, 0};
  /* continue after what c holds */
  if (c->count) {
    g.text_len = c->offsets[c->count - 1] + c->lengths[c->count - 1] + 1;
    g.text_cap = g.text_len;
    g.count_cap = c->count;
  }
  char *para = malloc(n + 1);
  if (!para) return false;
  size_t plen = 0;
  bool ok = true;
  for (size_t i = 0; i <= n && ok; ) {
    size_t e = i;
    while (e < n && text[e] != '\n') e++;
    const char *line = text + i;
    size_t len = e - i;
    bool last = e >= n;
    if (breaks_paragraph(layout, line, len)) {
      ok = cut_paragraph(c, &g, para, plen);
      plen = 0;
    } else if (!attribution(layout, line, len)) {
      memcpy(para + plen, line, len);
      plen += len;
      para[plen++] = '\n';
    }
    if (last) {
      ok = ok && cut_paragraph(c, &g, para, plen);
      break;
    }
    i = e + 1;
  }
  free(para);
  /* shrink to fit: a later call rebuilds its growth state from the counts,
   * taking the capacity to be exactly the size */
  if (ok && c->count) {
    char *t = realloc(c->text, g.text_len);
    if (t) c->text = t;
    size_t *o = realloc(c->offsets, c->count * sizeof *o);
    if (o) c->offsets = o;
    size_t *l = realloc(c->lengths, c->count * sizeof *l);
    if (l) c->lengths = l;
  }
  return ok;
}

/* The whole of a file, decompressed when it is gzip (a dictzip file is). */
static char *read_all(const char *path, size_t *n, char *err, size_t errsize,
                      const tk_corpus_source *src) {
  gzFile f = gzopen(path, "rb");
  if (!f) {
    if (errno == ENOENT)
      snprintf(err, errsize,
               "%s: no such file: the '%s' filler reads it from Debian's package %s "
               "(apt-get install %s, or sh scripts/deps.sh)",
               path, src->name, src->package, src->package);
    else
      snprintf(err, errsize, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      snprintf(err, errsize, "out of memory");
      gzclose(f);
      return NULL;
    }
    if (len == cap) {
      if (cap >= (size_t)1 << 30) {
        snprintf(err, errsize, "%s: more than 1 GiB: not a text this filler expects", path);
        free(buf);
        gzclose(f);
        return NULL;
      }
      char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        buf = NULL;
        continue;
      }
      buf = b;
      cap *= 2;
    }
    int got = gzread(f, buf + len, (unsigned)(cap - len > (1u << 30) ? (1u << 30) : cap - len));
    if (got < 0) {
      int code;
      const char *msg = gzerror(f, &code);
      snprintf(err, errsize, "%s: cannot read (corrupt or truncated?): %s", path, msg);
      free(buf);
      gzclose(f);
      return NULL;
    }
    if (got == 0) break;
    len += (size_t)got;
  }
  gzclose(f);
  *n = len;
  return buf;
}

bool tk_corpus_load(const tk_corpus_source *src, const char *dir, tk_corpus *c, char *err,
                    size_t errsize) {
  memset(c, 0, sizeof *c);
  if (!src) {
    snprintf(err, errsize, "no corpus");
    return false;
  }
  size_t used = 0;
  for (int i = 0; src->files[i]; i++) {
    char path[4096];
    const char *base = strrchr(src->files[i], '/');
    if (dir)
      snprintf(path, sizeof path, "%s/%s", dir, base ? base + 1 : src->files[i]);
    else
      snprintf(path, sizeof path, "%s", src->files[i]);
    size_t n = 0;
    char *text = read_all(path, &n, err, errsize, src);
    if (!text) {
      tk_corpus_free(c);
      return false;
    }
    bool ok = tk_corpus_add_text(c, src->layout, text, n);
    free(text);
    if (!ok) {
      tk_corpus_free(c);
      snprintf(err, errsize, "out of memory");
      return false;
    }
    int w = snprintf(c->source + used, sizeof c->source - used, "%s%s", i ? ", " : "", path);
    if (w > 0 && (size_t)w < sizeof c->source - used) used += (size_t)w;
  }
  /* a few hundred sentences at least: fewer means the file is not what the
   * package installs (or the filter rejects it) */
  if (c->count < 200) {
    snprintf(err, errsize, "%s: only %zu usable sentences: not the text of %s", c->source,
             c->count, src->package);
    tk_corpus_free(c);
    return false;
  }
  return true;
}
