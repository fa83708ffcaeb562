/* test_weights.c - weight files: every way a safetensors file can be
 * corrupt, or not match the model, gives its own status and a message that
 * names the file (and the tensor, where there is one); 16-bit files load
 * and compute what the f32 file computes, up to rounding; st_write and the
 * f16/bf16 conversions are exact.
 *
 * Files are built in memory from the weights hsart_init_weights writes for
 * examples/tiny/dense.hsa, or from hand-written headers, then written to a
 * temporary folder that the suite removes (it must be empty by then, so a
 * leftover file, st_write's temporary ones included, fails the suite).
 * Corrupt files are also handed to st_parse as an exact-size heap copy, so
 * that under ASan any read past the end of the header is reported (a mapped
 * file is invisible to ASan).
 *
 * The largest single allocation made by the static libraries is tracked
 * (tests/unit/alloc.c), so a header with too many entries can be shown to
 * be refused before its table is allocated.  Set TU_SHOW_MESSAGES=1 to print each case's message. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/hsa_runtime.h"
#include "runtime/safetensors.h"
#include "testutil.h"

/* ---- fixture ------------------------------------------------------------- */

typedef struct wt {
  char name[96];
  const char *dtype;       /* "F32", "F16" or "BF16" */
  int rank;
  int64_t shape[ST_MAX_RANK];
  const float *src;        /* numel f32 values, converted to dtype */
} wt;

enum { MAXW = 64 };
static char g_dir[64];       /* the suite's temporary folder */
static char g_model[512];    /* examples/tiny/dense.hsa */
static char g_valid[128];    /* its weights, as hsart_init_weights wrote them */
static wt g_w[MAXW];         /* the same weights, sorted by name */
static float *g_src[MAXW];
static int g_nw;
static int g_case;           /* numbers the files */
static bool g_show;

static size_t numel_of(const wt *w) {
  size_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= (size_t)w->shape[i];
  return n;
}

static size_t dtype_bytes(const char *dtype) { return strcmp(dtype, "F32") ? 2 : 4; }

