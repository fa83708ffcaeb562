/* test_cache.c - the kernel object cache: hashing, directory selection,
 * round trips, corruption handling, the lock across processes, list and
 * clear.  Every test works in a fresh directory under a mkdtemp root that
 * the suite removes afterwards; the environment is restored too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#endif
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cache.h"

void tu_add_cache_suite(void);

/* Test-only state: the temporary root and the environment to restore. */
static char root[64];
static char cache_dir[128]; /* root/a/b: put must create parents too */
static const char *env_names[] = {"HSAC_CACHE_DIR", "HSAC_NO_CACHE",
                                  "XDG_CACHE_HOME", "HOME"};
#define N_ENV (sizeof env_names / sizeof env_names[0])
static char *env_saved[N_ENV];
static int env_was_set[N_ENV];

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st;
  (void)flag;
  if (ftw->level == 0) return 0; /* keep the root itself */
  return remove(path);
}

static void empty_root(void) {
  nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int suite_init(void) {
  for (size_t i = 0; i < N_ENV; i++) {
    const char *v = getenv(env_names[i]);
    env_was_set[i] = v != NULL;
    env_saved[i] = v ? strdup(v) : NULL;
  }
  snprintf(root, sizeof root, "/tmp/hsac-cache-test-XXXXXX");
  if (!mkdtemp(root)) return -1;
  snprintf(cache_dir, sizeof cache_dir, "%s/a/b", root);
  return 0;
}

static int suite_cleanup(void) {
  empty_root();
  rmdir(root);
  for (size_t i = 0; i < N_ENV; i++) {
    if (env_was_set[i])
      setenv(env_names[i], env_saved[i], 1);
    else
      unsetenv(env_names[i]);
    free(env_saved[i]);
    env_saved[i] = NULL;
  }
  return 0;
}

/* An enabled cache in an empty, not yet created directory. */
static void open_fresh(cg_cache *c) {
  char err[256] = "";
  empty_root();
  setenv("HSAC_CACHE_DIR", cache_dir, 1);
  unsetenv("HSAC_NO_CACHE");
  CU_ASSERT_EQUAL_FATAL(cg_cache_open(c, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(c->dir, cache_dir);
  CU_ASSERT_FALSE(c->disabled);
}

static void key_for(const char *s, char out[33]) {
  cg_hash h;
  cg_hash_init(&h);
  cg_hash_str(&h, s);
  cg_hash_hex(&h, out);
}

static void entry_path(const char *key, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s.o", cache_dir, key);
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Files in the cache directory whose name contains needle. */
static int count_names(const char *needle) {
  DIR *d = opendir(cache_dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && strstr(e->d_name, needle)) n++;
  closedir(d);
  return n;
}

static void touch(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", cache_dir, name);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("x", f);
  fclose(f);
}

static void flip_byte(const char *path, long offset) {
  int fd = open(path, O_RDWR);
  CU_ASSERT_FATAL(fd >= 0);
  unsigned char b;
  CU_ASSERT_EQUAL(pread(fd, &b, 1, offset), 1);
  b ^= 0x01;
  CU_ASSERT_EQUAL(pwrite(fd, &b, 1, offset), 1);
  close(fd);
}

static void put_sample(const cg_cache *c, const char *key, size_t n) {
  char err[256] = "";
  unsigned char *p = malloc(n);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + 3);
  CU_ASSERT_EQUAL(cg_cache_put(c, key, p, n, err, sizeof err), 0);
  free(p);
}

/* get must report corruption, return nothing, and delete the file. */
static void expect_corrupt(const cg_cache *c, const char *key) {
  char err[256] = "", path[256];
  void *data = (void *)1;
  size_t size = 99;
  int corrupt = 0;
  CU_ASSERT_EQUAL(cg_cache_get(c, key, &data, &size, &corrupt, err, sizeof err),
                  0);
  CU_ASSERT_EQUAL(corrupt, 1);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(size, 0);
  CU_ASSERT_NOT_EQUAL(err[0], '\0');
  entry_path(key, path, sizeof path);
  CU_ASSERT_FALSE(exists(path));
}

static void test_hash(void) {
  cg_hash a, b;
  char ha[33], hb[33];

  /* Published FNV-1a 128 vectors: "" is the offset basis. */
  cg_hash_init(&a);
  cg_hash_hex(&a, ha);
  CU_ASSERT_STRING_EQUAL(ha, "6c62272e07bb014262b821756295c58d");
  cg_hash_update(&a, "a", 1);
  cg_hash_hex(&a, ha);
  CU_ASSERT_STRING_EQUAL(ha, "d228cb696f1a8caf78912b704e4a8964");

  /* Incremental updates equal one update of the concatenation. */
  cg_hash_init(&a);
  cg_hash_update(&a, "foo", 3);
  cg_hash_update(&a, "bar", 3);
  cg_hash_init(&b);
  cg_hash_update(&b, "foobar", 6);
  cg_hash_hex(&a, ha);
  cg_hash_hex(&b, hb);
  CU_ASSERT_STRING_EQUAL(ha, hb);
  CU_ASSERT_STRING_EQUAL(ha, "343e1662793c64bf6f0d3597ba446f18");

  /* cg_hash_str keeps string boundaries. */
  cg_hash_init(&a);
  cg_hash_str(&a, "ab");
  cg_hash_str(&a, "c");
  cg_hash_init(&b);
  cg_hash_str(&b, "a");
  cg_hash_str(&b, "bc");
  cg_hash_hex(&a, ha);
  cg_hash_hex(&b, hb);
  CU_ASSERT_STRING_NOT_EQUAL(ha, hb);
  CU_ASSERT_STRING_EQUAL(ha, "3275330bec83d94f708144878a7ef76d");

  /* Identical inputs, identical keys. */
  cg_hash_init(&b);
  cg_hash_str(&b, "ab");
  cg_hash_str(&b, "c");
  cg_hash_hex(&b, hb);
  CU_ASSERT_STRING_EQUAL(ha, hb);

  CU_ASSERT_EQUAL(strlen(ha), 32);
  for (int i = 0; i < 32; i++)
    CU_ASSERT(strchr("0123456789abcdef", ha[i]) != NULL);
}

static void test_open_picks_directory(void) {
  cg_cache c;
  char err[256] = "";

  unsetenv("HSAC_NO_CACHE");
  setenv("HSAC_CACHE_DIR", "/x/y//", 1);
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(c.dir, "/x/y");

  setenv("HSAC_CACHE_DIR", "", 1); /* empty counts as unset */
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(c.dir, "/xdg/hsac");

  setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as XDG says */
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(c.dir, "/home/u/.cache/hsac");

  unsetenv("XDG_CACHE_HOME");
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(c.dir, "/home/u/.cache/hsac");
  CU_ASSERT_FALSE(c.disabled);

  const struct {
    const char *value;
    int disabled;
  } flags[] = {{"", 0}, {"0", 0}, {"1", 1}, {"yes", 1}, {"00", 1}};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    setenv("HSAC_NO_CACHE", flags[i].value, 1);
    CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
    CU_ASSERT_EQUAL(c.disabled, flags[i].disabled);
  }

  /* Nowhere to put it: an error, unless the cache is off anyway. */
  unsetenv("HSAC_CACHE_DIR");
  unsetenv("HOME");
  unsetenv("HSAC_NO_CACHE");
  err[0] = '\0';
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), -1);
  CU_ASSERT_NOT_EQUAL(err[0], '\0');
  setenv("HSAC_NO_CACHE", "1", 1);
  CU_ASSERT_EQUAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT(c.disabled);
  CU_ASSERT_STRING_EQUAL(c.dir, "");
  unsetenv("HSAC_NO_CACHE");
  /* suite_cleanup restores the caller's environment. */
}

