#!/usr/bin/env python3
"""Soak test of a real trcd (make soak; not part of CI): for --seconds (default 600), 16
keep-alive connections send a mix of good and bad requests, a trainer starts tiny training
jobs and cancels most of them, a swapper hot-swaps the served model between two checkpoints
(by file and by upload). Passes when no response is a 5xx, every request gets the status its
kind expects, no connection fails, trcd's RSS at the end is within 10% of its RSS after warm-up,
and trcd exits cleanly on SIGTERM. Prints the counts and the figures; exits 1 on failure.

Only 127.0.0.1 is ever addressed: trcd is started here on a free loopback port.

    python3 tests/soak/soak.py --trcd build/trcd --seconds 60
"""
import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"  # the only address this script talks to
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
MAX_BATCH = 64
RSS_TOLERANCE = 0.10


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Client:
    """One keep-alive connection; reconnects when the server closes it (counted)."""

    def __init__(self, port, stats):
        self.port, self.stats, self.conn = port, stats, None

    def send(self, kind, method, path, body=None, ctype="application/json", expect=(200,)):
        hdrs = {}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            hdrs["Content-Type"] = ctype
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # a keep-alive connection the server closed between requests: retry once
                self.close()
                if attempt:
                    self.stats.record(kind, "conn-error %s" % type(e).__name__, False)
                    return None, None
            except OSError as e:
                self.close()
                self.stats.record(kind, "conn-error %s" % type(e).__name__, False)
                return None, None
        self.stats.record(kind, r.status, r.status in expect)
        return r.status, data

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()  # (kind, status) -> n
        self.unexpected = collections.Counter()
        self.examples = {}

    def record(self, kind, status, ok):
        with self.lock:
            self.counts[(kind, status)] += 1
            if not ok:
                self.unexpected[(kind, status)] += 1


def vec(rng, s=2):
    return [round(rng.uniform(-2, 2), 6) for _ in range(s)]


# The mix of the 16 connections: (kind, weight, request builder -> (method, path, body, ctype),
# expected statuses).
def _mix():
    j = "application/json"
    return [
        ("control", 30, lambda r: ("POST", "/v1/control", {"state": vec(r), "target": vec(r)}, j), (200,)),
        ("control_alias", 5, lambda r: ("POST", "/control", {"state": vec(r), "target": vec(r)}, j), (200,)),
        ("control_batch", 10, lambda r: ("POST", "/v1/control", {
            "states": [vec(r) for _ in range(r.randint(1, 32))], "targets": None}, j), (200,)),
        ("control_return", 3, lambda r: ("POST", "/v1/control", {
            "state": vec(r), "target": vec(r), "return": ["trajectory", "iterations"]}, j), (200,)),
        ("models", 4, lambda r: ("GET", "/v1/models", None, j), (200,)),
        ("model_get", 3, lambda r: ("GET", "/v1/models/default", None, j), (200,)),
        ("jobs_list", 3, lambda r: ("GET", "/v1/jobs", None, j), (200,)),
        ("healthz", 3, lambda r: ("GET", "/healthz", None, j), (200,)),
        ("readyz", 2, lambda r: ("GET", "/readyz", None, j), (200,)),
        ("metrics", 2, lambda r: ("GET", "/metrics", None, j), (200,)),
        ("bad_json", 4, lambda r: ("POST", "/v1/control", '{"state": [1, 2', j), (400,)),
        ("bad_dim", 4, lambda r: ("POST", "/v1/control", {"state": vec(r, 3), "target": vec(r, 3)}, j), (400,)),
        ("bad_field", 2, lambda r: ("POST", "/v1/control", {"state": [1, 0], "target": [0, 0], "x": 1}, j), (400,)),
        ("bad_number", 2, lambda r: ("POST", "/v1/control", '{"state": [NaN, 0], "target": [0, 0]}', j), (400,)),
        ("bad_type", 2, lambda r: ("POST", "/v1/control", "<state/>", "text/xml"), (415,)),
        ("over_batch", 2, lambda r: ("POST", "/v1/control", {
            "states": [[0, 0]] * (MAX_BATCH + 1), "targets": [[0, 0]] * (MAX_BATCH + 1)}, j), (413,)),
        ("unknown_model", 2, lambda r: ("POST", "/v1/control", {"model": "nope", "state": [1, 0], "target": [0, 0]}, j), (404,)),
        ("unknown_route", 2, lambda r: ("GET", "/v1/nope/%d" % r.randint(0, 9), None, j), (404,)),
        ("wrong_method", 2, lambda r: ("PUT", "/v1/control", None, j), (405,)),
        ("load_dotdot", 1, lambda r: ("POST", "/v1/models/x/load", {"checkpoint": "../etc/passwd"}, j), (400,)),
        ("load_garbage", 1, lambda r: ("POST", "/v1/models/x/load", os.urandom(r.randint(1, 4096)),
                                       "application/octet-stream"), (400,)),
        ("train_bad", 2, lambda r: ("POST", "/v1/train", {"epochs": 0}, j), (400,)),
        ("job_unknown", 1, lambda r: ("GET", "/v1/jobs/ffffffff", None, j), (404,)),
    ]


