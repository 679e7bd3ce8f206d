"""trcd on the nonlinear systems (issues 10 and 12): /v1/control with "polish" (the model's
answer as the warm start of ilqr, core's trc_polish, the same function as `trc compare --polish`),
its limits (--max-polish-iters, polish counted in --max-work), a rocket_landing model serving
7-value states, and /v1/train with rocket_landing + ilqr end to end. Every response is also
checked against proto/openapi.yaml by conftest's request()."""
import json
import math
import subprocess
import time

import pytest

from conftest import MAKE_MODEL, make_model

VDP_T = 100  # van_der_pol's default horizon: a metadata-free s=2, m=1, T=100 model is Van der Pol


@pytest.fixture
def vdp(trcd_factory, tmp_path):
    ckpt = make_model(tmp_path / "vdp.safetensors", T=VDP_T, seed=3)
    return lambda args=(): trcd_factory(args=list(args), models={"default": ckpt})


def control(srv, **body):
    r = srv.request("POST", "/v1/control", json=body)
    return r.status, r.json()


STATES = [[1.5, -0.5], [-1.2, 1.8], [0.3, 0.2], [-2.0, -2.0]]


def test_polish_lowers_the_cost_and_reports_it(vdp):
    srv = vdp()
    info = srv.request("GET", "/v1/models/default").json()
    assert info["system"] == "van_der_pol"
    bound = info["config"]["bound"]  # polish keeps the model's bound
    targets = [[0.0, 0.0]] * len(STATES)
    st, plain = control(srv, states=STATES, targets=targets)
    assert st == 200 and "polish" not in plain
    prev, at = None, {}
    for iters in (1, 2, 5, 20):
        st, out = control(srv, states=STATES, targets=targets,
                          polish={"expert": "ilqr", "max_iters": iters})
        assert st == 200, out
        assert len(out["polish"]) == len(STATES)
        for i, p in enumerate(out["polish"]):
            assert p["expert"] == "ilqr" and p["max_iters"] == iters
            assert 1 <= p["iterations"] <= iters
            assert isinstance(p["converged"], bool)
            assert math.isfinite(p["cost_before"]) and p["cost_after"] <= p["cost_before"]
            assert p["ms"] >= 0
            if prev is not None:  # the same guess, more iterations: never higher
                assert p["cost_before"] == pytest.approx(prev[i]["cost_before"], rel=1e-12)
                assert p["cost_after"] <= prev[i]["cost_after"] * (1 + 1e-12)
        # the answer is the polished sequence: different from the model's, within the bound
        assert out["controls"] != plain["controls"]
        assert all(abs(u[0]) <= bound for seq in out["controls"] for u in seq)
        prev = at[iters] = out["polish"]
    # a rough random model's guess: one iteration already helps on every sample
    st, one = control(srv, states=STATES, targets=targets, polish={"expert": "ilqr", "max_iters": 1})
    assert all(p["cost_after"] < p["cost_before"] for p in one["polish"])
    # the single form answers one report, the same as the batch's row
    st, single = control(srv, state=STATES[0], target=[0.0, 0.0],
                         polish={"expert": "ilqr", "max_iters": 5})
    assert st == 200 and isinstance(single["polish"], dict)
    for k in ("iterations", "cost_before", "cost_after"):
        assert single["polish"][k] == pytest.approx(at[5][0][k], rel=1e-6)


def test_polish_limits(vdp, trcd_factory):
    srv = vdp(["--max-polish-iters", "4"])
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0], polish={"expert": "ilqr", "max_iters": 5})
    assert st == 400 and out["error"]["param"] == "polish.max_iters"
    assert "--max-polish-iters" in out["error"]["message"] and "4" in out["error"]["message"]
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0], polish={"expert": "ilqr", "max_iters": 4})
    assert st == 200 and out["polish"]["iterations"] <= 4
    srv.stop()

    # polish is counted in --max-work: T (s+m)^3 multiply-adds per iteration and row
    probe = vdp()
    info = probe.request("GET", "/v1/models/default").json()
    probe.stop()
    c = info["config"]
    model_work = c["K"] * (c["n"] + 1) * info["num_params"]
    per_iter = c["T"] * (c["s"] + c["m"]) ** 3
    srv = vdp(["--max-work", str(model_work + 10 * per_iter)])
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0], polish={"expert": "ilqr", "max_iters": 10})
    assert st == 200, out
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0], polish={"expert": "ilqr", "max_iters": 11})
    assert st == 413 and out["error"]["param"] == "polish.max_iters", out
    assert "--max-work" in out["error"]["message"]
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0])  # without polish it fits
    assert st == 200
    srv.stop()
    # when the model alone is over the limit, the error names the rows, not the polish
    srv = vdp(["--max-work", str(model_work - 1)])
    st, out = control(srv, state=[1.0, 0.5], target=[0, 0], polish={"expert": "ilqr", "max_iters": 1})
    assert st == 413 and out["error"]["param"] == "state", out


