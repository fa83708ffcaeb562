#!/usr/bin/python3
"""test_train.py HSAC SOURCE_DIR: checks tools/torch/train.py.

1. The selection loss (train.retrieval_loss) targets, for each answer
   byte, the most recent chunk holding that byte, and is small only when
   stick-breaking would give that chunk the weight; with gen-task's
   supporting needles, only occurrences inside them count.
2. The copy loss's targets (train.copy_targets): a position whose next
   byte continues an earlier, unambiguous and far enough occurrence of
   the 8 bytes before it targets the chunk of that continuation.
3. The needle-choice loss (train.needle_targets, train.needle_loss)
   contrasts the answer's chunk with the other needles' chunks at each
   answer part's first byte (or, with --needle-bytes all, every byte).
4. The key loss's targets (train.key_targets): each needle's value
   offset, found as far after its key as the answer is after the
   supporting needle's, and the asked key at each answer's first byte;
   in babi, each fact's person as the key of its place or object.
5. A short run from scratch, then --resume, on the shipped model's
   source: the step count, the log rows and the data position continue,
   and the weights it writes run in hsac.
Prints one line per check and 'N passed, M failed'; exit 1 on a failure.
"""
import argparse
import importlib.util
import csv
import json
import math
import re
import os
import random
import subprocess
import types
import sys
import tempfile

import torch

hsac, src = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("train", os.path.join(src, "tools/torch/train.py"))
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s: %s%s" % ("ok" if ok else "FAILED", name,
                        " (" + detail + ")" if detail and (not ok or len(detail) < 40) else ""))


def scores_for(target, C, L, P, A, hi, lo):
    """[L, 1, C] scores: hi at target[a] for answer position a, lo elsewhere
    among the eligible chunks, -inf for the ineligible ones."""
    s = torch.full((L, 1, C), lo)
    for a in range(A):
        s[P - 1 + a, 0, target[a]] = hi
    t = torch.arange(L)
    elig = torch.arange(C)[None, :] < (t // 16)[:, None]
    return s.masked_fill(~elig[:, None, :], float("-inf"))


# A prompt of 96 bytes with the answer "1234567" at byte 28 (chunk 1,
# bytes 28..34 -> chunks 1, 1, 1, 1, 2, 2, 2) and again at byte 60
# (chunk 3, bytes 60..66 -> chunks 3, 3, 3, 3, 4, 4, 4).
ans = b"1234567"
prompt = bytearray(b"x" * 96)
prompt[28:35] = ans
prompt[60:67] = ans
prompt = bytes(prompt)
item = {"prompt": prompt.decode(), "answer": ans.decode()}
P, A, C = len(prompt), len(ans), 7
L = P + A - 1
want = [3, 3, 3, 3, 4, 4, 4]
good = train.retrieval_loss(scores_for(want, C, L, P, A, 20.0, -20.0), 16, item, P, A)
check("selection loss ~0 when each byte's most recent chunk has the weight",
      good is not None and good.item() < 1e-6, "%.2e" % good.item())
# the first form's fixed point: every byte's weight on the needle's last chunk
last = [4] * A
bad = train.retrieval_loss(scores_for(last, C, L, P, A, 20.0, -20.0), 16, item, P, A)
check("selection loss large when a more recent needle chunk takes the weight",
      bad.item() > 5.0, "%.2f" % bad.item())
old = [1, 1, 1, 1, 2, 2, 2]           # the first occurrence: stick-breaking reaches it last
older = train.retrieval_loss(scores_for(old, C, L, P, A, 20.0, -20.0), 16, item, P, A)
check("selection loss prefers the most recent occurrence", older.item() > good.item() + 5.0,
      "%.2f" % older.item())
s = scores_for(want, C, L, P, A, 20.0, -20.0).requires_grad_(True)
train.retrieval_loss(s * 0.5, 16, item, P, A).backward()
check("selection loss gradient only at answer positions and eligible chunks",
      bool(s.grad[:P - 1].abs().sum() == 0) and bool(torch.isfinite(s.grad).all()))
check("selection loss is None when the prompt lacks the answer",
      train.retrieval_loss(s, 16, {"prompt": "y" * 96, "answer": "1234567"}, P, A) is None)
# supporting needles: the occurrence at byte 60 lies outside the only
# supporting needle (bytes 20..40), so the targets are the first one's
sup = dict(item, needle_offsets=[20, 56], needle_lengths=[20, 20], support=[0])
check("targets come from the supporting needle only",
      train.answer_targets(sup, 16, A) == [{1}, {1}, {1}, {1}, {2}, {2}, {2}],
      str(train.answer_targets(sup, 16, A)))
# several answers: ", " between them has no target
multi = {"prompt": "x" * 20 + "AAAAA" + "x" * 20 + "BBBBB" + "x" * 30, "answer": "AAAAA, BBBBB",
         "answers": ["AAAAA", "BBBBB"]}
tg = train.answer_targets(multi, 16, 12)
check("multi-answer targets per answer, none for the separator",
      tg == [{1}] * 5 + [set(), set()] + [{2}, {2}, {2}, {3}, {3}], str(tg))
# babi: the answer's bytes in the supporting fact that names the place (the
# same place named in an unsupporting fact later is not a target)
babi = {"task": "babi", "prompt": "x" * 12 + "attic" + "x" * 60 + "attic" + "x" * 23,
        "answer": "attic", "needle_offsets": [10, 40, 70], "needle_lengths": [20, 20, 20],
        "support": [0, 1]}
check("babi targets the place in its supporting fact",
      train.answer_targets(babi, 16, 5) == [{0}, {0}, {0}, {0}, {1}], str(train.answer_targets(babi, 16, 5)))
# a target the retrieval cannot select yet is left out, not a -inf loss
s2 = scores_for(want, C, L, P, A, 20.0, -20.0)
late = {"prompt": (b"x" * 90 + ans[:6]).decode(), "answer": ans.decode()}
r = train.retrieval_loss(s2, 16, late, P, A)
check("an ineligible target gives no loss (None), never infinity", r is None, str(r))

# --gumbel-weights: top-k's noise picks the chunks either way; the scores
# it returns (what stick-breaking weighs) keep the noise only when asked,
# and the gradient reaches the scores in both cases.
from hsac_torch import ops as _ops  # noqa: E402  (train.py put its folder on sys.path)
_s = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]], requires_grad=True)
_nz = torch.tensor([[[5.0, 0.0, 0.0, -5.0]]])
_i0, _v0 = _ops.topk(_s, 2, _nz)
_i1, _v1 = _ops.topk(_s, 2, _nz, noisy_values=True)
_v1.sum().backward()
check("--gumbel-weights: the noise picks chunks 2 and 0 both ways; the scores returned "
      "are the noise-free ones by default, with noise when asked; the gradient reaches the scores",
      _i0.tolist() == [[[2, 0]]] and _i1.tolist() == [[[2, 0]]]
      and _v0.tolist() == [[[2.0, 0.0]]] and _v1.tolist() == [[[2.0, 5.0]]]
      and _s.grad.tolist() == [[[1.0, 0.0, 1.0, 0.0]]],
      "%s %s %s %s" % (_i0.tolist(), _v0.tolist(), _v1.tolist(), _s.grad))

