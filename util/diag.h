/* diag.h - source files and diagnostics.
 *
 * A ut_sources owns the text of every file read during one compilation
 * (the main file and its includes); a location names a file by index.  A
 * ut_diags collects errors and warnings in order; rendering them is separate
 * from collecting them so library code never prints on its own. */
#ifndef HSAC_UTIL_DIAG_H
#define HSAC_UTIL_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"

/* A span in a source file; lines and columns count from 1, columns in bytes. */
typedef struct ut_loc {
  int file;        /* index into ut_sources; -1 for "no location" */
  int line, col;   /* first character */
  int end_line, end_col; /* one past the last character (same line: a span) */
} ut_loc;

extern const ut_loc ut_noloc;

typedef struct ut_source {
  const char *path;    /* as given (relative paths stay relative) */
  const char *text;    /* NUL-terminated contents */
  long len;            /* bytes, excluding the terminator */
  ut_loc included_at;  /* where the include statement was (file -1: root) */
} ut_source;

typedef struct ut_sources {
  ut_arena *arena;
  ut_source **files;
  int nfiles, cap;
} ut_sources;

typedef enum { UT_ERROR, UT_WARNING, UT_NOTE } ut_severity;

typedef struct ut_diag {
  ut_severity sev;
  ut_loc loc;
  const char *msg;
} ut_diag;

typedef struct ut_diags {
  ut_arena *arena;
  ut_diag *items;
  int len, cap;
  int nerrors;         /* errors recorded (duplicates are dropped) */
  int nraised;         /* every ut_error call, duplicates included */
  int max_errors;      /* stop recording errors past this (0: 50) */
  bool truncated;      /* errors were dropped because of max_errors */
} ut_diags;

void ut_sources_init(ut_sources *s, ut_arena *a);
/* Adds a file whose text is already in memory; returns its index. */
int ut_sources_add(ut_sources *s, const char *path, const char *text, long len,
                   ut_loc included_at);
/* Reads a file; returns its index, or -1 with errno set. Files larger than
 * max_bytes are refused with EFBIG, files containing NUL bytes with EILSEQ. */
int ut_sources_read(ut_sources *s, const char *path, long max_bytes,
                    ut_loc included_at);

void ut_diags_init(ut_diags *d, ut_arena *a);
void ut_error(ut_diags *d, ut_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ut_warning(ut_diags *d, ut_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ut_note(ut_diags *d, ut_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes every diagnostic as "file:line:col: error: msg", then the source
 * line and a caret (with tildes under the rest of a one-line span). */
void ut_diags_render(const ut_diags *d, const ut_sources *s, FILE *out);

/* Levenshtein distance, used for "did you mean" suggestions. */
int ut_edit_distance(const char *a, const char *b);

#endif
