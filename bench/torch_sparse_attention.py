"""PyTorch baselines for the HSA sparse-attention layer (chunk_attention).

The configuration of bench/cpu_kernels.c step 3: chunk size S = 64, top-k
K = 8, head width d = 64, G = 16 query heads sharing one KV head, fp32.
A chunk memory of C = L / S chunks (K, V: [C, S, d]); queries q [Lq, 16, d]
for the last Lq positions L-Lq .. L-1 of a context of L tokens; for each
query position t, K chunk indices among the eligible chunks 0..floor(t/S)-1
and weights w [Lq, K] (all 0.1).  Per query t and head h:

    O[t, h] = sum_k w[t, k] * softmax_j(q[t, h] . K[i_k, j] / sqrt(d)) V[i_k, j]

(one softmax per selected chunk, then the weighted sum; merge = weighted).
FLOPs counted = Lq * 16 * K * 4 * S * d (QK^T and PV, 2 per multiply-add),
the count of bench/cpu_kernels.c, for every implementation.

The selection (--select lcg, the default) is bench/cpu_kernels.c's exactly:
the same 64-bit LCG, indices drawn with replacement, -1 (an empty slot,
weight 0) for a position with no eligible chunk.  --select clustered is
its clustered selection (bench/bench_ir.h, hsa_selection_clustered: each
slot keeps the previous query's chunk with probability 0.925, as a
trained model's neighbouring tokens mostly do; the same LCG).  --select
distinct draws K distinct chunks (fewer when fewer are eligible) with
numpy, seed 99.

Implementations (best of 3 after a warm-up; queries in blocks of --block):
  eager        gather K[idx], V[idx] -> [B, K, S, d], einsum scores
               [B, K, 16, S], softmax over S, einsum with V, weighted sum.
  sdpa         F.scaled_dot_product_attention per (query, chunk): the 16
               heads are 16 query rows against the S keys of one chunk,
               then the weighted sum; the same per-chunk softmax as eager.
  sdpa-joint   SDPA with one softmax over all K*S gathered keys of a query
               (the joint merge; same FLOPs, weights unused), for reference.
  flex         FlexAttention (eager, i.e. not compiled), one softmax over
               the selected keys (the joint form) in a KV sequence of the
               whole context L; only run while its dense score matrix fits
               --flex-eager-max-gib (the eager path materializes it).
  flex-compiled  torch.compile(flex_attention) with the same block mask
               (CPU support needs torch >= 2.6, a C++ compiler, Python.h).
For flex the block mask is built directly from the selection: KV blocks of
S = 64 keys (one chunk each), query blocks of --flex-qblock rows (default
1: the selection is per token, so a wider query block is the union of its
rows' chunks: at 128, flex's own default, nearly every block of a 4K-16K
context is computed); a block is computed when any query of the block
selected that chunk, and the mask_mod masks the rest, so with wider query
blocks flex computes more than it is credited for (the density is printed
in the notes, and the rate over the admitted keys only).  With --select lcg a chunk drawn
twice for one query is admitted once by the mask (the joint form over
distinct chunks); the notes print the fraction of the K*S counted keys the
mask admits.

Prints one Markdown row per (impl, L): | impl | L | GFLOP/s | tokens/s |,
tokens/s being query tokens per second (Lq / best time); then notes.
Also checks eager (and sdpa) against a direct float64 loop on a few rows.

  python bench/torch_sparse_attention.py --L 4096 16384 --lq 4096 --threads 2
"""
import argparse
import math
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

S, K, D, HQ = 64, 8, 64, 16


def flops(lq):
    return float(lq) * HQ * K * 4.0 * S * D


# ---- inputs ------------------------------------------------------------------

def lcg(r):
    """The 64-bit LCG of bench/bench_ir.h."""
    return (r * 6364136223846793005 + 1442695040888963407) & ((1 << 64) - 1)


def select_lcg(L, lq):
    """bench/cpu_kernels.c's selection: r = lcg(r) from r = 99, index
    (r >> 33) % own."""
    sel = np.empty((lq, K), dtype=np.int64)
    r = 99
    for t in range(lq):
        own = (L - lq + t) // S
        for k in range(K):
            r = lcg(r)
            sel[t, k] = (r >> 33) % own if own > 0 else -1
    return sel


KEEP_PERMILLE = 925  # bench/bench_ir.h's HSA_KEEP_PERMILLE