static void test_put_then_get(void) {
  cg_cache c;
  char key[33], err[256] = "", path[256];
  open_fresh(&c);
  key_for("round trip", key);

  size_t n = 10000;
  unsigned char *want = malloc(n);
  for (size_t i = 0; i < n; i++) want[i] = (unsigned char)(i * 31 + (i >> 8));
  CU_ASSERT_EQUAL_FATAL(cg_cache_put(&c, key, want, n, err, sizeof err), 0);

  void *data = NULL;
  size_t size = 0;
  int corrupt = -1;
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, &corrupt, err, sizeof err),
                  1);
  CU_ASSERT_EQUAL(corrupt, 0);
  CU_ASSERT_EQUAL_FATAL(size, n);
  CU_ASSERT(memcmp(data, want, n) == 0);
  free(data);

  /* The file: header + payload, private to the user, in a private dir. */
  struct stat st;
  entry_path(key, path, sizeof path);
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL(st.st_size, CG_CACHE_HEADER_SIZE + (off_t)n);
  CU_ASSERT_EQUAL(st.st_mode & 077, 0);
  CU_ASSERT_EQUAL_FATAL(stat(cache_dir, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 077, 0);
  CU_ASSERT_EQUAL(count_names(".tmp."), 0);

  /* A second put replaces the entry. */
  CU_ASSERT_EQUAL(cg_cache_put(&c, key, "new", 3, err, sizeof err), 0);
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, NULL, err, sizeof err),
                  1);
  CU_ASSERT_EQUAL_FATAL(size, 3);
  CU_ASSERT(memcmp(data, "new", 3) == 0);
  free(data);

  /* An empty payload is a valid entry, and data is still non-NULL. */
  CU_ASSERT_EQUAL(cg_cache_put(&c, key, NULL, 0, err, sizeof err), 0);
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, NULL, err, sizeof err),
                  1);
  CU_ASSERT_EQUAL(size, 0);
  CU_ASSERT_PTR_NOT_NULL(data);
  free(data);
  CU_ASSERT_EQUAL(count_names(".o"), 1);
  free(want);
}

