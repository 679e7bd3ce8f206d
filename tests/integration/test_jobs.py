"""Training jobs over HTTP against the real build/trcd: a job's whole life (submit, poll,
succeeded, model usable at once, in /metrics), spec validation, queue limits, cancellation,
delete rules, the list filter, SIGTERM and kill -9 mid-job (with restart and resume), and
/v1/control answering while a job trains.

Servers come from conftest.py (real trcd, free loopback port, temporary directories, a clean
exit checked at the end): tests that restart trcd or need other flags get their own from
`trcd_factory`; the others share one per module.
Specs are tiny (small model, a few hundred samples) so the file runs in well under a minute or
two on a 2-core machine."""

import pathlib
import signal
import threading
import time

import pytest

from conftest import Trcd

# Finishes in well under a second: the model published by the lifecycle test.
TINY = {"name": "tiny", "model_size": "small", "num_samples": 256, "epochs": 3,
        "batch_size": 32, "val_split": 0.25, "seed": 1}
# Runs until cancelled (10,000 epochs); one epoch takes milliseconds.
JSON = {"Content-Type": "application/json"}
ENDLESS = {"model_size": "small", "num_samples": 128, "epochs": 10000, "batch_size": 16,
           "patience": 0, "val_split": 0.25, "seed": 2}


