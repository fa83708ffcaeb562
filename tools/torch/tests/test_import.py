#!/usr/bin/python3
"""test_import.py HSAC SOURCE_DIR: checks `hsac import` (docs/import.md).

For several configurations of the paper authors' SWA + HSA model
(DRTForCausalLM), this builds a small checkpoint in their layout: a
config.json with their field names and random weights under their
parameter names (every tensor different, so a tensor put in the wrong
place changes the logits).  Then:

1. `hsac import` places every tensor (the count it reports) and writes a
   model that compiles;
2. the imported model's logits (`hsac logits`, reference backend) match
   those of an independent float64 forward pass written here in the
   authors' form, on their tensor names (authors_logits below), to 1e-4;
3. the PyTorch twin built from the imported model agrees with hsac;
4. broken checkpoints are refused with a message naming the tensor or the
   config field, exit status 1, and nothing written: a missing tensor, an
   extra one, a wrong shape, a config hsac cannot represent, a malformed
   field, a pickle-only checkpoint, a shard index pointing outside.

authors_logits is written from the semantics of the authors' code as
docs/import.md describes it (SWA layers with flash-attn's window (W, 0),
per-head q/k RMSNorm, a Qwen2-style chunk encoder with the CLS row last,
per-KV-group landmark slices, stick-breaking or softmax over the top-k
chunks most recent first, HSA with the bypass residual); it shares no
code with hsac's twin.
Prints one line per check and 'N passed, M failed'; exit 1 on a failure.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

hsac, src = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "tools/torch"))
from hsac_torch import HsacModel  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s: %s%s" % ("ok" if ok else "FAILED", name, " (" + detail + ")" if detail else ""))


# ---- the authors' model, as a checkpoint ----------------------------------

def base_config(**kw):
    c = {
        "architectures": ["DRTForCausalLM"], "model_type": "llama",
        "vocab_size": 260, "hidden_size": 32, "num_attention_heads": 4,
        "num_key_value_heads": 4, "num_kv_heads": 2, "intermediate_size": 48,
        "num_lower_layers": 2, "num_upper_layers": 2, "num_upper_groups": 2,
        "num_hidden_layers": 7, "chunk_size": 8, "chunk_topk": 2, "retrieval_dim": 16,
        "encoder_layers": 1, "sliding_window": 15, "rms_norm_eps": 1e-6,
        "layer_norm_epsilon": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": False, "enable_qk_norm": True, "enable_lmk_norm": True,
        "enc_prenorm": True, "initializer_range": 0.02, "enable_gumbel_noise": True,
        "pad_token_id": 0, "lmk_token_id": 259, "torch_dtype": "float32",
    }
    c.update(kw)
    return c


def shapes(c):
    """name -> shape of every tensor DRTForCausalLM has for config c."""
    D, H = c["hidden_size"], c["num_attention_heads"]
    d = D // H
    kvs = c.get("num_key_value_heads", H)
    kv = c.get("num_kv_heads", kvs)
    F = c["intermediate_size"]
    s = {"backbone.embeddings.weight": [c["vocab_size"], D],
         "backbone.norm_f.weight": [D]}
    if not c.get("tie_word_embeddings", False):
        s["lm_head.weight"] = [c["vocab_size"], D]

    def decoder(p, nkv, ff, bias=False):
        s[p + "input_layernorm.weight"] = [D]
        s[p + "post_attention_layernorm.weight"] = [D]
        s[p + "self_attn.q_proj.weight"] = [H * d, D]
        s[p + "self_attn.k_proj.weight"] = [nkv * d, D]
        s[p + "self_attn.v_proj.weight"] = [nkv * d, D]
        s[p + "self_attn.o_proj.weight"] = [D, H * d]
        s[p + "self_attn.q_norm.weight"] = [d]
        s[p + "self_attn.k_norm.weight"] = [d]
        if bias:
            s[p + "self_attn.q_proj.bias"] = [H * d]
            s[p + "self_attn.k_proj.bias"] = [nkv * d]
            s[p + "self_attn.v_proj.bias"] = [nkv * d]
        for n, sh in (("gate_proj", [ff, D]), ("up_proj", [ff, D]), ("down_proj", [D, ff])):
            s[p + "mlp.%s.weight" % n] = sh

    i = 0
    for _ in range(c["num_lower_layers"]):
        decoder("backbone.layers.%d." % i, kvs, F)
        i += 1
    G = c["num_upper_groups"]
    if G == 0:
        return s
    p = "backbone.layers.%d." % i
    i += 1
    E = c["encoder_layers"]
    if E > 0:
        for j in range(E):
            decoder(p + "encoder.layers.%d." % j, kvs, int(D * 8 / 3) // 64 * 64, bias=True)
        s[p + "encoder.norm.weight"] = [D]
        if c.get("enc_prenorm", False):
            s[p + "enc_prenorm.weight"] = [D]
    else:
        s[p + "norm.weight"] = [D]
    s[p + "proj_k.weight"] = [kv * d, D]
    s[p + "proj_v.weight"] = [kv * d, D]
    if c.get("enable_qk_norm", False):
        s[p + "k_rmsnorm.weight"] = [d]
    s[p + "lmk_ln.weight"] = [c["retrieval_dim"], D]
    if c.get("enable_enc_cls", E > 0):
        s[p + "cls_emb"] = [1, 1, D]
    rg = 1 if c.get("singlehead_retrieval", False) else kv
    for _ in range(G):
        p = "backbone.layers.%d." % i
        s[p + "pre_norm.weight"] = [D]
        s[p + "ln.weight"] = [c["retrieval_dim"], D]
        if c.get("enable_lmk_norm", False):
            s[p + "lmk_q_norm.weight"] = [c["retrieval_dim"] // rg]
            s[p + "lmk_k_norm.weight"] = [c["retrieval_dim"] // rg]
        if c.get("enable_pos_decay", False):
            s[p + "pos_decay"] = [1]
        p = "backbone.layers.%d." % (i + 1)
        s[p + "pre_norm.weight"] = [D]
        s[p + "q_proj.weight"] = [D, D]
        s[p + "o_proj.weight"] = [D, D]
        if c.get("enable_qk_norm", False):
            s[p + "q_norm.weight"] = [d]
        s[p + "_mlp_norm.weight"] = [D]
        for n, sh in (("gate_proj", [F, D]), ("up_proj", [F, D]), ("down_proj", [D, F])):
            s[p + "_mlp.%s.weight" % n] = sh
        if not c.get("hsa_only", True):
            s[p + "swa_prenorm.weight"] = [D]
            for n, sh in (("q_proj", [H * d, D]), ("k_proj", [kvs * d, D]),
                          ("v_proj", [kvs * d, D]), ("o_proj", [D, H * d])):
                s[p + "attn.%s.weight" % n] = sh
            s[p + "attn.q_norm.weight"] = [d]
            s[p + "attn.k_norm.weight"] = [d]
        i += 2
        for _ in range(c["num_upper_layers"] // G):
            decoder("backbone.layers.%d." % i, kvs, F)
            i += 1
    return s


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, sh in shapes(c).items():
        if name.endswith("norm.weight") or "layernorm" in name or "norm_f" in name:
            w[name] = 1.0 + 0.2 * torch.randn(sh, generator=g)   # gains near 1, all different
        elif name.endswith("pos_decay"):
            w[name] = torch.tensor([-0.7])
        else:
            w[name] = torch.randn(sh, generator=g) / math.sqrt(sh[-1])
    return w


def write_checkpoint(dirname, c, w, shards=1, dtype=torch.float32):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    w = {k: v.to(dtype).contiguous() for k, v in w.items()}
    if shards == 1:
        save_file(w, os.path.join(dirname, "model.safetensors"))
        return
    names = sorted(w)
    wmap = {}
    for k in range(shards):
        part = names[k::shards]
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
        save_file({n: w[n] for n in part}, os.path.join(dirname, fn))
        wmap.update({n: fn for n in part})
    with open(os.path.join(dirname, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wmap}, f)


# ---- the authors' forward pass (float64), on their names -------------------

def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """x [T, h, d]; rotate-half RoPE at positions 0..T-1."""
    T, d = x.shape[0], x.shape[-1]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attend(q, k, v, allowed):
    """q [T, H, d], k/v [S, Hk, d], allowed [T, S] bool; GQA by head groups."""
    H, Hk, d = q.shape[1], k.shape[1], q.shape[2]
    k = k.repeat_interleave(H // Hk, 1)
    v = v.repeat_interleave(H // Hk, 1)
    s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(d)
    s = s.masked_fill(~allowed[None], float("-inf"))
    return torch.einsum("hts,shd->thd", s.softmax(-1), v)


def mlp(x, w, p):
    g = x @ w[p + "gate_proj.weight"].T
    return (torch.nn.functional.silu(g) * (x @ w[p + "up_proj.weight"].T)) @ w[p + "down_proj.weight"].T


def attn_layer(x, w, p, H, Hk, window, theta, eps, bias=False, prefix_norm="input_layernorm",
               qk="self_attn.", causal=True):
    T, D = x.shape
    d = D // H
    h = rms(x, w[p + prefix_norm + ".weight"], eps)

    def proj(n, heads):
        y = h @ w[p + qk + n + ".weight"].T
        if bias:
            y = y + w[p + qk + n + ".bias"]
        return y.view(T, heads, d)
    q = rope(rms(proj("q_proj", H), w[p + qk + "q_norm.weight"], eps), theta)
    k = rope(rms(proj("k_proj", Hk), w[p + qk + "k_norm.weight"], eps), theta)
    v = proj("v_proj", Hk)
    i = torch.arange(T)
    allowed = torch.ones(T, T, dtype=torch.bool)
    if causal:
        allowed = (i[None, :] <= i[:, None]) & (i[None, :] >= i[:, None] - window)
    o = attend(q, k, v, allowed).reshape(T, H * d) @ w[p + qk + "o_proj.weight"].T
    return x + o


def decoder_layer(x, w, p, H, Hk, window, theta, eps, bias=False, causal=True):
    x = attn_layer(x, w, p, H, Hk, window, theta, eps, bias=bias, causal=causal)
    return x + mlp(rms(x, w[p + "post_attention_layernorm.weight"], eps), w, p + "mlp.")


def authors_logits(c, w, tokens):
    w = {k: v.to(torch.float64) for k, v in w.items()}
    D, H = c["hidden_size"], c["num_attention_heads"]
    d = D // H
    kvs = c.get("num_key_value_heads", H)
    kv = c.get("num_kv_heads", kvs)
    eps = c["rms_norm_eps"]
    W = c["sliding_window"]
    theta = c.get("rope_theta", 10000.0)
    x = w["backbone.embeddings.weight"][torch.tensor(tokens)]
    L = x.shape[0]
    li = 0
    for _ in range(c["num_lower_layers"]):
        x = decoder_layer(x, w, "backbone.layers.%d." % li, H, kvs, W, theta, eps)
        li += 1
    G = c["num_upper_groups"]
    if G > 0:
        S, K, E = c["chunk_size"], c["chunk_topk"], c["encoder_layers"]
        p = "backbone.layers.%d." % li
        li += 1
        C = L // S
        cls = c.get("enable_enc_cls", E > 0)
        ch = x[: C * S].view(C, S, D)
        if cls:
            ch = torch.cat([ch, w[p + "cls_emb"].view(1, 1, D).expand(C, 1, D)], 1)
        enc = []
        for ci in range(C):
            e = ch[ci]
            if E > 0:
                if c.get("enc_prenorm", False):
                    e = rms(e, w[p + "enc_prenorm.weight"], 1e-6)
                for j in range(E):
                    e = decoder_layer(e, w, p + "encoder.layers.%d." % j, H, kvs, 0, 10000.0,
                                      1e-6, bias=True, causal=False)
                e = rms(e, w[p + "encoder.norm.weight"], 1e-6)
            else:
                e = rms(e, w[p + "norm.weight"], 1e-6)
            enc.append(e)
        enc = torch.stack(enc) if C else torch.zeros(0, S + cls, D, dtype=torch.float64)
        rg = 1 if c.get("singlehead_retrieval", False) else kv
        lmk_src = enc[:, -1] if cls else enc.mean(1)
        lmk = (lmk_src @ w[p + "lmk_ln.weight"].T).view(C, rg, c["retrieval_dim"] // rg)
        body = enc[:, :S] if cls else enc
        mk = (body @ w[p + "proj_k.weight"].T).view(C, S, kv, d)
        if c.get("enable_qk_norm", False):
            mk = rms(mk, w[p + "k_rmsnorm.weight"], 1e-6)
        mv = (body @ w[p + "proj_v.weight"].T).view(C, S, kv, d)
        win = max(c.get("slide_window", 0), c.get("sliding_window", 0))
        for _ in range(G):
            rp, hp = "backbone.layers.%d." % li, "backbone.layers.%d." % (li + 1)
            if not c.get("hsa_only", True):
                hw = c.get("hsa_sliding_window", W)
                x = attn_layer(x, w, hp, H, kvs, hw, theta, eps, prefix_norm="swa_prenorm",
                               qk="attn.")
            # retrieval: scores over the landmarks, top-k, slots most recent first
            q = (rms(x, w[rp + "pre_norm.weight"], 1e-6) @ w[rp + "ln.weight"].T).view(L, rg, -1)
            lk = lmk
            if c.get("enable_lmk_norm", False):
                q = rms(q, w[rp + "lmk_q_norm.weight"], 1e-6)
                lk = rms(lmk, w[rp + "lmk_k_norm.weight"], 1e-6)
            sc = torch.einsum("lgr,cgr->lgc", q, lk) / math.sqrt(q.shape[-1])
            t = torch.arange(L)[:, None, None]
            cend = (torch.arange(C) + 1)[None, None, :] * S
            vis = (cend <= t - win + S) if c.get("mask_slide_window", False) else (cend <= t)
            sc = sc.masked_fill(~vis, float("-inf"))
            k = min(K, C)
            _, idx = sc.topk(k, dim=-1)
            slot_ok = (t // S) > torch.arange(k)[None, None, :]
            idx = idx.masked_fill(~slot_ok, -1).sort(-1, descending=True).values
            bad = idx < 0
            idx = idx.clamp(min=0)
            s = sc.gather(-1, idx).masked_fill(bad, float("-inf"))
            if not c.get("enable_softmax", False):
                sp = torch.nn.functional.softplus(s)
                wt = (s - sp.cumsum(-1)).exp()
            else:
                if c.get("enable_pos_decay", False):
                    s = s + torch.arange(k) * w[rp + "pos_decay"]
                allinf = torch.isinf(s).all(-1, keepdim=True)
                s = torch.where(torch.isinf(s), torch.full_like(s, -1e7), s)
                wt = s.softmax(-1).masked_fill(allinf, 0.0)
            if rg == 1:
                wt, idx = wt.expand(L, kv, k), idx.expand(L, kv, k)
            # HSA: a softmax in each selected chunk, mixed by the weights
            h = rms(x, w[hp + "pre_norm.weight"], 1e-6)
            qh = (h @ w[hp + "q_proj.weight"].T).view(L, H, d)
            if c.get("enable_qk_norm", False):
                qh = rms(qh, w[hp + "q_norm.weight"], 1e-6)
            smn = 1.0 if c.get("enable_softmax1", False) else 0.0
            out = torch.zeros(L, H, d, dtype=torch.float64)
            for ti in range(L):
                for hh in range(H):
                    g = hh // (H // kv)
                    for kk in range(k):
                        if wt[ti, g, kk] == 0:
                            continue
                        cc = idx[ti, g, kk]
                        a = mk[cc, :, g] @ qh[ti, hh] / math.sqrt(d)
                        m = a.max()
                        e = (a - m).exp()
                        pr = e / (e.sum() + smn * torch.exp(-m))
                        out[ti, hh] += wt[ti, g, kk] * (pr @ mv[cc, :, g])
            o = out.reshape(L, D) @ w[hp + "o_proj.weight"].T
            y = mlp(rms(x + o, w[hp + "_mlp_norm.weight"], 1e-6), w, hp + "_mlp.")
            x = x + o + y if c.get("reset_hsa_residual", False) else x + y
            li += 2
            for _ in range(c["num_upper_layers"] // G):
                x = decoder_layer(x, w, "backbone.layers.%d." % li, H, kvs, W, theta, eps)
                li += 1
    x = rms(x, w["backbone.norm_f.weight"], c["layer_norm_epsilon"])
    head = w["backbone.embeddings.weight"] if c.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


# ---- running hsac ----------------------------------------------------------

def run(*args):
    return subprocess.run([hsac] + list(args), capture_output=True, text=True)


def hsac_logits(model, weights, tokens, tmp):
    out = os.path.join(tmp, "logits.safetensors")
    r = run("logits", model, "--weights", weights, "--tokens", ",".join(map(str, tokens)),
            "--backend", "ref", "-o", out)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return load_file(out)["logits"].to(torch.float64)


CASES = [
    # the authors' best design: stick-breaking, CLS encoder with prenorm,
    # lmk/qk norms, SWA layers with their own K/V heads
    ("stickbreak, CLS encoder, norms", base_config(), 1, torch.float32),
    # softmax weights with a rank decay, the window mask, softmax1, the HSA
    # layers' own SWA, one retrieval for all heads, the standard residual,
    # no encoder (mean landmark), tied embeddings, a sharded bf16 checkpoint
    ("softmax, pos_decay, mask window, hsa_only=false, singlehead, no encoder, tied, bf16 shards",
     base_config(enable_softmax=True, enable_pos_decay=True, mask_slide_window=True,
                 enable_softmax1=True, hsa_only=False, hsa_sliding_window=9,
                 singlehead_retrieval=True, reset_hsa_residual=True, encoder_layers=0,
                 enable_lmk_norm=False, enable_qk_norm=False, tie_word_embeddings=True,
                 num_key_value_heads=2, num_upper_layers=4), 3, torch.bfloat16),
    # a pos_decay tensor the authors' code never reads (stick-breaking)
    ("stickbreak with an unused pos_decay, one group, 2 encoder layers",
     base_config(enable_pos_decay=True, num_upper_groups=1, num_upper_layers=1,
                 encoder_layers=2, enc_prenorm=False, num_kv_heads=1,
                 num_key_value_heads=2), 1, torch.float32),
]

tokens = [(37 * i + 11) % 260 for i in range(61)]   # 7 full chunks of 8 and 5 tokens

with tempfile.TemporaryDirectory() as tmp:
    for ci, (name, cfg, nshards, dtype) in enumerate(CASES):
        ck, out = os.path.join(tmp, "ck%d" % ci), os.path.join(tmp, "out%d" % ci)
        w = random_weights(cfg, 100 + ci)
        write_checkpoint(ck, cfg, w, shards=nshards, dtype=dtype)
        r = run("import", ck, "-o", out, "--name", "case%d" % ci)
        ok = r.returncode == 0
        check("%s: import" % name, ok, r.stderr.strip().splitlines()[-1] if r.stderr else "")
        if not ok:
            print(r.stderr)
            continue
        placed = "%d of %d tensors placed" % (len(w) - ("unused pos_decay" in name), len(w))
        check("%s: every tensor placed" % name, placed in r.stderr, placed)
        if "unused pos_decay" in name:
            check("%s: the unread pos_decay is reported" % name,
                  "pos_decay left out" in r.stderr)
        st = load_file(os.path.join(out, "weights.safetensors"))
        want = torch.bfloat16 if dtype == torch.bfloat16 else torch.float32
        check("%s: tensors keep their dtype" % name, all(v.dtype == want for v in st.values()))
        wq = {k: v.to(dtype).to(torch.float64) for k, v in w.items()}   # as stored
        # prompts shorter than a chunk, of whole chunks, and longer
        for T in (5, 32, 61):
            ref = authors_logits(cfg, wq, tokens[:T])
            got = hsac_logits(os.path.join(out, "model.hsa"), os.path.join(out, "weights.safetensors"),
                              tokens[:T], tmp)
            err = (got - ref).abs().max().item()
            check("%s: hsac logits == the authors' form, %d tokens" % (name, T), err < 1e-4,
                  "max |err| %.2e" % err)
        exp = os.path.join(tmp, "exp%d.json" % ci)
        r = run("export", "--json", os.path.join(out, "model.hsa"), "-o", exp)
        twin = HsacModel(exp).load_weights(os.path.join(out, "weights.safetensors"))
        with torch.no_grad():
            tl = twin(torch.tensor(tokens)).to(torch.float64)
        err = (tl - hsac_logits(os.path.join(out, "model.hsa"),
                                os.path.join(out, "weights.safetensors"), tokens, tmp)).abs().max().item()
        check("%s: the twin of the imported model agrees" % name, err < 1e-4, "max |err| %.2e" % err)

    # ---- refusals: a message naming the place, exit 1, nothing written ------
    cfg = base_config()
    w = random_weights(cfg, 7)

    def refused(label, mutate_cfg=None, mutate_w=None, expect="", layout=None):
        ck, out = os.path.join(tmp, "bad"), os.path.join(tmp, "badout")
        subprocess.run(["rm", "-rf", ck, out])
        c2 = dict(cfg)
        w2 = dict(w)
        if mutate_cfg:
            mutate_cfg(c2)
        if mutate_w:
            mutate_w(w2)
        write_checkpoint(ck, c2, w2)
        if layout:
            layout(ck)
        r = run("import", ck, "-o", out)
        ok = r.returncode == 1 and expect in r.stderr and not os.path.exists(out)
        check("refused: %s" % label, ok, r.stderr.strip().replace("\n", " | ")[:300])

    refused("a missing tensor", mutate_w=lambda d: d.pop("backbone.layers.3.ln.weight"),
            expect="missing tensor backbone.layers.3.ln.weight [16, 32] (hsac weight upper.0.q_proj.weight)")
    refused("an extra tensor",
            mutate_w=lambda d: d.update({"backbone.layers.0.self_attn.q_proj.bias": torch.zeros(32)}),
            expect="tensor backbone.layers.0.self_attn.q_proj.bias has no place")
    refused("a wrong shape",
            mutate_w=lambda d: d.update({"backbone.layers.2.proj_k.weight": torch.zeros(8, 32)}),
            expect="tensor backbone.layers.2.proj_k.weight has shape [8, 32]; hsac weight "
                   "mem.k_proj.weight needs [16, 32]")
    refused("attention biases", mutate_cfg=lambda d: d.update(attention_bias=True),
            expect="'attention_bias': hsac's SWA layers have no projection biases")
    refused("different epsilons", mutate_cfg=lambda d: d.update(layer_norm_epsilon=1e-5),
            expect="'layer_norm_epsilon'")
    refused("skip_hsa", mutate_cfg=lambda d: d.update(skip_hsa=True), expect="'skip_hsa'")
    refused("rope scaling",
            mutate_cfg=lambda d: d.update(rope_scaling={"type": "linear", "factor": 2.0}),
            expect="'rope_scaling'")
    refused("another architecture", mutate_cfg=lambda d: d.update(architectures=["LlamaForCausalLM"]),
            expect="'architectures'")
    refused("a field of the wrong type", mutate_cfg=lambda d: d.update(chunk_size="8"),
            expect="the field 'chunk_size' must be an integer")
    refused("a missing field", mutate_cfg=lambda d: d.pop("retrieval_dim"),
            expect="the field 'retrieval_dim' is missing")
    refused("a chunk size hsac cannot tile", mutate_cfg=lambda d: d.update(chunk_size=12),
            expect="'chunk_size'")

    def pickle_only(ck):
        os.rename(os.path.join(ck, "model.safetensors"), os.path.join(ck, "pytorch_model.bin"))
    refused("a pickle-only checkpoint", layout=pickle_only, expect="pytorch_model.bin")

    def outside_index(ck):
        os.remove(os.path.join(ck, "model.safetensors"))
        with open(os.path.join(ck, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"lm_head.weight": "../elsewhere.safetensors"}}, f)
    refused("a shard outside the folder", layout=outside_index, expect="must name a file in")

    def bad_json(ck):
        with open(os.path.join(ck, "config.json"), "w") as f:
            f.write("{\"vocab_size\": 260,")
    refused("a truncated config.json", layout=bad_json, expect="config.json: not a JSON object")

    r = run("import", os.path.join(tmp, "nowhere"), "-o", os.path.join(tmp, "o"))
    check("refused: no such folder", r.returncode == 1 and "cannot read" in r.stderr, r.stderr.strip())
    r = run("import", tmp)
    check("refused: no -o", r.returncode == 2 and "-o OUT_DIR" in r.stderr, r.stderr.strip())

npass = sum(results)
print("%d passed, %d failed" % (npass, len(results) - npass))
sys.exit(0 if npass == len(results) else 1)