static void test_get_missing(void) {
  cg_cache c;
  char key[33], err[256] = "";
  void *data = (void *)1;
  size_t size = 5;
  int corrupt = -1;
  open_fresh(&c);
  key_for("missing", key);
  /* The directory does not exist yet, and get must not create it. */
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, &corrupt, err, sizeof err),
                  0);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(size, 0);
  CU_ASSERT_EQUAL(corrupt, 0);
  CU_ASSERT_FALSE(exists(cache_dir));

  char other[33];
  key_for("other", other);
  put_sample(&c, other, 10);
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, &corrupt, err, sizeof err),
                  0);
  CU_ASSERT_EQUAL(corrupt, 0);
}

static void test_truncated_entry(void) {
  cg_cache c;
  char key[33], path[256];
  open_fresh(&c);
  key_for("truncated", key);
  entry_path(key, path, sizeof path);

  put_sample(&c, key, 1000);
  CU_ASSERT_EQUAL(truncate(path, CG_CACHE_HEADER_SIZE + 1000 - 3), 0);
  expect_corrupt(&c, key);

  put_sample(&c, key, 1000); /* cut inside the header */
  CU_ASSERT_EQUAL(truncate(path, 20), 0);
  expect_corrupt(&c, key);

  put_sample(&c, key, 1000); /* trailing junk is just as wrong */
  int fd = open(path, O_WRONLY | O_APPEND);
  CU_ASSERT_EQUAL(write(fd, "j", 1), 1);
  close(fd);
  expect_corrupt(&c, key);
}

static void test_flipped_payload_byte(void) {
  cg_cache c;
  char key[33], path[256];
  open_fresh(&c);
  key_for("payload", key);
  entry_path(key, path, sizeof path);
  put_sample(&c, key, 1000);
  flip_byte(path, CG_CACHE_HEADER_SIZE + 500);
  expect_corrupt(&c, key);
  put_sample(&c, key, 1000);
  flip_byte(path, CG_CACHE_HEADER_SIZE + 999);
  expect_corrupt(&c, key);
}

static void test_flipped_header_byte(void) {
  cg_cache c;
  char key[33], path[256];
  open_fresh(&c);
  key_for("header", key);
  entry_path(key, path, sizeof path);
  /* magic, length, checksum, first and last key byte */
  const long offsets[] = {0, 7, 8, 15, 16, 23, 24, CG_CACHE_HEADER_SIZE - 1};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    put_sample(&c, key, 100);
    flip_byte(path, offsets[i]);
    expect_corrupt(&c, key);
  }
  /* A valid entry stored under the wrong name is rejected too. */
  char other[33], other_path[256];
  key_for("header 2", other);
  entry_path(other, other_path, sizeof other_path);
  put_sample(&c, other, 100);
  CU_ASSERT_EQUAL(rename(other_path, path), 0);
  expect_corrupt(&c, key);
}

