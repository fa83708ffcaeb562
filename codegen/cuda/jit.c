/* jit.c - compiling generated CUDA C: NVRTC for a GPU, or the host C++
 * compiler under the emulator (see cuda.h). */
#include "codegen/cuda/cuda.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cache.h"
#include "codegen/versions.h"
#include "hsac_version.h"

#include "codegen/cuda/nvrtc.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- NVRTC ----------------------------------------------------------------- */

bool cg_cuda_have_nvrtc(void) {
  cg_nvrtc n;
  char err[512];
  if (cg_nvrtc_open(&n, err, sizeof err)) return false;
  cg_nvrtc_close(&n);
  return true;
}

int cg_cuda_nvrtc(const char *source, const char *arch, bool cubin, char **out, size_t *len,
                  char **log, char *err, size_t errsize) {
  *out = NULL;
  *len = 0;
  if (log) *log = NULL;
  cg_nvrtc nv;
  if (cg_nvrtc_open(&nv, err, errsize)) return -1;
  cg_nvrtc_prog prog;
  cg_nvrtc_result r = nv.create(&prog, source, "hsac_kernels.cu", 0, NULL, NULL);
  if (r != 0) {
    snprintf(err, errsize, "NVRTC: %s", nv.error_string(r));
    cg_nvrtc_close(&nv);
    return -1;
  }
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s%s", cubin ? "" : "compute_",
           strncmp(arch, "sm_", 3) ? arch : cubin ? arch : arch + 3);
  const char *opts[] = {archopt, "--std=c++17", "--ptxas-options=-v"};
  int nopts = cubin ? 3 : 2;
  r = nv.compile(prog, nopts, opts);
  size_t lsz = 0;
  if (log && nv.log_size(prog, &lsz) == 0 && lsz > 1) {
    *log = malloc(lsz);
    if (*log && nv.log(prog, *log) != 0) (*log)[0] = 0;
  }
  if (r != 0) {
    snprintf(err, errsize, "NVRTC failed to compile the kernels for %s: %s", arch,
             nv.error_string(r));
    nv.destroy(&prog);
    cg_nvrtc_close(&nv);
    return -1;
  }
  size_t n = 0;
  r = cubin ? nv.cubin_size(prog, &n) : nv.ptx_size(prog, &n);
  if (r == 0) {
    *out = malloc(n ? n : 1);
    if (!*out) {
      snprintf(err, errsize, "out of memory");
      nv.destroy(&prog);
      cg_nvrtc_close(&nv);
      return -1;
    }
    r = cubin ? nv.cubin(prog, *out) : nv.ptx(prog, *out);
  }
  nv.destroy(&prog);
  if (r != 0) {
    free(*out);
    *out = NULL;
    snprintf(err, errsize, "NVRTC: %s", nv.error_string(r));
    cg_nvrtc_close(&nv);
    return -1;
  }
  cg_nvrtc_close(&nv);
  *len = n;
  return 0;
}

void cg_cuda_nvrtc_version(char *buf, size_t size) {
  char v[32];
  cg_nvrtc_version(v, sizeof v);
  snprintf(buf, size, "NVRTC %s", v);
}

int cg_cuda_cubin(const char *source, const char *arch, const char *salt, const cg_cache *cache,
                  char **out, size_t *len, bool *hit, char *err, size_t errsize) {
  *out = NULL;
  *len = 0;
  *hit = false;
  char ver[64];
  cg_cuda_nvrtc_version(ver, sizeof ver);
  cg_hash h;
  cg_hash_init(&h);
  cg_hash_str(&h, "hsac-cuda-cubin-1");
  cg_hash_str(&h, HSAC_VERSION);
  cg_hash_str(&h, ver);
  cg_hash_str(&h, arch);
  cg_hash_str(&h, salt ? salt : "");
  cg_hash_str(&h, source);
  char key[33];
  cg_hash_hex(&h, key);
  char cerr[512];
  int lock = cache ? cg_cache_lock(cache, key, cerr, sizeof cerr) : -2;
  void *data = NULL;
  size_t size = 0;
  int rc = 0;
  if (cache && cg_cache_get(cache, key, &data, &size, NULL, cerr, sizeof cerr) == 1) {
    *hit = true;
    *out = data;
    *len = size;
  } else {
    char *log = NULL;
    rc = cg_cuda_nvrtc(source, arch, true, out, len, &log, err, errsize);
    if (rc && log && *log) {
      size_t l = strlen(err);
      snprintf(err + l, errsize - l, ":\n%.1500s", log);
    }
    free(log);
    if (!rc && cache) cg_cache_put(cache, key, *out, *len, cerr, sizeof cerr);
  }
  if (cache) cg_cache_unlock(lock);
  return rc;
}

/* ---- the emulator ------------------------------------------------------------ */

struct cg_cuda_emu {
  void *so;
};

static int write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return -1;
  const char *p = data;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      close(fd);
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return close(fd);
}

static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len + 65536 > cap) {
      cap = cap ? 2 * cap : 1 << 20;
      char *q = realloc(buf, cap);
      if (!q) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = q;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (r == 0) break;
  }
  fclose(f);
  *n = len;
  return buf;
}

/* Runs argv (no shell); its stderr and stdout into `log`.  The exit status,
 * or -1 when it could not run. */
