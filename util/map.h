/* map.h - a string-keyed hash map in an arena (open addressing). */
#ifndef HSAC_UTIL_MAP_H
#define HSAC_UTIL_MAP_H

#include "util/arena.h"

typedef struct ut_map {
  ut_arena *arena;
  const char **keys;
  void **vals;
  size_t cap, len;
} ut_map;

void ut_map_init(ut_map *m, ut_arena *a);
void *ut_map_get(const ut_map *m, const char *key);
/* Inserts or replaces; keys are not copied. */
void ut_map_put(ut_map *m, const char *key, void *val);

#endif
