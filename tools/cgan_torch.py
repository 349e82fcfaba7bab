#!/usr/bin/env python3
"""cgan_torch: a cgan_gpu checkpoint's generator and discriminator as PyTorch modules.

    import sys; sys.path.insert(0, "tools")
    import cgan_torch
    ck = cgan_torch.load_checkpoint("out/mnist_mlp/checkpoints/step_100000.safetensors")
    G = ck.generator.eval()                                   # a torch.nn.Sequential subclass
    images = G(torch.randn(3, ck.config["generator"]["noise_dim"]), labels=torch.tensor([3, 1, 4]))

Command line:
    python3 tools/cgan_torch.py sample CKPT --labels 3,1,4 --out result.png [--seed S]
    python3 tools/cgan_torch.py sample CKPT --tags "blue hair, red eyes" --count 16 --out grid.png
    python3 tools/cgan_torch.py sample CKPT --noise FILE --out result.png
        (FILE: the noise and labels `cgan_gpu sample --save-tensors FILE` used; the images then
        equal the engine's)
    python3 tools/cgan_torch.py export CKPT --format onnx|torchscript --out FILE [--no-ema]
        (the generator as a standalone file: see export_module(); `cgan_gpu export` runs this)

Each network is a torch.nn.Sequential whose children are named "0", "1", ... after the index of the
layer in the config's `layers` list (linear -> nn.Linear, conv2d -> nn.Conv2d, batchnorm ->
nn.BatchNorm1d/2d, reshape -> nn.Unflatten, activations, dropout and pooling -> their nn modules),
plus a child "condition" when the conditioner has parameters (embed_concat / embed_multiply ->
nn.Embedding [K, E]; label_plane -> nn.Linear(K -> H*W)); forward() applies the conditioner first.
A conditional batch norm ({"batchnorm": {"conditional": true}}) is a CondBatchNorm (children "gain" and
"bias", nn.Linear(K, C, bias=False), and the running statistics); condition mode "projection" adds
a child "embed" (nn.Embedding [K, F]) and D(x, y) = last linear(phi) + <cond @ embed.weight, phi>.
A spectrally normalised linear / conv2d ("spectral_norm": true) is wrapped with
torch.nn.utils.spectral_norm (one power iteration per training forward, eps 1e-12): its state is
weight_orig, weight_u and weight_v, as the engine stores it.
A checkpoint stores the state_dicts as "generator.<key>" / "discriminator.<key>" (and, for a run with
train.ema, the generator's weight average as "generator_ema.<key>": Checkpoint.generator_ema, which
generate() and `sample` use by default, as `cgan_gpu sample` does; --no-ema for the raw one). loss_term()
is a config's loss in PyTorch (log, squared, hinge). Checkpoints of
format cgan_gpu.checkpoint.v1 (names "layers.<i>.weight", linear weights [in, out], "cond.*") are
converted on loading.

Needs PyTorch and the standard library; the `safetensors` package is used when installed,
otherwise the small reader below.
"""
import argparse
import copy
import json
import math
import os
import struct
import sys
import warnings
import zlib

try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError as _e:  # one line, not a traceback (`cgan_gpu export` shows it as is)
    sys.exit(f"cgan_torch.py: PyTorch is not installed for {sys.executable} ({_e}; Debian: apt-get install "
             "python3-torch, or set CGAN_PYTHON to an interpreter that has it)")