static int find_w(const char *name) {
  for (int i = 0; i < g_nw; i++)
    if (!strcmp(g_w[i].name, name)) return i;
  return -1;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A whole file for tensors w[0..n): data in order, no gaps; `meta` (JSON
 * text or NULL) is the first header entry, or the last when meta_last;
 * `pad` spaces end the header.  Returns malloc'ed bytes. */
static unsigned char *build(const wt *w, int n, const char *meta, bool meta_last, int pad,
                            size_t *size) {
  char *hdr = NULL;
  size_t hlen = 0, off = 0;
  FILE *f = open_memstream(&hdr, &hlen);
  fputc('{', f);
  bool first = true;
  if (meta && !meta_last) {
    fprintf(f, "\"__metadata__\":%s", meta);
    first = false;
  }
  for (int i = 0; i < n; i++) {
    size_t nb = numel_of(&w[i]) * dtype_bytes(w[i].dtype);
    fprintf(f, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", w[i].name,
            w[i].dtype);
    for (int d = 0; d < w[i].rank; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)w[i].shape[d]);
    fprintf(f, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
    off += nb;
    first = false;
  }
  if (meta && meta_last) fprintf(f, "%s\"__metadata__\":%s", first ? "" : ",", meta);
  fputc('}', f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fclose(f);
  unsigned char *out = malloc(8 + hlen + off);
  put_u64(out, hlen);
  memcpy(out + 8, hdr, hlen);
  unsigned char *d = out + 8 + hlen;
  for (int i = 0; i < n; i++) {
    size_t k = numel_of(&w[i]);
    for (size_t e = 0; e < k; e++) {
      float v = w[i].src[e];
      if (!strcmp(w[i].dtype, "F32")) {
        memcpy(d, &v, 4);
        d += 4;
      } else {
        uint16_t h = !strcmp(w[i].dtype, "F16") ? ut_f32_to_f16(v) : ut_f32_to_bf16(v);
        memcpy(d, &h, 2);
        d += 2;
      }
    }
  }
  free(hdr);
  *size = 8 + hlen + off;
  return out;
}

/* A file with a hand-written header and dlen zero bytes of data. */
static unsigned char *raw(const char *hdr, size_t dlen, size_t *size) {
  size_t hlen = strlen(hdr);
  unsigned char *out = calloc(1, 8 + hlen + dlen);
  put_u64(out, hlen);
  memcpy(out + 8, hdr, hlen);
  *size = 8 + hlen + dlen;
  return out;
}

static void new_path(char *path, size_t size) {
  snprintf(path, size, "%s/case-%03d.safetensors", g_dir, ++g_case);
}

static bool write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fwrite(bytes, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

/* Every key occurs in msg; reports the first that does not. */
static bool has_all(const char *msg, const char *const *keys) {
  for (; *keys; keys++)
    if (!tu_contains(msg, *keys)) {
      fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", msg, *keys);
      return false;
    }
  return true;
}

/* Loads `weights` with the dense model, expecting failure `want` with a
 * message that names the file and holds every key. */
static void expect_load_fails(const char *weights, hsart_status want, const char *const *keys) {
  hsart_model *m = (hsart_model *)&g_case; /* must be reset to NULL */
  hsart_error e;
  e.status = HSART_OK;
  memset(e.message, 'x', sizeof e.message - 1);
  e.message[sizeof e.message - 1] = 0;
  hsart_status st = hsart_model_load(g_model, weights, NULL, &m, &e);
  if (g_show) fprintf(stderr, "\n  [%d] %s", (int)st, e.message);
  if (st != want) fprintf(stderr, "\n  status %d, expected %d: %s\n", (int)st, (int)want, e.message);
  CU_ASSERT_EQUAL(st, want);
  CU_ASSERT_EQUAL(e.status, want);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT(has_all(e.message, (const char *const[]){weights, NULL}));
  CU_ASSERT(has_all(e.message, keys));
  if (m && m != (hsart_model *)&g_case) hsart_model_free(m);
}

/* Writes bytes to a new file and expects loading it to fail as above.  A
 * format error (parse_ok false) must also come from st_parse over an
 * exact-size heap copy, with the same status and keys; a mismatch with
 * the model (parse_ok true) must parse. */
static void expect_fails(const unsigned char *bytes, size_t n, hsart_status want, bool parse_ok,
                         const char *const *keys) {
  char path[128];
  new_path(path, sizeof path);
  CU_ASSERT_FATAL(write_file(path, bytes, n));
  expect_load_fails(path, want, keys);
  CU_ASSERT_EQUAL(unlink(path), 0);

  unsigned char *copy = malloc(n ? n : 1);
  if (n) memcpy(copy, bytes, n);
  st_file f;
  char err[600];
  err[0] = 0;
  hsart_status st = st_parse(copy, n, "in-memory", &f, err, sizeof err);
  if (parse_ok) {
    if (st != HSART_OK) fprintf(stderr, "\n  st_parse: %s\n", err);
    CU_ASSERT_EQUAL(st, HSART_OK);
    if (st == HSART_OK) st_close(&f);
  } else {
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NULL(f.tensors);
    CU_ASSERT_EQUAL(f.ntensors, 0);
    CU_ASSERT(has_all(err, (const char *const[]){"in-memory", NULL}));
    CU_ASSERT(has_all(err, keys));
  }
  free(copy);
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* A hand-written header (and dlen bytes of data) fails to parse. */
#define EXPECT_HDR(hdr, dlen, status, ...)                   \
  do {                                                       \
    size_t n_;                                               \
    unsigned char *b_ = raw((hdr), (dlen), &n_);             \
    expect_fails(b_, n_, (status), false, KEYS(__VA_ARGS__)); \
    free(b_);                                                \
  } while (0)

/* Tensors w[0..n) load with the dense model; returns the logits after a
 * fixed 40-token prefill in out (vocab floats). */
/* How load_ok holds linear weights (the default unless a test says). */
static hsart_weights_dtype g_wdt = HSART_WEIGHTS_KEEP;

static bool load_ok(const char *path, float *out) {
  hsart_model *m;
  hsart_error e;
  hsart_model_options mo = {.opt_level = 1, .weights_dtype = g_wdt};
  hsart_status st = hsart_model_load(g_model, path, &mo, &m, &e);
  if (st != HSART_OK) fprintf(stderr, "\n  %s\n", e.message);
  CU_ASSERT_EQUAL(st, HSART_OK);
  if (st != HSART_OK) return false;
  hsart_session *s;
  bool ok = false;
  if (hsart_session_create(m, NULL, &s, &e) == HSART_OK) {
    int32_t tok[40];
    for (int i = 0; i < 40; i++) tok[i] = (int32_t)((i * 37 + 11) % 256);
    if (hsart_prefill(s, tok, 40) == HSART_OK && hsart_logits(s)) {
      memcpy(out, hsart_logits(s), (size_t)hsart_model_vocab(m) * sizeof *out);
      ok = true;
    }
    hsart_session_free(s);
  }
  CU_ASSERT(ok);
  hsart_model_free(m);
  return ok;
}

static bool build_and_load(const wt *w, int n, const char *meta, bool meta_last, int pad,
                           float *out) {
  size_t size;
  unsigned char *b = build(w, n, meta, meta_last, pad, &size);
  char path[128];
  new_path(path, sizeof path);
  bool ok = write_file(path, b, size);
  CU_ASSERT(ok);
  free(b);
  if (ok) ok = load_ok(path, out);
  unlink(path);
  return ok;
}

static void build_and_expect(const wt *w, int n, hsart_status want, const char *const *keys) {
  size_t size;
  unsigned char *b = build(w, n, NULL, false, 0, &size);
  expect_fails(b, size, want, true, keys);
  free(b);
}

static int suite_init(void) {
  g_show = getenv("TU_SHOW_MESSAGES") != NULL;
  snprintf(g_dir, sizeof g_dir, "/tmp/hsac-weights-XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  snprintf(g_model, sizeof g_model, "%s/examples/tiny/dense.hsa", tu_src());
  snprintf(g_valid, sizeof g_valid, "%s/valid.safetensors", g_dir);
  hsart_error e;
  if (hsart_init_weights(g_model, g_valid, 7, &e) != HSART_OK) {
    fprintf(stderr, "%s\n", e.message);
    return 1;
  }
  st_file f;
  char err[600];
  if (st_open(g_valid, &f, err, sizeof err) != HSART_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (f.ntensors > MAXW) {
    st_close(&f);
    return 1;
  }
  g_nw = f.ntensors;
  for (int i = 0; i < g_nw; i++) {
    const st_tensor *t = &f.tensors[i];
    wt *w = &g_w[i];
    snprintf(w->name, sizeof w->name, "%s", t->name);
    w->dtype = "F32";
    w->rank = t->rank;
    memcpy(w->shape, t->shape, sizeof w->shape);
    g_src[i] = malloc(numel_of(w) * sizeof(float));
    st_to_f32(t, g_src[i]);
    w->src = g_src[i];
  }
  st_close(&f);
  return 0;
}

static int suite_cleanup(void) {
  for (int i = 0; i < g_nw; i++) free(g_src[i]);
  g_nw = 0;
  unlink(g_valid);
  /* anything else left in the folder (a case's file, a temporary file of
   * st_write) makes rmdir fail, and the suite with it */
  return rmdir(g_dir) == 0 ? 0 : 1;
}

/* ---- the file itself ------------------------------------------------------ */

static void test_missing_file(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/no-such.safetensors", g_dir);
  expect_load_fails(path, HSART_EIO, KEYS("cannot open", "No such file"));
}

static void test_directory(void) {
  expect_load_fails(g_dir, HSART_EIO, KEYS("is not a regular file"));
}

static void test_empty_and_short(void) {
  expect_fails((const unsigned char *)"", 0, HSART_EFORMAT, false,
               KEYS("too short for a safetensors file", "(0 bytes)"));
  expect_fails((const unsigned char *)"\x10\0\0\0\0", 5, HSART_EFORMAT, false,
               KEYS("too short", "(5 bytes)"));
  expect_fails((const unsigned char *)"\0\0\0\0\0\0\0", 7, HSART_EFORMAT, false,
               KEYS("too short", "(7 bytes)"));
}

/* A model description given as weights: reported as what it is not, not
 * as a header length of 8 text bytes (about 7e18). */
static void test_text_file(void) {
  const char *hsa = "model m {\n  vocab = 260\n}\n";
  expect_fails((const unsigned char *)hsa, strlen(hsa), HSART_EFORMAT, false,
               KEYS("not a safetensors file (it starts with \"model m {\\x0a  voca", "not with an "
                    "8-byte header length"));
  const char *json = "{\"a\": 1}   ";
  expect_fails((const unsigned char *)json, strlen(json), HSART_EFORMAT, false,
               KEYS("not a safetensors file"));
}

/* ---- the header length ------------------------------------------------------ */

static void test_truncated_header(void) {
  /* a valid file cut in the middle of its header */
  size_t size;
  unsigned char *b = build(g_w, g_nw, NULL, false, 0, &size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
  size_t cut = 8 + (size_t)hlen / 2;
  char want[128];
  snprintf(want, sizeof want, "header length %llu runs past the end of the file (%zu bytes)",
           (unsigned long long)hlen, cut);
  expect_fails(b, cut, HSART_EFORMAT, false, KEYS(want, "truncated"));
  /* one byte short */
  expect_fails(b, 8 + (size_t)hlen - 1, HSART_EFORMAT, false, KEYS("runs past the end", "truncated"));
  free(b);
  /* the length alone, no header at all */
  unsigned char len8[8];
  put_u64(len8, 2);
  expect_fails(len8, 8, HSART_EFORMAT, false, KEYS("header length 2 runs past", "(8 bytes)"));
}

static void test_header_over_limit(void) {
  unsigned char b[64];
  memset(b, ' ', sizeof b);
  static const uint64_t lens[] = {ST_MAX_HEADER + 1, (uint64_t)1 << 40, UINT64_MAX};
  for (int i = 0; i < 3; i++) {
    put_u64(b, lens[i]);
    char want[128];
    snprintf(want, sizeof want, "header length %llu exceeds the limit of %llu bytes",
             (unsigned long long)lens[i], (unsigned long long)ST_MAX_HEADER);
    expect_fails(b, sizeof b, HSART_EFORMAT, false, KEYS(want));
  }
  /* exactly at the limit is not over it: the file is merely too short */
  put_u64(b, ST_MAX_HEADER);
  expect_fails(b, sizeof b, HSART_EFORMAT, false, KEYS("runs past the end", "truncated"));
}

/* ---- the header's JSON ------------------------------------------------------ */

static void test_header_not_json(void) {
  EXPECT_HDR("{not json", 0, HSART_EFORMAT, "the header is not valid JSON");
  EXPECT_HDR("", 0, HSART_EFORMAT, "does not start with '{'");
  EXPECT_HDR("   ", 0, HSART_EFORMAT, "does not start with '{'");
  /* ends inside a string, inside a number, after a key: nothing read past
   * the header (the heap copy ends exactly there) */
  EXPECT_HDR("{\"abc", 0, HSART_EFORMAT, "not valid JSON");
  EXPECT_HDR("{\"a\\", 0, HSART_EFORMAT, "not valid JSON");
  EXPECT_HDR("{\"a\":{\"shape\":[12", 0, HSART_EFORMAT, "not valid JSON");
  EXPECT_HDR("{\"a\":", 0, HSART_EFORMAT, "not valid JSON");
  EXPECT_HDR("{\"a\\u12", 0, HSART_EFORMAT, "not valid JSON");
  /* nested far deeper than any parser's stack: refused, not a crash */
  enum { DEPTH = 100000 };
  char *deep = malloc(2 * DEPTH + 8);
  memcpy(deep, "{\"a\":", 5);
  memset(deep + 5, '[', DEPTH);
  memset(deep + 5 + DEPTH, ']', DEPTH);
  memcpy(deep + 5 + 2 * DEPTH, "}", 2);
  EXPECT_HDR(deep, 0, HSART_EFORMAT, "not valid JSON");
  free(deep);
}

static void test_header_not_object(void) {
  /* refused by their first byte, as the reference reader does */
  EXPECT_HDR("[1, 2]", 0, HSART_EFORMAT, "the header does not start with '{'");
  EXPECT_HDR("\"F32\"", 0, HSART_EFORMAT, "does not start with '{'");
  EXPECT_HDR("42", 0, HSART_EFORMAT, "does not start with '{'");
  EXPECT_HDR("null", 0, HSART_EFORMAT, "does not start with '{'");
}

/* What the reference reader (the `safetensors` package) rejects and cJSON
 * alone would accept, so two readers never disagree about a file: a NUL
 * escape in a dtype or a name (cJSON's C string would stop there: F32, or
 * a shorter name), a byte order mark, raw control characters in strings,
 * bytes that are not UTF-8. */
static void test_header_reference_rejects(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\\u0000x\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             4, HSART_EFORMAT, "\\u0000 (NUL)", "header offset 20");
  EXPECT_HDR("{\"embed.weight\\u0000junk\": {\"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}}", 4, HSART_EFORMAT, "\\u0000 (NUL)");
  EXPECT_HDR("{\"__metadata__\": {\"a\": \"b\\u0000c\"}}", 0, HSART_EFORMAT, "(NUL)");
  EXPECT_HDR("\xEF\xBB\xBF{}", 0, HSART_EFORMAT, "does not start with '{'");
  EXPECT_HDR("{\"w\tx\": {}}", 0, HSART_EFORMAT, "raw control character");
  EXPECT_HDR("{\"w\xff\": {}}", 0, HSART_EFORMAT, "not valid UTF-8", "header offset 3");
  EXPECT_HDR("{\"w\xC0\xAF\": {}}", 0, HSART_EFORMAT, "not valid UTF-8"); /* overlong */
  EXPECT_HDR("{\"w\xED\xA0\x80\": {}}", 0, HSART_EFORMAT, "not valid UTF-8"); /* surrogate */
  EXPECT_HDR("{\"w\xF4\x90\x80\x80\": {}}", 0, HSART_EFORMAT, "not valid UTF-8");
  EXPECT_HDR("{\"w\xE2\x82\": {}}", 0, HSART_EFORMAT, "not valid UTF-8"); /* cut short */
  /* still read: UTF-8 in a name, and an escaped backslash before u0000 (the
   * name is the 7 characters w\u0000, not a NUL) */
  const char *ok[] = {"{\"w\xC3\xA9\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
                      "{\"w\\\\u0000\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}"};
  const char *names[] = {"w\xC3\xA9", "w\\u0000"};
  for (int i = 0; i < 2; i++) {
    size_t n;
    unsigned char *b = raw(ok[i], 4, &n);
    st_file f;
    char err[600] = "";
    hsart_status st = st_parse(b, n, "in-memory", &f, err, sizeof err);
    if (st != HSART_OK) fprintf(stderr, "\n  st_parse: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(st, HSART_OK);
    CU_ASSERT_EQUAL(f.ntensors, 1);
    CU_ASSERT_STRING_EQUAL(f.tensors[0].name, names[i]);
    st_close(&f);
    free(b);
  }
}

/* ---- one tensor's entry ------------------------------------------------------ */

static void test_entry_not_object(void) {
  EXPECT_HDR("{\"w\": [1, 2]}", 0, HSART_EFORMAT, "tensor 'w' is not an object");
  EXPECT_HDR("{\"__metadata__\": 3}", 0, HSART_EFORMAT, "__metadata__ is not an object");
  EXPECT_HDR("{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
             HSART_EFORMAT, "a tensor has an empty name");
}

static void test_unsupported_dtype(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 16,
             HSART_EUNSUPPORTED, "tensor 'w' has dtype I64", "F32, F16 and BF16");
  /* case matters, and so does the exact name */
  EXPECT_HDR("{\"w\": {\"dtype\": \"f32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
             HSART_EUNSUPPORTED, "tensor 'w' has dtype f32");
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32 \", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
             HSART_EUNSUPPORTED, "has dtype F32 ;");
}

static void test_missing_dtype(void) {
  EXPECT_HDR("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, HSART_EFORMAT,
             "tensor 'w' has no dtype");
  EXPECT_HDR("{\"w\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
             HSART_EFORMAT, "tensor 'w': dtype is not a string");
}

static void test_shape_not_array(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", 8,
             HSART_EFORMAT, "tensor 'w': shape is not an array");
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, HSART_EFORMAT,
             "tensor 'w' has no shape");
}

static void test_bad_shape_entry(void) {
  static const char *const shapes[] = {"[-2]", "[2.5]", "[2, -1]", "[\"2\"]", "[1e300]",
                                       "[[2]]", "[null]"};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    char hdr[160];
    snprintf(hdr, sizeof hdr, "{\"w\": {\"dtype\": \"F32\", \"shape\": %s, \"data_offsets\": "
             "[0, 8]}}", shapes[i]);
    EXPECT_HDR(hdr, 8, HSART_EFORMAT, "tensor 'w': shape entry", "is not a size");
  }
  /* sizes that are integers, but whose product no file can hold */
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], "
             "\"data_offsets\": [0, 8]}}", 8, HSART_EFORMAT, "tensor 'w' is impossibly large");
}

