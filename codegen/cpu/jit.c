/* jit.c - MLIR text -> LLVM dialect -> LLVM IR -> O3 -> object -> ORC LLJIT
 * (see jit.h).  The call sequence and its pitfalls are the ones recorded in
 * ARCHITECTURE.md ("CPU code generation, proven here"). */
#include "codegen/cpu/jit.h"
#include "codegen/cpu/kernels.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <mlir-c/IR.h>
#include <mlir-c/Diagnostics.h>
#include <mlir-c/Pass.h>
#include <mlir-c/RegisterEverything.h>
#include <mlir-c/Target/LLVMIR.h>

#include "codegen/versions.h"
#include "hsac_version.h"

/* The lowering of the dialects the emitters use (emit.c) to the LLVM
 * dialect.  Kernels take raw pointers (!llvm.ptr) and i64 sizes, so no
 * memref descriptors cross the C boundary (the tensors are the runtime's,
 * in its layout: kernels.h).  The memref passes stay in the pipeline so a
 * kernel may use memref for local buffers. */
static const char *const PIPELINE =
    "builtin.module(convert-scf-to-cf, convert-vector-to-llvm{enable-amx}, convert-math-to-llvm,"
    " expand-strided-metadata, finalize-memref-to-llvm, convert-arith-to-llvm,"
    " convert-index-to-llvm, convert-cf-to-llvm, convert-func-to-llvm,"
    " reconcile-unrealized-casts)";

/* The first bytes of a bundle of objects (emit_bundle below). */
static const char OBJS_MAGIC[8] = {'H', 'S', 'A', 'C', 'O', 'B', 'J', 'S'};

struct cg_jit {
  LLVMOrcLLJITRef jit;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* LLVM's and MLIR's process-wide registrations, done once. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_llvm(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
  mlirRegisterAllPasses();
}

/* The sparse kernels' prefetch density for LLVM's CPU name (cg_prefetch):
 * dense from Zen 5 on ("znver5", "znver6", ...); on Zen 4 dense in the
 * sparse attention only (the landmark scan lost with it there); sparse
 * elsewhere (Sapphire Rapids-class cores measured it best). */
static int prefetch_of(const char *cpu) {
  if (strncmp(cpu, "znver", 5)) return CG_PF_SPARSE;
  int gen = atoi(cpu + 5);
  return gen >= 5 ? CG_PF_DENSE : gen == 4 ? CG_PF_DENSE_ATTN : CG_PF_SPARSE;
}

int cg_target_init(cg_target *t, const char *name, char *err, size_t errsize) {
  pthread_once(&init_once, init_llvm);
  memset(t, 0, sizeof *t);
  char *triple = LLVMGetDefaultTargetTriple();
  snprintf(t->triple, sizeof t->triple, "%s", triple);
  LLVMDisposeMessage(triple);
  LLVMTargetRef tg;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &tg, &msg)) {
    snprintf(err, errsize, "no LLVM target for %s: %s", t->triple, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return -1;
  }
  if (!name || !name[0] || !strcmp(name, "host")) {
    /* the host's name can be wrong on a VM while its features are right
     * (ARCHITECTURE.md): pass both */
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    snprintf(t->cpu, sizeof t->cpu, "%s", cpu);
    snprintf(t->features, sizeof t->features, "%s", feat);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    /* 512-bit kernels use AVX512-DQ too (vreduceps in the exponentials):
     * every AVX-512 CPU but the Xeon Phi has it */
    t->vec_bits = strstr(t->features, "+avx512f") && strstr(t->features, "+avx512dq") ? 512
                  : strstr(t->features, "+avx2")                                       ? 256
                                                                                       : 128;
    t->avx512bf16 = t->vec_bits == 512 && strstr(t->features, "+avx512bf16");
    t->amx = t->avx512bf16 && strstr(t->features, "+amx-tile") && strstr(t->features, "+amx-bf16");
    t->prefetch = prefetch_of(t->cpu);
    return 0;
  }
  /* a named CPU: its own features (LLVM knows them); check it is known.
   * bf16: 1 with AVX512-BF16, 2 with AMX-BF16 too */
  static const struct { const char *name; int bits, bf16; } known[] = {
      {"x86-64", 128, 0},         {"x86-64-v2", 128, 0},      {"x86-64-v3", 256, 0},
      {"x86-64-v4", 512, 0},      {"haswell", 256, 0},        {"broadwell", 256, 0},
      {"skylake", 256, 0},        {"znver2", 256, 0},         {"znver3", 256, 0},
      {"skylake-avx512", 512, 0}, {"icelake-server", 512, 0}, {"cooperlake", 512, 1},
      {"sapphirerapids", 512, 2}, {"znver4", 512, 1},         {"znver5", 512, 1},
  };
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (!strcmp(name, known[i].name)) {
      snprintf(t->cpu, sizeof t->cpu, "%s", name);
      t->vec_bits = known[i].bits;
      t->avx512bf16 = known[i].bf16 >= 1;
      t->amx = known[i].bf16 >= 2;
      t->prefetch = prefetch_of(name);
      t->forced = true;
      return 0;
    }
  size_t n = (size_t)snprintf(err, errsize, "unknown CPU '%s'; known:", name);
  for (size_t i = 0; i < sizeof known / sizeof *known && n < errsize; i++)
    n += (size_t)snprintf(err + n, errsize - n, " %s", known[i].name);
  return -1;
}

