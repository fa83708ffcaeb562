/* cache.c - the on-disk cache of compiled kernel objects (see cache.h for
 * the directory layout and the entry file format).
 *
 * Writers never modify a visible file: they write a private temporary and
 * rename it over the entry, so a reader sees either the old entry, the new
 * one, or none.  The checksum catches what atomic rename cannot (a crash
 * before the data reached the disk, a damaged disk, a stray edit). */
#include "codegen/cache.h"
#include "util/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Room for the longest name the cache makes, KEY.tmp.PID.RAND, plus "/". */
#define NAME_ROOM 80
#define PATH_SIZE (sizeof(((cg_cache *)0)->dir) + NAME_ROOM)

static void set_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errsize, const char *fmt, ...) {
  if (!err || errsize == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errsize, fmt, ap);
  va_end(ap);
}

/* ---- hashing ---- */

#define FNV64_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)
/* The 128-bit prime is 2^88 + 0x13b; the basis is from the FNV spec. */
#define FNV128_BASIS_HI UINT64_C(0x6c62272e07bb0142)
#define FNV128_BASIS_LO UINT64_C(0x62b821756295c58d)
#define FNV128_PRIME_LO UINT64_C(0x13b)

static uint64_t fnv64(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = FNV64_BASIS;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= FNV64_PRIME;
  }
  return h;
}

void cg_hash_init(cg_hash *h) {
  h->h[0] = FNV128_BASIS_LO;
  h->h[1] = FNV128_BASIS_HI;
}

void cg_hash_update(cg_hash *h, const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t lo = h->h[0], hi = h->h[1];
  for (size_t i = 0; i < n; i++) {
    lo ^= p[i];
    /* (hi:lo) * (2^88 + 0x13b) mod 2^128, in plain 64-bit arithmetic so it
     * needs no __int128: lo * 0x13b as a 128-bit product from two 32-bit
     * halves, plus hi * 0x13b and lo << 88 into the high word. */
    uint64_t t1 = (lo & 0xffffffffu) * FNV128_PRIME_LO;
    uint64_t t2 = (lo >> 32) * FNV128_PRIME_LO;
    uint64_t new_lo = t1 + (t2 << 32);
    uint64_t carry = new_lo < t1;
    hi = hi * FNV128_PRIME_LO + (t2 >> 32) + carry + (lo << 24);
    lo = new_lo;
  }
  h->h[0] = lo;
  h->h[1] = hi;
}

void cg_hash_str(cg_hash *h, const char *s) {
  cg_hash_update(h, s, strlen(s) + 1);
}

void cg_hash_hex(const cg_hash *h, char out[33]) {
  snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, h->h[1], h->h[0]);
}

/* ---- names and paths ---- */

