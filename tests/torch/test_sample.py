#!/usr/bin/env python3
"""tools/cgan_torch.py samples equal `cgan_gpu sample`'s given the same noise (issue 11).

    test_sample.py --binary build/cgan_gpu --config configs/X.json --workdir DIR --sample-args "..." [--set K=V]...

Trains a few steps (so batch-norm statistics are not at their initial values), samples with
`cgan_gpu sample --save-tensors`, rebuilds the generator from the checkpoint with cgan_torch.py and
checks: the generated values equal the engine's to 1e-5 (max abs, float32 both); `cgan_torch.py
sample --noise` writes a PNG of the same size whose pixels differ from the engine's by at most one
level (rounding of values that sit on a level boundary) and only rarely. With train.ema in the
config the checkpoint must hold the average ("generator_ema.*", and only then), and the raw
generator's samples must differ from the engine's (which sampled the average) by more than 1e-3.
"""
import argparse
import os
import shutil
import shlex
import subprocess
import sys

import torch
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.join(here, "..", "..", "tools")
sys.path.insert(0, tools)
import cgan_torch  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(" ".join(shlex.quote(c) for c in cmd), "\n", r.stdout, r.stderr)
        raise SystemExit("FAIL: command failed")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sample-args", required=True)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    a = ap.parse_args()
    torch.set_num_threads(1)
    # A failed run keeps its work directory for a look; the next run starts from an empty one (else
    # the engine refuses it: "already holds a run").
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir, exist_ok=True)
    train = [a.binary, "train", "--config", a.config, "--out", a.workdir, "--device", "cpu",
             "--set", "train.steps=3", "--set", "log.progress=none"]
    for s in a.sets:
        train += ["--set", s]
    run(train)
    ckpt = os.path.join(a.workdir, "checkpoints", "step_3.safetensors")
    inputs = os.path.join(a.workdir, "inputs.safetensors")
    png_engine, png_torch = os.path.join(a.workdir, "engine.png"), os.path.join(a.workdir, "torch.png")
    run([a.binary, "sample", "--checkpoint", ckpt, "--device", "cpu", "--out", png_engine, "--save-tensors", inputs]
        + shlex.split(a.sample_args))
    t, inputs_meta = cgan_torch.read_safetensors(inputs)
    ck = cgan_torch.load_checkpoint(ckpt)
    out = cgan_torch.generate(ck, t["noise"], t["labels"].long(), t.get("cond"))
    err = (out - t["samples"]).abs().max().item()
    print(f"{ck.config['name']}: {out.shape[0]} samples, max |torch - engine| = {err:.3e}")
    ok = err <= 1e-5
    if "ema" in ck.config["train"] and ck.generator_ema is None:  # the average must be there to be sampled
        print("FAIL: the config has train.ema but the checkpoint holds no generator_ema tensors")
        ok = False
    if "ema" not in ck.config["train"] and ck.generator_ema is not None:
        print("FAIL: the checkpoint holds generator_ema tensors but the config has no train.ema")
        ok = False
    if ck.generator_ema is not None:  # train.ema: the engine sampled the average, which is not the raw generator
        if inputs_meta.get("generator") != "generator_ema":
            print(f"FAIL: the engine sampled {inputs_meta.get('generator')!r}, not the average (generator_ema)")
            ok = False
        raw = cgan_torch.generate(ck, t["noise"], t["labels"].long(), t.get("cond"), ema=False)
        gap = (raw - t["samples"]).abs().max().item()
        print(f"  averaged generator (train.ema); the raw one differs by {gap:.3e}")
        ok = ok and gap > 1e-3
    run([sys.executable, os.path.join(tools, "cgan_torch.py"), "sample", ckpt, "--noise", inputs, "--out", png_torch])
    a_img = torch.tensor(list(Image.open(png_engine).getdata()), dtype=torch.int32)
    b_img = torch.tensor(list(Image.open(png_torch).getdata()), dtype=torch.int32)
    if Image.open(png_engine).size != Image.open(png_torch).size:
        print(f"FAIL: PNG sizes differ: engine {Image.open(png_engine).size}, torch {Image.open(png_torch).size}")
        return 1
    diff = (a_img - b_img).abs()
    frac = (diff > 0).double().mean().item()
    print(f"  PNG: max pixel difference {diff.max().item()}, {frac:.2e} of the values differ")
    ok = ok and diff.max().item() <= 1 and frac <= 1e-3
    print("PASS" if ok else "FAIL")
    if ok:
        shutil.rmtree(a.workdir, ignore_errors=True)  # kept on failure, for a look
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