def rocket_server(trcd_factory, tmp_path, args=()):
    """A bare small rocket_landing model (s=7, m=3, T=50) with a sidecar naming the system."""
    ckpt = str(tmp_path / "rocket_src.safetensors")
    subprocess.run(["/usr/bin/python3", MAKE_MODEL, ckpt, "--size", "small", "--s", "7", "--m",
                    "3", "--T", "50", "--seed", "5"], check=True)
    srv = trcd_factory(args=list(args), models={"rocket": ckpt}, start=False)
    with open(srv.models_dir + "/rocket.json", "w") as f:
        json.dump({"system": "rocket_landing", "m": 3, "bound": 15000}, f)
    srv.start()
    return srv


def test_rocket_state_of_seven_values(trcd_factory, tmp_path):
    srv = rocket_server(trcd_factory, tmp_path)
    info = srv.request("GET", "/v1/models/rocket").json()
    assert info["system"] == "rocket_landing" and info["arch"] == "single"
    assert (info["config"]["s"], info["config"]["m"], info["config"]["T"]) == (7, 3, 50)
    x0 = [1200.0, -800.0, 2500.0, -10.0, 5.0, -40.0, 2500.0]
    st, out = control(srv, model="rocket", state=x0, target=[0.0] * 7, **{"return": ["trajectory"]})
    assert st == 200, out
    assert len(out["controls"]) == 50 and all(len(u) == 3 for u in out["controls"])
    assert all(abs(v) <= 15000 for u in out["controls"] for v in u)
    assert len(out["final_state"]) == 7 and len(out["trajectory"]) == 51
    assert out["trajectory"][0] == pytest.approx(x0, rel=1e-6)
    for body, param in (({"state": x0[:6], "target": [0.0] * 7}, "state"),
                        ({"state": x0, "target": [0.0] * 2}, "target"),
                        ({"states": [x0[:3]], "targets": [[0.0] * 3]}, "states")):
        st, out = control(srv, model="rocket", **body)
        assert st == 400 and out["error"]["param"] == param, out
        assert "7 values" in out["error"]["message"], out
    # polish works on any system with Jacobians: the rocket too
    st, out = control(srv, model="rocket", state=x0, target=[0.0] * 7,
                      polish={"expert": "ilqr", "max_iters": 2})
    assert st == 200, out
    assert out["polish"]["cost_after"] <= out["polish"]["cost_before"]


def test_train_rocket_landing_ilqr(trcd_factory):
    srv = trcd_factory(args=["--train-rate", "0"])
    spec = {"name": "lander", "system": "rocket_landing", "expert": "ilqr", "model_size": "small",
            "num_samples": 16, "epochs": 1, "batch_size": 8, "val_split": 0.25, "seed": 3}
    r = srv.request("POST", "/v1/train", json=spec)
    assert r.status == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.time() + 120
    while True:  # polled: no assumption about how long 16 ilqr landings take
        job = srv.request("GET", "/v1/jobs/" + job_id).json()
        if job["terminal"] or time.time() > deadline:
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["spec"]["system"] == "rocket_landing" and job["spec"]["expert"] == "ilqr"
    info = srv.request("GET", "/v1/models/lander").json()
    c = info["config"]
    assert info["system"] == "rocket_landing" and info["arch"] == "single"
    # the data (and so the model) have the system's own horizon, time step and bound
    assert (c["s"], c["m"], c["T"], c["dt"], c["bound"]) == (7, 3, 50, 1.0, 15000.0), c
    x0 = [500.0, 300.0, 2000.0, 0.0, 0.0, -30.0, 2000.0]
    st, out = control(srv, model="lander", state=x0, target=[0.0] * 7)
    assert st == 200 and len(out["final_state"]) == 7
    # the trained (normalised) model's answer, in physical units, polished by ilqr
    st, pol = control(srv, model="lander", state=x0, target=[0.0] * 7,
                      polish={"expert": "ilqr", "max_iters": 3})
    assert st == 200, pol
    assert pol["polish"]["cost_after"] <= pol["polish"]["cost_before"]
    assert all(abs(v) <= 15000 for u in pol["controls"] for v in u)


def test_python_client_polish(vdp):
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
    from trc_client import Client
    from trc_client.client import polish_spec
    assert polish_spec("ilqr") == {"expert": "ilqr", "max_iters": 5}
    assert polish_spec("ilqr:12") == {"expert": "ilqr", "max_iters": 12}
    with pytest.raises(ValueError):
        polish_spec("ilqr:x")
    srv = vdp()
    c = Client(srv.url)
    one = c.control([1.5, -0.5], [0.0, 0.0], polish="ilqr:4")
    assert one["polish"]["max_iters"] == 4 and one["polish"]["cost_after"] <= one["polish"]["cost_before"]
    many = c.control_batch(STATES, [[0.0, 0.0]] * len(STATES), polish={"expert": "ilqr", "max_iters": 2})
    assert len(many["polish"]) == len(STATES)


def test_catalogue_says_which_experts_polish(vdp):
    """GET /v1/catalog's experts[].polish is exactly what /v1/control accepts as polish.expert."""
    srv = vdp()
    experts = srv.request("GET", "/v1/catalog").json()["experts"]
    assert any(e["polish"] for e in experts) and not all(e["polish"] for e in experts)
    for e in experts:
        st, out = control(srv, state=[1.0, 0.5], target=[0, 0],
                          polish={"expert": e["name"], "max_iters": 2})
        if e["polish"]:
            assert st == 200 and out["polish"]["expert"] == e["name"], out
        else:
            assert st == 400 and out["error"]["param"] == "polish.expert", out
