"""Prefill throughput of the project's PyTorch twin (tools/torch/hsac_torch).

    /usr/bin/python3 bench/torch_twin_prefill.py MODEL.hsa WEIGHTS.safetensors \
        --N 512 2048 --threads 2 [--hsac build/hsac] [--device cuda --dtype bf16]

The model comes from `hsac export --json MODEL.hsa` (run here into a
temporary file; a .json export is read as it is), the weights through the
twin's load_weights.  For each prompt length N: N random byte tokens
(torch.Generator seeded with --seed), one forward over the whole prompt
(the twin computes the logits of every position, like the reference's
one-shot prefill) under torch.inference_mode, best of --reps after a
warm-up at the same length (--reps 2 by default).  Prints
`twin MODEL N tokens/s` per length (and the time on stderr).

With --device cuda the weights and tokens live on the GPU and each timed
forward ends with torch.cuda.synchronize(); --dtype bf16 keeps the
weights (and so the activations) in bfloat16 (f32 matrix products stay
f32: TF32 is off, torch's default).

Runs with Debian's /usr/bin/python3 (torch 1.13, where the twin's tests
run) and with a newer torch (bench/torch_setup.sh's venv).

Cost of the twin's forward (tools/torch/hsac_torch/ops.py), all positions:
  - SWA (attention with a window W): blocks of W queries against 2W keys
    once N > 2W ([N/W, H, W, 2W] scores): O(N*W) work and memory;
  - retrieval: landmark scores [N, G, C] for C = N/S chunks and a full
    sort of them for top-k: O(N^2/S) work and N*C*(4 + 8) bytes;
  - HSA (chunk_attention, weighted): every chunk for every token (O(N^2))
    while N*C*S*Hq*d <= 2^29 (ops.DENSE_HSA_MAX), else gathered per slot,
    O(N*k*S*d) with [N, Hq, S, d] copies per slot.
So the twin is quadratic in N at long prompts (the retrieval scores).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

# OpenBLAS's own threads on top of torch's oversubscribe a small machine
# (tools/torch/train.py does the same); torch's --threads does the parallelism
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools", "torch"))
from hsac_torch import HsacModel  # noqa: E402


def export_json(model, hsac, tmpdir):
    if model.endswith(".json"):
        return model
    out = os.path.join(tmpdir, "model.json")
    r = subprocess.run([hsac, "export", "--json", model, "-o", out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        raise SystemExit("torch_twin_prefill: hsac export failed: %s" % r.stderr.strip())
    return out


def main():
    ap = argparse.ArgumentParser(description="prefill tokens/s of the PyTorch twin")
    ap.add_argument("model", help="MODEL.hsa (exported with --hsac) or an export .json")
    ap.add_argument("weights", help="safetensors weights with the model's hsac names")
    ap.add_argument("--N", type=int, nargs="+", default=[512, 2048], help="prompt lengths")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--reps", type=int, default=2, help="timed forwards per length (best taken)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random prompt bytes")
    ap.add_argument("--hsac", default=os.path.join(REPO, "build", "hsac"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="the weights' and activations' dtype")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    name = os.path.splitext(os.path.basename(args.model))[0]
    with tempfile.TemporaryDirectory() as tmp:
        m = HsacModel(export_json(args.model, args.hsac, tmp))
    m.load_weights(args.weights)
    dev = torch.device(args.device)
    m = m.to(device=dev, dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    m.eval()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    print("# torch %s, %d thread(s), model %s (%s), weights %s, %s %s"
          % (torch.__version__, torch.get_num_threads(), name, m.name, args.weights,
             dev, args.dtype), file=sys.stderr)
    for n in args.N:
        g = torch.Generator().manual_seed(args.seed)
        tokens = torch.randint(0, 256, (n,), generator=g, dtype=torch.long).to(dev)
        with torch.inference_mode():
            y = m(tokens)                                      # warm-up
            sync()
            if not torch.isfinite(y.float()).all():
                raise SystemExit("torch_twin_prefill: non-finite logits at N = %d" % n)
            best = float("inf")
            for _ in range(max(1, args.reps)):
                t0 = time.perf_counter()
                m(tokens)
                sync()
                best = min(best, time.perf_counter() - t0)
        print("twin %s %d %.1f%s" % (name, n, n / best,
                                     "" if dev.type == "cpu" else " (%s %s)" % (dev, args.dtype)))
        print("#   N %d: best %.3f s of %d" % (n, best, args.reps), file=sys.stderr)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
