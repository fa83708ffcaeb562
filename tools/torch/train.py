#!/usr/bin/python3
"""train.py: trains any .hsa model on gen-task's retrieval tasks with the PyTorch twin.

    export OPENBLAS_CORETYPE=SkylakeX      # before starting: BLAS kernel choice
    /usr/bin/python3 tools/torch/train.py examples/passkey_hsa.hsa \
        --out examples/trained/passkey_hsa --hours 3
    /usr/bin/python3 tools/torch/train.py --resume examples/trained/passkey_hsa
    /usr/bin/python3 tools/torch/train.py --plot-only examples/trained/passkey_hsa

The model comes from `hsac export --json MODEL` (tools/torch/hsac_torch); the
data from `hsac gen-task --format jsonl` (deterministic; item seeds from
--data-seed on, so training never sees the evaluation seeds 0..999999): the
tasks of --tasks, on the filler styles of --fillers, worded as --phrasing
says, each item drawing its task, style and needle kind at random.  The
held-out filler styles (devil, jargon) and phrasings (heldout) are refused:
they are what evaluation measures generalization on.  Loss: cross-entropy on the answer bytes, plus --lm-weight times
the next-byte loss on the prompt.  Top-k selection stays in the forward
pass; --gumbel adds scale * Gumbel(0, 1) noise to the retrieval scores for
the selection.

Curriculum (--stages): a list of LENGTH:K.  In a stage, sequences are
gen-task prompts of LENGTH bytes (with --mix, half of them a random length
between --min-length and LENGTH), and every retrieval keeps K chunks: the
twin's top-k nodes get attrs["k"] = K, which changes nothing but the
selection (the weights are the same for any K; the model's own topk is what
hsac runs).  A stage ends when the answer accuracy over the last
--advance-window sequences reaches --advance-acc (and --stage-min-steps
have passed), or after --stage-max-steps.  The last stage runs until
--steps or --hours.

Checkpoints (every --ckpt-minutes, at the end, on SIGINT/SIGTERM) go to
--out: weights.safetensors (F32, exact hsac names: `hsac run MODEL --weights
OUT/weights.safetensors`), optim.pt (AdamW state), state.json (step, stage,
data position, the arguments), log.csv (one row every --log-every steps);
with --ema D also weights_ema.safetensors, the exponential moving average
of the weights (the same names; a resumed run goes on averaging it).
--resume DIR restores all of them and continues with the saved arguments;
flags given on the command line override them.
"""
import argparse
import csv
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
import zlib

# OpenBLAS's own threads on top of torch's oversubscribe a small machine
# (measured here: 7x slower); torch's --threads does the parallelism
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hsac_torch import HsacModel  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG_FIELDS = ["step", "time_s", "stage", "length", "topk", "loss", "answer_loss",
              "lm_loss", "acc", "steps_per_s", "lr", "score_offset", "items",
              "retrieval_loss", "acc_by_task", "answer_loss_by_task", "copy_loss",
              "needle_loss", "key_loss", "before_loss", "carry_loss"]
KEY_RE = r"\b[a-z]+-[a-z]+\b"     # gen-task's keys: two words joined by a hyphen
TASKS = ["passkey", "multikey", "multivalue", "multiquery", "vartrack", "babi"]
TRAIN_FILLERS = ["synthetic", "noise", "fortunes", "sayings"]
TRAIN_PHRASINGS = ["default", "train", "varied", "composed", "nonce"]   # gen-task's heldout is refused
HELD_OUT_FILLERS = ["devil", "jargon"]
NEEDLES = ["number", "word", "uuid", "code"]
VARTRACK_ORDERS = ["any", "key-first", "name-first"]  # --vartrack-order (or key-first=F)
BABI_KINDS = ["now", "object", "before"]     # gen-task's kinds of babi question


