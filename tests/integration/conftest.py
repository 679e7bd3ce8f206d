"""Shared fixtures for the integration tests: start the real build/trcd on a free loopback port
with its own temporary models/data directories, talk to it over HTTP, stop it.

    def test_x(trcd):                      # a server with tests/data/small_init as "default"
        r = trcd.request("POST", "/v1/control", json={"state": [1, 0], "target": [0, 0]})
        assert r.status == 200 and r.json()["controls"]

    def test_y(trcd_factory):              # servers with other settings
        srv = trcd_factory(args=["--max-batch", "2"], env={"TRC_API_TOKEN": "t"},
                           models={"default": SMALL_INIT, "other": SMALL_RANDOM})
        srv.stop()                         # SIGTERM; returns the exit status

Environment: TRCD_BIN (default build/trcd), TRC_TEST_DATA (default tests/data).
The server's stderr goes to <tmp>/trcd.log (srv.log()). Under AddressSanitizer (make asan) every
server must exit cleanly: stop() fails the test when the log has a sanitizer report.
"""
import http.client
import json as jsonlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import openapi_check

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRCD_BIN = os.path.abspath(os.environ.get("TRCD_BIN", os.path.join(ROOT, "build", "trcd")))
TEST_DATA = os.path.abspath(os.environ.get("TRC_TEST_DATA", os.path.join(ROOT, "tests", "data")))
SMALL_INIT = os.path.join(TEST_DATA, "small_init.safetensors")
SMALL_RANDOM = os.path.join(TEST_DATA, "small_random.safetensors")
FIXTURE_DT = "0.3333333333333333"  # 5/15, the dt of the original's first version
MAKE_MODEL = os.path.join(ROOT, "tests", "bench", "make_model.py")
START_TIMEOUT = float(os.environ.get("TRCD_START_TIMEOUT", "30"))


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return jsonlib.loads(self.body.decode())

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Trcd:
    """One trcd process with its own directories under `root`."""

    def __init__(self, root, args=(), env=None, models=None, dashboard_dir=None, dt=FIXTURE_DT):
        self.root = str(root)
        self.models_dir = os.path.join(self.root, "models")
        self.data_dir = os.path.join(self.root, "var")
        self.log_path = os.path.join(self.root, "trcd.log")
        self.dashboard_dir = dashboard_dir or os.path.join(self.root, "dashboard")
        os.makedirs(self.models_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        if models is None:
            models = {"default": SMALL_INIT}
        for name, src in models.items():
            shutil.copyfile(src, os.path.join(self.models_dir, name + ".safetensors"))
            # a bare fixture's sidecar (its dt: trcd never assumes one) goes with it
            side = os.path.splitext(src)[0] + ".json"
            if os.path.exists(side):
                shutil.copyfile(side, os.path.join(self.models_dir, name + ".json"))
        # the bare fixtures record no time step and trcd never assumes one: tests serve them
        # at the dt they were made for (5/15) unless a test passes dt=None to see the refusal
        self.args = (["--dt", dt] if dt else []) + list(args)
        self.env = dict(env or {})
        self.proc = None
        self.port = None

    # ---- life ----
    def start(self, wait_ready=True):
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.update(self.env)
        cmd = [TRCD_BIN, "--host", "127.0.0.1", "--port", "0", "--models-dir", self.models_dir,
               "--data-dir", self.data_dir, "--dashboard-dir", self.dashboard_dir] + self.args
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.root)
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            m = re.search(r"listening on http://[^\s]*:(\d+)", self.log(since_start=True))
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("trcd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        else:
            self.kill()
            raise RuntimeError("trcd did not start:\n" + self.log())
        if wait_ready:
            while time.time() < deadline:
                try:
                    if self.request("GET", "/healthz", timeout=2).status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            raise RuntimeError("trcd never answered /healthz:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15, check=True):
        """Signals the server and waits; returns the exit status. With check, a non-zero
        status or a sanitizer report fails the test."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("trcd did not exit within %ss:\n%s" % (timeout, self.log()))
        self._log.close()
        if check:
            log = self.log()
            assert "Sanitizer" not in log, log[-6000:]
            assert rc == 0, "trcd exited with %s:\n%s" % (rc, log[-3000:])
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "_log", None) and not self._log.closed:
            self._log.close()

    def restart(self, **kw):
        self.stop()
        return self.start(**kw)

    def log(self, since_start=False):
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- HTTP ----
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, json=None, body=None, headers=None, timeout=30, conn=None,
                schema=True):
        """Sends one request. json: an object sent as application/json; body: raw bytes/str
        (no Content-Type added unless given in headers). Uses `conn` when given (keep-alive).
        The response is checked against proto/openapi.yaml (openapi_check.py) unless schema is
        False."""
        hdrs = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            if own:
                c.close()
        if schema:
            openapi_check.check(method, path, resp.status, resp.headers, resp.body)
        return resp

    def control(self, state, target, **extra):
        return self.request("POST", "/v1/control",
                            json=dict(extra, state=list(state), target=list(target)))

    def metrics(self):
        return self.request("GET", "/metrics").text


def make_model(path, size="small", scale=1.0, seed=0, T=15):
    """A random-init bare checkpoint (tests/bench/make_model.py)."""
    subprocess.run(["/usr/bin/python3", MAKE_MODEL, str(path), "--size", size, "--scale",
                    str(scale), "--seed", str(seed), "--T", str(T)], check=True)
    return str(path)


@pytest.fixture
def trcd_factory(tmp_path):
    """Creates and starts servers (each in its own subdirectory of tmp_path); all are stopped
    (and checked for a clean exit) at teardown."""
    servers = []

    def make(args=(), env=None, models=None, dashboard_dir=None, start=True, wait_ready=True,
             dt=FIXTURE_DT):
        root = tmp_path / ("srv%d" % len(servers))
        root.mkdir()
        srv = Trcd(root, args=args, env=env, models=models, dashboard_dir=dashboard_dir, dt=dt)
        servers.append(srv)
        if start:
            srv.start(wait_ready=wait_ready)
        return srv

    yield make
    errors = []
    for srv in servers:
        try:
            srv.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            srv.kill()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def trcd(trcd_factory):
    """A running server serving tests/data/small_init.safetensors as "default"."""
    return trcd_factory()
