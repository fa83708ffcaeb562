// emu.h - runs hsac's generated CUDA C on the CPU, unchanged, for CI.
//
// The generated source (prelude.cuh and the kernels of emit.c) is compiled
// by the system C++ compiler with -DHS_EMU and this header included first.
// It provides the CUDA built-ins that source uses:
//   - every thread of a block is a fiber; a block's fibers run round-robin
//     on the calling thread, one block after another, a thread that waits
//     at a barrier switching straight to the next that can run;
//   - __syncthreads() is a barrier of the block's live threads (a thread
//     that has returned no longer counts, as on the hardware);
//   - __syncwarp, warp shuffles, votes and ldmatrix (also .trans) are
//     exchanges among the 32 lanes of a warp, each one barrier of the
//     warp: every lane must reach it (a divergent shuffle is reported as a
//     deadlock rather than hidden);
//   - cp.async copies at once (prelude.cuh's cp_async16), so its commit and
//     wait are no-ops: a missing wait is invisible here;
//   - mma.sync m16n8k16 (bf16) is computed from the lanes' fragments as the
//     PTX ISA lays them out;
//   - atomics are plain read-modify-writes (fibers switch only at
//     barriers, so nothing can come between);
//   - __shared__ variables are static: one instance, used by one block at a
//     time (launches from several host threads take turns: the emulator is
//     one device with one lock);
//   - the float/int bit casts, fmaf and the math functions map to libm.
// A barrier that some live threads never reach is reported ("deadlock")
// instead of hanging.  What the emulator cannot catch: timing, data races
// that the fixed fiber order happens to order, and hardware limits (shared
// memory and register budgets are checked by NVRTC and ptxas instead);
// see docs/cuda.md.
#ifndef HSAC_CUDA_EMU_H
#define HSAC_CUDA_EMU_H

#include <math.h>
#include <stddef.h>

#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct hs_dim3 {
  unsigned x, y, z;
};

// Switching fibers: on x86-64 a few instructions that save the callee-saved
// registers on the old stack and restore them from the new one (glibc's
// swapcontext also saves the signal mask: a system call per switch, which
// made the emulator spend most of its time in the kernel); elsewhere
// ucontext.
#if defined(__x86_64__)
extern "C" void hs_emu_swap(void **save_sp, void *to_sp);
__asm__(".text\n"
        ".globl hs_emu_swap\n"
        ".hidden hs_emu_swap\n"
        ".type hs_emu_swap,@function\n"
        "hs_emu_swap:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size hs_emu_swap, .-hs_emu_swap\n");
typedef void *hs_emu_ctx;
#else
typedef ucontext_t hs_emu_ctx;
#endif

namespace hs_emu {
enum { MAX_THREADS = 1024, STACK = 64 * 1024 };
struct fiber {
  hs_emu_ctx ctx;
  char *stack;
  bool done;
  int wait;              // 0 running, 1 at the block's barrier, 2 at its warp's
  unsigned long wait_gen; // the barrier's generation it waits to see pass
  hs_dim3 tid;            // its threadIdx
};
struct state {
  hs_emu_ctx sched;
  fiber fib[MAX_THREADS];
  int nthreads, cur, live;
  // the block barrier
  int arrived;
  unsigned long gen;
  // warp exchanges: what each lane gives, in one of two buffers chosen by
  // the parity of its warp barrier's generation.  A lane writes before the
  // barrier and reads after it; the next exchange (one generation on)
  // writes the other buffer, and any later one cannot start before every
  // lane has passed the barrier in between, after its read: so one barrier
  // per exchange, as one shfl is one instruction on the hardware.
  int warp_arrived[MAX_THREADS / 32];
  int warp_live[MAX_THREADS / 32];
  unsigned long warp_gen[MAX_THREADS / 32];
  unsigned long long xchg[2][MAX_THREADS];
  unsigned frag[2][MAX_THREADS][6]; // mma: each lane's A and B registers
  void (*body)(const void *);
  const void *args;
};
// One emulated device: its state is the loaded object's, and launches from
// several host threads take turns (the lock in hs_emu_run).  (Thread-local
// state cost a __tls_get_addr call on every threadIdx read: a fifth of
// the emulator's time.)
static state S;
static std::mutex lock;

// The fibers' stacks: one block, grown as launches need it and freed when
// the kernels' object is unloaded (a static destructor).
struct stacks {
  char *p = nullptr;
  size_t size = 0;
  ~stacks() { free(p); }
};
static stacks ST;
} // namespace hs_emu

