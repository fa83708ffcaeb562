/* safetensors.c - reading and writing safetensors files (see safetensors.h).
 *
 * Nothing from the file is trusted: the header length is bounded before it
 * is read, the tensor count before anything is allocated, and each tensor's
 * offsets must lie inside the data section, match its dtype and shape, and
 * not overlap another tensor.  The host is assumed little-endian, as the
 * format's data is. */
#include "runtime/safetensors.h"
#include "util/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const dtype_names[] = {"F32", "F16", "BF16"};

size_t st_dtype_size(st_dtype t) { return t == ST_F32 ? 4 : 2; }
const char *st_dtype_name(st_dtype t) { return dtype_names[t]; }

#define ERR(status, ...)                       \
  do {                                         \
    snprintf(err, errsize, __VA_ARGS__);       \
    st = status;                               \
    goto fail;                                 \
  } while (0)

void st_printable(const char *s, char *out, size_t n) {
  size_t k = 0;
  for (; *s && k + 5 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out[k++] = (char)c;
    else
      k += (size_t)snprintf(out + k, n - k, "\\x%02x", c);
  }
  if (*s && k + 4 <= n) memcpy(out + k, "...", 3), k += 3;
  out[k] = 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b) {
  const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return false;
  double v = j->valuedouble;
  if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return false;
  *out = (uint64_t)v;
  return true;
}

void st_close(st_file *f) {
  if (f->tensors)
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
  free(f->tensors);
  free(f->written_for);
  if (f->map) munmap(f->map, f->size);
  memset(f, 0, sizeof *f);
}

/* What the reference reader (the `safetensors` package) rejects in a
 * header before its JSON is parsed, and cJSON would accept: a first byte
 * other than '{' (a UTF-8 byte order mark, leading spaces), bytes that are
 * not UTF-8, a raw control character inside a string, and a \u0000 escape
 * (cJSON would end the C string there: "F32\u0000x" read as F32, a name
 * cut short), so that two readers never disagree about what a file holds.
 * NULL, or what is wrong, with *at its offset. */
static const char *header_problem(const unsigned char *h, size_t n, size_t *at) {
  *at = 0;
  if (n == 0 || h[0] != '{') return "the header does not start with '{' (no byte order mark or "
                                    "spaces may come before the JSON)";
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    unsigned c = h[i];
    *at = i;
    if (c >= 0x80) {
      /* one UTF-8 sequence: no overlong forms, surrogates or values past
       * U+10FFFF */
      int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
      if (!len || i + (size_t)len > n) return "the header is not valid UTF-8";
      unsigned lo = 0x80, hi = 0xbf;
      if (c == 0xe0) lo = 0xa0;
      else if (c == 0xed) hi = 0x9f;
      else if (c == 0xf0) lo = 0x90;
      else if (c == 0xf4) hi = 0x8f;
      if (h[i + 1] < lo || h[i + 1] > hi) return "the header is not valid UTF-8";
      for (int k = 2; k < len; k++)
        if (h[i + k] < 0x80 || h[i + k] > 0xbf) return "the header is not valid UTF-8";
      i += (size_t)len - 1;
      continue;
    }
    if (!in_str) {
      if (c == '"') in_str = true;
      continue;
    }
    if (c < 0x20) return "a string in the header holds a raw control character";
    if (c == '"') {
      in_str = false;
    } else if (c == '\\' && i + 1 < n) {
      if (h[i + 1] == 'u' && i + 5 < n && !memcmp(h + i + 2, "0000", 4))
        return "a string in the header holds \\u0000 (NUL)";
      i++; /* the escaped character */
    }
  }
  return NULL;
}

/* cJSON allocates through json_malloc, so that running out of memory in
 * the parser is reported as such (HSART_ENOMEM, exit 3), not as "not valid
 * JSON".  cJSON_InitHooks is process-wide; every caller installs the same
 * pair, and the flag is per thread. */
