/* map.c - a string-keyed hash map in an arena (see map.h). */
#include "util/map.h"

#include <string.h>

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  /* FNV-1a's low bits (the slot) depend weakly on the last characters:
   * names like c1, c2, ... clustered under linear probing.  Fold the high
   * bits in. */
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

void ut_map_init(ut_map *m, ut_arena *a) {
  memset(m, 0, sizeof *m);
  m->arena = a;
}

void *ut_map_get(const ut_map *m, const char *key) {
  if (!m->cap) return NULL;
  for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i]) return NULL;
    if (!strcmp(m->keys[i], key)) return m->vals[i];
  }
}

static void grow(ut_map *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  const char **keys = ut_alloc_array(m->arena, cap, sizeof *keys);
  void **vals = ut_alloc_array(m->arena, cap, sizeof *vals);
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->keys[j]) continue;
    size_t i = hash(m->keys[j]) & (cap - 1);
    while (keys[i]) i = (i + 1) & (cap - 1);
    keys[i] = m->keys[j];
    vals[i] = m->vals[j];
  }
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
}

void ut_map_put(ut_map *m, const char *key, void *val) {
  if (2 * (m->len + 1) > m->cap) grow(m);
  size_t i = hash(key) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->len++;
  m->keys[i] = key;
  m->vals[i] = val;
}
