/* cuda_driver.c - finding a GPU through the CUDA driver API, loaded with
 * dlopen so that every hsac binary runs where there is no driver (see
 * backend.h, rt_cuda_probe).  Only the driver's versioned entry points that
 * exist since CUDA 3.2 are used. */
#include "runtime/backend.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_get_fn)(int *, int);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_attr_fn)(int *, int, int);
typedef int (*cu_version_fn)(int *);

enum { CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 };

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  return p;
}

int rt_cuda_probe(char *desc, size_t size, char *err, size_t errsize) {
  desc[0] = 0;
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(err, errsize, "no GPU: the CUDA driver (libcuda.so.1) is not installed");
    return 0;
  }
  cu_init_fn init;
  cu_count_fn count;
  cu_get_fn get;
  cu_name_fn name;
  cu_attr_fn attr;
  cu_version_fn version;
  void *p;
  p = sym(lib, "cuInit"), memcpy(&init, &p, sizeof p);
  p = sym(lib, "cuDeviceGetCount"), memcpy(&count, &p, sizeof p);
  p = sym(lib, "cuDeviceGet"), memcpy(&get, &p, sizeof p);
  p = sym(lib, "cuDeviceGetName"), memcpy(&name, &p, sizeof p);
  p = sym(lib, "cuDeviceGetAttribute"), memcpy(&attr, &p, sizeof p);
  p = sym(lib, "cuDriverGetVersion"), memcpy(&version, &p, sizeof p);
  int n = 0, rc;
  if (!init || !count || !get || !name || !attr || !version) {
    snprintf(err, errsize, "the CUDA driver (libcuda.so.1) lacks the entry points hsac needs");
    dlclose(lib);
    return -1;
  }
  if ((rc = init(0)) != 0 || (rc = count(&n)) != 0 || n == 0) {
    snprintf(err, errsize, "no GPU: the CUDA driver found no usable device (%s %d)",
             n == 0 && rc == 0 ? "count" : "error", n == 0 && rc == 0 ? 0 : rc);
    dlclose(lib);
    return 0;
  }
  int dev = 0, major = 0, minor = 0, drv = 0;
  char nm[128] = "?";
  get(&dev, 0);
  name(nm, sizeof nm, dev);
  attr(&major, CU_ATTR_CC_MAJOR, dev);
  attr(&minor, CU_ATTR_CC_MINOR, dev);
  version(&drv);
  snprintf(desc, size, "%s (sm_%d%d), driver %d.%d, %d device%s", nm, major, minor, drv / 1000,
           drv % 1000 / 10, n, n == 1 ? "" : "s");
  dlclose(lib);
  return n;
}
