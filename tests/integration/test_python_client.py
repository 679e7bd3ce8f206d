"""clients/python/trc_client against a live trcd: every Client method, errors raised as
TRCError with the server's type, code, message and param, the bearer token, and the CLI
(`python3 -m trc_client ...` run from clients/python)."""
import json
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYDIR = os.path.join(ROOT, "clients", "python")
sys.path.insert(0, PYDIR)
from trc_client import Client, TRCError, loss_terms  # noqa: E402
from trc_client.cli import SPEC_FIELDS  # noqa: E402

SMALL_INIT = os.path.join(ROOT, "tests", "data", "small_init.safetensors")

TINY = dict(model_size="small", num_samples=200, epochs=2, batch_size=32, seed=3)


@pytest.fixture
def client(trcd):
    return Client(trcd.url, token=getattr(trcd, "token", None))


def cli(trcd, *args, token=None):
    env = dict(os.environ, PYTHONPATH=PYDIR)
    env.pop("TRC_API_TOKEN", None)
    cmd = [sys.executable, "-m", "trc_client", "--url", trcd.url]
    token = token if token is not None else getattr(trcd, "token", None)
    if token:
        cmd += ["--token", token]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=120, cwd=PYDIR)


def flat(rows):
    return [v for row in rows for v in row]


# ---------------------------------------------------------------- inference and models

def test_control_single(client):
    r = client.control([1.0, 0.5], [0.0, 0.0])
    assert r["model"]["name"] == "default" and len(r["model"]["version"]) == 64
    assert len(r["controls"]) == 15 and all(len(u) == 1 for u in r["controls"])
    assert len(r["final_state"]) == 2 and r["final_error"] >= 0 and r["cost"] >= 0
    assert "trajectory" not in r and "iterations" not in r


def test_control_returns_trajectory_and_iterations(client):
    r = client.control([1.0, 0.5], [0.0, 0.0], model="default", trajectory=True, iterations=True)
    assert len(r["trajectory"]) == 16 and r["trajectory"][0] == pytest.approx([1.0, 0.5])
    assert r["trajectory"][-1] == pytest.approx(r["final_state"], abs=1e-5)
    K = client.model("default")["config"]["K"]
    assert len(r["iterations"]) == K + 1 and r["iterations"][-1] == r["controls"]


def test_control_batch_matches_single(client):
    states, targets = [[1.0, 0.5], [-1.0, 0.2], [0.3, -0.4]], [[0.0, 0.0], [1.0, 0.0], [0.0, 0.5]]
    r = client.control_batch(states, targets, trajectory=True)
    assert len(r["controls"]) == 3 and len(r["final_error"]) == 3 and len(r["trajectory"]) == 3
    one = client.control(states[1], targets[1])
    assert flat(r["controls"][1]) == pytest.approx(flat(one["controls"]), abs=1e-5)


def test_control_steps_left(client, trcd):
    """steps_left: a model trained with tails plans the rest of its horizon (the Client and the
    CLI); a model without tails refuses anything but the whole horizon, naming steps_left."""
    job = client.wait(client.train(name="pyclient-tails", tails=2, **TINY)["job_id"], poll=0.1,
                      timeout=120)
    assert job["status"] == "succeeded", job.get("error")
    assert client.model("pyclient-tails")["config"]["time_left"] is True
    r = client.control([1.0, 0.5], [0.0, 0.0], model="pyclient-tails", steps_left=5,
                       trajectory=True)
    assert len(r["controls"]) == 5 and len(r["trajectory"]) == 6
    b = client.control_batch([[1.0, 0.5], [-1, 0]], [[0, 0], [1, 0]], model="pyclient-tails",
                             steps_left=3)
    assert [len(c) for c in b["controls"]] == [3, 3]
    assert len(client.control([1.0, 0.5], [0.0, 0.0], model="pyclient-tails")["controls"]) == 15
    with pytest.raises(TRCError) as e:
        client.control([1.0, 0.5], [0.0, 0.0], steps_left=5)  # default: no tails
    assert e.value.code == 400 and e.value.param == "steps_left"
    r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--model", "pyclient-tails",
            "--steps-left", "4")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["controls"]) == 4
    for bad in ("0", "-2", "x"):
        r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--steps-left", bad)
        assert r.returncode == 2 and "--steps-left" in r.stderr, r.stderr
    client.delete_model("pyclient-tails")


def test_models_and_model(client):
    names = [m["name"] for m in client.models()]
    assert "default" in names
    info = client.model("default")
    assert info["num_params"] > 0 and info["config"]["s"] == 2 and len(info["sha256"]) == 64