def find_hsac(path):
    cands = [path] if path else []
    cands += [os.environ.get("HSAC", ""), os.path.join(REPO, "build-train", "hsac"),
              os.path.join(REPO, "build", "hsac")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise SystemExit("train.py: no hsac binary found (give --hsac PATH)")


def parse_stages(s):
    out = []
    for part in s.split(","):
        L, K = part.split(":")
        out.append((int(L), int(K)))
    return out


def vartrack_order(s):
    """--vartrack-order: 'any', 'key-first', 'name-first', or 'key-first=F'
    (0 < F < 1: that share of the vartrack items key-first, the rest
    name-first).  Returns the string; a bad form raises
    argparse.ArgumentTypeError, which argparse reports as a usage error."""
    if s in VARTRACK_ORDERS:
        return s
    name, eq, share = s.partition("=")
    try:
        f = float(share)
    except ValueError:
        f = -1.0
    if name != "key-first" or not eq or not 0.0 < f < 1.0:
        raise argparse.ArgumentTypeError(
            "expected any, key-first, name-first or key-first=F with 0 < F < 1, not '%s'" % s)
    return s


def vartrack_key_first_share(order):
    """The share of vartrack items to keep key-first: 1 for key-first, 0 for
    name-first, F for key-first=F, None for any."""
    if order == "any":
        return None
    if order in ("key-first", "name-first"):
        return 1.0 if order == "key-first" else 0.0
    return float(order.partition("=")[2])


def parse_list(s, allowed, what, refused=(), why=""):
    out = [x for x in s.split(",") if x]
    for x in out:
        if x in refused:
            raise SystemExit("train.py: %s '%s' is held out: %s" % (what, x, why))
        if x not in allowed:
            raise SystemExit("train.py: unknown %s '%s' (expected %s)"
                             % (what, x, ", ".join(allowed)))
    if not out:
        raise SystemExit("train.py: no %s given" % what)
    return out


def parse_task_weights(s):
    """--task-answer-weight's "TASK=W,..." as {task: W}."""
    out = {}
    for part in (x for x in s.split(",") if x):
        task, eq, w = part.partition("=")
        if task not in TASKS or not eq:
            raise SystemExit("train.py: --task-answer-weight: expected TASK=W with TASK one of "
                             "%s, not '%s'" % (", ".join(TASKS), part))
        try:
            out[task] = float(w)
        except ValueError:
            raise SystemExit("train.py: --task-answer-weight: '%s' is not a number (in '%s')"
                             % (w, part))
        if not out[task] >= 0:
            raise SystemExit("train.py: --task-answer-weight: weight %s must be >= 0 (in '%s')"
                             % (w, part))
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("model", nargs="?", help=".hsa model source")
    p.add_argument("--out", help="checkpoint directory")
    p.add_argument("--resume", help="checkpoint directory to resume (implies --out)")
    p.add_argument("--plot-only", metavar="DIR", help="only write DIR/loss.png from DIR/log.csv")
    p.add_argument("--hsac", default="", help="hsac binary (default $HSAC, build-train/hsac)")
    p.add_argument("--init", default="", help="start from these weights (safetensors)")
    p.add_argument("--grow", action="store_true",
                   help="with --init: the file may hold only some of the model's "
                        "weights (a smaller model's, e.g. one upper group fewer); the "
                        "others keep their fresh init with output projections zeroed")
    p.add_argument("--seed", type=int, default=1, help="init and noise seed")
    p.add_argument("--stages", default="256:8,384:8,512:8,512:4",
                   help="curriculum LENGTH:TOPK,... (default %(default)s)")
    p.add_argument("--advance-acc", type=float, default=0.9)
    p.add_argument("--advance-window", type=int, default=256, help="sequences")
    p.add_argument("--stage-min-steps", type=int, default=200)
    p.add_argument("--stage-max-steps", type=int, default=4000)
    p.add_argument("--mix", type=float, default=0.5,
                   help="share of sequences with a random length in [--min-length, LENGTH]")
    p.add_argument("--min-length", type=int, default=256)
    p.add_argument("--tokens-per-step", type=int, default=2048,
                   help="batch = this // stage length sequences (at least 1)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--decay-steps", type=int, default=0,
                   help="cosine decay to --min-lr over this many steps after the last "
                        "stage starts (0: constant lr)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--lm-weight", type=float, default=0.1)
    p.add_argument("--answer-weight", type=float, default=1.0,
                   help="weight of the cross-entropy on the answer bytes (0 trains only the "
                        "auxiliary losses, as the key stage of TRAINING.md does)")
    p.add_argument("--task-answer-weight", default="", metavar="TASK=W[,TASK=W]",
                   help="--answer-weight for these tasks only (babi=0: train babi's retrieval "
                        "without teaching the model to ignore a read that is not yet right; "
                        "TRAINING.md)")
    p.add_argument("--part-start-weight", type=float, default=1.0, metavar="W",
                   help="weight of the answer's cross-entropy at the first byte of each "
                        "answer part (the answer's first byte and each byte after ', '), "
                        "against 1 for the others; the loss stays a weighted mean "
                        "(1: the plain mean; TRAINING.md)")
    p.add_argument("--distractor-loss", type=float, default=0.0,
                   help="weight of an unlikelihood loss on wrong answers within reach: a babi "
                        "'before' question's named place, at the first byte where it parts "
                        "from the answer (0: off; in the total loss, not logged apart; "
                        "TRAINING.md)")
    p.add_argument("--gumbel", type=float, default=0.5, help="Gumbel noise scale on scores")
    p.add_argument("--gumbel-weights", action=argparse.BooleanOptionalAction, default=False,
                   help="the Gumbel noise of --gumbel also enters the stick-breaking weights "
                        "of the selected chunks (default: the selection only), so that "
                        "chunks of filler carry weight as the best of many do at a long "
                        "context, meant to train the layers above a retrieval to read past "
                        "them (session 50 saw no gain at 32K); --no-gumbel-weights turns "
                        "it off on a resume")
    p.add_argument("--sparsity", type=int, default=0,
                   help="keep top-k at most 1/N of a sequence's chunks: K = min(stage K, "
                        "max(1, chunks // N)) per sequence (0: the stage's K for every "
                        "length)")
    p.add_argument("--retrieval-loss", type=float, default=0.0,
                   help="weight of the auxiliary selection loss: at each answer position, "
                        "minus the stick-breaking log-weight that the scores give the most "
                        "recent chunk holding that answer byte (0: off; TRAINING.md)")
    p.add_argument("--retrieval-margin", type=float, default=0.0, metavar="M",
                   help="the selection loss scores the chunks it pushes down as s + M, as "
                        "if each stood for e^M alike (a context e^M times longer): trains "
                        "the scores' tail that a long context's top-k picks from (0: off; "
                        "TRAINING.md)")
    p.add_argument("--margin-on", choices=("all", "filler"), default="all",
                   help="which pushed-down chunks --retrieval-margin applies to: all (default), "
                        "or filler, those that hold no byte of any needle (the other needles "
                        "are pushed down without it)")
    p.add_argument("--copy-loss", type=float, default=0.0,
                   help="weight of the auxiliary copy-retrieval loss: at each prompt position "
                        "whose next byte continues an earlier, unambiguous occurrence of the 8 "
                        "bytes before it (64 or more bytes back), minus the stick-breaking "
                        "log-weight of the chunk holding that continuation (0: off; TRAINING.md)")
    p.add_argument("--needle-loss", type=float, default=0.0,
                   help="weight of the auxiliary needle-choice loss: at the first byte of "
                        "each answer part, cross-entropy of the retrieval scores over the "
                        "answer's chunk and the chunks of the needles that do not support the "
                        "answer (0: off; --needle-bytes all: at every byte; TRAINING.md)")
    p.add_argument("--needle-bytes", default="first", choices=["first", "all"],
                   help="where the needle-choice loss applies: each answer part's first "
                        "byte (default), or all its bytes")
    p.add_argument("--key-loss", type=float, default=0.0,
                   help="weight of the auxiliary key loss: linear heads (kept in OUT/aux.pt, "
                        "not in the weights) predict a needle's key, its two words hashed, "
                        "from the landmark of the chunk holding its value and from the query "
                        "at each answer's first byte (0: off; --key-bytes all: at every "
                        "byte; TRAINING.md)")
    p.add_argument("--key-bytes", default="first", choices=["first", "all"],
                   help="where the key loss asks the query for the asked key: each answer "
                        "part's first byte (default), or all its bytes")
    p.add_argument("--freeze", default="", metavar="NAMES",
                   help="hold fixed the parameters of this comma-separated list, each a full "
                        "name or its last parts after a '.' (score_offset: every retrieval's "
                        "learned score offset); '' (the default) holds none")
    p.add_argument("--carry-loss", type=float, default=0.0, metavar="W",
                   help="weight of the auxiliary carry loss: a linear head (in OUT/aux.pt) "
                        "reads a vartrack needle's assigned name from the memory's values "
                        "(what the sparse attention reads) at the key it copies, the name's "
                        "last letter at the key's last byte and so on back, where the needle "
                        "names the variable first and the key's chunk is the retrieval's "
                        "target (0: off; TRAINING.md)")
    p.add_argument("--before-loss", type=float, default=0.0, metavar="W",
                   help="weight of a pairwise loss on a babi 'before' question's scores: "
                        "-log sigmoid(s_answer - s_P) at every answer byte and retrieval, "
                        "the answer's fact against the move to the named place (0: off)")
    p.add_argument("--babi-place-key", action="store_true",
                   help="the key loss asks a babi move fact's landmark for its place as "
                        "its second word (default: the person twice), so that a 'before' "
                        "question's query can score the move to the named place down")
    p.add_argument("--ema", type=float, default=0.0, metavar="D",
                   help="also keep an exponential moving average of the weights, "
                        "ema = D * ema + (1 - D) * weights after every step, written as "
                        "OUT/weights_ema.safetensors (0: off; 0.999 averages about the "
                        "last 1,000 steps; TRAINING.md)")
    p.add_argument("--steps", type=int, default=0, help="stop at this step (0: no limit)")
    p.add_argument("--hours", type=float, default=0.0,
                   help="stop after this much training time in this run (0: no limit)")
    p.add_argument("--ckpt-minutes", type=float, default=10.0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=0,
                   help="held-out teacher-forced accuracy at the last stage's length "
                        "every N steps (0: off)")
    p.add_argument("--eval-items", type=int, default=32)
    p.add_argument("--data-seed", type=int, default=1000000,
                   help="first gen-task seed of the training items")
    p.add_argument("--tasks", default="passkey",
                   help="gen-task tasks to mix, comma-separated, or all (default %(default)s; "
                        "the tasks: " + ",".join(TASKS) + ")")
    p.add_argument("--fillers", default="synthetic",
                   help="training filler styles to mix (default %(default)s; allowed: "
                        + ",".join(TRAIN_FILLERS) + "; devil and jargon are held out)")
    p.add_argument("--phrasing", default="default", choices=TRAIN_PHRASINGS,
                   help="gen-task --phrasing (heldout is for evaluation only; composed: "
                        "train's, and half of vartrack's items worded by a grammar; nonce: "
                        "composed's, its grammar also with made-up verbs in either order)")
    p.add_argument("--needles", default="number",
                   help="needle kinds to mix for the tasks that have them (default %(default)s)")
    p.add_argument("--key-first", action="store_true",
                   help="leave out items whose supporting needle states its value before "
                        "its key (4 of multikey's 22 training wordings): there the value's "
                        "chunk cannot know the key (TRAINING.md)")
    p.add_argument("--vartrack-order", default="any", type=vartrack_order,
                   help="vartrack items to keep by their needles' wording: any (default); "
                        "key-first, whose needles give the key (the value or the name "
                        "assigned before) ahead of the name they assign ('Put V into X.'); "
                        "name-first, the others ('VAR X = V.'), where the name lies before "
                        "the key's chunk; key-first=F, a share F of each (0 < F < 1) "
                        "(TRAINING.md)")
    p.add_argument("--vartrack-count", type=int, default=0,
                   help="variables per vartrack chain, gen-task --count (0: gen-task's "
                        "default, 5); a shorter chain is a shorter answer")
    p.add_argument("--babi-kinds", default=",".join(BABI_KINDS),
                   help="the kinds of babi question to train on (default %(default)s): "
                        "other items are drawn and left out, as --key-first does, so that a "
                        "stage can teach one kind (TRAINING.md)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--plot", action="store_true", help="write OUT/loss.png at each checkpoint")
    p.add_argument("--no-progress", action="store_true")
    return p


# ---- data ------------------------------------------------------------------

class TaskData:
    """gen-task items; item seeds data_seed + n for n = 0, 1, ... (n is
    saved in checkpoints, so a resumed run continues the stream).  Each
    item draws its task, filler style and needle kind from the lists."""

    def __init__(self, hsac, data_seed, consumed=0, tasks=("passkey",),
                 fillers=("synthetic",), needles=("number",), phrasing="default",
                 key_first=False, babi_kinds=BABI_KINDS, vartrack_order="any",
                 vartrack_count=0):
        self.hsac = hsac
        self.key_first = key_first
        self.vartrack_share = vartrack_key_first_share(vartrack_order)  # key-first share or None
        self.vartrack_count = vartrack_count
        self.babi_kinds = set(babi_kinds)
        self.data_seed = data_seed
        self.consumed = consumed
        self.tasks, self.fillers, self.needles = list(tasks), list(fillers), list(needles)
        self.phrasing = phrasing

    def gen(self, length, seed, n, task="passkey", filler="synthetic", needle="number",
            count=0):
        args = [self.hsac, "gen-task", "--task", task, "--seed", str(seed),
                "--items", str(n), "--format", "jsonl", "--filler", filler,
                "--phrasing", self.phrasing]
        if task != "babi":
            args += ["--needle", needle]
        if count:
            args += ["--count", str(count)]
        tries = 0
        while True:
            try:
                r = subprocess.run(args + ["--length", str(length)], capture_output=True)
            except OSError:
                # the binary is being rebuilt (mid-link it is not executable):
                # wait for it rather than end a run of hours
                tries += 1
                if tries > 60:
                    raise
                time.sleep(10)
                continue
            if r.returncode == 0:
                return [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
            m = re.search(rb"needs at least (\d+)", r.stderr)
            if m and int(m.group(1)) > length:
                length = -(-int(m.group(1)) // 16) * 16
                continue
            raise RuntimeError("gen-task failed: " + r.stderr.decode())

    def draw(self, rng):
        task = rng.choice(self.tasks)
        filler = rng.choice(self.fillers)
        needle = rng.choice(self.needles)
        count = rng.randint(3, 8) if task == "babi" else \
            self.vartrack_count if task == "vartrack" else 0
        return task, filler, needle, count

    def batch(self, n, length, rng, mix, min_length):
        """n items, each with its own task, style and needle kind: about
        (1 - mix) * n at `length`, the rest at one random length in
        [min_length, length] (a multiple of 16); a length too short for an
        item's needles grows to the least that holds them."""
        items = []
        short = rng.randrange(min_length // 16, length // 16 + 1) * 16 \
            if mix > 0 and min_length < length else length
        want_key_first = None
        while len(items) < n:
            L = short if mix > 0 and rng.random() < mix else length
            task, filler, needle, count = self.draw(rng)
            got = self.gen(L, self.data_seed + self.consumed, 1, task, filler, needle, count)
            self.consumed += 1
            if self.key_first and any(value_first(it) for it in got):
                continue
            if task == "babi" and any(it["kind"] not in self.babi_kinds for it in got):
                continue
            share = self.vartrack_share
            if task == "vartrack" and share is not None:
                # the wording the next vartrack item must have, drawn once
                # and kept until an item has it, so that the kept items
                # have the share (the rng is drawn only under a share, so
                # the other orders keep their streams)
                if want_key_first is None:
                    want_key_first = share == 1.0 or (0.0 < share and rng.random() < share)
                if any(vartrack_name_first(it) == want_key_first for it in got):
                    continue
                want_key_first = None
            items += got
        return items


def value_first(item):
    """True when the item's supporting needles name their key (two words
    joined by a hyphen, as gen-task's keys are) after the value they give,
    as in "Write down V, the magic number of K." (the first supporting
    needle that holds one of the answers decides; an item's needles share
    one wording).  Passkeys and items without keys are never value-first."""
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    parts = item.get("answers") or [item["answer"]]
    for i in item.get("support") or []:
        if i >= len(offs):
            continue
        needle = item["prompt"][offs[i]:offs[i] + lens[i]]
        for value in parts:
            at = needle.find(value)
            if at < 0:
                continue
            rest = needle[:at] + " " * len(value) + needle[at + len(value):]
            key = re.search(KEY_RE, rest)
            return key is not None and key.start() > at
    return False


def vartrack_name_first(item):
    """True when a vartrack item's needles name the variable they assign
    before the key it copies ("VAR X = V.", "Make X equal to Y."), False
    when the key comes first ("Put V into X.").  The needle that assigns the
    first answer from the asked value decides (an item's needles share one
    wording)."""
    offs, lens = item["needle_offsets"], item["needle_lengths"]
    first = item["support"][0]
    needle = item["prompt"][offs[first]:offs[first] + lens[first]]
    name, key = needle.find(item["answers"][0]), needle.find(item["value"])
    if name < 0 or key < 0:
        raise ValueError("vartrack item %s: its first supporting needle %r holds "
                         "not both %r and %r" % (item.get("seed"), needle,
                                                 item["answers"][0], item["value"]))
    return name < key


def part_start_weights(answer, w):
    """Per byte of the answer (bytes): w at the first byte of each answer
    part (the answer's first byte, and every byte that follows ", "), 1
    elsewhere.  vartrack's names, multivalue's and multiquery's values: the
    first byte is where the read must move to the next part."""
    out = [1.0] * len(answer)
    for i in range(len(answer)):
        if i == 0 or answer[max(0, i - 2):i] == b", ":
            out[i] = w
    return out


def encode(item):
    p = item["prompt"].encode()
    a = item["answer"].encode()
    return torch.tensor(list(p + a), dtype=torch.long), len(p), len(a)


def occurrences(prompt, answer, spans=None):
    """Byte offsets of every occurrence of answer in prompt (bytes), only
    inside the (start, end) spans when given."""
    out = []
    start = prompt.find(answer)
    while start >= 0:
        if spans is None or any(a <= start and start + len(answer) <= b for a, b in spans):
            out.append(start)
        start = prompt.find(answer, start + 1)
    return out


def answer_targets(item, chunk, A):
    """For each answer byte a (0..A-1), the set of chunks the retrieval at
    its position should select, or an empty set (no target: a ", "
    separator, or an answer found nowhere).  Per byte: the most recent
    chunk holding that byte of the most recent occurrence of its answer
    part inside a supporting needle (gen-task's "support"; anywhere when
    the item has none).  For babi that is the asked one's last move, which
    names the place; the pick-up that says who holds an object is left to
    the answer loss (a first form targeted every chunk of every supporting
    fact at every answer byte, and its push-down terms over the chunks in
    between made babi's selection loss 5-10x the other tasks').  For
    vartrack, inside the needle that assigns the part (answer_parts), and
    no earlier than the chunk holding that needle's key (gen-task's
    "value" for the first part, else the part before it): where a wording
    names the variable before its key ("Make A equal to B."), the name's
    bytes mostly lie in an earlier chunk than the key's end, and no
    landmark there can know the key (the lower stack is causal, the
    encoder sees its own chunk), so the chunk to select is the key's,
    whose tokens have seen the name (session 42; vartrack's answer loss
    stayed at chance, ln 26 a letter, with either target in the runs so
    far: ruler_hsa's model card)."""
    prompt = item["prompt"].encode()
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    spans = None
    if "support" in item and lens:
        spans = [(offs[i], offs[i] + lens[i]) for i in item["support"]]
    parts = item.get("answers") or [item["answer"]]
    own = ([[(offs[i], offs[i] + lens[i]) for i in o] or spans for _, _, o in answer_parts(item)]
           if item.get("task") == "vartrack" and spans else [spans] * len(parts))
    out = []
    for i, part in enumerate(parts):
        if i:
            out += [set(), set()]                          # ", "
        pb = part.encode()
        occs = occurrences(prompt, pb, own[i]) or occurrences(prompt, pb)
        key_end = -1
        if item.get("task") == "vartrack" and spans:
            key = parts[i - 1] if i else item.get("value")
            if key:
                kb = key.encode()
                key_end = max((o + len(kb) - 1 for o in occurrences(prompt, kb, own[i])),
                              default=-1)
        out += [{max(max(o + a for o in occs), key_end) // chunk} if occs else set()
                for a in range(len(pb))]
    return out[:A] + [set()] * (A - len(out))


class ScoreTap:
    """Keeps the retrieval scores [L, G, C] of every landmark_scores op of
    one forward pass, and its inputs, the queries [L, G, dr] and the
    landmarks [C, dr] or [C, G, dr], and the values [C, S, Hkv, dv] that
    every chunk_attention op reads (a post_op_hook; the tensors keep their
    gradients)."""

    def __init__(self, model):
        self.scores = []
        self.inputs = []
        self.values = []
        model.post_op_hook = self

    def __call__(self, node, i, v, ins):
        if node.op == "landmark_scores" and i == 0:
            self.scores.append((v, int(node.attrs["chunk"])))
            self.inputs.append((ins[0], ins[1]))
        elif node.op == "chunk_attention" and i == 0:
            self.values.append(ins[2])      # the memory's values [C, S, Hkv, dv]
        return None


def copy_targets(prompt, chunk, m=8, min_dist=64, max_targets=2):
    """Copy-retrieval targets inside a prompt (bytes), for --copy-loss: the
    positions t whose next byte continues an earlier occurrence of the m
    bytes ending at t, and for each the set of chunks holding that
    continuation.  An occurrence counts when its continuation byte c lies
    in a chunk the retrieval at t may select (c < (t // chunk) * chunk) and
    at least min_dist bytes back (nearer ones the windowed layers read).  A
    position is kept only when every such occurrence continues with the
    byte that follows t (the copy is unambiguous) and they lie in at most
    max_targets chunks.  A key spelled out in a question, a variable's name
    or a repeated phrase gives these; matching the bytes just read against
    a chunk's contents is what key lookup needs of the landmarks and the
    retrieval query (TRAINING.md, "The copy loss").  Returns (positions,
    target sets)."""
    grams = {}
    nxt = 0
    pos, sets = [], []
    for t in range(m - 1, len(prompt) - 1):
        bound = min((t // chunk) * chunk, t - min_dist + 1)
        while nxt < bound:
            if nxt >= m:
                grams.setdefault(prompt[nxt - m:nxt], []).append(nxt)
            nxt += 1
        occ = grams.get(prompt[t - m + 1:t + 1])
        if not occ or any(prompt[c] != prompt[t + 1] for c in occ):
            continue
        ch = {c // chunk for c in occ}
        if len(ch) <= max_targets:
            pos.append(t)
            sets.append(ch)
    return pos, sets


def targets_loss(scores, positions, targets, margin=0.0, spared=()):
    """Selection loss at the given positions of one retrieval's scores [L,
    G, C], each with its set of target chunks.  Stick-breaking in slot order
    (most recent first) gives a chunk n the weight sigmoid(s_n) * prod over
    the more recent eligible chunks j of (1 - sigmoid(s_j)); the loss is
    minus the log of prod over n in the targets of sigmoid(s_n) times prod
    over the eligible chunks j outside them and more recent than their
    oldest of (1 - sigmoid(s_j)), averaged over the positions with a target
    and over the groups.  With one target chunk this is minus the log of
    its stick-breaking weight.  Targets the retrieval cannot select (not
    yet eligible at that position) are left out.  None when no position
    has a target.  The scores are the raw ones: a retrieval's
    length_offset (0 up to its N tokens) is not applied, so past N this
    loss is about weights the model does not use.

    margin m > 0 (--retrieval-margin) scores the chunks to push down as
    s_j + m: for small sigmoids, 1 - sigmoid(s_j + m) is about (1 -
    sigmoid(s_j))^(e^m), so the loss is the one the target would meet if
    each of those chunks stood for e^m alike, as at a context e^m times
    longer.  Its gradient on a low-scored chunk is e^m times larger, which
    is what trains the tail of the scores that a long context's top-k
    picks from.  The chunks in spared (--margin-on filler: those holding
    needle bytes) are pushed down without the margin."""
    L, G, C = scores.shape
    A = len(positions)
    if not A:
        return None
    s = scores[torch.tensor(positions, dtype=torch.long)]      # [A, G, C]
    elig = s > -1e30
    tmask = torch.zeros(A, C, dtype=torch.bool)
    for a, ts in enumerate(targets):
        for n in ts:
            if 0 <= n < C:
                tmask[a, n] = True
    tm = tmask[:, None, :] & elig                              # eligible targets [A, G, C]
    has = tm.any(-1)                                           # [A, G]
    if not bool(has.any()):
        return None
    idx = torch.arange(C)[None, None, :].expand(A, G, C)
    oldest = torch.where(tm, idx, torch.full_like(idx, C)).min(-1).values   # [A, G]
    push = elig & ~tm & (idx > oldest[..., None])
    sz = s.masked_fill(~elig, 0.0)
    m = torch.full((C,), float(margin))
    for n in spared:
        if 0 <= n < C:
            m[n] = 0.0
    per = ((F.logsigmoid(sz) * tm.float()).sum(-1)
           + (F.logsigmoid(-(sz + m)) * push.float()).sum(-1))
    return -(per[has]).mean()


def answer_parts(item):
    """[(a, part, own)] for each part of an item's answer (one, or the
    "answers" joined by ", "): a is its first byte's offset in the
    answer, own the supporting needles (gen-task's "support") that spell
    it.  vartrack: the needle that assigns it only.  Its chain's names
    each appear twice, where the name is assigned (from the value or the
    name before it, the part before it in the answer) and where the next
    name is assigned from it; the query that writes a part knows the key
    of the first (the asked value, or the part just written), so the
    needle that also spells the next part is left out (session 41: before,
    the selection and needle-choice losses targeted that one, the most
    recent, whose key is the part not yet written)."""
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    support = [i for i in (item.get("support") or []) if i < len(offs)]
    prompt = item["prompt"]
    parts = item.get("answers") or [item["answer"]]
    def spells(i, part):
        return part in prompt[offs[i]:offs[i] + lens[i]]
    out, a = [], 0
    for j, part in enumerate(parts):
        if j:
            a += 2                                          # ", "
        own = [i for i in support if spells(i, part)]
        if item.get("task") == "vartrack" and j + 1 < len(parts):
            own = [i for i in own if not spells(i, parts[j + 1])] or own
        out.append((a, part, own))
        a += len(part.encode())
    return out


def needle_targets(item, chunk, A, every_byte=False, r=0):
    """Needle-choice targets for --needle-loss: the first byte a of each
    answer part, with the chunk its retrieval should select (answer_targets)
    and the chunks of the other needles: every needle but the supporting
    ones (gen-task's "support") that spell this part, less any chunk those
    share.  So in multiquery and multivalue, part j contrasts its own
    needle with the other parts' needles too.  With every_byte, each byte
    of each part, with the chunk holding that byte (--needle-bytes all):
    a value spliced from two needles is a choice made mid-value.  Returns
    [(a, target chunk, negative chunks)], empty for an item with a single
    needle (passkey).  bAbI-style items: babi_needle_targets, whose targets
    depend on the retrieval r."""
    if item.get("task") == "babi":
        return babi_needle_targets(item, chunk, A, r, every_byte)
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    support = [i for i in (item.get("support") or []) if i < len(offs)]
    if not support or len(offs) < 2:
        return []
    def chunks(i):
        return span_chunks(offs[i], lens[i], chunk)
    tg = answer_targets(item, chunk, A)
    out = []
    for a0, part, own in answer_parts(item):
        own = own or support
        mine = set().union(*(chunks(i) for i in own))
        neg = set().union(*(chunks(i) for i in range(len(offs)) if i not in own)) - mine
        if not neg:
            continue
        span = range(a0, a0 + len(part.encode())) if every_byte else [a0]
        out += [(a, max(tg[a]), sorted(neg)) for a in span if a < A and tg[a]]
    return out


def needle_loss(scores, chunk, item, P, A, every_byte=False, r=0):
    """Cross-entropy of one retrieval's scores [L, G, C] at each answer
    part's first byte, or with every_byte at each of its bytes (position
    P - 1 + a), over {its target chunk} and the unsupporting needles'
    chunks (needle_targets), averaged over those
    positions and the groups.  Chunks not yet eligible there are left out;
    None when nothing is left to choose from.  Unlike the stick-breaking
    selection loss, which pushes down only the chunks more recent than the
    target, this contrasts the asked needle with every other needle: the
    choice that multikey and multiquery need."""
    parts = []
    for a, target, neg in needle_targets(item, chunk, A, every_byte, r):
        s = scores[P - 1 + a]                                  # [G, C]
        if target >= s.shape[-1]:
            continue
        sc = s[:, [target] + [n for n in neg if n < s.shape[-1]]]
        ok = sc > -1e30
        if not bool(ok[:, 0].all()) or int(ok[:, 1:].sum()) == 0:
            continue
        sc = sc.masked_fill(~ok, -1e30)
        parts.append(-F.log_softmax(sc, dim=-1)[:, 0].mean())
    return sum(parts) / len(parts) if parts else None


KEY_BUCKETS = 64          # --key-loss: each key word hashes to one of these classes


def key_class(word):
    """A key word's class for --key-loss: crc32 % KEY_BUCKETS."""
    return zlib.crc32(word.encode()) % KEY_BUCKETS


def key_targets(item, A, r=0, every_byte=False, place_key=False):
    """Key-loss targets of an item whose needles name hyphenated keys
    before their values (multikey, multiquery, multivalue; not
    value_first ones): ([(value offset, (w1, w2))] for every needle,
    [(answer byte a, (w1, w2))] for the first byte of each answer part),
    the words as classes (crc32 % KEY_BUCKETS).  An item's needles share
    one wording, so each needle's value lies as far after its key as the
    supporting needle's answer does after its own.  ([], []) when the item
    has no such keys.  With every_byte (--key-bytes all) the asked key is
    the target at every byte of its part, not only the first: a query that
    forgets mid-value which key it copies switches to another needle
    (multiquery's wrong answers).  babi items: babi_key_targets, which
    depend on the retrieval r (and place_key, --babi-place-key)."""
    if item.get("task") == "babi":
        return babi_key_targets(item, A, r, every_byte, place_key)
    if item.get("task") == "vartrack":
        return vartrack_key_targets(item, A, every_byte)
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    support = [i for i in (item.get("support") or []) if i < len(offs)]
    if not support or value_first(item):
        return [], []
    prompt = item["prompt"]
    keys = []
    for off, n in zip(offs, lens):
        k = re.search(KEY_RE, prompt[off:off + n])
        keys.append(k)
    if any(k is None for k in keys):
        return [], []
    def cls(k):
        return tuple(key_class(w) for w in k.group(0).split("-")[:2])
    parts = answer_parts(item)
    i0 = support[0]
    needle0 = prompt[offs[i0]:offs[i0] + lens[i0]]
    found = [at for at in (needle0.find(p, keys[i0].end()) for _, p, _ in parts) if at >= 0]
    if not found:
        return [], []
    rel = found[0] - keys[i0].end()
    values = [(off + k.end() + rel, cls(k)) for off, n, k in zip(offs, lens, keys)
              if k.end() + rel < n]
    asked = [(b, cls(keys[own[0]])) for a, part, own in parts if own
             for b in (range(a, a + len(part.encode())) if every_byte else [a]) if b < A]
    return values, asked


VAR_RE = r"\b[A-Z]{5}\b"    # vartrack's variable names (gen-task: five capitals)


def vartrack_key_class(key):
    """A vartrack key's two classes for --key-loss: its first and last
    bytes (modulo KEY_BUCKETS)."""
    b = key.encode()
    return (b[0] % KEY_BUCKETS, b[-1] % KEY_BUCKETS)


def vartrack_assignments(item):
    """A vartrack item's assignments whose key is known, in prompt order:
    (needle offset, key, the key's offset in the needle, the match of the
    name it assigns or None).  The key is what the needle copies: a name
    seen in an earlier needle, else the asked value (gen-task's "value");
    the distractor chains' first needles, whose values the item does not
    report, are left out."""
    offs, lens = item.get("needle_offsets", []), item.get("needle_lengths", [])
    value, prompt = item.get("value"), item["prompt"]
    if not value:
        return
    seen = set()
    for off, n in zip(offs, lens):
        needle = prompt[off:off + n]
        names = list(re.finditer(VAR_RE, needle))
        old = [m for m in names if m.group(0) in seen]
        new = [m for m in names if m.group(0) not in seen]
        seen.update(m.group(0) for m in names)
        if old:
            yield off, old[0].group(0), old[0].start(), (new or [None])[0]
        elif value in needle:
            yield off, value, needle.find(value), (new or [None])[0]


def vartrack_key_targets(item, A, every_byte=False):
    """Key-loss targets of a vartrack item (key_targets' form): each
    assignment's key is what it copies, the asked value (gen-task's
    "value") for the asked chain's first or the name assigned before
    (a name seen in an earlier needle); its landmark is the chunk holding
    the key's last byte or the assigned name's first, the later
    (answer_targets' target for the name's first byte).  The distractor
    chains' first needles, whose values the item does not report, are
    left out.  Answer part j asks for the value (j = 0) or part j - 1.
    The classes: the key's first and last characters (vartrack_key_class;
    session 42's first form, two hashes of the whole key, sat at chance,
    ln 64 a class, for 630 steps of vartrack alone: a hash of a random
    name or number is no function a network can learn, where a word from
    a list, multikey's keys, can be memorized)."""
    value = item.get("value")
    if not value or not item.get("needle_offsets"):
        return [], []
    cls = vartrack_key_class
    values = [(off + max([at + len(key) - 1] + ([name.start()] if name else [])), cls(key))
              for off, key, at, name in vartrack_assignments(item)]
    parts = answer_parts(item)
    asked = [(b, cls(value if j == 0 else parts[j - 1][1]))
             for j, (a, part, _) in enumerate(parts)
             for b in (range(a, a + len(part.encode())) if every_byte else [a]) if b < A]
    return values, asked


def vartrack_carry_targets(item):
    """--carry-loss targets of a vartrack item: for each assignment whose
    needle names the variable before the key it copies ("VAR X = V.",
    "Make X equal to Y."), the offsets of as many of the key's last bytes
    as the name has letters (five), each with the name's letter in the
    same place (class 0..25): the key's last byte carries the name's last
    letter, the byte before it the letter before, and so on (session 43's
    first form asked the last byte for all five letters and stayed at
    chance, ln 26 a letter, for 550 steps).  The keys are
    vartrack_assignments'; a key's end lies in the chunk the answer's
    retrieval targets (answer_targets).  Empty for other tasks and for
    key-first wordings, where the name itself lies in or after the key's
    chunk."""
    if item.get("task") != "vartrack":
        return []
    out = []
    for off, key, at, name in vartrack_assignments(item):
        if name is not None and name.start() < at:
            end = off + at + len(key) - 1       # the key's last byte in the prompt
            out += [(end - len(name.group(0)) + 1 + k, ord(c) - ord("A"))
                    for k, c in enumerate(name.group(0))]
    return out


def carry_loss(head, tap, item):
    """Cross-entropy of --carry-loss's head: each vartrack_carry_targets
    letter from the memory's value at its byte of the key (the first
    chunk_attention's values; bytes in the last, partial chunk have none).
    None for items without targets."""
    if head is None or not tap.values:
        return None
    V = tap.values[0]
    C, S = V.shape[0], V.shape[1]
    got = [(V[o // S, o % S].reshape(-1), y) for o, y in vartrack_carry_targets(item)
           if o // S < C]
    if not got:
        return None
    logits = head(torch.stack([x for x, _ in got]))
    return F.cross_entropy(logits, torch.tensor([y for _, y in got]))


NAME_RE = r"[A-Z][a-z]+"     # babi's facts start with a person's name
BABI_OBJECTS = {"football", "milk", "umbrella", "backpack", "notebook", "guitar",
                "basket", "helmet"}   # cli/tasks.c's babi_objects: what a pick-up fact takes


def babi_key_targets(item, A, r=0, every_byte=False, place_key=False):
    """key_targets for a bAbI-style item: a fact's value offset is the
    word after its last "the" (the place, or the object taken: "Fred took
    the guitar along."); its key is the person who moves (both classes
    that name's) or, for a pick-up fact, the person and the object (the
    first class the person's, the second the object's), at every
    retrieval and whatever the question: a landmark is made before the
    question is read, so it must carry both.  The asked key, at the
    answer's first byte, is the person the question names ("Where is
    Mary?", "Where was Mary before the kitchen?"); a question about an
    object names no one: it is two hops (babi_story), so at the first
    retrieval (r = 0) the query asks for the object, and at the later ones
    for the one who picked it up.  ([], []) when a fact does not start
    with a name.  With every_byte, the asked key at every byte of the
    answer.  With place_key (--babi-place-key) a move fact's second class
    is its place's ("Mary went to the garden.": Mary, garden), as a
    pick-up fact's is its object's: the landmark then says where the move
    goes, which a "before" question's query needs to score the move to the
    place it names below the person's earlier moves; and the query of a
    "before" question is asked for that place as its second word, so that
    it carries it (the needle-choice and selection losses then give it
    the sign: the move to the place is their negative)."""
    facts = babi_facts(item)
    if facts is None:
        return [], []
    values = [(at, (key_class(who), key_class(thing) if thing in BABI_OBJECTS or place_key
                    else key_class(who)))
              for _, _, who, at, thing in facts]
    names = {who for _, _, who, _, _ in facts}
    prompt = item["prompt"]
    question = prompt[prompt.rfind("\n") + 1:]
    asked = [w for w in re.findall(NAME_RE, question) if w in names]
    span = range(A) if every_byte else range(min(A, 1))
    if asked and A > 0:
        c = c2 = key_class(asked[0])
        story = babi_story(item) if place_key else None
        if story is not None and story[1] == "before":     # the place it names
            c2 = key_class(story[0][named_move(item, story[0])][4])
        return values, [(b, (c, c2)) for b in span]
    story = babi_story(item) if A > 0 else None
    if story is not None and story[1] == "object":
        facts, _, hop = story
        if r == 0:                  # the first hop looks the object up
            c = key_class(facts[hop][4])
        else:                       # the later ones the one who holds it
            c = key_class(facts[hop][2])
        return values, [(b, (c, c)) for b in span]
    return values, []


def babi_facts(item):
    """A bAbI-style item's facts read back from its prompt: a list of
    (offset, length, person, thing offset, thing) in time order, the thing
    the word after the fact's last "the" (a place, or the object picked
    up); None when a fact does not start with a name or has no "the
    WORD"."""
    prompt = item["prompt"]
    facts = []
    for off, n in zip(item.get("needle_offsets", []), item.get("needle_lengths", [])):
        fact = prompt[off:off + n]
        who = re.match(NAME_RE, fact)
        things = list(re.finditer(r"\bthe ([a-z]+)", fact))
        if who is None or not things:
            return None
        facts.append((off, n, who.group(0), off + things[-1].start(1), things[-1].group(1)))
    return facts


def babi_story(item):
    """A bAbI-style item read back from its prompt: (facts, kind, hop),
    facts as babi_facts gives them, kind "now" (where a person is: their last
    move), "before" (where a person was before a place: the move before
    their move there) or "object" (where an object is: who picked it up,
    then that one's last move), and hop the index of the fact that a first
    retrieval has to find (the pick-up of the asked object; None unless
    kind is "object").  None when babi_facts cannot read the facts, or the
    question fits none of the kinds."""
    facts = babi_facts(item)
    if facts is None:
        return None
    support = [i for i in (item.get("support") or []) if i < len(facts)]
    prompt = item["prompt"]
    question = prompt[prompt.rfind("\n") + 1:]
    names = {f[2] for f in facts}
    if not support:
        return None
    if any(w in names for w in re.findall(NAME_RE, question)):
        return facts, ("before" if len(support) > 1 else "now"), None
    objs = re.findall(r"\bthe ([a-z]+)", question)
    hop = [i for i in support if facts[i][4] in objs]
    if len(support) != 2 or len(hop) != 1:
        return None
    return facts, "object", hop[0]


def named_move(item, facts):
    """The index into facts of an item's last supporting fact: for a
    "before" question, the move to the place the question names."""
    return max(i for i in item["support"] if i < len(facts))


def babi_needle_targets(item, chunk, A, r, every_byte=False):
    """needle_targets for a bAbI-style item, at retrieval r (0 the first in
    the forward pass).  The chunk to choose holds the answer's place in
    the fact that says it: the asked person's last move ("now"), their move
    before the named place ("before"), the holder's last move ("object");
    the chunks to choose it over are those of the other people's facts,
    and for "before" the move to the named place too.  The asked person's
    other moves are left out, on neither side: they carry the same key, and
    which of them is the last is stick-breaking's recency, not a score.
    For an object question the first retrieval (r = 0) is a hop of its
    own: it chooses the pick-up fact's chunk (the object's) over every
    other fact's, and the later ones then follow the holder.  Same form as
    needle_targets; [] when babi_story cannot read the item."""
    story = babi_story(item)
    if story is None:
        return []
    facts, kind, hop = story
    support = [i for i in item["support"] if i < len(facts)]
    def chunks(i):
        return fact_chunks(facts[i], chunk)
    answer = item.get("answer", "").encode()
    if kind == "object" and r == 0:
        target, at = hop, [facts[hop][3] // chunk] * len(answer)
        neg_facts = [i for i in range(len(facts)) if i != hop]
    else:
        said = [i for i in support if facts[i][4] == item.get("answer")]
        if not said:
            return []
        target = said[-1]
        off = facts[target][3]
        at = [(off + a) // chunk for a in range(len(answer))]
        who = facts[hop][2] if kind == "object" else facts[target][2]
        neg_facts = [i for i in range(len(facts)) if facts[i][2] != who]
        if kind == "before":
            neg_facts += [i for i in support if i != target]
    neutral = [i for i in range(len(facts)) if i != target and i not in neg_facts]
    neg = set().union(*(chunks(i) for i in neg_facts))
    neg -= chunks(target).union(*(chunks(i) for i in neutral))
    if not neg:
        return []
    span = range(len(answer)) if every_byte else [0]
    return [(a, at[a], sorted(neg)) for a in span if a < A]


class KeyHeads(torch.nn.Module):
    """--key-loss's linear heads, one pair per retrieval: from a landmark
    and from a query to 2 x KEY_BUCKETS logits (the key's two words); and
    --carry-loss's, from a memory value to 26 logits (a letter).
    They are training-only tensors: saved in OUT/aux.pt, never in the
    model's weights."""

    def __init__(self, widths, value_width=0):
        super().__init__()
        self.lmk = torch.nn.ModuleList(torch.nn.Linear(w, 2 * KEY_BUCKETS) for w, _ in widths)
        self.query = torch.nn.ModuleList(torch.nn.Linear(w, 2 * KEY_BUCKETS) for _, w in widths)
        self.carry = torch.nn.Linear(value_width, 26) if value_width else None


def key_loss(heads, tap, item, P, A, every_byte=False, place_key=False):
    """Cross-entropy of the key heads, averaged over the retrievals: each
    needle's key words from the landmark of the chunk holding its value
    (the chunk that the answer's retrieval should select), and each answer
    part's key words from the query at its first byte.  None for items
    without targets (key_targets; place_key: --babi-place-key)."""
    parts = []
    for r, ((q, lmk), (_, chunk)) in enumerate(zip(tap.inputs, tap.scores)):
        values, asked = key_targets(item, A, r, every_byte, place_key)
        seen = [(lmk[o // chunk].reshape(-1), y) for o, y in values if o // chunk < lmk.shape[0]]
        if seen:
            logits = heads.lmk[r](torch.stack([x for x, _ in seen])).view(-1, KEY_BUCKETS)
            parts.append(F.cross_entropy(logits, torch.tensor([y for _, y in seen]).view(-1)))
        if asked:
            qs = torch.stack([q[P - 1 + a].reshape(-1) for a, _ in asked])
            logits = heads.query[r](qs).view(-1, KEY_BUCKETS)
            parts.append(F.cross_entropy(logits, torch.tensor([y for _, y in asked]).view(-1)))
    return sum(parts) / len(parts) if parts else None


def span_chunks(off, n, chunk):
    """The chunks that n bytes from offset off overlap (the chunk of off
    when n is 0)."""
    return set(range(off // chunk, (off + max(1, n) - 1) // chunk + 1))


def needle_chunks(item, chunk):
    """The chunks holding any byte of any of an item's needles."""
    out = set()
    for o, n in zip(item.get("needle_offsets", []), item.get("needle_lengths", [])):
        if n > 0:
            out |= span_chunks(o, n, chunk)
    return out


def retrieval_loss(scores, chunk, item, P, A, r=0, margin=0.0, filler_only=False):
    """Auxiliary selection loss for one retrieval at the answer's
    positions: byte a is predicted at position t = P - 1 + a, and
    answer_targets names the chunks it should read (targets_loss).  (A more
    recent chunk that holds other answer bytes is pushed down too:
    stick-breaking would give it the weight, and byte a is not in it.)  At
    a babi object question's first retrieval (r = 0) the target is the
    pick-up fact's object instead (babi_story: the first hop).  margin:
    targets_loss's (--retrieval-margin); filler_only (--margin-on filler)
    spares the chunks of every needle from it."""
    targets = answer_targets(item, chunk, A)
    if item.get("task") == "babi" and r == 0:
        story = babi_story(item)
        if story is not None and story[1] == "object":   # the first hop
            targets = [{story[0][story[2]][3] // chunk}] * A
    spared = needle_chunks(item, chunk) if filler_only and margin else ()
    return targets_loss(scores, list(range(P - 1, P - 1 + A)), targets, margin, spared)


def babi_before(item):
    """A babi "where was X before P" item read back: (facts, the answer's
    fact, the move to P), indices into facts as babi_facts gives them; None
    for any other item, or when no supporting fact names the answer."""
    story = babi_story(item) if item.get("task") == "babi" else None
    if story is None or story[1] != "before":
        return None
    facts = story[0]
    said = [i for i in item["support"] if i < len(facts) and facts[i][4] == item.get("answer")]
    if not said:
        return None
    return facts, max(said), named_move(item, facts)


def fact_chunks(fact, chunk):
    """The chunks a fact (babi_facts' tuple) overlaps."""
    return span_chunks(fact[0], fact[1], chunk)


def before_pair_loss(scores, chunk, item, P, A):
    """--before-loss: for a babi "where was X before P" item, minus the
    log-sigmoid of the score margin between the chunk holding each answer
    byte in the answer's fact and the highest-scored chunk of the move to
    P (less the answer fact's chunks), at each answer byte (position
    P - 1 + a of one retrieval's scores [L, G, C]), averaged over the bytes
    and groups where both are eligible.  The move to P is the person's
    move right after the answer's, so stick-breaking, most recent first,
    gives it the weight unless its score is the lower; the needle-choice
    loss contrasts the answer with every other fact at once, most of them
    already low.  None for any other item, or where nothing is
    eligible."""
    found = babi_before(item)
    if found is None or found[1] == found[2]:
        return None
    facts, target, moved = found
    C = scores.shape[-1]
    neg = sorted(n for n in fact_chunks(facts[moved], chunk) - fact_chunks(facts[target], chunk)
                 if n < C)
    if not neg:
        return None
    off, parts = facts[target][3], []
    for a in range(min(A, len(item["answer"].encode()))):
        t = (off + a) // chunk
        if t >= C:
            continue
        row = scores[P - 1 + a]                                # [G, C]
        st, sn = row[:, t], row[:, neg].max(-1).values
        ok = (st > -1e30) & (sn > -1e30)
        if bool(ok.any()):
            parts.append(-F.logsigmoid((st - sn)[ok]).mean())
    return sum(parts) / len(parts) if parts else None


def answer_distractors(item):
    """Wrong answers within the model's reach: for a babi "before"
    question ("Where was Mary before the garden?"), the place the question
    names, a few bytes back in the window (the move there is the one after
    the answer's).  [] for every other item."""
    story = babi_story(item) if item.get("task") == "babi" else None
    if story is None or story[1] != "before":
        return []
    facts = story[0]
    place = facts[named_move(item, facts)][4]
    prompt = item["prompt"]
    if place == item.get("answer") or place not in prompt[prompt.rfind("\n") + 1:]:
        return []
    return [place]


def distractor_loss(ans_logits, item):
    """Unlikelihood (-log(1 - p)) of each answer_distractors word at the
    first answer byte where it parts from the answer (teacher-forced: the
    bytes before are the answer's, which it shares).  None when the item
    has none."""
    answer = item["answer"].encode()
    parts = []
    for word in answer_distractors(item):
        w = word.encode()
        k = next((i for i in range(min(len(w), len(answer))) if w[i] != answer[i]), None)
        if k is None or k >= ans_logits.shape[0]:
            continue
        p = F.softmax(ans_logits[k], dim=-1)[w[k]]
        parts.append(-torch.log1p(-p.clamp(max=1 - 1e-6)))
    return sum(parts) / len(parts) if parts else None


def item_loss(model, item, lm_weight, ret_weight=0.0, tap=None, copy_weight=0.0,
              needle_weight=0.0, key_weight=0.0, heads=None, ans_weight=1.0,
              needle_every_byte=False, key_every_byte=False, distractor_weight=0.0,
              ret_margin=0.0, place_key=False, before_weight=0.0, margin_filler=False,
              carry_weight=0.0, part_start_weight=1.0):
    toks, P, A = encode(item)
    if tap is not None:
        tap.scores, tap.inputs, tap.values = [], [], []
    logits = model(toks[:-1])                                  # predicts toks[1:]
    tgt = toks[1:]
    ans_logits = logits[P - 1:P - 1 + A]
    ce = F.cross_entropy(ans_logits, tgt[P - 1:P - 1 + A], reduction="none")
    ans_loss = ce.mean()
    ans_train = ans_loss            # what the gradient sees (--part-start-weight)
    if part_start_weight != 1.0:
        w = torch.tensor(part_start_weights(item["answer"].encode(), part_start_weight))
        ans_train = (w * ce).sum() / w.sum()
    correct = bool((ans_logits.argmax(-1) == tgt[P - 1:P - 1 + A]).all())
    lm_loss = F.cross_entropy(logits[:P - 1], tgt[:P - 1]) if lm_weight > 0 else ans_loss * 0
    def mean_of(parts):                 # over the retrievals that had a target
        parts = [x for x in parts if x is not None]
        return sum(parts) / len(parts) if parts else ans_loss * 0
    ret_loss = copy_loss = ndl_loss = key = ans_loss * 0
    if ret_weight > 0 and tap is not None:
        ret_loss = mean_of(retrieval_loss(sc, ch, item, P, A, r, ret_margin, margin_filler)
                           for r, (sc, ch) in enumerate(tap.scores))
    if copy_weight > 0 and tap is not None:
        prompt, found = item["prompt"].encode(), {}
        for ch in {ch for _, ch in tap.scores}:         # a memory's chunk size
            found[ch] = copy_targets(prompt, ch)
        copy_loss = mean_of(targets_loss(sc, *found[ch]) for sc, ch in tap.scores)
    if needle_weight > 0 and tap is not None:
        ndl_loss = mean_of(needle_loss(sc, ch, item, P, A, needle_every_byte, r)
                           for r, (sc, ch) in enumerate(tap.scores))
    if key_weight > 0 and tap is not None and heads is not None:
        key = mean_of([key_loss(heads, tap, item, P, A, key_every_byte, place_key)])
    dis = mean_of([distractor_loss(ans_logits, item)]) if distractor_weight > 0 else ans_loss * 0
    bef = ans_loss * 0
    if before_weight > 0 and tap is not None:
        bef = mean_of(before_pair_loss(sc, ch, item, P, A) for sc, ch in tap.scores)
    carry = ans_loss * 0
    if carry_weight > 0 and tap is not None and heads is not None:
        carry = mean_of([carry_loss(heads.carry, tap, item)])
    return (ans_weight * ans_train + lm_weight * lm_loss + ret_weight * ret_loss
            + copy_weight * copy_loss + needle_weight * ndl_loss + key_weight * key
            + distractor_weight * dis + before_weight * bef + carry_weight * carry,
            ans_loss, lm_loss, correct, ret_loss, copy_loss, ndl_loss, key, bef, carry)


# ---- checkpoints -------------------------------------------------------------

def atomic_write(path, write):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


class WeightAverage:
    """An exponential moving average of a model's parameters (--ema D):
    after each optimizer step, avg = D * avg + (1 - D) * param.  Starts
    from the parameters as they are (or from a saved average).  save()
    and load() go through the model's own weight names, by swapping the
    average into the parameters for the moment of the write or read."""

    def __init__(self, model, decay):
        if not 0.0 < decay < 1.0:
            raise ValueError("--ema must be between 0 and 1 (got %g)" % decay)
        self.model, self.decay = model, decay
        self.params = [p for p in model.parameters()]
        self.avg = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self):
        for a, p in zip(self.avg, self.params):
            a.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

    @torch.no_grad()
    def _swapped(self, fn):
        keep = [p.detach().clone() for p in self.params]
        for a, p in zip(self.avg, self.params):
            p.copy_(a)
        try:
            return fn()
        finally:
            for k, p in zip(keep, self.params):
                p.copy_(k)

    def save(self, path):
        self._swapped(lambda: self.model.save_weights(path))

    @torch.no_grad()
    def load(self, path):
        def read():
            self.model.load_weights(path)
            for a, p in zip(self.avg, self.params):
                a.copy_(p)
        self._swapped(read)


def freeze_params(model, spec):
    """--freeze: the parameters named by the comma-separated names of spec
    (a parameter's full name, or its last parts after a '.': score_offset
    names every retrieval's offset) get no gradient, so AdamW leaves them
    as they are while it keeps them in its groups (a saved optimizer state
    still fits).  A name that matches no parameter is an error.  Returns the
    frozen parameters' names."""
    names = []
    params = list(model.named_parameters())
    for want in [x.strip() for x in (spec or "").split(",") if x.strip()]:
        hit = [n for n, _ in params if n == want or n.endswith("." + want)]
        if not hit:
            raise SystemExit("train.py: --freeze: no parameter of this model is named '%s' "
                             "(or ends with '.%s')" % (want, want))
        names += [n for n in hit if n not in names]
    for n, prm in params:
        if n in names:
            prm.requires_grad_(False)
    return names


def save_checkpoint(out, model, opt, state, plot, heads=None, ema=None):
    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, "weights.safetensors"), lambda p: model.save_weights(p))
    if ema is not None:
        atomic_write(os.path.join(out, "weights_ema.safetensors"), ema.save)
    if heads is not None:
        atomic_write(os.path.join(out, "aux.pt"), lambda p: torch.save(heads.state_dict(), p))
    atomic_write(os.path.join(out, "optim.pt"), lambda p: torch.save(opt.state_dict(), p))
    state = dict(state, weights="weights.safetensors", optimizer="optim.pt",
                 saved=time.strftime("%Y-%m-%d %H:%M:%S"))
    if ema is not None:
        state["ema_weights"] = "weights_ema.safetensors"

    def wj(p):
        with open(p, "w") as f:
            json.dump(state, f, indent=1)
            f.write("\n")
    atomic_write(os.path.join(out, "state.json"), wj)
    if plot:
        try:
            plot_log(out)
        except Exception as e:  # a plot must never stop training
            print("train.py: plot failed: %s" % e, file=sys.stderr)


def plot_log(out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    if not rows:
        return
    st = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    ax[0].plot(st, [float(r["answer_loss"]) for r in rows], label="answer loss")
    ax[0].plot(st, [float(r["lm_loss"]) for r in rows], label="LM loss (prompt)", alpha=0.7)
    for col, label in (("retrieval_loss", "retrieval loss (aux)"), ("copy_loss", "copy loss (aux)"),
                       ("needle_loss", "needle-choice loss (aux)"),
                       ("key_loss", "key loss (aux, nats per word)")):
        pts = [(int(r["step"]), float(r[col])) for r in rows if r.get(col) and float(r[col]) > 0]
        if pts:
            ax[0].plot([a for a, _ in pts], [b for _, b in pts], label=label, alpha=0.7)
    ax[0].axhline(math.log(10), color="gray", ls=":", lw=1, label="ln 10 (guessing digits)")
    ax[0].set_ylabel("cross-entropy (nats)")
    ax[0].set_yscale("log")
    ax[0].legend()
    ax[1].plot(st, [float(r["acc"]) for r in rows], label="answer exact (teacher-forced)")
    ax[1].set_ylabel("accuracy")
    ax[1].set_xlabel("step")
    ax[1].set_ylim(-0.02, 1.02)
    prev = None
    for r in rows:
        key = (r["length"], r["topk"])
        if key != prev:
            for a in ax:
                a.axvline(int(r["step"]), color="red", lw=0.6, alpha=0.5)
            ax[1].text(int(r["step"]), 0.02, " L=%s K=%s" % key, fontsize=7, rotation=90)
            prev = key
    ev_path = os.path.join(out, "eval.csv")
    if os.path.exists(ev_path):
        ev = [r.split(",") for r in open(ev_path).read().split() if r.count(",") == 3]
        if ev:
            ax[1].plot([int(e[0]) for e in ev], [float(e[3]) for e in ev], "o", ms=3,
                       label="held-out, teacher-forced, at %s tokens, top-%s"
                       % (ev[-1][1], ev[-1][2]))
    ax[1].legend()
    fig.suptitle(os.path.basename(os.path.normpath(out)))
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=100)
    plt.close(fig)


class Progress:
    def __init__(self, total, initial, disable):
        self.bar = None
        self.disable = disable
        if disable:
            return
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total or None, initial=initial, dynamic_ncols=True,
                            unit="step", file=sys.stderr)
        except ImportError:
            self.bar = None
        self.step = initial
        self.total = total
        self.text = ""

    def update(self, text):
        if self.disable:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text, refresh=False)
            return
        self.step += 1
        if self.step % 5 == 0:
            sys.stderr.write("\rstep %d%s %s   " % (
                self.step, "/%d" % self.total if self.total else "", text))
            sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif not self.disable:
            sys.stderr.write("\n")


# ---- main --------------------------------------------------------------------

def main():
    parser = build_parser()
    args = parser.parse_args()
    if args.plot_only:
        plot_log(args.plot_only)
        print(os.path.join(args.plot_only, "loss.png"))
        return
    state = {}
    if args.resume:
        state_path = os.path.join(args.resume, "state.json")
        try:
            with open(state_path) as f:
                state = json.load(f)
        except OSError as e:
            parser.error("--resume %s: cannot read its state.json (%s); a run directory "
                         "holds the state.json that train.py writes" % (args.resume, e.strerror))
        except ValueError as e:
            parser.error("--resume %s: state.json is not valid JSON (%s)" % (args.resume, e))
        missing = [k for k in ("args", "step", "stage", "stage_start", "items")
                   if not isinstance(state, dict) or k not in state]
        if missing:
            parser.error("--resume %s: state.json lacks %s" % (args.resume, ", ".join(missing)))
        saved = argparse.Namespace(**state["args"])
        for k in ("resume", "plot_only", "out"):
            if hasattr(saved, k):
                delattr(saved, k)
        args = parser.parse_args(namespace=saved)   # command-line flags override
        if not args.model:                          # argparse resets an absent positional
            args.model = state["args"]["model"]
        args.out = args.resume
    if not args.model or not args.out:
        parser.error("give MODEL and --out (or --resume DIR)")
    if args.grow and not args.init:
        parser.error("--grow needs --init WEIGHTS (the smaller model's weights)")
    if not args.part_start_weight > 0:
        parser.error("--part-start-weight W needs W > 0 (1: every answer byte alike; got %g)"
                     % args.part_start_weight)
    if not 0.0 <= args.ema < 1.0:
        parser.error("--ema D needs 0 <= D < 1 (0: off; got %g)" % args.ema)
    if os.environ.get("OPENBLAS_CORETYPE") is None:
        print("train.py: hint: export OPENBLAS_CORETYPE=SkylakeX (with AVX-512) or Haswell "
              "(AVX2 only) for OpenBLAS's best kernels",
              file=sys.stderr)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    hsac = find_hsac(args.hsac)
    os.makedirs(args.out, exist_ok=True)
    export = os.path.join(args.out, "model.json")
    subprocess.run([hsac, "export", "--json", args.model, "-o", export], check=True)
    model = HsacModel(export, seed=args.seed)
    model.check_shapes = False              # top-k K is overridden per stage
    tops = model.retrievals()
    model_k = [int(n.attrs["k"]) for n in tops]
    chunk_size = min([int(n.attrs["chunk"]) for n in model.nodes
                      if n.op == "landmark_scores"] or [16])
    nparams = sum(p.numel() for p in model.parameters())

    frozen = freeze_params(model, args.freeze)
    if frozen:
        print("train.py: --freeze holds fixed: %s" % ", ".join(frozen), file=sys.stderr)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and name != "embed.weight" else no_decay).append(p)
    heads = None
    aux_path = os.path.join(args.out, "aux.pt")
    resume_aux = args.resume and os.path.exists(aux_path)
    if args.key_loss > 0 or args.carry_loss > 0 or resume_aux:
        # the heads' widths: one short forward pass shows each retrieval's
        # query and landmark shapes
        probe = ScoreTap(model)
        with torch.no_grad():
            model(torch.zeros(3 * chunk_size, dtype=torch.long))
        model.post_op_hook = None
        if not probe.inputs:
            raise SystemExit("train.py: --key-loss and --carry-loss need a model with a "
                             "retrieval")
        if args.carry_loss > 0 and not probe.values:
            raise SystemExit("train.py: --carry-loss needs a model whose sparse attention "
                             "reads a chunk memory")
        vw = probe.values[0][0, 0].numel() if probe.values else 0
        heads = KeyHeads([(lmk[0].numel(), q[0].numel()) for q, lmk in probe.inputs],
                         vw if args.carry_loss > 0 else 0)
        if resume_aux:
            saved = torch.load(aux_path)
            if heads.carry is None:             # a run without the carry head now
                saved = {k: v for k, v in saved.items() if not k.startswith("carry.")}
            elif not any(k.startswith("carry.") for k in saved):
                saved.update({k: v for k, v in heads.state_dict().items()
                              if k.startswith("carry.")})     # a new head: fresh
            heads.load_state_dict(saved)
        no_decay += list(heads.parameters())
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    stages = parse_stages(args.stages)
    step = stage = stage_start = 0
    consumed = 0
    elapsed_total = 0.0
    warm_from = 0       # the step the lr warms up from: 0, or a resume with fresh AdamW
    if args.resume:
        model.load_weights(os.path.join(args.out, state.get("weights", "weights.safetensors")))
        opt_path = os.path.join(args.out, state.get("optimizer", "optim.pt"))
        if os.path.exists(opt_path):
            try:
                opt.load_state_dict(torch.load(opt_path))
            except ValueError as e:         # the parameters changed (key heads added)
                print("train.py: %s does not fit this run's parameters (%s); AdamW starts "
                      "afresh" % (opt_path, e), file=sys.stderr)
        else:
            # the shipped runs keep no optimizer state in git (the
            # repository's rule): AdamW's moments start again from zero
            print("train.py: %s has no optimizer state (%s); AdamW starts afresh"
                  % (args.out, os.path.basename(opt_path)), file=sys.stderr)
        step, stage, stage_start = state["step"], state["stage"], state["stage_start"]
        consumed, elapsed_total = state["items"], state.get("elapsed_s", 0.0)
        if not opt.state:
            # AdamW's first steps move every parameter by about lr whatever
            # its gradient's size; on trained weights that is a jolt, so the
            # lr warms up again over --warmup steps from here
            warm_from = step
            print("train.py: the lr warms up again over %d steps from step %d"
                  % (args.warmup, step), file=sys.stderr)
        print("train.py: resumed %s at step %d, stage %d %s" % (args.out, step, stage,
                                                               stages[stage]), file=sys.stderr)
    elif args.init and args.grow:
        new = model.grow_from(args.init)
        print("train.py: grown from %s; %d new tensors (output projections zeroed): %s"
              % (args.init, len(new), " ".join(new) or "none"), file=sys.stderr)
    elif args.init:
        model.load_weights(args.init)
    stage = min(stage, len(stages) - 1)
    ema = None
    if args.ema:
        ema = WeightAverage(model, args.ema)
        ema_path = os.path.join(args.out, state.get("ema_weights", "weights_ema.safetensors"))
        if args.resume and os.path.exists(ema_path):
            ema.load(ema_path)
        else:
            print("train.py: --ema %g: the average starts from the current weights" % args.ema,
                  file=sys.stderr)
    tasks = TASKS if args.tasks == "all" else parse_list(args.tasks, TASKS, "task")
    task_answer = parse_task_weights(args.task_answer_weight)
    fillers = parse_list(args.fillers, TRAIN_FILLERS, "filler style", HELD_OUT_FILLERS,
                         "evaluation measures generalization on it (docs/tasks.md)")
    needles = parse_list(args.needles, NEEDLES, "needle kind")
    babi_kinds = parse_list(args.babi_kinds, BABI_KINDS, "babi kind")
    if args.vartrack_count < 0:
        raise SystemExit("train.py: --vartrack-count must be 0 (gen-task's default) or "
                         "more, not %d" % args.vartrack_count)
    if args.phrasing not in TRAIN_PHRASINGS:        # a resumed state.json skips choices
        raise SystemExit("train.py: phrasing '%s' is held out: evaluation measures "
                         "generalization on it" % args.phrasing)
    data = TaskData(hsac, args.data_seed, consumed, tasks, fillers, needles, args.phrasing,
                    args.key_first, babi_kinds, args.vartrack_order, args.vartrack_count)
    rng = random.Random(args.seed * 1000003 + step)
    gen = torch.Generator().manual_seed(args.seed * 7919 + step)
    log_path = os.path.join(args.out, "log.csv")
    new_log = not os.path.exists(log_path) or not args.resume
    if not new_log:                                 # an older log: add the new columns
        with open(log_path, newline="") as f:
            header = next(csv.reader(f), [])
        if header and set(header) != set(LOG_FIELDS):
            with open(log_path, newline="") as f:
                old_rows = list(csv.DictReader(f))
            with open(log_path + ".tmp", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=LOG_FIELDS, restval="")
                w.writeheader()
                for r in old_rows:
                    w.writerow({k: r.get(k, "") for k in LOG_FIELDS})
            os.replace(log_path + ".tmp", log_path)
    logf = open(log_path, "w" if new_log else "a", newline="")
    logw = csv.DictWriter(logf, fieldnames=LOG_FIELDS)
    if new_log:
        logw.writeheader()
    print("train.py: %s, %d parameters, retrieval top-k %s; stages %s; out %s"
          % (args.model, nparams, model_k, stages, args.out), file=sys.stderr)

    stop = {"flag": False}

    def on_signal(sig, frame):
        stop["flag"] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def snapshot():
        return {"model": args.model, "step": step, "stage": stage, "stage_start": stage_start,
                "stage_length_topk": list(stages[stage]), "items": data.consumed,
                "elapsed_s": round(elapsed_total, 1), "params": nparams,
                "args": {k: v for k, v in vars(args).items()
                         if k not in ("resume", "plot_only")}}

    def lr_at(s):
        lr = args.lr
        if args.decay_steps and stage == len(stages) - 1:
            t = min(1.0, (s - stage_start) / args.decay_steps)
            lr = args.min_lr + (args.lr - args.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        return lr * min(1.0, (s - warm_from + 1) / max(1, args.warmup))

    recent = []                                     # correctness of recent sequences
    def fresh_sums():
        return {"loss": 0.0, "ans": 0.0, "lm": 0.0, "ret": 0.0, "copy": 0.0, "needle": 0.0, "key": 0.0, "before": 0.0, "carry": 0.0, "ok": 0, "n": 0, "by": {}}
    acc_sum = fresh_sums()
    t_run0 = time.time()
    t_start = t_run0        # --hours counts from here (t_run0 restarts at each checkpoint)
    t_ckpt = time.time()
    t_log = time.time()
    steps_since_log = 0
    prog = Progress(args.steps, step, args.no_progress)
    tap = (ScoreTap(model) if args.retrieval_loss > 0 or args.copy_loss > 0 or
           args.needle_loss > 0 or args.key_loss > 0 or args.before_loss > 0 or
           args.carry_loss > 0 else None)
    model.train()
    try:
        while not stop["flag"]:
            if args.steps and step >= args.steps:
                break
            if args.hours and time.time() - t_start >= args.hours * 3600:
                break
            L, K = stages[stage]
            for n in tops:
                n.attrs["k"] = K
            model.set_gumbel_scale(args.gumbel, gen, args.gumbel_weights)
            bsz = max(1, args.tokens_per_step // L)
            items = data.batch(bsz, L, rng, args.mix, args.min_length)
            lr = lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            for it in items:
                if args.sparsity:
                    k_it = min(K, max(1, (len(it["prompt"]) // chunk_size) // args.sparsity))
                    for n in tops:
                        n.attrs["k"] = k_it
                loss, al, ll, ok, rl, cl, nl, kl, bl, yl = item_loss(
                    model, it, args.lm_weight, args.retrieval_loss, tap, args.copy_loss,
                    args.needle_loss, args.key_loss, heads,
                    task_answer.get(it.get("task"), args.answer_weight),
                    args.needle_bytes == "all", args.key_bytes == "all", args.distractor_loss,
                    args.retrieval_margin, args.babi_place_key, args.before_loss,
                    args.margin_on == "filler", args.carry_loss, args.part_start_weight)
                (loss / bsz).backward()
                acc_sum["loss"] += loss.item()
                acc_sum["ans"] += al.item()
                acc_sum["lm"] += ll.item()
                acc_sum["ret"] += rl.item()
                acc_sum["copy"] += cl.item()
                acc_sum["needle"] += nl.item()
                acc_sum["key"] += kl.item()
                acc_sum["before"] += bl.item()
                acc_sum["carry"] += yl.item()
                acc_sum["ok"] += int(ok)
                acc_sum["n"] += 1
                bt = acc_sum["by"].setdefault(it.get("task", "passkey"), [0, 0, 0.0])
                bt[0] += int(ok)
                bt[1] += 1
                bt[2] += al.item()
                recent.append(ok)
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            if ema is not None:
                ema.update()
            step += 1
            steps_since_log += 1
            recent = recent[-args.advance_window:]
            racc = sum(recent) / max(1, len(recent))
            prog.update("L=%d K=%d loss=%.3f acc=%.2f" % (L, K, acc_sum["ans"] / acc_sum["n"],
                                                         racc))
            if step % args.log_every == 0:
                now = time.time()
                n = max(1, acc_sum["n"])
                off = [p.item() for nm, p in model.named_parameters()
                       if nm.endswith("score_offset")]
                logw.writerow({"step": step, "time_s": round(elapsed_total + now - t_run0, 1),
                               "stage": stage, "length": L, "topk": K,
                               "loss": "%.4f" % (acc_sum["loss"] / n),
                               "answer_loss": "%.4f" % (acc_sum["ans"] / n),
                               "lm_loss": "%.4f" % (acc_sum["lm"] / n),
                               "retrieval_loss": "%.4f" % (acc_sum["ret"] / n),
                               "copy_loss": "%.4f" % (acc_sum["copy"] / n),
                               "needle_loss": "%.4f" % (acc_sum["needle"] / n),
                               "key_loss": "%.4f" % (acc_sum["key"] / n),
                               "before_loss": "%.4f" % (acc_sum["before"] / n),
                               "carry_loss": "%.4f" % (acc_sum["carry"] / n),
                               "acc": "%.3f" % (acc_sum["ok"] / n),
                               "steps_per_s": "%.3f" % (steps_since_log / (now - t_log)),
                               "lr": "%.2e" % lr,
                               "score_offset": " ".join("%.3f" % o for o in off),
                               "acc_by_task": " ".join(
                                   "%s:%.2f" % (k, v[0] / v[1])
                                   for k, v in sorted(acc_sum["by"].items())),
                               "answer_loss_by_task": " ".join(
                                   "%s:%.3f" % (k, v[2] / v[1])
                                   for k, v in sorted(acc_sum["by"].items())),
                               "items": data.consumed})
                logf.flush()
                acc_sum = fresh_sums()
                t_log, steps_since_log = now, 0
            if args.eval_every and step % args.eval_every == 0:
                evaluate(model, data, stages[-1], args, tops, step)
            if (stage < len(stages) - 1 and step - stage_start >= args.stage_min_steps and
                    len(recent) >= args.advance_window and
                    (racc >= args.advance_acc or step - stage_start >= args.stage_max_steps)):
                print("\ntrain.py: step %d: stage %d %s done (recent acc %.3f)"
                      % (step, stage, stages[stage], racc), file=sys.stderr)
                stage += 1
                stage_start = step
                recent = []
            if time.time() - t_ckpt >= args.ckpt_minutes * 60:
                elapsed_total += time.time() - t_run0
                t_run0 = time.time()
                save_checkpoint(args.out, model, opt, snapshot(), args.plot, heads, ema)
                t_ckpt = time.time()
    finally:
        prog.close()
        elapsed_total += time.time() - t_run0
        for n, k in zip(tops, model_k):
            n.attrs["k"] = k
        save_checkpoint(args.out, model, opt, snapshot(), args.plot, heads, ema)
        logf.close()
        print("train.py: saved %s at step %d (stage %d %s)" % (args.out, step, stage,
                                                              stages[stage]), file=sys.stderr)


@torch.no_grad()
def evaluate(model, data, final, args, tops, step):
    """Teacher-forced exact-answer accuracy on held-out items (seeds
    data_seed - 100000 + i) at the last stage's length and top-k."""
    L, K = final
    saved = [int(n.attrs["k"]) for n in tops]
    for n in tops:
        n.attrs["k"] = K
    model.set_gumbel_scale(0.0)
    held = TaskData(data.hsac, args.data_seed - 100000, 0, data.tasks, data.fillers,
                    data.needles, data.phrasing)
    items = held.batch(args.eval_items, L, random.Random(12345), 0.0, L)
    ok = sum(int(item_loss(model, it, 0.0)[3]) for it in items)
    for n, k in zip(tops, saved):
        n.attrs["k"] = k
    with open(os.path.join(args.out, "eval.csv"), "a") as f:
        f.write("%d,%d,%d,%.3f\n" % (step, L, K, ok / len(items)))


if __name__ == "__main__":
    main()
