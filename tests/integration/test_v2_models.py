"""The a273222 networks (two_level, trm_style; with and without trajectory feedback) through
everything a user does with the single network: `trc train --arch`, info (per-component counts),
predict, eval, compare, resume, trcd serving (a served feedback model answers as `trc predict`)
and /v1/train with `arch`; and bad input: one clear error, nothing written. Tiny runs only."""
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import Trcd

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))

# arch, feedback: the four kinds of checkpoint of issue 11
KINDS = [("two_level", False), ("two_level", True), ("trm_style", False), ("trm_style", True)]

sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from safetensors_numpy import load  # noqa: E402


def save(path, tensors, meta):
    """A safetensors file of float32 tensors with string metadata."""
    header, blobs, off = {"__metadata__": meta} if meta else {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, "<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def trc(*args, ok=True):
    r = subprocess.run([TRC_BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("v2data")
    trc("generate", "--num-samples", 96, "--seed", 5, "--out", d / "train.npz")
    trc("generate", "--num-samples", 16, "--seed", 6, "--out", d / "test.npz")
    return d


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """One tiny training run per kind: {kind: run directory}."""
    out = {}
    for arch, fb in KINDS:
        run = tmp_path_factory.mktemp(f"{arch}{'_fb' if fb else ''}")
        args = ["train", "--data", data / "train.npz", "--out", run, "--arch", arch,
                "--model-size", "small", "--epochs", 2, "--batch-size", 32, "--threads", 1,
                "--json"]
        trc(*(args + (["--feedback"] if fb else [])))
        out[(arch, fb)] = run
    return out


def predict(ckpt, x0, target):
    r = trc("predict", "--checkpoint", ckpt, "--state", ",".join("%.9g" % v for v in x0),
            "--target", ",".join("%.9g" % v for v in target))
    return np.array(json.loads(r.stdout)["controls"]).reshape(-1)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k[0]}{'_fb' if k[1] else ''}")
def test_train_info_predict_eval_compare(kind, runs, data):
    arch, fb = kind
    ckpt = runs[kind] / "best_model.safetensors"
    info = json.loads(trc("info", "--checkpoint", ckpt, "--json").stdout)
    assert info["config"]["arch"] == arch and info["config"]["feedback"] is fb
    assert info["config"]["system"] == "double_integrator"
    assert info["names"] == "a273222"
    comp = info["components"]
    # model-v2.md section 10: small at s=2, m=1, T=15
    assert comp["state_encoder"] == (9280 if arch == "two_level" else 18496)
    assert comp["reasoning_blocks"] == (66944 if arch == "two_level" else 132992)
    assert comp["initial_states"] == 128
    assert sum(comp.values()) == info["parameters"]
    u = predict(ckpt, [1.0, 0.5], [0.0, 0.0])
    assert u.shape == (15,) and np.all(np.abs(u) <= 4.0)
    rep = runs[kind] / "eval.json"
    trc("eval", "--checkpoint", ckpt, "--data", data / "test.npz", "--json", rep)
    ev = json.loads(rep.read_text())
    assert "success_rate" in json.dumps(ev)
    cmp_ = runs[kind] / "compare.json"
    trc("compare", "--checkpoint", ckpt, "--data", data / "test.npz", "--json", cmp_)
    assert cmp_.is_file()


def test_feedback_changes_the_answer(runs, tmp_path):
    """The setting is live: the feedback checkpoint with the key removed answers otherwise."""
    ckpt = runs[("two_level", True)] / "best_model.safetensors"
    tensors, meta = load(ckpt)
    assert meta["feedback"] == "true"
    del meta["feedback"]
    plain = tmp_path / "plain.safetensors"
    save(plain, tensors, meta)
    a = predict(ckpt, [1.0, -0.5], [0.5, 0.0])
    b = predict(plain, [1.0, -0.5], [0.5, 0.0])
    assert np.max(np.abs(a - b)) > 1e-6
    meta["feedback"] = "maybe"
    save(plain, tensors, meta)
    r = trc("predict", "--checkpoint", plain, "--state", "1,0", "--target", "0,0", ok=False)
    assert r.returncode != 0 and "'feedback'" in r.stderr and len(r.stderr.strip().split("\n")) == 1


def test_names_round_trip(runs, tmp_path):
    ckpt = runs[("trm_style", True)] / "best_model.safetensors"
    old = tmp_path / "old.safetensors"
    trc("info", "--checkpoint", ckpt, "--names", "ec6511d", "--out", old)
    info = json.loads(trc("info", "--checkpoint", old, "--json").stdout)
    assert info["names"] == "ec6511d" and info["config"]["feedback"] is True
    x0, tg = [0.3, -1.2], [1.0, 0.4]
    assert np.array_equal(predict(ckpt, x0, tg), predict(old, x0, tg))


def test_resume(runs, data):
    run = runs[("two_level", True)]
    r = trc("train", "--resume", run, "--epochs", 3, "--threads", 1, "--json")
    last = json.loads(r.stdout.strip().split("\n")[-1])
    assert last["epochs_run"] == 3
    info = json.loads(trc("info", "--checkpoint", run / "last_model.safetensors", "--json").stdout)
    assert info["config"]["feedback"] is True and info["config"]["arch"] == "two_level"


@pytest.mark.parametrize("args, words", [
    (["--arch", "three_level"], "three_level"),
    (["--arch", "single", "--feedback"], "no trajectory feedback"),
    (["--arch", "two_level", "-n", "0"], "-n"),
    (["--arch", "two_level", "-K", "0"], "-K"),
    (["--arch", "two_level", "--names", "v3"], "names"),
])
def test_bad_train_settings(args, words, data, tmp_path):
    out = tmp_path / "run"
    r = trc("train", "--data", data / "train.npz", "--out", out, "--model-size", "small",
            "--epochs", 1, *args, ok=False)
    assert r.returncode != 0 and words in r.stderr
    assert len(r.stderr.strip().split("\n")) == 1
    assert not out.exists()


def test_feedback_needs_two_states(tmp_path):
    d = tmp_path / "rocket.npz"
    trc("generate", "--system", "rocket_landing", "--expert", "lqr_finite", "--num-samples", 8,
        "--horizon", 5, "--out", d)
    out = tmp_path / "run"
    r = trc("train", "--data", d, "--out", out, "--arch", "two_level", "--model-size", "small",
            "--epochs", 1, "--feedback", ok=False)
    assert r.returncode != 0 and "needs s = 2" in r.stderr
    assert not out.exists()


def test_tensors_that_fit_no_architecture(tmp_path):
    bad = tmp_path / "bad.safetensors"
    save(bad, {"foo.weight": np.zeros((2, 2), np.float32)}, {})
    out = tmp_path / "x.safetensors"
    for cmd in (["predict", "--checkpoint", bad, "--state", "1,0", "--target", "0,0"],
                ["info", "--checkpoint", bad, "--out", out]):
        r = trc(*cmd, ok=False)
        assert r.returncode != 0 and len(r.stderr.strip().split("\n")) == 1, r.stderr
        assert "fit no architecture (single, two_level, trm_style)" in r.stderr
    assert not out.exists()


def test_served_models_match_trc_predict(runs, tmp_path):
    """trcd serves every kind (the feedback ones simulate per cycle) and answers as trc predict."""
    models = {f"{a}{'_fb' if fb else ''}": str(runs[(a, fb)] / "best_model.safetensors")
              for a, fb in KINDS}
    srv = Trcd(tmp_path / "srv", models=models).start()
    try:
        listed = {m["name"]: m for m in srv.request("GET", "/v1/models").json()["models"]}
        assert set(models) <= set(listed)
        for a, fb in KINDS:  # the listing says which models simulate every cycle
            m = listed[f"{a}{'_fb' if fb else ''}"]
            assert m["arch"] == a and m["config"]["feedback"] is fb, m
        rng = np.random.default_rng(11)
        for name, ckpt in models.items():
            for _ in range(2):
                x0, tg = rng.uniform(-2, 2, 2), rng.uniform(-2, 2, 2)
                r = srv.request("POST", "/v1/control", json={
                    "model": name, "state": x0.tolist(), "target": tg.tolist()})
                assert r.status == 200, r.text
                served = np.array(r.json()["controls"]).reshape(-1)
                assert np.max(np.abs(served - predict(ckpt, x0, tg))) < 1e-5, name
    finally:
        srv.stop()


def test_v1_train_with_arch_and_feedback(tmp_path):
    srv = Trcd(tmp_path / "srv", args=["--train-rate", "0"]).start()
    try:
        spec = {"name": "tl_fb", "arch": "two_level", "feedback": True, "model_size": "small",
                "num_samples": 64, "epochs": 1, "batch_size": 32, "seed": 3}
        r = srv.request("POST", "/v1/train", json=spec)
        assert r.status == 202, r.text
        job_id = r.json()["job_id"]
        for _ in range(3000):
            j = srv.request("GET", "/v1/jobs/" + job_id).json()
            if j["terminal"]:
                break
            time.sleep(0.05)
        assert j["status"] == "succeeded", j
        assert j["spec"]["arch"] == "two_level" and j["spec"]["feedback"] is True
        r = srv.request("POST", "/v1/control", json={"model": "tl_fb", "state": [1, 0],
                                                     "target": [0, 0]})
        assert r.status == 200, r.text
        ckpt = os.path.join(srv.models_dir, "tl_fb.safetensors")
        served = np.array(r.json()["controls"]).reshape(-1)
        assert np.max(np.abs(served - predict(ckpt, [1, 0], [0, 0]))) < 1e-5
        # refused at submission: one clear error, no job
        for bad, word in (({"arch": "three_level"}, "arch"),
                          ({"arch": "single", "feedback": True}, "feedback")):
            r = srv.request("POST", "/v1/train", json=dict(spec, name="x", **bad))
            assert r.status == 400 and word in r.text, r.text
        assert not os.path.exists(os.path.join(srv.models_dir, "x.safetensors"))
    finally:
        srv.stop()
