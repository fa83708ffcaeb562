/* corpus.h - prose filler for the synthetic tasks (docs/tasks.md, "Filler").
 *
 * A corpus is a list of English sentences cut from freely licensed texts
 * that Debian packages install (the Devil's Dictionary, the Jargon File,
 * the fortunes of fortunes-min and fortunes).  Loading reads the package's files
 * (gzip-compressed or plain), joins the lines of each paragraph, cuts at
 * sentence ends, and keeps only sentences the task generator may use:
 * printable ASCII, no digits, no two uppercase letters in a row, nothing
 * that contains a word the tasks put in needles (tk_reserved_text), 20 to
 * 400 bytes of at least four words.  Hyphens and dashes become spaces and
 * the typographic quotes and dashes of the Jargon File become ASCII, so
 * prose filler keeps the synthetic filler's promises: no value, key or
 * variable name is ever found in it.
 *
 * Library code: errors come back as a message, nothing is printed. */
#ifndef HSAC_CLI_CORPUS_H
#define HSAC_CLI_CORPUS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tk_corpus {
  char *text;       /* the sentences, each NUL-terminated, in source order */
  size_t *offsets;  /* where sentence i starts in text */
  size_t *lengths;  /* its bytes (without the NUL) */
  size_t count;
  char source[512]; /* the files read, for messages and docs */
} tk_corpus;

/* One source of prose: the package that installs it, its files, and how
 * they are laid out. */
typedef enum tk_corpus_layout {
  TK_LAYOUT_DICT,     /* a dictd database (.dict or .dict.dz): entries, paragraphs */
  TK_LAYOUT_FORTUNES, /* fortune files: entries separated by lines holding "%" */
} tk_corpus_layout;

typedef struct tk_corpus_source {
  const char *name;     /* the filler style's name */
  const char *package;  /* the Debian package */
  const char *license;  /* as its copyright file states it */
  tk_corpus_layout layout;
  const char *files[4]; /* NULL-terminated */
} tk_corpus_source;

/* The source of a prose style by its name, or NULL. */
const tk_corpus_source *tk_corpus_source_named(const char *name);

/* Loads the sentences of src into *c.  dir, when not NULL, replaces the
 * directory of each of src's files (the file names stay).  Returns true, or
 * false with a message in err naming the file and the problem (a missing
 * file names the package that installs it). */
bool tk_corpus_load(const tk_corpus_source *src, const char *dir, tk_corpus *c, char *err,
                    size_t errsize);

/* Cuts text (n bytes of one source's raw text, in its layout) into the
 * corpus's sentences, appended to *c.  For the tests. */
bool tk_corpus_add_text(tk_corpus *c, tk_corpus_layout layout, const char *text, size_t n);

void tk_corpus_free(tk_corpus *c);

#endif
