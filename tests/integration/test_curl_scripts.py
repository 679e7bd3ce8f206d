"""Every script of clients/curl/ run with POSIX sh against a live trcd, so the examples the
documentation points to never rot: each must succeed, print the JSON the route answers, fail
(non-zero, error body printed) on an error answer, and send TRC_API_TOKEN when it is set."""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CURL = os.path.join(ROOT, "clients", "curl")


def run(trcd, script, *args, token=None, timeout=120):
    env = dict(os.environ, TRC_URL=trcd.url)
    env.pop("TRC_API_TOKEN", None)
    token = token if token is not None else getattr(trcd, "token", None)
    if token:
        env["TRC_API_TOKEN"] = token
    return subprocess.run(["sh", os.path.join(CURL, script), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout} {r.stderr}"
    return json.loads(r.stdout)


def test_every_script_is_tested():
    tested = {"control.sh", "control_batch.sh", "control_polish.sh", "train.sh", "job.sh",
              "cancel.sh", "models.sh", "load.sh"}
    assert set(n for n in os.listdir(CURL) if n.endswith(".sh")) == tested


def test_control(trcd):
    out = ok(run(trcd, "control.sh"))
    assert len(out["controls"]) == 15 and len(out["trajectory"]) == 16
    out = ok(run(trcd, "control.sh", "-1,0.25", "0.5,0", "default"))
    assert out["trajectory"][0] == pytest.approx([-1.0, 0.25]) and out["model"]["name"] == "default"


def test_control_steps_left(trcd):
    """control.sh's STEPS_LEFT: a model trained with tails plans the last steps; the default
    model (no tails) refuses anything but its whole horizon, naming steps_left."""
    resp = trcd.request("POST", "/v1/train", json={
        "name": "curl-tails", "tails": 2, "model_size": "small", "num_samples": 200,
        "epochs": 2, "batch_size": 32, "seed": 3})
    assert resp.status == 202, resp
    job = resp.json()
    r = run(trcd, "job.sh", "--wait", job["job_id"])
    assert r.returncode == 0, r.stdout + r.stderr
    out = ok(run(trcd, "control.sh", "1,0.5", "0,0", "curl-tails", "5"))
    assert len(out["controls"]) == 5 and len(out["trajectory"]) == 6
    assert len(ok(run(trcd, "control.sh", "1,0.5", "0,0", "", "15"))["controls"]) == 15
    r = run(trcd, "control.sh", "1,0.5", "0,0", "", "5")
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["param"] == "steps_left"


def test_control_error_fails_with_body(trcd):
    r = run(trcd, "control.sh", "1,2,3", "0,0,0")
    assert r.returncode != 0
    err = json.loads(r.stdout)["error"]
    assert err["code"] == 400 and err["param"] == "state"


def test_control_polish(trcd):
    out = ok(run(trcd, "control_polish.sh", "1.5,-0.5", "0,0", "3"))
    p = out["polish"]
    assert p["expert"] == "ilqr" and p["max_iters"] == 3 and 1 <= p["iterations"] <= 3
    assert p["cost_after"] <= p["cost_before"]
    r = run(trcd, "control_polish.sh", "1.5,-0.5", "0,0", "0")
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["param"] == "polish.max_iters"


def test_control_batch(trcd):
    out = ok(run(trcd, "control_batch.sh"))
    assert len(out["controls"]) == 3 and len(out["final_error"]) == 3
    out = ok(run(trcd, "control_batch.sh", "1,0.5;-0.5,0.2", "0,0;1,0"))
    assert len(out["controls"]) == 2 and len(out["controls"][0]) == 15


def test_models(trcd):
    assert "default" in [m["name"] for m in ok(run(trcd, "models.sh"))["models"]]
    assert ok(run(trcd, "models.sh", "default"))["name"] == "default"
    assert run(trcd, "models.sh", "nope").returncode != 0


def test_train_then_job_wait(trcd):
    sub = ok(run(trcd, "train.sh", "curl-tiny", "2", "200", "small"))
    assert sub["status"] == "queued"
    r = run(trcd, "job.sh", "--wait", sub["job_id"])
    job = ok(r)
    assert job["status"] == "succeeded" and job["result"]["model"] == "curl-tiny"
    assert "succeeded" in r.stderr.splitlines()[-1]
    assert ok(run(trcd, "job.sh", sub["job_id"]))["job_id"] == sub["job_id"]
    assert sub["job_id"] in [j["job_id"] for j in ok(run(trcd, "job.sh"))["jobs"]]
    assert ok(run(trcd, "control.sh", "1,0.5", "0,0", "curl-tiny"))["model"]["name"] == "curl-tiny"
    r = run(trcd, "job.sh", "--wait", "no-such-job")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == 404


def test_cancel(trcd):
    sub = ok(run(trcd, "train.sh", "curl-long", "500", "5000", "medium"))
    job = ok(run(trcd, "cancel.sh", sub["job_id"]))
    assert job["status"] == "cancelled"
    r = run(trcd, "job.sh", "--wait", sub["job_id"])
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "cancelled"
    r = run(trcd, "cancel.sh", sub["job_id"])  # already terminal
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["code"] == 409


def test_load_by_name_and_upload(trcd):
    info = ok(run(trcd, "load.sh", "curl-copy", "default.safetensors"))
    assert info["name"] == "curl-copy"
    path = os.path.join(trcd.models_dir, "default.safetensors")
    up = ok(run(trcd, "load.sh", "--upload", "curl-upload", path))
    assert up["name"] == "curl-upload" and up["sha256"] == info["sha256"]
    r = run(trcd, "load.sh", "curl-bad", "../etc/passwd")
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["code"] == 400


def test_upload_with_dt(trcd_factory):
    """load.sh --upload NAME PATH DT: an upload that records no time step, served at DT."""
    srv = trcd_factory(dt=None, start=False)
    os.remove(os.path.join(srv.models_dir, "default.json"))  # the fixture's sidecar (its dt)
    srv.start(wait_ready=False)
    path = os.path.join(srv.models_dir, "default.safetensors")
    r = run(srv, "load.sh", "--upload", "curl-up", path)
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["code"] == 400
    assert ok(run(srv, "load.sh", "--upload", "curl-up", path, "0.25"))["config"]["dt"] == 0.25
    r = run(srv, "load.sh", "--upload", "curl-up2", path, "0")
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["param"] == "dt"


def test_token_is_sent(trcd_factory):
    srv = trcd_factory(env={"TRC_API_TOKEN": "tok-curl"})
    r = run(srv, "load.sh", "t1", "default.safetensors", token="")
    assert r.returncode != 0 and json.loads(r.stdout)["error"]["code"] == 401
    assert ok(run(srv, "load.sh", "t1", "default.safetensors", token="tok-curl"))["name"] == "t1"
    assert ok(run(srv, "control.sh", token="tok-curl"))["model"]["name"] == "default"
