"""PyTorch's attention on a GPU, the peers of bench_gpu_kernels (issue 12).

The configuration of bench/gpu_kernels.c: chunk size S = 64, top-k K = 8,
head width d = 64, G = 16 query heads sharing one KV head, bf16, every one
of L query positions.  The selection is bench/bench_ir.h's exactly (the
64-bit LCG from 99, K chunks per position drawn with replacement from the
chunks before its own, -1 where none), so hsac and these compute over the
same chunks.

  sdpa   F.scaled_dot_product_attention, dense causal over all L keys (the
         FlashAttention backend where it applies): what a dense model pays.
  flex   torch.compile(flex_attention) with a block mask of the selection:
         KV blocks of S = 64 keys (one chunk each), query blocks of
         --qblock rows (default 64: a block computes the union of its
         rows' chunks, the mask_mod then masks each row to its own; fewer
         rows per block, a smaller union), one softmax over a query's
         selected keys (HSA's joint merge: the same FLOPs as the weighted
         merge hsac computes).  Its Triton kernel's tiles are 64 x 64
         (kernel_options): the block sizes must be multiples of them, and
         its default of 128 keys does not divide a chunk.

  swa    the SWA layers' attention, the peer of bench_gpu_kernels' windowed
         attention: torch.compile(flex_attention) with a sliding-window
         block mask (window --window keys, causal; create_block_mask),
         its own FLOPs (4 d per query head and key in its window) in the
         own column.  Not in the default --impl.

Times are the best of --reps after a warm-up, measured with CUDA events.
HSA's FLOPs are counted as L * 16 * K * 4 * S * d for every implementation
(SDPA's own dense count is printed besides).  Prints Markdown rows and
writes --json.  --device cpu runs the same code at small L, to check it
without a GPU (flex then runs eagerly, not compiled).
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

S, K, D, HQ = 64, 8, 64, 16
A, C = 6364136223846793005, 1442695040888963407
M64 = (1 << 64) - 1


def lcg_states(n, seed=99):
    """The first n states after seed of r = A r + C (mod 2^64), vectorized:
    a block of states by the recurrence, then whole blocks at once by the
    block's composed map."""
    blk = 8192
    first = np.empty(blk, dtype=np.uint64)
    r = seed
    for i in range(blk):
        r = (r * A + C) & M64
        first[i] = r
    # the map r -> A^blk r + C_blk, composed in Python integers
    ab, cb = 1, 0
    for _ in range(blk):
        ab, cb = (ab * A) & M64, (cb * A + C) & M64
    out = np.empty(((n + blk - 1) // blk) * blk, dtype=np.uint64)
    cur = first
    ab64, cb64 = np.uint64(ab), np.uint64(cb)
    with np.errstate(over="ignore"):
        for b in range(len(out) // blk):
            out[b * blk:(b + 1) * blk] = cur
            cur = cur * ab64 + cb64
    return out[:n]


def selection(L):
    """[L, K] chunk indices as bench_ir.h's hsa_selection(0, L, ...)."""
    r = lcg_states(L * K).reshape(L, K)
    own = (np.arange(L, dtype=np.uint64) // S)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = (r >> np.uint64(33)) % np.maximum(own, np.uint64(1))
    idx = idx.astype(np.int64)
    idx[(own == 0).repeat(K, axis=1)] = -1
    return idx


def timed(fn, reps, device):
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        if device == "cuda":
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            torch.cuda.synchronize()
            t = e0.elapsed_time(e1) / 1e3
        else:
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
        best = min(best, t)
    return best


def block_mask(idx, L, qblock, device):
    """The selection as a BlockMask: per query block, the chunks any of its
    rows selected (ascending), and a mask_mod keeping each row's own."""
    from torch.nn.attention.flex_attention import BlockMask
    Cn = L // S
    sel = torch.from_numpy(idx).to(device)
    nqb = (L + qblock - 1) // qblock
    blk = torch.zeros(nqb, Cn, dtype=torch.bool, device=device)
    rows = torch.arange(L, device=device)[:, None].expand(-1, K)
    ok = sel >= 0
    blk[(rows // qblock)[ok], sel[ok]] = True
    num = blk.sum(dim=1).to(torch.int32)
    big = torch.full_like(sel[:1, :1], Cn).expand(nqb, Cn)
    order = torch.sort(torch.where(blk, torch.arange(Cn, device=device), big), dim=1).values
    kv_indices = order.clamp(max=Cn - 1).to(torch.int32)

    def mask_mod(b, h, q_idx, kv_idx):
        # K comparisons or-ed: plain indexing, which flex's compiled
        # kernels support (a reduction such as .any() may not be)
        c = kv_idx // S
        m = sel[q_idx, 0] == c
        for j in range(1, K):
            m = m | (sel[q_idx, j] == c)
        return m

    bm = BlockMask.from_kv_blocks(num[None, None], kv_indices[None, None],
                                  BLOCK_SIZE=(qblock, S), mask_mod=mask_mod,
                                  seq_lengths=(L, L))
    return bm, float(num.sum()) / (nqb * Cn)


def reference_rows(q, k, v, idx, rows):
    """Joint-merge output of a few rows in float64 (q, k, v may be on the
    GPU: only the rows and keys used are copied)."""
    out = []
    for t in rows:
        c = [int(x) for x in idx[t] if x >= 0]
        c = sorted(set(c))
        if not c:
            out.append(torch.zeros(HQ, D, dtype=torch.float64))
            continue
        keys = torch.cat([torch.arange(x * S, (x + 1) * S) for x in c]).to(k.device)
        kk = k[0, 0, keys].double().cpu()
        vv = v[0, 0, keys].double().cpu()
        qq = q[0, :, t].double().cpu()
        p = torch.softmax(qq @ kk.T / math.sqrt(D), dim=-1)
        out.append(p @ vv)
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--L", type=int, nargs="+", default=[16384, 65536, 262144, 1048576])
    ap.add_argument("--impl", nargs="+", default=["sdpa", "flex"])
    ap.add_argument("--qblock", type=int, default=64)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dev = args.device
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print("## PyTorch %s on %s (%s)\n" % (torch.__version__, name, dt))
    print("| implementation | L | time | HSA TFLOP/s | own TFLOP/s | Mtokens/s | notes |")
    print("|---|---|---|---|---|---|---|")
    results = []
    flex = None
    if "flex" in args.impl or "swa" in args.impl:
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention) if dev == "cuda" else flex_attention
    for L in args.L:
        g = torch.Generator(device="cpu").manual_seed(3)
        q = torch.randn(1, HQ, L, D, generator=g).to(dev, dt)
        k = torch.randn(1, 1, L, D, generator=g).to(dev, dt)
        v = torch.randn(1, 1, L, D, generator=g).to(dev, dt)
        hsa_flops = float(L) * HQ * K * 4.0 * S * D
        for impl in args.impl:
            note = ""
            try:
                if impl == "sdpa":
                    def fn():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                              enable_gqa=True)
                    own = 4.0 * D * HQ * L * (L + 1) / 2
                elif impl == "flex":
                    idx = selection(L)
                    bm, dens = block_mask(idx, L, args.qblock, dev)

                    opts = {"BLOCK_M": 64, "BLOCK_N": 64} if dev == "cuda" else None

                    def fn():
                        return flex(q, k, v, block_mask=bm, enable_gqa=True,
                                    kernel_options=opts)
                    own = hsa_flops
                    note = "query blocks of %d, block density %.4f" % (args.qblock, dens)
                    rows = [L - 1, L // 2, S * 2]
                    got = fn()[0, :, rows].transpose(0, 1).double().cpu()
                    want = reference_rows(q, k, v, idx, rows)
                    err = float((got - want).norm() / want.norm())
                    note += ", error vs float64 %.1e" % err
                elif impl == "swa":
                    from torch.nn.attention.flex_attention import create_block_mask
                    W = args.window

                    def window_mod(b, h, q_idx, kv_idx):
                        return (kv_idx <= q_idx) & (q_idx - kv_idx < W)
                    bm = create_block_mask(window_mod, None, None, L, L, device=dev,
                                           BLOCK_SIZE=64)
                    opts = {"BLOCK_M": 64, "BLOCK_N": 64} if dev == "cuda" else None

                    def fn():
                        return flex(q, k, v, block_mask=bm, enable_gqa=True,
                                    kernel_options=opts)
                    keys = (W * (W + 1) / 2 + (L - W) * W) if L > W else L * (L + 1) / 2
                    own = 4.0 * D * HQ * keys
                    # a few rows against float64
                    rows = [L - 1, L // 2, 3]
                    got = fn()[0, :, rows].transpose(0, 1).double().cpu()
                    want = []
                    for t in rows:
                        lo = max(0, t - W + 1)
                        kk = k[0, 0, lo:t + 1].double().cpu()
                        vv = v[0, 0, lo:t + 1].double().cpu()
                        qq = q[0, :, t].double().cpu()
                        want.append(torch.softmax(qq @ kk.T / math.sqrt(D), dim=-1) @ vv)
                    want = torch.stack(want)
                    note = "window %d, error vs float64 %.1e" % (
                        W, float((got - want).norm() / want.norm()))
                else:
                    raise SystemExit("unknown --impl " + impl)
                t = timed(fn, args.reps, dev)
            except torch.cuda.OutOfMemoryError as e:  # noqa: PERF203
                print("| %s | %dK | out of memory | | | | %s |" % (impl, L >> 10, str(e)[:60]))
                torch.cuda.empty_cache()
                continue
            except Exception as e:  # noqa: BLE001  one failure must not hide the other rows
                print("| %s | %dK | failed | | | | %s: %s |" % (
                    impl, L >> 10, type(e).__name__, str(e).replace("\n", " ")[:200]), flush=True)
                continue
            r = {"impl": impl, "L": L, "ms": t * 1e3, "hsa_tflops": hsa_flops / t * 1e-12,
                 "own_tflops": own / t * 1e-12, "mtok_s": L / t * 1e-6, "note": note}
            results.append(r)
            print("| %s | %dK | %.3f ms | %.1f | %.1f | %.2fM | %s |" % (
                impl, L >> 10, r["ms"], r["hsa_tflops"], r["own_tflops"], r["mtok_s"], note),
                flush=True)
        del q, k, v
        if dev == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
