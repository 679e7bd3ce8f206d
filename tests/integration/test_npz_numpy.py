"""numpy <-> trc dataset interoperability: numpy.load (without allow_pickle) reads what
`trc generate` writes, with the original lqr_dataset.npz keys, shapes and dtypes plus the
generation settings; and trc reads a float64 dataset numpy writes. Binary: env TRC_BIN
(default build/trc)."""
import json
import os
import subprocess

import numpy as np
import pytest

TRC = os.environ.get("TRC_BIN", "build/trc")


def trc(*args, check=True):
    p = subprocess.run([TRC, *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"trc {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


@pytest.mark.parametrize("expert", ["min_energy", "lqr", "lqr_finite"])
def test_numpy_reads_generated_dataset(tmp_path, expert):
    out = tmp_path / "train.npz"
    trc("generate", "--expert", expert, "--num-samples", "300", "--seed", "7", "--out", str(out))
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {"initial_states", "target_states", "control_sequences",
                                "state_trajectories", "costs", "metadata"}
        x0, xt, u = z["initial_states"], z["target_states"], z["control_sequences"]
        traj, costs = z["state_trajectories"], z["costs"]
        assert x0.shape == (300, 2) and xt.shape == (300, 2)
        assert u.shape == (300, 15, 1) and traj.shape == (300, 16, 2) and costs.shape == (300,)
        for a in (x0, xt, u, traj, costs):
            assert a.dtype == np.float32
        meta = json.loads(str(z["metadata"]))
    assert meta["format"] == "trc-dataset"
    assert meta["system"] == "double_integrator" and meta["expert"] == expert
    assert meta["T"] == 15 and meta["seed"] == 7 and meta["num_samples"] == 300
    assert meta["dt"] == pytest.approx(1 / 3, abs=1e-15) and meta["bound"] == 4.0
    assert meta["box_lo"] == -2.0 and meta["box_hi"] == 2.0
    assert np.all((x0 >= -2) & (x0 <= 2)) and np.all(np.abs(u) <= 4.0)

    # the trajectories are the exact zero-order-hold rollouts of the stored controls
    dt = meta["dt"]
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([dt * dt / 2, dt])
    x = x0.astype(np.float64)
    for t in range(15):
        x = x @ A.T + u[:, t, 0:1].astype(np.float64) * B
        np.testing.assert_allclose(traj[:, t + 1], x, atol=2e-5)
    if expert == "min_energy":
        assert np.max(np.linalg.norm(x - xt, axis=1)) < 1e-5
        np.testing.assert_allclose(costs, (u.astype(np.float64) ** 2).sum(axis=(1, 2)), rtol=1e-5)
        assert abs(costs.mean() - 7.19) < 0.8
    else:
        assert np.all(costs > 0)


def test_trc_reads_numpy_float64(tmp_path):
    rng = np.random.default_rng(3)
    n, T = 25, 15
    dt = 1 / 3
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([dt * dt / 2, dt])
    x0 = rng.uniform(-2, 2, (n, 2))
    u = rng.normal(0, 1, (n, T, 1))
    x = x0.copy()
    for t in range(T):
        x = x @ A.T + u[:, t, 0:1] * B
    target = x.copy()
    target[:5] += 0.5  # five cases miss by |(0.5, 0.5)| = 0.707
    path = tmp_path / "orig.npz"
    np.savez(path, initial_states=x0, target_states=target, control_sequences=u)  # float64
    report = tmp_path / "r.json"
    # the file records no time step: refused until told, here by its sidecar orig.json
    p = trc("eval", "--data", str(path), "--json", str(report), check=False)
    assert p.returncode == 2 and "no time step" in p.stderr and "--dt" in p.stderr, p.stderr
    (tmp_path / "orig.json").write_text(json.dumps({"dt": dt}))
    trc("eval", "--data", str(path), "--json", str(report))
    r = json.loads(report.read_text())["results"]["dataset"]
    assert r["num_samples"] == n and r["successes"] == n - 5
    assert r["error_max"] == pytest.approx(np.sqrt(0.5), rel=1e-6)
    assert r["cost_mean"] == pytest.approx((u**2).sum(axis=(1, 2)).mean(), rel=1e-6)

    # a numpy file of another dtype is refused with the key named
    bad = tmp_path / "bad.npz"
    np.savez(bad, initial_states=x0.astype(np.int16), target_states=target, control_sequences=u)
    p = trc("eval", "--data", str(bad), check=False)
    assert p.returncode == 1
    assert "key 'initial_states'" in p.stderr and p.stderr.count("\n") == 1


def test_compare_report(tmp_path):
    data = tmp_path / "test.npz"
    trc("generate", "--num-samples", "500", "--seed", "123", "--out", str(data))
    out = tmp_path / "cmp.json"
    trc("compare", "--data", str(data), "--json", str(out), "--seed", "1")
    rep = json.loads(out.read_text())
    res = rep["results"]
    assert list(res) == ["random", "expert"]
    assert res["expert"]["success_rate"] == 1.0 and res["random"]["success_rate"] < 0.05
    assert res["random"]["error_mean"] > 1.0
    # N(0, 4) controls over 15 steps: sum u^2 averages 60
    assert res["random"]["cost_mean"] == pytest.approx(60, rel=0.05)
    rel = rep["relative"]["random"]
    assert rel["cost_mean_vs_expert"] == pytest.approx(
        (res["random"]["cost_mean"] - res["expert"]["cost_mean"]) / res["expert"]["cost_mean"])
    assert rep["relative"]["expert"]["error_reduction_vs_random"] == pytest.approx(1.0, abs=1e-6)
