"""The checkpoint layout is PyTorch's: a fresh checkpoint's "generator." and "discriminator." tensors
load with strict load_state_dict into torch.nn.Sequential networks built by hand from the config
stored in the checkpoint (children named by their index in the config's layers, plus "condition";
spectrally normalised layers wrapped with torch.nn.utils.spectral_norm).

The file itself is checked from its own JSON header and bytes, not through the loaded modules
(load_state_dict converts dtypes silently): every "num_batches_tracked" is I64 with shape [], every
other tensor F32, each tensor's data_offsets span exactly its shape's bytes; and every tensor of the
loaded networks equals the values decoded from those bytes with struct (little-endian '<f' / '<q'),
independently of the reader that fed load_state_dict.

usage: test_state_dict.py CGAN_GPU_BINARY SOURCE_DIR
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    buf = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(buf[b:e], DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, meta


# the dtypes a checkpoint may hold, as its header spells them: struct format and item size
FILE_DTYPES = {"F32": ("<f", 4), "I64": ("<q", 8)}


def read_header(path):
    """(header {name: {"dtype", "shape", "data_offsets"}} without "__metadata__", raw bytes, data start)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    return header, raw, 8 + n


def check_file_dtypes(path):
    """Every tensor's dtype and shape as the file's own header states them: num_batches_tracked I64
    scalars, everything else F32, data_offsets spanning exactly the shape's bytes. Returns
    {name: flat list of values} decoded from the file's bytes with struct (independent of
    read_safetensors / numpy / torch)."""
    header, raw, start = read_header(path)
    values = {}
    for name, info in header.items():
        dt, shape = info["dtype"], info["shape"]
        if name.endswith("num_batches_tracked"):
            assert dt == "I64" and shape == [], f"{path}: {name} is {dt} {shape} in the file, expected I64 []"
        else:
            assert dt == "F32", f"{path}: {name} is {dt} in the file, expected F32"
        fmt, size = FILE_DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        b, e = info["data_offsets"]
        assert e - b == count * size, f"{path}: {name} spans {e - b} bytes, {dt} {shape} needs {count * size}"
        values[name] = list(struct.unpack(f"<{count}{fmt[1]}", raw[start + b:start + e]))
    return values


def same_as_file(module_tensor, file_values, label):
    """A loaded module's tensor equals the file's values exactly (float32 / int64 as stored)."""
    v = module_tensor.detach()
    assert v.numel() == len(file_values), (label, v.numel(), len(file_values))
    if v.dtype == torch.int64:
        assert v.reshape(-1).tolist() == file_values, (label, "differs from the file")
    else:
        assert v.dtype == torch.float32, (label, v.dtype)
        assert torch.equal(v.reshape(-1), torch.tensor(file_values, dtype=torch.float32)), (label, "differs from the file")


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


class CondBN(nn.Module):
    """Conditional batch norm's tensors: gain and bias nn.Linear(K, C, bias=False) and the statistics."""

    def __init__(self, c, k):
        super().__init__()
        self.gain, self.bias = nn.Linear(k, c, bias=False), nn.Linear(k, c, bias=False)
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))