def worker(port, stats, stop, seed):
    rng = random.Random(seed)
    mix = _mix()
    weights = [m[1] for m in mix]
    c = Client(port, stats)
    while not stop.is_set():
        kind, _, build, expect = rng.choices(mix, weights)[0]
        method, path, body, ctype = build(rng)
        if isinstance(body, dict) and body.get("targets", 0) is None:
            body["targets"] = [vec(rng) for _ in body["states"]]
        c.send(kind, method, path, body, ctype, expect)
    c.close()


def swapper(port, stats, stop, files):
    """Hot-swaps "default" between the two checkpoints, by path and by upload."""
    c = Client(port, stats)
    i = 0
    while not stop.is_set():
        name = files[i % 2]
        if i % 3 == 2:
            with open(os.path.join(DATA, "small_random.safetensors" if i % 2 else
                                   "small_init.safetensors"), "rb") as f:
                c.send("swap_upload", "POST", "/v1/models/uploaded/load", f.read(),
                       "application/octet-stream")
        else:
            c.send("swap_default", "POST", "/v1/models/default/load", {"checkpoint": name})
        i += 1
        stop.wait(0.2)
    c.close()


class Trainer:
    """Starts tiny jobs one at a time; cancels three in four (queued or running); deletes every
    job and published model afterwards so nothing accumulates. `quiet` pauses it between jobs."""

    def __init__(self, port, stats, stop):
        self.port, self.stats, self.stop = port, stats, stop
        self.quiet = threading.Event()
        self.idle = threading.Event()
        self.n = 0

    def wait_terminal(self, c, job, limit=600):
        deadline = time.time() + limit
        while time.time() < deadline:
            st, data = c.send("job_get", "GET", "/v1/jobs/" + job)
            if st == 200 and json.loads(data)["terminal"]:
                return json.loads(data)
            time.sleep(0.05)
        self.stats.record("job_never_finished", job, False)
        return None

    def run(self):
        rng = random.Random(7)
        c = Client(self.port, self.stats)
        while not self.stop.is_set():
            if self.quiet.is_set():
                self.idle.set()
                time.sleep(0.05)
                continue
            self.idle.clear()
            self.n += 1
            name = "soak-%d" % self.n
            spec = {"name": name, "num_samples": rng.choice([32, 64, 128]),
                    "epochs": rng.choice([1, 2, 5, 20]), "model_size": "small",
                    "batch_size": 16, "val_split": 0}
            st, data = c.send("train", "POST", "/v1/train", spec, expect=(202, 429))
            if st != 202:
                time.sleep(0.5)
                continue
            job = json.loads(data)["job_id"]
            cancel = rng.random() < 0.75
            if cancel:
                time.sleep(rng.choice([0, 0.05, 0.2, 0.5]))
                c.send("cancel", "POST", "/v1/jobs/%s/cancel" % job, expect=(200, 409))
            final = self.wait_terminal(c, job)
            if final is None:
                continue
            self.stats.record("job_" + final["status"], "-", final["status"] != "failed")
            if final["status"] == "succeeded":
                c.send("delete_model", "DELETE", "/v1/models/" + name)
            c.send("delete_job", "DELETE", "/v1/jobs/" + job)
        c.close()
        self.idle.set()


