#!/usr/bin/env python3
"""Check a .safetensors file (e.g. a cgan_gpu checkpoint) with the Python standard library only.

    python3 tools/check_safetensors.py FILE [FILE ...]

Validates the layout (8-byte little-endian header length, JSON header, dtype, shape against the
byte span, offsets in range, contiguous, covering the whole buffer), prints every tensor's name,
dtype and shape and the metadata keys. When the `safetensors` package is importable (with numpy,
and/or torch) it also loads the file with it and checks the values agree, which proves the file
is readable by the reference implementation. Exit status: 0 all files valid, 1 a file is malformed
(one line on stderr names it and the problem), 2 bad usage.
"""
import json
import math
import os
import struct
import sys

MAX_HEADER = 100_000_000
DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


class Malformed(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise Malformed(f"the header JSON repeats the key {json.dumps(k)}")
        out[k] = v
    return out


def _is_uint(x):
    return type(x) is int and x >= 0


def parse(path):
    """Returns (tensors, metadata, data_start): tensors is a list of (name, dtype, shape, begin, end)
    in buffer order. Raises Malformed."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if size == 0:
                raise Malformed("the file is empty (0 bytes)")
            if len(head) < 8:
                raise Malformed(f"the file is only {size} bytes, shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise Malformed(f"header length {n} is larger than the limit of {MAX_HEADER} bytes")
            if n > size - 8:
                raise Malformed(f"header length {n} exceeds the {size - 8} bytes after the length field")
            raw = f.read(n)
    except OSError as e:
        raise Malformed(f"cannot read: {e.strerror}")
    if not raw.startswith(b"{"):
        raise Malformed("the header does not start with '{'")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Malformed(f"the header is not valid JSON ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    if not isinstance(header, dict):
        raise Malformed("the header is not a JSON object")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise Malformed('"__metadata__" is not an object')
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise Malformed(f"metadata value of {json.dumps(k)} is not a string")

    tensors = []
    for name, info in header.items():
        tn = f"tensor {json.dumps(name)}"
        if not isinstance(info, dict):
            raise Malformed(f"{tn} is not described by an object")
        unknown = set(info) - {"dtype", "shape", "data_offsets"}
        if unknown:
            raise Malformed(f"{tn} has an unknown field {json.dumps(sorted(unknown)[0])}")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZE:
            raise Malformed(f"{tn} has an unknown dtype {json.dumps(dtype)}")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise Malformed(f'{tn}: "shape" is not a list of non-negative integers')
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_uint(o) for o in offs)):
            raise Malformed(f'{tn}: "data_offsets" is not a pair of non-negative integers')
        begin, end = offs
        if end < begin:
            raise Malformed(f"{tn}: data_offsets {offs} end before they begin")
        nbytes = math.prod(shape) * DTYPE_SIZE[dtype]
        if end - begin != nbytes:
            raise Malformed(f"{tn}: shape {shape} needs {nbytes} bytes but data_offsets span {end - begin}")
        tensors.append((name, dtype, shape, begin, end))

    buffer = size - 8 - n
    tensors.sort(key=lambda t: (t[3], t[4]))
    cursor = 0
    for name, _, _, begin, end in tensors:
        tn = f"tensor {json.dumps(name)}"
        if end > buffer:
            raise Malformed(f"{tn}: data_offsets [{begin}, {end}] run past the {buffer}-byte data buffer")
        if begin < cursor:
            raise Malformed(f"{tn}: data_offsets [{begin}, {end}] overlap another tensor")
        if begin > cursor:
            raise Malformed(f"{tn}: data_offsets [{begin}, {end}] leave a gap at byte {cursor}")
        cursor = end
    if cursor != buffer:
        raise Malformed(f"{buffer - cursor} trailing bytes after the last tensor")
    return tensors, metadata, 8 + n


def read_f32(path, data_start, begin, end):
    with open(path, "rb") as f:
        f.seek(data_start + begin)
        raw = f.read(end - begin)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def same_values(a, b):
    a, b = list(a), list(b)
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def cross_check(path, tensors, metadata, data_start):
    """Loads the file with the `safetensors` package when it is installed; returns a list of lines."""
    lines = []
    try:
        import numpy as np  # noqa: F401
        from safetensors import safe_open
        from safetensors.numpy import load_file
    except ImportError:
        return ["safetensors/numpy not installed: skipped the cross-check with the reference reader"]
    loaded = load_file(path)
    if set(loaded) != {t[0] for t in tensors}:
        raise Malformed("safetensors.numpy.load_file sees different tensor names")
    for name, dtype, shape, begin, end in tensors:
        arr = loaded[name]
        if list(arr.shape) != shape:
            raise Malformed(f"safetensors reads tensor {json.dumps(name)} with shape {list(arr.shape)}, expected {shape}")
        if dtype == "F32" and not same_values(arr.reshape(-1).tolist(), read_f32(path, data_start, begin, end)):
            raise Malformed(f"safetensors reads different values for tensor {json.dumps(name)}")
    with safe_open(path, framework="numpy") as f:
        if (f.metadata() or {}) != metadata:
            raise Malformed("safetensors reads different metadata")
    lines.append(f"safetensors.numpy.load_file + safe_open: OK ({len(loaded)} tensors, values identical)")
    try:
        import torch  # noqa: F401
        from safetensors.torch import load_file as load_torch
    except ImportError:
        return lines
    pt = load_torch(path)
    for name, _, shape, _, _ in tensors:
        if list(pt[name].shape) != shape:
            raise Malformed(f"safetensors.torch reads tensor {json.dumps(name)} with a different shape")
    lines.append(f"safetensors.torch.load_file: OK ({len(pt)} tensors)")
    return lines


def check(path):
    tensors, metadata, data_start = parse(path)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")
    for name, dtype, shape, begin, end in tensors:
        print(f"  {name}  {dtype}  {shape}  bytes [{begin}, {end})")
    print(f"  metadata keys: {sorted(metadata)}")
    for line in cross_check(path, tensors, metadata, data_start):
        print(f"  {line}")


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        try:
            check(path)
        except Malformed as e:
            print(f"{path}: not a valid safetensors file: {e}", file=sys.stderr)
            status = 1
        except Exception as e:  # the reference reader refused it, or anything unexpected
            msg = str(e).splitlines()[0] if str(e) else ""
            print(f"{path}: {type(e).__name__}: {msg}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
