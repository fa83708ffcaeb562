/* fileio.c - see fileio.h. */
#include "util/fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ut_file_strerror(int e) {
  return e == UT_ENOTREG ? "not a regular file" : strerror(e);
}

int ut_open_regular(const char *path, struct stat *out) {
  /* O_NONBLOCK: opening a FIFO with no writer (or a tty, or some
   * devices) returns at once instead of waiting */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    errno = S_ISDIR(sb.st_mode) ? EISDIR : UT_ENOTREG;
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (out) *out = sb;
  return fd;
}

char *ut_read_regular(const char *path, size_t limit, size_t *len) {
  int fd = ut_open_regular(path, NULL);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  int err = buf ? 0 : ENOMEM;
  while (!err) {
    if (n + 1 >= cap) { /* room for the NUL */
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        err = ENOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t k = read(fd, buf + n, cap - 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      err = errno;
      break;
    }
    n += (size_t)k;
    if (n > limit) {
      err = EFBIG;
      break;
    }
    if (k == 0) break;
  }
  close(fd);
  if (err) {
    free(buf);
    errno = err;
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* The directory part of path ("." when there is none), malloc'd, and the
 * base name (a pointer into path). */
static char *split_path(const char *path, const char **base) {
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  if (!slash) return strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = 0;
  }
  return d;
}

/* Removes BASE.tmp-PID[-...] in dir whose PID no longer runs: what a
 * writer killed mid-write (kill -9, a crash, a power cut) left behind. */
static void remove_stale(const char *path) {
  const char *base;
  char *dir = split_path(path, &base);
  if (!dir) return;
  size_t bl = strlen(base);
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      const char *n = de->d_name;
      if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp-", 5)) continue;
      char *end;
      long pid = strtol(n + bl + 5, &end, 10);
      if (end == n + bl + 5 || (*end && *end != '-') || pid <= 0 || pid == (long)getpid())
        continue;
      if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
      size_t m = strlen(dir) + strlen(n) + 2;
      char *full = malloc(m);
      if (!full) break;
      snprintf(full, m, "%s/%s", dir, n);
      struct stat sb;
      /* only plain files: never follow or remove anything else */
      if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode)) unlink(full);
      free(full);
    }
    closedir(d);
  }
  free(dir);
}

int ut_out_begin(ut_outfile *o, const char *path) {
  memset(o, 0, sizeof *o);
  struct stat sb;
  bool exists = lstat(path, &sb) == 0;
  if (!exists && errno != ENOENT) return -1;
  if (exists && S_ISDIR(sb.st_mode)) {
    errno = EISDIR;
    return -1;
  }
  if (exists && !S_ISREG(sb.st_mode)) {
    /* a symlink, FIFO, socket or device: renaming over it would replace
     * it (run as root, /dev/null itself) */
    errno = UT_ENOTREG;
    return -1;
  }
  remove_stale(path);
  size_t n = strlen(path) + 64;
  o->path = strdup(path);
  o->tmp = malloc(n);
  if (!o->path || !o->tmp) {
    ut_out_abort(o);
    errno = ENOMEM;
    return -1;
  }
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(o->tmp, n, "%s.tmp-%ld-%ld-%d", path, (long)getpid(), (long)ts.tv_nsec, attempt);
    /* the usual 0666 less the umask, or the replaced file's own bits */
    fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    free(o->tmp);
    o->tmp = NULL;
    ut_out_abort(o);
    errno = e;
    return -1;
  }
  if ((exists && fchmod(fd, sb.st_mode & 07777) != 0) || !(o->fp = fdopen(fd, "wb"))) {
    int e = errno;
    close(fd);
    ut_out_abort(o);
    errno = e;
    return -1;
  }
  return 0;
}

int ut_out_commit(ut_outfile *o) {
  bool ok = fflush(o->fp) == 0 && fsync(fileno(o->fp)) == 0;
  int e = errno;
  if (fclose(o->fp) != 0 && ok) {
    ok = false;
    e = errno;
  }
  o->fp = NULL;
  if (ok && rename(o->tmp, o->path) != 0) {
    ok = false;
    e = errno;
  }
  if (ok) {
    free(o->tmp);
    o->tmp = NULL;
  }
  ut_out_abort(o);
  errno = e;
  return ok ? 0 : -1;
}

void ut_out_abort(ut_outfile *o) {
  if (o->fp) fclose(o->fp);
  if (o->tmp) unlink(o->tmp);
  free(o->tmp);
  free(o->path);
  memset(o, 0, sizeof *o);
}
