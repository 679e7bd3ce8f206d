"""One system-resolution rule for trc predict, trc eval and trcd (core's trc_system_resolve):
a checkpoint (or dataset) without metadata is the one system of its shape (s, m, T), or is
refused with the same clear error everywhere. The case the rule was written for: a
metadata-free s=2, m=1, T=20 model was a double integrator for trc predict and a Van der Pol for
trcd; now all three agree (T=20 is no system's default horizon, so all three refuse it and say
how to name one), and a model of Van der Pol's own shape is Van der Pol everywhere, simulated
and scored by the same function."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

from conftest import MAKE_MODEL, SMALL_INIT

TRC = os.path.abspath(os.environ.get("TRC_BIN", "build/trc"))


def trc(*args):
    return subprocess.run([TRC, *args], capture_output=True, text=True, timeout=120)


def default_horizon(system):
    """The system's default T as `trc generate --help` lists the systems table."""
    out = trc("generate", "--help").stdout
    return int(re.search(r"^\s+%s\s+s=\d+ m=\d+ T=(\d+)" % system, out, re.M).group(1))


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


def test_metadata_free_T20_is_refused_the_same_everywhere(trcd_factory, tmp_path):
    assert 20 not in (default_horizon("double_integrator"), default_horizon("van_der_pol"))
    ckpt = bare_model(tmp_path / "bare20.safetensors", 20)
    want = "no system has s=2, m=1, T=20"
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0")
    assert p.returncode == 2 and want in p.stderr and "--system" in p.stderr, p.stderr
    e = trc("eval", "--checkpoint", ckpt, "--data", bare_data(tmp_path / "d20.npz", 20))
    assert e.returncode == 2 and want in e.stderr, e.stderr
    srv = trcd_factory(models={"default": SMALL_INIT, "bare20": ckpt})
    assert srv.request("GET", "/v1/models/bare20").status == 404
    assert want in srv.log()
    # naming the system is the way out, in each of them
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0",
            "--system", "double_integrator", "--dt", "0.33")
    assert p.returncode == 0 and json.loads(p.stdout)["system"] == "double_integrator"
    e = trc("eval", "--checkpoint", ckpt, "--data", str(tmp_path / "d20.npz"),
            "--system", "double_integrator", "--dt", "0.33")
    assert e.returncode == 0, e.stderr
    # (trcd: a sidecar <stem>.json naming the system, test_server.py)


def test_metadata_free_van_der_pol_shape_is_van_der_pol_everywhere(trcd_factory, tmp_path):
    T = default_horizon("van_der_pol")
    ckpt = bare_model(tmp_path / "vdp.safetensors", T)
    # neither file records a time step: each is told it (never a system's default)
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0")
    assert p.returncode == 2 and "no time step for van_der_pol" in p.stderr, p.stderr
    p = trc("predict", "--checkpoint", ckpt, "--state", "1.0,0.5", "--target", "0,0",
            "--dt", "0.05")
    assert p.returncode == 0, p.stderr
    one = json.loads(p.stdout)
    assert one["system"] == "van_der_pol"

    report = tmp_path / "e.json"
    e = trc("eval", "--checkpoint", ckpt, "--data", bare_data(tmp_path / "d.npz", T),
            "--json", str(report), "--dt", "0.05")
    assert e.returncode == 0, e.stderr
    assert json.loads(report.read_text())["system"] == "van_der_pol"

    srv = trcd_factory(models={"default": ckpt}, dt="0.05")
    assert srv.request("GET", "/v1/models/default").json()["config"]["system"] == "van_der_pol"
    r = srv.request("POST", "/v1/control", json={"state": [1.0, 0.5], "target": [0, 0]})
    assert r.status == 200, r.text
    b = r.json()
    # the same simulation and score as trc predict; trcd's controls come from the packed
    # inference plan, predict's from trc_model_infer: they agree to float rounding (~1e-6 of the
    # bound), which 100 steps of Van der Pol carry into the final state
    np.testing.assert_allclose(b["controls"], one["controls"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b["final_state"], one["final_state"], rtol=1e-3, atol=1e-3)
    assert b["final_error"] == pytest.approx(one["final_error"], rel=1e-3, abs=1e-3)
    assert b["cost"] == pytest.approx(one["cost"], rel=1e-4)