# ----------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def read_safetensors(path):
    """Returns ({name: tensor}, {metadata key: string}) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    try:
        from safetensors.torch import load as st_load  # the package, when installed
        return st_load(raw), meta
    except ImportError:
        pass
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        if not 0 <= b <= e <= len(data):
            raise ValueError(f"{path}: tensor {name!r} has data_offsets outside the buffer")
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"])
    return out, meta


# ----------------------------------------------------------------------------- the networks

def _pair(v):
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _layer(entry):
    """A config layer entry ({"linear": 128}, {"conv2d": {...}}, {"linear": 64, "spectral_norm": true},
    ...) -> (kind, value)."""
    keys = [k for k in entry if k != "spectral_norm"]
    if len(keys) != 1:
        raise ValueError(f"layer entry {entry!r}: expected one key naming the layer")
    return keys[0], entry[keys[0]]


def _spectral_norm(entry, spec):
    """Whether a linear / conv2d entry is spectrally normalised: its own "spectral_norm" (beside the
    type, or inside a conv2d's object), else the network's (the engine's rule, configs/README.md)."""
    kind, v = _layer(entry)
    if kind not in ("linear", "conv2d"):
        return False
    if "spectral_norm" in entry:
        return bool(entry["spectral_norm"])
    if kind == "conv2d" and "spectral_norm" in v:
        return bool(v["spectral_norm"])
    return bool(spec.get("spectral_norm", False))


class CondBatchNorm(nn.Module):
    """Conditional batch norm: batch norm without an affine of its own, then per sample
    y = (1 + gain(cond)) * xhat + bias(cond), cond one-hot or multi-hot [B, K] (one formulation for
    labels and tags; for one-hot rows gain.weight[:, k] is class k's gain offset). gain and bias start
    at 0 (every class at gain 1, bias 0, as SNGAN-projection's categorical batch norm)."""

    def __init__(self, channels, num_classes, image, eps=1e-5, momentum=0.1):
        super().__init__()
        self.image, self.eps, self.momentum = image, eps, momentum
        self.gain = nn.Linear(num_classes, channels, bias=False)
        self.bias = nn.Linear(num_classes, channels, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, h, cond):
        if self.training:
            self.num_batches_tracked += 1
        xhat = F.batch_norm(h, self.running_mean, self.running_var, None, None, self.training, self.momentum, self.eps)
        cond = cond.to(h.dtype)
        shape = (h.shape[0], -1, 1, 1) if self.image else (h.shape[0], -1)
        return (1 + self.gain(cond)).reshape(shape) * xhat + self.bias(cond).reshape(shape)


def has_conditional_bn(spec):
    return any(_layer(e)[0] == "batchnorm" and isinstance(_layer(e)[1], dict) and _layer(e)[1].get("conditional")
               for e in spec["layers"])


KINK_BAND = 1e-5  # kink_side: |x| <= KINK_BAND * rms(x) is "within rounding of the kink"


def kink_side(x, slope, engine_out, band=KINK_BAND):
    """y = x where x > 0, slope * x elsewhere (ReLU: slope 0), except that a value within
    band * rms(x) of the kink takes the side the engine's traced output engine_out took (y > 0: the
    positive side, as the engine's backward decides it). Such a value is the same number in float32
    and float64 to within their rounding, yet which slope it gets (and so which gradient flows
    through it) is decided by that rounding: a replay in float64 of a float32 step would otherwise
    differ from it by a whole element's gradient. Returns (y, log): log counts the values in the
    band ("ambiguous"), those of them whose side the engine's decided ("flipped") and those outside
    the band where the engine took the other side ("wrong": a defect, never rounding)."""
    e = engine_out.reshape(x.shape).to(x.dtype)
    xd = x.detach()
    amb = xd.abs() <= band * xd.pow(2).mean().sqrt()
    ours, theirs = xd > 0, e > 0
    differ = ours != theirs
    side = torch.where(amb, theirs, ours)
    y = torch.where(side, x, x * slope)
    return y, dict(ambiguous=int(amb.sum()), flipped=int((differ & amb).sum()), wrong=int((differ & ~amb).sum()))


class CganNet(nn.Sequential):
    """One network of a config (a NetSpec): conditioner + layers, as the engine's Model builds it.

    in_dim: width of x; num_classes: the condition width (labels for the embedding modes, the one-hot
    or tag vector width for concat_onehot and label_plane, 0 without conditioning).
    """

    def __init__(self, spec, in_dim, num_classes):
        super().__init__()
        self.kink_log = []  # forward(masks=...): kink_side's decisions, appended per activation
        cond = spec.get("condition", {"mode": "none"})
        self.mode = cond.get("mode", "none") if num_classes > 0 else "none"
        self.in_dim, self.num_classes = in_dim, num_classes
        mode = self.mode
        if mode == "none":
            fused = in_dim
        elif mode == "concat_onehot":
            fused = in_dim + num_classes
        elif mode == "embed_concat":
            e = cond.get("embed_dim", 0) or num_classes
            fused = in_dim + e
        elif mode == "embed_multiply":
            fused = in_dim
        elif mode == "label_plane":
            fused = in_dim + cond["embed_dim"]
        elif mode == "projection":
            fused = in_dim  # x enters unconditioned
        else:
            raise ValueError(f"condition mode {mode!r} is not supported")
        c, h, w, image = fused, 1, 1, False  # the shape of one sample
        for i, entry in enumerate(spec["layers"]):
            kind, v = _layer(entry)
            width = c * h * w
            if kind == "linear":
                m = nn.Linear(width, int(v))
                c, h, w, image = int(v), 1, 1, False
            elif kind == "conv2d":
                k, s, p = _pair(v["kernel"]), _pair(v.get("stride", 1)), _pair(v.get("padding", 0))
                m = nn.Conv2d(c, int(v["out"]), k, stride=s, padding=p)
                c, h = int(v["out"]), (h + 2 * p[0] - k[0]) // s[0] + 1
                w = (w + 2 * p[1] - k[1]) // s[1] + 1
            elif kind in ("avgpool2d", "maxpool2d"):
                k, p = _pair(v["kernel"]), _pair(v.get("padding", 0))
                s = _pair(v.get("stride", v["kernel"]))
                m = (nn.AvgPool2d(k, s, p, count_include_pad=True) if kind == "avgpool2d"
                     else nn.MaxPool2d(k, s, p))
                h, w = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
            elif kind == "reshape":
                m = nn.Unflatten(1, tuple(int(d) for d in v))
                c, h, w, image = int(v[0]), int(v[1]), int(v[2]), True
            elif kind == "batchnorm":
                bn = nn.BatchNorm2d if image else nn.BatchNorm1d
                v = v if isinstance(v, dict) else {}  # the engine's defaults, as configs/README.md
                if v.get("conditional"):
                    m = CondBatchNorm(c if image else width, num_classes, image, eps=float(v.get("eps", 1e-5)),
                                      momentum=float(v.get("momentum", 0.1)))
                else:
                    m = bn(c if image else width, eps=float(v.get("eps", 1e-5)),
                           momentum=float(v.get("momentum", 0.1)))
            elif kind == "relu":
                m = nn.ReLU()
            elif kind == "leaky_relu":
                m = nn.LeakyReLU(float(v))
            elif kind == "sigmoid":
                m = nn.Sigmoid()
            elif kind == "tanh":
                m = nn.Tanh()
            elif kind == "dropout":
                m = nn.Dropout(float(v))
            else:
                raise ValueError(f"layer {i}: kind {kind!r} is not supported")
            if _spectral_norm(entry, spec):  # weight_orig, weight_u, weight_v, as the engine's checkpoints
                m = nn.utils.spectral_norm(m, n_power_iterations=1, eps=1e-12)
            self.add_module(str(i), m)
        self.out_dim = c * h * w
        # the conditioner's parameters: registered last so that iterating the layers stays simple
        if mode in ("embed_concat", "embed_multiply"):
            self.condition = nn.Embedding(num_classes, fused - in_dim if mode == "embed_concat" else in_dim)
        elif mode == "label_plane":
            self.condition = nn.Linear(num_classes, cond["embed_dim"])
        elif mode == "projection":  # Glorot uniform, as SNGAN-projection's embedding (the engine's init)
            self.embed = nn.Embedding(num_classes, width)
            nn.init.xavier_uniform_(self.embed.weight)
        self.needs_cond = num_classes > 0 and (mode in ("concat_onehot", "label_plane", "projection")
                                               or has_conditional_bn(spec))

    def layers(self):
        return [(name, m) for name, m in self.named_children() if name not in ("condition", "embed")]

    def forward(self, x, labels=None, cond=None, masks=None):
        """x: [B, in_dim]; labels: [B] ints (embedding modes, or one-hot built from them for
        concat_onehot when `cond` is not given); cond: [B, K] one-hot or multi-hot tag vectors.
        masks: optional {layer index: the engine's tensor} replacing what that layer would decide
        itself, as the parity tests replay a traced step: a dropout's keep mask (0 or 1/(1-p)), a
        ReLU / LeakyReLU's output (kink_side: the side of the kink taken by the values that lie
        within rounding of it; what was decided is appended to self.kink_log). Returns [B, out_dim]
        (images flattened in C, H, W order, as the engine's output)."""
        h = x.reshape(x.shape[0], -1)
        mode = self.mode
        if self.needs_cond and cond is None:
            if labels is None:
                raise ValueError("this network is conditional: give labels or cond")
            cond = F.one_hot(torch.as_tensor(labels).long(), self.num_classes).to(h.dtype)
        if mode == "concat_onehot":
            h = torch.cat([h, cond.to(h.dtype)], 1)
        elif mode == "embed_concat":
            h = torch.cat([h, self.condition(torch.as_tensor(labels).long())], 1)
        elif mode == "embed_multiply":
            h = h * self.condition(torch.as_tensor(labels).long())
        elif mode == "label_plane":
            h = torch.cat([h, self.condition(cond.to(h.dtype))], 1)
        phi = None
        for name, m in self.layers():
            if isinstance(m, (nn.Linear, nn.Unflatten)) and h.dim() > 2:  # a reshape reads the flat values
                h = h.flatten(1)
            phi = h
            if isinstance(m, nn.Dropout) and masks is not None and int(name) in masks:
                h = h * masks[int(name)].reshape(h.shape).to(h.dtype) if self.training else h
            elif isinstance(m, (nn.ReLU, nn.LeakyReLU)) and masks is not None and int(name) in masks:
                slope = m.negative_slope if isinstance(m, nn.LeakyReLU) else 0.0
                h, log = kink_side(h, slope, masks[int(name)])
                self.kink_log.append(dict(layer=int(name), **log))
            elif isinstance(m, CondBatchNorm):
                h = m(h, cond)
            else:
                h = m(h)
        if mode == "projection":  # phi: the last linear's input
            h = h + (cond.to(h.dtype) @ self.embed.weight * phi).sum(1, keepdim=True)
        return h.reshape(h.shape[0], -1)


def data_shape(meta):
    """The data shape a checkpoint's metadata records: dict(channels, height, width, num_classes,
    lo, hi, tag_dim, vocab)."""
    c, h, w = (int(v) for v in meta["data_shape"].split(","))
    lo, hi = (float(v) for v in meta["data_range"].split(","))
    tag_dim = int(meta.get("tag_dim", 0))
    vocab = [l for l in meta.get("vocabulary", "").split("\n") if l] if tag_dim else []
    return dict(channels=c, height=h, width=w, num_classes=int(meta["num_classes"]), lo=lo, hi=hi,
                tag_dim=tag_dim, vocab=vocab)


def condition_width(spec, shape):
    mode = spec.get("condition", {}).get("mode", "none")
    if mode == "none":
        return (shape["tag_dim"] or shape["num_classes"]) if has_conditional_bn(spec) else 0
    if mode in ("embed_concat", "embed_multiply"):
        return shape["num_classes"]
    return shape["tag_dim"] or shape["num_classes"]


def build_models(config, shape):
    """(generator, discriminator) of a config (the normalised form stored in checkpoints)."""
    g, d = config["generator"], config["discriminator"]
    dim = shape["channels"] * shape["height"] * shape["width"]
    G = CganNet(g, g["noise_dim"], condition_width(g, shape))
    D = CganNet(d, dim, condition_width(d, shape))
    return G, D


# ----------------------------------------------------------------------------- DiffAugment

def diff_augment(x, params, config, shape):
    """train.augment as the authors' DiffAugment_pytorch.py computes it (Zhao et al. 2020), on flat
    images x [B, C*H*W], with the engine's draws instead of torch.rand / torch.randint: params
    [B, 8] as the step trace records them (brightness, saturation, contrast, translation rows and
    columns, cutout first row and column, -). The fill is the data range's centre (the reference's
    0 on [-1, 1]; include/cgan/backend/augment.hpp) and the brightness draw is already scaled to the range.
    Differentiable: autograd carries D's gradient back to x."""
    aug = config["train"].get("augment", {"policy": ""})
    policy = [p for p in aug["policy"].split(",") if p]
    if not policy:
        return x
    B = x.shape[0]
    C, H, W = shape["channels"], shape["height"], shape["width"]
    fill = 0.5 * (shape["lo"] + shape["hi"])
    p = params.to(x.dtype)
    x = x.reshape(B, C, H, W)
    one = lambda v: v.reshape(B, 1, 1, 1)  # noqa: E731
    if "color" in policy:
        x = x + one(p[:, 0])                                      # rand_brightness
        m = x.mean(dim=1, keepdim=True)                           # rand_saturation
        x = (x - m) * one(p[:, 1]) + m
        m = x.mean(dim=[1, 2, 3], keepdim=True)                   # rand_contrast
        x = (x - m) * one(p[:, 2]) + m
    if "translation" in policy:                                   # rand_translation
        tx, ty = p[:, 3].long().reshape(B, 1, 1), p[:, 4].long().reshape(B, 1, 1)
        gb, gx, gy = torch.meshgrid(torch.arange(B), torch.arange(H), torch.arange(W), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, H + 1)
        gy = torch.clamp(gy + ty + 1, 0, W + 1)
        x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0], value=fill)
        x = x_pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    if "cutout" in policy:                                        # rand_cutout
        ratio = float(aug.get("cutout", 0.5))
        cs = int(H * ratio + 0.5), int(W * ratio + 0.5)
        off_x = (p[:, 5].long() + cs[0] // 2).reshape(B, 1, 1)  # the reference's offset (the centre)
        off_y = (p[:, 6].long() + cs[1] // 2).reshape(B, 1, 1)
        gb, gx, gy = torch.meshgrid(torch.arange(B), torch.arange(cs[0]), torch.arange(cs[1]), indexing="ij")
        gx = torch.clamp(gx + off_x - cs[0] // 2, min=0, max=H - 1)
        gy = torch.clamp(gy + off_y - cs[1] // 2, min=0, max=W - 1)
        mask = torch.ones(B, H, W, dtype=x.dtype)
        mask[gb, gx, gy] = 0
        x = (x - fill) * mask.unsqueeze(1) + fill
    return x.reshape(B, -1)


# ----------------------------------------------------------------------------- checkpoints

def is_v1_layout(names):
    """Format cgan_gpu.checkpoint.v1 names its tensors "layers.<i>.*" and "cond.*"."""
    return any(n.startswith("layers.") or n.startswith("cond.") for n in names)


def to_torch_names(tensors, spec):
    """{engine v1 name: tensor} of one network (prefix removed) -> {state_dict key: tensor}:
    linear weights [in, out] -> [out, in]; "cond.embedding" -> "condition.weight"; label_plane's
    "cond.weight" [K, H*W] -> "condition.weight" [H*W, K], "cond.bias" -> "condition.bias".
    Names already in PyTorch's layout pass through. Also maps gradients (same names and layout)."""
    if not is_v1_layout(tensors):
        return dict(tensors)
    out = {}
    for name, t in tensors.items():
        if name == "cond.embedding":
            out["condition.weight"] = t
        elif name == "cond.weight":
            out["condition.weight"] = t.t().contiguous()
        elif name == "cond.bias":
            out["condition.bias"] = t
        elif name.startswith("layers."):
            _, i, field = name.split(".", 2)
            kind, _ = _layer(spec["layers"][int(i)])
            if (kind == "linear" and field in ("weight", "weight_orig")) or field in ("gain.weight", "bias.weight"):
                t = t.t().contiguous()
            out[f"{i}.{field}"] = t
        else:
            out[name] = t
    return out


def split_prefix(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_into(net, sd):
    """Loads a converted state dict; a v1 checkpoint has no num_batches_tracked (kept at 0)."""
    own = net.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"checkpoint lacks {missing}")
    for k, v in sd.items():
        if k not in own:
            raise ValueError(f"checkpoint tensor {k!r} has no place in this network")
        if tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f"checkpoint tensor {k!r} has shape {tuple(v.shape)}, the network needs "
                             f"{tuple(own[k].shape)}")
    net.load_state_dict({k: sd.get(k, own[k]).to(own[k].dtype) for k in own})
    return net


class Checkpoint:
    """A loaded checkpoint: .config (dict), .shape (data_shape), .generator, .discriminator, .meta, and
    .generator_ema: the weight average of a run with train.ema ("generator_ema.<key>", the generator's
    state_dict layout), None when the checkpoint has none."""

    def __init__(self, path):
        tensors, self.meta = read_safetensors(path)
        if "config" not in self.meta:
            raise ValueError(f"{path}: no 'config' metadata (not a cgan_gpu checkpoint?)")
        self.config = json.loads(self.meta["config"])
        self.shape = data_shape(self.meta)
        self.generator, self.discriminator = build_models(self.config, self.shape)
        for net, key in ((self.generator, "generator"), (self.discriminator, "discriminator")):
            part = {k: v for k, v in split_prefix(tensors, key + ".").items() if not k.startswith("adam.")}
            load_into(net, to_torch_names(part, self.config[key]))
        self.generator_ema = None
        ema = split_prefix(tensors, "generator_ema.")
        if ema:
            self.generator_ema = build_models(self.config, self.shape)[0]
            load_into(self.generator_ema, ema)


def load_checkpoint(path):
    return Checkpoint(path)


# ----------------------------------------------------------------------------- losses

def loss_term(kind, out, target, weight=1.0):
    """One term of a config's loss as the engine computes it (a batch mean times `weight`) from D's raw
    outputs `out`: kind "log" (and "three_term") BCE with logits against `target`; "squared"
    (out - target)^2; "hinge" relu(1 - y out) with y = 2 target - 1 (D's terms: target 1 for real pairs,
    0 for fakes and the mismatched pair); "linear" -y out (G's hinge loss -D(G(z)), target 1)."""
    out = out.reshape(-1)
    if kind in ("log", "three_term"):
        return weight * F.binary_cross_entropy_with_logits(out, torch.full_like(out, float(target)))
    if kind == "squared":
        return weight * ((out - float(target)) ** 2).mean()
    y = 2.0 * float(target) - 1.0
    if kind == "hinge":
        return weight * F.relu(1.0 - y * out).mean()
    if kind == "linear":
        return weight * (-(y * out)).mean()
    raise ValueError(f"unknown loss kind {kind!r}")


def loss_kinds(loss_cfg):
    """(D's kind, G's kind, mismatched pair or None) of a config's "loss" section: hinge trains G with
    -D(G(z)); three_term is log with the real_other_tags pair unless "mismatch" says otherwise."""
    kind = loss_cfg["kind"]
    base = "log" if kind == "three_term" else kind
    mismatch = loss_cfg.get("mismatch", "real_other_tags" if kind == "three_term" else "none")
    return base, ("linear" if base == "hinge" else base), (None if mismatch == "none" else mismatch)


# ----------------------------------------------------------------------------- sampling

def tags_vector(text, vocab):
    """'blue hair, red eyes' -> multi-hot over the vocabulary (phrases matched whole, any case)."""
    v = torch.zeros(len(vocab))
    for piece in text.split(","):
        p = " ".join(piece.lower().split())
        if not p:
            continue
        if p not in vocab:
            raise ValueError(f"--tags: {p!r} is not in this model's vocabulary ({', '.join(vocab)})")
        v[vocab.index(p)] = 1
    return v


def make_grid(samples, shape, rows, cols, pad=2):
    """As the engine's make_grid: grey (128) borders of `pad` pixels, values lo..hi -> 0..255."""
    c, h, w = shape["channels"], shape["height"], shape["width"]
    W, H = cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad
    img = torch.full((H, W, c), 128, dtype=torch.uint8)
    t = (samples.float().reshape(-1, c, h, w) - shape["lo"]) * (255.0 / (shape["hi"] - shape["lo"]))
    b = torch.floor(t + 0.5).clamp(0, 255).nan_to_num(0).to(torch.uint8)
    for cell in range(rows * cols):
        x0, y0 = pad + (cell % cols) * (w + pad), pad + (cell // cols) * (h + pad)
        img[y0:y0 + h, x0:x0 + w] = b[cell].permute(1, 2, 0) if cell < b.shape[0] else 0
    return img


def write_png(path, img):
    """PNG of an [H, W, C] uint8 tensor (C 1 or 3), standard library only."""
    H, W, C = img.shape
    rows = b"".join(b"\x00" + bytes(img[y].reshape(-1).tolist()) for y in range(H))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0 if C == 1 else 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def generate(ck, noise, labels=None, cond=None, ema=True):
    """Samples in evaluation mode from the averaged generator when the checkpoint has one (as
    `cgan_gpu sample` does), else (or with ema=False) from the raw one."""
    G = (ck.generator_ema if ema and ck.generator_ema is not None else ck.generator).eval()
    with torch.no_grad():
        return G(noise, labels=labels, cond=cond)


def cmd_sample(argv):
    ap = argparse.ArgumentParser(prog="cgan_torch.py sample")
    ap.add_argument("checkpoint")
    ap.add_argument("--labels", help="one image per listed label, e.g. 3,1,4")
    ap.add_argument("--tags", help="tagged models: phrases of the vocabulary, e.g. 'blue hair, red eyes'")
    ap.add_argument("--count", type=int, default=16, help="images for --tags or unconditional models")
    ap.add_argument("--noise", help="a `cgan_gpu sample --save-tensors` file: its noise and labels")
    ap.add_argument("--seed", type=int, default=1, help="torch.manual_seed for the noise (without --noise)")
    ap.add_argument("--out", default="result.png")
    ap.add_argument("--no-ema", action="store_true", help="the raw generator, not train.ema's average")
    a = ap.parse_args(argv)
    use_ema = not a.no_ema
    ck = load_checkpoint(a.checkpoint)
    nz = ck.config["generator"]["noise_dim"]
    k = condition_width(ck.config["generator"], ck.shape)
    labels = cond = None
    if a.noise:
        t, meta = read_safetensors(a.noise)
        noise = t["noise"]
        labels = t["labels"].long()
        cond = t.get("cond")
        n = noise.shape[0]
        use_ema = use_ema and meta.get("generator", "generator_ema") == "generator_ema"  # what the engine used
        if "grid" in meta:
            rows, cols = (int(v) for v in meta["grid"].split(","))
    else:
        torch.manual_seed(a.seed)
        if k and ck.shape["tag_dim"]:
            if not a.tags:
                sys.exit("cgan_torch.py: this model is conditioned on tags: give --tags")
            n = a.count
            cond = tags_vector(a.tags, ck.shape["vocab"]).repeat(n, 1)
            labels = torch.zeros(n, dtype=torch.long)
        elif k:
            if not a.labels:
                sys.exit("cgan_torch.py: this model is conditional: give --labels 3,1,4")
            labels = torch.tensor([int(v) for v in a.labels.split(",")])
            if labels.min() < 0 or labels.max() >= ck.shape["num_classes"]:
                sys.exit(f"cgan_torch.py: labels must be in 0..{ck.shape['num_classes'] - 1}")
            n = len(labels)
        else:
            n = a.count
        noise = torch.randn(n, nz)
    out = generate(ck, noise, labels, cond, ema=use_ema)
    if a.noise and "grid" in meta:
        pass  # the engine's layout
    elif a.labels:
        rows, cols = 1, n  # one row, as `cgan_gpu sample --labels`
    else:
        cols = math.ceil(math.sqrt(n))
        rows = (n + cols - 1) // cols
    if ck.shape["channels"] == 1 and ck.shape["height"] == 1:
        sys.exit("cgan_torch.py: point data (2-D) has no image; use generate() from Python")
    write_png(a.out, make_grid(out, ck.shape, rows, cols))
    print(f"cgan_torch.py: wrote {a.out} ({n} samples)", file=sys.stderr)
    return 0

# ----------------------------------------------------------------------------- export

EXPORT_FORMATS = ("onnx", "torchscript")


def export_inputs(ck):
    """The exported generator's inputs after "noise" [B, noise_dim] float32: "label" [B] int64 (a
    model conditioned on class labels), "tags" [B, tag_dim] float32 multi-hot (a tagged model), or
    nothing (an unconditional one). Returns (name or None, width)."""
    k = condition_width(ck.config["generator"], ck.shape)
    if k == 0:
        return None, 0
    if ck.shape["tag_dim"]:
        if ck.config["generator"].get("condition", {}).get("mode", "none") in ("embed_concat", "embed_multiply"):
            raise ValueError("an embedding condition on tagged data cannot be exported")
        return "tags", ck.shape["tag_dim"]
    return "label", ck.shape["num_classes"]


class _ExportUnflatten(nn.Unflatten):
    """nn.Unflatten(1, (C, H, W)) as a reshape: torch 1.13's ONNX exporter has no aten::unflatten."""

    def forward(self, x):
        return x.reshape((x.shape[0],) + tuple(self.unflattened_size))


def fold_generator(G):
    """A copy of G for export, in evaluation mode (batch norm with its running statistics, dropout off)
    with every spectral norm folded into the weights: W / sigma, sigma = u . (W v) from the stored u and
    v, no power iteration (torch.nn.utils.remove_spectral_norm in eval mode computes exactly this)."""
    from torch.nn.utils.spectral_norm import SpectralNorm  # (nn.utils.spectral_norm is the function)
    G = copy.deepcopy(G).eval()
    for m in G.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                nn.utils.remove_spectral_norm(m, hook.name)
    for name, m in list(G.named_children()):
        if type(m) is nn.Unflatten:
            setattr(G, name, _ExportUnflatten(m.dim, m.unflattened_size))
    for p in G.parameters():
        p.requires_grad_(False)
    return G


class ExportedGenerator(nn.Module):
    """forward(noise[, label | tags]) -> images [B, C, H, W] (the data range, as `cgan_gpu sample`'s
    values). A label becomes the one-hot vector the engine builds (label == arange(K))."""

    def __init__(self, G, shape, cond_input, width):
        super().__init__()
        self.G, self.cond_input = G, cond_input
        self.chw = (shape["channels"], shape["height"], shape["width"])
        self.register_buffer("classes", torch.arange(max(width, 1), dtype=torch.long))

    def forward(self, noise, c=None):
        if self.cond_input == "label":
            onehot = (c.reshape(-1, 1) == self.classes.reshape(1, -1)).to(noise.dtype)
            out = self.G(noise, labels=c, cond=onehot)
        elif self.cond_input == "tags":
            out = self.G(noise, labels=torch.zeros_like(c[:, 0]).long(), cond=c)
        else:
            out = self.G(noise)
        return out.reshape(out.shape[0], self.chw[0], self.chw[1], self.chw[2])


def export_module(ck, ema=True):
    """(module, example inputs, input names) of a checkpoint's generator ready for tracing: the
    average (train.ema) when the checkpoint holds one and ema, else the raw generator."""
    G = ck.generator_ema if ema and ck.generator_ema is not None else ck.generator
    cond_input, width = export_inputs(ck)
    m = ExportedGenerator(fold_generator(G), ck.shape, cond_input, width).eval()
    B, nz = 2, ck.config["generator"]["noise_dim"]
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(B, nz, generator=g)]
    names = ["noise"]
    if cond_input == "label":
        args.append(torch.arange(B, dtype=torch.long) % max(width, 1))
        names.append("label")
    elif cond_input == "tags":
        args.append((torch.rand(B, width, generator=g) < 0.5).float())
        names.append("tags")
    return m, tuple(args), names


def export_checkpoint(ckpt, fmt, out, ema=True):
    """Writes the generator of checkpoint `ckpt` to `out` as ONNX (opset 14) or TorchScript (traced),
    with a dynamic batch axis. The file appears only when complete (a temporary name, then a rename)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown --format {fmt!r} (onnx or torchscript)")
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise ValueError(f"{out}: cannot write (no directory {d})")
    if os.path.isdir(out):
        raise ValueError(f"{out}: is a directory")
    if not os.access(d, os.W_OK):
        raise ValueError(f"{out}: cannot write (directory {d} is not writable)")
    try:
        ck = load_checkpoint(ckpt)
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        raise ValueError(f"{ckpt}: not a readable cgan_gpu checkpoint ({_one_line(e)})") from None
    m, args, names = export_module(ck, ema)
    used = "generator_ema" if ema and ck.generator_ema is not None else "generator"
    tmp = os.path.join(d, f".{os.path.basename(out)}.part-{os.getpid()}")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if fmt == "torchscript":
                traced = torch.jit.trace(m, args, check_trace=False)
                meta = dict(generator=used, inputs=names, output="images", data_shape=ck.meta["data_shape"],
                            data_range=ck.meta["data_range"], vocabulary=ck.shape["vocab"], config=ck.config["name"])
                torch.jit.save(traced, tmp, _extra_files={"cgan_export.json": json.dumps(meta)})
            else:
                axes = {n: {0: "batch"} for n in names + ["images"]}
                torch.onnx.export(m, args, tmp, input_names=names, output_names=["images"], dynamic_axes=axes,
                                  opset_version=14, do_constant_folding=True)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return used, names


def _one_line(e):
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def cmd_export(argv):
    ap = argparse.ArgumentParser(prog="cgan_torch.py export")
    ap.add_argument("checkpoint")
    ap.add_argument("--format", required=True, help="onnx | torchscript")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-ema", action="store_true", help="the raw generator, not train.ema's average")
    a = ap.parse_args(argv)
    if a.format not in EXPORT_FORMATS:
        ap.exit(2, f"cgan_torch.py export: unknown --format {a.format!r} (onnx or torchscript)\n")
    try:
        used, names = export_checkpoint(a.checkpoint, a.format, a.out, ema=not a.no_ema)
    except (ValueError, KeyError, OSError) as e:
        sys.exit(f"cgan_torch.py export: {_one_line(e)}")
    except Exception as e:  # noqa: BLE001 (PyTorch's tracer and exporter: one line too, with its kind)
        sys.exit(f"cgan_torch.py export: {a.format} export failed: {type(e).__name__}: {_one_line(e)}")
    print(f"cgan_torch.py: wrote {a.out} ({a.format}; {used}; inputs {', '.join(names)}; output images)",
          file=sys.stderr)
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "sample":
        try:
            return cmd_sample(argv[1:])
        except (ValueError, KeyError, OSError) as e:  # a bad file or argument: one line, no traceback
            sys.exit(f"cgan_torch.py: {e}")
    if argv[0] == "export":
        return cmd_export(argv[1:])
    sys.exit(f"cgan_torch.py: unknown command {argv[0]!r} (try --help)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
