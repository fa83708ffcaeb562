/* emit.c - MLIR for each kernel of the CPU backend (see kernels.h).
 *
 * Each op becomes one func.func written in the func, scf, arith, math,
 * vector and llvm dialects, with the op's constants baked in (widths, head
 * counts and width, group size, chunk size, top-k, window, row layouts)
 * and vectors as wide as the target's (16 floats on AVX-512, 8 on AVX2).
 * Tensors arrive as raw pointers in the slot array (kernels.h), so loads
 * and stores are llvm.load/llvm.store of vectors at computed addresses.
 *
 * Two things the probe in ARCHITECTURE.md found shape the code: vector
 * math.exp lowers to one scalar expf call per lane, so exp is a polynomial
 * written here (exp_vec); and GEMMs are register-tiled microkernels over
 * packed weight panels (linear), since loop order alone decides whether
 * LLVM vectorizes a naive loop. */
#include "codegen/cpu/kernels.h"
#include "util/half.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the text builder --------------------------------------------------- */

typedef struct em {
  char **buf;
  size_t *len;
  size_t cap;
  bool oom;
  const char *bug; /* an internal inconsistency found while emitting */
  int id;          /* next SSA number */
  int vl;          /* floats per vector */
  char vt[32];     /* "vector<16xf32>" */
  char mt[32];     /* "vector<16xi1>" */
  int wtype;       /* a linear's packed weights' cg_wtype (cg_kernel_req) */
  int bf16;        /* a linear's arithmetic (cg_bf16) */
  bool avx512;     /* the target has AVX-512 (a kernel may still use
                      other vector widths: set_lanes) */
  bool pf_dense;   /* the sparse-attention kernels prefetch densely
                      (CG_PF_DENSE, CG_PF_DENSE_ATTN) */
  bool pf_scan;    /* the landmark scan prefetches ahead (CG_PF_DENSE) */
} em;

/* Makes "a vector" n floats wide from here on (vl, vt, mt agree). */
static void set_lanes(em *e, int n) {
  e->vl = n;
  snprintf(e->vt, sizeof e->vt, "vector<%dxf32>", n);
  snprintf(e->mt, sizeof e->mt, "vector<%dxi1>", n);
}

/* An SSA value's name ("%v12" or "%v12#1"). */
typedef struct V {
  char s[40];
} V;

static void out(em *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(em *e, const char *fmt, ...) {
  if (e->oom) return;
  va_list ap;
  for (;;) {
    size_t room = e->cap - *e->len;
    va_start(ap, fmt);
    int n = vsnprintf(*e->buf ? *e->buf + *e->len : NULL, *e->buf ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      e->oom = true;
      return;
    }
    if (*e->buf && (size_t)n < room) {
      *e->len += (size_t)n;
      return;
    }
    size_t ncap = (e->cap + (size_t)n + 1) * 2;
    char *p = realloc(*e->buf, ncap);
    if (!p) {
      e->oom = true;
      return;
    }
    *e->buf = p;
    e->cap = ncap;
  }
}

static V nv(em *e) {
  V v;
  snprintf(v.s, sizeof v.s, "%%v%d", e->id++);
  return v;
}

static V ci(em *e, int64_t c) {
  V v = nv(e);
  out(e, "  %s = arith.constant %lld : i64\n", v.s, (long long)c);
  return v;
}

static V cf(em *e, double c) {
  V v = nv(e);
  if (isinf(c))
    out(e, "  %s = arith.constant %s : f32\n", v.s, c < 0 ? "0xFF800000" : "0x7F800000");
  else
    out(e, "  %s = arith.constant %.9e : f32\n", v.s, c);
  return v;
}

static V cd(em *e, double c) {
  V v = nv(e);
  if (isinf(c))
    out(e, "  %s = arith.constant %s : f64\n", v.s,
        c < 0 ? "0xFFF0000000000000" : "0x7FF0000000000000");
  else
    out(e, "  %s = arith.constant %.17e : f64\n", v.s, c);
  return v;
}

static V splat(em *e, V s) {
  V v = nv(e);
  out(e, "  %s = vector.broadcast %s : f32 to %s\n", v.s, s.s, e->vt);
  return v;
}

static V cvf(em *e, double c) { return splat(e, cf(e, c)); }

/* Binary op of one type: bin(e, "arith.addi", a, b, "i64"). */
static V bin(em *e, const char *op, V a, V b, const char *ty) {
  V v = nv(e);
  out(e, "  %s = %s %s, %s : %s\n", v.s, op, a.s, b.s, ty);
  return v;
}

/* Float ops carry fast-math flags: reductions only vectorize with them. */
static V fbin(em *e, const char *op, V a, V b, const char *ty) {
  V v = nv(e);
  out(e, "  %s = %s %s, %s fastmath<fast> : %s\n", v.s, op, a.s, b.s, ty);
  return v;
}

#define ADDI(a, b) bin(e, "arith.addi", a, b, "i64")
#define SUBI(a, b) bin(e, "arith.subi", a, b, "i64")
#define MULI(a, b) bin(e, "arith.muli", a, b, "i64")
#define DIVI(a, b) bin(e, "arith.divsi", a, b, "i64")
#define REMI(a, b) bin(e, "arith.remsi", a, b, "i64")
#define MAXI(a, b) bin(e, "arith.maxsi", a, b, "i64")
#define MINI(a, b) bin(e, "arith.minsi", a, b, "i64")
#define FADD(a, b) fbin(e, "arith.addf", a, b, "f32")
#define FSUB(a, b) fbin(e, "arith.subf", a, b, "f32")
#define FMUL(a, b) fbin(e, "arith.mulf", a, b, "f32")
#define FDIV(a, b) fbin(e, "arith.divf", a, b, "f32")
#define VADD(a, b) fbin(e, "arith.addf", a, b, e->vt)
#define VSUB(a, b) fbin(e, "arith.subf", a, b, e->vt)
#define VMUL(a, b) fbin(e, "arith.mulf", a, b, e->vt)
/* Without fast-math flags: the GEMM epilogues, so that LLVM cannot
 * reassociate them differently in the prefill and decode versions of a
 * kernel (a row must get the same bits from either). */
#define VADDS(a, b) bin(e, "arith.addf", a, b, e->vt)
#define VMULS(a, b) bin(e, "arith.mulf", a, b, e->vt)

static V nv_true(em *e) {
  V v = nv(e);
  out(e, "  %s = arith.constant true\n", v.s);
  return v;
}

static V cmpi(em *e, const char *pred, V a, V b) {
  V v = nv(e);
  out(e, "  %s = arith.cmpi %s, %s, %s : i64\n", v.s, pred, a.s, b.s);
  return v;
}

static V cmpf(em *e, const char *pred, V a, V b, const char *ty) {
  V v = nv(e);
  out(e, "  %s = arith.cmpf %s, %s, %s : %s\n", v.s, pred, a.s, b.s, ty);
  return v;
}

static V sel(em *e, V c, V a, V b, const char *ty) {
  V v = nv(e);
  out(e, "  %s = arith.select %s, %s, %s : %s\n", v.s, c.s, a.s, b.s, ty);
  return v;
}

static V vfma(em *e, V a, V b, V c) {
  V v = nv(e);
  out(e, "  %s = vector.fma %s, %s, %s : %s\n", v.s, a.s, b.s, c.s, e->vt);
  return v;
}

static V vsum(em *e, V a) {
  V v = nv(e);
  out(e, "  %s = vector.reduction <add>, %s fastmath<fast> : %s into f32\n", v.s, a.s, e->vt);
  return v;
}


/* Slot i of the argument array, as i64 or as a pointer. */
static V argi(em *e, int slot) {
  V p = nv(e), v = nv(e);
  out(e, "  %s = llvm.getelementptr %%args[%d] : (!llvm.ptr) -> !llvm.ptr, i64\n", p.s, slot);
  out(e, "  %s = llvm.load %s : !llvm.ptr -> i64\n", v.s, p.s);
  return v;
}

static V toptr(em *e, V i) {
  V v = nv(e);
  out(e, "  %s = llvm.inttoptr %s : i64 to !llvm.ptr\n", v.s, i.s);
  return v;
}

static V argp(em *e, int slot) { return toptr(e, argi(e, slot)); }

/* The scratch pointer rounded up to a cache line (64 bytes; the kernel
 * asks for 16 floats more): AMX tile rows of 64 bytes then never straddle
 * two lines, which halves the cost of a tile load. */
static V scratch64(em *e) {
  V a = argi(e, CG_A_SCRATCH);
  return toptr(e, bin(e, "arith.andi", ADDI(a, ci(e, 63)), ci(e, -64), "i64"));
}

/* A kernel parameter (kernels.h, CG_A_P0): value is passed by every call
 * instead of written into the code.  Slots are taken in the order of the
 * calls, so two kernels that ask for their parameters in the same order
 * emit the same text when nothing else differs, and share one function.
 * Call it where the value dominates every use (the function's top). */
static V param(em *e, cg_kernel_info *info, int64_t value) {
  if (info->nparams >= CG_NPARAMS) return ci(e, value); /* cannot happen: 2 at most */
  info->params[info->nparams] = value;
  return argi(e, CG_A_P0 + info->nparams++);
}

/* Address of element `off` (i64) of a float (or i32) array. */
static V gep(em *e, V p, V off) {
  V v = nv(e);
  out(e, "  %s = llvm.getelementptr %s[%s] : (!llvm.ptr, i64) -> !llvm.ptr, f32\n", v.s, p.s,
      off.s);
  return v;
}

static V gepc(em *e, V p, int64_t off) { return off ? gep(e, p, ci(e, off)) : p; }

/* The same over 2-byte elements (bf16 or f16 weights). */
static V gep16(em *e, V p, V off) {
  V v = nv(e);
  out(e, "  %s = llvm.getelementptr %s[%s] : (!llvm.ptr, i64) -> !llvm.ptr, i16\n", v.s, p.s,
      off.s);
  return v;
}

/* A packed weight pointer advanced by off elements (f32 or 16-bit ones). */
static V gepw(em *e, V p, V off) { return e->wtype ? gep16(e, p, off) : gep(e, p, off); }

static V lds(em *e, V p, V off) {
  V v = nv(e);
  out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> f32\n", v.s, gep(e, p, off).s);
  return v;
}

static V ldi(em *e, V p, V off) {
  V a = gep(e, p, off), v = nv(e), w = nv(e);
  out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> i32\n", v.s, a.s);
  out(e, "  %s = arith.extsi %s : i32 to i64\n", w.s, v.s);
  return w;
}

static void sts(em *e, V x, V p, V off) {
  out(e, "  llvm.store %s, %s {alignment = 4 : i64} : f32, !llvm.ptr\n", x.s, gep(e, p, off).s);
}

static void sti(em *e, V x64, V p, V off) {
  V t = nv(e);
  out(e, "  %s = arith.trunci %s : i64 to i32\n", t.s, x64.s);
  out(e, "  llvm.store %s, %s {alignment = 4 : i64} : i32, !llvm.ptr\n", t.s, gep(e, p, off).s);
}

/* A mask of the first n lanes: n constant (< 0: none needed) or dynamic. */
static V cmask(em *e, int n) {
  V v = nv(e);
  out(e, "  %s = vector.constant_mask [%d] : %s\n", v.s, n, e->mt);
  return v;
}

static V dmask(em *e, V n64) {
  V i = nv(e), v = nv(e);
  out(e, "  %s = arith.index_cast %s : i64 to index\n", i.s, n64.s);
  out(e, "  %s = vector.create_mask %s : %s\n", v.s, i.s, e->mt);
  return v;
}

/* Vector load/store at element `off`; with a mask, only its lanes (the
 * others read as 0). */
static V ldv(em *e, V p, V off, const V *mask) {
  V a = gep(e, p, off), v = nv(e);
  if (!mask) {
    out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> %s\n", v.s, a.s, e->vt);
  } else {
    V z = cvf(e, 0);
    out(e, "  %s = llvm.intr.masked.load %s, %s, %s {alignment = 4 : i32} : (!llvm.ptr, %s, %s) "
        "-> %s\n", v.s, a.s, mask->s, z.s, e->mt, e->vt, e->vt);
  }
  return v;
}

/* n bf16 at p + off (16-bit elements) widened exactly to f32 (the bits
 * moved to the top half: zext, shift by 16): a scalar when n is 1, else a
 * vector of n. */
static V ld_bf16(em *e, V p, V off, int n) {
  char i16[32], i32[32], f32[32];
  snprintf(i16, sizeof i16, n == 1 ? "i16" : "vector<%dxi16>", n);
  snprintf(i32, sizeof i32, n == 1 ? "i32" : "vector<%dxi32>", n);
  snprintf(f32, sizeof f32, n == 1 ? "f32" : "vector<%dxf32>", n);
  V h = nv(e), w = nv(e), c = nv(e), sh = nv(e), f = nv(e);
  out(e, "  %s = llvm.load %s {alignment = 2 : i64} : !llvm.ptr -> %s\n", h.s,
      gep16(e, p, off).s, i16);
  out(e, "  %s = arith.extui %s : %s to %s\n", w.s, h.s, i16, i32);
  out(e, "  %s = arith.constant %s : %s\n", c.s, n == 1 ? "16" : "dense<16>", i32);
  out(e, "  %s = arith.shli %s, %s : %s\n", sh.s, w.s, c.s, i32);
  out(e, "  %s = arith.bitcast %s : %s to %s\n", f.s, sh.s, i32, f32);
  return f;
}

/* A vector of packed weights at p + off elements: f32; bf16 widened
 * exactly (ld_bf16); or f16 widened by arith.extf (vcvtph2ps with F16C). */
static V ldw(em *e, V p, V off) {
  if (!e->wtype) return ldv(e, p, off, NULL);
  if (e->wtype == CG_W_F16) {
    V a = gep16(e, p, off), h = nv(e), f = nv(e);
    out(e, "  %s = llvm.load %s {alignment = 2 : i64} : !llvm.ptr -> vector<%dxf16>\n", h.s,
        a.s, e->vl);
    out(e, "  %s = arith.extf %s : vector<%dxf16> to %s\n", f.s, h.s, e->vl, e->vt);
    return f;
  }
  return ld_bf16(e, p, off, e->vl);
}

static void stv(em *e, V x, V p, V off, const V *mask) {
  V a = gep(e, p, off);
  if (!mask)
    out(e, "  llvm.store %s, %s {alignment = 4 : i64} : %s, !llvm.ptr\n", x.s, a.s, e->vt);
  else
    out(e, "  llvm.intr.masked.store %s, %s, %s {alignment = 4 : i32} : %s, %s into !llvm.ptr\n",
        x.s, a.s, mask->s, e->vt, e->mt);
}

/* ---- loops and branches ------------------------------------------------- */

enum { MAXCARRY = 40 };

typedef struct loop {
  V iv;
  V res[MAXCARRY];    /* the loop's results, after loop_end */
  V arg[MAXCARRY];    /* the carried values inside the body */
  const char *ty[MAXCARRY];
  int n;
} loop;

/* for iv in [lb, ub) step st, carrying n values of types ty (all `ty0`
 * when ty is NULL). */
static void loop_begin(em *e, loop *L, V lb, V ub, V st, int n, const V *init,
                       const char *ty0) {
  L->iv = nv(e);
  L->n = n;
  V r = nv(e);
  for (int i = 0; i < n; i++) {
    L->arg[i] = nv(e);
    L->ty[i] = ty0;
    if (n == 1) L->res[i] = r;
    else snprintf(L->res[i].s, sizeof L->res[i].s, "%.24s#%d", r.s, i & 0xff);
  }
  if (n == 0) {
    out(e, "  scf.for %s = %s to %s step %s : i64 {\n", L->iv.s, lb.s, ub.s, st.s);
    return;
  }
  if (n == 1) out(e, "  %s = scf.for %s = %s to %s step %s iter_args(", r.s, L->iv.s, lb.s, ub.s, st.s);
  else out(e, "  %s:%d = scf.for %s = %s to %s step %s iter_args(", r.s, n, L->iv.s, lb.s, ub.s, st.s);
  for (int i = 0; i < n; i++) out(e, "%s%s = %s", i ? ", " : "", L->arg[i].s, init[i].s);
  out(e, ") -> (");
  for (int i = 0; i < n; i++) out(e, "%s%s", i ? ", " : "", ty0);
  out(e, ") : i64 {\n");
}

static void yield(em *e, int n, const V *y, const char *ty) {
  if (n == 0) return;
  out(e, "  scf.yield ");
  for (int i = 0; i < n; i++) out(e, "%s%s", i ? ", " : "", y[i].s);
  out(e, " : ");
  for (int i = 0; i < n; i++) out(e, "%s%s", i ? ", " : "", ty);
  out(e, "\n");
}

static void loop_end(em *e, loop *L, const V *y) {
  yield(e, L->n, y, L->n ? L->ty[0] : "");
  out(e, "  }\n");
}

/* A counted loop with no carried values. */
static V for0(em *e, V lb, V ub, int64_t step) {
  loop L;
  loop_begin(e, &L, lb, ub, ci(e, step), 0, NULL, NULL);
  return L.iv;
}
static void end0(em *e) { out(e, "  }\n"); }

/* if c { ... } with no results. */
static void if0(em *e, V c) { out(e, "  scf.if %s {\n", c.s); }

/* if c -> n values of type ty: if_begin, then-values via if_else, else-values
 * via if_end; the results are returned by if_begin. */
static void if_begin(em *e, V c, int n, const char *ty, V *res) {
  if (n == 0) {
    if0(e, c);
    return;
  }
  V r = nv(e);
  for (int i = 0; i < n; i++) {
    if (n == 1) res[i] = r;
    else snprintf(res[i].s, sizeof res[i].s, "%.24s#%d", r.s, i & 0xff);
  }
  if (n == 1) out(e, "  %s = scf.if %s -> (", r.s, c.s);
  else out(e, "  %s:%d = scf.if %s -> (", r.s, n, c.s);
  for (int i = 0; i < n; i++) out(e, "%s%s", i ? ", " : "", ty);
  out(e, ") {\n");
}
static void if_else(em *e, int n, const V *y, const char *ty) {
  yield(e, n, y, ty);
  out(e, "  } else {\n");
}
static void if_end(em *e, int n, const V *y, const char *ty) {
  yield(e, n, y, ty);
  out(e, "  }\n");
}

/* ---- math --------------------------------------------------------------- */

static V cint(em *e, int64_t c, const char *ty);

/* y * 2^n on 16 lanes (vscalefps; n a whole number). */
static V scalef16(em *e, V y, V n) {
  V r = nv(e), pass = cvf(e, 0);
  out(e, "  %s = llvm.call_intrinsic \"llvm.x86.avx512.mask.scalef.ps.512\"(%s, %s, %s, %s, %s) "
      ": (vector<16xf32>, vector<16xf32>, vector<16xf32>, i16, i32) -> vector<16xf32>\n",
      r.s, y.s, n.s, pass.s, cint(e, -1, "i16").s, cint(e, 4, "i32").s);
  return r;
}

/* exp on a float vector: Cody-Waite range reduction and a polynomial
 * (relative error about 1e-7; on AVX-512 2^n comes from vscalefps),
 * inputs clamped to [-87.3, 88.7] so exp of a very negative number is a
 * tiny normal, not 0: callers that need exp(-inf) = 0 select it. */
static V exp_vec(em *e, V x) {
  V hi = cvf(e, 88.3762626647949), lo = cvf(e, -87.3365478515625);
  V c1 = nv(e), c2 = nv(e);
  out(e, "  %s = arith.minimumf %s, %s : %s\n", c1.s, x.s, hi.s, e->vt);
  out(e, "  %s = arith.maximumf %s, %s : %s\n", c2.s, c1.s, lo.s, e->vt);
  x = c2;
  if (e->vl == 16 && e->avx512) {
    /* AVX-512: n = round(x / ln 2), r = x - n ln 2 (in two parts, exact),
     * e^r by its Taylor polynomial of degree 6 (|r| <= ln 2 / 2: relative
     * error about 1.2e-7), times 2^n by vscalefps: 13 instructions
     * against the 19 of the integer exponent below */
    V t = VMUL(x, cvf(e, 1.44269504088896341)), n = nv(e);
    out(e, "  %s = math.roundeven %s : %s\n", n.s, t.s, e->vt);
    V r = vfma(e, n, cvf(e, -0.693359375), x);
    r = vfma(e, n, cvf(e, 2.12194440e-4), r);
    V y = cvf(e, 1.0 / 720);
    static const double k[] = {1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0};
    for (int i = 0; i < 6; i++) y = vfma(e, y, r, cvf(e, k[i]));
    return scalef16(e, y, n);
  }
  V fx = vfma(e, x, cvf(e, 1.44269504088896341), cvf(e, 0.5));
  V fl = nv(e);
  out(e, "  %s = math.floor %s : %s\n", fl.s, fx.s, e->vt);
  x = vfma(e, fl, cvf(e, -0.693359375), x);
  x = vfma(e, fl, cvf(e, 2.12194440e-4), x);
  static const double c[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                             4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
  V y = cvf(e, c[0]);
  for (int i = 1; i < 6; i++) y = vfma(e, y, x, cvf(e, c[i]));
  V x2 = VMUL(x, x);
  y = vfma(e, y, x2, x);
  y = VADD(y, cvf(e, 1.0));
  V n = nv(e), n2 = nv(e), sh = nv(e), p2 = nv(e);
  char it[32];
  snprintf(it, sizeof it, "vector<%dxi32>", e->vl);
  out(e, "  %s = arith.fptosi %s : %s to %s\n", n.s, fl.s, e->vt, it);
  V b127 = nv(e), b23 = nv(e);
  out(e, "  %s = arith.constant dense<127> : %s\n", b127.s, it);
  out(e, "  %s = arith.constant dense<23> : %s\n", b23.s, it);
  out(e, "  %s = arith.addi %s, %s : %s\n", n2.s, n.s, b127.s, it);
  out(e, "  %s = arith.shli %s, %s : %s\n", sh.s, n2.s, b23.s, it);
  out(e, "  %s = arith.bitcast %s : %s to %s\n", p2.s, sh.s, it, e->vt);
  return VMUL(y, p2);
}

/* 2^t on 16 lanes for t <= 0 (AVX-512): t = n + f with n = floor(t) and
 * f in [0, 1) in one instruction (vreduceps, AVX512-DQ), 2^f by a
 * degree-5 polynomial with 2^0 = 1 exactly (the least maximum relative
 * error fit, found by iteratively reweighted least squares on 40,000
 * points: 1.7e-7 evaluated in f32), times 2^n by vscalefps, which floors
 * its exponent operand itself, so t is passed whole: 8 instructions where
 * rounding t to the nearest whole number (vrndscaleps, two uops) and
 * subtracting it took 10.  With `clamp` t is first held at -126, so -inf
 * gives 2^-126, a tiny normal (unclamped, -inf gives 0: vreduceps of an
 * infinity is 0 and vscalefps by 2^-inf is 0; a finite t far below -126
 * gives 0 too). */
static V exp2_neg16_poly(em *e, V t, bool clamp) {
  V c = t;
  if (clamp) {
    c = nv(e);
    out(e, "  %s = arith.maximumf %s, %s : %s\n", c.s, t.s, cvf(e, -126.0).s, e->vt);
  }
  /* imm 0x09: keep no fraction bits, round down, no precision exception */
  V f = nv(e);
  out(e, "  %s = llvm.call_intrinsic \"llvm.x86.avx512.mask.reduce.ps.512\"(%s, %s, %s, %s, %s) "
      ": (vector<16xf32>, i32, vector<16xf32>, i16, i32) -> vector<16xf32>\n",
      f.s, c.s, cint(e, 9, "i32").s, cvf(e, 0).s, cint(e, -1, "i16").s, cint(e, 4, "i32").s);
  static const double k[] = {0.001867124461481245, 0.009017042181258728, 0.0557999046659988,
                             0.24016445244283072,  0.693151311621275,    1.0};
  V y = cvf(e, k[0]);
  for (int i = 1; i < 6; i++) y = vfma(e, y, f, cvf(e, k[i]));
  return scalef16(e, y, c);
}

static V exp2_neg16(em *e, V t) { return exp2_neg16_poly(e, t, true); }

/* exp of a scalar through lane 0 of a vector. */
static V exp_s(em *e, V x) {
  V v = exp_vec(e, splat(e, x)), r = nv(e);
  out(e, "  %s = vector.extract %s[0] : f32 from %s\n", r.s, v.s, e->vt);
  return r;
}

static V fmaxs(em *e, V a, V b) {
  V v = nv(e);
  out(e, "  %s = arith.maximumf %s, %s : f32\n", v.s, a.s, b.s);
  return v;
}

/* ---- views -------------------------------------------------------------- */

/* A tensor argument: its slots and how it is held. */
typedef struct view {
  int base;           /* first slot */
  cg_hist hist;
  int64_t row_elems;
  V seg, r0, stride, hist_p, keep;   /* loaded once at entry */
} view;

static view view_load(em *e, int base, cg_hist h, int64_t row_elems) {
  view w = {.base = base, .hist = h, .row_elems = row_elems};
  w.seg = argp(e, base + CG_V_SEG);
  if (h == CG_H_WEIGHT) return w;
  w.r0 = argi(e, base + CG_V_R0);
  w.stride = argi(e, base + CG_V_STRIDE);
  if (h == CG_H_RING || h == CG_H_PAGES) {
    w.hist_p = argp(e, base + CG_V_HIST);
    w.keep = argi(e, base + CG_V_KEEP);
  }
  return w;
}

/* The page holding history row r of a paged view (its rows start at
 * (r mod CG_PAGE_ROWS) * row_elems elements of the page's type). */
static V page_of(em *e, const view *w, V r) {
  V pg = nv(e), pp = nv(e);
  out(e, "  %s = llvm.getelementptr %s[%s] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr\n", pg.s,
      w->hist_p.s, DIVI(r, ci(e, CG_PAGE_ROWS)).s);
  out(e, "  %s = llvm.load %s : !llvm.ptr -> !llvm.ptr\n", pp.s, pg.s);
  return pp;
}

/* History row r of a paged view of 16-bit rows, from column col: in its
 * page (page_of), a 16-bit element pointer. */
static V page_row16(em *e, const view *w, V r, V col) {
  return gep16(e, page_of(e, w, r),
               ADDI(MULI(REMI(r, ci(e, CG_PAGE_ROWS)), ci(e, w->row_elems)), col));
}

/* Pointer to row r of a view: the segment, the ring or a page, whose
 * rows are page_elems floats apart (the view's row_elems; half of them
 * addresses a page of bf16 rows in f32 units, for prefetches). */
static V rowp_at(em *e, const view *w, V r, int64_t page_elems) {
  V in_seg = gep(e, w->seg, MULI(SUBI(r, w->r0), w->stride));
  if (w->hist == CG_H_SEG) return in_seg;
  V is_seg = cmpi(e, "sge", r, w->r0);
  if (w->hist == CG_H_RING) {
    /* keep > 0 for a ring; the max guards the remainder when it is unused */
    V k = MAXI(w->keep, ci(e, 1));
    V in_ring = gep(e, w->hist_p, MULI(REMI(r, k), ci(e, w->row_elems)));
    V v = nv(e);
    out(e, "  %s = llvm.select %s, %s, %s : i1, !llvm.ptr\n", v.s, is_seg.s, in_seg.s, in_ring.s);
    return v;
  }
  V res;
  if_begin(e, is_seg, 1, "!llvm.ptr", &res);
  if_else(e, 1, &in_seg, "!llvm.ptr");
  V in_page = gep(e, page_of(e, w, r), MULI(REMI(r, ci(e, CG_PAGE_ROWS)), ci(e, page_elems)));
  if_end(e, 1, &in_page, "!llvm.ptr");
  return res;
}

static V rowp(em *e, const view *w, V r) { return rowp_at(e, w, r, w->row_elems); }

/* ---- vector helpers over a constant length ------------------------------- */

/* dst[0..n) = src[0..n) (src NULL: zeros). */
static void copy_n(em *e, V dst, V src, int64_t n, bool zero) {
  int64_t full = n / e->vl, tail = n % e->vl;
  if (full > 0) {
    V i = for0(e, ci(e, 0), ci(e, full * e->vl), e->vl);
    V x = zero ? cvf(e, 0) : ldv(e, src, i, NULL);
    stv(e, x, dst, i, NULL);
    end0(e);
  }
  if (tail) {
    V m = cmask(e, (int)tail), off = ci(e, full * e->vl);
    V x = zero ? cvf(e, 0) : ldv(e, src, off, &m);
    stv(e, x, dst, off, &m);
  }
}

/* Number of vectors covering n floats, and the mask of the last one (when
 * partial). */
static int nvecs(em *e, int64_t n) { return (int)((n + e->vl - 1) / e->vl); }
static bool lastmask(em *e, int64_t n, V *m) {
  if (n % e->vl == 0) return false;
  *m = cmask(e, (int)(n % e->vl));
  return true;
}

/* The d floats at p as nv vectors (d <= MAXCARRY * vl). */
static void load_vecs(em *e, V p, int64_t d, V *out_) {
  V m;
  bool part = lastmask(e, d, &m);
  int n = nvecs(e, d);
  for (int c = 0; c < n; c++)
    out_[c] = ldv(e, p, ci(e, (int64_t)c * e->vl), part && c == n - 1 ? &m : NULL);
}

static void store_vecs(em *e, const V *x, V p, int64_t d) {
  V m;
  bool part = lastmask(e, d, &m);
  int n = nvecs(e, d);
  for (int c = 0; c < n; c++) stv(e, x[c], p, ci(e, (int64_t)c * e->vl), part && c == n - 1 ? &m : NULL);
}

/* q . (row at p), q given as vectors (lanes past d are 0 in q). */
static V dot_vecs(em *e, const V *q, V p, int64_t d) {
  V k[MAXCARRY];
  load_vecs(e, p, d, k);
  V acc = VMUL(q[0], k[0]);
  for (int c = 1; c < nvecs(e, d); c++) acc = vfma(e, q[c], k[c], acc);
  return vsum(e, acc);
}

/* ---- the kernels ------------------------------------------------------- */

#define OUTV(e, i) view_load(e, CG_A_OUT0 + CG_VIEW_SLOTS * (i), CG_H_SEG, 0)
#define INV(e, req, i) \
  view_load(e, CG_A_IN0 + CG_VIEW_SLOTS * (i), (req)->hist[i], (req)->row_elems[i])
#define DIMN(v, i) ((v)->type.dims[i].n)
#define LAST(v) DIMN(v, (v)->type.rank - 1)

static int64_t inner(const ir_value *v) {
  int64_t n = 1;
  for (int i = 1; i < v->type.rank; i++) n *= v->type.dims[i].n;
  return n;
}

/* The row loop every kernel starts with. */
static V rows_begin(em *e) { return for0(e, argi(e, CG_A_R0), argi(e, CG_A_R1), 1); }

static void k_embed(em *e, const cg_kernel_req *q) {
  const ir_op *op = q->op;
  int64_t D = DIMN(op->in[1], 1);
  view o = OUTV(e, 0), tok = INV(e, q, 0), tab = INV(e, q, 1);
  V t = rows_begin(e);
  V id = ldi(e, rowp(e, &tok, t), ci(e, 0));
  copy_n(e, rowp(e, &o, t), gep(e, tab.seg, MULI(id, ci(e, D))), D, false);
  end0(e);
}

/* Sum over n (constant) floats at p of f(x) for a vector function given
 * as kind: 0 x, 1 (x - mean)^2. */
static V row_sum(em *e, V p, int64_t n, int kind, V meanv) {
  V z = cvf(e, 0);
  int64_t full = n / e->vl, tail = n % e->vl;
  V acc = z;
  if (full) {
    loop L;
    loop_begin(e, &L, ci(e, 0), ci(e, full * e->vl), ci(e, e->vl), 1, &z, e->vt);
    V x = ldv(e, p, L.iv, NULL);
    if (kind) {
      V dl = VSUB(x, meanv);
      x = VMUL(dl, dl);
    }
    V y = VADD(L.arg[0], x);
    loop_end(e, &L, &y);
    acc = L.res[0];
  }
  if (tail) {
    V m = cmask(e, (int)tail);
    V x = ldv(e, p, ci(e, full * e->vl), &m);
    if (kind) {
      V dl = VSUB(x, meanv), t = nv(e);
      out(e, "  %s = arith.select %s, %s, %s : %s, %s\n", t.s, m.s, dl.s, z.s, e->mt, e->vt);
      x = VMUL(t, t);
    }
    acc = VADD(acc, x);
  }
  return vsum(e, acc);
}

/* 1 / sqrt(mean((x - mean)^2) + eps) of the n floats at p (meanv: the
 * mean, splat; zeros for RMSNorm): a norm's scale, as a scalar.  The
 * folded RMSNorm of the linear kernel computes it with this same code. */
static V inv_std(em *e, V p, int64_t n, V meanv, const ir_op *norm) {
  const ir_attr *a = ir_get_attr(norm, "eps");
  double eps = a ? a->f : 1e-6;
  V ms = FADD(FDIV(row_sum(e, p, n, 1, meanv), cf(e, (double)n)), cf(e, eps));
  V rs = nv(e);
  out(e, "  %s = math.sqrt %s : f32\n", rs.s, ms.s);
  return FDIV(cf(e, 1.0), rs);
}

/* A norm of one D-vector at src, its gain at gain: the mean (LayerNorm;
 * 0 for RMSNorm) and 1/std by streaming passes, then row_normed gives
 * (x - mean) / std * g for any vector of it.  k_norm and the linears a
 * norm is folded into under bf16 math share it, so their results agree
 * to the bit. */
typedef struct row_norm {
  bool on;
  V mv, inv, gain;
} row_norm;
static row_norm row_norm_of(em *e, const ir_op *norm, V src, int64_t D, V gain, bool layer) {
  V mean = cf(e, 0);
  if (layer) mean = FDIV(row_sum(e, src, D, 0, cvf(e, 0)), cf(e, (double)D));
  row_norm n = {.on = true, .gain = gain, .mv = splat(e, mean)};
  n.inv = splat(e, inv_std(e, src, D, n.mv, norm));
  return n;
}
static V row_normed(em *e, const row_norm *n, V x, V k, const V *mk) {
  return n->on ? VMUL(VMUL(VSUB(x, n->mv), n->inv), ldv(e, n->gain, k, mk)) : x;
}

/* RMSNorm / LayerNorm of each D-vector of a row: streaming passes over
 * the vector (sums, then the scaled output), so any width works. */
static void k_norm(em *e, const cg_kernel_req *q, bool layer) {
  const ir_op *op = q->op;
  int64_t D = LAST(op->in[0]), nvec = inner(op->in[0]) / D;
  view o = OUTV(e, 0), x = INV(e, q, 0), g = INV(e, q, 1);
  V r = rows_begin(e);
  V xr = rowp(e, &x, r), orow = rowp(e, &o, r);
  V j = for0(e, ci(e, 0), ci(e, nvec), 1);
  V off = MULI(j, ci(e, D));
  V xp = gep(e, xr, off), op_ = gep(e, orow, off);
  row_norm n = row_norm_of(e, op, xp, D, g.seg, layer);
  int64_t full = D / e->vl, tail = D % e->vl;
  if (full) {
    V i = for0(e, ci(e, 0), ci(e, full * e->vl), e->vl);
    stv(e, row_normed(e, &n, ldv(e, xp, i, NULL), i, NULL), op_, i, NULL);
    end0(e);
  }
  if (tail) {
    V m = cmask(e, (int)tail), i = ci(e, full * e->vl);
    stv(e, row_normed(e, &n, ldv(e, xp, i, &m), i, &m), op_, i, &m);
  }
  end0(e);
  end0(e);
}

/* bias_add: each O-vector of a row plus the bias (a weight [O]). */
static void k_bias_add(em *e, const cg_kernel_req *q) {
  const ir_op *op = q->op;
  int64_t O = LAST(op->in[0]), nvec = inner(op->in[0]) / O;
  view o = OUTV(e, 0), x = INV(e, q, 0), b = INV(e, q, 1);
  V r = rows_begin(e);
  V xr = rowp(e, &x, r), orow = rowp(e, &o, r);
  V j = for0(e, ci(e, 0), ci(e, nvec), 1);
  V off = MULI(j, ci(e, O));
  V xp = gep(e, xr, off), op_ = gep(e, orow, off);
  int64_t full = O / e->vl, tail = O % e->vl;
  if (full) {
    V i = for0(e, ci(e, 0), ci(e, full * e->vl), e->vl);
    stv(e, VADD(ldv(e, xp, i, NULL), ldv(e, b.seg, i, NULL)), op_, i, NULL);
    end0(e);
  }
  if (tail) {
    V m = cmask(e, (int)tail), i = ci(e, full * e->vl);
    stv(e, VADD(ldv(e, xp, i, &m), ldv(e, b.seg, i, &m)), op_, i, &m);
  }
  end0(e);
  end0(e);
}

/* ---- bf16 rounding ------------------------------------------------------ */

/* An integer constant of type ty (i32, i16, vector<..xi32>, ...). */
static V cint(em *e, int64_t c, const char *ty) {
  V v = nv(e);
  if (strchr(ty, '<')) out(e, "  %s = arith.constant dense<%lld> : %s\n", v.s, (long long)c, ty);
  else out(e, "  %s = arith.constant %lld : %s\n", v.s, (long long)c, ty);
  return v;
}

/* f32 x (a scalar when n == 0, else n lanes) rounded to the nearest bf16
 * number (to nearest even; a NaN stays a quiet NaN), as f32:
 * ut_f32_to_bf16's rounding, for the FMA path (CG_BF16_FMA) of bf16 math,
 * which has no conversion instruction. */
static V bf16_round(em *e, V x, int n) {
  char tf[32], ti[32];
  snprintf(tf, sizeof tf, n ? "vector<%dxf32>" : "f32", n);
  snprintf(ti, sizeof ti, n ? "vector<%dxi32>" : "i32", n);
  V u = nv(e), f = nv(e), isnan = nv(e), rq = nv(e);
  out(e, "  %s = arith.bitcast %s : %s to %s\n", u.s, x.s, tf, ti);
  V lsb = bin(e, "arith.andi", bin(e, "arith.shrui", u, cint(e, 16, ti), ti), cint(e, 1, ti), ti);
  V r = bin(e, "arith.addi", bin(e, "arith.addi", u, cint(e, 0x7fff, ti), ti), lsb, ti);
  V mag = bin(e, "arith.andi", u, cint(e, 0x7fffffff, ti), ti);
  out(e, "  %s = arith.cmpi ugt, %s, %s : %s\n", isnan.s, mag.s, cint(e, 0x7f800000, ti).s, ti);
  V q = bin(e, "arith.ori", u, cint(e, 0x400000, ti), ti);
  if (n)
    out(e, "  %s = arith.select %s, %s, %s : vector<%dxi1>, %s\n", rq.s, isnan.s, q.s, r.s, n, ti);
  else
    out(e, "  %s = arith.select %s, %s, %s : %s\n", rq.s, isnan.s, q.s, r.s, ti);
  V hi16 = cint(e, -65536, ti); /* 0xffff0000 */
  r = bin(e, "arith.andi", rq, hi16, ti);
  out(e, "  %s = arith.bitcast %s : %s to %s\n", f.s, r.s, ti, tf);
  return f;
}

/* ---- linear: packed-panel GEMM ------------------------------------------- */

int64_t cg_linear_panel(int vec_bits, int64_t O) {
  /* the probe's best tiles: 4 x 64 on AVX-512, 4 x 16 on AVX2; a narrow
   * output takes a narrower panel (and more rows, linear_rows) rather
   * than computing zeros */
  int64_t vl = vec_bits / 32, nr = vec_bits >= 512 ? 4 * vl : 2 * vl;
  while (nr > vl && nr / 2 >= O) nr /= 2;
  return nr;
}

/* Rows of the register tile: the accumulators (rows x panel vectors) fill
 * three quarters of the vector registers, 6 x 4 zmm or 6 x 2 ymm: per
 * step of k, (rows + panel vectors) loads for rows x vectors FMAs, and the
 * panel, which is read from L2, is read once per 6 rows.  Against the 4 x
 * 4 and 4 x 2 tiles of the probe, on a Sapphire Rapids-class core (one
 * thread, bench_cpu_kernels --only gemm, the 215M model's shapes):
 * 0.73-0.77 -> 0.88-0.93 of OpenBLAS sgemm with AVX-512, 0.83-0.91 ->
 * 0.91-1.00 forced to AVX2. */
static int linear_rows(int vec_bits, int64_t nr) {
  int acc = vec_bits >= 512 ? 24 : 12, nvb = (int)(nr / (vec_bits / 32));
  int mr = acc / nvb;
  return mr > 8 ? 8 : mr < 1 ? 1 : mr;
}

/* The last columns (O mod NR of them) form a narrower tail panel, as
 * many vectors wide as they need, so 260 outputs cost 272 columns of
 * work, not 320. */
static int64_t tail_width(int vec_bits, int64_t O) {
  int64_t nr = cg_linear_panel(vec_bits, O), vl = vec_bits / 32, rem = O % nr;
  return rem ? (rem + vl - 1) / vl * vl : 0;
}

size_t cg_linear_packed_floats(int64_t O, int64_t I, int vec_bits) {
  int64_t nr = cg_linear_panel(vec_bits, O);
  return (size_t)((O / nr * nr + tail_width(vec_bits, O)) * I);
}

/* The panels of W [O, I] (times the gain g per input, when given) into
 * f32 (out32) or 16-bit (out16, wtype) elements, the same layout. */
static void pack_panels(const float *w, const float *g, int64_t O, int64_t I, int vec_bits,
                        float *out32, uint16_t *out16, int wtype) {
  int64_t nr = cg_linear_panel(vec_bits, O), nfull = O / nr, nt = tail_width(vec_bits, O);
  for (int64_t p = 0; p <= nfull; p++) {
    int64_t width = p < nfull ? nr : nt, base = p * I * nr;
    for (int64_t k = 0; k < I; k++)
      for (int64_t j = 0; j < width; j++) {
        int64_t o = p * nr + j, at = base + k * width + j;
        float v = o < O ? (g ? w[o * I + k] * g[k] : w[o * I + k]) : 0.0f;
        if (out32) out32[at] = v;
        else out16[at] = wtype == CG_W_F16 ? ut_f32_to_f16(v) : ut_f32_to_bf16(v);
      }
  }
}

void cg_linear_pack_gain(const float *w, const float *g, int64_t O, int64_t I, int vec_bits,
                         float *packed) {
  pack_panels(w, g, O, I, vec_bits, packed, NULL, CG_W_F32);
}

void cg_linear_pack_16(const float *w, int64_t O, int64_t I, int vec_bits, int wtype,
                       uint16_t *packed) {
  pack_panels(w, NULL, O, I, vec_bits, NULL, packed, wtype);
}

void cg_linear_pack(const float *w, int64_t O, int64_t I, int vec_bits, float *packed) {
  cg_linear_pack_gain(w, NULL, O, I, vec_bits, packed);
}


/* What a GEMM block does with its accumulators: store them to C, after
 * adding a residual R (an add fused into the GEMM); or, for SwiGLU, keep
 * the gate's tile in scratch (row stride nr) and then, in the up
 * projection's pass, store silu(gate) * up. */
typedef struct gemm_epi {
  const V *inv;   /* a folded RMSNorm: c *= inv[m - inv0] first */
  V inv0;
  const V *R;     /* + R[m][col] */
  const V *tile;  /* gate pass: store the tile here, not to C */
  const V *gate;  /* up pass: c = silu(gate tile) * c */
} gemm_epi;

static V silu_times(em *e, V g, V u) {
  V neg = nv(e), one = cvf(e, 1.0);
  out(e, "  %s = arith.negf %s : %s\n", neg.s, g.s, e->vt);
  V sg = bin(e, "arith.divf", one, VADDS(one, exp_vec(e, neg)), e->vt);
  return VMULS(VMULS(g, sg), u);
}

/* One block: rows [m, m + mr) of A against np packed panels side by side
 * (panel pp at bp + pp * I * nr, [I][nr], output columns col0 + pp * nr
 * on, `valid` of them real: nr, or in the tail panel O mod NR); C
 * written with a constant mask past the valid columns.  np > 1 is for one
 * row (mr = 1, the GEMV of decode): several panels give the FMAs enough
 * independent accumulators, and each output still sums over k in order,
 * so a row's result has the same bits whichever path computed it. */
static void gemm_block(em *e, int mr, int np, V A, V C, const gemm_epi *ep, V bp, V m, V col0,
                       int64_t I, V O, int64_t nr, int64_t valid) {
  int nvb = (int)(nr / e->vl), n = np * mr * nvb;
  V acc[MAXCARRY];
  V z = cvf(e, 0);
  for (int i = 0; i < n; i++) acc[i] = z;
  loop L;
  loop_begin(e, &L, ci(e, 0), ci(e, I), ci(e, 1), n, acc, e->vt);
  V y[MAXCARRY];
  V av[8];
  for (int i = 0; i < mr; i++)
    av[i] = splat(e, lds(e, A, ADDI(MULI(ADDI(m, ci(e, i)), ci(e, I)), L.iv)));
  for (int pp = 0; pp < np; pp++) {
    V bk = gepw(e, bp, ADDI(MULI(L.iv, ci(e, nr)), ci(e, pp * I * nr)));
    V bv[MAXCARRY];
    for (int j = 0; j < nvb; j++) bv[j] = ldw(e, bk, ci(e, (int64_t)j * e->vl));
    for (int i = 0; i < mr; i++)
      for (int j = 0; j < nvb; j++) {
        int at = (i * np + pp) * nvb + j;
        y[at] = vfma(e, av[i], bv[j], L.arg[at]);
      }
  }
  loop_end(e, &L, y);
  V res[MAXCARRY];
  for (int i = 0; i < n; i++) res[i] = L.res[i];
  if (ep->inv)
    for (int i = 0; i < mr; i++) {
      V s = splat(e, lds(e, *ep->inv, SUBI(ADDI(m, ci(e, i)), ep->inv0)));
      for (int j = 0; j < np * nvb; j++) res[i * np * nvb + j] = VMULS(res[i * np * nvb + j], s);
    }
  if (ep->tile) {
    /* the gate's tile, whole (columns past O are zeros of the padding) */
    for (int i = 0; i < n; i++) stv(e, res[i], *ep->tile, ci(e, (int64_t)i * e->vl), NULL);
    return;
  }
  for (int pp = 0; pp < np; pp++) {
    /* columns [c0, c0 + valid) of C: a full panel, or the tail panel's
     * first O mod NR columns (constant masks) */
    V c0 = ADDI(col0, ci(e, pp * nr));
    for (int i = 0; i < mr; i++) {
      V at = ADDI(MULI(ADDI(m, ci(e, i)), O), c0);
      V crow = gep(e, C, at);
      for (int j = 0; j < nvb; j++) {
        int r = (i * np + pp) * nvb + j;
        int64_t lanes = valid - (int64_t)j * e->vl;
        if (lanes <= 0) break;
        V off = ci(e, (int64_t)j * e->vl), mk;
        if (lanes < e->vl) mk = cmask(e, (int)lanes);
        const V *mp = lanes < e->vl ? &mk : NULL;
        V c = res[r];
        if (ep->R) c = VADDS(c, ldv(e, gep(e, *ep->R, at), off, mp));
        if (ep->gate) c = silu_times(e, ldv(e, *ep->gate, ci(e, (int64_t)r * e->vl), NULL), c);
        stv(e, c, crow, off, mp);
      }
    }
  }
}

/* What every block of one linear kernel shares: A, C, the residual, the
 * packed weights of the panel (and of the up projection's), SwiGLU's
 * tile, a folded norm's 1/rms of the current rows. */
typedef struct lin_args {
  V A, C, tile;
  const V *R, *inv;
  V inv0;
  int64_t I;
  V O;             /* C's row stride, the output width (a parameter) */
  int64_t valid;   /* real columns of the panels being emitted */
  int64_t rows;    /* rows per call when known (one token: the vectors per
                      row), else 0 */
} lin_args;

/* A block of the linear kernel: the GEMM, or for SwiGLU the gate's then
 * the up projection's GEMM over the same rows and panel. */
static void linear_block(em *e, int mr, int np, const lin_args *la, V bpg, const V *bpu, V m,
                         V col0, int64_t nr) {
  gemm_epi g = {.inv = la->inv, .inv0 = la->inv0, .R = la->R};
  if (!bpu) {
    gemm_block(e, mr, np, la->A, la->C, &g, bpg, m, col0, la->I, la->O, nr, la->valid);
    return;
  }
  gemm_epi u = g;
  g.R = NULL;
  g.tile = &la->tile;
  u.gate = &la->tile;
  gemm_block(e, mr, np, la->A, la->C, &g, bpg, m, col0, la->I, la->O, nr, la->valid);
  gemm_block(e, mr, np, la->A, la->C, &u, *bpu, m, col0, la->I, la->O, nr, la->valid);
}

/* Rows [m0, m1) of a panel: blocks of mr rows, then the rest one by one. */
static void linear_rows_of(em *e, int mr, const lin_args *la, V bp, const V *bpu, V m0, V m1,
                           V col0, int64_t nr) {
  if (la->rows && la->rows < mr) {
    /* fewer rows than a block (one token): no block code */
    V m = for0(e, m0, m1, 1);
    linear_block(e, 1, 1, la, bp, bpu, m, col0, nr);
    end0(e);
    return;
  }
  V mf = ADDI(m0, MULI(DIVI(SUBI(m1, m0), ci(e, mr)), ci(e, mr)));
  V m = for0(e, m0, mf, mr);
  linear_block(e, mr, 1, la, bp, bpu, m, col0, nr);
  end0(e);
  V m2 = for0(e, mf, m1, 1);
  linear_block(e, 1, 1, la, bp, bpu, m2, col0, nr);
  end0(e);
}

/* What both linear bodies read first: the parameters, the output width
 * (C's row stride and the number of panels) and, but for the decode
 * version, which unrolls by it, the rows per token: so the projections
 * of one width in, several widths out, and the encoder's (65 rows per
 * chunk) and the stacks' (1 per token) share their code; then the views
 * and the call's row and panel ranges. */
typedef struct lin_io {
  V O, nvec, r0, r1, n0, n1;
  view o, x, w;
} lin_io;

static lin_io lin_prologue(em *e, const cg_kernel_req *q, cg_kernel_info *info, int64_t panel,
                           int64_t nvec, bool one_row) {
  const ir_op *op = q->fused ? q->fused : q->op;
  lin_io io;
  info->split = CG_SPLIT_PANELS;
  info->panel = panel;
  io.O = param(e, info, DIMN(op->in[1], 0));
  io.nvec = one_row ? ci(e, nvec) : param(e, info, nvec);
  io.o = OUTV(e, 0);
  io.x = INV(e, q, 0);
  io.w = INV(e, q, 1);
  io.r0 = argi(e, CG_A_R0);
  io.r1 = one_row ? io.r0 : argi(e, CG_A_R1);
  io.n0 = argi(e, CG_A_N0);
  io.n1 = argi(e, CG_A_N1);
  return io;
}

/* A norm folded into a linear under bf16 math (q->prenorm): its gain,
 * the kernel's last input (after x, W and the residual or the up
 * projection's W; the runtime appends it), loaded once per call; then
 * row_norm_of the linear's row as k_norm computes it (the same sums and
 * products in the same order; LLVM's fast-math flags leave it free to
 * reorder either, which the tests allow for).  Without
 * q->prenorm row_normed is x. */
static V folded_gain(em *e, const cg_kernel_req *q) {
  return q->prenorm ? INV(e, q, q->fused ? 3 : 2).seg : (V){{0}};
}
static row_norm folded_norm_of(em *e, const cg_kernel_req *q, V src, int64_t I, V gain) {
  if (!q->prenorm) return (row_norm){.on = false};
  return row_norm_of(e, q->prenorm, src, I, gain, false);
}

/* The linear kernel, or (q->fused) an add ending the linear's GEMM:
 * C = A W^T + R with the residual R read in the epilogue, so the GEMM's
 * result is never stored and read back; or (q->fused_up) SwiGLU.  With
 * q->prenorm, the RMSNorm before it is folded in: A is the norm's input,
 * the packed weights carry its gain, and each row's 1/rms, computed once
 * per block of rows into scratch, scales the accumulators.  one_row: the
 * decode version, for a call of one token (r1 = r0 + 1): GEMVs over MR
 * panels at a time, no row blocks. */
static void linear_body(em *e, const cg_kernel_req *q, cg_kernel_info *info, bool one_row) {
  const ir_op *op = q->fused ? q->fused : q->op;
  bool swiglu = q->fused_up != NULL;
  int64_t O = DIMN(op->in[1], 0), I = DIMN(op->in[1], 1), nvec = inner(op->in[0]) / I;
  int64_t nr = cg_linear_panel(e->vl * 32, O);
  int MR = linear_rows(e->vl * 32, nr);
  lin_io io = lin_prologue(e, q, info, nr, nvec, one_row);
  V Ov = io.O, nvec_v = io.nvec, r0 = io.r0, r1 = io.r1, n0 = io.n0, n1 = io.n1;
  view o = io.o, x = io.x, w = io.w;
  int64_t nfull = O / nr, nt = tail_width(e->vl * 32, O);
  V nfull_v = DIVI(Ov, ci(e, nr));
  info->nsplit = nfull + (nt ? 1 : 0);
  /* rows [r0, r1) of the segment are one contiguous [M, I] matrix */
  lin_args la = {.A = rowp(e, &x, r0), .C = rowp(e, &o, r0), .I = I, .O = Ov, .valid = nr,
                 .rows = one_row ? nvec : 0};
  la.tile = la.A;
  V Rv, wu = la.A, invp;
  int64_t tile_floats = 0;
  if (swiglu) {
    /* x, the gate's weights, the up projection's (same packing) */
    wu = INV(e, q, 2).seg;
    la.tile = argp(e, CG_A_SCRATCH);
    tile_floats = 8 * nr + 16;
  } else if (q->fused) {
    view res = INV(e, q, 2);
    Rv = rowp(e, &res, r0);
    la.R = &Rv;
  }
  V M = one_row ? nvec_v : MULI(SUBI(r1, r0), nvec_v);
  /* Loop order by size: a weight matrix that fits in cache is streamed
   * past blocks of MB rows of A held in L2; a larger one (the LM head) is
   * read once, panel by panel, while A streams from the cache (with a
   * folded norm, in blocks of 4096 rows: the 1/rms of a block's rows are
   * held in scratch).  One token: one block of its nvec rows. */
  bool fma16 = e->bf16 == CG_BF16_FMA; /* bf16 math by f32 FMAs: a
                                          folded norm applies as the rows
                                          are rounded (folded_norm_of) */
  V gain = fma16 ? folded_gain(e, q) : (V){{0}};
  bool big = O * I * 4 > (8 << 20) && !fma16;
  int64_t MB = big ? 4096 : 16 * MR;
  V step = ci(e, MB);
  if (big && !q->prenorm) step = MAXI(M, ci(e, 1));
  if (one_row) step = MAXI(M, ci(e, 1));
  info->scratch_fixed = tile_floats + (q->prenorm && !fma16 ? (MB > nvec ? MB : nvec) : 0);
  /* bf16 math on f32 FMAs: each block's rows of A rounded to bf16 values
   * once, into scratch, which the GEMM then reads in place of A */
  int64_t abf_at = info->scratch_fixed;
  if (fma16) info->scratch_fixed += (one_row ? nvec : MB) * I + 16;
  loop blk;
  loop_begin(e, &blk, ci(e, 0), M, step, 0, NULL, NULL);
  V mb = blk.iv;
  la.inv0 = mb;
  V mbe = MINI(ADDI(mb, step), M);
  if (fma16) {
    V ab = gepc(e, argp(e, CG_A_SCRATCH), abf_at), A0 = rowp(e, &x, r0);
    V r = for0(e, mb, mbe, 1);
    V src = gep(e, A0, MULI(r, ci(e, I))), dst = gep(e, ab, MULI(SUBI(r, mb), ci(e, I)));
    int64_t full = I / e->vl * e->vl;
    row_norm nrm = folded_norm_of(e, q, src, I, gain);
    if (full) {
      V k = for0(e, ci(e, 0), ci(e, full), e->vl);
      V xk = row_normed(e, &nrm, ldv(e, src, k, NULL), k, NULL);
      stv(e, bf16_round(e, xk, e->vl), dst, k, NULL);
      end0(e);
    }
    if (full < I) {
      V mk = cmask(e, (int)(I - full)), kf = ci(e, full);
      V xk = row_normed(e, &nrm, ldv(e, src, kf, &mk), kf, &mk);
      stv(e, bf16_round(e, xk, e->vl), dst, kf, &mk);
    }
    end0(e);
    /* row m of the block at ab + (m - mb) * I */
    la.A = gep(e, ab, MULI(SUBI(ci(e, 0), mb), ci(e, I)));
  }
  if (q->prenorm && !fma16) {
    invp = gepc(e, argp(e, CG_A_SCRATCH), tile_floats);
    la.inv = &invp;
    V r = for0(e, mb, mbe, 1);
    sts(e, inv_std(e, gep(e, la.A, MULI(r, ci(e, I))), I, cvf(e, 0), q->prenorm), invp,
        SUBI(r, mb));
    end0(e);
  }
  V pend = MINI(n1, nfull_v);
  if (one_row && O * I * 4 <= (1 << 20)) {
    /* the GEMV: MR panels side by side, each row on its own.  Only for
     * weights that fit in L2: larger ones stream from L3 or memory, where
     * MR streams per thread measured slower than one (bench_cpu_kernels
     * --only gemv, 2 threads on a Zen 3), and the one-panel path below
     * is the GEMV. */
    V pg = ADDI(n0, MULI(DIVI(MAXI(SUBI(pend, n0), ci(e, 0)), ci(e, MR)), ci(e, MR)));
    V p = for0(e, n0, pg, MR);
    V bp = gepw(e, w.seg, MULI(p, ci(e, I * nr))), col0 = MULI(p, ci(e, nr));
    V bpu = swiglu ? gepw(e, wu, MULI(p, ci(e, I * nr))) : bp;
    V m = for0(e, mb, mbe, 1);
    linear_block(e, 1, MR, &la, bp, swiglu ? &bpu : NULL, m, col0, nr);
    end0(e);
    end0(e);
    n0 = pg;
  }
  V p = for0(e, n0, pend, 1);
  V bp = gepw(e, w.seg, MULI(p, ci(e, I * nr))), col0 = MULI(p, ci(e, nr));
  V bpu = swiglu ? gepw(e, wu, MULI(p, ci(e, I * nr))) : bp;
  linear_rows_of(e, MR, &la, bp, swiglu ? &bpu : NULL, mb, mbe, col0, nr);
  end0(e);
  if (nt) {
    /* the tail panel, when this call's panel range holds it */
    V has_tail = bin(e, "arith.andi", cmpi(e, "sle", n0, nfull_v),
                     cmpi(e, "sgt", n1, nfull_v), "i1");
    if0(e, has_tail);
    V toff = MULI(nfull_v, ci(e, I * nr));
    V tbp = gepw(e, w.seg, toff), tc0 = MULI(nfull_v, ci(e, nr));
    V tbu = swiglu ? gepw(e, wu, toff) : tbp;
    la.valid = O - nfull * nr;
    linear_rows_of(e, linear_rows(e->vl * 32, nt), &la, tbp, swiglu ? &tbu : NULL, mb, mbe,
                   tc0, nt);
    out(e, "  }\n");
  }
  end0(e);
}

/* ---- linear in bf16: rounded inputs, exact products, f32 sums ----------- */

const char *cg_bf16_name(int bf16) {
  switch (bf16) {
  case CG_BF16_FMA: return "bf16 inputs, f32 fma";
  case CG_BF16_DOT: return "bf16 inputs, avx512-bf16 dot products";
  case CG_BF16_AMX: return "bf16 inputs, amx tiles";
  default: return "f32";
  }
}

/* 16 f32 lanes a and b as 32 bf16 lanes [a, b] (vcvtne2ps2bf16: to
 * nearest even). */
static V cvt2bf16(em *e, V a, V b) {
  V v = nv(e);
  out(e, "  %s = llvm.call_intrinsic \"llvm.x86.avx512bf16.cvtne2ps2bf16.512\"(%s, %s) : "
      "(vector<16xf32>, vector<16xf32>) -> vector<32xbf16>\n", v.s, b.s, a.s);
  return v;
}

static void st_bf16x32(em *e, V x, V p, V off) {
  out(e, "  llvm.store %s, %s {alignment = 2 : i64} : vector<32xbf16>, !llvm.ptr\n", x.s,
      gep16(e, p, off).s);
}

int64_t cg_bf16p_kpad(int64_t I) { return (I + 31) / 32 * 32; }

size_t cg_linear_bf16p_elems(int64_t O, int64_t I) {
  return (size_t)((O + CG_BF16P_NR - 1) / CG_BF16P_NR * CG_BF16P_NR * cg_bf16p_kpad(I));
}

void cg_linear_pack_bf16p(const float *w, int64_t O, int64_t I, uint16_t *packed) {
  int64_t NR = CG_BF16P_NR, Kp = cg_bf16p_kpad(I), np = (O + NR - 1) / NR;
  for (int64_t p = 0; p < np; p++)
    for (int64_t k = 0; k < Kp; k++)
      for (int64_t j = 0; j < NR; j++) {
        int64_t o = p * NR + j;
        float v = o < O && k < I ? w[o * I + k] : 0.0f;
        packed[p * Kp * NR + (k / 2) * 2 * NR + j * 2 + (k & 1)] = ut_f32_to_bf16(v);
      }
}

/* A 2-D memref over raw memory at p: rows x cols elements of type elt
 * (bf16 or f32), row-major: the operand AMX tile loads and stores take. */
static V memref2d(em *e, V p, int64_t rows, int64_t cols, const char *elt) {
  static const char *S = "!llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>";
  V d = nv(e);
  out(e, "  %s = llvm.mlir.undef : %s\n", d.s, S);
  V vals[6] = {ci(e, 0), ci(e, rows), ci(e, cols), ci(e, cols), ci(e, 1)};
  static const char *at[] = {"2", "3, 0", "3, 1", "4, 0", "4, 1"};
  for (int i = -2; i < 5; i++) {
    V n = nv(e);
    out(e, "  %s = llvm.insertvalue %s, %s[%s] : %s\n", n.s, i < 0 ? p.s : vals[i].s, d.s,
        i == -2 ? "0" : i == -1 ? "1" : at[i], S);
    d = n;
  }
  V m = nv(e);
  out(e, "  %s = builtin.unrealized_conversion_cast %s : %s to memref<?x?x%s>\n", m.s, d.s, S, elt);
  return m;
}

static V idx(em *e, V i64) {
  V v = nv(e);
  out(e, "  %s = arith.index_cast %s : i64 to index\n", v.s, i64.s);
  return v;
}

/* The two kinds of tile: 16 x 32 bf16 operands (a B operand's rows are
 * k-pairs) and 16 x 16 f32 sums. */
static const char TILE_OP[] = "vector<16x32xbf16>", TILE_SUM[] = "vector<16x16xf32>";

/* The tile at row r, column c of memref m (bf16, or f32 for sums). */
static V tile_load(em *e, V m, V r, V c, bool sum) {
  V v = nv(e);
  out(e, "  %s = amx.tile_load %s[%s, %s] : memref<?x?x%s> into %s\n", v.s, m.s, idx(e, r).s,
      idx(e, c).s, sum ? "f32" : "bf16", sum ? TILE_SUM : TILE_OP);
  return v;
}

static void tile_store(em *e, V m, V r, V c, V t) {
  out(e, "  amx.tile_store %s[%s, %s], %s : memref<?x?xf32>, %s\n", m.s, idx(e, r).s,
      idx(e, c).s, t.s, TILE_SUM);
}

static V tile_zero(em *e) {
  V v = nv(e);
  out(e, "  %s = amx.tile_zero : %s\n", v.s, TILE_SUM);
  return v;
}

/* c + a b (tdpbf16ps) */
static V tile_mulf(em *e, V a, V b, V c) {
  V v = nv(e);
  out(e, "  %s = amx.tile_mulf %s, %s, %s : %s, %s, %s\n", v.s, a.s, b.s, c.s, TILE_OP, TILE_OP,
      TILE_SUM);
  return v;
}

/* Where an operand's tiles lie: row-major at p (bf16 operands, f32 sums),
 * rows ld elements apart; the tile of k-step ks for output tile t at row
 * ks * rk + t * rt, column ks * ck + t * ct (an operand shared by every
 * output tile has rt = ct = 0). */
typedef struct tile_at {
  V p;
  int64_t ld, rk, rt, ck, ct;
} tile_at;

/* The memref AMX tile loads take over x's tiles for ntiles x nks. */
static V tile_memref(em *e, tile_at x, int64_t ntiles, int64_t nks, bool sum) {
  int64_t rows = (nks - 1) * x.rk + (ntiles - 1) * x.rt + 16;
  return memref2d(e, x.p, rows, x.ld, sum ? "f32" : "bf16");
}

/* Output tiles t < ntiles, each sum over k-steps ks < nks of A(ks, t)
 * B(ks, t) (plus C's tile when acc), one of A and B shared by every t,
 * stored to C at (t * C.rt, t * C.ct), on AMX.  In groups of 3 sums with
 * the k-steps outermost, so that consecutive products are independent
 * (one waiting on the previous runs at its latency), and a group's
 * operands all loaded before its products (a tile register reloaded
 * while a product still reads it makes the load wait): with the shared
 * operand, 7 of the 8 tiles.  No tile outlives the group: none crosses a
 * loop (LLVM 19). */
static void amx_grouped(em *e, tile_at A, tile_at B, tile_at C, int64_t ntiles, int64_t nks,
                        bool acc) {
  bool a_shared = !A.rt && !A.ct;
  V Am = tile_memref(e, A, ntiles, nks, false), Bm = tile_memref(e, B, ntiles, nks, false),
    Cm = tile_memref(e, C, ntiles, 1, true);
  for (int64_t g0 = 0; g0 < ntiles; g0 += 3) {
    V c[3], x[3];
    int64_t nt = ntiles - g0 < 3 ? ntiles - g0 : 3;
    for (int64_t t = 0; t < nt; t++)
      c[t] = acc ? tile_load(e, Cm, ci(e, (g0 + t) * C.rt), ci(e, (g0 + t) * C.ct), true)
                 : tile_zero(e);
    for (int64_t ks = 0; ks < nks; ks++) {
      const tile_at *sh = a_shared ? &A : &B, *per = a_shared ? &B : &A;
      V shm = a_shared ? Am : Bm, perm = a_shared ? Bm : Am;
      V y = tile_load(e, shm, ci(e, ks * sh->rk), ci(e, ks * sh->ck), false);
      for (int64_t t = 0; t < nt; t++)
        x[t] = tile_load(e, perm, ci(e, ks * per->rk + (g0 + t) * per->rt),
                         ci(e, ks * per->ck + (g0 + t) * per->ct), false);
      for (int64_t t = 0; t < nt; t++)
        c[t] = a_shared ? tile_mulf(e, y, x[t], c[t]) : tile_mulf(e, x[t], y, c[t]);
    }
    for (int64_t t = 0; t < nt; t++)
      tile_store(e, Cm, ci(e, (g0 + t) * C.rt), ci(e, (g0 + t) * C.ct), c[t]);
  }
}

static V dpbf16(em *e, V acc, V a, V b) {
  V v = nv(e);
  out(e, "  %s = llvm.call_intrinsic \"llvm.x86.avx512bf16.dpbf16ps.512\"(%s, %s, %s) : "
      "(vector<16xf32>, vector<32xbf16>, vector<32xbf16>) -> vector<16xf32>\n",
      v.s, acc.s, a.s, b.s);
  return v;
}

/* 32 bf16 at p + off (16-bit elements), as an operand of vdpbf16ps. */
static V ld_bf16x32(em *e, V p, V off) {
  V h = nv(e), b = nv(e);
  out(e, "  %s = llvm.load %s {alignment = 2 : i64} : !llvm.ptr -> vector<32xi16>\n", h.s,
      gep16(e, p, off).s);
  out(e, "  %s = arith.bitcast %s : vector<32xi16> to vector<32xbf16>\n", b.s, h.s);
  return b;
}


/* The 32-bit pair of bf16 at p + off (16-bit elements) in every lane, as
 * an operand of vdpbf16ps (LLVM folds the load into its broadcast form). */
static V bcast_pair(em *e, V p, V off) {
  V w = nv(e), bc = nv(e), ab = nv(e);
  out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> i32\n", w.s, gep16(e, p, off).s);
  out(e, "  %s = vector.broadcast %s : i32 to vector<16xi32>\n", bc.s, w.s);
  out(e, "  %s = llvm.bitcast %s : vector<16xi32> to vector<32xbf16>\n", ab.s, bc.s);
  return ab;
}

/* The products of amx_grouped by vdpbf16ps, for CPUs with AVX512-BF16 but
 * no AMX: a C tile's rows are vectors of sums, carried through a loop over
 * the k-steps; per k-pair j of a k-step, B's row j (the pairs of 16
 * columns: one vector) times A's pair j of row m, broadcast, into row m's
 * sums.  Where A is shared by every output tile (O = P V), NT tiles at a
 * time (4 where their number allows) share each broadcast: blocks of
 * 16 / NT rows by NT tiles, 16 sums; else blocks of 16 rows of one tile.
 * The same products, each rounded pair summed in f32 (the order of the
 * sums differs from the tiles'). */
static void dot_grouped(em *e, tile_at A, tile_at B, tile_at C, int64_t ntiles, int64_t nks,
                        bool acc) {
  bool a_shared = !A.rt && !A.ct;
  int NT = !a_shared ? 1 : ntiles % 4 == 0 ? 4 : ntiles % 2 == 0 ? 2 : 1, RB = 16 / NT;
  V tg = for0(e, ci(e, 0), ci(e, ntiles), NT); /* the group's first tile */
  V m0 = for0(e, ci(e, 0), ci(e, 16), RB);     /* the block's first row */
  V tt[4], cb[4], init[16], z = cvf(e, 0);
  for (int u = 0; u < NT; u++) {
    tt[u] = u ? ADDI(tg, ci(e, u)) : tg;
    cb[u] = gep(e, C.p, ADDI(MULI(ADDI(MULI(tt[u], ci(e, C.rt)), m0), ci(e, C.ld)),
                             MULI(tt[u], ci(e, C.ct))));
    for (int r = 0; r < RB; r++)
      init[r * NT + u] = acc ? ldv(e, cb[u], ci(e, r * C.ld), NULL) : z;
  }
  loop L;
  loop_begin(e, &L, ci(e, 0), ci(e, nks), ci(e, 1), 16, init, e->vt);
  V ks = L.iv, y[16], bo[4];
  V ao = ADDI(MULI(ADDI(ADDI(MULI(ks, ci(e, A.rk)), MULI(tg, ci(e, A.rt))), m0), ci(e, A.ld)),
              ADDI(MULI(ks, ci(e, A.ck)), MULI(tg, ci(e, A.ct))));
  for (int u = 0; u < NT; u++)
    bo[u] = ADDI(MULI(ADDI(MULI(ks, ci(e, B.rk)), MULI(tt[u], ci(e, B.rt))), ci(e, B.ld)),
                 ADDI(MULI(ks, ci(e, B.ck)), MULI(tt[u], ci(e, B.ct))));
  for (int i = 0; i < 16; i++) y[i] = L.arg[i];
  for (int j = 0; j < 16; j++) {
    V b[4];
    for (int u = 0; u < NT; u++) b[u] = ld_bf16x32(e, B.p, ADDI(bo[u], ci(e, j * B.ld)));
    for (int r = 0; r < RB; r++) {
      V a = bcast_pair(e, A.p, ADDI(ao, ci(e, r * A.ld + 2 * j)));
      for (int u = 0; u < NT; u++) y[r * NT + u] = dpbf16(e, y[r * NT + u], a, b[u]);
    }
  }
  loop_end(e, &L, y);
  for (int u = 0; u < NT; u++)
    for (int r = 0; r < RB; r++) stv(e, L.res[r * NT + u], cb[u], ci(e, r * C.ld), NULL);
  end0(e);
  end0(e);
}

/* The tile products of the bf16 attention kernels: AMX tiles, or
 * vdpbf16ps where the CPU has AVX512-BF16 only. */
static void tile_products(em *e, const cg_kernel_req *q, tile_at A, tile_at B, tile_at C,
                          int64_t ntiles, int64_t nks, bool acc) {
  if (q->bf16 == CG_BF16_AMX) amx_grouped(e, A, B, C, ntiles, nks, acc);
  else dot_grouped(e, A, B, C, ntiles, nks, acc);
}

/* C tiles (2 x 2 of 16 x 16 f32, in Cm: [32][32]) += rows [arow, arow + 32)
 * of A (Am: bf16 [.][Kp]) times a panel's 32 columns (Bm: bf16 pairs
 * [Kp/2][64]), over k-steps [k0, k0 + n) of 32 inputs each; first: the
 * tiles start at zero rather than from Cm.  Tiles live within one call:
 * carried through a loop they make invalid LLVM IR in LLVM 19
 * (ARCHITECTURE.md), so the k-steps are unrolled and a block's tiles go
 * through Cm. */
static void amx_block(em *e, V Am, V arow, V Bm, V Cm, V k0, int n, bool first) {
  V c[4];
  for (int i = 0; i < 4; i++)
    c[i] = first ? tile_zero(e) : tile_load(e, Cm, ci(e, 16 * (i / 2)), ci(e, 16 * (i % 2)), true);
  V arow1 = ADDI(arow, ci(e, 16));
  for (int s = 0; s < n; s++) {
    V k = ADDI(k0, ci(e, s));
    V kc = MULI(k, ci(e, 32)), kr = MULI(k, ci(e, 16));
    V a[2] = {tile_load(e, Am, arow, kc, false), tile_load(e, Am, arow1, kc, false)};
    V b[2] = {tile_load(e, Bm, kr, ci(e, 0), false), tile_load(e, Bm, kr, ci(e, 32), false)};
    for (int i = 0; i < 4; i++) c[i] = tile_mulf(e, a[i / 2], b[i % 2], c[i]);
  }
  for (int i = 0; i < 4; i++) tile_store(e, Cm, ci(e, 16 * (i / 2)), ci(e, 16 * (i % 2)), c[i]);
}

/* Cm = rows [arow, arow + 32) of A times one panel, over all ksteps. */
static void amx_tiles(em *e, V Am, V arow, V Bm, V Cm, int64_t ksteps) {
  enum { KU = 16 };
  if (ksteps <= 2 * KU) {
    amx_block(e, Am, arow, Bm, Cm, ci(e, 0), (int)ksteps, true);
    return;
  }
  int64_t nblk = ksteps / KU, rem = ksteps % KU;
  amx_block(e, Am, arow, Bm, Cm, ci(e, 0), KU, true);
  V b = for0(e, ci(e, 1), ci(e, nblk), 1);
  amx_block(e, Am, arow, Bm, Cm, MULI(b, ci(e, KU)), KU, false);
  end0(e);
  if (rem) amx_block(e, Am, arow, Bm, Cm, ci(e, nblk * KU), (int)rem, false);
}

/* Rows [arow, arow + mr) of A (bf16, row stride Kp at Ap) times one
 * panel (bf16 pairs at Bp) by vdpbf16ps, into Cp (f32 [mr][32]).  One row
 * (decode) keeps two sets of sums, even and odd pairs, so that four dot
 * products are in flight. */
static void dot_rows(em *e, int mr, V Ap, V arow, V Bp, V Cp, int64_t Kp) {
  int sets = mr == 1 ? 2 : 1, n = sets * mr * 2;
  V acc[MAXCARRY], z = cvf(e, 0);
  for (int i = 0; i < n; i++) acc[i] = z;
  loop L;
  loop_begin(e, &L, ci(e, 0), ci(e, Kp / 2), ci(e, sets), n, acc, e->vt);
  V y[MAXCARRY];
  for (int s = 0; s < sets; s++) {
    V kk = s ? ADDI(L.iv, ci(e, s)) : L.iv;
    V b[2] = {ld_bf16x32(e, Bp, MULI(kk, ci(e, 64))),
              ld_bf16x32(e, Bp, ADDI(MULI(kk, ci(e, 64)), ci(e, 32)))};
    for (int i = 0; i < mr; i++) {
      /* the pair (2kk, 2kk+1) of row i, in every lane */
      V ab = bcast_pair(e, Ap, ADDI(MULI(ADDI(arow, ci(e, i)), ci(e, Kp)), MULI(kk, ci(e, 2))));
      for (int t = 0; t < 2; t++) {
        int at = (s * mr + i) * 2 + t;
        y[at] = dpbf16(e, L.arg[at], ab, b[t]);
      }
    }
  }
  loop_end(e, &L, y);
  for (int i = 0; i < mr; i++)
    for (int t = 0; t < 2; t++) {
      V r = L.res[i * 2 + t];
      if (sets == 2) r = VADDS(r, L.res[(mr + i) * 2 + t]);
      stv(e, r, Cp, ci(e, i * 32 + t * 16), NULL);
    }
}

/* The epilogue of a block of rows of one panel: rows [0, nrows) of the
 * f32 block G (row stride 32; Uu: the up projection's, for SwiGLU) to C's
 * rows from m, columns [col0, col0 + valid): + R, or silu(G) * U. */
static void bf16p_store(em *e, V G, const V *U, V C, const V *R, V O, V m, V nrows, V col0,
                        V valid) {
  V mk[2];
  for (int t = 0; t < 2; t++)
    mk[t] = dmask(e, MINI(MAXI(SUBI(valid, ci(e, 16 * t)), ci(e, 0)), ci(e, 16)));
  V i = for0(e, ci(e, 0), nrows, 1);
  V at = ADDI(MULI(ADDI(m, i), O), col0);
  for (int t = 0; t < 2; t++) {
    V off = ADDI(MULI(i, ci(e, 32)), ci(e, 16 * t));
    V c = ldv(e, G, off, NULL);
    if (U) c = silu_times(e, c, ldv(e, *U, off, NULL));
    if (R) c = VADDS(c, ldv(e, *R, ADDI(at, ci(e, 16 * t)), &mk[t]));
    stv(e, c, C, ADDI(at, ci(e, 16 * t)), &mk[t]);
  }
  end0(e);
}

/* A linear (fused with its add or SwiGLU as linear_body) on bf16 pair
 * panels (CG_W_BF16P): each block of input rows is rounded to bf16 into
 * scratch once (Kp wide, zero-padded), then every panel of the call's
 * range multiplies it: AMX tiles for 32 rows at a time, or vdpbf16ps
 * rows (AVX512-BF16, and every call of one row).  With q->prenorm the
 * RMSNorm before it is applied as the rows are rounded: A is the norm's
 * input, the gain the kernel's last input (not packed into the weights,
 * whose bf16 numbers stay the matrix's), and each row is normalized by
 * k_norm's own sums and products (folded_norm_of), without writing the
 * norm's result and reading it back. */
static void linear_body_bf16p(em *e, const cg_kernel_req *q, cg_kernel_info *info,
                              bool one_row) {
  const ir_op *op = q->fused ? q->fused : q->op;
  bool swiglu = q->fused_up != NULL, amx = q->bf16 == CG_BF16_AMX && !one_row;
  int64_t O = DIMN(op->in[1], 0), I = DIMN(op->in[1], 1), nvec = inner(op->in[0]) / I;
  int64_t NR = CG_BF16P_NR, Kp = cg_bf16p_kpad(I), npan = (O + NR - 1) / NR;
  if (e->vl != 16) e->bug = "bf16 dot products without 512-bit vectors";
  info->nsplit = npan;
  lin_io io = lin_prologue(e, q, info, NR, nvec, one_row);
  V Ov = io.O, nvec_v = io.nvec, r0 = io.r0, r1 = io.r1, n0 = io.n0, n1 = io.n1;
  view o = io.o, x = io.x, w = io.w;
  V A = rowp(e, &x, r0), C = rowp(e, &o, r0), R, wu = w.seg, gain = folded_gain(e, q);
  if (swiglu) wu = INV(e, q, 2).seg;
  else if (q->fused) {
    view res = INV(e, q, 2);
    R = rowp(e, &res, r0);
  }
  /* rows per block: its bf16 copy of A within about 256 KB (L2), but at
   * least 128 rows: every block streams the whole matrix, which past
   * 1,024 inputs no longer fits the cache (a 1024 x 2752 projection in
   * blocks of 32 rows ran at 630 GFLOP/s, in blocks of 128 at 920-960).
   * A matrix of more than 4 MB in bf16 (twice a Sapphire Rapids core's
   * L2) comes from beyond L2 for every block, so there the block takes
   * up to 1.5 MB, at most 512 rows: the 32000 x 1024 output projection
   * 580-595 -> 775-825 GFLOP/s, 2752 x 1024 +3-8% on one thread; with
   * those blocks a 64 x 1024 matrix (in L2 anyway) lost 22%, its block
   * and the f32 rows it is rounded from no longer fitting L2 together */
  bool big = O * Kp * 2 > (4 << 20);
  int64_t most = big ? 512 : 256, MB = ((big ? 1536 : 256) << 10) / (2 * Kp) / 32 * 32;
  MB = MB < 128 ? 128 : MB > most ? most : MB;
  if (one_row) MB = nvec;
  V M = one_row ? nvec_v : MULI(SUBI(r1, r0), nvec_v);
  /* scratch: the block's bf16 rows (MB x Kp, 2 bytes each), then the f32
   * blocks of 32 x 32 results (the gate's, the up projection's) */
  int64_t abf_floats = (MB * Kp + 1) / 2, blk = 32 * 32;
  info->scratch_fixed = abf_floats + 2 * blk + 16 + 16;
  V scr = scratch64(e), Abf = scr;
  V G = gepc(e, scr, abf_floats), U = gepc(e, scr, abf_floats + blk);
  V Am = amx ? memref2d(e, Abf, MB, Kp, "bf16") : Abf;
  V Gm = amx ? memref2d(e, G, 32, 32, "f32") : G, Um = amx ? memref2d(e, U, 32, 32, "f32") : U;
  V pend = MINI(n1, ci(e, npan));
  loop bl;
  loop_begin(e, &bl, ci(e, 0), M, ci(e, MB), 0, NULL, NULL);
  V mb = bl.iv, mr = MINI(ci(e, MB), SUBI(M, mb));
  /* the block's rows in bf16; AMX reads whole 32-row tiles: rows up to a
   * multiple of 32 are zeros */
  V mpad = amx ? MULI(DIVI(ADDI(mr, ci(e, 31)), ci(e, 32)), ci(e, 32)) : mr;
  {
    V r = for0(e, ci(e, 0), mpad, 1);
    V live = cmpi(e, "slt", r, mr);
    V src = gep(e, A, MULI(ADDI(mb, MINI(r, SUBI(mr, ci(e, 1)))), ci(e, I)));
    V dst = gep16(e, Abf, MULI(r, ci(e, Kp)));
    V zero = cvf(e, 0);
    row_norm nrm = folded_norm_of(e, q, src, I, gain);
    /* 32 inputs at a time, vcvtne2ps2bf16 (every target of this kernel
     * has AVX512-BF16; it flushes denormals to zero, a difference from
     * the reference below 1e-38), then the last, partial block */
    int64_t kfull = I / 32 * 32;
    if (kfull) {
      V k = for0(e, ci(e, 0), ci(e, kfull), 32), k16 = ADDI(k, ci(e, 16));
      V a = sel(e, live, row_normed(e, &nrm, ldv(e, src, k, NULL), k, NULL), zero, e->vt);
      V b = sel(e, live, row_normed(e, &nrm, ldv(e, src, k16, NULL), k16, NULL), zero, e->vt);
      st_bf16x32(e, cvt2bf16(e, a, b), dst, k);
      end0(e);
    }
    if (kfull < Kp) {
      V half[2];
      for (int u = 0; u < 2; u++) {
        int64_t k = kfull + 16 * u;
        if (k + 16 <= I) {
          half[u] = row_normed(e, &nrm, ldv(e, src, ci(e, k), NULL), ci(e, k), NULL);
        } else if (k < I) {
          V mk = cmask(e, (int)(I - k));
          half[u] = row_normed(e, &nrm, ldv(e, src, ci(e, k), &mk), ci(e, k), &mk);
        } else {
          half[u] = zero;
        }
        half[u] = sel(e, live, half[u], zero, e->vt);
      }
      st_bf16x32(e, cvt2bf16(e, half[0], half[1]), dst, ci(e, kfull));
    }
    end0(e);
  }
  V p = for0(e, n0, pend, 1);
  V poff = MULI(p, ci(e, Kp * NR));
  V bp = gep16(e, w.seg, poff), bu = gep16(e, wu, poff);
  V col0 = MULI(p, ci(e, NR)), valid = MINI(ci(e, NR), SUBI(Ov, col0));
  const V *Rp = q->fused && !swiglu ? &R : NULL;
  if (amx) {
    V Bm = memref2d(e, bp, Kp / 2, 2 * NR, "bf16");
    V Bum = swiglu ? memref2d(e, bu, Kp / 2, 2 * NR, "bf16") : Bm;
    V mt = for0(e, ci(e, 0), mpad, 32);
    amx_tiles(e, Am, mt, Bm, Gm, Kp / 32);
    if (swiglu) amx_tiles(e, Am, mt, Bum, Um, Kp / 32);
    bf16p_store(e, G, swiglu ? &U : NULL, C, Rp, Ov, ADDI(mb, mt),
                MINI(ci(e, 32), SUBI(mr, mt)), col0, valid);
    end0(e);
  } else {
    /* blocks of 8 rows (16 sums), then one by one */
    int MRD = one_row ? 1 : 8;
    V mf = MULI(DIVI(mr, ci(e, MRD)), ci(e, MRD));
    for (int pass = 0; pass < (MRD > 1 ? 2 : 1); pass++) {
      int rows = pass ? 1 : MRD;
      V m = pass ? for0(e, mf, mr, 1) : for0(e, ci(e, 0), mf, MRD);
      dot_rows(e, rows, Abf, m, bp, G, Kp);
      if (swiglu) dot_rows(e, rows, Abf, m, bu, U, Kp);
      bf16p_store(e, G, swiglu ? &U : NULL, C, Rp, Ov, ADDI(mb, m), ci(e, rows), col0, valid);
      end0(e);
    }
  }
  end0(e);
  end0(e);
}

static void k_linear(em *e, const cg_kernel_req *q, cg_kernel_info *info, const char *name) {
  bool pairs = q->wtype == CG_W_BF16P;
  if (pairs && q->bf16 != CG_BF16_DOT && q->bf16 != CG_BF16_AMX)
    e->bug = "bf16 pair panels without bf16 dot products";
  if (pairs) linear_body_bf16p(e, q, info, false);
  else linear_body(e, q, info, false);
  /* The decode version is for a call of one token of one row: a linear of
   * several rows per token (the chunk encoder's, 65 rows of a chunk) has
   * enough rows for the GEMM blocks, so it has none (its code was the
   * largest of the paper model's decode versions, for a call once per
   * chunk). */
  const ir_op *op = q->fused ? q->fused : q->op;
  if (inner(op->in[0]) != DIMN(op->in[1], 1)) return;
  out(e, "  return\n}\n");
  out(e, "func.func @%s_1(%%args: !llvm.ptr) attributes {llvm.linkage = "
      "#llvm.linkage<external>} {\n", name);
  cg_kernel_info one;
  memset(&one, 0, sizeof one);
  if (pairs) linear_body_bf16p(e, q, &one, true);
  else linear_body(e, q, &one, true);
  /* a call passes the main version's parameters to both: the decode
   * version's must be the same values in the same slots (a prefix) */
  bool prefix = one.nparams <= info->nparams;
  for (int i = 0; prefix && i < one.nparams; i++) prefix = one.params[i] == info->params[i];
  if (!prefix) e->bug = "a linear's decode version takes other parameters than its kernel";
  info->one_row = true;
}

/* ---- elementwise -------------------------------------------------------- */

/* kind 0: a + b, 1: silu(a) * b, 2: sigmoid(a). */
static void k_eltwise(em *e, const cg_kernel_req *q, int kind) {
  const ir_op *op = q->op;
  int64_t E = inner(op->out[0]);
  view o = OUTV(e, 0), a = INV(e, q, 0);
  view b = kind < 2 ? INV(e, q, 1) : a;
  V r0 = argi(e, CG_A_R0), r1 = argi(e, CG_A_R1);
  V pa = rowp(e, &a, r0), pb = rowp(e, &b, r0), po = rowp(e, &o, r0);
  V n = MULI(SUBI(r1, r0), ci(e, E));
  V nfull = MULI(DIVI(n, ci(e, e->vl)), ci(e, e->vl));
  V one = cvf(e, 1.0);
  for (int pass = 0; pass < 2; pass++) {
    V mk;
    V i;
    if (pass == 0) {
      i = for0(e, ci(e, 0), nfull, e->vl);
    } else {
      i = nfull;
      mk = dmask(e, SUBI(n, nfull));
    }
    const V *mp = pass ? &mk : NULL;
    V x = ldv(e, pa, i, mp), y;
    if (kind == 0) {
      y = VADD(x, ldv(e, pb, i, mp));
    } else {
      V neg = nv(e);
      out(e, "  %s = arith.negf %s : %s\n", neg.s, x.s, e->vt);
      V den = VADD(one, exp_vec(e, neg));
      V sg = fbin(e, "arith.divf", one, den, e->vt);
      y = kind == 1 ? VMUL(VMUL(x, sg), ldv(e, pb, i, mp)) : sg;
    }
    stv(e, y, po, i, mp);
    if (pass == 0) end0(e);
  }
}

/* ---- row copies --------------------------------------------------------- */

static void k_copy(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  int64_t E = inner(op->out[0]), D = LAST(op->in[0]);
  /* a plain copy of whole vectors: the row width is a parameter, so the
   * copies of every width share one function */
  bool by_param = (op->code == IR_SPLIT_HEADS || op->code == IR_MERGE_HEADS ||
                   op->code == IR_QUANTIZE) && E % e->vl == 0;
  V Ev = by_param ? param(e, info, E) : (V){{0}};
  view o = OUTV(e, 0), x = INV(e, q, 0);
  if (op->code == IR_CHUNK) {
    int64_t S = ir_attr_i(op, "size", 1);
    V c = rows_begin(e);
    V orow = rowp(e, &o, c);
    V j = for0(e, ci(e, 0), ci(e, S), 1);
    V src = rowp(e, &x, ADDI(MULI(c, ci(e, S)), j));
    copy_n(e, gep(e, orow, MULI(j, ci(e, D))), src, D, false);
    end0(e);
    end0(e);
    return;
  }
  view w = op->code == IR_APPEND_ROW ? INV(e, q, 1) : x;
  V r = rows_begin(e);
  V src = rowp(e, &x, r), dst = rowp(e, &o, r);
  switch (op->code) {
  case IR_ROWS:
    copy_n(e, dst, gepc(e, src, ir_attr_i(op, "begin", 0) * D), E, false);
    break;
  case IR_ROW:
    copy_n(e, dst, gepc(e, src, ir_attr_i(op, "row", 0) * D), D, false);
    break;
  case IR_ZERO_ROW:
    copy_n(e, dst, src, E, false);
    copy_n(e, gepc(e, dst, ir_attr_i(op, "row", 0) * D), src, D, true);
    break;
  case IR_APPEND_ROW: {
    int64_t Ein = inner(op->in[0]);
    copy_n(e, dst, src, Ein, false);
    copy_n(e, gepc(e, dst, Ein), w.seg, D, false);
    break;
  }
  default: /* split_heads, merge_heads, quantize: the same floats */
    if (by_param) {
      V i = for0(e, ci(e, 0), Ev, e->vl);
      stv(e, ldv(e, src, i, NULL), dst, i, NULL);
      end0(e);
    } else {
      copy_n(e, dst, src, E, false);
    }
  }
  end0(e);
}


/* ---- rope --------------------------------------------------------------- */

static void k_rope(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *v = op->in[0];
  int rank = v->type.rank;
  int64_t d = LAST(v), H = DIMN(v, rank - 2), half = d / 2;
  int64_t P = rank == 3 ? 1 : DIMN(v, rank - 3);
  const ir_attr *ta = ir_get_attr(op, "theta");
  double theta = ta ? ta->f : 10000.0;
  int64_t mul = ir_attr_i(op, "pos_mul", 1), add = ir_attr_i(op, "pos_add", 0);
  /* the number of heads is a parameter: the queries' rope and the keys'
   * (fewer KV heads) share one function */
  V Hv = param(e, info, H);
  view o = OUTV(e, 0), x = INV(e, q, 0);
  /* scratch: cos at [0, half), sin at [half, d), then the frequencies
   * (f64) at [d, 2 d), written once: a loop over them keeps the function
   * small (the angles unrolled with their constants made each rope kernel
   * about 490 lines of MLIR; the loop took the 215M example's one-thread
   * compile from a median of 1.50 to 1.43 s, 6 runs each) */
  V scr = argp(e, CG_A_SCRATCH), ft = gepc(e, scr, d);
  for (int64_t i = 0; i < half; i++)
    out(e, "  llvm.store %s, %s {alignment = 4 : i64} : f64, !llvm.ptr\n",
        cd(e, pow(theta, -2.0 * (double)i / (double)d)).s, gepc(e, ft, 2 * i).s);
  V r = rows_begin(e);
  V src = rowp(e, &x, r), dst = rowp(e, &o, r);
  V p = for0(e, ci(e, 0), ci(e, P), 1);
  /* the angle in double, as the reference does: positions reach 2^31 */
  V pos = rank == 3 ? ADDI(MULI(r, ci(e, mul)), ci(e, add)) : p;
  V posf = nv(e);
  out(e, "  %s = arith.sitofp %s : i64 to f64\n", posf.s, pos.s);
  {
    V i = for0(e, ci(e, 0), ci(e, half), 1);
    V fr = nv(e);
    out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> f64\n", fr.s,
        gep(e, ft, MULI(i, ci(e, 2))).s);
    V ang = fbin(e, "arith.mulf", posf, fr, "f64");
    V c = nv(e), s = nv(e), cf32 = nv(e), sf32 = nv(e);
    out(e, "  %s = math.cos %s : f64\n", c.s, ang.s);
    out(e, "  %s = math.sin %s : f64\n", s.s, ang.s);
    out(e, "  %s = arith.truncf %s : f64 to f32\n", cf32.s, c.s);
    out(e, "  %s = arith.truncf %s : f64 to f32\n", sf32.s, s.s);
    sts(e, cf32, scr, i);
    sts(e, sf32, scr, ADDI(i, ci(e, half)));
    end0(e);
  }
  V cv[MAXCARRY], sv[MAXCARRY];
  load_vecs(e, scr, half, cv);
  load_vecs(e, gepc(e, scr, half), half, sv);
  V h = for0(e, ci(e, 0), Hv, 1);
  V base = MULI(ADDI(MULI(p, Hv), h), ci(e, d));
  V a = gep(e, src, base), b = gep(e, dst, base);
  V av[MAXCARRY], bv[MAXCARRY], ra[MAXCARRY] = {0}, rb[MAXCARRY] = {0};
  load_vecs(e, a, half, av);
  load_vecs(e, gepc(e, a, half), half, bv);
  for (int c = 0; c < nvecs(e, half); c++) {
    ra[c] = VSUB(VMUL(av[c], cv[c]), VMUL(bv[c], sv[c]));
    rb[c] = VADD(VMUL(bv[c], cv[c]), VMUL(av[c], sv[c]));
  }
  store_vecs(e, ra, b, half);
  store_vecs(e, rb, gepc(e, b, half), half);
  end0(e);
  end0(e);
  end0(e);
}

/* ---- attention ---------------------------------------------------------- */

/* softmax over s[0, n) in scratch (max m known), then the weighted sum of
 * the value rows: o = sum_j p_j v_j * factor / (sum + extra).  Values come
 * from vrow(j).  Returns the vectors of o. */
typedef V (*row_fn)(em *e, void *ctx, V j);

/* exp(s_j - m) in place over n (dynamic) scores; returns their sum. */
static V exp_scores(em *e, V s, V n, V m) {
  V mv = splat(e, m), z = cvf(e, 0);
  V nfull = MULI(DIVI(n, ci(e, e->vl)), ci(e, e->vl));
  loop L;
  loop_begin(e, &L, ci(e, 0), nfull, ci(e, e->vl), 1, &z, e->vt);
  V p = exp_vec(e, VSUB(ldv(e, s, L.iv, NULL), mv));
  stv(e, p, s, L.iv, NULL);
  V acc = VADD(L.arg[0], p);
  loop_end(e, &L, &acc);
  V mk = dmask(e, SUBI(n, nfull));
  V pt = exp_vec(e, VSUB(ldv(e, s, nfull, &mk), mv));
  V pz = nv(e);
  out(e, "  %s = arith.select %s, %s, %s : %s, %s\n", pz.s, mk.s, pt.s, z.s, e->mt, e->vt);
  stv(e, pz, s, nfull, &mk);
  return vsum(e, VADD(L.res[0], pz));
}

/* exp(s - m) in place over scr[0, n) (dynamic n), -inf entries giving 0;
 * returns the sum. */
static V exp_inplace(em *e, V scr, V n, V m) {
  /* vl scores at a time (vector exponentials, a vector of sums), then
   * the last ones one at a time */
  V nfull = MULI(DIVI(n, ci(e, e->vl)), ci(e, e->vl));
  V zv = cvf(e, 0), ninfv = cvf(e, -INFINITY), mv = splat(e, m);
  loop Lv;
  loop_begin(e, &Lv, ci(e, 0), nfull, ci(e, e->vl), 1, &zv, e->vt);
  V x = ldv(e, scr, Lv.iv, NULL);
  V isinf = cmpf(e, "oeq", x, ninfv, e->vt), ex = exp_vec(e, VSUB(x, mv)), pv = nv(e);
  out(e, "  %s = arith.select %s, %s, %s : %s, %s\n", pv.s, isinf.s, zv.s, ex.s, e->mt, e->vt);
  stv(e, pv, scr, Lv.iv, NULL);
  V vs = VADD(Lv.arg[0], pv);
  loop_end(e, &Lv, &vs);
  V ninf = cf(e, -INFINITY), zs = vsum(e, Lv.res[0]);
  loop Le;
  loop_begin(e, &Le, nfull, n, ci(e, 1), 1, &zs, "f32");
  V sv = lds(e, scr, Le.iv);
  V ps = sel(e, cmpf(e, "oeq", sv, ninf, "f32"), cf(e, 0), exp_s(e, FSUB(sv, m)), "f32");
  sts(e, ps, scr, Le.iv);
  V sum = FADD(Le.arg[0], ps);
  loop_end(e, &Le, &sum);
  return Le.res[0];
}

/* Attention of one query (vectors qv) over rows j in [lo, hi) of K/V:
 * scores into s, softmax (+n_plus), and o += factor * sum p_j v_j.
 * Returns the o vectors (accumulated onto acc0). */
static void attend(em *e, const V *qv, int64_t d, double scale, V lo, V hi, row_fn krow,
                   row_fn vrow, void *ctx, V s, int n_plus, V factor, const V *acc0, V *res) {
  int n = nvecs(e, d);
  V ninf = cf(e, -INFINITY);
  loop L;
  loop_begin(e, &L, lo, hi, ci(e, 1), 1, &ninf, "f32");
  V sc = FMUL(dot_vecs(e, qv, krow(e, ctx, L.iv), d), cf(e, scale));
  sts(e, sc, s, SUBI(L.iv, lo));
  V mx = fmaxs(e, L.arg[0], sc);
  loop_end(e, &L, &mx);
  V m = L.res[0];
  V cnt = SUBI(hi, lo);
  V sum = exp_scores(e, s, cnt, m);
  if (n_plus) sum = FADD(sum, FMUL(cf(e, n_plus), exp_s(e, FSUB(cf(e, 0), m))));
  V f = splat(e, FDIV(factor, sum));
  loop A;
  loop_begin(e, &A, lo, hi, ci(e, 1), n, acc0, e->vt);
  V pj = splat(e, lds(e, s, SUBI(A.iv, lo)));
  V vv[MAXCARRY], y[MAXCARRY];
  load_vecs(e, vrow(e, ctx, A.iv), d, vv);
  for (int c = 0; c < n; c++) y[c] = vfma(e, pj, vv[c], A.arg[c]);
  loop_end(e, &A, y);
  for (int c = 0; c < n; c++) res[c] = VMUL(A.res[c], f);
}

typedef struct attn_ctx {
  view *k, *v;
  V off;            /* element offset of the KV head in a row */
  V base;           /* rank 4: the chunk row (K and V) */
  V kbase, vbase;
  int64_t rowlen;   /* rank 4: floats per in-chunk position */
} attn_ctx;

static V seq_krow(em *e, void *c, V j) {
  attn_ctx *a = c;
  return gep(e, rowp(e, a->k, j), a->off);
}
static V seq_vrow(em *e, void *c, V j) {
  attn_ctx *a = c;
  return gep(e, rowp(e, a->v, j), a->off);
}
static V chunk_krow(em *e, void *c, V j) {
  attn_ctx *a = c;
  return gep(e, a->kbase, ADDI(MULI(j, ci(e, a->rowlen)), a->off));
}
static V chunk_vrow(em *e, void *c, V j) {
  attn_ctx *a = c;
  return gep(e, a->vbase, ADDI(MULI(j, ci(e, a->rowlen)), a->off));
}

static void k_attention(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int rank = qv->type.rank;
  int64_t d = LAST(qv), Hq = DIMN(qv, rank - 2), Hk = DIMN(kv, rank - 2), grp = Hq / Hk;
  bool causal = ir_attr_i(op, "causal", 1) != 0;
  int64_t W = ir_attr_i(op, "window", 0);
  double scale = 1.0 / sqrt((double)d);
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  V scr = argp(e, CG_A_SCRATCH);
  int n = nvecs(e, d);
  V z = cvf(e, 0), acc0[MAXCARRY], res[MAXCARRY], qx[MAXCARRY];
  for (int c = 0; c < n; c++) acc0[c] = z;
  V one = cf(e, 1.0);
  if (rank == 3) {
    info->split = CG_SPLIT_HEADS;
    info->nsplit = Hq;
    if (W > 0) info->scratch_fixed = W + 16;
    else info->scratch_per_t1 = 1, info->scratch_fixed = 16;
    V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1);
    V t = rows_begin(e);
    V hi = ADDI(t, ci(e, 1));
    V lo = W > 0 ? MAXI(SUBI(hi, ci(e, W)), ci(e, 0)) : ci(e, 0);
    V qr = rowp(e, &Q, t), orow = rowp(e, &o, t);
    V h = for0(e, n0, n1, 1);
    V kh = DIVI(h, ci(e, grp));
    attn_ctx a = {.k = &K, .v = &Vv, .off = MULI(kh, ci(e, d))};
    load_vecs(e, gep(e, qr, MULI(h, ci(e, d))), d, qx);
    attend(e, qx, d, scale, lo, hi, seq_krow, seq_vrow, &a, scr, 0, one, acc0, res);
    store_vecs(e, res, gep(e, orow, MULI(h, ci(e, d))), d);
    end0(e);
    end0(e);
    return;
  }
  /* [C, P, H, d]: attention inside each chunk row */
  int64_t P = DIMN(qv, rank - 3);
  info->scratch_fixed = P + 16;
  V c = rows_begin(e);
  attn_ctx a = {.k = &K, .v = &Vv, .rowlen = Hk * d};
  a.kbase = rowp(e, &K, c);
  a.vbase = rowp(e, &Vv, c);
  V qr = rowp(e, &Q, c), orow = rowp(e, &o, c);
  V i = for0(e, ci(e, 0), ci(e, P), 1);
  V h = for0(e, ci(e, 0), ci(e, Hq), 1);
  a.off = MULI(DIVI(h, ci(e, grp)), ci(e, d));
  V qoff = MULI(ADDI(MULI(i, ci(e, Hq)), h), ci(e, d));
  load_vecs(e, gep(e, qr, qoff), d, qx);
  V hi = causal ? ADDI(i, ci(e, 1)) : ci(e, P);
  attend(e, qx, d, scale, ci(e, 0), hi, chunk_krow, chunk_vrow, &a, scr, 0, one, acc0, res);
  store_vecs(e, res, gep(e, orow, qoff), d);
  end0(e);
  end0(e);
  end0(e);
}

/* HSA: per selected chunk an independent softmax(+n) over its P keys, the
 * outputs mixed by the chunk weights (no running max across chunks). */
/* In-register transpose of n rows of n lanes (n = the vector width, a
 * power of two): log2(n) stages of two-source shuffles that swap the
 * off-diagonal blocks of half size h, then of h / 2, ... */
static void transpose_vecs(em *e, V *rows, int n) {
  for (int h = n / 2; h >= 1; h /= 2)
    for (int i = 0; i < n; i++) {
      if (i & h) continue;
      int j = i + h;
      V a = rows[i], b = rows[j], ni = nv(e), nj = nv(e);
      out(e, "  %s = vector.shuffle %s, %s [", ni.s, a.s, b.s);
      for (int c = 0; c < n; c++) out(e, "%s%d", c ? ", " : "", (c & h) ? n + c - h : c);
      out(e, "] : %s, %s\n", e->vt, e->vt);
      out(e, "  %s = vector.shuffle %s, %s [", nj.s, a.s, b.s);
      for (int c = 0; c < n; c++) out(e, "%s%d", c ? ", " : "", (c & h) ? n + c : c + h);
      out(e, "] : %s, %s\n", e->vt, e->vt);
      rows[i] = ni;
      rows[j] = nj;
    }
}

/* The same, with the grp query heads of a KV head packed into the lanes
 * of one vector (vector<grp x f32>), as the paper's G = 16 fills a zmm:
 * scores, softmax and the weighted sum are then plain vector FMAs with a
 * broadcast key or value element and no horizontal reductions.  Per token
 * and KV head the queries are transposed once into scratch (qT[e][g],
 * pre-scaled), each selected chunk is read straight from its page: scores
 * sT[j][g] = sum_e qT[e] K[j][e] in blocks of JB keys, softmax(+n) per
 * lane, then oT[e] += w / sum * sum_j sT[j] V[j][e] in blocks of EB
 * elements; the result is transposed back.  Scratch: qT, sT, oT. */
#define PFH 3 /* prefetcht0; t1 measured the same */
/* A read prefetch of the line at p: into L1 (hint PFH) or L2 (hint 2). */
static void prefetch_line(em *e, V p, int hint) {
  out(e, "  \"llvm.intr.prefetch\"(%s) <{cache = 1 : i32, hint = %d : i32, rw = 0 : i32}> "
      ": (!llvm.ptr) -> ()\n", p.s, hint);
}
/* The rows of a far chunk the sparse kernels prefetch: one in
 * pf_every(Hk) (one in four with one KV head, one in two with two, every
 * row with four or more: a touch every 512 bytes or so of the pages' rows
 * with head width 64), which keeps the CPU's L2 streamer going on each
 * 4 KB page; it brings the lines in between.  Prefetching every line kept
 * the core's miss slots busy with lines the streamer would have brought
 * (bench layer, uniform selections, one thread, Sapphire Rapids-class VM,
 * session 27, alternating rounds: the AMX kernel 305-332 -> 366-368
 * GFLOP/s at 64K tokens and 267-277 -> 292-321 at 256K; the f32 kernel
 * 111-118 -> 127-137 at 64K, 121-129 -> 132-138 at 16K and 103-109 ->
 * 110-119 at 256K; 4K and clustered selections within noise).  Zen 5
 * is the other way round (CG_PF_DENSE: every row). */
static int pf_every(const em *e, int64_t Hk) {
  return e->pf_dense || Hk >= 4 ? 1 : (int)(4 / Hk);
}

/* Prefetches into L2 rows [rb, rb + rpb) (of P) of a chunk's K and V
 * (rows `stride` floats apart, d floats from `col` on): those that are
 * multiples of pf_every(e, Hk). */
static void prefetch_share(em *e, V kb, V vb, V rb, int64_t rpb, int64_t P, int64_t stride,
                           V col, int64_t d, int64_t Hk) {
  int64_t ev = pf_every(e, Hk);
  V r0 = MULI(DIVI(ADDI(rb, ci(e, ev - 1)), ci(e, ev)), ci(e, ev));
  V pj = for0(e, r0, MINI(ADDI(rb, ci(e, rpb)), ci(e, P)), ev);
  V poff = ADDI(MULI(pj, ci(e, stride)), col);
  for (int64_t l = 0; l < d; l += 16) {
    V a1 = gep(e, kb, ADDI(poff, ci(e, l))), a2 = gep(e, vb, ADDI(poff, ci(e, l)));
    prefetch_line(e, a1, 2);
    prefetch_line(e, a2, 2);
  }
  end0(e);
}

/* a if a > b (ordered), else b: one vmaxps; a NaN in `a` is dropped, a
 * NaN in `b` kept, as the scores' running maximum has always been */
static V max_sel(em *e, V a, V b) {
  V gt = cmpf(e, "ogt", a, b, e->vt), m = nv(e);
  out(e, "  %s = arith.select %s, %s, %s : %s, %s\n", m.s, gt.s, a.s, b.s, e->mt, e->vt);
  return m;
}

/* One nat x nat block of queries_T: elements [e0, e0 + nat) of the nat
 * query rows at qrow[] transposed, times scv, to qT[e][gb + r] (rows of n
 * lanes), and zeros at the same places of *zero when given. */
static void queries_T_block(em *e, int nat, const V *qrow, V e0, int64_t gb, int64_t n, V scv,
                            V qT, const V *zero) {
  V rows[16];
  for (int r = 0; r < nat; r++) rows[r] = ldv(e, qrow[r], e0, NULL);
  transpose_vecs(e, rows, nat);
  for (int k2 = 0; k2 < nat; k2++) {
    V at = ADDI(MULI(ADDI(e0, ci(e, k2)), ci(e, n)), ci(e, gb));
    stv(e, VMUL(rows[k2], scv), qT, at, NULL);
    if (zero) stv(e, cvf(e, 0), *zero, at, NULL); /* [e][g] or [g][e]: zeros either way */
  }
}

/* qT[e][g] = q[hq0 + g][e] * scale for the grp query heads of a KV head
 * (q row qr, heads of d floats), and zeros at the same grp x d places of
 * *zero when given.  By n x n in-register transposes of the target's
 * vectors (n lanes: a group of 16 is one zmm or two ymm wide), else
 * scalar.  Leaves "a vector" grp lanes wide. */
static bool heads_transposable(int nat, int64_t grp, int64_t d) {
  return nat <= 16 && (nat & (nat - 1)) == 0 && grp % nat == 0 && d % nat == 0;
}
static void queries_T(em *e, int vec_bits, V qr, V hq0, int64_t grp, int64_t d, double scale,
                      V qT, const V *zero) {
  int nat = vec_bits / 32;
  V sc = cf(e, scale);
  if (heads_transposable(nat, grp, d)) {
    set_lanes(e, nat);
    V scv = splat(e, sc);
    V e0 = for0(e, ci(e, 0), ci(e, d), nat);
    for (int64_t gb = 0; gb < grp; gb += nat) {
      V qrow[16];
      for (int r = 0; r < nat; r++) qrow[r] = gep(e, qr, MULI(ADDI(hq0, ci(e, gb + r)), ci(e, d)));
      queries_T_block(e, nat, qrow, e0, gb, grp, scv, qT, zero);
    }
    end0(e);
  } else {
    V gg = for0(e, ci(e, 0), ci(e, grp), 1);
    V qrow = gep(e, qr, MULI(ADDI(hq0, gg), ci(e, d)));
    V ee = for0(e, ci(e, 0), ci(e, d), 1);
    V at = ADDI(MULI(ee, ci(e, grp)), gg);
    sts(e, FMUL(lds(e, qrow, ee), sc), qT, at);
    if (zero) sts(e, cf(e, 0), *zero, at);
    end0(e);
    end0(e);
  }
  set_lanes(e, (int)grp);
}

/* qT[e][l] = qrow[l][e] * scale for the n = nat lanes of several tokens
 * (lane l's query row of d floats at qrow[l]), by queries_T's transposes
 * (the caller's lanes fill a vector and d is whole vectors). */
static void queries_T_rows(em *e, int vec_bits, const V *qrow, int64_t n, int64_t d,
                           double scale, V qT) {
  int nat = vec_bits / 32;
  set_lanes(e, nat);
  V scv = splat(e, cf(e, scale));
  V e0 = for0(e, ci(e, 0), ci(e, d), nat);
  for (int64_t gb = 0; gb < n; gb += nat)
    queries_T_block(e, nat, qrow + gb, e0, gb, n, scv, qT, NULL);
  end0(e);
  set_lanes(e, (int)n);
}

/* With AVX-512 and 16 query heads per KV head, the scores take two
 * elements of a key row per broadcast (score_block): the scaled queries
 * also as q2[e2][h] = lanes (g, p) = qT[2 e2 + p][8 h + g], two
 * interleaves of consecutive rows of qT (d x 16 floats). */
enum { PAIR_JB = 12 }; /* keys per score block with pairs: 24 accumulators */
static bool score_pairs(int vec_bits, int64_t grp, int64_t d) {
  return vec_bits >= 512 && grp == 16 && d % 2 == 0;
}
static void query_pairs(em *e, V qT, V q2, int64_t d, int64_t grp) {
  V e2 = for0(e, ci(e, 0), ci(e, d / 2), 1);
  V a = ldv(e, qT, MULI(e2, ci(e, 2 * grp)), NULL);
  V b = ldv(e, qT, ADDI(MULI(e2, ci(e, 2 * grp)), ci(e, grp)), NULL);
  for (int h = 0; h < 2; h++) {
    V r = nv(e);
    out(e, "  %s = vector.shuffle %s, %s [", r.s, a.s, b.s);
    for (int c = 0; c < 16; c++) out(e, "%s%d", c ? ", " : "", 8 * h + c / 2 + (c & 1) * 16);
    out(e, "] : %s, %s\n", e->vt, e->vt);
    stv(e, r, q2, ADDI(MULI(e2, ci(e, 2 * grp)), ci(e, h * grp)), NULL);
  }
  end0(e);
}

/* The scores of nb keys (rows krow[i], d floats) for the grp heads in
 * lanes, stored at sT + srow + i * grp: with q = qT, a broadcast key
 * element per FMA (1 + 1/nb loads per FMA); with pairs (q = q2), per
 * key two sums of 8 heads x 2 elements, the key's elements (2 e2,
 * 2 e2 + 1) broadcast as one 64-bit value (vbroadcastsd) so one load
 * feeds two FMAs (0.56 loads per FMA), the pair halves added at the end.
 * nb <= 16 (PAIR_JB with pairs). */
static void score_block(em *e, bool pairs, V q, const V *krow, bool k16, int nb, int64_t d,
                        int64_t grp, V sT, V srow) {
  V z = cvf(e, 0), acc[32], y[32];
  int na = pairs ? 2 * nb : nb;
  for (int i = 0; i < na; i++) acc[i] = z;
  loop L;
  if (!pairs) {
    loop_begin(e, &L, ci(e, 0), ci(e, d), ci(e, 1), nb, acc, e->vt);
    V qe = ldv(e, q, MULI(L.iv, ci(e, grp)), NULL);
    for (int i = 0; i < nb; i++) {
      V k = k16 ? ld_bf16(e, krow[i], L.iv, 1) : lds(e, krow[i], L.iv);
      y[i] = vfma(e, qe, splat(e, k), L.arg[i]);
    }
    loop_end(e, &L, y);
    for (int i = 0; i < nb; i++) stv(e, L.res[i], sT, ADDI(srow, ci(e, i * grp)), NULL);
    return;
  }
  loop_begin(e, &L, ci(e, 0), ci(e, d / 2), ci(e, 1), na, acc, e->vt);
  V qa = ldv(e, q, MULI(L.iv, ci(e, 2 * grp)), NULL);
  V qb = ldv(e, q, ADDI(MULI(L.iv, ci(e, 2 * grp)), ci(e, grp)), NULL);
  for (int i = 0; i < nb; i++) {
    V kp, kq = nv(e);
    if (k16) { /* two bf16, widened */
      kp = ld_bf16(e, krow[i], MULI(L.iv, ci(e, 2)), 2);
    } else {
      kp = nv(e);
      out(e, "  %s = llvm.load %s {alignment = 4 : i64} : !llvm.ptr -> vector<2xf32>\n", kp.s,
          gep(e, krow[i], MULI(L.iv, ci(e, 2))).s);
    }
    out(e, "  %s = vector.shuffle %s, %s [", kq.s, kp.s, kp.s);
    for (int c = 0; c < 16; c++) out(e, "%s%d", c ? ", " : "", c & 1);
    out(e, "] : vector<2xf32>, vector<2xf32>\n");
    y[2 * i] = vfma(e, qa, kq, L.arg[2 * i]);
    y[2 * i + 1] = vfma(e, qb, kq, L.arg[2 * i + 1]);
  }
  loop_end(e, &L, y);
  for (int i = 0; i < nb; i++) {
    V ev = nv(e), od = nv(e);
    for (int p2 = 0; p2 < 2; p2++) {
      out(e, "  %s = vector.shuffle %s, %s [", (p2 ? od : ev).s, L.res[2 * i].s,
          L.res[2 * i + 1].s);
      for (int c = 0; c < 16; c++) out(e, "%s%d", c ? ", " : "", 2 * c + p2);
      out(e, "] : %s, %s\n", e->vt, e->vt);
    }
    stv(e, VADD(ev, od), sT, ADDI(srow, ci(e, i * grp)), NULL);
  }
}

/* The weighted sum of V rows with V rows as vectors (lanes over the head
 * width d, nat of them) and the probabilities broadcast: for keys j in
 * [lo, hi) (vrow gives V row j's KV-head slice, ctx its context), p[g]
 * at sT[(j - lo) * grp + g] (grp heads), per block of GB heads by up to
 * EVB vectors of the width:
 *   dst[g * d + e] (+)= f[g] * sum_j p[j][g] V[j][e]
 * accumulated into dst when acc, else stored; f at fT[g].  pre(e, pctx,
 * g0), when given, runs at the start of each head block.  (EVB + GB)
 * loads per EVB * GB FMAs.  How the sums meet dst (pv_mode): stored
 * times f, added times f, stored as they are (a first range of keys), or
 * continued from dst's (a second range: the same sums, in the same order,
 * as one range would make) and stored times f.  v16: V rows are bf16. */
typedef void (*block_fn)(em *e, void *ctx, V g0);
enum pv_mode { PV_STORE, PV_ADD, PV_FIRST, PV_REST };
static void pv_rows(em *e, int nat, int EVB, int GB, int64_t grp, int64_t d, V lo, V hi,
                    row_fn vrow, bool v16, void *ctx, V sT, V fT, V dst, enum pv_mode mode,
                    block_fn pre, void *pctx) {
  set_lanes(e, nat);
  V zv = cvf(e, 0);
  V g0 = for0(e, ci(e, 0), ci(e, grp), GB);
  if (pre) pre(e, pctx, g0);
  for (int64_t ev0 = 0; ev0 < d / nat; ev0 += EVB) {
    int nev = (int)(d / nat - ev0 < EVB ? d / nat - ev0 : EVB), na = GB * nev;
    V acc[16];
    for (int i = 0; i < na; i++) {
      acc[i] = zv;
      if (mode == PV_REST) /* dst[g * d + e] as [head block][vector] */
        acc[i] = ldv(e, gep(e, dst, MULI(ADDI(g0, ci(e, i / nev)), ci(e, d))),
                     ci(e, (ev0 + i % nev) * nat), NULL);
    }
    loop L;
    loop_begin(e, &L, lo, hi, ci(e, 1), na, acc, e->vt);
    V vr = vrow(e, ctx, L.iv);
    V prow = gep(e, sT, ADDI(MULI(SUBI(L.iv, lo), ci(e, grp)), g0));
    V vv[4], y[16];
    for (int v = 0; v < nev; v++)
      vv[v] = v16 ? ld_bf16(e, vr, ci(e, (ev0 + v) * nat), e->vl)
                  : ldv(e, vr, ci(e, (ev0 + v) * nat), NULL);
    for (int gi = 0; gi < GB; gi++) {
      V pb = splat(e, lds(e, prow, ci(e, gi)));
      for (int v = 0; v < nev; v++) y[gi * nev + v] = vfma(e, pb, vv[v], L.arg[gi * nev + v]);
    }
    loop_end(e, &L, y);
    for (int gi = 0; gi < GB; gi++) {
      V gg = ADDI(g0, ci(e, gi));
      V fg = splat(e, lds(e, fT, gg));
      V drow = gep(e, dst, MULI(gg, ci(e, d)));
      for (int v = 0; v < nev; v++) {
        V at2 = ci(e, (ev0 + v) * nat);
        V r = mode == PV_ADD     ? vfma(e, fg, L.res[gi * nev + v], ldv(e, drow, at2, NULL))
              : mode == PV_FIRST ? L.res[gi * nev + v]
                                 : VMUL(fg, L.res[gi * nev + v]);
        stv(e, r, drow, at2, NULL);
      }
    }
  }
  end0(e); /* head blocks */
  set_lanes(e, (int)grp);
}

/* Blocks of heads by vectors of the width for pv_rows: up to 4 vectors,
 * heads (a divisor of grp) while the accumulators stay within acc. */
static void pv_blocks(int64_t grp, int64_t d, int nat, int acc, int *EVB, int *GB) {
  *EVB = (int)(d / nat < 4 ? d / nat : 4);
  *GB = 1;
  for (int gb = 1; gb <= grp && gb * *EVB <= acc; gb++)
    if (grp % gb == 0) *GB = gb;
}

/* The maximum per lane of n (runtime) score rows sT[j * grp], which has
 * room for 3 more: those are set to -inf, then four running maxima over
 * blocks of 4 (one would be a chain of dependent vmaxps, 4 cycles each)
 * are combined.  Ordered compare and select: a NaN score is dropped here
 * and still makes the sum NaN. */
static V max_rows(em *e, V sT, int64_t grp, V n) {
  V ninf = cvf(e, -INFINITY);
  for (int i = 0; i < 3; i++) stv(e, ninf, sT, MULI(ADDI(n, ci(e, i)), ci(e, grp)), NULL);
  V mx[4] = {ninf, ninf, ninf, ninf}, mj[4];
  loop M;
  loop_begin(e, &M, ci(e, 0), n, ci(e, 4), 4, mx, e->vt);
  for (int i = 0; i < 4; i++)
    mj[i] = max_sel(e, ldv(e, sT, MULI(ADDI(M.iv, ci(e, i)), ci(e, grp)), NULL), M.arg[i]);
  loop_end(e, &M, mj);
  return max_sel(e, max_sel(e, M.res[0], M.res[1]), max_sel(e, M.res[2], M.res[3]));
}

/* Masks for several tokens sharing the lanes (lane l: token l / G of
 * them).  i64 x as f32 (exact for the small offsets used here). */
static V f32_of(em *e, V x) {
  V v = nv(e);
  out(e, "  %s = arith.sitofp %s : i64 to f32\n", v.s, x.s);
  return v;
}
/* The constant vector of l / G over the current lanes: each lane's token
 * among those sharing the vector. */
static V lane_tokens(em *e, int64_t G) {
  V v = nv(e);
  out(e, "  %s = arith.constant dense<[", v.s);
  for (int l = 0; l < e->vl; l++) out(e, "%s%lld.0", l ? ", " : "", (long long)(l / G));
  out(e, "]> : %s\n", e->vt);
  return v;
}
/* Score rows of keys j in [ja, jb) (row j - row0 of sT, `lanes` wide) set
 * to -inf in each lane whose window [lov, hiv) misses x = j - origin. */
static void mask_edges(em *e, V sT, int64_t lanes, V ja, V jb, V row0, V origin, V lov, V hiv) {
  V ninf = cvf(e, -INFINITY);
  V j = for0(e, ja, jb, 1);
  V x = splat(e, f32_of(e, SUBI(j, origin)));
  V at = MULI(SUBI(j, row0), ci(e, lanes)), row = ldv(e, sT, at, NULL);
  V outside = bin(e, "arith.ori", cmpf(e, "olt", x, lov, e->vt), cmpf(e, "oge", x, hiv, e->vt),
                  e->mt);
  V masked = nv(e);
  out(e, "  %s = arith.select %s, %s, %s : %s, %s\n", masked.s, outside.s, ninf.s, row.s, e->mt,
      e->vt);
  stv(e, masked, sT, at, NULL);
  end0(e);
}

/* The softmax numerators of n (runtime) score rows sT[j * grp] in place,
 * p = exp(s - m) per lane, and the per-lane sum of them, which *shift
 * (when given) receives exp(-m) to add.  16 lanes with AVX-512: as
 * 2^(s log2 e - m log2 e), one FMA and exp2_neg16 (11 instructions per
 * vector against exp_vec's 14); the rounding of m log2 e scales every p
 * and exp(-m) alike, so the normalized weights do not see it. */
static V exp_rows(em *e, V sT, int64_t grp, V n, int64_t nc, V m, V *shift) {
  V z = cvf(e, 0);
  bool two = e->vl == 16 && e->avx512;
  V log2e = cvf(e, 1.4426950408889634), nmx = nv(e);
  if (two) out(e, "  %s = arith.negf %s : %s\n", nmx.s, VMUL(m, log2e).s, e->vt);
  /* four sums (a chain of dependent additions, 4 cycles each, would
   * outlast the exponentials) where the count is known and fits */
  int u = nc > 0 && nc % 4 == 0 ? 4 : 1;
  V z4[4] = {z, z, z, z}, sums[4];
  loop S;
  loop_begin(e, &S, ci(e, 0), n, ci(e, u), u, z4, e->vt);
  for (int i = 0; i < u; i++) {
    V sa = MULI(ADDI(S.iv, ci(e, i)), ci(e, grp)), x = ldv(e, sT, sa, NULL);
    V pj = two ? exp2_neg16(e, vfma(e, x, log2e, nmx)) : exp_vec(e, VSUB(x, m));
    stv(e, pj, sT, sa, NULL);
    sums[i] = VADD(S.arg[i], pj);
  }
  loop_end(e, &S, sums);
  V tot = u == 4 ? VADD(VADD(S.res[0], S.res[1]), VADD(S.res[2], S.res[3])) : S.res[0];
  if (shift) {
    if (two) {
      *shift = exp2_neg16(e, nmx);
    } else {
      V negm = nv(e);
      out(e, "  %s = arith.negf %s : %s\n", negm.s, m.s, e->vt);
      *shift = exp_vec(e, negm);
    }
  }
  return tot;
}

/* Row j of a K or V ring kept in bf16 (view w; CG_A_RING16): its 16-bit
 * elements from the KV head's slice at off. */
static V ring16_row(em *e, const view *w, V j, V off) {
  return gep16(e, w->hist_p,
               ADDI(MULI(REMI(j, MAXI(w->keep, ci(e, 1))), ci(e, w->row_elems)), off));
}
static V seq_krow16(em *e, void *c, V j) {
  attn_ctx *a = c;
  return ring16_row(e, a->k, j, a->off);
}
static V seq_vrow16(em *e, void *c, V j) {
  attn_ctx *a = c;
  return ring16_row(e, a->v, j, a->off);
}

/* Where the keys of [lo, hi) that a ring kept in bf16 holds end (input
 * `in` of view w; bit `in` of CG_A_RING16): min(r0, hi), at least lo; lo
 * when the ring is f32 or there is none. */
static V ring16_end(em *e, const view *w, int in, V lo, V hi) {
  if (w->hist != CG_H_RING) return lo;
  V bit = bin(e, "arith.andi", argi(e, CG_A_RING16), ci(e, (int64_t)1 << in), "i64");
  V mid = MAXI(MINI(w->r0, hi), lo);
  return sel(e, cmpi(e, "ne", bit, ci(e, 0)), mid, lo, "i64");
}

bool cg_attention_packed(const ir_op *op, int vec_bits) {
  return op->code == IR_ATTENTION && op->in[0]->type.rank == 3 &&
         DIMN(op->in[0], 1) / DIMN(op->in[1], 1) >= 4 && LAST(op->in[0]) % (vec_bits / 32) == 0;
}

/* Windowed (or full) causal attention over a sequence, rank 3, with the
 * G = Hq / Hk >= 4 query heads of a KV head packed into the lanes of one
 * vector, as chunk_attention's packed kernel below does for HSA: per
 * token and KV head the queries are transposed once (qT[e][g], and q2
 * for score pairs); the scores of the keys [lo, t] (lo = t + 1 - window)
 * by score_block in blocks of JB keys (the last block's keys clamped to
 * t, its extra rows never read); the maximum in four chains, exp and sum;
 * then the weighted sum of V rows by pv_rows, stored straight to the
 * output.  Keys and values of a K or V ring the session keeps in bf16
 * (CG_A_RING16) are a first range of the same loops, widened as loaded.
 * The per-head kernel it replaces reduced every score horizontally
 * (about 15% of the FMA peak).  Scratch: qT, q2, 1 / sum,
 * and the scores (window + JB rows of grp). */
static void k_attention_packed(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t d = LAST(qv), Hq = DIMN(qv, 1), Hk = DIMN(kv, 1), G = Hq / Hk;
  int64_t W = ir_attr_i(op, "window", 0);
  /* R consecutive tokens share a vector when G heads fill less of it:
   * lanes l = r G + h (token t + r, head h), grp = R G of them */
  int nat = q->vec_bits / 32;
  int64_t R = G < nat && nat % G == 0 ? nat / G : 1, grp = R * G;
  int regs = q->vec_bits >= 512 ? 24 : 12;
  int per = (int)((grp * 32 + q->vec_bits - 1) / q->vec_bits);
  int JB = regs / per;
  if (JB > 16) JB = 16;
  if (JB < 2) JB = 2;
  int EVB, GB;
  pv_blocks(grp, d, nat, q->vec_bits >= 512 ? 16 : 8, &EVB, &GB);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  bool pairs = score_pairs(q->vec_bits, grp, d);
  if (pairs) JB = PAIR_JB;
  int64_t qT_at = 0, q2_at = d * grp, fT_at = q2_at + (pairs ? d * grp : 0),
          oT_at = fT_at + grp + 16, sT_at = oT_at + (R > 1 ? grp * d : 0) + 16;
  info->scratch_fixed = sT_at + ((W > 0 ? W : 0) + JB + 4 + R) * grp + 16;
  if (W <= 0) info->scratch_per_t1 = grp;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  V scr = argp(e, CG_A_SCRATCH);
  V qT = gepc(e, scr, qT_at), q2 = gepc(e, scr, q2_at), fT = gepc(e, scr, fT_at),
    sT = gepc(e, scr, sT_at), oT = gepc(e, scr, oT_at);
  set_lanes(e, (int)grp);
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  V t = for0(e, argi(e, CG_A_R0), r1, R);
  /* the tokens: t + r, a token past the rows repeating the last (its
   * lanes computed, never stored); keys [lo, hi): every lane's window */
  V tr[16];
  for (int64_t r = 0; r < R; r++) tr[r] = r ? MINI(ADDI(t, ci(e, r)), SUBI(r1, ci(e, 1))) : t;
  V last = tr[R - 1], hi = ADDI(last, ci(e, 1));
  V lo = W > 0 ? MAXI(SUBI(ADDI(t, ci(e, 1)), ci(e, W)), ci(e, 0)) : ci(e, 0);
  V cnt = SUBI(hi, lo);
  V kh = for0(e, n0, n1, 1);
  V hq0 = MULI(kh, ci(e, G));
  double scale = 1.0 / sqrt((double)d);
  if (R == 1) {
    queries_T(e, q->vec_bits, rowp(e, &Q, t), hq0, grp, d, scale, qT, NULL);
  } else {
    V qrow[16];
    for (int64_t l = 0; l < grp; l++)
      qrow[l] = gep(e, rowp(e, &Q, tr[l / G]), MULI(ADDI(hq0, ci(e, l % G)), ci(e, d)));
    queries_T_rows(e, q->vec_bits, qrow, grp, d, scale, qT);
  }
  if (pairs) query_pairs(e, qT, q2, d, grp);
  attn_ctx a = {.k = &K, .v = &Vv, .off = MULI(kh, ci(e, d))};
  /* scores, JB keys at a time: first the keys [lo, kmid) of a K ring kept
   * in bf16 (none when it is f32), then [kmid, hi) wherever they are (a
   * block of the first part past kmid writes scores the second part then
   * overwrites) */
  V kmid = ring16_end(e, &K, 1, lo, hi);
  for (int part = K.hist == CG_H_RING ? 0 : 1; part < 2; part++) {
    V a0 = part ? kmid : lo, a1 = part ? hi : kmid, end = part ? last : SUBI(kmid, ci(e, 1));
    V j0 = for0(e, a0, a1, JB);
    V krow[16];
    for (int i = 0; i < JB; i++)
      krow[i] = (part ? seq_krow : seq_krow16)(e, &a, MINI(ADDI(j0, ci(e, i)), end));
    score_block(e, pairs, pairs ? q2 : qT, krow, !part, JB, d, grp, sT,
                MULI(SUBI(j0, lo), ci(e, grp)));
    end0(e);
  }
  if (R > 1) {
    /* each lane's own window, at the ends of [lo, hi), relative to t:
     * lane l's keys from max(tr_l + 1 - W, 0) - t (none below without a
     * window) to tr_l - t */
    V dv = nv(e); /* tr_l - t */
    out(e, "  %s = arith.minimumf %s, %s : %s\n", dv.s, lane_tokens(e, G).s,
        splat(e, f32_of(e, SUBI(last, t))).s, e->vt);
    V hiv = VADD(dv, cvf(e, 1.0)), lov = cvf(e, -INFINITY);
    if (W > 0) {
      V nt = splat(e, f32_of(e, SUBI(ci(e, 0), t)));
      lov = max_sel(e, VSUB(hiv, cvf(e, (double)W)), nt);
      mask_edges(e, sT, grp, lo, MINI(ADDI(lo, ci(e, R - 1)), hi), lo, t, lov, hiv);
    }
    mask_edges(e, sT, grp, ADDI(t, ci(e, 1)), hi, lo, t, lov, hiv);
  }
  V m = max_rows(e, sT, grp, cnt);
  V tot = exp_rows(e, sT, grp, cnt, 0, m, NULL);
  stv(e, fbin(e, "arith.divf", cvf(e, 1.0), tot, e->vt), fT, ci(e, 0), NULL);
  /* likewise the values: rows [lo, vmid) of a V ring kept in bf16, then
   * [vmid, hi) continuing the same sums (so the results are those of one
   * range over an f32 ring of the same values, to the bit); into the
   * output rows, or with R tokens into oT [lanes][d] first */
  V dst = R > 1 ? oT : gep(e, rowp(e, &o, t), MULI(hq0, ci(e, d)));
  if (Vv.hist == CG_H_RING) {
    V vmid = ring16_end(e, &Vv, 2, lo, hi);
    pv_rows(e, nat, EVB, GB, grp, d, lo, vmid, seq_vrow16, true, &a, sT, fT, dst, PV_FIRST, NULL,
            NULL);
    V sT2 = gep(e, sT, MULI(SUBI(vmid, lo), ci(e, grp))); /* pv_rows counts from vmid */
    pv_rows(e, nat, EVB, GB, grp, d, vmid, hi, seq_vrow, false, &a, sT2, fT, dst, PV_REST, NULL,
            NULL);
  } else {
    pv_rows(e, nat, EVB, GB, grp, d, lo, hi, seq_vrow, false, &a, sT, fT, dst, PV_STORE, NULL,
            NULL);
  }
  if (R > 1) { /* oT's rows to the tokens' outputs, the tokens in the rows */
    set_lanes(e, nat);
    for (int64_t r = 0; r < R; r++) {
      if (r) if0(e, cmpi(e, "slt", ADDI(t, ci(e, r)), r1));
      V orow = gep(e, rowp(e, &o, tr[r]), MULI(hq0, ci(e, d)));
      copy_n(e, orow, gepc(e, oT, r * G * d), G * d, false);
      if (r) out(e, "  }\n");
    }
    set_lanes(e, (int)grp);
  }
  end0(e); /* KV heads */
  end0(e); /* rows */
}


/* Row j of a chunk's V (base, rows `stride` floats apart, the KV head's
 * slice from col) for pv_rows. */
typedef struct chunk_rows {
  V base;
  int64_t stride;
  V col;
} chunk_rows;
static V chunk_row(em *e, void *c, V j) {
  chunk_rows *r = c;
  return gep(e, r->base, ADDI(MULI(j, ci(e, r->stride)), r->col));
}

/* pv_rows' per head block hook: prefetch_share of the head block's share
 * of the rows of the slot after next. */
typedef struct slot2_pf {
  V k, v;
  int64_t rpb, P, stride;
  V col;
  int64_t d, GB, Hk;
  V first; /* i1: only then */
} slot2_pf;
static void slot2_prefetch(em *e, void *c, V g0) {
  slot2_pf *f = c;
  if0(e, f->first);
  prefetch_share(e, f->k, f->v, MULI(DIVI(g0, ci(e, f->GB)), ci(e, f->rpb)), f->rpb, f->P,
                 f->stride, f->col, f->d, f->Hk);
  out(e, "  }\n");
}


/* Chunk idx's P rows of one KV head's d columns (from kcol) into tile
 * [P][d] (f32) for a chunk memory whose history pages hold bf16 rows: a
 * chunk of the segment is copied from its f32 rows, a chunk of the
 * history widened from its page (exactly: bf16 is the top half of f32). */
static void chunk_tile16(em *e, const view *w, V idx, V kcol, int64_t P, int64_t d,
                         int64_t Hk, V tile) {
  int64_t full = d / e->vl * e->vl;
  if0(e, cmpi(e, "sge", idx, w->r0));
  for (int page = 0; page < 2; page++) {
    if (page) out(e, "  } else {\n");
    V row0;
    if (!page) {
      row0 = gep(e, gep(e, w->seg, MULI(SUBI(idx, w->r0), w->stride)), kcol);
    } else {
      row0 = page_row16(e, w, idx, kcol);
    }
    V j = for0(e, ci(e, 0), ci(e, P), 1);
    V src = page ? gep16(e, row0, MULI(j, ci(e, Hk * d))) : gep(e, row0, MULI(j, ci(e, Hk * d)));
    V dst = gep(e, tile, MULI(j, ci(e, d)));
    for (int64_t e0 = 0; e0 < d; e0 += e0 < full ? e->vl : 1) {
      bool one = e0 >= full;
      V x = page ? ld_bf16(e, src, ci(e, e0), one ? 1 : e->vl)
                 : one ? lds(e, src, ci(e, e0)) : ldv(e, src, ci(e, e0), NULL);
      if (one) sts(e, x, dst, ci(e, e0));
      else stv(e, x, dst, ci(e, e0), NULL);
    }
    end0(e);
  }
  out(e, "  }\n");
}

/* Chunk idx's K and V rows of one KV head (columns from kcol) as the
 * kernels read them: in place from the pages (rows Hk d floats apart, the
 * head's columns from kcol), or (h16: bf16 pages) widened into f32 tiles
 * [P][d] (columns from 0), K's at scratch float kt_at and V's right after
 * it.  Returns the row stride. */
static int64_t chunk_kv(em *e, const view *K, const view *Vv, V idx, V kcol, int64_t P,
                        int64_t d, int64_t Hk, bool h16, V scr, int64_t kt_at, V *kb, V *vb,
                        V *kc0) {
  if (!h16) {
    *kb = rowp(e, K, idx);
    *vb = rowp(e, Vv, idx);
    *kc0 = kcol;
    return Hk * d;
  }
  *kb = gepc(e, scr, kt_at);
  *vb = gepc(e, scr, kt_at + P * d);
  chunk_tile16(e, K, idx, kcol, P, d, Hk, *kb);
  chunk_tile16(e, Vv, idx, kcol, P, d, Hk, *vb);
  *kc0 = ci(e, 0);
  return d;
}

/* The next chunk's rows to prefetch: K and V rows at pk0 and pv0, rows
 * `stride` f32 units apart (half the offsets for bf16 pages), the KV
 * head's n units from col. */
typedef struct chunk_pf {
  V pk0, pv0, col;
  int64_t stride, n;
} chunk_pf;

/* The scores of a chunk's P keys (rows kst floats apart at kb, columns
 * from kc0) for `lanes` lanes, JB keys at a time by score_block (a loop
 * over the full blocks and one tail block: a block per key range,
 * unrolled, made the packed kernel half of the paper model's compile
 * time), into sT; when `first`, each block also prefetches the same rows
 * of the next chunk (pf) into L1 (a burst of them overflows the core's
 * miss queue).  Nothing else stays live across these loops (a running
 * maximum kept in registers made AVX2's 16 run out: LLVM spilled
 * accumulators inside the loop, halving its speed). */
static void chunk_scores(em *e, bool pairs, V q, V kb, int64_t kst, V kc0, int64_t P, int JB,
                         int64_t d, int64_t lanes, V sT, V first, chunk_pf pf) {
  int64_t pfull = P / JB * JB;
  for (int part = 0; part < 2; part++) {
    int nb = part ? (int)(P - pfull) : JB;
    if (!nb || (!part && !pfull)) continue;
    V j0 = part ? ci(e, pfull) : for0(e, ci(e, 0), ci(e, pfull), JB);
    V krow0 = gep(e, kb, ADDI(MULI(j0, ci(e, kst)), kc0));
    V krow[16];
    for (int i = 0; i < nb; i++) krow[i] = gepc(e, krow0, i * kst);
    score_block(e, pairs, q, krow, false, nb, d, lanes, sT, MULI(j0, ci(e, lanes)));
    if0(e, first);
    /* every other 64-byte line: the chunk is already on its way to L2
     * (it was the far chunk two chunks ago), so the lines not prefetched come
     * from there; half the prefetch instructions (Zen 4, session 22,
     * uniform 256K: 80.5 / 74.7 -> 82.7 / 81.4 GFLOP/s, within noise
     * elsewhere).  Every line with CG_PF_DENSE (Zen 5: the lines left out
     * were not in L2 yet at 256K) */
    for (int i = 0; i < nb; i++) {
      V poff = ADDI(MULI(ADDI(j0, ci(e, i)), ci(e, pf.stride)), pf.col);
      for (int64_t l = 0; l < pf.n; l += e->pf_dense ? 16 : 32)
        for (int kvp = 0; kvp < 2; kvp++)
          prefetch_line(e, gep(e, kvp ? pf.pv0 : pf.pk0, ADDI(poff, ci(e, l))), PFH);
    }
    out(e, "  }\n");
    if (!part) end0(e);
  }
}

/* The chunk-major loops of the sparse-attention kernels: per block of
 * CG_ATTN_TB tokens [tb, te) and KV head, the block's selections copied
 * to ix (i32, pair (t - tb) * Ks + k, or another numbering of up to NP
 * pairs; bp_copy_sel, inside a loop over the block's tokens, or the
 * kernel's own), then each distinct chunk idx once, in the order of its
 * first pair (bp_chunk_begin), and in it every pair that selected it in
 * ascending order (bp_list, or a loop with bp_pair_begin: token t, tt =
 * t - tb, slot).  bp_chunk_begin first builds the block's schedule in
 * scratch (bp_sched_size(NP) floats, at sch): a hash table from chunk to
 * its distinct number gives each pair's number and each chunk's count
 * (one pass over the pairs), and a counting sort lists the pairs grouped
 * by chunk (a second).  Finding each chunk's pairs and the next chunks
 * by scanning the block's pairs again per chunk, as the kernels did
 * before, cost O(pairs) per chunk: with uniform selections (a chunk per
 * pair) more than a third of the bf16 tile kernel's time at 4K tokens. */
typedef struct blk_pairs {
  int64_t Ks, NP, HT;
  V tb, te, npair, g, ix;
  V hk, hd, did, cnt, st, fill, plist, ndist; /* the schedule (bp_schedule) */
  V di, pos, idx;      /* bp_chunk_begin */
  V pos2, tt, t, slot; /* bp_pair_begin */
} blk_pairs;

/* The hash table's size for NP pairs: a power of two, at least 2 NP. */
static int64_t bp_table(int64_t NP) {
  int64_t ht = 16;
  while (ht < 2 * NP) ht *= 2;
  return ht;
}
/* Scratch floats of the schedule of up to NP pairs (i32 arrays, each on
 * a 64-byte line): the table's keys and numbers, then per pair its
 * chunk's number, per chunk its count, first slot and fill slot, and the
 * grouped pairs. */
static int64_t bp_sched_size(int64_t NP) {
  return 2 * bp_table(NP) + 5 * ((NP + 15) / 16 * 16);
}
/* Blocks of TB tokens [tb, te) over rows [r0, r1); the schedule's areas
 * for up to NP pairs (bp_schedule) in sch.  TB is also the kernel's
 * row_grain: the runtime's thread ranges do not cut a block short. */
static void bp_blocks_begin(em *e, cg_kernel_info *info, blk_pairs *b, V r1, int64_t Ks, V ix,
                            V sch, int64_t NP, int64_t TB) {
  info->row_grain = TB;
  b->Ks = Ks;
  b->ix = ix;
  b->NP = NP;
  b->HT = bp_table(NP);
  int64_t np16 = (NP + 15) / 16 * 16;
  b->hk = sch;
  b->hd = gepc(e, sch, b->HT);
  b->did = gepc(e, sch, 2 * b->HT);
  b->cnt = gepc(e, b->did, np16);
  b->st = gepc(e, b->cnt, np16);
  b->fill = gepc(e, b->st, np16);
  b->plist = gepc(e, b->fill, np16);
  b->tb = for0(e, argi(e, CG_A_R0), r1, TB);
  b->te = MINI(ADDI(b->tb, ci(e, TB)), r1);
  b->npair = MULI(SUBI(b->te, b->tb), ci(e, Ks));
}
static void bp_copy_sel(em *e, blk_pairs *b, const view *I, V ta) {
  V ir = rowp(e, I, ta);
  V k = for0(e, ci(e, 0), ci(e, b->Ks), 1);
  sti(e, ldi(e, ir, ADDI(MULI(b->g, ci(e, b->Ks)), k)), b->ix,
      ADDI(MULI(SUBI(ta, b->tb), ci(e, b->Ks)), k));
  end0(e);
}

/* The block's schedule from ix[0, npair) (entries < 0: no chunk): the
 * distinct chunks numbered in the order of their first pair (ndist of
 * them), chunk i's cnt[i] pairs at plist[st[i] ...] in ascending order. */
static void bp_schedule(em *e, blk_pairs *b) {
  int64_t HT = b->HT;
  int lg = 0;
  while ((1ll << lg) < HT) lg++;
  {
    V h = for0(e, ci(e, 0), ci(e, HT), 1);
    sti(e, ci(e, -1), b->hk, h);
    end0(e);
  }
  /* pass 1: each pair's chunk number, the chunks' counts */
  V z0 = ci(e, 0), r[1];
  loop L;
  loop_begin(e, &L, ci(e, 0), b->npair, ci(e, 1), 1, &z0, "i64");
  V p = L.iv, nd = L.arg[0], c = ldi(e, b->ix, p);
  if_begin(e, cmpi(e, "sge", c, ci(e, 0)), 1, "i64", r);
  {
    /* open addressing from a multiplicative hash, linear probing */
    V hm = MULI(c, ci(e, (int64_t)0x9E3779B97F4A7C15ull)), h0 = nv(e);
    out(e, "  %s = arith.shrui %s, %s : i64\n", h0.s, hm.s, ci(e, 64 - lg).s);
    V hw = nv(e), ha = nv(e), hb = nv(e);
    out(e, "  %s = scf.while (%s = %s) : (i64) -> i64 {\n", hw.s, ha.s, h0.s);
    V k = ldi(e, b->hk, ha);
    V busy = bin(e, "arith.andi", cmpi(e, "ne", k, ci(e, -1)), cmpi(e, "ne", k, c), "i1");
    out(e, "  scf.condition(%s) %s : i64\n  } do {\n  ^bb0(%s: i64):\n", busy.s, ha.s, hb.s);
    V hn = bin(e, "arith.andi", ADDI(hb, ci(e, 1)), ci(e, HT - 1), "i64");
    out(e, "  scf.yield %s : i64\n  }\n", hn.s);
    V r2[1];
    if_begin(e, cmpi(e, "eq", ldi(e, b->hk, hw), ci(e, -1)), 1, "i64", r2);
    sti(e, c, b->hk, hw);
    sti(e, nd, b->hd, hw);
    sti(e, nd, b->did, p);
    sti(e, ci(e, 1), b->cnt, nd);
    V nd1 = ADDI(nd, ci(e, 1));
    if_else(e, 1, &nd1, "i64");
    V id = ldi(e, b->hd, hw);
    sti(e, id, b->did, p);
    sti(e, ADDI(ldi(e, b->cnt, id), ci(e, 1)), b->cnt, id);
    if_end(e, 1, &nd, "i64");
    if_else(e, 1, r2, "i64");
  }
  sti(e, ci(e, -1), b->did, p);
  if_end(e, 1, &nd, "i64");
  loop_end(e, &L, r);
  b->ndist = L.res[0];
  /* each chunk's first slot */
  {
    loop S;
    loop_begin(e, &S, ci(e, 0), b->ndist, ci(e, 1), 1, &z0, "i64");
    sti(e, S.arg[0], b->st, S.iv);
    sti(e, S.arg[0], b->fill, S.iv);
    V y = ADDI(S.arg[0], ldi(e, b->cnt, S.iv));
    loop_end(e, &S, &y);
  }
  /* pass 2: the pairs in their chunks' slots */
  V p2 = for0(e, ci(e, 0), b->npair, 1);
  V id = ldi(e, b->did, p2);
  if0(e, cmpi(e, "sge", id, ci(e, 0)));
  V f = ldi(e, b->fill, id);
  sti(e, p2, b->plist, f);
  sti(e, ADDI(f, ci(e, 1)), b->fill, id);
  end0(e);
  end0(e);
}

/* The block's schedule, then a loop over its distinct chunks: number di,
 * first pair pos, chunk idx (closed by bp_chunk_close). */
static void bp_chunk_begin(em *e, blk_pairs *b) {
  bp_schedule(e, b);
  b->di = for0(e, ci(e, 0), b->ndist, 1);
  b->pos = ldi(e, b->plist, ldi(e, b->st, b->di));
  b->idx = ldi(e, b->ix, b->pos);
}
static void bp_chunk_close(em *e) { end0(e); }
/* A loop over the pairs of chunk di, pos2 their position in ix. */
static void bp_pair_begin(em *e, blk_pairs *b) {
  V j = for0(e, ci(e, 0), ldi(e, b->cnt, b->di), 1);
  b->pos2 = ldi(e, b->plist, ADDI(ldi(e, b->st, b->di), j));
  b->tt = DIVI(b->pos2, ci(e, b->Ks));
  b->t = ADDI(b->tb, b->tt);
  b->slot = ADDI(MULI(b->g, ci(e, b->Ks)), REMI(b->pos2, ci(e, b->Ks)));
}
/* closes bp_pair_begin's and bp_chunk_begin's loops */
static void bp_chunk_end(em *e) {
  end0(e); /* pairs */
  bp_chunk_close(e);
}

/* The block's next distinct chunk and the third after the current one,
 * or -1: the chunks the sparse-attention kernels prefetch, the next into
 * L1 (or L2) and the far one into L2.  The far one three ahead rather
 * than two (so the second next was prefetched a chunk earlier): on a
 * Sapphire Rapids-class VM with uniform selections, together with the
 * AMX kernel's prefetches spread over its softmax, 286-295 -> 345-347
 * GFLOP/s at 64K tokens, and the f32 kernel the same or a few % better. */
static void next_chunks(em *e, const blk_pairs *b, V nx[2]) {
  for (int k = 0; k < 2; k++) {
    V dk = ADDI(b->di, ci(e, k ? 3 : 1));
    V dc = MINI(dk, SUBI(b->ndist, ci(e, 1)));
    V c = ldi(e, b->ix, ldi(e, b->plist, ldi(e, b->st, dc)));
    nx[k] = sel(e, cmpi(e, "slt", dk, b->ndist), c, ci(e, -1), "i64");
  }
}

/* The pairs of the current chunk: their count, *pl where their
 * positions in ix lie (i32, ascending). */
static V bp_list(em *e, blk_pairs *b, V *pl) {
  *pl = gep(e, b->plist, ldi(e, b->st, b->di));
  return ldi(e, b->cnt, b->di);
}

/* Tokens per block of a chunk-major kernel whose block keeps per_token
 * bytes a token in cache: the largest power of two from CG_ATTN_TB up to
 * cap whose block fits budget. */
static int64_t block_tokens(int64_t budget, int64_t per_token, int64_t cap) {
  int64_t tb = CG_ATTN_TB;
  while (tb < cap && 2 * tb * per_token <= budget) tb *= 2;
  return tb;
}

/* The sparse kernels whose KV heads are the inner loop of each chunk
 * (k_chunk_attention_amx, k_chunk_attention_groups) number a block's
 * pairs (head list l, token t - tb, slot) as (l nT + t - tb) Ks + slot,
 * nT the block's tokens, l = kh - n0 with a selection per KV head (Gi =
 * Hk), else 0: one schedule for every head, in which a chunk's pairs
 * (ascending) come head by head.  copy_sel_heads copies token ta's
 * selections of head kh into ix (with a shared selection, once: at the
 * first head). */
static void copy_sel_heads(em *e, const view *I, V ix, int64_t Gi, int64_t Ks, V kh, V n0, V khl,
                           V nT, V tb, V ta) {
  if (Gi == 1) if0(e, cmpi(e, "eq", kh, n0));
  V ir = rowp(e, I, ta);
  V g = Gi == 1 ? ci(e, 0) : kh, l = Gi == 1 ? ci(e, 0) : khl;
  V k = for0(e, ci(e, 0), ci(e, Ks), 1);
  sti(e, ldi(e, ir, ADDI(MULI(g, ci(e, Ks)), k)), ix,
      ADDI(MULI(ADDI(MULI(l, nT), SUBI(ta, tb)), ci(e, Ks)), k));
  end0(e);
  if (Gi == 1) end0(e);
}
/* Head khl's pairs among a chunk's np0 pairs listed at pl0: positions
 * [lo, hi) of the list, and tsub to subtract from a pair's position / Ks
 * for its token (every pair, and 0, with a shared selection). */
static void head_pairs(em *e, int64_t Gi, V pl0, V np0, V khl, V nT, V nTK, V *lo, V *hi,
                       V *tsub) {
  if (Gi == 1) {
    *lo = ci(e, 0);
    *hi = np0;
    *tsub = ci(e, 0);
    return;
  }
  V b0 = MULI(khl, nTK), b1 = ADDI(b0, nTK), zz[2] = {ci(e, 0), ci(e, 0)};
  loop C;
  loop_begin(e, &C, ci(e, 0), np0, ci(e, 1), 2, zz, "i64");
  V pp = ldi(e, pl0, C.iv);
  V y[2] = {ADDI(C.arg[0], sel(e, cmpi(e, "slt", pp, b0), ci(e, 1), ci(e, 0), "i64")),
            ADDI(C.arg[1], sel(e, cmpi(e, "slt", pp, b1), ci(e, 1), ci(e, 0), "i64"))};
  loop_end(e, &C, y);
  *lo = C.res[0];
  *hi = C.res[1];
  *tsub = MULI(khl, nT);
}

/* Tokens per block of the f32 sparse attention with G heads in part of a
 * vector (k_chunk_attention_groups): every KV head's qT and oT of the
 * block's tokens (QS floats a token and head) within 512 KiB with
 * AVX-512 (an L2 of 1-2 MiB), 256 KiB with AVX2; a power of two from 16
 * to 128. */
static int64_t groups_block_tokens(const cg_kernel_req *q, int64_t QS, int64_t Hk) {
  return block_tokens((q->vec_bits >= 512 ? 512 : 256) * 1024, Hk * QS * 4, 128);
}

/* Group u of R pairs listed at pl (np in all; bp_list): pair r's token
 * tt[r] (from the block's first: its position / Ks - tsub) and whether
 * it exists ok[r] (a missing last pair repeats the last real one), its
 * weight in lanes r G .. r G + G - 1 of wv (0 where missing). */
static void group_pairs(em *e, const blk_pairs *b, V pl, V np, V u, int64_t R, int64_t G,
                        V tsub, const view *Wt, V wv, V *tt, V *ok) {
  for (int64_t r = 0; r < R; r++) {
    V pos = ldi(e, pl, MINI(ADDI(u, ci(e, r)), SUBI(np, ci(e, 1))));
    ok[r] = cmpi(e, "slt", ADDI(u, ci(e, r)), np);
    tt[r] = SUBI(DIVI(pos, ci(e, b->Ks)), tsub);
    V slot = ADDI(MULI(b->g, ci(e, b->Ks)), REMI(pos, ci(e, b->Ks)));
    V w = sel(e, ok[r], lds(e, rowp(e, Wt, ADDI(b->tb, tt[r])), slot), cf(e, 0), "f32");
    for (int64_t h = 0; h < G; h++) sts(e, w, wv, ci(e, r * G + h));
  }
}

/* dst[r][x] += src[r n + x] for x < n (vectors of e->vl) and each pair r
 * of a group that exists (ok[r]): a group's sums added to its pairs'. */
static void add_pair_rows(em *e, int64_t R, const V *ok, const V *dst, V src, int64_t n) {
  for (int64_t r = 0; r < R; r++) {
    if0(e, ok[r]);
    V sr = gepc(e, src, r * n);
    V x = for0(e, ci(e, 0), ci(e, n), e->vl);
    stv(e, VADD(ldv(e, dst[r], x, NULL), ldv(e, sr, x, NULL)), dst[r], x, NULL);
    end0(e);
    out(e, "  }\n");
  }
}

/* The weighted merge with G query heads per KV head where G heads fill
 * less than a vector (G = 4 or 8 with AVX-512, 4 with AVX2; head width a
 * multiple of the vector's lanes): chunk-major over blocks of CG_ATTN_TB
 * tokens like the packed kernel below, with R = lanes / G (token, slot)
 * pairs of one chunk sharing the lanes (lane r G + h: pair r, head h).
 * Per block and KV head: each token's queries transposed (qT [d][G],
 * scaled) and its output sums (oT [G][d]) zeroed; per distinct chunk (its
 * rows widened into tiles first when its pages are bf16) the pairs that
 * selected it are listed and run R at a time: their queries gathered into [d][16] (and the
 * score pairs), the scores by score_block, the softmax per lane, f =
 * w / sum per lane (w 0 for the lanes of a missing last pair, whose
 * queries repeat the last real one's), the weighted sum by pv_rows into
 * oG [16][d], added into each real pair's token sums.  At the block's
 * end the sums go to the output rows.  The block's next distinct chunk
 * and the far one (three ahead; next_chunks) are prefetched by the first
 * group, as the packed kernel's first pair does: the next into L1 during
 * the scores, the far one into L2 during the weighted sum. */
static void k_chunk_attention_groups(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1], *iv = op->in[3];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(kv, 1), Hk = DIMN(kv, 2);
  int64_t Gi = DIMN(iv, 1), Ks = DIMN(iv, 2), G = Hq / Hk;
  int nat = q->vec_bits / 32;
  int64_t R = nat / G, L = nat; /* lanes */
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  int64_t QS = 2 * d * G; /* one token's qT, oT (of one KV head) */
  int64_t TB = groups_block_tokens(q, QS, Hk);
  int64_t NS = Gi == 1 ? 1 : Hk; /* selection lists per token */
  double scale = 1.0 / sqrt((double)d);
  /* accumulators within the registers (32 with AVX-512, 16 with AVX2),
   * leaving room for the operands: the weighted sum's head blocks by
   * vectors of the width, the score blocks' keys */
  bool avx512 = q->vec_bits >= 512;
  int EVB, GB;
  pv_blocks(L, d, nat, avx512 ? 16 : 8, &EVB, &GB);
  bool pairs = score_pairs(q->vec_bits, L, d);
  int JB = pairs ? PAIR_JB : avx512 ? 16 : 12;
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  bool h16 = q->hist16[1] && q->hist16[2];
  int64_t sT_at = 0, fT_at = sT_at + (P + 3) * L, wv_at = fT_at + L + 16,
          qg_at = wv_at + L + 16, q2_at = qg_at + d * L, oG_at = q2_at + d * L,
          kt_at = oG_at + L * d + 16, vt_at = kt_at + (h16 ? P * d : 0),
          ix_at = vt_at + (h16 ? P * d : 0) + 16, sch_at = ix_at + NS * TB * Ks + 16,
          tok_at = sch_at + bp_sched_size(NS * TB * Ks) + 16;
  info->scratch_fixed = tok_at + Hk * TB * QS + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2), I = INV(e, q, 3),
       Wt = INV(e, q, 4);
  V scr = argp(e, CG_A_SCRATCH);
  V sT = gepc(e, scr, sT_at), fT = gepc(e, scr, fT_at), wv = gepc(e, scr, wv_at),
    qg = gepc(e, scr, qg_at), q2 = gepc(e, scr, q2_at), oG = gepc(e, scr, oG_at),
    ix = gepc(e, scr, ix_at), sch = gepc(e, scr, sch_at), tok0 = gepc(e, scr, tok_at);
  set_lanes(e, (int)L);
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  blk_pairs b;
  bp_blocks_begin(e, info, &b, r1, Ks, ix, sch, NS * TB * Ks, TB);
  V tb = b.tb, te = b.te;
  /* the block's pairs of every KV head in one schedule, as in
   * k_chunk_attention_amx: (head list l, token t - tb, slot) numbered
   * (l nT + t - tb) Ks + slot; a token's qT and oT of head kh at
   * tok0 + ((kh - n0) TB + t - tb) QS */
  V nT = SUBI(te, tb), nTK = MULI(nT, ci(e, Ks));
  b.npair = Gi == 1 ? nTK : MULI(nTK, SUBI(n1, n0));
  /* per KV head: the block's queries, its output sums zeroed, its
   * selections copied */
  {
    V kh = for0(e, n0, n1, 1);
    V hq0 = MULI(kh, ci(e, G)), khl = SUBI(kh, n0);
    V ta = for0(e, tb, te, 1);
    V tq = gep(e, tok0, MULI(ADDI(MULI(khl, ci(e, TB)), SUBI(ta, tb)), ci(e, QS)));
    V oTa = gepc(e, tq, d * G);
    queries_T(e, q->vec_bits, rowp(e, &Q, ta), hq0, G, d, scale, tq, &oTa);
    set_lanes(e, (int)L);
    copy_sel_heads(e, &I, ix, Gi, Ks, kh, n0, khl, nT, tb, ta);
    end0(e); /* tokens */
    end0(e); /* kv heads */
  }
  bp_chunk_begin(e, &b);
  V idx = b.idx;
  V pl0;
  V np0 = bp_list(e, &b, &pl0);
  /* the block's next distinct chunk and the far one (else this one),
   * prefetched by each head's first group: into L1 a block of keys at a
   * time inside its score loop, into L2 a share per head block of its
   * weighted sum */
  V nxs[2];
  next_chunks(e, &b, nxs);
  for (int k = 0; k < 2; k++) nxs[k] = sel(e, cmpi(e, "sge", nxs[k], ci(e, 0)), nxs[k], idx, "i64");
  V nidx = nxs[0], n2idx = nxs[1];
  int64_t pq = h16 ? 2 : 1; /* bf16 pages: f32 units of half the offsets */
  V pk0 = rowp_at(e, &K, nidx, K.row_elems / pq), pv0 = rowp_at(e, &Vv, nidx, Vv.row_elems / pq);
  V p2k = rowp_at(e, &K, n2idx, K.row_elems / pq), p2v = rowp_at(e, &Vv, n2idx, Vv.row_elems / pq);
  /* the chunk serves its pairs head by head (head_pairs) */
  V kh = for0(e, n0, n1, 1);
  b.g = Gi == 1 ? ci(e, 0) : kh;
  V kcol = MULI(kh, ci(e, d)), khl = SUBI(kh, n0);
  V tokh = gep(e, tok0, MULI(khl, ci(e, TB * QS)));
  V lo, hi, tsub;
  head_pairs(e, Gi, pl0, np0, khl, nT, nTK, &lo, &hi, &tsub);
  if0(e, cmpi(e, "sgt", hi, lo));
  V kb, vb, kc0;
  int64_t kst = chunk_kv(e, &K, &Vv, idx, kcol, P, d, Hk, h16, scr, kt_at, &kb, &vb, &kc0);
  V pl = gep(e, pl0, lo), np = SUBI(hi, lo);
  V pcol = h16 ? DIVI(kcol, ci(e, 2)) : kcol;
  V u = for0(e, ci(e, 0), np, R);
  V first = cmpi(e, "eq", u, ci(e, 0));
  V tt[16], ok[16];
  group_pairs(e, &b, pl, np, u, R, G, tsub, &Wt, wv, tt, ok);
  /* the group's queries qg[e][r G + h] = qT of pair r's token [e][h] */
  set_lanes(e, (int)G);
  {
    V ee = for0(e, ci(e, 0), ci(e, d), 1);
    for (int64_t r = 0; r < R; r++) {
      V qTr = gep(e, tokh, MULI(tt[r], ci(e, QS)));
      stv(e, ldv(e, qTr, MULI(ee, ci(e, G)), NULL), qg, ADDI(MULI(ee, ci(e, L)), ci(e, r * G)),
          NULL);
    }
    end0(e);
  }
  set_lanes(e, (int)L);
  if (pairs) query_pairs(e, qg, q2, d, L);
  /* scores, JB keys at a time (a loop over the full blocks, a tail block) */
  chunk_scores(e, pairs, pairs ? q2 : qg, kb, kst, kc0, P, JB, d, L, sT, first,
               (chunk_pf){pk0, pv0, pcol, Hk * d / pq, d / pq});
  V m = max_rows(e, sT, L, ci(e, P)), shift;
  V tot = exp_rows(e, sT, L, ci(e, P), P, m, n_plus ? &shift : NULL);
  if (n_plus) tot = VADD(tot, VMUL(cvf(e, n_plus), shift));
  stv(e, fbin(e, "arith.divf", ldv(e, wv, ci(e, 0), NULL), tot, e->vt), fT, ci(e, 0), NULL);
  /* the far chunk into L2, a share per head block of the sum */
  int64_t nblk = L / GB;
  slot2_pf pf = {p2k, p2v, (P + nblk - 1) / nblk, P, Hk * d / pq, pcol, d / pq, GB, Hk, first};
  chunk_rows cr = {vb, kst, kc0};
  pv_rows(e, nat, EVB, GB, L, d, ci(e, 0), ci(e, P), chunk_row, false, &cr, sT, fT, oG, PV_STORE,
          slot2_prefetch, &pf);
  /* each real pair's G rows added into its token's sums */
  V oT[16];
  for (int64_t r = 0; r < R; r++) oT[r] = gepc(e, gep(e, tokh, MULI(tt[r], ci(e, QS))), d * G);
  add_pair_rows(e, R, ok, oT, oG, G * d);
  end0(e);           /* groups */
  end0(e);           /* if the head has pairs */
  end0(e);           /* kv heads */
  bp_chunk_close(e); /* chunks */
  /* out[t][hq0 + h][e] = oT[h][e] */
  {
    V kh2 = for0(e, n0, n1, 1);
    V hq2 = MULI(kh2, ci(e, G)), khl2 = SUBI(kh2, n0);
    V tc = for0(e, tb, te, 1);
    V tq = gep(e, tok0, MULI(ADDI(MULI(khl2, ci(e, TB)), SUBI(tc, tb)), ci(e, QS)));
    V oTc = gepc(e, tq, d * G);
    copy_n(e, gep(e, rowp(e, &o, tc), MULI(hq2, ci(e, d))), oTc, G * d, false);
    end0(e);
    end0(e);
  }
  end0(e); /* blocks of tokens */
}

static void k_chunk_attention_packed(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1], *iv = op->in[3];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(kv, 1), Hk = DIMN(kv, 2);
  int64_t G = DIMN(iv, 1), Ks = DIMN(iv, 2), grp = Hq / Hk;
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  double scale = 1.0 / sqrt((double)d);
  /* register blocking: JB score (EB output) accumulators of grp lanes
   * each, within the target's vector registers (32 with AVX-512, 16 with
   * AVX2), leaving room for the operands */
  int regs = q->vec_bits >= 512 ? 24 : 12;
  int per = (int)((grp * 32 + q->vec_bits - 1) / q->vec_bits);
  int JB = regs / per;
  if (JB > 16) JB = 16;
  if (JB < 2) JB = 2;
  int EB = JB;
  /* The weighted sum of V rows: with AVX-512, V rows are loaded as
   * vectors (lanes over the head width) and the probabilities broadcast,
   * GB query heads by EVB vectors of the width in registers: (EVB + GB)
   * loads per EVB * GB FMAs, against 1 + 1/EB with the probabilities as
   * the vectors (the form AVX2 keeps: its 16 registers leave no room for
   * the 2-D block).  The output accumulates in oT as [g][e], no
   * transpose back. */
  int nat0 = q->vec_bits / 32, EVB = 0, GB = 1;
  bool rowpv = q->vec_bits >= 512 && d % nat0 == 0;
  /* G heads filling a quarter or half of a vector (G = 4 or 8 with
   * AVX-512, 4 with AVX2) and a head width of whole vectors: pairs
   * share it */
  if (d % nat0 == 0 && grp < nat0 && nat0 % grp == 0) {
    k_chunk_attention_groups(e, q, info);
    return;
  }
  if (rowpv) pv_blocks(grp, d, nat0, 16, &EVB, &GB);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  /* with AVX-512 and 16 heads, the scores take two elements of a key row
   * per broadcast (pairs below): the queries also as q2[e / 2][h][g][e % 2] */
  bool pairs = score_pairs(q->vec_bits, grp, d);
  /* Chunk-major over blocks of TB tokens: neighbouring tokens select
   * mostly the same chunks (the trained ruler model at 8K tokens: each
   * distinct chunk of a block of 16 tokens is selected by 9.7 of its
   * (token, slot) pairs on average, tools/torch/selection_reuse.py), so
   * per block and KV head each distinct chunk's K and V rows are read
   * (from DRAM at long contexts) once and used by every pair that
   * selected it while they are in L1.  The queries (qT, q2) and the
   * output sums (oT) of the block's tokens wait in scratch; each pair's
   * scores, softmax and weighted sum are the token-major kernel's.
   * Scratch, shared: the scores sT (room for max_rows' 3 rows past the P
   * scores), fT, the widened tiles (bf16 pages), the block's index copy
   * ix (i32) and its schedule (bp_chunk_begin); per token of the block:
   * qT, oT, q2. */
  int64_t sT_at = 0, fT_at = sT_at + (P + 3) * grp;
  /* a chunk memory whose history pages hold bf16 rows (the model's
   * `store = bf16`; the backend marks K and V together): each distinct
   * chunk's rows of this KV head widened into f32 tiles [P][d] first */
  bool h16 = q->hist16[1] && q->hist16[2];
  int64_t kt_at = fT_at + grp + 16, vt_at = kt_at + (h16 ? P * d : 0);
  int64_t ix_at = vt_at + (h16 ? P * d : 0) + 16, sch_at = ix_at + CG_ATTN_TB * Ks + 16;
  int64_t tok_at = sch_at + bp_sched_size(CG_ATTN_TB * Ks) + 16;
  int64_t QS = (pairs ? 3 : 2) * d * grp; /* one token's qT, oT, q2 */
  info->scratch_fixed = tok_at + CG_ATTN_TB * QS + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2), I = INV(e, q, 3),
       Wt = INV(e, q, 4);
  V scr = argp(e, CG_A_SCRATCH);
  V sT = gepc(e, scr, sT_at), fT = gepc(e, scr, fT_at), ix = gepc(e, scr, ix_at),
    sch = gepc(e, scr, sch_at), tok0 = gepc(e, scr, tok_at);
  /* from here on "vectors" are the grp lanes of one KV head's queries */
  set_lanes(e, (int)grp);
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  V z = cvf(e, 0);
  blk_pairs b;
  bp_blocks_begin(e, info, &b, r1, Ks, ix, sch, CG_ATTN_TB * Ks, CG_ATTN_TB);
  V tb = b.tb, te = b.te;
  V kh = for0(e, n0, n1, 1);
  b.g = G == 1 ? ci(e, 0) : kh;
  V hq0 = MULI(kh, ci(e, grp));
  V kcol = MULI(kh, ci(e, d)); /* the KV head's offset in a key row */
  /* the block's queries, its output sums zeroed, its selections copied */
  {
    V ta = for0(e, tb, te, 1);
    V tq = gep(e, tok0, MULI(SUBI(ta, tb), ci(e, QS)));
    V qT = tq, oT = gepc(e, tq, d * grp);
    queries_T(e, q->vec_bits, rowp(e, &Q, ta), hq0, grp, d, scale, qT, &oT);
    if (pairs) query_pairs(e, qT, gepc(e, tq, 2 * d * grp), d, grp);
    bp_copy_sel(e, &b, &I, ta);
    end0(e);
  }
  bp_chunk_begin(e, &b);
  V pos = b.pos, idx = b.idx;
  /* The next distinct chunk still to do in this block and the far one
   * (three ahead; next_chunks), prefetched while this one is computed:
   * the next into L1 a block of keys at a time inside the score loop (a
   * burst of prefetches overflows the core's miss queue), the far one
   * into L2 a share per head block of the weighted sum, one row in
   * pf_every(e, Hk) of it (every row until session 27).  Without a next in
   * the block, the next KV head's first chunk, else the next block's;
   * without a far one, this one again.  (Until session 26 the far chunk
   * was the one after next.)  Measured on a Zen 3 (token-major, one
   * thread): the next chunk prefetched took 50-56% -> 54-70% of the FMA
   * peak at 64K tokens of context, the one after 42-55% -> 58-62% at
   * 256K.  Chunk-major on a Sapphire Rapids-class core: 88-91 GFLOP/s
   * without both at 256K with uniform selections, 99-115 with them; no
   * difference where the block's tokens share their chunks.  Issued once
   * per chunk, by the first pair that selected it: each pair issuing
   * them (1,024 prefetches per pair) cost 4-6 points of the FMA peak
   * where a chunk serves 7-10 pairs. */
  V nx[2];
  next_chunks(e, &b, nx);
  V nidx, ncol;
  {
    V r[2], kh1 = ADDI(kh, ci(e, 1));
    if_begin(e, cmpi(e, "sge", nx[0], ci(e, 0)), 2, "i64", r);
    V y1[2] = {nx[0], kcol};
    if_else(e, 2, y1, "i64");
    V in2[2];
    if_begin(e, cmpi(e, "slt", kh1, n1), 2, "i64", in2);
    V y2[2] = {ldi(e, rowp(e, &I, tb), MULI(G == 1 ? ci(e, 0) : kh1, ci(e, Ks))),
               MULI(kh1, ci(e, d))};
    if_else(e, 2, y2, "i64");
    V in3[2];
    if_begin(e, cmpi(e, "slt", te, r1), 2, "i64", in3);
    V y3[2] = {ldi(e, rowp(e, &I, te), MULI(G == 1 ? ci(e, 0) : n0, ci(e, Ks))),
               MULI(n0, ci(e, d))};
    if_else(e, 2, y3, "i64");
    V y4[2] = {ci(e, -1), ci(e, 0)};
    if_end(e, 2, y4, "i64");
    if_end(e, 2, in3, "i64");
    if_end(e, 2, in2, "i64");
    nidx = r[0], ncol = r[1];
  }
  /* the chunk's rows: kst floats apart, this head's columns from kc0 */
  V kb, vb, kc0;
  int64_t kst = chunk_kv(e, &K, &Vv, idx, kcol, P, d, Hk, h16, scr, kt_at, &kb, &vb, &kc0);
  V has_next = cmpi(e, "sge", nidx, ci(e, 0));
  V pidx = sel(e, has_next, nidx, idx, "i64"), pcol = sel(e, has_next, ncol, kcol, "i64");
  /* prefetches address bf16 pages in f32 units of half the offsets (pq:
   * 2 with bf16 pages), so a 64-byte line per 16 offsets still holds */
  int64_t pq = h16 ? 2 : 1;
  V pk0 = rowp_at(e, &K, pidx, K.row_elems / pq), pv0 = rowp_at(e, &Vv, pidx, Vv.row_elems / pq);
  V pfcol = h16 ? DIVI(kcol, ci(e, 2)) : kcol; /* this head's columns, so */
  if (h16) pcol = DIVI(pcol, ci(e, 2));
  V i2s = sel(e, cmpi(e, "sge", nx[1], ci(e, 0)), nx[1], idx, "i64");
  V p2k = rowp_at(e, &K, i2s, K.row_elems / pq), p2v = rowp_at(e, &Vv, i2s, Vv.row_elems / pq);
  /* every pair of the block from this one on that selected this chunk */
  bp_pair_begin(e, &b);
  V t = b.t, slot = b.slot;
  V tq = gep(e, tok0, MULI(b.tt, ci(e, QS)));
  V qT = tq, oT = gepc(e, tq, d * grp), q2 = gepc(e, tq, 2 * d * grp);
  V wr = rowp(e, &Wt, t);
  V first = cmpi(e, "eq", b.pos2, pos);
  /* scores, JB keys at a time; the next chunk prefetched once per chunk,
   * by the first pair that selected it */
  if (pairs) JB = PAIR_JB;
  chunk_scores(e, pairs, pairs ? q2 : qT, kb, kst, kc0, P, JB, d, grp, sT, first,
               (chunk_pf){pk0, pv0, pcol, Hk * d / pq, d / pq});
  /* the maximum per lane, a pass over the scores in L1 */
  V m = max_rows(e, sT, grp, ci(e, P)), shift;
  V tot = exp_rows(e, sT, grp, ci(e, P), P, m, n_plus ? &shift : NULL);
  if (n_plus) tot = VADD(tot, VMUL(cvf(e, n_plus), shift));
  V f = fbin(e, "arith.divf", splat(e, lds(e, wr, slot)), tot, e->vt);
  if (rowpv) {
    /* oT[g][e] += f[g] * sum_j p[j][g] V[j][e], with the K and V rows of
     * the far chunk prefetched a share per head block */
    stv(e, f, fT, ci(e, 0), NULL);
    int64_t nblk = grp / GB;
    slot2_pf pf = {p2k, p2v, (P + nblk - 1) / nblk, P, Hk * d / pq, pfcol, d / pq, GB, Hk, first};
    chunk_rows cr = {vb, kst, kc0};
    pv_rows(e, nat0, EVB, GB, grp, d, ci(e, 0), ci(e, P), chunk_row, false, &cr, sT, fT, oT, PV_ADD,
            slot2_prefetch, &pf);
  }
  /* oT[e] += f * sum_j p_j V[j][e], EB elements at a time (a loop over
   * the full blocks and a tail block, as for the scores) */
  int64_t efull = rowpv ? 0 : d / EB * EB;
  for (int part = 0; part < (rowpv ? 0 : 2); part++) {
    int nb = part ? (int)(d - efull) : EB;
    if (!nb || (!part && !efull)) continue;
    V e0 = part ? ci(e, efull) : for0(e, ci(e, 0), ci(e, efull), EB);
    V vcol = ADDI(kc0, e0);
    if (!part) {
      /* the K and V rows of the far chunk, a share per element block */
      int64_t nblk = efull / EB, rpb = (P + nblk - 1) / nblk;
      if0(e, first);
      prefetch_share(e, p2k, p2v, MULI(DIVI(e0, ci(e, EB)), ci(e, rpb)), rpb, P, Hk * d / pq,
                     pfcol, d / pq, Hk);
      out(e, "  }\n");
    }
    V acc[16];
    for (int i = 0; i < nb; i++) acc[i] = z;
    loop L;
    loop_begin(e, &L, ci(e, 0), ci(e, P), ci(e, 1), nb, acc, e->vt);
    V p = ldv(e, sT, MULI(L.iv, ci(e, grp)), NULL);
    V vrow = gep(e, vb, ADDI(MULI(L.iv, ci(e, kst)), vcol));
    V y[16];
    for (int i = 0; i < nb; i++) y[i] = vfma(e, p, splat(e, lds(e, vrow, ci(e, i))), L.arg[i]);
    loop_end(e, &L, y);
    V orow0 = MULI(e0, ci(e, grp));
    for (int i = 0; i < nb; i++) {
      V at2 = ADDI(orow0, ci(e, i * grp));
      stv(e, vfma(e, f, L.res[i], ldv(e, oT, at2, NULL)), oT, at2, NULL);
    }
    if (!part) end0(e);
  }
  bp_chunk_end(e);
  /* out[t][kh * grp + g][e] = oT[e][g], transposed back the same way
   * (a copy where oT is already [g][e]) */
  V tc = for0(e, tb, te, 1);
  V oTc = gepc(e, gep(e, tok0, MULI(SUBI(tc, tb), ci(e, QS))), d * grp);
  V orow = rowp(e, &o, tc);
  if (rowpv) {
    set_lanes(e, nat0);
    V g2 = for0(e, ci(e, 0), ci(e, grp), 1);
    for (int64_t v = 0; v < d / nat0; v++) {
      V at = ci(e, v * nat0);
      stv(e, ldv(e, gep(e, oTc, MULI(g2, ci(e, d))), at, NULL),
          gep(e, orow, MULI(ADDI(hq0, g2), ci(e, d))), at, NULL);
    }
    end0(e);
    set_lanes(e, (int)grp);
  } else if (heads_transposable(nat0, grp, d)) {
    int nat = nat0;
    set_lanes(e, nat);
    V e0 = for0(e, ci(e, 0), ci(e, d), nat);
    for (int64_t gb = 0; gb < grp; gb += nat) {
      V rows[16];
      for (int k2 = 0; k2 < nat; k2++)
        rows[k2] = ldv(e, oTc, ADDI(MULI(ADDI(e0, ci(e, k2)), ci(e, grp)), ci(e, gb)), NULL);
      transpose_vecs(e, rows, nat);
      for (int r = 0; r < nat; r++)
        stv(e, rows[r], orow, ADDI(MULI(ADDI(hq0, ci(e, gb + r)), ci(e, d)), e0), NULL);
    }
    end0(e);
    set_lanes(e, (int)grp);
  } else {
    V g2 = for0(e, ci(e, 0), ci(e, grp), 1);
    V orw = gep(e, orow, MULI(ADDI(hq0, g2), ci(e, d)));
    V e2 = for0(e, ci(e, 0), ci(e, d), 1);
    sts(e, lds(e, oTc, ADDI(MULI(e2, ci(e, grp)), g2)), orw, e2);
    end0(e);
    end0(e);
  }
  end0(e); /* block's tokens */
  end0(e); /* kv heads */
  end0(e); /* blocks of tokens */
}

/* ---- HSA's sparse attention on AMX tiles (bf16 math) ---------------------- */

bool cg_chunk_attention_amx(const ir_op *op) {
  if (op->code != IR_CHUNK_ATTENTION) return false;
  const ir_attr *m = ir_get_attr(op, "merge");
  if (m && !strcmp(m->s, "joint")) return false;
  int64_t Hq = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2), P = DIMN(op->in[1], 1);
  int64_t Hk = DIMN(op->in[1], 2);
  /* G = Hq / Hk query heads per KV head, a divisor of 16: the tiles' 16
   * query columns are the G heads of 16 / G (token, slot) pairs; a
   * chunk's tile products are unrolled */
  return Hk > 0 && Hq % Hk == 0 && 16 % (Hq / Hk) == 0 && d % 32 == 0 && d <= 256 &&
         P % 32 == 0 && P / 16 * (d / 32) <= 128;
}

bool cg_chunk_attention_packed(const ir_op *op) {
  const ir_attr *m = ir_get_attr(op, "merge");
  return op->code == IR_CHUNK_ATTENTION && DIMN(op->in[0], 1) / DIMN(op->in[1], 2) >= 4 &&
         !(m && !strcmp(m->s, "joint"));
}

bool cg_chunk_attention_pages16(const ir_op *op, int bf16) {
  return (cg_bf16_tiles(bf16) && cg_chunk_attention_amx(op)) || cg_chunk_attention_packed(op);
}

/* [a0, b0, a1, b1, ...]: the k-pairs of two rows' 16 lanes (x = [a, b]). */
static V pairs16(em *e, V x) {
  V v = nv(e);
  out(e, "  %s = vector.shuffle %s, %s [", v.s, x.s, x.s);
  for (int i = 0; i < 32; i++) out(e, "%s%d", i ? ", " : "", (i & 1) ? 16 + i / 2 : i / 2);
  out(e, "] : vector<32xbf16>, vector<32xbf16>\n");
  return v;
}

/* Another chunk's K and V rows to prefetch into L2 while one chunk's
 * softmax runs: its first row of this head's columns in K and V, rows
 * `st` floats apart, n floats each (bf16 pages: f32 units of half the
 * offsets). */
typedef struct rows_pf {
  V k, v;
  int64_t kst, vst, kn, vn;
  int every; /* rows [r, r + 4) prefetched: every `every`-th */
} rows_pf;

/* prefetches into L2 of pf's K and V rows r, r + every, ... below r + 4 */
static void prefetch_rows_pf(em *e, const rows_pf *pf, V r) {
  for (int i = 0; i < 4; i += pf->every)
    for (int kv = 0; kv < 2; kv++) {
      int64_t st = kv ? pf->vst : pf->kst, n = kv ? pf->vn : pf->kn;
      V row = gep(e, kv ? pf->v : pf->k, MULI(ADDI(r, ci(e, i)), ci(e, st)));
      for (int64_t l = 0; l < n; l += 16) prefetch_line(e, gepc(e, row, l), 2);
    }
}

/* One chunk's K rows (kv 0: into bf16 rows kld elements apart) or V rows
 * (kv 1: into k-pairs) at buf (16-bit elements), from src: f32 rows, or
 * bf16 ones (bf16) of a history page; rows Hk * d elements apart. */
static void amx_chunk_rows(em *e, V src, bool bf16, int kv, int64_t P, int64_t d, int64_t Hk,
                           int64_t kld, V buf) {
  if (!kv) {
    V j = for0(e, ci(e, 0), ci(e, P), 1);
    V s0 = MULI(j, ci(e, Hk * d)), at = MULI(j, ci(e, kld));
    for (int64_t e0 = 0; e0 < d; e0 += 32) {
      V x;
      if (bf16) {
        x = ld_bf16x32(e, src, ADDI(s0, ci(e, e0)));
      } else {
        V r = gep(e, src, s0);
        x = cvt2bf16(e, ldv(e, r, ci(e, e0), NULL), ldv(e, r, ci(e, e0 + 16), NULL));
      }
      st_bf16x32(e, x, buf, ADDI(at, ci(e, e0)));
    }
    end0(e);
    return;
  }
  V jj = for0(e, ci(e, 0), ci(e, P / 2), 1);
  V a0 = MULI(jj, ci(e, 2 * Hk * d)), b0 = ADDI(a0, ci(e, Hk * d));
  V at = MULI(jj, ci(e, 2 * d));
  for (int64_t e0 = 0; e0 < d; e0 += 16) {
    V x;
    if (bf16) {
      V va = nv(e), vb = nv(e);
      out(e, "  %s = llvm.load %s {alignment = 2 : i64} : !llvm.ptr -> vector<16xbf16>\n", va.s,
          gep16(e, src, ADDI(a0, ci(e, e0))).s);
      out(e, "  %s = llvm.load %s {alignment = 2 : i64} : !llvm.ptr -> vector<16xbf16>\n", vb.s,
          gep16(e, src, ADDI(b0, ci(e, e0))).s);
      x = nv(e);
      out(e, "  %s = vector.shuffle %s, %s [", x.s, va.s, vb.s);
      for (int i = 0; i < 32; i++) out(e, "%s%d", i ? ", " : "", (i & 1) ? 16 + i / 2 : i / 2);
      out(e, "] : vector<16xbf16>, vector<16xbf16>\n");
    } else {
      x = pairs16(e, cvt2bf16(e, ldv(e, gep(e, src, a0), ci(e, e0), NULL),
                             ldv(e, gep(e, src, b0), ci(e, e0), NULL)));
    }
    st_bf16x32(e, x, buf, ADDI(at, ci(e, 2 * e0)));
  }
  end0(e);
}

/* 16 query rows of d floats (lane l's at rows[l]), times sc, as an AMX B
 * operand at qp (d / 2 rows of 32 bf16): row e/2 holds (q[l][e],
 * q[l][e+1]) for l = 0..15, from 16 x 16 transposes of the rows. */
static void query_pairs_rows(em *e, const V *qrow, int64_t d, V sc, V qp) {
  for (int64_t e0 = 0; e0 < d; e0 += 16) {
    V rows[16];
    for (int r = 0; r < 16; r++) rows[r] = VMUL(ldv(e, qrow[r], ci(e, e0), NULL), sc);
    transpose_vecs(e, rows, 16);
    for (int m = 0; m < 8; m++)
      st_bf16x32(e, pairs16(e, cvt2bf16(e, rows[2 * m], rows[2 * m + 1])), qp,
                 ci(e, (e0 / 2 + m) * 32));
  }
}

/* The queries of heads [hq0, hq0 + 16) of query row qr, times sc, as an
 * AMX B operand at qp (d / 2 rows of 32 bf16): row e/2 holds (q[h][e],
 * q[h][e+1]) for h = 0..15, from 16 x 16 transposes of the query rows. */
static void query_pairs16(em *e, V qr, V hq0, int64_t d, V sc, V qp) {
  V qrow[16];
  for (int r = 0; r < 16; r++) qrow[r] = gep(e, qr, MULI(ADDI(hq0, ci(e, r)), ci(e, d)));
  query_pairs_rows(e, qrow, d, sc, qp);
}

/* p = exp(s - mx) per column (lane) of the scores S^T [P][16] at sT, in
 * place (2^(s log2 e - mx log2 e) by the polynomial; clamp where scores
 * may be -inf, which then give a tiny normal); returns the sum of each
 * column's p, in 4 independent chains. */
typedef struct grp_pf {
  const rows_pf *far; /* the chunk whose rows to prefetch */
  V first;            /* only where this holds (the chunk's first group) */
} grp_pf;
static V group_exp(em *e, V sT, int64_t P, V mx, bool clamp, const grp_pf *pf) {
  V z = cvf(e, 0), log2e = cvf(e, 1.4426950408889634), nmx = nv(e);
  out(e, "  %s = arith.negf %s : %s\n", nmx.s, VMUL(mx, log2e).s, e->vt);
  V z4[4] = {z, z, z, z};
  loop Sx;
  loop_begin(e, &Sx, ci(e, 0), ci(e, P), ci(e, 4), 4, z4, e->vt);
  if (pf) { /* some of the far chunk's rows (grp_pf's users) */
    if0(e, pf->first);
    prefetch_rows_pf(e, pf->far, Sx.iv);
    out(e, "  }\n");
  }
  V sums[4];
  for (int u = 0; u < 4; u++) {
    V sa = MULI(ADDI(Sx.iv, ci(e, u)), ci(e, 16));
    V pj = exp2_neg16_poly(e, vfma(e, ldv(e, sT, sa, NULL), log2e, nmx), clamp);
    stv(e, pj, sT, sa, NULL);
    sums[u] = VADD(Sx.arg[u], pj);
  }
  loop_end(e, &Sx, sums);
  return VADD(VADD(Sx.res[0], Sx.res[1]), VADD(Sx.res[2], Sx.res[3]));
}

/* P[c][j] = bf16(p[j][c] * f[c]) (f NULL: 1) from p [P][16] at sT into
 * bf16 rows P [16][P] at pb, 32 keys at a time: rows j and j + 1 rounded
 * together and interleaved (vcvtne2ps2bf16, vpermw), so lane c of the
 * 32-bit lanes holds column c's pair (p[j][c], p[j + 1][c]); one 16 x 16
 * transpose of these 16 pair vectors gives each column's 32 keys.  Half
 * the shuffles of transposing the f32 rows first (two 16 x 16 transposes
 * per 32 keys) and the same bits. */
static void group_pt(em *e, V sT, V pb, int64_t P, const V *f) {
  V j0 = for0(e, ci(e, 0), ci(e, P), 32);
  V pr[16];
  for (int i = 0; i < 16; i++) {
    V r[2];
    for (int u = 0; u < 2; u++) {
      r[u] = ldv(e, sT, MULI(ADDI(j0, ci(e, 2 * i + u)), ci(e, 16)), NULL);
      if (f) r[u] = VMUL(r[u], *f);
    }
    V x = pairs16(e, cvt2bf16(e, r[0], r[1]));
    pr[i] = nv(e);
    out(e, "  %s = vector.bitcast %s : vector<32xbf16> to vector<16xf32>\n", pr[i].s, x.s);
  }
  transpose_vecs(e, pr, 16);
  /* row c's 32 keys from j0: 16 f32 lanes of bf16 pairs, at element
   * (c P + j0) / 2 in f32 units (P and j0 even) */
  for (int c = 0; c < 16; c++)
    stv(e, pr[c], pb, DIVI(ADDI(ci(e, c * P), j0), ci(e, 2)), NULL);
  end0(e);
}

/* The softmax(+n) of a group of 16 columns of the bf16 sparse kernels
 * (columns in lanes): from the scores S^T [P][16] at sT (finite: every
 * key of a selected chunk counts, so no clamp), the maximum (max_rows),
 * exp and sum (group_exp), then the probabilities times w / sum (w: the
 * columns' weights at wv) into bf16 rows P [16][P] at pb (group_pt). */
static void group_softmax(em *e, V sT, V pb, V wv, int64_t P, int n_plus, const grp_pf *pf) {
  V mx = max_rows(e, sT, 16, ci(e, P));
  V tot = group_exp(e, sT, P, mx, false, pf);
  if (n_plus) {
    V negm = nv(e);
    out(e, "  %s = arith.negf %s : %s\n", negm.s, mx.s, e->vt);
    tot = VADD(tot, VMUL(cvf(e, n_plus), exp_vec(e, negm)));
  }
  V f = fbin(e, "arith.divf", ldv(e, wv, ci(e, 0), NULL), tot, e->vt);
  group_pt(e, sT, pb, P, &f);
}

/* Tokens per block of the bf16 sparse attention (k_chunk_attention_amx).
 * A block's queries (d k-pairs per token and KV head, bf16: 32 d bytes
 * per R = 16 / G tokens) and output rows (G d floats per token and KV
 * head) stay in L2 while each of its distinct chunks serves every pair
 * that selected it, so a larger block reads a chunk once for more pairs
 * and fills more of the tiles' columns when G < 16 (R pairs of a chunk per
 * group).  The largest power of two up to 128 whose block fits half of
 * the L2 of the CPUs that run this form (2 MiB per core on every CPU with
 * AMX; 1 MiB on Zen 4, which runs it as dot products): 128 tokens for the
 * paper's layer (6 KiB a token) and for 4 KV heads of 4 query heads
 * (bench/RESULTS.md, twenty-eighth session). */
static int64_t amx_block_tokens(const cg_kernel_req *q, int64_t d, int64_t G, int64_t Hk) {
  return block_tokens((q->bf16 == CG_BF16_AMX ? 1024 : 512) * 1024,
                      Hk * (32 * d / (16 / G) + 4 * G * d), 128);
}

/* The weighted merge with G query heads per KV head (G a divisor of 16)
 * under bf16 math on AMX, chunk-major over blocks of tokens as the packed
 * f32 kernel is (amx_block_tokens of them: up to 128).  The tiles' 16
 * query columns are one (token, slot) pair's 16 heads, or with G < 16
 * the G heads of R = 16 / G pairs that selected the same chunk (column
 * r G + h: pair r, head h; the grouping of the f32
 * k_chunk_attention_groups).  Per block, for every KV head, the tokens'
 * queries (scaled) become B operands (k-pairs of their elements; with G <
 * 16, of R consecutive tokens per operand) and their output rows are
 * zeroed; the block's pairs (with a selection per KV head, numbered by
 * head first) get one schedule, and each distinct chunk serves them head
 * by head while its rows are in cache: per head that has pairs in it,
 * the head's columns of its K rows rounded to bf16 (vcvtne2ps2bf16; a
 * bf16 page's rows are read in place) and of its V rows put into k-pairs,
 * then every pair of that head (run R at a time; with G < 16 their
 * queries' columns gathered into one operand): the scores S^T = K Q^T
 * come out of tiles as [keys][columns]; the softmax(+n) is the f32 vector
 * code of the packed kernel (columns in lanes, the maximum and the sum in
 * 4 chains); its probabilities times w / sum (per column: 0 for the
 * columns of a missing last pair, whose queries repeat the last real
 * one's) are transposed into rows of bf16 P [columns][keys]; O += P V in
 * tiles loaded from and stored to the token's output rows (G = 16), or
 * stored to a group's scratch and added to each real pair's rows.
 * Converting each selected chunk for every token, as the token-major
 * version of this kernel did, cost more than its tile products.  Scratch:
 * one chunk's K and V in bf16, the scores, P, the block's selections (ix,
 * as in the packed kernel), every KV head's query pairs, a group's
 * weights, the block's schedule (bp_schedule); with G < 16 the group's
 * query pairs and output. */
static void k_chunk_attention_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1], *iv = op->in[3];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(kv, 1), Hk = DIMN(kv, 2);
  int64_t Gi = DIMN(iv, 1), Ks = DIMN(iv, 2), G = Hq / Hk, R = 16 / G;
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  int64_t TB = amx_block_tokens(q, d, G, Hk);
  /* selection lists per token in the block's schedule: one shared by the
   * KV heads, or one per head */
  int64_t NS = Gi == 1 ? 1 : Hk;
  int64_t QH = TB / R * d * 8; /* one KV head's query operands, floats */
  double scale = 1.0 / sqrt((double)d);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  /* scratch, in floats (bf16 areas take half as many; the scores have
   * room for max_rows' 3 rows past the P scores) */
  /* K's rows as the scores' tile operand: in a bf16 history page they
   * are read where they are (rows Hk d apart), so a segment's chunk is
   * rounded into scratch at the same stride; else d apart */
  int64_t kld = q->hist16[1] ? Hk * d : d;
  int64_t kb_at = 0, vp_at = kb_at + P * kld / 2, sT_at = vp_at + P * d / 2,
          pb_at = sT_at + (P + 3) * 16, ix_at = pb_at + P * 8 + 16,
          qp_at = ix_at + NS * TB * Ks + 16, wv_at = qp_at + Hk * QH + 16,
          sch_at = wv_at + 16, qg_at = sch_at + bp_sched_size(NS * TB * Ks) + 16,
          oG_at = qg_at + (R > 1 ? d * 8 + 16 : 0);
  info->scratch_fixed = oG_at + (R > 1 ? 16 * d : 0) + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2), I = INV(e, q, 3),
       Wt = INV(e, q, 4);
  V scr = scratch64(e);
  V qp0 = gepc(e, scr, qp_at), kb16 = gepc(e, scr, kb_at), vp = gepc(e, scr, vp_at);
  V sT = gepc(e, scr, sT_at), pb = gepc(e, scr, pb_at), ix = gepc(e, scr, ix_at);
  V wv = gepc(e, scr, wv_at), sch = gepc(e, scr, sch_at), qg = gepc(e, scr, qg_at),
    oG = gepc(e, scr, oG_at);
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  V sc = splat(e, cf(e, scale)), z = cvf(e, 0);
  blk_pairs b;
  bp_blocks_begin(e, info, &b, r1, Ks, ix, sch, NS * TB * Ks, TB);
  V tb = b.tb, te = b.te;
  /* the block's pairs: (head list l, token t - tb, slot), numbered
   * (l nT + t - tb) Ks + slot, l = kh - n0 with a list per head, else 0 */
  V nT = SUBI(te, tb), nTK = MULI(nT, ci(e, Ks));
  b.npair = Gi == 1 ? nTK : MULI(nTK, SUBI(n1, n0));
  /* per KV head: the queries' pairs, per R consecutive tokens of the
   * block (a token past its end repeats the last): operand (t - tb) / R
   * of the head's QH floats, columns ((t - tb) % R) G + h; the output
   * rows of its G heads zeroed; its selections copied */
  {
    V kh = for0(e, n0, n1, 1);
    V hq0 = MULI(kh, ci(e, G)), khl = SUBI(kh, n0);
    V qph = gep(e, qp0, MULI(khl, ci(e, QH)));
    {
      V ta = for0(e, tb, te, R);
      V qrow[16];
      for (int64_t l = 0; l < 16; l++) {
        V tl = l / G ? MINI(ADDI(ta, ci(e, l / G)), SUBI(te, ci(e, 1))) : ta;
        qrow[l] = gep(e, rowp(e, &Q, tl), MULI(ADDI(hq0, ci(e, l % G)), ci(e, d)));
      }
      V qdst = gep(e, qph, MULI(DIVI(SUBI(ta, tb), ci(e, R)), ci(e, d * 8)));
      query_pairs_rows(e, qrow, d, sc, qdst);
      end0(e);
    }
    V ta = for0(e, tb, te, 1);
    V orow = gep(e, rowp(e, &o, ta), MULI(hq0, ci(e, d)));
    for (int64_t at = 0; at < G * d; at += 16) stv(e, z, orow, ci(e, at), NULL);
    copy_sel_heads(e, &I, ix, Gi, Ks, kh, n0, khl, nT, tb, ta);
    end0(e); /* tokens */
    end0(e); /* kv heads */
  }
  bp_chunk_begin(e, &b);
  V idx = b.idx;
  V nxs[2];
  next_chunks(e, &b, nxs);
  V cfar = sel(e, cmpi(e, "sge", nxs[1], ci(e, 0)), nxs[1], idx, "i64");
  int64_t pk = q->hist16[1] ? 2 : 1, pv = q->hist16[2] ? 2 : 1; /* bf16 pages: f32 units */
  V fk = rowp_at(e, &K, cfar, K.row_elems / pk), fv = rowp_at(e, &Vv, cfar, Vv.row_elems / pv);
  V pl0;
  V np0 = bp_list(e, &b, &pl0);
  /* The chunk serves its pairs head by head, so that its rows (every KV
   * head's columns) are used while they are in L1 and L2: with a list
   * per head a head's pairs are the run [lo, hi) of the chunk's pairs
   * (they are ascending, so numbered by head first), else every pair. */
  V kh = for0(e, n0, n1, 1);
  b.g = Gi == 1 ? ci(e, 0) : kh;
  V hq0 = MULI(kh, ci(e, G)), kcol = MULI(kh, ci(e, d)), khl = SUBI(kh, n0);
  V lo, hi, tsub;
  head_pairs(e, Gi, pl0, np0, khl, nT, nTK, &lo, &hi, &tsub);
  if0(e, cmpi(e, "sgt", hi, lo));
  /* The third distinct chunk after this one in the block (else this
   * one; next_chunks), prefetched into L2 by the head's first group:
   * this head's columns of one row in four (with 2 KV heads one in two,
   * with 4 or more every row: a touch every 512 bytes or so), spread
   * over its exponentials' loop (grp_pf).  Where a chunk serves one pair
   * (uniform selections) the pair's products otherwise wait for every
   * chunk to come from L3 or DRAM.  The lines in between are left to the
   * L2 streamer, which the touches keep going on each 4 KB page.
   * Prefetching every line of the next and the far chunk (512
   * prefetches per chunk with G = 16, until session 27) kept more of the
   * core's miss slots busy with lines the streamer would have brought:
   * 305-332 / 267-277 GFLOP/s at 64K / 256K tokens with uniform
   * selections on a Sapphire Rapids-class VM, against 366-368 / 292-321
   * now (three alternating runs; 4K-16K and clustered selections within
   * noise; with 4 KV heads and G = 4, +8-10% uniform).  (Issued as a
   * burst while the chunk's rows were converted, those prefetches had
   * left the 64K case at 286-295.) */
  rows_pf far = {gep(e, fk, DIVI(kcol, ci(e, pk))), gep(e, fv, DIVI(kcol, ci(e, pv))),
                 Hk * d / pk, Hk * d / pv, d / pk, d / pv, pf_every(e, Hk)};
  /* the chunk's K in bf16 rows (kA, rows kld apart): rounded into
   * scratch, or with history pages in bf16, read in place from a page
   * (the segment's f32 rows still rounded into scratch) */
  V kA = kb16;
  if (!q->hist16[1]) {
    amx_chunk_rows(e, gep(e, rowp(e, &K, idx), kcol), false, 0, P, d, Hk, kld, kb16);
  } else {
    V r[1];
    if_begin(e, cmpi(e, "sge", idx, K.r0), 1, "!llvm.ptr", r);
    amx_chunk_rows(e, gep(e, gep(e, K.seg, MULI(SUBI(idx, K.r0), K.stride)), kcol), false, 0, P,
                   d, Hk, kld, kb16);
    if_else(e, 1, &kb16, "!llvm.ptr");
    V row = page_row16(e, &K, idx, kcol);
    if_end(e, 1, &row, "!llvm.ptr");
    kA = r[0];
  }
  /* its V rows in k-pairs */
  if (!q->hist16[2]) {
    amx_chunk_rows(e, gep(e, rowp(e, &Vv, idx), kcol), false, 1, P, d, Hk, kld, vp);
  } else {
    /* history pages in bf16, the segment's rows in f32 */
    if0(e, cmpi(e, "sge", idx, Vv.r0));
    amx_chunk_rows(e, gep(e, gep(e, Vv.seg, MULI(SUBI(idx, Vv.r0), Vv.stride)), kcol), false, 1,
                   P, d, Hk, kld, vp);
    out(e, "  } else {\n");
    amx_chunk_rows(e, page_row16(e, &Vv, idx, kcol), true, 1, P, d, Hk, kld, vp);
    out(e, "  }\n");
  }
  /* the head's pairs of this chunk taken R at a time, each column's
   * weight in wv; with G < 16 the group's query pairs gathered (qg row
   * e/2: the columns of each pair's token in its operand, G floats: G
   * bf16 pairs) */
  V ok[16], tt[16];
  V pl = gep(e, pl0, lo), np = SUBI(hi, lo);
  V qph = gep(e, qp0, MULI(khl, ci(e, QH)));
  V u = for0(e, ci(e, 0), np, R);
  group_pairs(e, &b, pl, np, u, R, G, tsub, &Wt, wv, tt, ok);
  V qpt = qg;
  if (R == 1) {
    qpt = gep(e, qph, MULI(tt[0], ci(e, d * 8)));
  } else {
    V e2 = for0(e, ci(e, 0), ci(e, d / 2), 1);
    if (G > 1) set_lanes(e, (int)G);
    for (int64_t r = 0; r < R; r++) {
      V src = gep(e, qph, ADDI(MULI(DIVI(tt[r], ci(e, R)), ci(e, d * 8)),
                               ADDI(MULI(e2, ci(e, 16)), MULI(REMI(tt[r], ci(e, R)), ci(e, G)))));
      V dst = ADDI(MULI(e2, ci(e, 16)), ci(e, r * G));
      if (G > 1) stv(e, ldv(e, src, ci(e, 0), NULL), qg, dst, NULL);
      else sts(e, lds(e, src, ci(e, 0)), qg, dst);
    }
    set_lanes(e, 16);
    end0(e);
  }
  /* scores: S^T[j][c] = sum_e K[j][e] q[c][e] * scale, 16 keys per tile
   * (the queries' tile shared) */
  tile_products(e, q, (tile_at){.p = kA, .ld = kld, .rt = 16, .ck = 32},
                (tile_at){.p = qpt, .ld = 32, .rk = 16}, (tile_at){.p = sT, .ld = 16, .rt = 16},
                P / 16, d / 32, false);
  grp_pf gpf = {&far, cmpi(e, "eq", u, ci(e, 0))};
  group_softmax(e, sT, pb, wv, P, n_plus, &gpf);
  /* O += P V, 16 output elements per tile (P's tile shared): in the
   * token's output rows of its 16 heads, or into the group's oG [16][d]
   * and from there added to each real pair's G rows */
  V orow[16];
  for (int64_t r = 0; r < R; r++)
    orow[r] = gep(e, rowp(e, &o, ADDI(tb, tt[r])), MULI(hq0, ci(e, d)));
  tile_products(e, q, (tile_at){.p = pb, .ld = P, .ck = 32},
                (tile_at){.p = vp, .ld = 2 * d, .rk = 16, .ct = 32},
                (tile_at){.p = R == 1 ? orow[0] : oG, .ld = d, .ct = 16}, d / 16, P / 32, R == 1);
  if (R > 1) add_pair_rows(e, R, ok, orow, oG, G * d);
  end0(e);           /* groups */
  end0(e);           /* if the head has pairs */
  end0(e);           /* kv heads */
  bp_chunk_close(e); /* chunks */
  end0(e);           /* blocks of tokens */
}

/* ---- windowed attention on AMX tiles (bf16 math) -------------------------- */

/* Tokens per block of the AMX windowed attention: each block converts the
 * keys and values its window covers once (window + 31 rows), and up to 32
 * tokens all start their keys at the block's first row, so every token
 * runs the same tiles: ceil((window + 31) / 32) k-steps of 32 keys, its
 * own window masked inside them. */
enum { AMX_WIN_TB = 32 };

/* The longest chunk row whose attention runs on tiles (its keys, values,
 * V^T and scores in scratch: about 3 KB per key at d = 256). */
enum { AMX_ROWS_MAXP = 1024 };

bool cg_attention_amx(const ir_op *op) {
  int rank = op->in[0]->type.rank;
  if (op->code != IR_ATTENTION || (rank != 3 && rank != 4)) return false;
  int64_t Hq = DIMN(op->in[0], rank - 2), d = DIMN(op->in[0], rank - 1);
  int64_t Hk = DIMN(op->in[1], rank - 2);
  /* G = Hq / Hk query heads per KV head, a divisor of 16: the tiles'
   * 16 columns are 16 / G consecutive tokens' G heads */
  bool heads = Hk > 0 && Hq % Hk == 0 && 16 % (Hq / Hk) == 0 && d % 32 == 0 && d <= 256;
  if (rank == 4) /* inside chunk rows: every key of a chunk in the tiles */
    return heads && DIMN(op->in[0], 1) <= AMX_ROWS_MAXP;
  return heads && ir_attr_i(op, "causal", 1) != 0 && ir_attr_i(op, "window", 0) > 0;
}

bool cg_attention_ring16(const ir_op *op, int vec_bits) {
  /* the AMX kernel's ops are among the packed kernel's */
  return ir_attr_i(op, "window", 0) > 0 && cg_attention_packed(op, vec_bits);
}

/* Rows [ra, rb) of view w, the d columns of one KV head from kcol, into
 * bf16 rows d apart at buf (row r at r - kb0): from the segment or the
 * history as rowp finds them (f32, rounded to bf16), or (ring16) from a
 * ring of bf16 rows as they are. */
static void win_rows16(em *e, const view *w, bool ring16, V ra, V rb, V kb0, V kcol, int64_t d,
                       V buf) {
  V r = for0(e, ra, rb, 1);
  V at = MULI(SUBI(r, kb0), ci(e, d));
  V src = ring16 ? ring16_row(e, w, r, kcol) : gep(e, rowp(e, w, r), kcol);
  for (int64_t e0 = 0; e0 < d; e0 += 32) {
    V x = ring16 ? ld_bf16x32(e, src, ci(e, e0))
                 : cvt2bf16(e, ldv(e, src, ci(e, e0), NULL), ldv(e, src, ci(e, e0 + 16), NULL));
    st_bf16x32(e, x, buf, ADDI(at, ci(e, e0)));
  }
  end0(e);
}

/* bf16 rows [j0, j1) (d apart) at buf set to zero. */
static void zero_rows16(em *e, V buf, V j0, V j1, int64_t d) {
  V z = cvf(e, 0), zb = cvt2bf16(e, z, z);
  V j = for0(e, j0, j1, 1);
  for (int64_t e0 = 0; e0 < d; e0 += 32) st_bf16x32(e, zb, buf, ADDI(MULI(j, ci(e, d)), ci(e, e0)));
  end0(e);
}

/* f32 score rows [j0, j1) of 16 lanes at sT set to x. */
static void fill_rows(em *e, V sT, V j0, V j1, V x) {
  V j = for0(e, j0, j1, 1);
  stv(e, x, sT, MULI(j, ci(e, 16)), NULL);
  end0(e);
}

/* ---- the tile kernels' steps shared by the windowed attention and the
 * attention inside chunk rows (bf16 math) ---- */

/* Their scratch (in floats; bf16 areas take half as many; the scores
 * have room for max_rows' 3 rows past NK): K rows and V rows in bf16
 * [NK][d], V^T [d][NK], the scores S^T [NK][16], P^T pairs, O^T [d][16],
 * one group's query pairs. */
typedef struct amx_bufs {
  V kb16, vr16, vT, sT, pT, oT, qp;
} amx_bufs;

static amx_bufs amx_scratch(em *e, cg_kernel_info *info, int64_t NK, int64_t d) {
  int64_t kb_at = 0, vr_at = kb_at + NK * d / 2 + 16, vt_at = vr_at + NK * d / 2 + 16,
          sT_at = vt_at + NK * d / 2 + 16, pt_at = sT_at + (NK + 3) * 16 + 16,
          ot_at = pt_at + NK * 8 + 16, qp_at = ot_at + d * 16 + 16;
  info->scratch_fixed = qp_at + d * 8 + 16 + 16;
  V scr = scratch64(e);
  return (amx_bufs){gepc(e, scr, kb_at), gepc(e, scr, vr_at), gepc(e, scr, vt_at),
                    gepc(e, scr, sT_at), gepc(e, scr, pt_at), gepc(e, scr, ot_at),
                    gepc(e, scr, qp_at)};
}

/* V^T [d][NK] (bf16, rows NK apart) from bf16 V rows [NK][d] at vr16: 32
 * keys by 16 columns at a time, two 16 x 16 transposes (widened to f32,
 * exactly). */
static void amx_vt(em *e, V vr16, V vT, int64_t NK, int64_t d) {
  V j0 = for0(e, ci(e, 0), ci(e, NK), 32);
  for (int64_t c0 = 0; c0 < d; c0 += 16) {
    V blk[2][16];
    for (int b = 0; b < 2; b++) {
      for (int r = 0; r < 16; r++)
        blk[b][r] =
            ld_bf16(e, vr16, ADDI(MULI(ADDI(j0, ci(e, b * 16 + r)), ci(e, d)), ci(e, c0)), e->vl);
      transpose_vecs(e, blk[b], 16);
    }
    for (int c = 0; c < 16; c++)
      st_bf16x32(e, cvt2bf16(e, blk[0][c], blk[1][c]), vT, ADDI(ci(e, (c0 + c) * NK), j0));
  }
  end0(e);
}

/* S^T[j][h] = sum_c K[j][c] q[h][c] * scale for the NK bf16 key rows at
 * kb16 (d apart) and the query pairs at qp, 16 keys per tile, in groups
 * of 6 tiles when there are many. */
static void amx_scores(em *e, const cg_kernel_req *q, V kb16, V qp, V sT, int64_t NK, int64_t d) {
  int64_t nt = NK / 16, GT = 6, nfull = nt <= 48 ? 0 : nt / GT;
  if (nfull) {
    V g = for0(e, ci(e, 0), ci(e, nfull), 1);
    V row = MULI(g, ci(e, GT * 16));
    tile_products(e, q, (tile_at){.p = gep16(e, kb16, MULI(row, ci(e, d))), .ld = d, .rt = 16,
                                  .ck = 32},
                  (tile_at){.p = qp, .ld = 32, .rk = 16},
                  (tile_at){.p = gep(e, sT, MULI(row, ci(e, 16))), .ld = 16, .rt = 16}, GT,
                  d / 32, false);
    end0(e);
  }
  int64_t row = nfull * GT * 16;
  tile_products(e, q, (tile_at){.p = gepc(e, kb16, row * d / 2), .ld = d, .rt = 16, .ck = 32},
                (tile_at){.p = qp, .ld = 32, .rk = 16},
                (tile_at){.p = gepc(e, sT, row * 16), .ld = 16, .rt = 16}, nt - nfull * GT,
                d / 32, false);
}

/* From the masked scores S^T [NK][16]: P = exp(s - max) per column (lane)
 * in bf16 k-pairs of keys at pT (the sum in 2 chains, 2^x by exp2_neg16,
 * so -inf gives a tiny normal), then O^T = V^T P^T [d][16] into oT, 16
 * output rows per tile, P^T's tile shared, the k-steps in runs of 16 when
 * there are many.  Returns 1 / sum per lane. */
static V amx_softmax_pv(em *e, const cg_kernel_req *q, V sT, V pT, V vT, V oT, int64_t NK,
                        int64_t d) {
  V z = cvf(e, 0), log2e = cvf(e, 1.4426950408889634);
  V mx = max_rows(e, sT, 16, ci(e, NK));
  V nm = VMUL(mx, log2e), nmx = nv(e);
  out(e, "  %s = arith.negf %s : %s\n", nmx.s, nm.s, e->vt);
  V f;
  {
    V z2[2] = {z, z};
    loop Sx;
    loop_begin(e, &Sx, ci(e, 0), ci(e, NK / 2), ci(e, 1), 2, z2, e->vt);
    V p[2], sums[2];
    for (int u = 0; u < 2; u++) {
      V sa = MULI(ADDI(MULI(Sx.iv, ci(e, 2)), ci(e, u)), ci(e, 16));
      p[u] = exp2_neg16(e, vfma(e, ldv(e, sT, sa, NULL), log2e, nmx));
      sums[u] = VADD(Sx.arg[u], p[u]);
    }
    st_bf16x32(e, pairs16(e, cvt2bf16(e, p[0], p[1])), pT, MULI(Sx.iv, ci(e, 32)));
    loop_end(e, &Sx, sums);
    f = fbin(e, "arith.divf", cvf(e, 1.0), VADD(Sx.res[0], Sx.res[1]), e->vt);
  }
  int64_t nks = NK / 32, KC = 16, nrun = nks <= 32 ? 1 : nks / KC;
  tile_at Pt = {.p = pT, .ld = 32, .rk = 16}, Ot = {.p = oT, .ld = 16, .rt = 16};
  tile_products(e, q, (tile_at){.p = vT, .ld = NK, .rt = 16, .ck = 32}, Pt, Ot, d / 16,
                nrun > 1 ? KC : nks, false);
  if (nrun > 1) {
    V c = for0(e, ci(e, 1), ci(e, nrun), 1);
    Pt.p = gep16(e, pT, MULI(c, ci(e, KC * 16 * 32)));
    tile_products(e, q,
                  (tile_at){.p = gep16(e, vT, MULI(c, ci(e, KC * 32))), .ld = NK, .rt = 16,
                            .ck = 32},
                  Pt, Ot, d / 16, KC, true);
    end0(e);
    int64_t rem = nks - nrun * KC;
    if (rem) {
      Pt.p = gepc(e, pT, nrun * KC * 16 * 32 / 2);
      tile_products(e, q,
                    (tile_at){.p = gepc(e, vT, nrun * KC * 32 / 2), .ld = NK, .rt = 16, .ck = 32},
                    Pt, Ot, d / 16, rem, true);
    }
  }
  return f;
}

/* O[h][c] = O^T[c][h] * f[h] by 16 x 16 transposes into the output rows
 * orow[r] of the 16 / G tokens t + r (lane l: token t + l / G, head l % G);
 * the tokens at or past te store nothing. */
static void amx_store_out(em *e, V oT, V f, const V *orow, V t, V te, int64_t G, int64_t d) {
  for (int64_t c0 = 0; c0 < d; c0 += 16) {
    V rows[16];
    for (int r = 0; r < 16; r++) rows[r] = VMUL(ldv(e, oT, ci(e, (c0 + r) * 16), NULL), f);
    transpose_vecs(e, rows, 16);
    for (int h = 0; h < 16; h++) {
      int r = h / (int)G;
      if (r) if0(e, cmpi(e, "slt", ADDI(t, ci(e, r)), te));
      stv(e, rows[h], orow[r], ci(e, (h % G) * d + c0), NULL);
      if (r) out(e, "  }\n");
    }
  }
}

/* Causal sliding-window attention (window W) with G query heads per KV
 * head (a divisor of 16; the tiles' 16 query columns are the G heads of
 * 16 / G consecutive tokens, "per token" below meaning per such group)
 * under bf16 math on AMX, by blocks of AMX_WIN_TB tokens [tb, te).
 * Per block and KV head, the NK key and value rows the block's windows
 * cover, from tb + 1 - W, go once into bf16: K as rows, V transposed
 * (V^T [d][NK], so that no token transposes its probabilities); rows
 * before the first token or past te are zero.  Per token: the scores
 * S^T = K Q^T come out of tiles as [keys][heads]; rows outside the
 * token's window become -inf; one pass takes exp(s - max) per head
 * (heads in lanes, 2^x by exp2_neg16, so -inf gives a tiny normal), sums
 * it and stores it as bf16 k-pairs of keys, which is the B operand of
 * O^T = V^T P^T as it is; O^T [d][heads] comes out of tiles, and 16 x 16
 * transposes times 1 / sum store it to the token's output rows.  So P is
 * exp(s - max) rounded to bf16 and the sum is of the unrounded values, as
 * flash attention does (rt_op_attention_bf16 the same).  The K and V
 * rings are read in place when the session keeps them in bf16
 * (CG_A_RING16), else rounded from f32 like the segment's rows.
 * Scratch: K rows, V rows, V^T (bf16), the scores, P^T pairs, O^T, one
 * token's query pairs. */
static void k_attention_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  int64_t d = DIMN(op->in[0], 2), Hk = DIMN(op->in[1], 1), W = ir_attr_i(op, "window", 0);
  int64_t G = DIMN(op->in[0], 1) / Hk, R = 16 / G; /* lane l: token t + l / G, head l % G */
  int64_t NK = (W + AMX_WIN_TB - 1 + 31) / 32 * 32; /* keys a token's tiles cover */
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  amx_bufs bf = amx_scratch(e, info, NK, d);
  V kb16 = bf.kb16, vr16 = bf.vr16, vT = bf.vT, sT = bf.sT, pT = bf.pT, oT = bf.oT, qp = bf.qp;
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  V ring16 = argi(e, CG_A_RING16);
  V sc = splat(e, cf(e, 1.0 / sqrt((double)d))), ninf = cvf(e, -INFINITY);
  V tb = for0(e, argi(e, CG_A_R0), r1, AMX_WIN_TB);
  V te = MINI(ADDI(tb, ci(e, AMX_WIN_TB)), r1);
  V kb0 = SUBI(ADDI(tb, ci(e, 1)), ci(e, W)); /* the absolute row of buffer row 0 */
  V lo = MAXI(kb0, ci(e, 0));
  V kh = for0(e, n0, n1, 1);
  V hq0 = MULI(kh, ci(e, G)), kcol = MULI(kh, ci(e, d));
  /* the block's K and V rows in bf16 */
  for (int kv = 0; kv < 2; kv++) {
    const view *w = kv ? &Vv : &K;
    V buf = kv ? vr16 : kb16;
    zero_rows16(e, buf, ci(e, 0), SUBI(lo, kb0), d);
    zero_rows16(e, buf, SUBI(te, kb0), ci(e, NK), d);
    if (w->hist != CG_H_RING) {
      win_rows16(e, w, false, lo, te, kb0, kcol, d, buf);
      continue;
    }
    /* a bf16 ring (bit 1 + kv of CG_A_RING16): the history's rows as they
     * are, the segment's rounded */
    V bit = bin(e, "arith.andi", ring16, ci(e, 2 << kv), "i64");
    if0(e, cmpi(e, "ne", bit, ci(e, 0)));
    V mid = MAXI(MINI(w->r0, te), lo);
    win_rows16(e, w, true, lo, mid, kb0, kcol, d, buf);
    win_rows16(e, w, false, mid, te, kb0, kcol, d, buf);
    out(e, "  } else {\n");
    win_rows16(e, w, false, lo, te, kb0, kcol, d, buf);
    out(e, "  }\n");
  }
  amx_vt(e, vr16, vT, NK, d);
  /* R tokens at a time (their G heads each); a token past te repeats the
   * last one and stores nothing */
  V t = for0(e, tb, te, R);
  V i = SUBI(t, tb), tr[16];
  for (int r = 0; r < R; r++) tr[r] = r ? MINI(ADDI(t, ci(e, r)), SUBI(te, ci(e, 1))) : t;
  if (R == 1) {
    query_pairs16(e, rowp(e, &Q, t), hq0, d, sc, qp);
  } else {
    V qrow[16];
    for (int l = 0; l < 16; l++)
      qrow[l] = gep(e, rowp(e, &Q, tr[l / G]), MULI(ADDI(hq0, ci(e, l % G)), ci(e, d)));
    query_pairs_rows(e, qrow, d, sc, qp);
  }
  amx_scores(e, q, kb16, qp, sT, NK, d);
  /* the token's window: buffer rows [max(i, -kb0), i + W - 1]; the rest
   * -inf (with R tokens, rows outside every window; rows inside some of
   * them, lane by lane: lane l's token is i + l / G) */
  V jl = MAXI(i, SUBI(ci(e, 0), kb0)), jh = ADDI(i, ci(e, W));
  V jhR = MINI(ADDI(jh, ci(e, R - 1)), ci(e, NK));
  fill_rows(e, sT, ci(e, 0), jl, ninf);
  fill_rows(e, sT, jhR, ci(e, NK), ninf);
  if (R > 1) {
    /* lane l's window in buffer rows: [max(i + l / G, -kb0), jh + l / G) */
    V tok = lane_tokens(e, G), z0 = ci(e, 0);
    V lov = max_sel(e, VADD(splat(e, f32_of(e, i)), tok), splat(e, f32_of(e, SUBI(z0, kb0))));
    V hiv = VADD(splat(e, f32_of(e, jh)), tok);
    mask_edges(e, sT, 16, jl, MINI(ADDI(jl, ci(e, R - 1)), ci(e, NK)), z0, z0, lov, hiv);
    mask_edges(e, sT, 16, jh, jhR, z0, z0, lov, hiv);
  }
  V f = amx_softmax_pv(e, q, sT, pT, vT, oT, NK, d);
  V orow[16];
  for (int r = 0; r < R; r++) orow[r] = gep(e, rowp(e, &o, tr[r]), MULI(hq0, ci(e, d)));
  amx_store_out(e, oT, f, orow, t, te, G, d);
  end0(e); /* tokens */
  end0(e); /* KV heads */
  end0(e); /* blocks */
}

/* Attention inside each chunk row [C, P, H, d] (the chunk encoder's;
 * bidirectional, or causal) with G query heads per KV head (a divisor of
 * 16) under bf16 math on AMX: per chunk row and KV head, its P key rows
 * go once into bf16 (rows P..NK - 1, NK = P rounded up to 32, zero) and
 * its value rows into V^T [d][NK]; then per 16 / G tokens, the steps of
 * the windowed kernel: S^T = K Q^T from tiles, the rows outside each
 * lane's keys -inf (bidirectional: rows P and on; causal: past the
 * lane's token), P = exp(s - max) in bf16 k-pairs, O^T = V^T P^T from
 * tiles, transposed into the output rows times 1 / sum.  The same
 * rounding as the windowed kernel (rt_op_attention_bf16 does it for both
 * ranks).  Scratch: K rows, V rows, V^T (bf16), the scores, P^T pairs,
 * O^T, one group's query pairs. */
static void k_attention_rows_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  int64_t P = DIMN(op->in[0], 1), Hq = DIMN(op->in[0], 2), d = DIMN(op->in[0], 3);
  int64_t Hk = DIMN(op->in[1], 2), G = Hq / Hk, R = 16 / G, NK = (P + 31) / 32 * 32;
  bool causal = ir_attr_i(op, "causal", 1) != 0;
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  amx_bufs bf = amx_scratch(e, info, NK, d);
  V kb16 = bf.kb16, vr16 = bf.vr16, vT = bf.vT, sT = bf.sT, pT = bf.pT, oT = bf.oT, qp = bf.qp;
  V sc = splat(e, cf(e, 1.0 / sqrt((double)d))), ninf = cvf(e, -INFINITY);
  V c = rows_begin(e);
  V kh = for0(e, argi(e, CG_A_N0), argi(e, CG_A_N1), 1);
  V hq0 = MULI(kh, ci(e, G)), kcol = MULI(kh, ci(e, d));
  V qr = rowp(e, &Q, c), orr = rowp(e, &o, c);
  /* the chunk's K and V rows of this head in bf16, d apart */
  for (int kv = 0; kv < 2; kv++) {
    V src = gep(e, rowp(e, kv ? &Vv : &K, c), kcol), buf = kv ? vr16 : kb16;
    V j = for0(e, ci(e, 0), ci(e, P), 1);
    V r = gep(e, src, MULI(j, ci(e, Hk * d)));
    for (int64_t e0 = 0; e0 < d; e0 += 32)
      st_bf16x32(e, cvt2bf16(e, ldv(e, r, ci(e, e0), NULL), ldv(e, r, ci(e, e0 + 16), NULL)), buf,
                 ADDI(MULI(j, ci(e, d)), ci(e, e0)));
    end0(e);
    if (NK > P) zero_rows16(e, buf, ci(e, P), ci(e, NK), d);
  }
  amx_vt(e, vr16, vT, NK, d);
  /* R tokens at a time (their G heads each); a token past P repeats the
   * last one and stores nothing */
  V i = for0(e, ci(e, 0), ci(e, P), R), tr[16];
  for (int r = 0; r < R; r++) tr[r] = r ? MINI(ADDI(i, ci(e, r)), ci(e, P - 1)) : i;
  V qrow[16];
  for (int l = 0; l < 16; l++)
    qrow[l] = gep(e, qr, MULI(ADDI(MULI(tr[l / G], ci(e, Hq)), ADDI(hq0, ci(e, l % G))), ci(e, d)));
  query_pairs_rows(e, qrow, d, sc, qp);
  amx_scores(e, q, kb16, qp, sT, NK, d);
  if (!causal) {
    if (NK > P) fill_rows(e, sT, ci(e, P), ci(e, NK), ninf);
  } else {
    /* lane l sees keys [0, i + l / G]: rows past every lane's token -inf,
     * and with R tokens the rows between them lane by lane */
    V jh = ADDI(i, ci(e, 1)), jhR = MINI(ADDI(jh, ci(e, R - 1)), ci(e, NK));
    fill_rows(e, sT, jhR, ci(e, NK), ninf);
    if (R > 1) {
      V z0 = ci(e, 0);
      V hiv = VADD(splat(e, f32_of(e, jh)), lane_tokens(e, G));
      mask_edges(e, sT, 16, jh, jhR, z0, z0, splat(e, cf(e, 0.0)), hiv);
    }
  }
  V f = amx_softmax_pv(e, q, sT, pT, vT, oT, NK, d);
  V orow[16];
  for (int r = 0; r < R; r++)
    orow[r] = gep(e, orr, MULI(ADDI(MULI(tr[r], ci(e, Hq)), hq0), ci(e, d)));
  amx_store_out(e, oT, f, orow, i, ci(e, P), G, d);
  end0(e); /* tokens */
  end0(e); /* KV heads */
  end0(e); /* chunk rows */
}

static void k_chunk_attention(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1], *iv = op->in[3];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(kv, 1), Hk = DIMN(kv, 2);
  int64_t G = DIMN(iv, 1), Ks = DIMN(iv, 2), grp = Hq / Hk;
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  double scale = 1.0 / sqrt((double)d);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hq;
  info->scratch_fixed = P + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2), I = INV(e, q, 3),
       Wt = INV(e, q, 4);
  V scr = argp(e, CG_A_SCRATCH);
  int n = nvecs(e, d);
  V z = cvf(e, 0), acc0[MAXCARRY], qx[MAXCARRY];
  for (int c = 0; c < n; c++) acc0[c] = z;
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1);
  V t = rows_begin(e);
  V qr = rowp(e, &Q, t), ir = rowp(e, &I, t), wr = rowp(e, &Wt, t), orow = rowp(e, &o, t);
  V h = for0(e, n0, n1, 1);
  V kh = DIVI(h, ci(e, grp));
  V g = G == 1 ? ci(e, 0) : kh;
  load_vecs(e, gep(e, qr, MULI(h, ci(e, d))), d, qx);
  attn_ctx a = {.k = &K, .v = &Vv, .rowlen = Hk * d, .off = MULI(kh, ci(e, d))};
  const ir_attr *merge = ir_get_attr(op, "merge");
  if (merge && !strcmp(merge->s, "joint")) {
    /* one softmax(+n) over the rows of every selected chunk: scores of
     * slot k at scr[k * P ..], -inf for an empty slot; the weights only
     * select */
    info->scratch_fixed = Ks * P + 16;
    V ninf = cf(e, -INFINITY);
    loop Lm;
    loop_begin(e, &Lm, ci(e, 0), ci(e, Ks), ci(e, 1), 1, &ninf, "f32");
    V sl = ADDI(MULI(g, ci(e, Ks)), Lm.iv);
    V ix = ldi(e, ir, sl);
    V sb = gep(e, scr, MULI(Lm.iv, ci(e, P)));
    V mres;
    if_begin(e, cmpi(e, "sge", ix, ci(e, 0)), 1, "f32", &mres);
    a.kbase = rowp(e, &K, ix);
    loop Lj;
    loop_begin(e, &Lj, ci(e, 0), ci(e, P), ci(e, 1), 1, &Lm.arg[0], "f32");
    V sc = FMUL(dot_vecs(e, qx, chunk_krow(e, &a, Lj.iv), d), cf(e, scale));
    sts(e, sc, sb, Lj.iv);
    V mx = fmaxs(e, Lj.arg[0], sc);
    loop_end(e, &Lj, &mx);
    if_else(e, 1, &Lj.res[0], "f32");
    V jj = for0(e, ci(e, 0), ci(e, P), 1);
    sts(e, ninf, sb, jj);
    end0(e);
    if_end(e, 1, &Lm.arg[0], "f32");
    loop_end(e, &Lm, &mres);
    V m = Lm.res[0];
    /* exp(s - m), an empty slot's -inf giving 0; all empty: zeros */
    V none = cmpf(e, "oeq", m, ninf, "f32");
    V msafe = sel(e, none, cf(e, 0), m, "f32");
    V tot = exp_inplace(e, scr, ci(e, Ks * P), msafe);
    if (n_plus) tot = FADD(tot, FMUL(cf(e, n_plus), exp_s(e, FSUB(cf(e, 0), msafe))));
    V inv = sel(e, none, cf(e, 0), FDIV(cf(e, 1.0), tot), "f32");
    loop La;
    loop_begin(e, &La, ci(e, 0), ci(e, Ks), ci(e, 1), n, acc0, e->vt);
    V ix2 = ldi(e, ir, ADDI(MULI(g, ci(e, Ks)), La.iv));
    V r2[MAXCARRY];
    if_begin(e, cmpi(e, "sge", ix2, ci(e, 0)), n, e->vt, r2);
    a.vbase = rowp(e, &Vv, ix2);
    loop Lj2;
    loop_begin(e, &Lj2, ci(e, 0), ci(e, P), ci(e, 1), n, La.arg, e->vt);
    V pj = splat(e, lds(e, scr, ADDI(MULI(La.iv, ci(e, P)), Lj2.iv)));
    V vv[MAXCARRY], y[MAXCARRY];
    load_vecs(e, chunk_vrow(e, &a, Lj2.iv), d, vv);
    for (int c = 0; c < n; c++) y[c] = vfma(e, pj, vv[c], Lj2.arg[c]);
    loop_end(e, &Lj2, y);
    if_else(e, n, Lj2.res, e->vt);
    if_end(e, n, La.arg, e->vt);
    loop_end(e, &La, r2);
    V iv2 = splat(e, inv), outv[MAXCARRY];
    for (int c = 0; c < n; c++) outv[c] = VMUL(La.res[c], iv2);
    store_vecs(e, outv, gep(e, orow, MULI(h, ci(e, d))), d);
    end0(e);
    end0(e);
    return;
  }
  loop L;
  loop_begin(e, &L, ci(e, 0), ci(e, Ks), ci(e, 1), n, acc0, e->vt);
  V slot = ADDI(MULI(g, ci(e, Ks)), L.iv);
  V idx = ldi(e, ir, slot);
  V valid = cmpi(e, "sge", idx, ci(e, 0));
  V res[MAXCARRY];
  if_begin(e, valid, n, e->vt, res);
  a.kbase = rowp(e, &K, idx);
  a.vbase = rowp(e, &Vv, idx);
  V wk = lds(e, wr, slot);
  V upd[MAXCARRY];
  attend(e, qx, d, scale, ci(e, 0), ci(e, P), chunk_krow, chunk_vrow, &a, scr, n_plus, wk,
         acc0, upd);
  for (int c = 0; c < n; c++) upd[c] = VADD(upd[c], L.arg[c]);
  if_else(e, n, upd, e->vt);
  if_end(e, n, L.arg, e->vt);
  loop_end(e, &L, res);
  store_vecs(e, L.res, gep(e, orow, MULI(h, ci(e, d))), d);
  end0(e);
  end0(e);
}

/* ---- retrieval ---------------------------------------------------------- */

/* The worst entry of a group's K-entry list at val/idx + gb: the lowest
 * score, the latest (highest index) among equal lowest.  Returns its slot. */
static V worst_slot(em *e, V val, V idx, V gb, int64_t K) {
  V init3[3] = {ci(e, 0), lds(e, val, gb), ldi(e, idx, gb)};
  loop M;
  M.n = 3;
  M.iv = nv(e);
  V mr = nv(e);
  for (int k = 0; k < 3; k++) {
    M.arg[k] = nv(e);
    snprintf(M.res[k].s, sizeof M.res[k].s, "%.24s#%d", mr.s, k & 0xff);
  }
  V one = ci(e, 1), kk = ci(e, K);
  out(e, "  %s:3 = scf.for %s = %s to %s step %s iter_args(%s = %s, %s = %s, %s = %s) -> "
      "(i64, f32, i64) : i64 {\n", mr.s, M.iv.s, one.s, kk.s, one.s, M.arg[0].s, init3[0].s,
      M.arg[1].s, init3[1].s, M.arg[2].s, init3[2].s);
  V sv = lds(e, val, ADDI(gb, M.iv)), si = ldi(e, idx, ADDI(gb, M.iv));
  V lt = cmpf(e, "olt", sv, M.arg[1], "f32");
  V eq = cmpf(e, "oeq", sv, M.arg[1], "f32");
  V later = cmpi(e, "sgt", si, M.arg[2]);
  V take = bin(e, "arith.ori", lt, bin(e, "arith.andi", eq, later, "i1"), "i1");
  V np = sel(e, take, M.iv, M.arg[0], "i64");
  V ns = sel(e, take, sv, M.arg[1], "f32");
  V ni = sel(e, take, si, M.arg[2], "i64");
  out(e, "  scf.yield %s, %s, %s : i64, f32, i64\n  }\n", np.s, ns.s, ni.s);
  return M.res[0];
}

/* Offers (s, i) to group list gb whose worst slot is `w`: it displaces the
 * worst entry when better (higher score; with `ties`, also an equal score
 * at a lower index).  Returns the new worst slot. */
static V offer(em *e, V val, V idx, V gb, int64_t K, V w, V s, V i, bool ties) {
  V wslot = ADDI(gb, w);
  V worst = lds(e, val, wslot);
  V better = cmpf(e, "ogt", s, worst, "f32");
  if (ties) {
    V eq = cmpf(e, "oeq", s, worst, "f32");
    V lower = cmpi(e, "slt", i, ldi(e, idx, wslot));
    better = bin(e, "arith.ori", better, bin(e, "arith.andi", eq, lower, "i1"), "i1");
  }
  V r;
  if_begin(e, better, 1, "i64", &r);
  sts(e, s, val, wslot);
  sti(e, i, idx, wslot);
  V nwst = worst_slot(e, val, idx, gb, K);
  if_else(e, 1, &nwst, "i64");
  if_end(e, 1, &w, "i64");
  return r;
}

/* Writes the lists of row t, most recent first (repeatedly the largest
 * remaining index), empty slots last with index -1 and score -inf. */
static void emit_lists(em *e, view *oi, view *ov, V t, V val, V idx, int64_t G, int64_t K) {
  V ninf = cf(e, -INFINITY);
  V orow_i = rowp(e, oi, t), orow_v = rowp(e, ov, t);
  V g = for0(e, ci(e, 0), ci(e, G), 1);
  V gb = MULI(g, ci(e, K));
  V k = for0(e, ci(e, 0), ci(e, K), 1);
  V init[2] = {ci(e, 0), ci(e, -2)};
  loop B;
  loop_begin(e, &B, ci(e, 0), ci(e, K), ci(e, 1), 2, init, "i64");
  V si = ldi(e, idx, ADDI(gb, B.iv));
  V gt = cmpi(e, "sgt", si, B.arg[1]);
  V y[2] = {sel(e, gt, B.iv, B.arg[0], "i64"), sel(e, gt, si, B.arg[1], "i64")};
  loop_end(e, &B, y);
  V bs = ADDI(gb, B.res[0]);
  V bi = B.res[1];
  V empty = cmpi(e, "slt", bi, ci(e, 0));
  V bv = sel(e, empty, ninf, lds(e, val, bs), "f32");
  V bo = sel(e, empty, ci(e, -1), bi, "i64");
  sti(e, bo, orow_i, ADDI(gb, k));
  sts(e, bv, orow_v, ADDI(gb, k));
  sti(e, ci(e, -2), idx, bs); /* taken */
  end0(e);
  end0(e);
}

static void clear_lists(em *e, V val, V idx, int64_t n) {
  V gi = for0(e, ci(e, 0), ci(e, n), 1);
  sts(e, cf(e, -INFINITY), val, gi);
  sti(e, ci(e, -1), idx, gi);
  end0(e);
}

const char *cg_prefetch_note(int prefetch) {
  return prefetch == CG_PF_DENSE        ? ", dense prefetches"
         : prefetch == CG_PF_DENSE_ATTN ? ", dense prefetches in sparse attention"
                                        : "";
}

/* With CG_PF_DENSE the scan prefetches every line of the landmark 32 rows
 * ahead into L1 (8 KB with d_r 64): the landmark pages (64 rows each) are
 * apart in memory, and on a Zen 5 VM (one query over 131,072 landmarks,
 * 32 MiB, partly in L3; one thread) the hardware prefetchers alone read
 * them at 26-27 GB/s, these prefetches at 50-57 (8 rows ahead 38-39, 16
 * ahead 44-45, 64 ahead as 32).  Not with CG_PF_DENSE_ATTN: on a Zen 4 VM
 * the same scan read 40-41 GB/s without them and 28-32 with them. */
#define SCAN_PFD 32

/* The fused retrieve kernel: each query streams over the eligible
 * landmarks keeping, per group, a K-entry list with its worst entry
 * tracked, so no [L, G, C] score matrix exists.  The kept set is the
 * reference's (runtime/ref_ops.c): the K best by score, the lower index
 * among equal scores; the slots are then ordered most recent first.
 *
 * Partial mode (slot CG_A_PART non-zero, one row): only landmarks
 * [n0, n1) are scanned and the unsorted lists are left at CG_A_PART, so
 * threads can share the scan of one decode token; NAME_merge then merges
 * the CG_A_NPARTS lists at CG_A_PARTS (with the same order, so the result
 * is the one-thread result) and writes the row. */
static void k_retrieve(em *e, const cg_kernel_req *q, cg_kernel_info *info, const char *name) {
  const ir_op *sc = q->scores, *tk = q->op;
  const ir_value *qv = sc->in[0];
  int64_t G = DIMN(qv, 1), dr = DIMN(qv, 2), K = ir_attr_i(tk, "k", 1);
  int64_t S = ir_attr_i(sc, "chunk", 1), X = ir_attr_i(sc, "exclude_window", 0);
  bool grouped = sc->in[1]->type.rank == 3; /* landmarks [C, G, dr] */
  const ir_attr *per = ir_get_attr(sc, "per");
  bool per_chunk = per && !strcmp(per->s, "chunk");
  const ir_attr *fixed = ir_get_attr(sc, "offset");
  double off = fixed ? fixed->f : 0;
  info->scratch_fixed = 2 * G * K + 16;
  info->split = CG_SPLIT_CHUNKS;
  info->part_floats = 2 * G * K;
  view oi = OUTV(e, 0), ov = OUTV(e, 1), Qr = INV(e, q, 0), L = INV(e, q, 1);
  V offv = cf(e, off);
  if (sc->nin == 3) {
    view ow = INV(e, q, 2);
    offv = FADD(offv, lds(e, ow.seg, ci(e, 0)));
  }
  V part = argi(e, CG_A_PART);
  V partial = cmpi(e, "ne", part, ci(e, 0));
  V base = toptr(e, sel(e, partial, part, argi(e, CG_A_SCRATCH), "i64"));
  V val = base, idx = gepc(e, base, G * K); /* indices stored as i32 */
  V C = argi(e, CG_A_C), n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1);
  V t = rows_begin(e);
  V own = DIVI(t, ci(e, S));
  V tq = per_chunk ? SUBI(MULI(own, ci(e, S)), ci(e, 1)) : t;
  clear_lists(e, val, idx, G * K);
  V hi0 = MINI(own, C);
  V lo = sel(e, partial, MAXI(n0, ci(e, 0)), ci(e, 0), "i64");
  V hi = sel(e, partial, MINI(hi0, n1), hi0, "i64");
  V has = cmpi(e, "sgt", hi, lo);
  if0(e, has);
  V qr = rowp(e, &Qr, tq);
  /* the queries of every group, held across the scan */
  V qx[MAXCARRY];
  int nq = nvecs(e, dr);
  for (int g = 0; g < G; g++) load_vecs(e, gepc(e, qr, g * dr), dr, qx + g * nq);
  V wz[MAXCARRY];
  for (int g = 0; g < G; g++) wz[g] = ci(e, 0);
  loop Li;
  loop_begin(e, &Li, lo, hi, ci(e, 1), (int)G, wz, "i64");
  V i = Li.iv;
  V excl = X > 0 ? cmpi(e, "sgt", MULI(i, ci(e, S)), SUBI(tq, ci(e, X)))
                 : cmpi(e, "slt", i, ci(e, 0));
  V wres[MAXCARRY];
  if_begin(e, excl, (int)G, "i64", wres);
  if_else(e, (int)G, Li.arg, "i64");
  V lr = rowp(e, &L, i);
  if (e->pf_scan) {
    /* the landmark SCAN_PFD rows ahead (the last one at the end) */
    V lp = rowp(e, &L, MINI(ADDI(i, ci(e, SCAN_PFD)), SUBI(hi, ci(e, 1))));
    for (int64_t l = 0; l < L.row_elems; l += 16) prefetch_line(e, gepc(e, lp, l), PFH);
  }
  V nw[MAXCARRY];
  for (int g = 0; g < G; g++) {
    V lg = grouped ? gepc(e, lr, g * dr) : lr;
    V s = FADD(FMUL(dot_vecs(e, qx + g * nq, lg, dr), cf(e, 1.0 / sqrt((double)dr))), offv);
    nw[g] = offer(e, val, idx, ci(e, g * K), K, Li.arg[g], s, i, false);
  }
  if_end(e, (int)G, nw, "i64");
  loop_end(e, &Li, wres);
  out(e, "  }\n"); /* if has */
  V full = cmpi(e, "eq", part, ci(e, 0));
  if0(e, full);
  emit_lists(e, &oi, &ov, t, val, idx, G, K);
  out(e, "  }\n");
  end0(e); /* rows */
  out(e, "  return\n}\n");

  /* NAME_merge: the lists of the parts -> row r0 */
  out(e, "func.func @%s_merge(%%args: !llvm.ptr) attributes {llvm.linkage = "
      "#llvm.linkage<external>} {\n", name);
  view mi = OUTV(e, 0), mv = OUTV(e, 1);
  V scr = argp(e, CG_A_SCRATCH);
  V mval = scr, midx = gepc(e, scr, G * K);
  V parts = argp(e, CG_A_PARTS), np = argi(e, CG_A_NPARTS);
  V r0 = argi(e, CG_A_R0);
  clear_lists(e, mval, midx, G * K);
  V pp = for0(e, ci(e, 0), np, 1);
  V pa = nv(e), pl = nv(e);
  out(e, "  %s = llvm.getelementptr %s[%s] : (!llvm.ptr, i64) -> !llvm.ptr, i64\n", pa.s,
      parts.s, pp.s);
  out(e, "  %s = llvm.load %s : !llvm.ptr -> i64\n", pl.s, pa.s);
  V pv = toptr(e, pl), pi = gepc(e, pv, G * K);
  for (int g = 0; g < G; g++) {
    V gb = ci(e, g * K);
    V w0 = worst_slot(e, mval, midx, gb, K);
    loop Lk;
    loop_begin(e, &Lk, ci(e, 0), ci(e, K), ci(e, 1), 1, &w0, "i64");
    V ii = ldi(e, pi, ADDI(gb, Lk.iv));
    V ok = cmpi(e, "sge", ii, ci(e, 0));
    V r;
    if_begin(e, ok, 1, "i64", &r);
    V w2 = offer(e, mval, midx, gb, K, Lk.arg[0], lds(e, pv, ADDI(gb, Lk.iv)), ii, true);
    if_else(e, 1, &w2, "i64");
    if_end(e, 1, &Lk.arg[0], "i64");
    loop_end(e, &Lk, &r);
  }
  end0(e);
  emit_lists(e, &mi, &mv, r0, mval, midx, G, K);
}

/* Unfused retrieval (-O0, or scores read by other ops): landmark_scores
 * writes the [G, C] scores of each row (C: the chunks complete at the
 * segment's end, the row's width / G), -inf where a chunk is not eligible;
 * topk keeps K-entry lists over a row's scores as the streamed kernel
 * does. */
static void k_landmark_scores(em *e, const cg_kernel_req *q) {
  const ir_op *sc = q->op;
  const ir_value *qv = sc->in[0];
  int64_t G = DIMN(qv, 1), dr = DIMN(qv, 2);
  int64_t S = ir_attr_i(sc, "chunk", 1), X = ir_attr_i(sc, "exclude_window", 0);
  bool grouped = sc->in[1]->type.rank == 3; /* landmarks [C, G, dr] */
  const ir_attr *per = ir_get_attr(sc, "per");
  bool per_chunk = per && !strcmp(per->s, "chunk");
  const ir_attr *fixed = ir_get_attr(sc, "offset");
  view o = OUTV(e, 0), Qr = INV(e, q, 0), L = INV(e, q, 1);
  V offv = cf(e, fixed ? fixed->f : 0);
  if (sc->nin == 3) offv = FADD(offv, lds(e, INV(e, q, 2).seg, ci(e, 0)));
  V C = DIVI(o.stride, ci(e, G));
  int nq = nvecs(e, dr);
  V t = rows_begin(e);
  V orow = rowp(e, &o, t);
  V all = for0(e, ci(e, 0), o.stride, 1);
  sts(e, cf(e, -INFINITY), orow, all);
  end0(e);
  V own = DIVI(t, ci(e, S));
  V tq = per_chunk ? SUBI(MULI(own, ci(e, S)), ci(e, 1)) : t;
  if0(e, cmpi(e, "sgt", own, ci(e, 0)));
  V qr = rowp(e, &Qr, tq);
  V i = for0(e, ci(e, 0), MINI(own, C), 1);
  V excl = X > 0 ? cmpi(e, "sgt", MULI(i, ci(e, S)), SUBI(tq, ci(e, X)))
                 : cmpi(e, "slt", i, ci(e, 0));
  V keep = bin(e, "arith.xori", excl, nv_true(e), "i1");
  if0(e, keep);
  V lr = rowp(e, &L, i);
  for (int g = 0; g < G; g++) {
    V qx[MAXCARRY];
    load_vecs(e, gepc(e, qr, g * dr), dr, qx);
    V lg = grouped ? gepc(e, lr, g * dr) : lr;
    V s2 = FADD(FMUL(dot_vecs(e, qx, lg, dr), cf(e, 1.0 / sqrt((double)dr))), offv);
    sts(e, s2, orow, ADDI(MULI(ci(e, g), C), i));
  }
  (void)nq;
  out(e, "  }\n");
  end0(e);
  out(e, "  }\n");
  end0(e);
}

static void k_topk(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  int64_t G = DIMN(op->in[0], 1), K = ir_attr_i(op, "k", 1);
  info->scratch_fixed = 2 * G * K + 16;
  view oi = OUTV(e, 0), ov = OUTV(e, 1), x = INV(e, q, 0);
  V scr = argp(e, CG_A_SCRATCH);
  V val = scr, idx = gepc(e, scr, G * K);
  V C = DIVI(x.stride, ci(e, G));
  V t = rows_begin(e);
  V row = rowp(e, &x, t);
  clear_lists(e, val, idx, G * K);
  for (int g = 0; g < G; g++) {
    V gb = ci(e, g * K), z = ci(e, 0);
    loop L;
    loop_begin(e, &L, ci(e, 0), C, ci(e, 1), 1, &z, "i64");
    V s2 = lds(e, row, ADDI(MULI(ci(e, g), C), L.iv));
    /* -inf and NaN never compare greater: never chosen */
    V w = offer(e, val, idx, gb, K, L.arg[0], s2, L.iv, false);
    loop_end(e, &L, &w);
  }
  emit_lists(e, &oi, &ov, t, val, idx, G, K);
  end0(e);
}

/* ---- the block-sparse baselines (Landmark Attention, MoBA) ---------------- */

/* block_landmark: the mean of the block's rows plus a learned embedding. */

/* acc += f * sum_j p_j v_j over rows j in [0, n) of vrow(j), p at scr:
 * two rows per iteration into two sets of sums (one set's FMAs wait on
 * the previous row's: two sets keep twice as many in flight) where both
 * sets fit the carried values, added at the end, then the odd last row. */
static void accum_rows(em *e, V *acc, V scr, V n, V f, row_fn vrow, void *ctx, int64_t d) {
  int nvc = nvecs(e, d), sets = 2 * nvc <= MAXCARRY ? 2 : 1;
  V zv = cvf(e, 0), init[MAXCARRY];
  for (int c = 0; c < nvc; c++) {
    init[c] = acc[c];
    if (sets == 2) init[nvc + c] = zv;
  }
  V n2 = MULI(DIVI(n, ci(e, sets)), ci(e, sets));
  loop L;
  loop_begin(e, &L, ci(e, 0), n2, ci(e, sets), sets * nvc, init, e->vt);
  V y[MAXCARRY];
  for (int u = 0; u < sets; u++) {
    V j = ADDI(L.iv, ci(e, u));
    V pj = splat(e, FMUL(lds(e, scr, j), f));
    V vv[MAXCARRY];
    load_vecs(e, vrow(e, ctx, j), d, vv);
    for (int c = 0; c < nvc; c++) y[u * nvc + c] = vfma(e, pj, vv[c], L.arg[u * nvc + c]);
  }
  loop_end(e, &L, y);
  V a1[MAXCARRY];
  for (int c = 0; c < nvc; c++) a1[c] = sets == 2 ? VADD(L.res[c], L.res[nvc + c]) : L.res[c];
  loop T;
  loop_begin(e, &T, n2, n, ci(e, 1), nvc, a1, e->vt);
  V pj = splat(e, FMUL(lds(e, scr, T.iv), f));
  V vv[MAXCARRY], y1[MAXCARRY];
  load_vecs(e, vrow(e, ctx, T.iv), d, vv);
  for (int c = 0; c < nvc; c++) y1[c] = vfma(e, pj, vv[c], T.arg[c]);
  loop_end(e, &T, y1);
  for (int c = 0; c < nvc; c++) acc[c] = T.res[c];
}

typedef struct blk_ctx {
  view *k, *v;
  V base;   /* first token row */
  V off;    /* the KV head's offset */
} blk_ctx;

static V blk_krow(em *e, void *c, V j) {
  blk_ctx *b = c;
  return gep(e, rowp(e, b->k, ADDI(b->base, j)), b->off);
}
static V blk_vrow(em *e, void *c, V j) {
  blk_ctx *b = c;
  return gep(e, rowp(e, b->v, ADDI(b->base, j)), b->off);
}

/* dst[i] = the mean over rows j < n of row(j)[i] (plus add[i] where add
 * is given), for i < D: vl columns at a time, the rows summed in order,
 * then a masked tail. */
static void mean_rows_to(em *e, row_fn row, void *ctx, int64_t n, int64_t D, V dst,
                         const V *add) {
  V inv = cvf(e, 1.0 / (double)n), z = cvf(e, 0);
  int64_t full = D / e->vl, tail = D % e->vl;
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0 && !full) || (pass == 1 && !tail)) continue;
    V m, i;
    if (pass == 0) i = for0(e, ci(e, 0), ci(e, full * e->vl), e->vl);
    else i = ci(e, full * e->vl), m = cmask(e, (int)tail);
    loop L;
    loop_begin(e, &L, ci(e, 0), ci(e, n), ci(e, 1), 1, &z, e->vt);
    V y = VADD(L.arg[0], ldv(e, row(e, ctx, L.iv), i, pass ? &m : NULL));
    loop_end(e, &L, &y);
    V mean = add ? vfma(e, L.res[0], inv, ldv(e, *add, i, pass ? &m : NULL))
                 : VMUL(L.res[0], inv);
    stv(e, mean, dst, i, pass ? &m : NULL);
    if (pass == 0) end0(e);
  }
}

static void k_mean_rows(em *e, const cg_kernel_req *q) {
  const ir_op *op = q->op;
  int64_t D = LAST(op->in[0]), P = DIMN(op->in[0], 1);
  view o = OUTV(e, 0), x = INV(e, q, 0);
  V c = rows_begin(e);
  chunk_rows cr = {rowp(e, &x, c), D, ci(e, 0)};
  mean_rows_to(e, chunk_row, &cr, P, D, rowp(e, &o, c), NULL);
  end0(e);
}

static void k_block_landmark(em *e, const cg_kernel_req *q) {
  const ir_op *op = q->op;
  int64_t B = ir_attr_i(op, "block", 1), D = LAST(op->in[0]);
  view o = OUTV(e, 0), x = INV(e, q, 0), emb = INV(e, q, 1);
  V b = rows_begin(e);
  blk_ctx bc = {.k = &x, .base = MULI(b, ci(e, B)), .off = ci(e, 0)};
  mean_rows_to(e, blk_krow, &bc, B, D, rowp(e, &o, b), &emb.seg);
  end0(e);
}

/* One vector whose lane j is the sum of x[j]'s lanes, for e->vl vectors
 * x (overwritten): log2(vl) levels, each adding the two halves of every
 * key's partial sums of two vectors (two shuffles and an add per pair),
 * against a horizontal reduction per vector. */
static V hsum_vecs(em *e, V *x) {
  int vl = e->vl;
  for (int nvec = vl, p = vl, m = 1; nvec > 1; nvec /= 2, p /= 2, m *= 2)
    for (int i = 0; i < nvec / 2; i++) {
      V h[2];
      for (int half = 0; half < 2; half++) {
        h[half] = nv(e);
        out(e, "  %s = vector.shuffle %s, %s [", h[half].s, x[2 * i].s, x[2 * i + 1].s);
        int lane = 0;
        for (int src = 0; src < 2; src++)
          for (int k = 0; k < m; k++)
            for (int l = 0; l < p / 2; l++)
              out(e, "%s%d", lane++ ? ", " : "", src * vl + k * p + half * (p / 2) + l);
        out(e, "] : %s, %s\n", e->vt, e->vt);
      }
      x[i] = VADD(h[0], h[1]);
    }
  return x[0];
}

/* Scores q . k_j * scale of rows [base, base + n) into scr, max folded
 * into m (returned): vl keys at a time, each key's products summed in a
 * vector and the vl sums made one vector (hsum_vecs), then the last keys
 * one at a time. */
static V score_rows(em *e, const V *qx, int64_t d, double scale, blk_ctx *b, V n, V scr, V m) {
  int vl = e->vl, nvc = nvecs(e, d);
  V nfull = MULI(DIVI(n, ci(e, vl)), ci(e, vl));
  V ninf = splat(e, cf(e, -INFINITY));
  loop Lb;
  loop_begin(e, &Lb, ci(e, 0), nfull, ci(e, vl), 1, &ninf, e->vt);
  V x[16];
  for (int j = 0; j < vl; j++) {
    V kx[MAXCARRY];
    load_vecs(e, blk_krow(e, b, ADDI(Lb.iv, ci(e, j))), d, kx);
    x[j] = VMUL(qx[0], kx[0]);
    for (int c = 1; c < nvc; c++) x[j] = vfma(e, qx[c], kx[c], x[j]);
  }
  V sv = VMUL(hsum_vecs(e, x), splat(e, cf(e, scale)));
  stv(e, sv, scr, Lb.iv, NULL);
  V mv = fbin(e, "arith.maximumf", Lb.arg[0], sv, e->vt);
  loop_end(e, &Lb, &mv);
  V mr = nv(e);
  out(e, "  %s = vector.reduction <maximumf>, %s : %s into f32\n", mr.s, Lb.res[0].s, e->vt);
  V m1 = fmaxs(e, m, mr);
  loop L;
  loop_begin(e, &L, nfull, n, ci(e, 1), 1, &m1, "f32");
  V sc = FMUL(dot_vecs(e, qx, blk_krow(e, b, L.iv), d), cf(e, scale));
  sts(e, sc, scr, L.iv);
  V mx = fmaxs(e, L.arg[0], sc);
  loop_end(e, &L, &mx);
  return L.res[0];
}

/* The loops every per-head kernel opens: rows t, then query heads h in
 * [n0, n1), with h's query loaded into qx (closed by two end0). */
typedef struct head_iter {
  V t, qr, orow, h, kh;
} head_iter;

static head_iter heads_begin(em *e, view *Q, view *o, int64_t d, int64_t grp, V *qx) {
  head_iter it;
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1);
  it.t = rows_begin(e);
  it.qr = rowp(e, Q, it.t);
  it.orow = rowp(e, o, it.t);
  it.h = for0(e, n0, n1, 1);
  it.kh = DIVI(it.h, ci(e, grp));
  load_vecs(e, gep(e, it.qr, MULI(it.h, ci(e, d))), d, qx);
  return it;
}

/* MoBA: a past block's gate is the mean of q . k over its keys, q . the
 * mean of its keys; the top-k past blocks (ties: lower block) and the own
 * block up to t go under one softmax.  The mean keys of the complete
 * blocks the call's rows see are computed once per call, for the KV heads
 * of its query heads (O(context x d) per KV head, against O(context x d)
 * per row and head for the gates from the keys themselves).  Scratch: the
 * K-entry list, (K + 1) x B scores, then the mean keys [block][Hk][d]. */
static void k_moba(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), grp = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
  double scale = 1.0 / sqrt((double)d);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hq;
  int64_t mk_at = 2 * Ks + (Ks + 1) * B + 16;
  info->scratch_fixed = mk_at + 16;
  info->scratch_per_t1 = (Hk * d + B - 1) / B;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  V scr = argp(e, CG_A_SCRATCH);
  V val = scr, idx = gepc(e, scr, Ks), sc = gepc(e, scr, 2 * Ks), mk = gepc(e, scr, mk_at);
  int n = nvecs(e, d);
  /* the mean keys of blocks [0, (r1 - 1) / B) for KV heads [kh0, kh1) */
  {
    V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
    V kh0 = DIVI(n0, ci(e, grp)), kh1 = ADDI(DIVI(SUBI(n1, ci(e, 1)), ci(e, grp)), ci(e, 1));
    V nb = DIVI(SUBI(r1, ci(e, 1)), ci(e, B));
    V b = for0(e, ci(e, 0), nb, 1);
    V kh = for0(e, kh0, kh1, 1);
    blk_ctx mc = {.k = &K, .off = MULI(kh, ci(e, d)), .base = MULI(b, ci(e, B))};
    mean_rows_to(e, blk_krow, &mc, B, d, gep(e, mk, MULI(ADDI(MULI(b, ci(e, Hk)), kh), ci(e, d))),
                 NULL);
    end0(e);
    end0(e);
  }
  V qx[MAXCARRY];
  head_iter it = heads_begin(e, &Q, &o, d, grp, qx);
  V t = it.t, orow = it.orow, h = it.h;
  V b0 = DIVI(t, ci(e, B));
  blk_ctx bc = {.k = &K, .v = &Vv, .off = MULI(it.kh, ci(e, d))};
  clear_lists(e, val, idx, Ks);
  V z0 = ci(e, 0);
  loop Lb;
  loop_begin(e, &Lb, ci(e, 0), b0, ci(e, 1), 1, &z0, "i64");
  V gate = dot_vecs(e, qx, gep(e, mk, MULI(ADDI(MULI(Lb.iv, ci(e, Hk)), it.kh), ci(e, d))), d);
  V w = offer(e, val, idx, ci(e, 0), Ks, Lb.arg[0], gate, Lb.iv, false);
  loop_end(e, &Lb, &w);
  /* scores of the selected blocks (slot s at sc + s * B) and of the own
   * block up to t (at sc + Ks * B) */
  V m = cf(e, -INFINITY);
  loop Ls;
  loop_begin(e, &Ls, ci(e, 0), ci(e, Ks), ci(e, 1), 1, &m, "f32");
  V bi = ldi(e, idx, Ls.iv);
  V sb = gep(e, sc, MULI(Ls.iv, ci(e, B)));
  V mres;
  if_begin(e, cmpi(e, "sge", bi, ci(e, 0)), 1, "f32", &mres);
  bc.base = MULI(bi, ci(e, B));
  V m2 = score_rows(e, qx, d, scale, &bc, ci(e, B), sb, Ls.arg[0]);
  if_else(e, 1, &m2, "f32");
  V jj = for0(e, ci(e, 0), ci(e, B), 1);
  sts(e, cf(e, -INFINITY), sb, jj);
  end0(e);
  if_end(e, 1, &Ls.arg[0], "f32");
  loop_end(e, &Ls, &mres);
  bc.base = MULI(b0, ci(e, B));
  V nown = ADDI(SUBI(t, bc.base), ci(e, 1));
  V own = gepc(e, sc, Ks * B);
  m = score_rows(e, qx, d, scale, &bc, nown, own, Ls.res[0]);
  V tot = FADD(exp_inplace(e, sc, ci(e, Ks * B), m), exp_inplace(e, own, nown, m));
  V f = FDIV(cf(e, 1.0), tot);
  V acc[MAXCARRY], zv = cvf(e, 0);
  for (int c = 0; c < n; c++) acc[c] = zv;
  accum_rows(e, acc, own, nown, f, blk_vrow, &bc, d);
  loop La;
  loop_begin(e, &La, ci(e, 0), ci(e, Ks), ci(e, 1), n, acc, e->vt);
  V bi2 = ldi(e, idx, La.iv);
  V r2[MAXCARRY];
  if_begin(e, cmpi(e, "sge", bi2, ci(e, 0)), n, e->vt, r2);
  bc.base = MULI(bi2, ci(e, B));
  V a2[MAXCARRY];
  for (int c = 0; c < n; c++) a2[c] = La.arg[c];
  accum_rows(e, a2, gep(e, sc, MULI(La.iv, ci(e, B))), ci(e, B), f, blk_vrow, &bc, d);
  if_else(e, n, a2, e->vt);
  if_end(e, n, La.arg, e->vt);
  loop_end(e, &La, r2);
  store_vecs(e, La.res, gep(e, orow, MULI(h, ci(e, d))), d);
  end0(e);
  end0(e);
}

/* x floats rounded up to a 64-byte line: the block-sparse tile kernels'
 * scratch areas each start on one. */
#define AT16(x) (((x) + 15) / 16 * 16)

/* 16 (token, query head) units of the block-sparse tile kernels (Landmark
 * Attention, MoBA) that chose one block: pairs u .. u + 15 of the pair
 * list pl (np in all; pair unit * S + slot), a missing last pair
 * repeating the last real one (ok false); each unit's pair position, its
 * token (ta), its query and output rows (head d floats). */
typedef struct unit_grp {
  V ok[16], pos[16], un[16], ta[16], qrow[16], orow[16];
} unit_grp;

static void unit_group(em *e, unit_grp *g, V pl, V np, V u, int64_t S, int64_t G, V tb, V hq0,
                       int64_t d, const view *Q, const view *o) {
  for (int r = 0; r < 16; r++) {
    g->pos[r] = ldi(e, pl, MINI(ADDI(u, ci(e, r)), SUBI(np, ci(e, 1))));
    g->ok[r] = cmpi(e, "slt", ADDI(u, ci(e, r)), np);
    g->un[r] = DIVI(g->pos[r], ci(e, S));
    g->ta[r] = ADDI(tb, DIVI(g->un[r], ci(e, G)));
    V h = ADDI(hq0, REMI(g->un[r], ci(e, G)));
    g->qrow[r] = gep(e, rowp(e, Q, g->ta[r]), MULI(h, ci(e, d)));
    g->orow[r] = gep(e, rowp(e, o, g->ta[r]), MULI(h, ci(e, d)));
  }
}

/* The group's queries (times sc) as the B operand at qg, and the scores
 * S^T = K Q^T [B][16] from the block's bf16 K rows at kb16 into sT. */
static void units_scores(em *e, const cg_kernel_req *q, const unit_grp *g, V sc, V qg, V kb16,
                         V sT, int64_t B, int64_t d) {
  query_pairs_rows(e, g->qrow, d, sc, qg);
  tile_products(e, q, (tile_at){.p = kb16, .ld = d, .rt = 16, .ck = 32},
                (tile_at){.p = qg, .ld = 32, .rk = 16}, (tile_at){.p = sT, .ld = 16, .rt = 16},
                B / 16, d / 32, false);
}

/* O = P V [16][d] from the bf16 rows P at pb and the block's V k-pairs at
 * vp into oG, added to each real unit's output row. */
static void units_pv(em *e, const cg_kernel_req *q, const unit_grp *g, V pb, V vp, V oG,
                     int64_t B, int64_t d) {
  tile_products(e, q, (tile_at){.p = pb, .ld = B, .ck = 32},
                (tile_at){.p = vp, .ld = 2 * d, .rk = 16, .ct = 32},
                (tile_at){.p = oG, .ld = d, .ct = 16}, d / 16, B / 32, false);
  add_pair_rows(e, 16, g->ok, g->orow, oG, d);
}

/* Landmark Attention for one query head (its query in qx, token t, the
 * KV head's offset off): the own block's keys up to t scored into loc,
 * the top-k past blocks by landmark score listed (val, idx), one
 * normalizer Z over the local keys and the selected landmarks; the
 * list's scores become the blocks' shares exp(s_b - m) (before / Z;
 * empty slots 0) and the local part of the output, exp(s_j - m) / Z
 * times V, is summed into acc (n vectors).  Returns 1 / Z. */
static V lm_local(em *e, const V *qx, V t, V off, int64_t d, int64_t B, int64_t Ks, view *K,
                  view *Vv, view *LK, V val, V idx, V loc, V *acc) {
  double scale = 1.0 / sqrt((double)d);
  V b0 = DIVI(t, ci(e, B));
  blk_ctx bc = {.k = K, .v = Vv, .off = off, .base = MULI(b0, ci(e, B))};
  V nloc = ADDI(SUBI(t, bc.base), ci(e, 1));
  V m = score_rows(e, qx, d, scale, &bc, nloc, loc, cf(e, -INFINITY));
  clear_lists(e, val, idx, Ks);
  V z0 = ci(e, 0);
  loop Lb;
  loop_begin(e, &Lb, ci(e, 0), b0, ci(e, 1), 1, &z0, "i64");
  V ls = FMUL(dot_vecs(e, qx, gep(e, rowp(e, LK, Lb.iv), off), d), cf(e, scale));
  V w = offer(e, val, idx, ci(e, 0), Ks, Lb.arg[0], ls, Lb.iv, false);
  loop_end(e, &Lb, &w);
  loop Lm;
  loop_begin(e, &Lm, ci(e, 0), ci(e, Ks), ci(e, 1), 1, &m, "f32");
  V mm = fmaxs(e, Lm.arg[0], lds(e, val, Lm.iv)); /* empty slots hold -inf */
  loop_end(e, &Lm, &mm);
  m = Lm.res[0];
  V Z = FADD(exp_inplace(e, loc, nloc, m), exp_inplace(e, val, ci(e, Ks), m));
  V invZ = FDIV(cf(e, 1.0), Z);
  V zv = cvf(e, 0);
  int n = nvecs(e, d);
  for (int c = 0; c < n; c++) acc[c] = zv;
  accum_rows(e, acc, loc, nloc, invZ, blk_vrow, &bc, d);
  return invZ;
}

/* Landmark Attention's grouped softmax: the own block's keys up to t and
 * the top-k past blocks by landmark score share one normalizer Z; a
 * block's share exp(s_b - m) / Z is spread over its keys by an in-block
 * softmax.  Scratch: the list, the local scores, one block's scores. */
static void k_landmark_attention(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), grp = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
  double scale = 1.0 / sqrt((double)d);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hq;
  info->scratch_fixed = 2 * Ks + 2 * B + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2),
       LK = INV(e, q, 3);
  V scr = argp(e, CG_A_SCRATCH);
  V val = scr, idx = gepc(e, scr, Ks), loc = gepc(e, scr, 2 * Ks), blk = gepc(e, scr, 2 * Ks + B);
  int n = nvecs(e, d);
  V qx[MAXCARRY];
  head_iter it = heads_begin(e, &Q, &o, d, grp, qx);
  V orow = it.orow, h = it.h, off = MULI(it.kh, ci(e, d)), acc[MAXCARRY];
  V invZ = lm_local(e, qx, it.t, off, d, B, Ks, &K, &Vv, &LK, val, idx, loc, acc);
  blk_ctx bc = {.k = &K, .v = &Vv, .off = off};
  loop La;
  loop_begin(e, &La, ci(e, 0), ci(e, Ks), ci(e, 1), n, acc, e->vt);
  V bi = ldi(e, idx, La.iv);
  V r2[MAXCARRY];
  if_begin(e, cmpi(e, "sge", bi, ci(e, 0)), n, e->vt, r2);
  bc.base = MULI(bi, ci(e, B));
  V mb = score_rows(e, qx, d, scale, &bc, ci(e, B), blk, cf(e, -INFINITY));
  V zin = exp_inplace(e, blk, ci(e, B), mb);
  V f = FDIV(FMUL(lds(e, val, La.iv), invZ), zin);
  V a2[MAXCARRY];
  for (int c = 0; c < n; c++) a2[c] = La.arg[c];
  accum_rows(e, a2, blk, ci(e, B), f, blk_vrow, &bc, d);
  if_else(e, n, a2, e->vt);
  if_end(e, n, La.arg, e->vt);
  loop_end(e, &La, r2);
  store_vecs(e, La.res, gep(e, orow, MULI(h, ci(e, d))), d);
  end0(e);
  end0(e);
}

bool cg_landmark_attention_amx(const ir_op *op) {
  if (op->code != IR_LANDMARK_ATTENTION) return false;
  int64_t Hq = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2), Hk = DIMN(op->in[1], 1);
  int64_t B = ir_attr_i(op, "block", 1);
  return Hk > 0 && Hq % Hk == 0 && d % 32 == 0 && d <= 256 && B % 32 == 0 &&
         B / 16 * (d / 32) <= 128;
}

/* Rows [r0, r0 + 2 npairs) of a sequence view w, the d columns of one KV
 * head from kcol, into k-pairs of consecutive rows at buf (bf16, pair
 * jj's row 2 d apart): the B operand of P V. */
static void seq_pairs16(em *e, const view *w, V r0, V npairs, V kcol, int64_t d, V buf) {
  V jj = for0(e, ci(e, 0), npairs, 1);
  V ra = ADDI(r0, MULI(jj, ci(e, 2)));
  V a = gep(e, rowp(e, w, ra), kcol), b = gep(e, rowp(e, w, ADDI(ra, ci(e, 1))), kcol);
  for (int64_t e0 = 0; e0 < d; e0 += 16)
    st_bf16x32(e, pairs16(e, cvt2bf16(e, ldv(e, a, ci(e, e0), NULL), ldv(e, b, ci(e, e0), NULL))),
               buf, ADDI(MULI(jj, ci(e, 2 * d)), ci(e, 2 * e0)));
  end0(e);
}

/* Tokens per block of the bf16 tile kernels whose units are (token,
 * query head) pairs: Landmark Attention, MoBA and NSA.  A block's units
 * read their queries and add to their output rows (8 G d bytes a token,
 * f32) while each distinct key block serves every unit that selected it;
 * longer blocks give a key block more units, which fill more of the
 * tiles' 16 columns.  The largest power of two up to 64 within 1 MiB on
 * AMX, 512 KiB where the kernels run as dot products: 64 for the
 * examples (G 4, d 64).  On their 16K-token prefill (2 threads, a
 * Sapphire Rapids-class VM, random weights) 64 against 16 tokens took
 * the attention ops from 10.5 to 5.1 s (Landmark Attention), 13.9-15.5
 * to 6.2-6.5 s (MoBA) and 17.9-18.3 to 12.7-12.8 s (NSA); 128 measured
 * like 64 (bench/RESULTS.md, twenty-eighth session). */
static int64_t jt_block_tokens(const cg_kernel_req *q, int64_t G, int64_t d) {
  return block_tokens((q->bf16 == CG_BF16_AMX ? 1024 : 512) * 1024, 8 * G * d, 64);
}

/* Landmark Attention under bf16 math on AMX or AVX512-BF16
 * (cg_landmark_attention_amx), by blocks of tokens (jt_block_tokens) and
 * KV head.  Each (token, query head) of the block, a unit, first runs the
 * f32 kernel's local part (lm_local: the local keys, the top-k list, Z),
 * stores its local output and lists its selected blocks and their shares
 * / Z (ix, wt; pair unit * K + slot).  Then chunk-major as the sparse
 * kernel: each distinct selected block has its K rows rounded to bf16 and
 * its V rows put into k-pairs once, and the units that selected it run 16
 * at a time in the tiles' columns (their queries gathered by 16 x 16
 * transposes): S^T = K Q^T, the in-block softmax and the share w / sum
 * per column (group_softmax: P rounded to bf16), O = P V into oG, added
 * to each real unit's output row.  The past blocks' part is 7/8 of the
 * work at top-7 of blocks of 64.  Scratch: the list, the local scores,
 * ix, wt, the block's schedule, K and V of a block in bf16, the scores, P, the
 * weights, the query operand, the group's output. */
static void k_landmark_attention_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), G = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
  int64_t TBL = jt_block_tokens(q, G, d), NP = TBL * G * Ks; /* pairs of a block of tokens */
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  /* scratch in floats, each area on a 64-byte line */
  int64_t val_at = 0, idx_at = AT16(Ks), loc_at = idx_at + AT16(Ks), ix_at = loc_at + AT16(B),
          wt_at = ix_at + AT16(NP), sch_at = wt_at + AT16(NP),
          kb_at = sch_at + AT16(bp_sched_size(NP)),
          vp_at = kb_at + B * d / 2, sT_at = vp_at + B * d / 2, pb_at = sT_at + (B + 3) * 16,
          wv_at = pb_at + B * 8, qg_at = wv_at + 16, oG_at = qg_at + d * 8;
  info->scratch_fixed = oG_at + 16 * d + 16;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2),
       LK = INV(e, q, 3);
  V scr = scratch64(e);
  V val = gepc(e, scr, val_at), idx = gepc(e, scr, idx_at), loc = gepc(e, scr, loc_at),
    ix = gepc(e, scr, ix_at), wt = gepc(e, scr, wt_at), sch = gepc(e, scr, sch_at),
    kb16 = gepc(e, scr, kb_at), vp = gepc(e, scr, vp_at), sT = gepc(e, scr, sT_at),
    pb = gepc(e, scr, pb_at), wv = gepc(e, scr, wv_at), qg = gepc(e, scr, qg_at),
    oG = gepc(e, scr, oG_at);
  V sc = splat(e, cf(e, 1.0 / sqrt((double)d)));
  blk_pairs b;
  bp_blocks_begin(e, info, &b, argi(e, CG_A_R1), Ks, ix, sch, NP, TBL);
  b.npair = MULI(SUBI(b.te, b.tb), ci(e, G * Ks));
  b.g = ci(e, 0);
  V tb = b.tb;
  V kh = for0(e, argi(e, CG_A_N0), argi(e, CG_A_N1), 1);
  V hq0 = MULI(kh, ci(e, G)), kcol = MULI(kh, ci(e, d));
  /* every unit's local part, its list in ix and its shares / Z in wt */
  {
    V ta = for0(e, tb, b.te, 1);
    V hh = for0(e, ci(e, 0), ci(e, G), 1);
    V h = ADDI(hq0, hh), unit = ADDI(MULI(SUBI(ta, tb), ci(e, G)), hh);
    V qx[MAXCARRY], acc[MAXCARRY];
    load_vecs(e, gep(e, rowp(e, &Q, ta), MULI(h, ci(e, d))), d, qx);
    V invZ = lm_local(e, qx, ta, kcol, d, B, Ks, &K, &Vv, &LK, val, idx, loc, acc);
    store_vecs(e, acc, gep(e, rowp(e, &o, ta), MULI(h, ci(e, d))), d);
    V k = for0(e, ci(e, 0), ci(e, Ks), 1);
    V at = ADDI(MULI(unit, ci(e, Ks)), k);
    sti(e, ldi(e, idx, k), ix, at);
    sts(e, FMUL(lds(e, val, k), invZ), wt, at);
    end0(e);
    end0(e);
    end0(e);
  }
  bp_chunk_begin(e, &b);
  V bk = MULI(b.idx, ci(e, B)); /* the block's first row */
  win_rows16(e, &K, false, bk, ADDI(bk, ci(e, B)), bk, kcol, d, kb16);
  seq_pairs16(e, &Vv, bk, ci(e, B / 2), kcol, d, vp);
  V pl;
  V np = bp_list(e, &b, &pl);
  V u = for0(e, ci(e, 0), np, 16);
  unit_grp g;
  unit_group(e, &g, pl, np, u, Ks, G, tb, hq0, d, &Q, &o);
  for (int r = 0; r < 16; r++)
    sts(e, sel(e, g.ok[r], lds(e, wt, g.pos[r]), cf(e, 0), "f32"), wv, ci(e, r));
  units_scores(e, q, &g, sc, qg, kb16, sT, B, d);
  group_softmax(e, sT, pb, wv, B, 0, NULL);
  units_pv(e, q, &g, pb, vp, oG, B, d);
  end0(e);          /* groups */
  bp_chunk_close(e); /* chunks */
  end0(e);          /* kv heads */
  end0(e);          /* blocks of tokens */
}

bool cg_moba_amx(const ir_op *op) {
  if (op->code != IR_MOBA_ATTENTION) return false;
  int64_t Hq = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2), Hk = DIMN(op->in[1], 1);
  int64_t B = ir_attr_i(op, "block", 1);
  return Hk > 0 && Hq % Hk == 0 && d % 32 == 0 && d <= 256 && B % 32 == 0 &&
         B / 16 * (d / 32) <= 128;
}

/* The joint-softmax tile engine of MoBA and NSA under bf16 math: per
 * block of tokens [tb, te) and KV head, units u = (token ta, query head
 * hq0 + h), u = (ta - tb) G + h, each with up to S key blocks of B rows
 * listed in ix0 (pair u S + slot; -1: none), attending under one softmax
 * to its blocks' keys in [ta - W + 1, ta] (W 0: up to ta).  Chunk-major
 * over the distinct blocks as the sparse kernel (bp_chunk_begin, bp_list),
 * 16 units a column block, in two passes so that each probability is
 * exp(s - max) over all of the unit's keys, as the reference computes it
 * (a running maximum would round against a maximum that depends on the
 * blocks' order): each block's K rows rounded to bf16 (rows past the
 * token block's end, not computed yet, zero); S^T = K Q^T from tiles
 * (queries gathered by 16 x 16 transposes), each column's keys outside
 * its unit's range -inf; pass 1 keeps each unit's maximum (mu); pass 2
 * (V rows in k-pairs too) takes p = exp(s - max), adds each column's sum
 * to its unit's (lu), rounds p to bf16 into rows P (16 x 16 transposes)
 * and adds O = P V from tiles to the unit's row: its output row, or with
 * acc its row of acc (d floats each).  The caller sets mu to -inf, lu to
 * 0 and the rows, and divides by lu afterwards. */
typedef struct jt_ctx {
  const cg_kernel_req *q;
  blk_pairs *b;
  const view *Q, *K, *Vv, *o;
  V tb, te, hq0, kcol, sc;
  V acc; /* with to_acc: the units' rows */
  bool to_acc;
  bool chunks; /* K and V views whose rows are chunks of B rows, Hk d apart (complete) */
  int64_t G, S, B, d, W, Hk;
  V ix0, sch, mu, lu, kb16, vp, sT, pb, mv, qg, oG; /* scratch; mv: 32 floats */
} jt_ctx;

/* The engine's scratch after `at` floats (each area on a 64-byte line; NP
 * pairs, NU units); returns its end. */
static int64_t jt_scratch(em *e, jt_ctx *c, V scr, int64_t at, int64_t NP, int64_t NU) {
  int64_t B = c->B, d = c->d;
  int64_t ix0_at = AT16(at), sch_at = ix0_at + AT16(NP),
          mu_at = sch_at + AT16(bp_sched_size(NP)), lu_at = mu_at + AT16(NU),
          kb_at = lu_at + AT16(NU),
          vp_at = kb_at + B * d / 2, sT_at = vp_at + B * d / 2, pb_at = sT_at + (B + 3) * 16,
          mv_at = pb_at + B * 8, qg_at = mv_at + 32, oG_at = qg_at + d * 8;
  c->ix0 = gepc(e, scr, ix0_at), c->sch = gepc(e, scr, sch_at);
  c->mu = gepc(e, scr, mu_at), c->lu = gepc(e, scr, lu_at), c->kb16 = gepc(e, scr, kb_at);
  c->vp = gepc(e, scr, vp_at), c->sT = gepc(e, scr, sT_at), c->pb = gepc(e, scr, pb_at);
  c->mv = gepc(e, scr, mv_at), c->qg = gepc(e, scr, qg_at), c->oG = gepc(e, scr, oG_at);
  return oG_at + 16 * d + 16;
}

static void jt_run(em *e, const jt_ctx *c) {
  blk_pairs *b = c->b;
  int64_t B = c->B, d = c->d;
  V z = cvf(e, 0), mv = c->mv, mv2 = gepc(e, c->mv, 16);
  for (int pass = 0; pass < 2; pass++) {
    bp_chunk_begin(e, b);
    /* the block's rows in bf16; in a block the token block is still
     * filling, those past its end zero */
    V bk = MULI(b->idx, ci(e, B)), kend = MINI(ADDI(bk, ci(e, B)), c->te), nk = SUBI(kend, bk);
    if (c->chunks) {
      /* a chunk of the chunk memory: complete, its rows in one view row */
      amx_chunk_rows(e, gep(e, rowp(e, c->K, b->idx), c->kcol), false, 0, B, d, c->Hk, d,
                     c->kb16);
      if (pass)
        amx_chunk_rows(e, gep(e, rowp(e, c->Vv, b->idx), c->kcol), false, 1, B, d, c->Hk, d,
                       c->vp);
    } else {
      win_rows16(e, c->K, false, bk, kend, bk, c->kcol, d, c->kb16);
      zero_rows16(e, c->kb16, nk, ci(e, B), d);
    }
    if (pass && !c->chunks) {
      V nfull = DIVI(nk, ci(e, 2));
      seq_pairs16(e, c->Vv, bk, nfull, c->kcol, d, c->vp);
      zero_rows16(e, c->vp, nfull, ci(e, B / 2), 2 * d);
      /* an odd last row, paired with zeros */
      if0(e, cmpi(e, "ne", REMI(nk, ci(e, 2)), ci(e, 0)));
      V a = gep(e, rowp(e, c->Vv, SUBI(kend, ci(e, 1))), c->kcol);
      for (int64_t e0 = 0; e0 < d; e0 += 16)
        st_bf16x32(e, pairs16(e, cvt2bf16(e, ldv(e, a, ci(e, e0), NULL), z)), c->vp,
                   ADDI(MULI(nfull, ci(e, 2 * d)), ci(e, 2 * e0)));
      out(e, "  }\n");
    }
    V pl;
    V np = bp_list(e, b, &pl);
    V u = for0(e, ci(e, 0), np, 16);
    unit_grp g;
    unit_group(e, &g, pl, np, u, c->S, c->G, c->tb, c->hq0, d, c->Q, c->o);
    if (c->to_acc)
      for (int r = 0; r < 16; r++) g.orow[r] = gep(e, c->acc, MULI(g.un[r], ci(e, d)));
    units_scores(e, c->q, &g, c->sc, c->qg, c->kb16, c->sT, B, d);
    /* column r's keys in the block: rows [ta - W + 1 - bk, ta - bk + 1);
     * (a chunk of the chunk memory is complete and every row of it
     * counts: its rows are not token positions, no mask) */
    if (!c->chunks) {
      for (int r = 0; r < 16; r++) {
        V rel = SUBI(g.ta[r], bk);
        sts(e, f32_of(e, ADDI(rel, ci(e, 1))), mv, ci(e, r));
        if (c->W) sts(e, f32_of(e, SUBI(rel, ci(e, c->W - 1))), mv2, ci(e, r));
      }
      if (!c->W) if0(e, cmpi(e, "sgt", ADDI(bk, ci(e, B)), c->tb));
      mask_edges(e, c->sT, 16, ci(e, 0), ci(e, B), ci(e, 0), ci(e, 0),
                 c->W ? ldv(e, mv2, ci(e, 0), NULL) : splat(e, cf(e, -1.0)),
                 ldv(e, mv, ci(e, 0), NULL));
      if (!c->W) out(e, "  }\n");
    }
    if (!pass) {
      stv(e, max_rows(e, c->sT, 16, ci(e, B)), mv, ci(e, 0), NULL);
      for (int r = 0; r < 16; r++) {
        if0(e, g.ok[r]);
        sts(e, fmaxs(e, lds(e, c->mu, g.un[r]), lds(e, mv, ci(e, r))), c->mu, g.un[r]);
        out(e, "  }\n");
      }
    } else {
      for (int r = 0; r < 16; r++) sts(e, lds(e, c->mu, g.un[r]), mv, ci(e, r));
      stv(e, group_exp(e, c->sT, B, ldv(e, mv, ci(e, 0), NULL), true, NULL), mv, ci(e, 0), NULL);
      for (int r = 0; r < 16; r++) {
        if0(e, g.ok[r]);
        sts(e, FADD(lds(e, c->lu, g.un[r]), lds(e, mv, ci(e, r))), c->lu, g.un[r]);
        out(e, "  }\n");
      }
      group_pt(e, c->sT, c->pb, B, NULL);
      units_pv(e, c->q, &g, c->pb, c->vp, c->oG, B, d);
    }
    end0(e);          /* groups */
    bp_chunk_close(e); /* chunks */
  }
}

/* A unit's engine state before jt_run: its maximum -inf, its sum 0, its
 * row (d floats at row) 0. */
static void jt_unit_start(em *e, const jt_ctx *c, V unit, V row) {
  sts(e, cf(e, -INFINITY), c->mu, unit);
  sts(e, cf(e, 0), c->lu, unit);
  for (int64_t at = 0; at < c->d; at += 16) stv(e, cvf(e, 0), row, ci(e, at), NULL);
}

/* After jt_run into the output rows: each unit's row divided by its sum
 * plus n_plus exp(-max) (0 for a unit with no key). */
static void jt_finish(em *e, const jt_ctx *c, int n_plus) {
  int64_t G = c->G, d = c->d;
  V ta = for0(e, c->tb, c->te, 1);
  V hh = for0(e, ci(e, 0), ci(e, G), 1);
  V unit = ADDI(MULI(SUBI(ta, c->tb), ci(e, G)), hh);
  V orow = gep(e, rowp(e, c->o, ta), MULI(ADDI(c->hq0, hh), ci(e, d)));
  V l = lds(e, c->lu, unit);
  if (n_plus) {
    V negm = nv(e);
    out(e, "  %s = arith.negf %s : f32\n", negm.s, lds(e, c->mu, unit).s);
    l = FADD(l, FMUL(cf(e, n_plus), exp_s(e, negm)));
  }
  V inv = splat(e, sel(e, cmpf(e, "ogt", l, cf(e, 0), "f32"), FDIV(cf(e, 1.0), l), cf(e, 0),
                       "f32"));
  for (int64_t at = 0; at < d; at += 16)
    stv(e, VMUL(ldv(e, orow, ci(e, at), NULL), inv), orow, ci(e, at), NULL);
  end0(e);
  end0(e);
}

bool cg_chunk_attention_joint_amx(const ir_op *op) {
  if (op->code != IR_CHUNK_ATTENTION) return false;
  const ir_attr *m = ir_get_attr(op, "merge");
  if (!m || strcmp(m->s, "joint")) return false;
  int64_t Hq = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2), P = DIMN(op->in[1], 1);
  int64_t Hk = DIMN(op->in[1], 2);
  return Hk > 0 && Hq % Hk == 0 && d % 32 == 0 && d <= 256 && P % 32 == 0 &&
         P / 16 * (d / 32) <= 128;
}

/* HSA's sparse attention with the joint merge (one softmax(+n) over the
 * rows of every selected chunk; the weights only select) under bf16 math
 * on AMX or AVX512-BF16 (cg_chunk_attention_joint_amx), by blocks of
 * CG_ATTN_TB tokens and KV head: every (token, query head) of the block,
 * a unit, lists its token's selected chunks (the group's heads share
 * them), its maximum starts at -inf, its sum at 0 and its output row at
 * 0; the joint-softmax engine (jt_run, chunk rows read from the chunk
 * memory's pages) adds O = P V to the row, which is then divided by the
 * sum plus n exp(-max) (0 for a token with no chunk).  Scratch: the
 * engine's. */
static void k_chunk_attention_joint_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1], *iv = op->in[3];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), P = DIMN(kv, 1), Hk = DIMN(kv, 2), G = Hq / Hk;
  int64_t Gi = DIMN(iv, 1), Ks = DIMN(iv, 2), NU = CG_ATTN_TB * G;
  int n_plus = (int)ir_attr_i(op, "softmax_plus", 0);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2), I = INV(e, q, 3);
  V scr = scratch64(e);
  blk_pairs b;
  jt_ctx c = {.q = q, .b = &b, .Q = &Q, .K = &K, .Vv = &Vv, .o = &o, .G = G, .S = Ks, .B = P,
              .d = d, .Hk = Hk, .chunks = true, .sc = splat(e, cf(e, 1.0 / sqrt((double)d)))};
  info->scratch_fixed = jt_scratch(e, &c, scr, 0, NU * Ks, NU) + 16;
  bp_blocks_begin(e, info, &b, argi(e, CG_A_R1), Ks, c.ix0, c.sch, NU * Ks, CG_ATTN_TB);
  b.npair = MULI(SUBI(b.te, b.tb), ci(e, G * Ks));
  b.g = ci(e, 0);
  V tb = b.tb, te = b.te;
  V kh = for0(e, argi(e, CG_A_N0), argi(e, CG_A_N1), 1);
  V hq0 = MULI(kh, ci(e, G)), g = Gi == 1 ? ci(e, 0) : kh;
  c.tb = tb, c.te = te, c.hq0 = hq0, c.kcol = MULI(kh, ci(e, d));
  {
    V ta = for0(e, tb, te, 1);
    V ir = rowp(e, &I, ta);
    V hh = for0(e, ci(e, 0), ci(e, G), 1);
    V unit = ADDI(MULI(SUBI(ta, tb), ci(e, G)), hh);
    V k = for0(e, ci(e, 0), ci(e, Ks), 1);
    sti(e, ldi(e, ir, ADDI(MULI(g, ci(e, Ks)), k)), c.ix0, ADDI(MULI(unit, ci(e, Ks)), k));
    end0(e);
    jt_unit_start(e, &c, unit, gep(e, rowp(e, &o, ta), MULI(ADDI(hq0, hh), ci(e, d))));
    end0(e);
    end0(e);
  }
  jt_run(e, &c);
  jt_finish(e, &c, n_plus);
  end0(e); /* kv heads */
  end0(e); /* blocks of tokens */
}

/* MoBA under bf16 math on AMX or AVX512-BF16 (cg_moba_amx), by blocks of
 * jt_block_tokens tokens and KV head: every (token, query head) of the block,
 * a unit, picks its blocks as the f32 kernel does (the top-k past blocks
 * by q . mean key, the mean keys computed once per call; then its own
 * block) into the engine's list; its maximum starts at -inf, its sum at 0
 * and its output row at 0; the joint-softmax engine (jt_run) adds its
 * keys' O = P V to the row, which is then divided by the sum.  Scratch:
 * the gate list, the engine's, then the mean keys [block][Hk][d]. */
static void k_moba_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), G = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1), S = Ks + 1;
  int64_t NU = jt_block_tokens(q, G, d) * G;
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2);
  V scr = scratch64(e);
  int64_t idx_at = AT16(Ks);
  V val = scr, idx = gepc(e, scr, idx_at);
  blk_pairs b;
  jt_ctx c = {.q = q, .b = &b, .Q = &Q, .K = &K, .Vv = &Vv, .o = &o, .G = G, .S = S, .B = B,
              .d = d, .sc = splat(e, cf(e, 1.0 / sqrt((double)d)))};
  int64_t mk_at = jt_scratch(e, &c, scr, idx_at + Ks, NU * S, NU);
  V mk = gepc(e, scr, mk_at);
  info->scratch_fixed = mk_at + 16;
  info->scratch_per_t1 = (Hk * d + B - 1) / B;
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1), r1 = argi(e, CG_A_R1);
  /* the mean keys of blocks [0, (r1 - 1) / B) for KV heads [n0, n1) */
  {
    V nb = DIVI(SUBI(r1, ci(e, 1)), ci(e, B));
    V bb = for0(e, ci(e, 0), nb, 1);
    V kh = for0(e, n0, n1, 1);
    blk_ctx mc = {.k = &K, .off = MULI(kh, ci(e, d)), .base = MULI(bb, ci(e, B))};
    mean_rows_to(e, blk_krow, &mc, B, d,
                 gep(e, mk, MULI(ADDI(MULI(bb, ci(e, Hk)), kh), ci(e, d))), NULL);
    end0(e);
    end0(e);
  }
  bp_blocks_begin(e, info, &b, r1, S, c.ix0, c.sch, NU * S, NU / G);
  b.npair = MULI(SUBI(b.te, b.tb), ci(e, G * S));
  b.g = ci(e, 0);
  V tb = b.tb, te = b.te;
  V kh = for0(e, n0, n1, 1);
  V hq0 = MULI(kh, ci(e, G));
  c.tb = tb, c.te = te, c.hq0 = hq0, c.kcol = MULI(kh, ci(e, d));
  /* every unit's blocks, maximum, sum and output row */
  {
    V ta = for0(e, tb, te, 1);
    V hh = for0(e, ci(e, 0), ci(e, G), 1);
    V h = ADDI(hq0, hh), unit = ADDI(MULI(SUBI(ta, tb), ci(e, G)), hh);
    V qx[MAXCARRY];
    V orow = gep(e, rowp(e, &o, ta), MULI(h, ci(e, d)));
    load_vecs(e, gep(e, rowp(e, &Q, ta), MULI(h, ci(e, d))), d, qx);
    V b0 = DIVI(ta, ci(e, B));
    clear_lists(e, val, idx, Ks);
    V z0 = ci(e, 0);
    loop Lb;
    loop_begin(e, &Lb, ci(e, 0), b0, ci(e, 1), 1, &z0, "i64");
    V gate = dot_vecs(e, qx, gep(e, mk, MULI(ADDI(MULI(Lb.iv, ci(e, Hk)), kh), ci(e, d))), d);
    V w = offer(e, val, idx, ci(e, 0), Ks, Lb.arg[0], gate, Lb.iv, false);
    loop_end(e, &Lb, &w);
    V base = MULI(unit, ci(e, S));
    V k = for0(e, ci(e, 0), ci(e, Ks), 1);
    sti(e, ldi(e, idx, k), c.ix0, ADDI(base, k));
    end0(e);
    sti(e, b0, c.ix0, ADDI(base, ci(e, Ks)));
    jt_unit_start(e, &c, unit, orow);
    end0(e);
    end0(e);
  }
  jt_run(e, &c);
  jt_finish(e, &c, 0);
  end0(e); /* kv heads */
  end0(e); /* blocks of tokens */
}

/* ---- NSA ------------------------------------------------------------------ */

/* nsa_compress: compressed block j covers rows j*stride .. +block-1; its
 * key for head h is W . concat(rows' head h), rows position-major. */
static void k_nsa_compress(em *e, const cg_kernel_req *q) {
  const ir_op *op = q->op;
  int64_t H = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2);
  int64_t b = ir_attr_i(op, "block", 1), st = ir_attr_i(op, "stride", 1);
  view o = OUTV(e, 0), k = INV(e, q, 0), w = INV(e, q, 1);
  V j = rows_begin(e);
  V dst = rowp(e, &o, j);
  V h = for0(e, ci(e, 0), ci(e, H), 1);
  V ee = for0(e, ci(e, 0), ci(e, d), 1);
  V wrow = gep(e, w.seg, MULI(ee, ci(e, b * d)));
  V zf = cf(e, 0);
  loop L;
  loop_begin(e, &L, ci(e, 0), ci(e, b), ci(e, 1), 1, &zf, "f32");
  V kr = gep(e, rowp(e, &k, ADDI(MULI(j, ci(e, st)), L.iv)), MULI(h, ci(e, d)));
  V wv[MAXCARRY];
  load_vecs(e, gep(e, wrow, MULI(L.iv, ci(e, d))), d, wv);
  V acc = FADD(L.arg[0], dot_vecs(e, wv, kr, d));
  loop_end(e, &L, &acc);
  sts(e, L.res[0], dst, ADDI(MULI(h, ci(e, d)), ee));
  end0(e);
  end0(e);
  end0(e);
}

typedef struct row_ctx {
  view *w;
  V off;
} row_ctx;

static V plain_row(em *e, void *c, V j) {
  row_ctx *r = c;
  return gep(e, rowp(e, r->w, j), r->off);
}

/* NSA's selection for token t and KV head kh (qr: the token's query
 * row): the compressed attention probabilities of the group's heads over
 * its nc complete compressed blocks (pbuf, head hh's at hh * nc), the
 * selection blocks' importance (imp: a compressed block counts for each
 * block it overlaps), then the forced blocks (the first init_blocks, the
 * last local_blocks) and the best by importance (ties: lower block) into
 * sel_.  Returns the number selected; *ncp: nc. */
typedef struct nsa_sel {
  int64_t grp, d, cb, cs, B, Ks, init, local;
  view *KC;
  V pbuf, imp, sel_;
} nsa_sel;

static V nsa_select(em *e, const nsa_sel *c, V t, V kh, V qr, V *ncp) {
  int64_t grp = c->grp, d = c->d, cb = c->cb, cs = c->cs, B = c->B, Ks = c->Ks;
  int64_t init = c->init, local = c->local;
  double scale = 1.0 / sqrt((double)d);
  V pbuf = c->pbuf, imp = c->imp, sel_ = c->sel_, ninf = cf(e, -INFINITY);
  V tp1 = ADDI(t, ci(e, 1));
  V nc = sel(e, cmpi(e, "sge", tp1, ci(e, cb)),
             ADDI(DIVI(SUBI(tp1, ci(e, cb)), ci(e, cs)), ci(e, 1)), ci(e, 0), "i64");
  V b0 = DIVI(t, ci(e, B)), nb = ADDI(b0, ci(e, 1));
  V koff = MULI(kh, ci(e, d));
  row_ctx kcx = {.w = c->KC, .off = koff};
  /* compressed probabilities of every head of the group */
  V hh = for0(e, ci(e, 0), ci(e, grp), 1);
  V qx[MAXCARRY];
  load_vecs(e, gep(e, qr, MULI(ADDI(MULI(kh, ci(e, grp)), hh), ci(e, d))), d, qx);
  V ph = gep(e, pbuf, MULI(hh, nc));
  loop Lc;
  loop_begin(e, &Lc, ci(e, 0), nc, ci(e, 1), 1, &ninf, "f32");
  V sc = FMUL(dot_vecs(e, qx, plain_row(e, &kcx, Lc.iv), d), cf(e, scale));
  sts(e, sc, ph, Lc.iv);
  V mx = fmaxs(e, Lc.arg[0], sc);
  loop_end(e, &Lc, &mx);
  V tot = exp_inplace(e, ph, nc, Lc.res[0]);
  V inv = FDIV(cf(e, 1.0), tot);
  V jn = for0(e, ci(e, 0), nc, 1);
  sts(e, FMUL(lds(e, ph, jn), inv), ph, jn);
  end0(e);
  end0(e);
  /* block importance: a compressed block counts for each block it overlaps */
  V bb = for0(e, ci(e, 0), nb, 1);
  sts(e, cf(e, 0), imp, bb);
  end0(e);
  V h2 = for0(e, ci(e, 0), ci(e, grp), 1);
  V j2 = for0(e, ci(e, 0), nc, 1);
  V pj = lds(e, pbuf, ADDI(MULI(h2, nc), j2));
  V lo = DIVI(MULI(j2, ci(e, cs)), ci(e, B));
  V hi = MINI(ADDI(DIVI(ADDI(MULI(j2, ci(e, cs)), ci(e, cb - 1)), ci(e, B)), ci(e, 1)), nb);
  V b2 = for0(e, lo, hi, 1);
  sts(e, FADD(lds(e, imp, b2), pj), imp, b2);
  end0(e);
  end0(e);
  end0(e);
  /* forced blocks first, in order, marked -inf so the ranking skips them */
  V z0 = ci(e, 0);
  loop Lf;
  loop_begin(e, &Lf, ci(e, 0), nb, ci(e, 1), 1, &z0, "i64");
  V forced = bin(e, "arith.ori", cmpi(e, "slt", Lf.iv, ci(e, init)),
                 cmpi(e, "sgt", Lf.iv, SUBI(b0, ci(e, local))), "i1");
  V take = bin(e, "arith.andi", forced, cmpi(e, "slt", Lf.arg[0], ci(e, Ks)), "i1");
  V nsv;
  if_begin(e, take, 1, "i64", &nsv);
  sti(e, Lf.iv, sel_, Lf.arg[0]);
  sts(e, ninf, imp, Lf.iv);
  V inc = ADDI(Lf.arg[0], ci(e, 1));
  if_else(e, 1, &inc, "i64");
  if_end(e, 1, &Lf.arg[0], "i64");
  loop_end(e, &Lf, &nsv);
  /* then the best by importance (ties: lower block), one at a time */
  loop Lr;
  loop_begin(e, &Lr, Lf.res[0], ci(e, Ks), ci(e, 1), 1, &Lf.res[0], "i64");
  V init2[2] = {ci(e, -1), ninf};
  loop Lx;
  Lx.n = 2;
  Lx.iv = nv(e);
  V xr = nv(e);
  for (int c = 0; c < 2; c++) {
    Lx.arg[c] = nv(e);
    snprintf(Lx.res[c].s, sizeof Lx.res[c].s, "%.24s#%d", xr.s, c & 0xff);
  }
  V one = ci(e, 1), zz = ci(e, 0);
  out(e, "  %s:2 = scf.for %s = %s to %s step %s iter_args(%s = %s, %s = %s) -> (i64, f32) : i64 {\n",
      xr.s, Lx.iv.s, zz.s, nb.s, one.s, Lx.arg[0].s, init2[0].s, Lx.arg[1].s, init2[1].s);
  V iv2 = lds(e, imp, Lx.iv);
  V better = cmpf(e, "ogt", iv2, Lx.arg[1], "f32");
  V nbst = sel(e, better, Lx.iv, Lx.arg[0], "i64");
  V nval = sel(e, better, iv2, Lx.arg[1], "f32");
  out(e, "  scf.yield %s, %s : i64, f32\n  }\n", nbst.s, nval.s);
  V found = cmpi(e, "sge", Lx.res[0], ci(e, 0));
  V nsr;
  if_begin(e, found, 1, "i64", &nsr);
  sti(e, Lx.res[0], sel_, Lr.arg[0]);
  sts(e, ninf, imp, Lx.res[0]);
  V inc2 = ADDI(Lr.arg[0], ci(e, 1));
  if_else(e, 1, &inc2, "i64");
  if_end(e, 1, &Lr.arg[0], "i64");
  loop_end(e, &Lr, &nsr);
  V ns = Lr.res[0];
  *ncp = nc;
  return ns;
}

/* NSA: three branches mixed by per-head gates (the reference's semantics,
 * runtime/ref_ops.c): compressed attention; the selected blocks, ranked by
 * the compressed attention mass of the group's heads over the blocks each
 * compressed block overlaps, with the first init_blocks and the last
 * local_blocks forced, under one softmax; and a window.  Scratch: the
 * selection, selected and window scores, then per token of context the
 * compressed probabilities of the group's heads and the block importances. */
static void k_nsa_attention(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), grp = Hq / Hk;
  int64_t cb = ir_attr_i(op, "cmp_block", 1), cs = ir_attr_i(op, "cmp_stride", 1);
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
  int64_t init = ir_attr_i(op, "init_blocks", 0), local = ir_attr_i(op, "local_blocks", 0);
  int64_t W = ir_attr_i(op, "window", 1);
  double scale = 1.0 / sqrt((double)d);
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  int64_t fixed = Ks + grp * Ks * B + grp * W + 2 * grp + 2 * grp * d + 16;
  info->scratch_fixed = fixed + 2 * (grp + 1);
  info->scratch_per_t1 = grp + 1;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2),
       KC = INV(e, q, 3), VC = INV(e, q, 4), GT = INV(e, q, 5);
  V scr = argp(e, CG_A_SCRATCH);
  V sel_ = scr, ssc = gepc(e, scr, Ks), wsc = gepc(e, scr, Ks + grp * Ks * B);
  V t1 = argi(e, CG_A_T1);
  V pbuf = gepc(e, scr, fixed);                              /* grp x (t1 + 1) */
  V imp = gep(e, pbuf, MULI(ci(e, grp), ADDI(t1, ci(e, 1)))); /* t1 + 1 */
  V ninf = cf(e, -INFINITY);
  int n = nvecs(e, d);
  V n0 = argi(e, CG_A_N0), n1 = argi(e, CG_A_N1);
  V t = rows_begin(e);
  V qr = rowp(e, &Q, t), gr = rowp(e, &GT, t), orow = rowp(e, &o, t);
  V tp1 = ADDI(t, ci(e, 1));
  V kh = for0(e, n0, n1, 1);
  V koff = MULI(kh, ci(e, d));
  row_ctx vcx = {.w = &VC, .off = koff};
  nsa_sel ns_c = {.grp = grp, .d = d, .cb = cb, .cs = cs, .B = B, .Ks = Ks, .init = init,
                  .local = local, .KC = &KC, .pbuf = pbuf, .imp = imp, .sel_ = sel_};
  V nc, ns = nsa_select(e, &ns_c, t, kh, qr, &nc);
  V qx[MAXCARRY];
  /* The selected and window branches run block by block of keys with
   * the group's heads inside: a block's K rows (then V rows) come from
   * L2 for the first head and from L1 for the others, where a loop over
   * heads outside read them from L2 grp times.  Per head, in scratch: the
   * selected scores [Ks B] and the window's [W], their maxima, then
   * their sums of V rows [d] each (the window's summed 64 rows at a
   * time, else the same sums in the same order as head by head). */
  V ssh = ssc, wsh = wsc, mh = gepc(e, scr, fixed - 16 - 2 * grp * d - 2 * grp),
    osh = gepc(e, scr, fixed - 16 - 2 * grp * d);
  V ow = gepc(e, osh, grp * d);
  blk_ctx bc = {.k = &K, .v = &Vv, .off = koff};
  bc.base = MAXI(SUBI(tp1, ci(e, W)), ci(e, 0));
  V wbase = bc.base, nw = SUBI(tp1, wbase);
  {
    V fill = for0(e, ci(e, 0), ci(e, grp * Ks * B), 1);
    sts(e, ninf, ssh, fill);
    end0(e);
    V h0 = for0(e, ci(e, 0), ci(e, 2 * grp), 1);
    sts(e, ninf, mh, h0);
    end0(e);
    V z = for0(e, ci(e, 0), ci(e, 2 * grp * d), 1);
    sts(e, cf(e, 0), osh, z);
    end0(e);
  }
  for (int br = 0; br < 2; br++) {
    /* scores: selected block s (br 0), or window keys [wb, wb + 64) (br 1) */
    V blk = br ? for0(e, ci(e, 0), nw, 64) : for0(e, ci(e, 0), ns, 1);
    bc.base = br ? ADDI(wbase, blk) : MULI(ldi(e, sel_, blk), ci(e, B));
    V cnt = br ? MINI(ci(e, 64), SUBI(nw, blk)) : MINI(ci(e, B), SUBI(tp1, bc.base));
    V hq = for0(e, ci(e, 0), ci(e, grp), 1);
    load_vecs(e, gep(e, qr, MULI(ADDI(MULI(kh, ci(e, grp)), hq), ci(e, d))), d, qx);
    V at = br ? ADDI(MULI(hq, ci(e, W)), blk) : ADDI(MULI(hq, ci(e, Ks * B)), MULI(blk, ci(e, B)));
    V mat = ADDI(MULI(hq, ci(e, 2)), ci(e, br));
    V m2 = score_rows(e, qx, d, scale, &bc, cnt, gep(e, br ? wsh : ssh, at), lds(e, mh, mat));
    sts(e, m2, mh, mat);
    end0(e);
    end0(e);
  }
  for (int br = 0; br < 2; br++) {
    /* each head's exponentials and 1 / sum (0 for a branch with no key),
     * kept in mh; then the weighted sums of V, block by block */
    {
      V hq = for0(e, ci(e, 0), ci(e, grp), 1);
      V mat = ADDI(MULI(hq, ci(e, 2)), ci(e, br));
      V m = lds(e, mh, mat);
      V none = cmpf(e, "oeq", m, ninf, "f32");
      V sc0 = gep(e, br ? wsh : ssh, MULI(hq, ci(e, br ? W : Ks * B)));
      V sum = exp_inplace(e, sc0, br ? nw : ci(e, Ks * B), sel(e, none, cf(e, 0), m, "f32"));
      sts(e, sel(e, none, cf(e, 0), FDIV(cf(e, 1.0), sum), "f32"), mh, mat);
      end0(e);
    }
    V blk = br ? for0(e, ci(e, 0), nw, 64) : for0(e, ci(e, 0), ns, 1);
    bc.base = br ? ADDI(wbase, blk) : MULI(ldi(e, sel_, blk), ci(e, B));
    V cnt = br ? MINI(ci(e, 64), SUBI(nw, blk)) : MINI(ci(e, B), SUBI(tp1, bc.base));
    V hq = for0(e, ci(e, 0), ci(e, grp), 1);
    V at = br ? ADDI(MULI(hq, ci(e, W)), blk) : ADDI(MULI(hq, ci(e, Ks * B)), MULI(blk, ci(e, B)));
    V orr = gep(e, br ? ow : osh, MULI(hq, ci(e, d)));
    V a2[MAXCARRY];
    load_vecs(e, orr, d, a2);
    accum_rows(e, a2, gep(e, br ? wsh : ssh, at), cnt,
               lds(e, mh, ADDI(MULI(hq, ci(e, 2)), ci(e, br))), blk_vrow, &bc, d);
    store_vecs(e, a2, orr, d);
    end0(e);
    end0(e);
  }
  /* per head: the compressed branch, then the mix */
  V hq = for0(e, ci(e, 0), ci(e, grp), 1);
  V h = ADDI(MULI(kh, ci(e, grp)), hq);
  V zv = cvf(e, 0), ocmp[MAXCARRY], osel[MAXCARRY], owin[MAXCARRY];
  for (int c = 0; c < n; c++) ocmp[c] = zv;
  accum_rows(e, ocmp, gep(e, pbuf, MULI(hq, nc)), nc, cf(e, 1.0), plain_row, &vcx, d);
  load_vecs(e, gep(e, osh, MULI(hq, ci(e, d))), d, osel);
  load_vecs(e, gep(e, ow, MULI(hq, ci(e, d))), d, owin);
  /* mix */
  V g0 = splat(e, lds(e, gr, MULI(h, ci(e, 3))));
  V g1 = splat(e, lds(e, gr, ADDI(MULI(h, ci(e, 3)), ci(e, 1))));
  V g2 = splat(e, lds(e, gr, ADDI(MULI(h, ci(e, 3)), ci(e, 2))));
  V res[MAXCARRY];
  for (int c = 0; c < n; c++)
    res[c] = vfma(e, g0, ocmp[c], vfma(e, g1, osel[c], VMUL(g2, owin[c])));
  store_vecs(e, res, gep(e, orow, MULI(h, ci(e, d))), d);
  end0(e); /* heads of the group */
  end0(e); /* kv heads */
  end0(e); /* rows */
}

bool cg_nsa_amx(const ir_op *op) {
  if (op->code != IR_NSA_ATTENTION) return false;
  int64_t Hq = DIMN(op->in[0], 1), d = DIMN(op->in[0], 2), Hk = DIMN(op->in[1], 1);
  int64_t B = ir_attr_i(op, "block", 1);
  return Hk > 0 && Hq % Hk == 0 && d % 32 == 0 && d <= 256 && B % 32 == 0 &&
         B / 16 * (d / 32) <= 128;
}

/* NSA under bf16 math on AMX or AVX512-BF16 (cg_nsa_amx), by blocks of
 * jt_block_tokens tokens and KV head.  Per token, the f32 kernel's selection
 * (nsa_select: the compressed probabilities of the group's heads, the
 * blocks' importance, the forced and ranked blocks); per (token, query
 * head), a unit, the compressed branch in f32 times its gate into the
 * output row, and the selected blocks into the joint-softmax engine's
 * lists (the group's heads share them).  The engine (jt_run, into rows of
 * scratch) then runs the selected branch, added to the output times its
 * gate / sum, and the window branch: the blocks of B rows that cover each
 * unit's window [t - W + 1, t], each column's keys outside it -inf, added
 * times its gate / sum.  Scratch: the selection, the engine's, the units'
 * rows; then per token of context the compressed probabilities of the
 * group's heads and the blocks' importance (as the f32 kernel). */
static void k_nsa_amx(em *e, const cg_kernel_req *q, cg_kernel_info *info) {
  const ir_op *op = q->op;
  const ir_value *qv = op->in[0], *kv = op->in[1];
  int64_t Hq = DIMN(qv, 1), d = DIMN(qv, 2), Hk = DIMN(kv, 1), G = Hq / Hk;
  int64_t B = ir_attr_i(op, "block", 1), Ks = ir_attr_i(op, "topk", 1);
  int64_t W = ir_attr_i(op, "window", 1);
  int64_t Sw = (W + B - 2) / B + 1, NU = jt_block_tokens(q, G, d) * G, Smax = Ks > Sw ? Ks : Sw;
  info->split = CG_SPLIT_HEADS;
  info->nsplit = Hk;
  view o = OUTV(e, 0), Q = INV(e, q, 0), K = INV(e, q, 1), Vv = INV(e, q, 2),
       KC = INV(e, q, 3), VC = INV(e, q, 4), GT = INV(e, q, 5);
  V scr = scratch64(e);
  V sel_ = scr;
  blk_pairs b;
  jt_ctx c = {.q = q, .b = &b, .Q = &Q, .K = &K, .Vv = &Vv, .o = &o, .G = G, .B = B, .d = d,
              .to_acc = true, .sc = splat(e, cf(e, 1.0 / sqrt((double)d)))};
  int64_t acc_at = jt_scratch(e, &c, scr, AT16(Ks), NU * Smax, NU);
  int64_t fixed = acc_at + NU * d + 16;
  info->scratch_fixed = fixed + 2 * (G + 1) + 16; /* + scratch64's alignment */
  info->scratch_per_t1 = G + 1;
  c.acc = gepc(e, scr, acc_at);
  V t1 = argi(e, CG_A_T1);
  V pbuf = gepc(e, scr, fixed);                            /* G x (t1 + 1) */
  V imp = gep(e, pbuf, MULI(ci(e, G), ADDI(t1, ci(e, 1)))); /* t1 + 1 */
  nsa_sel ns_c = {.grp = G, .d = d, .cb = ir_attr_i(op, "cmp_block", 1),
                  .cs = ir_attr_i(op, "cmp_stride", 1), .B = B, .Ks = Ks,
                  .init = ir_attr_i(op, "init_blocks", 0),
                  .local = ir_attr_i(op, "local_blocks", 0), .KC = &KC, .pbuf = pbuf,
                  .imp = imp, .sel_ = sel_};
  V z = cvf(e, 0);
  int n = nvecs(e, d);
  bp_blocks_begin(e, info, &b, argi(e, CG_A_R1), Ks, c.ix0, c.sch, NU * Smax, NU / G);
  b.g = ci(e, 0);
  V tb = b.tb, te = b.te;
  V kh = for0(e, argi(e, CG_A_N0), argi(e, CG_A_N1), 1);
  V hq0 = MULI(kh, ci(e, G)), koff = MULI(kh, ci(e, d));
  c.tb = tb, c.te = te, c.hq0 = hq0, c.kcol = koff;
  row_ctx vcx = {.w = &VC, .off = koff};
  /* per token the selection; per unit the compressed branch times its
   * gate into the output row, the selected blocks into the lists, and
   * the engine's state */
  {
    V ta = for0(e, tb, te, 1);
    V qr = rowp(e, &Q, ta), gr = rowp(e, &GT, ta), orr = rowp(e, &o, ta);
    V nc, ns = nsa_select(e, &ns_c, ta, kh, qr, &nc);
    V hh = for0(e, ci(e, 0), ci(e, G), 1);
    V h = ADDI(hq0, hh), unit = ADDI(MULI(SUBI(ta, tb), ci(e, G)), hh);
    V ocmp[MAXCARRY];
    for (int i = 0; i < n; i++) ocmp[i] = z;
    accum_rows(e, ocmp, gep(e, pbuf, MULI(hh, nc)), nc, cf(e, 1.0), plain_row, &vcx, d);
    V g0 = splat(e, lds(e, gr, MULI(h, ci(e, 3))));
    for (int i = 0; i < n; i++) ocmp[i] = VMUL(g0, ocmp[i]);
    store_vecs(e, ocmp, gep(e, orr, MULI(h, ci(e, d))), d);
    V k = for0(e, ci(e, 0), ci(e, Ks), 1);
    sti(e, sel(e, cmpi(e, "slt", k, ns), ldi(e, sel_, k), ci(e, -1), "i64"), c.ix0,
        ADDI(MULI(unit, ci(e, Ks)), k));
    end0(e);
    jt_unit_start(e, &c, unit, gep(e, c.acc, MULI(unit, ci(e, d))));
    end0(e);
    end0(e);
  }
  for (int br = 0; br < 2; br++) {
    c.S = br ? Sw : Ks;
    c.W = br ? W : 0;
    b.npair = MULI(SUBI(te, tb), ci(e, G * c.S));
    jt_run(e, &c);
    /* the branch times its gate / sum into the output row; after the
     * selected branch, the window's blocks into the lists and the
     * engine's state reset */
    V ta = for0(e, tb, te, 1);
    V hh = for0(e, ci(e, 0), ci(e, G), 1);
    V h = ADDI(hq0, hh), unit = ADDI(MULI(SUBI(ta, tb), ci(e, G)), hh);
    V orow = gep(e, rowp(e, &o, ta), MULI(h, ci(e, d))), arow = gep(e, c.acc, MULI(unit, ci(e, d)));
    V l = lds(e, c.lu, unit);
    V gate = lds(e, rowp(e, &GT, ta), ADDI(MULI(h, ci(e, 3)), ci(e, 1 + br)));
    V f = splat(e, sel(e, cmpf(e, "ogt", l, cf(e, 0), "f32"), FDIV(gate, l), cf(e, 0), "f32"));
    for (int64_t at = 0; at < d; at += 16)
      stv(e, vfma(e, f, ldv(e, arow, ci(e, at), NULL), ldv(e, orow, ci(e, at), NULL)), orow,
          ci(e, at), NULL);
    if (!br) {
      V lo = MAXI(SUBI(ta, ci(e, W - 1)), ci(e, 0));
      V bl = DIVI(lo, ci(e, B)), bh = DIVI(ta, ci(e, B));
      V k = for0(e, ci(e, 0), ci(e, Sw), 1);
      V blk = ADDI(bl, k);
      sti(e, sel(e, cmpi(e, "sle", blk, bh), blk, ci(e, -1), "i64"), c.ix0,
          ADDI(MULI(unit, ci(e, Sw)), k));
      end0(e);
      jt_unit_start(e, &c, unit, arow);
    }
    end0(e);
    end0(e);
  }
  end0(e); /* kv heads */
  end0(e); /* blocks of tokens */
}

/* ---- small per-row ops in double, as the reference ----------------------- */

static V to_f64(em *e, V x) {
  V v = nv(e);
  out(e, "  %s = arith.extf %s : f32 to f64\n", v.s, x.s);
  return v;
}
static V i_to_f64(em *e, V x) {
  V v = nv(e);
  out(e, "  %s = arith.sitofp %s : i64 to f64\n", v.s, x.s);
  return v;
}
/* Score s (f32) of slot k as f64, plus k * dec where a decay is given. */
static V decayed(em *e, V s, V k, const V *dec) {
  V sd = to_f64(e, s);
  if (!dec) return sd;
  return fbin(e, "arith.addf", sd, fbin(e, "arith.mulf", i_to_f64(e, k), *dec, "f64"), "f64");
}
static V to_f32(em *e, V x) {
  V v = nv(e);
  out(e, "  %s = arith.truncf %s : f64 to f32\n", v.s, x.s);
  return v;
}
static V mathd(em *e, const char *fn, V x) {
  V v = nv(e);
  out(e, "  %s = math.%s %s : f64\n", v.s, fn, x.s);
  return v;
}

/* stick-breaking (kind 0) or softmax (kind 1) over the last axis. */
static void k_weights(em *e, const cg_kernel_req *q, int kind) {
  const ir_op *op = q->op;
  int64_t K = LAST(op->in[0]), nvec = inner(op->in[0]) / K;
  view o = OUTV(e, 0), x = INV(e, q, 0);
  V ninf = cf(e, -INFINITY), zero = cf(e, 0);
  V r = rows_begin(e);
  V src = rowp(e, &x, r), dst = rowp(e, &o, r);
  /* a length_offset N: the token at r scores s - ln((r + 1) / N) once
   * r + 1 > N (the division and the log without fast-math flags, as the
   * reference computes them) */
  int64_t N = kind == 0 ? ir_attr_i(op, "length_offset", 0) : 0;
  V sh = {{0}};
  if (N > 0) {
    V r1 = ADDI(r, ci(e, 1)), ratio = nv(e);
    out(e, "  %s = arith.divf %s, %s : f64\n", ratio.s, i_to_f64(e, r1).s, cd(e, (double)N).s);
    sh = sel(e, cmpi(e, "sgt", r1, ci(e, N)), mathd(e, "log", ratio), cd(e, 0), "f64");
  }
  V v = for0(e, ci(e, 0), ci(e, nvec), 1);
  V base = MULI(v, ci(e, K));
  if (kind == 0) {
    V z = cd(e, 0);
    loop L;
    loop_begin(e, &L, ci(e, 0), ci(e, K), ci(e, 1), 1, &z, "f64");
    V s = lds(e, src, ADDI(base, L.iv));
    V isinf = cmpf(e, "oeq", s, ninf, "f32");
    V sd = to_f64(e, s);
    if (N > 0) {
      V d = nv(e);
      out(e, "  %s = arith.subf %s, %s : f64\n", d.s, sd.s, sh.s);
      sd = d;
    }
    /* softplus(s) = s > 30 ? s : log1p(exp(s)) */
    V sp = sel(e, cmpf(e, "ogt", sd, cd(e, 30), "f64"), sd, mathd(e, "log1p", mathd(e, "exp", sd)),
               "f64");
    V acc = fbin(e, "arith.addf", L.arg[0], sp, "f64");
    V w = to_f32(e, mathd(e, "exp", fbin(e, "arith.subf", sd, acc, "f64")));
    sts(e, sel(e, isinf, zero, w, "f32"), dst, ADDI(base, L.iv));
    V nacc = sel(e, isinf, L.arg[0], acc, "f64");
    loop_end(e, &L, &nacc);
  } else {
    /* a learned decay d (the authors' pos_decay): slot k scores s_k + k d */
    V decv;
    const V *dec = NULL;
    if (op->nin == 2) {
      decv = to_f64(e, lds(e, INV(e, q, 1).seg, ci(e, 0)));
      dec = &decv;
    }
    V dninf = cd(e, -INFINITY);
    loop L;
    loop_begin(e, &L, ci(e, 0), ci(e, K), ci(e, 1), 1, &dninf, "f64");
    V s0 = lds(e, src, ADDI(base, L.iv));
    V s = decayed(e, s0, L.iv, dec);
    if (dec) s = sel(e, cmpf(e, "oeq", s0, ninf, "f32"), dninf, s, "f64");
    V m = nv(e);
    out(e, "  %s = arith.maximumf %s, %s : f64\n", m.s, L.arg[0].s, s.s);
    loop_end(e, &L, &m);
    V mx = L.res[0];
    V z = cd(e, 0);
    loop S;
    loop_begin(e, &S, ci(e, 0), ci(e, K), ci(e, 1), 1, &z, "f64");
    V s2 = lds(e, src, ADDI(base, S.iv));
    V isinf = cmpf(e, "oeq", s2, ninf, "f32");
    V ex = mathd(e, "exp", fbin(e, "arith.subf", decayed(e, s2, S.iv, dec), mx, "f64"));
    V add = sel(e, isinf, z, ex, "f64");
    V acc = fbin(e, "arith.addf", S.arg[0], add, "f64");
    loop_end(e, &S, &acc);
    V allinf = cmpf(e, "oeq", mx, dninf, "f64");
    V k = for0(e, ci(e, 0), ci(e, K), 1);
    V s3 = lds(e, src, ADDI(base, k));
    V isinf3 = cmpf(e, "oeq", s3, ninf, "f32");
    V p = to_f32(e, fbin(e, "arith.divf",
                         mathd(e, "exp", fbin(e, "arith.subf", decayed(e, s3, k, dec), mx, "f64")),
                         S.res[0], "f64"));
    V bad = bin(e, "arith.ori", isinf3, allinf, "i1");
    sts(e, sel(e, bad, zero, p, "f32"), dst, ADDI(base, k));
    end0(e);
  }
  end0(e);
  end0(e);
}

/* ---- the table ---------------------------------------------------------- */

int cg_cpu_supported(const ir_op *op, char *why, size_t size) {
  const char *name = ir_ops[op->code].name;
  switch (op->code) {
  case IR_INPUT: case IR_WEIGHT: case IR_RETURN:
  case IR_LANDMARK_SCORES: case IR_TOPK: case IR_BLOCK_LANDMARK:
  case IR_MOBA_ATTENTION: case IR_LANDMARK_ATTENTION: case IR_NSA_COMPRESS:
  case IR_NSA_ATTENTION:
  case IR_EMBED: case IR_RMSNORM: case IR_LAYERNORM: case IR_LINEAR:
  case IR_SPLIT_HEADS: case IR_MERGE_HEADS: case IR_ROPE: case IR_ADD: case IR_SILU_MUL:
  case IR_BIAS_ADD: case IR_QUANTIZE: case IR_SIGMOID: case IR_CHUNK: case IR_APPEND_ROW: case IR_ROWS:
  case IR_ROW: case IR_ZERO_ROW: case IR_MEAN_ROWS: case IR_STICKBREAK: case IR_SOFTMAX:
    break;
  case IR_ATTENTION:
    if (op->in[0]->type.rank == 3 && !ir_attr_i(op, "causal", 1)) {
      snprintf(why, size, "bidirectional attention over the sequence cannot run incrementally");
      return 0;
    }
    break;
  case IR_CHUNK_ATTENTION:
    break;
  default:
    snprintf(why, size, "the CPU backend does not compile %s yet", name);
    return 0;
  }
  return 1;
}

int cg_cpu_emit(const cg_kernel_req *req, const char *name, char **buf, size_t *len,
                cg_kernel_info *info, char *err, size_t errsize) {
  const ir_op *op = req->op;
  memset(info, 0, sizeof *info);
  info->split = CG_SPLIT_ROWS;
  if (!req->scores && !cg_cpu_supported(op, err, errsize)) return -1;
  em e = {.buf = buf, .len = len, .cap = *buf ? *len + 1 : 0};
  if (*buf) {
    /* keep appending: find the real capacity by reallocating */
    char *p = realloc(*buf, *len + 4096);
    if (!p) {
      snprintf(err, errsize, "out of memory");
      return -1;
    }
    *buf = p;
    e.cap = *len + 4096;
  }
  set_lanes(&e, req->vec_bits / 32);
  e.avx512 = req->vec_bits >= 512;
  e.pf_dense = req->prefetch == CG_PF_DENSE || req->prefetch == CG_PF_DENSE_ATTN;
  e.pf_scan = req->prefetch == CG_PF_DENSE;
  e.wtype = req->wtype;
  e.bf16 = req->bf16;
  if (req->wtype && !req->bf16 && req->prenorm) {
    snprintf(err, errsize, "internal error: 16-bit weights with a folded norm");
    return -1;
  }
  /* head vectors are held in registers */
  int64_t held = 0;
  if (req->scores) held = 0;
  else if (op->code == IR_ATTENTION || op->code == IR_CHUNK_ATTENTION || op->code == IR_ROPE ||
           op->code == IR_MOBA_ATTENTION || op->code == IR_LANDMARK_ATTENTION ||
           op->code == IR_NSA_COMPRESS || op->code == IR_NSA_ATTENTION)
    held = LAST(op->in[0]);
  else if (op->code == IR_LANDMARK_SCORES)
    held = DIMN(op->in[0], 2);
  if (held > (int64_t)MAXCARRY * e.vl) {
    snprintf(err, errsize, "%s with vectors of %lld floats is not compiled for %d-bit vectors "
             "(at most %d)", req->scores ? "retrieval" : ir_ops[op->code].name,
             (long long)held, req->vec_bits, MAXCARRY * e.vl);
    return -1;
  }
  out(&e, "func.func @%s(%%args: !llvm.ptr) attributes {llvm.linkage = #llvm.linkage<external>} {\n",
      name);
  if (req->scores) {
    int64_t G = DIMN(req->scores->in[0], 1), dr = DIMN(req->scores->in[0], 2);
    if (G * ((dr + e.vl - 1) / e.vl) > MAXCARRY) {
      snprintf(err, errsize, "retrieval with %lld groups of width %lld is not compiled for "
               "%d-bit vectors (at most %d vectors of queries)", (long long)G, (long long)dr,
               req->vec_bits, MAXCARRY);
      return -1;
    }
    k_retrieve(&e, req, info, name);
  } else {
    if (req->fused) op = NULL; /* an add or a silu_mul that ends a GEMM */
    switch (op ? op->code : IR_LINEAR) {
    case IR_EMBED: k_embed(&e, req); break;
    case IR_RMSNORM: k_norm(&e, req, false); break;
    case IR_LAYERNORM: k_norm(&e, req, true); break;
    case IR_LINEAR: k_linear(&e, req, info, name); break;
    case IR_ADD: k_eltwise(&e, req, 0); break;
    case IR_BIAS_ADD: k_bias_add(&e, req); break;
    case IR_SILU_MUL: k_eltwise(&e, req, 1); break;
    case IR_SIGMOID: k_eltwise(&e, req, 2); break;
    case IR_ROPE: k_rope(&e, req, info); info->scratch_fixed = 2 * LAST(op->in[0]) + 16; break;
    case IR_ATTENTION:
      /* under bf16 math on AMX or AVX512-BF16, windowed with G a divisor
       * of 16: tiles;
       * else rank 3 (a sequence) with >= 4 query heads per KV head and a
       * head width of whole vectors: the heads packed in lanes */
      if (cg_bf16_tiles(req->bf16) && cg_attention_amx(op) && e.vl == 16) {
        if (op->in[0]->type.rank == 4) k_attention_rows_amx(&e, req, info);
        else k_attention_amx(&e, req, info);
      }
      else if (cg_attention_packed(op, req->vec_bits))
        k_attention_packed(&e, req, info);
      else
        k_attention(&e, req, info);
      break;
    case IR_CHUNK_ATTENTION:
      /* pack the query heads of a KV head into vector lanes when there
       * are enough of them to fill a good part of a vector */
      if (cg_bf16_tiles(req->bf16) && cg_chunk_attention_amx(op) && e.vl == 16)
        k_chunk_attention_amx(&e, req, info);
      else if (cg_bf16_tiles(req->bf16) && cg_chunk_attention_joint_amx(op) && e.vl == 16)
        k_chunk_attention_joint_amx(&e, req, info);
      else if (cg_chunk_attention_packed(op))
        k_chunk_attention_packed(&e, req, info);
      else k_chunk_attention(&e, req, info);
      break;
    case IR_MEAN_ROWS: k_mean_rows(&e, req); break;
    case IR_LANDMARK_SCORES: k_landmark_scores(&e, req); break;
    case IR_TOPK: k_topk(&e, req, info); break;
    case IR_BLOCK_LANDMARK: k_block_landmark(&e, req); break;
    case IR_MOBA_ATTENTION:
      if (cg_bf16_tiles(req->bf16) && cg_moba_amx(op) && e.vl == 16) k_moba_amx(&e, req, info);
      else k_moba(&e, req, info);
      break;
    case IR_LANDMARK_ATTENTION:
      if (cg_bf16_tiles(req->bf16) && cg_landmark_attention_amx(op) && e.vl == 16)
        k_landmark_attention_amx(&e, req, info);
      else
        k_landmark_attention(&e, req, info);
      break;
    case IR_NSA_COMPRESS: k_nsa_compress(&e, req); break;
    case IR_NSA_ATTENTION:
      if (cg_bf16_tiles(req->bf16) && cg_nsa_amx(op) && e.vl == 16) k_nsa_amx(&e, req, info);
      else k_nsa_attention(&e, req, info);
      break;
    case IR_STICKBREAK: k_weights(&e, req, 0); break;
    case IR_SOFTMAX: k_weights(&e, req, 1); break;
    default: k_copy(&e, req, info); break;
    }
  }
  out(&e, "  return\n}\n");
  if (e.bug) {
    snprintf(err, errsize, "internal error: %s", e.bug);
    return -1;
  }
  if (e.oom) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  return 0;
}