static int is_hex_lower(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* Exactly 32 lowercase hex characters: keeps keys inside the directory and
 * gives each entry one spelling. */
static int valid_key(const char *key) {
  if (!key) return 0;
  for (int i = 0; i < CG_CACHE_KEY_LEN; i++)
    if (!is_hex_lower(key[i])) return 0;
  return key[CG_CACHE_KEY_LEN] == '\0';
}

enum name_kind { NAME_OTHER = 0, NAME_ENTRY = 1, NAME_LOCK = 2, NAME_TEMP = 4 };

/* Which of the cache's own naming patterns a directory entry matches. */
static enum name_kind classify(const char *name) {
  for (int i = 0; i < CG_CACHE_KEY_LEN; i++)
    if (!is_hex_lower(name[i])) return NAME_OTHER;
  const char *s = name + CG_CACHE_KEY_LEN;
  if (strcmp(s, ".o") == 0) return NAME_ENTRY;
  if (strcmp(s, ".lock") == 0) return NAME_LOCK;
  if (strncmp(s, ".tmp.", 5) != 0) return NAME_OTHER;
  s += 5;
  int digits = 0;
  while (*s >= '0' && *s <= '9') s++, digits++;
  if (digits < 1 || digits > 10 || *s != '.') return NAME_OTHER;
  s++;
  for (int i = 0; i < 16; i++)
    if (!is_hex_lower(s[i])) return NAME_OTHER;
  return s[16] == '\0' ? NAME_TEMP : NAME_OTHER;
}

static int make_path(char *buf, const cg_cache *c, const char *name,
                     char *err, size_t errsize) {
  int n = snprintf(buf, PATH_SIZE, "%s/%s", c->dir, name);
  if (n < 0 || (size_t)n >= PATH_SIZE) {
    set_err(err, errsize, "cache: path too long in %s", c->dir);
    return -1;
  }
  return 0;
}

static int key_path(char *buf, const cg_cache *c, const char *key,
                    const char *suffix, char *err, size_t errsize) {
  char name[NAME_ROOM];
  snprintf(name, sizeof name, "%s%s", key, suffix);
  return make_path(buf, c, name, err, errsize);
}

/* mkdir -p with mode 0700 for the directories it creates (existing ones
 * keep their mode). */
int cg_cache_mkdirs(const char *dir, char *err, size_t errsize) {
  char buf[PATH_SIZE];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf) {
    set_err(err, errsize, "cache: no usable cache directory");
    return -1;
  }
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    if (buf[i - 1] == '/') continue; /* "a//b" */
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
      set_err(err, errsize, "cache: cannot create directory %s: %s", buf,
              strerror(errno));
      return -1;
    }
    buf[i] = saved;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    set_err(err, errsize, "cache: %s is not a directory", dir);
    return -1;
  }
  return 0;
}

/* qsort comparator: the elements are char pointers. */
static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in the directory matching any kind in mask, sorted so callers act
 * in a stable order.  Collected before acting because removing entries
 * while readdir runs is unspecified.  Returns 0 (a missing directory gives
 * no names) or -1 with err. */
static int collect(const cg_cache *c, int mask, char ***names_out,
                   size_t *count_out, char *err, size_t errsize) {
  *names_out = NULL;
  *count_out = 0;
  if (c->dir[0] == '\0') return 0;
  DIR *d = opendir(c->dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    set_err(err, errsize, "cache: cannot read directory %s: %s", c->dir,
            strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t count = 0, cap = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno == 0) break;
      set_err(err, errsize, "cache: cannot read directory %s: %s", c->dir,
              strerror(errno));
      goto fail;
    }
    if (!((int)classify(e->d_name) & mask)) continue;
    if (count == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **grown = realloc(names, ncap * sizeof *names);
      if (!grown) goto oom;
      names = grown;
      cap = ncap;
    }
    size_t len = strlen(e->d_name);
    char *copy = malloc(len + 1);
    if (!copy) goto oom;
    memcpy(copy, e->d_name, len + 1);
    names[count++] = copy;
  }
  closedir(d);
  if (count > 1) {
    qsort(names, count, sizeof *names, compare_names);
  }
  *names_out = names;
  *count_out = count;
  return 0;
oom:
  set_err(err, errsize, "cache: out of memory");
fail:
  closedir(d);
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
  return -1;
}

static void free_names(char **names, size_t count) {
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
}

/* ---- low-level I/O ---- */

