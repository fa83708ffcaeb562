/* fuzz_files.h - what the fuzz targets that read files share: a private
 * temporary folder made at start-up, and writing a file whole.  Header
 * only (every fuzz/fuzz_NAME.c is its own executable). */
#ifndef HSAC_FUZZ_FILES_H
#define HSAC_FUZZ_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes $TMPDIR/hsac-fuzz-XXXXXX (/tmp when TMPDIR is unset or long) in
 * dir (64 bytes); aborts, naming the target, when it cannot. */
static inline void fuzz_make_dir(char dir[64], const char *target) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, 64, "%s/hsac-fuzz-XXXXXX", tmp && tmp[0] && strlen(tmp) < 32 ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "%s: mkdtemp: ", target);
    perror(NULL);
    abort();
  }
}

/* Writes size bytes to path: 0, or -1. */
static inline int fuzz_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok ? 0 : -1;
}

#endif
