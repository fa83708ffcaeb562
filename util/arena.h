/* arena.h - region allocator for compiler data.
 *
 * Every compilation owns one arena; everything the front end, the IR and the
 * passes allocate lives in it and is released by one ut_arena_free().  An
 * allocation failure does not return NULL: it longjmps to the handler the
 * entry point installed (ut_arena_catch), so library code can report
 * "out of memory" as an ordinary error without checking every call site. */
#ifndef HSAC_UTIL_ARENA_H
#define HSAC_UTIL_ARENA_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ut_block ut_block;

typedef struct ut_arena {
  ut_block *head;      /* most recent block; older blocks follow */
  size_t used;         /* bytes used in head */
  size_t total;        /* bytes handed out, for statistics */
  size_t limit;        /* refuse to grow beyond this many bytes (0: none) */
  jmp_buf *oom;        /* where to go when an allocation fails */
} ut_arena;

void ut_arena_init(ut_arena *a);
void ut_arena_free(ut_arena *a);
/* Zeroed, 16-byte aligned memory; never returns NULL (see above). */
void *ut_alloc(ut_arena *a, size_t size);
/* Reports running out of memory through the installed handler (for memory
 * that came from somewhere else, such as a file buffer); never returns. */
void ut_arena_oom(ut_arena *a) __attribute__((noreturn));
void *ut_alloc_array(ut_arena *a, size_t n, size_t size);
char *ut_strdup(ut_arena *a, const char *s);
char *ut_strndup(ut_arena *a, const char *s, size_t n);
char *ut_sprintf(ut_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A growable array of pointers backed by an arena (old storage is simply
 * abandoned to the arena when it grows). */
typedef struct ut_vec {
  void **items;
  int len, cap;
} ut_vec;
void ut_vec_push(ut_arena *a, ut_vec *v, void *item);

#endif