static LLVMTargetMachineRef make_tm(const cg_target *t) {
  LLVMTargetRef tg;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &tg, &msg)) {
    LLVMDisposeMessage(msg);
    return NULL;
  }
  return LLVMCreateTargetMachine(tg, t->triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
                                 LLVMRelocPIC, LLVMCodeModelDefault);
}

typedef struct diag_buf {
  char *p;
  size_t size, n;
} diag_buf;

static void diag_write(MlirStringRef s, void *user) {
  diag_buf *b = user;
  if (b->n + 1 >= b->size) return;
  size_t k = s.length < b->size - b->n - 1 ? s.length : b->size - b->n - 1;
  memcpy(b->p + b->n, s.data, k);
  b->n += k;
  b->p[b->n] = 0;
}

static MlirLogicalResult on_diag(MlirDiagnostic d, void *user) {
  diag_buf *b = user;
  if (b->n == 0) {
    mlirLocationPrint(mlirDiagnosticGetLocation(d), diag_write, b);
    diag_write(mlirStringRefCreateFromCString(": "), b);
    mlirDiagnosticPrint(d, diag_write, b);
  }
  return mlirLogicalResultSuccess();
}

/* MLIR text -> optimized LLVM module in ctx.  Returns NULL with err. */
static LLVMModuleRef lower(const char *text, LLVMContextRef lctx, LLVMTargetMachineRef tm,
                           const cg_target *t, double *ms_lower, double *ms_opt, char *err,
                           size_t errsize) {
  double t0 = now_ms();
  MlirContext ctx = mlirContextCreate();
  MlirDialectRegistry reg = mlirDialectRegistryCreate();
  mlirRegisterAllDialects(reg);
  mlirContextAppendDialectRegistry(ctx, reg);
  mlirDialectRegistryDestroy(reg);
  mlirContextLoadAllAvailableDialects(ctx);
  mlirRegisterAllLLVMTranslations(ctx);
  err[0] = 0;
  diag_buf db = {err, errsize, 0};
  MlirDiagnosticHandlerID hid = mlirContextAttachDiagnosticHandler(ctx, on_diag, &db, NULL);
  LLVMModuleRef lm = NULL;
  MlirModule mod = mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(text));
  if (mlirModuleIsNull(mod)) {
    if (!err[0]) snprintf(err, errsize, "the generated MLIR does not parse");
    goto out;
  }
  MlirPassManager pm = mlirPassManagerCreate(ctx);
  MlirOpPassManager opm = mlirPassManagerGetAsOpPassManager(pm);
  MlirLogicalResult r = mlirParsePassPipeline(opm, mlirStringRefCreateFromCString(PIPELINE),
                                              diag_write, &db);
  if (mlirLogicalResultIsSuccess(r)) r = mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(mod));
  mlirPassManagerDestroy(pm);
  if (mlirLogicalResultIsFailure(r)) {
    if (!err[0]) snprintf(err, errsize, "lowering the generated MLIR to LLVM failed");
    mlirModuleDestroy(mod);
    goto out;
  }
  lm = mlirTranslateModuleToLLVMIR(mlirModuleGetOperation(mod), lctx);
  mlirModuleDestroy(mod);
  if (!lm) {
    if (!err[0]) snprintf(err, errsize, "translating the generated MLIR to LLVM IR failed");
    goto out;
  }
  LLVMSetTarget(lm, t->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(lm, td);
  LLVMDisposeTargetData(td);
  /* every function carries the target so O3's cost model and the backend
   * agree on the ISA */
  for (LLVMValueRef f = LLVMGetFirstFunction(lm); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f)) continue;
    LLVMAttributeRef a = LLVMCreateStringAttribute(lctx, "target-cpu", 10, t->cpu,
                                                   (unsigned)strlen(t->cpu));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, a);
    if (t->features[0]) {
      a = LLVMCreateStringAttribute(lctx, "target-features", 15, t->features,
                                    (unsigned)strlen(t->features));
      LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, a);
    }
  }
  double t1 = now_ms();
  if (ms_lower) *ms_lower = t1 - t0;
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(lm, "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errsize, "LLVM O3 failed: %s", m);
    LLVMDisposeErrorMessage(m);
    LLVMDisposeModule(lm);
    lm = NULL;
    goto out;
  }
  if (ms_opt) *ms_opt = now_ms() - t1;
