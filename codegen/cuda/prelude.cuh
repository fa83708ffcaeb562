// prelude.cuh - the device code every generated CUDA kernel instantiates.
//
// codegen/cuda/emit.c writes, per kernel, one `extern "C" __global__`
// function that calls one of the templates below with the kernel's
// constants as template arguments (widths, head counts, chunk size, top-k,
// how each input is held), so NVRTC compiles code specialized on them.
// The generator puts the slot numbers of codegen/cpu/kernels.h in front of
// this text as HS_A_* / HS_V_* macros, so the two cannot drift.
//
// The same text compiles for the host under the emulator (emu.h, HS_EMU):
// it must stay within what emu.h provides.
//
// Layout (docs/runtime.md, "Tensor layout"): a kernel receives hs_args, the
// runtime's slot array; each tensor is a view: rows of the current segment
// (seg, seg_r0, stride) and, for earlier rows, a ring or a page table of
// f32 rows.  Kernels compute output rows [r0, r1): one block (or a row of
// blocks, blockIdx.y) per output row, blockIdx.x = r - r0.

#ifndef HS_EMU
#define HS_INLINE __device__ __forceinline__
#else
#define HS_INLINE static inline
#endif

typedef long long hs_i64;

struct hs_args {
  hs_i64 s[HS_NSLOTS];
};

// A batched launch's parameter: the slots of up to HS_BATCH sessions.
struct hs_batch {
  hs_args s[HS_BATCH];
};

enum { HS_H_WEIGHT = 0, HS_H_SEG = 1, HS_H_RING = 2, HS_H_PAGES = 3 };

namespace hs {

HS_INLINE float inf() { return __int_as_float(0x7f800000); }

// Row r of the tensor whose view starts at slot `base`, held as H with
// RE floats per row in its history.
template <int H, hs_i64 RE>
HS_INLINE const float *row(const hs_args &a, int base, hs_i64 r) {
  const float *seg = (const float *)a.s[base + HS_V_SEG];
  if (H == HS_H_WEIGHT) return seg;
  hs_i64 r0 = a.s[base + HS_V_R0];
  if (H == HS_H_SEG || r >= r0) return seg + (r - r0) * a.s[base + HS_V_STRIDE];
  if (H == HS_H_RING) {
    // rows and ring sizes stay below 2^31 (a session holds at most 2^31 - 1
    // positions): a 32-bit remainder, not the 64-bit division routine
    unsigned keep = (unsigned)a.s[base + HS_V_KEEP];
    return (const float *)a.s[base + HS_V_HIST] + (hs_i64)((unsigned)r % keep) * RE;
  }
  return ((const float *const *)a.s[base + HS_V_HIST])[r / HS_PAGE_ROWS] +
         (r % HS_PAGE_ROWS) * RE;
}

// Row r of a value whose history pages hold bf16 rows (RE of them per
// row): the bf16 row when r is history, NULL when it is a row of the
// current segment (f32: read it with row()).
template <int H, hs_i64 RE>
HS_INLINE const unsigned short *hist16_row(const hs_args &a, int base, hs_i64 r) {
  static_assert(H == HS_H_PAGES, "bf16 rows are history pages");
  if (r >= a.s[base + HS_V_R0]) return nullptr;
  return ((const unsigned short *const *)a.s[base + HS_V_HIST])[r / HS_PAGE_ROWS] +
         (r % HS_PAGE_ROWS) * RE;
}

HS_INLINE float *out_row(const hs_args &a, int base, hs_i64 r) {
  return (float *)a.s[base + HS_V_SEG] + (r - a.s[base + HS_V_R0]) * a.s[base + HS_V_STRIDE];
}

HS_INLINE hs_i64 out_elems(const hs_args &a) { return a.s[HS_A_OUT0 + HS_V_STRIDE]; }

HS_INLINE hs_i64 my_row(const hs_args &a) { return a.s[HS_A_R0] + (hs_i64)blockIdx.x; }

// Per-block scratch in global memory: `per` floats for each block of the
// launch (the runtime sizes it from the kernel's scratch figures).
HS_INLINE float *scratch(const hs_args &a, hs_i64 per) {
  hs_i64 b = (hs_i64)blockIdx.y * gridDim.x + blockIdx.x;
  return (float *)a.s[HS_A_SCRATCH] + b * per;
}

// ---- block reductions (NT threads, a multiple of 32) ----------------------

template <int NT>
HS_INLINE float block_sum(float v, float *red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) red[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < NT / 32 ? red[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) red[32] = v;
  }
  __syncthreads();
  v = red[32];
  __syncthreads();
  return v;
}

template <int NT>
HS_INLINE float block_max(float v, float *red) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) red[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < NT / 32 ? red[lane] : -inf();
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) red[32] = v;
  }
  __syncthreads();
  v = red[32];
  __syncthreads();
  return v;
}

HS_INLINE float dot(const float *a, const float *b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s = fmaf(a[i], b[i], s);
  return s;
}

// 16 and 8 bytes as one access (ld/st .v4 / .v2 on the device).
struct __align__(16) hs_f4 {
  float x, y, z, w;
};
struct __align__(8) hs_u2 {
  unsigned x, y;
};

// dot() of N <= 64 floats with the loads 16 bytes at a time where both rows are
// 16-byte aligned: every load issued before the sums, which keep dot()'s
// order (the same bits).
template <hs_i64 N>
HS_INLINE float dot_n(const float *a, const float *b) {
  if (N % 4 != 0 || N > 64 || (((unsigned long long)a | (unsigned long long)b) & 15))
    return dot(a, b, (int)N);
  constexpr int V = N % 4 == 0 && N <= 64 ? (int)(N / 4) : 1;
  hs_f4 x[V], y[V];
  for (int i = 0; i < V; i++) {
    x[i] = ((const hs_f4 *)a)[i];
    y[i] = ((const hs_f4 *)b)[i];
  }
  float s = 0.0f;
  for (int i = 0; i < V; i++) {
    s = fmaf(x[i].x, y[i].x, s);
    s = fmaf(x[i].y, y[i].y, s);
    s = fmaf(x[i].z, y[i].z, s);
    s = fmaf(x[i].w, y[i].w, s);
  }
  return s;
}

// ---- per-row ops ------------------------------------------------------------

// embed: row t of the table at the token id (checked by the runtime).
template <int NT, int H0, hs_i64 RE0, hs_i64 D>
HS_INLINE void embed(const hs_args &a) {
  hs_i64 t = my_row(a);
  int tok = __float_as_int(row<H0, RE0>(a, HS_IN(0), t)[0]);
  const float *tab = (const float *)a.s[HS_IN(1) + HS_V_SEG] + (hs_i64)tok * D;
  float *o = out_row(a, HS_A_OUT0, t);
  for (hs_i64 i = threadIdx.x; i < D; i += NT) o[i] = tab[i];
}

// rmsnorm / layernorm over each D-vector of the row; the row's vectors are
// shared among gridDim.y blocks (blockIdx.y, blockIdx.y + gridDim.y, ...).
template <int NT, bool LAYER, int H0, hs_i64 RE0, hs_i64 D>
HS_INLINE void norm(const hs_args &a, float eps) {
  __shared__ float red[33];
  hs_i64 r = my_row(a);
  const float *x = row<H0, RE0>(a, HS_IN(0), r);
  const float *g = (const float *)a.s[HS_IN(1) + HS_V_SEG];
  float *o = out_row(a, HS_A_OUT0, r);
  hs_i64 nv = out_elems(a) / D;
  for (hs_i64 v = blockIdx.y; v < nv; v += gridDim.y) {
    const float *xv = x + v * D;
    float mean = 0.0f;
    if (LAYER) {
      float s = 0.0f;
      for (hs_i64 i = threadIdx.x; i < D; i += NT) s += xv[i];
      mean = block_sum<NT>(s, red) / (float)D;
    }
    float sq = 0.0f;
    for (hs_i64 i = threadIdx.x; i < D; i += NT) {
      float c = xv[i] - mean;
      sq = fmaf(c, c, sq);
    }
    float inv = 1.0f / sqrtf(block_sum<NT>(sq, red) / (float)D + eps);
    for (hs_i64 i = threadIdx.x; i < D; i += NT) o[v * D + i] = (xv[i] - mean) * inv * g[i];
  }
}

// Elementwise over the row: KIND 0 copy, 1 add, 2 silu(a) * b, 3 sigmoid,
// 4 + bias[i % O].  gridDim.y blocks share a row (a chunk's row of an
// encoder holds P tokens' values).
template <int NT, int KIND, int H0, hs_i64 RE0, int H1, hs_i64 RE1, hs_i64 O>
HS_INLINE void eltwise(const hs_args &a) {
  hs_i64 r = my_row(a);
  const float *x = row<H0, RE0>(a, HS_IN(0), r);
  const float *y = KIND == 1 || KIND == 2 ? row<H1, RE1>(a, HS_IN(1), r)
                   : KIND == 4            ? (const float *)a.s[HS_IN(1) + HS_V_SEG]
                                          : x;
  float *o = out_row(a, HS_A_OUT0, r);
  hs_i64 n = out_elems(a);
  for (hs_i64 i = (hs_i64)blockIdx.y * NT + threadIdx.x; i < n; i += (hs_i64)NT * gridDim.y) {
    float v = x[i];
    if (KIND == 1) v = v + y[i];
    if (KIND == 2) v = v / (1.0f + expf(-v)) * y[i];
    if (KIND == 3) v = 1.0f / (1.0f + expf(-v));
    if (KIND == 4) v = v + y[i % O];
    o[i] = v;
  }
}

// Rotary embedding, "rotate half"; the angle in double, as the reference
// computes it (positions reach 2^31).  RANK 3: [L, H, d], the position is
// pos_mul * r + pos_add; RANK 4: [C, P, H, d], the in-chunk index.
template <int NT, int RANK, int H0, hs_i64 RE0, hs_i64 d, hs_i64 P, hs_i64 MUL, hs_i64 ADD>
HS_INLINE void rope(const hs_args &a, double theta) {
  hs_i64 r = my_row(a);
  const float *x = row<H0, RE0>(a, HS_IN(0), r);
  float *o = out_row(a, HS_A_OUT0, r);
  const hs_i64 half = d / 2;
  hs_i64 nvec = out_elems(a) / d, H = nvec / P;
  for (hs_i64 w = (hs_i64)blockIdx.y * NT + threadIdx.x; w < nvec * half;
       w += (hs_i64)NT * gridDim.y) {
    hs_i64 k = w / half, i = w % half;
    hs_i64 pos = RANK == 3 ? r * MUL + ADD : (k / H) % P;
    double ang = (double)pos * pow(theta, -2.0 * (double)i / (double)d);
    float c = (float)cos(ang), s = (float)sin(ang);
    float x0 = x[k * d + i], x1 = x[k * d + i + half];
    o[k * d + i] = x0 * c - x1 * s;
    o[k * d + i + half] = x1 * c + x0 * s;
  }
}

// ---- chunk rows ---------------------------------------------------------

