#!/usr/bin/python3
"""read_use.py: does a model use what its HSA layers read?

    /usr/bin/python3 tools/torch/read_use.py CHECKPOINT_DIR \
        [--length 512] [--items 40] [--seed 500000] [--task T]
        [--filler S] [--phrasing P] [--needle K]

Runs the PyTorch twin of a checkpoint (model.json and weights.safetensors,
as train.py writes them) on `hsac gen-task` items and, at the answer's
first byte, compares the probability of the right byte as the model
computes it with the same probability when every `chunk_attention` output
(what the HSA layers read from the selected chunks, before their output
projection) is replaced by zeros; and prints the norm of the gradient of
its log probability with respect to each of those outputs.  babi items are
grouped by question kind (train.babi_story).

A retrieval can choose the right chunk and the model still answer from a
prior: session 33 found ruler_hsa doing that on babi, where zeroing the
read left the answer's first byte at p = 0.16 (multikey's fell from 0.26
to 0.08) and the gradient was 10-40x smaller than before babi training
(TRAINING.md, "A read the model learned to ignore").  probe_retrieval.py
says whether the right chunk is chosen; this says whether it is used.
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_items import add_item_args, gen_items, load_checkpoint  # noqa: E402
from train import babi_story  # noqa: E402


def read_use(model, items):
    """{kind: [n, sum p(first byte), sum p with the reads zeroed, [sum of
    gradient norms per chunk_attention op]]} over the items (kind: the
    task, or babi's question kind)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:             # gradients to the reads only; restored below
        p.requires_grad_(False)
    state = {"zero": False, "reads": []}

    def hook(node, i, v, ins):
        if node.op != "chunk_attention" or i != 0:
            return None
        if state["zero"]:
            return torch.zeros_like(v)
        v = v.detach().clone().requires_grad_(True)
        state["reads"].append(v)
        return v
    old = model.post_op_hook
    model.post_op_hook = hook
    out = {}
    try:
        for it in items:
            kind = it.get("task", "passkey")
            if kind == "babi":
                story = babi_story(it)
                kind = "babi " + story[1] if story else "babi"
            toks = torch.tensor(list(it["prompt"].encode()), dtype=torch.long)
            a0 = it["answer"].encode()[0]
            state["zero"], state["reads"] = False, []
            lp = model(toks)[-1, :256].log_softmax(-1)[a0]
            lp.backward()
            grads = [float(v.grad[-1].norm()) for v in state["reads"]]
            state["zero"] = True
            with torch.no_grad():
                p0 = float(model(toks)[-1, :256].softmax(-1)[a0])
            row = out.setdefault(kind, [0, 0.0, 0.0, [0.0] * len(grads)])
            row[0] += 1
            row[1] += float(lp.detach().exp())
            row[2] += p0
            row[3] = [s + g for s, g in zip(row[3], grads)]
    finally:
        model.post_op_hook = old
        for p in trainable:
            p.requires_grad_(True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    add_item_args(p, length="512", items=40, seed=500000)
    p.add_argument("--phrasing", default="train")
    p.add_argument("--needle", default="number")
    a = p.parse_args()
    m = load_checkpoint(a.checkpoint)
    extra = ["--phrasing", a.phrasing] + (["--needle", a.needle] if a.task != "babi" else [])
    items = gen_items(a, "read_use.py", extra)
    for kind, (n, p1, p0, g) in sorted(read_use(m, items).items()):
        print("%-12s n=%3d  p(first answer byte) %.3f, with the reads zeroed %.3f; "
              "|d log p / d read| %s"
              % (kind, n, p1 / n, p0 / n, " ".join("%.3f" % (x / n) for x in g)))


if __name__ == "__main__":
    main()
