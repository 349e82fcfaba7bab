#!/usr/bin/env python3
"""The run directory's tb/ event files (log.tensorboard) read back without TensorFlow (issue 21).

    test_tensorboard.py --binary build/cgan_gpu --workdir DIR --data-dir data/mnist

Trains mnist_mlp a few hundred steps (log.every small), then reads every tb/ file with Debian's
python3-protobuf (the Event / Summary messages built here by hand from TensorFlow's field numbers,
through descriptor_pb2) and python3-crc32c, and checks: every record's two masked CRC-32C; the first
event of each file is file_version "brain.Event:2"; the scalars losses/<column> equal losses.csv
(the same steps, the values equal as float32); the images "samples" are PNGs of the grid's size equal
to samples/step_N.png pixel for pixel; the text "config" equals config.json. Then resumes from a
checkpoint before the end and checks again, and that no (tag, step) is logged twice across the files.
Then a run with evaluation (a small classifier made first): metrics/<column> equal metrics.csv.
Run with /usr/bin/python3 (Debian's packages).
"""
import argparse
import csv
import glob
import io
import json
import os
import shutil
import struct
import subprocess
import sys

import crc32c
import numpy as np
from PIL import Image
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def build_event_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="tbcheck.proto", package="tbcheck", syntax="proto3")

    def msg(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, num, ftype, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                f.type_name = ".tbcheck." + tname

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    # tensorflow/core/framework/tensor_shape.proto, tensor.proto (dtype: an enum, read as its number)
    msg("TensorShapeProto", [])
    msg("TensorProto", [("dtype", 1, F.TYPE_INT32, opt, None),
                        ("tensor_shape", 2, F.TYPE_MESSAGE, opt, "TensorShapeProto"),
                        ("string_val", 8, F.TYPE_BYTES, rep, None)])
    # summary.proto
    msg("PluginData", [("plugin_name", 1, F.TYPE_STRING, opt, None), ("content", 2, F.TYPE_BYTES, opt, None)])
    msg("SummaryMetadata", [("plugin_data", 1, F.TYPE_MESSAGE, opt, "PluginData")])
    msg("Image", [("height", 1, F.TYPE_INT32, opt, None), ("width", 2, F.TYPE_INT32, opt, None),
                  ("colorspace", 3, F.TYPE_INT32, opt, None), ("encoded_image_string", 4, F.TYPE_BYTES, opt, None)])
    msg("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None),
                  ("image", 4, F.TYPE_MESSAGE, opt, "Image"), ("tensor", 8, F.TYPE_MESSAGE, opt, "TensorProto"),
                  ("metadata", 9, F.TYPE_MESSAGE, opt, "SummaryMetadata")])
    msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, "Value")])
    # event.proto
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
                  ("file_version", 3, F.TYPE_STRING, opt, None), ("summary", 5, F.TYPE_MESSAGE, opt, "Summary")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    d = pool.FindMessageTypeByName("tbcheck.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(d)
    return message_factory.MessageFactory(pool).GetPrototype(d)


Event = build_event_class()


def fail(msg):
    raise SystemExit("FAIL: " + msg)


def masked(data):
    c = crc32c.crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    b = open(path, "rb").read()
    i, out = 0, []
    while i < len(b):
        if len(b) - i < 16:
            fail("%s: truncated record at byte %d" % (path, i))
        (n,) = struct.unpack_from("<Q", b, i)
        (lc,) = struct.unpack_from("<I", b, i + 8)
        if lc != masked(b[i:i + 8]):
            fail("%s: length CRC wrong at byte %d" % (path, i))
        data = b[i + 12:i + 12 + n]
        (dc,) = struct.unpack_from("<I", b, i + 12 + n)
        if dc != masked(data):
            fail("%s: data CRC wrong at byte %d" % (path, i))
        out.append(data)
        i += 16 + n
    return out


def read_tb(run):
    """{tag: {step: value}} over every event file of run/tb, failing on a (tag, step) seen twice."""
    files = sorted(glob.glob(os.path.join(run, "tb", "events.out.tfevents.*")))
    if not files:
        fail("no event files in %s/tb" % run)
    seen = {}
    for f in files:
        evs = []
        for rec in read_records(f):
            e = Event()
            e.ParseFromString(rec)
            evs.append(e)
        if not evs or evs[0].file_version != "brain.Event:2":
            fail("%s: does not start with file_version brain.Event:2" % f)
        for e in evs[1:]:
            if len(e.summary.value) != 1:
                fail("%s: an event with %d values" % (f, len(e.summary.value)))
            v = e.summary.value[0]
            if e.step in seen.get(v.tag, {}):
                fail("%s: tag %s step %d logged twice" % (f, v.tag, e.step))
            seen.setdefault(v.tag, {})[e.step] = v
    return seen, files


def check_run(run, want_images=True):
    tb, files = read_tb(run)
    # scalars = losses.csv
    rows = list(csv.DictReader(open(os.path.join(run, "losses.csv"))))
    steps = [int(r["step"]) for r in rows]
    for col in ("d_loss", "g_loss", "d_real", "d_fake", "d_acc"):
        got = tb.get("losses/" + col, {})
        if sorted(got) != steps:
            fail("losses/%s: steps %s... differ from losses.csv's %s..." % (col, sorted(got)[:5], steps[:5]))
        for r in rows:
            want = np.float32(float(r[col]))
            have = np.float32(got[int(r["step"])].simple_value)
            if want != have:
                fail("losses/%s step %s: %r in tb, %r in losses.csv" % (col, r["step"], have, want))
    if not tb.get("speed/it_per_s"):
        fail("no speed/it_per_s scalars")
    # config text = config.json
    cfgs = tb.get("config", {})
    if not cfgs:
        fail("no config text")
    config_json = open(os.path.join(run, "config.json"), "rb").read()
    last = cfgs[max(cfgs)]
    if last.metadata.plugin_data.plugin_name != "text" or last.tensor.dtype != 7 or \
            list(last.tensor.string_val) != [config_json]:
        fail("the config text is not config.json as a text-plugin string tensor")
    # images = samples/step_N.png
    imgs = tb.get("samples", {})
    pngs = sorted(int(os.path.basename(p)[5:-4]) for p in glob.glob(os.path.join(run, "samples", "step_*.png")))
    if want_images and sorted(imgs) != pngs:
        fail("image steps %s differ from samples/ %s" % (sorted(imgs), pngs))
    for step, v in imgs.items():
        im = Image.open(io.BytesIO(v.image.encoded_image_string))
        if im.format != "PNG" or im.size != (v.image.width, v.image.height):
            fail("samples step %d: %s %s, header says %dx%d" % (step, im.format, im.size, v.image.width, v.image.height))
        ref = Image.open(os.path.join(run, "samples", "step_%d.png" % step))
        if im.size != ref.size or not np.array_equal(np.asarray(im), np.asarray(ref)):
            fail("samples step %d: the image differs from samples/step_%d.png" % (step, step))
        if v.image.colorspace != {"L": 1, "RGB": 3, "RGBA": 4}.get(im.mode):
            fail("samples step %d: colorspace %d for mode %s" % (step, v.image.colorspace, im.mode))
    return tb, files


def run(cmd, expect=0, cwd=None):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode != expect:
        print(" ".join(cmd), "\n", r.stdout, r.stderr)
        fail("exit %d, expected %d" % (r.returncode, expect))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--configs", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs"))
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data_dir, "train-images-idx3-ubyte")) and \
            not glob.glob(os.path.join(a.data_dir, "train-images*")):
        print("SKIP: MNIST not found in", a.data_dir)
        return
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    out = os.path.join(a.workdir, "run")
    base = [a.binary, "train", "--device", "cpu", "--set", "log.progress=none", "--set", "data.dir=" + a.data_dir]
    cfg = os.path.join(a.configs, "mnist_mlp.json")
    sets = ["--set", "train.batch_size=16", "--set", "log.every=25", "--set", "log.sample_every=100",
            "--set", "log.checkpoint_every=200"]
    run(base + ["--config", cfg, "--out", out, "--set", "train.steps=300"] + sets)
    tb, files = check_run(out)
    if len(files) != 1 or sorted(tb["losses/d_loss"])[-1] != 300 or sorted(tb["samples"]) != [100, 200, 300]:
        fail("first run: %d files, last step %d, images %s" % (len(files), max(tb["losses/d_loss"]), sorted(tb["samples"])))
    print("run of 300 steps: %d scalar tags, %d images, records and CRCs valid" % (len(tb), len(tb["samples"])))

    # resume from step 200 up to 400: the first file loses steps 201..300, the second continues
    run(base + ["--resume", os.path.join(out, "checkpoints", "step_200.safetensors"), "--out", out,
                "--set", "train.steps=400"] + sets[2:])
    tb, files = check_run(out)
    if len(files) != 2 or sorted(tb["losses/d_loss"]) != list(range(1, 401)):
        fail("resumed run: %d files, steps %s..%s" % (len(files), min(tb["losses/d_loss"]), max(tb["losses/d_loss"])))
    first_steps = {e_step for e_step in read_steps(files[0])}
    if max(first_steps) > 200:
        fail("the first file still holds step %d after the resume from 200" % max(first_steps))
    print("resumed at 200 to 400: 2 files, steps 1..400 once each, images %s" % sorted(tb["samples"]))

    # log.tensorboard=false: no tb/
    off = os.path.join(a.workdir, "off")
    run(base + ["--config", cfg, "--out", off, "--set", "train.steps=5", "--set", "log.tensorboard=false"])
    if os.path.exists(os.path.join(off, "tb")):
        fail("log.tensorboard=false still wrote tb/")

    # evaluation during training: metrics/<column> = metrics.csv
    clf_spec = os.path.join(a.workdir, "clf.json")
    with open(clf_spec, "w") as f:
        json.dump({"data": {"kind": "mnist", "range": [0, 1]},
                   "layers": [{"linear": 32}, {"relu": {}}, {"linear": 10}],
                   "train": {"steps": 300, "batch_size": 64, "lr": 0.001, "seed": 1}}, f)
    clf = os.path.join(a.workdir, "clf.safetensors")
    run([a.binary, "classifier", "--data", "mnist", "--config", clf_spec, "--steps", "30", "--device", "cpu",
         "--out", clf, "--data-dir", a.data_dir])
    ev = os.path.join(a.workdir, "eval")
    run(base + ["--config", cfg, "--out", ev, "--set", "train.steps=20", "--set", "log.every=10",
                "--set", "eval.every=10", "--set", "eval.count=20", "--set", "eval.classifier=" + clf])
    tb, _ = check_run(ev)
    rows = list(csv.DictReader(open(os.path.join(ev, "metrics.csv"))))
    if len(rows) != 2:
        fail("metrics.csv has %d rows" % len(rows))
    for col in rows[0]:
        if col == "step":
            continue
        got = tb.get("metrics/" + col, {})
        if sorted(got) != [int(r["step"]) for r in rows]:
            fail("metrics/%s: steps %s" % (col, sorted(got)))
        for r in rows:
            if np.float32(float(r[col])) != np.float32(got[int(r["step"])].simple_value):
                fail("metrics/%s step %s: %r in tb, %s in metrics.csv" % (col, r["step"],
                                                                          got[int(r["step"])].simple_value, r[col]))
    if "kid_mean" not in rows[0] or float(rows[0]["kid_mean"]) == 0:
        fail("metrics.csv has no kid_mean figure")
    print("evaluation: %d metrics scalars per step equal to metrics.csv (kid_mean %s)" % (len(rows[0]) - 1,
                                                                                          rows[-1]["kid_mean"]))
    print("PASS")


def read_steps(path):
    steps = []
    for rec in read_records(path):
        e = Event()
        e.ParseFromString(rec)
        steps.append(e.step)
    return steps


if __name__ == "__main__":
    main()
