#!/usr/bin/env python3
"""average_weights.py: a weighted average of checkpoints of one model.

    average_weights.py OUT A.safetensors[:W] B.safetensors[:W] ... [--dtype bf16|f32]

Each input is a safetensors file with the same tensor names and shapes (two
checkpoints of one model, f32 or bf16); W is its weight (default 1; the
weights are normalized to sum to 1).  The average is taken in f32 and
written as --dtype (default bf16, what examples/trained/ keeps).  Inputs
that differ in their names or shapes are refused.

The shipped ruler_hsa weights are such an average: since session 39, half
and half the --ema averages of two runs from one checkpoint (session 38:
an older file and a run's average; the model card,
examples/trained/ruler_hsa/README.md, "Training").
"""
import argparse
import sys

import torch
from safetensors.torch import load_file, save_file


def parse_input(arg):
    """'PATH[:W]' -> (path, weight)."""
    path, sep, w = arg.rpartition(":")
    if sep and path:
        try:
            return path, float(w)
        except ValueError:
            pass
    return arg, 1.0


def average(inputs):
    """inputs: [(tensors dict, weight)] -> the f32 weighted average (weights
    normalized); ValueError when names or shapes differ or a weight is not
    positive."""
    total = sum(w for _, w in inputs)
    if not inputs or any(w <= 0 for _, w in inputs):
        raise ValueError("every weight must be positive")
    names = set(inputs[0][0])
    for t, _ in inputs[1:]:
        if set(t) != names:
            raise ValueError("the inputs hold different tensors: %s"
                             % sorted(names.symmetric_difference(t))[:5])
        bad = [k for k in names if t[k].shape != inputs[0][0][k].shape]
        if bad:
            raise ValueError("tensor %s has different shapes" % bad[0])
    return {k: sum(t[k].float() * (w / total) for t, w in inputs) for k in sorted(names)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("inputs", nargs="+", metavar="IN[:W]")
    p.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    args = p.parse_args()
    try:
        inputs = [(load_file(path), w) for path, w in map(parse_input, args.inputs)]
        avg = average(inputs)
    except (OSError, ValueError, RuntimeError) as e:
        sys.exit("average_weights.py: %s" % e)
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    save_file({k: v.to(dt).contiguous() for k, v in avg.items()}, args.out)
    print("average_weights.py: wrote %s: %d tensors, weights %s" % (
        args.out, len(avg), ", ".join("%g" % w for _, w in inputs)))


if __name__ == "__main__":
    main()