static int run_tool(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *cxx_name(void) {
  const char *c = getenv("CXX");
  return c && *c ? c : "c++";
}

/* "NAME VERSION-LINE" of the C++ compiler, for the cache key. */
static void cxx_version(const char *dir, char *buf, size_t size) {
  char log[4200];
  snprintf(log, sizeof log, "%s/version.txt", dir);
  char *argv[] = {(char *)cxx_name(), "--version", NULL};
  snprintf(buf, size, "%s", cxx_name());
  if (run_tool(argv, log) != 0) return;
  FILE *f = fopen(log, "r");
  if (!f) return;
  char line[256] = "";
  if (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    /* a version line longer than buf is cut (the key hashes all of buf) */
    if (snprintf(buf, size, "%s %s", cxx_name(), line) >= (int)size) buf[size - 1] = 0;
  }
  fclose(f);
  unlink(log);
}

static void rm_dir(const char *dir) {
  const char *names[] = {"emu.h", "k.cpp", "k.so", "log.txt", "version.txt"};
  char p[4200];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
}

#define EMU_FLAGS "-std=c++17", "-Og", "-fPIC", "-shared", "-w", "-DHS_EMU"

int cg_cuda_emu_load(const char *source, const cg_cache *cache, cg_cuda_emu **out,
                     cg_cuda_emu_stats *stats, char *err, size_t errsize) {
  double t0 = now_ms();
  *out = NULL;
  memset(stats, 0, sizeof *stats);
  const char *tmpd = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/hsac-emu-XXXXXX", tmpd && *tmpd ? tmpd : "/tmp");
  if (!mkdtemp(dir)) {
    snprintf(err, errsize, "cannot make a temporary folder in %s: %s",
             tmpd && *tmpd ? tmpd : "/tmp", strerror(errno));
    return -1;
  }
  cxx_version(dir, stats->compiler, sizeof stats->compiler);
  cg_hash h;
  cg_hash_init(&h);
  cg_hash_str(&h, "hsac-cuda-emu-1");
  cg_hash_str(&h, HSAC_VERSION);
  cg_hash_str(&h, stats->compiler);
  cg_hash_str(&h, cg_cuda_emu_header());
  cg_hash_str(&h, source);
  char key[33];
  cg_hash_hex(&h, key);
  char so[4200], src[4200], hdr[4200], log[4200];
  snprintf(so, sizeof so, "%s/k.so", dir);
  snprintf(src, sizeof src, "%s/k.cpp", dir);
  snprintf(hdr, sizeof hdr, "%s/emu.h", dir);
  snprintf(log, sizeof log, "%s/log.txt", dir);
  int rc = -1, lock = -2;
  void *data = NULL;
  size_t size = 0;
  char cerr[512];
  if (cache) lock = cg_cache_lock(cache, key, cerr, sizeof cerr);
  if (cache && cg_cache_get(cache, key, &data, &size, NULL, cerr, sizeof cerr) == 1) {
    stats->cache_hit = true;
    if (write_file(so, data, size)) {
      snprintf(err, errsize, "cannot write %s: %s", so, strerror(errno));
      goto out;
    }
  } else {
    if (write_file(hdr, cg_cuda_emu_header(), strlen(cg_cuda_emu_header())) ||
        write_file(src, source, strlen(source))) {
      snprintf(err, errsize, "cannot write the emulator's source in %s: %s", dir, strerror(errno));
      goto out;
    }
    char *argv[] = {(char *)cxx_name(), EMU_FLAGS, "-include", hdr, "-o", so, src, NULL};
    int st = run_tool(argv, log);
    if (st != 0) {
      size_t n = 0;
      char *msg = read_file(log, &n);
      if (msg && n > 1500) msg[1500] = 0;
      else if (msg) msg[n] = 0;
      snprintf(err, errsize, "the emulator's C++ compiler (%s) %s%s%s", cxx_name(),
               st < 0 || st == 127 ? "could not be run; set CXX to a C++17 compiler"
                                   : "failed on the generated kernels:\n",
               msg && st > 0 && st != 127 ? msg : "", "");
      free(msg);
      goto out;
    }
    free(data);
    data = read_file(so, &size);
    if (data && cache) cg_cache_put(cache, key, data, size, cerr, sizeof cerr);
  }
  cg_cuda_emu *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errsize, "out of memory");
    goto out;
  }
  m->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!m->so) {
    snprintf(err, errsize, "loading the emulated kernels failed: %s", dlerror());
    free(m);
    goto out;
  }
  *out = m;
  rc = 0;
out:
  if (cache) cg_cache_unlock(lock);
  free(data);
  rm_dir(dir); /* the loaded object stays mapped */
  stats->ms = now_ms() - t0;
  return rc;
}

cg_cuda_emu_fn cg_cuda_emu_lookup(cg_cuda_emu *m, const char *name) {
  char sym[256];
  snprintf(sym, sizeof sym, "%s__emu", name);
  void *p = dlsym(m->so, sym);
  cg_cuda_emu_fn fn;
  memcpy(&fn, &p, sizeof fn);
  return p ? fn : NULL;
}

void cg_cuda_emu_free(cg_cuda_emu *m) {
  if (!m) return;
  if (m->so) dlclose(m->so);
  free(m);
}
