/* tuning.c - the tuning database of `hsac tune` (format in cuda.h).
 *
 * The file is small (an entry per device and shape bucket), so it is read
 * whole and rewritten whole: a writer takes PATH.lock, reads the file
 * again (another tuner may have added entries since), merges its own and
 * renames a complete temporary over the file (util/fileio.h), so a reader
 * sees the old database or the new one, never a mix. */
#include "codegen/cuda/cuda.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "codegen/cache.h"
#include "util/fileio.h"

/* A database past this size is not one hsac wrote. */
#define TUNING_MAX_BYTES (16u << 20)

int cg_tuning_path(char *buf, size_t size, char *err, size_t errsize) {
  const char *env = getenv("HSAC_TUNING_DB");
  if (env && env[0]) {
    if ((size_t)snprintf(buf, size, "%s", env) >= size) {
      snprintf(err, errsize, "HSAC_TUNING_DB is too long");
      return -1;
    }
    return 0;
  }
  cg_cache c;
  if (cg_cache_open(&c, err, errsize)) return -1;
  if (!c.dir[0]) {
    snprintf(err, errsize, "no directory for the tuning database (set HSAC_TUNING_DB or HOME)");
    return -1;
  }
  if ((size_t)snprintf(buf, size, "%s/tuning.tsv", c.dir) >= size) {
    snprintf(err, errsize, "the tuning database's path is too long");
    return -1;
  }
  return 0;
}

void cg_tuning_free(cg_tuning *t) {
  free(t->e);
  memset(t, 0, sizeof *t);
}

static bool same_dev(const cg_tuning_device *a, const cg_tuning_device *b) {
  return !strcmp(a->name, b->name) && !strcmp(a->arch, b->arch) &&
         !strcmp(a->driver, b->driver) && !strcmp(a->compiler, b->compiler);
}

const cg_tuning_entry *cg_tuning_find(const cg_tuning *t, const cg_tuning_device *dev,
                                      const char *bucket) {
  for (int i = 0; i < t->n; i++)
    if (same_dev(&t->e[i].dev, dev) && !strcmp(t->e[i].bucket, bucket)) return &t->e[i];
  return NULL;
}

int cg_tuning_set(cg_tuning *t, const cg_tuning_entry *e) {
  for (int i = 0; i < t->n; i++)
    if (same_dev(&t->e[i].dev, &e->dev) && !strcmp(t->e[i].bucket, e->bucket)) {
      t->e[i] = *e;
      return 0;
    }
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 16;
    cg_tuning_entry *p = realloc(t->e, (size_t)cap * sizeof *p);
    if (!p) return -1;
    t->e = p;
    t->cap = cap;
  }
  t->e[t->n++] = *e;
  return 0;
}

/* Copies field f (len bytes) into out (size bytes): false when it does not
 * fit or is empty. */
static bool field(const char *f, size_t len, char *out, size_t size) {
  if (len == 0 || len >= size) return false;
  memcpy(out, f, len);
  out[len] = 0;
  return true;
}

static bool number(const char *f, size_t len, double *out) {
  char tmp[64];
  if (!field(f, len, tmp, sizeof tmp)) return false;
  char *end;
  errno = 0;
  double v = strtod(tmp, &end);
  if (errno || *end || !(v >= 0.0) || v > 1e12) return false;
  *out = v;
  return true;
}

/* One line (NUL-free, no newline) into e; NULL, or what is wrong. */
static const char *parse_line(const char *s, size_t n, cg_tuning_entry *e) {
  const char *f[8];
  size_t len[8];
  int nf = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++)
    if (i == n || s[i] == '\t') {
      if (nf == 8) return "more than 8 tab-separated fields";
      f[nf] = s + start;
      len[nf++] = i - start;
      start = i + 1;
    }
  if (nf != 8) return "fewer than 8 tab-separated fields";
  memset(e, 0, sizeof *e);
  if (!field(f[0], len[0], e->dev.name, sizeof e->dev.name)) return "bad device name";
  if (!field(f[1], len[1], e->dev.arch, sizeof e->dev.arch)) return "bad architecture";
  if (!field(f[2], len[2], e->dev.driver, sizeof e->dev.driver)) return "bad driver version";
  if (!field(f[3], len[3], e->dev.compiler, sizeof e->dev.compiler)) return "bad compiler";
  if (!field(f[4], len[4], e->bucket, sizeof e->bucket)) return "bad shape bucket";
  if (!field(f[5], len[5], e->config, sizeof e->config)) return "bad configuration name";
  if (!number(f[6], len[6], &e->us)) return "bad time (microseconds)";
  if (!number(f[7], len[7], &e->default_us)) return "bad default time (microseconds)";
  return NULL;
}

