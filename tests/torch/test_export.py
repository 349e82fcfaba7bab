#!/usr/bin/env python3
"""`cgan_gpu export` (issue 21): the exported generator's images equal `cgan_gpu sample`'s.

    test_export.py --binary build/cgan_gpu --config configs/X.json --workdir DIR --sample-args "..."
                   [--set K=V]... [--bad-inputs] [--node node]

Trains a few steps (so batch-norm statistics are not at their initial values), samples with
`cgan_gpu sample --save-tensors` (a batch other than the one the export traced with), exports with
`cgan_gpu export` and checks, for the same noise and labels (or tag vectors):
  (a) --format torchscript: torch.jit.load's module gives the engine's values to 1e-5 (max abs);
  (b) --format onnx: onnx.checker.check_model (Debian's python3-onnx) accepts the file, and
      onnxruntime-node (tools/node, installed by tools/setup.sh --tests) run by tests/torch/onnx_run.js
      gives the engine's values to 1e-5.
A checkpoint with train.ema's average: both sides use it by default, and with --no-ema both use the raw
generator. --expect-spectral-norm: G must have spectrally normalised layers (folded by the export).
--bad-inputs also checks the errors: a corrupt checkpoint, an output directory that does
not exist and a Python without PyTorch (exit 1, one line naming the problem, no output file), an
unknown --format (exit 2). Anything missing (python3-onnx, node, onnxruntime-node) fails the test,
saying what and why.
"""
import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.join(here, "..", "..", "tools")
sys.path.insert(0, tools)
import cgan_torch  # noqa: E402

TOL = 1e-5


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print(" ".join(shlex.quote(c) for c in cmd), "\n", r.stdout, r.stderr)
        raise SystemExit("FAIL: command failed")
    return r


class Checks:
    def __init__(self):
        self.ok = True

    def expect(self, cond, msg):
        print(("  ok: " if cond else "FAIL: ") + msg)
        self.ok = self.ok and bool(cond)


def cond_input(t, names):
    """The exported module's inputs from a --save-tensors file: noise, then label (int64) or tags."""
    args = [t["noise"].float().contiguous()]
    if "label" in names:
        args.append(t["labels"].long().contiguous())
    elif "tags" in names:
        args.append(t["cond"].float().contiguous())
    return args


def check_torchscript(c, binary, ckpt, t, meta, wd, extra):
    out = os.path.join(wd, "g.pt")
    run([binary, "export", "--checkpoint", ckpt, "--format", "torchscript", "--out", out] + extra)
    files = {"cgan_export.json": ""}
    m = torch.jit.load(out, _extra_files=files)
    info = json.loads(files["cgan_export.json"])
    c.expect(info["generator"] == meta.get("generator", "generator"),
             f"torchscript exported {info['generator']}, the engine sampled {meta.get('generator')}")
    with torch.no_grad():
        img = m(*cond_input(t, info["inputs"]))
    ref = t["samples"].reshape(img.shape[0], -1)
    err = (img.reshape(img.shape[0], -1) - ref).abs().max().item()
    c.expect(err <= TOL, f"torchscript {extra or ''} inputs {info['inputs']}: {tuple(img.shape)}, "
                         f"max |export - engine| = {err:.3e} (<= {TOL})")
    return info["inputs"]


def check_onnx(c, binary, ckpt, t, wd, names, node, extra):
    out = os.path.join(wd, "g.onnx")
    run([binary, "export", "--checkpoint", ckpt, "--format", "onnx", "--out", out] + extra)
    try:
        import onnx
    except ImportError as e:
        c.expect(False, f"cannot check the ONNX file: python3-onnx is not installed for {sys.executable} "
                        f"({e}; tools/setup.sh --tests installs it)")
        return
    model = onnx.load(out)
    try:
        onnx.checker.check_model(model, full_check=True)
        c.expect(True, f"onnx.checker.check_model (onnx {onnx.__version__}, opset "
                       f"{model.opset_import[0].version}) accepts {os.path.basename(out)}")
    except Exception as e:  # noqa: BLE001 (the checker's own exception types vary by version)
        c.expect(False, f"onnx.checker.check_model rejects the file: {str(e).splitlines()[0]}")
    got = [i.name for i in model.graph.input]
    c.expect(got == names, f"ONNX inputs {got} (expected {names})")
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    c.expect(isinstance(dims[0], str) and dims[0], f"ONNX batch axis is dynamic ({dims})")
    spec = {}
    for name, a in zip(names, cond_input(t, names)):
        f = os.path.join(wd, f"{name}.bin")
        a.numpy().tofile(f)
        spec[name] = dict(dtype="float32" if a.dtype == torch.float32 else "int64", shape=list(a.shape),
                          file=os.path.basename(f))
    with open(os.path.join(wd, "inputs.json"), "w") as fh:
        json.dump(spec, fh)
    if shutil.which(node) is None and not os.path.exists(node):
        c.expect(False, f"cannot run the ONNX file: node ({node}) not found (tools/setup.sh installs npm/nodejs)")
        return
    outbin = os.path.join(wd, "images.bin")
    r = subprocess.run([node, os.path.join(here, "onnx_run.js"), out, os.path.join(wd, "inputs.json"), outbin],
                       capture_output=True, text=True)
    if r.returncode != 0:
        c.expect(False, f"onnxruntime-node could not run the file: {(r.stderr or r.stdout).strip()}")
        return
    res = json.loads(r.stdout.strip().splitlines()[-1])
    img = torch.from_numpy(__import__("numpy").fromfile(outbin, dtype="float32").copy())
    ref = t["samples"].reshape(-1)
    if img.numel() != ref.numel():
        c.expect(False, f"onnxruntime-node returned {res['dims']}, the engine {tuple(t['samples'].shape)}")
        return
    err = (img - ref).abs().max().item()
    c.expect(err <= TOL, f"onnxruntime-node {res['dims']}: max |export - engine| = {err:.3e} (<= {TOL})")