static hs_dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline void hs_emu_switch(hs_emu_ctx *from, hs_emu_ctx *to) {
#if defined(__x86_64__)
  hs_emu_swap(from, *to);
#else
  swapcontext(from, to);
#endif
}

// Whether fiber i can run: not returned, and not waiting at a barrier that
// has not completed.
static inline bool hs_emu_ready(const hs_emu::state &s, int i) {
  const hs_emu::fiber &f = s.fib[i];
  if (f.done) return false;
  if (f.wait == 1) return s.gen != f.wait_gen;
  if (f.wait == 2) return s.warp_gen[i / 32] != f.wait_gen;
  return true;
}

// The first fiber after `me` in round-robin order that can run (me last),
// or -1 when none can.
static inline int hs_emu_next(const hs_emu::state &s, int me) {
  int n = s.nthreads;
  for (int k = 1; k <= n; k++) {
    int i = me + k >= n ? me + k - n : me + k;
    if (hs_emu_ready(s, i)) return i;
  }
  return -1;
}

// Makes fiber i the current thread (its threadIdx).
static inline void hs_emu_enter(hs_emu::state &s, int i) {
  s.cur = i;
  threadIdx = s.fib[i].tid;
}

// A thread waiting at a barrier hands the CPU straight to the next thread
// that can run (one switch, not two through the scheduler); when none can,
// to the scheduler, which reports the deadlock.
static inline void hs_emu_yield() {
  hs_emu::state &s = hs_emu::S;
  int me = s.cur, next = hs_emu_next(s, me);
  if (next == me) return;
  if (next < 0) {
    hs_emu_switch(&s.fib[me].ctx, &s.sched);
  } else {
    hs_emu_enter(s, next);
    hs_emu_switch(&s.fib[me].ctx, &s.fib[next].ctx);
  }
  // whoever switched back to us set s.cur and threadIdx for us
}

static inline void __syncthreads() {
  hs_emu::state &s = hs_emu::S;
  unsigned long g = s.gen;
  if (++s.arrived == s.live) {
    s.arrived = 0;
    s.gen++;
    return;
  }
  s.fib[s.cur].wait = 1;
  s.fib[s.cur].wait_gen = g;
  while (s.gen == g) hs_emu_yield();
  s.fib[s.cur].wait = 0;
}

static inline void hs_emu_warp_sync() {
  hs_emu::state &s = hs_emu::S;
  int w = s.cur / 32;
  unsigned long g = s.warp_gen[w];
  if (++s.warp_arrived[w] == s.warp_live[w]) {
    s.warp_arrived[w] = 0;
    s.warp_gen[w]++;
    return;
  }
  s.fib[s.cur].wait = 2;
  s.fib[s.cur].wait_gen = g;
  while (s.warp_gen[w] == g) hs_emu_yield();
  s.fib[s.cur].wait = 0;
}

// __syncwarp: a barrier of the warp's lanes (every lane must reach it).
static inline void __syncwarp(unsigned = 0xffffffffu) { hs_emu_warp_sync(); }

template <class T>
static inline T hs_emu_shfl(T v, int src) {
  hs_emu::state &s = hs_emu::S;
  int me = s.cur, base = me & ~31, b = (int)(s.warp_gen[me / 32] & 1);
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof v);
  s.xchg[b][me] = bits;
  hs_emu_warp_sync();
  T r;
  unsigned long long got = s.xchg[b][base + (src & 31)];
  memcpy(&r, &got, sizeof r);
  return r;
}

