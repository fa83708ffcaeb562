/* arena.c - region allocator (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ut_block {
  ut_block *next;
  size_t size;
  _Alignas(16) unsigned char data[];
};

enum { UT_BLOCK_MIN = 64 * 1024 };

void ut_arena_init(ut_arena *a) { memset(a, 0, sizeof *a); }

void ut_arena_free(ut_arena *a) {
  ut_block *b = a->head;
  while (b) {
    ut_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = a->total = 0;
}

void ut_arena_oom(ut_arena *a) {
  if (a->oom) longjmp(*a->oom, 1);
  /* No handler installed: a programming error in the caller. */
  fputs("hsac: out of memory and no handler installed\n", stderr);
  abort();
}

void *ut_alloc(ut_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  if (!a->head || a->used + size > a->head->size) {
    size_t bsize = size > UT_BLOCK_MIN ? size : UT_BLOCK_MIN;
    if (a->limit && a->total + bsize > a->limit) ut_arena_oom(a);
    ut_block *b = malloc(sizeof *b + bsize);
    if (!b) ut_arena_oom(a);
    b->next = a->head;
    b->size = bsize;
    a->head = b;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += size;
  a->total += size;
  memset(p, 0, size);
  return p;
}

void *ut_alloc_array(ut_arena *a, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) ut_arena_oom(a);
  return ut_alloc(a, n * size);
}

char *ut_strndup(ut_arena *a, const char *s, size_t n) {
  char *p = ut_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ut_strdup(ut_arena *a, const char *s) { return ut_strndup(a, s, strlen(s)); }

char *ut_sprintf(ut_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  char *p = ut_alloc(a, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void ut_vec_push(ut_arena *a, ut_vec *v, void *item) {
  if (v->len == v->cap) {
    int cap = v->cap ? v->cap * 2 : 8;
    void **items = ut_alloc_array(a, (size_t)cap, sizeof *items);
    if (v->len) memcpy(items, v->items, (size_t)v->len * sizeof *items);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->len++] = item;
}
