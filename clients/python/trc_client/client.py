"""HTTP client for trcd, standard library only (urllib + json).

Every method maps to one route of proto/openapi.yaml and returns the decoded JSON body.
A non-2xx answer raises TRCError carrying the server's error object.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

TERMINAL = ("succeeded", "failed", "cancelled")


class TRCError(Exception):
    """An error answered by trcd ({"error": {...}}) or a transport failure (code 0)."""

    def __init__(self, code, type_, message, param=None, body=None):
        self.code = code  # HTTP status, 0 when the server could not be reached
        self.type = type_  # e.g. "invalid_request", "not_found", "unavailable"
        self.message = message
        self.param = param  # the request field at fault, when the server names one
        self.body = body  # the decoded error body, as sent
        where = f" (param {param})" if param else ""
        super().__init__(f"{code} {type_}: {message}{where}")


def loss_terms(job, epoch=None):
    """The named terms of a job's training loss (its objective's parts: imitation, terminal,
    state, control, process, ...) at `epoch` (default: the latest finished one), from the job's
    per-epoch history: {"epoch": E, "train": {name: value}, "val": {name: value or None}}.
    None before the first epoch ends, for an unknown epoch, and for an objective whose loss is
    one term (imitation), which trcd reports without terms."""
    rows = [h for h in (job or {}).get("history") or []
            if epoch is None or h.get("epoch") == epoch]
    if not rows or not rows[-1].get("train_terms"):
        return None
    last = rows[-1]
    return {"epoch": last.get("epoch"), "train": dict(last["train_terms"]),
            "val": dict(last.get("val_terms") or {})}


def check_url(url):
    """The server's base URL without a trailing slash; ValueError unless it is http(s)://HOST..."""
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"expected a URL like http://127.0.0.1:8080, got {url!r}")
    return str(url).rstrip("/")


def polish_spec(polish):
    """"ilqr" or "ilqr:ITERS" (5 by default, as trc compare --polish) or a dict -> the request's
    {"expert", "max_iters"} object (the server validates it)."""
    if isinstance(polish, dict):
        return dict(polish)
    expert, _, iters = str(polish).partition(":")
    try:
        return {"expert": expert, "max_iters": int(iters) if iters else 5}
    except ValueError:
        raise ValueError(f"polish: expected EXPERT[:ITERS], got {polish!r}") from None