static int write_all(int fd, const void *data, size_t n) {
  const unsigned char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads up to n bytes, stopping early only at end of file.  Returns the
 * number read, or -1 on an error. */
static ssize_t read_full(int fd, void *data, size_t n) {
  unsigned char *p = data;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static void put_u64le(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Random part of a temporary's name.  O_EXCL makes names unique anyway;
 * randomness only keeps retries rare, so the clock is a fine fallback. */
static uint64_t random_u64(unsigned attempt) {
  uint64_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t mix[3] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, attempt};
  return fnv64(mix, sizeof mix);
}

/* ---- the API ---- */

int cg_cache_open(cg_cache *c, char *err, size_t errsize) {
  memset(c, 0, sizeof *c);
  const char *no = getenv("HSAC_NO_CACHE");
  c->disabled = no && no[0] && strcmp(no, "0") != 0;

  const char *d = getenv("HSAC_CACHE_DIR");
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  int n;
  if (d && d[0])
    n = snprintf(c->dir, sizeof c->dir, "%s", d);
  else if (xdg && xdg[0] == '/') /* XDG: relative values are ignored */
    n = snprintf(c->dir, sizeof c->dir, "%s/hsac", xdg);
  else if (home && home[0])
    n = snprintf(c->dir, sizeof c->dir, "%s/.cache/hsac", home);
  else {
    if (c->disabled) return 0;
    set_err(err, errsize,
            "cache: no cache directory (set HSAC_CACHE_DIR or HOME)");
    return -1;
  }
  if (n < 0 || (size_t)n >= sizeof c->dir) {
    c->dir[0] = '\0';
    if (c->disabled) return 0;
    set_err(err, errsize, "cache: cache directory path too long");
    return -1;
  }
  /* "dir/" + "/KEY.o" would still work; stripping keeps messages clean. */
  size_t len = (size_t)n;
  while (len > 1 && c->dir[len - 1] == '/') c->dir[--len] = '\0';
  return 0;
}

/* Deletes a corrupt entry, but only if the path still names the file we
 * read: another process may have just renamed a good entry over it. */
static int remove_corrupt(int fd, const char *path) {
  struct stat mine, now;
  if (fstat(fd, &mine) != 0) return -1;
  if (stat(path, &now) != 0) return errno == ENOENT ? 0 : -1;
  if (mine.st_dev != now.st_dev || mine.st_ino != now.st_ino) return 0;
  if (unlink(path) != 0 && errno != ENOENT) return -1;
  return 0;
}

int cg_cache_get(const cg_cache *c, const char *key, void **data,
                 size_t *size, int *corrupt, char *err, size_t errsize) {
  *data = NULL;
  *size = 0;
  if (corrupt) *corrupt = 0;
  if (!valid_key(key)) {
    set_err(err, errsize, "cache: invalid key (need 32 lowercase hex)");
    return -1;
  }
  if (c->disabled) return 0;

  char path[PATH_SIZE];
  if (key_path(path, c, key, ".o", err, errsize)) return -1;
  struct stat st;
  int fd = ut_open_regular(path, &st); /* a FIFO planted here never blocks */
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    set_err(err, errsize, "cache: cannot open %s: %s", path, ut_file_strerror(errno));
    return -1;
  }

  unsigned char hdr[CG_CACHE_HEADER_SIZE];
  unsigned char *buf = NULL;
  const char *why = NULL;
  uint64_t len = 0;
  ssize_t got;
  if ((got = read_full(fd, hdr, sizeof hdr)) < 0) goto io_error;
  if ((size_t)got < sizeof hdr) {
    why = "truncated header";
    goto bad;
  }
  if (memcmp(hdr, CG_CACHE_MAGIC, 8) != 0) {
    why = "bad magic";
    goto bad;
  }
  len = get_u64le(hdr + 8);
  /* The length must account for the whole file: catches truncation and
   * trailing junk before anything is allocated from it. */
  if (st.st_size < CG_CACHE_HEADER_SIZE ||
      len != (uint64_t)st.st_size - CG_CACHE_HEADER_SIZE || len > SIZE_MAX) {
    why = "length mismatch";
    goto bad;
  }
  if (memcmp(hdr + 24, key, CG_CACHE_KEY_LEN) != 0) {
    why = "key mismatch";
    goto bad;
  }
  buf = malloc(len ? (size_t)len : 1);
  if (!buf) {
    set_err(err, errsize, "cache: out of memory reading %s", path);
    close(fd);
    return -1;
  }
  if ((got = read_full(fd, buf, (size_t)len)) < 0) goto io_error;
  if ((uint64_t)got < len) {
    why = "truncated payload";
    goto bad;
  }
  if (fnv64(buf, (size_t)len) != get_u64le(hdr + 16)) {
    why = "checksum mismatch";
    goto bad;
  }
  close(fd);
  *data = buf;
  *size = (size_t)len;
  return 1;

io_error:
  set_err(err, errsize, "cache: cannot read %s: %s", path, strerror(errno));
  free(buf);
  close(fd);
  return -1;
bad:
  free(buf);
  if (corrupt) *corrupt = 1;
  if (remove_corrupt(fd, path) != 0) {
    set_err(err, errsize, "cache: corrupt entry %s (%s) cannot be removed: %s",
            path, why, strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  set_err(err, errsize, "cache: removed corrupt entry %s (%s)", path, why);
  return 0;
}

/* Temporaries of killed processes would otherwise pile up forever. */
static void remove_stale_temps(const cg_cache *c) {
  char **names;
  size_t count;
  if (collect(c, NAME_TEMP, &names, &count, NULL, 0) != 0) return;
  time_t limit = time(NULL) - CG_CACHE_STALE_SECONDS;
  for (size_t i = 0; i < count; i++) {
    char path[PATH_SIZE];
    struct stat st;
    if (make_path(path, c, names[i], NULL, 0) != 0) continue;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < limit)
      unlink(path);
  }
  free_names(names, count);
}

int cg_cache_put(const cg_cache *c, const char *key, const void *data,
                 size_t size, char *err, size_t errsize) {
  if (!valid_key(key)) {
    set_err(err, errsize, "cache: invalid key (need 32 lowercase hex)");
    return -1;
  }
  if (c->disabled) return 0;
  if (!data && size > 0) {
    set_err(err, errsize, "cache: no data to store");
    return -1;
  }
  if (cg_cache_mkdirs(c->dir, err, errsize)) return -1;
  remove_stale_temps(c);

  char path[PATH_SIZE], tmp[PATH_SIZE];
  if (key_path(path, c, key, ".o", err, errsize)) return -1;
  int fd = -1;
  for (unsigned attempt = 0; attempt < 100 && fd < 0; attempt++) {
    char name[NAME_ROOM];
    snprintf(name, sizeof name, "%s.tmp.%ld.%016" PRIx64, key,
             (long)getpid(), random_u64(attempt));
    if (make_path(tmp, c, name, err, errsize)) return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      set_err(err, errsize, "cache: cannot create %s: %s", tmp,
              strerror(errno));
      return -1;
    }
  }
  if (fd < 0) {
    set_err(err, errsize, "cache: cannot find a free temporary name in %s",
            c->dir);
    return -1;
  }

  unsigned char hdr[CG_CACHE_HEADER_SIZE];
  memcpy(hdr, CG_CACHE_MAGIC, 8);
  put_u64le(hdr + 8, (uint64_t)size);
  put_u64le(hdr + 16, fnv64(data, size));
  memcpy(hdr + 24, key, CG_CACHE_KEY_LEN);
  const char *what;
  if (write_all(fd, hdr, sizeof hdr) != 0 ||
      (size > 0 && write_all(fd, data, size) != 0)) {
    what = "write";
    goto fail;
  }
  /* Data on disk before the rename makes it visible, so a crash cannot
   * leave a complete-looking name over missing data. */
  if (fsync(fd) != 0) {
    what = "sync";
    goto fail;
  }
  int close_rc = close(fd);
  fd = -1;
  if (close_rc != 0) {
    what = "close";
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    what = "rename";
    goto fail;
  }
  return 0;
fail:
  set_err(err, errsize, "cache: cannot %s %s: %s", what, tmp, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(tmp);
  return -1;
}

int cg_cache_lock(const cg_cache *c, const char *key, char *err,
                  size_t errsize) {
  if (!valid_key(key)) {
    set_err(err, errsize, "cache: invalid key (need 32 lowercase hex)");
    return -1;
  }
  if (c->disabled) return -2;
  char path[PATH_SIZE];
  if (key_path(path, c, key, ".lock", err, errsize)) return -1;
  /* cg_cache_clear may unlink the lock file between our open and flock;
   * a lock on an unlinked file excludes nobody, so check that the path
   * still names the locked file and start over if not. */
  for (int attempt = 0; attempt < 100; attempt++) {
    if (cg_cache_mkdirs(c->dir, err, errsize)) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      set_err(err, errsize, "cache: cannot open %s: %s", path,
              strerror(errno));
      return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      set_err(err, errsize, "cache: cannot lock %s: %s", path,
              strerror(errno));
      close(fd);
      return -1;
    }
    struct stat held, now;
    if (fstat(fd, &held) != 0) {
      set_err(err, errsize, "cache: cannot stat %s: %s", path,
              strerror(errno));
      close(fd);
      return -1;
    }
    if (stat(path, &now) == 0) {
      if (held.st_dev == now.st_dev && held.st_ino == now.st_ino) return fd;
    } else if (errno != ENOENT) {
      set_err(err, errsize, "cache: cannot stat %s: %s", path,
              strerror(errno));
      close(fd);
      return -1;
    }
    close(fd);
  }
  set_err(err, errsize, "cache: cannot lock %s: lock file keeps vanishing",
          path);
  return -1;
}

void cg_cache_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing the last descriptor drops the flock */
}