def select_clustered(L, lq):
    """bench/bench_ir.h's hsa_selection_clustered: slot k of a query keeps
    the previous query's chunk when (r >> 33) % 1000 < 925, else a second
    draw picks (r >> 33) % own; the same LCG from r = 99."""
    sel = np.empty((lq, K), dtype=np.int64)
    r = 99
    for t in range(lq):
        own = (L - lq + t) // S
        for k in range(K):
            prev = sel[t - 1, k] if t > 0 else -1
            r = lcg(r)
            keep = prev >= 0 and (r >> 33) % 1000 < KEEP_PERMILLE
            if not keep and own > 0:
                r = lcg(r)
            sel[t, k] = prev if keep else ((r >> 33) % own if own > 0 else -1)
    return sel


def select_distinct(L, lq, seed=99):
    rng = np.random.default_rng(seed)
    sel = np.full((lq, K), -1, dtype=np.int64)
    for t in range(lq):
        own = (L - lq + t) // S
        n = min(K, own)
        if n > 0:
            c = np.sort(rng.choice(own, size=n, replace=False))[::-1]  # most recent first
            sel[t, :n] = c
    return sel


def make_inputs(L, lq, how, seed=3):
    if L % S or lq > L:
        raise SystemExit("L must be a multiple of %d and at least --lq" % S)
    C = L // S
    g = torch.Generator().manual_seed(seed)
    Kc = torch.randn(C, S, D, generator=g)
    Vc = torch.randn(C, S, D, generator=g)
    q = torch.randn(lq, HQ, D, generator=g)
    sel = {"lcg": select_lcg, "clustered": select_clustered,
           "distinct": select_distinct}[how](L, lq)
    idx = torch.from_numpy(sel)
    w = torch.where(idx >= 0, torch.full((lq, K), 0.1), torch.zeros(lq, K))
    return q, Kc, Vc, idx, w


# ---- implementations ---------------------------------------------------------

def hsa_eager(q, Kc, Vc, idx, w, block):
    lq = q.shape[0]
    out = torch.empty_like(q)
    scale = 1.0 / math.sqrt(D)
    ic = idx.clamp(min=0)
    for b0 in range(0, lq, block):
        b1 = min(lq, b0 + block)
        kk = Kc[ic[b0:b1]]                                    # [B, K, S, d]
        vv = Vc[ic[b0:b1]]
        s = torch.einsum("bhd,bksd->bkhs", q[b0:b1], kk) * scale
        p = torch.softmax(s, dim=-1)
        o = torch.einsum("bkhs,bksd->bkhd", p, vv)            # [B, K, 16, d]
        out[b0:b1] = torch.einsum("bk,bkhd->bhd", w[b0:b1], o)
    return out


def hsa_sdpa(q, Kc, Vc, idx, w, block):
    lq = q.shape[0]
    out = torch.empty_like(q)
    ic = idx.clamp(min=0)
    for b0 in range(0, lq, block):
        b1 = min(lq, b0 + block)
        kk = Kc[ic[b0:b1]]                                    # [B, K, S, d]
        vv = Vc[ic[b0:b1]]
        qq = q[b0:b1, None].expand(-1, K, -1, -1)             # [B, K, 16, d]: heads as rows
        o = F.scaled_dot_product_attention(qq, kk, vv)        # [B, K, 16, d]
        out[b0:b1] = torch.einsum("bk,bkhd->bhd", w[b0:b1], o)
    return out


def hsa_sdpa_joint(q, Kc, Vc, idx, w, block):
    lq = q.shape[0]
    out = torch.empty_like(q)
    ic = idx.clamp(min=0)
    for b0 in range(0, lq, block):
        b1 = min(lq, b0 + block)
        B = b1 - b0
        kk = Kc[ic[b0:b1]].reshape(B, 1, K * S, D)
        vv = Vc[ic[b0:b1]].reshape(B, 1, K * S, D)
        valid = (idx[b0:b1] >= 0).repeat_interleave(S, dim=1).reshape(B, 1, 1, K * S)
        o = F.scaled_dot_product_attention(q[b0:b1, None], kk, vv, attn_mask=valid)
        out[b0:b1] = o[:, 0]
    return out


