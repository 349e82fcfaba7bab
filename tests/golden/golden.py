#!/usr/bin/env python3
"""Golden results: a refactor changes no bit.

For every shipped experiment config (configs/*.json but the classifier specs) this trains a few CPU
steps from the config's fixed seed (small batch and data set where the config is large), then hashes
(SHA-256) every tensor of the final checkpoint and the run's losses.csv and losses_avg.csv.

    golden.py record --binary build/cgan_gpu --workdir /tmp/g     # rewrites tests/golden/goldens.json
    golden.py check  --binary build/cgan_gpu --workdir /tmp/g     # compares with it (the CTest case)

The bits must not depend on the machine the test lands on, so every run pins what would otherwise
pick its arithmetic at run time: oneDNN's sgemm dispatches on the instruction set it detects
(AVX-512 here, maybe AVX2 on a CI host), so ONEDNN_MAX_CPU_ISA=AVX2 caps it; OpenBLAS (the LAPACK
calls, and the GEMMs of a build without oneDNN) is held to one core type; and one thread
(CGAN_CPU_THREADS=1), since a GEMM split over threads may sum in another order. Standard library only,
so any python3 runs it.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(HERE, "goldens.json")

# Per config: the overrides that make a short CPU run of it (every run also gets COMMON). Steps are
# few but more than one, so Adam's second step, EMA averaging (start 1) and D's extra steps all run.
COMMON = ["train.steps=3", "log.every=1", "log.flush_every=1", "log.sample_every=0",
          "log.checkpoint_every=0", "log.progress=\"none\"", "eval.every=0"]
PER_CONFIG = {
    "anime_conv": ["train.batch_size=2", "data.count=16"],
    "anime_small": ["train.batch_size=8", "data.count=64"],
    "anime_sngan": ["train.batch_size=8", "data.count=64", "train.ema.start=1"],
    "fashion_sngan_proj": ["train.batch_size=16", "train.ema.start=1"],
    "gaussian_toy": ["train.batch_size=64", "data.count=512"],
    "mixture_cond": ["train.batch_size=64", "data.count=512"],
    "mnist_cgan_wide": ["train.batch_size=16"],
    "mnist_gan": ["train.batch_size=16"],
    "mnist_keras_mul": ["train.batch_size=16"],
    "mnist_lsgan_embed": ["train.batch_size=16"],
    "mnist_mlp": ["train.batch_size=16"],
    "mnist_sngan_proj": ["train.batch_size=16", "train.ema.start=1"],
    "shapes_folder": ["train.batch_size=16", "train.ema.start=1"],
}
# Configs that read a class folder (data.kind "image_folder"): the folder is drawn first, by the
# cgan_make_shapes tool built beside the binary (arguments PER_CLASS SIZE SEED; Philox-drawn, so
# the same pixels on every machine), and data.dir points at it.
FOLDER_DATA = {"shapes_folder": ["8", "16", "0"]}
ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "CGAN_CPU_THREADS": "1",
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"}


def shipped_configs():
    names = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "configs"))
                   if f.endswith(".json") and not f.startswith("classifier_"))
    missing = [n for n in names if n not in PER_CONFIG]
    if missing:
        sys.exit(f"golden.py: shipped config(s) {missing} have no entry in PER_CONFIG: add one, then record")
    return names


def tensor_hashes(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        b, e = entry["data_offsets"]
        out[name] = "%s %s %s" % (entry["dtype"], "x".join(map(str, entry["shape"])) or "scalar",
                                  hashlib.sha256(blob[base + b:base + e]).hexdigest())
    return out


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_one(binary, workdir, name):
    out = os.path.join(workdir, name)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [binary, "--config", os.path.join(ROOT, "configs", name + ".json"), "--device", "cpu", "--out", out]
    for s in COMMON + PER_CONFIG[name]:
        cmd += ["--set", s]
    env = dict(os.environ)
    env.update(ENV)
    if name in FOLDER_DATA:
        folder = os.path.join(workdir, name + "_data")
        shutil.rmtree(folder, ignore_errors=True)
        tool = os.path.join(os.path.dirname(os.path.abspath(binary)), "cgan_make_shapes")
        r = subprocess.run([tool, folder] + FOLDER_DATA[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"golden.py: {name}: {tool} {folder} exited {r.returncode}:\n{r.stdout[-3000:]}")
        cmd += ["--set", "data.dir=" + json.dumps(folder)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"golden.py: {name}: {' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}")
    ckdir = os.path.join(out, "checkpoints")
    cks = [f for f in os.listdir(ckdir) if f.endswith(".safetensors")]
    if cks != ["step_3.safetensors"]:
        sys.exit(f"golden.py: {name}: expected exactly checkpoints/step_3.safetensors, found {cks}")
    res = {"tensors": tensor_hashes(os.path.join(ckdir, cks[0]))}
    for f in ("losses.csv", "losses_avg.csv"):
        res[f] = file_hash(os.path.join(out, f))
    shutil.rmtree(out, ignore_errors=True)
    if name in FOLDER_DATA:
        shutil.rmtree(os.path.join(workdir, name + "_data"), ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["record", "check"])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only", nargs="*", help="these configs only")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    names = a.only or shipped_configs()
    if a.mode == "record":
        old = json.load(open(GOLDEN)) if os.path.exists(GOLDEN) else {}
        for n in names:
            old[n] = run_one(a.binary, a.workdir, n)
            print(f"recorded {n}: {len(old[n]['tensors'])} tensors")
        tmp = GOLDEN + ".tmp"
        with open(tmp, "w") as f:
            json.dump(old, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, GOLDEN)
        return
    want = json.load(open(GOLDEN))
    bad = 0
    for n in names:
        if n not in want:
            print(f"FAIL {n}: no golden recorded (tests/golden/golden.py record --only {n})")
            bad += 1
            continue
        got = run_one(a.binary, a.workdir, n)
        diffs = []
        for f in ("losses.csv", "losses_avg.csv"):
            if got[f] != want[n][f]:
                diffs.append(f)
        gt, wt = got["tensors"], want[n]["tensors"]
        for t in sorted(set(gt) | set(wt)):
            if gt.get(t) != wt.get(t):
                diffs.append(t if t in gt and t in wt else f"{t} ({'new' if t in gt else 'missing'})")
        if diffs:
            bad += 1
            print(f"FAIL {n}: {len(diffs)} of {len(wt) + 2} differ: {', '.join(diffs[:8])}{' ...' if len(diffs) > 8 else ''}")
        else:
            print(f"ok   {n}: {len(wt)} tensors and both loss CSVs bit for bit")
    print(f"{len(names) - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
