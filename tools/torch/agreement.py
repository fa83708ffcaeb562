"""The twin against the reference interpreter (run by tests/torch_agreement.sh).

usage: agreement.py HSAC MODEL.hsa...

For each model: `hsac export --json`, `hsac init-weights` (a fixed seed),
`hsac logits --backend ref` on fixed tokens (the CPU backend is checked
against the reference by the unit tests), then the twin on the same weights (loaded
with safetensors.torch.load_file) and tokens:

  fp32   the twin as training runs it (float32 torch ops): max |err| <= 1e-4
  ref    the twin with the reference's arithmetic (float64 sums, every op
         result stored as float32): max |err| <= 1e-5
  interop weights re-initialized in the twin and written with
         safetensors.torch.save_file: hsac logits on that file against the
         twin's fp32 logits, max |err| <= 1e-4
  ties   hsac's weights with every query projection zeroed (written with
         save_file): every retrieval and block score ties, so the tie rules
         decide; max |err| <= 1e-4

A 16-bit `quantize` whose fp32 input lies within arithmetic noise of a
rounding boundary may round the other way than the reference's; such a
flip (one storage ulp, the input within 1e-5 relative of the reference's
and the boundary between them) is replaced by the reference's rounding and
counted, so that the fp32 check measures arithmetic error rather than the
coin flip at a tie.  Prints one line per model and 'N passed, M failed'.
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from hsac_torch import HsacModel  # noqa: E402

TOL_FP32 = 1e-4
TOL_REF = 1e-5
SEED = 7
N_TOKENS = 150


def tokens():
    """150 deterministic byte tokens: an LCG, with a repeated stretch so
    that retrieval has something to find."""
    x, out = 12345, []
    for _ in range(N_TOKENS - 40):
        x = (1103515245 * x + 12345) % (1 << 31)
        out.append((x >> 16) % 256)
    return out[:70] + out[10:50] + out[70:]


def hsac(exe, *args):
    r = subprocess.run([exe] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError("hsac %s failed (%d): %s" % (args[0], r.returncode, r.stderr.strip()))
    return r.stdout


def quant_values(model, toks):
    """Reference-arithmetic run; returns (logits, {quantize node index:
    (input, output)})."""
    q = {}

    def keep(node, i, v, ins):
        if node.op == "quantize":
            q[node.index] = (ins[0].detach(), v.detach())
        return None

    model.post_op_hook = keep
    with torch.no_grad():
        y = model(toks)
    model.post_op_hook = None
    return y, q


def tie_tolerant(ref_q, counter):
    """A post-op hook for the fp32 run: a quantize result that differs from
    the reference's by a rounding flip at a boundary takes the reference's
    value (see the module comment)."""
    def hook(node, i, v, ins):
        if node.op != "quantize" or node.index not in ref_q:
            return None
        xr, outr = ref_q[node.index]
        x = ins[0].double()
        out = v.double()
        flip = out != outr
        if not bool(flip.any()):
            return None
        mid = (out + outr) / 2
        between = ((x - mid) * (xr - mid)) <= 0
        near = (x - xr).abs() <= 1e-5 * xr.abs() + 1e-30
        ok = flip & between & near
        counter[0] += int(ok.sum())
        return torch.where(ok, outr.to(v.dtype), v)
    return hook


def twin_fp32(spec, weights, toks):
    """fp32 twin logits on `weights` (a dict), with the reference's
    rounding at quantize ties; returns (fp32 logits, ref-arith logits,
    tolerated flips)."""
    ref_model = HsacModel(spec).load_weights(weights).emulate_reference()
    yref, ref_q = quant_values(ref_model, toks)
    m = HsacModel(spec).load_weights(weights)
    flips = [0]
    m.post_op_hook = tie_tolerant(ref_q, flips)
    with torch.no_grad():
        y = m(toks)
    return y, yref, flips[0]


def perturb(model, seed):
    """Random weights in the twin, norm gains and learned scalars moved
    off their initial values so that they are checked too."""
    model.init_weights(seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


def check(exe, path, tmp, toks):
    base = os.path.join(tmp, os.path.basename(path)[:-4])
    tok_arg = ",".join(str(t) for t in toks)
    tt = torch.tensor(toks, dtype=torch.long)
    hsac(exe, "export", "--json", path, "-o", base + ".json")
    hsac(exe, "init-weights", path, "-o", base + ".w.safetensors", "--seed", str(SEED))
    hsac(exe, "logits", path, "--weights", base + ".w.safetensors", "--tokens", tok_arg, "--backend", "ref",
         "-o", base + ".ref.safetensors")
    ref = load_file(base + ".ref.safetensors")["logits"]
    if tuple(ref.shape)[0] != len(toks):
        raise RuntimeError("hsac logits gave shape %s" % list(ref.shape))
    # hsac's weights file, read by the safetensors package
    w = load_file(base + ".w.safetensors")
    model = HsacModel(base + ".json")
    names = set(model.state_dict().keys())
    if names != set(w.keys()) or names != set(model.weight_names):
        raise RuntimeError("weight names differ: only in hsac's file %s, only in the twin %s"
                           % (sorted(set(w) - names)[:5], sorted(names - set(w))[:5]))
    y, yref, flips = twin_fp32(base + ".json", w, tt)
    e32 = (y - ref).abs().max().item()
    eref = (yref - ref.double()).abs().max().item()
    # the other way: weights written by safetensors.save_file, read by hsac
    perturb(model, SEED + 100)
    model.save_weights(base + ".twin.safetensors")
    hsac(exe, "logits", path, "--weights", base + ".twin.safetensors", "--tokens", tok_arg, "--backend", "ref",
         "-o", base + ".ref2.safetensors")
    ref2 = load_file(base + ".ref2.safetensors")["logits"]
    y2, _, flips2 = twin_fp32(base + ".json", load_file(base + ".twin.safetensors"), tt)
    e2 = (y2 - ref2).abs().max().item()
    # ties: zero queries make every score equal
    wt = {k: (torch.zeros_like(v) if k.endswith("q_proj.weight") else v) for k, v in w.items()}
    save_file(wt, base + ".ties.safetensors")
    hsac(exe, "logits", path, "--weights", base + ".ties.safetensors", "--tokens", tok_arg, "--backend", "ref",
         "-o", base + ".ref3.safetensors")
    ref3 = load_file(base + ".ref3.safetensors")["logits"]
    y3, _, flips3 = twin_fp32(base + ".json", wt, tt)
    e3 = (y3 - ref3).abs().max().item()
    errs = (e32, eref, e2, e3)
    ok = e32 <= TOL_FP32 and eref <= TOL_REF and e2 <= TOL_FP32 and e3 <= TOL_FP32
    return ok, errs, flips + flips2 + flips3


def main(argv):
    if len(argv) < 3:
        print("usage: agreement.py HSAC MODEL.hsa...", file=sys.stderr)
        return 2
    exe, models = argv[1], argv[2:]
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    toks = tokens()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in models:
            name = os.path.basename(path)[:-4]
            t0 = time.time()
            try:
                ok, errs, flips = check(exe, path, tmp, toks)
            except Exception as ex:  # one model's failure must not hide the others
                print("FAIL %-20s %s: %s" % (name, type(ex).__name__, ex))
                failed += 1
                continue
            note = " (%d rounding flips at ties tolerated)" % flips if flips else ""
            print("%s %-20s max |err| fp32 %.2e, reference arithmetic %.2e, "
                  "safetensors-written weights %.2e, tied scores %.2e  [%.1fs]%s"
                  % (("PASS" if ok else "FAIL", name) + errs + (time.time() - t0, note)))
            passed += ok
            failed += not ok
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