def reference_rows(q, Kc, Vc, idx, w, rows):
    """Direct float64 loop of the weighted form on a few query rows."""
    qn = q.double().numpy()
    Kn, Vn = Kc.double().numpy(), Vc.double().numpy()
    res = {}
    for t in rows:
        o = np.zeros((HQ, D))
        for h in range(HQ):
            for k in range(K):
                i = int(idx[t, k])
                if i < 0:
                    continue
                s = np.array([qn[t, h] @ Kn[i, j] for j in range(S)]) / math.sqrt(D)
                p = np.exp(s - s.max())
                p /= p.sum()
                o[h] += float(w[t, k]) * (p @ Vn[i])
        res[t] = o
    return res


def joint_reference_rows(q, Kc, Vc, idx, rows, distinct):
    """float64 joint softmax over the selected chunks' keys (each chunk once
    when distinct, as the flex mask admits it; every slot otherwise)."""
    qn = q.double().numpy()
    Kn, Vn = Kc.double().numpy(), Vc.double().numpy()
    res = {}
    for t in rows:
        ch = [int(i) for i in idx[t] if i >= 0]
        if distinct:
            ch = sorted(set(ch))
        if not ch:
            res[t] = np.zeros((HQ, D))
            continue
        kk = np.concatenate([Kn[i] for i in ch])
        vv = np.concatenate([Vn[i] for i in ch])
        s = qn[t] @ kk.T / math.sqrt(D)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        res[t] = p @ vv
    return res


# ---- FlexAttention -----------------------------------------------------------

