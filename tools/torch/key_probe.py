#!/usr/bin/python3
"""key_probe.py: where does a model keep a multikey needle's key?

    /usr/bin/python3 tools/torch/key_probe.py CHECKPOINT_DIR \
        [--length 1K] [--items 150] [--seed 600000] [--filler fortunes,synthetic]
        [--phrasing train]

Multikey asks for the value of one key among several needles.  The first
retrieval can only pick the asked needle if its query at the first answer
byte carries the asked key and the landmark of the value's chunk carries
that needle's key.  This runs the PyTorch twin of a checkpoint (as train.py
writes it) on `hsac gen-task --task multikey` items with number needles,
leaves out the value-first ones (train.value_first), and fits linear
probes (multinomial logistic regression on standardized vectors, trained
on 70% of the samples, scored on the other 30%) that predict the key's
first word from:

- the first retrieval's query at the first answer byte (the asked key);
- the landmark of the chunk holding the value's first digit, of the
  chunk holding the key's first byte and of the chunk holding its last
  byte (each needle's key);
- the lower stack's output at the key's last byte and at the value's
  first digit, and its mean over the value's chunk (what the chunk encoder reads; with `landmark = mean`
  the landmark is a projection of the encoded rows' mean).

Each line gives the held-out accuracy next to the majority class's share.
A probe near the majority share says the key is not there, linearly.
"""
import argparse
import os
import random
import re
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_items import add_item_args, gen_items, load_checkpoint  # noqa: E402
from train import KEY_RE, encode, value_first  # noqa: E402


def probe(xs, ys, name):
    labels = sorted(set(ys))
    if len(xs) < 20 or len(labels) < 2:
        print("%s: too few samples (%d)" % (name, len(xs)))
        return
    ix = {lab: i for i, lab in enumerate(labels)}
    x = torch.stack(xs).float()
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.tensor([ix[lab] for lab in ys])
    order = list(range(len(ys)))
    random.Random(0).shuffle(order)
    cut = int(0.7 * len(order))
    tr, te = torch.tensor(order[:cut]), torch.tensor(order[cut:])
    w = torch.zeros(x.shape[1], len(labels), requires_grad=True)
    b = torch.zeros(len(labels), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = F.cross_entropy(x[tr] @ w + b, y[tr]) + 1e-3 * (w ** 2).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float(((x[te] @ w + b).argmax(-1) == y[te]).float().mean())
    major = max(int((y[te] == c).sum()) for c in range(len(labels))) / len(te)
    print("%s: %d samples, %d classes, held-out accuracy %.2f (majority %.2f)"
          % (name, len(ys), len(labels), acc, major))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    add_item_args(p, length="1K", items=150, seed=600000)
    p.set_defaults(task="multikey", filler="fortunes,synthetic")
    p.add_argument("--phrasing", default="train")
    a = p.parse_args()
    if a.task != "multikey":
        sys.exit("key_probe.py: only --task multikey is probed")
    m = load_checkpoint(a.checkpoint)
    cap = {}

    def hook(node, i, v, ins):
        if node.op == "chunk" and i == 0 and "h" not in cap:        # the memory's input
            cap["h"] = ins[0].detach()
        if node.op == "landmark_scores" and i == 0 and "q" not in cap:
            cap["q"], cap["lmk"] = ins[0].detach(), ins[1].detach()
            cap["S"] = int(node.attrs["chunk"])
        return None
    m.post_op_hook = hook
    items = []
    fillers = a.filler.split(",")
    for f in fillers:
        a.filler = f
        items += gen_items(a, "key_probe.py", ["--phrasing", a.phrasing, "--needle", "number"])
    q, qy, lv, lk, lf, hk, hv, hm, ky = [], [], [], [], [], [], [], [], []
    skipped = 0
    for it in items:
        if value_first(it):
            skipped += 1
            continue
        toks, P, _ = encode(it)
        cap.clear()
        with torch.no_grad():
            m(toks[:-1])
        if "q" not in cap or "h" not in cap:
            sys.exit("key_probe.py: the model has no chunk memory with a retrieval")
        prompt, S = it["prompt"].encode(), cap["S"]
        keys = []
        for off, n in zip(it["needle_offsets"], it["needle_lengths"]):
            needle = prompt[off:off + n]
            k = re.search(KEY_RE.encode(), needle)
            v = re.search(rb"\d{7}", needle)
            if not k or not v:
                continue
            word = k.group(0).split(b"-")[0].decode()
            keys.append(word)
            at = off + v.start()
            lv.append(cap["lmk"][at // S].reshape(-1))
            lk.append(cap["lmk"][(off + k.end() - 1) // S].reshape(-1))
            lf.append(cap["lmk"][(off + k.start()) // S].reshape(-1))
            hk.append(cap["h"][off + k.end() - 1])
            hv.append(cap["h"][at])
            hm.append(cap["h"][at // S * S:at // S * S + S].mean(0))
            ky.append(word)
        if len(keys) == len(it["needle_offsets"]):
            q.append(cap["q"][P - 1].reshape(-1))
            qy.append(keys[it["support"][0]])
    print("%s: %d multikey items at %s bytes (%s filler, %s phrasing), %d value-first left out"
          % (a.checkpoint, len(items) - skipped, a.length, ",".join(fillers), a.phrasing, skipped))
    probe(q, qy, "query at the first answer byte -> the asked key's first word")
    probe(lv, ky, "landmark of the value's chunk -> its key's first word")
    probe(lf, ky, "landmark of the key's first chunk -> its key's first word")
    probe(lk, ky, "landmark of the key's last chunk -> its key's first word")
    probe(hk, ky, "lower stack's output at the key's last byte -> its key's first word")
    probe(hv, ky, "lower stack's output at the value's first digit -> its key's first word")
    probe(hm, ky, "lower stack's outputs, mean over the value's chunk -> its key's first word")


if __name__ == "__main__":
    main()