template <class T>
static inline T __shfl_xor_sync(unsigned, T v, int m) {
  return hs_emu_shfl(v, (hs_emu::S.cur & 31) ^ m);
}
template <class T>
static inline T __shfl_sync(unsigned, T v, int src) {
  return hs_emu_shfl(v, src);
}
template <class T>
static inline T __shfl_down_sync(unsigned, T v, unsigned d) {
  int lane = hs_emu::S.cur & 31;
  return hs_emu_shfl(v, lane + (int)d < 32 ? lane + (int)d : lane);
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d += A B, for the
// 32 lanes of a warp: each lane's registers hold the fragments the PTX ISA
// lays out ("Matrix Fragments for mma.m16n8k16 with floating point type"):
// with g = lane / 4 and t = lane % 4,
//   A (16 x 16, row): a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1],
//                     a[2] = A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8, col):  b[0] = B[2t, 2t+1][g], b[1] = B[2t+8, 2t+9][g]
//   C, D (16 x 8):    d[0], d[1] = D[g][2t, 2t+1], d[2], d[3] = D[g+8][2t, 2t+1]
// (the lower 16 bits of a register hold the element of lower index).  Every
// lane must take part; products are exact in f32, summed in k order.
static inline float hs_emu_bf16(unsigned reg, int hi) {
  unsigned bits = (hi ? reg >> 16 : reg & 0xffffu) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline void hs_emu_mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2]) {
  hs_emu::state &s = hs_emu::S;
  int me = s.cur, base = me & ~31, lane = me & 31, p = (int)(s.warp_gen[me / 32] & 1);
  unsigned(*frag)[6] = s.frag[p];
  for (int i = 0; i < 4; i++) frag[me][i] = a[i];
  frag[me][4] = b[0];
  frag[me][5] = b[1];
  hs_emu_warp_sync();
  int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; i++) {
    int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float acc = 0.0f;
    for (int k = 0; k < 16; k++) {
      int al = (row % 8) * 4 + (k % 8) / 2, ar = (row >= 8) + 2 * (k >= 8);
      int bl = col * 4 + (k % 8) / 2, br = k >= 8;
      acc += hs_emu_bf16(frag[base + al][ar], k & 1) * hs_emu_bf16(frag[base + bl][4 + br], k & 1);
    }
    d[i] += acc;
  }
}

// ldmatrix.sync.aligned.m8n8.x4 (x2).shared.b16: lanes 8i .. 8i+7 give the
// addresses of the 8 rows (8 b16 each) of matrix i; every lane receives in
// r[i] the elements 2 (lane % 4) and 2 (lane % 4) + 1 of row lane / 4 of
// matrix i.  For x2 only lanes 0..15 give addresses.
// With .trans each matrix is transposed on the way: the lane receives
// elements lane / 4 of rows 2 (lane % 4) and 2 (lane % 4) + 1.
static inline void hs_emu_ldmatrix_t(unsigned *r, int nmat, const unsigned short *row,
                                     bool trans) {
  hs_emu::state &s = hs_emu::S;
  int me = s.cur, base = me & ~31, lane = me & 31, b = (int)(s.warp_gen[me / 32] & 1);
  unsigned long long *xchg = s.xchg[b];
  memcpy(&xchg[me], &row, sizeof row);
  hs_emu_warp_sync();
  for (int i = 0; i < nmat; i++) {
    const unsigned short *p, *q;
    if (trans) {
      memcpy(&p, &xchg[base + 8 * i + 2 * (lane % 4)], sizeof p);
      memcpy(&q, &xchg[base + 8 * i + 2 * (lane % 4) + 1], sizeof q);
      r[i] = (unsigned)p[lane / 4] | ((unsigned)q[lane / 4] << 16);
    } else {
      memcpy(&p, &xchg[base + 8 * i + lane / 4], sizeof p);
      r[i] = (unsigned)p[2 * (lane % 4)] | ((unsigned)p[2 * (lane % 4) + 1] << 16);
    }
  }
}
static inline void hs_emu_ldmatrix(unsigned *r, int nmat, const unsigned short *row) {
  hs_emu_ldmatrix_t(r, nmat, row, false);
}