out:
  mlirContextDetachDiagnosticHandler(ctx, hid);
  mlirContextDestroy(ctx);
  return lm;
}

int cg_target_bf16(const cg_target *t) {
  return t->amx ? CG_BF16_AMX : t->avx512bf16 ? CG_BF16_DOT : CG_BF16_FMA;
}

int cg_target_runnable(const cg_target *t, int bf16, char *err, size_t errsize) {
  if (!t->forced) return 0;
  cg_target host;
  if (cg_target_init(&host, NULL, err, errsize)) return -1;
  const char *need = NULL;
  if (t->vec_bits > host.vec_bits)
    need = t->vec_bits >= 512 ? "AVX-512 (512-bit vectors)" : "AVX2 (256-bit vectors)";
  else if ((bf16 == CG_BF16_DOT || bf16 == CG_BF16_AMX) && !host.avx512bf16)
    need = "AVX512-BF16 dot products (bf16 math)";
  else if (bf16 == CG_BF16_AMX && !host.amx)
    need = "AMX-BF16 tiles (bf16 math)";
  if (!need) return 0;
  snprintf(err, errsize,
           "code for the CPU '%s' uses %s, which this CPU (%s, %d-bit vectors%s) does not "
           "have; it would die of an illegal instruction here (hsac ir --emit still writes "
           "code for '%s', for a machine that has it)",
           t->cpu, need, host.cpu, host.vec_bits,
           host.amx ? ", AMX" : host.avx512bf16 ? ", AVX512-BF16" : "", t->cpu);
  return -1;
}

/* Linux's arch_prctl request and the tile data's feature number
 * (asm/prctl.h, the kernel's xstate numbering). */
enum { ARCH_REQ_XCOMP_PERM_ = 0x1023, XFEATURE_XTILEDATA_ = 18 };

int cg_amx_permit(char *err, size_t errsize) {
#ifdef SYS_arch_prctl
  /* idempotent: asking again once granted succeeds at once */
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM_, XFEATURE_XTILEDATA_) == 0) return 0;
  snprintf(err, errsize,
           "the CPU has AMX, but the kernel refused this process the use of its tiles "
           "(arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): %s; Linux 5.16 or newer allows it)",
           strerror(errno));
#else
  snprintf(err, errsize, "AMX tiles need Linux's arch_prctl, which this system lacks");
#endif
  return -1;
}

/* The cache key: the kernels' text, the target, LLVM's and hsac's versions
 * and the lowering pipeline. */
static void cache_key(const char *mlir, const cg_target *t, char key[33]) {
  char llvm[64];
  cg_llvm_version(llvm, sizeof llvm);
  cg_hash h;
  cg_hash_init(&h);
  cg_hash_str(&h, "hsac-cpu-objects-2"); /* a bundle of objects (OBJS_MAGIC) */
  cg_hash_str(&h, HSAC_VERSION);
  cg_hash_str(&h, llvm);
  cg_hash_str(&h, PIPELINE);
  cg_hash_str(&h, t->triple);
  cg_hash_str(&h, t->cpu);
  cg_hash_str(&h, t->features);
  cg_hash_str(&h, mlir);
  cg_hash_hex(&h, key);
}