int cg_cache_list(const cg_cache *c,
                  void (*fn)(void *user, const char *key, int64_t size,
                             int64_t mtime),
                  void *user, char *err, size_t errsize) {
  char **names;
  size_t count;
  if (collect(c, NAME_ENTRY, &names, &count, err, errsize) != 0) return -1;
  int listed = 0;
  for (size_t i = 0; i < count; i++) {
    char path[PATH_SIZE];
    struct stat st;
    if (make_path(path, c, names[i], err, errsize) != 0) {
      free_names(names, count);
      return -1;
    }
    if (lstat(path, &st) != 0) {
      if (errno == ENOENT) continue; /* removed since readdir */
      set_err(err, errsize, "cache: cannot stat %s: %s", path,
              strerror(errno));
      free_names(names, count);
      return -1;
    }
    if (!S_ISREG(st.st_mode)) continue;
    char key[CG_CACHE_KEY_LEN + 1];
    memcpy(key, names[i], CG_CACHE_KEY_LEN);
    key[CG_CACHE_KEY_LEN] = '\0';
    if (fn) fn(user, key, (int64_t)st.st_size, (int64_t)st.st_mtime);
    listed++;
  }
  free_names(names, count);
  return listed;
}

/* Removes a lock file only while holding its lock, so a holder's lock is
 * never pulled from under it.  Returns 1 removed, 0 kept, -1 error. */