static void test_rank_over_limit(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1, 1, 1, 1, 1], "
             "\"data_offsets\": [0, 4]}}", 4, HSART_EFORMAT, "tensor 'w' has rank 9 (at most 8)");
  /* rank 8 parses */
  size_t n;
  unsigned char *b = raw("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1, 1, 1, 2], "
                         "\"data_offsets\": [0, 8]}}", 8, &n);
  st_file f;
  char err[600];
  CU_ASSERT_EQUAL(st_parse(b, n, "rank8", &f, err, sizeof err), HSART_OK);
  CU_ASSERT_EQUAL(f.ntensors, 1);
  if (f.ntensors == 1) {
    CU_ASSERT_EQUAL(f.tensors[0].rank, 8);
    CU_ASSERT_EQUAL(f.tensors[0].shape[7], 2);
  }
  st_close(&f);
  free(b);
}

static void test_bad_data_offsets(void) {
  static const char *const offs[] = {NULL, "[0]", "[0, 8, 8]", "[]", "{\"a\": 0}", "[0, -8]",
                                     "[0.5, 8]", "[\"0\", \"8\"]", "8"};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    char hdr[160];
    if (offs[i])
      snprintf(hdr, sizeof hdr, "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], "
               "\"data_offsets\": %s}}", offs[i]);
    else
      snprintf(hdr, sizeof hdr, "{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}");
    EXPECT_HDR(hdr, 8, HSART_EFORMAT, "tensor 'w' has no valid data_offsets");
  }
}

