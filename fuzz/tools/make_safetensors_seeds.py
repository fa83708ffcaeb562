#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors fuzzer (fuzz/corpus/safetensors/).

Usage: make_safetensors_seeds.py MICRO.safetensors OUTDIR

MICRO.safetensors is `hsac init-weights` of the micro model that
fuzz_safetensors.c binds to (its text is MICRO there; fuzz/tools/micro.hsa
is a copy).  The script writes that file converted to F16 and BF16 and with
a few mismatches (a tensor missing, one extra, a wrong shape, a NaN), small
valid files, and hand-made broken ones.  Python 3 standard library only.
"""
import json
import os
import struct
import sys


def pack(header, data=b"", pad=True, hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    n = len(h) if hlen is None else hlen
    return struct.pack("<Q", n) + h + data


def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def f32_to_f16(x):
    return struct.pack("<e", x)


def f32_to_bf16(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    u += 0x7FFF + ((u >> 16) & 1)
    return struct.pack("<H", (u >> 16) & 0xFFFF)


def rebuild(header, data, dtype=None, drop=None, extra=None, reshape=None, nan=None):
    """Rewrites a file tensor by tensor (in offset order)."""
    out_h, out_d = {}, b""
    if "__metadata__" in header:
        out_h["__metadata__"] = header["__metadata__"]
    names = sorted((k for k in header if k != "__metadata__"),
                   key=lambda k: header[k]["data_offsets"][0])
    for k in names:
        if k == drop:
            continue
        t = header[k]
        b, e = t["data_offsets"]
        vals = list(struct.unpack("<%df" % ((e - b) // 4), data[b:e]))
        if k == nan:
            vals[0] = float("nan")
        shape = list(t["shape"])
        if k == reshape:
            shape = [shape[-1]] + shape[:-1] if len(shape) > 1 else [shape[0] + 1]
            if len(t["shape"]) == 1:
                vals.append(0.0)
        dt = dtype or "F32"
        if dt == "F32":
            raw = struct.pack("<%df" % len(vals), *vals)
        elif dt == "F16":
            raw = b"".join(f32_to_f16(v) for v in vals)
        else:
            raw = b"".join(f32_to_bf16(v) for v in vals)
        out_h[k] = {"dtype": dt, "shape": shape,
                    "data_offsets": [len(out_d), len(out_d) + len(raw)]}
        out_d += raw
    if extra:
        out_h[extra] = {"dtype": "F32", "shape": [2], "data_offsets": [len(out_d), len(out_d) + 8]}
        out_d += struct.pack("<2f", 1.0, 2.0)
    return pack(out_h, out_d)


def main():
    micro, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    h, d = read(micro)
    first = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    seeds = {}
    seeds["valid_micro_f32"] = open(micro, "rb").read()
    seeds["valid_micro_f16"] = rebuild(h, d, dtype="F16")
    seeds["valid_micro_bf16"] = rebuild(h, d, dtype="BF16")
    seeds["mismatch_missing_tensor"] = rebuild(h, d, dtype="BF16", drop="norm.weight")
    seeds["mismatch_extra_tensor"] = rebuild(h, d, dtype="BF16", extra="extra.weight")
    seeds["mismatch_wrong_shape"] = rebuild(h, d, dtype="BF16", reshape="lm_head.weight")
    seeds["mismatch_nan_value"] = rebuild(h, d, dtype="F32", nan=first[0])
    one = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    t22 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    seeds["valid_one_tensor"] = pack({"a": t22}, one)
    seeds["valid_empty_object"] = pack({})
    seeds["valid_metadata_only"] = pack({"__metadata__": {"format": "pt", "x": "y"}})
    seeds["valid_scalar_and_empty"] = pack({
        "s": {"dtype": "F16", "shape": [], "data_offsets": [0, 2]},
        "z": {"dtype": "BF16", "shape": [0, 3], "data_offsets": [2, 2]},
        "w": {"dtype": "BF16", "shape": [3], "data_offsets": [2, 8]}},
        b"\x00\x3c" + b"\x80\x3f\x00\xc0\x80\x7f")
    seeds["valid_unpadded_header"] = pack({"a": t22}, one, pad=False)
    seeds["bad_too_short"] = b"\x10\x00\x00"
    seeds["bad_header_past_end"] = pack({"a": t22}, one, hlen=4096)
    seeds["bad_header_huge_length"] = struct.pack("<Q", 1 << 62) + b"{}"
    seeds["bad_not_json"] = pack(b'{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]', one)
    seeds["bad_not_object"] = pack(b"[1, 2, 3]")
    seeds["bad_bytes_after_json"] = pack(b'{"a":' + json.dumps(t22).encode() + b'}xx', one)
    seeds["bad_nul_in_header"] = pack(b'{"a":' + json.dumps(t22).encode() + b'}\x00\x00', one)
    seeds["bad_dtype_i64"] = pack({"a": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}, one)
    seeds["bad_dtype_not_string"] = pack({"a": {"dtype": 4, "shape": [2, 2], "data_offsets": [0, 16]}}, one)
    seeds["bad_no_shape"] = pack({"a": {"dtype": "F32", "data_offsets": [0, 16]}}, one)
    seeds["bad_rank_9"] = pack({"a": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}}, one)
    seeds["bad_shape_fraction"] = pack({"a": {"dtype": "F32", "shape": [1.5, 2], "data_offsets": [0, 16]}}, one)
    seeds["bad_shape_negative"] = pack({"a": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}, one)
    seeds["bad_shape_overflow"] = pack({"a": {"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 16]}}, one)
    seeds["bad_offsets_reversed"] = pack({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}, one)
    seeds["bad_offsets_past_end"] = pack({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}}, one)
    seeds["bad_size_mismatch"] = pack({"a": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 16]}}, one)
    seeds["bad_overlap"] = pack({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, one)
    seeds["bad_overlap_behind_empty"] = pack({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, one)
    seeds["bad_duplicate_name"] = pack(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', one)
    seeds["bad_empty_name"] = pack({"": t22}, one)
    seeds["bad_name_control_bytes"] = pack(b'{"\\u0001\\u001b[31m\\u00ff\\\\x":' + json.dumps(t22).encode() + b'}', one)
    seeds["bad_metadata_not_object"] = pack({"__metadata__": [1], "a": t22}, one)
    seeds["bad_tensor_not_object"] = pack({"a": "F32"}, one)
    seeds["bad_deep_json"] = pack(b'{"__metadata__":' + b'[' * 2000 + b']' * 2000 + b'}')
    for name, b in seeds.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
