"""Every hsac IR op (docs/ir.md) as torch code over the whole sequence.

Each function follows the C reference of the same name in runtime/ref_ops.c
(rt_op_NAME); the docstrings state the rule wherever PAPER.md leaves a
choice.  Everything is computed for all L positions at once (the
interpreter's one-shot prefill), in the dtype of the inputs (float32 by
default; float64 works too).  Selections (top-k) stay in the forward pass;
gradients flow through scores, weights and values, not through the choice.
"""
import math

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")
# size limit (L * C * P * Hq * d) of chunk_attention's dense training-speed
# form; above it the memory-lean gather form runs.  1 << 29 keeps a 1K-token
# sequence of a 6-head, 64-chunk model dense (measured: 1.3x faster there)
DENSE_HSA_MAX = 1 << 29


# ---- helpers ---------------------------------------------------------------

def masked_softmax(s, mask=None, n_plus=0):
    """softmax_n over the last axis: p_j = exp(s_j) / (n_plus + sum exp(s_l)),
    the sum over unmasked entries.  Masked entries (and -inf scores) get 0,
    and a row with no finite entry gives zeros, never NaN.  With n_plus = 0
    the extra term is left out entirely (never 0 * inf)."""
    if s.shape[-1] == 0:
        return s * 0
    if mask is not None:
        s = s.masked_fill(~mask, NEG_INF)
    m = s.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    if n_plus:
        # the same value as the reference's max-shifted form; shifting by
        # max(m, 0) keeps n * exp(-m) finite
        m = m.clamp(min=0)
    e = torch.exp(s - m)
    den = e.sum(dim=-1, keepdim=True)
    if n_plus:
        den = den + n_plus * torch.exp(-m)
    den = torch.where(den > 0, den, torch.ones_like(den))
    return e / den


def select_mask(key, k):
    """Boolean mask of the k best entries of each row of `key` (last axis):
    ties go to the lower index, -inf and NaN are never chosen (so fewer than
    k may be chosen).  k is an int or an integer tensor broadcastable to
    key.shape[:-1] + (1,)."""
    n = key.shape[-1]
    if n == 0:
        return torch.zeros_like(key, dtype=torch.bool)
    valid = ~(torch.isnan(key) | (key == NEG_INF))
    key = key.detach().masked_fill(~valid, NEG_INF)
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    ar = torch.arange(n, device=key.device).expand_as(order)
    rank.scatter_(-1, order, ar)
    return (rank < k) & valid


def _kv_map(Hq, Hk, device):
    """Query head h reads KV head h // (Hq / Hk)."""
    return torch.arange(Hq, device=device) // (Hq // Hk)


def _expand_heads(x, Hq):
    """[..., Hk, d] -> [..., Hq, d]: each KV head repeated for its group."""
    Hk = x.shape[-2]
    if Hk == Hq:
        return x
    return x.repeat_interleave(Hq // Hk, dim=-2)


# ---- per-row ops -------------------------------------------------------------

def embed(tokens, table):
    V = table.shape[0]
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= V):
        bad = [(i, int(t)) for i, t in enumerate(tokens.tolist()) if t < 0 or t >= V][0]
        raise ValueError("token %d at position %d is outside the vocabulary (0..%d)"
                         % (bad[1], bad[0], V - 1))
    return table[tokens.long()]