static void test_begin_after_end(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
             HSART_EFORMAT, "tensor 'w' ends before it begins");
}

static void test_truncated_data(void) {
  /* a valid file whose last 100 bytes are gone: the tensor stored last
   * (norm.weight, 256 bytes) now ends past the data */
  size_t size;
  unsigned char *b = build(g_w, g_nw, NULL, false, 0, &size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
  size_t dsize = size - 8 - (size_t)hlen;
  CU_ASSERT_STRING_EQUAL(g_w[g_nw - 1].name, "norm.weight");
  char want[160];
  snprintf(want, sizeof want, "tensor 'norm.weight' ends at byte %zu of a %zu-byte data "
           "section: truncated file?", dsize, dsize - 100);
  expect_fails(b, size - 100, HSART_EFORMAT, false, KEYS(want));
  /* and with no data at all, the first tensor that has bytes is named */
  expect_fails(b, 8 + (size_t)hlen, HSART_EFORMAT, false,
               KEYS("ends at byte", "of a 0-byte data section", "truncated"));
  free(b);
  /* one byte is enough */
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 7,
             HSART_EFORMAT, "tensor 'w' ends at byte 8 of a 7-byte data section");
}

static void test_size_mismatch(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 12]}}", 16,
             HSART_EFORMAT, "tensor 'w' has 12 bytes but its dtype and shape need 16");
  EXPECT_HDR("{\"w\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16,
             HSART_EFORMAT, "tensor 'w' has 16 bytes but its dtype and shape need 8");
  EXPECT_HDR("{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 10]}}", 16,
             HSART_EFORMAT, "tensor 'w' has 10 bytes but its dtype and shape need 12");
  /* a scalar is one element; an empty shape dimension is zero bytes */
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 0]}}", 16,
             HSART_EFORMAT, "tensor 'w' has 0 bytes but its dtype and shape need 4");
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [0, 4]}}", 16,
             HSART_EFORMAT, "tensor 'w' has 4 bytes but its dtype and shape need 0");
}

static void test_overlap(void) {
  EXPECT_HDR("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [12, 28]}}", 32,
             HSART_EFORMAT, "tensors 'a' and 'b' overlap");
  /* one inside another, listed in the other order */
  EXPECT_HDR("{\"inner\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [8, 12]},"
             " \"outer\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}}", 32,
             HSART_EFORMAT, "tensors 'outer' and 'inner' overlap");
  /* an empty tensor between two overlapping ones does not hide the overlap */
  EXPECT_HDR("{\"A\": {\"dtype\": \"F32\", \"shape\": [25], \"data_offsets\": [0, 100]},"
             " \"Z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [50, 50]},"
             " \"C\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [60, 76]}}", 100,
             HSART_EFORMAT, "tensors 'A' and 'C' overlap");
  /* touching is not overlapping */
  size_t n;
  unsigned char *b = raw("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                         " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}",
                         32, &n);
  st_file f;
  char err[600];
  CU_ASSERT_EQUAL(st_parse(b, n, "touching", &f, err, sizeof err), HSART_OK);
  CU_ASSERT_EQUAL(f.ntensors, 2);
  st_close(&f);
  free(b);
}

/* Only spaces may follow the header's JSON. */
static void test_trailing_header_bytes(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}} garbage!", 8,
             HSART_EFORMAT, "bytes after its JSON object");
  EXPECT_HDR("{}{\"x\": 1}", 0, HSART_EFORMAT, "bytes after its JSON object");
}

/* Names from the file are printed escaped: no raw control bytes reach a
 * terminal through an error message. */
static void test_names_escaped(void) {
  size_t n;
  unsigned char *b = raw("{\"a\\nb\\u001b[31m\": {\"dtype\": \"I64\", \"shape\": [1], "
                         "\"data_offsets\": [0, 8]}}", 8, &n);
  st_file f;
  char err[600];
  CU_ASSERT_EQUAL(st_parse(b, n, "esc", &f, err, sizeof err), HSART_EUNSUPPORTED);
  CU_ASSERT(tu_contains(err, "tensor 'a\\x0ab\\x1b[31m'"));
  CU_ASSERT(!strchr(err, '\n') && !strchr(err, 0x1b));
  free(b);
}

/* A written file gets the usual permissions (0666 less the umask). */
static void test_write_mode(void) {
  char path[256];
  new_path(path, sizeof path);
  static const float one[1] = {1};
  st_out_tensor t = {.name = "x", .rank = 1, .shape = {1}, .data = one};
  char err[256];
  mode_t mask = umask(022);
  CU_ASSERT_EQUAL(st_write(path, &t, 1, NULL, err, sizeof err), HSART_OK);
  umask(mask);
  struct stat sb;
  CU_ASSERT_EQUAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(sb.st_mode & 0777, 0644);
  unlink(path);
}

