"""trcd's HTTP layer against hostile clients (issue 8): slow and idle connections, the per-client
limit, request smuggling, malformed framing, oversized and refused bodies read by ordinary
clients, the body memory cap, uploads on disk, cross-site requests, the dashboard's 405/204.

Every test checks behaviour, never speed: waits are polls with deadlines; slow clients are
driven by the test. Raw sockets come from other loopback addresses (127.0.0.x) where a test
needs more connections than the per-client limit admits."""
import http.client
import json
import os
import re
import socket
import threading
import time

import pytest

from conftest import SMALL_RANDOM

BODY = b'{"state": [1.0, 0.5], "target": [0.0, 0.0]}'


def poll(pred, what, timeout=30.0, srv=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s%s" % (what, "\n" + srv.log()[-3000:] if srv else ""))


def metric(srv, name):
    m = re.search(r"^%s (\d+)" % re.escape(name), srv.metrics(), re.M)
    assert m, name
    return int(m.group(1))


def connect(srv, src="127.0.0.1", timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", srv.port))
    return s


def read_all(s):
    """Reads until the peer closes; a reset after data counts as the end."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def exchange(srv, data, src="127.0.0.1"):
    """Sends raw bytes, returns everything the server sends until it closes."""
    s = connect(srv, src)
    try:
        s.sendall(data)
        return read_all(s)
    finally:
        s.close()


def parse(raw):
    """(status, headers, body) of the first response in raw; body by Content-Length."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(rest)))
    return status, headers, rest[:n], rest[n:]


def closed(s):
    """True once the server has closed s (end of file or reset)."""
    try:
        s.setblocking(False)
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


# ---- slow and idle connections ----

def test_slowloris_is_cut_by_the_request_deadline_while_good_clients_are_served(trcd_factory):
    srv = trcd_factory(args=["--request-timeout", "5", "--max-connections-per-ip", "64"])
    slow = []
    for k in range(40):
        s = connect(srv, "127.0.0.%d" % (2 + k % 4))
        s.sendall(b"POST /v1/control HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    # a body that never ends is cut too
    s = connect(srv, "127.0.0.9")
    s.sendall(b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{")
    slow.append(s)
    stop = threading.Event()

    def trickle():  # one byte per connection every 0.2 s: never idle, never done
        while not stop.is_set():
            for c in slow:
                try:
                    c.send(b"a")
                except OSError:
                    pass
            stop.wait(0.2)

    t = threading.Thread(target=trickle)
    t.start()
    try:
        # the good client is answered while they are all open
        poll(lambda: metric(srv, "trcd_http_connections") >= 41, "41 open connections", srv=srv)
        for _ in range(20):
            assert srv.control([1, 0.5], [0, 0]).status == 200
            assert srv.request("GET", "/healthz").status == 200
        # and the slow ones are closed, although they keep sending
        poll(lambda: all(closed(c) for c in slow), "the slow connections to be closed", srv=srv)
    finally:
        stop.set()
        t.join()
        for c in slow:
            c.close()
    assert metric(srv, "trcd_http_request_deadline_closes_total") >= 41
    # a keep-alive client that answers promptly is unaffected by the deadline
    conn = srv.connection()
    for _ in range(3):
        assert srv.request("GET", "/healthz", conn=conn).status == 200
    conn.close()


def test_a_connection_flood_over_the_per_client_limit_is_not_a_log_flood(trcd_factory):
    """libmicrohttpd writes a line for every connection it refuses over the per-client limit:
    trcd writes at most 10 of them a second, in its own format, and counts the rest."""
    srv = trcd_factory(args=["--max-connections-per-ip", "1"])
    held = connect(srv, "127.0.0.7")
    flood = 300
    try:
        poll(lambda: metric(srv, "trcd_http_connections") >= 1, "the held connection", srv=srv)
        t0 = time.time()
        for _ in range(flood):
            connect(srv, "127.0.0.7").close()
        # accepted in order: once a later client is answered, every refusal is logged or counted
        assert parse(exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              src="127.0.0.8"))[0] == 200
        seconds = time.time() - t0
    finally:
        held.close()
    srv.stop()  # the last second's count is reported at shutdown
    log = srv.log()
    lines = [l for l in log.splitlines() if "libmicrohttpd: Server reached connection limit" in l]
    dropped = sum(int(n) for n in re.findall(r"(\d+) more such line\(s\) dropped", log))
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ trcd: libmicrohttpd: ", l) for l in lines)
    assert len(lines) + dropped == flood, (len(lines), dropped)
    assert len(lines) <= 10 * (int(seconds) + 2), (len(lines), seconds)


def test_idle_connections_cost_no_thread(trcd_factory):
    """Far more idle connections than the old thread-per-connection cap (256) are held while
    requests are answered."""
    srv = trcd_factory(args=["--max-connections", "2000", "--max-connections-per-ip", "200"])
    idle = [connect(srv, "127.0.1.%d" % (1 + k // 150)) for k in range(600)]
    try:
        poll(lambda: metric(srv, "trcd_http_connections") >= 600, "600 open connections", srv=srv)
        r = srv.control([1, 0.5], [0, 0])
        assert r.status == 200, r
        assert srv.request("GET", "/v1/models").status == 200
    finally:
        for s in idle:
            s.close()


def test_per_client_connection_limit(trcd_factory):
    srv = trcd_factory(args=["--max-connections-per-ip", "4"])
    held = [connect(srv, "127.0.0.5") for _ in range(4)]
    try:
        poll(lambda: metric(srv, "trcd_http_connections") >= 4, "4 connections", srv=srv)
        extra = connect(srv, "127.0.0.5")  # accepted by the kernel, then closed by trcd
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_all(extra) == b""
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            extra.close()
        # another client is not affected; nor is this one on the connections it has
        assert parse(exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              src="127.0.0.6"))[0] == 200
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert parse(read_all(held[0]))[0] == 200
        # its slot freed, it may connect again
        poll(lambda: metric(srv, "trcd_http_connections") <= 4, "the closed slot", srv=srv)
        assert parse(exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              src="127.0.0.5"))[0] == 200
    finally:
        for s in held:
            s.close()


# ---- framing and smuggling ----

def test_conflicting_content_lengths_are_refused_and_nothing_smuggled(trcd):
    smuggled = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = exchange(trcd, b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nContent-Length: 0\r\n\r\n%s%s"
                   % (len(BODY), BODY, smuggled))
    status, headers, body, rest = parse(raw)
    assert status == 400 and headers["connection"] == "close", raw
    assert json.loads(body)["error"]["type"] == "invalid_request"
    assert rest == b"", rest  # the hidden request was not answered


@pytest.mark.parametrize("te,status", [("chunked", 400), ("identity", 501), ("gzip", 501),
                                       ("gzip, chunked", 501)])
def test_transfer_encodings(trcd, te, status):
    cl = b"Content-Length: 5\r\n" if status == 400 else b""
    # headers only: the answer must come at once, not at a timeout
    raw = exchange(trcd, b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"%sTransfer-Encoding: %s\r\n\r\n" % (cl, te.encode()))
    got, headers, body, _ = parse(raw)
    assert got == status and headers["connection"] == "close", raw
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == status


@pytest.mark.parametrize("value,code", [(b"-1", 400), (b"abc", 400), (b"+33", 400), (b"1 2", 400),
                                        (b"99999999999999999999", 413)])
def test_bad_content_length_is_refused_and_closed(trcd, value, code):
    raw = exchange(trcd, b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %s\r\n\r\n%s" % (value, BODY))
    status, headers, body, rest = parse(raw)
    assert status == code and headers.get("connection") == "close", raw
    if headers.get("content-type") == "application/json":
        assert json.loads(body)["error"]["code"] == code
    else:
        # libmicrohttpd 0.9.75 answers a Content-Length it cannot parse itself, before any
        # callback of trcd runs (docs/server.md, "What the HTTP library answers itself")
        assert b"Content-Length" in raw
    assert trcd.request("GET", "/healthz").status == 200


def test_oversized_target_and_headers_are_json(trcd):
    status, _, body, _ = parse(exchange(trcd, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 414 and json.loads(body)["error"]["code"] == 414
    status, _, body, _ = parse(exchange(trcd, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                        b"a" * 20000 + b"\r\n\r\n"))
    assert status == 431 and json.loads(body)["error"]["code"] == 431
    status, _, body, _ = parse(exchange(trcd, b"GET /healthz HTTP/1.1\r\n\r\n"))
    assert status == 400 and "Host" in json.loads(body)["error"]["message"]


# ---- bodies: refused ones readable, memory capped, uploads on disk ----

def test_413_is_readable_by_http_client_posting_2mib(trcd_factory):
    srv = trcd_factory(args=["--max-body", "1M"])
    data = b"x" * (2 << 20)
    for _ in range(50):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            c.request("POST", "/v1/control", body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        assert r.status == 413, body
        assert json.loads(body)["error"]["type"] == "payload_too_large"
    assert srv.control([1, 0.5], [0, 0]).status == 200


def test_body_memory_cap_is_503_with_retry_after(trcd_factory):
    srv = trcd_factory(args=["--max-body", "60000", "--max-body-memory", "64K"])
    held = connect(srv)
    try:
        held.sendall(b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{")
        poll(lambda: metric(srv, "trcd_http_body_bytes") >= 60000, "the held body", srv=srv)
        r = srv.request("POST", "/v1/control", body=b" " * 9000 + BODY,
                        headers={"Content-Type": "application/json"})
        assert r.status == 503 and r.headers["retry-after"] == "1", r
        assert r.json()["error"]["type"] == "unavailable"
        assert "--max-body-memory" in r.json()["error"]["message"]
        assert metric(srv, "trcd_http_body_memory_refusals_total") == 1
        # a small body still fits, and once the big one is gone so does a large one
        assert srv.control([1, 0.5], [0, 0]).status == 200
    finally:
        held.close()
    poll(lambda: metric(srv, "trcd_http_body_bytes") == 0, "the memory back", srv=srv)
    r = srv.request("POST", "/v1/control", body=b" " * 9000 + BODY,
                    headers={"Content-Type": "application/json"})
    assert r.status == 200, r


def test_uploads_go_to_disk_and_leave_nothing_behind(trcd_factory):
    # an upload far larger than the memory budget for bodies is accepted: it is not in memory
    srv = trcd_factory(args=["--max-body-memory", "4K"])
    with open(SMALL_RANDOM, "rb") as f:
        data = f.read()
    assert len(data) > 100 * 4096
    r = srv.request("POST", "/v1/models/up/load", body=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200 and r.json()["name"] == "up", r
    assert metric(srv, "trcd_http_body_bytes") == 0
    # killed mid-upload: no temporary file is left (it never had a name)
    before = set(os.listdir(srv.data_dir))
    s = connect(srv)
    s.sendall(b"POST /v1/models/x/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream"
              b"\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data[:len(data) // 2]))
    poll(lambda: metric(srv, "trcd_http_requests_in_flight") >= 2, "the upload in flight", srv=srv)
    srv.kill()
    s.close()
    assert set(os.listdir(srv.data_dir)) == before
    # (the served-set manifest .trcd-served.json is trcd's own, rewritten atomically)
    assert not [f for f in os.listdir(srv.models_dir)
                if f.startswith(".") and f != ".trcd-served.json" or ".tmp." in f]


# ---- cross-site requests and content types ----

def test_cross_site_requests_are_refused_on_state_changing_routes(trcd_factory):
    srv = trcd_factory()
    evil = {"Origin": "http://evil.example"}
    # the attack of issue 8: an empty form POST from any page starts a job
    r = srv.request("POST", "/v1/train", body=b"",
                    headers=dict(evil, **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert r.status == 403 and r.json()["error"]["type"] == "forbidden", r
    assert "--cors-origin" in r.json()["error"]["message"]
    for method, path in (("POST", "/v1/jobs/ffffffffffff/cancel"), ("DELETE", "/v1/models/default"),
                         ("POST", "/v1/models/x/load")):
        assert srv.request(method, path, headers=evil).status == 403, (method, path)
    assert srv.request("GET", "/v1/models/default").status == 200
    # the same site (the dashboard) and no Origin at all (curl) are fine
    same = {"Origin": "http://127.0.0.1:%d" % srv.port}
    assert srv.request("POST", "/v1/jobs/ffffffffffff/cancel", headers=same).status == 404
    assert srv.request("POST", "/v1/jobs/ffffffffffff/cancel").status == 404
    # inference changes nothing: a foreign page may ask (but reads no answer without CORS)
    r = srv.request("POST", "/v1/control", body=BODY,
                    headers=dict(evil, **{"Content-Type": "application/json"}))
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    # an origin allowed by --cors-origin may change state
    ok = trcd_factory(args=["--cors-origin", "http://app.example"])
    r = ok.request("POST", "/v1/jobs/ffffffffffff/cancel", headers={"Origin": "http://app.example"})
    assert r.status == 404 and r.headers["access-control-allow-origin"] == "http://app.example"
    assert ok.request("POST", "/v1/jobs/ffffffffffff/cancel", headers=evil).status == 403


@pytest.mark.parametrize("ctype", ["text/plain", "multipart/form-data; boundary=x", "text/xml"])
def test_cancel_and_resume_take_json_only(trcd, ctype):
    for path in ("/v1/jobs/ffffffffffff/cancel", "/v1/jobs/ffffffffffff/resume"):
        for body in (b"", b"{}"):
            r = trcd.request("POST", path, body=body, headers={"Content-Type": ctype})
            assert r.status == 415 and r.json()["error"]["type"] == "unsupported_media_type", r
        assert trcd.request("POST", path, body=b"{}",
                            headers={"Content-Type": "application/json"}).status == 404


def test_curl_default_content_type_with_a_json_body(trcd):
    """curl -d '{...}' without -H sends application/x-www-form-urlencoded (issue 14 item 4)."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = trcd.request("POST", "/control", body=BODY, headers=form)
    assert r.status == 200 and len(r.json()["controls"]) == 15
    r = trcd.request("POST", "/v1/control", body=b"state=1&target=0", headers=form)
    assert r.status == 415 and "application/json" in r.json()["error"]["message"]
    for ctype in ("text/plain", "multipart/form-data; boundary=x", "text/xml"):
        assert trcd.request("POST", "/v1/control", body=BODY,
                            headers={"Content-Type": ctype}).status == 415


# ---- the dashboard route ----

def test_dashboard_wrong_method_and_preflight(trcd_factory, tmp_path):
    dash = tmp_path / "dash"
    dash.mkdir()
    (dash / "index.html").write_text("<title>x</title>")
    srv = trcd_factory(dashboard_dir=str(dash), args=["--cors-origin", "http://app.example"])
    assert srv.request("GET", "/index.html").status == 200
    r = srv.request("POST", "/index.html", body=b"{}", headers={"Content-Type": "application/json"})
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD", r
    assert r.json()["error"]["type"] == "method_not_allowed"
    r = srv.request("OPTIONS", "/index.html", headers={"Origin": "http://app.example",
                                                       "Access-Control-Request-Method": "GET"})
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "http://app.example"
    assert "GET" in r.headers["access-control-allow-methods"]
    r = srv.request("OPTIONS", "/", headers={"Origin": "http://evil.example",
                                             "Access-Control-Request-Method": "GET"})
    assert r.status == 405 and "access-control-allow-origin" not in r.headers


# ---- work of clients that have gone ----

def post_control(srv, src, body):
    """Sends a whole POST /v1/control on a raw socket and returns the socket (unread)."""
    s = connect(srv, src, timeout=60)
    s.sendall(b"POST /v1/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return s


def test_work_of_a_gone_client_stops(trcd_factory, tmp_path):
    """A client that disconnects while its request is queued or being evaluated stops the work.
    TRCD_TEST_HOLD_FILE holds every evaluation before its next chunk while the file exists, so
    the test decides when work may finish (no race with the machine's speed); metrics show
    what the server is doing."""
    hold = tmp_path / "hold"
    hold.touch()
    srv = trcd_factory(env={"TRCD_TEST_HOLD_FILE": str(hold)})
    rows = b'{"states": [[1, 0.5], [0.2, -0.3], [-1, 1]], "targets": [[0, 0], [0, 0], [0, 0]]}'
    socks = []
    try:
        # A is being evaluated (held); B arrives behind it, then its client goes
        a = post_control(srv, "127.0.0.2", rows)
        socks.append(a)
        poll(lambda: metric(srv, "trcd_inference_rows_in_progress") == 3, "A evaluated", srv=srv)
        b = post_control(srv, "127.0.0.3", BODY)
        socks.append(b)
        poll(lambda: metric(srv, "trcd_http_requests_in_flight") == 3, "B in flight", srv=srv)
        b.close()
        poll(lambda: metric(srv, "trcd_requests_abandoned_total") == 1, "B abandoned", srv=srv)
        # A, whose client is still there, is unaffected: released, it is answered in full
        assert metric(srv, "trcd_inference_rows_in_progress") == 3
        hold.unlink()
        status, _, body, _ = parse(read_all_until_answer(a))
        assert status == 200 and len(json.loads(body)["controls"]) == 3
        # C is being evaluated when its client goes: the work stops although the hold stays,
        # and the server is idle again (only the /metrics request itself in flight)
        hold.touch()
        c = post_control(srv, "127.0.0.4", rows)
        socks.append(c)
        poll(lambda: metric(srv, "trcd_inference_rows_in_progress") == 3, "C evaluated", srv=srv)
        c.close()
        poll(lambda: metric(srv, "trcd_requests_abandoned_total") == 2, "C abandoned", srv=srv)
        poll(lambda: metric(srv, "trcd_http_requests_in_flight") == 1 and
             metric(srv, "trcd_inference_rows_in_progress") == 0, "the server idle", srv=srv)
        hold.unlink()
        r = srv.control([1, 0.5], [0, 0])
        assert r.status == 200, r
        assert metric(srv, "trcd_requests_abandoned_total") == 2
        # logged and counted as nginx does: 499, client closed request
        assert 'route="/v1/control",status="499"} 2' in srv.metrics()
    finally:
        if hold.exists():
            hold.unlink()
        for s in socks:
            s.close()


def read_all_until_answer(s):
    """Reads one whole response (headers and Content-Length body) from a keep-alive socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return head + b"\r\n\r\n" + rest