# copy targets: "QWERTYUIOP" at bytes 5..14 (chunk 0) and again at 100..109:
# the positions 107 and 108 end an 8-byte match ("QWERTYUI", "WERTYUIO")
# whose continuation ("O" at 13, "P" at 14) lies in chunk 0, 93 bytes back
import random as _random
_r = _random.Random(1)
ct = bytearray(_r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(128))   # no 8-byte repeats
ct[5:15] = b"QWERTYUIOP"
ct[100:110] = b"QWERTYUIOP"
pos, sets = train.copy_targets(bytes(ct), 16)
check("copy targets: the positions that continue an earlier span, its chunk",
      pos == [107, 108] and sets == [{0}, {0}], "%s %s" % (pos, sets))
# the same span also at 20..29 ("O" and "P" at 28, 29: chunk 1): two
# occurrences that agree give both chunks
ct2 = bytearray(ct)
ct2[20:30] = b"QWERTYUIOP"
pos, sets = train.copy_targets(bytes(ct2), 16)
check("copy targets: agreeing occurrences give each one's chunk",
      pos == [107, 108] and sets == [{0, 1}, {0, 1}], "%s %s" % (pos, sets))
# a third occurrence of "QWERTYUI" that continues with "X" makes 107's copy
# ambiguous; 108's gram "WERTYUIO" is still only in the first two
ct3 = bytearray(ct2)
ct3[30:40] = b"QWERTYUIXX"
pos, sets = train.copy_targets(bytes(ct3), 16)
check("copy targets: none where earlier occurrences disagree", pos == [108] and sets == [{0, 1}],
      "%s %s" % (pos, sets))
