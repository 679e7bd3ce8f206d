#!/usr/bin/env python3
"""Converts a checkpoint of the original PyTorch TinyRecursiveControl project into a
.safetensors file trcd and `trc` load, with the configuration in its __metadata__.

    python3 convert_checkpoint.py outputs/supervised_medium/best_model.pt -o models/orig.safetensors

Input: `best_model.pt` as the original's trainer saves it (a dict whose `model_state_dict` holds
the parameters; a bare state_dict is accepted too), and its `config.json` (the original's
TRCConfig: state_dim, control_dim, control_horizon, latent_dim, hidden_dim,
num_reasoning_blocks, num_heads, num_outer_cycles, num_inner_cycles, control_bounds; at
a273222 also use_two_level, H_cycles, L_cycles, L_layers) when it sits beside the checkpoint or
is named with --config. Without config.json the shapes give the architecture, d, h, blocks, s
and T*m; m defaults to 1, b to 4, the cycles to the architecture's (single K=3 n=3; two_level
and trm_style H=3, L=4, or 6 for large); flags override.

Every version the original writes is accepted: the single-latent network of docs/model.md
(ec6511d), and a273222's single-latent, two_level (H_init/L_init parameters, LayerNorm blocks)
and trm_style (SwiGLU + RMSNorm blocks, H_init/L_init buffers) networks
(shared/docs/model-v2.md), with the FFN keys spelled either way (ffn.0/ffn.3 or
ffn.fc_in/ffn.fc_out). The output spells them as --names asks (default a273222).
--feedback records trajectory feedback (two_level/trm_style, s = 2): the original passes its
simulator at run time, so no checkpoint says so. Every parameter of the architecture must be
present with its exact shape, and nothing else; the non-residual and attention-free variants
are other networks and are refused.
The .pt file is unpickled with a restricted unpickler that admits only tensors, dicts and
numbers (--trust lifts that for files from a trusted source). The output is written atomically
(temporary file, then rename). Needs torch only to read the .pt file; the safetensors writer
below is plain Python.
"""

import argparse
import json
import math
import os
import pickle
import struct
import sys
import tempfile
import types

FORMAT_VERSION = "1"  # the "trc_format" metadata value core/src/nn/checkpoint.c reads
# d, h, blocks, heads, K, n of each architecture's sizes (core/src/nn/<arch>.c)
PRESETS = {
    "single": {"small": (64, 128, 2, 2, 3, 3), "medium": (128, 256, 3, 4, 3, 3),
               "large": (256, 512, 4, 8, 3, 3)},
    "two_level": {"small": (64, 128, 2, 2, 3, 4), "medium": (128, 256, 2, 4, 3, 4),
                  "large": (256, 512, 3, 8, 3, 6)},
    "trm_style": {"small": (64, 256, 2, 2, 3, 4), "medium": (128, 256, 2, 4, 3, 4),
                  "large": (256, 256, 3, 8, 3, 6)},
}
NAMES = ("a273222", "ec6511d")  # the newer spelling (ffn.fc_in / ffn.fc_out) first
FFN_KEYS = {"a273222": ("fc_in", "fc_out"), "ec6511d": ("0", "3")}
BLOCK_PREFIX = {"single": "recursive_reasoning.reasoning_blocks.",
                "two_level": "recursive_reasoning.L_level.layers.",
                "trm_style": "recursive_reasoning.L_level.layers."}


class ConvertError(Exception):
    pass