def test_load_by_name_and_by_upload_then_delete(client, trcd):
    src = os.path.join(trcd.models_dir, "default.safetensors")
    info = client.load("pyclient-copy", "default.safetensors")
    assert info["name"] == "pyclient-copy" and info["sha256"] == client.model("default")["sha256"]
    with open(src, "rb") as f:
        up = client.load("pyclient-upload", f.read())
    assert up["name"] == "pyclient-upload" and up["sha256"] == info["sha256"]
    assert client.control([1, 0], [0, 0], model="pyclient-upload")["model"]["name"] == "pyclient-upload"
    assert client.delete_model("pyclient-copy") == {"deleted": "pyclient-copy"}
    assert client.delete_model("pyclient-upload") == {"deleted": "pyclient-upload"}
    with pytest.raises(TRCError) as e:
        client.model("pyclient-copy")
    assert e.value.code == 404 and e.value.type == "not_found"


def test_upload_with_dt(trcd_factory, tmp_path):
    """load(..., dt=) and the CLI's load --upload --dt: an uploaded checkpoint that records no
    time step is served at the one given; without it the server refuses it, and a dt for a
    file of the models directory is the server's 400 naming dt."""
    srv = trcd_factory(dt=None, start=False)
    os.remove(os.path.join(srv.models_dir, "default.json"))  # the fixture's sidecar (its dt)
    srv.start(wait_ready=False)
    c = Client(srv.url)
    with open(SMALL_INIT, "rb") as f:
        raw = f.read()
    with pytest.raises(TRCError) as e:
        c.load("up", raw)
    assert e.value.code == 400
    assert c.load("up", raw, dt=0.25)["config"]["dt"] == 0.25
    assert c.control([1, 0.5], [0, 0], model="up")["model"]["name"] == "up"
    with pytest.raises(TRCError) as e:
        c.load("x", "up.safetensors", dt=0.25)
    assert e.value.code == 400 and e.value.param == "dt"
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(raw)
    r = cli(srv, "load", "--upload", "cli-up", str(bare), "--dt", "0.5")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["config"]["dt"] == 0.5
    r = cli(srv, "load", "--upload", "cli-up2", str(bare), "--dt", "-1")
    assert r.returncode == 1 and "(param dt)" in r.stderr
    r = cli(srv, "load", "--upload", "cli-up2", str(bare), "--dt", "soon")
    assert r.returncode == 2 and "--dt" in r.stderr


def test_health_and_ready(client, trcd, trcd_factory):
    assert client.health()["status"] == "ok"
    assert client.ready() is True
    r = cli(trcd, "health")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok", r.stderr
    r = cli(trcd, "ready")
    assert r.returncode == 0 and json.loads(r.stdout) == {"ready": True}, r.stderr
    empty = trcd_factory(models={}, wait_ready=False)  # no model: alive, not ready
    assert Client(empty.url).ready() is False
    r = cli(empty, "ready")
    assert r.returncode == 1 and json.loads(r.stdout) == {"ready": False}, r.stderr


# ---------------------------------------------------------------- training jobs

def test_train_wait_job_jobs_delete(client):
    sub = client.train(name="pyclient-tiny", **TINY)
    assert sub["status"] == "queued" and sub["job_id"]
    seen = []
    job = client.wait(sub["job_id"], on_progress=seen.append, poll=0.1, timeout=120)
    assert job["status"] == "succeeded" and job["terminal"] is True
    assert seen and seen[-1]["status"] == "succeeded"
    assert len(job["history"]) == 2 and job["result"]["model"] == "pyclient-tiny"
    assert loss_terms(job) is None  # imitation: one term, reported without terms
    assert client.job(sub["job_id"])["job_id"] == sub["job_id"]
    assert any(j["job_id"] == sub["job_id"] for j in client.jobs())
    assert all(j["status"] == "succeeded" for j in client.jobs(status="succeeded"))
    assert sub["job_id"] in [j["job_id"] for j in client.jobs(status="succeeded")]
    assert sub["job_id"] not in [j["job_id"] for j in client.jobs(status="failed")]
    # The model it published answers at once.
    assert client.control([1, 0.5], [0, 0], model="pyclient-tiny")["model"]["name"] == "pyclient-tiny"
    assert client.delete_job(sub["job_id"]) == {"deleted": sub["job_id"]}
    with pytest.raises(TRCError) as e:
        client.job(sub["job_id"])
    assert e.value.code == 404