# a repeat within the windowed layers' reach (under 64 bytes back) is no target
ct4 = bytearray(_r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(128))
ct4[60:70] = b"QWERTYUIOP"
ct4[100:110] = b"QWERTYUIOP"
pos, sets = train.copy_targets(bytes(ct4), 16)
check("copy targets: none for a repeat under 64 bytes back", pos == [], "%s %s" % (pos, sets))
s = torch.zeros(127, 1, 8)
t = torch.arange(127)
s = s.masked_fill(~(torch.arange(8)[None, :] < (t // 16)[:, None])[:, None, :], float("-inf"))
s[107, 0, 0] = s[108, 0, 0] = 20.0
s[107, 0, 1:6] = s[108, 0, 1:6] = -20.0
low = train.targets_loss(s, [107, 108], [{0}, {0}])
s[107, 0, 4] = 20.0
high = train.targets_loss(s, [107, 108], [{0}, {0}])
check("copy loss ~0 when the target chunk has the weight, large when a more recent one takes it",
      low.item() < 1e-6 and high.item() > 5.0, "%.2e %.2f" % (low.item(), high.item()))

# --retrieval-margin: a pushed-down chunk scored s counts as s + m, so its
# gradient grows by about e^m while its sigmoid is small, and the target's
# own term is unchanged
sm = torch.full((127, 1, 8), -8.0)
sm = sm.masked_fill(~(torch.arange(8)[None, :] < (t // 16)[:, None])[:, None, :], float("-inf"))
sm[107, 0, 0] = sm[108, 0, 0] = 3.0
grads = []
for m in (0.0, 3.0):
    sg = sm.clone().requires_grad_(True)
    lm = train.targets_loss(sg, [107, 108], [{0}, {0}], margin=m)
    lm.backward()
    grads.append((lm.item(), sg.grad[107, 0, 3].item(), sg.grad[107, 0, 0].item()))
(l0, g0, t0), (l3, g3, t3) = grads
check("retrieval margin: loss up, a low chunk's gradient about e^m larger, the target's the same",
      l3 > l0 and 15.0 < g3 / g0 < 21.0 and abs(t3 - t0) < 1e-7,
      "%.4f %.4f %.2f %.3g %.3g" % (l0, l3, g3 / g0, t0, t3))

# --margin-on filler: a spared chunk (one holding a needle) is pushed down
# as without the margin, the others as with it
sg = sm.clone().requires_grad_(True)
train.targets_loss(sg, [107, 108], [{0}, {0}], margin=3.0, spared={3}).backward()
gs3, gs4 = sg.grad[107, 0, 3].item(), sg.grad[107, 0, 4].item()
check("retrieval margin on filler only: a needle's chunk gets the margin-free gradient",
      abs(gs3 - g0) < 1e-9 and abs(gs4 / g0 - g3 / g0) < 1e-3,
      "%.3g %.3g %.3g %.3g" % (gs3, g0, gs4, g3))
check("needle chunks: every chunk a needle's bytes touch",
      train.needle_chunks({"needle_offsets": [10, 40, 100], "needle_lengths": [20, 8, 0]}, 16)
      == {0, 1, 2}, str(train.needle_chunks({"needle_offsets": [10, 40, 100],
                                              "needle_lengths": [20, 8, 0]}, 16)))

# --needle-loss: four needles of 20 bytes at 10, 40, 70, 100 (chunks 0-1,
# 2-3, 4-6, 6-7); the asked one is the second (its value at 48: chunk 3)
nd = {"prompt": "x" * 48 + "5555555" + "x" * 73, "answer": "5555555",
      "needle_offsets": [10, 40, 70, 100], "needle_lengths": [20, 20, 20, 20], "support": [1]}
nt = train.needle_targets(nd, 16, 7)
check("needle targets: the answer's chunk against the other needles' chunks",
      nt == [(0, 3, [0, 1, 4, 5, 6, 7])], str(nt))
check("needle targets: none with a single needle (passkey)",
      train.needle_targets(dict(nd, needle_offsets=[40], needle_lengths=[20], support=[0]), 16, 7) == [])
# multiquery-like: two asked keys, each part contrasts its needle with the other's
mq = {"prompt": "x" * 20 + "AAAAA" + "x" * 20 + "BBBBB" + "x" * 30, "answer": "AAAAA, BBBBB",
      "answers": ["AAAAA", "BBBBB"], "needle_offsets": [16, 44], "needle_lengths": [12, 12],
      "support": [0, 1]}
nt = train.needle_targets(mq, 16, 12)
check("needle targets: each answer part against the other parts' needles",
      nt == [(0, 1, [2, 3]), (7, 2, [1])], str(nt))
nt = train.needle_targets(mq, 16, 12, every_byte=True)
check("needle targets (--needle-bytes all): every byte of each part with its own chunk, "
      "none for the separator",
      nt == [(a, 1, [2, 3]) for a in range(5)] + [(a, 2, [1]) for a in range(7, 10)]
      + [(a, 3, [1]) for a in (10, 11)], str(nt))
Pn, An = len(nd["prompt"]), 7
sn = torch.zeros(Pn + An - 1, 1, 8)
tn = torch.arange(Pn + An - 1)
sn = sn.masked_fill(~(torch.arange(8)[None, :] < (tn // 16)[:, None])[:, None, :], float("-inf"))
sn[Pn - 1, 0, 3] = 10.0
good = train.needle_loss(sn, 16, nd, Pn, An)
sn[Pn - 1, 0, 6] = 12.0
bad = train.needle_loss(sn, 16, nd, Pn, An)
check("needle loss small when the asked needle's chunk scores highest, large when another's does",
      good.item() < 1e-3 and bad.item() > 1.5, "%.2e %.2f" % (good.item(), bad.item()))

# average_weights.py: a weighted average in f32, names and shapes checked
_as = importlib.util.spec_from_file_location("average_weights",
                                             os.path.join(src, "tools/torch/average_weights.py"))
avgw = importlib.util.module_from_spec(_as)
_as.loader.exec_module(avgw)
_wa = {"x": torch.tensor([1.0, 2.0]), "y": torch.tensor([4.0]).to(torch.bfloat16)}
_wb = {"x": torch.tensor([3.0, 6.0]), "y": torch.tensor([0.0])}
_avg = avgw.average([(_wa, 1.0), (_wb, 3.0)])
check("average_weights: weights normalized, bf16 and f32 inputs",
      torch.equal(_avg["x"], torch.tensor([2.5, 5.0])) and torch.equal(_avg["y"], torch.tensor([1.0]))
      and avgw.parse_input("a/b.st:0.25") == ("a/b.st", 0.25) and avgw.parse_input("a.st") == ("a.st", 1.0),
      str(_avg))
def _refused(inputs):
    try:
        avgw.average(inputs)
    except ValueError:
        return True
    return False
check("average_weights refuses other names, other shapes and a weight of 0",
      _refused([(_wa, 1.0), ({"x": _wb["x"]}, 1.0)])
      and _refused([(_wa, 1.0), ({"x": torch.zeros(3), "y": _wb["y"]}, 1.0)])
      and _refused([(_wa, 1.0), (_wb, 0.0)]))

# --key-first: an item whose needles give the value before the key
def _kv(needle, answer="4820183"):
    pr = "x" * 10 + needle + "y" * 10
    return {"prompt": pr, "answer": answer, "needle_offsets": [10], "needle_lengths": [len(needle)],
            "support": [0]}
check("value_first: value before the key",
      train.value_first(_kv("Write down 4820183, the magic number of misty-kettle.")))
check("value_first: key before the value, and a passkey, are not",
      not train.value_first(_kv("The magic number for misty-kettle is 4820183."))
      and not train.value_first(_kv("The passkey is 4820183. Remember it.")))
check("value_first: a uuid value's hyphens are not taken for the key",
      not train.value_first(_kv("The magic uuid for misty-kettle is cbbc06e3-de81-4868-8a08-229bbd1ea500.",
                                "cbbc06e3-de81-4868-8a08-229bbd1ea500"))
      and train.value_first(_kv("Write down cbbc06e3-de81-4868-8a08-229bbd1ea500 for misty-kettle.",
                                "cbbc06e3-de81-4868-8a08-229bbd1ea500")))

# --key-loss: three needles sharing one wording; the second is asked
kn = ["The magic number for misty-kettle is 1111111.", "The magic number for red-fox is 2222222.",
      "The magic number for calm-sea is 3333333."]

def spaced(needles):
    """A prompt of the needles, each after 30 bytes of filler, and their offsets."""
    prompt, offs = "", []
    for n in needles:
        prompt += "x" * 30
        offs.append(len(prompt))
        prompt += n
    return prompt, offs


kp, koffs = spaced(kn)
kp += "x" * 30
kitem = {"prompt": kp, "answer": "2222222", "needle_offsets": koffs,
         "needle_lengths": [len(n) for n in kn], "support": [1]}
kv, ka = train.key_targets(kitem, 7)
import zlib as _zlib
def _kc(k):
    return tuple(_zlib.crc32(w.encode()) % train.KEY_BUCKETS for w in k.split("-"))
check("key targets: every needle's value offset and key, the asked key at the answer",
      [kp[o:o + 7] for o, _ in kv] == ["1111111", "2222222", "3333333"]
      and [y for _, y in kv] == [_kc("misty-kettle"), _kc("red-fox"), _kc("calm-sea")]
      and ka == [(0, _kc("red-fox"))], "%s %s" % (kv, ka))
kv_all, ka_all = train.key_targets(kitem, 7, every_byte=True)
_, ka_cut = train.key_targets(kitem, 3, every_byte=True)
check("key targets (--key-bytes all): the asked key at every byte of the part, within A",
      kv_all == kv and ka_all == [(b, _kc("red-fox")) for b in range(7)]
      and ka_cut == ka_all[:3], "%s %s" % (ka_all, ka_cut))
check("key targets: none for a passkey or a value-first item",
      train.key_targets(dict(nd, prompt="x" * 120, needle_offsets=[40], needle_lengths=[20],
                             support=[0]), 7) == ([], [])
      and train.key_targets(_kv("Write down 4820183, the magic number of misty-kettle."), 7)
      == ([], []))

# babi: the person is the key, the place or object after the last "the" the value
bf = ["Mary went to the kitchen.", "John took the football along.", "Mary moved into the garden."]
bp, boffs = spaced(bf)
bitem = {"task": "babi", "prompt": bp + "\nWhere is Mary? Mary is in the ", "answer": "garden",
         "needle_offsets": boffs, "needle_lengths": [len(n) for n in bf], "support": [2]}
bv, ba = train.key_targets(bitem, 6)
_m, _j, _f = _kc("Mary")[0], _kc("John")[0], _kc("football")[0]
check("key targets (babi): each fact's place or object under its person (and a pick-up's object), "
      "the asked person",
      [bp[o:o + 6] for o, _ in bv] == ["kitche", "footba", "garden"]
      and [y for _, y in bv] == [(_m, _m), (_j, _f), (_m, _m)] and ba == [(0, (_m, _m))],
      "%s %s" % (bv, ba))
_k, _g = _kc("kitchen")[0], _kc("garden")[0]
check("key targets (babi, --babi-place-key): a move's landmark carries its place as its second word, "
      "a pick-up's its object, the asked key unchanged",
      train.key_targets(bitem, 6, 0, False, True)
      == ([(bv[0][0], (_m, _k)), (bv[1][0], (_j, _f)), (bv[2][0], (_m, _g))], ba),
      str(train.key_targets(bitem, 6, 0, False, True)))
_bq = dict(bitem, prompt=bp + "\nWhere was Mary before the garden? In the ", answer="kitchen",
           support=[0, 2])
check("key targets (babi before, --babi-place-key): the query asked for the person and the named place",
      train.key_targets(_bq, 3, 0, True, True)[1] == [(b, (_m, _g)) for b in range(3)]
      and train.key_targets(_bq, 3, 0, True)[1] == [(b, (_m, _m)) for b in range(3)],
      str(train.key_targets(_bq, 3, 0, True, True)[1]))
# an object question is two hops: who took it (retrieval 0), then where that one went
of = ["Mary went to the kitchen.", "John took the helmet along.", "John moved into the garden.",
      "Mary ran to the attic."]
op, ooffs = spaced(of)
oitem = {"task": "babi", "prompt": op + "\nWhere is the helmet? In the ", "answer": "garden",
         "needle_offsets": ooffs, "needle_lengths": [len(n) for n in of], "support": [1, 2]}
_a = _kc("helmet")[0]
ov0, oa0 = train.key_targets(oitem, 6, 0)
check("key targets (babi, --key-bytes all): the asked person at every byte of the answer",
      train.key_targets(bitem, 6, 0, True) == (bv, [(b, (_m, _m)) for b in range(6)]))
ov1, oa1 = train.key_targets(oitem, 6, 1)
check("key targets (babi object): the first retrieval asks for the object, the later the holder; "
      "the pick-up's landmark carries both at each",
      [y for _, y in ov0] == [(_m, _m), (_j, _a), (_j, _j), (_m, _m)] and oa0 == [(0, (_a, _a))]
      and ov1 == ov0 and oa1 == [(0, (_j, _j))],
      "%s %s %s %s" % (ov0, oa0, ov1, oa1))
# vartrack: each part's retrieval targets the needle that assigns it (from
# the asked value, or from the part before it, which the query has just
# written), not the later needle that assigns the next name from it; the
# needle-choice loss contrasts that needle with all the others
_v = subprocess.run([hsac, "gen-task", "--task", "vartrack", "--seed", "0", "--items", "12",
                     "--length", "1K", "--phrasing", "train", "--format", "jsonl"],
                    capture_output=True, text=True)
_vi = [json.loads(x) for x in _v.stdout.splitlines()]
_bad = []
for it in _vi:
    A = len(it["answer"].encode())
    tg = train.answer_targets(it, 16, A)
    offs, lens, p = it["needle_offsets"], it["needle_lengths"], it["prompt"]
    key = re.search(r"\d{7}", p[p.rfind("\n"):]).group(0)     # the asked value
    key = it["value"] if it["value"] == key else None             # gen-task reports it
    nts = {a: (t, neg) for a, t, neg in train.needle_targets(it, 16, A)}
    for a, part, own in train.answer_parts(it):
        need = [i for i in range(len(offs)) if key and part in p[offs[i]:offs[i] + lens[i]]
                and key in p[offs[i]:offs[i] + lens[i]]]
        c = max(tg[a]) if tg[a] else -1
        # the chunk of the part's first byte or of the key's last, the later
        n0 = offs[need[0]] if need else 0
        txt = p[n0:n0 + lens[need[0]]] if need else ""
        want = max(n0 + txt.find(part), n0 + txt.find(key) + len(key) - 1) // 16
        ok = (own == need and len(need) == 1 and c == want
              and a in nts and nts[a][0] == c and c not in nts[a][1])
        if not ok:
            _bad.append((it["seed"], part, own, need, c))
        key = part
# vartrack's key loss: each assignment's landmark (the chunk of its key's
# last byte) carries the key it copies, each part's query the key it asks
_kbad = []
for it in _vi:
    A = len(it["answer"].encode())
    vals, asked = train.vartrack_key_targets(it, A, True)
    tg = train.answer_targets(it, 16, A)
    p, cls = it["prompt"], train.vartrack_key_class
    keys = [it["value"]] + it["answers"][:-1]
    byk = {cls(k): k for k in keys}
    for o, y in vals:                   # the asked chain's keys: at or before the landmark
        k = byk.get(y)
        if k is not None and p.rfind(k, 0, o + 1) < o - 40:
            _kbad.append(("landmark", it["seed"], o, k))
    parts = train.answer_parts(it)
    want = [(b, cls(keys[j])) for j, (a, part, _) in enumerate(parts)
            for b in range(a, a + len(part))]
    chunks = {o // 16 for o, y in vals if y in byk}
    if asked != want or len(vals) != len(it["needle_offsets"]) - 1 \
            or not all(max(tg[a]) in chunks for a, _, _ in parts):
        _kbad.append(("asked", it["seed"], len(vals)))
check("vartrack key targets: each landmark near its key, each part asks the key just "
      "written, every part's first retrieval target among those landmarks",
      len(_vi) == 12 and not _kbad, str(_kbad[:3]))
check("vartrack: each part targets the needle that assigns it from the key just written, "
      "at the chunk of the part or of that key's end, the later",
      len(_vi) == 12 and not _bad, str(_bad[:3]))

# BABI_OBJECTS must be gen-task's objects: what the pick-up facts take, never a place answered
_g = subprocess.run([hsac, "gen-task", "--task", "babi", "--seed", "0", "--items", "60", "--count", "12",
                     "--length", "1K", "--format", "jsonl"], capture_output=True, text=True)
_gi = [json.loads(x) for x in _g.stdout.splitlines()]
_things = {f[4] for it in _gi for f in (train.babi_facts(it) or [])}
_places = {it["answer"] for it in _gi}
check("babi_story reads the kind of question gen-task reports",
      all(train.babi_story(it) is not None and train.babi_story(it)[1] == it["kind"] for it in _gi)
      and {it["kind"] for it in _gi} == {"now", "object", "before"},
      str([(it.get("kind"), (train.babi_story(it) or [0, None])[1]) for it in _gi[:12]]))
# --babi-kinds: babi items of the other kinds are drawn and left out; the
# other tasks' items are kept
_td = train.TaskData(hsac, 0, tasks=("babi", "passkey"), babi_kinds=("before",))
_tb = _td.batch(12, 512, random.Random(1), 0.0, 512)
check("--babi-kinds before: only 'before' babi items, and the other tasks' items",
      len(_tb) == 12 and {it["task"] for it in _tb} == {"babi", "passkey"}
      and all(it["kind"] == "before" for it in _tb if it["task"] == "babi")
      and _td.consumed > 12, "%d items, %d drawn: %s" % (len(_tb), _td.consumed,
                                                          [it.get("kind") for it in _tb]))
# --vartrack-order, --vartrack-count: which wordings and how long a chain
_nf = [train.vartrack_name_first(it) for it in _vi]
check("vartrack_name_first: 'Make X equal to V.' names first, 'Put V into X.' does not",
      train.vartrack_name_first({"prompt": "ab Make QWERT equal to 1234567. cd", "answers": ["QWERT"],
                                 "value": "1234567", "needle_offsets": [3], "needle_lengths": [29],
                                 "support": [0]})
      and not train.vartrack_name_first({"prompt": "Put 1234567 into QWERT.", "answers": ["QWERT"],
                                         "value": "1234567", "needle_offsets": [0],
                                         "needle_lengths": [23], "support": [0]})
      and True in _nf and False in _nf, str(_nf))
for _order in ("key-first", "name-first"):
    _td = train.TaskData(hsac, 0, tasks=("vartrack", "passkey"), phrasing="train",
                         vartrack_order=_order, vartrack_count=2)
    _tb = _td.batch(10, 512, random.Random(2), 0.0, 512)
    _tv = [it for it in _tb if it["task"] == "vartrack"]
    check("--vartrack-order %s --vartrack-count 2: only such vartrack items, two names each" % _order,
          len(_tb) == 10 and _tv and len(_tv) < 10
          and all(train.vartrack_name_first(it) == (_order == "name-first") for it in _tv)
          and all(len(it["answers"]) == 2 for it in _tv),
          str([(it["task"], it.get("needle_variant"), it.get("answers")) for it in _tb]))
# --vartrack-order key-first=F: a share of each wording among the kept items
# (training wordings are about a quarter key-first, so "any" keeps few)
_td = train.TaskData(hsac, 1000, tasks=("vartrack",), phrasing="train",
                     vartrack_order="key-first=0.5", vartrack_count=2)
_tb = _td.batch(40, 512, random.Random(1), 0.0, 512)
_kf = sum(not train.vartrack_name_first(it) for it in _tb)
_bad = []
for _s in ("key-first=0", "key-first=1", "name-first=0.5", "key-first=x", "sideways"):
    try:
        train.vartrack_order(_s)
        _bad.append(_s)
    except argparse.ArgumentTypeError:
        pass
check("--vartrack-order key-first=0.5: about half the vartrack items key-first; bad forms refused",
      len(_tb) == 40 and 12 <= _kf <= 28 and not _bad
      and train.vartrack_order("key-first=0.25") == "key-first=0.25"
      and train.vartrack_key_first_share("key-first=0.25") == 0.25
      and train.vartrack_key_first_share("any") is None,
      "%d of %d key-first; accepted %s" % (_kf, len(_tb), _bad))
# --carry-loss: a name-first needle's name, letter by letter, on its key's
# last bytes
_ct_ok, _ct_n = True, 0
for it in _vi:
    ct = train.vartrack_carry_targets(it)
    if not train.vartrack_name_first(it):
        _ct_ok = _ct_ok and ct == []
        continue
    _ct_n += len(ct)
    # the asked chain's needles all count (its first from the value); the
    # distractor chain's first does not
    _ct_ok = _ct_ok and len(ct) == 5 * (len(it["needle_offsets"]) - (it["chains"] - 1))
    p = it["prompt"]
    for g in range(0, len(ct), 5):
        offs = [o for o, _ in ct[g:g + 5]]
        name = "".join(chr(65 + c) for _, c in ct[g:g + 5])
        n = max(i for i, x in enumerate(it["needle_offsets"]) if x <= offs[0])
        needle = p[it["needle_offsets"][n]:offs[-1] + 1]
        key = it["value"] if needle.endswith(it["value"]) else needle[-5:]
        _ct_ok = _ct_ok and offs == list(range(offs[0], offs[0] + 5)) \
            and 0 <= needle.find(name) < len(needle) - len(key) \
            and (key == it["value"] or re.fullmatch("[A-Z]{5}", key) is not None)
check("vartrack_carry_targets: each name-first needle's name on its key's last five bytes, "
      "none for key-first wordings", _ct_ok and _ct_n > 0, str(_ct_n))
# --phrasing composed: the grammar-worded vartrack items (needle_variant
# absent) get the same targets as the table's: every assignment of the
# asked chain and the distractor's later ones, both orders of name and key
# (nonce: the grammar also with made-up verbs, either order; the targets
# follow the chain, not the words)
for _ph in ("composed", "nonce"):
    _td = train.TaskData(hsac, 2000, tasks=("vartrack",), phrasing=_ph)
    _ci = _td.gen(1024, 2000, 40, task="vartrack", filler="fortunes")
    _cg = [it for it in _ci if "needle_variant" not in it]
    _cnf = [train.vartrack_name_first(it) for it in _cg]
    _cok = all(len(list(train.vartrack_assignments(it)))
               == len(it["needle_offsets"]) - (it["chains"] - 1) for it in _cg)
    _cok = _cok and all(len(train.vartrack_carry_targets(it))
                        == (5 * (len(it["needle_offsets"]) - (it["chains"] - 1)) if nf else 0)
                        for it, nf in zip(_cg, _cnf))
    check("--phrasing %s: about half the vartrack items grammar-worded, each with every "
          "key and (name first) carry target" % _ph, 10 <= len(_cg) <= 30 and _cok
          and True in _cnf and False in _cnf,
          "%d grammar items, name first %s" % (len(_cg), _cnf))
_tap = types.SimpleNamespace(values=[torch.zeros(40, 16, 1, 32, requires_grad=True)])
_head = torch.nn.Linear(32, 26)
_nfi = next(it for it in _vi if train.vartrack_name_first(it))
_cl = train.carry_loss(_head, _tap, _nfi)
_cl.backward()
_gz = _tap.values[0].grad.abs().sum(dim=(2, 3)).nonzero().tolist()
_want = sorted([o // 16, o % 16] for o, _ in train.vartrack_carry_targets(_nfi) if o // 16 < 40)
check("carry_loss: the gradient reaches only the values at the keys' last bytes; None "
      "without targets", sorted(_gz) == _want and _want
      and train.carry_loss(_head, _tap, {"task": "passkey", "prompt": "x"}) is None,
      "%s %s" % (_gz, _want))
check("BABI_OBJECTS are gen-task's babi objects",
      _g.returncode == 0 and len(_gi) == 60 and train.BABI_OBJECTS <= _things
      and not (train.BABI_OBJECTS & _places) and _things <= train.BABI_OBJECTS | _places,
      "%s %s %s" % (_g.stderr[-300:], sorted(_things), sorted(_places)))
bbef = dict(bitem, prompt=bp + "\nWhere was Mary before the garden? In the ", answer="kitchen",
            support=[0, 2])
check("babi_story reads the question's kind and the first hop",
      [train.babi_story(x)[1:] for x in (bitem, bbef, oitem)]
      == [("now", None), ("before", None), ("object", 1)]
      and train.babi_story(dict(bitem, support=[])) is None)

# --distractor-loss: a "before" question's named place, unlikely where it parts from the answer
_lg = torch.zeros(7, 260)
_lg[0, ord("g")] = 3.0
_pg = float(torch.softmax(_lg[0], -1)[ord("g")])
_dl = train.distractor_loss(_lg, bbef)
_bb2 = dict(bbef, answer="garage")          # shares "gar": parts at byte 3, "d" against "a"
_lg2 = torch.zeros(7, 260)
_lg2[3, ord("d")] = 2.0
check("distractor loss: the named place of a 'before' question, at the byte where it parts",
      train.answer_distractors(bbef) == ["garden"] and train.answer_distractors(bitem) == []
      and train.answer_distractors(oitem) == [] and abs(float(_dl) + math.log(1 - _pg)) < 1e-5
      and abs(float(train.distractor_loss(_lg2, _bb2))
              + math.log(1 - float(torch.softmax(_lg2[3], -1)[ord("d")]))) < 1e-5
      and train.distractor_loss(_lg, bitem) is None, "%s %s" % (_dl, _pg))

def _ch(item, i, word, c=16):      # the chunk of a fact's word
    return (item["needle_offsets"][i] + item["prompt"][item["needle_offsets"][i]:].find(word)) // c

def _chunks(item, idx, c=16):       # every chunk of those facts
    return sorted({k for i in idx for k in range(item["needle_offsets"][i] // c,
                   (item["needle_offsets"][i] + item["needle_lengths"][i] - 1) // c + 1)})

bt = train.needle_targets(bitem, 16, 6)
check("needle targets (babi now): the last move over the other people's facts only",
      bt == [(0, _ch(bitem, 2, "garden"), _chunks(bitem, [1]))], str(bt))
bt = train.needle_targets(bbef, 16, 7)
check("needle targets (babi before): the move before over the move to the named place",
      bt == [(0, _ch(bbef, 0, "kitchen"), _chunks(bbef, [1, 2]))], str(bt))
o0 = train.needle_targets(oitem, 16, 6, r=0)
o1 = train.needle_targets(oitem, 16, 6, r=1)
o1all = train.needle_targets(oitem, 16, 6, every_byte=True, r=1)
check("needle targets (babi object): the pick-up first, then the holder's last move",
      o0 == [(0, _ch(oitem, 1, "helmet"), _chunks(oitem, [0, 2, 3]))]
      and o1 == [(0, _ch(oitem, 2, "garden"), _chunks(oitem, [0, 3]))]
      and [a for a, _, _ in o1all] == list(range(6)), "%s %s" % (o0, o1))

# --task-answer-weight
def _refused(text):
    try:
        train.parse_task_weights(text)
    except SystemExit as e:
        return str(e)
    return ""


check("--task-answer-weight: per-task answer weights, bad ones refused by name",
      train.parse_task_weights("babi=0,passkey=0.25") == {"babi": 0.0, "passkey": 0.25}
      and train.parse_task_weights("") == {}
      and "'chess=1'" in _refused("chess=1") and "'babi'" in _refused("babi")
      and "'x'" in _refused("babi=x") and "must be >= 0" in _refused("babi=-1"),
      "%r %r" % (_refused("babi"), _refused("babi=x")))

# short run, then resume
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "run")
    env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "Haswell"))
    base = ["/usr/bin/python3", os.path.join(src, "tools/torch/train.py")]
    r1 = subprocess.run(base + [os.path.join(src, "examples/passkey_hsa.hsa"), "--out", out,
                                "--hsac", hsac, "--stages", "256:8", "--tokens-per-step", "256",
                                "--steps", "2", "--log-every", "1", "--retrieval-loss", "1.0", "--sparsity", "8",
                                "--copy-loss", "0.5", "--needle-loss", "0.5", "--key-loss", "0.5",
                                "--ema", "0.5", "--threads", "1", "--no-progress"],
                        capture_output=True, env=env, cwd=src)
    check("train.py runs 2 steps", r1.returncode == 0, r1.stderr.decode()[-300:])
    sys.path.insert(0, os.path.join(src, "tools/torch"))
    from hsac_torch import io as _hio  # noqa: E402
    _ema_path = os.path.join(out, "weights_ema.safetensors")
    ema2 = _hio.load_safetensors(_ema_path) if os.path.exists(_ema_path) else None
    r2 = subprocess.run(base + ["--resume", out, "--steps", "3", "--before-loss", "1",
                                "--carry-loss", "1", "--tasks", "vartrack",
                                "--vartrack-count", "1", "--vartrack-order", "name-first",
                                "--phrasing", "train"],
                        capture_output=True, env=env, cwd=src)
    check("train.py --resume runs to step 3", r2.returncode == 0, r2.stderr.decode()[-300:])
    if r2.returncode == 0:
        _aux = torch.load(os.path.join(out, "aux.pt"))
        _log = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
        check("--carry-loss on a resume (vartrack, name-first): aux.pt gains the carry head, the "
          "log its loss",
              tuple(_aux["carry.weight"].shape) == (26, 32)
              and "lmk.0.weight" in _aux and float(_log[-1]["carry_loss"]) > 0
              and float(_log[0]["carry_loss"]) == 0, str(sorted(_aux)) + str(_log[-1]))
    # --ema 0.5: the resumed run goes on from the saved average, so after
    # its one step the average is 0.5 * the saved one + 0.5 * the weights
    if ema2 is not None and r2.returncode == 0:
        ema3 = _hio.load_safetensors(_ema_path)
        w3 = _hio.load_safetensors(os.path.join(out, "weights.safetensors"))
        err = max(float((ema3[k] - (0.5 * ema2[k] + 0.5 * w3[k])).abs().max()) for k in w3)
        moved = max(float((ema3[k] - w3[k]).abs().max()) for k in w3)
        check("--ema: the average resumes and updates as 0.5 * avg + 0.5 * weights",
              set(ema3) == set(w3) and err < 1e-6 and moved > 1e-6,
              "err %.2e, average - weights %.2e" % (err, moved))
    else:
        check("--ema: train.py wrote weights_ema.safetensors", False, _ema_path)
    _bad = subprocess.run(base + ["--resume", out, "--ema", "1.5"], capture_output=True,
                          env=env, cwd=src)
    check("--ema 1.5 is refused", _bad.returncode == 2 and b"--ema D needs 0 <= D < 1" in _bad.stderr,
          _bad.stderr.decode()[-200:])
    _bad = subprocess.run(base + ["--resume", out, "--part-start-weight", "0"], capture_output=True,
                          env=env, cwd=src)
    check("--part-start-weight 0 is refused",
          _bad.returncode == 2 and b"--part-start-weight W needs W > 0" in _bad.stderr,
          _bad.stderr.decode()[-200:])
    # --resume of a directory without a state.json, or with a broken one:
    # a usage error naming the directory, no traceback
    with tempfile.TemporaryDirectory() as _d:
        for text, what, said in ((None, "of a directory without state.json",
                                  b"cannot read its state.json"),
                                 ("{", "with a truncated state.json",
                                  b"state.json is not valid JSON"),
                                 ('{"step": 3}', "with a state.json missing its fields",
                                  b"state.json lacks args")):
            if text is not None:
                with open(os.path.join(_d, "state.json"), "w") as f:
                    f.write(text)
            _bad = subprocess.run(base + ["--resume", _d], capture_output=True, env=env,
                                  cwd=src)
            check("--resume %s is refused by name" % what,
                  _bad.returncode == 2 and said in _bad.stderr
                  and b"Traceback" not in _bad.stderr, _bad.stderr.decode()[-200:])
    # a run without its optimizer state (as shipped: optim.pt is not in
    # git) resumes with a fresh AdamW and says so
    if r2.returncode == 0:
        import shutil
        bare = os.path.join(tmp, "bare")
        shutil.copytree(out, bare)
        os.remove(os.path.join(bare, "optim.pt"))
        r3 = subprocess.run(base + ["--resume", bare, "--steps", "5", "--warmup", "4",
                                    "--lr", "1e-3"], capture_output=True, env=env, cwd=src)
        check("train.py --resume without optim.pt runs, saying AdamW starts afresh",
              r3.returncode == 0 and b"AdamW starts afresh" in r3.stderr,
              r3.stderr.decode()[-300:])
        # ... and warms the lr up again from the resumed step (4 to 5: 1/4, 2/4
        # of it), where a run with its optimizer state goes on at the full lr
        _lrs = {int(r["step"]): float(r["lr"]) for r in
                csv.DictReader(open(os.path.join(bare, "log.csv")))}
        check("a resume with a fresh AdamW warms the lr up again from its step",
              b"warms up again over 4 steps from step 3" in r3.stderr
              and abs(_lrs.get(4, 0) - 2.5e-4) < 1e-9 and abs(_lrs.get(5, 0) - 5e-4) < 1e-9,
              str(_lrs))
        # --freeze score_offset: the retrieval's offset stays as it was
        # (bit for bit) while the other weights move; the saved AdamW
        # state still loads; a name no parameter has is refused
        frz = os.path.join(tmp, "frozen")
        shutil.copytree(out, frz)
        _w0 = _hio.load_safetensors(os.path.join(frz, "weights.safetensors"))
        r4 = subprocess.run(base + ["--resume", frz, "--steps", "5", "--lr", "1e-2",
                                    "--freeze", "score_offset"],
                            capture_output=True, env=env, cwd=src)
        _w1 = (_hio.load_safetensors(os.path.join(frz, "weights.safetensors"))
               if r4.returncode == 0 else {})
        _offs = [k for k in _w0 if k.endswith("score_offset")]
        check("--freeze score_offset: the offsets stay, the rest moves, AdamW's state loads",
              r4.returncode == 0 and _offs and b"holds fixed: upper.0.score_offset" in r4.stderr
              and b"AdamW starts afresh" not in r4.stderr
              and all(torch.equal(_w0[k], _w1[k]) for k in _offs)
              and any(not torch.equal(_w0[k], _w1[k]) for k in _w0 if k not in _offs),
              r4.stderr.decode()[-300:])
        _bad = subprocess.run(base + ["--resume", frz, "--steps", "6", "--freeze", "offset"],
                              capture_output=True, env=env, cwd=src)
        check("--freeze with a name no parameter has is refused, naming it",
              _bad.returncode != 0 and b"--freeze: no parameter of this model is named 'offset'"
              in _bad.stderr, _bad.stderr.decode()[-200:])
    if r1.returncode == 0 and r2.returncode == 0:
        st = json.load(open(os.path.join(out, "state.json")))
        rows = open(os.path.join(out, "log.csv")).read().split()
        check("state: step 3, 3 items used, the saved arguments kept",
              st["step"] == 3 and st["items"] == 3 and st["args"]["retrieval_loss"] == 1.0
              and st["args"]["copy_loss"] == 0.5 and st["args"]["needle_loss"] == 0.5
              and os.path.exists(os.path.join(out, "aux.pt")),
              "step %s items %s" % (st["step"], st["items"]))
        check("log: a header and steps 1, 2, 3",
              len(rows) == 4 and [x.split(",")[0] for x in rows[1:]] == ["1", "2", "3"],
              " ".join(x.split(",")[0] for x in rows))
        _log = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
        check("log: a before_loss column, a number in every row (0 for passkey items)",
              len(_log) == 3 and all(float(r["before_loss"]) == 0.0 for r in _log),
              str([r.get("before_loss") for r in _log]))
        r3 = subprocess.run([hsac, "run", os.path.join(src, "examples/passkey_hsa.hsa"),
                             "--weights", os.path.join(out, "weights.safetensors"),
                             "--prompt", "The passkey is", "--max-new", "4", "--temperature", "0"],
                            capture_output=True)
        # 4 new bytes, and a newline when they do not end with one
        check("hsac runs the weights train.py wrote", r3.returncode == 0 and len(r3.stdout) in (4, 5),
              r3.stderr.decode()[-200:])

# read_use.py: the read zeroed changes the answer's probability, unless the
# HSA layer's output projection (the only way the read goes on) is zero
sys.path.insert(0, os.path.join(src, "tools/torch"))
from hsac_torch import HsacModel  # noqa: E402
from read_use import read_use  # noqa: E402
with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run([hsac, "export", "--json", os.path.join(src, "examples/tiny/passkey_hsa.hsa"),
                        "-o", os.path.join(tmp, "tiny.json")], capture_output=True)
    tiny = HsacModel(os.path.join(tmp, "tiny.json"), seed=5)
    tiny.eval()
    ru_items = [{"task": "passkey", "prompt": "The pass key is 4711. " * 4 + "The pass key is ",
                 "answer": "4711"}]
    n1, p1, p0, g1 = read_use(tiny, ru_items)["passkey"]
    check("read_use leaves the model's parameters trainable",
          all(p.requires_grad for p in tiny.parameters()))
    with torch.no_grad():
        tiny.get_parameter("upper.1.attn.o_proj.weight").zero_()
    _, q1, q0, g0 = read_use(tiny, ru_items)["passkey"]
    check("read_use: zeroing the read moves p, but not through a zero output projection",
          n1 == 1 and abs(p1 - p0) > 1e-3 * p0 and min(g1) > 0 and abs(q1 - q0) < 1e-6 * q0
          and max(g0) == 0,
          "%.9f %.9f %s / %r %r %s" % (p1, p0, g1, q1, q0, g0))

# --part-start-weight: the first byte of each answer part weighs W in the
# answer's cross-entropy (a weighted mean); the logged answer loss stays the
# plain mean, and W = 1 is the plain loss
check("part_start_weights: W at the answer's first byte and after each ', '",
      train.part_start_weights(b"ABCDE, FGHIJ", 3.0) == [3.0] + [1.0] * 6 + [3.0] + [1.0] * 4
      and train.part_start_weights(b"4820183", 2.0) == [2.0] + [1.0] * 6
      and train.part_start_weights(b"", 2.0) == [])
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([hsac, "export", "--json", os.path.join(src, "examples/tiny/passkey_hsa.hsa"),
                    "-o", os.path.join(tmp, "tiny.json")], capture_output=True, check=True)
    tiny = HsacModel(os.path.join(tmp, "tiny.json"), seed=5)
    tiny.eval()
    _it = {"task": "vartrack", "prompt": "X holds QWERT. Y holds X. Name them: ", "answer": "QWERT, ZXCVB"}
    with torch.no_grad():
        _l1 = train.item_loss(tiny, _it, 0.0)
        _l3 = train.item_loss(tiny, _it, 0.0, part_start_weight=3.0)
        _toks, _P, _A = train.encode(_it)
        _ce = torch.nn.functional.cross_entropy(tiny(_toks[:-1])[_P - 1:_P - 1 + _A],
                                                _toks[_P:_P + _A], reduction="none")
    _w = torch.tensor(train.part_start_weights(_it["answer"].encode(), 3.0))
    check("item_loss with --part-start-weight 3: the weighted mean, the plain mean logged",
          abs(float(_l1[0]) - float(_ce.mean())) < 1e-5
          and abs(float(_l3[0]) - float((_w * _ce).sum() / _w.sum())) < 1e-5
          and abs(float(_l3[1]) - float(_ce.mean())) < 1e-5
          and abs(float(_l3[0]) - float(_l1[0])) > 1e-4,
          "%r %r %r" % (float(_l1[0]), float(_l3[0]), float(_ce.mean())))

# probe_retrieval.py on the shipped multi-task weights: the needle-choice
# lines for each retrieval, first and later bytes, weights that are shares
_pr = subprocess.run([sys.executable, os.path.join(src, "tools/torch/probe_retrieval.py"),
                      os.path.join(src, "examples/trained/ruler_hsa"), "--task", "multiquery",
                      "--length", "1K", "--items", "2", "--filler", "devil", "--phrasing", "heldout",
                      "--hsac", hsac], capture_output=True, text=True)
_nc = re.findall(r"retrieval (\d): needle-choice targets, (first|later) bytes: weight on the target "
                 r"([\d.]+), on the chunks it must not read ([\d.]+) \((\d+) positions\)", _pr.stdout)
check("probe_retrieval.py: needle-choice weights per retrieval at first and later bytes",
      _pr.returncode == 0 and sorted((r, g) for r, g, *_ in _nc)
      == [("0", "first"), ("0", "later"), ("1", "first"), ("1", "later")]
      and all(0 <= float(t) and 0 <= float(o) and float(t) + float(o) <= 1.0001 for _, _, t, o, _ in _nc)
      and [int(n) for r, g, _, _, n in _nc if r == "0"] == [8, 48],
      _pr.stdout[-600:] + _pr.stderr[-400:])

# ... and on vartrack, split by the needles' wording: the per-wording exact
# counts add up to the items, and each wording counted has its needle-choice lines
_pr = subprocess.run([sys.executable, os.path.join(src, "tools/torch/probe_retrieval.py"),
                      os.path.join(src, "examples/trained/ruler_hsa"), "--task", "vartrack",
                      "--length", "1K", "--items", "6", "--filler", "fortunes", "--phrasing", "train",
                      "--hsac", hsac], capture_output=True, text=True)
_vo = re.findall(r"teacher-forced exact answers, (name-first|key-first): (\d+)/(\d+)", _pr.stdout)
_vg = set(re.findall(r"needle-choice targets, (name-first|key-first), (?:first|later) bytes", _pr.stdout))
check("probe_retrieval.py: vartrack's answers and needle choice by wording",
      _pr.returncode == 0 and sum(int(n) for _, _, n in _vo) == 6
      and all(int(k) <= int(n) for _, k, n in _vo) and {o for o, _, _ in _vo} == _vg,
      _pr.stdout[-600:] + _pr.stderr[-400:])

# probe_retrieval.before_split: a "before" question's answer fact, the move to
# the named place, and the person's other moves, as chunk sets
from probe_retrieval import before_split  # noqa: E402
_sf = ["Mary went to the kitchen.", "John took the football along.", "Mary moved into the garden.",
       "Mary ran to the attic."]
_sp, _so = spaced(_sf)
_sb = {"task": "babi", "prompt": _sp + "\nWhere was Mary before the garden? In the ",
       "answer": "kitchen", "needle_offsets": _so, "needle_lengths": [len(n) for n in _sf],
       "support": [0, 2]}
def _ch(i, c=16):
    return set(range(_so[i] // c, (_so[i] + len(_sf[i]) - 1) // c + 1))
check("probe_retrieval.before_split: the answer's fact, the move to P, the person's other moves",
      before_split(_sb, 16) == (_ch(0), _ch(2) - _ch(0), _ch(3) - _ch(0) - _ch(2))
      and before_split(bitem, 16) is None and bool(_ch(3) - _ch(2)),
      str(before_split(_sb, 16)))

# --before-loss: the answer fact's chunk against the move to P's, at each answer byte
_pl = len(_sp) + 20
_s = torch.full((_pl + 8, 1, 16), -1e9)
_s[:, :, :14] = 0.0
_t0 = _sf[0].index("kitchen")
def _bl(good):
    s = _s.clone().requires_grad_(True)
    with torch.no_grad():
        for a in range(7):
            s[_pl - 1 + a, 0, (_so[0] + _t0 + a) // 16] = 4.0 if good else -4.0
    return s, train.before_pair_loss(s, 16, _sb, _pl, 7)
_sg, _lg_ = _bl(True)
_sw, _lw = _bl(False)
_lw.backward()
_gn = {int(c) for c in (_sw.grad[_pl - 1:_pl + 6, 0].abs() > 0).nonzero()[:, 1]}
check("before_pair_loss: small when the answer's fact outscores the move to P, large when not; "
      "its gradient only on those chunks; None for other questions",
      float(_lg_) < 0.02 and float(_lw) > 4.0
      and _gn <= _ch(0) | _ch(2) and _gn & _ch(2) and _gn & _ch(0)
      and train.before_pair_loss(_s, 16, bitem, _pl, 7) is None
      and train.before_pair_loss(_s, 16, dict(_sb, task="multikey"), _pl, 7) is None,
      "%s %s %s" % (_lg_, _lw, _gn))

# --grow: a model with one more upper group starts from the smaller one's
# weights and first computes the same logits (the new group is the identity)
with tempfile.TemporaryDirectory() as tmp:
    small_src = os.path.join(src, "examples/tiny/passkey_hsa.hsa")
    text = open(small_src).read()
    big_src = os.path.join(tmp, "big.hsa")
    with open(big_src, "w") as f:
        f.write(text.replace("stack upper {\n    repeat 1 {", "stack upper {\n    repeat 2 {"))
    ok = True
    for name, path in (("small", small_src), ("big", big_src)):
        r = subprocess.run([hsac, "export", "--json", path, "-o", os.path.join(tmp, name + ".json")],
                           capture_output=True)
        ok = ok and r.returncode == 0
    check("the grown model's source has one more upper group", ok and text != open(big_src).read())
    if ok:
        small = HsacModel(os.path.join(tmp, "small.json"), seed=3)
        big = HsacModel(os.path.join(tmp, "big.json"), seed=4)
        new = big.grow_from(small.weights_dict())
        check("grow_from names the new tensors: those of one upper group",
              len(new) > 0 and all(n.startswith("upper.") for n in new)
              and not any(n in small.weight_names for n in new), " ".join(new))
        zeroed = [n for n in new if n.endswith(("o_proj.weight", "down_proj.weight"))]
        check("grow_from zeroes the new output projections, keeps the other new tensors",
              len(zeroed) >= 2 and all(float(big.get_parameter(n).abs().sum()) == 0 for n in zeroed)
              and all(float(big.get_parameter(n).abs().sum()) > 0 for n in new if n not in zeroed))
        toks = torch.tensor([(7 * i + 3) % 256 for i in range(100)])
        with torch.no_grad():
            d = (small(toks) - big(toks)).abs().max().item()
        check("the grown model's logits are the small model's", d < 1e-5, "max diff %.2e" % d)
        extra = dict(small.weights_dict(), stray=torch.zeros(3))
        try:
            big.grow_from(extra)
            check("grow_from refuses a tensor the model does not have", False)
        except ValueError as e:
            check("grow_from refuses a tensor the model does not have", "stray" in str(e), str(e))
    r = subprocess.run([sys.executable, os.path.join(src, "tools/torch/train.py"), small_src,
                        "--out", os.path.join(tmp, "o"), "--grow"], capture_output=True)
    check("train.py --grow without --init is refused",
          r.returncode != 0 and b"--grow needs --init" in r.stderr, r.stderr.decode()[-200:])

print("%d passed, %d failed" % (sum(results), len(results) - sum(results)))
sys.exit(0 if all(results) else 1)
