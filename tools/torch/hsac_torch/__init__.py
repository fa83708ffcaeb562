"""hsac_torch: a PyTorch twin of hsac models, built from `hsac export --json`.

    from hsac_torch import HsacModel
    m = HsacModel("model.json")          # parameters named as hsac's weights
    m.load_weights("model.safetensors")  # safetensors, exact hsac names
    logits = m(torch.tensor(tokens))     # [L, vocab], every position

See tools/torch/README.md for the semantic choices shared with hsac.
"""
from .io import ExportError, read_export, load_safetensors, save_safetensors
from .model import HsacModel, OpNode, from_json
from . import ops

__all__ = ["HsacModel", "OpNode", "from_json", "ExportError", "read_export",
           "load_safetensors", "save_safetensors", "ops"]
