"""A minimal safetensors reader with numpy only: load(path) -> (tensors, metadata).

tensors maps each name to a numpy array (copied, little-endian, in the file's shape);
metadata is the __metadata__ dict of strings ({} when absent). Example:

    from safetensors_numpy import load
    params, meta = load("outputs/run1/best_model.safetensors")
    print(meta.get("size"), params["state_encoder.encoder.0.weight"].shape)
"""
import json
import struct

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base, tensors = 8 + n, {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if info["dtype"] == "BF16":  # numpy has no bfloat16: widen to float32
            raw = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
        else:
            raw = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        tensors[name] = raw.reshape(info["shape"]).copy()
    return tensors, metadata