def check_bad_inputs(c, binary, ckpt, wd):
    def expect_error(what, cmd, code, needle, out, env=None):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        leftovers = glob.glob(os.path.join(os.path.dirname(out), "*" + os.path.basename(out) + "*"))
        c.expect(r.returncode == code and len(lines) == 1 and needle in lines[0] and not leftovers,
                 f"{what}: exit {r.returncode} (want {code}), stderr {lines!r} (one line naming "
                 f"{needle!r}), files left {leftovers}")

    bad = os.path.join(wd, "corrupt.safetensors")
    with open(ckpt, "rb") as f:
        raw = f.read()
    with open(bad, "wb") as f:
        f.write(raw[: len(raw) // 2])  # cut short
    out = os.path.join(wd, "bad_out.onnx")
    expect_error("corrupt checkpoint", [binary, "export", "--checkpoint", bad, "--format", "onnx", "--out", out],
                 1, bad, out)
    with open(bad, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    expect_error("garbage checkpoint", [binary, "export", "--checkpoint", bad, "--format", "torchscript",
                                        "--out", out], 1, bad, out)
    expect_error("unknown format", [binary, "export", "--checkpoint", ckpt, "--format", "tflite", "--out", out],
                 2, "tflite", out)
    missing = os.path.join(wd, "no_such_dir", "g.onnx")
    expect_error("output directory missing", [binary, "export", "--checkpoint", ckpt, "--format", "onnx",
                                              "--out", missing], 1, missing, missing)
    # A Python without PyTorch: Debian's interpreter with its site-packages (dist-packages) turned off.
    wrapper = os.path.join(wd, "python_without_torch")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S -E \"$@\"\n")
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, CGAN_PYTHON=wrapper)
    expect_error("PyTorch missing", [binary, "export", "--checkpoint", ckpt, "--format", "onnx", "--out", out],
                 1, "PyTorch is not installed", out, env=env)
    env = dict(os.environ, CGAN_PYTHON=os.path.join(wd, "no_such_python"))
    expect_error("interpreter missing", [binary, "export", "--checkpoint", ckpt, "--format", "onnx", "--out", out],
                 1, "no_such_python", out, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sample-args", required=True)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--bad-inputs", action="store_true")
    ap.add_argument("--node", default="node")
    ap.add_argument("--expect-spectral-norm", action="store_true",
                    help="fail unless the generator has spectrally normalised layers (to be folded)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    shutil.rmtree(a.workdir, ignore_errors=True)  # a failed run's directory is kept for a look until the next
    os.makedirs(a.workdir, exist_ok=True)
    wd = os.path.abspath(a.workdir)
    train = [a.binary, "train", "--config", a.config, "--out", wd, "--device", "cpu",
             "--set", "train.steps=3", "--set", "log.progress=none"]
    for s in a.sets:
        train += ["--set", s]
    run(train)
    ckpt = os.path.join(wd, "checkpoints", "step_3.safetensors")
    ck = cgan_torch.load_checkpoint(ckpt)
    c = Checks()
    print(f"{ck.config['name']}: generator_ema {'present' if ck.generator_ema is not None else 'absent'}")
    sn = sum(1 for k in ck.generator.state_dict() if k.endswith("weight_orig"))
    print(f"  generator: {sn} spectrally normalised layers")
    if a.expect_spectral_norm:
        c.expect(sn > 0, f"the generator has {sn} spectrally normalised layers (expected some)")
    variants = [[]] + ([["--no-ema"]] if ck.generator_ema is not None else [])
    for extra in variants:
        inputs = os.path.join(wd, "inputs.safetensors")
        run([a.binary, "sample", "--checkpoint", ckpt, "--device", "cpu", "--out", os.path.join(wd, "engine.png"),
             "--save-tensors", inputs] + shlex.split(a.sample_args) + extra)
        t, meta = cgan_torch.read_safetensors(inputs)
        names = check_torchscript(c, a.binary, ckpt, t, meta, wd, extra)
        check_onnx(c, a.binary, ckpt, t, wd, names, a.node, extra)
    if a.bad_inputs:
        check_bad_inputs(c, a.binary, ckpt, wd)
    print("PASS" if c.ok else "FAIL")
    if c.ok:
        shutil.rmtree(a.workdir, ignore_errors=True)  # kept on failure, for a look
    return 0 if c.ok else 1


if __name__ == "__main__":
    sys.exit(main())
