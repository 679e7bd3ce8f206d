"""Hostile use of jobs, models and limits against the real build/trcd (issue 8): retention of
finished jobs by count and age, pagination of GET /v1/jobs, the per-client rate limit of
POST /v1/train and a flood of it, the caps on loaded models and on job disk, a job named like a
served model, hostile checkpoint metadata and headers, the per-request work and response
budgets, up-front validation (lr, states), stale temporary files after kill -9, the served set
across a restart, and DELETE /v1/jobs/{id} on a full disk.

Every wait polls a condition with a deadline; nothing assumes how fast the machine is."""

import json
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import SMALL_INIT, TRCD_BIN

TINY = {"model_size": "small", "num_samples": 64, "epochs": 1, "batch_size": 16,
        "val_split": 0.25, "seed": 1}
ENDLESS = {"model_size": "small", "num_samples": 128, "epochs": 10000, "batch_size": 16,
           "patience": 0, "val_split": 0.25, "seed": 2}
UNDER_ASAN = "asan" in TRCD_BIN


def body(r):
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


def submit(srv, spec, status=202):
    r = srv.request("POST", "/v1/train", json=spec)
    assert r.status == status, r
    return r.json()


def poll(pred, timeout=90, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timeout waiting for " + what)


def wait_status(srv, job_id, status, timeout=90):
    def done():
        r = srv.request("GET", "/v1/jobs/" + job_id)
        assert r.status == 200, r
        j = r.json()
        if j["status"] == status:
            return j
        assert not j["terminal"], "job ended %s (%s) before %s" % (j["status"], j["error"], status)
        return None
    return poll(done, timeout, "job %s %s" % (job_id, status))


def job_dirs(srv):
    d = pathlib.Path(srv.data_dir, "jobs")
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def rss_kb(srv, field="VmRSS"):
    with open("/proc/%d/status" % srv.proc.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field + " not found")


def models(srv):
    r = srv.request("GET", "/v1/models")
    assert r.status == 200, r
    return sorted(m["name"] for m in r.json()["models"])


# ---------------------------------------------------------------- retention

def test_retention_by_count_deletes_rows_and_files(trcd_factory):
    srv = trcd_factory(args=["--job-retention", "2"])
    ids = []
    for _ in range(3):
        ids.append(submit(srv, TINY)["job_id"])
        wait_status(srv, ids[-1], "succeeded")
    # the oldest is pruned when the third ends: its row and its directory
    poll(lambda: srv.request("GET", "/v1/jobs/" + ids[0]).status == 404, what="pruning")
    listed = [j["job_id"] for j in srv.request("GET", "/v1/jobs").json()["jobs"]]
    assert listed == [ids[2], ids[1]]
    assert job_dirs(srv) == sorted(ids[1:])
    assert "pruned 1 finished job(s)" in srv.log()


def test_retention_by_age(trcd_factory):
    srv = trcd_factory(args=["--job-max-age", "1"])
    job_id = submit(srv, TINY)["job_id"]
    # pruned once a second has passed since it finished (on the next list, submit or job end)
    poll(lambda: srv.request("GET", "/v1/jobs").status == 200
         and srv.request("GET", "/v1/jobs/" + job_id).status == 404, what="age pruning")
    assert job_dirs(srv) == []


# ---------------------------------------------------------------- pagination

def test_jobs_pagination(trcd_factory):
    srv = trcd_factory(args=["--max-queue", "8"])
    ids = [submit(srv, dict(ENDLESS, seed=i))["job_id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        path = "/v1/jobs?limit=2" + ("&cursor=" + cursor if cursor else "")
        page = srv.request("GET", path).json()
        assert len(page["jobs"]) <= 2
        seen += [j["job_id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and pages < 5
    assert seen == ids[::-1] and pages == 3
    # with a filter: the queued ones only
    queued = srv.request("GET", "/v1/jobs?status=queued&limit=1000").json()
    assert queued["next_cursor"] is None and len(queued["jobs"]) >= 4
    for bad, param in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                       ("cursor=-1", "cursor"), ("cursor=abc", "cursor")):
        r = srv.request("GET", "/v1/jobs?" + bad)
        assert r.status == 400 and r.json()["error"]["param"] == param, (bad, r)
    for job_id in ids:
        assert srv.request("POST", "/v1/jobs/%s/cancel" % job_id).status == 200


# ---------------------------------------------------------------- rate limit and flood

def test_train_rate_limit_per_client(trcd_factory):
    srv = trcd_factory(args=["--train-rate", "3"])
    conn = srv.connection()
    t0 = time.monotonic()
    got = [srv.request("POST", "/v1/train", json={"epochs": 0}, conn=conn) for _ in range(5)]
    refilled = int((time.monotonic() - t0) / 20)  # one token every 20 s at 3 a minute
    conn.close()
    statuses = [r.status for r in got]
    assert statuses[:3] == [400] * 3 and statuses.count(400) <= 3 + refilled, statuses
    assert statuses[3] == 429 or refilled, statuses
    err = got[3].json()["error"]
    assert err["type"] == "rate_limited" and "--train-rate" in err["message"]
    assert 1 <= int(got[3].headers["retry-after"]) <= 20
    # other routes are not limited
    assert srv.request("GET", "/v1/jobs").status == 200


def test_train_flood_holds_limits_and_memory(trcd_factory):
    srv = trcd_factory(args=["--train-rate", "20", "--max-queue", "4"])
    conn = srv.connection()
    for _ in range(20):  # warm up allocations before measuring
        srv.request("GET", "/v1/jobs", conn=conn)
    before = rss_kb(srv)
    counts = {}
    t0 = time.monotonic()
    for i in range(400):
        spec = dict(ENDLESS, seed=i) if i % 2 else {"epochs": -1}
        st = srv.request("POST", "/v1/train", json=spec, conn=conn).status
        counts[st] = counts.get(st, 0) + 1
    after = rss_kb(srv)
    refilled = int((time.monotonic() - t0) / 3) + 1  # one token every 3 s at 20 a minute
    conn.close()
    assert set(counts) <= {202, 400, 429, 503}, counts
    admitted = counts.get(202, 0) + counts.get(400, 0) + counts.get(503, 0)
    assert admitted <= 20 + refilled, counts
    assert counts[429] >= 400 - 20 - refilled, counts
    jobs = srv.request("GET", "/v1/jobs").json()["jobs"]
    assert len(jobs) <= 5, len(jobs)  # one running + --max-queue
    growth_mb = (after - before) / 1024
    assert growth_mb < (256 if UNDER_ASAN else 32), "RSS grew %.1f MB" % growth_mb
    for j in jobs:
        if not j["terminal"]:
            srv.request("POST", "/v1/jobs/%s/cancel" % j["job_id"])


# ---------------------------------------------------------------- model and disk caps

def test_loaded_model_cap(trcd_factory):
    srv = trcd_factory(args=["--max-models", "2"])
    load = lambda name: srv.request("POST", "/v1/models/%s/load" % name,
                                    json={"checkpoint": "default.safetensors"})
    assert load("alias").status == 200
    r = load("third")
    assert r.status == 507, r
    assert r.json()["error"]["type"] == "insufficient_storage"
    assert "--max-models" in r.json()["error"]["message"]
    raw = pathlib.Path(SMALL_INIT).read_bytes()
    r = srv.request("POST", "/v1/models/up/load", body=raw,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status == 507, r
    assert not (pathlib.Path(srv.models_dir) / "up.safetensors").exists()
    # a job that would publish a third model is refused at once
    r = srv.request("POST", "/v1/train", json=dict(TINY, name="fresh"))
    assert r.status == 507, r
    # replacing a loaded name is fine; after a delete there is room again
    assert load("alias").status == 200
    assert srv.request("DELETE", "/v1/models/alias").status == 200
    assert load("third").status == 200
    assert models(srv) == ["default", "third"]


def test_jobs_disk_cap_and_delete_frees_it(trcd_factory):
    srv = trcd_factory(args=["--max-jobs-disk", "64K"])
    job_id = submit(srv, TINY)["job_id"]
    wait_status(srv, job_id, "succeeded")
    r = srv.request("POST", "/v1/train", json=TINY)
    assert r.status == 507, r
    assert "--max-jobs-disk" in r.json()["error"]["message"]
    assert srv.request("DELETE", "/v1/jobs/" + job_id).status == 200
    submit(srv, TINY)


# ---------------------------------------------------------------- names

def test_job_named_like_a_served_model_needs_replace(trcd_factory):
    srv = trcd_factory()
    before = srv.request("GET", "/v1/models/default").json()["sha256"]
    r = srv.request("POST", "/v1/train", json=dict(TINY, name="default"))
    assert r.status == 409, r
    err = r.json()["error"]
    assert err["type"] == "conflict" and err["param"] == "name" and '"replace"' in err["message"]
    r = srv.request("POST", "/v1/train", json=dict(TINY, name="default", replace="yes"))
    assert r.status == 400 and r.json()["error"]["param"] == "replace"
    job = submit(srv, dict(TINY, name="default", replace=True))
    done = wait_status(srv, job["job_id"], "succeeded")
    assert done["spec"]["replace"] is True
    assert srv.request("GET", "/v1/models/default").json()["sha256"] != before


def test_model_loaded_while_queued_is_not_replaced(trcd_factory):
    srv = trcd_factory()
    blocker = submit(srv, ENDLESS)["job_id"]  # holds the only slot: the next job stays queued
    wait_status(srv, blocker, "running")
    job_id = submit(srv, dict(TINY, name="late"))["job_id"]
    assert srv.request("POST", "/v1/models/late/load",
                       json={"checkpoint": "default.safetensors"}).status == 200
    sha = srv.request("GET", "/v1/models/late").json()["sha256"]
    assert srv.request("POST", "/v1/jobs/%s/cancel" % blocker).status == 200
    j = poll(lambda: (lambda j: j if j["terminal"] else None)(
        srv.request("GET", "/v1/jobs/" + job_id).json()), what="job end")
    assert j["status"] == "failed" and '"replace": true' in j["error"], j
    assert srv.request("GET", "/v1/models/late").json()["sha256"] == sha


# ---------------------------------------------------------------- validation up front

@pytest.mark.parametrize("spec,param", [
    ({"lr": 1e-300}, "lr"),
    ({"lr": 1e-7}, "lr"),
    ({"lr": 11}, "lr"),
])
def test_train_spec_ranges(trcd_factory, spec, param):
    srv = trcd_factory()
    r = srv.request("POST", "/v1/train", json=dict(TINY, **spec))
    assert r.status == 400 and r.json()["error"]["param"] == param, r


def test_implausible_state_is_400_not_500(trcd):
    r = trcd.control([3e38, 3e38], [0, 0])
    assert r.status == 400 and r.json()["error"]["param"] == "state", r
    assert "plausible range" in r.json()["error"]["message"]
    r = trcd.request("POST", "/v1/control", json={"states": [[0, 0], [0, 2e6]],
                                                  "targets": [[0, 0], [0, 0]]})
    assert r.status == 400 and "states[1][1]" in r.json()["error"]["message"], r
    assert trcd.control([1e6, -1e6], [0, 0]).status in (200, 422)


# ---------------------------------------------------------------- hostile checkpoints

def with_metadata(src, **changes):
    """The bytes of src (a bare checkpoint) with TRC metadata describing it, changed by
    `changes` (metadata key -> value)."""
    raw = pathlib.Path(src).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = {"trc_format": "1", "size": "small", "s": "2", "m": "1", "T": "15", "b": "4",
            "K": "3", "n": "3", "d": "64", "h": "128", "blocks": "2", "heads": "2",
            "system": "double_integrator", "dt": "0"}
    meta.update({k: str(v) for k, v in changes.items()})
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


def upload(srv, name, data):
    return srv.request("POST", "/v1/models/%s/load" % name, body=data,
                       headers={"Content-Type": "application/octet-stream"})


@pytest.mark.parametrize("changes,field", [
    ({"K": 1024, "n": 1024}, "'K'"),
    ({"n": 1024}, "'n'"),
    ({"dt": "1e308"}, "'dt'"),
    ({"b": "1e30"}, "'b'"),
    ({"T": 100000}, "'T'"),
])
def test_hostile_metadata_is_refused(trcd, changes, field):
    assert upload(trcd, "sane", with_metadata(SMALL_INIT)).status == 200  # the crafting is right
    r = upload(trcd, "hostile", with_metadata(SMALL_INIT, **changes))
    assert r.status == 400, r
    assert field in r.json()["error"]["message"], r
    assert "hostile" not in models(trcd)


def test_huge_header_refused_without_big_allocation(trcd_factory):
    srv = trcd_factory()
    entry = '"t%07d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    header = ("{" + ",".join(entry % i for i in range(1_100_000)) + "}").encode()
    header += b" " * (-len(header) % 8)
    assert len(header) > 60 << 20
    path = pathlib.Path(srv.models_dir, "huge.safetensors")
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    del header
    peak = rss_kb(srv, "VmHWM")
    r = srv.request("POST", "/v1/models/huge/load", json={"checkpoint": "huge.safetensors"},
                    timeout=120)
    assert r.status == 400 and "byte bound" in r.json()["error"]["message"], r
    # the file is read (66 MB); no parse of its million entries (1.48 GB before)
    grew = (rss_kb(srv, "VmHWM") - peak) / 1024
    assert grew < (512 if UNDER_ASAN else 200), "peak RSS grew %.0f MB" % grew
    # under the size bound, more tensors than a checkpoint can have: refused before parsing
    header = ("{" + ",".join(entry % i for i in range(5000)) + "}").encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    r = srv.request("POST", "/v1/models/huge/load", json={"checkpoint": "huge.safetensors"})
    assert r.status == 400 and "more than 4096 tensors" in r.json()["error"]["message"], r
    assert srv.control([1, 0], [0, 0]).status == 200


# ---------------------------------------------------------------- per-request budgets

def test_work_budget(trcd_factory):
    srv = trcd_factory(args=["--max-work", "1G"])
    rows = lambda n: {"states": [[1.0, 0.5]] * n, "targets": [[0.0, 0.0]] * n}
    r = srv.request("POST", "/v1/control", json=rows(4096))
    assert r.status == 413 and r.json()["error"]["param"] == "states", r
    assert "--max-work" in r.json()["error"]["message"]
    assert srv.request("POST", "/v1/control", json=rows(256)).status == 200


def test_response_budget(trcd):
    rows = {"states": [[1.0, 0.5]] * 4096, "targets": [[0.0, 0.0]] * 4096}
    r = trcd.request("POST", "/v1/control", json=dict(rows, **{"return": ["trajectory",
                                                                         "iterations"]}))
    assert r.status == 413 and r.json()["error"]["param"] == "return", r
    assert "--max-response" in r.json()["error"]["message"]
    r = trcd.request("POST", "/v1/control", json=rows)
    assert r.status == 200 and len(r.body) < 4 << 20


# ---------------------------------------------------------------- restarts

def tmp_files(root):
    return [str(p) for p in pathlib.Path(root).rglob("*") if ".tmp." in p.name]


def test_stale_temporary_files_removed_after_kill9(trcd_factory):
    srv = trcd_factory()
    job_id = submit(srv, TINY)["job_id"]
    wait_status(srv, job_id, "succeeded")
    # uploads in a loop, killed with -9 while they run: whatever temporary file it leaves...
    raw = pathlib.Path(SMALL_INIT).read_bytes()
    stop = threading.Event()

    def uploads():
        i = 0
        while not stop.is_set():
            try:
                upload(srv, "up%d" % (i % 4), raw)
            except OSError:
                return
            i += 1
    t = threading.Thread(target=uploads)
    t.start()
    poll(lambda: (pathlib.Path(srv.models_dir) / "up1.safetensors").exists(), what="uploads")
    srv.stop(signal.SIGKILL, check=False)
    stop.set()
    t.join(30)
    # ...and those such a kill leaves mid-write (planted: the kill above may land between writes)
    pathlib.Path(srv.models_dir, "up2.safetensors.tmp.4242.7").write_bytes(raw[:5000])
    pathlib.Path(srv.data_dir, "jobs", job_id, "last.safetensors.tmp.4242.8").write_bytes(b"x")
    keep = pathlib.Path(srv.models_dir, "notes.tmp.txt")
    keep.write_text("not ours")
    srv.start()
    assert tmp_files(srv.models_dir) == [str(keep)]
    assert tmp_files(srv.data_dir) == []
    assert "stale temporary file" in srv.log(since_start=True)
    assert srv.control([1, 0], [0, 0]).status == 200


def test_served_set_survives_restart(trcd_factory):
    srv = trcd_factory()
    assert srv.request("POST", "/v1/models/alias/load",
                       json={"checkpoint": "default.safetensors"}).status == 200
    assert srv.request("DELETE", "/v1/models/default").status == 200
    assert models(srv) == ["alias"]
    srv.restart()
    assert models(srv) == ["alias"]
    # a checkpoint added while trcd is stopped is loaded by its stem
    srv.stop()
    shutil.copyfile(SMALL_INIT, os.path.join(srv.models_dir, "dropped.safetensors"))
    srv.start()
    assert models(srv) == ["alias", "dropped"]
    assert srv.control([1, 0], [0, 0], model="alias").status == 200


# ---------------------------------------------------------------- full disk and paths

def test_error_messages_show_relative_paths(trcd):
    models_dir = pathlib.Path(trcd.models_dir)
    shutil.copyfile(SMALL_INIT, models_dir / "bad.safetensors")
    (models_dir / "bad.json").write_text("{not json")
    r = trcd.request("POST", "/v1/models/bad/load", json={"checkpoint": "bad.safetensors"})
    assert r.status == 400, r
    msg = r.json()["error"]["message"]
    assert "bad.json" in msg and trcd.root not in msg and os.path.realpath(trcd.root) not in msg


@pytest.fixture
def small_tmpfs():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the full-disk test runs in CI as root)")
    d = tempfile.mkdtemp(prefix="trc-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs here: " + (r.stderr.strip() or "mount failed"))
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d])
        os.rmdir(d)


def fill(path, chunk):
    """Appends zeros to path until the disk is full."""
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * chunk)
        except OSError:
            pass


def test_delete_job_on_full_disk(trcd_factory, small_tmpfs):
    srv = trcd_factory(start=False)
    srv.data_dir = small_tmpfs
    srv.start()
    job_id = submit(srv, TINY)["job_id"]
    wait_status(srv, job_id, "succeeded")
    filler = pathlib.Path(small_tmpfs, "filler")
    fill(filler, 65536)
    assert shutil.disk_usage(small_tmpfs).free < 65536
    r = srv.request("DELETE", "/v1/jobs/" + job_id)
    assert r.status == 200, r
    assert job_id not in job_dirs(srv)
    assert srv.request("GET", "/v1/jobs/" + job_id).status == 404
    # with the disk full again, a new job is refused clearly, naming no server path
    fill(filler, 4096)
    r = srv.request("POST", "/v1/train", json=TINY)
    assert r.status == 507 and "disk is full" in r.json()["error"]["message"], r
    assert small_tmpfs not in r.text and srv.root not in r.text
    filler.unlink()
    srv.stop()
