"""Reading the JSON export and reading/writing safetensors weights.

The JSON is what `hsac export --json MODEL.hsa` writes (docs/export.md).
Weights go through PyPI's `safetensors` package under the exact hsac weight
names, so a file written here loads in hsac and the reverse.
"""
import json

import torch

FORMAT = "hsac-model"
VERSION = 1


class ExportError(ValueError):
    """The JSON is not an hsac export this reader understands."""


def read_export(path_or_dict):
    """Returns the parsed export (a dict), checking format and version."""
    if isinstance(path_or_dict, dict):
        spec = path_or_dict
    else:
        with open(path_or_dict, "r", encoding="utf-8") as f:
            spec = json.load(f)
    if spec.get("format") != FORMAT:
        raise ExportError("not an hsac model export (format %r)" % spec.get("format"))
    if spec.get("version") != VERSION:
        raise ExportError("unsupported hsac export version %r (this reader knows %d)"
                          % (spec.get("version"), VERSION))
    for key in ("settings", "weights", "ops", "output"):
        if key not in spec:
            raise ExportError("export has no %r" % key)
    return spec


def dim_size(dim, L):
    """A dimension of a `types` shape: a number, or {"off": o, "div": d}
    meaning floor((L + o) / d), never below 0."""
    if isinstance(dim, int):
        return dim
    return max(0, (L + int(dim["off"])) // int(dim["div"]))


def load_safetensors(path, device="cpu"):
    """name -> tensor, as stored (F32, F16 or BF16).  Uses the safetensors
    package where it is installed, else reads the file itself (an 8-byte
    header length, a JSON header, the data), as on a GPU machine whose
    PyTorch came without it."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        return _read_safetensors(path, device)
    return load_file(path, device=device)


_ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def _read_safetensors(path, device):
    import json
    import struct
    import torch
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError("%s: header length %d runs past the file" % (path, hlen))
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") not in _ST_DTYPES:
            raise ValueError("%s: tensor '%s' has dtype %s (F32, F16 or BF16 expected)"
                             % (path, name, info.get("dtype")))
        lo, hi = info["data_offsets"]
        if not 0 <= lo <= hi <= len(data):
            raise ValueError("%s: tensor '%s' lies outside the file" % (path, name))
        dt = getattr(torch, _ST_DTYPES[info["dtype"]])
        numel = 1
        for n in info["shape"]:
            numel *= int(n)
        if hi - lo != numel * (4 if info["dtype"] == "F32" else 2):
            raise ValueError("%s: tensor '%s' has %d bytes for shape %s"
                             % (path, name, hi - lo, info["shape"]))
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=dt) if hi > lo else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(device)
    return out


def save_safetensors(tensors, path, metadata=None):
    """Writes name -> tensor (contiguous, on the CPU) with safetensors."""
    from safetensors.torch import save_file
    out = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(out, path, metadata=metadata)