static _Thread_local bool json_oom;

static void *json_malloc(size_t n) {
  void *p = malloc(n);
  if (!p) json_oom = true;
  return p;
}

static void json_free(void *p) { free(p); }

hsart_status st_parse(const void *data, size_t size, const char *name, st_file *f,
                      char *err, size_t errsize) {
  hsart_status st = HSART_OK;
  cJSON *root = NULL;
  st_tensor **order = NULL;
  f->tensors = NULL;
  f->ntensors = 0;
  f->written_for = NULL;
  const unsigned char *bytes = data;
  if (size < 8) ERR(HSART_EFORMAT, "%s: too short for a safetensors file (%zu bytes)", name, size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
  /* A text file (a model description, a prompt, JSON) where the weights
   * should be: its first 8 bytes are printable text, which as a length is
   * absurd (over 2^61).  Say what it is not, rather than quote that
   * length. */
  bool text = true;
  for (int i = 0; i < 8; i++)
    text = text && ((bytes[i] >= 0x20 && bytes[i] < 0x7f) || bytes[i] == '\n' ||
                    bytes[i] == '\t' || bytes[i] == '\r');
  if (text) {
    char start[40];
    size_t k = 0;
    for (size_t i = 0; i < 16 && i < size && k + 5 < sizeof start; i++) {
      unsigned char ch = bytes[i];
      if (ch >= 0x20 && ch < 0x7f)
        start[k++] = (char)ch;
      else
        k += (size_t)snprintf(start + k, sizeof start - k, "\\x%02x", ch);
    }
    start[k] = 0;
    ERR(HSART_EFORMAT, "%s: not a safetensors file (it starts with \"%s\", not with an 8-byte "
        "header length and a JSON header)", name, start);
  }
  if (hlen > ST_MAX_HEADER)
    ERR(HSART_EFORMAT, "%s: header length %llu exceeds the limit of %llu bytes", name,
        (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
  if (hlen > size - 8)
    ERR(HSART_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes): "
        "truncated?", name, (unsigned long long)hlen, size);
  const char *hdr = (const char *)bytes + 8;
  uint64_t dsize = size - 8 - hlen;
  const unsigned char *dbase = bytes + 8 + hlen;
  const char *end = NULL;
  size_t bad_at;
  const char *bad = header_problem((const unsigned char *)hdr, (size_t)hlen, &bad_at);
  if (bad) ERR(HSART_EFORMAT, "%s: %s (header offset %zu)", name, bad, bad_at);
  cJSON_Hooks hooks = {.malloc_fn = json_malloc, .free_fn = json_free};
  cJSON_InitHooks(&hooks);
  json_oom = false;
  root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
  if (!root && json_oom) ERR(HSART_ENOMEM, "%s: out of memory reading the header", name);
  if (!root) ERR(HSART_EFORMAT, "%s: the header is not valid JSON", name);
  /* the format allows only spaces after the JSON (padding to 8 bytes) */
  for (const char *p = end; p && p < hdr + hlen; p++)
    if (*p != ' ')
      ERR(HSART_EFORMAT, "%s: the header has bytes after its JSON object (offset %lld)", name,
          (long long)(p - hdr));
  if (!cJSON_IsObject(root)) ERR(HSART_EFORMAT, "%s: the header is not a JSON object", name);
  int n = 0;
  for (cJSON *c = root->child; c; c = c->next) {
    if (++n > ST_MAX_TENSORS)
      ERR(HSART_EFORMAT, "%s: more than %d entries in the header", name, ST_MAX_TENSORS);
  }
  f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
  order = calloc((size_t)n + 1, sizeof *order);
  if (!f->tensors || !order) ERR(HSART_ENOMEM, "%s: out of memory reading the header", name);
  for (cJSON *c = root->child; c; c = c->next) {
    const char *raw = c->string ? c->string : "";
    char tn[160]; /* the name as it may be printed: escaped, bounded */
    st_printable(raw, tn, sizeof tn);
    if (!strcmp(tn, "__metadata__")) {
      if (!cJSON_IsObject(c)) ERR(HSART_EFORMAT, "%s: __metadata__ is not an object", name);
      const cJSON *who = cJSON_GetObjectItemCaseSensitive(c, "hsac_model");
      if (cJSON_IsString(who) && !f->written_for &&
          !(f->written_for = strdup(who->valuestring)))
        ERR(HSART_ENOMEM, "%s: out of memory", name);
      continue;
    }
    st_tensor *t = &f->tensors[f->ntensors];
    t->name = strdup(raw);
    if (!t->name) ERR(HSART_ENOMEM, "%s: out of memory", name);
    f->ntensors++;
    if (!raw[0]) ERR(HSART_EFORMAT, "%s: a tensor has an empty name", name);
    if (!cJSON_IsObject(c)) ERR(HSART_EFORMAT, "%s: tensor '%s' is not an object", name, tn);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(c, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(c, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(c, "data_offsets");
    if (!dt) ERR(HSART_EFORMAT, "%s: tensor '%s' has no dtype", name, tn);
    if (!cJSON_IsString(dt)) ERR(HSART_EFORMAT, "%s: tensor '%s': dtype is not a string", name, tn);
    int k = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(dt->valuestring, dtype_names[i])) k = i;
    if (k < 0) {
      char dn[48];
      st_printable(dt->valuestring, dn, sizeof dn);
      ERR(HSART_EUNSUPPORTED, "%s: tensor '%s' has dtype %s; hsac reads F32, F16 and BF16",
          name, tn, dn);
    }
    t->dtype = (st_dtype)k;
    if (!sh) ERR(HSART_EFORMAT, "%s: tensor '%s' has no shape", name, tn);
    if (!cJSON_IsArray(sh)) ERR(HSART_EFORMAT, "%s: tensor '%s': shape is not an array", name, tn);
    int rank = cJSON_GetArraySize(sh);
    if (rank > ST_MAX_RANK)
      ERR(HSART_EFORMAT, "%s: tensor '%s' has rank %d (at most %d)", name, tn, rank, ST_MAX_RANK);
    t->rank = rank;
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
      uint64_t d;
      if (!json_uint(cJSON_GetArrayItem(sh, i), &d))
        ERR(HSART_EFORMAT, "%s: tensor '%s': shape entry %d is not a size (a whole number "
            "from 0 to 2^53)", name, tn, i);
      t->shape[i] = (int64_t)d;
      if (__builtin_mul_overflow(numel, d, &numel) || numel > ((uint64_t)1 << 53))
        ERR(HSART_EFORMAT, "%s: tensor '%s' is impossibly large", name, tn);
    }
    uint64_t b, e;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !json_uint(cJSON_GetArrayItem(off, 0), &b) || !json_uint(cJSON_GetArrayItem(off, 1), &e))
      ERR(HSART_EFORMAT, "%s: tensor '%s' has no valid data_offsets", name, tn);
    if (b > e) ERR(HSART_EFORMAT, "%s: tensor '%s' ends before it begins", name, tn);
    if (e > dsize)
      ERR(HSART_EFORMAT, "%s: tensor '%s' ends at byte %llu of a %llu-byte data section: "
          "truncated file?", name, tn, (unsigned long long)e, (unsigned long long)dsize);
    if (e - b != numel * st_dtype_size(t->dtype))
      ERR(HSART_EFORMAT, "%s: tensor '%s' has %llu bytes but its dtype and shape need %llu",
          name, tn, (unsigned long long)(e - b),
          (unsigned long long)(numel * st_dtype_size(t->dtype)));
    t->begin = b;
    t->end = e;
    t->data = dbase + b;
    order[f->ntensors - 1] = t;
  }
  /* No two tensors may share bytes: in offset order, each non-empty tensor
   * starts at or after the furthest end so far (empty ones take no bytes). */
  qsort(order, (size_t)f->ntensors, sizeof *order, by_begin);
  const st_tensor *furthest = NULL;
  for (int i = 0; i < f->ntensors; i++) {
    const st_tensor *t = order[i];
    if (t->begin == t->end) continue;
    if (furthest && t->begin < furthest->end) {
      char a[160], b[160];
      st_printable(furthest->name, a, sizeof a);
      st_printable(t->name, b, sizeof b);
      ERR(HSART_EFORMAT, "%s: tensors '%s' and '%s' overlap", name, a, b);
    }
    if (!furthest || t->end > furthest->end) furthest = t;
  }
  free(order);
  order = NULL;
  qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, by_name);
  for (int i = 1; i < f->ntensors; i++)
    if (!strcmp(f->tensors[i].name, f->tensors[i - 1].name))
      {
        char a[160];
        st_printable(f->tensors[i].name, a, sizeof a);
        ERR(HSART_EFORMAT, "%s: tensor '%s' appears twice", name, a);
      }
  cJSON_Delete(root);
  return HSART_OK;
fail:
  cJSON_Delete(root);
  free(order);
  if (f->tensors)
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
  free(f->tensors);
  free(f->written_for);
  f->tensors = NULL;
  f->written_for = NULL;
  f->ntensors = 0;
  return st;
}

