#!/usr/bin/python3
"""Writes a randomly initialized TRC checkpoint (parameter names and shapes of
shared/docs/model.md) as a bare safetensors file, for latency benchmarks and tests that need a
model of a given size without training one.

usage: make_model.py OUT.safetensors [--size small|medium|large] [--s 2] [--m 1] [--T 15]
                     [--seed 0] [--scale 1.0]
--scale multiplies every weight (a huge scale makes the network overflow: tests use it to
check that a non-finite output is never sent)."""
import argparse
import json
import struct

import numpy as np

SIZES = {"small": (64, 128, 2), "medium": (128, 256, 3), "large": (256, 512, 4)}


def params(size, s, m, T):
    d, h, blocks = SIZES[size]
    U = T * m
    out = []

    def lin(name, i, o):
        out.append((name + ".weight", (o, i), i))
        out.append((name + ".bias", (o,), i))

    def ln(name, k):
        out.append((name + ".weight", (k,), None))
        out.append((name + ".bias", (k,), 0))

    lin("state_encoder.encoder.0", 2 * s + 1, h)
    ln("state_encoder.encoder.2", h)
    lin("state_encoder.encoder.3", h, d)
    lin("error_encoder.encoder.0", s, h // 2)
    ln("error_encoder.encoder.2", h // 2)
    lin("error_encoder.encoder.3", h // 2, d)
    for b in range(blocks):
        p = "recursive_reasoning.reasoning_blocks.%d." % b
        out.append((p + "attention.in_proj_weight", (3 * d, d), d))
        out.append((p + "attention.in_proj_bias", (3 * d,), 0))
        lin(p + "attention.out_proj", d, d)
        ln(p + "norm1", d)
        lin(p + "ffn.0", d, h)
        lin(p + "ffn.3", h, d)
        ln(p + "norm2", d)
    lin("recursive_reasoning.control_embedding", U, d)
    lin("recursive_reasoning.error_embedding", 2, d)
    lin("initial_control_generator.decoder.0", d, h)
    ln("initial_control_generator.decoder.2", h)
    lin("initial_control_generator.decoder.3", h, U)
    lin("control_decoder.decoder.0", d + U, h)
    ln("control_decoder.decoder.2", h)
    lin("control_decoder.decoder.3", h, U)
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
