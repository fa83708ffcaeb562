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
    """name -> tensor, as stored (F32, F16 or BF16)."""
    from safetensors.torch import load_file
    return load_file(path, device=device)


def save_safetensors(tensors, path, metadata=None):
    """Writes name -> tensor (contiguous, on the CPU) with safetensors."""
    from safetensors.torch import save_file
    out = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(out, path, metadata=metadata)