class Client:
    """Client(url, token=None): talks to one trcd. `token` is sent as a Bearer token
    (needed for state-changing routes when the server runs with TRC_API_TOKEN)."""

    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=30.0):
        self.url = check_url(url)
        self.token = token
        self.timeout = timeout

    # -- transport -------------------------------------------------------------------

    def request(self, method, path, body=None, raw=None, content_type=None):
        """Sends one request; returns the decoded JSON answer or raises TRCError."""
        headers = {"Accept": "application/json"}
        data = None
        if raw is not None:
            data = raw
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw, code = resp.read(), resp.status
            try:
                return _decode(raw)
            except (ValueError, UnicodeDecodeError):  # e.g. a proxy's or another server's page
                text = raw.decode(errors="replace").strip()[:200]
                raise TRCError(code, "bad_response",
                               f"{method} {path}: the answer is not JSON: {text!r}") from None
        except urllib.error.HTTPError as e:
            raise _error_from(e.code, e.read()) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise TRCError(0, "unreachable", f"cannot reach {self.url}: {reason}") from None

    # -- inference -------------------------------------------------------------------

    def control(self, state, target, model=None, trajectory=False, iterations=False,
                polish=None, steps_left=None):
        """POST /v1/control for one (state, target): controls [T][m], final_state, cost, ...

        polish="ilqr:5" (or {"expert": "ilqr", "max_iters": 5}): the model's answer is the warm
        start of that expert for at most 5 iterations; the answer's "polish" reports
        iterations, cost_before, cost_after and ms.
        steps_left=L (1..T): plan the last L steps of the horizon only (a model trained with
        tails, config.time_left; a shrinking-horizon closed loop sends T - t at step t)."""
        body = {"state": list(state), "target": list(target)}
        return self._control(body, model, trajectory, iterations, polish, steps_left)

    def control_batch(self, states, targets, model=None, trajectory=False, iterations=False,
                      polish=None, steps_left=None):
        """POST /v1/control for N pairs at once: every per-sample value gains a leading [N]."""
        body = {"states": [list(s) for s in states], "targets": [list(t) for t in targets]}
        return self._control(body, model, trajectory, iterations, polish, steps_left)

    def _control(self, body, model, trajectory, iterations, polish=None, steps_left=None):
        if model is not None:
            body["model"] = model
        if polish is not None:
            body["polish"] = polish_spec(polish)
        if steps_left is not None:
            body["steps_left"] = steps_left  # the server checks it against the model
        ret = [name for name, on in (("trajectory", trajectory), ("iterations", iterations)) if on]
        if ret:
            body["return"] = ret
        return self.request("POST", "/v1/control", body)

    # -- models ----------------------------------------------------------------------

    def models(self):
        """GET /v1/models: the list of loaded models (ModelInfo dicts)."""
        return self.request("GET", "/v1/models")["models"]

    def model(self, name):
        """GET /v1/models/{name}."""
        return self.request("GET", "/v1/models/" + _seg(name))

    def load(self, name, checkpoint, dt=None):
        """POST /v1/models/{name}/load. `checkpoint` is a file name inside the server's models
        directory (str), or the checkpoint itself (bytes), uploaded as application/octet-stream.
        dt: the time step (seconds) of an upload whose checkpoint records none (?dt=; the
        server refuses it for a file name, and one that contradicts the checkpoint's)."""
        path = "/v1/models/" + _seg(name) + "/load"
        if dt is not None:
            path += "?" + urllib.parse.urlencode({"dt": repr(float(dt))})
        if isinstance(checkpoint, (bytes, bytearray)):
            return self.request("POST", path, raw=bytes(checkpoint))
        return self.request("POST", path, {"checkpoint": checkpoint})

    def delete_model(self, name):
        """DELETE /v1/models/{name}."""
        return self.request("DELETE", "/v1/models/" + _seg(name))

    # -- training jobs ---------------------------------------------------------------

    def train(self, **spec):
        """POST /v1/train with a training spec (name, system, expert, num_samples, seed,
        model_size, epochs, batch_size, lr, scheduler, patience, val_split).
        Returns {"job_id": ..., "status": "queued"}."""
        return self.request("POST", "/v1/train", spec)

    def job(self, job_id):
        """GET /v1/jobs/{id}: status, progress, metrics, per-epoch history (with the loss terms
        of objectives that have several: see loss_terms), result or error."""
        return self.request("GET", "/v1/jobs/" + _seg(job_id))

    def jobs(self, status=None, limit=None, page_size=100):
        """GET /v1/jobs[?status=...]: jobs, newest first: all of them (following next_cursor
        from page to page of page_size, 1..1000), or the newest `limit`."""
        if limit is not None and not (isinstance(limit, int) and limit >= 1):
            raise ValueError(f"limit must be a whole number >= 1, got {limit!r}")
        out, cursor = [], None
        while limit is None or len(out) < limit:
            want = page_size if limit is None else min(page_size, limit - len(out))
            query = {"limit": want}
            if status:
                query["status"] = status
            if cursor:
                query["cursor"] = cursor
            page = self.request("GET", "/v1/jobs?" + urllib.parse.urlencode(query))
            out.extend(page["jobs"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out

    def cancel(self, job_id):
        """POST /v1/jobs/{id}/cancel: the job after cancellation (409 if already terminal)."""
        return self.request("POST", "/v1/jobs/" + _seg(job_id) + "/cancel")

    def resume(self, job_id):
        """POST /v1/jobs/{id}/resume: restarts a failed or cancelled job from its checkpoint."""
        return self.request("POST", "/v1/jobs/" + _seg(job_id) + "/resume")

    def delete_job(self, job_id):
        """DELETE /v1/jobs/{id}: removes a terminal job's record."""
        return self.request("DELETE", "/v1/jobs/" + _seg(job_id))

    def wait(self, job_id, on_progress=None, poll=0.5, timeout=None):
        """Polls a job until it is terminal and returns it. `on_progress(job)` is called after
        every poll. Raises TimeoutError after `timeout` seconds (None: wait for ever).
        ValueError unless poll > 0 (0 would poll the server in a busy loop)."""
        if not (isinstance(poll, (int, float)) and poll > 0 and poll != float("inf")):
            raise ValueError(f"poll must be a number of seconds > 0, got {poll!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("terminal") or job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job.get('status')} after {timeout} s")
            time.sleep(poll)

    # -- service ---------------------------------------------------------------------

    def catalog(self):
        """GET /v1/catalog: systems, experts, architectures, objectives and every training
        option (type, default, range, help) from core's tables."""
        return self.request("GET", "/v1/catalog")

    def health(self):
        """GET /healthz."""
        return self.request("GET", "/healthz")

    def ready(self):
        """GET /readyz: True when the server has a model loaded and is not shutting down."""
        try:
            self.request("GET", "/readyz")
            return True
        except TRCError as e:
            if e.code == 503:
                return False
            raise


def _seg(value):
    """One URL path segment, escaped (job ids and model names never contain '/')."""
    return urllib.parse.quote(str(value), safe="")


def _decode(raw):
    if not raw:
        return None
    return json.loads(raw.decode())


def _error_from(code, raw):
    """Builds a TRCError from an error answer, falling back when the body is not the JSON
    error shape (e.g. a proxy's HTML page)."""
    try:
        body = json.loads(raw.decode())
        err = body["error"]
        return TRCError(err.get("code", code), err.get("type", "unknown"), err.get("message", ""),
                        err.get("param"), body)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        text = raw.decode(errors="replace").strip()[:200]
        return TRCError(code, "http_error", text or f"HTTP {code}")