// Votes: every lane must take part, as for the shuffles.
static inline unsigned __ballot_sync(unsigned, int pred) {
  hs_emu::state &s = hs_emu::S;
  int me = s.cur, base = me & ~31, p = (int)(s.warp_gen[me / 32] & 1);
  s.xchg[p][me] = pred != 0;
  hs_emu_warp_sync();
  unsigned b = 0;
  for (int i = 0; i < 32; i++)
    if (!s.fib[base + i].done && s.xchg[p][base + i]) b |= 1u << i;
  return b;
}
static inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0; }
static inline int __all_sync(unsigned m, int pred) {
  hs_emu::state &s = hs_emu::S;
  unsigned live = 0;
  for (int i = 0; i < 32; i++)
    if (!s.fib[(s.cur & ~31) + i].done) live |= 1u << i;
  return __ballot_sync(m, pred) == live;
}

// Atomics: the fibers of a launch run one at a time on one host thread and
// switch only at barriers, so a read-modify-write is atomic as it is.
static inline int atomicAdd(int *p, int v) { int o = *p; *p = o + v; return o; }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { unsigned o = *p; *p = o + v; return o; }
static inline float atomicAdd(float *p, float v) { float o = *p; *p = o + v; return o; }
static inline int atomicMax(int *p, int v) { int o = *p; if (v > o) *p = v; return o; }
static inline int atomicMin(int *p, int v) { int o = *p; if (v < o) *p = v; return o; }
static inline int atomicExch(int *p, int v) { int o = *p; *p = v; return o; }
static inline int atomicCAS(int *p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }

static inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}

static inline float __uint_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline float __int_as_float(int i) {
  float f;
  memcpy(&f, &i, 4);
  return f;
}
static inline int __float_as_int(float f) {
  int i;
  memcpy(&i, &f, 4);
  return i;
}

static void hs_emu_entry() {
  hs_emu::state &s = hs_emu::S;
  s.body(s.args);
  s.fib[s.cur].done = true;
  s.live--;
  s.warp_live[s.cur / 32]--;
  // a barrier the others wait at may now be complete without us
  if (s.arrived > 0 && s.arrived == s.live) {
    s.arrived = 0;
    s.gen++;
  }
  int w = s.cur / 32;
  if (s.warp_arrived[w] > 0 && s.warp_arrived[w] == s.warp_live[w]) {
    s.warp_arrived[w] = 0;
    s.warp_gen[w]++;
  }
}

#if defined(__x86_64__)
// A new fiber starts here (the first switch "returns" into it) and, once
// its thread has returned, goes back to the scheduler for good.
static void hs_emu_start() {
  hs_emu_entry();
  hs_emu::state &s = hs_emu::S;
  void *dead;
  hs_emu_swap(&dead, s.sched);
  __builtin_unreachable();
}

static void hs_emu_make(hs_emu::fiber &f) {
  // 16-byte aligned top; a zero return address under the start function's
  // address, then the six registers hs_emu_swap pops
  void **sp = (void **)(((unsigned long)(f.stack + hs_emu::STACK)) & ~15ul);
  *--sp = 0;
  *--sp = (void *)hs_emu_start;
  for (int i = 0; i < 6; i++) *--sp = 0;
  f.ctx = (void *)sp;
}
#else
static void hs_emu_make(hs_emu::fiber &f) {
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = hs_emu::STACK;
  f.ctx.uc_link = &hs_emu::S.sched;
  makecontext(&f.ctx, hs_emu_entry, 0);
}
#endif

// The launch of one kernel: grid and block shape, as the runtime's
// launcher passes them (codegen/cuda/cuda.h, cg_cuda_launch).
struct hs_emu_launch {
  unsigned grid[3], block[3];
};

