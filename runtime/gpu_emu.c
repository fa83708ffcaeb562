/* gpu_emu.c - the emulated device of gpu.h: kernels run on this CPU under
 * codegen/cuda/emu.h, "device memory" is host memory allocated and tracked
 * here, and every launch is synchronous (a stream is only a name).
 *
 * What it adds over calling the emulated kernels directly: the runtime
 * works through the same calls it makes on a GPU, and owns() lets it check
 * that every pointer it hands a kernel came from this layer. */
#include "runtime/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda/cuda.h"

typedef struct alloc {
  rt_dptr base;
  size_t size;
  rt_gpu_mem kind;
} alloc;

struct rt_gpu_kernel {
  cg_cuda_emu_fn fn;
  struct rt_gpu_kernel *next;
};

typedef struct emu_gpu {
  rt_gpu g;
  cg_cuda_emu *mod;
  alloc *a;            /* sorted by base */
  size_t n, cap;
  rt_gpu_kernel *kernels;
  /* HSAC_EMU_FAIL=launch:N|sync:N (tests): the Nth launch, or the Nth
   * sync that waits for a launch (where a kernel's fault would surface),
   * from the device's opening fails, once, as a device fault would */
  int fail_kind;        /* 0 none, 1 launch, 2 sync */
  long long fail_at;    /* counts down to the failing call */
  bool launched;        /* a launch since the last sync */
} emu_gpu;

/* Whether this call (kind) is the one HSAC_EMU_FAIL asked to fail. */
static int injected(emu_gpu *e, int kind, char *err, size_t errsize) {
  bool counts = kind == 1 || e->launched;
  bool fail = e->fail_kind == kind && counts && e->fail_at > 0 && --e->fail_at == 0;
  e->launched = kind == 1 && !fail; /* a launch that runs; a sync clears it */
  if (!fail) return 0;
  snprintf(err, errsize, "an injected device fault (HSAC_EMU_FAIL=%s:N)",
           kind == 1 ? "launch" : "sync");
  return -1;
}

struct rt_gpu_stream {
  int unused;
};

static int load(rt_gpu *g, const char *source, const struct cg_cache *cache, char *err,
                size_t errsize) {
  emu_gpu *e = (emu_gpu *)g;
  if (e->mod) {
    snprintf(err, errsize, "internal error: the device already holds a module");
    return -1;
  }
  cg_cuda_emu_stats st;
  if (cg_cuda_emu_load(source, cache, &e->mod, &st, err, errsize)) return -1;
  snprintf(g->module, sizeof g->module, "compiled by %s under the emulator, %s in %.0f ms",
           st.compiler, st.cache_hit ? "loaded from the kernel cache" : "compiled", st.ms);
  return 0;
}

static rt_gpu_kernel *kernel(rt_gpu *g, const char *name) {
  emu_gpu *e = (emu_gpu *)g;
  cg_cuda_emu_fn fn = e->mod ? cg_cuda_emu_lookup(e->mod, name) : NULL;
  if (!fn) return NULL;
  rt_gpu_kernel *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->fn = fn;
  k->next = e->kernels;
  e->kernels = k;
  return k;
}

/* The index of the last allocation whose base is <= p, or -1. */
static ptrdiff_t find(const emu_gpu *e, rt_dptr p) {
  size_t lo = 0, hi = e->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (e->a[mid].base <= p) lo = mid + 1;
    else hi = mid;
  }
  return (ptrdiff_t)lo - 1;
}

static int ealloc(rt_gpu *g, size_t bytes, rt_gpu_mem kind, rt_dptr *p, char *err,
                  size_t errsize) {
  emu_gpu *e = (emu_gpu *)g;
  *p = 0;
  if (e->n == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 64;
    alloc *q = realloc(e->a, cap * sizeof *q);
    if (!q) goto oom;
    e->a = q;
    e->cap = cap;
  }
  void *m = malloc(bytes ? bytes : 1);
  if (!m) goto oom;
  /* fill new memory with NaNs' bytes, as a GPU gives no zeros either: a
   * kernel reading what was never written shows up in the results */
  memset(m, 0xff, bytes);
  rt_dptr d = (rt_dptr)(uintptr_t)m;
  ptrdiff_t at = find(e, d) + 1;
  memmove(e->a + at + 1, e->a + at, (e->n - (size_t)at) * sizeof *e->a);
  e->a[at] = (alloc){d, bytes ? bytes : 1, kind};
  e->n++;
  *p = d;
  return 0;
oom:
  snprintf(err, errsize, "out of %s memory for %zu bytes (emulated)",
           kind == RT_GPU_HOST ? "pinned host" : "device", bytes);
  return -1;
}

static void efree(rt_gpu *g, rt_dptr p, rt_gpu_mem kind) {
  emu_gpu *e = (emu_gpu *)g;
  if (!p) return;
  ptrdiff_t at = find(e, p);
  if (at < 0 || e->a[at].base != p || e->a[at].kind != kind) {
    /* a bad free is a runtime bug: make it loud in the tests */
    fprintf(stderr, "hsac: internal error: freeing %#llx, which the emulated device did not "
            "allocate as %s memory\n", (unsigned long long)p,
            kind == RT_GPU_HOST ? "host" : "device");
    abort();
  }
  free((void *)(uintptr_t)p);
  memmove(e->a + at, e->a + at + 1, (e->n - (size_t)at - 1) * sizeof *e->a);
  e->n--;
}