static void test_disabled_writes_nothing(void) {
  cg_cache c;
  char key[33], err[256] = "";
  empty_root();
  setenv("HSAC_CACHE_DIR", cache_dir, 1);
  setenv("HSAC_NO_CACHE", "1", 1);
  CU_ASSERT_EQUAL_FATAL(cg_cache_open(&c, err, sizeof err), 0);
  CU_ASSERT(c.disabled);
  key_for("disabled", key);

  CU_ASSERT_EQUAL(cg_cache_put(&c, key, "abc", 3, err, sizeof err), 0);
  CU_ASSERT_FALSE(exists(cache_dir));
  int fd = cg_cache_lock(&c, key, err, sizeof err);
  CU_ASSERT_EQUAL(fd, -2);
  cg_cache_unlock(fd);
  CU_ASSERT_FALSE(exists(cache_dir));

  /* Even an entry on disk is not read while disabled. */
  unsetenv("HSAC_NO_CACHE");
  cg_cache on;
  CU_ASSERT_EQUAL_FATAL(cg_cache_open(&on, err, sizeof err), 0);
  put_sample(&on, key, 10);
  void *data = NULL;
  size_t size = 0;
  CU_ASSERT_EQUAL(cg_cache_get(&c, key, &data, &size, NULL, err, sizeof err),
                  0);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(count_names(".o"), 1);
}

static void test_invalid_keys(void) {
  cg_cache c;
  char err[256];
  open_fresh(&c);
  const char *bad[] = {
      NULL,
      "",
      "abc",
      "0123456789abcdef0123456789abcde",   /* 31 */
      "0123456789abcdef0123456789abcdef0", /* 33 */
      "0123456789ABCDEF0123456789ABCDEF",  /* upper case */
      "0123456789abcdef0123456789abcdeg",
      "0123456789abcdef0123456789abcd/x",
      "../../../../../../../../etc/passwd",
      "..",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *data = NULL;
    size_t size = 0;
    err[0] = '\0';
    CU_ASSERT_EQUAL(cg_cache_put(&c, bad[i], "x", 1, err, sizeof err), -1);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
    err[0] = '\0';
    CU_ASSERT_EQUAL(
        cg_cache_get(&c, bad[i], &data, &size, NULL, err, sizeof err), -1);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
    CU_ASSERT_PTR_NULL(data);
    err[0] = '\0';
    CU_ASSERT_EQUAL(cg_cache_lock(&c, bad[i], err, sizeof err), -1);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
  }
  CU_ASSERT_FALSE(exists(cache_dir));
  /* err may be omitted. */
  CU_ASSERT_EQUAL(cg_cache_put(&c, "zz", "x", 1, NULL, 0), -1);
}

typedef struct listed {
  int n;
  char keys[8][33];
  int64_t sizes[8];
  int64_t mtimes[8];
} listed;

static void on_entry(void *user, const char *key, int64_t size,
                     int64_t mtime) {
  listed *l = user;
  if (l->n >= 8) return;
  snprintf(l->keys[l->n], 33, "%s", key);
  l->sizes[l->n] = size;
  l->mtimes[l->n] = mtime;
  l->n++;
}