static int emit_object(const char *mlir, const cg_target *t, void **obj, size_t *size,
                       cg_jit_stats *st, char *err, size_t errsize) {
  LLVMTargetMachineRef tm = make_tm(t);
  if (!tm) {
    snprintf(err, errsize, "cannot create a target machine for %s (%s)", t->triple, t->cpu);
    return -1;
  }
  LLVMContextRef lctx = LLVMContextCreate();
  LLVMModuleRef lm = lower(mlir, lctx, tm, t, &st->ms_lower, &st->ms_opt, err, errsize);
  int rc = -1;
  if (lm) {
    double t0 = now_ms();
    char *msg = NULL;
    LLVMMemoryBufferRef mb;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, lm, LLVMObjectFile, &msg, &mb)) {
      snprintf(err, errsize, "emitting the object failed: %s", msg ? msg : "?");
      LLVMDisposeMessage(msg);
    } else {
      *size = LLVMGetBufferSize(mb);
      *obj = malloc(*size ? *size : 1);
      if (*obj) {
        memcpy(*obj, LLVMGetBufferStart(mb), *size);
        rc = 0;
      } else {
        snprintf(err, errsize, "out of memory");
      }
      LLVMDisposeMemoryBuffer(mb);
    }
    st->ms_opt += now_ms() - t0;
    LLVMDisposeModule(lm);
  }
  LLVMContextDispose(lctx);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

/* The number of objects in a bundle (emit_bundle below), each checked to
 * lie inside it, or 0 when it is not a well-formed bundle. */
static uint32_t bundle_count(const unsigned char *b, size_t size) {
  size_t at = sizeof OBJS_MAGIC + 4;
  uint32_t n;
  if (size < at || memcmp(b, OBJS_MAGIC, sizeof OBJS_MAGIC)) return 0;
  memcpy(&n, b + sizeof OBJS_MAGIC, 4);
  if (n == 0 || n > 64 || at + (size_t)n * 8 > size) return 0;
  size_t left = size - at - (size_t)n * 8;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t sz;
    memcpy(&sz, b + at + 8 * (size_t)i, 8);
    if (sz == 0 || sz > left) return 0;
    left -= sz;
  }
  return n;
}

static int load_object(cg_jit *j, const cg_target *t, const void *obj, size_t size, char *err,
                       size_t errsize) {
  const unsigned char *bun = obj;
  uint32_t n = bundle_count(bun, size);
  if (!n) {
    snprintf(err, errsize, "loading the compiled kernels failed: not a well-formed object bundle");
    return -1;
  }
  LLVMTargetMachineRef tm = make_tm(t);
  if (!tm) {
    snprintf(err, errsize, "cannot create a target machine for %s", t->triple);
    return -1;
  }
  /* the builder takes ownership of this target machine */
  LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, b);
  if (!e) {
    /* kernels may call libm (expf for scalar tails, sinf/cosf in rope) */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
    if (!e) LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
  }
  /* the bundle's objects, after its header and sizes */
  size_t data = sizeof OBJS_MAGIC + 4 + (size_t)n * 8;
  for (uint32_t i = 0; i < n && !e; i++) {
    uint64_t sz;
    memcpy(&sz, bun + sizeof OBJS_MAGIC + 4 + 8 * (size_t)i, 8);
    LLVMMemoryBufferRef mb =
        LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)bun + data, sz, "hsac-kernels");
    e = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), mb);
    data += sz;
  }
  if (e) {
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, errsize, "loading the compiled kernels failed: %s", m);
    LLVMDisposeErrorMessage(m);
    return -1;
  }
  return 0;
}

/* ---- compiling parts of the module in parallel ---------------------------
 *
 * The kernels of a module do not call each other, so the module is split
 * at its top-level functions into up to `threads` parts of about equal text
 * length, each lowered, optimized and emitted on its own thread with its
 * own MLIR and LLVM contexts.  What the cache stores and the JIT loads is
 * then a bundle: OBJS_MAGIC, a u32 count, a u64 size per object, the
 * objects. */

typedef struct part_job {
  char *text;          /* "module {" + some functions + "}" */
  size_t len, cap;
  const cg_target *t;
  void *obj;
  size_t size;
  cg_jit_stats st;
  char err[1024];
  int rc;
} part_job;

static void *compile_part(void *arg) {
  part_job *p = arg;
  p->rc = emit_object(p->text, p->t, &p->obj, &p->size, &p->st, p->err, sizeof p->err);
  return NULL;
}

static int part_add(part_job *p, const char *s, size_t n) {
  if (p->len + n + 1 > p->cap) {
    size_t cap = (p->len + n + 1) * 2;
    char *q = realloc(p->text, cap);
    if (!q) return -1;
    p->text = q;
    p->cap = cap;
  }
  memcpy(p->text + p->len, s, n);
  p->len += n;
  p->text[p->len] = 0;
  return 0;
}