def expected_shapes(s, m, T, d, h, blocks, arch="single", names="ec6511d"):
    """Every tensor name of the architecture with its PyTorch shape, in state_dict order
    (model.md; model-v2.md section 2), the FFN keys spelled as `names` says."""
    U = T * m
    shapes = {}
    fc_in, fc_out = FFN_KEYS[names]
    width = int(d * (h / d))  # the original's FFN width rule (= h), in double

    def linear(name, i, o):
        shapes[name + ".weight"] = (o, i)
        shapes[name + ".bias"] = (o,)

    def norm(name, k):
        shapes[name + ".weight"] = (k,)
        shapes[name + ".bias"] = (k,)

    linear("state_encoder.encoder.0", 2 * s + 1, h)
    norm("state_encoder.encoder.2", h)
    linear("state_encoder.encoder.3", h, d)
    linear("error_encoder.encoder.0", s, h // 2)
    norm("error_encoder.encoder.2", h // 2)
    linear("error_encoder.encoder.3", h // 2, d)
    if arch != "single":
        shapes["recursive_reasoning.H_init"] = (d,)
        shapes["recursive_reasoning.L_init"] = (d,)
    rms = arch == "trm_style"  # RMSNorm (weight only) and SwiGLU (fc_in gives gate and value)
    for i in range(blocks):
        p = f"{BLOCK_PREFIX[arch]}{i}."
        shapes[p + "attention.in_proj_weight"] = (3 * d, d)
        shapes[p + "attention.in_proj_bias"] = (3 * d,)
        linear(p + "attention.out_proj", d, d)
        if rms:
            shapes[p + "norm1.weight"] = (d,)
        else:
            norm(p + "norm1", d)
        linear(p + f"ffn.{fc_in}", d, 2 * width if rms else width)
        linear(p + f"ffn.{fc_out}", width, d)
        if rms:
            shapes[p + "norm2.weight"] = (d,)
        else:
            norm(p + "norm2", d)
    linear("recursive_reasoning.control_embedding", U, d)
    linear("recursive_reasoning.error_embedding", 2, d)
    if arch == "single":  # model.md's order: the generator first
        linear("initial_control_generator.decoder.0", d, h)
        norm("initial_control_generator.decoder.2", h)
        linear("initial_control_generator.decoder.3", h, U)
    linear("control_decoder.decoder.0", d + U, h)
    norm("control_decoder.decoder.2", h)
    linear("control_decoder.decoder.3", h, U)
    if arch != "single":  # state_dict order at a273222: the decoder before the generator
        linear("initial_control_generator.decoder.0", d, h)
        norm("initial_control_generator.decoder.2", h)
        linear("initial_control_generator.decoder.3", h, U)
    return shapes


# What a checkpoint of tensors, dicts and numbers may name when unpickled; anything else (a
# class whose construction could run code) is refused unless --trust is given.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Tensor"), ("torch", "Size"),
    ("torch", "device"), ("torch.nn.parameter", "Parameter"),
    ("numpy.core.multiarray", "scalar"), ("numpy", "dtype"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (rerun with --trust "
                                     "if the file comes from a source you trust)")


# The pickle module torch.load is to use: the standard one with the restricted Unpickler.
# (The weights_only loader of Debian's torch 1.13 cannot read the floats of an optimizer state.)
SAFE_PICKLE = types.SimpleNamespace(Unpickler=_SafeUnpickler, UnpicklingError=pickle.UnpicklingError,
                                    load=lambda f, **kw: _SafeUnpickler(f, **kw).load(),
                                    __name__="trc_safe_pickle")


def _restricted_torch_load(torch, path):
    import torch.serialization as ser

    # torch 1.13 replaces a pickle_module argument by its module global `pickle` unless
    # weights_only is set; swap that global for the call (newer torch honours the argument).
    saved = ser.pickle
    ser.pickle = SAFE_PICKLE
    try:
        return torch.load(path, map_location="cpu", pickle_module=SAFE_PICKLE)
    finally:
        ser.pickle = saved


def load_state_dict(path, trust=False):
    """The parameter tensors of an original checkpoint, as {name: torch.Tensor}."""
    try:
        import torch
    except ImportError:
        raise ConvertError("reading a .pt file needs PyTorch (Debian: apt-get install python3-torch)")
    if not os.path.isfile(path):
        raise ConvertError("no such file")
    try:
        if trust:
            obj = torch.load(path, map_location="cpu")
        else:
            obj = _restricted_torch_load(torch, path)
    except pickle.UnpicklingError as e:
        if "refusing" in str(e):
            raise ConvertError(str(e))
        raise ConvertError(f"not a readable PyTorch checkpoint ({e})")
    except Exception as e:  # torch raises many kinds for a corrupt or foreign file
        raise ConvertError(f"not a readable PyTorch checkpoint ({e})")
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConvertError("holds neither 'model_state_dict' nor a state_dict of tensors")
    state = {}
    for name, tensor in obj.items():
        # DataParallel and torch.compile wrap the module and prefix every name.
        for prefix in ("module.", "_orig_mod."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        state[name] = tensor
    return state


def shape_of(state, name):
    if name not in state:
        raise ConvertError(f"missing parameter '{name}'")
    return tuple(state[name].shape)


def detect(state):
    """(architecture, spelling) the tensors say: H_init means the two-level family, whose
    LayerNorm blocks have a norm bias (two_level) and RMSNorm ones not (trm_style); ffn.0 keys
    are ec6511d's spelling."""
    if "recursive_reasoning.H_init" in state:
        arch = ("two_level" if BLOCK_PREFIX["two_level"] + "0.norm1.bias" in state
                else "trm_style")
    else:
        arch = "single"
    old = any(".ffn.0." in k or ".ffn.3." in k for k in state)
    new = any(".ffn.fc_in." in k or ".ffn.fc_out." in k for k in state)
    if old and new:
        raise ConvertError("the FFN keys are spelled both ways (ffn.0/ffn.3 and ffn.fc_in/ffn.fc_out)")
    return arch, "ec6511d" if old else "a273222"


def configure(state, cfg_json, args):
    """The model configuration: shapes give the architecture, d, h, blocks, s and U;
    config.json and flags the rest."""
    arch, spelled = detect(state)
    h, in_dim = shape_of(state, "state_encoder.encoder.0.weight")
    d = shape_of(state, "state_encoder.encoder.3.weight")[0]
    U = shape_of(state, "control_decoder.decoder.3.weight")[0]
    prefix = BLOCK_PREFIX[arch]
    idx = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    blocks = max(idx) + 1 if idx else 0
    if in_dim < 3 or in_dim % 2 == 0:
        raise ConvertError(f"'state_encoder.encoder.0.weight' has {in_dim} inputs, expected 2s+1")
    s = (in_dim - 1) // 2

    two_level = arch != "single"
    if "use_two_level" in cfg_json and bool(cfg_json["use_two_level"]) != two_level:
        raise ConvertError(f"config.json: use_two_level={cfg_json['use_two_level']} but the "
                           f"tensors are a {arch} network")
    for key, bad, why in (("use_residual_decoder", False, "the non-residual decoder variant"),
                          ("use_attention", False, "the variant without attention")):
        if cfg_json.get(key, not bad) == bad:
            raise ConvertError(f"config.json: {key}={cfg_json[key]} is {why}, not a network TRC runs")
    # config.json must agree with the shapes it claims to describe.
    blocks_key = "L_layers" if two_level else "num_reasoning_blocks"
    for key, have in (("state_dim", s), ("latent_dim", d), ("hidden_dim", h), (blocks_key, blocks)):
        if key in cfg_json and not (arch == "trm_style" and key == "hidden_dim") \
                and int(cfg_json[key]) != have:
            raise ConvertError(f"config.json: {key}={cfg_json[key]} but the checkpoint's shapes give {have}")

    m = args.control_dim or int(cfg_json.get("control_dim", 1))
    if m <= 0 or U % m:
        raise ConvertError(f"control sequence length {U} is not a multiple of control_dim {m}")
    T = U // m
    if "control_horizon" in cfg_json and int(cfg_json["control_horizon"]) != T:
        raise ConvertError(f"config.json: control_horizon={cfg_json['control_horizon']} but the shapes give T={T}")

    presets = PRESETS[arch]
    size = next((n for n, p in presets.items() if p[:3] == (d, h, blocks)), "custom")
    pre = presets.get(size, (0, 0, 0, 1, 3, 4 if two_level else 3))
    heads = args.heads or int(cfg_json.get("num_heads", pre[3]))
    system = args.system if args.system is not None else ("double_integrator" if (s, m) == (2, 1) else "")
    # never a default dt: the original used 5/15 in its first version and 0.33 later, and its
    # checkpoints do not say which; 0 records "not known" (trc and trcd then ask for --dt)
    dt = args.dt if args.dt is not None else 0.0
    if args.dt is not None and not (args.dt > 0 and math.isfinite(args.dt)):
        raise ConvertError(f"--dt {args.dt} must be a positive number")
    k_key, n_key = ("H_cycles", "L_cycles") if two_level else ("num_outer_cycles", "num_inner_cycles")
    cfg = {
        "arch": arch, "names": args.names or NAMES[0], "spelled": spelled,
        "size": size, "s": s, "m": m, "T": T,
        "b": args.bound if args.bound is not None else float(cfg_json.get("control_bounds", 4.0)),
        "K": args.K if args.K is not None else int(cfg_json.get(k_key, pre[4])),
        "n": args.n if args.n is not None else int(cfg_json.get(n_key, pre[5])),
        "d": d, "h": h, "blocks": blocks, "heads": heads, "system": system, "dt": dt,
        "feedback": bool(args.feedback),
    }
    if not (cfg["b"] > 0 and math.isfinite(cfg["b"])):
        raise ConvertError(f"control bound b={cfg['b']} must be a positive number")
    if cfg["K"] <= 0 or cfg["n"] <= 0:
        raise ConvertError(f"cycles K={cfg['K']} and n={cfg['n']} must be positive (H and L cycles >= 1)")
    if cfg["feedback"] and (not two_level or s != 2 or not system):
        raise ConvertError("--feedback needs a two_level or trm_style network with s = 2 and a "
                           f"system to simulate (here: {arch}, s={s}, system={system or '?'})")
    return cfg


def check_names(state, cfg):
    """{output name: input name} of every tensor, checked strictly against the architecture."""
    want = expected_shapes(cfg["s"], cfg["m"], cfg["T"], cfg["d"], cfg["h"], cfg["blocks"],
                           cfg["arch"], cfg["spelled"])
    extra = sorted(set(state) - set(want))
    if extra:
        raise ConvertError(f"unexpected tensor '{extra[0]}' (not a parameter of a {cfg['arch']} network)"
                           + (f" and {len(extra) - 1} more" if len(extra) > 1 else ""))
    for name, shape in want.items():
        got = shape_of(state, name)
        if got != shape:
            raise ConvertError(f"parameter '{name}' has shape {list(got)}, expected {list(shape)}")
    out = expected_shapes(cfg["s"], cfg["m"], cfg["T"], cfg["d"], cfg["h"], cfg["blocks"],
                          cfg["arch"], cfg["names"])
    return dict(zip(out, want))  # same order, the FFN keys respelled


def read_norm(path, s, m):
    """Normalisation statistics {x_mean, x_std: [s], u_mean, u_std: [m]} (docs/checkpoints.md)
    -> metadata values, checked as the C loader checks them."""
    try:
        with open(path) as f:
            stats = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"--norm {path}: {e}")
    want = {"x_mean": s, "x_std": s, "u_mean": m, "u_std": m}
    if not isinstance(stats, dict) or set(stats) != set(want):
        raise ConvertError(f"--norm {path}: expected exactly the keys {sorted(want)}")
    out = {}
    for key, n in want.items():
        v = stats[key]
        if not isinstance(v, list) or len(v) != n:
            raise ConvertError(f"--norm {path}: '{key}' must have {n} values")
        for i, x in enumerate(v):
            ok = isinstance(x, (int, float)) and math.isfinite(x) and abs(x) <= 1e9
            if not ok or (key.endswith("std") and not x >= 1e-9):
                raise ConvertError(f"--norm {path}: {key}[{i}] = {x!r} is not allowed")
        out["norm_" + key] = ",".join(repr(struct.unpack("<f", struct.pack("<f", x))[0])
                                      for x in v)
    return out


def metadata(cfg, source):
    meta = {"trc_format": FORMAT_VERSION}
    for key in ("arch", "names", "size", "s", "m", "T", "b", "K", "n", "d", "h", "blocks", "heads",
                "system", "dt"):
        v = cfg[key]
        meta[key] = repr(float(v)) if isinstance(v, float) else str(v)
    if cfg["feedback"]:
        meta["feedback"] = "true"
    meta.update(cfg.get("norm") or {})
    meta["training"] = json.dumps({"converted_from": os.path.basename(source)})
    return meta


def encode_safetensors(tensors, meta):
    """safetensors bytes: u64 header length, JSON header, little-endian float32 data."""
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, arr in tensors:
        arr = arr.detach().to("cpu").float().contiguous()
        if not bool(arr.isfinite().all()):
            raise ConvertError(f"parameter '{name}' has a non-finite value")
        blob = arr.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header so the data is 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_atomic(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".convert-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def convert(src, dst, args):
    cfg_path = args.config or os.path.join(os.path.dirname(os.path.abspath(src)), "config.json")
    cfg_json = {}
    if os.path.exists(cfg_path):
        try:
            with open(cfg_path) as f:
                cfg_json = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError(f"{cfg_path}: {e}")
        if not isinstance(cfg_json, dict):
            raise ConvertError(f"{cfg_path}: not a JSON object")
    elif args.config:
        raise ConvertError(f"{cfg_path}: no such file")
    state = load_state_dict(src, trust=args.trust)
    cfg = configure(state, cfg_json, args)
    if args.norm:
        cfg["norm"] = read_norm(args.norm, cfg["s"], cfg["m"])
    names = check_names(state, cfg)
    data = encode_safetensors([(out, state[name]) for out, name in names.items()], metadata(cfg, src))
    write_atomic(dst, data)
    return cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="the original's best_model.pt (or a bare state_dict .pt)")
    p.add_argument("-o", "--out", required=True, help="output .safetensors path")
    p.add_argument("--config", help="the original's config.json (default: beside the checkpoint)")
    p.add_argument("--control-dim", type=int, help="m, when config.json is absent (default 1)")
    p.add_argument("--bound", type=float, help="control bound b (default: config.json, else 4)")
    p.add_argument("--K", type=int, help="outer refinement cycles, H cycles of two_level/trm_style "
                   "(default: config.json, else the architecture's, 3)")
    p.add_argument("--n", type=int, help="inner reasoning cycles, L cycles of two_level/trm_style "
                   "(default: config.json, else the architecture's: 3, or 4 / 6)")
    p.add_argument("--heads", type=int, help="attention heads, recorded only")
    p.add_argument("--system", help="system name (default double_integrator when s=2, m=1)")
    p.add_argument("--dt", type=float,
                   help="time step the model was trained at (the original: 5/15 in its first "
                        "version, 0.33 later); not given: none recorded, and trc/trcd ask for it")
    p.add_argument("--names", choices=NAMES,
                   help="parameter-name spelling to write: a273222 (ffn.fc_in/ffn.fc_out, the "
                   "default) or ec6511d (ffn.0/ffn.3)")
    p.add_argument("--feedback", action="store_true",
                   help="record trajectory feedback (two_level/trm_style with s = 2): the system "
                   "is simulated every cycle")
    p.add_argument("--norm", help="normalisation statistics (JSON: x_mean, x_std, u_mean, u_std) "
                   "the checkpoint was trained with, stored in the metadata")
    p.add_argument("--trust", action="store_true",
                   help="unpickle any object the .pt file names (only for files you trust)")
    args = p.parse_args(argv)
    try:
        cfg = convert(args.checkpoint, args.out, args)
    except ConvertError as e:
        print(f"convert_checkpoint: {args.checkpoint}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {cfg['arch']} {cfg['size']} (d={cfg['d']} h={cfg['h']} blocks={cfg['blocks']}), "
          f"s={cfg['s']} m={cfg['m']} T={cfg['T']} b={cfg['b']} K={cfg['K']} n={cfg['n']} "
          f"system={cfg['system'] or '?'} "
          + (f"dt={cfg['dt']:.6g}" if cfg["dt"] > 0 else
             "dt not recorded (pass --dt here, or give it to trc/trcd: --dt or a sidecar <stem>.json)")
          + f" names={cfg['names']}" + (" feedback" if cfg["feedback"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
