/* cuda_driver.c - the CUDA driver API, loaded with dlopen so that every
 * hsac binary runs where there is no driver: finding a GPU (backend.h,
 * rt_cuda_probe) and the real device of gpu.h (rt_gpu_cuda_open).  The
 * few types and constants used are declared here, so no CUDA header is
 * needed to build; only versioned entry points (CUDA >= 4.0) are used. */
#include "runtime/backend.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/cuda/cuda.h"
#include "runtime/gpu.h"

/* ---- the device of gpu.h on a real GPU ------------------------------------ */

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;

enum { CU_MEMHOSTALLOC_PORTABLE = 1, CU_MEMHOSTALLOC_DEVICEMAP = 2,
       CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 };

/* The driver's entry points hsac calls (versioned names: CUDA >= 4.0). */
typedef struct cu_api {
  CUresult (*init)(unsigned);
  CUresult (*device_count)(int *);
  CUresult (*device_get)(int *, int);
  CUresult (*device_name)(char *, int, int);
  CUresult (*device_attr)(int *, int, int);
  CUresult (*driver_version)(int *);
  CUresult (*ctx_retain)(CUcontext *, int);
  CUresult (*ctx_release)(int);
  CUresult (*ctx_set)(CUcontext);
  CUresult (*mem_info)(size_t *, size_t *);
  CUresult (*module_load)(CUmodule *, const void *);
  CUresult (*module_unload)(CUmodule);
  CUresult (*module_function)(CUfunction *, CUmodule, const char *);
  CUresult (*mem_alloc)(CUdeviceptr *, size_t);
  CUresult (*mem_free)(CUdeviceptr);
  CUresult (*host_alloc)(void **, size_t, unsigned);
  CUresult (*host_free)(void *);
  CUresult (*host_dptr)(CUdeviceptr *, void *, unsigned);
  CUresult (*h2d)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*d2h)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*d2d)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*stream_create)(CUstream *, unsigned);
  CUresult (*stream_destroy)(CUstream);
  CUresult (*stream_sync)(CUstream);
  CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                     unsigned, CUstream, void **, void **);
  CUresult (*error_name)(CUresult, const char **);
  CUresult (*error_string)(CUresult, const char **);
} cu_api;

struct rt_gpu_kernel {
  CUfunction fn;
  struct rt_gpu_kernel *next;
};

struct rt_gpu_stream {
  CUstream s;
};

typedef struct host_map { /* a pinned host allocation: its device address */
  CUdeviceptr d;
  void *h;
  struct host_map *next;
} host_map;

typedef struct cu_gpu {
  rt_gpu g;
  void *lib;
  cu_api f;
  int dev, major, minor, drv;
  CUcontext ctx;
  CUmodule mod;
  rt_gpu_kernel *kernels;
  host_map *hosts;
} cu_gpu;

/* "NAME: description" of a driver error. */
static void cu_err(const cu_gpu *c, CUresult r, const char *what, char *err, size_t errsize) {
  const char *n = NULL, *d = NULL;
  if (c->f.error_name) c->f.error_name(r, &n);
  if (c->f.error_string) c->f.error_string(r, &d);
  snprintf(err, errsize, "%s: CUDA error %d (%s: %s)", what, r, n ? n : "?", d ? d : "?");
}

