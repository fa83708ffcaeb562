#!/usr/bin/python3
"""selection_reuse.py: how often neighbouring tokens select the same chunks.

    /usr/bin/python3 tools/torch/selection_reuse.py CHECKPOINT_DIR \
        [--length 8K] [--items 2] [--seed 3] [--task passkey] [--filler S]
        [--blocks 4,16,64]

Runs the PyTorch twin (CHECKPOINT_DIR/model.json and weights.safetensors)
on `hsac gen-task` prompts and records, for every retrieval op, the chunks
each token selects (per selection group).  For blocks of T consecutive
tokens (second half of each prompt, where most chunks are eligible) it
prints the number of distinct chunks against the number of (token, slot)
pairs: their ratio is the share of chunk reads a chunk-major sparse
attention does (each distinct chunk of a block read once), its inverse
the reuse.  Uniform random selections of K of C chunks would give about
1 / (1 + (T - 1) K / C) reuse; what a trained model gives is the number
bench/cpu_kernels.c models its "clustered" selections on.
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_items import add_item_args, gen_items, load_checkpoint  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    add_item_args(p, length="8K", items=2, seed=3)
    p.add_argument("--blocks", default="4,16,64", help="block sizes T")
    a = p.parse_args()
    blocks = [int(x) for x in a.blocks.split(",")]
    m = load_checkpoint(a.checkpoint)
    tops = m.retrievals()
    sel = []

    def hook(node, i, v, ins):
        if node.op == "topk" and i == 0 and node in tops:
            sel.append(v)
        return None
    m.post_op_hook = hook
    items = gen_items(a, "selection_reuse.py")
    pairs = {}
    distinct = {}
    shape = {}
    for it in items:
        toks = torch.tensor(list(it["prompt"].encode()), dtype=torch.long)
        sel.clear()
        with torch.no_grad():
            m(toks)
        for ri, idx in enumerate(sel):
            n = idx.shape[0]
            idx = idx.reshape(n, -1, idx.shape[-1])   # [tokens, groups, K]
            shape[ri] = tuple(idx.shape[1:])
            for T in blocks:
                for g in range(idx.shape[1]):
                    for b in range(n // 2, n - T + 1, T):
                        v = idx[b:b + T, g].reshape(-1)
                        v = v[v >= 0]
                        key = (ri, T)
                        pairs[key] = pairs.get(key, 0) + int(v.numel())
                        distinct[key] = distinct.get(key, 0) + len(set(v.tolist()))
    print("%s, %s at %s bytes, %d item(s), %s filler" % (a.checkpoint, a.task, a.length,
                                                        len(items), a.filler))
    print("| retrieval | groups x K | block T | distinct / pairs | reuse |")
    print("|---|---|---|---|---|")
    for ri in sorted(shape):
        for T in blocks:
            pr, ds = pairs.get((ri, T), 0), distinct.get((ri, T), 0)
            if pr:
                print("| %d | %d x %d | %d | %.3f | %.1fx |" % (ri, shape[ri][0], shape[ri][1], T,
                                                               ds / pr, pr / ds))


if __name__ == "__main__":
    main()