def test_loss_terms_of_a_mixed_objective(client):
    """A job whose objective has several terms: loss_terms gives each epoch's, and they add up
    to the loss trcd reports (train and validation)."""
    sub = client.train(name="pyclient-mixed", objective="mixed", state_weight=0.1,
                       control_weight=0.01, val_split=0.25, **TINY)
    job = client.wait(sub["job_id"], poll=0.1, timeout=120)
    assert job["status"] == "succeeded", job.get("error")
    names = {"imitation", "terminal", "state", "control"}
    last = loss_terms(job)
    assert last["epoch"] == 2 and set(last["train"]) == names and set(last["val"]) == names
    assert all(v > 0 for v in last["train"].values()), last
    for row in job["history"]:
        terms = loss_terms(job, epoch=row["epoch"])
        assert terms["epoch"] == row["epoch"]
        for side in ("train", "val"):
            total = row[side + "_loss"]
            assert sum(terms[side].values()) == pytest.approx(total, rel=1e-6)
    assert loss_terms(job, epoch=3) is None
    assert loss_terms({"history": []}) is None
    client.delete_model("pyclient-mixed")


def test_jobs_follows_the_pages(client, trcd):
    """jobs() returns every job, page after page (next_cursor), newest first; limit= and the
    CLI's --limit the newest N."""
    ids = [client.train(name=f"pyclient-page{i}", **TINY)["job_id"] for i in range(3)]
    for i in ids:
        assert client.wait(i, poll=0.1, timeout=120)["status"] == "succeeded"
    every = [j["job_id"] for j in client.jobs()]
    assert set(ids) <= set(every)
    assert [j["job_id"] for j in client.jobs(page_size=1)] == every
    assert [j["job_id"] for j in client.jobs(limit=2, page_size=1)] == every[:2]
    assert [j["job_id"] for j in client.jobs(status="succeeded", page_size=2)] == [
        j["job_id"] for j in client.jobs(status="succeeded")]
    with pytest.raises(ValueError):
        client.jobs(limit=0)
    r = cli(trcd, "jobs", "--limit", "2")
    assert r.returncode == 0 and [j["job_id"] for j in json.loads(r.stdout)] == every[:2]
    r = cli(trcd, "jobs", "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr


def test_cancel_and_resume(client):
    sub = client.train(name="pyclient-long", model_size="small", num_samples=2000, epochs=400, seed=5)
    cancelled = []

    def cancel_after_first_epoch(job):  # so that the job has a checkpoint to resume from
        if job["progress"]["epoch"] >= 1 and not job["terminal"] and not cancelled:
            cancelled.append(client.cancel(job["job_id"]))

    job = client.wait(sub["job_id"], on_progress=cancel_after_first_epoch, poll=0.05, timeout=60)
    assert job["status"] == "cancelled" and job["terminal"] is True
    assert cancelled and cancelled[0]["job_id"] == sub["job_id"]
    with pytest.raises(TRCError) as e:
        client.cancel(sub["job_id"])
    assert e.value.code == 409 and e.value.type == "conflict"
    resumed = client.resume(sub["job_id"])
    assert resumed["status"] in ("queued", "running")
    client.cancel(sub["job_id"])
    assert client.wait(sub["job_id"], poll=0.05, timeout=60)["status"] == "cancelled"


def test_wait_timeout(client):
    sub = client.train(name="pyclient-slow", model_size="small", num_samples=2000, epochs=400)
    try:
        with pytest.raises(TimeoutError):
            client.wait(sub["job_id"], poll=0.05, timeout=0.2)
    finally:
        client.cancel(sub["job_id"])


# ---------------------------------------------------------------- errors

def test_error_carries_server_fields(client):
    with pytest.raises(TRCError) as e:
        client.control([1.0, 0.5, 2.0], [0.0, 0.0, 0.0])
    err = e.value
    assert err.code == 400 and err.type == "invalid_request" and err.param == "state"
    assert err.message and err.body["error"]["message"] == err.message
    assert "400 invalid_request" in str(err)


def test_unknown_model_and_job(client):
    with pytest.raises(TRCError) as e:
        client.control([1, 0], [0, 0], model="no-such-model")
    assert e.value.code == 404 and e.value.type == "not_found"
    with pytest.raises(TRCError) as e:
        client.job("no-such-job")
    assert e.value.code == 404


def test_bad_training_spec_names_field(client):
    with pytest.raises(TRCError) as e:
        client.train(batch_size=0)
    assert e.value.code == 400 and e.value.param == "batch_size"


def test_unreachable_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TRCError) as e:
        Client(f"http://127.0.0.1:{port}", timeout=2).models()
    assert e.value.code == 0 and e.value.type == "unreachable"


