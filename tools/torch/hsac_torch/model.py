"""HsacModel: a torch.nn.Module rebuilt op by op from `hsac export --json`.

Parameters live in nested modules so that state_dict() keys are exactly the
hsac weight names ('lower.0.attn.q_proj.weight', 'mem.cls', ...).  forward
runs the exported graph (the ops in execution order) over a whole sequence
and returns the logits of every position, as the reference interpreter's
one-shot prefill does.
"""
import math

import torch
from torch import nn

from . import io as hio
from . import ops as O


class OpNode:
    """One op of the exported graph (plain data; holds no parameters).

    Retrieval top-k nodes (op == "topk") carry the training hooks:
    gumbel_scale (default 0: off) and score_noise (None, a tensor shaped like
    the scores [L, G, C], or a callable scores -> noise).  Noise is added to
    the eligible scores for the selection only, unless noisy_weights is set:
    then the selected chunks' scores keep their noise, and so do the
    weights made from them."""

    __slots__ = ("op", "inputs", "outputs", "types", "attrs", "origin", "index",
                 "gumbel_scale", "score_noise", "generator", "noisy_weights")

    def __init__(self, j, index):
        self.op = j["op"]
        self.inputs = list(j.get("inputs", []))
        self.outputs = list(j.get("outputs", []))
        self.types = list(j.get("types", []))
        self.attrs = dict(j.get("attrs", {}))
        self.origin = j.get("origin", "")
        self.index = index
        self.gumbel_scale = 0.0
        self.score_noise = None
        self.generator = None
        self.noisy_weights = False

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def __repr__(self):
        return "OpNode(%s %s -> %s, %s)" % (self.op, self.inputs, self.outputs, self.origin)


def _gumbel_like(x, generator=None):
    u = torch.rand(x.shape, dtype=torch.float64, device=x.device, generator=generator)
    u = u.clamp(min=1e-20, max=1.0 - 1e-16)
    return (-torch.log(-torch.log(u))).to(x.dtype)


def _run_op(node, ins, model):
    a = node.attr
    op = node.op
    if op == "embed":
        return O.embed(ins[0], ins[1])
    if op == "rmsnorm":
        return O.rmsnorm(ins[0], ins[1], float(a("eps")))
    if op == "layernorm":
        return O.layernorm(ins[0], ins[1], float(a("eps")))
    if op == "linear":
        return O.linear(ins[0], ins[1])
    if op == "split_heads":
        return O.split_heads(ins[0], int(a("heads")))
    if op == "merge_heads":
        return O.merge_heads(ins[0])
    if op == "rope":
        return O.rope(ins[0], float(a("theta")), int(a("pos_mul", 1)), int(a("pos_add", 0)))
    if op == "attention":
        return O.attention(ins[0], ins[1], ins[2], int(a("causal", 1)), int(a("window", 0)))
    if op == "add":
        return O.add(ins[0], ins[1])
    if op == "silu_mul":
        return O.silu_mul(ins[0], ins[1])
    if op == "bias_add":
        return ins[0] + ins[1]
    if op == "sigmoid":
        return O.sigmoid(ins[0])
    if op == "quantize":
        return O.quantize(ins[0], a("dtype", "bf16"))
    if op == "chunk":
        return O.chunk(ins[0], int(a("size")))
    if op == "append_row":
        return O.append_row(ins[0], ins[1])
    if op == "rows":
        return O.rows(ins[0], int(a("begin")), int(a("end")))
    if op == "row":
        return O.row(ins[0], int(a("row")))
    if op == "zero_row":
        return O.zero_row(ins[0], int(a("row")))
    if op == "mean_rows":
        return O.mean_rows(ins[0])
    if op == "block_landmark":
        return O.block_landmark(ins[0], ins[1], int(a("block")))
    if op == "landmark_scores":
        return O.landmark_scores(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                                 int(a("chunk")), a("per", "token"),
                                 int(a("exclude_window", 0)), a("offset"))
    if op == "topk":
        noise = None
        if node.score_noise is not None:
            noise = node.score_noise(ins[0]) if callable(node.score_noise) else node.score_noise
        elif node.gumbel_scale:
            noise = node.gumbel_scale * _gumbel_like(ins[0], node.generator)
        return O.topk(ins[0], int(a("k")), noise, node.noisy_weights)
    if op == "stickbreak":
        return O.stickbreak(ins[0], int(a("length_offset", 0)))
    if op == "softmax":
        return O.softmax(ins[0], ins[1] if len(ins) > 1 else None)
    if op == "chunk_attention":
        return O.chunk_attention(ins[0], ins[1], ins[2], ins[3], ins[4],
                                 int(a("softmax_plus", 0)), a("merge", "weighted"))
    if op == "landmark_attention":
        return O.landmark_attention(ins[0], ins[1], ins[2], ins[3], int(a("block")),
                                    int(a("topk")))
    if op == "moba_attention":
        return O.moba_attention(ins[0], ins[1], ins[2], int(a("block")), int(a("topk")))
    if op == "nsa_compress":
        return O.nsa_compress(ins[0], ins[1], int(a("block")), int(a("stride")))
    if op == "nsa_attention":
        return O.nsa_attention(ins[0], ins[1], ins[2], ins[3], ins[4], ins[5],
                               int(a("cmp_block")), int(a("cmp_stride")), int(a("block")),
                               int(a("topk")), int(a("init_blocks", 0)),
                               int(a("local_blocks", 0)), int(a("window")))
    raise NotImplementedError("hsac op '%s' (%s) has no torch implementation"
                              % (op, node.origin))


