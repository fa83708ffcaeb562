#!/usr/bin/python3
"""probe_retrieval.py: does a model's retrieval select the needle's chunk?

    /usr/bin/python3 tools/torch/probe_retrieval.py CHECKPOINT_DIR \
        [--length 512] [--items 20] [--seed 0] [--topk K] [--task T]
        [--filler S] [--phrasing P] [--needle K] [--depth D] [-v]

Runs the PyTorch twin (CHECKPOINT_DIR/model.json and weights.safetensors,
as train.py writes them) on `hsac gen-task` items (passkey by default) and,
at each answer position (teacher-forced), checks whether a chunk the
answer byte should be read from (train.answer_targets: the chunk holding
that byte in its supporting needle; babi: a chunk of a supporting fact) is
among the chunks the retrieval selects.  Prints, per retrieval op, the share of answer positions
whose needle chunk was selected ("selection hit rate") and the mean
weight on it, next to the teacher-forced exact-answer accuracy.  Chance is
about K / (number of eligible chunks).

Where an item has several needles and one supporting needle (multikey),
it also prints the **needle choice**: the share of items in which, at the
first answer byte, the supporting needle's chunks (every chunk
overlapping its bytes) hold more of the retrieval's weight than any other
needle's.  Only the first byte needs the key: from the second on, the
answer's own first bytes can be matched against the needles.  Chance is 1
/ (number of needles).  A model that copies a random needle's value
selects every needle and spreads the weight: its selection hit rate and
weight on the target can rise while its needle choice stays at chance
(sessions 21, 22 and 29 of ruler_hsa's model card).

It also prints, per retrieval, the weight on the **needle-choice
targets** of train.py's needle loss (train.needle_targets with every
byte: the chunk to read from against the chunks of the needles the
answer byte must not come from) at each part's first byte and at its
later bytes, for babi by kind of question (gen-task's `kind`; an
object question's first retrieval targets the pick-up fact), for vartrack
by the needles' wording (train.vartrack_name_first: "VAR X = V." names the
variable first, "Put V into X." gives the key first).  A model
whose query forgets mid-value which key it copies shows it there
(session 34: multiquery's first retrieval put 0.52 of its weight on the
target at first bytes, 0.27 at later ones, with 0.36 on the other
values).

For babi's "where was X before P" questions it also splits the weight at
the answer's bytes between the answer's fact (X's move before the move to
P), the move to P, and X's other moves (`before_split`): the move to P
shares X's key, so a query that carries only X gives it stick-breaking's
share (session 35's weights: 0.13-0.18 on the target, 0.48-0.54 on the
needle-choice negatives, which include it).

--topk overrides the model's K (as train.py's stages do).
A diagnostic for training: the accuracy that counts is hsac's
(eval_passkey.sh).
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_items import add_item_args, gen_items, load_checkpoint  # noqa: E402
from train import (answer_parts, answer_targets, babi_before, fact_chunks,  # noqa: E402
                   needle_targets, vartrack_name_first)


def weight_on(sel, w, chunks):
    """The weight [G, K] that a position's selection [G, K] puts on the
    given chunks, summed over the groups."""
    return sum(float(w[g, j]) for g in range(sel.shape[0]) for j in range(sel.shape[1])
               if int(sel[g, j]) in chunks)


def before_split(item, chunk):
    """For a babi "before" item: (the answer fact's chunks, the move to the
    named place's chunks, the asked person's other moves' chunks), each
    less the chunks of those before it; None for any other item."""
    found = babi_before(item)
    if found is None:
        return None
    facts, target, moved = found
    who = facts[target][2]

    def chunks(i):
        return fact_chunks(facts[i], chunk)
    t = chunks(target)
    m = chunks(moved) - t
    o = set().union(*(chunks(i) for i in range(len(facts))
                      if facts[i][2] == who and i not in (target, moved))) - t - m
    return t, m, o


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    add_item_args(p, length="512", items=20, seed=0)
    p.add_argument("--topk", type=int, default=0, help="override the retrieval K")
    p.add_argument("--phrasing", default="default")
    p.add_argument("--needle", default="number")
    p.add_argument("--depth", type=float, default=None,
                   help="passkey, multikey: the asked needle's depth, 0..1 (gen-task --depth)")
    p.add_argument("-v", action="store_true", help="one line per item")
    a = p.parse_args()
    m = load_checkpoint(a.checkpoint)
    tops = m.retrievals()
    if a.topk:
        m.check_shapes = False
        for n in tops:
            n.attrs["k"] = a.topk
    chunk = {}
    sel = []
    wts = []

    def hook(node, i, v, ins):
        if node.op == "landmark_scores":
            chunk[len(sel)] = int(node.attrs["chunk"])
        if node.op == "topk" and i == 0 and node in tops:
            sel.append(v)
        if node.op in ("stickbreak", "softmax") and i == 0:   # the retrieval weights
            wts.append(v)
        return None
    m.post_op_hook = hook
    extra = ["--phrasing", a.phrasing] + (["--needle", a.needle] if a.task != "babi" else [])
    if a.depth is not None:
        extra += ["--depth", repr(a.depth)]
    items = gen_items(a, "probe_retrieval.py", extra)
    hits = [0] * len(tops)
    weight = [0.0] * len(tops)
    choice = [0] * len(tops)
    choice_n = 0
    n_needles = 0
    total = 0
    exact = 0
    choose = {}     # (retrieval, group) -> [positions, weight on target, weight on the others]
    before = {}     # retrieval -> [positions, on the answer's fact, on the move to P, on X's others]
    by_order = {}   # vartrack: wording -> [exact answers, items]
    for it in items:
        prompt, ans = it["prompt"].encode(), it["answer"].encode()
        P, A = len(prompt), len(ans)
        toks = torch.tensor(list(prompt + ans[:-1]), dtype=torch.long)
        sel.clear()
        wts.clear()
        with torch.no_grad():
            logits = m(toks)
        ok = bool((logits[P - 1:].argmax(-1) == torch.tensor(list(ans))).all())
        exact += ok
        line = []
        n_pos = 0
        offs, lens = it.get("needle_offsets", []), it.get("needle_lengths", [])
        sup = it.get("support") or []
        several = len(offs) >= 2 and len(sup) == 1
        firsts = {a0 for a0, _, _ in answer_parts(it)}     # each answer part's first byte
        if several:
            n_needles = len(offs)
        order = None
        if a.task == "vartrack":
            order = "name-first" if vartrack_name_first(it) else "key-first"
            by_order.setdefault(order, [0, 0])
            by_order[order][0] += ok
            by_order[order][1] += 1
        for r_i, idx in enumerate(sel):
            S = chunk.get(r_i, chunk.get(0, 16))
            targets = answer_targets(it, S, A)
            spans = [set(range(o // S, (o + n - 1) // S + 1)) for o, n in zip(offs, lens)]
            h = 0
            n_pos = 0
            for b in range(A):
                if not targets[b]:
                    continue
                n_pos += 1
                got = set(idx[P - 1 + b].reshape(-1).tolist())
                h += bool(targets[b] & got)
                if r_i < len(wts):      # weight on the target chunks, mean over groups
                    row_i = idx[P - 1 + b].reshape(idx.shape[1], -1)
                    row_w = wts[r_i][P - 1 + b].reshape(row_i.shape)
                    weight[r_i] += weight_on(row_i, row_w, targets[b]) / row_i.shape[0]
                    if several and b == 0:      # which needle holds the most weight
                        per = [weight_on(row_i, row_w, sp) for sp in spans]
                        choice[r_i] += int(max(range(len(per)), key=per.__getitem__) == sup[0])
                        if r_i == 0:
                            choice_n += 1
            hits[r_i] += h
            line.append("%d/%d" % (h, n_pos))
            if r_i < len(wts):
                for b, target, neg in needle_targets(it, S, A, True, r_i):
                    row_i = idx[P - 1 + b].reshape(idx.shape[1], -1)
                    row_w = wts[r_i][P - 1 + b].reshape(row_i.shape)
                    group = ((it["kind"] + ", ") if it.get("kind") else "") + \
                        (order + ", " if order else "") + \
                        ("first bytes" if b in firsts else "later bytes")
                    c = choose.setdefault((r_i, group), [0, 0.0, 0.0])
                    c[0] += 1
                    c[1] += weight_on(row_i, row_w, {target}) / row_i.shape[0]
                    c[2] += weight_on(row_i, row_w, set(neg)) / row_i.shape[0]
                split = before_split(it, S)
                if split is not None and split[1]:
                    c = before.setdefault(r_i, [0, 0.0, 0.0, 0.0])
                    for b in range(A):
                        row_i = idx[P - 1 + b].reshape(idx.shape[1], -1)
                        row_w = wts[r_i][P - 1 + b].reshape(row_i.shape)
                        c[0] += 1
                        for k, chunks in enumerate(split):
                            c[k + 1] += weight_on(row_i, row_w, chunks) / row_i.shape[0]
        total += n_pos
        if a.v:
            print("seed %d: %s, selection hits %s"
                  % (it["seed"], "exact" if ok else "wrong", " ".join(line)))
    for r_i in range(len(tops)):
        print("retrieval %d: selection hit rate %.3f (%d/%d answer positions), "
              "mean weight on the target %.3f"
              % (r_i, hits[r_i] / max(1, total), hits[r_i], total,
                 weight[r_i] / max(1, total)))
        if choice_n:
            print("retrieval %d: needle choice %.3f (%d/%d items' first answer byte; chance %.3f "
                  "with %d needles)" % (r_i, choice[r_i] / choice_n, choice[r_i], choice_n,
                                        1.0 / n_needles, n_needles))
    for (r_i, group), (n, wt, wn) in sorted(choose.items()):
        print("retrieval %d: needle-choice targets, %s: weight on the target %.3f, on the "
              "chunks it must not read %.3f (%d positions)" % (r_i, group, wt / n, wn / n, n))
    for r_i, (n, wt, wm, wo) in sorted(before.items()):
        print("retrieval %d: babi before, weight on the answer's fact %.3f, on the move to the "
              "named place %.3f, on the person's other moves %.3f (%d positions)"
              % (r_i, wt / n, wm / n, wo / n, n))
    print("teacher-forced exact answers: %d/%d at %s bytes (%s, %s filler, %s phrasing)"
          % (exact, len(items), a.length, a.task, a.filler, a.phrasing))
    for order, (ok, n) in sorted(by_order.items()):
        print("teacher-forced exact answers, %s: %d/%d" % (order, ok, n))


if __name__ == "__main__":
    main()
