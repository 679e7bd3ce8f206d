"""The original project's later dataset files, as its users have them (issue 14):
tests/data/original_v2_double_integrator.npz (made by tests/data/make_original_npz.py from the
documented layout) holds float64 arrays, no metadata, no dt (it is 0.33) and costs in the
original's convention, sum(u^2) * dt. trc must ask for the dt rather than assume one, take it
from a flag or a sidecar, report costs in our convention (sum u^2), evaluate the stored controls
to the numbers an independent float64 simulation gives, and write files that record what it
learned (round trip)."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import SMALL_INIT, TEST_DATA

TRC = os.path.abspath(os.environ.get("TRC_BIN", "build/trc"))
ORIG = os.path.join(TEST_DATA, "original_v2_double_integrator.npz")
DT = 0.33


def trc(*args):
    return subprocess.run([TRC, *args], capture_output=True, text=True, timeout=120)


def reference():
    """Final errors and sum(u^2) of the stored controls, simulated here in float64 (exact ZOH
    double integrator at dt = 0.33), from the controls as trc reads them (float32)."""
    z = np.load(ORIG)
    x0 = z["initial_states"].astype(np.float32).astype(np.float64)
    xt = z["target_states"].astype(np.float32).astype(np.float64)
    u = z["control_sequences"].astype(np.float32).astype(np.float64)[:, :, 0]
    A = np.array([[1.0, DT], [0.0, 1.0]])
    B = np.array([DT * DT / 2, DT])
    x = x0.copy()
    for k in range(u.shape[1]):
        x = x @ A.T + u[:, k:k + 1] * B
    return np.linalg.norm(x - xt, axis=1), (u**2).sum(axis=1)


def test_the_fixture_has_the_originals_layout():
    z = np.load(ORIG)
    shapes = {k: z[k].shape for k in z.files}
    assert shapes == {"initial_states": (16, 2), "target_states": (16, 2),
                      "control_sequences": (16, 15, 1), "state_trajectories": (16, 16, 2),
                      "costs": (16,)}
    assert all(z[k].dtype == np.dtype("<f8") for k in z.files)
    u = z["control_sequences"][:, :, 0]
    np.testing.assert_allclose(z["costs"], (u**2).sum(axis=1) * DT, rtol=1e-12)


def test_eval_asks_for_the_dt_then_matches_an_independent_simulation(tmp_path):
    p = trc("eval", "--data", ORIG)
    assert p.returncode == 2, p
    assert "no time step" in p.stderr and "--dt" in p.stderr and "sidecar" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    report = tmp_path / "r.json"
    p = trc("eval", "--data", ORIG, "--dt", "0.33", "--json", str(report))
    assert p.returncode == 0, p.stderr
    r = json.loads(report.read_text())
    assert r["dt"] == DT and r["system"] == "double_integrator"
    d = r["results"]["dataset"]
    err, cost = reference()
    assert d["num_samples"] == 16 and d["successes"] == int((err < 0.1).sum()) == 16
    assert d["error_mean"] == pytest.approx(err.mean(), rel=1e-4)
    assert d["error_max"] == pytest.approx(err.max(), rel=1e-4)
    # the midpoint-sampled continuous optimum misses by a visible residual, not by rounding
    assert 1e-3 < d["error_mean"] < 0.05
    # our convention: sum u^2, i.e. the file's costs / dt
    assert d["cost_mean"] == pytest.approx(cost.mean(), rel=1e-5)
    assert d["cost_mean"] == pytest.approx(np.load(ORIG)["costs"].mean() / DT, rel=1e-5)
    # at another dt the same controls miss: the dt matters, so it is never assumed
    other = tmp_path / "o.json"
    assert trc("eval", "--data", ORIG, "--dt", str(5 / 15), "--json", str(other)).returncode == 0
    assert json.loads(other.read_text())["results"]["dataset"]["error_mean"] > 3 * d["error_mean"]


def test_sidecar_records_dt_and_cost_convention(tmp_path):
    data = tmp_path / "orig.npz"
    shutil.copyfile(ORIG, data)
    (tmp_path / "orig.json").write_text(json.dumps({"dt": DT, "cost": "sum_u2_dt"}))
    report = tmp_path / "r.json"
    p = trc("eval", "--data", str(data), "--json", str(report))
    assert p.returncode == 0, p.stderr
    assert "dt=0.33" in p.stdout and "costs sum(u^2)*dt read as sum(u^2)" in p.stdout
    err, cost = reference()
    d = json.loads(report.read_text())["results"]["dataset"]
    assert d["error_mean"] == pytest.approx(err.mean(), rel=1e-4)
    assert d["cost_mean"] == pytest.approx(cost.mean(), rel=1e-5)
    # a sidecar trc cannot use is refused, naming it
    (tmp_path / "orig.json").write_text(json.dumps({"dt": "0.33"}))
    p = trc("eval", "--data", str(data))
    assert p.returncode != 0 and "orig.json (sidecar of" in p.stderr, p.stderr


def test_round_trip_through_predict_records_dt_and_our_costs(tmp_path):
    """trc predict --data over the original's file writes our layout (float32 + metadata):
    states as read, dt and system recorded, costs in our convention; it then evaluates
    without --dt and numpy reads it back."""
    out = tmp_path / "pred.npz"
    p = trc("predict", "--checkpoint", SMALL_INIT, "--dt", "0.33", "--data", ORIG,
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    z, orig = np.load(out), np.load(ORIG)
    meta = json.loads(str(z["metadata"]))
    assert meta["dt"] == DT and meta["system"] == "double_integrator" and meta["cost"] == "sum_u2"
    assert z["initial_states"].dtype == np.float32
    np.testing.assert_array_equal(z["initial_states"], orig["initial_states"].astype(np.float32))
    np.testing.assert_array_equal(z["target_states"], orig["target_states"].astype(np.float32))
    u = z["control_sequences"].astype(np.float64)[:, :, 0]
    np.testing.assert_allclose(z["costs"], (u**2).sum(axis=1), rtol=1e-5)
    report = tmp_path / "r.json"
    p = trc("eval", "--data", str(out), "--json", str(report))  # no --dt: recorded
    assert p.returncode == 0, p.stderr
    r = json.loads(report.read_text())
    assert r["dt"] == DT
    assert r["results"]["dataset"]["cost_mean"] == pytest.approx(float(z["costs"].mean()), rel=1e-5)


def test_compare_reports_our_convention(tmp_path):
    report = tmp_path / "c.json"
    p = trc("compare", "--data", ORIG, "--dt", "0.33", "--json", str(report))
    assert p.returncode == 0, p.stderr
    _, cost = reference()
    expert = json.loads(report.read_text())["results"]["expert"]
    assert expert["cost_mean"] == pytest.approx(cost.mean(), rel=1e-5)