// KIND 0 chunk: [L, D] -> [C, S, D]; 1 append_row (the extra row, a
// weight, last); 2 rows [begin, begin + n); 3 row `at`; 4 zero_row `at`;
// 5 mean_rows over P rows; 6 block_landmark: mean of S rows + weight.
template <int NT, int KIND, int H0, hs_i64 RE0, hs_i64 S, hs_i64 D, hs_i64 AT>
HS_INLINE void chunk_rows(const hs_args &a) {
  hs_i64 c = my_row(a);
  float *o = out_row(a, HS_A_OUT0, c);
  hs_i64 n = out_elems(a);
  if (KIND == 0) {
    for (hs_i64 i = threadIdx.x; i < S * D; i += NT)
      o[i] = row<H0, RE0>(a, HS_IN(0), c * S + i / D)[i % D];
  } else if (KIND == 6) {
    const float *e = (const float *)a.s[HS_IN(1) + HS_V_SEG];
    for (hs_i64 i = threadIdx.x; i < D; i += NT) {
      float s = 0.0f;
      for (hs_i64 j = 0; j < S; j++) s += row<H0, RE0>(a, HS_IN(0), c * S + j)[i];
      o[i] = s / (float)S + e[i];
    }
  } else {
    const float *x = row<H0, RE0>(a, HS_IN(0), c);
    if (KIND == 1) {
      const float *e = (const float *)a.s[HS_IN(1) + HS_V_SEG];
      for (hs_i64 i = threadIdx.x; i < n; i += NT) o[i] = i < n - D ? x[i] : e[i - (n - D)];
    } else if (KIND == 2) {
      for (hs_i64 i = threadIdx.x; i < n; i += NT) o[i] = x[AT * D + i];
    } else if (KIND == 3) {
      for (hs_i64 i = threadIdx.x; i < D; i += NT) o[i] = x[AT * D + i];
    } else if (KIND == 4) {
      for (hs_i64 i = threadIdx.x; i < n; i += NT)
        o[i] = i >= AT * D && i < AT * D + D ? 0.0f : x[i];
    } else if (KIND == 5) {
      for (hs_i64 i = threadIdx.x; i < D; i += NT) {
        float s = 0.0f;
        for (hs_i64 j = 0; j < S; j++) s += x[j * D + i];
        o[i] = s / (float)S;
      }
    }
  }
}

// stickbreak (KIND 0) or softmax with an optional per-slot decay (KIND 1,
// DECAY: a weight scalar) over each K-vector of the row; one thread per
// vector.  LO > 0 (stickbreak's length_offset): the row at position t
// scores s - ln((t + 1) / LO) once t + 1 > LO.
template <int NT, int KIND, bool DECAY, int H0, hs_i64 RE0, hs_i64 K, hs_i64 LO>
HS_INLINE void slot_weights(const hs_args &a) {
  hs_i64 t = my_row(a);
  float sh = LO > 0 && t + 1 > LO ? (float)log((double)(t + 1) / (double)LO) : 0.0f;
  const float *s = row<H0, RE0>(a, HS_IN(0), t);
  float *w = out_row(a, HS_A_OUT0, t);
  float dec = DECAY ? ((const float *)a.s[HS_IN(1) + HS_V_SEG])[0] : 0.0f;
  hs_i64 nv = out_elems(a) / K;
  for (hs_i64 v = threadIdx.x; v < nv; v += NT) {
    const float *x = s + v * K;
    float *y = w + v * K;
    if (KIND == 0) {
      // w_k = exp(s_k - sum_{j<=k} softplus(s_j)); empty slots 0
      float acc = 0.0f;
      for (hs_i64 k = 0; k < K; k++) {
        float sk = x[k] - sh;
        if (sk == -inf()) {
          y[k] = 0.0f;
          continue;
        }
        acc += sk > 30.0f ? sk : log1pf(expf(sk));
        y[k] = expf(sk - acc);
      }
    } else {
      float m = -inf(), sum = 0.0f;
      for (hs_i64 k = 0; k < K; k++)
        if (x[k] != -inf() && x[k] + k * dec > m) m = x[k] + k * dec;
      for (hs_i64 k = 0; k < K; k++) sum += x[k] == -inf() ? 0.0f : expf(x[k] + k * dec - m);
      for (hs_i64 k = 0; k < K; k++)
        y[k] = m == -inf() || x[k] == -inf() ? 0.0f : expf(x[k] + k * dec - m) / sum;
    }
  }
}

// ---- linear -----------------------------------------------------------------

