/* safetensors.h - reading and writing safetensors files.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * "__metadata__": {...}}), then the data; offsets are relative to the end of
 * the header.  Files are memory-mapped and every offset, size and name is
 * checked before a tensor is handed out. */
#ifndef HSAC_RUNTIME_SAFETENSORS_H
#define HSAC_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/hsa_runtime.h"
#include "util/half.h" /* ut_f32_to_bf16 and its kin: the 16-bit dtypes */

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16 } st_dtype;

enum {
  ST_MAX_RANK = 8,
  ST_MAX_TENSORS = 1 << 20,
};
#define ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON at most */

typedef struct st_tensor {
  char *name;
  st_dtype dtype;
  int rank;
  int64_t shape[ST_MAX_RANK];
  uint64_t begin, end;   /* byte offsets in the data section */
  const void *data;      /* into the mapping */
} st_tensor;

typedef struct st_file {
  void *map;             /* the whole file, read-only */
  size_t size;
  st_tensor *tensors;    /* sorted by name */
  int ntensors;
  /* the model named by __metadata__.hsac_model (hsac init-weights records
   * it), or NULL; as the file has it (st_printable before printing) */
  char *written_for;
  /* the file as st_open found it (st_check_unchanged) */
  unsigned long long dev, ino;
  long long mtime_s, mtime_ns, ctime_s, ctime_ns;
} st_file;

/* Opens and validates a file.  On error fills err (a message naming the
 * file and, where there is one, the tensor) and returns a status. */
hsart_status st_open(const char *path, st_file *f, char *err, size_t errsize);
/* After the tensors were copied out: the file at path is still the one
 * st_open mapped, with the same size and modification and change times.
 * A weights file rewritten while it was read would otherwise give a
 * silent mix of old and new values (one truncated raises SIGBUS, which
 * the CLI reports).  HSART_OK, or HSART_EIO with err. */
hsart_status st_check_unchanged(const char *path, const st_file *f, char *err, size_t errsize);
/* The same over bytes in memory (the fuzzer uses it); `data` must stay
 * valid while f is in use. */
hsart_status st_parse(const void *data, size_t size, const char *name, st_file *f,
                      char *err, size_t errsize);
void st_close(st_file *f);
/* Drops the pages of tensor t's data from the process (madvise
 * MADV_DONTNEED; the file is not changed and a later read maps them again
 * from the page cache): a large file read one tensor at a time then never
 * holds more than about one tensor resident. */
void st_release(const st_file *f, const st_tensor *t);
const st_tensor *st_find(const st_file *f, const char *name);
size_t st_dtype_size(st_dtype t);
/* Copies s into out (n bytes) with non-printable bytes as \xNN, so names
 * from an untrusted file are safe to print; long names end in "...". */
void st_printable(const char *s, char *out, size_t n);
const char *st_dtype_name(st_dtype t);

/* Converts a tensor's elements to f32. */
void st_to_f32(const st_tensor *t, float *out);

/* Writing: tensors of any st_dtype (f32 unless dtype says otherwise),
 * written to PATH.tmp-XXXX and renamed into place, so an interrupted write
 * never leaves a partial file under the final name.  data holds the
 * elements little-endian, as the file stores them. */
typedef struct st_out_tensor {
  const char *name;
  int rank;
  int64_t shape[ST_MAX_RANK];
  const void *data;
  st_dtype dtype;        /* ST_F32 (0) by default */
} st_out_tensor;

hsart_status st_write(const char *path, const st_out_tensor *tensors, int n,
                      const char *metadata_json, char *err, size_t errsize);

#endif