# ---------------------------------------------------------------- the command line

def test_cli_control(trcd):
    r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--trajectory")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["controls"]) == 15 and len(out["trajectory"]) == 16


def test_cli_control_batch(trcd):
    r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--state", "-1,0", "--target", "1,0")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["controls"]) == 2


def test_cli_models_and_load(trcd):
    r = cli(trcd, "models")
    assert r.returncode == 0 and "default" in [m["name"] for m in json.loads(r.stdout)]
    r = cli(trcd, "load", "cli-copy", "default.safetensors")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "cli-copy"
    r = cli(trcd, "load", "--upload", "cli-upload", os.path.join(trcd.models_dir, "default.safetensors"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "cli-upload"


def test_cli_train_wait_jobs_job_cancel(trcd):
    r = cli(trcd, "train", "--name", "cli-tiny", "--model-size", "small", "--num-samples", "200",
            "--epochs", "2", "--wait", "--poll", "0.1")
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "succeeded"
    # Not a terminal: one progress line per new epoch/status on stderr, the last at 100 %.
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[")]
    assert lines and "100.0%" in lines[-1] and "succeeded" in lines[-1]
    r = cli(trcd, "jobs", "--status", "succeeded")
    assert job["job_id"] in [j["job_id"] for j in json.loads(r.stdout)]
    r = cli(trcd, "job", job["job_id"])
    assert json.loads(r.stdout)["name"] == "cli-tiny"
    r = cli(trcd, "cancel", job["job_id"])  # already succeeded
    assert r.returncode == 1 and "409 conflict" in r.stderr


def test_cli_train_shows_loss_terms(trcd):
    """train --wait with a multi-term objective: each progress line names the terms of the
    latest epoch's train and validation loss."""
    r = cli(trcd, "train", "--name", "cli-mixed", "--model-size", "small", "--num-samples", "200",
            "--epochs", "2", "--objective", "mixed", "--state-weight", "0.1", "--val-split", "0.25",
            "--wait", "--poll", "0.1")
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["spec"]["objective"] == "mixed" and job["spec"]["state_weight"] == 0.1
    last = [ln for ln in r.stderr.splitlines() if ln.startswith("[")][-1]
    terms = loss_terms(job)
    for side in ("train", "val"):
        shown = ", ".join(f"{k} {v:.3g}" for k, v in terms[side].items())
        assert f"{side} {job['metrics'][side + '_loss']:.3g} ({shown})" in last, last


def test_cli_train_flags_cover_the_catalog(trcd, client):
    """Every option POST /v1/train takes (the catalogue's wire options) has a train flag of its
    type, and `catalog` prints the catalogue."""
    r = cli(trcd, "catalog")
    assert r.returncode == 0, r.stderr
    cat = json.loads(r.stdout)
    assert cat == client.catalog()
    flags = {key: typ for _flag, key, typ in SPEC_FIELDS}
    types = {"integer": int, "number": float, "string": str, "boolean": bool}
    wire = [o for s in cat["option_sets"] for o in s["options"] if "wire" in o["where"]]
    assert len(wire) >= 30
    for o in wire:
        assert flags.get(o["name"]) is types[o["type"]], o["name"]
    r = cli(trcd, "train", "--help")
    assert r.returncode == 0 and "--process-qf" in r.stdout and "catalog" in r.stdout


def test_cli_resume_delete_unload(trcd, client):
    """The CLI's resume, delete (a job) and unload (a model) commands."""
    sub = client.train(name="cli-long", model_size="small", num_samples=2000, epochs=400, seed=5)

    def cancel_after_first_epoch(job):  # so that it has saved state to resume from
        if job["progress"]["epoch"] >= 1 and not job["terminal"]:
            client.cancel(job["job_id"])

    client.wait(sub["job_id"], on_progress=cancel_after_first_epoch, poll=0.05, timeout=60)
    r = cli(trcd, "resume", sub["job_id"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] in ("queued", "running")
    client.cancel(sub["job_id"])
    assert client.wait(sub["job_id"], poll=0.05, timeout=60)["status"] == "cancelled"
    r = cli(trcd, "delete", sub["job_id"])
    assert r.returncode == 0 and json.loads(r.stdout) == {"deleted": sub["job_id"]}, r.stderr
    r = cli(trcd, "delete", sub["job_id"])
    assert r.returncode == 1 and "404 not_found" in r.stderr
    client.load("cli-unload", "default.safetensors")
    r = cli(trcd, "unload", "cli-unload")
    assert r.returncode == 0 and json.loads(r.stdout) == {"deleted": "cli-unload"}, r.stderr
    assert "cli-unload" not in [m["name"] for m in client.models()]


def test_wait_poll_must_be_positive():
    c = Client("http://127.0.0.1:9")  # never reached: the check comes first
    for poll in (0, -1, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError):
            c.wait("someid", poll=poll)


def test_answer_that_is_not_json():
    """A 200 that is not JSON (another server, a proxy's page) is a TRCError, not a crash."""
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html>not trcd</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(TRCError) as e:
            Client(url).models()
        assert e.value.code == 200 and e.value.type == "bad_response"
        assert "not JSON" in e.value.message and "not trcd" in e.value.message
        env = dict(os.environ, PYTHONPATH=PYDIR)
        r = subprocess.run([sys.executable, "-m", "trc_client", "--url", url, "models"],
                           capture_output=True, text=True, env=env, timeout=60, cwd=PYDIR)
        assert r.returncode == 1 and "bad_response" in r.stderr and "Traceback" not in r.stderr
    finally:
        srv.shutdown()
        srv.server_close()


def test_bad_url():
    for url in ("localhost:8080", "ftp://host", "http://", "bad"):
        with pytest.raises(ValueError):
            Client(url)
    assert Client("http://127.0.0.1:8080/").url == "http://127.0.0.1:8080"


def test_cli_error_and_usage(trcd):
    r = cli(trcd, "control", "--state", "1,0.5,3", "--target", "0,0,0")
    assert r.returncode == 1 and "400 invalid_request" in r.stderr and "state" in r.stderr
    r = cli(trcd, "control", "--state", "one,two", "--target", "0,0")
    assert r.returncode == 2 and "comma-separated numbers" in r.stderr
    for cmd in (["wait", "someid"], ["train", "--wait"]):
        for poll in ("0", "-1", "nan", "soon"):
            r = cli(trcd, *cmd, "--poll", poll)
            assert r.returncode == 2 and "seconds > 0" in r.stderr, (cmd, poll, r.stderr)
    r = cli(trcd, "train", "--epochs", "two")
    assert r.returncode == 2 and "--epochs" in r.stderr
    r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--polish", "ilqr:x")
    assert r.returncode == 2 and "--polish" in r.stderr and "EXPERT[:ITERS]" in r.stderr
    r = cli(trcd, "control", "--state", "1,0.5", "--target", "0,0", "--polish", "ilqr:0")
    assert r.returncode == 1 and "polish.max_iters" in r.stderr  # the server's range
    r = cli(trcd, "control", "--state", "1,0.5", "--state", "1,0", "--target", "0,0")
    assert r.returncode == 2 and "as many --target as --state" in r.stderr
    env = dict(os.environ, PYTHONPATH=PYDIR, TRC_URL="localhost:8080")
    r = subprocess.run([sys.executable, "-m", "trc_client", "models"], capture_output=True,
                       text=True, env=env, timeout=60, cwd=PYDIR)
    assert r.returncode == 2 and "--url" in r.stderr and "localhost:8080" in r.stderr


# ---------------------------------------------------------------- a server with TRC_API_TOKEN

@pytest.fixture
def token_trcd(trcd_factory):
    return trcd_factory(env={"TRC_API_TOKEN": "s3cret"})


def test_token(token_trcd):
    anon = Client(token_trcd.url)
    assert anon.models()  # reading needs no token
    with pytest.raises(TRCError) as e:
        anon.train(**TINY)
    assert e.value.code == 401 and e.value.type == "unauthorized"
    with pytest.raises(TRCError) as e:
        Client(token_trcd.url, token="wrong").train(**TINY)
    assert e.value.code == 403 and e.value.type == "forbidden"
    good = Client(token_trcd.url, token="s3cret")
    job = good.train(name="tok", **TINY)
    assert good.wait(job["job_id"], poll=0.1, timeout=120)["status"] == "succeeded"
    r = cli(token_trcd, "load", "tok-copy", "default.safetensors", token="s3cret")
    assert r.returncode == 0, r.stderr
    r = cli(token_trcd, "load", "tok-copy2", "default.safetensors", token="")
    assert r.returncode == 1 and "401 unauthorized" in r.stderr