static void test_duplicate_name(void) {
  EXPECT_HDR("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"v\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},"
             " \"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}", 24,
             HSART_EFORMAT, "tensor 'w' appears twice");
  /* a real name, twice, in an otherwise valid file */
  wt w[MAXW + 1];
  memcpy(w, g_w, (size_t)g_nw * sizeof *w);
  w[g_nw] = g_w[3];
  size_t size;
  unsigned char *b = build(w, g_nw + 1, NULL, false, 0, &size);
  char want[160];
  snprintf(want, sizeof want, "tensor '%s' appears twice", g_w[3].name);
  expect_fails(b, size, HSART_EFORMAT, false, KEYS(want));
  free(b);
}

/* More entries than ST_MAX_TENSORS: refused after counting them, before a
 * table of that many tensors is allocated (~100 MiB). */
static void test_too_many_entries(void) {
  const size_t count = (size_t)ST_MAX_TENSORS + 1, per = 6; /* "a":0, */
  size_t hlen = 2 + count * per - 1;
  unsigned char *b = malloc(8 + hlen);
  put_u64(b, hlen);
  char *h = (char *)b + 8;
  h[0] = '{';
  for (size_t i = 0; i < count; i++) memcpy(h + 1 + i * per, "\"a\":0,", per);
  h[hlen - 1] = '}';
  char path[128];
  new_path(path, sizeof path);
  CU_ASSERT_FATAL(write_file(path, b, 8 + hlen));
  /* the tracking sees the libraries' allocations: loading the valid file
   * allocates the embedding table (260 x 64 floats) */
  enum { V = 260 };
  float logits[V];
  tu_alloc_reset_largest();
  CU_ASSERT(load_ok(g_valid, logits));
  CU_ASSERT(tu_alloc_largest() >= 260 * 64 * sizeof(float));
  char want[64];
  snprintf(want, sizeof want, "more than %d entries in the header", ST_MAX_TENSORS);
  tu_alloc_reset_largest();
  expect_load_fails(path, HSART_EFORMAT, KEYS(want));
  size_t largest = tu_alloc_largest();
  CU_ASSERT_EQUAL(unlink(path), 0);
  if (largest > ((size_t)4 << 20))
    fprintf(stderr, "\n  largest allocation refusing the header: %zu bytes\n", largest);
  CU_ASSERT(largest <= ((size_t)4 << 20));
  free(b);
}

/* ---- the weights against the model ------------------------------------------ */

static void test_missing_tensor(void) {
  wt w[MAXW];
  int n = 0, gone = find_w("decoder.2.mlp.up_proj.weight");
  CU_ASSERT_FATAL(gone >= 0);
  for (int i = 0; i < g_nw; i++)
    if (i != gone) w[n++] = g_w[i];
  build_and_expect(w, n, HSART_EMISMATCH,
                   KEYS("the weights do not match model 'dense'",
                        ": 1 missing (first: 'decoder.2.mlp.up_proj.weight' [192, 64])"));
}

static void test_extra_tensor(void) {
  wt w[MAXW + 1];
  memcpy(w, g_w, (size_t)g_nw * sizeof *w);
  int norm = find_w("decoder.3.attn_norm.weight");
  CU_ASSERT_FATAL(norm >= 0);
  w[g_nw] = g_w[norm];
  snprintf(w[g_nw].name, sizeof w[g_nw].name, "decoder.4.attn_norm.weight");
  build_and_expect(w, g_nw + 1, HSART_EMISMATCH,
                   KEYS("the weights do not match model 'dense'",
                        ": 1 not in the model (first: 'decoder.4.attn_norm.weight')"));
}

static void test_wrong_shape(void) {
  wt w[MAXW];
  memcpy(w, g_w, (size_t)g_nw * sizeof *w);
  int k = find_w("decoder.1.attn.k_proj.weight");
  CU_ASSERT_FATAL(k >= 0);
  /* transposed: the same number of bytes, so only the model can tell */
  w[k].shape[0] = 64;
  w[k].shape[1] = 32;
  build_and_expect(w, g_nw, HSART_EMISMATCH,
                   KEYS("1 tensor of another shape ('decoder.1.attn.k_proj.weight' has shape "
                        "[64, 32], the model expects [32, 64])"));
  /* another rank */
  w[k].rank = 1;
  w[k].shape[0] = 2048;
  build_and_expect(w, g_nw, HSART_EMISMATCH,
                   KEYS("'decoder.1.attn.k_proj.weight' has shape [2048], "
                        "the model expects [32, 64]"));
}

/* Every kind of difference at once: each is counted and its first named,
 * in one message (a user fixing them one run at a time would never end). */
static void test_mismatch_counts(void) {
  wt w[MAXW + 2];
  int n = 0, k = find_w("decoder.1.attn.k_proj.weight");
  int gone1 = find_w("decoder.2.mlp.up_proj.weight"), gone2 = find_w("decoder.0.attn_norm.weight");
  CU_ASSERT_FATAL(k >= 0 && gone1 >= 0 && gone2 >= 0);
  for (int i = 0; i < g_nw; i++)
    if (i != gone1 && i != gone2) w[n++] = g_w[i];
  for (int i = 0; i < n; i++)
    if (!strcmp(w[i].name, "decoder.1.attn.k_proj.weight")) w[i].shape[0] = 64, w[i].shape[1] = 32;
  for (int j = 0; j < 2; j++) {
    w[n] = g_w[k];
    snprintf(w[n].name, sizeof w[n].name, "extra.%d.weight", j);
    n++;
  }
  build_and_expect(w, n, HSART_EMISMATCH,
                   KEYS("1 tensor of another shape ('decoder.1.attn.k_proj.weight'",
                        "; 2 missing (first: 'decoder.", "; 2 not in the model (first: 'extra.0.weight')"));
}

static void test_non_finite(void) {
  wt w[MAXW];
  memcpy(w, g_w, (size_t)g_nw * sizeof *w);
  int k = find_w("decoder.0.attn.v_proj.weight");
  CU_ASSERT_FATAL(k >= 0);
  size_t n = numel_of(&w[k]);
  float *bad = malloc(n * sizeof *bad);
  memcpy(bad, w[k].src, n * sizeof *bad);
  w[k].src = bad;
  /* NaN in an F32 file */
  bad[17] = NAN;
  build_and_expect(w, g_nw, HSART_EFORMAT,
                   KEYS("tensor 'decoder.0.attn.v_proj.weight' holds a non-finite value at "
                        "element 17"));
  /* +Inf in a BF16 file */
  bad[17] = g_w[k].src[17];
  bad[2047] = INFINITY;
  for (int i = 0; i < g_nw; i++) w[i].dtype = "BF16";
  build_and_expect(w, g_nw, HSART_EFORMAT,
                   KEYS("tensor 'decoder.0.attn.v_proj.weight' holds a non-finite value at "
                        "element 2047"));
  /* a value too large for F16 is stored as -Inf there, and refused */
  bad[2047] = g_w[k].src[2047];
  bad[0] = -70000.0f;
  for (int i = 0; i < g_nw; i++) w[i].dtype = "F16";
  build_and_expect(w, g_nw, HSART_EFORMAT,
                   KEYS("tensor 'decoder.0.attn.v_proj.weight' holds a non-finite value at "
                        "element 0"));
  free(bad);
}

