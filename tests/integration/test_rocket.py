"""rocket_landing end to end (issue 12) with normalisation: trc generate --expert ilqr, train
(statistics from the training split, stored in the checkpoint), info, predict, eval and compare
(the landing metrics and fuel in physical units, expert solve time vs model inference time), and
trcd serving the model; a checkpoint without statistics (a bare export, as the original's) gets
them from `--norm FILE` or the trcd sidecar, and answers exactly as the checkpoint that carries
them; hostile statistics are refused with a clear error."""
import json
import os
import struct
import subprocess

import pytest

TRC = os.path.abspath(os.environ.get("TRC_BIN", "build/trc"))
STATE = "300,-200,1000,5,-3,-15,2000"
TARGET = "0,0,0,0,0,0,2000"


def trc(*args):
    return subprocess.run([TRC, *args], capture_output=True, text=True, timeout=300)


def ok(*args):
    p = trc(*args)
    assert p.returncode == 0, p.stderr
    return p


def strip_metadata(src, dst):
    """The same tensors without __metadata__: a bare PyTorch-style export."""
    with open(src, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__")
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + n:])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rocket")
    ok("generate", "--system", "rocket_landing", "--expert", "ilqr", "--num-samples", "40",
       "--seed", "3", "--out", str(d / "train.npz"))
    ok("generate", "--system", "rocket_landing", "--expert", "ilqr", "--num-samples", "12",
       "--seed", "9", "--out", str(d / "test.npz"))
    ok("train", "--data", str(d / "train.npz"), "--model-size", "small", "--epochs", "2",
       "--batch-size", "16", "--out", str(d / "run"))
    return d


def test_statistics_in_the_checkpoint(run):
    info = json.loads(ok("info", "--checkpoint", str(run / "run/best_model.safetensors"),
                         "--json").stdout)
    norm = info["config"]["normalisation"]
    assert len(norm["x_mean"]) == 7 and len(norm["u_std"]) == 3
    assert 600 < norm["x_mean"][2] < 1500 and 1500 < norm["x_mean"][6] < 2500  # z, mass
    assert all(v > 0 for v in norm["x_std"] + norm["u_std"])
    assert norm["u_mean"][2] > 3000  # thrust_z holds the lander against Mars gravity
    # the default stays off for a system without per-component scales, and "off" is honoured
    ok("train", "--data", str(run / "train.npz"), "--model-size", "small", "--epochs", "1",
       "--normalize", "off", "--out", str(run / "raw"))
    raw = json.loads(ok("info", "--checkpoint", str(run / "raw/best_model.safetensors"),
                        "--json").stdout)
    assert "normalisation" not in raw["config"]
    bad = trc("train", "--data", str(run / "train.npz"), "--normalize", "maybe",
              "--out", str(run / "bad"))
    assert bad.returncode == 2 and "normalize" in bad.stderr
    # a fine-tune starts from parameters that mean something only with their statistics
    ok("train", "--data", str(run / "train.npz"), "--model-size", "small", "--epochs", "1",
       "--batch-size", "16", "--init", str(run / "run/best_model.safetensors"),
       "--out", str(run / "tuned"))
    bad = trc("train", "--data", str(run / "train.npz"), "--model-size", "small", "--epochs", "1",
              "--normalize", "off", "--init", str(run / "run/best_model.safetensors"),
              "--out", str(run / "bad2"))
    assert bad.returncode != 0 and "other normalisation statistics" in bad.stderr, bad.stderr


def test_eval_and_compare_report_landings_in_physical_units(run):
    ckpt = str(run / "run/best_model.safetensors")
    ok("eval", "--data", str(run / "test.npz"), "--json", str(run / "expert.json"))
    expert = json.loads((run / "expert.json").read_text())["results"]
    row = next(iter(expert.values()))
    assert row["metrics"]["landed"] == 1.0  # the expert lands every case
    assert 50 < row["metrics"]["fuel_kg"] < 660
    p = ok("eval", "--checkpoint", ckpt, "--data", str(run / "test.npz"), "--closed-loop",
           "--json", str(run / "model.json"))
    assert "landed (rate)" in p.stdout and "fuel_kg (mean)" in p.stdout
    res = json.loads((run / "model.json").read_text())["results"]
    for name in ("model", "closed_loop"):
        m = res[name]["metrics"]
        assert set(m) == {"landed", "horizontal_error_m", "altitude_error_m",
                          "position_error_m", "speed_error_m_s", "fuel_kg"}
        assert 0 <= m["landed"] <= 1 and m["fuel_kg"] > 0
    ok("compare", "--checkpoint", ckpt, "--data", str(run / "test.npz"), "--json",
       str(run / "cmp.json"))
    cmp = json.loads((run / "cmp.json").read_text())["results"]
    assert cmp["expert"]["solve_ms_per_problem"] > 0
    assert cmp["model"]["inference_ms_per_sample"] > 0
    assert "fuel_kg" in cmp["expert"]["metrics"] and "fuel_kg" in cmp["model"]["metrics"]