// Runs every block of the grid.  Returns 0, or -1 with err.
static int hs_emu_run(void (*body)(const void *), const void *args, const hs_emu_launch *l,
                      char *err, size_t errsize) {
  std::lock_guard<std::mutex> guard(hs_emu::lock);
  hs_emu::state &s = hs_emu::S;
  int n = (int)(l->block[0] * l->block[1] * l->block[2]);
  if (n <= 0 || n > hs_emu::MAX_THREADS || n % 32) {
    snprintf(err, errsize, "block of %d threads: the emulator runs 32 to %d, a multiple of 32",
             n, (int)hs_emu::MAX_THREADS);
    return -1;
  }
  size_t need = (size_t)n * hs_emu::STACK;
  if (hs_emu::ST.size < need) {
    free(hs_emu::ST.p);
    hs_emu::ST.p = (char *)malloc(need);
    hs_emu::ST.size = hs_emu::ST.p ? need : 0;
    if (!hs_emu::ST.p) {
      snprintf(err, errsize, "out of memory for the emulator's fiber stacks");
      return -1;
    }
  }
  for (int i = 0; i < n; i++) {
    s.fib[i].stack = hs_emu::ST.p + (size_t)i * hs_emu::STACK;
    s.fib[i].tid = {i % l->block[0], (i / l->block[0]) % l->block[1],
                    i / (l->block[0] * l->block[1])};
  }
  s.body = body;
  s.args = args;
  blockDim = {l->block[0], l->block[1], l->block[2]};
  gridDim = {l->grid[0], l->grid[1], l->grid[2]};
  for (unsigned bz = 0; bz < l->grid[2]; bz++)
    for (unsigned by = 0; by < l->grid[1]; by++)
      for (unsigned bx = 0; bx < l->grid[0]; bx++) {
        blockIdx = {bx, by, bz};
        s.nthreads = n;
        s.live = n;
        s.arrived = 0;
        for (int w = 0; w < n / 32; w++) {
          s.warp_arrived[w] = 0;
          s.warp_live[w] = 32;
        }
        for (int i = 0; i < n; i++) {
          s.fib[i].done = false;
          s.fib[i].wait = 0;
          hs_emu_make(s.fib[i]);
        }
        // the threads run round-robin, each until it waits at a barrier
        // (then it switches to the next that can run) or returns (then it
        // comes back here); when none can run, every thread has returned,
        // or those left wait at barriers the others never reach: a
        // deadlock (the waiting fibers are abandoned: the next block
        // remakes them)
        for (int at = n - 1, next; (next = hs_emu_next(s, at)) >= 0; at = s.cur) {
          hs_emu_enter(s, next);
          hs_emu_switch(&s.sched, &s.fib[next].ctx);
        }
        if (s.live > 0) {
          snprintf(err, errsize,
                   "deadlock in block (%u, %u, %u): %d of %d threads wait at a barrier the "
                   "others never reach",
                   bx, by, bz, s.live, n);
          return -1;
        }
      }
  return 0;
}

// Each generated kernel gets an entry point NAME__emu for the runtime.
#define HS_EMU_ENTRY(NAME)                                                                   \
  extern "C" int NAME##__emu(const void *args, const hs_emu_launch *l, char *err,            \
                             size_t errsize) {                                               \
    return hs_emu_run([](const void *p) { NAME(*(const hs_args *)p); }, args, l, err,        \
                      errsize);                                                              \
  }

// A batched kernel's one parameter is an hs_batch: one hs_args per
// blockIdx.z.
#define HS_EMU_ENTRY_BATCH(NAME)                                                             \
  extern "C" int NAME##__emu(const void *args, const hs_emu_launch *l, char *err,            \
                             size_t errsize) {                                               \
    return hs_emu_run([](const void *p) { NAME(*(const hs_batch *)p); }, args, l, err,       \
                      errsize);                                                              \
  }

#endif