/* ---- files that load ---------------------------------------------------------- */

static double max_rel_diff(const float *a, const float *b, int64_t n) {
  double d = 0, scale = 0;
  for (int64_t i = 0; i < n; i++) {
    d = tu_worse(d, tu_absdiff(a[i], b[i]));
    scale = tu_worse(scale, fabs((double)a[i]));
  }
  return d / scale;
}

/* The same weights as F16 and as BF16 load, and give the f32 file's logits
 * up to the rounding of 16 bits; exactly those of an f32 file holding the
 * rounded values. */
static void test_16_bit_files(void) {
  enum { V = 260 };
  float ref[V], got[V], same[V];
  CU_ASSERT_FATAL(load_ok(g_valid, ref));
  /* the file as built here is the file init-weights wrote */
  CU_ASSERT_FATAL(build_and_load(g_w, g_nw, NULL, false, 0, got));
  CU_ASSERT_EQUAL(memcmp(ref, got, sizeof ref), 0);

  static const char *const dtypes[] = {"F16", "BF16"};
  /* observed: about 3.3e-4 (F16) and 3.3e-3 (BF16) of the largest logit */
  static const double tol[] = {2e-3, 2e-2};
  for (int d = 0; d < 2; d++) {
    wt w[MAXW], r[MAXW];
    float *rounded[MAXW];
    for (int i = 0; i < g_nw; i++) {
      w[i] = g_w[i];
      w[i].dtype = dtypes[d];
      size_t n = numel_of(&g_w[i]);
      rounded[i] = malloc(n * sizeof(float));
      for (size_t e = 0; e < n; e++)
        rounded[i][e] = d == 0 ? ut_f16_to_f32(ut_f32_to_f16(g_w[i].src[e]))
                               : ut_bf16_to_f32(ut_f32_to_bf16(g_w[i].src[e]));
      r[i] = g_w[i];
      r[i].src = rounded[i];
    }
    if (build_and_load(w, g_nw, NULL, false, 0, got)) {
      double rel = max_rel_diff(ref, got, V);
      if (rel > tol[d] || g_show)
        fprintf(stderr, "\n  %s logits vs F32: %g of the largest", dtypes[d], rel);
      CU_ASSERT(rel <= tol[d]);
      /* rounding did happen: the 16-bit file is not the f32 one */
      CU_ASSERT(rel > 0);
      /* the 16-bit file holds exactly the rounded values: held in f32
       * both, the same bits; by default a BF16 file's linears read bf16
       * panels (no folded norms), the same numbers in another order */
      g_wdt = HSART_WEIGHTS_F32;
      float got32[V];
      if (build_and_load(r, g_nw, NULL, false, 0, same) &&
          build_and_load(w, g_nw, NULL, false, 0, got32)) {
        CU_ASSERT_EQUAL(memcmp(same, got32, sizeof got32), 0);
        CU_ASSERT(max_rel_diff(same, got, V) <= 1e-5);
      }
      g_wdt = HSART_WEIGHTS_KEEP;
    }
    for (int i = 0; i < g_nw; i++) free(rounded[i]);
  }
  /* a file mixing the three types loads too */
  wt w[MAXW];
  for (int i = 0; i < g_nw; i++) {
    w[i] = g_w[i];
    w[i].dtype = i % 3 == 0 ? "F32" : i % 3 == 1 ? "F16" : "BF16";
  }
  if (build_and_load(w, g_nw, NULL, false, 0, got)) CU_ASSERT(max_rel_diff(ref, got, V) <= tol[1]);
}

static void test_metadata(void) {
  enum { V = 260 };
  float ref[V], got[V];
  CU_ASSERT_FATAL(load_ok(g_valid, ref));
  /* none at all */
  if (build_and_load(g_w, g_nw, NULL, false, 0, got)) CU_ASSERT_EQUAL(memcmp(ref, got, sizeof ref), 0);
  /* first, nested, with arrays and a tensor-like entry inside */
  const char *meta = "{\"format\": \"pt\", \"nested\": {\"list\": [1, 2.5, null, true]}, "
                     "\"fake\": {\"dtype\": \"I64\", \"shape\": [-1]}}";
  if (build_and_load(g_w, g_nw, meta, false, 0, got)) CU_ASSERT_EQUAL(memcmp(ref, got, sizeof ref), 0);
  /* last, and empty */
  if (build_and_load(g_w, g_nw, "{}", true, 0, got)) CU_ASSERT_EQUAL(memcmp(ref, got, sizeof ref), 0);
  /* st_write's own metadata, as init-weights writes it, does not count as a tensor */
  st_file f;
  char err[600];
  CU_ASSERT_EQUAL_FATAL(st_open(g_valid, &f, err, sizeof err), HSART_OK);
  CU_ASSERT_EQUAL(f.ntensors, g_nw);
  CU_ASSERT_PTR_NULL(st_find(&f, "__metadata__"));
  const unsigned char *map = f.map;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | map[i];
  CU_ASSERT_FATAL(hlen < f.size);
  char *hdr = strndup((const char *)map + 8, (size_t)hlen);
  CU_ASSERT(tu_contains(hdr, "\"__metadata__\":{\"hsac_model\":\"dense\""));
  free(hdr);
  st_close(&f);
}

static void test_padded_header(void) {
  enum { V = 260 };
  float ref[V], got[V];
  CU_ASSERT_FATAL(load_ok(g_valid, ref));
  /* 8 keeps the data aligned; 1 and 13 leave f32 data misaligned, which
   * must be read without undefined behaviour (UBSan) */
  static const int pads[] = {8, 1, 13, 4096};
  for (int i = 0; i < 4; i++)
    if (build_and_load(g_w, g_nw, NULL, false, pads[i], got))
      CU_ASSERT_EQUAL(memcmp(ref, got, sizeof ref), 0);
}

/* ---- st_write and the conversions ------------------------------------------ */

/* A weights file rewritten while it was read is caught when the load
 * ends (its size, times or inode differ from when it was opened), instead
 * of a silent mix of old and new values. */