hsart_status st_open(const char *path, st_file *f, char *err, size_t errsize) {
  memset(f, 0, sizeof *f);
  /* a FIFO, device or directory is refused before anything blocks */
  struct stat sb;
  int fd = ut_open_regular(path, &sb);
  if (fd < 0) {
    if (errno == UT_ENOTREG || errno == EISDIR)
      snprintf(err, errsize, "'%s' is not a regular file", path);
    else snprintf(err, errsize, "cannot open '%s': %s", path, strerror(errno));
    return HSART_EIO;
  }
  size_t size = (size_t)sb.st_size;
  void *map = NULL;
  if (size > 0) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      snprintf(err, errsize, "cannot map '%s': %s", path, strerror(errno));
      close(fd);
      return errno == ENOMEM ? HSART_ENOMEM : HSART_EIO;
    }
  }
  close(fd);
  hsart_status st = st_parse(map ? map : "", size, path, f, err, errsize);
  if (st != HSART_OK) {
    if (map) munmap(map, size);
    return st;
  }
  f->map = map;
  f->size = size;
  f->dev = (unsigned long long)sb.st_dev;
  f->ino = (unsigned long long)sb.st_ino;
  f->mtime_s = (long long)sb.st_mtim.tv_sec;
  f->mtime_ns = (long long)sb.st_mtim.tv_nsec;
  f->ctime_s = (long long)sb.st_ctim.tv_sec;
  f->ctime_ns = (long long)sb.st_ctim.tv_nsec;
  return HSART_OK;
}

