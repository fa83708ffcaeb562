"""checkpoint_items.py: what the checkpoint diagnostics share.

probe_retrieval.py and selection_reuse.py both run the PyTorch twin of a
training checkpoint (a directory with model.json and weights.safetensors,
as train.py writes it) on `hsac gen-task` items: the same arguments for
the checkpoint and the items, the same loading and the same call.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hsac_torch import HsacModel  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_item_args(p, length, items, seed):
    """The checkpoint and the gen-task items: CHECKPOINT, --length,
    --items, --seed, --task, --filler, --hsac (defaults as given)."""
    p.add_argument("checkpoint")
    p.add_argument("--length", default=length, help="prompt bytes (gen-task syntax: 8K)")
    p.add_argument("--items", type=int, default=items)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--task", default="passkey")
    p.add_argument("--filler", default="synthetic")
    p.add_argument("--hsac", default=os.path.join(REPO, "build", "hsac"))


def load_checkpoint(directory):
    """The twin of a checkpoint directory, its weights loaded, in eval mode."""
    m = HsacModel(os.path.join(directory, "model.json"))
    m.load_weights(os.path.join(directory, "weights.safetensors"))
    m.eval()
    return m


def gen_items(a, script, extra=()):
    """`hsac gen-task --format jsonl` for the items of add_item_args' a
    (plus extra arguments); exits naming script when gen-task fails."""
    cmd = [a.hsac, "gen-task", "--task", a.task, "--length", a.length, "--seed", str(a.seed),
           "--items", str(a.items), "--format", "jsonl", "--filler", a.filler] + list(extra)
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        sys.exit("%s: gen-task failed: %s" % (script, r.stderr.decode().strip()))
    return [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