static int remove_lock_file(const char *path) {
  int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK || e == EINTR) return 0;
    errno = e;
    return -1;
  }
  int rc = unlink(path) == 0 ? 1 : (errno == ENOENT ? 0 : -1);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

int cg_cache_clear(const cg_cache *c, char *err, size_t errsize) {
  char **names;
  size_t count;
  if (collect(c, NAME_ENTRY | NAME_LOCK | NAME_TEMP, &names, &count, err,
              errsize) != 0)
    return -1;
  int removed = 0;
  for (size_t i = 0; i < count; i++) {
    char path[PATH_SIZE];
    struct stat st;
    if (make_path(path, c, names[i], err, errsize) != 0) goto fail;
    if (lstat(path, &st) != 0) {
      if (errno == ENOENT) continue;
      goto io_error;
    }
    if (S_ISDIR(st.st_mode)) continue; /* not one of ours */
    int rc;
    if (classify(names[i]) == NAME_LOCK && S_ISREG(st.st_mode))
      rc = remove_lock_file(path);
    else
      rc = unlink(path) == 0 ? 1 : (errno == ENOENT ? 0 : -1);
    if (rc < 0) goto io_error;
    removed += rc;
    continue;
  io_error:
    set_err(err, errsize, "cache: cannot remove %s: %s", path,
            strerror(errno));
    goto fail;
  }
  free_names(names, count);
  return removed;
fail:
  free_names(names, count);
  return -1;
}