static void test_changed_while_read(void) {
  char path[128];
  new_path(path, sizeof path);
  size_t n = 0;
  FILE *in = fopen(g_valid, "rb");
  CU_ASSERT_FATAL(in != NULL);
  unsigned char *bytes = malloc(1 << 20);
  n = fread(bytes, 1, 1 << 20, in);
  fclose(in);
  CU_ASSERT_FATAL(n > 8 && n < (1 << 20));
  char err[600];
  for (int how = 0; how < 4; how++) {
    CU_ASSERT_FATAL(write_file(path, bytes, n));
    st_file f;
    CU_ASSERT_EQUAL_FATAL(st_open(path, &f, err, sizeof err), HSART_OK);
    if (how == 1) { /* grows */
      FILE *a = fopen(path, "ab");
      fputc(' ', a);
      fclose(a);
    } else if (how == 2) { /* same size, other contents and times */
      struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
      CU_ASSERT_EQUAL(utimensat(AT_FDCWD, path, ts, 0), 0);
    } else if (how == 3) { /* replaced by another file under the same name */
      char other[160];
      snprintf(other, sizeof other, "%s.new", path);
      CU_ASSERT_FATAL(write_file(other, bytes, n));
      CU_ASSERT_EQUAL(rename(other, path), 0);
    }
    err[0] = 0;
    hsart_status st = st_check_unchanged(path, &f, err, sizeof err);
    if (how == 0) {
      CU_ASSERT_EQUAL(st, HSART_OK);
    } else {
      CU_ASSERT_EQUAL(st, HSART_EIO);
      CU_ASSERT(has_all(err, KEYS(path, "changed while it was read")));
    }
    st_close(&f);
  }
  CU_ASSERT_EQUAL(unlink(path), 0);
  free(bytes);
}

static void test_write_round_trip(void) {
  float a[24], b[5], c = -0.0f;
  for (int i = 0; i < 24; i++) a[i] = (float)i * 0.37f - 3.0f;
  b[0] = 1e-40f; /* f32 subnormal */
  b[1] = 3.4028235e38f;
  b[2] = -1.0f / 3.0f;
  b[3] = INFINITY;
  b[4] = NAN;
  const st_out_tensor ts[] = {
      {"layer.a", 3, {2, 3, 4}, a},
      {"b", 1, {5}, b},
      {"scalar", 0, {0}, &c},
  };
  char path[128], err[600];
  new_path(path, sizeof path);
  CU_ASSERT_EQUAL_FATAL(st_write(path, ts, 3, "{\"note\": \"x\"}", err, sizeof err), HSART_OK);
  st_file f;
  CU_ASSERT_EQUAL_FATAL(st_open(path, &f, err, sizeof err), HSART_OK);
  CU_ASSERT_EQUAL(f.ntensors, 3);
  for (int i = 0; i < 3; i++) {
    const st_tensor *t = st_find(&f, ts[i].name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->name, ts[i].name);
    CU_ASSERT_EQUAL(t->dtype, ST_F32);
    CU_ASSERT_EQUAL(t->rank, ts[i].rank);
    size_t n = 1;
    for (int d = 0; d < t->rank; d++) {
      CU_ASSERT_EQUAL(t->shape[d], ts[i].shape[d]);
      n *= (size_t)ts[i].shape[d];
    }
    CU_ASSERT_EQUAL(t->end - t->begin, n * 4);
    CU_ASSERT_EQUAL(memcmp(t->data, ts[i].data, n * 4), 0);
    CU_ASSERT_EQUAL((uintptr_t)t->data % 4, 0);
    float out[24];
    st_to_f32(t, out);
    CU_ASSERT_EQUAL(memcmp(out, ts[i].data, n * 4), 0);
  }
  CU_ASSERT_PTR_NULL(st_find(&f, "note"));
  CU_ASSERT_PTR_NULL(st_find(&f, "c"));
  CU_ASSERT_PTR_NULL(st_find(&f, "__metadata__"));
  st_close(&f);
  CU_ASSERT_EQUAL(unlink(path), 0);
  /* a failed write leaves nothing behind (the suite's cleanup checks the
   * folder is empty) */
  CU_ASSERT_EQUAL(st_write(path, ts, 3, "{not json", err, sizeof err), HSART_EINVAL);
  CU_ASSERT(tu_contains(err, "metadata is not valid JSON"));
  CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
  char nodir[160];
  snprintf(nodir, sizeof nodir, "%s/no-such-dir/w.safetensors", g_dir);
  CU_ASSERT_EQUAL(st_write(nodir, ts, 3, NULL, err, sizeof err), HSART_EIO);
  CU_ASSERT(tu_contains(err, nodir));
}

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Round to nearest even into bf16, computed independently (in double). */
static uint16_t ref_bf16(float x) {
  uint32_t u = bits_of(x);
  if (isinf(x)) return (uint16_t)(u >> 16);
  uint32_t lo = u & 0xffff0000u;
  double vlo = fabs((double)float_of(lo));
  double vhi = (lo & 0x7fffffffu) == 0x7f7f0000u ? ldexp(1, 128)  /* past the largest */
                                                 : fabs((double)float_of(lo + 0x10000u));
  double ax = fabs((double)x);
  if (ax - vlo < vhi - ax || (ax - vlo == vhi - ax && !(lo & 0x10000u))) return (uint16_t)(lo >> 16);
  return (uint16_t)((lo + 0x10000u) >> 16);
}