/* Splits the module (every function starts a line with "func.func ")
 * into at most n parts, each function to the part with the least text
 * so far, longest functions first.  Returns the number of parts (at least
 * 1), or -1 when out of memory. */
static int split_module(const char *mlir, int n, part_job *parts) {
  enum { MAXF = 4096 };
  const char *starts[MAXF + 1];
  int nf = 0;
  const char *body = strstr(mlir, "func.func ");
  for (const char *c = body; c && nf < MAXF; c = strstr(c + 1, "\nfunc.func ")) {
    starts[nf++] = c == body ? c : c + 1;
  }
  const char *end = body ? strrchr(mlir, '}') : NULL; /* the module's brace */
  if (!body || !end || nf == MAXF || n < 2 || nf < 2) {
    if (part_add(&parts[0], mlir, strlen(mlir))) return -1;
    return 1;
  }
  starts[nf] = end;
  if (n > nf) n = nf;
  size_t load[64] = {0};
  bool done[MAXF] = {0};
  for (int i = 0; i < n; i++)
    if (part_add(&parts[i], "module {\n", 9)) return -1;
  for (int k = 0; k < nf; k++) {
    int f = -1;
    for (int i = 0; i < nf; i++)
      if (!done[i] && (f < 0 || starts[i + 1] - starts[i] > starts[f + 1] - starts[f])) f = i;
    done[f] = true;
    int best = 0;
    for (int i = 1; i < n; i++)
      if (load[i] < load[best]) best = i;
    size_t len = (size_t)(starts[f + 1] - starts[f]);
    if (part_add(&parts[best], starts[f], len)) return -1;
    load[best] += len;
  }
  for (int i = 0; i < n; i++)
    if (part_add(&parts[i], "}\n", 2)) return -1;
  return n;
}

/* Compiles the module into a bundle of objects on up to `threads` threads. */
static int emit_bundle(const char *mlir, const cg_target *t, int threads, void **out,
                       size_t *size, cg_jit_stats *st, char *err, size_t errsize) {
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  part_job *parts = calloc((size_t)threads, sizeof *parts);
  if (!parts) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  int n = split_module(mlir, threads, parts);
  int rc = n < 0 ? -1 : 0;
  if (rc) snprintf(err, errsize, "out of memory");
  pthread_t tid[16];
  bool started[16] = {0};
  for (int i = 0; i < n; i++) {
    parts[i].t = t;
    /* part 0 runs on this thread; a thread that cannot start runs here too */
    if (i > 0 && pthread_create(&tid[i], NULL, compile_part, &parts[i]) == 0) started[i] = true;
  }
  for (int i = 0; i < n; i++)
    if (!started[i]) compile_part(&parts[i]);
  for (int i = 0; i < n; i++)
    if (started[i]) pthread_join(tid[i], NULL);
  size_t total = sizeof OBJS_MAGIC + 4;
  for (int i = 0; i < n && rc == 0; i++) {
    if (parts[i].rc) {
      snprintf(err, errsize, "%s", parts[i].err);
      rc = -1;
    }
    total += 8 + parts[i].size;
    /* the threads ran at once: report their largest times */
    if (parts[i].st.ms_lower > st->ms_lower) st->ms_lower = parts[i].st.ms_lower;
    if (parts[i].st.ms_opt > st->ms_opt) st->ms_opt = parts[i].st.ms_opt;
  }
  st->jobs = n > 0 ? n : 1;
  unsigned char *b = rc == 0 ? malloc(total) : NULL;
  if (rc == 0 && !b) {
    snprintf(err, errsize, "out of memory");
    rc = -1;
  }
  if (b) {
    size_t at = sizeof OBJS_MAGIC;
    memcpy(b, OBJS_MAGIC, sizeof OBJS_MAGIC);
    uint32_t cnt = (uint32_t)n;
    memcpy(b + at, &cnt, 4);
    at += 4;
    for (int i = 0; i < n; i++) {
      uint64_t sz = parts[i].size;
      memcpy(b + at, &sz, 8);
      at += 8;
    }
    for (int i = 0; i < n; i++) {
      memcpy(b + at, parts[i].obj, parts[i].size);
      at += parts[i].size;
    }
    *out = b;
    *size = total;
  }
  for (int i = 0; i < threads; i++) {
    free(parts[i].text);
    free(parts[i].obj);
  }
  free(parts);
  return rc;
}