static void test_list(void) {
  cg_cache c;
  char err[256] = "", k[3][33];
  listed l = {0};
  open_fresh(&c);
  CU_ASSERT_EQUAL(cg_cache_list(&c, on_entry, &l, err, sizeof err), 0);

  key_for("list 1", k[0]);
  key_for("list 2", k[1]);
  key_for("list 3", k[2]);
  for (int i = 0; i < 3; i++) put_sample(&c, k[i], 10 * (size_t)(i + 1));
  /* Things list must skip. */
  touch("notes.txt");
  touch("0123456789ABCDEF0123456789ABCDEF.o");
  touch("0123456789abcdef0123456789abcdef.o.bak");
  touch("0123456789abcdef0123456789abcdef.tmp.12.0123456789abcdef");
  touch("0123456789abcdef0123456789abcdef.lock");
  char sub[256];
  snprintf(sub, sizeof sub, "%s/fedcba9876543210fedcba9876543210.o",
           cache_dir);
  CU_ASSERT_EQUAL(mkdir(sub, 0700), 0);

  time_t now = time(NULL);
  CU_ASSERT_EQUAL(cg_cache_list(&c, on_entry, &l, err, sizeof err), 3);
  CU_ASSERT_EQUAL_FATAL(l.n, 3);
  for (int i = 0; i < 3; i++) {
    /* in key order */
    if (i > 0) CU_ASSERT(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    int j = 0;
    while (j < 3 && strcmp(l.keys[i], k[j]) != 0) j++;
    CU_ASSERT_FATAL(j < 3);
    CU_ASSERT_EQUAL(l.sizes[i], CG_CACHE_HEADER_SIZE + 10 * (j + 1));
    CU_ASSERT(l.mtimes[i] > now - 60 && l.mtimes[i] < now + 60);
  }
  CU_ASSERT_EQUAL(cg_cache_list(&c, NULL, NULL, err, sizeof err), 3);
}

static void test_clear(void) {
  cg_cache c;
  char err[256] = "", k[2][33];
  open_fresh(&c);
  CU_ASSERT_EQUAL(cg_cache_clear(&c, err, sizeof err), 0); /* no directory */

  key_for("clear 1", k[0]);
  key_for("clear 2", k[1]);
  put_sample(&c, k[0], 10);
  put_sample(&c, k[1], 10);
  int fd = cg_cache_lock(&c, k[0], err, sizeof err);
  CU_ASSERT(fd >= 0);
  cg_cache_unlock(fd);
  touch("0123456789abcdef0123456789abcdef.tmp.12.0123456789abcdef");
  /* Not ours: all must survive. */
  touch("keep.txt");
  touch("0123456789abcdef0123456789abcdef.txt");
  touch("0123456789abcdef0123456789abcdef.o.bak");
  touch("0123456789abcdef0123456789abcdef.tmp.12.0123456789abcdeF");
  touch("0123456789abcdef0123456789abcdef.tmp..0123456789abcdef");

  CU_ASSERT_EQUAL(cg_cache_clear(&c, err, sizeof err), 4);
  CU_ASSERT_EQUAL(cg_cache_list(&c, NULL, NULL, err, sizeof err), 0);
  CU_ASSERT_EQUAL(count_names(".lock"), 0);
  CU_ASSERT_EQUAL(count_names("keep.txt"), 1);
  CU_ASSERT_EQUAL(count_names("0123456789abcdef0123456789abcdef"), 4);
  CU_ASSERT_EQUAL(cg_cache_clear(&c, err, sizeof err), 0);
}

static void test_clear_keeps_held_lock(void) {
  cg_cache c;
  char err[256] = "", key[33];
  open_fresh(&c);
  key_for("held", key);
  int fd = cg_cache_lock(&c, key, err, sizeof err);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(cg_cache_clear(&c, err, sizeof err), 0);
  CU_ASSERT_EQUAL(count_names(".lock"), 1);
  cg_cache_unlock(fd);
  CU_ASSERT_EQUAL(cg_cache_clear(&c, err, sizeof err), 1);
  CU_ASSERT_EQUAL(count_names(".lock"), 0);
  /* And the lock works again after its file was removed. */
  fd = cg_cache_lock(&c, key, err, sizeof err);
  CU_ASSERT(fd >= 0);
  cg_cache_unlock(fd);
}

static void test_put_removes_stale_temporaries(void) {
  cg_cache c;
  char err[256] = "", key[33], path[256];
  open_fresh(&c);
  key_for("stale", key);
  put_sample(&c, key, 10); /* creates the directory */
  const char *old_tmp =
      "00000000000000000000000000000000.tmp.4242.00000000000000aa";
  const char *new_tmp =
      "00000000000000000000000000000000.tmp.4243.00000000000000bb";
  touch(old_tmp);
  touch(new_tmp);
  touch("old-unrelated.tmp");
  struct timespec old[2] = {{time(NULL) - 2 * 3600, 0},
                            {time(NULL) - 2 * 3600, 0}};
  snprintf(path, sizeof path, "%s/%s", cache_dir, old_tmp);
  CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, old, 0), 0);
  snprintf(path, sizeof path, "%s/old-unrelated.tmp", cache_dir);
  CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, old, 0), 0);

  CU_ASSERT_EQUAL(cg_cache_put(&c, key, "x", 1, err, sizeof err), 0);
  CU_ASSERT_EQUAL(count_names(".tmp.4242."), 0);
  CU_ASSERT_EQUAL(count_names(".tmp.4243."), 1); /* may be in progress */
  CU_ASSERT_EQUAL(count_names("old-unrelated.tmp"), 1);
}