// C[m, o] = sum_i X[m, i] W[o, i], with W stored transposed, Wt[i][o]
// (the runtime transposes it once: a warp then reads 32 consecutive
// outputs' weights).  X's logical rows are the V vectors of I floats of
// each segment row.  BM x 64 output tiles (BM = 32, 64 or 128: hsac tune's
// choice), 16 x 16 threads of BM/16 x 4 each, 16-deep slices of X and Wt
// staged in shared memory.  Every output is one fmaf chain over i = 0 ..
// I-1 whatever the tile, so the decode version below gives the same bits.
// blockIdx.x: tiles of rows, blockIdx.y: tiles of columns.
template <int BM, int H0, hs_i64 RE0, hs_i64 I, hs_i64 O>
HS_INLINE void linear(const hs_args &a) {
  static_assert(BM % 16 == 0, "tile rows: a multiple of 16");
  constexpr int TM = BM / 16;
  __shared__ float xs[16][BM + 1];
  __shared__ float ws[16][64 + 1];
  const float *Wt = (const float *)a.s[HS_IN(1) + HS_V_SEG];
  hs_i64 V = out_elems(a) / O;
  hs_i64 M = (a.s[HS_A_R1] - a.s[HS_A_R0]) * V;
  hs_i64 m0 = (hs_i64)blockIdx.x * BM, o0 = (hs_i64)blockIdx.y * 64;
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  float acc[TM][4];
  for (int i = 0; i < TM; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (hs_i64 k0 = 0; k0 < I; k0 += 16) {
    for (int e = threadIdx.x; e < BM * 16; e += 256) {
      int mm = e / 16, kk = e % 16; /* consecutive threads: consecutive i */
      hs_i64 m = m0 + mm, k = k0 + kk;
      xs[kk][mm] = m < M && k < I
                       ? row<H0, RE0>(a, HS_IN(0), a.s[HS_A_R0] + m / V)[(m % V) * I + k]
                       : 0.0f;
    }
    for (int e = threadIdx.x; e < 64 * 16; e += 256) {
      int oo = e % 64, kw = e / 64; /* consecutive threads: consecutive o */
      ws[kw][oo] = o0 + oo < O && k0 + kw < I ? Wt[(k0 + kw) * O + o0 + oo] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < 16 && k0 + kk < I; kk++) {
      float xr[TM], wr[4];
      for (int i = 0; i < TM; i++) xr[i] = xs[kk][ty * TM + i];
      for (int j = 0; j < 4; j++) wr[j] = ws[kk][tx * 4 + j];
      for (int i = 0; i < TM; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(xr[i], wr[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < TM; i++) {
    hs_i64 m = m0 + ty * TM + i;
    if (m >= M) continue;
    float *o = out_row(a, HS_A_OUT0, a.s[HS_A_R0] + m / V) + (m % V) * O;
    for (int j = 0; j < 4; j++) {
      hs_i64 c = o0 + tx * 4 + j;
      if (c < O) o[c] = acc[i][j];
    }
  }
}

// ---- tensor cores (sm_80 and later): bf16 inputs, f32 accumulation --------

// f32 -> bf16 bits, rounded to nearest even (as util/half.c's ut_f32_to_bf16).
HS_INLINE unsigned short bf16_bits(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
HS_INLINE float bf16_round(float f) { return __uint_as_float((unsigned)bf16_bits(f) << 16); }
HS_INLINE unsigned bf16_pack(float lo, float hi) {
  return (unsigned)bf16_bits(lo) | ((unsigned)bf16_bits(hi) << 16);
}

// d += A B for a 16 x 16 (A) by 16 x 8 (B) tile of the warp.
HS_INLINE void mma16816(float d[4], const unsigned a[4], const unsigned b[2]) {
#ifdef HS_EMU
  hs_emu_mma_bf16_16816(d, a, b);
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
               "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

#ifndef HS_EMU
// A shared-memory address for ldmatrix.  (NVRTC's __cvta_generic_to_shared
// made ptxas spill in linear_mma on sm_80; the conversion written in PTX
// does not.)
HS_INLINE unsigned smem_addr(const void *p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
#endif

// ldmatrix: 4 (or 2) 8 x 8 matrices of b16 from shared memory, lanes 8i ..
// 8i+7 giving the addresses of matrix i's rows (16-byte aligned).
HS_INLINE void ldsm_x4(unsigned r[4], const unsigned short *row) {
#ifdef HS_EMU
  hs_emu_ldmatrix(r, 4, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
#endif
}
HS_INLINE void ldsm_x2(unsigned r[2], const unsigned short *row) {
#ifdef HS_EMU
  hs_emu_ldmatrix(r, 2, row);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(row)));
#endif
}

// ldmatrix .trans: the same matrices, each transposed on the way.
HS_INLINE void ldsm_x2_t(unsigned r[2], const unsigned short *row) {
#ifdef HS_EMU
  hs_emu_ldmatrix_t(r, 2, row, true);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(row)));
#endif
}

// cp.async (sm_80): 16 bytes from global to shared memory without passing
// through registers, completed by cp_async_wait; the emulator copies at
// once.  Both addresses 16-byte aligned.
HS_INLINE void cp_async16(void *smem, const void *gmem) {
#ifdef HS_EMU
  memcpy(smem, gmem, 16);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)),
               "l"(gmem));
#endif
}
HS_INLINE void cp_async_commit() {
#ifndef HS_EMU
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most N of the committed groups are still in flight.
template <int N>
HS_INLINE void cp_async_wait() {
#ifndef HS_EMU
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// The lane's A fragment of the 16 x 16 tile at p (row-major, LD halves per
// row) and B fragment of the 16 (k) x 8 (n) tile stored n-major at p ([n][k],
// LD halves per n), as the PTX ISA lays them out for m16n8k16, loaded with
// ldmatrix: A's four 8 x 8 quarters are rows 0-7 / 8-15 by columns 0-7 /
// 8-15 (a[0] .. a[3]); B's two are columns k 0-7 and 8-15.  LD * 2 bytes
// must be a multiple of 16 and p 16-byte aligned.
template <int LD>
HS_INLINE void frag_a(unsigned r[4], const unsigned short *p) {
  static_assert(LD % 8 == 0, "ldmatrix rows must be 16-byte aligned");
  int l = threadIdx.x & 31;
  ldsm_x4(r, p + ((l & 7) + 8 * ((l >> 3) & 1)) * LD + 8 * (l >> 4));
}
template <int LD>
HS_INLINE void frag_b(unsigned r[2], const unsigned short *p) {
  static_assert(LD % 8 == 0, "ldmatrix rows must be 16-byte aligned");
  int l = threadIdx.x & 31;
  ldsm_x2(r, p + (l & 7) * LD + 8 * ((l >> 3) & 1));
}
// The same B fragment from the tile stored k-major at p ([k][n], LD halves
// per k), through ldmatrix .trans: its matrices are rows k 0-7 and 8-15.
template <int LD>
HS_INLINE void frag_b_kn(unsigned r[2], const unsigned short *p) {
  static_assert(LD % 8 == 0, "ldmatrix rows must be 16-byte aligned");
  int l = threadIdx.x & 31;
  ldsm_x2_t(r, p + (l & 15) * LD);
}

// linear on tensor cores: Wt held in bf16 in device memory (rounded once,
// at load: half the bytes of f32), X rounded to bf16 as it is staged in
// shared memory, f32 accumulation.  WM x WN warps (hsac tune's choice; 2 x
// 2 by default), each 32 x 32 of a (32 WM) x (32 WN) output tile: 2 x 4 mma
// tiles per 16-deep step, two steps per 32-deep slice (one barrier pair per
// 16 mma of a warp).  Two stages: while the warps multiply slice k, slice
// k + 32 is staged into the other buffers, Wt's rows of the tile by
// cp.async straight from global memory ([k][n], read through ldmatrix
// .trans; 16-byte copies where O is a multiple of 8 and the copy is within
// the matrix, element loads elsewhere), X by 16-byte loads (4 inputs of a
// row; element loads at the end of a row or where the row is not 16-byte
// aligned) from row pointers each thread finds once.  Every output sums its
// products in the same order (k = 0, 16, 32, ...) whatever the tile.
template <int WM, int WN, int H0, hs_i64 RE0, hs_i64 I, hs_i64 O>
HS_INLINE void linear_mma(const hs_args &a) {
  constexpr int BK = 32, LD = BK + 8, BM = 32 * WM, BN = 32 * WN, NTH = 32 * WM * WN;
  constexpr int LDW = BN + 8, QR = BK / 4;   /* 16-byte pieces of a row's slice */
  constexpr int XPT = BM * QR / NTH;          /* a thread's X rows */
  static_assert(NTH % QR == 0 && BM * QR % NTH == 0, "each thread stages XPT whole pieces");
  __shared__ __align__(16) unsigned short xs[2][BM * LD];
  __shared__ __align__(16) unsigned short ws[2][BK * LDW];
  const unsigned short *Wt = (const unsigned short *)a.s[HS_IN(1) + HS_V_SEG];
  hs_i64 V = out_elems(a) / O;
  hs_i64 M = (a.s[HS_A_R1] - a.s[HS_A_R0]) * V;
  hs_i64 m0 = (hs_i64)blockIdx.x * BM, o0 = (hs_i64)blockIdx.y * BN;
  int w = threadIdx.x >> 5, wm = (w / WN) * 32, wn = (w % WN) * 32;
  /* the thread's pieces: rows threadIdx.x / QR + j NTH / QR of the tile,
     inputs kq .. kq + 3 of each slice */
  const int kq = (threadIdx.x % QR) * 4;
  const float *xp[XPT];
  for (int j = 0; j < XPT; j++) {
    int mm = threadIdx.x / QR + j * (NTH / QR);
    hs_i64 m = m0 + mm;
    xp[j] = m < M ? row<H0, RE0>(a, HS_IN(0), a.s[HS_A_R0] + m / V) + (m % V) * I : nullptr;
  }
  auto stage = [&](int b, hs_i64 k0) {
    for (int e = threadIdx.x; e < BK * (BN / 8); e += NTH) {
      int kk = e / (BN / 8), c = (e % (BN / 8)) * 8;
      hs_i64 k = k0 + kk, o = o0 + c;
      unsigned short *dst = &ws[b][kk * LDW + c];
      if (O % 8 == 0 && k < I && o + 8 <= O) {
        cp_async16(dst, Wt + k * O + o);
      } else {
        for (int j = 0; j < 8; j++) dst[j] = k < I && o + j < O ? Wt[k * O + o + j] : 0;
      }
    }
    cp_async_commit();
    hs_i64 k = k0 + kq;
    for (int j = 0; j < XPT; j++) {
      int mm = threadIdx.x / QR + j * (NTH / QR);
      const float *p = xp[j];
      hs_f4 v;
      if (p && k + 4 <= I && ((unsigned long long)(p + k) & 15) == 0) {
        v = *(const hs_f4 *)(p + k);
      } else {
        v.x = p && k < I ? p[k] : 0.0f;
        v.y = p && k + 1 < I ? p[k + 1] : 0.0f;
        v.z = p && k + 2 < I ? p[k + 2] : 0.0f;
        v.w = p && k + 3 < I ? p[k + 3] : 0.0f;
      }
      *(hs_u2 *)&xs[b][mm * LD + kq] = hs_u2{bf16_pack(v.x, v.y), bf16_pack(v.z, v.w)};
    }
  };
  float acc[2][4][4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int c = 0; c < 4; c++) acc[i][j][c] = 0.0f;
  stage(0, 0);
  int cur = 0;
  for (hs_i64 k0 = 0; k0 < I; k0 += BK, cur ^= 1) {
    if (k0 + BK < I) {
      stage(cur ^ 1, k0 + BK);
      cp_async_wait<1>(); /* this slice's copies are done, the next's may not be */
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    for (int ks = 0; ks < BK; ks += 16) {
      if (k0 + ks >= I) break; /* past the end: zeros, skipped (the same sums) */
      unsigned af[2][4], bfr[4][2];
      for (int i = 0; i < 2; i++) frag_a<LD>(af[i], xs[cur] + (wm + 16 * i) * LD + ks);
      for (int j = 0; j < 4; j++) frag_b_kn<LDW>(bfr[j], ws[cur] + ks * LDW + wn + 8 * j);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) mma16816(acc[i][j], af[i], bfr[j]);
    }
    __syncthreads();
  }
  int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
  for (int i = 0; i < 2; i++)
    for (int hlf = 0; hlf < 2; hlf++) {
      hs_i64 m = m0 + wm + 16 * i + g + 8 * hlf;
      if (m >= M) continue;
      float *o = out_row(a, HS_A_OUT0, a.s[HS_A_R0] + m / V) + (m % V) * O;
      for (int j = 0; j < 4; j++)
        for (int c = 0; c < 2; c++) {
          hs_i64 col = o0 + wn + 8 * j + 2 * t + c;
          if (col < O) o[col] = acc[i][j][2 * hlf + c];
        }
    }
}

// s + x Wt[at]: f32, or with BF16 the bf16 weight and x rounded as
// linear_mma rounds it (an exact product, an f32 sum).
template <bool BF16>
HS_INLINE float gemv_fma(float x, const float *Wt, hs_i64 at, float s) {
  if (!BF16) return fmaf(x, Wt[at], s);
  unsigned w = (unsigned)((const unsigned short *)Wt)[at] << 16;
  return fmaf(bf16_round(x), __uint_as_float(w), s);
}

// The decode version of linear and linear_mma (one segment row): a thread
// per output, one fmaf chain over i as the f32 GEMM's (so decode gives its
// bits); with BF16 the weights are linear_mma's bf16 ones and the inputs
// rounded as it rounds them (exact products, f32 sums).  A warp reads 32 consecutive weights of Wt
// per step.  blockIdx.x: groups of NT outputs of the V vectors.
template <int NT, bool BF16, int H0, hs_i64 RE0, hs_i64 I, hs_i64 O>
HS_INLINE void gemv(const hs_args &a) {
  const float *Wt = (const float *)a.s[HS_IN(1) + HS_V_SEG]; /* BF16: bf16 weights */
  hs_i64 V = out_elems(a) / O, r = a.s[HS_A_R0];
  hs_i64 g = (hs_i64)blockIdx.x * NT + threadIdx.x;
  if (g >= V * O) return;
  hs_i64 v = g / O, o = g % O;
  const float *x = row<H0, RE0>(a, HS_IN(0), r) + v * I;
  float s = 0.0f;
  for (hs_i64 i = 0; i < I; i++) s = gemv_fma<BF16>(x[i], Wt, i * O + o, s);
  out_row(a, HS_A_OUT0, r)[v * O + o] = s;
}

// The same GEMV split over the inputs, for decode steps whose outputs are
// too few to fill the GPU with a thread each (1024 outputs: 8 blocks of
// 128): a block of NW warps per 32 outputs (a lane per output, reading 32
// consecutive weights of Wt per input), warp w summing its slice of the I
// inputs in one fmaf chain, the NW partial sums then added in warp order.
// Not prefill's bits (the sums' order differs).  blockIdx.x: groups of 32
// outputs of the V vectors.
template <int NW, bool BF16, int H0, hs_i64 RE0, hs_i64 I, hs_i64 O>
HS_INLINE void gemv_split(const hs_args &a) {
  __shared__ float part[NW][32];
  const float *Wt = (const float *)a.s[HS_IN(1) + HS_V_SEG]; /* BF16: bf16 weights */
  hs_i64 V = out_elems(a) / O, r = a.s[HS_A_R0];
  int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  hs_i64 g = (hs_i64)blockIdx.x * 32 + l;
  bool ok = g < V * O;
  hs_i64 v = ok ? g / O : 0, o = ok ? g % O : 0;
  constexpr hs_i64 PER = (I + NW - 1) / NW;
  hs_i64 i0 = w * PER, i1 = i0 + PER < I ? i0 + PER : I;
  float s = 0.0f;
  if (ok) {
    const float *x = row<H0, RE0>(a, HS_IN(0), r) + v * I;
    for (hs_i64 i = i0; i < i1; i++) s = gemv_fma<BF16>(x[i], Wt, i * O + o, s);
  }
  part[w][l] = s;
  __syncthreads();
  if (w == 0 && ok) {
    float t = 0.0f;
    for (int u = 0; u < NW; u++) t += part[u][l];
    out_row(a, HS_A_OUT0, r)[v * O + o] = t;
  }
}

// ---- attention ----------------------------------------------------------

// One query against n keys with an online softmax (blocks of NT keys):
// key j's rows come from kp(j) / vp(j) (head offset applied by the
// caller).  The result o (d floats, in out) is sum_j p_j v_j with p the
// softmax_n of the scaled scores (n_plus extra e^0 terms); no keys: 0.
template <int NT, hs_i64 d, class KP, class VP>
HS_INLINE void attend(const float *q, hs_i64 n, KP kp, VP vp, int n_plus, float *out,
                      float *sp, float *red) {
  constexpr int DPT = (int)((d + NT - 1) / NT);
  const float scale = 1.0f / sqrtf((float)d);
  float acc[DPT];
  for (int u = 0; u < DPT; u++) acc[u] = 0.0f;
  float m = -inf(), l = 0.0f;
  for (hs_i64 j0 = 0; j0 < n; j0 += NT) {
    hs_i64 j = j0 + threadIdx.x;
    float s = j < n ? dot(q, kp(j), (int)d) * scale : -inf();
    float mt = block_max<NT>(s, red);
    float mn = fmaxf(m, mt);
    float p = j < n ? expf(s - mn) : 0.0f;
    sp[threadIdx.x] = p;
    float ts = block_sum<NT>(p, red); // its barriers publish sp
    float corr = m == -inf() ? 0.0f : expf(m - mn);
    l = l * corr + ts;
    hs_i64 cnt = n - j0 < NT ? n - j0 : NT;
    for (int u = 0; u < DPT; u++) {
      hs_i64 e = threadIdx.x + (hs_i64)u * NT;
      float v = acc[u] * corr;
      if (e < d)
        for (hs_i64 jj = 0; jj < cnt; jj++) v = fmaf(sp[jj], vp(j0 + jj)[e], v);
      acc[u] = v;
    }
    m = mn;
    __syncthreads();
  }
  if (n_plus && m != -inf()) l += (float)n_plus * expf(-m);
  for (int u = 0; u < DPT; u++) {
    hs_i64 e = threadIdx.x + (hs_i64)u * NT;
    if (e < d) out[e] = l > 0.0f ? acc[u] / l : 0.0f;
  }
}

// Causal attention over the sequence ([L, H, d]; window W > 0 keeps keys
// t-W+1..t), or within each chunk row ([C, P, H, d]).  blockIdx.y: the query
// head (and, for chunk rows, the in-chunk query).  GRP query heads per KV
// head.
template <int NT, int RANK, bool CAUSAL, int HQ, int HK, hs_i64 d, hs_i64 P, hs_i64 WIN,
          int H0, hs_i64 RE0, int H1, hs_i64 RE1, int H2, hs_i64 RE2>
HS_INLINE void attention(const hs_args &a) {
  __shared__ float red[33];
  __shared__ float sp[NT];
  __shared__ float qs[d];
  hs_i64 r = my_row(a);
  int h = (int)(blockIdx.y % HQ);
  hs_i64 i = blockIdx.y / HQ; // the query's row in the chunk (RANK 4)
  int kh = h / (HQ / HK);
  const float *q = row<H0, RE0>(a, HS_IN(0), r) + (RANK == 3 ? h * d : (i * HQ + h) * d);
  for (hs_i64 e = threadIdx.x; e < d; e += NT) qs[e] = q[e];
  __syncthreads();
  float *o = out_row(a, HS_A_OUT0, r) + (RANK == 3 ? h * d : (i * HQ + h) * d);
  if (RANK == 3) {
    hs_i64 lo = WIN > 0 && r - WIN + 1 > 0 ? r - WIN + 1 : 0;
    attend<NT, d>(
        qs, r - lo + 1,
        [&a, lo, kh](hs_i64 j) { return row<H1, RE1>(a, HS_IN(1), lo + j) + kh * d; },
        [&a, lo, kh](hs_i64 j) { return row<H2, RE2>(a, HS_IN(2), lo + j) + kh * d; }, 0, o,
        sp, red);
  } else {
    const float *kr = row<H1, RE1>(a, HS_IN(1), r), *vr = row<H2, RE2>(a, HS_IN(2), r);
    attend<NT, d>(
        qs, CAUSAL ? i + 1 : P, [kr, kh](hs_i64 j) { return kr + (j * HK + kh) * d; },
        [vr, kh](hs_i64 j) { return vr + (j * HK + kh) * d; }, 0, o, sp, red);
  }
}

// HSA's attention over the selected chunks: weighted merge (a softmax per
// chunk, scaled by the chunk's weight) or joint (one softmax over all
// selected rows).  Inputs q [L, Hq, d], K, V chunk memories [C, P, Hk, d],
// indices [L, G, KS] (i32 bits), weights [L, G, KS].  blockIdx.y: head.
template <int NT, bool JOINT, int HQ, int HK, int G, hs_i64 KS, hs_i64 d, hs_i64 P, int H0,
          hs_i64 RE0, int H1, hs_i64 RE1, int H2, hs_i64 RE2, int H3, hs_i64 RE3, int H4,
          hs_i64 RE4>
HS_INLINE void chunk_attention(const hs_args &a, int n_plus) {
  __shared__ float red[33];
  __shared__ float sp[NT];
  __shared__ float qs[d];
  __shared__ float part[d];
  __shared__ int sel[KS];
  hs_i64 t = my_row(a);
  int h = (int)blockIdx.y, kh = h / (HQ / HK), g = G == 1 ? 0 : kh;
  const float *q = row<H0, RE0>(a, HS_IN(0), t) + h * d;
  const float *ir = row<H3, RE3>(a, HS_IN(3), t) + g * KS;
  const float *wr = row<H4, RE4>(a, HS_IN(4), t) + g * KS;
  for (hs_i64 e = threadIdx.x; e < d; e += NT) qs[e] = q[e];
  // the selected chunks, in slot order (empty slots, -1, skipped)
  if (threadIdx.x == 0) {
    int n = 0;
    for (hs_i64 k = 0; k < KS; k++) {
      int c = __float_as_int(ir[k]);
      if (c >= 0) sel[n++] = (int)k;
    }
    for (hs_i64 k = n; k < KS; k++) sel[k] = -1;
  }
  __syncthreads();
  float *o = out_row(a, HS_A_OUT0, t) + h * d;
  int nsel = 0;
  while (nsel < KS && sel[nsel] >= 0) nsel++;
  if (JOINT) {
    attend<NT, d>(
        qs, nsel * P,
        [&](hs_i64 j) {
          return row<H1, RE1>(a, HS_IN(1), __float_as_int(ir[sel[j / P]])) +
                 ((j % P) * HK + kh) * d;
        },
        [&](hs_i64 j) {
          return row<H2, RE2>(a, HS_IN(2), __float_as_int(ir[sel[j / P]])) +
                 ((j % P) * HK + kh) * d;
        },
        n_plus, o, sp, red);
    return;
  }
  constexpr int DPT = (int)((d + NT - 1) / NT);
  float acc[DPT];
  for (int u = 0; u < DPT; u++) acc[u] = 0.0f;
  for (int s = 0; s < nsel; s++) {
    int k = sel[s];
    hs_i64 c = __float_as_int(ir[k]);
    const float *kr = row<H1, RE1>(a, HS_IN(1), c), *vr = row<H2, RE2>(a, HS_IN(2), c);
    attend<NT, d>(
        qs, P, [&](hs_i64 j) { return kr + (j * HK + kh) * d; },
        [&](hs_i64 j) { return vr + (j * HK + kh) * d; }, n_plus, part, sp, red);
    __syncthreads();
    float wk = wr[k];
    for (int u = 0; u < DPT; u++) {
      hs_i64 e = threadIdx.x + (hs_i64)u * NT;
      if (e < d) acc[u] = fmaf(wk, part[e], acc[u]);
    }
    __syncthreads();
  }
  for (int u = 0; u < DPT; u++) {
    hs_i64 e = threadIdx.x + (hs_i64)u * NT;
    if (e < d) o[e] = acc[u];
  }
}

// Copies N pieces of four floats, rounded to bf16, by the 32 lanes of a
// warp: piece e is load(e) (an hs_f4), stored at at(e) (8-byte aligned).
// In batches of B loads, all issued before their stores (the compiler
// cannot move a load above a store it may alias).
template <int N, class LOAD, class AT>
HS_INLINE void copy4_bf16(int l, LOAD load, AT at) {
  constexpr int B = 8;
  for (int e0 = l; e0 < N; e0 += 32 * B) {
    hs_f4 v[B];
    for (int u = 0; u < B; u++)
      if (e0 + 32 * u < N) v[u] = load(e0 + 32 * u);
    for (int u = 0; u < B; u++)
      if (e0 + 32 * u < N) {
        hs_u2 b = {bf16_pack(v[u].x, v[u].y), bf16_pack(v[u].z, v[u].w)};
        *(hs_u2 *)at(e0 + 32 * u) = b;
      }
  }
}

// Copies, by the 32 lanes of a warp, the P rows of KV head kh of chunk c
// (a [P, HK, d] chunk row of the value at slot base) into dst ([P][LD]
// bf16): from history pages of bf16 rows (B16) with cp.async (16-byte
// pieces, element copies where a row is not 16-byte aligned), from f32
// rows 16 bytes at a time, rounded to bf16 on the way.  The caller waits
// for the cp.async group and syncs the warp.
template <int H, hs_i64 RE, bool B16, hs_i64 P, int HK, hs_i64 d, int LD>
HS_INLINE void stage_chunk(const hs_args &a, int base, hs_i64 c, int kh, unsigned short *dst,
                           int l) {
  const unsigned short *h16 = B16 ? hist16_row<H, RE>(a, base, c) : nullptr;
  if (h16) {
    if (d % 8 == 0 && ((unsigned long long)h16 & 15) == 0) {
      constexpr int PR = (int)(d / 8); // pieces per row
      for (int e = l; e < (int)P * PR; e += 32) {
        int j = e / PR, x = (e % PR) * 8;
        cp_async16(dst + j * LD + x, h16 + ((hs_i64)j * HK + kh) * d + x);
      }
    } else {
      for (int e = l; e < (int)(P * d); e += 32) {
        int j = e / (int)d, x = e % (int)d;
        dst[j * LD + x] = h16[((hs_i64)j * HK + kh) * d + x];
      }
    }
    return;
  }
  const float *r = row<H, RE>(a, base, c);
  if (d % 4 == 0 && ((unsigned long long)r & 15) == 0) {
    constexpr int PR = (int)(d / 4); // pieces per row
    copy4_bf16<(int)P * PR>(
        l, [&](int e) { return *(const hs_f4 *)(r + ((hs_i64)(e / PR) * HK + kh) * d + e % PR * 4); },
        [&](int e) { return dst + e / PR * LD + e % PR * 4; });
  } else {
    for (int e = l; e < (int)(P * d); e += 32) {
      int j = e / (int)d, x = e % (int)d;
      dst[j * LD + x] = bf16_bits(r[((hs_i64)j * HK + kh) * d + x]);
    }
  }
}

// Copies, by the 32 lanes of a warp, keys k0 .. k0 + PB - 1 of KV head kh
// of the sequence value at slot base ([L, HK, d] rows: ring, pages or the
// segment, one row() per key) into dst ([PB][LD] bf16), rounded on the way;
// keys past `last` (not computed yet) are written as zeros.
template <int H, hs_i64 RE, hs_i64 PB, int HK, hs_i64 d, int LD>
HS_INLINE void stage_keys(const hs_args &a, int base, hs_i64 k0, hs_i64 last, int kh,
                          unsigned short *dst, int l) {
  if (d % 4 == 0) {
    constexpr int PR = (int)(d / 4); // pieces per row
    copy4_bf16<(int)PB * PR>(
        l,
        [&](int e) {
          hs_f4 v = {0.0f, 0.0f, 0.0f, 0.0f};
          if (k0 + e / PR > last) return v;
          const float *r = row<H, RE>(a, base, k0 + e / PR) + kh * d + e % PR * 4;
          if (((unsigned long long)r & 15) == 0) return *(const hs_f4 *)r;
          v.x = r[0], v.y = r[1], v.z = r[2], v.w = r[3];
          return v;
        },
        [&](int e) { return dst + e / PR * LD + e % PR * 4; });
  } else {
    for (int e = l; e < (int)(PB * d); e += 32) {
      int j = e / (int)d, x = e % (int)d;
      dst[j * LD + x] = k0 + j <= last ? bf16_bits(row<H, RE>(a, base, k0 + j)[kh * d + x]) : 0;
    }
  }
}

// Shared memory of the tensor-core attentions, bytes (emit.c has the same
// formula in C: keep them together): Q in bf16; per warp and stage, a
// block of PB keys' K and V rows in bf16, or in the merge the warp's
// partial output, maxima and sums in f32; KS ints of selection.
template <int GRP, hs_i64 d, hs_i64 P, hs_i64 KS, int NW, int STAGES>
struct mma_attn_shape {
  static constexpr int MT = (GRP + 15) / 16, MR = 16 * MT;
  static constexpr int DP = (int)((d + 15) / 16 * 16), PP = (int)((P + 15) / 16 * 16);
  static constexpr int LD = DP + 8;                 // halves per staged row
  static constexpr int STAGE = 2 * PP * LD;         // halves of a stage: K rows, then V rows
  static constexpr int WBUF = STAGES * STAGE;       // halves per warp
  static constexpr int OUTF = MR * DP + 2 * MR;     // floats per warp in the merge
  static constexpr int SBUF = NW * WBUF > (NW > 1 ? 2 * NW * OUTF : 0) ? NW * WBUF
                                                                       : 2 * NW * OUTF;
};

// The engine of the tensor-core attentions: one block of NW warps per
// (token, KV head); the GRP query heads that share the KV head (rows
// qrow[(kh * GRP + h) * d ..]) are the rows of the mma tiles (padded to MT
// tiles of 16), so each block of keys is read once for the whole group.
// Warp w takes the key blocks w, w + NW, ... of the nblk() blocks on its
// own, with no block-wide barrier in the loop: stage(i, kb, vb) copies
// block i's PB keys' K and V rows into the warp's shared buffers ([key][e]
// bf16; cp.async groups allowed), nkeys(i) says how many of them count
// (the rest are masked), weight(i) scales block i's softmax (weighted
// merge).  S = Q K^T on the tensor cores with Q's fragments held in
// registers; the softmax in registers (a row of an accumulator tile lives
// in the four lanes of a quad: two shuffles per reduction); O += P V with P
// rounded to bf16 straight from S's registers into A fragments (V's B
// fragments through ldmatrix .trans).  Weighted merge: a softmax per block,
// scaled by its weight; joint: an online softmax across the warp's blocks.
// At the end the warps' partial outputs (joint: with their maxima and
// sums) are merged through shared memory into orow[(kh * GRP + h) * d ..].
// Exponentials are exp2 of scores scaled by log2(e) / sqrt(d).  STAGES 2:
// each warp has two buffers and copies its next block while it computes
// this one.  The caller's shared writes before the call (a selection) are
// published by the engine's first barrier, before nblk() is read.
template <bool JOINT, int GRP, hs_i64 d, hs_i64 PB, hs_i64 KS, int NW, int STAGES, class NB,
          class ST, class NK, class WT>
HS_INLINE void group_attend_mma(const float *qrow, float *orow, int kh, int n_plus, NB nblk,
                                ST stage, NK nkeys, WT weight) {
  static_assert(STAGES == 1 || STAGES == 2, "one or two stages");
  typedef mma_attn_shape<GRP, d, PB, KS, NW, STAGES> sh;
  constexpr int MT = sh::MT, MR = sh::MR, DP = sh::DP, PP = sh::PP, LD = sh::LD;
  constexpr int NTH = 32 * NW;
  constexpr int NOT = DP / 8, NST = PP / 8, KQ = DP / 16, KP = PP / 16;
  __shared__ __align__(16) unsigned short qs[MR * LD];
  __shared__ __align__(16) unsigned short kv[sh::SBUF];
  int w = threadIdx.x >> 5, l = threadIdx.x & 31, fg = l >> 2, ft = l & 3;
  const float sl2 = 1.4426950408889634f / sqrtf((float)d);
  for (int e = threadIdx.x; e < MR * DP; e += NTH) {
    int hh = e / DP, c = e % DP;
    qs[hh * LD + c] = bf16_bits(hh < GRP && c < d ? qrow[(kh * GRP + hh) * d + c] : 0.0f);
  }
  unsigned short *wb = kv + w * sh::WBUF; // stage u: K rows at wb + u * STAGE, V after
  // keys PB..PP-1 and elements d..DP-1 stay zero: the copies write only
  // real elements
  if (PP != PB || DP != d)
    for (int e = l; e < sh::WBUF; e += 32) wb[e] = 0;
  __syncthreads();
  int nb = nblk();
  unsigned qa[MT][KQ][4];
  for (int mt = 0; mt < MT; mt++)
    for (int kq = 0; kq < KQ; kq++) frag_a<LD>(qa[mt][kq], qs + mt * 16 * LD + kq * 16);
  float acc[MT][NOT][4];
  float rm[MT][2], rl[MT][2]; // joint: running max (log2 units), sum of rows fg, fg + 8
  for (int mt = 0; mt < MT; mt++) {
    for (int j = 0; j < NOT; j++)
      for (int c = 0; c < 4; c++) acc[mt][j][c] = 0.0f;
    rm[mt][0] = rm[mt][1] = -inf();
    rl[mt][0] = rl[mt][1] = 0.0f;
  }
  // the copies of the warp's u-th block into stage u % STAGES
  auto stage_u = [&](int u) {
    int i = w + u * NW;
    if (i >= nb) return;
    unsigned short *kb = wb + (u % STAGES) * sh::STAGE;
    stage(i, kb, kb + PP * LD, l);
  };
  if (STAGES == 2) {
    stage_u(0);
    cp_async_commit();
  }
  for (int u = 0, i = w; i < nb; u++, i += NW) {
    const unsigned short *kb = wb + (u % STAGES) * sh::STAGE, *vb = kb + PP * LD;
    if (STAGES == 2) {
      stage_u(u + 1); // into the other buffer, which the last block freed
      cp_async_commit();
      cp_async_wait<1>(); // this block's group is complete
    } else {
      stage_u(u);
      cp_async_commit();
      cp_async_wait<0>();
    }
    __syncwarp();
    const int nk = nkeys(i); // keys nk.. masked: past the block's, and the padding to PP
    for (int mt = 0; mt < MT; mt++) {
      // S = Q K^T (16 query heads by PP keys)
      float sc[NST][4];
      for (int nt = 0; nt < NST; nt++) {
        for (int c2 = 0; c2 < 4; c2++) sc[nt][c2] = 0.0f;
        for (int kq = 0; kq < KQ; kq++) {
          unsigned bfr[2];
          frag_b<LD>(bfr, kb + nt * 8 * LD + kq * 16);
          mma16816(sc[nt], qa[mt][kq], bfr);
        }
      }
      // the softmax of rows fg (h = 0) and fg + 8 (h = 1), in registers
      for (int h = 0; h < 2; h++) {
        float m = -inf();
        for (int nt = 0; nt < NST; nt++)
          for (int c2 = 0; c2 < 2; c2++) {
            int j = nt * 8 + 2 * ft + c2;
            float v = j < nk ? sc[nt][2 * h + c2] * sl2 : -inf();
            sc[nt][2 * h + c2] = v;
            m = fmaxf(m, v);
          }
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        float mn = JOINT ? fmaxf(rm[mt][h], m) : m, sum = 0.0f;
        for (int nt = 0; nt < NST; nt++)
          for (int c2 = 0; c2 < 2; c2++) {
            float p = exp2f(sc[nt][2 * h + c2] - mn);
            sc[nt][2 * h + c2] = p;
            sum += p;
          }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        if (JOINT) {
          float corr = exp2f(rm[mt][h] - mn); // 0 before the first block
          rl[mt][h] = rl[mt][h] * corr + sum;
          rm[mt][h] = mn;
          for (int j = 0; j < NOT; j++) {
            acc[mt][j][2 * h] *= corr;
            acc[mt][j][2 * h + 1] *= corr;
          }
        } else {
          if (n_plus) sum += (float)n_plus * exp2f(-m);
          float f = weight(i) / sum;
          for (int nt = 0; nt < NST; nt++) {
            sc[nt][2 * h] *= f;
            sc[nt][2 * h + 1] *= f;
          }
        }
      }
      // O (+)= P V: P's A fragments are S's accumulators, rounded
      for (int kp = 0; kp < KP; kp++) {
        unsigned pa[4] = {bf16_pack(sc[2 * kp][0], sc[2 * kp][1]),
                          bf16_pack(sc[2 * kp][2], sc[2 * kp][3]),
                          bf16_pack(sc[2 * kp + 1][0], sc[2 * kp + 1][1]),
                          bf16_pack(sc[2 * kp + 1][2], sc[2 * kp + 1][3])};
        for (int j = 0; j < NOT; j++) {
          unsigned bfr[2];
          frag_b_kn<LD>(bfr, vb + kp * 16 * LD + j * 8);
          mma16816(acc[mt][j], pa, bfr);
        }
      }
    }
    __syncwarp(); // the next block's copies overwrite the buffers
  }
  if (NW == 1) {
    for (int mt = 0; mt < MT; mt++)
      for (int h = 0; h < 2; h++) {
        int r = mt * 16 + fg + 8 * h;
        if (r >= GRP) continue;
        float den = 1.0f;
        if (JOINT) {
          den = rl[mt][h];
          if (n_plus && rm[mt][h] != -inf()) den += (float)n_plus * exp2f(-rm[mt][h]);
        }
        float *o = orow + (kh * GRP + r) * d;
        for (int j = 0; j < NOT; j++)
          for (int c2 = 0; c2 < 2; c2++) {
            int e = j * 8 + 2 * ft + c2;
            if (e < d) o[e] = JOINT ? (den > 0.0f ? acc[mt][j][2 * h + c2] / den : 0.0f)
                                    : acc[mt][j][2 * h + c2];
          }
      }
    return;
  }
  // the merge: each warp's O (and joint, row maxima and sums) to shared
  // memory, then every thread sums over the warps for its outputs
  __syncthreads(); // every warp is done with its buffers
  float *ob = (float *)kv, *mb = ob + NW * MR * DP, *lb = mb + NW * MR;
  for (int mt = 0; mt < MT; mt++)
    for (int h = 0; h < 2; h++) {
      int r = mt * 16 + fg + 8 * h;
      for (int j = 0; j < NOT; j++)
        for (int c2 = 0; c2 < 2; c2++)
          ob[(w * MR + r) * DP + j * 8 + 2 * ft + c2] = acc[mt][j][2 * h + c2];
      if (JOINT && ft == 0) {
        mb[w * MR + r] = rm[mt][h];
        lb[w * MR + r] = rl[mt][h];
      }
    }
  __syncthreads();
  for (int e = threadIdx.x; e < GRP * (int)d; e += NTH) {
    int r = e / (int)d, x = e % (int)d;
    float v = 0.0f;
    if (JOINT) {
      float M = -inf();
      for (int u = 0; u < NW; u++) M = fmaxf(M, mb[u * MR + r]);
      if (M != -inf()) {
        float den = n_plus ? (float)n_plus * exp2f(-M) : 0.0f;
        for (int u = 0; u < NW; u++) {
          float f = exp2f(mb[u * MR + r] - M);
          den += lb[u * MR + r] * f;
          v += ob[(u * MR + r) * DP + x] * f;
        }
        v = den > 0.0f ? v / den : 0.0f;
      }
    } else {
      for (int u = 0; u < NW; u++) v += ob[(u * MR + r) * DP + x];
    }
    orow[(kh * GRP + r) * d + x] = v;
  }
}

// HSA's sparse attention on tensor cores (group_attend_mma over the
// selected chunks, in slot order; empty slots, -1, skipped): inputs q
// [L, Hq, d], K, V chunk memories [C, P, Hk, d] (history pages of bf16 rows
// where K16 / V16: copied by cp.async), indices [L, G, KS] (i32 bits),
// weights [L, G, KS].  blockIdx.y: the KV head.
template <bool JOINT, int HQ, int HK, int G, hs_i64 KS, hs_i64 d, hs_i64 P, int H0, hs_i64 RE0,
          int H1, hs_i64 RE1, int H2, hs_i64 RE2, int H3, hs_i64 RE3, int H4, hs_i64 RE4,
          bool K16 = false, bool V16 = false, int NW = 1, int STAGES = 1>
HS_INLINE void chunk_attention_mma(const hs_args &a, int n_plus) {
  constexpr int GRP = HQ / HK;
  constexpr int LD = mma_attn_shape<GRP, d, P, KS, NW, STAGES>::LD;
  __shared__ int sel[KS];
  __shared__ int nsel_s;
  hs_i64 t = my_row(a);
  int kh = (int)blockIdx.y, g = G == 1 ? 0 : kh;
  const float *ir = row<H3, RE3>(a, HS_IN(3), t) + g * KS;
  const float *wr = row<H4, RE4>(a, HS_IN(4), t) + g * KS;
  if (threadIdx.x == 0) {
    int n = 0;
    for (hs_i64 k = 0; k < KS; k++)
      if (__float_as_int(ir[k]) >= 0) sel[n++] = (int)k;
    nsel_s = n;
  }
  group_attend_mma<JOINT, GRP, d, P, KS, NW, STAGES>(
      row<H0, RE0>(a, HS_IN(0), t), out_row(a, HS_A_OUT0, t), kh, n_plus,
      [&]() { return nsel_s; },
      [&](int i, unsigned short *kb, unsigned short *vb, int l) {
        hs_i64 c = __float_as_int(ir[sel[i]]);
        stage_chunk<H1, RE1, K16, P, HK, d, LD>(a, HS_IN(1), c, kh, kb, l);
        stage_chunk<H2, RE2, V16, P, HK, d, LD>(a, HS_IN(2), c, kh, vb, l);
      },
      [&](int) { return (int)P; }, [&](int i) { return wr[sel[i]]; });
}

// Causal attention over the sequence on tensor cores (group_attend_mma,
// joint merge, over blocks of PB = 64 keys from the window's first key to
// the token; the last block's keys past the token masked): inputs q [L,
// Hq, d], k, v [L, Hk, d] (rings, pages or the segment: f32 rows, rounded
// to bf16 as they are staged); window WIN > 0 keeps keys t-WIN+1..t.
// blockIdx.y: the KV head.
template <int HQ, int HK, hs_i64 d, hs_i64 WIN, int H0, hs_i64 RE0, int H1, hs_i64 RE1, int H2,
          hs_i64 RE2, int NW = 1, int STAGES = 1>
HS_INLINE void attention_mma(const hs_args &a) {
  constexpr int GRP = HQ / HK;
  constexpr hs_i64 PB = 64;
  constexpr int LD = mma_attn_shape<GRP, d, PB, 1, NW, STAGES>::LD;
  hs_i64 t = my_row(a);
  int kh = (int)blockIdx.y;
  hs_i64 lo = WIN > 0 && t - WIN + 1 > 0 ? t - WIN + 1 : 0;
  int nb = (int)((t - lo + PB) / PB);
  group_attend_mma<true, GRP, d, PB, 1, NW, STAGES>(
      row<H0, RE0>(a, HS_IN(0), t), out_row(a, HS_A_OUT0, t), kh, 0, [&]() { return nb; },
      [&](int i, unsigned short *kb, unsigned short *vb, int l) {
        stage_keys<H1, RE1, PB, HK, d, LD>(a, HS_IN(1), lo + i * PB, t, kh, kb, l);
        stage_keys<H2, RE2, PB, HK, d, LD>(a, HS_IN(2), lo + i * PB, t, kh, vb, l);
      },
      [&](int i) {
        hs_i64 n = t - (lo + i * PB) + 1;
        return (int)(n < PB ? n : PB);
      },
      [&](int) { return 1.0f; });
}

// ---- retrieval ----------------------------------------------------------

// The retrieval rule of PAPER.md / ref_ops.c: token t scores the chunks
// complete before its own chunk (those starting within the last X tokens
// before the query position excluded), with the query of position t, or
// (per chunk) of the last token of the previous chunk.
struct retr {
  hs_i64 own, tq;
};
template <hs_i64 S, bool PER_CHUNK>
HS_INLINE retr retr_of(hs_i64 t) {
  retr r;
  r.own = t / S;
  r.tq = PER_CHUNK ? r.own * S - 1 : t;
  return r;
}
template <hs_i64 S, hs_i64 X>
HS_INLINE bool retr_excluded(hs_i64 i, hs_i64 tq) {
  return X > 0 && i * S > tq - X;
}

// landmark_scores as a stored [L, G, C] matrix (when more than its top-k
// reads it).  Inputs q [L, G, dr], landmarks [C, dr] or [C, G, dr], and an
// optional learned offset (weight scalar).
template <int NT, int G, hs_i64 DR, bool GROUPED, hs_i64 S, hs_i64 X, bool PER_CHUNK,
          bool OFFW, int H0, hs_i64 RE0, int H1, hs_i64 RE1>
HS_INLINE void landmark_scores(const hs_args &a, float off) {
  hs_i64 t = my_row(a);
  float *o = out_row(a, HS_A_OUT0, t);
  hs_i64 C = out_elems(a) / G;
  if (OFFW) off += ((const float *)a.s[HS_IN(2) + HS_V_SEG])[0];
  retr rr = retr_of<S, PER_CHUNK>(t);
  const float scale = 1.0f / sqrtf((float)DR);
  for (hs_i64 e = threadIdx.x; e < G * C; e += NT) {
    hs_i64 g = e / C, i = e % C;
    float v = -inf();
    if (rr.own > 0 && i < rr.own && !retr_excluded<S, X>(i, rr.tq)) {
      const float *qr = row<H0, RE0>(a, HS_IN(0), rr.tq) + g * DR;
      const float *l = row<H1, RE1>(a, HS_IN(1), i) + (GROUPED ? g * DR : 0);
      v = dot(qr, l, (int)DR) * scale + off;
    }
    o[e] = v;
  }
}

// A K-entry list, best first: (v, i) enters only if strictly better than
// the last entry, so among equal scores the lower (earlier) index stays.
template <hs_i64 K>
HS_INLINE void offer(float *val, int *idx, int &n, float v, int i) {
  if (v == -inf() || v != v || (n == K && !(v > val[K - 1]))) return;
  int p = n < K ? n++ : (int)K - 1;
  while (p > 0 && v > val[p - 1]) {
    val[p] = val[p - 1];
    idx[p] = idx[p - 1];
    p--;
  }
  val[p] = v;
  idx[p] = i;
}

// Merges list b into list a (both best first, ties by lower index first),
// keeping K.
template <hs_i64 K>
HS_INLINE void merge_lists(float *av, int *ai, int &an, const float *bv, const int *bi,
                           int bn) {
  float tv[K];
  int ti[K];
  int x = 0, y = 0, n = 0;
  while (n < K && (x < an || y < bn)) {
    bool takea = y >= bn || (x < an && (av[x] > bv[y] || (av[x] == bv[y] && ai[x] < bi[y])));
    if (takea) {
      tv[n] = av[x];
      ti[n++] = ai[x++];
    } else {
      tv[n] = bv[y];
      ti[n++] = bi[y++];
    }
  }
  for (int k = 0; k < n; k++) {
    av[k] = tv[k];
    ai[k] = ti[k];
  }
  an = n;
}

// Writes the K slots most recent first; empty ones get -1 and -inf.
template <hs_i64 K>
HS_INLINE void emit_slots(float *val, int *idx, int n, float *oi, float *ov) {
  for (int x = 1; x < n; x++) {
    int ia = idx[x], b = x;
    float va = val[x];
    while (b > 0 && idx[b - 1] < ia) {
      idx[b] = idx[b - 1];
      val[b] = val[b - 1];
      b--;
    }
    idx[b] = ia;
    val[b] = va;
  }
  for (int k = 0; k < K; k++) {
    oi[k] = __int_as_float(k < n ? idx[k] : -1);
    ov[k] = k < n ? val[k] : -inf();
  }
}

// The K-entry lists of the block's threads, merged pairwise in shared
// memory (lv, li: NT lists of K), the result in list 0.
template <int NT, hs_i64 K>
HS_INLINE void block_merge(float *val, int *idx, int &n, float *lv, int *li, int *ln) {
  for (int k = 0; k < n; k++) {
    lv[threadIdx.x * K + k] = val[k];
    li[threadIdx.x * K + k] = idx[k];
  }
  ln[threadIdx.x] = n;
  __syncthreads();
  for (int st = NT / 2; st > 0; st >>= 1) {
    if ((int)threadIdx.x < st) {
      int an = ln[threadIdx.x];
      merge_lists<K>(lv + threadIdx.x * K, li + threadIdx.x * K, an, lv + (threadIdx.x + st) * K,
                     li + (threadIdx.x + st) * K, ln[threadIdx.x + st]);
      ln[threadIdx.x] = an;
    }
    __syncthreads();
  }
}

// Token t's scan of group g over part `part` of `nparts` equal parts of
// its eligible landmarks: each thread streams over a strided share keeping
// a K-entry list, and the lists are merged across the block (lv, li, ln:
// the result in list 0).
template <int NT, int G, hs_i64 DR, bool GROUPED, hs_i64 S, hs_i64 X, bool PER_CHUNK,
          bool OFFW, hs_i64 K, int H0, hs_i64 RE0, int H1, hs_i64 RE1>
HS_INLINE void scan_part(const hs_args &a, float off, hs_i64 t, int g, hs_i64 part,
                         hs_i64 nparts, float *lv, int *li, int *ln) {
  hs_i64 C = a.s[HS_A_C];
  if (OFFW) off += ((const float *)a.s[HS_IN(2) + HS_V_SEG])[0];
  retr rr = retr_of<S, PER_CHUNK>(t);
  const float scale = 1.0f / sqrtf((float)DR);
  float val[K];
  int idx[K];
  int n = 0;
  if (rr.own > 0) {
    const float *qr = row<H0, RE0>(a, HS_IN(0), rr.tq) + g * DR;
    hs_i64 end = rr.own < C ? rr.own : C, per = (end + nparts - 1) / nparts;
    hs_i64 lo = part * per, hi = lo + per < end ? lo + per : end;
    for (hs_i64 i = lo + threadIdx.x; i < hi; i += NT) {
      if (retr_excluded<S, X>(i, rr.tq)) continue;
      const float *l = row<H1, RE1>(a, HS_IN(1), i) + (GROUPED ? g * DR : 0);
      offer<K>(val, idx, n, dot_n<DR>(qr, l) * scale + off, (int)i);
    }
  }
  block_merge<NT, K>(val, idx, n, lv, li, ln);
}

// The fused retrieve kernel: the scan of all of a token's landmarks by one
// block (no [L, G, C] score matrix), the K slots written most recent
// first.  blockIdx.y: the group.  Outputs: indices, scores.
template <int NT, int G, hs_i64 DR, bool GROUPED, hs_i64 S, hs_i64 X, bool PER_CHUNK,
          bool OFFW, hs_i64 K, int H0, hs_i64 RE0, int H1, hs_i64 RE1>
HS_INLINE void retrieve(const hs_args &a, float off) {
  __shared__ float lv[NT * K];
  __shared__ int li[NT * K];
  __shared__ int ln[NT];
  hs_i64 t = my_row(a);
  int g = (int)blockIdx.y;
  scan_part<NT, G, DR, GROUPED, S, X, PER_CHUNK, OFFW, K, H0, RE0, H1, RE1>(a, off, t, g, 0, 1,
                                                                           lv, li, ln);
  if (threadIdx.x == 0) {
    float *oi = out_row(a, HS_A_OUT0, t) + g * K, *ov = out_row(a, HS_A_OUT1, t) + g * K;
    emit_slots<K>(lv, li, ln[0], oi, ov);
  }
}

// The decode step's retrieve, split over blocks so that one token's scan
// over C landmarks reads at the device's bandwidth, not one block's: part
// blockIdx.x of nsplit (HS_A_P0) leaves its K-entry list (K values, K
// indices, the count) in its scratch; retrieve_merge (one block per
// group) merges the nsplit lists and writes the slots.  The order of
// (value, lower index) is total, so the result equals retrieve's.
enum { HS_SPLIT_SCRATCH_PAD = 1 };
template <int NT, int G, hs_i64 DR, bool GROUPED, hs_i64 S, hs_i64 X, bool PER_CHUNK,
          bool OFFW, hs_i64 K, int H0, hs_i64 RE0, int H1, hs_i64 RE1>
HS_INLINE void retrieve_part(const hs_args &a, float off) {
  __shared__ float lv[NT * K];
  __shared__ int li[NT * K];
  __shared__ int ln[NT];
  scan_part<NT, G, DR, GROUPED, S, X, PER_CHUNK, OFFW, K, H0, RE0, H1, RE1>(
      a, off, a.s[HS_A_R0], (int)blockIdx.y, blockIdx.x, a.s[HS_A_P0], lv, li, ln);
  if (threadIdx.x == 0) {
    float *o = scratch(a, 2 * K + HS_SPLIT_SCRATCH_PAD);
    for (int k = 0; k < ln[0]; k++) {
      o[k] = lv[k];
      o[K + k] = __int_as_float(li[k]);
    }
    o[2 * K] = (float)ln[0];
  }
}

template <int NT, int G, hs_i64 K>
HS_INLINE void retrieve_merge(const hs_args &a) {
  __shared__ float lv[NT * K];
  __shared__ int li[NT * K];
  __shared__ int ln[NT];
  hs_i64 t = a.s[HS_A_R0], nsplit = a.s[HS_A_P0];
  int g = (int)blockIdx.y;
  const float *base = (const float *)a.s[HS_A_SCRATCH];
  float val[K];
  int idx[K];
  int n = 0;
  // thread j merges the lists j, j + NT, ... of its group
  for (hs_i64 sp = threadIdx.x; sp < nsplit; sp += NT) {
    const float *p = base + ((hs_i64)g * nsplit + sp) * (2 * K + HS_SPLIT_SCRATCH_PAD);
    int pn = (int)p[2 * K];
    float bv[K];
    int bi[K];
    for (int k = 0; k < pn; k++) {
      bv[k] = p[k];
      bi[k] = __float_as_int(p[K + k]);
    }
    merge_lists<K>(val, idx, n, bv, bi, pn);
  }
  block_merge<NT, K>(val, idx, n, lv, li, ln);
  if (threadIdx.x == 0) {
    float *oi = out_row(a, HS_A_OUT0, t) + g * K, *ov = out_row(a, HS_A_OUT1, t) + g * K;
    emit_slots<K>(lv, li, ln[0], oi, ov);
  }
}

// topk of a stored score matrix [L, G, C]: the same lists, fed from the
// matrix.  blockIdx.y: the group.
template <int NT, int G, hs_i64 K, int H0, hs_i64 RE0>
HS_INLINE void topk(const hs_args &a) {
  __shared__ float lv[NT * K];
  __shared__ int li[NT * K];
  __shared__ int ln[NT];
  hs_i64 t = my_row(a);
  int g = (int)blockIdx.y;
  hs_i64 C = a.s[HS_IN(0) + HS_V_STRIDE] / G;
  const float *s = row<H0, RE0>(a, HS_IN(0), t) + g * C;
  float val[K];
  int idx[K];
  int n = 0;
  for (hs_i64 i = threadIdx.x; i < C; i += NT) offer<K>(val, idx, n, s[i], (int)i);
  block_merge<NT, K>(val, idx, n, lv, li, ln);
  if (threadIdx.x == 0) {
    float *oi = out_row(a, HS_A_OUT0, t) + g * K, *ov = out_row(a, HS_A_OUT1, t) + g * K;
    emit_slots<K>(lv, li, ln[0], oi, ov);
  }
}

// ---- the baselines' attentions (PAPER.md section 9) ------------------------
//
// Written for correctness first: one block per (token, head), the scores
// in a per-block scratch of global memory, the selections made by thread
// 0.  FIX + PER_T1 * t1 floats of scratch per block, as the generator
// computes them (emit.c): landmark_attention: loc[B], in[KSEL*B], ls[t1];
// moba: gate[t1 + 4], pos[(KSEL+1)*B]; nsa: p[GRP*(t1+1)], imp[t1+2],
// pos[KSEL*B].

template <hs_i64 FIX, hs_i64 PER_T1>
HS_INLINE float *block_scratch(const hs_args &a) {
  return scratch(a, FIX + PER_T1 * a.s[HS_A_T1]);
}

// softmax_n over s[0, n) in place, by one thread (ref_ops.c softmax_n).
HS_INLINE void softmax_seq(float *s, hs_i64 n) {
  float m = -inf();
  for (hs_i64 j = 0; j < n; j++) m = fmaxf(m, s[j]);
  if (m == -inf()) {
    for (hs_i64 j = 0; j < n; j++) s[j] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (hs_i64 j = 0; j < n; j++) sum += (s[j] = s[j] == -inf() ? 0.0f : expf(s[j] - m));
  for (hs_i64 j = 0; j < n; j++) s[j] /= sum;
}

// The K best of n scores (ties: lower index; -inf and NaN never chosen),
// best first, by one thread; returns how many.
template <hs_i64 K, class SC>
HS_INLINE int top_seq(SC score, hs_i64 n, int *sel, float *val) {
  int m = 0;
  for (hs_i64 i = 0; i < n; i++) offer<K>(val, sel, m, score(i), (int)i);
  return m;
}

// Landmark Attention's grouped softmax (ref_ops.c): inputs q, k, v [L, H, d]
// and the block landmarks' keys [L/B, Hk*d].  blockIdx.y: the head.
template <int NT, hs_i64 FIX, hs_i64 PER_T1, int HQ, int HK, hs_i64 d, hs_i64 B, hs_i64 KSEL,
          int H0, hs_i64 RE0, int H1, hs_i64 RE1, int H2, hs_i64 RE2, int H3, hs_i64 RE3>
HS_INLINE void landmark_attention(const hs_args &a) {
  __shared__ float qs[d];
  __shared__ int sel[KSEL];
  __shared__ float sv[KSEL], pb[KSEL], mz[2];
  __shared__ int nsel;
  hs_i64 t = my_row(a);
  int h = (int)blockIdx.y, kh = h / (HQ / HK);
  float *loc = block_scratch<FIX, PER_T1>(a), *in = loc + B, *ls = in + KSEL * B;
  const float *q = row<H0, RE0>(a, HS_IN(0), t) + h * d;
  for (hs_i64 e = threadIdx.x; e < d; e += NT) qs[e] = q[e];
  __syncthreads();
  const float scale = 1.0f / sqrtf((float)d);
  hs_i64 b0 = t / B, nloc = t - b0 * B + 1;
  for (hs_i64 j = threadIdx.x; j < nloc; j += NT)
    loc[j] = dot(qs, row<H1, RE1>(a, HS_IN(1), b0 * B + j) + kh * d, (int)d) * scale;
  for (hs_i64 b = threadIdx.x; b < b0; b += NT)
    ls[b] = dot(qs, row<H3, RE3>(a, HS_IN(3), b) + kh * d, (int)d) * scale;
  __syncthreads();
  if (threadIdx.x == 0) {
    int ns = top_seq<KSEL>([&](hs_i64 i) { return ls[i]; }, b0, sel, sv);
    float m = -inf();
    for (hs_i64 j = 0; j < nloc; j++) m = fmaxf(m, loc[j]);
    for (int i = 0; i < ns; i++) m = fmaxf(m, ls[sel[i]]);
    float Z = 0.0f;
    for (hs_i64 j = 0; j < nloc; j++) Z += expf(loc[j] - m);
    for (int i = 0; i < ns; i++) Z += expf(ls[sel[i]] - m);
    for (int i = 0; i < ns; i++) pb[i] = expf(ls[sel[i]] - m) / Z;
    mz[0] = m;
    mz[1] = Z;
    nsel = ns;
  }
  __syncthreads();
  int ns = nsel;
  for (hs_i64 e = threadIdx.x; e < ns * B; e += NT)
    in[e] = dot(qs, row<H1, RE1>(a, HS_IN(1), sel[e / B] * B + e % B) + kh * d, (int)d) * scale;
  __syncthreads();
  for (int i = threadIdx.x; i < ns; i += NT) {
    softmax_seq(in + i * B, B);
    for (hs_i64 j = 0; j < B; j++) in[i * B + j] *= pb[i];
  }
  __syncthreads();
  float *o = out_row(a, HS_A_OUT0, t) + h * d;
  for (hs_i64 e = threadIdx.x; e < d; e += NT) {
    float acc = 0.0f;
    for (hs_i64 j = 0; j < nloc; j++)
      acc = fmaf(expf(loc[j] - mz[0]) / mz[1], row<H2, RE2>(a, HS_IN(2), b0 * B + j)[kh * d + e],
                 acc);
    for (int i = 0; i < ns; i++)
      for (hs_i64 j = 0; j < B; j++)
        acc = fmaf(in[i * B + j], row<H2, RE2>(a, HS_IN(2), sel[i] * B + j)[kh * d + e], acc);
    o[e] = acc;
  }
}

// MoBA: the top-k past blocks by q . mean(keys) (ties: lower block) and
// the own block up to t, under one softmax.  blockIdx.y: the head.
template <int NT, hs_i64 FIX, hs_i64 PER_T1, int HQ, int HK, hs_i64 d, hs_i64 B, hs_i64 KSEL,
          int H0, hs_i64 RE0, int H1, hs_i64 RE1, int H2, hs_i64 RE2>
HS_INLINE void moba_attention(const hs_args &a) {
  __shared__ float red[33];
  __shared__ float sp[NT];
  __shared__ float qs[d];
  __shared__ int sel[KSEL];
  __shared__ float sv[KSEL];
  __shared__ int npos;
  hs_i64 t = my_row(a);
  int h = (int)blockIdx.y, kh = h / (HQ / HK);
  float *gate = block_scratch<FIX, PER_T1>(a);
  int *pos = (int *)(gate + a.s[HS_A_T1] + 4);
  const float *q = row<H0, RE0>(a, HS_IN(0), t) + h * d;
  for (hs_i64 e = threadIdx.x; e < d; e += NT) qs[e] = q[e];
  __syncthreads();
  hs_i64 b0 = t / B;
  for (hs_i64 b = threadIdx.x; b < b0; b += NT) {
    double g = 0.0;
    for (hs_i64 j = 0; j < B; j++) g += dot(qs, row<H1, RE1>(a, HS_IN(1), b * B + j) + kh * d, (int)d);
    gate[b] = (float)(g / (double)B);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int ns = top_seq<KSEL>([&](hs_i64 i) { return gate[i]; }, b0, sel, sv);
    int n = 0;
    for (int i = 0; i < ns; i++)
      for (hs_i64 j = 0; j < B; j++) pos[n++] = (int)(sel[i] * B + j);
    for (hs_i64 j = b0 * B; j <= t; j++) pos[n++] = (int)j;
    npos = n;
  }
  __syncthreads();
  attend<NT, d>(
      qs, npos, [&](hs_i64 j) { return row<H1, RE1>(a, HS_IN(1), pos[j]) + kh * d; },
      [&](hs_i64 j) { return row<H2, RE2>(a, HS_IN(2), pos[j]) + kh * d; }, 0,
      out_row(a, HS_A_OUT0, t) + h * d, sp, red);
}

// NSA's compression: key j is W . concat(rows j*STR .. j*STR+BLK-1) per
// head.  Inputs k [L, H, d], W [d, BLK*d].
template <int NT, hs_i64 H, hs_i64 d, hs_i64 BLK, hs_i64 STR, int H0, hs_i64 RE0>
HS_INLINE void nsa_compress(const hs_args &a) {
  hs_i64 j = my_row(a);
  const float *w = (const float *)a.s[HS_IN(1) + HS_V_SEG];
  float *o = out_row(a, HS_A_OUT0, j);
  for (hs_i64 x = threadIdx.x; x < H * d; x += NT) {
    hs_i64 h = x / d, e = x % d;
    float acc = 0.0f;
    for (hs_i64 p = 0; p < BLK; p++) {
      const float *kr = row<H0, RE0>(a, HS_IN(0), j * STR + p) + h * d;
      acc += dot(w + e * BLK * d + p * d, kr, (int)d);
    }
    o[x] = acc;
  }
}

// NSA's three branches (ref_ops.c rt_op_nsa_attention), one block per
// (token, KV head): the compressed softmax of every head of the group, the
// group's shared block selection, then per head the selected and the
// window branches, mixed by the gates.  Inputs q, k, v, compressed k, v,
// gates [L, Hq, 3].
template <int NT, hs_i64 FIX, hs_i64 PER_T1, int HQ, int HK, hs_i64 d, hs_i64 CB, hs_i64 CS,
          hs_i64 B, hs_i64 KSEL, hs_i64 INIT, hs_i64 LOCAL, hs_i64 W, int H0, hs_i64 RE0, int H1, hs_i64 RE1, int H2,
          hs_i64 RE2, int H3, hs_i64 RE3, int H4, hs_i64 RE4, int H5, hs_i64 RE5>
HS_INLINE void nsa_attention(const hs_args &a) {
  constexpr int GRP = HQ / HK;
  __shared__ float red[33];
  __shared__ float sp[NT];
  __shared__ float qs[d];
  __shared__ float o1[d], o2[d];
  __shared__ int sel[KSEL];
  __shared__ float sv[KSEL];
  __shared__ int npos;
  // thread 0's ranking lists: in shared memory, not in a local array that
  // dynamic indexing would put on the stack (ptxas spilled around it)
  __shared__ float tv[KSEL];
  __shared__ int ti[KSEL];
  hs_i64 t = my_row(a), T1 = a.s[HS_A_T1];
  int kh = (int)blockIdx.y;
  float *p = block_scratch<FIX, PER_T1>(a);
  float *imp = p + GRP * (T1 + 1);
  int *pos = (int *)(imp + T1 + 2);
  const float scale = 1.0f / sqrtf((float)d);
  hs_i64 nc = t + 1 >= CB ? (t + 1 - CB) / CS + 1 : 0, b0 = t / B, nb = b0 + 1;
  const float *qrow = row<H0, RE0>(a, HS_IN(0), t);
  // (per head, so no 64-bit division by the run-time nc: ptxas makes that
  // a call, and spilled around it)
  for (int hh = 0; hh < GRP; hh++)
    for (hs_i64 j = threadIdx.x; j < nc; j += NT)
      p[hh * nc + j] =
          dot(qrow + (kh * GRP + hh) * d, row<H3, RE3>(a, HS_IN(3), j) + kh * d, (int)d) * scale;
  __syncthreads();
  for (int hh = threadIdx.x; hh < GRP; hh += NT) softmax_seq(p + hh * nc, nc);
  __syncthreads();
  if (threadIdx.x == 0) {
    for (hs_i64 bb = 0; bb < nb; bb++) imp[bb] = 0.0f;
    for (int hh = 0; hh < GRP; hh++)
      for (hs_i64 j = 0; j < nc; j++)
        for (hs_i64 bb = (j * CS) / B; bb <= (j * CS + CB - 1) / B && bb < nb; bb++)
          imp[bb] += p[hh * nc + j];
    int ns = 0;
    for (hs_i64 bb = 0; bb < nb && ns < KSEL; bb++)
      if (bb < INIT || bb > b0 - LOCAL) {
        sel[ns++] = (int)bb;
        imp[bb] = -inf();
      }
    // the remaining places by rank (ties: lower block), as top_indices
    int extra = 0, K2 = (int)KSEL - ns;
    for (hs_i64 i = 0; i < nb && K2 > 0; i++) {
      float v = imp[i];
      if (v == -inf() || v != v || (extra == K2 && !(v > tv[K2 - 1]))) continue;
      int q2 = extra < K2 ? extra++ : K2 - 1;
      while (q2 > 0 && v > tv[q2 - 1]) {
        tv[q2] = tv[q2 - 1];
        ti[q2] = ti[q2 - 1];
        q2--;
      }
      tv[q2] = v;
      ti[q2] = (int)i;
    }
    for (int i = 0; i < extra; i++) sel[ns + i] = ti[i];
    ns += extra;
    int n = 0;
    for (int i = 0; i < ns; i++)
      for (hs_i64 j = sel[i] * B; j < sel[i] * B + B && j <= t; j++) pos[n++] = (int)j;
    npos = n;
  }
  __syncthreads();
  hs_i64 lo = t - W + 1 > 0 ? t - W + 1 : 0;
  const float *gr = row<H5, RE5>(a, HS_IN(5), t);
  for (int hh = 0; hh < GRP; hh++) {
    int h = kh * GRP + hh;
    for (hs_i64 e = threadIdx.x; e < d; e += NT) qs[e] = qrow[h * d + e];
    __syncthreads();
    attend<NT, d>(
        qs, npos, [&](hs_i64 j) { return row<H1, RE1>(a, HS_IN(1), pos[j]) + kh * d; },
        [&](hs_i64 j) { return row<H2, RE2>(a, HS_IN(2), pos[j]) + kh * d; }, 0, o1, sp, red);
    attend<NT, d>(
        qs, t - lo + 1, [&](hs_i64 j) { return row<H1, RE1>(a, HS_IN(1), lo + j) + kh * d; },
        [&](hs_i64 j) { return row<H2, RE2>(a, HS_IN(2), lo + j) + kh * d; }, 0, o2, sp, red);
    __syncthreads();
    float *o = out_row(a, HS_A_OUT0, t) + h * d;
    for (hs_i64 e = threadIdx.x; e < d; e += NT) {
      float cmp = 0.0f;
      for (hs_i64 j = 0; j < nc; j++)
        cmp = fmaf(p[hh * nc + j], row<H4, RE4>(a, HS_IN(4), j)[kh * d + e], cmp);
      o[e] = gr[h * 3 + 0] * cmp + gr[h * 3 + 1] * o1[e] + gr[h * 3 + 2] * o2[e];
    }
    __syncthreads();
  }
}

// ---- rounding to a 16-bit cache type ------------------------------------------

// What the runtime's stores do on the host (util/half.c): a value kept as
// bf16 or f16 is rounded to that type (nearest even) after its op; a
// device-resident runtime launches hsac_round for the op's new rows with
// HS_A_P0 = 1 (bf16) or 2 (f16).
HS_INLINE float round_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __uint_as_float((u | 0x400000u) & 0xffff0000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return __uint_as_float(u & 0xffff0000u);
}

HS_INLINE float round_f16(float f) {
  if (f != f) return f;
  float a = fabsf(f), r;
  if (a >= 65520.0f) {
    r = inf();
  } else if (a < 6.103515625e-05f) {  // subnormal: multiples of 2^-24
    r = rintf(a * 16777216.0f) * 5.9604644775390625e-08f;
  } else {
    int e;
    float m = frexpf(a, &e);           // 11 significant bits
    r = ldexpf(rintf(ldexpf(m, 11)), e - 11);
  }
  return copysignf(r, f);
}

HS_INLINE void round_rows(const hs_args &a) {
  hs_i64 r = my_row(a);
  if (r >= a.s[HS_A_R1]) return;
  float *o = out_row(a, HS_A_OUT0, r);
  hs_i64 n = out_elems(a);
  bool bf = a.s[HS_A_P0] == 1;
  for (hs_i64 i = threadIdx.x; i < n; i += blockDim.x) o[i] = bf ? round_bf16(o[i]) : round_f16(o[i]);
}

// Packing rows into a history page of bf16 rows (the runtime's, when a
// chunk memory's K or V is kept in bf16 on the device): n rows of RE
// floats, src_stride floats apart, from src to dst (RE bf16 per row), one
// block per row.  Slots: 0 src, 1 dst, 2 n, 3 RE, 4 src_stride.
HS_INLINE void pack_rows16(const hs_args &a) {
  hs_i64 r = blockIdx.x, re = a.s[3];
  if (r >= a.s[2]) return;
  const float *src = (const float *)a.s[0] + r * a.s[4];
  unsigned short *dst = (unsigned short *)a.s[1] + r * re;
  for (hs_i64 i = threadIdx.x; i < re; i += blockDim.x) dst[i] = bf16_bits(src[i]);
}

} // namespace hs