static void test_conversions(void) {
  /* bf16 */
  CU_ASSERT_EQUAL(ut_f32_to_bf16(1.0f), 0x3f80);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(-2.5f), 0xc020);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(65504.0f), 0x4780);            /* rounds up to 65536 */
  CU_ASSERT_EQUAL(ut_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie: to even (down) */
  CU_ASSERT_EQUAL(ut_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);  /* tie: to even (up) */
  CU_ASSERT_EQUAL(ut_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81); /* past the tie */
  CU_ASSERT_EQUAL(ut_f32_to_bf16(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(-0.0f), 0x8000);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(INFINITY), 0x7f80);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(-INFINITY), 0xff80);
  CU_ASSERT_EQUAL(ut_f32_to_bf16(3.4028235e38f), 0x7f80);       /* FLT_MAX rounds to inf */
  CU_ASSERT(isnan(ut_bf16_to_f32(ut_f32_to_bf16(NAN))));
  /* a NaN whose payload is all in the dropped bits must not become inf */
  CU_ASSERT(isnan(ut_bf16_to_f32(ut_f32_to_bf16(float_of(0x7f800001u)))));
  CU_ASSERT(isnan(ut_bf16_to_f32(ut_f32_to_bf16(float_of(0xffc00000u)))));
  CU_ASSERT_EQUAL(ut_bf16_to_f32(0x3f80), 1.0f);
  CU_ASSERT_EQUAL(ut_bf16_to_f32(0xc020), -2.5f);
  CU_ASSERT_EQUAL(ut_bf16_to_f32(0x0001), ldexpf(1, -133));
  /* f16 */
  CU_ASSERT_EQUAL(ut_f32_to_f16(1.0f), 0x3c00);
  CU_ASSERT_EQUAL(ut_f32_to_f16(-2.5f), 0xc100);
  CU_ASSERT_EQUAL(ut_f32_to_f16(65504.0f), 0x7bff);             /* the largest */
  CU_ASSERT_EQUAL(ut_f32_to_f16(65519.0f), 0x7bff);
  CU_ASSERT_EQUAL(ut_f32_to_f16(65520.0f), 0x7c00);             /* tie: to even, inf */
  CU_ASSERT_EQUAL(ut_f32_to_f16(-1e6f), 0xfc00);
  CU_ASSERT_EQUAL(ut_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);      /* tie: to even (down) */
  CU_ASSERT_EQUAL(ut_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  /* tie: to even (up) */
  CU_ASSERT_EQUAL(ut_f32_to_f16(1e-7f), 0x0002);                /* subnormal, 1.68 * 2^-24 */
  CU_ASSERT_EQUAL(ut_f32_to_f16(1e-8f), 0x0000);                /* below half of 2^-24 */
  CU_ASSERT_EQUAL(ut_f32_to_f16(-1e-8f), 0x8000);
  CU_ASSERT_EQUAL(ut_f32_to_f16(0x1p-24f), 0x0001);             /* the smallest */
  CU_ASSERT_EQUAL(ut_f32_to_f16(0x1p-25f), 0x0000);             /* tie: to even (zero) */
  CU_ASSERT_EQUAL(ut_f32_to_f16(3 * 0x1p-25f), 0x0002);         /* tie: to even (up) */
  CU_ASSERT_EQUAL(ut_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);  /* tie between the largest
                                                                   subnormal and the smallest
                                                                   normal */
  CU_ASSERT_EQUAL(ut_f32_to_f16(0x1p-14f), 0x0400);
  CU_ASSERT_EQUAL(ut_f32_to_f16(-0.0f), 0x8000);
  CU_ASSERT(isnan(ut_f16_to_f32(ut_f32_to_f16(NAN))));
  CU_ASSERT(isnan(ut_f16_to_f32(ut_f32_to_f16(float_of(0x7f800001u)))));
  CU_ASSERT_EQUAL(ut_f16_to_f32(0x0001), 0x1p-24f);
  CU_ASSERT_EQUAL(ut_f16_to_f32(0x03ff), 1023 * 0x1p-24f);
  CU_ASSERT_EQUAL(ut_f16_to_f32(0x7bff), 65504.0f);
  CU_ASSERT_EQUAL(ut_f16_to_f32(0xc100), -2.5f);
  CU_ASSERT_EQUAL(ut_f16_to_f32(0xfc00), -INFINITY);
  CU_ASSERT(isnan(ut_f16_to_f32(0x7e00)) && isnan(ut_f16_to_f32(0x7c01)));
  CU_ASSERT(signbit(ut_f16_to_f32(0x8000)) && ut_f16_to_f32(0x8000) == 0);

  /* every 16-bit value that is not NaN survives f32 and back */
  int bad16 = 0, badb = 0;
  for (uint32_t h = 0; h < 0x10000u; h++) {
    if ((h & 0x7c00) != 0x7c00 || !(h & 0x3ff))
      bad16 += ut_f32_to_f16(ut_f16_to_f32((uint16_t)h)) != h;
    if ((h & 0x7f80) != 0x7f80 || !(h & 0x7f))
      badb += ut_f32_to_bf16(ut_bf16_to_f32((uint16_t)h)) != h;
  }
  CU_ASSERT_EQUAL(bad16, 0);
  CU_ASSERT_EQUAL(badb, 0);

  /* pseudo-random floats of every magnitude against independent rounding */
  uint64_t r = 12345;
  int diff16 = 0, diffb = 0;
  for (int i = 0; i < 200000; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    float x = float_of((uint32_t)(r >> 32));
    if (isnan(x)) continue;
    diffb += ut_f32_to_bf16(x) != ref_bf16(x);
#ifdef __FLT16_MAX__
    _Float16 h = (_Float16)x;
    uint16_t hb;
    memcpy(&hb, &h, 2);
    diff16 += ut_f32_to_f16(x) != hb;
#endif
  }
  CU_ASSERT_EQUAL(diffb, 0);
  CU_ASSERT_EQUAL(diff16, 0);
}

void tu_add_weights_suite(void) {
  CU_pSuite s = CU_add_suite("weights", suite_init, suite_cleanup);
  CU_add_test(s, "file does not exist", test_missing_file);
  CU_add_test(s, "path is a directory", test_directory);
  CU_add_test(s, "empty file, shorter than 8 bytes", test_empty_and_short);
  CU_add_test(s, "header length past the end (truncated header)", test_truncated_header);
  CU_add_test(s, "a text file is not a safetensors file", test_text_file);
  CU_add_test(s, "header length over the 100 MiB limit", test_header_over_limit);
  CU_add_test(s, "header not JSON", test_header_not_json);
  CU_add_test(s, "header JSON but not an object", test_header_not_object);
  CU_add_test(s, "entry not an object, empty name", test_entry_not_object);
  CU_add_test(s, "unsupported dtype", test_unsupported_dtype);
  CU_add_test(s, "missing dtype", test_missing_dtype);
  CU_add_test(s, "shape not an array", test_shape_not_array);
  CU_add_test(s, "negative, fractional or huge shape entry", test_bad_shape_entry);
  CU_add_test(s, "rank over 8", test_rank_over_limit);
  CU_add_test(s, "data_offsets missing or malformed", test_bad_data_offsets);
  CU_add_test(s, "data_offsets begin after end", test_begin_after_end);
  CU_add_test(s, "data section truncated", test_truncated_data);
  CU_add_test(s, "byte size does not match dtype x shape", test_size_mismatch);
  CU_add_test(s, "tensors overlap", test_overlap);
  CU_add_test(s, "the same name twice", test_duplicate_name);
  CU_add_test(s, "bytes after the header's JSON", test_trailing_header_bytes);
  CU_add_test(s, "tensor names are escaped in messages", test_names_escaped);
  CU_add_test(s, "written files get 0666 less the umask", test_write_mode);
  CU_add_test(s, "too many entries, refused before allocating", test_too_many_entries);
  CU_add_test(s, "model: missing tensor", test_missing_tensor);
  CU_add_test(s, "model: extra tensor", test_extra_tensor);
  CU_add_test(s, "model: wrong shape", test_wrong_shape);
  CU_add_test(s, "model: every difference counted", test_mismatch_counts);
  CU_add_test(s, "model: NaN or Inf in a tensor", test_non_finite);
  CU_add_test(s, "F16 and BF16 files load, logits close to F32", test_16_bit_files);
  CU_add_test(s, "__metadata__ entry", test_metadata);
  CU_add_test(s, "header padded with spaces", test_padded_header);
  CU_add_test(s, "what the reference reader rejects is rejected", test_header_reference_rejects);
  CU_add_test(s, "st_write then st_open round trip", test_write_round_trip);
  CU_add_test(s, "a file changed while it was read is refused", test_changed_while_read);
  CU_add_test(s, "f16 and bf16 conversions", test_conversions);
}
