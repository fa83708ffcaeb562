/* fileio.h - opening input files without blocking, and writing output
 * files through a temporary name and a rename, by one policy everywhere
 * (docs/security.md, "Files").
 *
 * Inputs: a path is opened with O_NONBLOCK and checked with fstat before
 * anything is read, so a FIFO without a writer, a terminal or a device is
 * refused at once instead of blocking forever; only regular files are
 * read (a directory fails with EISDIR, anything else with UT_ENOTREG).
 *
 * Outputs: the final path must be absent or a regular file (a symbolic
 * link, a FIFO, a device or a directory there is refused, never replaced);
 * the new contents go to PATH.tmp-PID-NSEC-N, created next to it, which
 * gets an existing file's permission bits, is synced, and is renamed over
 * PATH.  Temporaries that a killed writer left for the same PATH (their
 * PID no longer runs) are removed when the next write begins. */
#ifndef HSAC_UTIL_FILEIO_H
#define HSAC_UTIL_FILEIO_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

/* errno for "exists but is not a regular file" (Linux has no such code;
 * EINVAL is not otherwise returned by an O_RDONLY open). */
#define UT_ENOTREG EINVAL

/* The text for an errno of ut_open_regular or ut_out_*: strerror, except
 * UT_ENOTREG ("not a regular file"). */
const char *ut_file_strerror(int e);

/* A read-only descriptor (O_CLOEXEC, blocking again after the check) for
 * a regular file, or -1 with errno.  sb (may be NULL) receives its fstat. */
int ut_open_regular(const char *path, struct stat *sb);
/* A whole regular file in a malloc'd buffer of *len bytes (plus a NUL), or
 * NULL with errno: EFBIG when it holds more than `limit` bytes (found
 * without reading much past the limit), ENOMEM, or ut_open_regular's. */
char *ut_read_regular(const char *path, size_t limit, size_t *len);

typedef struct ut_outfile {
  char *path, *tmp; /* malloc'd */
  FILE *fp;         /* write the contents here */
} ut_outfile;

/* Checks `path` against the output policy, removes stale temporaries of
 * it and creates the temporary.  0, or -1 with errno (UT_ENOTREG for a
 * path that is a symbolic link or not a regular file, EISDIR for a
 * directory). */
int ut_out_begin(ut_outfile *o, const char *path);
/* Flushes, syncs and renames the temporary over the path.  0, or -1 with
 * errno; either way the temporary is gone and *o released. */
int ut_out_commit(ut_outfile *o);
/* Drops the temporary (after a failed write); releases *o. */
void ut_out_abort(ut_outfile *o);

#endif