def rmsnorm(x, g, eps):
    """x / sqrt(mean(x^2) + eps) * g over the last axis."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * g


def layernorm(x, g, eps):
    """(x - mean) / sqrt(var + eps) * g, population variance, no bias."""
    c = x - x.mean(dim=-1, keepdim=True)
    return c * torch.rsqrt(c.pow(2).mean(dim=-1, keepdim=True) + eps) * g


def linear(x, w):
    """x W^T with W [out, in]."""
    return torch.matmul(x, w.t())


def split_heads(x, heads):
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def merge_heads(x):
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def rope(x, theta, pos_mul=1, pos_add=0):
    """Rotary embedding, "rotate half": the pair (i, i + d/2) turns by
    pos * theta^(-2i/d).  The position axis is the one before the heads:
    for [T, H, d] row r stands for pos_mul * r + pos_add; for [C, P, H, d]
    (chunk rows) the position is the in-chunk index (pos_mul/pos_add do not
    apply).  Angles are computed in float64, as the reference does."""
    d = x.shape[-1]
    half = d // 2
    T = x.shape[-3]
    pos = torch.arange(T, dtype=torch.float64, device=x.device)
    if x.dim() == 3:
        pos = pos * pos_mul + pos_add
    inv = torch.pow(torch.tensor(float(theta), dtype=torch.float64, device=x.device),
                    -2.0 * torch.arange(half, dtype=torch.float64, device=x.device) / d)
    ang = pos[:, None] * inv[None, :]                      # [T, half]
    c = torch.cos(ang).to(x.dtype)[:, None, :]             # [T, 1, half]
    s = torch.sin(ang).to(x.dtype)[:, None, :]
    a1, a2 = x[..., :half], x[..., half:2 * half]
    parts = [a1 * c - a2 * s, a2 * c + a1 * s]
    if d > 2 * half:
        parts.append(x[..., 2 * half:])
    return torch.cat(parts, dim=-1)


def add(a, b):
    return a + b


def silu_mul(a, b):
    """silu(a) * b = a / (1 + exp(-a)) * b."""
    return a * torch.sigmoid(a) * b


def sigmoid(a):
    return torch.sigmoid(a)


def quantize(x, dtype):
    """Round to the storage type (bf16 or f16, round to nearest even) and
    back: the value every reader of the op sees.  The rounding starts from
    the float32 value, as the reference stores f32."""
    t = torch.float16 if dtype == "f16" else torch.bfloat16
    return x.to(torch.float32).to(t).to(x.dtype)


# ---- chunk rows ------------------------------------------------------------

def chunk(x, size):
    """[L, D] -> [L/S, S, D], complete chunks only."""
    C = x.shape[0] // size
    return x[:C * size].reshape(C, size, *x.shape[1:])


def append_row(x, row):
    """([C, P, D], [D]) -> [C, P+1, D]."""
    r = row.reshape(1, 1, -1).expand(x.shape[0], 1, row.shape[-1])
    return torch.cat([x, r], dim=1)


def rows(x, begin, end):
    return x[:, begin:end]


def row(x, row):
    return x[:, row]


def zero_row(x, row):
    """Row `row` of every chunk set to exactly 0."""
    z = torch.zeros_like(x[:, row:row + 1])
    return torch.cat([x[:, :row], z, x[:, row + 1:]], dim=1)


def mean_rows(x):
    return x.mean(dim=1)


def block_landmark(x, e, block):
    """Landmark of block b: mean of the block's rows plus the learned
    landmark embedding; complete blocks only."""
    nb = x.shape[0] // block
    return x[:nb * block].reshape(nb, block, *x.shape[1:]).mean(dim=1) + e


# ---- retrieval -------------------------------------------------------------

def landmark_scores(q, lmk, offset_w, chunk, per="token", exclude_window=0, offset=None):
    """s(t, g, i) = q_r(tq) . lmk[i] / sqrt(d_r) + offset, -inf where
    ineligible.  Chunk i is eligible for token t when i < floor(t / S) (the
    token's own chunk is excluded); with exclude_window = X > 0 chunks with
    i*S > tq - X are dropped too.  per = "token": tq = t; per = "chunk":
    every token of chunk c uses the query of tq = c*S - 1, the last token
    of the previous chunk (chunk 0 retrieves nothing).  Landmarks are
    [C, dr] (one per chunk, every group reads it) or [C, G, dr] (memory
    landmark_groups = kv: group g scores against its own slice)."""
    L, G, dr = q.shape
    C = lmk.shape[0]
    dev = q.device
    t = torch.arange(L, device=dev)
    own = t // chunk
    tq = own * chunk - 1 if per == "chunk" else t
    qs = q[tq.clamp(min=0)]                                   # [L, G, dr]
    eq = "tgd,cgd->tgc" if lmk.dim() == 3 else "tgd,cd->tgc"
    s = torch.einsum(eq, qs, lmk) * (1.0 / math.sqrt(dr))
    off = float(offset) if offset is not None else 0.0
    if offset_w is not None:
        s = s + (off + offset_w.reshape(()))
    elif off:
        s = s + off
    i = torch.arange(C, device=dev)
    elig = (i[None, :] < own[:, None]) & (own[:, None] > 0)
    if exclude_window > 0:
        elig = elig & ~(i[None, :] * chunk > tq[:, None] - exclude_window)
    return s.masked_fill(~elig[:, None, :], NEG_INF)


def topk(scores, k, noise=None, noisy_values=False):
    """Top-k over the last axis of [L, G, C] scores.  Ties go to the lower
    chunk index; -inf and NaN are never selected.  The selected chunks are
    then ordered most recent first (chunk index descending); with fewer
    eligible chunks than k the empty slots come last with index -1 and
    score -inf.  Returns (indices int64 [L, G, k], scores [L, G, k]).

    `noise` (same shape as scores, e.g. Gumbel noise during training) is
    added to the eligible scores for the selection only: the returned
    scores are the noise-free ones, unless noisy_values, where they are the
    selected chunks' scores plus their noise (so that the weights made from
    them see it too; the gradient still reaches the scores)."""
    L, G, C = scores.shape
    valid = ~(torch.isnan(scores) | (scores == NEG_INF))
    key = scores.detach()
    if noise is not None:
        noise = noise.to(scores.dtype).detach()
        key = key + noise
    key = key.masked_fill(~valid, NEG_INF)
    if C == 0:
        idx = torch.full((L, G, k), -1, dtype=torch.long, device=scores.device)
        return idx, torch.full((L, G, k), NEG_INF, dtype=scores.dtype, device=scores.device)
    take = min(k, C)
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :take]
    ok = torch.gather(valid, -1, order)
    idx = torch.where(ok, order, torch.full_like(order, -1))
    idx = torch.sort(idx, dim=-1, descending=True).values      # most recent first, -1 last
    src = scores + noise if noise is not None and noisy_values else scores
    val = torch.gather(src, -1, idx.clamp(min=0))
    val = val.masked_fill(idx < 0, NEG_INF)
    if take < k:
        pad = k - take
        idx = torch.cat([idx, torch.full((L, G, pad), -1, dtype=idx.dtype, device=idx.device)], -1)
        val = torch.cat([val, torch.full((L, G, pad), NEG_INF, dtype=val.dtype,
                                         device=val.device)], -1)
    return idx, val


def stickbreak(s, length_offset=0):
    """w_k = sigmoid(s_k) prod_{j<k} (1 - sigmoid(s_j)) = exp(s_k - sum_{j<=k}
    softplus(s_j)), in slot order (most recent first); softplus(s) = s for
    s > 30.  Empty slots (-inf) get 0 and add nothing to the sum.  With
    length_offset N > 0, row t (the token at position t; s is [L, ...])
    scores s - ln((t + 1) / N) once t + 1 > N."""
    empty = s == NEG_INF
    if length_offset > 0:
        t1 = torch.arange(1, s.shape[0] + 1, dtype=torch.float64, device=s.device)
        sh = torch.where(t1 > length_offset, torch.log(t1 / length_offset),
                         torch.zeros_like(t1)).to(s.dtype)
        s = s - sh.reshape((-1,) + (1,) * (s.dim() - 1))
    s0 = s.masked_fill(empty, 0.0)
    sp = torch.where(s0 > 30, s0, torch.log1p(torch.exp(s0.clamp(max=30))))
    sp = sp.masked_fill(empty, 0.0)
    w = torch.exp(s0 - torch.cumsum(sp, dim=-1))
    return w.masked_fill(empty, 0.0)


def softmax(s, decay=None):
    """Softmax over the last axis; -inf entries get 0, and so does a vector
    with no finite entry.  decay ([1], the authors' pos_decay): slot k
    (most recent first) scores s_k + k * decay first."""
    keep = s != NEG_INF
    if decay is not None:
        rank = torch.arange(s.shape[-1], device=s.device, dtype=s.dtype)
        s = torch.where(keep, s + rank * decay.reshape(()), s)
    return masked_softmax(s, keep)


# ---- attention ---------------------------------------------------------------

def _window_attention(q, k, v, window, scale):
    """Causal attention over keys t-W+1..t, in blocks of W queries: block n
    (queries nW..nW+W-1) reads keys (n-1)W..nW+W-1, which hold every key
    its window can reach, so the scores are [L/W, H, W, 2W] instead of
    [H, L, L] (L/2W times less work and memory than the masked dense form,
    and no unfold, whose backward is slow).  k, v already have one head per
    query head."""
    L, H, d = q.shape
    B = window
    nb = -(-L // B)
    pad = nb * B - L
    qb = F.pad(q, (0, 0, 0, 0, 0, pad)).view(nb, B, H, d)
    kb = torch.cat([k.new_zeros((B, H, d)), F.pad(k, (0, 0, 0, 0, 0, pad))]).view(nb + 1, B, H, d)
    vb = torch.cat([v.new_zeros((B, H, d)), F.pad(v, (0, 0, 0, 0, 0, pad))]).view(nb + 1, B, H, d)
    kk = torch.cat([kb[:-1], kb[1:]], dim=1)                   # [nb, 2B, H, d]
    vv = torch.cat([vb[:-1], vb[1:]], dim=1)
    s = torch.einsum("nihd,njhd->nhij", qb, kk) * scale         # [nb, H, B, 2B]
    dev = q.device
    n = torch.arange(nb, device=dev)[:, None, None]
    i = torch.arange(B, device=dev)[None, :, None]
    j = torch.arange(2 * B, device=dev)[None, None, :]
    rel = (j - B) - i                                          # key position - query position
    mask = (rel <= 0) & (rel > -window) & ((n - 1) * B + j >= 0)   # [nb, B, 2B]
    p = masked_softmax(s, mask[:, None])
    o = torch.einsum("nhij,njhd->nihd", p, vv).reshape(nb * B, H, d)
    return o[:L]


def attention(q, k, v, causal=1, window=0):
    """[L, H, d]: causal over the sequence, a window W keeps keys t-W+1..t.
    [..., P, H, d] (chunk rows): within each chunk, bidirectional or causal.
    Query head h reads KV head h / (Hq / Hkv)."""
    d = q.shape[-1]
    Hq = q.shape[-2]
    scale = 1.0 / math.sqrt(d)
    kq, vq = _expand_heads(k, Hq), _expand_heads(v, Hq)
    if q.dim() == 3:
        if not causal:
            raise ValueError("bidirectional attention over the sequence cannot run "
                             "incrementally")
        L = q.shape[0]
        # blocked form once the sequence is longer than two windows; below
        # that the masked [H, L, L] form is the same rule and no slower
        if 0 < window and L > 2 * window:
            return _window_attention(q, kq, vq, window, scale)
        s = torch.einsum("thd,jhd->htj", q, kq) * scale
        t = torch.arange(L, device=q.device)
        mask = t[None, :] <= t[:, None]
        if window > 0:
            mask = mask & (t[None, :] > t[:, None] - window)
        p = masked_softmax(s, mask[None])
        return torch.einsum("htj,jhd->thd", p, vq)
    P = q.shape[-3]
    s = torch.einsum("...ihd,...jhd->...hij", q, kq) * scale
    mask = None
    if causal:
        i = torch.arange(P, device=q.device)
        mask = i[None, :] <= i[:, None]
    p = masked_softmax(s, mask)
    return torch.einsum("...hij,...jhd->...ihd", p, vq)


def chunk_attention(q, K, V, I, Wt, softmax_plus=0, merge="weighted"):
    """HSA over the selected chunks.  q [L, Hq, d]; K, V [C, P, Hk, d];
    I [L, G, k] (slots, -1 empty); Wt [L, G, k].  Query head h uses KV head
    kh = h / (Hq / Hk) and retrieval group g = kh (g = 0 when G = 1).
    weighted: O = sum_k w_k softmax_n(q K[i_k]^T / sqrt(d)) V[i_k], one
    softmax per chunk, no running max across chunks, empty slots skipped.
    joint: one softmax_n over every row of the selected chunks; the weights
    only select."""
    L, Hq, d = q.shape
    C, P, Hk = K.shape[0], K.shape[1], K.shape[2]
    G, ks = I.shape[1], I.shape[2]
    dev = q.device
    if C == 0 or L == 0:
        return torch.zeros_like(q)
    kh = _kv_map(Hq, Hk, dev)
    g = torch.zeros_like(kh) if G == 1 else kh
    Ih = I[:, g, :]                                           # [L, Hq, k]
    valid = Ih >= 0
    Ic = Ih.clamp(min=0)
    Kp = K[:, :, kh, :].permute(0, 2, 1, 3)                   # [C, Hq, P, d]
    Vp = V[:, :, kh, :].permute(0, 2, 1, 3)
    hidx = torch.arange(Hq, device=dev)[None, :]
    scale = 1.0 / math.sqrt(d)
    if merge == "joint":
        ss, vs = [], []
        for j in range(ks):
            kk = Kp[Ic[:, :, j], hidx]                         # [L, Hq, P, d]
            ss.append(torch.einsum("thd,thpd->thp", q, kk) * scale)
            vs.append(Vp[Ic[:, :, j], hidx])
        s = torch.cat(ss, dim=-1)                              # [L, Hq, k*P]
        mask = valid.repeat_interleave(P, dim=-1)
        p = masked_softmax(s, mask, softmax_plus)
        return torch.einsum("thn,thnd->thd", p, torch.cat(vs, dim=2))
    Wh = Wt[:, g, :]
    if L * C * P * Hq * d <= DENSE_HSA_MAX:
        # every chunk for every token (the same per-chunk softmax), then the
        # selected ones mixed by their weights scattered onto [L, Hq, C]:
        # no gathers of [L, Hq, P, d] copies, much faster to train at short L
        # the scale on q (L*Hq*d values, not L*Hq*C*P) and torch's fused
        # softmax where no off-by-one term needs the max-shifted form: the
        # elementwise passes over [L, Hq, C, P] are what this form costs
        s = torch.einsum("thd,hcpd->thcp", q * scale, Kp.permute(1, 0, 2, 3))
        p = torch.softmax(s, dim=-1) if not softmax_plus else masked_softmax(s, None, softmax_plus)
        w = torch.where(valid, Wh, torch.zeros_like(Wh))
        wd = torch.zeros((L, Hq, C), dtype=q.dtype, device=dev).scatter_add(-1, Ic, w)
        # the chunk weights folded into the probabilities, then one [L, C*P]
        # by [C*P, d] product per head: no [L, Hq, C, d] per-chunk outputs
        pw = (p * wd[..., None]).reshape(L, Hq, C * P)
        return torch.einsum("thn,hnd->thd", pw, Vp.permute(1, 0, 2, 3).reshape(Hq, C * P, d))
    out = torch.zeros_like(q)
    for j in range(ks):
        kk = Kp[Ic[:, :, j], hidx]
        vv = Vp[Ic[:, :, j], hidx]
        p = masked_softmax(torch.einsum("thd,thpd->thp", q, kk) * scale, None, softmax_plus)
        o = torch.einsum("thp,thpd->thd", p, vv)
        w = torch.where(valid[:, :, j], Wh[:, :, j], torch.zeros_like(Wh[:, :, j]))
        out = out + w[..., None] * o
    return out


def landmark_attention(q, k, v, lk, block, topk):
    """Landmark Attention's grouped softmax.  Token t (own block b0 = t / B)
    sees the own block's keys up to t, plus the top-k past blocks b < b0 by
    landmark score q . lk[b] / sqrt(d) (ties: lower block).  One normalizer
    over the local keys and the selected landmarks; a selected block's share
    is spread over its keys by an in-block softmax."""
    L, Hq, d = q.shape
    scale = 1.0 / math.sqrt(d)
    dev = q.device
    kq, vq, lkq = _expand_heads(k, Hq), _expand_heads(v, Hq), _expand_heads(lk, Hq)
    NB = lkq.shape[0]
    t = torch.arange(L, device=dev)
    b0 = t // block
    S = torch.einsum("thd,jhd->htj", q, kq) * scale            # [Hq, L, L]
    local = (t[None, :] >= (b0 * block)[:, None]) & (t[None, :] <= t[:, None])
    LS = torch.einsum("thd,bhd->htb", q, lkq) * scale          # [Hq, L, NB]
    b = torch.arange(NB, device=dev)
    elig = b[None, :] < b0[:, None]                            # [L, NB]
    sel = select_mask(LS.masked_fill(~elig[None], NEG_INF), topk)
    logits = torch.cat([S, LS], dim=-1)
    mask = torch.cat([local[None].expand(Hq, L, L), sel], dim=-1)
    p = masked_softmax(logits, mask)
    p_loc, p_blk = p[..., :L], p[..., L:]
    out = torch.einsum("htj,jhd->thd", p_loc, vq)
    if NB > 0:
        Sb = S[:, :, :NB * block].reshape(Hq, L, NB, block)
        pin = torch.softmax(Sb, dim=-1)
        Vb = vq[:NB * block].reshape(NB, block, Hq, d)
        ob = torch.einsum("htbj,bjhd->htbd", pin, Vb)
        out = out + torch.einsum("htb,htbd->thd", p_blk, ob)
    return out


def moba_attention(q, k, v, block, topk):
    """MoBA: a past block's gate is the mean of q . k over its keys
    (unscaled); the token takes the top-k past blocks (ties: lower block)
    plus its own block causally, all keys under one softmax."""
    L, Hq, d = q.shape
    scale = 1.0 / math.sqrt(d)
    dev = q.device
    kq, vq = _expand_heads(k, Hq), _expand_heads(v, Hq)
    t = torch.arange(L, device=dev)
    b0 = t // block
    D = torch.einsum("thd,jhd->htj", q, kq)                    # unscaled, [Hq, L, L]
    NB = L // block
    gate = D[:, :, :NB * block].reshape(Hq, L, NB, block).mean(dim=-1)
    b = torch.arange(NB, device=dev)
    elig = b[None, :] < b0[:, None]
    sel = select_mask(gate.masked_fill(~elig[None], NEG_INF), topk)   # [Hq, L, NB]
    kb = t // block
    in_sel = torch.zeros(Hq, L, L, dtype=torch.bool, device=dev)
    if NB > 0:
        in_sel[:, :, :NB * block] = sel.repeat_interleave(block, dim=-1)
    own = (kb[None, :] == b0[:, None]) & (t[None, :] <= t[:, None])
    p = masked_softmax(D * scale, in_sel | own[None])
    return torch.einsum("htj,jhd->thd", p, vq)


def nsa_compress(k, w, block, stride):
    """Compressed block j covers rows j*stride .. j*stride + block - 1; its
    key is W . concat(rows), rows concatenated position-major."""
    L, H, d = k.shape
    nc = (L - block) // stride + 1 if L >= block else 0
    if nc <= 0:
        return k.new_zeros((0, H, d))
    blocks = k.unfold(0, block, stride)                        # [nc, H, d, block]
    blocks = blocks.permute(0, 1, 3, 2).reshape(nc, H, block * d)
    return torch.matmul(blocks, w.t())


def nsa_attention(q, k, v, kc, vc, gates, cmp_block, cmp_stride, block, topk,
                  init_blocks, local_blocks, window):
    """NSA: three branches mixed by the gates [L, Hq, 3] = (cmp, sel, win).
    compressed: softmax over the compressed blocks complete by t
    (nc = (t + 1 - cmp_block) / cmp_stride + 1).  selected: block bb's
    importance is the compressed attention of every compressed block that
    overlaps it (each counts fully for each block it overlaps), summed over
    the query heads of a KV group; the first init_blocks and the blocks
    bb > b0 - local_blocks are forced (ascending, up to topk), the rest by
    importance (ties: lower block) up to topk; one softmax over their keys
    <= t.  window: softmax over keys t-window+1..t."""
    L, Hq, d = q.shape
    Hk = k.shape[1]
    grp = Hq // Hk
    scale = 1.0 / math.sqrt(d)
    dev = q.device
    kq, vq = _expand_heads(k, Hq), _expand_heads(v, Hq)
    kcq, vcq = _expand_heads(kc, Hq), _expand_heads(vc, Hq)
    NC = kc.shape[0]
    t = torch.arange(L, device=dev)
    nc_t = torch.where(t + 1 >= cmp_block, (t + 1 - cmp_block) // cmp_stride + 1,
                       torch.zeros_like(t))
    j = torch.arange(NC, device=dev)
    Sc = torch.einsum("thd,jhd->htj", q, kcq) * scale          # [Hq, L, NC]
    pc = masked_softmax(Sc, (j[None, :] < nc_t[:, None])[None])
    ocmp = torch.einsum("htj,jhd->thd", pc, vcq)
    NBt = (L + block - 1) // block
    bb = torch.arange(NBt, device=dev)
    lo = (j * cmp_stride) // block
    hi = (j * cmp_stride + cmp_block - 1) // block
    overlap = (bb[None, :] >= lo[:, None]) & (bb[None, :] <= hi[:, None])   # [NC, NBt]
    imp = torch.matmul(pc, overlap.to(pc.dtype))               # [Hq, L, NBt]
    imp = imp.reshape(Hk, grp, L, NBt).sum(dim=1)              # [Hk, L, NBt]
    b0 = t // block
    upto = bb[None, :] <= b0[:, None]                          # [L, NBt]
    forced = upto & ((bb[None, :] < init_blocks) | (bb[None, :] > (b0 - local_blocks)[:, None]))
    forced_take = forced & (torch.cumsum(forced.long(), dim=-1) <= topk)
    ns = forced_take.sum(dim=-1)                               # [L]
    cand = upto & ~forced
    rest = select_mask(imp.masked_fill(~cand[None], NEG_INF), (topk - ns)[None, :, None])
    selblk = forced_take[None] | rest                          # [Hk, L, NBt]
    kb = t // block
    keymask = selblk[:, :, kb] & (t[None, :] <= t[:, None])[None]   # [Hk, L, L]
    keymask = keymask.repeat_interleave(grp, dim=0)            # [Hq, L, L]
    S = torch.einsum("thd,jhd->htj", q, kq) * scale
    osel = torch.einsum("htj,jhd->thd", masked_softmax(S, keymask), vq)
    wmask = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - window)
    owin = torch.einsum("htj,jhd->thd", masked_softmax(S, wmask[None]), vq)
    return gates[..., 0:1] * ocmp + gates[..., 1:2] * osel + gates[..., 2:3] * owin