class Jobs:
    """Job helpers over a conftest.Trcd (its request() returns a Response)."""

    def __init__(self, srv):
        self.srv = srv
        self.models = pathlib.Path(srv.models_dir)
        self.data = pathlib.Path(srv.data_dir)

    def request(self, method, path, json=None, body=None, headers=None):
        """(status, lower-cased headers, parsed JSON or text)."""
        r = self.srv.request(method, path, json=json, body=body, headers=headers)
        ctype = r.headers.get("content-type", "")
        return r.status, r.headers, r.json() if ctype.startswith("application/json") else r.text

    def submit(self, spec):
        st, _, body = self.request("POST", "/v1/train", json=spec)
        assert st == 202, body
        return body["job_id"]

    def job(self, job_id):
        st, _, body = self.request("GET", "/v1/jobs/" + job_id)
        assert st == 200, body
        return body

    def wait(self, job_id, pred, timeout=60, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = self.job(job_id)
            if pred(j):
                return j
            if j["terminal"]:
                raise AssertionError(f"job ended {j['status']} ({j['error']}) before {what}")
            time.sleep(0.02)
        raise AssertionError(f"timeout waiting for {what}: {self.job(job_id)}\n{self.srv.log()}")

    def wait_status(self, job_id, status, timeout=60):
        return self.wait(job_id, lambda j: j["status"] == status, timeout, status)

    def wait_epochs(self, job_id, n, timeout=60):
        return self.wait(job_id, lambda j: j["status"] == "running" and len(j["history"]) >= n,
                         timeout, f"{n} epoch(s)")

    def control(self, model="tiny"):
        return self.request("POST", "/v1/control",
                            json={"model": model, "state": [1.0, 0.5], "target": [0.0, 0.0]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # ~30 submits share this server: no per-client rate limit (test_hostile_jobs.py tests it)
    srv = Trcd(tmp_path_factory.mktemp("jobs"), args=["--max-queue", "4", "--train-rate", "0"]).start()
    yield Jobs(srv)
    try:
        srv.stop()
    finally:
        srv.kill()


@pytest.fixture
def factory(trcd_factory):
    return lambda *args, **kw: Jobs(trcd_factory(args=list(args), **kw))


@pytest.fixture(scope="module")
def tiny(server):
    """The whole life of a small job; its published model is used by later tests."""
    st, h, body = server.request("POST", "/v1/train", json=TINY)
    assert st == 202, body
    assert body["status"] == "queued" and body["name"] == "tiny"
    job_id = body["job_id"]
    assert h["location"] == "/v1/jobs/" + job_id
    job = server.wait_status(job_id, "succeeded", timeout=90)
    return {"id": job_id, "job": job}


# ---------------------------------------------------------------- lifecycle

def test_job_lifecycle(server, tiny):
    job = tiny["job"]
    assert job["job_id"] == tiny["id"] and job["name"] == "tiny"
    assert job["terminal"] is True and job["error"] is None
    spec = job["spec"]
    assert spec["name"] == "tiny" and spec["epochs"] == 3 and spec["num_samples"] == 256
    # defaults filled in
    assert spec["system"] == "double_integrator" and spec["expert"] == "min_energy"
    assert spec["scheduler"] == "cosine" and spec["lr"] == pytest.approx(1e-3)
    assert job["result"] == {"model": "tiny", "checkpoint": "tiny.safetensors"}
    assert job["progress"]["epochs"] == 3 and job["progress"]["fraction"] == 1.0
    hist = job["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for h in hist:
        assert h["train_loss"] > 0 and h["val_loss"] > 0 and h["lr"] > 0
        assert h["seconds"] > 0 and h["samples_per_sec"] > 0
    assert job["metrics"]["train_loss"] == hist[-1]["train_loss"]
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["finished_at"].endswith("Z")

    # published: the file, the registry and /v1/control, with no reload step
    assert (server.models / "tiny.safetensors").is_file()
    st, _, info = server.request("GET", "/v1/models/tiny")
    assert st == 200, info
    assert info["checkpoint"] == "tiny.safetensors" and info["size"] == "small"
    st, _, out = server.control()
    assert st == 200, out
    assert out["model"]["name"] == "tiny" and len(out["controls"]) == info["config"]["T"]

    # the job's files
    d = server.data / "jobs" / tiny["id"]
    for f in ("best_model.safetensors", "last_model.safetensors", "optimizer_state.safetensors",
              "training_stats.json"):
        assert (d / f).is_file(), f

    # /metrics counts it
    st, _, text = server.request("GET", "/metrics")
    assert st == 200
    assert 'trcd_jobs{state="succeeded"} 1' in text.splitlines()
    assert "trcd_training_samples_per_second 0" in text

    # a succeeded job is terminal: cancel 409, resume 409
    for action in ("cancel", "resume"):
        st, _, body = server.request("POST", f"/v1/jobs/{tiny['id']}/{action}")
        assert st == 409, body
        assert body["error"]["type"] == "conflict"


def test_trajectory_objective_job(server):
    """A job with the trajectory objective on Van der Pol: its history shows each term of the
    loss, and the spec keeps the objective and its weights."""
    spec = {"name": "vdp_traj", "system": "van_der_pol", "expert": "ilqr",
            "model_size": "small", "num_samples": 64, "epochs": 2, "batch_size": 16,
            "val_split": 0.25, "seed": 3, "objective": "trajectory", "state_weight": 0.1}
    job = server.wait_status(server.submit(spec), "succeeded", timeout=90)
    assert len(job["history"]) == 2
    for row in job["history"]:
        for side in ("train", "val"):
            terms = row[side + "_terms"]
            assert set(terms) == {"terminal", "state", "control"}, row
            assert abs(sum(terms.values()) - row[side + "_loss"]) <= 1e-6 * row[side + "_loss"]
    assert job["spec"]["objective"] == "trajectory" and job["spec"]["state_weight"] == 0.1
    st, _, _ = server.request("DELETE", "/v1/models/vdp_traj")
    assert st in (200, 204)


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("spec,param", [
    ({"num_samples": 1000001}, "num_samples"),
    ({"num_samples": 0}, "num_samples"),
    ({"epochs": 10001}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": -0.1}, "lr"),
    ({"lr": "high"}, "lr"),
    ({"val_split": 0.9}, "val_split"),
    ({"patience": -3}, "patience"),
    ({"model_size": "gigantic"}, "model_size"),
    ({"scheduler": "warmup"}, "scheduler"),
    ({"system": "teapot"}, "system"),
    ({"expert": "oracle"}, "expert"),
    ({"name": "../../etc/passwd"}, "name"),
    ({"name": ".hidden"}, "name"),
    ({"epochs": 3, "colour": "red"}, "colour"),
])
def test_spec_validation(server, spec, param):
    st, _, body = server.request("POST", "/v1/train", json=spec)
    assert st == 400, body
    err = body["error"]
    assert err["code"] == 400 and err["type"] == "invalid_request"
    assert err["param"] == param, err
    assert err["message"]


def test_malformed_and_wrong_type_bodies(server):
    st, _, body = server.request("POST", "/v1/train", body='{"epochs": 3,', headers=JSON)
    assert st == 400 and "line" in body["error"]["message"]
    st, _, body = server.request("POST", "/v1/train", body="[1, 2]", headers=JSON)
    assert st == 400
    st, _, body = server.request("POST", "/v1/train", body="epochs=3",
                                 headers={"Content-Type": "text/plain"})
    assert st == 415


def test_unknown_job_404(server):
    for method, path in (("GET", "/v1/jobs/ffffffffffff"),
                         ("POST", "/v1/jobs/ffffffffffff/cancel"),
                         ("POST", "/v1/jobs/ffffffffffff/resume"),
                         ("DELETE", "/v1/jobs/ffffffffffff")):
        st, _, body = server.request(method, path)
        assert st == 404, (method, path, body)
        assert body["error"]["type"] == "not_found"


# ---------------------------------------------------------------- queue, cancel, delete, list

def test_queue_cancel_delete_and_filter(factory):
    t = factory("--max-jobs", "1", "--max-queue", "1")
    a = t.submit(dict(ENDLESS, name="a"))
    t.wait_status(a, "running", timeout=30)
    b = t.submit(dict(ENDLESS, name="b"))
    assert t.job(b)["status"] == "queued"
    # queue full (1 queued): 503 with Retry-After
    st, h, body = t.request("POST", "/v1/train", json=dict(ENDLESS, name="c"))
    assert st == 503, body
    assert body["error"]["type"] == "unavailable"
    assert int(h["retry-after"]) >= 1

    # the filter
    st, _, body = t.request("GET", "/v1/jobs?status=running")
    assert st == 200 and [j["job_id"] for j in body["jobs"]] == [a]
    st, _, body = t.request("GET", "/v1/jobs?status=queued")
    assert [j["job_id"] for j in body["jobs"]] == [b]
    st, _, body = t.request("GET", "/v1/jobs")
    assert [j["job_id"] for j in body["jobs"]] == [b, a]  # newest first
    st, _, body = t.request("GET", "/v1/jobs?status=sleeping")
    assert st == 400 and body["error"]["param"] == "status"

    # a running job cannot be deleted
    st, _, body = t.request("DELETE", "/v1/jobs/" + a)
    assert st == 409 and body["error"]["type"] == "conflict"

    # cancel the queued one: at once, it never ran
    st, _, body = t.request("POST", f"/v1/jobs/{b}/cancel")
    assert st == 200, body
    assert body["status"] == "cancelled" and body["terminal"] is True
    assert body["started_at"] is None and body["error"] == "cancelled by request"
    # nothing saved: it cannot be resumed
    st, _, body = t.request("POST", f"/v1/jobs/{b}/resume")
    assert st == 409, body

    # cancel the running one: it stops within a batch, the answer says so
    t.wait_epochs(a, 1)
    st, _, body = t.request("POST", f"/v1/jobs/{a}/cancel")
    assert st == 200, body
    assert body["status"] == "cancelled", body
    assert body["error"] == "cancelled by request" and body["finished_at"]
    assert len(body["history"]) >= 1
    # terminal now: 409 on a second cancel
    st, _, body = t.request("POST", f"/v1/jobs/{a}/cancel")
    assert st == 409 and "cancelled" in body["error"]["message"]

    st, _, body = t.request("GET", "/v1/jobs?status=cancelled")
    assert sorted(j["job_id"] for j in body["jobs"]) == sorted([a, b])
    st, _, text = t.request("GET", "/metrics")
    assert 'trcd_jobs{state="cancelled"} 2' in text.splitlines()

    # delete a terminal job: record and files go, the GET is 404
    jobdir = t.data / "jobs" / a
    assert jobdir.is_dir()
    st, _, body = t.request("DELETE", "/v1/jobs/" + a)
    assert st == 200 and body == {"deleted": a}
    assert not jobdir.exists()
    assert t.request("GET", "/v1/jobs/" + a)[0] == 404
    assert t.request("DELETE", "/v1/jobs/" + a)[0] == 404


# ---------------------------------------------------------------- inference during training

def test_control_during_training(server, tiny):
    job_id = server.submit(dict(ENDLESS, name="busy"))
    try:
        server.wait_epochs(job_id, 1)
        lat = []
        errors = []

        def client():
            for _ in range(60):
                t0 = time.time()
                st, _, body = server.control()
                lat.append(time.time() - t0)
                if st != 200:
                    errors.append(body)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors[:3]
        assert len(lat) == 240
        # every request answered while the job trains (how fast is for make bench, not a test)
        job = server.job(job_id)
        assert job["status"] == "running"
        assert job["metrics"]["samples_per_sec"] > 0
        st, _, text = server.request("GET", "/metrics")
        assert f'trcd_job_samples_per_second{{job_id="{job_id}",name="busy"}}' in text
    finally:
        st, _, body = server.request("POST", f"/v1/jobs/{job_id}/cancel")
        assert st == 200 and body["status"] == "cancelled"


# ---------------------------------------------------------------- stopping and crashing

def test_sigterm_mid_job(factory):
    t = factory()
    job_id = t.submit(dict(ENDLESS, name="term"))
    queued = t.submit(dict(TINY, name="waiting"))
    t.wait_epochs(job_id, 1)
    t0 = time.time()
    assert t.srv.stop(signal.SIGTERM, timeout=10) == 0  # clean exit (and no sanitizer report)
    assert time.time() - t0 < 10
    assert "trcd shutting down" in t.srv.log()
    t.srv.start()
    job = t.job(job_id)
    assert job["status"] == "cancelled", job
    assert job["error"] == "trcd shutting down"
    assert len(job["history"]) >= 1
    assert (t.data / "jobs" / job_id / "optimizer_state.safetensors").is_file()
    # the queued job stayed queued and runs now that the slot is free
    t.wait_status(queued, "succeeded", timeout=60)
    # the cancelled one can be resumed from its saved state
    st, h, body = t.request("POST", f"/v1/jobs/{job_id}/resume")
    assert st == 202, body
    assert h["location"] == "/v1/jobs/" + job_id
    assert body["status"] in ("queued", "running") and body["error"] is None
    done = len(job["history"])
    t.wait(job_id, lambda j: j["status"] == "running" and len(j["history"]) > done,
           what="an epoch after resuming")
    st, _, body = t.request("POST", f"/v1/jobs/{job_id}/cancel")
    assert st == 200 and body["status"] == "cancelled"


def test_kill9_then_restart_and_resume(factory):
    t = factory()
    spec = dict(TINY, name="phoenix", epochs=60, num_samples=192, batch_size=16)
    job_id = t.submit(spec)
    t.wait_epochs(job_id, 2)
    t.srv.stop(signal.SIGKILL, check=False)
    jobdir = t.data / "jobs" / job_id
    saved = {f: (jobdir / f).read_bytes() for f in
             ("optimizer_state.safetensors", "last_model.safetensors", "best_model.safetensors")}
    t.srv.start()
    job = t.job(job_id)
    assert job["status"] == "failed", job
    assert job["error"] == "trcd stopped while the job was running (crash or kill)"
    assert job["terminal"] is True and job["finished_at"]
    assert len(job["history"]) >= 2
    # its files are intact after the restart (recovery touches only the database)
    for f, data in saved.items():
        assert (jobdir / f).read_bytes() == data, f
    st, _, body = t.request("POST", f"/v1/jobs/{job_id}/resume")
    assert st == 202, body
    job = t.wait_status(job_id, "succeeded", timeout=90)
    # one row per epoch, no gap and no duplicate across the crash
    epochs = [h["epoch"] for h in job["history"]]
    assert epochs == list(range(1, len(epochs) + 1))
    assert epochs[-1] == job["progress"]["epoch"]
    assert job["result"] == {"model": "phoenix", "checkpoint": "phoenix.safetensors"}
    st, _, out = t.control("phoenix")
    assert st == 200, out


def test_auth_on_job_routes(factory):
    t = factory(env={"TRC_API_TOKEN": "s3cret"})
    assert t.request("POST", "/v1/train", json=TINY)[0] == 401
    assert t.request("POST", "/v1/train", json=TINY,
                     headers={"Authorization": "Bearer nope"})[0] == 403
    assert t.request("POST", "/v1/jobs/abc/cancel")[0] == 401
    assert t.request("POST", "/v1/jobs/abc/resume")[0] == 401
    assert t.request("DELETE", "/v1/jobs/abc")[0] == 401
    assert t.request("GET", "/v1/jobs")[0] == 200  # reading needs no token
    st, _, body = t.request("POST", "/v1/train", json=dict(TINY, epochs=1),
                            headers={"Authorization": "Bearer s3cret"})
    assert st == 202, body
    t.wait_status(body["job_id"], "succeeded")