class HsacModel(nn.Module):
    """A model from an hsac JSON export (a path or the parsed dict).

    model = HsacModel("m.json"); model.load_weights("w.safetensors")
    logits = model(torch.tensor(tokens))        # [L, vocab]
    """

    def __init__(self, spec, dtype=torch.float32, device=None, seed=0):
        super().__init__()
        spec = hio.read_export(spec)
        self.spec = spec
        self.name = spec.get("name", "")
        self.settings = dict(spec["settings"])
        self.weight_names = []
        self._weight_info = {}
        for w in spec["weights"]:
            name, shape = w["name"], [int(s) for s in w["shape"]]
            if name in self._weight_info:
                raise hio.ExportError("weight '%s' listed twice" % name)
            self._weight_info[name] = w
            self.weight_names.append(name)
            self._register(name, nn.Parameter(torch.empty(shape, dtype=dtype, device=device)))
        self.nodes = [OpNode(j, i) for i, j in enumerate(spec["ops"])]
        self.output = spec["output"]
        for n in self.nodes:
            for x in n.inputs:
                if x.startswith("@") and x[1:] not in self._weight_info:
                    raise hio.ExportError("op %d (%s) reads unknown weight %s"
                                          % (n.index, n.op, x))
        # emulate the reference's storage: every op's float result rounded to
        # float32 (meaningful when the model runs in float64)
        self.round_to_f32 = False
        self.check_shapes = True
        # post_op_hook(node, index_of_result, value, inputs) -> value or None:
        # called on every result (inspection, or replacing a value)
        self.post_op_hook = None
        self.init_weights(seed)

    # -- parameters --------------------------------------------------------

    def _register(self, name, param):
        parts = name.split(".")
        mod = self
        for p in parts[:-1]:
            if p in mod._parameters:
                raise hio.ExportError("weight name '%s' clashes with a parameter" % name)
            sub = mod._modules.get(p)
            if sub is None:
                sub = nn.Module()
                mod.add_module(p, sub)
            mod = sub
        if parts[-1] in mod._modules or parts[-1] in mod._parameters:
            raise hio.ExportError("weight name '%s' clashes with another weight" % name)
        mod.register_parameter(parts[-1], param)

    def weight(self, name):
        return self.get_parameter(name)

    def emulate_reference(self):
        """The reference interpreter's arithmetic: sums in float64, every
        op's result stored as float32 (the module becomes float64 with its
        results rounded through float32).  Agrees with `hsac logits` to the
        last bit or nearly."""
        self.double()
        self.round_to_f32 = True
        return self

    def retrievals(self):
        """The top-k nodes of retrievals: set .gumbel_scale (and optionally
        .generator) or .score_noise on them to perturb the selection."""
        return [n for n in self.nodes if n.op == "topk"]

    def set_gumbel_scale(self, scale, generator=None, weights=False):
        """Gumbel(0, 1) * scale noise on every retrieval's scores; with
        weights, the selected chunks' weights are made from the noisy scores
        too (default: the selection only)."""
        for n in self.retrievals():
            n.gumbel_scale = float(scale)
            n.generator = generator
            n.noisy_weights = bool(weights)

    @torch.no_grad()
    def init_weights(self, seed=0):
        """Random weights in hsac's scheme (docs/runtime.md): matrices
        N(0, 1/fan_in), norm gains 1, embeddings and learned rows N(0, 1),
        learned scalars at their declared initial value.  The numbers are
        not those of `hsac init-weights` (another generator)."""
        g = torch.Generator().manual_seed(int(seed))
        for name in self.weight_names:
            p = self.get_parameter(name)
            info = self._weight_info[name]
            if "init" in info:
                p.fill_(float(info["init"]))
            elif name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                sd = 1.0
                if p.dim() == 2 and name != "embed.weight":
                    sd = 1.0 / math.sqrt(p.shape[1])
                p.copy_((torch.randn(p.shape, generator=g, dtype=torch.float64) * sd)
                        .to(p.dtype))
        return self

    @torch.no_grad()
    def grow_from(self, path_or_tensors):
        """Starts a larger model from a smaller one's weights: every tensor
        of the file must be a weight of this model with the same shape
        (nothing is dropped); this model's weights that the file lacks keep
        their current (fresh) values, except the output projections among
        them (`o_proj`, `down_proj`), which are zeroed, so that new layers
        start as the identity on the residual stream (a standard or bypass
        residual adds nothing) and the grown model computes what the small
        one did.  Returns the names that were not in the file."""
        tensors = path_or_tensors
        if not isinstance(tensors, dict):
            tensors = hio.load_safetensors(path_or_tensors)
        missing = [n for n in self.weight_names if n not in tensors]
        self.load_weights(dict(tensors, **{n: self.get_parameter(n).detach().clone()
                                           for n in missing}))
        for name in missing:
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                self.get_parameter(name).zero_()
        return missing

    @torch.no_grad()
    def load_weights(self, path_or_tensors):
        """Loads a safetensors file (or a name -> tensor dict) with exactly
        this model's weights: every name present, no extra name, the same
        shapes; F16/BF16 are converted, NaN or infinity is refused."""
        tensors = path_or_tensors
        where = "weights"
        if not isinstance(tensors, dict):
            where = str(path_or_tensors)
            tensors = hio.load_safetensors(path_or_tensors)
        for name in self.weight_names:
            if name not in tensors:
                raise ValueError("%s: tensor '%s' is missing" % (where, name))
        for name, t in tensors.items():
            if name not in self._weight_info:
                raise ValueError("%s: tensor '%s' is not a weight of model '%s'"
                                 % (where, name, self.name))
            p = self.get_parameter(name)
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError("%s: tensor '%s' has shape %s, the model expects %s"
                                 % (where, name, list(t.shape), list(p.shape)))
            if not torch.isfinite(t.float()).all():
                raise ValueError("%s: tensor '%s' holds NaN or infinity" % (where, name))
            p.copy_(t.to(p.dtype))
        return self

    def weights_dict(self, dtype=torch.float32):
        """name -> tensor (detached, CPU) under the hsac names."""
        return {k: v.detach().to("cpu", dtype) for k, v in self.state_dict().items()}

    def save_weights(self, path, dtype=torch.float32):
        """Writes the weights as safetensors (F32 by default; bf16/f16 load
        in hsac too)."""
        hio.save_safetensors(self.weights_dict(dtype), path)

    # -- running -----------------------------------------------------------

    def _shape(self, node, i, L):
        ty = node.types[i]
        return tuple(hio.dim_size(d, L) for d in ty["shape"])

    def values(self, tokens):
        """Runs the graph; returns every value ('%N' -> tensor)."""
        if not torch.is_tensor(tokens):
            tokens = torch.tensor(list(tokens), dtype=torch.long)
        first = next(iter(self.parameters()), None)
        dev = first.device if first is not None else tokens.device
        tokens = tokens.to(dev).long().reshape(-1)
        L = tokens.shape[0]
        params = dict(self.named_parameters())
        env = {"%tokens": tokens}
        for node in self.nodes:
            if node.op in ("input", "weight"):
                continue
            ins = []
            for x in node.inputs:
                if x.startswith("@"):
                    ins.append(params[x[1:]])
                else:
                    ins.append(env[x])
            if node.op == "return":
                continue
            out = _run_op(node, ins, self)
            outs = out if isinstance(out, tuple) else (out,)
            if len(outs) != len(node.outputs):
                raise RuntimeError("op %d (%s) gave %d results, the export lists %d"
                                   % (node.index, node.op, len(outs), len(node.outputs)))
            for i, (name, v) in enumerate(zip(node.outputs, outs)):
                if self.round_to_f32 and v.is_floating_point() and v.dtype != torch.float32:
                    v = v.to(torch.float32).to(v.dtype)
                if self.post_op_hook is not None:
                    r = self.post_op_hook(node, i, v, ins)
                    if r is not None:
                        v = r
                if self.check_shapes and i < len(node.types):
                    want = self._shape(node, i, L)
                    if tuple(v.shape) != want:
                        raise RuntimeError("op %d (%s, %s): result %s has shape %s, the "
                                           "export says %s" % (node.index, node.op,
                                                               node.origin, name,
                                                               list(v.shape), list(want)))
                env[name] = v
        return env

    def forward(self, tokens):
        """tokens: LongTensor [L] (or a list) -> logits [L, vocab]."""
        return self.values(tokens)[self.output]


def from_json(path_or_dict, weights=None, dtype=torch.float32, device=None):
    """Builds the model from an export and optionally loads weights."""
    m = HsacModel(path_or_dict, dtype=dtype, device=device)
    if weights is not None:
        m.load_weights(weights)
    return m
