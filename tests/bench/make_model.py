#!/usr/bin/python3
"""Writes a randomly initialized TRC checkpoint (parameter names and shapes of
docs/model.md) as a bare safetensors file, for latency benchmarks and tests that need a
model of a given size without training one.

usage: make_model.py OUT.safetensors [--size small|medium|large] [--s 2] [--m 1] [--T 15]
                     [--seed 0] [--scale 1.0]
--scale multiplies every weight (a huge scale makes the network overflow: tests use it to
check that a non-finite output is never sent)."""
import argparse
import json
import os
import struct
import sys

import numpy as np

SIZES = {"small": (64, 128, 2), "medium": (128, 256, 3), "large": (256, 512, 4)}

# The parameter names and shapes of model.md live in one place: the converter's table.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from convert_checkpoint import expected_shapes  # noqa: E402


def params(size, s, m, T):
    """(name, shape, fan_in) in model.md order: fan_in None for a layer-norm scale, 0 for a
    zero bias (layer norm, attention in_proj), else the fan-in of the Linear it belongs to."""
    d, h, blocks = SIZES[size]
    shapes = expected_shapes(s, m, T, d, h, blocks)
    out = []
    for name, shape in shapes.items():
        weight = shapes.get(name[: -len("bias")] + "weight") if name.endswith(".bias") else shape
        if name.endswith("in_proj_bias"):
            fan_in = 0
        elif len(weight) == 2:
            fan_in = weight[1]
        else:
            fan_in = None if name.endswith(".weight") else 0
        out.append((name, shape, fan_in))
    return out


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors:
        b = arr.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", default="medium", choices=sorted(SIZES))
    ap.add_argument("--s", type=int, default=2)
    ap.add_argument("--m", type=int, default=1)
    ap.add_argument("--T", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    tensors = []
    for name, shape, fan_in in params(a.size, a.s, a.m, a.T):
        if fan_in is None:  # layer-norm scale
            arr = np.ones(shape)
        elif fan_in == 0:  # zero bias
            arr = np.zeros(shape)
        else:
            k = 1.0 / np.sqrt(fan_in)
            arr = rng.uniform(-k, k, size=shape)
        if name.endswith("weight") and fan_in:
            arr = arr * a.scale
        tensors.append((name, np.asarray(arr, dtype=np.float32)))
    write(a.out, tensors)


if __name__ == "__main__":
    main()
