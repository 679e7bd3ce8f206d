"""Python interop of TRC checkpoints: the numpy reader (clients/python/safetensors_numpy.py)
reads the PyTorch-style fixtures and a checkpoint written by our C code (test_checkpoint with
TRC_CKPT_OUT), the file layout is checked byte by byte against the safetensors format, and, when
the `safetensors` package or a `trc info` command is available, those read it too."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from safetensors_numpy import load  # noqa: E402

DATA = os.environ.get("TRC_TEST_DATA") or os.path.join(ROOT, "tests", "data")
FIXTURE = os.path.join(DATA, "small_init.safetensors")
META_KEYS = ["trc_format", "size", "s", "m", "T", "b", "K", "n", "d", "h", "blocks", "heads",
             "system", "dt"]


def build_dir():
    trc = os.environ.get("TRC_BIN")
    return os.path.dirname(os.path.abspath(trc)) if trc else os.path.join(ROOT, "build")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The fixture re-saved by trc_checkpoint_save (with metadata), via the unit test binary."""
    exe = os.path.join(build_dir(), "tests", "core", "test_checkpoint")
    if not os.path.exists(exe):
        pytest.skip(f"{exe} not built")
    out = str(tmp_path_factory.mktemp("ckpt") / "model.safetensors")
    env = dict(os.environ, TRC_CKPT_OUT=out, TRC_TEST_DATA=DATA)
    subprocess.run([exe], cwd=ROOT, env=env, check=True, capture_output=True)
    return out


def check_layout(path):
    """Every rule of the format, checked independently of the C parser."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0 and 8 + n <= len(data)
    text = data[8:8 + n].decode("utf-8")
    body = text.rstrip(" ")  # padded with spaces to a multiple of 8, as the reference does
    assert body.startswith("{") and body.endswith("}") and len(text) - len(body) < 8
    header = json.loads(text)
    header.pop("__metadata__", None)
    pos = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        assert begin == pos, name
        assert info["dtype"] == "F32"
        assert end - begin == 4 * int(np.prod(info["shape"], dtype=np.int64)), name
        pos = end
    assert 8 + n + pos == len(data)
    return header


def test_fixture_reads():
    tensors, meta = load(FIXTURE)
    assert meta == {}
    assert len(tensors) == 52
    assert sum(t.size for t in tensors.values()) == 104862
    assert tensors["state_encoder.encoder.0.weight"].shape == (128, 5)
    assert tensors["control_decoder.decoder.0.weight"].shape == (128, 64 + 15)
    assert all(t.dtype == np.float32 for t in tensors.values())
    check_layout(FIXTURE)


def test_written_checkpoint(written):
    tensors, meta = load(written)
    ref, _ = load(FIXTURE)
    assert sorted(tensors) == sorted(ref)
    for name, t in ref.items():
        assert tensors[name].dtype == np.float32
        assert tensors[name].shape == t.shape, name
        np.testing.assert_array_equal(tensors[name], t, err_msg=name)
    for k in META_KEYS:
        assert k in meta, k
    assert meta["trc_format"] == "1"
    assert (meta["size"], meta["s"], meta["m"], meta["T"]) == ("small", "2", "1", "15")
    assert (meta["d"], meta["h"], meta["blocks"], meta["heads"]) == ("64", "128", "2", "2")
    assert float(meta["b"]) == 4.0 and float(meta["dt"]) == 0.1
    assert meta["system"] == "double_integrator"
    assert json.loads(meta["training"]) == {"source": "small_init"}
    check_layout(written)


def test_reference_package_reads(written):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    tensors = st.load_file(written)
    ref, _ = load(FIXTURE)
    for name, t in ref.items():
        np.testing.assert_array_equal(tensors[name], t, err_msg=name)
    with safe_open(written, framework="numpy") as f:
        assert f.metadata()["trc_format"] == "1"


def test_trc_info_reads_both(written):
    trc = os.environ.get("TRC_BIN") or os.path.join(ROOT, "build", "trc")
    if not os.path.exists(trc):
        pytest.skip("build/trc not built")
    probe = subprocess.run([trc, "info", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("trc has no info command yet")
    for path in (FIXTURE, written):
        r = subprocess.run([trc, "info", "--checkpoint", path], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "small" in r.stdout
