"""One system-resolution rule for trc predict, trc eval and trcd (core's trc_system_resolve):
a checkpoint (or dataset) without metadata is the one system of its shape (s, m, T), or is
refused with the same clear error everywhere. A metadata-free s=2, m=1, T=100 model is Van der
Pol (its default horizon, as the original configures it) for all three, simulated and scored by
the same function; s=2, m=1, T=20 (Van der Pol's horizon before) now fits no system and is
refused alike by all three."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import MAKE_MODEL, SMALL_INIT

TRC = os.path.abspath(os.environ.get("TRC_BIN", "build/trc"))


def trc(*args):
    return subprocess.run([TRC, *args], capture_output=True, text=True, timeout=120)


def bare_model(path, T):
    subprocess.run(["/usr/bin/python3", MAKE_MODEL, str(path), "--size", "small", "--T", str(T),
                    "--seed", "3"], check=True)
    return str(path)


def bare_data(path, T, n=8):
    """A dataset in the original's layout (no metadata): states, targets, zero controls."""
    rng = np.random.default_rng(0)
    np.savez(path, initial_states=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
             target_states=np.zeros((n, 2), np.float32),
             control_sequences=np.zeros((n, T, 1), np.float32))
    return str(path)


def test_metadata_free_T100_is_van_der_pol_everywhere(trcd_factory, tmp_path):
    ckpt = bare_model(tmp_path / "bare100.safetensors", 100)
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0")
    assert p.returncode == 0, p.stderr
    one = json.loads(p.stdout)
    assert one["system"] == "van_der_pol"

    data = bare_data(tmp_path / "d100.npz", 100)
    report = tmp_path / "e.json"
    e = trc("eval", "--checkpoint", ckpt, "--data", data, "--json", str(report))
    assert e.returncode == 0, e.stderr
    assert "van_der_pol" in e.stdout
    assert json.loads(report.read_text())["system"] == "van_der_pol"

    srv = trcd_factory(models={"default": ckpt})
    info = srv.request("GET", "/v1/models/default").json()
    assert info["config"]["system"] == "van_der_pol"
    r = srv.request("POST", "/v1/control", json={"state": [1.0, 0.5], "target": [0, 0]})
    assert r.status == 200, r.text
    b = r.json()
    # the same simulation and score as trc predict (float32 controls on the wire; trcd runs the
    # packed plan, predict the plain forward: they agree to float rounding of |u| <= b)
    np.testing.assert_allclose(b["controls"], one["controls"], rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(b["final_state"], one["final_state"], rtol=1e-4, atol=1e-5)
    assert b["final_error"] == pytest.approx(one["final_error"], rel=1e-4, abs=1e-5)
    assert b["cost"] == pytest.approx(one["cost"], rel=1e-4)


@pytest.mark.parametrize("T", [7, 20])
def test_shape_of_no_system_is_refused_everywhere(trcd_factory, tmp_path, T):
    ckpt = bare_model(tmp_path / "bare7.safetensors", T)
    want = f"no system has s=2, m=1, T={T}"
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0")
    assert p.returncode == 2 and want in p.stderr and "--system" in p.stderr
    e = trc("eval", "--data", bare_data(tmp_path / "d7.npz", T))
    assert e.returncode == 2 and want in e.stderr
    # naming the system is the way out
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0",
            "--system", "double_integrator")
    assert p.returncode == 0 and json.loads(p.stdout)["system"] == "double_integrator"
    srv = trcd_factory(models={"default": SMALL_INIT, "bare7": ckpt})
    r = srv.request("GET", "/v1/models/bare7")
    assert r.status == 404
    assert want in srv.log()