/* A child process: takes the lock, writes the entry if it is missing, and
 * reports 'W' (wrote) or 'R' (found it) on the pipe.  Exit 0 on success. */
static void lock_child(int report) {
  cg_cache c;
  char err[256], key[33];
  key_for("contended", key);
  if (cg_cache_open(&c, err, sizeof err) != 0) _exit(10);
  int fd = cg_cache_lock(&c, key, err, sizeof err);
  if (fd < 0) _exit(11);
  void *data = NULL;
  size_t size = 0;
  int rc = cg_cache_get(&c, key, &data, &size, NULL, err, sizeof err);
  char what;
  if (rc == 1) {
    what = 'R';
    if (size != 5 || memcmp(data, "kern!", 5) != 0) _exit(12);
    free(data);
  } else if (rc == 0) {
    what = 'W';
    /* Long enough that the other child is surely waiting on the lock. */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (cg_cache_put(&c, key, "kern!", 5, err, sizeof err) != 0) _exit(13);
  } else {
    _exit(14);
  }
  cg_cache_unlock(fd);
  if (write(report, &what, 1) != 1) _exit(15);
  _exit(0);
}

static void test_lock_across_processes(void) {
  cg_cache c;
  char err[256] = "", key[33], lock_path[256];
  open_fresh(&c);
  key_for("contended", key);

  int p[2];
  CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
  fflush(NULL);
  pid_t kids[2];
  for (int i = 0; i < 2; i++) {
    kids[i] = fork();
    CU_ASSERT_FATAL(kids[i] >= 0);
    if (kids[i] == 0) {
      close(p[0]);
      lock_child(p[1]);
    }
  }
  close(p[1]);
  for (int i = 0; i < 2; i++) {
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(kids[i], &status, 0), kids[i]);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
  }
  char got[3] = "";
  CU_ASSERT_EQUAL(read(p[0], got, 2), 2);
  close(p[0]);
  /* One compiled, the other found its entry: the lock serialized them. */
  CU_ASSERT((got[0] == 'W' && got[1] == 'R') ||
            (got[0] == 'R' && got[1] == 'W'));
  CU_ASSERT_EQUAL(cg_cache_list(&c, NULL, NULL, err, sizeof err), 1);
  CU_ASSERT_EQUAL(count_names(".tmp."), 0);

  /* While the parent holds the lock, another process cannot take it. */
  int fd = cg_cache_lock(&c, key, err, sizeof err);
  CU_ASSERT_FATAL(fd >= 0);
  snprintf(lock_path, sizeof lock_path, "%s/%s.lock", cache_dir, key);
  fflush(NULL);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    int lf = open(lock_path, O_RDWR);
    if (lf < 0) _exit(20);
    _exit(flock(lf, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK ? 0 : 21);
  }
  int status = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cg_cache_unlock(fd);
}

void tu_add_cache_suite(void) {
  CU_pSuite s = CU_add_suite("cache", suite_init, suite_cleanup);
  CU_add_test(s, "hash vectors and string boundaries", test_hash);
  CU_add_test(s, "directory from the environment", test_open_picks_directory);
  CU_add_test(s, "put then get", test_put_then_get);
  CU_add_test(s, "get of a missing key", test_get_missing);
  CU_add_test(s, "truncated entry is removed", test_truncated_entry);
  CU_add_test(s, "flipped payload byte is removed", test_flipped_payload_byte);
  CU_add_test(s, "flipped header byte is removed", test_flipped_header_byte);
  CU_add_test(s, "HSAC_NO_CACHE writes nothing", test_disabled_writes_nothing);
  CU_add_test(s, "invalid keys are rejected", test_invalid_keys);
  CU_add_test(s, "list", test_list);
  CU_add_test(s, "clear removes only cache files", test_clear);
  CU_add_test(s, "clear keeps a held lock", test_clear_keeps_held_lock);
  CU_add_test(s, "put removes stale temporaries",
              test_put_removes_stale_temporaries);
  CU_add_test(s, "lock across processes", test_lock_across_processes);
}