int cg_jit_compile(const char *mlir, const cg_target *t, int threads, const cg_cache *cache,
                   cg_jit **out, cg_jit_stats *stats, char *err, size_t errsize) {
  pthread_once(&init_once, init_llvm);
  cg_jit_stats st0, *st = stats ? stats : &st0;
  memset(st, 0, sizeof *st);
  *out = NULL;
  cache_key(mlir, t, st->key);
  void *obj = NULL;
  size_t size = 0;
  int lockfd = -2;
  char cerr[512];
  if (cache) {
    int corrupt = 0, corrupt2 = 0;
    int got = cg_cache_get(cache, st->key, &obj, &size, &corrupt, cerr, sizeof cerr);
    if (got == 0) {
      /* compile under the lock, after checking again: another process may
       * have written the entry while we waited */
      lockfd = cg_cache_lock(cache, st->key, cerr, sizeof cerr);
      got = cg_cache_get(cache, st->key, &obj, &size, &corrupt2, cerr, sizeof cerr);
    }
    st->cache_hit = got == 1;
    st->cache_rebuilt = corrupt || corrupt2;
  }
  if (!obj) {
    if (emit_bundle(mlir, t, threads, &obj, &size, st, err, errsize)) {
      if (lockfd != -2 && lockfd >= 0) cg_cache_unlock(lockfd);
      return -1;
    }
    /* a cache that cannot be written is not an error: the kernels run */
    if (cache) cg_cache_put(cache, st->key, obj, size, cerr, sizeof cerr);
  }
  if (lockfd >= 0) cg_cache_unlock(lockfd);
  st->object_bytes = size;
  cg_jit *j = calloc(1, sizeof *j);
  if (!j) {
    free(obj);
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  double t0 = now_ms();
  int rc = load_object(j, t, obj, size, err, errsize);
  st->ms_load = now_ms() - t0;
  free(obj);
  if (rc) {
    cg_jit_free(j);
    return -1;
  }
  *out = j;
  return 0;
}

void *cg_jit_lookup(cg_jit *j, const char *name) {
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
  if (e) {
    LLVMConsumeError(e);
    return NULL;
  }
  return (void *)(uintptr_t)addr;
}

bool cg_jit_available(void) { return true; }

void cg_jit_free(cg_jit *j) {
  if (!j) return;
  if (j->jit) LLVMOrcDisposeLLJIT(j->jit);
  free(j);
}

int cg_jit_emit(const char *mlir, const cg_target *t, cg_emit_kind kind, char **out,
                size_t *len, char *err, size_t errsize) {
  pthread_once(&init_once, init_llvm);
  *out = NULL;
  *len = 0;
  LLVMTargetMachineRef tm = make_tm(t);
  if (!tm) {
    snprintf(err, errsize, "cannot create a target machine for %s", t->triple);
    return -1;
  }
  LLVMContextRef lctx = LLVMContextCreate();
  LLVMModuleRef lm = lower(mlir, lctx, tm, t, NULL, NULL, err, errsize);
  int rc = -1;
  if (lm && kind == CG_EMIT_LLVM) {
    char *s = LLVMPrintModuleToString(lm);
    *out = strdup(s);
    LLVMDisposeMessage(s);
    rc = *out ? 0 : -1;
    if (*out) *len = strlen(*out);
  } else if (lm) {
    char *msg = NULL;
    LLVMMemoryBufferRef mb;
    if (LLVMTargetMachineEmitToMemoryBuffer(
            tm, lm, kind == CG_EMIT_OBJ ? LLVMObjectFile : LLVMAssemblyFile, &msg, &mb)) {
      snprintf(err, errsize, "emitting %s failed: %s",
               kind == CG_EMIT_OBJ ? "the object" : "assembly", msg ? msg : "?");
      LLVMDisposeMessage(msg);
    } else {
      size_t n = LLVMGetBufferSize(mb);
      *out = malloc(n + 1);
      if (*out) {
        memcpy(*out, LLVMGetBufferStart(mb), n);
        (*out)[n] = 0;
        *len = n;
        rc = 0;
      }
      LLVMDisposeMemoryBuffer(mb);
    }
  }
  if (lm) LLVMDisposeModule(lm);
  LLVMContextDispose(lctx);
  LLVMDisposeTargetMachine(tm);
  return rc;
}
