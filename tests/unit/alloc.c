/* alloc.c - the test binary's allocator hooks.
 *
 * The test program is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=aligned_alloc (tests/CMakeLists.txt), so every
 * allocation the static
 * libraries make comes through here.  Two uses:
 *  - the largest request since a reset (a header with absurdly many entries
 *    must be refused before its table is allocated);
 *  - fault injection: make the n-th allocation from now fail, to show that
 *    running out of memory anywhere gives an error, never a crash or a
 *    leak. */
#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

static size_t largest;     /* the largest request since the last reset */
static long countdown = -1; /* allocations left before one fails; -1: never */
static long total;         /* allocations seen */

static bool admit(size_t n) {
  total++;
  if (n > largest) largest = n;
  if (countdown < 0) return true;
  if (countdown == 0) {
    countdown = -1; /* one failure, then normal service */
    return false;
  }
  countdown--;
  return true;
}

void *__wrap_malloc(size_t n) { return admit(n) ? __real_malloc(n) : NULL; }

void *__wrap_calloc(size_t n, size_t size) {
  size_t t;
  return admit(__builtin_mul_overflow(n, size, &t) ? SIZE_MAX : t) ? __real_calloc(n, size)
                                                                   : NULL;
}

void *__wrap_realloc(void *p, size_t n) { return admit(n) ? __real_realloc(p, n) : NULL; }

void *__wrap_aligned_alloc(size_t align, size_t n) {
  return admit(n) ? __real_aligned_alloc(align, n) : NULL;
}

void tu_alloc_reset_largest(void) { largest = 0; }
size_t tu_alloc_largest(void) { return largest; }
void tu_alloc_fail_after(long n) { countdown = n; }
long tu_alloc_count(void) { return total; }
