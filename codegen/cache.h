/* cache.h - the on-disk cache of compiled kernel objects.
 *
 * One entry is one object file holding every compiled kernel of a model,
 * stored under a key the caller computes (with cg_hash) from everything
 * that affects the generated code.  Entries live as DIR/KEY.o where KEY is
 * exactly 32 lowercase hex characters; nothing else is accepted as a key,
 * so a key can never name a file outside the directory.
 *
 * Entry file format (all integers little-endian):
 *   offset  size  field
 *        0     8  magic "HSACOBJ1"
 *        8     8  payload length in bytes (u64)
 *       16     8  FNV-1a 64 checksum of the payload (u64)
 *       24    32  the key, hex, no NUL
 *       56     n  payload (the object file)
 * A reader checks every field and the file size; any mismatch makes the
 * entry corrupt, and a corrupt entry is deleted, never returned.
 *
 * Other files the cache makes in DIR (and the only ones it ever removes):
 *   KEY.lock                  lock files for cg_cache_lock
 *   KEY.tmp.PID.RAND          entries being written (PID decimal, RAND 16
 *                             hex); renamed over KEY.o when complete
 *
 * Every function returns errors with a message in a caller-provided buffer
 * (err may be NULL or errsize 0 when the caller does not want it); none
 * prints or exits.  Safe across processes; the struct holds no mutable
 * state, so threads may share one cg_cache. */
#ifndef HSAC_CODEGEN_CACHE_H
#define HSAC_CODEGEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CG_CACHE_MAGIC "HSACOBJ1"
#define CG_CACHE_KEY_LEN 32
#define CG_CACHE_HEADER_SIZE 56
/* Temporaries older than this were left by killed processes. */
#define CG_CACHE_STALE_SECONDS 3600

typedef struct cg_cache {
  char dir[4096]; /* no trailing slash; "" when unresolved (only if disabled) */
  int disabled;
} cg_cache;

/* Picks the directory: $HSAC_CACHE_DIR if set and non-empty, else
 * $XDG_CACHE_HOME/hsac (only when absolute, as the XDG spec says), else
 * $HOME/.cache/hsac.  Disabled when HSAC_NO_CACHE is set to a non-empty
 * value other than "0".  Creates nothing: the directory (mode 0700, parents
 * too) is made on the first put or lock.  Returns 0, or -1 with err when no
 * directory can be determined or the path is too long (a disabled cache
 * never fails: dir is then left "" if unresolved). */
int cg_cache_open(cg_cache *c, char *err, size_t errsize);

/* mkdir -p dir, mode 0700 for the directories it creates (existing ones
 * keep theirs).  0, or -1 with err. */
int cg_cache_mkdirs(const char *dir, char *err, size_t errsize);

/* 128-bit FNV-1a, updated incrementally.  h[0] holds the low 64 bits and
 * h[1] the high 64 bits; the hex form is the 128-bit number, high first. */
typedef struct cg_hash {
  uint64_t h[2];
} cg_hash;
void cg_hash_init(cg_hash *h);
void cg_hash_update(cg_hash *h, const void *data, size_t n);
/* Updates with s and its terminating NUL, so "ab","c" != "a","bc". */
void cg_hash_str(cg_hash *h, const char *s);
/* 32 lowercase hex characters and a NUL. */
void cg_hash_hex(const cg_hash *h, char out[33]);

/* Reads entry KEY.  Returns 1 with *data (malloc'd, never NULL, free it)
 * and *size when a valid entry exists.  Returns 0 when there is none, or
 * when the entry was corrupt: then the bad file is removed, *corrupt (if
 * non-NULL) is set to 1 and err says what was wrong.  Returns -1 with err on
 * an invalid key, an I/O error other than absence, out of memory, or a
 * corrupt entry that could not be removed (then *corrupt is 1 too).
 * Disabled cache: 0 (an invalid key is still -1). */
int cg_cache_get(const cg_cache *c, const char *key, void **data,
                 size_t *size, int *corrupt, char *err, size_t errsize);

/* Writes the entry atomically: a temporary KEY.tmp.PID.RAND (O_EXCL, mode
 * 0600) in the same directory, header + payload, fsync, rename over KEY.o.
 * Creates the directory if needed and removes temporaries older than
 * CG_CACHE_STALE_SECONDS (best effort).  Disabled cache: writes nothing,
 * returns 0.  Returns 0, or -1 with err; never leaves a temporary behind. */
int cg_cache_put(const cg_cache *c, const char *key, const void *data,
                 size_t size, char *err, size_t errsize);

/* Cross-process exclusive lock for KEY: flock on KEY.lock (file and
 * directory created if needed), blocking.  Returns an fd >= 0 to pass to
 * cg_cache_unlock, or -1 with err.  Disabled cache: -2, "no lock needed",
 * which cg_cache_unlock accepts. */
int cg_cache_lock(const cg_cache *c, const char *key, char *err,
                  size_t errsize);
void cg_cache_unlock(int fd);

/* Calls fn(user, key, size, mtime) for each regular file DIR/KEY.o, in key
 * order; size is the file's size in bytes (header included), mtime in
 * seconds since the epoch.  fn may be NULL to just count.  Returns the count
 * or -1 with err; a missing directory is 0 entries.  Works on a disabled
 * cache too (it lists what is on disk). */
int cg_cache_list(const cg_cache *c,
                  void (*fn)(void *user, const char *key, int64_t size,
                             int64_t mtime),
                  void *user, char *err, size_t errsize);

/* Removes every entry, lock file and temporary (only names matching the
 * patterns above; nothing else in the directory is touched).  A lock file
 * whose lock is currently held is kept, so the holder's lock stays valid; a
 * put running concurrently may fail because its temporary vanished.
 * Returns the number of files removed or -1 with err; a missing directory
 * is 0.  Works on a disabled cache too. */
int cg_cache_clear(const cg_cache *c, char *err, size_t errsize);

#endif