def flex_setup(L, lq, idx, qblock):
    """The block mask of the selection over a KV sequence of length L."""
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask
    C = L // S
    allowed = torch.zeros(lq, C, dtype=torch.bool)
    valid = idx >= 0
    rows = torch.arange(lq)[:, None].expand(-1, K)
    allowed[rows[valid], idx[valid]] = True

    def mask_mod(b, h, q_idx, kv_idx):
        return allowed[q_idx, kv_idx // S]

    nqb = (lq + qblock - 1) // qblock
    pad = nqb * qblock - lq
    a = allowed if not pad else torch.cat([allowed, torch.zeros(pad, C, dtype=torch.bool)])
    blk = a.reshape(nqb, qblock, C).any(dim=1)                 # [nQB, C]: KV block = chunk
    num = blk.sum(dim=1).to(torch.int32)
    # indices of the touched chunks first, in ascending order
    order = torch.sort(torch.where(blk, torch.arange(C), torch.full_like(blk, C, dtype=torch.long)),
                       dim=1).values
    kv_indices = order.clamp(max=C - 1).to(torch.int32)
    if hasattr(BlockMask, "from_kv_blocks"):
        bm = BlockMask.from_kv_blocks(num[None, None], kv_indices[None, None],
                                      BLOCK_SIZE=(qblock, S), mask_mod=mask_mod,
                                      seq_lengths=(lq, L))
    else:  # older API: evaluates mask_mod densely
        bm = create_block_mask(mask_mod, None, None, lq, L, device="cpu",
                               BLOCK_SIZE=(qblock, S))
    density = float(num.sum()) / (nqb * C)
    admitted = int(allowed.sum()) * S
    return bm, density, admitted


def flex_run(fn, q, Kc, Vc, bm, lq, L):
    qq = q.permute(1, 0, 2)[None]                             # [1, 16, Lq, d]
    kk = Kc.reshape(1, 1, L, D)
    vv = Vc.reshape(1, 1, L, D)
    o = fn(qq, kk, vv, block_mask=bm, enable_gqa=True)
    return o[0].permute(1, 0, 2)


# ---- driver ------------------------------------------------------------------

def best_of(fn, reps=3):
    fn()                                                       # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--L", type=int, nargs="+", default=[4096, 16384, 65536, 262144])
    ap.add_argument("--lq", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--block", type=int, default=512, help="query rows per block (eager, sdpa)")
    ap.add_argument("--impl", nargs="+",
                    default=["eager", "sdpa", "sdpa-joint", "flex", "flex-compiled"])
    ap.add_argument("--select", choices=["lcg", "clustered", "distinct"], default="lcg")
    ap.add_argument("--flex-qblock", type=int, default=1,
                    help="FlexAttention query block size (1: the exact per-token mask; "
                    "flex's own default is 128)")
    ap.add_argument("--flex-eager-max-gib", type=float, default=2.0,
                    help="skip eager flex when its [16, Lq, L] fp32 scores exceed this")
    ap.add_argument("--check-rows", type=int, default=4, help="rows checked in float64 (0: none)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    notes = ["torch %s, %d thread(s), S %d, K %d, d %d, G %d, fp32, Lq %d, selection %s"
             % (torch.__version__, torch.get_num_threads(), S, K, D, HQ, args.lq, args.select)]
    fl = flops(args.lq)
    compiled = None
    print("| impl | L | GFLOP/s | tokens/s |")
    print("|---|---|---|---|")
    sys.stdout.flush()
    for L in args.L:
        q, Kc, Vc, idx, w = make_inputs(L, args.lq, args.select)
        rows = sorted(set([0, args.lq // 3, (2 * args.lq) // 3, args.lq - 1][:max(0, args.check_rows)]))
        ref = ref_joint = None
        if rows:
            ref = reference_rows(q, Kc, Vc, idx, w, rows)
        for impl in args.impl:
            res = None
            try:
                with torch.inference_mode():
                    if impl == "eager":
                        run = lambda: hsa_eager(q, Kc, Vc, idx, w, args.block)  # noqa: E731
                    elif impl == "sdpa":
                        run = lambda: hsa_sdpa(q, Kc, Vc, idx, w, args.block)  # noqa: E731
                    elif impl == "sdpa-joint":
                        run = lambda: hsa_sdpa_joint(q, Kc, Vc, idx, w, args.block)  # noqa: E731
                    elif impl in ("flex", "flex-compiled"):
                        from torch.nn.attention.flex_attention import flex_attention
                        if impl == "flex":
                            gib = 4.0 * HQ * args.lq * L / 2**30
                            if gib > args.flex_eager_max_gib:
                                raise RuntimeError("skipped: eager flex materializes %.1f GiB of "
                                                   "scores (--flex-eager-max-gib %.1f)"
                                                   % (gib, args.flex_eager_max_gib))
                            fn = flex_attention
                        else:
                            if compiled is None:
                                compiled = torch.compile(flex_attention)
                            fn = compiled
                        bm, density, admitted = flex_setup(L, args.lq, idx, args.flex_qblock)
                        t0 = time.perf_counter()
                        res = flex_run(fn, q, Kc, Vc, bm, args.lq, L)
                        first = time.perf_counter() - t0
                        notes.append("%s L %d: block mask density %.1f%% of [Lq/%d, C] blocks, "
                                     "mask admits %.1f%% of the counted keys; first call %.1f s"
                                     % (impl, L, 100 * density, args.flex_qblock,
                                        100.0 * admitted / (args.lq * K * S), first))
                        run = lambda: flex_run(fn, q, Kc, Vc, bm, args.lq, L)  # noqa: E731
                    else:
                        raise RuntimeError("unknown impl")
                    if res is None:
                        res = run()
                    best = best_of(run)
            except Exception as e:  # report and go on with the next one
                msg = str(e).strip().splitlines()
                notes.append("%s L %d: not run: %s: %s" % (impl, L, type(e).__name__,
                                                           msg[0][:300] if msg else ""))
                print("| %s | %d | n/a | n/a |" % (impl, L))
                sys.stdout.flush()
                continue
            print("| %s | %d | %.2f | %.0f |" % (impl, L, fl / best * 1e-9, args.lq / best))
            if impl.startswith("flex"):
                notes.append("%s L %d: %.2f GFLOP/s counting only the keys the mask admits"
                             % (impl, L, 4.0 * HQ * D * admitted / best * 1e-9))
            sys.stdout.flush()
            if rows:
                if impl in ("eager", "sdpa"):
                    err = max(float(np.abs(res[t].double().numpy() - ref[t]).max()) for t in rows)
                    notes.append("%s L %d: max abs error vs float64 loop on rows %s: %.2e"
                                 % (impl, L, rows, err))
                else:
                    distinct = impl.startswith("flex")
                    rj = joint_reference_rows(q, Kc, Vc, idx, rows, distinct)
                    err = max(float(np.abs(res[t].double().numpy() - rj[t]).max()) for t in rows)
                    notes.append("%s L %d: max abs error vs float64 joint softmax on rows %s: %.2e"
                                 % (impl, L, rows, err))
    print()
    for n in notes:
        print("- " + n)


if __name__ == "__main__":
    main()