def build(net, width, cond_in):
    """nn.Sequential for one network (parameters and shapes only: enough for load_state_dict);
    width: the input width after the conditioner; cond_in: the label / tag-vector width."""
    seq, shape = nn.Sequential(), (width,)
    last_in = width
    for i, layer in enumerate(net["layers"]):
        kind = next(k for k in layer if k != "spectral_norm")  # the config in effect says it beside the type
        arg = layer[kind]
        last_in = int(np.prod(shape))
        if kind == "linear":
            m, shape = nn.Linear(int(np.prod(shape)), arg), (arg,)
        elif kind == "conv2d":
            k, s, p = pair(arg["kernel"]), pair(arg.get("stride", 1)), pair(arg.get("padding", 0))
            m = nn.Conv2d(shape[0], arg["out"], k, s, p)
            shape = (arg["out"], (shape[1] + 2 * p[0] - k[0]) // s[0] + 1, (shape[2] + 2 * p[1] - k[1]) // s[1] + 1)
        elif kind == "batchnorm" and arg.get("conditional"):
            m = CondBN(shape[0], cond_in)
        elif kind == "batchnorm":
            bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            m = bn(shape[0], eps=arg.get("eps", 1e-5), momentum=arg.get("momentum", 0.1))
        elif kind == "reshape":
            m, shape = nn.Unflatten(1, tuple(arg)), tuple(arg)
        elif kind in ("avgpool2d", "maxpool2d"):
            k, s = pair(arg["kernel"]), pair(arg.get("stride", arg["kernel"]))
            p = pair(arg.get("padding", 0))
            m = nn.Identity()  # no parameters; only the shape matters here
            shape = (shape[0], (shape[1] + 2 * p[0] - k[0]) // s[0] + 1, (shape[2] + 2 * p[1] - k[1]) // s[1] + 1)
        else:  # activations and dropout hold no parameters
            m = nn.Identity()
        if layer.get("spectral_norm"):  # weight_orig, weight_u, weight_v
            m = nn.utils.spectral_norm(m)
        seq.add_module(str(i), m)
    mode, emb = net["condition"]["mode"], net["condition"].get("embed_dim")
    if mode in ("embed_concat", "embed_multiply"):
        seq.add_module("condition", nn.Embedding(cond_in, emb or cond_in))
    elif mode == "label_plane":
        seq.add_module("condition", nn.Linear(cond_in, emb))
    elif mode == "projection":  # the label embedding, as wide as the last linear's input
        seq.add_module("embed", nn.Embedding(cond_in, last_in))
    return seq


def cond_width(net, k):
    mode, emb = net["condition"]["mode"], net["condition"].get("embed_dim")
    return {"none": 0, "concat_onehot": k, "embed_concat": emb or k, "embed_multiply": 0, "label_plane": emb,
            "projection": 0}[mode]


def check(binary, source, config, sets, tmp, tag=""):
    name = os.path.splitext(os.path.basename(config))[0] + tag
    out = os.path.join(tmp, name)
    args = [binary, "--config", config, "--out", out]
    for s in ["train.steps=2"] + sets:
        args += ["--set", s]
    r = subprocess.run(args, cwd=source, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    path = os.path.join(out, "checkpoints", "step_2.safetensors")
    file_values = check_file_dtypes(path)  # the header's dtypes and shapes, and the bytes decoded independently
    tensors, meta = read_safetensors(path)
    assert meta["format"] == "cgan_gpu.checkpoint.v2", meta["format"]
    cfg = json.loads(meta["config"])
    c, h, w = map(int, meta["data_shape"].split(","))
    k = int(meta.get("tag_dim", meta["num_classes"]))
    for net, width in (("generator", cfg["generator"]["noise_dim"]), ("discriminator", c * h * w)):
        seq = build(cfg[net], width + cond_width(cfg[net], k), k)
        sd = {n[len(net) + 1:]: torch.from_numpy(v.copy()) for n, v in tensors.items() if n.startswith(net + ".")}
        seq.load_state_dict(sd, strict=True)  # raises on a missing, unexpected or misshapen tensor
        for n, v in seq.state_dict().items():  # against the file's bytes, not against sd (what was loaded)
            same_as_file(v, file_values[f"{net}.{n}"], (net, n))
            if n.endswith("num_batches_tracked"):
                assert v.dtype == torch.int64 and v.dim() == 0 and int(v) > 0, (net, n, v)
        for n, p in seq.named_parameters():  # Adam's moments, one per parameter, in its layout
            for which in "mv":
                assert tensors[f"optim.{net}.{which}.{n}"].shape == tuple(p.shape), (net, which, n)
        print(f"{name}: {net} loads strictly ({len(sd)} tensors)")
    # train.ema's average: "generator_ema." + the generator's state_dict keys, loading strictly into the same network
    ema = {n[len("generator_ema."):]: torch.from_numpy(v.copy()) for n, v in tensors.items()
           if n.startswith("generator_ema.")}
    assert bool(ema) == ("ema" in cfg["train"]), (name, "generator_ema tensors iff train.ema")
    if ema:
        seq = build(cfg["generator"], cfg["generator"]["noise_dim"] + cond_width(cfg["generator"], k), k)
        seq.load_state_dict(ema, strict=True)
        for n, v in seq.state_dict().items():
            same_as_file(v, file_values[f"generator_ema.{n}"], ("generator_ema", n))
        print(f"{name}: generator_ema loads strictly ({len(ema)} tensors)")


def main():
    binary, source = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        check(binary, source, "configs/mnist_gan.json", ["train.batch_size=8"], tmp)
        check(binary, source, "configs/mnist_lsgan_embed.json", ["train.batch_size=8"], tmp)
        check(binary, source, "configs/anime_small.json", ["train.batch_size=4", "data.count=64"], tmp)
        # a projection discriminator and conditional batch norm (dense with labels, conv with tags)
        check(binary, source, "tests/torch/configs/anime_projection_cbn.json", ["train.batch_size=4"], tmp)
        check(binary, source, "tests/torch/configs/mnist_projection_cbn.json", ["train.batch_size=8"], tmp)
        check(binary, source, "configs/mnist_lsgan_embed.json", ["train.batch_size=8", "train.ema={}"], tmp, "_ema")
        check(binary, source, "configs/anime_small.json", ["train.batch_size=4", "data.count=64",
                                                           "generator.spectral_norm=true",
                                                           "discriminator.spectral_norm=true"], tmp, "_sn")


if __name__ == "__main__":
    main()
