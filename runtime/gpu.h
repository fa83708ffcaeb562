/* gpu.h - the device under the CUDA backend: memory, copies, streams and
 * launches, behind one table of functions with two implementations.
 *
 *   rt_gpu_cuda_open  a real GPU through the CUDA driver API (loaded with
 *                     dlopen, runtime/cuda_driver.c): the module is compiled
 *                     by NVRTC into a CUBIN for the device's architecture
 *                     and kept in the kernel cache;
 *   rt_gpu_emu_open   an emulated device (runtime/gpu_emu.c): "device
 *                     memory" is host memory the device layer allocates and
 *                     tracks, kernels run under codegen/cuda/emu.h.  Every
 *                     launch checks that each pointer the kernel is given
 *                     lies in memory allocated through this layer, so a
 *                     runtime that handed a kernel a host pointer (a tensor
 *                     it forgot to upload) fails the tests here rather than
 *                     on a GPU.
 *
 * backend_cuda.c holds every tensor of a session in memory from this layer
 * and never touches it directly: the same code runs on both.  Copies and
 * launches are ordered on a stream (one per session); errors of work queued
 * on a stream may surface at the next sync.  Every function returns 0, or
 * -1 with err set; none prints or exits. */
#ifndef HSAC_RUNTIME_GPU_H
#define HSAC_RUNTIME_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codegen/cuda/cuda.h"

struct cg_cache;

typedef uint64_t rt_dptr; /* a device address; 0 is none */

typedef enum rt_gpu_mem {
  RT_GPU_DEVICE = 0, /* device memory */
  RT_GPU_HOST = 1,   /* pinned host memory mapped into the device's address
                        space: kernels read it over the bus (where chunk
                        pages go when the device is full) */
} rt_gpu_mem;

typedef struct rt_gpu rt_gpu;
typedef struct rt_gpu_stream rt_gpu_stream;
typedef struct rt_gpu_kernel rt_gpu_kernel;

typedef struct rt_gpu_ops {
  /* Compiles a module's CUDA C and loads it (replacing no earlier one:
   * one module per device).  cache may be NULL. */
  int (*load)(rt_gpu *g, const char *source, const struct cg_cache *cache, char *err,
              size_t errsize);
  /* Kernel `name` of the loaded module, or NULL. */
  rt_gpu_kernel *(*kernel)(rt_gpu *g, const char *name);
  int (*alloc)(rt_gpu *g, size_t bytes, rt_gpu_mem kind, rt_dptr *p, char *err,
               size_t errsize);
  void (*free)(rt_gpu *g, rt_dptr p, rt_gpu_mem kind);
  int (*stream_new)(rt_gpu *g, rt_gpu_stream **s, char *err, size_t errsize);
  void (*stream_free)(rt_gpu *g, rt_gpu_stream *s);
  /* Copies, queued on s: host to device, device to host (the host buffer
   * must stay valid until the next sync), device to device. */
  int (*h2d)(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, const void *src, size_t n, char *err,
             size_t errsize);
  int (*d2h)(rt_gpu *g, rt_gpu_stream *s, void *dst, rt_dptr src, size_t n, char *err,
             size_t errsize);
  int (*d2d)(rt_gpu *g, rt_gpu_stream *s, rt_dptr dst, rt_dptr src, size_t n, char *err,
             size_t errsize);
  /* Queues kernel k on s with grid x block threads and its one parameter,
   * args (argbytes bytes, passed by value). */
  int (*launch)(rt_gpu *g, rt_gpu_stream *s, rt_gpu_kernel *k, const unsigned grid[3],
                const unsigned block[3], const void *args, size_t argbytes, char *err,
                size_t errsize);
  /* Waits for everything queued on s. */
  int (*sync)(rt_gpu *g, rt_gpu_stream *s, char *err, size_t errsize);
  /* Whether [p, p + n) lies in one allocation of this layer (NULL: the
   * layer cannot tell; only the emulator can). */
  bool (*owns)(const rt_gpu *g, rt_dptr p, size_t n);
  void (*close)(rt_gpu *g);
} rt_gpu_ops;

struct rt_gpu {
  const rt_gpu_ops *ops;
  char desc[256];      /* the device: name, architecture, driver */
  char module[256];    /* how the module was built: compiler, cache, time */
  int64_t free_bytes;  /* device memory free when opened (0: unknown) */
  cg_tuning_device id; /* the key of its entries in the tuning database */
};

/* The first GPU of the CUDA driver (0, or -1 with err: no driver, no
 * device, or a driver hsac cannot use). */
int rt_gpu_cuda_open(rt_gpu **out, char *err, size_t errsize);
/* The emulated device (fails only for memory, or a malformed
 * HSAC_EMU_FAIL: launch:N or sync:N makes its Nth launch or sync fail
 * once, as a device fault would, so tests reach the runtime's fault path). */
int rt_gpu_emu_open(rt_gpu **out, char *err, size_t errsize);

#endif