def rss_median(pid, n=5):
    xs = []
    for _ in range(n):
        xs.append(rss_kib(pid))
        time.sleep(0.2)
    return sorted(xs)[n // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trcd", default=os.path.join(ROOT, "build", "trcd"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="trc-soak-")
    models = os.path.join(tmp, "models")
    os.makedirs(models)
    os.makedirs(os.path.join(tmp, "var"))
    files = ["a.safetensors", "b.safetensors"]
    shutil.copyfile(os.path.join(DATA, "small_init.safetensors"), os.path.join(models, "default.safetensors"))
    shutil.copyfile(os.path.join(DATA, "small_init.safetensors"), os.path.join(models, files[0]))
    shutil.copyfile(os.path.join(DATA, "small_random.safetensors"), os.path.join(models, files[1]))
    log = open(os.path.join(tmp, "trcd.log"), "wb")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([a.trcd, "--host", HOST, "--port", "0", "--models-dir", models,
                             "--data-dir", os.path.join(tmp, "var"), "--dashboard-dir",
                             os.path.join(tmp, "dash"), "--max-batch", str(MAX_BATCH),
                             "--access-log", "0"], stdout=log, stderr=subprocess.STDOUT, env=env)
    port = None
    deadline = time.time() + 30
    while time.time() < deadline and port is None:
        with open(log.name, "rb") as f:
            m = re.search(rb"listening on http://[^\s]*:(\d+)", f.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None:
            break
        time.sleep(0.05)
    if port is None:
        proc.kill()
        print("soak: trcd did not start:\n" + open(log.name, errors="replace").read())
        return 1

    stats = Stats()
    stop = threading.Event()
    trainer = Trainer(port, stats, stop)
    threads = [threading.Thread(target=worker, args=(port, stats, stop, i), daemon=True)
               for i in range(a.connections)]
    threads.append(threading.Thread(target=swapper, args=(port, stats, stop, files), daemon=True))
    threads.append(threading.Thread(target=trainer.run, daemon=True))
    t0 = time.time()
    for t in threads:
        t.start()
    warm = min(60.0, max(10.0, a.seconds * 0.1))
    print("soak: trcd pid %d on %s:%d, %d connections + swapper + trainer, %.0f s (%.0f s warm-up)"
          % (proc.pid, HOST, port, a.connections, a.seconds, warm), flush=True)

    def quiet_rss():
        trainer.quiet.set()
        trainer.idle.wait(600)
        v = rss_median(proc.pid)
        trainer.quiet.clear()
        return v

    time.sleep(warm)
    rss_start = quiet_rss()
    req_start = sum(stats.counts.values())
    next_report = time.time() + 60
    while time.time() - t0 < a.seconds and proc.poll() is None:
        time.sleep(1)
        if time.time() >= next_report:
            next_report += 60
            print("soak: %4.0f s, %d requests, RSS %d KiB" % (time.time() - t0,
                  sum(stats.counts.values()), rss_kib(proc.pid)), flush=True)
    alive = proc.poll() is None
    rss_end = quiet_rss() if alive else 0
    stop.set()
    for t in threads:
        t.join(120)
    elapsed = time.time() - t0
    rc = None
    if alive:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
    log.close()

    total = sum(stats.counts.values())
    fivexx = sum(n for (k, s), n in stats.counts.items() if isinstance(s, int) and s >= 500)
    unexpected = sum(stats.unexpected.values())
    print("\nsoak: counts by kind and status")
    for (kind, status), n in sorted(stats.counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        mark = "  UNEXPECTED" if (kind, status) in stats.unexpected else ""
        print("  %-16s %-24s %8d%s" % (kind, status, n, mark))
    growth = (rss_end - rss_start) / rss_start if rss_start else float("inf")
    print("soak: %d requests in %.0f s (%.0f/s), %d after warm-up; jobs started %d"
          % (total, elapsed, total / elapsed, total - req_start, trainer.n))
    print("soak: 5xx %d, unexpected statuses or connection errors %d" % (fivexx, unexpected))
    print("soak: RSS after warm-up %d KiB, at the end %d KiB (%+.1f%%, limit +-%d%%)"
          % (rss_start, rss_end, 100 * growth, 100 * RSS_TOLERANCE))
    print("soak: trcd exit status on SIGTERM: %s" % rc)
    failures = []
    if not alive:
        failures.append("trcd died (exit %s)" % proc.returncode)
    if fivexx:
        failures.append("%d responses were 5xx" % fivexx)
    if unexpected:
        failures.append("%d unexpected statuses or connection errors" % unexpected)
    if abs(growth) > RSS_TOLERANCE:
        failures.append("RSS moved %+.1f%%" % (100 * growth))
    if rc != 0:
        failures.append("trcd exit status %s" % rc)
    if failures:
        print("soak: FAILED: " + "; ".join(failures) + " (log: %s)" % log.name)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