int cg_tuning_load(cg_tuning *t, const char *path, char *err, size_t errsize) {
  memset(t, 0, sizeof *t);
  size_t len = 0;
  char *text = ut_read_regular(path, TUNING_MAX_BYTES, &len);
  if (!text) {
    if (errno == ENOENT) return 0;
    snprintf(err, errsize, "%s: cannot read the tuning database: %s", path,
             errno == EFBIG ? "larger than 16 MiB" : ut_file_strerror(errno));
    return -1;
  }
  if (memchr(text, 0, len)) {
    snprintf(err, errsize, "%s: not a tuning database (it holds NUL bytes)", path);
    free(text);
    return -1;
  }
  int line = 0;
  for (size_t p = 0; p < len;) {
    size_t q = p;
    while (q < len && text[q] != '\n') q++;
    line++;
    size_t n = q - p;
    if (n && text[p + n - 1] == '\r') n--;
    if (n && text[p] != '#') {
      cg_tuning_entry e;
      const char *bad = parse_line(text + p, n, &e);
      if (bad) {
        snprintf(err, errsize, "%s:%d: error: %s in the tuning database (fix the line, or "
                 "delete the file: hsac tune writes it again)", path, line, bad);
        free(text);
        cg_tuning_free(t);
        return -1;
      }
      if (cg_tuning_set(t, &e)) {
        snprintf(err, errsize, "out of memory");
        free(text);
        cg_tuning_free(t);
        return -1;
      }
    }
    p = q + 1;
  }
  free(text);
  return 0;
}

/* s with tabs and line breaks made spaces (they would split the record). */
static void clean(FILE *f, const char *s) {
  for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

/* The database's folder made and its lock file opened (not locked): an
 * fd, or -1 with err. */
static int open_lock(const char *path, char *err, size_t errsize) {
  char dir[4096], lock[4200], inner[512];
  if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir ||
      (size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock) {
    snprintf(err, errsize, "the tuning database's path is too long");
    return -1;
  }
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    if (cg_cache_mkdirs(dir, inner, sizeof inner)) {
      snprintf(err, errsize, "%s: no folder for the tuning database (%s)", path, inner);
      return -1;
    }
  }
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) snprintf(err, errsize, "%s: cannot create: %s", lock, strerror(errno));
  return fd;
}

int cg_tuning_writable(const char *path, char *err, size_t errsize) {
  int fd = open_lock(path, err, errsize);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

int cg_tuning_save(const char *path, const cg_tuning_entry *e, int n, char *err,
                   size_t errsize) {
  int fd = open_lock(path, err, errsize);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX) != 0) {
    snprintf(err, errsize, "%s.lock: cannot lock: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  cg_tuning t;
  int rc = -1;
  if (cg_tuning_load(&t, path, err, errsize) == 0) {
    rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
      if (cg_tuning_set(&t, &e[i])) {
        snprintf(err, errsize, "out of memory");
        rc = -1;
      }
    ut_outfile o;
    if (rc == 0 && ut_out_begin(&o, path) != 0) {
      snprintf(err, errsize, "%s: cannot write: %s", path, ut_file_strerror(errno));
      rc = -1;
    } else if (rc == 0) {
      fprintf(o.fp, "# hsac tuning database (docs/cuda.md, \"Tuning\"): one line per device "
                    "and shape bucket\n# device\tarch\tdriver\tcompiler\tbucket\tconfig\tus\t"
                    "default_us\n");
      for (int i = 0; i < t.n; i++) {
        const cg_tuning_entry *x = &t.e[i];
        const char *f[6] = {x->dev.name, x->dev.arch, x->dev.driver, x->dev.compiler, x->bucket,
                            x->config};
        for (int j = 0; j < 6; j++) {
          clean(o.fp, f[j]);
          fputc('\t', o.fp);
        }
        fprintf(o.fp, "%.3f\t%.3f\n", x->us, x->default_us);
      }
      if (ferror(o.fp)) {
        snprintf(err, errsize, "%s: cannot write", path);
        ut_out_abort(&o);
        rc = -1;
      } else if (ut_out_commit(&o) != 0) {
        snprintf(err, errsize, "%s: cannot write: %s", path, ut_file_strerror(errno));
        rc = -1;
      }
    }
    cg_tuning_free(&t);
  }
  flock(fd, LOCK_UN);
  close(fd);
  return rc;
}