static bool owns(const rt_gpu *g, rt_dptr p, size_t n) {
  const emu_gpu *e = (const emu_gpu *)g;
  ptrdiff_t at = find(e, p);
  return at >= 0 && p - e->a[at].base + n <= e->a[at].size;
}

static int check(const emu_gpu *e, rt_dptr p, size_t n, const char *what, char *err,
                 size_t errsize) {
  if (n == 0 || owns(&e->g, p, n)) return 0;
  snprintf(err, errsize, "internal error: a %s of %zu bytes at %#llx is outside the device's "
           "allocations", what, n, (unsigned long long)p);
  return -1;
}

static int stream_new(rt_gpu *g, rt_gpu_stream **s, char *err, size_t errsize) {
  (void)g;
  *s = calloc(1, sizeof **s);
  if (!*s) snprintf(err, errsize, "out of memory");
  return *s ? 0 : -1;
}

static void stream_free(rt_gpu *g, rt_gpu_stream *s) {
  (void)g;
  free(s);
}

static int h2d(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, const void *src, size_t n, char *err,
               size_t errsize) {
  (void)s;
  if (check((emu_gpu *)g, dst, n, "copy to the device", err, errsize)) return -1;
  if (n) memcpy((void *)(uintptr_t)dst, src, n);
  return 0;
}

static int d2h(rt_gpu *g, rt_gpu_stream *s, void *dst, rt_dptr src, size_t n, char *err,
               size_t errsize) {
  (void)s;
  if (check((emu_gpu *)g, src, n, "copy from the device", err, errsize)) return -1;
  if (n) memcpy(dst, (const void *)(uintptr_t)src, n);
  return 0;
}

static int d2d(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, rt_dptr src, size_t n, char *err,
               size_t errsize) {
  (void)s;
  emu_gpu *e = (emu_gpu *)g;
  if (check(e, src, n, "device copy's source", err, errsize) ||
      check(e, dst, n, "device copy's destination", err, errsize))
    return -1;
  if (n) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
  return 0;
}

static int launch(rt_gpu *g, rt_gpu_stream *s, rt_gpu_kernel *k, const unsigned grid[3],
                  const unsigned block[3], const void *args, size_t argbytes, char *err,
                  size_t errsize) {
  (void)s, (void)argbytes;
  if (injected((emu_gpu *)g, 1, err, errsize)) return -1;
  cg_cuda_emu_launch l;
  memcpy(l.grid, grid, sizeof l.grid);
  memcpy(l.block, block, sizeof l.block);
  return k->fn(args, &l, err, errsize) ? -1 : 0;
}

static int esync(rt_gpu *g, rt_gpu_stream *s, char *err, size_t errsize) {
  (void)s;
  return injected((emu_gpu *)g, 2, err, errsize);
}

static void eclose(rt_gpu *g) {
  emu_gpu *e = (emu_gpu *)g;
  if (!e) return;
  for (size_t i = 0; i < e->n; i++) free((void *)(uintptr_t)e->a[i].base);
  free(e->a);
  while (e->kernels) {
    rt_gpu_kernel *n = e->kernels->next;
    free(e->kernels);
    e->kernels = n;
  }
  cg_cuda_emu_free(e->mod);
  free(e);
}

static const rt_gpu_ops emu_ops = {
    .load = load,
    .kernel = kernel,
    .alloc = ealloc,
    .free = efree,
    .stream_new = stream_new,
    .stream_free = stream_free,
    .h2d = h2d,
    .d2h = d2h,
    .d2d = d2d,
    .launch = launch,
    .sync = esync,
    .owns = owns,
    .close = eclose,
};

int rt_gpu_emu_open(rt_gpu **out, char *err, size_t errsize) {
  emu_gpu *e = calloc(1, sizeof *e);
  *out = NULL;
  if (!e) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  e->g.ops = &emu_ops;
  const char *f = getenv("HSAC_EMU_FAIL");
  if (f && *f) {
    const char *n = !strncmp(f, "launch:", 7) ? f + 7 : !strncmp(f, "sync:", 5) ? f + 5 : NULL;
    e->fail_kind = f[0] == 'l' ? 1 : 2;
    /* decimal digits only, at most 9 of them */
    size_t nd = n ? strspn(n, "0123456789") : 0;
    e->fail_at = nd && nd <= 9 && !n[nd] ? strtoll(n, NULL, 10) : 0;
    if (e->fail_at <= 0) {
      snprintf(err, errsize, "HSAC_EMU_FAIL='%.40s': expected launch:N or sync:N with N >= 1",
               f);
      free(e);
      return -1;
    }
  }
  snprintf(e->g.desc, sizeof e->g.desc, "the emulator (codegen/cuda/emu.h) on this CPU");
  /* its tuning entries never match a GPU's */
  snprintf(e->g.id.name, sizeof e->g.id.name, "emulator");
  snprintf(e->g.id.arch, sizeof e->g.id.arch, "host");
  snprintf(e->g.id.driver, sizeof e->g.id.driver, "-");
  snprintf(e->g.id.compiler, sizeof e->g.id.compiler, "emu.h");
  *out = &e->g;
  return 0;
}