static int cu_load(rt_gpu *g, const char *source, const struct cg_cache *cache, char *err,
                   size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  if (c->mod) {
    snprintf(err, errsize, "internal error: the device already holds a module");
    return -1;
  }
  char arch[16], salt[64];
  snprintf(arch, sizeof arch, "sm_%d%d", c->major, c->minor);
  snprintf(salt, sizeof salt, "driver %d", c->drv);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char *cubin = NULL;
  size_t len = 0;
  bool hit = false;
  if (cg_cuda_cubin(source, arch, salt, cache, &cubin, &len, &hit, err, errsize)) return -1;
  CUresult r = c->f.ctx_set(c->ctx);
  if (r == 0) r = c->f.module_load(&c->mod, cubin);
  free(cubin);
  if (r) {
    c->mod = NULL;
    cu_err(c, r, "loading the kernels' CUBIN", err, errsize);
    return -1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  char ver[64];
  cg_cuda_nvrtc_version(ver, sizeof ver);
  snprintf(g->module, sizeof g->module, "%s for %s, %s in %.0f ms", ver, arch,
           hit ? "CUBIN loaded from the kernel cache" : "compiled",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  return 0;
}

static rt_gpu_kernel *cu_kernel(rt_gpu *g, const char *name) {
  cu_gpu *c = (cu_gpu *)g;
  CUfunction fn = NULL;
  if (!c->mod || c->f.module_function(&fn, c->mod, name) || !fn) return NULL;
  rt_gpu_kernel *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->fn = fn;
  k->next = c->kernels;
  c->kernels = k;
  return k;
}

static int cu_alloc(rt_gpu *g, size_t bytes, rt_gpu_mem kind, rt_dptr *p, char *err,
                    size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  *p = 0;
  CUresult r;
  char what[96];
  if (kind == RT_GPU_DEVICE) {
    CUdeviceptr d = 0;
    r = c->f.mem_alloc(&d, bytes ? bytes : 1);
    if (!r) {
      *p = d;
      return 0;
    }
    snprintf(what, sizeof what, "allocating %zu bytes of device memory", bytes);
  } else {
    host_map *m = calloc(1, sizeof *m);
    if (!m) {
      snprintf(err, errsize, "out of memory");
      return -1;
    }
    r = c->f.host_alloc(&m->h, bytes ? bytes : 1,
                        CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
    if (!r) {
      r = c->f.host_dptr(&m->d, m->h, 0);
      if (r) c->f.host_free(m->h);
    }
    if (!r) {
      m->next = c->hosts;
      c->hosts = m;
      *p = m->d;
      return 0;
    }
    free(m);
    snprintf(what, sizeof what, "allocating %zu bytes of pinned host memory", bytes);
  }
  cu_err(c, r, what, err, errsize);
  return -1;
}

static void cu_free(rt_gpu *g, rt_dptr p, rt_gpu_mem kind) {
  cu_gpu *c = (cu_gpu *)g;
  if (!p) return;
  if (kind == RT_GPU_DEVICE) {
    c->f.mem_free(p);
    return;
  }
  for (host_map **m = &c->hosts; *m; m = &(*m)->next)
    if ((*m)->d == p) {
      host_map *h = *m;
      *m = h->next;
      c->f.host_free(h->h);
      free(h);
      return;
    }
}

static int cu_stream_new(rt_gpu *g, rt_gpu_stream **s, char *err, size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  *s = calloc(1, sizeof **s);
  if (!*s) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  CUresult r = c->f.ctx_set(c->ctx);
  if (!r) r = c->f.stream_create(&(*s)->s, 0);
  if (r) {
    cu_err(c, r, "creating a stream", err, errsize);
    free(*s);
    *s = NULL;
    return -1;
  }
  return 0;
}

static void cu_stream_free(rt_gpu *g, rt_gpu_stream *s) {
  cu_gpu *c = (cu_gpu *)g;
  if (!s) return;
  c->f.stream_destroy(s->s);
  free(s);
}

static int cu_h2d(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, const void *src, size_t n,
                  char *err, size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  CUresult r = n ? c->f.h2d(dst, src, n, s->s) : 0;
  if (r) cu_err(c, r, "copying to the device", err, errsize);
  return r ? -1 : 0;
}

static int cu_d2h(rt_gpu *g, rt_gpu_stream *s, void *dst, rt_dptr src, size_t n, char *err,
                  size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  CUresult r = n ? c->f.d2h(dst, src, n, s->s) : 0;
  if (r) cu_err(c, r, "copying from the device", err, errsize);
  return r ? -1 : 0;
}

static int cu_d2d(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, rt_dptr src, size_t n, char *err,
                  size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  CUresult r = n ? c->f.d2d(dst, src, n, s->s) : 0;
  if (r) cu_err(c, r, "copying on the device", err, errsize);
  return r ? -1 : 0;
}

static int cu_launch(rt_gpu *g, rt_gpu_stream *s, rt_gpu_kernel *k, const unsigned grid[3],
                     const unsigned block[3], const void *args, size_t argbytes, char *err,
                     size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  (void)argbytes;
  void *params[] = {(void *)args};
  CUresult r = c->f.launch(k->fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0,
                           s->s, params, NULL);
  if (r) cu_err(c, r, "launching", err, errsize);
  return r ? -1 : 0;
}

static int cu_sync(rt_gpu *g, rt_gpu_stream *s, char *err, size_t errsize) {
  cu_gpu *c = (cu_gpu *)g;
  CUresult r = c->f.stream_sync(s->s);
  if (r) cu_err(c, r, "a kernel or copy on the device failed", err, errsize);
  return r ? -1 : 0;
}

static void cu_close(rt_gpu *g) {
  cu_gpu *c = (cu_gpu *)g;
  if (!c) return;
  while (c->kernels) {
    rt_gpu_kernel *n = c->kernels->next;
    free(c->kernels);
    c->kernels = n;
  }
  while (c->hosts) {
    host_map *n = c->hosts->next;
    c->f.host_free(c->hosts->h);
    free(c->hosts);
    c->hosts = n;
  }
  if (c->mod) c->f.module_unload(c->mod);
  if (c->ctx) c->f.ctx_release(c->dev);
  if (c->lib) dlclose(c->lib);
  free(c);
}

static const rt_gpu_ops cu_ops = {
    .load = cu_load,
    .kernel = cu_kernel,
    .alloc = cu_alloc,
    .free = cu_free,
    .stream_new = cu_stream_new,
    .stream_free = cu_stream_free,
    .h2d = cu_h2d,
    .d2h = cu_d2h,
    .d2d = cu_d2d,
    .launch = cu_launch,
    .sync = cu_sync,
    .owns = NULL,
    .close = cu_close,
};

#define CU_SYM(field, name)                                   \
  do {                                                        \
    void *p_ = dlsym(lib, name);                              \
    if (!p_ && !missing) missing = name;                      \
    memcpy(&f->field, &p_, sizeof p_);                        \
  } while (0)

/* libcuda.so.1 with every entry point hsac calls in *f, or NULL with err
 * and *rc: 0 when there is no driver, -1 when it lacks one of them. */
static void *driver_open(cu_api *f, int *rc, char *err, size_t errsize) {
  memset(f, 0, sizeof *f);
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errsize, "no GPU: the CUDA driver (libcuda.so.1) is not installed");
    *rc = 0;
    return NULL;
  }
  const char *missing = NULL;
  CU_SYM(init, "cuInit");
  CU_SYM(device_count, "cuDeviceGetCount");
  CU_SYM(device_get, "cuDeviceGet");
  CU_SYM(device_name, "cuDeviceGetName");
  CU_SYM(device_attr, "cuDeviceGetAttribute");
  CU_SYM(driver_version, "cuDriverGetVersion");
  CU_SYM(ctx_retain, "cuDevicePrimaryCtxRetain");
  CU_SYM(ctx_release, "cuDevicePrimaryCtxRelease_v2");
  CU_SYM(ctx_set, "cuCtxSetCurrent");
  CU_SYM(mem_info, "cuMemGetInfo_v2");
  CU_SYM(module_load, "cuModuleLoadData");
  CU_SYM(module_unload, "cuModuleUnload");
  CU_SYM(module_function, "cuModuleGetFunction");
  CU_SYM(mem_alloc, "cuMemAlloc_v2");
  CU_SYM(mem_free, "cuMemFree_v2");
  CU_SYM(host_alloc, "cuMemHostAlloc");
  CU_SYM(host_free, "cuMemFreeHost");
  CU_SYM(host_dptr, "cuMemHostGetDevicePointer_v2");
  CU_SYM(h2d, "cuMemcpyHtoDAsync_v2");
  CU_SYM(d2h, "cuMemcpyDtoHAsync_v2");
  CU_SYM(d2d, "cuMemcpyDtoDAsync_v2");
  CU_SYM(stream_create, "cuStreamCreate");
  CU_SYM(stream_destroy, "cuStreamDestroy_v2");
  CU_SYM(stream_sync, "cuStreamSynchronize");
  CU_SYM(launch, "cuLaunchKernel");
  CU_SYM(error_name, "cuGetErrorName");
  CU_SYM(error_string, "cuGetErrorString");
  if (!missing) return lib;
  snprintf(err, errsize, "the CUDA driver (libcuda.so.1) lacks %s, which hsac needs", missing);
  dlclose(lib);
  *rc = -1;
  return NULL;
}

int rt_cuda_probe(char *desc, size_t size, char *err, size_t errsize) {
  desc[0] = 0;
  cu_api f;
  int rc = 0;
  void *lib = driver_open(&f, &rc, err, errsize);
  if (!lib) return rc;
  int n = 0;
  if ((rc = f.init(0)) != 0 || (rc = f.device_count(&n)) != 0 || n == 0) {
    snprintf(err, errsize, "no GPU: the CUDA driver found no usable device (%s %d)",
             n == 0 && rc == 0 ? "count" : "error", n == 0 && rc == 0 ? 0 : rc);
    dlclose(lib);
    return 0;
  }
  int dev = 0, major = 0, minor = 0, drv = 0;
  char nm[128] = "?";
  f.device_get(&dev, 0);
  f.device_name(nm, sizeof nm, dev);
  f.device_attr(&major, CU_ATTR_CC_MAJOR, dev);
  f.device_attr(&minor, CU_ATTR_CC_MINOR, dev);
  f.driver_version(&drv);
  snprintf(desc, size, "%s (sm_%d%d), driver %d.%d, %d device%s", nm, major, minor, drv / 1000,
           drv % 1000 / 10, n, n == 1 ? "" : "s");
  dlclose(lib);
  return n;
}

int rt_gpu_cuda_open(rt_gpu **out, char *err, size_t errsize) {
  *out = NULL;
  cu_gpu *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  c->g.ops = &cu_ops;
  int rc = 0;
  if (!(c->lib = driver_open(&c->f, &rc, err, errsize))) {
    free(c);
    return -1;
  }
  CUresult r = c->f.init(0);
  if (!r) r = c->f.device_get(&c->dev, 0);
  if (r) {
    cu_err(c, r, "no GPU: the CUDA driver found no usable device", err, errsize);
    cu_close(&c->g);
    return -1;
  }
  char nm[128] = "?";
  c->f.device_name(nm, sizeof nm, c->dev);
  c->f.device_attr(&c->major, CU_ATTR_CC_MAJOR, c->dev);
  c->f.device_attr(&c->minor, CU_ATTR_CC_MINOR, c->dev);
  c->f.driver_version(&c->drv);
  r = c->f.ctx_retain(&c->ctx, c->dev);
  if (!r) r = c->f.ctx_set(c->ctx);
  if (r) {
    c->ctx = NULL;
    cu_err(c, r, "creating the GPU's context", err, errsize);
    cu_close(&c->g);
    return -1;
  }
  size_t fr = 0, tot = 0;
  if (!c->f.mem_info(&fr, &tot)) c->g.free_bytes = (int64_t)fr;
  snprintf(c->g.id.name, sizeof c->g.id.name, "%s", nm);
  snprintf(c->g.id.arch, sizeof c->g.id.arch, "sm_%d%d", c->major, c->minor);
  snprintf(c->g.id.driver, sizeof c->g.id.driver, "%d.%d", c->drv / 1000, c->drv % 1000 / 10);
  cg_cuda_nvrtc_version(c->g.id.compiler, sizeof c->g.id.compiler);
  snprintf(c->g.desc, sizeof c->g.desc, "%s (sm_%d%d), driver %d.%d, %.1f of %.1f GiB free", nm,
           c->major, c->minor, c->drv / 1000, c->drv % 1000 / 10, (double)fr / (1 << 30),
           (double)tot / (1 << 30));
  *out = &c->g;
  return 0;
}