hsart_status st_check_unchanged(const char *path, const st_file *f, char *err, size_t errsize) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    snprintf(err, errsize, "'%s' went away while it was read: %s", path, strerror(errno));
    return HSART_EIO;
  }
  if ((unsigned long long)sb.st_dev != f->dev || (unsigned long long)sb.st_ino != f->ino ||
      (size_t)sb.st_size != f->size || (long long)sb.st_mtim.tv_sec != f->mtime_s ||
      (long long)sb.st_mtim.tv_nsec != f->mtime_ns || (long long)sb.st_ctim.tv_sec != f->ctime_s ||
      (long long)sb.st_ctim.tv_nsec != f->ctime_ns) {
    snprintf(err, errsize, "'%s' changed while it was read (its size, times or inode differ "
             "from when it was opened); nothing was loaded: load it again", path);
    return HSART_EIO;
  }
  return HSART_OK;
}

void st_release(const st_file *f, const st_tensor *t) {
  if (!f->map || !t || t->end <= t->begin) return;
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = (uintptr_t)t->data, b = a + (uintptr_t)(t->end - t->begin);
  uintptr_t lo = (a + pg - 1) & ~(pg - 1), hi = b & ~(pg - 1); /* whole pages inside t */
  if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

const st_tensor *st_find(const st_file *f, const char *name) {
  st_tensor key = {.name = (char *)name};
  return bsearch(&key, f->tensors, (size_t)f->ntensors, sizeof *f->tensors, by_name);
}

void st_to_f32(const st_tensor *t, float *out) {
  size_t n = (size_t)((t->end - t->begin) / st_dtype_size(t->dtype));
  const unsigned char *p = t->data;
  if (t->dtype == ST_F32) {
    memcpy(out, p, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    out[i] = t->dtype == ST_BF16 ? ut_bf16_to_f32(h) : ut_f16_to_f32(h);
  }
}

hsart_status st_write(const char *path, const st_out_tensor *tensors, int n,
                      const char *metadata_json, char *err, size_t errsize) {
  hsart_status st = HSART_OK;
  cJSON *root = cJSON_CreateObject();
  char *json = NULL;
  FILE *fp = NULL;
  ut_outfile out;
  bool begun = false;
  if (!root) ERR(HSART_ENOMEM, "out of memory");
  if (metadata_json) {
    cJSON *meta = cJSON_Parse(metadata_json);
    if (!meta) ERR(HSART_EINVAL, "metadata is not valid JSON");
    cJSON_AddItemToObject(root, "__metadata__", meta);
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
    if (!t || !shape || !offs) {
      cJSON_Delete(t);
      cJSON_Delete(shape);
      cJSON_Delete(offs);
      ERR(HSART_ENOMEM, "out of memory");
    }
    uint64_t numel = 1;
    for (int d = 0; d < tensors[i].rank; d++) {
      numel *= (uint64_t)tensors[i].shape[d];
      cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
    }
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    off += numel * st_dtype_size(tensors[i].dtype);
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    cJSON_AddStringToObject(t, "dtype", st_dtype_name(tensors[i].dtype));
    cJSON_AddItemToObject(t, "shape", shape);
    cJSON_AddItemToObject(t, "data_offsets", offs);
    cJSON_AddItemToObject(root, tensors[i].name, t);
  }
  json = cJSON_PrintUnformatted(root);
  if (!json) ERR(HSART_ENOMEM, "out of memory");
  size_t jlen = strlen(json), padded = (jlen + 7) & ~(size_t)7;
  /* the output policy of util/fileio.h: a temporary next to the path,
   * renamed over it; never over a symlink, FIFO or device */
  if (ut_out_begin(&out, path)) {
    int e = errno;
    ERR(e == ENOMEM ? HSART_ENOMEM : HSART_EIO, "cannot write '%s': %s", path,
        ut_file_strerror(e));
  }
  begun = true;
  fp = out.fp;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  bool ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(json, 1, jlen, fp) == jlen;
  for (size_t i = jlen; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
  for (int i = 0; ok && i < n; i++) {
    size_t numel = 1;
    for (int d = 0; d < tensors[i].rank; d++) numel *= (size_t)tensors[i].shape[d];
    size_t es = st_dtype_size(tensors[i].dtype);
    ok = numel == 0 || fwrite(tensors[i].data, es, numel, fp) == numel;
  }
  if (!ok) ERR(HSART_EIO, "cannot write '%s': %s", path, strerror(errno));
  fp = NULL;
  begun = false;
  if (ut_out_commit(&out) != 0)
    ERR(HSART_EIO, "cannot write '%s': %s", path, strerror(errno));
  free(json);
  cJSON_Delete(root);
  return HSART_OK;
fail:
  if (begun) ut_out_abort(&out);
  free(json);
  cJSON_Delete(root);
  return st;
}