def test_bare_export_gets_its_statistics_from_a_flag_or_a_sidecar(run, trcd_factory):
    ckpt = str(run / "run/best_model.safetensors")
    bare = str(run / "bare.safetensors")
    strip_metadata(ckpt, bare)
    info = json.loads(ok("info", "--checkpoint", ckpt, "--json").stdout)
    norm = info["config"]["normalisation"]
    dt = str(info["config"]["dt"])  # a bare export records no time step: given, never assumed
    (run / "norm.json").write_text(json.dumps(norm))
    want = json.loads(ok("predict", "--checkpoint", ckpt, "--state", STATE, "--target",
                         TARGET).stdout)
    assert want["system"] == "rocket_landing"
    got = json.loads(ok("predict", "--checkpoint", bare, "-m", "3", "--bound", "15000", "--dt", dt,
                        "--norm", str(run / "norm.json"), "--state", STATE, "--target",
                        TARGET).stdout)
    assert got["controls"] == want["controls"]
    # the same from the sidecar trcd reads (bare.json beside bare.safetensors), in trc too
    side = run / "bare.json"
    side.write_text(json.dumps({"bound": 15000, "m": 3, "dt": float(dt), "norm": norm}))
    try:
        by_side = json.loads(ok("predict", "--checkpoint", bare, "--state", STATE, "--target",
                                TARGET).stdout)
    finally:
        side.unlink()
    assert by_side["controls"] == want["controls"]
    plain = json.loads(ok("predict", "--checkpoint", bare, "-m", "3", "--bound", "15000", "--dt", dt,
                          "--state", STATE, "--target", TARGET).stdout)
    assert plain["controls"] != want["controls"]  # without statistics: another answer
    # hostile statistics: refused, naming the entry
    for stats, needle in (({**norm, "x_std": norm["x_std"][:3]}, "'x_std' has 3 values"),
                          ({**norm, "u_std": [1.0, 0.0, 1.0]}, "u_std[1]"),
                          ({**norm, "extra": 1}, "unknown key 'extra'")):
        (run / "bad.json").write_text(json.dumps(stats))
        p = trc("predict", "--checkpoint", bare, "-m", "3", "--bound", "15000", "--dt", dt, "--norm",
                str(run / "bad.json"), "--state", STATE, "--target", TARGET)
        assert p.returncode == 2 and needle in p.stderr, p.stderr

    srv = trcd_factory(models={"rocket": ckpt, "bare": bare, "hostile": bare}, start=False)
    with open(os.path.join(srv.models_dir, "bare.json"), "w") as f:
        json.dump({"bound": 15000, "m": 3, "dt": float(dt), "norm": norm}, f)
    with open(os.path.join(srv.models_dir, "hostile.json"), "w") as f:
        json.dump({"bound": 15000, "m": 3, "dt": float(dt),
                   "norm": {**norm, "x_std": [0.0] * 7}}, f)
    srv.start()
    state = [float(v) for v in STATE.split(",")]
    target = [float(v) for v in TARGET.split(",")]
    a = srv.control(state, target, model="rocket")
    b = srv.control(state, target, model="bare")
    assert a.status == 200 and b.status == 200, (a.json(), b.json())
    assert a.json()["controls"] == b.json()["controls"]
    flat = [v for row in want["controls"] for v in row]
    assert [v for row in a.json()["controls"] for v in row] == pytest.approx(flat, rel=1e-5)
    assert a.json()["final_error"] == pytest.approx(want["final_error"], rel=1e-6)
    assert srv.request("GET", "/v1/models/hostile").status == 404
    assert "x_std[0]" in srv.log()
    short = srv.control(state[:3], target, model="rocket")
    assert short.status == 400 and "7 values" in short.json()["error"]["message"]


def test_converter_writes_the_statistics_the_loader_reads(run):
    """convert_checkpoint.py --norm: its metadata values read back as the same float32s."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
    import convert_checkpoint as conv
    ckpt = str(run / "run/best_model.safetensors")
    norm = json.loads(ok("info", "--checkpoint", ckpt, "--json").stdout)["config"]["normalisation"]
    (run / "n.json").write_text(json.dumps(norm))
    meta = conv.read_norm(str(run / "n.json"), 7, 3)
    with open(ckpt, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    assert {k: header["__metadata__"][k] for k in meta}.keys() == meta.keys()
    header["__metadata__"].update(meta)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out = run / "converted.safetensors"
    out.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    back = json.loads(ok("info", "--checkpoint", str(out), "--json").stdout)["config"]
    assert back["normalisation"] == norm
    (run / "n.json").write_text(json.dumps({**norm, "u_std": [1.0, 2.0]}))
    with pytest.raises(conv.ConvertError, match="'u_std' must have 3 values"):
        conv.read_norm(str(run / "n.json"), 7, 3)


def test_train_job_for_rocket_landing_uses_its_defaults(trcd_factory):
    """POST /v1/train with system rocket_landing: the job's data and model take the system's
    horizon, step and bound (not the double integrator's), and the model is normalised."""
    import time
    srv = trcd_factory()
    r = srv.request("POST", "/v1/train", json={
        "system": "rocket_landing", "expert": "ilqr", "num_samples": 32, "epochs": 1,
        "model_size": "small", "batch_size": 16, "name": "lander"})
    assert r.status == 202, r.json()
    job_id = r.json()["job_id"]
    deadline = time.time() + 300
    while time.time() < deadline:
        job = srv.request("GET", "/v1/jobs/" + job_id).json()
        if job["terminal"]:
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    model = srv.request("GET", "/v1/models/lander").json()
    cfg = model["config"]
    assert (cfg["s"], cfg["m"], cfg["T"], cfg["bound"], cfg["dt"]) == (7, 3, 50, 15000.0, 1.0)
    assert cfg["normalised"] is True and cfg["feedback"] is False
    path = os.path.join(srv.models_dir, model["checkpoint"])
    info = json.loads(ok("info", "--checkpoint", path, "--json").stdout)
    assert len(info["config"]["normalisation"]["u_std"]) == 3
    a = srv.control([300, -200, 1000, 5, -3, -15, 2000], [0, 0, 0, 0, 0, 0, 2000],
                    model="lander")
    assert a.status == 200 and len(a.json()["controls"]) == 50
    assert all(abs(v) <= 15000 for row in a.json()["controls"] for v in row)
